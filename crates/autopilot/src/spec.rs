//! What an Autopilot job is asked to do, and its checks.

pub use artifacts::datasets::{DATASETS, dataset_path};
use learn::ProblemType;
use serde::Deserialize;

fn default_budget() -> f64 {
    3600.0
}
fn default_candidates() -> usize {
    automl::MAX_CANDIDATES
}
fn default_experiment() -> String {
    "Autopilot".into()
}

/// An Autopilot job's spec (the JSON body of `POST /api/atelier/automl`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// A dataset name (see [`dataset_path`]).
    pub dataset: String,
    pub target: String,
    /// Seconds, including the final refit (default one hour).
    #[serde(default = "default_budget")]
    pub time_budget: f64,
    /// A cap on the candidates tried (default 250): the budget, or the search's
    /// convergence, usually ends it first.
    #[serde(default = "default_candidates")]
    pub max_candidates: usize,
    #[serde(default)]
    pub metric: Option<String>,
    /// `binary`, `multiclass` or `regression`; inferred when absent.
    #[serde(default)]
    pub problem_type: Option<String>,
    /// A second dataset scored as the holdout instead of cross-validation.
    #[serde(default)]
    pub validation_dataset: Option<String>,
    #[serde(default = "default_experiment")]
    pub experiment_name: String,
    /// Registered model to add a version to (default `<dataset stem>-<target>`).
    #[serde(default)]
    pub model_name: Option<String>,
    #[serde(default)]
    pub seed: u64,
    /// Fewest rows with a target value accepted.
    #[serde(default = "default_min_rows")]
    pub min_rows: usize,
    /// A bias report (SageMaker Clarify's metrics) in the model-quality
    /// report, for this facet.
    #[serde(default)]
    pub bias: Option<BiasSpec>,
    /// Candidates evaluated at once on the server's cluster (`--executor
    /// ray`; default [`crate::cluster::DEFAULT_SLOTS`]); without a cluster
    /// they are evaluated one at a time on the server.
    #[serde(default)]
    pub parallel_candidates: Option<usize>,
}

/// The facet and positive label of a bias report, as `atelier clarify bias`
/// takes them.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BiasSpec {
    /// The facet (sensitive attribute) column.
    pub facet: String,
    /// The facet value(s) forming the sensitive group; none and no threshold:
    /// each value in turn against the rest.
    #[serde(default)]
    pub facet_values: Vec<String>,
    /// Numeric facet: values above this form the sensitive group.
    #[serde(default)]
    pub facet_threshold: Option<f64>,
    /// The positive label value(s) (default: true, or 1 for a 0/1 target).
    #[serde(default)]
    pub label_values: Vec<String>,
    /// Numeric target: values above this are the positive outcome.
    #[serde(default)]
    pub label_threshold: Option<f64>,
    /// Group column for CDDL and CDDPL.
    #[serde(default)]
    pub group: Option<String>,
}

impl BiasSpec {
    /// The `clarify` configuration for `target`.
    pub fn config(&self, target: &str) -> Result<clarify::BiasConfig, String> {
        if self.facet.trim().is_empty() {
            return Err("bias.facet: give the facet column".into());
        }
        if !self.facet_values.is_empty() && self.facet_threshold.is_some() {
            return Err("bias: give facet_values or facet_threshold, not both".into());
        }
        if !self.label_values.is_empty() && self.label_threshold.is_some() {
            return Err("bias: give label_values or label_threshold, not both".into());
        }
        let selector = clarify::Selector::from_parts;
        Ok(clarify::BiasConfig {
            label: target.to_string(),
            label_selector: selector(&self.label_values, self.label_threshold),
            facet: self.facet.clone(),
            facet_selector: selector(&self.facet_values, self.facet_threshold),
            group: self.group.clone(),
            probability_threshold: 0.5,
        })
    }
}

/// The most candidates evaluated at once on a cluster.
pub const MAX_PARALLEL: usize = 256;

fn default_min_rows() -> usize {
    automl::MIN_ROWS
}

impl Spec {
    /// Parse and check everything that needs no data.
    pub fn parse(v: &serde_json::Value) -> Result<Spec, String> {
        let s: Spec = serde_json::from_value(v.clone()).map_err(|e| {
            format!("invalid Autopilot spec: {e}; give at least {{\"dataset\": \"<name>\", \"target\": \"<column>\"}}")
        })?;
        dataset_path(&s.dataset)?;
        if let Some(v) = &s.validation_dataset {
            dataset_path(v)?;
        }
        if s.target.trim().is_empty() {
            return Err("give the target column to predict ('target')".into());
        }
        if let Some(n) = s.parallel_candidates
            && !(1..=MAX_PARALLEL).contains(&n)
        {
            return Err(format!(
                "parallel_candidates must be between 1 and {MAX_PARALLEL}: got {n}"
            ));
        }
        if !(s.time_budget.is_finite() && s.time_budget > 0.0) {
            return Err(format!(
                "time_budget must be a positive number of seconds, not {}",
                s.time_budget
            ));
        }
        if s.time_budget > 7.0 * 86400.0 {
            return Err("time_budget is at most a week (604800 seconds)".into());
        }
        if s.max_candidates == 0 {
            return Err("max_candidates must be at least 1".into());
        }
        s.problem()?;
        if let Some(b) = &s.bias {
            b.config(&s.target)?;
        }
        if let Some(m) = &s.metric {
            // the name must exist for some problem; the fit is checked on the data
            let known = [
                ProblemType::Binary,
                ProblemType::Multiclass,
                ProblemType::Regression,
            ]
            .iter()
            .any(|p| automl::Metric::parse(m, *p).is_ok());
            if !known && let Err(e) = automl::Metric::parse(m, ProblemType::Binary) {
                return Err(e.to_string());
            }
        }
        if s.experiment_name.trim().is_empty() {
            return Err("experiment_name cannot be empty".into());
        }
        if let Some(n) = &s.model_name
            && (n.trim().is_empty() || n.len() > 256)
        {
            return Err("model_name is 1 to 256 characters".into());
        }
        Ok(s)
    }

    pub fn problem(&self) -> Result<Option<ProblemType>, String> {
        match &self.problem_type {
            None => Ok(None),
            Some(p) => ProblemType::parse(p).map(Some).ok_or_else(|| {
                format!("problem_type '{p}' is not one of binary, multiclass, regression")
            }),
        }
    }

    /// The registered model the best pipeline becomes a version of.
    pub fn model_name(&self) -> String {
        if let Some(n) = &self.model_name {
            return n.clone();
        }
        let stem = self
            .dataset
            .rsplit_once('.')
            .map_or(self.dataset.as_str(), |(s, _)| s);
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        format!("{}-{}", clean(stem), clean(&self.target))
    }

    /// A short name for the job list.
    pub fn display_name(&self) -> String {
        format!("{} → {}", self.dataset, self.target)
    }
}

/// Check the target and metric against the data (a cheap look at the table).
pub(crate) fn check_against(spec: &Spec, table: &tabular::Table) -> Result<(), String> {
    let Some(col) = table.columns.iter().find(|c| c.name == spec.target) else {
        let names: Vec<&str> = table
            .columns
            .iter()
            .take(30)
            .map(|c| c.name.as_str())
            .collect();
        return Err(format!(
            "the dataset has no column '{}'; its columns are: {}",
            spec.target,
            names.join(", ")
        ));
    };
    let target = learn::problem::encode_target(col, spec.problem()?).map_err(|e| e.to_string())?;
    if let Some(m) = &spec.metric {
        automl::Metric::parse(m, target.problem).map_err(|e| e.to_string())?;
    }
    if let Some(b) = &spec.bias {
        // unknown columns and values are found before the search, not after
        let cfg = b.config(&spec.target)?;
        clarify::Report::build(table, &cfg, None).map_err(|e| format!("bias: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_are_checked_with_messages_that_say_what_to_fix() {
        let ok = Spec::parse(&json!({"dataset": "titanic.csv", "target": "Survived"})).unwrap();
        assert_eq!(ok.time_budget, 3600.0);
        assert_eq!(ok.max_candidates, 250);
        assert_eq!(ok.model_name(), "titanic-Survived");
        let err = |v: serde_json::Value| Spec::parse(&v).unwrap_err();
        assert!(err(json!({"target": "y"})).contains("missing field `dataset`"));
        assert!(err(json!({"dataset": "d.csv", "target": ""})).contains("target column"));
        assert!(
            err(json!({"dataset": "d.csv", "target": "y", "time_budget": 0}))
                .contains("time_budget must be a positive")
        );
        assert!(
            err(json!({"dataset": "d.csv", "target": "y", "time_budget": -5})).contains("positive")
        );
        assert!(
            err(json!({"dataset": "d.csv", "target": "y", "max_candidates": 0}))
                .contains("at least 1")
        );
        assert!(
            err(json!({"dataset": "d.csv", "target": "y", "metric": "bogus"}))
                .contains("unknown metric 'bogus'")
        );
        assert!(
            err(json!({"dataset": "d.csv", "target": "y", "problem_type": "ranking"}))
                .contains("not one of binary")
        );
        assert!(
            err(json!({"dataset": "d.csv", "target": "y", "budget": 5})).contains("unknown field")
        );
        assert!(err(json!({"dataset": "d.xlsx", "target": "y"})).contains("not a supported file"));
    }
}
