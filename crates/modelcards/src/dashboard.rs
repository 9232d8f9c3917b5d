//! The Model Dashboard's data (SageMaker's `ModelDashboardModel`: the model,
//! its endpoints, monitoring schedules, last batch transform job and model
//! card), for every registered model, in one answer.
//!
//! It costs a fixed number of store reads whatever the number of models:
//! registered models (paged), endpoints, monitoring schedules, the latest
//! executions of every schedule and the latest batch transforms (both through
//! `recent_jobs_by_name`, which picks a few fields out of the jobs' JSON
//! rather than reading whole results), cards and deploy rules. Request counts
//! come from this server process's endpoint metrics (counters are per
//! process, since its start).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use store::{JobBrief, JobStatus, MetadataStore, SearchRegistry, StoreError};

/// The monitor types of SageMaker's dashboard, with the schedule `kind`s
/// that count as each (bias and explainability may not exist yet).
pub const MONITOR_TYPES: [(&str, &[&str]); 4] = [
    ("data_quality", &["data_quality"]),
    ("model_quality", &["model_quality"]),
    ("bias", &["bias", "model_bias"]),
    (
        "explainability",
        &["explainability", "model_explainability"],
    ),
];
const EXECUTION_KIND: &str = "monitoring-execution";
const BATCH_KIND: &str = "batch-transform";
/// Executions looked at per schedule to find the latest that saw data.
const EXECUTIONS_PER_SCHEDULE: usize = 20;
/// How many 5-s buckets `serving::metrics` keeps (an hour).
const HISTORY_POINTS: usize = 720;
/// What "recent" requests means on the dashboard.
pub const RECENT_MS: i64 = 5 * 60 * 1000;

/// `models:/<name>/<version or stage>` or `models:/<name>@<alias>` → the name
/// (and the version when it is a number).
pub fn model_of_uri(uri: &str) -> Option<(String, Option<i64>)> {
    let rest = uri.strip_prefix("models:/")?;
    if let Some((name, _alias)) = rest.split_once('@') {
        return Some((name.to_string(), None));
    }
    let (name, v) = rest.rsplit_once('/')?;
    Some((name.to_string(), v.parse().ok()))
}

fn field(j: &JobBrief, i: usize) -> Value {
    j.fields
        .get(i)
        .and_then(|f| f.as_deref())
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

struct Schedule {
    name: String,
    endpoint: String,
    kind: String,
    enabled: bool,
}

/// One monitor type of one model: its schedules on the model's endpoints,
/// the newest execution among them and whether any alerts.
fn monitor_status(
    kinds: &[&str],
    endpoints: &[String],
    schedules: &[Schedule],
    executions: &HashMap<&str, Vec<&JobBrief>>,
) -> Value {
    let mine: Vec<&Schedule> = schedules
        .iter()
        .filter(|s| kinds.contains(&s.kind.as_str()) && endpoints.contains(&s.endpoint))
        .collect();
    if mine.is_empty() {
        return json!({"status": "NotScheduled", "schedules": [], "last_execution": null, "alert": null});
    }
    let mut last: Option<(&Schedule, &JobBrief)> = None;
    let mut alerting: Vec<&str> = Vec::new();
    let mut violations = 0u64;
    let mut any_verdict = false;
    for s in &mine {
        let execs = executions
            .get(s.name.as_str())
            .map_or(&[][..], Vec::as_slice);
        if let Some(j) = execs.first()
            && last.is_none_or(|(_, l)| j.created_ms > l.created_ms)
        {
            last = Some((s, j));
        }
        // as Model Monitor: the latest execution that saw data decides; an empty window keeps it
        let verdict = execs.iter().find(|j| {
            j.status == JobStatus::Succeeded
                && matches!(field(j, 0).as_str(), Some("ok" | "violations"))
        });
        if let Some(j) = verdict {
            any_verdict = true;
            let n = field(j, 1).as_u64().unwrap_or(0);
            if n > 0 {
                alerting.push(&s.name);
                violations += n;
            }
        }
    }
    let enabled = mine.iter().any(|s| s.enabled);
    json!({
        "status": if enabled { "Scheduled" } else { "Stopped" },
        "schedules": mine.iter().map(|s| json!({"name": s.name, "endpoint": s.endpoint, "enabled": s.enabled})).collect::<Vec<_>>(),
        "last_execution": last.map(|(s, j)| json!({
            "id": j.id,
            "schedule": s.name,
            "status": j.status.as_str(),
            "result": field(j, 0),
            "violations": field(j, 1),
            "error": j.error,
            "created_ms": j.created_ms,
            "ended_ms": j.ended_ms,
        })),
        "alert": if !alerting.is_empty() { json!("InAlert") } else if any_verdict { json!("OK") } else { Value::Null },
        "alerting_schedules": alerting,
        "violations": violations,
    })
}

/// The dashboard document (`GET /api/atelier/dashboard`).
pub fn build(
    s: &dyn MetadataStore,
    serving: Option<&serving::Serving>,
    workspace: &str,
) -> Result<Value, StoreError> {
    let now = store::now_ms();
    // 1. every registered model of the project
    let mut models = Vec::new();
    let mut token = None;
    for _ in 0..50 {
        let page = s.search_registered_models(&SearchRegistry {
            workspace: Some(workspace.to_string()),
            filter: String::new(),
            max_results: 1000,
            order_by: vec!["name ASC".into()],
            page_token: token,
        })?;
        models.extend(page.items);
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    // 2. endpoints (stored configurations) and which versions they serve
    struct Variant {
        name: String,
        model: String,
        weight: f64,
        registered_model: Option<String>,
        version: Option<i64>,
    }
    let mut endpoints: Vec<(String, i64, Vec<Variant>)> = Vec::new();
    for e in s
        .list_endpoints()?
        .into_iter()
        .filter(|e| e.workspace == workspace)
    {
        let cfg: Value = serde_json::from_str(&e.config).unwrap_or(Value::Null);
        let variants = cfg["variants"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| {
                        let uri = v["model"].as_str().unwrap_or("").to_string();
                        let from_uri = model_of_uri(&uri);
                        Variant {
                            name: v["name"].as_str().unwrap_or("").to_string(),
                            weight: v["weight"].as_f64().unwrap_or(1.0),
                            registered_model: v["registered_model"]
                                .as_str()
                                .map(str::to_string)
                                .or_else(|| from_uri.as_ref().map(|m| m.0.clone())),
                            version: v["version"].as_i64().or_else(|| from_uri.and_then(|m| m.1)),
                            model: uri,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        endpoints.push((e.name, e.updated_ms, variants));
    }
    // 3. schedules and their latest executions
    let schedules: Vec<Schedule> = s
        .list_schedules()?
        .into_iter()
        .filter(|r| r.workspace == workspace)
        .filter_map(|r| {
            let v: Value = serde_json::from_str(&r.config).ok()?;
            Some(Schedule {
                name: r.name,
                endpoint: v["endpoint"].as_str()?.to_string(),
                kind: v["kind"].as_str().unwrap_or("data_quality").to_string(),
                enabled: v["enabled"].as_bool().unwrap_or(true),
            })
        })
        .collect();
    let execs = s.recent_jobs_by_name(
        EXECUTION_KIND,
        EXECUTIONS_PER_SCHEDULE,
        &["result.status", "result.violation_count"],
    )?;
    let mut by_schedule: HashMap<&str, Vec<&JobBrief>> = HashMap::new();
    for j in &execs {
        by_schedule.entry(j.name.as_str()).or_default().push(j);
    }
    // 4. the latest batch transform of each model
    let batches = s.recent_jobs_by_name(
        BATCH_KIND,
        1,
        &["spec.model", "result.rows", "result.failed"],
    )?;
    let mut last_batch: HashMap<String, &JobBrief> = HashMap::new();
    for j in &batches {
        let Some((name, _)) = field(j, 0).as_str().and_then(model_of_uri) else {
            continue;
        };
        let e = last_batch.entry(name).or_insert(j);
        if j.created_ms > e.created_ms {
            *e = j;
        }
    }
    // 5. cards and rules
    let mut cards: HashMap<String, BTreeMap<i64, store::ModelCard>> = HashMap::new();
    for c in s.list_model_cards()? {
        cards
            .entry(c.model_name.clone())
            .or_default()
            .insert(c.version, c);
    }
    let rules: HashMap<String, bool> = s
        .card_requirements()?
        .into_iter()
        .map(|r| (r.model_name, r.require_approved_card))
        .collect();

    let mut out = Vec::with_capacity(models.len());
    let (mut in_production, mut alerts, mut approved) = (0usize, 0usize, 0usize);
    for m in &models {
        let mut versions: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut eps = Vec::new();
        let mut ep_names = Vec::new();
        for (ename, updated, variants) in &endpoints {
            if !variants
                .iter()
                .any(|v| v.registered_model.as_deref() == Some(m.name.as_str()))
            {
                continue;
            }
            let total: f64 = variants.iter().map(|v| v.weight.max(0.0)).sum();
            let live = serving.and_then(|sv| sv.slot(ename).map(|slot| slot.current()));
            let status = match (serving, &live) {
                (_, Some(_)) => "InService",
                (Some(sv), None) if sv.failure(ename).is_some() => "Failed",
                _ => "NotLoaded",
            };
            let mut recent_total = 0u64;
            let vs: Vec<Value> = variants
                .iter()
                .map(|v| {
                    let mine = v.registered_model.as_deref() == Some(m.name.as_str());
                    if mine && let Some(ver) = v.version {
                        let eps = versions.entry(ver).or_default();
                        if !eps.contains(ename) {
                            eps.push(ename.clone());
                        }
                    }
                    let lv = live
                        .as_ref()
                        .and_then(|l| l.variants.iter().find(|x| *x.name == *v.name));
                    let (requests, errors, recent, p99) = match lv {
                        Some(x) => {
                            let t = x.metrics.totals();
                            let history = x.metrics.history();
                            let closed: u64 = history.iter().map(|p| p.requests).sum();
                            // the 5-s buckets closed in the window, plus the open one while
                            // the history still reaches back to the process's start
                            let open = if history.len() < HISTORY_POINTS {
                                t.requests.saturating_sub(closed)
                            } else {
                                0
                            };
                            let recent: u64 = history
                                .iter()
                                .filter(|p| p.t_ms > now - RECENT_MS)
                                .map(|p| p.requests)
                                .sum::<u64>()
                                + open;
                            (
                                json!(t.requests),
                                json!(t.client_errors + t.server_errors),
                                json!(recent),
                                json!(t.p99_ms),
                            )
                        }
                        None => (Value::Null, Value::Null, Value::Null, Value::Null),
                    };
                    recent_total += recent.as_u64().unwrap_or(0);
                    json!({
                        "name": v.name,
                        "model": v.model,
                        "registered_model": v.registered_model,
                        "version": v.version,
                        "this_model": mine,
                        "weight": v.weight,
                        "traffic_share": if total > 0.0 { json!(v.weight.max(0.0) / total) } else { Value::Null },
                        "requests": requests,
                        "requests_recent": recent,
                        "errors": errors,
                        "p99_ms": p99,
                    })
                })
                .collect();
            ep_names.push(ename.clone());
            eps.push(json!({
                "name": ename,
                "status": status,
                "updated_ms": updated,
                "variants": vs,
                "requests_recent": if live.is_some() { json!(recent_total) } else { Value::Null },
            }));
        }
        let monitoring: serde_json::Map<String, Value> = MONITOR_TYPES
            .iter()
            .map(|(t, kinds)| {
                (
                    t.to_string(),
                    monitor_status(kinds, &ep_names, &schedules, &by_schedule),
                )
            })
            .collect();
        if monitoring.values().any(|v| v["alert"] == "InAlert") {
            alerts += 1;
        }
        if !versions.is_empty() {
            in_production += 1;
        }
        let model_cards = cards.get(&m.name);
        let latest_version = m.latest_versions.iter().map(|v| v.version).max();
        // the card that matters: the newest version in production's, else the newest version's
        let focus = versions.keys().next_back().copied().or(latest_version);
        let focus_card = focus.and_then(|v| model_cards.and_then(|c| c.get(&v)));
        if focus_card.is_some_and(|c| c.status == store::CARD_APPROVED) {
            approved += 1;
        }
        let batch = last_batch.get(&m.name).map(|j| {
            json!({
                "id": j.id,
                "name": j.name,
                "status": j.status.as_str(),
                "model": field(j, 0),
                "rows": field(j, 1),
                "failed": field(j, 2),
                "error": j.error,
                "created_ms": j.created_ms,
                "ended_ms": j.ended_ms,
            })
        });
        out.push(json!({
            "name": m.name,
            "description": m.description,
            "created_ms": m.creation_timestamp,
            "updated_ms": m.last_updated_timestamp,
            "latest_version": latest_version,
            "require_approved_card": rules.get(&m.name).copied().unwrap_or(false),
            "versions_in_production": versions.iter().map(|(v, e)| json!({
                "version": v,
                "endpoints": e,
                "card_status": model_cards.and_then(|c| c.get(v)).map(|c| c.status.clone()),
            })).collect::<Vec<_>>(),
            "endpoints": eps,
            "monitoring": monitoring,
            "last_batch_transform": batch,
            "model_card": focus.map(|v| json!({
                "version": v,
                "status": focus_card.map(|c| c.status.clone()),
                "updated_ms": focus_card.map(|c| c.updated_ms),
                "updated_by": focus_card.map(|c| c.updated_by.clone()),
            })),
            "cards": model_cards.map(|c| c.values().map(|c| json!({"version": c.version, "status": c.status})).collect::<Vec<_>>()).unwrap_or_default(),
        }));
    }
    Ok(json!({
        "generated_ms": now,
        "recent_ms": RECENT_MS,
        "monitor_types": MONITOR_TYPES.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        "counts": {
            "models": models.len(),
            "in_production": in_production,
            "alerting": alerts,
            "approved_cards": approved,
        },
        "models": out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_uris() {
        assert_eq!(
            model_of_uri("models:/churn/3"),
            Some(("churn".into(), Some(3)))
        );
        assert_eq!(
            model_of_uri("models:/churn@prod"),
            Some(("churn".into(), None))
        );
        assert_eq!(
            model_of_uri("models:/churn/Production"),
            Some(("churn".into(), None))
        );
        assert_eq!(model_of_uri("runs:/abc/model"), None);
    }
}
