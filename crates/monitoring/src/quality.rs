//! Model quality: ground truth uploaded after the fact, joined with the
//! predictions an endpoint captured, and — before labels arrive — an
//! estimate of classification performance from the predicted probabilities
//! alone (confidence-based performance estimation, as NannyML's CBPE).
//!
//! Ground truth is kept under the artifact store in SageMaker's merge
//! shape, one JSON Lines file per upload:
//! `ground-truth/<endpoint>/YYYY/MM/DD/HH/<epoch-ms>-<8 hex>.jsonl`, each line
//! `{"groundTruthData": {"data": "<label>", "encoding": "CSV"},
//!   "eventMetadata": {"eventId": "…"} or {"inferenceId": "…"}, "eventVersion": "0"}`.
//! A captured request with several rows is labelled by as many labels,
//! one per line of `data`.

use std::collections::HashMap;

use serde_json::{Value, json};

/// One uploaded label (or labels, one per row of its request).
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// `eventId` or `inferenceId`.
    pub by_inference_id: bool,
    pub id: String,
    pub values: Vec<String>,
}

impl Label {
    pub fn to_record(&self) -> Value {
        let meta = if self.by_inference_id {
            json!({"inferenceId": self.id})
        } else {
            json!({"eventId": self.id})
        };
        json!({
            "groundTruthData": {"data": self.values.join("\n"), "encoding": "CSV"},
            "eventMetadata": meta,
            "eventVersion": "0",
        })
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn label_of_json(v: &Value) -> Result<Label, String> {
    let o = v.as_object().ok_or("not a JSON object")?;
    if let Some(gt) = o.get("groundTruthData") {
        let data = gt
            .get("data")
            .and_then(scalar)
            .ok_or("groundTruthData.data is missing")?;
        let meta = o.get("eventMetadata").ok_or("eventMetadata is missing")?;
        let (by_inf, id) = match (
            meta.get("eventId").and_then(scalar),
            meta.get("inferenceId").and_then(scalar),
        ) {
            (Some(e), _) => (false, e),
            (None, Some(i)) => (true, i),
            _ => return Err("eventMetadata needs an eventId or an inferenceId".into()),
        };
        return Ok(Label {
            by_inference_id: by_inf,
            id,
            values: data.lines().map(str::to_string).collect(),
        });
    }
    let (by_inf, id) = match (
        o.get("eventId").and_then(scalar),
        o.get("inferenceId").and_then(scalar),
    ) {
        (Some(e), _) => (false, e),
        (None, Some(i)) => (true, i),
        _ => return Err("give an \"inferenceId\" or an \"eventId\"".into()),
    };
    let label = o
        .get("label")
        .or_else(|| o.get("groundTruth"))
        .ok_or("give the true value as \"label\"")?;
    let values = match label {
        Value::Array(a) => a
            .iter()
            .map(|x| scalar(x).ok_or("a label is not a scalar"))
            .collect::<Result<_, _>>()?,
        other => vec![scalar(other).ok_or("the label is not a scalar")?],
    };
    Ok(Label {
        by_inference_id: by_inf,
        id,
        values,
    })
}

/// Parse an upload: JSON Lines (SageMaker's shape, or `{"inferenceId" |
/// "eventId": …, "label": …}`) or CSV with an `inferenceId` or `eventId`
/// column and a `label` column. Errors name the line.
pub fn parse_labels(body: &[u8], content_type: &str) -> Result<Vec<Label>, String> {
    let text =
        std::str::from_utf8(body).map_err(|_| "the ground truth is not UTF-8 text".to_string())?;
    let csv = content_type.to_ascii_lowercase().contains("csv")
        || (!text.trim_start().starts_with('{') && !text.trim().is_empty());
    let mut out = Vec::new();
    if csv {
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let head = r
            .headers()
            .map_err(|e| format!("ground truth CSV: {e}"))?
            .clone();
        let find = |n: &str| head.iter().position(|h| h.trim().eq_ignore_ascii_case(n));
        let (by_inf, id_col) = match (find("eventId"), find("inferenceId")) {
            (Some(i), _) => (false, i),
            (None, Some(i)) => (true, i),
            _ => {
                return Err(
                    "ground truth CSV: the header needs an inferenceId or eventId column".into(),
                );
            }
        };
        let label_col = find("label")
            .or_else(|| find("groundTruth"))
            .ok_or("ground truth CSV: the header needs a label column")?;
        for (i, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| format!("ground truth CSV line {}: {e}", i + 2))?;
            let id = rec.get(id_col).unwrap_or("").trim();
            let label = rec.get(label_col).unwrap_or("");
            if id.is_empty() {
                return Err(format!("ground truth CSV line {}: the id is empty", i + 2));
            }
            out.push(Label {
                by_inference_id: by_inf,
                id: id.to_string(),
                values: vec![label.to_string()],
            });
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .map_err(|e| format!("ground truth line {}: not JSON ({e})", i + 1))?;
            out.push(label_of_json(&v).map_err(|e| format!("ground truth line {}: {e}", i + 1))?);
        }
    }
    if out.is_empty() {
        return Err("the ground truth upload has no labels".into());
    }
    Ok(out)
}

/// Labels by id, the newest upload winning.
#[derive(Default)]
pub struct LabelIndex {
    pub by_event: HashMap<String, Vec<String>>,
    pub by_inference: HashMap<String, Vec<String>>,
}

impl LabelIndex {
    pub fn add(&mut self, l: Label) {
        if l.by_inference_id {
            self.by_inference.insert(l.id, l.values);
        } else {
            self.by_event.insert(l.id, l.values);
        }
    }
    pub fn len(&self) -> usize {
        self.by_event.len() + self.by_inference.len()
    }
    /// The labels of a captured invocation: by its inference id, else its event id.
    pub fn of(&self, meta: &serving::capture::EventMetadata) -> Option<&Vec<String>> {
        meta.inference_id
            .as_ref()
            .and_then(|i| self.by_inference.get(i))
            .or_else(|| self.by_event.get(&meta.event_id))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Confidence-based performance estimation from probabilities alone:
/// expected accuracy (and ROC AUC for binary problems) if the predicted
/// probabilities are calibrated, with a standard error.
pub fn cbpe(
    probabilities: &[Vec<f64>],
    calibration: Option<&monitor::calibration::Calibration>,
) -> Option<Value> {
    let n = probabilities.len();
    if n == 0 {
        return None;
    }
    // calibrate first: binary P(class 1), or the top probability
    let calibrated: Vec<Vec<f64>>;
    let probabilities = match calibration {
        Some(c) if c.kind == "binary" => {
            calibrated = probabilities
                .iter()
                .map(|p| {
                    let q = c.apply(*p.last().unwrap_or(&0.5)).clamp(0.0, 1.0);
                    vec![1.0 - q, q]
                })
                .collect();
            &calibrated[..]
        }
        Some(c) => {
            calibrated = probabilities
                .iter()
                .map(|p| {
                    let top = p.iter().copied().fold(f64::MIN, f64::max);
                    // the rest share what the calibrated top leaves
                    let q = c.apply(top).clamp(0.0, 1.0);
                    let k = p.len().max(2) as f64;
                    let mut done = false;
                    p.iter()
                        .map(|&x| {
                            if !done && x == top {
                                done = true;
                                q
                            } else {
                                (1.0 - q) / (k - 1.0)
                            }
                        })
                        .collect()
                })
                .collect();
            &calibrated[..]
        }
        None => probabilities,
    };
    // expected accuracy: each row is right with the probability of its predicted class
    let conf: Vec<f64> = probabilities
        .iter()
        .map(|p| p.iter().copied().fold(f64::MIN, f64::max))
        .collect();
    let acc = conf.iter().sum::<f64>() / n as f64;
    let se = (conf.iter().map(|c| c * (1.0 - c)).sum::<f64>()).sqrt() / n as f64;
    let mut out = json!({
        "rows": n,
        "accuracy": {"estimate": acc, "std_error": se, "low": (acc - 1.96 * se).max(0.0), "high": (acc + 1.96 * se).min(1.0)},
        "assumption": "the model's probabilities are calibrated (each prediction is right with its stated probability)",
        "calibrated": calibration.map(|c| format!("isotonic on {} out-of-fold predictions", c.rows)),
    });
    if probabilities.iter().all(|p| p.len() == 2) {
        // expected ROC: each row counts p as a positive and 1 - p as a negative
        let mut s: Vec<f64> = probabilities.iter().map(|p| p[1]).collect();
        s.sort_by(|a, b| b.total_cmp(a));
        let pos: f64 = s.iter().sum();
        let neg: f64 = n as f64 - pos;
        if pos > 0.0 && neg > 0.0 {
            let (mut tp, mut fp, mut auc) = (0.0, 0.0, 0.0);
            for p in &s {
                let (ntp, nfp) = (tp + p, fp + (1.0 - p));
                auc += (nfp - fp) / neg * (tp + ntp) / (2.0 * pos);
                tp = ntp;
                fp = nfp;
            }
            // Hanley & McNeil's standard error at the expected class counts
            let q1 = auc / (2.0 - auc);
            let q2 = 2.0 * auc * auc / (1.0 + auc);
            let var = (auc * (1.0 - auc)
                + (pos - 1.0) * (q1 - auc * auc)
                + (neg - 1.0) * (q2 - auc * auc))
                / (pos * neg);
            let se = var.max(0.0).sqrt();
            out["auc"] = json!({"estimate": auc, "std_error": se, "low": (auc - 1.96 * se).max(0.0), "high": (auc + 1.96 * se).min(1.0)});
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_in_three_shapes_and_mistakes_name_the_line() {
        let sm = parse_labels(
            br#"{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "e1"}, "eventVersion": "0"}"#,
            "application/jsonlines",
        )
        .unwrap();
        assert_eq!(
            sm,
            vec![Label {
                by_inference_id: false,
                id: "e1".into(),
                values: vec!["1".into()]
            }]
        );
        let simple = parse_labels(b"{\"inferenceId\": \"r-7\", \"label\": \">50K\"}\n\n{\"eventId\": \"e2\", \"label\": 0}\n", "").unwrap();
        assert!(simple[0].by_inference_id);
        assert_eq!(simple[1].values, vec!["0"]);
        let csv = parse_labels(b"inferenceId,label\nr-1,yes\nr-2,no\n", "text/csv").unwrap();
        assert_eq!(csv.len(), 2);
        assert_eq!(
            Label { ..csv[1].clone() }.to_record()["eventMetadata"]["inferenceId"],
            "r-2"
        );
        let err = |b: &[u8]| parse_labels(b, "").unwrap_err();
        assert!(err(b"{\"label\": 1}\n").contains("line 1: give an \"inferenceId\""));
        assert!(err(b"{\"eventId\": \"a\", \"label\": 1}\n{oops\n").contains("line 2: not JSON"));
        assert!(err(b"id,label\n1,2\n").contains("inferenceId or eventId column"));
        assert!(err(b"eventId,label\n,2\n").contains("line 2: the id is empty"));
        assert!(err(b"").contains("no labels"));
    }

    #[test]
    fn cbpe_is_the_expected_accuracy_and_auc_of_calibrated_probabilities() {
        // perfectly confident → accuracy 1; all 0.5 → 0.5
        let sure = cbpe(&[vec![0.0, 1.0], vec![1.0, 0.0]], None).unwrap();
        assert!((sure["accuracy"]["estimate"].as_f64().unwrap() - 1.0).abs() < 1e-12);
        assert!((sure["auc"]["estimate"].as_f64().unwrap() - 1.0).abs() < 1e-12);
        let coin = cbpe(&vec![vec![0.5, 0.5]; 10], None).unwrap();
        assert!((coin["accuracy"]["estimate"].as_f64().unwrap() - 0.5).abs() < 1e-12);
        // simulate: labels drawn from calibrated probabilities → the realised
        // accuracy lands within the interval most of the time
        let mut state = 7u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let probs: Vec<Vec<f64>> = (0..4000)
            .map(|_| {
                let p = next();
                vec![1.0 - p, p]
            })
            .collect();
        let est = cbpe(&probs, None).unwrap();
        let right = probs
            .iter()
            .filter(|p| {
                let y = next() < p[1];
                (p[1] >= 0.5) == y
            })
            .count() as f64
            / 4000.0;
        let a = &est["accuracy"];
        assert!(
            right >= a["low"].as_f64().unwrap() - 0.01
                && right <= a["high"].as_f64().unwrap() + 0.01,
            "{right} vs {a}"
        );
        assert!(cbpe(&[], None).is_none());
        // an overconfident model's estimate comes down once calibrated
        let c = monitor::calibration::Calibration {
            kind: "binary".into(),
            x: vec![0.0, 1.0],
            y: vec![0.3, 0.7],
            rows: 100,
        };
        let sure = cbpe(&[vec![0.0, 1.0], vec![1.0, 0.0]], Some(&c)).unwrap();
        assert!((sure["accuracy"]["estimate"].as_f64().unwrap() - 0.7).abs() < 1e-12);
        assert!(
            sure["calibrated"]
                .as_str()
                .unwrap()
                .contains("100 out-of-fold")
        );
    }
}
