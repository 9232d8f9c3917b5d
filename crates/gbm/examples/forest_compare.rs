//! Dev benchmark for random forests / extra trees: train on one dataset of `datasets/` with the
//! README's split and print the test metric and training time.
//!
//! `cargo run --release -p gbm --example forest_compare -- PATH.csv [--threads N]
//!  [--trees N] [--extra 0|1] [--max-features F] [--leaves N] [--repeat N]`

use gbm::{ForestParams, ForestTask};
use std::time::Instant;

mod common;
use common::{Task, auc};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: compare PATH.csv [--threads N] ...")?;
    let mut params = ForestParams {
        num_threads: 1,
        ..Default::default()
    };
    let mut repeat = 1usize;
    let mut i = 2;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--threads" => params.num_threads = v.parse()?,
            "--trees" => params.n_estimators = v.parse()?,
            "--leaves" => params.num_leaves = v.parse()?,
            "--max-features" => params.max_features = Some(v.parse()?),
            "--min-leaf" => params.min_data_in_leaf = v.parse()?,
            "--max-bin" => params.max_bin = v.parse()?,
            "--extra" => {
                let e = v == "1";
                params.extra_trees = e;
                params.bootstrap = !e;
            }
            "--repeat" => repeat = v.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
        i += 2;
    }
    let common::Split {
        name,
        task,
        classes,
        xtr,
        ytr,
        xte,
        yte,
    } = common::load(path)?;
    params.task = match task {
        Task::Regression => ForestTask::Regression,
        Task::Binary => ForestTask::Binary,
        Task::Multiclass => ForestTask::Multiclass {
            num_class: classes.len(),
        },
    };

    let mut best_time = f64::INFINITY;
    let mut model = None;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let m = gbm::train_forest(&params, &xtr, &ytr, None)?;
        best_time = best_time.min(t0.elapsed().as_secs_f64());
        model = Some(m);
    }
    let model = model.ok_or("no model")?;
    let t0 = Instant::now();
    let pred = model.predict(&xte)?;
    let batch_s = t0.elapsed().as_secs_f64();
    let (metric_name, metric) = match task {
        Task::Binary => ("auc", auc(&yte, &pred)),
        Task::Multiclass => {
            let k = classes.len();
            let correct = (0..yte.len())
                .filter(|&i| {
                    let row = &pred[i * k..(i + 1) * k];
                    let am = (0..k).fold(0, |b, c| if row[c] > row[b] { c } else { b });
                    am as f64 == yte[i]
                })
                .count();
            ("accuracy", correct as f64 / yte.len() as f64)
        }
        Task::Regression => {
            let mean = yte.iter().sum::<f64>() / yte.len() as f64;
            let ss_tot: f64 = yte.iter().map(|v| (v - mean).powi(2)).sum();
            let ss_res: f64 = yte.iter().zip(&pred).map(|(a, b)| (a - b).powi(2)).sum();
            ("r2", 1.0 - ss_res / ss_tot)
        }
    };
    let logloss = match task {
        Task::Regression => f64::NAN,
        Task::Binary => {
            -yte.iter()
                .zip(&pred)
                .map(|(y, p)| {
                    if *y > 0.5 {
                        p.max(1e-15).ln()
                    } else {
                        (1.0 - p).max(1e-15).ln()
                    }
                })
                .sum::<f64>()
                / yte.len() as f64
        }
        Task::Multiclass => {
            let k = classes.len();
            -(0..yte.len())
                .map(|i| pred[i * k + yte[i] as usize].max(1e-15).ln())
                .sum::<f64>()
                / yte.len() as f64
        }
    };
    // single-row latency
    let mut row = vec![0.0; xte.n_features()];
    let mut out = vec![0.0; model.n_outputs()];
    let reps = xte.n_rows().min(2000);
    let t0 = Instant::now();
    let mut acc = 0.0;
    for r in 0..reps {
        xte.row_into(r, &mut row)?;
        model.predict_row(&row, &mut out)?;
        acc += out[0];
    }
    let single_us = t0.elapsed().as_secs_f64() / reps as f64 * 1e6;
    let model_kb = serde_json::to_string(&model)?.len() as f64 / 1024.0;
    println!(
        "{name} {metric_name}={metric:.6} logloss={logloss:.5} train_s={best_time:.4} model_json_kb={model_kb:.0} threads={} trees={} batch_rows_per_s={:.0} single_row_us={single_us:.2} (chk {acc:.3})",
        params.num_threads,
        model.trees.len(),
        xte.n_rows() as f64 / batch_s,
    );
    Ok(())
}
