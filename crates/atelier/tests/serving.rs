//! Endpoints end to end: models trained by `atelier train`, deployed with
//! `atelier deploy` (a file or the registry) to a real `atelier serve`,
//! invoked over HTTP in every content type and compared with `atelier
//! predict`; weighted variants, data capture files, `/metrics`, overload,
//! bad input, restarts, authentication and batch transform.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{Server, agent, dataset};
use serde_json::{Value, json};

fn atelier(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("run atelier");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Models trained once for all tests: (adult binary, penguins multiclass,
/// test rows of each as CSV).
struct Models {
    _dir: tempfile::TempDir,
    adult: PathBuf,
    adult_rows: PathBuf,
    penguins: PathBuf,
    penguins_rows: PathBuf,
}

fn models() -> &'static Models {
    static M: OnceLock<Models> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // adult: 2,000 training rows, 200 rows to predict (target dropped)
        let text = std::fs::read_to_string(dataset("adult.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let train = d.join("adult_train.csv");
        std::fs::write(&train, lines[..2001].join("\n") + "\n").unwrap();
        let header: Vec<&str> = lines[0].split(',').collect();
        let ti = header.iter().position(|h| *h == "income").unwrap();
        let drop = |l: &str| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != ti)
                .map(|(_, c)| c)
                .collect::<Vec<_>>()
                .join(",")
        };
        let rows: Vec<String> = std::iter::once(drop(lines[0]))
            .chain(lines[20001..20201].iter().map(|l| drop(l)))
            .collect();
        let adult_rows = d.join("adult_rows.csv");
        std::fs::write(&adult_rows, rows.join("\n") + "\n").unwrap();
        let adult = d.join("adult.model");
        let (ok, _, err) = atelier(
            &[
                "train",
                train.to_str().unwrap(),
                "--target",
                "income",
                "--param",
                "n_estimators=60",
                "--param",
                "early_stopping_rounds=0",
                "-o",
                adult.to_str().unwrap(),
            ],
            &[],
        );
        assert!(ok, "{err}");
        let penguins = d.join("penguins.model");
        let (ok, _, err) = atelier(
            &[
                "train",
                dataset("penguins.csv").to_str().unwrap(),
                "--target",
                "species",
                "--param",
                "n_estimators=30",
                "-o",
                penguins.to_str().unwrap(),
            ],
            &[],
        );
        assert!(ok, "{err}");
        let ptext = std::fs::read_to_string(dataset("penguins.csv")).unwrap();
        let prow: Vec<String> = ptext
            .lines()
            .map(|l| l.split_once(',').unwrap().1.to_string())
            .collect();
        let penguins_rows = d.join("penguins_rows.csv");
        std::fs::write(&penguins_rows, prow.join("\n") + "\n").unwrap();
        Models {
            _dir: dir,
            adult,
            adult_rows,
            penguins,
            penguins_rows,
        }
    })
}

fn deploy(s: &Server, model: &Path, name: &str, extra: &[&str]) {
    let url = s.url("");
    let mut args = vec![
        "deploy",
        model.to_str().unwrap(),
        "--name",
        name,
        "--server",
        &url,
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = atelier(&args, &[]);
    assert!(ok, "deploy failed: {err}");
    assert!(
        out.contains(&format!("/endpoints/{name}/invocations")),
        "{out}"
    );
}

/// POST a payload: (status, headers we need, body).
fn invoke(
    s: &Server,
    name: &str,
    content_type: &str,
    accept: Option<&str>,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (u16, Option<String>, Option<String>, String) {
    let mut r = agent()
        .post(&s.url(&format!("/endpoints/{name}/invocations")))
        .header("Content-Type", content_type);
    if let Some(a) = accept {
        r = r.header("Accept", a);
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let mut res = r.send(body).expect("invoke");
    let status = res.status().as_u16();
    let variant = res
        .headers()
        .get("x-atelier-invoked-variant")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (status, variant, retry, text)
}

fn predict_cli(model: &Path, rows: &Path, dir: &Path) -> String {
    let out = dir.join("pred.csv");
    let (ok, _, err) = atelier(
        &[
            "predict",
            model.to_str().unwrap(),
            rows.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{err}");
    std::fs::read_to_string(out).unwrap()
}

/// Parse `atelier predict` CSV into (label, probabilities) rows.
fn parse_pred(csv: &str) -> Vec<(String, Vec<f64>)> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            let label = f.next().unwrap().to_string();
            (label, f.map(|x| x.parse().unwrap()).collect())
        })
        .collect()
}

fn check_json_rows(rows: &[Value], want: &[(String, Vec<f64>)]) {
    assert_eq!(rows.len(), want.len());
    for (r, (label, probs)) in rows.iter().zip(want) {
        assert_eq!(r["predicted_label"].as_str().unwrap(), label);
        let got: Vec<f64> = r["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(&got, probs, "probabilities differ from atelier predict");
        let k = r["labels"]
            .as_array()
            .unwrap()
            .iter()
            .position(|l| l.as_str() == Some(label))
            .unwrap();
        assert_eq!(r["probability"].as_f64().unwrap(), probs[k]);
    }
}

#[test]
fn every_content_type_answers_what_atelier_predict_writes() {
    let m = models();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    deploy(&s, &m.adult, "adult", &[]);
    deploy(&s, &m.penguins, "penguins", &[]);
    for (name, model, rows) in [
        ("adult", &m.adult, &m.adult_rows),
        ("penguins", &m.penguins, &m.penguins_rows),
    ] {
        let want_csv = predict_cli(model, rows, dir.path());
        let want = parse_pred(&want_csv);
        let csv = std::fs::read_to_string(rows).unwrap();
        // CSV with a header, answered in CSV: byte for byte what predict wrote
        let (st, v, _, body) = invoke(&s, name, "text/csv", None, csv.as_bytes(), &[]);
        assert_eq!(st, 200, "{body}");
        assert_eq!(v.as_deref(), Some("AllTraffic"));
        assert_eq!(
            body, want_csv,
            "{name}: CSV answer differs from atelier predict"
        );
        // extra columns (here an id in front) are ignored, as by atelier predict
        let with_id: String = csv
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("row_id,{l}\n")
                } else {
                    format!("r{i},{l}\n")
                }
            })
            .collect();
        let (st, _, _, body) = invoke(&s, name, "text/csv", None, with_id.as_bytes(), &[]);
        assert_eq!(st, 200, "{body}");
        assert_eq!(body, want_csv);
        // CSV without a header, answered in JSON
        let no_header: String = csv.lines().skip(1).collect::<Vec<_>>().join("\n");
        let (st, _, _, body) = invoke(
            &s,
            name,
            "text/csv",
            Some("application/json"),
            no_header.as_bytes(),
            &[],
        );
        assert_eq!(st, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        check_json_rows(v["predictions"].as_array().unwrap(), &want);
        // JSON: records by name, from the CSV
        // (these files have no quoted fields)
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let records: Vec<Value> = csv
            .lines()
            .skip(1)
            .map(|r| {
                let mut o = serde_json::Map::new();
                for (h, c) in header.iter().zip(r.split(',')) {
                    let v = if c.is_empty() {
                        Value::Null
                    } else if let Ok(x) = c.parse::<f64>() {
                        json!(x)
                    } else {
                        json!(c)
                    };
                    o.insert(h.to_string(), v);
                }
                Value::Object(o)
            })
            .collect();
        for body in [json!(records), json!({ "instances": records })] {
            let (st, _, _, text) = invoke(
                &s,
                name,
                "application/json",
                None,
                body.to_string().as_bytes(),
                &[],
            );
            assert_eq!(st, 200, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            check_json_rows(v["predictions"].as_array().unwrap(), &want);
        }
        // one record
        let (st, _, _, text) = invoke(
            &s,
            name,
            "application/json",
            None,
            records[3].to_string().as_bytes(),
            &[],
        );
        assert_eq!(st, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        check_json_rows(v["predictions"].as_array().unwrap(), &want[3..4]);
        // JSON Lines in, JSON Lines out
        let jl: String = records.iter().map(|r| r.to_string() + "\n").collect();
        let (st, _, _, text) = invoke(
            &s,
            name,
            "application/jsonlines",
            Some("application/jsonlines"),
            jl.as_bytes(),
            &[],
        );
        assert_eq!(st, 200, "{text}");
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        check_json_rows(&rows, &want);
        // JSON in, CSV out
        let (st, _, _, text) = invoke(
            &s,
            name,
            "application/json",
            Some("text/csv"),
            json!(records).to_string().as_bytes(),
            &[],
        );
        assert_eq!(st, 200);
        assert_eq!(text, want_csv);
    }
}

fn api(s: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let a = agent();
    let url = s.url(path);
    let mut r = match (method, body) {
        ("GET", _) => a.get(&url).call(),
        ("DELETE", _) => a.delete(&url).call(),
        ("PUT", Some(b)) => a.put(&url).send_json(&b),
        (_, Some(b)) => a.post(&url).send_json(&b),
        _ => panic!("bad call"),
    }
    .expect("request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn weights_split_traffic_and_shift_without_dropping_requests() {
    let m = models();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    deploy(&s, &m.adult, "ab", &["--variant", "blue", "--weight", "3"]);
    deploy(
        &s,
        &m.penguins,
        "ab",
        &["--variant", "green", "--weight", "1"],
    );
    let (st, ep) = api(&s, "GET", "/api/atelier/endpoints/ab", None);
    assert_eq!(st, 200);
    assert_eq!(ep["endpoint"]["variants"].as_array().unwrap().len(), 2);
    let row = std::fs::read_to_string(&m.adult_rows).unwrap();
    let adult_row = row.lines().nth(1).unwrap().to_string();
    let prow = std::fs::read_to_string(&m.penguins_rows).unwrap();
    let penguin_row = prow.lines().nth(1).unwrap().to_string();
    let send = |target: Option<&str>| {
        // a row each model can read: both header rows present, by variant
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for _ in 0..400 {
            let extra: Vec<(&str, &str)> = target
                .map(|t| vec![("X-Atelier-Target-Variant", t)])
                .unwrap_or_default();
            let (st, v, _, body) = invoke(&s, "ab", "application/json", None, b"{}", &extra);
            // '{}' lacks the model's columns: a 400 that still names the variant
            assert_eq!(st, 400, "{body}");
            *counts.entry(v.unwrap()).or_default() += 1;
        }
        counts
    };
    let c = send(None);
    let blue = *c.get("blue").unwrap_or(&0) as f64 / 400.0;
    assert!(
        (0.65..=0.85).contains(&blue),
        "blue got {blue} of traffic at weight 3:1: {c:?}"
    );
    // the header picks a variant
    let c = send(Some("green"));
    assert_eq!(c.get("green"), Some(&400));
    // shift all traffic to green while requests flow
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flow = {
        let stop = stop.clone();
        let url = s.url("/endpoints/ab/invocations");
        let (a, p) = (adult_row.clone(), penguin_row.clone());
        std::thread::spawn(move || {
            let mut failures = 0;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = agent()
                    .post(&url)
                    .header("Content-Type", "text/csv")
                    .send(a.as_bytes())
                    .unwrap();
                let v = r
                    .headers()
                    .get("x-atelier-invoked-variant")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let st = r.status().as_u16();
                // the adult row is valid for blue; green (penguins) rejects it with 400
                if !(st == 200 && v == "blue" || st == 400 && v == "green") {
                    failures += 1;
                }
                n += 1;
                let _ = &p;
            }
            (n, failures)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let (st, body) = api(
        &s,
        "PUT",
        "/api/atelier/endpoints/ab",
        Some(json!({"variants": [
            {"name": "blue", "model": ep["endpoint"]["variants"][0]["model"], "weight": 0},
            {"name": "green", "model": ep["endpoint"]["variants"][1]["model"], "weight": 1},
        ]})),
    );
    assert_eq!(st, 200, "{body}");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, failures) = flow.join().unwrap();
    assert!(n > 10, "only {n} requests during the swap");
    assert_eq!(
        failures, 0,
        "{failures} of {n} requests failed during the swap"
    );
    let c = send(None);
    assert_eq!(c.get("green"), Some(&400), "{c:?}");
    // an unknown target variant is a 400 naming the variants
    let (st, _, _, body) = invoke(
        &s,
        "ab",
        "text/csv",
        None,
        adult_row.as_bytes(),
        &[("X-Atelier-Target-Variant", "red")],
    );
    assert_eq!(st, 400);
    assert!(body.contains("blue, green"), "{body}");
}

#[test]
fn capture_files_metrics_and_restart() {
    let m = models();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    deploy(&s, &m.penguins, "cap", &["--sampling-percentage", "100"]);
    deploy(&s, &m.penguins, "sampled", &[]);
    let csv = std::fs::read_to_string(&m.penguins_rows).unwrap();
    let row = csv.lines().nth(1).unwrap();
    let start = store::now_ms();
    for i in 0..20 {
        let id = format!("req-{i}");
        let (st, _, _, _) = invoke(
            &s,
            "cap",
            "text/csv",
            Some("application/json"),
            row.as_bytes(),
            &[("X-Atelier-Inference-Id", &id)],
        );
        assert_eq!(st, 200);
    }
    for _ in 0..500 {
        let (st, _, _, _) = invoke(&s, "sampled", "text/csv", None, row.as_bytes(), &[]);
        assert_eq!(st, 200);
    }
    let (st, _, _, _) = invoke(&s, "cap", "text/csv", None, b"a,b", &[]);
    assert_eq!(st, 400);
    std::thread::sleep(Duration::from_millis(2500));
    // files in the documented layout
    let root = dir.path().join("artifacts/capture/cap/AllTraffic");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty());
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 5, "{rel}: want YYYY/MM/DD/HH/<file>.jsonl");
        assert_eq!(parts[0].len(), 4);
        assert!(parts[4].ends_with(".jsonl"));
    }
    // and the reader finds every captured request in SageMaker's shape
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let arts = artifacts::ArtifactStore::local(dir.path().join("artifacts")).unwrap();
    let recs = rt
        .block_on(serving::read_capture(
            &arts,
            "capture/cap",
            start - 1000,
            store::now_ms() + 1000,
        ))
        .unwrap();
    assert_eq!(
        recs.len(),
        20,
        "every successful request is captured at 100 %"
    );
    let mut ids: Vec<String> = recs
        .iter()
        .map(|r| r.event_metadata.inference_id.clone().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let input = &line["captureData"]["endpointInput"];
    assert_eq!(input["observedContentType"], "text/csv");
    assert_eq!(input["mode"], "INPUT");
    assert_eq!(input["encoding"], "CSV");
    assert_eq!(input["data"], row);
    let output = &line["captureData"]["endpointOutput"];
    assert_eq!(output["mode"], "OUTPUT");
    assert_eq!(output["observedContentType"], "application/json");
    assert!(output["data"].as_str().unwrap().contains("predicted_label"));
    assert!(line["eventMetadata"]["eventId"].as_str().unwrap().len() >= 32);
    assert!(
        line["eventMetadata"]["inferenceTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(line["eventVersion"], "0");
    // the default 20 % sampling
    let sampled = rt
        .block_on(serving::read_capture(
            &arts,
            "capture/sampled",
            start - 1000,
            store::now_ms() + 1000,
        ))
        .unwrap()
        .len();
    assert!(
        (50..=150).contains(&sampled),
        "{sampled} of 500 captured at 20 %"
    );
    // Prometheus metrics
    let mut r = agent().get(&s.url("/metrics")).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(text.contains("# TYPE atelier_endpoint_latency_seconds histogram"));
    assert!(
        text.contains(
            "atelier_endpoint_requests_total{endpoint=\"cap\",variant=\"AllTraffic\"} 21"
        ),
        "{text}"
    );
    assert!(text.contains(
        "atelier_endpoint_errors_total{endpoint=\"cap\",variant=\"AllTraffic\",kind=\"client\"} 1"
    ));
    assert!(text.contains(
        "atelier_endpoint_latency_seconds_count{endpoint=\"sampled\",variant=\"AllTraffic\"} 500"
    ));
    assert!(text.contains("atelier_endpoint_capture_records_total{endpoint=\"cap\"} 20"));
    deploy(&s, &m.penguins, "fragile", &[]);
    // a graceful stop writes the capture records still queued
    for i in 0..5 {
        let id = format!("term-{i}");
        let (st, _, _, _) = invoke(
            &s,
            "cap",
            "text/csv",
            None,
            row.as_bytes(),
            &[("X-Atelier-Inference-Id", &id)],
        );
        assert_eq!(st, 200);
    }
    let t = std::time::Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let _ = s.child.wait();
    assert!(t.elapsed() < Duration::from_secs(10));
    let recs = rt
        .block_on(serving::read_capture(
            &arts,
            "capture/cap",
            start - 1000,
            store::now_ms() + 1000,
        ))
        .unwrap();
    let term = recs
        .iter()
        .filter(|r| {
            r.event_metadata
                .inference_id
                .as_deref()
                .is_some_and(|i| i.starts_with("term-"))
        })
        .count();
    assert_eq!(term, 5, "records queued at SIGTERM are written");
    // the endpoint comes back after a stop (and after a crash)
    s.kill9();
    // one whose pipeline vanished meanwhile comes back as Failed, saying why
    std::fs::remove_dir_all(dir.path().join("artifacts/endpoints/fragile")).unwrap();
    let s = Server::start(dir.path(), &[]);
    let (st, _, _, body) = invoke(&s, "cap", "text/csv", None, row.as_bytes(), &[]);
    assert_eq!(st, 200, "{body}");
    let (st, _) = api(&s, "GET", "/endpoints/cap/ping", None);
    assert_eq!(st, 200);
    let (st, v) = api(&s, "GET", "/api/atelier/endpoints/fragile", None);
    assert_eq!(st, 200);
    assert_eq!(v["endpoint"]["status"], "Failed");
    assert!(
        v["endpoint"]["failure_reason"]
            .as_str()
            .unwrap()
            .contains("no pipeline file"),
        "{v}"
    );
    let (st, _, _, body) = invoke(&s, "fragile", "text/csv", None, row.as_bytes(), &[]);
    assert_eq!(st, 500);
    assert!(body.contains("not in service"), "{body}");
    let (_, list) = api(&s, "GET", "/api/atelier/endpoints", None);
    assert_eq!(list["endpoints"].as_array().unwrap().len(), 3);
    // deploying again brings it back
    deploy(&s, &m.penguins, "fragile", &[]);
    let (st, _, _, body) = invoke(&s, "fragile", "text/csv", None, row.as_bytes(), &[]);
    assert_eq!(st, 200, "{body}");
}

#[test]
fn bad_input_gets_4xx_naming_the_problem_and_overload_gets_503() {
    let m = models();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    deploy(&s, &m.adult, "adult", &["--max-concurrency", "1"]);
    let (st, body) = api(
        &s,
        "PUT",
        "/api/atelier/endpoints/adult",
        Some(json!({"max_payload_bytes": 400000})),
    );
    assert_eq!(st, 200, "{body}");
    let csv = std::fs::read_to_string(&m.adult_rows).unwrap();
    let header = csv.lines().next().unwrap();
    let good = csv.lines().nth(1).unwrap();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("text/csv", "\"unterminated,1,2".into(), 400, "values for"),
        ("text/csv", "1,2,3".into(), 400, "without a header row"),
        (
            "text/csv",
            format!(
                "{header}\n{}",
                good.replacen(|c: char| c.is_ascii_digit(), "x", 1)
            ),
            400,
            "needs a number",
        ),
        ("text/csv", format!("{header}\n1,2"), 400, "header row has"),
        (
            "application/json",
            "{\"age\": ".into(),
            400,
            "not valid JSON",
        ),
        (
            "application/json",
            "{\"age\": 30}".into(),
            400,
            "which the model needs",
        ),
        (
            "application/json",
            "{\"instances\": 3}".into(),
            400,
            "instances",
        ),
        ("application/json", "[]".into(), 400, "no records"),
        (
            "application/json",
            "{\"age\": [1]}".into(),
            400,
            "list or object",
        ),
        ("application/jsonlines", "{}\nnope".into(), 400, "line"),
        ("application/xml", "<a/>".into(), 415, "Content-Type"),
        ("text/csv", "".into(), 400, "empty"),
        ("text/csv", "x".repeat(500_000), 413, "max_payload_bytes"),
    ];
    for (ct, body, want, says) in &cases {
        let (st, _, _, text) = invoke(&s, "adult", ct, None, body.as_bytes(), &[]);
        assert_eq!(st, *want, "{ct} {:.60}: {text}", body);
        assert!(
            text.contains(says),
            "{ct} {:.60}: {text} should say '{says}'",
            body
        );
    }
    let (st, _, _, text) = invoke(
        &s,
        "adult",
        "text/csv",
        Some("image/png"),
        good.as_bytes(),
        &[],
    );
    assert_eq!(st, 406, "{text}");
    let (st, _, _, _) = invoke(&s, "nope", "text/csv", None, good.as_bytes(), &[]);
    assert_eq!(st, 404);
    // bad definitions
    for (body, says) in [
        (
            json!({"name": "x y", "model": "models:/a/1"}),
            "invalid endpoint name",
        ),
        (
            json!({"name": "x", "model": "models:/missing/1"}),
            "missing",
        ),
        (json!({"name": "x", "model": "models:/a"}), "version"),
        (json!({"name": "x", "model": "s3://b/k"}), "artifact store"),
        (json!({"name": "x", "variants": []}), "1 to 10 variants"),
        (
            json!({"name": "x", "model": "mlflow-artifacts:/nothing"}),
            "no pipeline file",
        ),
        (json!({"name": "x", "modle": "a"}), "unknown field"),
    ] {
        let (st, v) = api(&s, "POST", "/api/atelier/endpoints", Some(body.clone()));
        assert!((400..500).contains(&st), "{body}: {st} {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(says),
            "{body}: {v}"
        );
    }
    // overload: one invocation in flight at most; big payloads from 8 threads
    let big: String = std::iter::once(header.to_string())
        .chain(std::iter::repeat_n(good.to_string(), 2500))
        .collect::<Vec<_>>()
        .join("\n");
    let results: Vec<(u16, Option<String>)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    (0..6)
                        .map(|_| {
                            let (st, _, retry, _) =
                                invoke(&s, "adult", "text/csv", None, big.as_bytes(), &[]);
                            (st, retry)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let busy: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(ok + busy.len(), results.len(), "{results:?}");
    assert!(ok > 0 && !busy.is_empty(), "{ok} ok, {} busy", busy.len());
    assert!(busy.iter().all(|r| r.1.as_deref() == Some("1")));
    // still healthy, and no 5xx counted for any of this
    let (st, _, _, _) = invoke(&s, "adult", "text/csv", None, good.as_bytes(), &[]);
    assert_eq!(st, 200);
    let mut r = agent().get(&s.url("/metrics")).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(text.contains("kind=\"server\"} 0"), "{text}");
    assert!(!text.contains("atelier_endpoint_overloaded_total{endpoint=\"adult\"} 0"));
}

#[test]
fn registry_models_deploy_by_version_and_alias_and_viewers_may_invoke() {
    let m = models();
    let dir = tempfile::tempdir().unwrap();
    let (ok, token, _) = atelier(
        &[
            "token",
            "create",
            "ed",
            "--role",
            "editor",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok);
    let token = token.trim().to_string();
    let (ok, viewer, _) = atelier(
        &[
            "token",
            "create",
            "vi",
            "--role",
            "viewer",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok);
    let viewer = viewer.trim().to_string();
    let s = Server::start(dir.path(), &["--require-auth"]);
    let a = agent();
    let auth = format!("Bearer {token}");
    // upload the pipeline as a run artifact and register it
    let bytes = std::fs::read(&m.penguins).unwrap();
    let mut r = a
        .put(&s.url("/api/2.0/mlflow-artifacts/artifacts/models/penguins/pipeline.atelier"))
        .header("Authorization", &auth)
        .send(&bytes[..])
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.body_mut().read_to_string().unwrap()
    );
    let post = |path: &str, body: Value| {
        let mut r = a
            .post(&s.url(path))
            .header("Authorization", &auth)
            .send_json(&body)
            .unwrap();
        let st = r.status().as_u16();
        let v: Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null);
        assert_eq!(st, 200, "{path}: {v}");
        v
    };
    post(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "penguins"}),
    );
    post(
        "/api/2.0/mlflow/model-versions/create",
        json!({"name": "penguins", "source": "mlflow-artifacts:/models/penguins"}),
    );
    post(
        "/api/2.0/mlflow/registered-models/alias",
        json!({"name": "penguins", "alias": "champion", "version": "1"}),
    );
    let url = s.url("");
    for (model, name) in [
        ("models:/penguins/1", "p1"),
        ("models:/penguins@champion", "pc"),
    ] {
        let (ok, _, err) = atelier(
            &["deploy", model, "--name", name, "--server", &url],
            &[("ATELIER_TOKEN", &token)],
        );
        assert!(ok, "{err}");
    }
    let (ok, _, err) = atelier(
        &[
            "deploy",
            "models:/penguins/1",
            "--name",
            "v",
            "--server",
            &url,
        ],
        &[("ATELIER_TOKEN", &viewer)],
    );
    assert!(!ok && err.contains("viewer"), "{err}");
    let (ok, _, err) = atelier(
        &[
            "deploy",
            "models:/penguins/1",
            "--name",
            "v",
            "--server",
            &url,
        ],
        &[],
    );
    assert!(!ok && err.contains("ATELIER_TOKEN"), "{err}");
    let mut r = a
        .get(&s.url("/api/atelier/endpoints/pc"))
        .header("Authorization", &auth)
        .call()
        .unwrap();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let var = &v["endpoint"]["variants"][0];
    assert_eq!(var["registered_model"], "penguins");
    assert_eq!(var["version"], 1);
    assert_eq!(var["artifact_path"], "models/penguins/pipeline.atelier");
    let row = std::fs::read_to_string(&m.penguins_rows).unwrap();
    let row = row.lines().nth(1).unwrap();
    // viewers may invoke; nobody without a token
    let (st, _, _, body) = invoke(
        &s,
        "p1",
        "text/csv",
        None,
        row.as_bytes(),
        &[("Authorization", &format!("Bearer {viewer}"))],
    );
    assert_eq!(st, 200, "{body}");
    let (st, _, _, _) = invoke(&s, "p1", "text/csv", None, row.as_bytes(), &[]);
    assert_eq!(st, 401);
    // an invocation key: that endpoint's invocations and nothing else, until revoked
    let key_call = |method: &str, path: &str, bearer: &str, body: Option<Value>| {
        let mut r = match (method, body) {
            ("POST", Some(b)) => a
                .post(&s.url(path))
                .header("Authorization", bearer)
                .send_json(&b),
            ("DELETE", _) => a
                .delete(&s.url(path))
                .header("Authorization", bearer)
                .call(),
            _ => a.get(&s.url(path)).header("Authorization", bearer).call(),
        }
        .unwrap();
        let st = r.status().as_u16();
        (st, r.body_mut().read_to_string().unwrap_or_default())
    };
    let vb = format!("Bearer {viewer}");
    let (st, body) = key_call(
        "POST",
        "/api/atelier/endpoints/p1/keys",
        &vb,
        Some(json!({"name": "shop"})),
    );
    assert_eq!(st, 403, "a viewer makes no keys: {body}");
    let (st, body) = key_call(
        "POST",
        "/api/atelier/endpoints/p1/keys",
        &auth,
        Some(json!({"name": "checkout"})),
    );
    assert_eq!(st, 201, "{body}");
    let key = serde_json::from_str::<Value>(&body).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let kb = format!("Bearer {key}");
    let (st, _, _, body) = invoke(
        &s,
        "p1",
        "text/csv",
        None,
        row.as_bytes(),
        &[("Authorization", &kb)],
    );
    assert_eq!(st, 200, "{body}");
    let (st, _, _, body) = invoke(
        &s,
        "pc",
        "text/csv",
        None,
        row.as_bytes(),
        &[("Authorization", &kb)],
    );
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("invocation key of endpoint 'p1'"), "{body}");
    for path in [
        "/api/atelier/endpoints/p1",
        "/api/2.0/mlflow/experiments/search?max_results=1",
        "/endpoints/p1/ping",
    ] {
        let (st, body) = key_call("GET", path, &kb, None);
        assert_eq!(st, 403, "{path}: {body}");
    }
    let (st, body) = key_call("GET", "/api/atelier/endpoints/p1/keys", &vb, None);
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains("\"checkout\"") && !body.contains(&key),
        "{body}"
    );
    let (st, body) = key_call(
        "DELETE",
        "/api/atelier/endpoints/p1/keys/checkout",
        &auth,
        None,
    );
    assert_eq!(st, 204, "{body}");
    let (st, _, _, _) = invoke(
        &s,
        "p1",
        "text/csv",
        None,
        row.as_bytes(),
        &[("Authorization", &kb)],
    );
    assert_eq!(st, 401, "a revoked key opens nothing");
    // batch transform of a registry model runs as a job on the server
    let out = dir.path().join("batch-out");
    let (ok, _, err) = atelier(
        &[
            "batch-transform",
            "models:/penguins@champion",
            m.penguins_rows.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--server",
            &url,
        ],
        &[("ATELIER_TOKEN", &token)],
    );
    assert!(ok, "{err}");
    assert!(err.contains("100%"), "{err}");
    let want = predict_cli(&m.penguins, &m.penguins_rows, dir.path());
    assert_eq!(
        std::fs::read_to_string(out.join("penguins_rows.csv.out")).unwrap(),
        want
    );
    // with authentication on, a job may not name the server's own files
    let mut r = a
        .post(&s.url("/api/atelier/jobs"))
        .header("Authorization", &auth)
        .send_json(json!({"kind": "batch-transform", "spec": {
            "model": "models:/penguins/1", "input": "/etc", "output": "/tmp/x"}}))
        .unwrap();
    let st = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("does not read or write its own files"),
        "{body}"
    );
    // a local pipeline file with --server is uploaded first
    let out = dir.path().join("batch-out-file");
    let (ok, _, err) = atelier(
        &[
            "batch-transform",
            m.penguins.to_str().unwrap(),
            m.penguins_rows.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--server",
            &url,
        ],
        &[("ATELIER_TOKEN", &token)],
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("penguins_rows.csv.out")).unwrap(),
        want
    );
}

#[test]
fn batch_transform_predicts_files_and_reports_bad_rows_by_line() {
    let m = models();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let csv = std::fs::read_to_string(&m.adult_rows).unwrap();
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    // line 6 (the 5th data row) gets a bad age
    let bad = lines[5].split_once(',').unwrap().1.to_string();
    lines[5] = format!("old,{bad}");
    std::fs::write(input.join("a.csv"), lines.join("\n") + "\n").unwrap();
    std::fs::write(input.join("b.csv"), &csv).unwrap();
    let out = dir.path().join("out");
    let (ok, _, err) = atelier(
        &[
            "batch-transform",
            m.adult.to_str().unwrap(),
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(err.contains("line 6"), "{err}");
    assert!(
        err.contains("[##############################] 100%"),
        "{err}"
    );
    let want = predict_cli(&m.adult, &m.adult_rows, dir.path());
    assert_eq!(
        std::fs::read_to_string(out.join("b.csv.out")).unwrap(),
        want
    );
    let a = std::fs::read_to_string(out.join("a.csv.out")).unwrap();
    let (got, want): (Vec<&str>, Vec<&str>) = (a.lines().collect(), want.lines().collect());
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if i == 5 {
            assert_eq!(*g, ",,", "a failed row keeps its place with empty fields");
        } else {
            assert_eq!(g, w, "row {i}");
        }
    }
    let errors = std::fs::read_to_string(out.join("a.csv.out.errors")).unwrap();
    assert!(errors.starts_with("line,error\n6,"), "{errors}");
    assert!(errors.contains("age"), "{errors}");
    // joined with the input columns
    let out2 = dir.path().join("out2");
    let (ok, _, err) = atelier(
        &[
            "batch-transform",
            m.adult.to_str().unwrap(),
            input.join("b.csv").to_str().unwrap(),
            "--output",
            out2.to_str().unwrap(),
            "--join-input",
        ],
        &[],
    );
    assert!(ok, "{err}");
    // Parquet in, Parquet out, same predictions
    let pq_in = dir.path().join("pq");
    std::fs::create_dir_all(&pq_in).unwrap();
    let t = tabular::read_path(&m.adult_rows).unwrap();
    tabular::write_parquet(&t, &pq_in.join("rows.parquet")).unwrap();
    let out3 = dir.path().join("out3");
    let (ok, _, err) = atelier(
        &[
            "batch-transform",
            m.adult.to_str().unwrap(),
            pq_in.to_str().unwrap(),
            "--output",
            out3.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{err}");
    let p = tabular::read_path(&out3.join("rows.out.parquet")).unwrap();
    let labels = p.column("predicted_label").unwrap();
    let pred = parse_pred(&predict_cli(&m.adult, &m.adult_rows, dir.path()));
    assert_eq!(p.rows(), pred.len());
    let prob = p.column("probability_>50K").unwrap();
    for (i, (l, probs)) in pred.iter().enumerate() {
        assert_eq!(labels.str_at(i).as_deref(), Some(l.as_str()));
        assert_eq!(prob.f64_at(i), Some(probs[1]));
    }
    let joined = std::fs::read_to_string(out2.join("b.csv.out")).unwrap();
    let first = joined.lines().nth(1).unwrap();
    assert!(first.starts_with(csv.lines().nth(1).unwrap()), "{first}");
    assert!(
        joined
            .lines()
            .next()
            .unwrap()
            .ends_with("predicted_label,probability_<=50K,probability_>50K")
    );
}
