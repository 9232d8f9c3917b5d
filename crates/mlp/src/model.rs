use linear::{sigmoid, softmax};
use std::cell::RefCell;

use serde::{Deserialize, Serialize};

use crate::net::Dense;
use crate::{MlpError, Task};

/// Per-epoch training record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Mean training loss over the epoch's minibatches (with dropout active).
    pub train_loss: f64,
    /// Validation loss after the epoch (`None` without a validation split).
    pub valid_loss: Option<f64>,
}

/// A trained multilayer perceptron.
///
/// Losses in the history are per row: half squared error on the standardised target for
/// regression, log loss for classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModel")]
pub struct MlpModel {
    pub(crate) task: Task,
    pub(crate) n_features: usize,
    pub(crate) layers: Vec<Dense>,
    /// Regression targets are standardised for training: prediction = output · std + mean.
    pub(crate) target_mean: f64,
    pub(crate) target_std: f64,
    pub(crate) best_epoch: usize,
    pub(crate) history: Vec<EpochStats>,
    #[serde(skip)]
    pub(crate) max_width: usize,
}

#[derive(Deserialize)]
struct RawModel {
    task: Task,
    n_features: usize,
    layers: Vec<Dense>,
    target_mean: f64,
    target_std: f64,
    best_epoch: usize,
    history: Vec<EpochStats>,
}

impl TryFrom<RawModel> for MlpModel {
    type Error = String;
    fn try_from(r: RawModel) -> Result<Self, String> {
        let k = r.task.n_outputs();
        if k == 0 || matches!(r.task, Task::Multiclass { num_class } if num_class < 2) {
            return Err(format!("invalid task {:?}", r.task));
        }
        if r.n_features == 0 || r.layers.is_empty() {
            return Err("MLP model has no features or no layers".into());
        }
        let mut width = r.n_features;
        for (i, l) in r.layers.iter().enumerate() {
            if l.n_in != width
                || l.n_out == 0
                || l.w.len() != l.n_in * l.n_out
                || l.b.len() != l.n_out
            {
                return Err(format!("MLP layer {i} has inconsistent shape"));
            }
            if l.w.iter().chain(&l.b).any(|v| !v.is_finite()) {
                return Err(format!("MLP layer {i} has non-finite parameters"));
            }
            width = l.n_out;
        }
        if width != k {
            return Err(format!(
                "MLP output width {width} does not match the task's {k} outputs"
            ));
        }
        if !(r.target_mean.is_finite() && r.target_std.is_finite() && r.target_std > 0.0) {
            return Err("MLP model has an invalid target scaling".into());
        }
        Ok(MlpModel::new(
            r.task,
            r.n_features,
            r.layers,
            r.target_mean,
            r.target_std,
            r.best_epoch,
            r.history,
        ))
    }
}

thread_local! {
    /// Reused activation buffers for single-row prediction (grown once per thread).
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

impl MlpModel {
    pub(crate) fn new(
        task: Task,
        n_features: usize,
        layers: Vec<Dense>,
        target_mean: f64,
        target_std: f64,
        best_epoch: usize,
        history: Vec<EpochStats>,
    ) -> Self {
        let max_width = layers.iter().map(|l| l.n_out).max().unwrap_or(0);
        MlpModel {
            task,
            n_features,
            layers,
            target_mean,
            target_std,
            best_epoch,
            history,
            max_width,
        }
    }

    /// The task the model was trained for.
    pub fn task(&self) -> Task {
        self.task
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of outputs of [`predict_row`](Self::predict_row): 1 for regression and binary,
    /// `num_class` for multiclass.
    pub fn n_outputs(&self) -> usize {
        self.task.n_outputs()
    }

    /// The layers, input to output (all hidden layers use ReLU).
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// Number of epochs trained (early stopping may end before `max_epochs`).
    pub fn epochs_trained(&self) -> usize {
        self.history.len()
    }

    /// 1-based epoch whose weights were kept (the best validation loss; the last epoch
    /// without validation).
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// Loss history, one entry per epoch.
    pub fn history(&self) -> &[EpochStats] {
        &self.history
    }

    /// Training loss per epoch (one point per epoch trained): the mean over the epoch's
    /// minibatches, with dropout active, as Keras reports it.
    pub fn train_losses(&self) -> Vec<f64> {
        self.history.iter().map(|e| e.train_loss).collect()
    }

    /// Validation loss after each epoch (one point per epoch trained), on the held-out
    /// validation fraction; empty without one.
    pub fn valid_losses(&self) -> Vec<f64> {
        self.history.iter().filter_map(|e| e.valid_loss).collect()
    }

    /// Name of the loss in [`history`](Self::history): `cross_entropy` (log loss) for
    /// classification, `half_squared_error_standardised` (half the squared error on the
    /// standardised target) for regression.
    pub fn loss_name(&self) -> &'static str {
        match self.task {
            Task::Regression => "half_squared_error_standardised",
            Task::Binary | Task::Multiclass { .. } => "cross_entropy",
        }
    }

    /// Raw outputs (before sigmoid / softmax / target de-standardisation) of one row,
    /// `row` and `out` already checked.
    #[inline]
    fn raw_unchecked(&self, row: &[f64], out: &mut [f64], scratch: &mut [f64]) {
        let (a, b) = scratch.split_at_mut(self.max_width);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            let (src, dst): (&[f64], &mut [f64]) = match (i, i % 2) {
                (0, _) => (row, &mut a[..]),
                (_, 1) => (&a[..n_in], &mut b[..]),
                _ => (&b[..n_in], &mut a[..]),
            };
            if i == last {
                layer.forward_row(src, out);
            } else {
                let dst = &mut dst[..n_out];
                layer.forward_row(src, dst);
                for v in dst.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        }
    }

    /// Prediction for one row into `out` (`n_outputs()` long): the value for regression,
    /// P(class 1) for binary, class probabilities for multiclass.
    ///
    /// Allocation-free after the first call on a thread (activations live in a reused
    /// thread-local buffer).
    pub fn predict_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), MlpError> {
        if row.len() != self.n_features {
            return Err(MlpError::RowLength {
                expected: self.n_features,
                got: row.len(),
            });
        }
        if out.len() != self.n_outputs() {
            return Err(MlpError::OutputLength {
                expected: self.n_outputs(),
                got: out.len(),
            });
        }
        if let Some((column, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(MlpError::NonFinite {
                row: 0,
                column,
                value,
            });
        }
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => {
                if s.len() < 2 * self.max_width {
                    s.resize(2 * self.max_width, 0.0);
                }
                self.raw_unchecked(row, out, &mut s);
            }
            // Unreachable in practice (no re-entrancy), but never panic.
            Err(_) => self.raw_unchecked(row, out, &mut vec![0.0; 2 * self.max_width]),
        });
        self.transform(out);
        Ok(())
    }

    #[inline]
    pub(crate) fn transform(&self, out: &mut [f64]) {
        match self.task {
            Task::Regression => out[0] = out[0] * self.target_std + self.target_mean,
            Task::Binary => out[0] = sigmoid(out[0]),
            Task::Multiclass { .. } => softmax(out),
        }
    }

    /// Predictions for `n` rows of a row-major matrix: `n × n_outputs()` values, row-major.
    pub fn predict(&self, x: &[f64], n: usize) -> Result<Vec<f64>, MlpError> {
        let d = self.n_features;
        let expected = n.checked_mul(d).ok_or(MlpError::DataLength {
            expected: usize::MAX,
            got: x.len(),
        })?;
        if x.len() != expected {
            return Err(MlpError::DataLength {
                expected,
                got: x.len(),
            });
        }
        let k = self.n_outputs();
        let mut out = vec![0.0; n * k];
        for (i, (row, o)) in x.chunks_exact(d).zip(out.chunks_exact_mut(k)).enumerate() {
            self.predict_row(row, o).map_err(|e| match e {
                MlpError::NonFinite { column, value, .. } => MlpError::NonFinite {
                    row: i,
                    column,
                    value,
                },
                e => e,
            })?;
        }
        Ok(out)
    }
}
