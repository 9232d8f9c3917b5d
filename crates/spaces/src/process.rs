//! Child processes that cannot outlive the server: each JupyterLab is the
//! leader of its own process group, gets `SIGTERM` when the server dies
//! (`PR_SET_PDEATHSIG` on Linux), and is reaped by a thread of its own,
//! which also kills whatever the JupyterLab leaves behind (its kernels run
//! in sessions of their own, so signalling the group does not reach them).
//!
//! The parent-death signal fires when the *thread* that forked the child
//! ends, not the process, so every child is forked by one spawner thread
//! that lives as long as the process.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{oneshot, watch};

type SpawnJob = (Command, oneshot::Sender<io::Result<Child>>);

fn spawner() -> &'static mpsc::Sender<SpawnJob> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        let spawned = std::thread::Builder::new()
            .name("spaces-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the spaces spawner thread: {e}");
        }
        tx
    })
}

/// A running (or exited, not yet forgotten) child process group.
#[derive(Debug)]
pub(crate) struct Launched {
    /// The child's pid, which is also its process group id.
    pub pid: u32,
    /// `None` while it runs; then how it ended.
    exited: watch::Receiver<Option<String>>,
    /// Set (under the lock) just before the child is reaped: a signal sent
    /// while holding the lock and seeing `false` cannot reach a recycled pid.
    reaped: Arc<Mutex<bool>>,
}

impl Launched {
    /// Send `sig` to the whole process group, unless the leader is reaped.
    pub fn signal_group(&self, sig: libc::c_int) -> bool {
        let reaped = self.reaped.lock().unwrap_or_else(|p| p.into_inner());
        if *reaped {
            return false;
        }
        let Ok(pgid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        // SAFETY: kill(2) has no memory effects; the group is ours (see `reaped`).
        unsafe { libc::kill(-pgid, sig) == 0 }
    }

    /// How the process ended, once it has been reaped.
    pub fn exit_status(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// Whether the process has ended, reaped or not yet (its waiter thread
    /// cleans up after it before reaping it).
    pub fn has_exited(&self) -> bool {
        if self.exited.borrow().is_some() {
            return true;
        }
        exited_unreaped(self.pid)
    }

    /// Wait until the process has ended (and been reaped), at most `timeout`.
    pub async fn wait_exit(&self, timeout: std::time::Duration) -> Option<String> {
        let mut rx = self.exited.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(v)) => v.clone(),
            // the waiter thread is gone: the status is final whatever it is
            Ok(Err(_)) => Some(self.exit_status().unwrap_or_else(|| "unknown".into())),
            Err(_) => None,
        }
    }
}

/// Start `cmd` as the leader of a new process group that receives SIGTERM
/// when this process dies.
pub(crate) async fn spawn(mut cmd: Command) -> io::Result<Launched> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: the closure runs between fork and exec and only calls
        // async-signal-safe functions (prctl, getppid).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // the server died between fork and prctl: do not start orphaned
                if libc::getppid() != parent {
                    return Err(io::Error::other("the parent process is gone"));
                }
                Ok(())
            });
        }
    }
    let (tx, rx) = oneshot::channel();
    spawner()
        .send((cmd, tx))
        .map_err(|_| io::Error::other("the spaces spawner thread is gone"))?;
    let child = rx
        .await
        .map_err(|_| io::Error::other("the spaces spawner thread is gone"))??;
    let pid = child.id();
    let (etx, erx) = watch::channel(None);
    let reaped = Arc::new(Mutex::new(false));
    let r = reaped.clone();
    std::thread::Builder::new()
        .name(format!("spaces-wait-{pid}"))
        .spawn(move || waiter(child, r, etx))?;
    Ok(Launched {
        pid,
        exited: erx,
        reaped,
    })
}

/// Wait for `child` to exit, clean up after it, reap it, report.
fn waiter(mut child: Child, reaped: Arc<Mutex<bool>>, tx: watch::Sender<Option<String>>) {
    let pid = child.id();
    wait_without_reaping(pid);
    // The leader is a zombie now, so its pid and group id cannot be reused:
    // kill the kernels it left behind and anything still in its group.
    let kernels = kernels_of(pid);
    if !kernels.is_empty() {
        tracing::info!(pid, ?kernels, "killing kernels left behind by JupyterLab");
    }
    for k in kernels {
        kill_tree(k, libc::SIGKILL);
    }
    let status = {
        let mut g = reaped.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(pgid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2); the group id is still held by the zombie leader.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        *g = true;
        child.wait()
    };
    let status = match status {
        Ok(s) => describe(s),
        Err(e) => format!("unknown ({e})"),
    };
    let _ = tx.send(Some(status));
}

#[cfg(target_os = "linux")]
fn wait_without_reaping(pid: u32) {
    let id: libc::id_t = pid;
    loop {
        // SAFETY: waitid writes into the zeroed siginfo we own.
        let r = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn wait_without_reaping(_pid: u32) {}

/// Whether our child `pid` has exited, without reaping it (or it is gone
/// already).
#[cfg(target_os = "linux")]
fn exited_unreaped(pid: u32) -> bool {
    let id: libc::id_t = pid;
    // SAFETY: waitid writes into the zeroed siginfo we own; with WNOHANG
    // it leaves si_pid 0 when the child is still running.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r != 0 || info.si_pid() != 0
    }
}

#[cfg(not(target_os = "linux"))]
fn exited_unreaped(_pid: u32) -> bool {
    false
}

fn describe(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

/// Kill `pid` and, when it leads a process group, the whole group.
pub(crate) fn kill_tree(pid: i32, sig: libc::c_int) {
    if pid <= 1 {
        return;
    }
    // SAFETY: getpgid and kill have no memory effects.
    unsafe {
        if libc::getpgid(pid) == pid {
            libc::kill(-pid, sig);
        }
        libc::kill(pid, sig);
    }
}

/// The command line of a process, NULs turned into spaces.
#[cfg(target_os = "linux")]
pub(crate) fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .replace('\0', " ")
            .trim()
            .to_string(),
    )
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn cmdline(_pid: i32) -> Option<String> {
    None
}

/// The kernels a Jupyter server started: jupyter_client gives each a new
/// session and `JPY_PARENT_PID=<server pid>` in its environment, which
/// survives the server's death (unlike the parent link).
#[cfg(target_os = "linux")]
pub(crate) fn kernels_of(server_pid: u32) -> Vec<i32> {
    let needle = format!("JPY_PARENT_PID={server_pid}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid <= 1 || u32::try_from(pid).is_ok_and(|p| p == me || p == server_pid) {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn kernels_of(_server_pid: u32) -> Vec<i32> {
    Vec::new()
}

/// Whether a process with this pid exists (a zombie counts as gone).
pub(crate) fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        Err(_) => !cfg!(target_os = "linux") && unsafe { libc::kill(pid, 0) } == 0,
    }
}

/// Kill the JupyterLab recorded in a pid file left by a server that died
/// without stopping it (and its kernels), if the pid still looks like a
/// Jupyter process. Returns whether something was killed.
pub(crate) fn kill_stale(pid: i32) -> bool {
    if pid <= 1 || u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
        return false;
    }
    let Some(cmd) = cmdline(pid) else {
        return false;
    };
    if !cmd.contains("jupyter") {
        return false;
    }
    let kernels = u32::try_from(pid).map(kernels_of).unwrap_or_default();
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    for k in kernels {
        kill_tree(k, libc::SIGKILL);
    }
    true
}
