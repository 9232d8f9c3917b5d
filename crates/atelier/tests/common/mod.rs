//! A real `atelier serve` process on a loopback port, and small HTTP helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::try_start(data_dir, extra, 0).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Start on `port` (0 = any free port); returns the error output if the
    /// process exits instead of becoming ready.
    pub fn try_start(data_dir: &Path, extra: &[&str], port: u16) -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atelier"))
            .arg("serve")
            .args(["--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("ATELIER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("Studio at http://") => {
                let port = line
                    .split("Studio at http://")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .and_then(|hp| hp.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| format!("no port in {line:?}"))?;
                // keep draining stdout so the server never blocks on it
                std::thread::spawn(move || for _ in lines {});
                Ok(Server {
                    child,
                    port,
                    data_dir: data_dir.to_path_buf(),
                })
            }
            _ => {
                let _ = child.wait();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                Err(err)
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// (status, parsed JSON body or Null)
pub fn post(a: &ureq::Agent, url: &str, body: &Value) -> Result<(u16, Value), String> {
    let mut r = a.post(url).send_json(body).map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

pub fn put(a: &ureq::Agent, url: &str, body: &Value) -> Result<(u16, Value), String> {
    let mut r = a.put(url).send_json(body).map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

pub fn get(a: &ureq::Agent, url: &str) -> Result<(u16, Value), String> {
    let mut r = a.get(url).call().map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Send bytes as-is (no client-side path normalisation) and return the
/// status code and body. The request is written from another thread while
/// the answer is read: a server that refuses a large body answers before
/// reading it, and its answer must be read before the connection resets.
pub fn raw(port: u16, request: &[u8]) -> (u16, String) {
    let (status, _, body) = exchange(port, request);
    (status, body)
}

/// [`raw`], with the answer's head too (lower-cased): (status, head, body).
pub fn exchange(port: u16, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut w = s.try_clone().expect("clone the socket");
    let request = request.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&request);
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

pub fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (code, _) = raw(
            port,
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        );
        if code == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on {port} never became healthy");
}

pub fn create_run(a: &ureq::Agent, s: &Server, experiment: &str) -> String {
    let (c, e) = post(
        a,
        &s.url("/api/2.0/mlflow/experiments/create"),
        &serde_json::json!({"name": experiment}),
    )
    .unwrap();
    assert_eq!(c, 200, "{e}");
    let exp = e["experiment_id"].as_str().unwrap().to_string();
    let (c, r) = post(
        a,
        &s.url("/api/2.0/mlflow/runs/create"),
        &serde_json::json!({"experiment_id": exp}),
    )
    .unwrap();
    assert_eq!(c, 200, "{r}");
    r["run"]["info"]["run_id"].as_str().unwrap().to_string()
}

/// A new API token from `atelier token create` (printed once).
pub fn token(dir: &Path, name: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["token", "create", name, "--role", role, "--data-dir"])
        .arg(dir)
        .output()
        .expect("run atelier token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A webhook receiver on loopback: the JSON bodies it accepted. With
/// `fail_first`, the first delivery gets a 500 (and is not kept).
pub fn webhook_receiver(fail_first: bool) -> (String, Arc<Mutex<Vec<Value>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in l.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            n += 1;
            let status = if fail_first && n == 1 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            if !fail_first || n > 1 {
                g.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            }
        }
    });
    (url, got)
}

/// The repository's `datasets/` folder: the benchmark CSVs and `anchors/automl.json`.
pub fn datasets() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    assert!(
        p.join("anchors/automl.json").is_file(),
        "expected the repository's datasets/ at {}",
        p.display()
    );
    p
}

/// One file of the repository's `datasets/` (`"penguins.csv"`).
pub fn dataset(file: &str) -> PathBuf {
    let p = datasets().join(file);
    assert!(p.is_file(), "dataset missing: {}", p.display());
    p
}

/// The Ray cluster the Ray tests run on (`ATELIER_RAY_ADDRESS`, which
/// `cargo xtask test` sets); without it, `None` and a line on stderr saying
/// that `test` was skipped.
pub fn ray_address(test: &str) -> Option<String> {
    match std::env::var("ATELIER_RAY_ADDRESS") {
        Ok(a) if !a.trim().is_empty() => Some(a.trim().trim_end_matches('/').to_string()),
        _ => {
            // straight to stderr: the harness does not capture this
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: ATELIER_RAY_ADDRESS is not set (start a Ray cluster with `cargo xtask ray start` and export the address it prints; `cargo xtask test` does both)"
            );
            None
        }
    }
}
