//! MLflow 3 GenAI evaluation datasets and registered scorers (migration 14).
//!
//! An evaluation dataset is a named set of records (inputs, expectations,
//! outputs, tags, source) linked to experiments. Records are merged by their
//! inputs: upserting a record whose inputs (compared as canonical JSON) are
//! already in the dataset updates it instead of adding one, as MLflow's
//! store does. A scorer is a serialized judge registered under a name in an
//! experiment; each registration adds a version.
//!
//! The record fields are JSON (`serde_json::Value`): they are user data the
//! store merges, not wire shapes.

use serde_json::{Map, Value};

use crate::{Page, Result, Tag};

/// An evaluation dataset's metadata (its records are read separately).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalDataset {
    /// `d-` + 32 hex digits.
    pub dataset_id: String,
    pub name: String,
    pub tags: Vec<Tag>,
    /// JSON: field name → type per `inputs`, `outputs`, `expectations`.
    pub schema: Option<String>,
    /// JSON: `{"num_records": n}`.
    pub profile: Option<String>,
    /// 8 hex digits that change with every change of the records.
    pub digest: String,
    pub created_time: i64,
    pub last_update_time: i64,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
    pub experiment_ids: Vec<i64>,
}

/// Where a record came from: MLflow's `DatasetRecordSource`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSource {
    /// UNSPECIFIED, TRACE, HUMAN, DOCUMENT or CODE.
    pub source_type: String,
    pub source_data: Map<String, Value>,
}

/// One record to merge into a dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordInput {
    pub inputs: Map<String, Value>,
    /// `None`: the record has no `outputs` key (a new record gets `{}`, an
    /// existing one keeps its outputs); `Some(Value::Null)`: no outputs.
    pub outputs: Option<Value>,
    pub expectations: Option<Map<String, Value>>,
    pub tags: Option<Map<String, Value>>,
    pub source: Option<RecordSource>,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalDatasetRecord {
    /// `dr-` + 32 hex digits.
    pub dataset_record_id: String,
    pub dataset_id: String,
    pub inputs: Value,
    pub outputs: Option<Value>,
    pub expectations: Option<Value>,
    pub tags: Value,
    /// `{"source_type": …, "source_data": {…}}`.
    pub source: Option<Value>,
    pub source_id: Option<String>,
    pub source_type: Option<String>,
    pub created_time: i64,
    pub last_update_time: i64,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpsertCounts {
    pub inserted: usize,
    pub updated: usize,
}

/// A search over evaluation datasets (MLflow's `SearchEvaluationDatasets`).
#[derive(Debug, Clone, Default)]
pub struct SearchEvalDatasets {
    /// Only datasets linked to one of these experiments (all when empty).
    pub experiment_ids: Vec<i64>,
    /// Only this workspace's datasets.
    pub workspace: Option<String>,
    /// `name`, `created_time`, `last_update_time`, `created_by`,
    /// `last_updated_by` and `tags.<key>` clauses, AND-ed.
    pub filter: String,
    pub max_results: usize,
    /// `name`, `created_time` or `last_update_time`, `ASC` or `DESC`
    /// (default `created_time DESC`).
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

/// One version of a registered scorer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorerVersion {
    pub experiment_id: i64,
    pub scorer_name: String,
    pub scorer_version: i64,
    pub serialized_scorer: String,
    pub creation_time: i64,
    /// The scorer's UUID (shared by its versions).
    pub scorer_id: String,
}

/// Evaluation datasets and scorers (a supertrait of [`crate::MetadataStore`]).
pub trait GenaiStore {
    /// A new dataset of `workspace` linked to `experiment_ids` (each must exist).
    fn create_eval_dataset(
        &self,
        workspace: &str,
        name: &str,
        tags: &[Tag],
        experiment_ids: &[i64],
        created_by: Option<&str>,
    ) -> Result<EvalDataset>;
    /// `NotFound` ("Evaluation dataset with id '…' not found").
    fn get_eval_dataset(&self, dataset_id: &str) -> Result<EvalDataset>;
    /// The workspace of a dataset (`NotFound` as [`get_eval_dataset`](Self::get_eval_dataset)).
    fn eval_dataset_workspace(&self, dataset_id: &str) -> Result<String>;
    /// Deletes the dataset, its tags, records and links; an unknown id is no error.
    fn delete_eval_dataset(&self, dataset_id: &str) -> Result<()>;
    fn search_eval_datasets(&self, q: &SearchEvalDatasets) -> Result<Page<EvalDataset>>;
    /// Sets `set` and removes `remove` in one transaction.
    fn set_eval_dataset_tags(&self, dataset_id: &str, set: &[Tag], remove: &[String])
    -> Result<()>;
    /// Idempotent, as MLflow's: an unknown dataset or key is no error.
    fn delete_eval_dataset_tag(&self, dataset_id: &str, key: &str) -> Result<()>;
    /// Merge records by inputs (see the module doc); updates the dataset's
    /// schema, profile, digest and last update.
    fn upsert_eval_dataset_records(
        &self,
        dataset_id: &str,
        records: &[RecordInput],
    ) -> Result<UpsertCounts>;
    /// Records ordered by (created_time, id); the page token is a cursor.
    fn eval_dataset_records(
        &self,
        dataset_id: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<EvalDatasetRecord>>;
    /// How many of `record_ids` were records of the dataset (now deleted).
    fn delete_eval_dataset_records(&self, dataset_id: &str, record_ids: &[String])
    -> Result<usize>;
    fn eval_dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<i64>>;
    /// Link to more experiments (each must exist); already linked ones are kept.
    fn add_eval_dataset_to_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[i64],
    ) -> Result<EvalDataset>;
    /// Unlink; experiments that were not linked are ignored.
    fn remove_eval_dataset_from_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[i64],
    ) -> Result<EvalDataset>;

    /// A new version (1 for a new name) of a scorer in an active experiment.
    fn register_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        serialized_scorer: &str,
    ) -> Result<ScorerVersion>;
    /// The latest version of each scorer of one active experiment, by name.
    fn list_scorers(&self, experiment_id: i64) -> Result<Vec<ScorerVersion>>;
    /// The latest version of each scorer of the active experiments among
    /// `experiment_ids` (every active experiment when `None`), by experiment then name.
    fn list_scorers_across(&self, experiment_ids: Option<&[i64]>) -> Result<Vec<ScorerVersion>>;
    /// Every version of one scorer, oldest first.
    fn list_scorer_versions(&self, experiment_id: i64, name: &str) -> Result<Vec<ScorerVersion>>;
    /// One version, or the latest when `version` is `None`.
    fn get_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<ScorerVersion>;
    /// One version, or the whole scorer when `version` is `None`.
    fn delete_scorer(&self, experiment_id: i64, name: &str, version: Option<i64>) -> Result<()>;
}
