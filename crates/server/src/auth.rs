//! The request guard: Host and Origin checks ([`crate::site`]),
//! authentication, and each route's declared permission
//! ([`crate::routes`]). Every request carries an [`Identity`] through the
//! handlers (in the request extensions), so projects and roles can be
//! enforced later without touching each route.
//!
//! Open mode (the default on loopback, as MLflow) gives every request the
//! local admin identity. Required mode accepts an API token as
//! `Authorization: Bearer <token>` (what the MLflow client sends from
//! `MLFLOW_TRACKING_TOKEN`) or the Studio's login cookie. Tokens are stored
//! as SHA-256 hashes; the secret is shown once, when created.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::routes::{Access, BodyKind, Lookup, Table};
use crate::site;

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

/// The request guard's state: the application and its route declarations.
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    pub table: Arc<Table>,
}

fn refuse(code: ErrorCode, msg: String) -> Response {
    ApiError::new(code, msg).into_response()
}

/// Every request passes here, after routing (so the declared route is
/// known) and before its handler:
/// 1. `Host` must name this server (DNS rebinding);
/// 2. a cross-origin `Origin` may only change state when configured
///    (cross-site requests), and gets CORS answers when it is;
/// 3. the caller is identified (open mode: the local admin; otherwise an
///    API token or the Studio's cookie);
/// 4. the route's declared [`Access`] is checked against the role, and a
///    JSON route's body must be declared JSON (a page can post `text/plain`
///    cross-site without asking, never `application/json`).
pub async fn middleware(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    let site = &g.state.site;
    let method = req.method().clone();
    // 1. Host (an absolute-form request line carries it in the URI instead)
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}").to_string())
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if let Some(host) = &host
        && !site.host_allowed(host)
    {
        tracing::warn!(%host, "refused a request for a host name this server does not answer to");
        return refuse(
            ErrorCode::PermissionDenied,
            format!(
                "Host '{}' is not allowed: this server answers to localhost and IP addresses; add the name with --allowed-hosts (ATELIER_ALLOWED_HOSTS)",
                host.chars().take(200).collect::<String>()
            ),
        );
    }
    // 2. Origin
    let cross = site::cross_origin(req.headers());
    let allowed_origin = cross
        .as_deref()
        .filter(|o| site.origin_allowed(o))
        .map(str::to_string);
    if site::is_preflight(&method, req.headers()) {
        return match &allowed_origin {
            Some(o) => {
                let mut r = StatusCode::NO_CONTENT.into_response();
                site::add_cors(r.headers_mut(), o, req.headers(), true);
                r
            }
            None => refuse(
                ErrorCode::PermissionDenied,
                format!(
                    "cross-origin requests from '{}' are not allowed; allow the origin with --cors-allowed-origins (ATELIER_CORS_ALLOWED_ORIGINS)",
                    cross.as_deref().unwrap_or("")
                ),
            ),
        };
    }
    if site::is_unsafe(&method) && allowed_origin.is_none() {
        let cross_site = req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        if let Some(o) = &cross {
            tracing::warn!(origin = %o, %method, path = %req.uri().path(), "refused a cross-origin request");
            return refuse(
                ErrorCode::PermissionDenied,
                format!(
                    "cross-origin {method} from '{}' refused: a web page may not change this server; allow the origin with --cors-allowed-origins (ATELIER_CORS_ALLOWED_ORIGINS)",
                    o.chars().take(200).collect::<String>()
                ),
            );
        }
        if cross_site {
            return refuse(
                ErrorCode::PermissionDenied,
                "cross-site request refused: a web page may not change this server".into(),
            );
        }
    }
    // the declared route (none: the Studio's pages and 404s)
    // (a shared string, not a copy: this runs on every request, invocations included)
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let declared: Option<(Access, BodyKind)> = match &matched {
        None => None,
        Some(m) => match g.table.lookup(&method, m.as_str()) {
            Lookup::Found(d) => Some((d.access, d.body)),
            Lookup::WrongMethod(methods) => {
                let p = m.as_str();
                let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
                let mut r = (
                    StatusCode::METHOD_NOT_ALLOWED,
                    axum::Json(serde_json::json!({
                        "error_code": "ENDPOINT_NOT_FOUND",
                        "message": format!("{method} is not allowed on {p}; use {}", allow.join(" or ")),
                    })),
                )
                    .into_response();
                if let Ok(v) = header::HeaderValue::from_str(&allow.join(", ")) {
                    r.headers_mut().insert(header::ALLOW, v);
                }
                return r;
            }
            Lookup::Undeclared => {
                let p = m.as_str();
                tracing::error!(route = %p, "a route declares no permission; refusing it");
                return refuse(
                    ErrorCode::InternalError,
                    format!("the route {p} declares no permission, so it is refused"),
                );
            }
        },
    };
    let access = declared.map_or(Access::Read, |(a, _)| a);
    let path = req.uri().path().to_string();
    // 3. who is asking
    let identity = match g.state.auth {
        AuthMode::Open => Identity {
            name: "local".into(),
            role: Role::Admin,
        },
        AuthMode::Required if access == Access::Public => Identity {
            name: "anonymous".into(),
            role: Role::Viewer,
        },
        AuthMode::Required => {
            let Some(token) = token_from(&req) else {
                return unauthenticated(
                    &path,
                    matched.is_some(),
                    "Authentication required: send an API token as 'Authorization: Bearer <token>' (MLFLOW_TRACKING_TOKEN for the mlflow client)",
                );
            };
            let h = hash_token(&token);
            match g.state.db(move |s| s.lookup_token(&h)).await {
                Ok(Some((name, role))) => Identity {
                    name,
                    role: Role::parse(&role).unwrap_or(Role::Viewer),
                },
                Ok(None) => return unauthenticated(&path, matched.is_some(), "Invalid API token"),
                Err(e) => return e.into_response(),
            }
        }
    };
    // 4. the route's declared permission and body
    let needed = match access {
        Access::Public | Access::Read => Role::Viewer,
        Access::Write => Role::Editor,
        Access::Admin => Role::Admin,
    };
    if identity.role < needed {
        return refuse(
            ErrorCode::PermissionDenied,
            format!(
                "'{}' has the {} role; {method} {path} needs the {} role",
                identity.name,
                identity.role.as_str(),
                needed.as_str()
            ),
        );
    }
    if let Some((_, body)) = declared
        && site::is_unsafe(&method)
    {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?"));
        let length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let has_body = length.is_some_and(|n| n > 0)
            || (length.is_none() && req.headers().contains_key(header::TRANSFER_ENCODING));
        let max = g.state.max_request_bytes as u64;
        if body != BodyKind::Upload
            && let Some(n) = length
            && n > max
        {
            return refuse(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the request body of {n} bytes exceeds the limit of {max} bytes (--max-request-bytes); upload large files as artifacts or datasets"
                ),
            );
        }
        if body == BodyKind::Json
            && (ct.is_some_and(|c| !site::is_json(c)) || (ct.is_none() && has_body))
        {
            return refuse(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "{method} {path} takes a JSON body: send it with 'Content-Type: application/json' (got {})",
                    ct.map_or("no Content-Type".to_string(), |c| format!(
                        "'{}'",
                        c.chars().take(100).collect::<String>()
                    ))
                ),
            );
        }
    }
    req.extensions_mut().insert(identity);
    let mut resp = next.run(req).await;
    if let Some(o) = &allowed_origin {
        let h = resp.headers().clone();
        site::add_cors(resp.headers_mut(), o, &h, false);
    }
    resp
}

/// No identity: API callers get a 401, people get the login form.
fn unauthenticated(path: &str, routed: bool, msg: &str) -> Response {
    let is_api = routed
        || path.starts_with("/api/")
        || path.starts_with("/ajax-api/")
        || path.starts_with("/studio/api/");
    if is_api {
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
}

#[cfg(test)]
mod guard_tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn state(dir: &std::path::Path) -> AppState {
        AppState {
            store: Arc::new(store::SqlStore::open(dir.join("m.db")).unwrap()),
            artifacts: artifacts::ArtifactStore::local(dir.join("a")).unwrap(),
            auth: AuthMode::Open,
            max_artifact_bytes: 1 << 20,
            max_request_bytes: 1 << 20,
            site: Arc::new(crate::SitePolicy::default()),
            jobs: None,
            mlflow_webhooks: None,
        }
    }

    async fn status(app: Router, method: &str, path: &str) -> StatusCode {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1")
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap().status()
    }

    /// A route added around the declarations (straight to axum) is refused,
    /// not let through: the guard fails closed.
    #[tokio::test]
    async fn a_route_that_declares_nothing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let declared =
            crate::Routes::<AppState>::new().get("/declared", Access::Read, || async { "ok" });
        let (router, decls) = declared.into_parts();
        let guard = Guard {
            state: s.clone(),
            table: Arc::new(Table::new(decls)),
        };
        let app: Router = router
            .route("/sneaky", get(|| async { "ran" }))
            .layer(axum::middleware::from_fn_with_state(guard, middleware))
            .with_state(s);
        assert_eq!(
            status(app.clone(), "GET", "/declared").await,
            StatusCode::OK
        );
        assert_eq!(
            status(app.clone(), "GET", "/sneaky").await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(app, "DELETE", "/declared").await,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
