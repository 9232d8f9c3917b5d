//! # linear — regularised linear and logistic regression
//!
//! Ridge / Lasso / Elastic-net linear regression and L2 / L1 / elastic-net regularised logistic
//! regression (binary, and multinomial softmax), fitted on a dense, already-encoded row-major
//! matrix. Deterministic: no randomness anywhere.
//!
//! ## Objective
//!
//! One convention for every task, the one scikit-learn uses for `Ridge` and
//! `LogisticRegression` (loss *summed* over rows, intercept not penalised):
//!
//! ```text
//! minimise  Σᵢ loss(yᵢ, xᵢ·W + b)  +  alpha · ( l1_ratio·‖W‖₁ + ½(1 − l1_ratio)·‖W‖² )
//! ```
//!
//! with `loss = ½(y − ŷ)²` for regression, log loss for binary (sigmoid) and multinomial
//! (softmax over one coefficient row per class) classification. Hence:
//!
//! | ours | scikit-learn |
//! |---|---|
//! | regression, `l1_ratio = 0` | `Ridge(alpha=alpha)` |
//! | regression, `l1_ratio = 1` | `Lasso(alpha=alpha / n)` |
//! | regression, `0 < l1_ratio < 1` | `ElasticNet(alpha=alpha / n, l1_ratio=l1_ratio)` |
//! | classification | `LogisticRegression(C=1/alpha, l1_ratio=l1_ratio)` |
//!
//! The default `alpha = 1.0` therefore matches scikit-learn's `Ridge()` and
//! `LogisticRegression()` defaults.
//!
//! ## Solvers
//!
//! * Ridge (`l1_ratio = 0`, regression): exact Cholesky solve of the centred normal equations
//!   (falls back to coordinate descent if the Gram matrix is singular, e.g. `alpha = 0` with
//!   collinear columns).
//! * Lasso / elastic net (regression): cyclic coordinate descent on centred columns; stops
//!   when the largest `|Δw_j|·‖x_j‖` of a sweep is `≤ tol·‖y − ȳ‖`.
//! * Logistic, `l1_ratio = 0`: L-BFGS (memory 10, Armijo backtracking); stops when the
//!   largest gradient component divided by `n` is `≤ tol`.
//! * Logistic, `l1_ratio > 0`: FISTA with backtracking and function-value restart; stops when
//!   the gradient mapping divided by `n` is `≤ tol`.
//!
//! Each solve runs at most `max_iter` iterations (sweeps for coordinate descent);
//! [`LinearModel::converged`] reports whether the tolerance was met (a model is returned
//! either way, as scikit-learn does with a warning). With `alpha = 0` on separable classes,
//! or a multiclass task whose training rows lack one of the classes, the optimum is at
//! infinity and the solver stops at `max_iter`.
//!
//! ## Why our own solvers
//!
//! The issue allowed linfa. `linfa-linear` / `linfa-logistic` bring `linfa`, `ndarray`,
//! `argmin` and their transitive dependencies, all compiled on every run of a 2-core CI, for three
//! well-understood convex solvers that fit in a few hundred lines here and are pinned to
//! scikit-learn to ~1e-8. (Compile times not measured; this crate depends on `serde` and
//! `thiserror` only and builds in about a second on top of them.)
//!
//! ## Reference checks
//!
//! `tests/reference.rs` pins Ridge, Lasso, ElasticNet and LogisticRegression (binary L2,
//! binary L1, multinomial L2) coefficients and probabilities to values produced by
//! scikit-learn 1.9.1 (`tests/reference.py`) within 1e-4 (they agree to better than 1e-8).
//! `tests/real_data.rs` compares with scikit-learn on the repository's `datasets/` (numeric columns
//! only, rows with a missing value dropped, standardised with train statistics, README split):
//!
//! | dataset (train / test rows) | metric | scikit-learn | this crate |
//! |---|---|---|---|
//! | california_housing, 8 numeric cols (16338 / 4095) | R² `Ridge()` | 0.633154 | 0.633154 |
//! | penguins, 5 numeric cols (273 / 69) | accuracy `LogisticRegression()` | 0.985507 (68/69) | 0.985507 (68/69) |
//!
//! ```
//! use linear::{fit, LinearParams, Task};
//! // y = 2·x₀ − x₁ + 1
//! let x = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0];
//! let y = [1.0, 3.0, 0.0, 2.0, 4.0];
//! let params = LinearParams { alpha: 1e-9, ..Default::default() };
//! let model = fit(&params, Task::Regression, &x, 5, 2, &y).unwrap();
//! let mut out = [0.0];
//! model.predict_row(&[3.0, 0.0], &mut out).unwrap();
//! assert!((out[0] - 7.0).abs() < 1e-6);
//! ```

mod error;
mod model;
mod solver;

pub use error::LinearError;
pub use model::{LinearModel, fit, sigmoid, softmax};

use serde::{Deserialize, Serialize};

/// The learning task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    /// Real-valued target.
    Regression,
    /// Targets 0.0 / 1.0; the model outputs P(class 1).
    Binary,
    /// Targets are class indices `0..num_class` as f64; the model outputs class probabilities.
    Multiclass { num_class: usize },
}

impl Task {
    /// Number of model outputs: 1 for regression and binary, `num_class` for multiclass.
    pub fn n_outputs(&self) -> usize {
        match self {
            Task::Regression | Task::Binary => 1,
            Task::Multiclass { num_class } => *num_class,
        }
    }

    /// Number of classes (`None` for regression).
    pub fn num_class(&self) -> Option<usize> {
        match self {
            Task::Regression => None,
            Task::Binary => Some(2),
            Task::Multiclass { num_class } => Some(*num_class),
        }
    }
}

/// Hyper-parameters. See the crate docs for the exact objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinearParams {
    /// Regularisation strength (≥ 0). Default 1.0 (scikit-learn `Ridge()` / `LogisticRegression()`).
    pub alpha: f64,
    /// Mix between L1 and L2 in `[0, 1]`: 0 = pure L2 (ridge), 1 = pure L1 (lasso). Default 0.
    pub l1_ratio: f64,
    /// Fit an unpenalised intercept. Default true.
    pub fit_intercept: bool,
    /// Maximum solver iterations (≥ 1). Default 1000.
    pub max_iter: usize,
    /// Convergence tolerance (> 0). Default 1e-4.
    pub tol: f64,
}

impl Default for LinearParams {
    fn default() -> Self {
        LinearParams {
            alpha: 1.0,
            l1_ratio: 0.0,
            fit_intercept: true,
            max_iter: 1000,
            tol: 1e-4,
        }
    }
}

impl LinearParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), LinearError> {
        let bad = |name, value: String, expected| {
            Err(LinearError::InvalidParam {
                name,
                value,
                expected,
            })
        };
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return bad("alpha", self.alpha.to_string(), "must be finite and ≥ 0");
        }
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return bad("l1_ratio", self.l1_ratio.to_string(), "must be in [0, 1]");
        }
        if self.max_iter == 0 {
            return bad("max_iter", "0".into(), "must be ≥ 1");
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return bad("tol", self.tol.to_string(), "must be finite and > 0");
        }
        Ok(())
    }
}
