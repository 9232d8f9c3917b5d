//! People: passwords (Argon2id), Studio sign-in sessions, throttled
//! sign-ins, and the account routes under `/api/atelier` — who am I, users,
//! project members, API tokens.
//!
//! A server admin manages everyone; a project's admin manages its members;
//! anyone manages their own tokens, password and sessions. The account
//! routes are declared [`Access::Account`] (outside any project); each
//! handler says who may do what.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use serde_json::{Value, json};
use store::{MetadataStore, StoreError};

use crate::AppState;
use crate::auth::{Identity, Role, SESSION_PREFIX, hash_token, new_token};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::req::Req;
use crate::routes::{Access, Routes};

/// How long a Studio sign-in lasts.
pub const SESSION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Failed sign-ins as one name within [`THROTTLE_WINDOW_MS`] before further
/// attempts are refused until the window has passed.
pub const MAX_FAILURES: i64 = 5;
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Shortest and longest password accepted (bytes of UTF-8).
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 1024;

// Argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon(m: u32, t: u32, p: u32) -> Option<argon2::Argon2<'static>> {
    let params = argon2::Params::new(m, t, p, Some(32)).ok()?;
    Some(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// A password's PHC string: `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    check_password(password)?;
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    argon(M_COST, T_COST, P_COST)
        .ok_or_else(|| ApiError::new(ErrorCode::InternalError, "bad Argon2 parameters"))?
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("Argon2: {e}")))?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${}",
        B64.encode(salt),
        B64.encode(out)
    ))
}

/// Whether `password` matches a PHC string made by [`hash_password`]
/// (compared in constant time; a malformed string matches nothing).
pub fn verify_password(password: &str, phc: &str) -> bool {
    let parts: Vec<&str> = phc.split('$').collect();
    let [_, "argon2id", "v=19", params, salt, hash] = parts.as_slice() else {
        return false;
    };
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => m = v.parse::<u32>().ok(),
            Some(("t", v)) => t = v.parse::<u32>().ok(),
            Some(("p", v)) => p = v.parse::<u32>().ok(),
            _ => return false,
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return false;
    };
    let (Ok(salt), Ok(want)) = (B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    let Some(a) = argon(m, t, p) else {
        return false;
    };
    let mut got = vec![0u8; want.len()];
    if want.is_empty()
        || a.hash_password_into(password.as_bytes(), &salt, &mut got)
            .is_err()
    {
        return false;
    }
    got.iter().zip(&want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A hash no password matches, verified when a name has no password so
/// that an unknown name costs the same time as a wrong password.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

pub fn check_password(password: &str) -> Result<(), ApiError> {
    if password.len() < MIN_PASSWORD {
        return Err(ApiError::invalid(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        )));
    }
    if password.len() > MAX_PASSWORD {
        return Err(ApiError::invalid(format!(
            "a password is at most {MAX_PASSWORD} bytes"
        )));
    }
    Ok(())
}

/// Why a sign-in failed.
#[derive(Debug)]
pub enum SignInError {
    /// The name and password do not match (or the name is unknown).
    Wrong,
    /// Too many recent failures for this name; minutes to wait.
    Throttled(i64),
    Other(ApiError),
}

/// Check a name and password and open a session: its secret (for the
/// cookie). Failures are counted per name in the database, so every
/// server process on it throttles alike.
pub async fn sign_in(s: &AppState, user: String, password: String) -> Result<String, SignInError> {
    let st = s.store.clone();
    let now = store::now_ms();
    tokio::task::spawn_blocking(move || {
        let st: &dyn MetadataStore = st.as_ref();
        let fail = |e: StoreError| SignInError::Other(e.into());
        let recent = st
            .login_failures_since(&user, now - THROTTLE_WINDOW_MS)
            .map_err(fail)?;
        if recent >= MAX_FAILURES {
            return Err(SignInError::Throttled(THROTTLE_WINDOW_MS / 60_000));
        }
        let phc = match st.password_hash(&user) {
            Ok(h) => h,
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(fail(e)),
        };
        let ok = verify_password(&password, phc.as_deref().unwrap_or(DECOY)) && phc.is_some();
        if !ok {
            st.record_login_failure(&user, now).map_err(fail)?;
            tracing::warn!(user = %user, "a failed sign-in");
            return Err(SignInError::Wrong);
        }
        st.clear_login_failures(&user).map_err(fail)?;
        let secret = format!("{SESSION_PREFIX}{}", &new_token()[4..]);
        st.create_session(&user, &hash_token(&secret), now + SESSION_MS)
            .map_err(fail)?;
        tracing::info!(user = %user, "signed in");
        Ok(secret)
    })
    .await
    .map_err(|e| SignInError::Other(ApiError::new(ErrorCode::InternalError, e.to_string())))?
}

/// End the session a cookie holds (an API token in the cookie is left alone).
pub async fn sign_out(s: &AppState, secret: &str) {
    if secret.starts_with(SESSION_PREFIX) {
        let h = hash_token(secret);
        if let Err(e) = s.db(move |st| st.end_session(&h)).await {
            tracing::warn!("could not end a session: {}", e.message);
        }
    }
}

// ------------------------------------------------------------ routes

pub fn routes() -> Routes<AppState> {
    use Access::Account;
    Routes::new()
        .get("/me", Account, me)
        .get("/users", Account, list_users)
        .post("/users", Account, create_user)
        .get("/users/{name}", Account, get_user)
        .patch("/users/{name}", Account, update_user)
        .delete("/users/{name}", Account, delete_user)
        .delete("/users/{name}/sessions", Account, end_sessions)
        .get("/projects/{ws}/members", Account, list_members)
        .put("/projects/{ws}/members/{user}", Account, set_member)
        .delete("/projects/{ws}/members/{user}", Account, remove_member)
        .get("/tokens", Account, list_tokens)
        .post("/tokens", Account, create_token)
        .delete("/tokens/{name}", Account, revoke_token)
        .get("/audit", Account, crate::audit::list)
}

fn forbidden(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::PermissionDenied, msg)
}

fn server_admin(who: &Identity) -> ApiResult<()> {
    if who.admin {
        Ok(())
    } else {
        Err(forbidden(format!(
            "'{}' is not a server admin; only a server admin manages people",
            who.name
        )))
    }
}

/// The caller acts on `user`: themself, or anyone for a server admin.
fn self_or_admin(who: &Identity, user: &str) -> ApiResult<()> {
    if who.admin || who.name == user {
        Ok(())
    } else {
        Err(forbidden(format!(
            "'{}' may manage only their own account; a server admin manages others'",
            who.name
        )))
    }
}

fn user_json(u: &store::User, roles: &[(String, String)]) -> Value {
    json!({
        "name": u.name,
        "admin": u.is_admin,
        "has_password": u.has_password,
        "created": u.created,
        "projects": roles.iter().map(|(w, r)| json!({"project": w, "role": r})).collect::<Vec<_>>(),
    })
}

async fn me(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
) -> ApiResult<Json<Value>> {
    if who.name == "local" && who.admin {
        // open mode: nobody signed in; the server is everyone's
        return Ok(Json(
            json!({"name": "local", "admin": true, "projects": []}),
        ));
    }
    let name = who.name.clone();
    let (u, roles) = s
        .db(move |st| Ok((st.get_user(&name)?, st.member_roles(&name)?)))
        .await?;
    Ok(Json(user_json(&u, &roles)))
}

async fn list_users(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
) -> ApiResult<Json<Value>> {
    server_admin(&who)?;
    let all = s
        .db(|st| {
            st.list_users()?
                .into_iter()
                .map(|u| {
                    let roles = st.member_roles(&u.name)?;
                    Ok(user_json(&u, &roles))
                })
                .collect::<store::Result<Vec<_>>>()
        })
        .await?;
    Ok(Json(json!({"users": all})))
}

async fn hashed(password: Option<String>) -> ApiResult<Option<String>> {
    match password {
        None => Ok(None),
        Some(p) => crate::atelier_api::blocking(move || hash_password(&p).map(Some)).await,
    }
}

/// `POST /users {name, password?, admin?}` → 201.
async fn create_user(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    req: Req,
) -> ApiResult<Response> {
    server_admin(&who)?;
    let name = req.nonempty("name")?;
    let admin = req.opt_bool("admin")?.unwrap_or(false);
    let phc = hashed(req.opt_str("password")?).await?;
    let u = s
        .db(move |st| st.create_user(&name, phc.as_deref(), admin))
        .await?;
    tracing::info!(by = %who.name, user = %u.name, admin = u.is_admin, "created a user");
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": user_json(&u, &[])})),
    )
        .into_response())
}

async fn get_user(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    self_or_admin(&who, &name)?;
    let (u, roles) = s
        .db(move |st| Ok((st.get_user(&name)?, st.member_roles(&name)?)))
        .await?;
    Ok(Json(json!({"user": user_json(&u, &roles)})))
}

/// `PATCH /users/{name} {password?, admin?}`: anyone changes their own
/// password (which ends their sessions); a server admin anyone's, and who
/// is a server admin.
async fn update_user(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
    req: Req,
) -> ApiResult<Json<Value>> {
    self_or_admin(&who, &name)?;
    let admin = req.opt_bool("admin")?;
    if admin.is_some() {
        server_admin(&who)?;
    }
    let password = req.opt_str("password")?;
    if admin.is_none() && password.is_none() {
        return Err(ApiError::invalid(
            "give a new password or admin (true/false)",
        ));
    }
    let phc = hashed(password).await?;
    let changing_password = phc.is_some();
    let n = name.clone();
    let (u, roles) = s
        .db(move |st| {
            if let Some(h) = &phc {
                st.set_user_password(&n, Some(h))?;
            }
            if let Some(a) = admin {
                st.set_user_admin(&n, a)?;
            }
            Ok((st.get_user(&n)?, st.member_roles(&n)?))
        })
        .await?;
    tracing::info!(by = %who.name, user = %name, password = changing_password, admin = ?admin, "changed a user");
    Ok(Json(json!({"user": user_json(&u, &roles)})))
}

async fn delete_user(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    server_admin(&who)?;
    if who.name == name {
        return Err(ApiError::invalid(
            "a server admin cannot delete themself; ask another admin",
        ));
    }
    let n = name.clone();
    s.db(move |st| st.delete_user(&n)).await?;
    tracing::info!(by = %who.name, user = %name, "deleted a user");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /users/{name}/sessions`: sign them out everywhere.
async fn end_sessions(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    self_or_admin(&who, &name)?;
    let n = s
        .db(move |st| {
            st.get_user(&name)?;
            st.end_sessions(&name)
        })
        .await?;
    Ok(Json(json!({"ended": n})))
}

/// The caller may manage the members of `ws`: a server admin, or an admin
/// of the project. Anyone else with no role there gets the 404 of a
/// project that does not exist.
async fn project_admin(s: &AppState, who: &Identity, ws: &str) -> ApiResult<()> {
    let (w, name, admin) = (ws.to_string(), who.name.clone(), who.admin);
    let role = s
        .db(move |st| {
            if admin {
                st.get_workspace(&w)?;
                return Ok(Some("admin".to_string()));
            }
            st.member_role(&w, &name)
        })
        .await?;
    match role.as_deref() {
        Some("admin") => Ok(()),
        Some(_) => Err(forbidden(format!(
            "'{}' is not an admin of project '{ws}'; a project's admins manage its members",
            who.name
        ))),
        None => Err(ApiError::from(StoreError::NotFound(format!(
            "Workspace '{ws}' not found"
        )))),
    }
}

/// `GET /projects/{ws}/members`: any member sees who else is in the project.
async fn list_members(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(ws): Path<String>,
) -> ApiResult<Json<Value>> {
    let members = s
        .db(move |st| {
            crate::workspace::visible_to(st, &who, &ws)?;
            st.list_members(&ws)
        })
        .await?;
    Ok(Json(json!({
        "members": members.iter().map(|(u, r)| json!({"user": u, "role": r})).collect::<Vec<_>>()
    })))
}

/// `PUT /projects/{ws}/members/{user} {role}`.
async fn set_member(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path((ws, user)): Path<(String, String)>,
    req: Req,
) -> ApiResult<Json<Value>> {
    let role = req.nonempty("role")?;
    if Role::parse(&role).is_none() {
        return Err(ApiError::invalid(format!(
            "unknown role '{role}': use viewer, editor or admin"
        )));
    }
    project_admin(&s, &who, &ws).await?;
    let (w, u, r) = (ws.clone(), user.clone(), role.clone());
    s.db(move |st| st.set_member(&w, &u, &r)).await?;
    tracing::info!(by = %who.name, project = %ws, user = %user, role = %role, "set a project role");
    Ok(Json(json!({"project": ws, "user": user, "role": role})))
}

async fn remove_member(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path((ws, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    project_admin(&s, &who, &ws).await?;
    let (w, u) = (ws.clone(), user.clone());
    s.db(move |st| st.remove_member(&w, &u)).await?;
    tracing::info!(by = %who.name, project = %ws, user = %user, "removed a project role");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn token_json(t: &store::TokenInfo) -> Value {
    json!({"name": t.name, "user": t.user, "role": t.role, "created": t.created, "expires": t.expires})
}

/// `GET /tokens`: the caller's tokens (a server admin's: everyone's).
async fn list_tokens(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
) -> ApiResult<Json<Value>> {
    let all = s.db(|st| st.list_tokens()).await?;
    let mine: Vec<Value> = all
        .iter()
        .filter(|t| who.admin || t.user.as_deref() == Some(who.name.as_str()))
        .map(token_json)
        .collect();
    Ok(Json(json!({"tokens": mine})))
}

/// `POST /tokens {name, role?, expires_in_days?, user?}` → 201 with the
/// secret, shown once. A token may do at most `role` (default: viewer);
/// `user` (someone else's token) is for a server admin.
async fn create_token(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    req: Req,
) -> ApiResult<Response> {
    let name = req.nonempty("name")?;
    let role = req.opt_str("role")?.unwrap_or_else(|| "viewer".into());
    if Role::parse(&role).is_none() {
        return Err(ApiError::invalid(format!(
            "unknown role '{role}': use viewer, editor or admin"
        )));
    }
    let user = req.opt_str("user")?.unwrap_or_else(|| who.name.clone());
    self_or_admin(&who, &user)?;
    let expires = match req.opt_i64("expires_in_days")? {
        None => None,
        Some(d) if (1..=3650).contains(&d) => Some(store::now_ms() + d * 24 * 3600 * 1000),
        Some(d) => {
            return Err(ApiError::invalid(format!(
                "expires_in_days must be 1 to 3650, got {d}"
            )));
        }
    };
    let secret = new_token();
    let h = hash_token(&secret);
    let (n, u, r) = (name.clone(), user.clone(), role.clone());
    s.db(move |st| st.create_user_token(&u, &n, &r, &h, expires))
        .await?;
    tracing::info!(by = %who.name, token = %name, user = %user, role = %role, "created a token");
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"token": secret, "name": name, "user": user, "role": role, "expires": expires}),
        ),
    )
        .into_response())
}

async fn revoke_token(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let n = name.clone();
    let by = who.name.clone();
    s.db(move |st| {
        // someone else's token is, to anyone but a server admin, no token
        st.list_tokens()?
            .into_iter()
            .find(|t| t.name == n && (who.admin || t.user.as_deref() == Some(who.name.as_str())))
            .ok_or_else(|| StoreError::NotFound(format!("No token named '{n}'")))?;
        st.revoke_token(&n)
    })
    .await?;
    tracing::info!(by = %by, token = %name, "revoked a token");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_nothing_else_does() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
        assert!(!verify_password("anything", DECOY));
        for bad in [
            "",
            "$argon2i$v=19$m=8,t=1,p=1$AAAA$AAAA",
            "$argon2id$v=19$m=x$a$b",
            &h[..h.len() - 4],
        ] {
            assert!(!verify_password("correct horse", bad), "{bad}");
        }
        assert!(hash_password("short").is_err());
    }
}
