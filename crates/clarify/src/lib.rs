//! # clarify — SageMaker Clarify's bias metrics
//!
//! A bias report for a dataset, and for a model's predictions on it, with
//! Clarify's metrics, names and `analysis.json` shape (issue 15 §2).
//!
//! * Facet: a column and the value(s) that make the sensitive group d, or a
//!   numeric threshold (values above it are d, as Clarify's
//!   `facet_values_or_threshold`, whose interval is `(threshold, max]`);
//!   every other row (missing values included) is facet a. Without values
//!   or a threshold, a categorical facet is reported once per value, that
//!   value against the rest (Clarify's default).
//! * Label: the target column with its positive value(s), or a threshold
//!   (values above it are positive). Missing labels are negative.
//! * Predicted labels come from an Atelier pipeline (`atelier train`,
//!   `atelier automl`): for a binary classifier, positive when the summed
//!   probability of the positive classes exceeds `probability_threshold`
//!   (Clarify's `ModelPredictedLabelConfig`, default 0.5); for a multiclass
//!   one, when the predicted class is a positive value; for a regression,
//!   when the prediction is above the label threshold.
//! * Group (`group_variable`) for CDDL and CDDPL; without one those two are
//!   reported undefined, as Clarify does.
//!
//! | stage | metrics (sorted by name, as Clarify's report) |
//! |---|---|
//! | pre-training | CDDL, CI, DPL, JS, KL, KS, LP, TVD |
//! | post-training | AD, CDDPL, DAR, DCA (the docs' DCAcc), DCR, DI, DPPL, DRR, FT, GE, RD, SD, TE |
//!
//! Definitions are smclarify's (`amazon-sagemaker-clarify`, which Clarify's
//! processing container runs): KL, JS, LP (p = 2), TVD and KS compare the
//! two facets' binary label distributions over the label values present in
//! both; divisions give 0 for 0/0 and ±∞ otherwise (written `"Infinity"`);
//! a metric that cannot be computed has `"value": null` and an `"error"`.
//! FT follows smclarify's code: a 5-NN (1-NN when facet a has at most 9
//! rows) over the other numeric columns, fitted on facet a's predicted
//! labels, FT = (#{model 1, k-NN 0} − #{model 0, k-NN 1}) / n_d — the
//! opposite sign of the F⁺/F⁻ wording in Clarify's documentation page — and,
//! like smclarify, it is undefined when a feature column is not numeric or
//! has missing values. GE uses α = 2 and the benefit ŷ − y + 1.

pub mod drift;
pub mod metrics;
mod report;

pub use report::{
    BiasConfig, FacetReport, MetricResult, Outputs, Predicted, Report, Selector, StageReport,
    predicted_from_outputs, predicted_positive,
};

/// What stops a report from being made.
#[derive(Debug, thiserror::Error)]
pub enum ClarifyError {
    /// A column named in the configuration is not in the data.
    #[error("no column '{name}' in the data (columns: {columns})")]
    UnknownColumn { name: String, columns: String },
    /// A facet value that no row has.
    #[error("column '{column}' has no value '{value}' (values: {values})")]
    UnknownValue {
        column: String,
        value: String,
        values: String,
    },
    /// One side of the facet split has no rows.
    #[error("{0}")]
    EmptyFacet(String),
    /// The target cannot be collapsed into positive / negative.
    #[error("{0}")]
    Label(String),
    /// A configuration mistake (threshold on text, …).
    #[error("{0}")]
    Config(String),
    /// The model could not predict on the data.
    #[error("model: {0}")]
    Model(#[from] learn::LearnError),
}
