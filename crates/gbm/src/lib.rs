//! # gbm — gradient-boosted decision trees in pure Rust
//!
//! A histogram-based, leaf-wise GBDT learner in the style of LightGBM: quantile binning,
//! best-first growth, histogram subtraction, native missing-value directions and native
//! categorical splits, L2/L1/Huber regression, binary and multiclass (softmax) objectives,
//! early stopping, feature importance and exact TreeSHAP. Results are deterministic for a
//! given seed whatever the thread count.
//!
//! [`forest`] grows random forests and extra trees with the same tree learner.
//!
//! ```
//! use gbm::{train, Column, Dataset, GbmParams, Objective};
//! let x: Vec<f64> = (0..200).map(|i| i as f64).collect();
//! let y: Vec<f64> = x.iter().map(|v| if *v < 100.0 { 0.0 } else { 1.0 }).collect();
//! let data = Dataset::new(vec![Column::Numeric(x)]).unwrap();
//! let params = GbmParams { objective: Objective::Binary, n_estimators: 20, num_threads: 1, ..Default::default() };
//! let model = train(&params, &data, &y, None, None).unwrap();
//! let p = model.predict_one(&[150.0]).unwrap();
//! assert!(p > 0.9);
//!
//! use gbm::{train_forest, ForestParams, ForestTask};
//! let rf = ForestParams { n_estimators: 20, num_threads: 1, ..ForestParams::random_forest(ForestTask::Binary) };
//! let forest = train_forest(&rf, &data, &y, None).unwrap();
//! assert!(forest.predict_one(&[150.0]).unwrap() > 0.9);
//! ```

mod binning;
mod data;
mod error;
mod flat;
pub mod forest;
mod learner;
mod model;
mod objective;
mod params;
mod serde_floats;
mod split;
mod train;
mod tree;

#[cfg(test)]
mod forest_tests;
#[cfg(test)]
mod tests;

pub use data::{Column, Dataset, FeatureKind, MAX_CATEGORY_CODE};
pub use error::GbmError;
pub use forest::{ForestModel, ForestParams, ForestTask, train_forest};
pub use model::{GbmModel, ImportanceType};
pub use objective::{Objective, softmax};
pub use params::GbmParams;
pub use train::{Progress, Validation, train, train_with_progress};
pub use tree::Tree;
