//! # autopilot — AutoML as a server job
//!
//! Brief overview: [`AutomlRunner`] is the `"automl"` kind of the [`jobs`]
//! queue. Its spec names a dataset kept in the artifact store (under
//! [`DATASETS`], uploaded through the server's dataset API) and a target
//! column. The job:
//!
//! 1. reads the dataset and runs [`automl::run`] with the job's cancel flag;
//! 2. logs a parent run in an experiment (default `Autopilot`) and one child
//!    run per candidate as it finishes (parameters, every validation metric,
//!    training time, model size), so the MLflow API and the Studio see the
//!    leaderboard fill in; gbm and mlp candidates also get their first fold's
//!    loss curves as the metric histories `train_loss` and `val_loss` (step =
//!    boosting iteration or epoch, from 1) with the loss's name in the tag
//!    `atelier.loss`, which the Debugger's loss rules and the Studio's charts
//!    read;
//! 3. keeps the job's progress document current (phase, elapsed time, the
//!    leaderboard) for the live Studio page;
//! 4. stores the best pipeline as the parent run's `model/pipeline.atelier`,
//!    the leaderboard as `leaderboard.json`, and registers the pipeline as a
//!    new version of a registered model whose `source` is that `model`
//!    folder, tagged `atelier.job_id` and `atelier.dataset` (lineage).
//!
//! A cancelled job ends its runs as `KILLED` and registers nothing.

pub mod cluster;
pub mod outputs;
mod runner;
mod spec;

pub use cluster::WorkerTask;
pub use jobs::cluster::Cluster;
pub use runner::AutomlRunner;
pub use spec::{BiasSpec, DATASETS, Spec, dataset_path};

/// Failures inside an Autopilot job, turned into the job's error message.
#[derive(Debug, thiserror::Error)]
pub enum AutopilotError {
    #[error("{0}")]
    Spec(String),
    #[error(transparent)]
    Data(#[from] tabular::DataError),
    #[error(transparent)]
    Automl(#[from] automl::AutomlError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Artifacts(#[from] artifacts::ArtifactError),
    #[error(transparent)]
    Learn(#[from] learn::LearnError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
