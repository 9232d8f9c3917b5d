use serde::{Deserialize, Serialize};

use crate::solver::{self, SolveInfo, dot};
use crate::{LinearError, LinearParams, Task};

/// A fitted linear or logistic regression model.
///
/// Coefficients are stored row-major, one row of `n_features()` per output
/// (one row for regression and binary, `num_class` rows for multiclass).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModel")]
pub struct LinearModel {
    task: Task,
    n_features: usize,
    coef: Vec<f64>,
    intercept: Vec<f64>,
    n_iter: usize,
    converged: bool,
}

/// Unchecked serialised form; checked on deserialisation so that predicting never panics.
#[derive(Deserialize)]
struct RawModel {
    task: Task,
    n_features: usize,
    coef: Vec<f64>,
    intercept: Vec<f64>,
    n_iter: usize,
    converged: bool,
}

impl TryFrom<RawModel> for LinearModel {
    type Error = String;
    fn try_from(r: RawModel) -> Result<Self, String> {
        let k = r.task.n_outputs();
        if k == 0 || matches!(r.task, Task::Multiclass { num_class } if num_class < 2) {
            return Err(format!("invalid task {:?}", r.task));
        }
        if r.n_features == 0 || r.coef.len() != k * r.n_features || r.intercept.len() != k {
            return Err(format!(
                "inconsistent linear model: {} features, {} outputs, {} coefficients, {} intercepts",
                r.n_features,
                k,
                r.coef.len(),
                r.intercept.len()
            ));
        }
        if r.coef.iter().chain(&r.intercept).any(|v| !v.is_finite()) {
            return Err("linear model has non-finite coefficients".into());
        }
        Ok(LinearModel {
            task: r.task,
            n_features: r.n_features,
            coef: r.coef,
            intercept: r.intercept,
            n_iter: r.n_iter,
            converged: r.converged,
        })
    }
}

impl LinearModel {
    /// The task the model was fitted for.
    pub fn task(&self) -> Task {
        self.task
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of outputs of [`predict_row`](Self::predict_row): 1 for regression and binary,
    /// `num_class` for multiclass.
    pub fn n_outputs(&self) -> usize {
        self.task.n_outputs()
    }

    /// All coefficients, row-major `n_outputs() × n_features()`.
    pub fn coef(&self) -> &[f64] {
        &self.coef
    }

    /// Coefficients of one output (`output < n_outputs()`); for binary, the log-odds of class 1.
    pub fn coef_row(&self, output: usize) -> Option<&[f64]> {
        let d = self.n_features;
        self.coef.get(output * d..(output + 1) * d)
    }

    /// Intercepts, one per output (zeros when fitted without intercept). For multiclass they
    /// are centred to sum to zero (softmax is invariant to a common shift).
    pub fn intercept(&self) -> &[f64] {
        &self.intercept
    }

    /// Solver iterations used (sweeps for coordinate descent, 0 for the closed-form ridge).
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// Whether the solver met its tolerance within `max_iter`.
    pub fn converged(&self) -> bool {
        self.converged
    }

    fn check_row(&self, row: &[f64], out: &[f64]) -> Result<(), LinearError> {
        if row.len() != self.n_features {
            return Err(LinearError::RowLength {
                expected: self.n_features,
                got: row.len(),
            });
        }
        if out.len() != self.n_outputs() {
            return Err(LinearError::OutputLength {
                expected: self.n_outputs(),
                got: out.len(),
            });
        }
        if let Some((column, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(LinearError::NonFinite {
                row: 0,
                column,
                value,
            });
        }
        Ok(())
    }

    /// Raw scores (linear predictor / log-odds / softmax logits) of one row. Allocation-free.
    pub fn predict_raw_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), LinearError> {
        self.check_row(row, out)?;
        self.raw_unchecked(row, out);
        Ok(())
    }

    #[inline]
    fn raw_unchecked(&self, row: &[f64], out: &mut [f64]) {
        for ((o, w), b) in out
            .iter_mut()
            .zip(self.coef.chunks_exact(self.n_features))
            .zip(&self.intercept)
        {
            *o = b + dot(w, row);
        }
    }

    /// Prediction for one row into `out` (`n_outputs()` long): the value for regression,
    /// P(class 1) for binary, class probabilities for multiclass. Allocation-free.
    pub fn predict_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), LinearError> {
        self.predict_raw_row(row, out)?;
        transform(self.task, out);
        Ok(())
    }

    /// Predictions for `n` rows of a row-major matrix: `n × n_outputs()` values, row-major.
    pub fn predict(&self, x: &[f64], n: usize) -> Result<Vec<f64>, LinearError> {
        let d = self.n_features;
        let expected = n.checked_mul(d).ok_or(LinearError::DataLength {
            expected: usize::MAX,
            got: x.len(),
        })?;
        if x.len() != expected {
            return Err(LinearError::DataLength {
                expected,
                got: x.len(),
            });
        }
        let k = self.n_outputs();
        let mut out = vec![0.0; n * k];
        for (i, (row, o)) in x.chunks_exact(d).zip(out.chunks_exact_mut(k)).enumerate() {
            self.predict_row(row, o).map_err(|e| match e {
                LinearError::NonFinite { column, value, .. } => LinearError::NonFinite {
                    row: i,
                    column,
                    value,
                },
                e => e,
            })?;
        }
        Ok(out)
    }
}

/// Turns raw scores into predictions in place.
#[inline]
fn transform(task: Task, out: &mut [f64]) {
    match task {
        Task::Regression => {}
        Task::Binary => out[0] = sigmoid(out[0]),
        Task::Multiclass { .. } => softmax(out),
    }
}

#[inline]
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// In-place numerically stable softmax.
#[inline]
pub fn softmax(v: &mut [f64]) {
    let m = v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
    let mut s = 0.0;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        s += *x;
    }
    for x in v.iter_mut() {
        *x /= s;
    }
}

/// `ln(1 + e^z)` without overflow.
#[inline]
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Checks the shapes and values of a training set.
fn validate(task: Task, x: &[f64], n: usize, d: usize, y: &[f64]) -> Result<(), LinearError> {
    if n == 0 {
        return Err(LinearError::EmptyData);
    }
    if d == 0 {
        return Err(LinearError::NoFeatures);
    }
    let expected = n.checked_mul(d).ok_or(LinearError::DataLength {
        expected: usize::MAX,
        got: x.len(),
    })?;
    if x.len() != expected {
        return Err(LinearError::DataLength {
            expected,
            got: x.len(),
        });
    }
    if y.len() != n {
        return Err(LinearError::TargetLength {
            expected: n,
            got: y.len(),
        });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(LinearError::NonFinite {
            row: i / d,
            column: i % d,
            value: x[i],
        });
    }
    if let Some(row) = y.iter().position(|v| !v.is_finite()) {
        return Err(LinearError::NonFiniteTarget { row, value: y[row] });
    }
    if let Some(num_class) = task.num_class() {
        if num_class < 2 {
            return Err(LinearError::InvalidParam {
                name: "num_class",
                value: num_class.to_string(),
                expected: "must be ≥ 2",
            });
        }
        for (row, &value) in y.iter().enumerate() {
            if value < 0.0 || value.fract() != 0.0 || value >= num_class as f64 {
                return Err(LinearError::InvalidClass {
                    row,
                    value,
                    num_class,
                });
            }
        }
        let first = y[0];
        if y.iter().all(|&v| v == first) {
            return Err(LinearError::SingleClass {
                class: first as usize,
            });
        }
    }
    Ok(())
}

/// Fits a model on `n` rows × `d` features (`x` row-major, finite) with targets `y`
/// (values for regression, class indices `0..k` as f64 for classification).
pub fn fit(
    params: &LinearParams,
    task: Task,
    x: &[f64],
    n: usize,
    d: usize,
    y: &[f64],
) -> Result<LinearModel, LinearError> {
    params.validate()?;
    validate(task, x, n, d, y)?;
    let (coef, intercept, info) = match task {
        Task::Regression => fit_regression(params, x, n, d, y),
        Task::Binary | Task::Multiclass { .. } => fit_logistic(params, task, x, n, d, y),
    };
    Ok(LinearModel {
        task,
        n_features: d,
        coef,
        intercept,
        n_iter: info.n_iter,
        converged: info.converged,
    })
}

fn fit_regression(
    p: &LinearParams,
    x: &[f64],
    n: usize,
    d: usize,
    y: &[f64],
) -> (Vec<f64>, Vec<f64>, SolveInfo) {
    let nf = n as f64;
    // Column means and centred column-major copy.
    let mut xm = vec![0.0; d];
    let mut ym = 0.0;
    if p.fit_intercept {
        for row in x.chunks_exact(d) {
            for (m, v) in xm.iter_mut().zip(row) {
                *m += v;
            }
        }
        for m in xm.iter_mut() {
            *m /= nf;
        }
        ym = y.iter().sum::<f64>() / nf;
    }
    let mut cols = vec![0.0; n * d];
    for (i, row) in x.chunks_exact(d).enumerate() {
        for j in 0..d {
            cols[j * n + i] = row[j] - xm[j];
        }
    }
    let yc: Vec<f64> = y.iter().map(|v| v - ym).collect();
    let l1 = p.alpha * p.l1_ratio;
    let l2 = p.alpha * (1.0 - p.l1_ratio);

    let mut solved = None;
    if p.l1_ratio == 0.0 {
        let mut g = vec![0.0; d * d];
        for j in 0..d {
            let cj = &cols[j * n..(j + 1) * n];
            for k in 0..=j {
                let v = dot(cj, &cols[k * n..(k + 1) * n]);
                g[j * d + k] = v;
                g[k * d + j] = v;
            }
            g[j * d + j] += l2;
        }
        let rhs: Vec<f64> = (0..d)
            .map(|j| dot(&cols[j * n..(j + 1) * n], &yc))
            .collect();
        solved = solver::cholesky_solve(g, d, &rhs).map(|w| {
            (
                w,
                SolveInfo {
                    n_iter: 0,
                    converged: true,
                },
            )
        });
    }
    let (w, info) = match solved {
        Some(s) => s,
        None => solver::coordinate_descent(&cols, n, d, &yc, (l1, l2), p.max_iter, p.tol),
    };
    let b = if p.fit_intercept {
        ym - dot(&xm, &w)
    } else {
        0.0
    };
    (w, vec![b], info)
}

fn fit_logistic(
    p: &LinearParams,
    task: Task,
    x: &[f64],
    n: usize,
    d: usize,
    y: &[f64],
) -> (Vec<f64>, Vec<f64>, SolveInfo) {
    let k = task.n_outputs();
    let nw = k * d;
    let n_param = nw + if p.fit_intercept { k } else { 0 };
    let l1 = p.alpha * p.l1_ratio;
    let l2 = p.alpha * (1.0 - p.l1_ratio);
    let labels: Vec<usize> = y.iter().map(|&v| v as usize).collect();
    let fit_intercept = p.fit_intercept;
    let mut scores = vec![0.0; k];

    // Smooth part: Σ log loss + ½ l2 ‖W‖²; gradient written into `g`.
    let mut fg = |theta: &[f64], g: &mut [f64]| -> f64 {
        let (w, b) = theta.split_at(nw);
        g.fill(0.0);
        let (gw, gb) = g.split_at_mut(nw);
        let mut f = 0.0;
        for (row, &label) in x.chunks_exact(d).zip(&labels) {
            for (c, s) in scores.iter_mut().enumerate() {
                *s = dot(&w[c * d..(c + 1) * d], row) + if fit_intercept { b[c] } else { 0.0 };
            }
            if k == 1 {
                let z = scores[0];
                let yv = label as f64;
                f += softplus(z) - yv * z;
                scores[0] = sigmoid(z) - yv;
            } else {
                let m = scores.iter().fold(f64::NEG_INFINITY, |m, &s| m.max(s));
                let lse = m + scores.iter().map(|s| (s - m).exp()).sum::<f64>().ln();
                f += lse - scores[label];
                for (c, s) in scores.iter_mut().enumerate() {
                    *s = (*s - lse).exp() - if c == label { 1.0 } else { 0.0 };
                }
            }
            for (c, &r) in scores.iter().enumerate() {
                if r != 0.0 {
                    for (gj, xj) in gw[c * d..(c + 1) * d].iter_mut().zip(row) {
                        *gj += r * xj;
                    }
                }
                if fit_intercept {
                    gb[c] += r;
                }
            }
        }
        if l2 > 0.0 {
            let mut sq = 0.0;
            for (gj, wj) in gw.iter_mut().zip(w) {
                *gj += l2 * wj;
                sq += wj * wj;
            }
            f += 0.5 * l2 * sq;
        }
        f
    };

    let mut theta = vec![0.0; n_param];
    let gtol = p.tol * n as f64;
    let info = if l1 > 0.0 {
        solver::fista(&mut theta, nw, l1, &mut fg, p.max_iter, gtol)
    } else {
        solver::lbfgs(&mut theta, &mut fg, p.max_iter, gtol)
    };
    let mut intercept = if fit_intercept {
        theta[nw..].to_vec()
    } else {
        vec![0.0; k]
    };
    theta.truncate(nw);
    if k > 1 && fit_intercept {
        let mean = intercept.iter().sum::<f64>() / k as f64;
        for b in intercept.iter_mut() {
            *b -= mean;
        }
    }
    (theta, intercept, info)
}
