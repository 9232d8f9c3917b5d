//! The search: validation plan, portfolio, local search, ensemble, refit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use learn::{Algorithm, Member, Metadata, Model, Pipeline, Prepared, ProblemType};
use tabular::Table;

use crate::{AutomlError, Metric};

/// Up to this many rows, candidates are scored by 5-fold cross-validation;
/// beyond, on a 20 % holdout.
pub const CV_MAX_ROWS: usize = 10_000;
const FOLDS: usize = 5;
/// Candidates considered for the ensemble.
const ENSEMBLE_POOL: usize = 10;
const ENSEMBLE_ROUNDS: usize = 25;

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
}

/// The default of [`Options::min_rows`].
pub const MIN_ROWS: usize = 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            time_budget: Duration::from_secs(3600),
            max_candidates: 50,
            metric: None,
            problem: None,
            seed: 0,
            validation: None,
            cancel: None,
            min_rows: MIN_ROWS,
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
}

/// Row indices of the validation parts: k folds (CV) or one holdout.
struct Plan {
    folds: Vec<(Vec<usize>, Vec<usize>)>,
    /// Rows that get an out-of-fold prediction, in order.
    scored: Vec<usize>,
    describe: String,
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

fn plan(p: &Prepared, seed: u64) -> Plan {
    let n = p.target.values.len();
    if n <= CV_MAX_ROWS {
        let parts = stratified_folds(p, FOLDS, seed);
        let folds = (0..FOLDS)
            .map(|f| {
                let train: Vec<usize> = (0..FOLDS)
                    .filter(|&g| g != f)
                    .flat_map(|g| parts[g].iter().copied())
                    .collect();
                let mut train = train;
                train.sort_unstable();
                (train, parts[f].clone())
            })
            .collect();
        Plan {
            folds,
            scored: (0..n).collect(),
            describe: format!("{FOLDS}-fold cross-validation on {n} rows"),
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

/// A neighbour of `params`: one or two values moved.
fn perturb(params: &[(String, String)], rng: &mut Rng) -> Vec<(String, String)> {
    let mut p: BTreeMap<String, String> = params.iter().cloned().collect();
    for _ in 0..(1 + rng.next() % 2) {
        let key = *rng.pick(&[
            "learning_rate",
            "num_leaves",
            "min_data_in_leaf",
            "feature_fraction",
            "lambda_l2",
            "bagging_fraction",
        ]);
        let cur: f64 = p
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(match key {
                "learning_rate" => 0.05,
                "num_leaves" => 31.0,
                "min_data_in_leaf" => 20.0,
                "lambda_l2" => 0.0,
                _ => 1.0,
            });
        let v = match key {
            "learning_rate" => short((cur * rng.pick(&[0.5, 0.7, 1.4, 2.0])).clamp(0.01, 0.3)),
            "num_leaves" => format!(
                "{}",
                ((cur * rng.pick(&[0.5, 0.7, 1.5, 2.0])) as usize).clamp(4, 255)
            ),
            "min_data_in_leaf" => format!(
                "{}",
                ((cur * rng.pick(&[0.3, 0.6, 1.5, 3.0])) as usize).clamp(1, 200)
            ),
            "lambda_l2" => format!("{}", *rng.pick(&[0.0, 0.5, 1.0, 3.0, 10.0])),
            "bagging_fraction" => {
                p.insert("bagging_freq".into(), "1".into());
                short((cur * rng.pick(&[0.8, 0.9, 1.1])).clamp(0.5, 1.0))
            }
            _ => short((cur * rng.pick(&[0.7, 0.85, 1.15])).clamp(0.3, 1.0)),
        };
        p.insert(key.into(), v);
    }
    p.into_iter().collect()
}

struct Evaluated {
    candidate: Candidate,
    /// Predictions for `plan.scored` rows, row-major by outputs.
    oof: Vec<f64>,
    /// The search metric on the first fold alone (NaN when not measured).
    first_fold: f64,
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
fn evaluate(
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
    let mut oof_full = vec![f64::NAN; n * k];
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
                oof_full[row * k..(row + 1) * k].copy_from_slice(&pred[j * k..(j + 1) * k]);
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
    }
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

/// Greedy ensemble selection with replacement over the pool's predictions.
fn ensemble(
    pool: &[&Evaluated],
    p: &Prepared,
    plan: &Plan,
    metric: Metric,
) -> Option<(Vec<(usize, f64)>, f64)> {
    if pool.len() < 2 {
        return None;
    }
    let k = p.n_outputs();
    let y: Vec<f64> = plan.scored.iter().map(|&r| p.target.values[r]).collect();
    let len = pool[0].oof.len();
    let mut sum = vec![0.0; len];
    let mut counts = vec![0usize; pool.len()];
    let mut best_score = f64::NAN;
    for round in 0..ENSEMBLE_ROUNDS {
        let mut choice: Option<(usize, f64)> = None;
        for (j, e) in pool.iter().enumerate() {
            let avg: Vec<f64> = sum
                .iter()
                .zip(&e.oof)
                .map(|(s, v)| (s + v) / (round + 1) as f64)
                .collect();
            let sc = metric.score(p.target.problem, k, &y, &avg);
            if choice.is_none_or(|(_, b)| metric.better(sc, b)) {
                choice = Some((j, sc));
            }
        }
        let (j, sc) = choice?;
        counts[j] += 1;
        for (s, v) in sum.iter_mut().zip(&pool[j].oof) {
            *s += v;
        }
        if metric.better(sc, best_score) || best_score.is_nan() {
            best_score = sc;
        }
    }
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
    Some((weights, metric.score(p.target.problem, k, &y, &avg)))
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
    let mut p = learn::prepare(table, target, opts.problem)?;
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
                scored: (n_train..all).collect(),
                describe: format!("the validation file ({} rows)", all - n_train),
            }
        }
    };
    on(&Event::Started {
        problem,
        metric,
        rows: p.target.values.len(),
        validation: plan.describe.clone(),
        reason: p.target.reason.clone(),
    });
    let mut done: Vec<Evaluated> = Vec::new();
    let mut queue: Vec<Proposal> = portfolio(problem);
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
    while done.len() < opts.max_candidates {
        if cancelled() {
            return Err(AutomlError::Cancelled);
        }
        let now = Instant::now();
        // keep room for the final refit (about one candidate's single fit)
        let reserve = Duration::from_secs_f64(longest / plan.folds.len().max(1) as f64 * 1.5);
        if now + reserve >= budget_end
            || (!done.is_empty() && now + Duration::from_secs_f64(longest) + reserve > budget_end)
        {
            break;
        }
        let (name, alg, params) = match queue.pop() {
            Some(c) => c,
            None => {
                // local search around one of the three best so far
                let mut ranked: Vec<&Evaluated> = done
                    .iter()
                    .filter(|e| e.candidate.status == CandidateStatus::Done)
                    .collect();
                ranked.sort_by(|a, b| {
                    if metric.better(a.candidate.score, b.candidate.score) {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                });
                let Some(base) =
                    ranked.get((rng.next() % ranked.len().clamp(1, 3) as u64) as usize)
                else {
                    break;
                };
                let mut params = perturb(&base.candidate.params, &mut rng);
                if problem == ProblemType::Multiclass {
                    params.retain(|(k, _)| k != "early_stopping_rounds" && k != "n_estimators");
                    params.push(("early_stopping_rounds".into(), "0".into()));
                    params.push(("n_estimators".into(), "400".into()));
                }
                (
                    format!("gbm-search-{}", done.len() + 1),
                    Algorithm::Gbm,
                    params,
                )
            }
        };
        if !seen.insert(
            [
                vec![("algorithm".to_string(), alg.name().to_string())],
                params.clone(),
            ]
            .concat(),
        ) {
            continue;
        }
        let deadline = budget_end - reserve.min(opts.time_budget / 4);
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
        let e = evaluate(
            done.len() + 1,
            &name,
            alg,
            &params,
            &p,
            &plan,
            metric,
            deadline,
            &cancelled,
            prune_below,
        );
        if cancelled() {
            return Err(AutomlError::Cancelled);
        }
        longest = longest.max(e.candidate.fit_seconds);
        on(&Event::Candidate(e.candidate.clone()));
        done.push(e);
    }
    let mut ranked: Vec<&Evaluated> = done
        .iter()
        .filter(|e| e.candidate.status == CandidateStatus::Done)
        .collect();
    ranked.sort_by(|a, b| {
        if metric.better(a.candidate.score, b.candidate.score) {
            std::cmp::Ordering::Less
        } else if metric.better(b.candidate.score, a.candidate.score) {
            std::cmp::Ordering::Greater
        } else {
            a.candidate.id.cmp(&b.candidate.id)
        }
    });
    let Some(best) = ranked.first() else {
        return Err(AutomlError::NoCandidate(longest));
    };
    let best_single = best.candidate.score;
    let pool: Vec<&Evaluated> = ranked.iter().take(ENSEMBLE_POOL).copied().collect();
    // Refitting costs about one fold's fit per member on 1/0.8 as many rows:
    // an ensemble whose refit would overrun the budget gives way to the best
    // single candidate.
    let refit_cost = |id: usize| {
        done.iter().find(|e| e.candidate.id == id).map_or(0.0, |e| {
            e.candidate.fit_seconds / plan.folds.len().max(1) as f64 * 1.3
        })
    };
    let remaining = budget_end
        .saturating_duration_since(Instant::now())
        .as_secs_f64();
    let chosen_ensemble = ensemble(&pool, &p, &plan, metric)
        .filter(|(w, s)| w.len() > 1 && metric.better(*s, best_single))
        .filter(|(w, _)| w.iter().map(|(id, _)| refit_cost(*id)).sum::<f64>() <= remaining);
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
        describe: plan.describe.clone(),
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
    };
    on(&Event::Refitting {
        members: members.len(),
    });
    let mut fitted = Vec::new();
    for (c, w) in &members {
        fitted.push(Member {
            weight: *w,
            model: refit(&p, c)?,
        });
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
        algorithm: if members.len() > 1 {
            format!(
                "ensemble of {}",
                members
                    .iter()
                    .map(|(c, w)| format!("{} ({:.0} %)", c.name, w * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("{} ({})", members[0].0.algorithm.name(), members[0].0.name)
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
