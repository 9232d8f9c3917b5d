//! The trained model: prediction, feature importance, TreeSHAP.

use crate::flat::FlatCache;
use crate::tree::ShapScratch;
use crate::{Dataset, FeatureKind, GbmError, GbmParams, Objective, Tree};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which feature importance to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportanceType {
    /// Total gain of the splits on the feature.
    Gain,
    /// Number of splits on the feature.
    Split,
}

/// A trained gradient-boosted tree ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbmModel {
    /// The objective the model was trained with.
    pub objective: Objective,
    /// Kinds of the input features, in order.
    pub feature_kinds: Vec<FeatureKind>,
    /// Initial raw score per output.
    #[serde(with = "crate::serde_floats")]
    pub init_score: Vec<f64>,
    /// Trees, iteration-major: tree `i * k + c` is iteration `i`'s tree for output `c`.
    pub trees: Vec<Tree>,
    /// With early stopping: the kept (best) number of iterations.
    pub best_iteration: Option<usize>,
    /// Validation loss after each iteration (empty without a validation set).
    #[serde(with = "crate::serde_floats")]
    pub valid_history: Vec<f64>,
    /// Training loss (the same measure as `valid_history`, over every training row) after each
    /// iteration, with [`GbmParams::training_metric`]; otherwise empty and not serialised.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::serde_floats"
    )]
    pub train_history: Vec<f64>,
    /// Parameters used for training.
    pub params: GbmParams,
    /// The trees packed for prediction, built on first use.
    #[serde(skip)]
    pub(crate) flat: FlatCache,
}

impl GbmModel {
    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.feature_kinds.len()
    }

    /// Raw outputs per row (1, or the number of classes).
    pub fn n_outputs(&self) -> usize {
        self.init_score.len()
    }

    /// Number of boosting iterations in the model.
    pub fn n_iterations(&self) -> usize {
        self.trees.len() / self.n_outputs().max(1)
    }

    /// Raw scores of one row (`row` in the single-row convention: NaN = missing,
    /// categorical codes as f64) into `out` (`n_outputs()` long). Allocation-free once the first
    /// prediction has packed the trees for prediction.
    /// Extra trailing values in `row` are ignored; a short row is an error.
    #[inline]
    pub fn predict_raw_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), GbmError> {
        let k = self.n_outputs();
        if row.len() < self.n_features() {
            return Err(GbmError::FeatureCountMismatch {
                expected: self.n_features(),
                got: row.len(),
            });
        }
        if out.len() != k {
            return Err(GbmError::OutputLength {
                expected: k,
                got: out.len(),
            });
        }
        out.copy_from_slice(&self.init_score);
        let flat = self.flat.get(&self.trees);
        if k == 1 {
            let mut s = 0.0;
            flat.for_each_tree(row, |_, v| s += v);
            out[0] += s;
        } else {
            flat.for_each_tree(row, |i, v| out[i % k] += v);
        }
        Ok(())
    }

    /// Predictions of one row into `out`: the value (regression), P(class 1) (binary) or
    /// class probabilities (multiclass). Allocation-free after the first call.
    #[inline]
    pub fn predict_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), GbmError> {
        self.predict_raw_row(row, out)?;
        self.objective.transform(out);
        Ok(())
    }

    /// Single-output convenience: the prediction of one row for regression or binary models
    /// (for multiclass, the probability of class 0).
    #[inline]
    pub fn predict_one(&self, row: &[f64]) -> Result<f64, GbmError> {
        let k = self.n_outputs();
        if k == 1 {
            let mut o = [0.0];
            self.predict_row(row, &mut o)?;
            Ok(o[0])
        } else {
            let mut v = vec![0.0; k];
            self.predict_row(row, &mut v)?;
            Ok(v[0])
        }
    }

    pub(crate) fn check_data(&self, data: &Dataset) -> Result<(), GbmError> {
        if data.n_features() != self.n_features() {
            return Err(GbmError::FeatureCountMismatch {
                expected: self.n_features(),
                got: data.n_features(),
            });
        }
        for (i, (c, &k)) in data.columns().iter().zip(&self.feature_kinds).enumerate() {
            if c.kind() != k {
                return Err(GbmError::FeatureKindMismatch {
                    feature: i,
                    expected: k,
                    got: c.kind(),
                });
            }
        }
        Ok(())
    }

    fn map_rows(
        &self,
        data: &Dataset,
        width: usize,
        f: impl Fn(&[f64], &mut [f64]) + Sync,
    ) -> Vec<f64> {
        let n = data.n_rows();
        let nf = self.n_features();
        let mut out = vec![0.0; n * width];
        const CHUNK: usize = 256;
        let work = |(ci, chunk): (usize, &mut [f64])| {
            let mut row = vec![0.0; nf];
            for (j, o) in chunk.chunks_mut(width).enumerate() {
                data.row_into_unchecked(ci * CHUNK + j, &mut row);
                f(&row, o);
            }
        };
        if n * self.trees.len() > 200_000 && rayon::current_num_threads() > 1 {
            out.par_chunks_mut(CHUNK * width).enumerate().for_each(work);
        } else {
            out.chunks_mut(CHUNK * width).enumerate().for_each(work);
        }
        out
    }

    /// Raw scores for every row, row-major (`n_rows * n_outputs()`).
    pub fn predict_raw(&self, data: &Dataset) -> Result<Vec<f64>, GbmError> {
        self.check_data(data)?;
        let k = self.n_outputs();
        Ok(self.map_rows(data, k, |row, o| {
            // lengths are right by construction
            let _ = self.predict_raw_row(row, o);
        }))
    }

    /// Predictions for every row, row-major (`n_rows * n_outputs()`): values,
    /// P(class 1) or class probabilities.
    pub fn predict(&self, data: &Dataset) -> Result<Vec<f64>, GbmError> {
        self.check_data(data)?;
        let k = self.n_outputs();
        Ok(self.map_rows(data, k, |row, o| {
            let _ = self.predict_row(row, o);
        }))
    }

    /// TreeSHAP contributions of one row: for each output, `n_features() + 1` values
    /// (the last is the expected value incl. the initial score). They sum to the raw score.
    pub fn predict_contrib_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), GbmError> {
        let nf = self.n_features();
        let k = self.n_outputs();
        if row.len() < nf {
            return Err(GbmError::FeatureCountMismatch {
                expected: nf,
                got: row.len(),
            });
        }
        if out.len() != k * (nf + 1) {
            return Err(GbmError::OutputLength {
                expected: k * (nf + 1),
                got: out.len(),
            });
        }
        out.fill(0.0);
        for c in 0..k {
            out[c * (nf + 1) + nf] = self.init_score[c];
        }
        let mut scratch = ShapScratch::default();
        for (i, t) in self.trees.iter().enumerate() {
            let c = i % k;
            t.shap_into(
                row,
                &mut out[c * (nf + 1)..(c + 1) * (nf + 1)],
                &mut scratch,
            );
        }
        Ok(())
    }

    /// TreeSHAP contributions for every row: row-major, `n_outputs() * (n_features() + 1)`
    /// values per row.
    pub fn predict_contrib(&self, data: &Dataset) -> Result<Vec<f64>, GbmError> {
        self.check_data(data)?;
        let w = self.n_outputs() * (self.n_features() + 1);
        Ok(self.map_rows(data, w, |row, o| {
            let _ = self.predict_contrib_row(row, o);
        }))
    }

    /// Feature importance (one value per feature).
    pub fn feature_importance(&self, kind: ImportanceType) -> Vec<f64> {
        let mut imp = vec![0.0; self.n_features()];
        for t in &self.trees {
            for (f, g) in t.splits() {
                if let Some(v) = imp.get_mut(f) {
                    *v += match kind {
                        ImportanceType::Gain => g,
                        ImportanceType::Split => 1.0,
                    };
                }
            }
        }
        imp
    }
}
