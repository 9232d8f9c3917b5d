//! One entry point for every learner: [`fit_learner`] trains the chosen
//! algorithm on the tree-learner feature matrix (dense learners encode it
//! with a [`DenseEncoder`] fitted on the same rows) and returns a
//! [`Model`]. `atelier train --algorithm` and AutoML both go through it.

use crate::LearnError;
use crate::dense::DenseEncoder;
use crate::pipeline::{Algorithm, Model};
use crate::problem::{ProblemType, Target};

pub struct Fitted {
    pub model: Model,
    /// Boosting iterations kept (early stopping), 0 for other learners.
    pub iterations: usize,
    /// Loss curves, when [`FitOptions::curves`] asked for them and the learner has them
    /// (gbm, mlp).
    pub curves: Option<Curves>,
}

/// What a fit records besides the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FitOptions {
    /// Record the loss curves ([`Fitted::curves`]): gbm's training loss per iteration
    /// (`training_metric`, off otherwise for speed) and its validation loss per iteration
    /// (with a validation set, also when early stopping is off); the mlp's per-epoch history.
    /// The model is the one a fit without curves gives: nothing is added to its file.
    pub curves: bool,
}

/// Training and validation loss of one fit, point `i` after iteration (gbm) or epoch (mlp)
/// `i + 1`. Kept beside the model, never in a pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    /// The loss's name: gbm's evaluation metric (`l2`, `l1`, `huber`, `binary_logloss`,
    /// `multi_logloss`), the mlp's `cross_entropy` or `half_squared_error_standardised`.
    pub loss: &'static str,
    /// Training loss: gbm's over every training row after each iteration; the mlp's mean over
    /// each epoch's minibatches (dropout active).
    pub train: Vec<f64>,
    /// Validation loss: gbm's on the validation set given to the fit; the mlp's on its own
    /// held-out `validation_fraction` of the training rows. Empty without one.
    pub valid: Vec<f64>,
}

pub fn task(t: &Target) -> linear::Task {
    match t.problem {
        ProblemType::Regression => linear::Task::Regression,
        ProblemType::Binary => linear::Task::Binary,
        ProblemType::Multiclass => linear::Task::Multiclass {
            num_class: t.labels.len(),
        },
    }
}

fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, LearnError> {
    v.parse().map_err(|_| {
        LearnError::Param(format!(
            "--param {k}={v}: '{v}' is not a valid value for {k}"
        ))
    })
}

fn linear_params(params: &[(String, String)]) -> Result<linear::LinearParams, LearnError> {
    let mut p = linear::LinearParams::default();
    for (k, v) in params {
        match k.as_str() {
            "alpha" => p.alpha = num(k, v)?,
            "C" => p.alpha = 1.0 / num::<f64>(k, v)?,
            "l1_ratio" => p.l1_ratio = num(k, v)?,
            "max_iter" => p.max_iter = num(k, v)?,
            "tol" => p.tol = num(k, v)?,
            "fit_intercept" => p.fit_intercept = num(k, v)?,
            other => {
                return Err(LearnError::Param(format!(
                    "unknown parameter '{other}' for the linear learner; known: alpha, C, l1_ratio, max_iter, tol, fit_intercept"
                )));
            }
        }
    }
    p.validate().map_err(|e| LearnError::Param(e.to_string()))?;
    Ok(p)
}

fn forest_params(
    alg: Algorithm,
    t: &Target,
    params: &[(String, String)],
) -> Result<gbm::ForestParams, LearnError> {
    let task = match t.problem {
        ProblemType::Regression => gbm::ForestTask::Regression,
        ProblemType::Binary => gbm::ForestTask::Binary,
        ProblemType::Multiclass => gbm::ForestTask::Multiclass {
            num_class: t.labels.len(),
        },
    };
    let mut p = if alg == Algorithm::ExtraTrees {
        gbm::ForestParams::extra_trees(task)
    } else {
        gbm::ForestParams::random_forest(task)
    };
    // Fully grown trees make very large pipeline files (~1 MB per tree on
    // 20k rows); a few rows per leaf costs little accuracy.
    p.n_estimators = 100;
    p.min_data_in_leaf = 3;
    for (k, v) in params {
        match k.as_str() {
            "n_estimators" => p.n_estimators = num(k, v)?,
            "max_features" => p.max_features = Some(num(k, v)?),
            "min_data_in_leaf" | "min_samples_leaf" => p.min_data_in_leaf = num(k, v)?,
            "max_depth" => p.max_depth = num(k, v)?,
            "num_leaves" => p.num_leaves = num(k, v)?,
            "bootstrap" => p.bootstrap = num(k, v)?,
            "max_bin" => p.max_bin = num(k, v)?,
            "seed" => p.seed = num(k, v)?,
            "num_threads" => p.num_threads = num(k, v)?,
            other => {
                return Err(LearnError::Param(format!(
                    "unknown parameter '{other}' for {}; known: n_estimators, max_features, min_data_in_leaf, max_depth, num_leaves, bootstrap, max_bin, seed, num_threads",
                    alg.name()
                )));
            }
        }
    }
    p.validate().map_err(|e| LearnError::Param(e.to_string()))?;
    Ok(p)
}

fn mlp_params(params: &[(String, String)]) -> Result<mlp::MlpParams, LearnError> {
    let mut p = mlp::MlpParams::default();
    for (k, v) in params {
        match k.as_str() {
            "hidden_layers" => {
                p.hidden_layers = v
                    .split([',', ' ', ':'])
                    .filter(|s| !s.is_empty())
                    .map(|s| num::<usize>(k, s))
                    .collect::<Result<_, _>>()?
            }
            "dropout" => p.dropout = num(k, v)?,
            "learning_rate" => p.learning_rate = num(k, v)?,
            "batch_size" => p.batch_size = num(k, v)?,
            "max_epochs" | "epochs" => p.max_epochs = num(k, v)?,
            "validation_fraction" => p.validation_fraction = num(k, v)?,
            "patience" => p.patience = num(k, v)?,
            "weight_decay" => p.weight_decay = num(k, v)?,
            "seed" => p.seed = num(k, v)?,
            other => {
                return Err(LearnError::Param(format!(
                    "unknown parameter '{other}' for the mlp learner; known: hidden_layers (e.g. 64,32), dropout, learning_rate, batch_size, max_epochs, validation_fraction, patience, weight_decay, seed"
                )));
            }
        }
    }
    p.validate().map_err(|e| LearnError::Param(e.to_string()))?;
    Ok(p)
}

/// Train `alg` on `x`/`y`. `valid` enables early stopping where the learner
/// supports it (GBM; the MLP holds out its own validation fraction).
pub fn fit_learner(
    alg: Algorithm,
    target: &Target,
    params: &[(String, String)],
    x: &gbm::Dataset,
    y: &[f64],
    valid: Option<(&gbm::Dataset, &[f64])>,
) -> Result<Fitted, LearnError> {
    fit_learner_with_progress(alg, target, params, x, y, valid, &mut |_| {})
}

/// [`fit_learner`], reporting each boosting iteration (gbm only).
pub fn fit_learner_with_progress(
    alg: Algorithm,
    target: &Target,
    params: &[(String, String)],
    x: &gbm::Dataset,
    y: &[f64],
    valid: Option<(&gbm::Dataset, &[f64])>,
    on_iteration: &mut (dyn FnMut(gbm::Progress) + Send),
) -> Result<Fitted, LearnError> {
    fit_learner_with(
        alg,
        target,
        params,
        x,
        y,
        valid,
        FitOptions::default(),
        on_iteration,
    )
}

/// [`fit_learner_with_progress`] with [`FitOptions`] (e.g. loss curves).
#[allow(clippy::too_many_arguments)]
pub fn fit_learner_with(
    alg: Algorithm,
    target: &Target,
    params: &[(String, String)],
    x: &gbm::Dataset,
    y: &[f64],
    valid: Option<(&gbm::Dataset, &[f64])>,
    opts: FitOptions,
    on_iteration: &mut (dyn FnMut(gbm::Progress) + Send),
) -> Result<Fitted, LearnError> {
    let err = |e: &dyn std::fmt::Display| LearnError::Model(e.to_string());
    match alg {
        Algorithm::Gbm => {
            let (mut p, early) = crate::pipeline::gbm_params(target, params)?;
            // without early stopping, the validation set only serves the curves
            let v = match valid {
                Some((xv, yv)) if early || opts.curves => Some(gbm::Validation {
                    data: xv,
                    target: yv,
                    weights: None,
                }),
                _ => None,
            };
            if !early || v.is_none() {
                p.early_stopping_rounds = None;
            }
            p.training_metric = opts.curves;
            let mut m =
                gbm::train_with_progress(&p, x, y, None, v, on_iteration).map_err(|e| err(&e))?;
            let iterations = m.best_iteration.unwrap_or_else(|| m.n_iterations());
            let curves = opts.curves.then(|| {
                // the curves travel beside the model, which stays what a fit without them
                // gives (early stopping keeps its validation history there, as before)
                m.params.training_metric = false;
                let valid = if p.early_stopping_rounds.is_some() {
                    m.valid_history.clone()
                } else {
                    std::mem::take(&mut m.valid_history)
                };
                Curves {
                    loss: m.objective.metric_name(),
                    train: std::mem::take(&mut m.train_history),
                    valid,
                }
            });
            Ok(Fitted {
                model: Model::Gbm(Box::new(m)),
                iterations,
                curves,
            })
        }
        Algorithm::RandomForest | Algorithm::ExtraTrees => {
            let fp = forest_params(alg, target, params)?;
            let m = gbm::train_forest(&fp, x, y, None).map_err(|e| err(&e))?;
            Ok(Fitted {
                model: Model::Forest(Box::new(m)),
                iterations: 0,
                curves: None,
            })
        }
        Algorithm::Linear => {
            let lp = linear_params(params)?;
            let enc = DenseEncoder::fit(x);
            let dense = enc.encode(x);
            let m = linear::fit(&lp, task(target), &dense, x.n_rows(), enc.width, y)
                .map_err(|e| err(&e))?;
            let means = crate::explain::column_means(&dense, enc.width);
            Ok(Fitted {
                model: Model::Linear {
                    encoder: enc,
                    model: Box::new(m),
                    means,
                },
                iterations: 0,
                curves: None,
            })
        }
        Algorithm::Mlp => {
            let mp = mlp_params(params)?;
            let enc = DenseEncoder::fit(x);
            let dense = enc.encode(x);
            let m = mlp::fit(&mp, task(target), &dense, x.n_rows(), enc.width, y)
                .map_err(|e| err(&e))?;
            let curves = opts.curves.then(|| Curves {
                loss: m.loss_name(),
                train: m.train_losses(),
                valid: m.valid_losses(),
            });
            Ok(Fitted {
                model: Model::Mlp {
                    encoder: enc,
                    model: Box::new(m),
                },
                iterations: 0,
                curves,
            })
        }
    }
}
