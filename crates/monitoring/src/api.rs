//! HTTP, under `/api/atelier`:
//!
//! | method | path | |
//! |---|---|---|
//! | GET/POST | `/monitoring-schedules` | list (with each one's latest execution) / create or replace |
//! | GET/DELETE | `/monitoring-schedules/{name}` | one, with its recent executions / remove |
//! | POST | `/monitoring-schedules/{name}/run` | an execution now (window from the body or the last cron period) → 202 |
//! | POST | `/monitoring-schedules/{name}/retrain` | an Autopilot job on captured inputs joined with their labels (or a given dataset) → 202 |
//! | POST | `/ground-truth/{endpoint}` | upload labels (JSON Lines or CSV) → how many match captured predictions (each eventId's capture hour; other ids back `?match_hours=` hours, default 24) |
//! | POST | `/baselines` | a baseline from a stored dataset, as a job → 202 |

use std::collections::HashMap;
use std::sync::Arc;

use artifacts::{ArtifactPath, ArtifactStore};
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value, json};
use server::atelier_api::{blocking, jobs_error};
use server::auth::Identity;
use server::error::{ApiError, ApiResult, ErrorCode};
use server::routes::{Access, BodyKind, Routes};
use server::workspace::{Ws, doc_in};
use store::{Job, JobStatus, MetadataStore};

use crate::alerts::WebhookPolicy;
use crate::execute::{BASELINE_KIND, EXECUTION_KIND, load_endpoint, read_labels};
use crate::quality::parse_labels;
use crate::schedule::{CheckKind, Schedule};

#[derive(Clone)]
pub struct Monitoring {
    pub store: Arc<dyn MetadataStore>,
    pub artifacts: ArtifactStore,
    pub queue: Arc<jobs::Queue>,
    /// Which webhook targets a schedule may name (checked on create/replace).
    pub webhooks: WebhookPolicy,
}

/// Reading schedules needs a signed-in identity; everything else (ground
/// truth included) the editor role.
pub fn router(m: Monitoring) -> Routes {
    use Access::{Read, Write};
    const S: &str = "/api/atelier/monitoring-schedules";
    Routes::new()
        .get(S, Read, list)
        .post(S, Write, create)
        .get(&format!("{S}/{{name}}"), Read, one)
        .get(
            &format!("{S}/{{name}}/executions/{{id}}"),
            Read,
            one_execution,
        )
        .delete(&format!("{S}/{{name}}"), Write, remove)
        .post(&format!("{S}/{{name}}/run"), Write, run_now)
        .post(&format!("{S}/{{name}}/retrain"), Write, retrain)
        .add(
            Method::POST,
            "/api/atelier/ground-truth/{endpoint}",
            Write,
            BodyKind::Raw,
            ground_truth,
        )
        .post("/api/atelier/baselines", Write, baseline)
        .with_state(m)
}

/// A JSON-object body; an empty one stands for `{}` (every field has a default).
fn body_json(b: &[u8]) -> ApiResult<Value> {
    if b.is_empty() {
        return Ok(json!({}));
    }
    server::atelier_api::body_json(b)
}

fn name_of(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    let Path(n) = p.map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
    Ok(n)
}

/// Executions' webhook deliveries from the outbox, by execution id, in the
/// shape the Studio reads: `{"url", "delivered", "pending", "attempts":
/// [{"at_ms", "status"?, "error"?}]}` (plus `next_attempt_ms` while pending).
type Deliveries = HashMap<String, Vec<Value>>;

fn deliveries_of(st: &dyn MetadataStore, execs: &[&Job]) -> ApiResult<Deliveries> {
    let ids: Vec<String> = execs.iter().map(|j| j.id.clone()).collect();
    let mut out = Deliveries::new();
    for d in st.list_webhook_deliveries(&ids)? {
        let attempts: Vec<Value> = d
            .attempts
            .iter()
            .map(|a| {
                let mut v = json!({ "at_ms": a.at_ms });
                if let Some(s) = a.status {
                    v["status"] = json!(s);
                }
                if let Some(e) = &a.error {
                    v["error"] = json!(e);
                }
                v
            })
            .collect();
        let pending = d.state == store::DeliveryState::Pending;
        let mut v = json!({
            "url": d.url,
            "delivered": d.state == store::DeliveryState::Delivered,
            "pending": pending,
            "attempts": attempts,
        });
        if pending {
            v["next_attempt_ms"] = json!(d.next_attempt_ms);
        }
        out.entry(d.job_id).or_default().push(v);
    }
    Ok(out)
}

/// A short view of an execution for lists and charts, with its webhook
/// deliveries (from the outbox; an execution from before the outbox kept
/// them in its result).
fn execution_json(j: &Job, deliveries: &Deliveries) -> Value {
    let spec: Value = serde_json::from_str(&j.spec).unwrap_or(Value::Null);
    let result: Value = serde_json::from_str(&j.result).unwrap_or(Value::Null);
    let sent = match deliveries.get(&j.id) {
        Some(d) => json!(d),
        None => match result["deliveries"].as_array() {
            Some(old) => Value::Array(
                old.iter()
                    .map(|d| {
                        let mut d = d.clone();
                        d["pending"] = json!(false);
                        d
                    })
                    .collect(),
            ),
            None => json!([]),
        },
    };
    json!({
        "id": j.id,
        "status": j.status.as_str(),
        "error": j.error,
        "created_ms": j.created_ms,
        "ended_ms": j.ended_ms,
        "window_start_ms": spec["window_start_ms"],
        "window_end_ms": spec["window_end_ms"],
        "trigger": spec["trigger"],
        "result": result,
        "deliveries": sent,
    })
}

/// `execs` newest first. A schedule alerts while its latest execution that
/// saw data found violations (an empty window does not clear an alert).
fn schedule_json(
    s: &Schedule,
    created: i64,
    updated: i64,
    execs: &[Job],
    deliveries: &Deliveries,
) -> Value {
    let latest = execs.first();
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    v["created_ms"] = json!(created);
    v["updated_ms"] = json!(updated);
    v["next_run_ms"] = json!(
        s.enabled
            .then(|| s
                .cron()
                .next_after(s.last_fired_ms.unwrap_or(created).max(store::now_ms())))
            .flatten()
    );
    if let Some(j) = latest {
        v["latest"] = execution_json(j, deliveries);
    }
    let with_data = execs.iter().find_map(|j| {
        let r: Value = serde_json::from_str(&j.result).ok()?;
        (j.status == JobStatus::Succeeded
            && matches!(r["status"].as_str(), Some("ok" | "violations")))
        .then_some(r)
    });
    v["alerting"] =
        json!(with_data.is_some_and(|r| r["violation_count"].as_u64().unwrap_or(0) > 0));
    v
}

/// Schedule `name` of project `ws` (one of another project answers as missing).
fn schedule_in(st: &dyn MetadataStore, ws: &str, name: &str) -> ApiResult<store::Endpoint> {
    Ok(doc_in(ws, st.get_schedule(name), "monitoring schedule")?)
}

/// Endpoint `name` of project `ws` (one of another project answers as missing).
fn endpoint_in(st: &dyn MetadataStore, ws: &str, name: &str) -> ApiResult<store::Endpoint> {
    Ok(doc_in(ws, st.get_endpoint(name), "endpoint")?)
}

async fn list(State(m): State<Monitoring>, Extension(ws): Extension<Ws>) -> ApiResult<Json<Value>> {
    let out = blocking(move || {
        let rows = m.store.list_schedules()?;
        let mut found = Vec::new();
        for r in rows.into_iter().filter(|r| r.workspace == ws.0) {
            let Ok(s) = serde_json::from_str::<Schedule>(&r.config) else {
                continue;
            };
            let mut recent = m.store.list_jobs_named(EXECUTION_KIND, &s.name, 50)?;
            // (a schedule of that name may have been another project's before)
            recent.retain(|j| j.workspace == ws.0);
            found.push((r, s, recent));
        }
        // the latest executions' deliveries, in one query
        let latest: Vec<&Job> = found.iter().filter_map(|f| f.2.first()).collect();
        let deliveries = deliveries_of(m.store.as_ref(), &latest)?;
        let list: Vec<Value> = found
            .iter()
            .map(|(r, s, recent)| schedule_json(s, r.created_ms, r.updated_ms, recent, &deliveries))
            .collect();
        Ok(json!({ "schedules": list }))
    })
    .await?;
    Ok(Json(out))
}

/// A stored schedule, parsed (a corrupt one is a server-side error).
fn parse_schedule(row: &store::Endpoint) -> ApiResult<Schedule> {
    serde_json::from_str(&row.config).map_err(|e| {
        ApiError::new(
            ErrorCode::InternalError,
            format!("the schedule '{}' is unreadable: {e}", row.name),
        )
    })
}

/// Writes the schedule `edit` makes of the stored one (`None` when there is none)
/// without losing a concurrent write: the result replaces the stored version only if
/// it is still the one `edit` saw (the scheduler may bookmark a firing meanwhile);
/// otherwise the schedule is read again and `edit` runs again.
fn write_schedule(
    st: &dyn MetadataStore,
    ws: &str,
    name: &str,
    mut edit: impl FnMut(Option<Schedule>) -> ApiResult<Schedule>,
) -> ApiResult<store::Endpoint> {
    let internal = |e: String| ApiError::new(ErrorCode::InternalError, e);
    for _ in 0..20 {
        let old = match st.get_schedule(name) {
            Ok(row) if row.workspace != ws => {
                return Err(ApiError::new(
                    ErrorCode::ResourceAlreadyExists,
                    format!(
                        "The monitoring schedule name '{name}' is taken by another project: schedule names are unique on this server, choose another"
                    ),
                ));
            }
            Ok(row) => Some(row),
            Err(store::StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let parsed = old.as_ref().map(parse_schedule).transpose()?;
        let text = serde_json::to_string(&edit(parsed)?).map_err(|e| internal(e.to_string()))?;
        match old {
            None => return Ok(st.put_schedule(ws, name, &text)?),
            Some(row) => {
                if st.replace_schedule(name, &row.config, &text)? {
                    return st.get_schedule(name).map_err(Into::into);
                }
            }
        }
    }
    Err(ApiError::new(
        ErrorCode::InternalError,
        format!("the schedule '{name}' kept changing while it was being saved; try again"),
    ))
}

async fn create(
    State(m): State<Monitoring>,
    Extension(ws): Extension<Ws>,
    body: Bytes,
) -> ApiResult<Response> {
    let v = body_json(&body)?;
    let mut s = Schedule::parse(&v).map_err(ApiError::invalid)?;
    // webhooks only to targets the server allows (names are looked up: blocking)
    let (policy, urls) = (m.webhooks.clone(), s.webhooks.clone());
    blocking(move || {
        for u in &urls {
            policy.check_url(u).map_err(ApiError::invalid)?;
        }
        Ok(())
    })
    .await?;
    // the endpoint must exist, and a data-quality check needs a readable baseline
    let (st, sc, w) = (m.store.clone(), s.clone(), ws.clone());
    let baseline = blocking(move || {
        endpoint_in(st.as_ref(), &w.0, &sc.endpoint).map_err(|e| {
            ApiError::new(
                ErrorCode::ResourceDoesNotExist,
                format!("{}; deploy it first (atelier deploy)", e.message),
            )
        })?;
        let ep = load_endpoint(st.as_ref(), &w.0, &sc.endpoint).map_err(|e| {
            ApiError::new(
                ErrorCode::ResourceDoesNotExist,
                format!("{e}; deploy it first (atelier deploy)"),
            )
        })?;
        Ok(match sc.kind {
            CheckKind::DataQuality => Some(
                crate::execute::baseline_path(st.as_ref(), &w.0, &sc, &ep)
                    .map_err(ApiError::invalid)?,
            ),
            CheckKind::ModelQuality => None,
            CheckKind::ModelBias | CheckKind::ModelExplainability => {
                crate::clarify_checks::check_capture(&sc, &ep).map_err(ApiError::invalid)?;
                None
            }
        })
    })
    .await?;
    if let Some(b) = baseline {
        let stats = ArtifactPath::parse(&b)
            .and_then(|p| p.join(monitor::baseline::STATISTICS_FILE))
            .map_err(|e| ApiError::invalid(format!("baseline '{b}': {e}")))?;
        let bytes = m.artifacts.read_all(&stats).await.map_err(|_| {
            ApiError::invalid(format!(
                "no baseline at '{b}' (no {}); make one with POST /api/atelier/baselines or `atelier monitor baseline`",
                monitor::baseline::STATISTICS_FILE
            ))
        })?;
        serde_json::from_slice::<monitor::baseline::Statistics>(&bytes).map_err(|e| {
            ApiError::invalid(format!(
                "the baseline at '{b}' is malformed: {} ({e})",
                monitor::baseline::STATISTICS_FILE
            ))
        })?;
    }
    if matches!(
        s.kind,
        CheckKind::ModelBias | CheckKind::ModelExplainability
    ) {
        s.baseline = Some(crate::clarify_checks::prepare(&m, &ws.0, &s).await?);
    }
    let out = blocking(move || {
        let name = s.name.clone();
        // replacing a schedule keeps its bookmark and its last retraining
        let row = write_schedule(m.store.as_ref(), &ws.0, &name, |old| {
            if let Some(old) = old {
                s.last_fired_ms = old.last_fired_ms;
                s.retrain = old.retrain.clone();
            }
            Ok(s.clone())
        })?;
        Ok(schedule_json(
            &s,
            row.created_ms,
            row.updated_ms,
            &[],
            &Deliveries::new(),
        ))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "schedule": out }))).into_response())
}

async fn one(
    State(m): State<Monitoring>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let name = name_of(p)?;
    let out = blocking(move || {
        let row = schedule_in(m.store.as_ref(), &ws.0, &name)?;
        let s = parse_schedule(&row)?;
        let mut execs = m.store.list_jobs_named(EXECUTION_KIND, &name, 200)?;
        execs.retain(|j| j.workspace == ws.0);
        let deliveries = deliveries_of(m.store.as_ref(), &execs.iter().collect::<Vec<_>>())?;
        // a light list: per-feature values for the charts, but the
        // histograms of the newest execution that has them only (another's
        // come from …/executions/{id} when the page selects it)
        let mut kept_histograms = false;
        let executions: Vec<Value> = execs
            .iter()
            .map(|j| {
                let mut e = execution_json(j, &deliveries);
                if let Some(r) = e["result"].as_object_mut()
                    && r.contains_key("histograms")
                {
                    if kept_histograms {
                        r.remove("histograms");
                        r.insert("histograms_omitted".into(), json!(true));
                    } else {
                        kept_histograms = true;
                    }
                }
                e
            })
            .collect();
        Ok(json!({
            "schedule": schedule_json(&s, row.created_ms, row.updated_ms, &execs, &deliveries),
            "executions": executions,
        }))
    })
    .await?;
    Ok(Json(out))
}

/// One execution of a schedule in full (histograms included).
async fn one_execution(
    State(m): State<Monitoring>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let (name, id) = p
        .map(|Path(v)| v)
        .map_err(|e| ApiError::invalid(e.body_text()))?;
    let out = blocking(move || {
        let missing = || {
            ApiError::new(
                ErrorCode::ResourceDoesNotExist,
                format!("schedule '{name}' has no execution '{id}'"),
            )
        };
        schedule_in(m.store.as_ref(), &ws.0, &name)?;
        let j = m.store.get_job(&id).map_err(|_| missing())?;
        let spec: Value = serde_json::from_str(&j.spec).unwrap_or(Value::Null);
        if j.workspace != ws.0
            || j.kind != EXECUTION_KIND
            || spec["schedule"].as_str() != Some(name.as_str())
        {
            return Err(missing());
        }
        let deliveries = deliveries_of(m.store.as_ref(), &[&j])?;
        Ok(json!({ "execution": execution_json(&j, &deliveries) }))
    })
    .await?;
    Ok(Json(out))
}

async fn remove(
    State(m): State<Monitoring>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let name = name_of(p)?;
    blocking(move || {
        schedule_in(m.store.as_ref(), &ws.0, &name)?;
        Ok(m.store.delete_schedule(&name)?)
    })
    .await?;
    Ok(Json(json!({})))
}

async fn run_now(
    State(m): State<Monitoring>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> ApiResult<Response> {
    let name = name_of(p)?;
    let v = body_json(&body)?;
    let job = blocking(move || {
        let s = parse_schedule(&schedule_in(m.store.as_ref(), &ws.0, &name)?)?;
        let now = store::now_ms();
        let end = v["window_end_ms"].as_i64().unwrap_or(now);
        let start = match v["window_start_ms"].as_i64() {
            Some(s) => s,
            None => {
                // the cron period that ends at `end`
                let cron = s.cron();
                let prev = cron.previous(end - 1, 31 * 86_400_000).unwrap_or(end - 3_600_000);
                let period = cron.next_after(prev).map_or(3_600_000, |n| (n - prev).max(1000));
                end - period
            }
        };
        let spec = json!({"schedule": name, "window_start_ms": start, "window_end_ms": end, "trigger": "manual"});
        m.queue
            .submit_as(EXECUTION_KIND, spec, &jobs::Origin::new(&who.name, &ws.0), 1)
            .map_err(jobs_error)
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job": server::atelier_api::job_json(&job) })),
    )
        .into_response())
}

fn hour_dir(ms: i64) -> String {
    let s = tabular::format_datetime_ms(ms); // 2026-11-27T02:15:18.123Z
    s.get(..13)
        .unwrap_or("1970-01-01T00")
        .replace(['-', 'T'], "/")
}

/// Hours a ground-truth upload searches back for ids without a time.
const DEFAULT_MATCH_HOURS: u32 = 24;
const MAX_MATCH_HOURS: u32 = 24 * 90;

async fn ground_truth(
    State(m): State<Monitoring>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let endpoint = name_of(p)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    {
        let st = m.store.clone();
        let (e, w) = (endpoint.clone(), ws.0.clone());
        blocking(move || endpoint_in(st.as_ref(), &w, &e)).await?;
    }
    let labels = parse_labels(&body, &ct).map_err(ApiError::invalid)?;
    // how many of them match a captured prediction: our event ids carry
    // their capture hour; other ids are looked for back from now, up to
    // `match_hours` (the upload never reads the whole history)
    let back_hours = match query.get("match_hours") {
        None => DEFAULT_MATCH_HOURS,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|h| (1..=MAX_MATCH_HOURS).contains(h))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "match_hours must be a whole number of hours from 1 to {MAX_MATCH_HOURS}, not '{v}'"
                ))
            })?,
    };
    let wanted: Vec<crate::capture_ids::Wanted> = labels
        .iter()
        .map(|l| crate::capture_ids::Wanted {
            id: &l.id,
            by_inference_id: l.by_inference_id,
        })
        .collect();
    let (found, searched_hours) = crate::capture_ids::match_ids(
        &m.artifacts,
        &serving::capture::folder(&ws.0, &endpoint),
        &wanted,
        store::now_ms(),
        back_hours,
    )
    .await
    .map_err(|e| ApiError::new(ErrorCode::InternalError, e))?;
    let unknown: Vec<&str> = labels
        .iter()
        .zip(&found)
        .filter(|(_, f)| !**f)
        .map(|(l, _)| l.id.as_str())
        .collect();
    let now = store::now_ms();
    let path = ArtifactPath::parse(&format!(
        "{}/{}/{now}-{:08x}.jsonl",
        crate::execute::ground_truth_folder(&ws.0, &endpoint),
        hour_dir(now),
        (now as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
    ))?;
    let mut text = String::new();
    for l in &labels {
        text.push_str(&l.to_record().to_string());
        text.push('\n');
    }
    m.artifacts.put_bytes(&path, Bytes::from(text)).await?;
    let mut out = json!({
        "labels": labels.len(),
        "matched": labels.len() - unknown.len(),
        "unknown": unknown.len(),
        "path": path.as_str(),
        "searched_hours": searched_hours,
    });
    if !unknown.is_empty() {
        out["unknown_ids"] = json!(unknown.iter().take(20).collect::<Vec<_>>());
        out["message"] = json!(format!(
            "{} of {} labels match no captured prediction of '{endpoint}' in the hours searched ({searched_hours}: the capture hour of each eventId, and the last {back_hours} hours for other ids; ?match_hours= looks further back); they are kept and join if that traffic is captured, but check the ids (inferenceId is the X-Atelier-Inference-Id header, eventId the capture record's)",
            unknown.len(),
            labels.len()
        ));
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn baseline(
    State(m): State<Monitoring>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    body: Bytes,
) -> ApiResult<Response> {
    let v = body_json(&body)?;
    let origin = jobs::Origin::new(&who.name, &ws.0);
    let job = blocking(move || {
        m.queue
            .submit_as(BASELINE_KIND, v, &origin, 1)
            .map_err(jobs_error)
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job": server::atelier_api::job_json(&job) })),
    )
        .into_response())
}

/// A CSV field, quoted when needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn retrain(
    State(m): State<Monitoring>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> ApiResult<Response> {
    let name = name_of(p)?;
    let v = body_json(&body)?;
    let origin = jobs::Origin::new(&who.name, &ws.0);
    let (s, ep) = {
        let st = m.store.clone();
        let n = name.clone();
        let w = ws.0.clone();
        blocking(move || {
            let s = parse_schedule(&schedule_in(st.as_ref(), &w, &n)?)?;
            let ep = load_endpoint(st.as_ref(), &w, &s.endpoint).map_err(ApiError::not_found)?;
            Ok((s, ep))
        })
        .await?
    };
    let variant = ep
        .variants
        .first()
        .ok_or_else(|| ApiError::invalid("the endpoint has no variant"))?;
    let bytes = m
        .artifacts
        .read_all(&ArtifactPath::parse(&variant.artifact_path)?)
        .await?;
    // parsing a pipeline is CPU work: off the async runtime
    let pipeline =
        blocking(move || learn::Pipeline::from_bytes(&bytes).map_err(ApiError::invalid)).await?;
    let dataset = match v["dataset"].as_str() {
        Some(d) => d.to_string(),
        None => {
            // captured inputs joined with their labels, over the last `days` days
            let days = v["days"].as_f64().unwrap_or(7.0).clamp(0.01, 365.0);
            let now = store::now_ms();
            let since = now - (days * 86_400_000.0) as i64;
            let folder = serving::capture::folder(&ws.0, &s.endpoint);
            let records = serving::read_capture(&m.artifacts, &folder, since, now)
                .await
                .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
            let labels = read_labels(&m.artifacts, &ws.0, &s.endpoint, since)
                .await
                .map_err(|e| ApiError::new(ErrorCode::InternalError, e))?;
            let columns = serving::LoadedModel::new(pipeline.clone()).columns;
            let target = pipeline.target.clone();
            // the join and the CSV are CPU work over the whole period
            let (csv, rows) = blocking(move || {
                let mut csv = columns
                    .iter()
                    .map(|c| csv_field(c))
                    .collect::<Vec<_>>()
                    .join(",");
                csv.push(',');
                csv.push_str(&csv_field(&target));
                csv.push('\n');
                let mut rows = 0usize;
                for r in &records {
                    let Some(input) = &r.capture_data.endpoint_input else {
                        continue;
                    };
                    let Some(truth) = labels.of(&r.event_metadata) else {
                        continue;
                    };
                    let Ok(recs) = crate::rows::input_records(input, &columns) else {
                        continue;
                    };
                    if recs.len() != truth.len() {
                        continue;
                    }
                    for (rec, t) in recs.iter().zip(truth) {
                        let mut line: Vec<String> = columns
                            .iter()
                            .map(|c| csv_field(&rec.get(c).map(cell_text).unwrap_or_default()))
                            .collect();
                        line.push(csv_field(t));
                        csv.push_str(&line.join(","));
                        csv.push('\n');
                        rows += 1;
                    }
                }
                Ok((csv, rows))
            })
            .await?;
            if rows < 20 {
                return Err(ApiError::invalid(format!(
                    "only {rows} captured rows of '{}' have labels in the last {days} days; upload more ground truth, or give a \"dataset\" to retrain on",
                    s.endpoint
                )));
            }
            let name = format!(
                "{}-retrain-{}.csv",
                s.endpoint,
                tabular::format_datetime_ms(now).replace([':', '.'], "-")
            );
            let path =
                artifacts::datasets::dataset_path_in(&ws.0, &name).map_err(ApiError::invalid)?;
            m.artifacts.put_bytes(&path, Bytes::from(csv)).await?;
            name
        }
    };
    let mut spec = Map::new();
    spec.insert("dataset".into(), json!(dataset));
    spec.insert("target".into(), json!(pipeline.target));
    spec.insert(
        "time_budget".into(),
        json!(v["time_budget"].as_f64().unwrap_or(600.0)),
    );
    spec.insert(
        "model_name".into(),
        json!(
            variant
                .registered_model
                .clone()
                .unwrap_or_else(|| format!("{}-model", s.endpoint))
        ),
    );
    let spec = Value::Object(spec);
    let q = m.queue.clone();
    let job = blocking(move || q.submit_as("automl", spec, &origin, 1).map_err(jobs_error)).await?;
    let record = json!({
        "job_id": job.id,
        "dataset": dataset,
        "serving": {
            "registered_model": variant.registered_model,
            "version": variant.version,
            "metrics": pipeline.metadata.metrics,
        },
        "started_ms": store::now_ms(),
    });
    let serving_version: HashMap<&str, Value> = [
        ("registered_model", json!(variant.registered_model)),
        ("version", json!(variant.version)),
        ("metrics", json!(pipeline.metadata.metrics)),
    ]
    .into_iter()
    .collect();
    // remembered on the schedule, so every Studio shows the comparison
    let (st, n) = (m.store.clone(), name.clone());
    blocking(move || {
        write_schedule(st.as_ref(), &ws.0, &n, |old| {
            let mut s = old.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ResourceDoesNotExist,
                    format!("No monitoring schedule named '{n}'"),
                )
            })?;
            s.retrain = Some(record.clone());
            Ok(s)
        })?;
        Ok(())
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "job": server::atelier_api::job_json(&job),
            "dataset": dataset,
            "serving": serving_version,
        })),
    )
        .into_response())
}
