//! The job system across server processes: two `atelier serve` on one
//! database share the queue (every job runs exactly once), and a server
//! killed with `kill -9` mid-job has its job taken over by the other once
//! the lease expires — the command, running under its own supervisor, is
//! re-attached to rather than run again.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn submit(a: &ureq::Agent, s: &Server, spec: Value) -> String {
    let (c, r) = post(
        a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "processing", "spec": spec}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    r["job"]["id"].as_str().unwrap().to_string()
}

fn job(a: &ureq::Agent, s: &Server, id: &str) -> Value {
    let (c, r) = get(a, &s.url(&format!("/api/atelier/jobs/{id}"))).unwrap();
    assert_eq!(c, 200, "{r}");
    r["job"].clone()
}

fn wait_all(a: &ureq::Agent, s: &Server, ids: &[String], limit: Duration) -> Vec<Value> {
    let t = Instant::now();
    ids.iter()
        .map(|id| {
            loop {
                let j = job(a, s, id);
                if ["succeeded", "failed", "cancelled"]
                    .contains(&j["status"].as_str().unwrap_or(""))
                {
                    break j;
                }
                assert!(t.elapsed() < limit, "job {id} did not end: {j}");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .collect()
}

#[test]
fn two_servers_on_one_database_run_every_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--job-workers", "3", "--job-lease-seconds", "5"];
    let s1 = Server::start(dir.path(), &args);
    let s2 = Server::start(dir.path(), &args);
    let a = agent();
    let ledger = dir.path().join("ledger.txt");
    let cmd = format!("echo \"$ATELIER_JOB_ID\" >> '{}'", ledger.display());
    let ids: Vec<String> = (0..200)
        .map(|i| {
            let s = if i % 2 == 0 { &s1 } else { &s2 };
            submit(
                &a,
                s,
                json!({"command": ["sh", "-c", cmd], "experiment": "ledger"}),
            )
        })
        .collect();
    let jobs = wait_all(&a, &s1, &ids, Duration::from_secs(240));
    for j in &jobs {
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["attempt"], 1, "{j}");
    }
    let text = std::fs::read_to_string(&ledger).unwrap();
    let mut runs: HashMap<&str, usize> = HashMap::new();
    for l in text.lines() {
        *runs.entry(l.trim()).or_default() += 1;
    }
    assert_eq!(runs.len(), 200, "every job ran");
    assert!(runs.values().all(|n| *n == 1), "no job ran twice: {runs:?}");
    // both processes took work (worker ids carry the pid)
    let pids: std::collections::HashSet<String> = jobs
        .iter()
        .map(|j| {
            let ev = j["secondary_statuses"].as_array().unwrap();
            let starting = ev.iter().find(|e| e["status"] == "Starting").unwrap();
            starting["message"]
                .as_str()
                .unwrap()
                .split(':')
                .nth(1)
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
}

#[test]
fn a_killed_servers_job_is_taken_over_after_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--job-workers", "1", "--job-lease-seconds", "3"];
    let mut s1 = Server::start(dir.path(), &args);
    let mut s2 = Server::start(dir.path(), &args);
    let a = agent();
    let ledger = dir.path().join("ledger.txt");
    let cmd = format!(
        "echo started; sleep 4; echo \"$ATELIER_JOB_ID\" >> '{}'; echo finished",
        ledger.display()
    );
    let id = submit(&a, &s1, json!({"command": ["sh", "-c", cmd]}));
    // wait until it runs, and find which server holds it
    let t = Instant::now();
    let holder = loop {
        let j = job(&a, &s1, &id);
        if let Some(w) = j["worker"].as_str()
            && j["status"] == "running"
        {
            break w.split(':').nth(1).unwrap().parse::<u32>().unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(20), "never ran: {j}");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(500));
    let (victim, survivor) = if s1.child.id() == holder {
        (&mut s1, &s2)
    } else {
        assert_eq!(s2.child.id(), holder);
        (&mut s2, &s1)
    };
    victim.kill9();
    let killed_at = Instant::now();
    let j = wait_all(
        &a,
        survivor,
        std::slice::from_ref(&id),
        Duration::from_secs(60),
    )
    .remove(0);
    assert_eq!(j["status"], "succeeded", "{j}");
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "taken over only once the lease ran out"
    );
    let steps: Vec<&str> = j["secondary_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"Reattaching"), "{steps:?}");
    assert_eq!(j["attempt"], 1, "re-attached, not run again");
    let text = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(text.lines().count(), 1, "the command ran once: {text}");
    // the log has every line, from before and after the take-over
    let (c, logs) = get(&a, &survivor.url(&format!("/api/atelier/jobs/{id}/logs"))).unwrap();
    assert_eq!(c, 200);
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["started", "finished"]);
}

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `atelier jobs run` uploads the local input and the script, follows the
/// output, and says how the job ended in its exit code.
#[test]
fn the_cli_runs_a_local_script_as_a_job_and_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let url = s.url("");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("raw.csv"), "a,b\n1,2\n3,4\n").unwrap();
    std::fs::write(
        work.join("prep.sh"),
        "set -e\nin=\"$ATELIER_JOB_DIR/processing/input/raw\"\nout=\"$ATELIER_OUTPUT_CLEAN\"\nwc -l < \"$in/raw.csv\" | tr -d ' ' | sed 's/^/lines: /'\ncp \"$in/raw.csv\" \"$out/clean.csv\"\necho \"min rows $1\"\n",
    )
    .unwrap();
    let (ok, out, err) = cli(
        &work,
        &[
            "jobs",
            "run",
            "--server",
            &url,
            "--kind",
            "processing",
            "--name",
            "prep",
            "--input",
            "raw=raw.csv",
            "--output",
            "clean",
            "--",
            "sh",
            "prep.sh",
            "100",
        ],
    );
    assert!(ok, "{out}\n{err}");
    assert_eq!(out, "lines: 3\nmin rows 100\n", "{err}");
    assert!(
        err.contains("uploaded raw.csv") && err.contains("Completed: run "),
        "{err}"
    );
    // a failing command: exit code 1 and the reason
    let (ok, _, err) = cli(
        &work,
        &[
            "jobs",
            "run",
            "--server",
            &url,
            "--kind",
            "processing",
            "--",
            "sh",
            "-c",
            "echo bad >&2; exit 4",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("bad") && err.contains("Failed: the command exited with status 4"),
        "{err}"
    );
    // detached, then logs and stop
    let (ok, id, err) = cli(
        &work,
        &[
            "jobs",
            "run",
            "--server",
            &url,
            "--detach",
            "--stop-grace",
            "1",
            "--",
            "sh",
            "-c",
            "echo up; sleep 60",
        ],
    );
    assert!(ok, "{err}");
    let id = id.trim().to_string();
    let a = agent();
    let t = Instant::now();
    while job(&a, &s, &id)["progress"]["log_lines"]
        .as_u64()
        .unwrap_or(0)
        < 1
    {
        assert!(t.elapsed() < Duration::from_secs(20), "no output");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, out, _) = cli(&work, &["jobs", "logs", "--server", &url, &id]);
    assert!(ok);
    assert_eq!(out, "up\n");
    let (ok, _, err) = cli(&work, &["jobs", "stop", "--server", &url, &id]);
    assert!(ok, "{err}");
    let (ok, out, err) = cli(&work, &["jobs", "logs", "-f", "--server", &url, &id]);
    assert!(!ok, "a stopped job is not a success");
    assert_eq!(out, "up\n");
    assert!(err.contains("Stopped"), "{err}");
}

/// With authentication on, a job's MLflow client gets a token of its own
/// (the script logs with it), revoked when the job ends.
#[test]
fn with_authentication_each_job_logs_with_its_own_token() {
    let dir = tempfile::tempdir().unwrap();
    let admin = token(dir.path(), "admin", "admin");
    let s = Server::start(dir.path(), &["--require-auth"]);
    let log = r#"
import json, os, urllib.request
body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "key": "acc", "value": 0.9, "timestamp": 0, "step": 0}).encode()
req = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", data=body,
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]})
print(urllib.request.urlopen(req).status)
"#;
    let a = agent();
    let bearer = format!("Bearer {admin}");
    let call = |method: &str, path: &str, body: Option<Value>| -> Value {
        let url = s.url(path);
        let mut r = match (method, body) {
            ("POST", Some(b)) => a
                .post(&url)
                .header("Authorization", &bearer)
                .send_json(b)
                .unwrap(),
            _ => a.get(&url).header("Authorization", &bearer).call().unwrap(),
        };
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    };
    let r = call(
        "POST",
        "/api/atelier/jobs",
        Some(json!({"kind": "training", "spec": {"command": ["python3", "-c", log]}})),
    );
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let t = Instant::now();
    let j = loop {
        let j = call("GET", &format!("/api/atelier/jobs/{id}"), None)["job"].clone();
        if j["status"] != "running" && j["status"] != "queued" {
            break j;
        }
        assert!(t.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["owner"], "admin");
    let run = j["result"]["run_id"].as_str().unwrap();
    let got = call(
        "GET",
        &format!("/api/2.0/mlflow/runs/get?run_id={run}"),
        None,
    );
    let metrics = got["run"]["data"]["metrics"].as_array().unwrap();
    assert!(metrics.iter().any(|m| m["key"] == "acc"), "{got}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["token", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("admin") && !listed.contains("job:"),
        "{listed}"
    );
}

/// A training job's model/ registers as a model version and deploys as an
/// endpoint: `examples/jobs/train_gbm.sh` trains Atelier's own learner on
/// the SageMaker channel and writes a pipeline into SM_MODEL_DIR.
#[test]
fn a_training_jobs_model_registers_and_serves_from_an_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = agent();
    // data: label = a + b > 0, with a category
    let mut csv = String::from("a,b,colour,label\n");
    for i in 0..300 {
        let x = ((i * 37) % 101) as f64 / 50.0 - 1.0;
        let y = ((i * 53) % 97) as f64 / 48.0 - 1.0;
        let c = ["red", "green", "blue"][i % 3];
        csv.push_str(&format!("{x},{y},{c},{}\n", u8::from(x + y > 0.0)));
    }
    let put = |path: &str, body: &[u8]| {
        let r = a.put(&s.url(path)).send(body).unwrap();
        assert!(r.status().as_u16() < 300, "{path}: {}", r.status());
    };
    put("/api/atelier/datasets/points.csv", csv.as_bytes());
    let script = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/jobs/train_gbm.sh"),
    )
    .unwrap();
    put(
        "/api/2.0/mlflow-artifacts/artifacts/jobs-code/gbm/train_gbm.sh",
        &script,
    );
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "training", "spec": {
            "command": ["sh", "train_gbm.sh", "label"], "code": "jobs-code/gbm",
            "inputs": {"train": "datasets/points.csv"},
            "hyperparameters": {"learning_rate": "0.2"},
            "register_model": "points"}}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let j = wait_all(&a, &s, &[id], Duration::from_secs(120)).remove(0);
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["result"]["model_version"]["version"], 1, "{j}");
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/endpoints"),
        &json!({"name": "points", "model": "models:/points/1"}),
    )
    .unwrap();
    assert!(c < 300, "{r}");
    let mut res = a
        .post(&s.url("/endpoints/points/invocations"))
        .header("Content-Type", "text/csv")
        .header("Accept", "application/json")
        .send("a,b,colour\n0.9,0.8,red\n-0.9,-0.7,blue\n")
        .unwrap();
    let body = res.body_mut().read_to_string().unwrap();
    assert_eq!(res.status().as_u16(), 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let labels: Vec<String> = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["predicted_label"]
                .to_string()
                .trim_matches('"')
                .to_string()
        })
        .collect();
    assert_eq!(labels, ["1", "0"], "{body}");
}

/// After the job, its log is read from the run in ranged chunks, whole
/// lines only, in order — also when the machine that ran it no longer has
/// the executor's files.
#[test]
fn a_finished_jobs_log_is_read_from_its_run_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = agent();
    let id = submit(
        &a,
        &s,
        json!({"command": ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done"]}),
    );
    let j = wait_all(&a, &s, std::slice::from_ref(&id), Duration::from_secs(60)).remove(0);
    assert_eq!(j["status"], "succeeded", "{j}");
    std::fs::remove_dir_all(dir.path().join("jobs").join(&id)).unwrap();
    let mut from = 0u64;
    let mut got = Vec::new();
    let mut calls = 0;
    loop {
        let (c, v) = get(
            &a,
            &s.url(&format!(
                "/api/atelier/jobs/{id}/logs?from={from}&max_bytes=4096"
            )),
        )
        .unwrap();
        assert_eq!(c, 200, "{v}");
        calls += 1;
        let next = v["next"].as_u64().unwrap();
        for l in v["lines"].as_array().unwrap() {
            got.push(l["text"].as_str().unwrap().to_string());
        }
        if next == from {
            break;
        }
        from = next;
    }
    assert_eq!(got.len(), 3000);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line {i}"))
    );
    assert!(calls > 20, "read in chunks: {calls} calls");
}

/// A rule that finds issues tells the job's webhooks (through the outbox,
/// off the job's worker); targets follow the server's webhook policy.
#[test]
fn a_firing_rule_tells_the_jobs_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--webhook-allowed-hosts", "127.0.0.1"]);
    let a = agent();
    let (hook, got) = webhook_receiver(false);
    let stall = r#"
import json, os, time, urllib.request
for step in range(30):
    body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "key": "loss", "value": 1.0, "timestamp": 0, "step": step}).encode()
    urllib.request.urlopen(urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric",
        data=body, headers={"Content-Type": "application/json"}))
time.sleep(3)
"#;
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "training", "spec": {"name": "stalls", "command": ["python3", "-c", stall],
            "rules": ["LossNotDecreasing"], "webhooks": [hook]}}),
    )
    .unwrap();
    assert_eq!(c, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let t = Instant::now();
    loop {
        if let Some(b) = got.lock().unwrap().first() {
            assert_eq!(b["event"], "atelier.debugger.issues_found", "{b}");
            assert_eq!(b["job_name"], "stalls");
            assert_eq!(b["rule"]["label"], "LossNotDecreasing");
            assert_eq!(b["rule"]["status"], "IssuesFound");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no webhook came: {}",
            job(&a, &s, &id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // a private target is refused at submit time, naming the setting
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "training", "spec": {"command": ["true"], "rules": ["LossNotDecreasing"],
            "webhooks": ["http://10.1.2.3/hook"]}}),
    )
    .unwrap();
    assert_eq!(c, 400, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("--webhook-allowed-hosts"),
        "{r}"
    );
}

/// A server killed after recording a job's handle but before starting its
/// command (the handle is recorded first) leaves a job whose command never
/// started. The next server adopts it once the lease ran out and, with an
/// attempt left, starts the command (once); with none left, it fails the
/// job saying that the command never started.
#[test]
fn an_adopted_job_whose_command_never_started_is_started_or_failed_by_its_attempts() {
    use store::MetadataStore;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.txt");
    let cmd = format!("echo \"$ATELIER_JOB_ID\" >> '{}'", ledger.display());
    let spec = json!({"command": ["sh", "-c", cmd]}).to_string();
    // what the killed server left: a claimed job with an expired lease and
    // the handle it recorded before starting anything
    // the database the server will use: the folder's SQLite file, or its own
    // PostgreSQL database when the suite runs on PostgreSQL
    let db = match store::scratch::test_database_url() {
        Some(server) => store::SqlStore::connect(
            &store::scratch::database_for_folder(&server, dir.path()).unwrap(),
        )
        .unwrap(),
        None => store::SqlStore::open(dir.path().join("metadata.db")).unwrap(),
    };
    let mut ids = HashMap::new();
    for (name, max_attempts) in [("retried", 2), ("failed", 1)] {
        let j = db
            .queue_job(&store::NewJob {
                kind: "processing",
                name,
                spec: &spec,
                owner: "",
                workspace: "default",
                max_attempts,
            })
            .unwrap();
        // a lease that outlives this setup (a 1 ms one could expire before the
        // next claim, which would then adopt this job instead of taking the next)
        let claimed = db
            .claim_job("dead:1", &["processing"], 2_000)
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, j.id);
        let planned = json!({
            "executor": "local",
            "data": {"state_dir": dir.path().join("jobs").join(&j.id).join("executor").join("1")},
        });
        db.update_job(
            &j.id,
            &store::JobUpdate {
                handle: Some(planned.to_string()),
                worker: Some("dead:1".into()),
                ..Default::default()
            },
        )
        .unwrap();
        ids.insert(name, j.id);
    }
    drop(db);
    // both leases expire: the dead server's claims are up for adoption
    std::thread::sleep(Duration::from_millis(2_100));
    let s = Server::start(
        dir.path(),
        &["--job-workers", "2", "--job-lease-seconds", "3"],
    );
    let a = agent();
    let ends = wait_all(
        &a,
        &s,
        &[ids["retried"].clone(), ids["failed"].clone()],
        Duration::from_secs(60),
    );
    let (retried, failed) = (&ends[0], &ends[1]);
    assert_eq!(retried["status"], "succeeded", "{retried}");
    let steps: Vec<&str> = retried["secondary_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"Retrying"), "{steps:?}");
    let text = std::fs::read_to_string(&ledger).unwrap_or_default();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![ids["retried"].as_str()],
        "only the job with an attempt left ran, once"
    );
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the command never started") && error.contains("no attempts left"),
        "{error}"
    );
}
