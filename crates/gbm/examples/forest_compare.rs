//! Dev benchmark for random forests / extra trees: train on one shared dataset with the
//! README's split and print the test metric and training time.
//!
//! `cargo run --release -p gbm --example forest_compare -- PATH.csv [--threads N]
//!  [--trees N] [--extra 0|1] [--max-features F] [--leaves N] [--repeat N]`

use gbm::{Column, Dataset, ForestParams, ForestTask};
use std::collections::BTreeMap;
use std::time::Instant;

fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone, Copy, PartialEq)]
enum Task {
    Binary,
    Multiclass,
    Regression,
}

fn spec(name: &str) -> Option<(&'static str, Task)> {
    Some(match name {
        "penguins" => ("species", Task::Multiclass),
        "titanic" => ("Survived", Task::Binary),
        "wine_quality" => ("quality", Task::Multiclass),
        "california_housing" => ("median_house_value", Task::Regression),
        "adult" => ("income", Task::Binary),
        "bank_marketing" => ("y", Task::Binary),
        "diamonds" => ("price", Task::Regression),
        _ => return None,
    })
}

fn auc(y: &[f64], p: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut ranks = vec![0.0; y.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &t in &idx[i..=j] {
            ranks[t] = r;
        }
        i = j + 1;
    }
    let npos = y.iter().filter(|&&v| v > 0.5).count() as f64;
    let nneg = y.len() as f64 - npos;
    let sum_pos: f64 = (0..y.len()).filter(|&i| y[i] > 0.5).map(|i| ranks[i]).sum();
    (sum_pos - npos * (npos + 1.0) / 2.0) / (npos * nneg)
}

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
    let name = std::path::Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("bad path")?
        .to_string();
    let (target_name, task) = spec(&name).ok_or("unknown dataset")?;

    let mut rdr = csv::Reader::from_path(path)?;
    let headers: Vec<String> = rdr.headers()?.iter().map(String::from).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for rec in rdr.records() {
        let rec = rec?;
        for (j, f) in rec.iter().enumerate() {
            cells[j].push(f.to_string());
        }
    }
    let n = cells[0].len();
    let t = headers
        .iter()
        .position(|h| h == target_name)
        .ok_or("no target column")?;

    // target
    let labels: Vec<String> = cells[t].clone();
    let mut classes: Vec<String> = labels.clone();
    classes.sort();
    classes.dedup();
    let y_all: Vec<f64> = match task {
        Task::Regression => labels
            .iter()
            .map(|s| s.parse::<f64>())
            .collect::<Result<_, _>>()?,
        _ => labels
            .iter()
            .map(|s| classes.binary_search(s).map(|i| i as f64).unwrap_or(0.0))
            .collect(),
    };

    // split
    let mut test = vec![false; n];
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (r, l) in labels.iter().enumerate() {
        let key = if task == Task::Regression {
            String::new()
        } else {
            l.clone()
        };
        groups.entry(key).or_default().push(r);
    }
    for rows in groups.values_mut() {
        rows.sort_by_key(|&r| splitmix64(r as u64));
        let k = rows.len().div_ceil(5);
        for &r in &rows[..k] {
            test[r] = true;
        }
    }
    let train_rows: Vec<usize> = (0..n).filter(|&r| !test[r]).collect();
    let test_rows: Vec<usize> = (0..n).filter(|&r| test[r]).collect();

    // features
    let mut columns = Vec::new();
    for (j, col) in cells.iter().enumerate() {
        if j == t {
            continue;
        }
        let numeric = col.iter().all(|s| s.is_empty() || s.parse::<f64>().is_ok());
        if numeric {
            columns.push(Column::Numeric(
                col.iter()
                    .map(|s| s.parse::<f64>().unwrap_or(f64::NAN))
                    .collect(),
            ));
        } else {
            let mut levels: Vec<&String> = col.iter().filter(|s| !s.is_empty()).collect();
            levels.sort();
            levels.dedup();
            let codes = col
                .iter()
                .map(|s| {
                    if s.is_empty() {
                        u32::MAX
                    } else {
                        levels.binary_search(&s).map_or(u32::MAX, |i| i as u32)
                    }
                })
                .collect();
            columns.push(Column::Categorical {
                codes,
                missing: u32::MAX,
            });
        }
    }
    let data = Dataset::new(columns)?;
    let xtr = data.select_rows(&train_rows)?;
    let xte = data.select_rows(&test_rows)?;
    let ytr: Vec<f64> = train_rows.iter().map(|&r| y_all[r]).collect();
    let yte: Vec<f64> = test_rows.iter().map(|&r| y_all[r]).collect();
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
