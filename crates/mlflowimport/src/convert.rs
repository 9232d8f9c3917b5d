//! MLflow's stored JSON (a span's `content`, an assessment's columns) turned
//! into the forms Atelier's server keeps and answers with: a span as OTLP
//! JSON with MLflow's field names (ids base64, times as strings, attributes
//! as `{key, value: AnyValue}`), an assessment as MLflow's `Assessment` JSON.

use base64::Engine;
use serde_json::{Map, Value, json};

/// A JSON value as OTLP's `AnyValue` in JSON, as MLflow's client encodes a
/// span attribute (`_set_otel_proto_anyvalue`): integers as `int_value`
/// (a string, as proto3 JSON writes int64), other numbers as `double_value`.
pub fn any_value(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "bool_value": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "int_value": i.to_string() }),
            None => json!({ "double_value": n.as_f64().unwrap_or(0.0) }),
        },
        Value::String(s) => json!({ "string_value": s }),
        Value::Array(a) => {
            json!({ "array_value": { "values": a.iter().map(any_value).collect::<Vec<_>>() } })
        }
        Value::Object(o) => json!({ "kvlist_value": { "values": o
            .iter()
            .map(|(k, v)| json!({"key": k, "value": any_value(v)}))
            .collect::<Vec<_>>() } }),
    }
}

/// Attributes as OTLP's list of `{key, value}`. `serialized`: MLflow keeps
/// span attributes as JSON text (read back as the value it encodes; text
/// that is not JSON stays a string); event attributes are plain values.
fn attributes(v: Option<&Value>, serialized: bool) -> Vec<Value> {
    let Some(Value::Object(o)) = v else {
        return Vec::new();
    };
    o.iter()
        .map(|(k, v)| {
            let value = match (serialized, v) {
                (true, Value::String(s)) => match serde_json::from_str::<Value>(s) {
                    Ok(parsed) => any_value(&parsed),
                    Err(_) => any_value(v),
                },
                _ => any_value(v),
            };
            json!({ "key": k, "value": value })
        })
        .collect()
}

fn nanos_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Number(n)) => n.as_i64().map(|i| i.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn hex_to_base64(hex: &str) -> Option<String> {
    let hex = hex.trim_start_matches("0x");
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// MLflow's span `content` (its `Span.to_dict()` JSON) as the OTLP JSON
/// Atelier's server stores and answers `GetTrace` with. `None` when the
/// content is not a JSON object.
pub fn span_content(mlflow: &str) -> Option<String> {
    let parsed: Value = serde_json::from_str(mlflow).ok()?;
    let src = parsed.as_object()?;
    let mut o = Map::new();
    for key in ["trace_id", "span_id", "parent_span_id"] {
        if let Some(Value::String(s)) = src.get(key)
            && !s.is_empty()
        {
            o.insert(key.into(), json!(s));
        }
    }
    o.insert(
        "name".into(),
        src.get("name").cloned().unwrap_or_else(|| json!("")),
    );
    for key in ["start_time_unix_nano", "end_time_unix_nano"] {
        if let Some(t) = nanos_text(src.get(key)) {
            o.insert(key.into(), json!(t));
        }
    }
    let mut status = Map::new();
    let code = match parsed.pointer("/status/code") {
        Some(Value::String(s)) if s == "STATUS_CODE_OK" || s == "OK" => 1,
        Some(Value::String(s)) if s == "STATUS_CODE_ERROR" || s == "ERROR" => 2,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    };
    if code != 0 {
        status.insert("code".into(), json!(code));
    }
    if let Some(Value::String(m)) = parsed.pointer("/status/message")
        && !m.is_empty()
    {
        status.insert("message".into(), json!(m));
    }
    o.insert("status".into(), Value::Object(status));
    let attrs = attributes(src.get("attributes"), true);
    if !attrs.is_empty() {
        o.insert("attributes".into(), Value::Array(attrs));
    }
    if let Some(Value::Array(events)) = src.get("events") {
        let events: Vec<Value> = events
            .iter()
            .map(|e| {
                let mut ev = Map::new();
                ev.insert(
                    "name".into(),
                    e.get("name").cloned().unwrap_or_else(|| json!("")),
                );
                if let Some(t) = nanos_text(e.get("time_unix_nano").or_else(|| e.get("timestamp")))
                {
                    ev.insert("time_unix_nano".into(), json!(t));
                }
                let a = attributes(e.get("attributes"), false);
                if !a.is_empty() {
                    ev.insert("attributes".into(), Value::Array(a));
                }
                Value::Object(ev)
            })
            .collect();
        if !events.is_empty() {
            o.insert("events".into(), Value::Array(events));
        }
    }
    if let Some(Value::Array(links)) = src.get("links") {
        let links: Vec<Value> = links
            .iter()
            .filter_map(|l| {
                let trace = l.get("trace_id")?.as_str()?;
                let trace = hex_to_base64(trace.rsplit('/').next()?.trim_start_matches("tr-"))?;
                let span = hex_to_base64(l.get("span_id")?.as_str()?)?;
                let mut link = Map::new();
                link.insert("trace_id".into(), json!(trace));
                link.insert("span_id".into(), json!(span));
                let a = attributes(l.get("attributes"), false);
                if !a.is_empty() {
                    link.insert("attributes".into(), Value::Array(a));
                }
                Some(Value::Object(link))
            })
            .collect();
        if !links.is_empty() {
            o.insert("links".into(), Value::Array(links));
        }
    }
    Some(Value::Object(o).to_string())
}

fn token_count(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A span's own token usage from MLflow's span `content`: its
/// `mlflow.chat.tokenUsage` attribute, else OpenTelemetry's GenAI
/// `gen_ai.usage.input_tokens` / `output_tokens` (as the server reads them
/// from OTLP); `None` when it reports none.
pub fn span_token_usage(mlflow: &str) -> Option<store::TokenUsage> {
    let parsed: Value = serde_json::from_str(mlflow).ok()?;
    let attrs = parsed.get("attributes")?.as_object()?;
    let attr = |k: &str| -> Option<Value> {
        match attrs.get(k)? {
            Value::String(s) => serde_json::from_str(s).ok().or_else(|| Some(json!(s))),
            other => Some(other.clone()),
        }
    };
    if let Some(Value::Object(o)) = attr("mlflow.chat.tokenUsage") {
        let (i, out) = (
            token_count(o.get("input_tokens")),
            token_count(o.get("output_tokens")),
        );
        let total = token_count(o.get("total_tokens"));
        if i.is_some() || out.is_some() || total.is_some() {
            let (i, out) = (i.unwrap_or(0), out.unwrap_or(0));
            return Some(store::TokenUsage {
                input_tokens: i,
                output_tokens: out,
                total_tokens: total.unwrap_or(i.saturating_add(out)),
            });
        }
    }
    let i = token_count(attr("gen_ai.usage.input_tokens").as_ref());
    let out = token_count(attr("gen_ai.usage.output_tokens").as_ref());
    (i.is_some() || out.is_some()).then(|| {
        let (i, out) = (i.unwrap_or(0), out.unwrap_or(0));
        store::TokenUsage {
            input_tokens: i,
            output_tokens: out,
            total_tokens: i.saturating_add(out),
        }
    })
}

/// Epoch milliseconds as protobuf's JSON `Timestamp` (RFC 3339, UTC, ms).
pub fn timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = tabular::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

/// One row of MLflow's `assessments` table.
#[derive(Debug, Clone, Default)]
pub struct AssessmentRow {
    pub assessment_id: String,
    pub trace_id: String,
    pub name: String,
    pub assessment_type: String,
    pub value: String,
    pub error: Option<String>,
    pub created_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub source_type: String,
    pub source_id: Option<String>,
    pub span_id: Option<String>,
    pub rationale: Option<String>,
    pub overrides: Option<String>,
    pub valid: bool,
    pub metadata: Option<String>,
}

/// An assessment as MLflow's `Assessment` JSON (what MLflow's server answers
/// for it: `Assessment.to_proto`), or `None` for a kind Atelier does not keep
/// (issue references).
pub fn assessment_content(a: &AssessmentRow) -> Option<String> {
    let value: Value = serde_json::from_str(&a.value).unwrap_or(Value::Null);
    let mut o = Map::new();
    o.insert("assessment_id".into(), json!(a.assessment_id));
    o.insert("assessment_name".into(), json!(a.name));
    o.insert("trace_id".into(), json!(a.trace_id));
    let mut source = Map::new();
    source.insert("source_type".into(), json!(a.source_type));
    if let Some(id) = &a.source_id {
        source.insert("source_id".into(), json!(id));
    }
    o.insert("source".into(), Value::Object(source));
    o.insert("create_time".into(), json!(timestamp(a.created_timestamp)));
    o.insert(
        "last_update_time".into(),
        json!(timestamp(a.last_updated_timestamp)),
    );
    match a.assessment_type.as_str() {
        "feedback" => {
            let mut f = Map::new();
            f.insert("value".into(), value);
            if let Some(Ok(Value::Object(e))) =
                a.error.as_deref().map(serde_json::from_str::<Value>)
            {
                let e: Map<String, Value> = e.into_iter().filter(|(_, v)| !v.is_null()).collect();
                f.insert("error".into(), Value::Object(e));
            }
            o.insert("feedback".into(), Value::Object(f));
        }
        "expectation" => {
            let e = match value {
                v @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {
                    json!({ "value": v })
                }
                _ => json!({ "serialized_value": {
                    "serialization_format": "JSON_FORMAT",
                    "value": a.value,
                } }),
            };
            o.insert("expectation".into(), e);
        }
        _ => return None,
    }
    if let Some(s) = &a.span_id {
        o.insert("span_id".into(), json!(s));
    }
    if let Some(r) = &a.rationale {
        o.insert("rationale".into(), json!(r));
    }
    if let Some(Ok(Value::Object(m))) = a.metadata.as_deref().map(serde_json::from_str::<Value>)
        && !m.is_empty()
    {
        let m: Map<String, Value> = m
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, Value::String(s))
            })
            .collect();
        o.insert("metadata".into(), Value::Object(m));
    }
    if let Some(ov) = &a.overrides
        && !ov.is_empty()
    {
        o.insert("overrides".into(), json!(ov));
    }
    o.insert("valid".into(), json!(a.valid));
    Some(Value::Object(o).to_string())
}

/// A float as Python's `repr` writes it (what `json.dumps` puts in MLflow's
/// cost metadata): shortest round-trip digits, exponent form below 1e-4 and
/// from 1e16.
pub fn py_float(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{v:e}"); // e.g. "1.5e-5", "-2e16"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let plain = format!("{v}");
    if plain.contains('.') {
        plain
    } else {
        format!("{plain}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_becomes_otlp_json_with_decoded_attributes() {
        let src = r#"{"trace_id": "TyPHpamEnF2XGBw9t+Fxlg==", "span_id": "E2KFwL7XzF0=", "parent_span_id": null,
            "name": "inner", "start_time_unix_nano": 1796575127695474491, "end_time_unix_nano": 1796575127695657001,
            "events": [{"name": "ev", "time_unix_nano": 5, "attributes": {"n": 1}}],
            "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
            "attributes": {"mlflow.traceRequestId": "\"tr-1\"", "mlflow.spanInputs": "{\"x\": 3}", "w": "0.5", "bad": "not json"},
            "links": []}"#;
        let v: Value = serde_json::from_str(&span_content(src).unwrap()).unwrap();
        assert!(v.get("parent_span_id").is_none());
        assert_eq!(v["start_time_unix_nano"], "1796575127695474491");
        assert_eq!(v["status"], json!({"code": 2, "message": "boom"}));
        let attrs = v["attributes"].as_array().unwrap();
        let get = |k: &str| attrs.iter().find(|a| a["key"] == k).unwrap()["value"].clone();
        assert_eq!(
            get("mlflow.traceRequestId"),
            json!({"string_value": "tr-1"})
        );
        assert_eq!(
            get("mlflow.spanInputs"),
            json!({"kvlist_value": {"values": [{"key": "x", "value": {"int_value": "3"}}]}})
        );
        assert_eq!(get("w"), json!({"double_value": 0.5}));
        assert_eq!(get("bad"), json!({"string_value": "not json"}));
        assert_eq!(
            v["events"][0]["attributes"][0]["value"],
            json!({"int_value": "1"})
        );
    }

    #[test]
    fn a_span_reports_its_token_usage() {
        let src = r#"{"attributes": {"mlflow.chat.tokenUsage": "{\"input_tokens\": 3, \"output_tokens\": 2}"}}"#;
        assert_eq!(
            span_token_usage(src),
            Some(store::TokenUsage {
                input_tokens: 3,
                output_tokens: 2,
                total_tokens: 5
            })
        );
        let genai = r#"{"attributes": {"gen_ai.usage.input_tokens": "7"}}"#;
        assert_eq!(span_token_usage(genai).map(|u| u.total_tokens), Some(7));
        assert_eq!(span_token_usage(r#"{"attributes": {"x": "1"}}"#), None);
    }

    #[test]
    fn assessments_read_as_mlflow_answers_them() {
        let row = AssessmentRow {
            assessment_id: "a-1".into(),
            trace_id: "tr-1".into(),
            name: "answer".into(),
            assessment_type: "expectation".into(),
            value: "{\"r\": 6}".into(),
            created_timestamp: 1_796_575_128_780,
            last_updated_timestamp: 1_796_575_128_780,
            source_type: "HUMAN".into(),
            source_id: Some("default".into()),
            valid: true,
            ..Default::default()
        };
        let v: Value = serde_json::from_str(&assessment_content(&row).unwrap()).unwrap();
        assert_eq!(v["expectation"]["serialized_value"]["value"], "{\"r\": 6}");
        assert_eq!(v["create_time"], "2026-12-06T16:38:48.780Z");
        let fb = AssessmentRow {
            assessment_type: "feedback".into(),
            value: "0.5".into(),
            ..row.clone()
        };
        let v: Value = serde_json::from_str(&assessment_content(&fb).unwrap()).unwrap();
        assert_eq!(v["feedback"]["value"], 0.5);
        let issue = AssessmentRow {
            assessment_type: "issue".into(),
            ..row
        };
        assert!(assessment_content(&issue).is_none());
    }

    #[test]
    fn floats_print_as_python_does() {
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(3.0), "3.0");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(1.5e16), "1.5e+16");
        assert_eq!(py_float(123456.789), "123456.789");
    }
}
