//! A monitoring schedule: what to check, on which endpoint, when, against
//! what, and whom to tell.

use serde::{Deserialize, Serialize};

use crate::cron::Cron;

/// What an execution checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Captured requests against the baseline's statistics and constraints.
    #[default]
    DataQuality,
    /// Captured predictions joined with uploaded ground truth.
    ModelQuality,
    /// Clarify's post-training bias metrics on captured predictions joined
    /// with ground truth, against bounds from a baseline on training data.
    ModelBias,
    /// Global SHAP values of the captured inputs, ranked against the
    /// baseline's with nDCG (feature attribution drift).
    ModelExplainability,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::DataQuality => "data_quality",
            CheckKind::ModelQuality => "model_quality",
            CheckKind::ModelBias => "model_bias",
            CheckKind::ModelExplainability => "model_explainability",
        }
    }
}

/// A model-bias schedule's analysis (Clarify's `analysis_config` names in
/// snake case): the sensitive group, the positive outcome, and how far the
/// metrics may move from the baseline's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiasSettings {
    /// The facet column (in the requests; a model input or an extra column).
    pub facet: String,
    /// The value(s) that make the sensitive group d …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facet_values: Option<Vec<String>>,
    /// … or a numeric threshold (values above it are d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facet_threshold: Option<f64>,
    /// The positive outcome: class value(s) (default: a binary model's
    /// second class, the one whose probability it answers) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_values: Option<Vec<String>>,
    /// … or a threshold (regression: values above it are positive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_threshold: Option<f64>,
    /// Group column for CDDPL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Binary models: the probability above which a prediction is positive (0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability_threshold: Option<f64>,
    /// Post-training metrics to watch (default DPPL, DI, AD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<String>>,
    /// Allowed distance beyond the baseline's for difference metrics (0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Allowed ratio beyond the baseline's for DI (1.25, the four-fifths rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub di_ratio: Option<f64>,
    /// Labelled rows each side of the facet needs before a window can alert (30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_facet_rows: Option<usize>,
}

/// A model-explainability schedule's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExplainSettings {
    /// nDCG below this is a violation (SageMaker's 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Rank only the top k features (default: all, as SageMaker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Rows explained per baseline and per window (a seeded sample; 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<usize>,
}

/// Clarify's post-training metrics, as named in `analysis.json`.
pub const POST_TRAINING: [&str; 13] = [
    "AD", "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "FT", "GE", "RD", "SD", "TE",
];

fn hourly() -> String {
    "0 * * * *".into()
}
fn yes() -> bool {
    true
}

/// A schedule as stored (and as `POST /api/atelier/monitoring-schedules`
/// takes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    pub endpoint: String,
    #[serde(default)]
    pub kind: CheckKind,
    /// UTC cron (5 fields, or 6 with seconds first); hourly by default.
    #[serde(default = "hourly")]
    pub cron: String,
    /// Artifact path of a baseline folder (`statistics.json`,
    /// `constraints.json`); default: the served model version's
    /// `atelier.baseline` tag (Autopilot writes one for every model).
    #[serde(default)]
    pub baseline: Option<String>,
    /// URLs that receive a JSON POST when an execution finds violations.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// Model quality: the metric to watch (default accuracy for
    /// classification, rmse for regression).
    #[serde(default)]
    pub metric: Option<String>,
    /// Model quality: the allowed degradation from the baseline score —
    /// absolute for scores where higher is better (default 0.05), relative
    /// for losses (default 0.2, i.e. 20 % worse).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Model quality: the score to compare with (default: the model's
    /// validation score from its pipeline).
    #[serde(default)]
    pub baseline_score: Option<f64>,
    /// Model bias / explainability: the stored dataset (training data) the
    /// baseline is computed from when the schedule is saved (into
    /// `monitoring/<name>/baseline/`, which `baseline` then names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Model bias: the analysis (required for that kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<BiasSettings>,
    /// Model explainability: the nDCG threshold and sample size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explainability: Option<ExplainSettings>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// End of the last window a cron execution covered (the scheduler's
    /// bookmark, so a restart neither skips nor repeats a window).
    #[serde(default)]
    pub last_fired_ms: Option<i64>,
    /// The latest retraining started from this schedule: `{job_id, dataset,
    /// serving: {registered_model, version, metrics}, started_ms}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain: Option<serde_json::Value>,
}

impl Schedule {
    pub fn parse(v: &serde_json::Value) -> Result<Schedule, String> {
        let s: Schedule = serde_json::from_value(v.clone()).map_err(|e| {
            format!("invalid monitoring schedule: {e}; give at least {{\"name\": \"…\", \"endpoint\": \"…\"}}")
        })?;
        s.check()?;
        Ok(s)
    }

    pub fn check(&self) -> Result<(), String> {
        let ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 128
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !ok(&self.name) {
            return Err(format!(
                "schedule name '{}': use 1–128 letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        if self.endpoint.is_empty() {
            return Err("give the endpoint to monitor ('endpoint')".into());
        }
        Cron::parse(&self.cron)?;
        for w in &self.webhooks {
            if !(w.starts_with("http://") || w.starts_with("https://")) {
                return Err(format!("webhook '{w}' is not an http(s) URL"));
            }
        }
        if let Some(t) = self.threshold
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(format!("threshold must be a non-negative number, not {t}"));
        }
        match self.kind {
            CheckKind::ModelBias => {
                let b = self.bias.as_ref().ok_or(
                    "a model_bias schedule needs \"bias\": {\"facet\": \"<column>\", \"facet_values\": [\"<sensitive value>\"]} (or \"facet_threshold\")",
                )?;
                if b.facet.trim().is_empty() {
                    return Err("bias.facet: name the facet column".into());
                }
                match (&b.facet_values, b.facet_threshold) {
                    (Some(v), None) if !v.is_empty() => {}
                    (None, Some(t)) if t.is_finite() => {}
                    (Some(_), Some(_)) => {
                        return Err("bias: give facet_values or facet_threshold, not both".into());
                    }
                    _ => {
                        return Err("bias: name the sensitive group with facet_values (e.g. [\"female\"]) or facet_threshold (a number)".into());
                    }
                }
                if b.label_values.is_some() && b.label_threshold.is_some() {
                    return Err("bias: give label_values or label_threshold, not both".into());
                }
                if let Some(p) = b.probability_threshold
                    && !(p > 0.0 && p < 1.0)
                {
                    return Err(format!(
                        "bias.probability_threshold must lie between 0 and 1, not {p}"
                    ));
                }
                if let Some(ms) = &b.metrics {
                    if ms.is_empty() {
                        return Err("bias.metrics: name at least one metric".into());
                    }
                    for m in ms {
                        if m == "FT" {
                            return Err("bias.metrics: FT (the flip test) is not monitored: it is a k-nearest-neighbour search over every feature, quadratic in a window's rows; watch the other post-training metrics".into());
                        }
                        if !POST_TRAINING.contains(&m.as_str()) {
                            return Err(format!(
                                "bias.metrics: '{m}' is not a post-training bias metric; use some of {}",
                                POST_TRAINING.join(", ")
                            ));
                        }
                    }
                }
                if let Some(t) = b.tolerance
                    && !(t.is_finite() && t >= 0.0)
                {
                    return Err(format!(
                        "bias.tolerance must be a non-negative number, not {t}"
                    ));
                }
                if let Some(r) = b.di_ratio
                    && !(r.is_finite() && r >= 1.0)
                {
                    return Err(format!(
                        "bias.di_ratio must be a number of at least 1, not {r}"
                    ));
                }
            }
            CheckKind::ModelExplainability => {
                let e = self.explainability.clone().unwrap_or_default();
                if let Some(t) = e.threshold
                    && !(t > 0.0 && t <= 1.0)
                {
                    return Err(format!(
                        "explainability.threshold is an nDCG between 0 and 1 (SageMaker's is 0.9), not {t}"
                    ));
                }
                if e.top_k == Some(0) || e.max_rows == Some(0) {
                    return Err("explainability: top_k and max_rows must be at least 1".into());
                }
            }
            _ => {}
        }
        if matches!(
            self.kind,
            CheckKind::ModelBias | CheckKind::ModelExplainability
        ) && self.dataset.is_none()
            && self.baseline.is_none()
        {
            return Err(format!(
                "a {} schedule needs the training data its baseline is computed from: give \"dataset\" (a stored dataset, e.g. the one the model was trained on)",
                self.kind.as_str()
            ));
        }
        Ok(())
    }

    pub fn cron(&self) -> Cron {
        // checked at parse time; an hourly fallback keeps a bad stored value harmless
        Cron::parse(&self.cron)
            .unwrap_or_else(|_| Cron::parse("0 * * * *").unwrap_or_else(|e| unreachable!("{e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_mistakes() {
        let s = Schedule::parse(&json!({"name": "churn-drift", "endpoint": "churn"})).unwrap();
        assert_eq!(s.cron, "0 * * * *");
        assert_eq!(s.kind, CheckKind::DataQuality);
        assert!(s.enabled);
        let err = |v: serde_json::Value| Schedule::parse(&v).unwrap_err();
        assert!(err(json!({"name": "a b", "endpoint": "e"})).contains("letters, digits"));
        assert!(err(json!({"name": "a", "endpoint": "e", "cron": "* *"})).contains("has 2 fields"));
        assert!(
            err(json!({"name": "a", "endpoint": "e", "webhooks": ["ftp://x"]}))
                .contains("not an http")
        );
        assert!(
            err(json!({"name": "a", "endpoint": "e", "kind": "vibes"})).contains("unknown variant")
        );
        assert!(err(json!({"name": "a"})).contains("missing field `endpoint`"));
        assert!(
            err(json!({"name": "a", "endpoint": "e", "threshold": -1})).contains("non-negative")
        );
    }

    #[test]
    fn bias_and_explainability_schedules_say_what_they_lack() {
        let ok = Schedule::parse(&json!({"name": "b", "endpoint": "e", "kind": "model_bias",
            "dataset": "loans.csv", "bias": {"facet": "sex", "facet_values": ["female"]}}))
        .unwrap();
        assert_eq!(ok.kind.as_str(), "model_bias");
        assert_eq!(ok.bias.unwrap().facet, "sex");
        let e = Schedule::parse(&json!({"name": "x", "endpoint": "e", "kind": "model_explainability", "dataset": "d.csv"})).unwrap();
        assert_eq!(e.explainability, None);
        let err = |v: serde_json::Value| Schedule::parse(&v).unwrap_err();
        let bias = |b: serde_json::Value| {
            err(
                json!({"name": "b", "endpoint": "e", "kind": "model_bias", "dataset": "d.csv", "bias": b}),
            )
        };
        assert!(
            err(json!({"name": "b", "endpoint": "e", "kind": "model_bias", "dataset": "d.csv"}))
                .contains("needs \"bias\"")
        );
        assert!(bias(json!({"facet": "sex"})).contains("facet_values"));
        assert!(
            bias(json!({"facet": "age", "facet_values": ["1"], "facet_threshold": 40}))
                .contains("not both")
        );
        assert!(
            bias(json!({"facet": "sex", "facet_values": ["f"], "metrics": ["DPL"]}))
                .contains("'DPL' is not a post-training")
        );
        assert!(
            bias(json!({"facet": "sex", "facet_values": ["f"], "di_ratio": 0.5}))
                .contains("at least 1")
        );
        assert!(
            bias(json!({"facet": "sex", "facet_values": ["f"], "metrics": ["DPPL", "FT"]}))
                .contains("FT (the flip test) is not monitored")
        );
        assert!(
            bias(json!({"facet": "sex", "facet_values": ["f"], "probability_threshold": 1}))
                .contains("between 0 and 1")
        );
        assert!(
            bias(json!({"facet": "sex", "facet_values": ["f"], "colour": 1}))
                .contains("unknown field")
        );
        assert!(
            err(json!({"name": "b", "endpoint": "e", "kind": "model_bias", "bias": {"facet": "sex", "facet_values": ["f"]}}))
                .contains("give \"dataset\"")
        );
        assert!(
            err(json!({"name": "x", "endpoint": "e", "kind": "model_explainability", "dataset": "d.csv", "explainability": {"threshold": 0}}))
                .contains("nDCG between 0 and 1")
        );
    }
}
