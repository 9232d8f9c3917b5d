//! MLflow 3 tracing: the trace REST endpoints the `mlflow` client calls
//! (`/api/3.0/mlflow/traces…`, tags under `/api/2.0/mlflow/traces/{id}/tags`)
//! and OTLP/HTTP span ingestion at `POST /v1/traces` (protobuf or JSON, the
//! experiment in `x-mlflow-experiment-id`), as MLflow's server has them.
//!
//! Spans are stored as OTLP JSON in protobuf's canonical form with MLflow's
//! snake_case field names (ids base64, 64-bit numbers as strings), which is
//! what `GetTrace` answers in its `spans`: the client reads them back with
//! `Span.from_otel_proto`. The protobuf body is read by a small decoder for
//! the few OTLP trace messages (no code generation, no build script).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use serde_json::{Map, Value, json};
use store::{
    DeleteTraces, LogSpans, SearchTraces, Tag, TokenUsage, TraceAssessment, TraceInfo, TraceSpan,
};
use tabular::{civil_from_days, days_from_civil};

use super::{JsonResult, empty};
use crate::AppState;
use crate::error::ApiError;
use crate::req::{Req, parse_experiment_id};
use crate::workspace::{self, Ws, trace_in};

/// Header naming the experiment OTLP spans go to (MLflow's `MLFLOW_EXPERIMENT_ID_HEADER`).
pub const EXPERIMENT_HEADER: &str = "x-mlflow-experiment-id";
/// Header naming a run to link the traces of an OTLP request to (MLflow's `MLFLOW_RUN_ID_HEADER`).
pub const RUN_HEADER: &str = "x-mlflow-run-id";
/// Previews of a trace's request and response are cut to this many characters.
const PREVIEW_CHARS: usize = 1000;
/// Most traces one batch call may name.
const MAX_BATCH: usize = 100;
const STATES: [&str; 4] = ["OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"];

// ------------------------------------------------------------------ time

/// Epoch milliseconds as protobuf's JSON `Timestamp` (RFC 3339, UTC).
pub fn format_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

/// An RFC 3339 time (`2024-01-02T03:04:05.678Z`, an offset, or none of the
/// fraction) as epoch milliseconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i];
        let first3: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = first3.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if b.len() == i + 6 && b[i + 3] == b':' => {
            let v = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *c == b'-' { -v } else { v }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

/// Milliseconds as protobuf's JSON `Duration` (`"1.500s"`).
pub fn format_duration(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    if a.is_multiple_of(1000) {
        format!("{sign}{}s", a / 1000)
    } else {
        format!("{sign}{}.{:03}s", a / 1000, a % 1000)
    }
}

/// protobuf's JSON `Duration` (`"1.5s"`, `"-0.001s"`) as milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let body = s.strip_suffix('s')?;
    let (neg, body) = match body.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, body),
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let first3: String = frac.chars().chain("000".chars()).take(3).collect();
    let ms = secs
        .checked_mul(1000)?
        .checked_add(first3.parse::<i64>().ok()?)?;
    Some(if neg { -ms } else { ms })
}

// ------------------------------------------------------------ trace info

fn string_map(tags: &[Tag]) -> Value {
    Value::Object(
        tags.iter()
            .map(|t| (t.key.clone(), Value::String(t.value.clone())))
            .collect(),
    )
}

/// A stored trace info as MLflow's `TraceInfoV3` JSON.
pub fn trace_info_json(t: &TraceInfo) -> Value {
    let mut o = Map::new();
    o.insert("trace_id".into(), json!(t.trace_id));
    if let Some(c) = &t.client_request_id {
        o.insert("client_request_id".into(), json!(c));
    }
    o.insert(
        "trace_location".into(),
        json!({"type": "MLFLOW_EXPERIMENT",
               "mlflow_experiment": {"experiment_id": t.experiment_id.to_string()}}),
    );
    o.insert(
        "request_time".into(),
        json!(format_timestamp(t.request_time_ms)),
    );
    if let Some(d) = t.execution_time_ms {
        o.insert("execution_duration".into(), json!(format_duration(d)));
    }
    o.insert("state".into(), json!(t.state));
    o.insert("trace_metadata".into(), string_map(&t.metadata));
    o.insert("tags".into(), string_map(&t.tags));
    if let Some(p) = &t.request_preview {
        o.insert("request_preview".into(), json!(p));
    }
    if let Some(p) = &t.response_preview {
        o.insert("response_preview".into(), json!(p));
    }
    if !t.assessments.is_empty() {
        o.insert(
            "assessments".into(),
            Value::Array(t.assessments.iter().map(assessment_json).collect()),
        );
    }
    Value::Object(o)
}

/// A stored assessment as MLflow's `Assessment` JSON (written by this module).
fn assessment_json(a: &TraceAssessment) -> Value {
    serde_json::from_str(&a.content).unwrap_or_else(|_| json!({}))
}

fn bad(field: &str, want: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value for '{field}' in the trace info: expected {want}"
    ))
}

fn opt_string(o: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "a string")),
    }
}

fn kv_map(o: &Map<String, Value>, field: &str) -> Result<Vec<Tag>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok(Tag::new(k.clone(), s.clone())),
                _ => Err(bad(&format!("{field}.{k}"), "a string")),
            })
            .collect(),
        Some(_) => Err(bad(field, "an object of strings")),
    }
}

/// The experiment of a `TraceLocation` (only MLflow experiments are kept here).
fn location_experiment(loc: &Value) -> Result<i64, ApiError> {
    let kind = loc.get("type").and_then(Value::as_str);
    if let Some(k) = kind
        && k != "MLFLOW_EXPERIMENT"
    {
        return Err(ApiError::invalid(format!(
            "Unsupported trace location type '{k}': this server keeps traces in MLflow experiments (MLFLOW_EXPERIMENT)"
        )));
    }
    match loc.pointer("/mlflow_experiment/experiment_id") {
        Some(Value::String(s)) => parse_experiment_id(s),
        Some(Value::Number(n)) => parse_experiment_id(&n.to_string()),
        _ => Err(ApiError::invalid(
            "The trace location has no 'mlflow_experiment.experiment_id'",
        )),
    }
}

/// MLflow's `TraceInfoV3` JSON as a store trace info.
fn parse_trace_info(v: &Value) -> Result<TraceInfo, ApiError> {
    let Value::Object(o) = v else {
        return Err(ApiError::invalid("'trace.trace_info' must be an object"));
    };
    let trace_id = opt_string(o, "trace_id")?.unwrap_or_default();
    if trace_id.is_empty() || trace_id.len() > 256 {
        return Err(ApiError::invalid(
            "Missing or invalid 'trace_id' in the trace info: a non-empty string of at most 256 characters",
        ));
    }
    let loc = o
        .get("trace_location")
        .ok_or_else(|| ApiError::invalid("Missing 'trace_location' in the trace info"))?;
    let experiment_id = location_experiment(loc)?;
    let request_time_ms = match o.get("request_time") {
        Some(Value::String(s)) => {
            parse_timestamp(s).ok_or_else(|| bad("request_time", "an RFC 3339 time"))?
        }
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| bad("request_time", "an RFC 3339 time"))?,
        _ => {
            return Err(ApiError::invalid(
                "Missing 'request_time' in the trace info",
            ));
        }
    };
    let execution_time_ms = match o.get("execution_duration") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            parse_duration(s).ok_or_else(|| bad("execution_duration", "a duration like '1.5s'"))?,
        ),
        Some(_) => return Err(bad("execution_duration", "a duration like '1.5s'")),
    };
    let state = opt_string(o, "state")?.unwrap_or_else(|| "STATE_UNSPECIFIED".into());
    if !STATES.contains(&state.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid trace state '{state}': use one of {STATES:?}"
        )));
    }
    Ok(TraceInfo {
        experiment_id,
        client_request_id: opt_string(o, "client_request_id")?,
        request_time_ms,
        execution_time_ms,
        state,
        request_preview: opt_string(o, "request_preview")?,
        response_preview: opt_string(o, "response_preview")?,
        metadata: kv_map(o, "trace_metadata")?,
        tags: kv_map(o, "tags")?,
        assessments: match o.get("assessments") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|a| new_assessment(&trace_id, a, store::now_ms()))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("assessments", "a list of assessments")),
        },
        trace_id,
    })
}

// ----------------------------------------------------------- assessments

fn now_json() -> Value {
    json!(format_timestamp(store::now_ms()))
}

/// A new assessment of `trace_id` from the client's `Assessment` JSON: an
/// id, the trace, times and `valid` filled in as MLflow's server does.
fn new_assessment(trace_id: &str, v: &Value, now: i64) -> Result<TraceAssessment, ApiError> {
    let Value::Object(o) = v else {
        return Err(ApiError::invalid("An assessment must be an object"));
    };
    let mut o = o.clone();
    if let Some(t) = o.get("trace_id").and_then(Value::as_str)
        && !t.is_empty()
        && t != trace_id
    {
        return Err(ApiError::invalid(format!(
            "The assessment names trace '{t}' but is logged to trace '{trace_id}'"
        )));
    }
    let name = match o.get("assessment_name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        _ => {
            return Err(ApiError::invalid(
                "Missing value for required parameter 'assessment.assessment_name'",
            ));
        }
    };
    let has = |k: &str| o.get(k).is_some_and(|v| !v.is_null());
    if has("feedback") == has("expectation") {
        return Err(ApiError::invalid(
            "An assessment needs exactly one of 'feedback' and 'expectation'",
        ));
    }
    let created = match o.get("create_time") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => parse_timestamp(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid 'create_time' '{s}': expected an RFC 3339 time"
            ))
        })?,
        Some(_) => {
            return Err(ApiError::invalid(
                "Invalid 'create_time': expected an RFC 3339 time",
            ));
        }
    };
    let id = match o.get("assessment_id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("a-{}", uuid::Uuid::new_v4().simple()),
    };
    o.insert("assessment_id".into(), json!(id));
    o.insert("trace_id".into(), json!(trace_id));
    o.insert("create_time".into(), json!(format_timestamp(created)));
    o.entry("last_update_time")
        .or_insert_with(|| json!(format_timestamp(created)));
    o.entry("valid").or_insert(json!(true));
    Ok(TraceAssessment {
        trace_id: trace_id.to_string(),
        assessment_id: id,
        name,
        create_time_ms: created,
        content: Value::Object(o).to_string(),
    })
}

fn with_content(a: &TraceAssessment, o: Map<String, Value>) -> TraceAssessment {
    let name = o
        .get("assessment_name")
        .and_then(Value::as_str)
        .unwrap_or(&a.name)
        .to_string();
    TraceAssessment {
        name,
        content: Value::Object(o).to_string(),
        ..a.clone()
    }
}

fn content_map(a: &TraceAssessment) -> Map<String, Value> {
    match assessment_json(a) {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// `CreateAssessment`: `POST /traces/{trace_id}/assessments` with `{assessment}`.
/// An assessment that `overrides` another marks that one `valid: false`.
pub async fn create_assessment(
    State(s): State<AppState>,
    Path(trace_id): Path<String>,
    req: Req,
) -> JsonResult {
    let a = req
        .raw("assessment")
        .ok_or_else(|| ApiError::invalid("Missing value for required parameter 'assessment'"))?;
    let new = new_assessment(&trace_id, a, store::now_ms())?;
    let overrides = a
        .get("overrides")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let out = new.clone();
    let ws = workspace::of(&req);
    s.db(move |st| {
        trace_in(st, &ws, &trace_id)?;
        let mut items = vec![new];
        if let Some(old_id) = overrides {
            let old = st.get_trace_assessment(&trace_id, &old_id)?;
            let mut o = content_map(&old);
            o.insert("valid".into(), json!(false));
            items.push(with_content(&old, o));
        }
        st.save_trace_assessments(&trace_id, &items)
    })
    .await?;
    Ok(Json(json!({ "assessment": assessment_json(&out) })))
}

pub async fn get_assessment(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path((trace_id, id)): Path<(String, String)>,
) -> JsonResult {
    let a = s
        .db(move |st| {
            trace_in(st, &ws.0, &trace_id)?;
            st.get_trace_assessment(&trace_id, &id)
        })
        .await?;
    Ok(Json(json!({ "assessment": assessment_json(&a) })))
}

/// `UpdateAssessment`: the fields `update_mask` names (a FieldMask: a
/// comma-separated string, or `{paths}`) from `assessment`.
pub async fn update_assessment(
    State(s): State<AppState>,
    Path((trace_id, id)): Path<(String, String)>,
    req: Req,
) -> JsonResult {
    let Some(Value::Object(upd)) = req.raw("assessment").cloned() else {
        return Err(ApiError::invalid(
            "Missing value for required parameter 'assessment'",
        ));
    };
    let paths: Vec<String> = match req.raw("update_mask") {
        Some(Value::String(p)) => p.split(',').map(|p| snake(p.trim())).collect(),
        Some(Value::Object(m)) => match m.get("paths") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(snake).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    const FIELDS: [&str; 5] = [
        "assessment_name",
        "expectation",
        "feedback",
        "rationale",
        "metadata",
    ];
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "Missing value for required parameter 'update_mask'",
        ));
    }
    if let Some(p) = paths.iter().find(|p| !FIELDS.contains(&p.as_str())) {
        return Err(ApiError::invalid(format!(
            "Invalid update_mask path '{p}': use one of {FIELDS:?}"
        )));
    }
    if paths.iter().any(|p| p == "expectation") && paths.iter().any(|p| p == "feedback") {
        return Err(ApiError::invalid(
            "Exactly one of `expectation` or `feedback` should be specified.",
        ));
    }
    let ws = workspace::of(&req);
    let out = s
        .db(move |st| {
            trace_in(st, &ws, &trace_id)?;
            let old = st.get_trace_assessment(&trace_id, &id)?;
            let mut o = content_map(&old);
            for p in &paths {
                let v = upd.get(p.as_str()).cloned().unwrap_or(Value::Null);
                match p.as_str() {
                    "metadata" => {
                        let mut merged = match o.remove("metadata") {
                            Some(Value::Object(m)) => m,
                            _ => Map::new(),
                        };
                        if let Value::Object(m) = v {
                            merged.extend(m);
                        }
                        o.insert("metadata".into(), Value::Object(merged));
                    }
                    "expectation" | "feedback" => {
                        o.remove("expectation");
                        o.remove("feedback");
                        o.insert(p.clone(), v);
                    }
                    _ => {
                        o.insert(p.clone(), v);
                    }
                }
            }
            o.insert("last_update_time".into(), now_json());
            let new = with_content(&old, o);
            st.save_trace_assessments(&trace_id, std::slice::from_ref(&new))?;
            Ok(new)
        })
        .await?;
    Ok(Json(json!({ "assessment": assessment_json(&out) })))
}

/// `DeleteAssessment`; the assessment it overrode, if any, is valid again.
pub async fn delete_assessment(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path((trace_id, id)): Path<(String, String)>,
) -> JsonResult {
    s.db(move |st| {
        trace_in(st, &ws.0, &trace_id)?;
        let gone = st.get_trace_assessment(&trace_id, &id)?;
        if let Some(old_id) = assessment_json(&gone)
            .get("overrides")
            .and_then(Value::as_str)
            && let Ok(old) = st.get_trace_assessment(&trace_id, old_id)
        {
            let mut o = content_map(&old);
            o.insert("valid".into(), json!(true));
            st.save_trace_assessments(&trace_id, &[with_content(&old, o)])?;
        }
        st.delete_trace_assessment(&trace_id, &id)
    })
    .await?;
    empty()
}

// -------------------------------------------------------------- handlers

/// `StartTraceV3`: the client sends it when a trace ends (after its spans).
pub async fn start_trace(State(s): State<AppState>, req: Req) -> JsonResult {
    let trace = req
        .raw("trace")
        .ok_or_else(|| ApiError::invalid("Missing value for required parameter 'trace'"))?;
    let ti = trace.get("trace_info").ok_or_else(|| {
        ApiError::invalid("Missing value for required parameter 'trace.trace_info'")
    })?;
    let info = parse_trace_info(ti)?;
    let ws = workspace::of(&req);
    let stored = workspace::on_experiment(&s, req.workspace(), info.experiment_id, move |st, _| {
        // a trace id another workspace holds is not this one's to take over
        if st.trace_workspace(&info.trace_id).is_ok() {
            trace_in(st, &ws, &info.trace_id)?;
        }
        st.start_trace(&info)
    })
    .await?;
    Ok(Json(
        json!({"trace": {"trace_info": trace_info_json(&stored)}}),
    ))
}

pub async fn get_trace_info(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Path(id): Path<String>,
) -> JsonResult {
    let t = s
        .db(move |st| {
            trace_in(st, &ws.0, &id)?;
            st.get_trace_info(&id)
        })
        .await?;
    Ok(Json(json!({"trace": {"trace_info": trace_info_json(&t)}})))
}

fn span_values(spans: &[TraceSpan], trace_id: &str) -> Vec<Value> {
    spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        // written by this module, from a serialized Value
        .filter_map(|s| serde_json::from_str::<Value>(&s.content).ok())
        .collect()
}

/// Full traces (info and spans) for these ids; unknown ids, and those of
/// another workspace than `ws`, are left out.
async fn load_traces(s: &AppState, ws: String, ids: Vec<String>) -> Result<Vec<Value>, ApiError> {
    let (infos, spans) = s
        .db(move |st| {
            let ids = workspace::only_in(ids, |id| trace_in(st, &ws, id))?;
            Ok((st.get_trace_infos(&ids)?, st.get_trace_spans(&ids)?))
        })
        .await?;
    Ok(infos
        .iter()
        .map(|i| {
            json!({"trace_info": trace_info_json(i), "spans": span_values(&spans, &i.trace_id)})
        })
        .collect())
}

/// `GetTrace`: `GET /traces/get?trace_id=…`.
pub async fn get_trace(State(s): State<AppState>, req: Req) -> JsonResult {
    let id = req.nonempty("trace_id")?;
    let mut traces = load_traces(&s, workspace::of(&req), vec![id.clone()]).await?;
    match traces.pop() {
        Some(t) => Ok(Json(json!({ "trace": t }))),
        None => Err(ApiError::not_found(format!(
            "Trace with ID '{id}' not found."
        ))),
    }
}

fn batch_ids(req: &Req) -> Result<Vec<String>, ApiError> {
    let ids = req.str_list("trace_ids")?;
    if ids.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "Too many trace ids: {} given, at most {MAX_BATCH} per call",
            ids.len()
        )));
    }
    Ok(ids)
}

/// `BatchGetTraces`: `GET /traces/batchGet?trace_ids=…` (repeated).
pub async fn batch_get(State(s): State<AppState>, req: Req) -> JsonResult {
    let ids = batch_ids(&req)?;
    let traces = load_traces(&s, workspace::of(&req), ids).await?;
    Ok(Json(json!({ "traces": traces })))
}

/// `BatchGetTraceInfos`: `POST /traces/batchGetInfos`.
pub async fn batch_get_infos(State(s): State<AppState>, req: Req) -> JsonResult {
    let ids = batch_ids(&req)?;
    let ws = workspace::of(&req);
    let infos = s
        .db(move |st| {
            let ids = workspace::only_in(ids, |id| trace_in(st, &ws, id))?;
            st.get_trace_infos(&ids)
        })
        .await?;
    let infos: Vec<Value> = infos.iter().map(trace_info_json).collect();
    Ok(Json(json!({ "trace_infos": infos })))
}

/// `SearchTracesV3` (`locations`) and the v2 form (`experiment_ids`).
pub async fn search(State(s): State<AppState>, req: Req) -> JsonResult {
    let mut experiment_ids = Vec::new();
    if let Some(locs) = req.raw("locations") {
        let Value::Array(locs) = locs else {
            return Err(ApiError::invalid(
                "'locations' must be a list of trace locations",
            ));
        };
        for l in locs {
            experiment_ids.push(location_experiment(l)?);
        }
    }
    for e in req.str_list("experiment_ids")? {
        experiment_ids.push(parse_experiment_id(&e)?);
    }
    if experiment_ids.is_empty() {
        return Err(ApiError::invalid(
            "Search traces needs at least one experiment: 'locations' (or 'experiment_ids') is empty",
        ));
    }
    let q = SearchTraces {
        experiment_ids,
        filter: req.opt_str("filter")?.unwrap_or_default(),
        max_results: req.max_results("max_results", 100, 50_000)?,
        order_by: req.str_list("order_by")?,
        page_token: req.opt_str("page_token")?,
    };
    let ws = workspace::of(&req);
    let page = s
        .db(move |st| {
            // (traces of another workspace's experiments are not there)
            let mut q = q;
            q.experiment_ids =
                workspace::experiments_of(st, &ws, std::mem::take(&mut q.experiment_ids))?;
            if q.experiment_ids.is_empty() {
                return Ok(store::Page {
                    items: Vec::new(),
                    next_page_token: None,
                });
            }
            st.search_traces(&q)
        })
        .await?;
    let mut out = Map::new();
    out.insert(
        "traces".into(),
        Value::Array(page.items.iter().map(trace_info_json).collect()),
    );
    if let Some(t) = page.next_page_token {
        out.insert("next_page_token".into(), json!(t));
    }
    Ok(Json(Value::Object(out)))
}

/// `DeleteTraces`: by ids (`request_ids`, or `trace_ids`) or the oldest up
/// to `max_timestamp_millis` (at most `max_traces` of them).
pub async fn delete_traces(State(s): State<AppState>, req: Req) -> JsonResult {
    let experiment_id = req.experiment_id("experiment_id")?;
    let max_timestamp_millis = req.opt_i64("max_timestamp_millis")?;
    let max_traces = req.opt_i64("max_traces")?;
    let mut trace_ids = req.str_list("request_ids")?;
    trace_ids.extend(req.str_list("trace_ids")?);
    match (max_timestamp_millis, trace_ids.is_empty()) {
        (Some(_), false) | (None, true) => {
            return Err(ApiError::invalid(
                "Exactly one of 'max_timestamp_millis' and 'request_ids' must be specified",
            ));
        }
        _ => {}
    }
    if let Some(n) = max_traces {
        if max_timestamp_millis.is_none() {
            return Err(ApiError::invalid(
                "'max_traces' can only be given with 'max_timestamp_millis'",
            ));
        }
        if n <= 0 {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for 'max_traces': it must be at least 1"
            )));
        }
    }
    let d = DeleteTraces {
        experiment_id,
        max_timestamp_millis,
        max_traces,
        trace_ids,
    };
    let n = workspace::on_experiment(&s, req.workspace(), experiment_id, move |st, _| {
        st.delete_traces(&d)
    })
    .await?;
    Ok(Json(json!({ "traces_deleted": n })))
}

fn tag_key(req: &Req) -> Result<String, ApiError> {
    let key = req.nonempty("key")?;
    if key.len() > 250 {
        return Err(ApiError::invalid(format!(
            "Trace tag key '{}…' is longer than 250 characters",
            key.chars().take(40).collect::<String>()
        )));
    }
    Ok(key)
}

/// `SetTraceTag`: `PATCH /traces/{id}/tags` with `{key, value}`.
pub async fn set_tag(State(s): State<AppState>, Path(id): Path<String>, req: Req) -> JsonResult {
    let key = tag_key(&req)?;
    let value = req.opt_str("value")?.unwrap_or_default();
    let ws = workspace::of(&req);
    s.db(move |st| {
        trace_in(st, &ws, &id)?;
        st.set_trace_tag(&id, &key, &value)
    })
    .await?;
    empty()
}

/// `DeleteTraceTag`: `DELETE /traces/{id}/tags` with `{key}`.
pub async fn delete_tag(State(s): State<AppState>, Path(id): Path<String>, req: Req) -> JsonResult {
    let key = tag_key(&req)?;
    let ws = workspace::of(&req);
    s.db(move |st| {
        trace_in(st, &ws, &id)?;
        st.delete_trace_tag(&id, &key)
    })
    .await?;
    empty()
}

/// `LinkTracesToRun`: `POST /traces/link-to-run` with `{trace_ids, run_id}`.
pub async fn link_to_run(State(s): State<AppState>, req: Req) -> JsonResult {
    let ids = req.str_list("trace_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "Missing value for required parameter 'trace_ids'",
        ));
    }
    if ids.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "Cannot link more than {MAX_BATCH} traces to a run at once ({} given)",
            ids.len()
        )));
    }
    let run_id = req.nonempty("run_id")?;
    let ws = workspace::of(&req);
    s.db(move |st| {
        workspace::run_in(st, &ws, &run_id)?;
        for id in &ids {
            trace_in(st, &ws, id)?;
        }
        st.link_traces_to_run(&ids, &run_id)
    })
    .await?;
    empty()
}

// ------------------------------------------------------------------ OTLP

/// Why an OTLP body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("truncated protobuf message")]
    Truncated,
    #[error("malformed varint")]
    Varint,
    #[error("unsupported protobuf wire type {0}")]
    WireType(u8),
    #[error("field {field} of {message} has the wrong wire type")]
    FieldType { message: &'static str, field: u32 },
    #[error("a string field is not UTF-8")]
    Utf8,
    #[error("values nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("{0}")]
    Json(String),
    #[error("span {0}")]
    Span(String),
}

const MAX_DEPTH: usize = 32;

enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

struct Pb<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Pb<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Pb { buf, pos: 0 }
    }
    fn varint(&mut self) -> Result<u64, OtlpError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(OtlpError::Truncated)?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(OtlpError::Varint)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], OtlpError> {
        let end = self.pos.checked_add(n).ok_or(OtlpError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(OtlpError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, OtlpError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        let w = match (key & 7) as u8 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Wire::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| OtlpError::Truncated)?,
                ))
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| OtlpError::Truncated)?;
                Wire::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Wire::Fixed32(u32::from_le_bytes(
                    b.try_into().map_err(|_| OtlpError::Truncated)?,
                ))
            }
            t => return Err(OtlpError::WireType(t)),
        };
        Ok(Some((field, w)))
    }
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

fn utf8(b: &[u8]) -> Result<String, OtlpError> {
    String::from_utf8(b.to_vec()).map_err(|_| OtlpError::Utf8)
}

fn wrong(message: &'static str, field: u32) -> OtlpError {
    OtlpError::FieldType { message, field }
}

fn pb_any(b: &[u8], depth: usize) -> Result<Value, OtlpError> {
    if depth > MAX_DEPTH {
        return Err(OtlpError::TooDeep(MAX_DEPTH));
    }
    let mut p = Pb::new(b);
    let mut out = Map::new();
    while let Some((f, w)) = p.next()? {
        let (k, v) = match (f, w) {
            (1, Wire::Bytes(b)) => ("string_value", json!(utf8(b)?)),
            (2, Wire::Varint(v)) => ("bool_value", json!(v != 0)),
            (3, Wire::Varint(v)) => ("int_value", json!((v as i64).to_string())),
            (4, Wire::Fixed64(v)) => {
                let f = f64::from_bits(v);
                let v = if f.is_finite() {
                    json!(f)
                } else if f.is_nan() {
                    json!("NaN")
                } else if f > 0.0 {
                    json!("Infinity")
                } else {
                    json!("-Infinity")
                };
                ("double_value", v)
            }
            (5, Wire::Bytes(b)) => {
                let mut values = Vec::new();
                let mut q = Pb::new(b);
                while let Some((f, w)) = q.next()? {
                    match (f, w) {
                        (1, Wire::Bytes(b)) => values.push(pb_any(b, depth + 1)?),
                        (1, _) => return Err(wrong("ArrayValue", 1)),
                        _ => {}
                    }
                }
                ("array_value", json!({ "values": values }))
            }
            (6, Wire::Bytes(b)) => {
                let mut values = Vec::new();
                let mut q = Pb::new(b);
                while let Some((f, w)) = q.next()? {
                    match (f, w) {
                        (1, Wire::Bytes(b)) => values.push(pb_kv(b, depth + 1)?),
                        (1, _) => return Err(wrong("KeyValueList", 1)),
                        _ => {}
                    }
                }
                ("kvlist_value", json!({ "values": values }))
            }
            (7, Wire::Bytes(b)) => ("bytes_value", b64(b)),
            (1..=7, _) => return Err(wrong("AnyValue", f)),
            _ => continue,
        };
        out.insert(k.into(), v);
    }
    Ok(Value::Object(out))
}

fn pb_kv(b: &[u8], depth: usize) -> Result<Value, OtlpError> {
    let mut p = Pb::new(b);
    let mut key = String::new();
    let mut value = json!({});
    while let Some((f, w)) = p.next()? {
        match (f, w) {
            (1, Wire::Bytes(b)) => key = utf8(b)?,
            (2, Wire::Bytes(b)) => value = pb_any(b, depth + 1)?,
            (1 | 2, _) => return Err(wrong("KeyValue", f)),
            _ => {}
        }
    }
    Ok(json!({"key": key, "value": value}))
}

fn pb_attributes(out: &mut Map<String, Value>, b: &[u8]) -> Result<(), OtlpError> {
    let kv = pb_kv(b, 0)?;
    match out
        .entry("attributes")
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(a) => a.push(kv),
        _ => return Err(wrong("attributes", 0)),
    }
    Ok(())
}

fn push(out: &mut Map<String, Value>, key: &str, v: Value) {
    if let Value::Array(a) = out.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
        a.push(v);
    }
}

fn pb_event(b: &[u8]) -> Result<Value, OtlpError> {
    let mut p = Pb::new(b);
    let mut o = Map::new();
    while let Some((f, w)) = p.next()? {
        match (f, w) {
            (1, Wire::Fixed64(v)) => {
                o.insert("time_unix_nano".into(), json!(v.to_string()));
            }
            (2, Wire::Bytes(b)) => {
                o.insert("name".into(), json!(utf8(b)?));
            }
            (3, Wire::Bytes(b)) => pb_attributes(&mut o, b)?,
            (4, Wire::Varint(v)) => {
                o.insert("dropped_attributes_count".into(), json!(v));
            }
            (1..=4, _) => return Err(wrong("Span.Event", f)),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn pb_link(b: &[u8]) -> Result<Value, OtlpError> {
    let mut p = Pb::new(b);
    let mut o = Map::new();
    while let Some((f, w)) = p.next()? {
        match (f, w) {
            (1, Wire::Bytes(b)) => {
                o.insert("trace_id".into(), b64(b));
            }
            (2, Wire::Bytes(b)) => {
                o.insert("span_id".into(), b64(b));
            }
            (3, Wire::Bytes(b)) => {
                o.insert("trace_state".into(), json!(utf8(b)?));
            }
            (4, Wire::Bytes(b)) => pb_attributes(&mut o, b)?,
            (5, Wire::Varint(v)) => {
                o.insert("dropped_attributes_count".into(), json!(v));
            }
            (6, Wire::Fixed32(v)) => {
                o.insert("flags".into(), json!(v));
            }
            (1..=6, _) => return Err(wrong("Span.Link", f)),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn pb_span(b: &[u8]) -> Result<Value, OtlpError> {
    let mut p = Pb::new(b);
    let mut o = Map::new();
    while let Some((f, w)) = p.next()? {
        match (f, w) {
            (1, Wire::Bytes(b)) => {
                o.insert("trace_id".into(), b64(b));
            }
            (2, Wire::Bytes(b)) => {
                o.insert("span_id".into(), b64(b));
            }
            (3, Wire::Bytes(b)) => {
                o.insert("trace_state".into(), json!(utf8(b)?));
            }
            (4, Wire::Bytes(b)) if !b.is_empty() => {
                o.insert("parent_span_id".into(), b64(b));
            }
            (4, Wire::Bytes(_)) => {}
            (5, Wire::Bytes(b)) => {
                o.insert("name".into(), json!(utf8(b)?));
            }
            (6, Wire::Varint(v)) => {
                o.insert("kind".into(), json!(v));
            }
            (7, Wire::Fixed64(v)) => {
                o.insert("start_time_unix_nano".into(), json!(v.to_string()));
            }
            (8, Wire::Fixed64(v)) => {
                o.insert("end_time_unix_nano".into(), json!(v.to_string()));
            }
            (9, Wire::Bytes(b)) => pb_attributes(&mut o, b)?,
            (10, Wire::Varint(v)) => {
                o.insert("dropped_attributes_count".into(), json!(v));
            }
            (11, Wire::Bytes(b)) => push(&mut o, "events", pb_event(b)?),
            (12, Wire::Varint(v)) => {
                o.insert("dropped_events_count".into(), json!(v));
            }
            (13, Wire::Bytes(b)) => push(&mut o, "links", pb_link(b)?),
            (14, Wire::Varint(v)) => {
                o.insert("dropped_links_count".into(), json!(v));
            }
            (15, Wire::Bytes(b)) => {
                let mut q = Pb::new(b);
                let mut st = Map::new();
                while let Some((f, w)) = q.next()? {
                    match (f, w) {
                        (2, Wire::Bytes(b)) => {
                            st.insert("message".into(), json!(utf8(b)?));
                        }
                        (3, Wire::Varint(v)) => {
                            st.insert("code".into(), json!(v));
                        }
                        (2 | 3, _) => return Err(wrong("Status", f)),
                        _ => {}
                    }
                }
                o.insert("status".into(), Value::Object(st));
            }
            (16, Wire::Fixed32(v)) => {
                o.insert("flags".into(), json!(v));
            }
            (1..=16, _) => return Err(wrong("Span", f)),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

/// One `ResourceSpans`: its resource attributes and its spans (OTLP JSON, snake_case).
#[derive(Debug, Default)]
pub struct ResourceSpans {
    pub resource_attributes: Vec<Value>,
    pub spans: Vec<Value>,
}

/// An `ExportTraceServiceRequest` in protobuf.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<ResourceSpans>, OtlpError> {
    let mut out = Vec::new();
    let mut p = Pb::new(body);
    while let Some((f, w)) = p.next()? {
        let b = match (f, w) {
            (1, Wire::Bytes(b)) => b,
            (1, _) => return Err(wrong("ExportTraceServiceRequest", 1)),
            _ => continue,
        };
        let mut rs = ResourceSpans::default();
        let mut q = Pb::new(b);
        while let Some((f, w)) = q.next()? {
            match (f, w) {
                (1, Wire::Bytes(b)) => {
                    let mut r = Pb::new(b);
                    while let Some((f, w)) = r.next()? {
                        match (f, w) {
                            (1, Wire::Bytes(b)) => rs.resource_attributes.push(pb_kv(b, 0)?),
                            (1, _) => return Err(wrong("Resource", 1)),
                            _ => {}
                        }
                    }
                }
                (2, Wire::Bytes(b)) => {
                    let mut r = Pb::new(b);
                    while let Some((f, w)) = r.next()? {
                        match (f, w) {
                            (2, Wire::Bytes(b)) => rs.spans.push(pb_span(b)?),
                            (2, _) => return Err(wrong("ScopeSpans", 2)),
                            _ => {}
                        }
                    }
                }
                (1 | 2, _) => return Err(wrong("ResourceSpans", f)),
                _ => {}
            }
        }
        out.push(rs);
    }
    Ok(out)
}

fn snake(k: &str) -> String {
    let mut s = String::with_capacity(k.len() + 4);
    for c in k.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Object keys to snake_case, all the way down (OTLP JSON is camelCase;
/// attribute keys are values, never object keys, so they are kept).
fn snake_keys(v: Value, depth: usize) -> Result<Value, OtlpError> {
    if depth > MAX_DEPTH * 3 {
        return Err(OtlpError::TooDeep(MAX_DEPTH));
    }
    Ok(match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| Ok((snake(&k), snake_keys(v, depth + 1)?)))
                .collect::<Result<_, OtlpError>>()?,
        ),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|v| snake_keys(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// OTLP JSON ids are hex; stored spans carry them base64 (protobuf's JSON).
fn ids_to_base64(o: &mut Map<String, Value>) -> Result<(), OtlpError> {
    for k in ["trace_id", "span_id", "parent_span_id"] {
        match o.get(k) {
            Some(Value::String(s)) if s.is_empty() => {
                o.remove(k);
            }
            Some(Value::String(s)) => {
                let b = hex_decode(s)
                    .ok_or_else(|| OtlpError::Json(format!("'{k}' is not a hex string: '{s}'")))?;
                o.insert(k.into(), b64(&b));
            }
            Some(Value::Null) | None => {}
            Some(_) => return Err(OtlpError::Json(format!("'{k}' must be a hex string"))),
        }
    }
    Ok(())
}

/// An `ExportTraceServiceRequest` in OTLP's JSON encoding.
pub fn decode_json(body: &[u8]) -> Result<Vec<ResourceSpans>, OtlpError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| OtlpError::Json(format!("malformed JSON: {e}")))?;
    let v = snake_keys(v, 0)?;
    let list = |v: Option<&Value>, what: &str| -> Result<Vec<Value>, OtlpError> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(OtlpError::Json(format!("'{what}' must be a list"))),
        }
    };
    let mut out = Vec::new();
    for rs in list(v.get("resource_spans"), "resourceSpans")? {
        let mut r = ResourceSpans {
            resource_attributes: list(rs.pointer("/resource/attributes"), "resource.attributes")?,
            spans: Vec::new(),
        };
        for ss in list(rs.get("scope_spans"), "scopeSpans")? {
            for span in list(ss.get("spans"), "spans")? {
                let Value::Object(mut o) = span else {
                    return Err(OtlpError::Json("a span must be an object".into()));
                };
                ids_to_base64(&mut o)?;
                if let Some(Value::Array(links)) = o.get_mut("links") {
                    for l in links {
                        if let Value::Object(l) = l {
                            ids_to_base64(l)?;
                        }
                    }
                }
                r.spans.push(Value::Object(o));
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// An OTLP `AnyValue` (protobuf JSON) as the plain JSON value it holds.
fn any_plain(v: &Value) -> Value {
    let Value::Object(o) = v else {
        return Value::Null;
    };
    let Some((k, inner)) = o.iter().next() else {
        return Value::Null;
    };
    match k.as_str() {
        "int_value" => match inner {
            Value::String(s) => s.parse::<i64>().map(|n| json!(n)).unwrap_or(inner.clone()),
            other => other.clone(),
        },
        "array_value" => Value::Array(
            inner
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(any_plain).collect())
                .unwrap_or_default(),
        ),
        "kvlist_value" => Value::Object(
            inner
                .get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|kv| {
                            Some((
                                kv.get("key")?.as_str()?.to_string(),
                                kv.get("value").map(any_plain).unwrap_or(Value::Null),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => inner.clone(),
    }
}

fn attribute<'v>(span: &'v Value, key: &str) -> Option<&'v Value> {
    span.get("attributes")?
        .as_array()?
        .iter()
        .find(|kv| kv.get("key").and_then(Value::as_str) == Some(key))?
        .get("value")
}

fn preview(v: Option<&Value>) -> Option<String> {
    let plain = any_plain(v?);
    let s = match plain {
        Value::Null => return None,
        Value::String(s) => s,
        other => other.to_string(),
    };
    Some(s.chars().take(PREVIEW_CHARS).collect())
}

fn id_hex(span: &Value, key: &str, len: usize) -> Result<Option<String>, OtlpError> {
    let Some(v) = span.get(key) else {
        return Ok(None);
    };
    let s = v
        .as_str()
        .ok_or_else(|| OtlpError::Span(format!("'{key}' is not a string")))?;
    let b = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| OtlpError::Span(format!("'{key}' is not valid")))?;
    if b.is_empty() {
        return Ok(None);
    }
    if b.len() != len {
        return Err(OtlpError::Span(format!(
            "'{key}' must be {len} bytes, got {}",
            b.len()
        )));
    }
    Ok(Some(b.iter().map(|x| format!("{x:02x}")).collect()))
}

fn nanos(span: &Value, key: &str) -> Result<Option<i64>, OtlpError> {
    match span.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| OtlpError::Span(format!("'{key}' is not a time in nanoseconds"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| OtlpError::Span(format!("'{key}' is not a time in nanoseconds"))),
        Some(_) => Err(OtlpError::Span(format!(
            "'{key}' is not a time in nanoseconds"
        ))),
    }
}

/// A plain JSON value as an OTLP `AnyValue` (protobuf JSON).
fn json_any(v: Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "bool_value": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "int_value": i.to_string() }),
            None => json!({ "double_value": n.as_f64().unwrap_or(0.0) }),
        },
        Value::String(s) => json!({ "string_value": s }),
        Value::Array(a) => {
            json!({ "array_value": { "values": a.into_iter().map(json_any).collect::<Vec<_>>() } })
        }
        Value::Object(o) => json!({ "kvlist_value": { "values": o
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": json_any(v)}))
            .collect::<Vec<_>>() } }),
    }
}

/// MLflow's server reads a string attribute holding JSON text of a string,
/// an object or a list as that value (`sanitize_attributes`: OTLP producers
/// send inputs and outputs serialized); so does this one, for the same spans
/// to come back the same.
fn unwrap_json_strings(span: &mut Value) {
    let Some(Value::Array(attrs)) = span.get_mut("attributes") else {
        return;
    };
    for kv in attrs {
        let Some(value) = kv.get_mut("value") else {
            continue;
        };
        let Some(Value::String(s)) = value.get("string_value") else {
            continue;
        };
        if let Ok(parsed @ (Value::String(_) | Value::Object(_) | Value::Array(_))) =
            serde_json::from_str::<Value>(s)
        {
            *value = json_any(parsed);
        }
    }
}

/// A count in a usage object: a number, or a string of one.
fn count(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The span's own token usage: MLflow's `mlflow.chat.tokenUsage` attribute, else OpenTelemetry's
/// GenAI conventions (`gen_ai.usage.input_tokens` / `output_tokens`); `None` when it reports none.
fn token_usage(span: &Value) -> Option<TokenUsage> {
    if let Some(Value::Object(o)) = attribute(span, "mlflow.chat.tokenUsage").map(any_plain) {
        let (i, out) = (count(o.get("input_tokens")), count(o.get("output_tokens")));
        let total = count(o.get("total_tokens"));
        if i.is_some() || out.is_some() || total.is_some() {
            let (i, out) = (i.unwrap_or(0), out.unwrap_or(0));
            return Some(TokenUsage {
                input_tokens: i,
                output_tokens: out,
                total_tokens: total.unwrap_or(i.saturating_add(out)),
            });
        }
    }
    let genai = |k: &str| count(attribute(span, k).map(any_plain).as_ref());
    let (i, out) = (
        genai("gen_ai.usage.input_tokens"),
        genai("gen_ai.usage.output_tokens"),
    );
    (i.is_some() || out.is_some()).then(|| {
        let (i, out) = (i.unwrap_or(0), out.unwrap_or(0));
        TokenUsage {
            input_tokens: i,
            output_tokens: out,
            total_tokens: i.saturating_add(out),
        }
    })
}

/// A decoded OTLP span as a store span.
pub fn to_store_span(mut span: Value) -> Result<TraceSpan, OtlpError> {
    unwrap_json_strings(&mut span);
    let span = &span;
    let trace_hex =
        id_hex(span, "trace_id", 16)?.ok_or_else(|| OtlpError::Span("has no trace_id".into()))?;
    let span_id =
        id_hex(span, "span_id", 8)?.ok_or_else(|| OtlpError::Span("has no span_id".into()))?;
    let parent_span_id = id_hex(span, "parent_span_id", 8)?;
    let name = span
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let start = nanos(span, "start_time_unix_nano")?.unwrap_or(0);
    let end = nanos(span, "end_time_unix_nano")?.filter(|e| *e > 0);
    let status = match span.pointer("/status/code") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => "OK",
        Some(Value::Number(n)) if n.as_u64() == Some(2) => "ERROR",
        Some(Value::String(s)) if s == "STATUS_CODE_OK" => "OK",
        Some(Value::String(s)) if s == "STATUS_CODE_ERROR" => "ERROR",
        _ => "UNSET",
    };
    let span_type = attribute(span, "mlflow.spanType")
        .map(any_plain)
        .and_then(|v| v.as_str().map(|s| s.trim_matches('"').to_string()));
    let root = parent_span_id.is_none();
    Ok(TraceSpan {
        trace_id: format!("tr-{trace_hex}"),
        span_id,
        parent_span_id,
        name,
        span_type,
        status: status.into(),
        start_time_ns: start,
        end_time_ns: end,
        content: span.to_string(),
        request_preview: root
            .then(|| preview(attribute(span, "mlflow.spanInputs")))
            .flatten(),
        response_preview: root
            .then(|| preview(attribute(span, "mlflow.spanOutputs")))
            .flatten(),
        token_usage: token_usage(span),
    })
}

fn otlp_bad(msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("Invalid OpenTelemetry format: {msg}"))
}

/// A `gzip` or `deflate` (zlib or raw) OTLP body, at most `limit` bytes once inflated.
fn decompress(encoding: &str, body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    fn inflate(r: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.take(limit as u64 + 1).read_to_end(&mut out)?;
        Ok(out)
    }
    let out = match encoding.trim() {
        "identity" => Ok(body.to_vec()),
        "gzip" | "x-gzip" => inflate(flate2::read::GzDecoder::new(body), limit),
        "deflate" => inflate(flate2::read::ZlibDecoder::new(body), limit)
            .or_else(|_| inflate(flate2::read::DeflateDecoder::new(body), limit)),
        other => {
            return Err(ApiError::new(
                crate::error::ErrorCode::UnsupportedMediaType,
                format!("Unsupported Content-Encoding '{other}': use gzip, deflate or none"),
            ));
        }
    }
    .map_err(|e| ApiError::invalid(format!("Failed to decompress the {encoding} body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::new(
            crate::error::ErrorCode::PayloadTooLarge,
            format!(
                "The decompressed body exceeds the server's limit of {limit} bytes (--max-request-bytes)"
            ),
        ));
    }
    Ok(out)
}

/// OTLP/HTTP trace export (`POST /v1/traces`), as MLflow's server: the
/// experiment in `x-mlflow-experiment-id`, protobuf or JSON bodies.
pub async fn otlp_export(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match otlp(s, ws, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn otlp(s: AppState, ws: Ws, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ct = header(header::CONTENT_TYPE.as_str()).map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let is_json = match ct.as_deref() {
        Some("application/x-protobuf") => false,
        Some("application/json") => true,
        other => {
            return Err(ApiError::new(
                crate::error::ErrorCode::UnsupportedMediaType,
                format!(
                    "Invalid Content-Type: {}. Expected: application/x-protobuf or application/json",
                    other.unwrap_or("none")
                ),
            ));
        }
    };
    let body = match header(header::CONTENT_ENCODING.as_str()).map(str::to_ascii_lowercase) {
        None => body.to_vec(),
        Some(enc) => decompress(&enc, &body, s.max_request_bytes)?,
    };
    let exp = header(EXPERIMENT_HEADER).ok_or_else(|| {
        ApiError::invalid(format!(
            "Missing header '{EXPERIMENT_HEADER}': name the experiment the spans belong to"
        ))
    })?;
    let experiment_id = parse_experiment_id(exp)?;
    let run_id = header(RUN_HEADER)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let decoded = if is_json {
        decode_json(&body)
    } else {
        decode_protobuf(&body)
    }
    .map_err(otlp_bad)?;
    if decoded.iter().all(|r| r.spans.is_empty()) {
        return Err(otlp_bad("no spans found"));
    }
    let mut batches = Vec::new();
    for rs in decoded {
        let mut resource_tags = Vec::new();
        for kv in &rs.resource_attributes {
            let Some(k) = kv.get("key").and_then(Value::as_str) else {
                continue;
            };
            if k.starts_with("telemetry.sdk.") || k.starts_with("mlflow.") || k.len() > 250 {
                continue;
            }
            let v = match kv.get("value").map(any_plain) {
                Some(Value::String(s)) => s,
                Some(Value::Null) | None => continue,
                Some(other) => other.to_string(),
            };
            resource_tags.push(Tag::new(k, v));
        }
        let spans = rs
            .spans
            .into_iter()
            .map(to_store_span)
            .collect::<Result<Vec<_>, _>>()
            .map_err(otlp_bad)?;
        batches.push(LogSpans {
            experiment_id,
            spans,
            resource_tags,
        });
    }
    let roots: Vec<String> = batches
        .iter()
        .flat_map(|b| &b.spans)
        .filter(|s| s.parent_span_id.is_none())
        .map(|s| s.trace_id.clone())
        .collect();
    s.db(move |st| {
        workspace::experiment_in(st, &ws.0, experiment_id)?;
        // spans of a trace another workspace holds answer as a missing trace
        let mut seen = std::collections::HashSet::new();
        for sp in batches.iter().flat_map(|b| &b.spans) {
            if seen.insert(sp.trace_id.as_str()) && st.trace_workspace(&sp.trace_id).is_ok() {
                trace_in(st, &ws.0, &sp.trace_id)?;
            }
        }
        for b in &batches {
            st.log_spans(b)?;
        }
        // as MLflow: traces whose root arrived are linked to the run named, best effort
        // (a run of another workspace is not there)
        if let Some(run) = run_id
            && workspace::run_in(st, &ws.0, &run).is_ok()
            && !roots.is_empty()
            && let Err(e) = st.link_traces_to_run(&roots, &run)
        {
            tracing::warn!(run, error = %e, "could not link OTLP traces to the run");
        }
        Ok(())
    })
    .await?;
    Ok(if is_json {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::<u8>::new(),
        )
            .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_as_protobuf_json() {
        assert_eq!(
            format_timestamp(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20.123456+01:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("2023-13-14T22:13:20Z"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(format_duration(1500), "1.500s");
        assert_eq!(format_duration(2000), "2s");
        assert_eq!(parse_duration("1.5s"), Some(1500));
        assert_eq!(parse_duration("0.000001s"), Some(0));
        assert_eq!(parse_duration("12"), None);
    }

    /// A protobuf span written by hand: trace id, span id, name, start, an int attribute.
    #[test]
    fn decodes_a_protobuf_span() {
        let mut span = vec![0x0a, 16];
        span.extend([0xab; 16]);
        span.extend([0x12, 8]);
        span.extend([0x01; 8]);
        span.extend([0x2a, 1, b'f']);
        span.push(0x39);
        span.extend(5_000_000u64.to_le_bytes());
        // attribute {key: "n", value: {int_value: 7}}
        span.extend([0x4a, 7, 0x0a, 1, b'n', 0x12, 2, 0x18, 7]);
        let mut scope = vec![0x12, span.len() as u8];
        scope.extend(&span);
        let mut rs = vec![0x12, scope.len() as u8];
        rs.extend(&scope);
        let mut req = vec![0x0a, rs.len() as u8];
        req.extend(&rs);
        let d = decode_protobuf(&req).unwrap();
        let s = to_store_span(d[0].spans[0].clone()).unwrap();
        assert_eq!(s.trace_id, format!("tr-{}", "ab".repeat(16)));
        assert_eq!(s.span_id, "0101010101010101");
        assert_eq!((s.name.as_str(), s.start_time_ns), ("f", 5_000_000));
        assert_eq!(
            attribute(&d[0].spans[0], "n").map(any_plain),
            Some(json!(7))
        );
        assert!(decode_protobuf(&req[..req.len() - 3]).is_err());
        assert!(decode_protobuf(&[0x0b]).is_err());
    }

    #[test]
    fn inflates_compressed_bodies_only_within_the_limit() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&[b'a'; 10_000]).unwrap();
        let z = e.finish().unwrap();
        assert_eq!(decompress("gzip", &z, 10_000).unwrap().len(), 10_000);
        assert!(
            decompress("gzip", &z, 9_999).is_err(),
            "a bomb stops at the limit"
        );
        assert!(decompress("gzip", b"plain", 100).is_err());
        assert!(decompress("br", &z, 100).is_err());
    }
}
