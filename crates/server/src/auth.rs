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

/// Who is making the request, and what they may do in its project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// Their role in the request's project (for a server admin, their
    /// credential's role; capped by it for anyone).
    pub role: Role,
    /// A server admin: manages projects and people.
    pub admin: bool,
    /// For an endpoint invocation key, the endpoint it may invoke (and
    /// nothing else; it belongs to no project).
    pub key_for: Option<String>,
}

/// A Studio session's secret starts with this (an API token's with `atl_`).
pub const SESSION_PREFIX: &str = "ats_";

/// Why a credential was not enough, decided in the store's trip.
enum Refused {
    /// Unknown, expired or revoked.
    Credential,
    /// No role in the `default` project (which exists for everyone).
    NoRoleInDefault(String),
    /// An endpoint invocation key used for anything but invoking its endpoint.
    KeyScope(String),
}

/// The route endpoint invocation keys may call.
pub const INVOCATIONS: &str = "/endpoints/{name}/invocations";

/// The caller's identity in the project they name: one trip to the store for
/// the credential (`None`: open mode, the local admin) and their role there.
/// A project that does not exist, or where they have no role, is the same
/// NotFound (no existence leak).
fn identify(
    st: &dyn store::MetadataStore,
    secret: Option<&str>,
    named: Option<&str>,
    invoking: Option<&str>,
) -> store::Result<Result<(Identity, String), Refused>> {
    let hash = secret.map(hash_token);
    let session = secret.is_some_and(|t| t.starts_with(SESSION_PREFIX));
    let found = st.authenticate(hash.as_deref(), session, named)?;
    let cred = match (secret, found.credential) {
        (None, _) => store::Credential {
            user: "local".into(),
            is_admin: true,
            cap: "admin".into(),
            service: true,
            endpoint: None,
            workspace: None,
        },
        (Some(_), Some(c)) => c,
        (Some(_), None) => return Ok(Err(Refused::Credential)),
    };
    if let Some(ep) = &cred.endpoint {
        // an endpoint invocation key: that endpoint's invocations, nothing else
        if invoking != Some(ep.as_str()) {
            return Ok(Err(Refused::KeyScope(ep.clone())));
        }
        return Ok(Ok((
            Identity {
                name: cred.user,
                role: Role::Viewer,
                admin: false,
                key_for: Some(ep.clone()),
            },
            named.unwrap_or(store::DEFAULT_WORKSPACE).to_string(),
        )));
    }
    let cap = Role::parse(&cred.cap).unwrap_or(Role::Viewer);
    let ws = named.unwrap_or(store::DEFAULT_WORKSPACE);
    let missing = || store::StoreError::NotFound(format!("Workspace '{ws}' not found"));
    // a token bound to one project (a job's) acts there only
    if let (Some(home), Some(asked)) = (&cred.workspace, named)
        && home != asked
    {
        return Err(missing());
    }
    let role = match named {
        // the workspace routes: a server admin manages them; anyone reads their own
        None if cred.is_admin => cap,
        None => Role::Viewer,
        // a server admin, or a service token (its role in every project)
        Some(_) if cred.is_admin || cred.service => {
            if !found.workspace_exists {
                return Err(missing());
            }
            cap
        }
        Some(ws) => match found.member_role {
            Some(r) => Role::parse(&r).unwrap_or(Role::Viewer).min(cap),
            None if ws == store::DEFAULT_WORKSPACE => {
                return Ok(Err(Refused::NoRoleInDefault(cred.user)));
            }
            None => return Err(missing()),
        },
    };
    Ok(Ok((
        Identity {
            name: cred.user,
            role,
            admin: cred.is_admin,
            key_for: None,
        },
        ws.to_string(),
    )))
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
    cookie_secret(req.headers())
}

/// The Studio's sign-in cookie (a session's secret, or an API token).
pub fn cookie_secret(headers: &header::HeaderMap) -> Option<String> {
    headers
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
pub async fn middleware(State(g): State<Guard>, req: Request, next: Next) -> Response {
    // A request refused here leaves its body unread, so the connection cannot
    // serve another request: say so, or a keep-alive client sends its next
    // request on a connection the server is closing (and gets no answer).
    let sent_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let passed = std::sync::atomic::AtomicBool::new(false);
    let mut resp = check(g, req, next, &passed).await;
    if sent_body && !passed.load(std::sync::atomic::Ordering::Relaxed) {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// [`middleware`]'s checks; `passed` is set when the request goes on to its handler.
async fn check(
    g: Guard,
    mut req: Request,
    next: Next,
    passed: &std::sync::atomic::AtomicBool,
) -> Response {
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
    // (no declared route: a Studio page, whose data comes through declared routes, or a 404 —
    // open to anyone signed in, in no project in particular)
    let access = declared.map_or(Access::Account, |(a, _)| a);
    let path = req.uri().path().to_string();
    // the project the request works in (none: the workspace routes)
    let named = match crate::workspace::requested(&req) {
        Ok(_) if access == Access::Account => None,
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    // 3. who is asking, and their role in that project
    let secret = match g.state.auth {
        AuthMode::Open => None,
        AuthMode::Required if access == Access::Public => Some(None),
        AuthMode::Required => match token_from(&req) {
            Some(t) => Some(Some(t)),
            None => {
                return unauthenticated(
                    &path,
                    matched.is_some(),
                    "Authentication required: send an API token as 'Authorization: Bearer <token>' (MLFLOW_TRACKING_TOKEN for the mlflow client)",
                );
            }
        },
    };
    let local_here = matches!(g.state.auth, AuthMode::Open)
        && named
            .as_deref()
            .is_none_or(|n| n == store::DEFAULT_WORKSPACE);
    let (identity, ws) = match secret {
        // open mode in the default workspace: the local admin, no lookups
        None if local_here => (
            Identity {
                name: "local".into(),
                role: Role::Admin,
                admin: true,
                key_for: None,
            },
            store::DEFAULT_WORKSPACE.to_string(),
        ),
        // a public route in required mode: nobody in particular, no lookups
        Some(None) => (
            Identity {
                name: "anonymous".into(),
                role: Role::Viewer,
                admin: false,
                key_for: None,
            },
            store::DEFAULT_WORKSPACE.to_string(),
        ),
        secret => {
            let secret = secret.flatten();
            let named2 = named.clone();
            // the endpoint a request invokes, if it does (what an invocation key may do)
            let invoking = matched
                .as_ref()
                .filter(|m| m.as_str() == INVOCATIONS)
                .and_then(|_| path.strip_prefix("/endpoints/"))
                .and_then(|p| p.strip_suffix("/invocations"))
                .map(str::to_string);
            let found = if g.state.store.reads_in_place() {
                // (SQLite: a few index probes, cheaper than the hop to the blocking pool)
                identify(
                    g.state.store.as_ref(),
                    secret.as_deref(),
                    named2.as_deref(),
                    invoking.as_deref(),
                )
                .map_err(crate::error::ApiError::from)
            } else {
                g.state
                    .db(move |st| {
                        identify(
                            st,
                            secret.as_deref(),
                            named2.as_deref(),
                            invoking.as_deref(),
                        )
                    })
                    .await
            };
            match found {
                Ok(Ok(found)) => found,
                Ok(Err(Refused::Credential)) => {
                    return unauthenticated(
                        &path,
                        matched.is_some(),
                        "Invalid API token (unknown, expired or revoked)",
                    );
                }
                Ok(Err(Refused::NoRoleInDefault(who))) => {
                    return refuse(
                        ErrorCode::PermissionDenied,
                        format!(
                            "'{who}' has no role in the default project: name one of your projects with the X-MLFLOW-WORKSPACE header (mlflow.set_workspace, MLFLOW_WORKSPACE)"
                        ),
                    );
                }
                Ok(Err(Refused::KeyScope(ep))) => {
                    return refuse(
                        ErrorCode::PermissionDenied,
                        format!(
                            "this is an invocation key of endpoint '{ep}': it may only POST /endpoints/{ep}/invocations"
                        ),
                    );
                }
                Err(e) => return e.into_response(),
            }
        }
    };
    // 4. the route's declared permission and body
    let needed = match access {
        Access::Public | Access::Read | Access::Account => Role::Viewer,
        Access::Write => Role::Editor,
        Access::Admin => Role::Admin,
    };
    if identity.role < needed {
        let msg = if named.is_none() && !identity.admin {
            format!(
                "'{}' is not a server admin; {method} {path} needs one",
                identity.name
            )
        } else {
            format!(
                "'{}' has the {} role; {method} {path} needs the {} role",
                identity.name,
                identity.role.as_str(),
                needed.as_str()
            )
        };
        return refuse(ErrorCode::PermissionDenied, msg);
    }
    // the declared body length (the body checks and the audit record read it)
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some((_, body)) = declared
        && site::is_unsafe(&method)
    {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?"));
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
    // 5. a change is recorded in the audit log with the answer it got
    let audit = match (&matched, declared) {
        (Some(m), Some(_)) if crate::audit::audited(&method, m.as_str(), access) => {
            Some(m.as_str().to_string())
        }
        _ => None,
    };
    let mut audit_body = None;
    if audit.is_some()
        && matches!(declared, Some((_, BodyKind::Json)))
        && length.is_some_and(|n| n <= crate::audit::MAX_RECORDED_BODY)
    {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, crate::audit::MAX_RECORDED_BODY as usize).await {
            Ok(b) => {
                audit_body = Some(b.clone());
                req = Request::from_parts(parts, axum::body::Body::from(b));
            }
            Err(e) => {
                return refuse(
                    ErrorCode::MalformedRequest,
                    format!("could not read the request body: {e}"),
                );
            }
        }
    }
    let audit = audit.map(|template| store::AuditEntry {
        at_ms: store::now_ms(),
        actor: identity.name.clone(),
        address: req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_default(),
        workspace: if named.is_some() {
            ws.clone()
        } else {
            String::new()
        },
        action: format!("{method} {template}"),
        target: path.clone(),
        status: 0,
        detail: crate::audit::detail(req.uri().query(), audit_body.as_ref(), length),
        ..Default::default()
    });
    req.extensions_mut().insert(identity);
    req.extensions_mut().insert(crate::workspace::Ws(ws));
    passed.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut resp = next.run(req).await;
    if let Some(mut e) = audit {
        e.status = i64::from(resp.status().as_u16());
        crate::audit::record(&g.state, e).await;
    }
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
