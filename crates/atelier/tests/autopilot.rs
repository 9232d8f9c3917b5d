//! Autopilot on a real server: a job started over HTTP answers 202 at once,
//! its candidates appear as runs through the MLflow API while it runs, the
//! best pipeline becomes a registered model version whose artifact predicts
//! like `atelier predict`, reports and the notebook are stored; candidates'
//! loss curves become metric histories; cancel, bad input, a restart mid-job,
//! and `atelier automl --server`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, agent, dataset, get, post};
use serde_json::{Value, json};

fn put(a: &ureq::Agent, url: &str, body: &[u8]) -> (u16, Value) {
    let mut r = a.put(url).send(body).expect("PUT");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn upload(a: &ureq::Agent, s: &Server, name: &str) {
    let bytes = std::fs::read(dataset(name)).expect("dataset");
    let (code, body) = put(a, &s.url(&format!("/api/atelier/datasets/{name}")), &bytes);
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["dataset"]["size"], bytes.len());
}

fn job(a: &ureq::Agent, s: &Server, id: &str) -> Value {
    let (code, body) = get(a, &s.url(&format!("/api/atelier/jobs/{id}"))).expect("get job");
    assert_eq!(code, 200, "{body}");
    body["job"].clone()
}

fn wait_for(
    a: &ureq::Agent,
    s: &Server,
    id: &str,
    pred: impl Fn(&Value) -> bool,
    secs: u64,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let j = job(a, s, id);
        if pred(&j) {
            return j;
        }
        assert!(
            Instant::now() < deadline,
            "job never reached the state; last: {j}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn runs_of_job(a: &ureq::Agent, s: &Server, experiment_id: &str, job_id: &str) -> Vec<Value> {
    let (code, body) = post(
        a,
        &s.url("/api/2.0/mlflow/runs/search"),
        &json!({
            "experiment_ids": [experiment_id],
            "filter": format!("tags.`atelier.job_id` = '{job_id}' and tags.`atelier.autopilot` = 'candidate'"),
            "max_results": 1000,
        }),
    )
    .expect("search");
    assert_eq!(code, 200, "{body}");
    body["runs"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_job_logs_candidates_as_runs_registers_the_best_and_stores_reports() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = agent();
    upload(&a, &s, "titanic.csv");
    let t0 = Instant::now();
    let (code, body) = post(
        &a,
        &s.url("/api/atelier/automl"),
        &json!({"dataset": "titanic.csv", "target": "Survived", "time_budget": 60, "max_candidates": 8, "model_name": "titanic-e2e"}),
    )
    .unwrap();
    assert_eq!(code, 202, "{body}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "202 at once, not after the search"
    );
    let id = body["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["job"]["status"], "queued");

    // candidate runs appear while the job runs, with their metrics and params
    let running = wait_for(
        &a,
        &s,
        &id,
        |j| {
            j["progress"]["candidates"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
                || j["status"] != "running" && j["status"] != "queued"
        },
        60,
    );
    let exp = running["progress"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_for(
        &a,
        &s,
        &id,
        |j| j["status"] == "succeeded" || j["status"] == "failed",
        120,
    );
    assert_eq!(done["status"], "succeeded", "{done}");
    let r = &done["result"];
    assert_eq!(r["problem"], "binary");
    assert_eq!(r["metric"], "auc");
    assert!(
        r["score"].as_f64().unwrap() > 0.83,
        "titanic AUC {}",
        r["score"]
    );
    // why the search stopped: in words and as a kind, in the result and the progress
    assert_eq!(r["stop_kind"], "max_candidates", "{r}");
    assert_eq!(
        r["stop_reason"],
        "the maximum number of candidates (8) was reached"
    );
    assert_eq!(r["stop"]["kind"], "max_candidates");
    assert_eq!(r["stop"]["max"], 8);
    assert_eq!(done["progress"]["stop_kind"], "max_candidates");

    let runs = runs_of_job(&a, &s, &exp, &id);
    assert_eq!(runs.len(), 8, "one run per candidate");
    for run in &runs {
        let metrics: Vec<&str> = run["data"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["key"].as_str().unwrap())
            .collect();
        for k in [
            "validation_auc",
            "fit_seconds",
            "model_bytes",
            "accuracy",
            "log_loss",
        ] {
            assert!(metrics.contains(&k), "{k} in {metrics:?}");
        }
        let params: Vec<&str> = run["data"]["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["key"].as_str().unwrap())
            .collect();
        assert!(params.contains(&"algorithm"));
        let tags = run["data"]["tags"].as_array().unwrap();
        assert!(
            tags.iter()
                .any(|t| t["key"] == "mlflow.parentRunId" && t["value"] == r["run_id"])
        );
        assert_eq!(run["info"]["status"], "FINISHED");
    }
    // the leaderboard's best equals the best candidate run
    let best_run_score = runs
        .iter()
        .filter_map(|r| {
            r["data"]["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["key"] == "validation_auc")
                .and_then(|m| m["value"].as_f64())
        })
        .fold(f64::MIN, f64::max);
    let lb_best = r["leaderboard"][0]["score"].as_f64().unwrap();
    assert!((best_run_score - lb_best).abs() < 1e-12);

    // the registered version points at the pipeline, with lineage tags
    let (code, mv) = get(
        &a,
        &s.url("/api/2.0/mlflow/model-versions/get?name=titanic-e2e&version=1"),
    )
    .unwrap();
    assert_eq!(code, 200, "{mv}");
    let mv = &mv["model_version"];
    assert_eq!(mv["run_id"], r["run_id"]);
    let source = mv["source"].as_str().unwrap();
    assert!(
        source.starts_with("mlflow-artifacts:/") && source.ends_with("/model"),
        "{source}"
    );
    let tags = mv["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["key"] == "atelier.job_id" && t["value"] == id.as_str())
    );
    assert!(
        tags.iter()
            .any(|t| t["key"] == "atelier.dataset" && t["value"] == "titanic.csv")
    );

    // the stored pipeline predicts exactly like a local `atelier predict`
    let model_path = r["artifacts"]["model"].as_str().unwrap();
    assert_eq!(
        format!("mlflow-artifacts:/{model_path}"),
        format!("{source}/pipeline.atelier")
    );
    let mut resp = a
        .get(&s.url(&format!("/api/2.0/mlflow-artifacts/artifacts/{model_path}")))
        .call()
        .unwrap();
    let bytes = resp.body_mut().read_to_vec().unwrap();
    let model = dir.path().join("best.atelier");
    std::fs::write(&model, bytes).unwrap();
    let out = dir.path().join("pred.csv");
    let st = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["predict"])
        .arg(&model)
        .arg(dataset("titanic.csv"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 892);

    // reports: HTML with plots, served sandboxed; the notebook is nbformat 4
    for name in ["data_exploration", "model_quality"] {
        let mut resp = a
            .get(&s.url(&format!("/api/atelier/jobs/{id}/reports/{name}")))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            csp.contains("sandbox") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        let html = resp.body_mut().read_to_string().unwrap();
        assert!(html.matches("<svg").count() >= 3, "{name} has plots");
        assert!(!html.contains("<script"), "{name} runs no script");
    }
    let (code, nb) = get(
        &a,
        &s.url(&format!("/api/atelier/jobs/{id}/reports/notebook")),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert_eq!(nb["nbformat"], 4);
    let (code, err) = get(&a, &s.url(&format!("/api/atelier/jobs/{id}/reports/nope"))).unwrap();
    assert_eq!(code, 404);
    assert!(err["message"].as_str().unwrap().contains("model_quality"));

    // the parent run is finished and carries the score
    let (_, parent) = get(
        &a,
        &s.url(&format!(
            "/api/2.0/mlflow/runs/get?run_id={}",
            r["run_id"].as_str().unwrap()
        )),
    )
    .unwrap();
    assert_eq!(parent["run"]["info"]["status"], "FINISHED");
}

/// A metric's full history on a run: (step, value) in step order.
fn history(a: &ureq::Agent, s: &Server, run_id: &str, key: &str) -> Vec<(i64, f64)> {
    let (code, body) = get(
        a,
        &s.url(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={key}"
        )),
    )
    .expect("get-history");
    assert_eq!(code, 200, "{body}");
    assert!(body["next_page_token"].is_null(), "one page");
    let mut pts: Vec<(i64, f64)> = body["metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            assert_eq!(m["key"], key);
            (m["step"].as_i64().unwrap(), m["value"].as_f64().unwrap())
        })
        .collect();
    pts.sort_by_key(|p| p.0);
    pts
}

fn tag<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["data"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str())
}

#[test]
fn candidate_runs_log_their_loss_curves_as_metric_histories() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = agent();
    upload(&a, &s, "penguins.csv");
    // the portfolio's first six: gbm-default, linear, gbm-small, random-forest, gbm-large, mlp
    let (code, body) = post(
        &a,
        &s.url("/api/atelier/automl"),
        &json!({"dataset": "penguins.csv", "target": "species", "time_budget": 60, "max_candidates": 6}),
    )
    .unwrap();
    assert_eq!(code, 202, "{body}");
    let id = body["job"]["id"].as_str().unwrap().to_string();
    let done = wait_for(
        &a,
        &s,
        &id,
        |j| j["status"] == "succeeded" || j["status"] == "failed",
        120,
    );
    assert_eq!(done["status"], "succeeded", "{done}");
    let exp = done["result"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = runs_of_job(&a, &s, &exp, &id);
    assert_eq!(runs.len(), 6);
    let (mut gbm, mut mlp) = (0, 0);
    for run in &runs {
        let run_id = run["info"]["run_id"].as_str().unwrap();
        let train = history(&a, &s, run_id, "train_loss");
        let valid = history(&a, &s, run_id, "val_loss");
        match tag(run, "atelier.algorithm").unwrap() {
            "gbm" => {
                gbm += 1;
                // multiclass gbm trains a fixed 400 trees: one point per iteration, steps 1..=400
                let param = |k: &str| {
                    run["data"]["params"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| p["key"] == k)
                        .and_then(|p| p["value"].as_str())
                        .map(str::to_string)
                };
                // (the curves are fold 1's; the `iterations` metric is the mean over folds,
                // where a fold whose trees stop splitting ends early)
                let trees: usize = param("n_estimators").unwrap().parse().unwrap();
                assert_eq!(trees, 400);
                assert_eq!(train.len(), trees, "train_loss points");
                assert_eq!(valid.len(), trees, "val_loss points");
                for (i, ((st, _), (sv, _))) in train.iter().zip(&valid).enumerate() {
                    assert_eq!((*st, *sv), (i as i64 + 1, i as i64 + 1));
                }
                // the training loss decreases overall
                let first = train[0].1;
                let last = train[trees - 1].1;
                assert!(last < 0.1 * first, "train_loss {first} -> {last}");
                assert!(valid[trees - 1].1 < valid[0].1);
                assert_eq!(tag(run, "atelier.loss"), Some("multi_logloss"));
            }
            "mlp" => {
                mlp += 1;
                // one point per epoch trained (early stopping may end before max_epochs)
                assert!(!train.is_empty() && train.len() <= 100, "{}", train.len());
                assert_eq!(train.len(), valid.len());
                assert_eq!(train.last().unwrap().0, train.len() as i64);
                assert!(train.last().unwrap().1 < train[0].1);
                assert_eq!(tag(run, "atelier.loss"), Some("cross_entropy"));
            }
            other => {
                assert!(
                    train.is_empty() && valid.is_empty(),
                    "{other} logs no curves"
                );
                assert_eq!(tag(run, "atelier.loss"), None);
            }
        }
    }
    assert_eq!((gbm, mlp), (3, 1));
}

#[test]
fn cancel_stops_a_running_job_and_registers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = agent();
    upload(&a, &s, "adult.csv");
    let (code, body) = post(&a, &s.url("/api/atelier/automl"), &json!({"dataset": "adult.csv", "target": "income", "time_budget": 900, "max_candidates": 500})).unwrap();
    assert_eq!(code, 202, "{body}");
    let id = body["job"]["id"].as_str().unwrap().to_string();
    wait_for(
        &a,
        &s,
        &id,
        |j| j["status"] == "running" && j["progress"]["run_id"].is_string(),
        60,
    );
    let t = Instant::now();
    let (code, body) = post(
        &a,
        &s.url(&format!("/api/atelier/jobs/{id}/cancel")),
        &json!({}),
    )
    .unwrap();
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["job"]["cancel_requested"], true);
    let j = wait_for(&a, &s, &id, |j| j["status"] != "running", 120);
    assert_eq!(j["status"], "cancelled");
    assert!(
        t.elapsed() < Duration::from_secs(90),
        "stops after the step in progress"
    );
    // the parent run is KILLED; no model version
    let (_, parent) = get(
        &a,
        &s.url(&format!(
            "/api/2.0/mlflow/runs/get?run_id={}",
            j["progress"]["run_id"].as_str().unwrap()
        )),
    )
    .unwrap();
    assert_eq!(parent["run"]["info"]["status"], "KILLED");
    let (code, _) = get(
        &a,
        &s.url("/api/2.0/mlflow/registered-models/get?name=adult-income"),
    )
    .unwrap();
    assert_eq!(code, 404);
    // cancelling again is a clear 400, an unknown job a 404
    let (code, body) = post(
        &a,
        &s.url(&format!("/api/atelier/jobs/{id}/cancel")),
        &json!({}),
    )
    .unwrap();
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("nothing to cancel")
    );
    let (code, _) = post(&a, &s.url("/api/atelier/jobs/0123/cancel"), &json!({})).unwrap();
    assert_eq!(code, 404);
}

#[test]
fn bad_input_gets_a_4xx_that_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = agent();
    upload(&a, &s, "penguins.csv");
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"dataset": "penguins.csv", "target": "nope"}),
            "has no column 'nope'",
        ),
        (
            json!({"dataset": "penguins.csv", "target": "species", "time_budget": 0}),
            "time_budget must be a positive",
        ),
        (
            json!({"dataset": "penguins.csv", "target": "species", "time_budget": -3}),
            "time_budget must be a positive",
        ),
        (
            json!({"dataset": "penguins.csv", "target": "species", "metric": "rmse"}),
            "does not fit a multiclass problem",
        ),
        (
            json!({"dataset": "penguins.csv", "target": "species", "metric": "wat"}),
            "unknown metric 'wat'",
        ),
        (
            json!({"dataset": "missing.csv", "target": "species"}),
            "no dataset named 'missing.csv'",
        ),
        (
            json!({"dataset": "penguins.xlsx", "target": "species"}),
            "not a supported file",
        ),
        (
            json!({"dataset": "../penguins.csv", "target": "species"}),
            "without folders",
        ),
        (json!({"target": "species"}), "missing field `dataset`"),
        (
            json!({"dataset": "penguins.csv", "target": "species", "problem_type": "ranking"}),
            "not one of binary",
        ),
        // a bias report's facet and label are checked against the data at once
        (
            json!({"dataset": "penguins.csv", "target": "species", "bias": {"facet": "nope", "label_values": ["Adelie"]}}),
            "no column 'nope'",
        ),
        (
            json!({"dataset": "penguins.csv", "target": "species", "bias": {"facet": "sex", "facet_values": ["other"], "label_values": ["Adelie"]}}),
            "has no value 'other'",
        ),
        (
            json!({"dataset": "penguins.csv", "target": "species", "bias": {"facet": "sex"}}),
            "positive outcome",
        ),
        (
            json!({"dataset": "penguins.csv", "target": "species", "bias": {"facet": "body_mass_g", "facet_values": ["4000"], "facet_threshold": 4000, "label_values": ["Adelie"]}}),
            "not both",
        ),
        (
            json!({"dataset": "penguins.csv", "target": "species", "bias": {"facet": "sex", "colour": 1}}),
            "unknown field `colour`",
        ),
    ];
    for (spec, want) in cases {
        let (code, body) = post(&a, &s.url("/api/atelier/automl"), &spec).unwrap();
        assert_eq!(code, 400, "{spec} -> {body}");
        let msg = body["message"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{spec}: {msg:?} should say {want:?}");
    }
    // malformed bodies and kinds
    let mut r = a
        .post(&s.url("/api/atelier/automl"))
        .header("Content-Type", "application/json")
        .send("{nope")
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap()
            .contains("not valid JSON")
    );
    let (code, body) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "paint", "spec": {}}),
    )
    .unwrap();
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown job kind 'paint'")
    );
    // datasets: unsupported names, empty uploads, unknown previews, and data a job cannot read
    let (code, body) = put(&a, &s.url("/api/atelier/datasets/x.xlsx"), b"a,b\n");
    assert_eq!(code, 400, "{body}");
    let (code, body) = put(&a, &s.url("/api/atelier/datasets/empty.csv"), b"");
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("empty"));
    let (code, _) = get(&a, &s.url("/api/atelier/datasets/none.csv/preview")).unwrap();
    assert_eq!(code, 404);
    let (code, body) = put(
        &a,
        &s.url("/api/atelier/datasets/broken.parquet"),
        b"PAR1 not really parquet",
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = get(&a, &s.url("/api/atelier/datasets/broken.parquet/preview")).unwrap();
    assert_eq!(code, 400, "{body}");
    // nothing was queued by any of this, and the server is fine
    let (_, jobs) = get(&a, &s.url("/api/atelier/jobs")).unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0);
    let (code, preview) = get(&a, &s.url("/api/atelier/datasets/penguins.csv/preview")).unwrap();
    assert_eq!(code, 200);
    assert_eq!(preview["rows"], 344);
    assert_eq!(preview["columns"][0]["name"], "species");
    assert_eq!(preview["columns"][0]["kind"], "categorical");
}

#[test]
fn a_job_interrupted_by_a_crash_is_marked_failed_once_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let lease = ["--job-lease-seconds", "2"];
    let mut s = Server::start(dir.path(), &lease);
    let a = agent();
    upload(&a, &s, "adult.csv");
    let (_, body) = post(
        &a,
        &s.url("/api/atelier/automl"),
        &json!({"dataset": "adult.csv", "target": "income", "time_budget": 900}),
    )
    .unwrap();
    let id = body["job"]["id"].as_str().unwrap().to_string();
    wait_for(&a, &s, &id, |j| j["status"] == "running", 60);
    s.kill9();
    let s = Server::start(dir.path(), &lease);
    // AutoML runs in the server's process: its work died with it, and with
    // one attempt allowed the job fails (not "running" forever)
    wait_for(&a, &s, &id, |j| j["status"] == "failed", 30);
    let j = job(&a, &s, &id);
    assert!(j["error"].as_str().unwrap().contains("interrupted"), "{j}");
    // the dataset survived and a new job runs
    let (code, _) = get(&a, &s.url("/api/atelier/datasets/adult.csv/preview")).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn the_cli_runs_automl_on_a_server_and_writes_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let out = dir.path().join("penguins.atelier");
    let res = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["automl"])
        .arg(dataset("penguins.csv"))
        .args([
            "--target",
            "species",
            "--time-budget",
            "60",
            "--max-candidates",
            "4",
            "--server",
            &s.url(""),
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(err.contains("leaderboard (accuracy)"), "{err}");
    assert_eq!(err.matches("multiclass problem").count(), 1, "{err}");
    assert!(
        err.contains("registered as models:/penguins-species/1"),
        "{err}"
    );
    assert!(learn::Pipeline::load(&out).is_ok());
    // jobs list shows it; a bad server URL is a clear error
    let list = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["jobs", "list", "--server", &s.url("")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("succeeded"));
    let bad = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["jobs", "cancel", "abc", "--server", &s.url("")])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("No job with id 'abc'"));
}
