//! The server's log as a file: plain text when stderr is not a terminal (no
//! ANSI colour codes), and log fields in words (`status=succeeded`, not the
//! Debug form `status=Some(Succeeded)`), in the server's log and in a job's
//! supervisor.log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `atelier serve` on a free loopback port with its stderr in `log`.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(data_dir: &Path, log: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atelier"))
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .env("ATELIER_LOG", "info")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start atelier serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().and_then(Result::ok).unwrap_or_default();
        let url = line
            .split("Studio at ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "not ready: {line:?}\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            });
        std::thread::spawn(move || for _ in lines {});
        Serve { child, url }
    }

    /// SIGTERM (a graceful stop), then wait for the process to end.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn body(mut r: ureq::http::Response<ureq::Body>) -> Value {
    serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or_default()
}

/// Every `supervisor.log` below `dir`.
fn supervisor_logs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            supervisor_logs(&p, out);
        } else if p.file_name().is_some_and(|n| n == "supervisor.log") {
            out.push(p);
        }
    }
}

#[test]
fn a_server_logging_to_a_file_writes_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let mut s = Serve::start(&data, &log);
    let a = agent();
    let r = a
        .post(&format!("{}/api/atelier/jobs", s.url))
        .send_json(json!({"kind": "processing", "spec": {"command": ["sh", "-c", "echo hi"], "experiment": "log"}}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = body(r)["job"]["id"].as_str().unwrap().to_string();
    let t = Instant::now();
    let job = loop {
        let j = body(
            a.get(&format!("{}/api/atelier/jobs/{id}", s.url))
                .call()
                .unwrap(),
        )["job"]
            .clone();
        if ["succeeded", "failed", "cancelled"].contains(&j["status"].as_str().unwrap_or("")) {
            break j;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "job did not end: {j}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["status"], "succeeded", "{job}");
    s.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("\x1b["),
        "ANSI codes in the log file:\n{text:?}"
    );
    let ended = text
        .lines()
        .find(|l| l.contains("job ended") && l.contains(&id))
        .unwrap_or_else(|| panic!("no 'job ended' line:\n{text}"));
    assert!(ended.contains("status=succeeded"), "{ended}");
    assert!(!text.contains("Some("), "Debug forms in the log:\n{text}");
    let mut sup = Vec::new();
    supervisor_logs(&data, &mut sup);
    assert!(
        !sup.is_empty(),
        "no supervisor.log under {}",
        data.display()
    );
    for p in sup {
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(
            !t.contains("\x1b[") && !t.contains("Some("),
            "{}:\n{t}",
            p.display()
        );
        assert!(t.contains("code=0"), "{}:\n{t}", p.display());
    }
}
