//! A kernel process and a client for it over the Jupyter messaging protocol:
//! ZeroMQ sockets from the `zeromq` crate, the wire format (connection file,
//! HMAC-SHA256-signed multipart messages, protocol 5.3 headers) from our own
//! [`crate::wire`]. Messages are read as raw JSON, so that outputs are copied
//! into the notebook exactly as the kernel sent them.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout};
use zeromq::SocketRecv;

use crate::bound::{DirWatch, Endpoints, wait_bound};
use crate::error::ExecError;
use crate::kernelspec::{InterruptMode, KernelSpec, python_prefix};
use crate::wire::{self, ConnectionInfo, Sender, Signer, Transport};
use crate::{ExecOptions, KernelTransport};

/// How long a kernel gets to exit after `shutdown_request` before its
/// process group gets SIGTERM, and then SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Lines of kernel stdout/stderr kept for error messages.
const TAIL_LINES: usize = 30;
const NOTHING: &str = "(nothing)";

/// One message received from the kernel.
#[derive(Debug)]
pub(crate) struct Msg {
    pub msg_type: String,
    pub parent_id: Option<String>,
    /// The header's `date`, as the kernel wrote it.
    pub date: Option<String>,
    pub content: Value,
}

/// What a socket reader task forwards: a message, or why the socket failed.
pub(crate) type Incoming = Result<Msg, String>;

pub(crate) struct Kernel {
    pub name: String,
    process: ProcessGuard,
    interrupt_mode: InterruptMode,
    shell: Sender<zeromq::DealerSendHalf>,
    control: Sender<zeromq::DealerSocket>,
    pub iopub_rx: mpsc::UnboundedReceiver<Incoming>,
    pub shell_rx: mpsc::UnboundedReceiver<Incoming>,
    pub exit_rx: watch::Receiver<Option<ExitStatus>>,
    /// The `kernel_info_reply` content.
    pub info: Value,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// The socket readers (they own the IOPub and shell receive sockets).
    readers: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Wait until the kernel process exited; its status, if it could be read.
pub(crate) async fn wait_exit(rx: &mut watch::Receiver<Option<ExitStatus>>) -> Option<ExitStatus> {
    match rx.wait_for(Option::is_some).await {
        Ok(status) => *status,
        Err(_) => None,
    }
}

fn decode(raw: wire::Received) -> Result<Msg, String> {
    let header: Value = serde_json::from_slice(&raw.header).map_err(|e| e.to_string())?;
    let parent: Value = serde_json::from_slice(&raw.parent_header).unwrap_or(Value::Null);
    let content: Value = serde_json::from_slice(&raw.content).map_err(|e| e.to_string())?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(Msg {
        msg_type: text(&header, "msg_type").ok_or("message header without msg_type")?,
        parent_id: text(&parent, "msg_id"),
        date: text(&header, "date"),
        content,
    })
}

/// Forwards every message of one socket to a channel until the socket fails
/// or the receiver is gone; messages whose signature does not verify are
/// dropped with a warning.
fn spawn_reader<S>(
    channel: &'static str,
    mut socket: S,
    signer: Signer,
    tx: mpsc::UnboundedSender<Incoming>,
) -> JoinHandle<()>
where
    S: SocketRecv + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let zmsg = match socket.recv().await {
                Ok(m) => m,
                Err(e) => {
                    let _ = tx.send(Err(format!("{channel} socket failed: {e}")));
                    return;
                }
            };
            let msg = wire::parse(zmsg.into_vec(), &signer)
                .map_err(|e| e.to_string())
                .and_then(decode);
            match msg {
                Ok(msg) => {
                    tracing::trace!(channel, msg_type = %msg.msg_type, "kernel message");
                    if tx.send(Ok(msg)).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(channel, "ignoring an unreadable kernel message: {e}"),
            }
        }
    })
}

fn spawn_output_logger(
    stream: &'static str,
    pipe: impl AsyncRead + Unpin + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(target: "nbexec::kernel", stream, "{line}");
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    })
}

/// `{name}` placeholders of a kernel spec's argv, as `jupyter_client` fills them.
fn substitute_braces(arg: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}');
        let replaced = close.and_then(|close| {
            let key = &after[..close];
            let valid =
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            valid.then(|| vars.get(key)).flatten().map(|v| (v, close))
        });
        match replaced {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `$VAR` / `${VAR}` in a kernel spec's env values, from our environment
/// (Python's `Template.safe_substitute`: unknown names are left as they are).
fn substitute_env(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match (!name.is_empty())
            .then(|| std::env::var(name).ok())
            .flatten()
        {
            Some(v) => {
                out.push_str(&v);
                rest = &after[consumed..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_python_command(arg0: &str) -> bool {
    arg0 == "python"
        || arg0 == "python3"
        || arg0
            .strip_prefix("python3.")
            .is_some_and(|minor| !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()))
}

/// The kernel's command line: the spec's argv with `{connection_file}`,
/// `{resource_dir}` and `{prefix}` substituted, `python`/`python3` replaced by
/// `opts.python`, and IPython's history kept in memory for ipykernel specs
/// (as nbclient does).
pub(crate) fn kernel_command(
    spec: &KernelSpec,
    python: Option<&Path>,
    connection_file: &Path,
) -> Vec<String> {
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    vars.insert(
        "connection_file",
        connection_file.to_string_lossy().into_owned(),
    );
    vars.insert("resource_dir", spec.dir.to_string_lossy().into_owned());
    if let Some(prefix) = python.and_then(python_prefix) {
        vars.insert("prefix", prefix.to_string_lossy().into_owned());
    }
    let mut argv: Vec<String> = spec
        .argv
        .iter()
        .map(|a| substitute_braces(a, &vars))
        .collect();
    if let (Some(python), Some(first)) = (python, argv.first_mut())
        && is_python_command(first)
    {
        *first = python.to_string_lossy().into_owned();
    }
    let ipykernel = matches!(spec.name.as_str(), "python" | "python2" | "python3");
    if ipykernel
        && !argv
            .iter()
            .any(|a| a.starts_with("--HistoryManager.hist_file"))
    {
        argv.push("--HistoryManager.hist_file=:memory:".into());
    }
    argv
}

/// The kernel's process group and the tasks watching it: dropping this kills
/// the group (so no error path can leave a kernel behind).
struct ProcessGuard {
    pid: i32,
    /// The stdout/stderr loggers.
    loggers: Vec<JoinHandle<()>>,
    /// The exit watcher.
    watcher: Option<JoinHandle<()>>,
}

impl ProcessGuard {
    /// Let the loggers read what an exited kernel printed last (its pipes
    /// close when it exits, unless a child of it still holds them).
    async fn settle_output(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        for logger in &mut self.loggers {
            if !logger.is_finished() {
                let _ = tokio::time::timeout_at(deadline, logger).await;
            }
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        kill_group(self.pid, libc::SIGKILL);
        for task in self.loggers.iter().chain(&self.watcher) {
            task.abort();
        }
    }
}

fn kill_group(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: killpg only sends a signal; the kernel was started as the
        // leader of its own process group, so `pid` is that group's id.
        let rc = unsafe { libc::killpg(pid, signal) };
        if rc != 0 {
            tracing::trace!(pid, signal, "killpg: {}", std::io::Error::last_os_error());
        }
    }
}

/// A folder for the connection file and IPC sockets with a short path
/// (Unix socket paths are limited to about 100 bytes).
fn runtime_dir() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("nbexec-").tempdir()?;
    if dir.path().as_os_str().len() > 80 {
        return tempfile::Builder::new()
            .prefix("nbexec-")
            .tempdir_in("/tmp");
    }
    Ok(dir)
}

impl Kernel {
    /// Start the kernel and wait until it answers `kernel_info_request` and
    /// its IOPub channel is subscribed (JEP 65 `iopub_welcome`, or a first
    /// status message for kernels without it).
    pub(crate) async fn start(spec: &KernelSpec, opts: &ExecOptions) -> Result<Kernel, ExecError> {
        let fail = |reason: String| ExecError::KernelStart {
            kernel: spec.name.clone(),
            reason,
        };
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + opts.start_timeout;
        let dir = runtime_dir()?;
        let session = uuid::Uuid::new_v4().to_string();
        let key = uuid::Uuid::new_v4().to_string();

        let mut listeners = Vec::new();
        let (transport, ip, ports) = match opts.transport {
            KernelTransport::Ipc => (
                Transport::Ipc,
                dir.path().join("k").to_string_lossy().into_owned(),
                vec![1, 2, 3, 4, 5],
            ),
            KernelTransport::Tcp => {
                let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
                let (ports, held) = wire::reserve_ports(ip, 5)
                    .map_err(|e| fail(format!("no free loopback ports: {e}")))?;
                listeners = held;
                (Transport::Tcp, ip.to_string(), ports)
            }
        };
        let info = ConnectionInfo {
            ip,
            transport,
            shell_port: ports[0],
            iopub_port: ports[1],
            stdin_port: ports[2],
            control_port: ports[3],
            hb_port: ports[4],
            key,
            signature_scheme: wire::SIGNATURE_SCHEME.into(),
            kernel_name: Some(spec.name.clone()),
        };
        let connection_file = dir.path().join("kernel.json");
        std::fs::write(
            &connection_file,
            serde_json::to_vec_pretty(&info).map_err(|e| fail(e.to_string()))?,
        )?;

        let endpoints = match info.transport {
            Transport::Ipc => Endpoints::Ipc(
                [info.shell_port, info.iopub_port, info.control_port]
                    .iter()
                    .map(|port| PathBuf::from(format!("{}-{port}", info.ip)))
                    .collect(),
            ),
            Transport::Tcp => Endpoints::Tcp(
                [info.shell_port, info.iopub_port, info.control_port]
                    .iter()
                    .map(|&port| (std::net::Ipv4Addr::LOCALHOST, port).into())
                    .collect(),
            ),
        };
        let watch = match info.transport {
            Transport::Ipc => match DirWatch::new(dir.path()) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::debug!(
                        "cannot watch {}: {e}; probing instead",
                        dir.path().display()
                    );
                    None
                }
            },
            Transport::Tcp => None,
        };

        let argv = kernel_command(spec, opts.python.as_deref(), &connection_file);
        let Some((program, args)) = argv.split_first() else {
            return Err(fail("its kernel.json has an empty argv".into()));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for (k, v) in &spec.env {
            cmd.env(k, substitute_env(v));
        }
        cmd.envs(&opts.env);
        cmd.env("JPY_PARENT_PID", std::process::id().to_string());
        if let Some(cwd) = &opts.cwd {
            cmd.current_dir(cwd);
        }
        // Free the reserved ports only now, just before the kernel binds them,
        // and not after spawning: the child holds copies of our descriptors
        // until its exec has closed them, and a connection to a listener in
        // that state is accepted, then reset.
        drop(listeners);
        tracing::debug!(kernel = %spec.name, ?argv, "starting kernel");
        let mut child = cmd.spawn().map_err(|e| {
            fail(format!(
                "cannot run {program:?}: {e} (check the kernel spec in {} or set the python path)",
                spec.dir.display()
            ))
        })?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);

        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut process = ProcessGuard {
            pid,
            loggers: Vec::new(),
            watcher: None,
        };
        if let Some(out) = child.stdout.take() {
            process
                .loggers
                .push(spawn_output_logger("stdout", out, tail.clone()));
        }
        if let Some(err) = child.stderr.take() {
            process
                .loggers
                .push(spawn_output_logger("stderr", err, tail.clone()));
        }
        let (exit_tx, exit_rx) = watch::channel(None);
        process.watcher = Some(tokio::spawn(async move {
            let status = child.wait().await;
            match status {
                Ok(status) => {
                    let _ = exit_tx.send(Some(status));
                }
                Err(e) => tracing::warn!("waiting for the kernel process failed: {e}"),
            }
        }));

        let mut kernel_exit = exit_rx.clone();
        let connect = async {
            wait_bound(&endpoints, watch)
                .await
                .map_err(|e| e.to_string())?;
            tracing::debug!(elapsed = ?started.elapsed(), "the kernel bound its sockets");
            tokio::try_join!(
                wire::connect_shell(&info, &session),
                wire::connect_iopub(&info),
                wire::connect_control(&info),
            )
            .map_err(|e| e.to_string())
        };
        let (shell, iopub, control) = tokio::select! {
            r = connect => r.map_err(|e| fail(format!("cannot connect to it: {e}")))?,
            status = wait_exit(&mut kernel_exit) => {
                let status = status.map_or_else(|| "unknown status".into(), |s| s.to_string());
                process.settle_output().await;
                return Err(fail(format!(
                    "it exited during start-up ({status}); its last output:\n{}",
                    tail_string(&tail)
                )));
            }
            _ = sleep_until(deadline) => {
                return Err(fail(format!(
                    "it did not open its sockets within {:?} (start_timeout); its last output:\n{}",
                    opts.start_timeout,
                    tail_string(&tail)
                )));
            }
        };
        tracing::debug!(kernel = %spec.name, elapsed = ?started.elapsed(), "connected to the kernel's sockets");
        let signer = Signer::new(&info.key);
        let (shell_send, shell_recv) = shell.split();
        let (iopub_tx, iopub_rx) = mpsc::unbounded_channel();
        let (shell_tx, shell_rx) = mpsc::unbounded_channel();
        let readers = vec![
            spawn_reader("iopub", iopub, signer.clone(), iopub_tx),
            spawn_reader("shell", shell_recv, signer.clone(), shell_tx),
        ];

        let mut kernel = Kernel {
            name: spec.name.clone(),
            process,
            interrupt_mode: spec.interrupt_mode,
            shell: Sender::new(shell_send, signer.clone(), &session),
            control: Sender::new(control, signer, &session),
            iopub_rx,
            shell_rx,
            exit_rx,
            info: Value::Null,
            tail,
            readers,
            _dir: dir,
        };
        match kernel.handshake(deadline).await {
            Ok(()) => {
                tracing::debug!(kernel = %spec.name, elapsed = ?started.elapsed(), "kernel ready");
                Ok(kernel)
            }
            Err(reason) => {
                kernel.kill();
                kernel.process.settle_output().await;
                Err(fail(format!(
                    "{reason}; its last output:\n{}",
                    tail_string(&kernel.tail)
                )))
            }
        }
    }

    async fn handshake(&mut self, deadline: tokio::time::Instant) -> Result<(), String> {
        let request_id = self
            .shell
            .send("kernel_info_request", &wire::kernel_info_request())
            .await
            .map_err(|e| format!("cannot send kernel_info_request: {e}"))?;
        let mut reply: Option<Value> = None;
        let mut subscribed = false;
        while reply.is_none() || !subscribed {
            tokio::select! {
                m = self.shell_rx.recv() => match m {
                    Some(Ok(msg)) if msg.parent_id.as_deref() == Some(&request_id)
                        && msg.msg_type == "kernel_info_reply" => reply = Some(msg.content),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Err("the shell channel closed".into()),
                },
                m = self.iopub_rx.recv() => match m {
                    // `iopub_welcome` (ipykernel ≥ 7) or any status message
                    // proves that our subscription is in place.
                    Some(Ok(_)) => subscribed = true,
                    Some(Err(e)) => return Err(e),
                    None => return Err("the iopub channel closed".into()),
                },
                status = wait_exit(&mut self.exit_rx) => {
                    let status = status.map_or_else(|| "unknown status".into(), |s| s.to_string());
                    return Err(format!("it exited during start-up ({status})"));
                }
                _ = sleep_until(deadline) => {
                    return Err(if reply.is_none() {
                        "it did not answer kernel_info_request within start_timeout".into()
                    } else {
                        "its IOPub channel sent nothing within start_timeout".into()
                    });
                }
            }
        }
        self.info = reply.unwrap_or(Value::Null);
        Ok(())
    }

    /// Send `execute_request` for `code`; returns its msg_id.
    pub(crate) async fn execute(
        &mut self,
        code: &str,
        stop_on_error: bool,
    ) -> Result<String, String> {
        self.shell
            .send(
                "execute_request",
                &wire::execute_request(code, stop_on_error),
            )
            .await
            .map_err(|e| format!("cannot send execute_request: {e}"))
    }

    /// Interrupt the running cell (`interrupt_mode` of the kernel spec).
    pub(crate) async fn interrupt(&mut self) {
        match self.interrupt_mode {
            InterruptMode::Signal => kill_group(self.process.pid, libc::SIGINT),
            InterruptMode::Message => {
                let sent = self
                    .control
                    .send("interrupt_request", &wire::interrupt_request())
                    .await;
                if let Err(e) = sent {
                    tracing::warn!("cannot send interrupt_request: {e}");
                }
            }
        }
    }

    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit_rx.borrow()
    }

    /// The last lines the kernel printed on stdout/stderr, if any, once it
    /// has exited.
    pub(crate) async fn exit_output(&mut self) -> Option<String> {
        self.process.settle_output().await;
        self.tail()
    }

    /// The last lines the kernel printed on stdout/stderr, if any.
    pub(crate) fn tail(&self) -> Option<String> {
        let text = tail_string(&self.tail);
        (text != NOTHING).then_some(text)
    }

    fn stop_readers(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }

    fn kill(&mut self) {
        kill_group(self.process.pid, libc::SIGKILL);
    }

    /// `shutdown_request` on control, then — as jupyter_client does, with
    /// shorter waits — SIGTERM to the process group if the kernel has not
    /// exited after [`SHUTDOWN_GRACE`], and SIGKILL after as long again. (An
    /// ipykernel 7 kernel sometimes answers `shutdown_request` and then never
    /// exits; SIGTERM ends it at once.)
    pub(crate) async fn shutdown(mut self) {
        // Close our IOPub and shell sockets first: ZeroMQ would otherwise try
        // (and log failing) to reconnect once the kernel is gone.
        self.stop_readers();
        if self.exit_status().is_none() {
            let sent = self
                .control
                .send("shutdown_request", &wire::shutdown_request())
                .await;
            match sent {
                Ok(_) => {
                    let exited = timeout(SHUTDOWN_GRACE, wait_exit(&mut self.exit_rx)).await;
                    if exited.is_err() {
                        tracing::debug!(kernel = %self.name, "kernel still running after shutdown_request; SIGTERM");
                        kill_group(self.process.pid, libc::SIGTERM);
                        let exited = timeout(SHUTDOWN_GRACE, wait_exit(&mut self.exit_rx)).await;
                        if exited.is_err() {
                            tracing::warn!(kernel = %self.name, "kernel ignored shutdown_request and SIGTERM; killing it");
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot send shutdown_request: {e}"),
            }
        }
        self.kill();
        // Reap the leader (the SIGKILL makes this quick).
        let _ = timeout(Duration::from_secs(1), wait_exit(&mut self.exit_rx)).await;
    }
}

fn tail_string(tail: &Arc<Mutex<VecDeque<String>>>) -> String {
    match tail.lock() {
        Ok(t) if !t.is_empty() => t.iter().cloned().collect::<Vec<_>>().join("\n"),
        _ => NOTHING.into(),
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // `process` kills the group and stops its watchers.
        self.stop_readers();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_command_like_jupyter_client() {
        let spec = KernelSpec {
            name: "python3".into(),
            display_name: "Python 3".into(),
            language: "python".into(),
            argv: [
                "python",
                "-m",
                "ipykernel_launcher",
                "-f",
                "{connection_file}",
                "{nope}",
                "{resource_dir}/x",
            ]
            .map(str::to_owned)
            .to_vec(),
            dir: PathBuf::from("/k/python3"),
            interrupt_mode: InterruptMode::Signal,
            env: BTreeMap::new(),
        };
        let argv = kernel_command(
            &spec,
            Some(Path::new("/venv/bin/python")),
            Path::new("/tmp/c.json"),
        );
        assert_eq!(
            argv,
            [
                "/venv/bin/python",
                "-m",
                "ipykernel_launcher",
                "-f",
                "/tmp/c.json",
                "{nope}",
                "/k/python3/x",
                "--HistoryManager.hist_file=:memory:"
            ]
        );
        assert!(is_python_command("python3.11"));
        assert!(!is_python_command("python3.x"));
        assert!(!is_python_command("/usr/bin/python"));
    }

    #[test]
    fn substitutes_env_like_safe_substitute() {
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            substitute_env("a${HOME}b:$HOME"),
            format!("a{home}b:{home}")
        );
        assert_eq!(
            substitute_env("$NBEXEC_UNSET_VAR ${x"),
            "$NBEXEC_UNSET_VAR ${x"
        );
    }
}
