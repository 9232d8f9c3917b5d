//! Shadow tests: a copy of a sampled share of the requests one production
//! variant answers goes to another model; its answers are captured, never
//! returned, and never slow the production answer.
//!
//! - **Configuration** ([`ShadowConfig`]) lives in the endpoint's stored
//!   JSON, so every server process on the database has it; whether the test
//!   is running is decided when it is read (`ends_ms`, `stopped_ms`), so
//!   it ends by itself without a timer.
//! - **Copies** go with `try_send` onto a bounded queue ([`QUEUE`]) to one
//!   worker task, which predicts on the blocking pool; a full queue drops
//!   the copy and says so in the production record (`copy: "dropped"`).
//! - **Records**: the production answer of a copied request is always
//!   captured (even when data capture would not have sampled it, marked
//!   `monitored: false` then) and the shadow's answer goes to
//!   `capture/<endpoint>/<shadow variant>/…`, both with the same `eventId`
//!   and `inferenceId` and an `eventMetadata.shadowTest` block (test id,
//!   role, latency, status, error). Model Monitor never sees the test's own
//!   records ([`crate::CaptureRecord::monitored`]).
//! - **Comparison** ([`compare`]) is computed from those records, so any
//!   process can serve it and it survives restarts: agreement rate
//!   (classification) or the distribution of prediction differences
//!   (regression), latency and errors of both sides, copies dropped.
//! - **Promote** puts the shadow's model on the production variant through
//!   the same configuration swap updates use: requests in flight finish on
//!   the old model, the next ones get the new one, none fail.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::capture::{CaptureData, CaptureRecord, CaptureSender, Pending, ShadowMeta};
use crate::codec::{self, Format};
use crate::endpoint::{LiveShadow, ShadowConfig, check_name};
use crate::error::{Result, ServingError};
use crate::metrics::EndpointMetrics;

/// A copy not answered this long after its request is counted as lost.
pub const LOST_AFTER_MS: i64 = 30_000;
/// Copies waiting for the shadow, at most; more are dropped (counted).
pub const QUEUE: usize = 256;
/// Longest test (30 days) and the default one (one hour).
pub const MAX_DURATION_SECONDS: f64 = 30.0 * 86_400.0;
pub const DEFAULT_DURATION_SECONDS: f64 = 3_600.0;

/// What a client sends to start a shadow test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowRequest {
    /// The shadow's model (`models:/name/3`, `models:/name@alias`,
    /// `runs:/…`, `mlflow-artifacts:/…`).
    pub model: String,
    /// Share of the production variant's requests copied, in (0, 100].
    #[serde(default = "full")]
    pub sampling_percentage: f64,
    /// How long the test runs (default one hour, at most 30 days).
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    /// The production variant whose requests are copied (default: the
    /// endpoint's only variant).
    #[serde(default)]
    pub production_variant: Option<String>,
    /// The shadow's name, its capture folder (default `shadow`).
    #[serde(default)]
    pub variant: Option<String>,
}

fn full() -> f64 {
    100.0
}

impl ShadowRequest {
    /// Check what needs no model; the caller resolves the model.
    pub fn validate(&self, endpoint: &str, variants: &[&str], now_ms: i64) -> Result<ShadowConfig> {
        if self.model.trim().is_empty() {
            return Err(ServingError::BadRequest(
                "name the shadow's model: \"model\": \"models:/<name>/<version>\" (or @<alias>, runs:/…, mlflow-artifacts:/…)".into(),
            ));
        }
        let p = self.sampling_percentage;
        if !(p.is_finite() && p > 0.0 && p <= 100.0) {
            return Err(ServingError::BadRequest(format!(
                "sampling_percentage is the share of requests copied to the shadow: above 0 and at most 100, not {p}"
            )));
        }
        let d = self.duration_seconds.unwrap_or(DEFAULT_DURATION_SECONDS);
        if !(d.is_finite() && (1.0..=MAX_DURATION_SECONDS).contains(&d)) {
            return Err(ServingError::BadRequest(format!(
                "duration_seconds must be between 1 and {MAX_DURATION_SECONDS} (30 days), not {d}"
            )));
        }
        let production = match &self.production_variant {
            Some(v) if variants.contains(&v.as_str()) => v.clone(),
            Some(v) => {
                return Err(ServingError::BadRequest(format!(
                    "endpoint '{endpoint}' has no variant '{v}' to shadow; its variants are: {}",
                    variants.join(", ")
                )));
            }
            None if variants.len() == 1 => variants[0].to_string(),
            None => {
                return Err(ServingError::BadRequest(format!(
                    "endpoint '{endpoint}' has several variants: say which one to shadow with \"production_variant\" ({})",
                    variants.join(", ")
                )));
            }
        };
        let name = self.variant.clone().unwrap_or_else(|| "shadow".into());
        check_name("shadow variant", &name)?;
        if variants.contains(&name.as_str()) {
            return Err(ServingError::BadRequest(format!(
                "the shadow cannot be named '{name}': a production variant has that name; pick another \"variant\""
            )));
        }
        Ok(ShadowConfig {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            variant: name,
            production_variant: production,
            model: self.model.trim().to_string(),
            artifact_path: String::new(),
            registered_model: None,
            version: None,
            sampling_percentage: p,
            started_ms: now_ms,
            ends_ms: now_ms + (d * 1000.0).round() as i64,
            stopped_ms: None,
            outcome: None,
        })
    }
}

/// A request copied for the shadow.
pub struct Copy {
    pub shadow: Arc<LiveShadow>,
    pub body: Bytes,
    pub content_type: Option<String>,
    pub inference_id: Option<String>,
    pub event_id: String,
    pub time_ms: i64,
    pub metrics: Arc<EndpointMetrics>,
}

/// The request path's end of the shadow queue.
#[derive(Clone)]
pub struct ShadowSender {
    tx: mpsc::Sender<Copy>,
}

impl ShadowSender {
    /// Queue a copy without waiting; `false` when the queue is full (the
    /// copy is dropped and counted on the shadow).
    pub fn offer(&self, c: Copy) -> bool {
        let shadow = c.shadow.clone();
        match self.tx.try_send(c) {
            Ok(()) => true,
            Err(_) => {
                shadow.dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }
}

/// Start the worker (on the current runtime): one copy at a time, predicted
/// on the blocking pool, so a shadow takes at most one core from
/// production however much traffic comes.
pub fn start(capture: CaptureSender) -> ShadowSender {
    start_with(capture, QUEUE)
}

pub fn start_with(capture: CaptureSender, queue: usize) -> ShadowSender {
    let (tx, mut rx) = mpsc::channel::<Copy>(queue);
    tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            let model = c.shadow.model.clone();
            let body = c.body.clone();
            let ct = c.content_type.clone();
            let res = tokio::task::spawn_blocking(move || {
                let t = Instant::now();
                let r = Format::from_content_type(ct.as_deref(), &body).and_then(|input| {
                    if body.iter().all(u8::is_ascii_whitespace) {
                        return Err(ServingError::BadRequest(
                            "the payload is empty: send at least one row".into(),
                        ));
                    }
                    codec::invoke(&model, &body, input, Format::Json)
                });
                (r, t.elapsed().as_secs_f64() * 1000.0)
            })
            .await;
            let (status, error, output, latency_ms) = match res {
                Ok((Ok(a), ms)) => (200, None, Some(Bytes::from(a.body)), ms),
                Ok((Err(e), ms)) => (e.status().as_u16(), Some(e.to_string()), None, ms),
                Err(e) => (
                    500,
                    Some(format!("shadow prediction failed: {e}")),
                    None,
                    0.0,
                ),
            };
            capture.offer(Pending {
                folder: c.shadow.capture.clone(),
                variant: c.shadow.name.clone(),
                time_ms: c.time_ms,
                inference_id: c.inference_id,
                input: None,
                output: output.map(|o| (Format::Json.content_type().to_string(), o)),
                metrics: c.metrics,
                event_id: Some(c.event_id),
                shadow: Some(ShadowMeta {
                    id: c.shadow.id.to_string(),
                    role: "shadow".into(),
                    latency_ms,
                    status,
                    error,
                    copy: None,
                    monitored: false,
                }),
            });
        }
    });
    ShadowSender { tx }
}

/// One prediction read back from a captured answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pred {
    Num(f64),
    Label(String),
}

impl Pred {
    fn label(&self) -> String {
        match self {
            Pred::Num(x) => x.to_string(),
            Pred::Label(s) => s.clone(),
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Pred::Num(x) => Some(*x),
            Pred::Label(s) => s.trim().parse().ok(),
        }
    }
}

fn pred_of(v: &Value) -> Option<Pred> {
    match v.get("predicted_label")? {
        Value::Number(n) => n.as_f64().map(Pred::Num),
        Value::String(s) => Some(Pred::Label(s.clone())),
        Value::Bool(b) => Some(Pred::Label(b.to_string())),
        _ => None,
    }
}

/// The predicted labels or values of a captured answer (JSON, JSON Lines
/// or CSV, as the endpoint writes them).
fn predictions(d: &CaptureData) -> Option<Vec<Pred>> {
    if d.encoding == "BASE64" {
        return None;
    }
    let ct = d.observed_content_type.to_ascii_lowercase();
    if ct.contains("csv") {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(d.data.as_bytes());
        let mut out = Vec::new();
        for rec in r.records() {
            let rec = rec.ok()?;
            let f = rec.get(0)?;
            out.push(Pred::Label(f.to_string()));
        }
        Some(out)
    } else if ct.contains("jsonl") || ct.contains("ndjson") {
        d.data
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| pred_of(&v))
            })
            .collect()
    } else {
        let v: Value = serde_json::from_str(&d.data).ok()?;
        v.get("predictions")?
            .as_array()?
            .iter()
            .map(pred_of)
            .collect()
    }
}

/// Summary of a sample: count, mean, median, 95th percentile, max.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

fn summary(v: &mut [f64]) -> Summary {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        Some(v[i])
    };
    Summary {
        count: v.len(),
        mean: (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64),
        p50: q(0.5),
        p95: q(0.95),
        max: v.last().copied(),
    }
}

/// Equal-width bins over `[lo, hi]`: `[{lo, hi, count}]`.
fn histogram(v: &[f64], bins: usize) -> Vec<Value> {
    if v.is_empty() {
        return vec![];
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // symmetric around 0 so "no difference" is the middle bin
    let m = lo.abs().max(hi.abs());
    let (lo, hi) = if m == 0.0 { (-0.5, 0.5) } else { (-m, m) };
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for x in v {
        let i = (((x - lo) / w).floor() as isize).clamp(0, bins as isize - 1) as usize;
        counts[i] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"lo": lo + w * i as f64, "hi": lo + w * (i + 1) as f64, "count": c}))
        .collect()
}

/// Latency bins shared by both sides (milliseconds, log-spaced).
const LATENCY_BINS: [f64; 16] = [
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4,
];

fn latency_histogram(v: &[f64]) -> Vec<u64> {
    let mut c = vec![0u64; LATENCY_BINS.len() + 1];
    for x in v {
        let i = LATENCY_BINS
            .iter()
            .position(|b| x <= b)
            .unwrap_or(LATENCY_BINS.len());
        c[i] += 1;
    }
    c
}

/// What the comparison needs of one capture record of a shadow test
/// (kept per capture file by the server, since files never change).
#[derive(Debug, Clone)]
pub struct PairSide {
    pub variant: String,
    pub event_id: String,
    pub time_ms: i64,
    pub meta: ShadowMeta,
    preds: Option<Vec<Pred>>,
}

impl PairSide {
    /// `None` for a record that is not part of a shadow test.
    pub fn of(r: &CaptureRecord) -> Option<PairSide> {
        let meta = r.event_metadata.shadow_test.clone()?;
        Some(PairSide {
            variant: r.variant.clone(),
            event_id: r.event_metadata.event_id.clone(),
            time_ms: tabular::parse_datetime(&r.event_metadata.inference_time).unwrap_or(0),
            meta,
            preds: r
                .capture_data
                .endpoint_output
                .as_ref()
                .and_then(predictions),
        })
    }
}

/// The comparison of a test from its capture records (any process, after
/// restarts). `now_ms` decides whether it is still running.
pub fn compare(
    cfg: &ShadowConfig,
    problem: &str,
    records: &[CaptureRecord],
    bucket_ms: i64,
    now_ms: i64,
) -> Value {
    let sides: Vec<PairSide> = records.iter().filter_map(PairSide::of).collect();
    compare_sides(cfg, problem, sides.iter(), bucket_ms, now_ms)
}

/// [`compare`] over records already reduced to [`PairSide`]s.
pub fn compare_sides<'a>(
    cfg: &ShadowConfig,
    problem: &str,
    sides: impl Iterator<Item = &'a PairSide>,
    bucket_ms: i64,
    now_ms: i64,
) -> Value {
    let mut prod: HashMap<&str, &PairSide> = HashMap::new();
    let mut shadow: HashMap<&str, &PairSide> = HashMap::new();
    for side in sides {
        let m = &side.meta;
        if m.id != cfg.id {
            continue;
        }
        let key = side.event_id.as_str();
        match m.role.as_str() {
            "production" if side.variant == cfg.production_variant => {
                prod.insert(key, side);
            }
            "shadow" if side.variant == cfg.variant => {
                shadow.insert(key, side);
            }
            _ => {}
        }
    }
    let regression = problem == "regression";
    let copied = prod.len();
    let dropped = prod
        .values()
        .filter(|p| p.meta.copy.as_deref() == Some("dropped"))
        .count();
    let prod_errors = prod.values().filter(|p| p.meta.status != 200).count();
    let shadow_errors = shadow.values().filter(|p| p.meta.status != 200).count();
    let mut prod_lat: Vec<f64> = prod.values().map(|p| p.meta.latency_ms).collect();
    let mut shadow_lat: Vec<f64> = shadow.values().map(|p| p.meta.latency_ms).collect();
    let (prod_hist, shadow_hist) = (latency_histogram(&prod_lat), latency_histogram(&shadow_lat));
    let mut error_samples: Vec<Value> = Vec::new();
    let (mut compared, mut rows, mut agree, mut unreadable) = (0usize, 0usize, 0usize, 0usize);
    let mut diffs: Vec<f64> = Vec::new();
    let mut pairs_by_label: HashMap<(String, String), usize> = HashMap::new();
    // per time bucket: (rows, agreeing rows, sum of |difference|)
    let mut buckets: std::collections::BTreeMap<i64, (usize, usize, f64)> = Default::default();
    for (id, s) in &shadow {
        if s.meta.status != 200 && error_samples.len() < 5 {
            error_samples
                .push(json!({"side": "shadow", "status": s.meta.status, "error": s.meta.error}));
        }
        let Some(p) = prod.get(id) else { continue };
        if p.meta.status != 200 || s.meta.status != 200 {
            continue;
        }
        let (Some(po), Some(so)) = (&p.preds, &s.preds) else {
            unreadable += 1;
            continue;
        };
        if po.len() != so.len() {
            unreadable += 1;
            continue;
        }
        compared += 1;
        let t = p.time_ms;
        let b = buckets.entry(t - t.rem_euclid(bucket_ms)).or_default();
        for (a, z) in po.iter().zip(so) {
            rows += 1;
            b.0 += 1;
            if regression {
                if let (Some(x), Some(y)) = (a.num(), z.num()) {
                    diffs.push(y - x);
                    b.2 += (y - x).abs();
                    if (y - x).abs() <= 1e-9 * x.abs().max(1.0) {
                        agree += 1;
                        b.1 += 1;
                    }
                }
            } else {
                let (la, lz) = (a.label(), z.label());
                if la == lz {
                    agree += 1;
                    b.1 += 1;
                }
                *pairs_by_label.entry((la, lz)).or_default() += 1;
            }
        }
    }
    for p in prod.values() {
        if p.meta.status != 200 && error_samples.len() < 10 {
            error_samples.push(
                json!({"side": "production", "status": p.meta.status, "error": p.meta.error}),
            );
        }
    }
    let answered = shadow.len();
    // queued copies without an answer: waiting while recent, lost after that
    // (the process stopped, or a full capture buffer dropped the answer)
    let (mut pending, mut unanswered) = (0usize, 0usize);
    for (id, p) in &prod {
        if p.meta.copy.as_deref() == Some("queued") && !shadow.contains_key(id) {
            if now_ms - p.time_ms < LOST_AFTER_MS {
                pending += 1;
            } else {
                unanswered += 1;
            }
        }
    }
    let mut labels: Vec<Value> = pairs_by_label
        .into_iter()
        .map(|((a, b), n)| json!({"production": a, "shadow": b, "rows": n}))
        .collect();
    labels.sort_by(|a, b| b["rows"].as_u64().cmp(&a["rows"].as_u64()));
    labels.truncate(50);
    let timeline: Vec<Value> = buckets
        .iter()
        .map(|(t, (n, a, d))| {
            json!({
                "t_ms": t,
                "rows": n,
                "agreement": (*n > 0).then(|| *a as f64 / *n as f64),
                "mean_abs_difference": (regression && *n > 0).then(|| d / *n as f64),
            })
        })
        .collect();
    let mut abs: Vec<f64> = diffs.iter().map(|d| d.abs()).collect();
    let differences = regression.then(|| {
        let mut d = diffs.clone();
        json!({
            "histogram": histogram(&diffs, 24),
            "summary": summary(&mut d),
            "abs": summary(&mut abs),
        })
    });
    json!({
        "id": cfg.id,
        "status": cfg.status(now_ms),
        "problem": problem,
        "requests_copied": copied - dropped,
        "copies_dropped": dropped,
        "shadow_answers": answered,
        "pending": pending,
        "unanswered": unanswered,
        "compared_requests": compared,
        "compared_rows": rows,
        "unreadable": unreadable,
        "agreement_rate": (rows > 0).then(|| agree as f64 / rows as f64),
        "label_pairs": if regression { Value::Null } else { Value::from(labels) },
        "differences": differences,
        "timeline": timeline,
        "bucket_ms": bucket_ms,
        "production": {
            "variant": cfg.production_variant,
            "requests": prod.len(),
            "errors": prod_errors,
            "latency_ms": summary(&mut prod_lat),
            "latency_histogram": prod_hist,
        },
        "shadow": {
            "variant": cfg.variant,
            "requests": answered,
            "errors": shadow_errors,
            "latency_ms": summary(&mut shadow_lat),
            "latency_histogram": shadow_hist,
        },
        "latency_bins_ms": LATENCY_BINS,
        "errors": error_samples,
    })
}

/// The stored view of a test (its configuration and status).
pub fn view(cfg: &ShadowConfig, now_ms: i64, dropped_here: u64) -> Value {
    json!({
        "id": cfg.id,
        "status": cfg.status(now_ms),
        "running": cfg.running(now_ms),
        "variant": cfg.variant,
        "production_variant": cfg.production_variant,
        "model": cfg.model,
        "artifact_path": cfg.artifact_path,
        "registered_model": cfg.registered_model,
        "version": cfg.version,
        "sampling_percentage": cfg.sampling_percentage,
        "started_ms": cfg.started_ms,
        "ends_ms": cfg.ends_ms,
        "stopped_ms": cfg.stopped_ms,
        "outcome": cfg.outcome,
        "copies_dropped_here": dropped_here,
    })
}

fn kind(problem: learn::ProblemType) -> &'static str {
    if problem == learn::ProblemType::Regression {
        "regression"
    } else {
        "classification"
    }
}

impl crate::Serving {
    fn live_or_404(&self, name: &str) -> Result<Arc<crate::Slot>> {
        self.slot(name).ok_or_else(|| match self.failure(name) {
            Some(why) => ServingError::BadRequest(format!(
                "endpoint '{name}' is not in service ({why}); deploy it again before a shadow test"
            )),
            None => ServingError::NotFound(format!(
                "no endpoint named '{name}'; create it first (`atelier deploy` or POST /api/atelier/endpoints)"
            )),
        })
    }

    /// Start a shadow test on an endpoint (a running one must be stopped or
    /// promoted first).
    pub async fn start_shadow(&self, name: &str, req: ShadowRequest) -> Result<Arc<crate::Live>> {
        let _g = self.inner.admin.lock().await;
        let slot = self.live_or_404(name)?;
        let old = slot.current();
        let now = store::now_ms();
        if let Some(sh) = &old.config.shadow
            && sh.running(now)
        {
            return Err(ServingError::AlreadyExists(format!(
                "a shadow test of '{}' is running on endpoint '{name}' until {}; promote or stop it first",
                sh.model,
                crate::capture::iso_time(sh.ends_ms)
            )));
        }
        let names: Vec<&str> = old.variants.iter().map(|v| &*v.name).collect();
        let mut sh = req.validate(name, &names, now)?;
        let model = self.load_shadow(&old.config.workspace, &mut sh).await?;
        let production = old
            .variant(&sh.production_variant)
            .ok_or_else(|| ServingError::Internal("variant vanished".into()))?;
        let (pk, sk) = (
            kind(production.model.pipeline.problem),
            kind(model.pipeline.problem),
        );
        if pk != sk {
            return Err(ServingError::BadRequest(format!(
                "the shadow model '{}' does {sk} but variant '{}' does {pk}: shadow it with a model of the same kind",
                sh.model, sh.production_variant
            )));
        }
        let mut cfg = old.config.clone();
        cfg.shadow = Some(sh);
        // production serves what it served: no deploy rule to check (promote checks it)
        self.apply_unchecked(cfg, Some(old.created_ms)).await
    }

    /// End a running shadow test now (its records and comparison stay).
    pub async fn stop_shadow(&self, name: &str) -> Result<Arc<crate::Live>> {
        let _g = self.inner.admin.lock().await;
        let slot = self.live_or_404(name)?;
        let old = slot.current();
        let now = store::now_ms();
        let mut cfg = old.config.clone();
        match cfg.shadow.as_mut() {
            Some(sh) if sh.running(now) => {
                sh.stopped_ms = Some(now);
                sh.outcome = Some("stopped".into());
            }
            _ => {
                return Err(ServingError::BadRequest(format!(
                    "no shadow test is running on endpoint '{name}'; start one with POST /api/atelier/endpoints/{name}/shadow"
                )));
            }
        }
        self.apply_unchecked(cfg, Some(old.created_ms)).await
    }

    /// Make the shadow's model the production variant's (same name and
    /// weight), through the configuration swap: requests in flight finish
    /// on the old model, none fail.
    pub async fn promote_shadow(&self, name: &str) -> Result<Arc<crate::Live>> {
        let _g = self.inner.admin.lock().await;
        let slot = self.live_or_404(name)?;
        let old = slot.current();
        let now = store::now_ms();
        let mut cfg = old.config.clone();
        let Some(sh) = cfg.shadow.as_mut() else {
            return Err(ServingError::BadRequest(format!(
                "endpoint '{name}' has no shadow test to promote; start one with POST /api/atelier/endpoints/{name}/shadow"
            )));
        };
        if sh.outcome.as_deref() == Some("promoted") {
            return Err(ServingError::BadRequest(format!(
                "the shadow test of '{}' on endpoint '{name}' was promoted already; start a new one",
                sh.model
            )));
        }
        if sh.artifact_path.is_empty() {
            self.load_shadow(&old.config.workspace, sh).await?;
        }
        if sh.running(now) {
            sh.stopped_ms = Some(now);
        }
        sh.outcome = Some("promoted".into());
        let sh = sh.clone();
        let Some(v) = cfg
            .variants
            .iter_mut()
            .find(|v| v.name == sh.production_variant)
        else {
            return Err(ServingError::BadRequest(format!(
                "endpoint '{name}' no longer has the variant '{}' the shadow test ran against; start a new test",
                sh.production_variant
            )));
        };
        v.model = sh.model.clone();
        v.artifact_path = sh.artifact_path.clone();
        v.registered_model = sh.registered_model.clone();
        v.version = sh.version;
        self.apply(cfg, Some(old.created_ms)).await
    }

    /// The test's comparison from its capture records (`None`: the
    /// endpoint never had a shadow test).
    pub async fn shadow_comparison(&self, name: &str, bucket_ms: i64) -> Result<Option<Value>> {
        let slot = self.live_or_404(name)?;
        let live = slot.current();
        let Some(sh) = live.config.shadow.clone() else {
            return Ok(None);
        };
        let now = store::now_ms();
        let problem = match live.variant(&sh.production_variant) {
            Some(v) => kind(v.model.pipeline.problem),
            None => match &live.shadow {
                Some(s) => kind(s.model.pipeline.problem),
                None => "classification",
            },
        };
        let variants = [sh.production_variant.as_str(), sh.variant.as_str()];
        let (from, to) = (sh.started_ms, sh.end_ms().min(now) + 1);
        let folder = crate::capture::folder(&live.config.workspace, name);
        let files =
            crate::capture::capture_files(self.artifacts(), &folder, from, to, Some(&variants))
                .await?;
        // files are written once under new names: each is read (and reduced) once
        let mut per_file: Vec<Arc<Vec<PairSide>>> = Vec::with_capacity(files.len());
        for f in &files {
            let cached = crate::lock(&self.inner.shadow_files).get(&f.path).cloned();
            let sides = match cached {
                Some(c) => c,
                None => {
                    let recs = crate::capture::read_file(self.artifacts(), f).await?;
                    let sides = Arc::new(recs.iter().filter_map(PairSide::of).collect::<Vec<_>>());
                    crate::lock(&self.inner.shadow_files).insert(f.path.clone(), sides.clone());
                    sides
                }
            };
            per_file.push(sides);
        }
        {
            // keep only this endpoint's current files
            let prefix = format!("{folder}/");
            let keep: std::collections::HashSet<&str> =
                files.iter().map(|f| f.path.as_str()).collect();
            crate::lock(&self.inner.shadow_files)
                .retain(|k, _| !k.starts_with(&prefix) || keep.contains(k.as_str()));
        }
        let bucket_ms = bucket_ms.max(1_000);
        let cmp = compare_sides(
            &sh,
            problem,
            per_file
                .iter()
                .flat_map(|v| v.iter())
                .filter(|s| s.time_ms >= from && s.time_ms < to),
            bucket_ms,
            now,
        );
        let dropped_here = live
            .shadow
            .as_ref()
            .filter(|l| l.id.as_ref() == sh.id)
            .map_or(0, |l| l.dropped.load(Relaxed));
        Ok(Some(json!({
            "test": view(&sh, now, dropped_here),
            "comparison": cmp,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Captured, EventMetadata};

    fn cfg() -> ShadowConfig {
        ShadowRequest {
            model: "models:/m/2".into(),
            sampling_percentage: 50.0,
            duration_seconds: Some(60.0),
            production_variant: None,
            variant: None,
        }
        .validate("ep", &["AllTraffic"], 1_000)
        .unwrap()
    }

    fn rec(
        cfg: &ShadowConfig,
        variant: &str,
        role: &str,
        event: &str,
        out: Option<(&str, &str)>,
        status: u16,
        copy: Option<&str>,
    ) -> CaptureRecord {
        CaptureRecord {
            capture_data: Captured {
                endpoint_input: None,
                endpoint_output: out.map(|(ct, d)| CaptureData {
                    observed_content_type: ct.into(),
                    mode: "OUTPUT".into(),
                    data: d.into(),
                    encoding: "JSON".into(),
                }),
            },
            event_metadata: EventMetadata {
                event_id: event.into(),
                inference_id: None,
                inference_time: crate::capture::iso_time(2_000),
                shadow_test: Some(ShadowMeta {
                    id: cfg.id.clone(),
                    role: role.into(),
                    latency_ms: 1.5,
                    status,
                    error: (status != 200).then(|| "bad".into()),
                    copy: copy.map(str::to_string),
                    monitored: false,
                }),
            },
            event_version: "0".into(),
            variant: variant.into(),
        }
    }

    /// A tiny regression pipeline (two trees on 60 rows).
    fn tiny_model(dir: &std::path::Path) -> Arc<crate::LoadedModel> {
        let csv = dir.join("t.csv");
        let mut text = String::from("x,y\n");
        for i in 0..60 {
            let x = (i * 37 % 11) as f64 + 0.5;
            text.push_str(&format!("{x},{}\n", x * 2.0));
        }
        std::fs::write(&csv, text).unwrap();
        let table = tabular::read_path(&csv).unwrap();
        let opts = learn::TrainOptions {
            params: vec![("n_estimators".into(), "2".into())],
            ..Default::default()
        };
        let p = learn::train(&table, "y", &opts, &mut |_| {}).unwrap();
        Arc::new(crate::LoadedModel::new(p))
    }

    // one thread: the worker cannot take copies while they are offered, so exactly the queue is kept
    #[tokio::test]
    async fn a_full_shadow_queue_drops_copies_without_waiting_and_the_rest_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let arts = artifacts::ArtifactStore::local(dir.path().join("a")).unwrap();
        let capture =
            crate::capture::start_with(arts.clone(), 1000, std::time::Duration::from_secs(60));
        let c = cfg();
        let shadow = Arc::new(LiveShadow {
            config: c.clone(),
            model: tiny_model(dir.path()),
            capture: Arc::from("capture/ep"),
            name: Arc::from("shadow"),
            production: Arc::from("AllTraffic"),
            id: Arc::from(c.id.as_str()),
            dropped: Default::default(),
        });
        let metrics = Arc::new(EndpointMetrics::default());
        let q = start_with(capture.clone(), 4);
        let t = Instant::now();
        let mut queued = 0;
        for i in 0..200 {
            let body = if i == 1 { "x\nnot-a-number" } else { "x\n3\n7" };
            queued += usize::from(q.offer(Copy {
                shadow: shadow.clone(),
                body: Bytes::from(body),
                content_type: Some("text/csv".into()),
                inference_id: None,
                event_id: format!("e{i}"),
                time_ms: 1_795_400_118_000,
                metrics: metrics.clone(),
            }));
        }
        assert!(
            t.elapsed() < std::time::Duration::from_millis(200),
            "offering never waits"
        );
        assert_eq!(queued, 4);
        assert_eq!(shadow.dropped.load(Relaxed), 196);
        // the worker answers what was queued: three answers and one error, captured
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            capture.flush().await;
            let recs =
                crate::capture::read_records(&arts, "capture/ep", 0, i64::MAX, Some(&["shadow"]))
                    .await
                    .unwrap();
            if recs.len() == 4 {
                let errors: Vec<_> = recs
                    .iter()
                    .filter_map(|r| r.event_metadata.shadow_test.as_ref())
                    .filter(|m| m.status != 200)
                    .collect();
                assert_eq!(errors.len(), 1);
                assert!(
                    errors[0].error.as_deref().unwrap().contains("number"),
                    "{errors:?}"
                );
                assert!(recs.iter().all(|r| !r.monitored()));
                let ok = recs
                    .iter()
                    .find(|r| r.event_metadata.event_id == "e0")
                    .unwrap();
                let preds = predictions(ok.capture_data.endpoint_output.as_ref().unwrap()).unwrap();
                assert_eq!(preds.len(), 2);
                // the Model Monitor reader never sees them
                assert!(
                    crate::capture::read_capture(&arts, "capture/ep", 0, i64::MAX)
                        .await
                        .unwrap()
                        .is_empty()
                );
                break;
            }
            assert!(Instant::now() < deadline, "{} shadow records", recs.len());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn requests_are_checked_with_messages_that_say_what_to_fix() {
        let r = |p: f64, d: Option<f64>, v: Option<&str>| ShadowRequest {
            model: "models:/m/1".into(),
            sampling_percentage: p,
            duration_seconds: d,
            production_variant: v.map(str::to_string),
            variant: None,
        };
        let e = r(150.0, None, None).validate("ep", &["a"], 0).unwrap_err();
        assert!(e.to_string().contains("at most 100"), "{e}");
        let e = r(0.0, None, None).validate("ep", &["a"], 0).unwrap_err();
        assert!(e.to_string().contains("above 0"), "{e}");
        let e = r(10.0, Some(0.0), None)
            .validate("ep", &["a"], 0)
            .unwrap_err();
        assert!(e.to_string().contains("duration_seconds"), "{e}");
        let e = r(10.0, None, None)
            .validate("ep", &["a", "b"], 0)
            .unwrap_err();
        assert!(e.to_string().contains("production_variant"), "{e}");
        let e = r(10.0, None, Some("c"))
            .validate("ep", &["a", "b"], 0)
            .unwrap_err();
        assert!(e.to_string().contains("a, b"), "{e}");
        let c = r(10.0, Some(5.0), Some("b"))
            .validate("ep", &["a", "b"], 0)
            .unwrap();
        assert_eq!((c.production_variant.as_str(), c.ends_ms), ("b", 5_000));
        assert!(c.running(4_999) && !c.running(5_000));
        assert_eq!(c.status(5_000), "Ended");
    }

    #[test]
    fn classification_pairs_join_on_event_id_and_count_drops_and_errors() {
        let c = cfg();
        let a = r#"{"predictions":[{"predicted_label":"yes"},{"predicted_label":"no"}]}"#;
        let b = r#"{"predictions":[{"predicted_label":"yes"},{"predicted_label":"yes"}]}"#;
        let csv = "predicted_label,probability_no,probability_yes\nyes,0.1,0.9\nno,0.8,0.2\n";
        let recs = vec![
            rec(
                &c,
                "AllTraffic",
                "production",
                "e1",
                Some(("application/json", a)),
                200,
                Some("queued"),
            ),
            rec(
                &c,
                "shadow",
                "shadow",
                "e1",
                Some(("application/json", b)),
                200,
                None,
            ),
            rec(
                &c,
                "AllTraffic",
                "production",
                "e2",
                Some(("text/csv", csv)),
                200,
                Some("queued"),
            ),
            rec(
                &c,
                "shadow",
                "shadow",
                "e2",
                Some(("application/json", a)),
                200,
                None,
            ),
            rec(
                &c,
                "AllTraffic",
                "production",
                "e3",
                Some(("application/json", a)),
                200,
                Some("dropped"),
            ),
            rec(
                &c,
                "AllTraffic",
                "production",
                "e4",
                Some(("application/json", a)),
                200,
                Some("queued"),
            ),
            rec(&c, "shadow", "shadow", "e4", None, 400, None),
        ];
        let v = compare(&c, "binary", &recs, 60_000, 2_000);
        assert_eq!(v["status"], "Running");
        assert_eq!(v["compared_requests"], 2);
        assert_eq!(v["compared_rows"], 4);
        assert_eq!(v["agreement_rate"], 0.75);
        assert_eq!(v["copies_dropped"], 1);
        assert_eq!(v["requests_copied"], 3);
        assert_eq!(v["shadow"]["errors"], 1);
        assert_eq!(v["production"]["errors"], 0);
        assert_eq!(v["pending"], 0);
        assert_eq!(v["label_pairs"][0]["rows"], 2);
        // a queued copy without an answer waits, then counts as lost
        let mut recs = recs;
        recs.push(rec(
            &c,
            "AllTraffic",
            "production",
            "e5",
            Some(("application/json", a)),
            200,
            Some("queued"),
        ));
        let v = compare(&c, "binary", &recs, 60_000, 2_000);
        assert_eq!(
            (v["pending"].as_u64(), v["unanswered"].as_u64()),
            (Some(1), Some(0))
        );
        let v = compare(&c, "binary", &recs, 60_000, 2_000 + LOST_AFTER_MS);
        assert_eq!(
            (v["pending"].as_u64(), v["unanswered"].as_u64()),
            (Some(0), Some(1))
        );
    }

    #[test]
    fn regression_differences_are_binned_around_zero() {
        let c = cfg();
        let a = r#"{"predictions":[{"predicted_label":10.0},{"predicted_label":20.0}]}"#;
        let b = "{\"predicted_label\":12.0}\n{\"predicted_label\":19.0}\n";
        let recs = vec![
            rec(
                &c,
                "AllTraffic",
                "production",
                "e1",
                Some(("application/json", a)),
                200,
                Some("queued"),
            ),
            rec(
                &c,
                "shadow",
                "shadow",
                "e1",
                Some(("application/jsonlines", b)),
                200,
                None,
            ),
        ];
        let v = compare(&c, "regression", &recs, 60_000, 999_999);
        assert_eq!(v["status"], "Ended");
        let d = &v["differences"];
        assert_eq!(d["summary"]["count"], 2);
        assert_eq!(d["summary"]["mean"], 0.5);
        assert_eq!(d["abs"]["max"], 2.0);
        let h = d["histogram"].as_array().unwrap();
        assert_eq!(h.len(), 24);
        assert_eq!(h[0]["lo"], -2.0);
        assert_eq!(
            h.iter().map(|b| b["count"].as_u64().unwrap()).sum::<u64>(),
            2
        );
    }
}
