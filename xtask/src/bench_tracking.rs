//! `cargo xtask bench tracking`: Atelier's tracking API against a real MLflow
//! server, both started in the same run on the same machine, measured through
//! their HTTP APIs (and the real `mlflow` Python client), printed as ratios.
//!
//! Everything here is plain std: a small HTTP/1.1 keep-alive client over
//! `TcpStream` (loopback only), JSON built and picked apart by hand, threads
//! for concurrency, `/proc` for memory. The Python helpers live in
//! `bench/tracking/`.
//!
//! `--database postgres` runs both on one private PostgreSQL cluster started
//! here (`postgres.rs`), each in a database of its own, instead of SQLite.

use crate::common::{
    SIGKILL, SIGTERM, cpu_model, ensure_venv, forget_group, free_port, kill, kill_groups_on_signal,
    lead_group, loadavg, nproc, root, run_checked, say, tail_str,
};
use crate::json::json_str;
use crate::postgres::PgCluster;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: cargo xtask bench tracking [options]

Starts Atelier (target/release/atelier) and a real MLflow 3.17.2 server
(sqlite backend) side by side on 127.0.0.1, measures both through their HTTP
APIs and the real mlflow Python client, and prints one table of ratios
(also written to target/bench-tracking.json).

With --database postgres both keep their metadata on one private PostgreSQL
cluster started for the run (127.0.0.1, a database each: Atelier with
--database-url, MLflow with --backend-store-uri postgresql://, psycopg2-binary
from bench/tracking/requirements.txt); the table, labelled \"on PostgreSQL\",
goes to target/bench-tracking-postgres.{json,md} and, for a full run, into
README.md between <!-- bench:tracking-postgres --> markers. The cluster is
stopped and deleted at the end.

options:
  --database KIND      sqlite (default) or postgres
  --no-readme          with --database postgres: do not rewrite README.md
  --quick              small sizes (search over 1k runs only, fewer requests; ~3 min)
  --sizes A,B,C        run counts for the search measurement [default 1000,10000,100000]
  --python PATH        a Python with mlflow==3.17.2 installed (skips creating
                       target/bench-venv; `mlflow` is taken from PATH's directory)
  --skip-build         use the existing target/release/atelier
  --keep               keep the temporary data directories (their path is printed)
  -h, --help           this text";

const MLFLOW_VERSION: &str = "3.17.2";
const SEARCH_FILTER: &str = "metrics.m0 < 0.5 and params.p1 = '3'";
const SEARCH_ORDER: &str = "metrics.m1 DESC";
const SEARCH_MAX: usize = 1000;
/// start_time of search run i is BASE_TIME + i (the same on both servers).
const BASE_TIME: i64 = 1_700_000_000_000;
const N_METRICS: u64 = 5;
const N_PARAMS: u64 = 5;

// ---------------------------------------------------------------- options

struct Opts {
    /// Both servers on PostgreSQL instead of SQLite.
    postgres: bool,
    readme: bool,
    quick: bool,
    sizes: Vec<usize>,
    python: Option<PathBuf>,
    skip_build: bool,
    keep: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        postgres: false,
        readme: true,
        quick: false,
        sizes: Vec::new(),
        python: None,
        skip_build: false,
        keep: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match flag {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--quick" => o.quick = true,
            "--no-readme" => o.readme = false,
            "--database" => {
                o.postgres = match value("--database")?.as_str() {
                    "sqlite" => false,
                    "postgres" | "postgresql" => true,
                    v => return Err(format!("--database takes sqlite or postgres: got '{v}'")),
                }
            }
            "--skip-build" => o.skip_build = true,
            "--keep" => o.keep = true,
            "--python" => o.python = Some(PathBuf::from(value("--python")?)),
            "--sizes" => {
                let v = value("--sizes")?;
                o.sizes = v
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("--sizes takes run counts like 1000,10000: got '{v}'"))?;
                if o.sizes.is_empty() || o.sizes.contains(&0) {
                    return Err("--sizes needs positive run counts".into());
                }
            }
            other => return Err(format!("unknown option '{other}'\n\n{USAGE}")),
        }
    }
    if o.sizes.is_empty() {
        o.sizes = if o.quick {
            vec![1000]
        } else {
            vec![1000, 10_000, 100_000]
        };
    }
    o.sizes.sort_unstable();
    o.sizes.dedup();
    Ok(Some(o))
}

/// How much work each measurement gets: requests are bounded by a count and
/// by a time cap, so a slow server ends on time and the rate stays exact.
struct Plan {
    conns: usize,
    batch_req: [usize; 2],
    batch_cap: [u64; 2],
    batch1_req: [usize; 2],
    batch1_cap: [u64; 2],
    raw_calls: [usize; 2],
    raw_cap: [u64; 2],
    client_calls: [usize; 2],
    client_cap: [u64; 2],
    history_points: usize,
    mlflow_api_runs: usize,
    search_reps: [usize; 2],
    timeout: u64,
}

impl Plan {
    /// Index 0 is Atelier, 1 is MLflow.
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                conns: 4,
                batch_req: [400, 20],
                batch_cap: [10, 10],
                batch1_req: [200, 10],
                batch1_cap: [5, 8],
                raw_calls: [3000, 100],
                raw_cap: [5, 8],
                client_calls: [1000, 100],
                client_cap: [15, 10],
                history_points: 20_000,
                mlflow_api_runs: 20,
                search_reps: [5, 3],
                timeout: 60,
            }
        } else {
            Plan {
                conns: 4,
                batch_req: [2000, 80],
                batch_cap: [20, 25],
                batch1_req: [1000, 40],
                batch1_cap: [10, 15],
                raw_calls: [10_000, 300],
                raw_cap: [10, 15],
                client_calls: [2000, 200],
                client_cap: [30, 20],
                history_points: 100_000,
                mlflow_api_runs: 60,
                search_reps: [5, 3],
                timeout: 120,
            }
        }
    }
}

// ---------------------------------------------------------------- cleanup on signals

fn signal_group(pgid: u32, sig: i32) -> bool {
    unsafe { kill(-(pgid as i32), sig) == 0 }
}

// ---------------------------------------------------------------- servers

/// `atelier serve` on 127.0.0.1:`port` with data in `dir`, quiet, deaf to the `ATELIER_*`
/// settings of whoever runs the benchmark (host, port, folder, auth, config, database).
pub(crate) fn serve_cmd(bin: &Path, port: u16, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(dir)
        .env("ATELIER_LOG", "warn");
    for v in [
        "ATELIER_HOST",
        "ATELIER_PORT",
        "ATELIER_DATA_DIR",
        "ATELIER_REQUIRE_AUTH",
        "ATELIER_CONFIG",
        "ATELIER_DATABASE_URL",
        "ATELIER_TEST_DATABASE_URL",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

pub(crate) struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    slot: usize,
    log: PathBuf,
}

impl Server {
    pub(crate) fn spawn(
        name: &'static str,
        slot: usize,
        mut cmd: Command,
        port: u16,
        log: PathBuf,
    ) -> Result<(Server, Instant), String> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let t0 = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {name} ({:?}): {e}", cmd.get_program()))?;
        lead_group(slot, child.id() as i32);
        Ok((
            Server {
                name,
                child,
                port,
                slot,
                log,
            },
            t0,
        ))
    }

    /// Poll `GET /health` until it answers 200; the time since spawn.
    pub(crate) fn wait_healthy(&mut self, t0: Instant, limit: Duration) -> Result<f64, String> {
        loop {
            if let Ok(r) = Http::new(self.port, Duration::from_secs(2)).get("/health")
                && r.status == 200
            {
                return Ok(t0.elapsed().as_secs_f64());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({st}) before answering /health:\n{}",
                    self.name,
                    tail(&self.log)
                ));
            }
            if t0.elapsed() > limit {
                return Err(format!(
                    "{} did not answer /health within {} s:\n{}",
                    self.name,
                    limit.as_secs(),
                    tail(&self.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn pgid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stop(&mut self) {
        if forget_group(self.slot) == 0 {
            return;
        }
        let g = self.pgid();
        signal_group(g, SIGTERM);
        let t0 = Instant::now();
        // The group outlives its leader for a moment (MLflow's job runners).
        while t0.elapsed() < Duration::from_secs(10) {
            let _ = self.child.try_wait();
            if !signal_group(g, 0) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal_group(g, SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

/// What /proc says about one process group.
pub(crate) struct GroupStats {
    pub(crate) rss_mib: f64,
    pub(crate) procs: usize,
    /// utime + stime of the live processes, in clock ticks (1/100 s).
    cpu_ticks: u64,
}

/// Sum of VmRSS, process count and CPU time over a process group, from /proc.
pub(crate) fn group_stats(pgid: u32) -> GroupStats {
    let mut g = GroupStats {
        rss_mib: 0.0,
        procs: 0,
        cpu_ticks: 0,
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return g;
    };
    let mut kib = 0u64;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after "(comm)": state ppid pgrp session tty tpgid flags
        // minflt cminflt majflt cmajflt utime stime ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(2).and_then(|s| s.parse::<u32>().ok()) != Some(pgid) {
            continue;
        }
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        g.cpu_ticks += num(11) + num(12);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(v) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            kib += v;
            g.procs += 1;
        }
    }
    g.rss_mib = kib as f64 / 1024.0;
    g
}

/// Wait until a server is idle — the same process count and under 5% of one
/// CPU for 2 s (MLflow spawns and warms up its job consumers for a while
/// after it already answers /health) — then read its memory. Returns the
/// stats and how long the wait took.
pub(crate) fn settle(pgid: u32, max: Duration) -> (GroupStats, f64) {
    let t0 = Instant::now();
    let mut prev = group_stats(pgid);
    while t0.elapsed() < max {
        std::thread::sleep(Duration::from_secs(2));
        let now = group_stats(pgid);
        let quiet = now.procs == prev.procs && now.cpu_ticks.saturating_sub(prev.cpu_ticks) <= 10;
        prev = now;
        if quiet {
            break;
        }
    }
    (group_stats(pgid), t0.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------- HTTP client

pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// One HTTP/1.1 keep-alive connection to 127.0.0.1:port (reconnects when the
/// server closed it; TCP_NODELAY so small requests do not wait for ACKs).
pub(crate) struct Http {
    port: u16,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Http {
    pub(crate) fn new(port: u16, timeout: Duration) -> Http {
        Http {
            port,
            timeout,
            conn: None,
        }
    }

    fn open(&self) -> io::Result<BufReader<TcpStream>> {
        let s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        Ok(BufReader::with_capacity(256 * 1024, s))
    }

    pub(crate) fn get(&mut self, path: &str) -> io::Result<Resp> {
        self.request("GET", path, None)
    }

    pub(crate) fn post(&mut self, path: &str, body: &str) -> io::Result<Resp> {
        self.request("POST", path, Some(body))
    }

    fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> io::Result<Resp> {
        let mut msg = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: atelier-bench\r\nAccept: */*\r\n",
            self.port
        );
        if let Some(b) = body {
            let _ = write!(
                msg,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            );
        }
        msg.push_str("\r\n");
        if let Some(b) = body {
            msg.push_str(b);
        }
        self.roundtrip(msg.as_bytes())
    }

    /// A POST of raw bytes with these headers (besides Host and Content-Length), e.g. an OTLP
    /// protobuf body with `Content-Type: application/x-protobuf`.
    pub(crate) fn post_bytes(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Resp> {
        let mut msg = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: atelier-bench\r\nAccept: */*\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            let _ = write!(msg, "{k}: {v}\r\n");
        }
        msg.push_str("\r\n");
        let mut bytes = msg.into_bytes();
        bytes.extend_from_slice(body);
        self.roundtrip(&bytes)
    }

    fn roundtrip(&mut self, msg: &[u8]) -> io::Result<Resp> {
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                self.conn = Some(self.open()?);
            }
            let c = self.conn.as_mut().expect("connection");
            let r = c.get_mut().write_all(msg).and_then(|()| read_response(c));
            match r {
                Ok((resp, keep)) => {
                    if !keep {
                        self.conn = None;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    self.conn = None;
                    let stale = matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                    );
                    if attempt == 0 && reused && stale {
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        unreachable!("the loop returns")
    }
}

fn read_response(r: &mut BufReader<TcpStream>) -> io::Result<(Resp, bool)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let mut keep = !line.starts_with("HTTP/1.0");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
    let mut len: Option<usize> = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the headers",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.parse().ok(),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                "connection" => {
                    let v = v.to_ascii_lowercase();
                    if v.contains("close") {
                        keep = false;
                    } else if v.contains("keep-alive") {
                        keep = true;
                    }
                }
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size_hex = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if status != 204 && status != 304 && status >= 200 {
        r.read_to_end(&mut body)?;
        keep = false;
    }
    Ok((
        Resp {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        keep,
    ))
}

// ---------------------------------------------------------------- JSON by hand

/// The first `"key": "value"` string in a JSON text (ids, tokens: no escapes).
fn field_str(body: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\"");
    let mut from = 0;
    while let Some(i) = body[from..].find(&pat) {
        let rest = body[from + i + pat.len()..].trim_start();
        if let Some(rest) = rest.strip_prefix(':') {
            let rest = rest.trim_start();
            if let Some(rest) = rest.strip_prefix('"') {
                let end = rest.find('"')?;
                return Some(rest[..end].replace("\\/", "/"));
            }
            return None;
        }
        from += i + pat.len();
    }
    None
}

fn url_encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------- the tracking API

const API: &str = "/api/2.0/mlflow";

fn expect_ok(r: io::Result<Resp>, what: &str) -> Result<String, String> {
    match r {
        Ok(r) if r.status == 200 => Ok(r.body),
        Ok(r) => Err(format!("{what}: HTTP {}: {}", r.status, short(&r.body))),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn create_experiment(h: &mut Http, name: &str) -> Result<String, String> {
    let body = expect_ok(
        h.post(
            &format!("{API}/experiments/create"),
            &format!("{{\"name\":{}}}", json_str(name)),
        ),
        "experiments/create",
    )?;
    field_str(&body, "experiment_id").ok_or_else(|| format!("no experiment_id in {body}"))
}

fn create_run(
    h: &mut Http,
    exp: &str,
    name: &str,
    start_time: i64,
    tags: &[(&str, &str)],
) -> Result<String, String> {
    let mut b = format!(
        "{{\"experiment_id\":{},\"run_name\":{},\"start_time\":{start_time},\"user_id\":\"bench\",\"tags\":[",
        json_str(exp),
        json_str(name)
    );
    for (i, (k, v)) in tags.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        let _ = write!(b, "{{\"key\":{},\"value\":{}}}", json_str(k), json_str(v));
    }
    b.push_str("]}");
    let body = expect_ok(h.post(&format!("{API}/runs/create"), &b), "runs/create")?;
    field_str(&body, "run_id").ok_or_else(|| format!("no run_id in {}", short(&body)))
}

/// A log-batch body of metrics given as (key, value, timestamp, step).
fn batch_body(
    run_id: &str,
    metrics: impl Iterator<Item = (String, f64, i64, i64)>,
    params: &[(String, String)],
) -> String {
    let mut b = String::with_capacity(80_000);
    let _ = write!(b, "{{\"run_id\":\"{run_id}\",\"metrics\":[");
    for (i, (k, v, ts, step)) in metrics.enumerate() {
        if i > 0 {
            b.push(',');
        }
        let _ = write!(
            b,
            "{{\"key\":{},\"value\":{v:?},\"timestamp\":{ts},\"step\":{step}}}",
            json_str(&k)
        );
    }
    b.push_str("],\"params\":[");
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        let _ = write!(b, "{{\"key\":{},\"value\":{}}}", json_str(k), json_str(v));
    }
    b.push_str("]}");
    b
}

/// Log-batch bodies for the ingest measurement, cheap to make (the xtask is
/// a debug build, and on one connection the client's time is on the clock):
/// 1000 metrics = 10 keys × 100 steps; request `round` of a run takes steps
/// round*100 .. round*100+99, so no two points repeat (MLflow's primary key).
struct IngestTemplate {
    frags: Vec<String>,
}

impl IngestTemplate {
    fn new(ts: i64) -> IngestTemplate {
        IngestTemplate {
            frags: (0..1000)
                .map(|j| {
                    format!(
                        "{{\"key\":\"loss{}\",\"value\":{:?},\"timestamp\":{ts},\"step\":",
                        j % 10,
                        1.0 / (1 + j) as f64
                    )
                })
                .collect(),
        }
    }

    fn body(&self, run_id: &str, round: i64) -> String {
        let mut b = String::with_capacity(100_000);
        b.push_str("{\"run_id\":\"");
        b.push_str(run_id);
        b.push_str("\",\"metrics\":[");
        for (j, f) in self.frags.iter().enumerate() {
            if j > 0 {
                b.push(',');
            }
            b.push_str(f);
            push_int(&mut b, round * 100 + (j / 10) as i64);
            b.push('}');
        }
        b.push_str("]}");
        b
    }
}

fn push_int(b: &mut String, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if v < 0 {
        b.push('-');
    }
    b.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

// ---------------------------------------------------------------- deterministic run data

/// splitmix64, the same in bench/tracking/populate_mlflow.py.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Search run i: metrics m0..m4 in [0, 1), params p0..p4 in "0".."9",
/// tag grp = g<i % 7>, name run-<i>, start_time BASE_TIME + i.
struct RunData;

impl RunData {
    fn metric(i: u64, k: u64) -> f64 {
        (splitmix64(i * 16 + k) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn param(i: u64, k: u64) -> String {
        (splitmix64(i * 16 + 8 + k) % 10).to_string()
    }
    /// How many of runs 0..n match SEARCH_FILTER.
    fn expected_hits(n: usize) -> usize {
        (0..n as u64)
            .filter(|&i| Self::metric(i, 0) < 0.5 && Self::param(i, 1) == "3")
            .count()
    }
}

/// Create search run i through the API: runs/create + one log-batch.
fn create_search_run(h: &mut Http, exp: &str, i: u64) -> Result<(), String> {
    let ts = BASE_TIME + i as i64;
    let grp = format!("g{}", i % 7);
    let rid = create_run(h, exp, &format!("run-{i}"), ts, &[("grp", &grp)])?;
    let params: Vec<(String, String)> = (0..N_PARAMS)
        .map(|k| (format!("p{k}"), RunData::param(i, k)))
        .collect();
    let body = batch_body(
        &rid,
        (0..N_METRICS).map(|k| (format!("m{k}"), RunData::metric(i, k), ts, 0)),
        &params,
    );
    expect_ok(h.post(&format!("{API}/runs/log-batch"), &body), "log-batch").map(|_| ())
}

// ---------------------------------------------------------------- load generator

#[derive(Default)]
struct Load {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    secs: f64,
    latencies: Vec<f64>,
}

impl Load {
    fn rate(&self, per_job: f64) -> f64 {
        self.ok as f64 * per_job / self.secs.max(1e-9)
    }
    fn error_note(&self) -> Option<String> {
        (self.errors > 0).then(|| {
            format!(
                "{} failed: {}",
                self.errors,
                self.first_error.clone().unwrap_or_default()
            )
        })
    }
}

/// Run jobs 0..n over `conns` keep-alive connections until all are done or
/// `cap` has passed; each job is timed.
fn run_load(
    port: u16,
    conns: usize,
    n: usize,
    cap: Duration,
    timeout: Duration,
    job: &(dyn Fn(&mut Http, usize) -> Result<(), String> + Sync),
) -> Load {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Load::default());
    let barrier = Barrier::new(conns + 1);
    let mut t0 = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..conns {
            sc.spawn(|| {
                let mut h = Http::new(port, timeout);
                let _ = h.get("/health"); // open the connection before the clock starts
                barrier.wait();
                let start = Instant::now();
                let mut local = Load::default();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n || start.elapsed() > cap {
                        break;
                    }
                    let t = Instant::now();
                    match job(&mut h, i) {
                        Ok(()) => {
                            local.ok += 1;
                            local.latencies.push(t.elapsed().as_secs_f64());
                        }
                        Err(e) => {
                            local.errors += 1;
                            local.first_error.get_or_insert(e);
                        }
                    }
                }
                let mut o = out.lock().expect("lock");
                o.ok += local.ok;
                o.errors += local.errors;
                if o.first_error.is_none() {
                    o.first_error = local.first_error;
                }
                o.latencies.extend(local.latencies);
            });
        }
        barrier.wait();
        t0 = Instant::now();
    });
    let mut o = out.into_inner().expect("lock");
    o.secs = t0.elapsed().as_secs_f64();
    o
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------- results

#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Rate(&'static str),
    Secs,
    Millis,
    MiB,
}

impl Unit {
    fn higher_is_better(self) -> bool {
        matches!(self, Unit::Rate(_))
    }
    fn name(self) -> &'static str {
        match self {
            Unit::Rate(u) => u,
            Unit::Secs => "s",
            Unit::Millis => "ms",
            Unit::MiB => "MiB",
        }
    }
}

/// A measured value; `at_least` when a timeout cut the measurement short
/// (the true time is larger than `v`).
#[derive(Clone, Copy)]
struct Val {
    v: f64,
    at_least: bool,
}

fn val(v: f64) -> Option<Val> {
    Some(Val { v, at_least: false })
}

struct Row {
    name: String,
    unit: Unit,
    vals: [Option<Val>; 2],
    note: Option<String>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn row(&mut self, name: impl Into<String>, unit: Unit, a: Option<Val>, m: Option<Val>) {
        self.rows.push(Row {
            name: name.into(),
            unit,
            vals: [a, m],
            note: None,
        });
    }
    fn note_last(&mut self, note: Option<String>) {
        if let (Some(n), Some(r)) = (note, self.rows.last_mut()) {
            r.note = Some(match r.note.take() {
                Some(old) => format!("{old}; {n}"),
                None => n,
            });
        }
    }
}

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    if x >= 1000.0 {
        let s = format!("{:.0}", x);
        let mut o = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                o.push(',');
            }
            o.push(c);
        }
        o
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_val(v: Option<Val>, unit: Unit) -> String {
    let Some(v) = v else { return "—".into() };
    let p = if v.at_least { "> " } else { "" };
    match unit {
        Unit::Rate(u) => format!("{p}{} {u}", fmt_num(v.v)),
        Unit::Secs if v.v < 1.0 => format!("{p}{} ms", fmt_num(v.v * 1000.0)),
        Unit::Secs => format!("{p}{} s", fmt_num(v.v)),
        Unit::Millis => format!("{p}{} ms", fmt_num(v.v)),
        Unit::MiB => format!("{p}{} MiB", fmt_num(v.v)),
    }
}

/// "How many times better" Atelier is: A/M for throughput, M/A otherwise.
/// Some((ratio, is_lower_bound)).
fn ratio(r: &Row) -> Option<(f64, bool)> {
    let (a, m) = (r.vals[0]?, r.vals[1]?);
    if a.at_least {
        return None; // Atelier timing out leaves no meaningful ratio
    }
    let x = if r.unit.higher_is_better() {
        a.v / m.v
    } else {
        m.v / a.v
    };
    x.is_finite().then_some((x, m.at_least))
}

fn fmt_ratio(r: &Row) -> String {
    match ratio(r) {
        None => "—".into(),
        Some((x, lb)) => {
            let p = if lb { "> " } else { "" };
            if x >= 100.0 {
                format!("{p}{x:.0}×")
            } else {
                format!("{p}{x:.1}×")
            }
        }
    }
}

fn print_table(rep: &Report) {
    let header = ["measurement", "Atelier", "MLflow 3.17.2", "ratio"];
    let cells: Vec<[String; 4]> = rep
        .rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                fmt_val(r.vals[0], r.unit),
                fmt_val(r.vals[1], r.unit),
                fmt_ratio(r),
            ]
        })
        .collect();
    let mut w = header.map(|h| h.chars().count());
    for c in &cells {
        for i in 0..4 {
            w[i] = w[i].max(c[i].chars().count());
        }
    }
    let line = |c: [&str; 4]| {
        let pad = |s: &str, n: usize| " ".repeat(n.saturating_sub(s.chars().count()));
        format!(
            "| {}{} | {}{} | {}{} | {}{} |",
            c[0],
            pad(c[0], w[0]),
            pad(c[1], w[1]),
            c[1],
            pad(c[2], w[2]),
            c[2],
            pad(c[3], w[3]),
            c[3]
        )
    };
    println!("{}", line(header));
    println!(
        "|{}|{}:|{}:|{}:|",
        "-".repeat(w[0] + 2),
        "-".repeat(w[1] + 1),
        "-".repeat(w[2] + 1),
        "-".repeat(w[3] + 1)
    );
    for c in &cells {
        println!("{}", line([&c[0], &c[1], &c[2], &c[3]]));
    }
    let noted: Vec<&Row> = rep.rows.iter().filter(|r| r.note.is_some()).collect();
    if !noted.is_empty() {
        println!();
        for r in noted {
            println!("  {}: {}", r.name, r.note.as_deref().unwrap_or(""));
        }
    }
    println!();
    for n in &rep.notes {
        println!("{n}");
    }
}

fn json_num(v: Option<Val>) -> String {
    match v {
        Some(v) if v.v.is_finite() => format!("{}", v.v),
        _ => "null".into(),
    }
}

fn write_json(rep: &Report, path: &Path, meta: &[(&str, String)]) -> Result<(), String> {
    let mut o = String::from("{\n");
    for (k, v) in meta {
        let _ = writeln!(o, "  {}: {v},", json_str(k));
    }
    o.push_str("  \"rows\": [\n");
    for (i, r) in rep.rows.iter().enumerate() {
        let (rt, lb) = ratio(r).map_or(("null".to_string(), false), |(x, lb)| (format!("{x}"), lb));
        let _ = write!(
            o,
            "    {{\"measurement\": {}, \"unit\": {}, \"higher_is_better\": {}, \"atelier\": {}, \"mlflow\": {}, \"mlflow_is_lower_bound\": {}, \"ratio\": {rt}, \"ratio_is_lower_bound\": {lb}, \"note\": {}}}",
            json_str(&r.name),
            json_str(r.unit.name()),
            r.unit.higher_is_better(),
            json_num(r.vals[0]),
            json_num(r.vals[1]),
            r.vals[1].is_some_and(|v| v.at_least),
            r.note.as_deref().map_or("null".into(), json_str),
        );
        o.push_str(if i + 1 < rep.rows.len() { ",\n" } else { "\n" });
    }
    o.push_str("  ],\n  \"notes\": [");
    for (i, n) in rep.notes.iter().enumerate() {
        if i > 0 {
            o.push_str(", ");
        }
        o.push_str(&json_str(n));
    }
    o.push_str("]\n}\n");
    std::fs::write(path, o).map_err(|e| format!("writing {}: {e}", path.display()))
}

// ---------------------------------------------------------------- set-up

const TMP_PREFIX: &str = "atelier-bench-tracking-";

/// Remove temporary directories left by earlier runs that were interrupted
/// (the signal handler only kills the servers); never one of a live run.
fn remove_stale_temp_dirs() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TMP_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

pub(crate) fn python_env(cmd: &mut Command) -> &mut Command {
    cmd.env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        // Fail fast instead of retrying 5xx for minutes.
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
        .env("PYTHONUNBUFFERED", "1")
}

/// Run a Python helper and return its stdout, or its stderr as the error.
fn run_python(python: &Path, script: &Path, args: &[String]) -> Result<String, String> {
    let out = python_env(Command::new(python).arg(script).args(args))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("starting {}: {e}", python.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed ({}):\n{}",
            script.display(),
            out.status,
            tail_str(&String::from_utf8_lossy(&out.stderr))
        ))
    }
}

fn json_f64(body: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let i = body.find(&pat)? + pat.len();
    let rest = body[i..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

// ---------------------------------------------------------------- the benchmark

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(opts) = parse_args(args)? else {
        return Ok(());
    };
    kill_groups_on_signal();
    let root = root();
    let wall = Instant::now();
    let plan = Plan::new(opts.quick);

    if !opts.skip_build {
        say("cargo build --release -p atelier");
        run_checked(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "-p", "atelier"])
                .current_dir(&root),
            "cargo build --release -p atelier",
        )?;
    }
    let atelier_bin = root.join("target/release/atelier");
    if !atelier_bin.exists() {
        return Err(format!("{} is missing", atelier_bin.display()));
    }
    let python = match &opts.python {
        Some(p) => p.clone(),
        None => ensure_venv(
            &root.join("target/bench-venv"),
            &root.join("bench/tracking/requirements.txt"),
        )?,
    };
    let mlflow_cmd = |args: &[&str]| {
        let bin = python.parent().map(|d| d.join("mlflow"));
        let mut c = match bin.filter(|b| b.exists()) {
            Some(b) => Command::new(b),
            None => {
                let mut c = Command::new(&python);
                c.args(["-m", "mlflow"]);
                c
            }
        };
        c.args(args);
        c
    };
    let ver = mlflow_cmd(&["--version"])
        .output()
        .map_err(|e| format!("running mlflow --version: {e}"))?;
    let ver = String::from_utf8_lossy(&ver.stdout).trim().to_string();
    if !ver.contains(MLFLOW_VERSION) {
        say(&format!(
            "warning: expected mlflow {MLFLOW_VERSION}, found '{ver}'"
        ));
    }

    remove_stale_temp_dirs();
    let tmp = std::env::temp_dir().join(format!("{TMP_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let cluster = if opts.postgres {
        say("starting a private PostgreSQL cluster (postgres.rs)");
        Some(start_cluster(&root)?)
    } else {
        None
    };
    let result = cluster
        .as_ref()
        .map(|(c, version)| Pg::new(c, version.clone()))
        .transpose()
        .and_then(|pg| {
            bench(
                &opts,
                &plan,
                &root,
                &atelier_bin,
                &python,
                mlflow_cmd,
                &tmp,
                pg.as_ref(),
            )
        });
    if let Some((c, _)) = cluster {
        forget_group(PG_SLOT);
        say(&format!(
            "stopping PostgreSQL and deleting {}",
            c.data_dir.display()
        ));
        drop(c);
    }
    if opts.keep {
        say(&format!("kept {}", tmp.display()));
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let rep = result?;
    println!();
    if opts.postgres {
        println!("Atelier and MLflow {MLFLOW_VERSION}, both on PostgreSQL:\n");
    }
    print_table(&rep);
    let total = wall.elapsed().as_secs_f64();
    println!("(whole run {:.0} s)", total);
    let out = root.join(if opts.postgres {
        "target/bench-tracking-postgres.json"
    } else {
        "target/bench-tracking.json"
    });
    write_json(
        &rep,
        &out,
        &[
            ("benchmark", json_str("cargo xtask bench tracking")),
            (
                "database",
                json_str(if opts.postgres { "postgres" } else { "sqlite" }),
            ),
            ("quick", opts.quick.to_string()),
            ("nproc", nproc().to_string()),
            ("cpu", json_str(&cpu_model())),
            ("mlflow_version", json_str(&ver)),
            ("unix_time", (now_ms() / 1000).to_string()),
            ("wall_seconds", format!("{total:.1}")),
            (
                "sizes",
                format!(
                    "[{}]",
                    opts.sizes
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
        ],
    )?;
    println!("figures written to {}", out.display());
    if opts.postgres {
        let md = markdown_postgres(&rep, &opts, &ver, total);
        let md_path = root.join("target/bench-tracking-postgres.md");
        std::fs::write(&md_path, &md).map_err(|e| format!("writing {}: {e}", md_path.display()))?;
        println!("{}", md_path.display());
        if opts.quick {
            say("a --quick run leaves README.md alone");
        } else if opts.readme {
            crate::common::update_readme(&root.join("README.md"), "tracking-postgres", &md)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- PostgreSQL

/// The signal-handler slot of the cluster's postmaster group (0 and 1 are the servers).
const PG_SLOT: usize = 2;

/// Start the private cluster (and have an interrupt SIGKILL its postmaster's
/// group, which pg_ctl made a session of its own); its server version.
fn start_cluster(root: &Path) -> Result<(PgCluster, String), String> {
    // fsync on, as deployed (the test suites' cluster runs without it)
    let cluster = crate::postgres::start_durable(&crate::common::target_dir(root))?;
    let pid = std::fs::read_to_string(cluster.data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
    // only when the postmaster leads its own group (else the group is ours)
    if let Some(pid) = pid
        && proc_pgrp(pid) == Some(pid)
    {
        lead_group(PG_SLOT, pid as i32);
    }
    let version = cluster.psql("atelier", "SHOW server_version")?;
    let version = version.split_whitespace().next().unwrap_or("").to_string();
    let fsync = cluster.psql("atelier", "SHOW fsync")?;
    if fsync != "on" {
        return Err(format!(
            "the benchmark's cluster runs with fsync={fsync}, expected on"
        ));
    }
    say(&format!(
        "PostgreSQL {version} at 127.0.0.1:{} in {}",
        cluster.port(),
        cluster.data_dir.display()
    ));
    Ok((cluster, version))
}

/// The process group of `pid`, from /proc.
fn proc_pgrp(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// `pg_stat_database` of `db` once its backends have reported: read until two
/// reads a second apart agree (at most 5 s).
fn settled_stats(pg: &Pg, db: &str) -> Result<DbStats, String> {
    let mut prev = pg.stats(db)?;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        let now = pg.stats(db)?;
        if (now.xacts, now.written) == (prev.xacts, prev.written) {
            return Ok(now);
        }
        prev = now;
    }
    Ok(prev)
}

/// Both servers' databases on the one cluster.
struct Pg<'a> {
    cluster: &'a PgCluster,
    version: String,
    /// Atelier's `--database-url`.
    atelier_url: String,
    /// MLflow's `--backend-store-uri` (SQLAlchemy's URL, naming the driver).
    mlflow_url: String,
}

const ATELIER_DB: &str = "atelier_bench";
const MLFLOW_DB: &str = "mlflow_bench";

impl<'a> Pg<'a> {
    fn new(cluster: &'a PgCluster, version: String) -> Result<Pg<'a>, String> {
        let atelier_url = cluster.create_database(ATELIER_DB)?;
        let mlflow_url = cluster
            .create_database(MLFLOW_DB)?
            // SQLAlchemy 2.1 defaults to psycopg 3 for postgresql://; the
            // driver pinned for it is psycopg2
            .replacen("postgres://", "postgresql+psycopg2://", 1);
        Ok(Pg {
            cluster,
            version,
            atelier_url,
            mlflow_url,
        })
    }

    /// Transactions ended and rows written and read in one database so far
    /// (`pg_stat_database`; a backend reports its counts when its transaction ends, idle ones
    /// within a second).
    fn stats(&self, db: &str) -> Result<DbStats, String> {
        let out = self.cluster.psql(
            "postgres",
            &format!(
                "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted, tup_returned + tup_fetched FROM pg_stat_database WHERE datname = '{db}'"
            ),
        )?;
        let f: Vec<u64> = out
            .split('|')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        match f[..] {
            [xacts, written, read] => Ok(DbStats {
                xacts,
                written,
                read,
            }),
            _ => Err(format!("pg_stat_database for {db}: unexpected '{out}'")),
        }
    }
}

#[derive(Clone, Copy, Default)]
struct DbStats {
    xacts: u64,
    written: u64,
    read: u64,
}

impl DbStats {
    fn since(self, before: DbStats) -> DbStats {
        DbStats {
            xacts: self.xacts.saturating_sub(before.xacts),
            written: self.written.saturating_sub(before.written),
            read: self.read.saturating_sub(before.read),
        }
    }
}

/// The README block of a `--database postgres` run.
fn markdown_postgres(rep: &Report, opts: &Opts, mlflow_ver: &str, wall: f64) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "`cargo xtask bench tracking --database postgres{}{}` ({wall:.0} s), measured {} on {} CPUs ({}).\nAtelier and MLflow {} **on PostgreSQL**: one private cluster started by the command, a database each;\n\"ratio\" is how many times better Atelier is, both measured in the same run.\n",
        if opts.quick { " --quick" } else { "" },
        if opts.sizes
            == parse_args(&[])
                .ok()
                .flatten()
                .map(|o| o.sizes)
                .unwrap_or_default()
            || opts.quick
        {
            String::new()
        } else {
            format!(
                " --sizes {}",
                opts.sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        },
        crate::common::utc_stamp(),
        nproc(),
        cpu_model(),
        mlflow_ver.rsplit(' ').next().unwrap_or(MLFLOW_VERSION),
    );
    let header = [
        "measurement (on PostgreSQL)",
        "Atelier",
        &format!("MLflow {MLFLOW_VERSION}"),
        "ratio",
    ];
    let cells: Vec<[String; 4]> = rep
        .rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                fmt_val(r.vals[0], r.unit),
                fmt_val(r.vals[1], r.unit),
                fmt_ratio(r),
            ]
        })
        .collect();
    table_lines(&header.map(String::from), &cells, &mut md);
    md.push('\n');
    // the issue's targets, judged from the rows above
    let find = |prefix: &str| rep.rows.iter().find(|r| r.name.starts_with(prefix));
    let judge = |r: Option<&Row>, target: f64| match r.and_then(ratio) {
        Some((x, lb)) => format!(
            "{}{x:.1}× {}",
            if lb { "> " } else { "" },
            if x >= target { "✓" } else { "✗ (missed)" }
        ),
        None => "not measured".into(),
    };
    let _ = writeln!(
        md,
        "- Targets (issue 18): log-batch ingest ≥ 50× MLflow's — {} at {} connections, {} at 1;\n  search over 10k runs ≥ 20× — {}.",
        judge(find("log-batch ingest (1000 metrics/request, 4"), 50.0),
        4,
        judge(find("log-batch ingest (1000 metrics/request, 1 "), 50.0),
        judge(find("search_runs over 10,000 runs"), 20.0),
    );
    for r in &rep.rows {
        if let Some(n) = &r.note {
            let _ = writeln!(md, "- {}: {n}", r.name);
        }
    }
    for n in &rep.notes {
        let _ = writeln!(md, "- {n}");
    }
    md
}

/// A markdown table, right-aligned figures, padded to the widest cell.
fn table_lines(header: &[String; 4], cells: &[[String; 4]], out: &mut String) {
    let mut w = header.clone().map(|h| h.chars().count());
    for c in cells {
        for i in 0..4 {
            w[i] = w[i].max(c[i].chars().count());
        }
    }
    let pad = |s: &str, n: usize| " ".repeat(n.saturating_sub(s.chars().count()));
    let line = |c: &[String; 4]| {
        format!(
            "| {}{} | {}{} | {}{} | {}{} |\n",
            c[0],
            pad(&c[0], w[0]),
            pad(&c[1], w[1]),
            c[1],
            pad(&c[2], w[2]),
            c[2],
            pad(&c[3], w[3]),
            c[3]
        )
    };
    out.push_str(&line(header));
    let _ = writeln!(
        out,
        "|{}|{}:|{}:|{}:|",
        "-".repeat(w[0] + 2),
        "-".repeat(w[1] + 1),
        "-".repeat(w[2] + 1),
        "-".repeat(w[3] + 1)
    );
    for c in cells {
        out.push_str(&line(c));
    }
}

#[allow(clippy::too_many_lines, clippy::too_many_arguments)]
fn bench(
    opts: &Opts,
    plan: &Plan,
    root: &Path,
    atelier_bin: &Path,
    python: &Path,
    mlflow_cmd: impl Fn(&[&str]) -> Command,
    tmp: &Path,
    pg: Option<&Pg>,
) -> Result<Report, String> {
    let mut rep = Report::default();
    let load_before = loadavg();
    let timeout = Duration::from_secs(plan.timeout);
    let short_timeout = Duration::from_secs(60);
    let scripts = root.join("bench/tracking");

    // ---- start both (one after the other, so neither start competes with the other)
    let a_port = free_port()?;
    let a_dir = tmp.join("atelier-data");
    let mut cmd = serve_cmd(atelier_bin, a_port, &a_dir);
    if let Some(pg) = pg {
        cmd.arg("--database-url").arg(&pg.atelier_url);
    }
    say(&format!("starting Atelier on 127.0.0.1:{a_port}"));
    let (mut atelier, t0) = Server::spawn("Atelier", 0, cmd, a_port, tmp.join("atelier.log"))?;
    let a_start = atelier.wait_healthy(t0, Duration::from_secs(60))?;
    let (a0, a_wait) = settle(atelier.pgid(), Duration::from_secs(60));

    let m_port = free_port()?;
    let db = tmp.join("mlflow.db");
    let mut cmd = mlflow_cmd(&["server", "--backend-store-uri"]);
    cmd.arg(match pg {
        Some(pg) => pg.mlflow_url.clone(),
        None => format!("sqlite:///{}", db.display()),
    })
    .arg("--artifacts-destination")
    .arg(tmp.join("mlflow-artifacts"))
    .args(["--host", "127.0.0.1", "--port"])
    .arg(m_port.to_string())
    .current_dir(tmp)
    .env("MLFLOW_DISABLE_TELEMETRY", "true");
    say(&format!("starting MLflow on 127.0.0.1:{m_port}"));
    let (mut mlflow, t0) = Server::spawn("MLflow", 1, cmd, m_port, tmp.join("mlflow.log"))?;
    let m_start = mlflow.wait_healthy(t0, Duration::from_secs(180))?;
    say(&format!(
        "MLflow answered /health after {m_start:.1} s; waiting until it is idle"
    ));
    let (m0, m_wait) = settle(mlflow.pgid(), Duration::from_secs(120));
    say(&format!(
        "started: Atelier {a_start:.3} s, {:.1} MiB in {} process(es); MLflow {m_start:.1} s, {:.0} MiB in {} processes (idle {m_wait:.0} s later)",
        a0.rss_mib, a0.procs, m0.rss_mib, m0.procs
    ));
    rep.row(
        "start-up (spawn → /health 200)",
        Unit::Secs,
        val(a_start),
        val(m_start),
    );
    rep.row(
        "idle RSS before load (process tree)",
        Unit::MiB,
        val(a0.rss_mib),
        val(m0.rss_mib),
    );
    rep.note_last(Some(format!(
        "Atelier {} process(es), MLflow {} processes; read once each server was idle (Atelier {a_wait:.0} s, MLflow {m_wait:.0} s after /health)",
        a0.procs, m0.procs
    )));

    let servers: [(&str, u16); 2] = [("Atelier", a_port), ("MLflow", m_port)];
    let mut exps: Vec<HashMap<&str, String>> = Vec::new();
    for (name, port) in servers {
        let mut h = Http::new(port, short_timeout);
        let mut e = HashMap::new();
        for x in ["ingest", "raw", "history", "search"] {
            let id = create_experiment(&mut h, &format!("bench-{x}"))
                .map_err(|err| format!("{name}: {err}"))?;
            e.insert(x, id);
        }
        exps.push(e);
    }

    // ---- log-batch ingest: 1000 metrics a request (10 keys × 100 steps)
    for (conns, reqs, caps) in [
        (plan.conns, plan.batch_req, plan.batch_cap),
        (1, plan.batch1_req, plan.batch1_cap),
    ] {
        let mut ingest = [None, None];
        let mut notes = Vec::new();
        for (s, (name, port)) in servers.iter().enumerate() {
            let mut h = Http::new(*port, short_timeout);
            let runs: Vec<String> = (0..conns)
                .map(|c| {
                    create_run(
                        &mut h,
                        &exps[s]["ingest"],
                        &format!("ingest-{c}"),
                        now_ms(),
                        &[],
                    )
                })
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{name}: {e}"))?;
            say(&format!(
                "{name}: log-batch ingest, up to {} requests × 1000 metrics over {} connections",
                reqs[s], conns
            ));
            let tpl = IngestTemplate::new(now_ms());
            let job = |h: &mut Http, i: usize| {
                let body = tpl.body(&runs[i % runs.len()], (i / runs.len()) as i64);
                expect_ok(h.post(&format!("{API}/runs/log-batch"), &body), "log-batch").map(|_| ())
            };
            let db = [ATELIER_DB, MLFLOW_DB][s];
            let before = pg.map(|p| settled_stats(p, db)).transpose()?;
            let l = run_load(
                *port,
                conns,
                reqs[s],
                Duration::from_secs(caps[s]),
                timeout,
                &job,
            );
            say(&format!(
                "{name}: {} requests in {:.2} s → {:.0} points/s",
                l.ok,
                l.secs,
                l.rate(1000.0)
            ));
            if let (Some(p), Some(before)) = (pg, before)
                && l.ok > 0
            {
                let d = settled_stats(p, db)?.since(before);
                let per = |x: u64| x as f64 / l.ok as f64;
                let line = format!(
                    "{name} per request on PostgreSQL: {:.1} transactions, {:.0} rows written, {:.0} rows read",
                    per(d.xacts),
                    per(d.written),
                    per(d.read)
                );
                say(&line);
                notes.push(Some(line));
            }
            ingest[s] = val(l.rate(1000.0));
            notes.push(l.error_note().map(|n| format!("{name}: {n}")));
            if s == 0 {
                notes.push(Some(format!("Atelier {} requests", l.ok)));
            } else {
                notes.push(Some(format!("MLflow {} requests", l.ok)));
            }
        }
        rep.row(
            format!(
                "log-batch ingest (1000 metrics/request, {conns} conn{})",
                if conns == 1 { "" } else { "s" }
            ),
            Unit::Rate("points/s"),
            ingest[0],
            ingest[1],
        );
        rep.note_last(Some(
            notes.into_iter().flatten().collect::<Vec<_>>().join(", "),
        ));
    }

    // ---- single log-metric over raw HTTP, one keep-alive connection
    let mut raw = [None, None];
    let mut raw_p50 = [None, None];
    let mut notes = Vec::new();
    for (s, (name, port)) in servers.iter().enumerate() {
        let mut h = Http::new(*port, short_timeout);
        let run = create_run(&mut h, &exps[s]["raw"], "raw-log-metric", now_ms(), &[])
            .map_err(|e| format!("{name}: {e}"))?;
        say(&format!(
            "{name}: up to {} raw log-metric requests on one connection",
            plan.raw_calls[s]
        ));
        let job = |h: &mut Http, i: usize| {
            let body = format!(
                "{{\"run_id\":\"{run}\",\"run_uuid\":\"{run}\",\"key\":\"loss\",\"value\":{:?},\"timestamp\":{},\"step\":{i}}}",
                1.0 / (i + 1) as f64,
                now_ms()
            );
            expect_ok(
                h.post(&format!("{API}/runs/log-metric"), &body),
                "log-metric",
            )
            .map(|_| ())
        };
        let mut l = run_load(
            *port,
            1,
            plan.raw_calls[s],
            Duration::from_secs(plan.raw_cap[s]),
            timeout,
            &job,
        );
        let p50 = median(&mut l.latencies) * 1000.0;
        say(&format!(
            "{name}: {} calls in {:.2} s → {:.0}/s, p50 {p50:.2} ms",
            l.ok,
            l.secs,
            l.rate(1.0)
        ));
        raw[s] = val(l.rate(1.0));
        raw_p50[s] = val(p50);
        notes.push(l.error_note().map(|n| format!("{name}: {n}")));
        notes.push(Some(format!("{name} {} calls", l.ok)));
    }
    rep.row(
        "log-metric, raw HTTP, 1 keep-alive conn",
        Unit::Rate("points/s"),
        raw[0],
        raw[1],
    );
    rep.note_last(Some(
        notes.into_iter().flatten().collect::<Vec<_>>().join(", "),
    ));
    rep.row(
        "log-metric latency p50, raw HTTP",
        Unit::Millis,
        raw_p50[0],
        raw_p50[1],
    );

    // ---- the real Python client: mlflow.log_metric in a sync loop
    let mut client = [None, None];
    let mut notes = Vec::new();
    for (s, (name, port)) in servers.iter().enumerate() {
        say(&format!(
            "{name}: up to {} × mlflow.log_metric through the real Python client",
            plan.client_calls[s]
        ));
        let out = run_python(
            python,
            &scripts.join("client_log_metric.py"),
            &[
                "--tracking-uri".into(),
                format!("http://127.0.0.1:{port}"),
                "--calls".into(),
                plan.client_calls[s].to_string(),
                "--max-seconds".into(),
                plan.client_cap[s].to_string(),
            ],
        );
        match out {
            Ok(out) => {
                let out = out.lines().last().unwrap_or("").to_string();
                let rate = json_f64(&out, "points_per_s");
                let calls = json_f64(&out, "calls").unwrap_or(0.0);
                say(&format!("{name}: {}", out.trim()));
                client[s] = rate.and_then(val);
                notes.push(format!("{name} {calls:.0} calls"));
            }
            Err(e) => {
                say(&format!("{name}: client run failed: {e}"));
                notes.push(format!("{name} failed: {}", short(&e)));
            }
        }
    }
    rep.row(
        "mlflow.log_metric, real Python client (sync)",
        Unit::Rate("points/s"),
        client[0],
        client[1],
    );
    rep.note_last(Some(notes.join(", ")));

    // ---- metric history: N points of one metric, read back in pages of 25,000
    let n_hist = plan.history_points;
    let mut hist = [None, None];
    let mut notes = Vec::new();
    for (s, (name, port)) in servers.iter().enumerate() {
        let mut h = Http::new(*port, timeout);
        let run = create_run(&mut h, &exps[s]["history"], "history", now_ms(), &[])
            .map_err(|e| format!("{name}: {e}"))?;
        say(&format!(
            "{name}: logging {n_hist} points of one metric (log-batch)"
        ));
        let base = now_ms();
        let job = |h: &mut Http, i: usize| {
            let lo = i * 1000;
            let hi = (lo + 1000).min(n_hist);
            let body = batch_body(
                &run,
                (lo..hi).map(|st| {
                    (
                        "hist".to_string(),
                        (st as f64 * 1e-3).sin(),
                        base + st as i64,
                        st as i64,
                    )
                }),
                &[],
            );
            expect_ok(h.post(&format!("{API}/runs/log-batch"), &body), "log-batch").map(|_| ())
        };
        let l = run_load(
            *port,
            plan.conns,
            n_hist.div_ceil(1000),
            Duration::from_secs(3600),
            timeout,
            &job,
        );
        if l.errors > 0 {
            notes.push(format!(
                "{name}: history logging: {}",
                l.error_note().unwrap_or_default()
            ));
        }
        say(&format!(
            "{name}: logged in {:.2} s; reading get-history pages",
            l.secs
        ));
        let read = |h: &mut Http| -> Result<(usize, f64), String> {
            let t = Instant::now();
            let mut token: Option<String> = None;
            let mut n = 0;
            loop {
                let mut path = format!(
                    "{API}/metrics/get-history?run_id={run}&run_uuid={run}&metric_key=hist&max_results=25000"
                );
                if let Some(tok) = &token {
                    let _ = write!(path, "&page_token={}", url_encode(tok));
                }
                let body = match h.get(&path) {
                    Err(e) if is_timeout(&e) => return Err("timeout".into()),
                    r => expect_ok(r, "get-history")?,
                };
                n += body.matches("\"step\"").count();
                token = field_str(&body, "next_page_token").filter(|t| !t.is_empty());
                if token.is_none() {
                    break;
                }
            }
            Ok((n, t.elapsed().as_secs_f64()))
        };
        let mut times = Vec::new();
        let mut timed_out = false;
        for rep_i in 0..3 {
            match read(&mut h) {
                Ok((n, secs)) => {
                    if n != n_hist {
                        notes.push(format!("{name} returned {n} of {n_hist} points"));
                    }
                    times.push(secs);
                    if rep_i == 0 && secs > 10.0 {
                        break;
                    }
                }
                Err(e) if e == "timeout" => {
                    timed_out = true;
                    break;
                }
                Err(e) => return Err(format!("{name}: {e}")),
            }
        }
        hist[s] = if timed_out && times.is_empty() {
            Some(Val {
                v: plan.timeout as f64,
                at_least: true,
            })
        } else {
            let reps = times.len();
            let m = median(&mut times);
            say(&format!(
                "{name}: get-history median {m:.3} s over {reps} read(s)"
            ));
            val(m)
        };
    }
    rep.row(
        format!(
            "get-history, {} points in pages of 25k",
            fmt_num(n_hist as f64)
        ),
        Unit::Secs,
        hist[0],
        hist[1],
    );
    rep.note_last((!notes.is_empty()).then(|| notes.join(", ")));

    // ---- search_runs over growing experiments
    let mut have = [0usize, 0usize];
    let mut populate_secs = [0.0f64, 0.0f64];
    let mut populated_api = [0usize, 0usize];
    let mut bulk_secs = 0.0;
    for &size in &opts.sizes {
        for (s, (name, port)) in servers.iter().enumerate() {
            let exp = exps[s]["search"].clone();
            let from = have[s];
            let api_to = if s == 0 {
                size
            } else {
                size.min(plan.mlflow_api_runs).max(from)
            };
            if api_to > from {
                say(&format!(
                    "{name}: creating runs {from}..{api_to} through the API ({} conns)",
                    plan.conns
                ));
                let job = |h: &mut Http, i: usize| create_search_run(h, &exp, (from + i) as u64);
                let l = run_load(
                    *port,
                    plan.conns,
                    api_to - from,
                    Duration::from_secs(24 * 3600),
                    timeout,
                    &job,
                );
                if l.errors > 0 {
                    return Err(format!(
                        "{name}: populating runs: {}",
                        l.error_note().unwrap_or_default()
                    ));
                }
                populate_secs[s] += l.secs;
                populated_api[s] += l.ok;
                say(&format!(
                    "{name}: {} runs in {:.1} s ({:.0} runs/s)",
                    l.ok,
                    l.secs,
                    l.ok as f64 / l.secs
                ));
            }
            if s == 1 && size > api_to {
                say(&format!(
                    "MLflow: bulk-loading runs {api_to}..{size} into its {} (populate_mlflow.py)",
                    if pg.is_some() { "PostgreSQL" } else { "SQLite" }
                ));
                let t = Instant::now();
                let (flag, target) = match pg {
                    Some(pg) => ("--pg-url", pg.mlflow_url.clone()),
                    None => ("--db", db.display().to_string()),
                };
                let out = run_python(
                    python,
                    &scripts.join("populate_mlflow.py"),
                    &[
                        flag.into(),
                        target,
                        "--experiment-id".into(),
                        exp.clone(),
                        "--from".into(),
                        api_to.to_string(),
                        "--to".into(),
                        size.to_string(),
                        "--base-time".into(),
                        BASE_TIME.to_string(),
                    ],
                )?;
                bulk_secs += t.elapsed().as_secs_f64();
                say(&format!("MLflow: {}", out.trim()));
            }
            have[s] = size;
        }
        if let Some(pg) = pg {
            // the planner's statistics for the new rows, on both (autovacuum's
            // ANALYZE would come on its own schedule)
            for db in [ATELIER_DB, MLFLOW_DB] {
                pg.cluster.psql(db, "ANALYZE")?;
            }
        }

        let expected = RunData::expected_hits(size).min(SEARCH_MAX);
        let mut med = [None, None];
        let mut notes = Vec::new();
        for (s, (name, port)) in servers.iter().enumerate() {
            let body = format!(
                "{{\"experiment_ids\":[{}],\"filter\":{},\"order_by\":[{}],\"max_results\":{SEARCH_MAX},\"run_view_type\":\"ACTIVE_ONLY\"}}",
                json_str(&exps[s]["search"]),
                json_str(SEARCH_FILTER),
                json_str(SEARCH_ORDER)
            );
            let mut times = Vec::new();
            let mut timed_out = false;
            let mut warm_only = false;
            // Call 0 is an untimed warm-up (caches, lazy imports), checked for
            // its hit count; then the timed calls.
            for i in 0..=plan.search_reps[s] {
                // A fresh connection for a call that may time out.
                let mut h = Http::new(*port, timeout);
                let t = Instant::now();
                match h.post(&format!("{API}/runs/search"), &body) {
                    Err(e) if is_timeout(&e) => {
                        timed_out = true;
                        break;
                    }
                    r => {
                        let b = expect_ok(r, "runs/search").map_err(|e| format!("{name}: {e}"))?;
                        let secs = t.elapsed().as_secs_f64();
                        let hits = b.matches("\"run_uuid\"").count();
                        if i == 0 {
                            if hits != expected {
                                notes.push(format!(
                                    "{name} returned {hits} runs, expected {expected}"
                                ));
                            }
                            say(&format!(
                                "{name}: search over {size} runs: {hits} runs in {secs:.3} s (warm-up)"
                            ));
                            if secs > 30.0 {
                                // Too slow to repeat: the warm-up is the measurement.
                                times.push(secs);
                                warm_only = true;
                                break;
                            }
                            continue;
                        }
                        times.push(secs);
                        // Slow servers: fewer repetitions.
                        if secs * i as f64 > 30.0 {
                            break;
                        }
                    }
                }
            }
            med[s] = if timed_out && times.is_empty() {
                say(&format!("{name}: search over {size} runs timed out"));
                notes.push(format!("{name} timed out after {} s", plan.timeout));
                Some(Val {
                    v: plan.timeout as f64,
                    at_least: true,
                })
            } else {
                let n = times.len();
                notes.push(if warm_only {
                    format!("{name} a single (cold) call")
                } else {
                    format!("{name} median of {n} after a warm-up call")
                });
                val(median(&mut times))
            };
        }
        rep.row(
            format!("search_runs over {} runs", fmt_num(size as f64)),
            Unit::Secs,
            med[0],
            med[1],
        );
        rep.note_last(Some(format!("{expected} hits; {}", notes.join(", "))));
    }
    let a_runs_rate = populated_api[0] as f64 / populate_secs[0].max(1e-9);
    let m_runs_rate = populated_api[1] as f64 / populate_secs[1].max(1e-9);
    rep.row(
        format!(
            "create run + log-batch (5 metrics, 5 params), {} conns",
            plan.conns
        ),
        Unit::Rate("runs/s"),
        val(a_runs_rate),
        val(m_runs_rate),
    );
    rep.note_last(Some(format!(
        "Atelier {} runs, MLflow {} runs through the API",
        populated_api[0], populated_api[1]
    )));

    // ---- idle memory after the load
    let (a1, _) = settle(atelier.pgid(), Duration::from_secs(60));
    let (m1, _) = settle(mlflow.pgid(), Duration::from_secs(60));
    rep.row(
        "idle RSS after load (process tree)",
        Unit::MiB,
        val(a1.rss_mib),
        val(m1.rss_mib),
    );
    rep.note_last(Some(format!(
        "Atelier {} process(es), MLflow {} processes",
        a1.procs, m1.procs
    )));
    atelier.stop();
    mlflow.stop();

    let max_size = opts.sizes.last().copied().unwrap_or(0);
    rep.notes.push(format!(
        "Machine: {} CPUs (nproc), {}; load average {} before, {} after.",
        nproc(),
        cpu_model(),
        load_before,
        loadavg()
    ));
    rep.notes.push(
        "Both servers ran in this same run on this same machine, on 127.0.0.1, measured one after the other for each row; ratio = how many times better Atelier is (Atelier ÷ MLflow for rates, MLflow ÷ Atelier for times and memory).".into(),
    );
    match pg {
        None => rep.notes.push(format!(
            "MLflow {MLFLOW_VERSION}: `mlflow server` with a sqlite backend and default workers. Search data: Atelier's {max_size} runs were all created through its HTTP API; MLflow's first {} runs through its API, the other {} BULK-LOADED straight into its SQLite schema with SQL ({:.0} s; bench/tracking/populate_mlflow.py), the same rows its store writes. Filter `{SEARCH_FILTER}`, order_by `{SEARCH_ORDER}`, max_results {SEARCH_MAX}.",
            populated_api[1],
            max_size.saturating_sub(populated_api[1]),
            bulk_secs
        )),
        Some(pg) => rep.notes.push(format!(
            "Both on one PostgreSQL {} cluster on 127.0.0.1 (Debian's server; trust auth, C locale, fsync and full-page writes on as deployed, otherwise PostgreSQL's defaults), started by this command and deleted afterwards: Atelier with `--database-url postgres://…/{ATELIER_DB}`, MLflow {MLFLOW_VERSION} with `mlflow server --backend-store-uri postgresql://…/{MLFLOW_DB}` (psycopg2-binary, default workers). Search data: Atelier's {max_size} runs were all created through its HTTP API; MLflow's first {} runs through its API, the other {} BULK-LOADED straight into its PostgreSQL schema with SQL ({:.0} s; bench/tracking/populate_mlflow.py --pg-url), the same rows its store writes; both databases ANALYZEd before each search size. Filter `{SEARCH_FILTER}`, order_by `{SEARCH_ORDER}`, max_results {SEARCH_MAX}.",
            pg.version,
            populated_api[1],
            max_size.saturating_sub(populated_api[1]),
            bulk_secs
        )),
    }
    rep.notes.push(format!(
        "Memory: sum of VmRSS over each server's process group (/proc){}. Raw HTTP rows use a Rust keep-alive client with TCP_NODELAY; the Python-client row runs bench/tracking/client_log_metric.py (client-side time included).",
        if pg.is_some() {
            "; PostgreSQL's own processes, which both share, are in neither"
        } else {
            ""
        }
    ));
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields() {
        let b = r#"{"run": {"info": {"run_id": "abc", "x": 1}}, "next_page_token": "eyJv/ZQ=="}"#;
        assert_eq!(field_str(b, "run_id").as_deref(), Some("abc"));
        assert_eq!(
            field_str(b, "next_page_token").as_deref(),
            Some("eyJv/ZQ==")
        );
        assert_eq!(field_str(b, "nope"), None);
        assert_eq!(json_str("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(url_encode("a+b/="), "a%2Bb%2F%3D");
        assert_eq!(
            json_f64(r#"{"calls": 5, "points_per_s": 12.5e1}"#, "points_per_s"),
            Some(125.0)
        );
    }

    #[test]
    fn ingest_body() {
        let b = IngestTemplate::new(7).body("abc", 2);
        assert!(b.starts_with(
            r#"{"run_id":"abc","metrics":[{"key":"loss0","value":1.0,"timestamp":7,"step":200},"#
        ));
        assert!(b.ends_with(r#"{"key":"loss9","value":0.001,"timestamp":7,"step":299}]}"#));
        assert_eq!(b.matches("\"key\"").count(), 1000);
        let mut s = String::new();
        push_int(&mut s, -1_700_000_000_000);
        push_int(&mut s, 0);
        assert_eq!(s, "-17000000000000");
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_num(1_234_567.4), "1,234,567");
        assert_eq!(fmt_num(999.0), "999");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_val(val(0.0123), Unit::Secs), "12.3 ms");
        let r = Row {
            name: "x".into(),
            unit: Unit::Secs,
            vals: [
                val(0.5),
                Some(Val {
                    v: 120.0,
                    at_least: true,
                }),
            ],
            note: None,
        };
        assert_eq!(fmt_ratio(&r), "> 240×");
    }

    #[test]
    fn run_data_matches_python() {
        // Pinned so that populate_mlflow.py and this file cannot drift apart:
        // python3 -c 'from populate_mlflow import *; print(splitmix64(0), metric(0, 0), metric(5, 2), param(3, 1))'
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(RunData::metric(0, 0), 0.8833108082136426);
        assert_eq!(RunData::metric(5, 2), 0.054320526433248806);
        assert_eq!(RunData::param(3, 1), "3");
    }

    #[test]
    fn args() {
        let o = parse_args(&["--quick".into()]).unwrap().unwrap();
        assert_eq!(o.sizes, vec![1000]);
        let o = parse_args(&["--sizes=100000,1000".into()])
            .unwrap()
            .unwrap();
        assert_eq!(o.sizes, vec![1000, 100_000]);
        assert!(parse_args(&["--bogus".into()]).is_err());
        assert!(!o.postgres, "SQLite stays the default");
        let o = parse_args(&["--database".into(), "postgres".into(), "--quick".into()])
            .unwrap()
            .unwrap();
        assert!(o.postgres && o.quick && o.readme);
        let o = parse_args(&["--database=sqlite".into(), "--no-readme".into()])
            .unwrap()
            .unwrap();
        assert!(!o.postgres && !o.readme);
        let e = parse_args(&["--database=mysql".into()]).err().unwrap();
        assert!(e.contains("sqlite or postgres"), "{e}");
    }

    #[test]
    fn readme_block_judges_the_targets() {
        let mut rep = Report::default();
        rep.row(
            "log-batch ingest (1000 metrics/request, 4 conns)",
            Unit::Rate("points/s"),
            val(60_000.0),
            val(1000.0),
        );
        rep.row(
            "log-batch ingest (1000 metrics/request, 1 conn)",
            Unit::Rate("points/s"),
            val(40_000.0),
            val(1000.0),
        );
        rep.row(
            "search_runs over 10,000 runs",
            Unit::Secs,
            val(0.01),
            val(0.5),
        );
        rep.note_last(Some("n hits".into()));
        let o = parse_args(&["--database=postgres".into()])
            .unwrap()
            .unwrap();
        let md = markdown_postgres(&rep, &o, "mlflow, version 3.17.2", 12.0);
        assert!(md.contains("**on PostgreSQL**"), "{md}");
        assert!(
            md.contains("60.0× ✓ at 4 connections, 40.0× ✗ (missed) at 1"),
            "{md}"
        );
        assert!(md.contains("search over 10k runs ≥ 20× — 50.0× ✓"), "{md}");
        assert!(md.contains("| search_runs over 10,000 runs "), "{md}");
        assert!(
            md.contains("- search_runs over 10,000 runs: n hits"),
            "{md}"
        );
    }
}
