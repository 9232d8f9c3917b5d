//! Several `atelier serve` replicas on one database behave as one server
//! (issue 18): two real processes, A and B, on one data folder (its SQLite
//! database, or with `ATELIER_TEST_DATABASE_URL` its PostgreSQL database)
//! and one artifact folder. An endpoint's weights changed or the endpoint
//! deleted through A is served so (or refused) by B within a few seconds,
//! and one re-created through B is served by A; the Studio's live stream on
//! one replica sees writes made through the other; a monitoring schedule's
//! every firing runs once across both; a replica's start never disturbs the
//! jobs another runs; data capture from both never collides.
//!
//! (jobs.rs covers a job running once across servers and a killed server's
//! job taken over; shadow.rs an endpoint created on one served by the other.)

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Server, agent, dataset};
use serde_json::{Value, json};

/// How long a replica may take to follow another's endpoint change: it
/// re-reads the store every 3 s, then loads the models.
const FOLLOW: Duration = Duration::from_secs(8);

fn atelier(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(args)
        .output()
        .expect("run atelier");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A penguins model trained once for all tests, and one row it reads.
struct Model {
    _dir: tempfile::TempDir,
    path: PathBuf,
    row: String,
}

fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("penguins.model");
        let (ok, _, err) = atelier(&[
            "train",
            dataset("penguins.csv").to_str().unwrap(),
            "--target",
            "species",
            "--param",
            "n_estimators=10",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        let text = std::fs::read_to_string(dataset("penguins.csv")).unwrap();
        let strip = |l: &str| l.split_once(',').unwrap().1.to_string();
        let mut lines = text.lines();
        let header = strip(lines.next().unwrap());
        let row = format!("{header}\n{}\n", strip(lines.next().unwrap()));
        Model {
            _dir: dir,
            path,
            row,
        }
    })
}

fn deploy(s: &Server, name: &str, extra: &[&str]) {
    let url = s.url("");
    let m = model();
    let mut args = vec![
        "deploy",
        m.path.to_str().unwrap(),
        "--name",
        name,
        "--server",
        &url,
    ];
    args.extend_from_slice(extra);
    let (ok, _, err) = atelier(&args);
    assert!(ok, "deploy failed: {err}");
}

fn api(s: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let a = agent();
    let url = s.url(path);
    let mut r = match (method, body) {
        ("GET", _) => a.get(&url).call(),
        ("DELETE", _) => a.delete(&url).call(),
        ("PUT", Some(b)) => a.put(&url).send_json(&b),
        (_, Some(b)) => a.post(&url).send_json(&b),
        (_, None) => a.post(&url).send_empty(),
    }
    .expect("request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Invoke with the model's row: (status, invoked variant, body).
fn invoke(s: &Server, name: &str, inference_id: Option<&str>) -> (u16, String, String) {
    let mut req = agent()
        .post(&s.url(&format!("/endpoints/{name}/invocations")))
        .header("Content-Type", "text/csv")
        .header("Accept", "application/json");
    if let Some(id) = inference_id {
        req = req.header("X-Atelier-Inference-Id", id);
    }
    let mut r = req.send(model().row.as_bytes()).expect("invoke");
    let variant = r
        .headers()
        .get("x-atelier-invoked-variant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        r.status().as_u16(),
        variant,
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Poll `f` until it gives a value; fails naming `what` after `limit`.
fn within<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> (T, Duration) {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, t.elapsed());
        }
        assert!(
            t.elapsed() < limit,
            "{what}: not within {} s",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn job(s: &Server, id: &str) -> Value {
    let (c, r) = api(s, "GET", &format!("/api/atelier/jobs/{id}"), None);
    assert_eq!(c, 200, "{r}");
    r["job"].clone()
}

fn wait_job(s: &Server, id: &str, limit: Duration) -> Value {
    within(limit, &format!("job {id} ended"), || {
        let j = job(s, id);
        (!["queued", "running"].contains(&j["status"].as_str().unwrap_or(""))).then_some(j)
    })
    .0
}

/// The process id in a job's worker (`<host>:<pid>:<salt>`).
fn worker_pid(j: &Value) -> Option<u32> {
    j["worker"].as_str()?.split(':').nth(1)?.parse().ok()
}

#[test]
fn an_endpoint_changed_or_deleted_through_one_replica_is_served_so_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), &[]);
    let b = Server::start(dir.path(), &[]);
    deploy(&a, "ab", &["--variant", "blue"]);
    deploy(&a, "ab", &["--variant", "green"]);
    let (st, ep) = api(&a, "GET", "/api/atelier/endpoints/ab", None);
    assert_eq!(st, 200, "{ep}");
    let model_of = |v: &str| {
        ep["endpoint"]["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == v)
            .unwrap_or_else(|| panic!("no variant {v}: {ep}"))["model"]
            .clone()
    };
    let weights = |blue: u32, green: u32| {
        json!({"variants": [
            {"name": "blue", "model": model_of("blue"), "weight": blue},
            {"name": "green", "model": model_of("green"), "weight": green},
        ]})
    };
    // everything to blue, and B follows
    let (st, r) = api(&a, "PUT", "/api/atelier/endpoints/ab", Some(weights(1, 0)));
    assert_eq!(st, 200, "{r}");
    within(FOLLOW, "B serves only blue", || {
        let all_blue = (0..10).all(|_| {
            let (st, v, _) = invoke(&b, "ab", None);
            st == 200 && v == "blue"
        });
        all_blue.then_some(())
    });

    // weights changed through A: B splits 1:3 within a few seconds
    let (st, r) = api(&a, "PUT", "/api/atelier/endpoints/ab", Some(weights(1, 3)));
    assert_eq!(st, 200, "{r}");
    let (_, took) = within(FOLLOW, "B sends traffic to green", || {
        let (st, v, body) = invoke(&b, "ab", None);
        assert_eq!(st, 200, "{body}");
        (v == "green").then_some(())
    });
    eprintln!("B followed the weight change in {took:?}");
    let (_, seen) = api(&b, "GET", "/api/atelier/endpoints/ab", None);
    let green = seen["endpoint"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "green")
        .unwrap_or_else(|| panic!("{seen}"));
    assert_eq!(green["weight"], 3.0, "B describes the new weights: {seen}");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..200 {
        let (st, v, body) = invoke(&b, "ab", None);
        assert_eq!(st, 200, "{body}");
        *counts.entry(v).or_default() += 1;
    }
    let share = *counts.get("green").unwrap_or(&0) as f64 / 200.0;
    assert!(
        (0.6..=0.9).contains(&share),
        "B sent {share} of traffic to green at weights 1:3: {counts:?}"
    );
    // B's own counters agree with its answers
    let (st, m) = api(&b, "GET", "/api/atelier/endpoints/ab/metrics", None);
    assert_eq!(st, 200, "{m}");
    let requests = |v: &str| {
        m["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == v)
            .and_then(|x| x["totals"]["requests"].as_u64())
            .unwrap_or(0)
    };
    assert!(
        requests("green") >= counts["green"] as u64,
        "B's counters: {m}"
    );

    // deleted through A: B refuses it within a few seconds, naming it
    let (st, r) = api(&a, "DELETE", "/api/atelier/endpoints/ab", None);
    assert_eq!(st, 200, "{r}");
    let (body, took) = within(FOLLOW, "B refuses the deleted endpoint", || {
        let (st, _, body) = invoke(&b, "ab", None);
        assert!(st == 200 || st == 404, "{st}: {body}");
        (st == 404).then_some(body)
    });
    eprintln!("B followed the delete in {took:?}");
    assert!(body.contains("no endpoint named 'ab'"), "{body}");
    let (_, list) = api(&b, "GET", "/api/atelier/endpoints", None);
    assert_eq!(list["endpoints"], json!([]), "{list}");
    let (st, _) = api(&b, "GET", "/endpoints/ab/ping", None);
    assert_eq!(st, 404);

    // re-created through B (another variant): A serves the new one
    deploy(&b, "ab", &["--variant", "red"]);
    let (_, took) = within(FOLLOW, "A serves the re-created endpoint", || {
        let (st, v, body) = invoke(&a, "ab", None);
        assert!(st == 200 || st == 404, "{st}: {body}");
        (st == 200).then_some(v)
    });
    eprintln!("A followed the re-creation in {took:?}");
    for _ in 0..20 {
        let (st, v, body) = invoke(&a, "ab", None);
        assert_eq!((st, v.as_str()), (200, "red"), "{body}");
    }
}

/// A Studio page's live stream: each `event: change` carries the store's
/// write generation (sent from a reader thread, with when it arrived).
fn live_stream(s: &Server) -> mpsc::Receiver<u64> {
    let url = s.url("/studio/api/events");
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let a: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = match a.get(&url).header("Accept", "text/event-stream").call() {
            Ok(r) => r,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready_tx.send(Ok(r.status().as_u16()));
        let mut event = String::new();
        for line in BufReader::new(r.into_body().into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:")
                && event == "change"
            {
                let Ok(g) = d.trim().parse() else { continue };
                if tx.send(g).is_err() {
                    return;
                }
            } else if line.is_empty() {
                event.clear();
            }
        }
    });
    let ready = ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the live stream answers");
    assert_eq!(ready, Ok(200));
    rx
}

/// The newest generation the stream delivers within `wait` (`None`: none).
fn next_change(rx: &mpsc::Receiver<u64>, wait: Duration) -> Option<u64> {
    let first = rx.recv_timeout(wait).ok()?;
    Some(rx.try_iter().fold(first, u64::max))
}

#[test]
fn the_studios_live_stream_on_one_replica_sees_writes_made_through_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), &[]);
    let b = Server::start(dir.path(), &[]);
    let on_a = live_stream(&a);
    let on_b = live_stream(&b);
    // a new stream says where the store is at once
    let g_b = next_change(&on_b, Duration::from_secs(5)).expect("a first event on B");
    next_change(&on_a, Duration::from_secs(5)).expect("a first event on A");
    // idle replicas write nothing visible (lease renewals, polls and the
    // schedulers' ticks are quiet): the pages stay put, so what follows is
    // the other replica's write and nothing else
    assert_eq!(next_change(&on_b, Duration::from_millis(1500)), None);
    assert_eq!(next_change(&on_a, Duration::ZERO), None);

    // an experiment created through A's MLflow API: B's pages hear of it
    let t = Instant::now();
    let (st, r) = api(
        &a,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(json!({"name": "made-on-a"})),
    );
    assert_eq!(st, 200, "{r}");
    let g = next_change(&on_b, Duration::from_secs(3))
        .expect("B's live stream announces A's write within 3 s");
    assert!(g > g_b, "a newer generation on B: {g} after {g_b}");
    eprintln!("B's stream saw A's write after {:?}", t.elapsed());
    // and what the page reloads from B holds it
    let (st, r) = api(
        &b,
        "GET",
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=made-on-a",
        None,
    );
    assert_eq!(st, 200, "{r}");
    let exp = r["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();

    // the other way round: a run created through B, heard on A
    // (A's own stream has announced A's write meanwhile)
    let g_a = next_change(&on_a, Duration::from_secs(3)).expect("A's stream saw A's write");
    assert!(
        g_a >= g,
        "one generation across replicas: {g_a} on A, {g} on B"
    );
    let (st, r) = api(
        &b,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(json!({"experiment_id": exp, "run_name": "made-on-b"})),
    );
    assert_eq!(st, 200, "{r}");
    let g = next_change(&on_a, Duration::from_secs(3))
        .expect("A's live stream announces B's write within 3 s");
    assert!(g > g_a, "a newer generation on A: {g} after {g_a}");
}

#[test]
fn each_firing_of_a_monitoring_schedule_runs_once_across_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), &[]);
    let b = Server::start(dir.path(), &[]);
    deploy(&a, "watched", &["--sampling-percentage", "100"]);
    let csv = std::fs::read(dataset("penguins.csv")).unwrap();
    let r = agent()
        .put(&a.url("/api/atelier/datasets/penguins.csv"))
        .send(&csv[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (st, r) = api(
        &a,
        "POST",
        "/api/atelier/baselines",
        Some(json!({"dataset": "penguins.csv", "name": "penguins"})),
    );
    assert_eq!(st, 202, "{r}");
    let made = wait_job(
        &a,
        r["job"]["id"].as_str().unwrap(),
        Duration::from_secs(60),
    );
    assert_eq!(made["status"], "succeeded", "{made}");
    // B must serve the endpoint too, so both schedulers see a live schedule
    within(FOLLOW, "B serves the endpoint", || {
        (invoke(&b, "watched", None).0 == 200).then_some(())
    });

    // the shortest cadence there is: every second, with both replicas ticking
    let schedule = |enabled: bool| {
        json!({"name": "every-second", "endpoint": "watched", "cron": "* * * * * *",
               "baseline": "baselines/penguins", "enabled": enabled})
    };
    let (st, r) = api(
        &a,
        "POST",
        "/api/atelier/monitoring-schedules",
        Some(schedule(true)),
    );
    assert_eq!(st, 201, "{r}");
    std::thread::sleep(Duration::from_secs(8));
    let (st, r) = api(
        &b,
        "POST",
        "/api/atelier/monitoring-schedules",
        Some(schedule(false)),
    );
    assert_eq!(st, 201, "{r}");
    // a tick that read the schedule before it was disabled may still fire once
    std::thread::sleep(Duration::from_millis(1500));

    let (st, one) = api(
        &b,
        "GET",
        "/api/atelier/monitoring-schedules/every-second",
        None,
    );
    assert_eq!(st, 200, "{one}");
    let mut execs: Vec<Value> = one["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["trigger"] == "cron")
        .cloned()
        .collect();
    execs.sort_by_key(|e| e["window_end_ms"].as_i64());
    assert!(
        execs.len() >= 4,
        "about 8 firings in 8 s, got {}: {one}",
        execs.len()
    );
    let mut fired = HashSet::new();
    for (i, e) in execs.iter().enumerate() {
        let end = e["window_end_ms"].as_i64().unwrap();
        let start = e["window_start_ms"].as_i64().unwrap();
        assert_eq!(end % 1000, 0, "a firing is on a whole second: {e}");
        assert!(
            fired.insert(end),
            "the firing at {end} ran twice: {execs:#?}"
        );
        if i > 0 {
            let prev = execs[i - 1]["window_end_ms"].as_i64().unwrap();
            assert_eq!(
                start, prev,
                "each window starts where the previous firing's ended: {execs:#?}"
            );
        }
    }
    let last = execs.last().unwrap()["window_end_ms"].as_i64().unwrap();
    assert_eq!(
        one["schedule"]["last_fired_ms"], last,
        "the bookmark is the last firing"
    );
    // and each ran once: one attempt, to the end
    for e in &execs {
        let j = wait_job(&a, e["id"].as_str().unwrap(), Duration::from_secs(30));
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["attempt"], 1, "{j}");
        // (the probe that B serves the endpoint was captured: "ok" for its window)
        let outcome = j["result"]["status"].as_str().unwrap_or("");
        assert!(["no_data", "ok"].contains(&outcome), "{j}");
    }
}

#[test]
fn a_replicas_start_never_disturbs_the_jobs_another_runs() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--job-lease-seconds", "2"];
    let a = Server::start(dir.path(), &args);
    let (st, r) = api(
        &a,
        "POST",
        "/api/atelier/jobs",
        Some(
            json!({"kind": "processing", "spec": {"command": ["sh", "-c", "sleep 3; echo done"]}}),
        ),
    );
    assert_eq!(st, 202, "{r}");
    let id = r["job"]["id"].as_str().unwrap().to_string();
    let (holder, _) = within(Duration::from_secs(20), "the job runs on A", || {
        let j = job(&a, &id);
        (j["status"] == "running").then(|| worker_pid(&j)).flatten()
    });
    assert_eq!(holder, a.child.id(), "A's worker runs it");
    // B starts while it runs, and sees it running on A
    let b = Server::start(dir.path(), &args);
    let j = job(&b, &id);
    assert_eq!(j["status"], "running", "{j}");
    assert_eq!(worker_pid(&j), Some(a.child.id()), "{j}");

    let j = wait_job(&b, &id, Duration::from_secs(30));
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["attempt"], 1, "never retried: {j}");
    let starting: Vec<&Value> = j["secondary_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "Starting")
        .collect();
    assert_eq!(starting.len(), 1, "started once: {j}");
    let on = starting[0]["message"].as_str().unwrap_or("");
    assert!(
        on.contains(&format!(":{}:", a.child.id())),
        "on A's worker: {on}"
    );
    let steps: Vec<&str> = j["secondary_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap_or(""))
        .collect();
    for bad in ["Retrying", "Reattaching", "Failed", "Stopping"] {
        assert!(!steps.contains(&bad), "{bad} in {steps:?}");
    }
    let (st, logs) = api(&b, "GET", &format!("/api/atelier/jobs/{id}/logs"), None);
    assert_eq!(st, 200, "{logs}");
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(lines, ["done"], "the command ran once, to its end");
    // nothing else was queued or reaped: the one job, as it ended
    let (st, list) = api(&a, "GET", "/api/atelier/jobs", None);
    assert_eq!(st, 200, "{list}");
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{list}");
}

/// Every capture record under `capture/<endpoint>/` (all variants), read
/// straight from the artifact folder the replicas share.
fn captured(data: &Path, endpoint: &str, since_ms: i64) -> Vec<serving::CaptureRecord> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let arts = artifacts::ArtifactStore::local(data.join("artifacts")).unwrap();
    rt.block_on(serving::read_capture(
        &arts,
        &serving::capture::folder("default", endpoint),
        since_ms - 1000,
        store::now_ms() + 1000,
    ))
    .unwrap()
}

#[test]
fn data_capture_from_both_replicas_never_collides() {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), &[]);
    let b = Server::start(dir.path(), &[]);
    let since = store::now_ms();
    deploy(&a, "cap", &["--sampling-percentage", "100"]);
    within(FOLLOW, "B serves the endpoint", || {
        (invoke(&b, "cap", None).0 == 200).then_some(())
    });
    // the probes above were captured too: count from here
    std::thread::sleep(Duration::from_millis(2500));
    let before: HashSet<String> = captured(dir.path(), "cap", since)
        .iter()
        .map(|r| r.event_metadata.event_id.clone())
        .collect();

    // N invocations, from two clients at once, split over A and B
    const N: usize = 120;
    std::thread::scope(|sc| {
        for client in 0..2 {
            let (a, b) = (&a, &b);
            sc.spawn(move || {
                for i in (client..N).step_by(2) {
                    let s = if (i / 2) % 2 == 0 { a } else { b };
                    let id = format!("req-{i}");
                    let (st, _, body) = invoke(s, "cap", Some(&id));
                    assert_eq!(st, 200, "{body}");
                }
            });
        }
    });
    // each process writes its queued records about every second
    std::thread::sleep(Duration::from_millis(2500));
    let recs: Vec<serving::CaptureRecord> = captured(dir.path(), "cap", since)
        .into_iter()
        .filter(|r| !before.contains(&r.event_metadata.event_id))
        .collect();
    assert_eq!(recs.len(), N, "exactly one record per invocation");
    let events: HashSet<&str> = recs
        .iter()
        .map(|r| r.event_metadata.event_id.as_str())
        .collect();
    assert_eq!(events.len(), N, "every event id once");
    let mut ids: Vec<&str> = recs
        .iter()
        .filter_map(|r| r.event_metadata.inference_id.as_deref())
        .collect();
    ids.sort_unstable();
    let mut want: Vec<String> = (0..N).map(|i| format!("req-{i}")).collect();
    want.sort_unstable();
    assert_eq!(ids, want, "each request captured once, none lost");
    // and both processes took their share
    for s in [&a, &b] {
        let mut r = agent().get(&s.url("/metrics")).call().unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        let n: u64 = text
            .lines()
            .find(|l| l.starts_with("atelier_endpoint_capture_records_total{endpoint=\"cap\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(n >= (N / 2) as u64, "{} captured {n}: {text}", s.port);
    }
}
