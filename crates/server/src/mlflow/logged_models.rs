use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{Value, json};
use store::{CreateLoggedModel, SearchLoggedModels};

use super::{JsonResult, empty};
use crate::error::ApiError;
use crate::req::Req;
use crate::workspace::{self, Ws, logged_model_in};
use crate::{AppState, validate, wire};

pub async fn create(State(s): State<AppState>, req: Req) -> JsonResult {
    let experiment_id = req.experiment_id("experiment_id")?;
    let c = CreateLoggedModel {
        experiment_id,
        name: req.opt_str("name")?.unwrap_or_default(),
        model_type: req.opt_str("model_type")?.unwrap_or_default(),
        source_run_id: req.opt_str("source_run_id")?.unwrap_or_default(),
        tags: req.tags("tags")?,
        params: req.tags("params")?,
    };
    for t in c.tags.iter().chain(&c.params) {
        validate::key("tag", &t.key)?;
    }
    let m = workspace::on_experiment(&s, req.workspace(), experiment_id, move |st, _| {
        st.create_logged_model(c)
    })
    .await?;
    Ok(Json(json!({"model": wire::logged_model(&m)})))
}

pub async fn get_one(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path(id): Path<String>,
) -> JsonResult {
    let m = s
        .db(move |st| {
            logged_model_in(st, &ws.0, &id)?;
            st.get_logged_model(&id)
        })
        .await?;
    Ok(Json(json!({"model": wire::logged_model(&m)})))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path(id): Path<String>,
) -> JsonResult {
    s.db(move |st| {
        logged_model_in(st, &ws.0, &id)?;
        st.delete_logged_model(&id)
    })
    .await?;
    empty()
}

pub async fn finalize(State(s): State<AppState>, Path(id): Path<String>, req: Req) -> JsonResult {
    let ws = workspace::of(&req);
    let status = req.nonempty("status")?;
    const OK: [&str; 3] = [
        "LOGGED_MODEL_PENDING",
        "LOGGED_MODEL_READY",
        "LOGGED_MODEL_UPLOAD_FAILED",
    ];
    if !OK.contains(&status.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid logged model status '{status}': use one of {OK:?}"
        )));
    }
    let m = s
        .db(move |st| {
            logged_model_in(st, &ws, &id)?;
            st.finalize_logged_model(&id, &status)
        })
        .await?;
    Ok(Json(json!({"model": wire::logged_model(&m)})))
}

pub async fn set_tags(State(s): State<AppState>, Path(id): Path<String>, req: Req) -> JsonResult {
    let tags = req.tags("tags")?;
    for t in &tags {
        validate::key("tag", &t.key)?;
    }
    let ws = workspace::of(&req);
    s.db(move |st| {
        logged_model_in(st, &ws, &id)?;
        st.set_logged_model_tags(&id, &tags)
    })
    .await?;
    empty()
}

pub async fn delete_tag(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path((id, key)): Path<(String, String)>,
) -> JsonResult {
    s.db(move |st| {
        logged_model_in(st, &ws.0, &id)?;
        st.delete_logged_model_tag(&id, &key)
    })
    .await?;
    empty()
}

pub async fn log_params(State(s): State<AppState>, Path(id): Path<String>, req: Req) -> JsonResult {
    let params = req.tags("params")?;
    for p in &params {
        validate::key("param", &p.key)?;
    }
    let ws = workspace::of(&req);
    s.db(move |st| {
        logged_model_in(st, &ws, &id)?;
        st.log_logged_model_params(&id, &params)
    })
    .await?;
    empty()
}

pub async fn search(State(s): State<AppState>, req: Req) -> JsonResult {
    let experiment_ids = req
        .str_list("experiment_ids")?
        .iter()
        .map(|e| crate::req::parse_experiment_id(e))
        .collect::<Result<Vec<_>, _>>()?;
    let q = SearchLoggedModels {
        experiment_ids,
        filter: req.opt_str("filter")?.unwrap_or_default(),
        max_results: req.max_results("max_results", 50, 10_000)?,
        page_token: req.opt_str("page_token")?,
        workspace: None,
    };
    let ws = workspace::of(&req);
    let page = s
        .db(move |st| {
            // (models of another workspace's experiments are not there)
            let mut q = q;
            let asked = !q.experiment_ids.is_empty();
            q.experiment_ids =
                workspace::experiments_of(st, &ws, std::mem::take(&mut q.experiment_ids))?;
            if asked && q.experiment_ids.is_empty() {
                return Ok(store::Page {
                    items: Vec::new(),
                    next_page_token: None,
                });
            }
            q.workspace = Some(ws);
            st.search_logged_models(&q)
        })
        .await?;
    let mut out = wire::Obj::new().v(
        "models",
        Value::Array(page.items.iter().map(wire::logged_model).collect()),
    );
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}
