//! The metric a search optimises. Defaults: ROC AUC for binary problems
//! (threshold-free, so it ranks models by how well they separate the classes
//! rather than by one cut-off), accuracy for multiclass, MSE for regression
//! (as SageMaker Autopilot).

use learn::ProblemType;

use crate::AutomlError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Auc,
    Accuracy,
    BalancedAccuracy,
    F1,
    F1Macro,
    Precision,
    Recall,
    LogLoss,
    Mse,
    Rmse,
    Mae,
    R2,
}

const ALL: [Metric; 12] = [
    Metric::Auc,
    Metric::Accuracy,
    Metric::BalancedAccuracy,
    Metric::F1,
    Metric::F1Macro,
    Metric::Precision,
    Metric::Recall,
    Metric::LogLoss,
    Metric::Mse,
    Metric::Rmse,
    Metric::Mae,
    Metric::R2,
];

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Auc => "auc",
            Metric::Accuracy => "accuracy",
            Metric::BalancedAccuracy => "balanced_accuracy",
            Metric::F1 => "f1",
            Metric::F1Macro => "f1_macro",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::LogLoss => "log_loss",
            Metric::Mse => "mse",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }

    pub fn default_for(p: ProblemType) -> Metric {
        match p {
            ProblemType::Binary => Metric::Auc,
            ProblemType::Multiclass => Metric::Accuracy,
            ProblemType::Regression => Metric::Mse,
        }
    }

    fn fits(self, p: ProblemType) -> bool {
        match self {
            Metric::Mse | Metric::Rmse | Metric::Mae | Metric::R2 => p == ProblemType::Regression,
            Metric::F1 | Metric::Precision | Metric::Recall => p == ProblemType::Binary,
            _ => p != ProblemType::Regression,
        }
    }

    /// Parse a metric name and check it fits the problem.
    pub fn parse(name: &str, p: ProblemType) -> Result<Metric, AutomlError> {
        let m = ALL
            .iter()
            .copied()
            .find(|m| m.name() == name.to_ascii_lowercase())
            .ok_or_else(|| {
                AutomlError::Options(format!(
                    "unknown metric '{name}'; known: {}",
                    ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
                ))
            })?;
        if !m.fits(p) {
            let ok: Vec<&str> = ALL.iter().filter(|m| m.fits(p)).map(|m| m.name()).collect();
            return Err(AutomlError::Options(format!(
                "the metric '{name}' does not fit a {} problem; use one of {}",
                p.as_str(),
                ok.join(", ")
            )));
        }
        Ok(m)
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::LogLoss | Metric::Mse | Metric::Rmse | Metric::Mae
        )
    }

    /// The metric of predictions `pred` (as models return them) against
    /// encoded targets.
    pub fn score(self, p: ProblemType, k: usize, y: &[f64], pred: &[f64]) -> f64 {
        learn::evaluate(p, k, y, pred)
            .get(self.name())
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// `a` is better than `b` (NaN is never better).
    pub fn better(self, a: f64, b: f64) -> bool {
        if a.is_nan() {
            return false;
        }
        if b.is_nan() {
            return true;
        }
        if self.higher_is_better() {
            a > b
        } else {
            a < b
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_problem_fit() {
        assert_eq!(
            Metric::parse("AUC", ProblemType::Binary).unwrap(),
            Metric::Auc
        );
        assert!(Metric::parse("rmse", ProblemType::Binary).is_err());
        assert!(Metric::parse("f1", ProblemType::Multiclass).is_err());
        assert!(
            Metric::parse("nonsense", ProblemType::Regression)
                .unwrap_err()
                .to_string()
                .contains("known")
        );
        assert!(
            Metric::Mse.better(1.0, 2.0)
                && Metric::Auc.better(0.9, 0.8)
                && !Metric::Auc.better(f64::NAN, 0.1)
        );
    }
}
