//! The boosting loop.

use crate::binning::BinCol;
use crate::learner::TreeLearner;
use crate::objective::weighted_median;
use crate::split::SplitConfig;
use crate::{Dataset, GbmError, GbmModel, GbmParams, Objective, Tree};
use rayon::prelude::*;

/// Rows below which gradients are computed on one thread.
const PAR_MIN_GRAD: usize = 16 * 1024;
/// Rows per partial sum of the training loss (fixed, so the sum does not depend on the
/// thread count).
const LOSS_CHUNK: usize = 8192;

/// Sums partial `(loss, weight)` sums in order into a weighted mean.
fn mean_of(parts: &[(f64, f64)]) -> f64 {
    let (sum, sw) = parts
        .iter()
        .fold((0.0, 0.0), |(s, t), (a, b)| (s + a, t + b));
    if sw > 0.0 { sum / sw } else { 0.0 }
}

/// Weighted mean loss over every training row of the raw scores the booster keeps for the
/// gradients (no pass over the data). Partial sums of fixed chunks are added in order, so the
/// value does not depend on the thread count.
fn training_loss(
    obj: Objective,
    y: &[f64],
    w: Option<&[f64]>,
    scores: &[f64],
    threads: usize,
) -> f64 {
    let n = y.len();
    let part =
        |c: usize| obj.loss_sums(y, w, scores, c * LOSS_CHUNK..((c + 1) * LOSS_CHUNK).min(n));
    let chunks = n.div_ceil(LOSS_CHUNK);
    let parts: Vec<(f64, f64)> = if threads > 1 && n >= PAR_MIN_GRAD {
        (0..chunks).into_par_iter().map(part).collect()
    } else {
        (0..chunks).map(part).collect()
    };
    mean_of(&parts)
}

/// The gradients of `scores` into `gh`, returning the training loss of `scores` (the loss
/// after the previous iteration), computed in the same pass from the probabilities the
/// gradients need: [`training_loss`]'s value to rounding, the same whatever the thread count
/// (fixed chunks, summed in order).
fn gradients_with_loss(
    obj: Objective,
    y: &[f64],
    w: Option<&[f64]>,
    scores: &[f64],
    gh: &mut [[f32; 2]],
    threads: usize,
) -> f64 {
    let n = y.len();
    let parts: Vec<(f64, f64)> = if obj.num_outputs() == 1 && threads > 1 && n >= PAR_MIN_GRAD {
        gh.par_chunks_mut(LOSS_CHUNK)
            .enumerate()
            .map(|(ci, out)| {
                let base = ci * LOSS_CHUNK;
                obj.gradients_and_loss(y, w, scores, out, base, base..base + out.len())
            })
            .collect()
    } else {
        (0..n.div_ceil(LOSS_CHUNK))
            .map(|c| {
                let rows = c * LOSS_CHUNK..((c + 1) * LOSS_CHUNK).min(n);
                obj.gradients_and_loss(y, w, scores, gh, 0, rows)
            })
            .collect()
    };
    mean_of(&parts)
}

/// A validation set for early stopping.
#[derive(Debug, Clone, Copy)]
pub struct Validation<'a> {
    pub data: &'a Dataset,
    pub target: &'a [f64],
    pub weights: Option<&'a [f64]>,
}

/// Small deterministic RNG (splitmix64).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

pub(crate) fn check_weights(w: Option<&[f64]>, n: usize) -> Result<(), GbmError> {
    if let Some(w) = w {
        if w.len() != n {
            return Err(GbmError::WeightLength {
                expected: n,
                got: w.len(),
            });
        }
        if let Some(row) = w.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(GbmError::InvalidWeight { row });
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err(GbmError::ZeroWeight);
        }
    }
    Ok(())
}

/// Trains a model. `target` holds regression values, 0/1 for binary, or class indices
/// `0..num_class` for multiclass. `weights` are optional non-negative sample weights.
/// With `params.early_stopping_rounds`, `valid` is required and the model keeps its best
/// iteration.
pub fn train(
    params: &GbmParams,
    data: &Dataset,
    target: &[f64],
    weights: Option<&[f64]>,
    valid: Option<Validation<'_>>,
) -> Result<GbmModel, GbmError> {
    train_with_progress(params, data, target, weights, valid, &mut |_| {})
}

/// One finished boosting iteration, reported to [`train_with_progress`]'s callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 1-based iteration just finished.
    pub iteration: usize,
    /// The iteration budget (`n_estimators`); early stopping may end sooner.
    pub total: usize,
    /// The validation loss after this iteration, with a validation set.
    pub valid_loss: Option<f64>,
}

/// [`train`], calling `on_iteration` after every boosting iteration (for
/// progress bars and per-iteration metric logs).
pub fn train_with_progress(
    params: &GbmParams,
    data: &Dataset,
    target: &[f64],
    weights: Option<&[f64]>,
    valid: Option<Validation<'_>>,
    on_iteration: &mut (dyn FnMut(Progress) + Send),
) -> Result<GbmModel, GbmError> {
    params.validate()?;
    let n = data.n_rows();
    if n == 0 {
        return Err(GbmError::EmptyData);
    }
    if target.len() != n {
        return Err(GbmError::TargetLength {
            expected: n,
            got: target.len(),
        });
    }
    check_weights(weights, n)?;
    params.objective.validate_target(target, weights)?;
    if let Some(v) = &valid {
        if v.data.n_features() != data.n_features() {
            return Err(GbmError::FeatureCountMismatch {
                expected: data.n_features(),
                got: v.data.n_features(),
            });
        }
        for (i, (a, b)) in data.columns().iter().zip(v.data.columns()).enumerate() {
            if a.kind() != b.kind() {
                return Err(GbmError::FeatureKindMismatch {
                    feature: i,
                    expected: a.kind(),
                    got: b.kind(),
                });
            }
        }
        if v.target.len() != v.data.n_rows() {
            return Err(GbmError::TargetLength {
                expected: v.data.n_rows(),
                got: v.target.len(),
            });
        }
        check_weights(v.weights, v.data.n_rows())?;
        // the validation target may hold a single class; only check values
        for (row, &y) in v.target.iter().enumerate() {
            if !y.is_finite() {
                return Err(GbmError::NonFiniteTarget { row });
            }
        }
        if params.objective.is_classification() {
            params
                .objective
                .validate_target(v.target, None)
                .or_else(|e| {
                    if matches!(e, GbmError::SingleClass { .. }) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
        }
    } else if params.early_stopping_rounds.is_some() {
        return Err(GbmError::InvalidParam {
            name: "early_stopping_rounds",
            reason: "early stopping needs a validation set".into(),
        });
    }
    let threads = if params.num_threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        params.num_threads
    };
    if threads == 1 {
        train_inner(params, data, target, weights, valid, 1, on_iteration)
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| GbmError::ThreadPool(e.to_string()))?;
        pool.install(|| train_inner(params, data, target, weights, valid, threads, on_iteration))
    }
}

/// What growing one class's tree of one iteration needs.
struct ClassCtx<'a> {
    params: &'a GbmParams,
    iter: usize,
    k: usize,
    usable: &'a [usize],
    y: &'a [f64],
    w: Option<&'a [f64]>,
    cols: &'a [BinCol],
    vbins: Option<&'a [BinCol]>,
    bag: Option<&'a [u32]>,
    oob: &'a [u32],
}

impl ClassCtx<'_> {
    /// Grows the tree of class `c` on its gradients, shrinks it and adds it to the class's
    /// training scores `sc` and validation scores `vs`.
    fn fit_class(
        &self,
        learner: &mut TreeLearner,
        c: usize,
        ghc: &[[f32; 2]],
        sc: &mut [f64],
        vs: &mut [f64],
    ) -> Tree {
        let params = self.params;
        let usable = self.usable;
        let features: Vec<usize> = if params.feature_fraction < 1.0 && usable.len() > 1 {
            let mut rng = Rng::new(
                params
                    .seed
                    .wrapping_add(0xFEA7_u64)
                    .wrapping_mul(0x9E37_79B9)
                    ^ ((self.iter * self.k + c) as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
            );
            let m = ((params.feature_fraction * usable.len() as f64).round() as usize)
                .clamp(1, usable.len());
            let mut pool = usable.to_vec();
            for i in 0..m {
                let j = i + rng.below(pool.len() - i);
                pool.swap(i, j);
            }
            let mut sel = pool[..m].to_vec();
            sel.sort_unstable();
            sel
        } else {
            usable.to_vec()
        };
        let mut tree = learner.grow(ghc, self.bag, &features);
        if params.objective == Objective::L1 {
            let (y, w) = (self.y, self.w);
            for l in 0..tree.num_leaves() {
                let rows = learner.leaf_rows(l);
                if rows.is_empty() {
                    continue;
                }
                let med = weighted_median(rows.iter().map(|&r| {
                    (
                        y[r as usize] - sc[r as usize],
                        w.map_or(1.0, |w| w[r as usize]),
                    )
                }));
                tree.leaf_values_mut()[l] = med;
            }
        }
        for v in tree.leaf_values_mut() {
            *v *= params.learning_rate;
        }
        for l in 0..tree.num_leaves() {
            let v = tree.leaf_values()[l];
            for &r in learner.leaf_rows(l) {
                sc[r as usize] += v;
            }
        }
        if self.bag.is_some() {
            for &r in self.oob {
                sc[r as usize] += tree.leaf_values()[tree.leaf_index_binned(self.cols, r as usize)];
            }
        }
        if let Some(vb) = self.vbins {
            for (i, s) in vs.iter_mut().enumerate() {
                *s += tree.leaf_values()[tree.leaf_index_binned(vb, i)];
            }
        }
        tree
    }
}

fn train_inner(
    params: &GbmParams,
    data: &Dataset,
    y: &[f64],
    w: Option<&[f64]>,
    valid: Option<Validation<'_>>,
    threads: usize,
    on_iteration: &mut (dyn FnMut(Progress) + Send),
) -> Result<GbmModel, GbmError> {
    let n = data.n_rows();
    let obj = params.objective;
    let crate::binning::Binned {
        mappers,
        cols,
        usable,
    } = crate::binning::bin_features(data, params.max_bin, params.min_data_in_bin, threads)?;
    let vbins: Option<Vec<BinCol>> = valid.map(|v| {
        mappers
            .iter()
            .zip(v.data.columns())
            .map(|(m, c)| m.bin_column(c))
            .collect()
    });
    let nv = valid.map_or(0, |v| v.data.n_rows());

    let k = obj.num_outputs();
    let init = obj.init_score(y, w);
    let mut scores = vec![0.0; k * n];
    let mut vscores = vec![0.0; k * nv];
    for c in 0..k {
        scores[c * n..(c + 1) * n].fill(init[c]);
        vscores[c * nv..(c + 1) * nv].fill(init[c]);
    }
    let mut gh = vec![[0.0f32; 2]; k * n];
    let cfg = SplitConfig {
        lambda_l1: params.lambda_l1,
        lambda_l2: params.lambda_l2,
        // a leaf always holds at least one row (and TreeSHAP needs non-empty covers)
        min_data_in_leaf: params.min_data_in_leaf.max(1),
        min_sum_hessian: params.min_child_weight,
        min_split_gain: params.min_split_gain,
        cat_smooth: params.cat_smooth,
        cat_l2: params.cat_l2,
        max_cat_threshold: params.max_cat_threshold,
        min_data_per_group: params.min_data_per_group,
        max_cat_to_onehot: params.max_cat_to_onehot,
    };
    // multiclass with several threads: one learner per concurrently grown class tree
    let n_learners = if k > 1 && threads > 1 {
        threads.min(k)
    } else {
        1
    };
    let inner_threads = if n_learners > 1 { 1 } else { threads };
    let mut learners: Vec<TreeLearner> = (0..n_learners)
        .map(|_| {
            TreeLearner::new(
                &cols,
                &mappers,
                cfg.clone(),
                params.num_leaves,
                params.max_depth,
                inner_threads,
                n,
            )
        })
        .collect();
    let bagging = params.bagging_freq > 0 && params.bagging_fraction < 1.0;
    let mut bag: Vec<u32> = Vec::new();
    let mut oob: Vec<u32> = Vec::new();
    let mut trees = Vec::with_capacity(params.n_estimators * k);
    let mut history = Vec::new();
    let mut train_history = Vec::new();
    let mut best_loss = f64::INFINITY;
    let mut best_iter = 0usize;

    for iter in 0..params.n_estimators {
        if bagging && iter % params.bagging_freq == 0 {
            let mut rng = Rng::new(params.seed ^ 0x0BA6_61A6_u64.wrapping_mul(iter as u64 + 1));
            bag.clear();
            oob.clear();
            for r in 0..n as u32 {
                if rng.next_f64() < params.bagging_fraction {
                    bag.push(r);
                } else {
                    oob.push(r);
                }
            }
            if bag.is_empty() {
                bag.push(0);
                oob.retain(|&r| r != 0);
            }
        }
        if params.training_metric {
            let loss = gradients_with_loss(obj, y, w, &scores, &mut gh, threads);
            if iter > 0 {
                train_history.push(loss);
            }
        } else if k == 1 && threads > 1 && n >= PAR_MIN_GRAD {
            // elementwise, so identical to the sequential computation
            const CH: usize = 8192;
            gh.par_chunks_mut(CH).enumerate().for_each(|(ci, out)| {
                let base = ci * CH;
                for (j, o) in out.iter_mut().enumerate() {
                    let i = base + j;
                    *o = obj.grad_one(y[i], w.map_or(1.0, |w| w[i]), scores[i]);
                }
            });
        } else {
            obj.gradients(y, w, &scores, &mut gh, 0..n);
        }
        let ctx = ClassCtx {
            params,
            iter,
            k,
            usable: &usable,
            y,
            w,
            cols: &cols,
            vbins: vbins.as_deref(),
            bag: if bagging { Some(&bag) } else { None },
            oob: &oob,
        };
        let n_learners = learners.len();
        let new_trees: Vec<Tree> = if n_learners > 1 {
            // one tree per class, grown in parallel: each is computed exactly as it would be
            // sequentially, so the model does not depend on the thread count
            let mut out = Vec::with_capacity(k);
            let mut sc_parts: Vec<&mut [f64]> = scores.chunks_mut(n).collect();
            let mut vs_parts: Vec<&mut [f64]> = if nv > 0 {
                vscores.chunks_mut(nv).collect()
            } else {
                (0..k).map(|_| <&mut [f64]>::default()).collect()
            };
            let mut c0 = 0;
            while c0 < k {
                let m = n_learners.min(k - c0);
                let batch: Vec<Tree> = learners[..m]
                    .par_iter_mut()
                    .zip(sc_parts[c0..c0 + m].par_iter_mut())
                    .zip(vs_parts[c0..c0 + m].par_iter_mut())
                    .enumerate()
                    .map(|(j, ((learner, sc), vs))| {
                        let c = c0 + j;
                        ctx.fit_class(learner, c, &gh[c * n..(c + 1) * n], sc, vs)
                    })
                    .collect();
                out.extend(batch);
                c0 += m;
            }
            out
        } else {
            let learner = &mut learners[0];
            (0..k)
                .map(|c| {
                    let vs = if nv > 0 {
                        &mut vscores[c * nv..(c + 1) * nv]
                    } else {
                        &mut [][..]
                    };
                    ctx.fit_class(
                        learner,
                        c,
                        &gh[c * n..(c + 1) * n],
                        &mut scores[c * n..(c + 1) * n],
                        vs,
                    )
                })
                .collect()
        };
        let all_single = new_trees.iter().all(|t| t.num_leaves() == 1);
        trees.extend(new_trees);
        let mut valid_loss = None;
        if let Some(v) = &valid {
            let loss = obj.eval(v.target, v.weights, &vscores);
            valid_loss = Some(loss);
            history.push(loss);
            if loss < best_loss {
                best_loss = loss;
                best_iter = iter;
            } else if let Some(rounds) = params.early_stopping_rounds
                && iter - best_iter >= rounds
            {
                on_iteration(Progress {
                    iteration: iter + 1,
                    total: params.n_estimators,
                    valid_loss,
                });
                break;
            }
        }
        on_iteration(Progress {
            iteration: iter + 1,
            total: params.n_estimators,
            valid_loss,
        });
        if all_single {
            break;
        }
    }
    if params.training_metric && !trees.is_empty() {
        // the loss after the last iteration run (the others came with the gradients)
        train_history.push(training_loss(obj, y, w, &scores, threads));
    }
    let mut best_iteration = None;
    if params.early_stopping_rounds.is_some() && !history.is_empty() {
        trees.truncate((best_iter + 1) * k);
        best_iteration = Some(best_iter + 1);
    }
    Ok(GbmModel {
        objective: obj,
        feature_kinds: data.kinds(),
        init_score: init,
        trees,
        best_iteration,
        valid_history: history,
        train_history,
        params: params.clone(),
        flat: Default::default(),
    })
}
