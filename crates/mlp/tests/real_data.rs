//! The bar on real data (fails when the repository's `datasets/` is missing). Sizes are kept small
//! so the tests stay fast in an unoptimised build; `examples/california.rs` runs the
//! defaults on the full training part.

#[path = "../../linear/tests/common/mod.rs"]
mod common;

use linear::LinearParams;
use mlp::{MlpParams, Task, fit};

#[test]
fn mlp_beats_ridge_on_california() {
    let data = common::california();
    let (d, n) = (data.d, data.n_train());
    let ridge = linear::fit(
        &LinearParams::default(),
        Task::Regression,
        &data.x_train,
        n,
        d,
        &data.y_train,
    )
    .unwrap();
    let ridge_r2 = common::r2(
        &data.y_test,
        &ridge.predict(&data.x_test, data.n_test()).unwrap(),
    );

    // A strided 4000-row subsample of the training part (the file is ordered geographically,
    // so a prefix would not do) and a smaller network keep this test quick unoptimised.
    let m = 4000;
    let step = n / m;
    let xs: Vec<f64> = (0..m)
        .flat_map(|i| {
            data.x_train[i * step * d..(i * step + 1) * d]
                .iter()
                .copied()
        })
        .collect();
    let ys: Vec<f64> = (0..m).map(|i| data.y_train[i * step]).collect();
    let params = MlpParams {
        hidden_layers: vec![32, 16],
        learning_rate: 3e-3,
        batch_size: 64,
        ..Default::default()
    };
    let model = fit(&params, Task::Regression, &xs, m, d, &ys).unwrap();
    let mlp_r2 = common::r2(
        &data.y_test,
        &model.predict(&data.x_test, data.n_test()).unwrap(),
    );
    println!(
        "california R²: mlp {mlp_r2:.4} ({} epochs), ridge {ridge_r2:.4}",
        model.epochs_trained()
    );
    assert!(
        mlp_r2 > ridge_r2 + 0.05,
        "MLP R² {mlp_r2} does not beat ridge {ridge_r2}"
    );
}

#[test]
fn mlp_on_penguins() {
    let data = common::penguins();
    let model = fit(
        &MlpParams::default(),
        Task::Multiclass { num_class: 3 },
        &data.x_train,
        data.n_train(),
        data.d,
        &data.y_train,
    )
    .unwrap();
    let proba = model.predict(&data.x_test, data.n_test()).unwrap();
    let acc = common::accuracy(&data.y_test, &proba, 3);
    println!(
        "penguins accuracy: mlp {acc:.4} ({} epochs)",
        model.epochs_trained()
    );
    // scikit-learn LogisticRegression() scores 0.9855 (68 / 69) on the same split.
    assert!(acc >= 0.95, "accuracy {acc}");
}
