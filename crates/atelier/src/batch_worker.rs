//! `atelier __batch-transform`: a batch transform on a worker of the
//! server's cluster (see `serving::job`). The task comes in
//! `ATELIER_BATCH_TRANSFORM`, the server's address in `MLFLOW_TRACKING_URI`
//! (and a token in `MLFLOW_TRACKING_TOKEN` when the server wants one): the
//! pipeline file and the dataset are downloaded from the server into a
//! private temporary folder, transformed there with progress lines
//! (`progress {json}`) on stdout, and the outputs (with their `.errors`
//! files) and a summary uploaded under the task's output prefix.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serving::job::{SUMMARY_FILE, TASK_VAR, WorkerSummary, WorkerTask};

use crate::remote::{Client, Scratch};

pub fn run() -> anyhow::Result<std::process::ExitCode> {
    let raw = std::env::var(TASK_VAR).with_context(|| {
        format!("{TASK_VAR} is not set: this command is started by a batch transform job on a cluster, not by hand")
    })?;
    let task: WorkerTask = serde_json::from_str(&raw)
        .with_context(|| format!("{TASK_VAR} is not a batch transform task"))?;
    let base = match std::env::var("MLFLOW_TRACKING_URI") {
        Ok(b) if !b.trim().is_empty() => b,
        _ => bail!(
            "MLFLOW_TRACKING_URI is not set: the worker fetches its data from the server it names"
        ),
    };
    for p in [&task.pipeline, &task.output_prefix] {
        if p.split('/').any(|s| s == ".." || s.is_empty()) {
            bail!("'{p}' is not a plain artifact path");
        }
    }
    let dataset = artifacts::datasets::dataset_path_in(&task.workspace, &task.dataset)
        .map_err(anyhow::Error::msg)?;
    let client = Client::new(&base)?;
    let dir = Scratch::new("batch")?;
    let model_file = dir.path().join("pipeline");
    client.download_artifact(&task.pipeline, &model_file)?;
    let bytes = std::fs::read(&model_file).context("reading the downloaded pipeline")?;
    let model = serving::model::LoadedModel::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", task.pipeline))?;
    let input_dir = dir.path().join("in");
    std::fs::create_dir(&input_dir)?;
    let input = input_dir.join(dataset.as_str().rsplit('/').next().unwrap_or("data"));
    client.download_artifact(dataset.as_str(), &input)?;
    let out = dir.path().join("out");
    let mut last = Instant::now() - Duration::from_secs(1);
    let summary = serving::batch::batch_transform(
        &model.pipeline,
        &input,
        &out,
        &serving::batch::BatchOptions {
            join_input: task.join_input,
        },
        &mut |p| {
            if last.elapsed() >= Duration::from_millis(500) {
                last = Instant::now();
                println!("progress {}", serving::job::progress_json(p));
            }
        },
        &AtomicBool::new(false),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut report = WorkerSummary {
        rows: summary.rows,
        failed: summary.failed,
        errors: serving::job::errors_json(&summary.errors),
        ..Default::default()
    };
    for (_, local) in &summary.outputs {
        let rel = local
            .strip_prefix(&out)
            .unwrap_or(local)
            .display()
            .to_string();
        client.upload_artifact(local, &format!("{}/{rel}", task.output_prefix))?;
        let mut errs = local.as_os_str().to_os_string();
        errs.push(".errors");
        let errs = std::path::PathBuf::from(errs);
        if errs.exists() {
            client.upload_artifact(&errs, &format!("{}/{rel}.errors", task.output_prefix))?;
        }
        report.outputs.push(rel);
    }
    client.put_bytes(
        &format!("{}/{SUMMARY_FILE}", task.output_prefix),
        &serde_json::to_vec(&report)?,
    )?;
    println!(
        "transformed {} rows ({} failed) into {} file(s)",
        report.rows,
        report.failed,
        report.outputs.len()
    );
    Ok(std::process::ExitCode::SUCCESS)
}
