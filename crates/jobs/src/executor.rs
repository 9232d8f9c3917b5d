//! Where user code runs. An [`Executor`] starts a command and can later —
//! from any server process on the same database, after a restart too — ask
//! how it is doing, read its logs and stop it, given only the [`Handle`] it
//! returned (stored with the job as JSON). Nothing assumes the process is a
//! child of the server: the local executor runs it under a small supervisor
//! that records what a later process needs on disk, and a remote executor
//! (Ray's Jobs API, [`crate::ray`]) keeps it on the cluster.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// The job's id (names the work on the executor; one launch per attempt).
    pub job_id: String,
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// Environment added to the executor's own.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The folder the executor keeps its own files in (logs, exit status).
    pub state_dir: PathBuf,
}

/// An executor's reference to one launched command, stored with the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// The executor that made it (`"local"`, `"ray"`).
    pub executor: String,
    /// Executor-specific, e.g. `{"pid": 123, "start_ticks": 456, "state_dir": "…"}`.
    pub data: serde_json::Value,
}

/// How a launched command is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExecStatus {
    /// Still running.
    Running,
    /// Ended on its own or was stopped.
    Exited(Exit),
    /// Nobody can tell any more (the supervisor vanished without a record):
    /// the reason, in words.
    Lost { reason: String },
}

/// Words every [`ExecStatus::Lost`] reason of a command that never started
/// begins with (see [`ExecStatus::never_started`]).
pub const NEVER_STARTED: &str = "the command never started";

impl ExecStatus {
    /// A `Lost` status whose command never started: nothing ran, so starting
    /// it again does not run it twice.
    pub fn never_started(&self) -> bool {
        matches!(self, ExecStatus::Lost { reason } if reason.starts_with(NEVER_STARTED))
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// The kernel's out-of-memory killer ended it.
    pub oom_killed: bool,
    /// It was stopped on request ([`Executor::stop`]).
    pub stopped: bool,
    /// It could not start at all: the OS error, in words (e.g. "No such file
    /// or directory (os error 2)" for a missing program).
    pub start_error: Option<String>,
    /// The executor's own words about the end, when it has some (the Ray
    /// executor: Ray's message on a failed job), added to [`Exit::reason`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub ended_ms: i64,
}

impl Exit {
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.start_error.is_none()
    }

    /// Why it failed, in words (`None` on success), with the executor's
    /// [`Exit::detail`] after it.
    pub fn reason(&self) -> Option<String> {
        let base = self.base_reason()?;
        Some(match &self.detail {
            Some(d) if !d.is_empty() => format!("{base} ({d})"),
            _ => base,
        })
    }

    fn base_reason(&self) -> Option<String> {
        if let Some(e) = &self.start_error {
            return Some(format!("the command could not start: {e}"));
        }
        if self.oom_killed {
            return Some(
                "killed by the kernel's out-of-memory killer: the job used more memory than the machine could give it".into(),
            );
        }
        match (self.code, self.signal) {
            (Some(0), _) => None,
            (Some(127), _) => Some(
                "the command exited with status 127: command not found (is the program installed and on PATH?)".into(),
            ),
            (Some(126), _) => Some(
                "the command exited with status 126: found but not executable (check its permissions)".into(),
            ),
            (Some(c), _) => Some(format!("the command exited with status {c}")),
            (None, Some(s)) => Some(format!(
                "the command was killed by signal {s} ({})",
                signal_name(s)
            )),
            (None, None) => Some("the command ended without an exit status".into()),
        }
    }
}

/// A few signal names people recognise.
pub fn signal_name(s: i32) -> &'static str {
    match s {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => "unknown signal",
    }
}

/// One stream line of a command's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the line was read, in ms since the epoch.
    pub at_ms: i64,
    /// `"stdout"` or `"stderr"`.
    pub stream: String,
    pub text: String,
}

/// Lines from a byte offset on, and where to continue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogChunk {
    pub lines: Vec<LogLine>,
    /// Pass this as `from` next time.
    pub next: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The handle was made by another executor or is malformed.
    #[error("this executor cannot use that handle: {0}")]
    BadHandle(String),
    #[error("{0}")]
    Io(String),
}

/// Runs commands somewhere.
pub trait Executor: Send + Sync + 'static {
    /// `"local"`, `"ray"`, …
    fn name(&self) -> &'static str;
    /// Start `launch`; returns at once. A command that cannot start (a
    /// missing program) is not an error here: its status is an [`Exit`] with
    /// `start_error`.
    fn submit(&self, launch: &Launch) -> Result<Handle, ExecError>;
    /// The handle [`Executor::submit`] will know `launch` by, when it can be
    /// told before anything starts: the runner records it first, so that a
    /// server killed between the start and the record leaves a job another
    /// worker adopts rather than one it fails while the command runs on.
    /// Given to `status`, `logs` and `stop`, it names the same work as the
    /// handle `submit` returns; before anything started, `status` is `Running`
    /// for a moment, then a `Lost` whose reason begins with [`NEVER_STARTED`].
    fn planned_handle(&self, _launch: &Launch) -> Option<Handle> {
        None
    }
    fn status(&self, h: &Handle) -> Result<ExecStatus, ExecError>;
    /// Output lines from byte offset `from`, at most `max_bytes` of them.
    fn logs(&self, h: &Handle, from: u64, max_bytes: usize) -> Result<LogChunk, ExecError>;
    /// Ask the command to stop: SIGTERM (or the executor's equivalent) to the
    /// whole process group now, SIGKILL after `grace` if it is still running.
    /// Returns at once.
    fn stop(&self, h: &Handle, grace: Duration) -> Result<(), ExecError>;
    /// Whether the command sees this server's files at their paths: its
    /// [`Launch::cwd`] and the paths in [`Launch::env`] (true for the local
    /// executor; a Ray cluster only with a shared volume). When it does not,
    /// the caller stages the job on the worker itself (userjobs: `atelier
    /// job-worker` fetches inputs from and uploads outputs to the server).
    fn shares_filesystem(&self) -> bool {
        true
    }
    /// The Atelier program on the machines commands run on, when it is not
    /// this server's own executable (`--ray-atelier-bin`).
    fn worker_atelier_bin(&self) -> Option<String> {
        None
    }
    /// Where the command runs, in the executor's words, once it is placed
    /// (the Ray executor: the id of the node its driver runs on); `None`
    /// when the executor cannot tell or it has not been placed yet.
    fn placement(&self, _h: &Handle) -> Option<String> {
        None
    }
}

/// Submits to one executor and follows every handle with the executor that
/// made it (by [`Executor::name`]): jobs started before a server switched
/// executors (`--executor local|ray`) go on being followed, stopped and
/// adopted.
pub struct Routed {
    primary: std::sync::Arc<dyn Executor>,
    others: Vec<std::sync::Arc<dyn Executor>>,
}

impl Routed {
    /// New launches go to `primary`; handles to it or to the first of
    /// `others` with the handle's executor name.
    pub fn new(
        primary: std::sync::Arc<dyn Executor>,
        others: Vec<std::sync::Arc<dyn Executor>>,
    ) -> Routed {
        Routed { primary, others }
    }

    fn by_handle(&self, h: &Handle) -> Result<&dyn Executor, ExecError> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|e| e.name() == h.executor)
            .map(|e| e.as_ref())
            .ok_or_else(|| {
                ExecError::BadHandle(format!(
                    "it was made by the '{}' executor, which this server does not have",
                    h.executor
                ))
            })
    }
}

impl Executor for Routed {
    fn name(&self) -> &'static str {
        self.primary.name()
    }
    fn submit(&self, launch: &Launch) -> Result<Handle, ExecError> {
        self.primary.submit(launch)
    }
    fn planned_handle(&self, launch: &Launch) -> Option<Handle> {
        self.primary.planned_handle(launch)
    }
    fn status(&self, h: &Handle) -> Result<ExecStatus, ExecError> {
        self.by_handle(h)?.status(h)
    }
    fn logs(&self, h: &Handle, from: u64, max_bytes: usize) -> Result<LogChunk, ExecError> {
        self.by_handle(h)?.logs(h, from, max_bytes)
    }
    fn stop(&self, h: &Handle, grace: Duration) -> Result<(), ExecError> {
        self.by_handle(h)?.stop(h, grace)
    }
    /// New launches go to the primary: its filesystem is the one that counts.
    fn shares_filesystem(&self) -> bool {
        self.primary.shares_filesystem()
    }
    fn worker_atelier_bin(&self) -> Option<String> {
        self.primary.worker_atelier_bin()
    }
    fn placement(&self, h: &Handle) -> Option<String> {
        self.by_handle(h).ok()?.placement(h)
    }
}

#[cfg(test)]
mod routed_tests {
    use super::*;
    use std::sync::Arc;

    /// Answers with its own name (as the exit's detail) and refuses others' handles.
    struct Named(&'static str);

    impl Executor for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn submit(&self, _: &Launch) -> Result<Handle, ExecError> {
            Ok(Handle {
                executor: self.0.into(),
                data: serde_json::Value::Null,
            })
        }
        fn status(&self, h: &Handle) -> Result<ExecStatus, ExecError> {
            assert_eq!(h.executor, self.0, "a handle reached another executor");
            Ok(ExecStatus::Lost {
                reason: self.0.into(),
            })
        }
        fn logs(&self, _: &Handle, from: u64, _: usize) -> Result<LogChunk, ExecError> {
            Ok(LogChunk {
                lines: vec![],
                next: from,
            })
        }
        fn stop(&self, _: &Handle, _: Duration) -> Result<(), ExecError> {
            Ok(())
        }
    }

    #[test]
    fn launches_go_to_the_primary_and_handles_to_their_maker() {
        let r = Routed::new(Arc::new(Named("ray")), vec![Arc::new(Named("local"))]);
        assert_eq!(r.name(), "ray");
        let launch = Launch {
            job_id: "j".into(),
            argv: vec!["true".into()],
            env: vec![],
            cwd: PathBuf::from("/"),
            state_dir: PathBuf::from("/s"),
        };
        assert_eq!(r.submit(&launch).expect("submit").executor, "ray");
        for name in ["ray", "local"] {
            let h = Handle {
                executor: name.into(),
                data: serde_json::Value::Null,
            };
            assert_eq!(
                r.status(&h).expect("status"),
                ExecStatus::Lost {
                    reason: name.into()
                }
            );
        }
        let k8s = Handle {
            executor: "k8s".into(),
            data: serde_json::Value::Null,
        };
        assert!(matches!(r.status(&k8s), Err(ExecError::BadHandle(m)) if m.contains("'k8s'")));
    }
}
