//! Projects, which are MLflow workspaces (MLflow 3.10+). The `mlflow`
//! client names the active workspace in the `X-MLFLOW-WORKSPACE` header of
//! every request (none: the `default` workspace); the request guard
//! ([`crate::auth::middleware`]) resolves it once per request with the
//! caller's role there — refusing a malformed name (400), and a workspace
//! that does not exist or where the caller has no role (404) before any
//! handler runs — and hands it on as a [`Ws`] extension, which
//! [`crate::req::Req`] carries. A handler that
//! touches an experiment or a run checks it belongs to that workspace
//! ([`experiment_in`], [`run_in`]): one of another workspace answers 404
//! exactly as one that does not exist (no existence leak).
//!
//! The workspace routes (`/api/3.0/mlflow/workspaces…`) and
//! `/api/3.0/mlflow/server-info` (where the client learns workspaces are
//! supported) ignore the header, as MLflow's server does.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{DEFAULT_WORKSPACE, MetadataStore, StoreError, Workspace, WorkspaceDeletion};

use crate::AppState;
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::req::Req;

/// The header the `mlflow` client sends (`mlflow.set_workspace`, `MLFLOW_WORKSPACE`).
pub const HEADER: &str = "x-mlflow-workspace";

/// The workspace a request works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ws(pub String);

/// MLflow's rule for a workspace name ([`store::check_workspace_name`]).
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    store::check_workspace_name(name).map_err(ApiError::invalid)
}

/// The workspace routes (`…/mlflow/workspaces[/<name>]`) and `…/mlflow/server-info`,
/// matched whole: an artifact path that merely contains the words is not one.
fn exempt(path: &str) -> bool {
    let Some(rest) = path
        .strip_prefix("/api/")
        .or_else(|| path.strip_prefix("/ajax-api/"))
    else {
        return false;
    };
    let Some(rest) = rest
        .strip_prefix("2.0/mlflow/")
        .or_else(|| rest.strip_prefix("3.0/mlflow/"))
    else {
        return false;
    };
    match rest.strip_prefix("workspaces") {
        Some("") => true,
        Some(name) => name
            .strip_prefix('/')
            .is_some_and(|n| !n.is_empty() && !n.contains('/')),
        None => rest == "server-info",
    }
}

/// The workspace a request names (none named: `default`), or `None` for the
/// routes that ignore the header; a malformed name is refused (400). A
/// `GET` or `HEAD` without the header may name it in a `workspace` query
/// parameter instead: a link or an image in the Studio (a download, a
/// preview) cannot send headers. Whether
/// it exists, and the caller's role there, the guard asks the store
/// ([`crate::auth::middleware`]), in the same trip as the caller's credential.
pub fn requested(req: &Request) -> Result<Option<String>, ApiError> {
    if exempt(req.uri().path()) {
        return Ok(None);
    }
    let named = match req.headers().get(HEADER) {
        None if matches!(
            *req.method(),
            axum::http::Method::GET | axum::http::Method::HEAD
        ) =>
        {
            query_workspace(req.uri().query().unwrap_or_default())
        }
        None => None,
        Some(v) => match v.to_str() {
            Ok(t) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
            Err(_) => {
                return Err(ApiError::invalid(format!(
                    "The {HEADER} header must be text"
                )));
            }
        },
    };
    match named {
        Some(n) if n != DEFAULT_WORKSPACE => {
            validate_name(&n)?;
            Ok(Some(n))
        }
        _ => Ok(Some(DEFAULT_WORKSPACE.to_string())),
    }
}

/// The `workspace` parameter of a query string, decoded.
fn query_workspace(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "workspace")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Refuse workspace `ws` as if it did not exist unless `who` may see it: a
/// server admin, or someone with a role there.
pub fn visible_to(st: &dyn MetadataStore, who: &Identity, ws: &str) -> store::Result<()> {
    if !who.admin && st.member_role(ws, &who.name)?.is_none() {
        return Err(StoreError::NotFound(format!("Workspace '{ws}' not found")));
    }
    Ok(())
}

/// Refuse something whose workspace is `home` unless that is `ws`: one of
/// another workspace gets the error (`missing`) of one that does not exist.
fn owned_by(
    ws: &str,
    home: store::Result<String>,
    missing: impl FnOnce() -> String,
) -> store::Result<()> {
    if home? == ws {
        Ok(())
    } else {
        Err(StoreError::NotFound(missing()))
    }
}

/// Refuse experiment `id` unless it belongs to `ws` (as if it did not exist).
pub fn experiment_in(st: &dyn MetadataStore, ws: &str, id: i64) -> store::Result<()> {
    owned_by(ws, st.experiment_workspace(id), || {
        format!("No Experiment with id={id} exists")
    })
}

/// Refuse run `run_id` unless its experiment belongs to `ws` (as if it did not exist).
pub fn run_in(st: &dyn MetadataStore, ws: &str, run_id: &str) -> store::Result<()> {
    owned_by(ws, st.run_workspace(run_id), || {
        format!("Run with id={run_id} not found")
    })
}

/// Refuse logged model `id` unless its experiment belongs to `ws` (as if it did not exist).
pub fn logged_model_in(st: &dyn MetadataStore, ws: &str, id: &str) -> store::Result<()> {
    owned_by(ws, st.logged_model_workspace(id), || {
        format!("Logged model with ID '{id}' not found.")
    })
}

/// Refuse trace `id` unless its experiment belongs to `ws` (as if it did not exist).
pub fn trace_in(st: &dyn MetadataStore, ws: &str, id: &str) -> store::Result<()> {
    owned_by(ws, st.trace_workspace(id), || {
        format!("Trace with ID '{id}' not found.")
    })
}

/// Refuse registered model `name` unless it belongs to `ws` (as if it did not exist).
pub fn model_in(st: &dyn MetadataStore, ws: &str, name: &str) -> store::Result<()> {
    owned_by(ws, st.registered_model_workspace(name), || {
        format!("Registered Model with name={name} not found")
    })
}

/// `found` (a row that names its workspace: a job, an endpoint, a
/// webhook) unless its workspace, `workspace_of(&found)`, is not `ws`: then
/// `missing()`, the error one that does not exist gets.
pub fn kept_in<T>(
    ws: &str,
    found: store::Result<T>,
    workspace_of: impl FnOnce(&T) -> &str,
    missing: impl FnOnce() -> String,
) -> store::Result<T> {
    let found = found?;
    if workspace_of(&found) == ws {
        Ok(found)
    } else {
        Err(StoreError::NotFound(missing()))
    }
}

/// Job `id`, refused unless it belongs to `ws` (as if it did not exist).
pub fn job_in(st: &dyn MetadataStore, ws: &str, id: &str) -> store::Result<store::Job> {
    kept_in(
        ws,
        st.get_job(id),
        |j| &j.workspace,
        || format!("No job with id '{id}'"),
    )
}

/// Whether a caller in project `ws` (`admin`: a server administrator) may
/// use artifact `path` (the layout rule is [`artifacts::projects`]'s).
pub fn artifact_allowed(
    st: &dyn MetadataStore,
    ws: &str,
    admin: bool,
    path: &artifacts::ArtifactPath,
) -> bool {
    artifacts::projects::may_use(
        path,
        ws,
        admin,
        |id| st.experiment_workspace(id).ok(),
        // a failed lookup keeps the folder from the default project
        |p| st.workspace_retired(p).unwrap_or(false),
    )
}

/// Artifact `path` named by a resource of project `ws` (a job's input or
/// code, a notebook, a schedule's baseline, an endpoint's model), refused
/// as missing unless it is in that project's part of the artifact store:
/// what one project points at, another cannot read through it.
pub fn artifact_in(
    st: &dyn MetadataStore,
    ws: &str,
    path: &str,
) -> store::Result<artifacts::ArtifactPath> {
    let p = artifacts::ArtifactPath::parse(path)
        .map_err(|e| StoreError::InvalidParameter(e.to_string()))?;
    if artifact_allowed(st, ws, false, &p) {
        Ok(p)
    } else {
        Err(StoreError::NotFound(format!(
            "No such artifact '{path}' in project '{ws}'"
        )))
    }
}

/// `found` (an endpoint or a schedule) unless it belongs to another
/// workspace than `ws`: then the error one that does not exist gets.
pub fn doc_in(
    ws: &str,
    found: store::Result<store::Endpoint>,
    what: &str,
) -> store::Result<store::Endpoint> {
    let name = found.as_ref().map(|d| d.name.clone()).unwrap_or_default();
    kept_in(
        ws,
        found,
        |d| &d.workspace,
        || format!("No {what} named '{name}'"),
    )
}

/// Run `f` on the store for run `id`, refused as missing unless the run is
/// in workspace `ws`: the check and the work share one trip to the blocking
/// pool.
pub async fn on_run<T, F>(s: &AppState, ws: &str, id: String, f: F) -> ApiResult<T>
where
    F: FnOnce(&dyn MetadataStore, &str) -> store::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let ws = ws.to_string();
    s.db(move |st| {
        run_in(st, &ws, &id)?;
        f(st, &id)
    })
    .await
}

/// [`on_run`] for experiment `id`.
pub async fn on_experiment<T, F>(s: &AppState, ws: &str, id: i64, f: F) -> ApiResult<T>
where
    F: FnOnce(&dyn MetadataStore, i64) -> store::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let ws = ws.to_string();
    s.db(move |st| {
        experiment_in(st, &ws, id)?;
        f(st, id)
    })
    .await
}

/// The items `check` finds in the workspace; those it does not find (of
/// another workspace, or none) are left out, as MLflow's searches do.
pub fn only_in<T>(items: Vec<T>, check: impl Fn(&T) -> store::Result<()>) -> store::Result<Vec<T>> {
    let mut kept = Vec::with_capacity(items.len());
    for it in items {
        match check(&it) {
            Ok(()) => kept.push(it),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(kept)
}

/// The experiment ids of `ids` that are in workspace `ws` (a search's
/// experiments: another workspace's are left out, as missing ones are).
pub fn experiments_of(st: &dyn MetadataStore, ws: &str, ids: Vec<i64>) -> store::Result<Vec<i64>> {
    only_in(ids, |id| experiment_in(st, ws, *id))
}

/// `GET /workspaces`: every workspace, by name.
///
/// Someone who is not a server admin sees the workspaces they have a role in.
pub async fn list(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
) -> ApiResult<Json<Value>> {
    let all = s
        .db(move |st| {
            let all = st.list_workspaces()?;
            if who.admin {
                return Ok(all);
            }
            let mine = st.member_roles(&who.name)?;
            Ok(all
                .into_iter()
                .filter(|w| mine.iter().any(|(m, _)| *m == w.name))
                .collect())
        })
        .await?;
    Ok(Json(
        json!({"workspaces": all.iter().map(crate::wire::workspace).collect::<Vec<_>>()}),
    ))
}

/// A workspace's artifact root must say where: a URI or an absolute path.
fn check_root(root: Option<&str>) -> Result<(), ApiError> {
    if let Some(r) = root.filter(|r| !r.is_empty())
        && !r.starts_with('/')
        && !r.contains(":/")
    {
        return Err(ApiError::invalid(format!(
            "default_artifact_root '{r}' must be a URI (s3://…, file:///…) or an absolute path"
        )));
    }
    Ok(())
}

/// `POST /workspaces` → 201 with the new workspace.
pub async fn create(State(s): State<AppState>, req: Req) -> ApiResult<Response> {
    let name = req.str("name")?;
    if name == DEFAULT_WORKSPACE {
        return Err(ApiError::invalid(format!(
            "The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be created"
        )));
    }
    validate_name(&name)?;
    let root = req.opt_str("default_artifact_root")?;
    check_root(root.as_deref())?;
    let w = Workspace {
        name,
        description: req.opt_str("description")?,
        default_artifact_root: root,
        creation_time: 0,
    };
    // a deleted project's name is free again once nothing is left in its folder
    let retired = {
        let name = w.name.clone();
        s.db(move |st| st.workspace_retired(&name)).await?
    };
    if retired {
        let folder = artifacts::ArtifactPath::parse(&artifacts::projects::in_project(&w.name, ""))
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        if s.artifacts.list(&folder).await?.is_empty() {
            let name = w.name.clone();
            s.db(move |st| st.free_workspace_name(&name)).await?;
        }
    }
    let made = s.db(move |st| st.create_workspace(&w)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"workspace": crate::wire::workspace(&made)})),
    )
        .into_response())
}

fn path_name(name: &str) -> Result<(), ApiError> {
    if name == DEFAULT_WORKSPACE {
        Ok(())
    } else {
        validate_name(name)
    }
}

/// `GET /workspaces/{name}`.
///
/// A workspace where someone who is not a server admin has no role answers
/// 404, as one that does not exist.
pub async fn get_one(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    path_name(&name)?;
    let w = s
        .db(move |st| {
            visible_to(st, &who, &name)?;
            st.get_workspace(&name)
        })
        .await?;
    Ok(Json(json!({"workspace": crate::wire::workspace(&w)})))
}

/// `PATCH /workspaces/{name}`: change the description and artifact root
/// (at least one of them; an empty root clears it).
pub async fn update(
    State(s): State<AppState>,
    Path(name): Path<String>,
    req: Req,
) -> ApiResult<Json<Value>> {
    path_name(&name)?;
    let description = req.opt_str("description")?;
    let root = req.opt_str("default_artifact_root")?;
    if description.is_none() && root.is_none() && req.raw("trace_archival_config").is_none() {
        return Err(ApiError::invalid(
            "Workspace update must have at least one key",
        ));
    }
    check_root(root.as_deref())?;
    let w = s
        .db(move |st| st.update_workspace(&name, description.as_deref(), root.as_deref()))
        .await?;
    Ok(Json(json!({"workspace": crate::wire::workspace(&w)})))
}

/// `DELETE /workspaces/{name}[?mode=RESTRICT|SET_DEFAULT]` → 204.
///
/// A workspace that still holds experiments is refused (RESTRICT, the
/// default) with 400 INVALID_STATE; MLflow answers 500 there, which its own
/// client retries for minutes. CASCADE (deleting the experiments with the
/// workspace) is refused: Atelier does not delete experiments permanently
/// yet.
pub async fn delete(
    State(s): State<AppState>,
    Path(name): Path<String>,
    req: Req,
) -> ApiResult<Response> {
    path_name(&name)?;
    let mode = match req.opt_str("mode")?.as_deref() {
        None | Some("") | Some("RESTRICT") => WorkspaceDeletion::Restrict,
        Some("SET_DEFAULT") => WorkspaceDeletion::SetDefault,
        Some("CASCADE") => {
            return Err(ApiError::invalid(
                "Deletion mode CASCADE is not supported: move the workspace's experiments to the \
                 default workspace with SET_DEFAULT, or delete them first",
            ));
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid deletion mode '{other}'. Must be one of: SET_DEFAULT, CASCADE, RESTRICT"
            )));
        }
    };
    s.db(move |st| st.delete_workspace(&name, mode)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A request's workspace as a `String` the store closures can own.
pub fn of(req: &Req) -> String {
    req.workspace().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_mlflows_rule() {
        for good in ["ab", "team-a", "a1", "x-y-z", &"a".repeat(63)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "Team",
            "-a",
            "a-",
            "a_b",
            "a b",
            "api",
            "workspaces",
            &"a".repeat(64),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_workspace_routes_and_server_info_ignore_the_header() {
        assert!(exempt("/api/3.0/mlflow/server-info"));
        assert!(exempt("/api/3.0/mlflow/workspaces/team-a"));
        assert!(!exempt("/api/2.0/mlflow/experiments/search"));
        assert!(exempt("/api/3.0/mlflow/workspaces"));
        assert!(exempt("/ajax-api/3.0/mlflow/server-info"));
        assert!(!exempt(
            "/api/2.0/mlflow-artifacts/artifacts/1/x/mlflow/workspaces/a"
        ));
        assert!(!exempt("/api/3.0/mlflow/workspaces/a/b"));
    }
}
