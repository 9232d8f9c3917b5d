//! The `tuning` job kind: a parent run, then up to `max_jobs` training
//! jobs (trials) submitted through the queue, at most `max_parallel_jobs` at
//! a time, each with a point of the search space as hyperparameters and its
//! run made a child of the parent; early stopping; the best trial picked.
//!
//! **The queue.** A trial is an ordinary `training` job, submitted with
//! [`jobs::Queue::submit_as`] (its spec checked by the training runner) and
//! stopped with [`jobs::Queue::cancel`]. The queue is started after its
//! runners, so [`TuningRunner::attach`] gives the runner a weak handle to it
//! (and this process's worker count) right after `Queue::start`.
//!
//! **Workers.** The tuning job holds one job worker while it runs and its
//! trials need others: with `--job-workers W`, at most `W − 1` trials of a
//! tuning job run at once in this process (fewer than `max_parallel_jobs`
//! is said in the progress document's `note`). Trials wait in the queue like
//! any job, and other servers on the same database may run them; a trial
//! waiting more than 30 s for a worker is named in `note`.
//!
//! **Objective.** A trial's objective is the last value (highest step, then
//! latest timestamp) of `objective.metric` in its run's history — what the
//! script reported last, as SageMaker takes the final value. A trial that
//! failed, was cancelled or never logged the metric (or whose last value is
//! not finite) has none. A trial stopped early keeps its last value, which
//! informs the Bayesian strategy, but only trials that succeeded can be the
//! best (a stopped trial's `model/` is from an unfinished training).
//!
//! **Early stopping** (`"median"`): [`crate::stopping`]'s median rule on
//! every running trial's curve, checked about once a second; a trial it
//! stops is cancelled through the queue and marked `stopped_early`.
//!
//! **Stopping the tuning job.** A cancel request cancels its queued and
//! running trials (waiting up to 5 s for them to end), ends the parent run
//! `KILLED` and the job `cancelled`. At a server's **shutdown** the trials
//! are left alone (their own runner releases them for adoption, as any
//! training job) and so is the tuning job: it records a handle, so it is
//! released too and the next worker to claim it (another server, or this one
//! restarted) resumes from its progress document — parent run, trials and
//! all; a server killed outright is taken over the same way once its lease
//! runs out. Trial `i` draws its random numbers from (seed, i), so resuming
//! does not change the random trials.
//!
//! **Failing.** When three trials have failed before any succeeded (a
//! broken script or data), the tuning job stops submitting, cancels the
//! rest and fails with the first failure's reason; a trial the training
//! runner refuses fails the tuning job at once. A tuning job whose trials all
//! ended without an objective fails too.
//!
//! **Runs.** The parent run (experiment: the training spec's, else
//! `tuning`) is tagged `atelier.job_id`, `atelier.job_kind=tuning` and
//! `atelier.tuning.*` (objective, strategy, limits, seed), with the fixed
//! hyperparameters as parameters. Each trial's run gets
//! `mlflow.parentRunId`, `atelier.tuning_job` and `atelier.tuning_trial`
//! (its number) as soon as the trial's job names it. At the end the best
//! trial's run is tagged `atelier.tuning_best=true`, and the parent run gets
//! the best objective as the metric of the same name, the best parameters
//! as parameters and `atelier.tuning_best_job` / `atelier.tuning_best_run`.

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use jobs::{CheckContext, JobContext, JobFailure, JobsError, Queue, Runner, StopReason};
use serde_json::{Value, json};
use store::{CreateRun, Job, MetadataStore, Metric, Param, RunStatus, StoreError, Tag, UpdateRun};
use userjobs::spec::resolve_input;

use crate::space::ParamValue;
use crate::spec::{EarlyStopping, SpecError, TuningSpec};
use crate::stopping::median_rule;
use crate::strategy::{Observation, suggest};

/// The job kind.
pub const KIND: &str = "tuning";
/// The kind of the trials.
pub const TRIAL_KIND: &str = "training";
/// Trials that failed, with none succeeded, before the tuning job gives up.
pub const MAX_FAILED_FIRST: usize = 3;
/// A trial queued longer than this is named in the progress `note`.
pub const STALL_NOTE_AFTER: Duration = Duration::from_secs(30);

/// What can end a tuning job other than success.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error(
        "the tuning runner has no job queue: Atelier's wiring must call TuningRunner::attach after Queue::start"
    )]
    NoQueue,
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("the metadata store: {0}")]
    Store(#[from] StoreError),
    #[error("trial {trial} could not be submitted: {message}")]
    TrialRefused { trial: usize, message: String },
    #[error("the tuning job's stored progress is unreadable ({0}); submit it again")]
    BadProgress(String),
    #[error("{0}")]
    Failed(String),
}

impl From<TuneError> for JobFailure {
    fn from(e: TuneError) -> JobFailure {
        JobFailure::Failed(e.to_string())
    }
}

/// The [`jobs::Runner`] of the `tuning` kind.
#[derive(Debug)]
pub struct TuningRunner {
    queue: OnceLock<(Weak<Queue>, usize)>,
    poll: Duration,
    stop_every: Duration,
}

impl Default for TuningRunner {
    fn default() -> Self {
        TuningRunner::new()
    }
}

impl TuningRunner {
    pub fn new() -> TuningRunner {
        TuningRunner {
            queue: OnceLock::new(),
            poll: Duration::from_millis(250),
            stop_every: Duration::from_secs(1),
        }
    }

    /// Give the runner the queue it runs in (call right after
    /// [`Queue::start`]) and this process's number of job workers. Only the
    /// first call counts. The handle is weak: the queue owns the runner.
    pub fn attach(&self, queue: &Arc<Queue>, workers: usize) {
        if self.queue.set((Arc::downgrade(queue), workers)).is_err() {
            tracing::warn!("the tuning runner was attached to a queue twice; keeping the first");
        }
    }

    fn queue(&self) -> Result<(Arc<Queue>, usize), TuneError> {
        let (q, w) = self.queue.get().ok_or(TuneError::NoQueue)?;
        Ok((q.upgrade().ok_or(TuneError::NoQueue)?, *w))
    }
}

/// Whether something exists at `path` (a file, or a folder with files).
fn exists(ctx: &CheckContext, path: &artifacts::ArtifactPath) -> bool {
    ctx.rt.block_on(async {
        ctx.artifacts.get(path).await.is_ok()
            || ctx
                .artifacts
                .list_recursive(path)
                .await
                .is_ok_and(|l| !l.is_empty())
    })
}

impl Runner for TuningRunner {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn check(&self, spec: &Value, ctx: &CheckContext) -> Result<String, String> {
        let s = TuningSpec::parse(spec).map_err(|e| e.to_string())?;
        for (name, source) in &s.training.inputs {
            let r = resolve_input(ctx.store.as_ref(), &ctx.workspace, name, source)
                .map_err(|e| format!("'training.inputs.{name}': {e}"))?;
            if !exists(ctx, &r.path) {
                return Err(format!(
                    "'training.inputs.{name}': nothing at '{source}' (artifact path '{}'); upload it first",
                    r.path.as_str()
                ));
            }
        }
        if let Some(code) = &s.training.code {
            // (the project's own upload only)
            let p = userjobs::spec::code_path(
                ctx.store.as_ref(),
                &ctx.workspace,
                "training.code",
                code,
            )?;
            if !exists(ctx, &p) {
                return Err(format!("'training.code': nothing uploaded at '{code}'"));
            }
        }
        Ok(s.display_name())
    }

    fn run(&self, ctx: &JobContext) -> Result<Value, JobFailure> {
        let spec = TuningSpec::parse(&ctx.spec).map_err(TuneError::from)?;
        let (queue, workers) = self.queue()?;
        let mut t = Tuner::new(self, ctx, &spec, queue, workers);
        if ctx.job.handle.is_some() {
            t.resume()?;
        } else {
            t.start()?;
        }
        t.run()
    }
}

/// One trial as the tuning job keeps it.
#[derive(Debug, Clone)]
struct Trial {
    job_id: String,
    run_id: Option<String>,
    params: Vec<ParamValue>,
    /// The trial job's status (`queued`, `running`, `succeeded`, `failed`,
    /// `cancelled`).
    status: String,
    objective: Option<f64>,
    stopped_early: bool,
    error: Option<String>,
    /// Its run carries the parent's tags.
    tagged: bool,
    /// Its objective's curve, once it succeeded (for the median rule).
    curve: Option<Vec<(i64, f64)>>,
    since: Instant,
}

impl Trial {
    fn ended(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

struct Tuner<'a> {
    runner: &'a TuningRunner,
    ctx: &'a JobContext,
    spec: &'a TuningSpec,
    queue: Arc<Queue>,
    workers: usize,
    parallel: usize,
    parent_run_id: String,
    trials: Vec<Trial>,
    /// Why fewer trials run at once than asked (fixed at the start).
    note: Option<String>,
    /// A trial waiting long for a worker, while it waits.
    stalled: Option<String>,
    dirty: bool,
    last_write: Instant,
}

/// All points of one metric of a run, in step order.
fn history(st: &dyn MetadataStore, run_id: &str, key: &str) -> Result<Vec<(i64, f64)>, StoreError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = st.metric_history(run_id, key, 10_000, token.as_deref())?;
        out.extend(page.items.iter().map(|m| (m.step, m.value)));
        match page.next_page_token {
            Some(t) if !page.items.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}

fn finite(curve: &[(i64, f64)]) -> Vec<(i64, f64)> {
    curve
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect()
}

fn number(x: Option<f64>) -> Value {
    x.and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

impl<'a> Tuner<'a> {
    fn new(
        runner: &'a TuningRunner,
        ctx: &'a JobContext,
        spec: &'a TuningSpec,
        queue: Arc<Queue>,
        workers: usize,
    ) -> Self {
        let parallel = spec.max_parallel_jobs.min(workers.saturating_sub(1).max(1));
        let note = if workers <= 1 {
            Some(format!(
                "this server has one job worker and this tuning job holds it: its trials run only on other servers sharing the database (start this one with --job-workers {} or more)",
                spec.max_parallel_jobs + 1
            ))
        } else if parallel < spec.max_parallel_jobs {
            Some(format!(
                "running {parallel} trial(s) at once, not {}: this server has {workers} job workers and this tuning job holds one (start it with --job-workers {} to run them all at once)",
                spec.max_parallel_jobs,
                spec.max_parallel_jobs + 1
            ))
        } else {
            None
        };
        Tuner {
            runner,
            ctx,
            spec,
            queue,
            workers,
            parallel,
            parent_run_id: String::new(),
            trials: Vec::new(),
            note,
            stalled: None,
            dirty: true,
            last_write: Instant::now(),
        }
    }

    fn st(&self) -> &dyn MetadataStore {
        self.ctx.store.as_ref()
    }

    /// A new tuning job: the parent run, then the handle that lets another
    /// worker resume it.
    fn start(&mut self) -> Result<(), TuneError> {
        let st = self.st();
        let exp_name = self.spec.experiment();
        let experiment_id = st.experiment_for(&self.ctx.job.workspace, &exp_name)?;
        let job = &self.ctx.job;
        let s = self.spec;
        let tags = vec![
            Tag::new("atelier.job_id", &job.id),
            Tag::new("atelier.job_kind", KIND),
            Tag::new("mlflow.source.type", "JOB"),
            Tag::new("mlflow.source.name", s.training.command.join(" ")),
            Tag::new(
                "atelier.tuning.objective",
                format!(
                    "{} ({})",
                    s.objective.metric,
                    s.objective.direction.as_str()
                ),
            ),
            Tag::new("atelier.tuning.strategy", s.strategy.as_str()),
            Tag::new("atelier.tuning.max_jobs", s.max_jobs.to_string()),
            Tag::new(
                "atelier.tuning.max_parallel_jobs",
                s.max_parallel_jobs.to_string(),
            ),
            Tag::new("atelier.tuning.early_stopping", s.early_stopping.as_str()),
            Tag::new("atelier.tuning.seed", s.seed.to_string()),
        ];
        let user = if job.owner.is_empty() {
            "atelier"
        } else {
            job.owner.as_str()
        };
        let run = st.create_run(CreateRun {
            experiment_id,
            user_id: user.to_string(),
            run_name: Some(job.name.replace(' ', "-")),
            start_time: None,
            tags,
        })?;
        let params: Vec<Param> = s
            .training
            .hyperparameters
            .iter()
            .map(|(k, v)| Param::new(k, v))
            .collect();
        for chunk in params.chunks(100) {
            st.log_batch(&run.run_id, &[], chunk, &[])?;
        }
        self.parent_run_id = run.run_id;
        self.write_progress(true);
        let handle = json!({"kind": KIND, "parent_run_id": self.parent_run_id}).to_string();
        self.ctx
            .set_handle(&handle)
            .map_err(|e| TuneError::Failed(e.to_string()))?;
        self.ctx.event(
            "Tuning",
            &format!(
                "{} search over {} parameter(s), {} trials, {} at once",
                s.strategy.as_str(),
                s.space.len(),
                s.max_jobs,
                self.parallel
            ),
        );
        tracing::info!(job = %job.id, parent = %self.parent_run_id, "tuning started");
        Ok(())
    }

    /// A tuning job another worker ran: its parent run and trials from the
    /// progress document.
    fn resume(&mut self) -> Result<(), TuneError> {
        let p: Value = serde_json::from_str(&self.ctx.job.progress)
            .map_err(|e| TuneError::BadProgress(e.to_string()))?;
        self.parent_run_id = p["parent_run_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TuneError::BadProgress("no parent_run_id".into()))?
            .to_string();
        for (i, t) in p["trials"].as_array().into_iter().flatten().enumerate() {
            let bad = |what: &str| TuneError::BadProgress(format!("trial {}: {what}", i + 1));
            let params = t["params"]
                .as_object()
                .and_then(|m| self.spec.space.from_json(m))
                .ok_or_else(|| bad("params"))?;
            let mut trial = Trial {
                job_id: t["job_id"]
                    .as_str()
                    .ok_or_else(|| bad("job_id"))?
                    .to_string(),
                run_id: t["run_id"].as_str().map(str::to_string),
                params,
                status: t["status"].as_str().unwrap_or("queued").to_string(),
                objective: t["objective"].as_f64(),
                stopped_early: t["stopped_early"].as_bool().unwrap_or(false),
                error: t["error"].as_str().map(str::to_string),
                tagged: false,
                curve: None,
                since: Instant::now(),
            };
            if trial.status == "succeeded"
                && let Some(r) = &trial.run_id
            {
                trial.curve = history(self.st(), r, &self.spec.objective.metric)
                    .ok()
                    .map(|c| finite(&c));
            }
            trial.tagged = trial.ended();
            self.trials.push(trial);
        }
        self.ctx.event(
            "Reattached",
            &format!("resuming with {} trial(s) submitted", self.trials.len()),
        );
        Ok(())
    }

    fn progress_json(&self) -> Value {
        let space = &self.spec.space;
        let trials: Vec<Value> = self
            .trials
            .iter()
            .map(|t| {
                json!({
                    "job_id": t.job_id,
                    "run_id": t.run_id,
                    "params": space.to_json(&t.params),
                    "status": t.status,
                    "objective": number(t.objective),
                    "stopped_early": t.stopped_early,
                    "error": t.error,
                })
            })
            .collect();
        let best = self.best().map(|t| {
            json!({
                "job_id": t.job_id,
                "run_id": t.run_id,
                "objective": number(t.objective),
                "params": space.to_json(&t.params),
            })
        });
        let mut p = json!({
            "objective": {
                "metric": self.spec.objective.metric,
                "direction": self.spec.objective.direction.as_str(),
            },
            "trials": trials,
            "best": best,
            "parent_run_id": self.parent_run_id,
            "strategy": self.spec.strategy.as_str(),
            "early_stopping": self.spec.early_stopping.as_str(),
            "max_jobs": self.spec.max_jobs,
            "max_parallel_jobs": self.spec.max_parallel_jobs,
            "parallel": self.parallel,
        });
        let notes: Vec<&str> = [&self.stalled, &self.note]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !notes.is_empty() {
            p["note"] = json!(notes.join("; "));
        }
        p
    }

    /// Write the progress document when it changed (`force`: now; else at
    /// most twice a second).
    fn write_progress(&mut self, force: bool) {
        if force || (self.dirty && self.last_write.elapsed() >= Duration::from_millis(500)) {
            self.ctx.progress(&self.progress_json());
            self.dirty = false;
            self.last_write = Instant::now();
        }
    }

    /// The best trial that succeeded with an objective (the first of equals).
    fn best(&self) -> Option<&Trial> {
        let dir = self.spec.objective.direction;
        self.trials
            .iter()
            .filter(|t| t.status == "succeeded")
            .filter_map(|t| t.objective.map(|o| (o, t)))
            .fold(None, |b: Option<(f64, &Trial)>, (o, t)| match b {
                Some((bo, _)) if !dir.better(o, bo) => b,
                _ => Some((o, t)),
            })
            .map(|(_, t)| t)
    }

    fn active(&self) -> usize {
        self.trials.iter().filter(|t| !t.ended()).count()
    }

    fn run(&mut self) -> Result<Value, JobFailure> {
        let mut last_stop_check = Instant::now();
        loop {
            match self.ctx.stop_reason() {
                Some(StopReason::Requested) => return Err(self.cancel_all()),
                Some(StopReason::Shutdown) => {
                    // the trials detach on their own; another worker resumes this
                    self.write_progress(true);
                    tracing::info!(job = %self.ctx.job.id, "tuning left for another worker to resume");
                    return Err(JobFailure::Detached);
                }
                Some(StopReason::LeaseLost) => return Err(JobFailure::Cancelled),
                None => {}
            }
            self.refresh();
            if self.spec.early_stopping == EarlyStopping::Median
                && last_stop_check.elapsed() >= self.runner.stop_every
            {
                last_stop_check = Instant::now();
                self.early_stop();
            }
            let failed = self.trials.iter().filter(|t| t.status == "failed").count();
            let succeeded = self.trials.iter().any(|t| t.status == "succeeded");
            if failed >= MAX_FAILED_FIRST && !succeeded {
                let first = self
                    .trials
                    .iter()
                    .find(|t| t.status == "failed")
                    .and_then(|t| t.error.clone())
                    .unwrap_or_else(|| "no reason recorded".into());
                return Err(self.abort(format!(
                    "the first {failed} trials failed, none succeeded; the first failure: {first}"
                )));
            }
            while self.active() < self.parallel && self.trials.len() < self.spec.max_jobs {
                match self.submit_next() {
                    Ok(()) => {}
                    Err(JobsError::ShuttingDown) => {
                        self.write_progress(true);
                        return Err(JobFailure::Detached);
                    }
                    Err(e) => {
                        let trial = self.trials.len() + 1;
                        return Err(self.abort(
                            TuneError::TrialRefused {
                                trial,
                                message: e.to_string(),
                            }
                            .to_string(),
                        ));
                    }
                }
            }
            self.stall_note();
            if self.trials.len() >= self.spec.max_jobs && self.active() == 0 {
                return self.finish();
            }
            self.write_progress(false);
            std::thread::sleep(self.runner.poll);
        }
    }

    /// Read the unfinished trials' jobs: status, run, end.
    fn refresh(&mut self) {
        let metric = self.spec.objective.metric.clone();
        let parent = self.parent_run_id.clone();
        let tuning_id = self.ctx.job.id.clone();
        let st = self.ctx.store.clone();
        for (i, t) in self.trials.iter_mut().enumerate() {
            if t.ended() {
                continue;
            }
            let job: Job = match st.get_job(&t.job_id) {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(job = %tuning_id, trial = %t.job_id, "could not read a trial: {e}");
                    continue;
                }
            };
            if t.run_id.is_none() {
                let p: Value = serde_json::from_str(&job.progress).unwrap_or(Value::Null);
                if let Some(r) = p["run_id"].as_str().filter(|r| !r.is_empty()) {
                    t.run_id = Some(r.to_string());
                    self.dirty = true;
                }
            }
            if !t.tagged
                && let Some(run) = &t.run_id
            {
                let tags = [
                    Tag::new("mlflow.parentRunId", &parent),
                    Tag::new("atelier.tuning_job", &tuning_id),
                    Tag::new("atelier.tuning_trial", (i + 1).to_string()),
                ];
                match st.log_batch(run, &[], &[], &tags) {
                    Ok(()) => t.tagged = true,
                    Err(e) => {
                        tracing::warn!(job = %tuning_id, run = %run, "could not tag a trial's run: {e}")
                    }
                }
            }
            let status = job.status.as_str();
            if status != t.status {
                t.status = status.to_string();
                self.dirty = true;
            }
            if !t.ended() {
                continue;
            }
            t.error = job.error.clone();
            let curve = match &t.run_id {
                Some(r) => history(st.as_ref(), r, &metric).unwrap_or_else(|e| {
                    tracing::warn!(job = %tuning_id, run = %r, "could not read the trial's metric: {e}");
                    Vec::new()
                }),
                None => Vec::new(),
            };
            let last = curve.last().map(|(_, v)| *v).filter(|v| v.is_finite());
            match t.status.as_str() {
                "succeeded" => {
                    t.stopped_early = false;
                    t.objective = last;
                    t.curve = Some(finite(&curve));
                }
                "cancelled" if t.stopped_early => t.objective = last,
                _ => t.objective = None,
            }
            tracing::info!(job = %tuning_id, trial = i + 1, status = %t.status, objective = t.objective, "trial ended");
        }
    }

    /// The median rule on every running trial.
    fn early_stop(&mut self) {
        let completed: Vec<Vec<(i64, f64)>> = self
            .trials
            .iter()
            .filter(|t| t.status == "succeeded")
            .filter_map(|t| t.curve.clone())
            .filter(|c| !c.is_empty())
            .collect();
        if completed.len() < crate::stopping::MIN_COMPLETED {
            return;
        }
        let metric = self.spec.objective.metric.clone();
        let dir = self.spec.objective.direction;
        for i in 0..self.trials.len() {
            let t = &self.trials[i];
            if t.status != "running" || t.stopped_early {
                continue;
            }
            let Some(run) = t.run_id.clone() else {
                continue;
            };
            let curve = match history(self.st(), &run, &metric) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(run = %run, "could not read a trial's metric: {e}");
                    continue;
                }
            };
            let Some(why) = median_rule(dir, &curve, &completed) else {
                continue;
            };
            let job_id = t.job_id.clone();
            if let Err(e) = self.queue.cancel(&job_id) {
                tracing::warn!(trial = %job_id, "could not stop a trial: {e}");
                continue;
            }
            self.trials[i].stopped_early = true;
            self.dirty = true;
            let msg = format!("trial {} (job {job_id}) stopped early: {why}", i + 1);
            tracing::info!(job = %self.ctx.job.id, "{msg}");
            self.ctx.event("EarlyStopping", &msg);
        }
    }

    /// Submit the next trial.
    fn submit_next(&mut self) -> Result<(), JobsError> {
        let index = self.trials.len();
        let observed: Vec<Observation> = self
            .trials
            .iter()
            .filter_map(|t| {
                t.objective.map(|o| Observation {
                    point: t.params.clone(),
                    objective: o,
                })
            })
            .collect();
        let pending: Vec<Vec<ParamValue>> = self
            .trials
            .iter()
            .filter(|t| !t.ended())
            .map(|t| t.params.clone())
            .collect();
        let s = self.spec;
        let point = suggest(
            &s.space,
            s.strategy,
            s.objective.direction,
            s.seed,
            index,
            &observed,
            &pending,
        );
        let spec = s.trial_spec(index, &s.space.hyperparameters(&point));
        let job = self
            .queue
            .submit_as(TRIAL_KIND, spec, &jobs::Origin::of(&self.ctx.job), 1)?;
        tracing::info!(job = %self.ctx.job.id, trial = index + 1, trial_job = %job.id, "trial queued");
        self.trials.push(Trial {
            job_id: job.id,
            run_id: None,
            params: point,
            status: job.status.as_str().to_string(),
            objective: None,
            stopped_early: false,
            error: None,
            tagged: false,
            curve: None,
            since: Instant::now(),
        });
        // recorded at once: a worker resuming this job must know every trial
        self.write_progress(true);
        Ok(())
    }

    /// Name a trial that has waited long for a worker.
    fn stall_note(&mut self) {
        let stalled = self
            .trials
            .iter()
            .position(|t| t.status == "queued" && t.since.elapsed() >= STALL_NOTE_AFTER)
            .map(|i| {
                format!(
                    "trial {} has waited over {} s for a job worker: every worker is busy (this tuning job holds one of this server's {}; run the server with --job-workers {} or more, or fewer jobs at once)",
                    i + 1,
                    STALL_NOTE_AFTER.as_secs(),
                    self.workers,
                    self.spec.max_parallel_jobs + 1
                )
            });
        if stalled != self.stalled {
            self.stalled = stalled;
            self.dirty = true;
        }
    }

    fn end_parent(&self, status: RunStatus) {
        if let Err(e) = self.st().update_run(
            &self.parent_run_id,
            UpdateRun {
                status: Some(status),
                end_time: Some(store::now_ms()),
                run_name: None,
            },
        ) {
            tracing::warn!(run = %self.parent_run_id, "could not end the tuning's parent run: {e}");
        }
    }

    /// Cancel the unfinished trials and wait a little for them to end.
    fn stop_trials(&mut self) {
        for t in self.trials.iter().filter(|t| !t.ended()) {
            if let Err(e) = self.queue.cancel(&t.job_id) {
                tracing::warn!(trial = %t.job_id, "could not cancel a trial: {e}");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.active() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            self.refresh();
        }
        for t in self.trials.iter_mut().filter(|t| !t.ended()) {
            // the stop is requested; the trial's worker ends it
            t.status = "cancelled".into();
        }
    }

    fn cancel_all(&mut self) -> JobFailure {
        self.stop_trials();
        self.write_progress(true);
        self.end_parent(RunStatus::Killed);
        JobFailure::Cancelled
    }

    fn abort(&mut self, reason: String) -> JobFailure {
        tracing::warn!(job = %self.ctx.job.id, "tuning failed: {reason}");
        self.stop_trials();
        self.write_progress(true);
        self.end_parent(RunStatus::Failed);
        JobFailure::Failed(reason)
    }

    fn finish(&mut self) -> Result<Value, JobFailure> {
        let progress = self.progress_json();
        self.ctx.progress(&progress);
        let Some(best) = self.best().cloned() else {
            let ok = self
                .trials
                .iter()
                .filter(|t| t.status == "succeeded")
                .count();
            let reason = if ok == 0 {
                let first = self
                    .trials
                    .iter()
                    .find_map(|t| t.error.clone())
                    .unwrap_or_else(|| "no reason recorded".into());
                format!(
                    "no trial succeeded ({} ran); the first failure: {first}",
                    self.trials.len()
                )
            } else {
                format!(
                    "no trial that succeeded logged the objective metric '{}' (with a finite last value): log it from the script, e.g. mlflow.log_metric(\"{}\", value)",
                    self.spec.objective.metric, self.spec.objective.metric
                )
            };
            self.end_parent(RunStatus::Failed);
            return Err(JobFailure::Failed(reason));
        };
        let st = self.st();
        let objective = best.objective.unwrap_or(f64::NAN);
        if let Some(run) = &best.run_id
            && let Err(e) = st.log_batch(run, &[], &[], &[Tag::new("atelier.tuning_best", "true")])
        {
            tracing::warn!(run = %run, "could not tag the best trial's run: {e}");
        }
        let params: Vec<Param> = self
            .spec
            .space
            .hyperparameters(&best.params)
            .into_iter()
            .map(|(k, v)| Param::new(k, v))
            .collect();
        let metric = Metric::new(&self.spec.objective.metric, objective, store::now_ms(), 0);
        let mut tags = vec![Tag::new("atelier.tuning_best_job", &best.job_id)];
        if let Some(r) = &best.run_id {
            tags.push(Tag::new("atelier.tuning_best_run", r));
        }
        if let Err(e) = st.log_batch(&self.parent_run_id, &[metric], &params, &tags) {
            tracing::warn!(run = %self.parent_run_id, "could not log the best trial on the parent run: {e}");
        }
        self.end_parent(RunStatus::Finished);
        self.ctx.event(
            "Tuning",
            &format!(
                "best {} {} (trial job {})",
                self.spec.objective.metric, objective, best.job_id
            ),
        );
        Ok(progress)
    }
}
