//! The training rules: losses, tensors (as logged scalar statistics), classes and stalls.

use std::collections::{HashMap, VecDeque};

use super::{Choice, Chosen, Engine, Fresh, Outcome, Route, Sink, Values, Violation};
use crate::spec::{self, MAX_WINDOW, Mode};
use crate::stats::fmt_num;
use crate::watch::Point;

/// A key an engine reads: the key, whether it is a validation series, and the index of the
/// pattern it matched (its priority).
#[derive(Debug, Clone)]
struct Keyed {
    key: String,
    val: bool,
    priority: usize,
}

fn looked_for(patterns: &[String]) -> String {
    patterns.join(", ")
}

// ---------------------------------------------------------------------------------------------

/// LossNotDecreasing: per loss series, the loss at step s against the loss at the latest step
/// ≤ s − num_steps, checked every num_steps steps.
#[derive(Debug)]
pub(crate) struct LossNotDecreasing {
    p: spec::LossNotDecreasing,
    series: Vec<LossSeries>,
    saw_val: bool,
    evaluations: u64,
}

#[derive(Debug)]
struct LossSeries {
    key: String,
    val: bool,
    /// The reference point (latest at or before step − num_steps) and every point after it;
    /// one point per step, so at most num_steps + 1.
    points: VecDeque<(i64, f64)>,
    next_check: Option<i64>,
}

impl LossNotDecreasing {
    pub fn new(p: &spec::LossNotDecreasing) -> LossNotDecreasing {
        LossNotDecreasing {
            p: p.clone(),
            series: Vec::new(),
            saw_val: false,
            evaluations: 0,
        }
    }

    /// `(training, validation)`: which losses the mode reads.
    fn reads(&self) -> (bool, bool) {
        match self.p.mode {
            None | Some(Mode::Global) => (true, true),
            Some(Mode::Train) => (true, false),
            Some(Mode::Eval) => (false, true),
        }
    }
}

impl Engine for LossNotDecreasing {
    fn route(&mut self, key: &str) -> Option<Route> {
        let (train, val) = self.reads();
        let is_val = if val && self.p.val_loss_metric.find(key).is_some() {
            true
        } else if train && self.p.loss_metric.find(key).is_some() {
            false
        } else {
            return None;
        };
        self.series.push(LossSeries {
            key: key.to_owned(),
            val: is_val,
            points: VecDeque::new(),
            next_check: None,
        });
        Some(Route {
            role: 0,
            series: (self.series.len() - 1) as u32,
        })
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() {
            return;
        }
        let num_steps = self.p.num_steps.min(MAX_WINDOW) as i64;
        let Some(series) = self.series.get_mut(route.series as usize) else {
            return;
        };
        if series.val {
            self.saw_val = true;
        }
        let (step, value) = (point.step, point.value);
        if let Some(last) = series.points.back_mut()
            && last.0 == step
        {
            last.1 = value;
            return;
        }
        series.points.push_back((step, value));
        let limit = step.saturating_sub(num_steps);
        while series.points.len() >= 2 && series.points[1].0 <= limit {
            series.points.pop_front();
        }
        let Some(&(ref_step, ref_value)) = series.points.front() else {
            return;
        };
        if ref_step > limit || series.next_check.is_some_and(|next| step < next) {
            return;
        }
        series.next_check = Some(step.saturating_add(num_steps));
        self.evaluations += 1;
        let decrease = if ref_value != 0.0 {
            (ref_value - value) / ref_value.abs() * 100.0
        } else if value < ref_value {
            f64::INFINITY
        } else {
            0.0
        };
        let stalled = match self.p.diff_percent {
            None => value >= ref_value,
            Some(wanted) => decrease < wanted,
        };
        // Without a mode, a logged validation loss takes precedence (SageMaker: EVAL, then TRAIN).
        if !stalled || (!series.val && self.p.mode.is_none() && self.saw_val) {
            return;
        }
        let by = self
            .p
            .diff_percent
            .map(|p| format!(" by {}%", fmt_num(p)))
            .unwrap_or_default();
        out.push(Violation {
            step: Some(step),
            timestamp_ms: Some(point.timestamp_ms),
            values: Values::new()
                .text("metric", &series.key)
                .num("loss", value)
                .int("reference_step", ref_step)
                .num("reference_loss", ref_value)
                .num("decrease_percent", decrease)
                .into_map(),
            message: format!(
                "{} did not decrease{by} over {num_steps} steps: {} at step {step} against {} at step {ref_step}",
                series.key,
                fmt_num(value),
                fmt_num(ref_value)
            ),
        });
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        if self.series.is_empty() {
            let (train, val) = self.reads();
            let mut metrics = Vec::new();
            if val {
                metrics.extend(self.p.val_loss_metric.to_vec());
            }
            if train {
                metrics.extend(self.p.loss_metric.to_vec());
            }
            let message = format!("no loss was logged (looked for {})", looked_for(&metrics));
            return Outcome::Missing { metrics, message };
        }
        if self.evaluations == 0 {
            return Outcome::Clean(format!(
                "no loss series spanned num_steps = {} steps, so nothing was compared",
                self.p.num_steps
            ));
        }
        Outcome::Clean(format!(
            "the loss kept decreasing: {} checks",
            self.evaluations
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// Overfit: each validation loss against the mean of the training losses logged since the
/// previous comparison (the latest training loss if none was).
#[derive(Debug)]
pub(crate) struct Overfit {
    p: spec::Overfit,
    keys: Vec<Keyed>,
    train: Chosen,
    val: Chosen,
    train_series: Option<u32>,
    val_series: Option<u32>,
    sum: f64,
    n: u64,
    last_train: Option<(i64, f64)>,
    /// A validation loss waiting for the training loss to reach its step.
    pending: Option<Pending>,
    consecutive: u64,
    evaluations: u64,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    step: i64,
    timestamp_ms: i64,
    value: f64,
}

fn route_loss_pair(
    keys: &mut Vec<Keyed>,
    train: &crate::keys::MetricKeys,
    val: &crate::keys::MetricKeys,
    key: &str,
) -> Option<Route> {
    let (is_val, priority) = if let Some((priority, _)) = val.find(key) {
        (true, priority)
    } else if let Some((priority, _)) = train.find(key) {
        (false, priority)
    } else {
        return None;
    };
    keys.push(Keyed {
        key: key.to_owned(),
        val: is_val,
        priority,
    });
    Some(Route {
        role: u8::from(is_val),
        series: (keys.len() - 1) as u32,
    })
}

impl Overfit {
    pub fn new(p: &spec::Overfit) -> Overfit {
        Overfit {
            p: p.clone(),
            keys: Vec::new(),
            train: Chosen::default(),
            val: Chosen::default(),
            train_series: None,
            val_series: None,
            sum: 0.0,
            n: 0,
            last_train: None,
            pending: None,
            consecutive: 0,
            evaluations: 0,
        }
    }

    fn key(&self, series: Option<u32>) -> &str {
        series
            .and_then(|s| self.keys.get(s as usize))
            .map_or("", |k| k.key.as_str())
    }

    fn evaluate(&mut self, val: Pending, out: &mut Sink) {
        let train = if self.n > 0 {
            self.sum / self.n as f64
        } else if let Some((_, last)) = self.last_train {
            last
        } else {
            return;
        };
        self.sum = 0.0;
        self.n = 0;
        if train == 0.0 {
            return;
        }
        let ratio = (val.value - train) / train.abs();
        self.evaluations += 1;
        if ratio <= self.p.ratio_threshold {
            self.consecutive = 0;
            return;
        }
        self.consecutive += 1;
        if self.consecutive < self.p.patience {
            return;
        }
        let (train_key, val_key) = (self.key(self.train_series), self.key(self.val_series));
        out.push(Violation {
            step: Some(val.step),
            timestamp_ms: Some(val.timestamp_ms),
            values: Values::new()
                .num("train_loss", train)
                .num("val_loss", val.value)
                .num("ratio", ratio)
                .count("consecutive", self.consecutive)
                .text("train_metric", train_key)
                .text("val_metric", val_key)
                .into_map(),
            message: format!(
                "overfitting at step {}: {val_key} = {} is {} above the mean {train_key} = {} (ratio {} > {}, {} comparison(s) in a row)",
                val.step,
                fmt_num(val.value),
                format_args!("{}%", fmt_num(ratio * 100.0)),
                fmt_num(train),
                fmt_num(ratio),
                fmt_num(self.p.ratio_threshold),
                self.consecutive
            ),
        });
    }
}

impl Engine for Overfit {
    fn route(&mut self, key: &str) -> Option<Route> {
        route_loss_pair(
            &mut self.keys,
            &self.p.loss_metric,
            &self.p.val_loss_metric,
            key,
        )
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() {
            return;
        }
        let Some(keyed) = self.keys.get(route.series as usize) else {
            return;
        };
        let priority = (keyed.priority, route.series);
        if keyed.val {
            match self.val.offer(priority) {
                Choice::Ignore => return,
                Choice::Switch => {
                    self.val_series = Some(route.series);
                    self.pending = None;
                    self.consecutive = 0;
                }
                Choice::Same => {}
            }
            if point.step < self.p.start_step {
                return;
            }
            if let Some(older) = self.pending.take() {
                self.evaluate(older, out);
            }
            let val = Pending {
                step: point.step,
                timestamp_ms: point.timestamp_ms,
                value: point.value,
            };
            if self.last_train.is_some_and(|(step, _)| step >= point.step) {
                self.evaluate(val, out);
            } else {
                self.pending = Some(val);
            }
        } else {
            match self.train.offer(priority) {
                Choice::Ignore => return,
                Choice::Switch => {
                    self.train_series = Some(route.series);
                    self.sum = 0.0;
                    self.n = 0;
                    self.last_train = None;
                }
                Choice::Same => {}
            }
            if let Some(val) = self.pending
                && point.step > val.step
            {
                self.pending = None;
                self.evaluate(val, out);
            }
            self.sum += point.value;
            self.n += 1;
            self.last_train = Some((point.step, point.value));
            if let Some(val) = self.pending
                && point.step == val.step
            {
                self.pending = None;
                self.evaluate(val, out);
            }
        }
    }

    fn flush(&mut self, _now: i64, out: &mut Sink) {
        if let Some(val) = self.pending.take() {
            self.evaluate(val, out);
        }
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        loss_pair_outcome(
            self.train.is_set(),
            self.val.is_set(),
            &self.p.loss_metric,
            &self.p.val_loss_metric,
        )
        .unwrap_or_else(|| {
            if self.evaluations == 0 {
                Outcome::Clean(format!(
                    "no validation loss at or after start_step = {} could be compared with a training loss",
                    self.p.start_step
                ))
            } else {
                Outcome::Clean(format!(
                    "the validation loss stayed within ratio_threshold = {} of the training loss (or not for patience = {} comparisons in a row): {} comparisons",
                    fmt_num(self.p.ratio_threshold),
                    self.p.patience,
                    self.evaluations
                ))
            }
        })
    }
}

/// `Some(Missing)` when the training or validation loss never appeared.
fn loss_pair_outcome(
    saw_train: bool,
    saw_val: bool,
    train: &crate::keys::MetricKeys,
    val: &crate::keys::MetricKeys,
) -> Option<Outcome> {
    let mut metrics = Vec::new();
    let mut what = Vec::new();
    if !saw_train {
        metrics.extend(train.to_vec());
        what.push(format!("no training loss ({train})"));
    }
    if !saw_val {
        metrics.extend(val.to_vec());
        what.push(format!("no validation loss ({val})"));
    }
    (!metrics.is_empty()).then(|| Outcome::Missing {
        message: format!("{} was logged", what.join(" and ")),
        metrics,
    })
}

// ---------------------------------------------------------------------------------------------

/// Overtraining: the validation loss has had no new optimum for patience_validation points
/// while the training loss had one within its last patience_train points.
#[derive(Debug)]
pub(crate) struct Overtraining {
    p: spec::Overtraining,
    keys: Vec<Keyed>,
    train: Chosen,
    val: Chosen,
    train_series: Option<u32>,
    val_series: Option<u32>,
    best_train: Option<f64>,
    train_since: u64,
    best_val: Option<f64>,
    val_since: u64,
    evaluations: u64,
}

fn improve(best: &mut Option<f64>, since: &mut u64, value: f64, delta: f64) {
    if best.is_none_or(|b| value < b - delta) {
        *best = Some(value);
        *since = 0;
    } else {
        *since += 1;
    }
}

impl Overtraining {
    pub fn new(p: &spec::Overtraining) -> Overtraining {
        Overtraining {
            p: p.clone(),
            keys: Vec::new(),
            train: Chosen::default(),
            val: Chosen::default(),
            train_series: None,
            val_series: None,
            best_train: None,
            train_since: 0,
            best_val: None,
            val_since: 0,
            evaluations: 0,
        }
    }

    fn key(&self, series: Option<u32>) -> &str {
        series
            .and_then(|s| self.keys.get(s as usize))
            .map_or("", |k| k.key.as_str())
    }
}

impl Engine for Overtraining {
    fn route(&mut self, key: &str) -> Option<Route> {
        route_loss_pair(
            &mut self.keys,
            &self.p.loss_metric,
            &self.p.val_loss_metric,
            key,
        )
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() {
            return;
        }
        let Some(keyed) = self.keys.get(route.series as usize) else {
            return;
        };
        let priority = (keyed.priority, route.series);
        if !keyed.val {
            match self.train.offer(priority) {
                Choice::Ignore => return,
                Choice::Switch => {
                    self.train_series = Some(route.series);
                    self.best_train = None;
                    self.train_since = 0;
                }
                Choice::Same => {}
            }
            improve(
                &mut self.best_train,
                &mut self.train_since,
                point.value,
                self.p.delta,
            );
            return;
        }
        match self.val.offer(priority) {
            Choice::Ignore => return,
            Choice::Switch => {
                self.val_series = Some(route.series);
                self.best_val = None;
                self.val_since = 0;
            }
            Choice::Same => {}
        }
        improve(
            &mut self.best_val,
            &mut self.val_since,
            point.value,
            self.p.delta,
        );
        let (Some(best_train), Some(best_val)) = (self.best_train, self.best_val) else {
            return;
        };
        self.evaluations += 1;
        if self.val_since < self.p.patience_validation || self.train_since >= self.p.patience_train
        {
            return;
        }
        let (train_key, val_key) = (self.key(self.train_series), self.key(self.val_series));
        out.push(Violation {
            step: Some(point.step),
            timestamp_ms: Some(point.timestamp_ms),
            values: Values::new()
                .num("val_loss", point.value)
                .num("best_val_loss", best_val)
                .count("validation_points_without_improvement", self.val_since)
                .num("best_train_loss", best_train)
                .count("training_points_since_improvement", self.train_since)
                .text("train_metric", train_key)
                .text("val_metric", val_key)
                .into_map(),
            message: format!(
                "overtraining at step {}: {val_key} has not improved by more than {} for {} validation points (best {}), while {train_key} still improves",
                point.step,
                fmt_num(self.p.delta),
                self.val_since,
                fmt_num(best_val)
            ),
        });
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        loss_pair_outcome(
            self.train.is_set(),
            self.val.is_set(),
            &self.p.loss_metric,
            &self.p.val_loss_metric,
        )
        .unwrap_or_else(|| {
            Outcome::Clean(format!(
                "the validation loss kept improving, or training stopped improving too: {} checks",
                self.evaluations
            ))
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// ExplodingTensor: any NaN (or ±infinity) value of an inspected key, late or duplicate included.
#[derive(Debug)]
pub(crate) struct ExplodingTensor {
    p: spec::ExplodingTensor,
    keys: Vec<String>,
    evaluations: u64,
}

impl ExplodingTensor {
    pub fn new(p: &spec::ExplodingTensor) -> ExplodingTensor {
        ExplodingTensor {
            p: p.clone(),
            keys: Vec::new(),
            evaluations: 0,
        }
    }
}

impl Engine for ExplodingTensor {
    fn route(&mut self, key: &str) -> Option<Route> {
        self.p.metrics.find(key)?;
        self.keys.push(key.to_owned());
        Some(Route {
            role: 0,
            series: (self.keys.len() - 1) as u32,
        })
    }

    fn point(&mut self, route: Route, point: &Point, _fresh: Fresh, _now: i64, out: &mut Sink) {
        self.evaluations += 1;
        let v = point.value;
        if !(v.is_nan() || (!self.p.only_nan && v.is_infinite())) {
            return;
        }
        let key = self
            .keys
            .get(route.series as usize)
            .map_or("", String::as_str);
        out.push(Violation {
            step: Some(point.step),
            timestamp_ms: Some(point.timestamp_ms),
            values: Values::new().text("metric", key).num("value", v).into_map(),
            message: format!("{key} is {} at step {}", fmt_num(v), point.step),
        });
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        if self.keys.is_empty() {
            return Outcome::Missing {
                metrics: self.p.metrics.to_vec(),
                message: format!("no metric matching {} was logged", self.p.metrics),
            };
        }
        Outcome::Clean(format!(
            "all {} values of {} metrics were finite",
            self.evaluations,
            self.keys.len()
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// VanishingGradient: a gradient statistic's absolute value below the threshold.
#[derive(Debug)]
pub(crate) struct VanishingGradient {
    p: spec::VanishingGradient,
    keys: Vec<String>,
    smallest: Option<f64>,
    evaluations: u64,
}

impl VanishingGradient {
    pub fn new(p: &spec::VanishingGradient) -> VanishingGradient {
        VanishingGradient {
            p: p.clone(),
            keys: Vec::new(),
            smallest: None,
            evaluations: 0,
        }
    }
}

impl Engine for VanishingGradient {
    fn route(&mut self, key: &str) -> Option<Route> {
        self.p.gradient_metric.find(key)?;
        self.keys.push(key.to_owned());
        Some(Route {
            role: 0,
            series: (self.keys.len() - 1) as u32,
        })
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() {
            return;
        }
        self.evaluations += 1;
        let magnitude = point.value.abs();
        self.smallest = Some(self.smallest.map_or(magnitude, |s| s.min(magnitude)));
        if magnitude >= self.p.threshold {
            return;
        }
        let key = self
            .keys
            .get(route.series as usize)
            .map_or("", String::as_str);
        out.push(Violation {
            step: Some(point.step),
            timestamp_ms: Some(point.timestamp_ms),
            values: Values::new()
                .text("metric", key)
                .num("value", point.value)
                .num("threshold", self.p.threshold)
                .into_map(),
            message: format!(
                "vanishing gradient at step {}: {key} = {} is below {}",
                point.step,
                fmt_num(point.value),
                fmt_num(self.p.threshold)
            ),
        });
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        match self.smallest {
            None => Outcome::Missing {
                metrics: self.p.gradient_metric.to_vec(),
                message: format!(
                    "no gradient statistic was logged (looked for {})",
                    self.p.gradient_metric
                ),
            },
            Some(smallest) => Outcome::Clean(format!(
                "gradients stayed above {}: smallest {} in {} values",
                fmt_num(self.p.threshold),
                fmt_num(smallest),
                self.evaluations
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// UnchangedTensor: the last num_steps logged values of a key all close to the newest.
#[derive(Debug)]
pub(crate) struct UnchangedTensor {
    p: spec::UnchangedTensor,
    series: Vec<(String, VecDeque<(i64, f64)>)>,
    evaluations: u64,
}

impl UnchangedTensor {
    pub fn new(p: &spec::UnchangedTensor) -> UnchangedTensor {
        UnchangedTensor {
            p: p.clone(),
            series: Vec::new(),
            evaluations: 0,
        }
    }

    /// numpy.isclose(a, b): |a − b| ≤ atol + rtol·|b|.
    fn close(&self, a: f64, b: f64) -> bool {
        if a.is_nan() || b.is_nan() {
            return self.p.equal_nan && a.is_nan() && b.is_nan();
        }
        a == b || (a - b).abs() <= self.p.atol + self.p.rtol * b.abs()
    }
}

impl Engine for UnchangedTensor {
    fn route(&mut self, key: &str) -> Option<Route> {
        self.p.weight_metric.find(key)?;
        self.series.push((key.to_owned(), VecDeque::new()));
        Some(Route {
            role: 0,
            series: (self.series.len() - 1) as u32,
        })
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New {
            return;
        }
        let cap = self.p.num_steps.min(MAX_WINDOW) as usize;
        let Some((_, values)) = self.series.get_mut(route.series as usize) else {
            return;
        };
        match values.back_mut() {
            Some(last) if last.0 == point.step => last.1 = point.value,
            _ => values.push_back((point.step, point.value)),
        }
        while values.len() > cap {
            values.pop_front();
        }
        if values.len() < cap {
            return;
        }
        self.evaluations += 1;
        let Some((key, values)) = self.series.get(route.series as usize) else {
            return;
        };
        let newest = point.value;
        if !values.iter().all(|&(_, v)| self.close(v, newest)) {
            return;
        }
        let first_step = values.front().map_or(point.step, |&(s, _)| s);
        out.push(Violation {
            step: Some(point.step),
            timestamp_ms: Some(point.timestamp_ms),
            values: Values::new()
                .text("metric", key)
                .num("value", newest)
                .int("first_step", first_step)
                .count("num_steps", cap as u64)
                .into_map(),
            message: format!(
                "{key} has not changed over {cap} logged steps ({first_step} to {}): {}",
                point.step,
                fmt_num(newest)
            ),
        });
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        if self.series.is_empty() {
            return Outcome::Missing {
                metrics: self.p.weight_metric.to_vec(),
                message: format!("no statistic matching {} was logged", self.p.weight_metric),
            };
        }
        Outcome::Clean(format!(
            "{} statistics kept changing: {} checks",
            self.series.len(),
            self.evaluations
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// ClassImbalance: per class, the latest running totals of samples and mispredictions.
#[derive(Debug)]
pub(crate) struct ClassImbalance {
    p: spec::ClassImbalance,
    index: HashMap<String, u32>,
    classes: Vec<ClassCounts>,
    dirty: Option<(i64, i64)>,
    saw_mispredicted: bool,
    evaluations: u64,
}

#[derive(Debug)]
struct ClassCounts {
    name: String,
    count: Option<f64>,
    wrong: Option<f64>,
}

impl ClassImbalance {
    pub fn new(p: &spec::ClassImbalance) -> ClassImbalance {
        ClassImbalance {
            p: p.clone(),
            index: HashMap::new(),
            classes: Vec::new(),
            dirty: None,
            saw_mispredicted: false,
            evaluations: 0,
        }
    }

    fn total(&self) -> f64 {
        self.classes.iter().filter_map(|c| c.count).sum()
    }
}

impl Engine for ClassImbalance {
    fn route(&mut self, key: &str) -> Option<Route> {
        let (role, found) = if let Some((_, m)) = self.p.labels_metric.find(key) {
            (0, m)
        } else if let Some((_, m)) = self.p.mispredicted_metric.find(key) {
            (1, m)
        } else {
            return None;
        };
        let class = found.capture.unwrap_or_else(|| key.to_owned());
        let next = self.classes.len() as u32;
        let series = *self.index.entry(class.clone()).or_insert(next);
        if series == next {
            self.classes.push(ClassCounts {
                name: class,
                count: None,
                wrong: None,
            });
        }
        Some(Route { role, series })
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, _out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() || point.value < 0.0 {
            return;
        }
        let Some(class) = self.classes.get_mut(route.series as usize) else {
            return;
        };
        if route.role == 0 {
            class.count = Some(point.value);
        } else {
            class.wrong = Some(point.value);
            self.saw_mispredicted = true;
        }
        self.dirty = Some((point.step, point.timestamp_ms));
    }

    fn batch_end(&mut self, _now: i64, out: &mut Sink) {
        let Some((step, timestamp_ms)) = self.dirty.take() else {
            return;
        };
        let total = self.total();
        if total < self.p.samples as f64 {
            return;
        }
        let counted: Vec<&ClassCounts> =
            self.classes.iter().filter(|c| c.count.is_some()).collect();
        let largest = counted
            .iter()
            .copied()
            .max_by(|a, b| a.count.unwrap_or(0.0).total_cmp(&b.count.unwrap_or(0.0)));
        let smallest = counted
            .iter()
            .copied()
            .min_by(|a, b| a.count.unwrap_or(0.0).total_cmp(&b.count.unwrap_or(0.0)));
        self.evaluations += 1;
        if counted.len() >= 2
            && let (Some(large), Some(small)) = (largest, smallest)
        {
            let (big, little) = (large.count.unwrap_or(0.0), small.count.unwrap_or(0.0));
            let ratio = if little > 0.0 {
                big / little
            } else {
                f64::INFINITY
            };
            if ratio > self.p.threshold_imbalance {
                out.push(Violation {
                    step: Some(step),
                    timestamp_ms: Some(timestamp_ms),
                    values: Values::new()
                        .text("largest_class", &large.name)
                        .num("largest_count", big)
                        .text("smallest_class", &small.name)
                        .num("smallest_count", little)
                        .num("ratio", ratio)
                        .into_map(),
                    message: format!(
                        "class imbalance: class {} has {} samples, class {} only {} (ratio {} > {})",
                        large.name,
                        fmt_num(big),
                        small.name,
                        fmt_num(little),
                        fmt_num(ratio),
                        fmt_num(self.p.threshold_imbalance)
                    ),
                });
                return;
            }
        }
        let worst = self
            .classes
            .iter()
            .filter_map(|c| match (c.count, c.wrong) {
                (Some(count), Some(wrong)) if count > 0.0 => Some((c, wrong / count)),
                _ => None,
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((class, fraction)) = worst
            && fraction > self.p.threshold_misprediction
        {
            out.push(Violation {
                step: Some(step),
                timestamp_ms: Some(timestamp_ms),
                values: Values::new()
                    .text("class", &class.name)
                    .num("mispredicted", class.wrong.unwrap_or(0.0))
                    .num("count", class.count.unwrap_or(0.0))
                    .num("fraction", fraction)
                    .into_map(),
                message: format!(
                    "class {} is mispredicted in {} of its {} samples (fraction {} > {})",
                    class.name,
                    fmt_num(class.wrong.unwrap_or(0.0)),
                    fmt_num(class.count.unwrap_or(0.0)),
                    fmt_num(fraction),
                    fmt_num(self.p.threshold_misprediction)
                ),
            });
        }
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        if !self.classes.iter().any(|c| c.count.is_some()) {
            return Outcome::Missing {
                metrics: self.p.labels_metric.to_vec(),
                message: format!(
                    "no per-class label count was logged (looked for {})",
                    self.p.labels_metric
                ),
            };
        }
        let total = self.total();
        if total < self.p.samples as f64 {
            return Outcome::Clean(format!(
                "only {} labels were counted, fewer than samples = {}: not evaluated",
                fmt_num(total),
                self.p.samples
            ));
        }
        let note = if self.saw_mispredicted {
            ""
        } else {
            "; mispredictions not checked (no mispredicted count was logged)"
        };
        Outcome::Clean(format!(
            "classes balanced within {} over {} labels{note}",
            fmt_num(self.p.threshold_imbalance),
            fmt_num(total)
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// StalledTrainingRule: time since the last training-metric point, on the caller's clock.
#[derive(Debug)]
pub(crate) struct Stalled {
    p: spec::StalledTrainingRule,
    last_activity_ms: i64,
    last_step: Option<i64>,
    saw: bool,
    stalled: bool,
    longest_gap_ms: i64,
    evaluations: u64,
}

impl Stalled {
    pub fn new(p: &spec::StalledTrainingRule, start_ms: i64) -> Stalled {
        Stalled {
            p: p.clone(),
            last_activity_ms: start_ms,
            last_step: None,
            saw: false,
            stalled: false,
            longest_gap_ms: 0,
            evaluations: 0,
        }
    }
}

impl Engine for Stalled {
    fn route(&mut self, key: &str) -> Option<Route> {
        self.p.metrics.find(key)?;
        Some(Route { role: 0, series: 0 })
    }

    fn point(&mut self, _route: Route, point: &Point, _fresh: Fresh, now: i64, _out: &mut Sink) {
        if now > self.last_activity_ms {
            self.longest_gap_ms = self
                .longest_gap_ms
                .max(now.saturating_sub(self.last_activity_ms));
            self.last_activity_ms = now;
        }
        self.last_step = Some(self.last_step.map_or(point.step, |s| s.max(point.step)));
        self.saw = true;
        self.stalled = false;
    }

    fn tick(&mut self, now: i64, out: &mut Sink) {
        self.evaluations += 1;
        let idle_ms = now.saturating_sub(self.last_activity_ms);
        if self.stalled || (idle_ms as f64) <= self.p.threshold * 1000.0 {
            return;
        }
        self.stalled = true;
        self.longest_gap_ms = self.longest_gap_ms.max(idle_ms);
        let seconds = idle_ms as f64 / 1000.0;
        let values = Values::new()
            .num("seconds_since_last_point", seconds)
            .num("threshold", self.p.threshold);
        let values = match self.last_step {
            Some(step) => values.int("last_step", step),
            None => values,
        };
        out.push(Violation {
            step: self.last_step,
            timestamp_ms: None,
            values: values.into_map(),
            message: match self.last_step {
                Some(step) => format!(
                    "training stalled: no new training metric for {} s (threshold {} s); last step {step}",
                    fmt_num(seconds),
                    fmt_num(self.p.threshold)
                ),
                None => format!(
                    "training stalled: no training metric in the {} s since the job started (threshold {} s)",
                    fmt_num(seconds),
                    fmt_num(self.p.threshold)
                ),
            },
        });
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        if !self.saw {
            return Outcome::Missing {
                metrics: self.p.metrics.to_vec(),
                message: format!("no metric matching {} was logged", self.p.metrics),
            };
        }
        Outcome::Clean(format!(
            "longest wait for a training metric: {} s",
            fmt_num(self.longest_gap_ms as f64 / 1000.0)
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::num;

    #[test]
    fn non_finite_values_are_strings() {
        assert_eq!(num(f64::NAN), serde_json::json!("NaN"));
        assert_eq!(num(f64::NEG_INFINITY), serde_json::json!("-Infinity"));
        assert_eq!(num(1.5), serde_json::json!(1.5));
    }
}
