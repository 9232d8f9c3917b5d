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
use crate::req::{RawReq, Req};
use crate::{AppState, validate, wire, workspace};

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
    Ok(MetricIn {
        key,
        value: m.f64("value")?,
        timestamp: m.i64("timestamp")?,
        step: m.opt_i64("step")?,
        dataset_name: m.opt_str("dataset_name")?,
        dataset_digest: m.opt_str("dataset_digest")?,
        model_id: m.opt_str("model_id")?,
    }
    .into())
}

fn param_from(p: &Req) -> Result<Tag, ApiError> {
    param(p.str("key")?, p.opt_str("value")?)
}

fn param(key: String, value: Option<String>) -> Result<Tag, ApiError> {
    validate::key("param", &key)?;
    let value = value.unwrap_or_default();
    Ok(Tag::new(
        key.clone(),
        validate::truncate("param", &key, value, validate::MAX_PARAM_VAL_LENGTH),
    ))
}

fn tag_from(t: &Req) -> Result<Tag, ApiError> {
    tag(t.str("key")?, t.opt_str("value")?)
}

fn tag(key: String, value: Option<String>) -> Result<Tag, ApiError> {
    validate::key("tag", &key)?;
    let value = value.unwrap_or_default();
    Ok(Tag::new(
        key.clone(),
        validate::truncate("tag", &key, value, validate::MAX_TAG_VAL_LENGTH),
    ))
}

/// A `log-batch` body in the shape the `mlflow` client sends (numbers as
/// JSON numbers, every required field present, no field twice), read
/// straight into typed fields: a 1,000-metric batch read as a
/// `serde_json::Value` tree spent more server time allocating its maps than
/// PostgreSQL spent storing it. Any other body goes through [`Req`], which
/// accepts MLflow's other spellings and words every mistake.
#[derive(serde::Deserialize)]
struct FastBatch {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Vec<MetricIn>,
    #[serde(default)]
    params: Vec<FastKv>,
    #[serde(default)]
    tags: Vec<FastKv>,
}

/// A metric as a request gives it (read by either reader).
#[derive(serde::Deserialize)]
struct MetricIn {
    key: String,
    value: f64,
    timestamp: i64,
    step: Option<i64>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
    model_id: Option<String>,
}

impl From<MetricIn> for Metric {
    /// No step is step 0; an empty dataset or model field is none.
    fn from(m: MetricIn) -> Metric {
        Metric {
            key: m.key,
            value: m.value,
            timestamp: m.timestamp,
            step: m.step.unwrap_or(0),
            dataset_name: m.dataset_name.filter(|s| !s.is_empty()),
            dataset_digest: m.dataset_digest.filter(|s| !s.is_empty()),
            model_id: m.model_id.filter(|s| !s.is_empty()),
        }
    }
}

#[derive(serde::Deserialize)]
struct FastKv {
    key: String,
    value: Option<String>,
}

/// A batch's run id, metrics, params and tags, checked.
type Batch = (String, Vec<Metric>, Vec<Tag>, Vec<Tag>);

/// The checked batch of a well-formed body (`None`: read it through [`Req`]).
fn fast_batch(body: &[u8]) -> Option<Result<Batch, ApiError>> {
    let b: FastBatch = serde_json::from_slice(body).ok()?;
    let id = b
        .run_id
        .filter(|s| !s.is_empty())
        .or(b.run_uuid.filter(|s| !s.is_empty()))?;
    let checked = (|| {
        validate::batch(b.metrics.len(), b.params.len(), b.tags.len())?;
        let mut metrics = Vec::with_capacity(b.metrics.len());
        for m in b.metrics {
            validate::key("metric", &m.key)?;
            metrics.push(m.into());
        }
        let params = b
            .params
            .into_iter()
            .map(|p| param(p.key, p.value))
            .collect::<Result<Vec<_>, _>>()?;
        let tags = b
            .tags
            .into_iter()
            .map(|t| tag(t.key, t.value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((metrics, params, tags))
    })();
    Some(checked.map(|(m, p, t)| (id, m, p, t)))
}

/// A new run's `tags` and its `user_id`: the one given, else the caller.
fn tags_and_user(req: &Req, who: Identity) -> Result<(Vec<Tag>, String), ApiError> {
    let tags = req
        .objects("tags")?
        .iter()
        .map(tag_from)
        .collect::<Result<Vec<_>, _>>()?;
    let user_id = req
        .opt_str("user_id")?
        .filter(|u| !u.is_empty())
        .unwrap_or(who.name);
    Ok((tags, user_id))
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
    let (tags, user_id) = tags_and_user(&req, who)?;
    let c = CreateRun {
        experiment_id,
        user_id,
        run_name: req.opt_str("run_name")?,
        start_time: req.opt_i64("start_time")?,
        tags,
    };
    let info = workspace::on_experiment(&s, req.workspace(), c.experiment_id, move |st, _| {
        st.create_run(c)
    })
    .await?;
    let run = s.db(move |st| st.get_run(&info.run_id)).await?;
    Ok(Json(json!({"run": wire::run(&run)})))
}

pub async fn get_one(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let run = workspace::on_run(&s, req.workspace(), id, move |st, id| st.get_run(id)).await?;
    Ok(Json(json!({"run": wire::run(&run)})))
}

pub async fn update(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let upd = UpdateRun {
        status: status(&req)?,
        end_time: req.opt_i64("end_time")?,
        run_name: req.opt_str("run_name")?,
    };
    let info = workspace::on_run(&s, req.workspace(), id, move |st, id| {
        st.update_run(id, upd)
    })
    .await?;
    Ok(Json(json!({"run_info": wire::run_info(&info)})))
}

pub async fn delete(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    workspace::on_run(&s, req.workspace(), id, move |st, id| st.delete_run(id)).await?;
    empty()
}

pub async fn restore(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    workspace::on_run(&s, req.workspace(), id, move |st, id| st.restore_run(id)).await?;
    empty()
}

/// Refuse logged model ids of another workspace than `ws` (as if they did
/// not exist): a run's metrics, inputs and outputs may name its own
/// workspace's models only. No lookup when there are none.
fn models_in<'a>(
    st: &dyn store::MetadataStore,
    ws: &str,
    ids: impl Iterator<Item = &'a str>,
) -> store::Result<()> {
    let mut seen: Vec<&str> = Vec::new();
    for id in ids {
        if !seen.contains(&id) {
            seen.push(id);
            // (a missing one is the store's own answer to give)
            if st.logged_model_workspace(id).is_ok() {
                workspace::logged_model_in(st, ws, id)?;
            }
        }
    }
    Ok(())
}

pub async fn log_metric(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let m = metric_from(&req)?;
    let ws = workspace::of(&req);
    workspace::on_run(&s, req.workspace(), id, move |st, id| {
        models_in(st, &ws, m.model_id.as_deref().into_iter())?;
        st.log_batch(id, &[m], &[], &[])
    })
    .await?;
    empty()
}

pub async fn log_param(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let p = param_from(&req)?;
    workspace::on_run(&s, req.workspace(), id, move |st, id| {
        st.log_batch(id, &[], &[p], &[])
    })
    .await?;
    empty()
}

pub async fn set_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let t = tag_from(&req)?;
    workspace::on_run(&s, req.workspace(), id, move |st, id| {
        st.log_batch(id, &[], &[], &[t])
    })
    .await?;
    empty()
}

pub async fn delete_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let key = req.str("key")?;
    workspace::on_run(&s, req.workspace(), id, move |st, id| {
        st.delete_tag(id, &key)
    })
    .await?;
    empty()
}

pub async fn log_batch(State(s): State<AppState>, raw: RawReq) -> JsonResult {
    let ws = raw.workspace().to_string();
    let (id, metrics, params, tags) = match raw.body_alone().and_then(fast_batch) {
        Some(batch) => batch?,
        None => {
            let mut req = raw.into_req()?;
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
            (id, metrics, params, tags)
        }
    };
    let ws2 = ws.clone();
    workspace::on_run(&s, &ws, id, move |st, id| {
        models_in(
            st,
            &ws2,
            metrics.iter().filter_map(|m| m.model_id.as_deref()),
        )?;
        st.log_batch(id, &metrics, &params, &tags)
    })
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
    let ws = workspace::of(&req);
    workspace::on_run(&s, req.workspace(), id, move |st, id| {
        models_in(st, &ws, models.iter().map(String::as_str))?;
        st.log_inputs(id, &datasets, &models)
    })
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
    let ws = workspace::of(&req);
    workspace::on_run(&s, req.workspace(), id, move |st, id| {
        models_in(st, &ws, outputs.iter().map(|o| o.model_id.as_str()))?;
        st.log_outputs(id, &outputs)
    })
    .await?;
    empty()
}

/// MLflow 2.x's `runs/log-model` records model metadata as a run tag.
pub async fn log_model(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let model_json = req.str("model_json")?;
    let run = workspace::on_run(&s, req.workspace(), id.clone(), |st, id| st.get_run(id)).await?;
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

pub async fn search(
    State(s): State<AppState>,
    req: Req,
) -> crate::error::ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let experiment_ids = req
        .str_list("experiment_ids")?
        .iter()
        .map(|e| crate::req::parse_experiment_id(e))
        .collect::<Result<Vec<_>, _>>()?;
    let ws = workspace::of(&req);
    let q = SearchRuns {
        experiment_ids,
        filter: req.opt_str("filter")?.unwrap_or_default(),
        view_type: view_type(&req, "run_view_type")?,
        max_results: req.max_results("max_results", 1000, validate::MAX_RESULTS_SEARCH_RUNS)?,
        order_by: req.str_list("order_by")?,
        page_token: req.opt_str("page_token")?,
    };
    let page = s
        .db(move |st| {
            // (runs of another workspace's experiments are not there, as MLflow's server does)
            let mut q = q;
            q.experiment_ids =
                workspace::experiments_of(st, &ws, std::mem::take(&mut q.experiment_ids))?;
            st.search_runs(&q)
        })
        .await?;
    // written straight out (wire::RunOut), keys in the order the Value
    // form sorts them, empty ones left out as it does
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        next_page_token: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        runs: Vec<wire::RunOut<'a>>,
    }
    let store::Page {
        items,
        next_page_token,
    } = page;
    Ok(Json(Out {
        next_page_token: next_page_token.filter(|t| !t.is_empty()),
        runs: items.iter().map(wire::RunOut).collect(),
    })
    .into_response())
}

pub async fn history(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.run_id()?;
    let key = req.str("metric_key")?;
    let max = req.max_results("max_results", 25000, 25000)?;
    let token = req.opt_str("page_token")?;
    let page = workspace::on_run(&s, req.workspace(), id, move |st, id| {
        st.metric_history(id, &key, max, token.as_deref())
    })
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
    let ws = workspace::of(&req);
    let pts = s
        .db(move |st| {
            for id in &ids {
                workspace::run_in(st, &ws, id)?;
            }
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
    let ws = workspace::of(&req);
    let pts = s
        .db(move |st| {
            // MLflow does not look the runs up: an unknown run has no points,
            // and so has a run of another workspace
            let mine = workspace::only_in(ids, |id| workspace::run_in(st, &ws, id))?;
            st.metric_history_bulk_interval(&mine, &key, start, end, max)
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

/// `[{key, value}]` of a promptlab request, each value as Python's `str()`
/// writes it (MLflow logs `str(param.value)`).
fn promptlab_params(req: &Req, key: &str) -> Result<Vec<Tag>, ApiError> {
    req.objects(key)?
        .iter()
        .map(|p| {
            let k = p.str("key")?;
            validate::key("param", &k)?;
            let v = match p.raw("value") {
                None => "None".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(true)) => "True".to_string(),
                Some(Value::Bool(false)) => "False".to_string(),
                Some(other) => other.to_string(),
            };
            Ok(Tag::new(k, v))
        })
        .collect()
}

/// UTC `%Y-%m-%d %H:%M:%S.%f` (MLflow's `utc_time_created`).
fn utc_time_created(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = tabular::civil_from_days(days);
    let (h, mi, s, us) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000 * 1000,
    );
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
}

/// A YAML mapping of strings, each written as a JSON string (a YAML
/// double-quoted scalar), so any text reads back as itself.
fn yaml_map(entries: &[Tag], indent: &str) -> String {
    if entries.is_empty() {
        return " {}\n".to_string();
    }
    let mut out = String::from("\n");
    for t in entries {
        out.push_str(&format!(
            "{indent}{}: {}\n",
            Value::String(t.key.clone()),
            Value::String(t.value.clone())
        ));
    }
    out
}

/// The files MLflow's promptlab run logs: the model (`model/`, MLflow's
/// `mlflow.prompt.promptlab_model` pyfunc flavor) and `eval_results_table.json`.
struct PromptlabFiles {
    template: String,
    route: String,
    prompt: Vec<Tag>,
    model: Vec<Tag>,
    input: Value,
    output: Value,
    output_params: Vec<Tag>,
    run_id: String,
    created: String,
    model_uuid: String,
}

impl PromptlabFiles {
    fn files(&self) -> Vec<(&'static str, String)> {
        let strings = |v: &[Tag]| -> Vec<Value> {
            v.iter().map(|t| Value::String(t.value.clone())).collect()
        };
        // create_eval_results_json: the prompt parameters, "prompt", "output", then the output parameters
        let mut columns: Vec<Value> = self
            .prompt
            .iter()
            .map(|t| Value::String(t.key.clone()))
            .collect();
        columns.extend([json!("prompt"), json!("output")]);
        columns.extend(
            self.output_params
                .iter()
                .map(|t| Value::String(t.key.clone())),
        );
        let mut row = strings(&self.prompt);
        row.extend([self.input.clone(), self.output.clone()]);
        row.extend(strings(&self.output_params));
        let eval = format!(
            "{{\"columns\": {}, \"data\": [{}]}}",
            super::registry::python_json(&Value::Array(columns)),
            super::registry::python_json(&Value::Array(row))
        );
        let signature_inputs: Vec<String> = self
            .prompt
            .iter()
            .map(|t| {
                format!(
                    "{{\"type\": \"string\", \"name\": {}, \"required\": true}}",
                    super::registry::python_json(&Value::String(t.key.clone()))
                )
            })
            .collect();
        let quoted = |s: &str| Value::String(s.to_string()).to_string();
        let mlmodel = format!(
            "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.prompt.promptlab_model\n    parameters_path: parameters.yaml\nis_signature_from_type_hint: false\nmlflow_version: {ver}\nmodel_id: null\nmodel_uuid: {uuid}\nprompts: null\nrun_id: {run}\nsaved_input_example_info:\n  artifact_path: input_example.json\n  serving_input_path: serving_input_example.json\n  type: json_object\nsignature:\n  inputs: {inputs}\n  outputs: '[{{\"type\": \"string\", \"name\": \"output\", \"required\": true}}]'\n  params: null\ntype_hint_from_example: false\nutc_time_created: '{created}'\n",
            ver = crate::MLFLOW_PROTOCOL_VERSION,
            uuid = self.model_uuid,
            run = self.run_id,
            inputs = quoted(&format!("[{}]", signature_inputs.join(", "))),
            created = self.created,
        );
        let parameters = format!(
            "model_parameters:{}model_route: {}\nprompt_parameters:{}prompt_template: {}\n",
            yaml_map(&self.model, "  "),
            quoted(&self.route),
            yaml_map(&self.prompt, "  "),
            quoted(&self.template),
        );
        let example = Value::Array(strings(&self.prompt));
        vec![
            ("eval_results_table.json", eval),
            ("model/MLmodel", mlmodel),
            ("model/parameters.yaml", parameters),
            (
                "model/requirements.txt",
                format!("mlflow[gateway]=={}", crate::MLFLOW_PROTOCOL_VERSION),
            ),
            (
                "model/input_example.json",
                format!("{{\"inputs\": {}}}", super::registry::python_json(&example)),
            ),
            (
                "model/serving_input_example.json",
                serde_json::to_string_pretty(&json!({"inputs": {"inputs": example}}))
                    .unwrap_or_default(),
            ),
        ]
    }
}

/// UI endpoint `runs/create-promptlab-run` (MLflow's prompt engineering UI):
/// a run with the prompt's parameters, the model route and template as
/// params, the promptlab model and its evaluation table as artifacts, ended
/// FINISHED (FAILED if logging them failed), as MLflow's server makes it.
pub async fn create_promptlab_run(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    req: Req,
) -> JsonResult {
    let required = |key: &str| -> Result<(), ApiError> {
        let given = match req.raw(key) {
            None | Some(Value::Bool(false)) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(_) => true,
        };
        if given {
            Ok(())
        } else {
            Err(ApiError::invalid(format!(
                "CreatePromptlabRun request must specify {key}."
            )))
        }
    };
    required("experiment_id")?;
    let experiment_id = crate::req::parse_experiment_id(&req.str("experiment_id")?)?;
    required("prompt_template")?;
    let template = req.str("prompt_template")?;
    required("prompt_parameters")?;
    let prompt = promptlab_params(&req, "prompt_parameters")?;
    required("model_route")?;
    let route = req.str("model_route")?;
    let model = promptlab_params(&req, "model_parameters")?;
    required("model_input")?;
    let input = req.raw("model_input").cloned().unwrap_or(Value::Null);
    let output = req.raw("model_output").cloned().unwrap_or(Value::Null);
    let output_params = promptlab_params(&req, "model_output_parameters")?;
    required("mlflow_version")?;
    let (tags, user_id) = tags_and_user(&req, who)?;
    let run_name = req.opt_str("run_name")?;
    let c = CreateRun {
        experiment_id,
        user_id,
        run_name: run_name.clone(),
        start_time: Some(req.opt_i64("start_time")?.unwrap_or_else(store::now_ms)),
        tags,
    };
    let info = workspace::on_experiment(&s, req.workspace(), c.experiment_id, move |st, _| {
        st.create_run(c)
    })
    .await?;
    let run_id = info.run_id.clone();
    let files = PromptlabFiles {
        template,
        route,
        prompt,
        model,
        input,
        output,
        output_params,
        run_id: run_id.clone(),
        created: utc_time_created(store::now_ms()),
        model_uuid: uuid::Uuid::new_v4().simple().to_string(),
    };
    let logged = log_promptlab(&s, &info.artifact_uri, &files).await;
    if let Err(e) = &logged {
        tracing::warn!(run_id = %run_id, "promptlab run failed: {}", e.message);
    }
    let upd = UpdateRun {
        status: Some(if logged.is_ok() {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        }),
        end_time: Some(store::now_ms()),
        run_name,
    };
    let id = run_id.clone();
    s.db(move |st| st.update_run(&id, upd)).await?;
    let run = s.db(move |st| st.get_run(&run_id)).await?;
    Ok(Json(json!({"run": wire::run(&run)})))
}

async fn log_promptlab(
    s: &AppState,
    artifact_uri: &str,
    f: &PromptlabFiles,
) -> Result<(), ApiError> {
    let mut params = f.model.clone();
    params.push(Tag::new("model_route", f.route.clone()));
    params.push(Tag::new("prompt_template", f.template.clone()));
    let params: Vec<Tag> = params
        .into_iter()
        .map(|p| {
            let v = validate::truncate("param", &p.key, p.value, validate::MAX_PARAM_VAL_LENGTH);
            Tag::new(p.key, v)
        })
        .collect();
    let history = format!(
        "[{{\"run_id\": \"{}\", \"artifact_path\": \"model\", \"utc_time_created\": \"{}\", \"model_uuid\": \"{}\", \"flavors\": {{}}}}]",
        f.run_id, f.created, f.model_uuid
    );
    let tags = vec![
        Tag::new(
            "mlflow.loggedArtifacts",
            "[{\"path\": \"eval_results_table.json\", \"type\": \"table\"}]",
        ),
        Tag::new("mlflow.runSourceType", "PROMPT_ENGINEERING"),
        Tag::new("mlflow.log-model.history", history),
    ];
    let id = f.run_id.clone();
    s.db(move |st| st.log_batch(&id, &[], &params, &tags))
        .await?;
    let root = super::artifacts::proxied_root(artifact_uri)?;
    for (rel, text) in f.files() {
        s.artifacts
            .put_bytes(&root.join(rel)?, bytes::Bytes::from(text))
            .await?;
    }
    Ok(())
}
