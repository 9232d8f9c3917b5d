//! People (migration 20): users, their roles per project, API tokens and
//! Studio sessions (only hashes of secrets are stored), and failed sign-ins.

use crate::db::{Conn, OptionalExtension, params};
use crate::*;

use super::{invalid, not_found};

const ROLES: &[&str] = &["viewer", "editor", "admin"];

fn check_role(role: &str) -> Result<()> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(invalid(format!(
            "unknown role '{role}': use viewer, editor or admin"
        )))
    }
}

fn user_row(r: &crate::db::Row) -> crate::db::Result<User> {
    Ok(User {
        name: r.get(0)?,
        is_admin: r.get::<_, i64>(1)? != 0,
        has_password: r.get::<_, i64>(2)? != 0,
        created: r.get(3)?,
    })
}

const USER_COLS: &str =
    "name, is_admin, CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END, created";

pub(super) fn get_user(c: &Conn, name: &str) -> Result<User> {
    c.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE name = ?"))?
        .query_row([name], user_row)
        .optional()?
        .ok_or_else(|| not_found(format!("No user named '{name}'")))
}

pub(super) fn list_users(c: &Conn) -> Result<Vec<User>> {
    Ok(
        c.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))?
            .query_map([], user_row)?
            .collect::<crate::db::Result<_>>()?,
    )
}

fn user_exists(c: &Conn, name: &str) -> Result<bool> {
    Ok(
        c.query_row("SELECT 1 FROM users WHERE name = ?", [name], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// A user name: 1–64 characters, letters, digits and `.-_@`, so that it
/// reads unambiguously in lists, audit records and URLs.
fn check_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "user name '{}' must be 1 to 64 letters, digits or . - _ @",
            name.chars().take(80).collect::<String>()
        )))
    }
}

pub(super) fn create_user(
    tx: &Conn,
    name: &str,
    password_hash: Option<&str>,
    is_admin: bool,
) -> Result<User> {
    check_user_name(name)?;
    if user_exists(tx, name)? {
        return Err(StoreError::AlreadyExists(format!(
            "A user named '{name}' exists already"
        )));
    }
    tx.execute(
        "INSERT INTO users (name, password_hash, is_admin, created) VALUES (?, ?, ?, ?)",
        params![name, password_hash, is_admin as i64, now_ms()],
    )?;
    get_user(tx, name)
}

pub(super) fn set_user_password(tx: &Conn, name: &str, password_hash: Option<&str>) -> Result<()> {
    get_user(tx, name)?;
    tx.execute(
        "UPDATE users SET password_hash = ? WHERE name = ?",
        params![password_hash, name],
    )?;
    end_sessions(tx, name)?;
    Ok(())
}

pub(super) fn set_user_admin(tx: &Conn, name: &str, is_admin: bool) -> Result<()> {
    get_user(tx, name)?;
    tx.execute(
        "UPDATE users SET is_admin = ? WHERE name = ?",
        params![is_admin as i64, name],
    )?;
    Ok(())
}

pub(super) fn delete_user(tx: &Conn, name: &str) -> Result<()> {
    get_user(tx, name)?;
    for sql in [
        // (not the endpoint keys they made: applications keep working)
        "DELETE FROM access_tokens WHERE user_name = ? AND endpoint IS NULL",
        "DELETE FROM sessions WHERE user_name = ?",
        "DELETE FROM workspace_members WHERE user_name = ?",
        "DELETE FROM login_failures WHERE user_name = ?",
        "DELETE FROM users WHERE name = ?",
    ] {
        tx.execute(sql, [name])?;
    }
    Ok(())
}

pub(super) fn password_hash(c: &Conn, name: &str) -> Result<Option<String>> {
    c.prepare_cached("SELECT password_hash FROM users WHERE name = ?")?
        .query_row([name], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .ok_or_else(|| not_found(format!("No user named '{name}'")))
}

pub(super) fn set_member(tx: &Conn, workspace: &str, user: &str, role: &str) -> Result<()> {
    check_role(role)?;
    super::workspaces::load_workspace(tx, workspace)?;
    get_user(tx, user)?;
    tx.execute(
        "DELETE FROM workspace_members WHERE workspace = ? AND user_name = ?",
        params![workspace, user],
    )?;
    tx.execute(
        "INSERT INTO workspace_members (workspace, user_name, role) VALUES (?, ?, ?)",
        params![workspace, user, role],
    )?;
    Ok(())
}

pub(super) fn remove_member(tx: &Conn, workspace: &str, user: &str) -> Result<()> {
    let n = tx.execute(
        "DELETE FROM workspace_members WHERE workspace = ? AND user_name = ?",
        params![workspace, user],
    )?;
    if n == 0 {
        return Err(not_found(format!(
            "'{user}' has no role in project '{workspace}'"
        )));
    }
    Ok(())
}

pub(super) fn list_members(c: &Conn, workspace: &str) -> Result<Vec<(String, String)>> {
    super::workspaces::load_workspace(c, workspace)?;
    Ok(c.prepare(
        "SELECT user_name, role FROM workspace_members WHERE workspace = ? ORDER BY user_name",
    )?
    .query_map([workspace], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect::<crate::db::Result<_>>()?)
}

pub(super) fn member_roles(c: &Conn, user: &str) -> Result<Vec<(String, String)>> {
    get_user(c, user)?;
    Ok(c.prepare(
        "SELECT workspace, role FROM workspace_members WHERE user_name = ? ORDER BY workspace",
    )?
    .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect::<crate::db::Result<_>>()?)
}

pub(super) fn member_role(c: &Conn, workspace: &str, user: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached(
        "SELECT role FROM workspace_members WHERE workspace = ? AND user_name = ?",
    )?
    .query_row(params![workspace, user], |r| r.get(0))
    .optional()?)
}

/// Called when a workspace is deleted.
/// A deleted workspace's roles, and the tokens bound to it (a job's, a
/// Ray worker's): none may act in a later workspace of the same name.
pub(super) fn forget_workspace(tx: &Conn, workspace: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM workspace_members WHERE workspace = ?",
        [workspace],
    )?;
    tx.execute("DELETE FROM access_tokens WHERE workspace = ?", [workspace])?;
    Ok(())
}

// ------------------------------------------------------------ tokens

fn token_name_free(tx: &Conn, name: &str) -> Result<()> {
    let taken = tx
        .query_row("SELECT 1 FROM access_tokens WHERE name = ?", [name], |_| {
            Ok(())
        })
        .optional()?
        .is_some();
    if taken {
        return Err(StoreError::AlreadyExists(format!(
            "A token named '{name}' exists already; revoke it first or pick another name"
        )));
    }
    Ok(())
}

pub(super) fn create_token(
    tx: &Conn,
    name: &str,
    role: &str,
    token_hash: &str,
    expires: Option<i64>,
    workspace: Option<&str>,
) -> Result<()> {
    check_role(role)?;
    insert_token(
        tx,
        &NewToken {
            user: None,
            name,
            role,
            token_hash,
            expires,
            endpoint: None,
            workspace,
        },
        "token",
    )
}

pub(super) fn create_endpoint_key(
    tx: &Conn,
    endpoint: &str,
    name: &str,
    token_hash: &str,
    created_by: &str,
) -> Result<()> {
    // (its user column names who made it; the key itself acts as no one)
    insert_token(
        tx,
        &NewToken {
            user: Some(created_by),
            name,
            role: "invoke",
            token_hash,
            expires: None,
            endpoint: Some(endpoint),
            workspace: None,
        },
        "key",
    )
}

/// A row of `access_tokens`, its role already checked.
struct NewToken<'a> {
    user: Option<&'a str>,
    name: &'a str,
    role: &'a str,
    token_hash: &'a str,
    expires: Option<i64>,
    endpoint: Option<&'a str>,
    /// The one project it acts in (none: as its kind says).
    workspace: Option<&'a str>,
}

/// Insert `t` under a free name (`what` names it in the message: token, key).
fn insert_token(tx: &Conn, t: &NewToken, what: &str) -> Result<()> {
    if t.name.is_empty() || t.name.len() > 100 {
        return Err(invalid(format!(
            "a {what} name must be 1 to 100 characters"
        )));
    }
    token_name_free(tx, t.name)?;
    tx.execute(
        "INSERT INTO access_tokens (name, role, token_hash, created, user_name, expires, endpoint, workspace)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            t.name,
            t.role,
            t.token_hash,
            now_ms(),
            t.user,
            t.expires,
            t.endpoint,
            t.workspace
        ],
    )?;
    Ok(())
}

pub(super) fn create_user_token(
    tx: &Conn,
    user: &str,
    name: &str,
    role: &str,
    token_hash: &str,
    expires: Option<i64>,
) -> Result<()> {
    get_user(tx, user)?;
    check_role(role)?;
    insert_token(
        tx,
        &NewToken {
            user: Some(user),
            name,
            role,
            token_hash,
            expires,
            endpoint: None,
            workspace: None,
        },
        "token",
    )
}

fn credential_row(r: &crate::db::Row) -> crate::db::Result<Credential> {
    Ok(Credential {
        user: r.get(0)?,
        is_admin: r.get::<_, i64>(1)? != 0,
        cap: r.get(2)?,
        service: r.get::<_, i64>(3)? != 0,
        endpoint: r.get(4)?,
        workspace: r.get(5)?,
    })
}

pub(super) fn lookup_token(c: &Conn, token_hash: &str) -> Result<Option<Credential>> {
    Ok(lookup_token_in(c, token_hash, "")?.map(|(cred, _)| cred))
}

/// A token's credential and its user's role in `workspace` (none for
/// `""`), in one statement: every request in a project asks both.
fn lookup_token_in(
    c: &Conn,
    token_hash: &str,
    workspace: &str,
) -> Result<Option<(Credential, Option<String>)>> {
    // a service token (no user) stands for itself: admin if its role is
    Ok(c.prepare_cached(
        "SELECT CASE WHEN t.endpoint IS NOT NULL THEN t.name ELSE COALESCE(u.name, t.name) END,
                CASE WHEN t.endpoint IS NOT NULL OR t.workspace IS NOT NULL THEN 0
                     WHEN t.user_name IS NULL THEN (CASE WHEN t.role = 'admin' THEN 1 ELSE 0 END)
                     ELSE u.is_admin END,
                t.role,
                CASE WHEN t.user_name IS NULL OR t.endpoint IS NOT NULL THEN 1 ELSE 0 END,
                t.endpoint,
                t.workspace,
                m.role
         FROM access_tokens t LEFT JOIN users u ON u.name = t.user_name
              LEFT JOIN workspace_members m ON m.user_name = t.user_name AND m.workspace = ?3
         WHERE t.token_hash = ?1 AND (t.expires IS NULL OR t.expires > ?2)
           AND (t.user_name IS NULL OR t.endpoint IS NOT NULL OR u.name IS NOT NULL)",
    )?
    .query_row(params![token_hash, now_ms(), workspace], |r| {
        Ok((credential_row(r)?, r.get(6)?))
    })
    .optional()?)
}

pub(super) fn revoke_token(tx: &Conn, name: &str) -> Result<()> {
    let n = tx.execute("DELETE FROM access_tokens WHERE name = ?", [name])?;
    if n == 0 {
        return Err(not_found(format!("No token named '{name}'")));
    }
    Ok(())
}

pub(super) fn list_tokens(c: &Conn) -> Result<Vec<TokenInfo>> {
    Ok(c.prepare(
        "SELECT name, user_name, role, created, expires, endpoint FROM access_tokens ORDER BY name",
    )?
    .query_map([], |r| {
        Ok(TokenInfo {
            name: r.get(0)?,
            user: r.get(1)?,
            role: r.get(2)?,
            created: r.get(3)?,
            expires: r.get(4)?,
            endpoint: r.get(5)?,
        })
    })?
    .collect::<crate::db::Result<_>>()?)
}

// ------------------------------------------------------------ sessions

pub(super) fn create_session(tx: &Conn, user: &str, id_hash: &str, expires: i64) -> Result<()> {
    get_user(tx, user)?;
    tx.execute(
        "INSERT INTO sessions (id_hash, user_name, created, expires) VALUES (?, ?, ?, ?)",
        params![id_hash, user, now_ms(), expires],
    )?;
    Ok(())
}

/// A session's credential and its user's role in `workspace` (none for
/// `""`), in one statement.
fn lookup_session_in(
    c: &Conn,
    id_hash: &str,
    workspace: &str,
) -> Result<Option<(Credential, Option<String>)>> {
    Ok(c.prepare_cached(
        "SELECT u.name, u.is_admin, 'admin', 0, NULL, NULL, m.role FROM sessions s
             JOIN users u ON u.name = s.user_name
             LEFT JOIN workspace_members m ON m.user_name = u.name AND m.workspace = ?3
             WHERE s.id_hash = ?1 AND s.expires > ?2",
    )?
    .query_row(params![id_hash, now_ms(), workspace], |r| {
        Ok((credential_row(r)?, r.get(6)?))
    })
    .optional()?)
}

pub(super) fn lookup_session(c: &Conn, id_hash: &str) -> Result<Option<Credential>> {
    Ok(lookup_session_in(c, id_hash, "")?.map(|(cred, _)| cred))
}

pub(super) fn end_session(tx: &Conn, id_hash: &str) -> Result<()> {
    tx.execute("DELETE FROM sessions WHERE id_hash = ?", [id_hash])?;
    Ok(())
}

pub(super) fn end_sessions(tx: &Conn, user: &str) -> Result<usize> {
    Ok(tx.execute("DELETE FROM sessions WHERE user_name = ?", [user])?)
}

// ------------------------------------------------------------ sign-in throttling

pub(super) fn record_login_failure(tx: &Conn, user: &str, at: i64) -> Result<()> {
    // (old failures are dropped on the way: the table stays small)
    tx.execute(
        "DELETE FROM login_failures WHERE at < ?",
        [at - 24 * 3600 * 1000],
    )?;
    tx.execute(
        "INSERT INTO login_failures (user_name, at) VALUES (?, ?)",
        params![user, at],
    )?;
    Ok(())
}

pub(super) fn login_failures_since(c: &Conn, user: &str, since: i64) -> Result<i64> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM login_failures WHERE user_name = ? AND at >= ?",
        params![user, since],
        |r| r.get(0),
    )?)
}

pub(super) fn clear_login_failures(tx: &Conn, user: &str) -> Result<()> {
    tx.execute("DELETE FROM login_failures WHERE user_name = ?", [user])?;
    Ok(())
}

/// See [`crate::MetadataStore::authenticate`]: everything on one connection
/// (one transaction on PostgreSQL).
pub(super) fn authenticate(
    c: &Conn,
    secret_hash: Option<&str>,
    session: bool,
    workspace: Option<&str>,
) -> Result<Authenticated> {
    // the credential and, in a project, its user's role there: one statement
    let found = match secret_hash {
        None => None,
        Some(h) if session => lookup_session_in(c, h, workspace.unwrap_or_default())?,
        Some(h) => lookup_token_in(c, h, workspace.unwrap_or_default())?,
    };
    let (credential, role) = found.map_or((None, None), |(cred, role)| (Some(cred), role));
    let mut out = Authenticated {
        workspace_exists: true,
        ..Default::default()
    };
    if let Some(ws) = workspace {
        match &credential {
            // a member: their role is all that counts (none: as if the workspace did not exist)
            Some(cred) if !cred.is_admin && !cred.service => out.member_role = role,
            // a server admin, a service token, or open mode (no secret): any workspace that exists
            Some(_) => out.workspace_exists = workspace_exists(c, ws)?,
            None if secret_hash.is_none() => out.workspace_exists = workspace_exists(c, ws)?,
            // an unknown secret is refused whatever the workspace
            None => {}
        }
    }
    out.credential = credential;
    Ok(out)
}

fn workspace_exists(c: &Conn, ws: &str) -> Result<bool> {
    if ws == DEFAULT_WORKSPACE {
        return Ok(true);
    }
    Ok(c.prepare_cached("SELECT 1 FROM workspaces WHERE name = ?")?
        .query_row([ws], |_| Ok(()))
        .optional()?
        .is_some())
}
