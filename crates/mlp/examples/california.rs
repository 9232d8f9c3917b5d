//! Full-size run on the repository's `datasets/` with default parameters (release build recommended):
//!
//! ```text
//! CARGO_TARGET_DIR=target-dense cargo run --release -p mlp --example california
//! ```
//!
//! Prints test R² of the MLP and of ridge on california_housing (8 numeric columns) and test
//! accuracy on penguins (5 numeric columns), with training times.

#[path = "../../linear/tests/common/mod.rs"]
mod common;

use std::time::Instant;

use linear::LinearParams;
use mlp::{MlpParams, Task, fit};

fn main() {
    let data = common::california();
    let (d, n) = (data.d, data.n_train());
    let t = Instant::now();
    let ridge = linear::fit(
        &LinearParams::default(),
        Task::Regression,
        &data.x_train,
        n,
        d,
        &data.y_train,
    )
    .unwrap();
    let ridge_time = t.elapsed();
    let ridge_r2 = common::r2(
        &data.y_test,
        &ridge.predict(&data.x_test, data.n_test()).unwrap(),
    );
    println!(
        "california ({n} train / {} test rows, {d} features)",
        data.n_test()
    );
    println!("  ridge  R² {ridge_r2:.4}  fit {ridge_time:.2?}");
    for seed in 0..3 {
        let params = MlpParams {
            seed,
            ..Default::default()
        };
        let t = Instant::now();
        let model = fit(
            &params,
            Task::Regression,
            &data.x_train,
            n,
            d,
            &data.y_train,
        )
        .unwrap();
        let time = t.elapsed();
        let r2 = common::r2(
            &data.y_test,
            &model.predict(&data.x_test, data.n_test()).unwrap(),
        );
        let t = Instant::now();
        let mut out = [0.0];
        for row in data.x_test.chunks(d) {
            model.predict_row(row, &mut out).unwrap();
        }
        let per_row = t.elapsed() / data.n_test() as u32;
        println!(
            "  mlp    R² {r2:.4}  fit {time:.2?} ({} epochs, best {})  predict_row {per_row:.2?}  [seed {seed}]",
            model.epochs_trained(),
            model.best_epoch()
        );
    }

    let data = common::penguins();
    let task = Task::Multiclass { num_class: 3 };
    let logit = linear::fit(
        &LinearParams::default(),
        task,
        &data.x_train,
        data.n_train(),
        data.d,
        &data.y_train,
    )
    .unwrap();
    let acc = common::accuracy(
        &data.y_test,
        &logit.predict(&data.x_test, data.n_test()).unwrap(),
        3,
    );
    println!(
        "penguins ({} train / {} test rows)",
        data.n_train(),
        data.n_test()
    );
    println!("  logistic accuracy {acc:.4}");
    let model = fit(
        &MlpParams::default(),
        task,
        &data.x_train,
        data.n_train(),
        data.d,
        &data.y_train,
    )
    .unwrap();
    let acc = common::accuracy(
        &data.y_test,
        &model.predict(&data.x_test, data.n_test()).unwrap(),
        3,
    );
    println!(
        "  mlp      accuracy {acc:.4} ({} epochs)",
        model.epochs_trained()
    );
}
