//! # userjobs — processing and training jobs that run your own code
//!
//! Brief overview: a job of kind `processing` or `training` runs a command
//! (a user's `prep.py` or `train.py`) on an [`jobs::executor::Executor`],
//! with SageMaker's container contract on local paths ([`layout`]): inputs
//! are downloaded into the job's folder, the environment carries SageMaker's
//! and MLflow's variables, and when the command ends its outputs (and, for
//! training, `model/`) are uploaded to the job's run. Every job is an MLflow
//! run (parameters = hyperparameters, tags = job id and kind), so its
//! metrics, artifacts and lineage show wherever runs do.
//!
//! [`spec`] parses and checks a job's spec; [`runner::UserJobRunner`] is the
//! [`jobs::Runner`] for both kinds.

pub mod api;
pub mod experiments;
pub mod layout;
pub mod notebook;
pub mod rules;
pub mod runner;
pub mod spec;
pub mod stage;

pub use runner::UserJobRunner;
pub use spec::{JobKind, UserJobSpec};
