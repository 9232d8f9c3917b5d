//! HTTP: invocations, ping, `/metrics`, and the endpoint management API
//! under `/api/atelier/endpoints` (the Studio and `atelier deploy` use
//! it).
//!
//! | method | path | |
//! |---|---|---|
//! | POST | `/endpoints/<name>/invocations` | predict |
//! | GET | `/endpoints/<name>/ping` | 200 when the endpoint is up |
//! | GET | `/metrics` | Prometheus text |
//! | GET, POST | `/api/atelier/endpoints` | list, create (`{"name", "model"}` or `{"name", "variants": [{"name", "model", "weight"}]}`, `data_capture`, `max_concurrency`, `max_payload_bytes`) |
//! | GET, PUT, DELETE | `/api/atelier/endpoints/<name>` | describe, update, delete |
//! | GET | `/api/atelier/endpoints/<name>/metrics` | totals and 5-s history per variant |
//! | GET | `/api/atelier/endpoints/<name>/capture?from_ms=&to_ms=&max_results=` | captured records |
//! | GET, POST, DELETE | `/api/atelier/endpoints/<name>/shadow` | the shadow test and its comparison (`?bucket_seconds=`), start one (`{"model", "sampling_percentage", "duration_seconds", "production_variant", "variant"}`), stop it |
//! | POST | `/api/atelier/endpoints/<name>/shadow/promote` | the shadow's model becomes the production variant's |
//! | GET, POST | `/api/atelier/endpoints/<name>/keys` | invocation keys: list, create (`{"name"}` → the secret, once) |
//! | DELETE | `/api/atelier/endpoints/<name>/keys/<key>` | revoke a key |

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use server::auth::Identity;
use server::routes::{Access, BodyKind, Routes};
use server::workspace::Ws;

use crate::codec::{self, Format};
use crate::endpoint::{EndpointRequest, Live};
use crate::error::{Result, ServingError};
use crate::{Serving, capture};

pub const TARGET_VARIANT: &str = "x-atelier-target-variant";
pub const INVOKED_VARIANT: &str = "x-atelier-invoked-variant";
pub const INFERENCE_ID: &str = "x-atelier-inference-id";
/// Bodies above this are predicted on the blocking pool.
const INLINE_BYTES: usize = 256 * 1024;

/// The endpoint routes, with their state applied (for `server::router_with`).
/// Invoking a model needs a signed-in identity (viewers included, as
/// SageMaker's separate InvokeEndpoint right); managing endpoints needs the
/// editor role.
pub fn router(s: Serving) -> Routes {
    use Access::{Read, Write};
    Routes::new()
        .add(
            Method::POST,
            "/endpoints/{name}/invocations",
            Read,
            BodyKind::Raw,
            invoke,
        )
        .get("/endpoints/{name}/ping", Read, ping)
        .get("/metrics", Read, prometheus)
        .get("/api/atelier/endpoints", Read, list)
        .post("/api/atelier/endpoints", Write, create)
        .get("/api/atelier/endpoints/{name}", Read, describe)
        .put("/api/atelier/endpoints/{name}", Write, update)
        .delete("/api/atelier/endpoints/{name}", Write, delete)
        .get("/api/atelier/endpoints/{name}/metrics", Read, stats)
        .get("/api/atelier/endpoints/{name}/capture", Read, captured)
        .get("/api/atelier/endpoints/{name}/shadow", Read, shadow_get)
        .post("/api/atelier/endpoints/{name}/shadow", Write, shadow_start)
        .delete("/api/atelier/endpoints/{name}/shadow", Write, shadow_stop)
        .post(
            "/api/atelier/endpoints/{name}/shadow/promote",
            Write,
            shadow_promote,
        )
        .get("/api/atelier/endpoints/{name}/keys", Read, list_keys)
        .post("/api/atelier/endpoints/{name}/keys", Write, create_key)
        .delete(
            "/api/atelier/endpoints/{name}/keys/{key}",
            Write,
            revoke_key,
        )
        .with_state(s)
}

/// The endpoint a request names in its path (`{name}`), refused as missing
/// (404, no existence leak) when it belongs to another project than the
/// request's. An endpoint invocation key is bound to its endpoint instead
/// (the guard allows it that endpoint's invocations only).
struct Named(String);

impl axum::extract::FromRequestParts<Serving> for Named {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &Serving,
    ) -> std::result::Result<Self, Self::Rejection> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some((_, name)) = params.iter().find(|(k, _)| *k == "name") else {
            return Err(
                ServingError::Internal("the route names no endpoint".into()).into_response()
            );
        };
        let name = name.to_string();
        let keyed = parts
            .extensions
            .get::<Identity>()
            .is_some_and(|who| who.key_for.is_some());
        if !keyed {
            let ws = parts
                .extensions
                .get::<Ws>()
                .map_or(store::DEFAULT_WORKSPACE, |w| w.0.as_str());
            if s.workspace_of(&name).is_some_and(|home| home != ws) {
                return Err(
                    ServingError::NotFound(format!("no endpoint named '{name}'")).into_response(),
                );
            }
        }
        Ok(Named(name))
    }
}

fn header_str<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn invoke(
    State(s): State<Serving>,
    Named(name): Named,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(slot) = s.slot(&name) else {
        if let Some(why) = s.failure(&name) {
            return ServingError::Internal(format!(
                "endpoint '{name}' is not in service: {why}; deploy it again"
            ))
            .into_response();
        }
        return ServingError::NotFound(format!(
            "no endpoint named '{name}'; create it with `atelier deploy` or POST /api/atelier/endpoints"
        ))
        .into_response();
    };
    let live = slot.current();
    let Ok(_permit) = live.limiter.clone().try_acquire_owned() else {
        slot.metrics.overloaded.fetch_add(1, Relaxed);
        // read (and drop) the payload so the client gets the 503, not a reset
        drain(body, live.config.max_payload_bytes).await;
        return ServingError::Overloaded(format!(
            "endpoint '{name}' is at its limit of {} invocations in flight; retry shortly",
            live.config.max_concurrency
        ))
        .into_response();
    };
    let reject = |e: ServingError| {
        slot.metrics.rejected.fetch_add(1, Relaxed);
        e.into_response()
    };
    // the variant first: a bad target header needs no body
    let variant = match header_str(&headers, TARGET_VARIANT) {
        Some(t) => match live.variant(t) {
            Some(v) => v,
            None => {
                let names: Vec<&str> = live.variants.iter().map(|v| &*v.name).collect();
                return reject(ServingError::BadRequest(format!(
                    "endpoint '{name}' has no variant '{t}'; its variants are: {}",
                    names.join(", ")
                )));
            }
        },
        None => live.pick(rand::random::<f64>()),
    };
    let limit = live.config.max_payload_bytes;
    let too_large = |n: Option<usize>| {
        ServingError::PayloadTooLarge(format!(
            "the payload{} is larger than endpoint '{name}' accepts ({limit} bytes, max_payload_bytes); send fewer rows per request",
            n.map_or(String::new(), |n| format!(" ({n} bytes)"))
        ))
    };
    if let Some(n) =
        header_str(&headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok())
        && n > limit
    {
        drain(body, DRAIN_BYTES).await;
        return reject(too_large(Some(n)));
    }
    let body = match read_body(body, limit).await {
        Some(b) => b,
        None => return reject(too_large(None)),
    };
    let inference_id = header_str(&headers, INFERENCE_ID).map(str::to_string);
    let predict_started = Instant::now();
    let result = answer(variant, &headers, body.clone(), inference_id.as_deref()).await;
    let predict_ms = predict_started.elapsed().as_secs_f64() * 1000.0;
    let elapsed = started.elapsed().as_secs_f64();
    let c = &live.config.data_capture;
    // a shadow test copies a share of this variant's requests: queued, never awaited
    let now_ms = store::now_ms();
    let shadow = live.shadow.as_ref().filter(|sh| {
        sh.production == variant.name
            && sh.config.running(now_ms)
            && rand::random::<f64>() * 100.0 < sh.config.sampling_percentage
    });
    let sampled = c.enabled
        && (c.capture_input || c.capture_output)
        && rand::random::<f64>() * 100.0 < c.sampling_percentage;
    let ct = || header_str(&headers, header::CONTENT_TYPE.as_str()).map(str::to_string);
    let shadow_meta = shadow.map(|sh| {
        let event_id = uuid::Uuid::now_v7().to_string();
        let queued = s.shadow_queue().offer(crate::shadow::Copy {
            shadow: sh.clone(),
            body: body.clone(),
            content_type: ct(),
            inference_id: inference_id.clone(),
            event_id: event_id.clone(),
            time_ms: now_ms,
            metrics: slot.metrics.clone(),
        });
        let (status, error) = match &result {
            Ok(_) => (200, None),
            Err(e) => (e.status().as_u16(), Some(e.to_string())),
        };
        (
            event_id,
            capture::ShadowMeta {
                id: sh.id.to_string(),
                role: "production".into(),
                latency_ms: predict_ms,
                status,
                error,
                copy: Some(if queued { "queued" } else { "dropped" }.into()),
                monitored: sampled && status == 200,
            },
        )
    });
    match result {
        Ok((fmt, input_fmt, out, rows)) => {
            variant.metrics.observe(elapsed, rows, 200);
            if sampled || shadow_meta.is_some() {
                let ct = ct().unwrap_or_else(|| input_fmt.content_type().to_string());
                // a shadow pair always keeps the production answer (for the comparison)
                let keep_output = c.capture_output || shadow_meta.is_some();
                let (event_id, meta) = shadow_meta.unzip();
                s.capture().offer(capture::Pending {
                    folder: live.capture.clone(),
                    variant: variant.name.clone(),
                    time_ms: now_ms,
                    inference_id,
                    input: c.capture_input.then_some((ct, body)),
                    output: keep_output.then(|| (fmt.content_type().to_string(), out.clone())),
                    metrics: slot.metrics.clone(),
                    event_id,
                    shadow: meta,
                });
            }
            let mut r = Response::new(Body::from(out));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(fmt.content_type()),
            );
            if let Ok(v) = HeaderValue::from_str(&variant.name) {
                h.insert(INVOKED_VARIANT, v);
            }
            r
        }
        Err(e) => {
            variant.metrics.observe(elapsed, 0, e.status().as_u16());
            if let Some((event_id, meta)) = shadow_meta {
                // the failed production side of a pair: the comparison counts it
                s.capture().offer(capture::Pending {
                    folder: live.capture.clone(),
                    variant: variant.name.clone(),
                    time_ms: now_ms,
                    inference_id,
                    input: None,
                    output: None,
                    metrics: slot.metrics.clone(),
                    event_id: Some(event_id),
                    shadow: Some(meta),
                });
            }
            let mut r = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&variant.name) {
                r.headers_mut().insert(INVOKED_VARIANT, v);
            }
            r
        }
    }
}

/// Refused payloads are read and dropped up to this size, so that the
/// client sees the answer rather than a reset connection; beyond it the
/// connection is closed.
const DRAIN_BYTES: usize = 64 << 20;

/// Read and discard a body (at most `max` bytes).
async fn drain(body: Body, max: usize) {
    use futures::StreamExt;
    let mut s = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = s.next().await {
        seen += chunk.len();
        if seen > max {
            break;
        }
    }
}

/// The whole body, or `None` when it is larger than `limit` (the rest is
/// drained).
async fn read_body(body: Body, limit: usize) -> Option<Bytes> {
    use futures::StreamExt;
    let mut s = body.into_data_stream();
    let mut parts: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.ok()?;
        total += chunk.len();
        if total > limit {
            let mut seen = total;
            while let Some(Ok(c)) = s.next().await {
                seen += c.len();
                if seen > DRAIN_BYTES {
                    break;
                }
            }
            return None;
        }
        parts.push(chunk);
    }
    Some(match parts.len() {
        0 => Bytes::new(),
        1 => parts.pop().unwrap_or_default(),
        _ => {
            let mut v = Vec::with_capacity(total);
            for p in &parts {
                v.extend_from_slice(p);
            }
            Bytes::from(v)
        }
    })
}

async fn answer(
    variant: &crate::endpoint::LiveVariant,
    headers: &HeaderMap,
    body: Bytes,
    inference_id: Option<&str>,
) -> Result<(Format, Format, Bytes, usize)> {
    if let Some(id) = inference_id
        && (id.is_empty() || id.len() > 64)
    {
        return Err(ServingError::BadRequest(
            "X-Atelier-Inference-Id must be 1 to 64 characters".into(),
        ));
    }
    let input =
        Format::from_content_type(header_str(headers, header::CONTENT_TYPE.as_str()), &body)?;
    let output = Format::from_accept(header_str(headers, header::ACCEPT.as_str()), input)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ServingError::BadRequest(
            "the payload is empty: send at least one row".into(),
        ));
    }
    let model = variant.model.clone();
    let a = if body.len() <= INLINE_BYTES {
        codec::invoke(&model, &body, input, output)?
    } else {
        tokio::task::spawn_blocking(move || codec::invoke(&model, &body, input, output))
            .await
            .map_err(|e| ServingError::Internal(format!("prediction task failed: {e}")))??
    };
    Ok((output, input, Bytes::from(a.body), a.rows))
}

async fn ping(State(s): State<Serving>, Named(name): Named) -> Response {
    match s.slot(&name) {
        Some(_) => (StatusCode::OK, "").into_response(),
        None => ServingError::NotFound(format!("no endpoint named '{name}'")).into_response(),
    }
}

/// `GET /metrics`: Prometheus text for the request's project's endpoints
/// (and Model Monitor's schedules).
async fn prometheus(State(s): State<Serving>, Extension(ws): Extension<Ws>) -> Response {
    // other sources added with `add_metrics` may read the store: off the runtime
    let text = match tokio::task::spawn_blocking(move || s.prometheus(&ws.0)).await {
        Ok(t) => t,
        Err(e) => {
            return ServingError::Internal(format!("metrics task failed: {e}")).into_response();
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The JSON view of an endpoint.
pub fn view(live: &Live, slot: &crate::Slot) -> Value {
    let variants: Vec<Value> = live
        .config
        .variants
        .iter()
        .zip(&live.variants)
        .map(|(c, v)| {
            let p = &v.model.pipeline;
            json!({
                "name": c.name,
                "model": c.model,
                "weight": c.weight,
                "artifact_path": c.artifact_path,
                "registered_model": c.registered_model,
                "version": c.version,
                "problem": p.problem.as_str(),
                "algorithm": p.metadata.algorithm,
                "target": p.target,
                "labels": p.labels,
                "input_columns": v.model.columns,
                "totals": v.metrics.totals(),
            })
        })
        .collect();
    json!({
        "name": live.config.name,
        "status": "InService",
        "invocations_path": format!("/endpoints/{}/invocations", live.config.name),
        "variants": variants,
        "data_capture": live.config.data_capture,
        "max_concurrency": live.config.max_concurrency,
        "max_payload_bytes": live.config.max_payload_bytes,
        "created_ms": live.created_ms,
        "updated_ms": live.updated_ms,
        "in_flight": live.config.max_concurrency - live.limiter.available_permits().min(live.config.max_concurrency),
        "overloaded": slot.metrics.overloaded.load(Relaxed),
        "rejected": slot.metrics.rejected.load(Relaxed),
        "capture_written": slot.metrics.capture_written.load(Relaxed),
        "capture_dropped": slot.metrics.capture_dropped.load(Relaxed),
        "shadow": live.config.shadow.as_ref().map(|sh| crate::shadow::view(
            sh,
            store::now_ms(),
            live.shadow.as_ref().map_or(0, |l| l.dropped.load(Relaxed)),
        )),
    })
}

/// The view of a stored endpoint that failed to come up.
fn failed_view(name: &str, why: &str) -> Value {
    json!({
        "name": name,
        "status": "Failed",
        "failure_reason": why,
        "invocations_path": format!("/endpoints/{name}/invocations"),
        "variants": [],
    })
}

fn slot_or_404(s: &Serving, name: &str) -> Result<Arc<crate::Slot>> {
    s.slot(name)
        .ok_or_else(|| ServingError::NotFound(format!("no endpoint named '{name}'")))
}

/// `GET /api/atelier/endpoints`: the endpoints of the request's project.
async fn list(State(s): State<Serving>, Extension(ws): Extension<Ws>) -> Response {
    let mine = |n: &str| s.workspace_of(n).is_some_and(|w| w == ws.0);
    let mut all: Vec<Value> = s
        .names()
        .iter()
        .filter(|n| mine(n))
        .filter_map(|n| s.slot(n))
        .map(|slot| view(&slot.current(), &slot))
        .collect();
    all.extend(
        s.failures()
            .iter()
            .filter(|(n, _)| mine(n))
            .map(|(n, why)| failed_view(n, why)),
    );
    axum::Json(json!({ "endpoints": all })).into_response()
}

fn parse_request(body: &Bytes) -> Result<EndpointRequest> {
    serde_json::from_slice(body).map_err(|e| {
        ServingError::BadRequest(format!(
            "the endpoint definition is not valid ({e}); send {{\"name\": \"…\", \"model\": \"models:/<name>/<version>\"}} or \"variants\": [{{\"name\", \"model\", \"weight\"}}]"
        ))
    })
}

async fn create(State(s): State<Serving>, Extension(ws): Extension<Ws>, body: Bytes) -> Response {
    let run = async {
        let req = parse_request(&body)?;
        let name = req
            .name
            .clone()
            .ok_or_else(|| ServingError::BadRequest("give the endpoint a \"name\"".into()))?;
        s.create(&ws.0, &name, req).await?;
        let slot = slot_or_404(&s, &name)?;
        Ok::<_, ServingError>(axum::Json(
            json!({"endpoint": view(&slot.current(), &slot)}),
        ))
    };
    run.await.into_response()
}

async fn update(State(s): State<Serving>, Named(name): Named, body: Bytes) -> Response {
    let run = async {
        let req = parse_request(&body)?;
        s.update(&name, req).await?;
        let slot = slot_or_404(&s, &name)?;
        Ok::<_, ServingError>(axum::Json(
            json!({"endpoint": view(&slot.current(), &slot)}),
        ))
    };
    run.await.into_response()
}

async fn describe(State(s): State<Serving>, Named(name): Named) -> Response {
    match slot_or_404(&s, &name) {
        Ok(slot) => axum::Json(json!({"endpoint": view(&slot.current(), &slot)})).into_response(),
        Err(e) => match s.failure(&name) {
            Some(why) => axum::Json(json!({"endpoint": failed_view(&name, &why)})).into_response(),
            None => e.into_response(),
        },
    }
}

async fn delete(State(s): State<Serving>, Named(name): Named) -> Response {
    match s.delete(&name).await {
        Ok(()) => axum::Json(json!({})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn stats(State(s): State<Serving>, Named(name): Named) -> Response {
    let slot = match slot_or_404(&s, &name) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let live = slot.current();
    let variants: Vec<Value> = live
        .variants
        .iter()
        .map(|v| {
            json!({
                "name": &*v.name,
                "totals": v.metrics.totals(),
                "history": v.metrics.history(),
            })
        })
        .collect();
    axum::Json(json!({
        "tick_seconds": crate::metrics::TICK_SECONDS,
        "variants": variants,
        "overloaded": slot.metrics.overloaded.load(Relaxed),
        "rejected": slot.metrics.rejected.load(Relaxed),
        "capture_written": slot.metrics.capture_written.load(Relaxed),
        "capture_dropped": slot.metrics.capture_dropped.load(Relaxed),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct CaptureQuery {
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    max_results: Option<usize>,
}

async fn captured(
    State(s): State<Serving>,
    Named(name): Named,
    q: std::result::Result<Query<CaptureQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let run = async {
        let Query(q) = q.map_err(|e| ServingError::BadRequest(format!("bad query: {e}")))?;
        crate::endpoint::check_name("endpoint", &name)?;
        // (a deleted endpoint's captures stay in the artifact store, but are not
        // served here; its name may be taken again)
        let Some(ws) = s.workspace_of(&name) else {
            return Err(ServingError::NotFound(format!(
                "no endpoint named '{name}'"
            )));
        };
        let to = q.to_ms.unwrap_or(store::now_ms() + 3_600_000);
        let from = q.from_ms.unwrap_or(store::now_ms() - 3_600_000);
        let max = q.max_results.unwrap_or(50).clamp(1, 1000);
        let folder = capture::folder(&ws, &name);
        let recs = capture::read_capture(s.artifacts(), &folder, from, to).await?;
        let skip = recs.len().saturating_sub(max);
        let out: Vec<Value> = recs
            .into_iter()
            .skip(skip)
            .map(|r| {
                let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
                v["variant"] = Value::String(r.variant);
                v
            })
            .collect();
        Ok::<_, ServingError>(axum::Json(json!({ "records": out })))
    };
    run.await.into_response()
}

#[derive(Deserialize)]
struct ShadowQuery {
    bucket_seconds: Option<i64>,
}

async fn shadow_get(
    State(s): State<Serving>,
    Named(name): Named,
    q: std::result::Result<Query<ShadowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let run = async {
        let Query(q) = q.map_err(|e| {
            ServingError::BadRequest(format!("bad query ({e}): bucket_seconds is a whole number"))
        })?;
        let bucket = q.bucket_seconds.unwrap_or(60).clamp(1, 86_400) * 1000;
        let v = s.shadow_comparison(&name, bucket).await?;
        Ok::<_, ServingError>(axum::Json(match v {
            Some(v) => v,
            None => json!({"test": null, "comparison": null}),
        }))
    };
    run.await.into_response()
}

async fn shadow_start(State(s): State<Serving>, Named(name): Named, body: Bytes) -> Response {
    let run = async {
        let req: crate::shadow::ShadowRequest = serde_json::from_slice(&body).map_err(|e| {
            ServingError::BadRequest(format!(
                "the shadow test is not valid ({e}); send {{\"model\": \"models:/<name>/<version>\", \"sampling_percentage\": 0-100, \"duration_seconds\": …}}"
            ))
        })?;
        s.start_shadow(&name, req).await?;
        let slot = slot_or_404(&s, &name)?;
        Ok::<_, ServingError>(axum::Json(
            json!({"endpoint": view(&slot.current(), &slot)}),
        ))
    };
    run.await.into_response()
}

async fn shadow_stop(State(s): State<Serving>, Named(name): Named) -> Response {
    let run = async {
        s.stop_shadow(&name).await?;
        let slot = slot_or_404(&s, &name)?;
        Ok::<_, ServingError>(axum::Json(
            json!({"endpoint": view(&slot.current(), &slot)}),
        ))
    };
    run.await.into_response()
}

async fn shadow_promote(State(s): State<Serving>, Named(name): Named) -> Response {
    let run = async {
        s.promote_shadow(&name).await?;
        let slot = slot_or_404(&s, &name)?;
        Ok::<_, ServingError>(axum::Json(
            json!({"endpoint": view(&slot.current(), &slot)}),
        ))
    };
    run.await.into_response()
}

// ------------------------------------------------------------ invocation keys

fn key_json(t: &store::TokenInfo) -> Value {
    json!({"name": t.name, "created": t.created, "created_by": t.user})
}

async fn keys_of(s: &Serving, name: String) -> Result<Vec<store::TokenInfo>> {
    let st = s.store().clone();
    let all = tokio::task::spawn_blocking(move || st.list_tokens())
        .await
        .map_err(|e| ServingError::Internal(e.to_string()))??;
    Ok(all
        .into_iter()
        .filter(|t| t.endpoint.as_deref() == Some(name.as_str()))
        .collect())
}

/// `GET /api/atelier/endpoints/{name}/keys`: the endpoint's invocation keys (never their secrets).
async fn list_keys(State(s): State<Serving>, Named(name): Named) -> Response {
    if let Err(e) = slot_or_404(&s, &name) {
        return e.into_response();
    }
    match keys_of(&s, name).await {
        Ok(keys) => axum::Json(json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/atelier/endpoints/{name}/keys {"name"}` → 201 with the key,
/// shown once: it may only invoke this endpoint (`Authorization: Bearer <key>`).
async fn create_key(
    State(s): State<Serving>,
    Named(name): Named,
    who: Option<axum::Extension<server::Identity>>,
    body: Bytes,
) -> Response {
    if let Err(e) = slot_or_404(&s, &name) {
        return e.into_response();
    }
    let key_name = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .map(str::to_string),
        Err(e) => {
            return ServingError::BadRequest(format!("the body is not JSON: {e}")).into_response();
        }
    };
    let Some(key_name) = key_name.filter(|k| !k.is_empty()) else {
        return ServingError::BadRequest(
            "give the key a name: {\"name\": \"checkout-service\"}".into(),
        )
        .into_response();
    };
    let by = who.map_or_else(|| "local".to_string(), |w| w.0.name);
    let secret = server::new_token();
    let h = server::hash_token(&secret);
    let st = s.store().clone();
    let (n, k) = (name.clone(), key_name.clone());
    let made = tokio::task::spawn_blocking(move || st.create_endpoint_key(&n, &k, &h, &by)).await;
    match made {
        Ok(Ok(())) => (
            StatusCode::CREATED,
            axum::Json(json!({"key": secret, "name": key_name, "endpoint": name,
                "use": format!("POST /endpoints/{name}/invocations with 'Authorization: Bearer <key>'")})),
        )
            .into_response(),
        Ok(Err(e)) => ServingError::from(e).into_response(),
        Err(e) => ServingError::Internal(e.to_string()).into_response(),
    }
}

/// `DELETE /api/atelier/endpoints/{name}/keys/{key}`: revoke it (at once, on every replica).
async fn revoke_key(
    State(s): State<Serving>,
    Named(name): Named,
    Path((_, key)): Path<(String, String)>,
) -> Response {
    match keys_of(&s, name.clone()).await {
        Ok(keys) if keys.iter().any(|t| t.name == key) => {}
        Ok(_) => {
            return ServingError::NotFound(format!("endpoint '{name}' has no key named '{key}'"))
                .into_response();
        }
        Err(e) => return e.into_response(),
    }
    let st = s.store().clone();
    match tokio::task::spawn_blocking(move || st.revoke_token(&key)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => ServingError::from(e).into_response(),
        Err(e) => ServingError::Internal(e.to_string()).into_response(),
    }
}
