//! The supervisor process: runs one command, records its output and how it
//! ended in the state folder, and stops it on request. See the parent
//! module's docs for the files and the signals.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::executor::{Exit, Launch};

use super::oom::{self, OomCounter};
use super::output::{self, OutputWriter};
use super::{
    DEFAULT_GRACE, EXIT_FILE, OUTPUT_FILE, STOP_FILE, SUPERVISOR_FILE, SupervisorRecord, proc,
    read_grace, write_atomically,
};

/// How often the supervisor looks at its children, the stop file and its
/// deadlines.
const TICK: Duration = Duration::from_millis(50);

/// When the command's main process has ended but others of its group still
/// run (forgotten background processes), they get SIGTERM, then SIGKILL
/// after this.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// How long the supervisor waits for the output pipes to close once the
/// command's group is gone (a process that left the group may hold them).
const PIPES_GRACE: Duration = Duration::from_secs(2);

/// Set by the SIGTERM / SIGINT handler.
static STOP_SIGNAL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_SIGNAL.store(true, Ordering::SeqCst);
}

/// Why the supervisor could not do its work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SuperviseError {
    #[error("reading the launch file {path}: {source}")]
    ReadLaunch { path: PathBuf, source: io::Error },
    #[error("the launch file {path} is not valid: {source}")]
    ParseLaunch {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SuperviseError {
    let what = what.into();
    move |source| SuperviseError::Io { what, source }
}

/// Runs the command described by `launch_file` (a [`Launch`] as JSON, in
/// its state folder) to its end: the body of `atelier __supervise
/// <launch_file>`. Meant to be the whole of a process (it installs signal
/// handlers and reaps every child of the process). Exit code 0 when
/// `exit.json` was written, 1 otherwise (the reason is logged to stderr,
/// which the executor sends to `supervisor.log`).
pub fn supervise(launch_file: &Path) -> ExitCode {
    if let Err(e) = install_signal_handlers() {
        tracing::error!(error = %e, "could not install the stop signal handlers");
        return ExitCode::FAILURE;
    }
    match run(launch_file) {
        Ok(exit) => {
            // an absent code, signal or peak is left out (code=0, not code=Some(0))
            tracing::info!(
                code = exit.code,
                signal = exit.signal,
                stopped = exit.stopped,
                oom_killed = exit.oom_killed,
                peak_rss_kib = proc::peak_rss_kib("self"),
                "the command ended"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "supervisor failed");
            // Leave a record, so the job fails with this reason rather than
            // as lost, when the folder is known and writable.
            if let Some(dir) = launch_file.parent() {
                let exit = Exit {
                    code: None,
                    signal: None,
                    oom_killed: false,
                    stopped: false,
                    start_error: Some(format!("the job's supervisor failed: {e}")),
                    detail: None,
                    ended_ms: output::now_ms(),
                };
                if !dir.join(EXIT_FILE).exists()
                    && let Err(e) = write_exit(dir, &exit)
                {
                    tracing::error!(error = %e, "could not record the failure either");
                }
            }
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM and SIGINT set [`STOP_SIGNAL`]; then both are unblocked (the
/// launching process starts the supervisor with them blocked, so a stop
/// that comes before this point waits, pending, instead of killing the
/// supervisor before it could record anything).
fn install_signal_handlers() -> io::Result<()> {
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an
        // atomic, which is async-signal-safe.
        let r = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // Children must stay waitable whatever the launching process ignored
    // (an ignored SIGCHLD survives exec and would make the kernel reap
    // them, status and all).
    // SAFETY: resetting a disposition to its default.
    if unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain sigset manipulation on a local set.
    let r = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

fn run(launch_file: &Path) -> Result<Exit, SuperviseError> {
    let text = std::fs::read(launch_file).map_err(|source| SuperviseError::ReadLaunch {
        path: launch_file.to_path_buf(),
        source,
    })?;
    let launch: Launch =
        serde_json::from_slice(&text).map_err(|source| SuperviseError::ParseLaunch {
            path: launch_file.to_path_buf(),
            source,
        })?;
    let dir = launch.state_dir.as_path();
    let me = proc::own_stat().map_err(io_err("reading /proc/self/stat"))?;
    let mut record = SupervisorRecord {
        pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        start_ticks: me.start_ticks,
        boot_id: proc::boot_id(),
        command_pgid: None,
        command_start_ticks: None,
        oom_counter: None,
    };
    // First: a planned handle (only the state folder) finds us through this.
    write_record(dir, &record)?;
    // Orphaned descendants of the command come to us, not to init, so we
    // reap them and can wait for the whole group to be gone.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "could not become a child subreaper");
    }
    let oom_counter = OomCounter::discover();
    record.oom_counter = oom_counter.as_ref().map(|c| c.path().to_path_buf());
    write_record(dir, &record)?;
    let out = Arc::new(
        OutputWriter::create(&dir.join(OUTPUT_FILE)).map_err(io_err(format!(
            "creating {}",
            dir.join(OUTPUT_FILE).display()
        )))?,
    );

    let mut exit = Exit {
        code: None,
        signal: None,
        oom_killed: false,
        stopped: false,
        start_error: None,
        detail: None,
        ended_ms: 0,
    };
    // Stopped before it started: do not start it.
    if STOP_SIGNAL.load(Ordering::SeqCst) || dir.join(STOP_FILE).exists() {
        exit.stopped = true;
        exit.ended_ms = output::now_ms();
        write_exit(dir, &exit)?;
        return Ok(exit);
    }

    let oom_before = oom_counter.as_ref().and_then(OomCounter::read);
    let mut child = match spawn(&launch) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, argv = ?launch.argv, "the command could not start");
            exit.start_error = Some(e.to_string());
            exit.ended_ms = output::now_ms();
            write_exit(dir, &exit)?;
            return Ok(exit);
        }
    };
    let pgid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    record.command_pgid = Some(pgid);
    record.command_start_ticks = proc::stat(pgid).map(|s| s.start_ticks);
    // The command runs: from here on nothing may end the supervisor before
    // the command. Without this record only a lost job's leftovers go
    // unnoticed.
    if let Err(e) = write_record(dir, &record) {
        tracing::warn!(error = %e, "could not record the command's process group");
    }
    tracing::info!(pid = pgid, argv = ?launch.argv, "command started");

    let (done_tx, done_rx) = mpsc::channel::<()>();
    let readers = usize::from(start_reader("stdout", child.stdout.take(), &out, &done_tx))
        + usize::from(start_reader("stderr", child.stderr.take(), &out, &done_tx));
    drop(done_tx);

    let ended = watch(dir, pgid);
    exit.code = ended.code;
    exit.signal = ended.signal;
    exit.stopped = ended.stopped;
    exit.ended_ms = ended.ended_ms;
    let oom_after = oom_counter.as_ref().and_then(OomCounter::read);
    exit.oom_killed = oom::oom_killed(exit.signal, ended.sent_sigkill, oom_before, oom_after);

    // The pipes close when the group is gone, unless a process that left
    // the group holds them: then give up on the rest of the output.
    let deadline = Instant::now() + PIPES_GRACE;
    for _ in 0..readers {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            tracing::warn!(
                "a process outside the command's group holds its output open; the rest of its output is not recorded"
            );
            break;
        }
    }
    out.close();
    // `child` is never waited for through std: `watch` reaped it.
    write_exit(dir, &exit)?;
    Ok(exit)
}

/// Starts a thread that writes the lines of `pipe` to `out` and says so on
/// `done` at the end of the stream. Returns whether it started.
fn start_reader(
    name: &'static str,
    pipe: Option<impl io::Read + Send + 'static>,
    out: &Arc<OutputWriter>,
    done: &mpsc::Sender<()>,
) -> bool {
    let Some(pipe) = pipe else {
        return false;
    };
    let out = Arc::clone(out);
    let done = done.clone();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024)
        .spawn(move || {
            if let Err(e) = output::pump(pipe, |line| out.line(name, line)) {
                tracing::warn!(stream = name, error = %e, "reading the command's output");
            }
            let _ = done.send(());
        });
    match spawned {
        Ok(_) => true,
        // The pipe went with the closure and is closed: the command gets
        // EPIPE on that stream, and the rest goes on.
        Err(e) => {
            tracing::error!(stream = name, error = %e, "could not start an output reader");
            false
        }
    }
}

/// Starts the command: its own process group, stdin from /dev/null, output
/// piped to us, and SIGKILL if we die first (a supervisor killed with
/// `kill -9` must not leave its command running unobserved; see the module
/// docs on the lost case).
fn spawn(launch: &Launch) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no program to run (the command is empty)",
        ));
    };
    // Said apart from a missing program, which gives the same OS error.
    match std::fs::metadata(&launch.cwd) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!(
                    "the working folder {} is not a folder",
                    launch.cwd.display()
                ),
            ));
        }
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("the working folder {}: {e}", launch.cwd.display()),
            ));
        }
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: getpid is async-signal-safe and called before the fork.
    let supervisor = unsafe { libc::getpid() };
    // SAFETY: between fork and exec only async-signal-safe calls (prctl,
    // getppid) and no allocation.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // We died between the fork and the prctl.
            if libc::getppid() != supervisor {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// How the command's main process ended, and what the supervisor did.
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    stopped: bool,
    sent_sigkill: bool,
    ended_ms: i64,
}

/// Waits for the command's main process (pid = pgid) and then for the rest
/// of its group, reaping every child, and carries out stop requests:
/// SIGTERM to the group at once, SIGKILL to what is left of it when the
/// grace runs out.
fn watch(dir: &Path, pgid: i32) -> Ended {
    let stop_file = dir.join(STOP_FILE);
    let mut status: Option<libc::c_int> = None;
    let mut ended_ms = 0;
    let mut stopped = false;
    let mut term_sent = false;
    let mut sent_sigkill = false;
    let mut leftovers_seen = false;
    let mut kill_at: Option<Instant> = None;
    let status = loop {
        if reap(pgid, &mut status) {
            ended_ms = output::now_ms();
        }
        let now = Instant::now();

        // A stop request: the first by the stop file or a signal, later ones
        // by a signal (`stop` signals every time), each of which may bring
        // the deadline nearer.
        let signalled = STOP_SIGNAL.swap(false, Ordering::SeqCst);
        if signalled || (!stopped && status.is_none() && stop_file.exists()) {
            let grace = read_grace(&stop_file).unwrap_or(DEFAULT_GRACE);
            let at = now + grace;
            kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
            if status.is_none() && !stopped {
                stopped = true;
                tracing::info!(
                    grace_ms = grace.as_millis(),
                    "stop requested: SIGTERM to the command's process group"
                );
            }
            if !term_sent {
                term_sent = true;
                if let Err(e) = proc::signal_group(pgid, libc::SIGTERM) {
                    tracing::debug!(error = %e, "SIGTERM to the command's group");
                }
            }
        }

        let group_alive = proc::group_exists(pgid);
        if let Some(st) = status
            && !group_alive
        {
            break st;
        }
        if status.is_some() && group_alive && !leftovers_seen {
            leftovers_seen = true;
            tracing::info!("the command ended but left processes in its group: SIGTERM to them");
            let at = now + LEFTOVER_GRACE;
            kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
            if !term_sent {
                term_sent = true;
                if let Err(e) = proc::signal_group(pgid, libc::SIGTERM) {
                    tracing::debug!(error = %e, "SIGTERM to the leftovers");
                }
            }
        }
        // Every tick past the deadline, in case something forked meanwhile.
        if group_alive && kill_at.is_some_and(|k| now >= k) {
            if !sent_sigkill {
                tracing::info!("grace over: SIGKILL to the command's process group");
            }
            if status.is_none() {
                sent_sigkill = true;
            }
            if let Err(e) = proc::signal_group(pgid, libc::SIGKILL) {
                tracing::debug!(error = %e, "SIGKILL to the command's group");
            }
        }
        std::thread::sleep(TICK);
    };
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Ended {
        code,
        signal,
        stopped,
        sent_sigkill,
        ended_ms,
    }
}

/// Reaps every child that has ended (the command, and as a subreaper its
/// orphaned descendants); records the main process's status. Returns
/// whether the main process was reaped now.
fn reap(main: i32, status: &mut Option<libc::c_int>) -> bool {
    let mut reaped_main = false;
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            return reaped_main;
        }
        if pid == main {
            *status = Some(st);
            reaped_main = true;
        }
    }
}

fn write_record(dir: &Path, record: &SupervisorRecord) -> Result<(), SuperviseError> {
    let path = dir.join(SUPERVISOR_FILE);
    let json = serde_json::to_vec_pretty(record).map_err(|e| SuperviseError::Io {
        what: format!("encoding {}", path.display()),
        source: io::Error::other(e),
    })?;
    write_atomically(&path, &json).map_err(io_err(format!("writing {}", path.display())))
}

fn write_exit(dir: &Path, exit: &Exit) -> Result<(), SuperviseError> {
    let path = dir.join(EXIT_FILE);
    let json = serde_json::to_vec_pretty(exit).map_err(|e| SuperviseError::Io {
        what: format!("encoding {}", path.display()),
        source: io::Error::other(e),
    })?;
    write_atomically(&path, &json).map_err(io_err(format!("writing {}", path.display())))
}
