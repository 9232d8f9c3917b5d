//! The Ray executor: users' commands run as Ray jobs, through the Jobs REST
//! API of a Ray cluster's head (its dashboard, `http://HEAD:8265`), so that
//! a job's command runs on the cluster while any server process follows it
//! given only the stored [`Handle`].
//!
//! | [`Executor`] call | Ray |
//! |---|---|
//! | `submit` | `POST /api/jobs/` with a `submission_id` of `atelier-<job id>-<attempt>`, the argv shell-quoted into the `entrypoint` (`exec <argv>`, after `cd <cwd>` on a shared filesystem), [`Launch::env`] as `runtime_env.env_vars` (a value with a `$` is exported in the entrypoint instead: Ray would expand it), the job id in `metadata`, and `entrypoint_num_cpus: 1` so that Ray places it on any node with a free CPU (by default every entrypoint runs on the head) |
//! | `placement` | `GET /api/jobs/<submission_id>`: its `driver_node_id` |
//! | `status` | `GET /api/jobs/<submission_id>`: `PENDING`/`RUNNING` → running, `SUCCEEDED` → exit 0, `FAILED` → the driver's exit code (a negative one is the signal that killed it) with the first line of Ray's message, `STOPPED` → stopped |
//! | `logs` | `GET /api/jobs/<submission_id>/logs`, cut into lines at byte offsets of Ray's log text |
//! | `stop` | `POST /api/jobs/<submission_id>/stop` |
//!
//! The handle is `{"executor": "ray", "data": {"address", "submission_id"}}`:
//! a handle is followed at the address it names, whatever address the
//! following executor was made with, so jobs submitted before a change of
//! `--ray-address` are still followed where they run. The submission id
//! comes from the launch, so [`RayExecutor`]'s `planned_handle` (recorded
//! by the runner before `submit`) is the same with `"planned": true`: a head
//! that does not know a planned handle's job never received it, and the
//! status is a `Lost` that begins with [`crate::executor::NEVER_STARTED`]
//! (a real handle's unknown job stays "no job any more").
//!
//! # Assumptions and limits
//!
//! - **No shared filesystem needed.** By default the executor says it does
//!   not share the server's files ([`Executor::shares_filesystem`] is
//!   false): the command starts in Ray's own working folder (no `cd`), and
//!   the caller stages the job on the worker — users' jobs run as
//!   `atelier job-worker -- <argv…>` (the program at
//!   [`RayExecutor::with_worker_atelier_bin`], by default this server's own
//!   path, so the workers need Atelier installed there), which fetches the
//!   inputs and code from the server's artifact API into a private folder,
//!   runs the command there and uploads the outputs to the job's run; the
//!   workers need only reach the server's HTTP address (the job's
//!   `MLFLOW_TRACKING_URI`). With [`RayExecutor::with_shared_filesystem`]
//!   (`--ray-shared-filesystem`) the entrypoint `cd`s into [`Launch::cwd`]
//!   and the job's inputs, code and outputs are plain paths of the server's
//!   job folder, which the workers must then see at the same paths (a
//!   shared volume). [`Launch::state_dir`] is not used: Ray keeps the log
//!   and the status.
//! - **Output.** Ray merges stdout and stderr into one log, so every line's
//!   stream is `"stdout"`, and its lines carry no time: `at_ms` is when they
//!   were read. Ray's own lines in that log (its `job_manager.py` log lines
//!   and `Running entrypoint for job …`) are left out; their bytes still
//!   count in the offsets. Each `logs` call fetches the whole log from Ray
//!   (its REST API has no ranges) — at most every [`LOG_REFRESH`] per job
//!   and process, and once for good after the job ended — so a log is read
//!   up to [`MAX_LOG_BYTES`].
//! - **Stop.** Ray sends SIGTERM to the command and its children and SIGKILL
//!   after `RAY_JOB_STOP_WAIT_TIME_S` (3 s unless the cluster sets it): the
//!   `grace` of [`Executor::stop`] is not passed on. A staged job's
//!   `atelier job-worker` passes SIGTERM on to the command and uploads its
//!   outputs when it ends, within that window (a larger
//!   `RAY_JOB_STOP_WAIT_TIME_S` leaves more time).
//! - **A head that cannot be reached** makes `status` an error, which the
//!   caller retries; only once it has failed for [`RayExecutor::lost_after`]
//!   in this process is the job `Lost`, with the reason "the Ray cluster at …
//!   is unreachable: …". A head that answers but no longer knows the job
//!   (restarted without its job records, or the job was deleted) makes it
//!   `Lost` at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::executor::{ExecError, ExecStatus, Executor, Exit, Handle, Launch, LogChunk, LogLine};

/// The executor's name, in [`Handle::executor`].
pub const NAME: &str = "ray";

/// How long a head may stay unreachable before its jobs are `Lost`.
pub const DEFAULT_LOST_AFTER: Duration = Duration::from_secs(60);

/// A running job's log is fetched again at most this often (per process).
pub const LOG_REFRESH: Duration = Duration::from_millis(500);

/// The largest Ray log read (Ray's API returns the whole log at once).
pub const MAX_LOG_BYTES: u64 = 64 << 20;

/// A longer output line is returned as several.
const MAX_LINE: usize = 64 << 10;

/// Logs kept in memory, at most (the oldest fetched goes first).
const LOG_CACHE_JOBS: usize = 32;

/// [`Handle::data`] of the Ray executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RayHandle {
    /// The head's dashboard, e.g. `http://127.0.0.1:8265`.
    address: String,
    submission_id: String,
    /// Made by [`Executor::planned_handle`], before the submission: a head
    /// that does not know the job never received it (the command never
    /// started), rather than lost it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    planned: bool,
}

/// One job's log as last fetched.
struct CachedLog {
    text: Arc<String>,
    fetched: Instant,
    /// Fetched after the job ended: it will not change any more.
    complete: bool,
}

/// Runs commands as jobs of a Ray cluster (see the module docs).
pub struct RayExecutor {
    address: String,
    /// The workers see the server's job folders at the same paths.
    shared_filesystem: bool,
    /// The Atelier program on the workers (`None`: this executable's path).
    worker_bin: Option<String>,
    agent: ureq::Agent,
    lost_after: Duration,
    /// Per address: when this process first failed to reach it, in the
    /// current run of failures, and why.
    unreachable: Mutex<HashMap<String, (Instant, String)>>,
    /// Per submission id: the job's entrypoint (to recognise Ray's line
    /// that repeats it in the log); it never changes.
    entrypoints: Mutex<HashMap<String, String>>,
    logs: Mutex<HashMap<String, CachedLog>>,
    /// Submission ids whose job this process saw end (their next log fetch
    /// is the complete log).
    ended: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for RayExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RayExecutor")
            .field("address", &self.address)
            .field("shared_filesystem", &self.shared_filesystem)
            .field("lost_after", &self.lost_after)
            .finish_non_exhaustive()
    }
}

/// `address` without a trailing slash, checked to be an http(s) URL with a host.
pub fn normalize_address(address: &str) -> Result<String, String> {
    let a = address.trim().trim_end_matches('/');
    let rest = a
        .strip_prefix("http://")
        .or_else(|| a.strip_prefix("https://"))
        .ok_or_else(|| {
            format!(
                "'{address}' is not an http:// or https:// URL; give the address of the Ray head's dashboard, e.g. http://ray-head:8265"
            )
        })?;
    if rest.is_empty() || rest.starts_with(['/', ':']) {
        return Err(format!(
            "'{address}' has no host; give the address of the Ray head's dashboard, e.g. http://ray-head:8265"
        ));
    }
    if rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "'{address}': give only the scheme, host and port of the Ray head's dashboard, e.g. http://ray-head:8265"
        ));
    }
    Ok(a.to_string())
}

/// One argument quoted for a POSIX shell (`/bin/sh -c`, which Ray runs the
/// entrypoint with): bare when it is made of safe characters, else in
/// single quotes.
pub fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Whether Ray would change this environment value: it runs every
/// `runtime_env.env_vars` value through Python's `os.path.expandvars`, so
/// `$NAME` and `${NAME}` are replaced (and unknown `${NAME}` removed), with
/// no way to escape them.
fn ray_would_expand(value: &str) -> bool {
    value.contains('$')
}

fn is_shell_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The entrypoint of a launch: into its folder, the variables Ray would
/// expand exported as they are, then the command itself (`exec`: Ray's stop
/// signals reach it, and its exit status is the job's).
pub fn entrypoint(launch: &Launch) -> String {
    entrypoint_in(launch, true)
}

/// [`entrypoint`], with the `cd` into [`Launch::cwd`] only when `enter`
/// (without a shared filesystem the folder is not on the worker: the
/// command starts in Ray's own working folder and stages itself).
fn entrypoint_in(launch: &Launch, enter: bool) -> String {
    let argv: Vec<String> = launch.argv.iter().map(|a| shell_quote(a)).collect();
    let mut parts = Vec::new();
    if enter {
        parts.push(format!("cd {}", shell_quote(&launch.cwd.to_string_lossy())));
    }
    for (k, v) in &launch.env {
        if ray_would_expand(v) && is_shell_name(k) {
            parts.push(format!("export {k}={}", shell_quote(v)));
        }
    }
    parts.push(format!("exec {}", argv.join(" ")));
    parts.join(" && ")
}

/// The variables that go to Ray's `runtime_env.env_vars` (the others are
/// in the entrypoint, see [`entrypoint`]).
fn env_vars(launch: &Launch) -> serde_json::Map<String, Value> {
    launch
        .env
        .iter()
        .filter(|(k, v)| !(ray_would_expand(v) && is_shell_name(k)))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// `atelier-<job id>-<attempt>`: the attempt is the last part of the
/// launch's state folder when it is a number (the user jobs' layout,
/// `…/executor/<attempt>`), else a short hash of that folder; characters
/// Ray might not like are replaced.
pub fn submission_id(launch: &Launch) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let last = launch
        .state_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let attempt = if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        last.to_string()
    } else {
        // FNV-1a: stable across processes and builds
        let mut h: u32 = 0x811c_9dc5;
        for b in launch.state_dir.to_string_lossy().bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        format!("{h:08x}")
    };
    format!("atelier-{}-{attempt}", clean(&launch.job_id))
}

fn parse_handle(h: &Handle) -> Result<RayHandle, ExecError> {
    if h.executor != NAME {
        return Err(ExecError::BadHandle(format!(
            "it was made by the '{}' executor, not '{NAME}'",
            h.executor
        )));
    }
    let rh: RayHandle = serde_json::from_value(h.data.clone())
        .map_err(|e| ExecError::BadHandle(format!("{e}: {}", h.data)))?;
    let address = normalize_address(&rh.address).map_err(ExecError::BadHandle)?;
    if rh.submission_id.is_empty() || rh.submission_id.contains(['/', '?', '#']) {
        return Err(ExecError::BadHandle(format!(
            "'{}' is not a Ray submission id",
            rh.submission_id
        )));
    }
    Ok(RayHandle {
        address,
        submission_id: rh.submission_id,
        planned: rh.planned,
    })
}

/// How a call to the head went wrong.
enum CallError {
    /// No answer (refused, timed out, a broken connection).
    Unreachable(String),
    /// A 5xx: the head is there but failing (e.g. its GCS is down).
    Server(String),
    /// The head does not know the job (404).
    NotFound,
    /// Any other answer: the message says what it was.
    Other(String),
}

impl CallError {
    fn into_exec(self, address: &str) -> ExecError {
        match self {
            CallError::Unreachable(e) => {
                ExecError::Io(format!("the Ray cluster at {address} is unreachable: {e}"))
            }
            CallError::Server(e) => ExecError::Io(format!(
                "the Ray cluster at {address} failed to answer: {e}"
            )),
            CallError::NotFound => {
                ExecError::Io(format!("the Ray cluster at {address} has no such job"))
            }
            CallError::Other(e) => ExecError::Io(format!("the Ray cluster at {address}: {e}")),
        }
    }
}

/// The first line of an answer's text, shortened (Ray answers errors with
/// Python tracebacks; the last line is the one that says what went wrong).
fn gist(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && *l != ".")
        .unwrap_or("")
        .to_string();
    shorten(&line, 300)
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Ray's own log lines in a job's log: `2026-12-06 19:47:11,121\tINFO job_manager.py:581 -- …`.
fn is_ray_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    if b.len() < 24 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let stamp = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b' '
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b','
        && digits(20..23)
        && b[23] == b'\t';
    stamp
        && line[24..].split_once(' ').is_some_and(|(level, rest)| {
            level.bytes().all(|c| c.is_ascii_uppercase()) && rest.starts_with("job_manager.py:")
        })
}

/// Lines of Ray's log `text` from byte `from` (see [`Executor::logs`]):
/// Ray's own lines and the byte range `skip` (its line that repeats the
/// entrypoint, wherever it landed) are left out, though their bytes count;
/// at most `max_bytes` of text unless the first line alone is longer; a last
/// line without a newline only when `complete`.
fn chunk_of(
    text: &str,
    skip: Option<std::ops::Range<usize>>,
    from: u64,
    max_bytes: usize,
    complete: bool,
) -> LogChunk {
    let len = text.len();
    let mut pos = usize::try_from(from).unwrap_or(usize::MAX).min(len);
    // an offset inside a character (not one this function returned) moves on
    while !text.is_char_boundary(pos) {
        pos += 1;
    }
    let start = pos;
    let at_ms = now_ms();
    let mut lines = Vec::new();
    // where the consumed text ends
    let mut next = start;
    // the line being put together (it may go on after the skipped range)
    let mut line = String::new();
    let mut full = false;
    while pos < len {
        if let Some(r) = &skip
            && (r.start..r.end).contains(&pos)
        {
            pos = r.end;
            continue;
        }
        let stop_at = match &skip {
            Some(r) if r.start > pos => r.start.min(len),
            _ => len,
        };
        let piece = &text[pos..stop_at];
        let Some(i) = piece.find('\n') else {
            line.push_str(piece);
            pos = stop_at;
            continue;
        };
        line.push_str(&piece[..i]);
        pos += i + 1;
        if next > start && pos - start > max_bytes {
            full = true;
            break;
        }
        next = pos;
        push_line(&mut lines, std::mem::take(&mut line), at_ms);
    }
    if !full && complete && (next == start || len - start <= max_bytes) {
        if !line.is_empty() {
            push_line(&mut lines, line, at_ms);
        }
        // an unfinished last line, or Ray's own bytes at the end
        next = len;
    }
    LogChunk {
        lines,
        next: next as u64,
    }
}

/// One output line (without its newline), cut into pieces of at most
/// [`MAX_LINE`] bytes; Ray's own lines are dropped.
fn push_line(lines: &mut Vec<LogLine>, mut l: String, at_ms: i64) {
    if l.ends_with('\r') {
        l.pop();
    }
    if is_ray_log_line(&l) {
        return;
    }
    let mut rest = l.as_str();
    loop {
        if rest.len() <= MAX_LINE {
            lines.push(LogLine {
                at_ms,
                stream: "stdout".into(),
                text: rest.to_string(),
            });
            return;
        }
        let mut cut = MAX_LINE;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        lines.push(LogLine {
            at_ms,
            stream: "stdout".into(),
            text: rest[..cut].to_string(),
        });
        rest = &rest[cut..];
    }
}

/// Where Ray's line `Running entrypoint for job <id>: <entrypoint>\n` sits in `text`.
fn entrypoint_line(
    text: &str,
    submission_id: &str,
    entrypoint: &str,
) -> Option<std::ops::Range<usize>> {
    let needle = format!("Running entrypoint for job {submission_id}: {entrypoint}\n");
    text.find(&needle).map(|i| i..i + needle.len())
}

impl RayExecutor {
    /// An executor for the Ray head whose dashboard is at `address`
    /// (`http://HOST:8265`). Nothing is contacted yet: see [`RayExecutor::probe`].
    pub fn new(address: &str) -> Result<RayExecutor, ExecError> {
        let address = normalize_address(address).map_err(ExecError::Io)?;
        Ok(RayExecutor::build(address))
    }

    fn build(address: String) -> RayExecutor {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30)))
            // the head is on this machine or the cluster's network: an
            // HTTP_PROXY from the environment must not route it elsewhere
            .proxy(None)
            .max_redirects(0)
            .build()
            .into();
        RayExecutor {
            address,
            shared_filesystem: false,
            worker_bin: None,
            agent,
            lost_after: DEFAULT_LOST_AFTER,
            unreachable: Mutex::new(HashMap::new()),
            entrypoints: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
        }
    }

    /// How long a head may stay unreachable before `status` calls its jobs
    /// `Lost` [default: [`DEFAULT_LOST_AFTER`]].
    pub fn with_lost_after(mut self, d: Duration) -> Self {
        self.lost_after = d;
        self
    }

    /// Whether the cluster's workers see this server's job folders at the
    /// same paths (a shared volume) [default: false: jobs are staged on the
    /// worker through the server, see the module docs].
    pub fn with_shared_filesystem(mut self, shared: bool) -> Self {
        self.shared_filesystem = shared;
        self
    }

    /// The Atelier program on the cluster's workers, which stages jobs there
    /// (`atelier job-worker`) [default: this server's own executable path].
    pub fn with_worker_atelier_bin(mut self, bin: Option<String>) -> Self {
        self.worker_bin = bin.filter(|b| !b.trim().is_empty());
        self
    }

    /// An executor that follows Ray jobs from their handles (each names its
    /// head) but submits none: for a server on another executor, whose
    /// jobs started on Ray before a switch go on being followed.
    pub fn follower() -> RayExecutor {
        RayExecutor::build(String::new())
    }

    /// The head's address, as normalised.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// How long a head may stay unreachable before its jobs are `Lost`.
    pub fn lost_after(&self) -> Duration {
        self.lost_after
    }

    /// Ask the head for its version (`GET /api/version`): the Ray version,
    /// or an error that says what is wrong with the address.
    pub fn probe(&self) -> Result<String, ExecError> {
        let url = format!("{}/api/version", self.address);
        let v = match self.call_json("GET", &url, None) {
            Ok(v) => v,
            Err(CallError::NotFound) => {
                return Err(ExecError::Io(format!(
                    "{} answered GET /api/version with 404: it is not a Ray head's dashboard (the Jobs API is on the dashboard's port, 8265 unless changed)",
                    self.address
                )));
            }
            Err(e) => return Err(e.into_exec(&self.address)),
        };
        match v["ray_version"].as_str() {
            Some(version) => Ok(version.to_string()),
            None => Err(ExecError::Io(format!(
                "{} answered GET /api/version without a ray_version: it is not a Ray head's dashboard",
                self.address
            ))),
        }
    }

    /// One request; its JSON answer on 2xx.
    fn call_json(&self, method: &str, url: &str, body: Option<&Value>) -> Result<Value, CallError> {
        let text = self.call(method, url, body, 1 << 20)?;
        serde_json::from_str(&text).map_err(|e| {
            CallError::Other(format!(
                "{method} {url} answered with something other than JSON ({e}): {}",
                shorten(&text, 200)
            ))
        })
    }

    /// One request; its text answer on 2xx, up to `limit` bytes.
    fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
        limit: u64,
    ) -> Result<String, CallError> {
        let sent = match (method, body) {
            ("POST", Some(b)) => self.agent.post(url).send_json(b),
            ("POST", None) => self.agent.post(url).send_empty(),
            _ => self.agent.get(url).call(),
        };
        let mut resp = sent.map_err(|e| CallError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().with_config().limit(limit).read_to_string();
        let text = match text {
            Ok(t) => t,
            Err(ureq::Error::BodyExceedsLimit(n)) => {
                return Err(CallError::Other(format!(
                    "{method} {url}: the answer is larger than {n} bytes, more than this executor reads"
                )));
            }
            Err(e) => return Err(CallError::Unreachable(e.to_string())),
        };
        match status {
            200..=299 => Ok(text),
            404 => Err(CallError::NotFound),
            500..=599 => Err(CallError::Server(format!(
                "{method} {url} answered HTTP {status}: {}",
                gist(&text)
            ))),
            _ => Err(CallError::Other(format!(
                "{method} {url} answered HTTP {status}: {}",
                gist(&text)
            ))),
        }
    }

    fn reached(&self, address: &str) {
        self.unreachable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(address);
    }

    /// Records a failure to follow a job at `address`; `Lost` once they
    /// have gone on for [`RayExecutor::lost_after`], else the error.
    fn failed(&self, address: &str, e: CallError) -> Result<ExecStatus, ExecError> {
        let (what, retry) = match &e {
            CallError::Unreachable(m) => (format!("is unreachable: {m}"), true),
            CallError::Server(m) => (format!("failed to answer: {m}"), true),
            CallError::Other(m) => (format!("does not answer as Ray's Jobs API does: {m}"), true),
            CallError::NotFound => (String::new(), false),
        };
        if !retry {
            return Err(e.into_exec(address));
        }
        let mut map = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        let since = map
            .entry(address.to_string())
            .or_insert_with(|| (Instant::now(), what.clone()))
            .0;
        let lasted = since.elapsed();
        if lasted >= self.lost_after {
            return Ok(ExecStatus::Lost {
                reason: format!(
                    "the Ray cluster at {address} {what} (for {} s; the job may still run there)",
                    lasted.as_secs()
                ),
            });
        }
        Err(ExecError::Io(format!(
            "the Ray cluster at {address} {what} (retrying; the job counts as lost after {} s)",
            self.lost_after.as_secs()
        )))
    }

    /// The job's entrypoint, as Ray has it.
    fn entrypoint_of(&self, rh: &RayHandle) -> Result<String, CallError> {
        if let Some(e) = self
            .entrypoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&rh.submission_id)
        {
            return Ok(e.clone());
        }
        let v = self.call_json("GET", &job_url(rh, ""), None)?;
        let e = v["entrypoint"].as_str().unwrap_or_default().to_string();
        self.entrypoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rh.submission_id.clone(), e.clone());
        Ok(e)
    }

    /// The job's log text: fetched again when older than [`LOG_REFRESH`],
    /// kept for good once fetched after the job ended.
    fn log_text(&self, rh: &RayHandle, fresh: bool) -> Result<(Arc<String>, bool), CallError> {
        let ended = self
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&rh.submission_id);
        if !fresh
            && let Some(c) = self
                .logs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&rh.submission_id)
            && (c.complete || (!ended && c.fetched.elapsed() < LOG_REFRESH))
        {
            return Ok((c.text.clone(), c.complete));
        }
        let v: Value = {
            let text = self.call("GET", &job_url(rh, "/logs"), None, MAX_LOG_BYTES)?;
            serde_json::from_str(&text).map_err(|e| {
                CallError::Other(format!(
                    "the job's log is not JSON ({e}): {}",
                    shorten(&text, 200)
                ))
            })?
        };
        let text = Arc::new(v["logs"].as_str().unwrap_or_default().to_string());
        let mut cache = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= LOG_CACHE_JOBS
            && !cache.contains_key(&rh.submission_id)
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, c)| c.fetched)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(
            rh.submission_id.clone(),
            CachedLog {
                text: text.clone(),
                fetched: Instant::now(),
                complete: ended,
            },
        );
        Ok((text, ended))
    }

    fn mark_ended(&self, submission_id: &str) {
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.contains_key(submission_id) {
            return;
        }
        // a long-lived server forgets the oldest once it has seen many end
        if ended.len() >= 4096
            && let Some(oldest) = ended
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
        {
            ended.remove(&oldest);
        }
        ended.insert(submission_id.to_string(), Instant::now());
    }

    /// The job's status as Ray reports it.
    fn status_of(&self, rh: &RayHandle) -> Result<ExecStatus, ExecError> {
        let v = match self.call_json("GET", &job_url(rh, ""), None) {
            Ok(v) => v,
            Err(CallError::NotFound) => {
                self.reached(&rh.address);
                if rh.planned {
                    return Ok(ExecStatus::Lost {
                        reason: format!(
                            "{} (the Ray cluster at {} never received the job '{}': the server stopped before submitting it)",
                            crate::executor::NEVER_STARTED,
                            rh.address,
                            rh.submission_id
                        ),
                    });
                }
                return Ok(ExecStatus::Lost {
                    reason: format!(
                        "the Ray cluster at {} has no job '{}' any more (the cluster was restarted without its job records, or the job was deleted there)",
                        rh.address, rh.submission_id
                    ),
                });
            }
            Err(e) => return self.failed(&rh.address, e),
        };
        self.reached(&rh.address);
        let status = v["status"].as_str().unwrap_or_default();
        let ended_ms = v["end_time"].as_i64().unwrap_or_else(now_ms);
        let message = v["message"].as_str().unwrap_or_default();
        // Ray's message goes on with the last lines of the log: they are in the log
        let first_line = shorten(message.lines().next().unwrap_or("").trim(), 500);
        let exit = |code: Option<i64>, stopped: bool, detail: Option<String>| {
            let (code, signal) = match code {
                Some(c) if c < 0 => (None, i32::try_from(-c).ok()),
                Some(c) => (i32::try_from(c).ok(), None),
                None => (None, None),
            };
            Exit {
                code,
                signal,
                oom_killed: false,
                stopped,
                start_error: None,
                detail,
                ended_ms,
            }
        };
        let ended = match status {
            "PENDING" | "RUNNING" => return Ok(ExecStatus::Running),
            "SUCCEEDED" => exit(Some(0), false, None),
            "STOPPED" => exit(v["driver_exit_code"].as_i64(), true, None),
            "FAILED" => {
                let error_type = v["error_type"].as_str().unwrap_or_default();
                let mut detail = format!("Ray: {first_line}");
                if !error_type.is_empty() {
                    detail.push_str(&format!(" ({error_type})"));
                }
                exit(v["driver_exit_code"].as_i64(), false, Some(detail))
            }
            other => {
                return self.failed(
                    &rh.address,
                    CallError::Other(format!(
                        "the job's status '{other}' is not one Ray's Jobs API has"
                    )),
                );
            }
        };
        self.mark_ended(&rh.submission_id);
        Ok(ExecStatus::Exited(ended))
    }
}

/// `<address>/api/jobs/<submission id><rest>`.
fn job_url(rh: &RayHandle, rest: &str) -> String {
    format!("{}/api/jobs/{}{rest}", rh.address, rh.submission_id)
}

impl Executor for RayExecutor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn submit(&self, launch: &Launch) -> Result<Handle, ExecError> {
        if self.address.is_empty() {
            return Err(ExecError::Io(
                "this server does not run jobs on Ray (--executor ray): it only follows the Ray jobs started before".into(),
            ));
        }
        if launch.argv.is_empty() {
            return Err(ExecError::Io("the command is empty".into()));
        }
        // Ray starts the entrypoint in a folder of its own
        let cwd = std::path::absolute(&launch.cwd).map_err(|e| {
            ExecError::Io(format!("the job's folder {}: {e}", launch.cwd.display()))
        })?;
        let launch = &Launch {
            cwd,
            ..launch.clone()
        };
        let submission_id = submission_id(launch);
        let entrypoint = entrypoint_in(launch, self.shared_filesystem);
        let env = env_vars(launch);
        let body = json!({
            "entrypoint": entrypoint,
            "submission_id": submission_id,
            "runtime_env": {"env_vars": env},
            "metadata": {"atelier_job_id": launch.job_id},
            // a CPU of its own: Ray places the command on any node with one
            // free (without it every command runs on the head) and queues it
            // while none is
            "entrypoint_num_cpus": 1,
        });
        let url = format!("{}/api/jobs/", self.address);
        match self.call_json("POST", &url, Some(&body)) {
            Ok(_) => {}
            Err(CallError::Server(m)) if m.contains("already exists") => {
                return Err(ExecError::Io(format!(
                    "the Ray cluster at {} has a job with the submission id '{submission_id}' already (this attempt was submitted before)",
                    self.address
                )));
            }
            Err(CallError::NotFound) => {
                return Err(ExecError::Io(format!(
                    "{} answered POST /api/jobs/ with 404: it is not a Ray head's dashboard, or its Jobs API is off (ray[default] is needed on the head)",
                    self.address
                )));
            }
            Err(e) => return Err(e.into_exec(&self.address)),
        }
        self.reached(&self.address);
        self.entrypoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(submission_id.clone(), entrypoint);
        tracing::info!(job_id = launch.job_id, submission_id, address = %self.address, "Ray job submitted");
        let data = serde_json::to_value(RayHandle {
            address: self.address.clone(),
            submission_id,
            planned: false,
        })
        .map_err(|e| ExecError::Io(format!("encoding the handle: {e}")))?;
        Ok(Handle {
            executor: NAME.into(),
            data,
        })
    }

    /// The submission id comes from the launch (job id and attempt): known
    /// before the submission. The planned handle differs from the one
    /// `submit` returns only in its `planned` mark.
    fn planned_handle(&self, launch: &Launch) -> Option<Handle> {
        if self.address.is_empty() {
            return None;
        }
        let data = serde_json::to_value(RayHandle {
            address: self.address.clone(),
            submission_id: submission_id(launch),
            planned: true,
        })
        .ok()?;
        Some(Handle {
            executor: NAME.into(),
            data,
        })
    }

    fn status(&self, h: &Handle) -> Result<ExecStatus, ExecError> {
        let rh = parse_handle(h)?;
        self.status_of(&rh)
    }

    fn shares_filesystem(&self) -> bool {
        self.shared_filesystem
    }

    fn worker_atelier_bin(&self) -> Option<String> {
        self.worker_bin.clone()
    }

    /// The node the job's driver runs on (Ray's `driver_node_id`).
    fn placement(&self, h: &Handle) -> Option<String> {
        let rh = parse_handle(h).ok()?;
        let v = self.call_json("GET", &job_url(&rh, ""), None).ok()?;
        v["driver_node_id"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    }

    fn logs(&self, h: &Handle, from: u64, max_bytes: usize) -> Result<LogChunk, ExecError> {
        let rh = parse_handle(h)?;
        let err = |e: CallError| e.into_exec(&rh.address);
        let (mut text, mut complete) = self.log_text(&rh, false).map_err(err)?;
        // a last line without a newline is the command's last only once it ended
        let partial = !text.is_empty() && !text.ends_with('\n') && from < text.len() as u64;
        if partial
            && !complete
            && let Ok(ExecStatus::Exited(_) | ExecStatus::Lost { .. }) = self.status_of(&rh)
        {
            self.mark_ended(&rh.submission_id);
            (text, complete) = self.log_text(&rh, true).map_err(err)?;
        }
        let skip = if text.contains("Running entrypoint for job ") {
            let e = self.entrypoint_of(&rh).map_err(err)?;
            entrypoint_line(&text, &rh.submission_id, &e)
        } else {
            None
        };
        Ok(chunk_of(&text, skip, from, max_bytes, complete))
    }

    /// Ray's own stop: `grace` is not passed on (see the module docs).
    fn stop(&self, h: &Handle, _grace: Duration) -> Result<(), ExecError> {
        let rh = parse_handle(h)?;
        match self.call_json("POST", &job_url(&rh, "/stop"), Some(&json!({}))) {
            // {"stopped": false}: it had ended already
            Ok(_) | Err(CallError::NotFound) => Ok(()),
            Err(e) => Err(e.into_exec(&rh.address)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn launch(argv: &[&str], state: &str) -> Launch {
        Launch {
            job_id: "0193-abc".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![],
            cwd: PathBuf::from("/srv/jobs/it's here"),
            state_dir: PathBuf::from(state),
        }
    }

    #[test]
    fn the_entrypoint_quotes_every_argument_and_enters_the_folder() {
        let l = launch(
            &["python3", "-c", "print('a b')", "$HOME", ""],
            "/x/executor/2",
        );
        assert_eq!(
            entrypoint(&l),
            r#"cd '/srv/jobs/it'\''s here' && exec python3 -c 'print('\''a b'\'')' '$HOME' ''"#
        );
        assert_eq!(submission_id(&l), "atelier-0193-abc-2");
        let other = launch(&["true"], "/x/state");
        let id = submission_id(&other);
        assert!(
            id.starts_with("atelier-0193-abc-") && id.len() == "atelier-0193-abc-".len() + 8,
            "{id}"
        );
        assert_eq!(id, submission_id(&other), "stable");
    }

    #[test]
    fn values_ray_would_expand_are_exported_in_the_entrypoint() {
        let mut l = launch(&["env"], "/x/executor/1");
        l.env = vec![
            ("PLAIN".into(), "a b".into()),
            ("PRICE".into(), "$5 or ${X}".into()),
        ];
        assert_eq!(
            entrypoint(&l),
            r"cd '/srv/jobs/it'\''s here' && export PRICE='$5 or ${X}' && exec env"
        );
        let vars = env_vars(&l);
        assert_eq!(vars.len(), 1);
        assert_eq!(vars["PLAIN"], "a b");
        // staged on the worker: no folder of the server's to enter
        assert_eq!(
            entrypoint_in(&l, false),
            r"export PRICE='$5 or ${X}' && exec env"
        );
    }

    #[test]
    fn staging_is_the_default_and_a_shared_filesystem_is_asked_for() {
        let ex = RayExecutor::new("http://127.0.0.1:8265").expect("address");
        assert!(!ex.shares_filesystem());
        assert_eq!(ex.worker_atelier_bin(), None);
        let ex = ex
            .with_shared_filesystem(true)
            .with_worker_atelier_bin(Some("/opt/atelier/bin/atelier".into()));
        assert!(ex.shares_filesystem());
        assert_eq!(
            ex.worker_atelier_bin().as_deref(),
            Some("/opt/atelier/bin/atelier")
        );
    }

    #[test]
    fn addresses_and_handles_are_checked() {
        assert_eq!(
            normalize_address(" http://h:8265/ ").as_deref(),
            Ok("http://h:8265")
        );
        for bad in [
            "h:8265",
            "ftp://h",
            "http://",
            "http://:8265",
            "http://h:8265/?x",
        ] {
            assert!(normalize_address(bad).is_err(), "{bad}");
        }
        let ok = Handle {
            executor: NAME.into(),
            data: json!({"address": "http://127.0.0.1:8265", "submission_id": "atelier-j-1"}),
        };
        assert!(parse_handle(&ok).is_ok());
        for bad in [
            Handle {
                executor: "local".into(),
                data: ok.data.clone(),
            },
            Handle {
                executor: NAME.into(),
                data: json!({"address": "nowhere", "submission_id": "a"}),
            },
            Handle {
                executor: NAME.into(),
                data: json!({"address": "http://h:1", "submission_id": "../x"}),
            },
            Handle {
                executor: NAME.into(),
                data: json!({"pid": 3}),
            },
        ] {
            assert!(
                matches!(parse_handle(&bad), Err(ExecError::BadHandle(_))),
                "{bad:?}"
            );
        }
    }

    fn texts(c: &LogChunk) -> Vec<&str> {
        c.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn logs_leave_out_rays_lines_and_resume_at_offsets() {
        let ep = "cd /w && exec sh -c 'echo hi'";
        let text = format!(
            "2026-12-06 19:47:11,121\tINFO job_manager.py:581 -- Runtime env is setting up.\nRunning entrypoint for job s1: {ep}\nhi\nthere\r\nlast"
        );
        let skip = entrypoint_line(&text, "s1", ep);
        let all = chunk_of(&text, skip.clone(), 0, 1 << 20, false);
        assert_eq!(texts(&all), ["hi", "there"]);
        assert_eq!(all.next as usize, text.len() - "last".len());
        assert!(all.lines.iter().all(|l| l.stream == "stdout"));
        // nothing new until the job ends; then the last line without a newline
        let again = chunk_of(&text, skip.clone(), all.next, 1 << 20, false);
        assert!(again.lines.is_empty() && again.next == all.next);
        let end = chunk_of(&text, skip.clone(), all.next, 1 << 20, true);
        assert_eq!(texts(&end), ["last"]);
        assert_eq!(end.next as usize, text.len());
        // small reads return one line at a time and add up to the same
        let mut from = 0;
        let mut got = Vec::new();
        loop {
            let c = chunk_of(&text, skip.clone(), from, 1, true);
            if c.next == from {
                break;
            }
            from = c.next;
            got.extend(c.lines.into_iter().map(|l| l.text));
        }
        assert_eq!(got, ["hi", "there", "last"]);
    }

    #[test]
    fn rays_entrypoint_line_after_a_partial_line_is_cut_out() {
        // a fast command: Ray's line landed after the output's unfinished last line
        let ep = "exec true";
        let text = format!("out\npartial: Running entrypoint for job s2: {ep}\n");
        let text = text.replace("partial: ", "partial");
        let skip = entrypoint_line(&text, "s2", ep);
        assert!(skip.is_some());
        let c = chunk_of(&text, skip.clone(), 0, 1 << 20, false);
        assert_eq!(texts(&c), ["out"]);
        let c2 = chunk_of(&text, skip, c.next, 1 << 20, true);
        assert_eq!(texts(&c2), ["partial"]);
        assert_eq!(c2.next as usize, text.len());
    }

    #[test]
    fn long_lines_are_cut_between_characters() {
        let long = "é".repeat(MAX_LINE); // 2 bytes each
        let text = format!("{long}\n");
        let c = chunk_of(&text, None, 0, 1 << 20, false);
        assert_eq!(c.lines.len(), 2);
        assert_eq!(
            c.lines.iter().map(|l| l.text.len()).sum::<usize>(),
            long.len()
        );
        assert_eq!(c.next as usize, text.len());
    }

    #[test]
    fn ray_log_lines_are_recognised() {
        assert!(is_ray_log_line(
            "2026-12-06 19:47:11,121\tINFO job_manager.py:581 -- Runtime env is setting up."
        ));
        assert!(!is_ray_log_line(
            "2026-12-06 19:47:11,121\tINFO my_script.py:3 -- mine"
        ));
        assert!(!is_ray_log_line("hello"));
    }

    #[test]
    fn an_unreachable_head_is_an_error_then_lost() {
        // a port nothing listens on
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let address = format!("http://127.0.0.1:{port}");
        let ex = RayExecutor::new(&address)
            .expect("address")
            .with_lost_after(Duration::from_millis(300));
        let e = ex.probe().expect_err("nothing there").to_string();
        assert!(
            e.contains(&format!("the Ray cluster at {address} is unreachable")),
            "{e}"
        );
        let h = Handle {
            executor: NAME.into(),
            data: json!({"address": address, "submission_id": "atelier-j-1"}),
        };
        let first = ex.status(&h).expect_err("an error first");
        assert!(first.to_string().contains("is unreachable"), "{first}");
        std::thread::sleep(Duration::from_millis(350));
        match ex.status(&h) {
            Ok(ExecStatus::Lost { reason }) => assert!(
                reason.starts_with(&format!("the Ray cluster at {address} is unreachable: ")),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
