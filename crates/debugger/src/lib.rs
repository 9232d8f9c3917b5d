//! # debugger — SageMaker Debugger's built-in rules over MLflow metric streams
//!
//! Atelier runs users' training jobs as MLflow runs. While a job runs, the job system hands every
//! metric point it receives — `(key, value, step, timestamp_ms)` — to a [`Watch`], which evaluates
//! the rules the user asked for, incrementally, and reports per rule SageMaker's evaluation status
//! (`InProgress`, `IssuesFound`, `NoIssuesFound`, `Error`), the step and values that triggered it,
//! a message, and the actions to take: `alert` always, `StopTraining` when the rule asks for it.
//!
//! The crate is pure compute: no IO, no threads, and no clock — time-based rules read the `now_ms`
//! the caller passes. Memory per rule is bounded by its parameters (windows, not histories).
//!
//! ```
//! use debugger::{Point, RuleSpec, Status, Watch};
//!
//! let specs = vec![
//!     RuleSpec::parse("Overfit:patience=2,stop_training=true")?,
//!     RuleSpec::parse(r#"{"name": "LossNotDecreasing", "parameters": {"num_steps": 5}}"#)?,
//! ];
//! let start = 1_700_000_000_000;
//! let mut watch = Watch::new(specs, start)?;
//! for epoch in 1..=10i64 {
//!     let now = start + epoch * 60_000;
//!     let train = 1.0 / epoch as f64;
//!     let val = 0.5 + 0.05 * epoch as f64; // diverges
//!     let fired = watch.observe(
//!         &[
//!             Point::new("train_loss", train, epoch * 100, now),
//!             Point::new("val_loss", val, epoch * 100, now),
//!         ],
//!         now,
//!     );
//!     if fired.iter().any(|r| r.stop_training()) {
//!         break; // the job system stops the job here
//!     }
//! }
//! watch.finish(start + 3_600_000);
//! let results = watch.results();
//! assert_eq!(results[0].status, Status::IssuesFound);
//! let trigger = results[0].trigger.as_ref().map(|t| t.step);
//! assert_eq!(trigger, Some(Some(300)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Specifying rules
//!
//! Text: `Rule` or `Rule:param=value,param=value` ([`RuleSpec::parse`]); JSON:
//! `{"name": "Overfit", "parameters": {"patience": 3}, "label": "strict-overfit"}`
//! ([`RuleSpec::from_json`], or serde). Rule and parameter names are case-insensitive and `_`
//! is ignored in rule names, so the Python SDK's `loss_not_decreasing` works. Values in JSON may
//! be numbers, booleans or strings (SageMaker passes strings). Errors ([`SpecError`]) name the
//! rule, the parameter and what is accepted: an unknown rule lists the known rules (and says so
//! when it is a SageMaker rule Atelier lacks), an unknown parameter lists the rule's parameters
//! with their defaults. [`RuleSpec::known`] is the catalogue (for `--help`, the API's 400s and
//! the docs); [`RuleSpec::help`] prints it.
//!
//! Every rule also takes `stop_training=true|false` (default `false`) and
//! `actions=alert|StopTraining` (default `alert`): when it fires, its result carries the actions
//! [`Action::Alert`] and, if asked for by either, [`Action::StopTraining`] (SageMaker's action
//! name). StalledTrainingRule's own `stop_training_on_fire=true` means the same. The job system
//! takes the actions; this crate only reports them. Two specs in one watch need different
//! labels (the default label is the rule's name).
//!
//! ## Rules
//!
//! Parameters and defaults are SageMaker's unless marked *(Atelier)*. "Metric" parameters take
//! key patterns, see [Metric mapping](#metric-mapping).
//!
//! | rule | fires when | parameters (default) |
//! |---|---|---|
//! | `LossNotDecreasing` | at a check, the loss at step s is not below (or not `diff_percent` % below) the loss at the latest step ≤ s − `num_steps`; checks run every `num_steps` steps, per loss key | `num_steps` (10), `diff_percent` (none: any decrease), `mode` (none: validation losses if any is logged, else training; `EVAL`, `TRAIN`, `GLOBAL` = both), `loss_metric`, `val_loss_metric` *(Atelier)* |
//! | `Overfit` | (validation loss − mean training loss) / mean training loss > `ratio_threshold` for `patience` comparisons in a row; each validation loss at step ≥ `start_step` is compared with the mean of the training losses logged since the previous comparison | `start_step` (0), `patience` (1), `ratio_threshold` (0.1), `loss_metric`, `val_loss_metric` |
//! | `Overtraining` | the validation loss had no new optimum (lower than the best by more than `delta`) for `patience_validation` validation points, while the training loss had one within its last `patience_train` points | `patience_train` (5), `patience_validation` (10), `delta` (0.1), `loss_metric`, `val_loss_metric` |
//! | `ExplodingTensor` | a value is NaN, or ±infinity unless `only_nan` (late and duplicate points included) | `only_nan` (false), `metrics` (`*`) |
//! | `VanishingGradient` | a gradient statistic's absolute value < `threshold` | `threshold` (1e-7), `gradient_metric` |
//! | `StalledTrainingRule` | no new training-metric point for more than `threshold` seconds (from the job's start before the first point) | `threshold` (1800), `stop_training_on_fire` (false), `metrics` (`*`) |
//! | `ClassImbalance` | once the label counts sum to ≥ `samples`: largest / smallest class count > `threshold_imbalance`, or some class's mispredicted / count > `threshold_misprediction` | `threshold_imbalance` (10), `threshold_misprediction` (0.7), `samples` (500), `labels_metric`, `mispredicted_metric` |
//! | `UnchangedTensor` | the last `num_steps` logged values of a key are all close to the newest (numpy.allclose: \|a − b\| ≤ `atol` + `rtol`·\|b\|) | `num_steps` (3), `rtol` (1e-5), `atol` (1e-8), `equal_nan` (false), `weight_metric` |
//! | `CPUBottleneck` | after more than `patience` system samples, the share of samples in which a GPU is below `gpu_threshold` % while the CPU is above `cpu_threshold` % exceeds `threshold` % | `threshold` (50), `gpu_threshold` (10), `cpu_threshold` (90), `patience` (1000), `scan_interval_us`, `cpu_metric`, `gpu_metric` |
//! | `IOBottleneck` | the same with I/O wait above `io_threshold` % | `threshold` (50), `gpu_threshold` (10), `io_threshold` (50), `patience` (1000), `scan_interval_us`, `io_metric`, `gpu_metric` |
//! | `LowGPUUtilization` | after more than `patience` samples of a GPU, over its last `window` samples: p95 < `threshold_p95` (underused), or p95 > `threshold_p95` and p5 < `threshold_p5` (fluctuating) | `threshold_p95` (70), `threshold_p5` (10), `window` (500), `patience` (1000), `scan_interval_us`, `gpu_metric` |
//! | `GPUMemoryIncrease` | after more than `patience` samples of a GPU, the mean memory use (%) of its last `window` samples exceeds that of the `window` samples before by more than `increase` points | `increase` (5), `patience` (1000), `window` (10), `scan_interval_us`, `memory_metric` |
//! | `StepOutlier` | more than `n_outliers` step durations exceeded mean + `stddev`·σ of the durations before them (judged from the 11th duration on) | `stddev` (3), `n_outliers` (10), `scan_interval_us`, `step_time_metric`, `loss_metric` |
//! | `MaxInitializationTime` | no training-metric point within `threshold` minutes of the job's start | `threshold` (20), `scan_interval_us`, `metrics` (`*`) |
//! | `ProfilerReport` | any of the six profiler rules above fires; each is configured as `<Rule>_<parameter>` (e.g. `CPUBottleneck_threshold=70`, also `cpu_bottleneck_threshold`); results nest under `rules`, labelled `ProfilerReport/<Rule>` | `opt_out_telemetry` (false; no effect), `<Rule>_<parameter>` |
//!
//! `scan_interval_us` (60000000) is accepted for SageMaker compatibility and has no effect: every
//! rule here evaluates on each new point, which costs less than scanning.
//!
//! ## Metric mapping
//!
//! A metric parameter is a list of key patterns separated by `|`; a pattern is an exact key or a
//! key with one `*`, which stands for one or more characters (`/` included) and names the layer,
//! GPU or class. A pattern that does not start with `system/` never matches system metrics (so
//! `*` is "every training metric"); a `system/…` pattern also matches MLflow's multi-node form
//! `system/<node>/…`. Where a rule reads *one* series (Overfit, Overtraining, StepOutlier's loss),
//! the key matching the earliest pattern wins, even if it appears later; where it reads many
//! (LossNotDecreasing, ExplodingTensor, VanishingGradient, UnchangedTensor, per-GPU rules), each
//! matching key is a series of its own.
//!
//! | parameter | default keys | meaning |
//! |---|---|---|
//! | `loss_metric` | `loss\|train_loss\|training_loss\|train/loss` | training loss |
//! | `val_loss_metric` | `val_loss\|validation_loss\|eval_loss\|val/loss` | validation loss |
//! | `gradient_metric` | `grad_norm\|gradients/*/norm\|gradients/*/mean_abs` | gradient norms or mean absolute gradients, as logged by Atelier's Python helper (a norm below the threshold implies a mean absolute value below it) |
//! | `weight_metric` | `weights/*` | weight statistics (`weights/<layer>/norm`, `…/mean`, …) |
//! | `labels_metric` | `label_count/*` | running total of samples seen per class (`*` is the class) |
//! | `mispredicted_metric` | `mispredicted/*` | running total of mispredicted samples per class |
//! | `metrics` | `*` | every training metric (ExplodingTensor, StalledTrainingRule, MaxInitializationTime) |
//! | `cpu_metric` | `system/cpu_utilization_percentage` | MLflow's CPU utilisation |
//! | `gpu_metric` | `system/gpu_*_utilization_percentage` | MLflow's per-GPU utilisation |
//! | `memory_metric` | `system/gpu_*_memory_usage_percentage` | MLflow's per-GPU memory use in percent (the megabytes metric has no total to compare with) |
//! | `io_metric` | `system/io_wait_percentage` | CPU time waiting on I/O, in percent: MLflow's sampler does not log it; Atelier's jobs do (`crates/sysmetrics`), so for runs logged elsewhere IOBottleneck ends in `Error` |
//! | `step_time_metric` | `step_time\|train/step_time` | duration of a step (any unit); when none is logged, StepOutlier uses Δtimestamp / Δstep between consecutive training-loss points (ms) |
//!
//! Class counts are running totals: the latest value (by step) per class is the count. Override
//! any mapping per rule, e.g. `LossNotDecreasing:loss_metric=my_loss|other_loss`.
//!
//! ## Order, duplicates, odd values
//!
//! A batch may come in any order: the watch sorts it by (step, timestamp, key, value), so the
//! same batch gives the same results however it is shuffled. Per key, a point earlier (by step,
//! then timestamp) than the latest already read is *late*, one at the same step and timestamp a
//! *duplicate*: step-ordered rules skip both (counted in [`WatchStats`]), while ExplodingTensor,
//! StalledTrainingRule and MaxInitializationTime still see them. Several values at one step with
//! different timestamps (MLflow's default step is 0) are read in timestamp order; rules that
//! measure distances in steps keep the latest value per step. NaN and infinities are skipped by
//! every rule but ExplodingTensor; an empty batch is a clock tick.
//!
//! ## Time
//!
//! [`Watch::new`] takes the job's start, [`Watch::observe`] the time the batch arrived, and
//! [`Watch::tick`] lets StalledTrainingRule and MaxInitializationTime fire with no new points; all
//! are the caller's clock in milliseconds. Stalls are measured on that clock (arrival), not on the
//! clients' timestamps, so a skewed client clock cannot fake or hide one.
//!
//! ## The end of a job
//!
//! [`Watch::finish`] settles what is pending (an Overfit comparison waiting for its training
//! loss, open system samples), then turns each `InProgress` rule into `NoIssuesFound` with a
//! summary, or `Error` when the metrics it needs never appeared, listed in
//! [`RuleResult::missing_metrics`]: no loss for the loss rules, no training metric at all for
//! ExplodingTensor, StalledTrainingRule and MaxInitializationTime, no GPU metric for the GPU rules
//! (a CPU-only job), no I/O wait for IOBottleneck. A rule that had its metrics but never enough
//! of them to evaluate (fewer than `patience` samples, a loss shorter than `num_steps`) is
//! `NoIssuesFound`, and its message and [`RuleResult::evaluations`] (0) say so. ProfilerReport is
//! `IssuesFound` if any of its rules fired, `NoIssuesFound` if at least one was evaluated clean,
//! `Error` if none had its metrics.
//!
//! ## Differences from SageMaker
//!
//! SageMaker's rules read tensors saved by its hook; here they read scalar MLflow metrics, so
//! `tensor_regex` / `collection_names` are replaced by the metric parameters above, and tensor
//! rules work on logged statistics (UnchangedTensor on `weights/<layer>/norm`, not the whole
//! tensor). Profiler rules evaluate per sample rather than every `scan_interval_us`. StepOutlier
//! has no `mode` (it reads training step times). Where SageMaker's public docs leave a rule's
//! arithmetic open, the choice made is the one in the table (Overfit's training mean over the
//! interval since the previous comparison; Overtraining's reading of its three parameters;
//! GPUMemoryIncrease's two consecutive windows).

mod keys;
mod rules;
mod spec;
mod stats;
mod watch;

pub use keys::{KeyPattern, MetricKeys};
pub use spec::{
    Action, ClassImbalance, CpuBottleneck, ExplodingTensor, GpuMemoryIncrease, IoBottleneck,
    LossNotDecreasing, LowGpuUtilization, MAX_WINDOW, MaxInitializationTime, Mode, Overfit,
    Overtraining, ParamInfo, ProfilerReport, RuleConfig, RuleInfo, RuleKind, RuleSpec, SpecError,
    StalledTrainingRule, StepOutlier, UnchangedTensor, VanishingGradient,
};
pub use watch::{Point, RuleResult, Status, Trigger, Watch, WatchError, WatchStats};

#[cfg(test)]
mod tests;
