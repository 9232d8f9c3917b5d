//! The command line against a server (`--server`), with a scripted stand-in
//! for the server on a loopback port so that what the CLI prints is checked
//! for answers a real server gives only by timing: a missing file is named
//! before anything is uploaded, the problem line of `automl --server` is
//! printed once however many polls see it, and `jobs list` keeps its columns
//! aligned whatever the kinds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// A request as the stand-in saw it: method and path.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// An HTTP/1.1 server on 127.0.0.1 answering each request with
/// `answer(method, path)` → (status, JSON body), one request per connection.
struct FakeServer {
    url: String,
    seen: Seen,
}

impl FakeServer {
    fn start(answer: impl Fn(&str, &str) -> (u16, Value) + Send + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Some((method, path)) = handle(stream, &answer) {
                    log.lock().unwrap().push((method, path));
                }
            }
        });
        FakeServer { url, seen }
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Read one request (head and body, plain or chunked), answer it, close.
fn handle(
    stream: TcpStream,
    answer: &impl Fn(&str, &str) -> (u16, Value),
) -> Option<(String, String)> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().ok()?,
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0; length];
        r.read_exact(&mut body).ok()?;
    }
    let (status, body) = answer(&method, &path);
    let body = body.to_string();
    let mut w = stream;
    write!(
        w,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    Some((method, path))
}

fn atelier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(args)
        .env_remove("ATELIER_SERVER")
        .env_remove("ATELIER_TOKEN")
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .output()
        .expect("run atelier")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn automl_on_a_server_names_a_missing_file_before_uploading_anything() {
    let server = FakeServer::start(|_, _| (500, json!({"message": "not expected"})));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nosuch.csv");
    let o = atelier(&[
        "automl",
        missing.to_str().unwrap(),
        "--target",
        "y",
        "--server",
        &server.url,
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(!err.contains("uploading"), "{err}");
    assert!(
        err.contains(&format!("{}: No such file", missing.display())),
        "{err}"
    );
    // a folder is not a file either; nor is a missing validation file
    let o = atelier(&[
        "automl",
        dir.path().to_str().unwrap(),
        "--target",
        "y",
        "--server",
        &server.url,
    ]);
    let err = stderr(&o);
    assert!(!o.status.success() && !err.contains("uploading"), "{err}");
    assert!(err.contains("not a file"), "{err}");
    let data = dir.path().join("data.csv");
    std::fs::write(&data, "a,y\n1,2\n").unwrap();
    let o = atelier(&[
        "automl",
        data.to_str().unwrap(),
        "--target",
        "y",
        "--validation",
        missing.to_str().unwrap(),
        "--server",
        &server.url,
    ]);
    let err = stderr(&o);
    assert!(!o.status.success() && !err.contains("uploading"), "{err}");
    assert!(err.contains("nosuch.csv"), "{err}");
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}

#[test]
fn automl_on_a_server_prints_the_problem_once() {
    let polls = Arc::new(Mutex::new(0usize));
    let server = FakeServer::start(move |method, path| match (method, path) {
        ("PUT", p) if p.starts_with("/api/atelier/datasets/") => (201, json!({"name": "data.csv"})),
        ("POST", "/api/atelier/automl") => (202, json!({"job": {"id": "j1", "status": "queued"}})),
        ("GET", "/api/atelier/jobs/j1") => {
            let mut n = polls.lock().unwrap();
            *n += 1;
            let progress = json!({
                "problem": "multiclass",
                "reason": "'y' holds 3 labels → multiclass",
                "metric": "accuracy",
                "validation": "5-fold cross-validation on 30 rows",
                "budget_s": 10.0,
                "elapsed_s": *n as f64 * 0.5,
                "candidates": [],
                "phase": "searching",
            });
            // several polls see the problem before any candidate
            if *n < 4 {
                (
                    200,
                    json!({"job": {"id": "j1", "status": "running", "progress": progress}}),
                )
            } else {
                (
                    200,
                    json!({"job": {"id": "j1", "status": "succeeded", "progress": progress,
                    "result": {"metric": "accuracy", "score": 0.9, "algorithm": "gbm",
                        "model_name": "data-y", "model_version": "1",
                        "leaderboard": [{"rank": 1, "name": "gbm-default", "score": 0.9,
                            "fit_seconds": 0.1, "run_id": "r1"}]}}}),
                )
            }
        }
        _ => (404, json!({"message": "no such route"})),
    });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    std::fs::write(&data, "a,y\n1,p\n2,q\n3,r\n").unwrap();
    let o = atelier(&[
        "automl",
        data.to_str().unwrap(),
        "--target",
        "y",
        "--server",
        &server.url,
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let polled = server
        .seen()
        .iter()
        .filter(|(_, p)| p == "/api/atelier/jobs/j1")
        .count();
    assert!(polled >= 4, "{polled} polls");
    assert_eq!(err.matches("multiclass problem").count(), 1, "{err}");
    assert!(err.contains("registered as models:/data-y/1"), "{err}");
}

#[test]
fn jobs_list_keeps_its_columns_aligned_whatever_the_kinds() {
    let jobs = json!({"jobs": [
        {"id": "0123456789abcdef0123456789abcdef", "kind": "automl", "status": "succeeded", "name": "adult.csv → income"},
        {"id": "1123456789abcdef0123456789abcdef", "kind": "monitoring-execution", "status": "running", "name": "hourly"},
        {"id": "2123456789abcdef0123456789abcdef", "kind": "batch-transform", "status": "queued", "name": "scoring"},
        {"id": "3123456789abcdef0123456789abcdef", "kind": "notebook", "status": "cancelled", "name": "analysis.ipynb"},
        {"id": "4123456789abcdef0123456789abcdef", "kind": "monitor-baseline", "status": "failed", "name": "baseline"},
    ]});
    let listed = jobs.clone();
    let server = FakeServer::start(move |_, path| {
        if path.starts_with("/api/atelier/jobs") {
            (200, listed.clone())
        } else {
            (404, json!({"message": "no such route"}))
        }
    });
    let o = atelier(&["jobs", "list", "--server", &server.url]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    let header = lines[0];
    let col = |name: &str| {
        header
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let (kind, status, name) = (col("kind"), col("status"), col("name"));
    // character columns: the names hold a non-ASCII arrow
    let at = |line: &str, n: usize| line.chars().skip(n).collect::<String>();
    for (line, j) in lines[1..].iter().zip(jobs["jobs"].as_array().unwrap()) {
        for (pos, key) in [(kind, "kind"), (status, "status"), (name, "name")] {
            let v = j[key].as_str().unwrap();
            assert!(
                at(line, pos).starts_with(v) && line.chars().nth(pos - 1) == Some(' '),
                "{key} {v:?} not at column {pos}:\n{out}"
            );
        }
    }
}
