//! Authentication: every request carries an [`Identity`] through the
//! handlers (in the request extensions), so projects and roles can be
//! enforced later without touching each route.
//!
//! Open mode (the default on loopback, as MLflow) gives every request the
//! local admin identity. Required mode accepts an API token as
//! `Authorization: Bearer <token>` (what the MLflow client sends from
//! `MLFLOW_TRACKING_TOKEN`) or the Studio's login cookie. Tokens are stored
//! as SHA-256 hashes; the secret is shown once, when created.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

pub const COOKIE: &str = "atelier_token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Open,
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

/// Who is making the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

pub fn hash_token(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random API token (256 bits).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "atl_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn is_public(path: &str) -> bool {
    path == "/health"
        || path == "/version"
        || path == "/login"
        || path == "/logout"
        || path.starts_with("/static/")
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/ajax-api/")
        || path.starts_with("/studio/api/")
        || path == "/metrics"
        || is_invocation(path)
        || (path.starts_with("/endpoints/") && path.ends_with("/ping"))
}

/// Invoking an endpoint (SageMaker's separate InvokeEndpoint permission):
/// any authenticated identity, viewers included, may call a model.
fn is_invocation(path: &str) -> bool {
    path.starts_with("/endpoints/") && path.ends_with("/invocations")
}

/// POSTs that only read (searches), which viewers may make.
fn is_read(method: &Method, path: &str) -> bool {
    method == Method::GET
        || method == Method::HEAD
        || (method == Method::POST
            && (path.ends_with("/search")
                || path.ends_with("/get-latest-versions")
                || is_invocation(path)))
}

fn token_from(req: &Request) -> Option<String> {
    if let Some(v) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(t.trim().to_string());
        }
    }
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let identity = match state.auth {
        AuthMode::Open => Identity {
            name: "local".into(),
            role: Role::Admin,
        },
        AuthMode::Required if is_public(&path) => Identity {
            name: "anonymous".into(),
            role: Role::Viewer,
        },
        AuthMode::Required => {
            let Some(token) = token_from(&req) else {
                return unauthenticated(
                    &path,
                    "Authentication required: send an API token as 'Authorization: Bearer <token>' (MLFLOW_TRACKING_TOKEN for the mlflow client)",
                );
            };
            let h = hash_token(&token);
            match state.db(move |s| s.lookup_token(&h)).await {
                Ok(Some((name, role))) => Identity {
                    name,
                    role: Role::parse(&role).unwrap_or(Role::Viewer),
                },
                Ok(None) => return unauthenticated(&path, "Invalid API token"),
                Err(e) => return e.into_response(),
            }
        }
    };
    if identity.role == Role::Viewer && !is_public(&path) && !is_read(req.method(), &path) {
        return ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "'{}' has the viewer role and cannot make changes",
                identity.name
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

fn unauthenticated(path: &str, msg: &str) -> Response {
    if is_api(path) {
        let mut r = ApiError::new(ErrorCode::Unauthenticated, msg).into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        r
    } else {
        let mut r = Redirect::to("/login").into_response();
        if r.status() == StatusCode::SEE_OTHER {
            *r.status_mut() = StatusCode::FOUND;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("atl_") && a.len() == 68);
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_ne!(hash_token(&a), a);
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn searches_are_reads() {
        assert!(is_read(&Method::POST, "/api/2.0/mlflow/runs/search"));
        assert!(!is_read(&Method::POST, "/api/2.0/mlflow/runs/create"));
        assert!(is_read(&Method::GET, "/api/2.0/mlflow/runs/get"));
        assert!(is_read(&Method::POST, "/endpoints/churn/invocations"));
        assert!(!is_read(&Method::POST, "/api/atelier/endpoints"));
    }
}
