//! Server jobs whose heavy part runs on a Ray cluster (`atelier serve
//! --executor ray`), on the head and the worker node `cargo xtask test`
//! starts beside it (named by `ATELIER_RAY_ADDRESS`; without it the tests say
//! so on stderr and pass). The server here wants tokens: the workers reach it
//! with a token of their job's own, revoked when the job ends.
//!
//! - Autopilot: the candidates run as Ray jobs, several at once, spread over
//!   the cluster's nodes, and the best pipeline is registered as on one
//!   machine; a worker that cannot start fails its candidates with the
//!   reason, and the job says so.
//! - A notebook job: staged on its worker (`atelier job-worker`), it runs on
//!   a real ipykernel there, logs to its run with the mlflow client and
//!   comes back as the executed notebook.
//! - Batch transform of an uploaded dataset: one Ray job fetches the model
//!   and the data from the server, transforms them and uploads the outputs,
//!   which predict as `atelier predict` does, bad rows reported by line.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A server that runs its jobs on the cluster at `ray` and wants tokens:
/// its folder, its data folder, an admin token, the server.
fn ray_server(
    ray: &str,
    extra: &[&str],
) -> (tempfile::TempDir, std::path::PathBuf, String, Server) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = token(&data, "admin", "admin");
    let mut args = vec!["--executor", "ray", "--ray-address", ray, "--require-auth"];
    args.extend_from_slice(extra);
    let s = Server::start(&data, &args);
    (dir, data, admin, s)
}

/// Upload the repository's penguins dataset to `s`.
fn upload_penguins(a: &ureq::Agent, s: &Server, admin: &str) {
    let bytes = std::fs::read(dataset("penguins.csv")).unwrap();
    let (c, v) = call(
        a,
        "PUT",
        &s.url("/api/atelier/datasets/penguins.csv"),
        admin,
        Some(&bytes),
    );
    assert_eq!(c, 201, "{v}");
}

fn call(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<&[u8]>,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let r = match (method, body) {
        ("GET", _) => a.get(url).header("Authorization", &auth).call(),
        ("PUT", Some(b)) => a.put(url).header("Authorization", &auth).send(b),
        (_, Some(b)) => a
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(b),
        _ => unreachable!(),
    };
    let mut r = r.unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn wait_done(a: &ureq::Agent, s: &Server, token: &str, id: &str, limit: Duration) -> Value {
    let t = Instant::now();
    loop {
        let (c, v) = call(
            a,
            "GET",
            &s.url(&format!("/api/atelier/jobs/{id}")),
            token,
            None,
        );
        assert_eq!(c, 200, "{v}");
        let j = v["job"].clone();
        if ["succeeded", "failed", "cancelled"].contains(&j["status"].as_str().unwrap_or("")) {
            return j;
        }
        assert!(t.elapsed() < limit, "job {id} did not end in time: {j}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Token names of the server's data folder.
fn token_names(data: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["token", "list", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The Ray jobs of an Autopilot job's candidates.
fn trial_jobs(a: &ureq::Agent, ray: &str, id: &str) -> Vec<Value> {
    let (c, v) = get(a, &format!("{ray}/api/jobs/")).unwrap();
    assert_eq!(c, 200, "{v}");
    let prefix = format!("atelier-{id}-t");
    v.as_array()
        .unwrap()
        .iter()
        .filter(|j| {
            j["submission_id"]
                .as_str()
                .is_some_and(|s| s.starts_with(&prefix))
        })
        .cloned()
        .collect()
}

#[test]
fn autopilot_evaluates_its_candidates_in_parallel_across_the_clusters_nodes() {
    let Some(ray) = ray_address(
        "ray_cluster::autopilot_evaluates_its_candidates_in_parallel_across_the_clusters_nodes",
    ) else {
        return;
    };
    let (_dir, data, admin, s) = ray_server(&ray, &[]);
    let a = agent();
    upload_penguins(&a, &s, &admin);
    let spec = json!({"dataset": "penguins.csv", "target": "species", "time_budget": 600,
        "max_candidates": 8, "parallel_candidates": 4, "model_name": "penguins-on-ray"});
    let (c, v) = call(
        &a,
        "POST",
        &s.url("/api/atelier/automl"),
        &admin,
        Some(spec.to_string().as_bytes()),
    );
    assert_eq!(c, 202, "{v}");
    let id = v["job"]["id"].as_str().unwrap().to_string();
    let j = wait_done(&a, &s, &admin, &id, Duration::from_secs(900));
    assert_eq!(j["status"], "succeeded", "{j}");
    let p = &j["progress"];
    assert_eq!(p["cluster"]["parallel_candidates"], 4, "{p}");

    // every candidate ran as a Ray job of its own, and each succeeded
    let jobs = trial_jobs(&a, &ray, &id);
    assert_eq!(jobs.len(), 8, "one Ray job per candidate: {jobs:?}");
    for rj in &jobs {
        assert_eq!(rj["status"], "SUCCEEDED", "{rj}");
    }
    // in parallel: some of them ran at the same time
    let spans: Vec<(i64, i64)> = jobs
        .iter()
        .map(|j| {
            (
                j["start_time"].as_i64().unwrap(),
                j["end_time"].as_i64().unwrap(),
            )
        })
        .collect();
    let overlapping = spans
        .iter()
        .enumerate()
        .any(|(i, a)| spans[i + 1..].iter().any(|b| a.0 < b.1 && b.0 < a.1));
    assert!(overlapping, "no two candidates ran at once: {spans:?}");
    // across the nodes: the head and the worker node both evaluated some
    let nodes: BTreeSet<&str> = jobs
        .iter()
        .filter_map(|j| j["driver_node_id"].as_str())
        .collect();
    assert!(
        nodes.len() >= 2,
        "all candidates ran on one node: {nodes:?}"
    );
    // the leaderboard says where each ran, as Ray does
    let cands = p["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 8, "{p}");
    let said: BTreeSet<&str> = cands.iter().filter_map(|c| c["node"].as_str()).collect();
    assert_eq!(said, nodes, "{cands:?}");
    assert!(
        cands.iter().filter(|c| c["status"] == "done").count() >= 6,
        "{cands:?}"
    );
    // the best pipeline is registered, as on one machine
    let r = &j["result"];
    assert!(r["score"].as_f64().is_some_and(|s| s > 0.9), "{r}");
    let (c, mv) = call(
        &a,
        "GET",
        &s.url("/api/2.0/mlflow/registered-models/get?name=penguins-on-ray"),
        &admin,
        None,
    );
    assert_eq!(c, 200, "{mv}");
    // the workers' token is gone with the job
    let names = token_names(&data);
    assert!(names.contains("admin"), "{names}");
    assert!(!names.contains(&format!("autopilot:{id}")), "{names}");
}

#[test]
fn workers_that_cannot_start_fail_the_job_with_the_reason() {
    let Some(ray) =
        ray_address("ray_cluster::workers_that_cannot_start_fail_the_job_with_the_reason")
    else {
        return;
    };
    let (_dir, data, admin, s) = ray_server(&ray, &["--ray-atelier-bin", "/nonexistent/atelier"]);
    let a = agent();
    upload_penguins(&a, &s, &admin);
    let spec = json!({"dataset": "penguins.csv", "target": "species", "time_budget": 300,
        "max_candidates": 2, "parallel_candidates": 2});
    let (c, v) = call(
        &a,
        "POST",
        &s.url("/api/atelier/automl"),
        &admin,
        Some(spec.to_string().as_bytes()),
    );
    assert_eq!(c, 202, "{v}");
    let id = v["job"]["id"].as_str().unwrap().to_string();
    let j = wait_done(&a, &s, &admin, &id, Duration::from_secs(300));
    assert_eq!(j["status"], "failed", "{j}");
    let err = j["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("all 2 candidates failed") && err.contains("/nonexistent/atelier"),
        "{err}"
    );
    let names = token_names(&data);
    assert!(!names.contains(&format!("autopilot:{id}")), "{names}");
}

#[test]
fn a_batch_transform_runs_on_the_cluster_and_predicts_as_atelier_predict() {
    let Some(ray) = ray_address(
        "ray_cluster::a_batch_transform_runs_on_the_cluster_and_predicts_as_atelier_predict",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let atelier = |args: &[&str], envs: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_atelier"))
            .args(args)
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "atelier {args:?}: {err}");
        err
    };
    // a model, and rows to score: one with a bad number
    let model = dir.path().join("penguins.model");
    atelier(
        &[
            "train",
            dataset("penguins.csv").to_str().unwrap(),
            "--target",
            "species",
            "--param",
            "n_estimators=30",
            "-o",
            model.to_str().unwrap(),
        ],
        &[],
    );
    let text = std::fs::read_to_string(dataset("penguins.csv")).unwrap();
    let mut rows: Vec<String> = text
        .lines()
        .take(41)
        .map(|l| l.split_once(',').unwrap().1.to_string())
        .collect();
    let header: Vec<&str> = rows[0].split(',').collect();
    let numeric = header
        .iter()
        .position(|c| c.contains("length") || c.contains("mass"))
        .unwrap();
    let mut bad: Vec<String> = rows[7].split(',').map(str::to_string).collect();
    bad[numeric] = "heavy".into();
    rows[7] = bad.join(",");
    let input = dir.path().join("rows.csv");
    std::fs::write(&input, rows.join("\n") + "\n").unwrap();

    let (_server_dir, data, admin, s) = ray_server(&ray, &[]);
    let out = dir.path().join("out");
    let url = s.url("");
    let err = atelier(
        &[
            "batch-transform",
            model.to_str().unwrap(),
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--server",
            &url,
        ],
        &[("ATELIER_TOKEN", &admin)],
    );
    assert!(err.contains("100%"), "{err}");
    // the job ran on the cluster, as one Ray job
    let a = agent();
    let (c, v) = call(&a, "GET", &s.url("/api/atelier/jobs"), &admin, None);
    assert_eq!(c, 200, "{v}");
    let job = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "batch-transform")
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    let id = job["id"].as_str().unwrap().to_string();
    let (c, j) = call(
        &a,
        "GET",
        &s.url(&format!("/api/atelier/jobs/{id}")),
        &admin,
        None,
    );
    assert_eq!(c, 200, "{j}");
    let r = &j["job"]["result"];
    assert_eq!(r["on_cluster"], true, "{j}");
    assert_eq!(r["rows"], 40, "{r}");
    assert_eq!(r["failed"], 1, "{r}");
    assert_eq!(r["errors"][0]["line"], 8, "{r}");
    let (c, v) = get(&a, &format!("{ray}/api/jobs/")).unwrap();
    assert_eq!(c, 200, "{v}");
    let ray_jobs: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|rj| rj["metadata"]["atelier_job_id"] == id.as_str())
        .collect();
    assert_eq!(ray_jobs.len(), 1, "{v}");
    assert_eq!(ray_jobs[0]["status"], "SUCCEEDED", "{v}");
    // its outputs predict as `atelier predict` does
    let want = dir.path().join("want.csv");
    let mut good = rows.clone();
    good.remove(7);
    let good_input = dir.path().join("good.csv");
    std::fs::write(&good_input, good.join("\n") + "\n").unwrap();
    atelier(
        &[
            "predict",
            model.to_str().unwrap(),
            good_input.to_str().unwrap(),
            "-o",
            want.to_str().unwrap(),
        ],
        &[],
    );
    let got = std::fs::read_to_string(out.join("rows.csv.out")).unwrap();
    let want = std::fs::read_to_string(&want).unwrap();
    // one line per input row: the bad row's fields left empty (its error is in the .errors file)
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 41, "{got}");
    assert_eq!(lines[7], ",,,", "{got}");
    let kept: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .map(|(_, l)| *l)
        .collect();
    assert_eq!(kept.join("\n") + "\n", want);
    let errors = std::fs::read_to_string(out.join("rows.csv.out.errors")).unwrap_or_default();
    assert!(errors.contains("heavy"), "{errors}");
    // the workers' token is gone with the job
    let names = token_names(&data);
    assert!(!names.contains(&format!("batch-transform:{id}")), "{names}");
}

#[test]
fn a_notebook_job_runs_on_the_cluster_and_logs_to_its_run() {
    let Some(ray) =
        ray_address("ray_cluster::a_notebook_job_runs_on_the_cluster_and_logs_to_its_run")
    else {
        return;
    };
    let python = std::env::var_os("ATELIER_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    assert!(
        python.exists(),
        "no Python with ipykernel at {}: run `cargo xtask test` once or set ATELIER_PYTHON",
        python.display()
    );
    let (dir, data, admin, s) = ray_server(&ray, &["--notebook-python", python.to_str().unwrap()]);
    let cell = |src: &str, tags: &[&str]| {
        json!({"cell_type": "code", "execution_count": null, "metadata": {"tags": tags},
               "outputs": [], "source": src})
    };
    let nb = json!({"nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                 "language_info": {"name": "python"}},
    "cells": [
        cell("alpha = 0.1", &["parameters"]),
        cell("import os, mlflow\nmlflow.log_metric('score', alpha * 10)\nprint('where', os.getcwd())", &[]),
    ]});
    let src = dir.path().join("scored.ipynb");
    std::fs::write(&src, nb.to_string()).unwrap();
    let out_nb = dir.path().join("out.ipynb");
    let url = s.url("");
    let out = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["notebooks", "run", src.to_str().unwrap(), "-p", "alpha=0.5"])
        .args(["--output", out_nb.to_str().unwrap(), "--server", &url])
        .env("ATELIER_TOKEN", &admin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // it ran in the worker's own folder, not the server's
    let line = stdout
        .lines()
        .find(|l| l.starts_with("where "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        !line.contains(data.to_str().unwrap()),
        "ran in the server's folder: {line}"
    );
    let executed = std::fs::read_to_string(&out_nb).unwrap();
    assert!(executed.contains("injected-parameters"), "{executed}");
    // on the cluster, as the notebook job's Ray job
    let a = agent();
    let (c, v) = call(&a, "GET", &s.url("/api/atelier/jobs"), &admin, None);
    assert_eq!(c, 200, "{v}");
    let job = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "notebook")
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    let id = job["id"].as_str().unwrap().to_string();
    let (c, v) = get(&a, &format!("{ray}/api/jobs/")).unwrap();
    assert_eq!(c, 200, "{v}");
    assert!(
        v.as_array().unwrap().iter().any(
            |rj| rj["metadata"]["atelier_job_id"] == id.as_str() && rj["status"] == "SUCCEEDED"
        ),
        "{v}"
    );
    // the metric the kernel logged is in the job's run
    let (c, j) = call(
        &a,
        "GET",
        &s.url(&format!("/api/atelier/jobs/{id}")),
        &admin,
        None,
    );
    assert_eq!(c, 200, "{j}");
    let run_id = j["job"]["result"]["run_id"]
        .as_str()
        .or_else(|| j["job"]["progress"]["run_id"].as_str())
        .unwrap_or_else(|| panic!("{j}"))
        .to_string();
    let (c, r) = call(
        &a,
        "GET",
        &s.url(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}")),
        &admin,
        None,
    );
    assert_eq!(c, 200, "{r}");
    let score = r["run"]["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "score")
        .unwrap_or_else(|| panic!("{r}"))["value"]
        .as_f64();
    assert_eq!(score, Some(5.0), "{r}");
}
