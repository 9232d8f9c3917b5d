//! Candidates evaluated elsewhere: the search hands a [`TrialRunner`] a round
//! of [`Trial`]s at once (as many as it has [`TrialRunner::slots`]) and
//! gets one [`TrialResult`] back per trial. A worker — another process,
//! another machine — given the same table and [`Options`] builds the same
//! [`TrialData`] (the preparation, metric and folds are deterministic) and
//! evaluates a trial with [`TrialData::run`], exactly as the search would
//! have here. Trials and results are plain JSON-able values, so the
//! transport is the runner's business (Autopilot's runs each trial as a job
//! of the cluster executor).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use learn::Algorithm;
use serde::{Deserialize, Serialize};
use tabular::Table;

use crate::search::{Evaluated, Setup, evaluate, setup};
use crate::{AutomlError, Candidate, CandidateStatus, Options};

/// One candidate to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// The candidate's number in the search (from 1).
    pub id: usize,
    pub name: String,
    pub algorithm: Algorithm,
    pub params: Vec<(String, String)>,
    /// Seconds left, when the round was handed out, until the search stops
    /// starting folds: a cross-validation ends (as `stopped`) after the fold
    /// that passes it.
    pub seconds: f64,
    /// The first fold's score below which the candidate is given up
    /// (`pruned`), when the search prunes.
    #[serde(default)]
    pub prune_below: Option<f64>,
}

/// Evaluates rounds of trials, e.g. on a cluster's workers.
pub trait TrialRunner: Send + Sync + std::fmt::Debug {
    /// Trials evaluated at once (a round's size).
    fn slots(&self) -> usize;
    /// Evaluate `trials` (concurrently, as far as the runner can): one result
    /// per trial, in their order. An error is the trial's failure, in words
    /// (the worker could not be started, did not answer, …). `cancel` says
    /// when the search was cancelled: stop what is running and return.
    fn run(&self, trials: &[Trial], cancel: &dyn Fn() -> bool) -> Vec<Result<TrialResult, String>>;
}

/// A fit's loss curves, as a result carries them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialCurves {
    pub loss: String,
    pub train: Vec<Option<f64>>,
    pub valid: Vec<Option<f64>>,
}

/// What evaluating a trial found. Numbers that are not finite travel as
/// `null` (JSON has no NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    pub id: usize,
    /// `done`, `stopped`, `pruned` or `failed`.
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    pub score: Option<f64>,
    pub metrics: BTreeMap<String, Option<f64>>,
    pub fit_seconds: f64,
    pub iterations: usize,
    pub model_bytes: usize,
    #[serde(default)]
    pub curves: Option<TrialCurves>,
    /// Out-of-fold predictions of the scored rows, row-major by outputs.
    pub oof: Vec<Option<f64>>,
    pub first_fold: Option<f64>,
    pub parts: Vec<Option<f64>>,
    pub repeats: usize,
}

/// The data a worker evaluates trials on: made from the same table, target
/// and options as the search's, it is the search's own.
pub struct TrialData {
    setup: Setup,
}

impl std::fmt::Debug for TrialData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrialData")
            .field("rows", &self.setup.p.target.values.len())
            .field("folds", &self.setup.plan.folds.len())
            .finish_non_exhaustive()
    }
}

impl TrialData {
    /// Prepare `table` as the search does with `opts` (problem, metric, seed,
    /// validation table and minimum rows are what matter).
    pub fn new(table: &Table, target: &str, opts: &Options) -> Result<TrialData, AutomlError> {
        Ok(TrialData {
            setup: setup(table, target, opts)?,
        })
    }

    /// Evaluate one trial here.
    pub fn run(&self, trial: &Trial) -> TrialResult {
        let s = &self.setup;
        let deadline = Instant::now() + Duration::from_secs_f64(trial.seconds.clamp(0.0, 1e9));
        let e = evaluate(
            trial.id,
            &trial.name,
            trial.algorithm,
            &trial.params,
            &s.p,
            &s.plan,
            s.metric,
            deadline,
            &|| false,
            trial.prune_below,
        );
        result_of(&e)
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn finite_all(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().map(|x| finite(*x)).collect()
}

fn nan_all(v: &[Option<f64>]) -> Vec<f64> {
    v.iter().map(|x| x.unwrap_or(f64::NAN)).collect()
}

fn result_of(e: &Evaluated) -> TrialResult {
    let c = &e.candidate;
    let (status, error) = match &c.status {
        CandidateStatus::Done => ("done", None),
        CandidateStatus::Stopped => ("stopped", None),
        CandidateStatus::Pruned => ("pruned", None),
        CandidateStatus::Failed(m) => ("failed", Some(m.clone())),
    };
    TrialResult {
        id: c.id,
        status: status.into(),
        error,
        score: finite(c.score),
        metrics: c
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), finite(*v)))
            .collect(),
        fit_seconds: c.fit_seconds,
        iterations: c.iterations,
        model_bytes: c.model_bytes,
        curves: c.curves.as_ref().map(|cv| TrialCurves {
            loss: cv.loss.to_string(),
            train: finite_all(&cv.train),
            valid: finite_all(&cv.valid),
        }),
        oof: finite_all(&e.oof),
        first_fold: finite(e.first_fold),
        parts: finite_all(&e.parts),
        repeats: e.repeats,
    }
}

/// Loss names the learners report (a curve's name must be one of them).
const LOSSES: &[&str] = &[
    "l2",
    "l1",
    "huber",
    "binary_logloss",
    "multi_logloss",
    "cross_entropy",
    "half_squared_error_standardised",
];

/// The search's record of `trial` from what its runner returned: a result
/// that does not fit the search's data (another trial's, the wrong number
/// of predictions) is the trial's failure.
pub(crate) fn evaluated_of(
    trial: &Trial,
    result: Result<TrialResult, String>,
    predictions: usize,
    repeats: usize,
) -> Evaluated {
    let failed = |why: String| Evaluated {
        candidate: Candidate {
            id: trial.id,
            name: trial.name.clone(),
            algorithm: trial.algorithm,
            params: trial.params.clone(),
            score: f64::NAN,
            metrics: BTreeMap::new(),
            fit_seconds: 0.0,
            iterations: 0,
            model_bytes: 0,
            status: CandidateStatus::Failed(why),
            curves: None,
        },
        oof: vec![0.0; predictions],
        first_fold: f64::NAN,
        parts: Vec::new(),
        repeats,
    };
    let r = match result {
        Ok(r) => r,
        Err(why) => return failed(why),
    };
    if r.id != trial.id {
        return failed(format!(
            "the worker answered for candidate {} instead of {}",
            r.id, trial.id
        ));
    }
    let status = match r.status.as_str() {
        "done" => CandidateStatus::Done,
        "stopped" => CandidateStatus::Stopped,
        "pruned" => CandidateStatus::Pruned,
        "failed" => CandidateStatus::Failed(r.error.clone().unwrap_or_else(|| "failed".into())),
        other => return failed(format!("the worker gave an unknown status '{other}'")),
    };
    if r.oof.len() != predictions {
        return failed(format!(
            "the worker returned {} predictions, the search scores {predictions}: it did not evaluate on the same data",
            r.oof.len()
        ));
    }
    if r.repeats != repeats {
        return failed(format!(
            "the worker validated on {} fold assignment(s), the search on {repeats}: it did not evaluate on the same data",
            r.repeats
        ));
    }
    let score = r.score.unwrap_or(f64::NAN);
    if status == CandidateStatus::Done && !score.is_finite() {
        return failed("the worker finished the candidate without a score".into());
    }
    Evaluated {
        candidate: Candidate {
            id: trial.id,
            name: trial.name.clone(),
            algorithm: trial.algorithm,
            params: trial.params.clone(),
            score,
            metrics: r
                .metrics
                .iter()
                .map(|(k, v)| (k.clone(), v.unwrap_or(f64::NAN)))
                .collect(),
            fit_seconds: r.fit_seconds,
            iterations: r.iterations,
            model_bytes: r.model_bytes,
            status,
            curves: r.curves.map(|c| learn::Curves {
                loss: LOSSES
                    .iter()
                    .find(|l| **l == c.loss)
                    .copied()
                    .unwrap_or("loss"),
                train: nan_all(&c.train),
                valid: nan_all(&c.valid),
            }),
        },
        oof: nan_all(&r.oof),
        first_fold: r.first_fold.unwrap_or(f64::NAN),
        parts: nan_all(&r.parts),
        repeats,
    }
}
