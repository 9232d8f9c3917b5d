//! MLflow REST endpoints, one module per resource. Paths are relative to
//! the `/api/2.0/mlflow` prefix (mounted also under `/ajax-api/2.0/mlflow`
//! and the 3.0 prefixes).

pub mod artifacts;
mod experiments;
mod logged_models;
mod registry;
mod runs;

use axum::Json;
use axum::Router;
use axum::routing::{delete, get, patch, post};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiResult;

pub type JsonResult = ApiResult<Json<Value>>;

pub fn empty() -> JsonResult {
    Ok(Json(serde_json::json!({})))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        // experiments
        .route("/experiments/create", post(experiments::create))
        .route("/experiments/get", get(experiments::get_one))
        .route("/experiments/get-by-name", get(experiments::get_by_name))
        .route(
            "/experiments/search",
            get(experiments::search).post(experiments::search),
        )
        .route("/experiments/list", get(experiments::search))
        .route("/experiments/update", post(experiments::update))
        .route("/experiments/delete", post(experiments::delete))
        .route("/experiments/restore", post(experiments::restore))
        .route(
            "/experiments/set-experiment-tag",
            post(experiments::set_tag),
        )
        .route(
            "/experiments/delete-experiment-tag",
            post(experiments::delete_tag),
        )
        // runs
        .route("/runs/create", post(runs::create))
        .route("/runs/get", get(runs::get_one))
        .route("/runs/update", post(runs::update))
        .route("/runs/delete", post(runs::delete))
        .route("/runs/restore", post(runs::restore))
        .route("/runs/log-metric", post(runs::log_metric))
        .route("/runs/log-parameter", post(runs::log_param))
        .route("/runs/set-tag", post(runs::set_tag))
        .route("/runs/delete-tag", post(runs::delete_tag))
        .route("/runs/log-batch", post(runs::log_batch))
        .route("/runs/log-inputs", post(runs::log_inputs))
        .route("/runs/outputs", post(runs::log_outputs))
        .route("/runs/log-model", post(runs::log_model))
        .route("/runs/search", post(runs::search).get(runs::search))
        .route("/metrics/get-history", get(runs::history))
        .route("/metrics/get-history-bulk", get(runs::history_bulk))
        .route(
            "/metrics/get-history-bulk-interval",
            get(runs::history_bulk_interval),
        )
        .route("/artifacts/list", get(artifacts::list_for_run))
        .route("/server-info", get(artifacts::server_info))
        // registry
        .route("/registered-models/create", post(registry::create_model))
        .route("/registered-models/get", get(registry::get_model))
        .route("/registered-models/rename", post(registry::rename_model))
        .route("/registered-models/update", patch(registry::update_model))
        .route("/registered-models/delete", delete(registry::delete_model))
        .route(
            "/registered-models/search",
            get(registry::search_models).post(registry::search_models),
        )
        .route("/registered-models/list", get(registry::search_models))
        .route(
            "/registered-models/get-latest-versions",
            post(registry::latest_versions).get(registry::latest_versions),
        )
        .route("/registered-models/set-tag", post(registry::set_model_tag))
        .route(
            "/registered-models/delete-tag",
            delete(registry::delete_model_tag),
        )
        .route(
            "/registered-models/alias",
            post(registry::set_alias)
                .delete(registry::delete_alias)
                .get(registry::get_by_alias),
        )
        .route("/model-versions/create", post(registry::create_version))
        .route("/model-versions/get", get(registry::get_version))
        .route("/model-versions/update", patch(registry::update_version))
        .route("/model-versions/delete", delete(registry::delete_version))
        .route(
            "/model-versions/search",
            get(registry::search_versions).post(registry::search_versions),
        )
        .route(
            "/model-versions/get-download-uri",
            get(registry::download_uri),
        )
        .route(
            "/model-versions/transition-stage",
            post(registry::transition_stage),
        )
        .route("/model-versions/set-tag", post(registry::set_version_tag))
        .route(
            "/model-versions/delete-tag",
            delete(registry::delete_version_tag),
        )
        // logged models (MLflow 3.x)
        .route("/logged-models", post(logged_models::create))
        .route("/logged-models/search", post(logged_models::search))
        .route(
            "/logged-models/{model_id}",
            get(logged_models::get_one)
                .delete(logged_models::delete)
                .patch(logged_models::finalize),
        )
        .route(
            "/logged-models/{model_id}/tags",
            patch(logged_models::set_tags),
        )
        .route(
            "/logged-models/{model_id}/tags/{key}",
            delete(logged_models::delete_tag),
        )
        .route(
            "/logged-models/{model_id}/params",
            post(logged_models::log_params),
        )
        .fallback(not_found)
}

async fn not_found(uri: axum::http::Uri) -> crate::error::ApiError {
    crate::error::ApiError::new(
        crate::error::ErrorCode::EndpointNotFound,
        format!("No MLflow endpoint at {}", uri.path()),
    )
}
