//! The local executor: users' commands run on this machine, each under a
//! small supervisor process of its own, so that any server process on the
//! same machine — the one that launched it, or another one after a restart
//! or a `kill -9` — can follow and stop the command given only the stored
//! [`Handle`].
//!
//! ```text
//!  server ──spawn──► supervisor ──spawn──► command ──► its children …
//!  (any process)     own session           own process group
//!                    (setsid), child       (pgid = its pid), dies with
//!                    subreaper             the supervisor (PDEATHSIG)
//! ```
//!
//! # The state folder
//!
//! Everything a later process needs is a file in [`Launch::state_dir`] (one
//! folder per launch: [`LocalExecutor::submit`] refuses a folder that holds a
//! `launch.json` already):
//!
//! | file | written by | holds |
//! |---|---|---|
//! | `launch.json` | `submit` | the [`Launch`]; its path is the supervisor's argument |
//! | `supervisor.log` | the supervisor's stdout and stderr | its own log lines |
//! | `supervisor.json` | the supervisor, as its first act (atomically) and once the command runs | its pid, start ticks and boot id; the command's process group; the OOM counter it reads |
//! | `output.jsonl` | the supervisor, one `write` per line | the command's output, one `{"at_ms", "stream", "text"}` object per line |
//! | `stop` | `stop` | the grace in milliseconds, as decimal text |
//! | `exit.json` | the supervisor, last, by write-then-rename | the [`Exit`] |
//!
//! Output lines are stamped when the supervisor reads them. A line longer
//! than 64 KiB is recorded as several (cut between characters), invalid
//! UTF-8 is replaced by U+FFFD, `\r\n` counts as a newline, and a last line
//! without a newline is kept. The supervisor holds at most one line per
//! stream in memory, so its memory does not grow with the output; `logs`
//! reads from a byte offset and holds only what it returns.
//!
//! # Processes and signals
//!
//! `submit` starts the supervisor (`atelier __supervise <state_dir>/launch.json`
//! in production) in a session of its own, stdin from `/dev/null`, stdout and
//! stderr to `supervisor.log`, with SIGTERM and SIGINT blocked until its
//! handlers are installed (a stop that comes at once waits instead of killing
//! it), and no descriptor the server opened without close-on-exec (a
//! listening socket would keep a restarted server from binding its port). A
//! thread of the launching process reaps it when it ends; whether that
//! process is still alive then does not matter (init or a subreaper reaps it
//! otherwise).
//!
//! Supervisors stay in the server's cgroup. Under systemd the default
//! `KillMode=control-group` therefore SIGTERMs them when the service stops,
//! which stops every job (recorded as `stopped`); `KillMode=process` lets
//! jobs run on across a restart of the service, for the next server process
//! to re-attach to.
//!
//! The supervisor records itself, starts the command with [`Launch::env`]
//! added to its environment, in [`Launch::cwd`], stdin from `/dev/null`,
//! stdout and stderr piped to itself, in a new process group, and marked to
//! be SIGKILLed if the supervisor dies. It is a child subreaper, so the
//! command's orphaned descendants are its children too and are reaped.
//!
//! A stop is a `stop` file, a SIGTERM or a SIGINT to the supervisor
//! ([`LocalExecutor::stop`] writes the file, then signals). The supervisor
//! sends SIGTERM to the command's whole process group at once and SIGKILL to
//! whatever of the group is left when the grace (from the file; 10 s
//! without one) runs out; a later stop with a shorter grace brings the
//! SIGKILL nearer. A stop before the command started means it never starts.
//! The exit is `stopped` when the stop came while the command's main process
//! ran, whether it then exited on its own (a TERM handler) or was killed.
//!
//! When the main process ends, on its own or not, processes it left in its
//! group get SIGTERM, then SIGKILL two seconds later; `exit.json` is written
//! once the group is empty and every process reaped (so a job that is
//! `Exited` has nothing of it running), and the supervisor exits. A process
//! that left the group (`setsid`, a daemon) is not followed; if it holds the
//! output pipes, the supervisor stops waiting for them after two seconds.
//!
//! The exit's `oom_killed` is a heuristic over the `oom_kill` counter of
//! the supervisor's memory cgroup (the command's too): a SIGKILL of the
//! command's main process that the supervisor did not send, while that
//! counter rose. `local/oom.rs` documents where the counter is found (cgroup
//! v2 `memory.events`, v1 `memory.oom_control`, else `/proc/vmstat`) and
//! when the guess can be wrong.
//!
//! # Re-attaching
//!
//! The handle is `{"pid", "start_ticks", "boot_id", "state_dir"}`: the
//! supervisor's pid, its start time in clock ticks after boot (field 22 of
//! `/proc/<pid>/stat`) and the machine's boot id. The pair pid + start ticks
//! names one process even when the pid is reused; a handle from an earlier
//! boot names nothing that runs. Any process given the handle — a second
//! `LocalExecutor` after a restart — reads the same files and signals the
//! same supervisor (through a pidfd, after checking its start ticks, so a
//! reused pid is never signalled). [`LocalExecutor::status`] is:
//!
//! * `Exited` when `exit.json` exists;
//! * `Running` while the supervisor named by the handle is alive (a zombie
//!   is not);
//! * `Lost` otherwise (looked at again for `exit.json` first, which the
//!   supervisor writes just before it ends).
//!
//! # The planned handle
//!
//! [`LocalExecutor::planned_handle`] is `{"state_dir"}` alone, known before
//! `submit`: the runner records it first, so a server killed between the
//! start and the record leaves a handle another worker adopts. `status`,
//! `logs` and `stop` find the supervisor through `supervisor.json`, which it
//! writes before anything else; until then:
//!
//! * no `launch.json`: `Lost`, the command never started (the server
//!   stopped before `submit`);
//! * a `launch.json` written less than 10 s ago: `Running` (the supervisor
//!   is starting); `stop` writes the `stop` file, so it ends without
//!   starting the command;
//! * an older one: `Lost`, the supervisor never started.
//!
//! Those `Lost` reasons begin with [`crate::executor::NEVER_STARTED`]. Full
//! handles (`{"pid", "start_ticks", …}`, what `submit` returns) work as
//! before.
//!
//! # The lost case
//!
//! `Lost` means the supervisor is gone without an `exit.json`: it was killed
//! with `kill -9` (or crashed: see `supervisor.log`), or the machine
//! restarted. The command's main process dies with it (PDEATHSIG), so its
//! output cannot be recorded any more and nothing could record its end.
//! Processes it started that are still alive keep running, orphaned; the
//! `Lost` reason says so (found by a `/proc` scan for the command's process
//! group in the dead supervisor's session, an identity that no new process
//! can take while any of them lives), and [`LocalExecutor::stop`] ends them:
//! SIGTERM now and SIGKILL after the grace, from a thread of the calling
//! process. The queue should call `stop` on a job it finds `Lost`.

mod oom;
mod output;
mod proc;
mod supervisor;

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::executor::{
    ExecError, ExecStatus, Executor, Exit, Handle, Launch, LogChunk, NEVER_STARTED,
};

pub use supervisor::supervise;

const LAUNCH_FILE: &str = "launch.json";
const SUPERVISOR_LOG: &str = "supervisor.log";
const SUPERVISOR_FILE: &str = "supervisor.json";
const OUTPUT_FILE: &str = "output.jsonl";
const STOP_FILE: &str = "stop";
const EXIT_FILE: &str = "exit.json";

/// The grace of a stop that gives none (a SIGTERM to the supervisor from
/// elsewhere, or an unreadable `stop` file).
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The executor's name, in [`Handle::executor`].
pub const NAME: &str = "local";

/// Runs commands on this machine, each under a supervisor process (see the
/// module docs).
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    supervisor: Vec<String>,
}

/// [`Handle::data`] of the local executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LocalHandle {
    /// The supervisor's pid.
    pid: i32,
    /// The supervisor's start time (`/proc/<pid>/stat` field 22).
    start_ticks: u64,
    /// The state folder, absolute.
    state_dir: PathBuf,
    /// The boot the pid belongs to (absent when it could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot_id: Option<String>,
}

/// `supervisor.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SupervisorRecord {
    pid: i32,
    start_ticks: u64,
    #[serde(default)]
    boot_id: Option<String>,
    /// The command's process group (= its main process's pid), once it runs.
    #[serde(default)]
    command_pgid: Option<i32>,
    #[serde(default)]
    command_start_ticks: Option<u64>,
    /// The `oom_kill` counter the supervisor reads.
    #[serde(default)]
    oom_counter: Option<PathBuf>,
}

impl LocalExecutor {
    /// `supervisor` is the program and arguments that start a supervisor; the
    /// launch file's path is appended. In production that is
    /// `[current_exe, "__supervise"]` ([`LocalExecutor::for_current_exe`]).
    pub fn new(supervisor: Vec<String>) -> LocalExecutor {
        LocalExecutor { supervisor }
    }

    /// Supervisors are `<this program> __supervise`, the `atelier` binary's
    /// hidden subcommand that calls [`supervise`]. When the program's file
    /// has been replaced or removed since it started (an upgrade in place),
    /// `/proc/self/exe` still runs this very program.
    pub fn for_current_exe() -> Result<LocalExecutor, ExecError> {
        let exe = std::env::current_exe()
            .map_err(|e| ExecError::Io(format!("finding this program's path: {e}")))?;
        let exe = if exe.is_file() {
            exe
        } else {
            PathBuf::from("/proc/self/exe")
        };
        let exe = exe.into_os_string().into_string().map_err(|p| {
            ExecError::Io(format!(
                "this program's path is not UTF-8: {}",
                Path::new(&p).display()
            ))
        })?;
        Ok(LocalExecutor::new(vec![exe, "__supervise".into()]))
    }
}

/// [`Handle::data`] as stored: a full handle, or a planned one that names
/// only the state folder ([`Executor::planned_handle`]).
#[derive(Debug, Deserialize)]
struct StoredHandle {
    #[serde(default)]
    pid: Option<i32>,
    #[serde(default)]
    start_ticks: Option<u64>,
    state_dir: PathBuf,
    #[serde(default)]
    boot_id: Option<String>,
}

/// A parsed handle: the supervisor it names, or only its state folder.
#[derive(Debug)]
enum Parsed {
    Full(LocalHandle),
    Planned(PathBuf),
}

impl Parsed {
    fn state_dir(&self) -> &Path {
        match self {
            Parsed::Full(lh) => &lh.state_dir,
            Parsed::Planned(dir) => dir,
        }
    }
}

/// How long a launch file may wait for its supervisor's record before the
/// supervisor counts as never started.
const SUPERVISOR_START_WAIT: Duration = Duration::from_secs(10);

fn parse_handle(h: &Handle) -> Result<Parsed, ExecError> {
    if h.executor != NAME {
        return Err(ExecError::BadHandle(format!(
            "it was made by the '{}' executor, not '{NAME}'",
            h.executor
        )));
    }
    let sh: StoredHandle = serde_json::from_value(h.data.clone())
        .map_err(|e| ExecError::BadHandle(format!("{e}: {}", h.data)))?;
    if !sh.state_dir.is_absolute() {
        return Err(ExecError::BadHandle(format!(
            "the state folder {} is not an absolute path",
            sh.state_dir.display()
        )));
    }
    let (pid, start_ticks) = match (sh.pid, sh.start_ticks) {
        (Some(p), Some(t)) => (p, t),
        (None, None) => return Ok(Parsed::Planned(sh.state_dir)),
        _ => {
            return Err(ExecError::BadHandle(format!(
                "it names a pid without its start ticks, or start ticks without a pid: {}",
                h.data
            )));
        }
    };
    if pid <= 1 {
        return Err(ExecError::BadHandle(format!(
            "pid {pid} cannot be a supervisor"
        )));
    }
    Ok(Parsed::Full(LocalHandle {
        pid,
        start_ticks,
        state_dir: sh.state_dir,
        boot_id: sh.boot_id,
    }))
}

/// What a planned handle names now: the supervisor, once it recorded itself;
/// otherwise the status of work that has not started (`Running` while its
/// supervisor may still be starting, a never-started `Lost` after that).
fn resolve_planned(dir: &Path) -> Result<Result<LocalHandle, ExecStatus>, ExecError> {
    let record_path = dir.join(SUPERVISOR_FILE);
    match std::fs::read(&record_path) {
        Ok(bytes) => {
            let record: SupervisorRecord = serde_json::from_slice(&bytes).map_err(|e| {
                ExecError::Io(format!(
                    "{} is not a valid supervisor record: {e}",
                    record_path.display()
                ))
            })?;
            return Ok(Ok(LocalHandle {
                pid: record.pid,
                start_ticks: record.start_ticks,
                state_dir: dir.to_path_buf(),
                boot_id: record.boot_id,
            }));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(io_error(
                format_args!("reading {}", record_path.display()),
                e,
            ));
        }
    }
    let launch_path = dir.join(LAUNCH_FILE);
    let written = match std::fs::metadata(&launch_path) {
        Ok(m) => m.modified().ok(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Err(ExecStatus::Lost {
                reason: format!(
                    "{NEVER_STARTED} (nothing was launched in {}: the server stopped before starting it)",
                    dir.display()
                ),
            }));
        }
        Err(e) => {
            return Err(io_error(
                format_args!("reading {}", launch_path.display()),
                e,
            ));
        }
    };
    let age = written
        .and_then(|t| t.elapsed().ok())
        .unwrap_or(Duration::ZERO);
    if age < SUPERVISOR_START_WAIT {
        return Ok(Err(ExecStatus::Running));
    }
    Ok(Err(ExecStatus::Lost {
        reason: format!(
            "{NEVER_STARTED}: the supervisor never started ({} was written {} s ago and no supervisor recorded itself; see {})",
            launch_path.display(),
            age.as_secs(),
            dir.join(SUPERVISOR_LOG).display()
        ),
    }))
}

fn full_handle(lh: &LocalHandle) -> Result<Handle, ExecError> {
    let data =
        serde_json::to_value(lh).map_err(|e| ExecError::Io(format!("encoding the handle: {e}")))?;
    Ok(Handle {
        executor: NAME.into(),
        data,
    })
}

fn io_error(what: impl std::fmt::Display, e: io::Error) -> ExecError {
    ExecError::Io(format!("{what}: {e}"))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it
/// over `path`: readers see the old file or the whole new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("not a file path"))?;
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The grace in a `stop` file.
fn read_grace(path: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse().ok().map(Duration::from_millis)
}

fn read_exit(dir: &Path) -> Result<Option<Exit>, ExecError> {
    let path = dir.join(EXIT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ExecError::Io(format!(
                "{} is not a valid exit record: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(format_args!("reading {}", path.display()), e)),
    }
}

/// Whether the handle's pid and start ticks belong to this boot.
fn same_boot(lh: &LocalHandle) -> bool {
    match (&lh.boot_id, proc::boot_id()) {
        (Some(then), Some(now)) => *then == now,
        _ => true,
    }
}

/// The command's process group and its live members, when the supervisor
/// named by the handle recorded one.
fn command_group(lh: &LocalHandle) -> Option<(i32, Vec<i32>)> {
    if !same_boot(lh) {
        return None;
    }
    let bytes = std::fs::read(lh.state_dir.join(SUPERVISOR_FILE)).ok()?;
    let record: SupervisorRecord = serde_json::from_slice(&bytes).ok()?;
    if record.pid != lh.pid || record.start_ticks != lh.start_ticks {
        return None;
    }
    let pgid = record.command_pgid?;
    // The supervisor is the leader of the command's session.
    Some((pgid, proc::group_members(pgid, lh.pid)))
}

fn lost_reason(lh: &LocalHandle) -> String {
    let mut reason = format!(
        "the supervisor of this job (pid {}) is gone without recording how the command ended",
        lh.pid
    );
    if !same_boot(lh) {
        reason.push_str(" (the machine has restarted since it started)");
    } else if let Some((pgid, members)) = command_group(lh)
        && !members.is_empty()
    {
        let n = members.len();
        reason.push_str(&format!(
            "; {n} process{} of the command (process group {pgid}) still run{} without it: stopping the job ends {}",
            if n == 1 { "" } else { "es" },
            if n == 1 { "s" } else { "" },
            if n == 1 { "it" } else { "them" },
        ));
    }
    reason
}

/// SIGTERM to an orphaned command group now, SIGKILL after `grace` (from a
/// thread of this process) if any of it is still alive then.
fn stop_orphans(pgid: i32, session: i32, grace: Duration) {
    tracing::info!(
        pgid,
        "the job's supervisor is gone; stopping what is left of its command"
    );
    let first = if grace.is_zero() {
        libc::SIGKILL
    } else {
        libc::SIGTERM
    };
    if let Err(e) = proc::signal_group(pgid, first) {
        tracing::debug!(pgid, error = %e, "signalling an orphaned command group");
    }
    if grace.is_zero() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("job-orphan-kill".into())
        .spawn(move || {
            std::thread::sleep(grace);
            if !proc::group_members(pgid, session).is_empty()
                && let Err(e) = proc::signal_group(pgid, libc::SIGKILL)
            {
                tracing::debug!(pgid, error = %e, "SIGKILL to an orphaned command group");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the thread that SIGKILLs an orphaned command group after its grace");
    }
}

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn submit(&self, launch: &Launch) -> Result<Handle, ExecError> {
        let Some((program, prefix)) = self.supervisor.split_first() else {
            return Err(ExecError::Io(
                "the local executor was given no supervisor command".into(),
            ));
        };
        let state_dir = std::path::absolute(&launch.state_dir).map_err(|e| {
            io_error(
                format_args!("the state folder {}", launch.state_dir.display()),
                e,
            )
        })?;
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| io_error(format_args!("creating {}", state_dir.display()), e))?;
        let launch = Launch {
            state_dir: state_dir.clone(),
            ..launch.clone()
        };
        let launch_path = state_dir.join(LAUNCH_FILE);
        let json = serde_json::to_vec_pretty(&launch)
            .map_err(|e| ExecError::Io(format!("encoding the launch: {e}")))?;
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&launch_path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(ExecError::Io(format!(
                    "the state folder {} was used by another launch already; each launch needs a folder of its own",
                    state_dir.display()
                )));
            }
            Err(e) => {
                return Err(io_error(
                    format_args!("creating {}", launch_path.display()),
                    e,
                ));
            }
        };
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(format_args!("writing {}", launch_path.display()), e))?;
        drop(file);

        let log_path = state_dir.join(SUPERVISOR_LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| io_error(format_args!("opening {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| io_error(format_args!("opening {}", log_path.display()), e))?;

        let mut cmd = Command::new(program);
        cmd.args(prefix)
            .arg(&launch_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: between fork and exec only async-signal-safe calls
        // (setsid, close_range, sigset manipulation, pthread_sigmask) and no
        // allocation.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                // Descriptors this process opened without O_CLOEXEC (a
                // library's socket, say) must not live on in a supervisor
                // that outlives it: a restarted server could not bind its
                // port again. Marked close-on-exec rather than closed, so
                // std's exec-error pipe still works. Linux 5.11+; older
                // kernels keep what they keep.
                let _ = libc::syscall(
                    libc::SYS_close_range,
                    3 as libc::c_uint,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigaddset(&mut set, libc::SIGINT);
                let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                if r != 0 {
                    return Err(io::Error::from_raw_os_error(r));
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| io_error(format_args!("starting the job's supervisor ({program})"), e))?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        // Our unreaped child: its stat stays readable even if it ended.
        let Some(stat) = proc::stat(pid) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ExecError::Io(format!(
                "cannot read /proc/{pid}/stat of the job's supervisor"
            )));
        };
        let job_id = launch.job_id.clone();
        let reaper = std::thread::Builder::new()
            .name("job-supervisor-reaper".into())
            .spawn(move || match child.wait() {
                Ok(status) => tracing::debug!(job_id, pid, %status, "job supervisor ended"),
                Err(e) => tracing::warn!(job_id, pid, error = %e, "waiting for a job supervisor"),
            });
        if let Err(e) = reaper {
            // It stays a zombie until this process ends; nothing else is amiss.
            tracing::warn!(pid, error = %e, "could not start the thread that reaps a job supervisor");
        }
        tracing::info!(job_id = launch.job_id, pid, state_dir = %state_dir.display(), "job supervisor started");
        full_handle(&LocalHandle {
            pid,
            start_ticks: stat.start_ticks,
            state_dir,
            boot_id: proc::boot_id(),
        })
    }

    /// A handle that names only the state folder (`{"state_dir": …}`): the
    /// supervisor records its pid there as its first act, and `status`,
    /// `logs` and `stop` find it through that record.
    fn planned_handle(&self, launch: &Launch) -> Option<Handle> {
        let state_dir = std::path::absolute(&launch.state_dir).ok()?;
        Some(Handle {
            executor: NAME.into(),
            data: serde_json::json!({ "state_dir": state_dir }),
        })
    }

    fn status(&self, h: &Handle) -> Result<ExecStatus, ExecError> {
        let parsed = parse_handle(h)?;
        if let Some(exit) = read_exit(parsed.state_dir())? {
            return Ok(ExecStatus::Exited(exit));
        }
        let lh = match parsed {
            Parsed::Full(lh) => lh,
            Parsed::Planned(dir) => match resolve_planned(&dir)? {
                Ok(lh) => lh,
                Err(status) => {
                    // the supervisor may have recorded itself and ended since
                    if let Some(exit) = read_exit(&dir)? {
                        return Ok(ExecStatus::Exited(exit));
                    }
                    return Ok(status);
                }
            },
        };
        if same_boot(&lh) && proc::alive(lh.pid, lh.start_ticks) {
            return Ok(ExecStatus::Running);
        }
        // It may have written exit.json and ended since we looked.
        if let Some(exit) = read_exit(&lh.state_dir)? {
            return Ok(ExecStatus::Exited(exit));
        }
        Ok(ExecStatus::Lost {
            reason: lost_reason(&lh),
        })
    }

    fn logs(&self, h: &Handle, from: u64, max_bytes: usize) -> Result<LogChunk, ExecError> {
        let parsed = parse_handle(h)?;
        let path = parsed.state_dir().join(OUTPUT_FILE);
        output::read_chunk(&path, from, max_bytes)
            .map_err(|e| io_error(format_args!("reading {}", path.display()), e))
    }

    fn stop(&self, h: &Handle, grace: Duration) -> Result<(), ExecError> {
        let parsed = parse_handle(h)?;
        if read_exit(parsed.state_dir())?.is_some() {
            return Ok(());
        }
        let lh = match parsed {
            Parsed::Full(lh) => lh,
            Parsed::Planned(dir) => match resolve_planned(&dir)? {
                Ok(lh) => lh,
                Err(_) => {
                    // No supervisor yet: a stop file makes one that still
                    // starts end at once without starting the command.
                    if dir.join(LAUNCH_FILE).exists() {
                        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
                        let stop_path = dir.join(STOP_FILE);
                        write_atomically(&stop_path, ms.to_string().as_bytes()).map_err(|e| {
                            io_error(format_args!("writing {}", stop_path.display()), e)
                        })?;
                        // it may have recorded itself meanwhile: signal it too
                        if let Ok(lh) = resolve_planned(&dir)? {
                            return self.stop(&full_handle(&lh)?, grace);
                        }
                    }
                    return Ok(());
                }
            },
        };
        if !same_boot(&lh) {
            return Ok(());
        }
        let stop_path = lh.state_dir.join(STOP_FILE);
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let written = write_atomically(&stop_path, ms.to_string().as_bytes());
        match proc::signal_if_same(lh.pid, lh.start_ticks, libc::SIGTERM) {
            Ok(true) => {
                if let Err(e) = written {
                    tracing::warn!(path = %stop_path.display(), error = %e, "could not write the stop file; the supervisor uses its default grace");
                }
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => {
                return Err(io_error(
                    format_args!("signalling the job's supervisor (pid {})", lh.pid),
                    e,
                ));
            }
        }
        // The supervisor is gone: ended (exit.json), or lost with perhaps
        // some of its command still running.
        if read_exit(&lh.state_dir)?.is_some() {
            return Ok(());
        }
        if let Some((pgid, members)) = command_group(&lh)
            && !members.is_empty()
        {
            stop_orphans(pgid, lh.pid, grace);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(data: serde_json::Value) -> Handle {
        Handle {
            executor: NAME.into(),
            data,
        }
    }

    #[test]
    fn handles_are_checked() {
        let ok = handle(serde_json::json!({"pid": 1234, "start_ticks": 5, "state_dir": "/tmp/x"}));
        assert!(matches!(parse_handle(&ok), Ok(Parsed::Full(h)) if h.pid == 1234));
        let planned = handle(serde_json::json!({"state_dir": "/tmp/x"}));
        assert!(
            matches!(parse_handle(&planned), Ok(Parsed::Planned(d)) if d == Path::new("/tmp/x"))
        );
        let other = Handle {
            executor: "ray".into(),
            data: ok.data.clone(),
        };
        for bad in [
            other,
            handle(serde_json::json!({"pid": 1, "start_ticks": 5, "state_dir": "/tmp/x"})),
            handle(serde_json::json!({"pid": 0, "start_ticks": 5, "state_dir": "/tmp/x"})),
            handle(serde_json::json!({"pid": 1234, "state_dir": "/tmp/x"})),
            handle(serde_json::json!({"pid": 1234, "start_ticks": 5, "state_dir": "rel"})),
            handle(serde_json::json!({"state_dir": "rel"})),
            handle(serde_json::json!({"start_ticks": 5, "state_dir": "/tmp/x"})),
            handle(serde_json::json!("nonsense")),
        ] {
            assert!(
                matches!(parse_handle(&bad), Err(ExecError::BadHandle(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn atomic_writes_and_the_stop_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STOP_FILE);
        assert_eq!(read_grace(&path), None);
        write_atomically(&path, b"1500").expect("write");
        write_atomically(&path, b"250\n").expect("overwrite");
        assert_eq!(read_grace(&path), Some(Duration::from_millis(250)));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STOP_FILE)]);
        std::fs::write(&path, "soon").expect("write");
        assert_eq!(read_grace(&path), None);
    }

    #[test]
    fn a_corrupt_exit_record_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_exit(dir.path()).expect("none").is_none());
        std::fs::write(dir.path().join(EXIT_FILE), "{").expect("write");
        assert!(matches!(read_exit(dir.path()), Err(ExecError::Io(_))));
    }
}
