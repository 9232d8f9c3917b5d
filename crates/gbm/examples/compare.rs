//! Dev benchmark: train on one dataset of `datasets/` with the README's split and print the test
//! metric and training time.
//!
//! `cargo run --release -p gbm --example compare -- PATH.csv [--threads N] [--trees N]
//!  [--leaves N] [--lr X] [--bins N] [--repeat N] [--bagging F] [--feature-fraction F]
//!  [--regression l2|l1|huber] [--training-metric] [--bench]`
//!
//! `--bench` (used by `cargo xtask bench learners`) prints `key=value` lines instead of
//! the one-line summary, with batch prediction bounded to `--threads` threads and the
//! single-row latency as the median of individually timed `predict_row` calls.
//! `--training-metric` records the training loss per iteration (off by default), to measure
//! what it costs.

use gbm::{Dataset, GbmParams, Objective};
use std::time::Instant;

mod common;
use common::{Task, auc};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: compare PATH.csv [--threads N] ...")?;
    let mut params = GbmParams {
        n_estimators: 200,
        num_leaves: 31,
        learning_rate: 0.1,
        max_bin: 255,
        num_threads: 1,
        ..Default::default()
    };
    let mut repeat = 1usize;
    let mut regression: Option<String> = None;
    let mut bench = false;
    let mut i = 2;
    while i < args.len() {
        if args[i] == "--bench" {
            bench = true;
            i += 1;
            continue;
        }
        if args[i] == "--training-metric" {
            params.training_metric = true;
            i += 1;
            continue;
        }
        let v = args
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", args[i]))?;
        match args[i].as_str() {
            "--threads" => params.num_threads = v.parse()?,
            "--trees" => params.n_estimators = v.parse()?,
            "--leaves" => params.num_leaves = v.parse()?,
            "--lr" => params.learning_rate = v.parse()?,
            "--bins" => params.max_bin = v.parse()?,
            "--repeat" => repeat = v.parse()?,
            "--bagging" => {
                params.bagging_fraction = v.parse()?;
                params.bagging_freq = 1;
            }
            "--feature-fraction" => params.feature_fraction = v.parse()?,
            "--regression" => regression = Some(v.clone()),
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
    params.objective = match task {
        Task::Regression => match regression.as_deref() {
            Some("l1") => Objective::L1,
            Some("huber") => Objective::Huber {
                delta: ytr.iter().map(|v| v.abs()).sum::<f64>() / ytr.len() as f64 * 0.1,
            },
            _ => Objective::L2,
        },
        Task::Binary => Objective::Binary,
        Task::Multiclass => Objective::Multiclass {
            num_class: classes.len(),
        },
    };

    let mut best_time = f64::INFINITY;
    let mut model = None;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let m = gbm::train(&params, &xtr, &ytr, None, None)?;
        best_time = best_time.min(t0.elapsed().as_secs_f64());
        model = Some(m);
    }
    let model = model.ok_or("no model")?;
    if std::env::var_os("GBM_TRAIN_LOSS").is_some() && task == Task::Binary {
        let pt = model.predict(&xtr)?;
        let ll = -ytr
            .iter()
            .zip(&pt)
            .map(|(y, p)| {
                if *y > 0.5 {
                    p.max(1e-15).ln()
                } else {
                    (1.0 - p).max(1e-15).ln()
                }
            })
            .sum::<f64>()
            / ytr.len() as f64;
        let nl: usize = model.trees.iter().map(|t| t.num_leaves()).sum();
        println!("train logloss {ll:.6} total leaves {nl}");
    }
    if std::env::var_os("GBM_SHAP").is_some() {
        let t0 = Instant::now();
        let c = model.predict_contrib(&xte)?;
        println!(
            "shap: {:.1} us/row ({} values)",
            t0.elapsed().as_secs_f64() / xte.n_rows() as f64 * 1e6,
            c.len()
        );
    }
    if let Ok(f) = std::env::var("GBM_DUMP") {
        std::fs::write(f, format!("{:#?}", model.trees))?;
    }
    let t0 = Instant::now();
    let pred = model.predict(&xte)?;
    let batch_s = t0.elapsed().as_secs_f64();
    let metric_name = match task {
        Task::Binary => "auc",
        Task::Multiclass => "accuracy",
        Task::Regression => "r2",
    };
    let metric = match task {
        Task::Binary => auc(&yte, &pred),
        Task::Multiclass => {
            let k = classes.len();
            let correct = (0..yte.len())
                .filter(|&i| {
                    let row = &pred[i * k..(i + 1) * k];
                    let am = (0..k).fold(0, |b, c| if row[c] > row[b] { c } else { b });
                    am as f64 == yte[i]
                })
                .count();
            correct as f64 / yte.len() as f64
        }
        Task::Regression => {
            let mean = yte.iter().sum::<f64>() / yte.len() as f64;
            let ss_tot: f64 = yte.iter().map(|v| (v - mean).powi(2)).sum();
            let ss_res: f64 = yte.iter().zip(&pred).map(|(a, b)| (a - b).powi(2)).sum();
            1.0 - ss_res / ss_tot
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
    if bench {
        let stats = bench_predict(&model, &xte, params.num_threads)?;
        let model_bytes = serde_json::to_string(&model)?.len();
        let task_name = match task {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
        };
        println!("dataset={name}");
        println!("task={task_name}");
        println!("library=gbm");
        println!("threads={}", params.num_threads);
        println!("n_train={}", xtr.n_rows());
        println!("n_test={}", xte.n_rows());
        println!("n_features={}", xte.n_features());
        println!("trees={}", model.trees.len());
        println!("metric_name={metric_name}");
        println!("metric={metric:.6}");
        println!("logloss={logloss:.6}");
        println!("train_s={best_time:.6}");
        println!("predict_rows_per_s={:.1}", stats.batch_rows_per_s);
        println!("single_row_us={:.3}", stats.single_median_us);
        println!("single_row_calls={}", stats.single_calls);
        println!("model_bytes={model_bytes}");
        return Ok(());
    }
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

struct PredictStats {
    batch_rows_per_s: f64,
    single_median_us: f64,
    single_calls: usize,
}

/// Batch prediction of the test set inside a pool of `threads` threads (0 = all cores),
/// best of several runs; then the median of individually timed single-row calls over the
/// test rows (extracted beforehand, cycled, after a warm-up).
fn bench_predict(
    model: &gbm::GbmModel,
    xte: &Dataset,
    threads: usize,
) -> Result<PredictStats, Box<dyn std::error::Error>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let n = xte.n_rows();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    let start = Instant::now();
    while runs < 3 || (start.elapsed().as_secs_f64() < 0.3 && runs < 1000) {
        let t0 = Instant::now();
        let p = pool.install(|| model.predict(xte))?;
        best = best.min(t0.elapsed().as_secs_f64());
        std::hint::black_box(p);
        runs += 1;
    }
    let rows: Vec<Vec<f64>> = (0..n.min(5000))
        .map(|r| {
            let mut row = vec![0.0; xte.n_features()];
            xte.row_into(r, &mut row).map(|()| row)
        })
        .collect::<Result<_, _>>()?;
    let mut out = vec![0.0; model.n_outputs()];
    for row in rows.iter().take(100) {
        model.predict_row(row, &mut out)?;
    }
    let calls = 5000;
    let mut times = Vec::with_capacity(calls);
    for row in rows.iter().cycle().take(calls) {
        let t0 = Instant::now();
        model.predict_row(std::hint::black_box(row), &mut out)?;
        times.push(t0.elapsed().as_secs_f64());
        std::hint::black_box(&out);
    }
    times.sort_by(f64::total_cmp);
    Ok(PredictStats {
        batch_rows_per_s: n as f64 / best,
        single_median_us: times[calls / 2] * 1e6,
        single_calls: calls,
    })
}
