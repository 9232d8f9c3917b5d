//! Captured payloads back into rows: the requests an endpoint received (as
//! records by column name, for the data-quality check) and the predictions
//! it answered (for model quality), in every format the endpoint speaks.

use base64::Engine;
use serde_json::{Map, Value};
use serving::capture::CaptureData;

fn text(d: &CaptureData) -> Result<String, String> {
    if d.encoding.eq_ignore_ascii_case("BASE64") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(d.data.as_bytes())
            .map_err(|e| format!("a BASE64 capture that does not decode: {e}"))?;
        String::from_utf8(bytes).map_err(|_| "a captured payload that is not UTF-8".to_string())
    } else {
        Ok(d.data.clone())
    }
}

fn is_csv(ct: &str) -> bool {
    let ct = ct.to_ascii_lowercase();
    ct.contains("csv")
}
fn is_jsonlines(ct: &str) -> bool {
    let ct = ct.to_ascii_lowercase();
    ct.contains("jsonlines") || ct.contains("jsonl") || ct.contains("x-ndjson")
}

fn csv_records(body: &str) -> Result<Vec<Vec<String>>, String> {
    // Without a quote there is nothing to unquote: lines and commas, as the
    // csv crate would read them (blank lines skipped; \r, \n or \r\n end a
    // record). An execution reads every request of its window this way, and
    // building a csv reader per request dominated a 1-hour execution.
    if !body.contains('"') {
        return Ok(body
            .split(['\n', '\r'])
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect());
    }
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes());
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("captured CSV: {e}"))?;
        out.push(rec.iter().map(str::to_string).collect());
    }
    Ok(out)
}

fn by_position(values: Vec<Value>, columns: &[String]) -> Map<String, Value> {
    columns.iter().cloned().zip(values).collect()
}

fn cell(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

fn record_of(v: Value, columns: &[String]) -> Option<Map<String, Value>> {
    match v {
        Value::Object(mut o) => match o.remove("features") {
            Some(Value::Array(a)) => Some(by_position(a, columns)),
            Some(other) => {
                o.insert("features".into(), other);
                Some(o)
            }
            None => Some(o),
        },
        Value::Array(a) => Some(by_position(a, columns)),
        _ => None,
    }
}

/// The rows of one captured request as records by column name; a CSV
/// without a header and lists of values take `columns`' order.
pub fn input_records(
    d: &CaptureData,
    columns: &[String],
) -> Result<Vec<Map<String, Value>>, String> {
    let body = text(d)?;
    if is_csv(&d.observed_content_type) {
        let mut rows = csv_records(&body)?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let header: Option<Vec<String>> = {
            let first = &rows[0];
            let names: std::collections::HashSet<&str> =
                columns.iter().map(String::as_str).collect();
            (!first.is_empty() && first.iter().all(|f| names.contains(f.as_str())))
                .then(|| first.clone())
        };
        let names = match header {
            Some(h) => {
                rows.remove(0);
                h
            }
            None => columns.to_vec(),
        };
        return Ok(rows
            .into_iter()
            .map(|r| {
                names
                    .iter()
                    .cloned()
                    .zip(r.iter().map(|s| cell(s)))
                    .collect()
            })
            .collect());
    }
    let values: Vec<Value> = if is_jsonlines(&d.observed_content_type) {
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("captured JSON line: {e}")))
            .collect::<Result<_, _>>()?
    } else {
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("captured JSON: {e}"))?;
        match v {
            Value::Object(mut o) => match o.remove("instances") {
                Some(Value::Array(a)) => a,
                Some(_) => return Err("captured JSON: \"instances\" is not a list".into()),
                None => vec![Value::Object(o)],
            },
            Value::Array(a) if a.iter().all(|x| !x.is_array() && !x.is_object()) => {
                vec![Value::Array(a)]
            }
            Value::Array(a) => a,
            _ => return Err("captured JSON is neither a record nor a list".into()),
        }
    };
    Ok(values
        .into_iter()
        .filter_map(|v| record_of(v, columns))
        .collect())
}

/// One prediction an endpoint answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The predicted label (classification) or value as text (regression).
    pub label: String,
    /// Class probabilities in `labels` order (empty for regression).
    pub probabilities: Vec<f64>,
    pub labels: Vec<String>,
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn prediction_of(v: &Value) -> Option<Prediction> {
    let o = v.as_object()?;
    let label = o.get("predicted_label").map(as_text)?;
    let probabilities = o
        .get("probabilities")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let labels = o
        .get("labels")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(as_text).collect())
        .unwrap_or_default();
    Some(Prediction {
        label,
        probabilities,
        labels,
    })
}

/// The predictions of one captured response, in row order.
pub fn output_predictions(d: &CaptureData) -> Result<Vec<Prediction>, String> {
    let body = text(d)?;
    if is_csv(&d.observed_content_type) {
        let rows = csv_records(&body)?;
        let Some((head, rest)) = rows.split_first() else {
            return Ok(vec![]);
        };
        if head.first().map(String::as_str) != Some("predicted_label") {
            return Err("captured CSV answer without its predicted_label header".into());
        }
        let labels: Vec<String> = head[1..]
            .iter()
            .map(|h| h.strip_prefix("probability_").unwrap_or(h).to_string())
            .collect();
        return Ok(rest
            .iter()
            .map(|r| Prediction {
                label: r.first().cloned().unwrap_or_default(),
                probabilities: r[1..].iter().filter_map(|x| x.parse().ok()).collect(),
                labels: labels.clone(),
            })
            .collect());
    }
    if is_jsonlines(&d.observed_content_type) {
        return body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value =
                    serde_json::from_str(l).map_err(|e| format!("captured JSON line: {e}"))?;
                prediction_of(&v)
                    .ok_or_else(|| "a captured answer line without predicted_label".to_string())
            })
            .collect();
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("captured JSON answer: {e}"))?;
    let list = v
        .get("predictions")
        .and_then(Value::as_array)
        .ok_or("captured JSON answer without \"predictions\"")?;
    list.iter()
        .map(|p| {
            prediction_of(p)
                .ok_or_else(|| "a captured prediction without predicted_label".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(ct: &str, body: &str) -> CaptureData {
        CaptureData {
            observed_content_type: ct.into(),
            mode: "INPUT".into(),
            data: body.into(),
            encoding: "CSV".into(),
        }
    }
    fn cols() -> Vec<String> {
        vec!["age".into(), "city".into()]
    }

    #[test]
    fn unquoted_csv_reads_as_the_csv_crate_reads_it() {
        for body in [
            "a,b,c\n1,2,3\n",
            "a,b\r\n1,2\r\n\r\n3\n",
            "x\n\n\ny,z",
            "1,,3\n,\n",
            " a , b \n",
            "",
            "\n",
            "one\rtwo,2\r",
        ] {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(body.as_bytes());
            let want: Vec<Vec<String>> = r
                .records()
                .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
                .collect();
            assert_eq!(csv_records(body).unwrap(), want, "{body:?}");
        }
        // quoted fields still go through the csv crate
        assert_eq!(
            csv_records("\"a,b\",c\n").unwrap(),
            vec![vec!["a,b".to_string(), "c".to_string()]]
        );
    }

    #[test]
    fn requests_in_every_format_become_records() {
        let with_header =
            input_records(&data("text/csv", "age,city\n31,Paris\n,Oslo\n"), &cols()).unwrap();
        let without = input_records(&data("text/csv", "31,Paris\n,Oslo\n"), &cols()).unwrap();
        assert_eq!(with_header, without);
        assert_eq!(with_header[1]["age"], Value::Null);
        assert_eq!(with_header[1]["city"], "Oslo");
        let one = input_records(
            &data("application/json", r#"{"age": 31, "city": "Paris"}"#),
            &cols(),
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        let inst = input_records(
            &data(
                "application/json",
                r#"{"instances": [{"age": 1}, [2, "Rome"], {"features": [3, "Nice"]}]}"#,
            ),
            &cols(),
        )
        .unwrap();
        assert_eq!(inst.len(), 3);
        assert_eq!(inst[1]["city"], "Rome");
        assert_eq!(inst[2]["age"], 3);
        let list = input_records(&data("application/json", r#"[31, "Paris"]"#), &cols()).unwrap();
        assert_eq!(list[0]["city"], "Paris");
        let lines = input_records(
            &data("application/jsonlines", "{\"age\": 1}\n\n[2, \"Rome\"]\n"),
            &cols(),
        )
        .unwrap();
        assert_eq!(lines.len(), 2);
        let b64 = CaptureData {
            encoding: "BASE64".into(),
            data: base64::engine::general_purpose::STANDARD.encode("age,city\n5,Lyon\n"),
            ..data("text/csv", "")
        };
        assert_eq!(input_records(&b64, &cols()).unwrap()[0]["city"], "Lyon");
        assert!(input_records(&data("application/json", "{nope"), &cols()).is_err());
    }

    #[test]
    fn answers_in_every_format_become_predictions() {
        let json = output_predictions(&data(
            "application/json",
            r#"{"predictions":[{"predicted_label":">50K","probability":0.8,"probabilities":[0.2,0.8],"labels":["<=50K",">50K"]}]}"#,
        ))
        .unwrap();
        assert_eq!(json[0].label, ">50K");
        assert_eq!(json[0].probabilities, vec![0.2, 0.8]);
        let csv = output_predictions(&data(
            "text/csv",
            "predicted_label,probability_<=50K,probability_>50K\n>50K,0.2,0.8\n",
        ))
        .unwrap();
        assert_eq!(csv, json);
        let reg = output_predictions(&data(
            "application/jsonlines",
            "{\"predicted_label\": 3.5}\n",
        ))
        .unwrap();
        assert_eq!(reg[0].label, "3.5");
        assert!(reg[0].probabilities.is_empty());
        assert!(output_predictions(&data("application/json", "{\"x\":1}")).is_err());
    }
}
