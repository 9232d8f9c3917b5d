//! Shadow tests on endpoints (issue 15 §3), against a real `atelier serve`:
//! two adult models trained by `atelier train`, one serving and one as the
//! shadow; copies are captured and compared, the comparison survives a
//! restart, promoting under load from several clients fails no request and
//! switches the answers, a test ends by itself, and bad requests are 4xx
//! that say what to fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, agent, dataset};
use serde_json::{Value, json};

fn train(dir: &Path, rows: &Path, trees: &str, out: &str) -> PathBuf {
    let model = dir.join(out);
    let res = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["train", rows.to_str().unwrap(), "--target", "income"])
        .args(["--param", &format!("n_estimators={trees}")])
        .args(["--param", "early_stopping_rounds=0", "-o"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    model
}

fn deploy(s: &Server, model: &Path, name: &str) {
    let res = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["deploy", model.to_str().unwrap(), "--name", name])
        .args(["--server", &s.url(""), "--sampling-percentage", "0"])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

fn api(s: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let a = agent();
    let url = s.url(path);
    let mut r = match (method, body) {
        ("GET", _) => a.get(&url).call(),
        ("DELETE", _) => a.delete(&url).call(),
        (_, Some(b)) => a.post(&url).send_json(&b),
        (_, None) => a.post(&url).send_empty(),
    }
    .expect("request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// (status, invoked variant, body)
fn invoke(s: &Server, name: &str, body: &str) -> (u16, String, String) {
    let mut r = agent()
        .post(&s.url(&format!("/endpoints/{name}/invocations")))
        .header("Content-Type", "text/csv")
        .header("Accept", "application/json")
        .send(body.as_bytes())
        .expect("invoke");
    let v = r
        .headers()
        .get("x-atelier-invoked-variant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        r.status().as_u16(),
        v,
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn message(v: &Value) -> String {
    v["message"].as_str().unwrap_or_default().to_string()
}

/// Wait until the comparison has at least `min` copies (answered or
/// dropped), none waiting for the shadow, and no change for longer than
/// the capture writer's 1-second flush.
fn settled(s: &Server, name: &str, min: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut last = Value::Null;
    loop {
        let (st, v) = api(
            s,
            "GET",
            &format!("/api/atelier/endpoints/{name}/shadow"),
            None,
        );
        assert_eq!(st, 200, "{v}");
        let c = &v["comparison"];
        let n =
            c["requests_copied"].as_u64().unwrap_or(0) + c["copies_dropped"].as_u64().unwrap_or(0);
        if c["pending"] == 0 && n >= min && v == last {
            return v;
        }
        assert!(Instant::now() < deadline, "copies still pending: {v}");
        last = v;
        std::thread::sleep(Duration::from_millis(1300));
    }
}

#[test]
fn shadow_test_compares_promotes_under_load_and_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = std::fs::read_to_string(dataset("adult.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let train_rows = d.join("train.csv");
    std::fs::write(&train_rows, lines[..1501].join("\n") + "\n").unwrap();
    let strong = train(d, &train_rows, "40", "strong.model");
    let weak = train(d, &train_rows, "2", "weak.model");
    // rows to predict: the target column dropped, header kept
    let header: Vec<&str> = lines[0].split(',').collect();
    let ti = header.iter().position(|h| *h == "income").unwrap();
    let strip = |l: &str| {
        l.split(',')
            .enumerate()
            .filter(|(i, _)| *i != ti)
            .map(|(_, c)| c)
            .collect::<Vec<_>>()
            .join(",")
    };
    let head = strip(lines[0]);
    let rows: Vec<String> = lines[20001..20101].iter().map(|l| strip(l)).collect();
    let batch = |from: usize, n: usize| {
        std::iter::once(head.clone())
            .chain(rows[from..from + n].iter().cloned())
            .collect::<Vec<_>>()
            .join("\n")
    };

    let data = d.join("data");
    let mut s = Server::start(&data, &[]);
    deploy(&s, &strong, "churn");
    deploy(&s, &weak, "holder");
    let (_, h) = api(&s, "GET", "/api/atelier/endpoints/holder", None);
    let weak_uri = h["endpoint"]["variants"][0]["model"]
        .as_str()
        .unwrap()
        .to_string();

    // bad requests say what to fix
    let start = |body: Value| {
        api(
            &s,
            "POST",
            "/api/atelier/endpoints/churn/shadow",
            Some(body),
        )
    };
    let (st, v) = api(
        &s,
        "POST",
        "/api/atelier/endpoints/nope/shadow",
        Some(json!({"model": weak_uri})),
    );
    assert_eq!(st, 404, "{v}");
    assert!(message(&v).contains("create it first"), "{v}");
    let (st, v) = start(json!({"model": weak_uri, "sampling_percentage": 150}));
    assert_eq!(st, 400, "{v}");
    assert!(message(&v).contains("at most 100"), "{v}");
    let (st, v) = start(json!({"model": weak_uri, "sampling_percentage": -1}));
    assert_eq!(st, 400, "{v}");
    let (st, v) = start(json!({"model": "models:/churn/7"}));
    assert_eq!(st, 400, "{v}");
    assert!(
        message(&v).contains("shadow model 'models:/churn/7'"),
        "{v}"
    );
    let (st, v) = start(json!({"model": weak_uri, "production_variant": "blue"}));
    assert_eq!(st, 400, "{v}");
    assert!(message(&v).contains("AllTraffic"), "{v}");
    let (st, v) = start(json!({"model": weak_uri, "share": 10}));
    assert_eq!(st, 400, "{v}");
    assert!(message(&v).contains("sampling_percentage"), "{v}");
    let (st, v) = api(
        &s,
        "POST",
        "/api/atelier/endpoints/churn/shadow/promote",
        None,
    );
    assert_eq!(st, 400, "{v}");
    assert!(message(&v).contains("no shadow test to promote"), "{v}");
    let (st, v) = api(&s, "DELETE", "/api/atelier/endpoints/churn/shadow", None);
    assert_eq!(st, 400, "{v}");
    let (st, v) = api(&s, "GET", "/api/atelier/endpoints/churn/shadow", None);
    assert_eq!((st, &v["test"]), (200, &Value::Null));

    // what each model answers for the batch used under load
    let probe = batch(0, 5);
    let (_, _, strong_answer) = invoke(&s, "churn", &probe);
    let (_, _, weak_answer) = invoke(&s, "holder", &probe);
    assert_ne!(strong_answer, weak_answer, "the two models must differ");

    // a test on every request: answers stay production's, copies are compared
    let (st, v) =
        start(json!({"model": weak_uri, "sampling_percentage": 100, "duration_seconds": 600}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["endpoint"]["shadow"]["status"], "Running");
    for i in 0..40 {
        let (st, variant, body) = invoke(&s, "churn", &batch(i * 2, 2 + i % 3));
        assert_eq!((st, variant.as_str()), (200, "AllTraffic"), "{body}");
    }
    // a bad payload fails on both sides, and is counted as such
    let (st, _, _) = invoke(&s, "churn", "age\nnot-a-number");
    assert_eq!(st, 400);
    let v = settled(&s, "churn", 41);
    let c = &v["comparison"];
    assert_eq!(c["requests_copied"], 41, "{c}");
    assert_eq!(c["copies_dropped"], 0, "{c}");
    assert_eq!(c["compared_requests"], 40, "{c}");
    assert_eq!(c["production"]["errors"], 1, "{c}");
    assert_eq!(c["shadow"]["errors"], 1, "{c}");
    let rows_compared = c["compared_rows"].as_u64().unwrap();
    assert_eq!(
        rows_compared,
        (0..40u64).map(|i| 2 + i % 3).sum::<u64>(),
        "{c}"
    );
    let agreement = c["agreement_rate"].as_f64().unwrap();
    assert!(agreement > 0.5 && agreement <= 1.0, "{c}");
    assert!(c["production"]["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(c["shadow"]["latency_ms"]["p95"].as_f64().unwrap() > 0.0);
    assert!(!c["timeline"].as_array().unwrap().is_empty());
    // Model Monitor's reader never sees the test's records (capture sampled 0 %)
    let (st, cap) = api(&s, "GET", "/api/atelier/endpoints/churn/capture", None);
    assert_eq!(st, 200);
    assert_eq!(cap["records"].as_array().unwrap().len(), 0, "{cap}");
    // the shadow's answers are files in the capture layout, joined by event id
    assert!(data.join("artifacts/capture/churn/shadow").is_dir());

    // the comparison comes from the records: the same after a restart
    drop(s);
    s = Server::start(&data, &[]);
    let v2 = settled(&s, "churn", 41);
    assert_eq!(v2["comparison"]["compared_rows"], rows_compared);
    assert_eq!(v2["comparison"]["agreement_rate"], agreement);
    assert_eq!(v2["test"]["status"], "Running");
    // a second test cannot start while this one runs
    let (st, v) = api(
        &s,
        "POST",
        "/api/atelier/endpoints/churn/shadow",
        Some(json!({"model": weak_uri})),
    );
    assert_eq!(st, 409, "{v}");
    assert!(message(&v).contains("promote or stop it first"), "{v}");

    // promote while several clients keep invoking: none fails, answers switch
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let stop = stop.clone();
            let url = s.url("/endpoints/churn/invocations");
            let (probe, strong, weak) = (probe.clone(), strong_answer.clone(), weak_answer.clone());
            std::thread::spawn(move || {
                let a = agent();
                let (mut n, mut failed, mut back) = (0, Vec::new(), 0);
                let mut seen_weak = false;
                while !stop.load(Ordering::Relaxed) {
                    let r = a
                        .post(&url)
                        .header("Content-Type", "text/csv")
                        .header("Accept", "application/json")
                        .send(probe.as_bytes());
                    n += 1;
                    match r {
                        Ok(mut r) => {
                            let st = r.status().as_u16();
                            let body = r.body_mut().read_to_string().unwrap_or_default();
                            if st != 200 {
                                failed.push(format!("{st}: {body}"));
                            } else if body == weak {
                                seen_weak = true;
                            } else if body == strong {
                                // once the new model answered, the old one never does again
                                if seen_weak {
                                    back += 1;
                                }
                            } else {
                                failed.push(format!("unexpected answer {body}"));
                            }
                        }
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (n, failed, seen_weak, back)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let (st, v) = api(
        &s,
        "POST",
        "/api/atelier/endpoints/churn/shadow/promote",
        None,
    );
    assert_eq!(st, 200, "{v}");
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (n, failed, seen_weak, back) = c.join().unwrap();
        total += n;
        assert!(
            failed.is_empty(),
            "{} of {n} failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        assert!(seen_weak, "a client never got the promoted model's answer");
        assert_eq!(back, 0, "the old model answered after the new one");
    }
    assert!(total > 100, "only {total} requests during the promotion");
    let (_, _, after) = invoke(&s, "churn", &probe);
    assert_eq!(after, weak_answer);
    let (_, e) = api(&s, "GET", "/api/atelier/endpoints/churn", None);
    let ep = &e["endpoint"];
    assert_eq!(ep["variants"][0]["name"], "AllTraffic");
    assert_eq!(ep["variants"][0]["model"], weak_uri);
    assert_eq!(ep["shadow"]["status"], "Promoted");
    assert_eq!(ep["shadow"]["running"], false);
    // under load some copies may have been dropped: every copy is accounted for
    let v = settled(&s, "churn", 42);
    let c = &v["comparison"];
    assert_eq!(
        c["requests_copied"].as_u64().unwrap(),
        c["shadow_answers"].as_u64().unwrap() + c["unanswered"].as_u64().unwrap(),
        "{c}"
    );
    assert!(c["requests_copied"].as_u64().unwrap() > 41, "{c}");
    eprintln!(
        "{total} requests from 6 clients during the promotion, none failed; copies: {} answered, {} dropped",
        c["shadow_answers"], c["copies_dropped"]
    );
    // promoting twice is refused
    let (st, v) = api(
        &s,
        "POST",
        "/api/atelier/endpoints/churn/shadow/promote",
        None,
    );
    assert_eq!(st, 400, "{v}");

    // a test ends by itself at its end time: no more copies afterwards
    let (st, v) = api(
        &s,
        "POST",
        "/api/atelier/endpoints/churn/shadow",
        Some(json!({"model": weak_uri, "duration_seconds": 2, "variant": "again"})),
    );
    assert_eq!(st, 200, "{v}");
    for i in 0..5 {
        assert_eq!(invoke(&s, "churn", &batch(i, 1)).0, 200);
    }
    std::thread::sleep(Duration::from_millis(2200));
    for i in 0..10 {
        assert_eq!(invoke(&s, "churn", &batch(i, 1)).0, 200);
    }
    let v = settled(&s, "churn", 5);
    assert_eq!(v["test"]["status"], "Ended", "{v}");
    assert_eq!(v["test"]["running"], false);
    assert_eq!(v["comparison"]["requests_copied"], 5, "{v}");
    // same model on both sides: full agreement
    assert_eq!(v["comparison"]["agreement_rate"], 1.0, "{v}");
    // the CLI: start, show, stop, and a mistake reported with what to fix
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_atelier"))
            .args(["endpoints", "shadow"])
            .args(args)
            .args(["--server", &s.url("")])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = cli(&[
        "start",
        "churn",
        &weak_uri,
        "--share",
        "50",
        "--variant",
        "third",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("50 %"), "{out}");
    assert_eq!(invoke(&s, "churn", &batch(0, 2)).0, 200);
    let (ok, out, err) = cli(&["show", "churn"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("Running: third shadows AllTraffic"),
        "{out}"
    );
    assert!(out.contains("agreement:"), "{out}");
    let (ok, out, err) = cli(&["stop", "churn"]);
    assert!(ok, "{err}");
    assert!(out.contains("stopped"), "{out}");
    let (_, v) = api(&s, "GET", "/api/atelier/endpoints/churn", None);
    assert_eq!(v["endpoint"]["shadow"]["status"], "Stopped");
    let (ok, _, err) = cli(&["stop", "churn"]);
    assert!(!ok);
    assert!(err.contains("no shadow test is running"), "{err}");
    let (ok, _, err) = cli(&["promote", "nope"]);
    assert!(!ok);
    assert!(err.contains("create it first"), "{err}");
}

/// Poll `f` until it holds (at most 15 s).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_servers_on_one_database_share_the_test_its_comparison_and_the_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = std::fs::read_to_string(dataset("adult.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let train_rows = d.join("train.csv");
    std::fs::write(&train_rows, lines[..1001].join("\n") + "\n").unwrap();
    let strong = train(d, &train_rows, "30", "strong.model");
    let weak = train(d, &train_rows, "2", "weak.model");
    let header: Vec<&str> = lines[0].split(',').collect();
    let ti = header.iter().position(|h| *h == "income").unwrap();
    let strip = |l: &str| {
        l.split(',')
            .enumerate()
            .filter(|(i, _)| *i != ti)
            .map(|(_, c)| c)
            .collect::<Vec<_>>()
            .join(",")
    };
    let probe = [lines[0], lines[30001], lines[30002], lines[30003]]
        .iter()
        .map(|l| strip(l))
        .collect::<Vec<_>>()
        .join("\n");
    let data = d.join("data");
    let a = Server::start(&data, &[]);
    let b = Server::start(&data, &[]);
    deploy(&a, &strong, "shared");
    deploy(&a, &weak, "holder");
    let (_, h) = api(&a, "GET", "/api/atelier/endpoints/holder", None);
    let weak_uri = h["endpoint"]["variants"][0]["model"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, weak_answer) = invoke(&a, "holder", &probe);
    // the other process picks up the endpoint and then the test started on the first
    eventually("server b never saw the endpoint", || {
        invoke(&b, "shared", &probe).0 == 200
    });
    let (st, v) = api(
        &a,
        "POST",
        "/api/atelier/endpoints/shared/shadow",
        Some(json!({"model": weak_uri, "sampling_percentage": 100, "duration_seconds": 600})),
    );
    assert_eq!(st, 200, "{v}");
    eventually("server b never saw the shadow test", || {
        api(&b, "GET", "/api/atelier/endpoints/shared", None).1["endpoint"]["shadow"]["status"]
            == "Running"
    });
    // traffic on both processes lands in one comparison, served alike by either
    for i in 0..10 {
        let s = if i % 2 == 0 { &a } else { &b };
        assert_eq!(invoke(s, "shared", &probe).0, 200);
    }
    let va = settled(&a, "shared", 10);
    assert_eq!(va["comparison"]["requests_copied"], 10, "{va}");
    let vb = settled(&b, "shared", 10);
    assert_eq!(vb["comparison"], va["comparison"]);
    // promoted on b, served by a
    let (st, v) = api(
        &b,
        "POST",
        "/api/atelier/endpoints/shared/shadow/promote",
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(invoke(&b, "shared", &probe).2, weak_answer);
    eventually("server a never served the promoted model", || {
        invoke(&a, "shared", &probe).2 == weak_answer
    });
    assert_eq!(
        api(&a, "GET", "/api/atelier/endpoints/shared/shadow", None).1["test"]["status"],
        "Promoted"
    );
}
