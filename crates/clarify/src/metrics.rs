//! The metrics themselves, on boolean columns: `facet[i]` is true for the
//! sensitive group d (false: the rest, a), `label[i]` for a positive
//! observed label, `pred[i]` for a positive predicted label.
//!
//! Each function returns `Ok(value)` (possibly ±infinity where Clarify's
//! division gives it) or `Err(reason)` where Clarify reports the metric as
//! undefined (its `"value": null` with an `"error"`). Divisions follow
//! smclarify's `divide`: 0/0 = 0, x/0 = ±∞.

/// A metric's value, or why it is undefined for this data.
pub type MetricValue = Result<f64, String>;

/// smclarify's `divide`: 0/0 is 0, a non-zero over 0 is ±∞.
pub fn divide(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        if a == 0.0 {
            0.0
        } else if a < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    } else {
        a / b
    }
}

/// Per-facet counts of one boolean column (`flag`) and, optionally, of the
/// confusion matrix of `label` against `pred`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Side {
    n: f64,
    pos: f64,
}

fn sides(facet: &[bool], flag: &[bool]) -> (Side, Side) {
    let (mut a, mut d) = (Side::default(), Side::default());
    for (&f, &x) in facet.iter().zip(flag) {
        let s = if f { &mut d } else { &mut a };
        s.n += 1.0;
        if x {
            s.pos += 1.0;
        }
    }
    (a, d)
}

fn non_empty(facet: &[bool]) -> Result<(), String> {
    if !facet.iter().any(|&f| f) {
        return Err("Facet set is empty".into());
    }
    if facet.iter().all(|&f| f) {
        return Err("Negated facet set is empty".into());
    }
    Ok(())
}

/// Confusion counts of one facet side.
#[derive(Debug, Default, Clone, Copy)]
struct Confusion {
    tp: f64,
    fp: f64,
    fn_: f64,
    tn: f64,
}

impl Confusion {
    fn n(&self) -> f64 {
        self.tp + self.fp + self.fn_ + self.tn
    }
}

fn confusion(facet: &[bool], label: &[bool], pred: &[bool]) -> (Confusion, Confusion) {
    let (mut a, mut d) = (Confusion::default(), Confusion::default());
    for i in 0..facet.len() {
        let c = if facet[i] { &mut d } else { &mut a };
        match (label[i], pred[i]) {
            (true, true) => c.tp += 1.0,
            (false, true) => c.fp += 1.0,
            (true, false) => c.fn_ += 1.0,
            (false, false) => c.tn += 1.0,
        }
    }
    (a, d)
}

/// `x − y`, except that two equal infinities give 0 (as smclarify).
fn diff_inf(x: f64, y: f64) -> f64 {
    if x == y && x == f64::INFINITY {
        0.0
    } else {
        x - y
    }
}

// ---------------------------------------------------------------- pre-training

/// Class Imbalance: (n_a − n_d) / (n_a + n_d).
pub fn ci(facet: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let nd = facet.iter().filter(|&&f| f).count() as f64;
    let na = facet.len() as f64 - nd;
    Ok((na - nd) / (na + nd))
}

/// Difference in Positive Proportions (of labels, or of predicted labels
/// for DPPL): q_a − q_d.
pub fn dpl(facet: &[bool], label: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = sides(facet, label);
    Ok(a.pos / a.n - d.pos / d.n)
}

/// The label distributions of the two facets over the label values present
/// (non-zero) in both, as smclarify's `pdfs_aligned_nonzero`: the values
/// are the binary label (negative first), each a share of its facet.
fn aligned(facet: &[bool], label: &[bool]) -> Result<(Vec<f64>, Vec<f64>), String> {
    let (a, d) = sides(facet, label);
    let mut pa = Vec::new();
    let mut pd = Vec::new();
    for (ca, cd) in [(a.n - a.pos, d.n - d.pos), (a.pos, d.pos)] {
        if ca > 0.0 && cd > 0.0 {
            pa.push(ca / a.n);
            pd.push(cd / d.n);
        }
    }
    if pa.is_empty() {
        return Err("No instance of common facet found, dataset may be too small".into());
    }
    Ok((pa, pd))
}

/// Kullback–Leibler divergence KL(P_a ‖ P_d) = Σ P_a log(P_a / P_d).
pub fn kl(facet: &[bool], label: &[bool]) -> MetricValue {
    let (pa, pd) = aligned(facet, label)?;
    Ok(pa.iter().zip(&pd).map(|(a, d)| a * (a / d).ln()).sum())
}

/// Jensen–Shannon divergence ½[KL(P_a ‖ P) + KL(P_d ‖ P)], P = ½(P_a + P_d).
pub fn js(facet: &[bool], label: &[bool]) -> MetricValue {
    let (pa, pd) = aligned(facet, label)?;
    let p: Vec<f64> = pa.iter().zip(&pd).map(|(a, d)| 0.5 * (a + d)).collect();
    let ka: f64 = pa.iter().zip(&p).map(|(a, m)| a * (a / m).ln()).sum();
    let kd: f64 = pd.iter().zip(&p).map(|(d, m)| d * (d / m).ln()).sum();
    Ok(0.5 * (ka + kd))
}

/// L²-norm of P_a − P_d.
pub fn lp(facet: &[bool], label: &[bool]) -> MetricValue {
    let (pa, pd) = aligned(facet, label)?;
    Ok(pa
        .iter()
        .zip(&pd)
        .map(|(a, d)| (a - d) * (a - d))
        .sum::<f64>()
        .sqrt())
}

/// Total variation distance ½ L¹(P_a, P_d).
pub fn tvd(facet: &[bool], label: &[bool]) -> MetricValue {
    let (pa, pd) = aligned(facet, label)?;
    Ok(0.5 * pa.iter().zip(&pd).map(|(a, d)| (a - d).abs()).sum::<f64>())
}

/// Kolmogorov–Smirnov distance max |P_a − P_d|.
pub fn ks(facet: &[bool], label: &[bool]) -> MetricValue {
    let (pa, pd) = aligned(facet, label)?;
    Ok(pa
        .iter()
        .zip(&pd)
        .map(|(a, d)| (a - d).abs())
        .fold(0.0, f64::max))
}

/// Conditional Demographic Disparity (CDDL with labels, CDDPL with predicted
/// labels): per group i, DD_i = n_d⁽⁰⁾/n⁽⁰⁾ − n_d⁽¹⁾/n⁽¹⁾ within the group
/// (a ratio with an empty denominator is 0), then Σ n_i·DD_i / Σ n_i.
/// `group[i]` is row i's group code.
pub fn cdd(facet: &[bool], label: &[bool], group: Option<&[usize]>) -> MetricValue {
    let Some(group) = group else {
        return Err("Group variable is empty or not provided".into());
    };
    if !label.iter().any(|&l| l) {
        return Err("No positive labels in set".into());
    }
    if label.iter().all(|&l| l) {
        return Err("No negative labels in set".into());
    }
    let groups = group.iter().copied().max().map_or(0, |m| m + 1);
    // per group: n, positives, positives in d, negatives, negatives in d
    let mut c = vec![[0.0f64; 5]; groups];
    for i in 0..facet.len() {
        let g = &mut c[group[i]];
        g[0] += 1.0;
        if label[i] {
            g[1] += 1.0;
            if facet[i] {
                g[2] += 1.0;
            }
        } else {
            g[3] += 1.0;
            if facet[i] {
                g[4] += 1.0;
            }
        }
    }
    let (mut num, mut den) = (0.0, 0.0);
    for g in c.iter().filter(|g| g[0] > 0.0) {
        let accepted = if g[1] != 0.0 { g[2] / g[1] } else { 0.0 };
        let rejected = if g[3] != 0.0 { g[4] / g[3] } else { 0.0 };
        num += g[0] * (rejected - accepted);
        den += g[0];
    }
    Ok(divide(num, den))
}

// --------------------------------------------------------------- post-training

/// Disparate Impact: q̂_d / q̂_a.
pub fn di(facet: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = sides(facet, pred);
    Ok(divide(d.pos / d.n, a.pos / a.n))
}

/// Difference in Conditional Acceptance: c_a − c_d, c = n⁽¹⁾ / n̂⁽¹⁾.
pub fn dca(facet: &[bool], label: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = confusion(facet, label, pred);
    let ca = divide(a.tp + a.fn_, a.tp + a.fp);
    let cd = divide(d.tp + d.fn_, d.tp + d.fp);
    Ok(diff_inf(ca, cd))
}

/// Difference in Conditional Rejection: r_d − r_a, r = n⁽⁰⁾ / n̂⁽⁰⁾.
pub fn dcr(facet: &[bool], label: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = confusion(facet, label, pred);
    let ra = divide(a.tn + a.fp, a.tn + a.fn_);
    let rd = divide(d.tn + d.fp, d.tn + d.fn_);
    Ok(diff_inf(rd, ra))
}

/// Difference in Acceptance Rates (precision): TP_a/n̂_a⁽¹⁾ − TP_d/n̂_d⁽¹⁾.
pub fn dar(facet: &[bool], label: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = confusion(facet, label, pred);
    Ok(diff_inf(
        divide(a.tp, a.tp + a.fp),
        divide(d.tp, d.tp + d.fp),
    ))
}

/// Difference in Rejection Rates: TN_d/n̂_d⁽⁰⁾ − TN_a/n̂_a⁽⁰⁾.
pub fn drr(facet: &[bool], label: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = confusion(facet, label, pred);
    let ra = divide(a.tn, a.tn + a.fn_);
    let rd = divide(d.tn, d.tn + d.fn_);
    Ok(diff_inf(rd, ra))
}

/// Accuracy Difference: ACC_a − ACC_d.
pub fn ad(facet: &[bool], label: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = confusion(facet, label, pred);
    Ok(diff_inf(
        divide(a.tp + a.tn, a.n()),
        divide(d.tp + d.tn, d.n()),
    ))
}

/// Recall Difference: TPR_a − TPR_d.
pub fn rd(facet: &[bool], label: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = confusion(facet, label, pred);
    Ok(diff_inf(
        divide(a.tp, a.tp + a.fn_),
        divide(d.tp, d.tp + d.fn_),
    ))
}

/// Specificity Difference: TNR_d − TNR_a.
pub fn sd(facet: &[bool], label: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = confusion(facet, label, pred);
    let sa = divide(a.tn, a.tn + a.fp);
    let sdv = divide(d.tn, d.tn + d.fp);
    Ok(diff_inf(sdv, sa))
}

/// Treatment Equality: FN_d/FP_d − FN_a/FP_a.
pub fn te(facet: &[bool], label: &[bool], pred: &[bool]) -> MetricValue {
    non_empty(facet)?;
    let (a, d) = confusion(facet, label, pred);
    let ta = divide(a.fn_, a.fp);
    let td = divide(d.fn_, d.fp);
    Ok(diff_inf(td, ta))
}

/// Generalized Entropy with α = 2 over the whole dataset: benefit
/// b_i = ŷ_i − y_i + 1, GE = Σ((b_i/b̄)² − 1) / (2n).
pub fn ge(label: &[bool], pred: &[bool]) -> MetricValue {
    let n = label.len() as f64;
    if label.is_empty() {
        return Err("dataset must be non-empty".into());
    }
    let b: Vec<f64> = label
        .iter()
        .zip(pred)
        .map(|(&y, &p)| f64::from(u8::from(p)) - f64::from(u8::from(y)) + 1.0)
        .collect();
    let mean = b.iter().sum::<f64>() / n;
    if mean == 0.0 {
        return Err("All predicted labels are false negatives. There should be at least one prediction that is not false negative.".into());
    }
    let alpha = 2.0;
    let s: f64 = b.iter().map(|v| (v / mean).powf(alpha) - 1.0).sum();
    Ok(s / (n * alpha * (alpha - 1.0)))
}

/// The features the flip test compares rows by: row-major numbers, every
/// column but the facet, the label and the predicted label.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub cols: usize,
    pub values: Vec<f64>,
}

impl Features {
    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.cols..(i + 1) * self.cols]
    }
}

/// k of the flip test's k-NN: 5, or 1 when facet a has at most 9 rows
/// (smclarify's `FT_DEFAULT_NEIGHBOR`, `FT_MIN_NEIGHBOR`,
/// `FT_SAMPLES_COUNT_THRESHOLD`).
pub fn ft_neighbours(na: usize) -> usize {
    if na > 9 { 5 } else { 1 }
}

/// Flip Test, as smclarify computes it: a k-NN classifier (Euclidean, uniform
/// votes) fitted on facet a's rows with the model's predicted labels
/// predicts each row of facet d; FT = (|{ŷ = 1, kNN = 0}| − |{ŷ = 0, kNN = 1}|) / n_d.
/// Among neighbours at equal distance the earlier row wins.
///
/// `features` is `Err` with the reason when the data cannot be used (a
/// non-numeric column, a missing value), which makes FT undefined.
pub fn ft(facet: &[bool], pred: &[bool], features: Result<&Features, &str>) -> MetricValue {
    non_empty(facet)?;
    let x = features.map_err(str::to_string)?;
    let a: Vec<usize> = (0..facet.len()).filter(|&i| !facet[i]).collect();
    let d: Vec<usize> = (0..facet.len()).filter(|&i| facet[i]).collect();
    let k = ft_neighbours(a.len());
    let (mut pos, mut neg) = (0i64, 0i64);
    let mut best: Vec<(f64, usize)> = Vec::with_capacity(k + 1);
    for &i in &d {
        let xi = x.row(i);
        best.clear();
        for (rank, &j) in a.iter().enumerate() {
            let xj = x.row(j);
            let mut dist = 0.0;
            for c in 0..x.cols {
                let t = xi[c] - xj[c];
                dist += t * t;
            }
            if best.len() == k && dist >= best[k - 1].0 {
                continue;
            }
            // insert keeping (distance, rank) order; equal distances keep
            // the earlier row first
            let at = best.partition_point(|&(bd, _)| bd <= dist);
            best.insert(at, (dist, rank));
            best.truncate(k);
        }
        let votes = best.iter().filter(|&&(_, r)| pred[a[r]]).count();
        let knn = 2 * votes > k;
        match (pred[i], knn) {
            (true, false) => pos += 1,
            (false, true) => neg += 1,
            _ => {}
        }
    }
    Ok(divide((pos - neg) as f64, d.len() as f64))
}
