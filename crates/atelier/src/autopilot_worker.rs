//! `atelier __autopilot-trial`: one Autopilot candidate, on a worker of the
//! server's cluster (see `autopilot::cluster`). The task comes in
//! `ATELIER_AUTOPILOT_TRIAL`, the server's address in `MLFLOW_TRACKING_URI`
//! (and a token in `MLFLOW_TRACKING_TOKEN` when the server wants one): the
//! dataset is downloaded from the server into a private temporary folder,
//! the candidate evaluated exactly as the search would, and the result
//! uploaded where the task says. One line on stdout says what happened (the
//! job's log); any failure is one line on stderr and a non-zero exit.

use anyhow::{Context, bail};

use crate::remote::{Client, Scratch};

pub fn run() -> anyhow::Result<std::process::ExitCode> {
    let var = autopilot::cluster::TASK_VAR;
    let raw = std::env::var(var).with_context(|| {
        format!("{var} is not set: this command is started by an Autopilot job on a cluster, not by hand")
    })?;
    let task: autopilot::WorkerTask =
        serde_json::from_str(&raw).with_context(|| format!("{var} is not an Autopilot trial"))?;
    let base = match std::env::var("MLFLOW_TRACKING_URI") {
        Ok(b) if !b.trim().is_empty() => b,
        _ => bail!(
            "MLFLOW_TRACKING_URI is not set: the worker fetches its data from the server it names"
        ),
    };
    if task
        .result_path
        .split('/')
        .any(|s| s == ".." || s.is_empty())
    {
        bail!(
            "the result path '{}' is not a plain artifact path",
            task.result_path
        );
    }
    let client = Client::new(&base)?;
    let (main, validation) = task.dataset_paths().map_err(anyhow::Error::msg)?;
    let dir = Scratch::new(&format!("trial-{}", task.trial.id))?;
    let fetch = |p: &artifacts::ArtifactPath| -> anyhow::Result<std::path::PathBuf> {
        let name = p.as_str().rsplit('/').next().unwrap_or("data");
        let local = dir.path().join(name);
        client.download_artifact(p.as_str(), &local)?;
        Ok(local)
    };
    let data = fetch(&main)?;
    let val = match &validation {
        Some(v) => Some(fetch(v)?),
        None => None,
    };
    let started = std::time::Instant::now();
    let result = task
        .evaluate(&data, val.as_deref())
        .map_err(|e| anyhow::anyhow!("candidate {}: {e}", task.trial.id))?;
    let body = serde_json::to_vec(&result)?;
    client.put_bytes(&task.result_path, &body)?;
    println!(
        "candidate {} ({}): {}{} in {:.2} s on {}",
        task.trial.id,
        task.trial.name,
        result.status,
        result
            .score
            .map(|s| format!(", score {s:.5}"))
            .unwrap_or_default(),
        started.elapsed().as_secs_f64(),
        hostname()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}
