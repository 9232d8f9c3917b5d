-- migration 1: the initial schema. Each migration is separated by a line
-- '-- migration N' and runs once, in order, recorded in PRAGMA user_version.
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active',
    creation_time INTEGER NOT NULL,
    last_update_time INTEGER NOT NULL
);
CREATE UNIQUE INDEX experiments_name ON experiments(name);
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;

CREATE TABLE runs (
    run_uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    experiment_id INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time INTEGER,
    end_time INTEGER,
    artifact_uri TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active',
    deleted_time INTEGER
);
CREATE INDEX runs_experiment ON runs(experiment_id, start_time DESC, run_uuid);
CREATE TABLE params (
    run_uuid TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;
CREATE INDEX params_key ON params(key, value);
CREATE TABLE tags (
    run_uuid TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;
CREATE INDEX tags_key ON tags(key, value);

-- A metric series is one (run, key); points refer to it by integer id so
-- that the append-only point table stays narrow.
CREATE TABLE metric_series (
    series_id INTEGER PRIMARY KEY,
    run_uuid TEXT NOT NULL,
    key TEXT NOT NULL
);
CREATE UNIQUE INDEX metric_series_run_key ON metric_series(run_uuid, key);
CREATE TABLE metric_points (
    series_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value REAL,           -- NULL when is_nan
    is_nan INTEGER NOT NULL DEFAULT 0,
    dataset_name TEXT,
    dataset_digest TEXT,
    model_id TEXT
);
CREATE INDEX metric_points_series_step ON metric_points(series_id, step, timestamp);
CREATE TABLE latest_metrics (
    run_uuid TEXT NOT NULL,
    key TEXT NOT NULL,
    value REAL,
    is_nan INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL,
    step INTEGER NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;
CREATE INDEX latest_metrics_key_value ON latest_metrics(key, value);

CREATE TABLE datasets (
    dataset_id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    schema TEXT,
    profile TEXT
);
CREATE UNIQUE INDEX datasets_identity ON datasets(experiment_id, name, digest);
CREATE TABLE run_inputs (
    run_uuid TEXT NOT NULL,
    dataset_id INTEGER NOT NULL,
    tags TEXT NOT NULL,   -- JSON array of [key, value]
    PRIMARY KEY (run_uuid, dataset_id)
) WITHOUT ROWID;
CREATE TABLE run_models (
    run_uuid TEXT NOT NULL,
    model_id TEXT NOT NULL,
    direction TEXT NOT NULL, -- 'input' | 'output'
    step INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_uuid, direction, model_id)
) WITHOUT ROWID;

CREATE TABLE registered_models (
    name TEXT PRIMARY KEY,
    creation_timestamp INTEGER NOT NULL,
    last_updated_timestamp INTEGER NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT ''
);
CREATE TABLE registered_model_tags (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
CREATE TABLE registered_model_aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
) WITHOUT ROWID;
CREATE TABLE model_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    creation_timestamp INTEGER NOT NULL,
    last_updated_timestamp INTEGER NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    current_stage TEXT NOT NULL DEFAULT 'None',
    description TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    run_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'READY',
    status_message TEXT NOT NULL DEFAULT '',
    run_link TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_run ON model_versions(run_id);
CREATE TABLE model_version_tags (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, version, key)
) WITHOUT ROWID;

CREATE TABLE logged_models (
    model_id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    artifact_uri TEXT NOT NULL,
    status TEXT NOT NULL,
    model_type TEXT NOT NULL DEFAULT '',
    source_run_id TEXT NOT NULL DEFAULT '',
    creation_timestamp_ms INTEGER NOT NULL,
    last_updated_timestamp_ms INTEGER NOT NULL,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX logged_models_experiment ON logged_models(experiment_id, creation_timestamp_ms DESC);
CREATE TABLE logged_model_tags (
    model_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
) WITHOUT ROWID;
CREATE TABLE logged_model_params (
    model_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
) WITHOUT ROWID;

CREATE TABLE access_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL
);

-- migration 2: version numbers are never reused after a delete (as MLflow).
ALTER TABLE registered_models ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
UPDATE registered_models SET last_version =
    COALESCE((SELECT MAX(version) FROM model_versions v WHERE v.name = registered_models.name), 0);

-- migration 3: the job queue (AutoML, batch transform, monitoring, …) and
-- real-time endpoints. Specs, progress, results and endpoint configurations
-- are JSON owned by the crate that runs them; this crate only keeps them.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    created INTEGER NOT NULL,
    started INTEGER,
    ended INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_created ON jobs (created DESC);

CREATE TABLE endpoints (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);

-- migration 4: Model Monitor's schedules (JSON owned by the monitoring
-- crate: endpoint, cron, baseline, thresholds, webhooks, alert state).
-- Executions are jobs named after their schedule.
CREATE TABLE monitoring_schedules (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX jobs_by_kind_name ON jobs (kind, name, created DESC);

-- migration 5: the webhook outbox. An execution queues one row per webhook
-- URL; a delivery loop (any server process on this database) claims due rows
-- with a lease, makes one attempt per claim and records it. `body` is JSON
-- owned by the monitoring crate; `attempts` a JSON array of
-- {at_ms, status?, error?}; `state` pending | delivered | failed.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    schedule TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'pending',
    next_attempt_ms INTEGER NOT NULL,
    claimed_until_ms INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_ms);
CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (job_id, id);

-- migration 6: jobs are claimed through the store, so several server
-- processes on one database share the work. A worker claims a queued job in
-- one write (`worker`, a lease until `lease_until` ms, `attempt` + 1) and
-- renews the lease while it runs; a job whose lease expired lost its worker:
-- it is retried while `attempt < max_attempts`, else failed — or, when it
-- runs on an executor (`handle`, JSON owned by the jobs crate), adopted by
-- another worker that re-attaches to it. `events` is the timestamped
-- secondary status history (JSON array of {at_ms, status, message}).
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN worker TEXT;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN handle TEXT;
ALTER TABLE jobs ADD COLUMN events TEXT NOT NULL DEFAULT '[]';
CREATE INDEX jobs_by_status ON jobs (status, created);

-- migration 7: notebook schedules (JSON owned by the notebooks crate:
-- notebook, cron, parameters, webhooks, the bookmark of the last firing).
-- Each firing is a notebook job named after its schedule.
CREATE TABLE notebook_schedules (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);

-- migration 8: a logged model's metrics (points logged with its model_id, as
-- MLflow's logged_model_metrics) are read by model; most points have none.
CREATE INDEX metric_points_model ON metric_points(model_id) WHERE model_id IS NOT NULL;

-- migration 9: MLflow's model-registry webhooks (MLflow 3.3+). `events` is a
-- JSON array of `entity.action` strings in the order given; `secret` signs
-- deliveries and is never returned by the API; a deleted webhook keeps its
-- row with `deleted_timestamp`, as MLflow's store does. A registry change
-- queues one `mlflow_webhook_deliveries` row per active subscribed webhook in
-- its own transaction; `event` is JSON owned by the store (the event and its
-- fields), the rest works as `webhook_deliveries` (claimed with a lease by
-- any server process, one attempt per claim).
CREATE TABLE mlflow_webhooks (
    webhook_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    status TEXT NOT NULL,
    secret TEXT NOT NULL DEFAULT '',
    creation_timestamp INTEGER NOT NULL,
    last_updated_timestamp INTEGER NOT NULL,
    deleted_timestamp INTEGER
);
CREATE INDEX mlflow_webhooks_live ON mlflow_webhooks (deleted_timestamp, creation_timestamp);
CREATE TABLE mlflow_webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    event_ms INTEGER NOT NULL,
    attempts TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'pending',
    next_attempt_ms INTEGER NOT NULL,
    claimed_until_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mlflow_webhook_deliveries_due ON mlflow_webhook_deliveries (state, next_attempt_ms);
CREATE INDEX mlflow_webhook_deliveries_by_webhook ON mlflow_webhook_deliveries (webhook_id, id);

-- migration 10: MLflow 3 traces. `trace_info` is one row per trace (MLflow's
-- TraceInfoV3: times in ms, `status` OK / ERROR / IN_PROGRESS /
-- STATE_UNSPECIFIED); tags and request metadata are key/value side tables
-- indexed by (key, value) for search; `trace_spans` holds each span as the
-- OTLP JSON the server owns, with the columns search and ordering read;
-- `trace_run_links` are the runs a trace was linked to after the fact
-- (`mlflow.sourceRun` metadata links the run a trace was logged under).
CREATE TABLE trace_info (
    trace_id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    client_request_id TEXT,
    timestamp_ms INTEGER NOT NULL,
    execution_time_ms INTEGER,
    status TEXT NOT NULL,
    request_preview TEXT,
    response_preview TEXT
);
CREATE INDEX trace_info_by_time ON trace_info (experiment_id, timestamp_ms, trace_id);
CREATE INDEX trace_info_by_status ON trace_info (experiment_id, status, timestamp_ms);
CREATE INDEX trace_info_by_duration ON trace_info (experiment_id, execution_time_ms);
CREATE TABLE trace_tags (
    trace_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
) WITHOUT ROWID;
CREATE INDEX trace_tags_by_value ON trace_tags (key, value);
CREATE TABLE trace_request_metadata (
    trace_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
) WITHOUT ROWID;
CREATE INDEX trace_request_metadata_by_value ON trace_request_metadata (key, value);
CREATE TABLE trace_spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    span_type TEXT,
    status TEXT NOT NULL,
    start_time_ns INTEGER NOT NULL,
    end_time_ns INTEGER,
    content TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE TABLE trace_run_links (
    trace_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (trace_id, run_id)
) WITHOUT ROWID;
CREATE INDEX trace_run_links_by_run ON trace_run_links (run_id, trace_id);

-- migration 11: assessments of MLflow 3 traces (feedback and expectations).
-- `content` is MLflow's Assessment as JSON, owned by the server; `name` and
-- `create_time_ms` are kept beside it for listing in order.
CREATE TABLE trace_assessments (
    trace_id TEXT NOT NULL,
    assessment_id TEXT NOT NULL,
    name TEXT NOT NULL,
    create_time_ms INTEGER NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (trace_id, assessment_id)
) WITHOUT ROWID;

-- migration 12: model cards (issue 15). One card per model version; its
-- `content` is JSON owned by the modelcards crate, `status` one of Draft,
-- PendingReview, Approved, Archived (the crate owns the transitions), and
-- `revision` the compare-and-swap token of every change. Each change appends
-- a `model_card_history` row (who, when, from which address, what) in the
-- same transaction; history rows are never updated or deleted (triggers
-- refuse it) and refer to the card by id, so a version deleted and made
-- again never shows an old card's history. Cards follow a rename of their
-- model and go with a deleted version. `model_card_requirements` is the
-- per-model rule "an Approved card before deploy".
CREATE TABLE model_cards (
    card_id TEXT PRIMARY KEY,
    model_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    content TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE UNIQUE INDEX model_cards_by_version ON model_cards (model_name, version);
CREATE TABLE model_card_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    card_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    principal TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    changes TEXT NOT NULL
);
CREATE INDEX model_card_history_by_card ON model_card_history (card_id, id);
CREATE TRIGGER model_card_history_no_update BEFORE UPDATE ON model_card_history
BEGIN SELECT RAISE(ABORT, 'model card history is append-only'); END;
CREATE TRIGGER model_card_history_no_delete BEFORE DELETE ON model_card_history
BEGIN SELECT RAISE(ABORT, 'model card history is append-only'); END;
CREATE TABLE model_card_requirements (
    model_name TEXT PRIMARY KEY,
    require_approved_card INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TRIGGER model_cards_follow_rename AFTER UPDATE OF name ON model_versions
BEGIN
    UPDATE model_cards SET model_name = NEW.name
    WHERE model_name = OLD.name AND version = OLD.version;
END;
CREATE TRIGGER model_cards_go_with_version AFTER DELETE ON model_versions
BEGIN
    DELETE FROM model_cards WHERE model_name = OLD.name AND version = OLD.version;
END;
CREATE TRIGGER model_card_requirements_follow_rename AFTER UPDATE OF name ON registered_models
BEGIN
    UPDATE model_card_requirements SET model_name = NEW.name WHERE model_name = OLD.name;
END;
CREATE TRIGGER model_card_requirements_go_with_model AFTER DELETE ON registered_models
BEGIN
    DELETE FROM model_card_requirements WHERE model_name = OLD.name;
END;

-- migration 13: a span's token usage (MLflow's `mlflow.chat.tokenUsage` attribute), kept beside its
-- content so that the trace's total (`mlflow.trace.tokenUsage` metadata) can be summed over spans
-- that arrive in several OTLP requests without re-reading their JSON.
ALTER TABLE trace_spans ADD COLUMN input_tokens INTEGER;
ALTER TABLE trace_spans ADD COLUMN output_tokens INTEGER;
ALTER TABLE trace_spans ADD COLUMN total_tokens INTEGER;

-- migration 14: MLflow 3 GenAI evaluation datasets and registered scorers.
-- A dataset ('d-' + 32 hex) has key/value tags, links to experiments and
-- records; a record ('dr-' + 32 hex) is unique per (dataset, sha256 of its
-- canonical inputs JSON), which is how MLflow merges records by inputs.
-- `inputs`, `outputs`, `expectations`, `tags` and `source` are JSON text
-- (NULL: none); `schema` and `profile` are the JSON MLflow computes on upsert.
-- A scorer is one (experiment, name) with a UUID; its versions are numbered
-- from 1 and keep the serialized scorer JSON as the client sent it.
CREATE TABLE evaluation_datasets (
    dataset_id       TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    schema           TEXT,
    profile          TEXT,
    digest           TEXT NOT NULL,
    created_time     INTEGER NOT NULL,
    last_update_time INTEGER NOT NULL,
    created_by       TEXT,
    last_updated_by  TEXT
);
CREATE INDEX evaluation_datasets_name ON evaluation_datasets (name);
CREATE INDEX evaluation_datasets_created ON evaluation_datasets (created_time);
CREATE TABLE evaluation_dataset_tags (
    dataset_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (dataset_id, key)
) WITHOUT ROWID;
CREATE INDEX evaluation_dataset_tags_kv ON evaluation_dataset_tags (key, value);
CREATE TABLE evaluation_dataset_experiments (
    dataset_id    TEXT NOT NULL,
    experiment_id INTEGER NOT NULL,
    created_time  INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, experiment_id)
) WITHOUT ROWID;
CREATE INDEX evaluation_dataset_experiments_exp ON evaluation_dataset_experiments (experiment_id);
CREATE TABLE evaluation_dataset_records (
    dataset_record_id TEXT PRIMARY KEY,
    dataset_id        TEXT NOT NULL,
    input_hash        TEXT NOT NULL,
    inputs            TEXT NOT NULL,
    outputs           TEXT,
    expectations      TEXT,
    tags              TEXT,
    source            TEXT,
    source_id         TEXT,
    source_type       TEXT,
    created_time      INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL,
    created_by        TEXT,
    last_updated_by   TEXT,
    UNIQUE (dataset_id, input_hash)
);
CREATE INDEX evaluation_dataset_records_page
    ON evaluation_dataset_records (dataset_id, created_time, dataset_record_id);
CREATE TABLE scorers (
    scorer_id     TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    scorer_name   TEXT NOT NULL,
    UNIQUE (experiment_id, scorer_name)
);
CREATE TABLE scorer_versions (
    scorer_id         TEXT NOT NULL,
    scorer_version    INTEGER NOT NULL,
    serialized_scorer TEXT NOT NULL,
    creation_time     INTEGER NOT NULL,
    PRIMARY KEY (scorer_id, scorer_version)
) WITHOUT ROWID;

-- migration 15: spans by name, for `span.name = …` in a trace search: a rare name among a million
-- spans is found from this index instead of by reading every newer trace's spans.
CREATE INDEX trace_spans_by_name ON trace_spans (name, trace_id);

-- migration 16: the write generation, a counter every visible write moves in the same transaction, so
-- live Studio pages served by any process on the database see writes made through any other.
CREATE TABLE atelier_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO atelier_generation (id, n) VALUES (1, 0);

-- migration 17: on PostgreSQL a batch's points of one series become one row (metric_point_chunks,
-- read through a `metric_points` view); SQLite keeps a row per point, which it writes fast enough.

-- migration 18: on PostgreSQL each run's params, tags, latest metrics and models are also kept as
-- one row beside the run (run_lists, rebuilt by triggers) for searches; SQLite reads its indexes
-- fast enough.

-- migration 19: projects, which are MLflow workspaces (MLflow 3.10+): a workspace groups
-- experiments (and through them runs, models logged in them, traces); the `mlflow` client names
-- one in the X-MLFLOW-WORKSPACE header. Existing experiments belong to `default`, which always
-- exists. Experiment names are unique within a workspace; experiment ids stay global.
CREATE TABLE workspaces (
    name TEXT PRIMARY KEY,
    description TEXT,
    default_artifact_root TEXT,
    creation_time INTEGER NOT NULL
);
INSERT INTO workspaces (name, description, creation_time)
    VALUES ('default', 'Default workspace for legacy resources', 0);
ALTER TABLE experiments ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
DROP INDEX experiments_name;
CREATE UNIQUE INDEX experiments_workspace_name ON experiments (workspace, name);

-- migration 20: people. A user signs in to the Studio with a password (an Argon2id PHC string;
-- none: API tokens only) and owns API tokens; a server admin manages projects and people, anyone
-- else acts in a project through their role there (workspace_members). A user's token may do at
-- most its role. A token of no user (user_name NULL: every token made before, and the service
-- tokens of jobs and spaces) keeps its role in every project, so nobody gains or loses access.
-- Studio sign-ins are sessions (revocable, expiring); failed sign-ins are counted per name, in
-- the database, so every server process throttles alike.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE TABLE workspace_members (
    workspace TEXT NOT NULL,
    user_name TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (workspace, user_name)
);
CREATE INDEX workspace_members_user ON workspace_members (user_name);
ALTER TABLE access_tokens ADD COLUMN user_name TEXT;
ALTER TABLE access_tokens ADD COLUMN expires INTEGER;
CREATE INDEX access_tokens_user ON access_tokens (user_name);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE TABLE login_failures (
    user_name TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX login_failures_user_at ON login_failures (user_name, at);

-- migration 21: the audit log: every change made through the server (and `atelier users` /
-- `atelier projects`), sign-ins and failed sign-ins — who, when, from where, what, in which
-- project, with what answer. Append-only, as model_card_history.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    address TEXT NOT NULL,
    workspace TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    status INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
CREATE INDEX audit_log_actor ON audit_log (actor, at_ms);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- migration 22: endpoint invocation keys: an access token with `endpoint` set may only invoke that
-- endpoint (role 'invoke'), for applications, apart from people's tokens; revoked like any token.
ALTER TABLE access_tokens ADD COLUMN endpoint TEXT;

-- migration 23: jobs, endpoints and schedules belong to a project (workspace) as experiments do.
-- Existing ones stay in `default`. A schedule's executions and a job's child jobs inherit its
-- project. Endpoint names stay unique server-wide: the invocation URL names no project.
ALTER TABLE jobs ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
CREATE INDEX jobs_by_workspace ON jobs (workspace, created DESC);
ALTER TABLE endpoints ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE monitoring_schedules ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE notebook_schedules ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';

-- migration 24: registered models (with their versions, tags, aliases and cards) belong to a
-- project as experiments do; existing ones stay in `default`. Names stay unique on the server.
-- MLflow's registry webhooks belong to the project they were made in and hear only its models.
ALTER TABLE registered_models ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
CREATE INDEX registered_models_by_workspace ON registered_models (workspace, name);
ALTER TABLE mlflow_webhooks ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';

-- migration 25: GenAI evaluation datasets belong to a project as experiments do (existing ones
-- stay in `default`); they link only to experiments of their own project.
ALTER TABLE evaluation_datasets ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
CREATE INDEX evaluation_datasets_by_workspace ON evaluation_datasets (workspace, created_time);

-- migration 26: a token may be bound to one project (`workspace`): a job's token acts there only,
-- with its role, never as a server admin; none (every other token) as before.
ALTER TABLE access_tokens ADD COLUMN workspace TEXT;

-- migration 27: a deleted project's name is retired. What it held moved to the default project (or
-- there was nothing), and so do files it left under projects/<name>/ in the artifact store: a new
-- project of that name must not inherit them. The server frees the name once that folder is empty.
CREATE TABLE retired_workspaces (
    name TEXT PRIMARY KEY,
    deleted_time INTEGER NOT NULL
);
