//! Endpoint configuration (the JSON kept in the store's `endpoints` table)
//! and the live form requests are served from.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error::{Result, ServingError};
use crate::metrics::VariantMetrics;
use crate::model::LoadedModel;

pub const DEFAULT_SAMPLING_PERCENTAGE: f64 = 20.0;
pub const DEFAULT_MAX_CONCURRENCY: usize = 128;
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
pub const MAX_VARIANTS: usize = 10;

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn default_sampling() -> f64 {
    DEFAULT_SAMPLING_PERCENTAGE
}
fn default_concurrency() -> usize {
    DEFAULT_MAX_CONCURRENCY
}
fn default_payload() -> usize {
    DEFAULT_MAX_PAYLOAD_BYTES
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Share of invocations captured, 0–100.
    #[serde(default = "default_sampling")]
    pub sampling_percentage: f64,
    #[serde(default = "yes")]
    pub capture_input: bool,
    #[serde(default = "yes")]
    pub capture_output: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            enabled: true,
            sampling_percentage: DEFAULT_SAMPLING_PERCENTAGE,
            capture_input: true,
            capture_output: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantConfig {
    pub name: String,
    /// The model as the user named it (`models:/churn/3`, `models:/churn@prod`,
    /// `runs:/<id>/model`, `mlflow-artifacts:/…`).
    pub model: String,
    #[serde(default = "one")]
    pub weight: f64,
    /// Resolved at deploy time: the pipeline file served.
    #[serde(default)]
    pub artifact_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointConfig {
    pub name: String,
    pub variants: Vec<VariantConfig>,
    #[serde(default)]
    pub data_capture: CaptureConfig,
    /// Invocations in flight at most; more get 503 with Retry-After.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    #[serde(default = "default_payload")]
    pub max_payload_bytes: usize,
    /// The current or last shadow test (kept after it ends, for its
    /// comparison); see [`crate::shadow`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowConfig>,
    /// The project (workspace) it belongs to: kept in the store's column,
    /// never read from a request body or the stored JSON.
    #[serde(skip, default = "default_workspace")]
    pub workspace: String,
}

fn default_workspace() -> String {
    store::DEFAULT_WORKSPACE.to_string()
}

/// A shadow test: a copy of a sampled share of the requests one production
/// variant answers goes to another model, whose answers are captured and
/// never returned. Stored with the endpoint; whether it is running is
/// decided when it is read (`ends_ms`), so no timer is needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowConfig {
    /// Tags the capture records of this test (a new id per start).
    pub id: String,
    /// The shadow's name: its capture folder
    /// (`capture/<endpoint>/<variant>/…`).
    pub variant: String,
    /// The production variant whose requests are copied.
    pub production_variant: String,
    /// The model as the user named it.
    pub model: String,
    #[serde(default)]
    pub artifact_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Share of the production variant's requests copied, 0–100.
    pub sampling_percentage: f64,
    pub started_ms: i64,
    /// The test ends by itself at this time.
    pub ends_ms: i64,
    /// Set when it was stopped or promoted before `ends_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_ms: Option<i64>,
    /// `stopped`, `promoted` or why it ended early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

impl ShadowConfig {
    /// Whether copies are taken at `now_ms`.
    pub fn running(&self, now_ms: i64) -> bool {
        self.stopped_ms.is_none() && now_ms < self.ends_ms
    }

    /// When the test stopped sampling (or will).
    pub fn end_ms(&self) -> i64 {
        self.stopped_ms.unwrap_or(self.ends_ms).min(self.ends_ms)
    }

    /// `Running`, `Ended` (its duration passed), `Stopped` or `Promoted`.
    pub fn status(&self, now_ms: i64) -> &'static str {
        match self.outcome.as_deref() {
            _ if self.running(now_ms) => "Running",
            Some("promoted") => "Promoted",
            Some(_) if self.stopped_ms.is_some_and(|s| s < self.ends_ms) => "Stopped",
            _ => "Ended",
        }
    }
}

/// What a client sends to create or update an endpoint: a full
/// configuration, or `model` alone for one variant named `AllTraffic`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub variants: Option<Vec<VariantRequest>>,
    #[serde(default)]
    pub data_capture: Option<CaptureConfig>,
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    #[serde(default)]
    pub max_payload_bytes: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    #[serde(default)]
    pub name: Option<String>,
    pub model: String,
    #[serde(default = "one")]
    pub weight: f64,
}

/// SageMaker's naming rule, plus `_` and `.`: 1–63 letters, digits, `-`,
/// `_`, `.`, starting with a letter or digit.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ServingError::BadRequest(format!(
            "invalid {what} name '{}': use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit",
            name.escape_debug()
        )))
    }
}

impl EndpointConfig {
    pub fn validate(&self) -> Result<()> {
        check_name("endpoint", &self.name)?;
        if self.variants.is_empty() || self.variants.len() > MAX_VARIANTS {
            return Err(ServingError::BadRequest(format!(
                "an endpoint has 1 to {MAX_VARIANTS} variants, not {}",
                self.variants.len()
            )));
        }
        for (i, v) in self.variants.iter().enumerate() {
            check_name("variant", &v.name)?;
            if self.variants[..i].iter().any(|o| o.name == v.name) {
                return Err(ServingError::BadRequest(format!(
                    "two variants are named '{}'; give each a different name",
                    v.name
                )));
            }
            if !(v.weight.is_finite() && v.weight >= 0.0) {
                return Err(ServingError::BadRequest(format!(
                    "variant '{}': the weight must be a number ≥ 0",
                    v.name
                )));
            }
            if v.model.trim().is_empty() {
                return Err(ServingError::BadRequest(format!(
                    "variant '{}': name a model (models:/<name>/<version>, models:/<name>@<alias>, runs:/… or mlflow-artifacts:/…)",
                    v.name
                )));
            }
        }
        if self.variants.iter().map(|v| v.weight).sum::<f64>() <= 0.0 {
            return Err(ServingError::BadRequest(
                "at least one variant needs a weight above 0".into(),
            ));
        }
        let c = &self.data_capture;
        if !(0.0..=100.0).contains(&c.sampling_percentage) {
            return Err(ServingError::BadRequest(format!(
                "data_capture.sampling_percentage must be between 0 and 100, not {}",
                c.sampling_percentage
            )));
        }
        if !(1..=100_000).contains(&self.max_concurrency) {
            return Err(ServingError::BadRequest(
                "max_concurrency must be between 1 and 100000".into(),
            ));
        }
        if !(1..=(1 << 30)).contains(&self.max_payload_bytes) {
            return Err(ServingError::BadRequest(
                "max_payload_bytes must be between 1 and 1073741824".into(),
            ));
        }
        Ok(())
    }

    /// A configuration from a request; `existing` supplies what an update
    /// leaves out, and variants whose model did not change keep the
    /// version they serve.
    pub fn from_request(
        name: &str,
        req: EndpointRequest,
        existing: Option<&EndpointConfig>,
    ) -> Result<EndpointConfig> {
        if let Some(n) = &req.name
            && n != name
        {
            return Err(ServingError::BadRequest(format!(
                "the body names endpoint '{n}' but the request is for '{name}'"
            )));
        }
        let variants: Vec<VariantRequest> = match (req.variants, req.model) {
            (Some(_), Some(_)) => {
                return Err(ServingError::BadRequest(
                    "give either 'model' (one variant) or 'variants', not both".into(),
                ));
            }
            (Some(v), None) => v,
            (None, Some(m)) => vec![VariantRequest {
                name: None,
                model: m,
                weight: 1.0,
            }],
            (None, None) => match existing {
                Some(e) => e
                    .variants
                    .iter()
                    .map(|v| VariantRequest {
                        name: Some(v.name.clone()),
                        model: v.model.clone(),
                        weight: v.weight,
                    })
                    .collect(),
                None => {
                    return Err(ServingError::BadRequest(
                        "name the model to serve: 'model' or 'variants'".into(),
                    ));
                }
            },
        };
        let n = variants.len();
        let variants = variants
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let vname = v.name.unwrap_or_else(|| {
                    if n == 1 {
                        "AllTraffic".into()
                    } else {
                        format!("variant-{}", i + 1)
                    }
                });
                let kept = existing.and_then(|e| {
                    e.variants
                        .iter()
                        .find(|o| o.name == vname && o.model == v.model)
                });
                VariantConfig {
                    name: vname,
                    model: v.model,
                    weight: v.weight,
                    artifact_path: kept.map(|k| k.artifact_path.clone()).unwrap_or_default(),
                    registered_model: kept.and_then(|k| k.registered_model.clone()),
                    version: kept.and_then(|k| k.version),
                }
            })
            .collect();
        let cfg = EndpointConfig {
            name: name.to_string(),
            variants,
            data_capture: req
                .data_capture
                .or_else(|| existing.map(|e| e.data_capture.clone()))
                .unwrap_or_default(),
            max_concurrency: req
                .max_concurrency
                .or(existing.map(|e| e.max_concurrency))
                .unwrap_or(DEFAULT_MAX_CONCURRENCY),
            max_payload_bytes: req
                .max_payload_bytes
                .or(existing.map(|e| e.max_payload_bytes))
                .unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES),
            shadow: existing.and_then(|e| e.shadow.clone()),
            workspace: existing.map_or_else(default_workspace, |e| e.workspace.clone()),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// One variant ready to answer.
pub struct LiveVariant {
    pub name: Arc<str>,
    pub model: Arc<LoadedModel>,
    pub weight: f64,
    pub metrics: Arc<VariantMetrics>,
}

/// A shadow model ready to answer copies.
pub struct LiveShadow {
    pub config: ShadowConfig,
    pub model: Arc<LoadedModel>,
    /// The endpoint's capture folder ([`crate::capture::folder`]).
    pub capture: Arc<str>,
    pub name: Arc<str>,
    pub production: Arc<str>,
    pub id: Arc<str>,
    /// Copies dropped because the shadow queue was full (this process).
    pub dropped: std::sync::atomic::AtomicU64,
}

/// An endpoint as requests see it; replaced whole (an `Arc` swap) when its
/// configuration changes, so requests in flight finish on the old one.
pub struct Live {
    pub config: EndpointConfig,
    pub variants: Vec<LiveVariant>,
    /// The shadow test's model, while its configuration says it may run.
    pub shadow: Option<Arc<LiveShadow>>,
    pub limiter: Arc<Semaphore>,
    /// Its capture folder ([`crate::capture::folder`]), made once.
    pub capture: Arc<str>,
    pub created_ms: i64,
    pub updated_ms: i64,
    total_weight: f64,
}

impl Live {
    pub fn new(
        config: EndpointConfig,
        variants: Vec<LiveVariant>,
        created_ms: i64,
        updated_ms: i64,
    ) -> Live {
        let total_weight = variants.iter().map(|v| v.weight).sum();
        Live {
            limiter: Arc::new(Semaphore::new(config.max_concurrency)),
            capture: Arc::from(crate::capture::folder(&config.workspace, &config.name).as_str()),
            config,
            variants,
            shadow: None,
            created_ms,
            updated_ms,
            total_weight,
        }
    }

    /// A variant drawn by weight (`u` uniform in [0, 1)).
    pub fn pick(&self, u: f64) -> &LiveVariant {
        let mut x = u * self.total_weight;
        for v in &self.variants {
            if v.weight > 0.0 {
                if x < v.weight {
                    return v;
                }
                x -= v.weight;
            }
        }
        // rounding: the last variant with weight
        self.variants
            .iter()
            .rev()
            .find(|v| v.weight > 0.0)
            .unwrap_or(&self.variants[0])
    }

    pub fn variant(&self, name: &str) -> Option<&LiveVariant> {
        self.variants.iter().find(|v| &*v.name == name)
    }
}
