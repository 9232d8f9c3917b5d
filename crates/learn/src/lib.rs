//! # learn — from a table to a deployable pipeline
//!
//! Brief overview: [`train`] takes a [`tabular::Table`] and a target column,
//! infers the problem ([`problem`]), fits the preprocessing on training data
//! only ([`preprocess`]), trains a learner (the pure-Rust `gbm` crate) with
//! early stopping on a holdout and a refit, and returns a [`Pipeline`]:
//! one versioned file with the input schema, preprocessing, model, label
//! decoding and training metadata. [`metrics`] holds every evaluation
//! metric Autopilot offers.
//!
//! Pure compute: no network, no database.

pub mod dense;
pub mod explain;
mod learners;
pub mod metrics;
mod pipeline;
pub mod preprocess;
pub mod problem;

pub use explain::{Background, ExplainOptions, Method, Space};
pub use learners::{
    Curves, FitOptions, Fitted, fit_learner, fit_learner_with, fit_learner_with_progress, task,
};
pub use pipeline::{
    Algorithm, Contributions, Member, Metadata, Model, PIPELINE_FORMAT, PIPELINE_VERSION, Pipeline,
    Predictions, Prepared, RowScratch, TrainEvent, TrainOptions, evaluate, gbm_params, holdout,
    prepare, refit_params, train, train_with_events,
};
pub use preprocess::{Cell, Preprocessor};
pub use problem::ProblemType;

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The target column cannot be learned as asked.
    #[error("{0}")]
    Target(String),
    /// The input data does not fit (missing column, wrong type).
    #[error("{0}")]
    Input(String),
    /// A training parameter is unknown or out of range.
    #[error("{0}")]
    Param(String),
    /// The learner failed.
    #[error("model: {0}")]
    Model(String),
    /// A pipeline file could not be read or written.
    #[error("{path}: {message}")]
    File {
        path: std::path::PathBuf,
        message: String,
    },
}
