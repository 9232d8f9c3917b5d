//! Rule specifications: names, typed parameters with SageMaker's defaults, parsing of the text
//! form (`Overfit:patience=3,ratio_threshold=0.2`) and of the JSON form
//! (`{"name": "Overfit", "parameters": {"patience": 3}}`), and the catalogue ([`RuleSpec::known`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::keys::MetricKeys;

/// Largest `window` / `num_steps` accepted: it bounds the memory a rule keeps per series.
pub const MAX_WINDOW: u64 = 1_000_000;

/// Default training-loss keys.
pub const TRAIN_LOSS_KEYS: &str = "loss|train_loss|training_loss|train/loss";
/// Default validation-loss keys.
pub const VAL_LOSS_KEYS: &str = "val_loss|validation_loss|eval_loss|val/loss";
/// Default gradient-statistic keys (as logged by Atelier's Python helper).
pub const GRADIENT_KEYS: &str = "grad_norm|gradients/*/norm|gradients/*/mean_abs";
/// Default weight-statistic keys.
pub const WEIGHT_KEYS: &str = "weights/*";
/// Default per-class label counts (running totals; `*` is the class).
pub const LABEL_COUNT_KEYS: &str = "label_count/*";
/// Default per-class misprediction counts (running totals; `*` is the class).
pub const MISPREDICTED_KEYS: &str = "mispredicted/*";
/// Every training metric (a pattern without `system/` never matches system metrics).
pub const ANY_TRAINING_KEYS: &str = "*";
/// MLflow's CPU utilisation system metric.
pub const CPU_KEYS: &str = "system/cpu_utilization_percentage";
/// MLflow's per-GPU utilisation system metric (`*` is the GPU index).
pub const GPU_KEYS: &str = "system/gpu_*_utilization_percentage";
/// MLflow's per-GPU memory system metric, in percent of the GPU's memory.
pub const GPU_MEMORY_KEYS: &str = "system/gpu_*_memory_usage_percentage";
/// I/O wait in percent of CPU time; MLflow's sampler does not log it (see the crate docs).
pub const IO_WAIT_KEYS: &str = "system/io_wait_percentage";
/// Duration of a training step, if the training script logs it.
pub const STEP_TIME_KEYS: &str = "step_time|train/step_time";

/// SageMaker Debugger rules that Atelier does not implement (named in error messages).
const SAGEMAKER_ONLY: &[&str] = &[
    "WeightUpdateRatio",
    "AllZero",
    "DeadRelu",
    "PoorWeightInitialization",
    "Confusion",
    "SaturatedActivation",
    "TensorVariance",
    "CheckInputImages",
    "NLPSequenceRatio",
    "SimilarAcrossRuns",
    "FeatureImportanceOverweight",
    "TreeDepth",
    "CreateXgboostReport",
    "BatchSize",
    "Dataloader",
    "LoadBalancing",
    "OverallSystemUsage",
    "OverallFrameworkMetrics",
];

// ---------------------------------------------------------------------------------------------
// Raw values and parameter types

/// A parameter value as the user gave it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    Text(&'a str),
    Json(&'a Value),
}

impl Raw<'_> {
    fn text(&self) -> Option<&str> {
        match self {
            Raw::Text(text) => Some(text.trim()),
            Raw::Json(Value::String(text)) => Some(text.trim()),
            Raw::Json(_) => None,
        }
    }

    fn shown(&self) -> String {
        match self {
            Raw::Text(text) => (*text).to_owned(),
            Raw::Json(Value::String(text)) => text.clone(),
            Raw::Json(other) => other.to_string(),
        }
    }
}

/// A type a rule parameter can have.
pub(crate) trait ParamType: Sized {
    fn parse(raw: &Raw<'_>) -> Option<Self>;
    fn to_json(&self) -> Value;
    fn display(&self) -> String;
}

impl ParamType for f64 {
    fn parse(raw: &Raw<'_>) -> Option<f64> {
        let value = match raw {
            Raw::Json(Value::Number(n)) => n.as_f64()?,
            _ => raw.text()?.parse::<f64>().ok()?,
        };
        value.is_finite().then_some(value)
    }
    fn to_json(&self) -> Value {
        serde_json::Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }
    fn display(&self) -> String {
        format!("{self}")
    }
}

impl ParamType for u64 {
    fn parse(raw: &Raw<'_>) -> Option<u64> {
        match raw {
            Raw::Json(Value::Number(n)) => n.as_u64(),
            _ => raw.text()?.parse().ok(),
        }
    }
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
    fn display(&self) -> String {
        self.to_string()
    }
}

impl ParamType for i64 {
    fn parse(raw: &Raw<'_>) -> Option<i64> {
        match raw {
            Raw::Json(Value::Number(n)) => n.as_i64(),
            _ => raw.text()?.parse().ok(),
        }
    }
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
    fn display(&self) -> String {
        self.to_string()
    }
}

impl ParamType for bool {
    fn parse(raw: &Raw<'_>) -> Option<bool> {
        match raw {
            Raw::Json(Value::Bool(b)) => Some(*b),
            _ => {
                let text = raw.text()?;
                if text.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if text.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }
            }
        }
    }
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
    fn display(&self) -> String {
        self.to_string()
    }
}

fn is_none_text(raw: &Raw<'_>) -> bool {
    matches!(raw, Raw::Json(Value::Null))
        || raw
            .text()
            .is_some_and(|t| t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("null"))
}

impl ParamType for Option<f64> {
    fn parse(raw: &Raw<'_>) -> Option<Option<f64>> {
        if is_none_text(raw) {
            return Some(None);
        }
        f64::parse(raw).map(Some)
    }
    fn to_json(&self) -> Value {
        self.map_or(Value::Null, |v| v.to_json())
    }
    fn display(&self) -> String {
        self.map_or_else(|| "none".to_owned(), |v| v.display())
    }
}

/// SageMaker's step modes, used by [`LossNotDecreasing`]'s `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    /// Validation: the validation-loss keys.
    Eval,
    /// Training: the training-loss keys.
    Train,
    /// Both, each series on its own.
    Global,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Eval => "EVAL",
            Mode::Train => "TRAIN",
            Mode::Global => "GLOBAL",
        }
    }
}

impl ParamType for Option<Mode> {
    fn parse(raw: &Raw<'_>) -> Option<Option<Mode>> {
        if is_none_text(raw) {
            return Some(None);
        }
        let text = raw.text()?;
        [Mode::Eval, Mode::Train, Mode::Global]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(text))
            .map(Some)
    }
    fn to_json(&self) -> Value {
        self.map_or(Value::Null, |m| Value::from(m.name()))
    }
    fn display(&self) -> String {
        self.map_or("none", Mode::name).to_owned()
    }
}

impl ParamType for MetricKeys {
    fn parse(raw: &Raw<'_>) -> Option<MetricKeys> {
        match raw {
            Raw::Json(Value::Array(items)) => {
                let texts = items
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Option<Vec<_>>>()?;
                MetricKeys::parse(&texts.join("|"))
            }
            _ => MetricKeys::parse(raw.text()?),
        }
    }
    fn to_json(&self) -> Value {
        Value::from(self.to_string())
    }
    fn display(&self) -> String {
        self.to_string()
    }
}

/// Range checks, named after what they accept.
mod check {
    use super::MAX_WINDOW;

    pub fn any<T>(_: &T) -> bool {
        true
    }
    pub fn percent(v: &f64) -> bool {
        (0.0..=100.0).contains(v)
    }
    pub fn fraction(v: &f64) -> bool {
        (0.0..=1.0).contains(v)
    }
    pub fn non_negative(v: &f64) -> bool {
        *v >= 0.0
    }
    pub fn positive(v: &f64) -> bool {
        *v > 0.0
    }
    pub fn at_least_one_f(v: &f64) -> bool {
        *v >= 1.0
    }
    pub fn at_least_one(v: &u64) -> bool {
        *v >= 1
    }
    pub fn window(v: &u64) -> bool {
        (1..=MAX_WINDOW).contains(v)
    }
    pub fn window2(v: &u64) -> bool {
        (2..=MAX_WINDOW).contains(v)
    }
    pub fn open_percent(v: &Option<f64>) -> bool {
        v.is_none_or(|p| p > 0.0 && p < 100.0)
    }
}

/// One parameter of a rule, for `--help`, error messages and the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    /// The parameter's name.
    pub name: String,
    /// What values it takes ("a number from 0 to 100").
    #[serde(rename = "type")]
    pub expected: &'static str,
    /// Its default, in the text form.
    pub default: String,
    /// One line on what it does.
    pub description: &'static str,
}

fn assign<T: ParamType>(
    slot: &mut T,
    raw: &Raw<'_>,
    check: fn(&T) -> bool,
    expected: &'static str,
) -> Result<(), &'static str> {
    let value = T::parse(raw).ok_or(expected)?;
    if !check(&value) {
        return Err(expected);
    }
    *slot = value;
    Ok(())
}

/// Defines a rule's parameter struct, its defaults, its catalogue entry and its setter from one
/// table, so that the three never disagree.
macro_rules! rule_params {
    (
        $(#[doc = $sdoc:literal])*
        $name:ident {
            $( $field:ident : $ty:ty = $default:expr, $check:path, $expected:literal, $doc:literal; )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( #[doc = $doc] pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $name {
            pub(crate) fn infos() -> Vec<ParamInfo> {
                let defaults = Self::default();
                vec![$(
                    ParamInfo {
                        name: stringify!($field).to_owned(),
                        expected: $expected,
                        default: ParamType::display(&defaults.$field),
                        description: $doc,
                    },
                )*]
            }

            pub(crate) fn set(
                &mut self,
                name: &str,
                raw: &Raw<'_>,
            ) -> Option<Result<(), &'static str>> {
                match name {
                    $( stringify!($field) => Some(assign(&mut self.$field, raw, $check, $expected)), )*
                    _ => None,
                }
            }

            pub(crate) fn write_json(&self, out: &mut Map<String, Value>) {
                $( out.insert(stringify!($field).to_owned(), ParamType::to_json(&self.$field)); )*
            }
        }
    };
}

rule_params! {
    /// LossNotDecreasing: the loss at a step is compared with the loss at least `num_steps` steps
    /// earlier, every `num_steps` steps.
    LossNotDecreasing {
        num_steps: u64 = 10, check::window, "an integer from 1 to 1000000",
            "Steps between the two losses compared; a check runs every num_steps steps.";
        diff_percent: Option<f64> = None, check::open_percent, "a number between 0 and 100 (exclusive), or none",
            "Minimum decrease, in percent, between the two losses; none: any decrease will do.";
        mode: Option<Mode> = None, check::any, "EVAL, TRAIN, GLOBAL or none",
            "Which losses: EVAL (validation), TRAIN (training), GLOBAL (both); none: validation when logged, else training.";
        loss_metric: MetricKeys = MetricKeys::builtin(TRAIN_LOSS_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Training-loss keys (every matching key is checked on its own).";
        val_loss_metric: MetricKeys = MetricKeys::builtin(VAL_LOSS_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Validation-loss keys (every matching key is checked on its own).";
    }
}

rule_params! {
    /// Overfit: (validation loss − mean training loss) / mean training loss against a threshold.
    Overfit {
        start_step: i64 = 0, check::any, "an integer",
            "Validation losses logged before this step are not compared.";
        patience: u64 = 1, check::at_least_one, "an integer ≥ 1",
            "Consecutive comparisons above ratio_threshold before the rule fires.";
        ratio_threshold: f64 = 0.1, check::any, "a number",
            "Largest accepted (validation loss − mean training loss) / mean training loss.";
        loss_metric: MetricKeys = MetricKeys::builtin(TRAIN_LOSS_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Training-loss keys; the first listed that is logged is used.";
        val_loss_metric: MetricKeys = MetricKeys::builtin(VAL_LOSS_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Validation-loss keys; the first listed that is logged is used.";
    }
}

rule_params! {
    /// Overtraining: the validation loss has stopped improving while the training loss still improves.
    Overtraining {
        patience_train: u64 = 5, check::at_least_one, "an integer ≥ 1",
            "Training losses without a new optimum after which training counts as no longer improving.";
        patience_validation: u64 = 10, check::at_least_one, "an integer ≥ 1",
            "Validation losses without a new optimum after which the rule fires (if training still improves).";
        delta: f64 = 0.1, check::non_negative, "a number ≥ 0",
            "How much lower than the best loss so far a loss must be to count as a new optimum.";
        loss_metric: MetricKeys = MetricKeys::builtin(TRAIN_LOSS_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Training-loss keys; the first listed that is logged is used.";
        val_loss_metric: MetricKeys = MetricKeys::builtin(VAL_LOSS_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Validation-loss keys; the first listed that is logged is used.";
    }
}

rule_params! {
    /// ExplodingTensor: a logged value is NaN or infinite.
    ExplodingTensor {
        only_nan: bool = false, check::any, "true or false",
            "Fire on NaN only; false: on NaN and ±infinity.";
        metrics: MetricKeys = MetricKeys::builtin(ANY_TRAINING_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Keys inspected; * is every training metric (system metrics excluded).";
    }
}

rule_params! {
    /// VanishingGradient: a gradient statistic falls below a threshold.
    VanishingGradient {
        threshold: f64 = 0.0000001, check::non_negative, "a number ≥ 0",
            "The rule fires when a gradient statistic's absolute value is below this.";
        gradient_metric: MetricKeys = MetricKeys::builtin(GRADIENT_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Gradient statistics: mean absolute gradients or gradient norms (a norm below the threshold implies a mean below it).";
    }
}

rule_params! {
    /// StalledTrainingRule: no new training metric for `threshold` seconds.
    StalledTrainingRule {
        threshold: f64 = 1800.0, check::positive, "a number of seconds > 0",
            "Seconds without a new training-metric point after which the rule fires.";
        stop_training_on_fire: bool = false, check::any, "true or false",
            "SageMaker's name for stop_training on this rule.";
        metrics: MetricKeys = MetricKeys::builtin(ANY_TRAINING_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Keys that count as training progress (system metrics never do unless listed).";
    }
}

rule_params! {
    /// ClassImbalance: class counts too unequal, or a class mispredicted too often.
    ClassImbalance {
        threshold_imbalance: f64 = 10.0, check::at_least_one_f, "a number ≥ 1",
            "Largest accepted ratio between the largest and the smallest class count.";
        threshold_misprediction: f64 = 0.7, check::fraction, "a number from 0 to 1",
            "Largest accepted fraction of a class's samples that are mispredicted.";
        samples: u64 = 500, check::any, "an integer ≥ 0",
            "Labels (summed over classes) to count before the rule evaluates.";
        labels_metric: MetricKeys = MetricKeys::builtin(LABEL_COUNT_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Running count of samples per class; * is the class.";
        mispredicted_metric: MetricKeys = MetricKeys::builtin(MISPREDICTED_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Running count of mispredicted samples per class; * is the class.";
    }
}

rule_params! {
    /// UnchangedTensor: a statistic has not changed over the last `num_steps` logged steps.
    UnchangedTensor {
        num_steps: u64 = 3, check::window2, "an integer from 2 to 1000000",
            "Logged steps (not necessarily consecutive) that must all be close for the rule to fire.";
        rtol: f64 = 0.00001, check::non_negative, "a number ≥ 0",
            "Relative tolerance, as numpy.allclose.";
        atol: f64 = 0.00000001, check::non_negative, "a number ≥ 0",
            "Absolute tolerance, as numpy.allclose.";
        equal_nan: bool = false, check::any, "true or false",
            "Whether NaN equals NaN.";
        weight_metric: MetricKeys = MetricKeys::builtin(WEIGHT_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Statistics inspected, each key on its own.";
    }
}

rule_params! {
    /// CPUBottleneck: the GPU idles while the CPU is busy, for too large a share of the samples.
    CpuBottleneck {
        threshold: f64 = 50.0, check::percent, "a number from 0 to 100",
            "Share of samples, in percent, that may be bottlenecks before the rule fires.";
        gpu_threshold: f64 = 10.0, check::percent, "a number from 0 to 100",
            "GPU utilisation (percent) below which a GPU counts as idle.";
        cpu_threshold: f64 = 90.0, check::percent, "a number from 0 to 100",
            "CPU utilisation (percent) above which the CPU counts as busy.";
        patience: u64 = 1000, check::any, "an integer ≥ 0",
            "System samples to collect before the first evaluation.";
        scan_interval_us: u64 = 60_000_000, check::at_least_one, "an integer ≥ 1",
            "Accepted for SageMaker compatibility; rules here evaluate on every sample.";
        cpu_metric: MetricKeys = MetricKeys::builtin(CPU_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "CPU utilisation keys.";
        gpu_metric: MetricKeys = MetricKeys::builtin(GPU_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "GPU utilisation keys; * is the GPU.";
    }
}

rule_params! {
    /// IOBottleneck: the GPU idles while the CPU waits on I/O, for too large a share of the samples.
    IoBottleneck {
        threshold: f64 = 50.0, check::percent, "a number from 0 to 100",
            "Share of samples, in percent, that may be bottlenecks before the rule fires.";
        gpu_threshold: f64 = 10.0, check::percent, "a number from 0 to 100",
            "GPU utilisation (percent) below which a GPU counts as idle.";
        io_threshold: f64 = 50.0, check::percent, "a number from 0 to 100",
            "I/O wait (percent) above which I/O counts as the bottleneck.";
        patience: u64 = 1000, check::any, "an integer ≥ 0",
            "System samples to collect before the first evaluation.";
        scan_interval_us: u64 = 60_000_000, check::at_least_one, "an integer ≥ 1",
            "Accepted for SageMaker compatibility; rules here evaluate on every sample.";
        io_metric: MetricKeys = MetricKeys::builtin(IO_WAIT_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "I/O wait keys (not logged by MLflow's sampler).";
        gpu_metric: MetricKeys = MetricKeys::builtin(GPU_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "GPU utilisation keys; * is the GPU.";
    }
}

rule_params! {
    /// LowGPUUtilization: a GPU's utilisation is low (p95 below threshold_p95) or fluctuates
    /// (p95 above it and p5 below threshold_p5) over the last `window` samples.
    LowGpuUtilization {
        threshold_p95: f64 = 70.0, check::percent, "a number from 0 to 100",
            "95th percentile of utilisation below which a GPU is underused.";
        threshold_p5: f64 = 10.0, check::percent, "a number from 0 to 100",
            "5th percentile below which a busy GPU is fluctuating.";
        window: u64 = 500, check::window, "an integer from 1 to 1000000",
            "Latest samples per GPU the percentiles are computed over.";
        patience: u64 = 1000, check::any, "an integer ≥ 0",
            "Samples per GPU to collect before the first evaluation.";
        scan_interval_us: u64 = 60_000_000, check::at_least_one, "an integer ≥ 1",
            "Accepted for SageMaker compatibility; rules here evaluate on every sample.";
        gpu_metric: MetricKeys = MetricKeys::builtin(GPU_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "GPU utilisation keys; * is the GPU.";
    }
}

rule_params! {
    /// GPUMemoryIncrease: a GPU's mean memory use over the last `window` samples exceeds the mean
    /// over the `window` samples before by more than `increase` percentage points.
    GpuMemoryIncrease {
        increase: f64 = 5.0, check::non_negative, "a number of percentage points ≥ 0",
            "Largest accepted rise of the moving average of memory use.";
        patience: u64 = 1000, check::any, "an integer ≥ 0",
            "Samples per GPU to collect before the first evaluation.";
        window: u64 = 10, check::window, "an integer from 1 to 1000000",
            "Samples per moving average.";
        scan_interval_us: u64 = 60_000_000, check::at_least_one, "an integer ≥ 1",
            "Accepted for SageMaker compatibility; rules here evaluate on every sample.";
        memory_metric: MetricKeys = MetricKeys::builtin(GPU_MEMORY_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "GPU memory use keys, in percent; * is the GPU.";
    }
}

rule_params! {
    /// StepOutlier: more than `n_outliers` steps took longer than mean + stddev × standard deviation.
    StepOutlier {
        stddev: f64 = 3.0, check::positive, "a number > 0",
            "Standard deviations above the mean at which a step duration is an outlier.";
        n_outliers: u64 = 10, check::any, "an integer ≥ 0",
            "Outliers tolerated; the rule fires at the next one.";
        scan_interval_us: u64 = 60_000_000, check::at_least_one, "an integer ≥ 1",
            "Accepted for SageMaker compatibility; rules here evaluate on every sample.";
        step_time_metric: MetricKeys = MetricKeys::builtin(STEP_TIME_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Step duration keys; when none is logged, durations come from the training loss's timestamps.";
        loss_metric: MetricKeys = MetricKeys::builtin(TRAIN_LOSS_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Training-loss keys whose timestamps give step durations when no step time is logged.";
    }
}

rule_params! {
    /// MaxInitializationTime: no training metric within `threshold` minutes of the job's start.
    MaxInitializationTime {
        threshold: f64 = 20.0, check::positive, "a number of minutes > 0",
            "Minutes to wait for the first training-metric point.";
        scan_interval_us: u64 = 60_000_000, check::at_least_one, "an integer ≥ 1",
            "Accepted for SageMaker compatibility; rules here evaluate on every call.";
        metrics: MetricKeys = MetricKeys::builtin(ANY_TRAINING_KEYS), check::any, "metric keys separated by |, * as a wildcard",
            "Keys whose first point counts as the first step.";
    }
}

/// ProfilerReport: every profiler rule, each configurable as `<Rule>_<parameter>`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfilerReport {
    /// Accepted for SageMaker compatibility; Atelier sends no telemetry.
    pub opt_out_telemetry: bool,
    /// The profiler rules, in [`RuleKind::PROFILER`] order.
    pub rules: Vec<RuleSpec>,
}

impl Default for ProfilerReport {
    fn default() -> Self {
        ProfilerReport {
            opt_out_telemetry: false,
            rules: RuleKind::PROFILER.into_iter().map(RuleSpec::new).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rule kinds and configurations

/// The rules Atelier implements, by SageMaker's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// `LossNotDecreasing`
    LossNotDecreasing,
    /// `Overfit`
    Overfit,
    /// `Overtraining`
    Overtraining,
    /// `ExplodingTensor`
    ExplodingTensor,
    /// `VanishingGradient`
    VanishingGradient,
    /// `StalledTrainingRule`
    StalledTrainingRule,
    /// `ClassImbalance`
    ClassImbalance,
    /// `UnchangedTensor`
    UnchangedTensor,
    /// `CPUBottleneck`
    CpuBottleneck,
    /// `IOBottleneck`
    IoBottleneck,
    /// `LowGPUUtilization`
    LowGpuUtilization,
    /// `GPUMemoryIncrease`
    GpuMemoryIncrease,
    /// `StepOutlier`
    StepOutlier,
    /// `MaxInitializationTime`
    MaxInitializationTime,
    /// `ProfilerReport`
    ProfilerReport,
}

impl RuleKind {
    /// Every rule, in catalogue order.
    pub const ALL: [RuleKind; 15] = [
        RuleKind::LossNotDecreasing,
        RuleKind::Overfit,
        RuleKind::Overtraining,
        RuleKind::ExplodingTensor,
        RuleKind::VanishingGradient,
        RuleKind::StalledTrainingRule,
        RuleKind::ClassImbalance,
        RuleKind::UnchangedTensor,
        RuleKind::CpuBottleneck,
        RuleKind::IoBottleneck,
        RuleKind::LowGpuUtilization,
        RuleKind::GpuMemoryIncrease,
        RuleKind::StepOutlier,
        RuleKind::MaxInitializationTime,
        RuleKind::ProfilerReport,
    ];

    /// The profiler rules ProfilerReport runs.
    pub const PROFILER: [RuleKind; 6] = [
        RuleKind::CpuBottleneck,
        RuleKind::IoBottleneck,
        RuleKind::LowGpuUtilization,
        RuleKind::GpuMemoryIncrease,
        RuleKind::StepOutlier,
        RuleKind::MaxInitializationTime,
    ];

    /// SageMaker's name of the rule.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::LossNotDecreasing => "LossNotDecreasing",
            RuleKind::Overfit => "Overfit",
            RuleKind::Overtraining => "Overtraining",
            RuleKind::ExplodingTensor => "ExplodingTensor",
            RuleKind::VanishingGradient => "VanishingGradient",
            RuleKind::StalledTrainingRule => "StalledTrainingRule",
            RuleKind::ClassImbalance => "ClassImbalance",
            RuleKind::UnchangedTensor => "UnchangedTensor",
            RuleKind::CpuBottleneck => "CPUBottleneck",
            RuleKind::IoBottleneck => "IOBottleneck",
            RuleKind::LowGpuUtilization => "LowGPUUtilization",
            RuleKind::GpuMemoryIncrease => "GPUMemoryIncrease",
            RuleKind::StepOutlier => "StepOutlier",
            RuleKind::MaxInitializationTime => "MaxInitializationTime",
            RuleKind::ProfilerReport => "ProfilerReport",
        }
    }

    /// One line on what the rule detects.
    pub fn description(self) -> &'static str {
        match self {
            RuleKind::LossNotDecreasing => {
                "The loss does not decrease (by diff_percent) over num_steps steps."
            }
            RuleKind::Overfit => {
                "The validation loss exceeds the training loss by more than ratio_threshold, patience times in a row."
            }
            RuleKind::Overtraining => {
                "The validation loss stopped improving while the training loss still improves."
            }
            RuleKind::ExplodingTensor => "A metric is NaN or infinite.",
            RuleKind::VanishingGradient => "A gradient statistic falls below threshold.",
            RuleKind::StalledTrainingRule => "No new training metric for threshold seconds.",
            RuleKind::ClassImbalance => {
                "Class counts are too unequal, or a class is mispredicted too often."
            }
            RuleKind::UnchangedTensor => {
                "A statistic (weights by default) stays the same over num_steps logged steps."
            }
            RuleKind::CpuBottleneck => {
                "GPUs idle while the CPU is busy in more than threshold percent of system samples."
            }
            RuleKind::IoBottleneck => {
                "GPUs idle while the CPU waits on I/O in more than threshold percent of system samples."
            }
            RuleKind::LowGpuUtilization => "A GPU is underused or its utilisation fluctuates.",
            RuleKind::GpuMemoryIncrease => "A GPU's memory use rises quickly.",
            RuleKind::StepOutlier => "Too many steps take much longer than usual.",
            RuleKind::MaxInitializationTime => {
                "The first training step takes more than threshold minutes to appear."
            }
            RuleKind::ProfilerReport => {
                "Runs every profiler rule; override their parameters as <Rule>_<parameter>."
            }
        }
    }

    /// Whether this is one of the profiler rules (system metrics and timing).
    pub fn is_profiler(self) -> bool {
        RuleKind::PROFILER.contains(&self)
    }

    /// Looks a rule up by name: case-insensitive, `_`, `-` and spaces ignored, so
    /// `loss_not_decreasing` (the Python SDK's spelling) works too.
    pub fn from_name(name: &str) -> Option<RuleKind> {
        let wanted = normalize(name);
        if wanted == "stalledtraining" {
            return Some(RuleKind::StalledTrainingRule);
        }
        RuleKind::ALL
            .into_iter()
            .find(|kind| normalize(kind.name()) == wanted)
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for RuleKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for RuleKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RuleKind, D::Error> {
        let name = String::deserialize(deserializer)?;
        RuleKind::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(unknown_rule(&name).to_string()))
    }
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A rule with its typed parameters.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum RuleConfig {
    LossNotDecreasing(LossNotDecreasing),
    Overfit(Overfit),
    Overtraining(Overtraining),
    ExplodingTensor(ExplodingTensor),
    VanishingGradient(VanishingGradient),
    StalledTrainingRule(StalledTrainingRule),
    ClassImbalance(ClassImbalance),
    UnchangedTensor(UnchangedTensor),
    CpuBottleneck(CpuBottleneck),
    IoBottleneck(IoBottleneck),
    LowGpuUtilization(LowGpuUtilization),
    GpuMemoryIncrease(GpuMemoryIncrease),
    StepOutlier(StepOutlier),
    MaxInitializationTime(MaxInitializationTime),
    ProfilerReport(ProfilerReport),
}

/// Runs `$simple` with `$p` bound to the parameters of a simple rule, `$report` for ProfilerReport.
macro_rules! on_config {
    ($config:expr, $p:ident => $simple:expr, $r:ident => $report:expr) => {
        match $config {
            RuleConfig::LossNotDecreasing($p) => $simple,
            RuleConfig::Overfit($p) => $simple,
            RuleConfig::Overtraining($p) => $simple,
            RuleConfig::ExplodingTensor($p) => $simple,
            RuleConfig::VanishingGradient($p) => $simple,
            RuleConfig::StalledTrainingRule($p) => $simple,
            RuleConfig::ClassImbalance($p) => $simple,
            RuleConfig::UnchangedTensor($p) => $simple,
            RuleConfig::CpuBottleneck($p) => $simple,
            RuleConfig::IoBottleneck($p) => $simple,
            RuleConfig::LowGpuUtilization($p) => $simple,
            RuleConfig::GpuMemoryIncrease($p) => $simple,
            RuleConfig::StepOutlier($p) => $simple,
            RuleConfig::MaxInitializationTime($p) => $simple,
            RuleConfig::ProfilerReport($r) => $report,
        }
    };
}

impl RuleConfig {
    /// The rule with SageMaker's default parameters.
    pub fn default_for(kind: RuleKind) -> RuleConfig {
        match kind {
            RuleKind::LossNotDecreasing => RuleConfig::LossNotDecreasing(Default::default()),
            RuleKind::Overfit => RuleConfig::Overfit(Default::default()),
            RuleKind::Overtraining => RuleConfig::Overtraining(Default::default()),
            RuleKind::ExplodingTensor => RuleConfig::ExplodingTensor(Default::default()),
            RuleKind::VanishingGradient => RuleConfig::VanishingGradient(Default::default()),
            RuleKind::StalledTrainingRule => RuleConfig::StalledTrainingRule(Default::default()),
            RuleKind::ClassImbalance => RuleConfig::ClassImbalance(Default::default()),
            RuleKind::UnchangedTensor => RuleConfig::UnchangedTensor(Default::default()),
            RuleKind::CpuBottleneck => RuleConfig::CpuBottleneck(Default::default()),
            RuleKind::IoBottleneck => RuleConfig::IoBottleneck(Default::default()),
            RuleKind::LowGpuUtilization => RuleConfig::LowGpuUtilization(Default::default()),
            RuleKind::GpuMemoryIncrease => RuleConfig::GpuMemoryIncrease(Default::default()),
            RuleKind::StepOutlier => RuleConfig::StepOutlier(Default::default()),
            RuleKind::MaxInitializationTime => {
                RuleConfig::MaxInitializationTime(Default::default())
            }
            RuleKind::ProfilerReport => RuleConfig::ProfilerReport(Default::default()),
        }
    }

    /// Which rule this is.
    pub fn kind(&self) -> RuleKind {
        match self {
            RuleConfig::LossNotDecreasing(_) => RuleKind::LossNotDecreasing,
            RuleConfig::Overfit(_) => RuleKind::Overfit,
            RuleConfig::Overtraining(_) => RuleKind::Overtraining,
            RuleConfig::ExplodingTensor(_) => RuleKind::ExplodingTensor,
            RuleConfig::VanishingGradient(_) => RuleKind::VanishingGradient,
            RuleConfig::StalledTrainingRule(_) => RuleKind::StalledTrainingRule,
            RuleConfig::ClassImbalance(_) => RuleKind::ClassImbalance,
            RuleConfig::UnchangedTensor(_) => RuleKind::UnchangedTensor,
            RuleConfig::CpuBottleneck(_) => RuleKind::CpuBottleneck,
            RuleConfig::IoBottleneck(_) => RuleKind::IoBottleneck,
            RuleConfig::LowGpuUtilization(_) => RuleKind::LowGpuUtilization,
            RuleConfig::GpuMemoryIncrease(_) => RuleKind::GpuMemoryIncrease,
            RuleConfig::StepOutlier(_) => RuleKind::StepOutlier,
            RuleConfig::MaxInitializationTime(_) => RuleKind::MaxInitializationTime,
            RuleConfig::ProfilerReport(_) => RuleKind::ProfilerReport,
        }
    }
}

/// The parameters every rule accepts besides its own.
fn common_infos() -> Vec<ParamInfo> {
    vec![
        ParamInfo {
            name: "stop_training".to_owned(),
            expected: "true or false",
            default: "false".to_owned(),
            description: "Add the StopTraining action: the job system stops the job when the rule fires.",
        },
        ParamInfo {
            name: "actions".to_owned(),
            expected: "actions separated by |: alert, StopTraining",
            default: "alert".to_owned(),
            description: "Actions when the rule fires; alert is always taken, StopTraining on request.",
        },
    ]
}

fn own_infos(kind: RuleKind) -> Vec<ParamInfo> {
    match kind {
        RuleKind::LossNotDecreasing => LossNotDecreasing::infos(),
        RuleKind::Overfit => Overfit::infos(),
        RuleKind::Overtraining => Overtraining::infos(),
        RuleKind::ExplodingTensor => ExplodingTensor::infos(),
        RuleKind::VanishingGradient => VanishingGradient::infos(),
        RuleKind::StalledTrainingRule => StalledTrainingRule::infos(),
        RuleKind::ClassImbalance => ClassImbalance::infos(),
        RuleKind::UnchangedTensor => UnchangedTensor::infos(),
        RuleKind::CpuBottleneck => CpuBottleneck::infos(),
        RuleKind::IoBottleneck => IoBottleneck::infos(),
        RuleKind::LowGpuUtilization => LowGpuUtilization::infos(),
        RuleKind::GpuMemoryIncrease => GpuMemoryIncrease::infos(),
        RuleKind::StepOutlier => StepOutlier::infos(),
        RuleKind::MaxInitializationTime => MaxInitializationTime::infos(),
        RuleKind::ProfilerReport => {
            let mut infos = vec![ParamInfo {
                name: "opt_out_telemetry".to_owned(),
                expected: "true or false",
                default: "false".to_owned(),
                description: "Accepted for SageMaker compatibility; Atelier sends no telemetry.",
            }];
            for child in RuleKind::PROFILER {
                for info in own_infos(child).into_iter().chain(common_infos()) {
                    infos.push(ParamInfo {
                        name: format!("{}_{}", child.name(), info.name),
                        ..info
                    });
                }
            }
            infos
        }
    }
}

/// Every parameter of a rule, its own first, then `stop_training` and `actions`.
pub(crate) fn param_infos(kind: RuleKind) -> Vec<ParamInfo> {
    let mut infos = own_infos(kind);
    infos.extend(common_infos());
    infos
}

fn param_list(kind: RuleKind) -> String {
    if kind == RuleKind::ProfilerReport {
        let rules: Vec<_> = RuleKind::PROFILER.iter().map(|k| k.name()).collect();
        return format!(
            "opt_out_telemetry=false, stop_training=false, actions=alert, and <Rule>_<parameter> for Rule in {}",
            rules.join(", ")
        );
    }
    param_infos(kind)
        .iter()
        .map(|p| format!("{}={}", p.name, p.default))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An action a rule asks for when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Tell the user (always taken).
    #[serde(rename = "alert")]
    Alert,
    /// Stop the training job (SageMaker's `StopTraining` action).
    StopTraining,
}

/// Parses an `actions` value; `Some(stop_training)`.
fn parse_actions(raw: &Raw<'_>) -> Option<bool> {
    let items: Vec<String> = match raw {
        Raw::Json(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()?,
        _ => raw.text()?.split('|').map(str::to_owned).collect(),
    };
    let mut stop = false;
    for item in &items {
        match normalize(item).as_str() {
            "alert" => {}
            "stoptraining" => stop = true,
            _ => return None,
        }
    }
    Some(stop)
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A rule specification that cannot be used. Messages name the rule, the parameter and what
/// would be accepted, so they can be shown as they are (CLI, the API's 400 answers).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Nothing was given.
    #[error("empty rule specification; known rules: {known}")]
    Empty {
        /// The known rules.
        known: String,
    },
    /// No rule of that name.
    #[error("unknown rule `{name}`{note}; known rules: {known}")]
    UnknownRule {
        /// The name given.
        name: String,
        /// Why it is unknown, when we know (a SageMaker rule Atelier lacks).
        note: &'static str,
        /// The known rules.
        known: String,
    },
    /// The rule has no parameter of that name.
    #[error(
        "unknown parameter `{param}` for rule {rule}; its parameters (with defaults) are: {known}"
    )]
    UnknownParameter {
        /// The rule.
        rule: String,
        /// The parameter given.
        param: String,
        /// The rule's parameters as `name=default`.
        known: String,
    },
    /// The value does not fit the parameter.
    #[error("bad value `{value}` for parameter `{param}` of rule {rule}: expected {expected}")]
    BadValue {
        /// The rule.
        rule: String,
        /// The parameter.
        param: String,
        /// The value given.
        value: String,
        /// What the parameter takes.
        expected: &'static str,
    },
    /// A parameter appears twice.
    #[error("parameter `{param}` of rule {rule} is given more than once")]
    DuplicateParameter {
        /// The rule.
        rule: String,
        /// The parameter.
        param: String,
    },
    /// Text that is not `name=value`.
    #[error(
        "malformed parameter `{text}` for rule {rule}: expected name=value pairs separated by commas, as in Overfit:patience=3,ratio_threshold=0.2"
    )]
    Malformed {
        /// The rule.
        rule: String,
        /// The offending text.
        text: String,
    },
    /// A label that cannot name a rule.
    #[error(
        "bad rule label `{label}`: expected 1 to 128 characters, without `/` or control characters"
    )]
    BadLabel {
        /// The label given.
        label: String,
    },
    /// JSON that is not a rule specification.
    #[error(
        "invalid JSON rule specification: {message}; expected {{\"name\": \"Overfit\", \"parameters\": {{\"patience\": 3}}, \"label\": \"optional\"}}"
    )]
    Json {
        /// What is wrong.
        message: String,
    },
}

impl SpecError {
    /// The same error, for a rule configured inside ProfilerReport.
    fn in_report(self, child: RuleKind) -> SpecError {
        let rule = format!(
            "{} (inside ProfilerReport, as {}_<parameter>)",
            child.name(),
            child.name()
        );
        match self {
            SpecError::UnknownParameter { param, known, .. } => {
                SpecError::UnknownParameter { rule, param, known }
            }
            SpecError::BadValue {
                param,
                value,
                expected,
                ..
            } => SpecError::BadValue {
                rule,
                param,
                value,
                expected,
            },
            other => other,
        }
    }
}

fn known_rule_names() -> String {
    RuleKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_rule(name: &str) -> SpecError {
    let wanted = normalize(name);
    let note = if SAGEMAKER_ONLY.iter().any(|n| normalize(n) == wanted) {
        " (a SageMaker Debugger rule Atelier does not implement)"
    } else {
        ""
    };
    SpecError::UnknownRule {
        name: name.to_owned(),
        note,
        known: known_rule_names(),
    }
}

// ---------------------------------------------------------------------------------------------
// RuleSpec

/// One rule to evaluate: which rule, its parameters, its label and its actions.
///
/// Built with [`RuleSpec::parse`] (text or JSON), [`RuleSpec::from_json`], or [`RuleSpec::new`]
/// and [`RuleSpec::set`]. Serialises to the JSON form with every parameter's effective value, so
/// a stored specification keeps its meaning if a default changes.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    label: String,
    config: RuleConfig,
    stop_training: bool,
}

impl RuleSpec {
    /// The rule with SageMaker's defaults, labelled with its name.
    pub fn new(kind: RuleKind) -> RuleSpec {
        RuleSpec {
            label: kind.name().to_owned(),
            config: RuleConfig::default_for(kind),
            stop_training: false,
        }
    }

    /// Parses `Rule`, `Rule:param=value,param=value`, or the JSON form when the text starts
    /// with `{`. Rule and parameter names are case-insensitive.
    pub fn parse(text: &str) -> Result<RuleSpec, SpecError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SpecError::Empty {
                known: known_rule_names(),
            });
        }
        if text.starts_with('{') {
            let value: Value = serde_json::from_str(text).map_err(|e| SpecError::Json {
                message: e.to_string(),
            })?;
            return RuleSpec::from_json(&value);
        }
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let kind = RuleKind::from_name(name.trim()).ok_or_else(|| unknown_rule(name.trim()))?;
        let mut spec = RuleSpec::new(kind);
        let mut seen = Vec::new();
        if !rest.trim().is_empty() {
            for part in rest.split(',') {
                let Some((param, value)) = part.split_once('=') else {
                    return Err(SpecError::Malformed {
                        rule: kind.name().to_owned(),
                        text: part.trim().to_owned(),
                    });
                };
                let param = param.trim().to_ascii_lowercase();
                let canonical = spec.set_raw(&param, &Raw::Text(value.trim()))?;
                if seen.contains(&canonical) {
                    return Err(SpecError::DuplicateParameter {
                        rule: kind.name().to_owned(),
                        param,
                    });
                }
                seen.push(canonical);
            }
        }
        Ok(spec)
    }

    /// Reads the JSON form: `{"name": "Overfit", "parameters": {"patience": 3}, "label": "…"}`.
    /// Parameter values may be JSON numbers, booleans, strings (as SageMaker passes them) or,
    /// for metric keys and actions, arrays of strings.
    pub fn from_json(value: &Value) -> Result<RuleSpec, SpecError> {
        let json_error = |message: &str| SpecError::Json {
            message: message.to_owned(),
        };
        let object = value
            .as_object()
            .ok_or_else(|| json_error("not an object"))?;
        if let Some(field) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "name" | "parameters" | "label"))
        {
            return Err(json_error(&format!("unknown field `{field}`")));
        }
        let name = object
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| json_error("`name` (a string naming the rule) is missing"))?;
        let kind = RuleKind::from_name(name).ok_or_else(|| unknown_rule(name))?;
        let mut spec = RuleSpec::new(kind);
        match object.get("parameters") {
            None | Some(Value::Null) => {}
            Some(Value::Object(params)) => {
                let mut seen = Vec::new();
                for (param, value) in params {
                    let param = param.trim().to_ascii_lowercase();
                    let canonical = spec.set_raw(&param, &Raw::Json(value))?;
                    if seen.contains(&canonical) {
                        return Err(SpecError::DuplicateParameter {
                            rule: kind.name().to_owned(),
                            param,
                        });
                    }
                    seen.push(canonical);
                }
            }
            Some(_) => return Err(json_error("`parameters` must be an object")),
        }
        match object.get("label") {
            None | Some(Value::Null) => {}
            Some(Value::String(label)) => spec.set_label(label)?,
            Some(_) => return Err(json_error("`label` must be a string")),
        }
        Ok(spec)
    }

    /// Sets one parameter from its text form, as in `Overfit:patience=3`.
    pub fn set(&mut self, param: &str, value: &str) -> Result<(), SpecError> {
        self.set_raw(&param.trim().to_ascii_lowercase(), &Raw::Text(value.trim()))
            .map(drop)
    }

    /// Builder form of [`RuleSpec::set`].
    pub fn with(mut self, param: &str, value: &str) -> Result<RuleSpec, SpecError> {
        self.set(param, value)?;
        Ok(self)
    }

    /// Sets the label results are reported under (default: the rule's name). Two rules in one
    /// [`crate::Watch`] need different labels.
    pub fn set_label(&mut self, label: &str) -> Result<(), SpecError> {
        let label = label.trim();
        if label.is_empty()
            || label.chars().count() > 128
            || label.chars().any(|c| c == '/' || c.is_control())
        {
            return Err(SpecError::BadLabel {
                label: label.to_owned(),
            });
        }
        label.clone_into(&mut self.label);
        Ok(())
    }

    /// Sets one parameter; returns its canonical name (to detect repeats).
    fn set_raw(&mut self, param: &str, raw: &Raw<'_>) -> Result<String, SpecError> {
        let kind = self.kind();
        let bad = |expected: &'static str| SpecError::BadValue {
            rule: kind.name().to_owned(),
            param: param.to_owned(),
            value: raw.shown(),
            expected,
        };
        match param {
            "stop_training" => {
                let stop = bool::parse(raw).ok_or_else(|| bad("true or false"))?;
                self.stop_training |= stop;
                return Ok(param.to_owned());
            }
            "actions" => {
                let stop = parse_actions(raw)
                    .ok_or_else(|| bad("actions separated by |: alert, StopTraining"))?;
                self.stop_training |= stop;
                return Ok(param.to_owned());
            }
            _ => {}
        }
        let outcome = on_config!(&mut self.config, p => p.set(param, raw), r => {
            return set_report_param(r, param, raw);
        });
        match outcome {
            Some(Ok(())) => Ok(param.to_owned()),
            Some(Err(expected)) => Err(bad(expected)),
            None => Err(SpecError::UnknownParameter {
                rule: kind.name().to_owned(),
                param: param.to_owned(),
                known: param_list(kind),
            }),
        }
    }

    /// Which rule this is.
    pub fn kind(&self) -> RuleKind {
        self.config.kind()
    }

    /// The rule's typed parameters.
    pub fn config(&self) -> &RuleConfig {
        &self.config
    }

    /// The label results are reported under.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What to do when the rule fires: `alert`, then `StopTraining` if asked for
    /// (`stop_training=true`, `actions=StopTraining`, or StalledTrainingRule's `stop_training_on_fire`).
    pub fn actions(&self) -> Vec<Action> {
        let on_fire =
            matches!(&self.config, RuleConfig::StalledTrainingRule(p) if p.stop_training_on_fire);
        if self.stop_training || on_fire {
            vec![Action::Alert, Action::StopTraining]
        } else {
            vec![Action::Alert]
        }
    }

    /// Every parameter's effective value, keyed by name (ProfilerReport's as `<Rule>_<parameter>`).
    pub fn parameters(&self) -> Map<String, Value> {
        let mut out = Map::new();
        on_config!(&self.config, p => p.write_json(&mut out), r => {
            out.insert("opt_out_telemetry".to_owned(), Value::Bool(r.opt_out_telemetry));
            for child in &r.rules {
                for (name, value) in child.parameters() {
                    out.insert(format!("{}_{}", child.kind().name(), name), value);
                }
            }
        });
        out.insert("stop_training".to_owned(), Value::Bool(self.stop_training));
        out
    }

    /// The JSON form (see [`RuleSpec::from_json`]).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("name".to_owned(), Value::from(self.kind().name()));
        if self.label != self.kind().name() {
            object.insert("label".to_owned(), Value::from(self.label.clone()));
        }
        object.insert("parameters".to_owned(), Value::Object(self.parameters()));
        Value::Object(object)
    }

    /// Every rule with its parameters, defaults and a one-line description.
    pub fn known() -> Vec<RuleInfo> {
        RuleKind::ALL
            .into_iter()
            .map(|kind| RuleInfo {
                name: kind.name(),
                kind: if kind == RuleKind::ProfilerReport {
                    "report"
                } else if kind.is_profiler() {
                    "profiler"
                } else {
                    "training"
                },
                description: kind.description(),
                parameters: param_infos(kind),
            })
            .collect()
    }

    /// [`RuleSpec::known`] as plain text, for `--help`.
    pub fn help() -> String {
        let mut out = String::from(
            "Rules (Rule or Rule:param=value,param=value; names are case-insensitive):\n",
        );
        for info in RuleSpec::known() {
            out.push_str(&format!("\n{}: {}\n", info.name, info.description));
            if info.name == RuleKind::ProfilerReport.name() {
                out.push_str(&format!("  {}\n", param_list(RuleKind::ProfilerReport)));
                continue;
            }
            for p in info.parameters {
                out.push_str(&format!(
                    "  {}={}  ({}) {}\n",
                    p.name, p.default, p.expected, p.description
                ));
            }
        }
        out
    }
}

fn set_report_param(
    report: &mut ProfilerReport,
    param: &str,
    raw: &Raw<'_>,
) -> Result<String, SpecError> {
    if param == "opt_out_telemetry" {
        report.opt_out_telemetry = bool::parse(raw).ok_or_else(|| SpecError::BadValue {
            rule: RuleKind::ProfilerReport.name().to_owned(),
            param: param.to_owned(),
            value: raw.shown(),
            expected: "true or false",
        })?;
        return Ok(param.to_owned());
    }
    for (at, _) in param.match_indices('_') {
        let (rule, child_param) = (&param[..at], &param[at + 1..]);
        let Some(kind) = RuleKind::from_name(rule) else {
            continue;
        };
        let Some(child) = report.rules.iter_mut().find(|c| c.kind() == kind) else {
            break;
        };
        let canonical = child
            .set_raw(child_param, raw)
            .map_err(|e| e.in_report(kind))?;
        return Ok(format!("{}_{canonical}", kind.name()));
    }
    Err(SpecError::UnknownParameter {
        rule: RuleKind::ProfilerReport.name().to_owned(),
        param: param.to_owned(),
        known: param_list(RuleKind::ProfilerReport),
    })
}

impl fmt::Display for RuleSpec {
    /// The text form, with the parameters that differ from the defaults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let defaults = RuleSpec::new(self.kind()).parameters();
        let changed: Vec<String> = self
            .parameters()
            .into_iter()
            .filter(|(name, value)| defaults.get(name) != Some(value))
            .map(|(name, value)| match value {
                Value::String(s) => format!("{name}={s}"),
                Value::Null => format!("{name}=none"),
                other => format!("{name}={other}"),
            })
            .collect();
        if changed.is_empty() {
            f.write_str(self.kind().name())
        } else {
            write!(f, "{}:{}", self.kind().name(), changed.join(","))
        }
    }
}

impl Serialize for RuleSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RuleSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RuleSpec, D::Error> {
        let value = Value::deserialize(deserializer)?;
        RuleSpec::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// A rule in the catalogue ([`RuleSpec::known`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleInfo {
    /// SageMaker's name.
    pub name: &'static str,
    /// `training`, `profiler` or `report`.
    pub kind: &'static str,
    /// One line on what it detects.
    pub description: &'static str,
    /// Its parameters with their defaults.
    pub parameters: Vec<ParamInfo>,
}
