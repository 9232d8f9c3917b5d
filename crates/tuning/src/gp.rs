//! A Gaussian process for the Bayesian strategy: zero mean on standardised
//! objectives, an RBF kernel `exp(−|a − b|² / 2ℓ²)` on the unit-cube
//! encoding, a noise term, and the length scale and noise chosen from a small
//! grid by the log marginal likelihood. Small on purpose: a tuning job sees
//! at most 500 points.

/// A fitted process.
#[derive(Debug, Clone)]
pub struct Gp {
    x: Vec<Vec<f64>>,
    /// `K⁻¹ y` (standardised y).
    alpha: Vec<f64>,
    /// The lower Cholesky factor of `K + σ²I`, row-major n × n.
    chol: Vec<f64>,
    pub length: f64,
    pub noise: f64,
    y_mean: f64,
    y_std: f64,
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// In-place lower Cholesky factor of a symmetric n × n matrix; false when it
/// is not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
        for k in j + 1..n {
            a[j * n + k] = 0.0;
        }
    }
    true
}

/// Solve `L z = b` (L lower triangular).
fn solve_lower(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = b.to_vec();
    for i in 0..n {
        let mut s = z[i];
        for k in 0..i {
            s -= l[i * n + k] * z[k];
        }
        z[i] = s / l[i * n + i];
    }
    z
}

/// Solve `Lᵀ z = b`.
fn solve_upper_t(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = b.to_vec();
    for i in (0..n).rev() {
        let mut s = z[i];
        for k in i + 1..n {
            s -= l[k * n + i] * z[k];
        }
        z[i] = s / l[i * n + i];
    }
    z
}

impl Gp {
    /// Fit to points `x` (unit-cube coordinates) and values `y`; `None`
    /// without at least two points or when no kernel on the grid factors.
    pub fn fit(x: &[Vec<f64>], y: &[f64]) -> Option<Gp> {
        let n = x.len();
        if n < 2 || y.len() != n {
            return None;
        }
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - y_mean) * (v - y_mean)).sum::<f64>() / n as f64;
        let y_std = if var > 1e-24 { var.sqrt() } else { 1.0 };
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_std).collect();
        let dims = x.first().map_or(1, Vec::len).max(1) as f64;
        let d2: Vec<f64> = (0..n * n).map(|k| sq_dist(&x[k / n], &x[k % n])).collect();
        let mut best: Option<(f64, Gp)> = None;
        for base in [0.05, 0.1, 0.2, 0.35, 0.6, 1.0, 1.8] {
            let length = base * dims.sqrt();
            for noise in [1e-6, 1e-4, 1e-2, 0.1] {
                let mut k: Vec<f64> = d2
                    .iter()
                    .map(|d| (-0.5 * d / (length * length)).exp())
                    .collect();
                for i in 0..n {
                    k[i * n + i] += noise;
                }
                if !cholesky(&mut k, n) {
                    continue;
                }
                let alpha = solve_upper_t(&k, n, &solve_lower(&k, n, &ys));
                // log p(y) = −½ yᵀα − Σ ln L_ii − n/2 ln 2π
                let fit: f64 = ys.iter().zip(&alpha).map(|(a, b)| a * b).sum::<f64>();
                let logdet: f64 = (0..n).map(|i| k[i * n + i].ln()).sum();
                let lml = -0.5 * fit - logdet;
                if lml.is_finite() && best.as_ref().is_none_or(|(b, _)| lml > *b) {
                    best = Some((
                        lml,
                        Gp {
                            x: x.to_vec(),
                            alpha,
                            chol: k,
                            length,
                            noise,
                            y_mean,
                            y_std,
                        },
                    ));
                }
            }
        }
        best.map(|(_, g)| g)
    }

    /// The posterior mean and standard deviation (of the latent function,
    /// in the units of `y`) at `p`.
    pub fn predict(&self, p: &[f64]) -> (f64, f64) {
        let n = self.x.len();
        let l2 = self.length * self.length;
        let k: Vec<f64> = self
            .x
            .iter()
            .map(|xi| (-0.5 * sq_dist(xi, p) / l2).exp())
            .collect();
        let mean: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let v = solve_lower(&self.chol, n, &k);
        let var = (1.0 - v.iter().map(|a| a * a).sum::<f64>()).max(1e-12);
        (self.y_mean + mean * self.y_std, var.sqrt() * self.y_std)
    }
}

/// The standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal distribution function (through [`erfc`]).
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' `erfcc`, Chebyshev
/// fit; relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Expected improvement below `best` (minimisation) of a normal
/// prediction, with a small margin `xi`.
pub fn expected_improvement(mean: f64, sd: f64, best: f64, xi: f64) -> f64 {
    let gain = best - mean - xi;
    if sd <= 1e-12 {
        return gain.max(0.0);
    }
    let z = gain / sd;
    (gain * norm_cdf(z) + sd * norm_pdf(z)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_distribution() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.959964) - 0.975).abs() < 1e-6);
        assert!((norm_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
        assert!(norm_cdf(-40.0) >= 0.0 && norm_cdf(40.0) <= 1.0);
    }

    #[test]
    fn the_process_interpolates_and_is_unsure_far_away() {
        let f = |x: f64| (6.0 * x).sin() + x;
        let xs: Vec<Vec<f64>> = (0..8).map(|i| vec![i as f64 / 7.0]).collect();
        let ys: Vec<f64> = xs.iter().map(|x| f(x[0])).collect();
        let gp = Gp::fit(&xs, &ys).unwrap();
        for (x, y) in xs.iter().zip(&ys) {
            let (m, s) = gp.predict(x);
            assert!((m - y).abs() < 0.05, "{m} vs {y}");
            assert!(s < 0.1, "{s}");
        }
        let (m, _) = gp.predict(&[0.5 / 7.0 * 3.0]);
        assert!((m - f(1.5 / 7.0)).abs() < 0.2, "{m}");
        // extrapolation far outside the data is uncertain
        let far = Gp::fit(&[vec![0.0, 0.0], vec![0.1, 0.0]], &[1.0, 2.0]).unwrap();
        let (_, s_near) = far.predict(&[0.05, 0.0]);
        let (_, s_far) = far.predict(&[1.0, 1.0]);
        assert!(s_far > s_near, "{s_far} {s_near}");
        // EI prefers a low mean, then a wide spread
        assert!(
            expected_improvement(0.0, 0.1, 1.0, 0.0) > expected_improvement(0.5, 0.1, 1.0, 0.0)
        );
        assert!(
            expected_improvement(2.0, 1.0, 1.0, 0.0) > expected_improvement(2.0, 0.1, 1.0, 0.0)
        );
        assert_eq!(expected_improvement(2.0, 0.0, 1.0, 0.0), 0.0);
        // duplicates and constant values still fit
        assert!(Gp::fit(&[vec![0.3], vec![0.3], vec![0.3]], &[1.0, 1.0, 1.0]).is_some());
    }
}
