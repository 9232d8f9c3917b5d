//! The search: validation plan, portfolio, local search, ensemble, refit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use learn::{Algorithm, Member, Metadata, Model, Pipeline, Prepared, ProblemType};
use tabular::Table;

use crate::trials::Trial;
use crate::{AutomlError, Metric};

/// Up to this many rows, candidates are scored by 5-fold cross-validation;
/// beyond, on a 20 % holdout.
pub const CV_MAX_ROWS: usize = 10_000;
/// Up to this many rows the cross-validation is repeated with a second fold
/// assignment ([`CV_REPEATS`] in all) and each row's out-of-fold prediction is
/// the mean of its repeats: on small data which fold a row lands in moves a
/// score by more than most hyperparameter changes do, and a second assignment
/// halves that part of the ranking's noise for twice the (small) cost.
pub const REPEAT_MAX_ROWS: usize = 2_000;
pub const CV_REPEATS: usize = 2;
/// When a search on data that small converges with time left, the finalists
/// (the ensemble's pool) are validated on further fold assignments, up to
/// this many in all, before the ensemble is chosen: what the time buys there
/// is a less noisy choice, not more candidates.
pub const REFINE_MAX_REPEATS: usize = 10;
const FOLDS: usize = 5;
/// Candidates considered for the ensemble: the best ones, plus the best of
/// every other learner family (diversity is what an ensemble feeds on).
const ENSEMBLE_POOL: usize = 10;
const ENSEMBLE_ROUNDS: usize = 25;
/// The default of [`Options::max_candidates`] (SageMaker Autopilot's maximum):
/// a cap, not the usual way a search ends; the budget or convergence decides.
pub const MAX_CANDIDATES: usize = 250;
/// The convergence window: the last `max(CONVERGE_MIN_WINDOW,
/// CONVERGE_PERCENT % of the candidates so far)` candidates, rounded up (see
/// [`StopReason::Converged`]).
pub const CONVERGE_MIN_WINDOW: usize = 20;
pub const CONVERGE_PERCENT: usize = 40;
/// The threshold's floor, relative to the best score: improvements below it
/// are rounding, whatever the folds say.
const CONVERGE_RELATIVE_FLOOR: f64 = 1e-4;
/// Scores measured per part of the validation rows: a holdout is cut into this
/// many interleaved parts (cross-validation has its folds).
const HOLDOUT_PARTS: usize = 5;
/// Proposals in a row that were all tried before: the search space is
/// exhausted.
const MAX_DUPLICATES: usize = 500;

#[derive(Debug, Clone)]
pub struct Options {
    pub time_budget: Duration,
    pub max_candidates: usize,
    pub metric: Option<String>,
    pub problem: Option<ProblemType>,
    pub seed: u64,
    /// A separate validation table (instead of cross-validation).
    pub validation: Option<Table>,
    /// Set from another thread to stop the search: the run ends with
    /// [`AutomlError::Cancelled`] after the fold in progress.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Fewest rows with a target value AutoML accepts (default 20).
    pub min_rows: usize,
    /// Where candidates are evaluated: `None` here, one at a time; a runner
    /// (e.g. a cluster's workers) evaluates [`TrialRunner::slots`] at once.
    pub trials: Option<Arc<dyn crate::TrialRunner>>,
}

/// The default of [`Options::min_rows`].
pub const MIN_ROWS: usize = 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            time_budget: Duration::from_secs(3600),
            max_candidates: MAX_CANDIDATES,
            metric: None,
            problem: None,
            seed: 0,
            validation: None,
            cancel: None,
            min_rows: MIN_ROWS,
            trials: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CandidateStatus {
    Done,
    /// Stopped when the budget ran out mid-way (not ranked).
    Stopped,
    /// Stopped after its first cross-validation fold scored far below the
    /// best candidates' first folds (not ranked; the time went to others).
    Pruned,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: usize,
    pub name: String,
    pub algorithm: Algorithm,
    pub params: Vec<(String, String)>,
    /// The search metric on out-of-fold (or holdout) predictions.
    pub score: f64,
    pub metrics: BTreeMap<String, f64>,
    pub fit_seconds: f64,
    /// Mean best boosting iteration over folds (what the refit uses).
    pub iterations: usize,
    /// Size of the first fold's model as a pipeline stores it (JSON bytes).
    pub model_bytes: usize,
    pub status: CandidateStatus,
    /// Training and validation loss curves of the first fold's fit (fold 1 of the
    /// cross-validation, or the holdout): per boosting iteration for gbm (validation loss on
    /// the fold's validation rows), per epoch for the mlp (validation loss on its own held-out
    /// fraction); `None` for other learners or when the first fold failed.
    pub curves: Option<learn::Curves>,
}

#[derive(Debug, Clone)]
pub enum Event {
    Started {
        problem: ProblemType,
        metric: Metric,
        rows: usize,
        validation: String,
        reason: String,
    },
    Candidate(Candidate),
    Ensemble {
        members: Vec<(usize, f64)>,
        score: f64,
        best_single: f64,
    },
    Refitting {
        members: usize,
    },
    /// The search is over (before the ensemble and the refit), and why.
    Stopped {
        reason: StopReason,
        candidates: usize,
        elapsed_s: f64,
    },
}

/// Why the search stopped trying candidates.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// Too little of the budget was left for another candidate and the refit.
    BudgetSpent { budget_s: f64 },
    /// The search converged: the last `window` candidates (from
    /// `since_candidate` on) improved the best validation score by
    /// `improvement`, less than `threshold`.
    ///
    /// The rule, checked after the portfolio, once the window holds local-search
    /// candidates only: the window is the last `max(20, 40 %)` of the candidates
    /// tried so far, so the search must have spent at least 40 % of its own
    /// length without progress, and a longer search needs a longer drought. Its
    /// improvement is the best score now minus the best score before the
    /// window. The threshold is one standard error of the paired per-fold
    /// differences between those two candidates (each fold of each repeat of the
    /// cross-validation, or five interleaved parts of a holdout, scored on the
    /// same rows for both): a gain smaller than the folds' own disagreement
    /// about it is not distinguishable from the luck of which rows were
    /// validated on (Breiman's one-standard-error rule), so more candidates of
    /// the same kind are not expected to find a real one. Pairing removes the
    /// fold-to-fold variation both candidates share, which makes it a much
    /// tighter (less eager to stop) test than the standard error of one
    /// candidate's score. A floor of 1e-4 relative to the best score covers the
    /// case where the best did not change (the paired differences are then zero).
    Converged {
        since_candidate: usize,
        window: usize,
        threshold: f64,
        improvement: f64,
    },
    /// [`Options::max_candidates`] were tried.
    MaxCandidates { max: usize },
    /// Every configuration the search could propose had been tried.
    Exhausted { tried: usize },
    /// [`Options::cancel`] was set.
    Cancelled,
}

impl StopReason {
    /// A machine-readable name: `budget_spent`, `converged`, `max_candidates`,
    /// `exhausted` or `cancelled`.
    pub fn kind(&self) -> &'static str {
        match self {
            StopReason::BudgetSpent { .. } => "budget_spent",
            StopReason::Converged { .. } => "converged",
            StopReason::MaxCandidates { .. } => "max_candidates",
            StopReason::Exhausted { .. } => "exhausted",
            StopReason::Cancelled => "cancelled",
        }
    }

    /// The reason in words, e.g. "the time budget (60 s) was spent".
    pub fn describe(&self, metric: Metric) -> String {
        match self {
            StopReason::BudgetSpent { budget_s } => {
                format!("the time budget ({budget_s:.0} s) was spent")
            }
            StopReason::Converged {
                since_candidate,
                window,
                threshold,
                improvement,
            } => format!(
                "converged: the last {window} candidates (#{since_candidate} on) improved the best validation {} by {improvement:.5}, less than the noise threshold {threshold:.5} (one standard error of the paired fold differences, at least 1e-4 of the score)",
                metric.name()
            ),
            StopReason::MaxCandidates { max } => {
                format!("the maximum number of candidates ({max}) was reached")
            }
            StopReason::Exhausted { tried } => {
                format!("every configuration the search proposes was tried ({tried} candidates)")
            }
            StopReason::Cancelled => "cancelled".into(),
        }
    }

    /// As JSON: `{"kind": …, "text": …}` plus the rule's figures when converged.
    pub fn to_json(&self, metric: Metric) -> serde_json::Value {
        let mut v = serde_json::json!({"kind": self.kind(), "text": self.describe(metric)});
        match self {
            StopReason::Converged {
                since_candidate,
                window,
                threshold,
                improvement,
            } => {
                v["since_candidate"] = serde_json::json!(since_candidate);
                v["window"] = serde_json::json!(window);
                v["threshold"] = serde_json::json!(threshold);
                v["improvement"] = serde_json::json!(improvement);
            }
            StopReason::BudgetSpent { budget_s } => v["budget_s"] = serde_json::json!(budget_s),
            StopReason::MaxCandidates { max } => v["max"] = serde_json::json!(max),
            StopReason::Exhausted { tried } => v["tried"] = serde_json::json!(tried),
            StopReason::Cancelled => {}
        }
        v
    }
}

pub struct Outcome {
    pub pipeline: Pipeline,
    /// Ranked, best first (stopped and failed candidates last).
    pub leaderboard: Vec<Candidate>,
    pub metric: Metric,
    pub problem: ProblemType,
    /// The chosen solution's validation score (ensemble or best single).
    pub score: f64,
    /// (candidate id, weight) when an ensemble won.
    pub ensemble: Option<Vec<(usize, f64)>>,
    /// The chosen solution's out-of-fold (or holdout) predictions, for
    /// reports.
    pub validation: Validation,
    /// Why the search stopped.
    pub stop_reason: StopReason,
    /// Seconds from the start to the end of the search (before ensembling and
    /// the refit).
    pub search_seconds: f64,
}

/// Out-of-fold (or holdout) predictions of the chosen solution.
#[derive(Debug, Clone)]
pub struct Validation {
    /// How the scores were measured, e.g. "5-fold cross-validation on 891 rows".
    pub describe: String,
    /// Target per scored row: class index or value.
    pub y: Vec<f64>,
    /// Row-major predictions, `outputs` per row (class probabilities or the value).
    pub pred: Vec<f64>,
    pub outputs: usize,
    /// Each scored row's index in the table it came from: the training table,
    /// or the validation file when `holdout_file`.
    pub rows: Vec<usize>,
    /// The scored rows are the validation file's, not the training table's.
    pub holdout_file: bool,
}

/// Row indices of the validation parts: k folds (CV) or one holdout.
pub(crate) struct Plan {
    /// (train rows, validation rows) per fit; repeated cross-validation lists
    /// every repeat's folds.
    pub(crate) folds: Vec<(Vec<usize>, Vec<usize>)>,
    /// How many times each scored row is predicted (the repeats).
    pub(crate) repeats: usize,
    /// Rows that get an out-of-fold prediction, in order.
    pub(crate) scored: Vec<usize>,
    pub(crate) describe: String,
}

fn stratified_folds(p: &Prepared, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let n = p.target.values.len();
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let g = if p.target.problem.is_classification() {
            p.target.values[i] as i64
        } else {
            0
        };
        groups.entry(g).or_default().push(i);
    }
    let mut folds = vec![Vec::new(); k];
    let mut next = 0;
    for rows in groups.values_mut() {
        rows.sort_by_key(|&i| tabular::split::key(i as u64 ^ seed.wrapping_mul(0x9E37)));
        for &i in rows.iter() {
            folds[next % k].push(i);
            next += 1;
        }
    }
    folds.iter_mut().for_each(|f| f.sort_unstable());
    folds
}

/// The (train, validation) rows of the `r`-th fold assignment of the
/// cross-validation over all rows.
fn cv_folds(p: &Prepared, seed: u64, r: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    let parts = stratified_folds(
        p,
        FOLDS,
        seed.wrapping_add((r as u64).wrapping_mul(0x632B_E59B_D9B4_E019)),
    );
    (0..FOLDS)
        .map(|f| {
            let mut train: Vec<usize> = (0..FOLDS)
                .filter(|&g| g != f)
                .flat_map(|g| parts[g].iter().copied())
                .collect();
            train.sort_unstable();
            (train, parts[f].clone())
        })
        .collect()
}

fn plan(p: &Prepared, seed: u64) -> Plan {
    let n = p.target.values.len();
    if n <= CV_MAX_ROWS {
        let repeats = if n <= REPEAT_MAX_ROWS { CV_REPEATS } else { 1 };
        let mut folds = Vec::new();
        for r in 0..repeats {
            folds.extend(cv_folds(p, seed, r));
        }
        let describe = if repeats > 1 {
            format!("{FOLDS}-fold cross-validation repeated {repeats} times on {n} rows")
        } else {
            format!("{FOLDS}-fold cross-validation on {n} rows")
        };
        Plan {
            folds,
            repeats,
            scored: (0..n).collect(),
            describe,
        }
    } else {
        let parts = stratified_folds(p, 5, seed);
        let valid = parts[0].clone();
        let train: Vec<usize> = parts[1..].iter().flatten().copied().collect();
        let mut train = train;
        train.sort_unstable();
        Plan {
            scored: valid.clone(),
            folds: vec![(train, valid)],
            repeats: 1,
            describe: format!("a 20 % holdout of {n} rows"),
        }
    }
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Configurations known to do well across tabular datasets, cheapest and
/// most robust first.
/// A candidate to try: name, learner, parameters.
type Proposal = (String, Algorithm, Vec<(String, String)>);

fn portfolio(problem: ProblemType) -> Vec<Proposal> {
    let mut out = vec![
        (
            "gbm-default",
            kv(&[("learning_rate", "0.05"), ("num_leaves", "31")]),
        ),
        (
            "gbm-small",
            kv(&[
                ("learning_rate", "0.05"),
                ("num_leaves", "15"),
                ("min_data_in_leaf", "10"),
                ("feature_fraction", "0.9"),
            ]),
        ),
        (
            "gbm-large",
            kv(&[
                ("learning_rate", "0.03"),
                ("num_leaves", "63"),
                ("min_data_in_leaf", "30"),
                ("feature_fraction", "0.8"),
                ("bagging_fraction", "0.8"),
                ("bagging_freq", "1"),
            ]),
        ),
        (
            "gbm-shallow",
            kv(&[
                ("learning_rate", "0.1"),
                ("num_leaves", "7"),
                ("min_data_in_leaf", "5"),
                ("lambda_l2", "1"),
            ]),
        ),
        (
            "gbm-regularised",
            kv(&[
                ("learning_rate", "0.03"),
                ("num_leaves", "31"),
                ("feature_fraction", "0.6"),
                ("bagging_fraction", "0.7"),
                ("bagging_freq", "1"),
                ("lambda_l2", "5"),
                ("min_data_in_leaf", "40"),
            ]),
        ),
        (
            "gbm-wide",
            kv(&[
                ("learning_rate", "0.05"),
                ("num_leaves", "127"),
                ("min_data_in_leaf", "50"),
                ("feature_fraction", "0.7"),
                ("lambda_l2", "1"),
            ]),
        ),
        (
            "gbm-tiny-leaves",
            kv(&[
                ("learning_rate", "0.05"),
                ("num_leaves", "31"),
                ("min_data_in_leaf", "3"),
                ("lambda_l2", "3"),
                ("feature_fraction", "0.8"),
            ]),
        ),
        (
            "gbm-l1",
            kv(&[
                ("learning_rate", "0.05"),
                ("num_leaves", "47"),
                ("lambda_l1", "1"),
                ("lambda_l2", "1"),
                ("feature_fraction", "0.75"),
            ]),
        ),
    ];
    if problem == ProblemType::Multiclass {
        // Early stopping on log loss ends long before accuracy peaks for
        // several classes: multiclass candidates train fixed tree counts.
        for (_, params) in out.iter_mut() {
            params.push(("early_stopping_rounds".into(), "0".into()));
            params.push(("n_estimators".into(), "400".into()));
        }
    }
    let mut all: Vec<Proposal> = out
        .into_iter()
        .map(|(n, p)| (n.to_string(), Algorithm::Gbm, p))
        .collect();
    // other families, cheap ones early: they win on some datasets and add
    // diversity to the ensemble
    all.insert(
        1,
        ("linear".into(), Algorithm::Linear, kv(&[("alpha", "1")])),
    );
    all.insert(
        4,
        (
            "mlp".into(),
            Algorithm::Mlp,
            kv(&[("hidden_layers", "64,32"), ("max_epochs", "100")]),
        ),
    );
    all.insert(
        7,
        (
            "linear-weak-reg".into(),
            Algorithm::Linear,
            kv(&[("alpha", "0.01")]),
        ),
    );
    all.insert(
        3,
        (
            "random-forest".into(),
            Algorithm::RandomForest,
            kv(&[("n_estimators", "100"), ("min_data_in_leaf", "3")]),
        ),
    );
    all.insert(
        6,
        (
            "extra-trees".into(),
            Algorithm::ExtraTrees,
            kv(&[("n_estimators", "100"), ("min_data_in_leaf", "3")]),
        ),
    );
    all.push((
        "mlp-wide".into(),
        Algorithm::Mlp,
        kv(&[
            ("hidden_layers", "128,64"),
            ("dropout", "0.1"),
            ("max_epochs", "100"),
        ]),
    ));
    all
}

/// A seeded xorshift for the local search.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = tabular::sketch::mix(self.0.wrapping_add(0x9E3779B97F4A7C15));
        self.0
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

/// Four significant digits, no trailing zeros.
fn short(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A number parameter of `p`, or `default`.
fn get(p: &BTreeMap<String, String>, key: &str, default: f64) -> f64 {
    p.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A neighbour of gbm `params`: one or two values moved.
fn perturb_gbm(p: &mut BTreeMap<String, String>, rng: &mut Rng) {
    for _ in 0..(1 + rng.next() % 2) {
        let key = *rng.pick(&[
            "learning_rate",
            "num_leaves",
            "min_data_in_leaf",
            "feature_fraction",
            "lambda_l2",
            "bagging_fraction",
            "lambda_l1",
            "min_split_gain",
        ]);
        let v = match key {
            "learning_rate" => {
                let cur = get(p, key, 0.05);
                short((cur * rng.pick(&[0.5, 0.7, 1.4, 2.0])).clamp(0.01, 0.3))
            }
            "num_leaves" => {
                let cur = get(p, key, 31.0);
                format!(
                    "{}",
                    ((cur * rng.pick(&[0.5, 0.7, 1.5, 2.0])) as usize).clamp(4, 255)
                )
            }
            "min_data_in_leaf" => {
                let cur = get(p, key, 20.0);
                format!(
                    "{}",
                    ((cur * rng.pick(&[0.3, 0.6, 1.5, 3.0])) as usize).clamp(1, 200)
                )
            }
            "lambda_l2" => format!("{}", *rng.pick(&[0.0, 0.5, 1.0, 3.0, 10.0, 30.0])),
            "lambda_l1" => format!("{}", *rng.pick(&[0.0, 0.1, 1.0, 5.0])),
            "min_split_gain" => format!("{}", *rng.pick(&[0.0, 0.01, 0.1, 0.5])),
            "bagging_fraction" => {
                p.insert("bagging_freq".into(), "1".into());
                let cur = get(p, key, 1.0);
                short((cur * rng.pick(&[0.8, 0.9, 1.1])).clamp(0.5, 1.0))
            }
            _ => {
                let cur = get(p, key, 1.0);
                short((cur * rng.pick(&[0.7, 0.85, 1.15])).clamp(0.3, 1.0))
            }
        };
        p.insert(key.into(), v);
    }
}

/// A neighbour of random-forest or extra-trees `params`.
fn perturb_forest(p: &mut BTreeMap<String, String>, rng: &mut Rng) {
    for _ in 0..(1 + rng.next() % 2) {
        let key = *rng.pick(&[
            "max_features",
            "min_data_in_leaf",
            "n_estimators",
            "max_depth",
        ]);
        let v = match key {
            "max_features" => format!("{}", *rng.pick(&[0.2, 0.33, 0.5, 0.7, 1.0])),
            "min_data_in_leaf" => {
                let cur = get(p, key, 3.0);
                format!(
                    "{}",
                    ((cur * rng.pick(&[0.5, 0.7, 1.5, 2.0])).round() as usize).clamp(1, 60)
                )
            }
            "n_estimators" => format!("{}", *rng.pick(&[100, 200, 300])),
            _ => format!("{}", *rng.pick(&[0, 8, 12, 20])),
        };
        p.insert(key.into(), v);
    }
}

/// A neighbour of mlp `params`.
fn perturb_mlp(p: &mut BTreeMap<String, String>, rng: &mut Rng) {
    for _ in 0..(1 + rng.next() % 2) {
        let key = *rng.pick(&[
            "hidden_layers",
            "dropout",
            "learning_rate",
            "weight_decay",
            "batch_size",
        ]);
        let v = match key {
            "hidden_layers" => rng
                .pick(&["32", "64,32", "128,64", "256,128", "128,64,32"])
                .to_string(),
            "dropout" => format!("{}", *rng.pick(&[0.0, 0.1, 0.2, 0.3])),
            "learning_rate" => {
                let cur = get(p, key, 1e-3);
                format!(
                    "{}",
                    (cur * rng.pick(&[0.3, 0.5, 2.0, 3.0])).clamp(1e-4, 1e-2)
                )
            }
            "weight_decay" => format!("{}", *rng.pick(&[0.0, 1e-5, 1e-4, 1e-3, 1e-2])),
            _ => format!("{}", *rng.pick(&[32, 64, 128, 256])),
        };
        p.insert(key.into(), v);
    }
}

/// A neighbour of linear `params`.
fn perturb_linear(p: &mut BTreeMap<String, String>, rng: &mut Rng) {
    if rng.next().is_multiple_of(3) {
        p.insert(
            "l1_ratio".into(),
            format!("{}", *rng.pick(&[0.0, 0.15, 0.5])),
        );
    } else {
        let cur = get(p, "alpha", 1.0);
        p.insert(
            "alpha".into(),
            format!(
                "{}",
                (cur * rng.pick(&[0.1, 0.3, 3.0, 10.0])).clamp(1e-4, 1e3)
            ),
        );
    }
}

/// A configuration drawn from `alg`'s whole search space (the portfolio's
/// ranges and beyond).
fn sample(alg: Algorithm, rng: &mut Rng) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    match alg {
        Algorithm::Gbm => {
            set(
                "learning_rate",
                format!("{}", rng.pick(&[0.01, 0.02, 0.03, 0.05, 0.1, 0.2])),
            );
            set(
                "num_leaves",
                format!("{}", rng.pick(&[4, 7, 15, 31, 63, 127])),
            );
            set(
                "min_data_in_leaf",
                format!("{}", rng.pick(&[1, 3, 5, 10, 20, 50, 100])),
            );
            set(
                "feature_fraction",
                format!("{}", rng.pick(&[0.5, 0.7, 0.8, 0.9, 1.0])),
            );
            let bagging = *rng.pick(&[0.6, 0.8, 1.0]);
            if bagging < 1.0 {
                set("bagging_fraction", format!("{bagging}"));
                set("bagging_freq", "1".into());
            }
            set(
                "lambda_l2",
                format!("{}", rng.pick(&[0.0, 0.1, 1.0, 3.0, 10.0, 30.0])),
            );
            set("lambda_l1", format!("{}", rng.pick(&[0.0, 0.1, 1.0])));
        }
        Algorithm::RandomForest | Algorithm::ExtraTrees => {
            set(
                "max_features",
                format!("{}", rng.pick(&[0.2, 0.33, 0.5, 0.7, 1.0])),
            );
            set(
                "min_data_in_leaf",
                format!("{}", rng.pick(&[1, 2, 3, 5, 10, 20])),
            );
            set("n_estimators", format!("{}", rng.pick(&[100, 200, 300])));
        }
        Algorithm::Mlp => {
            set(
                "hidden_layers",
                rng.pick(&["32", "64,32", "128,64", "256,128", "128,64,32"])
                    .to_string(),
            );
            set("dropout", format!("{}", rng.pick(&[0.0, 0.1, 0.2, 0.3])));
            set(
                "learning_rate",
                format!("{}", rng.pick(&[3e-4, 1e-3, 3e-3])),
            );
            set(
                "weight_decay",
                format!("{}", rng.pick(&[0.0, 1e-5, 1e-4, 1e-3, 1e-2])),
            );
            set("batch_size", format!("{}", rng.pick(&[32, 64, 128, 256])));
            set("max_epochs", "100".into());
        }
        Algorithm::Linear => {
            set(
                "alpha",
                format!("{}", rng.pick(&[1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0])),
            );
        }
    }
    p
}

/// Configurations whose fit depends on a seed: another seed is another,
/// equally good model, which averaging in the ensemble turns into a gain.
fn stochastic(alg: Algorithm, p: &BTreeMap<String, String>) -> bool {
    match alg {
        Algorithm::Gbm => {
            get(p, "feature_fraction", 1.0) < 1.0
                || (get(p, "bagging_fraction", 1.0) < 1.0 && get(p, "bagging_freq", 0.0) > 0.0)
        }
        Algorithm::RandomForest | Algorithm::ExtraTrees | Algorithm::Mlp => true,
        _ => false,
    }
}

/// Most fits of one stochastic ensemble member in the final model (its own
/// seed and up to two more), when the budget has the time for them.
pub const BAG_SEEDS: usize = 3;

/// Whether a candidate's fit depends on its seed (forests, networks, a GBM
/// that samples rows or features).
pub fn is_stochastic(c: &Candidate) -> bool {
    let p: BTreeMap<String, String> = c.params.iter().cloned().collect();
    stochastic(c.algorithm, &p)
}

/// The short family name candidates are named by.
fn family(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Gbm => "gbm",
        Algorithm::RandomForest => "rf",
        Algorithm::ExtraTrees => "extra-trees",
        Algorithm::Mlp => "mlp",
        Algorithm::Linear => "linear",
    }
}

/// The next local-search candidate around what `ranked` (finished
/// candidates, best first) found: five times in ten a neighbour of one of
/// the three best; twice a neighbour of the best of a family still in the
/// running (within the pruning margin of the best), so every family's own
/// optimum is approached and the ensemble gets strong, different members;
/// once a new seed of the best stochastic configuration (bagged variants for
/// the ensemble); twice a fresh sample from a family's whole space (random
/// restarts: small steps alone settle in the first local optimum, and the
/// convergence rule would then stop a search that had only stopped looking).
fn propose(
    ranked: &[&Evaluated],
    metric: Metric,
    problem: ProblemType,
    rng: &mut Rng,
    left_s: f64,
) -> Option<(Proposal, f64)> {
    let best = ranked.first()?;
    let roll = rng.next() % 10;
    let base: &Evaluated = if roll < 5 {
        ranked[(rng.next() % ranked.len().min(3) as u64) as usize]
    } else {
        // families in the running: not hopeless, and not so slow that one
        // candidate of theirs eats a tenth of what is left while the best's
        // family is at least twice as fast
        let bar = hopeless(metric, best.candidate.score);
        let affordable = (2.0 * best.candidate.fit_seconds).max(left_s / 10.0);
        let mut heads: Vec<&Evaluated> = Vec::new();
        for e in ranked {
            if !heads
                .iter()
                .any(|h| h.candidate.algorithm == e.candidate.algorithm)
                && !metric.better(bar, e.candidate.score)
                && e.candidate.fit_seconds <= affordable
            {
                heads.push(e);
            }
        }
        if roll == 7 {
            heads.retain(|e| {
                stochastic(
                    e.candidate.algorithm,
                    &e.candidate.params.iter().cloned().collect(),
                )
            });
            heads.truncate(1);
        }
        if roll >= 8 {
            // a fresh sample: gradient boosting half of the time when it is in the running
            heads.retain(|e| e.candidate.algorithm != Algorithm::Linear);
            if rng.next().is_multiple_of(2)
                && let Some(g) = heads
                    .iter()
                    .position(|e| e.candidate.algorithm == Algorithm::Gbm)
            {
                heads.swap(0, g);
                heads.truncate(1);
            }
        }
        heads.get((rng.next() % heads.len().max(1) as u64) as usize)?
    };
    let alg = base.candidate.algorithm;
    let mut p: BTreeMap<String, String> = base.candidate.params.iter().cloned().collect();
    let kind = if roll == 7 && stochastic(alg, &p) {
        p.insert("seed".into(), format!("{}", rng.next() % 100_000));
        "seed"
    } else if roll >= 8 {
        p = sample(alg, rng);
        "random"
    } else {
        match alg {
            Algorithm::Gbm => perturb_gbm(&mut p, rng),
            Algorithm::RandomForest | Algorithm::ExtraTrees => perturb_forest(&mut p, rng),
            Algorithm::Mlp => perturb_mlp(&mut p, rng),
            Algorithm::Linear => perturb_linear(&mut p, rng),
        }
        "search"
    };
    if alg == Algorithm::Gbm && problem == ProblemType::Multiclass {
        p.insert("early_stopping_rounds".into(), "0".into());
        p.insert("n_estimators".into(), "400".into());
    }
    let name = format!("{}-{kind}", family(alg));
    // what it is expected to cost: its base's time, scaled for a slower learning rate
    let mut cost = base.candidate.fit_seconds;
    if alg == Algorithm::Gbm {
        let lr = |m: &BTreeMap<String, String>| get(m, "learning_rate", 0.05);
        let base_map: BTreeMap<String, String> = base.candidate.params.iter().cloned().collect();
        cost *= (lr(&base_map) / lr(&p)).max(1.0);
    }
    Some(((name, alg, p.into_iter().collect()), cost))
}

pub(crate) struct Evaluated {
    pub(crate) candidate: Candidate,
    /// Predictions for `plan.scored` rows, row-major by outputs (the mean of
    /// the repeats).
    pub(crate) oof: Vec<f64>,
    /// The search metric on the first fold alone (NaN when not measured).
    pub(crate) first_fold: f64,
    /// The search metric per fold (every repeat's), or per interleaved part of
    /// a holdout: what the convergence rule's noise threshold is made of.
    pub(crate) parts: Vec<f64>,
    /// Fold assignments `oof` averages over.
    pub(crate) repeats: usize,
}

/// Candidates whose first fold scores worse than this need not finish: an
/// absolute margin for bounded metrics where higher is better (AUC,
/// accuracy, F1, R²), a relative one for losses (MSE, log loss).
fn hopeless(metric: Metric, best_first_fold: f64) -> f64 {
    if metric.higher_is_better() {
        best_first_fold - PRUNE_MARGIN
    } else {
        best_first_fold * (1.0 + PRUNE_RELATIVE)
    }
}
const PRUNE_MARGIN: f64 = 0.05;
const PRUNE_RELATIVE: f64 = 0.3;
/// Finished candidates needed before any is pruned.
const PRUNE_AFTER: usize = 4;

#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    id: usize,
    name: &str,
    alg: Algorithm,
    params: &[(String, String)],
    p: &Prepared,
    plan: &Plan,
    metric: Metric,
    deadline: Instant,
    cancel: &dyn Fn() -> bool,
    prune_below: Option<f64>,
) -> Evaluated {
    let started = Instant::now();
    let k = p.n_outputs();
    let n = p.target.values.len();
    let mut oof_full = vec![0.0; n * k];
    let mut parts = Vec::new();
    let mut iterations = Vec::new();
    let mut status = CandidateStatus::Done;
    let mut model_bytes = 0;
    let mut first_fold = f64::NAN;
    let mut curves = None;
    let result = (|| -> Result<(), learn::LearnError> {
        for (fi, (train, valid)) in plan.folds.iter().enumerate() {
            if fi > 0 && (Instant::now() > deadline || cancel()) {
                status = CandidateStatus::Stopped;
                return Ok(());
            }
            let x = p
                .features
                .select_rows(train)
                .map_err(|e| learn::LearnError::Model(e.to_string()))?;
            let xv = p
                .features
                .select_rows(valid)
                .map_err(|e| learn::LearnError::Model(e.to_string()))?;
            let y: Vec<f64> = train.iter().map(|&i| p.target.values[i]).collect();
            let yv: Vec<f64> = valid.iter().map(|&i| p.target.values[i]).collect();
            // the first fold's fit also records its loss curves
            let opts = learn::FitOptions { curves: fi == 0 };
            let f = learn::fit_learner_with(
                alg,
                &p.target,
                params,
                &x,
                &y,
                Some((&xv, &yv)),
                opts,
                &mut |_| {},
            )?;
            iterations.push(f.iterations);
            if fi == 0 {
                model_bytes = serialized_size(&f.model);
                curves = f.curves;
            }
            let pred = f.model.predict(&xv)?;
            for (j, &row) in valid.iter().enumerate() {
                for (o, v) in oof_full[row * k..(row + 1) * k]
                    .iter_mut()
                    .zip(&pred[j * k..(j + 1) * k])
                {
                    *o += v / plan.repeats as f64;
                }
            }
            if plan.folds.len() > 1 {
                parts.push(metric.score(p.target.problem, k, &yv, &pred));
            } else {
                // a holdout: its interleaved parts
                for part in 0..HOLDOUT_PARTS {
                    let idx: Vec<usize> = (part..valid.len()).step_by(HOLDOUT_PARTS).collect();
                    let y: Vec<f64> = idx.iter().map(|&j| yv[j]).collect();
                    let pr: Vec<f64> = idx
                        .iter()
                        .flat_map(|&j| pred[j * k..(j + 1) * k].iter().copied())
                        .collect();
                    parts.push(metric.score(p.target.problem, k, &y, &pr));
                }
            }
            if fi == 0 && plan.folds.len() > 1 {
                first_fold = metric.score(p.target.problem, k, &yv, &pred);
                if let Some(t) = prune_below
                    && first_fold.is_finite()
                    && metric.better(t, first_fold)
                {
                    status = CandidateStatus::Pruned;
                    return Ok(());
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        status = CandidateStatus::Failed(e.to_string());
    }
    let oof: Vec<f64> = plan
        .scored
        .iter()
        .flat_map(|&r| oof_full[r * k..(r + 1) * k].iter().copied())
        .collect();
    let y: Vec<f64> = plan.scored.iter().map(|&r| p.target.values[r]).collect();
    let (score, metrics) = if status == CandidateStatus::Done {
        let m = learn::evaluate(p.target.problem, k, &y, &oof);
        (metric.score(p.target.problem, k, &y, &oof), m)
    } else {
        (f64::NAN, BTreeMap::new())
    };
    let iterations = if iterations.is_empty() {
        0
    } else {
        iterations.iter().sum::<usize>() / iterations.len()
    };
    Evaluated {
        candidate: Candidate {
            id,
            name: name.to_string(),
            algorithm: alg,
            params: params.to_vec(),
            score,
            metrics,
            fit_seconds: started.elapsed().as_secs_f64(),
            iterations,
            model_bytes,
            status,
            curves,
        },
        oof,
        first_fold,
        parts,
        repeats: plan.repeats,
    }
}

/// `e`'s configuration fitted on the folds of one more fold assignment of a
/// cross-validation over all rows: its prediction per row and its fold scores,
/// or `None` when a fit failed, the deadline passed or the run was cancelled.
fn revalidate(
    e: &Evaluated,
    folds: &[(Vec<usize>, Vec<usize>)],
    p: &Prepared,
    metric: Metric,
    deadline: Instant,
    cancel: &dyn Fn() -> bool,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let k = p.n_outputs();
    let n = p.target.values.len();
    let mut oof = vec![0.0; n * k];
    let mut parts = Vec::new();
    for (train, valid) in folds {
        if Instant::now() > deadline || cancel() {
            return None;
        }
        let x = p.features.select_rows(train).ok()?;
        let xv = p.features.select_rows(valid).ok()?;
        let y: Vec<f64> = train.iter().map(|&i| p.target.values[i]).collect();
        let yv: Vec<f64> = valid.iter().map(|&i| p.target.values[i]).collect();
        let f = learn::fit_learner(
            e.candidate.algorithm,
            &p.target,
            &e.candidate.params,
            &x,
            &y,
            Some((&xv, &yv)),
        )
        .ok()?;
        let pred = f.model.predict(&xv).ok()?;
        for (j, &row) in valid.iter().enumerate() {
            oof[row * k..(row + 1) * k].copy_from_slice(&pred[j * k..(j + 1) * k]);
        }
        parts.push(metric.score(p.target.problem, k, &yv, &pred));
    }
    Some((oof, parts))
}

/// Bytes of JSON `value` takes, without keeping them.
fn serialized_size(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, value) {
        Ok(()) => c.0,
        Err(_) => 0,
    }
}

/// The tie-breaker of equal scores (a coarse metric such as accuracy ties
/// often on small data): the log loss for classification, the MSE for
/// regression (lower is better), from a candidate's validation metrics.
fn tiebreak_of(c: &Candidate, problem: ProblemType) -> f64 {
    let key = if problem == ProblemType::Regression {
        "mse"
    } else {
        "log_loss"
    };
    c.metrics.get(key).copied().unwrap_or(f64::NAN)
}

/// (score, tie-breaker) `a` is better than `b`.
fn better_pair(metric: Metric, a: (f64, f64), b: (f64, f64)) -> bool {
    metric.better(a.0, b.0) || (a.0 == b.0 && a.1 < b.1)
}

/// An ensemble's (candidate id, weight) pairs, score and tie-breaker.
type Blend = (Vec<(usize, f64)>, f64, f64);

/// Greedy ensemble selection with replacement over the pool's predictions:
/// (candidate id, weight), the score and the tie-breaker of the blend.
fn ensemble(pool: &[&Evaluated], p: &Prepared, plan: &Plan, metric: Metric) -> Option<Blend> {
    if pool.len() < 2 {
        return None;
    }
    let k = p.n_outputs();
    let problem = p.target.problem;
    let y: Vec<f64> = plan.scored.iter().map(|&r| p.target.values[r]).collect();
    let measure = |pred: &[f64]| -> (f64, f64) {
        let m = learn::evaluate(problem, k, &y, pred);
        let tb = if problem == ProblemType::Regression {
            "mse"
        } else {
            "log_loss"
        };
        (
            m.get(metric.name()).copied().unwrap_or(f64::NAN),
            m.get(tb).copied().unwrap_or(f64::NAN),
        )
    };
    let len = pool[0].oof.len();
    let mut sum = vec![0.0; len];
    let mut counts = vec![0usize; pool.len()];
    // the best blend along the greedy path (Caruana et al.), not the last one
    let mut best: Option<(Vec<usize>, (f64, f64))> = None;
    for round in 0..ENSEMBLE_ROUNDS {
        let mut choice: Option<(usize, (f64, f64))> = None;
        for (j, e) in pool.iter().enumerate() {
            let avg: Vec<f64> = sum
                .iter()
                .zip(&e.oof)
                .map(|(s, v)| (s + v) / (round + 1) as f64)
                .collect();
            let sc = measure(&avg);
            if choice.is_none_or(|(_, b)| better_pair(metric, sc, b)) {
                choice = Some((j, sc));
            }
        }
        let (j, sc) = choice?;
        counts[j] += 1;
        for (s, v) in sum.iter_mut().zip(&pool[j].oof) {
            *s += v;
        }
        if best
            .as_ref()
            .is_none_or(|(_, b)| better_pair(metric, sc, *b))
        {
            best = Some((counts.clone(), sc));
        }
    }
    let (counts, _) = best?;
    let total: usize = counts.iter().sum();
    let weights: Vec<(usize, f64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(j, c)| (pool[j].candidate.id, *c as f64 / total as f64))
        .collect();
    // the score of the final weights (the greedy path's best may differ)
    let avg: Vec<f64> = (0..len)
        .map(|i| {
            counts
                .iter()
                .zip(pool)
                .map(|(c, e)| *c as f64 * e.oof[i])
                .sum::<f64>()
                / total as f64
        })
        .collect();
    let (score, tb) = measure(&avg);
    Some((weights, score, tb))
}

fn refit(p: &Prepared, c: &Candidate) -> Result<Model, AutomlError> {
    let params = learn::refit_params(c.algorithm, &p.target, &c.params, c.iterations)?;
    Ok(learn::fit_learner(
        c.algorithm,
        &p.target,
        &params,
        &p.features,
        &p.target.values,
        None,
    )?
    .model)
}

/// The ensemble's pool from ranked candidates: the best ones and the best of
/// every other family.
fn pool_of<'a>(ranked: &[&'a Evaluated]) -> Vec<&'a Evaluated> {
    let mut pool: Vec<&Evaluated> = ranked.iter().take(ENSEMBLE_POOL).copied().collect();
    for e in ranked {
        if !pool
            .iter()
            .any(|q| q.candidate.algorithm == e.candidate.algorithm)
        {
            pool.push(e);
        }
    }
    pool
}

/// Finished candidates, best first (equal scores: the lower log loss, or MSE
/// for regression, then the earlier).
fn rank(done: &[Evaluated], metric: Metric) -> Vec<&Evaluated> {
    let mut ranked: Vec<&Evaluated> = done
        .iter()
        .filter(|e| e.candidate.status == CandidateStatus::Done && !e.candidate.score.is_nan())
        .collect();
    let problem = done
        .first()
        .map_or(ProblemType::Binary, |e| problem_of(&e.candidate));
    ranked.sort_by(|a, b| {
        let pa = (a.candidate.score, tiebreak_of(&a.candidate, problem));
        let pb = (b.candidate.score, tiebreak_of(&b.candidate, problem));
        if better_pair(metric, pa, pb) {
            std::cmp::Ordering::Less
        } else if better_pair(metric, pb, pa) {
            std::cmp::Ordering::Greater
        } else {
            a.candidate.id.cmp(&b.candidate.id)
        }
    });
    ranked
}

/// Regression candidates have an `mse`, classification ones a `log_loss`.
fn problem_of(c: &Candidate) -> ProblemType {
    if c.metrics.contains_key("mse") {
        ProblemType::Regression
    } else {
        ProblemType::Binary
    }
}

/// One standard error of the mean of the paired differences `a - b` (parts
/// where either is not finite are left out; 0 with fewer than two).
fn paired_standard_error(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| x - y)
        .collect();
    if d.len() < 2 {
        return 0.0;
    }
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (var / n).sqrt()
}

/// The convergence rule of [`StopReason::Converged`], on the candidates
/// `done` (in the order tried) of which the first `portfolio` came from the
/// portfolio; `ranked` is `done`'s finished candidates, best first.
fn convergence(
    done: &[Evaluated],
    ranked: &[&Evaluated],
    portfolio: usize,
    metric: Metric,
) -> Option<StopReason> {
    let n = done.len();
    let window = (n * CONVERGE_PERCENT)
        .div_ceil(100)
        .max(CONVERGE_MIN_WINDOW);
    if n < portfolio + window {
        return None;
    }
    let now = ranked.first()?;
    let since = n - window + 1;
    // the best before the window (ids count from 1)
    let then = ranked.iter().find(|e| e.candidate.id < since)?;
    let improvement = if metric.higher_is_better() {
        now.candidate.score - then.candidate.score
    } else {
        then.candidate.score - now.candidate.score
    }
    .max(0.0);
    let threshold = paired_standard_error(&now.parts, &then.parts)
        .max(CONVERGE_RELATIVE_FLOOR * then.candidate.score.abs());
    (improvement < threshold).then_some(StopReason::Converged {
        since_candidate: since,
        window,
        threshold,
        improvement,
    })
}

/// What every candidate's evaluation needs, made the same way wherever it
/// runs (the search, or a worker given the same table and options).
pub(crate) struct Setup {
    pub(crate) p: Prepared,
    pub(crate) plan: Plan,
    pub(crate) metric: Metric,
    pub(crate) problem: ProblemType,
    pub(crate) train_rows: Vec<usize>,
    /// The validation file's rows with a target, when there is one.
    pub(crate) holdout_rows: Option<Vec<usize>>,
}

/// Prepare the data, choose the metric and the validation plan.
pub(crate) fn setup(table: &Table, target: &str, opts: &Options) -> Result<Setup, AutomlError> {
    let mut p = learn::prepare(table, target, opts.problem)?;
    let train_rows = p.target.rows.clone();
    // the validation file's rows with a target, when there is one
    let mut holdout_rows: Option<Vec<usize>> = None;
    let problem = p.target.problem;
    let metric = match &opts.metric {
        Some(m) => Metric::parse(m, problem)?,
        None => Metric::default_for(problem),
    };
    let min_rows = opts.min_rows.max(2);
    if p.target.values.len() < min_rows {
        return Err(AutomlError::Options(format!(
            "only {} rows have a target value; AutoML needs at least {min_rows} (lower --min-rows to try anyway)",
            p.target.values.len()
        )));
    }
    // A validation file becomes extra rows scored as a holdout.
    let plan = match &opts.validation {
        None => plan(&p, opts.seed),
        Some(v) => {
            let vp = learn::prepare(v, target, Some(problem))?;
            holdout_rows = Some(vp.target.rows.clone());
            let n_train = p.target.values.len();
            let xv = p.preprocessor.transform(
                &v.take(&vp.target.rows),
                &(0..vp.target.values.len()).collect::<Vec<_>>(),
            )?;
            // encode validation labels with the training label order
            let mut yv = Vec::new();
            for &val in &vp.target.values {
                let label = vp.target.labels.get(val as usize).cloned();
                let enc = match (&label, problem) {
                    (_, ProblemType::Regression) => Some(val),
                    (Some(l), _) => p
                        .target
                        .labels
                        .iter()
                        .position(|t| t == l)
                        .map(|i| i as f64),
                    (None, _) => None,
                };
                yv.push(enc.ok_or_else(|| {
                    AutomlError::Options(format!(
                        "the validation file has a class ({}) the training data lacks",
                        label.unwrap_or_default()
                    ))
                })?);
            }
            let joined = concat(&p.features, &xv)?;
            p.features = joined;
            p.target.values.extend(yv);
            let all = p.target.values.len();
            Plan {
                folds: vec![((0..n_train).collect(), (n_train..all).collect())],
                repeats: 1,
                scored: (n_train..all).collect(),
                describe: format!("the validation file ({} rows)", all - n_train),
            }
        }
    };
    Ok(Setup {
        p,
        plan,
        metric,
        problem,
        train_rows,
        holdout_rows,
    })
}

pub fn run(
    table: &Table,
    target: &str,
    opts: &Options,
    on: &mut dyn FnMut(&Event),
) -> Result<Outcome, AutomlError> {
    let started = Instant::now();
    if opts.time_budget.is_zero() {
        return Err(AutomlError::Options(
            "the time budget must be positive".into(),
        ));
    }
    if opts.max_candidates == 0 {
        return Err(AutomlError::Options(
            "--max-candidates must be at least 1".into(),
        ));
    }
    let budget_end = started + opts.time_budget;
    let Setup {
        p,
        plan,
        metric,
        problem,
        train_rows,
        holdout_rows,
    } = setup(table, target, opts)?;
    on(&Event::Started {
        problem,
        metric,
        rows: p.target.values.len(),
        validation: plan.describe.clone(),
        reason: p.target.reason.clone(),
    });
    let mut done: Vec<Evaluated> = Vec::new();
    let mut queue: Vec<Proposal> = portfolio(problem);
    let portfolio_len = queue.len();
    queue.reverse();
    let mut rng = Rng(opts.seed ^ 0xA70);
    let mut longest = 0.0f64;
    let mut seen: std::collections::HashSet<Vec<(String, String)>> =
        std::collections::HashSet::new();
    let cancelled = || {
        opts.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    let folds = plan.folds.len().max(1) as f64;
    // Refitting costs about one fold's fit per member on 1/0.8 as many rows.
    let refit_cost = |e: &Evaluated| e.candidate.fit_seconds / folds * 1.3;
    let mut duplicates = 0usize;
    // Candidates evaluated at once: one here, or as many as the trial runner
    // (a cluster's workers) takes; each round's are chosen before any of
    // them is scored.
    let slots = opts.trials.as_ref().map_or(1, |t| t.slots().max(1));
    let k = p.n_outputs();
    let stop = 'search: loop {
        if cancelled() {
            on(&Event::Stopped {
                reason: StopReason::Cancelled,
                candidates: done.len(),
                elapsed_s: started.elapsed().as_secs_f64(),
            });
            return Err(AutomlError::Cancelled);
        }
        if done.len() >= opts.max_candidates {
            break StopReason::MaxCandidates {
                max: opts.max_candidates,
            };
        }
        let ranked = rank(&done, metric);
        if queue.is_empty()
            && let Some(r) = convergence(&done, &ranked, portfolio_len, metric)
        {
            break r;
        }
        let reserve = {
            let top: f64 = ranked.iter().take(3).map(|e| refit_cost(e)).sum();
            let first = ranked.first().map_or(0.0, |e| refit_cost(e));
            Duration::from_secs_f64(
                top.min(opts.time_budget.as_secs_f64() / 4.0)
                    .max(first)
                    .max(longest / folds * 1.5),
            )
        };
        let now = Instant::now();
        if now + reserve >= budget_end {
            break StopReason::BudgetSpent {
                budget_s: opts.time_budget.as_secs_f64(),
            };
        }
        let left = budget_end
            .saturating_duration_since(now + reserve)
            .as_secs_f64();
        let fits = |cost: f64| done.is_empty() || cost <= left;
        let mut batch: Vec<Proposal> = Vec::new();
        // a reason to stop found while filling the round: after its candidates
        let mut stop_after: Option<StopReason> = None;
        while batch.len() < slots && done.len() + batch.len() < opts.max_candidates {
            let (name, alg, params) = match queue.pop() {
                Some(c) => {
                    // what it is expected to cost: its family's slowest so far, or the slowest of all
                    let cost = done
                        .iter()
                        .filter(|e| e.candidate.algorithm == c.1)
                        .map(|e| e.candidate.fit_seconds)
                        .reduce(f64::max)
                        .unwrap_or(longest);
                    if !fits(cost) {
                        stop_after = Some(StopReason::BudgetSpent {
                            budget_s: opts.time_budget.as_secs_f64(),
                        });
                        break;
                    }
                    c
                }
                None => {
                    // local search: a few tries for a proposal that fits in what is left
                    let mut pick = None;
                    for _ in 0..8 {
                        match propose(&ranked, metric, problem, &mut rng, left) {
                            Some((c, cost)) if fits(cost) => {
                                pick = Some(c);
                                break;
                            }
                            _ => {}
                        }
                    }
                    let Some((name, alg, params)) = pick else {
                        stop_after = Some(if ranked.is_empty() {
                            StopReason::Exhausted { tried: done.len() }
                        } else {
                            StopReason::BudgetSpent {
                                budget_s: opts.time_budget.as_secs_f64(),
                            }
                        });
                        break;
                    };
                    (
                        format!("{name}-{}", done.len() + batch.len() + 1),
                        alg,
                        params,
                    )
                }
            };
            let mut key = params.clone();
            key.sort();
            key.insert(0, ("algorithm".to_string(), alg.name().to_string()));
            if !seen.insert(key) {
                duplicates += 1;
                if duplicates >= MAX_DUPLICATES {
                    stop_after = Some(StopReason::Exhausted { tried: done.len() });
                    break;
                }
                if batch.is_empty() {
                    continue 'search;
                }
                continue;
            }
            duplicates = 0;
            batch.push((name, alg, params));
        }
        if batch.is_empty() {
            break stop_after.unwrap_or(StopReason::MaxCandidates {
                max: opts.max_candidates,
            });
        }
        let deadline = budget_end - reserve;
        let finished: Vec<f64> = done
            .iter()
            .filter(|e| e.candidate.status == CandidateStatus::Done && e.first_fold.is_finite())
            .map(|e| e.first_fold)
            .collect();
        let prune_below = (finished.len() >= PRUNE_AFTER).then(|| {
            let best = finished
                .iter()
                .copied()
                .reduce(|a, b| if metric.better(a, b) { a } else { b })
                .unwrap_or(f64::NAN);
            hopeless(metric, best)
        });
        let first_id = done.len() + 1;
        let evaluated: Vec<Evaluated> = match &opts.trials {
            Some(runner) => {
                let seconds = deadline
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64();
                let trials: Vec<Trial> = batch
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, algorithm, params))| Trial {
                        id: first_id + i,
                        name,
                        algorithm,
                        params,
                        seconds,
                        prune_below,
                    })
                    .collect();
                let mut results = runner.run(&trials, &cancelled).into_iter();
                trials
                    .iter()
                    .map(|t| {
                        let r = results
                            .next()
                            .unwrap_or_else(|| Err("the trial runner gave no result".into()));
                        crate::trials::evaluated_of(t, r, plan.scored.len() * k, plan.repeats)
                    })
                    .collect()
            }
            None => batch
                .iter()
                .enumerate()
                .map(|(i, (name, alg, params))| {
                    evaluate(
                        first_id + i,
                        name,
                        *alg,
                        params,
                        &p,
                        &plan,
                        metric,
                        deadline,
                        &cancelled,
                        prune_below,
                    )
                })
                .collect(),
        };
        if cancelled() {
            on(&Event::Stopped {
                reason: StopReason::Cancelled,
                candidates: done.len(),
                elapsed_s: started.elapsed().as_secs_f64(),
            });
            return Err(AutomlError::Cancelled);
        }
        for e in evaluated {
            longest = longest.max(e.candidate.fit_seconds);
            on(&Event::Candidate(e.candidate.clone()));
            done.push(e);
        }
        if let Some(r) = stop_after {
            break r;
        }
    };
    let search_seconds = started.elapsed().as_secs_f64();
    on(&Event::Stopped {
        reason: stop.clone(),
        candidates: done.len(),
        elapsed_s: search_seconds,
    });
    // Small data that converged with time left: validate the finalists on
    // more fold assignments, a whole pass at a time (all of them on the same
    // number, so their scores stay comparable), while a pass and the refit fit.
    let mut describe = plan.describe.clone();
    let mut finalists: Vec<usize> = Vec::new();
    if matches!(stop, StopReason::Converged { .. })
        && plan.repeats > 1
        && plan.scored.len() == p.target.values.len()
    {
        let ids: Vec<usize> = pool_of(&rank(&done, metric))
            .iter()
            .map(|e| e.candidate.id)
            .collect();
        let idx: Vec<usize> = ids
            .iter()
            .filter_map(|id| done.iter().position(|e| e.candidate.id == *id))
            .collect();
        let pass: f64 = idx
            .iter()
            .map(|&i| done[i].candidate.fit_seconds / folds * FOLDS as f64)
            .sum::<f64>()
            * 1.2;
        let reserve: f64 = idx.iter().take(3).map(|&i| refit_cost(&done[i])).sum();
        let y: Vec<f64> = p.target.values.clone();
        let k = p.n_outputs();
        let mut r = plan.repeats;
        while r < REFINE_MAX_REPEATS
            && Instant::now() + Duration::from_secs_f64(pass + reserve) < budget_end
        {
            let extra = cv_folds(&p, opts.seed, r);
            let deadline = budget_end - Duration::from_secs_f64(reserve);
            let mut new = Vec::new();
            for &i in &idx {
                match revalidate(&done[i], &extra, &p, metric, deadline, &cancelled) {
                    Some(v) => new.push((i, v)),
                    None => break,
                }
            }
            if cancelled() {
                on(&Event::Stopped {
                    reason: StopReason::Cancelled,
                    candidates: done.len(),
                    elapsed_s: started.elapsed().as_secs_f64(),
                });
                return Err(AutomlError::Cancelled);
            }
            if new.len() < idx.len() {
                break;
            }
            for (i, (oof, parts)) in new {
                let e = &mut done[i];
                let w = e.repeats as f64;
                for (a, b) in e.oof.iter_mut().zip(&oof) {
                    *a = (*a * w + b) / (w + 1.0);
                }
                e.parts.extend(parts);
                e.repeats += 1;
                e.candidate.metrics = learn::evaluate(problem, k, &y, &e.oof);
                e.candidate.score = metric.score(problem, k, &y, &e.oof);
            }
            r += 1;
        }
        if r > plan.repeats {
            describe = format!(
                "{describe}; the {} finalists on {r} fold assignments",
                idx.len()
            );
            finalists = ids;
        }
    }
    // the finalists (when validated further) first, ranked on their own
    let mut ranked = rank(&done, metric);
    if !finalists.is_empty() {
        ranked.sort_by_key(|e| !finalists.contains(&e.candidate.id));
    }
    let Some(best) = ranked.first() else {
        let failures: Vec<&str> = done
            .iter()
            .filter_map(|e| match &e.candidate.status {
                CandidateStatus::Failed(m) => Some(m.as_str()),
                _ => None,
            })
            .collect();
        if !done.is_empty() && failures.len() == done.len() {
            return Err(AutomlError::AllFailed {
                tried: done.len(),
                first: failures[0].to_string(),
            });
        }
        return Err(AutomlError::NoCandidate(longest));
    };
    let best_single = best.candidate.score;
    let mut pool = pool_of(&ranked);
    let remaining = budget_end
        .saturating_duration_since(Instant::now())
        .as_secs_f64();
    // An ensemble whose refit would overrun the budget gives up its costliest
    // member (never the best single) and is selected again, down to the best
    // single candidate.
    let chosen_ensemble = loop {
        let Some((w, s, tb)) = ensemble(&pool, &p, &plan, metric) else {
            break None;
        };
        let single = (best_single, tiebreak_of(&best.candidate, problem));
        if w.len() < 2 || !better_pair(metric, (s, tb), single) {
            break None;
        }
        let cost = |id: usize| {
            done.iter()
                .find(|e| e.candidate.id == id)
                .map_or(0.0, refit_cost)
        };
        if w.iter().map(|(id, _)| cost(*id)).sum::<f64>() <= remaining {
            break Some((w, s));
        }
        let Some(drop) = w
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id != best.candidate.id)
            .max_by(|a, b| cost(*a).total_cmp(&cost(*b)))
        else {
            break None;
        };
        pool.retain(|e| e.candidate.id != drop);
    };
    if let Some((w, s)) = &chosen_ensemble {
        on(&Event::Ensemble {
            members: w.clone(),
            score: *s,
            best_single,
        });
    }
    let members: Vec<(Candidate, f64)> = match &chosen_ensemble {
        Some((w, _)) => w
            .iter()
            .filter_map(|(id, wt)| {
                done.iter()
                    .find(|e| e.candidate.id == *id)
                    .map(|e| (e.candidate.clone(), *wt))
            })
            .collect(),
        None => vec![(best.candidate.clone(), 1.0)],
    };
    if cancelled() {
        return Err(AutomlError::Cancelled);
    }
    let k = p.n_outputs();
    let validation = Validation {
        describe,
        y: plan.scored.iter().map(|&r| p.target.values[r]).collect(),
        pred: {
            let mut avg = vec![0.0; best.oof.len()];
            for (c, w) in &members {
                if let Some(e) = done.iter().find(|e| e.candidate.id == c.id) {
                    for (a, v) in avg.iter_mut().zip(&e.oof) {
                        *a += w * v;
                    }
                }
            }
            avg
        },
        outputs: k,
        rows: match &holdout_rows {
            Some(h) => {
                let n_train = train_rows.len();
                plan.scored
                    .iter()
                    .map(|&r| {
                        r.checked_sub(n_train)
                            .and_then(|i| h.get(i))
                            .copied()
                            .unwrap_or(r)
                    })
                    .collect()
            }
            None => plan
                .scored
                .iter()
                .map(|&r| train_rows.get(r).copied().unwrap_or(r))
                .collect(),
        },
        holdout_file: holdout_rows.is_some(),
    };
    on(&Event::Refitting {
        members: members.len(),
    });
    // Time the refit leaves over buys more seeds of the stochastic members
    // (up to BAG_SEEDS fits each), averaged: the same model, less variance.
    let member_cost = |c: &Candidate| c.fit_seconds / folds * 1.3;
    let planned: f64 = members.iter().map(|(c, _)| member_cost(c)).sum();
    let left_after = budget_end
        .saturating_duration_since(Instant::now())
        .as_secs_f64()
        - planned;
    let bagged_cost: f64 = members
        .iter()
        .filter(|(c, _)| is_stochastic(c))
        .map(|(c, _)| member_cost(c))
        .sum();
    let extra_seeds = if bagged_cost > 0.0 && left_after > 0.0 {
        ((left_after / bagged_cost).floor() as usize).min(BAG_SEEDS - 1)
    } else {
        0
    };
    let mut fitted = Vec::new();
    let mut seeds_of = Vec::new();
    for (c, w) in &members {
        let mut group = vec![refit(&p, c)?];
        if is_stochastic(c) {
            for j in 1..=extra_seeds {
                if cancelled() {
                    return Err(AutomlError::Cancelled);
                }
                let mut copy = c.clone();
                let seed = copy
                    .params
                    .iter()
                    .find(|(k, _)| k == "seed")
                    .and_then(|(_, v)| v.parse::<u64>().ok())
                    .unwrap_or(0);
                copy.params.retain(|(k, _)| k != "seed");
                copy.params
                    .push(("seed".into(), (seed + 7919 * j as u64).to_string()));
                group.push(refit(&p, &copy)?);
            }
        }
        seeds_of.push(group.len());
        let share = *w / group.len() as f64;
        fitted.extend(group.into_iter().map(|model| Member {
            weight: share,
            model,
        }));
    }
    let model = if fitted.len() == 1 {
        fitted
            .pop()
            .map(|m| m.model)
            .ok_or(AutomlError::NoCandidate(0.0))?
    } else {
        Model::Ensemble { members: fitted }
    };
    let score = chosen_ensemble.as_ref().map_or(best_single, |e| e.1);
    let mut leaderboard: Vec<Candidate> = ranked.iter().map(|e| e.candidate.clone()).collect();
    leaderboard.extend(
        done.iter()
            .filter(|e| e.candidate.status != CandidateStatus::Done)
            .map(|e| e.candidate.clone()),
    );
    let mut metrics = BTreeMap::new();
    metrics.insert(format!("validation_{}", metric.name()), score);
    let meta = Metadata {
        created_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        atelier_version: env!("CARGO_PKG_VERSION").into(),
        algorithm: {
            let seeds = |i: usize| match seeds_of.get(i) {
                Some(&n) if n > 1 => format!(", {n} seeds"),
                _ => String::new(),
            };
            if members.len() > 1 {
                format!(
                    "ensemble of {}",
                    members
                        .iter()
                        .enumerate()
                        .map(|(i, (c, w))| format!("{} ({:.0} %{})", c.name, w * 100.0, seeds(i)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!(
                    "{} ({}{})",
                    members[0].0.algorithm.name(),
                    members[0].0.name,
                    seeds(0)
                )
            }
        },
        rows: plan.scored.len().max(p.target.values.len()),
        params: members[0].0.params.iter().cloned().collect(),
        metrics,
        notes: p.preprocessor.notes(),
    };
    // With a validation file, the final model saw those rows too; the
    // preprocessing was fitted on the training file only.
    let pipeline = Pipeline::assemble(p, model, meta);
    Ok(Outcome {
        pipeline,
        leaderboard,
        metric,
        problem,
        score,
        ensemble: chosen_ensemble.map(|e| e.0),
        validation,
        stop_reason: stop,
        search_seconds,
    })
}

fn concat(a: &gbm::Dataset, b: &gbm::Dataset) -> Result<gbm::Dataset, AutomlError> {
    let cols = a
        .columns()
        .iter()
        .zip(b.columns())
        .map(|(x, y)| match (x, y) {
            (gbm::Column::Numeric(u), gbm::Column::Numeric(v)) => {
                Ok(gbm::Column::Numeric(u.iter().chain(v).copied().collect()))
            }
            (
                gbm::Column::Categorical { codes: u, missing },
                gbm::Column::Categorical { codes: v, .. },
            ) => Ok(gbm::Column::Categorical {
                codes: u.iter().chain(v).copied().collect(),
                missing: *missing,
            }),
            _ => Err(AutomlError::Options(
                "the validation file's columns do not match the training data".into(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    gbm::Dataset::new(cols).map_err(|e| AutomlError::Learn(learn::LearnError::Model(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluated(id: usize, score: f64, parts: Vec<f64>) -> Evaluated {
        Evaluated {
            candidate: Candidate {
                id,
                name: format!("c{id}"),
                algorithm: Algorithm::Gbm,
                params: vec![],
                score,
                metrics: BTreeMap::new(),
                fit_seconds: 0.1,
                iterations: 10,
                model_bytes: 0,
                status: CandidateStatus::Done,
                curves: None,
            },
            oof: vec![],
            first_fold: f64::NAN,
            parts,
            repeats: 1,
        }
    }

    #[test]
    fn the_paired_standard_error_is_that_of_the_mean_difference() {
        // differences 0.01, 0.03: mean 0.02, sd 0.01414, se 0.01
        let se = paired_standard_error(&[0.81, 0.83], &[0.8, 0.8]);
        assert!((se - 0.01).abs() < 1e-12, "{se}");
        // a constant shift has no noise; NaN parts are left out
        assert!(paired_standard_error(&[0.9, 0.8, f64::NAN], &[0.8, 0.7, 0.1]) < 1e-12);
        assert_eq!(paired_standard_error(&[0.9], &[0.8]), 0.0);
    }

    #[test]
    fn convergence_needs_a_window_of_local_search_without_a_significant_gain() {
        let metric = Metric::Auc;
        let portfolio = 4;
        // the best (#2) came from the portfolio; 20 more candidates did not beat it
        let mut done: Vec<Evaluated> = (1..=24)
            .map(|id| {
                let s = if id == 2 { 0.9 } else { 0.8 };
                evaluated(id, s, vec![s; 5])
            })
            .collect();
        // 23 candidates: the window (20) would reach into the portfolio
        let ranked = rank(&done[..23], metric);
        assert!(convergence(&done[..23], &ranked, portfolio, metric).is_none());
        let ranked = rank(&done, metric);
        let Some(StopReason::Converged {
            since_candidate,
            window,
            threshold,
            improvement,
        }) = convergence(&done, &ranked, portfolio, metric)
        else {
            panic!("converged")
        };
        assert_eq!((since_candidate, window), (5, 20));
        assert_eq!(improvement, 0.0);
        assert!((threshold - 0.9e-4).abs() < 1e-12, "the floor: {threshold}");
        // a gain in the window that every fold agrees on is real: no convergence
        done[23] = evaluated(24, 0.92, vec![0.915, 0.925, 0.918, 0.922, 0.92]);
        let ranked = rank(&done, metric);
        assert!(convergence(&done, &ranked, portfolio, metric).is_none());
        // the same mean gain with folds that disagree about it is noise
        done[23] = evaluated(24, 0.92, vec![0.99, 0.85, 0.97, 0.87, 0.92]);
        let ranked = rank(&done, metric);
        let r = convergence(&done, &ranked, portfolio, metric);
        assert!(
            matches!(r, Some(StopReason::Converged { improvement, threshold, .. })
                if (improvement - 0.02).abs() < 1e-12 && threshold > 0.02),
            "{r:?}"
        );
        // the window grows with the search: 40 % of 60 candidates is 24
        let done: Vec<Evaluated> = (1..=60)
            .map(|id| evaluated(id, if id == 2 { 0.9 } else { 0.8 }, vec![0.8; 5]))
            .collect();
        let ranked = rank(&done, metric);
        assert!(matches!(
            convergence(&done, &ranked, portfolio, metric),
            Some(StopReason::Converged {
                window: 24,
                since_candidate: 37,
                ..
            })
        ));
    }
}
