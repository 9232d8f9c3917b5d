//! What the comparison examples share: the datasets' split and
//! encoding (numeric columns as is, others as sorted category codes) and AUC.
//! Included with `mod common;` by `compare.rs` and `forest_compare.rs`.

#![allow(dead_code)]

use gbm::{Column, Dataset};
use std::collections::BTreeMap;

pub fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone, Copy, PartialEq)]
pub enum Task {
    Binary,
    Multiclass,
    Regression,
}

pub fn spec(name: &str) -> Option<(&'static str, Task)> {
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

pub fn auc(y: &[f64], p: &[f64]) -> f64 {
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

/// A dataset of `datasets/`, split as its README says.
pub struct Split {
    pub name: String,
    pub task: Task,
    /// Class labels in code order (classification).
    pub classes: Vec<String>,
    pub xtr: Dataset,
    pub ytr: Vec<f64>,
    pub xte: Dataset,
    pub yte: Vec<f64>,
}

pub fn load(path: &str) -> Result<Split, Box<dyn std::error::Error>> {
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
    Ok(Split {
        name,
        task,
        classes,
        xtr,
        ytr,
        xte,
        yte,
    })
}
