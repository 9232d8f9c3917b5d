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
}

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
}
