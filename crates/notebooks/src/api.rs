//! HTTP, under `/api/atelier`:
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/notebooks` | the caller's workspace notebooks with their last runs, the kernels, the schedules |
//! | GET | `/notebooks/preview?source=` | a notebook rendered to HTML (no kernel): `workspace:<path>`, `job:<id>` (its output notebook, while it runs too), `runs:/<run>/<path>` or an artifact path |
//! | POST | `/notebooks/runs` | run a notebook as a job → 202 `{job, warnings}`; body `{source, parameters, kernel, cell_timeout_seconds, experiment, max_runtime_seconds, inputs}` (inputs as processing jobs take them: `ATELIER_INPUT_<NAME>` in the kernel) |
//! | GET | `/notebooks/runs?source=&limit=` | notebook runs, newest first |
//! | POST | `/notebooks/import` | copy a notebook artifact into the caller's workspace → `{path, url}` (the JupyterLab URL that opens it) |
//! | GET, POST | `/notebook-schedules` | list; create or replace `{name, source, cron, parameters, …}` |
//! | GET, DELETE | `/notebook-schedules/{name}` | one schedule with its runs; delete |
//! | POST | `/notebook-schedules/{name}/run` | a run now → 202 |

use std::collections::BTreeMap;

use artifacts::ArtifactPath;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};
use server::Identity;
use server::atelier_api::{blocking, body_json, job_json, jobs_error};
use server::error::{ApiError, ApiResult, ErrorCode};
use server::routes::{Access, Routes};
use server::workspace::{Ws, doc_in};
use store::Job;
use userjobs::spec::{NOTEBOOK_CHANNEL, resolve_input};

use crate::schedule::NotebookSchedule;
use crate::workspace::{self, WorkspaceError};
use crate::{KIND, Notebooks};

pub fn router(n: Notebooks) -> Routes {
    Routes::new()
        .get("/api/atelier/notebooks", Access::Read, list)
        .get("/api/atelier/notebooks/preview", Access::Read, preview)
        .post("/api/atelier/notebooks/runs", Access::Write, run)
        .get("/api/atelier/notebooks/runs", Access::Read, runs)
        .post("/api/atelier/notebooks/import", Access::Write, import)
        .get(
            "/api/atelier/notebook-schedules",
            Access::Read,
            list_schedules,
        )
        .post(
            "/api/atelier/notebook-schedules",
            Access::Write,
            put_schedule,
        )
        .get(
            "/api/atelier/notebook-schedules/{name}",
            Access::Read,
            get_schedule,
        )
        .delete(
            "/api/atelier/notebook-schedules/{name}",
            Access::Write,
            delete_schedule,
        )
        .post(
            "/api/atelier/notebook-schedules/{name}/run",
            Access::Write,
            run_schedule,
        )
        .with_state(n)
}

/// The caller's space (`default` on an open server), as the proxy names it.
pub fn space_of(who: &Identity) -> String {
    spaces::space_of(Some(who))
}

fn ws_error(e: WorkspaceError) -> ApiError {
    match e {
        WorkspaceError::BadPath(m) => ApiError::invalid(m),
        WorkspaceError::NotFound(_) => ApiError::not_found(e.to_string()),
        WorkspaceError::TooLarge { .. } => ApiError::invalid(e.to_string()),
        WorkspaceError::Io(e) => ApiError::new(ErrorCode::InternalError, e.to_string()),
    }
}

/// A `workspace:<path>` source's path.
fn workspace_rel(source: &str) -> Option<&str> {
    source.strip_prefix("workspace:")
}

/// The canonical source of a workspace notebook, as jobs record it.
pub fn workspace_source(space: &str, rel: &str) -> String {
    format!("workspace:{space}/{rel}")
}

/// The notebook named by `source` and a file name for it: a workspace file
/// of `space`, or an artifact (`runs:/…`, `models:/…`, a path).
async fn read_source(
    n: &Notebooks,
    ws: &str,
    space: &str,
    source: &str,
) -> ApiResult<(Vec<u8>, String, Option<ArtifactPath>)> {
    if let Some(rel) = workspace_rel(source) {
        let (root, space, rel2) = (
            n.workspaces_root.clone(),
            space.to_string(),
            rel.to_string(),
        );
        let bytes =
            blocking(move || workspace::read(&root, &space, &rel2).map_err(ws_error)).await?;
        let file = rel.rsplit('/').next().unwrap_or(rel).to_string();
        return Ok((bytes, file, None));
    }
    let store = n.store.clone();
    // a plain path names a file in the artifact store (an upload, a snapshot)
    let known = [
        "runs:/",
        "models:/",
        "mlflow-artifacts:",
        "datasets/",
        "dataset:",
    ];
    let src = if known.iter().any(|k| source.starts_with(k)) {
        source.to_string()
    } else {
        let p = ArtifactPath::parse(source).map_err(|e| {
            ApiError::invalid(format!(
                "'{source}': {e}; name a notebook as workspace:<path>, runs:/<run>/<path> or an artifact path"
            ))
        })?;
        format!("mlflow-artifacts:/{}", p.as_str())
    };
    let ws = ws.to_string();
    let resolved = blocking(move || {
        resolve_input(store.as_ref(), &ws, NOTEBOOK_CHANNEL, &src).map_err(ApiError::invalid)
    })
    .await?;
    let path = resolved.path;
    if !path.as_str().ends_with(".ipynb") {
        return Err(ApiError::invalid(format!(
            "'{source}' is not a .ipynb file; name a notebook"
        )));
    }
    let bytes = read_artifact(n, &path).await.map_err(|e| {
        if e.code == ErrorCode::ResourceDoesNotExist {
            ApiError::not_found(format!("no notebook at '{source}'"))
        } else {
            e
        }
    })?;
    let file = path
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or("notebook.ipynb")
        .to_string();
    Ok((bytes, file, Some(path)))
}

/// A notebook artifact's bytes (at most [`workspace::MAX_NOTEBOOK_BYTES`]).
async fn read_artifact(n: &Notebooks, path: &ArtifactPath) -> ApiResult<Vec<u8>> {
    use futures::StreamExt;
    let d = n.artifacts.get(path).await.map_err(|e| match e {
        artifacts::ArtifactError::NotFound(_) => {
            ApiError::not_found(format!("no artifact at '{}'", path.as_str()))
        }
        e => ApiError::new(ErrorCode::InternalError, e.to_string()),
    })?;
    if d.size > workspace::MAX_NOTEBOOK_BYTES {
        return Err(ApiError::invalid(format!(
            "'{}' is {} bytes, over the limit of {} bytes for a notebook",
            path.as_str(),
            d.size,
            workspace::MAX_NOTEBOOK_BYTES
        )));
    }
    let mut out = Vec::with_capacity(d.size as usize);
    let mut stream = d.stream;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Put the notebook named by `source` where a job reads it: a workspace
/// file is copied into the artifact store (`notebook-sources/<id>/<file>`
/// in the project's part: the run keeps the notebook as it was); an
/// artifact (the project's own) is used as it is.
/// Returns the artifact path and the canonical source.
pub async fn snapshot(
    n: &Notebooks,
    ws: &str,
    space: &str,
    source: &str,
) -> ApiResult<(String, String)> {
    let (path, canonical, _) = snapshot_read(n, ws, space, source).await?;
    Ok((path, canonical))
}

/// [`snapshot`], and the notebook's bytes as read for it (checked, with
/// the parameters, without reading the notebook again).
async fn snapshot_read(
    n: &Notebooks,
    ws: &str,
    space: &str,
    source: &str,
) -> ApiResult<(String, String, Bytes)> {
    let (bytes, file, artifact) = read_source(n, ws, space, source).await?;
    let bytes = Bytes::from(bytes);
    if let Some(p) = artifact {
        return Ok((p.as_str().to_string(), source.to_string(), bytes));
    }
    // refuse what is not a notebook now, not when the job runs
    nbrender::render(&bytes).map_err(|e| ApiError::invalid(e.to_string()))?;
    let dest = ArtifactPath::parse(&artifacts::projects::in_project(
        ws,
        &format!("notebook-sources/{}/{file}", uuid::Uuid::new_v4().simple()),
    ))
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    n.artifacts
        .put_bytes(&dest, bytes.clone())
        .await
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
    let rel = workspace_rel(source).unwrap_or(source);
    Ok((
        dest.as_str().to_string(),
        workspace_source(space, rel),
        bytes,
    ))
}

fn notebook_of(j: &Job) -> Value {
    serde_json::from_str::<Value>(&j.spec)
        .map(|s| s["notebook"].clone())
        .unwrap_or(Value::Null)
}

/// A notebook run as the notebooks page shows it.
fn run_json(j: &Job) -> Value {
    let nb = notebook_of(j);
    let progress: Value = serde_json::from_str(&j.progress).unwrap_or(Value::Null);
    let duration_ms = match (j.started_ms, j.ended_ms) {
        (Some(s), Some(e)) => Some(e - s),
        (Some(s), None) => Some(store::now_ms() - s),
        _ => None,
    };
    json!({
        "job_id": j.id,
        "name": j.name,
        "status": j.status.as_str(),
        "primary_status": server::atelier_api::primary_status(j),
        "error": j.error,
        "source": nb["source"],
        "schedule": nb["schedule"],
        "parameters": nb["parameters"],
        "run_id": progress["run_id"],
        "experiment_id": progress["experiment_id"],
        "created_ms": j.created_ms,
        "started_ms": j.started_ms,
        "ended_ms": j.ended_ms,
        "duration_ms": duration_ms,
        "owner": j.owner,
    })
}

fn kernels_json(n: &Notebooks) -> Value {
    json!(
        nbexec::kernelspecs(n.python.as_deref())
            .into_iter()
            .map(
                |k| json!({"name": k.name, "display_name": k.display_name, "language": k.language})
            )
            .collect::<Vec<_>>()
    )
}

async fn list(
    State(n): State<Notebooks>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
) -> ApiResult<Json<Value>> {
    let space = space_of(&who);
    let n2 = n.clone();
    let sp = space.clone();
    let out = blocking(move || {
        let files = workspace::list(&n2.workspaces_root, &sp).map_err(ws_error)?;
        let jobs = n2.store.list_jobs(Some(&ws.0), Some(KIND), 1000)?;
        let mut by_source: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for j in &jobs {
            if let Some(s) = notebook_of(j)["source"].as_str() {
                let runs = by_source.entry(s.to_string()).or_default();
                if runs.len() < 5 {
                    runs.push(run_json(j));
                }
            }
        }
        let notebooks: Vec<Value> = files
            .into_iter()
            .map(|f| {
                let runs = by_source
                    .get(&workspace_source(&sp, &f.path))
                    .cloned()
                    .unwrap_or_default();
                json!({"path": f.path, "size": f.size, "modified_ms": f.modified_ms, "runs": runs})
            })
            .collect();
        let recent: Vec<Value> = jobs.iter().take(50).map(run_json).collect();
        let schedules = schedules_json(&n2, &ws.0)?;
        Ok(json!({
            "space": sp,
            "workspace": n2.workspaces_root.join(&sp).display().to_string(),
            "python": n2.python.as_ref().map(|p| p.display().to_string()),
            "kernels": kernels_json(&n2),
            "notebooks": notebooks,
            "runs": recent,
            "schedules": schedules,
        }))
    })
    .await?;
    Ok(Json(out))
}

#[derive(serde::Deserialize)]
struct PreviewQuery {
    source: Option<String>,
}

/// The output notebook of a notebook job (the input one until the first save).
async fn job_notebook(n: &Notebooks, ws: &str, id: &str) -> ApiResult<(Vec<u8>, Value)> {
    let store = n.store.clone();
    let id2 = id.to_string();
    let ws2 = ws.to_string();
    let job = blocking(move || {
        server::workspace::job_in(store.as_ref(), &ws2, &id2).map_err(ApiError::from)
    })
    .await?;
    if job.kind != KIND {
        return Err(ApiError::invalid(format!(
            "job '{id}' is a {} job, not a notebook run",
            job.kind
        )));
    }
    let nb = notebook_of(&job);
    let input = nb["path"].as_str().unwrap_or_default().to_string();
    let file = input.rsplit('/').next().unwrap_or_default().to_string();
    let progress: Value = serde_json::from_str(&job.progress).unwrap_or(Value::Null);
    if let Some(run_id) = progress["run_id"].as_str() {
        let uri = format!("runs:/{run_id}/output/{NOTEBOOK_CHANNEL}/{file}");
        let store = n.store.clone();
        let ws = job.workspace.clone();
        if let Ok(r) = blocking(move || {
            resolve_input(store.as_ref(), &ws, NOTEBOOK_CHANNEL, &uri).map_err(ApiError::invalid)
        })
        .await
            && let Ok(b) = read_artifact(n, &r.path).await
        {
            return Ok((b, job_json(&job)));
        }
    }
    let p = ArtifactPath::parse(&input).map_err(|e| ApiError::invalid(e.to_string()))?;
    let b = read_artifact(n, &p).await?;
    Ok((b, job_json(&job)))
}

async fn preview(
    State(n): State<Notebooks>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    q: Result<Query<PreviewQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("bad query: {e}")))?;
    let source = q.source.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::invalid(
            "give '?source=': workspace:<path>, job:<id>, runs:/<run>/<path> or an artifact path",
        )
    })?;
    let (bytes, job) = if let Some(id) = source.strip_prefix("job:") {
        let (b, j) = job_notebook(&n, &ws.0, id).await?;
        (b, Some(j))
    } else {
        (
            read_source(&n, &ws.0, &space_of(&who), &source).await?.0,
            None,
        )
    };
    let r =
        blocking(move || nbrender::render(&bytes).map_err(|e| ApiError::invalid(e.to_string())))
            .await?;
    Ok(Json(json!({
        "source": source,
        "html": r.html,
        "cells": r.cells,
        "nbformat": format!("{}.{}", r.nbformat.0, r.nbformat.1),
        "kernel": r.kernel,
        "language": r.language,
        "failed_cell": r.failed_cell,
        "job": job,
    })))
}

/// Parameters as JSON values (a string stays a string).
fn parameters_of(v: &Value) -> ApiResult<BTreeMap<String, Value>> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        _ => Err(ApiError::invalid(
            "'parameters' must be an object: {\"alpha\": 0.5, \"epochs\": 3}",
        )),
    }
}

async fn submit_run(
    n: &Notebooks,
    who: &Identity,
    ws: &Ws,
    body: &Value,
) -> ApiResult<(Job, Vec<String>)> {
    let allowed = [
        "source",
        "parameters",
        "kernel",
        "cell_timeout_seconds",
        "experiment",
        "max_runtime_seconds",
        "name",
        "inputs",
    ];
    if let Some(o) = body.as_object()
        && let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "unknown field '{k}'; a notebook run has: {}",
            allowed.join(", ")
        )));
    }
    let source = body["source"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("'source' names the notebook: workspace:<path>, runs:/<run>/<path> or an artifact path")
        })?
        .to_string();
    let parameters = parameters_of(&body["parameters"])?;
    let kernel = body["kernel"].as_str().map(String::from);
    let space = space_of(who);
    let (path, canonical, bytes) = snapshot_read(n, &ws.0, &space, &source).await?;
    // parameters the notebook does not declare, and the kernel, checked now
    let opts = nbexec::ExecOptions {
        parameters: parameters.clone(),
        kernel_name: kernel.clone(),
        python: n.python.clone(),
        ..nbexec::ExecOptions::default()
    };
    let (prepared, warnings) =
        nbexec::prepare(&bytes, &opts).map_err(|e| ApiError::invalid(e.to_string()))?;
    let kernel_name = kernel.clone().or_else(|| {
        prepared["metadata"]["kernelspec"]["name"]
            .as_str()
            .map(String::from)
    });
    let mut spec = json!({
        "notebook": {
            "path": path,
            "parameters": parameters,
            "kernel": kernel_name,
            "cell_timeout_seconds": body["cell_timeout_seconds"],
            "source": canonical,
        },
    });
    for k in ["experiment", "max_runtime_seconds", "name", "inputs"] {
        if !body[k].is_null() {
            spec[k] = body[k].clone();
        }
    }
    let q = n.queue.clone();
    let origin = jobs::Origin::new(&who.name, &ws.0);
    let job = blocking(move || q.submit_as(KIND, spec, &origin, 1).map_err(jobs_error)).await?;
    Ok((job, warnings))
}

async fn run(
    State(n): State<Notebooks>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body_json(&body)?;
    let (job, warnings) = submit_run(&n, &who, &ws, &body).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": job_json(&job), "warnings": warnings})),
    ))
}

#[derive(serde::Deserialize)]
struct RunsQuery {
    source: Option<String>,
    schedule: Option<String>,
    limit: Option<usize>,
}

async fn runs(
    State(n): State<Notebooks>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("bad query: {e}")))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let source = q.source.map(|s| match workspace_rel(&s) {
        // the caller's own workspace unless the space is already named
        Some(rel)
            if !rel.contains('/') || !s.starts_with(&format!("workspace:{}/", space_of(&who))) =>
        {
            workspace_source(&space_of(&who), rel)
        }
        _ => s,
    });
    let store = n.store.clone();
    let out = blocking(move || {
        let jobs = match &q.schedule {
            Some(s) => store.list_jobs_named(KIND, s, limit)?,
            None => store.list_jobs(Some(&ws.0), Some(KIND), 1000)?,
        };
        Ok(jobs
            .iter()
            .filter(|j| j.workspace == ws.0)
            .filter(|j| {
                source
                    .as_deref()
                    .is_none_or(|s| notebook_of(j)["source"].as_str() == Some(s))
            })
            .take(limit)
            .map(run_json)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({"runs": out})))
}

async fn import(
    State(n): State<Notebooks>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = body_json(&body)?;
    let source = body["source"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("'source' names the notebook artifact to copy (runs:/<run>/<path> or an artifact path)"))?
        .to_string();
    if workspace_rel(&source).is_some() {
        return Err(ApiError::invalid(
            "that notebook is in the workspace already",
        ));
    }
    let space = space_of(&who);
    let (bytes, file, _) = read_source(&n, &ws.0, &space, &source).await?;
    nbrender::render(&bytes).map_err(|e| ApiError::invalid(e.to_string()))?;
    let dest = body["path"].as_str().map(String::from).unwrap_or(file);
    let root = n.workspaces_root.clone();
    let sp = space.clone();
    let written =
        blocking(move || workspace::write_new(&root, &sp, &dest, &bytes).map_err(ws_error)).await?;
    Ok(Json(json!({
        "space": space,
        "path": written,
        "url": format!("/notebooks/{space}/lab/tree/{written}"),
    })))
}

// ---- schedules ----

fn schedule_json(s: &NotebookSchedule, runs: &[Job]) -> Value {
    let last = runs.first();
    let failing = last.is_some_and(|j| j.status == store::JobStatus::Failed);
    let next_ms = if s.enabled {
        s.cron().next_after(
            s.last_fired_ms
                .unwrap_or_else(store::now_ms)
                .max(store::now_ms() - 1),
        )
    } else {
        None
    };
    json!({
        "name": s.name,
        "source": s.source,
        "space": s.space,
        "cron": s.cron,
        "parameters": s.parameters,
        "kernel": s.kernel,
        "cell_timeout_seconds": s.cell_timeout_seconds,
        "experiment": s.experiment,
        "enabled": s.enabled,
        "webhooks": s.webhooks,
        "owner": s.owner,
        "last_fired_ms": s.last_fired_ms,
        "next_fire_ms": next_ms,
        "status": if failing { "failing" } else if last.is_some() { "ok" } else { "never run" },
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
    })
}

fn schedules_json(n: &Notebooks, ws: &str) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for row in n.store.list_notebook_schedules()? {
        if row.workspace != ws {
            continue;
        }
        let Ok(s) = serde_json::from_str::<NotebookSchedule>(&row.config) else {
            continue;
        };
        let mut runs = n.store.list_jobs_named(KIND, &s.name, 10)?;
        // (a schedule of that name may have been another project's before)
        runs.retain(|j| j.workspace == ws);
        out.push(schedule_json(&s, &runs));
    }
    Ok(out)
}

async fn list_schedules(
    State(n): State<Notebooks>,
    Extension(ws): Extension<Ws>,
) -> ApiResult<Json<Value>> {
    let out = blocking(move || schedules_json(&n, &ws.0)).await?;
    Ok(Json(json!({"schedules": out})))
}

async fn put_schedule(
    State(n): State<Notebooks>,
    Extension(who): Extension<Identity>,
    Extension(ws): Extension<Ws>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let v = body_json(&body)?;
    let mut s = NotebookSchedule::parse(&v).map_err(ApiError::invalid)?;
    if let Some(check) = &n.webhook_check {
        for w in &s.webhooks {
            check(w).map_err(ApiError::invalid)?;
        }
    }
    s.space = space_of(&who);
    s.owner = who.name.clone();
    // the notebook must be readable now (it is read again at each firing)
    let (bytes, _, _) = read_source(&n, &ws.0, &s.space, &s.source).await?;
    let opts = nbexec::ExecOptions {
        parameters: s.parameters.clone(),
        kernel_name: s.kernel.clone(),
        python: n.python.clone(),
        ..nbexec::ExecOptions::default()
    };
    nbexec::prepare(&bytes, &opts).map_err(|e| ApiError::invalid(e.to_string()))?;
    let n2 = n.clone();
    let out = blocking(move || {
        // keep the firing bookmark of the schedule it replaces
        if let Ok(old) = n2.store.get_notebook_schedule(&s.name)
            && old.workspace == ws.0
            && let Ok(old) = serde_json::from_str::<NotebookSchedule>(&old.config)
        {
            s.last_fired_ms = old.last_fired_ms;
            s.alerted_job = old.alerted_job;
        }
        let text = serde_json::to_string(&s)
            .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
        n2.store.put_notebook_schedule(&ws.0, &s.name, &text)?;
        let mut runs = n2.store.list_jobs_named(KIND, &s.name, 10)?;
        runs.retain(|j| j.workspace == ws.0);
        Ok(schedule_json(&s, &runs))
    })
    .await?;
    Ok(Json(out))
}

fn schedule_name(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    let Path(name) = p.map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
    crate::schedule::check_name(&name).map_err(ApiError::invalid)?;
    Ok(name)
}

/// Schedule `name` of project `ws` (one of another project answers as missing).
fn load_schedule(n: &Notebooks, ws: &str, name: &str) -> ApiResult<NotebookSchedule> {
    let row = doc_in(ws, n.store.get_notebook_schedule(name), "notebook schedule")?;
    serde_json::from_str(&row.config).map_err(|e| {
        ApiError::new(
            ErrorCode::InternalError,
            format!("schedule '{name}' is unreadable: {e}"),
        )
    })
}

async fn get_schedule(
    State(n): State<Notebooks>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let name = schedule_name(p)?;
    let out = blocking(move || {
        let s = load_schedule(&n, &ws.0, &name)?;
        let mut runs = n.store.list_jobs_named(KIND, &name, 50)?;
        runs.retain(|j| j.workspace == ws.0);
        Ok(schedule_json(&s, &runs))
    })
    .await?;
    Ok(Json(out))
}

async fn delete_schedule(
    State(n): State<Notebooks>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let name = schedule_name(p)?;
    blocking(move || {
        load_schedule(&n, &ws.0, &name)?;
        n.store.delete_notebook_schedule(&name)?;
        Ok(())
    })
    .await?;
    Ok(Json(json!({})))
}

async fn run_schedule(
    State(n): State<Notebooks>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = schedule_name(p)?;
    let job = blocking(move || {
        let s = load_schedule(&n, &ws.0, &name)?;
        let id = crate::schedule::fire(&n, &s, &ws.0, "manual").map_err(ApiError::invalid)?;
        Ok(n.store.get_job(&id)?)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"job": job_json(&job)}))))
}
