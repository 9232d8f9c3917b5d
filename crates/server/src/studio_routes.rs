//! The Studio: pages from the `studio` crate, its static assets, the login
//! form, and the live-update stream (Server-Sent Events) pages listen to.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use futures::Stream;

use crate::AppState;
use crate::auth::{AuthMode, COOKIE, hash_token};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/{*path}", get(asset))
        .route("/studio/api/events", get(events))
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout))
        .fallback(page)
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

async fn page(uri: Uri) -> Response {
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
            r.headers_mut().insert(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("SAMEORIGIN"),
            );
            r
        }
        None => (
            StatusCode::NOT_FOUND,
            Html("<h1>404</h1><p>No such page. <a href=\"/\">Back to the Studio</a></p>"),
        )
            .into_response(),
    }
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
    Html(studio::login_page(None)).into_response()
}

async fn login(State(s): State<AppState>, body: String) -> Response {
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let h = hash_token(&token);
    let ok = !token.is_empty() && matches!(s.db(move |st| st.lookup_token(&h)).await, Ok(Some(_)));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Html(studio::login_page(Some("That token is not valid."))),
        )
            .into_response();
    }
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout() -> Response {
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("atelier_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}
