//! # automl — from a table and a target to the best deployable pipeline
//!
//! Brief overview: [`run`] infers the problem, chooses the validation
//! (5-fold cross-validation up to [`CV_MAX_ROWS`] rows, repeated with a
//! second fold assignment up to [`REPEAT_MAX_ROWS`], a 20 % holdout beyond,
//! or a validation file), evaluates a portfolio of learner configurations
//! known to be strong across datasets, spends the rest of the time budget on
//! a seeded local search around the best candidates of every family, builds
//! a greedy ensemble (Caruana et al. 2004) over the out-of-fold predictions
//! when it beats the best single candidate, and refits the winner on all
//! rows into one [`learn::Pipeline`]. The budget decides when the search
//! ends, unless it demonstrably converges first or reaches
//! [`Options::max_candidates`]: [`StopReason`] says which (and small data
//! that converged spends the time left validating the finalists on more fold
//! assignments). Every candidate is reported through [`Event`]s as it
//! finishes, so a CLI progress bar or a live page can follow.
//!
//! Pure compute: no network, no database.

mod metric;
mod search;
mod trials;

pub use metric::Metric;
pub use search::{
    BAG_SEEDS, CONVERGE_MIN_WINDOW, CONVERGE_PERCENT, CV_MAX_ROWS, CV_REPEATS, Candidate,
    CandidateStatus, Event, MAX_CANDIDATES, MIN_ROWS, Options, Outcome, REFINE_MAX_REPEATS,
    REPEAT_MAX_ROWS, StopReason, Validation, is_stochastic, run,
};
pub use trials::{Trial, TrialCurves, TrialData, TrialResult, TrialRunner};

#[derive(Debug, thiserror::Error)]
pub enum AutomlError {
    #[error(transparent)]
    Learn(#[from] learn::LearnError),
    #[error("{0}")]
    Options(String),
    #[error(
        "the time budget ran out before any candidate finished; give a larger --time-budget (the first candidate needs about {0:.0} s)"
    )]
    NoCandidate(f64),
    #[error("all {tried} candidates failed; the first: {first}")]
    AllFailed { tried: usize, first: String },
    #[error("the AutoML run was cancelled")]
    Cancelled,
}
