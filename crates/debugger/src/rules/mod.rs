//! The rule engines: one incremental state machine per rule.
//!
//! The [`crate::Watch`] routes each metric key once to the engines that read it ([`Engine::route`]),
//! then hands them points in `(step, timestamp)` order with their freshness ([`Fresh`]). Engines
//! report [`Violation`]s; the watch turns the first into the rule's trigger and counts the rest.

mod profiler;
mod training;

use serde_json::{Map, Value};

use crate::spec::RuleConfig;
use crate::watch::Point;

/// Where a key's points go inside an engine: a role (e.g. training vs validation loss) and the
/// engine's own series index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub role: u8,
    pub series: u32,
}

/// How a point relates to what was already read for its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fresh {
    /// Later (step, then timestamp) than anything read for the key.
    New,
    /// Same step and timestamp as the latest point read for the key.
    Duplicate,
    /// Earlier than the latest point read for the key.
    Late,
}

/// A rule's condition met at one point in the stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Violation {
    pub step: Option<i64>,
    pub timestamp_ms: Option<i64>,
    pub values: Map<String, Value>,
    pub message: String,
}

/// How a rule that never fired ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// `NoIssuesFound`, with a summary.
    Clean(String),
    /// `Error`: the metrics it needs never appeared.
    Missing {
        metrics: Vec<String>,
        message: String,
    },
}

/// One rule's incremental state.
pub(crate) trait Engine: Send + std::fmt::Debug {
    /// Called once per distinct metric key: whether (and how) the engine reads it.
    fn route(&mut self, key: &str) -> Option<Route>;
    /// A point of a routed key, in `(step, timestamp)` order within the batch.
    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, now_ms: i64, out: &mut Sink);
    /// After every point of a batch.
    fn batch_end(&mut self, _now_ms: i64, _out: &mut Sink) {}
    /// The caller's clock moved (every `observe`, `tick` and `finish`).
    fn tick(&mut self, _now_ms: i64, _out: &mut Sink) {}
    /// The job ended: settle anything pending.
    fn flush(&mut self, _now_ms: i64, _out: &mut Sink) {}
    /// How many times the rule's condition was evaluated.
    fn evaluations(&self) -> u64;
    /// The verdict of a rule that never fired, at the end.
    fn outcome(&self) -> Outcome;
}

/// Where engines put their violations.
pub(crate) type Sink = Vec<Violation>;

/// Builds the engine for a (non-report) rule configuration; `None` for ProfilerReport, whose
/// rules the watch builds one by one.
pub(crate) fn build(config: &RuleConfig, start_ms: i64) -> Option<Box<dyn Engine>> {
    Some(match config {
        RuleConfig::LossNotDecreasing(p) => Box::new(training::LossNotDecreasing::new(p)),
        RuleConfig::Overfit(p) => Box::new(training::Overfit::new(p)),
        RuleConfig::Overtraining(p) => Box::new(training::Overtraining::new(p)),
        RuleConfig::ExplodingTensor(p) => Box::new(training::ExplodingTensor::new(p)),
        RuleConfig::VanishingGradient(p) => Box::new(training::VanishingGradient::new(p)),
        RuleConfig::StalledTrainingRule(p) => Box::new(training::Stalled::new(p, start_ms)),
        RuleConfig::ClassImbalance(p) => Box::new(training::ClassImbalance::new(p)),
        RuleConfig::UnchangedTensor(p) => Box::new(training::UnchangedTensor::new(p)),
        RuleConfig::CpuBottleneck(p) => Box::new(profiler::Bottleneck::cpu(p)),
        RuleConfig::IoBottleneck(p) => Box::new(profiler::Bottleneck::io(p)),
        RuleConfig::LowGpuUtilization(p) => Box::new(profiler::LowGpu::new(p)),
        RuleConfig::GpuMemoryIncrease(p) => Box::new(profiler::GpuMemory::new(p)),
        RuleConfig::StepOutlier(p) => Box::new(profiler::StepOutlier::new(p)),
        RuleConfig::MaxInitializationTime(p) => Box::new(profiler::MaxInit::new(p, start_ms)),
        RuleConfig::ProfilerReport(_) => return None,
    })
}

/// A JSON number, or MLflow's strings for non-finite values (`"NaN"`, `"Infinity"`, `"-Infinity"`).
pub(crate) fn num(value: f64) -> Value {
    match serde_json::Number::from_f64(value) {
        Some(n) => Value::Number(n),
        None if value.is_nan() => Value::from("NaN"),
        None if value > 0.0 => Value::from("Infinity"),
        None => Value::from("-Infinity"),
    }
}

/// Builds the `values` of a violation.
#[derive(Debug, Default)]
pub(crate) struct Values(Map<String, Value>);

impl Values {
    pub fn new() -> Values {
        Values(Map::new())
    }
    pub fn num(mut self, name: &str, value: f64) -> Values {
        self.0.insert(name.to_owned(), num(value));
        self
    }
    pub fn int(mut self, name: &str, value: i64) -> Values {
        self.0.insert(name.to_owned(), Value::from(value));
        self
    }
    pub fn count(mut self, name: &str, value: u64) -> Values {
        self.0.insert(name.to_owned(), Value::from(value));
        self
    }
    pub fn text(mut self, name: &str, value: &str) -> Values {
        self.0.insert(name.to_owned(), Value::from(value));
        self
    }
    pub fn opt_text(self, name: &str, value: Option<&str>) -> Values {
        match value {
            Some(v) => self.text(name, v),
            None => self,
        }
    }
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// Priority bookkeeping for rules that read one series among several candidate keys: the key
/// matching the earliest-listed pattern wins (then the key routed first); a better key appearing
/// later takes over. Priorities are `(pattern index, series index)`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Chosen(Option<(usize, u32)>);

/// What [`Chosen::offer`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// The key is the one in use.
    Same,
    /// The key replaces a worse one (or is the first): reset the series' state.
    Switch,
    /// A better key is in use: ignore the point.
    Ignore,
}

impl Chosen {
    pub fn offer(&mut self, priority: (usize, u32)) -> Choice {
        match self.0 {
            Some(current) if current == priority => Choice::Same,
            Some(current) if current < priority => Choice::Ignore,
            _ => {
                self.0 = Some(priority);
                Choice::Switch
            }
        }
    }
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}
