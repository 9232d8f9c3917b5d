//! Bulk import with the source's own ids and timestamps (`atelier import
//! mlflow`). Everything an import writes happens inside one write
//! transaction ([`SqlStore::import`]): it commits whole or not at all.
//!
//! Rows are inserted as they are given: no id is generated, no timestamp is
//! set to "now", no `last_update_time` is touched. An id that exists already
//! is refused (`AlreadyExists`, naming it) rather than overwritten, so an
//! import never merges silently into what a store holds.

use std::collections::{BTreeMap, HashMap};

use crate::db::Val as SqlValue;
use crate::db::{Conn, OptionalExtension, params, params_from_iter};

use super::{CHUNK, POINTS_PER_INSERT, not_found, placeholders, point_rows};
use crate::*;

/// What an import can ask about before it writes: which of some ids exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportEntity {
    Experiment,
    Run,
    LoggedModel,
    RegisteredModel,
    Trace,
}

impl ImportEntity {
    fn table_column(self) -> (&'static str, &'static str) {
        match self {
            ImportEntity::Experiment => ("experiments", "experiment_id"),
            ImportEntity::Run => ("runs", "run_uuid"),
            ImportEntity::LoggedModel => ("logged_models", "model_id"),
            ImportEntity::RegisteredModel => ("registered_models", "name"),
            ImportEntity::Trace => ("trace_info", "trace_id"),
        }
    }
}

/// One point of a metric history, in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPoint {
    pub step: i64,
    pub timestamp: i64,
    /// NaN is stored as NaN (the `is_nan` flag).
    pub value: f64,
}

/// A run's link to a dataset, with the input's tags (e.g. `mlflow.data.context`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportDatasetInput {
    pub run_id: String,
    pub experiment_id: i64,
    pub dataset: Dataset,
    pub tags: Vec<Tag>,
}

/// The write side of an import: one open write transaction.
pub struct ImportTx<'a, 'c> {
    tx: &'a Conn<'c>,
    /// (run, key) → series id, for the series this import created.
    series: HashMap<(String, String), i64>,
}

/// Row counts of the tables an import writes, by a name for each
/// (`metric_points`, `logged_model_metrics`, `input_tags`, … — see
/// [`ImportTx::counts`]).
pub type TableCounts = BTreeMap<&'static str, i64>;

fn clash(what: &str, id: &str) -> StoreError {
    StoreError::AlreadyExists(format!(
        "{what} '{id}' already exists in this Atelier store"
    ))
}

/// A UNIQUE/PRIMARY KEY violation as `AlreadyExists` naming the entity.
fn on_conflict(e: crate::db::DbError, what: &str, id: &str) -> StoreError {
    if e.is_unique_violation() {
        clash(what, id)
    } else {
        StoreError::Database(e)
    }
}

fn split_nan(v: f64) -> (Option<f64>, i64) {
    if v.is_nan() { (None, 1) } else { (Some(v), 0) }
}

impl SqlStore {
    /// Run `f` inside one write transaction: all it writes commits together
    /// when it returns `Ok`, nothing does when it returns `Err`.
    pub fn import<T>(&self, f: impl FnOnce(&mut ImportTx) -> Result<T>) -> Result<T> {
        self.write(|tx| {
            let mut it = ImportTx {
                tx,
                series: HashMap::new(),
            };
            f(&mut it)
        })
    }
}

impl ImportTx<'_, '_> {
    /// Which of `ids` exist already (experiment ids as decimal strings).
    pub fn existing(&self, entity: ImportEntity, ids: &[String]) -> Result<Vec<String>> {
        let (table, col) = entity.table_column();
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            // experiment ids are integers: one that is not names none (and
            // PostgreSQL refuses text where its BIGINT column is compared)
            let args: Vec<SqlValue> = chunk
                .iter()
                .filter_map(|id| match (entity, id.parse::<i64>()) {
                    (ImportEntity::Experiment, Ok(n)) => Some(SqlValue::Integer(n)),
                    (ImportEntity::Experiment, Err(_)) => None,
                    _ => Some(SqlValue::Text(id.clone())),
                })
                .collect();
            if args.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT CAST({col} AS TEXT) FROM {table} WHERE {col} IN ({})",
                placeholders(args.len())
            );
            let mut st = self.tx.prepare(&sql)?;
            for r in st.query_map(params_from_iter(args), |r| r.get::<_, String>(0))? {
                out.push(r?);
            }
        }
        Ok(out)
    }

    /// Which of `names` (project, experiment name) are taken already:
    /// experiment names are unique within a project.
    pub fn existing_experiment_names(
        &self,
        names: &[(String, String)],
    ) -> Result<Vec<(String, String)>> {
        let mut st = self
            .tx
            .prepare_cached("SELECT 1 FROM experiments WHERE workspace = ? AND name = ?")?;
        let mut out = Vec::new();
        for (ws, name) in names {
            if st.exists(params![ws, name])? {
                out.push((ws.clone(), name.clone()));
            }
        }
        Ok(out)
    }

    /// Make project `w` unless it exists; whether it was made. An import
    /// may bring an MLflow workspace into a project made beforehand (the
    /// ids and names it brings are checked for clashes one by one).
    pub fn project(&self, w: &Workspace) -> Result<bool> {
        check_workspace_name(&w.name).map_err(StoreError::InvalidParameter)?;
        // a deleted project's name (never a project's too: a name is freed
        // before it is made again): its old folder is the default project's
        if super::workspaces::retired(self.tx, &w.name)? {
            return Err(StoreError::InvalidState(format!(
                "the name belonged to a deleted project; create '{}' through the server first \
                 (it frees the name once projects/{}/ is empty), then import",
                w.name, w.name
            )));
        }
        let made = self
            .tx
            .prepare_cached(
                "INSERT INTO workspaces (name, description, default_artifact_root, creation_time)
                 VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![
                w.name,
                w.description,
                w.default_artifact_root,
                w.creation_time
            ])?;
        Ok(made == 1)
    }

    /// Whether experiment `id` exists and holds nothing: no tags, runs,
    /// datasets, logged models or traces (a fresh store's Default experiment).
    pub fn experiment_is_empty(&self, id: i64) -> Result<Option<bool>> {
        let exists = self
            .tx
            .query_row(
                "SELECT 1 FROM experiments WHERE experiment_id = ?",
                [id],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let used: i64 = self.tx.query_row(
            "SELECT (SELECT COUNT(*) FROM experiment_tags WHERE experiment_id = ?1)
                  + (SELECT COUNT(*) FROM runs WHERE experiment_id = ?1)
                  + (SELECT COUNT(*) FROM datasets WHERE experiment_id = ?1)
                  + (SELECT COUNT(*) FROM logged_models WHERE experiment_id = ?1)
                  + (SELECT COUNT(*) FROM trace_info WHERE experiment_id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        Ok(Some(used == 0))
    }

    /// Remove an experiment that [`ImportTx::experiment_is_empty`] found
    /// empty, so that the source's experiment with that id replaces it.
    pub fn drop_empty_experiment(&self, id: i64) -> Result<()> {
        if self.experiment_is_empty(id)? != Some(true) {
            return Err(StoreError::InvalidState(format!(
                "experiment {id} is not empty; it cannot be replaced"
            )));
        }
        self.tx
            .execute("DELETE FROM experiments WHERE experiment_id = ?", [id])?;
        Ok(())
    }

    /// Row counts of every table an import writes.
    pub fn counts(&self) -> Result<TableCounts> {
        let q: [(&'static str, &str); 27] = [
            ("workspaces", "SELECT COUNT(*) FROM workspaces"),
            ("experiments", "SELECT COUNT(*) FROM experiments"),
            ("experiment_tags", "SELECT COUNT(*) FROM experiment_tags"),
            ("runs", "SELECT COUNT(*) FROM runs"),
            ("params", "SELECT COUNT(*) FROM params"),
            ("tags", "SELECT COUNT(*) FROM tags"),
            ("metric_points", "SELECT COUNT(*) FROM metric_points"),
            ("latest_metrics", "SELECT COUNT(*) FROM latest_metrics"),
            ("datasets", "SELECT COUNT(*) FROM datasets"),
            ("run_inputs", "SELECT COUNT(*) FROM run_inputs"),
            (
                "model_inputs",
                "SELECT COUNT(*) FROM run_models WHERE direction = 'input'",
            ),
            (
                "model_outputs",
                "SELECT COUNT(*) FROM run_models WHERE direction = 'output'",
            ),
            ("logged_models", "SELECT COUNT(*) FROM logged_models"),
            (
                "logged_model_params",
                "SELECT COUNT(*) FROM logged_model_params",
            ),
            (
                "logged_model_tags",
                "SELECT COUNT(*) FROM logged_model_tags",
            ),
            (
                "logged_model_metrics",
                "SELECT COUNT(*) FROM metric_points WHERE model_id IS NOT NULL",
            ),
            (
                "registered_models",
                "SELECT COUNT(*) FROM registered_models",
            ),
            (
                "registered_model_tags",
                "SELECT COUNT(*) FROM registered_model_tags",
            ),
            (
                "registered_model_aliases",
                "SELECT COUNT(*) FROM registered_model_aliases",
            ),
            ("model_versions", "SELECT COUNT(*) FROM model_versions"),
            (
                "model_version_tags",
                "SELECT COUNT(*) FROM model_version_tags",
            ),
            ("trace_info", "SELECT COUNT(*) FROM trace_info"),
            ("trace_tags", "SELECT COUNT(*) FROM trace_tags"),
            (
                "trace_request_metadata",
                "SELECT COUNT(*) FROM trace_request_metadata",
            ),
            ("spans", "SELECT COUNT(*) FROM trace_spans"),
            ("assessments", "SELECT COUNT(*) FROM trace_assessments"),
            ("trace_run_links", "SELECT COUNT(*) FROM trace_run_links"),
        ];
        let mut out = TableCounts::new();
        for (name, sql) in q {
            out.insert(name, self.tx.query_row(sql, [], |r| r.get(0))?);
        }
        // an input's tags are a JSON list, counted here: SQLite's and
        // PostgreSQL's JSON functions differ
        let mut input_tags = 0i64;
        let mut st = self.tx.prepare("SELECT tags FROM run_inputs")?;
        for tags in st.query_map([], |r| r.get::<_, String>(0))? {
            let tags: Vec<serde_json::Value> = serde_json::from_str(&tags?).map_err(|e| {
                StoreError::Internal(format!("a run input's tags are not a JSON list: {e}"))
            })?;
            input_tags += tags.len() as i64;
        }
        out.insert("input_tags", input_tags);
        Ok(out)
    }

    // ------------------------------------------------------------ tracking

    /// An experiment with its id, name, location, lifecycle, times and tags.
    pub fn experiment(&self, e: &Experiment) -> Result<()> {
        let id = e.experiment_id.to_string();
        self.tx
            .prepare_cached(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                e.experiment_id,
                e.name,
                e.artifact_location,
                e.lifecycle_stage.as_str(),
                e.creation_time,
                e.last_update_time,
                e.workspace
            ])
            .map_err(|err| on_conflict(err, "experiment (id or name)", &format!("{id} {}", e.name)))?;
        for t in &e.tags {
            self.tx
                .prepare_cached(
                    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
                     ON CONFLICT(experiment_id, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![e.experiment_id, t.key, t.value])?;
        }
        Ok(())
    }

    /// A run (its info; `deleted_time` for a deleted one).
    pub fn run(&self, r: &RunInfo, deleted_time: Option<i64>) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage, deleted_time)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                r.run_id,
                r.run_name,
                r.experiment_id,
                r.user_id,
                r.status.as_str(),
                r.start_time,
                r.end_time,
                r.artifact_uri,
                r.lifecycle_stage.as_str(),
                deleted_time
            ])
            .map_err(|e| on_conflict(e, "run", &r.run_id))?;
        Ok(())
    }

    /// Params of a run (as they are: no immutability check).
    pub fn params(&self, run_id: &str, params: &[Param]) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)
             ON CONFLICT(run_uuid, key) DO UPDATE SET value = excluded.value",
        )?;
        for p in params {
            st.execute(params![run_id, p.key, p.value])?;
        }
        Ok(())
    }

    /// Tags of a run. The run's name is its own column, given with the run.
    pub fn run_tags(&self, run_id: &str, tags: &[Tag]) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)
             ON CONFLICT(run_uuid, key) DO UPDATE SET value = excluded.value",
        )?;
        for t in tags {
            st.execute(params![run_id, t.key, t.value])?;
        }
        Ok(())
    }

    fn series(&mut self, run_id: &str, key: &str) -> Result<i64> {
        if let Some(&id) = self.series.get(&(run_id.to_string(), key.to_string())) {
            return Ok(id);
        }
        let existing: Option<i64> = self
            .tx
            .prepare_cached("SELECT series_id FROM metric_series WHERE run_uuid = ? AND key = ?")?
            .query_row([run_id, key], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => self
                .tx
                .prepare_cached(
                    "INSERT INTO metric_series (run_uuid, key) VALUES (?, ?) RETURNING series_id",
                )?
                .query_row([run_id, key], |r| r.get(0))?,
        };
        self.series
            .insert((run_id.to_string(), key.to_string()), id);
        Ok(id)
    }

    /// Points of one metric of one run, appended in the order given (the
    /// order a history reads back in for equal step and timestamp).
    pub fn metric_points(&mut self, run_id: &str, key: &str, points: &[ImportPoint]) -> Result<()> {
        let sid = self.series(run_id, key)?;
        for chunk in points.chunks(POINTS_PER_INSERT) {
            let mut sql = format!(
                "INSERT INTO {} (series_id, step, timestamp, value, is_nan) VALUES ",
                point_rows(self.tx)
            );
            let mut args: Vec<SqlValue> = Vec::with_capacity(chunk.len() * 5);
            for (i, p) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 {
                    "(?,?,?,?,?)"
                } else {
                    ",(?,?,?,?,?)"
                });
                let (v, nan) = split_nan(p.value);
                args.push(SqlValue::Integer(sid));
                args.push(SqlValue::Integer(p.step));
                args.push(SqlValue::Integer(p.timestamp));
                args.push(v.map_or(SqlValue::Null, SqlValue::Real));
                args.push(SqlValue::Integer(nan));
            }
            self.tx
                .prepare_cached(&sql)?
                .execute(params_from_iter(args))?;
        }
        Ok(())
    }

    /// The latest value of a run's metric, as the source computed it.
    pub fn latest_metric(&self, run_id: &str, m: &Metric) -> Result<()> {
        let (v, nan) = split_nan(m.value);
        self.tx
            .prepare_cached(
                "INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT(run_uuid, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan,
                    timestamp = excluded.timestamp, step = excluded.step",
            )?
            .execute(params![run_id, m.key, v, nan, m.timestamp, m.step])?;
        Ok(())
    }

    /// A logged model's metric point (`m.model_id` set): attached to the
    /// run's own point with the same key, step, timestamp and value that has
    /// no model yet (MLflow writes such a point to both the run's history and
    /// the model's metrics), else appended to the run's history. Returns
    /// whether a new point was appended.
    pub fn model_metric(&mut self, run_id: &str, m: &Metric) -> Result<bool> {
        let sid = self.series(run_id, &m.key)?;
        let (v, nan) = split_nan(m.value);
        let rowid: Option<i64> = self
            .tx
            .prepare_cached(&format!(
                "SELECT rowid FROM {}
                 WHERE series_id = ?1 AND step = ?2 AND timestamp = ?3 AND model_id IS NULL
                   AND ((?5 = 1 AND is_nan = 1) OR (?5 = 0 AND value = ?4))
                 ORDER BY rowid LIMIT 1",
                point_rows(self.tx)
            ))?
            .query_row(params![sid, m.step, m.timestamp, v, nan], |r| r.get(0))
            .optional()?;
        match rowid {
            Some(rowid) => {
                self.tx
                    .prepare_cached(&format!(
                        "UPDATE {} SET model_id = ?, dataset_name = ?, dataset_digest = ? WHERE rowid = ?",
                        point_rows(self.tx)
                    ))?
                    .execute(params![m.model_id, m.dataset_name, m.dataset_digest, rowid])?;
                Ok(false)
            }
            None => {
                self.tx
                    .prepare_cached(&format!(
                        "INSERT INTO {} (series_id, step, timestamp, value, is_nan, dataset_name, dataset_digest, model_id)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        point_rows(self.tx)
                    ))?
                    .execute(params![
                        sid,
                        m.step,
                        m.timestamp,
                        v,
                        nan,
                        m.dataset_name,
                        m.dataset_digest,
                        m.model_id
                    ])?;
                Ok(true)
            }
        }
    }

    /// A dataset of an experiment (once per experiment, name and digest);
    /// returns its id in this store.
    pub fn dataset(&self, experiment_id: i64, ds: &Dataset) -> Result<i64> {
        self.tx
            .prepare_cached(
                "INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema, profile)
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(experiment_id, name, digest) DO NOTHING",
            )?
            .execute(params![
                experiment_id,
                ds.name,
                ds.digest,
                ds.source_type,
                ds.source,
                ds.schema,
                ds.profile
            ])?;
        Ok(self.tx.query_row(
            "SELECT dataset_id FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
            params![experiment_id, ds.name, ds.digest],
            |r| r.get(0),
        )?)
    }

    /// A run's dataset input with its tags.
    pub fn dataset_input(&self, input: &ImportDatasetInput) -> Result<()> {
        let dataset_id = self.dataset(input.experiment_id, &input.dataset)?;
        let tags: Vec<(&str, &str)> = input
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        let tags_json =
            serde_json::to_string(&tags).map_err(|e| StoreError::Internal(e.to_string()))?;
        self.tx
            .prepare_cached("INSERT INTO run_inputs (run_uuid, dataset_id, tags) VALUES (?, ?, ?)")?
            .execute(params![input.run_id, dataset_id, tags_json])
            .map_err(|e| {
                on_conflict(
                    e,
                    "dataset input",
                    &format!("{} of run {}", input.dataset.name, input.run_id),
                )
            })?;
        Ok(())
    }

    /// A run's model input (`output = false`) or output (with its step).
    pub fn run_model(&self, run_id: &str, model_id: &str, output: bool, step: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO run_models (run_uuid, model_id, direction, step) VALUES (?, ?, ?, ?)
                 ON CONFLICT(run_uuid, direction, model_id) DO UPDATE SET step = excluded.step",
            )?
            .execute(params![
                run_id,
                model_id,
                if output { "output" } else { "input" },
                step
            ])?;
        Ok(())
    }

    /// A logged model with its tags and params (metrics go through
    /// [`ImportTx::model_metric`]).
    pub fn logged_model(&self, m: &LoggedModel) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, status, model_type, source_run_id, creation_timestamp_ms, last_updated_timestamp_ms, lifecycle_stage)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                m.model_id,
                m.experiment_id,
                m.name,
                m.artifact_uri,
                m.status,
                m.model_type,
                m.source_run_id,
                m.creation_timestamp_ms,
                m.last_updated_timestamp_ms,
                m.lifecycle_stage.as_str()
            ])
            .map_err(|e| on_conflict(e, "logged model", &m.model_id))?;
        for (table, items) in [
            ("logged_model_tags", &m.tags),
            ("logged_model_params", &m.params),
        ] {
            let mut st = self.tx.prepare_cached(&format!(
                "INSERT INTO {table} (model_id, key, value) VALUES (?, ?, ?)
                 ON CONFLICT(model_id, key) DO UPDATE SET value = excluded.value"
            ))?;
            for t in items.iter() {
                st.execute(params![m.model_id, t.key, t.value])?;
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ registry

    /// A registered model of project `workspace` with its tags and aliases
    /// (`last_version`: the highest version number it ever had, so numbers
    /// are not reused). Names are unique across projects.
    pub fn registered_model(
        &self,
        workspace: &str,
        m: &RegisteredModel,
        last_version: i64,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO registered_models (name, creation_timestamp, last_updated_timestamp, user_id, description, last_version, workspace)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                m.name,
                m.creation_timestamp,
                m.last_updated_timestamp,
                m.user_id,
                m.description,
                last_version,
                workspace
            ])
            .map_err(|e| on_conflict(e, "registered model", &m.name))?;
        let mut st = self.tx.prepare_cached(
            "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)
             ON CONFLICT(name, key) DO UPDATE SET value = excluded.value",
        )?;
        for t in &m.tags {
            st.execute(params![m.name, t.key, t.value])?;
        }
        let mut st = self.tx.prepare_cached(
            "INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?)
             ON CONFLICT(name, alias) DO UPDATE SET version = excluded.version",
        )?;
        for a in &m.aliases {
            st.execute(params![m.name, a.alias, a.version])?;
        }
        Ok(())
    }

    /// A model version with its tags.
    pub fn model_version(&self, v: &ModelVersion) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO model_versions (name, version, creation_timestamp, last_updated_timestamp, user_id, current_stage, description, source, run_id, status, status_message, run_link, model_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                v.name,
                v.version,
                v.creation_timestamp,
                v.last_updated_timestamp,
                v.user_id,
                v.current_stage,
                v.description,
                v.source,
                v.run_id,
                v.status,
                v.status_message,
                v.run_link,
                v.model_id
            ])
            .map_err(|e| on_conflict(e, "model version", &format!("{} {}", v.name, v.version)))?;
        let mut st = self.tx.prepare_cached(
            "INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?)
             ON CONFLICT(name, version, key) DO UPDATE SET value = excluded.value",
        )?;
        for t in &v.tags {
            st.execute(params![v.name, v.version, t.key, t.value])?;
        }
        Ok(())
    }

    // -------------------------------------------------------------- traces

    /// A trace's info with its tags and request metadata, as given (no
    /// artifact location or finalized marker is added).
    pub fn trace(&self, t: &TraceInfo) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO trace_info (trace_id, experiment_id, client_request_id, timestamp_ms, execution_time_ms, status, request_preview, response_preview)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                t.trace_id,
                t.experiment_id,
                t.client_request_id,
                t.request_time_ms,
                t.execution_time_ms,
                t.state,
                t.request_preview,
                t.response_preview
            ])
            .map_err(|e| on_conflict(e, "trace", &t.trace_id))?;
        for (table, items) in [
            ("trace_tags", &t.tags),
            ("trace_request_metadata", &t.metadata),
        ] {
            let mut st = self.tx.prepare_cached(&format!(
                "INSERT INTO {table} (trace_id, key, value) VALUES (?, ?, ?)
                 ON CONFLICT(trace_id, key) DO UPDATE SET value = excluded.value"
            ))?;
            for kv in items.iter() {
                st.execute(params![t.trace_id, kv.key, kv.value])?;
            }
        }
        Ok(())
    }

    /// A span of an imported trace (its `content` in the server's format).
    pub fn span(&self, s: &TraceSpan) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO trace_spans (trace_id, span_id, parent_span_id, name, span_type, status, start_time_ns, end_time_ns, content,
                                          input_tokens, output_tokens, total_tokens)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                s.trace_id,
                s.span_id,
                s.parent_span_id,
                s.name,
                s.span_type,
                s.status,
                s.start_time_ns,
                s.end_time_ns,
                s.content,
                s.token_usage.map(|u| u.input_tokens),
                s.token_usage.map(|u| u.output_tokens),
                s.token_usage.map(|u| u.total_tokens)
            ])
            .map_err(|e| on_conflict(e, "span", &format!("{} of trace {}", s.span_id, s.trace_id)))?;
        Ok(())
    }

    /// An assessment of an imported trace (its `content` in the server's format).
    pub fn assessment(&self, a: &TraceAssessment) -> Result<()> {
        let known = self
            .tx
            .prepare_cached("SELECT 1 FROM trace_info WHERE trace_id = ?")?
            .query_row([&a.trace_id], |_| Ok(()))
            .optional()?;
        if known.is_none() {
            return Err(not_found(format!(
                "Trace with ID '{}' not found.",
                a.trace_id
            )));
        }
        self.tx
            .prepare_cached(
                "INSERT INTO trace_assessments (trace_id, assessment_id, name, create_time_ms, content)
                 VALUES (?, ?, ?, ?, ?)",
            )?
            .execute(params![
                a.trace_id,
                a.assessment_id,
                a.name,
                a.create_time_ms,
                a.content
            ])
            .map_err(|e| on_conflict(e, "assessment", &a.assessment_id))?;
        Ok(())
    }

    /// A trace linked to a run after the fact.
    pub fn trace_run_link(&self, trace_id: &str, run_id: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO trace_run_links (trace_id, run_id) VALUES (?, ?)
                 ON CONFLICT(trace_id, run_id) DO NOTHING",
            )?
            .execute(params![trace_id, run_id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (crate::scratch::Scratch, SqlStore) {
        let mut sc = crate::scratch::Scratch::new().expect("a scratch store");
        let s = sc.take();
        (sc, s)
    }

    fn exp(id: i64, name: &str) -> Experiment {
        Experiment {
            experiment_id: id,
            name: name.into(),
            artifact_location: format!("mlflow-artifacts:/{id}"),
            lifecycle_stage: Lifecycle::Active,
            creation_time: 1000,
            last_update_time: 2000,
            tags: vec![Tag::new("team", "x")],
            workspace: DEFAULT_WORKSPACE.into(),
        }
    }

    fn run(id: &str, exp: i64) -> RunInfo {
        RunInfo {
            run_id: id.into(),
            run_name: "r".into(),
            experiment_id: exp,
            user_id: "me".into(),
            status: RunStatus::Finished,
            start_time: Some(5),
            end_time: Some(9),
            artifact_uri: format!("mlflow-artifacts:/{exp}/{id}/artifacts"),
            lifecycle_stage: Lifecycle::Active,
        }
    }

    #[test]
    fn keeps_ids_times_and_histories_and_attaches_model_metrics() {
        let (_d, s) = store();
        s.import(|tx| {
            assert_eq!(tx.experiment_is_empty(0)?, Some(true));
            tx.drop_empty_experiment(0)?;
            let mut e0 = exp(0, "Default");
            e0.tags.clear();
            tx.experiment(&e0)?;
            tx.experiment(&exp(7, "seven"))?;
            tx.run(&run("abc", 7), None)?;
            let pts = [
                ImportPoint {
                    step: 0,
                    timestamp: 10,
                    value: 1.0,
                },
                ImportPoint {
                    step: 1,
                    timestamp: 11,
                    value: f64::NAN,
                },
            ];
            tx.metric_points("abc", "loss", &pts)?;
            let mut m = Metric::new("loss", 1.0, 10, 0);
            m.model_id = Some("m-1".into());
            assert!(!tx.model_metric("abc", &m)?, "attached to the run's point");
            m.timestamp = 12;
            assert!(tx.model_metric("abc", &m)?, "no such run point: appended");
            tx.latest_metric("abc", &Metric::new("loss", f64::NAN, 11, 1))?;
            let c = tx.counts()?;
            assert_eq!(c["metric_points"], 3);
            assert_eq!(c["logged_model_metrics"], 2);
            Ok(())
        })
        .unwrap();
        let e = s.get_experiment(7).unwrap();
        assert_eq!((e.creation_time, e.last_update_time), (1000, 2000));
        assert_eq!(s.get_experiment(0).unwrap().creation_time, 1000);
        let r = s.get_run("abc").unwrap();
        assert_eq!(r.info.start_time, Some(5));
        assert!(r.metrics[0].value.is_nan());
        let h = s.metric_history("abc", "loss", 100, None).unwrap().items;
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].model_id.as_deref(), Some("m-1"));
    }

    #[test]
    fn a_clash_is_refused_and_nothing_is_written() {
        let (_d, s) = store();
        let id = s.create_experiment("taken", None, &[]).unwrap();
        let err = s
            .import(|tx| {
                assert_eq!(
                    tx.existing(ImportEntity::Experiment, &[id.to_string(), "99".into()])?,
                    vec![id.to_string()]
                );
                tx.experiment(&exp(99, "new"))?;
                tx.experiment(&exp(id, "other"))?;
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists(_)), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(s.get_experiment(99).is_err(), "rolled back");
        assert_eq!(
            s.import(|tx| tx.experiment_is_empty(id)).unwrap(),
            Some(true)
        );
    }

    #[test]
    fn projects_keep_their_experiments_names_and_models() {
        let (_d, s) = store();
        s.create_experiment("shared", None, &[]).unwrap();
        let team = |name: &str| Workspace {
            name: name.into(),
            description: Some("from MLflow".into()),
            default_artifact_root: None,
            creation_time: 5,
        };
        s.import(|tx| {
            assert!(tx.project(&team("team-a"))?, "made");
            assert!(!tx.project(&team("team-a"))?, "made once");
            assert!(!tx.project(&team(DEFAULT_WORKSPACE))?, "always there");
            assert!(matches!(
                tx.project(&team("../x")),
                Err(StoreError::InvalidParameter(_))
            ));
            // a deleted project's name is not handed out
            tx.project(&team("team-c"))?;
            Ok(())
        })
        .unwrap();
        s.delete_workspace("team-c", WorkspaceDeletion::Restrict)
            .unwrap();
        s.import(|tx| {
            assert!(matches!(
                tx.project(&team("team-c")),
                Err(StoreError::InvalidState(_))
            ));
            // a name is taken within its project only
            let asked = [
                (DEFAULT_WORKSPACE.to_string(), "shared".to_string()),
                ("team-a".to_string(), "shared".to_string()),
            ];
            assert_eq!(
                tx.existing_experiment_names(&asked)?,
                vec![asked[0].clone()]
            );
            tx.experiment(&Experiment {
                workspace: "team-a".into(),
                ..exp(8, "shared")
            })?;
            tx.registered_model(
                "team-a",
                &RegisteredModel {
                    name: "m".into(),
                    creation_timestamp: 1,
                    last_updated_timestamp: 2,
                    user_id: String::new(),
                    description: String::new(),
                    tags: vec![],
                    aliases: vec![],
                    latest_versions: vec![],
                },
                0,
            )?;
            assert_eq!(tx.counts()?["workspaces"], 2, "default and team-a");
            Ok(())
        })
        .unwrap();
        assert_eq!(s.get_experiment(8).unwrap().workspace, "team-a");
        assert_eq!(
            s.get_experiment_by_name_in("team-a", "shared")
                .unwrap()
                .experiment_id,
            8
        );
        assert_eq!(s.registered_model_workspace("m").unwrap(), "team-a");
        let made = s.get_workspace("team-a").unwrap();
        assert_eq!(
            (made.description.as_deref(), made.creation_time),
            (Some("from MLflow"), 5)
        );
    }

    #[test]
    fn counts_input_tags_and_asks_about_any_id() {
        let (_d, s) = store();
        s.import(|tx| {
            tx.experiment(&exp(7, "seven"))?;
            tx.run(&run("abc", 7), None)?;
            tx.dataset_input(&ImportDatasetInput {
                run_id: "abc".into(),
                experiment_id: 7,
                dataset: Dataset {
                    name: "d".into(),
                    digest: "x".into(),
                    source_type: "local".into(),
                    source: "{}".into(),
                    schema: None,
                    profile: None,
                },
                tags: vec![
                    Tag::new("mlflow.data.context", "training"),
                    Tag::new("other", "y"),
                ],
            })?;
            tx.params("abc", &[Tag::new("p", "1"), Tag::new("p", "2")])?;
            tx.trace_run_link("t-1", "abc")?;
            tx.trace_run_link("t-1", "abc")?;
            let c = tx.counts()?;
            assert_eq!((c["run_inputs"], c["input_tags"]), (1, 2));
            assert_eq!((c["params"], c["trace_run_links"]), (1, 1));
            // an experiment id that is not a number names no experiment
            assert_eq!(
                tx.existing(ImportEntity::Experiment, &["7".into(), "seven".into()])?,
                vec!["7".to_string()]
            );
            assert!(
                tx.existing(ImportEntity::Experiment, &["x".into()])?
                    .is_empty()
            );
            assert_eq!(
                tx.existing(ImportEntity::Run, &["abc".into(), "7".into()])?,
                vec!["abc".to_string()]
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(s.get_run("abc").unwrap().params, vec![Tag::new("p", "2")]);
    }

    #[test]
    fn runs_without_a_start_time_come_last_in_a_search() {
        let (_d, s) = store();
        s.import(|tx| {
            tx.experiment(&exp(7, "seven"))?;
            let mut unstarted = run("none", 7);
            unstarted.start_time = None;
            tx.run(&unstarted, None)?;
            tx.run(&run("early", 7), None)?;
            let mut late = run("late", 7);
            late.start_time = Some(50);
            tx.run(&late, None)
        })
        .unwrap();
        let found = s
            .search_runs(&SearchRuns {
                experiment_ids: vec![7],
                max_results: 10,
                ..Default::default()
            })
            .unwrap();
        let ids: Vec<&str> = found.items.iter().map(|r| r.info.run_id.as_str()).collect();
        assert_eq!(
            ids,
            ["late", "early", "none"],
            "newest first, never started last"
        );
    }
}
