//! The audit log's HTTP side: which requests are recorded (every change
//! through a declared route, not the high-volume logging of metrics,
//! params, tags, traces and artifacts), what a record holds (the request's
//! fields, secrets left out), and `GET /api/atelier/audit` for server admins
//! (JSON, or JSON Lines with `format=jsonl` for export).
//!
//! The guard ([`crate::auth::middleware`]) records a change after its
//! handler answered and before the answer leaves, so an acknowledged change
//! has its record; a record that cannot be written is logged as an error
//! and does not undo the change.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{AuditEntry, AuditQuery};

use crate::AppState;
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::req::Req;
use crate::routes::Access;

/// Bodies up to this size are read into the record; larger ones are noted
/// by size only.
pub const MAX_RECORDED_BODY: u64 = 64 << 10;

/// Routes whose writes are data, not changes to record: the logging calls a
/// training loop makes thousands of times, traces, artifact bytes, ground
/// truth.
const DATA_WRITES: &[&str] = &[
    "/runs/log-",
    "/runs/set-tag",
    "/runs/delete-tag",
    "/traces",
    "/v1/traces",
    "-artifacts/",
    "/ground-truth/",
    "/assessments",
    "/logged-models/{model_id}/params",
    "/logged-models/{model_id}/tags",
    "/studio/api/",
];

/// Whether a request through route `template` with `access` is recorded.
pub fn audited(method: &Method, template: &str, access: Access) -> bool {
    crate::site::is_unsafe(method)
        && matches!(access, Access::Write | Access::Admin | Access::Account)
        && !DATA_WRITES.iter().any(|d| template.contains(d))
}

const SECRET_WORDS: &[&str] = &["password", "token", "secret", "credential", "authorization"];

fn scalar(v: &Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > 200 => {
            Value::String(format!("{}…", s.chars().take(200).collect::<String>()))
        }
        Value::Array(a) => Value::String(format!("[{} items]", a.len())),
        Value::Object(o) => Value::String(format!("{{{} fields}}", o.len())),
        v => v.clone(),
    }
}

/// The fields a record keeps of a request: its query's and its JSON body's
/// top-level fields (long text cut, lists and objects summarised), with
/// anything secret replaced by `"(hidden)"`.
pub fn detail(query: Option<&str>, body: Option<&Bytes>, body_len: Option<u64>) -> String {
    let mut out = Map::new();
    let mut put = |k: String, v: Value| {
        let lower = k.to_ascii_lowercase();
        let v = if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
            Value::String("(hidden)".into())
        } else {
            scalar(&v)
        };
        out.insert(k, v);
    };
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            put(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    match body.map(|b| serde_json::from_slice::<Value>(b)) {
        Some(Ok(Value::Object(o))) => {
            for (k, v) in o {
                put(k, v);
            }
        }
        Some(_) | None => {
            if let Some(n) = body_len.filter(|n| *n > 0) {
                out.insert("body_bytes".into(), json!(n));
            }
        }
    }
    Value::Object(out).to_string()
}

/// Append a record (on the blocking pool); a failure is logged, not raised.
pub async fn record(s: &AppState, e: AuditEntry) {
    let action = e.action.clone();
    if let Err(err) = s.db(move |st| st.append_audit(&e)).await {
        tracing::error!(%action, "could not write an audit record: {}", err.message);
    }
}

/// A sign-in, failed sign-in or sign-out from the Studio's form.
pub async fn sign_in_event(s: &AppState, actor: &str, address: &str, action: &str, status: u16) {
    record(
        s,
        AuditEntry {
            at_ms: store::now_ms(),
            actor: actor.into(),
            address: address.into(),
            workspace: String::new(),
            action: action.into(),
            target: "/login".into(),
            status: i64::from(status),
            detail: "{}".into(),
            ..Default::default()
        },
    )
    .await;
}

/// A record as the API and `atelier audit` print it.
pub fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "at_ms": e.at_ms,
        "actor": e.actor,
        "address": e.address,
        "project": e.workspace,
        "action": e.action,
        "target": e.target,
        "status": e.status,
        "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null),
    })
}

/// `GET /api/atelier/audit?actor=&project=&action=&since_ms=&until_ms=&before_id=&limit=&format=`:
/// newest first; `format=jsonl` answers JSON Lines (up to 100,000 records)
/// for export. Server admins only.
pub async fn list(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    req: Req,
) -> ApiResult<Response> {
    if !who.admin {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "'{}' is not a server admin; only a server admin reads the audit log",
                who.name
            ),
        ));
    }
    let jsonl = match req.opt_str("format")?.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(f) => {
            return Err(ApiError::invalid(format!(
                "format '{f}': use json or jsonl"
            )));
        }
    };
    let limit = match req.opt_i64("limit")? {
        None => {
            if jsonl {
                100_000
            } else {
                100
            }
        }
        Some(n) if (1..=100_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "limit must be 1 to 100000, got {n}"
            )));
        }
    };
    let q = AuditQuery {
        actor: req.opt_str("actor")?.filter(|v| !v.is_empty()),
        workspace: req.opt_str("project")?.filter(|v| !v.is_empty()),
        action: req.opt_str("action")?.filter(|v| !v.is_empty()),
        since_ms: req.opt_i64("since_ms")?,
        until_ms: req.opt_i64("until_ms")?,
        before_id: req.opt_i64("before_id")?,
        limit,
    };
    let rows = s.db(move |st| st.search_audit(&q)).await?;
    if jsonl {
        let mut out = String::new();
        for e in &rows {
            out.push_str(&entry_json(e).to_string());
            out.push('\n');
        }
        return Ok((
            [
                (header::CONTENT_TYPE, "application/jsonl; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"atelier-audit.jsonl\"",
                ),
            ],
            out,
        )
            .into_response());
    }
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(json!({
        "records": rows.iter().map(entry_json).collect::<Vec<_>>(),
        "next_before_id": next,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_recorded_and_data_writes_are_not() {
        let post = Method::POST;
        assert!(audited(
            &post,
            "/api/2.0/mlflow/experiments/create",
            Access::Write
        ));
        assert!(audited(
            &Method::DELETE,
            "/api/atelier/tokens/{name}",
            Access::Account
        ));
        assert!(!audited(
            &Method::GET,
            "/api/2.0/mlflow/experiments/get",
            Access::Read
        ));
        assert!(!audited(&post, "/api/2.0/mlflow/runs/search", Access::Read));
        assert!(!audited(
            &post,
            "/api/2.0/mlflow/runs/log-batch",
            Access::Write
        ));
        assert!(!audited(
            &Method::PUT,
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            Access::Write
        ));
        assert!(!audited(&post, "/v1/traces", Access::Write));
    }

    #[test]
    fn a_record_keeps_the_fields_and_hides_secrets() {
        let body = Bytes::from(
            r#"{"name": "alice", "password": "hunter22", "tags": [1, 2], "note": "x"}"#,
        );
        let d: Value = serde_json::from_str(&detail(
            Some("mode=RESTRICT&api_token=abc"),
            Some(&body),
            None,
        ))
        .unwrap();
        assert_eq!(d["name"], "alice");
        assert_eq!(d["password"], "(hidden)");
        assert_eq!(d["api_token"], "(hidden)");
        assert_eq!(d["tags"], "[2 items]");
        assert_eq!(d["mode"], "RESTRICT");
        let big = detail(None, None, Some(1 << 20));
        assert_eq!(big, r#"{"body_bytes":1048576}"#);
        let long = Bytes::from(format!(r#"{{"description": "{}"}}"#, "é".repeat(500)));
        let d: Value = serde_json::from_str(&detail(None, Some(&long), None)).unwrap();
        assert_eq!(d["description"].as_str().unwrap().chars().count(), 201);
    }
}
