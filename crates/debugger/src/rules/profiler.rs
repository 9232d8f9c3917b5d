//! The profiler rules: system metrics (MLflow's `system/…` keys) and step timing.

use std::collections::HashMap;

use super::{Choice, Chosen, Engine, Fresh, Outcome, Route, Sink, Values, Violation};
use crate::keys::MetricKeys;
use crate::spec::{self, MAX_WINDOW};
use crate::stats::{SortedWindow, TwoWindows, Welford, fmt_num};
use crate::watch::Point;

/// System metrics whose timestamps are this close belong to one sample (SageMaker: 20 ms).
pub(crate) const SNAPSHOT_MS: u64 = 20;

/// Step durations needed before StepOutlier judges one.
pub(crate) const MIN_STEP_DURATIONS: u64 = 10;

fn node_suffix(node: Option<&str>) -> String {
    node.map(|n| format!(" on node {n}")).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------

/// CPUBottleneck and IOBottleneck: system samples (per node) in which a GPU idles while the
/// CPU utilisation (or I/O wait) is high, as a share of all samples.
#[derive(Debug)]
pub(crate) struct Bottleneck {
    /// `cpu` or `io_wait`: the name of the high metric in values and messages.
    high_name: &'static str,
    high_keys: MetricKeys,
    gpu_keys: MetricKeys,
    high_threshold: f64,
    gpu_threshold: f64,
    threshold: f64,
    patience: u64,
    nodes: Vec<NodeSamples>,
    node_index: HashMap<String, u32>,
    saw_high: bool,
    saw_gpu: bool,
    samples: u64,
    bottlenecks: u64,
    evaluations: u64,
}

#[derive(Debug)]
struct NodeSamples {
    name: Option<String>,
    open: Option<Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: i64,
    step: i64,
    high: Option<f64>,
    gpu: Option<f64>,
}

impl Bottleneck {
    pub fn cpu(p: &spec::CpuBottleneck) -> Bottleneck {
        Bottleneck::new(
            "cpu",
            &p.cpu_metric,
            &p.gpu_metric,
            p.cpu_threshold,
            p.gpu_threshold,
            p.threshold,
            p.patience,
        )
    }

    pub fn io(p: &spec::IoBottleneck) -> Bottleneck {
        Bottleneck::new(
            "io_wait",
            &p.io_metric,
            &p.gpu_metric,
            p.io_threshold,
            p.gpu_threshold,
            p.threshold,
            p.patience,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        high_name: &'static str,
        high_keys: &MetricKeys,
        gpu_keys: &MetricKeys,
        high_threshold: f64,
        gpu_threshold: f64,
        threshold: f64,
        patience: u64,
    ) -> Bottleneck {
        Bottleneck {
            high_name,
            high_keys: high_keys.clone(),
            gpu_keys: gpu_keys.clone(),
            high_threshold,
            gpu_threshold,
            threshold,
            patience,
            nodes: Vec::new(),
            node_index: HashMap::new(),
            saw_high: false,
            saw_gpu: false,
            samples: 0,
            bottlenecks: 0,
            evaluations: 0,
        }
    }

    fn what(&self) -> &'static str {
        if self.high_name == "cpu" {
            "CPU utilisation"
        } else {
            "I/O wait"
        }
    }

    fn close(&mut self, node: u32, sample: Sample, out: &mut Sink) {
        self.samples += 1;
        let high = sample.high.is_some_and(|h| h > self.high_threshold);
        let idle = sample.gpu.is_some_and(|g| g < self.gpu_threshold);
        if high && idle {
            self.bottlenecks += 1;
        }
        if self.samples <= self.patience {
            return;
        }
        self.evaluations += 1;
        let percent = self.bottlenecks as f64 / self.samples as f64 * 100.0;
        if percent <= self.threshold {
            return;
        }
        let node_name = self
            .nodes
            .get(node as usize)
            .and_then(|n| n.name.as_deref());
        let mut values = Values::new()
            .count("bottlenecks", self.bottlenecks)
            .count("samples", self.samples)
            .num("percent", percent)
            .opt_text("node", node_name);
        if let Some(h) = sample.high {
            values = values.num(self.high_name, h);
        }
        if let Some(g) = sample.gpu {
            values = values.num("gpu", g);
        }
        out.push(Violation {
            step: Some(sample.step),
            timestamp_ms: Some(sample.start_ms),
            values: values.into_map(),
            message: format!(
                "GPUs idle (below {}%) while {} is above {}% in {}% of {} system samples (threshold {}%){}",
                fmt_num(self.gpu_threshold),
                self.what(),
                fmt_num(self.high_threshold),
                fmt_num(percent),
                self.samples,
                fmt_num(self.threshold),
                node_suffix(node_name)
            ),
        });
    }
}

impl Engine for Bottleneck {
    fn route(&mut self, key: &str) -> Option<Route> {
        let (role, found) = if let Some((_, m)) = self.high_keys.find(key) {
            (0, m)
        } else if let Some((_, m)) = self.gpu_keys.find(key) {
            (1, m)
        } else {
            return None;
        };
        let next = self.nodes.len() as u32;
        let series = *self
            .node_index
            .entry(found.node.clone().unwrap_or_default())
            .or_insert(next);
        if series == next {
            self.nodes.push(NodeSamples {
                name: found.node,
                open: None,
            });
        }
        Some(Route { role, series })
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() {
            return;
        }
        let Some(node) = self.nodes.get_mut(route.series as usize) else {
            return;
        };
        let closed = match node.open {
            Some(open) if point.timestamp_ms.abs_diff(open.start_ms) > SNAPSHOT_MS => {
                node.open = None;
                Some(open)
            }
            _ => None,
        };
        let sample = node.open.get_or_insert(Sample {
            start_ms: point.timestamp_ms,
            step: point.step,
            high: None,
            gpu: None,
        });
        if route.role == 0 {
            sample.high = Some(sample.high.map_or(point.value, |h| h.max(point.value)));
            self.saw_high = true;
        } else {
            sample.gpu = Some(sample.gpu.map_or(point.value, |g| g.min(point.value)));
            self.saw_gpu = true;
        }
        if let Some(sample) = closed {
            self.close(route.series, sample, out);
        }
    }

    fn flush(&mut self, _now: i64, out: &mut Sink) {
        for node in 0..self.nodes.len() {
            if let Some(sample) = self.nodes[node].open.take() {
                self.close(node as u32, sample, out);
            }
        }
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        let mut metrics = Vec::new();
        let mut what = Vec::new();
        if !self.saw_high {
            metrics.extend(self.high_keys.to_vec());
            what.push(if self.high_name == "cpu" {
                format!("no CPU utilisation ({})", self.high_keys)
            } else {
                format!(
                    "no I/O wait ({}; MLflow's system metrics do not include one)",
                    self.high_keys
                )
            });
        }
        if !self.saw_gpu {
            metrics.extend(self.gpu_keys.to_vec());
            what.push(format!(
                "no GPU utilisation ({}; a CPU-only job?)",
                self.gpu_keys
            ));
        }
        if !metrics.is_empty() {
            return Outcome::Missing {
                message: format!("{} was logged", what.join(" and ")),
                metrics,
            };
        }
        if self.samples <= self.patience {
            return Outcome::Clean(format!(
                "only {} system samples, not more than patience = {}: not evaluated",
                self.samples, self.patience
            ));
        }
        Outcome::Clean(format!(
            "bottlenecks in {}% of {} system samples (threshold {}%)",
            fmt_num(self.bottlenecks as f64 / self.samples as f64 * 100.0),
            self.samples,
            fmt_num(self.threshold)
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// One GPU's series (one key).
#[derive(Debug)]
struct Gpu<W> {
    key: String,
    gpu: String,
    node: Option<String>,
    samples: u64,
    window: W,
}

fn route_gpu<W>(
    gpus: &mut Vec<Gpu<W>>,
    keys: &MetricKeys,
    key: &str,
    window: impl FnOnce() -> W,
) -> Option<Route> {
    let (_, found) = keys.find(key)?;
    gpus.push(Gpu {
        key: key.to_owned(),
        gpu: found.capture.unwrap_or_else(|| key.to_owned()),
        node: found.node,
        samples: 0,
        window: window(),
    });
    Some(Route {
        role: 0,
        series: (gpus.len() - 1) as u32,
    })
}

/// LowGPUUtilization: percentiles of each GPU's last `window` utilisation samples.
#[derive(Debug)]
pub(crate) struct LowGpu {
    p: spec::LowGpuUtilization,
    gpus: Vec<Gpu<SortedWindow>>,
    evaluations: u64,
}

impl LowGpu {
    pub fn new(p: &spec::LowGpuUtilization) -> LowGpu {
        LowGpu {
            p: p.clone(),
            gpus: Vec::new(),
            evaluations: 0,
        }
    }
}

impl Engine for LowGpu {
    fn route(&mut self, key: &str) -> Option<Route> {
        let window = self.p.window.min(MAX_WINDOW) as usize;
        route_gpu(&mut self.gpus, &self.p.gpu_metric, key, || {
            SortedWindow::new(window)
        })
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() {
            return;
        }
        let Some(gpu) = self.gpus.get_mut(route.series as usize) else {
            return;
        };
        gpu.window.push(point.value);
        gpu.samples += 1;
        if gpu.samples <= self.p.patience {
            return;
        }
        let (Some(p95), Some(p5)) = (gpu.window.quantile(0.95), gpu.window.quantile(0.05)) else {
            return;
        };
        self.evaluations += 1;
        let message = if p95 < self.p.threshold_p95 {
            format!(
                "GPU {}{} is underused: 95th percentile of utilisation over the last {} samples is {}% (below {}%)",
                gpu.gpu,
                node_suffix(gpu.node.as_deref()),
                gpu.window.len(),
                fmt_num(p95),
                fmt_num(self.p.threshold_p95)
            )
        } else if p95 > self.p.threshold_p95 && p5 < self.p.threshold_p5 {
            format!(
                "GPU {}{} fluctuates: over the last {} samples the 95th percentile of utilisation is {}% but the 5th is {}% (below {}%)",
                gpu.gpu,
                node_suffix(gpu.node.as_deref()),
                gpu.window.len(),
                fmt_num(p95),
                fmt_num(p5),
                fmt_num(self.p.threshold_p5)
            )
        } else {
            return;
        };
        out.push(Violation {
            step: Some(point.step),
            timestamp_ms: Some(point.timestamp_ms),
            values: Values::new()
                .text("metric", &gpu.key)
                .text("gpu", &gpu.gpu)
                .opt_text("node", gpu.node.as_deref())
                .num("p95", p95)
                .num("p5", p5)
                .count("window", gpu.window.len() as u64)
                .into_map(),
            message,
        });
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        if self.gpus.is_empty() {
            return Outcome::Missing {
                metrics: self.p.gpu_metric.to_vec(),
                message: format!(
                    "no GPU utilisation was logged ({}; a CPU-only job?)",
                    self.p.gpu_metric
                ),
            };
        }
        if self.evaluations == 0 {
            return Outcome::Clean(format!(
                "no GPU had more than patience = {} samples: not evaluated",
                self.p.patience
            ));
        }
        Outcome::Clean(format!(
            "{} GPU(s) well used: {} checks",
            self.gpus.len(),
            self.evaluations
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// GPUMemoryIncrease: moving averages of each GPU's memory use over two consecutive windows.
#[derive(Debug)]
pub(crate) struct GpuMemory {
    p: spec::GpuMemoryIncrease,
    gpus: Vec<Gpu<TwoWindows>>,
    evaluations: u64,
}

impl GpuMemory {
    pub fn new(p: &spec::GpuMemoryIncrease) -> GpuMemory {
        GpuMemory {
            p: p.clone(),
            gpus: Vec::new(),
            evaluations: 0,
        }
    }
}

impl Engine for GpuMemory {
    fn route(&mut self, key: &str) -> Option<Route> {
        let window = self.p.window.min(MAX_WINDOW) as usize;
        route_gpu(&mut self.gpus, &self.p.memory_metric, key, || {
            TwoWindows::new(window)
        })
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() {
            return;
        }
        let Some(gpu) = self.gpus.get_mut(route.series as usize) else {
            return;
        };
        gpu.window.push(point.value);
        gpu.samples += 1;
        if gpu.samples <= self.p.patience {
            return;
        }
        let Some((newer, older)) = gpu.window.means() else {
            return;
        };
        self.evaluations += 1;
        let increase = newer - older;
        if increase <= self.p.increase {
            return;
        }
        out.push(Violation {
            step: Some(point.step),
            timestamp_ms: Some(point.timestamp_ms),
            values: Values::new()
                .text("metric", &gpu.key)
                .text("gpu", &gpu.gpu)
                .opt_text("node", gpu.node.as_deref())
                .num("increase", increase)
                .num("mean", newer)
                .num("previous_mean", older)
                .num("memory", point.value)
                .into_map(),
            message: format!(
                "GPU {}{} memory use rose by {} percentage points (threshold {}): mean {}% over the last {} samples against {}% before",
                gpu.gpu,
                node_suffix(gpu.node.as_deref()),
                fmt_num(increase),
                fmt_num(self.p.increase),
                fmt_num(newer),
                self.p.window,
                fmt_num(older)
            ),
        });
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        if self.gpus.is_empty() {
            return Outcome::Missing {
                metrics: self.p.memory_metric.to_vec(),
                message: format!(
                    "no GPU memory use was logged ({}; a CPU-only job?)",
                    self.p.memory_metric
                ),
            };
        }
        if self.evaluations == 0 {
            return Outcome::Clean(format!(
                "no GPU had more than patience = {} samples (and two windows of {}): not evaluated",
                self.p.patience, self.p.window
            ));
        }
        Outcome::Clean(format!(
            "GPU memory use stable: {} checks",
            self.evaluations
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// StepOutlier: step durations above mean + stddev·σ of the durations before them.
#[derive(Debug)]
pub(crate) struct StepOutlier {
    p: spec::StepOutlier,
    /// `(priority, is step time)` per routed key.
    keys: Vec<(usize, bool)>,
    step_time: Chosen,
    loss: Chosen,
    previous_loss: Option<(i64, i64)>,
    stats: Welford,
    outliers: u64,
    evaluations: u64,
}

impl StepOutlier {
    pub fn new(p: &spec::StepOutlier) -> StepOutlier {
        StepOutlier {
            p: p.clone(),
            keys: Vec::new(),
            step_time: Chosen::default(),
            loss: Chosen::default(),
            previous_loss: None,
            stats: Welford::default(),
            outliers: 0,
            evaluations: 0,
        }
    }

    fn feed(&mut self, duration: f64, point: &Point, unit: &str, out: &mut Sink) {
        if !duration.is_finite() || duration < 0.0 {
            return;
        }
        if self.stats.count() >= MIN_STEP_DURATIONS {
            self.evaluations += 1;
            let limit = self.stats.mean() + self.p.stddev * self.stats.std();
            if duration > limit {
                self.outliers += 1;
                if self.outliers > self.p.n_outliers {
                    out.push(Violation {
                        step: Some(point.step),
                        timestamp_ms: Some(point.timestamp_ms),
                        values: Values::new()
                            .num("duration", duration)
                            .text("unit", unit)
                            .num("mean", self.stats.mean())
                            .num("std", self.stats.std())
                            .count("outliers", self.outliers)
                            .into_map(),
                        message: format!(
                            "{} step durations exceeded mean + {}σ ({} {unit}), more than n_outliers = {}; step {} took {} {unit}",
                            self.outliers,
                            fmt_num(self.p.stddev),
                            fmt_num(limit),
                            self.p.n_outliers,
                            point.step,
                            fmt_num(duration)
                        ),
                    });
                }
            }
        }
        self.stats.push(duration);
    }
}

impl Engine for StepOutlier {
    fn route(&mut self, key: &str) -> Option<Route> {
        let (priority, is_step_time) = if let Some((p, _)) = self.p.step_time_metric.find(key) {
            (p, true)
        } else if let Some((p, _)) = self.p.loss_metric.find(key) {
            (p, false)
        } else {
            return None;
        };
        self.keys.push((priority, is_step_time));
        Some(Route {
            role: u8::from(is_step_time),
            series: (self.keys.len() - 1) as u32,
        })
    }

    fn point(&mut self, route: Route, point: &Point, fresh: Fresh, _now: i64, out: &mut Sink) {
        if fresh != Fresh::New || !point.value.is_finite() {
            return;
        }
        let Some(&(priority, is_step_time)) = self.keys.get(route.series as usize) else {
            return;
        };
        let priority = (priority, route.series);
        if is_step_time {
            let first = !self.step_time.is_set();
            if self.step_time.offer(priority) == Choice::Ignore {
                return;
            }
            if first {
                // Logged step times replace durations derived from the loss's timestamps.
                self.stats = Welford::default();
                self.outliers = 0;
            }
            self.feed(point.value, point, "as logged", out);
            return;
        }
        if self.step_time.is_set() {
            return;
        }
        match self.loss.offer(priority) {
            Choice::Ignore => return,
            Choice::Switch => self.previous_loss = None,
            Choice::Same => {}
        }
        if let Some((step, at)) = self.previous_loss
            && point.step > step
            && point.timestamp_ms >= at
        {
            let duration =
                point.timestamp_ms.abs_diff(at) as f64 / point.step.abs_diff(step) as f64;
            self.feed(duration, point, "ms", out);
        }
        self.previous_loss = Some((point.step, point.timestamp_ms));
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        if self.keys.is_empty() {
            let mut metrics = self.p.step_time_metric.to_vec();
            metrics.extend(self.p.loss_metric.to_vec());
            return Outcome::Missing {
                message: format!(
                    "neither a step time ({}) nor a training loss ({}) was logged",
                    self.p.step_time_metric, self.p.loss_metric
                ),
                metrics,
            };
        }
        if self.evaluations == 0 {
            return Outcome::Clean(format!(
                "only {} step durations, more than {MIN_STEP_DURATIONS} are needed: not evaluated",
                self.stats.count()
            ));
        }
        Outcome::Clean(format!(
            "{} outlier(s) among {} step durations (n_outliers = {})",
            self.outliers,
            self.stats.count(),
            self.p.n_outliers
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// MaxInitializationTime: time from the job's start to the first training-metric point.
#[derive(Debug)]
pub(crate) struct MaxInit {
    p: spec::MaxInitializationTime,
    start_ms: i64,
    first: Option<(i64, i64)>,
    fired: bool,
    evaluations: u64,
}

impl MaxInit {
    pub fn new(p: &spec::MaxInitializationTime, start_ms: i64) -> MaxInit {
        MaxInit {
            p: p.clone(),
            start_ms,
            first: None,
            fired: false,
            evaluations: 0,
        }
    }

    fn check(&mut self, now: i64, step: Option<i64>, out: &mut Sink) {
        self.evaluations += 1;
        let waited_ms = now.saturating_sub(self.start_ms);
        if self.fired || waited_ms as f64 <= self.p.threshold * 60_000.0 {
            return;
        }
        self.fired = true;
        let minutes = waited_ms as f64 / 60_000.0;
        out.push(Violation {
            step,
            timestamp_ms: None,
            values: Values::new()
                .num("minutes", minutes)
                .num("threshold", self.p.threshold)
                .into_map(),
            message: match step {
                Some(step) => format!(
                    "initialisation took {} minutes (threshold {}): the first step ({step}) arrived late",
                    fmt_num(minutes),
                    fmt_num(self.p.threshold)
                ),
                None => format!(
                    "initialisation is taking too long: no training step {} minutes after the start (threshold {})",
                    fmt_num(minutes),
                    fmt_num(self.p.threshold)
                ),
            },
        });
    }
}

impl Engine for MaxInit {
    fn route(&mut self, key: &str) -> Option<Route> {
        self.p.metrics.find(key)?;
        Some(Route { role: 0, series: 0 })
    }

    fn point(&mut self, _route: Route, point: &Point, _fresh: Fresh, now: i64, out: &mut Sink) {
        if self.first.is_none() {
            self.first = Some((now, point.step));
            self.check(now, Some(point.step), out);
        }
    }

    fn tick(&mut self, now: i64, out: &mut Sink) {
        if self.first.is_none() {
            self.check(now, None, out);
        }
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn outcome(&self) -> Outcome {
        match self.first {
            None => Outcome::Missing {
                metrics: self.p.metrics.to_vec(),
                message: format!("no metric matching {} was logged", self.p.metrics),
            },
            Some((at, step)) => Outcome::Clean(format!(
                "the first step ({step}) arrived {} minutes after the start",
                fmt_num(at.saturating_sub(self.start_ms) as f64 / 60_000.0)
            )),
        }
    }
}
