//! MLflow 3 registered scorers (`/api/3.0/mlflow/scorers/…`), the endpoints
//! behind `Scorer.register`, `mlflow.genai.scorers.list_scorers`,
//! `get_scorer`, `delete_scorer` and `list_scorer_versions`.
//!
//! Atelier keeps the serialized scorer as the client sent it and never runs
//! it. It still refuses what MLflow's server refuses, because a client that
//! loads a scorer rebuilds it: a `@scorer` function carries its source code
//! (`call_source`), which the loading client `exec()`s, so such scorers are
//! refused unless `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS` is true on the
//! server, as MLflow does; third-party scorer options that choose where the
//! judge sends requests are always refused. Online scoring (a scorer run on
//! incoming traces) is not offered: its configuration endpoint says so.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use store::ScorerVersion;

use super::JsonResult;
use crate::AppState;
use crate::error::ApiError;
use crate::req::{Req, parse_experiment_id};
use crate::wire::Obj;
use crate::workspace;

/// MLflow's message for a `@scorer` function the server will not take.
const DECORATOR_SCORER_REFUSED: &str = "Custom scorer registration (using @scorer decorator) is disabled by default outside of Databricks tracking environments due to security concerns. Custom scorers require arbitrary code execution during deserialization.\n\nTo use custom scorers:\n1. Configure MLflow to use a Databricks tracking URI, or\n2. Manage your custom scorer code in a source code repository (e.g., GitHub) and import it directly, or\n3. On a self-managed MLflow server (or local environment) that you trust to run the scorer's code, set the MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS environment variable to true, or\n4. Use built-in scorers or make_judge() scorers instead.";

/// Third-party scorer options that pick the host the judge's LLM client calls.
const DESTINATION_KEYS: [&str; 5] = [
    "api_base",
    "base_url",
    "custom_llm_provider",
    "fallbacks",
    "model_list",
];

fn custom_scorers_enabled() -> bool {
    std::env::var("MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"))
        .unwrap_or(false)
}

fn has_call_source(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.get("call_source").is_some_and(|c| !c.is_null()) || m.values().any(has_call_source)
        }
        Value::Array(a) => a.iter().any(has_call_source),
        _ => false,
    }
}

fn destination_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, nested) in m {
                if DESTINATION_KEYS.contains(&k.as_str()) {
                    out.push(k.clone());
                }
                destination_keys(nested, out);
            }
        }
        Value::Array(a) => {
            for nested in a {
                // option maps sent as lists of [key, value] pairs
                if let Value::Array(pair) = nested
                    && pair.len() == 2
                    && let Value::String(k) = &pair[0]
                    && DESTINATION_KEYS.contains(&k.as_str())
                {
                    out.push(k.clone());
                }
                destination_keys(nested, out);
            }
        }
        _ => {}
    }
}

fn third_party_data<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(d @ Value::Object(_)) = m.get("third_party_scorer_data") {
                out.push(d);
            }
            for nested in m.values() {
                third_party_data(nested, out);
            }
        }
        Value::Array(a) => {
            for nested in a {
                third_party_data(nested, out);
            }
        }
        _ => {}
    }
}

/// The judge model a serialized scorer names, where MLflow looks for it.
fn scorer_model(v: &Value) -> Option<&Value> {
    for key in [
        "instructions_judge_pydantic_data",
        "builtin_scorer_pydantic_data",
        "third_party_scorer_data",
    ] {
        if let Some(d) = v.get(key).filter(|d| d.is_object()) {
            return d.get("model").filter(|m| !m.is_null());
        }
    }
    v.get("memory_augmented_judge_data")
        .and_then(|m| m.get("base_judge"))
        .and_then(scorer_model)
}

/// What MLflow's server checks before it stores a serialized scorer.
fn check_serialized_scorer(serialized: &str) -> Result<(), ApiError> {
    let data: Value = serde_json::from_str(serialized)
        .map_err(|_| ApiError::invalid("serialized_scorer must be valid JSON"))?;
    if has_call_source(&data) && !custom_scorers_enabled() {
        return Err(ApiError::invalid(DECORATOR_SCORER_REFUSED));
    }
    let mut tp = Vec::new();
    third_party_data(&data, &mut tp);
    for d in tp {
        let kwargs = d.get("kwargs").unwrap_or(&Value::Null);
        if !kwargs.is_null() && !kwargs.is_object() {
            return Err(ApiError::invalid(
                "third_party_scorer_data.kwargs must be a JSON object",
            ));
        }
        let mut found = Vec::new();
        destination_keys(kwargs, &mut found);
        found.sort();
        found.dedup();
        if !found.is_empty() {
            let list: Vec<String> = found.iter().map(|k| format!("'{k}'")).collect();
            return Err(ApiError::invalid(format!(
                "third_party_scorer_data.kwargs must not contain {}: these options choose where the scorer's LLM client sends requests. Configure the judge endpoint on the server instead, for example through the provider's environment variables.",
                list.join(", ")
            )));
        }
    }
    match scorer_model(&data) {
        None => {}
        Some(Value::String(m)) if m.trim().is_empty() => {
            return Err(ApiError::invalid(
                "Scorer model cannot be empty or contain only whitespace.",
            ));
        }
        Some(Value::String(m)) if m.starts_with("gateway:/") => {
            return Err(ApiError::not_found(format!(
                "The scorer's model '{m}' names an AI gateway endpoint, and this server has no AI gateway: use a provider model such as 'openai:/gpt-4o-mini'"
            )));
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Scorer model must be a string, got {other}."
            )));
        }
    }
    Ok(())
}

fn scorer_json(v: &ScorerVersion) -> Value {
    json!({
        "experiment_id": v.experiment_id,
        "scorer_name": v.scorer_name,
        "scorer_version": v.scorer_version,
        "serialized_scorer": v.serialized_scorer,
        "creation_time": v.creation_time,
        "scorer_id": v.scorer_id,
    })
}

fn scorers_json(list: &[ScorerVersion]) -> Value {
    Obj::new()
        .v(
            "scorers",
            Value::Array(list.iter().map(scorer_json).collect()),
        )
        .done()
}

fn experiment(req: &Req) -> Result<i64, ApiError> {
    parse_experiment_id(&req.nonempty("experiment_id")?)
}

fn name(req: &Req) -> Result<String, ApiError> {
    let n = req.str("name")?;
    if n.trim().is_empty() {
        return Err(ApiError::invalid(
            "Scorer name cannot be empty or contain only whitespace.",
        ));
    }
    Ok(n)
}

pub async fn register_scorer(State(s): State<AppState>, req: Req) -> JsonResult {
    let exp = experiment(&req)?;
    let name = name(&req)?;
    let serialized = req.nonempty("serialized_scorer")?;
    check_serialized_scorer(&serialized)?;
    let v = workspace::on_experiment(&s, req.workspace(), exp, move |st, exp| {
        st.register_scorer(exp, &name, &serialized)
    })
    .await?;
    Ok(Json(json!({
        "version": v.scorer_version,
        "scorer_id": v.scorer_id,
        "experiment_id": v.experiment_id.to_string(),
        "name": v.scorer_name,
        "serialized_scorer": v.serialized_scorer,
        "creation_time": v.creation_time,
    })))
}

pub async fn list_scorers(State(s): State<AppState>, req: Req) -> JsonResult {
    let one = req.opt_str("experiment_id")?.filter(|e| !e.is_empty());
    let many = req.raw("experiment_ids").is_some();
    let list = match (one, many) {
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "Cannot specify both 'experiment_id' and 'experiment_ids'. Use 'experiment_ids' to scope the query to multiple experiments, or 'experiment_id' to scope it to a single experiment.",
            ));
        }
        (Some(e), false) => {
            let id = parse_experiment_id(&e)?;
            workspace::on_experiment(&s, req.workspace(), id, |st, id| st.list_scorers(id)).await?
        }
        (None, true) => {
            let ids = req
                .str_list("experiment_ids")?
                .iter()
                .map(|e| {
                    e.trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| ApiError::invalid(format!("Invalid experiment ID: '{e}'")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let ws = workspace::of(&req);
            s.db(move |st| {
                let ids = workspace::experiments_of(st, &ws, ids)?;
                st.list_scorers_across(Some(&ids))
            })
            .await?
        }
        (None, false) => {
            // (every experiment of the workspace)
            let ws = workspace::of(&req);
            s.db(move |st| {
                let all = st.list_scorers_across(None)?;
                workspace::only_in(all, |v| workspace::experiment_in(st, &ws, v.experiment_id))
            })
            .await?
        }
    };
    Ok(Json(scorers_json(&list)))
}

pub async fn list_scorer_versions(State(s): State<AppState>, req: Req) -> JsonResult {
    let exp = experiment(&req)?;
    let name = name(&req)?;
    let list = workspace::on_experiment(&s, req.workspace(), exp, move |st, exp| {
        st.list_scorer_versions(exp, &name)
    })
    .await?;
    Ok(Json(scorers_json(&list)))
}

pub async fn get_scorer(State(s): State<AppState>, req: Req) -> JsonResult {
    let exp = experiment(&req)?;
    let name = name(&req)?;
    let version = req.opt_i64("version")?;
    let v = workspace::on_experiment(&s, req.workspace(), exp, move |st, exp| {
        st.get_scorer(exp, &name, version)
    })
    .await?;
    Ok(Json(json!({"scorer": scorer_json(&v)})))
}

pub async fn delete_scorer(State(s): State<AppState>, req: Req) -> JsonResult {
    let exp = experiment(&req)?;
    let name = name(&req)?;
    let version = req.opt_i64("version")?;
    workspace::on_experiment(&s, req.workspace(), exp, move |st, exp| {
        st.delete_scorer(exp, &name, version)
    })
    .await?;
    super::empty()
}

/// No scorer here has an online-scoring configuration (see the module doc).
pub async fn get_online_scoring_configs(req: Req) -> JsonResult {
    if req.str_list("scorer_ids")?.is_empty() {
        return Err(ApiError::invalid(
            "Missing value for required parameter 'scorer_ids'.",
        ));
    }
    Ok(Json(json!({"configs": []})))
}

pub async fn upsert_online_scoring_config() -> JsonResult {
    Err(ApiError::invalid(
        "Online scoring (Scorer.start / Scorer.update with a sampling config) is not supported by this server: it stores registered scorers but does not run them on incoming traces. Evaluate with mlflow.genai.evaluate(data=..., scorers=[...]) instead.",
    ))
}
