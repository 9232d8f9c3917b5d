use crate::model::{EpochStats, MlpModel};
use crate::net::{Dense, accumulate_grads, backprop_delta};
use crate::rng::SplitMix64;
use crate::{MlpError, MlpParams, Task};
use linear::sigmoid;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Checks the shapes and values of a training set.
fn validate(task: Task, x: &[f64], n: usize, d: usize, y: &[f64]) -> Result<(), MlpError> {
    if n == 0 {
        return Err(MlpError::EmptyData);
    }
    if d == 0 {
        return Err(MlpError::NoFeatures);
    }
    let expected = n.checked_mul(d).ok_or(MlpError::DataLength {
        expected: usize::MAX,
        got: x.len(),
    })?;
    if x.len() != expected {
        return Err(MlpError::DataLength {
            expected,
            got: x.len(),
        });
    }
    if y.len() != n {
        return Err(MlpError::TargetLength {
            expected: n,
            got: y.len(),
        });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(MlpError::NonFinite {
            row: i / d,
            column: i % d,
            value: x[i],
        });
    }
    if let Some(row) = y.iter().position(|v| !v.is_finite()) {
        return Err(MlpError::NonFiniteTarget { row, value: y[row] });
    }
    if let Some(num_class) = task.num_class() {
        if num_class < 2 {
            return Err(MlpError::InvalidParam {
                name: "num_class",
                value: num_class.to_string(),
                expected: "must be ≥ 2",
            });
        }
        for (row, &value) in y.iter().enumerate() {
            if value < 0.0 || value.fract() != 0.0 || value >= num_class as f64 {
                return Err(MlpError::InvalidClass {
                    row,
                    value,
                    num_class,
                });
            }
        }
        let first = y[0];
        if y.iter().all(|&v| v == first) {
            return Err(MlpError::SingleClass {
                class: first as usize,
            });
        }
    }
    Ok(())
}

/// Adam moments of one layer.
struct AdamState {
    mw: Vec<f64>,
    vw: Vec<f64>,
    mb: Vec<f64>,
    vb: Vec<f64>,
}

/// Work buffers sized for one minibatch.
struct Buffers {
    /// `acts[l]`: input of layer `l` (`acts[0]` = the batch's features), rows × width.
    acts: Vec<Vec<f64>>,
    /// Output-layer values (logits), rows × k.
    out: Vec<f64>,
    delta: Vec<f64>,
    delta_prev: Vec<f64>,
    gw: Vec<Vec<f64>>,
    gb: Vec<Vec<f64>>,
    y: Vec<f64>,
}

impl Buffers {
    fn new(layers: &[Dense], rows: usize) -> Self {
        let max_width = layers
            .iter()
            .map(|l| l.n_in.max(l.n_out))
            .max()
            .unwrap_or(1);
        let k = layers.last().map_or(1, |l| l.n_out);
        Buffers {
            acts: layers.iter().map(|l| vec![0.0; rows * l.n_in]).collect(),
            out: vec![0.0; rows * k],
            delta: vec![0.0; rows * max_width],
            delta_prev: vec![0.0; rows * max_width],
            gw: layers.iter().map(|l| vec![0.0; l.w.len()]).collect(),
            gb: layers.iter().map(|l| vec![0.0; l.b.len()]).collect(),
            y: vec![0.0; rows],
        }
    }
}

/// Forward pass over `rows` rows already in `buf.acts[0]`; applies ReLU and (when `dropout`
/// is `Some`) inverted dropout to hidden activations. Logits land in `buf.out`.
fn forward(
    layers: &[Dense],
    buf: &mut Buffers,
    rows: usize,
    dropout: Option<(f64, &mut SplitMix64)>,
) {
    let last = layers.len() - 1;
    let (p, mut rng) = match dropout {
        Some((p, rng)) if p > 0.0 => (p, Some(rng)),
        _ => (0.0, None),
    };
    let keep_scale = 1.0 / (1.0 - p);
    for (l, layer) in layers.iter().enumerate() {
        if l == last {
            layer.forward_batch(&buf.acts[l], &mut buf.out, rows);
        } else {
            let (head, tail) = buf.acts.split_at_mut(l + 1);
            let z = &mut tail[0][..rows * layer.n_out];
            layer.forward_batch(&head[l], z, rows);
            match rng.as_deref_mut() {
                Some(rng) => {
                    for v in z.iter_mut() {
                        *v = if rng.next_f64() < p {
                            0.0
                        } else {
                            v.max(0.0) * keep_scale
                        };
                    }
                }
                None => {
                    for v in z.iter_mut() {
                        *v = v.max(0.0);
                    }
                }
            }
        }
    }
}

/// Turns logits in `out` into the loss gradient (scaled by `1/rows`) in `delta`, returning the
/// summed loss over the rows.
fn output_delta(
    task: Task,
    out: &[f64],
    y: &[f64],
    rows: usize,
    k: usize,
    delta: &mut [f64],
) -> f64 {
    let inv = 1.0 / rows as f64;
    let mut loss = 0.0;
    for ((o, d), &t) in out
        .chunks_exact(k)
        .zip(delta.chunks_exact_mut(k))
        .zip(y)
        .take(rows)
    {
        match task {
            Task::Regression => {
                let e = o[0] - t;
                loss += 0.5 * e * e;
                d[0] = e * inv;
            }
            Task::Binary => {
                let z = o[0];
                loss += if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                } - t * z;
                d[0] = (sigmoid(z) - t) * inv;
            }
            Task::Multiclass { .. } => {
                let label = t as usize;
                let m = o.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                let lse = m + o.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                loss += lse - o[label];
                for (c, (dc, oc)) in d.iter_mut().zip(o).enumerate() {
                    *dc = ((oc - lse).exp() - if c == label { 1.0 } else { 0.0 }) * inv;
                }
            }
        }
    }
    loss
}

/// Backward pass from the output delta in `buf.delta`: fills `buf.gw` / `buf.gb`.
/// `keep_scale` is the inverted-dropout scale of kept hidden units (1 without dropout).
fn backward(layers: &[Dense], buf: &mut Buffers, rows: usize, keep_scale: f64) {
    for l in (0..layers.len()).rev() {
        let layer = &layers[l];
        buf.gw[l].fill(0.0);
        buf.gb[l].fill(0.0);
        accumulate_grads(
            &buf.acts[l],
            &buf.delta,
            rows,
            layer.n_in,
            layer.n_out,
            &mut buf.gw[l],
            &mut buf.gb[l],
        );
        if l > 0 {
            backprop_delta(
                layer,
                &buf.acts[l],
                &buf.delta,
                rows,
                keep_scale,
                &mut buf.delta_prev,
            );
            std::mem::swap(&mut buf.delta, &mut buf.delta_prev);
        }
    }
}

/// Copies rows `idx` of `x` / `y` into the batch buffers.
fn gather(x: &[f64], y: &[f64], d: usize, idx: &[usize], buf: &mut Buffers) {
    for (r, &i) in idx.iter().enumerate() {
        buf.acts[0][r * d..(r + 1) * d].copy_from_slice(&x[i * d..(i + 1) * d]);
        buf.y[r] = y[i];
    }
}

/// Mean loss over the rows `idx` of `(x, y, d)` without dropout.
fn evaluate(
    task: Task,
    layers: &[Dense],
    (x, y, d): (&[f64], &[f64], usize),
    idx: &[usize],
    batch: usize,
    buf: &mut Buffers,
) -> f64 {
    let k = task.n_outputs();
    let mut total = 0.0;
    for chunk in idx.chunks(batch) {
        gather(x, y, d, chunk, buf);
        forward(layers, buf, chunk.len(), None);
        total += output_delta(task, &buf.out, &buf.y, chunk.len(), k, &mut buf.delta);
    }
    total / idx.len() as f64
}

/// Trains an MLP on `n` rows × `d` features (`x` row-major, finite) with targets `y`
/// (values for regression, class indices `0..k` as f64 for classification).
pub fn fit(
    params: &MlpParams,
    task: Task,
    x: &[f64],
    n: usize,
    d: usize,
    y: &[f64],
) -> Result<MlpModel, MlpError> {
    params.validate()?;
    validate(task, x, n, d, y)?;
    let k = task.n_outputs();

    // Regression targets are standardised (the caller standardises features only).
    let (target_mean, target_std) = if task == Task::Regression {
        let mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
    } else {
        (0.0, 1.0)
    };
    let ys: Vec<f64> = y.iter().map(|v| (v - target_mean) / target_std).collect();

    let mut rng = SplitMix64::new(params.seed);
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let mut n_valid = (params.validation_fraction * n as f64).round() as usize;
    if n_valid == 0 || n_valid >= n {
        n_valid = 0;
    }
    let valid_idx = order[..n_valid].to_vec();
    let mut train_idx = order[n_valid..].to_vec();
    train_idx.sort_unstable(); // the epoch shuffle below is the only source of order

    // Layers.
    let mut widths = vec![d];
    widths.extend(params.hidden_layers.iter().copied());
    widths.push(k);
    let n_layers = widths.len() - 1;
    let mut layers: Vec<Dense> = (0..n_layers)
        .map(|l| Dense::init(widths[l], widths[l + 1], l + 1 < n_layers, &mut rng))
        .collect();
    let mut adam: Vec<AdamState> = layers
        .iter()
        .map(|l| AdamState {
            mw: vec![0.0; l.w.len()],
            vw: vec![0.0; l.w.len()],
            mb: vec![0.0; l.b.len()],
            vb: vec![0.0; l.b.len()],
        })
        .collect();

    let batch = params.batch_size.min(train_idx.len());
    let eval_batch = params.batch_size.max(1);
    let rows_cap = batch.max(eval_batch);
    let mut buf = Buffers::new(&layers, rows_cap);
    let keep_scale = if params.dropout > 0.0 {
        1.0 / (1.0 - params.dropout)
    } else {
        1.0
    };

    let mut history = Vec::new();
    let mut best: Option<(f64, Vec<Dense>, usize)> = None;
    let mut since_best = 0;
    let mut step = 0i32;
    for epoch in 1..=params.max_epochs {
        rng.shuffle(&mut train_idx);
        let mut loss_sum = 0.0;
        for chunk in train_idx.chunks(batch) {
            let rows = chunk.len();
            gather(x, &ys, d, chunk, &mut buf);
            forward(&layers, &mut buf, rows, Some((params.dropout, &mut rng)));
            loss_sum += output_delta(task, &buf.out, &buf.y, rows, k, &mut buf.delta);

            backward(&layers, &mut buf, rows, keep_scale);

            // AdamW update (decoupled weight decay on weights, not biases).
            step += 1;
            let bc1 = 1.0 - BETA1.powi(step);
            let bc2 = 1.0 - BETA2.powi(step);
            let lr = params.learning_rate;
            let lr_t = lr * bc2.sqrt() / bc1;
            let decay = lr * params.weight_decay;
            for (l, layer) in layers.iter_mut().enumerate() {
                let st = &mut adam[l];
                for (((w, g), m), v) in layer
                    .w
                    .iter_mut()
                    .zip(&buf.gw[l])
                    .zip(&mut st.mw)
                    .zip(&mut st.vw)
                {
                    *m = BETA1 * *m + (1.0 - BETA1) * g;
                    *v = BETA2 * *v + (1.0 - BETA2) * g * g;
                    *w -= lr_t * *m / (v.sqrt() + EPS) + decay * *w;
                }
                for (((b, g), m), v) in layer
                    .b
                    .iter_mut()
                    .zip(&buf.gb[l])
                    .zip(&mut st.mb)
                    .zip(&mut st.vb)
                {
                    *m = BETA1 * *m + (1.0 - BETA1) * g;
                    *v = BETA2 * *v + (1.0 - BETA2) * g * g;
                    *b -= lr_t * *m / (v.sqrt() + EPS);
                }
            }
        }
        let train_loss = loss_sum / train_idx.len() as f64;
        if !train_loss.is_finite() {
            return Err(MlpError::Diverged { epoch });
        }
        let valid_loss = if n_valid > 0 {
            let v = evaluate(task, &layers, (x, &ys, d), &valid_idx, eval_batch, &mut buf);
            if !v.is_finite() {
                return Err(MlpError::Diverged { epoch });
            }
            Some(v)
        } else {
            None
        };
        history.push(EpochStats {
            train_loss,
            valid_loss,
        });
        if let Some(v) = valid_loss {
            if best.as_ref().is_none_or(|(b, _, _)| v < *b) {
                best = Some((v, layers.clone(), epoch));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= params.patience {
                    break;
                }
            }
        }
    }
    let (layers, best_epoch) = match best {
        Some((_, kept, epoch)) => (kept, epoch),
        None => (layers, history.len()),
    };
    Ok(MlpModel::new(
        task,
        d,
        layers,
        target_mean,
        target_std,
        best_epoch,
        history,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Back-propagated gradients equal central finite differences of the loss.
    #[test]
    #[allow(clippy::needless_range_loop)]
    fn gradients_match_finite_differences() {
        for task in [
            Task::Regression,
            Task::Binary,
            Task::Multiclass { num_class: 3 },
        ] {
            let k = task.n_outputs();
            let mut rng = SplitMix64::new(11);
            let widths = [4, 6, 5, k];
            let mut layers: Vec<Dense> = (0..3)
                .map(|l| Dense::init(widths[l], widths[l + 1], l < 2, &mut rng))
                .collect();
            for l in layers.iter_mut() {
                for b in l.b.iter_mut() {
                    *b = 0.1 * (rng.next_f64() - 0.3);
                }
            }
            let rows = 7;
            let x: Vec<f64> = (0..rows * 4).map(|_| 2.0 * rng.next_f64() - 1.0).collect();
            let y: Vec<f64> = (0..rows)
                .map(|i| {
                    if task == Task::Regression {
                        rng.next_f64()
                    } else {
                        (i % k) as f64
                    }
                })
                .collect();
            let idx: Vec<usize> = (0..rows).collect();
            let mut buf = Buffers::new(&layers, rows);
            let loss = |layers: &[Dense], buf: &mut Buffers| {
                gather(&x, &y, 4, &idx, buf);
                forward(layers, buf, rows, None);
                output_delta(task, &buf.out, &buf.y, rows, k, &mut buf.delta) / rows as f64
            };
            loss(&layers, &mut buf);
            backward(&layers, &mut buf, rows, 1.0);
            let (gw, gb) = (buf.gw.clone(), buf.gb.clone());
            let h = 1e-6;
            for l in 0..3 {
                for i in 0..layers[l].w.len() {
                    let orig = layers[l].w[i];
                    layers[l].w[i] = orig + h;
                    let up = loss(&layers, &mut buf);
                    layers[l].w[i] = orig - h;
                    let down = loss(&layers, &mut buf);
                    layers[l].w[i] = orig;
                    let fd = (up - down) / (2.0 * h);
                    assert!(
                        (fd - gw[l][i]).abs() < 1e-6,
                        "{task:?} layer {l} w[{i}]: {fd} vs {}",
                        gw[l][i]
                    );
                }
                for i in 0..layers[l].b.len() {
                    let orig = layers[l].b[i];
                    layers[l].b[i] = orig + h;
                    let up = loss(&layers, &mut buf);
                    layers[l].b[i] = orig - h;
                    let down = loss(&layers, &mut buf);
                    layers[l].b[i] = orig;
                    let fd = (up - down) / (2.0 * h);
                    assert!(
                        (fd - gb[l][i]).abs() < 1e-6,
                        "{task:?} layer {l} b[{i}]: {fd} vs {}",
                        gb[l][i]
                    );
                }
            }
        }
    }
}
