//! The inference pipeline: one versioned, self-describing file holding the
//! input schema, the fitted preprocessing, the model, the label decoding
//! and training metadata. `atelier predict`, endpoints and batch transform
//! load it; loading checks format and version and rejects anything else
//! with a clear error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tabular::Table;

use crate::LearnError;
use crate::dense::DenseEncoder;
use crate::explain::{Background, ExplainOptions, Method, Space};
use crate::metrics;
use crate::preprocess::{Cell, Preprocessor};
use crate::problem::{ProblemType, Target, encode_target};

pub const PIPELINE_FORMAT: &str = "atelier-pipeline";
pub const PIPELINE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    Gbm,
    RandomForest,
    ExtraTrees,
    Linear,
    Mlp,
}

impl Algorithm {
    pub fn parse(s: &str) -> Result<Algorithm, LearnError> {
        match s {
            "gbm" => Ok(Algorithm::Gbm),
            "rf" | "random-forest" => Ok(Algorithm::RandomForest),
            "extra-trees" | "et" => Ok(Algorithm::ExtraTrees),
            "linear" => Ok(Algorithm::Linear),
            "mlp" => Ok(Algorithm::Mlp),
            other => Err(LearnError::Param(format!(
                "unknown algorithm '{other}': use gbm, rf, extra-trees, linear or mlp"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gbm => "gbm",
            Algorithm::RandomForest => "rf",
            Algorithm::ExtraTrees => "extra-trees",
            Algorithm::Linear => "linear",
            Algorithm::Mlp => "mlp",
        }
    }
}

/// A trained model, behind one enum so the file format can name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Model {
    Gbm(Box<gbm::GbmModel>),
    /// A random forest or extra trees.
    Forest(Box<gbm::ForestModel>),
    /// Linear or logistic regression on densely encoded features.
    Linear {
        encoder: DenseEncoder,
        model: Box<linear::LinearModel>,
        /// Column means of the dense design matrix the model was fitted on (linear
        /// SHAP's reference point). Empty in files written before they were stored:
        /// explanations then use the encoder's centre (see `explain`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        means: Vec<f64>,
    },
    /// A small multilayer perceptron on densely encoded features.
    Mlp {
        encoder: DenseEncoder,
        model: Box<mlp::MlpModel>,
    },
    /// A weighted average of members' predictions (probabilities or
    /// values); weights sum to 1.
    Ensemble {
        members: Vec<Member>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub weight: f64,
    pub model: Model,
}

fn model_err(e: impl std::fmt::Display) -> LearnError {
    LearnError::Model(e.to_string())
}

thread_local! {
    static DENSE: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encode a row into a per-thread buffer (allocated once per thread) and
/// hand it to `f`.
fn with_dense<T>(enc: &DenseEncoder, row: &[f64], f: impl FnOnce(&[f64]) -> T) -> T {
    DENSE.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < enc.width {
            b.resize(enc.width, 0.0);
        }
        enc.encode_row(row, &mut b[..enc.width]);
        f(&b[..enc.width])
    })
}

impl Model {
    pub fn n_outputs(&self) -> usize {
        match self {
            Model::Gbm(m) => m.n_outputs(),
            Model::Forest(m) => m.n_outputs(),
            Model::Linear { model, .. } => model.n_outputs(),
            Model::Mlp { model, .. } => model.n_outputs(),
            Model::Ensemble { members } => members.first().map_or(1, |m| m.model.n_outputs()),
        }
    }
    /// `tmp` must be at least `n_outputs()` long (ensembles use it).
    fn predict_row(&self, row: &[f64], out: &mut [f64], tmp: &mut [f64]) -> Result<(), LearnError> {
        match self {
            Model::Gbm(m) => m.predict_row(row, out).map_err(model_err),
            Model::Forest(m) => m.predict_row(row, out).map_err(model_err),
            Model::Linear { encoder, model, .. } => with_dense(encoder, row, |d| {
                model.predict_row(d, out).map_err(model_err)
            }),
            Model::Mlp { encoder, model } => with_dense(encoder, row, |d| {
                model.predict_row(d, out).map_err(model_err)
            }),
            Model::Ensemble { members } => {
                out.iter_mut().for_each(|o| *o = 0.0);
                let k = out.len();
                for m in members {
                    m.model.predict_row(row, &mut tmp[..k], &mut [])?;
                    for (o, t) in out.iter_mut().zip(&tmp[..k]) {
                        *o += m.weight * t;
                    }
                }
                Ok(())
            }
        }
    }
    /// Predictions for every row, row-major: values, P(class 1) or class
    /// probabilities.
    pub fn predict(&self, data: &gbm::Dataset) -> Result<Vec<f64>, LearnError> {
        match self {
            Model::Gbm(m) => m.predict(data).map_err(model_err),
            Model::Forest(m) => m.predict(data).map_err(model_err),
            Model::Linear { encoder, model, .. } => model
                .predict(&encoder.encode(data), data.n_rows())
                .map_err(model_err),
            Model::Mlp { encoder, model } => model
                .predict(&encoder.encode(data), data.n_rows())
                .map_err(model_err),
            Model::Ensemble { members } => {
                let mut acc: Vec<f64> = Vec::new();
                for m in members {
                    let p = m.model.predict(data)?;
                    if acc.is_empty() {
                        acc = vec![0.0; p.len()];
                    }
                    for (a, v) in acc.iter_mut().zip(&p) {
                        *a += m.weight * v;
                    }
                }
                Ok(acc)
            }
        }
    }
    /// Importance per feature, summing to 1 (all zeros when unknown).
    fn importance(&self, n_features: usize) -> Vec<f64> {
        let raw = match self {
            Model::Forest(m) => m.feature_importance(gbm::ImportanceType::Gain),
            Model::Gbm(m) => m.feature_importance(gbm::ImportanceType::Gain),
            Model::Linear { encoder, model, .. } => {
                // |coefficient| on standardised inputs, summed per feature
                let owner = encoder.column_owners();
                let mut acc = vec![0.0; n_features];
                for o in 0..model.n_outputs() {
                    if let Some(row) = model.coef_row(o) {
                        for (c, w) in row.iter().enumerate() {
                            if let Some(&f) = owner.get(c) {
                                acc[f] += w.abs();
                            }
                        }
                    }
                }
                acc
            }
            // no cheap, faithful importance for the MLP: report none
            Model::Mlp { .. } => vec![0.0; n_features],
            Model::Ensemble { members } => {
                let mut acc = vec![0.0; n_features];
                for m in members {
                    for (a, v) in acc.iter_mut().zip(m.model.importance(n_features)) {
                        *a += m.weight * v;
                    }
                }
                acc
            }
        };
        let total: f64 = raw.iter().sum();
        raw.iter()
            .map(|x| if total > 0.0 { x / total } else { 0.0 })
            .collect()
    }
}

/// Training data made ready for learners: the encoded target, the fitted
/// preprocessing and the feature matrix of the rows that have a target.
pub struct Prepared {
    pub target: Target,
    pub preprocessor: Preprocessor,
    pub features: gbm::Dataset,
    pub target_name: String,
}

impl Prepared {
    pub fn n_outputs(&self) -> usize {
        if self.target.problem == ProblemType::Multiclass {
            self.target.labels.len()
        } else {
            1
        }
    }
}

/// Encode the target, fit the preprocessing and build the feature matrix.
pub fn prepare(
    table: &Table,
    target: &str,
    problem: Option<ProblemType>,
) -> Result<Prepared, LearnError> {
    let col = table.column(target).ok_or_else(|| {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        LearnError::Input(format!(
            "there is no column '{target}' in the training data; its columns are: {}",
            names.join(", ")
        ))
    })?;
    let t = encode_target(col, problem)?;
    let data = table.take(&t.rows);
    let pre = Preprocessor::fit(&data, target);
    if pre.n_features() == 0 {
        return Err(LearnError::Input(
            "no usable feature columns (all are the target, text or id-like)".into(),
        ));
    }
    let all: Vec<usize> = (0..t.values.len()).collect();
    let features = pre.transform(&data, &all)?;
    Ok(Prepared {
        target: t,
        preprocessor: pre,
        features,
        target_name: target.into(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metadata {
    pub created_ms: i64,
    pub atelier_version: String,
    pub algorithm: String,
    pub rows: usize,
    pub params: BTreeMap<String, String>,
    /// Holdout metrics measured before the final refit.
    pub metrics: BTreeMap<String, f64>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub format: String,
    pub version: u32,
    pub problem: ProblemType,
    pub target: String,
    /// Class labels by index (empty for regression).
    pub labels: Vec<String>,
    pub preprocessor: Preprocessor,
    pub model: Model,
    pub metadata: Metadata,
    /// A few preprocessed training rows for model-agnostic explanations (see
    /// `explain`); empty in files written before it was kept.
    #[serde(default, skip_serializing_if = "Background::is_empty")]
    pub background: Background,
}

/// Predictions for a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// The predicted class label, or the value as text for regression.
    pub labels: Vec<String>,
    /// Regression values (empty for classification).
    pub values: Vec<f64>,
    /// Row-major probabilities, one per class (empty for regression).
    pub probabilities: Vec<f64>,
    pub classes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub algorithm: Algorithm,
    pub params: Vec<(String, String)>,
    pub problem: Option<ProblemType>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            algorithm: Algorithm::Gbm,
            params: Vec::new(),
            problem: None,
        }
    }
}

fn parse_param<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, LearnError> {
    v.parse().map_err(|_| {
        LearnError::Param(format!(
            "--param {k}={v}: '{v}' is not a valid value for {k}"
        ))
    })
}

/// Defaults tuned for `atelier train`: learning rate 0.05; for binary and
/// regression, early stopping on a 10 % holdout then a refit on all rows
/// with 10 % more trees; for multiclass, 500 trees.
pub fn gbm_params(
    problem: &Target,
    overrides: &[(String, String)],
) -> Result<(gbm::GbmParams, bool), LearnError> {
    let mut p = gbm::GbmParams {
        n_estimators: 2000,
        learning_rate: 0.05,
        early_stopping_rounds: Some(50),
        ..Default::default()
    };
    p.objective = match problem.problem {
        ProblemType::Regression => gbm::Objective::L2,
        ProblemType::Binary => gbm::Objective::Binary,
        ProblemType::Multiclass => gbm::Objective::Multiclass {
            num_class: problem.labels.len(),
        },
    };
    // Early stopping watches log loss, which for several classes turns up
    // long before accuracy peaks: multiclass trains a fixed number of trees.
    let mut early = problem.problem != ProblemType::Multiclass;
    if !early {
        p.n_estimators = 500;
        p.early_stopping_rounds = None;
    }
    for (k, v) in overrides {
        match k.as_str() {
            "n_estimators" | "num_iterations" | "num_trees" => p.n_estimators = parse_param(k, v)?,
            "learning_rate" | "eta" => p.learning_rate = parse_param(k, v)?,
            "num_leaves" => p.num_leaves = parse_param(k, v)?,
            "max_depth" => p.max_depth = parse_param(k, v)?,
            "max_bin" => p.max_bin = parse_param(k, v)?,
            "min_data_in_leaf" | "min_child_samples" => p.min_data_in_leaf = parse_param(k, v)?,
            "min_child_weight" | "min_sum_hessian_in_leaf" => {
                p.min_child_weight = parse_param(k, v)?
            }
            "lambda_l1" | "reg_alpha" => p.lambda_l1 = parse_param(k, v)?,
            "lambda_l2" | "reg_lambda" => p.lambda_l2 = parse_param(k, v)?,
            "min_split_gain" => p.min_split_gain = parse_param(k, v)?,
            "bagging_fraction" | "subsample" => p.bagging_fraction = parse_param(k, v)?,
            "bagging_freq" | "subsample_freq" => p.bagging_freq = parse_param(k, v)?,
            "feature_fraction" | "colsample_bytree" => p.feature_fraction = parse_param(k, v)?,
            "seed" => p.seed = parse_param(k, v)?,
            "num_threads" | "threads" => p.num_threads = parse_param(k, v)?,
            "objective" => {
                p.objective = match (v.as_str(), problem.problem) {
                    ("l2" | "regression", ProblemType::Regression) => gbm::Objective::L2,
                    ("l1" | "mae", ProblemType::Regression) => gbm::Objective::L1,
                    ("huber", ProblemType::Regression) => gbm::Objective::Huber { delta: 1.0 },
                    _ => {
                        return Err(LearnError::Param(format!(
                            "--param objective={v} does not fit a {} problem",
                            problem.problem.as_str()
                        )));
                    }
                }
            }
            "early_stopping_rounds" => {
                let r: usize = parse_param(k, v)?;
                early = r > 0;
                p.early_stopping_rounds = (r > 0).then_some(r);
            }
            other => {
                return Err(LearnError::Param(format!(
                    "unknown parameter '{other}'; known: n_estimators, learning_rate, num_leaves, max_depth, max_bin, min_data_in_leaf, min_child_weight, lambda_l1, lambda_l2, min_split_gain, bagging_fraction, bagging_freq, feature_fraction, objective, early_stopping_rounds, seed, num_threads"
                )));
            }
        }
    }
    if !early {
        p.early_stopping_rounds = None;
    }
    Ok((p, early))
}

fn refit_trees(best_iteration: usize) -> usize {
    ((best_iteration.max(1) as f64) * 1.1).ceil() as usize
}

/// Parameters to refit on all rows after a run that early-stopped at
/// `iterations`: for gbm with early stopping, 10 % more trees than the best
/// iteration and no early stopping; otherwise `params` unchanged.
pub fn refit_params(
    alg: Algorithm,
    target: &Target,
    params: &[(String, String)],
    iterations: usize,
) -> Result<Vec<(String, String)>, LearnError> {
    let mut out = params.to_vec();
    if alg == Algorithm::Gbm && gbm_params(target, params)?.1 {
        out.retain(|(k, _)| k != "n_estimators" && k != "early_stopping_rounds");
        out.push(("n_estimators".into(), refit_trees(iterations).to_string()));
        out.push(("early_stopping_rounds".into(), "0".into()));
    }
    Ok(out)
}

/// A seeded, stratified (classification) 10 % holdout of `n` rows.
pub fn holdout(target: &Target) -> (Vec<usize>, Vec<usize>) {
    let n = target.values.len();
    let labels: Option<Vec<String>> = target.problem.is_classification().then(|| {
        target
            .values
            .iter()
            .map(|v| (*v as usize).to_string())
            .collect()
    });
    let mut fit = Vec::new();
    let mut valid = Vec::new();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let g = labels.as_ref().map(|l| l[i].clone()).unwrap_or_default();
        groups.entry(g).or_default().push(i);
    }
    for rows in groups.values_mut() {
        rows.sort_by_key(|&i| tabular::split::key(i as u64 ^ 0xA7E1));
        let k = (rows.len() / 10).max(1).min(rows.len() - 1);
        valid.extend_from_slice(&rows[..k]);
        fit.extend_from_slice(&rows[k..]);
    }
    fit.sort_unstable();
    valid.sort_unstable();
    (fit, valid)
}

/// Metrics of predictions `pred` (as `Model::predict` returns them) against
/// encoded targets.
pub fn evaluate(problem: ProblemType, k: usize, y: &[f64], pred: &[f64]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    match problem {
        ProblemType::Regression => {
            m.insert("rmse".into(), metrics::rmse(y, pred));
            m.insert("mse".into(), metrics::mse(y, pred));
            m.insert("mae".into(), metrics::mae(y, pred));
            m.insert("r2".into(), metrics::r2(y, pred));
        }
        ProblemType::Binary => {
            let yc: Vec<usize> = y.iter().map(|v| *v as usize).collect();
            let pc: Vec<usize> = pred.iter().map(|p| usize::from(*p >= 0.5)).collect();
            let proba: Vec<f64> = pred.iter().flat_map(|p| [1.0 - p, *p]).collect();
            m.insert("accuracy".into(), metrics::accuracy(&yc, &pc));
            m.insert(
                "balanced_accuracy".into(),
                metrics::balanced_accuracy(&yc, &pc, 2),
            );
            m.insert("precision".into(), metrics::precision(&yc, &pc));
            m.insert("recall".into(), metrics::recall(&yc, &pc));
            m.insert("f1".into(), metrics::f1(&yc, &pc));
            m.insert("f1_macro".into(), metrics::f1_macro(&yc, &pc, 2));
            m.insert("auc".into(), metrics::roc_auc(&yc, pred));
            m.insert("log_loss".into(), metrics::log_loss(&yc, &proba, 2));
        }
        ProblemType::Multiclass => {
            let yc: Vec<usize> = y.iter().map(|v| *v as usize).collect();
            let pc: Vec<usize> = pred
                .chunks(k)
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map_or(0, |x| x.0)
                })
                .collect();
            m.insert("accuracy".into(), metrics::accuracy(&yc, &pc));
            m.insert(
                "balanced_accuracy".into(),
                metrics::balanced_accuracy(&yc, &pc, k),
            );
            m.insert("f1_macro".into(), metrics::f1_macro(&yc, &pc, k));
            m.insert("auc".into(), metrics::roc_auc_ovr(&yc, pred, k));
            m.insert("log_loss".into(), metrics::log_loss(&yc, pred, k));
        }
    }
    m
}

/// What training reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum TrainEvent<'a> {
    Message(&'a str),
    /// A boosting iteration finished (gbm only): for progress bars and
    /// per-iteration metric logs.
    Iteration(gbm::Progress),
}

/// Train a pipeline on `table` to predict `target`. `progress` receives
/// short status lines.
pub fn train(
    table: &Table,
    target: &str,
    opts: &TrainOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Pipeline, LearnError> {
    train_with_events(table, target, opts, &mut |e| {
        if let TrainEvent::Message(m) = e {
            progress(m)
        }
    })
}

/// [`train`], reporting status lines and every boosting iteration.
pub fn train_with_events(
    table: &Table,
    target: &str,
    opts: &TrainOptions,
    on: &mut (dyn FnMut(TrainEvent<'_>) + Send),
) -> Result<Pipeline, LearnError> {
    let prepared = prepare(table, target, opts.problem)?;
    let Prepared {
        target: t,
        preprocessor: pre,
        features,
        ..
    } = prepared;
    on(TrainEvent::Message(&format!(
        "problem: {} ({})",
        t.problem.as_str(),
        t.reason
    )));
    for n in pre.notes() {
        on(TrainEvent::Message(&format!("note: {n}")));
    }
    let alg = opts.algorithm;
    let k = if t.problem == ProblemType::Multiclass {
        t.labels.len()
    } else {
        1
    };
    let mut meta = Metadata {
        created_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        atelier_version: env!("CARGO_PKG_VERSION").into(),
        algorithm: alg.name().into(),
        rows: t.values.len(),
        params: opts.params.iter().cloned().collect(),
        metrics: BTreeMap::new(),
        notes: pre.notes(),
    };
    let mut final_params = opts.params.clone();
    if t.values.len() >= 50 {
        // measure on a holdout (early stopping for gbm), then refit on all rows
        let (fit, valid) = holdout(&t);
        let fit_x = features.select_rows(&fit).map_err(model_err)?;
        let valid_x = features.select_rows(&valid).map_err(model_err)?;
        let fit_y: Vec<f64> = fit.iter().map(|&i| t.values[i]).collect();
        let valid_y: Vec<f64> = valid.iter().map(|&i| t.values[i]).collect();
        on(TrainEvent::Message(&format!(
            "{}: training on {} rows, measuring on a {}-row holdout",
            alg.name(),
            fit.len(),
            valid.len()
        )));
        let f = crate::learners::fit_learner_with_progress(
            alg,
            &t,
            &opts.params,
            &fit_x,
            &fit_y,
            Some((&valid_x, &valid_y)),
            &mut |p| on(TrainEvent::Iteration(p)),
        )?;
        let pred = f.model.predict(&valid_x)?;
        meta.metrics = evaluate(t.problem, k, &valid_y, &pred);
        final_params = refit_params(alg, &t, &opts.params, f.iterations)?;
        if final_params != opts.params {
            let best = f.iterations.max(1);
            meta.params
                .insert("best_iteration".into(), best.to_string());
            on(TrainEvent::Message(&format!(
                "best iteration {best}; refitting {} trees on all {} rows",
                refit_trees(best),
                t.values.len()
            )));
        } else {
            on(TrainEvent::Message(&format!(
                "refitting on all {} rows",
                t.values.len()
            )));
        }
    } else {
        on(TrainEvent::Message(&format!(
            "{}: training on {} rows",
            alg.name(),
            t.values.len()
        )));
    }
    let model = crate::learners::fit_learner_with_progress(
        alg,
        &t,
        &final_params,
        &features,
        &t.values,
        None,
        &mut |p| on(TrainEvent::Iteration(p)),
    )?
    .model;
    Ok(Pipeline {
        format: PIPELINE_FORMAT.into(),
        version: PIPELINE_VERSION,
        problem: t.problem,
        target: target.into(),
        labels: t.labels,
        preprocessor: pre,
        model,
        metadata: meta,
        background: Background::sample(&features, Background::MAX_ROWS, 0),
    })
}

/// Per-row explanations (SHAP values) by input column. For each row and output,
/// `columns.len()` contributions and then the base value; they sum to the model's
/// output in `space`: the raw score for gbm (log-odds for binary, per-class logits
/// for multiclass, the target's units for regression), the margin for linear models,
/// the probability or value for forests, MLPs and ensembles. `method` says how they
/// were computed (see the `explain` module). Serialises to JSON with `space` and
/// `method` as strings (e.g. `"log-odds"`, `"tree-shap"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contributions {
    pub columns: Vec<String>,
    pub outputs: usize,
    pub values: Vec<f64>,
    pub space: Space,
    pub method: Method,
}

impl Contributions {
    /// Contributions of row `i` to output `k`, then the base value.
    pub fn row(&self, i: usize, k: usize) -> &[f64] {
        let w = self.columns.len() + 1;
        let start = (i * self.outputs + k) * w;
        &self.values[start..start + w]
    }
}

/// Scratch space for allocation-free single-row prediction.
pub struct RowScratch {
    features: Vec<f64>,
    tmp: Vec<f64>,
    pub out: Vec<f64>,
}

impl Pipeline {
    /// A pipeline from prepared data and a trained model.
    pub fn assemble(p: Prepared, model: Model, metadata: Metadata) -> Pipeline {
        let background = Background::sample(&p.features, Background::MAX_ROWS, 0);
        Pipeline {
            format: PIPELINE_FORMAT.into(),
            version: PIPELINE_VERSION,
            problem: p.target.problem,
            target: p.target_name,
            labels: p.target.labels,
            preprocessor: p.preprocessor,
            model,
            metadata,
            background,
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), LearnError> {
        let file_err = |e: std::io::Error| LearnError::File {
            path: path.into(),
            message: e.to_string(),
        };
        let json = serde_json::to_vec(self).map_err(|e| LearnError::Model(e.to_string()))?;
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, json).map_err(file_err)?;
        std::fs::rename(&tmp, path).map_err(file_err)
    }

    pub fn load(path: &Path) -> Result<Pipeline, LearnError> {
        let bytes = std::fs::read(path).map_err(|e| LearnError::File {
            path: path.into(),
            message: e.to_string(),
        })?;
        Self::from_bytes(&bytes).map_err(|message| LearnError::File {
            path: path.into(),
            message,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Pipeline, String> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("not an Atelier pipeline file (it is not valid JSON: {e}); train one with `atelier train`"))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(PIPELINE_FORMAT) {
            return Err("not an Atelier pipeline file (no \"format\": \"atelier-pipeline\"); train one with `atelier train`".into());
        }
        let version = v.get("version").and_then(|x| x.as_u64()).unwrap_or(0);
        if version != PIPELINE_VERSION as u64 {
            return Err(format!(
                "this pipeline has format version {version}, but this Atelier reads version {PIPELINE_VERSION}; use a matching Atelier or retrain"
            ));
        }
        let mut p: Pipeline =
            serde_json::from_value(v).map_err(|e| format!("the pipeline file is corrupt: {e}"))?;
        p.preprocessor.rebuild_index();
        let want = if p.problem == ProblemType::Multiclass {
            p.labels.len()
        } else {
            1
        };
        if p.model.n_outputs() != want {
            return Err(format!(
                "the pipeline file is corrupt: the model has {} outputs for {want} expected",
                p.model.n_outputs()
            ));
        }
        Ok(p)
    }

    pub fn n_classes(&self) -> usize {
        self.labels.len()
    }

    pub fn scratch(&self) -> RowScratch {
        RowScratch {
            features: vec![0.0; self.preprocessor.n_features()],
            tmp: vec![0.0; self.model.n_outputs()],
            out: vec![0.0; self.model.n_outputs()],
        }
    }

    /// Predict one row of cells aligned with `preprocessor.columns`. The
    /// result is in `scratch.out`: the value, P(class 1), or class
    /// probabilities. No allocation.
    pub fn predict_row(
        &self,
        cells: &[Cell<'_>],
        scratch: &mut RowScratch,
    ) -> Result<(), LearnError> {
        self.preprocessor
            .transform_row(cells, &mut scratch.features)?;
        self.model
            .predict_row(&scratch.features, &mut scratch.out, &mut scratch.tmp)
    }

    /// Predict every row of a table. Columns are found by name; a missing
    /// column is an error naming it; extra columns are ignored.
    pub fn predict(&self, table: &Table) -> Result<Predictions, LearnError> {
        let rows: Vec<usize> = (0..table.rows()).collect();
        let x = self.preprocessor.transform(table, &rows)?;
        let raw = self.model.predict(&x)?;
        Ok(self.decode(raw))
    }

    /// Input columns the model uses, and for each feature its column index.
    fn feature_columns(&self) -> (Vec<String>, Vec<usize>) {
        let mut names = Vec::new();
        let mut map = Vec::new();
        for c in self.preprocessor.required() {
            let parts = c.encoding.parts();
            map.extend(std::iter::repeat_n(names.len(), parts));
            names.push(c.name.clone());
        }
        (names, map)
    }

    /// Global importance per input column (total split gain, normalised to
    /// sum to 1), most important first.
    pub fn importance(&self) -> Vec<(String, f64)> {
        let (names, map) = self.feature_columns();
        let per_feature = self.model.importance(self.preprocessor.n_features());
        let mut per_col = vec![0.0; names.len()];
        for (f, g) in per_feature.iter().enumerate() {
            if let Some(&c) = map.get(f) {
                per_col[c] += g;
            }
        }
        let total: f64 = per_col.iter().sum();
        let mut out: Vec<(String, f64)> = names
            .into_iter()
            .zip(per_col)
            .map(|(n, g)| (n, if total > 0.0 { g / total } else { 0.0 }))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Contributions of every row by input column, with default options (see
    /// [`contributions_with`](Self::contributions_with)).
    pub fn contributions(&self, table: &Table) -> Result<Contributions, LearnError> {
        self.contributions_with(table, &ExplainOptions::default())
    }

    /// Contributions of every row by input column: exact TreeSHAP for gbm and
    /// forests, exact linear SHAP for linear models, permutation SHAP against the
    /// stored background rows for MLPs and mixed ensembles (`opts` bounds its work).
    pub fn contributions_with(
        &self,
        table: &Table,
        opts: &ExplainOptions,
    ) -> Result<Contributions, LearnError> {
        let rows: Vec<usize> = (0..table.rows()).collect();
        let x = self.preprocessor.transform(table, &rows)?;
        let (names, map) = self.feature_columns();
        let groups = crate::explain::Groups {
            of_feature: &map,
            n: names.len(),
        };
        let (values, method, space) = crate::explain::explain(
            &self.model,
            self.problem,
            &x,
            &groups,
            &self.background,
            opts,
        )?;
        Ok(Contributions {
            columns: names,
            outputs: self.model.n_outputs(),
            values,
            space,
            method,
        })
    }

    fn decode(&self, raw: Vec<f64>) -> Predictions {
        match self.problem {
            ProblemType::Regression => Predictions {
                labels: raw.iter().map(|v| format!("{v}")).collect(),
                values: raw,
                probabilities: Vec::new(),
                classes: Vec::new(),
            },
            ProblemType::Binary => {
                let probabilities: Vec<f64> = raw.iter().flat_map(|p| [1.0 - p, *p]).collect();
                let labels = raw
                    .iter()
                    .map(|p| self.labels[usize::from(*p >= 0.5)].clone())
                    .collect();
                Predictions {
                    labels,
                    values: Vec::new(),
                    probabilities,
                    classes: self.labels.clone(),
                }
            }
            ProblemType::Multiclass => {
                let k = self.labels.len();
                let labels = raw
                    .chunks(k)
                    .map(|r| {
                        let best = r
                            .iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .map_or(0, |x| x.0);
                        self.labels[best].clone()
                    })
                    .collect();
                Predictions {
                    labels,
                    values: Vec::new(),
                    probabilities: raw,
                    classes: self.labels.clone(),
                }
            }
        }
    }
}

impl Predictions {
    /// CSV: `predicted_label`, then `probability_<label>` per class.
    pub fn to_csv(&self) -> String {
        let mut w = csv_writer();
        let mut header = vec!["predicted_label".to_string()];
        header.extend(self.classes.iter().map(|c| format!("probability_{c}")));
        w.push(header);
        let k = self.classes.len();
        for (i, l) in self.labels.iter().enumerate() {
            let mut row = vec![l.clone()];
            if k > 0 {
                row.extend(
                    self.probabilities[i * k..(i + 1) * k]
                        .iter()
                        .map(|p| format!("{p}")),
                );
            }
            w.push(row);
        }
        w.iter()
            .map(|r| r.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }
}

fn csv_writer() -> Vec<Vec<String>> {
    Vec::new()
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
