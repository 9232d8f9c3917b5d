//! `cargo xtask bench jobs`: Atelier's job system against Ray's Jobs API,
//! both started by the benchmark in the same run on this machine, each
//! measured alone, through their HTTP APIs, printed as ratios.
//!
//! - **Submit → first output line**: the command prints its own start time
//!   (`python3 -c "import time; print(time.time_ns(), flush=True)"`), the
//!   client records the wall clock just before the submit call; latency is
//!   the printed time minus the submit time (one clock, one machine). Jobs run
//!   one after another after a warm-up; median and p90. Before each job the
//!   benchmark spawns the same command itself: that floor (Python's own
//!   start-up, under the same load) is subtracted to give the platform's part.
//! - **Throughput**: N jobs whose command is `true`, submitted as fast as the
//!   API answers, timed until the job list shows all of them terminal.
//! - **CPU and memory**: the job system's process tree (`/proc`: utime +
//!   stime, with reaped children's, and RSS) at rest, and the extra CPU while
//!   one `sleep` job runs (Atelier: the server following the job, logging its
//!   system metrics every 500 ms, and the job's supervisor; Ray: its head
//!   processes, the job's supervisor actor and its watcher).
//! - **Sampling cost**: `crates/sysmetrics/examples/sample_cost.rs`, the
//!   sampler alone on a ten-process tree at 2 Hz, as a share of one core.
//!
//! Ray 2.60.0 (`ray[default]`, from `bench/jobs/requirements.txt` in
//! `target/bench-venv-jobs`) runs as a head started here with
//! `ray start --head --block`, on 127.0.0.1 and free ports, in a session of
//! its own; it is stopped by SIGTERM to that `ray start` (Ray drains and stops
//! its processes), then SIGKILL to whatever of its session and process tree
//! is left — never `ray stop`, which kills every Ray process on the host.
//! Plain std, like the other benchmarks: HTTP/1.1 over `TcpStream`, a small
//! JSON reader, `/proc` for processes.

use crate::common::{
    self, SIGKILL, SIGTERM, cpu_model, ensure_venv, forget_group, free_port, kill,
    kill_groups_on_signal, lead_group, loadavg, nproc, root, run_checked, say, tail_str,
};
use crate::json::{Json, json_str};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: cargo xtask bench jobs [options]

Starts Atelier (target/release/atelier serve) and a local Ray head (Ray's
Jobs API, ray[default] 2.60.0 in target/bench-venv-jobs from
bench/jobs/requirements.txt), one after the other, on 127.0.0.1, and measures
through each HTTP API: submit -> first output line latency of a one-line
Python command, throughput of empty jobs, the job system's CPU and memory at
rest and with one idle job running; plus Atelier's per-job system-metric
sampling cost (crates/sysmetrics/examples/sample_cost.rs). Prints one table
of ratios, writes target/bench-jobs.md and .json, and replaces the README's
block between <!-- bench:jobs --> and <!-- /bench:jobs -->.

options:
  --latency-jobs N     sequential jobs for the latency figures [default 30]
  --warmup N           jobs run before measuring, per side [default 3]
  --jobs N             empty jobs for the throughput figure [default 200]
  --cpu-seconds S      length of each CPU window [default 15]
  --skip-ray           only Atelier (no ratios)
  --python PATH        a Python with ray[default] installed (its `ray` is
                       taken from the same directory); skips the venv
  --skip-build         use the existing release binaries
  --no-readme          do not touch README.md
  --keep               keep Ray's temporary folder and Atelier's data
  -h, --help           this text";

const RAY_REQUIREMENT: &str = "ray[default] 2.60.0";

struct Opts {
    latency_jobs: usize,
    warmup: usize,
    jobs: usize,
    cpu_seconds: f64,
    skip_ray: bool,
    python: Option<PathBuf>,
    skip_build: bool,
    readme: bool,
    keep: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        latency_jobs: 30,
        warmup: 3,
        jobs: 200,
        cpu_seconds: 15.0,
        skip_ray: false,
        python: None,
        skip_build: false,
        readme: true,
        keep: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let count = |v: String, what: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{what} N (a positive whole number)"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--latency-jobs" => o.latency_jobs = count(val()?, "--latency-jobs")?,
            "--warmup" => {
                o.warmup = val()?.parse().map_err(|_| "--warmup N")?;
            }
            "--jobs" => o.jobs = count(val()?, "--jobs")?,
            "--cpu-seconds" => {
                o.cpu_seconds = val()?
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s >= 1.0)
                    .ok_or("--cpu-seconds S (at least 1)")?
            }
            "--skip-ray" => o.skip_ray = true,
            "--python" => o.python = Some(PathBuf::from(val()?)),
            "--skip-build" => o.skip_build = true,
            "--no-readme" => o.readme = false,
            "--keep" => o.keep = true,
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    Ok(Some(o))
}

// ---------------------------------------------------------------- signals

unsafe extern "C" {
    fn setsid() -> i32;
}

// ---------------------------------------------------------------- /proc

/// One process as `/proc/<pid>/stat` shows it.
#[derive(Clone)]
struct ProcStat {
    pid: i32,
    ppid: i32,
    sid: i32,
    /// Start time in clock ticks since boot: (pid, start) names a process.
    start: u64,
    /// utime + stime + cutime + cstime (reaped children count), ticks.
    ticks: u64,
    rss_kib: u64,
}

fn read_stat(pid: i32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt
    // cminflt majflt cmajflt utime stime cutime cstime priority nice threads
    // itrealvalue starttime vsize rss
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    Some(ProcStat {
        pid,
        ppid: num(1) as i32,
        sid: num(3) as i32,
        start: num(19) as u64,
        ticks: (num(11) + num(12) + num(13) + num(14)).max(0) as u64,
        rss_kib: num(21).max(0) as u64 * 4,
    })
}

fn all_procs() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter_map(read_stat)
        .collect()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------- processes we own

/// A process we started and everything it started: its descendants, its
/// session when it leads one, and processes whose command line names our
/// private folder (`marker`).
struct Owned {
    name: &'static str,
    child: Child,
    slot: usize,
    /// Whether the leader runs in a session of its own.
    session: bool,
    marker: Option<String>,
    log: PathBuf,
    /// SIGTERM only the leader (it stops its own), not every member.
    term_leader_only: bool,
    stopped: bool,
}

impl Owned {
    fn spawn(
        name: &'static str,
        slot: usize,
        mut cmd: Command,
        log: PathBuf,
        session: bool,
        marker: Option<String>,
    ) -> Result<Owned, String> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        if session {
            // SAFETY: setsid is async-signal-safe; nothing else runs in the child.
            unsafe {
                cmd.pre_exec(|| {
                    setsid();
                    Ok(())
                });
            }
        } else {
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {name} ({:?}): {e}", cmd.get_program()))?;
        lead_group(slot, child.id() as i32);
        Ok(Owned {
            name,
            child,
            slot,
            session,
            marker,
            log,
            term_leader_only: session,
            stopped: false,
        })
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn check_alive(&mut self) -> Result<(), String> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Err(format!(
                "{} exited ({st}):\n{}",
                self.name,
                tail_str(&std::fs::read_to_string(&self.log).unwrap_or_default())
            ));
        }
        Ok(())
    }

    /// The live members, from one scan of /proc.
    fn members(&self) -> Vec<ProcStat> {
        let procs = all_procs();
        let root = self.pid();
        let mut kids: HashMap<i32, Vec<usize>> = HashMap::new();
        for (i, p) in procs.iter().enumerate() {
            kids.entry(p.ppid).or_default().push(i);
        }
        let mut take: HashSet<usize> = HashSet::new();
        let mut stack: Vec<usize> = procs
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.pid == root
                    || (self.session && p.sid == root)
                    || self
                        .marker
                        .as_deref()
                        .is_some_and(|m| cmdline(p.pid).contains(m))
            })
            .map(|(i, _)| i)
            .collect();
        while let Some(i) = stack.pop() {
            if take.insert(i)
                && let Some(ks) = kids.get(&procs[i].pid)
            {
                stack.extend(ks.iter().copied());
            }
        }
        let mut v: Vec<ProcStat> = take.into_iter().map(|i| procs[i].clone()).collect();
        v.sort_by_key(|p| p.pid);
        v
    }

    /// Total CPU ticks, resident MiB and process count of the members.
    fn usage(&self) -> (u64, f64, usize) {
        let m = self.members();
        let ticks = m.iter().map(|p| p.ticks).sum();
        let rss = m.iter().map(|p| p.rss_kib).sum::<u64>() as f64 / 1024.0;
        (ticks, rss, m.len())
    }

    fn stop(&mut self, grace: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let snapshot = self.members();
        let alive = |p: &ProcStat| read_stat(p.pid).is_some_and(|q| q.start == p.start);
        let signal_one = |p: &ProcStat, sig: i32| {
            if alive(p) {
                unsafe { kill(p.pid, sig) };
            }
        };
        if self.term_leader_only {
            unsafe { kill(self.pid(), SIGTERM) };
        } else {
            for p in &snapshot {
                signal_one(p, SIGTERM);
            }
        }
        let t0 = Instant::now();
        while t0.elapsed() < grace {
            let _ = self.child.try_wait();
            if !snapshot.iter().any(alive) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // whatever is left: the snapshot, and anything started since
        let mut left: Vec<ProcStat> = snapshot.into_iter().filter(alive).collect();
        left.extend(self.members());
        for p in &left {
            signal_one(p, SIGKILL);
        }
        let _ = self.child.wait();
        forget_group(self.slot);
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(45));
    }
}

// ---------------------------------------------------------------- HTTP

/// One HTTP/1.1 request on a fresh loopback connection: (status, body).
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("port {port}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let body = body.unwrap_or("");
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/json\r\n".to_string()
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let (status, payload) = crate::common::parse_http_answer(&buf, &format!("{method} {path}"))?;
    Ok((status, String::from_utf8_lossy(&payload).into_owned()))
}

/// A call that must answer 2xx with JSON.
fn call(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<Json, String> {
    let (st, text) = http(port, method, path, body)?;
    if !(200..300).contains(&st) {
        let mut t = text.trim().to_string();
        t.truncate(400);
        return Err(format!("{method} {path}: HTTP {st}: {t}"));
    }
    Json::parse(&text).map_err(|e| format!("{method} {path}: {e}"))
}

// ---------------------------------------------------------------- the two job APIs

/// What a job runs.
#[derive(Clone, Copy)]
enum Work {
    /// Print the command's own start time (ns since the epoch) and exit.
    PrintTime,
    /// `true`: nothing at all.
    Nothing,
    /// `sleep S`: an idle job that runs until stopped.
    Sleep(u64),
}

const PRINT_TIME: &str = "import time; print(time.time_ns(), flush=True)";

#[derive(PartialEq)]
enum State {
    Waiting,
    Running,
    Succeeded,
    Failed(String),
}

trait JobApi {
    fn label(&self) -> &'static str;
    fn submit(&mut self, work: Work) -> Result<String, String>;
    fn state(&self, id: &str) -> Result<State, String>;
    /// How many of `ids` are terminal, and the failures among them.
    fn terminal(&self, ids: &HashSet<String>) -> Result<(usize, Vec<String>), String>;
    /// The command's output lines.
    fn output(&self, id: &str) -> Result<Vec<String>, String>;
    fn stop(&self, id: &str) -> Result<(), String>;
    /// Where the latency went, from the platform's own timestamps: medians
    /// of (stage, ms after the submit call started), for jobs given as
    /// (id, submit time in ms since the epoch).
    fn stages(&self, _jobs: &[(String, i128)]) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
    /// Medians over finished jobs, ms: how long each held a worker (claim →
    /// ended), and how long its command ran.
    fn holding(&self, _ids: &HashSet<String>) -> Option<(f64, f64)> {
        None
    }
}

struct AtelierApi {
    port: u16,
    python: String,
}

impl JobApi for AtelierApi {
    fn label(&self) -> &'static str {
        "Atelier"
    }

    fn submit(&mut self, work: Work) -> Result<String, String> {
        let cmd: Vec<String> = match work {
            Work::PrintTime => vec![self.python.clone(), "-c".into(), PRINT_TIME.into()],
            Work::Nothing => vec!["true".into()],
            Work::Sleep(s) => vec!["sleep".into(), s.to_string()],
        };
        let cmd: Vec<String> = cmd.iter().map(|c| json_str(c)).collect();
        let body = format!(
            "{{\"kind\":\"processing\",\"spec\":{{\"command\":[{}]}}}}",
            cmd.join(",")
        );
        let v = call(self.port, "POST", "/api/atelier/jobs", Some(&body))?;
        v.get("job")
            .and_then(|j| j.field_str("id"))
            .map(str::to_string)
            .ok_or_else(|| "Atelier's submit answer has no job id".to_string())
    }

    fn state(&self, id: &str) -> Result<State, String> {
        let v = call(self.port, "GET", &format!("/api/atelier/jobs/{id}"), None)?;
        let j = v.get("job").ok_or("no job in the answer")?;
        Ok(atelier_state(j))
    }

    fn terminal(&self, ids: &HashSet<String>) -> Result<(usize, Vec<String>), String> {
        let v = call(self.port, "GET", "/api/atelier/jobs?limit=1000", None)?;
        let mut done = 0;
        let mut failed = Vec::new();
        for j in v.get("jobs").map_or(&[][..], Json::arr) {
            if !j.field_str("id").is_some_and(|id| ids.contains(id)) {
                continue;
            }
            match atelier_state(j) {
                State::Succeeded => done += 1,
                State::Failed(e) => {
                    done += 1;
                    failed.push(e);
                }
                _ => {}
            }
        }
        Ok((done, failed))
    }

    fn output(&self, id: &str) -> Result<Vec<String>, String> {
        let v = call(
            self.port,
            "GET",
            &format!("/api/atelier/jobs/{id}/logs?from=0"),
            None,
        )?;
        Ok(v.get("lines")
            .map_or(&[][..], Json::arr)
            .iter()
            .filter_map(|l| l.field_str("text").map(str::to_string))
            .collect())
    }

    fn stop(&self, id: &str) -> Result<(), String> {
        call(
            self.port,
            "POST",
            &format!("/api/atelier/jobs/{id}/cancel"),
            Some("{}"),
        )
        .map(drop)
    }

    fn stages(&self, jobs: &[(String, i128)]) -> Vec<(&'static str, f64)> {
        let mut stages: [Vec<f64>; 3] = Default::default();
        for (id, t_ms) in jobs {
            let Ok(v) = call(self.port, "GET", &format!("/api/atelier/jobs/{id}"), None) else {
                continue;
            };
            let Some(j) = v.get("job") else { continue };
            if let Some(c) = j.get("created_ms").and_then(Json::num) {
                stages[0].push(c - *t_ms as f64);
            }
            for s in j.get("secondary_statuses").map_or(&[][..], Json::arr) {
                let Some(at) = s.get("at_ms").and_then(Json::num) else {
                    continue;
                };
                match s.field_str("status") {
                    Some("Starting") => stages[1].push(at - *t_ms as f64),
                    Some("Processing") => stages[2].push(at - *t_ms as f64),
                    _ => {}
                }
            }
        }
        [
            "queued (stored)",
            "claimed by a worker",
            "command being launched",
        ]
        .into_iter()
        .zip(stages)
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (n, pct(&v, 50.0)))
        .collect()
    }

    fn holding(&self, ids: &HashSet<String>) -> Option<(f64, f64)> {
        let v = call(self.port, "GET", "/api/atelier/jobs?limit=1000", None).ok()?;
        let (mut held, mut ran) = (Vec::new(), Vec::new());
        for j in v.get("jobs").map_or(&[][..], Json::arr) {
            if !j.field_str("id").is_some_and(|id| ids.contains(id)) {
                continue;
            }
            let num = |x: Option<&Json>| x.and_then(Json::num);
            if let (Some(a), Some(b)) = (num(j.get("started_ms")), num(j.get("ended_ms"))) {
                held.push(b - a);
            }
            let launched = num(j.get("progress").and_then(|p| p.get("started_ms")));
            let exited = num(j
                .get("result")
                .and_then(|r| r.get("exit"))
                .and_then(|e| e.get("ended_ms")));
            if let (Some(a), Some(b)) = (launched, exited) {
                ran.push(b - a);
            }
        }
        (!held.is_empty() && !ran.is_empty()).then(|| (pct(&held, 50.0), pct(&ran, 50.0)))
    }
}

fn atelier_state(j: &Json) -> State {
    match j.field_str("status").unwrap_or("") {
        "succeeded" => State::Succeeded,
        "failed" | "cancelled" => State::Failed(format!(
            "{}: {}",
            j.field_str("status").unwrap_or(""),
            j.field_str("error").unwrap_or("")
        )),
        "running" => State::Running,
        _ => State::Waiting,
    }
}

struct RayApi {
    port: u16,
    python: String,
    seq: u64,
}

impl JobApi for RayApi {
    fn label(&self) -> &'static str {
        "Ray"
    }

    fn submit(&mut self, work: Work) -> Result<String, String> {
        let entry = match work {
            Work::PrintTime => format!("'{}' -c '{PRINT_TIME}'", self.python),
            Work::Nothing => "true".into(),
            Work::Sleep(s) => format!("sleep {s}"),
        };
        self.seq += 1;
        let sid = format!("atelier-bench-{}-{}", std::process::id(), self.seq);
        let body = format!(
            "{{\"entrypoint\":{},\"submission_id\":{}}}",
            json_str(&entry),
            json_str(&sid)
        );
        let v = call(self.port, "POST", "/api/jobs/", Some(&body))?;
        Ok(v.field_str("submission_id").unwrap_or(&sid).to_string())
    }

    fn state(&self, id: &str) -> Result<State, String> {
        let v = call(self.port, "GET", &format!("/api/jobs/{id}"), None)?;
        Ok(ray_state(&v))
    }

    fn terminal(&self, ids: &HashSet<String>) -> Result<(usize, Vec<String>), String> {
        let v = call(self.port, "GET", "/api/jobs/", None)?;
        let mut done = 0;
        let mut failed = Vec::new();
        for j in v.arr() {
            if !j
                .field_str("submission_id")
                .is_some_and(|id| ids.contains(id))
            {
                continue;
            }
            match ray_state(j) {
                State::Succeeded => done += 1,
                State::Failed(e) => {
                    done += 1;
                    failed.push(e);
                }
                _ => {}
            }
        }
        Ok((done, failed))
    }

    fn output(&self, id: &str) -> Result<Vec<String>, String> {
        let v = call(self.port, "GET", &format!("/api/jobs/{id}/logs"), None)?;
        Ok(v.field_str("logs")
            .unwrap_or("")
            .lines()
            .map(str::to_string)
            .collect())
    }

    fn stop(&self, id: &str) -> Result<(), String> {
        call(
            self.port,
            "POST",
            &format!("/api/jobs/{id}/stop"),
            Some("{}"),
        )
        .map(drop)
    }
}

fn ray_state(j: &Json) -> State {
    match j.field_str("status").unwrap_or("") {
        "SUCCEEDED" => State::Succeeded,
        s @ ("FAILED" | "STOPPED") => {
            State::Failed(format!("{s}: {}", j.field_str("message").unwrap_or("")))
        }
        "RUNNING" => State::Running,
        _ => State::Waiting,
    }
}

// ---------------------------------------------------------------- measurements

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn wait_state(
    api: &dyn JobApi,
    id: &str,
    want: fn(&State) -> bool,
    limit: Duration,
) -> Result<State, String> {
    let t0 = Instant::now();
    loop {
        let s = api.state(id)?;
        if want(&s) {
            return Ok(s);
        }
        if t0.elapsed() > limit {
            return Err(format!(
                "{} job {id} did not get there within {} s",
                api.label(),
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_terminal(s: &State) -> bool {
    matches!(s, State::Succeeded | State::Failed(_))
}

/// The first output line that is a timestamp in ns (Ray's log starts with its
/// own lines).
fn printed_ns(lines: &[String]) -> Option<i128> {
    lines.iter().find_map(|l| {
        let t = l.trim();
        (t.len() >= 18 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    })
}

/// One job printing its start time: (submit call ms, submit → first line ms).
fn one_latency(api: &mut dyn JobApi) -> Result<(f64, f64, String, i128), String> {
    let t_ns = now_ns();
    let t0 = Instant::now();
    let id = api.submit(Work::PrintTime)?;
    let submit_ms = t0.elapsed().as_secs_f64() * 1e3;
    if let State::Failed(e) = wait_state(&*api, &id, is_terminal, Duration::from_secs(180))? {
        return Err(format!("{} job {id} failed: {e}", api.label()));
    }
    let lines = api.output(&id)?;
    let printed = printed_ns(&lines).ok_or_else(|| {
        format!(
            "{} job {id}: no timestamp in its output: {:?}",
            api.label(),
            lines
        )
    })?;
    Ok((
        submit_ms,
        (printed - t_ns) as f64 / 1e6,
        id,
        t_ns / 1_000_000,
    ))
}

/// N empty jobs submitted back to back: jobs/s, wall and submit seconds.
fn throughput(api: &mut dyn JobApi, n: usize, side: &mut Side) -> Result<(), String> {
    let t0 = Instant::now();
    let mut ids = HashSet::new();
    for _ in 0..n {
        ids.insert(api.submit(Work::Nothing)?);
    }
    let submitted = t0.elapsed().as_secs_f64();
    let limit = Duration::from_secs(120 + 5 * n as u64);
    let mut last_print = Instant::now();
    loop {
        let (done, failed) = api.terminal(&ids)?;
        if !failed.is_empty() {
            return Err(format!(
                "{} of {}'s empty jobs failed, e.g. {}",
                failed.len(),
                api.label(),
                failed[0]
            ));
        }
        if done == n {
            let wall = t0.elapsed().as_secs_f64();
            side.thr_rate = n as f64 / wall;
            side.thr_wall = wall;
            side.thr_submit_s = submitted;
            side.holding = api.holding(&ids);
            return Ok(());
        }
        if t0.elapsed() > limit {
            return Err(format!(
                "{}: only {done} of {n} empty jobs ended within {} s",
                api.label(),
                limit.as_secs()
            ));
        }
        if last_print.elapsed() > Duration::from_secs(30) {
            say(&format!("{}: {done} of {n} jobs done", api.label()));
            last_print = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Percent of one core the owned tree used over `secs`.
fn cpu_window(p: &Owned, secs: f64) -> f64 {
    let (a, _, _) = p.usage();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (b, _, _) = p.usage();
    let wall = t0.elapsed().as_secs_f64();
    // clock ticks are 1/100 s on Linux (USER_HZ)
    (b as f64 - a as f64) / 100.0 / wall * 100.0
}

#[derive(Default)]
struct Side {
    version: String,
    start_s: f64,
    submit_ms: Vec<f64>,
    latency_ms: Vec<f64>,
    /// The same command spawned by the benchmark, before each job, ms.
    direct_ms: Vec<f64>,
    thr_rate: f64,
    thr_wall: f64,
    thr_submit_s: f64,
    idle_cpu: f64,
    job_cpu: f64,
    rss_mib: f64,
    procs: usize,
    /// Atelier only: medians of submit → queued / claimed / launched, ms.
    stages: Vec<(&'static str, f64)>,
    /// Atelier only: medians of worker-held and command-ran ms per empty job.
    holding: Option<(f64, f64)>,
}

fn measure(
    api: &mut dyn JobApi,
    p: &mut Owned,
    o: &Opts,
    python: &str,
    side: &mut Side,
) -> Result<(), String> {
    let name = api.label();
    say(&format!("{name}: warm-up ({} jobs)", o.warmup));
    for _ in 0..o.warmup {
        one_latency(api)?;
        p.check_alive()?;
    }
    say(&format!(
        "{name}: submit -> first line, {} jobs one after another",
        o.latency_jobs
    ));
    let mut ids = Vec::new();
    for _ in 0..o.latency_jobs {
        side.direct_ms.push(direct_once(python)?);
        let (s, l, id, t_ms) = one_latency(api)?;
        side.submit_ms.push(s);
        side.latency_ms.push(l);
        ids.push((id, t_ms));
    }
    say(&format!(
        "{name}: median {:.1} ms, p90 {:.1} ms (submit call median {:.1} ms; spawned directly {:.1} ms)",
        pct(&side.latency_ms, 50.0),
        pct(&side.latency_ms, 90.0),
        pct(&side.submit_ms, 50.0),
        pct(&side.direct_ms, 50.0)
    ));
    side.stages = api.stages(&ids);
    p.check_alive()?;

    say(&format!("{name}: {} empty jobs", o.jobs));
    throughput(api, o.jobs, side)?;
    say(&format!(
        "{name}: {:.2} jobs/s ({} jobs in {:.1} s, submitted in {:.2} s)",
        side.thr_rate, o.jobs, side.thr_wall, side.thr_submit_s
    ));
    p.check_alive()?;

    // at rest: let what the last jobs left behind wind down first
    std::thread::sleep(Duration::from_secs(5));
    let (_, rss, procs) = p.usage();
    (side.rss_mib, side.procs) = (rss, procs);
    side.idle_cpu = cpu_window(p, o.cpu_seconds);
    say(&format!(
        "{name}: at rest {:.2} % of a core, {rss:.0} MiB in {procs} processes",
        side.idle_cpu
    ));
    let id = api.submit(Work::Sleep(o.cpu_seconds as u64 + 120))?;
    wait_state(
        &*api,
        &id,
        |s| *s == State::Running,
        Duration::from_secs(120),
    )?;
    std::thread::sleep(Duration::from_secs(3));
    let busy = cpu_window(p, o.cpu_seconds);
    side.job_cpu = busy - side.idle_cpu;
    say(&format!(
        "{name}: with one idle job running {busy:.2} % of a core (+{:.2})",
        side.job_cpu
    ));
    api.stop(&id)?;
    let _ = wait_state(&*api, &id, is_terminal, Duration::from_secs(60));
    p.check_alive()
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// The same command spawned by the benchmark itself: its own start-up (ms).
fn direct_once(python: &str) -> Result<f64, String> {
    let t = now_ns();
    let out = Command::new(python)
        .args(["-c", PRINT_TIME])
        .output()
        .map_err(|e| format!("running {python}: {e}"))?;
    let printed = printed_ns(&[String::from_utf8_lossy(&out.stdout).to_string()])
        .ok_or("the directly spawned command printed no timestamp")?;
    Ok((printed - t) as f64 / 1e6)
}

/// `sample_cost`'s "cost:" line: % of one core; and its tree/host lines.
fn sampling_cost(bin: &Path) -> Result<(f64, String), String> {
    let out = Command::new(bin)
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!("sample_cost failed: {text}"));
    }
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let cost = field("cost:")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no cost line in sample_cost's output:\n{text}"))?;
    let detail = format!(
        "{} processes in the tree, {} processes on the host, {} per sample",
        field("tree:").split_whitespace().next().unwrap_or("?"),
        field("processes on this host:"),
        field("per sample (wall):")
    );
    Ok((cost, detail))
}

// ---------------------------------------------------------------- the run

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(o) = parse_args(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    kill_groups_on_signal();
    let root = root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    if !o.skip_build {
        say("cargo build --release -p atelier, and sysmetrics' sample_cost example");
        run_checked(
            Command::new("cargo")
                .current_dir(&root)
                .args(["build", "--release", "-p", "atelier"]),
            "cargo build --release -p atelier",
        )?;
        run_checked(
            Command::new("cargo").current_dir(&root).args([
                "build",
                "--release",
                "-p",
                "sysmetrics",
                "--example",
                "sample_cost",
            ]),
            "cargo build --release -p sysmetrics --example sample_cost",
        )?;
    }
    let bin = target.join("release/atelier");
    let sample_cost = target.join("release/examples/sample_cost");
    let work = target.join("bench-jobs");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let load_before = loadavg();
    let started = common::utc_stamp();

    // The user command's interpreter, the same for both: the real python3.
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let user_python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if user_python.is_empty() || user_python.contains('\'') {
        return Err(format!("unusable python3 ({user_python:?})"));
    }

    // ------------------------------------------------------------ Atelier
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map_err(|e| format!("{}: {e} (build it, or drop --skip-build)", bin.display()))?;
    let mut ours = Side {
        version: version
            .strip_prefix("atelier ")
            .unwrap_or(&version)
            .to_string(),
        ..Side::default()
    };
    {
        let port = free_port()?;
        let data = work.join("atelier-data");
        let mut c = Command::new(&bin);
        c.args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(&data)
            .args(["--log", "warn"]);
        let t0 = Instant::now();
        let mut p = Owned::spawn(
            "atelier serve",
            0,
            c,
            work.join("atelier.log"),
            false,
            Some(data.display().to_string()),
        )?;
        wait_ready(&mut p, port, "/api/atelier/jobs?limit=1", t0)?;
        ours.start_s = t0.elapsed().as_secs_f64();
        let mut api = AtelierApi {
            port,
            python: user_python.clone(),
        };
        measure(&mut api, &mut p, &o, &user_python, &mut ours)?;
        p.stop(Duration::from_secs(15));
        if !o.keep {
            let _ = std::fs::remove_dir_all(&data);
        }
    }

    say("sysmetrics sample_cost (10 s)");
    let sampling = sampling_cost(&sample_cost)?;
    say(&format!(
        "sampling: {:.3} % of a core ({})",
        sampling.0, sampling.1
    ));

    // ------------------------------------------------------------ Ray
    let mut install_note = String::new();
    let theirs = if o.skip_ray {
        Err("skipped (--skip-ray)".to_string())
    } else {
        ray_side(&o, &root, &work, &user_python, &mut install_note)
    };
    if let Err(e) = &theirs {
        say(&format!("Ray was not measured: {e}"));
    }
    let ctx = Context {
        o: &o,
        started,
        load_before,
        load_after: loadavg(),
        sampling,
        install_note,
        python_version: python_version(&user_python),
    };
    report(&ctx, &ours, theirs.as_ref(), &target, &root)
}

fn python_version(python: &str) -> String {
    Command::new(python)
        .args(["-c", "import platform; print(platform.python_version())"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn wait_ready(p: &mut Owned, port: u16, path: &str, t0: Instant) -> Result<(), String> {
    loop {
        if let Ok((200, _)) = http(port, "GET", path, None) {
            return Ok(());
        }
        p.check_alive()?;
        if t0.elapsed() > Duration::from_secs(180) {
            return Err(format!(
                "{} did not answer GET {path} within 180 s:\n{}",
                p.name,
                tail_str(&std::fs::read_to_string(&p.log).unwrap_or_default())
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ray_side(
    o: &Opts,
    root: &Path,
    work: &Path,
    user_python: &str,
    install_note: &mut String,
) -> Result<Side, String> {
    let python = match &o.python {
        Some(p) => p.clone(),
        None => {
            let venv = root.join("target/bench-venv-jobs");
            let req = root.join("bench/jobs/requirements.txt");
            // a new venv: the install time is worth reporting (Ray's wheel is large)
            let fresh = !venv.join("bin/python").exists();
            let t0 = Instant::now();
            let py = ensure_venv(&venv, &req)
                .map_err(|e| format!("could not install {RAY_REQUIREMENT}: {e}"))?;
            let secs_file = venv.join(".bench-install-seconds");
            if fresh {
                let _ = std::fs::write(&secs_file, format!("{:.0}", t0.elapsed().as_secs_f64()));
            }
            if let Ok(s) = std::fs::read_to_string(&secs_file) {
                *install_note = format!("{} s", s.trim());
            }
            py
        }
    };
    let ray = python.with_file_name("ray");
    if !ray.exists() {
        return Err(format!(
            "{} not found (is ray[default] installed for {}?)",
            ray.display(),
            python.display()
        ));
    }
    // Unix socket paths under the temp dir must stay short (≤ 107 bytes).
    let tmp = PathBuf::from(format!("/tmp/atelier-bench-ray-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect::<Result<_, _>>()?;
    let (gcs, dash, client, agent) = (ports[0], ports[1], ports[2], ports[3]);
    let mut c = Command::new(&ray);
    c.args(["start", "--head", "--block", "--disable-usage-stats"])
        .args(["--node-ip-address", "127.0.0.1"])
        .args([
            "--dashboard-host",
            "127.0.0.1",
            "--include-dashboard",
            "true",
        ])
        .args(["--port", &gcs.to_string()])
        .args(["--dashboard-port", &dash.to_string()])
        .args(["--ray-client-server-port", &client.to_string()])
        .args(["--dashboard-agent-listen-port", &agent.to_string()])
        .args(["--num-cpus", "2", "--temp-dir"])
        .arg(&tmp)
        .env("RAY_USAGE_STATS_ENABLED", "0")
        // keeps Ray on 127.0.0.1 instead of the host's routable address
        .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0");
    say(&format!(
        "ray start --head (GCS {gcs}, dashboard {dash}) in {}",
        tmp.display()
    ));
    let t0 = Instant::now();
    let mut p = Owned::spawn(
        "ray start",
        1,
        c,
        work.join("ray.log"),
        true,
        Some(tmp.display().to_string()),
    )?;
    let result = (|| {
        wait_ready(&mut p, dash, "/api/jobs/", t0)?;
        let mut side = Side {
            start_s: t0.elapsed().as_secs_f64(),
            ..Side::default()
        };
        side.version = call(dash, "GET", "/api/version", None)?
            .field_str("ray_version")
            .unwrap_or("?")
            .to_string();
        say(&format!(
            "Ray {} answers in {:.1} s",
            side.version, side.start_s
        ));
        let mut api = RayApi {
            port: dash,
            python: user_python.to_string(),
            seq: 0,
        };
        measure(&mut api, &mut p, o, user_python, &mut side)?;
        Ok(side)
    })();
    say("stopping the Ray head (SIGTERM to its `ray start`, then what is left of it)");
    let t = Instant::now();
    p.stop(Duration::from_secs(45));
    say(&format!(
        "Ray stopped in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    if !o.keep {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

// ---------------------------------------------------------------- report

struct Context<'a> {
    o: &'a Opts,
    started: String,
    load_before: String,
    load_after: String,
    sampling: (f64, String),
    install_note: String,
    python_version: String,
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn procs(n: usize) -> String {
    format!("{n} process{}", if n == 1 { "" } else { "es" })
}

fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        "—".into()
    } else if r >= 100.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

/// CPU as % of a core; a window's resolution is one clock tick.
fn fmt_cpu(v: f64, res: f64) -> String {
    if v < res {
        format!("< {res:.2} %")
    } else {
        format!("{v:.2} %")
    }
}

fn report(
    c: &Context,
    ours: &Side,
    theirs: Result<&Side, &String>,
    target: &Path,
    root: &Path,
) -> Result<(), String> {
    let o = c.o;
    let ray = theirs.ok();
    let ray_label = ray.map_or("Ray (not measured)".to_string(), |r| {
        format!("Ray {}", r.version)
    });
    let res = 1.0 / o.cpu_seconds; // one tick (10 ms) over the window, in %
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut row = |name: String, a: String, r: Option<String>, ratio: Option<f64>| {
        rows.push([
            name,
            a,
            r.unwrap_or_else(|| "—".into()),
            ratio.map_or("—".into(), fmt_ratio),
        ]);
    };
    let lat = |s: &Side, p: f64| pct(&s.latency_ms, p);
    row(
        "submit → first output line, median".into(),
        fmt_ms(lat(ours, 50.0)),
        ray.map(|r| fmt_ms(lat(r, 50.0))),
        ray.map(|r| lat(r, 50.0) / lat(ours, 50.0)),
    );
    row(
        "submit → first output line, p90".into(),
        fmt_ms(lat(ours, 90.0)),
        ray.map(|r| fmt_ms(lat(r, 90.0))),
        ray.map(|r| lat(r, 90.0) / lat(ours, 90.0)),
    );
    let direct = |s: &Side| pct(&s.direct_ms, 50.0);
    row(
        "the same command spawned directly (before each job), median".into(),
        fmt_ms(direct(ours)),
        ray.map(|r| fmt_ms(direct(r))),
        None,
    );
    // the platform's part: per job, its latency less the direct spawn before it
    let own = |s: &Side| {
        let d: Vec<f64> = s
            .latency_ms
            .iter()
            .zip(&s.direct_ms)
            .map(|(l, d)| l - d)
            .collect();
        pct(&d, 50.0)
    };
    let fmt_own = |v: f64| {
        if v < 1.0 {
            "< 1 ms".to_string()
        } else {
            fmt_ms(v)
        }
    };
    row(
        "submit → first line less that (the platform's part), median".into(),
        fmt_own(own(ours)),
        ray.map(|r| fmt_own(own(r))),
        ray.map(|r| own(r) / own(ours).max(1.0)),
    );
    row(
        "submit call answered, median".into(),
        fmt_ms(pct(&ours.submit_ms, 50.0)),
        ray.map(|r| fmt_ms(pct(&r.submit_ms, 50.0))),
        ray.map(|r| pct(&r.submit_ms, 50.0) / pct(&ours.submit_ms, 50.0)),
    );
    row(
        format!("throughput, {} empty jobs (`true`)", o.jobs),
        format!("{:.2} jobs/s", ours.thr_rate),
        ray.map(|r| format!("{:.2} jobs/s", r.thr_rate)),
        ray.map(|r| ours.thr_rate / r.thr_rate),
    );
    row(
        "start-up (spawn → jobs API answers)".into(),
        fmt_ms(ours.start_s * 1e3),
        ray.map(|r| fmt_ms(r.start_s * 1e3)),
        ray.map(|r| r.start_s / ours.start_s),
    );
    row(
        "CPU at rest (whole process tree, % of one core)".into(),
        fmt_cpu(ours.idle_cpu, res),
        ray.map(|r| fmt_cpu(r.idle_cpu, res)),
        ray.map(|r| r.idle_cpu.max(res) / ours.idle_cpu.max(res)),
    );
    row(
        "extra CPU while one idle job (`sleep`) runs".into(),
        fmt_cpu(ours.job_cpu, res),
        ray.map(|r| fmt_cpu(r.job_cpu, res)),
        ray.map(|r| r.job_cpu.max(res) / ours.job_cpu.max(res)),
    );
    row(
        "memory at rest (RSS of the process tree)".into(),
        format!("{:.0} MiB ({})", ours.rss_mib, procs(ours.procs)),
        ray.map(|r| format!("{:.0} MiB ({})", r.rss_mib, procs(r.procs))),
        ray.map(|r| r.rss_mib / ours.rss_mib),
    );
    row(
        "system-metric sampling of a job's process tree, 2 Hz".into(),
        format!("{:.3} % of one core", c.sampling.0),
        None,
        None,
    );

    let mut md = String::new();
    let _ = writeln!(
        md,
        "`cargo xtask bench jobs` starts Atelier {} (`atelier serve`, release build, its default 2 job\n\
workers) and a local Ray{} head (`ray start --head --block --num-cpus 2`, dashboard and every port\n\
on 127.0.0.1), one after the other, and drives each through its HTTP jobs API (`POST\n\
/api/atelier/jobs` with `{{\"kind\": \"processing\", \"spec\": {{\"command\": [...]}}}}`; Ray's `POST\n\
/api/jobs/`). Measured on {} on this project's {}-core machine ({}; load average {} before,\n\
{} after){}; \"ratio\" is how many times better Atelier is.\n",
        ours.version,
        ray.map_or(
            " (not measured this time, see below)".to_string(),
            |r| format!(" {}", r.version)
        ),
        c.started,
        nproc(),
        cpu_model(),
        c.load_before,
        c.load_after,
        if ray.is_some() {
            ", both sides in the same run"
        } else {
            ""
        },
    );
    let head = ["measurement", "Atelier", &ray_label, "ratio"];
    let mut w = [0usize; 4];
    for r in rows
        .iter()
        .map(|r| r.iter().map(String::as_str).collect::<Vec<_>>())
    {
        for (i, cell) in r.iter().enumerate() {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    for (i, h) in head.iter().enumerate() {
        w[i] = w[i].max(h.chars().count());
    }
    let pad = |s: &str, n: usize, right: bool| {
        let fill = " ".repeat(n.saturating_sub(s.chars().count()));
        if right {
            format!("{fill}{s}")
        } else {
            format!("{s}{fill}")
        }
    };
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} |",
        pad(head[0], w[0], false),
        pad(head[1], w[1], true),
        pad(head[2], w[2], true),
        pad(head[3], w[3], true)
    );
    let _ = writeln!(
        md,
        "|{}|{}:|{}:|{}:|",
        "-".repeat(w[0] + 2),
        "-".repeat(w[1] + 1),
        "-".repeat(w[2] + 1),
        "-".repeat(w[3] + 1)
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            pad(&r[0], w[0], false),
            pad(&r[1], w[1], true),
            pad(&r[2], w[2], true),
            pad(&r[3], w[3], true)
        );
    }
    md.push('\n');

    // notes
    let _ = writeln!(
        md,
        "- Latency: {} jobs one after another after {} warm-up job(s), each running `python3 -c \"import time;\n  print(time.time_ns(), flush=True)\"` (Python {}, the same interpreter on both sides); the\n  client takes the wall clock just before the submit call, latency is the printed time minus that.",
        o.latency_jobs, o.warmup, c.python_version
    );
    if !ours.stages.is_empty() {
        let st: Vec<String> = ours
            .stages
            .iter()
            .map(|(n, v)| format!("{n} {v:.0} ms"))
            .collect();
        let _ = writeln!(
            md,
            "- Where Atelier's {} go (medians from the job's own timestamps, ms after the submit call\n  started): {}; then the job's supervisor (`atelier __supervise`) starts and runs the command, and Python\n  starts ({} when the benchmark spawns it).",
            fmt_ms(lat(ours, 50.0)),
            st.join(", "),
            fmt_ms(direct(ours))
        );
    }
    let _ = writeln!(
        md,
        "- Throughput: {} jobs submitted back to back (Atelier in {:.2} s{}), timed until the job list shows all of\n  them ended (polled every 100 ms). Atelier's 2 workers had them all done {:.1} s after the first submit.",
        o.jobs,
        ours.thr_submit_s,
        ray.map_or(String::new(), |r| format!(
            ", Ray in {:.2} s",
            r.thr_submit_s
        )),
        ours.thr_wall,
    );
    if let Some((held, ran)) = ours.holding {
        let _ = writeln!(
            md,
            "  An empty job held a worker {held:.0} ms (median, claim → ended) while its command ran {ran:.0} ms (the run,\n  the supervisor and the upload of its log around it), so 2 workers top out near {:.1} jobs/s.",
            2000.0 / held.max(1.0)
        );
    }
    if let Some(r) = ray {
        let _ = writeln!(
            md,
            "  Ray took {:.1} s: each job gets a `JobSupervisor` actor, a Python worker process of its own, which\n  then runs the entrypoint through a shell.",
            r.thr_wall
        );
    }
    let _ = writeln!(
        md,
        "- CPU: `/proc` utime + stime (with reaped children's) of the whole tree over {:.0} s windows, at rest and\n  with one `sleep` job running (difference shown; one 10 ms tick = {:.2} %). Atelier's tree is the\n  server and the job's supervisor; the server samples the job's processes every 500 ms and logs them as\n  `system/*` metrics of its run. Sampling alone (`cargo run --release -p sysmetrics --example\n  sample_cost`: {}) costs {:.3} % of one core.",
        o.cpu_seconds, res, c.sampling.1, c.sampling.0
    );
    // targets
    let lat_ratio = ray.map(|r| lat(r, 50.0) / lat(ours, 50.0));
    let _ = writeln!(
        md,
        "- Targets: submit → first line ≥ 20× lower than Ray's: {}; sampling under 1 % of a core: {:.3} % {}.",
        lat_ratio.map_or("not measured (no Ray)".to_string(), |x| format!(
            "{x:.1}× {}",
            if x >= 20.0 { "✓" } else { "✗" }
        )),
        c.sampling.0,
        if c.sampling.0 < 1.0 { "✓" } else { "✗" }
    );
    match theirs {
        Ok(_) => {
            let _ = writeln!(
                md,
                "- Ray is installed by the command: `pip install \"ray[default]==2.60.0\"` into `target/bench-venv-jobs`\n  (`bench/jobs/requirements.txt`{}); it runs with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, which keeps it on\n  127.0.0.1, and is stopped by SIGTERM to its own `ray start --block` (not `ray stop`, which would stop\n  every Ray on the host). `--python PATH` uses another Python that has `ray[default]`.",
                if c.install_note.is_empty() {
                    String::new()
                } else {
                    format!("; the install took {}", c.install_note)
                }
            );
        }
        Err(e) => {
            let _ = writeln!(
                md,
                "- **Ray was not measured**: {}. Install it with `python3 -m venv target/bench-venv-jobs &&\n  target/bench-venv-jobs/bin/pip install -r bench/jobs/requirements.txt` (the command does this itself;\n  PyPI must be reachable) or pass `--python PATH` to a Python with `ray[default]`.",
                e.lines().next().unwrap_or("").trim()
            );
        }
    }

    println!("\n{md}");
    std::fs::write(target.join("bench-jobs.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(target.join("bench-jobs.json"), json(c, ours, ray))
        .map_err(|e| e.to_string())?;
    say(&format!(
        "wrote {} and {}",
        target.join("bench-jobs.md").display(),
        target.join("bench-jobs.json").display()
    ));
    if o.readme {
        common::update_readme(&root.join("README.md"), "jobs", &md)?;
    }
    Ok(())
}

fn side_json(s: &Side) -> String {
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{{\"version\":{},\"start_s\":{:.3},\"latency_ms\":[{}],\"direct_ms\":[{}],\"submit_ms\":[{}],\"latency_p50_ms\":{:.3},\"latency_p90_ms\":{:.3},\"throughput_jobs_per_s\":{:.3},\"throughput_wall_s\":{:.3},\"idle_cpu_pct\":{:.3},\"one_job_cpu_pct\":{:.3},\"rss_mib\":{:.1},\"processes\":{}}}",
        json_str(&s.version),
        s.start_s,
        list(&s.latency_ms),
        list(&s.direct_ms),
        list(&s.submit_ms),
        pct(&s.latency_ms, 50.0),
        pct(&s.latency_ms, 90.0),
        s.thr_rate,
        s.thr_wall,
        s.idle_cpu,
        s.job_cpu,
        s.rss_mib,
        s.procs
    )
}

fn json(c: &Context, ours: &Side, ray: Option<&Side>) -> String {
    format!(
        "{{\"started\":{},\"cores\":{},\"cpu\":{},\"jobs\":{},\"latency_jobs\":{},\"sampling_pct\":{:.4},\"atelier\":{},\"ray\":{}}}\n",
        json_str(&c.started),
        nproc(),
        json_str(&cpu_model()),
        c.o.jobs,
        c.o.latency_jobs,
        c.sampling.0,
        side_json(ours),
        ray.map_or("null".into(), side_json)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reads_what_the_apis_send() {
        let v = Json::parse(
            r#"{"jobs": [{"id": "a\u00e9\"b", "n": -1.5e3, "ok": true, "x": null, "l": []}], "s": "\ud83d\ude00"}"#,
        )
        .unwrap();
        let j = &v.get("jobs").unwrap().arr()[0];
        assert_eq!(j.field_str("id"), Some("aé\"b"));
        assert_eq!(j.get("n").and_then(Json::num), Some(-1500.0));
        assert_eq!(v.field_str("s"), Some("😀"));
        assert!(Json::parse("{\"a\": }").is_err());
        assert!(Json::parse("[1, 2] x").is_err());
    }

    #[test]
    fn printed_time_skips_ray_lines() {
        let lines = vec![
            "2026-12-06 03:13:24,266\tINFO job_manager.py:581 -- Runtime env is setting up.".into(),
            "Running entrypoint for job x: python3 -c 'import time'".into(),
            "1796526803164571712".into(),
        ];
        assert_eq!(printed_ns(&lines), Some(1_796_526_803_164_571_712));
    }

    #[test]
    fn percentiles_and_chunks() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(pct(&v, 50.0), 5.0);
        assert_eq!(pct(&v, 90.0), 9.0);
        assert_eq!(
            crate::common::dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            b"abcde"
        );
    }
}
