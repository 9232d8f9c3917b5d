//! # jobs — background work shared by every server process on a database
//!
//! Brief overview: a [`Queue`] owns a few worker threads and a table of
//! [`Runner`]s, one per job kind (`"automl"`, `"batch-transform"`, …).
//! [`Queue::submit`] checks the spec with the runner ([`Runner::check`], fast:
//! the HTTP call that submits answers `202 Accepted` at once) and records the
//! job in the metadata store as `queued`. Nothing else is handed over in
//! memory: every worker, in this process or another on the same database,
//! **claims** work through the store (one atomic write: the job, a lease, an
//! attempt number) and keeps the lease alive while the runner works.
//!
//! - **Cancel** is a stored request ([`MetadataStore::request_job_cancel`]);
//!   the process holding the claim reads it within [`QueueOptions::tick`]
//!   and the runner sees [`JobContext::cancelled`].
//! - **A worker that dies** (the process killed) stops renewing its lease.
//!   Any process then re-queues its job while `attempt < max_attempts`, or
//!   fails it with the reason. Work that runs on an [`executor::Executor`]
//!   (its handle recorded with [`JobContext::set_handle`]) is instead
//!   **adopted**: another worker claims it as it is and its runner
//!   re-attaches to the work (`ctx.job.handle` is set).
//! - **Shutdown** asks in-process work to stop (it ends `cancelled`) and
//!   releases work on executors for adoption instead of stopping it.
//!
//! Every state change is a committed store write, so the Studio follows a job
//! through the store; lease renewals are not visible writes. Runners are
//! synchronous code on the worker's own thread (AutoML keeps a core busy for
//! minutes; it must not sit on the async runtime); they reach the async
//! artifact store through [`JobContext::block_on`].

pub mod cluster;
pub mod cron;
pub mod executor;
pub mod local;
pub mod ray;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use artifacts::ArtifactStore;
use serde_json::Value;
use store::{Job, JobStatus, JobUpdate, Lease, MetadataStore, StoreError};

/// Why a job could not be submitted or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// No runner for that kind.
    #[error("unknown job kind '{0}'; known kinds: {1}")]
    UnknownKind(String, String),
    /// The runner refused the spec; the message says what to fix.
    #[error("{0}")]
    InvalidSpec(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workers are gone (the server is shutting down).
    #[error("the job queue is shutting down")]
    ShuttingDown,
}

/// How a job ended, other than success.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    /// The job saw its cancel flag and stopped.
    #[error("cancelled")]
    Cancelled,
    /// The job stopped itself for the reason given (e.g. a Debugger rule's
    /// StopTraining): it ends `cancelled` (SageMaker's Stopped) with it.
    #[error("stopped: {0}")]
    Stopped(String),
    /// The work goes on outside this process (on an executor, its handle
    /// recorded): leave it for another worker to adopt. Return it when
    /// [`JobContext::stop_reason`] is [`StopReason::Shutdown`].
    #[error("left running for another worker")]
    Detached,
    /// Anything else; the message is shown to the user as is.
    #[error("{0}")]
    Failed(String),
}

impl JobFailure {
    pub fn msg(m: impl std::fmt::Display) -> Self {
        JobFailure::Failed(m.to_string())
    }
}

/// One kind of job.
pub trait Runner: Send + Sync + 'static {
    /// The kind this runner handles, e.g. `"automl"`.
    fn kind(&self) -> &'static str;
    /// Check a spec before the job is queued and name the job. Runs on the
    /// caller's thread (blocking allowed, but keep it to a fraction of a
    /// second: the submit call waits for it).
    fn check(&self, spec: &Value, ctx: &CheckContext) -> Result<String, String>;
    /// Do the work. Report progress through `ctx`; stop with
    /// [`JobFailure::Cancelled`] soon after [`JobContext::cancelled`] turns true.
    fn run(&self, ctx: &JobContext) -> Result<Value, JobFailure>;
}

/// What [`Runner::check`] may consult.
pub struct CheckContext {
    pub store: Arc<dyn MetadataStore>,
    pub artifacts: ArtifactStore,
    pub rt: tokio::runtime::Handle,
    /// The project the job is submitted in (what its inputs may name).
    pub workspace: String,
}

/// Why a running job is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Someone asked (the API's cancel, `atelier jobs stop`).
    Requested,
    /// This server process is shutting down.
    Shutdown,
    /// Another worker took the job over (this one's lease expired).
    LeaseLost,
}

const NOT_STOPPING: u8 = 0;

impl StopReason {
    fn code(self) -> u8 {
        match self {
            StopReason::Requested => 1,
            StopReason::Shutdown => 2,
            StopReason::LeaseLost => 3,
        }
    }
    fn from_code(c: u8) -> Option<StopReason> {
        match c {
            1 => Some(StopReason::Requested),
            2 => Some(StopReason::Shutdown),
            3 => Some(StopReason::LeaseLost),
            _ => None,
        }
    }
}

/// The stop signal of one running job, set by the queue's keeper thread.
#[derive(Debug, Default)]
struct Stop {
    reason: AtomicU8,
    /// Mirrors "any reason", for code that polls a plain flag.
    flag: Arc<AtomicBool>,
}

impl Stop {
    fn set(&self, r: StopReason) {
        // the first reason wins, except that a request beats a shutdown
        let _ = self.reason.compare_exchange(
            NOT_STOPPING,
            r.code(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if r == StopReason::Requested {
            let _ = self.reason.compare_exchange(
                StopReason::Shutdown.code(),
                r.code(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        self.flag.store(true, Ordering::Release);
    }
    fn reason(&self) -> Option<StopReason> {
        StopReason::from_code(self.reason.load(Ordering::Acquire))
    }
}

/// What a running job sees.
pub struct JobContext {
    pub job: Job,
    pub spec: Value,
    pub store: Arc<dyn MetadataStore>,
    pub artifacts: ArtifactStore,
    /// The worker holding the job's claim.
    pub worker: String,
    rt: tokio::runtime::Handle,
    stop: Arc<Stop>,
}

impl JobContext {
    fn update(&self, upd: JobUpdate) {
        let upd = JobUpdate {
            worker: Some(self.worker.clone()),
            ..upd
        };
        if let Err(e) = self.store.update_job(&self.job.id, &upd) {
            tracing::warn!(job = %self.job.id, "could not record the job's state: {e}");
        }
    }
    /// Replace the job's progress document (a committed write; keep it to a
    /// few per second).
    pub fn progress(&self, progress: &Value) {
        self.update(JobUpdate {
            progress: Some(progress.to_string()),
            ..Default::default()
        });
    }
    /// Record a secondary status (SageMaker's `Downloading`, `Training`,
    /// `Uploading`, …) with a message, timestamped.
    pub fn event(&self, status: &str, message: &str) {
        self.update(JobUpdate {
            event: Some((status.to_string(), message.to_string())),
            ..Default::default()
        });
    }
    /// Record the executor's handle to the work, so that another worker can
    /// re-attach to it if this one stops.
    pub fn set_handle(&self, handle: &str) -> Result<(), JobFailure> {
        self.store
            .update_job(
                &self.job.id,
                &JobUpdate {
                    handle: Some(handle.to_string()),
                    worker: Some(self.worker.clone()),
                    ..Default::default()
                },
            )
            .map(|_| ())
            .map_err(|e| JobFailure::msg(format!("could not record the job's handle: {e}")))
    }
    /// True once the job should stop (see [`JobContext::stop_reason`]).
    pub fn cancelled(&self) -> bool {
        self.stop.flag.load(Ordering::Acquire)
    }
    /// Why the job should stop, if it should.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop.reason()
    }
    /// The flag itself, for code that polls it (e.g. `automl::Options::cancel`).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.stop.flag.clone()
    }
    /// Run async work (artifact IO) from the job's thread.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
    /// The runtime [`JobContext::block_on`] uses, for work the job hands to
    /// helpers of its own.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.rt.clone()
    }
}

/// How the queue shares work with other processes.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// Worker threads in this process (at least one).
    pub workers: usize,
    /// How long a claim holds without renewal; renewed every third of it.
    /// A killed worker's job is taken over after at most this long.
    pub lease: Duration,
    /// How often the keeper reads stop requests and idle workers look for
    /// work queued by other processes (work queued here wakes them at once).
    pub tick: Duration,
    /// This process's name in claims; unique per process.
    pub worker_id: String,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            workers: 2,
            lease: Duration::from_secs(30),
            tick: Duration::from_millis(250),
            worker_id: default_worker_id(),
        }
    }
}

/// `<host>:<pid>:<random>`: unique per process, readable in the Studio.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    let salt = &id[..6];
    format!("{host}:{}:{salt}", std::process::id())
}

struct Shared {
    store: Arc<dyn MetadataStore>,
    artifacts: ArtifactStore,
    rt: tokio::runtime::Handle,
    runners: HashMap<&'static str, Arc<dyn Runner>>,
    opts: QueueOptions,
    /// Jobs this process runs now: their stop signals.
    running: Mutex<HashMap<String, Arc<Stop>>>,
    stopping: AtomicBool,
    /// Wakes idle workers when this process queues work.
    wake: (Mutex<u64>, Condvar),
}

/// Who submits a job, and in which project (workspace) it belongs. A job's
/// child jobs (tuning trials) and a schedule's firings carry their parent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// An identity's name (empty when unknown).
    pub owner: String,
    pub workspace: String,
}

impl Default for Origin {
    fn default() -> Self {
        Origin {
            owner: String::new(),
            workspace: store::DEFAULT_WORKSPACE.to_string(),
        }
    }
}

impl Origin {
    pub fn new(owner: &str, workspace: &str) -> Origin {
        Origin {
            owner: owner.to_string(),
            workspace: workspace.to_string(),
        }
    }

    /// The origin of `job`'s own children.
    pub fn of(job: &Job) -> Origin {
        Origin::new(&job.owner, &job.workspace)
    }
}

/// The queue. Cheap to share behind an `Arc`.
pub struct Queue {
    shared: Arc<Shared>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Queue {
    /// Start `opts.workers` worker threads and the keeper (leases, stop
    /// requests, other processes' dead workers). Must be called inside a
    /// tokio runtime (its handle serves [`JobContext::block_on`]).
    pub fn start(
        store: Arc<dyn MetadataStore>,
        artifacts: ArtifactStore,
        runners: Vec<Arc<dyn Runner>>,
        opts: QueueOptions,
    ) -> Result<Arc<Queue>, JobsError> {
        let shared = Arc::new(Shared {
            store,
            artifacts,
            rt: tokio::runtime::Handle::current(),
            runners: runners.into_iter().map(|r| (r.kind(), r)).collect(),
            running: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            wake: (Mutex::new(0), Condvar::new()),
            opts,
        });
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| JobsError::Store(StoreError::Internal(e.to_string())))
        };
        let mut handles = Vec::new();
        {
            let shared = shared.clone();
            handles.push(spawn(
                "job-keeper".into(),
                Box::new(move || keeper(&shared)),
            )?);
        }
        for i in 0..shared.opts.workers.max(1) {
            let shared = shared.clone();
            handles.push(spawn(
                format!("job-worker-{i}"),
                Box::new(move || worker_loop(&shared, i)),
            )?);
        }
        tracing::info!(worker = %shared.opts.worker_id, "job queue started");
        Ok(Arc::new(Queue {
            shared,
            threads: Mutex::new(handles),
        }))
    }

    /// Job kinds this queue runs, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.shared.runners.keys().copied().collect();
        k.sort_unstable();
        k
    }

    /// Check and queue a job in the default project (no owner, one attempt).
    /// Blocking (store write, the runner's check): call from a blocking context.
    pub fn submit(&self, kind: &str, spec: Value) -> Result<Job, JobsError> {
        self.submit_as(kind, spec, &Origin::default(), 1)
    }

    /// [`Queue::submit`] for `origin` (who, in which project), allowing
    /// `max_attempts` claims when a worker dies under the job.
    pub fn submit_as(
        &self,
        kind: &str,
        spec: Value,
        origin: &Origin,
        max_attempts: i64,
    ) -> Result<Job, JobsError> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(JobsError::ShuttingDown);
        }
        let runner = self
            .shared
            .runners
            .get(kind)
            .ok_or_else(|| JobsError::UnknownKind(kind.to_string(), self.kinds().join(", ")))?;
        let ctx = CheckContext {
            store: self.shared.store.clone(),
            artifacts: self.shared.artifacts.clone(),
            rt: self.shared.rt.clone(),
            workspace: origin.workspace.clone(),
        };
        let name = runner.check(&spec, &ctx).map_err(JobsError::InvalidSpec)?;
        let job = self.shared.store.queue_job(&store::NewJob {
            kind,
            name: &name,
            spec: &spec.to_string(),
            owner: &origin.owner,
            workspace: &origin.workspace,
            max_attempts: max_attempts.max(1),
        })?;
        let (m, cv) = &self.shared.wake;
        *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        cv.notify_one();
        tracing::info!(job = %job.id, kind, name = %job.name, "job queued");
        Ok(job)
    }

    /// Ask a job to stop (a stored request: whichever process runs it acts
    /// on it within a tick). A queued job is cancelled at once.
    pub fn cancel(&self, id: &str) -> Result<Job, JobsError> {
        let job = self.shared.store.request_job_cancel(id)?;
        if let Some(s) = self
            .shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            s.set(StopReason::Requested);
        }
        tracing::info!(job = %id, "stop requested");
        Ok(job)
    }

    /// Stop claiming, ask this process's running jobs to stop (work on
    /// executors is released for another process to adopt) and wait.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        for s in self
            .shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            s.set(StopReason::Shutdown);
        }
        self.shared.wake.1.notify_all();
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

/// Renew this process's leases, pass stop requests on, and put back or fail
/// jobs whose workers (in any process) died.
fn keeper(shared: &Shared) {
    let tick = shared.opts.tick;
    let lease_ms = shared.opts.lease.as_millis() as i64;
    let renew_every = (shared.opts.lease / 3).max(tick);
    let mut last_renew = std::time::Instant::now();
    let mut last_reap = std::time::Instant::now() - shared.opts.lease;
    while !shared.stopping.load(Ordering::Acquire) {
        std::thread::sleep(tick);
        let running: Vec<(String, Arc<Stop>)> = shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !running.is_empty() {
            let ids: Vec<String> = running.iter().map(|(k, _)| k.clone()).collect();
            match shared.store.jobs_cancel_requested(&ids) {
                Ok(asked) => {
                    for (id, s) in &running {
                        if asked.contains(id) {
                            s.set(StopReason::Requested);
                        }
                    }
                }
                Err(e) => tracing::warn!("could not read stop requests: {e}"),
            }
        }
        if last_renew.elapsed() >= renew_every {
            last_renew = std::time::Instant::now();
            for (id, s) in &running {
                match shared
                    .store
                    .renew_job_lease(id, &shared.opts.worker_id, lease_ms)
                {
                    Ok(Lease::Held { cancel_requested }) => {
                        if cancel_requested {
                            s.set(StopReason::Requested);
                        }
                    }
                    Ok(Lease::Lost) => {
                        // A job that ended since `running` was read is no longer
                        // 'running' in the store either: not a lost lease. (A worker
                        // leaves `running` before it records the job's end, so one
                        // still there is 'running' unless another worker took it.)
                        let ours = shared
                            .running
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .contains_key(id);
                        if ours {
                            tracing::warn!(job = %id, "lost the job's lease; stopping work on it");
                            s.set(StopReason::LeaseLost);
                        }
                    }
                    Err(e) => tracing::warn!(job = %id, "could not renew the lease: {e}"),
                }
            }
        }
        if last_reap.elapsed() >= shared.opts.lease / 2 {
            last_reap = std::time::Instant::now();
            match shared.store.reap_expired_jobs(
                "interrupted: the worker running this job stopped (its server was killed or lost the database)",
            ) {
                Ok(jobs) => {
                    for j in jobs {
                        tracing::warn!(job = %j.id, status = j.status.as_str(), "a worker stopped under this job");
                    }
                    shared.wake.1.notify_all();
                }
                Err(e) => tracing::warn!("could not check for stopped workers: {e}"),
            }
        }
    }
}

fn worker_loop(shared: &Shared, _i: usize) {
    let kinds: Vec<&str> = shared.runners.keys().copied().collect();
    let lease_ms = shared.opts.lease.as_millis() as i64;
    loop {
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let seen = *shared.wake.0.lock().unwrap_or_else(|e| e.into_inner());
        match shared
            .store
            .claim_job(&shared.opts.worker_id, &kinds, lease_ms)
        {
            Ok(Some(job)) => {
                work(shared, job);
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("could not claim a job: {e}"),
        }
        let (m, cv) = &shared.wake;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        if *g == seen && !shared.stopping.load(Ordering::Acquire) {
            let _ = cv.wait_timeout(g, shared.opts.tick);
        }
    }
}

fn work(shared: &Shared, job: Job) {
    let id = job.id.clone();
    let worker = shared.opts.worker_id.clone();
    let set = |upd: JobUpdate| {
        let upd = JobUpdate {
            worker: Some(worker.clone()),
            ..upd
        };
        if let Err(e) = shared.store.update_job(&id, &upd) {
            tracing::warn!(job = %id, "could not record the job's state: {e}");
        }
    };
    let Some(runner) = shared.runners.get(job.kind.as_str()).cloned() else {
        set(JobUpdate {
            status: Some(JobStatus::Failed),
            error: Some(format!("no runner for job kind '{}'", job.kind)),
            ..Default::default()
        });
        return;
    };
    let stop = Arc::new(Stop::default());
    if job.cancel_requested {
        stop.set(StopReason::Requested);
    }
    shared
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), stop.clone());
    let spec: Value = serde_json::from_str(&job.spec).unwrap_or(Value::Null);
    let ctx = JobContext {
        job: job.clone(),
        spec,
        store: shared.store.clone(),
        artifacts: shared.artifacts.clone(),
        worker: worker.clone(),
        rt: shared.rt.clone(),
        stop: stop.clone(),
    };
    tracing::info!(job = %id, kind = %job.kind, attempt = job.attempt, "job started");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(&ctx)))
        .unwrap_or_else(|_| {
            Err(JobFailure::msg(
                "the job crashed (a bug in Atelier; see the server log)",
            ))
        });
    shared
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    let upd = match outcome {
        Ok(result) => JobUpdate {
            status: Some(JobStatus::Succeeded),
            result: Some(result.to_string()),
            event: Some(("Completed".into(), "completed".into())),
            ..Default::default()
        },
        Err(JobFailure::Detached) => {
            if let Err(e) = shared.store.release_job(&id, &worker) {
                tracing::warn!(job = %id, "could not release the job: {e}");
            }
            tracing::info!(job = %id, "left running for another worker to adopt");
            return;
        }
        Err(_) if stop.reason() == Some(StopReason::LeaseLost) => {
            tracing::info!(job = %id, "another worker has this job now");
            return;
        }
        Err(JobFailure::Stopped(why)) => JobUpdate {
            status: Some(JobStatus::Cancelled),
            error: Some(why.clone()),
            event: Some(("Stopped".into(), why)),
            ..Default::default()
        },
        Err(JobFailure::Cancelled) => {
            let why = match stop.reason() {
                Some(StopReason::Shutdown) => {
                    "stopped: the server shut down while it ran; submit it again"
                }
                _ => "cancelled by request",
            };
            JobUpdate {
                status: Some(JobStatus::Cancelled),
                error: Some(why.into()),
                event: Some(("Stopped".into(), why.into())),
                ..Default::default()
            }
        }
        Err(JobFailure::Failed(m)) => JobUpdate {
            status: Some(JobStatus::Failed),
            event: Some(("Failed".into(), m.clone())),
            error: Some(m),
            ..Default::default()
        },
    };
    // a word (status=succeeded), not the Option's Debug form
    let status = upd.status.map_or("unknown", JobStatus::as_str);
    tracing::info!(job = %id, status = %status, "job ended");
    set(upd);
}

#[cfg(test)]
mod tests;
