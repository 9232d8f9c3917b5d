use axum::Json;
use axum::extract::{Extension, State};
use serde_json::{Value, json};
use store::{
    CreateRun, Dataset, DatasetInput, Metric, ModelOutput, RunStatus, SearchRuns, Tag, UpdateRun,
};

use super::experiments::view_type;
use super::{JsonResult, empty};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::req::Req;
use crate::{AppState, validate, wire};

fn status(req: &Req) -> Result<Option<RunStatus>, ApiError> {
    match req.opt_str("status")? {
        None => Ok(None),
        Some(s) => RunStatus::parse(&s).map(Some).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid run status '{s}': use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED"
            ))
        }),
    }
}

fn metric_from(m: &Req) -> Result<Metric, ApiError> {
    let key = m.str("key")?;
    validate::key("metric", &key)?;
    Ok(Metric {
        value: m.f64("value")?,
        timestamp: m.i64("timestamp")?,
        step: m.opt_i64("step")?.unwrap_or(0),
        dataset_name: m.opt_str("dataset_name")?.filter(|s| !s.is_empty()),
        dataset_digest: m.opt_str("dataset_digest")?.filter(|s| !s.is_empty()),
        model_id: m.opt_str("model_id")?.filter(|s| !s.is_empty()),
        key,
    })
}

fn param_from(p: &Req) -> Result<Tag, ApiError> {
    let key = p.str("key")?;
    validate::key("param", &key)?;
    let value = p.opt_str("value")?.unwrap_or_default();
    Ok(Tag::new(
        key.clone(),
        validate::truncate("param", &key, value, validate::MAX_PARAM_VAL_LENGTH),
    ))
}

fn tag_from(t: &Req) -> Result<Tag, ApiError> {
    let key = t.str("key")?;
    validate::key("tag", &key)?;
    let value = t.opt_str("value")?.unwrap_or_default();
    Ok(Tag::new(
        key.clone(),
        validate::truncate("tag", &key, value, validate::MAX_TAG_VAL_LENGTH),
    ))
}

pub async fn create(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    req: Req,
) -> JsonResult {
    let experiment_id = match req.opt_str("experiment_id")? {
        Some(id) if !id.is_empty() => crate::req::parse_experiment_id(&id)?,
        _ => 0,
    };
    let tags = req
        .objects("tags")?
        .iter()
        .map(tag_from)
        .collect::<Result<Vec<_>, _>>()?;
    let user_id = req
        .opt_str("user_id")?
        .filter(|u| !u.is_empty())
        .unwrap_or(who.name);
    let c = CreateRun {
        experiment_id,
        user_id,
        run_name: req.opt_str("run_name")?,
        start_time: req.opt_i64("start_time")?,
        tags,
    };
    let info = s.db(move |st| st.create_run(c)).await?;
    let run = s.db(move |st| st.get_run(&info.run_id)).await?;
    Ok(Json(json!({"run": wire::run(&run)})))
}

pub async fn get_one(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let run = s.db(move |st| st.get_run(&id)).await?;
    Ok(Json(json!({"run": wire::run(&run)})))
}

pub async fn update(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let upd = UpdateRun {
        status: status(&req)?,
        end_time: req.opt_i64("end_time")?,
        run_name: req.opt_str("run_name")?,
    };
    let info = s.db(move |st| st.update_run(&id, upd)).await?;
    Ok(Json(json!({"run_info": wire::run_info(&info)})))
}

pub async fn delete(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    s.db(move |st| st.delete_run(&id)).await?;
    empty()
}

pub async fn restore(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    s.db(move |st| st.restore_run(&id)).await?;
    empty()
}

pub async fn log_metric(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let m = metric_from(&req)?;
    s.db(move |st| st.log_batch(&id, &[m], &[], &[])).await?;
    empty()
}

pub async fn log_param(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let p = param_from(&req)?;
    s.db(move |st| st.log_batch(&id, &[], &[p], &[])).await?;
    empty()
}

pub async fn set_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let t = tag_from(&req)?;
    s.db(move |st| st.log_batch(&id, &[], &[], &[t])).await?;
    empty()
}

pub async fn delete_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let key = req.str("key")?;
    s.db(move |st| st.delete_tag(&id, &key)).await?;
    empty()
}

pub async fn log_batch(State(s): State<AppState>, mut req: Req) -> JsonResult {
    let id = req.run_id()?;
    let metrics = req.take_objects("metrics")?;
    let params = req.take_objects("params")?;
    let tags = req.take_objects("tags")?;
    validate::batch(metrics.len(), params.len(), tags.len())?;
    let metrics = metrics
        .iter()
        .map(metric_from)
        .collect::<Result<Vec<_>, _>>()?;
    let params = params
        .iter()
        .map(param_from)
        .collect::<Result<Vec<_>, _>>()?;
    let tags = tags.iter().map(tag_from).collect::<Result<Vec<_>, _>>()?;
    s.db(move |st| st.log_batch(&id, &metrics, &params, &tags))
        .await?;
    empty()
}

pub async fn log_inputs(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let raw = req.objects("datasets")?;
    if raw.len() > validate::MAX_DATASETS_PER_BATCH {
        return Err(ApiError::invalid(format!(
            "A log-inputs request can contain at most {} datasets, got {}",
            validate::MAX_DATASETS_PER_BATCH,
            raw.len()
        )));
    }
    let mut datasets = Vec::new();
    for d in raw {
        let ds = d
            .object("dataset")?
            .ok_or_else(|| ApiError::invalid("Missing value for required parameter 'dataset'"))?;
        datasets.push(DatasetInput {
            tags: d.tags("tags")?,
            dataset: Dataset {
                name: ds.nonempty("name")?,
                digest: ds.nonempty("digest")?,
                source_type: ds.nonempty("source_type")?,
                source: ds.str("source")?,
                schema: ds.opt_str("schema")?,
                profile: ds.opt_str("profile")?,
            },
        });
    }
    let models = req
        .objects("models")?
        .iter()
        .map(|m| m.nonempty("model_id"))
        .collect::<Result<Vec<_>, _>>()?;
    s.db(move |st| st.log_inputs(&id, &datasets, &models))
        .await?;
    empty()
}

pub async fn log_outputs(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let outputs = req
        .objects("models")?
        .iter()
        .map(|m| {
            Ok(ModelOutput {
                model_id: m.nonempty("model_id")?,
                step: m.opt_i64("step")?.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    s.db(move |st| st.log_outputs(&id, &outputs)).await?;
    empty()
}

/// MLflow 2.x's `runs/log-model` records model metadata as a run tag.
pub async fn log_model(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let model_json = req.str("model_json")?;
    let run = s
        .db({
            let id = id.clone();
            move |st| st.get_run(&id)
        })
        .await?;
    let key = "mlflow.log-model.history";
    let mut history: Vec<Value> = run
        .tags
        .iter()
        .find(|t| t.key == key)
        .and_then(|t| serde_json::from_str(&t.value).ok())
        .unwrap_or_default();
    let parsed: Value = serde_json::from_str(&model_json)
        .map_err(|e| ApiError::invalid(format!("model_json is not valid JSON: {e}")))?;
    history.push(parsed);
    let tag = Tag::new(key, Value::Array(history).to_string());
    s.db(move |st| st.log_batch(&id, &[], &[], &[tag])).await?;
    empty()
}

pub async fn search(State(s): State<AppState>, req: Req) -> JsonResult {
    let experiment_ids = req
        .str_list("experiment_ids")?
        .iter()
        .map(|e| crate::req::parse_experiment_id(e))
        .collect::<Result<Vec<_>, _>>()?;
    let q = SearchRuns {
        experiment_ids,
        filter: req.opt_str("filter")?.unwrap_or_default(),
        view_type: view_type(&req, "run_view_type")?,
        max_results: req.max_results("max_results", 1000, validate::MAX_RESULTS_SEARCH_RUNS)?,
        order_by: req.str_list("order_by")?,
        page_token: req.opt_str("page_token")?,
    };
    let page = s.db(move |st| st.search_runs(&q)).await?;
    let mut out = wire::Obj::new().v(
        "runs",
        Value::Array(page.items.iter().map(wire::run).collect()),
    );
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}

pub async fn history(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let key = req.str("metric_key")?;
    let max = req.max_results("max_results", 25000, 25000)?;
    let token = req.opt_str("page_token")?;
    let page = s
        .db(move |st| st.metric_history(&id, &key, max, token.as_deref()))
        .await?;
    let mut out = wire::Obj::new().v(
        "metrics",
        Value::Array(page.items.iter().map(wire::metric).collect()),
    );
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}

/// UI endpoint: full histories of several runs, as MLflow's server answers:
/// runs in id order, each run's points by (timestamp, step, value), at most
/// `max_results` points in all.
pub async fn history_bulk(State(s): State<AppState>, req: Req) -> JsonResult {
    let mut ids = req.str_list("run_id")?;
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "GetMetricHistoryBulk request must specify at least one run_id.",
        ));
    }
    if ids.len() > 100 {
        return Err(ApiError::invalid(format!(
            "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received {} run_ids.",
            ids.len()
        )));
    }
    ids.sort();
    let key = req.opt_str("metric_key")?.ok_or_else(|| {
        ApiError::invalid("GetMetricHistoryBulk request must specify a metric_key.")
    })?;
    // MLflow clamps a larger max_results to 25,000 rather than refusing it
    let max = req
        .max_results("max_results", 25000, usize::MAX)?
        .min(25000);
    let pts = s
        .db(move |st| {
            let mut out = Vec::new();
            for id in &ids {
                let mut run = st.metric_history(id, &key, max, None)?.items;
                run.sort_by(|a, b| {
                    (a.timestamp, a.step)
                        .cmp(&(b.timestamp, b.step))
                        .then(a.value.total_cmp(&b.value))
                });
                out.extend(run.into_iter().map(|m| store::RunMetric {
                    run_id: id.clone(),
                    metric: m,
                }));
                if out.len() >= max {
                    out.truncate(max);
                    break;
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Json(
        wire::Obj::new()
            .v(
                "metrics",
                Value::Array(pts.iter().map(wire::run_metric).collect()),
            )
            .done(),
    ))
}

/// MLflow's `MAX_RESULTS_PER_RUN` for the sampled history.
const MAX_SAMPLED_POINTS_PER_RUN: i64 = 2500;

/// UI endpoint `metrics/get-history-bulk-interval`: each run's history of
/// one metric sampled to at most `max_results` points (default and maximum
/// 2,500) in the step range, with MLflow's checks in MLflow's order.
pub async fn history_bulk_interval(State(s): State<AppState>, req: Req) -> JsonResult {
    let missing = |key: &str| {
        ApiError::invalid(format!(
            "Missing value for required parameter '{key}'. See the API docs for more information about request parameters."
        ))
    };
    let ids = req.str_list("run_ids")?;
    if ids.is_empty() {
        return Err(missing("run_ids"));
    }
    if ids.len() > 100 {
        return Err(ApiError::invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received {} run_ids.",
            ids.len()
        )));
    }
    let key = req
        .opt_str("metric_key")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| missing("metric_key"))?;
    let start = req.opt_i64("start_step")?;
    let end = req.opt_i64("end_step")?;
    let max = match req.opt_i64("max_results")? {
        None => MAX_SAMPLED_POINTS_PER_RUN,
        Some(n) if (1..=MAX_SAMPLED_POINTS_PER_RUN).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "max_results must be between 1 and {MAX_SAMPLED_POINTS_PER_RUN}."
            )));
        }
    };
    match (start, end) {
        (Some(a), Some(b)) if a > b => {
            return Err(ApiError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={a} and end_step={b}."
            )));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ApiError::invalid(
                "If either start step or end step are specified, both must be specified.",
            ));
        }
        _ => {}
    }
    let max = usize::try_from(max).unwrap_or(1);
    let pts = s
        .db(move |st| st.metric_history_bulk_interval(&ids, &key, start, end, max))
        .await?;
    Ok(Json(
        wire::Obj::new()
            .v(
                "metrics",
                Value::Array(pts.iter().map(wire::run_metric).collect()),
            )
            .done(),
    ))
}
