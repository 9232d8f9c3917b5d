//! Loss curves of a fit (`FitOptions::curves`): gbm per iteration, mlp per epoch, nothing for
//! the other learners, and the model unchanged by asking.

use learn::{Algorithm, FitOptions, Model, Prepared, fit_learner, fit_learner_with, prepare};

fn prepared(n: usize, target: &str) -> Prepared {
    let mut csv = String::from("a,b,color,binary,three,value\n");
    for i in 0..n {
        let a = (i * 37 % 101) as f64 / 10.0;
        let b = (i * 53 % 89) as f64 / 9.0;
        let color = ["red", "green", "blue"][i % 3];
        let noise = ((i * 7919) % 13) as f64 / 13.0;
        let s = a + 0.5 * b + if color == "red" { 2.0 } else { 0.0 } + 3.0 * noise;
        let binary = if s > 8.0 { "yes" } else { "no" };
        let three = ["low", "mid", "high"][((s / 6.0) as usize).min(2)];
        csv.push_str(&format!("{a},{b},{color},{binary},{three},{s}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, csv).unwrap();
    let mut t = tabular::read_path(&path).unwrap();
    let drop: Vec<&str> = ["binary", "three", "value"]
        .into_iter()
        .filter(|c| *c != target)
        .collect();
    t.columns.retain(|c| !drop.contains(&c.name.as_str()));
    prepare(&t, target, None).unwrap()
}

/// Fits `alg` on the first 80 % of the rows with the rest as the validation set, with and
/// without curves.
fn fit_both(p: &Prepared, alg: Algorithm, params: &[(&str, &str)]) -> (learn::Fitted, Model) {
    let n = p.target.values.len();
    let split = n * 4 / 5;
    let (train, valid): (Vec<usize>, Vec<usize>) = ((0..split).collect(), (split..n).collect());
    let x = p.features.select_rows(&train).unwrap();
    let xv = p.features.select_rows(&valid).unwrap();
    let y: Vec<f64> = train.iter().map(|&i| p.target.values[i]).collect();
    let yv: Vec<f64> = valid.iter().map(|&i| p.target.values[i]).collect();
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let with = fit_learner_with(
        alg,
        &p.target,
        &params,
        &x,
        &y,
        Some((&xv, &yv)),
        FitOptions { curves: true },
        &mut |_| {},
    )
    .unwrap();
    let without = fit_learner(alg, &p.target, &params, &x, &y, Some((&xv, &yv))).unwrap();
    assert!(without.curves.is_none());
    (with, without.model)
}

#[test]
fn gbm_curves_have_one_point_per_iteration_run() {
    // binary: early stopping on the validation set; the curves run past the kept iteration
    let p = prepared(600, "binary");
    let (f, plain) = fit_both(&p, Algorithm::Gbm, &[("learning_rate", "0.3")]);
    let Model::Gbm(m) = &f.model else { panic!() };
    let c = f.curves.as_ref().unwrap();
    assert_eq!(c.loss, "binary_logloss");
    assert_eq!(c.train.len(), c.valid.len());
    assert_eq!(c.valid, m.valid_history);
    assert_eq!(
        c.train.len(),
        f.iterations + 50,
        "early stopping waits 50 rounds"
    );
    assert!(
        c.train.last().unwrap() < &(0.5 * c.train[0]),
        "{:?}",
        c.train
    );
    // the model is what a fit without curves gives, and its file carries no training loss
    assert_eq!(f.model, plain);
    let json = serde_json::to_string(&f.model).unwrap();
    assert!(!json.contains("train_history") && !json.contains("training_metric"));

    // multiclass trains a fixed number of trees: the validation loss is measured for the
    // curves alone and is not left in the model
    let p = prepared(400, "three");
    let (f, plain) = fit_both(
        &p,
        Algorithm::Gbm,
        &[("n_estimators", "30"), ("early_stopping_rounds", "0")],
    );
    let c = f.curves.as_ref().unwrap();
    assert_eq!(c.loss, "multi_logloss");
    assert_eq!((c.train.len(), c.valid.len(), f.iterations), (30, 30, 30));
    assert!(c.train.windows(2).all(|w| w[1] < w[0]));
    assert_eq!(f.model, plain);
    let Model::Gbm(m) = &f.model else { panic!() };
    assert!(m.valid_history.is_empty() && m.train_history.is_empty());

    // regression without a validation set: a training curve only
    let p = prepared(300, "value");
    let f = fit_learner_with(
        Algorithm::Gbm,
        &p.target,
        &[("n_estimators".into(), "20".into())],
        &p.features,
        &p.target.values,
        None,
        FitOptions { curves: true },
        &mut |_| {},
    )
    .unwrap();
    let c = f.curves.unwrap();
    assert_eq!((c.loss, c.train.len(), c.valid.len()), ("l2", 20, 0));
}

#[test]
fn mlp_curves_have_one_point_per_epoch_and_other_learners_none() {
    let p = prepared(400, "binary");
    let (f, plain) = fit_both(
        &p,
        Algorithm::Mlp,
        &[("max_epochs", "15"), ("patience", "50")],
    );
    let c = f.curves.as_ref().unwrap();
    assert_eq!(c.loss, "cross_entropy");
    assert_eq!((c.train.len(), c.valid.len()), (15, 15));
    let Model::Mlp { model, .. } = &f.model else {
        panic!()
    };
    assert_eq!(model.epochs_trained(), 15);
    assert_eq!(f.model, plain);
    for alg in [Algorithm::Linear, Algorithm::RandomForest] {
        let (f, _) = fit_both(&p, alg, &[]);
        assert!(f.curves.is_none(), "{alg:?}");
    }
}
