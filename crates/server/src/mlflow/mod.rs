//! MLflow REST endpoints, one module per resource. Paths are relative to
//! the `/api/2.0/mlflow` prefix (mounted also under `/ajax-api/2.0/mlflow`
//! and the 3.0 prefixes).

pub mod artifacts;
mod experiments;
mod genai_datasets;
mod logged_models;
mod registry;
mod runs;
mod scorers;
pub mod traces;
pub mod webhooks;

use axum::Json;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiResult;
use crate::routes::{Access, Routes};

pub type JsonResult = ApiResult<Json<Value>>;

pub fn empty() -> JsonResult {
    Ok(Json(serde_json::json!({})))
}

/// MLflow's routes. Reads (GETs, and the POSTs that only search) need a
/// signed-in identity; everything else needs the editor role.
pub fn routes() -> Routes<AppState> {
    use crate::workspace;
    use Access::{Admin, Public, Read, Write};
    Routes::new()
        // workspaces (projects)
        .get("/workspaces", Read, workspace::list)
        .post("/workspaces", Admin, workspace::create)
        .get("/workspaces/{name}", Read, workspace::get_one)
        .patch("/workspaces/{name}", Admin, workspace::update)
        .delete("/workspaces/{name}", Admin, workspace::delete)
        // experiments
        .post("/experiments/create", Write, experiments::create)
        .get("/experiments/get", Read, experiments::get_one)
        .get("/experiments/get-by-name", Read, experiments::get_by_name)
        .get("/experiments/search", Read, experiments::search)
        .post("/experiments/search", Read, experiments::search)
        .get("/experiments/list", Read, experiments::search)
        .post("/experiments/update", Write, experiments::update)
        .post("/experiments/delete", Write, experiments::delete)
        .post("/experiments/restore", Write, experiments::restore)
        .post(
            "/experiments/set-experiment-tag",
            Write,
            experiments::set_tag,
        )
        .post(
            "/experiments/delete-experiment-tag",
            Write,
            experiments::delete_tag,
        )
        // runs
        .post("/runs/create", Write, runs::create)
        .get("/runs/get", Read, runs::get_one)
        .post("/runs/update", Write, runs::update)
        .post("/runs/delete", Write, runs::delete)
        .post("/runs/restore", Write, runs::restore)
        .post("/runs/log-metric", Write, runs::log_metric)
        .post("/runs/log-parameter", Write, runs::log_param)
        .post("/runs/set-tag", Write, runs::set_tag)
        .post("/runs/delete-tag", Write, runs::delete_tag)
        .post("/runs/log-batch", Write, runs::log_batch)
        .post("/runs/log-inputs", Write, runs::log_inputs)
        .post("/runs/outputs", Write, runs::log_outputs)
        .post("/runs/log-model", Write, runs::log_model)
        .post("/runs/search", Read, runs::search)
        .get("/runs/search", Read, runs::search)
        .get("/metrics/get-history", Read, runs::history)
        .get("/metrics/get-history-bulk", Read, runs::history_bulk)
        .get(
            "/metrics/get-history-bulk-interval",
            Read,
            runs::history_bulk_interval,
        )
        .get("/artifacts/list", Read, artifacts::list_for_run)
        // public, as MLflow's: the client asks it before it signs in or names a workspace
        .get("/server-info", Public, artifacts::server_info)
        // traces (MLflow 3): v3 paths, and the v2 tag paths the client uses
        .post("/traces", Write, traces::start_trace)
        .post("/traces/search", Read, traces::search)
        .get("/traces/get", Read, traces::get_trace)
        .get("/traces/batchGet", Read, traces::batch_get)
        .post("/traces/batchGetInfos", Read, traces::batch_get_infos)
        .post("/traces/delete-traces", Write, traces::delete_traces)
        .post("/traces/link-to-run", Write, traces::link_to_run)
        .get("/traces/{trace_id}", Read, traces::get_trace_info)
        .patch("/traces/{trace_id}/tags", Write, traces::set_tag)
        .delete("/traces/{trace_id}/tags", Write, traces::delete_tag)
        .post(
            "/traces/{trace_id}/assessments",
            Write,
            traces::create_assessment,
        )
        .get(
            "/traces/{trace_id}/assessments/{assessment_id}",
            Read,
            traces::get_assessment,
        )
        .patch(
            "/traces/{trace_id}/assessments/{assessment_id}",
            Write,
            traces::update_assessment,
        )
        .delete(
            "/traces/{trace_id}/assessments/{assessment_id}",
            Write,
            traces::delete_assessment,
        )
        // registry
        .post("/registered-models/create", Write, registry::create_model)
        .get("/registered-models/get", Read, registry::get_model)
        .post("/registered-models/rename", Write, registry::rename_model)
        .patch("/registered-models/update", Write, registry::update_model)
        .delete("/registered-models/delete", Write, registry::delete_model)
        .get("/registered-models/search", Read, registry::search_models)
        .post("/registered-models/search", Read, registry::search_models)
        .get("/registered-models/list", Read, registry::search_models)
        .post(
            "/registered-models/get-latest-versions",
            Read,
            registry::latest_versions,
        )
        .get(
            "/registered-models/get-latest-versions",
            Read,
            registry::latest_versions,
        )
        .post("/registered-models/set-tag", Write, registry::set_model_tag)
        .delete(
            "/registered-models/delete-tag",
            Write,
            registry::delete_model_tag,
        )
        .post("/registered-models/alias", Write, registry::set_alias)
        .delete("/registered-models/alias", Write, registry::delete_alias)
        .get("/registered-models/alias", Read, registry::get_by_alias)
        .post("/model-versions/create", Write, registry::create_version)
        .get("/model-versions/get", Read, registry::get_version)
        .patch("/model-versions/update", Write, registry::update_version)
        .delete("/model-versions/delete", Write, registry::delete_version)
        .get("/model-versions/search", Read, registry::search_versions)
        .post("/model-versions/search", Read, registry::search_versions)
        .get(
            "/model-versions/get-download-uri",
            Read,
            registry::download_uri,
        )
        .post(
            "/model-versions/transition-stage",
            Write,
            registry::transition_stage,
        )
        .post("/model-versions/set-tag", Write, registry::set_version_tag)
        .delete(
            "/model-versions/delete-tag",
            Write,
            registry::delete_version_tag,
        )
        // logged models (MLflow 3.x)
        .post("/logged-models", Write, logged_models::create)
        .post("/logged-models/search", Read, logged_models::search)
        .get("/logged-models/{model_id}", Read, logged_models::get_one)
        .delete("/logged-models/{model_id}", Write, logged_models::delete)
        .patch("/logged-models/{model_id}", Write, logged_models::finalize)
        .patch(
            "/logged-models/{model_id}/tags",
            Write,
            logged_models::set_tags,
        )
        .delete(
            "/logged-models/{model_id}/tags/{key}",
            Write,
            logged_models::delete_tag,
        )
        .post(
            "/logged-models/{model_id}/params",
            Write,
            logged_models::log_params,
        )
        .get(
            "/logged-models/{model_id}/artifacts/directories",
            Read,
            artifacts::list_logged_model,
        )
        // GenAI evaluation datasets (MLflow 3)
        .post("/datasets/create", Write, genai_datasets::create_dataset)
        .post(
            "/datasets/search",
            Read,
            genai_datasets::search_evaluation_datasets,
        )
        .get("/datasets/{dataset_id}", Read, genai_datasets::get_dataset)
        .delete(
            "/datasets/{dataset_id}",
            Write,
            genai_datasets::delete_dataset,
        )
        .patch(
            "/datasets/{dataset_id}/tags",
            Write,
            genai_datasets::set_dataset_tags,
        )
        .delete(
            "/datasets/{dataset_id}/tags/{key}",
            Write,
            genai_datasets::delete_dataset_tag,
        )
        .post(
            "/datasets/{dataset_id}/records",
            Write,
            genai_datasets::upsert_dataset_records,
        )
        .get(
            "/datasets/{dataset_id}/records",
            Read,
            genai_datasets::get_dataset_records,
        )
        .delete(
            "/datasets/{dataset_id}/records",
            Write,
            genai_datasets::delete_dataset_records,
        )
        .get(
            "/datasets/{dataset_id}/experiment-ids",
            Read,
            genai_datasets::get_dataset_experiment_ids,
        )
        .post(
            "/datasets/{dataset_id}/add-experiments",
            Write,
            genai_datasets::add_dataset_to_experiments,
        )
        .post(
            "/datasets/{dataset_id}/remove-experiments",
            Write,
            genai_datasets::remove_dataset_from_experiments,
        )
        // registered scorers (MLflow 3)
        .post("/scorers/register", Write, scorers::register_scorer)
        .get("/scorers/list", Read, scorers::list_scorers)
        .get("/scorers/versions", Read, scorers::list_scorer_versions)
        .get("/scorers/get", Read, scorers::get_scorer)
        .delete("/scorers/delete", Write, scorers::delete_scorer)
        .get(
            "/scorers/online-configs",
            Read,
            scorers::get_online_scoring_configs,
        )
        .put(
            "/scorers/online-config",
            Write,
            scorers::upsert_online_scoring_config,
        )
        // model-registry webhooks (MLflow 3.3+)
        .post("/webhooks", Write, webhooks::create)
        .get("/webhooks", Read, webhooks::list)
        .get("/webhooks/{webhook_id}", Read, webhooks::get_one)
        .patch("/webhooks/{webhook_id}", Write, webhooks::update)
        .delete("/webhooks/{webhook_id}", Write, webhooks::delete)
        .post("/webhooks/{webhook_id}/test", Write, webhooks::test)
}

/// The endpoints MLflow's server registers for its web UI outside the route
/// table above, at the same full paths (`/get-artifact` at the root, the
/// rest under `/ajax-api/2.0/mlflow` only).
pub fn ui_routes() -> Routes<AppState> {
    use Access::{Read, Write};
    const AJAX: &str = "/ajax-api/2.0/mlflow";
    Routes::new()
        .get("/get-artifact", Read, artifacts::get_run_artifact)
        .get(
            "/model-versions/get-artifact",
            Read,
            registry::get_version_artifact,
        )
        .add(
            axum::http::Method::POST,
            &format!("{AJAX}/upload-artifact"),
            Write,
            crate::routes::BodyKind::Upload,
            artifacts::upload_run_artifact,
        )
        .get(
            &format!("{AJAX}/logged-models/{{model_id}}/artifacts/files"),
            Read,
            artifacts::logged_model_file,
        )
        .post(
            &format!("{AJAX}/experiments/search-datasets"),
            Read,
            experiments::search_datasets,
        )
        .post(
            &format!("{AJAX}/runs/create-promptlab-run"),
            Write,
            runs::create_promptlab_run,
        )
}
