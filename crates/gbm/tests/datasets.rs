//! End-to-end check on the repository's datasets (`datasets/`; a missing file fails the
//! tests): with default parameters the GBM's test metric must reach LightGBM-default level
//! (`datasets/anchors/automl.json`, method `lgbm`) minus 0.002, and a default random forest
//! (few trees, to keep the run short) scikit-learn `RandomForest` level.

use gbm::{Column, Dataset, ForestParams, ForestTask, GbmParams, Objective, train, train_forest};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn datasets_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    // a missing datasets/ is a broken checkout, not a reason to pass
    assert!(d.is_dir(), "datasets not found at {}", d.display());
    Some(d)
}

struct Split {
    xtr: Dataset,
    ytr: Vec<f64>,
    xte: Dataset,
    yte: Vec<f64>,
    n_classes: usize,
}

fn load(path: &std::path::Path, target: &str, classification: bool) -> Split {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for rec in rdr.records() {
        for (j, f) in rec.unwrap().iter().enumerate() {
            cells[j].push(f.to_string());
        }
    }
    let n = cells[0].len();
    let t = headers.iter().position(|h| h == target).unwrap();
    let labels = cells[t].clone();
    let mut classes = labels.clone();
    classes.sort();
    classes.dedup();
    let y: Vec<f64> = if classification {
        labels
            .iter()
            .map(|s| classes.binary_search(s).unwrap() as f64)
            .collect()
    } else {
        labels.iter().map(|s| s.parse().unwrap()).collect()
    };
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (r, l) in labels.iter().enumerate() {
        groups
            .entry(if classification {
                l.clone()
            } else {
                String::new()
            })
            .or_default()
            .push(r);
    }
    let mut test = vec![false; n];
    for rows in groups.values_mut() {
        rows.sort_by_key(|&r| splitmix64(r as u64));
        for &r in &rows[..rows.len().div_ceil(5)] {
            test[r] = true;
        }
    }
    let mut cols = Vec::new();
    for (j, col) in cells.iter().enumerate() {
        if j == t {
            continue;
        }
        if col.iter().all(|s| s.is_empty() || s.parse::<f64>().is_ok()) {
            cols.push(Column::Numeric(
                col.iter().map(|s| s.parse().unwrap_or(f64::NAN)).collect(),
            ));
        } else {
            let mut lv: Vec<&String> = col.iter().filter(|s| !s.is_empty()).collect();
            lv.sort();
            lv.dedup();
            let codes = col
                .iter()
                .map(|s| lv.binary_search(&s).map_or(u32::MAX, |i| i as u32))
                .collect();
            cols.push(Column::Categorical {
                codes,
                missing: u32::MAX,
            });
        }
    }
    let data = Dataset::new(cols).unwrap();
    let tr: Vec<usize> = (0..n).filter(|&r| !test[r]).collect();
    let te: Vec<usize> = (0..n).filter(|&r| test[r]).collect();
    Split {
        xtr: data.select_rows(&tr).unwrap(),
        ytr: tr.iter().map(|&r| y[r]).collect(),
        xte: data.select_rows(&te).unwrap(),
        yte: te.iter().map(|&r| y[r]).collect(),
        n_classes: classes.len(),
    }
}

fn auc(y: &[f64], p: &[f64]) -> f64 {
    let (mut num, mut pos, mut neg) = (0.0, 0.0, 0.0);
    for i in 0..y.len() {
        if y[i] > 0.5 {
            pos += 1.0;
            for j in 0..y.len() {
                if y[j] < 0.5 {
                    num += if p[i] > p[j] {
                        1.0
                    } else if p[i] == p[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        } else {
            neg += 1.0;
        }
    }
    num / (pos * neg)
}

#[test]
fn penguins_multiclass_reaches_lightgbm_default() {
    let Some(dir) = datasets_dir() else { return };
    let s = load(&dir.join("penguins.csv"), "species", true);
    let p = GbmParams {
        objective: Objective::Multiclass {
            num_class: s.n_classes,
        },
        num_threads: 1,
        ..Default::default()
    };
    let m = train(&p, &s.xtr, &s.ytr, None, None).unwrap();
    let pred = m.predict(&s.xte).unwrap();
    let k = s.n_classes;
    let correct = (0..s.yte.len())
        .filter(|&i| {
            let r = &pred[i * k..(i + 1) * k];
            (0..k).fold(0, |b, c| if r[c] > r[b] { c } else { b }) as f64 == s.yte[i]
        })
        .count();
    let acc = correct as f64 / s.yte.len() as f64;
    assert!(acc >= 0.9714 - 0.002, "penguins accuracy {acc}");
}

#[test]
fn titanic_binary_reaches_lightgbm_default() {
    let Some(dir) = datasets_dir() else { return };
    let s = load(&dir.join("titanic.csv"), "Survived", true);
    let p = GbmParams {
        objective: Objective::Binary,
        num_threads: 1,
        ..Default::default()
    };
    let m = train(&p, &s.xtr, &s.ytr, None, None).unwrap();
    let pred = m.predict(&s.xte).unwrap();
    let a = auc(&s.yte, &pred);
    assert!(a >= 0.8648 - 0.002, "titanic auc {a}");
}

fn accuracy(y: &[f64], pred: &[f64], k: usize) -> f64 {
    let correct = (0..y.len())
        .filter(|&i| {
            let r = &pred[i * k..(i + 1) * k];
            (0..k).fold(0, |b, c| if r[c] > r[b] { c } else { b }) as f64 == y[i]
        })
        .count();
    correct as f64 / y.len() as f64
}

fn forest(task: ForestTask, n_estimators: usize) -> ForestParams {
    ForestParams {
        n_estimators,
        num_threads: 2,
        ..ForestParams::random_forest(task)
    }
}

#[test]
fn penguins_random_forest_reaches_sklearn_level() {
    let Some(dir) = datasets_dir() else { return };
    let s = load(&dir.join("penguins.csv"), "species", true);
    let k = s.n_classes;
    let m = train_forest(
        &forest(ForestTask::Multiclass { num_class: k }, 50),
        &s.xtr,
        &s.ytr,
        None,
    )
    .unwrap();
    let acc = accuracy(&s.yte, &m.predict(&s.xte).unwrap(), k);
    // scikit-learn RandomForestClassifier (100 trees): 1.0
    assert!(acc >= 0.95, "penguins random forest accuracy {acc}");
    let et = ForestParams {
        n_estimators: 50,
        num_threads: 2,
        ..ForestParams::extra_trees(ForestTask::Multiclass { num_class: k })
    };
    let m = train_forest(&et, &s.xtr, &s.ytr, None).unwrap();
    let acc = accuracy(&s.yte, &m.predict(&s.xte).unwrap(), k);
    assert!(acc >= 0.95, "penguins extra trees accuracy {acc}");
}

#[test]
fn titanic_random_forest_reaches_sklearn_level() {
    let Some(dir) = datasets_dir() else { return };
    let s = load(&dir.join("titanic.csv"), "Survived", true);
    let m = train_forest(&forest(ForestTask::Binary, 50), &s.xtr, &s.ytr, None).unwrap();
    let a = auc(&s.yte, &m.predict(&s.xte).unwrap());
    // scikit-learn RandomForestClassifier (100 trees): 0.894
    assert!(a >= 0.85, "titanic random forest auc {a}");
}

#[test]
fn california_random_forest_reaches_sklearn_level() {
    let Some(dir) = datasets_dir() else { return };
    let s = load(
        &dir.join("california_housing.csv"),
        "median_house_value",
        false,
    );
    let m = train_forest(&forest(ForestTask::Regression, 20), &s.xtr, &s.ytr, None).unwrap();
    let pred = m.predict(&s.xte).unwrap();
    let mean = s.yte.iter().sum::<f64>() / s.yte.len() as f64;
    let tot: f64 = s.yte.iter().map(|v| (v - mean).powi(2)).sum();
    let res: f64 = s.yte.iter().zip(&pred).map(|(a, b)| (a - b).powi(2)).sum();
    let r2 = 1.0 - res / tot;
    // scikit-learn RandomForestRegressor (100 trees): 0.810; 20 trees: 0.80
    assert!(r2 >= 0.78, "california random forest r2 {r2}");
}
