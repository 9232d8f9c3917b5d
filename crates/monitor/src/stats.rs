//! The drift statistics, each a plain function of samples or counts.
//!
//! - [`ks_2samp`]: two-sample Kolmogorov–Smirnov statistic and two-sided
//!   p-value, equal to `scipy.stats.ks_2samp(a, b)` (method `auto`: the
//!   exact distribution when both samples have at most 10,000 values, else
//!   the one-sample Kolmogorov distribution at `n = round(n1·n2/(n1+n2))`
//!   evaluated the way scipy's `kstwo.sf` does).
//! - [`chi2_contingency`]: Pearson's χ² on a 2×K table of counts, with
//!   Yates' continuity correction when there is one degree of freedom, as
//!   `scipy.stats.chi2_contingency`.
//! - [`wasserstein`]: the first Wasserstein distance between two samples,
//!   as `scipy.stats.wasserstein_distance`.
//! - [`psi`] and [`jensen_shannon`] on binned proportions (the bins are the
//!   caller's: reference deciles for numbers, categories for labels; see
//!   the crate docs).

/// Result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ks {
    pub statistic: f64,
    pub pvalue: f64,
    /// Whether the p-value is from the exact distribution (else asymptotic).
    pub exact: bool,
}

/// Largest sample for which the exact p-value is used (scipy's `MAX_AUTO_N`).
pub const KS_EXACT_MAX: usize = 10_000;

/// Two-sample KS test on two **sorted** samples without NaN. None when a
/// sample is empty.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Option<Ks> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // ECDF differences at every observed value (right-continuous ECDFs)
    let (mut i, mut j) = (0usize, 0usize);
    let (mut max_d, mut min_d) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < n1 || j < n2 {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < n1 && a[i] <= v {
            i += 1;
        }
        while j < n2 && b[j] <= v {
            j += 1;
        }
        let d = i as f64 / n1 as f64 - j as f64 / n2 as f64;
        max_d = max_d.max(d);
        min_d = min_d.min(d);
    }
    let min_s = (-min_d).clamp(0.0, 1.0);
    let mut d = if min_s > max_d { min_s } else { max_d };
    let g = gcd(n1 as u64, n2 as u64);
    let exact = n1.max(n2) <= KS_EXACT_MAX;
    if exact {
        let lcm = (n1 as u64 / g) * n2 as u64;
        let h = (d * lcm as f64).round_ties_even() as u64;
        d = h as f64 / lcm as f64;
        let p = if h == 0 {
            1.0
        } else if n1 == n2 {
            prob_outside_square(n1 as u64, h)
        } else {
            prob_outside_lattice(n1 as u64, n2 as u64, g, h)
        };
        if p.is_finite() && (0.0..=1.0).contains(&p) {
            return Some(Ks {
                statistic: d,
                pvalue: p,
                exact: true,
            });
        }
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = (m * n / (m + n)).round_ties_even();
    Some(Ks {
        statistic: d,
        pvalue: kolmogorov_sf(en as u64, d).clamp(0.0, 1.0),
        exact: false,
    })
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// P(D_{n,n} ≥ h/n) by the reflection principle: 2 Σ_{k≥1} (−1)^{k−1}
/// C(2n, n−kh) / C(2n, n), each ratio built from the next one's factors
/// (nested form, no cancellation between large terms).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let mut acc = 0.0f64;
    let mut k = n / h;
    loop {
        // C(2n, n−(k+1)h) / C(2n, n−kh) as a product of h factors
        let mut ratio = 1.0f64;
        for j in 0..h {
            let num = n as f64 - (k * h + j) as f64;
            let den = (n + k * h + j + 1) as f64;
            ratio = num * ratio / den;
        }
        acc = ratio * (1.0 - acc);
        if k == 0 {
            break;
        }
        k -= 1;
    }
    2.0 * acc
}

/// P(D_{m,n} ≥ h/lcm) for m ≠ n: one minus the share of monotone lattice
/// paths from (0,0) to (m,n) that stay strictly inside |i/m − j/n| < h/lcm.
/// The share is carried as a probability (each point's value is its count
/// of inside paths over C(i+j, i)), so nothing overflows.
fn prob_outside_lattice(n1: u64, n2: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if n1 >= n2 { (n1, n2) } else { (n2, n1) };
    let (mg, ng) = ((m / g) as i128, (n / g) as i128);
    let h = h as i128;
    // j is inside at row i when |i·ng − j·mg| < h
    let window = |i: i128| -> (i128, i128) {
        let lo = (i * ng - h).div_euclid(mg) + 1; // smallest j with j·mg > i·ng − h
        let hi = (i * ng + h - 1).div_euclid(mg); // largest j with j·mg < i·ng + h
        (lo.max(0), hi.min(n as i128))
    };
    let mut prev = vec![0.0f64; n as usize + 1];
    let mut cur = vec![0.0f64; n as usize + 1];
    // row 0: only j = 0.. reachable by up-steps, each inside point has value 1
    let (lo0, hi0) = window(0);
    let mut prev_win = (lo0, hi0);
    for j in lo0..=hi0 {
        prev[j as usize] = if j == 0 || prev[j as usize - 1] > 0.0 {
            1.0
        } else {
            0.0
        };
    }
    for i in 1..=m as i128 {
        let (lo, hi) = window(i);
        if lo > hi {
            return 1.0;
        }
        let fi = i as f64;
        let mut left = 0.0f64; // value at (i, j−1)
        for j in lo..=hi {
            let up = if j >= prev_win.0 && j <= prev_win.1 {
                prev[j as usize]
            } else {
                0.0
            };
            let fj = j as f64;
            let v = if j == lo && lo > 0 {
                fi * up / (fi + fj)
            } else {
                (fi * up + fj * left) / (fi + fj)
            };
            cur[j as usize] = v;
            left = v;
        }
        // clear the previous row's window, then swap
        for j in prev_win.0..=prev_win.1 {
            prev[j as usize] = 0.0;
        }
        std::mem::swap(&mut prev, &mut cur);
        prev_win = (lo, hi);
    }
    let inside = if prev_win.1 == n as i128 {
        prev[n as usize]
    } else {
        0.0
    };
    1.0 - inside
}

// ------------------------------------------------------------- Kolmogorov

const LN_2PI: f64 = 1.8378770664093453;

/// ln(n! / n^n) by Stirling's series (terms to B16).
fn ln_nfact_over_npown(n: f64) -> f64 {
    // B_{2j} / (2j (2j−1)), j = 1..8
    const C: [f64; 8] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360360.0,
        1.0 / 156.0,
        -3617.0 / 122400.0,
    ];
    let r = 1.0 / n;
    let r2 = r * r;
    let mut s = 0.0;
    for c in C.iter().rev() {
        s = s * r2 + c;
    }
    0.5 * n.ln() - n + 0.5 * LN_2PI + r * s
}

/// P(D_n ≥ x) for the one-sample two-sided Kolmogorov statistic, choosing
/// the method by (n, x) as Simard & L'Ecuyer (2011) and scipy's `kstwo.sf`
/// do: Ruben–Gambino's closed forms at the ends, 2·Smirnov for large
/// deviations, Durbin's matrix (Marsaglia–Tsang–Wang) or the Pelz–Good
/// series otherwise.
pub fn kolmogorov_sf(n: u64, x: f64) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |p, i| p * (i as f64 / nf) * (2.0 * t - 1.0))
        } else {
            (ln_nfact_over_npown(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nx2 = t * x;
    if n <= 140 {
        if nx2 <= 4.0 {
            // Durbin's matrix is exact here (scipy uses Pomeranz's exact
            // recursion for 0.754693 < n·x² ≤ 4; same value)
            return (1.0 - durbin_cdf(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    if nx2 >= 370.0 {
        return 0.0;
    }
    if nx2 >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// P(D_n+ ≥ x), the one-sided Smirnov statistic, by the Birnbaum–Tingey
/// sum x Σ_j C(n,j) (1−x−j/n)^(n−j) (x+j/n)^(j−1), in logarithms.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let jmax = (nf * (1.0 - x)).floor() as u64;
    let mut logs = Vec::with_capacity(jmax as usize + 1);
    let mut ln_binom = 0.0f64;
    for j in 0..=jmax {
        if j > 0 {
            ln_binom += ((nf - j as f64 + 1.0) / j as f64).ln();
        }
        let jf = j as f64;
        let a = 1.0 - x - jf / nf;
        if a <= 0.0 {
            break;
        }
        let l = ln_binom + (nf - jf) * a.ln() + (jf - 1.0) * (x + jf / nf).ln();
        logs.push(l);
    }
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return 0.0;
    }
    let s: f64 = logs.iter().map(|l| (l - max).exp()).sum();
    (x.ln() + max + s.ln()).exp().clamp(0.0, 1.0)
}

/// P(D_n < d) by Durbin's matrix method as given by Marsaglia, Tsang and
/// Wang (2003): with d = (k − h)/n, the (k,k) entry of H^n times n!/n^n.
fn durbin_cdf(n: u64, d: f64) -> f64 {
    let nf = n as f64;
    let nd = nf * d;
    if d >= 1.0 {
        return 1.0;
    }
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut hm = vec![0.0f64; m * m];
    // entries 1/(i−j+1)! on and below the superdiagonal
    let mut inv_fact = vec![1.0f64; m + 1]; // inv_fact[i] = 1/i!
    for i in 1..=m {
        inv_fact[i] = inv_fact[i - 1] / i as f64;
    }
    for i in 0..m {
        for j in 0..m {
            if i + 1 >= j {
                hm[i * m + j] = inv_fact[i + 1 - j];
            }
        }
    }
    for i in 0..m {
        hm[i * m] -= h.powi(i as i32 + 1) * inv_fact[i + 1];
        hm[(m - 1) * m + i] -= h.powi((m - i) as i32) * inv_fact[m - i];
    }
    let corner = if 2.0 * h - 1.0 > 0.0 {
        (2.0 * h - 1.0).powi(m as i32)
    } else {
        0.0
    };
    hm[(m - 1) * m] += corner * inv_fact[m];

    let matmul = |a: &[f64], b: &[f64]| -> Vec<f64> {
        let mut c = vec![0.0f64; m * m];
        for i in 0..m {
            for l in 0..m {
                let x = a[i * m + l];
                if x == 0.0 {
                    continue;
                }
                let row = &b[l * m..(l + 1) * m];
                let out = &mut c[i * m..(i + 1) * m];
                for (o, y) in out.iter_mut().zip(row) {
                    *o += x * y;
                }
            }
        }
        c
    };
    const SCALE_EXP: i32 = 128;
    let big = 2f64.powi(SCALE_EXP);
    let mut pw: Vec<f64> = (0..m * m)
        .map(|i| if i % (m + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let mut pw_exp = 0i64;
    let mut hexp = 0i64;
    let mut e = n;
    while e > 0 {
        if e & 1 == 1 {
            pw = matmul(&pw, &hm);
            pw_exp += hexp;
        }
        hm = matmul(&hm, &hm);
        hexp *= 2;
        if hm[(k - 1) * m + k - 1].abs() > big {
            hm.iter_mut().for_each(|v| *v /= big);
            hexp += SCALE_EXP as i64;
        }
        e >>= 1;
    }
    let mut p = pw[(k - 1) * m + k - 1];
    let mut exp = pw_exp;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < 1.0 / big {
            p *= big;
            exp -= SCALE_EXP as i64;
        }
    }
    let p = p * 2f64.powi(exp.clamp(-2000, 2000) as i32);
    p.clamp(0.0, 1.0)
}

/// The Pelz–Good (1976) asymptotic series for P(D_n ≤ x):
/// K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^{3/2} with z = x√n, each term in
/// its theta-function form for small z.
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z * z * z, z.powi(4), z.powi(6));
    let qlog = -PI * PI / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let maxk = (16.0 * z / PI).ceil() as i64;
    // sums over odd m = 2k − 1 of c(m) q^(m²), nested from the largest k
    let mut k0 = 0.0f64;
    let mut k1 = 0.0f64;
    let mut k2 = 0.0f64;
    let mut k3 = 0.0f64;
    for k in (1..=maxk).rev() {
        let mf = (2 * k - 1) as f64;
        let (ms, m4, m6) = (mf * mf, mf.powi(4), mf.powi(6));
        let qp = q.powf(8.0 * k as f64);
        k0 = k0 * qp + 1.0;
        k1 = k1 * qp + (-z2 + pi2 / 4.0 * ms);
        k2 = k2 * qp
            + ((6.0 * z6 + 2.0 * z4)
                + (2.0 * z4 - 5.0 * z2) * pi2 / 4.0 * ms
                + pi4 * (1.0 - 2.0 * z2) / 16.0 * m4);
        k3 = k3 * qp
            + ((-30.0 * z6 - 90.0 * z.powi(8))
                + pi2 * (135.0 * z4 - 96.0 * z6) / 4.0 * ms
                + pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0 * m4
                + pi6 * (5.0 - 30.0 * z2) / 64.0 * m6);
    }
    let s2pi = (2.0 * PI).sqrt();
    k0 *= q * s2pi / z;
    k1 *= q * s2pi / (6.0 * z4);
    k2 *= q * s2pi / (72.0 * z.powi(7));
    k3 *= q * s2pi / (6480.0 * z.powi(10));
    // the sums over all integers k
    let q2 = (-pi2 / 2.0 / z2).exp();
    let mut e2 = 0.0f64;
    let mut e3 = 0.0f64;
    let s3z = 3f64.sqrt() * z;
    for k in (1..=maxk).rev() {
        let kf = k as f64;
        let qk = q2.powf(kf * kf);
        e2 += kf * kf * qk;
        let kpi = PI * kf;
        e3 += (s3z + kpi) * (s3z - kpi) * kf * kf * qk;
    }
    k2 += e2 * pi2 * s2pi / (-36.0 * z3);
    k3 += e3 * pi2 * s2pi / (216.0 * z6);
    k0 + k1 / nf.sqrt() + k2 / nf + k3 / nf.powf(1.5)
}

// ------------------------------------------------------------- χ²

/// Result of [`chi2_contingency`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chi2 {
    pub statistic: f64,
    pub pvalue: f64,
    pub dof: usize,
}

/// Pearson's χ² test of independence on a 2×K table (`a[i]`, `b[i]` the
/// counts of category i in the two samples). Categories counted in
/// neither sample are dropped. With one degree of freedom Yates'
/// correction moves each observed count 0.5 towards its expectation, as
/// scipy does. None when a sample has no counts.
pub fn chi2_contingency(a: &[f64], b: &[f64]) -> Option<Chi2> {
    let cols: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x, *y))
        .filter(|(x, y)| x + y > 0.0)
        .collect();
    let (ra, rb) = cols
        .iter()
        .fold((0.0, 0.0), |(s, t), (x, y)| (s + x, t + y));
    if ra <= 0.0 || rb <= 0.0 {
        return None;
    }
    let total = ra + rb;
    let dof = cols.len().saturating_sub(1);
    if dof == 0 {
        return Some(Chi2 {
            statistic: 0.0,
            pvalue: 1.0,
            dof: 0,
        });
    }
    let mut stat = 0.0;
    for &(x, y) in &cols {
        let c = x + y;
        for (obs, row) in [(x, ra), (y, rb)] {
            let exp = row * c / total;
            let mut o = obs;
            if dof == 1 {
                let diff = exp - o;
                o += diff.signum() * diff.abs().min(0.5);
            }
            stat += (o - exp) * (o - exp) / exp;
        }
    }
    Some(Chi2 {
        statistic: stat,
        pvalue: chi2_sf(stat, dof as f64),
        dof,
    })
}

/// Least expected count a category needs to keep its own column in the χ²
/// table (Cochran's rule of thumb; below it the χ² approximation is too
/// liberal and rare categories alone make p-values small).
pub const CHI2_MIN_EXPECTED: f64 = 5.0;

/// The 2×K table with the sparse categories merged: every category whose
/// smaller expected count (`min(ra, rb) × its total / grand total`) is
/// below [`CHI2_MIN_EXPECTED`] goes into one pooled column, kept last. The
/// pooled column, when it is itself below the rule, is merged into the
/// smallest remaining column. Returns the table and how many categories
/// were pooled (0: the table as given, empty categories dropped).
pub fn pool_sparse(a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<f64>, usize) {
    let (ra, rb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    let total = ra + rb;
    let small = ra.min(rb);
    let mut keep_a = Vec::new();
    let mut keep_b = Vec::new();
    let (mut pa, mut pb, mut pooled) = (0.0, 0.0, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        if x + y <= 0.0 {
            continue;
        }
        if total > 0.0 && small * (x + y) / total < CHI2_MIN_EXPECTED {
            pa += x;
            pb += y;
            pooled += 1;
        } else {
            keep_a.push(x);
            keep_b.push(y);
        }
    }
    if pooled > 0 {
        let sparse = total > 0.0 && small * (pa + pb) / total < CHI2_MIN_EXPECTED;
        if sparse && !keep_a.is_empty() {
            let i = (0..keep_a.len())
                .min_by(|&i, &j| (keep_a[i] + keep_b[i]).total_cmp(&(keep_a[j] + keep_b[j])))
                .unwrap_or(0);
            keep_a[i] += pa;
            keep_b[i] += pb;
        } else {
            keep_a.push(pa);
            keep_b.push(pb);
        }
    }
    (keep_a, keep_b, pooled)
}

/// Upper tail of the χ² distribution with `k` degrees of freedom.
pub fn chi2_sf(x: f64, k: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(k / 2.0, x / 2.0)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms; relative error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * LN_2PI + (x + 0.5) * t.ln() - t + a.ln()
}

/// P(X ≥ k) for X Poisson with mean `lambda`: 1 − Q(k, λ), the regularised
/// lower incomplete gamma (P(X ≤ k − 1) = Q(k, λ)).
pub fn poisson_sf(k: u64, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    (1.0 - gamma_q(k as f64, lambda)).clamp(0.0, 1.0)
}

/// Regularised upper incomplete gamma Q(a, x): the series for P when
/// x < a + 1, else Lentz's continued fraction.
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let lead = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        (1.0 - sum * lead.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (lead.exp() * h).clamp(0.0, 1.0)
    }
}

// ------------------------------------------------------------- distances

/// First Wasserstein distance ∫|F_a − F_b| between two **sorted** samples.
pub fn wasserstein(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (mut i, mut j) = (0usize, 0usize);
    let mut total = 0.0f64;
    let mut prev: Option<f64> = None;
    let mut diff = 0.0f64; // F_a − F_b just left of the next point
    loop {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        if let Some(p) = prev {
            total += diff.abs() * (v - p);
        }
        while i < n1 && a[i] <= v {
            i += 1;
        }
        while j < n2 && b[j] <= v {
            j += 1;
        }
        diff = i as f64 / n1 as f64 - j as f64 / n2 as f64;
        prev = Some(v);
    }
    Some(total)
}

/// Proportions summing to one (all zero if the counts are).
pub fn proportions(counts: &[f64]) -> Vec<f64> {
    let s: f64 = counts.iter().sum();
    counts
        .iter()
        .map(|c| if s > 0.0 { c / s } else { 0.0 })
        .collect()
}

/// Share that replaces an empty bin's proportion in [`psi`] (as Evidently).
pub const PSI_FLOOR: f64 = 1e-4;

/// Population Stability Index Σ (q − p) ln(q / p) over bins, reference
/// proportions `p`, current `q`; empty bins count as [`PSI_FLOOR`].
pub fn psi(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&p, &q)| {
            let (p, q) = (p.max(PSI_FLOOR), q.max(PSI_FLOOR));
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Jensen–Shannon distance (natural log, so at most √ln 2 ≈ 0.833) between
/// two distributions over the same bins, as
/// `scipy.spatial.distance.jensenshannon(p, q)`.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let p = proportions(p);
    let q = proportions(q);
    let kl = |x: &[f64], m: &[f64]| -> f64 {
        x.iter()
            .zip(m)
            .map(|(&a, &b)| if a > 0.0 { a * (a / b).ln() } else { 0.0 })
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    let js = (kl(&p, &m) + kl(&q, &m)) / 2.0;
    js.max(0.0).sqrt()
}

/// Largest absolute difference between two proportion vectors (the L∞
/// distance SageMaker uses for its baseline drift check).
pub fn linf(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// Counts of a sorted sample in the bins cut at `edges` (sorted, distinct):
/// bin 0 is (−∞, e0), bin i is [e(i−1), e(i)), the last [e(last), ∞).
pub fn bin_counts(sorted: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(edges.len() + 1);
    let mut start = 0usize;
    for &e in edges {
        let end = start + sorted[start..].partition_point(|&v| v < e);
        out.push((end - start) as f64);
        start = end;
    }
    out.push((sorted.len() - start) as f64);
    out
}

/// The reference deciles as bin edges: the values at ranks ⌊k·n/10⌋,
/// k = 1..9, of the sorted reference sample, duplicates removed (so a
/// column with few distinct values gets fewer bins).
pub fn decile_edges(sorted: &[f64]) -> Vec<f64> {
    let n = sorted.len();
    let mut edges: Vec<f64> = (1..10)
        .filter_map(|k| sorted.get(k * n / 10).copied())
        .collect();
    edges.dedup();
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_basic_values() {
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, 5.0, 6.0];
        let r = ks_2samp(&a, &b).unwrap();
        assert_eq!(r.statistic, 1.0);
        assert!((r.pvalue - 0.1).abs() < 1e-12, "{r:?}");
        assert!(r.exact);
        let same = ks_2samp(&a, &a).unwrap();
        assert_eq!((same.statistic, same.pvalue), (0.0, 1.0));
        assert!(ks_2samp(&[], &a).is_none());
    }

    #[test]
    fn chi2_and_gamma() {
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
        // χ²(2) survival is exp(−x/2)
        assert!((chi2_sf(3.0, 2.0) - (-1.5f64).exp()).abs() < 1e-14);
        let r = chi2_contingency(&[10.0, 10.0], &[10.0, 10.0]).unwrap();
        assert_eq!((r.statistic, r.pvalue, r.dof), (0.0, 1.0, 1));
        assert!(chi2_contingency(&[0.0, 0.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn poisson_tail_matches_its_sum() {
        for lambda in [0.3f64, 2.5, 40.0] {
            let mut term = (-lambda).exp();
            let mut below = 0.0;
            for k in 0..60u64 {
                let want = 1.0 - below;
                let got = poisson_sf(k, lambda);
                assert!(
                    (got - want).abs() < 1e-9,
                    "λ {lambda} k {k}: {got} vs {want}"
                );
                below += term;
                term *= lambda / (k + 1) as f64;
            }
        }
        assert_eq!(poisson_sf(1, 0.0), 0.0);
        assert_eq!(poisson_sf(0, 0.0), 1.0);
    }

    #[test]
    fn rare_categories_are_pooled_before_the_chi2_test() {
        // a 30,000-row reference and a 1,000-row window from the same
        // shares, two common categories and forty with 3 per 1,000 rows:
        // the window holds one of each rare category it happens to meet
        let mut a = vec![15_000.0, 11_400.0];
        let mut b = vec![500.0, 380.0];
        for i in 0..40 {
            a.push(90.0);
            b.push(if i % 3 == 0 { 8.0 } else { 0.0 });
        }
        let raw = chi2_contingency(&a, &b).unwrap();
        assert!(raw.pvalue < 1e-6, "the raw table alarms: {raw:?}");
        let (pa, pb, pooled) = pool_sparse(&a, &b);
        assert_eq!(pooled, 40);
        assert_eq!((pa.len(), pb.len()), (3, 3));
        assert_eq!(pa.iter().sum::<f64>(), a.iter().sum::<f64>());
        assert_eq!(pb.iter().sum::<f64>(), b.iter().sum::<f64>());
        let r = chi2_contingency(&pa, &pb).unwrap();
        assert!(r.pvalue > 0.05, "the same shares pooled do not: {r:?}");
        // nothing sparse: the table is kept (empty categories dropped)
        let (pa, pb, pooled) = pool_sparse(&[50.0, 0.0, 60.0], &[40.0, 0.0, 30.0]);
        assert_eq!((pa, pb, pooled), (vec![50.0, 60.0], vec![40.0, 30.0], 0));
        // a pooled column that is itself sparse joins the smallest column
        let (pa, pb, pooled) = pool_sparse(&[100.0, 200.0, 1.0], &[100.0, 200.0, 0.0]);
        assert_eq!(
            (pa, pb, pooled),
            (vec![101.0, 200.0], vec![100.0, 200.0], 1)
        );
    }

    #[test]
    fn distances() {
        assert_eq!(wasserstein(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]), Some(5.0));
        assert_eq!(jensen_shannon(&[1.0, 0.0], &[1.0, 0.0]), 0.0);
        assert!((jensen_shannon(&[1.0, 0.0], &[0.0, 1.0]) - 2f64.ln().sqrt()).abs() < 1e-15);
        assert_eq!(psi(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        assert_eq!(
            bin_counts(&[1.0, 2.0, 2.0, 3.0, 9.0], &[2.0, 3.0]),
            [1.0, 2.0, 2.0]
        );
        let s: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(
            decile_edges(&s),
            [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
        );
        assert_eq!(decile_edges(&[1.0; 50]), [1.0]);
    }
}
