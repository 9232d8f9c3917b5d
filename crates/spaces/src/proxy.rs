//! The reverse proxy to a space's JupyterLab. Method, path and query go
//! upstream unchanged (JupyterLab's `base_url` is the mount prefix); the
//! browser's `Host`, `Cookie`, `Authorization` and `Origin` do not, and
//! `Authorization: token <T>` is added. Websockets are checked for a
//! foreign `Origin` (a browser always sends one on a websocket, and the
//! guard's cross-origin check covers state-changing methods only, not this
//! GET), then connected upstream first, so the subprotocol JupyterLab picks
//! can be echoed to the browser, then pumped both ways.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, OriginalUri, Request};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body::{Frame, SizeHint};
use tokio_tungstenite::tungstenite::{self as ts, client::IntoClientRequest};

use crate::SpaceError;
use crate::manager::{Busy, Running, Spaces};

/// Largest websocket message or frame passed through (a kernel's output
/// with a few plots can be large).
const MAX_WS_MESSAGE: usize = 256 << 20;

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Copy `from` without hop-by-hop headers (including those the
/// `Connection` header names) and without `also`.
fn copy_headers(from: &HeaderMap, also: &[HeaderName]) -> HeaderMap {
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(from.len());
    for (k, v) in from {
        let n = k.as_str();
        if HOP_BY_HOP.contains(&n) || named.iter().any(|t| t == n) || also.contains(k) {
            continue;
        }
        out.append(k.clone(), v.clone());
    }
    out
}

/// The request's path and query as the client sent them (before any nesting).
fn path_and_query(req_uri: &Uri, original: Option<&OriginalUri>) -> String {
    let uri = original.map_or(req_uri, |o| &o.0);
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string())
}

fn is_websocket(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::GET
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn auth_value(run: &Running) -> Result<HeaderValue, SpaceError> {
    HeaderValue::from_str(&format!("token {}", run.token))
        .map_err(|e| SpaceError::Io(format!("bad token header: {e}")))
}

/// Proxy one request (HTTP or websocket) to `space`'s JupyterLab, which is
/// started (again) first when it does not run. The caller's right to the
/// space is already checked.
pub(crate) async fn forward(sp: Arc<Spaces>, space: &str, req: Request) -> Response {
    let slot = sp.slot(space);
    let busy = Busy::new(slot.clone());
    if is_websocket(req.method(), req.headers()) {
        return websocket(sp, slot, busy, space, req)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    http(sp, slot, busy, space, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn http(
    sp: Arc<Spaces>,
    slot: Arc<crate::manager::Slot>,
    busy: Busy,
    space: &str,
    req: Request,
) -> Result<Response, SpaceError> {
    let pq = path_and_query(req.uri(), req.extensions().get::<OriginalUri>());
    let (parts, body) = req.into_parts();
    let headers = copy_headers(
        &parts.headers,
        &[
            header::HOST,
            header::COOKIE,
            header::AUTHORIZATION,
            header::ORIGIN,
        ],
    );
    // a request without a body can be sent again when JupyterLab turns out
    // to have just died (before its waiter noticed): restarted, then retried
    let retryable = parts.method == Method::GET || parts.method == Method::HEAD;
    let mut body = Some(body);
    let mut attempt = 0;
    let resp = loop {
        attempt += 1;
        let run = sp.ensure_running(&slot, Default::default()).await?;
        let mut h = headers.clone();
        h.insert(header::AUTHORIZATION, auth_value(&run)?);
        let uri: Uri = format!("http://127.0.0.1:{}{pq}", run.port)
            .parse()
            .map_err(|e| SpaceError::Io(format!("bad upstream URI: {e}")))?;
        let mut up = axum::http::Request::new(body.take().unwrap_or_else(Body::empty));
        *up.method_mut() = parts.method.clone();
        *up.uri_mut() = uri;
        *up.headers_mut() = h;
        match sp.client.request(up).await {
            Ok(r) => break r,
            Err(e) => {
                if retryable
                    && attempt == 1
                    && run.proc.wait_exit(Duration::from_secs(3)).await.is_some()
                {
                    tracing::info!(%space, "JupyterLab died under a request; starting it again");
                    continue;
                }
                return Err(SpaceError::Unreachable {
                    space: space.to_string(),
                    message: format!("{e} (it may have just stopped; try again)"),
                });
            }
        }
    };
    let (mut parts, body) = resp.into_parts();
    parts.headers = copy_headers(&parts.headers, &[]);
    busy.touch();
    let body = Body::new(Tracked {
        inner: body,
        _busy: busy,
    });
    Ok(Response::from_parts(parts, body))
}

/// A response body that keeps its space busy until it is sent or dropped.
struct Tracked {
    inner: hyper::body::Incoming,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn forbidden(msg: String) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({"error_code": "PERMISSION_DENIED", "message": msg})),
    )
        .into_response()
}

async fn websocket(
    sp: Arc<Spaces>,
    slot: Arc<crate::manager::Slot>,
    busy: Busy,
    space: &str,
    req: Request,
) -> Result<Response, SpaceError> {
    // 1. a browser on another site may not drive a kernel
    if let Some(origin) = server::site::cross_origin(req.headers()) {
        tracing::warn!(%origin, space, "refused a cross-origin websocket to a space");
        return Ok(forbidden(format!(
            "cross-origin websocket from '{}' refused: a web page on another site may not use this server's notebooks",
            origin.chars().take(200).collect::<String>()
        )));
    }
    let pq = path_and_query(req.uri(), req.extensions().get::<OriginalUri>());
    let (mut parts, _body) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    // 2. upstream first: JupyterLab picks the subprotocol
    let run = sp.ensure_running(&slot, Default::default()).await?;
    let unreachable = |message: String| SpaceError::Unreachable {
        space: space.to_string(),
        message,
    };
    let mut up_req = format!("ws://127.0.0.1:{}{pq}", run.port)
        .into_client_request()
        .map_err(|e| unreachable(format!("bad websocket URL: {e}")))?;
    up_req
        .headers_mut()
        .insert(header::AUTHORIZATION, auth_value(&run)?);
    let protocols: Vec<&str> = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !protocols.is_empty()
        && let Ok(v) = HeaderValue::from_str(&protocols.join(", "))
    {
        up_req
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    let config = ts::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    let (upstream, up_resp) = match tokio_tungstenite::connect_async_with_config(
        up_req,
        Some(config),
        true,
    )
    .await
    {
        Ok(x) => x,
        Err(ts::Error::Http(r)) => {
            // JupyterLab refused (e.g. 404 for an unknown kernel): say so
            let status = r.status();
            let body = r
                .body()
                .as_deref()
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .chars()
                        .take(300)
                        .collect::<String>()
                })
                .unwrap_or_default();
            let code = if status.is_client_error() {
                "RESOURCE_DOES_NOT_EXIST"
            } else {
                "TEMPORARILY_UNAVAILABLE"
            };
            return Ok((
                    if status.is_client_error() || status.is_server_error() {
                        status
                    } else {
                        StatusCode::BAD_GATEWAY
                    },
                    axum::Json(serde_json::json!({
                        "error_code": code,
                        "message": format!("JupyterLab for space '{space}' refused the websocket ({status}): {body}"),
                    })),
                )
                    .into_response());
        }
        Err(e) => return Err(unreachable(format!("websocket: {e}"))),
    };
    let mut upgrade = upgrade
        .max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE);
    if let Some(p) = up_resp.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
        upgrade.set_selected_protocol(p.clone());
    }
    let space = space.to_string();
    Ok(upgrade
        .on_failed_upgrade(|e| tracing::debug!("websocket upgrade failed: {e}"))
        .on_upgrade(move |client| pump(client, upstream, busy, space)))
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Pass messages both ways until either side closes.
async fn pump(client: WebSocket, upstream: Upstream, busy: Busy, space: String) {
    let (mut c_tx, mut c_rx) = client.split();
    let (mut u_tx, mut u_rx) = upstream.split();
    let to_upstream = async {
        while let Some(Ok(m)) = c_rx.next().await {
            busy.touch();
            let close = matches!(m, ws::Message::Close(_));
            if u_tx.send(to_tungstenite(m)).await.is_err() || close {
                break;
            }
        }
    };
    let to_client = async {
        while let Some(Ok(m)) = u_rx.next().await {
            busy.touch();
            let Some(m) = from_tungstenite(m) else {
                continue;
            };
            let close = matches!(m, ws::Message::Close(_));
            if c_tx.send(m).await.is_err() || close {
                break;
            }
        }
    };
    tokio::select! {
        _ = to_upstream => {}
        _ = to_client => {}
    }
    let _ = u_tx.close().await;
    let _ = c_tx.close().await;
    tracing::debug!(%space, "websocket closed");
    drop(busy);
}

fn to_tungstenite(m: ws::Message) -> ts::Message {
    match m {
        ws::Message::Text(t) => ts::Message::Text(t.as_str().into()),
        ws::Message::Binary(b) => ts::Message::Binary(b),
        ws::Message::Ping(b) => ts::Message::Ping(b),
        ws::Message::Pong(b) => ts::Message::Pong(b),
        ws::Message::Close(f) => ts::Message::Close(f.map(|f| ts::protocol::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
    }
}

fn from_tungstenite(m: ts::Message) -> Option<ws::Message> {
    Some(match m {
        ts::Message::Text(t) => ws::Message::Text(t.as_str().into()),
        ts::Message::Binary(b) => ws::Message::Binary(b),
        ts::Message::Ping(b) => ws::Message::Ping(b),
        ts::Message::Pong(b) => ws::Message::Pong(b),
        ts::Message::Close(f) => ws::Message::Close(f.map(|f| ws::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        ts::Message::Frame(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_named_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::COOKIE, HeaderValue::from_static("atelier_token=x"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.append("x-multi", HeaderValue::from_static("a"));
        h.append("x-multi", HeaderValue::from_static("b"));
        let out = copy_headers(&h, &[header::COOKIE]);
        assert!(out.get("x-secret").is_none());
        assert!(out.get(header::CONNECTION).is_none());
        assert!(out.get(header::TRANSFER_ENCODING).is_none());
        assert!(out.get(header::COOKIE).is_none());
        assert_eq!(out.get(header::CONTENT_TYPE).unwrap(), "application/json");
        assert_eq!(out.get_all("x-multi").iter().count(), 2);
    }

    #[test]
    fn websocket_detection() {
        let mut h = HeaderMap::new();
        assert!(!is_websocket(&Method::GET, &h));
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(is_websocket(&Method::GET, &h));
        assert!(!is_websocket(&Method::POST, &h));
    }

    #[test]
    fn the_original_path_and_query_go_upstream() {
        let u: Uri = "/notebooks/a/api/contents?type=directory".parse().unwrap();
        assert_eq!(
            path_and_query(&u, None),
            "/notebooks/a/api/contents?type=directory"
        );
        let nested: Uri = "/api/x".parse().unwrap();
        assert_eq!(
            path_and_query(&nested, Some(&OriginalUri(u))),
            "/notebooks/a/api/contents?type=directory"
        );
    }
}
