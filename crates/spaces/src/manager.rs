//! The spaces and their JupyterLab processes: start on demand (once, however
//! many callers ask at the same time), notice deaths, stop idle ones, stop
//! everything at shutdown.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use crate::process::{self, Launched};
use crate::{SpaceError, SpaceState, SpaceStatus, SpacesConfig, now_ms, valid_space_name};

/// How long JupyterLab gets to shut down (and stop its kernels) after
/// SIGTERM before its group gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Start attempts when the free port we picked was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;
/// Environment variables passed on from the server to JupyterLab.
const PASSED_ENV: &[&str] = &[
    "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE",
    "TMPDIR",
];

pub(crate) type HttpClient = Client<HttpConnector, Body>;

/// A running JupyterLab.
#[derive(Debug)]
pub(crate) struct Running {
    pub port: u16,
    pub token: String,
    pub proc: Launched,
    pub started_ms: i64,
}

#[derive(Debug)]
struct Inner {
    state: SpaceState,
    run: Option<Arc<Running>>,
    /// The last failed start, for callers that waited on it.
    last_error: Option<SpaceError>,
}

/// One space: its process (if any) and its activity.
#[derive(Debug)]
pub(crate) struct Slot {
    pub name: String,
    start_lock: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
    /// Unix ms of the last request or websocket message; 0 = never.
    last_activity: AtomicI64,
    /// Requests in flight plus open websockets.
    busy: AtomicUsize,
    /// Start attempts finished so far (to tell a caller that waited on the
    /// start lock that the start it waited for failed).
    finished: AtomicU64,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn touch(&self) {
        self.last_activity.store(now_ms(), Ordering::Relaxed);
    }

    /// The running JupyterLab, if it is alive.
    fn alive(&self) -> Option<Arc<Running>> {
        let g = self.lock();
        g.run.as_ref().filter(|r| !r.proc.has_exited()).cloned()
    }
}

/// Keeps a space busy (never idle) while it lives: a request in flight or
/// an open websocket.
#[derive(Debug)]
pub(crate) struct Busy(Arc<Slot>);

impl Busy {
    pub(crate) fn new(slot: Arc<Slot>) -> Busy {
        slot.busy.fetch_add(1, Ordering::SeqCst);
        slot.touch();
        Busy(slot)
    }
    pub(crate) fn touch(&self) {
        self.0.touch();
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every space of this server (shared: `Arc<Spaces>`).
pub struct Spaces {
    /// Itself, for the tasks it spawns (starts and stops run to the end
    /// even when the request that asked is dropped).
    me: Weak<Spaces>,
    cfg: SpacesConfig,
    slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    pub(crate) client: HttpClient,
    closing: AtomicBool,
    closing_tx: watch::Sender<bool>,
    keeper_started: AtomicBool,
}

impl std::fmt::Debug for Spaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spaces")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

enum NotReady {
    Exited(String),
    Timeout,
    Closing,
}

impl Spaces {
    /// Spaces run as `cfg` says. Kills the JupyterLab process groups (and
    /// kernels) recorded in pid files under `state_root` by a previous server
    /// that died without stopping them.
    pub fn new(cfg: SpacesConfig) -> Arc<Spaces> {
        kill_leftovers(&cfg.state_root);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http::<Body>();
        let (closing_tx, _) = watch::channel(false);
        Arc::new_cyclic(|me| Spaces {
            me: me.clone(),
            cfg,
            slots: Mutex::new(BTreeMap::new()),
            client,
            closing: AtomicBool::new(false),
            closing_tx,
            keeper_started: AtomicBool::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SpacesConfig {
        &self.cfg
    }

    /// The workspace folder of a (valid) space name.
    pub fn workspace_dir(&self, space: &str) -> PathBuf {
        self.cfg.workspaces_root.join(space)
    }

    fn state_dir(&self, space: &str) -> PathBuf {
        self.cfg.state_root.join(space)
    }

    fn pid_file(&self, space: &str) -> PathBuf {
        self.state_dir(space).join("jupyterlab.pid")
    }

    fn log_file(&self, space: &str) -> PathBuf {
        self.state_dir(space).join("jupyterlab.log")
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn slot(&self, space: &str) -> Arc<Slot> {
        self.slots()
            .entry(space.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    name: space.to_string(),
                    start_lock: tokio::sync::Mutex::new(()),
                    inner: Mutex::new(Inner {
                        state: SpaceState::Stopped,
                        run: None,
                        last_error: None,
                    }),
                    last_activity: AtomicI64::new(0),
                    busy: AtomicUsize::new(0),
                    finished: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Start the space's JupyterLab unless it runs (a dead one is started
    /// again) and wait until it answers; `extra_env` is added to
    /// [`SpacesConfig::env`] when it starts now.
    pub async fn ensure(
        &self,
        space: &str,
        extra_env: BTreeMap<String, String>,
    ) -> Result<SpaceStatus, SpaceError> {
        if !valid_space_name(space) {
            return Err(SpaceError::InvalidName(space.to_string()));
        }
        let slot = self.slot(space);
        slot.touch();
        self.ensure_running(&slot, extra_env).await?;
        Ok(self.status_of(&slot))
    }

    /// The running JupyterLab of `slot`, started if needed. The start runs
    /// in a task of its own: a caller that goes away (a browser reloading)
    /// neither leaves a half-started JupyterLab behind nor cancels the
    /// start for the others.
    pub(crate) async fn ensure_running(
        &self,
        slot: &Arc<Slot>,
        extra_env: BTreeMap<String, String>,
    ) -> Result<Arc<Running>, SpaceError> {
        if let Some(r) = slot.alive() {
            return Ok(r);
        }
        if self.closing.load(Ordering::SeqCst) {
            return Err(SpaceError::ShuttingDown);
        }
        let Some(me) = self.me.upgrade() else {
            return Err(SpaceError::ShuttingDown);
        };
        let slot = slot.clone();
        tokio::spawn(async move { me.start_slot(&slot, extra_env).await })
            .await
            .map_err(|e| SpaceError::Io(format!("the start of a JupyterLab failed: {e}")))?
    }

    async fn start_slot(
        &self,
        slot: &Arc<Slot>,
        extra_env: BTreeMap<String, String>,
    ) -> Result<Arc<Running>, SpaceError> {
        let seen = slot.finished.load(Ordering::SeqCst);
        let _start = slot.start_lock.lock().await;
        if let Some(r) = slot.alive() {
            return Ok(r);
        }
        if slot.finished.load(Ordering::SeqCst) != seen
            && let Some(e) = slot.lock().last_error.clone()
        {
            // we waited for someone else's start, and it failed
            return Err(e);
        }
        if self.closing.load(Ordering::SeqCst) {
            return Err(SpaceError::ShuttingDown);
        }
        self.forget_dead(slot);
        {
            let mut g = slot.lock();
            g.state = SpaceState::Starting;
            g.last_error = None;
        }
        let started = self.start(&slot.name, extra_env).await;
        let mut g = slot.lock();
        slot.finished.fetch_add(1, Ordering::SeqCst);
        match started {
            Ok(r) => {
                let r = Arc::new(r);
                g.state = SpaceState::Running;
                g.run = Some(r.clone());
                drop(g);
                slot.touch();
                tracing::info!(space = %slot.name, pid = r.proc.pid, port = r.port, "JupyterLab started");
                Ok(r)
            }
            Err(e) => {
                tracing::warn!(space = %slot.name, error = %e, "JupyterLab did not start");
                g.state = SpaceState::Failed(e.to_string());
                g.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Drop a JupyterLab that exited by itself (its waiter thread has
    /// already killed what it left behind). Call with the start lock held.
    fn forget_dead(&self, slot: &Slot) -> Option<String> {
        let mut g = slot.lock();
        let proc = &g.run.as_ref()?.proc;
        if !proc.has_exited() {
            return None;
        }
        let status = proc.exit_status().unwrap_or_else(|| "exited".into());
        g.run = None;
        let msg = format!(
            "JupyterLab exited ({status}); it starts again on the next request (log: {})",
            self.log_file(&slot.name).display()
        );
        g.state = SpaceState::Failed(msg);
        drop(g);
        tracing::warn!(space = %slot.name, %status, "JupyterLab exited by itself");
        let _ = std::fs::remove_file(self.pid_file(&slot.name));
        self.stopped_hook(&slot.name);
        Some(status)
    }

    /// Start one JupyterLab for `space` and wait until it answers.
    async fn start(
        &self,
        space: &str,
        extra_env: BTreeMap<String, String>,
    ) -> Result<Running, SpaceError> {
        let mut extra_env = extra_env;
        if let Some(f) = &self.cfg.space_env {
            extra_env.extend((f.0)(space));
        }
        let workspace = self.workspace_dir(space);
        let state = self.state_dir(space);
        let app_settings = state.join("lab-app-settings");
        for d in [
            &workspace,
            &state,
            &state.join("runtime"),
            &state.join("config"),
            &state.join("data"),
            &state.join("ipython"),
            &app_settings,
        ] {
            std::fs::create_dir_all(d)
                .map_err(|e| SpaceError::io(format!("creating {}", d.display()), e))?;
        }
        // no "Jupyter news" question and no update check: overrides of the
        // notification plugin's defaults, in an app settings folder of ours
        let overrides = serde_json::json!({
            "@jupyterlab/apputils-extension:notification": {
                "fetchNews": "false",
                "checkForUpdates": false,
            }
        });
        // JupyterLab writes its token into the page it serves (page_config
        // "token"); the page config on disk is applied last, so this keeps
        // the token out of the browser (the proxy adds it upstream)
        let page_config = serde_json::json!({ "token": "" });
        for (file, value) in [
            ("overrides.json", overrides),
            ("page_config.json", page_config),
        ] {
            let path = app_settings.join(file);
            std::fs::write(&path, format!("{value:#}\n"))
                .map_err(|e| SpaceError::io(format!("writing {}", path.display()), e))?;
        }

        let python = self.cfg.python.display().to_string();
        let mut last = None;
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port()?;
            let token = random_token();
            let log_path = self.log_file(space);
            let mut log = std::fs::File::create(&log_path)
                .map_err(|e| SpaceError::io(format!("creating {}", log_path.display()), e))?;
            let _ = writeln!(
                log,
                "[atelier] starting JupyterLab for space '{space}' on 127.0.0.1:{port} (attempt {attempt})"
            );
            let cmd = self.command(space, port, &token, &workspace, &state, &extra_env, log)?;
            let proc = match process::spawn(cmd).await {
                Ok(p) => p,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(SpaceError::PythonMissing { python });
                }
                Err(e) => return Err(SpaceError::io(format!("starting {python}"), e)),
            };
            let pid_file = self.pid_file(space);
            // JupyterLab's pid, then this server's: another server on the same
            // data folder leaves a live server's JupyterLab alone at start-up
            if let Err(e) =
                std::fs::write(&pid_file, format!("{} {}\n", proc.pid, std::process::id()))
            {
                tracing::warn!("could not write {}: {e}", pid_file.display());
            }
            let ready = self.wait_ready(space, port, &token, &proc).await;
            let fail = match ready {
                Ok(()) => {
                    return Ok(Running {
                        port,
                        token,
                        proc,
                        started_ms: now_ms(),
                    });
                }
                Err(f) => f,
            };
            stop_proc(&proc).await;
            let _ = std::fs::remove_file(&pid_file);
            let tail = log_tail(&log_path, &token);
            match fail {
                NotReady::Closing => return Err(SpaceError::ShuttingDown),
                NotReady::Timeout => {
                    return Err(SpaceError::StartTimeout {
                        space: space.to_string(),
                        seconds: self.cfg.start_timeout.as_secs(),
                        log_tail: tail,
                    });
                }
                NotReady::Exited(status) => {
                    if tail.contains("No module named jupyterlab") {
                        return Err(SpaceError::JupyterLabMissing { python });
                    }
                    let e = SpaceError::StartFailed {
                        space: space.to_string(),
                        status,
                        log_tail: tail.clone(),
                    };
                    if tail.contains("already in use") || tail.contains("Address already in use") {
                        tracing::info!(space, port, "the port was taken; trying another");
                        last = Some(e);
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| SpaceError::Io("JupyterLab did not start".into())))
    }

    #[allow(clippy::too_many_arguments)]
    fn command(
        &self,
        space: &str,
        port: u16,
        token: &str,
        workspace: &Path,
        state: &Path,
        extra_env: &BTreeMap<String, String>,
        log: std::fs::File,
    ) -> Result<Command, SpaceError> {
        let err = log
            .try_clone()
            .map_err(|e| SpaceError::io("opening the JupyterLab log", e))?;
        let mut root_dir = OsString::from("--ServerApp.root_dir=");
        root_dir.push(workspace.as_os_str());
        let mut settings = OsString::from("--LabApp.app_settings_dir=");
        settings.push(state.join("lab-app-settings").as_os_str());
        let mut cmd = Command::new(&self.cfg.python);
        cmd.args(["-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1"])
            .arg(format!("--port={port}"))
            .args(["--ServerApp.port_retries=0", "--allow-root"])
            .arg(format!("--ServerApp.base_url=/notebooks/{space}/"))
            // the token goes in the environment (JUPYTER_TOKEN), not on the
            // command line where `ps` shows it to everyone
            .arg(root_dir)
            .arg("--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
            .arg(settings)
            .current_dir(workspace)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .env_clear();
        for k in PASSED_ENV {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        // the interpreter's folder first, so `pip` and `jupyter` in a
        // notebook or terminal are the ones next to it
        let mut path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        if let Some(dir) = self.cfg.python.parent().filter(|d| d.is_absolute()) {
            let mut p = dir.as_os_str().to_os_string();
            p.push(":");
            p.push(&path);
            path = p;
        }
        cmd.env("PATH", path)
            .env("PYTHONUNBUFFERED", "1")
            .env("JUPYTER_TOKEN", token)
            .env("JUPYTER_RUNTIME_DIR", state.join("runtime"))
            .env("JUPYTER_CONFIG_DIR", state.join("config"))
            .env("JUPYTER_DATA_DIR", state.join("data"))
            .env("JUPYTERLAB_SETTINGS_DIR", state.join("lab-user-settings"))
            .env("JUPYTERLAB_WORKSPACES_DIR", state.join("lab-workspaces"))
            .env("IPYTHONDIR", state.join("ipython"))
            .env("ATELIER_SPACE", space)
            .envs(&self.cfg.env)
            .envs(extra_env);
        Ok(cmd)
    }

    /// Poll JupyterLab's status API until it answers 200.
    async fn wait_ready(
        &self,
        space: &str,
        port: u16,
        token: &str,
        proc: &Launched,
    ) -> Result<(), NotReady> {
        let deadline = tokio::time::Instant::now() + self.cfg.start_timeout;
        let url = format!("http://127.0.0.1:{port}/notebooks/{space}/api/status");
        let auth = format!("token {token}");
        let mut closing = self.closing_tx.subscribe();
        loop {
            if let Some(st) = proc.exit_status() {
                return Err(NotReady::Exited(st));
            }
            if *closing.borrow() {
                return Err(NotReady::Closing);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NotReady::Timeout);
            }
            let req = Request::get(url.as_str())
                .header(header::AUTHORIZATION, auth.as_str())
                .body(Body::empty());
            if let Ok(req) = req
                && let Ok(Ok(resp)) =
                    tokio::time::timeout(Duration::from_secs(2), self.client.request(req)).await
                && resp.status() == StatusCode::OK
            {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(150)) => {}
                _ = proc.wait_exit(Duration::from_millis(150)) => {}
                _ = closing.changed() => {}
            }
        }
    }

    /// The status of one space (stopped if it was never started).
    pub fn status(&self, space: &str) -> SpaceStatus {
        let slot = self.slots().get(space).cloned();
        match slot {
            Some(s) => self.status_of(&s),
            None => stopped(space),
        }
    }

    pub(crate) fn status_of(&self, slot: &Slot) -> SpaceStatus {
        let g = slot.lock();
        let last = slot.last_activity.load(Ordering::Relaxed);
        let (state, run) = match &g.run {
            Some(r) if r.proc.has_exited() => (
                SpaceState::Failed(format!(
                    "JupyterLab exited ({}); it starts again on the next request",
                    r.proc.exit_status().unwrap_or_else(|| "exited".into())
                )),
                None,
            ),
            Some(r) => (g.state.clone(), Some(r.clone())),
            None => (g.state.clone(), None),
        };
        SpaceStatus {
            space: slot.name.clone(),
            state,
            url: format!("/notebooks/{}/lab", slot.name),
            started_ms: run.as_ref().map(|r| r.started_ms),
            last_activity_ms: (last > 0).then_some(last),
            pid: run.as_ref().map(|r| r.proc.pid),
        }
    }

    /// Every space started since this server started, plus every workspace
    /// folder, by name.
    pub fn list(&self) -> Vec<SpaceStatus> {
        let mut names: std::collections::BTreeSet<String> = self.slots().keys().cloned().collect();
        if let Ok(dir) = std::fs::read_dir(&self.cfg.workspaces_root) {
            for e in dir.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir())
                    && let Some(n) = e.file_name().to_str()
                    && valid_space_name(n)
                {
                    names.insert(n.to_string());
                }
            }
        }
        names.iter().map(|n| self.status(n)).collect()
    }

    /// Stop the space's JupyterLab (waiting for a start in progress first).
    /// Whether a running JupyterLab was stopped.
    pub async fn stop(&self, space: &str) -> bool {
        let Some(slot) = self.slots().get(space).cloned() else {
            return false;
        };
        let Some(me) = self.me.upgrade() else {
            return false;
        };
        // in a task: a dropped request does not cut a stop short
        tokio::spawn(async move {
            let _start = slot.start_lock.lock().await;
            me.stop_locked(&slot).await
        })
        .await
        .unwrap_or(false)
    }

    /// Tell the configuration a space's JupyterLab is gone (e.g. to revoke
    /// the token its kernels had).
    fn stopped_hook(&self, space: &str) {
        if let Some(f) = &self.cfg.on_stop {
            (f.0)(space);
        }
    }

    /// Stop with the start lock held.
    async fn stop_locked(&self, slot: &Slot) -> bool {
        let run = slot.lock().run.take();
        let was_running = run.as_ref().is_some_and(|r| !r.proc.has_exited());
        if let Some(r) = run {
            stop_proc(&r.proc).await;
            let _ = std::fs::remove_file(self.pid_file(&slot.name));
            self.stopped_hook(&slot.name);
            if was_running {
                tracing::info!(space = %slot.name, pid = r.proc.pid, "JupyterLab stopped");
            }
        }
        slot.lock().state = SpaceState::Stopped;
        was_running
    }

    /// Stop every space: SIGTERM to each JupyterLab's process group, SIGKILL
    /// after a few seconds; kernels go too. No space starts afterwards.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.closing_tx.send_replace(true);
        let slots: Vec<Arc<Slot>> = self.slots().values().cloned().collect();
        futures::future::join_all(slots.iter().map(|s| async move {
            let _start = s.start_lock.lock().await;
            self.stop_locked(s).await
        }))
        .await;
    }

    /// Start the keeper: every few seconds it notices JupyterLabs that died
    /// and stops spaces idle for longer than `idle_timeout`. It ends at
    /// [`Spaces::shutdown`] or when the last `Arc<Spaces>` is dropped.
    pub fn spawn_keeper(self: &Arc<Self>) {
        if self.keeper_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Spaces> = Arc::downgrade(self);
        let every =
            (self.cfg.idle_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(sp) = weak.upgrade() else { break };
                if sp.closing.load(Ordering::SeqCst) {
                    break;
                }
                sp.sweep().await;
            }
        });
    }

    /// One round of the keeper.
    pub(crate) async fn sweep(&self) {
        let slots: Vec<Arc<Slot>> = self.slots().values().cloned().collect();
        let idle_ms = i64::try_from(self.cfg.idle_timeout.as_millis()).unwrap_or(i64::MAX);
        for slot in slots {
            // a start in progress is nobody's business but its own
            let Ok(_start) = slot.start_lock.try_lock() else {
                continue;
            };
            if self.forget_dead(&slot).is_some() {
                continue;
            }
            if idle_ms == 0 || slot.alive().is_none() || slot.busy.load(Ordering::SeqCst) > 0 {
                continue;
            }
            let idle = now_ms() - slot.last_activity.load(Ordering::Relaxed);
            if idle >= idle_ms {
                tracing::info!(space = %slot.name, idle_s = idle / 1000, "stopping an idle space");
                self.stop_locked(&slot).await;
            }
        }
    }
}

impl Drop for Spaces {
    fn drop(&mut self) {
        // not shut down: at least ask every JupyterLab to go
        for slot in self.slots().values() {
            if let Some(r) = slot.alive() {
                r.proc.signal_group(libc::SIGTERM);
            }
        }
    }
}

fn stopped(space: &str) -> SpaceStatus {
    SpaceStatus {
        space: space.to_string(),
        state: SpaceState::Stopped,
        url: format!("/notebooks/{space}/lab"),
        started_ms: None,
        last_activity_ms: None,
        pid: None,
    }
}

/// SIGTERM the group, SIGKILL it after [`STOP_GRACE`]; wait for the exit.
async fn stop_proc(proc: &Launched) {
    if proc.exit_status().is_some() {
        return;
    }
    proc.signal_group(libc::SIGTERM);
    if proc.wait_exit(STOP_GRACE).await.is_none() {
        tracing::warn!(
            pid = proc.pid,
            "JupyterLab did not stop on SIGTERM; killing it"
        );
        proc.signal_group(libc::SIGKILL);
        if proc.wait_exit(Duration::from_secs(5)).await.is_none() {
            tracing::error!(pid = proc.pid, "JupyterLab survived SIGKILL");
        }
    }
}

/// Kill what pid files under `state_root` name, if it still looks like Jupyter.
fn kill_leftovers(state_root: &Path) {
    let Ok(dir) = std::fs::read_dir(state_root) else {
        return;
    };
    for e in dir.flatten() {
        let pid_file = e.path().join("jupyterlab.pid");
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            continue;
        };
        let mut fields = text.split_whitespace();
        let pid = fields.next().and_then(|p| p.parse::<i32>().ok());
        let owner = fields.next().and_then(|p| p.parse::<i32>().ok());
        if let Some(o) = owner
            && o != std::process::id() as i32
            && process::alive(o)
        {
            // a live server (another process on this data folder) runs it
            continue;
        }
        if let Some(pid) = pid
            && process::kill_stale(pid)
        {
            tracing::warn!(
                pid,
                file = %pid_file.display(),
                "killed a JupyterLab left running by a previous server"
            );
        }
        let _ = std::fs::remove_file(&pid_file);
    }
}

fn free_port() -> Result<u16, SpaceError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| SpaceError::io("finding a free port on 127.0.0.1", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| SpaceError::io("finding a free port on 127.0.0.1", e))
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The end of a log (about 40 lines), with the token blanked out.
fn log_tail(path: &Path, token: &str) -> String {
    const MAX: u64 = 4096;
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(MAX);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let text = if from > 0 {
        text.split_once('\n').map_or(&*text, |(_, rest)| rest)
    } else {
        &text
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(40);
    lines[start..].join("\n").replace(token, "<token>")
}
