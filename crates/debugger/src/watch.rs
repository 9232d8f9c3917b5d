//! The evaluator: a [`Watch`] holds the rules of one job, reads its metric points incrementally
//! and reports each rule's status.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::rules::{self, Engine, Fresh, Outcome, Route, Sink, Violation};
use crate::spec::{Action, RuleConfig, RuleKind, RuleSpec};

/// Distinct keys remembered as "read by no rule"; beyond this, such keys are matched again each
/// time they appear instead of being remembered (keys some rule reads are always remembered).
pub const MAX_IGNORED_KEYS: usize = 100_000;

/// One metric point, as MLflow logs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The metric key (`val_loss`, `system/gpu_0_utilization_percentage`, …).
    pub key: String,
    /// The value; NaN and ±infinity are allowed (JSON: `"NaN"`, `"Infinity"`, `"-Infinity"`).
    #[serde(serialize_with = "ser_f64", deserialize_with = "de_f64")]
    pub value: f64,
    /// The step (MLflow's default is 0).
    #[serde(default)]
    pub step: i64,
    /// When the client logged it, in milliseconds since the epoch.
    #[serde(alias = "timestamp")]
    pub timestamp_ms: i64,
}

impl Point {
    /// A point.
    pub fn new(key: impl Into<String>, value: f64, step: i64, timestamp_ms: i64) -> Point {
        Point {
            key: key.into(),
            value,
            step,
            timestamp_ms,
        }
    }
}

fn ser_f64<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    rules::num(*value).serialize(serializer)
}

fn de_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| serde::de::Error::custom("number out of range")),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("`{other}` is not a number"))),
        },
        other => Err(serde::de::Error::custom(format!(
            "expected a number, got {other}"
        ))),
    }
}

/// SageMaker's rule evaluation status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Still watching.
    InProgress,
    /// The rule fired.
    IssuesFound,
    /// The job ended and the rule never fired.
    NoIssuesFound,
    /// The job ended and the rule could not be evaluated: the metrics it needs never appeared.
    Error,
}

/// Where and why a rule fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The step of the point that triggered it (absent for time-based triggers without a step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    /// The client's timestamp of that point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
    /// The caller's clock (`now_ms`) when the rule fired.
    pub detected_ms: i64,
    /// The values that triggered it, by name (`train_loss`, `val_loss`, `ratio`, …).
    #[serde(flatten)]
    pub values: Map<String, Value>,
}

/// One rule's state, as stored by the job system and shown to the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleResult {
    /// The label (default: the rule's name; `ProfilerReport/CPUBottleneck` inside a report).
    pub label: String,
    /// The rule's SageMaker name.
    pub rule: String,
    /// SageMaker's evaluation status.
    pub status: Status,
    /// What happened, for people.
    pub message: String,
    /// The first trigger, once the rule fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// What to do when the rule fires: `alert`, and `StopTraining` when asked for.
    pub actions: Vec<Action>,
    /// Times the rule's condition was evaluated.
    pub evaluations: u64,
    /// Times it was met (the first is the trigger).
    pub violations: u64,
    /// With `Error`: the metric keys (patterns) the rule needed and never saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_metrics: Vec<String>,
    /// ProfilerReport's rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleResult>,
}

impl RuleResult {
    /// Whether the job system should stop the job (the rule fired and asks for StopTraining).
    pub fn stop_training(&self) -> bool {
        self.status == Status::IssuesFound && self.actions.contains(&Action::StopTraining)
    }
}

/// Counters over everything a watch was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchStats {
    /// Points given to [`Watch::observe`].
    pub points: u64,
    /// Points of keys some rule reads.
    pub routed: u64,
    /// Routed points earlier (step, then timestamp) than what was already read for their key:
    /// skipped by the step-ordered rules.
    pub late: u64,
    /// Routed points at the same step and timestamp as the latest read for their key.
    pub duplicates: u64,
    /// Distinct keys some rule reads.
    pub keys: u64,
}

/// Why a watch cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// Two rules share a label.
    #[error("two rules are labelled `{0}`; give each its own label")]
    DuplicateLabel(String),
}

/// One rule's engine and bookkeeping.
#[derive(Debug)]
struct Slot {
    label: String,
    kind: RuleKind,
    actions: Vec<Action>,
    status: Status,
    trigger: Option<Trigger>,
    message: String,
    violations: u64,
    missing: Vec<String>,
    fired_order: Option<u64>,
    engine: Box<dyn Engine>,
}

#[derive(Debug)]
enum Top {
    Rule(usize),
    Report {
        label: String,
        actions: Vec<Action>,
        children: Vec<usize>,
    },
}

#[derive(Debug)]
struct KeyEntry {
    /// `(step, timestamp)` of the latest point read.
    latest: Option<(i64, i64)>,
    routes: Vec<(u32, Route)>,
}

impl KeyEntry {
    fn freshness(&mut self, p: &Point) -> Fresh {
        let at = (p.step, p.timestamp_ms);
        match self.latest.map(|latest| at.cmp(&latest)) {
            None | Some(std::cmp::Ordering::Greater) => {
                self.latest = Some(at);
                Fresh::New
            }
            Some(std::cmp::Ordering::Less) => Fresh::Late,
            Some(std::cmp::Ordering::Equal) => Fresh::Duplicate,
        }
    }
}

/// The rules of one job, evaluated incrementally over its metric points.
///
/// Call [`Watch::observe`] with each batch of new points (any order within a batch; the watch
/// sorts it), [`Watch::tick`] now and then so time-based rules can fire without new points, and
/// [`Watch::finish`] when the job ends. [`Watch::results`] gives every rule's state at any time.
/// All times are the caller's clock in milliseconds since the epoch; the watch never reads one.
#[derive(Debug)]
pub struct Watch {
    slots: Vec<Slot>,
    tops: Vec<Top>,
    keys: HashMap<String, u32>,
    entries: Vec<KeyEntry>,
    ignored: HashSet<String>,
    order: Vec<usize>,
    firing: Firing,
    stats: WatchStats,
    finished: bool,
}

impl Watch {
    /// A watch over `specs` for a job that started at `start_ms` (the caller's clock; used by
    /// MaxInitializationTime and by StalledTrainingRule before the first point).
    pub fn new(specs: Vec<RuleSpec>, start_ms: i64) -> Result<Watch, WatchError> {
        let mut labels: Vec<&str> = Vec::new();
        for spec in &specs {
            if labels.contains(&spec.label()) {
                return Err(WatchError::DuplicateLabel(spec.label().to_owned()));
            }
            labels.push(spec.label());
        }
        let mut slots = Vec::new();
        let mut tops = Vec::new();
        for spec in &specs {
            let actions = spec.actions();
            match spec.config() {
                RuleConfig::ProfilerReport(report) => {
                    let mut children = Vec::new();
                    for child in &report.rules {
                        let Some(engine) = rules::build(child.config(), start_ms) else {
                            continue;
                        };
                        let mut child_actions = child.actions();
                        for action in &actions {
                            if !child_actions.contains(action) {
                                child_actions.push(*action);
                            }
                        }
                        children.push(slots.len());
                        slots.push(Slot::new(
                            format!("{}/{}", spec.label(), child.kind().name()),
                            child.kind(),
                            child_actions,
                            engine,
                        ));
                    }
                    tops.push(Top::Report {
                        label: spec.label().to_owned(),
                        actions,
                        children,
                    });
                }
                config => {
                    let Some(engine) = rules::build(config, start_ms) else {
                        continue;
                    };
                    tops.push(Top::Rule(slots.len()));
                    slots.push(Slot::new(
                        spec.label().to_owned(),
                        spec.kind(),
                        actions,
                        engine,
                    ));
                }
            }
        }
        Ok(Watch {
            slots,
            tops,
            keys: HashMap::new(),
            entries: Vec::new(),
            ignored: HashSet::new(),
            order: Vec::new(),
            firing: Firing::default(),
            stats: WatchStats::default(),
            finished: false,
        })
    }

    /// Reads a batch of new points, received at `now_ms`. Returns the rules that fired for the
    /// first time in this call (their [`RuleResult::actions`] say what to do). Points may come
    /// in any order within a batch; across batches, a point earlier than what was already read
    /// for its key is late (see the crate docs). After [`Watch::finish`] this does nothing.
    pub fn observe(&mut self, points: &[Point], now_ms: i64) -> Vec<RuleResult> {
        if self.finished {
            return Vec::new();
        }
        self.stats.points += points.len() as u64;
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(0..points.len());
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&points[a], &points[b]);
            (a.step, a.timestamp_ms, a.key.as_str())
                .cmp(&(b.step, b.timestamp_ms, b.key.as_str()))
                .then(a.value.total_cmp(&b.value))
        });
        for &at in &order {
            let point = &points[at];
            let Some(entry) = self.entry(&point.key) else {
                continue;
            };
            self.stats.routed += 1;
            let entry = &mut self.entries[entry as usize];
            let fresh = entry.freshness(point);
            match fresh {
                Fresh::Late => self.stats.late += 1,
                Fresh::Duplicate => self.stats.duplicates += 1,
                Fresh::New => {}
            }
            for &(slot, route) in &entry.routes {
                let slot = slot as usize;
                if let Some(s) = self.slots.get_mut(slot) {
                    s.engine
                        .point(route, point, fresh, now_ms, &mut self.firing.sink);
                }
                self.firing.record(&mut self.slots, slot, now_ms);
            }
        }
        self.order = order;
        for slot in 0..self.slots.len() {
            self.slots[slot]
                .engine
                .batch_end(now_ms, &mut self.firing.sink);
            self.firing.record(&mut self.slots, slot, now_ms);
        }
        self.tick_all(now_ms);
        self.take_fired()
    }

    /// Lets time-based rules (StalledTrainingRule, MaxInitializationTime) look at the clock
    /// without new points. Returns the rules that fired for the first time.
    pub fn tick(&mut self, now_ms: i64) -> Vec<RuleResult> {
        if self.finished {
            return Vec::new();
        }
        self.tick_all(now_ms);
        self.take_fired()
    }

    /// The job ended at `now_ms`: pending comparisons are settled, then every rule still
    /// `InProgress` becomes `NoIssuesFound`, or `Error` when the metrics it needs never appeared
    /// ([`RuleResult::missing_metrics`]). Returns the rules that fired in this last call.
    /// Calling it again does nothing.
    pub fn finish(&mut self, now_ms: i64) -> Vec<RuleResult> {
        if self.finished {
            return Vec::new();
        }
        self.tick_all(now_ms);
        for slot in 0..self.slots.len() {
            self.slots[slot].engine.flush(now_ms, &mut self.firing.sink);
            self.firing.record(&mut self.slots, slot, now_ms);
        }
        for slot in &mut self.slots {
            if slot.status != Status::InProgress {
                continue;
            }
            match slot.engine.outcome() {
                Outcome::Clean(message) => {
                    slot.status = Status::NoIssuesFound;
                    slot.message = message;
                }
                Outcome::Missing { metrics, message } => {
                    slot.status = Status::Error;
                    slot.message = message;
                    slot.missing = metrics;
                }
            }
        }
        self.finished = true;
        self.take_fired()
    }

    /// Every rule's state, in the order of the specifications.
    pub fn results(&self) -> Vec<RuleResult> {
        self.tops.iter().map(|top| self.top_result(top)).collect()
    }

    /// Counters over the points read so far.
    pub fn stats(&self) -> WatchStats {
        self.stats
    }

    /// Whether [`Watch::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether some rule fired and asks for StopTraining.
    pub fn stop_training(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.status == Status::IssuesFound && s.actions.contains(&Action::StopTraining))
    }

    /// The key's entry, routing it on first sight; `None` when no rule reads it.
    fn entry(&mut self, key: &str) -> Option<u32> {
        if let Some(&id) = self.keys.get(key) {
            return Some(id);
        }
        if self.ignored.contains(key) {
            return None;
        }
        let routes: Vec<(u32, Route)> = self
            .slots
            .iter_mut()
            .enumerate()
            .filter_map(|(at, slot)| slot.engine.route(key).map(|r| (at as u32, r)))
            .collect();
        if routes.is_empty() {
            if self.ignored.len() < MAX_IGNORED_KEYS {
                self.ignored.insert(key.to_owned());
            }
            return None;
        }
        let id = self.entries.len() as u32;
        self.entries.push(KeyEntry {
            latest: None,
            routes,
        });
        self.keys.insert(key.to_owned(), id);
        self.stats.keys += 1;
        Some(id)
    }

    fn tick_all(&mut self, now_ms: i64) {
        for slot in 0..self.slots.len() {
            self.slots[slot].engine.tick(now_ms, &mut self.firing.sink);
            self.firing.record(&mut self.slots, slot, now_ms);
        }
    }

    fn take_fired(&mut self) -> Vec<RuleResult> {
        let fired = std::mem::take(&mut self.firing.fired);
        fired.iter().map(|&slot| self.slot_result(slot)).collect()
    }

    fn slot_result(&self, slot: usize) -> RuleResult {
        let Some(s) = self.slots.get(slot) else {
            return RuleResult {
                label: String::new(),
                rule: String::new(),
                status: Status::Error,
                message: String::new(),
                trigger: None,
                actions: Vec::new(),
                evaluations: 0,
                violations: 0,
                missing_metrics: Vec::new(),
                rules: Vec::new(),
            };
        };
        let evaluations = s.engine.evaluations();
        let message = if s.status == Status::InProgress {
            if evaluations == 0 {
                "waiting for data".to_owned()
            } else {
                format!("no issues so far ({evaluations} checks)")
            }
        } else {
            s.message.clone()
        };
        RuleResult {
            label: s.label.clone(),
            rule: s.kind.name().to_owned(),
            status: s.status,
            message,
            trigger: s.trigger.clone(),
            actions: s.actions.clone(),
            evaluations,
            violations: s.violations,
            missing_metrics: s.missing.clone(),
            rules: Vec::new(),
        }
    }

    fn top_result(&self, top: &Top) -> RuleResult {
        let (label, actions, children) = match top {
            Top::Rule(slot) => return self.slot_result(*slot),
            Top::Report {
                label,
                actions,
                children,
            } => (label, actions, children),
        };
        let rules: Vec<RuleResult> = children.iter().map(|&c| self.slot_result(c)).collect();
        let with = |status: Status| -> Vec<&str> {
            rules
                .iter()
                .filter(|r| r.status == status)
                .map(|r| r.rule.as_str())
                .collect()
        };
        let found = with(Status::IssuesFound);
        let clean = with(Status::NoIssuesFound);
        let errors = with(Status::Error);
        let (status, message) = if !found.is_empty() {
            (
                Status::IssuesFound,
                format!("issues found by {}", found.join(", ")),
            )
        } else if !self.finished {
            (
                Status::InProgress,
                format!("running {} profiler rules; no issues so far", rules.len()),
            )
        } else if !clean.is_empty() {
            let mut message = format!("no issues found by {}", clean.join(", "));
            if !errors.is_empty() {
                message.push_str(&format!(
                    "; not evaluated for lack of metrics: {}",
                    errors.join(", ")
                ));
            }
            (Status::NoIssuesFound, message)
        } else {
            (
                Status::Error,
                format!(
                    "no profiler rule had the metrics it needs ({})",
                    errors.join(", ")
                ),
            )
        };
        let first = children
            .iter()
            .filter_map(|&c| self.slots.get(c))
            .filter(|s| s.fired_order.is_some())
            .min_by_key(|s| s.fired_order);
        let trigger = first.and_then(|s| {
            let mut trigger = s.trigger.clone()?;
            trigger
                .values
                .insert("rule".to_owned(), Value::from(s.kind.name()));
            Some(trigger)
        });
        RuleResult {
            label: label.clone(),
            rule: RuleKind::ProfilerReport.name().to_owned(),
            status,
            message,
            trigger,
            actions: actions.clone(),
            evaluations: rules.iter().map(|r| r.evaluations).sum(),
            violations: rules.iter().map(|r| r.violations).sum(),
            missing_metrics: Vec::new(),
            rules,
        }
    }
}

/// Violations on their way from an engine to its slot, and the slots that fired.
#[derive(Debug, Default)]
struct Firing {
    sink: Sink,
    fired: Vec<usize>,
    count: u64,
}

impl Firing {
    /// Moves the sink's violations into the slot's state.
    fn record(&mut self, slots: &mut [Slot], slot: usize, now_ms: i64) {
        if self.sink.is_empty() {
            return;
        }
        let Some(s) = slots.get_mut(slot) else {
            self.sink.clear();
            return;
        };
        for violation in self.sink.drain(..) {
            s.violations += 1;
            if s.status != Status::InProgress {
                continue;
            }
            let Violation {
                step,
                timestamp_ms,
                values,
                message,
            } = violation;
            s.status = Status::IssuesFound;
            s.message = message;
            s.trigger = Some(Trigger {
                step,
                timestamp_ms,
                detected_ms: now_ms,
                values,
            });
            self.count += 1;
            s.fired_order = Some(self.count);
            self.fired.push(slot);
        }
    }
}

impl Slot {
    fn new(label: String, kind: RuleKind, actions: Vec<Action>, engine: Box<dyn Engine>) -> Slot {
        Slot {
            label,
            kind,
            actions,
            status: Status::InProgress,
            trigger: None,
            message: String::new(),
            violations: 0,
            missing: Vec::new(),
            fired_order: None,
            engine,
        }
    }
}
