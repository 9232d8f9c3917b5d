//! Evaluation metrics: everything Autopilot offers (accuracy, balanced
//! accuracy, precision, recall, F1, macro F1, ROC AUC, log loss, MSE, RMSE,
//! MAE, R²) plus the confusion matrix and ROC / PR curve points.
//!
//! Classification inputs are class indices `0..k` and, where needed, a
//! row-major `n × k` probability matrix. Binary metrics treat class 1 as
//! positive.

/// Share of rows predicted right.
pub fn accuracy(y: &[usize], pred: &[usize]) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    y.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

/// `m[true][predicted]` counts.
pub fn confusion_matrix(y: &[usize], pred: &[usize], k: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; k]; k];
    for (&t, &p) in y.iter().zip(pred) {
        if t < k && p < k {
            m[t][p] += 1;
        }
    }
    m
}

/// Per-class (precision, recall, f1, support).
pub fn per_class(y: &[usize], pred: &[usize], k: usize) -> Vec<(f64, f64, f64, u64)> {
    let m = confusion_matrix(y, pred, k);
    (0..k)
        .map(|c| {
            let tp = m[c][c] as f64;
            let predicted: f64 = (0..k).map(|t| m[t][c] as f64).sum();
            let actual: f64 = m[c].iter().map(|&x| x as f64).sum();
            let p = if predicted > 0.0 { tp / predicted } else { 0.0 };
            let r = if actual > 0.0 { tp / actual } else { 0.0 };
            let f = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            (p, r, f, actual as u64)
        })
        .collect()
}

/// Mean recall over the classes present in `y`.
pub fn balanced_accuracy(y: &[usize], pred: &[usize], k: usize) -> f64 {
    let pc = per_class(y, pred, k);
    let present: Vec<f64> = pc.iter().filter(|c| c.3 > 0).map(|c| c.1).collect();
    if present.is_empty() {
        f64::NAN
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    }
}

pub fn precision(y: &[usize], pred: &[usize]) -> f64 {
    per_class(y, pred, 2)[1].0
}
pub fn recall(y: &[usize], pred: &[usize]) -> f64 {
    per_class(y, pred, 2)[1].1
}
pub fn f1(y: &[usize], pred: &[usize]) -> f64 {
    per_class(y, pred, 2)[1].2
}

/// Unweighted mean of per-class F1 over classes present in `y` or `pred`.
pub fn f1_macro(y: &[usize], pred: &[usize], k: usize) -> f64 {
    let pc = per_class(y, pred, k);
    let used: Vec<usize> = (0..k)
        .filter(|&c| y.contains(&c) || pred.contains(&c))
        .collect();
    if used.is_empty() {
        f64::NAN
    } else {
        used.iter().map(|&c| pc[c].2).sum::<f64>() / used.len() as f64
    }
}

/// ROC AUC for binary labels (1 = positive) and scores, with ties
/// counted half (the Mann–Whitney statistic).
pub fn roc_auc(y: &[usize], score: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let (mut rank_sum, mut i) = (0.0, 0usize);
    let pos = y.iter().filter(|&&v| v == 1).count() as f64;
    let neg = y.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &r in &idx[i..=j] {
            if y[r] == 1 {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Multiclass AUC: the unweighted mean of one-vs-rest AUCs (as
/// scikit-learn's `roc_auc_score(multi_class="ovr", average="macro")`).
pub fn roc_auc_ovr(y: &[usize], proba: &[f64], k: usize) -> f64 {
    let aucs: Vec<f64> = (0..k)
        .map(|c| {
            let yc: Vec<usize> = y.iter().map(|&v| usize::from(v == c)).collect();
            let sc: Vec<f64> = (0..y.len()).map(|i| proba[i * k + c]).collect();
            roc_auc(&yc, &sc)
        })
        .filter(|a| a.is_finite())
        .collect();
    if aucs.is_empty() {
        f64::NAN
    } else {
        aucs.iter().sum::<f64>() / aucs.len() as f64
    }
}

/// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 − 1e-15].
pub fn log_loss(y: &[usize], proba: &[f64], k: usize) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    let s: f64 = y
        .iter()
        .enumerate()
        .map(|(i, &c)| -proba[i * k + c].clamp(1e-15, 1.0 - 1e-15).ln())
        .sum();
    s / y.len() as f64
}

pub fn mse(y: &[f64], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / y.len() as f64
}
pub fn rmse(y: &[f64], p: &[f64]) -> f64 {
    mse(y, p).sqrt()
}
pub fn mae(y: &[f64], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64
}
pub fn r2(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
    if ss_tot == 0.0 {
        f64::NAN
    } else {
        1.0 - ss_res / ss_tot
    }
}

/// A point of a ROC curve: (false positive rate, true positive rate,
/// threshold) or a PR curve: (recall, precision, threshold).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurvePoint {
    pub x: f64,
    pub y: f64,
    pub threshold: f64,
}

/// ROC curve points at every distinct score, from (0,0) to (1,1).
pub fn roc_curve(y: &[usize], score: &[f64]) -> Vec<CurvePoint> {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let pos = y.iter().filter(|&&v| v == 1).count() as f64;
    let neg = y.len() as f64 - pos;
    let mut out = vec![CurvePoint {
        x: 0.0,
        y: 0.0,
        threshold: f64::INFINITY,
    }];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (n, &i) in idx.iter().enumerate() {
        if y[i] == 1 {
            tp += 1.0
        } else {
            fp += 1.0
        }
        let last_of_tie = n + 1 == idx.len() || score[idx[n + 1]] != score[i];
        if last_of_tie {
            out.push(CurvePoint {
                x: if neg > 0.0 { fp / neg } else { 0.0 },
                y: if pos > 0.0 { tp / pos } else { 0.0 },
                threshold: score[i],
            });
        }
    }
    out
}

/// Precision–recall points at every distinct score, by descending score.
pub fn pr_curve(y: &[usize], score: &[f64]) -> Vec<CurvePoint> {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let pos = y.iter().filter(|&&v| v == 1).count() as f64;
    let mut out = Vec::new();
    let (mut tp, mut seen) = (0.0, 0.0);
    for (n, &i) in idx.iter().enumerate() {
        seen += 1.0;
        if y[i] == 1 {
            tp += 1.0;
        }
        if n + 1 == idx.len() || score[idx[n + 1]] != score[i] {
            out.push(CurvePoint {
                x: if pos > 0.0 { tp / pos } else { 0.0 },
                y: tp / seen,
                threshold: score[i],
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn classification_by_hand() {
        let y = [0, 0, 1, 1, 1, 2];
        let p = [0, 1, 1, 1, 0, 2];
        assert!(close(accuracy(&y, &p), 4.0 / 6.0));
        assert_eq!(
            confusion_matrix(&y, &p, 3),
            vec![vec![1, 1, 0], vec![1, 2, 0], vec![0, 0, 1]]
        );
        // class 1: tp 2, predicted 3, actual 3 → p = r = f1 = 2/3
        let pc = per_class(&y, &p, 3);
        assert!(close(pc[1].0, 2.0 / 3.0) && close(pc[1].1, 2.0 / 3.0));
        // recalls: 1/2, 2/3, 1 → mean 13/18
        assert!(close(balanced_accuracy(&y, &p, 3), 13.0 / 18.0));
        // f1s: 0.5, 2/3, 1
        assert!(close(f1_macro(&y, &p, 3), (0.5 + 2.0 / 3.0 + 1.0) / 3.0));
        let yb = [0, 1, 1, 0];
        let pb = [0, 1, 0, 1];
        assert!(
            close(precision(&yb, &pb), 0.5)
                && close(recall(&yb, &pb), 0.5)
                && close(f1(&yb, &pb), 0.5)
        );
    }

    #[test]
    fn auc_and_curves_by_hand() {
        // scikit-learn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75
        let y = [0, 0, 1, 1];
        let s = [0.1, 0.4, 0.35, 0.8];
        assert!(close(roc_auc(&y, &s), 0.75));
        assert!(close(roc_auc(&[0, 1], &[0.5, 0.5]), 0.5), "ties count half");
        let roc = roc_curve(&y, &s);
        assert_eq!(roc.first().map(|p| (p.x, p.y)), Some((0.0, 0.0)));
        assert_eq!(roc.last().map(|p| (p.x, p.y)), Some((1.0, 1.0)));
        assert_eq!(roc.len(), 5);
        let pr = pr_curve(&y, &s);
        assert!(close(pr[0].y, 1.0) && close(pr[0].x, 0.5));
        assert!(close(pr.last().unwrap().x, 1.0) && close(pr.last().unwrap().y, 0.5));
        // log loss of perfect-ish and uniform predictions
        assert!(close(
            log_loss(&[0, 1], &[0.5, 0.5, 0.5, 0.5], 2),
            std::f64::consts::LN_2
        ));
        // OvR AUC of a perfect ranking is 1
        let proba = [0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8];
        assert!(close(roc_auc_ovr(&[0, 1, 2], &proba, 3), 1.0));
    }

    #[test]
    fn regression_by_hand() {
        let y = [3.0, -0.5, 2.0, 7.0];
        let p = [2.5, 0.0, 2.0, 8.0];
        // scikit-learn: mse 0.375, mae 0.5, r2 0.9486081370449679
        assert!(close(mse(&y, &p), 0.375));
        assert!(close(rmse(&y, &p), 0.375f64.sqrt()));
        assert!(close(mae(&y, &p), 0.5));
        assert!(close(r2(&y, &p), 0.948_608_137_044_967_9));
    }
}
