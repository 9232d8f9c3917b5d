//! Atelier's own API (beyond MLflow's), under `/api/atelier`:
//!
//! - jobs: `GET /jobs[?kind=&limit=]`, `POST /jobs` `{"kind", "spec"}` → 202,
//!   `GET /jobs/{id}`, `POST /jobs/{id}/cancel` → 202, `POST /automl` (a job of
//!   kind `automl`, the body is its spec) → 202, and
//!   `GET /jobs/{id}/reports/{name}`: an HTML report a job produced, served in
//!   a CSP sandbox (no scripts, no requests);
//! - datasets (files for Autopilot and batch jobs, kept in the artifact store):
//!   `GET /datasets`, `PUT /datasets/{name}` (the body is the file),
//!   `GET /datasets/{name}/preview` (columns with inferred kinds, missing
//!   counts and the first rows), `DELETE /datasets/{name}`.
//!
//! Errors use MLflow's error body, like the rest of the API.

use std::sync::Arc;

use artifacts::datasets::{dataset_path, dataset_path_in, datasets_dir};
use artifacts::{ArtifactPath, ArtifactStore};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use serde_json::{Value, json};
use store::Job;

use crate::AppState;
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::{Access, BodyKind, Routes};
use crate::workspace::{Ws, job_in};

pub fn routes() -> Routes<AppState> {
    use Access::{Read, Write};
    Routes::new()
        .get("/jobs", Read, list_jobs)
        .post("/jobs", Write, submit)
        .get("/jobs/{id}", Read, get_job)
        .post("/jobs/{id}/cancel", Write, cancel)
        .get("/jobs/{id}/reports/{name}", Read, report)
        .post("/automl", Write, submit_automl)
        .get("/datasets", Read, list_datasets)
        .add(
            Method::PUT,
            "/datasets/{name}",
            Write,
            BodyKind::Upload,
            upload_dataset,
        )
        .delete("/datasets/{name}", Write, delete_dataset)
        .get("/datasets/{name}/preview", Read, preview)
        .merge(crate::people::routes())
}

/// SageMaker's primary status for a job: InProgress, Completed, Failed,
/// Stopping or Stopped.
pub fn primary_status(j: &Job) -> &'static str {
    match j.status {
        store::JobStatus::Queued => "InProgress",
        store::JobStatus::Running if j.cancel_requested => "Stopping",
        store::JobStatus::Running => "InProgress",
        store::JobStatus::Succeeded => "Completed",
        store::JobStatus::Failed => "Failed",
        store::JobStatus::Cancelled => "Stopped",
    }
}

/// A job as JSON: the stored JSON documents are inlined, not strings.
pub fn job_json(j: &Job) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    json!({
        "primary_status": primary_status(j),
        "secondary_statuses": parse(&j.events),
        "owner": j.owner,
        "workspace": j.workspace,
        "attempt": j.attempt,
        "max_attempts": j.max_attempts,
        "worker": j.worker,
        "id": j.id,
        "kind": j.kind,
        "name": j.name,
        "status": j.status.as_str(),
        "spec": parse(&j.spec),
        "progress": parse(&j.progress),
        "result": parse(&j.result),
        "error": j.error,
        "created_ms": j.created_ms,
        "started_ms": j.started_ms,
        "ended_ms": j.ended_ms,
        "cancel_requested": j.cancel_requested,
    })
}

fn queue(s: &AppState) -> ApiResult<Arc<jobs::Queue>> {
    s.jobs
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidState, "this server runs no job queue"))
}

/// A job-queue failure as an HTTP answer.
pub fn jobs_error(e: jobs::JobsError) -> ApiError {
    match e {
        jobs::JobsError::UnknownKind(..) | jobs::JobsError::InvalidSpec(_) => {
            ApiError::invalid(e.to_string())
        }
        jobs::JobsError::Store(s) => s.into(),
        jobs::JobsError::ShuttingDown => ApiError::new(ErrorCode::InvalidState, e.to_string()),
    }
}

/// Run blocking work (store calls, the queue) off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("task failed: {e}")))?
}

/// A request body that must be a JSON object (an empty body is refused).
pub fn body_json(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "the request needs a JSON body",
        ));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedRequest,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "the body must be a JSON object",
        ));
    }
    Ok(v)
}

async fn submit_kind(
    s: AppState,
    who: Identity,
    ws: Ws,
    kind: String,
    spec: Value,
    max_attempts: i64,
) -> ApiResult<Response> {
    let q = queue(&s)?;
    let origin = jobs::Origin::new(&who.name, &ws.0);
    let job = blocking(move || {
        q.submit_as(&kind, spec, &origin, max_attempts)
            .map_err(jobs_error)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": job_json(&job) }))).into_response())
}

/// Most claims a job may take when its worker dies under it.
const MAX_ATTEMPTS: i64 = 30;

async fn submit(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let v = body_json(&body)?;
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("give the job's 'kind' (e.g. \"automl\")"))?
        .to_string();
    let spec = v.get("spec").cloned().unwrap_or_else(|| json!({}));
    let max_attempts = match v.get("max_attempts") {
        None | Some(Value::Null) => 1,
        Some(m) => m
            .as_i64()
            .filter(|n| (1..=MAX_ATTEMPTS).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "'max_attempts' must be a whole number from 1 to {MAX_ATTEMPTS} (claims allowed when a server dies under the job)"
                ))
            })?,
    };
    submit_kind(s, who, ws, kind, spec, max_attempts).await
}

async fn submit_automl(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let spec = body_json(&body)?;
    submit_kind(s, who, ws, "automl".into(), spec, 1).await
}

#[derive(serde::Deserialize)]
struct ListQuery {
    kind: Option<String>,
    limit: Option<usize>,
}

async fn list_jobs(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("bad query: {e}")))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let list = s
        .db(move |st| st.list_jobs(Some(&ws.0), q.kind.as_deref(), limit))
        .await?;
    Ok(Json(json!({
        "jobs": list.iter().map(job_json).collect::<Vec<_>>(),
    })))
}

fn id_of(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    let Path(id) = p.map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
    Ok(id)
}

async fn get_job(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let id = id_of(p)?;
    let job = s.db(move |st| job_in(st, &ws.0, &id)).await?;
    Ok(Json(json!({ "job": job_json(&job) })))
}

async fn cancel(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let id = id_of(p)?;
    let q = queue(&s)?;
    let id2 = id.clone();
    s.db(move |st| job_in(st, &ws.0, &id2)).await?;
    let job = blocking(move || q.cancel(&id).map_err(jobs_error)).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": job_json(&job) }))).into_response())
}

/// Reports are our own HTML; they are still served in a sandbox with no
/// script or network access, so a report can never act on the Studio's origin.
async fn report(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Response> {
    let Path((id, name)) = p.map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
    let job = s.db(move |st| job_in(st, &ws.0, &id)).await?;
    let result: Value = serde_json::from_str(&job.result).unwrap_or(Value::Null);
    let Some(path) = result["reports"][&name].as_str() else {
        let known: Vec<String> = result["reports"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        return Err(ApiError::not_found(if known.is_empty() {
            format!("job '{}' has no reports (yet)", job.id)
        } else {
            format!("no report '{name}'; this job has: {}", known.join(", "))
        }));
    };
    let path = ArtifactPath::parse(path)?;
    let d = s.artifacts.get(&path).await?;
    let ct = if path.as_str().ends_with(".html") {
        "text/html; charset=utf-8"
    } else if path.as_str().ends_with(".ipynb") || path.as_str().ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let stream = d.stream.map(|r| r.map_err(std::io::Error::other));
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.size));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'",
        ),
    );
    Ok(resp)
}

// ---------------------------------------------------------------- datasets

/// The dataset a path names, in the request's project.
fn dataset(ws: &Ws, p: Result<Path<String>, PathRejection>) -> ApiResult<(String, ArtifactPath)> {
    let name = id_of(p)?;
    let path = dataset_path_in(&ws.0, &name).map_err(ApiError::invalid)?;
    Ok((name, path))
}

/// `GET /datasets`: the request's project's datasets.
async fn list_datasets(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
) -> ApiResult<Json<Value>> {
    let dir = ArtifactPath::parse(&datasets_dir(&ws.0))?;
    let entries = s.artifacts.list(&dir).await?;
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.is_dir && dataset_path(&e.name).is_ok())
        .map(|e| json!({"name": e.name, "size": e.size}))
        .collect();
    Ok(Json(json!({ "datasets": list })))
}

async fn upload_dataset(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
    req: Request,
) -> ApiResult<Response> {
    let (name, path) = dataset(&ws, p)?;
    let max = s.max_artifact_bytes;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "a dataset of {len} bytes exceeds the upload limit of {max} bytes (--max-artifact-bytes)"
            ),
        ));
    }
    let mut seen = 0u64;
    let stream = req.into_body().into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(|e| e.to_string())?;
        seen += chunk.len() as u64;
        if seen > max {
            return Err(format!("the upload exceeds the limit of {max} bytes"));
        }
        Ok(chunk)
    });
    let size = s.artifacts.put_stream(&path, Box::pin(stream)).await?;
    if size == 0 {
        let _ = s.artifacts.delete(&path).await;
        return Err(ApiError::invalid(format!(
            "the dataset '{name}' is empty; upload the file's contents as the request body"
        )));
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"dataset": {"name": name, "size": size}})),
    )
        .into_response())
}

async fn delete_dataset(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let (_, path) = dataset(&ws, p)?;
    s.artifacts.get(&path).await?;
    s.artifacts.delete(&path).await?;
    Ok(Json(json!({})))
}

fn kind_name(k: tabular::Kind) -> &'static str {
    match k {
        tabular::Kind::Numeric => "numeric",
        tabular::Kind::Boolean => "boolean",
        tabular::Kind::Categorical => "categorical",
        tabular::Kind::Datetime => "datetime",
        tabular::Kind::Text => "text",
        tabular::Kind::IdLike => "id",
    }
}

/// Rows shown in a preview.
const PREVIEW_ROWS: usize = 20;

async fn local_copy(
    arts: &ArtifactStore,
    path: &ArtifactPath,
) -> ApiResult<(std::path::PathBuf, tempfile::TempDir)> {
    let dir =
        tempfile::tempdir().map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
    let file = arts
        .fetch_local(path, dir.path())
        .await
        .map_err(|e| match e {
            artifacts::ArtifactError::NotFound(_) => {
                ApiError::not_found(format!("No dataset at '{}'", path.as_str()))
            }
            other => other.into(),
        })?;
    Ok((file, dir))
}

async fn preview(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let (name, path) = dataset(&ws, p)?;
    let (file, tmp) = local_copy(&s.artifacts, &path).await?;
    let out = blocking(move || {
        let _keep = tmp;
        let t = tabular::read_path(&file).map_err(|e| ApiError::invalid(e.to_string()))?;
        let n = t.rows();
        let columns: Vec<Value> = t
            .columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "kind": kind_name(c.kind),
                    "missing": c.missing(),
                })
            })
            .collect();
        let head: Vec<Vec<Option<String>>> = (0..n.min(PREVIEW_ROWS))
            .map(|i| t.columns.iter().map(|c| c.str_at(i)).collect())
            .collect();
        Ok(json!({
            "name": name,
            "rows": n,
            "columns": columns,
            "head": head,
            "warnings": t.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(Json(out))
}
