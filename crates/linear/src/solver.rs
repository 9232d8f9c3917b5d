//! The numerical solvers: Cholesky (ridge), coordinate descent (elastic-net regression),
//! L-BFGS (smooth logistic objectives) and FISTA with restart (L1-penalised logistic).

/// Outcome of an iterative solve.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SolveInfo {
    pub n_iter: usize,
    pub converged: bool,
}

/// Soft-thresholding operator.
#[inline]
fn soft(v: f64, t: f64) -> f64 {
    if v > t {
        v - t
    } else if v < -t {
        v + t
    } else {
        0.0
    }
}

#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `(G) w = rhs` in place for a symmetric positive-definite `G` (`d × d`, row-major).
/// Returns `None` when `G` is not numerically positive definite.
pub(crate) fn cholesky_solve(mut g: Vec<f64>, d: usize, rhs: &[f64]) -> Option<Vec<f64>> {
    // In-place lower-triangular factorisation G = L Lᵀ.
    let mut max_diag = 0.0f64;
    for j in 0..d {
        max_diag = max_diag.max(g[j * d + j].abs());
    }
    for j in 0..d {
        let mut s = g[j * d + j];
        for k in 0..j {
            s -= g[j * d + k] * g[j * d + k];
        }
        if s.is_nan() || s <= max_diag * 1e-13 || s <= 0.0 {
            return None;
        }
        let ljj = s.sqrt();
        g[j * d + j] = ljj;
        for i in (j + 1)..d {
            let mut s = g[i * d + j];
            for k in 0..j {
                s -= g[i * d + k] * g[j * d + k];
            }
            g[i * d + j] = s / ljj;
        }
    }
    // Forward then backward substitution.
    let mut z = rhs.to_vec();
    for i in 0..d {
        let mut s = z[i];
        for k in 0..i {
            s -= g[i * d + k] * z[k];
        }
        z[i] = s / g[i * d + i];
    }
    for i in (0..d).rev() {
        let mut s = z[i];
        for k in (i + 1)..d {
            s -= g[k * d + i] * z[k];
        }
        z[i] = s / g[i * d + i];
    }
    Some(z)
}

/// Coordinate descent for `½‖y − Xw‖² + l1‖w‖₁ + ½ l2‖w‖²` (penalty passed as `(l1, l2)`) on a column-major (`d` columns of
/// `n`) matrix. Stops when the largest `|Δw_j|·‖x_j‖` of a sweep is `≤ tol·‖y‖`.
pub(crate) fn coordinate_descent(
    cols: &[f64],
    n: usize,
    d: usize,
    y: &[f64],
    (l1, l2): (f64, f64),
    max_iter: usize,
    tol: f64,
) -> (Vec<f64>, SolveInfo) {
    let mut w = vec![0.0; d];
    let mut r = y.to_vec();
    let ynorm = dot(y, y).sqrt();
    if ynorm == 0.0 {
        return (
            w,
            SolveInfo {
                n_iter: 0,
                converged: true,
            },
        );
    }
    let norms: Vec<f64> = (0..d)
        .map(|j| {
            let c = &cols[j * n..(j + 1) * n];
            dot(c, c)
        })
        .collect();
    let mut info = SolveInfo {
        n_iter: 0,
        converged: false,
    };
    for it in 0..max_iter {
        let mut max_change = 0.0f64;
        for j in 0..d {
            let nj = norms[j];
            if nj == 0.0 {
                continue;
            }
            let c = &cols[j * n..(j + 1) * n];
            let old = w[j];
            let rho = dot(c, &r) + nj * old;
            let new = soft(rho, l1) / (nj + l2);
            if new != old {
                let delta = new - old;
                for (ri, ci) in r.iter_mut().zip(c) {
                    *ri -= delta * ci;
                }
                w[j] = new;
                max_change = max_change.max(delta.abs() * nj.sqrt());
            }
        }
        info.n_iter = it + 1;
        if max_change <= tol * ynorm {
            info.converged = true;
            break;
        }
    }
    (w, info)
}

/// Minimises a smooth convex function with L-BFGS (memory 10) and a backtracking Armijo line
/// search. `fg(theta, grad)` returns the value and writes the gradient. Stops when
/// `max|grad| ≤ gtol` or when the objective can no longer decrease in floating point.
pub(crate) fn lbfgs<F>(theta: &mut [f64], mut fg: F, max_iter: usize, gtol: f64) -> SolveInfo
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    const M: usize = 10;
    let p = theta.len();
    let mut g = vec![0.0; p];
    let mut f = fg(theta, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(M);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(M);
    let mut rho_hist: Vec<f64> = Vec::with_capacity(M);
    let mut dir = vec![0.0; p];
    let mut trial = vec![0.0; p];
    let mut g_new = vec![0.0; p];
    let mut alpha = [0.0; M];
    let inf_norm = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if inf_norm(&g) <= gtol {
        return SolveInfo {
            n_iter: 0,
            converged: true,
        };
    }
    let mut stalls = 0;
    for it in 0..max_iter {
        // Two-loop recursion: dir = -H g.
        for (di, gi) in dir.iter_mut().zip(&g) {
            *di = -gi;
        }
        let h = s_hist.len();
        for i in (0..h).rev() {
            let a = rho_hist[i] * dot(&s_hist[i], &dir);
            alpha[i] = a;
            for (di, yi) in dir.iter_mut().zip(&y_hist[i]) {
                *di -= a * yi;
            }
        }
        if h > 0 {
            let gamma = dot(&s_hist[h - 1], &y_hist[h - 1]) / dot(&y_hist[h - 1], &y_hist[h - 1]);
            for di in dir.iter_mut() {
                *di *= gamma;
            }
        }
        for i in 0..h {
            let b = rho_hist[i] * dot(&y_hist[i], &dir);
            for (di, si) in dir.iter_mut().zip(&s_hist[i]) {
                *di += (alpha[i] - b) * si;
            }
        }
        let mut dg = dot(&dir, &g);
        if dg >= 0.0 || !dg.is_finite() {
            s_hist.clear();
            y_hist.clear();
            rho_hist.clear();
            for (di, gi) in dir.iter_mut().zip(&g) {
                *di = -gi;
            }
            dg = dot(&dir, &g);
        }
        let mut step = if s_hist.is_empty() {
            (1.0 / dot(&g, &g).sqrt()).min(1.0)
        } else {
            1.0
        };
        let mut f_new;
        loop {
            for ((t, th), di) in trial.iter_mut().zip(theta.iter()).zip(&dir) {
                *t = th + step * di;
            }
            f_new = fg(&trial, &mut g_new);
            if f_new.is_finite() && f_new <= f + 1e-4 * step * dg {
                break;
            }
            step *= 0.5;
            if step < 1e-20 {
                // No decrease possible along this direction: numerically at the optimum.
                return SolveInfo {
                    n_iter: it,
                    converged: inf_norm(&g) <= gtol.max(1e-8),
                };
            }
        }
        let s: Vec<f64> = trial.iter().zip(theta.iter()).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &yv);
        if sy > 1e-12 * dot(&yv, &yv).max(f64::MIN_POSITIVE) {
            if s_hist.len() == M {
                s_hist.remove(0);
                y_hist.remove(0);
                rho_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(yv);
            rho_hist.push(1.0 / sy);
        }
        theta.copy_from_slice(&trial);
        g.copy_from_slice(&g_new);
        let decrease = f - f_new;
        f = f_new;
        if inf_norm(&g) <= gtol {
            return SolveInfo {
                n_iter: it + 1,
                converged: true,
            };
        }
        if decrease <= 1e-15 * f.abs().max(1.0) {
            stalls += 1;
            if stalls >= 5 {
                return SolveInfo {
                    n_iter: it + 1,
                    converged: true,
                };
            }
        } else {
            stalls = 0;
        }
    }
    SolveInfo {
        n_iter: max_iter,
        converged: false,
    }
}

/// FISTA with backtracking and function-value restart for `f(θ) + l1·Σ_{j∈penalised} |θ_j|`,
/// where only the first `n_penalised` entries of θ carry the L1 term. Stops when the
/// gradient mapping `L·‖θ⁺ − y‖∞ ≤ gtol`.
pub(crate) fn fista<F>(
    theta: &mut [f64],
    n_penalised: usize,
    l1: f64,
    mut fg: F,
    max_iter: usize,
    gtol: f64,
) -> SolveInfo
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let p = theta.len();
    let l1_norm = |v: &[f64]| v[..n_penalised].iter().map(|x| x.abs()).sum::<f64>();
    let mut x = theta.to_vec();
    let mut yk = x.clone();
    let mut gy = vec![0.0; p];
    let mut fy = fg(&yk, &mut gy);
    let mut big_f = fy + l1 * l1_norm(&x);
    let mut x_new = vec![0.0; p];
    let mut scratch = vec![0.0; p];
    let mut lip = 1.0f64;
    let mut t = 1.0f64;
    let mut momentum = false;
    for it in 0..max_iter {
        let mut f_new;
        loop {
            for j in 0..p {
                let v = yk[j] - gy[j] / lip;
                x_new[j] = if j < n_penalised {
                    soft(v, l1 / lip)
                } else {
                    v
                };
            }
            f_new = fg(&x_new, &mut scratch);
            let mut lin = 0.0;
            let mut sq = 0.0;
            for j in 0..p {
                let dj = x_new[j] - yk[j];
                lin += gy[j] * dj;
                sq += dj * dj;
            }
            if f_new.is_finite() && f_new <= fy + lin + 0.5 * lip * sq * (1.0 + 1e-12) + 1e-300 {
                break;
            }
            lip *= 2.0;
            if lip > 1e300 {
                theta.copy_from_slice(&x);
                return SolveInfo {
                    n_iter: it,
                    converged: false,
                };
            }
        }
        let gmap = x_new
            .iter()
            .zip(&yk)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            * lip;
        let big_f_new = f_new + l1 * l1_norm(&x_new);
        if big_f_new > big_f && momentum {
            // Momentum overshot: restart from the last iterate without momentum.
            t = 1.0;
            momentum = false;
            yk.copy_from_slice(&x);
            fy = fg(&yk, &mut gy);
            continue;
        }
        let t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        let beta = (t - 1.0) / t_new;
        for j in 0..p {
            yk[j] = x_new[j] + beta * (x_new[j] - x[j]);
        }
        momentum = beta > 0.0;
        std::mem::swap(&mut x, &mut x_new);
        big_f = big_f_new;
        t = t_new;
        if gmap <= gtol {
            theta.copy_from_slice(&x);
            return SolveInfo {
                n_iter: it + 1,
                converged: true,
            };
        }
        fy = fg(&yk, &mut gy);
        lip *= 0.9;
    }
    theta.copy_from_slice(&x);
    SolveInfo {
        n_iter: max_iter,
        converged: false,
    }
}
