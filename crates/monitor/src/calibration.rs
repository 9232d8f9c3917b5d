//! Probability calibration for performance estimation without labels.
//!
//! Confidence-based performance estimation (CBPE) trusts each prediction to
//! be right with its stated probability, so it needs calibrated
//! probabilities. A [`Calibration`] is an isotonic regression (pool adjacent
//! violators) fitted on a model's out-of-fold predictions with their labels:
//! for binary models it maps P(class 1) to the observed frequency of class 1,
//! otherwise it maps the predicted class's probability (the confidence) to
//! the observed accuracy. Between fitted points it interpolates linearly;
//! outside them it holds the end values. Stored as `calibration.json` beside
//! a baseline.

use serde::{Deserialize, Serialize};

pub const CALIBRATION_FILE: &str = "calibration.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// `"binary"` (maps P(class 1)) or `"confidence"` (maps the top probability).
    pub kind: String,
    /// Increasing inputs of the fitted steps.
    pub x: Vec<f64>,
    /// Non-decreasing calibrated values at `x`.
    pub y: Vec<f64>,
    /// Rows it was fitted on.
    pub rows: usize,
}

/// Pool adjacent violators: the non-decreasing least-squares fit of `y` on
/// `x`; returns (block mean of x, block mean of y) per block.
fn isotonic(mut pts: Vec<(f64, f64)>) -> (Vec<f64>, Vec<f64>) {
    pts.retain(|p| p.0.is_finite() && p.1.is_finite());
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    // blocks of (sum x, sum y, count)
    let mut blocks: Vec<(f64, f64, f64)> = Vec::with_capacity(pts.len());
    for (x, y) in pts {
        // equal inputs are one block
        if let Some(last) = blocks.last_mut()
            && (last.0 / last.2 - x).abs() <= 1e-12 * x.abs().max(1.0)
        {
            *last = (last.0 + x, last.1 + y, last.2 + 1.0);
        } else {
            blocks.push((x, y, 1.0));
        }
        while blocks.len() > 1 {
            let n = blocks.len();
            let (a, b) = (blocks[n - 2], blocks[n - 1]);
            if a.1 / a.2 <= b.1 / b.2 {
                break;
            }
            blocks.pop();
            blocks[n - 2] = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
        }
    }
    blocks.iter().map(|b| (b.0 / b.2, b.1 / b.2)).unzip()
}

impl Calibration {
    /// Fit on row-major probabilities (`k` per row; binary may be 1 column:
    /// P(class 1)) and class indices `y`. `None` without enough rows (50).
    pub fn fit(probabilities: &[f64], k: usize, y: &[f64]) -> Option<Calibration> {
        let k = k.max(1);
        let n = y.len();
        if n < 50 || probabilities.len() != n * k {
            return None;
        }
        let (kind, pts): (&str, Vec<(f64, f64)>) = if k <= 2 {
            let p1 = |i: usize| probabilities[i * k + k - 1];
            (
                "binary",
                (0..n)
                    .map(|i| (p1(i), f64::from(u8::from(y[i] == 1.0))))
                    .collect(),
            )
        } else {
            let pts = (0..n)
                .map(|i| {
                    let row = &probabilities[i * k..(i + 1) * k];
                    let (arg, conf) = row
                        .iter()
                        .copied()
                        .enumerate()
                        .fold((0, f64::MIN), |b, (j, p)| if p > b.1 { (j, p) } else { b });
                    (conf, f64::from(u8::from(arg as f64 == y[i])))
                })
                .collect();
            ("confidence", pts)
        };
        let (x, y) = isotonic(pts);
        if x.is_empty() {
            return None;
        }
        Some(Calibration {
            kind: kind.into(),
            x,
            y,
            rows: n,
        })
    }

    /// The calibrated value of `v`.
    pub fn apply(&self, v: f64) -> f64 {
        let (x, y) = (&self.x, &self.y);
        if !v.is_finite() || x.is_empty() {
            return v;
        }
        if v <= x[0] {
            return y[0];
        }
        if v >= x[x.len() - 1] {
            return y[y.len() - 1];
        }
        let i = x.partition_point(|&t| t <= v);
        let (x0, x1, y0, y1) = (x[i - 1], x[i], y[i - 1], y[i]);
        if x1 == x0 {
            y1
        } else {
            y0 + (y1 - y0) * (v - x0) / (x1 - x0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_pools_violators_and_is_monotone() {
        let (x, y) = isotonic(vec![(0.1, 0.0), (0.2, 1.0), (0.3, 0.0), (0.4, 1.0)]);
        assert_eq!(x.len(), 3);
        assert_eq!(y, vec![0.0, 0.5, 1.0]);
        assert!((x[1] - 0.25).abs() < 1e-12);
    }

    #[test]
    fn an_overconfident_model_is_pulled_back() {
        // predicts 0.9 but is right 70 % of the time; predicts 0.6, right 60 %
        let mut probs = Vec::new();
        let mut y = Vec::new();
        for i in 0..1000 {
            // first half at 0.9 (70 % class 1), second half at 0.6 (60 %)
            let (p, right) = if i < 500 {
                (0.9, i % 10 < 7)
            } else {
                (0.6, i % 10 < 6)
            };
            probs.push(p);
            y.push(if right { 1.0 } else { 0.0 });
        }
        let c = Calibration::fit(&probs, 1, &y).unwrap();
        assert_eq!(c.kind, "binary");
        assert!((c.apply(0.9) - 0.7).abs() < 1e-9, "{c:?}");
        assert!((c.apply(0.6) - 0.6).abs() < 1e-9);
        assert!((c.apply(0.75) - 0.65).abs() < 1e-9, "interpolates");
        assert_eq!(c.apply(0.99), c.apply(0.9), "holds the ends");
        assert!(Calibration::fit(&probs[..10], 1, &y[..10]).is_none());
        // multiclass: confidence → accuracy
        let probs3: Vec<f64> = (0..300).flat_map(|_| [0.8, 0.1, 0.1]).collect();
        let y3: Vec<f64> = (0..300)
            .map(|i| if i % 2 == 0 { 0.0 } else { 1.0 })
            .collect();
        let c3 = Calibration::fit(&probs3, 3, &y3).unwrap();
        assert_eq!(c3.kind, "confidence");
        assert!((c3.apply(0.8) - 0.5).abs() < 1e-9);
    }
}
