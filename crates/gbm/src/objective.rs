//! Loss functions: gradients, hessians, initial scores, output transforms and evaluation.

use crate::GbmError;
use serde::{Deserialize, Serialize};

/// The learning objective.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Objective {
    /// Squared error (regression).
    #[default]
    L2,
    /// Absolute error (regression); leaf values are refitted to the median residual.
    L1,
    /// Huber loss with transition point `delta` (regression).
    Huber { delta: f64 },
    /// Binary log loss; targets are 0 or 1; raw scores are log-odds.
    Binary,
    /// Softmax multiclass log loss; targets are class indices `0..num_class`.
    Multiclass { num_class: usize },
}

#[inline]
pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// In-place softmax.
#[inline]
pub fn softmax(v: &mut [f64]) {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        s += *x;
    }
    for x in v.iter_mut() {
        *x /= s;
    }
}

fn weighted_quantile(pairs: &mut [(f64, f64)], q: f64) -> f64 {
    // pairs: (value, weight)
    if pairs.is_empty() {
        return 0.0;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = pairs.iter().map(|p| p.1).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let target = q * total;
    let mut acc = 0.0;
    for i in 0..pairs.len() {
        acc += pairs[i].1;
        if acc > target {
            return pairs[i].0;
        }
        if acc == target {
            // exactly on the boundary: average with the next value (the usual median rule)
            return match pairs.get(i + 1) {
                Some(next) => 0.5 * (pairs[i].0 + next.0),
                None => pairs[i].0,
            };
        }
    }
    pairs[pairs.len() - 1].0
}

/// Weighted median of `values` (unweighted when `weights` is None).
pub(crate) fn weighted_median(values: impl Iterator<Item = (f64, f64)>) -> f64 {
    let mut pairs: Vec<(f64, f64)> = values.collect();
    weighted_quantile(&mut pairs, 0.5)
}

impl Objective {
    /// Number of raw outputs per row (trees per iteration).
    pub fn num_outputs(&self) -> usize {
        match self {
            Objective::Multiclass { num_class } => *num_class,
            _ => 1,
        }
    }

    /// True for classification objectives.
    pub fn is_classification(&self) -> bool {
        matches!(self, Objective::Binary | Objective::Multiclass { .. })
    }

    pub(crate) fn validate(&self) -> Result<(), GbmError> {
        match *self {
            Objective::Huber { delta } if !(delta > 0.0 && delta.is_finite()) => {
                Err(GbmError::InvalidParam {
                    name: "objective.delta",
                    reason: format!("must be positive and finite, got {delta}"),
                })
            }
            Objective::Multiclass { num_class } if num_class < 2 => Err(GbmError::InvalidParam {
                name: "objective.num_class",
                reason: format!("must be at least 2, got {num_class}"),
            }),
            _ => Ok(()),
        }
    }

    /// Checks target values (finite; labels valid; more than one class for classification).
    pub(crate) fn validate_target(&self, y: &[f64], w: Option<&[f64]>) -> Result<(), GbmError> {
        for (row, &v) in y.iter().enumerate() {
            if !v.is_finite() {
                return Err(GbmError::NonFiniteTarget { row });
            }
            match *self {
                Objective::Binary if v != 0.0 && v != 1.0 => {
                    return Err(GbmError::InvalidBinaryLabel { row, value: v });
                }
                Objective::Multiclass { num_class }
                    if v < 0.0 || v.fract() != 0.0 || v >= num_class as f64 =>
                {
                    return Err(GbmError::InvalidClassLabel {
                        row,
                        value: v,
                        num_class,
                    });
                }
                _ => {}
            }
        }
        if self.is_classification() {
            // a class only counts when it has positive weight
            let mut first: Option<f64> = None;
            let mut two = false;
            for (i, &v) in y.iter().enumerate() {
                if w.is_some_and(|w| w[i] <= 0.0) {
                    continue;
                }
                match first {
                    None => first = Some(v),
                    Some(f) if f != v => {
                        two = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !two {
                return Err(GbmError::SingleClass {
                    class: first.unwrap_or(y[0]),
                });
            }
        }
        Ok(())
    }

    /// Initial raw score per output (boost from average).
    pub(crate) fn init_score(&self, y: &[f64], w: Option<&[f64]>) -> Vec<f64> {
        let wt = |i: usize| w.map_or(1.0, |w| w[i]);
        let sw: f64 = (0..y.len()).map(wt).sum();
        let mean = || (0..y.len()).map(|i| y[i] * wt(i)).sum::<f64>() / sw;
        match *self {
            Objective::L2 | Objective::Huber { .. } => vec![mean()],
            Objective::L1 => vec![weighted_median((0..y.len()).map(|i| (y[i], wt(i))))],
            Objective::Binary => {
                let p = mean().clamp(1e-15, 1.0 - 1e-15);
                vec![(p / (1.0 - p)).ln()]
            }
            Objective::Multiclass { num_class } => {
                let mut pri = vec![0.0; num_class];
                for (i, &v) in y.iter().enumerate() {
                    pri[v as usize] += wt(i);
                }
                pri.iter().map(|p| (p / sw).max(1e-15).ln()).collect()
            }
        }
    }

    /// Gradient and hessian of one row for single-output objectives.
    #[inline]
    pub(crate) fn grad_one(&self, y: f64, wt: f64, score: f64) -> [f32; 2] {
        match *self {
            Objective::L2 => [((score - y) * wt) as f32, wt as f32],
            Objective::L1 => {
                let d = score - y;
                let g = if d > 0.0 {
                    1.0
                } else if d < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                [(g * wt) as f32, wt as f32]
            }
            Objective::Huber { delta } => {
                [((score - y).clamp(-delta, delta) * wt) as f32, wt as f32]
            }
            Objective::Binary => {
                let p = sigmoid(score);
                [((p - y) * wt) as f32, (p * (1.0 - p) * wt) as f32]
            }
            Objective::Multiclass { .. } => [0.0, 0.0],
        }
    }

    /// Gradients and hessians. `scores` and `gh` are output-major: output `k` of row `i`
    /// is at `k * n + i`.
    pub(crate) fn gradients(
        &self,
        y: &[f64],
        w: Option<&[f64]>,
        scores: &[f64],
        gh: &mut [[f32; 2]],
        row_range: std::ops::Range<usize>,
    ) {
        let n = y.len();
        match *self {
            Objective::L2 | Objective::L1 | Objective::Huber { .. } | Objective::Binary => {
                for i in row_range {
                    gh[i] = self.grad_one(y[i], w.map_or(1.0, |w| w[i]), scores[i]);
                }
            }
            Objective::Multiclass { num_class } => {
                let factor = num_class as f64 / (num_class as f64 - 1.0);
                let mut p = [0.0f64; 64];
                let mut pv = vec![];
                let probs: &mut [f64] = if num_class <= 64 {
                    &mut p[..num_class]
                } else {
                    pv.resize(num_class, 0.0);
                    &mut pv
                };
                for i in row_range {
                    let wt = w.map_or(1.0, |w| w[i]);
                    for (k, pk) in probs.iter_mut().enumerate() {
                        *pk = scores[k * n + i];
                    }
                    softmax(probs);
                    let label = y[i] as usize;
                    for (k, &pk) in probs.iter().enumerate() {
                        let t = if k == label { 1.0 } else { 0.0 };
                        gh[k * n + i] = [
                            ((pk - t) * wt) as f32,
                            (factor * pk * (1.0 - pk) * wt) as f32,
                        ];
                    }
                }
            }
        }
    }

    /// Raw scores of one row to predictions (identity, probability, class probabilities).
    #[inline]
    pub fn transform(&self, raw: &mut [f64]) {
        match self {
            Objective::Binary => raw[0] = sigmoid(raw[0]),
            Objective::Multiclass { .. } => softmax(raw),
            _ => {}
        }
    }

    /// Name of the evaluation metric used for early stopping (lower is better).
    pub fn metric_name(&self) -> &'static str {
        match self {
            Objective::L2 => "l2",
            Objective::L1 => "l1",
            Objective::Huber { .. } => "huber",
            Objective::Binary => "binary_logloss",
            Objective::Multiclass { .. } => "multi_logloss",
        }
    }

    /// Weighted mean loss of output-major raw `scores` (lower is better).
    pub(crate) fn eval(&self, y: &[f64], w: Option<&[f64]>, scores: &[f64]) -> f64 {
        let (sum, sw) = self.loss_sums(y, w, scores, 0..y.len());
        if sw > 0.0 { sum / sw } else { 0.0 }
    }

    /// Loss of one row for single-output objectives.
    #[inline]
    fn row_loss(&self, y: f64, score: f64) -> f64 {
        match *self {
            Objective::L2 => (score - y).powi(2),
            Objective::L1 => (score - y).abs(),
            Objective::Huber { delta } => {
                let d = (score - y).abs();
                if d <= delta {
                    0.5 * d * d
                } else {
                    delta * (d - 0.5 * delta)
                }
            }
            Objective::Binary => binary_loss(y, sigmoid(score)),
            Objective::Multiclass { .. } => 0.0,
        }
    }

    /// Weighted loss sum and weight sum of rows `rows` of output-major raw `scores`
    /// (output `k` of row `i` at `k * y.len() + i`).
    pub(crate) fn loss_sums(
        &self,
        y: &[f64],
        w: Option<&[f64]>,
        scores: &[f64],
        rows: std::ops::Range<usize>,
    ) -> (f64, f64) {
        let n = y.len();
        let mut sum = 0.0;
        let mut sw = 0.0;
        let mut small = [0.0f64; 64];
        let mut large = vec![];
        let k = self.num_outputs();
        let buf: &mut [f64] = if k <= 64 {
            &mut small[..k]
        } else {
            large.resize(k, 0.0);
            &mut large
        };
        for i in rows {
            let wt = w.map_or(1.0, |w| w[i]);
            let loss = match *self {
                Objective::Multiclass { .. } => {
                    for (k, b) in buf.iter_mut().enumerate() {
                        *b = scores[k * n + i];
                    }
                    softmax(buf);
                    multi_loss(buf[y[i] as usize])
                }
                _ => self.row_loss(y[i], scores[i]),
            };
            sum += loss * wt;
            sw += wt;
        }
        (sum, sw)
    }

    /// [`Objective::gradients`] of rows `rows`, also returning the weighted loss sum and
    /// weight sum of `scores` there, from the probabilities the gradients need (the training
    /// loss almost for free). `gh` holds the gradients from index `gh_base` on (output `k` of
    /// row `i` at `k * n + i - gh_base`). Unweighted log losses are summed as the logarithm
    /// of a running product (exponent kept apart): one logarithm per call, not per row; equal
    /// to [`Objective::loss_sums`] to rounding (~1e-15 relative per row).
    pub(crate) fn gradients_and_loss(
        &self,
        y: &[f64],
        w: Option<&[f64]>,
        scores: &[f64],
        gh: &mut [[f32; 2]],
        gh_base: usize,
        rows: std::ops::Range<usize>,
    ) -> (f64, f64) {
        let n = y.len();
        let mut sum = 0.0;
        let mut sw = 0.0;
        let mut log_product = LogProduct::default();
        match *self {
            Objective::Multiclass { num_class } => {
                let factor = num_class as f64 / (num_class as f64 - 1.0);
                let mut p = [0.0f64; 64];
                let mut pv = vec![];
                let probs: &mut [f64] = if num_class <= 64 {
                    &mut p[..num_class]
                } else {
                    pv.resize(num_class, 0.0);
                    &mut pv
                };
                for i in rows {
                    let wt = w.map_or(1.0, |w| w[i]);
                    for (k, pk) in probs.iter_mut().enumerate() {
                        *pk = scores[k * n + i];
                    }
                    softmax(probs);
                    let label = y[i] as usize;
                    let q = probs[label].clamp(1e-15, 1.0);
                    match w {
                        None => log_product.push(q),
                        Some(_) => sum -= q.ln() * wt,
                    }
                    sw += wt;
                    for (k, &pk) in probs.iter().enumerate() {
                        let t = if k == label { 1.0 } else { 0.0 };
                        gh[k * n + i - gh_base] = [
                            ((pk - t) * wt) as f32,
                            (factor * pk * (1.0 - pk) * wt) as f32,
                        ];
                    }
                }
            }
            Objective::Binary => {
                for i in rows {
                    let wt = w.map_or(1.0, |w| w[i]);
                    let p = sigmoid(scores[i]);
                    gh[i - gh_base] = [((p - y[i]) * wt) as f32, (p * (1.0 - p) * wt) as f32];
                    let pc = p.clamp(1e-15, 1.0 - 1e-15);
                    let q = if y[i] > 0.5 { pc } else { 1.0 - pc };
                    match w {
                        None => log_product.push(q),
                        Some(_) => sum -= q.ln() * wt,
                    }
                    sw += wt;
                }
            }
            _ => {
                for i in rows {
                    let wt = w.map_or(1.0, |w| w[i]);
                    gh[i - gh_base] = self.grad_one(y[i], wt, scores[i]);
                    sum += self.row_loss(y[i], scores[i]) * wt;
                    sw += wt;
                }
            }
        }
        (sum + log_product.neg_ln(), sw)
    }
}

/// `-Σ ln(q)` over pushed `q` in `[1e-15, 1]`, kept as a product `m · 2^e` (`m` renormalised
/// to `[0.5, 1)` every 8 factors, long before it could leave the normal range).
#[derive(Debug, Clone, Copy)]
struct LogProduct {
    m: f64,
    e: i64,
    pending: u32,
}

impl Default for LogProduct {
    fn default() -> Self {
        LogProduct {
            m: 1.0,
            e: 0,
            pending: 0,
        }
    }
}

impl LogProduct {
    const EXP_MASK: u64 = 0x7ff << 52;

    #[inline]
    fn push(&mut self, q: f64) {
        self.m *= q;
        self.pending += 1;
        if self.pending == 8 {
            self.renormalise();
        }
    }

    #[inline]
    fn renormalise(&mut self) {
        let bits = self.m.to_bits();
        self.e += ((bits & Self::EXP_MASK) >> 52) as i64 - 1022;
        self.m = f64::from_bits((bits & !Self::EXP_MASK) | (1022 << 52));
        self.pending = 0;
    }

    fn neg_ln(mut self) -> f64 {
        if self.m == 1.0 && self.e == 0 {
            return 0.0; // nothing pushed (or only ones)
        }
        self.renormalise();
        -(self.m.ln() + self.e as f64 * std::f64::consts::LN_2)
    }
}

/// Log loss of a 0/1 label given P(class 1).
#[inline]
fn binary_loss(y: f64, p: f64) -> f64 {
    let p = p.clamp(1e-15, 1.0 - 1e-15);
    if y > 0.5 { -p.ln() } else { -(1.0 - p).ln() }
}

/// Log loss given the probability of the true class.
#[inline]
fn multi_loss(p: f64) -> f64 {
    -p.clamp(1e-15, 1.0).ln()
}
