//! End-to-end tests: the real binary, driven over HTTP from outside.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Every metric point the API acknowledged (HTTP 200) is there after the
/// server was SIGKILLed repeatedly in the middle of concurrent logging.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let a = agent();
    let run = create_run(&a, &server, "durability");
    let port = Arc::new(AtomicU16::new(server.port));
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<HashMap<String, BTreeSet<i64>>>> = Arc::default();

    let mut writers = Vec::new();
    for t in 0..4 {
        let (port, stop, acked, run) = (port.clone(), stop.clone(), acked.clone(), run.clone());
        writers.push(std::thread::spawn(move || {
            let a = agent();
            let mut step = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let url = format!("http://127.0.0.1:{}", port.load(Ordering::Relaxed));
                let ok = if t == 3 {
                    // batches of 50 points: all or nothing
                    let metrics: Vec<Value> = (0..50)
                        .map(|i| json!({"key": "batch", "value": (step + i) as f64, "timestamp": 1, "step": step + i}))
                        .collect();
                    matches!(post(&a, &format!("{url}/api/2.0/mlflow/runs/log-batch"), &json!({"run_id": run, "metrics": metrics})), Ok((200, _)))
                } else {
                    let body = json!({"run_id": run, "key": format!("m{t}"), "value": step as f64, "timestamp": 1, "step": step});
                    matches!(post(&a, &format!("{url}/api/2.0/mlflow/runs/log-metric"), &body), Ok((200, _)))
                };
                if ok {
                    let mut g = acked.lock().unwrap();
                    let key = if t == 3 { "batch".to_string() } else { format!("m{t}") };
                    let set = g.entry(key).or_default();
                    if t == 3 {
                        set.extend(step..step + 50);
                        step += 50;
                    } else {
                        set.insert(step);
                        step += 1;
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }));
    }
    for round in 0..5 {
        std::thread::sleep(Duration::from_millis(400 + 100 * round));
        server.kill9();
        server = Server::try_start(dir.path(), &[], 0).expect("restart after kill -9");
        port.store(server.port, Ordering::Relaxed);
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    server.kill9();
    let server = Server::start(dir.path(), &[]);
    let acked = acked.lock().unwrap();
    let mut total = 0;
    for (key, steps) in acked.iter() {
        let mut stored = BTreeSet::new();
        let mut token = String::new();
        loop {
            let (c, h) = get(&a, &server.url(&format!("/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key={key}&max_results=25000&page_token={token}"))).unwrap();
            assert_eq!(c, 200, "{h}");
            stored.extend(
                h["metrics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m["step"].as_i64()),
            );
            match h["next_page_token"].as_str() {
                Some(t) => {
                    token = t
                        .replace('=', "%3D")
                        .replace('+', "%2B")
                        .replace('/', "%2F")
                }
                None => break,
            }
        }
        let lost: Vec<_> = steps.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "{key}: {} acknowledged points lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
        total += steps.len();
    }
    assert!(
        total > 200,
        "too little was logged to prove anything: {total} points"
    );
}

/// A request with a one-byte body for PUT (an upload), none otherwise.
fn request(method: &str, path: &str) -> Vec<u8> {
    let body = if method == "PUT" { "x" } else { "" };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Every traversal form gets a 400 and touches nothing outside the root.
#[test]
fn artifact_paths_cannot_escape_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let prefix = "/api/2.0/mlflow-artifacts/artifacts";
    let attacks = [
        "/../secret.txt",
        "/1/../../secret.txt",
        "/1/%2e%2e/%2e%2e/secret.txt",
        "/1/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/1/%252e%252e/%252e%252e/secret.txt",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "/1/..%5c..%5csecret.txt",
        "/1/..\\..\\secret.txt",
        "/1/./x.txt",
        "/1/%00/x",
    ];
    for attack in attacks {
        for method in ["GET", "PUT", "DELETE"] {
            let (code, body) = raw(server.port, &request(method, &format!("{prefix}{attack}")));
            assert_eq!(code, 400, "{method} {attack} answered {code}: {body}");
            assert!(
                body.contains("INVALID_PARAMETER_VALUE"),
                "{method} {attack}: {body}"
            );
        }
    }
    // listing with a traversal in the query
    let (code, _) = raw(
        server.port,
        &request("GET", &format!("{prefix}?path=..%2F..")),
    );
    assert_eq!(code, 400);
    // a symlink planted inside the artifact store that points outside
    let art = dir.path().join("artifacts/1");
    std::fs::create_dir_all(&art).unwrap();
    std::os::unix::fs::symlink(dir.path(), art.join("link")).unwrap();
    for method in ["GET", "PUT", "DELETE"] {
        let (code, body) = raw(
            server.port,
            &request(method, &format!("{prefix}/1/link/secret.txt")),
        );
        assert_eq!(
            code, 400,
            "{method} through a symlink answered {code}: {body}"
        );
    }
    let (code, _) = raw(
        server.port,
        &request("GET", &format!("{prefix}?path=1/link")),
    );
    assert_eq!(code, 400);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
    // and a normal path still works
    let (code, _) = raw(server.port, &request("PUT", &format!("{prefix}/1/ok.txt")));
    assert_eq!(code, 200);
}

/// Client mistakes get a 4xx in MLflow's error shape, never a 5xx (which
/// the MLflow client would retry for minutes), and the server stays up.
#[test]
fn bad_requests_get_4xx_not_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let a = agent();
    let run = create_run(&a, &server, "bad-input");
    let api = |p: &str| server.url(&format!("/api/2.0/mlflow/{p}"));
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "runs/log-metric",
            json!({"run_id": run, "key": "m", "value": "notanumber", "timestamp": 1}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/log-metric",
            json!({"run_id": run, "key": "m", "value": 1.0}),
            400,
            "timestamp",
        ),
        (
            "runs/log-metric",
            json!({"run_id": run, "key": "bad key!", "value": 1.0, "timestamp": 1}),
            400,
            "Invalid metric name",
        ),
        (
            "runs/log-metric",
            json!({"run_id": "0000", "key": "m", "value": 1.0, "timestamp": 1}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "runs/log-metric",
            json!({"run_id": run, "key": "m", "value": {"x": 1}, "timestamp": 1}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/log-parameter",
            json!({"run_id": run, "key": "p", "value": "1"}),
            200,
            "",
        ),
        (
            "runs/log-parameter",
            json!({"run_id": run, "key": "p", "value": "2"}),
            400,
            "Changing param values is not allowed",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["1"], "max_results": "abc"}),
            400,
            "max_results",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["1"], "max_results": 50001}),
            400,
            "max_results",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["1"], "filter": "metrics.x <<< 1"}),
            400,
            "Invalid comparator",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["1"], "filter": "metrics.a < 1 or metrics.b > 2"}),
            400,
            "AND",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["1"], "page_token": "!!!"}),
            400,
            "page token",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["1"], "order_by": ["attributes.nope DESC"]}),
            400,
            "order_by",
        ),
        (
            "experiments/create",
            json!({"name": "bad-input"}),
            400,
            "RESOURCE_ALREADY_EXISTS",
        ),
        (
            "experiments/create",
            json!({"name": ""}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("experiments/create", json!({"name": 42}), 400, "name"),
        (
            "runs/search",
            json!({"experiment_ids": "0"}),
            400,
            "experiment_ids",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "filter": "metrics.m < '0.5'"}),
            400,
            "numeric",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "filter": "params.p IN ('1')"}),
            400,
            "IN",
        ),
        ("experiments/create", json!({"name": ["a"]}), 400, "name"),
        ("experiments/get-by-name", json!({}), 405, ""),
        (
            "runs/create",
            json!({"experiment_id": "999"}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "runs/update",
            json!({"run_id": run, "status": "WEIRD"}),
            400,
            "status",
        ),
        ("registered-models/create", json!({}), 400, "name"),
        (
            "model-versions/create",
            json!({"name": "nope", "source": "x"}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
    ];
    for (path, body, want, contains) in cases {
        let (code, resp) = post(&a, &api(path), &body).unwrap();
        assert_eq!(code, want, "{path} {body} -> {code} {resp}");
        if !contains.is_empty() {
            assert!(resp.to_string().contains(contains), "{path} {body}: {resp}");
            assert!(
                resp["error_code"].is_string() && resp["message"].is_string(),
                "{resp}"
            );
        }
    }
    let batch: Vec<Value> = (0..1001)
        .map(|i| json!({"key": "m", "value": 1.0, "timestamp": 1, "step": i}))
        .collect();
    let (code, resp) = post(
        &a,
        &api("runs/log-batch"),
        &json!({"run_id": run, "metrics": batch}),
    )
    .unwrap();
    assert_eq!(code, 400, "{resp}");
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000 metrics")
    );
    // raw malformed bodies
    for body in ["{not json", "[1,2]", "\"str\"", "\u{0}\u{1}garbage"] {
        let req = format!(
            "POST /api/2.0/mlflow/runs/log-metric HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (code, resp) = raw(server.port, req.as_bytes());
        assert_eq!(code, 400, "{body:?}: {resp}");
        assert!(resp.contains("MALFORMED_REQUEST"), "{resp}");
    }
    // an oversized JSON body
    let big = format!(
        "{{\"run_id\": \"{run}\", \"pad\": \"{}\"}}",
        "x".repeat(17 << 20)
    );
    let req = format!(
        "POST /api/2.0/mlflow/runs/log-batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
        big.len()
    );
    let (code, _) = raw(server.port, req.as_bytes());
    assert_eq!(code, 413);
    // unknown ids on GET endpoints
    for path in [
        "runs/get?run_id=deadbeef".to_string(),
        "experiments/get?experiment_id=12345".to_string(),
        "experiments/get?experiment_id=abc".to_string(),
        "registered-models/get?name=nope".to_string(),
        "metrics/get-history?run_id=nope&metric_key=m".to_string(),
    ] {
        let (code, resp) = get(&a, &api(&path)).unwrap();
        assert_eq!(code, 404, "{path}: {resp}");
        assert_eq!(resp["error_code"], "RESOURCE_DOES_NOT_EXIST", "{path}");
    }
    let (code, _) = get(&a, &server.url("/api/2.0/mlflow/no/such/endpoint")).unwrap();
    assert_eq!(code, 404);
    // still healthy, and over-long param values are truncated as MLflow 3.x does
    let (code, _) = post(
        &a,
        &api("runs/log-parameter"),
        &json!({"run_id": run, "key": "long", "value": "v".repeat(10_000)}),
    )
    .unwrap();
    assert_eq!(code, 200);
    let (_, r) = get(&a, &api(&format!("runs/get?run_id={run}"))).unwrap();
    let long = r["run"]["data"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "long")
        .unwrap();
    assert_eq!(long["value"].as_str().unwrap().len(), 6000);
}

#[test]
fn tokens_are_required_off_loopback_and_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    // no token exists: refuses to bind a non-loopback address
    let err = Server::try_start(dir.path(), &["--host", "0.0.0.0"], 0)
        .err()
        .expect("must refuse");
    assert!(err.contains("atelier token create"), "{err}");
    let err = Server::try_start(dir.path(), &["--require-auth"], 0)
        .err()
        .expect("must refuse");
    assert!(err.contains("without authentication"), "{err}");
    // create tokens with the CLI
    let token = |name: &str, role: &str| token(dir.path(), name, role);
    let admin = token("admin", "admin");
    let viewer = token("viewer", "viewer");
    let db = std::fs::read(dir.path().join("metadata.db")).unwrap();
    assert!(
        !db.windows(admin.len()).any(|w| w == admin.as_bytes()),
        "token stored in clear"
    );
    let server = Server::start(dir.path(), &["--require-auth"]);
    let a = agent();
    let url = server.url("/api/2.0/mlflow/experiments/search");
    let call = |auth: Option<&str>| {
        let mut r = a.post(&url);
        if let Some(t) = auth {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = r.send_json(json!({"max_results": 10})).unwrap();
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    let (c, body) = call(None);
    assert_eq!(c, 401);
    assert!(body.contains("UNAUTHENTICATED"), "{body}");
    assert_eq!(call(Some("atl_wrong")).0, 401);
    assert_eq!(call(Some(&admin)).0, 200);
    assert_eq!(call(Some(&viewer)).0, 200, "viewers may search");
    // viewers cannot write
    let mut r = a
        .post(&server.url("/api/2.0/mlflow/experiments/create"))
        .header("Authorization", &format!("Bearer {viewer}"))
        .send_json(json!({"name": "x"}))
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "{}",
        r.body_mut().read_to_string().unwrap_or_default()
    );
    // health stays public; Studio pages redirect to the login form
    assert_eq!(
        a.get(&server.url("/health"))
            .call()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let noredirect: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let r = noredirect.get(&server.url("/experiments")).call().unwrap();
    assert_eq!(r.status().as_u16(), 302);
    // the login form sets a cookie that opens the Studio
    let r = noredirect
        .post(&server.url("/login"))
        .content_type("application/x-www-form-urlencoded")
        .send(format!("token={admin}"))
        .unwrap();
    assert!(matches!(r.status().as_u16(), 302 | 303), "{}", r.status());
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = noredirect
        .get(&server.url("/studio/api/events"))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = noredirect
        .post(&server.url("/login"))
        .content_type("application/x-www-form-urlencoded")
        .send("token=nope")
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn health_version_and_studio_shell() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let a = agent();
    let mut r = a.get(&server.url("/health")).call().unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "OK");
    let (c, info) = get(&a, &server.url("/api/3.0/mlflow/server-info")).unwrap();
    assert_eq!(c, 200);
    assert_eq!(info["multipart_uploads_enabled"], false);
    let mut r = a.get(&server.url("/")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let html = r.body_mut().read_to_string().unwrap();
    assert!(html.contains("<html") || html.contains("<!DOCTYPE") || html.contains("<!doctype"));
    // the default experiment exists, as in MLflow
    let (_, e) = get(
        &a,
        &server.url("/api/2.0/mlflow/experiments/get?experiment_id=0"),
    )
    .unwrap();
    assert_eq!(e["experiment"]["name"], "Default");
}

/// A PostgreSQL that cannot be reached (or a URL that is not PostgreSQL's)
/// stops the server at start-up with the setting and the reason, and the
/// password in the URL is never printed.
#[test]
fn a_database_that_cannot_be_used_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // a port nothing listens on: bind one, note it, let it go
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://atelier:hunter2@127.0.0.1:{port}/atelier");
    let err = Server::try_start(dir.path(), &["--database-url", &url], 0)
        .err()
        .expect("must refuse");
    assert!(err.contains("--database-url"), "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    let err = Server::try_start(dir.path(), &["--database-url", "mysql://db/atelier"], 0)
        .err()
        .expect("must refuse");
    assert!(err.contains("must be a PostgreSQL URL"), "{err}");
}
