//! MLflow's model-registry webhooks (MLflow 3.3+): `/mlflow/webhooks` CRUD,
//! `POST /mlflow/webhooks/{id}/test`, and the delivery of registry events.
//!
//! **Events.** The store queues one delivery per active subscribed webhook
//! in the same transaction as the registry change (`registered_model.created`,
//! `model_version.created`, `model_version_tag.set|deleted`,
//! `model_version_alias.created|deleted`, and the `prompt…` events when the
//! registered model is a prompt, as MLflow's handlers decide).
//!
//! **Delivery** ([`spawn_delivery`], a loop in every server process on the
//! database) claims due deliveries with a lease, makes one attempt per claim
//! and records it, as MLflow's `webhooks/delivery.py` sends them: a JSON
//! POST of `{"entity", "action", "timestamp", "data"}` (encoded as Python's
//! `json.dumps`), headers `X-MLflow-Delivery-Id` (the same for every attempt
//! of a delivery), `X-MLflow-Timestamp` (unix seconds of the attempt) and,
//! with a secret, `X-MLflow-Signature: v1,<base64 HMAC-SHA256 of
//! "{delivery_id}.{timestamp}.{body}">`. Retries follow MLflow's urllib3
//! policy: 429/500/502/503/504 and connection failures are retried up to
//! [`RETRIES`] times, after 0 s, 2 s, 4 s (+ up to 1 s of jitter, at most
//! 60 s; a `Retry-After` is honoured), any other answer ends the delivery.
//! The wait between attempts holds no thread.
//!
//! **URLs** are checked as MLflow checks them (not blank, parseable, an
//! allowed scheme, a host) and then against the server's webhook policy
//! (`--webhook-allowed-hosts`): no loopback, private or metadata targets
//! unless allowed, checked again at every connection. `http` and `https`
//! (rustls, certificates checked against the platform's trust store, which
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` extend) are accepted, as MLflow does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use store::{
    DeliveryOutcome, MetadataStore, MlflowWebhook, MlflowWebhookDelivery, MlflowWebhookStatus,
    MlflowWebhookUpdate, NewMlflowWebhook, RegistryEvent, Tag, WebhookAttempt,
};

use super::{JsonResult, empty};
use crate::AppState;
use crate::error::ApiError;
use crate::req::Req;
use crate::workspace::Ws;

/// Retries after the first attempt (MLflow's `MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES`).
pub const RETRIES: usize = 3;
/// How long a claimed delivery is reserved for its claimer.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often the delivery loop looks for due deliveries.
pub const POLL: Duration = Duration::from_millis(250);
/// Attempts under way at once in one process.
pub const MAX_IN_FLIGHT: usize = 4;
/// Longest wait between attempts (urllib3's `backoff_max` in MLflow).
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Most of a receiver's answer kept for a test result.
const TEST_BODY_LIMIT: u64 = 64 * 1024;

/// The schemes a webhook URL may use here.
const SCHEMES: &str = "http, https";

/// Every event MLflow knows, `entity.action`, in MLflow's order.
const EVENTS: [&str; 15] = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
    "prompt.created",
    "prompt_version.created",
    "prompt_tag.set",
    "prompt_tag.deleted",
    "prompt_version_tag.set",
    "prompt_version_tag.deleted",
    "prompt_alias.created",
    "prompt_alias.deleted",
    "budget_policy.exceeded",
];

/// Proto enum names and numbers (`mlflow/protos/webhooks.proto`).
const ENTITIES: [(&str, i64); 10] = [
    ("REGISTERED_MODEL", 1),
    ("MODEL_VERSION", 2),
    ("MODEL_VERSION_TAG", 3),
    ("MODEL_VERSION_ALIAS", 4),
    ("PROMPT", 5),
    ("PROMPT_VERSION", 6),
    ("PROMPT_TAG", 7),
    ("PROMPT_VERSION_TAG", 8),
    ("PROMPT_ALIAS", 9),
    ("BUDGET_POLICY", 10),
];
const ACTIONS: [(&str, i64); 5] = [
    ("CREATED", 1),
    ("UPDATED", 2),
    ("DELETED", 3),
    ("SET", 4),
    ("EXCEEDED", 5),
];

// ---------------------------------------------------------------- sender

/// Checks a webhook URL against the server's policy (the error says why and how to allow it).
pub type UrlCheck = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// How this process reaches webhook receivers: an HTTP client that connects
/// only where the server's policy allows, and that policy's URL check.
#[derive(Clone)]
pub struct Sender {
    agent: ureq::Agent,
    check: UrlCheck,
}

impl Sender {
    pub fn new(agent: ureq::Agent, check: UrlCheck) -> Sender {
        Sender { agent, check }
    }
}

/// What one POST came back with.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

impl Sender {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Result<Answer, String> {
        let mut req = self.agent.post(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let mut resp = req.send(body.as_bytes()).map_err(|e| match e {
            ureq::Error::Other(inner) => inner.to_string(),
            e => e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp
            .body_mut()
            .with_config()
            .limit(TEST_BODY_LIMIT)
            .read_to_vec()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

// ---------------------------------------------------------------- payloads

/// JSON written as Python's `json.dumps` writes it (`", "` and `": "`,
/// non-ASCII as `\uXXXX`), keys in the order MLflow's payload dicts have them.
enum Py {
    Null,
    Str(String),
    /// Already encoded (numbers of the example budget payload).
    Raw(&'static str),
    Obj(Vec<(&'static str, Py)>),
    Map(Vec<(String, String)>),
}

fn py_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

impl Py {
    fn write(&self, out: &mut String) {
        match self {
            Py::Null => out.push_str("null"),
            Py::Str(s) => py_str(s, out),
            Py::Raw(r) => out.push_str(r),
            Py::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    py_str(k, out);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
            Py::Map(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    py_str(k, out);
                    out.push_str(": ");
                    py_str(v, out);
                }
                out.push('}');
            }
        }
    }
}

fn s(v: &str) -> Py {
    Py::Str(v.to_string())
}

/// `value or None`.
fn or_none(v: &str) -> Py {
    if v.is_empty() { Py::Null } else { s(v) }
}

/// `{t.key: t.value for t in tags}`: a repeated key keeps its first place and its last value.
fn tag_map(tags: &[Tag]) -> Py {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in tags {
        match out.iter_mut().find(|(k, _)| *k == t.key) {
            Some(p) => p.1 = t.value.clone(),
            None => out.push((t.key.clone(), t.value.clone())),
        }
    }
    Py::Map(out)
}

/// The `data` of an event's payload, as MLflow's handlers build it.
fn data(e: &RegistryEvent) -> Py {
    use RegistryEvent as E;
    match e {
        E::ModelCreated {
            name,
            tags,
            description,
            ..
        } => Py::Obj(vec![
            ("name", s(name)),
            ("tags", tag_map(tags)),
            ("description", s(description)),
        ]),
        E::VersionCreated {
            prompt: false,
            name,
            version,
            source,
            run_id,
            tags,
            description,
        } => Py::Obj(vec![
            ("name", s(name)),
            ("version", s(version)),
            ("source", s(source)),
            ("run_id", or_none(run_id)),
            ("tags", tag_map(tags)),
            ("description", or_none(description)),
        ]),
        E::VersionCreated {
            prompt: true,
            name,
            version,
            tags,
            description,
            ..
        } => {
            // the template travels as a tag and is taken out of the tags
            let template = tags
                .iter()
                .rev()
                .find(|t| t.key == "mlflow.prompt.text")
                .map_or(Py::Null, |t| s(&t.value));
            let rest: Vec<Tag> = tags
                .iter()
                .filter(|t| t.key != "mlflow.prompt.text")
                .cloned()
                .collect();
            Py::Obj(vec![
                ("name", s(name)),
                ("version", s(version)),
                ("template", template),
                ("tags", tag_map(&rest)),
                ("description", or_none(description)),
            ])
        }
        E::PromptTagSet { name, key, value } => Py::Obj(vec![
            ("name", s(name)),
            ("key", s(key)),
            ("value", s(value)),
        ]),
        E::PromptTagDeleted { name, key } => Py::Obj(vec![("name", s(name)), ("key", s(key))]),
        E::VersionTagSet {
            name,
            version,
            key,
            value,
            ..
        } => Py::Obj(vec![
            ("name", s(name)),
            ("version", s(version)),
            ("key", s(key)),
            ("value", s(value)),
        ]),
        E::VersionTagDeleted {
            name, version, key, ..
        } => Py::Obj(vec![
            ("name", s(name)),
            ("version", s(version)),
            ("key", s(key)),
        ]),
        E::AliasCreated {
            name,
            alias,
            version,
            ..
        } => Py::Obj(vec![
            ("name", s(name)),
            ("alias", s(alias)),
            ("version", s(version)),
        ]),
        E::AliasDeleted { name, alias, .. } => {
            Py::Obj(vec![("name", s(name)), ("alias", s(alias))])
        }
    }
}

/// MLflow's example payload of an event (`webhooks/types.py`), sent by the test call.
fn example(event: &str) -> Py {
    let kv = |k: &'static str, v: &'static str| (k, s(v));
    let tags = || {
        (
            "tags",
            Py::Map(vec![("example_key".into(), "example_value".into())]),
        )
    };
    Py::Obj(match event {
        "registered_model.created" => vec![
            kv("name", "example_model"),
            tags(),
            kv("description", "An example registered model"),
        ],
        "model_version.created" => vec![
            kv("name", "example_model"),
            kv("version", "1"),
            kv("source", "models:/123"),
            kv("run_id", "abcd1234abcd5678"),
            tags(),
            kv("description", "An example model version"),
        ],
        "model_version_tag.set" => vec![
            kv("name", "example_model"),
            kv("version", "1"),
            kv("key", "example_key"),
            kv("value", "example_value"),
        ],
        "model_version_tag.deleted" => vec![
            kv("name", "example_model"),
            kv("version", "1"),
            kv("key", "example_key"),
        ],
        "model_version_alias.created" => vec![
            kv("name", "example_model"),
            kv("alias", "example_alias"),
            kv("version", "1"),
        ],
        "model_version_alias.deleted" => {
            vec![kv("name", "example_model"), kv("alias", "example_alias")]
        }
        "prompt.created" => vec![
            kv("name", "example_prompt"),
            tags(),
            kv("description", "An example prompt"),
        ],
        "prompt_version.created" => vec![
            kv("name", "example_prompt"),
            kv("version", "1"),
            kv("template", "Hello {{name}}!"),
            tags(),
            kv("description", "An example prompt version"),
        ],
        "prompt_tag.set" => vec![
            kv("name", "example_prompt"),
            kv("key", "example_key"),
            kv("value", "example_value"),
        ],
        "prompt_tag.deleted" => vec![kv("name", "example_prompt"), kv("key", "example_key")],
        "prompt_version_tag.set" => vec![
            kv("name", "example_prompt"),
            kv("version", "1"),
            kv("key", "example_key"),
            kv("value", "example_value"),
        ],
        "prompt_version_tag.deleted" => vec![
            kv("name", "example_prompt"),
            kv("version", "1"),
            kv("key", "example_key"),
        ],
        "prompt_alias.created" => vec![
            kv("name", "example_prompt"),
            kv("alias", "example_alias"),
            kv("version", "1"),
        ],
        "prompt_alias.deleted" => {
            vec![kv("name", "example_prompt"), kv("alias", "example_alias")]
        }
        // "budget_policy.exceeded", the only other event there is
        _ => vec![
            kv("budget_policy_id", "bp-abc123"),
            kv("budget_unit", "USD"),
            ("budget_amount", Py::Raw("100.0")),
            ("current_spend", Py::Raw("105.5")),
            kv("duration_unit", "MONTHS"),
            ("duration_value", Py::Raw("1")),
            kv("target_scope", "ENDPOINT"),
            kv("workspace", "default"),
            kv("target_value", "ep-abc123"),
            ("window_start", Py::Raw("1704067200000")),
        ],
    })
}

/// Days since 1970-01-01 as a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()`.
fn iso(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    let (h, mi, se) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let frac = if milli == 0 {
        String::new()
    } else {
        format!(".{:06}", milli * 1000)
    };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{se:02}{frac}+00:00")
}

/// The body MLflow posts for `event` with `data`, at `ms`.
fn body(event: &str, data: Py, ms: i64) -> String {
    let (entity, action) = event.split_once('.').unwrap_or((event, ""));
    let mut out = String::new();
    Py::Obj(vec![
        ("entity", s(entity)),
        ("action", s(action)),
        ("timestamp", Py::Str(iso(ms))),
        ("data", data),
    ])
    .write(&mut out);
    out
}

/// `v1,<base64(HMAC-SHA256(secret, "{delivery_id}.{timestamp}.{body}"))>`.
pub fn signature(secret: &str, delivery_id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken
        Err(_) => return String::new(),
    };
    mac.update(format!("{delivery_id}.{timestamp}.{body}").as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{sig}")
}

fn headers(secret: &str, delivery_id: &str, body: &str) -> Vec<(&'static str, String)> {
    let ts = (store::now_ms() / 1000).to_string();
    let mut h = vec![
        ("Content-Type", "application/json".to_string()),
        ("X-MLflow-Delivery-Id", delivery_id.to_string()),
        ("X-MLflow-Timestamp", ts.clone()),
    ];
    if !secret.is_empty() {
        h.push((
            "X-MLflow-Signature",
            signature(secret, delivery_id, &ts, body),
        ));
    }
    h
}

// ---------------------------------------------------------------- delivery

/// What one attempt means for the delivery (urllib3's `status_forcelist`).
fn retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// The wait before the next attempt after `done` attempts failed:
/// urllib3's exponential backoff (0 s, 2 s, 4 s, …; factor 1), jitter up
/// to 1 s, at most [`BACKOFF_MAX`]; a `Retry-After` answer wins.
fn backoff(done: usize, retry_after: Option<Duration>) -> Duration {
    if let Some(r) = retry_after {
        return r.min(BACKOFF_MAX);
    }
    let base = if done <= 1 {
        Duration::ZERO
    } else {
        Duration::from_secs(1u64 << (done - 1).min(6))
    };
    let jitter = Duration::from_millis(rand::random_range(0..1000));
    (base + jitter).min(BACKOFF_MAX)
}

fn deliver_one(store: &dyn MetadataStore, sender: &Sender, d: &MlflowWebhookDelivery) {
    let at_ms = store::now_ms();
    let done = d.attempts.len() + 1;
    let (attempt, outcome) = match (&d.url, &d.secret) {
        (Some(url), Some(secret)) => {
            let b = body(d.event.event(), data(&d.event), d.event_ms);
            match sender.post(url, &headers(secret, &d.delivery_id, &b), &b) {
                Ok(a) => {
                    let outcome = if retryable(a.status) && done <= RETRIES {
                        DeliveryOutcome::RetryAt(
                            at_ms + backoff(done, a.retry_after).as_millis() as i64,
                        )
                    } else if (200..300).contains(&a.status) {
                        DeliveryOutcome::Delivered
                    } else {
                        DeliveryOutcome::Failed
                    };
                    let attempt = WebhookAttempt {
                        at_ms,
                        status: Some(a.status),
                        error: None,
                    };
                    (attempt, outcome)
                }
                Err(e) => {
                    let outcome = if done <= RETRIES {
                        DeliveryOutcome::RetryAt(at_ms + backoff(done, None).as_millis() as i64)
                    } else {
                        DeliveryOutcome::Failed
                    };
                    let attempt = WebhookAttempt {
                        at_ms,
                        status: None,
                        error: Some(e),
                    };
                    (attempt, outcome)
                }
            }
        }
        _ => (
            WebhookAttempt {
                at_ms,
                status: None,
                error: Some("the webhook was deleted".into()),
            },
            DeliveryOutcome::Failed,
        ),
    };
    match store.record_mlflow_webhook_attempt(d.id, d.claimed_until_ms, &attempt, outcome) {
        Ok(true) => match outcome {
            DeliveryOutcome::Delivered => {
                tracing::debug!(webhook = %d.webhook_id, event = d.event.event(), "MLflow webhook delivered")
            }
            DeliveryOutcome::Failed => tracing::warn!(
                webhook = %d.webhook_id,
                event = d.event.event(),
                status = ?attempt.status,
                error = ?attempt.error,
                "MLflow webhook not delivered after {done} attempt(s)"
            ),
            DeliveryOutcome::RetryAt(_) => {
                tracing::debug!(webhook = %d.webhook_id, attempt = done, "MLflow webhook attempt failed; retrying")
            }
        },
        Ok(false) => tracing::debug!(
            webhook = %d.webhook_id,
            "MLflow webhook lease expired during the attempt; another claim records it"
        ),
        Err(e) => tracing::warn!(
            webhook = %d.webhook_id,
            "could not record an MLflow webhook attempt (retried when its lease expires): {e}"
        ),
    }
}

/// Frees an in-flight slot when its attempt ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Claim what is due (as many as there are free slots) and start one
/// attempt per claimed delivery on a thread of its own; returns how many.
fn poll(
    store: &Arc<dyn MetadataStore>,
    sender: &Sender,
    in_flight: &Arc<AtomicUsize>,
) -> Result<usize, store::StoreError> {
    let free = MAX_IN_FLIGHT.saturating_sub(in_flight.load(Ordering::Acquire));
    if free == 0 {
        return Ok(0);
    }
    let claimed =
        store.claim_mlflow_webhook_deliveries(store::now_ms(), LEASE.as_millis() as i64, free)?;
    let n = claimed.len();
    for d in claimed {
        in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(in_flight.clone());
        let (st, sender) = (store.clone(), sender.clone());
        let spawned = std::thread::Builder::new()
            .name("mlflow-webhook".into())
            .spawn(move || {
                let _slot = slot;
                deliver_one(st.as_ref(), &sender, &d);
            });
        if let Err(e) = spawned {
            // the slot went with the closure; the lease brings the delivery back
            tracing::warn!("could not start an MLflow webhook attempt: {e}");
        }
    }
    Ok(n)
}

/// Deliver MLflow webhook events until the process ends: a thread that
/// polls the store's outbox every [`POLL`] (see the module docs).
pub fn spawn_delivery(
    store: Arc<dyn MetadataStore>,
    sender: Sender,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mlflow-webhooks".into())
        .spawn(move || {
            let in_flight = Arc::new(AtomicUsize::new(0));
            let mut last_error = String::new();
            loop {
                match poll(&store, &sender, &in_flight) {
                    Ok(_) => last_error.clear(),
                    Err(e) => {
                        let e = e.to_string();
                        if e != last_error {
                            tracing::warn!("MLflow webhook outbox: {e}");
                            last_error = e;
                        }
                    }
                }
                std::thread::sleep(POLL);
            }
        })
}

// ---------------------------------------------------------------- requests

/// Python's `repr` of a string, as MLflow's messages quote values.
fn repr(v: &str) -> String {
    if v.contains('\'') && !v.contains('"') {
        format!("\"{v}\"")
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let b = name.as_bytes();
    let ok_char = |c: &u8| c.is_ascii_alphanumeric() || b"._-".contains(c);
    let ok = (1..=63).contains(&b.len())
        && b.iter().all(ok_char)
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "Webhook name {} is invalid. It must start and end with a letter or digit, be less than 63 characters long, and contain only letters, digits, dots (.), underscores (_), and hyphens (-).",
        repr(name)
    )))
}

/// MLflow's `_validate_webhook_url`, then the server's policy.
fn check_url(state: &AppState, url: &str) -> Result<(), ApiError> {
    if url.trim().is_empty() {
        return Err(ApiError::invalid(format!(
            "Webhook URL cannot be empty or just whitespace: {}",
            repr(url)
        )));
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| ApiError::invalid(format!("Invalid webhook URL {}: {e}", repr(url))))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid webhook URL scheme: {}. Allowed schemes are: {SCHEMES}.",
                repr(other)
            )));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(format!(
            "Webhook URL must include a hostname: {}",
            repr(url)
        )));
    }
    if let Some(sender) = &state.mlflow_webhooks {
        (sender.check)(url).map_err(ApiError::invalid)?;
    }
    Ok(())
}

fn enum_name(
    v: &Value,
    field: &str,
    table: &[(&'static str, i64)],
) -> Result<&'static str, ApiError> {
    let found = match v {
        Value::String(s) => table.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)),
        Value::Number(n) => table.iter().find(|(_, i)| Some(*i) == n.as_i64()),
        _ => None,
    };
    found.map(|(n, _)| *n).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        ApiError::invalid(format!(
            "Invalid webhook event {field} {v}: use one of {}",
            names.join(", ")
        ))
    })
}

/// One `{entity, action}` object as MLflow's `entity.action` string.
fn event_of(v: &Value) -> Result<String, ApiError> {
    let Value::Object(o) = v else {
        return Err(ApiError::invalid(format!(
            "Invalid webhook event {v}: expected an object with 'entity' and 'action'"
        )));
    };
    let entity = enum_name(o.get("entity").unwrap_or(&Value::Null), "entity", &ENTITIES)?
        .to_ascii_lowercase();
    let action = enum_name(o.get("action").unwrap_or(&Value::Null), "action", &ACTIONS)?
        .to_ascii_lowercase();
    let event = format!("{entity}.{action}");
    if EVENTS.contains(&event.as_str()) {
        return Ok(event);
    }
    let mut valid: Vec<&str> = EVENTS
        .iter()
        .filter_map(|e| e.strip_prefix(&format!("{entity}.")))
        .collect();
    valid.sort_unstable();
    let valid: Vec<String> = valid.iter().map(|a| format!("'{a}'")).collect();
    Err(ApiError::invalid(format!(
        "Invalid action '{action}' for entity '{entity}'. Valid actions are: [{}]",
        valid.join(", ")
    )))
}

/// The `events` field: `None` when absent or empty; duplicates dropped,
/// sorted (MLflow's store reads a webhook's events back in key order).
fn events(req: &Req) -> Result<Option<Vec<String>>, ApiError> {
    let list = req.objects("events").map_err(|_| {
        ApiError::invalid(
            "Invalid value for parameter 'events': expected a list of {\"entity\": ..., \"action\": ...} objects",
        )
    })?;
    let mut out: Vec<String> = Vec::new();
    for o in list {
        let e = event_of(&Value::Object(o.into_map()))?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out.sort();
    Ok((!out.is_empty()).then_some(out))
}

fn status(req: &Req) -> Result<Option<MlflowWebhookStatus>, ApiError> {
    match req.raw("status") {
        None => Ok(None),
        Some(v) => {
            let table = [("ACTIVE", 1), ("DISABLED", 2)];
            let n = enum_name(v, "status", &table).map_err(|_| {
                ApiError::invalid(format!(
                    "Invalid webhook status {v}: use ACTIVE or DISABLED"
                ))
            })?;
            Ok(MlflowWebhookStatus::parse(n))
        }
    }
}

fn event_json(e: &str) -> Value {
    let (entity, action) = e.split_once('.').unwrap_or((e, ""));
    json!({"entity": entity.to_ascii_uppercase(), "action": action.to_ascii_uppercase()})
}

/// MLflow's `Webhook` message. The secret is never part of it.
fn wire(w: &MlflowWebhook) -> Value {
    crate::wire::Obj::new()
        .s("webhook_id", &w.webhook_id)
        .s("name", &w.name)
        .s("description", &w.description)
        .s("url", &w.url)
        .v(
            "events",
            Value::Array(w.events.iter().map(|e| event_json(e)).collect()),
        )
        .s("status", w.status.as_str())
        .i("creation_timestamp", w.creation_timestamp)
        .i("last_updated_timestamp", w.last_updated_timestamp)
        .done()
}

pub async fn create(State(s): State<AppState>, req: Req) -> JsonResult {
    let name = req.str("name")?;
    let url = req.str("url")?;
    check_name(&name)?;
    check_url(&s, &url)?;
    if req.raw("events").is_none() {
        req.str("events")?;
    }
    let events = events(&req)?.ok_or_else(|| {
        ApiError::invalid("Webhook events must be a non-empty list of WebhookEvent objects: [].")
    })?;
    let w = NewMlflowWebhook {
        workspace: crate::workspace::of(&req),
        name,
        description: req.opt_str("description")?.unwrap_or_default(),
        url,
        events,
        secret: req.opt_str("secret")?.unwrap_or_default(),
        status: status(&req)?.unwrap_or(MlflowWebhookStatus::Active),
    };
    let w = s.db(move |st| st.create_mlflow_webhook(&w)).await?;
    Ok(Json(json!({"webhook": wire(&w)})))
}

pub async fn list(State(s): State<AppState>, req: Req) -> JsonResult {
    let max = match req.opt_i64("max_results")? {
        None | Some(0) => 100,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(_) => return Err(ApiError::invalid("max_results must be between 1 and 1000.")),
    };
    let token = req.opt_str("page_token")?.filter(|t| !t.is_empty());
    let ws = crate::workspace::of(&req);
    let page = s
        .db(move |st| st.list_mlflow_webhooks(Some(&ws), max, token.as_deref()))
        .await?;
    let mut out = crate::wire::Obj::new().v(
        "webhooks",
        Value::Array(page.items.iter().map(wire).collect()),
    );
    if let Some(t) = page.next_page_token {
        out = out.s("next_page_token", &t);
    }
    Ok(Json(out.done()))
}

/// Webhook `id` of workspace `ws` (another workspace's answers as missing).
fn webhook_in(st: &dyn MetadataStore, ws: &str, id: &str) -> store::Result<MlflowWebhook> {
    crate::workspace::kept_in(
        ws,
        st.get_mlflow_webhook(id),
        |w| &w.workspace,
        || format!("Webhook with ID {id} not found."),
    )
}

pub async fn get_one(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path(id): Path<String>,
) -> JsonResult {
    let w = s.db(move |st| webhook_in(st, &ws.0, &id)).await?;
    Ok(Json(json!({"webhook": wire(&w)})))
}

pub async fn update(State(s): State<AppState>, Path(id): Path<String>, req: Req) -> JsonResult {
    // as MLflow: an empty name, URL or event list leaves the field as it is;
    // a description or secret that is sent (even empty) replaces it
    let name = req.opt_str("name")?.filter(|n| !n.is_empty());
    let url = req.opt_str("url")?.filter(|u| !u.is_empty());
    let u = MlflowWebhookUpdate {
        description: req.opt_str("description")?,
        secret: req.opt_str("secret")?,
        events: events(&req)?,
        status: status(&req)?,
        name,
        url,
    };
    // an unknown id is named before the fields are judged, as MLflow's store does
    let known = id.clone();
    let ws = crate::workspace::of(&req);
    s.db(move |st| webhook_in(st, &ws, &known)).await?;
    if let Some(n) = &u.name {
        check_name(n)?;
    }
    if let Some(url) = &u.url {
        check_url(&s, url)?;
    }
    let w = s.db(move |st| st.update_mlflow_webhook(&id, &u)).await?;
    Ok(Json(json!({"webhook": wire(&w)})))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path(id): Path<String>,
) -> JsonResult {
    s.db(move |st| {
        webhook_in(st, &ws.0, &id)?;
        st.delete_mlflow_webhook(&id)
    })
    .await?;
    empty()
}

/// Send the example payload of one event (the one asked for, else the
/// webhook's first) to the webhook now (retried as deliveries are) and say
/// what came back.
pub async fn test(State(s): State<AppState>, Path(id): Path<String>, req: Req) -> JsonResult {
    let asked = match req.raw("event") {
        None => None,
        Some(v) => Some(event_of(v)?),
    };
    let ws = crate::workspace::of(&req);
    let w = s.db(move |st| webhook_in(st, &ws, &id)).await?;
    let event = match asked.or_else(|| w.events.first().cloned()) {
        Some(e) => e,
        None => return Err(ApiError::invalid("The webhook has no events to test")),
    };
    let Some(sender) = s.mlflow_webhooks.clone() else {
        return Err(ApiError::invalid(
            "This server process does not send webhooks (no webhook HTTP client is configured)",
        ));
    };
    let result = tokio::task::spawn_blocking(move || {
        let b = body(&event, example(&event), store::now_ms());
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let h = headers(&w.secret, &delivery_id, &b);
        // retried as a delivery is (MLflow's test goes through the same session)
        let mut done = 0;
        let answer = loop {
            let a = sender.post(&w.url, &h, &b);
            done += 1;
            let again = match &a {
                Ok(a) => retryable(a.status),
                Err(_) => true,
            };
            if !again || done > RETRIES {
                break a;
            }
            let wait = match &a {
                Ok(a) => backoff(done, a.retry_after),
                Err(_) => backoff(done, None),
            };
            std::thread::sleep(wait);
        };
        match answer {
            Ok(a) => crate::wire::Obj::new()
                .always("success", json!(a.status < 400))
                .i("response_status", i64::from(a.status))
                .s("response_body", &a.body)
                .done(),
            Err(e) => crate::wire::Obj::new()
                .always("success", json!(false))
                .s("error_message", &format!("Failed to test webhook: {e}"))
                .done(),
        }
    })
    .await
    .map_err(|e| {
        ApiError::new(
            crate::error::ErrorCode::InternalError,
            format!("webhook test task failed: {e}"),
        )
    })?;
    Ok(Json(json!({"result": result})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_python_json_and_the_signature_is_mlflows() {
        let e = RegistryEvent::VersionCreated {
            prompt: false,
            name: "mödel".into(),
            version: "1".into(),
            source: "models:/m-1".into(),
            run_id: String::new(),
            tags: vec![Tag::new("b", "1"), Tag::new("a", "2"), Tag::new("b", "3")],
            description: String::new(),
        };
        let b = body(e.event(), data(&e), 1_700_000_000_123);
        assert_eq!(
            b,
            r#"{"entity": "model_version", "action": "created", "timestamp": "2023-11-14T22:13:20.123000+00:00", "data": {"name": "m\u00f6del", "version": "1", "source": "models:/m-1", "run_id": null, "tags": {"b": "3", "a": "2"}, "description": null}}"#
        );
        assert_eq!(iso(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00+00:00");
        // Python: base64.b64encode(hmac.new(b"k", b"id.1.{}", hashlib.sha256).digest())
        assert_eq!(
            signature("k", "id", "1", "{}"),
            "v1,g7RitEqJvu8yMbDC6clEYxfin7F9RZIMzpsXDw051Xc="
        );
    }

    #[test]
    fn names_and_events_follow_mlflows_rules() {
        assert!(check_name("a").is_ok());
        assert!(check_name("my-hook_1.x").is_ok());
        for bad in ["", "-a", "a-", "a b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            event_of(&json!({"entity": "MODEL_VERSION_TAG", "action": "SET"})).unwrap(),
            "model_version_tag.set"
        );
        assert_eq!(
            event_of(&json!({"entity": 2, "action": 1})).unwrap(),
            "model_version.created"
        );
        let e = event_of(&json!({"entity": "MODEL_VERSION_TAG", "action": "CREATED"})).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid action 'created' for entity 'model_version_tag'. Valid actions are: ['deleted', 'set']"
        );
        assert!(event_of(&json!({"entity": "RUN", "action": "CREATED"})).is_err());
        assert!(retryable(503));
        assert!(!retryable(404));
        assert_eq!(backoff(1, Some(Duration::from_secs(500))), BACKOFF_MAX);
        assert!(backoff(1, None) < Duration::from_secs(1));
        assert!(backoff(3, None) >= Duration::from_secs(4));
    }
}
