//! Behaviour of every rule on synthetic series (one that fires, one that does not), parsing and
//! its error messages, ProfilerReport overrides, ordering, and the results' JSON.

use serde_json::{Value, json};

use crate::*;

const T0: i64 = 1_700_000_000_000;

fn spec(text: &str) -> RuleSpec {
    RuleSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn watch(texts: &[&str]) -> Watch {
    Watch::new(texts.iter().map(|t| spec(t)).collect(), T0).expect("watch")
}

fn result(w: &Watch, label: &str) -> RuleResult {
    w.results()
        .into_iter()
        .find(|r| r.label == label)
        .unwrap_or_else(|| panic!("no result {label}"))
}

/// A point at `step`, logged `step` seconds after T0.
fn p(key: &str, value: f64, step: i64) -> Point {
    Point::new(key, value, step, T0 + step * 1000)
}

fn value(r: &RuleResult, name: &str) -> Value {
    r.trigger
        .as_ref()
        .and_then(|t| t.values.get(name).cloned())
        .unwrap_or(Value::Null)
}

fn trigger_step(r: &RuleResult) -> Option<i64> {
    r.trigger.as_ref().and_then(|t| t.step)
}

/// Feeds points one step per call, the clock following the points.
fn feed(w: &mut Watch, points: &[Point]) -> Vec<RuleResult> {
    let mut fired = Vec::new();
    for point in points {
        fired.extend(w.observe(std::slice::from_ref(point), point.timestamp_ms));
    }
    fired
}

fn end(w: &mut Watch, points: &[Point]) {
    let last = points.iter().map(|p| p.timestamp_ms).max().unwrap_or(T0);
    w.finish(last + 1000);
}

// ---------------------------------------------------------------------------------------------
// LossNotDecreasing

fn stalling_loss() -> Vec<Point> {
    (0..=100)
        .map(|s| {
            let loss = if s <= 50 { 2.0 - 0.03 * s as f64 } else { 0.5 };
            p("train_loss", loss, s)
        })
        .collect()
}

#[test]
fn loss_not_decreasing_fires_on_a_stalling_loss() {
    let mut w = watch(&["LossNotDecreasing"]);
    let fired = feed(&mut w, &stalling_loss());
    assert_eq!(fired.len(), 1);
    let r = result(&w, "LossNotDecreasing");
    assert_eq!(r.status, Status::IssuesFound);
    assert_eq!(trigger_step(&r), Some(60));
    assert_eq!(value(&r, "reference_step"), json!(50));
    assert_eq!(value(&r, "metric"), json!("train_loss"));
    assert_eq!(r.actions, vec![Action::Alert]);
    assert!(r.message.contains("did not decrease"), "{}", r.message);
}

#[test]
fn loss_not_decreasing_quiet_on_a_decreasing_loss() {
    let points: Vec<Point> = (0..=100)
        .map(|s| p("loss", 1.0 / (1.0 + s as f64), s))
        .collect();
    let mut w = watch(&["LossNotDecreasing"]);
    assert!(feed(&mut w, &points).is_empty());
    assert_eq!(result(&w, "LossNotDecreasing").status, Status::InProgress);
    end(&mut w, &points);
    let r = result(&w, "LossNotDecreasing");
    assert_eq!(r.status, Status::NoIssuesFound);
    assert_eq!(r.evaluations, 10);
}

#[test]
fn loss_not_decreasing_diff_percent() {
    // 1 % less every 10 steps: a decrease, but not the 5 % asked for.
    let points: Vec<Point> = (0..=30)
        .map(|s| p("loss", 0.99f64.powf(s as f64 / 10.0), s))
        .collect();
    let mut quiet = watch(&["LossNotDecreasing"]);
    assert!(feed(&mut quiet, &points).is_empty());
    let mut strict = watch(&["LossNotDecreasing:diff_percent=5"]);
    assert_eq!(feed(&mut strict, &points).len(), 1);
    let r = result(&strict, "LossNotDecreasing");
    assert_eq!(trigger_step(&r), Some(10));
    let decrease = value(&r, "decrease_percent").as_f64().unwrap_or(f64::NAN);
    assert!((decrease - 1.0).abs() < 1e-9, "{decrease}");
}

#[test]
fn loss_not_decreasing_prefers_the_validation_loss() {
    // Training loss flat, validation loss decreasing: with no mode, EVAL wins.
    let points: Vec<Point> = (0..=40)
        .flat_map(|s| [p("loss", 1.0, s), p("val_loss", 1.0 - 0.01 * s as f64, s)])
        .collect();
    let mut default = watch(&["LossNotDecreasing"]);
    assert!(feed(&mut default, &points).is_empty());
    let mut train = watch(&["LossNotDecreasing:mode=TRAIN"]);
    assert_eq!(feed(&mut train, &points).len(), 1);
    assert_eq!(
        value(&result(&train, "LossNotDecreasing"), "metric"),
        json!("loss")
    );
    // GLOBAL reads both, each on its own.
    let mut global = watch(&["LossNotDecreasing:mode=global"]);
    assert_eq!(feed(&mut global, &points).len(), 1);
    // An explicit key is read whatever it is called.
    let renamed: Vec<Point> = (0..=20).map(|s| p("my_loss", 3.0, s)).collect();
    let mut custom = watch(&["LossNotDecreasing:loss_metric=my_loss"]);
    assert_eq!(feed(&mut custom, &renamed).len(), 1);
}

#[test]
fn loss_not_decreasing_without_loss_is_an_error_and_short_runs_are_clean() {
    let mut w = watch(&["LossNotDecreasing"]);
    feed(&mut w, &[p("accuracy", 0.5, 1)]);
    w.finish(T0 + 10_000);
    let r = result(&w, "LossNotDecreasing");
    assert_eq!(r.status, Status::Error);
    assert!(r.missing_metrics.contains(&"val_loss".to_owned()));
    assert!(r.missing_metrics.contains(&"train_loss".to_owned()));

    let short: Vec<Point> = (0..5).map(|s| p("loss", 1.0, s)).collect();
    let mut w = watch(&["LossNotDecreasing"]);
    feed(&mut w, &short);
    end(&mut w, &short);
    let r = result(&w, "LossNotDecreasing");
    assert_eq!(r.status, Status::NoIssuesFound);
    assert_eq!(r.evaluations, 0);
    assert!(r.message.contains("num_steps"), "{}", r.message);
}

// ---------------------------------------------------------------------------------------------
// Overfit

/// Ten training losses per epoch (steps e*10+1 ..= e*10+10), one validation loss at the end.
fn epochs(ratios: &[f64]) -> Vec<Point> {
    let mut points = Vec::new();
    for (e, ratio) in ratios.iter().enumerate() {
        let e = e as i64;
        for s in 1..=10 {
            points.push(p("train_loss", 0.2, e * 10 + s));
        }
        points.push(p("val_loss", 0.2 * (1.0 + ratio), e * 10 + 10));
    }
    points
}

#[test]
fn overfit_fires_after_patience_comparisons_in_a_row() {
    // Above 0.1 twice, back under, then above three times in a row (epochs 5, 6, 7).
    let points = epochs(&[0.0, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5]);
    let mut w = watch(&["Overfit:patience=3"]);
    let fired = feed(&mut w, &points);
    assert_eq!(fired.len(), 1);
    let r = result(&w, "Overfit");
    assert_eq!(trigger_step(&r), Some(70));
    assert_eq!(value(&r, "consecutive"), json!(3));
    assert_eq!(value(&r, "val_metric"), json!("val_loss"));
    let ratio = value(&r, "ratio").as_f64().unwrap_or(f64::NAN);
    assert!((ratio - 0.5).abs() < 1e-9);
    assert!((value(&r, "train_loss").as_f64().unwrap_or(f64::NAN) - 0.2).abs() < 1e-12);

    // Default patience 1: the first comparison above the threshold.
    let mut eager = watch(&["Overfit"]);
    feed(&mut eager, &points);
    assert_eq!(trigger_step(&result(&eager, "Overfit")), Some(20));
}

#[test]
fn overfit_quiet_when_validation_follows_training() {
    let points = epochs(&[0.05, 0.02, 0.08, 0.0, 0.09]);
    let mut w = watch(&["Overfit"]);
    assert!(feed(&mut w, &points).is_empty());
    end(&mut w, &points);
    let r = result(&w, "Overfit");
    assert_eq!(r.status, Status::NoIssuesFound);
    assert_eq!(r.evaluations, 5);
}

#[test]
fn overfit_means_the_training_losses_since_the_last_comparison() {
    let mut points = Vec::new();
    for s in 1..=10 {
        points.push(p("loss", s as f64 / 10.0, s)); // mean 0.55
    }
    points.push(p("val_loss", 0.66, 10));
    let mut w = watch(&["Overfit"]);
    feed(&mut w, &points);
    let r = result(&w, "Overfit");
    assert_eq!(r.status, Status::IssuesFound);
    let train = value(&r, "train_loss").as_f64().unwrap_or(f64::NAN);
    assert!((train - 0.55).abs() < 1e-12, "{train}");
    let ratio = value(&r, "ratio").as_f64().unwrap_or(f64::NAN);
    assert!((ratio - 0.2).abs() < 1e-9, "{ratio}");
}

#[test]
fn overfit_waits_for_training_losses_logged_after_the_validation_loss() {
    // The validation loss arrives first, in its own batch; the comparison waits for the
    // training loss to reach its step.
    let mut w = watch(&["Overfit"]);
    assert!(w.observe(&[p("val_loss", 0.3, 10)], T0).is_empty());
    assert_eq!(result(&w, "Overfit").evaluations, 0);
    let train: Vec<Point> = (1..=10).map(|s| p("train_loss", 0.2, s)).collect();
    let fired = w.observe(&train, T0 + 1);
    assert_eq!(fired.len(), 1);
    assert_eq!(trigger_step(&fired[0]), Some(10));
    // And a validation loss still pending at the end is compared by finish.
    let mut w = watch(&["Overfit"]);
    w.observe(&[p("train_loss", 0.2, 1), p("val_loss", 0.3, 10)], T0);
    assert_eq!(result(&w, "Overfit").evaluations, 0);
    let fired = w.finish(T0 + 5);
    assert_eq!(fired.len(), 1);
}

#[test]
fn overfit_honours_start_step_and_reports_missing_losses() {
    let points = epochs(&[0.5, 0.5, 0.0]);
    let mut w = watch(&["Overfit:start_step=25"]);
    assert!(feed(&mut w, &points).is_empty());
    assert_eq!(result(&w, "Overfit").evaluations, 1);

    let mut w = watch(&["Overfit"]);
    feed(&mut w, &[p("train_loss", 0.2, 1)]);
    w.finish(T0 + 10_000);
    let r = result(&w, "Overfit");
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("no validation loss"), "{}", r.message);
    assert!(r.missing_metrics.contains(&"val_loss".to_owned()));
    assert!(!r.missing_metrics.contains(&"train_loss".to_owned()));
}

// ---------------------------------------------------------------------------------------------
// Overtraining

#[test]
fn overtraining_fires_when_validation_stalls_while_training_improves() {
    let mut points = Vec::new();
    for s in 0..30 {
        points.push(p("train_loss", 10.0 - 0.2 * s as f64, s));
        let val = if s < 5 { 5.0 - 0.5 * s as f64 } else { 3.0 };
        points.push(p("val_loss", val, s));
    }
    let mut w = watch(&["Overtraining"]);
    assert_eq!(feed(&mut w, &points).len(), 1);
    let r = result(&w, "Overtraining");
    // Best validation loss at step 4; ten validation points without improvement at step 14.
    assert_eq!(trigger_step(&r), Some(14));
    assert_eq!(
        value(&r, "validation_points_without_improvement"),
        json!(10)
    );
}

#[test]
fn overtraining_quiet_when_both_improve_or_both_stall() {
    let improving: Vec<Point> = (0..40)
        .flat_map(|s| {
            [
                p("train_loss", 10.0 - 0.2 * s as f64, s),
                p("val_loss", 12.0 - 0.2 * s as f64, s),
            ]
        })
        .collect();
    let mut w = watch(&["Overtraining"]);
    assert!(feed(&mut w, &improving).is_empty());
    let converged: Vec<Point> = (0..40)
        .flat_map(|s| [p("train_loss", 1.0, s), p("val_loss", 1.2, s)])
        .collect();
    let mut w = watch(&["Overtraining"]);
    assert!(feed(&mut w, &converged).is_empty());
    end(&mut w, &converged);
    assert_eq!(result(&w, "Overtraining").status, Status::NoIssuesFound);
}

// ---------------------------------------------------------------------------------------------
// ExplodingTensor

#[test]
fn exploding_tensor_fires_on_nan_and_infinity() {
    let mut w = watch(&["ExplodingTensor"]);
    feed(&mut w, &[p("loss", 1.0, 1), p("grad_norm", 3.0, 1)]);
    assert_eq!(result(&w, "ExplodingTensor").status, Status::InProgress);
    let fired = feed(&mut w, &[p("grad_norm", f64::INFINITY, 2)]);
    assert_eq!(fired.len(), 1);
    let r = result(&w, "ExplodingTensor");
    assert_eq!(value(&r, "value"), json!("Infinity"));
    assert_eq!(value(&r, "metric"), json!("grad_norm"));

    let mut only_nan = watch(&["ExplodingTensor:only_nan=true"]);
    assert!(feed(&mut only_nan, &[p("loss", f64::NEG_INFINITY, 1)]).is_empty());
    assert_eq!(feed(&mut only_nan, &[p("loss", f64::NAN, 2)]).len(), 1);
    assert_eq!(
        value(&result(&only_nan, "ExplodingTensor"), "value"),
        json!("NaN")
    );
}

#[test]
fn exploding_tensor_quiet_on_finite_values_and_sees_late_points() {
    let points: Vec<Point> = (0..50).map(|s| p("loss", 1e30 * s as f64, s)).collect();
    let mut w = watch(&["ExplodingTensor"]);
    assert!(feed(&mut w, &points).is_empty());
    // System metrics are not training tensors.
    assert!(
        feed(
            &mut w,
            &[p("system/cpu_utilization_percentage", f64::NAN, 60)]
        )
        .is_empty()
    );
    // A late NaN (step 3 after step 49) still counts.
    assert_eq!(feed(&mut w, &[p("loss", f64::NAN, 3)]).len(), 1);
    assert_eq!(w.stats().late, 1);
}

// ---------------------------------------------------------------------------------------------
// VanishingGradient

#[test]
fn vanishing_gradient_fires_on_tiny_gradients() {
    let mut points: Vec<Point> = (0..10)
        .map(|s| p("gradients/fc1/mean_abs", 1e-3, s))
        .collect();
    points.push(p("gradients/fc2/norm", 3e-9, 10));
    let mut w = watch(&["VanishingGradient"]);
    assert_eq!(feed(&mut w, &points).len(), 1);
    let r = result(&w, "VanishingGradient");
    assert_eq!(trigger_step(&r), Some(10));
    assert_eq!(value(&r, "metric"), json!("gradients/fc2/norm"));
}

#[test]
fn vanishing_gradient_quiet_on_healthy_gradients() {
    let points: Vec<Point> = (0..100)
        .map(|s| p("grad_norm", 0.5 + 0.01 * s as f64, s))
        .collect();
    let mut w = watch(&["VanishingGradient:threshold=0.001"]);
    assert!(feed(&mut w, &points).is_empty());
    end(&mut w, &points);
    assert_eq!(
        result(&w, "VanishingGradient").status,
        Status::NoIssuesFound
    );
    let mut none = watch(&["VanishingGradient"]);
    none.finish(T0);
    assert_eq!(result(&none, "VanishingGradient").status, Status::Error);
}

// ---------------------------------------------------------------------------------------------
// StalledTrainingRule

#[test]
fn stalled_training_fires_after_threshold_without_points() {
    let mut w = watch(&["StalledTrainingRule:threshold=60,stop_training_on_fire=true"]);
    w.observe(&[p("loss", 1.0, 1)], T0 + 1_000);
    // System metrics keep coming but are not training progress.
    w.observe(
        &[p("system/cpu_utilization_percentage", 50.0, 2)],
        T0 + 30_000,
    );
    assert!(w.tick(T0 + 61_000).is_empty(), "exactly at the threshold");
    let fired = w.tick(T0 + 61_001);
    assert_eq!(fired.len(), 1);
    assert!(fired[0].stop_training());
    assert_eq!(fired[0].actions, vec![Action::Alert, Action::StopTraining]);
    assert_eq!(trigger_step(&fired[0]), Some(1));
    assert_eq!(value(&fired[0], "seconds_since_last_point"), json!(60.001));
    assert!(w.stop_training());
}

#[test]
fn stalled_training_quiet_while_points_arrive_and_before_the_first() {
    let mut w = watch(&["StalledTrainingRule"]);
    for minute in 0..120 {
        let now = T0 + minute * 60_000;
        assert!(w.observe(&[p("loss", 1.0, minute)], now).is_empty());
    }
    w.finish(T0 + 121 * 60_000);
    assert_eq!(
        result(&w, "StalledTrainingRule").status,
        Status::NoIssuesFound
    );
    // Nothing ever logged: it fires once the threshold has passed since the start.
    let mut w = watch(&["StalledTrainingRule"]);
    assert!(w.tick(T0 + 1_800_000).is_empty());
    assert_eq!(w.tick(T0 + 1_800_001).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// ClassImbalance

#[test]
fn class_imbalance_fires_on_unequal_counts() {
    let mut w = watch(&["ClassImbalance"]);
    let fired = w.observe(
        &[
            p("label_count/cat", 900.0, 10),
            p("label_count/dog", 50.0, 10),
            p("label_count/bird", 300.0, 10),
        ],
        T0,
    );
    assert_eq!(fired.len(), 1);
    let r = result(&w, "ClassImbalance");
    assert_eq!(value(&r, "largest_class"), json!("cat"));
    assert_eq!(value(&r, "smallest_class"), json!("dog"));
    assert_eq!(value(&r, "ratio"), json!(18.0));
}

#[test]
fn class_imbalance_fires_on_mispredictions_and_waits_for_samples() {
    let mut w = watch(&["ClassImbalance"]);
    // 100 labels: fewer than samples = 500, nothing evaluated.
    w.observe(
        &[p("label_count/0", 50.0, 1), p("label_count/1", 50.0, 1)],
        T0,
    );
    assert_eq!(result(&w, "ClassImbalance").evaluations, 0);
    w.observe(
        &[
            p("label_count/0", 300.0, 2),
            p("label_count/1", 280.0, 2),
            p("mispredicted/0", 30.0, 2),
            p("mispredicted/1", 100.0, 2),
        ],
        T0,
    );
    assert_eq!(result(&w, "ClassImbalance").status, Status::InProgress);
    let fired = w.observe(&[p("mispredicted/1", 210.0, 3)], T0);
    assert_eq!(fired.len(), 1);
    let r = result(&w, "ClassImbalance");
    assert_eq!(value(&r, "class"), json!("1"));
    assert_eq!(value(&r, "fraction"), json!(0.75));
}

#[test]
fn class_imbalance_quiet_on_balanced_classes() {
    let mut w = watch(&["ClassImbalance"]);
    let points: Vec<Point> = (0..10)
        .flat_map(|c| {
            [
                p(&format!("label_count/{c}"), 100.0 + c as f64, 5),
                p(&format!("mispredicted/{c}"), 10.0, 5),
            ]
        })
        .collect();
    assert!(w.observe(&points, T0).is_empty());
    w.finish(T0 + 1);
    let r = result(&w, "ClassImbalance");
    assert_eq!(r.status, Status::NoIssuesFound);
    assert_eq!(r.evaluations, 1);
}

// ---------------------------------------------------------------------------------------------
// UnchangedTensor

#[test]
fn unchanged_tensor_fires_on_a_frozen_statistic() {
    let mut points: Vec<Point> = (0..10)
        .map(|s| p("weights/fc1/norm", 1.0 + 0.1 * s as f64, s))
        .collect();
    for s in 10..13 {
        points.push(p("weights/fc2/norm", 4.2, s));
    }
    let mut w = watch(&["UnchangedTensor"]);
    assert_eq!(feed(&mut w, &points).len(), 1);
    let r = result(&w, "UnchangedTensor");
    assert_eq!(value(&r, "metric"), json!("weights/fc2/norm"));
    assert_eq!(value(&r, "first_step"), json!(10));
    assert_eq!(trigger_step(&r), Some(12));
}

#[test]
fn unchanged_tensor_quiet_on_changing_statistics() {
    // Changes larger than atol + rtol·|b|.
    let points: Vec<Point> = (0..50)
        .map(|s| p("weights/fc1/norm", 1.0 + 1e-3 * s as f64, s))
        .collect();
    let mut w = watch(&["UnchangedTensor"]);
    assert!(feed(&mut w, &points).is_empty());
    // With a looser tolerance the same series is "unchanged".
    let mut loose = watch(&["UnchangedTensor:rtol=0.01"]);
    assert_eq!(feed(&mut loose, &points).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Profiler rules

/// One MLflow system-metrics sample per 500 ms, all keys sharing its timestamp and step.
fn samples(n: i64, mut f: impl FnMut(i64) -> Vec<(&'static str, f64)>) -> Vec<Vec<Point>> {
    (0..n)
        .map(|i| {
            f(i).into_iter()
                .map(|(key, v)| Point::new(key, v, i, T0 + i * 500))
                .collect()
        })
        .collect()
}

fn feed_samples(w: &mut Watch, batches: &[Vec<Point>]) -> Vec<RuleResult> {
    let mut fired = Vec::new();
    for batch in batches {
        let now = batch.first().map_or(T0, |p| p.timestamp_ms);
        fired.extend(w.observe(batch, now));
    }
    fired
}

const CPU: &str = "system/cpu_utilization_percentage";
const GPU0: &str = "system/gpu_0_utilization_percentage";
const GPU1: &str = "system/gpu_1_utilization_percentage";
const MEM0: &str = "system/gpu_0_memory_usage_percentage";
const IO: &str = "system/io_wait_percentage";

#[test]
fn cpu_bottleneck_fires_when_cpu_is_busy_and_gpu_idle() {
    let batches = samples(1100, |_| vec![(CPU, 95.0), (GPU0, 2.0), (GPU1, 80.0)]);
    let mut w = watch(&["CPUBottleneck"]);
    let fired = feed_samples(&mut w, &batches);
    assert_eq!(fired.len(), 1);
    let r = result(&w, "CPUBottleneck");
    // Samples close when the next begins: sample 1000 (the 1001st) is the first evaluated.
    assert_eq!(trigger_step(&r), Some(1000));
    assert_eq!(value(&r, "samples"), json!(1001));
    assert_eq!(value(&r, "cpu"), json!(95.0));
    assert_eq!(value(&r, "gpu"), json!(2.0));
}

#[test]
fn cpu_bottleneck_quiet_when_gpu_busy_or_cpu_idle() {
    let busy = samples(1200, |i| {
        vec![(CPU, 95.0), (GPU0, if i % 3 == 0 { 5.0 } else { 90.0 })]
    });
    let mut w = watch(&["CPUBottleneck"]);
    assert!(feed_samples(&mut w, &busy).is_empty());
    w.finish(T0 + 700_000);
    let r = result(&w, "CPUBottleneck");
    assert_eq!(r.status, Status::NoIssuesFound);
    assert!(r.message.contains("33.3"), "{}", r.message);

    // A CPU-only job: no GPU metric, so the rule cannot say anything.
    let cpu_only = samples(20, |_| vec![(CPU, 99.0)]);
    let mut w = watch(&["CPUBottleneck:patience=5"]);
    feed_samples(&mut w, &cpu_only);
    w.finish(T0 + 20_000);
    let r = result(&w, "CPUBottleneck");
    assert_eq!(r.status, Status::Error);
    assert_eq!(r.missing_metrics, vec![GPU_KEYS_DEFAULT.to_owned()]);
}

const GPU_KEYS_DEFAULT: &str = "system/gpu_*_utilization_percentage";

#[test]
fn io_bottleneck_fires_on_io_wait_and_reports_the_missing_metric() {
    let batches = samples(30, |_| vec![(IO, 70.0), (GPU0, 0.0)]);
    let mut w = watch(&["IOBottleneck:patience=10"]);
    assert_eq!(feed_samples(&mut w, &batches).len(), 1);
    assert_eq!(value(&result(&w, "IOBottleneck"), "io_wait"), json!(70.0));

    let quiet = samples(30, |_| vec![(IO, 10.0), (GPU0, 0.0)]);
    let mut w = watch(&["IOBottleneck:patience=10"]);
    assert!(feed_samples(&mut w, &quiet).is_empty());

    let mlflow_only = samples(30, |_| vec![(CPU, 50.0), (GPU0, 0.0)]);
    let mut w = watch(&["IOBottleneck:patience=10"]);
    feed_samples(&mut w, &mlflow_only);
    w.finish(T0 + 60_000);
    let r = result(&w, "IOBottleneck");
    assert_eq!(r.status, Status::Error);
    assert_eq!(r.missing_metrics, vec![IO.to_owned()]);
    assert!(r.message.contains("MLflow"), "{}", r.message);
}

#[test]
fn system_samples_group_by_timestamp_per_node() {
    // Multi-node keys; the GPU and CPU of one sample a few ms apart.
    // Node 0 is a bottleneck every other sample, node 1 never: 25 % of all samples.
    let mut batches = Vec::new();
    for i in 0..30i64 {
        let t = T0 + i * 500;
        let cpu = if i % 2 == 0 { 95.0 } else { 50.0 };
        batches.push(vec![
            Point::new("system/node_0/cpu_utilization_percentage", cpu, i, t),
            Point::new("system/node_0/gpu_0_utilization_percentage", 1.0, i, t + 3),
            Point::new("system/node_1/cpu_utilization_percentage", 20.0, i, t + 7),
            Point::new("system/node_1/gpu_0_utilization_percentage", 1.0, i, t + 9),
        ]);
    }
    let mut w = watch(&["CPUBottleneck:patience=10"]);
    assert!(feed_samples(&mut w, &batches).is_empty());
    w.finish(T0 + 60_000);
    let r = result(&w, "CPUBottleneck");
    assert!(
        r.message.contains("25% of 60 system samples"),
        "{}",
        r.message
    );
    let mut w = watch(&["CPUBottleneck:patience=10,threshold=20"]);
    assert_eq!(feed_samples(&mut w, &batches).len(), 1);
    assert_eq!(value(&result(&w, "CPUBottleneck"), "node"), json!("node_0"));
}

#[test]
fn low_gpu_utilization_fires_on_underuse_and_fluctuation() {
    let low = samples(1100, |_| vec![(GPU0, 20.0)]);
    let mut w = watch(&["LowGPUUtilization"]);
    assert_eq!(feed_samples(&mut w, &low).len(), 1);
    let r = result(&w, "LowGPUUtilization");
    assert_eq!(trigger_step(&r), Some(1000));
    assert_eq!(value(&r, "gpu"), json!("0"));
    assert_eq!(value(&r, "window"), json!(500));
    assert!(r.message.contains("underused"), "{}", r.message);

    let fluctuating = samples(1100, |i| vec![(GPU0, if i % 4 == 0 { 0.0 } else { 99.0 })]);
    let mut w = watch(&["LowGPUUtilization"]);
    assert_eq!(feed_samples(&mut w, &fluctuating).len(), 1);
    assert!(
        result(&w, "LowGPUUtilization")
            .message
            .contains("fluctuates")
    );
}

#[test]
fn low_gpu_utilization_quiet_on_a_busy_gpu() {
    let busy = samples(1500, |i| vec![(GPU0, 85.0 + (i % 10) as f64)]);
    let mut w = watch(&["LowGPUUtilization"]);
    assert!(feed_samples(&mut w, &busy).is_empty());
    w.finish(T0 + 1_000_000);
    let r = result(&w, "LowGPUUtilization");
    assert_eq!(r.status, Status::NoIssuesFound);
    assert_eq!(r.evaluations, 500);
}

#[test]
fn gpu_memory_increase_fires_on_a_jump() {
    let jump = samples(1100, |i| vec![(MEM0, if i < 1050 { 30.0 } else { 50.0 })]);
    let mut w = watch(&["GPUMemoryIncrease"]);
    assert_eq!(feed_samples(&mut w, &jump).len(), 1);
    let r = result(&w, "GPUMemoryIncrease");
    // Window 10: the newer mean first exceeds the older by 5 points at the 3rd sample at 50 %.
    assert_eq!(trigger_step(&r), Some(1052));
    assert!(value(&r, "increase").as_f64().unwrap_or(0.0) > 5.0);

    let steady = samples(1500, |i| vec![(MEM0, 30.0 + (i % 3) as f64)]);
    let mut w = watch(&["GPUMemoryIncrease"]);
    assert!(feed_samples(&mut w, &steady).is_empty());
}

#[test]
fn step_outlier_fires_on_too_many_slow_steps() {
    let mut points = Vec::new();
    for s in 0..200 {
        let slow = s >= 100 && s % 5 == 0;
        let jitter = 0.01 * (s % 3) as f64;
        points.push(p("step_time", if slow { 1.0 } else { 0.1 + jitter }, s));
    }
    let mut w = watch(&["StepOutlier"]);
    assert_eq!(feed(&mut w, &points).len(), 1);
    let r = result(&w, "StepOutlier");
    assert_eq!(value(&r, "outliers"), json!(11));
    assert_eq!(value(&r, "unit"), json!("as logged"));

    let mut tolerant = watch(&["StepOutlier:n_outliers=100"]);
    assert!(feed(&mut tolerant, &points).is_empty());
}

#[test]
fn step_outlier_derives_durations_from_the_loss_timestamps() {
    let mut t = T0;
    let mut points = Vec::new();
    for s in 0..400 {
        t += if s >= 20 && s % 25 == 0 {
            2_000
        } else {
            100 + (s % 2) * 5
        };
        points.push(Point::new("loss", 1.0, s, t));
    }
    let mut w = watch(&["StepOutlier"]);
    let fired = feed(&mut w, &points);
    assert_eq!(fired.len(), 1);
    assert_eq!(value(&fired[0], "unit"), json!("ms"));
    let steady: Vec<Point> = (0..100)
        .map(|s| Point::new("loss", 1.0, s, T0 + s * 100))
        .collect();
    let mut w = watch(&["StepOutlier"]);
    assert!(feed(&mut w, &steady).is_empty());
}

#[test]
fn max_initialization_time() {
    // No step after 20 minutes.
    let mut w = watch(&["MaxInitializationTime"]);
    w.observe(
        &[p("system/cpu_utilization_percentage", 100.0, 0)],
        T0 + 60_000,
    );
    assert!(w.tick(T0 + 20 * 60_000).is_empty());
    let fired = w.tick(T0 + 20 * 60_000 + 1);
    assert_eq!(fired.len(), 1);
    assert_eq!(trigger_step(&fired[0]), None);

    // The first step arrives late and no tick came in between: it fires on arrival.
    let mut w = watch(&["MaxInitializationTime:threshold=1"]);
    assert_eq!(w.observe(&[p("loss", 1.0, 1)], T0 + 90_000).len(), 1);

    // In time.
    let mut w = watch(&["MaxInitializationTime"]);
    assert!(w.observe(&[p("loss", 1.0, 1)], T0 + 5 * 60_000).is_empty());
    assert!(w.tick(T0 + 60 * 60_000).is_empty());
    w.finish(T0 + 61 * 60_000);
    let r = result(&w, "MaxInitializationTime");
    assert_eq!(r.status, Status::NoIssuesFound);
    assert!(r.message.contains("5 minutes"), "{}", r.message);
}

// ---------------------------------------------------------------------------------------------
// ProfilerReport

#[test]
fn profiler_report_overrides_and_nested_results() {
    let report = spec(
        "ProfilerReport:CPUBottleneck_patience=10,cpu_bottleneck_threshold=40,LowGPUUtilization_window=20,stop_training=true",
    );
    let RuleConfig::ProfilerReport(config) = report.config() else {
        panic!("not a report");
    };
    let cpu = config
        .rules
        .iter()
        .find(|r| r.kind() == RuleKind::CpuBottleneck)
        .map(|r| r.config().clone());
    let Some(RuleConfig::CpuBottleneck(cpu)) = cpu else {
        panic!("no CPUBottleneck");
    };
    assert_eq!((cpu.patience, cpu.threshold), (10, 40.0));
    assert_eq!(report.parameters()["LowGPUUtilization_window"], json!(20));
    assert_eq!(report.parameters()["CPUBottleneck_patience"], json!(10));

    let mut w = Watch::new(vec![report], T0).expect("watch");
    let batches = samples(30, |_| vec![(CPU, 95.0), (GPU0, 3.0), ("loss", 1.0)]);
    let fired = feed_samples(&mut w, &batches);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].label, "ProfilerReport/CPUBottleneck");
    assert!(
        fired[0].stop_training(),
        "the report's actions apply to its rules"
    );

    let r = result(&w, "ProfilerReport");
    assert_eq!(r.status, Status::IssuesFound);
    assert_eq!(r.rules.len(), 6);
    assert_eq!(value(&r, "rule"), json!("CPUBottleneck"));
    w.finish(T0 + 60_000);
    let r = result(&w, "ProfilerReport");
    assert_eq!(r.status, Status::IssuesFound);
    let by_rule = |name: &str| r.rules.iter().find(|c| c.rule == name).map(|c| c.status);
    assert_eq!(by_rule("IOBottleneck"), Some(Status::Error));
    assert_eq!(
        by_rule("MaxInitializationTime"),
        Some(Status::NoIssuesFound)
    );
    assert_eq!(by_rule("LowGPUUtilization"), Some(Status::NoIssuesFound));
}

#[test]
fn profiler_report_errors() {
    let err = RuleSpec::parse("ProfilerReport:CPUBottleneck_nope=1").expect_err("unknown");
    let text = err.to_string();
    assert!(text.contains("`nope`"), "{text}");
    assert!(
        text.contains("CPUBottleneck (inside ProfilerReport"),
        "{text}"
    );
    assert!(text.contains("cpu_threshold=90"), "{text}");

    let err = RuleSpec::parse("ProfilerReport:BatchSize_window=3").expect_err("not ours");
    assert!(matches!(err, SpecError::UnknownParameter { .. }));
    assert!(
        err.to_string().contains("CPUBottleneck, IOBottleneck"),
        "{err}"
    );

    let err =
        RuleSpec::parse("ProfilerReport:LowGPUUtilization_threshold_p95=120").expect_err("range");
    assert_eq!(
        err.to_string(),
        "bad value `120` for parameter `threshold_p95` of rule LowGPUUtilization (inside ProfilerReport, as LowGPUUtilization_<parameter>): expected a number from 0 to 100"
    );
    let err = RuleSpec::parse("ProfilerReport:CPUBottleneck_patience=3,cpu_bottleneck_patience=4")
        .expect_err("duplicate");
    assert!(matches!(err, SpecError::DuplicateParameter { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[test]
fn parse_text_and_json_forms() {
    let text = spec("Overfit:patience=3,ratio_threshold=0.2");
    let RuleConfig::Overfit(p) = text.config() else {
        panic!("not Overfit");
    };
    assert_eq!((p.patience, p.ratio_threshold, p.start_step), (3, 0.2, 0));
    let json =
        spec(r#"{"name": "Overfit", "parameters": {"patience": 3, "ratio_threshold": "0.2"}}"#);
    assert_eq!(text, json);
    let via_serde: RuleSpec = serde_json::from_value(
        json!({"name": "overfit", "parameters": {"PATIENCE": "3", "ratio_threshold": 0.2}}),
    )
    .expect("serde");
    assert_eq!(via_serde, text);

    assert_eq!(
        spec("LossNotDecreasing").kind(),
        RuleKind::LossNotDecreasing
    );
    assert_eq!(
        spec(" loss_not_decreasing ").kind(),
        RuleKind::LossNotDecreasing
    );
    assert_eq!(spec("cpubottleneck").kind(), RuleKind::CpuBottleneck);
    assert_eq!(
        spec("stalled_training_rule").kind(),
        RuleKind::StalledTrainingRule
    );
    assert_eq!(spec("Overfit:").kind(), RuleKind::Overfit);

    // Display gives the text form with what differs from the defaults, and parses back.
    assert_eq!(text.to_string(), "Overfit:patience=3,ratio_threshold=0.2");
    assert_eq!(spec(&text.to_string()), text);
    assert_eq!(spec("LossNotDecreasing").to_string(), "LossNotDecreasing");

    // Serialised with every effective parameter, and back.
    let stored = serde_json::to_value(&text).expect("json");
    assert_eq!(stored["parameters"]["start_step"], json!(0));
    assert_eq!(stored["parameters"]["val_loss_metric"], json!(VAL_LOSS));
    let back: RuleSpec = serde_json::from_value(stored).expect("back");
    assert_eq!(back, text);

    let labelled = spec(r#"{"name": "Overfit", "label": "strict", "parameters": {"patience": 5}}"#);
    assert_eq!(labelled.label(), "strict");
    let back: RuleSpec =
        serde_json::from_value(serde_json::to_value(&labelled).expect("json")).expect("back");
    assert_eq!(back, labelled);
}

const VAL_LOSS: &str = "val_loss|validation_loss|eval_loss|val/loss";

#[test]
fn actions_and_stop_training() {
    assert_eq!(spec("Overfit").actions(), vec![Action::Alert]);
    let stop = vec![Action::Alert, Action::StopTraining];
    assert_eq!(spec("Overfit:stop_training=true").actions(), stop);
    assert_eq!(spec("Overfit:actions=StopTraining").actions(), stop);
    assert_eq!(spec("Overfit:actions=alert|stoptraining").actions(), stop);
    assert_eq!(
        spec(r#"{"name": "Overfit", "parameters": {"actions": ["StopTraining"]}}"#).actions(),
        stop
    );
    assert_eq!(
        spec("StalledTrainingRule:stop_training_on_fire=True").actions(),
        stop
    );
    let err = RuleSpec::parse("Overfit:actions=Email").expect_err("email");
    assert_eq!(
        err.to_string(),
        "bad value `Email` for parameter `actions` of rule Overfit: expected actions separated by |: alert, StopTraining"
    );
    assert_eq!(
        serde_json::to_value(stop).expect("json"),
        json!(["alert", "StopTraining"])
    );
}

#[test]
fn parse_errors_name_what_is_wrong() {
    let err = RuleSpec::parse("Overfitting").expect_err("unknown rule");
    assert!(matches!(err, SpecError::UnknownRule { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with("unknown rule `Overfitting`; known rules: LossNotDecreasing, Overfit,"),
        "{text}"
    );
    assert!(text.contains("ProfilerReport"), "{text}");

    let err = RuleSpec::parse("DeadRelu").expect_err("sagemaker only");
    assert!(
        err.to_string()
            .contains("a SageMaker Debugger rule Atelier does not implement"),
        "{err}"
    );

    let err = RuleSpec::parse("Overfit:patient=3").expect_err("unknown parameter");
    assert_eq!(
        err.to_string(),
        format!(
            "unknown parameter `patient` for rule Overfit; its parameters (with defaults) are: start_step=0, patience=1, ratio_threshold=0.1, loss_metric=loss|train_loss|training_loss|train/loss, val_loss_metric={VAL_LOSS}, stop_training=false, actions=alert"
        )
    );

    let err = RuleSpec::parse("Overfit:patience=three").expect_err("bad value");
    assert_eq!(
        err,
        SpecError::BadValue {
            rule: "Overfit".into(),
            param: "patience".into(),
            value: "three".into(),
            expected: "an integer ≥ 1",
        }
    );
    assert_eq!(
        err.to_string(),
        "bad value `three` for parameter `patience` of rule Overfit: expected an integer ≥ 1"
    );
    for (text, param) in [
        ("Overfit:patience=0", "patience"),
        ("Overfit:patience=1.5", "patience"),
        ("Overfit:ratio_threshold=NaN", "ratio_threshold"),
        ("CPUBottleneck:threshold=101", "threshold"),
        ("LowGPUUtilization:window=0", "window"),
        ("LowGPUUtilization:window=1000001", "window"),
        ("UnchangedTensor:num_steps=1", "num_steps"),
        ("LossNotDecreasing:mode=TEST", "mode"),
        ("LossNotDecreasing:diff_percent=100", "diff_percent"),
        ("LossNotDecreasing:loss_metric=a*b*", "loss_metric"),
        ("ExplodingTensor:only_nan=yes", "only_nan"),
        ("Overfit:stop_training=1", "stop_training"),
        ("Overfit:start_step=", "start_step"),
    ] {
        match RuleSpec::parse(text) {
            Err(SpecError::BadValue { param: got, .. }) => assert_eq!(got, param, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let err = RuleSpec::parse(r#"{"name": "Overfit", "parameters": {"patience": "abc"}}"#)
        .expect_err("bad json value");
    assert!(matches!(err, SpecError::BadValue { .. }), "{err}");
    let err = RuleSpec::parse(r#"{"name": "Overfit", "parameters": {"patience": -2}}"#)
        .expect_err("negative");
    assert!(err.to_string().contains("`-2`"), "{err}");

    let err = RuleSpec::parse("Overfit:patience=2,patience=3").expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "parameter `patience` of rule Overfit is given more than once"
    );
    let err = RuleSpec::parse("Overfit:patience").expect_err("malformed");
    assert!(matches!(err, SpecError::Malformed { .. }), "{err}");
    let err = RuleSpec::parse("Overfit:patience=2,").expect_err("trailing comma");
    assert!(matches!(err, SpecError::Malformed { .. }), "{err}");
    assert!(matches!(
        RuleSpec::parse("  "),
        Err(SpecError::Empty { .. })
    ));
    let err = RuleSpec::parse(r#"{"rule": "Overfit"}"#).expect_err("json field");
    assert!(err.to_string().contains("unknown field `rule`"), "{err}");
    let err = RuleSpec::parse(r#"{"name": "Overfit""#).expect_err("broken json");
    assert!(matches!(err, SpecError::Json { .. }));
    let err = RuleSpec::parse(r#"{"name": "Overfit", "label": "a/b"}"#).expect_err("label");
    assert!(matches!(err, SpecError::BadLabel { .. }));
    let err = serde_json::from_value::<RuleSpec>(json!({"name": "Nope"})).expect_err("serde");
    assert!(err.to_string().contains("unknown rule `Nope`"), "{err}");
}

#[test]
fn duplicate_labels_are_refused() {
    let err =
        Watch::new(vec![spec("Overfit"), spec("Overfit:patience=3")], T0).expect_err("duplicate");
    assert_eq!(err, WatchError::DuplicateLabel("Overfit".into()));
    let mut strict = spec("Overfit:patience=3");
    strict.set_label("Overfit (strict)").expect("label");
    assert!(Watch::new(vec![spec("Overfit"), strict], T0).is_ok());
}

#[test]
fn catalogue_defaults_parse_back_to_the_defaults() {
    let known = RuleSpec::known();
    assert_eq!(known.len(), RuleKind::ALL.len());
    for info in &known {
        let kind = RuleKind::from_name(info.name).expect("kind");
        assert_eq!(kind.name(), info.name);
        assert!(!info.description.is_empty());
        for param in &info.parameters {
            let set = RuleSpec::new(kind)
                .with(&param.name, &param.default)
                .unwrap_or_else(|e| panic!("{} {}: {e}", info.name, param.name));
            assert_eq!(set, RuleSpec::new(kind), "{} {}", info.name, param.name);
        }
    }
    let report = known
        .iter()
        .find(|i| i.name == "ProfilerReport")
        .expect("report");
    assert!(
        report
            .parameters
            .iter()
            .any(|p| p.name == "CPUBottleneck_threshold" && p.default == "50")
    );
    let overfit = known.iter().find(|i| i.name == "Overfit").expect("overfit");
    assert_eq!(
        serde_json::to_value(&overfit.parameters[1]).expect("json"),
        json!({"name": "patience", "type": "an integer ≥ 1", "default": "1", "description": "Consecutive comparisons above ratio_threshold before the rule fires."})
    );
    let help = RuleSpec::help();
    assert!(help.contains("threshold_p95=70"), "{help}");
    assert!(help.contains("VanishingGradient: "), "{help}");
}

// ---------------------------------------------------------------------------------------------
// Ordering, duplicates, the end

/// A deterministic shuffle.
fn shuffled(points: &[Point], seed: u64) -> Vec<Point> {
    let mut out = points.to_vec();
    let mut state = seed;
    for i in (1..out.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.swap(i, (state >> 33) as usize % (i + 1));
    }
    out
}

#[test]
fn any_order_within_a_batch_gives_the_same_results() {
    let mut points = epochs(&[0.0, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5]);
    points.extend(
        stalling_loss()
            .into_iter()
            .map(|p| Point::new("loss", p.value, p.step + 200, p.timestamp_ms + 200_000)),
    );
    points.push(p("grad_norm", f64::NAN, 3));
    let rules = ["Overfit:patience=3", "LossNotDecreasing", "ExplodingTensor"];
    let mut sorted = watch(&rules);
    sorted.observe(&points, T0 + 500_000);
    let reference = serde_json::to_value(sorted.results()).expect("json");
    for seed in 1..5 {
        let mut w = watch(&rules);
        w.observe(&shuffled(&points, seed), T0 + 500_000);
        assert_eq!(
            serde_json::to_value(w.results()).expect("json"),
            reference,
            "seed {seed}"
        );
    }
}

#[test]
fn late_and_duplicate_points_are_skipped_by_step_rules() {
    let mut w = watch(&["LossNotDecreasing"]);
    let decreasing: Vec<Point> = (0..=40)
        .map(|s| p("loss", 1.0 - 0.01 * s as f64, s))
        .collect();
    w.observe(&decreasing, T0);
    // The same batch again: all duplicates, nothing changes.
    // (The last point is a duplicate of the latest read; the others are earlier, so late.)
    assert!(w.observe(&decreasing, T0).is_empty());
    assert_eq!((w.stats().duplicates, w.stats().late), (1, 40));
    // A high loss for an old step arrives late: skipped.
    assert!(w.observe(&[p("loss", 9.0, 35)], T0).is_empty());
    assert_eq!(w.stats().late, 41);
    assert_eq!(result(&w, "LossNotDecreasing").evaluations, 4);
    // Several values at one step (MLflow's default step 0) are read by timestamp.
    let mut w = watch(&["Overfit"]);
    let fired = w.observe(
        &[
            Point::new("val_loss", 0.9, 0, T0 + 2),
            Point::new("train_loss", 0.5, 0, T0 + 1),
        ],
        T0,
    );
    assert_eq!(fired.len(), 1);
    assert_eq!(w.stats().points, 2);
}

#[test]
fn odd_values_never_panic() {
    let mut w = watch(&[
        "LossNotDecreasing",
        "Overfit",
        "Overtraining",
        "VanishingGradient",
        "UnchangedTensor",
        "ClassImbalance:samples=0",
        "ProfilerReport:CPUBottleneck_patience=0,LowGPUUtilization_patience=0,GPUMemoryIncrease_patience=0,GPUMemoryIncrease_window=1",
    ]);
    let odd = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MAX,
        f64::MIN,
        1e-320,
    ];
    let keys = [
        "loss",
        "val_loss",
        "grad_norm",
        "weights/x",
        "label_count/a",
        "mispredicted/a",
        CPU,
        GPU0,
        MEM0,
        IO,
        "step_time",
    ];
    let mut points = Vec::new();
    for (i, v) in odd.iter().enumerate() {
        for key in keys {
            points.push(Point::new(key, *v, i as i64 % 3 - 1, i64::MAX - i as i64));
            points.push(Point::new(key, *v, i64::MIN + i as i64, i64::MIN));
        }
    }
    w.observe(&points, i64::MIN);
    w.observe(&[], i64::MAX);
    w.tick(i64::MIN);
    w.finish(i64::MAX);
    // After the end, nothing changes.
    let before = serde_json::to_value(w.results()).expect("json");
    assert!(w.observe(&points, 0).is_empty());
    assert!(w.finish(0).is_empty());
    assert_eq!(serde_json::to_value(w.results()).expect("json"), before);
    assert!(w.is_finished());

    let mut empty = Watch::new(Vec::new(), T0).expect("empty");
    assert!(empty.observe(&points, T0).is_empty());
    assert!(empty.finish(T0).is_empty());
    assert!(empty.results().is_empty());
}

#[test]
fn results_serialise_as_sagemaker_statuses() {
    let mut w = watch(&["Overfit:stop_training=true", "VanishingGradient"]);
    feed(&mut w, &epochs(&[0.0, 0.9]));
    w.finish(T0 + 100_000);
    let json = serde_json::to_value(w.results()).expect("json");
    assert_eq!(json[0]["status"], json!("IssuesFound"));
    assert_eq!(json[0]["trigger"]["step"], json!(20));
    assert_eq!(json[0]["trigger"]["val_loss"], json!(0.38));
    assert!(json[0]["trigger"]["ratio"].as_f64().is_some());
    assert_eq!(json[0]["actions"], json!(["alert", "StopTraining"]));
    assert_eq!(json[1]["status"], json!("Error"));
    assert_eq!(
        json[1]["missing_metrics"],
        json!(["grad_norm", "gradients/*/norm", "gradients/*/mean_abs"])
    );
    let back: Vec<RuleResult> = serde_json::from_value(json).expect("back");
    assert_eq!(back, w.results());

    // Points read from MLflow's JSON, non-finite values as strings.
    let point: Point =
        serde_json::from_value(json!({"key": "loss", "value": "NaN", "step": 3, "timestamp": 5}))
            .expect("point");
    assert!(point.value.is_nan());
    assert_eq!(
        serde_json::to_value(&point).expect("json")["value"],
        json!("NaN")
    );
}

#[test]
fn ten_thousand_points_across_ten_rules_stay_fast() {
    let rules = [
        "LossNotDecreasing",
        "Overfit",
        "Overtraining",
        "ExplodingTensor",
        "VanishingGradient",
        "StalledTrainingRule",
        "UnchangedTensor",
        "CPUBottleneck",
        "LowGPUUtilization",
        "GPUMemoryIncrease",
    ];
    let mut w = watch(&rules);
    let mut batches = Vec::new();
    for i in 0..2000i64 {
        let t = T0 + i * 500;
        batches.push(vec![
            Point::new("train_loss", 1.0 / (1.0 + i as f64), i, t),
            Point::new("grad_norm", 0.5, i, t),
            Point::new(CPU, 40.0, i, t),
            Point::new(GPU0, 90.0, i, t),
            Point::new(MEM0, 30.0, i, t),
        ]);
    }
    let started = std::time::Instant::now();
    let mut slowest = std::time::Duration::ZERO;
    for batch in &batches {
        let call = std::time::Instant::now();
        w.observe(batch, batch[0].timestamp_ms);
        slowest = slowest.max(call.elapsed());
    }
    let total = started.elapsed();
    let mean = total / batches.len() as u32;
    eprintln!(
        "10k points, 10 rules: {total:?} in all, {mean:?} per call of 5 points, slowest {slowest:?}"
    );
    assert!(
        mean < std::time::Duration::from_millis(1),
        "{mean:?} per call"
    );
    assert_eq!(w.stats().points, 10_000);
}
