//! The job kinds: `monitoring-execution` (one check of one schedule's
//! window) and `monitor-baseline` (a baseline from a stored dataset).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use artifacts::{ArtifactPath, ArtifactStore};
use bytes::Bytes;
use jobs::{CheckContext, JobContext, JobFailure, Runner};
use learn::{Pipeline, ProblemType};
use serde_json::{Map, Value, json};
use serving::EndpointConfig;
use store::MetadataStore;
use tabular::Kind;

use crate::quality::{LabelIndex, cbpe};
use crate::rows::{input_records, output_predictions};
use crate::schedule::{CheckKind, Schedule};

pub const EXECUTION_KIND: &str = "monitoring-execution";
pub const BASELINE_KIND: &str = "monitor-baseline";
/// Values kept per numeric column for the exact statistics.
const SAMPLE_SIZE: usize = 100_000;
/// Features whose baseline-vs-current histograms an execution keeps.
const MAX_HISTOGRAMS: usize = 40;

fn fail(e: impl std::fmt::Display) -> JobFailure {
    JobFailure::Failed(e.to_string())
}

/// Schedule `name` of project `workspace` (one of another project is not
/// there for it).
pub fn load_schedule(
    store: &dyn MetadataStore,
    workspace: &str,
    name: &str,
) -> Result<Schedule, String> {
    let row = server::workspace::doc_in(workspace, store.get_schedule(name), "monitoring schedule")
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&row.config).map_err(|e| format!("schedule '{name}' is unreadable: {e}"))
}

/// Endpoint `name` of project `workspace` (one of another project answers
/// as missing: a schedule outlives its endpoint, and the name may since
/// belong to another project).
pub fn load_endpoint(
    store: &dyn MetadataStore,
    workspace: &str,
    name: &str,
) -> Result<EndpointConfig, String> {
    let row = server::workspace::doc_in(workspace, store.get_endpoint(name), "endpoint")
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&row.config).map_err(|e| format!("endpoint '{name}' is unreadable: {e}"))
}

/// The pipeline of the endpoint's first (or only) variant.
pub(crate) fn endpoint_pipeline(ctx: &JobContext, ep: &EndpointConfig) -> Result<Pipeline, String> {
    let v = ep.variants.first().ok_or("the endpoint has no variant")?;
    let path = ArtifactPath::parse(&v.artifact_path).map_err(|e| e.to_string())?;
    let bytes = ctx
        .block_on(ctx.artifacts.read_all(&path))
        .map_err(|e| e.to_string())?;
    Pipeline::from_bytes(&bytes)
}

/// Where a baseline job of project `workspace` named `name` writes its
/// baseline (`baselines/<name>`, under `projects/<workspace>/` outside the
/// default project: see [`artifacts::projects`]).
pub fn baseline_folder(workspace: &str, name: &str) -> String {
    artifacts::projects::in_project(workspace, &format!("baselines/{name}"))
}

/// The baseline folder of a schedule of project `workspace`: the
/// schedule's, else the served version's `atelier.baseline` tag; refused
/// unless it is in that project's part of the artifact store.
pub fn baseline_path(
    store: &dyn MetadataStore,
    workspace: &str,
    s: &Schedule,
    ep: &EndpointConfig,
) -> Result<String, String> {
    let owned = |b: &str| {
        server::workspace::artifact_in(store, workspace, b)
            .map(|_| b.to_string())
            .map_err(|_| {
                format!(
                    "no baseline at '{b}' in project '{workspace}'; make one with POST /api/atelier/baselines or `atelier monitor baseline`"
                )
            })
    };
    if let Some(b) = &s.baseline {
        return owned(b);
    }
    for v in &ep.variants {
        if let (Some(name), Some(version)) = (&v.registered_model, v.version)
            && let Ok(mv) = store.get_model_version(name, version)
            && let Some(t) = mv.tags.iter().find(|t| t.key == "atelier.baseline")
        {
            return owned(&t.value);
        }
    }
    Err(format!(
        "endpoint '{}' serves no model version with a baseline (tag atelier.baseline); give the schedule a \"baseline\" folder (POST /api/atelier/baselines makes one from a dataset)",
        ep.name
    ))
}

/// The baseline folder on this machine (downloaded when the artifact store
/// is not a local folder).
fn local_baseline(
    arts: &ArtifactStore,
    ctx: &JobContext,
    dir: &str,
    tmp: &Path,
) -> Result<PathBuf, String> {
    let base = ArtifactPath::parse(dir).map_err(|e| format!("baseline '{dir}': {e}"))?;
    if let Some(p) = arts.local_file(&base).map_err(|e| e.to_string())? {
        return Ok(p);
    }
    for f in [
        monitor::baseline::STATISTICS_FILE,
        monitor::baseline::CONSTRAINTS_FILE,
        monitor::baseline::SAMPLE_FILE,
    ] {
        let from = base.join(f).map_err(|e| e.to_string())?;
        if let Err(e) = ctx.block_on(arts.download_to(&from, &tmp.join(f)))
            && f != monitor::baseline::SAMPLE_FILE
        {
            return Err(format!("baseline '{dir}': {e}"));
        }
    }
    Ok(tmp.to_path_buf())
}

/// Upload every file of a local folder under `to`.
pub(crate) fn upload_dir(
    ctx: &JobContext,
    from: &Path,
    to: &ArtifactPath,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let entries = std::fs::read_dir(from).map_err(|e| e.to_string())?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let bytes = std::fs::read(e.path()).map_err(|e| e.to_string())?;
        let dest = to.join(&name).map_err(|e| e.to_string())?;
        ctx.block_on(ctx.artifacts.put_bytes(&dest, Bytes::from(bytes)))
            .map_err(|e| e.to_string())?;
        out.insert(name, json!(dest.as_str()));
    }
    Ok(out)
}

/// Runs one execution of a schedule over its window.
pub struct ExecutionRunner;

impl Runner for ExecutionRunner {
    fn kind(&self) -> &'static str {
        EXECUTION_KIND
    }
    fn check(&self, spec: &Value, ctx: &CheckContext) -> Result<String, String> {
        let name = spec["schedule"]
            .as_str()
            .ok_or("give the \"schedule\" to run")?;
        let (Some(a), Some(b)) = (
            spec["window_start_ms"].as_i64(),
            spec["window_end_ms"].as_i64(),
        ) else {
            return Err("give window_start_ms and window_end_ms (epoch milliseconds)".into());
        };
        if a >= b {
            return Err("the window must end after it starts".into());
        }
        load_schedule(ctx.store.as_ref(), &ctx.workspace, name)?;
        Ok(name.to_string())
    }
    fn run(&self, ctx: &JobContext) -> Result<Value, JobFailure> {
        let name = ctx.spec["schedule"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let start = ctx.spec["window_start_ms"].as_i64().unwrap_or(0);
        let end = ctx.spec["window_end_ms"].as_i64().unwrap_or(0);
        let sched = load_schedule(ctx.store.as_ref(), &ctx.job.workspace, &name).map_err(fail)?;
        let ep =
            load_endpoint(ctx.store.as_ref(), &ctx.job.workspace, &sched.endpoint).map_err(fail)?;
        ctx.progress(&json!({"phase": "reading capture"}));
        let folder = serving::capture::folder(&ctx.job.workspace, &sched.endpoint);
        let records = ctx
            .block_on(serving::read_capture(&ctx.artifacts, &folder, start, end))
            .map_err(fail)?;
        let mut result = json!({
            "schedule": name,
            "endpoint": sched.endpoint,
            "kind": sched.kind,
            "window_start_ms": start,
            "window_end_ms": end,
            "captured_requests": records.len(),
        });
        let outcome = match sched.kind {
            CheckKind::DataQuality => data_quality(ctx, &sched, &ep, &records, &mut result),
            CheckKind::ModelQuality => model_quality(ctx, &sched, &ep, &records, &mut result),
            CheckKind::ModelBias => {
                crate::clarify_checks::model_bias(ctx, &sched, &ep, &records, &mut result)
            }
            CheckKind::ModelExplainability => {
                crate::clarify_checks::model_explainability(ctx, &sched, &ep, &records, &mut result)
            }
        };
        outcome.map_err(fail)?;
        if ctx.cancelled() {
            return Err(JobFailure::Cancelled);
        }
        let violations = result["violations"].as_array().map_or(0, Vec::len);
        result["violation_count"] = json!(violations);
        if violations > 0 && !sched.webhooks.is_empty() {
            ctx.progress(&json!({"phase": "alerting"}));
            let body = json!({
                "event": "atelier.monitoring.violation",
                "schedule": name,
                "endpoint": sched.endpoint,
                "kind": sched.kind,
                "execution_id": ctx.job.id,
                "window_start_ms": start,
                "window_end_ms": end,
                "violations": result["violations"],
                "studio_path": format!("/monitor/{name}"),
            });
            // queued in the outbox: the delivery loop sends them off the job workers,
            // and their state lives there (a finished job never changes again)
            match ctx.store.enqueue_webhook_deliveries(
                &ctx.job.id,
                &name,
                &sched.webhooks,
                &body.to_string(),
            ) {
                Ok(n) => result["webhooks_queued"] = json!(n),
                Err(e) => {
                    tracing::warn!(schedule = %name, "could not queue the webhooks: {e}");
                    result["webhooks_queued"] = json!(0);
                    result["webhook_error"] = json!(format!("could not queue the webhooks: {e}"));
                }
            }
        }
        Ok(result)
    }
}

fn data_quality(
    ctx: &JobContext,
    sched: &Schedule,
    ep: &EndpointConfig,
    records: &[serving::CaptureRecord],
    result: &mut Value,
) -> Result<(), String> {
    let bpath = baseline_path(ctx.store.as_ref(), &ctx.job.workspace, sched, ep)?;
    result["baseline"] = json!(bpath);
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = local_baseline(&ctx.artifacts, ctx, &bpath, tmp.path())?;
    let baseline = monitor::Baseline::load(&dir).map_err(|e| e.to_string())?;
    let features: Vec<(String, Kind)> = baseline
        .statistics
        .features
        .iter()
        .map(|f| (f.name.clone(), f.atelier.kind))
        .collect();
    let names: Vec<String> = features.iter().map(|f| f.0.clone()).collect();
    let mut rows = Vec::new();
    let mut unreadable = 0usize;
    for r in records {
        if let Some(input) = &r.capture_data.endpoint_input {
            match input_records(input, &names) {
                Ok(mut v) => rows.append(&mut v),
                Err(_) => unreadable += 1,
            }
        }
    }
    result["rows"] = json!(rows.len());
    result["unreadable_requests"] = json!(unreadable);
    if rows.is_empty() {
        result["status"] = json!("no_data");
        result["message"] = json!(format!(
            "no captured requests between {} and {}: nothing to check (is traffic flowing, and is data capture on for '{}'?)",
            iso(result["window_start_ms"].as_i64().unwrap_or(0)),
            iso(result["window_end_ms"].as_i64().unwrap_or(0)),
            ep.name
        ));
        result["violations"] = json!([]);
        return Ok(());
    }
    ctx.progress(&json!({"phase": "checking", "rows": rows.len()}));
    let table = monitor::table_from_records(&rows, &features);
    let mut prof = monitor::Profiler::new(&features, SAMPLE_SIZE);
    prof.add(&table).map_err(|e| e.to_string())?;
    let report = monitor::check(&baseline, &prof.finish()).map_err(|e| e.to_string())?;
    let out = tmp.path().join("report");
    report.write(&out).map_err(|e| e.to_string())?;
    let dest = ArtifactPath::parse(&artifacts::projects::in_project(
        &ctx.job.workspace,
        &format!("monitoring/{}/{}", sched.name, ctx.job.id),
    ))
    .map_err(|e| e.to_string())?;
    result["files"] = Value::Object(upload_dir(ctx, &out, &dest)?);
    // Columns the served model does not read (the target, ids, extras) are
    // still checked, but reported apart: a change there never alerts.
    let used: Option<HashSet<String>> = endpoint_pipeline(ctx, ep)
        .ok()
        .map(|p| p.preprocessor.required().map(|c| c.name.clone()).collect());
    let is_used = |name: &str| used.as_ref().is_none_or(|u| u.contains(name));
    let (alerting, apart): (Vec<_>, Vec<_>) = report
        .violations
        .violations
        .iter()
        .partition(|v| is_used(&v.feature_name));
    result["status"] = json!(if alerting.is_empty() {
        "ok"
    } else {
        "violations"
    });
    result["violations"] = serde_json::to_value(&alerting).map_err(|e| e.to_string())?;
    result["unused_column_violations"] = serde_json::to_value(&apart).map_err(|e| e.to_string())?;
    result["model_columns"] = match &used {
        Some(u) => {
            let mut v: Vec<&String> = u.iter().collect();
            v.sort();
            json!(v)
        }
        None => Value::Null,
    };
    let (drifted, drifted_unused): (Vec<&String>, Vec<&String>) =
        report.drift.drifted.iter().partition(|n| is_used(n));
    result["drifted"] = json!(drifted);
    result["drifted_unused"] = json!(drifted_unused);
    result["multiple_testing"] = json!(report.drift.multiple_testing);
    result["features"] = Value::Array(
        report
            .drift
            .features
            .iter()
            .map(|f| {
                json!({
                    "name": f.name,
                    "used_by_model": is_used(&f.name),
                    "method": f.method,
                    "value": f.value,
                    "p_adjusted": f.p_adjusted,
                    "threshold": f.threshold,
                    "drift": f.drift,
                    "note": f.note,
                    "statistics": f.statistics,
                })
            })
            .collect(),
    );
    result["histograms"] = histograms(&baseline, &table);
    Ok(())
}

/// Baseline vs current shares per feature, in the baseline's bins (its
/// KLL buckets for numbers, its top values plus "other" for labels).
fn histograms(baseline: &monitor::Baseline, table: &tabular::Table) -> Value {
    let mut out = Map::new();
    for f in baseline.statistics.features.iter().take(MAX_HISTOGRAMS) {
        let Some(col) = table.column(&f.name) else {
            continue;
        };
        if let Some(ns) = &f.numerical_statistics {
            let b = &ns.distribution.kll.buckets;
            if b.is_empty() {
                continue;
            }
            let total: f64 = b.iter().map(|x| x.count).sum::<f64>().max(1.0);
            let mut cur = vec![0f64; b.len()];
            let mut n = 0f64;
            for i in 0..col.len() {
                if let Some(v) = col.f64_at(i) {
                    n += 1.0;
                    let j = b
                        .iter()
                        .position(|x| v < x.upper_bound)
                        .unwrap_or(b.len() - 1);
                    cur[j] += 1.0;
                }
            }
            out.insert(
                f.name.clone(),
                json!({
                    "type": "numeric",
                    "bins": b.iter().map(|x| json!([x.lower_bound, x.upper_bound])).collect::<Vec<_>>(),
                    "baseline": b.iter().map(|x| x.count / total).collect::<Vec<_>>(),
                    "current": cur.iter().map(|c| if n > 0.0 { c / n } else { 0.0 }).collect::<Vec<_>>(),
                }),
            );
        } else if let Some(ss) = &f.string_statistics {
            let top: Vec<&monitor::baseline::CategoryCount> = ss
                .distribution
                .categorical
                .buckets
                .iter()
                .take(15)
                .collect();
            let present = ss.common.num_present.max(1) as f64;
            let mut counts: HashMap<String, f64> = HashMap::new();
            let mut n = 0f64;
            for i in 0..col.len() {
                if let Some(s) = col.str_at(i) {
                    n += 1.0;
                    *counts.entry(s).or_default() += 1.0;
                }
            }
            let mut labels: Vec<String> = top.iter().map(|c| c.value.clone()).collect();
            let mut base: Vec<f64> = top.iter().map(|c| c.count as f64 / present).collect();
            let mut cur: Vec<f64> = labels
                .iter()
                .map(|l| counts.get(l).copied().unwrap_or(0.0) / n.max(1.0))
                .collect();
            let other_b = 1.0 - base.iter().sum::<f64>();
            let other_c = 1.0 - cur.iter().sum::<f64>();
            if other_b > 1e-9 || other_c > 1e-9 {
                labels.push("(other)".into());
                base.push(other_b.max(0.0));
                cur.push(if n > 0.0 { other_c.max(0.0) } else { 0.0 });
            }
            out.insert(
                f.name.clone(),
                json!({"type": "categorical", "bins": labels, "baseline": base, "current": cur}),
            );
        }
    }
    Value::Object(out)
}

/// The folder of the ground truth uploaded for `endpoint` of project
/// `workspace` (`ground-truth/<endpoint>`, under `projects/<workspace>/`
/// outside the default project: see [`artifacts::projects`]).
pub fn ground_truth_folder(workspace: &str, endpoint: &str) -> String {
    artifacts::projects::in_project(workspace, &format!("ground-truth/{endpoint}"))
}

/// Every label uploaded for an endpoint (the newest upload of an id wins).
/// Ground truth uploaded for `endpoint` of project `workspace` from the
/// hour before `since_ms` on: labels arrive after the predictions they
/// label, so a window's labels are never in an older upload, and the read
/// does not grow with the endpoint's history
/// (`ground-truth/<endpoint>/YYYY/MM/DD/HH/*.jsonl`, the upload's hour).
pub async fn read_labels(
    arts: &ArtifactStore,
    workspace: &str,
    endpoint: &str,
    since_ms: i64,
) -> Result<LabelIndex, String> {
    let folder = ground_truth_folder(workspace, endpoint);
    let dir = ArtifactPath::parse(&folder).map_err(|e| e.to_string())?;
    // the partition names the hour: any time an hour earlier is in the one before
    let first_hour = serving::capture::hour_partition(since_ms.max(0) - 3_600_000);
    let prefix = format!("{folder}/");
    let mut files: Vec<String> = arts
        .list_recursive(&dir)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.ends_with(".jsonl"))
        .filter(|p| {
            // YYYY/MM/DD/HH/<file>; anything else is read (never lose a label)
            p.strip_prefix(&prefix)
                .and_then(|rest| rest.get(..13))
                .is_none_or(|hour| hour >= first_hour.as_str())
        })
        .collect();
    files.sort();
    let mut idx = LabelIndex::default();
    for f in files {
        let path = ArtifactPath::parse(&f).map_err(|e| e.to_string())?;
        let bytes = arts.read_all(&path).await.map_err(|e| e.to_string())?;
        if let Ok(labels) = crate::quality::parse_labels(&bytes, "application/jsonlines") {
            for l in labels {
                idx.add(l);
            }
        }
    }
    Ok(idx)
}

fn model_quality(
    ctx: &JobContext,
    sched: &Schedule,
    ep: &EndpointConfig,
    records: &[serving::CaptureRecord],
    result: &mut Value,
) -> Result<(), String> {
    let pipeline = endpoint_pipeline(ctx, ep)?;
    let problem = pipeline.problem;
    let metric = sched.metric.clone().unwrap_or_else(|| {
        if problem == ProblemType::Regression {
            "rmse".into()
        } else {
            "accuracy".into()
        }
    });
    let higher = !matches!(metric.as_str(), "rmse" | "mse" | "mae" | "log_loss");
    let since = ctx.spec["window_start_ms"].as_i64().unwrap_or(0);
    let labels = ctx.block_on(read_labels(
        &ctx.artifacts,
        &ctx.job.workspace,
        &sched.endpoint,
        since,
    ))?;
    let k = if problem == ProblemType::Multiclass {
        pipeline.labels.len()
    } else {
        1
    };
    let (mut y, mut pred) = (Vec::new(), Vec::new());
    let mut probs_all: Vec<Vec<f64>> = Vec::new();
    let (mut predictions, mut unlabelled, mut unknown_class, mut count_mismatch) =
        (0usize, 0usize, 0usize, 0usize);
    for r in records {
        let Some(out) = &r.capture_data.endpoint_output else {
            continue;
        };
        let Ok(preds) = output_predictions(out) else {
            continue;
        };
        predictions += preds.len();
        // probabilities in the pipeline's label order
        let ordered: Vec<Vec<f64>> = preds
            .iter()
            .map(|p| {
                pipeline
                    .labels
                    .iter()
                    .map(|l| {
                        p.labels
                            .iter()
                            .position(|x| x == l)
                            .and_then(|i| p.probabilities.get(i))
                            .copied()
                            .unwrap_or(f64::NAN)
                    })
                    .collect()
            })
            .collect();
        if problem != ProblemType::Regression {
            probs_all.extend(
                ordered
                    .iter()
                    .filter(|p| p.iter().all(|x| x.is_finite()))
                    .cloned(),
            );
        }
        let Some(truth) = labels.of(&r.event_metadata) else {
            unlabelled += preds.len();
            continue;
        };
        if truth.len() != preds.len() {
            count_mismatch += 1;
            continue;
        }
        for ((t, p), probs) in truth.iter().zip(&preds).zip(&ordered) {
            match problem {
                ProblemType::Regression => {
                    if let (Ok(t), Ok(v)) = (t.trim().parse::<f64>(), p.label.parse::<f64>()) {
                        y.push(t);
                        pred.push(v);
                    }
                }
                _ => {
                    let Some(ti) = pipeline.labels.iter().position(|l| l == t.trim()) else {
                        unknown_class += 1;
                        continue;
                    };
                    if probs.iter().any(|x| !x.is_finite()) {
                        continue;
                    }
                    y.push(ti as f64);
                    if problem == ProblemType::Binary {
                        pred.push(probs[1]);
                    } else {
                        pred.extend_from_slice(probs);
                    }
                }
            }
        }
    }
    result["metric"] = json!(metric);
    result["higher_is_better"] = json!(higher);
    result["predictions"] = json!(predictions);
    result["labelled"] = json!(y.len());
    result["unlabelled"] = json!(unlabelled);
    result["labels_uploaded"] = json!(labels.len());
    result["labels_with_unknown_class"] = json!(unknown_class);
    result["labels_with_wrong_row_count"] = json!(count_mismatch);
    if problem != ProblemType::Regression {
        let calibration = calibration_of(ctx, sched, ep);
        result["estimated"] = cbpe(&probs_all, calibration.as_ref()).unwrap_or(Value::Null);
    }
    let baseline = sched.baseline_score.or_else(|| {
        let m = &pipeline.metadata.metrics;
        m.get(&metric)
            .or_else(|| m.get(&format!("validation_{metric}")))
            .copied()
    });
    result["baseline_score"] = json!(baseline);
    result["violations"] = json!([]);
    if y.is_empty() {
        result["status"] = json!("no_labels");
        result["message"] = json!(if predictions == 0 {
            "no captured predictions in this window".to_string()
        } else {
            format!(
                "none of the {predictions} captured predictions has a label yet; upload ground truth keyed by inferenceId or eventId"
            )
        });
        return Ok(());
    }
    let metrics = learn::evaluate(problem, k, &y, &pred);
    let score = metrics.get(&metric).copied().ok_or_else(|| {
        format!(
            "metric '{metric}' does not apply to a {} model; use one of {}",
            problem.as_str(),
            metrics.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    result["metrics"] = json!(metrics);
    result["score"] = json!(score);
    result["status"] = json!("ok");
    if let Some(b) = baseline {
        let t = sched.threshold.unwrap_or(if higher { 0.05 } else { 0.2 });
        let (bad, limit) = if higher {
            (score < b - t, b - t)
        } else {
            (score > b * (1.0 + t), b * (1.0 + t))
        };
        result["limit"] = json!(limit);
        if bad {
            result["status"] = json!("violations");
            result["violations"] = json!([{
                "feature_name": metric,
                "constraint_check_type": "model_quality_check",
                "description": format!("{metric} is {score:.4} on {} labelled predictions, past the limit {limit:.4} (baseline {b:.4}, threshold {t})", y.len()),
            }]);
        }
    } else {
        result["message"] = json!(format!(
            "no baseline score for {metric}: give the schedule a baseline_score to get violations"
        ));
    }
    Ok(())
}

/// The served model's calibration (`calibration.json` beside its baseline), if any.
fn calibration_of(
    ctx: &JobContext,
    sched: &Schedule,
    ep: &EndpointConfig,
) -> Option<monitor::calibration::Calibration> {
    let b = baseline_path(ctx.store.as_ref(), &ctx.job.workspace, sched, ep).ok()?;
    let path = ArtifactPath::parse(&b)
        .ok()?
        .join(monitor::calibration::CALIBRATION_FILE)
        .ok()?;
    let bytes = ctx.block_on(ctx.artifacts.read_all(&path)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn iso(ms: i64) -> String {
    tabular::format_datetime_ms(ms)
}

/// Makes a baseline from a stored dataset: spec `{"dataset", "name",
/// "exclude": [columns]}` → `baselines/<name>/`.
pub struct BaselineRunner;

impl Runner for BaselineRunner {
    fn kind(&self) -> &'static str {
        BASELINE_KIND
    }
    fn check(&self, spec: &Value, ctx: &CheckContext) -> Result<String, String> {
        let dataset = spec["dataset"]
            .as_str()
            .ok_or("give the \"dataset\" to baseline")?;
        let path = artifacts::datasets::dataset_path_in(&ctx.workspace, dataset)?;
        let name = spec["name"]
            .as_str()
            .unwrap_or(dataset.rsplit_once('.').map_or(dataset, |x| x.0));
        ArtifactPath::parse(&baseline_folder(&ctx.workspace, name)).map_err(|e| e.to_string())?;
        let exists = match ctx.artifacts.local_file(&path) {
            Ok(Some(p)) => p.exists(),
            // not a local folder (S3): ask the store
            _ => matches!(ctx.rt.block_on(ctx.artifacts.size(&path)), Ok(Some(_))),
        };
        if !exists {
            return Err(format!("no dataset named '{dataset}'"));
        }
        Ok(name.to_string())
    }
    fn run(&self, ctx: &JobContext) -> Result<Value, JobFailure> {
        let dataset = ctx.spec["dataset"].as_str().unwrap_or_default();
        let exclude: Vec<String> = ctx.spec["exclude"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let path =
            artifacts::datasets::dataset_path_in(&ctx.job.workspace, dataset).map_err(fail)?;
        let tmp = tempfile::tempdir().map_err(fail)?;
        let file = ctx
            .block_on(ctx.artifacts.fetch_local(&path, tmp.path()))
            .map_err(fail)?;
        let dir = ArtifactPath::parse(&baseline_folder(&ctx.job.workspace, &ctx.job.name))
            .map_err(fail)?;
        let files = make_baseline(ctx, &file, &exclude, &dir, tmp.path())?;
        Ok(json!({"baseline": dir.as_str(), "files": files}))
    }
}

/// Profile `file` (streaming), suggest a baseline, and store it under `dir`.
pub fn make_baseline(
    ctx: &JobContext,
    file: &Path,
    exclude: &[String],
    dir: &ArtifactPath,
    tmp: &Path,
) -> Result<Map<String, Value>, JobFailure> {
    let stats = monitor::profile_path(file, &HashMap::new(), SAMPLE_SIZE, 65_536).map_err(fail)?;
    let stats = monitor::DatasetStats {
        rows: stats.rows,
        columns: stats
            .columns
            .into_iter()
            .filter(|c| !exclude.contains(&c.name))
            .collect(),
    };
    let baseline = monitor::Baseline::suggest(&stats).map_err(fail)?;
    let out = tmp.join("baseline");
    baseline.write(&out).map_err(fail)?;
    upload_dir(ctx, &out, dir).map_err(fail)
}
