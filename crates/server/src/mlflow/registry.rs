use axum::Json;
use axum::extract::{Extension, State};
use axum::response::Response;
use serde_json::{Value, json};
use store::{CreateModelVersion, MetadataStore, SearchRegistry};

use super::{JsonResult, empty};
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::req::Req;
use crate::workspace;
use crate::{AppState, validate, wire};

/// Run `f` on registered model `name` of the request's workspace (one of
/// another workspace answers as missing), the check and the work in one trip.
async fn on_model<T, F>(s: &AppState, req: &Req, name: String, f: F) -> ApiResult<T>
where
    F: FnOnce(&dyn MetadataStore, &str) -> store::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let ws = workspace::of(req);
    s.db(move |st| {
        workspace::model_in(st, &ws, &name)?;
        f(st, &name)
    })
    .await
}

fn version(req: &Req) -> Result<i64, ApiError> {
    let v = req.str("version")?;
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Model version must be a positive integer, got '{v}'"
            ))
        })
}

fn name(req: &Req) -> Result<String, ApiError> {
    let n = req.nonempty("name")?;
    if n.chars().count() > 256 {
        return Err(ApiError::invalid(
            "Registered model name must be at most 256 characters",
        ));
    }
    Ok(n)
}

fn registry_tags(req: &Req) -> Result<Vec<store::Tag>, ApiError> {
    let tags = req.tags("tags")?;
    for t in &tags {
        validate::key("tag", &t.key)?;
        validate::value_length(
            "Registry tag",
            &t.key,
            &t.value,
            validate::MAX_REGISTRY_TAG_VAL_LENGTH,
        )?;
    }
    Ok(tags)
}

pub async fn create_model(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    req: Req,
) -> JsonResult {
    let n = name(&req)?;
    let tags = registry_tags(&req)?;
    let desc = req.opt_str("description")?.unwrap_or_default();
    let ws = workspace::of(&req);
    let m = s
        .db(move |st| st.create_registered_model_in(&ws, &n, &tags, &desc, &who.name))
        .await?;
    Ok(Json(
        json!({"registered_model": wire::registered_model(&m)}),
    ))
}

pub async fn get_model(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let m = on_model(&s, &req, n, move |st, n| st.get_registered_model(n)).await?;
    Ok(Json(
        json!({"registered_model": wire::registered_model(&m)}),
    ))
}

pub async fn rename_model(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let new = req.nonempty("new_name")?;
    let m = on_model(&s, &req, n, move |st, n| {
        st.rename_registered_model(n, &new)
    })
    .await?;
    Ok(Json(
        json!({"registered_model": wire::registered_model(&m)}),
    ))
}

pub async fn update_model(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let desc = req.opt_str("description")?.unwrap_or_default();
    let m = on_model(&s, &req, n, move |st, n| {
        st.update_registered_model(n, &desc)
    })
    .await?;
    Ok(Json(
        json!({"registered_model": wire::registered_model(&m)}),
    ))
}

pub async fn delete_model(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    on_model(&s, &req, n, move |st, n| st.delete_registered_model(n)).await?;
    empty()
}

fn search_query(req: &Req, default_max: usize) -> Result<SearchRegistry, ApiError> {
    Ok(SearchRegistry {
        workspace: Some(workspace::of(req)),
        filter: req.opt_str("filter")?.unwrap_or_default(),
        max_results: req.max_results("max_results", default_max, 200_000)?,
        order_by: req.str_list("order_by")?,
        page_token: req.opt_str("page_token")?,
    })
}

pub async fn search_models(State(s): State<AppState>, req: Req) -> JsonResult {
    let q = search_query(&req, 100)?;
    let page = s.db(move |st| st.search_registered_models(&q)).await?;
    let mut out = wire::Obj::new().v(
        "registered_models",
        Value::Array(page.items.iter().map(wire::registered_model).collect()),
    );
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}

pub async fn latest_versions(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let stages = req.str_list("stages")?;
    let vs = on_model(&s, &req, n, move |st, n| st.latest_versions(n, &stages)).await?;
    Ok(Json(
        wire::Obj::new()
            .v(
                "model_versions",
                Value::Array(vs.iter().map(wire::model_version).collect()),
            )
            .done(),
    ))
}

pub async fn set_model_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let key = req.str("key")?;
    validate::key("tag", &key)?;
    let value = req.opt_str("value")?.unwrap_or_default();
    validate::value_length(
        "Registry tag",
        &key,
        &value,
        validate::MAX_REGISTRY_TAG_VAL_LENGTH,
    )?;
    on_model(&s, &req, n, move |st, n| {
        st.set_registered_model_tag(n, &key, &value)
    })
    .await?;
    empty()
}

pub async fn delete_model_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let key = req.str("key")?;
    on_model(&s, &req, n, move |st, n| {
        st.delete_registered_model_tag(n, &key)
    })
    .await?;
    empty()
}

fn alias(req: &Req) -> Result<String, ApiError> {
    let a = req.nonempty("alias")?;
    if a.chars().count() > 255 {
        return Err(ApiError::invalid("Alias must be at most 255 characters"));
    }
    if a.eq_ignore_ascii_case("latest") || (a.starts_with('v') && a[1..].parse::<u64>().is_ok()) {
        return Err(ApiError::invalid(format!(
            "'{a}' is reserved (it would be confused with a version reference); choose another alias"
        )));
    }
    Ok(a)
}

pub async fn set_alias(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let a = alias(&req)?;
    let v = version(&req)?;
    on_model(&s, &req, n, move |st, n| st.set_alias(n, &a, v)).await?;
    empty()
}

pub async fn delete_alias(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let a = req.nonempty("alias")?;
    on_model(&s, &req, n, move |st, n| st.delete_alias(n, &a)).await?;
    empty()
}

pub async fn get_by_alias(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let a = req.nonempty("alias")?;
    let mv = on_model(&s, &req, n, move |st, n| st.get_version_by_alias(n, &a)).await?;
    Ok(Json(json!({"model_version": wire::model_version(&mv)})))
}

pub async fn create_version(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    req: Req,
) -> JsonResult {
    let c = CreateModelVersion {
        name: name(&req)?,
        source: req.nonempty("source")?,
        run_id: req.opt_str("run_id")?.unwrap_or_default(),
        tags: registry_tags(&req)?,
        run_link: req.opt_str("run_link")?.unwrap_or_default(),
        description: req.opt_str("description")?.unwrap_or_default(),
        model_id: req.opt_str("model_id")?.unwrap_or_default(),
        user_id: who.name,
    };
    let mut c = c;
    if c.run_id.is_empty() && !c.model_id.is_empty() {
        // log_model registers with only the logged model: link its run, as MLflow does
        let id = c.model_id.clone();
        let ws = workspace::of(&req);
        if let Ok(m) = s
            .db(move |st| {
                workspace::logged_model_in(st, &ws, &id)?;
                st.get_logged_model(&id)
            })
            .await
        {
            c.run_id = m.source_run_id;
        }
    }
    if !c.run_id.is_empty() {
        let rid = c.run_id.clone();
        match workspace::on_run(&s, req.workspace(), rid, |st, id| st.get_run(id)).await {
            Ok(_) => {}
            Err(e) if e.code == crate::error::ErrorCode::ResourceDoesNotExist => {
                if !source_may_name_a_missing_run(&c.source, &c.run_id) {
                    return Err(ApiError::invalid(format!(
                        "Invalid model version source: '{}'. The run_id request parameter must identify the resource that contains the source.",
                        c.source
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
    let model_id = c.model_id.clone();
    let n = c.name.clone();
    let ws = workspace::of(&req);
    let mv = on_model(&s, &req, n, move |st, _| {
        source_in(st, &ws, &c.source)?;
        st.create_model_version(c)
    })
    .await?;
    if !model_id.is_empty() {
        // the logged model lists the versions made from it, as MLflow's server tags it
        let (name, version) = (mv.name.clone(), mv.version);
        let ws = workspace::of(&req);
        s.db(move |st| {
            workspace::logged_model_in(st, &ws, &model_id)?;
            let m = st.get_logged_model(&model_id)?;
            let old = m
                .tags
                .iter()
                .find(|t| t.key == MODEL_VERSIONS_TAG)
                .map(|t| t.value.clone());
            let value = model_versions_tag(old.as_deref(), &name, version);
            st.set_logged_model_tags(&model_id, &[store::Tag::new(MODEL_VERSIONS_TAG, value)])
        })
        .await?;
    }
    Ok(Json(json!({"model_version": wire::model_version(&mv)})))
}

/// Refuse a version source that names another workspace's run, logged
/// model or artifacts (its files would be served as this model's).
fn source_in(st: &dyn MetadataStore, ws: &str, source: &str) -> store::Result<()> {
    let other = |home: store::Result<String>| home.is_ok_and(|h| h != ws);
    let refused = other(match source.strip_prefix("runs:/") {
        Some(rest) => {
            st.run_workspace(rest.trim_start_matches('/').split('/').next().unwrap_or(""))
        }
        None => match source
            .strip_prefix("models:/")
            .filter(|r| r.starts_with("m-"))
        {
            Some(id) => st.logged_model_workspace(id.split('/').next().unwrap_or(id)),
            None => Err(store::StoreError::NotFound(String::new())),
        },
    }) || source
        .strip_prefix(super::artifacts::URI_SCHEME)
        .and_then(|p| artifacts::ArtifactPath::parse(p).ok())
        .is_some_and(|p| super::artifacts::owned_path(st, ws, false, &p).is_err());
    if refused {
        return Err(store::StoreError::InvalidParameter(format!(
            "Invalid model version source: '{source}'. It names artifacts this project does not have."
        )));
    }
    Ok(())
}

/// MLflow's server only looks the run up when the source lives in the run's
/// artifacts (an `mlflow-artifacts:` URI or a local path); a `runs:/` source
/// naming the same run, or one in outside storage (`s3://`, `gs://`, …), is
/// registered even when the run is not on this server (copied registries,
/// runs tracked elsewhere).
fn source_may_name_a_missing_run(source: &str, run_id: &str) -> bool {
    let scheme = source
        .split_once("://")
        .or_else(|| source.split_once(":/"))
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("runs") => source
            .strip_prefix("runs:/")
            .map(|rest| rest.trim_start_matches('/'))
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|id| id == run_id),
        None | Some("file") | Some("mlflow-artifacts") => false,
        Some(_) => true,
    }
}

/// MLflow's tag on a logged model listing the registered versions made from it.
const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

/// The tag's new value: the old list (if it parses) plus `{name, version}`
/// unless already there, written as Python's `json.dumps` writes it (MLflow's
/// server makes it so; clients compare the text).
fn model_versions_tag(old: Option<&str>, name: &str, version: i64) -> String {
    let entry = json!({"name": name, "version": version});
    let mut list = old
        .and_then(|o| serde_json::from_str::<Vec<Value>>(o).ok())
        .unwrap_or_default();
    if !list.contains(&entry) {
        list.push(entry);
    }
    python_json(&Value::Array(list))
}

/// `json.dumps(v)` with Python's defaults: ", " and ": " separators, keys in
/// insertion order, non-ASCII escaped as \uXXXX.
pub(super) fn python_json(v: &Value) -> String {
    match v {
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", python_str(k), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::String(s) => python_str(s),
        other => other.to_string(),
    }
}

fn python_str(s: &str) -> String {
    // serde_json's escapes for quotes, backslashes and control characters are Python's too
    let quoted = Value::String(s.to_string()).to_string();
    let inner = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default();
    let mut out = String::from("\"");
    for c in inner.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out.push('"');
    out
}

pub async fn get_version(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let v = version(&req)?;
    let mv = on_model(&s, &req, n, move |st, n| st.get_model_version(n, v)).await?;
    Ok(Json(json!({"model_version": wire::model_version(&mv)})))
}

pub async fn update_version(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let v = version(&req)?;
    let desc = req.opt_str("description")?.unwrap_or_default();
    let mv = on_model(&s, &req, n, move |st, n| {
        st.update_model_version(n, v, &desc)
    })
    .await?;
    Ok(Json(json!({"model_version": wire::model_version(&mv)})))
}

pub async fn delete_version(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let v = version(&req)?;
    on_model(&s, &req, n, move |st, n| st.delete_model_version(n, v)).await?;
    empty()
}

pub async fn search_versions(State(s): State<AppState>, req: Req) -> JsonResult {
    let q = search_query(&req, 10_000)?;
    let page = s.db(move |st| st.search_model_versions(&q)).await?;
    let mut out = wire::Obj::new().v(
        "model_versions",
        Value::Array(page.items.iter().map(wire::model_version).collect()),
    );
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}

pub async fn download_uri(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let v = version(&req)?;
    let mv = on_model(&s, &req, n, move |st, n| st.get_model_version(n, v)).await?;
    // A version registered from a logged model points at its artifacts.
    let uri = if let Some(id) = mv
        .source
        .strip_prefix("models:/")
        .filter(|id| id.starts_with("m-"))
    {
        let id = id.to_string();
        s.db(move |st| st.get_logged_model(&id))
            .await
            .map(|m| m.artifact_uri)
            .unwrap_or(mv.source)
    } else {
        mv.source
    };
    Ok(Json(json!({"artifact_uri": uri})))
}

pub async fn transition_stage(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let v = version(&req)?;
    let stage = req.nonempty("stage")?;
    let archive = req.opt_bool("archive_existing_versions")?.unwrap_or(false);
    let mv = on_model(&s, &req, n, move |st, n| {
        st.transition_stage(n, v, &stage, archive)
    })
    .await?;
    Ok(Json(json!({"model_version": wire::model_version(&mv)})))
}

pub async fn set_version_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let v = version(&req)?;
    let key = req.str("key")?;
    validate::key("tag", &key)?;
    let value = req.opt_str("value")?.unwrap_or_default();
    validate::value_length(
        "Registry tag",
        &key,
        &value,
        validate::MAX_REGISTRY_TAG_VAL_LENGTH,
    )?;
    on_model(&s, &req, n, move |st, n| {
        st.set_model_version_tag(n, v, &key, &value)
    })
    .await?;
    empty()
}

pub async fn delete_version_tag(State(s): State<AppState>, req: Req) -> JsonResult {
    let n = name(&req)?;
    let v = version(&req)?;
    let key = req.str("key")?;
    on_model(&s, &req, n, move |st, n| {
        st.delete_model_version_tag(n, v, &key)
    })
    .await?;
    empty()
}

/// `GET /model-versions/get-artifact?name=…&version=…&path=…`: one file of a
/// model version's artifacts, as the MLflow UI downloads it. The version's
/// location is where `get-download-uri` points (a `runs:/` source resolved
/// in its run's artifacts, as MLflow's stored location is).
pub async fn get_version_artifact(State(s): State<AppState>, req: Req) -> ApiResult<Response> {
    let raw = req.str("path")?;
    let rel = super::artifacts::safe_path(&raw)?;
    let n = name(&req)?;
    let v = version(&req)?;
    let ws = workspace::of(&req);
    let Json(found) = download_uri(State(s.clone()), req).await?;
    let uri = found["artifact_uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let uri = match uri.strip_prefix("runs:/") {
        Some(rest) => {
            let rest = rest.trim_start_matches('/');
            let (run_id, sub) = rest.split_once('/').unwrap_or((rest, ""));
            let run_id = run_id.to_string();
            let run = workspace::on_run(&s, &ws, run_id, |st, id| st.get_run(id)).await?;
            let sub = sub.trim_end_matches('/');
            if sub.is_empty() {
                run.info.artifact_uri
            } else {
                format!("{}/{sub}", run.info.artifact_uri.trim_end_matches('/'))
            }
        }
        None => uri,
    };
    let root = super::artifacts::proxied_root(&uri).map_err(|_| {
        ApiError::invalid(format!(
            "The artifacts of model '{n}' version {v} live at '{uri}', outside this server's artifact store; read them with the client directly"
        ))
    })?;
    super::artifacts::send_file(&s, &root.join(rel.as_str())?).await
}
