//! A tuning job's spec, parsed and checked before the job is queued: every
//! mistake is a [`SpecError`] that names the field.
//!
//! ```json
//! {"training": {"command": ["python", "train.py"], "code": "jobs-code/…",
//!               "inputs": {"train": "datasets/train.csv"}, "hyperparameters": {"epochs": "20"}},
//!  "objective": {"metric": "val_loss", "direction": "minimize"},
//!  "parameters": {"lr": {"type": "continuous", "min": 0.001, "max": 1, "scale": "log"},
//!                 "depth": {"type": "integer", "min": 2, "max": 8},
//!                 "booster": {"type": "categorical", "values": ["gbtree", "dart"]}},
//!  "strategy": "bayesian",          // or "random"; default bayesian
//!  "max_jobs": 20,                  // 1..=500; default 10
//!  "max_parallel_jobs": 2,          // 1..=max_jobs; default 1
//!  "early_stopping": "median",      // or "off" (the default)
//!  "seed": 0}
//! ```

use serde_json::{Map, Value};
use userjobs::{JobKind, UserJobSpec};

use crate::space::Space;

/// What is wrong with a tuning spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A field is missing, of the wrong type or out of range.
    #[error("'{field}': {message}")]
    Field { field: String, message: String },
    /// A field a tuning spec does not have.
    #[error("unknown field '{0}'; a tuning job's spec has: {FIELDS}")]
    Unknown(String),
    /// The training job's spec was refused (the message names its field).
    #[error("'training': {0}")]
    Training(String),
}

const FIELDS: &str =
    "training, objective, parameters, strategy, max_jobs, max_parallel_jobs, early_stopping, seed";

/// Most trials in one tuning job.
pub const MAX_JOBS: usize = 500;

fn field(f: impl Into<String>, m: impl Into<String>) -> SpecError {
    SpecError::Field {
        field: f.into(),
        message: m.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Minimize,
    Maximize,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Minimize => "minimize",
            Direction::Maximize => "maximize",
        }
    }
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Minimize => a < b,
            Direction::Maximize => a > b,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    pub metric: String,
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Random,
    Bayesian,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::Bayesian => "bayesian",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStopping {
    Off,
    Median,
}

impl EarlyStopping {
    pub fn as_str(self) -> &'static str {
        match self {
            EarlyStopping::Off => "off",
            EarlyStopping::Median => "median",
        }
    }
}

/// A checked tuning spec.
#[derive(Debug, Clone)]
pub struct TuningSpec {
    /// The training spec as given (trials are built from it, so fields
    /// this crate does not know pass through unchanged).
    pub training_json: Map<String, Value>,
    pub training: UserJobSpec,
    pub objective: Objective,
    pub space: Space,
    pub strategy: Strategy,
    pub max_jobs: usize,
    pub max_parallel_jobs: usize,
    pub early_stopping: EarlyStopping,
    pub seed: u64,
}

fn word<'a>(v: &'a Value, f: &str, choices: &[&'a str]) -> Result<String, SpecError> {
    let s = v
        .as_str()
        .map(str::to_ascii_lowercase)
        .filter(|s| choices.contains(&s.as_str()));
    s.ok_or_else(|| field(f, format!("{v} is not one of: {}", choices.join(", "))))
}

fn count(v: Option<&Value>, f: &str, default: usize, max: usize) -> Result<usize, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| field(f, format!("{v} is not a whole number from 1 to {max}"))),
    }
}

impl TuningSpec {
    /// Parse and check the shape (no store look-ups).
    pub fn parse(v: &Value) -> Result<TuningSpec, SpecError> {
        let obj = v.as_object().ok_or_else(|| {
            field(
                "spec",
                "a tuning job's spec is an object with training, objective and parameters",
            )
        })?;
        if let Some(k) = obj.keys().find(|k| !FIELDS.split(", ").any(|f| f == *k)) {
            return Err(SpecError::Unknown(k.clone()));
        }
        let training_json = obj
            .get("training")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| {
                field(
                    "training",
                    "give the training job's spec, e.g. {\"command\": [\"python\", \"train.py\"]}",
                )
            })?;
        let training = UserJobSpec::parse(JobKind::Training, &Value::Object(training_json.clone()))
            .map_err(SpecError::Training)?;
        if training.register_model.is_some() {
            return Err(field(
                "training.register_model",
                "every trial would register a model version; register the best trial's model afterwards (its run is tagged atelier.tuning_best=true)",
            ));
        }
        let objective = parse_objective(obj.get("objective"))?;
        let space = Space::parse(obj.get("parameters").unwrap_or(&Value::Null))?;
        for p in space.params() {
            if training.hyperparameters.contains_key(&p.name) {
                return Err(field(
                    format!("parameters.{}", p.name),
                    format!(
                        "'{}' is also a fixed hyperparameter in training.hyperparameters; search it or fix it, not both",
                        p.name
                    ),
                ));
            }
        }
        let strategy = match obj.get("strategy") {
            None | Some(Value::Null) => Strategy::Bayesian,
            Some(v) => match word(v, "strategy", &["bayesian", "random"])?.as_str() {
                "random" => Strategy::Random,
                _ => Strategy::Bayesian,
            },
        };
        let early_stopping = match obj.get("early_stopping") {
            None | Some(Value::Null) => EarlyStopping::Off,
            Some(v) => match word(v, "early_stopping", &["median", "off"])?.as_str() {
                "median" => EarlyStopping::Median,
                _ => EarlyStopping::Off,
            },
        };
        let max_jobs = count(obj.get("max_jobs"), "max_jobs", 10, MAX_JOBS)?;
        let max_parallel_jobs = count(
            obj.get("max_parallel_jobs"),
            "max_parallel_jobs",
            1,
            max_jobs,
        )
        .map_err(|e| match e {
            SpecError::Field { field, message } => SpecError::Field {
                field,
                message: format!("{message} (max_jobs)"),
            },
            e => e,
        })?;
        let seed = match obj.get("seed") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| field("seed", format!("{v} is not a whole number ≥ 0")))?,
        };
        Ok(TuningSpec {
            training_json,
            training,
            objective,
            space,
            strategy,
            max_jobs,
            max_parallel_jobs,
            early_stopping,
            seed,
        })
    }

    /// The experiment of the parent run and of every trial.
    pub fn experiment(&self) -> String {
        self.training
            .experiment
            .clone()
            .unwrap_or_else(|| "tuning".into())
    }

    /// The tuning job's display name.
    pub fn display_name(&self) -> String {
        match &self.training.name {
            Some(n) => format!("tuning {n}"),
            None => {
                let t = self.training.display_name(JobKind::Training);
                match t.strip_prefix("training ") {
                    Some(rest) => format!("tuning {rest}"),
                    None => format!("tuning {t}"),
                }
            }
        }
    }

    /// Trial `index`'s training spec: the training spec with the point's
    /// hyperparameters added, the tuning's experiment and a name of its own.
    pub fn trial_spec(&self, index: usize, hyperparameters: &[(String, String)]) -> Value {
        let mut t = self.training_json.clone();
        let mut hps = t
            .get("hyperparameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in hyperparameters {
            hps.insert(k.clone(), Value::String(v.clone()));
        }
        t.insert("hyperparameters".into(), Value::Object(hps));
        t.insert("experiment".into(), Value::String(self.experiment()));
        let base: String = self
            .training
            .name
            .clone()
            .unwrap_or_else(|| "trial".into())
            .chars()
            .take(56)
            .collect();
        t.insert(
            "name".into(),
            Value::String(format!("{base}-{:03}", index + 1)),
        );
        Value::Object(t)
    }
}

fn parse_objective(v: Option<&Value>) -> Result<Objective, SpecError> {
    let hint = "give {\"metric\": \"val_loss\", \"direction\": \"minimize\"} (the metric your script logs to its run)";
    let obj = v
        .and_then(Value::as_object)
        .ok_or_else(|| field("objective", hint))?;
    if let Some(k) = obj.keys().find(|k| *k != "metric" && *k != "direction") {
        return Err(field(
            format!("objective.{k}"),
            "the objective has 'metric' and 'direction' only",
        ));
    }
    let metric = obj
        .get("metric")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| field("objective.metric", hint))?;
    if metric.len() > 250 || metric.contains('\0') {
        return Err(field(
            "objective.metric",
            "a metric name is at most 250 characters",
        ));
    }
    let direction = match obj.get("direction") {
        Some(d) => match word(d, "objective.direction", &["minimize", "maximize"])?.as_str() {
            "maximize" => Direction::Maximize,
            _ => Direction::Minimize,
        },
        None => {
            return Err(field(
                "objective.direction",
                "say whether to \"minimize\" or \"maximize\" the metric",
            ));
        }
    };
    Ok(Objective {
        metric: metric.to_string(),
        direction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok() -> Value {
        json!({
            "training": {"command": ["python", "train.py"], "hyperparameters": {"epochs": "3"}},
            "objective": {"metric": "val_loss", "direction": "minimize"},
            "parameters": {
                "lr": {"type": "continuous", "min": 0.001, "max": 1, "scale": "log"},
                "depth": {"type": "integer", "min": 2, "max": 8}
            },
            "strategy": "random", "max_jobs": 20, "max_parallel_jobs": 2,
            "early_stopping": "median", "seed": 4
        })
    }

    #[test]
    fn a_good_spec_parses_with_defaults() {
        let s = TuningSpec::parse(&ok()).unwrap();
        assert_eq!(s.strategy, Strategy::Random);
        assert_eq!(s.early_stopping, EarlyStopping::Median);
        assert_eq!((s.max_jobs, s.max_parallel_jobs, s.seed), (20, 2, 4));
        assert_eq!(s.experiment(), "tuning");
        assert_eq!(s.display_name(), "tuning train.py");
        let mut v = ok();
        for k in [
            "strategy",
            "max_jobs",
            "max_parallel_jobs",
            "early_stopping",
            "seed",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        let s = TuningSpec::parse(&v).unwrap();
        assert_eq!(s.strategy, Strategy::Bayesian);
        assert_eq!(s.early_stopping, EarlyStopping::Off);
        assert_eq!((s.max_jobs, s.max_parallel_jobs, s.seed), (10, 1, 0));
        let t = s.trial_spec(
            4,
            &[("lr".into(), "0.01".into()), ("depth".into(), "3".into())],
        );
        assert_eq!(
            t["hyperparameters"],
            json!({"epochs": "3", "lr": "0.01", "depth": "3"})
        );
        assert_eq!(t["experiment"], "tuning");
        assert_eq!(t["name"], "trial-005");
        assert_eq!(t["command"], json!(["python", "train.py"]));
        UserJobSpec::parse(JobKind::Training, &t).unwrap();
    }

    #[test]
    fn mistakes_name_the_field() {
        let with = |path: &[&str], v: Value| {
            let mut s = ok();
            let mut at = &mut s;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = v;
            TuningSpec::parse(&s).unwrap_err().to_string()
        };
        let cases = [
            (with(&["max_jobs"], json!(0)), "'max_jobs'"),
            (with(&["max_jobs"], json!(501)), "from 1 to 500"),
            (
                with(&["max_parallel_jobs"], json!(21)),
                "'max_parallel_jobs'",
            ),
            (
                with(&["max_parallel_jobs"], json!(0)),
                "'max_parallel_jobs'",
            ),
            (with(&["strategy"], json!("grid")), "'strategy'"),
            (with(&["early_stopping"], json!("auto")), "'early_stopping'"),
            (with(&["seed"], json!(-1)), "'seed'"),
            (
                with(&["objective", "direction"], json!("down")),
                "'objective.direction'",
            ),
            (
                with(&["objective", "metric"], json!("")),
                "'objective.metric'",
            ),
            (with(&["objective"], json!("val_loss")), "'objective'"),
            (with(&["parameters"], json!({})), "'parameters'"),
            (
                with(
                    &["parameters", "epochs"],
                    json!({"type": "integer", "min": 1, "max": 9}),
                ),
                "'parameters.epochs': 'epochs' is also a fixed hyperparameter",
            ),
            (
                with(&["training", "command"], json!([])),
                "'training': give the command",
            ),
            (with(&["training", "outputs"], json!(["x"])), "'training'"),
            (
                with(&["training", "register_model"], json!("m")),
                "'training.register_model'",
            ),
            (with(&["trainig"], json!({})), "unknown field 'trainig'"),
        ];
        for (e, want) in cases {
            assert!(e.contains(want), "{e} (wanted {want})");
        }
        let mut v = ok();
        v.as_object_mut().unwrap().remove("training");
        assert!(
            TuningSpec::parse(&v)
                .unwrap_err()
                .to_string()
                .contains("'training'")
        );
    }
}
