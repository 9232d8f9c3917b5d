//! Hyper-parameters (names and defaults follow LightGBM).

use crate::{GbmError, Objective};
use serde::{Deserialize, Serialize};

/// Training parameters. `Default` gives LightGBM's defaults with 100 trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbmParams {
    /// Loss function.
    pub objective: Objective,
    /// Number of boosting iterations (trees per output).
    pub n_estimators: usize,
    /// Shrinkage applied to every tree.
    pub learning_rate: f64,
    /// Maximum number of leaves per tree (leaf-wise growth).
    pub num_leaves: usize,
    /// Maximum tree depth; -1 (or any value <= 0) means unlimited.
    pub max_depth: i32,
    /// Maximum number of bins per feature (excluding the missing bin); <= 255 uses `u8` bins.
    pub max_bin: usize,
    /// Minimum number of samples per bin when binning.
    pub min_data_in_bin: usize,
    /// L1 regularisation of leaf values.
    pub lambda_l1: f64,
    /// L2 regularisation of leaf values.
    pub lambda_l2: f64,
    /// Minimum sum of hessians in a leaf.
    pub min_child_weight: f64,
    /// Minimum number of samples in a leaf.
    pub min_data_in_leaf: usize,
    /// Minimum gain to make a split.
    pub min_split_gain: f64,
    /// Fraction of rows used per bagging round (1.0 = no bagging).
    pub bagging_fraction: f64,
    /// Resample the bag every `bagging_freq` iterations (0 = no bagging).
    pub bagging_freq: usize,
    /// Fraction of features considered per tree.
    pub feature_fraction: f64,
    /// Smoothing added to category hessians when ordering categories.
    pub cat_smooth: f64,
    /// Extra L2 regularisation for many-category splits.
    pub cat_l2: f64,
    /// Maximum number of categories on the left of a many-category split.
    pub max_cat_threshold: usize,
    /// Minimum number of samples per group of categories in a split scan.
    pub min_data_per_group: usize,
    /// Use one-vs-rest splits when a feature has at most this many categories.
    pub max_cat_to_onehot: usize,
    /// Stop when the validation loss has not improved for this many iterations.
    pub early_stopping_rounds: Option<usize>,
    /// Seed for bagging and feature subsampling.
    pub seed: u64,
    /// Number of worker threads; 0 = all cores. Results do not depend on it.
    pub num_threads: usize,
    /// Record the training loss after every iteration in [`GbmModel::train_history`]
    /// (LightGBM's `is_provide_training_metric`). Off by default. When on, each iteration's
    /// gradient pass also sums the loss of the scores it reads (the loss after the previous
    /// iteration; a logarithm per row, from the probabilities the gradients need), and one
    /// pass over the scores after the last iteration adds its loss: no pass over the data.
    /// Left out of the serialised parameters when off.
    ///
    /// [`GbmModel::train_history`]: crate::GbmModel::train_history
    #[serde(skip_serializing_if = "is_false")]
    pub training_metric: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for GbmParams {
    fn default() -> Self {
        Self {
            objective: Objective::L2,
            n_estimators: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: -1,
            max_bin: 255,
            min_data_in_bin: 3,
            lambda_l1: 0.0,
            lambda_l2: 0.0,
            min_child_weight: 1e-3,
            min_data_in_leaf: 20,
            min_split_gain: 0.0,
            bagging_fraction: 1.0,
            bagging_freq: 0,
            feature_fraction: 1.0,
            cat_smooth: 10.0,
            cat_l2: 10.0,
            max_cat_threshold: 32,
            min_data_per_group: 100,
            max_cat_to_onehot: 4,
            early_stopping_rounds: None,
            seed: 0,
            num_threads: 0,
            training_metric: false,
        }
    }
}

fn bad(name: &'static str, reason: impl Into<String>) -> GbmError {
    GbmError::InvalidParam {
        name,
        reason: reason.into(),
    }
}

impl GbmParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), GbmError> {
        self.objective.validate()?;
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(bad("learning_rate", "must be positive and finite"));
        }
        if self.num_leaves < 2 {
            return Err(bad("num_leaves", "must be at least 2"));
        }
        if !(2..=65535).contains(&self.max_bin) {
            return Err(bad("max_bin", "must be between 2 and 65535"));
        }
        for (name, v) in [
            ("lambda_l1", self.lambda_l1),
            ("lambda_l2", self.lambda_l2),
            ("min_child_weight", self.min_child_weight),
            ("min_split_gain", self.min_split_gain),
            ("cat_smooth", self.cat_smooth),
            ("cat_l2", self.cat_l2),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(bad(
                    name,
                    format!("must be non-negative and finite, got {v}"),
                ));
            }
        }
        if !(self.bagging_fraction > 0.0 && self.bagging_fraction <= 1.0) {
            return Err(bad("bagging_fraction", "must be in (0, 1]"));
        }
        if !(self.feature_fraction > 0.0 && self.feature_fraction <= 1.0) {
            return Err(bad("feature_fraction", "must be in (0, 1]"));
        }
        if self.max_cat_threshold == 0 {
            return Err(bad("max_cat_threshold", "must be at least 1"));
        }
        if self.early_stopping_rounds == Some(0) {
            return Err(bad("early_stopping_rounds", "must be at least 1"));
        }
        Ok(())
    }
}
