//! Per-row explanations for every model kind, on the repository's datasets: local accuracy
//! (contributions + base = the model's output in the reported space), linear SHAP's
//! closed form, permutation SHAP against a known truth, determinism, and old pipeline
//! files without the stored means / background.

use std::path::PathBuf;

use learn::{
    Algorithm, Contributions, ExplainOptions, Member, Metadata, Method, Model, Pipeline,
    ProblemType, Space, TrainOptions, fit_learner, prepare, train,
};

fn dataset(name: &str, rows: Option<usize>) -> tabular::Table {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets")
        .join(format!("{name}.csv"));
    assert!(p.exists(), "dataset missing: {}", p.display());
    let t = tabular::read_path(&p).unwrap();
    match rows {
        Some(n) => t.take(&(0..n.min(t.rows())).collect::<Vec<_>>()),
        None => t,
    }
}

/// (dataset, target, rows kept): a multiclass, a binary and a regression problem.
const PROBLEMS: [(&str, &str, Option<usize>); 3] = [
    ("penguins", "species", None),
    ("titanic", "Survived", None),
    ("california_housing", "median_house_value", Some(1500)),
];

fn fast_params(alg: Algorithm) -> Vec<(String, String)> {
    let p: &[(&str, &str)] = match alg {
        Algorithm::Gbm => &[("n_estimators", "60")],
        Algorithm::RandomForest | Algorithm::ExtraTrees => &[("n_estimators", "25")],
        Algorithm::Linear => &[],
        Algorithm::Mlp => &[("max_epochs", "30"), ("hidden_layers", "16,8")],
    };
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn train_alg(t: &tabular::Table, target: &str, alg: Algorithm) -> Pipeline {
    let opts = TrainOptions {
        algorithm: alg,
        params: fast_params(alg),
        problem: None,
    };
    train(t, target, &opts, &mut |_| {}).unwrap()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Contributions + base of every row and output equal the prediction in `c.space`
/// to 1e-9 (relative for values above 1; log-odds and logits are checked through the
/// sigmoid / softmax the model applies).
fn assert_local_accuracy(p: &Pipeline, t: &tabular::Table, c: &Contributions, what: &str) {
    let pred = p.predict(t).unwrap();
    let k = c.outputs;
    assert_eq!(
        c.values.len(),
        t.rows() * k * (c.columns.len() + 1),
        "{what}"
    );
    for i in 0..t.rows() {
        let sums: Vec<f64> = (0..k).map(|o| c.row(i, o).iter().sum()).collect();
        let (got, want): (Vec<f64>, Vec<f64>) = match (c.space, p.problem) {
            (Space::Value, ProblemType::Regression) => (sums, vec![pred.values[i]]),
            (Space::Probability, ProblemType::Binary) => {
                (sums, vec![pred.probabilities[2 * i + 1]])
            }
            (Space::LogOdds, ProblemType::Binary) => {
                (vec![sigmoid(sums[0])], vec![pred.probabilities[2 * i + 1]])
            }
            (Space::Probability, ProblemType::Multiclass) => {
                (sums, pred.probabilities[i * k..(i + 1) * k].to_vec())
            }
            (Space::Logits, ProblemType::Multiclass) => {
                let m = sums.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = sums.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                (
                    e.iter().map(|v| v / z).collect(),
                    pred.probabilities[i * k..(i + 1) * k].to_vec(),
                )
            }
            (s, pr) => panic!("{what}: space {s:?} for a {pr:?} problem"),
        };
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-9 * w.abs().max(1.0),
                "{what} row {i}: contributions give {g}, the model predicts {w}"
            );
        }
    }
}

#[test]
fn every_algorithm_adds_up_to_its_prediction_on_real_data() {
    for (name, target, rows) in PROBLEMS {
        let t = dataset(name, rows);
        for alg in [
            Algorithm::Gbm,
            Algorithm::RandomForest,
            Algorithm::ExtraTrees,
            Algorithm::Linear,
            Algorithm::Mlp,
        ] {
            let p = train_alg(&t, target, alg);
            let c = p.contributions(&t).unwrap();
            let what = format!("{name} {}", alg.name());
            let (method, space) = match (alg, p.problem) {
                (Algorithm::Gbm, ProblemType::Binary) => (Method::TreeShap, Space::LogOdds),
                (Algorithm::Gbm, ProblemType::Multiclass) => (Method::TreeShap, Space::Logits),
                (Algorithm::Linear, ProblemType::Binary) => (Method::LinearShap, Space::LogOdds),
                (Algorithm::Linear, ProblemType::Multiclass) => (Method::LinearShap, Space::Logits),
                (Algorithm::Linear, _) => (Method::LinearShap, Space::Value),
                (Algorithm::Gbm | Algorithm::RandomForest | Algorithm::ExtraTrees, pr) => (
                    Method::TreeShap,
                    if pr == ProblemType::Regression {
                        Space::Value
                    } else {
                        Space::Probability
                    },
                ),
                (Algorithm::Mlp, pr) => (
                    Method::PermutationShap,
                    if pr == ProblemType::Regression {
                        Space::Value
                    } else {
                        Space::Probability
                    },
                ),
            };
            assert_eq!((c.method, c.space), (method, space), "{what}");
            let json = serde_json::to_value(&c).unwrap();
            assert_eq!(
                json["space"],
                space.as_str(),
                "{what}: JSON names the space"
            );
            assert_eq!(json["method"], method.as_str(), "{what}");
            assert_local_accuracy(&p, &t, &c, &what);
            // something is explained: not every contribution is zero
            assert!(
                (0..t.rows()).any(|i| c.row(i, 0)[..c.columns.len()]
                    .iter()
                    .any(|v| v.abs() > 1e-6)),
                "{what}"
            );
        }
    }
}

/// An ensemble assembled the way Autopilot does.
fn ensemble(t: &tabular::Table, target: &str, members: &[(Algorithm, f64)]) -> Pipeline {
    let prep = prepare(t, target, None).unwrap();
    let fitted = members
        .iter()
        .map(|&(alg, weight)| Member {
            weight,
            model: fit_learner(
                alg,
                &prep.target,
                &fast_params(alg),
                &prep.features,
                &prep.target.values,
                None,
            )
            .unwrap()
            .model,
        })
        .collect();
    Pipeline::assemble(
        prep,
        Model::Ensemble { members: fitted },
        Metadata::default(),
    )
}

#[test]
fn ensembles_add_up_exactly_whether_combined_or_sampled() {
    for (name, target, rows) in PROBLEMS {
        let t = dataset(name, rows);
        let regression = name == "california_housing";
        // a mixed ensemble (with an MLP) is explained as a whole, by permutation SHAP
        let mixed = ensemble(
            &t,
            target,
            &[
                (Algorithm::Gbm, 0.5),
                (Algorithm::Mlp, 0.3),
                (Algorithm::Linear, 0.2),
            ],
        );
        let c = mixed.contributions(&t).unwrap();
        let out = if regression {
            Space::Value
        } else {
            Space::Probability
        };
        assert_eq!(
            (c.method, c.space),
            (Method::PermutationShap, out),
            "{name}"
        );
        assert_local_accuracy(&mixed, &t, &c, &format!("{name} mixed ensemble"));
        // members that all explain exactly in the ensemble's space are combined:
        // forests for classifiers; gbm, forests and linear models for regression
        let exact: &[(Algorithm, f64)] = if regression {
            &[
                (Algorithm::Gbm, 0.4),
                (Algorithm::RandomForest, 0.35),
                (Algorithm::Linear, 0.25),
            ]
        } else {
            &[(Algorithm::RandomForest, 0.6), (Algorithm::ExtraTrees, 0.4)]
        };
        let combined = ensemble(&t, target, exact);
        let c = combined.contributions(&t).unwrap();
        assert_eq!((c.method, c.space), (Method::Combined, out), "{name}");
        assert_local_accuracy(&combined, &t, &c, &format!("{name} combined ensemble"));
        // and the combination is the weighted sum of the members' own explanations
        let Model::Ensemble { members } = &combined.model else {
            unreachable!()
        };
        let mut want = vec![0.0; c.values.len()];
        for m in members {
            let single = Pipeline {
                model: m.model.clone(),
                ..combined.clone()
            };
            let v = single.contributions(&t).unwrap().values;
            for (w, v) in want.iter_mut().zip(v) {
                *w += m.weight * v;
            }
        }
        assert!(
            c.values
                .iter()
                .zip(&want)
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{name}"
        );
    }
}

#[test]
fn linear_shap_is_the_closed_form_against_training_means() {
    for (name, target, rows) in PROBLEMS {
        let t = dataset(name, rows);
        let p = train_alg(&t, target, Algorithm::Linear);
        let Model::Linear {
            encoder,
            model,
            means,
        } = &p.model
        else {
            panic!("{name}: not linear")
        };
        // the stored means are the training design matrix's column means
        let prep = prepare(&t, target, None).unwrap();
        let dense = encoder.encode(&prep.features);
        let n = prep.features.n_rows();
        assert_eq!(means.len(), encoder.width);
        for (j, m) in means.iter().enumerate() {
            let want = (0..n).map(|i| dense[i * encoder.width + j]).sum::<f64>() / n as f64;
            assert!((m - want).abs() < 1e-12, "{name} column {j}");
        }
        let c = p.contributions(&t).unwrap();
        let owner = encoder.column_owners();
        let x = p
            .preprocessor
            .transform(&t, &(0..t.rows()).collect::<Vec<_>>())
            .unwrap();
        let d = encoder.encode(&x);
        let cols = c.columns.len();
        // a feature's input column: datetimes own six features, text 2 + its words
        let mut col_of_feature = Vec::new();
        for (ci, col) in p.preprocessor.required().enumerate() {
            col_of_feature.extend(std::iter::repeat_n(ci, col.encoding.parts()));
        }
        for i in 0..t.rows() {
            for o in 0..c.outputs {
                let coef = model.coef_row(o).unwrap();
                let mut want = vec![0.0; cols + 1];
                for (j, a) in coef.iter().enumerate() {
                    want[col_of_feature[owner[j]]] += a * (d[i * encoder.width + j] - means[j]);
                }
                want[cols] =
                    model.intercept()[o] + coef.iter().zip(means).map(|(a, m)| a * m).sum::<f64>();
                let got = c.row(i, o);
                assert!(
                    got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-9),
                    "{name} row {i} output {o}: {got:?} vs {want:?}"
                );
            }
        }
        // against training means, every column's contributions average to zero over
        // the training rows (the model was refitted on all of them)
        for o in 0..c.outputs {
            for col in 0..cols {
                let mean = (0..t.rows()).map(|i| c.row(i, o)[col]).sum::<f64>() / n as f64;
                assert!(mean.abs() < 1e-9, "{name} output {o} column {col}: {mean}");
            }
        }
    }
}

#[test]
fn permutation_shap_recovers_a_linear_model_treated_as_a_black_box() {
    // a linear regression is additive in its input columns, so permutation SHAP must
    // equal the closed form measured against the background rows it used (all 100:
    // 9 columns leave 2048 evaluations enough sweeps for every row)
    let t = dataset("california_housing", Some(1500));
    let p = train_alg(&t, "median_house_value", Algorithm::Linear);
    let opts = ExplainOptions {
        permutation: true,
        ..Default::default()
    };
    let c = p.contributions_with(&t, &opts).unwrap();
    assert_eq!((c.method, c.space), (Method::PermutationShap, Space::Value));
    assert_eq!(p.background.n_rows(), 100);
    let Model::Linear { encoder, model, .. } = &p.model else {
        panic!("not linear")
    };
    let mut bg_mean = vec![0.0; encoder.width];
    let mut d = vec![0.0; encoder.width];
    for b in 0..100 {
        encoder.encode_row(p.background.row(b), &mut d);
        for (m, v) in bg_mean.iter_mut().zip(&d) {
            *m += v / 100.0;
        }
    }
    let exact = Pipeline {
        model: Model::Linear {
            encoder: encoder.clone(),
            model: model.clone(),
            means: bg_mean,
        },
        ..p.clone()
    }
    .contributions(&t)
    .unwrap();
    assert_eq!(exact.method, Method::LinearShap);
    let worst = c
        .values
        .iter()
        .zip(&exact.values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let scale = exact.values.iter().map(|v| v.abs()).fold(0.0, f64::max);
    assert!(worst < 1e-9 * scale, "worst {worst}, scale {scale}");
}

#[test]
fn permutation_shap_is_seeded_and_thread_independent() {
    let t = dataset("titanic", None);
    let p = train_alg(&t, "Survived", Algorithm::Mlp);
    let few = t.take(&(0..120).collect::<Vec<_>>());
    let run = |seed: u64, threads: usize| {
        p.contributions_with(
            &few,
            &ExplainOptions {
                seed,
                threads,
                max_evals: 300,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let a = run(0, 1);
    assert_eq!(a, run(0, 1), "same seed, same values");
    assert_eq!(a, run(0, 4), "the thread count does not matter");
    let b = run(5, 2);
    assert_ne!(a.values, b.values, "another seed draws other permutations");
    // the base value is the same for every row and seed: the mean over background rows
    let base = a.row(0, 0)[a.columns.len()];
    assert!((0..few.rows()).all(|i| a.row(i, 0)[a.columns.len()] == base));
    assert_eq!(b.row(0, 0)[b.columns.len()], base);
    assert_local_accuracy(&p, &few, &a, "titanic mlp, 300 evaluations");
}

#[test]
fn pipelines_without_means_or_background_still_load_predict_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let t = dataset("titanic", None);
    for alg in [Algorithm::Linear, Algorithm::Mlp, Algorithm::Gbm] {
        let p = train_alg(&t, "Survived", alg);
        let mut v = serde_json::to_value(&p).unwrap();
        assert!(
            v.get("background").is_some(),
            "new files carry the background"
        );
        v.as_object_mut().unwrap().remove("background");
        if alg == Algorithm::Linear {
            assert!(v["model"].get("means").is_some());
            v["model"].as_object_mut().unwrap().remove("means");
        }
        let f = dir.path().join(format!("{}.model", alg.name()));
        std::fs::write(&f, v.to_string()).unwrap();
        let old = Pipeline::load(&f).unwrap();
        assert!(old.background.is_empty());
        assert_eq!(old.predict(&t).unwrap(), p.predict(&t).unwrap());
        let c = old.contributions(&t).unwrap();
        assert_local_accuracy(&old, &t, &c, &format!("old {} file", alg.name()));
        match &old.model {
            Model::Linear { model, means, .. } => {
                // the encoder's centre: base = the margin at all-zero standardised inputs
                assert!(means.is_empty());
                assert!((c.row(0, 0)[c.columns.len()] - model.intercept()[0]).abs() < 1e-12);
            }
            Model::Gbm(_) => assert_eq!(c, p.contributions(&t).unwrap()),
            _ => {}
        }
    }
}
