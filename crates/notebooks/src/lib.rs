//! # notebooks — the Studio's notebooks: workspace files, previews, notebook
//! jobs and their schedules
//!
//! Editing happens in a real JupyterLab per space (the `spaces` crate starts
//! and proxies it); this crate owns what the Studio does with notebooks
//! around it:
//!
//! - [`workspace`]: each space's folder of files under the data directory
//!   (listed, read for previews, snapshotted for jobs, written by "Open in
//!   JupyterLab"), with every path checked before any IO;
//! - previews, rendered by `nbrender` without a kernel (a workspace file, an
//!   artifact, a job's output notebook — while it runs too);
//! - notebook **jobs**: kind `notebook` of `userjobs` (a processing job whose
//!   command is `atelier __notebook-run`, the Rust runner in `nbexec`); the
//!   API snapshots the notebook into the artifact store first, so a run is
//!   reproducible whatever happens to the workspace file afterwards;
//! - notebook **schedules** ([`schedule`]): a cron, a notebook and its
//!   parameters; each firing is a notebook job named after the schedule, and
//!   a failed firing marks the schedule failing and tells its webhooks.
//!
//! [`api::router`] serves it all under `/api/atelier/notebooks` and
//! `/api/atelier/notebook-schedules`.

pub mod api;
pub mod schedule;
pub mod workspace;

use std::path::PathBuf;
use std::sync::Arc;

use artifacts::ArtifactStore;
use store::MetadataStore;

/// The job kind of notebook runs.
pub const KIND: &str = "notebook";

/// What the notebooks API and the scheduler work with.
#[derive(Clone)]
pub struct Notebooks {
    pub store: Arc<dyn MetadataStore>,
    pub artifacts: ArtifactStore,
    pub queue: Arc<jobs::Queue>,
    /// One folder per space: `<data>/workspaces/<space>`.
    pub workspaces_root: PathBuf,
    /// The Python of kernels and JupyterLab, if configured.
    pub python: Option<PathBuf>,
    /// The server's webhook policy, checked when a schedule is saved.
    pub webhook_check: Option<userjobs::runner::WebhookCheck>,
}
