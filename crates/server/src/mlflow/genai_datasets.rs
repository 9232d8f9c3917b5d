//! MLflow 3 GenAI evaluation datasets (`/api/3.0/mlflow/datasets/…`), the
//! endpoints behind `mlflow.genai.datasets` (create, get, search, delete,
//! tags, `merge_records`, `to_df`, experiment links).
//!
//! MLflow's wire shapes: a dataset's `tags`, `schema` and `profile` are JSON
//! *strings*; so are the `tags` and `records` fields of requests and the
//! `records` of a records page (a JSON list of record dicts).

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{Map, Value, json};
use store::{
    EvalDataset, EvalDatasetRecord, MetadataStore, RecordInput, RecordSource, SearchEvalDatasets,
    Tag,
};

use super::JsonResult;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::req::{Req, parse_experiment_id};
use crate::wire::Obj;
use crate::workspace::{self, Ws};

const SOURCE_TYPES: [&str; 5] = ["UNSPECIFIED", "TRACE", "HUMAN", "DOCUMENT", "CODE"];

/// A dataset as MLflow's `Dataset` message.
pub fn dataset_json(d: &EvalDataset) -> Value {
    let tags: Map<String, Value> = d
        .tags
        .iter()
        .map(|t| (t.key.clone(), Value::String(t.value.clone())))
        .collect();
    let mut o = Obj::new()
        .s("dataset_id", &d.dataset_id)
        .always("name", Value::String(d.name.clone()))
        .always("tags", Value::String(Value::Object(tags).to_string()))
        .s("digest", &d.digest)
        .i("created_time", d.created_time)
        .i("last_update_time", d.last_update_time)
        .v(
            "experiment_ids",
            Value::Array(
                d.experiment_ids
                    .iter()
                    .map(|e| Value::String(e.to_string()))
                    .collect(),
            ),
        );
    for (k, v) in [
        ("schema", &d.schema),
        ("profile", &d.profile),
        ("created_by", &d.created_by),
        ("last_updated_by", &d.last_updated_by),
    ] {
        if let Some(v) = v {
            o = o.always(k, Value::String(v.clone()));
        }
    }
    o.done()
}

/// A record as MLflow's `DatasetRecord.to_dict()`.
fn record_json(r: &EvalDatasetRecord) -> Value {
    let mut m = Map::new();
    m.insert("dataset_record_id".into(), json!(r.dataset_record_id));
    m.insert("dataset_id".into(), json!(r.dataset_id));
    m.insert("inputs".into(), r.inputs.clone());
    m.insert("created_time".into(), json!(r.created_time));
    m.insert("last_update_time".into(), json!(r.last_update_time));
    m.insert("tags".into(), r.tags.clone());
    let opt = [
        ("outputs", r.outputs.clone()),
        ("expectations", r.expectations.clone()),
        ("source", r.source.clone()),
        ("source_id", r.source_id.clone().map(Value::String)),
        ("source_type", r.source_type.clone().map(Value::String)),
        ("created_by", r.created_by.clone().map(Value::String)),
        (
            "last_updated_by",
            r.last_updated_by.clone().map(Value::String),
        ),
    ];
    for (k, v) in opt {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    Value::Object(m)
}

/// A field holding a JSON document as a string (MLflow's `tags`, `records`).
fn json_field(req: &Req, key: &str, required: bool) -> Result<Option<Value>, ApiError> {
    let s = if required {
        Some(req.nonempty(key)?)
    } else {
        req.opt_str(key)?.filter(|s| !s.is_empty())
    };
    let Some(s) = s else { return Ok(None) };
    serde_json::from_str(&s).map(Some).map_err(|e| {
        ApiError::invalid(format!(
            "Invalid value for parameter '{key}': it must be a JSON document in a string ({e})"
        ))
    })
}

/// A tag value as MLflow stores it: strings as they are, other values as text.
fn tag_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// `tags` as a JSON object string. A null value is skipped, as MLflow's store
/// does (its own tests pin this, although the fluent API's docstring says
/// null removes the tag): `delete_dataset_tag` removes one.
fn tags_field(req: &Req, required: bool) -> Result<Vec<Tag>, ApiError> {
    let Some(v) = json_field(req, "tags", required)? else {
        return Ok(Vec::new());
    };
    let Value::Object(m) = v else {
        return Err(ApiError::invalid(
            "Invalid value for parameter 'tags': it must be a JSON object of tag names to values, e.g. '{\"env\": \"prod\"}'",
        ));
    };
    let mut set = Vec::new();
    for (k, v) in m {
        if k.is_empty() {
            return Err(ApiError::invalid("A dataset tag key must not be empty"));
        }
        if !v.is_null() {
            set.push(Tag::new(k, tag_text(&v)));
        }
    }
    Ok(set)
}

fn experiment_ids(req: &Req) -> Result<Vec<i64>, ApiError> {
    req.str_list("experiment_ids")?
        .iter()
        .map(|e| parse_experiment_id(e))
        .collect()
}

/// Whether dataset `id` belongs to workspace `ws`; `Ok(false)` for one of
/// another workspace, `NotFound` for none at all.
fn dataset_here(st: &dyn MetadataStore, ws: &str, id: &str) -> store::Result<bool> {
    Ok(st.eval_dataset_workspace(id)? == ws)
}

/// Refuse dataset `id` unless it belongs to `ws` (as if it did not exist).
fn dataset_in(st: &dyn MetadataStore, ws: &str, id: &str) -> store::Result<()> {
    if dataset_here(st, ws, id)? {
        Ok(())
    } else {
        Err(store::StoreError::NotFound(format!(
            "Evaluation dataset with id '{id}' not found"
        )))
    }
}

/// Refuse experiments of another workspace than `ws` (as if they did not exist).
fn experiments_in(st: &dyn MetadataStore, ws: &str, ids: &[i64]) -> store::Result<()> {
    for id in ids {
        workspace::experiment_in(st, ws, *id)?;
    }
    Ok(())
}

/// Run `f` on dataset `id` of workspace `ws` (one of another answers as
/// missing), the check and the work in one trip.
async fn on_dataset<T, F>(s: &AppState, ws: &str, id: String, f: F) -> ApiResult<T>
where
    F: FnOnce(&dyn MetadataStore, &str) -> store::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let ws = ws.to_string();
    s.db(move |st| {
        dataset_in(st, &ws, &id)?;
        f(st, &id)
    })
    .await
}

pub async fn create_dataset(State(s): State<AppState>, req: Req) -> JsonResult {
    let name = req.nonempty("name")?;
    let tags = tags_field(&req, false)?;
    let created_by = tags
        .iter()
        .find(|t| t.key == "mlflow.user")
        .map(|t| t.value.clone());
    let exps = experiment_ids(&req)?;
    let ws = workspace::of(&req);
    let d = s
        .db(move |st| {
            experiments_in(st, &ws, &exps)?;
            st.create_eval_dataset(&ws, &name, &tags, &exps, created_by.as_deref())
        })
        .await?;
    Ok(Json(json!({"dataset": dataset_json(&d)})))
}

pub async fn get_dataset(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path(id): Path<String>,
) -> JsonResult {
    let d = on_dataset(&s, &ws.0, id, |st, id| st.get_eval_dataset(id)).await?;
    Ok(Json(json!({"dataset": dataset_json(&d)})))
}

pub async fn delete_dataset(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path(id): Path<String>,
) -> JsonResult {
    // (idempotent, as MLflow's: an unknown dataset, or another workspace's, is left as it is)
    s.db(move |st| match dataset_here(st, &ws.0, &id) {
        Ok(true) => st.delete_eval_dataset(&id),
        Ok(false) | Err(store::StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    })
    .await?;
    super::empty()
}

pub async fn search_evaluation_datasets(State(s): State<AppState>, req: Req) -> JsonResult {
    let q = SearchEvalDatasets {
        experiment_ids: experiment_ids(&req)?,
        filter: req.opt_str("filter_string")?.unwrap_or_default(),
        max_results: req.max_results("max_results", 1000, 50_000)?,
        order_by: req.str_list("order_by")?,
        page_token: req.opt_str("page_token")?,
        workspace: Some(workspace::of(&req)),
    };
    let page = s.db(move |st| st.search_eval_datasets(&q)).await?;
    let mut out = Obj::new().v(
        "datasets",
        Value::Array(page.items.iter().map(dataset_json).collect()),
    );
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}

pub async fn set_dataset_tags(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Req,
) -> JsonResult {
    let set = tags_field(&req, true)?;
    let ws = workspace::of(&req);
    let d = s
        .db(move |st| {
            // (MLflow's wording for this call; the same for another workspace's dataset)
            dataset_in(st, &ws, &id).map_err(|e| match e {
                store::StoreError::NotFound(_) => store::StoreError::NotFound(format!(
                    "Could not find evaluation dataset with ID {id}"
                )),
                other => other,
            })?;
            st.set_eval_dataset_tags(&id, &set, &[])?;
            st.get_eval_dataset(&id)
        })
        .await?;
    Ok(Json(json!({"dataset": dataset_json(&d)})))
}

pub async fn delete_dataset_tag(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path((id, key)): Path<(String, String)>,
) -> JsonResult {
    // (idempotent: another workspace's dataset is left as it is)
    s.db(move |st| match dataset_here(st, &ws.0, &id) {
        Ok(false) => Ok(()),
        _ => st.delete_eval_dataset_tag(&id, &key),
    })
    .await?;
    super::empty()
}

fn object_or_null(
    i: usize,
    key: &str,
    v: Option<&Value>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(ApiError::invalid(format!(
            "Record {i}: '{key}' must be a JSON object, got {other}"
        ))),
    }
}

/// One record dict of `merge_records` (MLflow's `upsert_dataset_records`).
fn record_input(i: usize, v: &Value) -> Result<RecordInput, ApiError> {
    let Value::Object(m) = v else {
        return Err(ApiError::invalid(format!(
            "Record {i}: each record must be a JSON object with 'inputs'"
        )));
    };
    let inputs = match m.get("inputs") {
        Some(Value::Object(i)) => i.clone(),
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(format!(
                "Record {i}: each record must have an 'inputs' field (a JSON object)"
            )));
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Record {i}: 'inputs' must be a JSON object, got {other}"
            )));
        }
    };
    let source = match m.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::Object(src)) => {
            let t = match src.get("source_type") {
                Some(Value::String(t)) => t.to_ascii_uppercase(),
                None | Some(Value::Null) => "UNSPECIFIED".into(),
                Some(other) => {
                    return Err(ApiError::invalid(format!(
                        "Record {i}: 'source.source_type' must be a string, got {other}"
                    )));
                }
            };
            if !SOURCE_TYPES.contains(&t.as_str()) {
                return Err(ApiError::invalid(format!(
                    "Invalid dataset record source type: {t}. Valid source types: {SOURCE_TYPES:?}"
                )));
            }
            let data = object_or_null(i, "source.source_data", src.get("source_data"))?;
            Some(RecordSource {
                source_type: t,
                source_data: data.unwrap_or_default(),
            })
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Record {i}: 'source' must be a JSON object like {{\"source_type\": \"HUMAN\", \"source_data\": {{}}}}, got {other}"
            )));
        }
    };
    Ok(RecordInput {
        inputs,
        outputs: m.get("outputs").cloned(),
        expectations: object_or_null(i, "expectations", m.get("expectations"))?,
        tags: object_or_null(i, "tags", m.get("tags"))?,
        source,
    })
}

pub async fn upsert_dataset_records(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Req,
) -> JsonResult {
    let Some(Value::Array(items)) = json_field(&req, "records", true)? else {
        return Err(ApiError::invalid(
            "Invalid value for parameter 'records': it must be a JSON list of record objects in a string",
        ));
    };
    let records = items
        .iter()
        .enumerate()
        .map(|(i, v)| record_input(i, v))
        .collect::<Result<Vec<_>, _>>()?;
    let c = on_dataset(&s, req.workspace(), id, move |st, id| {
        st.upsert_eval_dataset_records(id, &records)
    })
    .await?;
    Ok(Json(json!({
        "inserted_count": c.inserted,
        "updated_count": c.updated,
    })))
}

pub async fn get_dataset_records(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Req,
) -> JsonResult {
    let max = req.max_results("max_results", 1000, 50_000)?;
    let token = req.opt_str("page_token")?;
    let page = on_dataset(&s, req.workspace(), id, move |st, id| {
        st.eval_dataset_records(id, max, token.as_deref())
    })
    .await?;
    let records = Value::Array(page.items.iter().map(record_json).collect());
    let mut out = Obj::new().always("records", Value::String(records.to_string()));
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}

pub async fn delete_dataset_records(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Req,
) -> JsonResult {
    let ids = req.str_list("dataset_record_ids")?;
    let n = on_dataset(&s, req.workspace(), id, move |st, id| {
        st.delete_eval_dataset_records(id, &ids)
    })
    .await?;
    Ok(Json(json!({"deleted_count": n})))
}

pub async fn get_dataset_experiment_ids(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path(id): Path<String>,
) -> JsonResult {
    // an unknown dataset (or another workspace's) has no experiments (MLflow answers an
    // empty list, not 404)
    let ids = s
        .db(move |st| match dataset_here(st, &ws.0, &id) {
            Ok(true) => st.eval_dataset_experiment_ids(&id),
            Ok(false) | Err(store::StoreError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        })
        .await?;
    let ids: Vec<String> = ids.iter().map(|e| e.to_string()).collect();
    Ok(Json(Obj::new().v("experiment_ids", json!(ids)).done()))
}

pub async fn add_dataset_to_experiments(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Req,
) -> JsonResult {
    let exps = experiment_ids(&req)?;
    let ws = workspace::of(&req);
    let d = on_dataset(&s, &ws.clone(), id, move |st, id| {
        experiments_in(st, &ws, &exps)?;
        st.add_eval_dataset_to_experiments(id, &exps)
    })
    .await?;
    Ok(Json(json!({"dataset": dataset_json(&d)})))
}

pub async fn remove_dataset_from_experiments(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Req,
) -> JsonResult {
    let exps = experiment_ids(&req)?;
    let d = on_dataset(&s, req.workspace(), id, move |st, id| {
        st.remove_eval_dataset_from_experiments(id, &exps)
    })
    .await?;
    Ok(Json(json!({"dataset": dataset_json(&d)})))
}
