//! The `processing` and `training` job kinds. A job: its run is created
//! (parameters = hyperparameters, tags = job id and kind), its inputs and
//! code are downloaded into its folder (`Downloading`), the command runs on
//! the executor (`Training` / `Processing`) with SageMaker's layout and
//! variables, its output lines are kept as they come, a stop request or the
//! maximum runtime sends SIGTERM and, after the grace period, SIGKILL to the
//! whole process group, and when it ends its outputs (training: `model/`
//! and `output/data/`) and its log are uploaded to the run (`Uploading`),
//! also on failure. A shutting-down server leaves the command running and
//! another worker re-attaches to it through the stored handle. On an
//! executor that does not share the server's filesystem (Ray, by default)
//! the job is staged on its worker instead ([`crate::stage`]): nothing is
//! downloaded here, the command runs as `atelier job-worker -- <argv…>`, which
//! fetches and uploads itself, and at the end only the log is stored here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifacts::{ArtifactPath, ArtifactStore};
use jobs::executor::{ExecStatus, Executor, Exit, Handle, Launch, NEVER_STARTED};
use jobs::{CheckContext, JobContext, JobFailure, Runner, StopReason};
use serde_json::{Value, json};
use store::{CreateModelVersion, CreateRun, MetadataStore, Param, RunStatus, Tag, UpdateRun};

use crate::layout::{JobEnv, Layout, failure_reason};
use crate::rules::RunRules;
use crate::spec::{JobKind, UserJobSpec, resolve_input};
use crate::stage;

/// The run artifact that keeps the job's output lines (JSON Lines of
/// `{at_ms, stream, text}`), also read by the logs API after the job ended.
pub const LOG_ARTIFACT: &str = "logs/output.jsonl";

/// How often the command's process tree is sampled (SageMaker's and
/// MLflow's default).
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Runs one kind of user job.
pub struct UserJobRunner {
    kind: JobKind,
    executor: Arc<dyn Executor>,
    jobs_dir: PathBuf,
    tracking_uri: String,
    poll: Duration,
    /// Whether the server wants tokens: each job then gets its own.
    auth_required: bool,
    /// The server's webhook policy (no loopback, private or metadata
    /// targets unless allowed), checked when a job is submitted.
    webhook_check: Option<WebhookCheck>,
    /// The Python whose kernels notebook jobs run on (None: the kernel
    /// spec's own `python`, found on the PATH).
    notebook_python: Option<PathBuf>,
}

/// Checks a webhook URL against the server's policy.
pub type WebhookCheck = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The name of a job's own API token (editor role, revoked when it ends).
pub fn job_token_name(job_id: &str) -> String {
    format!("job:{job_id}")
}

fn revoke_job_token(st: &dyn MetadataStore, job_id: &str) {
    match st.revoke_token(&job_token_name(job_id)) {
        Ok(()) | Err(store::StoreError::NotFound(_)) => {}
        Err(e) => tracing::warn!(job = %job_id, "could not revoke the job's token: {e}"),
    }
}

impl UserJobRunner {
    /// `jobs_dir` holds one folder per job (shared by every server process
    /// on this machine); `tracking_uri` is what the job's MLflow client
    /// talks to (this server).
    pub fn new(
        kind: JobKind,
        executor: Arc<dyn Executor>,
        jobs_dir: PathBuf,
        tracking_uri: String,
    ) -> UserJobRunner {
        UserJobRunner {
            kind,
            executor,
            jobs_dir,
            tracking_uri,
            poll: Duration::from_millis(100),
            auth_required: false,
            webhook_check: None,
            notebook_python: None,
        }
    }

    /// Notebook jobs run their kernels on this Python's kernel specs.
    pub fn with_notebook_python(mut self, python: Option<PathBuf>) -> Self {
        self.notebook_python = python;
        self
    }

    /// The spec as it runs (notebook jobs become Atelier's runner command).
    fn expand(&self, spec: UserJobSpec) -> UserJobSpec {
        if self.kind != JobKind::Notebook {
            return spec;
        }
        let bin = self.atelier_bin();
        let py = self
            .notebook_python
            .as_ref()
            .map(|p| p.display().to_string());
        spec.expanded(&bin, py.as_deref())
    }

    /// Check jobs' webhook URLs with the server's policy at submit time (the
    /// delivery loop checks again when it connects).
    pub fn with_webhook_check(mut self, check: WebhookCheck) -> Self {
        self.webhook_check = Some(check);
        self
    }

    /// With authentication on, give each job a token of its own for its
    /// MLflow client (`MLFLOW_TRACKING_TOKEN`), revoked when the job ends.
    pub fn with_job_tokens(mut self, on: bool) -> Self {
        self.auth_required = on;
        self
    }

    fn layout(&self, job_id: &str) -> Layout {
        Layout::new(self.kind, self.jobs_dir.join(job_id))
    }

    /// Whether new jobs are staged on the worker (`atelier job-worker`)
    /// rather than run in the server's own job folder.
    fn staged(&self) -> bool {
        !self.executor.shares_filesystem()
    }

    /// Atelier's program where commands run: the executor's, else this one.
    fn atelier_bin(&self) -> String {
        self.executor.worker_atelier_bin().unwrap_or_else(|| {
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "atelier".into())
        })
    }

    /// The output folders of a job: its name, its place in the run and its
    /// folder in the layout.
    fn output_dirs(&self, spec: &UserJobSpec, layout: &Layout) -> Vec<(String, String, PathBuf)> {
        match self.kind {
            JobKind::Processing | JobKind::Notebook => spec
                .outputs
                .iter()
                .map(|n| (n.clone(), format!("output/{n}"), layout.output(n)))
                .collect(),
            JobKind::Training => vec![
                ("model".into(), "model".into(), layout.model()),
                ("data".into(), "output/data".into(), layout.output_data()),
            ],
        }
    }

    /// The manifest `atelier job-worker` stages the job with (see
    /// [`crate::stage`]): the prepared layout's folders and config files,
    /// the inputs and code to fetch, the outputs to upload.
    fn manifest(
        &self,
        ctx: &JobContext,
        spec: &UserJobSpec,
        layout: &Layout,
        run_id: &str,
        token: Option<&str>,
    ) -> Result<stage::Manifest, String> {
        let rel = |p: &Path| -> Result<String, String> {
            p.strip_prefix(&layout.root)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        let (dirs, files) = stage::contents(&layout.root, &["executor"])
            .map_err(|e| format!("reading the job's folder {}: {e}", layout.root.display()))?;
        let mut fetch = Vec::new();
        for (name, source) in &spec.inputs {
            let r = resolve_input(ctx.store.as_ref(), &ctx.job.workspace, name, source)?;
            fetch.push(stage::Fetch {
                name: format!("input '{name}'"),
                from: r.path.as_str().to_string(),
                to: rel(&layout.input(name))?,
            });
        }
        if let Some(code) = &spec.code {
            let p = crate::spec::code_path(ctx.store.as_ref(), &ctx.job.workspace, "code", code)?;
            fetch.push(stage::Fetch {
                name: "code".into(),
                from: p.as_str().to_string(),
                to: rel(&layout.code())?,
            });
        }
        let st = ctx.store.as_ref();
        let run = st.get_run(run_id).map_err(|e| e.to_string())?;
        let root = crate::spec::artifact_of_uri(st, &run.info.artifact_uri, 0)?;
        let in_run = |p: &str| {
            root.join(p)
                .map(|a| a.as_str().to_string())
                .map_err(|e| e.to_string())
        };
        let mut upload = Vec::new();
        for (name, run_rel, dir) in self.output_dirs(spec, layout) {
            upload.push(stage::Upload {
                name,
                from: rel(&dir)?,
                to: in_run(&run_rel)?,
            });
        }
        let m = stage::Manifest {
            version: stage::MANIFEST_VERSION,
            server: self.tracking_uri.clone(),
            token: token.map(str::to_string),
            workspace: Some(ctx.job.workspace.clone()),
            job_dir: layout.root.display().to_string(),
            cwd: rel(&layout.code())?,
            dirs,
            files,
            fetch,
            upload,
            failure_file: rel(&layout.failure_file())?,
            failure_to: in_run(stage::FAILURE_ARTIFACT)?,
            max_output_bytes: spec.max_output_bytes,
        };
        m.check().map_err(|e| e.to_string())?;
        Ok(m)
    }
}

/// Whether something exists at `path` (a file, or a folder with files).
fn exists(ctx_rt: &tokio::runtime::Handle, arts: &ArtifactStore, path: &ArtifactPath) -> bool {
    ctx_rt.block_on(async {
        arts.get(path).await.is_ok() || arts.list_recursive(path).await.is_ok_and(|l| !l.is_empty())
    })
}

impl Runner for UserJobRunner {
    fn kind(&self) -> &'static str {
        self.kind.as_str()
    }

    fn check(&self, spec: &Value, ctx: &CheckContext) -> Result<String, String> {
        let s = self.expand(UserJobSpec::parse(self.kind, spec)?);
        if let Some(nb) = &s.notebook {
            crate::notebook::check_kernel(nb, self.notebook_python.as_deref())?;
        }
        for (name, source) in &s.inputs {
            let r = resolve_input(ctx.store.as_ref(), &ctx.workspace, name, source)?;
            if !exists(&ctx.rt, &ctx.artifacts, &r.path) {
                return Err(format!(
                    "input '{name}': nothing at '{source}' (artifact path '{}'); upload it first",
                    r.path.as_str()
                ));
            }
        }
        for w in &s.webhooks {
            if let Some(check) = &self.webhook_check {
                check(w)?;
            }
        }
        if let Some(code) = &s.code {
            let p = crate::spec::code_path(ctx.store.as_ref(), &ctx.workspace, "code", code)?;
            if !exists(&ctx.rt, &ctx.artifacts, &p) {
                return Err(format!("'code': nothing uploaded at '{code}'"));
            }
        }
        Ok(s.display_name(self.kind))
    }

    fn run(&self, ctx: &JobContext) -> Result<Value, JobFailure> {
        let spec = self.expand(UserJobSpec::parse(self.kind, &ctx.spec).map_err(JobFailure::msg)?);
        let layout = self.layout(&ctx.job.id);
        let progress: Value = serde_json::from_str(&ctx.job.progress).unwrap_or(json!({}));
        // adopted from a worker that stopped: re-attach to the running command
        if let Some(h) = &ctx.job.handle {
            let handle: Handle = serde_json::from_str(h).map_err(|e| {
                JobFailure::msg(format!("the job's stored handle is unreadable: {e}"))
            })?;
            let run_id = progress["run_id"].as_str().unwrap_or_default().to_string();
            // a handle recorded before the start whose command never started
            // (the worker stopped in between): nothing ran, so nothing runs
            // twice if it starts now, while attempts are left
            match self.executor.status(&handle) {
                Ok(ExecStatus::Lost { reason }) if reason.starts_with(NEVER_STARTED) => {
                    if !run_id.is_empty() {
                        end_run(ctx.store.as_ref(), &run_id, RunStatus::Failed);
                    }
                    revoke_job_token(ctx.store.as_ref(), &ctx.job.id);
                    let (attempt, max) = (ctx.job.attempt, ctx.job.max_attempts);
                    if attempt >= max {
                        return Err(JobFailure::msg(format!(
                            "{reason} (attempt {attempt} of {max}; no attempts left)"
                        )));
                    }
                    ctx.event(
                        "Retrying",
                        &format!(
                            "{reason}; starting it again (attempt {attempt} of {max} was not used)"
                        ),
                    );
                    return self.launch(ctx, spec, layout, true);
                }
                _ => {
                    ctx.event("Reattached", "a new worker follows the running command");
                    let mut w =
                        Watch::new(self, ctx, &spec, layout, run_id, progress, handle.clone());
                    return w.follow(handle);
                }
            }
        }
        self.launch(ctx, spec, layout, false)
    }
}

impl UserJobRunner {
    /// Create the job's run, lay out its folder and start the command on
    /// the executor, then follow it. `again`: the command of an earlier
    /// worker's launch never started (its state folder may hold that
    /// launch's files: a new one is used).
    fn launch(
        &self,
        ctx: &JobContext,
        spec: UserJobSpec,
        layout: Layout,
        again: bool,
    ) -> Result<Value, JobFailure> {
        let (run_id, experiment_id) = self.create_run(ctx, &spec).map_err(JobFailure::msg)?;
        let mut progress = json!({"run_id": run_id, "experiment_id": experiment_id.to_string(), "log_offset": 0, "log_lines": 0});
        let staged = self.staged();
        if staged {
            // the worker fetches the inputs itself: nothing lands here
            progress["staged"] = json!(true);
        }
        ctx.progress(&progress);
        let started = Instant::now();
        if !staged {
            ctx.event("Downloading", "downloading inputs");
            if let Err(e) = self.download(ctx, &spec, &layout) {
                end_run(ctx.store.as_ref(), &run_id, RunStatus::Failed);
                return Err(JobFailure::msg(e));
            }
        }
        let token = if self.auth_required {
            let st = ctx.store.as_ref();
            revoke_job_token(st, &ctx.job.id);
            let t = server::new_token();
            // (the job's code acts in the job's project only)
            st.create_project_token(
                &job_token_name(&ctx.job.id),
                "editor",
                &server::hash_token(&t),
                &ctx.job.workspace,
            )
            .map_err(|e| {
                end_run(st, &run_id, RunStatus::Failed);
                JobFailure::msg(format!("could not make the job's token: {e}"))
            })?;
            Some(t)
        } else {
            None
        };
        progress["download_seconds"] = json!(started.elapsed().as_secs_f64());
        let env = JobEnv {
            job_id: ctx.job.id.clone(),
            job_name: ctx.job.name.clone(),
            tracking_uri: self.tracking_uri.clone(),
            run_id: run_id.clone(),
            experiment_id: experiment_id.to_string(),
            token,
            workspace: ctx.job.workspace.clone(),
            gpus: 0,
            atelier_bin: Some(self.atelier_bin()),
        };
        let mut vars = layout.prepare(&spec, &env).map_err(|e| {
            end_run(ctx.store.as_ref(), &run_id, RunStatus::Failed);
            JobFailure::msg(format!("could not lay out the job's folder: {e}"))
        })?;
        let mut argv = spec.command.clone();
        if staged {
            // the command runs as `atelier job-worker -- <argv…>` on the
            // worker, which lays the folder out again there
            let manifest = self
                .manifest(ctx, &spec, &layout, &run_id, env.token.as_deref())
                .and_then(|m| m.to_env_value().map_err(|e| e.to_string()))
                .map_err(|e| {
                    end_run(ctx.store.as_ref(), &run_id, RunStatus::Failed);
                    revoke_job_token(ctx.store.as_ref(), &ctx.job.id);
                    JobFailure::msg(format!("could not stage the job for the worker: {e}"))
                })?;
            vars.push((stage::MANIFEST_ENV.into(), manifest));
            argv = [self.atelier_bin(), "job-worker".into(), "--".into()]
                .into_iter()
                .chain(argv)
                .collect();
        }
        let phase = match self.kind {
            JobKind::Training => "Training",
            JobKind::Processing => "Processing",
            JobKind::Notebook => "Executing",
        };
        ctx.event(phase, &format!("running {}", spec.command.join(" ")));
        let launch = Launch {
            job_id: ctx.job.id.clone(),
            argv,
            env: vars,
            cwd: layout.code(),
            state_dir: launch_dir(&layout, ctx.job.attempt, again),
        };
        let fail = |e: JobFailure| {
            end_run(ctx.store.as_ref(), &run_id, RunStatus::Failed);
            revoke_job_token(ctx.store.as_ref(), &ctx.job.id);
            e
        };
        // Recorded before anything starts: a worker killed between the start
        // and the record would otherwise leave a job that looks like work
        // which died with its worker (failed or run twice) while its command
        // runs on. With the handle, another worker adopts it.
        let planned = self.executor.planned_handle(&launch);
        if let Some(p) = &planned {
            let h = serde_json::to_string(p).map_err(|e| fail(JobFailure::msg(e)))?;
            ctx.set_handle(&h).map_err(fail)?;
        }
        let handle = self
            .executor
            .submit(&launch)
            .map_err(|e| fail(JobFailure::msg(format!("could not start the command: {e}"))))?;
        if planned.as_ref() != Some(&handle) {
            let h = serde_json::to_string(&handle).map_err(JobFailure::msg)?;
            ctx.set_handle(&h)?;
        }
        progress["started_ms"] = json!(store::now_ms());
        ctx.progress(&progress);
        let mut w = Watch::new(self, ctx, &spec, layout, run_id, progress, handle.clone());
        w.follow(handle)
    }
}

impl UserJobRunner {
    fn create_run(&self, ctx: &JobContext, spec: &UserJobSpec) -> Result<(String, i64), String> {
        let st = ctx.store.as_ref();
        let exp_name = spec.experiment.clone().unwrap_or_else(|| "jobs".into());
        let experiment_id = st
            .experiment_for(&ctx.job.workspace, &exp_name)
            .map_err(|e| e.to_string())?;
        let job = &ctx.job;
        let mut tags = vec![
            Tag::new("atelier.job_id", &job.id),
            Tag::new("atelier.job_kind", self.kind.as_str()),
            Tag::new("mlflow.source.type", "JOB"),
            Tag::new("mlflow.source.name", spec.command.join(" ")),
        ];
        for (name, source) in &spec.inputs {
            tags.push(Tag::new(format!("atelier.input.{name}"), source));
        }
        if let Some(nb) = &spec.notebook {
            let source = nb.source.clone().unwrap_or_else(|| nb.path.clone());
            tags.retain(|t| t.key != "mlflow.source.name" && t.key != "mlflow.source.type");
            tags.push(Tag::new("mlflow.source.type", "NOTEBOOK"));
            tags.push(Tag::new("mlflow.source.name", &source));
            tags.push(Tag::new("atelier.notebook.source", &source));
            if let Some(s) = &nb.schedule {
                tags.push(Tag::new("atelier.notebook.schedule", s));
            }
        }
        let user = if job.owner.is_empty() {
            "atelier"
        } else {
            job.owner.as_str()
        };
        let run = st
            .create_run(CreateRun {
                experiment_id,
                user_id: user.to_string(),
                run_name: Some(job.name.replace(' ', "-")),
                start_time: None,
                tags,
            })
            .map_err(|e| e.to_string())?;
        let params: Vec<Param> = spec
            .hyperparameters
            .iter()
            .map(|(k, v)| Param::new(k, v))
            .collect();
        for chunk in params.chunks(100) {
            st.log_batch(&run.run_id, &[], chunk, &[])
                .map_err(|e| e.to_string())?;
        }
        Ok((run.run_id, experiment_id))
    }

    /// Inputs into their folders, the code into `code/`.
    fn download(
        &self,
        ctx: &JobContext,
        spec: &UserJobSpec,
        layout: &Layout,
    ) -> Result<(), String> {
        let arts = &ctx.artifacts;
        let mut wanted: Vec<(ArtifactPath, PathBuf)> = Vec::new();
        for (name, source) in &spec.inputs {
            let r = resolve_input(ctx.store.as_ref(), &ctx.job.workspace, name, source)?;
            wanted.push((r.path, layout.input(name)));
        }
        if let Some(code) = &spec.code {
            let p = crate::spec::code_path(ctx.store.as_ref(), &ctx.job.workspace, "code", code)?;
            wanted.push((p, layout.code()));
        }
        for (path, dest) in wanted {
            std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
            // a file lands inside the folder under its own name
            let file_name = path
                .as_str()
                .rsplit('/')
                .next()
                .unwrap_or("data")
                .to_string();
            let single = ctx.block_on(arts.download_to(&path, &dest.join(&file_name)));
            match single {
                Ok(_) => continue,
                Err(artifacts::ArtifactError::NotFound(_))
                | Err(artifacts::ArtifactError::Storage(_)) => {
                    let _ = std::fs::remove_file(dest.join(&file_name));
                }
                Err(e) => return Err(e.to_string()),
            }
            let files = ctx
                .block_on(arts.list_recursive(&path))
                .map_err(|e| e.to_string())?;
            if files.is_empty() {
                return Err(format!("nothing at '{}' any more", path.as_str()));
            }
            let prefix = format!("{}/", path.as_str().trim_end_matches('/'));
            for (full, _) in files {
                let rel = full.strip_prefix(&prefix).unwrap_or(&full);
                let src = ArtifactPath::parse(&full).map_err(|e| e.to_string())?;
                let to = dest.join(rel);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                ctx.block_on(arts.download_to(&src, &to))
                    .map_err(|e| format!("downloading '{full}': {e}"))?;
            }
        }
        Ok(())
    }
}

fn end_run(st: &dyn MetadataStore, run_id: &str, status: RunStatus) {
    if run_id.is_empty() {
        return;
    }
    if let Err(e) = st.update_run(
        run_id,
        UpdateRun {
            status: Some(status),
            end_time: Some(store::now_ms()),
            run_name: None,
        },
    ) {
        tracing::warn!(run = %run_id, "could not end the job's run: {e}");
    }
}

/// Following a launched command until it ends.
struct Watch<'a> {
    runner: &'a UserJobRunner,
    ctx: &'a JobContext,
    spec: &'a UserJobSpec,
    layout: Layout,
    run_id: String,
    progress: Value,
    handle: Handle,
    /// The Debugger's rules over the run's metrics.
    rules: Option<RunRules>,
    /// The rule that stopped the job, if one did.
    stopped_by_rule: Option<String>,
}

/// How often a command is looked at during its first second.
pub const FIRST_POLL: Duration = Duration::from_millis(10);

/// How often the run's new metric points are read for the Debugger.
pub const RULES_EVERY: Duration = Duration::from_secs(1);

/// The executor's folder of this attempt's launch; `again`: a fresh one
/// beside the folder an earlier launch that never started may have used.
fn launch_dir(layout: &Layout, attempt: i64, again: bool) -> PathBuf {
    let dir = layout.state_dir(attempt);
    if !again || !dir.join("launch.json").exists() {
        return dir;
    }
    (2..)
        .map(|n| dir.with_file_name(format!("{attempt}-{n}")))
        .find(|d| !d.exists())
        .unwrap_or(dir)
}

/// The supervisor's pid of a local handle: in the handle, or (a handle
/// recorded before the start) in the record the supervisor wrote.
fn supervisor_pid(h: &Handle) -> Option<u64> {
    if let Some(pid) = h.data["pid"].as_u64() {
        return Some(pid);
    }
    if h.executor != jobs::local::NAME {
        return None;
    }
    let bytes = std::fs::read(handle_dir(h).join("supervisor.json")).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["pid"].as_u64()
}

/// The executor's folder of a local handle (where its log file is).
fn handle_dir(h: &Handle) -> PathBuf {
    PathBuf::from(h.data["state_dir"].as_str().unwrap_or_default())
}

/// How following ended.
enum Ending {
    Exited(Exit),
    Lost(String),
}

impl<'a> Watch<'a> {
    fn new(
        runner: &'a UserJobRunner,
        ctx: &'a JobContext,
        spec: &'a UserJobSpec,
        layout: Layout,
        run_id: String,
        progress: Value,
        handle: Handle,
    ) -> Self {
        // rebuilt from the run's whole history on a re-attachment
        let rules = spec
            .rule_specs()
            .ok()
            .filter(|r| !r.is_empty())
            .and_then(|r| {
                debugger::Watch::new(r, ctx.job.started_ms.unwrap_or_else(store::now_ms)).ok()
            })
            .map(RunRules::new);
        Watch {
            runner,
            ctx,
            spec,
            layout,
            run_id,
            progress,
            handle,
            rules,
            stopped_by_rule: None,
        }
    }

    /// Feed the run's new metric points to the rules; record what fired;
    /// true when a rule asks to stop the training.
    fn check_rules(&mut self, finished: bool) -> bool {
        let Some(rr) = self.rules.as_mut() else {
            return false;
        };
        let now = store::now_ms();
        let mut fired = Vec::new();
        // a store error leaves the rest for the next look
        let _ = rr.observe_new(self.ctx.store.as_ref(), &self.run_id, now, &mut fired);
        let watch = &mut rr.watch;
        fired.extend(if finished {
            watch.finish(now)
        } else {
            watch.tick(now)
        });
        let results = watch.results();
        self.progress["rules"] = serde_json::to_value(&results).unwrap_or(Value::Null);
        let mut stop = false;
        for r in fired
            .iter()
            .filter(|r| r.status == debugger::Status::IssuesFound)
        {
            self.ctx
                .event("RuleIssuesFound", &format!("{}: {}", r.label, r.message));
            if !self.spec.webhooks.is_empty() {
                let body = json!({
                    "event": "atelier.debugger.issues_found",
                    "job_id": self.ctx.job.id,
                    "job_name": self.ctx.job.name,
                    "run_id": self.run_id,
                    "rule": r,
                    "studio_path": format!("/jobs/{}", self.ctx.job.id),
                });
                // the outbox's delivery loop sends it, off this worker
                if let Err(e) = self.ctx.store.enqueue_webhook_deliveries(
                    &self.ctx.job.id,
                    &format!("job:{}", self.ctx.job.name),
                    &self.spec.webhooks,
                    &body.to_string(),
                ) {
                    tracing::warn!(job = %self.ctx.job.id, "could not queue the rule's webhooks: {e}");
                }
            }
            if r.stop_training() && !finished {
                stop = true;
                self.stopped_by_rule
                    .get_or_insert_with(|| format!("{}: {}", r.label, r.message));
            }
        }
        if !fired.is_empty() {
            self.ctx.progress(&self.progress);
        }
        stop
    }

    /// Copy new output lines to the job's log file; true when any came.
    fn pump_logs(&mut self, handle: &Handle) -> bool {
        let from = self.progress["log_offset"].as_u64().unwrap_or(0);
        let Ok(chunk) = self.runner.executor.logs(handle, from, 1 << 20) else {
            return false;
        };
        if chunk.lines.is_empty() {
            return false;
        }
        self.progress["log_offset"] = json!(chunk.next);
        let n = self.progress["log_lines"].as_u64().unwrap_or(0) + chunk.lines.len() as u64;
        self.progress["log_lines"] = json!(n);
        if let Some(last) = chunk.lines.last() {
            self.progress["last_line"] = json!(last.text.chars().take(300).collect::<String>());
        }
        true
    }

    fn follow(&mut self, handle: Handle) -> Result<Value, JobFailure> {
        let started_ms = self.progress["started_ms"]
            .as_i64()
            .unwrap_or_else(store::now_ms);
        let deadline_ms = started_ms + (self.spec.max_runtime_seconds as i64) * 1000;
        let grace = Duration::from_secs(self.spec.stop_grace_seconds);
        let mut stop_sent = false;
        let mut timed_out = false;
        let mut last_progress = Instant::now();
        let mut dirty = false;
        // an executor that cannot be reached (a Ray head) is retried every
        // poll: say so once in a while, not ten times a second
        let mut status_warned: Option<Instant> = None;
        // system metrics of the command's process tree (the supervisor's),
        // as MLflow's system-metrics logging names them
        let watching = Instant::now();
        let mut last_rules = Instant::now();
        let new_sampler = |h: &Handle| {
            supervisor_pid(h).and_then(|pid| {
                sysmetrics::Sampler::new(pid as u32, sysmetrics::SamplerOptions::default()).ok()
            })
        };
        let mut sampler = new_sampler(&handle);
        let mut last_sample = Instant::now();
        let ending = loop {
            if last_sample.elapsed() >= SAMPLE_EVERY {
                last_sample = Instant::now();
                // a handle recorded before the start names its supervisor
                // once that recorded itself
                if sampler.is_none() {
                    sampler = new_sampler(&handle);
                }
                if let Some(s) = sampler.as_mut() {
                    self.log_system_metrics(s);
                }
            }
            // new lines reach the job's progress at most twice a second
            dirty |= self.pump_logs(&handle);
            if dirty && last_progress.elapsed() >= Duration::from_millis(500) {
                self.ctx.progress(&self.progress);
                last_progress = Instant::now();
                dirty = false;
            }
            match self.runner.executor.status(&handle) {
                Ok(ExecStatus::Exited(exit)) => {
                    while self.pump_logs(&handle) {}
                    break Ending::Exited(exit);
                }
                Ok(ExecStatus::Lost { reason }) => {
                    while self.pump_logs(&handle) {}
                    // end whatever of the command outlived its supervisor
                    if let Err(e) = self.runner.executor.stop(&handle, grace) {
                        tracing::warn!(job = %self.ctx.job.id, "could not stop what is left of the command: {e}");
                    }
                    break Ending::Lost(reason);
                }
                Ok(ExecStatus::Running) => {}
                Err(e) => {
                    if status_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        status_warned = Some(Instant::now());
                        tracing::warn!(job = %self.ctx.job.id, "could not read the command's status: {e}");
                    }
                }
            }
            if last_rules.elapsed() >= RULES_EVERY {
                last_rules = Instant::now();
                if self.check_rules(false) && !stop_sent {
                    stop_sent = true;
                    let why = self.stopped_by_rule.clone().unwrap_or_default();
                    self.ctx.event(
                        "Stopping",
                        &format!("StopTraining by the Debugger rule {why}"),
                    );
                    if let Err(e) = self.runner.executor.stop(&handle, grace) {
                        tracing::warn!(job = %self.ctx.job.id, "could not stop the command: {e}");
                    }
                }
            }
            match self.ctx.stop_reason() {
                Some(StopReason::Shutdown) => {
                    self.ctx.progress(&self.progress);
                    return Err(JobFailure::Detached);
                }
                Some(StopReason::LeaseLost) => return Err(JobFailure::Cancelled),
                Some(StopReason::Requested) if !stop_sent => {
                    stop_sent = true;
                    self.ctx.event(
                        "Stopping",
                        &format!(
                            "SIGTERM sent; SIGKILL in {} s if still running",
                            grace.as_secs()
                        ),
                    );
                    if let Err(e) = self.runner.executor.stop(&handle, grace) {
                        tracing::warn!(job = %self.ctx.job.id, "could not stop the command: {e}");
                    }
                }
                _ => {}
            }
            if !stop_sent && store::now_ms() > deadline_ms {
                stop_sent = true;
                timed_out = true;
                self.ctx.event(
                    "MaxRuntimeExceeded",
                    &format!(
                        "the job ran past its maximum runtime of {} s",
                        self.spec.max_runtime_seconds
                    ),
                );
                if let Err(e) = self.runner.executor.stop(&handle, grace) {
                    tracing::warn!(job = %self.ctx.job.id, "could not stop the command: {e}");
                }
            }
            // short commands are common: look closely at first, then at ease
            std::thread::sleep(if watching.elapsed() < Duration::from_secs(1) {
                FIRST_POLL
            } else {
                self.runner.poll
            });
        };
        self.check_rules(true);
        self.ctx.progress(&self.progress);
        self.finish(ending, timed_out)
    }

    /// One sample of the process tree as metrics of the job's run.
    fn log_system_metrics(&mut self, s: &mut sysmetrics::Sampler) {
        let Ok(sample) = s.sample() else {
            return;
        };
        // steps go on across re-attachments
        let step = self.progress["metrics_step"].as_i64().unwrap_or(0);
        self.progress["metrics_step"] = json!(step + 1);
        let metrics: Vec<store::Metric> = sample
            .metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| store::Metric::new(k.as_ref(), *v, sample.timestamp_ms, step))
            .collect();
        if let Err(e) = self.ctx.store.log_batch(&self.run_id, &metrics, &[], &[]) {
            tracing::warn!(job = %self.ctx.job.id, "could not log system metrics: {e}");
        }
    }

    fn finish(&mut self, ending: Ending, timed_out: bool) -> Result<Value, JobFailure> {
        let ctx = self.ctx;
        revoke_job_token(ctx.store.as_ref(), &ctx.job.id);
        ctx.event("Uploading", "uploading outputs and the log");
        let uploaded = self.upload();
        let (exit, lost) = match &ending {
            Ending::Exited(e) => (Some(e.clone()), None),
            Ending::Lost(r) => (None, Some(r.clone())),
        };
        let script_reason = if self.staged() {
            self.staged_failure_reason()
        } else {
            failure_reason(&self.layout)
        };
        let mut result = json!({
            "run_id": self.run_id,
            "experiment_id": self.progress["experiment_id"],
            "exit": exit,
            "log_lines": self.progress["log_lines"],
            "rules": self.progress["rules"],
        });
        let outcome: Result<(), JobFailure> = match (&uploaded, &exit, &lost) {
            (_, _, Some(reason)) => Err(JobFailure::msg(reason)),
            (_, Some(e), _) if timed_out => Err(JobFailure::msg(format!(
                "MaxRuntimeExceeded: stopped after the maximum runtime of {} s{}",
                self.spec.max_runtime_seconds,
                e.code
                    .map(|c| format!(" (exit status {c})"))
                    .unwrap_or_default()
            ))),
            (_, Some(_), _) if self.stopped_by_rule.is_some() => Err(JobFailure::Stopped(format!(
                "stopped by the Debugger (StopTraining): {}",
                self.stopped_by_rule.clone().unwrap_or_default()
            ))),
            (_, Some(e), _) if e.stopped => Err(JobFailure::Cancelled),
            (_, Some(e), _) if !e.success() => {
                let base = e.reason().unwrap_or_else(|| "the command failed".into());
                Err(JobFailure::msg(match &script_reason {
                    Some(r) => format!("{r} ({base})"),
                    None => base,
                }))
            }
            (Err(e), _, _) => Err(JobFailure::msg(e)),
            _ => Ok(()),
        };
        if let Ok(outputs) = &uploaded {
            result["outputs"] = json!(outputs);
        }
        match outcome {
            Ok(()) => {
                if self.runner.kind == JobKind::Training {
                    result["model_uri"] = json!(format!("runs:/{}/model", self.run_id));
                    if let Some(name) = &self.spec.register_model {
                        match self.register(name) {
                            Ok(v) => result["model_version"] = json!({"name": name, "version": v}),
                            Err(e) => {
                                end_run(ctx.store.as_ref(), &self.run_id, RunStatus::Failed);
                                return Err(JobFailure::msg(format!(
                                    "the job ran, but registering its model as '{name}' failed: {e}"
                                )));
                            }
                        }
                    }
                }
                end_run(ctx.store.as_ref(), &self.run_id, RunStatus::Finished);
                Ok(result)
            }
            Err(e @ (JobFailure::Cancelled | JobFailure::Stopped(_))) => {
                end_run(ctx.store.as_ref(), &self.run_id, RunStatus::Killed);
                Err(e)
            }
            Err(e) => {
                end_run(ctx.store.as_ref(), &self.run_id, RunStatus::Failed);
                Err(e)
            }
        }
    }

    /// The run's artifact folder.
    fn run_root(&self) -> Result<ArtifactPath, String> {
        let run = self
            .ctx
            .store
            .get_run(&self.run_id)
            .map_err(|e| e.to_string())?;
        crate::spec::artifact_of_uri(self.ctx.store.as_ref(), &run.info.artifact_uri, 0)
    }

    /// Upload the log, then the outputs (all or nothing per output: an
    /// output over the size limit is not uploaded at all). Returns the
    /// outputs' artifact URIs by name.
    fn upload(&mut self) -> Result<serde_json::Map<String, Value>, String> {
        let root = self.run_root()?;
        let arts = self.ctx.artifacts.clone();
        let log_file = if self.handle.executor == jobs::local::NAME {
            handle_dir(&self.handle).join("output.jsonl")
        } else {
            // another executor (Ray) keeps the log itself: a copy in the same form
            match self.copy_log() {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(job = %self.ctx.job.id, "could not read the job's log from the executor: {e}");
                    PathBuf::new()
                }
            }
        };
        if !log_file.as_os_str().is_empty() && log_file.exists() {
            let dest = root.join(LOG_ARTIFACT).map_err(|e| e.to_string())?;
            if let Err(e) = self.ctx.block_on(arts.put_file(&dest, &log_file)) {
                tracing::warn!(job = %self.ctx.job.id, "could not keep the log: {e}");
            }
        }
        let dirs = self.runner.output_dirs(self.spec, &self.layout);
        if self.staged() {
            // the worker uploaded them: count what arrived
            let mut out = serde_json::Map::new();
            for (name, rel, _) in &dirs {
                let base = root.join(rel).map_err(|e| e.to_string())?;
                let files = self
                    .ctx
                    .block_on(arts.list_recursive(&base))
                    .map_err(|e| format!("output '{name}': {e}"))?;
                out.insert(
                    name.clone(),
                    json!({"uri": format!("runs:/{}/{rel}", self.run_id), "files": files.len()}),
                );
            }
            return Ok(out);
        }
        let mut sizes = Vec::new();
        let mut total = 0u64;
        for (name, _, dir) in &dirs {
            let files = files_under(dir).map_err(|e| format!("output '{name}': {e}"))?;
            let size: u64 = files.iter().map(|(_, s)| s).sum();
            total += size;
            if total > self.spec.max_output_bytes {
                return Err(format!(
                    "output '{name}' brings the outputs to {total} bytes, over the limit of {} bytes (max_output_bytes); nothing of it was uploaded",
                    self.spec.max_output_bytes
                ));
            }
            sizes.push(files);
        }
        let mut out = serde_json::Map::new();
        for ((name, rel, dir), files) in dirs.iter().zip(sizes) {
            let base = root.join(rel).map_err(|e| e.to_string())?;
            for (file, _) in &files {
                let r = file
                    .strip_prefix(dir)
                    .map_err(|e| e.to_string())?
                    .to_string_lossy()
                    .replace('\\', "/");
                let dest = base.join(&r).map_err(|e| format!("output '{name}': {e}"))?;
                self.ctx
                    .block_on(arts.put_file(&dest, file))
                    .map_err(|e| format!("uploading output '{name}' ({r}): {e}"))?;
            }
            out.insert(
                name.clone(),
                json!({"uri": format!("runs:/{}/{rel}", self.run_id), "files": files.len()}),
            );
        }
        Ok(out)
    }

    /// Whether the job was staged on its worker (`atelier job-worker`), which
    /// uploaded its outputs and failure reason itself.
    fn staged(&self) -> bool {
        self.progress["staged"].as_bool().unwrap_or(false)
    }

    /// The failure reason a staged job's worker uploaded, first 1,024 characters.
    fn staged_failure_reason(&self) -> Option<String> {
        let path = self.run_root().ok()?.join(stage::FAILURE_ARTIFACT).ok()?;
        let bytes = self.ctx.block_on(self.ctx.artifacts.read_all(&path)).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let t: String = text.trim().chars().take(1024).collect();
        (!t.is_empty()).then_some(t)
    }

    /// The executor's whole log as JSON Lines of [`jobs::executor::LogLine`]
    /// (the local executor's `output.jsonl` form), in this attempt's folder.
    fn copy_log(&self) -> Result<PathBuf, String> {
        use std::io::Write;
        let dir = self.layout.state_dir(self.ctx.job.attempt);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("output.jsonl");
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let mut from = 0;
        loop {
            let chunk = self
                .runner
                .executor
                .logs(&self.handle, from, 4 << 20)
                .map_err(|e| e.to_string())?;
            if chunk.next == from {
                break;
            }
            from = chunk.next;
            for l in &chunk.lines {
                serde_json::to_writer(&mut out, l).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(|e| e.to_string())?;
            }
        }
        out.flush().map_err(|e| e.to_string())?;
        Ok(path)
    }

    fn register(&self, name: &str) -> Result<i64, String> {
        let st = self.ctx.store.as_ref();
        st.registered_model_for(&self.ctx.job.workspace, name, "", "atelier")
            .map_err(|e| e.to_string())?;
        let mv = st
            .create_model_version(CreateModelVersion {
                name: name.to_string(),
                source: format!("runs:/{}/model", self.run_id),
                run_id: self.run_id.clone(),
                tags: vec![Tag::new("atelier.job_id", &self.ctx.job.id)],
                run_link: String::new(),
                description: format!("trained by job {}", self.ctx.job.name),
                model_id: String::new(),
                user_id: "atelier".into(),
            })
            .map_err(|e| e.to_string())?;
        Ok(mv.version)
    }
}

/// Regular files below `dir` (symlinks are not followed, as SageMaker does
/// not upload them), with sizes, sorted: what is uploaded of an output
/// folder, here and by `atelier job-worker` on a staged job's worker.
pub fn files_under(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push((e.path(), e.metadata()?.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}
