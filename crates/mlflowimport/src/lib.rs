//! # mlflowimport — moving over from an MLflow server
//!
//! [`import`] copies what an MLflow tracking server kept in its SQL database
//! (SQLite only, for now) into Atelier's store: experiments with tags, runs
//! with params, tags, full metric histories and latest values, dataset
//! inputs, logged models with params, tags and metrics, the model registry
//! (registered models, versions, tags, aliases) and traces (info, tags,
//! request metadata, spans, assessments, run links). MLflow's ids and
//! timestamps are kept: experiment ids, run ids, logged model ids, trace
//! ids, version numbers, every time field.
//!
//! The source is opened read-only (`SQLITE_OPEN_READ_ONLY`, one read
//! transaction, so the copy is one consistent snapshot) and never changed.
//! Its schema must be an alembic revision this crate was checked against
//! ([`CHECKED_REVISIONS`]); anything else is refused naming the revision.
//!
//! Everything is written in one store transaction: a clash with an id the
//! store holds already, an unreadable row or a count that does not match
//! rolls all of it back, and the artifact folders copied for it are removed.
//! The per-table counts (MLflow rows, rows added to Atelier) are checked
//! before the commit and returned in the [`Report`].
//!
//! Artifacts: experiments whose location is `mlflow-artifacts:/<path>` (a
//! server with `--artifacts-destination`, the default) or a local path under
//! the given artifact root (`--default-artifact-root` without proxying) have
//! their folder copied into Atelier's artifact folder, and their URIs become
//! `mlflow-artifacts:/<path>`, so the imported runs, logged models and
//! traces are served by Atelier alone. Other locations (`s3://…`) are kept
//! as they are and reported.
//!
//! This crate holds SQL, against MLflow's schema only: Atelier's own tables
//! are written through `store::ImportTx`.

mod convert;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use store::{
    Alias, Dataset, Experiment, ImportDatasetInput, ImportEntity, ImportPoint, ImportTx, Lifecycle,
    LoggedModel, Metric, ModelVersion, RegisteredModel, RunInfo, RunStatus, SqlStore, Tag,
    TraceAssessment, TraceInfo, TraceSpan,
};

pub use convert::{any_value, assessment_content, py_float, span_content};

/// MLflow schema revisions (alembic `version_num`) this importer was
/// checked against, with the MLflow release that has it as its head.
pub const CHECKED_REVISIONS: &[(&str, &str)] = &[("dc11669786a5", "3.17.2")];

/// What went wrong, said so the user knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source cannot be imported by this version (URI scheme, schema
    /// revision, a registered model name in two workspaces).
    #[error("{0}")]
    Unsupported(String),
    /// The source database could not be read.
    #[error("reading the MLflow database: {0}")]
    Source(#[from] rusqlite::Error),
    /// Atelier's store refused the import (an id clash) or failed.
    #[error("{0}")]
    Store(#[from] store::StoreError),
    /// Copying artifacts failed.
    #[error("{0}")]
    Artifacts(String),
    /// The counts after the import do not match the source.
    #[error("{0}")]
    Verify(String),
}

type Result<T, E = ImportError> = std::result::Result<T, E>;

/// The SQLite file an MLflow backend-store URI names. `sqlite:///rel.db`
/// is relative to the working directory and `sqlite:////abs.db` absolute,
/// as SQLAlchemy reads them; a plain path is taken as it is. Other
/// databases are refused: only SQLite sources are supported for now.
pub fn source_path(uri: &str) -> Result<PathBuf> {
    let uri = uri.trim();
    if let Some(rest) = uri.strip_prefix("sqlite://") {
        let rest = rest.split('?').next().unwrap_or_default();
        let path = rest.strip_prefix('/').unwrap_or(rest);
        if path.is_empty() || path == ":memory:" {
            return Err(ImportError::Unsupported(format!(
                "'{uri}' names no database file: give sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )));
        }
        return Ok(PathBuf::from(path));
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        return Err(ImportError::Unsupported(format!(
            "only SQLite MLflow databases can be imported for now (got a '{scheme}' URI); \
             give the sqlite:/// URI of the server's --backend-store-uri, or copy the data into SQLite first"
        )));
    }
    if uri.is_empty() {
        return Err(ImportError::Unsupported(
            "--from needs the MLflow database URI (sqlite:///path/to/mlflow.db)".into(),
        ));
    }
    Ok(PathBuf::from(uri))
}

/// What to import and where artifacts go.
#[derive(Debug, Clone)]
pub struct Options {
    /// The MLflow backend-store URI (`sqlite:///…`).
    pub source: String,
    /// MLflow's artifact root (`--artifacts-destination` or
    /// `--default-artifact-root`); `None` imports metadata only.
    pub artifacts: Option<PathBuf>,
    /// Atelier's artifact folder (`<data-dir>/artifacts`).
    pub dest_artifacts: PathBuf,
}

/// Progress of a long import.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A stage begins (e.g. "metrics").
    Stage(&'static str),
    /// Rows of a table copied so far.
    Rows {
        table: &'static str,
        done: u64,
        total: u64,
    },
    /// Artifact files copied so far.
    Files { done: u64, bytes: u64 },
}

/// One MLflow table's rows and what Atelier gained for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    /// MLflow's table.
    pub table: &'static str,
    /// Its rows.
    pub source: i64,
    /// Rows Atelier's store gained for them (checked equal to `expected`).
    pub imported: i64,
    pub expected: i64,
    /// Why `expected` differs from `source`, if it does.
    pub note: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub counts: Vec<Count>,
    pub files: u64,
    pub bytes: u64,
    /// Things kept as they were or left out, said once each.
    pub warnings: Vec<String>,
    /// The MLflow schema revision of the source.
    pub revision: String,
}

/// The MLflow tables imported, each with the store count(s) that must grow
/// by its rows.
const TABLES: &[(&str, &[&str])] = &[
    ("workspaces", &["workspaces"]),
    ("experiments", &["experiments"]),
    ("experiment_tags", &["experiment_tags"]),
    ("runs", &["runs"]),
    ("params", &["params"]),
    ("tags", &["tags"]),
    ("metrics", &["metric_points"]),
    ("latest_metrics", &["latest_metrics"]),
    ("datasets", &["datasets"]),
    ("inputs", &["run_inputs", "model_inputs", "model_outputs"]),
    ("input_tags", &["input_tags"]),
    ("logged_models", &["logged_models"]),
    ("logged_model_params", &["logged_model_params"]),
    ("logged_model_tags", &["logged_model_tags"]),
    ("logged_model_metrics", &["logged_model_metrics"]),
    ("registered_models", &["registered_models"]),
    ("registered_model_tags", &["registered_model_tags"]),
    ("registered_model_aliases", &["registered_model_aliases"]),
    ("model_versions", &["model_versions"]),
    ("model_version_tags", &["model_version_tags"]),
    ("trace_info", &["trace_info"]),
    ("trace_tags", &["trace_tags"]),
    ("trace_request_metadata", &["trace_request_metadata"]),
    ("spans", &["spans"]),
    ("assessments", &["assessments"]),
    ("entity_associations", &["trace_run_links"]),
];

/// MLflow tables with data Atelier has no place for; rows there are reported.
const NOT_IMPORTED: &[&str] = &[
    "evaluation_datasets",
    "evaluation_dataset_records",
    "scorers",
    "scorer_versions",
    "webhooks",
    "issues",
    "label_schemas",
    "review_queues",
    "secrets",
    "endpoints",
    "guardrails",
    "mcp_servers",
    "online_scoring_configs",
    "budget_policies",
];

/// Counts that differ from the source on purpose, with the reason.
#[derive(Default)]
struct Tally {
    adjust: HashMap<&'static str, (i64, Vec<String>)>,
}

impl Tally {
    fn adjust(&mut self, table: &'static str, n: i64, why: impl Into<String>) {
        if n == 0 {
            return;
        }
        let e = self.adjust.entry(table).or_default();
        e.0 += n;
        e.1.push(format!("{n:+} {}", why.into()));
    }
}

fn lifecycle(s: Option<String>) -> Lifecycle {
    match s.as_deref() {
        Some("deleted") => Lifecycle::Deleted,
        _ => Lifecycle::Active,
    }
}

/// Where an MLflow URI's files are, relative to the artifact root (given
/// canonical), when Atelier can serve them (`mlflow-artifacts:/x`, or a
/// local path under the root); `None` otherwise.
fn artifact_relative(uri: &str, root: Option<&Path>) -> Option<String> {
    if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
        let rest = rest.trim_start_matches('/');
        // mlflow-artifacts://host:port/path names a server too
        let rest = if uri.starts_with("mlflow-artifacts://") {
            rest.split_once('/').map(|(_, p)| p).unwrap_or("")
        } else {
            rest
        };
        return Some(rest.trim_end_matches('/').to_string());
    }
    let root = root?;
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    if !path.starts_with('/') {
        return None;
    }
    let rel = Path::new(path).strip_prefix(root).ok()?;
    let rel = rel.to_str()?.trim_end_matches('/').to_string();
    Some(rel)
}

/// The URI Atelier serves for an MLflow URI (see [`artifact_relative`]).
fn rewrite_uri(uri: &str, root: Option<&Path>) -> String {
    match artifact_relative(uri, root) {
        Some(rel)
            if !uri.starts_with("mlflow-artifacts:/") || uri.starts_with("mlflow-artifacts://") =>
        {
            format!("mlflow-artifacts:/{rel}")
        }
        _ => uri.to_string(),
    }
}

/// Whether experiment `id` of `workspace`, whose artifacts MLflow kept at
/// `rel`, moves to `<id>`: always outside the default project (Atelier
/// gives such an experiment no other place), and in it when `rel` is
/// MLflow's `workspaces/…` or a place Atelier's layout
/// ([`artifacts::projects::home`]) gives to someone else — a project's
/// `projects/…`, another experiment's id, the root.
fn must_move(id: i64, workspace: &str, rel: &str) -> bool {
    use artifacts::projects::{DEFAULT_PROJECT, Home, home};
    if rel == id.to_string() {
        return false;
    }
    if workspace != store::DEFAULT_WORKSPACE || rel.split('/').next() == Some("workspaces") {
        return true;
    }
    match artifacts::ArtifactPath::parse(rel) {
        Ok(path) => match home(&path) {
            Home::Project(p) => p != DEFAULT_PROJECT,
            Home::Experiment(other) => other != id,
            Home::ServerAdmin => true,
        },
        // not a store path ('..', '.'): left as it is, and copy_artifacts refuses it
        Err(_) => false,
    }
}

/// One kind of clash, as an import's refusal lists it: how many, and the
/// first five.
fn clash_list(what: &str, found: &[String]) -> String {
    let shown: Vec<&str> = found.iter().take(5).map(String::as_str).collect();
    format!(
        "{} {what}{} ({}{})",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        shown.join(", "),
        if found.len() > 5 { ", …" } else { "" }
    )
}

/// Whether one of two relative folders holds the other (or they are one).
fn nested(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| x == y || x.strip_prefix(y).is_some_and(|r| r.starts_with('/'));
    under(a, b) || under(b, a)
}

fn count(src: &Connection, table: &str) -> Result<i64> {
    Ok(
        src.query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| {
            r.get(0)
        })?,
    )
}

fn table_exists(src: &Connection, table: &str) -> Result<bool> {
    Ok(src
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            [table],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Open the MLflow database read-only and check its schema revision.
fn open_source(path: &Path) -> Result<(Connection, String)> {
    if !path.is_file() {
        return Err(ImportError::Unsupported(format!(
            "no MLflow database at {} (the file does not exist)",
            path.display()
        )));
    }
    let src = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    if !table_exists(&src, "alembic_version")? {
        return Err(ImportError::Unsupported(format!(
            "{} is not an MLflow tracking database (it has no alembic_version table)",
            path.display()
        )));
    }
    let rev: String = src
        .query_row("SELECT version_num FROM alembic_version", [], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    if !CHECKED_REVISIONS.iter().any(|(r, _)| *r == rev) {
        let known: Vec<String> = CHECKED_REVISIONS
            .iter()
            .map(|(r, v)| format!("{r} (MLflow {v})"))
            .collect();
        return Err(ImportError::Unsupported(format!(
            "the MLflow database is at schema revision '{rev}', which this importer has not been checked against \
             (it knows {}); upgrade the database with the matching MLflow (`mlflow db upgrade <uri>`) on a copy, \
             or use an Atelier that knows '{rev}'",
            known.join(", ")
        )));
    }
    Ok((src, rev))
}

/// Import the MLflow database `opts.source` (and its artifacts) into `store`.
pub fn import(
    store: &SqlStore,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report> {
    let path = source_path(&opts.source)?;
    let (src, revision) = open_source(&path)?;
    let root =
        match &opts.artifacts {
            Some(root) => Some(root.canonicalize().ok().filter(|r| r.is_dir()).ok_or_else(
                || {
                    ImportError::Artifacts(format!(
                        "the MLflow artifact root {} is not a folder",
                        root.display()
                    ))
                },
            )?),
            None => None,
        };
    // One read transaction: every query below sees the same snapshot.
    src.execute_batch("BEGIN")?;
    let mut failure: Option<ImportError> = None;
    let mut copied: Vec<PathBuf> = Vec::new();
    let outcome = store.import(|tx| {
        let importer = Importer {
            src: &src,
            tx,
            opts,
            progress,
            tally: Tally::default(),
            report: Report {
                revision: revision.clone(),
                ..Default::default()
            },
            copied: &mut copied,
            root: root.clone(),
            moves: HashMap::new(),
        };
        match importer.run() {
            Ok(r) => Ok(r),
            Err(ImportError::Store(e)) => Err(e),
            Err(e) => {
                failure = Some(e);
                Err(store::StoreError::Internal("import aborted".into()))
            }
        }
    });
    let _ = src.execute_batch("COMMIT");
    match outcome {
        Ok(report) => Ok(report),
        Err(e) => {
            for dir in copied.iter().rev() {
                if let Err(err) = std::fs::remove_dir_all(dir) {
                    tracing::warn!(dir = %dir.display(), error = %err, "could not remove a copied artifact folder");
                }
            }
            Err(failure.unwrap_or(ImportError::Store(e)))
        }
    }
}

struct Importer<'a, 'b, 'c> {
    src: &'a Connection,
    tx: &'a mut ImportTx<'b, 'c>,
    opts: &'a Options,
    progress: &'a mut dyn FnMut(Progress),
    tally: Tally,
    report: Report,
    copied: &'a mut Vec<PathBuf>,
    /// MLflow's artifact root, canonical.
    root: Option<PathBuf>,
    /// Experiment folders that move, by experiment: (MLflow's, Atelier's),
    /// relative to the artifact roots; MLflow's `workspaces/<ws>/<id>`
    /// becomes `<id>`.
    moves: HashMap<i64, (String, String)>,
}

const PROGRESS_EVERY: u64 = 50_000;

impl Importer<'_, '_, '_> {
    fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The URI Atelier serves for an MLflow URI of experiment `exp`'s (a
    /// run's, a logged model's, a trace's): under the experiment's own
    /// folder when it was moved (see [`Importer::moves`]). `None` (a model
    /// version's source, which names no experiment) looks through them all.
    fn uri_of(&self, exp: Option<i64>, uri: &str) -> String {
        if let Some(rel) = artifact_relative(uri, self.root())
            && let Some(moved) = self.moved(exp, &rel)
        {
            return format!("mlflow-artifacts:/{moved}");
        }
        rewrite_uri(uri, self.root())
    }

    /// Where Atelier keeps what MLflow kept at `rel` (relative to the
    /// artifact root), when that is inside experiment `exp`'s moved folder
    /// (any experiment's, for `None`: the folders of moved experiments
    /// neither hold nor sit inside one another, so one matches at most).
    fn moved(&self, exp: Option<i64>, rel: &str) -> Option<String> {
        let inside = |(old, new): &(String, String)| {
            let rest = rel.strip_prefix(old.as_str())?;
            if rest.is_empty() {
                Some(new.clone())
            } else {
                rest.strip_prefix('/').map(|r| format!("{new}/{r}"))
            }
        };
        match exp {
            Some(id) => self.moves.get(&id).and_then(inside),
            None => self.moves.values().find_map(inside),
        }
    }

    /// Whether MLflow's `table` has the column `col`.
    fn has_column(&self, table: &str, col: &str) -> Result<bool> {
        Ok(self
            .src
            .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
            .exists([table, col])?)
    }

    /// The SQL for a row's workspace in `table`: the column, or 'default'
    /// for a database from before workspaces.
    fn workspace_sql(&self, table: &str) -> Result<&'static str> {
        Ok(if self.has_column(table, "workspace")? {
            "workspace"
        } else {
            "'default'"
        })
    }

    fn warn(&mut self, w: String) {
        tracing::debug!("{w}");
        if !self.report.warnings.contains(&w) {
            self.report.warnings.push(w);
        }
    }

    fn ids(&self, sql: &str) -> Result<Vec<String>> {
        let mut st = self.src.prepare(sql)?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn run(mut self) -> Result<Report> {
        self.check_model_names()?;
        let mut source_counts: BTreeMap<&'static str, i64> = BTreeMap::new();
        for (t, _) in TABLES {
            let n = if table_exists(self.src, t)? {
                count(self.src, t)?
            } else {
                0
            };
            source_counts.insert(t, n);
        }
        for t in NOT_IMPORTED {
            if table_exists(self.src, t)? {
                let n = count(self.src, t)?;
                if n > 0 {
                    self.warn(format!(
                        "{t}: {n} rows not imported (Atelier has no place for them yet)"
                    ));
                }
            }
        }
        let skip_default = self.check_clashes()?;
        let before = self.tx.counts()?;
        (self.progress)(Progress::Stage("projects"));
        self.projects()?;
        (self.progress)(Progress::Stage("experiments"));
        let exps = self.experiments(skip_default)?;
        self.copy_artifacts(&exps)?;
        (self.progress)(Progress::Stage("runs"));
        self.runs(&source_counts)?;
        (self.progress)(Progress::Stage("metrics"));
        self.metrics(source_counts["metrics"])?;
        (self.progress)(Progress::Stage("datasets and inputs"));
        self.inputs()?;
        (self.progress)(Progress::Stage("logged models"));
        self.logged_models()?;
        (self.progress)(Progress::Stage("model registry"));
        self.registry()?;
        (self.progress)(Progress::Stage("traces"));
        self.traces(source_counts["spans"])?;
        (self.progress)(Progress::Stage("verifying counts"));
        let after = self.tx.counts()?;
        let mut bad = Vec::new();
        for (table, keys) in TABLES {
            let source = source_counts[table];
            let imported: i64 = keys.iter().map(|k| after[k] - before[k]).sum();
            let (adj, notes) = self.tally.adjust.remove(table).unwrap_or_default();
            let expected = source + adj;
            if imported != expected {
                bad.push(format!(
                    "{table}: {source} rows in MLflow, {expected} expected in Atelier, {imported} written"
                ));
            }
            self.report.counts.push(Count {
                table,
                source,
                imported,
                expected,
                note: notes.join("; "),
            });
        }
        if !bad.is_empty() {
            return Err(ImportError::Verify(format!(
                "the counts after the import do not match, so nothing was imported: {}",
                bad.join("; ")
            )));
        }
        Ok(self.report)
    }

    /// MLflow keeps registered model names per workspace; Atelier keeps
    /// them unique across projects, so a name in two workspaces is refused
    /// before anything is written.
    fn check_model_names(&self) -> Result<()> {
        if !self.has_column("registered_models", "workspace")? {
            return Ok(());
        }
        let mut st = self.src.prepare(
            "SELECT name, GROUP_CONCAT(workspace, ', ') FROM registered_models
             GROUP BY name HAVING COUNT(*) > 1 ORDER BY name",
        )?;
        let twice: Vec<String> = st
            .query_map([], |r| {
                Ok(format!(
                    "'{}' (in {})",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if !twice.is_empty() {
            return Err(ImportError::Unsupported(format!(
                "registered model names are unique across projects in Atelier, but the MLflow database \
                 has {} in more than one workspace: {}; rename one of each in MLflow \
                 (MlflowClient().rename_registered_model) and import again",
                if twice.len() == 1 { "a name" } else { "names" },
                twice.join(", ")
            )));
        }
        Ok(())
    }

    /// Each MLflow workspace becomes the Atelier project of the same name,
    /// with its description and artifact root. `default` is Atelier's own
    /// default project; a project that exists already takes the
    /// workspace's experiments and models (their ids and names are checked
    /// for clashes one by one).
    fn projects(&mut self) -> Result<()> {
        let mut wanted: Vec<store::Workspace> = Vec::new();
        if table_exists(self.src, "workspaces")? {
            let mut st = self.src.prepare(
                "SELECT name, description, default_artifact_root FROM workspaces ORDER BY name",
            )?;
            let rows = st.query_map([], |r| {
                Ok(store::Workspace {
                    name: r.get(0)?,
                    description: r.get::<_, Option<String>>(1)?.filter(|d| !d.is_empty()),
                    default_artifact_root: r.get::<_, Option<String>>(2)?.filter(|d| !d.is_empty()),
                    creation_time: 0,
                })
            })?;
            for w in rows {
                wanted.push(w?);
            }
        }
        // a workspace a row names that the catalogue lacks (an externally
        // managed workspace provider keeps no catalogue)
        let mut named: Vec<String> = Vec::new();
        for t in ["experiments", "registered_models"] {
            let col = self.workspace_sql(t)?;
            named.extend(self.ids(&format!("SELECT DISTINCT {col} FROM {t}"))?);
        }
        let in_catalogue = wanted.len() as i64;
        for n in named {
            if !wanted.iter().any(|w| w.name == n) {
                wanted.push(store::Workspace {
                    name: n,
                    description: None,
                    default_artifact_root: None,
                    creation_time: 0,
                });
            }
        }
        let now = store::now_ms();
        let (mut existed, mut default) = (0i64, 0i64);
        for mut w in wanted.iter().cloned() {
            if w.name == store::DEFAULT_WORKSPACE {
                default += 1;
                continue;
            }
            // MLflow keeps no creation time for a workspace
            w.creation_time = now;
            // a root elsewhere (s3://…) places the project's new experiments
            // there; one inside MLflow's own artifact store would place them
            // in folders Atelier gives to others
            if let Some(root) = w.default_artifact_root.take() {
                let external = root.contains("://")
                    && !root.starts_with("mlflow-artifacts:")
                    && !root.starts_with("file:");
                if external {
                    w.default_artifact_root = Some(root);
                } else {
                    self.warn(format!(
                        "workspace '{}': its default artifact root {root} was left out \
                         (its new experiments keep artifacts in Atelier's own store)",
                        w.name
                    ));
                }
            }
            let made = self.tx.project(&w).map_err(|e| match e {
                store::StoreError::InvalidParameter(m) | store::StoreError::InvalidState(m) => {
                    ImportError::Unsupported(format!(
                        "the MLflow workspace '{}' cannot become an Atelier project: {m}",
                        w.name
                    ))
                }
                other => ImportError::Store(other),
            })?;
            if !made {
                existed += 1;
                self.warn(format!(
                    "project '{}' existed already: MLflow's workspace '{}' was imported into it",
                    w.name, w.name
                ));
            }
        }
        let t = &mut self.tally;
        t.adjust(
            "workspaces",
            -default,
            "MLflow's 'default' workspace is Atelier's default project",
        );
        t.adjust("workspaces", -existed, "projects that existed already");
        t.adjust(
            "workspaces",
            wanted.len() as i64 - in_catalogue,
            "workspaces named by experiments or models but not in MLflow's catalogue",
        );
        Ok(())
    }

    /// Refuse ids and names the store holds already. Returns whether MLflow's
    /// experiment 0 is left out (empty, and Atelier's own 0 is in use).
    fn check_clashes(&mut self) -> Result<bool> {
        let mut skip_default = false;
        let mlflow_default_used: i64 = self.src.query_row(
            "SELECT (SELECT COUNT(*) FROM experiment_tags WHERE experiment_id = 0)
                  + (SELECT COUNT(*) FROM runs WHERE experiment_id = 0)
                  + (SELECT COUNT(*) FROM datasets WHERE experiment_id = 0)
                  + (SELECT COUNT(*) FROM logged_models WHERE experiment_id = 0)
                  + (SELECT COUNT(*) FROM trace_info WHERE experiment_id = 0)",
            [],
            |r| r.get(0),
        )?;
        let mlflow_has_default = self
            .src
            .query_row(
                "SELECT 1 FROM experiments WHERE experiment_id = 0",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if mlflow_has_default {
            match self.tx.experiment_is_empty(0)? {
                Some(true) => self.tx.drop_empty_experiment(0)?,
                Some(false) if mlflow_default_used == 0 => {
                    skip_default = true;
                }
                Some(false) => {
                    return Err(ImportError::Store(store::StoreError::AlreadyExists(
                        "both MLflow's and this Atelier store's Default experiment (id 0) hold runs or other data; \
                         import into a fresh data folder instead"
                            .into(),
                    )));
                }
                None => {}
            }
        }
        let checks: [(ImportEntity, &str, &str); 5] = [
            (
                ImportEntity::Experiment,
                "experiment id",
                if skip_default {
                    "SELECT CAST(experiment_id AS TEXT) FROM experiments WHERE experiment_id != 0"
                } else {
                    "SELECT CAST(experiment_id AS TEXT) FROM experiments"
                },
            ),
            (ImportEntity::Run, "run", "SELECT run_uuid FROM runs"),
            (
                ImportEntity::LoggedModel,
                "logged model",
                "SELECT model_id FROM logged_models",
            ),
            (
                ImportEntity::RegisteredModel,
                "registered model",
                "SELECT name FROM registered_models",
            ),
            (
                ImportEntity::Trace,
                "trace",
                "SELECT request_id FROM trace_info",
            ),
        ];
        let mut clashes = Vec::new();
        for (entity, what, sql) in checks {
            let ids = self.ids(sql)?;
            let found = self.tx.existing(entity, &ids)?;
            if !found.is_empty() {
                let quoted: Vec<String> = found.iter().map(|s| format!("'{s}'")).collect();
                clashes.push(clash_list(what, &quoted));
            }
        }
        // experiment names are unique within a project
        let ws = self.workspace_sql("experiments")?;
        let mut st = self.src.prepare(&format!(
            "SELECT {ws}, name FROM experiments WHERE experiment_id != 0 OR ?1 = 0"
        ))?;
        let names: Vec<(String, String)> = st
            .query_map([skip_default], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let found = self.tx.existing_experiment_names(&names)?;
        if !found.is_empty() {
            let named: Vec<String> = found
                .iter()
                .map(|(w, n)| format!("'{n}' in project '{w}'"))
                .collect();
            clashes.push(clash_list("experiment name", &named));
        }
        if !clashes.is_empty() {
            return Err(ImportError::Store(store::StoreError::AlreadyExists(
                format!(
                    "this Atelier store already holds {} of the MLflow database; nothing was imported \
                 (an import keeps MLflow's ids and never merges: import into a fresh --data-dir)",
                    clashes.join(", ")
                ),
            )));
        }
        if skip_default {
            self.tally.adjust(
                "experiments",
                -1,
                "MLflow's empty Default experiment (0): Atelier's own is kept",
            );
        }
        Ok(skip_default)
    }

    fn experiments(&mut self, skip_default: bool) -> Result<Vec<Experiment>> {
        let mut tags: HashMap<i64, Vec<Tag>> = HashMap::new();
        {
            let mut st = self.src.prepare(
                "SELECT experiment_id, key, value FROM experiment_tags ORDER BY experiment_id, key",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Tag::new(
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    ),
                ))
            })?;
            for row in rows {
                let (id, t) = row?;
                tags.entry(id).or_default().push(t);
            }
        }
        let ws = self.workspace_sql("experiments")?;
        let mut st = self.src.prepare(&format!(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, {ws}
             FROM experiments ORDER BY experiment_id"
        ))?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut all = Vec::new();
        for row in rows {
            let (id, name, location, stage, created, updated, workspace) = row?;
            if id == 0 && skip_default {
                continue;
            }
            let location = location.unwrap_or_else(|| format!("mlflow-artifacts:/{id}"));
            all.push((id, name, location, stage, created, updated, workspace));
        }
        drop(st);
        // where each experiment's artifacts are, relative to the root
        let mut rels: Vec<(i64, String)> = Vec::new();
        for (id, _, location, _, _, _, workspace) in &all {
            if let Some(rel) = artifact_relative(location, self.root()) {
                if must_move(*id, workspace, &rel) {
                    self.moves.insert(*id, (rel.clone(), id.to_string()));
                }
                rels.push((*id, rel));
            }
        }
        // a moved folder is this experiment's alone
        for (id, (old, _)) in &self.moves {
            let clash = rels.iter().find(|(other, rel)| {
                other != id && (old.is_empty() || rel.is_empty() || nested(old, rel))
            });
            if let Some((other, rel)) = clash {
                return Err(ImportError::Unsupported(format!(
                    "experiments {id} and {other} keep artifacts in the same folder or one inside \
                     the other ('{old}', '{rel}'); Atelier keeps each experiment's artifacts in a \
                     folder of its own, so this database cannot be imported as it is"
                )));
            }
        }
        let mut out = Vec::new();
        for (id, name, location, stage, created, updated, workspace) in all {
            let e = Experiment {
                experiment_id: id,
                name,
                artifact_location: self.uri_of(Some(id), &location),
                lifecycle_stage: lifecycle(stage),
                creation_time: created.unwrap_or(0),
                last_update_time: updated.or(created).unwrap_or(0),
                tags: tags.remove(&id).unwrap_or_default(),
                workspace,
            };
            self.tx.experiment(&e)?;
            // the copy needs MLflow's own location
            out.push(Experiment {
                artifact_location: location,
                ..e
            });
        }
        Ok(out)
    }

    fn runs(&mut self, totals: &BTreeMap<&'static str, i64>) -> Result<()> {
        let mut st = self.src.prepare(
            "SELECT run_uuid, name, user_id, status, start_time, end_time, deleted_time, lifecycle_stage,
                    artifact_uri, experiment_id
             FROM runs ORDER BY run_uuid",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })?;
        for row in rows {
            let (id, name, user, status, start, end, deleted, stage, uri, exp) = row?;
            let status = match status.as_deref().map(RunStatus::parse) {
                Some(Some(s)) => s,
                _ => {
                    return Err(ImportError::Unsupported(format!(
                        "run {id} has the status {status:?}, which Atelier does not know"
                    )));
                }
            };
            let uri = uri.unwrap_or_else(|| format!("mlflow-artifacts:/{exp}/{id}/artifacts"));
            let info = RunInfo {
                run_id: id.clone(),
                run_name: name.unwrap_or_default(),
                experiment_id: exp,
                user_id: user.unwrap_or_default(),
                status,
                start_time: start,
                end_time: end,
                artifact_uri: self.uri_of(Some(exp), &uri),
                lifecycle_stage: lifecycle(stage),
            };
            self.tx.run(&info, deleted)?;
        }
        for (table, is_param) in [("params", true), ("tags", false)] {
            let mut st = self.src.prepare(&format!(
                "SELECT run_uuid, key, value FROM {table} ORDER BY run_uuid"
            ))?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Tag::new(
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    ),
                ))
            })?;
            let total = totals.get(table).copied().unwrap_or(0) as u64;
            let mut done: u64 = 0;
            for row in rows {
                let (run, t) = row?;
                if is_param {
                    self.tx.params(&run, std::slice::from_ref(&t))?;
                } else {
                    self.tx.run_tags(&run, std::slice::from_ref(&t))?;
                }
                done += 1;
                if done.is_multiple_of(PROGRESS_EVERY) {
                    (self.progress)(Progress::Rows { table, done, total });
                }
            }
        }
        Ok(())
    }

    fn metrics(&mut self, total: i64) -> Result<()> {
        let mut st = self.src.prepare(
            "SELECT run_uuid, key, step, timestamp, value, is_nan FROM metrics
             ORDER BY run_uuid, key, step, timestamp, value",
        )?;
        let mut rows = st.query([])?;
        let mut current: Option<(String, String)> = None;
        let mut buf: Vec<ImportPoint> = Vec::new();
        let mut done: u64 = 0;
        while let Some(r) = rows.next()? {
            let run: String = r.get(0)?;
            let key: String = r.get(1)?;
            let is_nan: bool = r.get::<_, Option<bool>>(5)?.unwrap_or(false);
            let value: f64 = r.get::<_, Option<f64>>(4)?.unwrap_or(0.0);
            let point = ImportPoint {
                step: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                timestamp: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                value: if is_nan { f64::NAN } else { value },
            };
            let same = current
                .as_ref()
                .is_some_and(|(cr, ck)| *cr == run && *ck == key);
            if !same {
                if let Some((cr, ck)) = current.take() {
                    self.tx.metric_points(&cr, &ck, &buf)?;
                    buf.clear();
                }
                current = Some((run, key));
            }
            buf.push(point);
            done += 1;
            if done.is_multiple_of(PROGRESS_EVERY) {
                (self.progress)(Progress::Rows {
                    table: "metrics",
                    done,
                    total: total as u64,
                });
            }
        }
        if let Some((cr, ck)) = current.take() {
            self.tx.metric_points(&cr, &ck, &buf)?;
        }
        (self.progress)(Progress::Rows {
            table: "metrics",
            done,
            total: total as u64,
        });
        let mut st = self
            .src
            .prepare("SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics")?;
        let rows = st.query_map([], |r| {
            let is_nan: bool = r.get::<_, Option<bool>>(5)?.unwrap_or(false);
            let value: f64 = r.get::<_, Option<f64>>(2)?.unwrap_or(0.0);
            Ok((
                r.get::<_, String>(0)?,
                Metric::new(
                    r.get::<_, String>(1)?,
                    if is_nan { f64::NAN } else { value },
                    r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                    r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                ),
            ))
        })?;
        for row in rows {
            let (run, m) = row?;
            self.tx.latest_metric(&run, &m)?;
        }
        Ok(())
    }

    fn inputs(&mut self) -> Result<()> {
        let mut datasets: HashMap<String, (i64, Dataset)> = HashMap::new();
        let mut seen: HashSet<(i64, String, String)> = HashSet::new();
        {
            let mut st = self.src.prepare(
                "SELECT dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source,
                        dataset_schema, dataset_profile
                 FROM datasets ORDER BY experiment_id, name, digest",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    Dataset {
                        name: r.get(2)?,
                        digest: r.get(3)?,
                        source_type: r.get(4)?,
                        source: r.get(5)?,
                        schema: r.get(6)?,
                        profile: r.get(7)?,
                    },
                ))
            })?;
            for row in rows {
                let (uuid, exp, ds) = row?;
                if !seen.insert((exp, ds.name.clone(), ds.digest.clone())) {
                    self.tally.adjust(
                        "datasets",
                        -1,
                        "datasets with the same experiment, name and digest as another (kept once)",
                    );
                } else {
                    self.tx.dataset(exp, &ds)?;
                }
                datasets.insert(uuid, (exp, ds));
            }
        }
        let mut input_tags: HashMap<String, Vec<Tag>> = HashMap::new();
        {
            let mut st = self.src.prepare(
                "SELECT input_uuid, name, value FROM input_tags ORDER BY input_uuid, name",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Tag::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                ))
            })?;
            for row in rows {
                let (id, t) = row?;
                input_tags.entry(id).or_default().push(t);
            }
        }
        let mut st = self.src.prepare(
            "SELECT input_uuid, source_type, source_id, destination_type, destination_id, step FROM inputs",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i64>>(5)?.unwrap_or(0),
            ))
        })?;
        for row in rows {
            let (input, stype, sid, dtype, did, step) = row?;
            let tags = input_tags.remove(&input).unwrap_or_default();
            match (stype.as_str(), dtype.as_str()) {
                ("DATASET", "RUN") => {
                    let Some((exp, ds)) = datasets.get(&sid) else {
                        return Err(ImportError::Verify(format!(
                            "input {input} names dataset {sid}, which the MLflow database does not have"
                        )));
                    };
                    self.tx.dataset_input(&ImportDatasetInput {
                        run_id: did,
                        experiment_id: *exp,
                        dataset: ds.clone(),
                        tags,
                    })?;
                }
                ("RUN_INPUT", "MODEL_INPUT") => {
                    self.tx.run_model(&sid, &did, false, step)?;
                    self.tally.adjust(
                        "input_tags",
                        -(tags.len() as i64),
                        "tags of model inputs (Atelier keeps none)",
                    );
                }
                ("RUN_OUTPUT", "MODEL_OUTPUT") => {
                    self.tx.run_model(&sid, &did, true, step)?;
                    self.tally.adjust(
                        "input_tags",
                        -(tags.len() as i64),
                        "tags of model outputs (Atelier keeps none)",
                    );
                }
                _ => {
                    self.tally.adjust(
                        "inputs",
                        -1,
                        format!("{stype} → {dtype} links (not kept by Atelier)"),
                    );
                    self.tally.adjust(
                        "input_tags",
                        -(tags.len() as i64),
                        format!("tags of {stype} → {dtype} links"),
                    );
                    self.warn(format!("inputs from {stype} to {dtype} are not imported"));
                }
            }
        }
        if !input_tags.is_empty() {
            let n: usize = input_tags.values().map(Vec::len).sum();
            self.tally.adjust(
                "input_tags",
                -(n as i64),
                "tags of inputs that do not exist",
            );
        }
        Ok(())
    }

    fn kv_by<K: std::hash::Hash + Eq>(
        &self,
        sql: &str,
        key: impl Fn(&rusqlite::Row) -> rusqlite::Result<K>,
    ) -> Result<HashMap<K, Vec<Tag>>> {
        let mut out: HashMap<K, Vec<Tag>> = HashMap::new();
        let mut st = self.src.prepare(sql)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let k = key(r)?;
            let t = Tag::new(
                r.get::<_, String>("k")?,
                r.get::<_, Option<String>>("v")?.unwrap_or_default(),
            );
            out.entry(k).or_default().push(t);
        }
        Ok(out)
    }

    fn logged_models(&mut self) -> Result<()> {
        let mut params = self.kv_by(
            "SELECT model_id, param_key AS k, param_value AS v FROM logged_model_params ORDER BY model_id, param_key",
            |r| r.get::<_, String>(0),
        )?;
        let mut tags = self.kv_by(
            "SELECT model_id, tag_key AS k, tag_value AS v FROM logged_model_tags ORDER BY model_id, tag_key",
            |r| r.get::<_, String>(0),
        )?;
        let mut st = self.src.prepare(
            "SELECT model_id, experiment_id, name, artifact_location, creation_timestamp_ms,
                    last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id
             FROM logged_models ORDER BY creation_timestamp_ms, model_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })?;
        for row in rows {
            let (id, exp, name, location, created, updated, status, stage, model_type, run) = row?;
            let status = match status {
                1 => "LOGGED_MODEL_PENDING",
                2 => "LOGGED_MODEL_READY",
                3 => "LOGGED_MODEL_UPLOAD_FAILED",
                _ => "LOGGED_MODEL_STATUS_UNSPECIFIED",
            };
            let m = LoggedModel {
                model_id: id.clone(),
                experiment_id: exp,
                name,
                artifact_uri: self.uri_of(Some(exp), &location),
                status: status.into(),
                model_type: model_type.unwrap_or_default(),
                source_run_id: run.unwrap_or_default(),
                creation_timestamp_ms: created,
                last_updated_timestamp_ms: updated,
                lifecycle_stage: lifecycle(stage),
                tags: tags.remove(&id).unwrap_or_default(),
                params: params.remove(&id).unwrap_or_default(),
                metrics: Vec::new(),
            };
            self.tx.logged_model(&m)?;
        }
        let mut st = self.src.prepare(
            "SELECT model_id, metric_name, metric_timestamp_ms, metric_step, metric_value, run_id,
                    dataset_name, dataset_digest,
                    EXISTS (SELECT 1 FROM metrics x WHERE x.run_uuid = m.run_id AND x.key = m.metric_name
                            AND x.step = m.metric_step AND x.timestamp = m.metric_timestamp_ms AND x.is_nan = 1)
             FROM logged_model_metrics m ORDER BY run_id, metric_name, metric_step, metric_timestamp_ms",
        )?;
        let mut rows = st.query([])?;
        let mut appended = 0;
        while let Some(r) = rows.next()? {
            let value: Option<f64> = r.get(4)?;
            let nan_in_run: bool = r.get(8)?;
            // MLflow stores a NaN model metric as 0 (no is_nan column): the
            // run's own NaN point at that step and time is the same point.
            let value = match value {
                Some(v) if v == 0.0 && nan_in_run => f64::NAN,
                Some(v) => v,
                None => f64::NAN,
            };
            let run: String = r.get(5)?;
            let mut m = Metric::new(r.get::<_, String>(1)?, value, r.get(2)?, r.get(3)?);
            m.model_id = Some(r.get(0)?);
            m.dataset_name = r.get(6)?;
            m.dataset_digest = r.get(7)?;
            if self.tx.model_metric(&run, &m)? {
                appended += 1;
            }
        }
        self.tally.adjust(
            "metrics",
            appended,
            "logged-model metric points that were not in their run's history",
        );
        Ok(())
    }

    fn registry(&mut self) -> Result<()> {
        let mut rm_tags = self.kv_by(
            "SELECT name, key AS k, value AS v FROM registered_model_tags ORDER BY name, key",
            |r| r.get::<_, String>(0),
        )?;
        let mut mv_tags = self.kv_by(
            "SELECT name, version, key AS k, value AS v FROM model_version_tags ORDER BY name, version, key",
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?;
        let mut aliases: HashMap<String, Vec<Alias>> = HashMap::new();
        {
            let mut st = self.src.prepare(
                "SELECT name, alias, version FROM registered_model_aliases ORDER BY name, alias",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Alias {
                        alias: r.get(1)?,
                        version: r.get(2)?,
                    },
                ))
            })?;
            for row in rows {
                let (name, a) = row?;
                aliases.entry(name).or_default().push(a);
            }
        }
        let mut last: HashMap<String, i64> = HashMap::new();
        {
            let mut st = self
                .src
                .prepare("SELECT name, MAX(version) FROM model_versions GROUP BY name")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (n, v) = row?;
                last.insert(n, v);
            }
        }
        let ws = self.workspace_sql("registered_models")?;
        let mut st = self.src.prepare(&format!(
            "SELECT name, creation_time, last_updated_time, description, {ws} FROM registered_models ORDER BY name"
        ))?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (name, created, updated, description, workspace) = row?;
            let m = RegisteredModel {
                tags: rm_tags.remove(&name).unwrap_or_default(),
                aliases: aliases.remove(&name).unwrap_or_default(),
                creation_timestamp: created.unwrap_or(0),
                last_updated_timestamp: updated.or(created).unwrap_or(0),
                user_id: String::new(),
                description: description.unwrap_or_default(),
                latest_versions: Vec::new(),
                name: name.clone(),
            };
            self.tx
                .registered_model(&workspace, &m, last.get(&name).copied().unwrap_or(0))?;
        }
        let mut st = self.src.prepare(
            "SELECT name, version, creation_time, last_updated_time, description, user_id, current_stage,
                    source, run_id, status, status_message, run_link
             FROM model_versions ORDER BY name, version",
        )?;
        let rows = st.query_map([], |r| {
            Ok(ModelVersion {
                name: r.get(0)?,
                version: r.get(1)?,
                creation_timestamp: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                last_updated_timestamp: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                description: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                user_id: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                current_stage: r
                    .get::<_, Option<String>>(6)?
                    .unwrap_or_else(|| "None".into()),
                source: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                run_id: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                status: r
                    .get::<_, Option<String>>(9)?
                    .unwrap_or_else(|| "READY".into()),
                status_message: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                run_link: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                tags: Vec::new(),
                aliases: Vec::new(),
                model_id: String::new(),
            })
        })?;
        for row in rows {
            let mut v = row?;
            let tags = mv_tags
                .remove(&(v.name.clone(), v.version))
                .unwrap_or_default();
            if v.current_stage == "Deleted_Internal" {
                // MLflow's soft-deleted versions: gone for its readers too
                self.tally.adjust(
                    "model_versions",
                    -1,
                    "versions MLflow deleted (Deleted_Internal)",
                );
                self.tally.adjust(
                    "model_version_tags",
                    -(tags.len() as i64),
                    "tags of deleted versions",
                );
                continue;
            }
            v.tags = tags;
            v.source = self.uri_of(None, &v.source);
            self.tx.model_version(&v)?;
        }
        let left: usize = mv_tags.values().map(Vec::len).sum();
        self.tally.adjust(
            "model_version_tags",
            -(left as i64),
            "tags of versions that do not exist",
        );
        Ok(())
    }

    fn traces(&mut self, total_spans: i64) -> Result<()> {
        const TRACE_NAME: &str = "mlflow.traceName";
        const PROMOTED: [&str; 3] = [
            "mlflow.trace.session",
            "mlflow.trace.tokenUsage",
            "mlflow.trace.cost",
        ];
        // tags and metadata are merged in trace id order, not held in memory
        let mut tag_st = self
            .src
            .prepare("SELECT request_id, key, value FROM trace_tags ORDER BY request_id, key")?;
        let mut tags = KvCursor::new(tag_st.query([])?)?;
        let mut meta_st = self.src.prepare(
            "SELECT request_id, key, value FROM trace_request_metadata ORDER BY request_id, key",
        )?;
        let mut metadata = KvCursor::new(meta_st.query([])?)?;
        let mut st = self.src.prepare(
            "SELECT request_id, experiment_id, timestamp_ms, execution_time_ms, status, client_request_id,
                    request_preview, response_preview, trace_name, session_id,
                    input_tokens, output_tokens, total_tokens, cache_read_input_tokens,
                    cache_creation_input_tokens, cache_creation_input_tokens_above_1hr,
                    input_cost, output_cost, total_cost
             FROM trace_info ORDER BY request_id",
        )?;
        let mut rows = st.query([])?;
        let (mut tag_adj, mut meta_adj) = (0i64, 0i64);
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let exp: i64 = r.get(1)?;
            let mut t_tags = tags.take(&id)?;
            for t in &mut t_tags {
                if t.key == "mlflow.artifactLocation" {
                    t.value = self.uri_of(Some(exp), &t.value);
                }
            }
            let before = t_tags.len() as i64;
            t_tags.retain(|t| t.key != TRACE_NAME);
            if let Some(name) = r.get::<_, Option<String>>(8)? {
                t_tags.push(Tag::new(TRACE_NAME, name));
            }
            tag_adj += t_tags.len() as i64 - before;
            let mut meta = metadata.take(&id)?;
            let before = meta.len() as i64;
            meta.retain(|m| !PROMOTED.contains(&m.key.as_str()));
            if let Some(s) = r.get::<_, Option<String>>(9)? {
                meta.push(Tag::new(PROMOTED[0], s));
            }
            let token_keys = [
                "input_tokens",
                "output_tokens",
                "total_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
                "cache_creation_input_tokens_above_1hr",
            ];
            let mut usage = Vec::new();
            for (i, k) in token_keys.iter().enumerate() {
                if let Some(n) = r.get::<_, Option<i64>>(10 + i)? {
                    usage.push(format!("\"{k}\": {n}"));
                }
            }
            if !usage.is_empty() {
                meta.push(Tag::new(PROMOTED[1], format!("{{{}}}", usage.join(", "))));
            }
            let mut cost = Vec::new();
            for (i, k) in ["input_cost", "output_cost", "total_cost"]
                .iter()
                .enumerate()
            {
                if let Some(v) = r.get::<_, Option<f64>>(16 + i)? {
                    cost.push(format!("\"{k}\": {}", py_float(v)));
                }
            }
            if !cost.is_empty() {
                meta.push(Tag::new(PROMOTED[2], format!("{{{}}}", cost.join(", "))));
            }
            meta_adj += meta.len() as i64 - before;
            let info = TraceInfo {
                trace_id: id,
                experiment_id: r.get(1)?,
                client_request_id: r.get(5)?,
                request_time_ms: r.get(2)?,
                execution_time_ms: r.get(3)?,
                state: r.get(4)?,
                request_preview: r.get(6)?,
                response_preview: r.get(7)?,
                metadata: meta,
                tags: t_tags,
                assessments: Vec::new(),
            };
            self.tx.trace(&info)?;
        }
        self.tally.adjust(
            "trace_tags",
            tag_adj,
            "trace names kept by MLflow in trace_info.trace_name, as the mlflow.traceName tag",
        );
        self.tally.adjust(
            "trace_request_metadata",
            meta_adj,
            "session, token usage and cost kept by MLflow in trace_info columns, as metadata",
        );
        let orphans = tags.rest()?;
        self.tally
            .adjust("trace_tags", -orphans, "tags of traces that do not exist");
        let orphans = metadata.rest()?;
        self.tally.adjust(
            "trace_request_metadata",
            -orphans,
            "metadata of traces that do not exist",
        );

        let mut st = self.src.prepare(
            "SELECT trace_id, span_id, parent_span_id, name, type, status, start_time_unix_nano,
                    end_time_unix_nano, content
             FROM spans ORDER BY trace_id, start_time_unix_nano",
        )?;
        let mut rows = st.query([])?;
        let mut done: u64 = 0;
        while let Some(r) = rows.next()? {
            let trace_id: String = r.get(0)?;
            let span_id: String = r.get(1)?;
            let raw: String = r.get(8)?;
            let token_usage = convert::span_token_usage(&raw);
            let content = span_content(&raw).ok_or_else(|| {
                ImportError::Verify(format!(
                    "span {span_id} of trace {trace_id} has content that is not a JSON object"
                ))
            })?;
            let span = TraceSpan {
                trace_id,
                span_id,
                parent_span_id: r.get(2)?,
                name: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                span_type: r.get(4)?,
                status: r.get(5)?,
                start_time_ns: r.get(6)?,
                end_time_ns: r.get(7)?,
                content,
                token_usage,
                ..Default::default()
            };
            self.tx.span(&span)?;
            done += 1;
            if done.is_multiple_of(PROGRESS_EVERY) {
                (self.progress)(Progress::Rows {
                    table: "spans",
                    done,
                    total: total_spans as u64,
                });
            }
        }

        let mut st = self.src.prepare(
            "SELECT assessment_id, trace_id, name, assessment_type, value, error, created_timestamp,
                    last_updated_timestamp, source_type, source_id, span_id, rationale, overrides, valid,
                    assessment_metadata
             FROM assessments ORDER BY trace_id, created_timestamp",
        )?;
        let rows = st.query_map([], |r| {
            Ok(convert::AssessmentRow {
                assessment_id: r.get(0)?,
                trace_id: r.get(1)?,
                name: r.get(2)?,
                assessment_type: r.get(3)?,
                value: r.get(4)?,
                error: r.get(5)?,
                created_timestamp: r.get(6)?,
                last_updated_timestamp: r.get(7)?,
                source_type: r.get(8)?,
                source_id: r.get(9)?,
                span_id: r.get(10)?,
                rationale: r.get(11)?,
                overrides: r.get(12)?,
                valid: r.get(13)?,
                metadata: r.get(14)?,
            })
        })?;
        for row in rows {
            let a = row?;
            match assessment_content(&a) {
                Some(content) => self.tx.assessment(&TraceAssessment {
                    trace_id: a.trace_id.clone(),
                    assessment_id: a.assessment_id.clone(),
                    name: a.name.clone(),
                    create_time_ms: a.created_timestamp,
                    content,
                })?,
                None => {
                    self.tally.adjust(
                        "assessments",
                        -1,
                        format!("'{}' assessments (not kept by Atelier)", a.assessment_type),
                    );
                    self.warn(format!(
                        "'{}' assessments are not imported",
                        a.assessment_type
                    ));
                }
            }
        }

        let mut st = self.src.prepare(
            "SELECT source_type, source_id, destination_type, destination_id FROM entity_associations",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (stype, sid, dtype, did) = row?;
            if stype == "trace" && dtype == "run" {
                self.tx.trace_run_link(&sid, &did)?;
            } else {
                self.tally.adjust(
                    "entity_associations",
                    -1,
                    format!("{stype} → {dtype} associations (not kept by Atelier)"),
                );
            }
        }
        Ok(())
    }

    /// Copy each experiment's artifact folder that Atelier can serve.
    fn copy_artifacts(&mut self, exps: &[Experiment]) -> Result<()> {
        let Some(root) = self.root.clone() else {
            self.warn(
                "no --artifacts given: metadata only; run, model and trace artifacts were not copied"
                    .into(),
            );
            return Ok(());
        };
        (self.progress)(Progress::Stage("artifacts"));
        let (mut files, mut bytes) = (0u64, 0u64);
        for e in exps {
            let Some(rel) = artifact_relative(&e.artifact_location, Some(&root)) else {
                self.warn(format!(
                    "experiment {} keeps its artifact location {} (not under the artifact root): its artifacts were not copied",
                    e.experiment_id, e.artifact_location
                ));
                continue;
            };
            if rel.split('/').any(|s| s == ".." || s == ".") {
                return Err(ImportError::Artifacts(format!(
                    "experiment {} has an artifact location with '..' or '.' in it: {}",
                    e.experiment_id, e.artifact_location
                )));
            }
            let from = root.join(&rel);
            if !from.exists() {
                continue;
            }
            let to = self
                .opts
                .dest_artifacts
                .join(self.moved(Some(e.experiment_id), &rel).unwrap_or(rel));
            if to.exists()
                && std::fs::read_dir(&to)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                return Err(ImportError::Artifacts(format!(
                    "Atelier's artifact folder {} exists and is not empty: experiment {}'s artifacts would mix with it; import into a fresh --data-dir",
                    to.display(),
                    e.experiment_id
                )));
            }
            std::fs::create_dir_all(&to).map_err(|err| {
                ImportError::Artifacts(format!("cannot create {}: {err}", to.display()))
            })?;
            self.copied.push(to.clone());
            copy_tree(&from, &to, &mut files, &mut bytes, self.progress)?;
        }
        (self.progress)(Progress::Files { done: files, bytes });
        self.report.files = files;
        self.report.bytes = bytes;
        Ok(())
    }
}

/// Key/value rows ordered by an owner id, read alongside the owners in the
/// same order (a merge), so that nothing is held in memory per owner.
struct KvCursor<'s> {
    rows: rusqlite::Rows<'s>,
    next: Option<(String, Tag)>,
    /// Rows whose owner was never asked for (skipped over).
    orphans: i64,
}

impl<'s> KvCursor<'s> {
    fn new(mut rows: rusqlite::Rows<'s>) -> Result<Self> {
        let next = Self::read(&mut rows)?;
        Ok(KvCursor {
            rows,
            next,
            orphans: 0,
        })
    }

    fn read(rows: &mut rusqlite::Rows<'s>) -> Result<Option<(String, Tag)>> {
        Ok(match rows.next()? {
            Some(r) => Some((
                r.get::<_, String>(0)?,
                Tag::new(
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                ),
            )),
            None => None,
        })
    }

    /// The rows of `owner`; owners must be asked for in ascending order.
    fn take(&mut self, owner: &str) -> Result<Vec<Tag>> {
        let mut out = Vec::new();
        while let Some((id, _)) = &self.next {
            match id.as_str().cmp(owner) {
                std::cmp::Ordering::Less => self.orphans += 1,
                std::cmp::Ordering::Equal => {
                    if let Some((_, t)) = self.next.take() {
                        out.push(t);
                    }
                }
                std::cmp::Ordering::Greater => break,
            }
            self.next = Self::read(&mut self.rows)?;
        }
        Ok(out)
    }

    /// How many rows belonged to no owner that was asked for.
    fn rest(mut self) -> Result<i64> {
        while self.next.is_some() {
            self.orphans += 1;
            self.next = Self::read(&mut self.rows)?;
        }
        Ok(self.orphans)
    }
}

fn copy_tree(
    from: &Path,
    to: &Path,
    files: &mut u64,
    bytes: &mut u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let err = |p: &Path, e: std::io::Error| {
        ImportError::Artifacts(format!("copying {}: {e}", p.display()))
    };
    let entries = std::fs::read_dir(from).map_err(|e| err(from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| err(from, e))?;
        let kind = entry.file_type().map_err(|e| err(&entry.path(), e))?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| err(&dest, e))?;
            copy_tree(&entry.path(), &dest, files, bytes, progress)?;
        } else if kind.is_file() {
            *bytes += std::fs::copy(entry.path(), &dest).map_err(|e| err(&entry.path(), e))?;
            *files += 1;
            if files.is_multiple_of(1000) {
                progress(Progress::Files {
                    done: *files,
                    bytes: *bytes,
                });
            }
        } else {
            tracing::warn!(path = %entry.path().display(), "not a file or folder (a symlink?): not copied");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_folders_move_where_atelier_gives_the_place_to_someone_else() {
        // MLflow without workspaces: in place
        assert!(!must_move(5, "default", "5"));
        assert!(!must_move(5, "default", "custom/place"));
        // MLflow's workspace layout, another project, another experiment, the root
        assert!(must_move(5, "default", "workspaces/default/5"));
        assert!(must_move(5, "default", "projects/team-a/x"));
        assert!(must_move(5, "default", "7"));
        assert!(must_move(5, "default", ""));
        assert!(
            !must_move(5, "default", "007"),
            "not an id the server writes"
        );
        // outside the default project there is no other place
        assert!(must_move(5, "team-a", "workspaces/team-a/5"));
        assert!(must_move(5, "team-a", "custom"));
        assert!(!must_move(5, "team-a", "5"));
        assert!(nested("a/b", "a") && nested("a", "a/b") && nested("a", "a"));
        assert!(!nested("a/bc", "a/b") && !nested("5", "50"));
    }

    #[test]
    fn key_values_are_merged_with_their_owners_in_order() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE kv (id TEXT, k TEXT, v TEXT);
             INSERT INTO kv VALUES ('a','x','1'), ('b','y','2'), ('b','z',NULL), ('c','w','3'), ('e','q','4');",
        )
        .unwrap();
        let mut st = c.prepare("SELECT id, k, v FROM kv ORDER BY id, k").unwrap();
        let mut cur = KvCursor::new(st.query([]).unwrap()).unwrap();
        assert_eq!(
            cur.take("b").unwrap(),
            vec![Tag::new("y", "2"), Tag::new("z", "")]
        );
        assert!(cur.take("d").unwrap().is_empty());
        assert_eq!(cur.rest().unwrap(), 3, "a, c and e had no owner asked for");
    }

    #[test]
    fn sqlite_uris_name_files_and_other_databases_are_refused() {
        assert_eq!(
            source_path("sqlite:///mlflow.db").unwrap(),
            PathBuf::from("mlflow.db")
        );
        assert_eq!(
            source_path("sqlite:////srv/m.db").unwrap(),
            PathBuf::from("/srv/m.db")
        );
        assert_eq!(
            source_path("/srv/m.db").unwrap(),
            PathBuf::from("/srv/m.db")
        );
        for uri in [
            "postgresql://u@h/db",
            "mysql+pymysql://h/db",
            "mssql://h/db",
        ] {
            let e = source_path(uri).unwrap_err().to_string();
            assert!(e.contains("only SQLite"), "{e}");
        }
        assert!(source_path("sqlite://").is_err());
    }

    #[test]
    fn artifact_uris_under_the_root_are_served_by_atelier() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(
            rewrite_uri("mlflow-artifacts:/1/abc/artifacts", None),
            "mlflow-artifacts:/1/abc/artifacts"
        );
        let local = format!("{}/2/abc/artifacts", root.display());
        assert_eq!(
            rewrite_uri(&local, Some(&root)),
            "mlflow-artifacts:/2/abc/artifacts"
        );
        assert_eq!(
            rewrite_uri(&format!("file://{local}"), Some(&root)),
            "mlflow-artifacts:/2/abc/artifacts"
        );
        assert_eq!(rewrite_uri("s3://bucket/x", Some(&root)), "s3://bucket/x");
        assert_eq!(rewrite_uri("/elsewhere/x", Some(&root)), "/elsewhere/x");
    }

    #[test]
    fn a_database_that_is_not_mlflow_or_of_another_revision_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE t (a)").unwrap();
        let e = open_source(&p).unwrap_err().to_string();
        assert!(e.contains("not an MLflow tracking database"), "{e}");
        c.execute_batch("CREATE TABLE alembic_version (version_num TEXT); INSERT INTO alembic_version VALUES ('abc123')")
            .unwrap();
        let e = open_source(&p).unwrap_err().to_string();
        assert!(e.contains("'abc123'") && e.contains("dc11669786a5"), "{e}");
    }
}
