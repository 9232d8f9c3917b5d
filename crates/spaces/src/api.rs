//! The routes: the proxy under `/notebooks/{space}` and the spaces API
//! under `/api/atelier/spaces`.
//!
//! | method | path | access | |
//! |---|---|---|---|
//! | GET, POST, PUT, PATCH, DELETE | `/notebooks/{space}`, `/notebooks/{space}/`, `/notebooks/{space}/{*rest}` | write | the space's JupyterLab (HTTP and websockets), started on demand; a plain `GET /notebooks/{space}` or `…/` redirects to `…/lab` |
//! | GET | `/api/atelier/spaces` | read | `{"spaces": [status…]}`: the caller's space (admins: every space) |
//! | GET | `/api/atelier/spaces/{space}` | read | one status |
//! | POST | `/api/atelier/spaces/{space}/start` | write | start (if needed) and wait until ready → status |
//! | POST | `/api/atelier/spaces/{space}/stop` | write | `{"stopped": bool, "space": status}` |
//!
//! A caller may use only their own space ([`crate::space_name_for`] of
//! their identity), admins any; another space answers 404 as if it did not
//! exist. A JupyterLab runs code, so the proxy needs the editor role.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use server::Identity;
use server::routes::{Access, BodyKind, Routes};

use crate::{SpaceError, Spaces, space_name_for, valid_space_name};

/// Every route of the spaces, state applied (for `server::router_with`).
pub fn routes(spaces: Arc<Spaces>) -> Routes {
    let mut r = Routes::<Arc<Spaces>>::new();
    for m in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        r = r
            .add(
                m.clone(),
                "/notebooks/{space}",
                Access::Write,
                BodyKind::Raw,
                proxy_bare,
            )
            // (a catch-all never matches an empty rest)
            .add(
                m.clone(),
                "/notebooks/{space}/",
                Access::Write,
                BodyKind::Raw,
                proxy_bare,
            )
            // streamed through to JupyterLab, whose own limits apply: a
            // notebook with many plots may be larger than --max-request-bytes
            .add(
                m,
                "/notebooks/{space}/{*rest}",
                Access::Write,
                BodyKind::Upload,
                proxy,
            );
    }
    r.get("/api/atelier/spaces", Access::Read, list)
        .get("/api/atelier/spaces/{space}", Access::Read, describe)
        .post("/api/atelier/spaces/{space}/start", Access::Write, start)
        .post("/api/atelier/spaces/{space}/stop", Access::Write, stop)
        .with_state(spaces)
}

/// The space of a caller (no identity: the server runs without the guard,
/// as authentication off).
pub fn space_of(who: Option<&Identity>) -> String {
    space_name_for(who.map(|w| w.name.as_str()))
}

/// A server admin (not a project's admin: a space is a person's, in no
/// project, so a project role says nothing about it).
fn is_admin(who: Option<&Identity>) -> bool {
    who.is_some_and(|w| w.admin)
}

/// `space` if the caller may use it: a valid name (400) that is the
/// caller's own or the caller is an admin (404 otherwise).
fn authorize(space: &str, who: Option<&Identity>) -> Result<(), SpaceError> {
    if !valid_space_name(space) {
        return Err(SpaceError::InvalidName(
            space.chars().take(60).collect::<String>(),
        ));
    }
    if is_admin(who) || space_of(who) == space {
        Ok(())
    } else {
        Err(SpaceError::NotFound(space.to_string()))
    }
}

type Who = Option<Extension<Identity>>;

fn who(w: &Who) -> Option<&Identity> {
    w.as_ref().map(|Extension(i)| i)
}

async fn proxy(
    State(sp): State<Arc<Spaces>>,
    Path(params): Path<HashMap<String, String>>,
    w: Who,
    req: Request,
) -> Response {
    let space = params.get("space").map_or("", String::as_str);
    if let Err(e) = authorize(space, who(&w)) {
        return e.into_response();
    }
    crate::proxy::forward(sp, space, req).await
}

async fn proxy_bare(
    State(sp): State<Arc<Spaces>>,
    Path(space): Path<String>,
    w: Who,
    req: Request,
) -> Response {
    if let Err(e) = authorize(&space, who(&w)) {
        return e.into_response();
    }
    if req.method() == Method::GET && !req.headers().contains_key(axum::http::header::UPGRADE) {
        return Redirect::to(&format!("/notebooks/{space}/lab")).into_response();
    }
    crate::proxy::forward(sp, &space, req).await
}

async fn list(State(sp): State<Arc<Spaces>>, w: Who) -> Response {
    let who = who(&w);
    let spaces = if is_admin(who) {
        let mut all = sp.list();
        let own = space_of(who);
        if !all.iter().any(|s| s.space == own) {
            all.push(sp.status(&own));
            all.sort_by(|a, b| a.space.cmp(&b.space));
        }
        all
    } else {
        vec![sp.status(&space_of(who))]
    };
    Json(serde_json::json!({ "spaces": spaces, "own": space_of(who) })).into_response()
}

async fn describe(State(sp): State<Arc<Spaces>>, Path(space): Path<String>, w: Who) -> Response {
    match authorize(&space, who(&w)) {
        Ok(()) => Json(sp.status(&space)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn start(State(sp): State<Arc<Spaces>>, Path(space): Path<String>, w: Who) -> Response {
    if let Err(e) = authorize(&space, who(&w)) {
        return e.into_response();
    }
    match sp.ensure(&space, Default::default()).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn stop(State(sp): State<Arc<Spaces>>, Path(space): Path<String>, w: Who) -> Response {
    if let Err(e) = authorize(&space, who(&w)) {
        return e.into_response();
    }
    let stopped = sp.stop(&space).await;
    Json(serde_json::json!({ "stopped": stopped, "space": sp.status(&space) })).into_response()
}
