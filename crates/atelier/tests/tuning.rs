//! Tuning jobs against the real binary: a Bayesian search over a training
//! command (standard-library Python logging its objective through the REST
//! API) finds better points than its first trial, stops hopeless trials
//! early, makes every trial's run a child of the parent run and tags the
//! best; `atelier tune` uploads the code, submits and follows a search.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A trial: `val_loss = (lr − 0.1)² + (depth − 5)²/10 + 0.5/(step + 1)`,
/// logged per step. Hopeless trials (base above 0.3) are slow: ten steps of
/// 0.3 s; good ones log five steps at once.
const TRIAL: &str = r#"
import json, os, time, urllib.request
lr = float(os.environ["SM_HP_LR"])
depth = int(os.environ["SM_HP_DEPTH"])
base = (lr - 0.1) ** 2 + (depth - 5) ** 2 / 10
bad = base > 0.3
uri = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric"
for step in range(10 if bad else 5):
    body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "val_loss",
            "value": base + 0.5 / (step + 1), "timestamp": int(time.time() * 1000), "step": step}
    req = urllib.request.Request(uri, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    if bad:
        time.sleep(0.3)
"#;

fn job(a: &ureq::Agent, s: &Server, id: &str) -> Value {
    let (c, r) = get(a, &s.url(&format!("/api/atelier/jobs/{id}"))).unwrap();
    assert_eq!(c, 200, "{r}");
    r["job"].clone()
}

fn wait(a: &ureq::Agent, s: &Server, id: &str, limit: Duration) -> Value {
    let t = Instant::now();
    loop {
        let j = job(a, s, id);
        if ["succeeded", "failed", "cancelled"].contains(&j["status"].as_str().unwrap_or("")) {
            return j;
        }
        assert!(t.elapsed() < limit, "the tuning job did not end: {j:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run(a: &ureq::Agent, s: &Server, id: &str) -> Value {
    let (c, r) = get(a, &s.url(&format!("/api/2.0/mlflow/runs/get?run_id={id}"))).unwrap();
    assert_eq!(c, 200, "{r}");
    r["run"].clone()
}

fn tag<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["data"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)?["value"]
        .as_str()
}

#[test]
fn a_bayesian_search_improves_stops_hopeless_trials_and_nests_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--job-workers", "4"]);
    let a = agent();
    let spec = json!({
        "training": {"command": ["/usr/bin/python3", "-c", TRIAL], "name": "quad",
                     "experiment": "tuning-test",
                     "hyperparameters": {"epochs": "5"}},
        "objective": {"metric": "val_loss", "direction": "minimize"},
        "parameters": {
            "lr": {"type": "continuous", "min": 0.001, "max": 1, "scale": "log"},
            "depth": {"type": "integer", "min": 2, "max": 8}
        },
        "strategy": "bayesian", "max_jobs": 12, "max_parallel_jobs": 2,
        "early_stopping": "median", "seed": 1
    });
    // mistakes are 400s that name the field, before anything runs
    let mut bad = spec.clone();
    bad["parameters"]["lr"]["min"] = json!(0);
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "tuning", "spec": bad}),
    )
    .unwrap();
    assert_eq!(c, 400, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("parameters.lr.min"),
        "{r}"
    );
    let mut bad = spec.clone();
    bad["parameters"]["epochs"] = json!({"type": "integer", "min": 1, "max": 9});
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "tuning", "spec": bad}),
    )
    .unwrap();
    assert_eq!(c, 400, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("fixed hyperparameter"),
        "{r}"
    );

    let started = Instant::now();
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "tuning", "spec": spec}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(r["job"]["name"], "tuning quad");
    let j = wait(&a, &s, &id, Duration::from_secs(120));
    eprintln!("tuning took {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(j["status"], "succeeded", "{j:#}");
    let res = &j["result"];
    assert_eq!(res, &j["progress"], "the result is the final progress");

    // the shape the Studio renders
    assert_eq!(
        res["objective"],
        json!({"metric": "val_loss", "direction": "minimize"})
    );
    let parent = res["parent_run_id"].as_str().unwrap().to_string();
    let trials = res["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 12, "{res:#}");
    for t in trials {
        for k in [
            "job_id",
            "run_id",
            "params",
            "status",
            "objective",
            "stopped_early",
        ] {
            assert!(t.get(k).is_some(), "trial without {k}: {t}");
        }
        let p = t["params"].as_object().unwrap();
        let lr = p["lr"].as_f64().unwrap();
        let depth = p["depth"].as_i64().unwrap();
        assert!(
            (0.001..=1.0).contains(&lr) && (2..=8).contains(&depth),
            "{t}"
        );
        assert!(t["stopped_early"].is_boolean());
    }
    let best = &res["best"];
    for k in ["job_id", "run_id", "objective", "params"] {
        assert!(best.get(k).is_some(), "best without {k}: {best}");
    }
    let best_obj = best["objective"].as_f64().unwrap();
    let summary: Vec<String> = trials
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {}",
                t["params"], t["status"], t["objective"], t["stopped_early"]
            )
        })
        .collect();
    eprintln!("{}", summary.join("\n"));

    // better than the first (random) trial
    let first = trials[0]["objective"].as_f64().unwrap();
    assert!(
        best_obj < first,
        "best {best_obj} vs first {first}: {summary:#?}"
    );
    // the best is the lowest objective among trials that succeeded
    let lowest = trials
        .iter()
        .filter(|t| t["status"] == "succeeded")
        .filter_map(|t| t["objective"].as_f64())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best_obj, lowest);
    // a hopeless trial was stopped early, and its command did not run to the end
    let stopped: Vec<&Value> = trials
        .iter()
        .filter(|t| t["stopped_early"] == true)
        .collect();
    assert!(
        !stopped.is_empty(),
        "no trial was stopped early: {summary:#?}"
    );
    for t in &stopped {
        assert_eq!(t["status"], "cancelled", "{t}");
        let p = &t["params"];
        let base = (p["lr"].as_f64().unwrap() - 0.1).powi(2)
            + (p["depth"].as_f64().unwrap() - 5.0).powi(2) / 10.0;
        assert!(base > 0.3, "only hopeless trials stop: {t}");
        let (c, h) = get(
            &a,
            &s.url(&format!(
                "/api/2.0/mlflow/metrics/get-history?run_id={}&metric_key=val_loss",
                t["run_id"].as_str().unwrap()
            )),
        )
        .unwrap();
        assert_eq!(c, 200, "{h}");
        assert!(h["metrics"].as_array().unwrap().len() < 10, "{h}");
    }

    // runs: children of the parent, the best tagged, the parent with the best
    for (i, t) in trials.iter().enumerate() {
        let r = run(&a, &s, t["run_id"].as_str().unwrap());
        assert_eq!(
            tag(&r, "mlflow.parentRunId"),
            Some(parent.as_str()),
            "trial {i}: {r}"
        );
        assert_eq!(tag(&r, "atelier.tuning_job"), Some(id.as_str()));
        let is_best = t["job_id"] == best["job_id"];
        assert_eq!(
            tag(&r, "atelier.tuning_best") == Some("true"),
            is_best,
            "trial {i}"
        );
    }
    let p = run(&a, &s, &parent);
    assert_eq!(p["info"]["status"], "FINISHED");
    assert_eq!(tag(&p, "atelier.job_id"), Some(id.as_str()));
    assert_eq!(tag(&p, "atelier.job_kind"), Some("tuning"));
    let metrics = p["data"]["metrics"].as_array().unwrap();
    let logged = metrics.iter().find(|m| m["key"] == "val_loss").unwrap();
    assert_eq!(logged["value"].as_f64().unwrap(), best_obj);
    let params = p["data"]["params"].as_array().unwrap();
    let param = |k: &str| {
        params
            .iter()
            .find(|x| x["key"] == k)
            .map(|x| x["value"].clone())
    };
    assert_eq!(param("epochs"), Some(json!("5")));
    assert_eq!(
        param("depth"),
        Some(json!(best["params"]["depth"].to_string()))
    );
    // all in the training spec's experiment
    assert_eq!(
        p["info"]["experiment_id"],
        run(&a, &s, trials[0]["run_id"].as_str().unwrap())["info"]["experiment_id"]
    );
}

#[test]
fn atelier_tune_uploads_the_code_submits_and_follows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--job-workers", "3"]);
    let code = dir.path().join("code");
    std::fs::create_dir_all(code.join("__pycache__")).unwrap();
    std::fs::write(code.join("__pycache__/junk.pyc"), b"x").unwrap();
    std::fs::write(code.join("train.py"), TRIAL).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args([
            "tune",
            "--server",
            &s.url(""),
            "--objective",
            "val_loss:minimize",
        ])
        .args([
            "--param",
            "lr=log-uniform:1e-3:1",
            "--param",
            "depth=int:2:8",
        ])
        .args([
            "--strategy",
            "random",
            "--max-jobs",
            "3",
            "--parallel",
            "2",
            "--seed",
            "3",
        ])
        .args([
            "--hyperparameter",
            "epochs=2",
            "--experiment",
            "cli-tuning",
            "--code",
        ])
        .arg(&code)
        .args(["--", "/usr/bin/python3", "train.py"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("uploaded 1 code file(s)"), "{err}");
    assert!(err.contains("best val_loss"), "{err}");
    assert!(err.contains("tagged atelier.tuning_best=true"), "{err}");
    // a mistake in the search is refused before anything is uploaded
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args([
            "tune",
            "--server",
            &s.url(""),
            "--objective",
            "val_loss:minimize",
        ])
        .args(["--param", "lr=log-uniform:0:1", "--", "python3", "train.py"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--param") && err.contains("log scale"),
        "{err}"
    );
}

/// A tuning spec whose trials run `command` (random search, 2 at once).
fn spec_of(command: Value, max_jobs: u64) -> Value {
    json!({
        "training": {"command": command, "name": "t"},
        "objective": {"metric": "val_loss", "direction": "minimize"},
        "parameters": {
            "lr": {"type": "continuous", "min": 0.001, "max": 1, "scale": "log"},
            "depth": {"type": "integer", "min": 2, "max": 8}
        },
        "strategy": "random", "max_jobs": max_jobs, "max_parallel_jobs": 2, "seed": 7
    })
}

/// Wait until the tuning job has `n` trials with runs, all running.
fn wait_running(a: &ureq::Agent, s: &Server, id: &str, n: usize) -> Value {
    let t = Instant::now();
    loop {
        let j = job(a, s, id);
        let trials = j["progress"]["trials"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if trials.len() >= n
            && trials
                .iter()
                .take(n)
                .all(|t| t["status"] == "running" && t["run_id"].is_string())
        {
            return j;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "trials never ran: {j:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cancelling_a_tuning_job_cancels_its_trials() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--job-workers", "3"]);
    let a = agent();
    let spec = spec_of(json!(["sh", "-c", "sleep 30"]), 5);
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "tuning", "spec": spec}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let j = wait_running(&a, &s, &id, 2);
    let parent = j["progress"]["parent_run_id"].as_str().unwrap().to_string();
    let (c, r) = post(
        &a,
        &s.url(&format!("/api/atelier/jobs/{id}/cancel")),
        &json!({}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let j = wait(&a, &s, &id, Duration::from_secs(20));
    assert_eq!(j["status"], "cancelled", "{j:#}");
    let trials = j["progress"]["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "no trial after the cancel: {j:#}");
    for t in trials {
        assert_eq!(t["status"], "cancelled", "{t}");
        let tj = wait(
            &a,
            &s,
            t["job_id"].as_str().unwrap(),
            Duration::from_secs(20),
        );
        assert_eq!(tj["status"], "cancelled", "{tj:#}");
        assert_eq!(
            run(&a, &s, t["run_id"].as_str().unwrap())["info"]["status"],
            "KILLED"
        );
    }
    assert_eq!(run(&a, &s, &parent)["info"]["status"], "KILLED");
}

#[test]
fn a_killed_servers_tuning_job_is_resumed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--job-workers", "3", "--job-lease-seconds", "3"];
    let mut s1 = Server::start(dir.path(), &args);
    let a = agent();
    // six steps of 0.4 s; logging retries while no server answers
    let trial = r#"
import json, os, time, urllib.request
lr = float(os.environ["SM_HP_LR"]); depth = int(os.environ["SM_HP_DEPTH"])
uri = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric"
for step in range(6):
    body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "val_loss", "step": step,
            "value": (lr - 0.1) ** 2 + (depth - 5) ** 2 / 10, "timestamp": int(time.time() * 1000)}
    for attempt in range(100):
        try:
            req = urllib.request.Request(uri, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=5).read()
            break
        except Exception:
            time.sleep(0.2)
    time.sleep(0.4)
"#;
    let spec = spec_of(json!(["/usr/bin/python3", "-c", trial]), 4);
    let (c, r) = post(
        &a,
        &s1.url("/api/atelier/jobs"),
        &json!({"kind": "tuning", "spec": spec}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let before = wait_running(&a, &s1, &id, 2)["progress"].clone();
    let port = s1.port;
    s1.kill9();
    // the same port: the trials' commands (still running) log to it
    let s2 = Server::try_start(dir.path(), &args, port).expect("restart");
    let j = wait(&a, &s2, &id, Duration::from_secs(60));
    assert_eq!(j["status"], "succeeded", "{j:#}");
    let p = &j["result"];
    assert_eq!(
        p["parent_run_id"], before["parent_run_id"],
        "the same parent run"
    );
    let trials = p["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4, "{p:#}");
    for (t, b) in trials.iter().zip(before["trials"].as_array().unwrap()) {
        assert_eq!(t["job_id"], b["job_id"], "trials kept across the take-over");
        assert_eq!(t["params"], b["params"]);
    }
    let ids: std::collections::HashSet<&str> = trials
        .iter()
        .map(|t| t["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    for t in trials {
        assert_eq!(t["status"], "succeeded", "{t}");
        let r = run(&a, &s2, t["run_id"].as_str().unwrap());
        assert_eq!(tag(&r, "mlflow.parentRunId"), p["parent_run_id"].as_str());
    }
    let events: Vec<&str> = j["secondary_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"Reattached"), "{events:?}");
    assert!(p["best"]["objective"].is_number());
}

#[test]
fn a_tuning_job_whose_trials_all_fail_stops_and_names_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--job-workers", "3"]);
    let a = agent();
    let cmd = json!([
        "sh",
        "-c",
        "echo 'no such column: target' > \"$SM_OUTPUT_DIR/failure\"; exit 3"
    ]);
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "tuning", "spec": spec_of(cmd, 20)}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let j = wait(&a, &s, &id, Duration::from_secs(30));
    assert_eq!(j["status"], "failed", "{j:#}");
    let err = j["error"].as_str().unwrap();
    assert!(
        err.contains("trials failed") && err.contains("no such column: target"),
        "{err}"
    );
    let trials = j["progress"]["trials"].as_array().unwrap();
    assert!(trials.len() < 6, "it gave up early: {j:#}");
    assert!(trials.iter().all(|t| t["objective"].is_null()));
    assert_eq!(j["progress"]["best"], Value::Null);
}
