//! Small statistics the reports need beyond `tabular::Profile` and
//! `learn::metrics`: a seeded row sample, Pearson correlation, the
//! correlation ratio, Cramér's V and average precision.

use std::collections::HashMap;

/// Up to `cap` row indices out of `n`, chosen by the shared split's hash
/// (deterministic), in ascending order; all rows when `n <= cap`.
pub fn sample_rows(n: usize, cap: usize) -> Vec<usize> {
    if n <= cap {
        return (0..n).collect();
    }
    let mut idx: Vec<(u64, usize)> = (0..n).map(|i| (tabular::split::key(i as u64), i)).collect();
    idx.select_nth_unstable(cap);
    let mut out: Vec<usize> = idx[..cap].iter().map(|p| p.1).collect();
    out.sort_unstable();
    out
}

/// Pearson correlation over the rows where both values are present; NaN
/// when fewer than 3 such rows or either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (mut n, mut sa, mut sb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        if x.is_finite() && y.is_finite() {
            n += 1.0;
            sa += x;
            sb += y;
        }
    }
    if n < 3.0 {
        return f64::NAN;
    }
    let (ma, mb) = (sa / n, sb / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        if x.is_finite() && y.is_finite() {
            let (dx, dy) = (x - ma, y - mb);
            cov += dx * dy;
            va += dx * dx;
            vb += dy * dy;
        }
    }
    if va <= 0.0 || vb <= 0.0 {
        return f64::NAN;
    }
    (cov / (va.sqrt() * vb.sqrt())).clamp(-1.0, 1.0)
}

/// Correlation ratio η ∈ [0, 1]: how much of `y`'s variance the groups
/// explain (sqrt of between-group over total sum of squares). Rows with a
/// missing group or value are skipped.
pub fn correlation_ratio(groups: &[Option<u32>], y: &[f64]) -> f64 {
    let mut sums: HashMap<u32, (f64, f64)> = HashMap::new();
    let (mut n, mut total) = (0.0, 0.0);
    for (g, v) in groups.iter().zip(y) {
        if let (Some(g), true) = (g, v.is_finite()) {
            let e = sums.entry(*g).or_insert((0.0, 0.0));
            e.0 += 1.0;
            e.1 += v;
            n += 1.0;
            total += v;
        }
    }
    if n < 3.0 || sums.len() < 2 {
        return f64::NAN;
    }
    let mean = total / n;
    let mut ss_tot = 0.0;
    for (g, v) in groups.iter().zip(y) {
        if g.is_some() && v.is_finite() {
            ss_tot += (v - mean) * (v - mean);
        }
    }
    if ss_tot <= 0.0 {
        return f64::NAN;
    }
    let ss_between: f64 = sums
        .values()
        .map(|(c, s)| {
            let m = s / c;
            c * (m - mean) * (m - mean)
        })
        .sum();
    (ss_between / ss_tot).clamp(0.0, 1.0).sqrt()
}

/// Cramér's V ∈ [0, 1] between two categorical codes (bias-uncorrected).
pub fn cramers_v(a: &[Option<u32>], b: &[Option<u32>]) -> f64 {
    let mut joint: HashMap<(u32, u32), f64> = HashMap::new();
    let mut ra: HashMap<u32, f64> = HashMap::new();
    let mut rb: HashMap<u32, f64> = HashMap::new();
    let mut n = 0.0;
    for (x, y) in a.iter().zip(b) {
        if let (Some(x), Some(y)) = (x, y) {
            *joint.entry((*x, *y)).or_insert(0.0) += 1.0;
            *ra.entry(*x).or_insert(0.0) += 1.0;
            *rb.entry(*y).or_insert(0.0) += 1.0;
            n += 1.0;
        }
    }
    let k = ra.len().min(rb.len());
    if n < 3.0 || k < 2 {
        return f64::NAN;
    }
    // chi² = n (Σ n_ij² / (n_i n_j) − 1)
    let s: f64 = joint
        .iter()
        .map(|((x, y), c)| c * c / (ra[x] * rb[y]))
        .sum();
    let chi2 = n * (s - 1.0);
    (chi2 / (n * (k as f64 - 1.0))).clamp(0.0, 1.0).sqrt()
}

/// Average precision (scikit-learn's step-wise definition) from
/// `learn::metrics::pr_curve` points (recall ascending by construction).
pub fn average_precision(points: &[learn::metrics::CurvePoint]) -> f64 {
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    for p in points {
        ap += (p.x - prev_recall) * p.y;
        prev_recall = p.x;
    }
    ap
}

/// Exact quantile (linear interpolation) of sorted finite values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let f = pos - i as f64;
    if i + 1 < sorted.len() {
        sorted[i] * (1.0 - f) + sorted[i + 1] * f
    } else {
        sorted[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_by_hand() {
        let a = [1.0, 2.0, 3.0, 4.0, f64::NAN];
        let b = [2.0, 4.0, 6.0, 8.0, 100.0];
        assert!((pearson(&a, &b) - 1.0).abs() < 1e-12);
        let c = [4.0, 3.0, 2.0, 1.0, 0.0];
        assert!((pearson(&a, &c) + 1.0).abs() < 1e-12);
        assert!(pearson(&a, &[1.0; 5]).is_nan());
    }

    #[test]
    fn association_measures_are_one_for_perfect_dependence() {
        let g = [Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)];
        let y = [1.0, 1.0, 5.0, 5.0, 9.0, 9.0];
        assert!((correlation_ratio(&g, &y) - 1.0).abs() < 1e-12);
        assert!((cramers_v(&g, &g) - 1.0).abs() < 1e-12);
        // independence → 0
        let a = [Some(0), Some(0), Some(1), Some(1)];
        let b = [Some(0), Some(1), Some(0), Some(1)];
        assert!(cramers_v(&a, &b).abs() < 1e-12);
    }

    #[test]
    fn average_precision_matches_sklearn() {
        // sklearn: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333…
        let pts = learn::metrics::pr_curve(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]);
        assert!((average_precision(&pts) - 0.833_333_333).abs() < 1e-6);
    }

    #[test]
    fn sample_is_deterministic_and_sorted() {
        let s = sample_rows(1000, 100);
        assert_eq!(s.len(), 100);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, sample_rows(1000, 100));
        assert_eq!(sample_rows(10, 100), (0..10).collect::<Vec<_>>());
    }
}
