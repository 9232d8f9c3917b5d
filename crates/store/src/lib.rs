//! # store — Atelier's metadata store
//!
//! Brief overview: experiments, runs (params, tags, metric histories, inputs
//! and outputs), the model registry and MLflow 3.x logged models live behind
//! one trait, [`MetadataStore`]. [`SqlStore`] is the embedded default
//! (SQLite in WAL mode, versioned migrations, one writer connection and a
//! pool of readers); a PostgreSQL implementation can sit behind the same
//! trait without touching callers.
//!
//! This is the only crate that knows SQL. It knows nothing of HTTP or JSON
//! wire shapes: the `server` crate converts these types to MLflow's JSON.
//!
//! ```
//! use store::{MetadataStore, SqlStore, CreateRun, Metric};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqlStore::open(dir.path().join("meta.db")).unwrap();
//! let exp = store.create_experiment("demo", None, &[]).unwrap();
//! let run = store
//!     .create_run(CreateRun { experiment_id: exp, user_id: "me".into(), ..Default::default() })
//!     .unwrap();
//! store
//!     .log_batch(&run.run_id, &[Metric::new("loss", 0.5, 1, 0)], &[], &[])
//!     .unwrap();
//! assert_eq!(store.get_run(&run.run_id).unwrap().metrics[0].value, 0.5);
//! ```

pub mod db;
pub mod filter;
mod genai;
mod model;
mod model_cards;
pub mod scratch;
mod sqlite;
mod traces;

pub use genai::*;
pub use model::*;
pub use model_cards::*;
pub use sqlite::CopyReport;
pub use sqlite::SqlStore;
pub use sqlite::import::{ImportDatasetInput, ImportEntity, ImportPoint, ImportTx, TableCounts};
pub use traces::*;

/// What went wrong, named by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named entity does not exist (or is not visible).
    #[error("{0}")]
    NotFound(String),
    /// An entity with that identity exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is malformed or breaks a rule (limits, immutable params, filter syntax).
    #[error("{0}")]
    InvalidParameter(String),
    /// The operation is not allowed in the entity's current state (e.g. a deleted run).
    #[error("{0}")]
    InvalidState(String),
    /// A database failure: not the caller's fault.
    #[error("database error: {0}")]
    Database(db::DbError),
    /// Anything else that is not the caller's fault.
    #[error("{0}")]
    Internal(String),
}

impl From<db::DbError> for StoreError {
    fn from(e: db::DbError) -> Self {
        if e.is_nul_in_text() {
            // PostgreSQL stores no U+0000 in text; say so instead of a 500
            StoreError::InvalidParameter("text must not contain a NUL character (U+0000)".into())
        } else {
            StoreError::Database(e)
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Current time as epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Metadata operations. Every method is synchronous and may block on IO;
/// async callers run them on a blocking thread pool. A method that returns
/// `Ok` has committed its writes durably enough to survive a crash of the
/// process.
pub trait MetadataStore: TraceStore + ModelCardStore + GenaiStore + Send + Sync + 'static {
    // ---- workspaces (projects) ----
    /// Every workspace, by name (`default` among them).
    fn list_workspaces(&self) -> Result<Vec<Workspace>>;
    /// A new workspace; its name must be free (and not `default`).
    fn create_workspace(&self, w: &Workspace) -> Result<Workspace>;
    fn get_workspace(&self, name: &str) -> Result<Workspace>;
    /// Change what is given: `Some("")` clears the artifact root.
    fn update_workspace(
        &self,
        name: &str,
        description: Option<&str>,
        default_artifact_root: Option<&str>,
    ) -> Result<Workspace>;
    /// Delete a workspace: refused while it holds anything (`Restrict`), or
    /// everything it holds moves to `default` (`SetDefault`). Its members'
    /// roles and the tokens bound to it go; its name is retired.
    fn delete_workspace(&self, name: &str, mode: WorkspaceDeletion) -> Result<()>;
    /// Whether `name` belonged to a deleted workspace and is not free yet:
    /// its folder in the artifact store belongs to the default workspace.
    fn workspace_retired(&self, name: &str) -> Result<bool>;
    /// Free a retired name (once nothing is left under its folder).
    fn free_workspace_name(&self, name: &str) -> Result<()>;
    /// The workspace of an experiment.
    fn experiment_workspace(&self, id: i64) -> Result<String>;
    /// The workspace of a run (its experiment's).
    fn run_workspace(&self, run_id: &str) -> Result<String>;
    /// The workspace of a logged model (its experiment's; deleted ones too).
    fn logged_model_workspace(&self, model_id: &str) -> Result<String>;
    /// The workspace of a trace (its experiment's).
    fn trace_workspace(&self, trace_id: &str) -> Result<String>;

    // ---- experiments ----
    /// A new experiment in `workspace` (its name free there).
    fn create_experiment_in(
        &self,
        workspace: &str,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<i64>;
    /// A new experiment in the default workspace.
    fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<i64> {
        self.create_experiment_in(DEFAULT_WORKSPACE, name, artifact_location, tags)
    }
    fn get_experiment(&self, id: i64) -> Result<Experiment>;
    /// The active experiment with that name in `workspace`, else a deleted one.
    fn get_experiment_by_name_in(&self, workspace: &str, name: &str) -> Result<Experiment>;
    /// The active experiment with that name in the default workspace, else a deleted one.
    fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.get_experiment_by_name_in(DEFAULT_WORKSPACE, name)
    }
    /// The id of the experiment named `name` in `workspace`, created when
    /// there is none (one created meanwhile by another writer is used): where
    /// jobs log their runs.
    fn experiment_for(&self, workspace: &str, name: &str) -> Result<i64> {
        match self.get_experiment_by_name_in(workspace, name) {
            Ok(e) => Ok(e.experiment_id),
            Err(StoreError::NotFound(_)) => {
                match self.create_experiment_in(workspace, name, None, &[]) {
                    Ok(id) => Ok(id),
                    Err(StoreError::AlreadyExists(_)) => Ok(self
                        .get_experiment_by_name_in(workspace, name)?
                        .experiment_id),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
    /// A registered model named `name` in `workspace`, created when there is
    /// none (one created meanwhile is used); a name another workspace holds is
    /// refused (`AlreadyExists`, saying so): where jobs register their models.
    fn registered_model_for(
        &self,
        workspace: &str,
        name: &str,
        description: &str,
        user_id: &str,
    ) -> Result<()> {
        match self.create_registered_model_in(workspace, name, &[], description, user_id) {
            Ok(_) => Ok(()),
            Err(StoreError::AlreadyExists(m)) => {
                if self.registered_model_workspace(name)? == workspace {
                    Ok(())
                } else {
                    Err(StoreError::AlreadyExists(m))
                }
            }
            Err(e) => Err(e),
        }
    }
    fn search_experiments(&self, q: &SearchExperiments) -> Result<Page<Experiment>>;
    fn rename_experiment(&self, id: i64, new_name: &str) -> Result<()>;
    fn delete_experiment(&self, id: i64) -> Result<()>;
    fn restore_experiment(&self, id: i64) -> Result<()>;
    fn set_experiment_tag(&self, id: i64, key: &str, value: &str) -> Result<()>;
    fn delete_experiment_tag(&self, id: i64, key: &str) -> Result<()>;

    // ---- runs ----
    fn create_run(&self, req: CreateRun) -> Result<RunInfo>;
    fn get_run(&self, run_id: &str) -> Result<Run>;
    fn update_run(&self, run_id: &str, upd: UpdateRun) -> Result<RunInfo>;
    fn delete_run(&self, run_id: &str) -> Result<()>;
    fn restore_run(&self, run_id: &str) -> Result<()>;
    /// Metrics, params and tags in one transaction. Re-logging a param with a
    /// different value is `InvalidParameter`.
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()>;
    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()>;
    fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        model_inputs: &[String],
    ) -> Result<()>;
    fn log_outputs(&self, run_id: &str, outputs: &[ModelOutput]) -> Result<()>;
    fn search_runs(&self, q: &SearchRuns) -> Result<Page<Run>>;
    /// Every metric point of a run logged after `cursor` (0 at first), in the
    /// order they were written, at most `limit`; with the cursor to pass
    /// next time. For watchers that follow a run as it logs (the Debugger).
    fn metric_points_after(
        &self,
        run_id: &str,
        cursor: i64,
        limit: usize,
    ) -> Result<(Vec<Metric>, i64)>;
    /// All points of one metric of one run, ordered by step then timestamp.
    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>>;
    /// Down-sampled history for several runs, as MLflow samples it: at most
    /// `max_results` points per run, evenly spaced over the run's points in
    /// the step range, always keeping the first and the last.
    fn metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: usize,
    ) -> Result<Vec<RunMetric>>;
    /// The datasets the runs of these experiments took as inputs, one entry
    /// per (experiment, name, digest, context), at most 1000 (MLflow's
    /// `search-datasets`).
    fn search_datasets(&self, experiment_ids: &[i64]) -> Result<Vec<DatasetSummary>>;
    /// Distinct metric keys logged in the given experiments (Studio column chooser).
    fn metric_keys(&self, experiment_ids: &[i64]) -> Result<Vec<String>>;

    // ---- model registry ----
    /// A new registered model in `workspace`. Names are unique on the server:
    /// one another workspace holds is refused as taken (`AlreadyExists`).
    fn create_registered_model_in(
        &self,
        workspace: &str,
        name: &str,
        tags: &[Tag],
        description: &str,
        user_id: &str,
    ) -> Result<RegisteredModel>;
    /// [`create_registered_model_in`](Self::create_registered_model_in) the default workspace.
    fn create_registered_model(
        &self,
        name: &str,
        tags: &[Tag],
        description: &str,
        user_id: &str,
    ) -> Result<RegisteredModel> {
        self.create_registered_model_in(DEFAULT_WORKSPACE, name, tags, description, user_id)
    }
    /// The workspace of a registered model.
    fn registered_model_workspace(&self, name: &str) -> Result<String>;
    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel>;
    fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel>;
    fn update_registered_model(&self, name: &str, description: &str) -> Result<RegisteredModel>;
    fn delete_registered_model(&self, name: &str) -> Result<()>;
    fn search_registered_models(&self, q: &SearchRegistry) -> Result<Page<RegisteredModel>>;
    fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()>;
    fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()>;
    fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()>;
    fn delete_alias(&self, name: &str, alias: &str) -> Result<()>;
    fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion>;
    fn create_model_version(&self, req: CreateModelVersion) -> Result<ModelVersion>;
    fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion>;
    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
    ) -> Result<ModelVersion>;
    fn delete_model_version(&self, name: &str, version: i64) -> Result<()>;
    fn search_model_versions(&self, q: &SearchRegistry) -> Result<Page<ModelVersion>>;
    fn latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>>;
    fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion>;
    fn set_model_version_tag(&self, name: &str, version: i64, key: &str, value: &str)
    -> Result<()>;
    fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()>;

    // ---- logged models ----
    fn create_logged_model(&self, req: CreateLoggedModel) -> Result<LoggedModel>;
    fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel>;
    fn delete_logged_model(&self, model_id: &str) -> Result<()>;
    fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel>;
    fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()>;
    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()>;
    fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<()>;
    fn search_logged_models(&self, q: &SearchLoggedModels) -> Result<Page<LoggedModel>>;

    // ---- people: users, their roles per project, tokens, sessions ----
    /// A new user (`password_hash`: an Argon2id PHC string, none: tokens only).
    fn create_user(&self, name: &str, password_hash: Option<&str>, is_admin: bool) -> Result<User>;
    fn get_user(&self, name: &str) -> Result<User>;
    fn list_users(&self) -> Result<Vec<User>>;
    /// Set or clear a user's password; ends every session of theirs.
    fn set_user_password(&self, name: &str, password_hash: Option<&str>) -> Result<()>;
    fn set_user_admin(&self, name: &str, is_admin: bool) -> Result<()>;
    /// Delete a user with their tokens, sessions and project roles.
    fn delete_user(&self, name: &str) -> Result<()>;
    /// A user's password hash (none: they sign in with tokens only).
    fn password_hash(&self, name: &str) -> Result<Option<String>>;
    /// Give `user` `role` in `workspace` (replacing the role they had there).
    fn set_member(&self, workspace: &str, user: &str, role: &str) -> Result<()>;
    fn remove_member(&self, workspace: &str, user: &str) -> Result<()>;
    /// (user, role) of a project's members, by name.
    fn list_members(&self, workspace: &str) -> Result<Vec<(String, String)>>;
    /// (workspace, role) of a user's projects, by name.
    fn member_roles(&self, user: &str) -> Result<Vec<(String, String)>>;
    /// A user's role in a project, if they have one.
    fn member_role(&self, workspace: &str, user: &str) -> Result<Option<String>>;

    /// A service token: of no user, it acts in every project with `role`
    /// (an `admin` one as a server admin) — for jobs, spaces and scripts.
    fn create_token(
        &self,
        name: &str,
        role: &str,
        token_hash: &str,
        expires: Option<i64>,
    ) -> Result<()>;
    /// A token of no user that acts in project `workspace` only, with
    /// `role` (never as a server admin): a job's, for the user code it runs.
    fn create_project_token(
        &self,
        name: &str,
        role: &str,
        token_hash: &str,
        workspace: &str,
    ) -> Result<()>;
    /// A token of an existing user, which may do at most `role`.
    fn create_user_token(
        &self,
        user: &str,
        name: &str,
        role: &str,
        token_hash: &str,
        expires: Option<i64>,
    ) -> Result<()>;
    /// An invocation key of endpoint `endpoint` (role `invoke`): it may
    /// only invoke that endpoint. `created_by` is recorded as its user.
    fn create_endpoint_key(
        &self,
        endpoint: &str,
        name: &str,
        token_hash: &str,
        created_by: &str,
    ) -> Result<()>;
    /// Whether a small read answers in microseconds without waiting on a
    /// network (the embedded SQLite, whose readers never wait for writers):
    /// an async caller may then make it in place instead of on a blocking
    /// pool. PostgreSQL's reads are network round trips: never in place.
    fn reads_in_place(&self) -> bool {
        false
    }
    /// One request's credential in one trip: the token (or, with `session`,
    /// the Studio session) whose secret hashes to `secret_hash` (none: no
    /// credential is looked up), and for `workspace` the user's role there
    /// and whether it exists.
    fn authenticate(
        &self,
        secret_hash: Option<&str>,
        session: bool,
        workspace: Option<&str>,
    ) -> Result<Authenticated>;
    /// What a token hash stands for, unless unknown or expired.
    fn lookup_token(&self, token_hash: &str) -> Result<Option<Credential>>;
    fn revoke_token(&self, name: &str) -> Result<()>;
    fn list_tokens(&self) -> Result<Vec<TokenInfo>>;
    /// A Studio session, known by the hash of its secret, until `expires`.
    fn create_session(&self, user: &str, id_hash: &str, expires: i64) -> Result<()>;
    /// What a session stands for, unless unknown, ended or expired.
    fn lookup_session(&self, id_hash: &str) -> Result<Option<Credential>>;
    fn end_session(&self, id_hash: &str) -> Result<()>;
    /// End every session of a user; how many there were.
    fn end_sessions(&self, user: &str) -> Result<usize>;
    /// Note a failed sign-in as `user` (whether or not they exist).
    fn record_login_failure(&self, user: &str, at: i64) -> Result<()>;
    /// Failed sign-ins as `user` at or after `since` (epoch ms).
    fn login_failures_since(&self, user: &str, since: i64) -> Result<i64>;
    fn clear_login_failures(&self, user: &str) -> Result<()>;

    // ---- the audit log (append-only) ----
    /// Append a record; its id.
    fn append_audit(&self, e: &AuditEntry) -> Result<i64>;
    /// Records matching `q`, newest first.
    fn search_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>>;

    // ---- jobs ----
    /// Queue a job in the default project (no owner, one attempt); its id is a
    /// fresh 32-hex-digit string.
    fn create_job(&self, kind: &str, name: &str, spec: &str) -> Result<Job> {
        self.queue_job(&NewJob {
            kind,
            name,
            spec,
            owner: "",
            workspace: DEFAULT_WORKSPACE,
            max_attempts: 1,
        })
    }
    /// Queue a job.
    fn queue_job(&self, job: &NewJob) -> Result<Job>;
    fn get_job(&self, id: &str) -> Result<Job>;
    /// Newest first; `workspace` narrows to one project's jobs, `kind` to one kind.
    fn list_jobs(
        &self,
        workspace: Option<&str>,
        kind: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Job>>;
    /// A terminal job is never changed again (`InvalidState`).
    fn update_job(&self, id: &str, upd: &JobUpdate) -> Result<Job>;
    /// Ask a job to stop. A queued job is cancelled at once; a running one
    /// sees `cancel_requested` and stops at its next check; a finished
    /// one is left as it is (`InvalidState`).
    fn request_job_cancel(&self, id: &str) -> Result<Job>;
    /// Claim work for `worker`, atomically (no two workers, in any process,
    /// get the same job): first a running job of one of `kinds` whose lease
    /// expired and that has an executor `handle` (adopted as it is, to
    /// re-attach to its work), else the oldest queued job of those kinds
    /// (started: `attempt` + 1). The claim holds for `lease_ms`.
    fn claim_job(&self, worker: &str, kinds: &[&str], lease_ms: i64) -> Result<Option<Job>>;
    /// Extend `worker`'s claim on a running job by `lease_ms` from now. Not a
    /// visible change: it does not count as a write for live updates.
    fn renew_job_lease(&self, id: &str, worker: &str, lease_ms: i64) -> Result<Lease>;
    /// Which of these jobs have a stop requested (a read).
    fn jobs_cancel_requested(&self, ids: &[String]) -> Result<Vec<String>>;
    /// Give up `worker`'s claim on a running job so that another worker
    /// adopts it at once (a server shutting down, leaving its work running).
    fn release_job(&self, id: &str, worker: &str) -> Result<()>;
    /// Running jobs without an executor handle whose lease expired lost
    /// their worker with the work: each goes back to the queue while
    /// `attempt < max_attempts`, else fails with `reason`. Returns them.
    fn reap_expired_jobs(&self, reason: &str) -> Result<Vec<Job>>;

    // ---- endpoints ----
    /// Create an endpoint in project `workspace`, or replace its configuration.
    /// Endpoint names are unique on the server: a name another project holds
    /// is refused (`AlreadyExists`). The same holds for both kinds of schedule.
    fn put_endpoint(&self, workspace: &str, name: &str, config: &str) -> Result<Endpoint>;
    fn get_endpoint(&self, name: &str) -> Result<Endpoint>;
    fn list_endpoints(&self) -> Result<Vec<Endpoint>>;
    fn delete_endpoint(&self, name: &str) -> Result<()>;

    // ---- monitoring schedules (same shape as endpoints) ----
    fn put_schedule(&self, workspace: &str, name: &str, config: &str) -> Result<Endpoint>;
    /// Replaces a schedule's configuration only while it still reads `expected` (what
    /// the caller read before editing it). `false`, and nothing written, when another
    /// writer changed or deleted it in between: the scheduler bookmarking a firing and
    /// a user replacing the schedule must not overwrite each other.
    fn replace_schedule(&self, name: &str, expected: &str, config: &str) -> Result<bool>;
    fn get_schedule(&self, name: &str) -> Result<Endpoint>;
    fn list_schedules(&self) -> Result<Vec<Endpoint>>;
    fn delete_schedule(&self, name: &str) -> Result<()>;

    // ---- notebook schedules (same shape; `replace` is the same compare-and-swap) ----
    fn put_notebook_schedule(&self, workspace: &str, name: &str, config: &str) -> Result<Endpoint>;
    fn replace_notebook_schedule(&self, name: &str, expected: &str, config: &str) -> Result<bool>;
    fn get_notebook_schedule(&self, name: &str) -> Result<Endpoint>;
    fn list_notebook_schedules(&self) -> Result<Vec<Endpoint>>;
    fn delete_notebook_schedule(&self, name: &str) -> Result<()>;
    /// Jobs of one kind and name (e.g. a schedule's executions), newest first.
    fn list_jobs_named(&self, kind: &str, name: &str, limit: usize) -> Result<Vec<Job>>;

    // ---- webhook outbox (deliveries are sent by a loop off the job workers) ----
    /// Queue one delivery of `body` to each URL for the job `job_id` (an
    /// execution of `schedule`), due at once; returns how many were queued.
    fn enqueue_webhook_deliveries(
        &self,
        job_id: &str,
        schedule: &str,
        urls: &[String],
        body: &str,
    ) -> Result<usize>;
    /// Atomically claims up to `limit` pending deliveries that are due at `now_ms`
    /// and not leased by anyone: each gets the lease `claimed_until_ms = now_ms +
    /// lease_ms`, so no other caller (thread or process on the same database)
    /// claims it before then; a claimer that dies lets it come back when its lease
    /// expires. Oldest due first.
    fn claim_webhook_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>>;
    /// Appends `attempt` to a claimed delivery and applies `outcome`, only while
    /// the claim `claimed_until_ms` (as returned by the claim) still holds; the
    /// lease is released. `false`, and nothing written, when the lease was lost
    /// (it expired and someone else claimed the delivery) or it is no longer pending.
    fn record_webhook_attempt(
        &self,
        id: i64,
        claimed_until_ms: i64,
        attempt: &WebhookAttempt,
        outcome: DeliveryOutcome,
    ) -> Result<bool>;
    /// Every delivery of these jobs, in the order they were queued.
    fn list_webhook_deliveries(&self, job_ids: &[String]) -> Result<Vec<WebhookDelivery>>;

    // ---- MLflow model-registry webhooks (registry writes queue their events) ----
    fn create_mlflow_webhook(&self, w: &NewMlflowWebhook) -> Result<MlflowWebhook>;
    /// `NotFound` ("Webhook with ID … not found.") for an unknown or deleted id.
    fn get_mlflow_webhook(&self, id: &str) -> Result<MlflowWebhook>;
    /// Live webhooks, newest first, `max_results` a page.
    fn list_mlflow_webhooks(
        &self,
        workspace: Option<&str>,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<MlflowWebhook>>;
    fn update_mlflow_webhook(&self, id: &str, u: &MlflowWebhookUpdate) -> Result<MlflowWebhook>;
    /// A soft delete: the webhook fires no more; queued deliveries fail.
    fn delete_mlflow_webhook(&self, id: &str) -> Result<()>;
    /// As [`MetadataStore::claim_webhook_deliveries`], for MLflow webhook deliveries.
    fn claim_mlflow_webhook_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<MlflowWebhookDelivery>>;
    /// As [`MetadataStore::record_webhook_attempt`], for MLflow webhook deliveries.
    fn record_mlflow_webhook_attempt(
        &self,
        id: i64,
        claimed_until_ms: i64,
        attempt: &WebhookAttempt,
        outcome: DeliveryOutcome,
    ) -> Result<bool>;
    /// Every delivery queued for a webhook, oldest first.
    fn list_mlflow_webhook_deliveries(
        &self,
        webhook_id: &str,
    ) -> Result<Vec<MlflowWebhookDelivery>>;

    /// A counter that grows with every committed write (drives live pages).
    fn write_generation(&self) -> u64;
}
