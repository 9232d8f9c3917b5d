//! # monitoring — Model Monitor on a live endpoint
//!
//! Brief overview: a **schedule** ([`schedule::Schedule`], stored in the
//! metadata store) attaches a check to an endpoint with a cron expression
//! ([`cron::Cron`], UTC, hourly by default). The [`scheduler`] fires due
//! schedules once a second: each firing is a job of kind
//! `monitoring-execution` on the job queue over the window since the
//! previous firing. An execution ([`execute::ExecutionRunner`]) reads the
//! endpoint's captured traffic of its window (`serving::read_capture`) and
//!
//! - **data quality**: turns the captured requests back into rows
//!   ([`rows`]), profiles them and runs `monitor::check` against the
//!   endpoint's baseline (the schedule's, else the served model version's
//!   `atelier.baseline` tag, which Autopilot sets), stores
//!   `constraint_violations.json` and `drift_report.json` under
//!   `monitoring/<schedule>/<execution id>/`, and keeps per-feature drift
//!   values and baseline-vs-current histograms in the job's result for the
//!   Studio. Columns the served model does not read (the target, extras)
//!   are checked too but reported apart (`unused_column_violations`,
//!   `drifted_unused`, each feature's `used_by_model`): they never alert;
//! - **model quality**: joins the captured predictions with uploaded ground
//!   truth ([`quality`], by `inferenceId` or `eventId`), computes the
//!   problem's metrics and compares the chosen one with the model's
//!   validation score; before labels arrive it estimates accuracy (and AUC)
//!   from the predicted probabilities (CBPE).
//! - **model bias** and **model explainability** ([`clarify_checks`]):
//!   Clarify's post-training bias metrics of the captured predictions joined
//!   with ground truth, against bounds from a baseline on the training data;
//!   and the nDCG of the window's global SHAP ranking against the
//!   baseline's (SageMaker's `bias_drift_check` and
//!   `feature_attribution_drift_check`).
//!
//! An execution that finds violations queues a POST to each of the
//! schedule's webhooks in the store's outbox and ends; a delivery loop
//! ([`alerts::spawn_delivery`], off the job workers, safe with several
//! processes on one database) sends them, one attempt per lease, retried
//! with backoff, every attempt kept in the outbox and shown with the
//! execution. Webhooks reach only public addresses unless the server's
//! `--webhook-allowed-hosts` names the target ([`alerts::WebhookPolicy`],
//! checked when a schedule is saved and at every connection). The Studio
//! marks the schedule; `/metrics` exports the latest count
//! ([`prometheus`]). From an alert, `POST …/retrain` starts an Autopilot job
//! on captured inputs joined with their labels, whose model becomes a new
//! version beside the serving one. An empty window is a `no_data` result,
//! not a failure.

pub mod alerts;
pub mod api;
pub mod capture_ids;
pub mod clarify_checks;
pub use jobs::cron;
pub mod execute;
pub mod quality;
pub mod rows;
pub mod schedule;
pub mod scheduler;

pub use api::{Monitoring, router};
pub use execute::{BaselineRunner, ExecutionRunner};

use store::MetadataStore;

/// Prometheus text for every schedule: the violations found by its latest
/// execution that saw data, and when that execution ended.
pub fn prometheus(store: &dyn MetadataStore, workspace: &str) -> String {
    let mut out = String::from(
        "# HELP atelier_monitoring_violations Violations found by the latest execution of a monitoring schedule.\n# TYPE atelier_monitoring_violations gauge\n",
    );
    let mut last = String::from(
        "# HELP atelier_monitoring_last_execution_timestamp_seconds When the latest execution of a schedule ended.\n# TYPE atelier_monitoring_last_execution_timestamp_seconds gauge\n",
    );
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    if let Ok(rows) = store.list_schedules() {
        for r in rows.into_iter().filter(|r| r.workspace == workspace) {
            let Ok(s) = serde_json::from_str::<schedule::Schedule>(&r.config) else {
                continue;
            };
            let Ok(mut recent) = store.list_jobs_named(execute::EXECUTION_KIND, &s.name, 50) else {
                continue;
            };
            recent.retain(|j| j.workspace == workspace);
            // the latest execution that saw data (an empty window keeps the last verdict)
            let Some((j, result)) = recent.iter().find_map(|j| {
                let r: serde_json::Value = serde_json::from_str(&j.result).ok()?;
                (j.status == store::JobStatus::Succeeded
                    && matches!(r["status"].as_str(), Some("ok" | "violations")))
                .then_some((j, r))
            }) else {
                continue;
            };
            let labels = format!(
                "schedule=\"{}\",endpoint=\"{}\",kind=\"{}\"",
                esc(&s.name),
                esc(&s.endpoint),
                s.kind.as_str()
            );
            out.push_str(&format!(
                "atelier_monitoring_violations{{{labels}}} {}\n",
                result["violation_count"].as_u64().unwrap_or(0)
            ));
            last.push_str(&format!(
                "atelier_monitoring_last_execution_timestamp_seconds{{{labels}}} {:.3}\n",
                j.ended_ms.unwrap_or(j.created_ms) as f64 / 1000.0
            ));
        }
    }
    out + &last
}
