//! The Studio: pages from the `studio` crate, its static assets, the login
//! form, and the live-update stream (Server-Sent Events) pages listen to.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures::Stream;

use crate::AppState;
use crate::auth::{AuthMode, COOKIE, hash_token};
use crate::routes::{Access, BodyKind, Routes};

/// The Studio's own routes; its pages are the application's fallback
/// ([`page`]), which needs a signed-in identity like any read.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/static/{*path}", Access::Public, asset)
        // (a counter of changes, no data: anyone signed in, whatever their projects)
        .get("/studio/api/events", Access::Account, events)
        .get("/login", Access::Public, login_form)
        .add(Method::POST, "/login", Access::Public, BodyKind::Raw, login)
        .get("/logout", Access::Public, logout_form)
        .add(
            Method::POST,
            "/logout",
            Access::Public,
            BodyKind::Raw,
            logout,
        )
}

async fn logout_form() -> Response {
    let mut r = Html(studio::logout_page()).into_response();
    page_headers(&mut r);
    r
}

async fn asset(Path(path): Path<String>) -> Response {
    match studio::asset(&path) {
        Some(a) => {
            let mut r = a.body.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

pub async fn page(uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/ajax-api/") {
        return crate::error::ApiError::new(
            crate::error::ErrorCode::EndpointNotFound,
            format!("No API endpoint at {path}"),
        )
        .into_response();
    }
    match studio::page(path, uri.query().unwrap_or("")) {
        Some(html) => {
            let mut r = Html(html).into_response();
            page_headers(&mut r);
            r
        }
        None => {
            let mut r = (StatusCode::NOT_FOUND, Html(studio::not_found_page(path))).into_response();
            page_headers(&mut r);
            r
        }
    }
}

/// Headers on every Studio document: its Content-Security-Policy, no
/// framing by other sites, no MIME sniffing, no referrer to other sites.
fn page_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::site::STUDIO_CSP),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// `event: change` with the store's write counter whenever it moves.
async fn events(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let store = s.store.clone();
    let stream = futures::stream::unfold((store, u64::MAX), |(store, last)| async move {
        loop {
            let g = store.write_generation();
            if g != last {
                let ev = Event::default().event("change").data(g.to_string());
                return Some((Ok(ev), (store, g)));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn login_form(State(s): State<AppState>) -> Response {
    if s.auth == AuthMode::Open {
        return Redirect::to("/").into_response();
    }
    let mut r = Html(studio::login_page(None)).into_response();
    page_headers(&mut r);
    r
}

/// The login form's body: a name, a password (at most
/// [`crate::people::MAX_PASSWORD`] bytes) or a 68-character token fit many times over.
const MAX_LOGIN_BODY: usize = 8 << 10;

fn login_refused(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, Html(studio::login_page(Some(msg)))).into_response();
    page_headers(&mut r);
    r
}

/// `POST /login`: a name and password open a session (failures are
/// throttled per name); an API token is checked and kept in the cookie as
/// before.
async fn login(
    State(s): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: axum::body::Body,
) -> Response {
    let address = connect.map(|c| c.0.0.to_string()).unwrap_or_default();
    // read no more than a login form can be, signed in or not
    let Ok(body) = axum::body::to_bytes(body, MAX_LOGIN_BODY).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the login form is at most {MAX_LOGIN_BODY} bytes"),
        )
            .into_response();
    };
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let (user, password, token) = (
        field("user").trim().to_string(),
        field("password"),
        field("token").trim().to_string(),
    );
    let event = |actor: String, action: &'static str, status: StatusCode| {
        let (s, address) = (s.clone(), address.clone());
        async move {
            crate::audit::sign_in_event(&s, &actor, &address, action, status.as_u16()).await;
        }
    };
    let secret = if !user.is_empty() {
        match crate::people::sign_in(&s, user.clone(), password).await {
            Ok(secret) => {
                event(user, "sign-in", StatusCode::FOUND).await;
                secret
            }
            Err(crate::people::SignInError::Wrong) => {
                event(user, "sign-in-failed", StatusCode::UNAUTHORIZED).await;
                return login_refused(
                    StatusCode::UNAUTHORIZED,
                    "That name and password do not match.",
                );
            }
            Err(crate::people::SignInError::Throttled(minutes)) => {
                event(user, "sign-in-throttled", StatusCode::TOO_MANY_REQUESTS).await;
                let mut r = login_refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Too many failed sign-ins for this name: try again in {minutes} minutes."
                    ),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(minutes as u64 * 60));
                return r;
            }
            Err(crate::people::SignInError::Other(e)) => return e.into_response(),
        }
    } else {
        let h = hash_token(&token);
        let found = if token.is_empty() || token.starts_with(crate::auth::SESSION_PREFIX) {
            None
        } else {
            s.db(move |st| st.lookup_token(&h)).await.ok().flatten()
        };
        let Some(cred) = found else {
            event("(token)".into(), "sign-in-failed", StatusCode::UNAUTHORIZED).await;
            return login_refused(StatusCode::UNAUTHORIZED, "That token is not valid.");
        };
        event(cred.user, "sign-in", StatusCode::FOUND).await;
        token
    };
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`: end the session (server-side, so a copied cookie dies
/// with it) and clear the cookie. A POST, so that another site cannot sign
/// anyone out (the guard refuses cross-site POSTs); `GET /logout` asks.
async fn logout(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(secret) = crate::auth::cookie_secret(&headers) {
        crate::people::sign_out(&s, &secret).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("atelier_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}
