//! `atelier serve --executor ray`: a processing job runs on a real Ray head
//! (the one `cargo xtask test` starts, named by `ATELIER_RAY_ADDRESS`; the
//! tests that need it say on stderr that they were skipped without it), its
//! output lines come back through the jobs API, its outputs and log land in
//! its run, and a cancel stops it through Ray. By default a job is staged on
//! its worker by `atelier job-worker` (inputs and code fetched from the
//! server, outputs uploaded to the run, in a folder of the worker's that is
//! not the server's job folder); `--ray-shared-filesystem` runs it in the
//! server's folder. A wrong address stops the server at start-up with a
//! message naming the setting, and the worker refuses a missing, garbled or
//! path-tricking manifest with one clear line.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

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

/// PUT `body` at `path` of the artifact store, with `token` when given.
fn upload(a: &ureq::Agent, s: &Server, token: Option<&str>, path: &str, body: &str) {
    let mut req = a.put(s.url(&format!("/api/2.0/mlflow-artifacts/artifacts/{path}")));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.send(body).unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{path}: {}",
        r.body_mut().read_to_string().unwrap_or_default()
    );
}

/// The text of a file of the artifact store, with `token` when given.
fn download(a: &ureq::Agent, s: &Server, token: Option<&str>, path: &str) -> String {
    let mut req = a.get(s.url(&format!("/api/2.0/mlflow-artifacts/artifacts/{path}")));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.call().unwrap();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(r.status().as_u16(), 200, "{path}: {text}");
    text
}

/// A run's artifact folder, as a path of the artifact store.
fn run_root(a: &ureq::Agent, s: &Server, run_id: &str) -> String {
    let (c, run) = get(
        a,
        &s.url(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}")),
    )
    .unwrap();
    assert_eq!(c, 200, "{run}");
    let art = run["run"]["info"]["artifact_uri"].as_str().unwrap();
    art.split("mlflow-artifacts:/")
        .nth(1)
        .unwrap_or_else(|| panic!("{art}"))
        .trim_start_matches('/')
        .to_string()
}

#[test]
fn a_processing_job_runs_on_ray_and_its_log_and_outputs_come_back() {
    let Some(ray) =
        ray_address("ray::a_processing_job_runs_on_ray_and_its_log_and_outputs_come_back")
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
        sh where.sh\n\
        echo \"tracking at $MLFLOW_TRACKING_URI\"\n\
        echo 'to stderr' >&2\n\
        echo done";
    // its code, uploaded as the CLI does: it notes where it ran
    upload(
        &a,
        &s,
        None,
        "jobs-code/p1/where.sh",
        "pwd > \"$ATELIER_OUTPUT_CLEAN/cwd.txt\"\n",
    );
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "processing", "spec": {
            "command": ["sh", "-c", script],
            "code": "jobs-code/p1",
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
    assert_eq!(j["result"]["outputs"]["clean"]["files"], 2, "{j}");
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
    assert_eq!(files, ["output/clean/clean.csv", "output/clean/cwd.txt"]);
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
    // staged: it ran in the code folder of a folder of the worker's own, not
    // in the server's job folder, and that folder is gone
    let cwd = download(&a, &s, None, &format!("{rel}/output/clean/cwd.txt"));
    let cwd = std::path::Path::new(cwd.trim());
    assert!(cwd.ends_with("code"), "{}", cwd.display());
    assert!(
        !cwd.starts_with(dir.path()),
        "it ran in the server's folder: {}",
        cwd.display()
    );
    assert!(!cwd.exists(), "the worker left {} behind", cwd.display());
    assert!(
        !s.data_dir
            .join("jobs")
            .join(&id)
            .join("processing/input/raw/raw.csv")
            .exists(),
        "the server downloaded the input itself"
    );
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
    let Some(ray) = ray_address("ray::a_cancelled_job_is_stopped_on_ray") else {
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
    let Some(ray) = ray_address("ray::a_killed_servers_ray_job_is_adopted_by_another_server")
    else {
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
    let Some(ray) =
        ray_address("ray::a_server_switched_back_to_local_follows_the_ray_job_it_adopts")
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

/// POST JSON with a bearer token: (status, body).
fn post_as(a: &ureq::Agent, url: &str, token: &str, body: &Value) -> (u16, Value) {
    let mut r = a
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .send_json(body)
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn get_as(a: &ureq::Agent, url: &str, token: &str) -> Value {
    let mut r = a
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(r.status().as_u16(), 200, "{url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A training job on a server that wants tokens: staged on its worker, it
/// fetches its code, an uploaded dataset and another run's artifact folder
/// with the job's own token, sees its hyperparameters and SageMaker's
/// variables pointing into the worker's folder, and its `model/` and
/// `output/data/` land in its run.
#[test]
fn a_training_job_is_staged_on_its_ray_worker_with_the_jobs_token() {
    let Some(ray) =
        ray_address("ray::a_training_job_is_staged_on_its_ray_worker_with_the_jobs_token")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = token(&data, "admin", "admin");
    let s = Server::start(
        &data,
        &["--executor", "ray", "--ray-address", &ray, "--require-auth"],
    );
    let a = agent();
    let t = Some(admin.as_str());
    upload(&a, &s, t, "datasets/train.csv", "x,y\n1,2\n");
    // another run's artifact folder as a second channel
    let (c, e) = post_as(
        &a,
        &s.url("/api/2.0/mlflow/experiments/create"),
        &admin,
        &json!({"name": "earlier"}),
    );
    assert_eq!(c, 200, "{e}");
    let (c, r) = post_as(
        &a,
        &s.url("/api/2.0/mlflow/runs/create"),
        &admin,
        &json!({"experiment_id": e["experiment_id"]}),
    );
    assert_eq!(c, 200, "{r}");
    let earlier = r["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let earlier_root = {
        let run = get_as(
            &a,
            &s.url(&format!("/api/2.0/mlflow/runs/get?run_id={earlier}")),
            &admin,
        );
        let art = run["run"]["info"]["artifact_uri"]
            .as_str()
            .unwrap()
            .to_string();
        art.split("mlflow-artifacts:/")
            .nth(1)
            .unwrap()
            .trim_start_matches('/')
            .to_string()
    };
    upload(
        &a,
        &s,
        t,
        &format!("{earlier_root}/notes/sub/notes.txt"),
        "seen\n",
    );
    upload(
        &a,
        &s,
        t,
        "jobs-code/t1/train.sh",
        "set -e\n\
         cat \"$SM_CHANNEL_TRAIN/train.csv\" \"$SM_CHANNEL_PREV/sub/notes.txt\" > \"$SM_MODEL_DIR/model.txt\"\n\
         echo \"lr=$SM_HP_LR\" > \"$SM_OUTPUT_DATA_DIR/metrics.txt\"\n\
         cp \"$SM_INPUT_CONFIG_DIR/hyperparameters.json\" \"$SM_OUTPUT_DATA_DIR/hps.json\"\n\
         pwd > \"$SM_OUTPUT_DATA_DIR/cwd.txt\"\n\
         echo \"$SM_MODEL_DIR\" > \"$SM_OUTPUT_DATA_DIR/model_dir.txt\"\n\
         echo trained\n",
    );
    let (c, r) = post_as(
        &a,
        &s.url("/api/atelier/jobs"),
        &admin,
        &json!({"kind": "training", "spec": {
            "command": ["sh", "train.sh"],
            "code": "jobs-code/t1",
            "inputs": {"train": "datasets/train.csv", "prev": format!("runs:/{earlier}/notes")},
            "hyperparameters": {"lr": "0.1"},
        }}),
    );
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    let j = loop {
        let j = get_as(&a, &s.url(&format!("/api/atelier/jobs/{id}")), &admin)["job"].clone();
        if ["succeeded", "failed", "cancelled"].contains(&j["status"].as_str().unwrap_or("")) {
            break j;
        }
        assert!(t0.elapsed() < Duration::from_secs(180), "{j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(ray_job(&a, &ray, &id)["status"], "SUCCEEDED");
    let run_id = j["result"]["run_id"].as_str().unwrap();
    assert_eq!(j["result"]["model_uri"], format!("runs:/{run_id}/model"));
    assert_eq!(j["result"]["outputs"]["model"]["files"], 1, "{j}");
    assert_eq!(j["result"]["outputs"]["data"]["files"], 4, "{j}");
    let root = {
        let run = get_as(
            &a,
            &s.url(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}")),
            &admin,
        );
        let art = run["run"]["info"]["artifact_uri"]
            .as_str()
            .unwrap()
            .to_string();
        art.split("mlflow-artifacts:/")
            .nth(1)
            .unwrap()
            .trim_start_matches('/')
            .to_string()
    };
    let file = |p: &str| download(&a, &s, t, &format!("{root}/{p}"));
    assert_eq!(file("model/model.txt"), "x,y\n1,2\nseen\n");
    assert_eq!(file("output/data/metrics.txt"), "lr=0.1\n");
    let hps: Value = serde_json::from_str(&file("output/data/hps.json")).unwrap();
    assert_eq!(hps, json!({"lr": "0.1"}));
    let cwd = file("output/data/cwd.txt");
    let cwd = std::path::Path::new(cwd.trim());
    assert!(cwd.ends_with("code"), "{}", cwd.display());
    assert!(!cwd.starts_with(dir.path()), "{}", cwd.display());
    // SageMaker's variables were moved to the worker's folder
    let model_dir = file("output/data/model_dir.txt");
    assert_eq!(
        std::path::Path::new(model_dir.trim()),
        cwd.parent().unwrap().join("model")
    );
    // the log came back from Ray into the run
    assert!(file("logs/output.jsonl").contains("trained"));
}

/// A staged job's failure reason (SageMaker's `output/message`, written by
/// the script) comes back through the run and names why it failed.
#[test]
fn a_staged_jobs_failure_reason_comes_back() {
    let Some(ray) = ray_address("ray::a_staged_jobs_failure_reason_comes_back") else {
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
            "command": ["sh", "-c", "echo 'no rows in the input' > \"$ATELIER_JOB_DIR/output/message\"; exit 3"],
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
    assert_eq!(j["status"], "failed", "{j}");
    let err = j["error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("no rows in the input") && err.contains("status 3"),
        "{j}"
    );
}

/// `--ray-shared-filesystem`: the workers see the data folder, so the job
/// runs in the server's own job folder, as before staging existed.
#[test]
fn with_a_shared_filesystem_a_ray_job_runs_in_the_servers_folder() {
    let Some(ray) =
        ray_address("ray::with_a_shared_filesystem_a_ray_job_runs_in_the_servers_folder")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &[
            "--executor",
            "ray",
            "--ray-address",
            &ray,
            "--ray-shared-filesystem",
        ],
    );
    let a = agent();
    upload(&a, &s, None, "datasets/in.csv", "a\n1\n");
    upload(
        &a,
        &s,
        None,
        "jobs-code/s1/where.sh",
        "pwd > \"$ATELIER_OUTPUT_OUT/cwd.txt\"\ncp \"$ATELIER_INPUT_IN/in.csv\" \"$ATELIER_OUTPUT_OUT/\"\n",
    );
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "processing", "spec": {
            "command": ["sh", "where.sh"],
            "code": "jobs-code/s1",
            "inputs": {"in": "datasets/in.csv"},
            "outputs": ["out"],
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
    assert_eq!(j["result"]["outputs"]["out"]["files"], 2, "{j}");
    let root = run_root(&a, &s, j["result"]["run_id"].as_str().unwrap());
    let cwd = download(&a, &s, None, &format!("{root}/output/out/cwd.txt"));
    assert_eq!(
        std::path::Path::new(cwd.trim()),
        s.data_dir.join("jobs").join(&id).join("code")
    );
    assert_eq!(
        download(&a, &s, None, &format!("{root}/output/out/in.csv")),
        "a\n1\n"
    );
}

/// Needs no Ray: the worker with no manifest, a garbled one, or one whose
/// destination leaves its folder says so in one line and exits non-zero
/// without running the command or writing anything.
#[test]
fn the_job_worker_refuses_a_missing_garbled_or_path_tricking_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let run = |manifest: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"));
        c.args(["job-worker", "--", "touch"])
            .arg(&marker)
            .env("TMPDIR", dir.path());
        match manifest {
            Some(m) => c.env("ATELIER_STAGE_MANIFEST", m),
            None => c.env_remove("ATELIER_STAGE_MANIFEST"),
        };
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("atelier job-worker: "), "{err}");
        err
    };
    let e = run(None);
    assert!(
        e.contains("no job manifest: ATELIER_STAGE_MANIFEST is not set"),
        "{e}"
    );
    let e = run(Some("{\"version\": 1, \"server\": "));
    assert!(
        e.contains("the job manifest in ATELIER_STAGE_MANIFEST is not valid"),
        "{e}"
    );
    let tricky = json!({
        "version": 1,
        "server": "http://127.0.0.1:9",
        "job_dir": "/srv/atelier/jobs/j1",
        "cwd": "code",
        "dirs": ["code"],
        "files": [],
        "fetch": [{"name": "input 'raw'", "from": "datasets/raw.csv", "to": "../x"}],
        "upload": [],
        "failure_file": "output/message",
        "failure_to": "1/r/artifacts/logs/failure",
        "max_output_bytes": 1000,
    });
    let e = run(Some(&tricky.to_string()));
    assert!(e.contains("input 'raw' destination '../x'"), "{e}");
    assert!(!marker.exists(), "the command ran");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "it wrote into {}",
        dir.path().display()
    );
}

/// A manifest that fetches and uploads nothing (so no server is needed).
fn quiet_manifest(job_dir: &str) -> String {
    json!({
        "version": 1,
        "server": "http://127.0.0.1:9",
        "job_dir": job_dir,
        "cwd": "code",
        "dirs": ["code", "config", "output"],
        "files": [{"path": "config/where.json", "content": format!("{{\"dir\": \"{job_dir}/code\"}}")}],
        "fetch": [],
        "upload": [],
        "failure_file": "output/message",
        "failure_to": "1/r/artifacts/logs/failure",
        "max_output_bytes": 1000,
    })
    .to_string()
}

/// Needs no Ray: the worker runs the command in its own folder with the
/// server's paths moved there (environment and files), passes SIGTERM on to
/// it, exits 128 + the signal that ended it, and leaves no folder behind.
#[test]
fn the_job_worker_moves_paths_passes_sigterm_on_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let job_dir = "/srv/atelier/jobs/j1";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["job-worker", "--", "sh", "-c"])
        .arg("pwd; echo \"$MODEL\"; echo \"$OTHER\"; cat ../config/where.json; echo; exit 4")
        .env("ATELIER_STAGE_MANIFEST", quiet_manifest(job_dir))
        .env("MODEL", format!("{job_dir}/model"))
        .env("OTHER", format!("{job_dir}0/model"))
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let cwd = std::path::Path::new(lines[0]);
    assert!(
        cwd.starts_with(tmp.path()) && cwd.ends_with("code"),
        "{text}"
    );
    let root = cwd.parent().unwrap().display().to_string();
    assert_eq!(lines[1], format!("{root}/model"));
    assert_eq!(
        lines[2],
        format!("{job_dir}0/model"),
        "another folder is left alone"
    );
    assert_eq!(lines[3], format!("{{\"dir\": \"{root}/code\"}}"));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "left behind"
    );
    // SIGTERM to the worker alone reaches the command, whose death is 128 + 15
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["job-worker", "--", "sh", "-c", "echo up; exec sleep 60"])
        .env("ATELIER_STAGE_MANIFEST", quiet_manifest(job_dir))
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first, "up\n");
    let t = Instant::now();
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "left behind"
    );
}
