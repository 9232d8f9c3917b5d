//! # reports — what Autopilot shows about the data and the models
//!
//! Brief overview: [`data_report`] explores a table before training
//! (summary, target distribution, per-column statistics, missing values,
//! outliers, correlations, associations with the target, insights);
//! [`quality_report`] shows how good the chosen model is (leaderboard,
//! confusion matrix, ROC / precision-recall / calibration curves or
//! residual plots, feature importance, SHAP summary); [`notebook`] writes an
//! nbformat-4 notebook that reproduces the best candidate with the CLI.
//!
//! Each report is one self-contained HTML string: inline CSS and inline SVG
//! drawn here, no JavaScript, no external requests (a Content-Security-Policy
//! forbids them), so a report opens from disk and inside the Studio's
//! sandboxed `<iframe>` alike. Every user-supplied string is HTML-escaped.
//!
//! Pure compute: no network, no files.

mod data;
mod html;
mod notebook;
mod quality;
mod stats;
mod svg;

pub use data::{DataReportOptions, data_report};
pub use notebook::{AutomlCall, HttpCall, NotebookSpec, notebook};
pub use quality::{
    BiasGroup, BiasInput, BiasMetric, LeaderboardRow, QualityInput, ShapInput, quality_report,
};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the target column '{target}' is not in the table (columns: {available})")]
    UnknownTarget { target: String, available: String },
    #[error("{0}")]
    Target(String),
    #[error("invalid report input: {0}")]
    Input(String),
}
