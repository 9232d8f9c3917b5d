//! The `"batch-transform"` job (on the `jobs` queue): [`batch_transform`]
//! run on the server, for `atelier batch-transform --server` and the
//! Studio.
//!
//! Spec (JSON):
//! - `model`: `models:/<name>/<version>`, `models:/<name>@<alias>`,
//!   `runs:/…` or `mlflow-artifacts:/…`;
//! - the input, one of `dataset` (a dataset uploaded to the server, see
//!   `/api/atelier/datasets`) or `input` (a file or folder path on the
//!   server's machine — only when the server runs open on loopback);
//! - `output` (optional, same restriction): a folder on the server's
//!   machine; without it the outputs go to the artifact store under
//!   `batch-transform/<job id>/` (`<file>.out`, and `<file>.out.errors`
//!   when rows failed);
//! - `join_input` (optional, default false).
//!
//! On a server with a cluster executor (`--executor ray`), a transform of
//! an uploaded `dataset` into the artifact store runs on the cluster: one
//! job of the executor running `atelier __batch-transform` with a
//! [`WorkerTask`] in [`TASK_VAR`], which downloads the pipeline file and the
//! dataset from the server's artifact API, transforms there, prints its
//! progress as `progress {json}` lines (followed here through the
//! executor's log), uploads the outputs and `summary.json` under
//! `batch-transform/<job id>/`, and this job reads the summary back.
//! Transforms of paths on the server's machine stay on the server.
//!
//! Progress: `{"fraction", "rows", "failed", "files_done", "files_total",
//! "current"}`; result: `{"outputs": [...], "rows", "failed", "errors":
//! [{"file", "line", "message"}] (first 100), "model", "artifact_path"}`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use artifacts::{ArtifactPath, ArtifactStore};
use jobs::{CheckContext, JobContext, JobFailure, Runner};
use serde_json::{Value, json};

use crate::batch::{BatchOptions, batch_transform};

pub const KIND: &str = "batch-transform";

/// The environment variable that carries a cluster worker's [`WorkerTask`].
pub const TASK_VAR: &str = "ATELIER_BATCH_TRANSFORM";

/// The file, beside the outputs, in which a cluster worker leaves its
/// [`WorkerSummary`].
pub const SUMMARY_FILE: &str = "summary.json";

/// How long a batch transform may run on the cluster.
const CLUSTER_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// What a cluster worker is asked to do.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkerTask {
    /// The pipeline file, as a path of the artifact store.
    pub pipeline: String,
    /// The uploaded dataset to transform.
    pub dataset: String,
    pub join_input: bool,
    /// Where the outputs and [`SUMMARY_FILE`] go, as a path of the artifact
    /// store (`batch-transform/<job id>`).
    pub output_prefix: String,
    /// The job's project, whose dataset it is (none: the default one).
    #[serde(default)]
    pub workspace: String,
}

/// What a cluster worker reports in [`SUMMARY_FILE`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkerSummary {
    /// The outputs, relative to the task's `output_prefix`.
    pub outputs: Vec<String>,
    pub rows: u64,
    pub failed: u64,
    /// The first 100 failures: `{"file", "line", "message"}`.
    pub errors: Vec<Value>,
}

/// Runs batch transform jobs.
pub struct BatchTransformRunner {
    /// Whether specs may name paths on the server's own machine (`input`,
    /// `output`). Only for a server open on loopback: with authentication
    /// on, an editor's token must not read or write the server's files.
    pub allow_local_paths: bool,
    /// Where transforms of uploaded datasets run, when the server has a
    /// cluster.
    cluster: Option<jobs::cluster::Cluster>,
}

impl BatchTransformRunner {
    pub fn new(allow_local_paths: bool) -> Self {
        BatchTransformRunner {
            allow_local_paths,
            cluster: None,
        }
    }

    /// Transforms of uploaded datasets run on `cluster`.
    pub fn with_cluster(mut self, cluster: jobs::cluster::Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }
}

/// The first 100 row errors, as the job's result lists them.
pub fn errors_json(errors: &[crate::batch::RowError]) -> Vec<Value> {
    errors
        .iter()
        .take(100)
        .map(|e| {
            json!({
                "file": e.file.file_name().map_or_else(String::new, |f| f.to_string_lossy().to_string()),
                "line": e.line,
                "message": e.message,
            })
        })
        .collect()
}

/// The job's progress document for a progress report.
pub fn progress_json(p: &crate::batch::BatchProgress) -> Value {
    json!({
        "fraction": p.fraction(),
        "rows": p.rows,
        "failed": p.failed,
        "files_done": p.files_done,
        "files_total": p.files_total,
        "current": p.current,
    })
}

struct Spec {
    model: String,
    dataset: Option<String>,
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    join_input: bool,
}

fn parse(spec: &Value) -> Result<Spec, String> {
    let s = |k: &str| spec.get(k).and_then(Value::as_str).map(str::to_string);
    let model = s("model").ok_or("give the 'model' to use, e.g. models:/churn/3")?;
    let dataset = s("dataset");
    let input = s("input").map(PathBuf::from);
    if dataset.is_some() == input.is_some() {
        return Err(
            "give one of 'dataset' (an uploaded dataset) or 'input' (a path on the server)".into(),
        );
    }
    if let Some(obj) = spec.as_object() {
        for k in obj.keys() {
            if !["model", "dataset", "input", "output", "join_input"].contains(&k.as_str()) {
                return Err(format!(
                    "unknown field '{k}'; a batch transform takes model, dataset or input, output, join_input"
                ));
            }
        }
    }
    Ok(Spec {
        model,
        dataset,
        input,
        output: s("output").map(PathBuf::from),
        join_input: spec
            .get("join_input")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn dataset_path(workspace: &str, name: &str) -> Result<ArtifactPath, String> {
    artifacts::datasets::dataset_path_in(workspace, name)
}

impl Runner for BatchTransformRunner {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn check(&self, spec: &Value, ctx: &CheckContext) -> Result<String, String> {
        let s = parse(spec)?;
        if !self.allow_local_paths && (s.input.is_some() || s.output.is_some()) {
            return Err("this server does not read or write its own files by path ('input'/'output'): give an uploaded 'dataset' instead — `atelier batch-transform --server` uploads for you — or, on a server open on loopback, start it with --allow-local-paths".into());
        }
        crate::model::resolve_in(ctx.store.as_ref(), &ctx.workspace, &s.model)
            .map_err(|e| e.to_string())?;
        let what = match (&s.dataset, &s.input) {
            (Some(d), _) => {
                let p = dataset_path(&ctx.workspace, d)?;
                let exists = ctx
                    .rt
                    .block_on(ctx.artifacts.get(&p))
                    .map(|_| true)
                    .unwrap_or(false);
                if !exists {
                    return Err(format!("no dataset named '{d}'; upload it first"));
                }
                d.clone()
            }
            (None, Some(i)) => {
                if !i.exists() {
                    return Err(format!(
                        "{}: no such file or folder on the server",
                        i.display()
                    ));
                }
                i.display().to_string()
            }
            (None, None) => unreachable!("parse checks one is given"),
        };
        Ok(format!("batch transform {what} with {}", s.model))
    }

    fn run(&self, ctx: &JobContext) -> Result<Value, JobFailure> {
        let s = parse(&ctx.spec).map_err(JobFailure::Failed)?;
        if !self.allow_local_paths && (s.input.is_some() || s.output.is_some()) {
            return Err(JobFailure::msg(
                "local paths are not allowed on this server",
            ));
        }
        let resolved = crate::model::resolve_in(ctx.store.as_ref(), &ctx.job.workspace, &s.model)
            .map_err(JobFailure::msg)?;
        let (real_path, model) = ctx
            .block_on(crate::model::load(&ctx.artifacts, &resolved.artifact_path))
            .map_err(JobFailure::msg)?;
        if let (Some(cluster), Some(dataset), None) = (&self.cluster, &s.dataset, &s.output) {
            return on_cluster(ctx, cluster, &s, dataset, &real_path);
        }
        let tmp = tempfile::tempdir().map_err(JobFailure::msg)?;
        let input = match (&s.dataset, &s.input) {
            (Some(d), _) => {
                let p = dataset_path(&ctx.job.workspace, d).map_err(JobFailure::Failed)?;
                match ctx.artifacts.local_file(&p).map_err(JobFailure::msg)? {
                    Some(local) => local,
                    None => {
                        let dest = tmp.path().join("in").join(d);
                        std::fs::create_dir_all(tmp.path().join("in")).map_err(JobFailure::msg)?;
                        ctx.block_on(ctx.artifacts.download_to(&p, &dest))
                            .map_err(JobFailure::msg)?;
                        dest
                    }
                }
            }
            (None, Some(i)) => i.clone(),
            (None, None) => return Err(JobFailure::msg("no input")),
        };
        let out_dir = s.output.clone().unwrap_or_else(|| tmp.path().join("out"));
        let mut last = Instant::now() - Duration::from_secs(1);
        let cancel = ctx.cancel_flag();
        let summary = batch_transform(
            &model.pipeline,
            &input,
            &out_dir,
            &BatchOptions {
                join_input: s.join_input,
            },
            &mut |p| {
                if last.elapsed() >= Duration::from_millis(500) {
                    last = Instant::now();
                    ctx.progress(&progress_json(p));
                }
            },
            &cancel,
        )
        .map_err(JobFailure::msg)?;
        if summary.cancelled {
            return Err(JobFailure::Cancelled);
        }
        let mut outputs = Vec::new();
        for (_, out) in &summary.outputs {
            match &s.output {
                Some(_) => outputs.push(out.display().to_string()),
                None => {
                    // into the artifact store, with the .errors file beside
                    let rel = out.strip_prefix(&out_dir).unwrap_or(out);
                    let mut files = vec![(out.clone(), rel.display().to_string())];
                    let mut errs = out.as_os_str().to_os_string();
                    errs.push(".errors");
                    let errs = PathBuf::from(errs);
                    if errs.exists() {
                        files.push((errs, format!("{}.errors", rel.display())));
                    }
                    for (local, rel) in files {
                        let dest = artifacts::projects::in_project(
                            &ctx.job.workspace,
                            &format!("batch-transform/{}/{rel}", ctx.job.id),
                        );
                        upload(ctx, &ctx.artifacts, &local, &dest)?;
                        if !rel.ends_with(".errors") {
                            outputs.push(format!("mlflow-artifacts:/{dest}"));
                        }
                    }
                }
            }
        }
        let errors = errors_json(&summary.errors);
        ctx.progress(&json!({"fraction": 1.0, "rows": summary.rows, "failed": summary.failed}));
        Ok(json!({
            "outputs": outputs,
            "rows": summary.rows,
            "failed": summary.failed,
            "errors": errors,
            "model": s.model,
            "artifact_path": real_path,
        }))
    }
}

/// The transform of an uploaded dataset as a job of the cluster's executor
/// (see the module docs).
fn on_cluster(
    ctx: &JobContext,
    cluster: &jobs::cluster::Cluster,
    s: &Spec,
    dataset: &str,
    pipeline: &str,
) -> Result<Value, JobFailure> {
    let token = cluster
        .token(
            &ctx.store,
            &format!("batch-transform:{}", ctx.job.id),
            &ctx.job.workspace,
        )
        .map_err(JobFailure::msg)?;
    let prefix = artifacts::projects::in_project(
        &ctx.job.workspace,
        &format!("batch-transform/{}", ctx.job.id),
    );
    let task = WorkerTask {
        pipeline: pipeline.to_string(),
        dataset: dataset.to_string(),
        join_input: s.join_input,
        output_prefix: prefix.clone(),
        workspace: ctx.job.workspace.clone(),
    };
    let mut env = cluster.worker_env(token.as_ref());
    // (the worker reads and writes through the server, in the job's project)
    env.push(("MLFLOW_WORKSPACE".to_string(), ctx.job.workspace.clone()));
    env.push((
        TASK_VAR.to_string(),
        serde_json::to_string(&task).map_err(JobFailure::msg)?,
    ));
    let tmp = std::env::temp_dir();
    let launch = jobs::executor::Launch {
        job_id: ctx.job.id.clone(),
        argv: vec![cluster.atelier_bin.clone(), "__batch-transform".into()],
        env,
        cwd: tmp.clone(),
        state_dir: tmp.join(format!("atelier-batch-{}-{}", ctx.job.id, ctx.job.attempt)),
    };
    ctx.event("Transforming", "on the cluster");
    let cancel = ctx.cancel_flag();
    let mut last = Instant::now() - Duration::from_secs(1);
    let ran = cluster.run_one(
        &launch,
        CLUSTER_LIMIT,
        &|| cancel.load(std::sync::atomic::Ordering::Relaxed),
        &mut |line| {
            if let Some(p) = line.strip_prefix("progress ")
                && let Ok(v) = serde_json::from_str::<Value>(p)
                && last.elapsed() >= Duration::from_millis(500)
            {
                last = Instant::now();
                ctx.progress(&v);
            }
        },
    );
    match ran {
        Ok(()) => {}
        Err(e) if e == "cancelled" => return Err(JobFailure::Cancelled),
        Err(e) => return Err(JobFailure::msg(e)),
    }
    let path = ArtifactPath::parse(&format!("{prefix}/{SUMMARY_FILE}")).map_err(JobFailure::msg)?;
    let bytes = ctx
        .block_on(ctx.artifacts.read_all(&path))
        .map_err(|e| JobFailure::msg(format!("the worker ended without its summary ({e})")))?;
    let summary: WorkerSummary = serde_json::from_slice(&bytes)
        .map_err(|e| JobFailure::msg(format!("the worker's summary is not readable: {e}")))?;
    ctx.progress(&json!({"fraction": 1.0, "rows": summary.rows, "failed": summary.failed}));
    Ok(json!({
        "outputs": summary
            .outputs
            .iter()
            .map(|o| format!("mlflow-artifacts:/{prefix}/{o}"))
            .collect::<Vec<_>>(),
        "rows": summary.rows,
        "failed": summary.failed,
        "errors": summary.errors,
        "model": s.model,
        "artifact_path": pipeline,
        "on_cluster": true,
    }))
}

fn upload(
    ctx: &JobContext,
    artifacts: &ArtifactStore,
    local: &std::path::Path,
    dest: &str,
) -> Result<(), JobFailure> {
    let p = ArtifactPath::parse(dest).map_err(JobFailure::msg)?;
    let bytes = std::fs::read(local).map_err(JobFailure::msg)?;
    ctx.block_on(artifacts.put_bytes(&p, bytes.into()))
        .map_err(JobFailure::msg)?;
    Ok(())
}
