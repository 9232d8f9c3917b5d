//! # tuning — hyperparameter tuning jobs (SageMaker's tuning, Katib)
//!
//! Brief overview: a job of kind `tuning` runs many `training` jobs (trials)
//! over a search space and keeps the best. Its spec ([`spec`]) is a training
//! job's spec plus the search: the objective metric and its direction, the
//! parameters ([`space`]: continuous, integer or categorical, linear or log
//! scale), the strategy ([`strategy`]: seeded random, or Bayesian with a
//! Gaussian process ([`gp`]) and expected improvement), how many trials in
//! all and at once, and early stopping ([`stopping`]: the median rule).
//!
//! [`runner::TuningRunner`] is the [`jobs::Runner`]: it creates a parent run,
//! submits each trial through the job queue with the sampled hyperparameters
//! merged into the training spec, makes the trial's run a child of the parent
//! (`mlflow.parentRunId`), reads each trial's objective from its run's metric
//! history (the last value logged), stops hopeless trials, and at the end tags
//! the best trial's run `atelier.tuning_best=true` and logs the best
//! objective and parameters on the parent run. The runner module's docs hold
//! the rules (workers, objective, early stopping, cancel and shutdown).
//!
//! The progress document, which is also the result (the Studio renders it):
//!
//! ```json
//! {"objective": {"metric": "val_loss", "direction": "minimize"},
//!  "trials": [{"job_id", "run_id", "params": {…}, "status", "objective": 0.12 | null,
//!              "stopped_early": false, "error": null | "…"}],
//!  "best": {"job_id", "run_id", "objective", "params"} | null,
//!  "parent_run_id": "…",
//!  "strategy", "early_stopping", "max_jobs", "max_parallel_jobs",
//!  "parallel": 2,           // trials at once in this server
//!  "note": "…"}             // only when workers limit or hold up the trials
//! ```

pub mod gp;
pub mod rng;
pub mod runner;
pub mod space;
pub mod spec;
pub mod stopping;
pub mod strategy;

pub use runner::{KIND, TuningRunner};
pub use space::{Space, parse_cli_param};
pub use spec::{SpecError, TuningSpec};
