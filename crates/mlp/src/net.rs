//! Dense layers and the batch kernels. Matrices are row-major; every kernel runs the
//! cache-friendly i-k-j loop order so the innermost loop walks contiguous memory.

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// A fully connected layer: `out = in · W + b`, `W` stored row-major `n_in × n_out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) w: Vec<f64>,
    pub(crate) b: Vec<f64>,
}

impl Dense {
    /// Uniform init with limit `sqrt(6 / fan)`: He for ReLU layers (`fan = n_in`),
    /// Glorot for the output layer (`fan = (n_in + n_out) / 2`). Biases start at zero.
    pub(crate) fn init(n_in: usize, n_out: usize, relu: bool, rng: &mut SplitMix64) -> Self {
        let fan = if relu {
            n_in as f64
        } else {
            (n_in + n_out) as f64 / 2.0
        };
        let limit = (6.0 / fan).sqrt();
        let w = (0..n_in * n_out)
            .map(|_| (2.0 * rng.next_f64() - 1.0) * limit)
            .collect();
        Dense {
            n_in,
            n_out,
            w,
            b: vec![0.0; n_out],
        }
    }

    /// Input and output widths.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_in, self.n_out)
    }

    /// Weights, row-major `n_in × n_out`.
    pub fn weights(&self) -> &[f64] {
        &self.w
    }

    /// Biases, `n_out`.
    pub fn biases(&self) -> &[f64] {
        &self.b
    }

    /// One row: `out = x · W + b` (`x.len() == n_in`, `out.len() == n_out`).
    #[inline]
    pub(crate) fn forward_row(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(&self.b);
        for (&xk, wk) in x.iter().zip(self.w.chunks_exact(self.n_out)) {
            if xk != 0.0 {
                for (o, w) in out.iter_mut().zip(wk) {
                    *o += xk * w;
                }
            }
        }
    }

    /// Batch: `Z (rows × n_out) = A (rows × n_in) · W + b`, loop order i-k-j.
    pub(crate) fn forward_batch(&self, a: &[f64], z: &mut [f64], rows: usize) {
        for (ai, zi) in a
            .chunks_exact(self.n_in)
            .zip(z.chunks_exact_mut(self.n_out))
            .take(rows)
        {
            self.forward_row(ai, zi);
        }
    }
}

/// `gW += Aᵀ · Δ`, `gb += Σᵢ Δᵢ` over `rows` rows (loop order i-k-j).
pub(crate) fn accumulate_grads(
    a: &[f64],
    delta: &[f64],
    rows: usize,
    n_in: usize,
    n_out: usize,
    gw: &mut [f64],
    gb: &mut [f64],
) {
    for (ai, di) in a
        .chunks_exact(n_in)
        .zip(delta.chunks_exact(n_out))
        .take(rows)
    {
        for (g, d) in gb.iter_mut().zip(di) {
            *g += d;
        }
        for (&aik, gk) in ai.iter().zip(gw.chunks_exact_mut(n_out)) {
            if aik != 0.0 {
                for (g, d) in gk.iter_mut().zip(di) {
                    *g += aik * d;
                }
            }
        }
    }
}

/// Back-propagates through a ReLU(+dropout) input: `Δprev[i,k] = (Δ · Wᵀ)[i,k] · scale` where the
/// layer's input activation `a[i,k] > 0`, else 0 (inactive unit or dropped unit).
/// Inner loop is a contiguous dot product of a Δ row with a W row.
pub(crate) fn backprop_delta(
    layer: &Dense,
    a: &[f64],
    delta: &[f64],
    rows: usize,
    scale: f64,
    prev: &mut [f64],
) {
    let (n_in, n_out) = (layer.n_in, layer.n_out);
    for ((ai, di), pi) in a
        .chunks_exact(n_in)
        .zip(delta.chunks_exact(n_out))
        .zip(prev.chunks_exact_mut(n_in))
        .take(rows)
    {
        for ((p, &aik), wk) in pi.iter_mut().zip(ai).zip(layer.w.chunks_exact(n_out)) {
            *p = if aik > 0.0 {
                scale * di.iter().zip(wk).map(|(d, w)| d * w).sum::<f64>()
            } else {
                0.0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_matmul_matches_naive() {
        let mut rng = SplitMix64::new(3);
        let layer = Dense::init(5, 4, true, &mut rng);
        let a: Vec<f64> = (0..15).map(|i| (i as f64 - 7.0) / 3.0).collect();
        let mut z = vec![0.0; 12];
        layer.forward_batch(&a, &mut z, 3);
        for i in 0..3 {
            for j in 0..4 {
                let want = layer.b[j]
                    + (0..5)
                        .map(|k| a[i * 5 + k] * layer.w[k * 4 + j])
                        .sum::<f64>();
                assert!((z[i * 4 + j] - want).abs() < 1e-12);
            }
        }
        let delta: Vec<f64> = (0..12).map(|i| (i as f64).sin()).collect();
        let (mut gw, mut gb) = (vec![0.0; 20], vec![0.0; 4]);
        accumulate_grads(&a, &delta, 3, 5, 4, &mut gw, &mut gb);
        for k in 0..5 {
            for j in 0..4 {
                let want: f64 = (0..3).map(|i| a[i * 5 + k] * delta[i * 4 + j]).sum();
                assert!((gw[k * 4 + j] - want).abs() < 1e-12);
            }
        }
        let mut prev = vec![0.0; 15];
        backprop_delta(&layer, &a, &delta, 3, 2.0, &mut prev);
        for i in 0..3 {
            for k in 0..5 {
                let dot: f64 = (0..4).map(|j| delta[i * 4 + j] * layer.w[k * 4 + j]).sum();
                let want = if a[i * 5 + k] > 0.0 { 2.0 * dot } else { 0.0 };
                assert!((prev[i * 5 + k] - want).abs() < 1e-12);
            }
        }
    }
}
