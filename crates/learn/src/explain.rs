//! Per-row explanations (SHAP values) for every model kind.
//!
//! | model | method | space |
//! |---|---|---|
//! | gbm | exact TreeSHAP (`gbm`) | raw score: log-odds (binary), logits (multiclass), value |
//! | random forest / extra trees | exact TreeSHAP averaged over trees (`gbm`; multiclass also attributes the per-row normalisation, see `ForestModel::predict_contrib_row`) | probability (classifiers), value |
//! | linear | exact linear SHAP under feature independence | margin: log-odds, logits (softmax), value |
//! | mlp | sampling permutation SHAP | probability, value |
//! | ensemble | the members' exact values, weighted, when they all explain in the ensemble's own output space (regression ensembles of gbm/forest/linear; classifier ensembles of forests only); otherwise permutation SHAP of the whole ensemble | probability, value |
//!
//! Whatever the method, for every row and output the contributions plus the base value
//! equal the model's output in that space (local accuracy).
//!
//! **Linear SHAP.** On the dense design matrix `d` the model was fitted on, contribution
//! of dense column `j` to output `c` is `coef[c][j] · (d_j − mean_j)`, summed over the
//! columns an input column owns; the base value is the margin at the means. The means are
//! stored in the model at fit time. Pipelines written before they were (no `means` in the
//! file) fall back to the encoder's centre: numeric columns at their training mean (exact:
//! standardised columns have mean 0), missing-value indicators and one-hot columns at 0, so
//! those columns are measured against "not missing / none of the listed categories" rather
//! than their training frequency.
//!
//! **Permutation SHAP** (Štrumbelj & Kononenko 2014; the `PermutationExplainer` of the
//! `shap` package) plays the pipeline's input columns as players (a datetime column's six
//! parts move together). For a background row `z` and a permutation of the columns, a
//! sweep starts from `z` and switches the columns to the explained row `x` one at a time
//! in permutation order; each column is credited with the change of the model's output at
//! its switch. Each sweep is followed by the reversed permutation on the same `z`
//! (antithetic sampling: exact for models whose interactions are at most pairwise). Every
//! background row gets the same number of sweeps, so the contributions telescope: they sum
//! exactly to `f(x) − mean_b f(z_b)`, and the base value `mean_b f(z_b)` is the same for
//! every row. Each row draws its permutations from its own generator seeded by
//! [`ExplainOptions::seed`] and its index, so results do not depend on the thread count or
//! on the other rows. A column whose values equal the background row's is credited 0
//! without evaluating the model.
//!
//! **Background.** [`Background`] keeps at most [`Background::MAX_ROWS`] (100) preprocessed
//! training rows, drawn with a fixed seed when the pipeline is trained or assembled. In the
//! file that is at most `100 × features` numbers (about 2 KB per feature; ~30 KB for the 14
//! features of `adult`). Pipelines written before it existed fall back to a sample of the
//! rows being explained.
//!
//! **Cost.** A sweep costs `columns − 1` model evaluations (fewer when values coincide).
//! [`ExplainOptions::max_evals`] (default 2048) caps the evaluations per explained row: it
//! buys `max_evals / (columns − 1)` sweeps, spread over as many background rows as it
//! allows (one antithetic pair each, at most all stored rows). Rows are explained in
//! parallel and each row's sweeps are evaluated as one batch (ensembles evaluate member
//! by member over the batch).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::LearnError;
use crate::pipeline::Model;
use crate::problem::ProblemType;

/// The units contributions are expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Space {
    /// The regression target's units.
    Value,
    /// The log-odds of class 1 (binary margin).
    LogOdds,
    /// Per-class softmax scores (multiclass margin).
    Logits,
    /// Class probabilities (binary: P(class 1)).
    Probability,
}

impl Space {
    pub fn as_str(self) -> &'static str {
        match self {
            Space::Value => "value",
            Space::LogOdds => "log-odds",
            Space::Logits => "logits",
            Space::Probability => "probability",
        }
    }
}

/// How contributions were computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Exact path-dependent TreeSHAP (gbm, forests).
    TreeShap,
    /// Exact linear SHAP under feature independence.
    LinearShap,
    /// Exact values of the members, weighted (ensembles).
    Combined,
    /// Sampled permutation SHAP against a background sample.
    PermutationShap,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::TreeShap => "tree-shap",
            Method::LinearShap => "linear-shap",
            Method::Combined => "combined-exact",
            Method::PermutationShap => "permutation-shap",
        }
    }
}

/// Knobs of the model-agnostic estimator (exact methods ignore them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplainOptions {
    /// Model evaluations per explained row for permutation SHAP (at least one
    /// antithetic pair of sweeps is always done). Default 2048.
    pub max_evals: usize,
    /// Seed of the permutations. Default 0.
    pub seed: u64,
    /// Worker threads; 0 = all cores. Results do not depend on it.
    pub threads: usize,
    /// Use permutation SHAP even when an exact method exists, to explain in the
    /// model's output space (e.g. a gbm classifier in probability rather than
    /// log-odds). Default false.
    pub permutation: bool,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        ExplainOptions {
            max_evals: 2048,
            seed: 0,
            threads: 0,
            permutation: false,
        }
    }
}

/// A small sample of preprocessed training rows (the tree learners' row convention:
/// NaN = missing, categorical codes as numbers), row-major.
#[derive(Debug, Clone, Default)]
pub struct Background {
    n_features: usize,
    rows: Vec<f64>,
}

/// Serialised form: missing values as `null`.
#[derive(Serialize, Deserialize)]
struct RawBackground {
    n_features: usize,
    rows: Vec<Option<f64>>,
}

impl Serialize for Background {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawBackground {
            n_features: self.n_features,
            rows: self
                .rows
                .iter()
                .map(|v| v.is_finite().then_some(*v))
                .collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Background {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawBackground::deserialize(d)?;
        if r.n_features == 0 && !r.rows.is_empty()
            || r.n_features > 0 && !r.rows.len().is_multiple_of(r.n_features)
        {
            return Err(serde::de::Error::custom(format!(
                "background: {} values do not make rows of {} features",
                r.rows.len(),
                r.n_features
            )));
        }
        Ok(Background {
            n_features: r.n_features,
            rows: r.rows.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
        })
    }
}

impl PartialEq for Background {
    /// Missing values (NaN) compare equal to each other.
    fn eq(&self, other: &Self) -> bool {
        self.n_features == other.n_features
            && self.rows.len() == other.rows.len()
            && self
                .rows
                .iter()
                .zip(&other.rows)
                .all(|(a, b)| a == b || a.is_nan() && b.is_nan())
    }
}

/// splitmix64: small, seedable, good enough to draw rows and permutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

impl Background {
    /// At most this many rows are kept.
    pub const MAX_ROWS: usize = 100;

    /// Up to `max_rows` distinct rows of `x`, drawn without replacement with a fixed
    /// seed (all rows, shuffled, when there are fewer).
    pub fn sample(x: &gbm::Dataset, max_rows: usize, seed: u64) -> Background {
        let n = x.n_rows();
        let nf = x.n_features();
        let mut idx: Vec<usize> = (0..n).collect();
        let mut rng = Rng::new(seed ^ 0xBAC6_2017);
        let take = max_rows.min(n);
        // partial Fisher-Yates: the first `take` entries are a uniform sample
        for i in 0..take {
            let j = i + rng.below(n - i);
            idx.swap(i, j);
        }
        let mut rows = vec![0.0; take * nf];
        for (o, &i) in rows.chunks_exact_mut(nf.max(1)).zip(&idx[..take]) {
            // in range by construction
            let _ = x.row_into(i, o);
        }
        Background {
            n_features: nf,
            rows,
        }
    }

    pub fn n_rows(&self) -> usize {
        self.rows.len().checked_div(self.n_features).unwrap_or(0)
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row `i` (`i < n_rows()`).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.rows[i * self.n_features..(i + 1) * self.n_features]
    }
}

/// Column means of a row-major `n × width` matrix (stored with linear models for
/// linear SHAP).
pub(crate) fn column_means(dense: &[f64], width: usize) -> Vec<f64> {
    let mut m = vec![0.0; width];
    if width == 0 {
        return m;
    }
    let n = dense.len() / width;
    for row in dense.chunks_exact(width) {
        for (a, v) in m.iter_mut().zip(row) {
            *a += v;
        }
    }
    if n > 0 {
        m.iter_mut().for_each(|a| *a /= n as f64);
    }
    m
}

fn model_err(e: impl std::fmt::Display) -> LearnError {
    LearnError::Model(e.to_string())
}

/// The space a model's predictions are in.
fn output_space(problem: ProblemType) -> Space {
    if problem == ProblemType::Regression {
        Space::Value
    } else {
        Space::Probability
    }
}

/// The space of a model's exact explanation, if it has one.
fn exact_space(model: &Model, problem: ProblemType) -> Option<Space> {
    let margin = match problem {
        ProblemType::Regression => Space::Value,
        ProblemType::Binary => Space::LogOdds,
        ProblemType::Multiclass => Space::Logits,
    };
    match model {
        Model::Gbm(_) | Model::Linear { .. } => Some(margin),
        Model::Forest(_) => Some(output_space(problem)),
        Model::Mlp { .. } => None,
        Model::Ensemble { members } => {
            let out = output_space(problem);
            (!members.is_empty()
                && members
                    .iter()
                    .all(|m| exact_space(&m.model, problem) == Some(out)))
            .then_some(out)
        }
    }
}

/// Which method and space [`explain`] will use for `model`.
pub fn plan(model: &Model, problem: ProblemType, opts: &ExplainOptions) -> (Method, Space) {
    if opts.permutation {
        return (Method::PermutationShap, output_space(problem));
    }
    match (model, exact_space(model, problem)) {
        (Model::Gbm(_) | Model::Forest(_), Some(s)) => (Method::TreeShap, s),
        (Model::Linear { .. }, Some(s)) => (Method::LinearShap, s),
        (Model::Ensemble { .. }, Some(s)) => (Method::Combined, s),
        _ => (Method::PermutationShap, output_space(problem)),
    }
}

/// What [`explain`] needs to know about the input columns.
pub(crate) struct Groups<'a> {
    /// For each feature, the input column (player) it belongs to.
    pub of_feature: &'a [usize],
    pub n: usize,
}

/// Explanations of every row of `x` (preprocessed features): row-major
/// `rows × outputs × (groups + 1)` values, each block the groups' contributions then the
/// base value.
pub(crate) fn explain(
    model: &Model,
    problem: ProblemType,
    x: &gbm::Dataset,
    groups: &Groups<'_>,
    background: &Background,
    opts: &ExplainOptions,
) -> Result<(Vec<f64>, Method, Space), LearnError> {
    let (method, space) = plan(model, problem, opts);
    let values = if method == Method::PermutationShap {
        let fallback;
        let bg = if background.is_empty() || background.n_features() != x.n_features() {
            // pipelines written before the background was stored
            fallback = Background::sample(x, Background::MAX_ROWS, opts.seed);
            &fallback
        } else {
            background
        };
        let nf = x.n_features();
        let eval = |rows: &[f64], out: &mut [f64]| eval_batch(model, rows, nf, out);
        permutation(&eval, model.n_outputs(), x, groups, bg, opts)?
    } else {
        exact(model, x, groups)?
    };
    Ok((values, method, space))
}

/// Per-feature blocks (`outputs × (nf + 1)` per row) folded into groups.
fn fold(raw: &[f64], nf: usize, groups: &Groups<'_>, out: &mut [f64]) {
    let w = groups.n + 1;
    for (block, o) in raw.chunks_exact(nf + 1).zip(out.chunks_exact_mut(w)) {
        for (f, v) in block[..nf].iter().enumerate() {
            o[groups.of_feature[f]] += v;
        }
        o[w - 1] += block[nf];
    }
}

fn exact(model: &Model, x: &gbm::Dataset, groups: &Groups<'_>) -> Result<Vec<f64>, LearnError> {
    let n = x.n_rows();
    let nf = x.n_features();
    let k = model.n_outputs();
    let w = groups.n + 1;
    let mut out = vec![0.0; n * k * w];
    match model {
        Model::Gbm(m) => fold(
            &m.predict_contrib(x).map_err(model_err)?,
            nf,
            groups,
            &mut out,
        ),
        Model::Forest(m) => fold(
            &m.predict_contrib(x).map_err(model_err)?,
            nf,
            groups,
            &mut out,
        ),
        Model::Linear {
            encoder,
            model,
            means,
        } => {
            let width = encoder.width;
            let owner = encoder.column_owners();
            let centre: Vec<f64> = if means.len() == width {
                means.clone()
            } else {
                vec![0.0; width]
            };
            let mut base = vec![0.0; k];
            for (c, b) in base.iter_mut().enumerate() {
                let coef = model.coef_row(c).unwrap_or(&[]);
                *b = model.intercept().get(c).copied().unwrap_or(0.0)
                    + coef.iter().zip(&centre).map(|(a, m)| a * m).sum::<f64>();
            }
            let mut row = vec![0.0; nf];
            let mut d = vec![0.0; width];
            for (i, o) in out.chunks_exact_mut(k * w).enumerate() {
                x.row_into(i, &mut row).map_err(model_err)?;
                encoder.encode_row(&row, &mut d);
                for (c, oc) in o.chunks_exact_mut(w).enumerate() {
                    let coef = model.coef_row(c).unwrap_or(&[]);
                    for (j, a) in coef.iter().enumerate() {
                        let f = owner.get(j).copied().unwrap_or(0);
                        oc[groups.of_feature[f]] += a * (d[j] - centre[j]);
                    }
                    oc[w - 1] = base[c];
                }
            }
        }
        Model::Ensemble { members } => {
            for m in members {
                let v = exact(&m.model, x, groups)?;
                for (o, v) in out.iter_mut().zip(v) {
                    *o += m.weight * v;
                }
            }
        }
        Model::Mlp { .. } => {
            return Err(LearnError::Model(
                "no exact explanation for an MLP (permutation SHAP is used)".into(),
            ));
        }
    }
    Ok(out)
}

/// Predictions of a batch of rows (row-major, `nf` each) into `out` (`k` per row).
pub(crate) fn eval_batch(
    model: &Model,
    rows: &[f64],
    nf: usize,
    out: &mut [f64],
) -> Result<(), LearnError> {
    let k = model.n_outputs();
    let rows_it = rows.chunks_exact(nf).zip(out.chunks_exact_mut(k));
    match model {
        Model::Gbm(m) => {
            for (r, o) in rows_it {
                m.predict_row(r, o).map_err(model_err)?;
            }
        }
        Model::Forest(m) => {
            for (r, o) in rows_it {
                m.predict_row(r, o).map_err(model_err)?;
            }
        }
        Model::Linear { encoder, model, .. } => {
            let mut d = vec![0.0; encoder.width];
            for (r, o) in rows_it {
                encoder.encode_row(r, &mut d);
                model.predict_row(&d, o).map_err(model_err)?;
            }
        }
        Model::Mlp { encoder, model } => {
            let mut d = vec![0.0; encoder.width];
            for (r, o) in rows_it {
                encoder.encode_row(r, &mut d);
                model.predict_row(&d, o).map_err(model_err)?;
            }
        }
        Model::Ensemble { members } => {
            out.fill(0.0);
            let mut tmp = vec![0.0; out.len()];
            for m in members {
                eval_batch(&m.model, rows, nf, &mut tmp)?;
                for (o, t) in out.iter_mut().zip(&tmp) {
                    *o += m.weight * t;
                }
            }
        }
    }
    Ok(())
}

/// How the evaluation budget is spent: background rows used and antithetic pairs of
/// sweeps per background row.
fn budget(max_evals: usize, players: usize, background_rows: usize) -> (usize, usize) {
    let per_sweep = players.saturating_sub(1).max(1);
    let pairs = (max_evals / per_sweep / 2).max(1);
    let rows = pairs.min(background_rows).max(1);
    (rows, (pairs / rows).max(1))
}

fn same(a: f64, b: f64) -> bool {
    a == b || a.is_nan() && b.is_nan()
}

/// A batch evaluator: rows (row-major, `n_features` each) to `k` outputs per row.
type Eval<'a> = dyn Fn(&[f64], &mut [f64]) -> Result<(), LearnError> + Sync + 'a;

fn permutation(
    eval: &Eval<'_>,
    k: usize,
    x: &gbm::Dataset,
    groups: &Groups<'_>,
    bg: &Background,
    opts: &ExplainOptions,
) -> Result<Vec<f64>, LearnError> {
    let n = x.n_rows();
    let nf = x.n_features();
    let g = groups.n;
    let w = g + 1;
    if n == 0 {
        return Ok(Vec::new());
    }
    if bg.is_empty() {
        return Err(LearnError::Model(
            "no background rows to explain against".into(),
        ));
    }
    let (b_rows, pairs) = budget(opts.max_evals, g, bg.n_rows());
    // the model on the background rows, once
    let mut fz = vec![0.0; b_rows * k];
    eval(&bg.rows[..b_rows * nf], &mut fz)?;
    let mut base = vec![0.0; k];
    for r in fz.chunks_exact(k) {
        for (b, v) in base.iter_mut().zip(r) {
            *b += v / b_rows as f64;
        }
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); g];
    for (f, &c) in groups.of_feature.iter().enumerate() {
        members[c].push(f);
    }
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |t| t.get())
    } else {
        opts.threads
    }
    .clamp(1, n);
    let mut out = vec![0.0; n * k * w];
    let chunk = n.div_ceil(threads);
    let ctx = Sweeps {
        eval,
        k,
        x,
        bg,
        fz: &fz,
        base: &base,
        members: &members,
        b_rows,
        pairs,
        seed: opts.seed,
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = out
            .chunks_mut(chunk * k * w)
            .enumerate()
            .map(|(ci, part)| {
                let ctx = &ctx;
                s.spawn(move || {
                    let mut ws = Workspace::default();
                    for (j, o) in part.chunks_exact_mut(k * w).enumerate() {
                        ctx.row(ci * chunk + j, o, &mut ws)?;
                    }
                    Ok::<(), LearnError>(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| LearnError::Model("an explanation worker failed".into()))??;
        }
        Ok::<(), LearnError>(())
    })?;
    Ok(out)
}

struct Sweeps<'a> {
    eval: &'a Eval<'a>,
    k: usize,
    x: &'a gbm::Dataset,
    bg: &'a Background,
    fz: &'a [f64],
    base: &'a [f64],
    members: &'a [Vec<usize>],
    b_rows: usize,
    pairs: usize,
    seed: u64,
}

#[derive(Default)]
struct Workspace {
    x: Vec<f64>,
    hybrid: Vec<f64>,
    /// rows to evaluate, row-major
    batch: Vec<f64>,
    out: Vec<f64>,
    /// per sweep step: the player switched and the batch row that holds the
    /// output after the switch (`None`: nothing changed)
    steps: Vec<(usize, Option<usize>)>,
    perm: Vec<usize>,
    fx: Vec<f64>,
}

impl Sweeps<'_> {
    /// Explains row `i` into `o` (`outputs × (players + 1)`).
    fn row(&self, i: usize, o: &mut [f64], ws: &mut Workspace) -> Result<(), LearnError> {
        let nf = self.x.n_features();
        let k = self.k;
        let g = self.members.len();
        let w = g + 1;
        ws.x.resize(nf, 0.0);
        self.x.row_into(i, &mut ws.x).map_err(model_err)?;
        ws.fx.resize(k, 0.0);
        (self.eval)(&ws.x, &mut ws.fx)?;
        ws.perm.clear();
        ws.perm.extend(0..g);
        let mut rng = Rng::new(self.seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        // build every sweep's hybrid rows into one batch
        ws.batch.clear();
        ws.steps.clear();
        let mut n_eval = 0;
        for b in 0..self.b_rows {
            let z = self.bg.row(b);
            for _ in 0..self.pairs {
                rng.shuffle(&mut ws.perm);
                for reverse in [false, true] {
                    ws.hybrid.clear();
                    ws.hybrid.extend_from_slice(z);
                    for s in 0..g {
                        let p = ws.perm[if reverse { g - 1 - s } else { s }];
                        let mut changed = false;
                        for &f in &self.members[p] {
                            if !same(ws.hybrid[f], ws.x[f]) {
                                ws.hybrid[f] = ws.x[f];
                                changed = true;
                            }
                        }
                        let slot = if !changed {
                            None
                        } else if s + 1 == g {
                            // after the last switch the row is x itself: f(x) is known
                            Some(usize::MAX)
                        } else {
                            ws.batch.extend_from_slice(&ws.hybrid);
                            n_eval += 1;
                            Some(n_eval - 1)
                        };
                        ws.steps.push((p, slot));
                    }
                }
            }
        }
        ws.out.resize(n_eval * k, 0.0);
        (self.eval)(&ws.batch, &mut ws.out)?;
        o.fill(0.0);
        let sweeps = 2 * self.b_rows * self.pairs;
        let mut prev = vec![0.0; k];
        for (sw, steps) in ws.steps.chunks_exact(g).enumerate() {
            let b = sw / (2 * self.pairs);
            prev.copy_from_slice(&self.fz[b * k..(b + 1) * k]);
            for &(p, slot) in steps {
                let Some(slot) = slot else { continue };
                let cur = if slot == usize::MAX {
                    &ws.fx[..]
                } else {
                    &ws.out[slot * k..(slot + 1) * k]
                };
                for c in 0..k {
                    o[c * w + p] += cur[c] - prev[c];
                }
                prev.copy_from_slice(cur);
            }
        }
        for c in 0..k {
            for v in &mut o[c * w..c * w + g] {
                *v /= sweeps as f64;
            }
            o[c * w + g] = self.base[c];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_spreads_sweeps_over_background_rows() {
        // 100 players: 2048 evaluations buy 20 sweeps = 10 pairs, one per row
        assert_eq!(budget(2048, 100, 100), (10, 1));
        // 14 players: 157 sweeps, 78 pairs
        assert_eq!(budget(2048, 14, 100), (78, 1));
        // few players: every stored row, several pairs each
        assert_eq!(budget(2048, 5, 100), (100, 2));
        // a tiny budget still does one antithetic pair
        assert_eq!(budget(1, 50, 100), (1, 1));
        assert_eq!(budget(2048, 1, 100), (100, 10));
        assert_eq!(budget(2048, 3, 7), (7, 73));
    }

    fn data(n: usize, nf: usize, seed: u64) -> gbm::Dataset {
        let mut rng = Rng::new(seed);
        gbm::Dataset::new(
            (0..nf)
                .map(|_| {
                    gbm::Column::Numeric(
                        (0..n)
                            .map(|_| (rng.next_u64() % 1000) as f64 / 250.0 - 2.0)
                            .collect(),
                    )
                })
                .collect(),
        )
        .unwrap()
    }

    fn row(x: &gbm::Dataset, i: usize) -> Vec<f64> {
        let mut r = vec![0.0; x.n_features()];
        x.row_into(i, &mut r).unwrap();
        r
    }

    /// Exact Shapley values of the game `v(S) = mean_b f(x_S, z_b)` over the first
    /// `b_rows` background rows, by enumerating coalitions of players.
    fn brute_force(
        f: &dyn Fn(&[f64]) -> f64,
        x: &[f64],
        bg: &Background,
        b_rows: usize,
        of_feature: &[usize],
        players: usize,
    ) -> Vec<f64> {
        let v = |mask: usize| {
            (0..b_rows)
                .map(|b| {
                    let mut r = bg.row(b).to_vec();
                    for (j, &p) in of_feature.iter().enumerate() {
                        if mask >> p & 1 == 1 {
                            r[j] = x[j];
                        }
                    }
                    f(&r)
                })
                .sum::<f64>()
                / b_rows as f64
        };
        let fact = |n: usize| (1..=n).map(|i| i as f64).product::<f64>();
        let mut phi = vec![0.0; players + 1];
        for (i, p) in phi.iter_mut().enumerate().take(players) {
            for mask in 0..1usize << players {
                if mask >> i & 1 == 0 {
                    let s = mask.count_ones() as usize;
                    *p += fact(s) * fact(players - s - 1) / fact(players)
                        * (v(mask | 1 << i) - v(mask));
                }
            }
        }
        phi[players] = v(0);
        phi
    }

    /// Permutation SHAP of a scalar function of a row.
    fn run(
        f: &(dyn Fn(&[f64]) -> f64 + Sync),
        x: &gbm::Dataset,
        bg: &Background,
        of_feature: &[usize],
        players: usize,
        opts: &ExplainOptions,
    ) -> Vec<f64> {
        let nf = x.n_features();
        let eval = |rows: &[f64], out: &mut [f64]| {
            for (r, o) in rows.chunks_exact(nf).zip(out.iter_mut()) {
                *o = f(r);
            }
            Ok(())
        };
        let groups = Groups {
            of_feature,
            n: players,
        };
        permutation(&eval, 1, x, &groups, bg, opts).unwrap()
    }

    #[test]
    fn permutation_shap_is_exact_for_additive_and_pairwise_models() {
        let x = data(20, 4, 1);
        let bg = Background::sample(&data(300, 4, 2), 7, 0);
        let ids = [0, 1, 2, 3];
        let opts = ExplainOptions::default();
        // 4 players, 7 background rows: 2048 evaluations use all rows, 48 pairs each
        assert_eq!(budget(opts.max_evals, 4, 7), (7, 48));
        // additive: each column's own effect against the background mean
        let additive = |r: &[f64]| 3.0 * r[0] + r[1] * r[1] - (r[2] * 2.0).sin() + 0.0 * r[3];
        let got = run(&additive, &x, &bg, &ids, 4, &opts);
        for i in 0..x.n_rows() {
            let xi = row(&x, i);
            let want = brute_force(&additive, &xi, &bg, 7, &ids, 4);
            let got = &got[i * 5..(i + 1) * 5];
            assert!(
                got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12),
                "row {i}: {got:?} vs {want:?}"
            );
            assert_eq!(got[3], 0.0, "a column the model ignores gets nothing");
        }
        // pairwise interactions: antithetic pairs make the estimate exact
        let pairwise = |r: &[f64]| r[0] * r[1] + 2.0 * r[1] * r[2] - r[3] + r[0] * r[3] * 0.5;
        let got = run(&pairwise, &x, &bg, &ids, 4, &opts);
        for i in 0..x.n_rows() {
            let want = brute_force(&pairwise, &row(&x, i), &bg, 7, &ids, 4);
            let got = &got[i * 5..(i + 1) * 5];
            assert!(
                got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12),
                "row {i}: {got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn permutation_shap_converges_adds_up_and_is_deterministic() {
        let x = data(30, 5, 3);
        let bg = Background::sample(&data(300, 5, 4), 20, 0);
        // columns 0 and 1 form one player (like a datetime's parts)
        let of_feature = [0, 0, 1, 2, 3];
        let f = |r: &[f64]| r[0] * r[2] * r[3] + (r[1] - r[4]).max(0.0) + r[0] * r[0] * r[4];
        let err = |opts: &ExplainOptions| {
            let got = run(&f, &x, &bg, &of_feature, 4, opts);
            let (b_rows, _) = budget(opts.max_evals, 4, 20);
            let mut worst: f64 = 0.0;
            for i in 0..x.n_rows() {
                let xi = row(&x, i);
                let want = brute_force(&f, &xi, &bg, b_rows, &of_feature, 4);
                let g = &got[i * 5..(i + 1) * 5];
                // local accuracy holds exactly whatever the budget
                let sum: f64 = g.iter().sum();
                assert!((sum - f(&xi)).abs() < 1e-9, "row {i}: {sum} vs {}", f(&xi));
                assert!(
                    (g[4] - want[4]).abs() < 1e-12,
                    "the base is the background mean"
                );
                for (a, b) in g.iter().zip(&want) {
                    worst = worst.max((a - b).abs());
                }
            }
            (got, worst)
        };
        let few = ExplainOptions {
            max_evals: 60,
            ..Default::default()
        };
        let many = ExplainOptions {
            max_evals: 60_000,
            ..Default::default()
        };
        let (a, e_few) = err(&few);
        let (_, e_many) = err(&many);
        assert!(e_many < 0.05, "60k evaluations: worst error {e_many}");
        assert!(e_many < e_few / 3.0, "{e_many} vs {e_few}");
        // same seed, any thread count: identical; another seed: different
        let one = run(
            &f,
            &x,
            &bg,
            &of_feature,
            4,
            &ExplainOptions { threads: 1, ..few },
        );
        let three = run(
            &f,
            &x,
            &bg,
            &of_feature,
            4,
            &ExplainOptions { threads: 3, ..few },
        );
        assert_eq!(a, one);
        assert_eq!(one, three);
        let other = run(
            &f,
            &x,
            &bg,
            &of_feature,
            4,
            &ExplainOptions { seed: 9, ..few },
        );
        assert_ne!(a, other);
        // a row's values do not depend on the other rows explained with it
        let first = x.select_rows(&[0, 1, 2]).unwrap();
        let sub = run(&f, &first, &bg, &of_feature, 4, &few);
        assert_eq!(sub, a[..15]);
    }

    #[test]
    fn background_sample_is_seeded_distinct_and_round_trips_missing_values() {
        let x = gbm::Dataset::new(vec![
            gbm::Column::Numeric((0..500).map(|i| i as f64).collect()),
            gbm::Column::Numeric(
                (0..500)
                    .map(|i| if i % 3 == 0 { f64::NAN } else { 1.0 })
                    .collect(),
            ),
        ])
        .unwrap();
        let a = Background::sample(&x, 100, 1);
        assert_eq!((a.n_rows(), a.n_features()), (100, 2));
        assert_eq!(a, Background::sample(&x, 100, 1));
        assert_ne!(a, Background::sample(&x, 100, 2));
        let mut firsts: Vec<u64> = (0..100).map(|i| a.row(i)[0] as u64).collect();
        firsts.sort_unstable();
        firsts.dedup();
        assert_eq!(firsts.len(), 100, "rows are drawn without replacement");
        assert!((0..100).any(|i| a.row(i)[1].is_nan()));
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("null"), "missing values travel as null");
        let back: Background = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
        assert_eq!(Background::sample(&x, 1000, 0).n_rows(), 500);
        let bad = r#"{"n_features": 3, "rows": [1.0, 2.0]}"#;
        let e = serde_json::from_str::<Background>(bad).unwrap_err();
        assert!(e.to_string().contains("rows of 3"), "{e}");
    }
}
