//! `atelier serve --executor ray`: a processing job runs on a real Ray head
//! (the one `cargo xtask test` starts, named by `ATELIER_RAY_ADDRESS`; the
//! tests that need it say on stderr that they were skipped without it), its
//! output lines come back through the jobs API, its outputs and log land in
//! its run, and a cancel stops it through Ray. A wrong address stops the
//! server at start-up with a message naming the setting.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn ray_address(test: &str) -> Option<String> {
    match std::env::var("ATELIER_RAY_ADDRESS") {
        Ok(a) if !a.trim().is_empty() => Some(a.trim().trim_end_matches('/').to_string()),
        _ => {
            // straight to stderr: the harness does not capture this
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED ray::{test}: ATELIER_RAY_ADDRESS is not set (start a Ray head with `cargo xtask ray start` and export the address it prints; `cargo xtask test` does both)"
            );
            None
        }
    }
}

fn job(a: &ureq::Agent, s: &Server, id: &str) -> Value {
    let (c, r) = get(a, &s.url(&format!("/api/atelier/jobs/{id}"))).unwrap();
    assert_eq!(c, 200, "{r}");
    r["job"].clone()
}

fn wait_status(a: &ureq::Agent, s: &Server, id: &str, want: &[&str], limit: Duration) -> Value {
    let t = Instant::now();
    loop {
        let j = job(a, s, id);
        if want.contains(&j["status"].as_str().unwrap_or("")) {
            return j;
        }
        assert!(t.elapsed() < limit, "job {id} is not {want:?}: {j}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_lines(a: &ureq::Agent, s: &Server, id: &str) -> Vec<String> {
    let mut from = 0u64;
    let mut got = Vec::new();
    loop {
        let (c, v) = get(
            a,
            &s.url(&format!("/api/atelier/jobs/{id}/logs?from={from}")),
        )
        .unwrap();
        assert_eq!(c, 200, "{v}");
        let next = v["next"].as_u64().unwrap();
        for l in v["lines"].as_array().unwrap() {
            got.push(l["text"].as_str().unwrap().to_string());
        }
        if next == from {
            return got;
        }
        from = next;
    }
}

/// The Ray job of an Atelier job, as Ray's Jobs API lists it.
fn ray_job(a: &ureq::Agent, ray: &str, id: &str) -> Value {
    let (c, v) = get(a, &format!("{ray}/api/jobs/atelier-{id}-1")).unwrap();
    assert_eq!(c, 200, "Ray has no job for {id}: {v}");
    v
}

#[test]
fn a_processing_job_runs_on_ray_and_its_log_and_outputs_come_back() {
    let Some(ray) = ray_address("a_processing_job_runs_on_ray_and_its_log_and_outputs_come_back")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &["--executor", "ray", "--ray-address", &ray],
    );
    let a = agent();
    // an input, uploaded as any dataset is
    let mut r = a
        .put(s.url("/api/2.0/mlflow-artifacts/artifacts/datasets/raw.csv"))
        .send("a,b\n1,2\n3,4\n")
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.body_mut().read_to_string().unwrap_or_default()
    );
    let script = "set -e\n\
        echo \"rows: $(wc -l < \"$ATELIER_INPUT_RAW/raw.csv\" | tr -d ' ')\"\n\
        grep -v '^a,' \"$ATELIER_INPUT_RAW/raw.csv\" > \"$ATELIER_OUTPUT_CLEAN/clean.csv\"\n\
        echo \"tracking at $MLFLOW_TRACKING_URI\"\n\
        echo 'to stderr' >&2\n\
        echo done";
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "processing", "spec": {
            "command": ["sh", "-c", script],
            "inputs": {"raw": "datasets/raw.csv"},
            "outputs": ["clean"],
            "experiment": "on-ray",
        }}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let j = wait_status(
        &a,
        &s,
        &id,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(180),
    );
    assert_eq!(j["status"], "succeeded", "{j}");
    // it ran on Ray: the head has the job, under the Atelier job's id
    let rj = ray_job(&a, &ray, &id);
    assert_eq!(rj["status"], "SUCCEEDED", "{rj}");
    assert_eq!(rj["metadata"]["atelier_job_id"], id.as_str(), "{rj}");
    // the log through the jobs API: Ray's merged stream, nothing of Ray's own
    let lines = log_lines(&a, &s, &id);
    assert_eq!(
        lines,
        [
            "rows: 3".to_string(),
            format!("tracking at {}", s.url("")),
            "to stderr".into(),
            "done".into()
        ]
    );
    // the output and the log are in the job's run
    let run_id = j["result"]["run_id"].as_str().unwrap().to_string();
    assert_eq!(j["result"]["outputs"]["clean"]["files"], 1, "{j}");
    let (c, listed) = get(
        &a,
        &s.url(&format!(
            "/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=output/clean"
        )),
    )
    .unwrap();
    assert_eq!(c, 200, "{listed}");
    let files: Vec<&str> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["output/clean/clean.csv"]);
    let (c, logs) = get(
        &a,
        &s.url(&format!(
            "/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=logs"
        )),
    )
    .unwrap();
    assert_eq!(c, 200, "{logs}");
    assert!(
        logs["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "logs/output.jsonl"),
        "{logs}"
    );
    let (c, run) = get(
        &a,
        &s.url(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}")),
    )
    .unwrap();
    assert_eq!(c, 200);
    let art = run["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let rel = art
        .split("mlflow-artifacts:/")
        .nth(1)
        .unwrap_or_else(|| panic!("{art}"));
    let mut r = a
        .get(s.url(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/{rel}/output/clean/clean.csv"
        )))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.body_mut().read_to_string().unwrap(), "1,2\n3,4\n");
    // the run's copy of the log has the same lines
    let mut r = a
        .get(s.url(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/{rel}/logs/output.jsonl"
        )))
        .call()
        .unwrap();
    let copy: Vec<String> = r
        .body_mut()
        .read_to_string()
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(copy, lines);
}

#[test]
fn a_cancelled_job_is_stopped_on_ray() {
    let Some(ray) = ray_address("a_cancelled_job_is_stopped_on_ray") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &["--executor", "ray", "--ray-address", &ray],
    );
    let a = agent();
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "processing", "spec": {
            "command": ["sh", "-c", "echo waiting; exec sleep 600"],
        }}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    // running on Ray, its first line read back
    let t = Instant::now();
    while !log_lines(&a, &s, &id).contains(&"waiting".to_string()) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{}",
            job(&a, &s, &id)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (c, r) = post(
        &a,
        &s.url(&format!("/api/atelier/jobs/{id}/cancel")),
        &json!({}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let j = wait_status(
        &a,
        &s,
        &id,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(60),
    );
    assert_eq!(j["status"], "cancelled", "{j}");
    assert_eq!(ray_job(&a, &ray, &id)["status"], "STOPPED");
}

/// Two servers on one database, both on Ray: the one holding a job is
/// killed with `kill -9` while the job runs on Ray; the other adopts it from
/// the stored handle once the lease runs out and follows it to its end — it
/// runs once, and its log has every line.
#[test]
fn a_killed_servers_ray_job_is_adopted_by_another_server() {
    let Some(ray) = ray_address("a_killed_servers_ray_job_is_adopted_by_another_server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--executor",
        "ray",
        "--ray-address",
        &ray,
        "--job-workers",
        "1",
        "--job-lease-seconds",
        "3",
    ];
    let mut s1 = Server::start(dir.path(), &args);
    let mut s2 = Server::start(dir.path(), &args);
    let a = agent();
    let ledger = dir.path().join("ledger.txt");
    let cmd = format!(
        "echo started; sleep 5; echo \"$ATELIER_JOB_ID\" >> '{}'; echo finished",
        ledger.display()
    );
    let (c, r) = post(
        &a,
        &s1.url("/api/atelier/jobs"),
        &json!({"kind": "processing", "spec": {"command": ["sh", "-c", cmd]}}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    // wait until its first line came back from Ray, and find who holds it
    let t = Instant::now();
    while !log_lines(&a, &s1, &id).contains(&"started".to_string()) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{}",
            job(&a, &s1, &id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let holder: u32 = job(&a, &s1, &id)["worker"]
        .as_str()
        .and_then(|w| w.split(':').nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap();
    let (victim, survivor) = if s1.child.id() == holder {
        (&mut s1, &s2)
    } else {
        assert_eq!(s2.child.id(), holder);
        (&mut s2, &s1)
    };
    victim.kill9();
    let j = wait_status(
        &a,
        survivor,
        &id,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(120),
    );
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["attempt"], 1, "adopted, not run again: {j}");
    let steps: Vec<&str> = j["secondary_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"Reattached"), "{steps:?}");
    let text = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(text.lines().count(), 1, "the command ran once: {text}");
    assert_eq!(log_lines(&a, survivor, &id), ["started", "finished"]);
    assert_eq!(ray_job(&a, &ray, &id)["status"], "SUCCEEDED");
}

/// A job started on Ray is still followed after the server comes back
/// with the local executor: the stored handle names the Ray head.
#[test]
fn a_server_switched_back_to_local_follows_the_ray_job_it_adopts() {
    let Some(ray) = ray_address("a_server_switched_back_to_local_follows_the_ray_job_it_adopts")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lease = ["--job-workers", "1", "--job-lease-seconds", "3"];
    let mut on_ray = Server::start(
        dir.path(),
        &[
            &["--executor", "ray", "--ray-address", &ray][..],
            &lease[..],
        ]
        .concat(),
    );
    let a = agent();
    let (c, r) = post(
        &a,
        &on_ray.url("/api/atelier/jobs"),
        &json!({"kind": "processing", "spec": {"command": ["sh", "-c", "echo started; sleep 4; echo finished"]}}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let t = Instant::now();
    while !log_lines(&a, &on_ray, &id).contains(&"started".to_string()) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{}",
            job(&a, &on_ray, &id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    on_ray.kill9();
    let local = Server::start(
        dir.path(),
        &[&["--executor", "local"][..], &lease[..]].concat(),
    );
    let j = wait_status(
        &a,
        &local,
        &id,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(120),
    );
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(log_lines(&a, &local, &id), ["started", "finished"]);
    assert_eq!(ray_job(&a, &ray, &id)["status"], "SUCCEEDED");
}

/// Needs no Ray: runs with or without `ATELIER_RAY_ADDRESS`.
#[test]
fn a_wrong_ray_address_stops_the_server_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let err = match Server::try_start(
        dir.path(),
        &["--executor", "ray", "--ray-address", &nowhere],
        0,
    ) {
        Ok(_) => panic!("the server started with nothing at {nowhere}"),
        Err(e) => e,
    };
    assert!(
        err.contains(&format!(
            "--executor ray: the Ray cluster at {nowhere} is unreachable"
        )) && err.contains("--ray-address"),
        "{err}"
    );
    // and without an address at all (none from the environment either)
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["serve", "--port", "0", "--executor", "ray", "--data-dir"])
        .arg(dir.path())
        .env_remove("ATELIER_RAY_ADDRESS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--executor ray needs the Ray head's address: --ray-address"),
        "{err}"
    );
}
