//! Model Monitor on a live endpoint: an Autopilot model (which brings its
//! baseline) deployed with full capture; a schedule on a seconds cron runs by
//! itself (empty windows are `no_data`, not failures); unshifted traffic
//! passes, shifted traffic reports exactly the shifted columns, fires the
//! webhook (retried after a 500) and shows on /metrics; ground truth joins
//! by inference id for model quality, with CBPE before labels; retraining
//! from the alert registers a new version. Webhooks go only to targets the
//! server allows, and are delivered off the job workers.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, agent, dataset, get, post, webhook_receiver};
use serde_json::{Value, json};

fn penguins() -> Vec<Vec<String>> {
    std::fs::read_to_string(dataset("penguins.csv"))
        .expect("penguins.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn put(a: &ureq::Agent, url: &str, body: &[u8]) -> (u16, Value) {
    let mut r = a.put(url).send(body).expect("PUT");
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
            .unwrap_or(Value::Null),
    )
}

fn wait_job(a: &ureq::Agent, s: &Server, id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, b) = get(a, &s.url(&format!("/api/atelier/jobs/{id}"))).unwrap();
        let st = b["job"]["status"].as_str().unwrap_or("").to_string();
        if st != "queued" && st != "running" {
            return b["job"].clone();
        }
        assert!(Instant::now() < deadline, "job {id} still {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Send rows (species dropped) as CSV with a header, one request per chunk,
/// each with an inference id; returns the ids and the true species.
fn send(a: &ureq::Agent, s: &Server, rows: &[Vec<String>], tag: &str) -> Vec<(String, String)> {
    let mut truth = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let id = format!("{tag}-{i}");
        let body = format!(
            "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n{}\n",
            r[1..].join(",")
        );
        let mut resp = a
            .post(&s.url("/endpoints/penguins/invocations"))
            .header("Content-Type", "text/csv")
            .header("Accept", "application/json")
            .header("X-Atelier-Inference-Id", &id)
            .send(body.as_bytes())
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "{}",
            resp.body_mut().read_to_string().unwrap_or_default()
        );
        truth.push((id, r[0].clone()));
    }
    truth
}

/// A webhook receiver: answers 500 to the first delivery, 200 after.
fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    webhook_receiver(true)
}

#[test]
fn a_schedule_on_a_live_endpoint_catches_drift_alerts_and_leads_to_retraining() {
    let dir = tempfile::tempdir().unwrap();
    // the test's webhook receivers listen on loopback, which the server must allow
    let s = Server::start(dir.path(), &["--webhook-allowed-hosts", "127.0.0.1"]);
    let a = agent();
    let csv = std::fs::read(dataset("penguins.csv")).unwrap();
    assert_eq!(
        put(&a, &s.url("/api/atelier/datasets/penguins.csv"), &csv).0,
        201
    );
    let (code, b) = post(&a, &s.url("/api/atelier/automl"), &json!({"dataset": "penguins.csv", "target": "species", "time_budget": 60, "max_candidates": 3})).unwrap();
    assert_eq!(code, 202, "{b}");
    let job = wait_job(&a, &s, b["job"]["id"].as_str().unwrap(), 120);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        job["result"]["baseline"]
            .as_str()
            .unwrap()
            .ends_with("/baseline"),
        "Autopilot writes a baseline"
    );

    // deploy with every request captured
    let (code, b) = post(&a, &s.url("/api/atelier/endpoints"), &json!({"name": "penguins", "model": "models:/penguins-species/1", "data_capture": {"sampling_percentage": 100}})).unwrap();
    assert_eq!(code, 200, "{b}");

    // bad schedules are refused with what to fix
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules"),
        &json!({"name": "x", "endpoint": "nope"}),
    )
    .unwrap();
    assert_eq!(code, 404, "{b}");
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules"),
        &json!({"name": "x", "endpoint": "penguins", "cron": "61 * * * *"}),
    )
    .unwrap();
    assert_eq!(code, 400, "{b}");
    assert!(b["message"].as_str().unwrap().contains("minute"));

    // a baseline that is missing or malformed is refused with the file named
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules"),
        &json!({"name": "x", "endpoint": "penguins", "baseline": "baselines/none"}),
    )
    .unwrap();
    assert_eq!(code, 400, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("no baseline at 'baselines/none'"),
        "{b}"
    );
    assert_eq!(
        put(
            &a,
            &s.url("/api/2.0/mlflow-artifacts/artifacts/baselines/bad/statistics.json"),
            b"{\"version\": 1}"
        )
        .0,
        200
    );
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules"),
        &json!({"name": "x", "endpoint": "penguins", "baseline": "baselines/bad"}),
    )
    .unwrap();
    assert_eq!(code, 400, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("is malformed: statistics.json"),
        "{b}"
    );

    // allowing 127.0.0.1 allows nothing else that is not public
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules"),
        &json!({"name": "x", "endpoint": "penguins", "webhooks": ["http://10.1.2.3/"]}),
    )
    .unwrap();
    assert_eq!(code, 400, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("--webhook-allowed-hosts"),
        "{b}"
    );

    let (hook, deliveries) = receiver();
    let (code, b) = post(&a, &s.url("/api/atelier/monitoring-schedules"), &json!({"name": "penguins-drift", "endpoint": "penguins", "cron": "*/2 * * * * *", "webhooks": [hook]})).unwrap();
    assert_eq!(code, 201, "{b}");

    // the cron runs by itself; with no traffic a window is "no_data"
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let (_, one) = get(
            &a,
            &s.url("/api/atelier/monitoring-schedules/penguins-drift"),
        )
        .unwrap();
        let done: Vec<Value> = one["executions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "succeeded")
            .cloned()
            .collect();
        if let Some(e) = done.last() {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "no cron execution: {one}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(first["trigger"], "cron");
    assert_eq!(first["result"]["status"], "no_data", "{first}");
    assert!(
        first["result"]["message"]
            .as_str()
            .unwrap()
            .contains("no captured requests")
    );

    // traffic like the training data: no drift
    let rows = penguins();
    let t0 = store_now();
    let truth = send(&a, &s, &rows, "same");
    std::thread::sleep(Duration::from_millis(2500)); // capture is written about every second
    let t1 = store_now();
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules/penguins-drift/run"),
        &json!({"window_start_ms": t0, "window_end_ms": t1}),
    )
    .unwrap();
    assert_eq!(code, 202, "{b}");
    let clean = wait_job(&a, &s, b["job"]["id"].as_str().unwrap(), 60);
    assert_eq!(clean["status"], "succeeded", "{clean}");
    let r = &clean["result"];
    assert_eq!(r["rows"], 344, "{r}");
    let drift_violations: Vec<&Value> = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["constraint_check_type"] == "baseline_drift_check")
        .collect();
    assert!(
        drift_violations.is_empty(),
        "unshifted traffic drifts: {drift_violations:?}"
    );
    // every baseline column here is one the model reads
    let model_columns = r["model_columns"].as_array().unwrap();
    assert!(model_columns.iter().any(|c| c == "island"), "{r}");
    assert!(
        r["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["used_by_model"] == true),
        "{r}"
    );

    // a baseline that also holds the target (which requests never carry): what
    // it finds there is reported apart and does not alert
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/baselines"),
        &json!({"dataset": "penguins.csv", "name": "with-species"}),
    )
    .unwrap();
    assert_eq!(code, 202, "{b}");
    let made = wait_job(&a, &s, b["job"]["id"].as_str().unwrap(), 60);
    assert_eq!(made["status"], "succeeded", "{made}");
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules"),
        &json!({"name": "with-species", "endpoint": "penguins", "cron": "0 0 1 1 *", "baseline": "baselines/with-species"}),
    )
    .unwrap();
    assert_eq!(code, 201, "{b}");
    let (_, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules/with-species/run"),
        &json!({"window_start_ms": t0, "window_end_ms": t1}),
    )
    .unwrap();
    let apart = wait_job(&a, &s, b["job"]["id"].as_str().unwrap(), 60);
    let r = &apart["result"];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["violation_count"], 0, "{r}");
    let unused = r["unused_column_violations"].as_array().unwrap();
    // (requests lack it, so it reads as an empty column: a completeness violation)
    assert!(unused.iter().any(|v| v["feature_name"] == "species"), "{r}");
    let species = r["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "species");
    assert!(species.is_none_or(|f| f["used_by_model"] == false), "{r}");

    // shifted traffic: bill length +12 mm, every penguin on Dream
    let shifted: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r[1] = "Dream".into();
            if let Ok(v) = r[2].parse::<f64>() {
                r[2] = format!("{:.1}", v + 12.0);
            }
            r
        })
        .collect();
    let t2 = store_now();
    send(&a, &s, &shifted, "shifted");
    std::thread::sleep(Duration::from_millis(2500));
    let t3 = store_now();
    let (_, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules/penguins-drift/run"),
        &json!({"window_start_ms": t2, "window_end_ms": t3}),
    )
    .unwrap();
    let drifted = wait_job(&a, &s, b["job"]["id"].as_str().unwrap(), 60);
    let r = &drifted["result"];
    assert_eq!(r["status"], "violations", "{r}");
    let mut cols: Vec<&str> = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["constraint_check_type"] == "baseline_drift_check")
        .map(|v| v["feature_name"].as_str().unwrap())
        .collect();
    cols.sort();
    assert_eq!(cols, ["bill_length_mm", "island"], "{r}");
    // p-value verdicts are Holm-corrected across the check's features; the raw p-value stays
    assert_eq!(r["multiple_testing"]["method"], "holm", "{r}");
    for f in r["features"].as_array().unwrap() {
        if let (Some(raw), Some(adj)) = (f["value"].as_f64(), f["p_adjusted"].as_f64()) {
            assert!(adj >= raw && adj <= 1.0, "{f}");
        }
    }
    assert!(r["histograms"]["bill_length_mm"]["baseline"].is_array());
    // the execution queued the webhook and ended; the outbox delivers it
    assert_eq!(r["webhooks_queued"], 1, "{r}");
    assert!(
        r.get("deliveries").is_none(),
        "a finished job never changes: {r}"
    );
    // the receiver's first answer (a 500) was retried (by whichever execution
    // alerted first: the cron runs beside the manual runs); wait for both
    let deadline = Instant::now() + Duration::from_secs(20);
    let (one, retried, this_one) = loop {
        let (_, one) = get(
            &a,
            &s.url("/api/atelier/monitoring-schedules/penguins-drift"),
        )
        .unwrap();
        let execs = one["executions"].as_array().unwrap();
        let retried = execs.iter().any(|e| {
            let d = &e["deliveries"][0];
            d["delivered"] == true
                && d["pending"] == false
                && d["attempts"][0]["status"] == 500
                && d["attempts"][1]["status"] == 200
                && d["attempts"].as_array().map_or(0, Vec::len) == 2
        });
        let this_one = execs
            .iter()
            .any(|e| e["id"] == drifted["id"] && e["deliveries"][0]["delivered"] == true);
        if (retried && this_one) || Instant::now() > deadline {
            break (one, retried, this_one);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(retried, "a delivery retried after the 500: {one}");
    assert!(
        this_one,
        "the drifted execution's webhook is delivered: {one}"
    );
    let mine = one["executions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == drifted["id"])
        .unwrap();
    assert_eq!(
        mine["deliveries"][0]["url"], hook,
        "deliveries name their URL: {mine}"
    );
    assert_eq!(one["schedule"]["alerting"], true);
    let got = deliveries.lock().unwrap().clone();
    assert!(
        got.iter()
            .any(|g| g["execution_id"] == drifted["id"] && g["schedule"] == "penguins-drift"),
        "{got:?}"
    );
    // the report files are stored
    let path = r["files"]["drift_report.json"].as_str().unwrap();
    let (code, report) = get(
        &a,
        &s.url(&format!("/api/2.0/mlflow-artifacts/artifacts/{path}")),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(report["drifted"].as_array().unwrap().len() >= 2);

    // a webhook that never answers holds no job worker: two executions queued
    // back to back both end at once while their deliveries wait (each delivery
    // alone would take 4 attempts × 5 s, and there are two workers)
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/never", dead.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in dead.incoming() {
            held.push(stream);
        }
    });
    let (code, b) = post(&a, &s.url("/api/atelier/monitoring-schedules"), &json!({"name": "penguins-dead-hook", "endpoint": "penguins", "cron": "0 0 1 1 *", "webhooks": [dead_url]})).unwrap();
    assert_eq!(code, 201, "{b}");
    let started = Instant::now();
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let (code, b) = post(
                &a,
                &s.url("/api/atelier/monitoring-schedules/penguins-dead-hook/run"),
                &json!({"window_start_ms": t2, "window_end_ms": t3}),
            )
            .unwrap();
            assert_eq!(code, 202, "{b}");
            b["job"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &ids {
        let j = wait_job(&a, &s, id, 30);
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["result"]["status"], "violations");
        assert_eq!(j["result"]["webhooks_queued"], 1);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "executions waited for a dead webhook: {took:?}"
    );
    let (_, one) = get(
        &a,
        &s.url("/api/atelier/monitoring-schedules/penguins-dead-hook"),
    )
    .unwrap();
    for e in one["executions"].as_array().unwrap() {
        let d = &e["deliveries"][0];
        assert_eq!(d["url"], dead_url.as_str(), "{one}");
        assert_eq!(d["pending"], true, "still trying: {one}");
        assert_eq!(d["delivered"], false, "{one}");
    }

    // model quality: labels by inference id; unknown ids are reported at upload
    let mut labels: String = truth
        .iter()
        .map(|(id, sp)| json!({"inferenceId": id, "label": sp}).to_string() + "\n")
        .collect();
    labels.push_str(&json!({"inferenceId": "never-sent", "label": "Adelie"}).to_string());
    let mut resp = a
        .post(&s.url("/api/atelier/ground-truth/penguins"))
        .header("Content-Type", "application/jsonlines")
        .send(labels.as_bytes())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let up: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(up["labels"], 345);
    assert_eq!(up["unknown"], 1);
    assert_eq!(up["unknown_ids"][0], "never-sent");
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/ground-truth/penguins"),
        &json!({"oops": 1}),
    )
    .unwrap();
    assert_eq!(code, 400, "{b}");
    let (code, b) = post(&a, &s.url("/api/atelier/monitoring-schedules"), &json!({"name": "penguins-quality", "endpoint": "penguins", "kind": "model_quality", "cron": "0 0 1 1 *", "baseline_score": 0.99, "threshold": 0.02})).unwrap();
    assert_eq!(code, 201, "{b}");
    let (_, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules/penguins-quality/run"),
        &json!({"window_start_ms": t0, "window_end_ms": t3}),
    )
    .unwrap();
    let q = wait_job(&a, &s, b["job"]["id"].as_str().unwrap(), 60);
    let r = &q["result"];
    assert_eq!(r["labelled"], 344, "{r}");
    assert_eq!(r["unlabelled"], 344, "the shifted requests have no labels");
    let acc = r["score"].as_f64().unwrap();
    assert!(acc > 0.9, "accuracy on its own training rows {acc}");
    let est = r["estimated"]["accuracy"]["estimate"].as_f64().unwrap();
    assert!(
        r["estimated"]["calibrated"]
            .as_str()
            .unwrap_or("")
            .contains("out-of-fold"),
        "CBPE uses the calibration Autopilot stored beside the baseline: {r}"
    );
    assert!(est > 0.5 && est <= 1.0, "{r}");

    // the upload reads only the hours its labels can concern, not the history
    assert!(
        up["searched_hours"]
            .as_u64()
            .is_some_and(|h| (1..=24).contains(&h)),
        "{up}"
    );
    // our event ids are UUIDv7: a label by eventId reads its capture hour (and
    // the one before) only, and matches
    let mut event_ids = Vec::new();
    let mut stack = vec![dir.path().join("artifacts/capture/penguins")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if event_ids.len() < 5 {
                let text = std::fs::read_to_string(e.path()).unwrap();
                for line in text.lines().take(5 - event_ids.len()) {
                    let r: Value = serde_json::from_str(line).unwrap();
                    event_ids.push(r["eventMetadata"]["eventId"].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert_eq!(event_ids.len(), 5);
    assert!(
        event_ids
            .iter()
            .all(|id| id.as_bytes().get(14) == Some(&b'7')),
        "event ids are UUIDv7: {event_ids:?}"
    );
    let by_event: String = event_ids
        .iter()
        .map(|id| json!({"eventId": id, "label": "Adelie"}).to_string() + "\n")
        .collect();
    let mut resp = a
        .post(&s.url("/api/atelier/ground-truth/penguins"))
        .header("Content-Type", "application/jsonlines")
        .send(by_event.as_bytes())
        .unwrap();
    let up: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(up["matched"], 5, "{up}");
    assert!(up["searched_hours"].as_u64().unwrap() <= 2, "{up}");
    let mut resp = a
        .post(&s.url("/api/atelier/ground-truth/penguins?match_hours=0"))
        .header("Content-Type", "application/jsonlines")
        .send(by_event.as_bytes())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let msg = resp.body_mut().read_to_string().unwrap();
    assert!(
        msg.contains("match_hours must be a whole number of hours from 1"),
        "{msg}"
    );

    // the schedule's page data is light: one execution carries histograms, the
    // others say they were left out and come in full from their own route
    let (_, one) = get(
        &a,
        &s.url("/api/atelier/monitoring-schedules/penguins-drift"),
    )
    .unwrap();
    let execs = one["executions"].as_array().unwrap();
    let with: Vec<&Value> = execs
        .iter()
        .filter(|e| e["result"]["histograms"].is_object())
        .collect();
    assert_eq!(with.len(), 1, "{one}");
    let omitted = execs
        .iter()
        .find(|e| e["result"]["histograms_omitted"] == true)
        .expect("an older execution without its histograms");
    let (code, full) = get(
        &a,
        &s.url(&format!(
            "/api/atelier/monitoring-schedules/penguins-drift/executions/{}",
            omitted["id"].as_str().unwrap()
        )),
    )
    .unwrap();
    assert_eq!(code, 200, "{full}");
    assert!(
        full["execution"]["result"]["histograms"].is_object(),
        "{full}"
    );
    let (code, _) = get(
        &a,
        &s.url(&format!(
            "/api/atelier/monitoring-schedules/penguins-quality/executions/{}",
            omitted["id"].as_str().unwrap()
        )),
    )
    .unwrap();
    assert_eq!(code, 404, "an execution of another schedule");

    // /metrics carries the monitor's gauge
    let mut m = a.get(&s.url("/metrics")).call().unwrap();
    let text = m.body_mut().read_to_string().unwrap();
    assert!(text.contains("atelier_monitoring_violations{schedule=\"penguins-drift\",endpoint=\"penguins\",kind=\"data_quality\"}"), "{text}");

    // retrain on captured inputs + labels → a new version of the same model
    let (code, b) = post(
        &a,
        &s.url("/api/atelier/monitoring-schedules/penguins-drift/retrain"),
        &json!({"time_budget": 30}),
    )
    .unwrap();
    assert_eq!(code, 202, "{b}");
    let rj = wait_job(&a, &s, b["job"]["id"].as_str().unwrap(), 120);
    assert_eq!(rj["status"], "succeeded", "{rj}");
    assert_eq!(rj["result"]["model_name"], "penguins-species");
    assert_eq!(rj["result"]["model_version"], "2");
    let (_, one) = get(
        &a,
        &s.url("/api/atelier/monitoring-schedules/penguins-drift"),
    )
    .unwrap();
    assert_eq!(
        one["schedule"]["retrain"]["job_id"], rj["id"],
        "the schedule remembers its retraining"
    );
    assert_eq!(one["schedule"]["retrain"]["serving"]["version"], 1);
}

/// Webhooks to loopback, private, link-local (cloud metadata) and other
/// non-public targets are refused when a schedule is saved, with the setting
/// that allows them named; the allow-list lets the named ones through; a bad
/// allow-list stops the server.
#[test]
fn webhooks_to_private_targets_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = format!("http://127.0.0.1:{}/", l.local_addr().unwrap().port());
    let schedule = |hook: &str| json!({"name": "x", "endpoint": "nope", "webhooks": [hook]});
    {
        let s = Server::start(dir.path(), &[]);
        for hook in [
            local.as_str(),
            "http://localhost:9/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "http://[::1]:80/",
        ] {
            let (code, b) = post(
                &a,
                &s.url("/api/atelier/monitoring-schedules"),
                &schedule(hook),
            )
            .unwrap();
            assert_eq!(code, 400, "{hook}: {b}");
            let m = b["message"].as_str().unwrap_or_default();
            assert!(
                m.contains(hook)
                    && m.contains("--webhook-allowed-hosts")
                    && m.contains("ATELIER_WEBHOOK_ALLOWED_HOSTS"),
                "{hook}: {m}"
            );
        }
        let (_, b) = post(
            &a,
            &s.url("/api/atelier/monitoring-schedules"),
            &schedule("http://169.254.169.254/latest/meta-data/"),
        )
        .unwrap();
        assert!(b["message"].as_str().unwrap().contains("metadata"), "{b}");
    }
    {
        // allowed: the webhook passes, and the schedule goes on to its next check
        let s = Server::start(dir.path(), &["--webhook-allowed-hosts", "127.0.0.1"]);
        let (code, b) = post(
            &a,
            &s.url("/api/atelier/monitoring-schedules"),
            &schedule(&local),
        )
        .unwrap();
        assert_eq!(code, 404, "{b}");
        assert!(
            b["message"].as_str().unwrap().contains("deploy it first"),
            "{b}"
        );
        let (code, b) = post(
            &a,
            &s.url("/api/atelier/monitoring-schedules"),
            &schedule("http://[::1]:80/"),
        )
        .unwrap();
        assert_eq!(code, 400, "only what is named is allowed: {b}");
    }
    let err = Server::try_start(dir.path(), &["--webhook-allowed-hosts", "10.0.0.0/33"], 0)
        .err()
        .expect("a bad allow-list stops the server");
    assert!(err.contains("10.0.0.0/33"), "{err}");
}

fn store_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
