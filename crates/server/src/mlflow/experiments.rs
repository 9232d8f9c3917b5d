use axum::Json;
use axum::extract::State;
use serde_json::json;
use store::{SearchExperiments, ViewType};

use super::{JsonResult, empty};
use crate::error::ApiError;
use crate::req::Req;
use crate::{AppState, validate, wire, workspace};

pub fn view_type(req: &Req, key: &str) -> Result<ViewType, ApiError> {
    Ok(match req.opt_str(key)?.as_deref() {
        None | Some("") | Some("ACTIVE_ONLY") | Some("1") => ViewType::ActiveOnly,
        Some("DELETED_ONLY") | Some("2") => ViewType::DeletedOnly,
        Some("ALL") | Some("3") => ViewType::All,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid view type '{other}': use ACTIVE_ONLY, DELETED_ONLY or ALL"
            )));
        }
    })
}

pub async fn create(State(s): State<AppState>, req: Req) -> JsonResult {
    let name = req.str("name")?;
    validate::experiment_name(&name)?;
    let loc = req
        .opt_str("artifact_location")?
        .map(|l| resolve_if_local(&l));
    let tags = req.tags("tags")?;
    for t in &tags {
        validate::key("tag", &t.key)?;
        validate::value_length(
            "Experiment tag",
            &t.key,
            &t.value,
            validate::MAX_EXPERIMENT_TAG_VAL_LENGTH,
        )?;
    }
    let ws = workspace::of(&req);
    // as MLflow with workspaces: a project's experiments keep their
    // artifacts where the server puts them (in the project's part of the
    // store), never at a location a caller picks, which could be another
    // project's (the default project keeps MLflow's behaviour)
    if loc.as_deref().is_some_and(|l| !l.is_empty()) && ws != store::DEFAULT_WORKSPACE {
        return Err(ApiError::invalid(format!(
            "artifact_location cannot be specified when workspaces are enabled: experiments of project '{ws}' keep their artifacts in the project's part of the artifact store; leave artifact_location out"
        )));
    }
    let id = s
        .db(move |st| {
            // a location in the server's store must be the project's own part of it
            // (never another project's folder or experiment)
            if let Some(p) = loc.as_deref().and_then(artifacts::proxied_path)
                && workspace::artifact_in(st, &ws, p).is_err()
            {
                return Err(store::StoreError::InvalidParameter(format!(
                    "artifact_location 'mlflow-artifacts:/{p}' is not in project '{ws}''s part of the artifact store; leave artifact_location out, or name a folder of your own"
                )));
            }
            st.create_experiment_in(&ws, &name, loc.as_deref(), &tags)
        })
        .await?;
    Ok(Json(json!({"experiment_id": id.to_string()})))
}

/// A relative local `artifact_location` ("runs/x", "file:runs/x") made
/// absolute against the server's working directory, as MLflow's store does;
/// any other location is kept as given.
fn resolve_if_local(loc: &str) -> String {
    let scheme = loc.split_once(':').map(|(s, _)| s).filter(|s| {
        s.len() > 1
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    let path = match scheme {
        None => loc,
        Some(s) if s.eq_ignore_ascii_case("file") => &loc[s.len() + 1..],
        Some(_) => return loc.to_string(),
    };
    if path.is_empty() || path.starts_with('/') {
        return loc.to_string();
    }
    let Ok(cwd) = std::env::current_dir() else {
        return loc.to_string();
    };
    let abs = cwd.join(path).to_string_lossy().into_owned();
    match scheme {
        None => abs,
        Some(s) => format!("{s}://{abs}"),
    }
}

pub async fn get_one(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.experiment_id("experiment_id")?;
    let e = workspace::on_experiment(&s, req.workspace(), id, move |st, id| st.get_experiment(id))
        .await?;
    Ok(Json(json!({"experiment": wire::experiment(&e)})))
}

pub async fn get_by_name(State(s): State<AppState>, req: Req) -> JsonResult {
    let name = req.str("experiment_name")?;
    let ws = workspace::of(&req);
    let e = s
        .db(move |st| st.get_experiment_by_name_in(&ws, &name))
        .await?;
    Ok(Json(json!({"experiment": wire::experiment(&e)})))
}

pub async fn search(State(s): State<AppState>, req: Req) -> JsonResult {
    let q = SearchExperiments {
        workspace: Some(workspace::of(&req)),
        filter: req.opt_str("filter")?.unwrap_or_default(),
        view_type: view_type(&req, "view_type")?,
        max_results: req.max_results("max_results", 1000, 50000)?,
        order_by: req.str_list("order_by")?,
        page_token: req.opt_str("page_token")?,
    };
    let page = s.db(move |st| st.search_experiments(&q)).await?;
    let mut out = wire::Obj::new().v(
        "experiments",
        serde_json::Value::Array(page.items.iter().map(wire::experiment).collect()),
    );
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}

pub async fn update(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.experiment_id("experiment_id")?;
    if let Some(name) = req.opt_str("new_name")? {
        validate::experiment_name(&name)?;
        workspace::on_experiment(&s, req.workspace(), id, move |st, id| {
            st.rename_experiment(id, &name)
        })
        .await?;
    } else {
        workspace::on_experiment(&s, req.workspace(), id, |_, _| Ok(())).await?;
    }
    empty()
}

pub async fn delete(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.experiment_id("experiment_id")?;
    workspace::on_experiment(&s, req.workspace(), id, move |st, id| {
        st.delete_experiment(id)
    })
    .await?;
    empty()
}

pub async fn restore(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.experiment_id("experiment_id")?;
    workspace::on_experiment(&s, req.workspace(), id, move |st, id| {
        st.restore_experiment(id)
    })
    .await?;
    empty()
}

pub async fn set_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.experiment_id("experiment_id")?;
    let key = req.str("key")?;
    validate::key("tag", &key)?;
    let value = req.opt_str("value")?.unwrap_or_default();
    validate::value_length(
        "Experiment tag",
        &key,
        &value,
        validate::MAX_EXPERIMENT_TAG_VAL_LENGTH,
    )?;
    workspace::on_experiment(&s, req.workspace(), id, move |st, id| {
        st.set_experiment_tag(id, &key, &value)
    })
    .await?;
    empty()
}

pub async fn delete_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.experiment_id("experiment_id")?;
    let key = req.str("key")?;
    workspace::on_experiment(&s, req.workspace(), id, move |st, id| {
        st.delete_experiment_tag(id, &key)
    })
    .await?;
    empty()
}

/// MLflow's limit on `search-datasets`.
const MAX_EXPERIMENT_IDS_SEARCH_DATASETS: usize = 20;

/// UI endpoint `experiments/search-datasets`: the datasets the runs of
/// these experiments logged as inputs, one summary per (experiment, name,
/// digest, context), as MLflow's server answers.
pub async fn search_datasets(State(s): State<AppState>, req: Req) -> JsonResult {
    let ids = req.str_list("experiment_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "SearchDatasets request must specify at least one experiment_id.",
        ));
    }
    if ids.len() > MAX_EXPERIMENT_IDS_SEARCH_DATASETS {
        return Err(ApiError::invalid(format!(
            "SearchDatasets request cannot specify more than {MAX_EXPERIMENT_IDS_SEARCH_DATASETS} experiment_ids. Received {} experiment_ids.",
            ids.len()
        )));
    }
    let ids = ids
        .iter()
        .map(|id| {
            id.trim().parse::<i64>().map_err(|_| {
                ApiError::invalid(format!(
                    "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ws = workspace::of(&req);
    let found = s
        .db(move |st| {
            // (another workspace's experiments are not there)
            let ids = workspace::experiments_of(st, &ws, ids)?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            st.search_datasets(&ids)
        })
        .await?;
    if found.is_empty() {
        return empty();
    }
    let summaries = found.iter().map(wire::dataset_summary).collect();
    Ok(Json(
        json!({"dataset_summaries": serde_json::Value::Array(summaries)}),
    ))
}
