//! Domain types of the metadata store. They are plain data: no wire format
//! (JSON field names, enum spellings) lives here; `server` converts.

/// `active` or `deleted` (soft delete), as MLflow's lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    Deleted,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Lifecycle::Active),
            "deleted" => Some(Lifecycle::Deleted),
            _ => None,
        }
    }
}

/// Which lifecycle stages a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Scheduled,
        RunStatus::Finished,
        RunStatus::Failed,
        RunStatus::Killed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

pub type Param = Tag;

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub experiment_id: i64,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: Lifecycle,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<Tag>,
    /// The workspace (project) the experiment belongs to.
    pub workspace: String,
}

/// The workspace every installation has, which holds what existed before
/// workspaces (and what a request naming none works in). It cannot be
/// created or deleted.
pub const DEFAULT_WORKSPACE: &str = "default";

/// A project: an MLflow workspace, which groups experiments (and through
/// them runs, logged models and traces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub name: String,
    pub description: Option<String>,
    /// Where new experiments of the workspace keep artifacts (none: the
    /// server's artifact root).
    pub default_artifact_root: Option<String>,
    pub creation_time: i64,
}

/// Names MLflow refuses for a workspace (they would clash with its URLs).
const RESERVED_WORKSPACE_NAMES: &[&str] = &["workspaces", "api", "ajax-api", "static-files"];

/// MLflow's rule for a workspace name: 2–63 characters, lowercase letters,
/// digits and inner hyphens, not a reserved word. A name that passes is
/// also one folder name (`projects/<name>/` in the artifact store). The
/// error says what to fix, in MLflow's words.
pub fn check_workspace_name(name: &str) -> std::result::Result<(), String> {
    if !(2..=63).contains(&name.len()) {
        return Err(format!(
            "Workspace name '{name}' must be between 2 and 63 characters."
        ));
    }
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = name.as_bytes();
    let good = b.iter().all(|&c| ok_char(c) || c == b'-')
        && b.first().is_some_and(|&c| ok_char(c))
        && b.last().is_some_and(|&c| ok_char(c));
    if !good {
        return Err(format!(
            "Workspace name '{name}' must match the pattern ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ \
             (lowercase alphanumeric with optional internal hyphens)."
        ));
    }
    if RESERVED_WORKSPACE_NAMES.contains(&name) {
        return Err(format!(
            "Workspace name '{name}' is reserved and cannot be used."
        ));
    }
    Ok(())
}

/// What deleting a workspace does with the experiments it holds (MLflow's
/// modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceDeletion {
    /// Refuse while it holds any experiment (deleted ones included).
    Restrict,
    /// Move its experiments to the default workspace (refused when a name
    /// is taken there).
    SetDefault,
}

/// Someone who uses the server: a person who signs in to the Studio, or a
/// service that only holds API tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Manages projects and people, and acts as admin in every project.
    pub is_admin: bool,
    /// Whether they can sign in with a password (else only with tokens).
    pub has_password: bool,
    pub created: i64,
}

/// What a presented credential (an API token or a Studio session) stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub user: String,
    pub is_admin: bool,
    /// The most the credential may do (`viewer`, `editor` or `admin`),
    /// whatever its user may: a token's role; a session's is `admin`.
    pub cap: String,
    /// A token of no user (a service token, or one made before users):
    /// `user` is its name, and it acts in every project with its role.
    pub service: bool,
    /// An endpoint invocation key: it may only invoke this endpoint.
    pub endpoint: Option<String>,
    /// A token bound to one project (a job's): it acts there only.
    pub workspace: Option<String>,
}

/// What one request's credential stands for in the workspace it names: all
/// the guard needs, read in one trip ([`crate::MetadataStore::authenticate`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authenticated {
    /// None: the secret is unknown, expired or revoked (or none was given).
    pub credential: Option<Credential>,
    /// The credential's user's role in the workspace, if any (looked up for
    /// a member, not for a server admin or a service token).
    pub member_role: Option<String>,
    /// Whether the workspace exists (always for `default`; looked up only
    /// for a credential that acts everywhere, or none in open mode).
    pub workspace_exists: bool,
}

/// An API token as listed (its secret is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    /// Its user (none: a service token).
    pub user: Option<String>,
    pub role: String,
    pub created: i64,
    /// Epoch milliseconds after which it is refused (none: never).
    pub expires: Option<i64>,
    /// For an endpoint invocation key, its endpoint.
    pub endpoint: Option<String>,
}

/// One record of the audit log: who did what, when, from where, in which
/// project, and what the server answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditEntry {
    /// Assigned when appended (increasing).
    pub id: i64,
    pub at_ms: i64,
    /// A user or service token's name; `local` on an open server; `cli` for
    /// the command line; for a sign-in, the name tried.
    pub actor: String,
    /// The client's address (`ip:port`), or empty.
    pub address: String,
    pub workspace: String,
    /// What was done: `METHOD /route/{template}`, or `sign-in`, `sign-in-failed`, …
    pub action: String,
    /// The concrete path or the name acted on.
    pub target: String,
    /// The HTTP status answered (0 from the command line).
    pub status: i64,
    /// A JSON object: the request's fields (secrets left out).
    pub detail: String,
}

/// Which audit records to read: newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub workspace: Option<String>,
    /// Text found in the action or the target.
    pub action: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Older than this record (paging).
    pub before_id: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    /// NaN and ±inf are kept as such.
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
    pub model_id: Option<String>,
}

impl Metric {
    pub fn new(key: impl Into<String>, value: f64, timestamp: i64, step: i64) -> Self {
        Metric {
            key: key.into(),
            value,
            timestamp,
            step,
            dataset_name: None,
            dataset_digest: None,
            model_id: None,
        }
    }
}

/// A metric point together with the run it belongs to (bulk history reads).
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetric {
    pub run_id: String,
    pub metric: Metric,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: i64,
    pub user_id: String,
    pub status: RunStatus,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: Lifecycle,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

/// A dataset some run of an experiment took as input, with the context the
/// input was tagged with (`mlflow.data.context`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSummary {
    pub experiment_id: i64,
    pub name: String,
    pub digest: String,
    pub context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInput {
    pub tags: Vec<Tag>,
    pub dataset: Dataset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub info: RunInfo,
    /// The latest value of every metric (highest step, then timestamp, then value).
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
    pub dataset_inputs: Vec<DatasetInput>,
    pub model_inputs: Vec<String>,
    pub model_outputs: Vec<ModelOutput>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateRun {
    pub experiment_id: i64,
    pub user_id: String,
    pub run_name: Option<String>,
    pub start_time: Option<i64>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateRun {
    pub status: Option<RunStatus>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SearchRuns {
    pub experiment_ids: Vec<i64>,
    pub filter: String,
    pub view_type: ViewType,
    pub max_results: usize,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SearchExperiments {
    /// Only this workspace's experiments (None: every workspace's).
    pub workspace: Option<String>,
    pub filter: String,
    pub view_type: ViewType,
    pub max_results: usize,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

// ---- model registry ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub alias: String,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub user_id: String,
    pub description: String,
    pub tags: Vec<Tag>,
    pub aliases: Vec<Alias>,
    /// The latest version in each stage (MLflow's `latest_versions`).
    pub latest_versions: Vec<ModelVersion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub user_id: String,
    pub current_stage: String,
    pub description: String,
    pub source: String,
    pub run_id: String,
    pub status: String,
    pub status_message: String,
    pub tags: Vec<Tag>,
    pub run_link: String,
    pub aliases: Vec<String>,
    pub model_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct CreateModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: String,
    pub tags: Vec<Tag>,
    pub run_link: String,
    pub description: String,
    pub model_id: String,
    pub user_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct SearchRegistry {
    /// Only this workspace's models (and their versions).
    pub workspace: Option<String>,
    pub filter: String,
    pub max_results: usize,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

/// Stages of MLflow's (deprecated but used) stage API, spelled as on the wire.
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

// ---- logged models (MLflow 3.x) ----

#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModel {
    pub model_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub artifact_uri: String,
    pub status: String,
    pub model_type: String,
    pub source_run_id: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub lifecycle_stage: Lifecycle,
    pub tags: Vec<Tag>,
    pub params: Vec<Param>,
    /// Every point logged with this model's id, by key, run, step, timestamp.
    pub metrics: Vec<RunMetric>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateLoggedModel {
    pub experiment_id: i64,
    pub name: String,
    pub model_type: String,
    pub source_run_id: String,
    pub tags: Vec<Tag>,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, Default)]
pub struct SearchLoggedModels {
    /// None: every experiment (of `workspace`, when given).
    pub experiment_ids: Vec<i64>,
    /// Only models of this workspace's experiments.
    pub workspace: Option<String>,
    pub filter: String,
    pub max_results: usize,
    pub page_token: Option<String>,
}

// ---- jobs ----

/// Where a job is in its life. `Queued → Running → Succeeded | Failed |
/// Cancelled`; a running job whose worker stopped renewing its lease is
/// retried (back to `Queued`), adopted by another worker, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => return None,
        })
    }
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// A unit of background work. `spec`, `progress` and `result` are JSON
/// documents owned by the code that runs jobs of that `kind`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub status: JobStatus,
    pub spec: String,
    pub progress: String,
    pub result: String,
    pub error: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub cancel_requested: bool,
    /// Who submitted it (an identity's name; empty when unknown).
    pub owner: String,
    /// The worker holding its claim, while running.
    pub worker: Option<String>,
    /// Until when the claim holds (ms since the epoch), while running.
    pub lease_until_ms: Option<i64>,
    /// Claims so far (1 on its first run).
    pub attempt: i64,
    /// Claims allowed before a lost worker fails the job.
    pub max_attempts: i64,
    /// The executor's reference to the running work (JSON), when the work
    /// runs outside the worker's process and can be re-attached to.
    pub handle: Option<String>,
    /// Secondary statuses, a JSON array of `{at_ms, status, message}`.
    pub events: String,
    /// The project (workspace) it belongs to.
    pub workspace: String,
}

/// A job to queue.
#[derive(Debug, Clone, Default)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub spec: &'a str,
    pub owner: &'a str,
    /// The project (workspace) it belongs to (empty: the default one).
    pub workspace: &'a str,
    /// At least 1.
    pub max_attempts: i64,
}

/// Fields to change on a job; `None` leaves a field alone. Moving to
/// `Running` stamps `started_ms`, to a terminal status `ended_ms`.
#[derive(Debug, Clone, Default)]
pub struct JobUpdate {
    pub status: Option<JobStatus>,
    pub progress: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    /// Record the executor's handle.
    pub handle: Option<String>,
    /// Append a secondary status: (status, message).
    pub event: Option<(String, String)>,
    /// Apply only while this worker holds the job's claim (else
    /// `InvalidState`): a worker that lost its lease must not overwrite the
    /// job another worker took over.
    pub worker: Option<String>,
}

/// What renewing a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still ours, renewed; whether a stop was requested.
    Held { cancel_requested: bool },
    /// Another worker has it, or it ended: stop working on it.
    Lost,
}

// ---- endpoints ----

/// A real-time endpoint's stored configuration (JSON owned by the serving
/// crate: variants, capture, limits).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub name: String,
    pub config: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The project (workspace) it belongs to.
    pub workspace: String,
}

// ---- webhook outbox ----

/// Where a webhook delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or in one).
    Pending,
    /// A 2xx answer came back.
    Delivered,
    /// Given up: attempts used up, or the receiver (or the policy) refused it.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => return None,
        })
    }
}

/// One POST of a delivery: when it started, and the answer's status or
/// why there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub at_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// One webhook POST in the outbox: a job's (an execution's) `body`, JSON
/// owned by the code that queued it, to one `url`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    pub id: i64,
    pub job_id: String,
    pub schedule: String,
    pub url: String,
    pub body: String,
    /// Oldest first.
    pub attempts: Vec<WebhookAttempt>,
    pub state: DeliveryState,
    /// When a pending delivery is due.
    pub next_attempt_ms: i64,
    /// The lease of whoever claimed it: nobody else claims it before then.
    /// Also the claim's token for [`crate::MetadataStore::record_webhook_attempt`].
    pub claimed_until_ms: i64,
    pub created_ms: i64,
}

/// What an attempt leaves a delivery as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed for good: not tried again.
    Failed,
    /// Pending again, due at this time (epoch ms); the lease is released.
    RetryAt(i64),
}

// ---- MLflow model-registry webhooks ----

/// Whether an MLflow webhook fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlflowWebhookStatus {
    Active,
    Disabled,
}

impl MlflowWebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MlflowWebhookStatus::Active => "ACTIVE",
            MlflowWebhookStatus::Disabled => "DISABLED",
        }
    }
    pub fn parse(s: &str) -> Option<MlflowWebhookStatus> {
        Some(match s {
            "ACTIVE" => MlflowWebhookStatus::Active,
            "DISABLED" => MlflowWebhookStatus::Disabled,
            _ => return None,
        })
    }
}

/// A registered MLflow webhook. `secret` is kept for signing deliveries;
/// no API answer ever carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct MlflowWebhook {
    pub webhook_id: String,
    pub name: String,
    pub description: String,
    pub url: String,
    /// `entity.action` strings (`model_version.created`), in the order given.
    pub events: Vec<String>,
    pub status: MlflowWebhookStatus,
    /// Empty: deliveries are not signed.
    pub secret: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    /// The project it belongs to: it hears only that project's models.
    pub workspace: String,
}

/// A webhook to create (checked by the caller: name, URL, events).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMlflowWebhook {
    /// The project it belongs to.
    pub workspace: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub status: MlflowWebhookStatus,
}

/// The fields an update changes (`None`: left as it is).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MlflowWebhookUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    pub status: Option<MlflowWebhookStatus>,
}

/// A model-registry change a webhook can subscribe to, with what MLflow's
/// payload for it carries (`prompt`: the registered model is a prompt, so
/// MLflow names the event `prompt…` instead). Versions are decimal strings.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryEvent {
    ModelCreated {
        prompt: bool,
        name: String,
        tags: Vec<Tag>,
        description: String,
    },
    VersionCreated {
        prompt: bool,
        name: String,
        version: String,
        source: String,
        run_id: String,
        tags: Vec<Tag>,
        description: String,
    },
    /// Only prompts' tags (MLflow sends nothing for a registered model's).
    PromptTagSet {
        name: String,
        key: String,
        value: String,
    },
    PromptTagDeleted {
        name: String,
        key: String,
    },
    VersionTagSet {
        prompt: bool,
        name: String,
        version: String,
        key: String,
        value: String,
    },
    VersionTagDeleted {
        prompt: bool,
        name: String,
        version: String,
        key: String,
    },
    AliasCreated {
        prompt: bool,
        name: String,
        alias: String,
        version: String,
    },
    AliasDeleted {
        prompt: bool,
        name: String,
        alias: String,
    },
}

impl RegistryEvent {
    /// MLflow's `entity.action` name of the event.
    pub fn event(&self) -> &'static str {
        use RegistryEvent as E;
        match self {
            E::ModelCreated { prompt: false, .. } => "registered_model.created",
            E::ModelCreated { prompt: true, .. } => "prompt.created",
            E::VersionCreated { prompt: false, .. } => "model_version.created",
            E::VersionCreated { prompt: true, .. } => "prompt_version.created",
            E::PromptTagSet { .. } => "prompt_tag.set",
            E::PromptTagDeleted { .. } => "prompt_tag.deleted",
            E::VersionTagSet { prompt: false, .. } => "model_version_tag.set",
            E::VersionTagSet { prompt: true, .. } => "prompt_version_tag.set",
            E::VersionTagDeleted { prompt: false, .. } => "model_version_tag.deleted",
            E::VersionTagDeleted { prompt: true, .. } => "prompt_version_tag.deleted",
            E::AliasCreated { prompt: false, .. } => "model_version_alias.created",
            E::AliasCreated { prompt: true, .. } => "prompt_alias.created",
            E::AliasDeleted { prompt: false, .. } => "model_version_alias.deleted",
            E::AliasDeleted { prompt: true, .. } => "prompt_alias.deleted",
        }
    }
}

/// One event for one webhook in the MLflow webhook outbox, as claimed: the
/// webhook's current URL and secret come with it (`None` once the webhook
/// is deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct MlflowWebhookDelivery {
    pub id: i64,
    /// Sent as `X-MLflow-Delivery-Id`; the same for every attempt.
    pub delivery_id: String,
    pub webhook_id: String,
    pub event: RegistryEvent,
    /// When the registry change was committed (epoch ms).
    pub event_ms: i64,
    pub attempts: Vec<WebhookAttempt>,
    pub state: DeliveryState,
    pub next_attempt_ms: i64,
    /// The claim's lease and token, as in [`WebhookDelivery`].
    pub claimed_until_ms: i64,
    pub url: Option<String>,
    pub secret: Option<String>,
}
