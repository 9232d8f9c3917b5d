//! Random forests and extra trees, grown with the boosting crate's histogram tree learner.
//!
//! Every tree fits its target by variance reduction: the learner gets gradient
//! `-(y - ȳ)·count` and hessian `count` (a zero-regularised Newton step), so a leaf's value
//! is the (bootstrap-weighted) mean target of its rows and a split's gain is the decrease
//! of the weighted sum of squared errors. For classification the target is a class
//! indicator, whose variance reduction is the Gini decrease of "class c vs rest".

use crate::binning::{BinCol, BinMapper};
use crate::learner::{NodeSampling, TreeLearner};
use crate::split::SplitConfig;
use crate::train::{Rng, check_weights};
use crate::tree::ShapScratch;
use crate::{Dataset, FeatureKind, GbmError, ImportanceType, Objective, Tree};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a forest predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForestTask {
    /// Real-valued target; the prediction is the mean of the trees.
    Regression,
    /// Targets 0/1; the prediction is P(class 1).
    Binary,
    /// Targets `0..num_class`; the prediction is one probability per class.
    Multiclass { num_class: usize },
}

impl ForestTask {
    fn objective(self) -> Objective {
        match self {
            ForestTask::Regression => Objective::L2,
            ForestTask::Binary => Objective::Binary,
            ForestTask::Multiclass { num_class } => Objective::Multiclass { num_class },
        }
    }

    /// Values per prediction: 1 (regression, binary) or the number of classes.
    pub fn n_outputs(self) -> usize {
        self.objective().num_outputs()
    }

    /// True for binary and multiclass.
    pub fn is_classification(self) -> bool {
        !matches!(self, ForestTask::Regression)
    }
}

/// Forest hyper-parameters; defaults follow scikit-learn's `RandomForest*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForestParams {
    /// Regression, binary or multiclass.
    pub task: ForestTask,
    /// Number of trees (multiclass: number of trees per class).
    pub n_estimators: usize,
    /// Fraction of the features tried at each split; `None` = `sqrt(d)/d` for
    /// classification and 1.0 for regression (scikit-learn's defaults). At least one
    /// feature; features constant in the node do not count.
    pub max_features: Option<f64>,
    /// Fit every tree on a bootstrap sample (with replacement) of the rows.
    pub bootstrap: bool,
    /// Extra trees: one random threshold (categorical: random category subset) per
    /// candidate feature instead of the best one.
    pub extra_trees: bool,
    /// Maximum leaves per tree (best-first growth); 0 = unlimited (grown depth-first
    /// until leaves are pure or `min_data_in_leaf` / `max_depth` stop them).
    pub num_leaves: usize,
    /// Maximum depth; <= 0 = unlimited.
    pub max_depth: i32,
    /// Minimum number of (distinct) training rows per leaf.
    pub min_data_in_leaf: usize,
    /// Maximum number of bins per feature (plus the missing bin).
    pub max_bin: usize,
    /// Minimum rows per bin when binning.
    pub min_data_in_bin: usize,
    /// Seed of bootstrap samples, feature sampling and random thresholds.
    pub seed: u64,
    /// Worker threads (trees are grown in parallel); 0 = all cores. Results do not
    /// depend on it.
    pub num_threads: usize,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            task: ForestTask::Regression,
            n_estimators: 300,
            max_features: None,
            bootstrap: true,
            extra_trees: false,
            num_leaves: 0,
            max_depth: -1,
            min_data_in_leaf: 1,
            max_bin: 255,
            min_data_in_bin: 3,
            seed: 0,
            num_threads: 0,
        }
    }
}

fn bad(name: &'static str, reason: impl Into<String>) -> GbmError {
    GbmError::InvalidParam {
        name,
        reason: reason.into(),
    }
}

impl ForestParams {
    /// A random forest (bootstrap, best splits) for `task` with default settings.
    pub fn random_forest(task: ForestTask) -> Self {
        Self {
            task,
            ..Default::default()
        }
    }

    /// Extremely randomised trees (no bootstrap, random thresholds) for `task`.
    pub fn extra_trees(task: ForestTask) -> Self {
        Self {
            task,
            bootstrap: false,
            extra_trees: true,
            ..Default::default()
        }
    }

    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), GbmError> {
        self.task.objective().validate()?;
        if self.n_estimators == 0 {
            return Err(bad("n_estimators", "must be at least 1"));
        }
        if let Some(f) = self.max_features
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(bad("max_features", format!("must be in (0, 1], got {f}")));
        }
        if self.num_leaves == 1 {
            return Err(bad("num_leaves", "must be 0 (unlimited) or at least 2"));
        }
        if !(2..=65535).contains(&self.max_bin) {
            return Err(bad("max_bin", "must be between 2 and 65535"));
        }
        Ok(())
    }

    /// Number of features tried per split for `n_features` features.
    pub fn features_per_split(&self, n_features: usize) -> usize {
        let d = n_features as f64;
        let frac = self
            .max_features
            .unwrap_or(if self.task.is_classification() {
                d.sqrt() / d
            } else {
                1.0
            });
        ((frac * d + 1e-9).floor() as usize).clamp(1, n_features.max(1))
    }
}

/// A trained random forest / extra-trees ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestModel {
    /// The task the model was trained for.
    pub task: ForestTask,
    /// Kinds of the input features, in order.
    pub feature_kinds: Vec<FeatureKind>,
    /// Trees, estimator-major: with `k = trees_per_estimator()`, tree `i * k + c` is
    /// estimator `i`'s tree for class `c` (multiclass) or its only tree. Leaf values are
    /// mean targets (regression) or class frequencies.
    pub trees: Vec<Tree>,
    /// Parameters used for training.
    pub params: ForestParams,
    /// The trees packed for prediction, built on first use.
    #[serde(skip)]
    pub(crate) flat: crate::flat::FlatCache,
}

fn trees_per_estimator(task: ForestTask) -> usize {
    match task {
        ForestTask::Multiclass { num_class } => num_class,
        _ => 1,
    }
}

fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

/// Trains a random forest or extra-trees model. `target` holds regression values, 0/1
/// for binary, or class indices `0..num_class` for multiclass; `weights` are optional
/// non-negative sample weights (multiplied with the bootstrap counts).
pub fn train_forest(
    params: &ForestParams,
    data: &Dataset,
    target: &[f64],
    weights: Option<&[f64]>,
) -> Result<ForestModel, GbmError> {
    params.validate()?;
    let n = data.n_rows();
    if n == 0 {
        return Err(GbmError::EmptyData);
    }
    if n > u32::MAX as usize {
        return Err(bad("data", "at most 2^32 - 1 rows are supported"));
    }
    if target.len() != n {
        return Err(GbmError::TargetLength {
            expected: n,
            got: target.len(),
        });
    }
    check_weights(weights, n)?;
    params.task.objective().validate_target(target, weights)?;
    let threads = if params.num_threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        params.num_threads
    };
    if threads == 1 {
        train_inner(params, data, target, weights, 1)
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| GbmError::ThreadPool(e.to_string()))?;
        pool.install(|| train_inner(params, data, target, weights, threads))
    }
}

/// Everything growing one estimator needs.
struct Ctx<'a> {
    params: &'a ForestParams,
    cols: &'a [BinCol],
    mappers: &'a [BinMapper],
    cfg: SplitConfig,
    usable: &'a [usize],
    y: &'a [f64],
    w: Option<&'a [f64]>,
    mean_y: f64,
    max_features: usize,
}

/// Per-worker buffers.
struct Worker<'a> {
    learner: TreeLearner<'a>,
    counts: Vec<u32>,
    bag: Vec<u32>,
    gh: Vec<[f32; 2]>,
}

impl<'a> Ctx<'a> {
    fn worker(&self) -> Worker<'a> {
        let n = self.y.len();
        let p = self.params;
        Worker {
            learner: TreeLearner::new(
                self.cols,
                self.mappers,
                self.cfg.clone(),
                if p.num_leaves == 0 {
                    usize::MAX
                } else {
                    p.num_leaves
                },
                p.max_depth,
                1,
                n,
            ),
            counts: vec![0; n],
            bag: Vec::with_capacity(n),
            gh: vec![[0.0; 2]; n],
        }
    }

    /// Grows estimator `t` (one tree, or one per class). Depends only on `t` and the seed.
    fn estimator(&self, wk: &mut Worker, t: usize) -> Vec<Tree> {
        let p = self.params;
        let n = self.y.len();
        let seed = mix(p.seed, t as u64 + 1);
        if p.bootstrap {
            wk.counts.fill(0);
            let mut rng = Rng::new(seed ^ 0xB007_5742);
            for _ in 0..n {
                wk.counts[rng.below(n)] += 1;
            }
            wk.bag.clear();
            wk.bag
                .extend((0..n as u32).filter(|&r| wk.counts[r as usize] > 0));
        } else {
            wk.counts.fill(1);
        }
        let k = trees_per_estimator(p.task);
        let mut out = Vec::with_capacity(k);
        for c in 0..k {
            let class = match p.task {
                ForestTask::Regression => None,
                ForestTask::Binary => Some(1.0),
                ForestTask::Multiclass { .. } => Some(c as f64),
            };
            for (i, o) in wk.gh.iter_mut().enumerate() {
                let h = wk.counts[i] as f64 * self.w.map_or(1.0, |w| w[i]);
                let v = match class {
                    None => self.y[i] - self.mean_y,
                    Some(cl) => {
                        if self.y[i] == cl {
                            1.0
                        } else {
                            0.0
                        }
                    }
                };
                // f32 hessians; the indicator's gradient is exactly -h or 0 (purity test)
                let hf = h as f32;
                *o = [
                    if class.is_some() {
                        -hf * v as f32
                    } else {
                        (-v * h) as f32
                    },
                    hf,
                ];
            }
            let sampling = NodeSampling {
                max_features: self.max_features,
                extra_trees: p.extra_trees,
                seed: mix(seed, c as u64 + 0x51),
                indicator_target: class.is_some(),
                depth_first: p.num_leaves == 0,
            };
            let bag = if p.bootstrap {
                Some(wk.bag.as_slice())
            } else {
                None
            };
            let mut tree = wk
                .learner
                .grow_with(&wk.gh, bag, self.usable, Some(&sampling));
            for v in tree.leaf_values_mut() {
                *v = match class {
                    None => *v + self.mean_y,
                    Some(_) => v.clamp(0.0, 1.0),
                };
            }
            out.push(tree);
        }
        out
    }
}

fn train_inner(
    params: &ForestParams,
    data: &Dataset,
    y: &[f64],
    w: Option<&[f64]>,
    threads: usize,
) -> Result<ForestModel, GbmError> {
    let n = data.n_rows();
    let nf = data.n_features();
    let crate::binning::Binned {
        mappers,
        cols,
        usable,
    } = crate::binning::bin_features(data, params.max_bin, params.min_data_in_bin, threads)?;
    let sw: f64 = w.map_or(n as f64, |w| w.iter().sum());
    let mean_y = match params.task {
        ForestTask::Regression => (0..n).map(|i| y[i] * w.map_or(1.0, |w| w[i])).sum::<f64>() / sw,
        _ => 0.0,
    };
    let cfg = SplitConfig {
        lambda_l1: 0.0,
        lambda_l2: 0.0,
        // with bootstrap counts as hessians the learner's row counts are estimates, so the
        // default "at least one row" is enforced through the hessian instead
        min_data_in_leaf: if params.min_data_in_leaf <= 1 {
            0
        } else {
            params.min_data_in_leaf
        },
        min_sum_hessian: 1e-300,
        min_split_gain: 0.0,
        // categorical splits: categories ordered by mean target, every prefix tried
        cat_smooth: 1e-9,
        cat_l2: 0.0,
        max_cat_threshold: 1 << 20,
        min_data_per_group: 0,
        max_cat_to_onehot: 0,
    };
    let ctx = Ctx {
        params,
        cols: &cols,
        mappers: &mappers,
        cfg,
        usable: &usable,
        y,
        w,
        mean_y,
        max_features: params.features_per_split(nf),
    };
    let ne = params.n_estimators;
    let workers = threads.min(ne).max(1);
    let mut per_est: Vec<Vec<Tree>> = if workers == 1 {
        let mut wk = ctx.worker();
        (0..ne).map(|t| ctx.estimator(&mut wk, t)).collect()
    } else {
        // each worker owns one learner and takes the next estimator index; every
        // estimator depends only on its index, so the result does not depend on scheduling
        let next = AtomicUsize::new(0);
        let done: Vec<Vec<(usize, Vec<Tree>)>> = (0..workers)
            .into_par_iter()
            .map(|_| {
                let mut wk = ctx.worker();
                let mut mine = Vec::new();
                loop {
                    let t = next.fetch_add(1, Ordering::Relaxed);
                    if t >= ne {
                        break;
                    }
                    mine.push((t, ctx.estimator(&mut wk, t)));
                }
                mine
            })
            .collect();
        let mut slots: Vec<Vec<Tree>> = vec![Vec::new(); ne];
        for (t, trees) in done.into_iter().flatten() {
            slots[t] = trees;
        }
        slots
    };
    let trees: Vec<Tree> = per_est.iter_mut().flat_map(std::mem::take).collect();
    Ok(ForestModel {
        task: params.task,
        feature_kinds: data.kinds(),
        trees,
        params: params.clone(),
        flat: Default::default(),
    })
}

impl ForestModel {
    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.feature_kinds.len()
    }

    /// Values per prediction: 1 (regression: the value; binary: P(class 1)) or the number
    /// of classes.
    pub fn n_outputs(&self) -> usize {
        self.task.n_outputs()
    }

    /// Trees per estimator: the number of classes for multiclass, else 1.
    pub fn trees_per_estimator(&self) -> usize {
        trees_per_estimator(self.task)
    }

    /// Number of estimators (bootstrap rounds).
    pub fn n_estimators(&self) -> usize {
        self.trees.len() / self.trees_per_estimator()
    }

    /// Prediction of one row (`row` in the single-row convention: NaN = missing,
    /// categorical codes as f64) into `out` (`n_outputs()` long). Allocation-free once the first
    /// prediction has packed the trees for prediction.
    ///
    /// Regression: the mean of the trees; binary: the mean class-1 frequency; multiclass:
    /// each class's mean frequency over its trees, normalised to sum to 1.
    #[inline]
    pub fn predict_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), GbmError> {
        let nf = self.n_features();
        if row.len() < nf {
            return Err(GbmError::FeatureCountMismatch {
                expected: nf,
                got: row.len(),
            });
        }
        let k = self.n_outputs();
        if out.len() != k {
            return Err(GbmError::OutputLength {
                expected: k,
                got: out.len(),
            });
        }
        let ne = self.n_estimators().max(1) as f64;
        let flat = self.flat.get(&self.trees);
        if k == 1 {
            let mut s = 0.0;
            flat.for_each_tree(row, |_, v| s += v);
            out[0] = s / ne;
        } else {
            out.fill(0.0);
            flat.for_each_tree(row, |i, v| out[i % k] += v);
            let total: f64 = out.iter().sum();
            if total > 0.0 {
                for o in out.iter_mut() {
                    *o /= total;
                }
            } else {
                out.fill(1.0 / k as f64);
            }
        }
        Ok(())
    }

    /// Single-output convenience (regression value or P(class 1); multiclass: P(class 0)).
    pub fn predict_one(&self, row: &[f64]) -> Result<f64, GbmError> {
        let mut v = vec![0.0; self.n_outputs()];
        self.predict_row(row, &mut v)?;
        Ok(v[0])
    }

    fn check_data(&self, data: &Dataset) -> Result<(), GbmError> {
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

    /// Predictions for every row, row-major (`n_rows * n_outputs()`). Rows are split over
    /// the ambient rayon pool (wrap the call in `pool.install` to bound it).
    pub fn predict(&self, data: &Dataset) -> Result<Vec<f64>, GbmError> {
        self.check_data(data)?;
        let n = data.n_rows();
        let nf = self.n_features();
        let k = self.n_outputs();
        let mut out = vec![0.0; n * k];
        const CHUNK: usize = 256;
        let work = |(ci, chunk): (usize, &mut [f64])| {
            let mut row = vec![0.0; nf];
            for (j, o) in chunk.chunks_mut(k).enumerate() {
                data.row_into_unchecked(ci * CHUNK + j, &mut row);
                // lengths are right by construction
                let _ = self.predict_row(&row, o);
            }
        };
        if n * self.trees.len() > 200_000 && rayon::current_num_threads() > 1 {
            out.par_chunks_mut(CHUNK * k).enumerate().for_each(work);
        } else {
            out.chunks_mut(CHUNK * k).enumerate().for_each(work);
        }
        Ok(out)
    }

    /// Exact (path-dependent) TreeSHAP contributions of one row in the forest's output
    /// space: for each output, `n_features() + 1` values, the last being the base value.
    /// `out` must be `n_outputs() * (n_features() + 1)` long.
    ///
    /// Regression and binary: the mean over trees of each tree's TreeSHAP values (the
    /// same code as the booster's), so the base value is the mean of the trees' expected
    /// values and contributions plus base equal [`predict_row`](Self::predict_row)
    /// (the value, or P(class 1)) exactly.
    ///
    /// Multiclass: the classes' trees are grown separately, so their frequencies `m_c`
    /// need not sum to 1 and `predict_row` divides by the row's total `S = Σ m_c`
    /// (which varies a lot from row to row). With `b_c = E[m_c] / E[S]` (the expected
    /// frequencies' share, constant, summing to 1 over classes) the probability is
    /// `p_c − b_c = (m_c − b_c·S) / S`; the numerator is a sum of trees, explained
    /// exactly by TreeSHAP, and is divided by this row's `S`. So contribution `j` is
    /// `(φ_j(m_c) − b_c·φ_j(S)) / S`, the base value is `b_c` for every row, they add up
    /// to the probability exactly, a feature no tree uses gets 0, and each feature's
    /// contributions sum to 0 over the classes (as the probabilities sum to 1). A row
    /// whose total is 0 predicts 1/k: base 1/k, contributions 0.
    pub fn predict_contrib_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), GbmError> {
        let mut scratch = ShapScratch::default();
        self.contrib_row_with(row, out, &mut scratch)
    }

    fn contrib_row_with(
        &self,
        row: &[f64],
        out: &mut [f64],
        scratch: &mut ShapScratch,
    ) -> Result<(), GbmError> {
        let nf = self.n_features();
        let k = self.n_outputs();
        if row.len() < nf {
            return Err(GbmError::FeatureCountMismatch {
                expected: nf,
                got: row.len(),
            });
        }
        let w = nf + 1;
        if out.len() != k * w {
            return Err(GbmError::OutputLength {
                expected: k * w,
                got: out.len(),
            });
        }
        out.fill(0.0);
        for (i, t) in self.trees.iter().enumerate() {
            let c = i % k;
            t.shap_into(row, &mut out[c * w..(c + 1) * w], scratch);
        }
        let ne = self.n_estimators().max(1) as f64;
        if k == 1 {
            out.iter_mut().for_each(|v| *v /= ne);
            return Ok(());
        }
        // each class block now holds the TreeSHAP values of m_c (the class's summed
        // frequencies) and E[m_c]; the row's total is taken from the trees'
        // predictions, as `predict_row` does
        let total: f64 = self.trees.iter().map(|t| t.predict_row(row)).sum();
        let expected: f64 = (0..k).map(|c| out[c * w + nf]).sum();
        if total > 0.0 && expected > 0.0 {
            for c in 0..k {
                out[c * w + nf] /= expected;
            }
            for j in 0..nf {
                // φ_j(S): the feature's values summed over the classes
                let phi_s: f64 = (0..k).map(|c| out[c * w + j]).sum();
                for c in 0..k {
                    let b = out[c * w + nf];
                    out[c * w + j] = (out[c * w + j] - b * phi_s) / total;
                }
            }
        } else {
            out.fill(0.0);
            for c in 0..k {
                out[c * w + nf] = 1.0 / k as f64;
            }
        }
        Ok(())
    }

    /// [`predict_contrib_row`](Self::predict_contrib_row) for every row: row-major,
    /// `n_outputs() * (n_features() + 1)` values per row. Rows are split over the ambient
    /// rayon pool.
    pub fn predict_contrib(&self, data: &Dataset) -> Result<Vec<f64>, GbmError> {
        self.check_data(data)?;
        let n = data.n_rows();
        let nf = self.n_features();
        let width = self.n_outputs() * (nf + 1);
        let mut out = vec![0.0; n * width];
        const CHUNK: usize = 64;
        let work = |(ci, chunk): (usize, &mut [f64])| {
            let mut row = vec![0.0; nf];
            let mut scratch = ShapScratch::default();
            for (j, o) in chunk.chunks_mut(width).enumerate() {
                data.row_into_unchecked(ci * CHUNK + j, &mut row);
                // lengths are right by construction
                let _ = self.contrib_row_with(&row, o, &mut scratch);
            }
        };
        if n > CHUNK && rayon::current_num_threads() > 1 {
            out.par_chunks_mut(CHUNK * width).enumerate().for_each(work);
        } else {
            out.chunks_mut(CHUNK * width).enumerate().for_each(work);
        }
        Ok(out)
    }

    /// Feature importance (one value per feature), summed over all trees: total
    /// impurity decrease (`Gain`: decrease of the bootstrap-weighted sum of squared errors,
    /// i.e. of `n·Gini` for classification; normalise to sum 1 for scikit-learn's MDI
    /// scale) or number of splits (`Split`).
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
