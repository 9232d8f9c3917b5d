//! The bar on real data: scikit-learn's scores on the same columns and split
//! (`real_data.py`, scikit-learn 1.9.1). These tests fail when the repository's `datasets/` is missing.

mod common;

use linear::{LinearParams, Task, fit};

/// `Ridge()` test R² on california_housing, 8 numeric columns (real_data.py).
const SKLEARN_CALIFORNIA_R2: f64 = 0.633154;
/// `LogisticRegression()` test accuracy on penguins, 5 numeric columns (real_data.py).
const SKLEARN_PENGUINS_ACCURACY: f64 = 0.985507;

#[test]
fn ridge_on_california_matches_sklearn() {
    let data = common::california();
    assert_eq!((data.n_train(), data.n_test()), (16338, 4095));
    let model = fit(
        &LinearParams::default(),
        Task::Regression,
        &data.x_train,
        data.n_train(),
        data.d,
        &data.y_train,
    )
    .unwrap();
    let pred = model.predict(&data.x_test, data.n_test()).unwrap();
    let r2 = common::r2(&data.y_test, &pred);
    println!("california ridge R² = {r2:.6} (scikit-learn {SKLEARN_CALIFORNIA_R2})");
    assert!(
        (r2 - SKLEARN_CALIFORNIA_R2).abs() < 0.01,
        "R² {r2} vs scikit-learn {SKLEARN_CALIFORNIA_R2}"
    );
}

#[test]
fn logistic_on_penguins_matches_sklearn() {
    let data = common::penguins();
    assert_eq!((data.n_train(), data.n_test()), (273, 69));
    let task = Task::Multiclass { num_class: 3 };
    let model = fit(
        &LinearParams::default(),
        task,
        &data.x_train,
        data.n_train(),
        data.d,
        &data.y_train,
    )
    .unwrap();
    assert!(model.converged());
    let proba = model.predict(&data.x_test, data.n_test()).unwrap();
    let acc = common::accuracy(&data.y_test, &proba, 3);
    println!("penguins logistic accuracy = {acc:.6} (scikit-learn {SKLEARN_PENGUINS_ACCURACY})");
    assert!(
        acc >= SKLEARN_PENGUINS_ACCURACY - 0.015,
        "accuracy {acc} vs scikit-learn {SKLEARN_PENGUINS_ACCURACY}"
    );
}
