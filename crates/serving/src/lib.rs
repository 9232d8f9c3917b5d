//! # serving — models in production
//!
//! Brief overview: real-time endpoints over Atelier pipelines, SageMaker
//! style. An endpoint holds one or more production variants (a model and a
//! weight); `POST /endpoints/<name>/invocations` draws a variant by weight
//! (or takes `X-Atelier-Target-Variant`), predicts every row of a CSV,
//! JSON or JSON Lines payload ([`codec`]) and answers in the format asked
//! by `Accept`. Configurations live in the metadata store's `endpoints`
//! table (JSON of [`EndpointConfig`]) and come back up at start-up
//! ([`Serving::restore`]); the live form ([`endpoint::Live`]) is swapped
//! whole when a configuration changes, so no request in flight is dropped.
//!
//! - **Overload**: at most `max_concurrency` invocations in flight per
//!   endpoint; more get `503` with `Retry-After: 1`, never a queue.
//! - **Bad input**: every client mistake is a 4xx naming the problem (line
//!   or record, column, expected type); payloads above
//!   `max_payload_bytes` (default 6 MiB) get `413`.
//! - **Metrics**: [`metrics`] — counters and latency histograms per
//!   endpoint and variant, `GET /metrics` in Prometheus text format, and a
//!   5-second history for the Studio's charts.
//! - **Shadow tests**: [`shadow`] — a copy of a sampled share of one
//!   variant's requests goes to another model off the request path; its
//!   answers are captured and compared, never returned; promote swaps the
//!   model in like an update.
//! - **Batch transform**: [`batch::batch_transform`] predicts files or
//!   folders (CSV, Parquet) to `<file>.out` CSVs, row failures reported
//!   with their line numbers; [`job::BatchTransformRunner`] runs it on the
//!   server's job queue (kind `batch-transform`).
//!
//! ## Data capture layout (read by Model Monitor)
//!
//! Sampled invocations (`data_capture.sampling_percentage`, default 20 %)
//! are written under the artifact store as JSON Lines:
//!
//! ```text
//! capture/<endpoint>/<variant>/YYYY/MM/DD/HH/<epoch-ms>-<8 hex>.jsonl
//! ```
//!
//! partitioned by the UTC hour of the inference; one file per endpoint,
//! variant and hour about every second while traffic flows. Each line is a
//! SageMaker capture record:
//!
//! ```json
//! {"captureData": {
//!    "endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
//!                       "data": "39,State-gov,…", "encoding": "CSV"},
//!    "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
//!                       "data": "{\"predictions\":[…]}", "encoding": "JSON"}},
//!  "eventMetadata": {"eventId": "<UUIDv7: time-ordered, carries the capture ms>", "inferenceId": "<X-Atelier-Inference-Id>",
//!                    "inferenceTime": "2026-11-27T02:15:18.123Z"},
//!  "eventVersion": "0"}
//! ```
//!
//! `encoding` is `CSV` or `JSON` (data is the payload text as sent) or
//! `BASE64` (payload not UTF-8). `inferenceId` is present when the client
//! sent `X-Atelier-Inference-Id`. Only successful invocations are
//! captured. Capture never slows or fails an invocation: records go
//! through a bounded buffer to a writer task; when the buffer is full they
//! are dropped and counted (`atelier_endpoint_capture_dropped_total`). A
//! graceful stop (SIGTERM, Ctrl-C) writes what is queued
//! ([`Serving::flush_capture`]); up to a second of records may be lost
//! when the server is killed.
//! [`read_capture`] reads the records of a time range back.
//!
//! A shadow test ([`shadow`]) adds records of its own: the production
//! answer of every copied request (also when data capture would not have
//! sampled it) and the shadow's answer in the shadow's variant folder, both
//! with the same `eventId` and an `eventMetadata.shadowTest` block:
//!
//! ```json
//! "shadowTest": {"id": "<test id>", "role": "production" | "shadow", "latencyMs": 0.41,
//!                "status": 200, "error": "…", "copy": "queued" | "dropped", "monitored": false}
//! ```
//!
//! Failed answers of a pair are captured too (`status`, `error`, no
//! output). [`read_capture`] leaves out the shadow's records, failed ones,
//! and production ones data capture did not sample (`monitored: false`).

pub mod api;
pub mod batch;
pub mod capture;
pub mod codec;
pub mod endpoint;
pub mod error;
pub mod job;
pub mod metrics;
pub mod model;
pub mod shadow;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};

use artifacts::ArtifactStore;
use store::MetadataStore;

pub use batch::{BatchOptions, BatchProgress, BatchSummary, batch_transform};
pub use capture::{CaptureRecord, read_capture};
pub use codec::Format;
pub use endpoint::{CaptureConfig, EndpointConfig, EndpointRequest, ShadowConfig, VariantConfig};
pub use error::{Result, ServingError};
pub use model::{LoadedModel, PIPELINE_FILE, Resolved, resolve};
pub use shadow::ShadowRequest;

use endpoint::{Live, LiveShadow, LiveVariant};
use metrics::{EndpointMetrics, VariantMetrics};

/// One endpoint: the live configuration (swapped on update) and its
/// endpoint-wide counters.
pub struct Slot {
    pub live: RwLock<Arc<Live>>,
    pub metrics: Arc<EndpointMetrics>,
}

impl Slot {
    pub fn current(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

struct Inner {
    store: Arc<dyn MetadataStore>,
    artifacts: ArtifactStore,
    endpoints: RwLock<HashMap<String, Arc<Slot>>>,
    capture: capture::CaptureSender,
    /// Copies for shadow tests, to their worker.
    shadow: shadow::ShadowSender,
    /// Loaded pipelines by artifact path, shared between variants.
    models: Mutex<HashMap<String, Weak<LoadedModel>>>,
    variant_metrics: Mutex<HashMap<(String, String), Arc<VariantMetrics>>>,
    /// Stored endpoints that could not come up at start-up, with why.
    failed: Mutex<HashMap<String, String>>,
    /// Shadow test records by capture file (files never change once
    /// written): only a cache, so comparisons need not re-read every file.
    shadow_files: Mutex<HashMap<String, Arc<Vec<shadow::PairSide>>>>,
    /// The stored `updated_ms` of configurations that failed to load (at
    /// start-up or when following the store), not tried again.
    failed_tried: Mutex<HashMap<String, i64>>,
    /// Each stored endpoint's project, as last read from the store (an
    /// endpoint that failed to load has no live configuration to say it).
    homes: Mutex<HashMap<String, String>>,
    /// Serialises configuration changes.
    admin: tokio::sync::Mutex<()>,
    /// More Prometheus text for `/metrics` (e.g. Model Monitor's gauges).
    extra_metrics: RwLock<Vec<MetricsSource>>,
}

/// Seconds between looks at the store for other processes' changes.
pub const FOLLOW_SECONDS: u64 = 3;

/// A function that renders more Prometheus text for `/metrics`.
pub type MetricsSource = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// The endpoints of one server. Cheap to clone.
#[derive(Clone)]
pub struct Serving {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Serving {
    /// Start the capture writer and the metrics ticker on the current Tokio
    /// runtime.
    pub fn new(store: Arc<dyn MetadataStore>, artifacts: ArtifactStore) -> Serving {
        let capture = capture::start(artifacts.clone());
        let shadow = shadow::start(capture.clone());
        let s = Serving {
            inner: Arc::new(Inner {
                store,
                artifacts,
                endpoints: RwLock::new(HashMap::new()),
                capture,
                shadow,
                models: Mutex::new(HashMap::new()),
                variant_metrics: Mutex::new(HashMap::new()),
                failed: Mutex::new(HashMap::new()),
                failed_tried: Mutex::new(HashMap::new()),
                homes: Mutex::new(HashMap::new()),
                shadow_files: Mutex::new(HashMap::new()),
                admin: tokio::sync::Mutex::new(()),
                extra_metrics: RwLock::new(Vec::new()),
            }),
        };
        let weak = Arc::downgrade(&s.inner);
        tokio::spawn(async move {
            let mut t =
                tokio::time::interval(std::time::Duration::from_secs(metrics::TICK_SECONDS));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let now = store::now_ms();
                let all: Vec<Arc<VariantMetrics>> =
                    lock(&inner.variant_metrics).values().cloned().collect();
                for m in all {
                    m.tick(now);
                }
            }
        });
        s
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.inner.artifacts
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.inner.store
    }

    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.inner
            .endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn MetadataStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ServingError::Internal(format!("store task failed: {e}")))?
    }

    async fn model(&self, path: &str) -> Result<(String, Arc<LoadedModel>)> {
        if let Some(m) = lock(&self.inner.models).get(path).and_then(Weak::upgrade) {
            return Ok((path.to_string(), m));
        }
        let (real, m) = model::load(&self.inner.artifacts, path).await?;
        let mut cache = lock(&self.inner.models);
        cache.retain(|_, w| w.strong_count() > 0);
        cache.insert(real.clone(), Arc::downgrade(&m));
        Ok((real, m))
    }

    fn variant_metrics(&self, endpoint: &str, variant: &str) -> Arc<VariantMetrics> {
        lock(&self.inner.variant_metrics)
            .entry((endpoint.to_string(), variant.to_string()))
            .or_default()
            .clone()
    }

    /// Resolve and load every variant of `cfg` (filling in the resolved
    /// paths of variants that have none), plus the shadow test's model while it runs. A
    /// shadow that cannot load (its pipeline gone) is logged and left out:
    /// it never keeps production from coming up.
    async fn build_all(
        &self,
        cfg: EndpointConfig,
    ) -> Result<(EndpointConfig, Vec<LiveVariant>, Option<Arc<LiveShadow>>)> {
        let (mut cfg, live) = self.build_variants(cfg).await?;
        let mut out = None;
        let now = store::now_ms();
        let names: Vec<String> = cfg.variants.iter().map(|v| v.name.clone()).collect();
        if let Some(sh) = cfg.shadow.as_mut()
            && sh.running(now)
        {
            if !names.contains(&sh.production_variant) {
                sh.stopped_ms = Some(now);
                sh.outcome = Some(format!(
                    "ended: its production variant '{}' was removed",
                    sh.production_variant
                ));
            } else {
                match self.load_shadow(&cfg.workspace, sh).await {
                    Ok(model) => {
                        out = Some(Arc::new(LiveShadow {
                            model,
                            capture: Arc::from(capture::folder(&cfg.workspace, &cfg.name).as_str()),
                            name: Arc::from(sh.variant.as_str()),
                            production: Arc::from(sh.production_variant.as_str()),
                            id: Arc::from(sh.id.as_str()),
                            config: sh.clone(),
                            dropped: Default::default(),
                        }))
                    }
                    Err(e) => tracing::error!(
                        "endpoint '{}': the shadow test's model could not load, no copies are sent: {e}",
                        cfg.name
                    ),
                }
            }
        }
        Ok((cfg, live, out))
    }

    /// Resolve (when not yet) and load a shadow's model, as project
    /// `workspace` sees models.
    async fn load_shadow(
        &self,
        workspace: &str,
        sh: &mut ShadowConfig,
    ) -> Result<Arc<LoadedModel>> {
        let shadow_err = |e: ServingError| match e {
            ServingError::NotFound(m) | ServingError::BadRequest(m) => {
                ServingError::BadRequest(format!("shadow model '{}': {m}", sh.model))
            }
            other => other,
        };
        if sh.artifact_path.is_empty() {
            let uri = sh.model.clone();
            let ws = workspace.to_string();
            let r = self
                .db(move |s| crate::model::resolve_in(s, &ws, &uri))
                .await
                .map_err(shadow_err)?;
            sh.artifact_path = r.artifact_path;
            sh.registered_model = r.registered_model;
            sh.version = r.version;
        }
        let (real, m) = self.model(&sh.artifact_path).await.map_err(shadow_err)?;
        sh.artifact_path = real;
        Ok(m)
    }

    async fn build_variants(
        &self,
        mut cfg: EndpointConfig,
    ) -> Result<(EndpointConfig, Vec<LiveVariant>)> {
        let mut live = Vec::with_capacity(cfg.variants.len());
        for v in &mut cfg.variants {
            if v.artifact_path.is_empty() {
                // as the endpoint's project sees models (its own files only)
                let (uri, ws) = (v.model.clone(), cfg.workspace.clone());
                let r = self
                    .db(move |s| crate::model::resolve_in(s, &ws, &uri))
                    .await
                    .map_err(|e| match e {
                        ServingError::NotFound(m) => {
                            ServingError::BadRequest(format!("variant '{}': {m}", v.name))
                        }
                        ServingError::BadRequest(m) => {
                            ServingError::BadRequest(format!("variant '{}': {m}", v.name))
                        }
                        other => other,
                    })?;
                v.artifact_path = r.artifact_path;
                v.registered_model = r.registered_model;
                v.version = r.version;
            }
            let (real, m) = self.model(&v.artifact_path).await.map_err(|e| match e {
                ServingError::BadRequest(m) | ServingError::NotFound(m) => {
                    ServingError::BadRequest(format!("variant '{}': {m}", v.name))
                }
                other => other,
            })?;
            v.artifact_path = real;
            live.push(LiveVariant {
                name: Arc::from(v.name.as_str()),
                model: m,
                weight: v.weight,
                metrics: self.variant_metrics(&cfg.name, &v.name),
            });
        }
        Ok((cfg, live))
    }

    fn install(&self, live: Live) {
        let name = live.config.name.clone();
        let live = Arc::new(live);
        let mut map = self
            .inner
            .endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match map.get(&name) {
            Some(slot) => {
                *slot.live.write().unwrap_or_else(|p| p.into_inner()) = live;
            }
            None => {
                map.insert(
                    name,
                    Arc::new(Slot {
                        live: RwLock::new(live),
                        metrics: Arc::new(EndpointMetrics::default()),
                    }),
                );
            }
        }
    }

    /// Create an endpoint in project `workspace` (`AlreadyExists` if the
    /// name is taken: endpoint names are unique on the server, as the
    /// invocation URL names no project).
    pub async fn create(
        &self,
        workspace: &str,
        name: &str,
        req: EndpointRequest,
    ) -> Result<Arc<Live>> {
        endpoint::check_name("endpoint", name)?;
        let _g = self.inner.admin.lock().await;
        match self.workspace_of(name) {
            Some(w) if w == workspace => {
                return Err(ServingError::AlreadyExists(format!(
                    "an endpoint named '{name}' exists already; update it (PUT) or pick another name"
                )));
            }
            Some(_) => {
                return Err(ServingError::AlreadyExists(format!(
                    "the endpoint name '{name}' is taken by another project: endpoint names are unique on this server, pick another"
                )));
            }
            None => {}
        }
        let mut cfg = EndpointConfig::from_request(name, req, None)?;
        cfg.workspace = workspace.to_string();
        self.apply(cfg, None).await
    }

    /// The project endpoint `name` belongs to, whether it is in service or
    /// failed to load; `None` when there is no such endpoint.
    pub fn workspace_of(&self, name: &str) -> Option<String> {
        if let Some(slot) = self.slot(name) {
            return Some(slot.current().config.workspace.clone());
        }
        lock(&self.inner.homes).get(name).cloned()
    }

    /// Replace an endpoint's configuration; in-flight requests finish on
    /// the old one.
    pub async fn update(&self, name: &str, req: EndpointRequest) -> Result<Arc<Live>> {
        let _g = self.inner.admin.lock().await;
        let Some(slot) = self.slot(name) else {
            if self.failure(name).is_some() {
                // not in service: a full new definition brings it back, in its project
                let mut cfg = EndpointConfig::from_request(name, req, None)?;
                if let Some(w) = lock(&self.inner.homes).get(name) {
                    cfg.workspace = w.clone();
                }
                return self.apply(cfg, None).await;
            }
            return Err(ServingError::NotFound(format!(
                "no endpoint named '{name}'"
            )));
        };
        let old = slot.current();
        let cfg = EndpointConfig::from_request(name, req, Some(&old.config))?;
        self.apply(cfg, Some(old.created_ms)).await
    }

    async fn apply(&self, cfg: EndpointConfig, created: Option<i64>) -> Result<Arc<Live>> {
        // Model cards (issue 15, crates/modelcards): a registered model may require an
        // Approved card before any of its versions is deployed; the rule and the cards
        // live in the store, so every server process applies the same one.
        let served: Vec<(String, Option<String>, Option<i64>)> = cfg
            .variants
            .iter()
            .map(|v| (v.model.clone(), v.registered_model.clone(), v.version))
            .collect();
        let ws = cfg.workspace.clone();
        self.db(move |s| {
            for (uri, model, version) in served {
                // nor is a run of another project
                if let Some(rest) = uri.strip_prefix("runs:/") {
                    let run = rest
                        .trim_start_matches('/')
                        .split('/')
                        .next()
                        .unwrap_or(rest);
                    if s.run_workspace(run).is_ok_and(|home| home != ws) {
                        return Err(ServingError::NotFound(format!(
                            "Run with id={run} not found"
                        )));
                    }
                }
                let (model, version) = match (model, version) {
                    (Some(m), Some(v)) => (m, v),
                    // an unresolvable URI is reported by the build below
                    _ => match resolve(s, &uri) {
                        Ok(Resolved {
                            registered_model: Some(m),
                            version: Some(v),
                            ..
                        }) => (m, v),
                        _ => continue,
                    },
                };
                // a registered model of another project is not there for this one
                if s.registered_model_workspace(&model)
                    .is_ok_and(|home| home != ws)
                {
                    return Err(ServingError::NotFound(format!(
                        "Registered Model with name={model} not found"
                    )));
                }
                if let Some(why) = s.deploy_refusal(&model, version)? {
                    return Err(ServingError::BadRequest(why));
                }
            }
            Ok(())
        })
        .await?;
        self.apply_unchecked(cfg, created).await
    }

    /// [`apply`](Self::apply) without the deploy rule: for changes that
    /// serve no other model (a shadow test started or stopped).
    async fn apply_unchecked(
        &self,
        cfg: EndpointConfig,
        created: Option<i64>,
    ) -> Result<Arc<Live>> {
        let (cfg, variants, shadow) = self.build_all(cfg).await?;
        lock(&self.inner.failed).remove(&cfg.name);
        let json = serde_json::to_string(&cfg)
            .map_err(|e| ServingError::Internal(format!("encoding the configuration: {e}")))?;
        let name = cfg.name.clone();
        let ws = cfg.workspace.clone();
        let row = self
            .db(move |s| s.put_endpoint(&ws, &name, &json).map_err(Into::into))
            .await?;
        lock(&self.inner.homes).insert(row.name.clone(), row.workspace.clone());
        let mut live = Live::new(
            cfg,
            variants,
            created.unwrap_or(row.created_ms),
            row.updated_ms,
        );
        live.shadow = shadow;
        let name = live.config.name.clone();
        self.install(live);
        self.slot(&name)
            .map(|s| s.current())
            .ok_or_else(|| ServingError::Internal("endpoint vanished".into()))
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let _g = self.inner.admin.lock().await;
        if self.slot(name).is_none() && self.failure(name).is_none() {
            return Err(ServingError::NotFound(format!(
                "no endpoint named '{name}'"
            )));
        }
        let n = name.to_string();
        self.db(move |s| {
            s.delete_endpoint(&n)?;
            // its invocation keys go with it: the name may be taken again, by another project
            for t in s.list_tokens()? {
                if t.endpoint.as_deref() == Some(n.as_str()) {
                    s.revoke_token(&t.name)?;
                }
            }
            Ok(())
        })
        .await?;
        self.inner
            .endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        lock(&self.inner.variant_metrics).retain(|(e, _), _| e != name);
        lock(&self.inner.failed).remove(name);
        lock(&self.inner.homes).remove(name);
        Ok(())
    }

    /// Why a stored endpoint is not in service (it failed to come up at
    /// start-up, e.g. its pipeline was deleted); fix it by deploying again.
    pub fn failure(&self, name: &str) -> Option<String> {
        lock(&self.inner.failed).get(name).cloned()
    }

    /// Stored endpoints that are not in service, with why, by name.
    pub fn failures(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = lock(&self.inner.failed)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort();
        v
    }

    /// Remember each stored endpoint's project (those that fail to load too).
    fn note_homes(&self, rows: &[store::Endpoint]) {
        *lock(&self.inner.homes) = rows
            .iter()
            .map(|r| (r.name.clone(), r.workspace.clone()))
            .collect();
    }

    /// Bring up every stored endpoint (at start-up). An endpoint that
    /// cannot load is logged and skipped; returns how many came up.
    pub async fn restore(&self) -> Result<usize> {
        let rows = self.db(|s| s.list_endpoints().map_err(Into::into)).await?;
        self.note_homes(&rows);
        let mut up = 0;
        for row in rows {
            let mut cfg: EndpointConfig = match serde_json::from_str(&row.config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("endpoint '{}': unreadable configuration: {e}", row.name);
                    lock(&self.inner.failed_tried).insert(row.name.clone(), row.updated_ms);
                    continue;
                }
            };
            cfg.workspace = row.workspace.clone();
            match self.build_all(cfg).await {
                Ok((cfg, variants, shadow)) => {
                    let mut live = Live::new(cfg, variants, row.created_ms, row.updated_ms);
                    live.shadow = shadow;
                    self.install(live);
                    up += 1;
                }
                Err(e) => {
                    tracing::error!("endpoint '{}' could not start: {e}", row.name);
                    lock(&self.inner.failed).insert(row.name.clone(), e.to_string());
                    lock(&self.inner.failed_tried).insert(row.name.clone(), row.updated_ms);
                }
            }
        }
        self.follow_store(std::time::Duration::from_secs(FOLLOW_SECONDS));
        Ok(up)
    }

    /// Follow configuration changes other server processes on the same
    /// database made (an endpoint created, updated, deleted; a shadow test
    /// started, promoted or stopped): every `every`, endpoints whose stored
    /// `updated_ms` differs from the live one are rebuilt and swapped in,
    /// like a local update. Started by [`restore`](Self::restore).
    pub fn follow_store(&self, every: std::time::Duration) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t.tick().await;
            loop {
                t.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let s = Serving { inner };
                if let Err(e) = s.sync_once().await {
                    tracing::warn!("endpoints: could not follow the store: {e}");
                }
            }
        });
    }

    /// One pass of [`follow_store`](Self::follow_store).
    pub async fn sync_once(&self) -> Result<()> {
        let _g = self.inner.admin.lock().await;
        let rows = self.db(|s| s.list_endpoints().map_err(Into::into)).await?;
        self.note_homes(&rows);
        let stored: std::collections::HashSet<String> =
            rows.iter().map(|r| r.name.clone()).collect();
        for name in self.names() {
            if !stored.contains(&name) {
                self.inner
                    .endpoints
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&name);
                lock(&self.inner.variant_metrics).retain(|(e, _), _| *e != name);
            }
        }
        lock(&self.inner.failed).retain(|n, _| stored.contains(n));
        for row in rows {
            let current = self.slot(&row.name).map(|s| s.current().updated_ms);
            if current == Some(row.updated_ms) {
                continue;
            }
            // a configuration that failed to load is tried again only when it changes
            if lock(&self.inner.failed_tried).get(&row.name) == Some(&row.updated_ms) {
                continue;
            }
            let mut cfg: EndpointConfig = match serde_json::from_str(&row.config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("endpoint '{}': unreadable configuration: {e}", row.name);
                    continue;
                }
            };
            cfg.workspace = row.workspace.clone();
            match self.build_all(cfg).await {
                Ok((cfg, variants, shadow)) => {
                    let mut live = Live::new(cfg, variants, row.created_ms, row.updated_ms);
                    live.shadow = shadow;
                    self.install(live);
                    lock(&self.inner.failed).remove(&row.name);
                }
                Err(e) => {
                    tracing::error!(
                        "endpoint '{}' changed in the store but could not load: {e}",
                        row.name
                    );
                    if current.is_none() {
                        lock(&self.inner.failed).insert(row.name.clone(), e.to_string());
                    }
                    lock(&self.inner.failed_tried).insert(row.name.clone(), row.updated_ms);
                }
            }
        }
        Ok(())
    }

    /// Prometheus text for the endpoints of project `workspace` (and what
    /// [`add_metrics`](Self::add_metrics) sources say of it).
    pub fn prometheus(&self, workspace: &str) -> String {
        use std::fmt::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = String::from(metrics::HELP);
        for name in self.names() {
            let Some(slot) = self.slot(&name) else {
                continue;
            };
            let live = slot.current();
            if live.config.workspace != workspace {
                continue;
            }
            for v in &live.variants {
                v.metrics.expose(&mut out, &name, &v.name);
            }
            let m = &slot.metrics;
            let l = format!("endpoint=\"{name}\"");
            let _ = writeln!(
                out,
                "atelier_endpoint_overloaded_total{{{l}}} {}",
                m.overloaded.load(Relaxed)
            );
            let _ = writeln!(
                out,
                "atelier_endpoint_rejected_total{{{l}}} {}",
                m.rejected.load(Relaxed)
            );
            let _ = writeln!(
                out,
                "atelier_endpoint_capture_records_total{{{l}}} {}",
                m.capture_written.load(Relaxed)
            );
            let _ = writeln!(
                out,
                "atelier_endpoint_capture_dropped_total{{{l}}} {}",
                m.capture_dropped.load(Relaxed)
            );
            if let Some(sh) = &live.shadow {
                let _ = writeln!(
                    out,
                    "atelier_endpoint_shadow_dropped_total{{{l},variant=\"{}\"}} {}",
                    sh.name,
                    sh.dropped.load(Relaxed)
                );
            }
        }
        let extra = self
            .inner
            .extra_metrics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for f in extra {
            out.push_str(&f(workspace));
        }
        out
    }

    /// Append another source's text to `/metrics`.
    pub fn add_metrics(&self, f: MetricsSource) {
        self.inner
            .extra_metrics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(f);
    }

    /// Write every queued capture record now (call at shutdown, after the
    /// server stopped taking requests).
    pub async fn flush_capture(&self) {
        self.inner.capture.flush().await;
    }

    pub(crate) fn capture(&self) -> &capture::CaptureSender {
        &self.inner.capture
    }

    pub(crate) fn shadow_queue(&self) -> &shadow::ShadowSender {
        &self.inner.shadow
    }
}
