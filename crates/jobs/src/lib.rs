//! # jobs — background work with progress, cancellation and crash recovery
//!
//! Brief overview: a [`Queue`] owns a few worker threads and a table of
//! [`Runner`]s, one per job kind (`"automl"`, `"batch-transform"`, …).
//! [`Queue::submit`] checks the spec with the runner ([`Runner::check`], fast:
//! the HTTP call that submits answers `202 Accepted` at once), records the job
//! in the metadata store as `queued` and hands it to a worker. The worker marks
//! it `running`, calls [`Runner::run`] with a [`JobContext`] (progress
//! reports, the cancel flag, the stores) and records the outcome:
//! `succeeded` with the runner's result JSON, `failed` with its message, or
//! `cancelled`.
//!
//! Every state change is a committed store write, so the Studio's live pages
//! follow a job through the store's write generation, and a job survives as a
//! record when the process does not: at start the queue fails every job a
//! previous process left `queued` or `running` ("interrupted by a restart").
//!
//! Runners are synchronous code on the worker's own thread (AutoML keeps a
//! core busy for minutes; it must not sit on the async runtime); they reach the
//! async artifact store through [`JobContext::block_on`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use artifacts::ArtifactStore;
use serde_json::Value;
use store::{Job, JobStatus, JobUpdate, MetadataStore, StoreError};

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
}

/// What a running job sees.
pub struct JobContext {
    pub job: Job,
    pub spec: Value,
    pub store: Arc<dyn MetadataStore>,
    pub artifacts: ArtifactStore,
    rt: tokio::runtime::Handle,
    cancel: Arc<AtomicBool>,
}

impl JobContext {
    /// Replace the job's progress document (a committed write; keep it to a
    /// few per second).
    pub fn progress(&self, progress: &Value) {
        let upd = JobUpdate {
            progress: Some(progress.to_string()),
            ..Default::default()
        };
        if let Err(e) = self.store.update_job(&self.job.id, &upd) {
            tracing::warn!(job = %self.job.id, "could not record progress: {e}");
        }
    }
    /// True once someone asked the job to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
    /// The flag itself, for code that polls it (e.g. `automl::Options::cancel`).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }
    /// Run async work (artifact IO) from the job's thread.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

struct Shared {
    store: Arc<dyn MetadataStore>,
    artifacts: ArtifactStore,
    rt: tokio::runtime::Handle,
    runners: HashMap<&'static str, Arc<dyn Runner>>,
    /// Cancel flags of queued and running jobs.
    flags: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

/// The queue. Cheap to share behind an `Arc`.
pub struct Queue {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<String>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Queue {
    /// Fail jobs a previous process left unfinished, then start `workers`
    /// threads (at least one). Must be called inside a tokio runtime (its
    /// handle serves [`JobContext::block_on`]).
    pub fn start(
        store: Arc<dyn MetadataStore>,
        artifacts: ArtifactStore,
        runners: Vec<Arc<dyn Runner>>,
        workers: usize,
    ) -> Result<Arc<Queue>, JobsError> {
        let n = store.fail_interrupted_jobs(
            "interrupted: the server stopped while this job was queued or running; submit it again",
        )?;
        if n > 0 {
            tracing::warn!("{n} job(s) were interrupted by a restart and are marked failed");
        }
        let shared = Arc::new(Shared {
            store,
            artifacts,
            rt: tokio::runtime::Handle::current(),
            runners: runners.into_iter().map(|r| (r.kind(), r)).collect(),
            flags: Mutex::new(HashMap::new()),
        });
        let (tx, rx) = mpsc::channel::<String>();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::new();
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let shared = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("job-worker-{i}"))
                .spawn(move || {
                    loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match next {
                            Ok(id) => work(&shared, &id),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| JobsError::Store(StoreError::Internal(e.to_string())))?;
            handles.push(h);
        }
        Ok(Arc::new(Queue {
            shared,
            tx: Mutex::new(Some(tx)),
            workers: Mutex::new(handles),
        }))
    }

    /// Job kinds this queue runs, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.shared.runners.keys().copied().collect();
        k.sort_unstable();
        k
    }

    /// Check and queue a job. Blocking (store write, the runner's check):
    /// call from a blocking context.
    pub fn submit(&self, kind: &str, spec: Value) -> Result<Job, JobsError> {
        let runner = self
            .shared
            .runners
            .get(kind)
            .ok_or_else(|| JobsError::UnknownKind(kind.to_string(), self.kinds().join(", ")))?;
        let ctx = CheckContext {
            store: self.shared.store.clone(),
            artifacts: self.shared.artifacts.clone(),
            rt: self.shared.rt.clone(),
        };
        let name = runner.check(&spec, &ctx).map_err(JobsError::InvalidSpec)?;
        let job = self
            .shared
            .store
            .create_job(kind, &name, &spec.to_string())?;
        self.shared
            .flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.id.clone(), Arc::new(AtomicBool::new(false)));
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|tx| tx.send(job.id.clone()).is_ok())
            .unwrap_or(false);
        if !sent {
            let _ = self.shared.store.update_job(
                &job.id,
                &JobUpdate {
                    status: Some(JobStatus::Failed),
                    error: Some("the job queue is shutting down".into()),
                    ..Default::default()
                },
            );
            return Err(JobsError::ShuttingDown);
        }
        tracing::info!(job = %job.id, kind, name = %job.name, "job queued");
        Ok(job)
    }

    /// Ask a job to stop (see [`MetadataStore::request_job_cancel`]).
    pub fn cancel(&self, id: &str) -> Result<Job, JobsError> {
        let job = self.shared.store.request_job_cancel(id)?;
        if let Some(f) = self
            .shared
            .flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            f.store(true, Ordering::Relaxed);
        }
        tracing::info!(job = %id, "cancel requested");
        Ok(job)
    }

    /// Stop taking jobs, ask running ones to cancel and wait for the workers.
    pub fn shutdown(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        for f in self
            .shared
            .flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            f.store(true, Ordering::Relaxed);
        }
        let handles = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

fn set(shared: &Shared, id: &str, upd: JobUpdate) {
    if let Err(e) = shared.store.update_job(id, &upd) {
        tracing::warn!(job = %id, "could not record the job's state: {e}");
    }
}

fn work(shared: &Shared, id: &str) {
    let flag = shared
        .flags
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
        .unwrap_or_default();
    let finish = || {
        shared
            .flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    };
    let job = match shared.store.get_job(id) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(job = %id, "queued job vanished: {e}");
            return finish();
        }
    };
    // cancelled while queued (the store made it terminal already)
    if job.status.is_terminal() || flag.load(Ordering::Relaxed) {
        return finish();
    }
    let Some(runner) = shared.runners.get(job.kind.as_str()).cloned() else {
        set(
            shared,
            id,
            JobUpdate {
                status: Some(JobStatus::Failed),
                error: Some(format!("no runner for job kind '{}'", job.kind)),
                ..Default::default()
            },
        );
        return finish();
    };
    let spec: Value = serde_json::from_str(&job.spec).unwrap_or(Value::Null);
    set(
        shared,
        id,
        JobUpdate {
            status: Some(JobStatus::Running),
            ..Default::default()
        },
    );
    let ctx = JobContext {
        job: job.clone(),
        spec,
        store: shared.store.clone(),
        artifacts: shared.artifacts.clone(),
        rt: shared.rt.clone(),
        cancel: flag.clone(),
    };
    tracing::info!(job = %id, kind = %job.kind, "job started");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(&ctx)))
        .unwrap_or_else(|_| {
            Err(JobFailure::msg(
                "the job crashed (a bug in Atelier; see the server log)",
            ))
        });
    let upd = match outcome {
        Ok(result) => JobUpdate {
            status: Some(JobStatus::Succeeded),
            result: Some(result.to_string()),
            ..Default::default()
        },
        Err(JobFailure::Cancelled) => JobUpdate {
            status: Some(JobStatus::Cancelled),
            error: Some("cancelled by request".into()),
            ..Default::default()
        },
        Err(JobFailure::Failed(m)) => JobUpdate {
            status: Some(JobStatus::Failed),
            error: Some(m),
            ..Default::default()
        },
    };
    tracing::info!(job = %id, status = ?upd.status, "job ended");
    set(shared, id, upd);
    finish();
}

#[cfg(test)]
mod tests;
