//! Notebook schedules: a notebook, its parameters and a cron (UTC). Once a
//! second [`tick`] fires what is due — each firing a notebook job named after
//! the schedule, with the notebook snapshotted at that moment — and tells the
//! schedule's webhooks when its newest run failed. The bookmark of the last
//! firing and of the last failure told are compare-and-swap writes on the
//! schedule as read, so with several server processes on one database a
//! firing happens once and a failure is told once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jobs::cron::Cron;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::JobStatus;

use crate::{KIND, Notebooks};

/// A schedule as stored (JSON in `notebook_schedules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotebookSchedule {
    pub name: String,
    /// `workspace:<rel>` in `space`, or an artifact (`runs:/…`, a path).
    pub source: String,
    /// The workspace the source is read from at each firing.
    #[serde(default)]
    pub space: String,
    pub cron: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    #[serde(default)]
    pub kernel: Option<String>,
    #[serde(default)]
    pub cell_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub experiment: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Told (a JSON POST, retried by the outbox) when a firing fails.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// Who made it (the jobs it fires belong to them).
    #[serde(default)]
    pub owner: String,
    /// The last firing (ms since the epoch); new schedules count from creation.
    #[serde(default)]
    pub last_fired_ms: Option<i64>,
    /// The last failed job whose failure was told.
    #[serde(default)]
    pub alerted_job: Option<String>,
}

fn yes() -> bool {
    true
}

/// A schedule's name: its runs are jobs of that name.
pub fn check_name(n: &str) -> Result<(), String> {
    userjobs::spec::check_name("schedule", n)
}

impl NotebookSchedule {
    /// Parse a client's schedule (fields it may not set are refused).
    pub fn parse(v: &Value) -> Result<NotebookSchedule, String> {
        if v.get("last_fired_ms").is_some() || v.get("alerted_job").is_some() {
            return Err("'last_fired_ms' and 'alerted_job' are kept by the scheduler".into());
        }
        let s: NotebookSchedule = serde_json::from_value(v.clone()).map_err(|e| {
            format!("the notebook schedule: {e}; it has name, source, cron, parameters, kernel, cell_timeout_seconds, experiment, enabled, webhooks")
        })?;
        check_name(&s.name)?;
        Cron::parse(&s.cron).map_err(|e| format!("'cron': {e}"))?;
        if s.source.trim().is_empty() {
            return Err("'source' names the notebook: 'workspace:<path>' or an artifact".into());
        }
        for w in &s.webhooks {
            if !(w.starts_with("http://") || w.starts_with("https://")) {
                return Err(format!("webhook '{w}' is not an http(s) URL"));
            }
        }
        Ok(s)
    }

    pub fn cron(&self) -> Cron {
        Cron::parse(&self.cron).unwrap_or_else(|_| {
            Cron::parse("0 * * * *").unwrap_or_else(|_| unreachable!("a valid literal"))
        })
    }
}

/// Queue one run of `s` now (a firing or "run now"), in the schedule's
/// project `workspace`; returns the job id.
pub fn fire(
    n: &Notebooks,
    s: &NotebookSchedule,
    workspace: &str,
    trigger: &str,
) -> Result<String, String> {
    let rt = tokio::runtime::Handle::current();
    let (path, source) = rt
        .block_on(crate::api::snapshot(n, workspace, &s.space, &s.source))
        .map_err(|e| e.message)?;
    let spec = json!({
        "name": s.name,
        "experiment": s.experiment,
        "notebook": {
            "path": path,
            "parameters": s.parameters,
            "kernel": s.kernel,
            "cell_timeout_seconds": s.cell_timeout_seconds,
            "source": source,
            "schedule": s.name,
        },
        "environment": {"ATELIER_NOTEBOOK_TRIGGER": trigger},
    });
    n.queue
        .submit_as(KIND, spec, &jobs::Origin::new(&s.owner, workspace), 1)
        .map(|j| j.id)
        .map_err(|e| e.to_string())
}

/// One pass at `now_ms`: fire what is due and tell failures; returns the
/// job ids queued.
pub fn tick(n: &Notebooks, now_ms: i64) -> Vec<String> {
    let mut fired = Vec::new();
    let Ok(rows) = n.store.list_notebook_schedules() else {
        return fired;
    };
    for row in rows {
        let Ok(mut s) = serde_json::from_str::<NotebookSchedule>(&row.config) else {
            continue;
        };
        let mut config = row.config.clone();
        if let Some((text, job_id, body)) = failure_to_tell(n, &s) {
            // the bookmark first: of several processes only the winner tells
            match n.store.replace_notebook_schedule(&row.name, &config, &text) {
                Ok(true) => {
                    config = text;
                    if let Ok(updated) = serde_json::from_str(&config) {
                        s = updated;
                    }
                    if !s.webhooks.is_empty()
                        && let Err(e) = n.store.enqueue_webhook_deliveries(
                            &job_id,
                            &format!("notebook:{}", s.name),
                            &s.webhooks,
                            &body.to_string(),
                        )
                    {
                        tracing::warn!(schedule = %s.name, "could not queue the failure's webhooks: {e}");
                    }
                }
                _ => continue,
            }
        }
        if !s.enabled {
            continue;
        }
        // missed firings while the server was down are one run, not many
        let from = s.last_fired_ms.unwrap_or(row.created_ms);
        let Some(due) = s.cron().last_in(from, now_ms) else {
            continue;
        };
        s.last_fired_ms = Some(due);
        let Ok(text) = serde_json::to_string(&s) else {
            continue;
        };
        match n.store.replace_notebook_schedule(&row.name, &config, &text) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(schedule = %s.name, "could not bookmark the schedule: {e}");
                continue;
            }
        }
        match fire(n, &s, &row.workspace, "cron") {
            Ok(id) => fired.push(id),
            Err(e) => {
                tracing::warn!(schedule = %s.name, "could not start the notebook: {e}");
            }
        }
    }
    fired
}

/// When the schedule's newest run failed and was not told yet: the schedule
/// with `alerted_job` set (to be written with a compare-and-swap), the job
/// and the webhook body.
fn failure_to_tell(n: &Notebooks, s: &NotebookSchedule) -> Option<(String, String, Value)> {
    let jobs = n.store.list_jobs_named(KIND, &s.name, 1).ok()?;
    let job = jobs.first()?;
    if job.status != JobStatus::Failed || s.alerted_job.as_deref() == Some(job.id.as_str()) {
        return None;
    }
    let mut told = s.clone();
    told.alerted_job = Some(job.id.clone());
    let text = serde_json::to_string(&told).ok()?;
    let run_id = serde_json::from_str::<Value>(&job.progress)
        .ok()
        .and_then(|p| p["run_id"].as_str().map(String::from));
    let body = json!({
        "event": "notebook_failed",
        "schedule": s.name,
        "notebook": s.source,
        "job_id": job.id,
        "error": job.error,
        "run_id": run_id,
        "ended_ms": job.ended_ms,
    });
    Some((text, job.id.clone(), body))
}

/// Run [`tick`] every second until the process ends.
pub fn spawn(n: Notebooks) {
    let n = Arc::new(n);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let n = n.clone();
            let _ = tokio::task::spawn_blocking(move || tick(&n, store::now_ms())).await;
        }
    });
}
