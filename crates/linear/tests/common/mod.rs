//! Loads the repository's benchmark datasets (`datasets/`) the way `real_data.py` does: README split on the full
//! file, chosen numeric columns only, rows with a missing value dropped from each part,
//! columns standardised with the train part's mean and population standard deviation.
//! A missing dataset is a test failure, never a skip.

#![allow(dead_code)]

use std::path::PathBuf;

pub struct Prepared {
    pub d: usize,
    pub x_train: Vec<f64>,
    pub y_train: Vec<f64>,
    pub x_test: Vec<f64>,
    pub y_test: Vec<f64>,
    /// Class names in index order (classification only).
    pub classes: Vec<String>,
}

impl Prepared {
    pub fn n_train(&self) -> usize {
        self.y_train.len()
    }
    pub fn n_test(&self) -> usize {
        self.y_test.len()
    }
}

pub fn datasets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets")
}

/// `classify`: stratified split and the target mapped to sorted class indices.
pub fn prepare(file: &str, target: &str, features: &[&str], classify: bool) -> Prepared {
    let path = datasets_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "dataset {} is required by this test and could not be read: {e}",
            path.display()
        )
    });
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("empty dataset").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{file}: no column {name}"))
    };
    let feat_idx: Vec<usize> = features.iter().map(|f| col(f)).collect();
    let t_idx = col(target);
    let rows: Vec<Vec<&str>> = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    let n = rows.len();

    // The README split, as the tabular crate implements it.
    let labels: Vec<String> = rows.iter().map(|r| r[t_idx].to_string()).collect();
    let (_, test_rows) = tabular::split::train_test(n, classify.then_some(&labels[..]));
    let mut test = vec![false; n];
    for i in test_rows {
        test[i] = true;
    }
    let classes: Vec<String> = if classify {
        let set: std::collections::BTreeSet<&str> = labels.iter().map(String::as_str).collect();
        set.into_iter().map(str::to_string).collect()
    } else {
        vec![]
    };

    let parse = |r: &Vec<&str>| -> Option<(Vec<f64>, f64)> {
        let x = feat_idx
            .iter()
            .map(|&j| r[j].parse::<f64>().ok())
            .collect::<Option<Vec<f64>>>()?;
        let y = if classify {
            classes.iter().position(|c| c == r[t_idx])? as f64
        } else {
            r[t_idx].parse().ok()?
        };
        Some((x, y))
    };
    let d = features.len();
    let (mut x_train, mut y_train, mut x_test, mut y_test) = (vec![], vec![], vec![], vec![]);
    for (i, r) in rows.iter().enumerate() {
        if let Some((x, y)) = parse(r) {
            if test[i] {
                x_test.extend(x);
                y_test.push(y);
            } else {
                x_train.extend(x);
                y_train.push(y);
            }
        }
    }
    // Standardise with train statistics.
    let nt = y_train.len() as f64;
    for j in 0..d {
        let mean = x_train.iter().skip(j).step_by(d).sum::<f64>() / nt;
        let var = x_train
            .iter()
            .skip(j)
            .step_by(d)
            .map(|v| (v - mean).powi(2))
            .sum::<f64>()
            / nt;
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        for v in x_train
            .iter_mut()
            .skip(j)
            .step_by(d)
            .chain(x_test.iter_mut().skip(j).step_by(d))
        {
            *v = (*v - mean) / sd;
        }
    }
    Prepared {
        d,
        x_train,
        y_train,
        x_test,
        y_test,
        classes,
    }
}

pub const CALIFORNIA: &[&str] = &[
    "longitude",
    "latitude",
    "housing_median_age",
    "total_rooms",
    "total_bedrooms",
    "population",
    "households",
    "median_income",
];
pub const PENGUINS: &[&str] = &[
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "year",
];

pub fn california() -> Prepared {
    prepare(
        "california_housing.csv",
        "median_house_value",
        CALIFORNIA,
        false,
    )
}

pub fn penguins() -> Prepared {
    prepare("penguins.csv", "species", PENGUINS, true)
}

pub fn r2(y: &[f64], pred: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    let ss_tot: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
    1.0 - ss_res / ss_tot
}

/// Accuracy of row-major class probabilities (`k` per row) against class indices.
pub fn accuracy(y: &[f64], proba: &[f64], k: usize) -> f64 {
    let hits = y
        .iter()
        .zip(proba.chunks_exact(k))
        .filter(|(t, p)| {
            let best = p
                .iter()
                .enumerate()
                .fold(0, |b, (i, v)| if *v > p[b] { i } else { b });
            best == **t as usize
        })
        .count();
    hits as f64 / y.len() as f64
}
