//! `cargo xtask load-replicas [--clients 32] [--seconds 60] [--quick]`: two
//! `atelier serve` replicas on one private PostgreSQL and one SigV4-checking
//! S3 server, loaded by concurrent clients while one replica is killed with
//! `kill -9` and restarted (issue 18, "Reliability").
//!
//! Clients (threads, each with its own keep-alive connections) alternate
//! between replica A and B: most log metrics to their own run (MLflow
//! `runs/log-batch` and `runs/log-metric`) and keep a ledger of every point
//! the server acknowledged with 200; some submit `processing` jobs whose
//! command appends `<job id> start` and `<job id> end` to a ledger file; some
//! invoke an endpoint deployed before the load (with data capture on, so
//! both replicas write to the bucket). A third into the load, the replica
//! running most jobs is killed with SIGKILL and restarted on the same port
//! and settings a few seconds later.
//!
//! Afterwards: every acknowledged metric point is read back through the API;
//! every acknowledged job reached a terminal state, ran its command exactly
//! once (one `start` line) — a killed replica's job is re-attached to by the
//! survivor (its command runs under its own supervisor), or, when no command
//! had started, retried (attempt 2), started again by the adopter or failed
//! (naming the lost worker, or saying the command never started), by the
//! job's rule. A job that failed although its command had started is a
//! violation: its handle is recorded before the command starts, so the
//! survivor must follow it, not fail it; every failed request was a connection error to the killed
//! replica while it was down or a retryable status (429, 502, 503, 504) —
//! never a 500, another 4xx or a request without an answer within the
//! timeout. Prints a summary table and fails on any violation.
//!
//! `--quick` (fewer clients, 25 s) is what `cargo xtask test` runs.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bench_tracking::{Http, Server};
use crate::common::{
    SIGKILL, free_port, kill, kill_groups_on_signal, root, run_checked, target_dir,
};
use crate::json::{Json, json_str};

type R<T = ()> = Result<T, String>;

/// A request without a complete answer within this long is a hang.
const TIMEOUT: Duration = Duration::from_secs(30);
const S3_KEY: &str = "loadtestkey";
const S3_SECRET: &str = "loadtestsecret-0123456789";
const BUCKET: &str = "atelier-load";
const ENDPOINT: &str = "load";
/// Statuses a client may retry.
const RETRYABLE: [u16; 4] = [429, 502, 503, 504];
/// Group slots (common::GROUPS) of the processes started here.
const SLOT_S3: usize = 4;
const SLOT_REPLICA: [usize; 2] = [5, 6];
const SLOT_PG: usize = 7;

struct Opts {
    clients: usize,
    seconds: u64,
    quick: bool,
    skip_build: bool,
    keep: bool,
}

const USAGE: &str =
    "usage: cargo xtask load-replicas [--clients N] [--seconds S] [--quick] [--skip-build] [--keep]

  two replicas on one PostgreSQL and one S3 server, N concurrent clients (default 32) for S
  seconds (default 60), one replica killed with kill -9 and restarted mid-load; fails on a lost
  acknowledged write, a job lost, run twice or failed after its command started, a non-retryable
  error or a hang
  --quick        8 clients for 25 s (what `cargo xtask test` runs)
  --skip-build   use target/debug/atelier and the s3_server example as they are
  --keep         keep the data folder and logs (under target/load-replicas/) even on success";

fn parse_args(args: &[String]) -> R<Opts> {
    let mut o = Opts {
        clients: 32,
        seconds: 60,
        quick: false,
        skip_build: false,
        keep: false,
    };
    let mut clients = None;
    let mut seconds = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> R<u64> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{what} needs a positive number\n\n{USAGE}"))
        };
        match a.as_str() {
            "--clients" => clients = Some(num("--clients")? as usize),
            "--seconds" => seconds = Some(num("--seconds")?),
            "--quick" => o.quick = true,
            "--skip-build" => o.skip_build = true,
            "--keep" => o.keep = true,
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown option {a}\n\n{USAGE}")),
        }
    }
    if o.quick {
        o.clients = 8;
        o.seconds = 25;
    }
    o.clients = clients.unwrap_or(o.clients);
    o.seconds = seconds.unwrap_or(o.seconds);
    if o.clients < 3 {
        return Err(format!(
            "--clients must be at least 3 (loggers, a job client, an endpoint client)\n\n{USAGE}"
        ));
    }
    Ok(o)
}

// ---------------------------------------------------------------- the S3 server

struct S3Server {
    child: Child,
    stdin: Option<ChildStdin>,
    endpoint: String,
}

impl S3Server {
    fn start(bin: &Path, root: &Path, log: &Path) -> R<S3Server> {
        use std::os::unix::process::CommandExt;
        let err = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new(bin)
            .arg(root)
            .args([S3_KEY, S3_SECRET, BUCKET])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        crate::common::lead_group(SLOT_S3, child.id() as i32);
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let mut s = S3Server {
            child,
            stdin,
            endpoint: String::new(),
        };
        match line.trim().strip_prefix("listening on ") {
            Some(url) if url.starts_with("http://127.0.0.1:") => {
                s.endpoint = url.to_string();
                Ok(s)
            }
            _ => Err(format!(
                "the S3 server did not say where it listens (said {:?}); see {}",
                line.trim(),
                log.display()
            )),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // it exits when its standard input closes
        drop(self.stdin.take());
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                crate::common::forget_group(SLOT_S3);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        crate::common::forget_group(SLOT_S3);
    }
}

/// The cluster, its group slot forgotten before its guard stops it.
struct PgGuard(crate::postgres::PgCluster);

impl Drop for PgGuard {
    fn drop(&mut self) {
        crate::common::forget_group(SLOT_PG);
    }
}

// ---------------------------------------------------------------- replicas

struct Setup {
    bin: PathBuf,
    data_dir: PathBuf,
    db_url: String,
    s3_endpoint: String,
    logs: PathBuf,
}

const NAMES: [&str; 2] = ["replica A", "replica B"];

fn replica_command(s: &Setup, port: u16) -> Command {
    let mut cmd = Command::new(&s.bin);
    // only this run's settings: nothing from the caller's ATELIER_*/AWS_* variables
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("ATELIER_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("serve")
        .args(["--port", &port.to_string(), "--data-dir"])
        .arg(&s.data_dir)
        .args(["--database-url", &s.db_url])
        .args(["--artifacts", &format!("s3://{BUCKET}/atelier")])
        .args(["--s3-endpoint", &s.s3_endpoint, "--s3-region", "us-east-1"])
        .args(["--job-workers", "4", "--job-lease-seconds", "5"])
        .env("AWS_ACCESS_KEY_ID", S3_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        .env("RUST_LOG", "warn");
    cmd
}

fn start_replica(s: &Setup, i: usize, port: u16, life: usize) -> R<Server> {
    let log = s.logs.join(format!("replica-{}-{life}.log", ["a", "b"][i]));
    let (mut srv, t0) = Server::spawn(
        NAMES[i],
        SLOT_REPLICA[i],
        replica_command(s, port),
        port,
        log,
    )?;
    srv.wait_healthy(t0, Duration::from_secs(120))?;
    Ok(srv)
}

// ---------------------------------------------------------------- what clients record

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    CreateRun,
    LogBatch,
    LogMetric,
    SubmitJob,
    Invoke,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::CreateRun => "runs/create",
            Kind::LogBatch => "runs/log-batch",
            Kind::LogMetric => "runs/log-metric",
            Kind::SubmitJob => "submit job",
            Kind::Invoke => "invoke endpoint",
        }
    }
}

enum Failure {
    Status(u16, String),
    Connection(String),
    Hang(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s, body) => write!(f, "status {s}, body {body}"),
            Failure::Connection(e) => write!(f, "connection error: {e}"),
            Failure::Hang(e) => write!(f, "hang: {e}"),
        }
    }
}

struct Failed {
    kind: Kind,
    replica: usize,
    path: String,
    start: Instant,
    end: Instant,
    what: Failure,
}

/// A client's record: latencies of answered requests, failures, and what
/// was acknowledged.
#[derive(Default)]
struct Record {
    lat: HashMap<Kind, Vec<f64>>,
    requests: HashMap<Kind, u64>,
    failed: Vec<Failed>,
    /// Logger: its run and the acknowledged points (key, step, value).
    run: Option<String>,
    points: Vec<(String, i64, f64)>,
    /// Job client: the acknowledged job ids and the replica each went to.
    jobs: Vec<(String, usize)>,
}

struct Shared {
    ports: [u16; 2],
    stop: AtomicBool,
    /// Acknowledged jobs so far, for picking the replica to kill.
    jobs: Mutex<Vec<String>>,
}

/// One POST of `body` (`(content type, bytes)`); `Some(answer)` when the status
/// is `ok`, else the failure is recorded.
fn call(
    http: &mut Http,
    rec: &mut Record,
    kind: Kind,
    replica: usize,
    path: &str,
    (ctype, body): (&str, &[u8]),
    ok: u16,
) -> Option<String> {
    *rec.requests.entry(kind).or_default() += 1;
    let start = Instant::now();
    let r = http.post_bytes(
        path,
        &[("Content-Type", ctype), ("Accept", "application/json")],
        body,
    );
    let end = Instant::now();
    let took = end - start;
    let what = match r {
        Ok(resp) if resp.status == ok && took <= TIMEOUT => {
            rec.lat.entry(kind).or_default().push(took.as_secs_f64());
            return Some(resp.body);
        }
        Ok(resp) if took > TIMEOUT => Failure::Hang(format!(
            "answered {} only after {:.1} s",
            resp.status,
            took.as_secs_f64()
        )),
        Ok(resp) => {
            rec.lat.entry(kind).or_default().push(took.as_secs_f64());
            Failure::Status(resp.status, resp.body.chars().take(400).collect())
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Failure::Hang(format!("no answer within {} s: {e}", TIMEOUT.as_secs()))
        }
        Err(e) => Failure::Connection(e.to_string()),
    };
    // as a client would: back off a little before trying again
    let pause = matches!(what, Failure::Connection(_) | Failure::Status(..));
    rec.failed.push(Failed {
        kind,
        replica,
        path: path.to_string(),
        start,
        end,
        what,
    });
    if pause {
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

const BATCH_KEYS: [&str; 5] = ["m0", "m1", "m2", "m3", "m4"];

fn metric_value(client: usize, step: i64, k: usize) -> f64 {
    client as f64 * 1e6 + step as f64 + k as f64 * 0.125
}

fn logger(sh: &Shared, client: usize, exp: &str) -> Record {
    let mut rec = Record::default();
    let mut http = [
        Http::new(sh.ports[0], TIMEOUT),
        Http::new(sh.ports[1], TIMEOUT),
    ];
    // its run, created through whichever replica answers
    let body = format!(
        r#"{{"experiment_id":"{exp}","run_name":"load-{client}","start_time":{}}}"#,
        now_ms()
    );
    let mut n = client;
    let run = loop {
        if sh.stop.load(Ordering::SeqCst) {
            return rec;
        }
        let r = n % 2;
        n += 1;
        if let Some(b) = call(
            &mut http[r],
            &mut rec,
            Kind::CreateRun,
            r,
            "/api/2.0/mlflow/runs/create",
            ("application/json", body.as_bytes()),
            200,
        ) && let Some(id) = Json::parse(&b).ok().and_then(|j| {
            j.get("run")?
                .get("info")?
                .field_str("run_id")
                .map(String::from)
        }) {
            break id;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    rec.run = Some(run.clone());
    let mut step: i64 = 0;
    while !sh.stop.load(Ordering::SeqCst) {
        step += 1;
        let r = (client + step as usize) % 2;
        let ts = now_ms();
        if step % 4 == 0 {
            let v = metric_value(client, step, 7);
            let body = format!(
                r#"{{"run_id":"{run}","key":"single","value":{v},"timestamp":{ts},"step":{step}}}"#
            );
            if call(
                &mut http[r],
                &mut rec,
                Kind::LogMetric,
                r,
                "/api/2.0/mlflow/runs/log-metric",
                ("application/json", body.as_bytes()),
                200,
            )
            .is_some()
            {
                rec.points.push(("single".into(), step, v));
            }
        } else {
            let metrics: Vec<String> = BATCH_KEYS
                .iter()
                .enumerate()
                .map(|(k, key)| {
                    format!(
                        r#"{{"key":"{key}","value":{},"timestamp":{ts},"step":{step}}}"#,
                        metric_value(client, step, k)
                    )
                })
                .collect();
            let body = format!(r#"{{"run_id":"{run}","metrics":[{}]}}"#, metrics.join(","));
            if call(
                &mut http[r],
                &mut rec,
                Kind::LogBatch,
                r,
                "/api/2.0/mlflow/runs/log-batch",
                ("application/json", body.as_bytes()),
                200,
            )
            .is_some()
            {
                for (k, key) in BATCH_KEYS.iter().enumerate() {
                    rec.points
                        .push((key.to_string(), step, metric_value(client, step, k)));
                }
            }
        }
    }
    rec
}

fn job_client(sh: &Shared, client: usize, ledger: &Path) -> Record {
    let mut rec = Record::default();
    let mut http = [
        Http::new(sh.ports[0], TIMEOUT),
        Http::new(sh.ports[1], TIMEOUT),
    ];
    let l = ledger.display().to_string().replace('\'', r"'\''");
    let cmd = format!(
        "echo \"$ATELIER_JOB_ID start\" >> '{l}'; sleep 1; echo \"$ATELIER_JOB_ID end\" >> '{l}'"
    );
    let body = format!(
        r#"{{"kind":"processing","spec":{{"command":["sh","-c",{}],"experiment":"load-jobs"}}}}"#,
        json_str(&cmd)
    );
    let mut n = client;
    while !sh.stop.load(Ordering::SeqCst) {
        let r = n % 2;
        n += 1;
        if let Some(b) = call(
            &mut http[r],
            &mut rec,
            Kind::SubmitJob,
            r,
            "/api/atelier/jobs",
            ("application/json", body.as_bytes()),
            202,
        ) {
            match Json::parse(&b)
                .ok()
                .and_then(|j| j.get("job")?.field_str("id").map(String::from))
            {
                Some(id) => {
                    if let Ok(mut v) = sh.jobs.lock() {
                        v.push(id.clone());
                    }
                    rec.jobs.push((id, r));
                }
                None => rec.failed.push(Failed {
                    kind: Kind::SubmitJob,
                    replica: r,
                    path: "/api/atelier/jobs".into(),
                    start: Instant::now(),
                    end: Instant::now(),
                    what: Failure::Status(202, format!("no job id in {b}")),
                }),
            }
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    rec
}

fn invoker(sh: &Shared, client: usize, row: &str) -> Record {
    let mut rec = Record::default();
    let mut http = [
        Http::new(sh.ports[0], TIMEOUT),
        Http::new(sh.ports[1], TIMEOUT),
    ];
    let path = format!("/endpoints/{ENDPOINT}/invocations");
    let mut n = client;
    while !sh.stop.load(Ordering::SeqCst) {
        let r = n % 2;
        n += 1;
        call(
            &mut http[r],
            &mut rec,
            Kind::Invoke,
            r,
            &path,
            ("text/csv", row.as_bytes()),
            200,
        );
        // at most ~100 invocations a second per client: an invocation costs
        // far less than a logged batch, and unpaced they would starve the loggers
        std::thread::sleep(Duration::from_millis(10));
    }
    rec
}

// ---------------------------------------------------------------- set-up steps

fn build(root: &Path) -> R {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "load-replicas: cargo build -p atelier; cargo build -p artifacts --example s3_server"
    );
    run_checked(
        Command::new(&cargo)
            .current_dir(root)
            .args(["build", "--quiet", "-p", "atelier"]),
        "cargo build -p atelier",
    )?;
    run_checked(
        Command::new(&cargo).current_dir(root).args([
            "build",
            "--quiet",
            "-p",
            "artifacts",
            "--example",
            "s3_server",
        ]),
        "cargo build -p artifacts --example s3_server",
    )
}

/// A penguins model (`atelier train`) deployed through A, answering on both;
/// returns the CSV row the invokers send.
fn deploy_endpoint(s: &Setup, ports: [u16; 2]) -> R<String> {
    let data = root().join("datasets/penguins.csv");
    let model = s.data_dir.join("penguins.model");
    let out = Command::new(&s.bin)
        .arg("train")
        .arg(&data)
        .args(["--target", "species", "--param", "n_estimators=10", "-o"])
        .arg(&model)
        .output()
        .map_err(|e| format!("atelier train: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "atelier train failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let out = Command::new(&s.bin)
        .arg("deploy")
        .arg(&model)
        .args(["--name", ENDPOINT, "--server"])
        .arg(format!("http://127.0.0.1:{}", ports[0]))
        .env_remove("ATELIER_TOKEN")
        .output()
        .map_err(|e| format!("atelier deploy: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "atelier deploy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = std::fs::read_to_string(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let strip = |l: &str| {
        l.split_once(',')
            .map(|x| x.1.to_string())
            .unwrap_or_default()
    };
    let mut lines = text.lines();
    let row = format!(
        "{}\n{}\n",
        strip(lines.next().unwrap_or("")),
        strip(lines.next().unwrap_or(""))
    );
    // both replicas serve it before the load starts
    let t = Instant::now();
    for &p in &ports {
        loop {
            let r = Http::new(p, TIMEOUT).post_bytes(
                &format!("/endpoints/{ENDPOINT}/invocations"),
                &[("Content-Type", "text/csv"), ("Accept", "application/json")],
                row.as_bytes(),
            );
            match r {
                Ok(r) if r.status == 200 => break,
                _ if t.elapsed() > Duration::from_secs(90) => {
                    return Err(format!(
                        "the endpoint was not served on port {p} within 90 s: {:?}",
                        r.map(|r| (r.status, r.body))
                    ));
                }
                _ => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }
    Ok(row)
}

fn create_experiment(port: u16, name: &str) -> R<String> {
    let r = Http::new(port, TIMEOUT)
        .post(
            "/api/2.0/mlflow/experiments/create",
            &format!(r#"{{"name":{}}}"#, json_str(name)),
        )
        .map_err(|e| format!("experiments/create: {e}"))?;
    if r.status != 200 {
        return Err(format!("experiments/create: {} {}", r.status, r.body));
    }
    Json::parse(&r.body)
        .ok()
        .and_then(|j| j.field_str("experiment_id").map(String::from))
        .ok_or_else(|| format!("experiments/create: no id in {}", r.body))
}

/// The pid in a job's worker id (`host:pid:salt`), if it is running.
fn running_pid(port: u16, id: &str) -> Option<u32> {
    let r = Http::new(port, Duration::from_secs(5))
        .get(&format!("/api/atelier/jobs/{id}"))
        .ok()?;
    let j = Json::parse(&r.body).ok()?;
    let job = j.get("job")?;
    if job.field_str("status")? != "running" {
        return None;
    }
    job.field_str("worker")?.split(':').nth(1)?.parse().ok()
}

// ---------------------------------------------------------------- checks

/// Every acknowledged point of one run, read back through replica `port`.
fn check_points(port: u16, run: &str, points: &[(String, i64, f64)]) -> Vec<String> {
    let mut want: HashMap<&str, Vec<(i64, f64)>> = HashMap::new();
    for (k, s, v) in points {
        want.entry(k.as_str()).or_default().push((*s, *v));
    }
    let mut problems = Vec::new();
    let mut http = Http::new(port, TIMEOUT);
    for (key, pts) in want {
        let mut have: HashSet<(i64, u64)> = HashSet::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!(
                "/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key={key}&max_results=25000"
            );
            if let Some(t) = &token {
                path.push_str("&page_token=");
                path.push_str(&url_encode(t));
            }
            let r = match http.get(&path) {
                Ok(r) if r.status == 200 => r,
                Ok(r) => {
                    problems.push(format!("GET {path}: {} {}", r.status, r.body));
                    break;
                }
                Err(e) => {
                    problems.push(format!("GET {path}: {e}"));
                    break;
                }
            };
            let Ok(j) = Json::parse(&r.body) else {
                problems.push(format!("GET {path}: not JSON"));
                break;
            };
            for m in j.get("metrics").map(Json::arr).unwrap_or(&[]) {
                let step = m.get("step").and_then(Json::num).map_or(-1, |s| s as i64);
                let step = if m.get("step").and_then(Json::str).is_some() {
                    m.field_str("step")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(-1)
                } else {
                    step
                };
                let v = m.get("value").and_then(Json::num).unwrap_or(f64::NAN);
                have.insert((step, v.to_bits()));
            }
            token = j.field_str("next_page_token").map(String::from);
            if token.is_none() {
                break;
            }
        }
        let lost: Vec<i64> = pts
            .iter()
            .filter(|(s, v)| !have.contains(&(*s, v.to_bits())))
            .map(|(s, _)| *s)
            .collect();
        if !lost.is_empty() {
            problems.push(format!(
                "run {run}, metric {key}: {} acknowledged point(s) missing (steps {:?})",
                lost.len(),
                &lost[..lost.len().min(10)]
            ));
        }
    }
    problems
}

/// The process group of `pid`, from /proc.
fn proc_pgrp(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Default)]
struct JobOutcomes {
    once: usize,
    reattached: usize,
    retried: usize,
    /// Adopted from the killed replica, whose command had not started, and
    /// started by the adopter (same attempt), then ran once.
    restarted: usize,
    /// Failed with nothing run: reaped naming the killed worker (no handle
    /// recorded), or adopted and found never started with no attempt left.
    failed_lost_worker: usize,
    /// Re-attached by another worker although the one running it was not
    /// killed (its lease ran out while it lived).
    reattached_while_alive: Vec<String>,
    problems: Vec<String>,
}

/// Wait for every acknowledged job to end, then hold each to the rules.
fn check_jobs(
    port: u16,
    jobs: &[(String, usize)],
    ledger: &Path,
    killed_pid: u32,
    limit: Duration,
) -> JobOutcomes {
    let mut out = JobOutcomes::default();
    let mut http = Http::new(port, TIMEOUT);
    let t = Instant::now();
    let mut ended: HashMap<String, Json> = HashMap::new();
    let mut last_err = String::new();
    while ended.len() < jobs.len() && t.elapsed() < limit {
        for (id, _) in jobs {
            if ended.contains_key(id) {
                continue;
            }
            match http.get(&format!("/api/atelier/jobs/{id}")) {
                Ok(r) if r.status == 200 => {
                    if let Some(job) = Json::parse(&r.body)
                        .ok()
                        .and_then(|j| j.get("job").cloned())
                        && matches!(
                            job.field_str("status"),
                            Some("succeeded" | "failed" | "cancelled")
                        )
                    {
                        ended.insert(id.clone(), job);
                    }
                }
                Ok(r) => last_err = format!("GET job {id}: {} {}", r.status, r.body),
                Err(e) => last_err = format!("GET job {id}: {e}"),
            }
        }
        if ended.len() < jobs.len() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let text = std::fs::read_to_string(ledger).unwrap_or_default();
    let mut starts: HashMap<&str, usize> = HashMap::new();
    let mut ends: HashMap<&str, usize> = HashMap::new();
    for l in text.lines() {
        match l.trim().split_once(' ') {
            Some((id, "start")) => *starts.entry(id).or_default() += 1,
            Some((id, "end")) => *ends.entry(id).or_default() += 1,
            _ => {}
        }
    }
    for (id, _) in jobs {
        let (s, e) = (
            starts.get(id.as_str()).copied().unwrap_or(0),
            ends.get(id.as_str()).copied().unwrap_or(0),
        );
        let Some(job) = ended.get(id) else {
            out.problems.push(format!(
                "job {id} did not end within {} s after the load (ledger: {s} start, {e} end){}",
                limit.as_secs(),
                if last_err.is_empty() {
                    String::new()
                } else {
                    format!("; last error {last_err}")
                }
            ));
            continue;
        };
        classify(&mut out, id, job, (s, e), killed_pid);
    }
    out
}

/// Holds one ended job to the rules: `ledger` is its command's `start` and
/// `end` lines, `killed_pid` the killed replica's.
fn classify(out: &mut JobOutcomes, id: &str, job: &Json, ledger: (usize, usize), killed_pid: u32) {
    let (s, e) = ledger;
    let status = job.field_str("status").unwrap_or("");
    let attempt = job.get("attempt").and_then(Json::num).unwrap_or(0.0) as i64;
    let steps: Vec<&str> = job
        .get("secondary_statuses")
        .map(Json::arr)
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| e.field_str("status"))
        .collect();
    let error = job.field_str("error").unwrap_or("");
    // the adopter's words: "worker … took over from host:pid:salt"
    let adopted_from_killed = events_of(job, "Reattaching")
        .iter()
        .any(|m| m.contains(&format!(":{killed_pid}:")));
    if s > 1 || e > 1 {
        out.problems.push(format!(
            "job {id} ran its command more than once (ledger: {s} start, {e} end; status {status}, attempt {attempt}, steps {steps:?})"
        ));
        return;
    }
    match status {
        "succeeded" if s == 1 && e == 1 => {
            if attempt > 1 {
                out.retried += 1;
            } else if adopted_from_killed && steps.contains(&"Retrying") {
                // adopted, found never started, started again within its attempt
                out.restarted += 1;
            } else if steps.contains(&"Reattaching") {
                out.reattached += 1;
                // the first worker ("Starting" names it, host:pid:salt)
                let first = job
                    .get("secondary_statuses")
                    .map(Json::arr)
                    .unwrap_or(&[])
                    .iter()
                    .find(|e| e.field_str("status") == Some("Starting"))
                    .and_then(|e| e.field_str("message"))
                    .unwrap_or("");
                if !first.contains(&format!(":{killed_pid}:")) {
                    out.reattached_while_alive.push(format!(
                        "job {id} was re-attached although its first worker was not the killed one ({first:?}; steps {steps:?})"
                    ));
                }
            } else {
                out.once += 1;
            }
        }
        // a command that started has a recorded handle, which the survivor follows: failing
        // such a job (whatever the words) discards work that ran
        "failed" if s > 0 => out.problems.push(format!(
            "job {id} failed although its command had started (error {error:?}, attempt {attempt}, steps {steps:?}; ledger: {s} start, {e} end)"
        )),
        // nothing ran: the reaper's words "… stopped … (worker host:pid:salt, attempt n of
        // n)", or an adopter's that found the command never started and no attempt left
        "failed"
            if error.contains(&format!(":{killed_pid}:"))
                || (adopted_from_killed && error.starts_with(NEVER_STARTED)) =>
        {
            out.failed_lost_worker += 1;
        }
        _ => out.problems.push(format!(
            "job {id} ended {status} (attempt {attempt}, error {error:?}, steps {steps:?}; ledger: {s} start, {e} end)"
        )),
    }
}

/// How `jobs::executor::NEVER_STARTED` begins an adopter's failure of a
/// command that never started (xtask does not link the jobs crate).
const NEVER_STARTED: &str = "the command never started";

/// The messages of a job's secondary statuses named `status`.
fn events_of<'a>(job: &'a Json, status: &str) -> Vec<&'a str> {
    job.get("secondary_statuses")
        .map(Json::arr)
        .unwrap_or(&[])
        .iter()
        .filter(|e| e.field_str("status") == Some(status))
        .filter_map(|e| e.field_str("message"))
        .collect()
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The last lines of a log that look like a problem (errors, panics).
fn log_lines(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let hits: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("panic")
        })
        .collect();
    hits[hits.len().saturating_sub(8)..].join("\n")
}

// ---------------------------------------------------------------- the run

pub fn run(args: &[String]) -> R {
    let o = parse_args(args)?;
    kill_groups_on_signal();
    let root = root();
    let target = target_dir(&root);
    if !o.skip_build {
        build(&root)?;
    }
    let bin = target.join("debug/atelier");
    let s3_bin = target.join("debug/examples/s3_server");
    for b in [&bin, &s3_bin] {
        if !b.exists() {
            return Err(format!("{} is missing (drop --skip-build)", b.display()));
        }
    }
    let work = target.join(format!("load-replicas/{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let r = run_in(&o, &bin, &s3_bin, &work);
    if r.is_ok() && !o.keep {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!(
            "load-replicas: data folder and logs kept in {}",
            work.display()
        );
    }
    r
}

fn run_in(o: &Opts, bin: &Path, s3_bin: &Path, work: &Path) -> R {
    let t_setup = Instant::now();
    let pg = PgGuard(crate::postgres::start(&target_dir(&root()))?);
    // an interrupt SIGKILLs the postmaster's group too (pg_ctl made it a
    // session of its own; only then is the group not ours)
    let postmaster = std::fs::read_to_string(pg.0.data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
    if let Some(pid) = postmaster
        && proc_pgrp(pid) == Some(pid)
    {
        crate::common::lead_group(SLOT_PG, pid as i32);
    }
    let s3_root = work.join("s3");
    std::fs::create_dir_all(&s3_root).map_err(|e| e.to_string())?;
    let s3 = S3Server::start(s3_bin, &s3_root, &work.join("s3_server.log"))?;
    let data_dir = work.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
    let setup = Setup {
        bin: bin.to_path_buf(),
        data_dir,
        db_url: pg.0.url.clone(),
        s3_endpoint: s3.endpoint.clone(),
        logs: work.to_path_buf(),
    };
    let ports = [free_port()?, free_port()?];
    // A first (it migrates the database), then B
    let mut replicas: [Option<Server>; 2] = [None, None];
    replicas[0] = Some(start_replica(&setup, 0, ports[0], 1)?);
    replicas[1] = Some(start_replica(&setup, 1, ports[1], 1)?);
    let row = deploy_endpoint(&setup, ports)?;
    let exp = create_experiment(ports[0], "load-replicas")?;
    let ledger = work.join("jobs-ledger.txt");
    eprintln!(
        "load-replicas: PostgreSQL, the S3 server at {}, replicas on ports {} and {} ready in {:.1} s; {} clients for {} s",
        s3.endpoint,
        ports[0],
        ports[1],
        t_setup.elapsed().as_secs_f64(),
        o.clients,
        o.seconds
    );

    let sh = Arc::new(Shared {
        ports,
        stop: AtomicBool::new(false),
        jobs: Mutex::new(Vec::new()),
    });
    // one in eight clients submits jobs, one in eight invokes the endpoint (at least one each)
    let n_jobs = (o.clients / 8).max(1);
    let n_invoke = (o.clients / 8).max(1);
    let load_start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..o.clients {
        let sh = Arc::clone(&sh);
        let (exp, row, ledger) = (exp.clone(), row.clone(), ledger.clone());
        handles.push(std::thread::spawn(move || {
            if c < n_jobs {
                job_client(&sh, c, &ledger)
            } else if c < n_jobs + n_invoke {
                invoker(&sh, c, &row)
            } else {
                logger(&sh, c, &exp)
            }
        }));
    }

    // a third into the load: kill the replica running most jobs, restart it
    let duration = Duration::from_secs(o.seconds);
    std::thread::sleep(duration / 3);
    let pids = [
        replicas[0].as_ref().map_or(0, Server::pgid),
        replicas[1].as_ref().map_or(0, Server::pgid),
    ];
    let recent: Vec<String> = sh
        .jobs
        .lock()
        .map(|v| v[v.len().saturating_sub(40)..].to_vec())
        .unwrap_or_default();
    let mut running = [0usize; 2];
    for id in &recent {
        if let Some(pid) = running_pid(ports[0], id).or_else(|| running_pid(ports[1], id)) {
            for i in 0..2 {
                if pids[i] == pid {
                    running[i] += 1;
                }
            }
        }
    }
    let victim = if running[0] > running[1] { 0 } else { 1 };
    eprintln!(
        "load-replicas: {:.1} s in, kill -9 {} (pid {}, running {} of the recent jobs; the other {})",
        load_start.elapsed().as_secs_f64(),
        NAMES[victim],
        pids[victim],
        running[victim],
        running[1 - victim]
    );
    let killed_at = Instant::now();
    unsafe { kill(pids[victim] as i32, SIGKILL) };
    // reap it (its group is gone with it; supervised job commands live in their own sessions)
    if let Some(mut s) = replicas[victim].take() {
        s.stop();
    }
    std::thread::sleep(Duration::from_secs(if o.quick { 2 } else { 4 }));
    let restarted = start_replica(&setup, victim, ports[victim], 2);
    let up_at = Instant::now();
    let restart_secs = (up_at - killed_at).as_secs_f64();
    let restart_err = match restarted {
        Ok(s) => {
            replicas[victim] = Some(s);
            eprintln!(
                "load-replicas: {} answers /health again {restart_secs:.1} s after the kill",
                NAMES[victim]
            );
            None
        }
        Err(e) => Some(e),
    };
    let rest = duration.saturating_sub(load_start.elapsed());
    std::thread::sleep(rest);
    sh.stop.store(true, Ordering::SeqCst);
    let mut recs = Vec::new();
    for h in handles {
        recs.push(
            h.join()
                .map_err(|_| "a client thread panicked".to_string())?,
        );
    }
    let load_secs = load_start.elapsed().as_secs_f64();
    if let Some(e) = restart_err {
        return Err(format!("restarting {} failed: {e}", NAMES[victim]));
    }

    // ---- checks
    let mut violations: Vec<String> = Vec::new();
    // a connection error is allowed only to the killed replica, from the kill
    // until it answered again (plus a moment for connections made before)
    let grace = Duration::from_secs(1);
    let mut errors: HashMap<&'static str, u64> = HashMap::new();
    for rec in &recs {
        for f in &rec.failed {
            let in_window =
                f.replica == victim && f.end + grace >= killed_at && f.start <= up_at + grace;
            let (label, ok) = match &f.what {
                Failure::Connection(_) if in_window => {
                    ("connection error, killed replica down", true)
                }
                Failure::Connection(_) => ("connection error, replica up", false),
                Failure::Status(s, _) if RETRYABLE.contains(s) => {
                    ("retryable status (429/502/503/504)", true)
                }
                Failure::Status(s, _) if *s >= 500 => ("5xx (not retryable)", false),
                Failure::Status(_, _) => ("4xx or other status", false),
                Failure::Hang(_) => ("hang (no answer in time)", false),
            };
            *errors.entry(label).or_default() += 1;
            if !ok {
                violations.push(format!(
                    "{} {} on {} at {:.2} s into the load: {}",
                    f.kind.name(),
                    f.path,
                    NAMES[f.replica],
                    f.start.saturating_duration_since(load_start).as_secs_f64(),
                    f.what
                ));
            }
        }
    }
    // acknowledged metric points, read back through the replica not killed
    // (half the runs through each replica, the restarted one included)
    let survivor = 1 - victim;
    let mut acked_points = 0usize;
    let mut runs = 0usize;
    for rec in &recs {
        if let Some(run) = &rec.run {
            runs += 1;
            acked_points += rec.points.len();
            violations.extend(check_points(ports[runs % 2], run, &rec.points));
        }
    }
    // jobs
    let jobs: Vec<(String, usize)> = recs.iter().flat_map(|r| r.jobs.clone()).collect();
    let jobs_out = check_jobs(
        ports[survivor],
        &jobs,
        &ledger,
        pids[victim],
        Duration::from_secs(180),
    );
    violations.extend(jobs_out.problems.iter().cloned());

    // ---- the table
    let mut total_req = 0u64;
    let mut total_ok = 0usize;
    println!();
    println!(
        "load-replicas: {} clients, {load_secs:.1} s of load, {} killed with SIGKILL at {:.1} s and answering again {restart_secs:.1} s later",
        o.clients,
        NAMES[victim],
        killed_at
            .saturating_duration_since(load_start)
            .as_secs_f64()
    );
    println!();
    println!(
        "| {:<18} | {:>9} | {:>9} | {:>7} | {:>9} | {:>9} | {:>9} |",
        "request", "requests", "answered", "errors", "req/s", "p50 ms", "p99 ms"
    );
    println!(
        "|{:-<20}|{:->11}|{:->11}|{:->9}|{:->11}|{:->11}|{:->11}|",
        "", "", "", "", "", "", ""
    );
    for k in [
        Kind::CreateRun,
        Kind::LogBatch,
        Kind::LogMetric,
        Kind::SubmitJob,
        Kind::Invoke,
    ] {
        let n: u64 = recs
            .iter()
            .map(|r| r.requests.get(&k).copied().unwrap_or(0))
            .sum();
        let mut lat: Vec<f64> = recs
            .iter()
            .flat_map(|r| r.lat.get(&k).cloned().unwrap_or_default())
            .collect();
        let errs = recs
            .iter()
            .flat_map(|r| &r.failed)
            .filter(|f| f.kind == k)
            .count();
        total_req += n;
        total_ok += lat.len();
        println!(
            "| {:<18} | {:>9} | {:>9} | {:>7} | {:>9.1} | {:>9.1} | {:>9.1} |",
            k.name(),
            n,
            lat.len(),
            errs,
            n as f64 / load_secs,
            percentile(&mut lat, 0.5) * 1e3,
            percentile(&mut lat, 0.99) * 1e3
        );
    }
    println!();
    println!(
        "requests {total_req} ({total_ok} answered); acknowledged: {acked_points} metric points in {runs} runs, {} jobs",
        jobs.len()
    );
    let mut errs: Vec<_> = errors.iter().collect();
    errs.sort();
    if errs.is_empty() {
        println!("errors: none");
    }
    for (label, n) in errs {
        println!("errors: {n} {label}");
    }
    println!(
        "jobs: {} ran once, {} re-attached after the kill (ran once), {} retried (attempt 2), {} started by the adopter (never started before the kill), {} failed before their command started, {} violating",
        jobs_out.once,
        jobs_out.reattached,
        jobs_out.retried,
        jobs_out.restarted,
        jobs_out.failed_lost_worker,
        jobs_out.problems.len()
    );
    if !jobs_out.reattached_while_alive.is_empty() {
        println!(
            "note: {} job(s) were taken over from a replica that was not killed (its lease ran out while it lived; each still ran once):",
            jobs_out.reattached_while_alive.len()
        );
        for n in &jobs_out.reattached_while_alive {
            println!("  - {n}");
        }
    }
    if !violations.is_empty() {
        println!("\nviolations ({}):", violations.len());
        for v in violations.iter().take(30) {
            println!("  - {v}");
        }
        for (i, name) in ["a", "b"].iter().enumerate() {
            for life in 1..=2 {
                let p = work.join(format!("replica-{name}-{life}.log"));
                let lines = log_lines(&p);
                if !lines.is_empty() {
                    println!("\n{} (life {life}) log, error lines:\n{lines}", NAMES[i]);
                }
            }
        }
    }
    let _ = std::io::stdout().flush();
    // stop the replicas before the S3 server and PostgreSQL
    for r in &mut replicas {
        if let Some(mut s) = r.take() {
            s.stop();
        }
    }
    drop(s3);
    drop(pg);
    if violations.is_empty() && jobs.is_empty() {
        return Err("no job was acknowledged: the load test did not test jobs".into());
    }
    if violations.is_empty() {
        println!("load-replicas: PASS");
        Ok(())
    } else {
        println!("load-replicas: FAIL");
        Err(format!("{} violation(s)", violations.len()))
    }
}

#[cfg(test)]
mod tests {
    //! How an ended job is held to the rules, on jobs as the API returns them.

    use super::*;

    const KILLED: u32 = 4242;

    /// A job as `GET /api/atelier/jobs/{id}` has it: status, attempt, error and
    /// its secondary statuses as `(status, message)`.
    fn job(status: &str, attempt: i64, error: &str, steps: &[(&str, &str)]) -> Json {
        let steps: Vec<String> = steps
            .iter()
            .map(|(s, m)| {
                format!(
                    "{{\"status\": {}, \"message\": {}}}",
                    json_str(s),
                    json_str(m)
                )
            })
            .collect();
        Json::parse(&format!(
            "{{\"status\": {}, \"attempt\": {attempt}, \"error\": {}, \"secondary_statuses\": [{}]}}",
            json_str(status),
            json_str(error),
            steps.join(", ")
        ))
        .unwrap()
    }

    fn outcome(j: &Json, ledger: (usize, usize)) -> JobOutcomes {
        let mut out = JobOutcomes::default();
        classify(&mut out, "j-1", j, ledger, KILLED);
        out
    }

    const STARTED_ON_KILLED: (&str, &str) = ("Starting", "worker h:4242:ab");
    const ADOPTED: (&str, &str) = ("Reattaching", "worker h:77:cd took over from h:4242:ab");

    #[test]
    fn a_job_that_failed_after_its_command_started_is_a_violation() {
        // the reaper's words, naming the killed worker: allowed only when nothing ran
        let reaped = job(
            "failed",
            1,
            "the worker stopped (worker h:4242:ab, attempt 1 of 1)",
            &[STARTED_ON_KILLED],
        );
        let out = outcome(&reaped, (1, 1));
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
        assert!(out.problems[0].contains("failed although its command had started"));
        let out = outcome(&reaped, (0, 0));
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.failed_lost_worker, 1);
        // any other failure of a started command too
        let out = outcome(
            &job("failed", 1, "exit 1", &[STARTED_ON_KILLED, ADOPTED]),
            (1, 0),
        );
        assert_eq!(out.problems.len(), 1);
    }

    #[test]
    fn an_adopted_job_that_never_started_may_start_again_or_fail_saying_so() {
        let restarted = job(
            "succeeded",
            1,
            "",
            &[
                STARTED_ON_KILLED,
                ADOPTED,
                ("Retrying", "the command never started; starting it again"),
            ],
        );
        let out = outcome(&restarted, (1, 1));
        assert_eq!((out.restarted, out.problems.len()), (1, 0));
        let gave_up = job(
            "failed",
            1,
            "the command never started (attempt 1 of 1; no attempts left)",
            &[STARTED_ON_KILLED, ADOPTED],
        );
        let out = outcome(&gave_up, (0, 0));
        assert_eq!((out.failed_lost_worker, out.problems.len()), (1, 0));
        // the same words from a job no one adopted from the killed replica are not explained
        let out = outcome(
            &job(
                "failed",
                1,
                "the command never started (attempt 1 of 1; no attempts left)",
                &[("Starting", "worker h:77:cd")],
            ),
            (0, 0),
        );
        assert_eq!(out.problems.len(), 1);
    }

    #[test]
    fn reattached_retried_and_once_are_counted_and_twice_is_a_violation() {
        let out = outcome(
            &job("succeeded", 1, "", &[STARTED_ON_KILLED, ADOPTED]),
            (1, 1),
        );
        assert_eq!((out.reattached, out.reattached_while_alive.len()), (1, 0));
        let out = outcome(&job("succeeded", 2, "", &[STARTED_ON_KILLED]), (1, 1));
        assert_eq!(out.retried, 1);
        let out = outcome(
            &job("succeeded", 1, "", &[("Starting", "worker h:77:cd")]),
            (1, 1),
        );
        assert_eq!(out.once, 1);
        let out = outcome(&job("succeeded", 2, "", &[STARTED_ON_KILLED]), (2, 1));
        assert_eq!(out.problems.len(), 1);
        assert!(out.problems[0].contains("more than once"));
    }
}
