//! Access tokens (only their hashes are stored).

use crate::db::{Conn, OptionalExtension, params};
use crate::*;

use super::not_found;

pub(super) fn create_token(tx: &Conn, name: &str, role: &str, token_hash: &str) -> Result<()> {
    let exists: bool = tx
        .query_row("SELECT 1 FROM access_tokens WHERE name = ?", [name], |_| {
            Ok(true)
        })
        .optional()?
        .unwrap_or(false);
    if exists {
        return Err(StoreError::AlreadyExists(format!(
            "A token named '{name}' exists already; revoke it first or pick another name"
        )));
    }
    tx.execute(
        "INSERT INTO access_tokens (name, role, token_hash, created) VALUES (?, ?, ?, ?)",
        params![name, role, token_hash, now_ms()],
    )?;
    Ok(())
}

pub(super) fn lookup_token(c: &Conn, token_hash: &str) -> Result<Option<(String, String)>> {
    Ok(
        c.prepare_cached("SELECT name, role FROM access_tokens WHERE token_hash = ?")?
            .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    )
}

pub(super) fn revoke_token(tx: &Conn, name: &str) -> Result<()> {
    let n = tx.execute("DELETE FROM access_tokens WHERE name = ?", [name])?;
    if n == 0 {
        return Err(not_found(format!("No token named '{name}'")));
    }
    Ok(())
}

pub(super) fn list_tokens(c: &Conn) -> Result<Vec<(String, String, i64)>> {
    Ok(
        c.prepare("SELECT name, role, created FROM access_tokens ORDER BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<crate::db::Result<_>>()?,
    )
}
