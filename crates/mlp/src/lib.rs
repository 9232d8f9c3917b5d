//! # mlp — a small multilayer perceptron for tabular data
//!
//! Fully connected ReLU network (default hidden layers `[64, 32]`), optional inverted dropout,
//! linear / sigmoid / softmax output for regression / binary / multiclass, trained with AdamW
//! on shuffled minibatches, with early stopping on a held-out validation fraction (the best
//! epoch's weights are kept). Input is the same dense, already-encoded, standardised row-major
//! matrix as the `linear` crate takes; [`Task`] is shared with it.
//!
//! * Deterministic for a given `seed`: weight init, the validation split, epoch shuffles and
//!   dropout masks all come from one SplitMix64 stream; there is no threading.
//! * Regression targets are standardised internally (mean / std stored in the model).
//! * Batch matrix products are plain row-major loops in i-k-j order (contiguous inner loop,
//!   zero activations skipped); no BLAS.
//! * [`MlpModel::predict_row`] is allocation-free after its first call on a thread.
//!
//! ## Why not candle or burn
//!
//! The issue suggested candle or burn on CPU. Both are general tensor frameworks: candle-core
//! alone brings `gemm`, `half`, `safetensors`, `rayon`, `zip`, … and burn with its ndarray
//! backend several dozen crates more, paid in compile time on every run of a 2-core CI, for a
//! network of two small dense layers. This crate depends on `serde`, `thiserror` and the
//! workspace's `linear` (for [`Task`]) only.
//!
//! ## Real data
//!
//! `tests/real_data.rs` and `examples/california.rs` use the repository's `datasets/` (README split,
//! numeric columns only, rows with a missing value dropped, standardised with train
//! statistics); see this crate's README for the numbers.
//!
//! ```
//! use mlp::{fit, MlpParams, Task};
//! // XOR.
//! let x = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0].repeat(16);
//! let y = [0.0, 1.0, 1.0, 0.0].repeat(16);
//! let params = MlpParams {
//!     hidden_layers: vec![8],
//!     learning_rate: 0.02,
//!     batch_size: 16,
//!     max_epochs: 200,
//!     validation_fraction: 0.0,
//!     ..Default::default()
//! };
//! let model = fit(&params, Task::Binary, &x, 64, 2, &y).unwrap();
//! let mut p = [0.0];
//! model.predict_row(&[1.0, 0.0], &mut p).unwrap();
//! assert!(p[0] > 0.9);
//! ```

mod error;
mod model;
mod net;
mod rng;
mod train;

pub use error::MlpError;
pub use linear::Task;
pub use model::{EpochStats, MlpModel};
pub use net::Dense;
pub use train::fit;

use serde::{Deserialize, Serialize};

/// Hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpParams {
    /// Widths of the hidden ReLU layers (may be empty: a linear / logistic model). Default `[64, 32]`.
    pub hidden_layers: Vec<usize>,
    /// Dropout probability on hidden activations during training, in `[0, 1)`. Default 0.
    pub dropout: f64,
    /// Adam learning rate (> 0). Default 1e-3.
    pub learning_rate: f64,
    /// Minibatch size (≥ 1). Default 128.
    pub batch_size: usize,
    /// Maximum number of epochs (≥ 1). Default 200.
    pub max_epochs: usize,
    /// Fraction of rows held out for early stopping, in `[0, 1)`; 0 disables early stopping
    /// (as does a fraction that rounds to no rows). Default 0.1.
    pub validation_fraction: f64,
    /// Stop after this many epochs without a lower validation loss (≥ 1). Default 10.
    pub patience: usize,
    /// Decoupled (AdamW) weight decay on weights, not biases (≥ 0). Default 1e-4.
    pub weight_decay: f64,
    /// Seed for initialisation, the validation split, shuffling and dropout. Default 0.
    pub seed: u64,
}

impl Default for MlpParams {
    fn default() -> Self {
        MlpParams {
            hidden_layers: vec![64, 32],
            dropout: 0.0,
            learning_rate: 1e-3,
            batch_size: 128,
            max_epochs: 200,
            validation_fraction: 0.1,
            patience: 10,
            weight_decay: 1e-4,
            seed: 0,
        }
    }
}

impl MlpParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), MlpError> {
        let bad = |name, value: String, expected| {
            Err(MlpError::InvalidParam {
                name,
                value,
                expected,
            })
        };
        if self.hidden_layers.contains(&0) {
            return bad(
                "hidden_layers",
                format!("{:?}", self.hidden_layers),
                "every width must be ≥ 1",
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", self.dropout.to_string(), "must be in [0, 1)");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                self.learning_rate.to_string(),
                "must be finite and > 0",
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "must be ≥ 1");
        }
        if self.max_epochs == 0 {
            return bad("max_epochs", "0".into(), "must be ≥ 1");
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return bad(
                "validation_fraction",
                self.validation_fraction.to_string(),
                "must be in [0, 1)",
            );
        }
        if self.patience == 0 {
            return bad("patience", "0".into(), "must be ≥ 1");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "must be finite and ≥ 0",
            );
        }
        Ok(())
    }
}
