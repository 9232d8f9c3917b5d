//! Unit tests pinning binning, split finding, objectives, tree building, early stopping,
//! determinism, TreeSHAP and serialisation.

use crate::binning::{BinMapper, find_bin_with_zero_as_one_bin, greedy_find_bin};
use crate::split::{SplitConfig, Sums};
use crate::train::Rng;
use crate::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn cfg() -> SplitConfig {
    SplitConfig {
        lambda_l1: 0.0,
        lambda_l2: 0.0,
        min_data_in_leaf: 1,
        min_sum_hessian: 0.0,
        min_split_gain: 0.0,
        cat_smooth: 0.0,
        cat_l2: 0.0,
        max_cat_threshold: 32,
        min_data_per_group: 1,
        max_cat_to_onehot: 4,
    }
}

fn sums(g: f64, h: f64) -> Sums {
    Sums {
        g,
        h,
        n: h as usize,
    }
}

// ---------- binning ----------

#[test]
fn bins_few_distinct_values_are_midpoints() {
    let b = greedy_find_bin(&[1.0, 2.0, 3.0], &[5, 5, 5], 255, 15, 3);
    assert_eq!(b, vec![1.5, 2.5, f64::INFINITY]);
    // min_data_in_bin merges sparse values
    let b = greedy_find_bin(&[1.0, 2.0, 3.0], &[5, 5, 5], 255, 15, 6);
    assert_eq!(b, vec![2.5, f64::INFINITY]);
}

#[test]
fn bins_many_distinct_values_are_quantiles() {
    let d: Vec<f64> = (0..100).map(|i| i as f64).collect();
    let c = vec![1usize; 100];
    let b = greedy_find_bin(&d, &c, 10, 100, 1);
    assert_eq!(b.len(), 10);
    assert_eq!(*b.last().unwrap(), f64::INFINITY);
    // each bin holds 10 values: bounds at 9.5, 19.5, ...
    for (j, &u) in b.iter().take(9).enumerate() {
        assert_eq!(u, 10.0 * (j + 1) as f64 - 0.5);
    }
}

#[test]
fn bins_zero_gets_its_own_bin() {
    let d = [-2.0, -1.0, 0.0, 1.0, 2.0];
    let c = [10, 10, 10, 10, 10];
    let b = find_bin_with_zero_as_one_bin(&d, &c, 255, 50, 3);
    assert_eq!(b, vec![-1.5, -1e-35, 1e-35, 1.5, f64::INFINITY]);
}

#[test]
fn bin_mapper_numeric_and_missing() {
    let col = Column::Numeric(vec![1.0, 2.0, 3.0, f64::NAN, 2.0, 1.0]);
    let m = BinMapper::fit(&col, 0, 255, 1).unwrap();
    // missing + (<= 0) + 3 values: zero always has a bin of its own
    assert_eq!(m.num_bin(), 5);
    let BinMapper::Numeric { upper } = &m else {
        panic!()
    };
    assert_eq!(upper, &vec![1e-35, 1.5, 2.5, f64::INFINITY]);
    assert_eq!(BinMapper::value_to_bin(upper, f64::NAN), 0);
    assert_eq!(BinMapper::value_to_bin(upper, -100.0), 1);
    assert_eq!(BinMapper::value_to_bin(upper, 0.0), 1);
    assert_eq!(BinMapper::value_to_bin(upper, 1.0), 2);
    assert_eq!(BinMapper::value_to_bin(upper, 1.5), 2);
    assert_eq!(BinMapper::value_to_bin(upper, 1.6), 3);
    assert_eq!(BinMapper::value_to_bin(upper, 100.0), 4);
    let b = m.bin_column(&col);
    let bins: Vec<u32> = (0..6).map(|r| b.get(r)).collect();
    assert_eq!(bins, vec![2, 3, 4, 0, 3, 2]);
}

#[test]
fn bin_mapper_categorical_orders_by_frequency() {
    let col = Column::Categorical {
        codes: vec![7, 3, 3, 9, 3, 7, 99, 9, 9, 9],
        missing: 99,
    };
    let m = BinMapper::fit(&col, 0, 255, 1).unwrap();
    let BinMapper::Categorical { bin_to_cat, .. } = &m else {
        panic!()
    };
    assert_eq!(bin_to_cat, &vec![9, 3, 7]);
    let b = m.bin_column(&col);
    let bins: Vec<u32> = (0..10).map(|r| b.get(r)).collect();
    assert_eq!(bins, vec![3, 2, 2, 1, 2, 3, 0, 1, 1, 1]);
    // codes too large are rejected
    let bad = Column::Categorical {
        codes: vec![MAX_CATEGORY_CODE],
        missing: 0,
    };
    assert!(matches!(
        BinMapper::fit(&bad, 4, 255, 1),
        Err(GbmError::CategoryCodeTooLarge { column: 4, .. })
    ));
}

// ---------- split finding ----------

#[test]
fn numeric_split_hand_computed() {
    // bins: missing (empty), 1:(-4,2), 2:(-2,2), 3:(6,2); G=0 H=6
    let hist = [[0.0, 0.0], [-4.0, 2.0], [-2.0, 2.0], [6.0, 2.0]];
    let s = cfg().best_numeric(&hist, sums(0.0, 6.0)).unwrap();
    // t=1: 16/2+16/4 = 12; t=2: 36/4+36/2 = 27
    assert_eq!(s.threshold_bin, 2);
    assert!(close(s.gain, 27.0, 1e-12));
    assert!(close(s.left_output, 1.5, 1e-12));
    assert!(close(s.right_output, -3.0, 1e-12));
    // no missing in training: missing goes to the bigger child
    assert!(s.default_left);
    assert_eq!(s.left.n, 4);
    assert_eq!(s.right.n, 2);
}

#[test]
fn numeric_split_missing_goes_left() {
    // missing:(-5,1) 1:(-1,1) 2:(3,1) 3:(3,1)
    let hist = [[-5.0, 1.0], [-1.0, 1.0], [3.0, 1.0], [3.0, 1.0]];
    let s = cfg().best_numeric(&hist, sums(0.0, 4.0)).unwrap();
    // missing left, t=1: L=(-6,2) R=(6,2) -> 18+18 = 36 (best missing-right: 33.3)
    assert!(s.default_left);
    assert_eq!(s.threshold_bin, 1);
    assert!(close(s.gain, 36.0, 1e-12));
}

#[test]
fn numeric_split_missing_goes_right() {
    // missing:(-5,1) 1:(3,1) 2:(3,1) 3:(-1,1)
    let hist = [[-5.0, 1.0], [3.0, 1.0], [3.0, 1.0], [-1.0, 1.0]];
    let s = cfg().best_numeric(&hist, sums(0.0, 4.0)).unwrap();
    // missing right, t=2: L=(6,2) R=(-6,2) -> 36 (best missing-left: 4)
    assert!(!s.default_left);
    assert_eq!(s.threshold_bin, 2);
    assert!(close(s.gain, 36.0, 1e-12));
}

#[test]
fn numeric_split_missing_versus_present() {
    // missing:(-6,2) 1:empty 2:(3,2) 3:(3,2) 4:empty -> best is missing alone vs the rest
    let hist = [[-6.0, 2.0], [0.0, 0.0], [3.0, 2.0], [3.0, 2.0], [0.0, 0.0]];
    let s = cfg().best_numeric(&hist, sums(0.0, 6.0)).unwrap();
    assert!(close(s.gain, 27.0, 1e-12));
    let (miss_side, other) = if s.default_left {
        (s.left, s.right)
    } else {
        (s.right, s.left)
    };
    assert_eq!(miss_side.n, 2);
    assert_eq!(other.n, 4);
    // with min_data_in_leaf 3 the missing rows cannot form a leaf alone
    let mut c = cfg();
    c.min_data_in_leaf = 3;
    let s = c.best_numeric(&hist, sums(0.0, 6.0));
    assert!(s.is_none_or(|s| s.left.n >= 3 && s.right.n >= 3));
}

#[test]
fn numeric_split_respects_constraints() {
    let hist = [[0.0, 0.0], [-4.0, 2.0], [-2.0, 2.0], [6.0, 2.0]];
    let mut c = cfg();
    c.min_data_in_leaf = 3; // only t=2 is too small on the right... none valid except none
    assert!(c.best_numeric(&hist, sums(0.0, 6.0)).is_none());
    let mut c = cfg();
    c.min_split_gain = 30.0;
    assert!(c.best_numeric(&hist, sums(0.0, 6.0)).is_none());
    let mut c = cfg();
    c.lambda_l2 = 2.0;
    let s = c.best_numeric(&hist, sums(0.0, 6.0)).unwrap();
    // t=2: 36/6 + 36/4 = 15
    assert!(close(s.gain, 15.0, 1e-12));
    assert!(close(s.right_output, -6.0 / 4.0, 1e-12));
}

#[test]
fn categorical_one_vs_rest_hand_computed() {
    // 3 categories (<= max_cat_to_onehot): {1}: 36/3 + 36/6 = 18
    let hist = [[0.0, 0.0], [-6.0, 3.0], [3.0, 3.0], [3.0, 3.0]];
    let s = cfg().best_categorical(&hist, sums(0.0, 9.0)).unwrap();
    assert_eq!(s.cat_bins, vec![1]);
    assert!(close(s.gain, 18.0, 1e-12));
    assert!(!s.default_left);
}

#[test]
fn categorical_sorted_partition_hand_computed() {
    // 6 categories ordered by g/h: 2(-3) 6(-3) 4(-1) 3(1) 1(2) 5(4); max 3 on the left
    let hist = [
        [0.0, 0.0],
        [2.0, 1.0],
        [-3.0, 1.0],
        [1.0, 1.0],
        [-1.0, 1.0],
        [4.0, 1.0],
        [-3.0, 1.0],
    ];
    let s = cfg().best_categorical(&hist, sums(0.0, 6.0)).unwrap();
    assert_eq!(s.cat_bins, vec![2, 4, 6]);
    assert!(close(s.gain, 98.0 / 3.0, 1e-12));
    assert!(close(s.left_output, 7.0 / 3.0, 1e-12));
    // cat_l2 regularises many-category splits (but not the parent gain)
    let mut c = cfg();
    c.cat_l2 = 1.0;
    let s = c.best_categorical(&hist, sums(0.0, 6.0)).unwrap();
    assert!(close(s.gain, 49.0 / 4.0 * 2.0, 1e-12));
    assert!(close(s.left_output, 7.0 / 4.0, 1e-12));
}

// ---------- objectives ----------

#[test]
fn objective_gradients() {
    let y = [5.0];
    let mut gh = [[0.0f32; 2]];
    Objective::L2.gradients(&y, None, &[2.0], &mut gh, 0..1);
    assert_eq!(gh[0], [-3.0, 1.0]);
    Objective::L2.gradients(&y, Some(&[2.0]), &[2.0], &mut gh, 0..1);
    assert_eq!(gh[0], [-6.0, 2.0]);
    Objective::L1.gradients(&y, None, &[2.0], &mut gh, 0..1);
    assert_eq!(gh[0], [-1.0, 1.0]);
    Objective::L1.gradients(&y, None, &[7.0], &mut gh, 0..1);
    assert_eq!(gh[0], [1.0, 1.0]);
    Objective::Huber { delta: 1.0 }.gradients(&y, None, &[2.0], &mut gh, 0..1);
    assert_eq!(gh[0], [-1.0, 1.0]);
    Objective::Huber { delta: 1.0 }.gradients(&y, None, &[4.5], &mut gh, 0..1);
    assert_eq!(gh[0], [-0.5, 1.0]);
    Objective::Binary.gradients(&[1.0], None, &[0.0], &mut gh, 0..1);
    assert_eq!(gh[0], [-0.5, 0.25]);
    Objective::Binary.gradients(&[0.0], None, &[2.0f64.ln()], &mut gh, 0..1);
    assert!(close(gh[0][0] as f64, 2.0 / 3.0, 1e-6));
    assert!(close(gh[0][1] as f64, 2.0 / 9.0, 1e-6));
    // multiclass: 3 classes, 1 row, output-major scores
    let mut gh3 = [[0.0f32; 2]; 3];
    Objective::Multiclass { num_class: 3 }.gradients(
        &[1.0],
        None,
        &[0.0, 0.0, 0.0],
        &mut gh3,
        0..1,
    );
    let third = 1.0 / 3.0;
    assert!(close(gh3[0][0] as f64, third, 1e-6));
    assert!(close(gh3[1][0] as f64, third - 1.0, 1e-6));
    assert!(close(gh3[2][0] as f64, third, 1e-6));
    // hessian factor k/(k-1) * p(1-p) = 1.5 * 2/9
    for e in gh3 {
        assert!(close(e[1] as f64, 1.0 / 3.0, 1e-6));
    }
}

#[test]
fn softmax_and_transforms() {
    let mut v = [1.0, 2.0, 3.0];
    softmax(&mut v);
    assert!(close(v.iter().sum::<f64>(), 1.0, 1e-12));
    assert!(close(v[2] / v[1], std::f64::consts::E, 1e-12));
    let mut big = [1000.0, 1000.0];
    softmax(&mut big);
    assert_eq!(big, [0.5, 0.5]);
    let mut b = [0.0];
    Objective::Binary.transform(&mut b);
    assert_eq!(b[0], 0.5);
}

#[test]
fn init_scores() {
    let y = [1.0, 2.0, 3.0, 10.0];
    assert_eq!(Objective::L2.init_score(&y, None), vec![4.0]);
    assert_eq!(Objective::L1.init_score(&y, None), vec![2.5]);
    assert_eq!(Objective::L1.init_score(&[1.0, 2.0, 9.0], None), vec![2.0]);
    let yb = [0.0, 1.0, 1.0, 1.0];
    assert!(close(
        Objective::Binary.init_score(&yb, None)[0],
        3.0f64.ln(),
        1e-12
    ));
    let ym = [0.0, 1.0, 1.0, 2.0];
    let s = Objective::Multiclass { num_class: 3 }.init_score(&ym, None);
    assert!(close(s[0], 0.25f64.ln(), 1e-12));
    assert!(close(s[1], 0.5f64.ln(), 1e-12));
}

// ---------- tree building and training ----------

fn params() -> GbmParams {
    GbmParams {
        num_threads: 1,
        ..Default::default()
    }
}

#[test]
fn one_split_tree_hand_computed() {
    let data = Dataset::new(vec![Column::Numeric(vec![1.0, 2.0, 3.0, 4.0])]).unwrap();
    let y = [0.0, 0.0, 10.0, 10.0];
    let p = GbmParams {
        n_estimators: 1,
        learning_rate: 1.0,
        num_leaves: 2,
        min_data_in_leaf: 1,
        min_data_in_bin: 1,
        ..params()
    };
    let m = train(&p, &data, &y, None, None).unwrap();
    assert_eq!(m.init_score, vec![5.0]);
    assert_eq!(m.trees.len(), 1);
    assert_eq!(m.trees[0].num_leaves(), 2);
    let pred = m.predict(&data).unwrap();
    assert_eq!(pred, vec![0.0, 0.0, 10.0, 10.0]);
    // threshold is the midpoint 2.5
    assert_eq!(m.predict_one(&[2.5]).unwrap(), 0.0);
    assert_eq!(m.predict_one(&[2.5000001]).unwrap(), 10.0);
    // gain = 100/2 + 100/2 - 0
    let imp = m.feature_importance(ImportanceType::Gain);
    assert!(close(imp[0], 100.0, 1e-12));
    assert_eq!(m.feature_importance(ImportanceType::Split), vec![1.0]);
}

pub(crate) fn synthetic(n: usize, seed: u64) -> (Dataset, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let mut x0 = Vec::new();
    let mut x1 = Vec::new();
    let mut c = Vec::new();
    let mut x3 = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let a = rng.next_f64() * 4.0 - 2.0;
        let b = rng.next_f64();
        let cat = rng.below(8) as u32;
        let d = rng.next_f64();
        let missing = rng.next_f64() < 0.1;
        let cat_eff = [0.0, 2.0, -1.0, 0.5, 3.0, -2.0, 1.0, 0.0][cat as usize];
        let target = a * a + if missing { 3.0 } else { b * 2.0 } + cat_eff + 0.1 * rng.next_f64();
        x0.push(a);
        x1.push(if missing { f64::NAN } else { b });
        c.push(if rng.next_f64() < 0.05 { u32::MAX } else { cat });
        x3.push(d);
        y.push(target);
    }
    let data = Dataset::new(vec![
        Column::Numeric(x0),
        Column::Numeric(x1),
        Column::Categorical {
            codes: c,
            missing: u32::MAX,
        },
        Column::Numeric(x3),
    ])
    .unwrap();
    (data, y)
}

pub(crate) fn r2(y: &[f64], p: &[f64]) -> f64 {
    let m = y.iter().sum::<f64>() / y.len() as f64;
    let tot: f64 = y.iter().map(|v| (v - m).powi(2)).sum();
    let res: f64 = y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum();
    1.0 - res / tot
}

#[test]
fn learns_regression_with_missing_and_categories() {
    let (data, y) = synthetic(4000, 1);
    let (test, yt) = synthetic(1000, 2);
    let m = train(
        &GbmParams {
            n_estimators: 200,
            ..params()
        },
        &data,
        &y,
        None,
        None,
    )
    .unwrap();
    let p = m.predict(&test).unwrap();
    assert!(r2(&yt, &p) > 0.95, "r2 {}", r2(&yt, &p));
    // missing x1 means +3: higher than b = 0
    let lo = m.predict_one(&[0.0, 0.0, 0.0, 0.5]).unwrap();
    let miss = m.predict_one(&[0.0, f64::NAN, 0.0, 0.5]).unwrap();
    assert!(miss - lo > 2.0, "{miss} vs {lo}");
    // the category matters (code 4 => +3 vs code 5 => -2)
    let c4 = m.predict_one(&[0.0, 0.5, 4.0, 0.5]).unwrap();
    let c5 = m.predict_one(&[0.0, 0.5, 5.0, 0.5]).unwrap();
    assert!(c4 - c5 > 4.0, "{c4} vs {c5}");
    // the noise feature is least important
    let imp = m.feature_importance(ImportanceType::Gain);
    assert!(
        imp[3] < imp[0] && imp[3] < imp[1] && imp[3] < imp[2],
        "{imp:?}"
    );
    // objective variants train and fit reasonably
    for obj in [Objective::L1, Objective::Huber { delta: 1.0 }] {
        let m = train(
            &GbmParams {
                objective: obj,
                n_estimators: 200,
                ..params()
            },
            &data,
            &y,
            None,
            None,
        )
        .unwrap();
        let p = m.predict(&test).unwrap();
        assert!(r2(&yt, &p) > 0.9, "{obj:?} r2 {}", r2(&yt, &p));
    }
}

#[test]
fn leaves_and_depth_limits() {
    let (data, y) = synthetic(3000, 3);
    let m = train(
        &GbmParams {
            n_estimators: 5,
            num_leaves: 7,
            ..params()
        },
        &data,
        &y,
        None,
        None,
    )
    .unwrap();
    assert!(m.trees.iter().all(|t| t.num_leaves() == 7));
    let m = train(
        &GbmParams {
            n_estimators: 5,
            max_depth: 2,
            ..params()
        },
        &data,
        &y,
        None,
        None,
    )
    .unwrap();
    assert!(
        m.trees
            .iter()
            .all(|t| t.max_depth() <= 2 && t.num_leaves() <= 4)
    );
    let m = train(
        &GbmParams {
            n_estimators: 5,
            min_data_in_leaf: 1000,
            ..params()
        },
        &data,
        &y,
        None,
        None,
    )
    .unwrap();
    for t in &m.trees {
        for l in 0..t.num_leaves() {
            let _ = t.leaf_depth(l);
        }
        assert!(t.num_leaves() <= 3);
    }
}

pub(crate) fn classification(n: usize, k: usize, seed: u64) -> (Dataset, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let mut x0 = Vec::new();
    let mut x1 = Vec::new();
    let mut c = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let a = rng.next_f64();
        let b = rng.next_f64();
        let cat = rng.below(6) as u32;
        let noise = rng.next_f64() * 0.3;
        let s = a + 0.5 * b + if cat.is_multiple_of(2) { 0.3 } else { 0.0 } + noise;
        let cls = ((s / 2.1) * k as f64).floor().min(k as f64 - 1.0);
        x0.push(if rng.next_f64() < 0.05 { f64::NAN } else { a });
        x1.push(b);
        c.push(cat);
        y.push(cls);
    }
    (
        Dataset::new(vec![
            Column::Numeric(x0),
            Column::Numeric(x1),
            Column::Categorical {
                codes: c,
                missing: 999,
            },
        ])
        .unwrap(),
        y,
    )
}

#[test]
fn binary_and_multiclass_learn() {
    let (d, y) = classification(3000, 2, 5);
    let (dt, yt) = classification(1000, 2, 6);
    let m = train(
        &GbmParams {
            objective: Objective::Binary,
            ..params()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let p = m.predict(&dt).unwrap();
    let acc = p
        .iter()
        .zip(&yt)
        .filter(|(p, y)| (**p > 0.5) == (**y > 0.5))
        .count() as f64
        / yt.len() as f64;
    assert!(acc > 0.85, "binary acc {acc}");
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));

    let (d, y) = classification(3000, 3, 7);
    let (dt, yt) = classification(1000, 3, 8);
    let m = train(
        &GbmParams {
            objective: Objective::Multiclass { num_class: 3 },
            ..params()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    assert_eq!(m.trees.len(), 300);
    let p = m.predict(&dt).unwrap();
    let mut correct = 0;
    for i in 0..yt.len() {
        let row = &p[i * 3..i * 3 + 3];
        assert!(close(row.iter().sum::<f64>(), 1.0, 1e-12));
        let am = (0..3).fold(0, |b, c| if row[c] > row[b] { c } else { b });
        if am as f64 == yt[i] {
            correct += 1;
        }
    }
    assert!(
        correct as f64 / yt.len() as f64 > 0.75,
        "multiclass acc {correct}"
    );
}

#[test]
fn early_stopping_keeps_best_iteration() {
    let (d, y) = synthetic(600, 11);
    let (dv, yv) = synthetic(300, 12);
    // an aggressive learner over-fits the small training set quickly
    let p = GbmParams {
        n_estimators: 500,
        learning_rate: 0.5,
        num_leaves: 63,
        min_data_in_leaf: 1,
        early_stopping_rounds: Some(10),
        ..params()
    };
    let valid = Validation {
        data: &dv,
        target: &yv,
        weights: None,
    };
    let m = train(&p, &d, &y, None, Some(valid)).unwrap();
    let best = m.best_iteration.unwrap();
    let h = &m.valid_history;
    assert!(h.len() < 500, "should stop early");
    assert_eq!(h.len(), best + 10);
    let argmin = (0..h.len()).fold(0, |b, i| if h[i] < h[b] { i } else { b });
    assert_eq!(best, argmin + 1);
    assert_eq!(m.trees.len(), best);
    // the kept model scores exactly the best validation loss
    let raw = m.predict_raw(&dv).unwrap();
    let loss = Objective::L2.eval(&yv, None, &raw);
    assert!(close(loss, h[argmin], 1e-9), "{loss} vs {}", h[argmin]);
    // early stopping without validation data is an error
    assert!(matches!(
        train(&p, &d, &y, None, None),
        Err(GbmError::InvalidParam { .. })
    ));
}

#[test]
fn deterministic_across_thread_counts() {
    let (d, y) = synthetic(40_000, 21); // root histograms are built in parallel
    let base = GbmParams {
        n_estimators: 15,
        bagging_fraction: 0.7,
        bagging_freq: 1,
        feature_fraction: 0.75,
        seed: 42,
        ..params()
    };
    let m1 = train(
        &GbmParams {
            num_threads: 1,
            ..base.clone()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let m2 = train(
        &GbmParams {
            num_threads: 2,
            ..base.clone()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let m1b = train(
        &GbmParams {
            num_threads: 1,
            ..base.clone()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    assert_eq!(m1.trees, m2.trees);
    assert_eq!(m1.trees, m1b.trees);
    let m3 = train(
        &GbmParams {
            num_threads: 1,
            seed: 43,
            ..base
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    assert_ne!(m1.trees, m3.trees);
    // multiclass too
    let (d, y) = classification(20_000, 3, 9);
    let p = GbmParams {
        objective: Objective::Multiclass { num_class: 3 },
        n_estimators: 5,
        ..params()
    };
    let a = train(
        &GbmParams {
            num_threads: 1,
            ..p.clone()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let b = train(
        &GbmParams {
            num_threads: 2,
            ..p
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    assert_eq!(a.trees, b.trees);
}

#[test]
fn shap_contributions_sum_to_raw_prediction() {
    let (d, y) = synthetic(2000, 31);
    let m = train(
        &GbmParams {
            n_estimators: 30,
            ..params()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let (dt, _) = synthetic(200, 32);
    let raw = m.predict_raw(&dt).unwrap();
    let contrib = m.predict_contrib(&dt).unwrap();
    let w = d.n_features() + 1;
    for i in 0..dt.n_rows() {
        let s: f64 = contrib[i * w..(i + 1) * w].iter().sum();
        assert!(close(s, raw[i], 1e-9), "row {i}: {s} vs {}", raw[i]);
    }
    // the noise feature contributes little on average
    let mean_abs = |f: usize| {
        (0..dt.n_rows())
            .map(|i| contrib[i * w + f].abs())
            .sum::<f64>()
    };
    assert!(mean_abs(3) < mean_abs(0));

    let (d, y) = classification(2000, 3, 33);
    let m = train(
        &GbmParams {
            objective: Objective::Multiclass { num_class: 3 },
            n_estimators: 20,
            ..params()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let raw = m.predict_raw(&d).unwrap();
    let contrib = m.predict_contrib(&d).unwrap();
    let w = d.n_features() + 1;
    for i in 0..100 {
        for c in 0..3 {
            let start = i * 3 * w + c * w;
            let s: f64 = contrib[start..start + w].iter().sum();
            assert!(close(s, raw[i * 3 + c], 1e-9));
        }
    }
}

#[test]
fn shap_single_split_hand_computed() {
    // one split on x: values 0 / 10, equal counts => expected 5, phi = +-5
    let data = Dataset::new(vec![
        Column::Numeric(vec![1.0, 2.0, 3.0, 4.0]),
        Column::Numeric(vec![0.0; 4]),
    ])
    .unwrap();
    let y = [0.0, 0.0, 10.0, 10.0];
    let p = GbmParams {
        n_estimators: 1,
        learning_rate: 1.0,
        num_leaves: 2,
        min_data_in_leaf: 1,
        min_data_in_bin: 1,
        ..params()
    };
    let m = train(&p, &data, &y, None, None).unwrap();
    let mut out = [0.0; 3];
    m.predict_contrib_row(&[4.0, 0.0], &mut out).unwrap();
    assert_eq!(out, [5.0, 0.0, 5.0]);
    m.predict_contrib_row(&[1.0, 0.0], &mut out).unwrap();
    assert_eq!(out, [-5.0, 0.0, 5.0]);
}

#[test]
fn serde_round_trip() {
    let (d, y) = classification(1500, 3, 41);
    let m = train(
        &GbmParams {
            objective: Objective::Multiclass { num_class: 3 },
            n_estimators: 10,
            ..params()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let s = serde_json::to_string(&m).unwrap();
    let back: GbmModel = serde_json::from_str(&s).unwrap();
    assert_eq!(m, back);
    assert_eq!(m.predict(&d).unwrap(), back.predict(&d).unwrap());
    let ps = serde_json::to_string(&m.params).unwrap();
    let pb: GbmParams = serde_json::from_str(&ps).unwrap();
    assert_eq!(pb, m.params);
    // missing fields take defaults
    let pd: GbmParams = serde_json::from_str(r#"{"num_leaves": 15}"#).unwrap();
    assert_eq!(pd.num_leaves, 15);
    assert_eq!(pd.learning_rate, 0.1);
}

#[test]
fn single_row_prediction_matches_batch_and_checks_lengths() {
    let (d, y) = synthetic(1000, 51);
    let m = train(
        &GbmParams {
            n_estimators: 20,
            ..params()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let batch = m.predict(&d).unwrap();
    let mut row = vec![0.0; 4];
    let mut out = [0.0];
    for (i, &b) in batch.iter().enumerate().take(100) {
        d.row_into(i, &mut row).unwrap();
        m.predict_row(&row, &mut out).unwrap();
        assert_eq!(out[0], b);
    }
    assert!(matches!(
        m.predict_row(&[1.0], &mut out),
        Err(GbmError::FeatureCountMismatch { .. })
    ));
    assert!(matches!(
        m.predict_row(&row, &mut [0.0, 0.0]),
        Err(GbmError::OutputLength { .. })
    ));
    // unseen category and out-of-range codes go right like missing: no panic
    assert!(m.predict_one(&[0.0, 0.5, 1e9, 0.5]).unwrap().is_finite());
    assert!(m.predict_one(&[0.0, 0.5, -3.0, 0.5]).unwrap().is_finite());
    let wrong_kind = Dataset::new(vec![Column::Numeric(vec![1.0]); 4]).unwrap();
    assert!(matches!(
        m.predict(&wrong_kind),
        Err(GbmError::FeatureKindMismatch { feature: 2, .. })
    ));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let p = params();
    let d = Dataset::new(vec![Column::Numeric(vec![1.0, 2.0, 3.0])]).unwrap();
    let empty = Dataset::new(vec![Column::Numeric(vec![])]).unwrap();
    assert_eq!(
        train(&p, &empty, &[], None, None).unwrap_err(),
        GbmError::EmptyData
    );
    assert_eq!(Dataset::new(vec![]).unwrap_err(), GbmError::NoFeatures);
    assert!(matches!(
        Dataset::new(vec![Column::Numeric(vec![1.0]), Column::Numeric(vec![])]),
        Err(GbmError::ColumnLength { column: 1, .. })
    ));
    assert!(matches!(
        train(&p, &d, &[1.0], None, None),
        Err(GbmError::TargetLength { .. })
    ));
    assert_eq!(
        train(&p, &d, &[1.0, f64::NAN, 2.0], None, None).unwrap_err(),
        GbmError::NonFiniteTarget { row: 1 }
    );
    assert!(matches!(
        train(&p, &d, &[1.0, 2.0, 3.0], Some(&[1.0]), None),
        Err(GbmError::WeightLength { .. })
    ));
    assert_eq!(
        train(&p, &d, &[1.0, 2.0, 3.0], Some(&[1.0, -1.0, 1.0]), None).unwrap_err(),
        GbmError::InvalidWeight { row: 1 }
    );
    assert_eq!(
        train(&p, &d, &[1.0, 2.0, 3.0], Some(&[0.0; 3]), None).unwrap_err(),
        GbmError::ZeroWeight
    );
    let bin = GbmParams {
        objective: Objective::Binary,
        ..params()
    };
    assert_eq!(
        train(&bin, &d, &[1.0, 1.0, 1.0], None, None).unwrap_err(),
        GbmError::SingleClass { class: 1.0 }
    );
    assert!(matches!(
        train(&bin, &d, &[0.0, 2.0, 1.0], None, None),
        Err(GbmError::InvalidBinaryLabel { row: 1, .. })
    ));
    let mc = GbmParams {
        objective: Objective::Multiclass { num_class: 3 },
        ..params()
    };
    assert!(matches!(
        train(&mc, &d, &[0.0, 1.5, 1.0], None, None),
        Err(GbmError::InvalidClassLabel { row: 1, .. })
    ));
    assert!(matches!(
        train(&mc, &d, &[0.0, 3.0, 1.0], None, None),
        Err(GbmError::InvalidClassLabel { row: 1, .. })
    ));
    assert_eq!(
        train(&mc, &d, &[2.0, 2.0, 2.0], None, None).unwrap_err(),
        GbmError::SingleClass { class: 2.0 }
    );
    for bad in [
        GbmParams {
            learning_rate: 0.0,
            ..params()
        },
        GbmParams {
            num_leaves: 1,
            ..params()
        },
        GbmParams {
            max_bin: 1,
            ..params()
        },
        GbmParams {
            bagging_fraction: 0.0,
            ..params()
        },
        GbmParams {
            feature_fraction: 1.5,
            ..params()
        },
        GbmParams {
            lambda_l2: -1.0,
            ..params()
        },
        GbmParams {
            objective: Objective::Multiclass { num_class: 1 },
            ..params()
        },
        GbmParams {
            objective: Objective::Huber { delta: 0.0 },
            ..params()
        },
    ] {
        assert!(
            matches!(
                train(&bad, &d, &[1.0, 2.0, 3.0], None, None),
                Err(GbmError::InvalidParam { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        d.select_rows(&[5]),
        Err(GbmError::RowOutOfRange { row: 5, .. })
    ));
    // tiny data trains (a single leaf) rather than failing
    let m = train(&p, &d, &[1.0, 2.0, 3.0], None, None).unwrap();
    assert_eq!(m.predict_one(&[1.0]).unwrap(), 2.0);
}

#[test]
fn weights_act_like_duplicated_rows() {
    let x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let y = vec![1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
    let w = vec![1.0, 2.0, 1.0, 1.0, 1.0, 1.0];
    let d = Dataset::new(vec![Column::Numeric(x)]).unwrap();
    let dd = Dataset::new(vec![Column::Numeric(vec![
        1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0,
    ])])
    .unwrap();
    let yd = vec![1.0, 2.0, 2.0, 3.0, 10.0, 11.0, 12.0];
    let p = GbmParams {
        n_estimators: 3,
        min_data_in_leaf: 1,
        min_data_in_bin: 1,
        num_leaves: 2,
        ..params()
    };
    let a = train(&p, &d, &y, Some(&w), None).unwrap();
    let b = train(&p, &dd, &yd, None, None).unwrap();
    for v in [1.0, 2.0, 3.5, 6.0] {
        assert!(close(
            a.predict_one(&[v]).unwrap(),
            b.predict_one(&[v]).unwrap(),
            1e-9
        ));
    }
}

#[test]
fn wide_bins_use_u16_and_learn() {
    // > 255 bins for numeric and categorical features exercises the u16 path
    let n = 6000;
    let mut rng = Rng::new(77);
    let x: Vec<f64> = (0..n).map(|_| rng.next_f64() * 10.0).collect();
    let c: Vec<u32> = (0..n).map(|_| rng.below(400) as u32).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| x[i].sin() + if c[i].is_multiple_of(3) { 1.0 } else { 0.0 })
        .collect();
    let data = Dataset::new(vec![
        Column::Numeric(x),
        Column::Categorical {
            codes: c,
            missing: u32::MAX,
        },
    ])
    .unwrap();
    let p = GbmParams {
        max_bin: 1000,
        max_cat_threshold: 200,
        min_data_per_group: 5,
        cat_smooth: 1.0,
        n_estimators: 150,
        ..params()
    };
    let m = train(&p, &data, &y, None, None).unwrap();
    let pred = m.predict(&data).unwrap();
    assert!(r2(&y, &pred) > 0.9, "r2 {}", r2(&y, &pred));
    let m8 = train(&GbmParams { max_bin: 255, ..p }, &data, &y, None, None).unwrap();
    assert_ne!(m.trees, m8.trees);
}

#[test]
fn bagging_and_feature_fraction_subsample() {
    let (d, y) = synthetic(3000, 61);
    let (dt, yt) = synthetic(1000, 62);
    let p = GbmParams {
        n_estimators: 100,
        bagging_fraction: 0.5,
        bagging_freq: 1,
        feature_fraction: 0.5,
        seed: 7,
        ..params()
    };
    let m = train(&p, &d, &y, None, None).unwrap();
    // with half the rows in each bag, the root counts are about half
    let root_counts: Vec<f64> = m
        .trees
        .iter()
        .map(|t| t.leaf_counts().iter().sum::<f64>())
        .collect();
    assert!(
        root_counts.iter().all(|&c| (1300.0..1700.0).contains(&c)),
        "{root_counts:?}"
    );
    // with half the features, each tree uses at most 2 distinct features
    for t in &m.trees {
        let mut fs: Vec<usize> = t.splits().map(|(f, _)| f).collect();
        fs.sort_unstable();
        fs.dedup();
        assert!(fs.len() <= 2, "{fs:?}");
    }
    let pred = m.predict(&dt).unwrap();
    assert!(r2(&yt, &pred) > 0.9, "r2 {}", r2(&yt, &pred));
}

#[test]
fn l1_leaves_are_refitted_to_median_residuals() {
    // one split, lr 1: each leaf value is the median residual of its rows
    let data = Dataset::new(vec![Column::Numeric(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]).unwrap();
    let y = [0.0, 1.0, 5.0, 10.0, 11.0, 30.0];
    let p = GbmParams {
        objective: Objective::L1,
        n_estimators: 1,
        learning_rate: 1.0,
        num_leaves: 2,
        min_data_in_leaf: 3,
        min_data_in_bin: 1,
        ..params()
    };
    let m = train(&p, &data, &y, None, None).unwrap();
    // init = median(y) = 7.5; left residuals -7.5,-6.5,-2.5 -> -6.5; right 2.5,3.5,22.5 -> 3.5
    assert_eq!(m.init_score, vec![7.5]);
    assert_eq!(m.predict_one(&[1.0]).unwrap(), 1.0);
    assert_eq!(m.predict_one(&[6.0]).unwrap(), 11.0);
}

#[test]
fn deterministic_with_parallel_split_finding() {
    // 80 features x 255 bins: split finding runs in parallel with 2 threads
    let mut rng = Rng::new(5);
    let n = 2500;
    let cols: Vec<Column> = (0..80)
        .map(|_| Column::Numeric((0..n).map(|_| rng.next_f64()).collect()))
        .collect();
    let d = Dataset::new(cols).unwrap();
    let Column::Numeric(x3) = &d.columns()[3] else {
        panic!()
    };
    let y: Vec<f64> = x3.iter().map(|v| v * 3.0 + rng.next_f64()).collect();
    let p = GbmParams {
        n_estimators: 5,
        ..params()
    };
    let a = train(
        &GbmParams {
            num_threads: 1,
            ..p.clone()
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    let b = train(
        &GbmParams {
            num_threads: 2,
            ..p
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    assert_eq!(a.trees, b.trees);
    assert!(a.feature_importance(ImportanceType::Gain)[3] > 0.0);
}

#[test]
fn extreme_weights_stay_finite_and_additive() {
    let (d, y) = classification(2000, 2, 71);
    let w: Vec<f64> = (0..2000)
        .map(|i| {
            if i % 97 == 0 {
                500.0
            } else if i % 5 == 0 {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let p = GbmParams {
        objective: Objective::Binary,
        min_child_weight: 0.0,
        min_data_in_leaf: 1,
        n_estimators: 30,
        ..params()
    };
    let m = train(&p, &d, &y, Some(&w), None).unwrap();
    for t in &m.trees {
        assert!(t.leaf_counts().iter().all(|&c| c >= 1.0));
    }
    let raw = m.predict_raw(&d).unwrap();
    let contrib = m.predict_contrib(&d).unwrap();
    for i in 0..200 {
        let s: f64 = contrib[i * 4..(i + 1) * 4].iter().sum();
        assert!(
            raw[i].is_finite() && close(s, raw[i], 1e-9),
            "row {i}: {s} vs {}",
            raw[i]
        );
    }
}

// ---------- training loss per iteration ----------

/// Weighted mean loss of `obj` computed directly from a model's predictions.
fn direct_loss(obj: Objective, m: &GbmModel, d: &Dataset, y: &[f64], w: Option<&[f64]>) -> f64 {
    let p = m.predict(d).unwrap();
    let k = obj.num_outputs();
    let (mut sum, mut sw) = (0.0, 0.0);
    for (i, &yi) in y.iter().enumerate() {
        let wt = w.map_or(1.0, |w| w[i]);
        let l = match obj {
            Objective::L2 => (p[i] - yi).powi(2),
            Objective::Binary => {
                let pi = p[i].clamp(1e-15, 1.0 - 1e-15);
                if yi > 0.5 { -pi.ln() } else { -(1.0 - pi).ln() }
            }
            Objective::Multiclass { .. } => -p[i * k + yi as usize].clamp(1e-15, 1.0).ln(),
            _ => unreachable!(),
        };
        sum += l * wt;
        sw += wt;
    }
    sum / sw
}

#[test]
fn training_loss_decreases_and_matches_a_direct_computation() {
    let (d, y) = classification(2000, 2, 51);
    let w: Vec<f64> = (0..y.len()).map(|i| 0.5 + (i % 3) as f64).collect();
    // weighted log losses are summed row by row, unweighted ones as a product's logarithm
    for w in [Some(&w[..]), None] {
        let base = GbmParams {
            objective: Objective::Binary,
            n_estimators: 40,
            ..params()
        };
        let off = train(&base, &d, &y, w, None).unwrap();
        let on_params = GbmParams {
            training_metric: true,
            ..base.clone()
        };
        let on = train(&on_params, &d, &y, w, None).unwrap();
        // asking for the loss changes nothing else
        assert_eq!(on.trees, off.trees);
        let h = &on.train_history;
        assert_eq!(h.len(), 40);
        assert!(h.windows(2).all(|p| p[1] < p[0]), "{h:?}");
        // iterations 1 and 7 come with the next gradients, 40 from a pass after the last
        for t in [1, 7, 40] {
            let m = train(
                &GbmParams {
                    n_estimators: t,
                    ..base.clone()
                },
                &d,
                &y,
                w,
                None,
            )
            .unwrap();
            let direct = direct_loss(Objective::Binary, &m, &d, &y, w);
            assert!(
                close(h[t - 1], direct, 1e-9),
                "{t}: {} vs {direct}",
                h[t - 1]
            );
        }
    }

    // regression with bagging: out-of-bag rows count too; multiclass
    let (d, y) = synthetic(1500, 52);
    let p = GbmParams {
        n_estimators: 25,
        bagging_fraction: 0.7,
        bagging_freq: 1,
        training_metric: true,
        seed: 5,
        ..params()
    };
    let m = train(&p, &d, &y, None, None).unwrap();
    assert_eq!(m.train_history.len(), 25);
    assert!(m.train_history[24] < 0.5 * m.train_history[0]);
    for t in [3, 25] {
        let mt = train(
            &GbmParams {
                n_estimators: t,
                ..p.clone()
            },
            &d,
            &y,
            None,
            None,
        )
        .unwrap();
        let direct = direct_loss(Objective::L2, &mt, &d, &y, None);
        assert!(close(m.train_history[t - 1], direct, 1e-9));
    }
    let (d, y) = classification(1500, 3, 53);
    let obj = Objective::Multiclass { num_class: 3 };
    let p = GbmParams {
        objective: obj,
        n_estimators: 12,
        training_metric: true,
        ..params()
    };
    let m = train(&p, &d, &y, None, None).unwrap();
    assert_eq!(m.train_history.len(), 12);
    assert!(m.train_history.windows(2).all(|p| p[1] < p[0]));
    for t in [4, 12] {
        let mt = train(
            &GbmParams {
                n_estimators: t,
                ..p.clone()
            },
            &d,
            &y,
            None,
            None,
        )
        .unwrap();
        let direct = direct_loss(obj, &mt, &d, &y, None);
        assert!(close(m.train_history[t - 1], direct, 1e-9));
    }
}

#[test]
fn training_loss_is_off_by_default_and_not_serialised() {
    let (d, y) = classification(800, 2, 54);
    let (dv, yv) = classification(300, 2, 55);
    let p = GbmParams {
        objective: Objective::Binary,
        n_estimators: 10,
        ..params()
    };
    assert!(!p.training_metric);
    let valid = Validation {
        data: &dv,
        target: &yv,
        weights: None,
    };
    let m = train(&p, &d, &y, None, Some(valid)).unwrap();
    assert!(m.train_history.is_empty());
    assert_eq!(m.valid_history.len(), 10);
    let s = serde_json::to_string(&m).unwrap();
    assert!(
        !s.contains("train_history") && !s.contains("training_metric"),
        "{s}"
    );
    // with it on, both travel (and old files without them still load)
    let on = train(
        &GbmParams {
            training_metric: true,
            ..p
        },
        &d,
        &y,
        None,
        Some(valid),
    )
    .unwrap();
    assert_eq!(on.train_history.len(), on.valid_history.len());
    let back: GbmModel = serde_json::from_str(&serde_json::to_string(&on).unwrap()).unwrap();
    assert_eq!(back, on);
    // with early stopping: one point per iteration run, beyond the kept ones
    let es = train(
        &GbmParams {
            training_metric: true,
            n_estimators: 500,
            learning_rate: 0.5,
            num_leaves: 63,
            min_data_in_leaf: 1,
            early_stopping_rounds: Some(5),
            ..params()
        },
        &d,
        &y,
        None,
        Some(valid),
    )
    .unwrap();
    assert!(es.valid_history.len() < 500);
    assert_eq!(es.train_history.len(), es.valid_history.len());
    assert_eq!(es.valid_history.len(), es.best_iteration.unwrap() + 5);
    let old: GbmModel = serde_json::from_str(&s).unwrap();
    assert_eq!(old, m);
}

#[test]
fn training_loss_does_not_depend_on_the_thread_count() {
    // above the parallel threshold, partial sums are computed on several threads
    let (d, y) = classification(20_000, 3, 56);
    let p = GbmParams {
        objective: Objective::Multiclass { num_class: 3 },
        n_estimators: 3,
        training_metric: true,
        ..params()
    };
    let one = train(&p, &d, &y, None, None).unwrap();
    let two = train(
        &GbmParams {
            num_threads: 2,
            ..p
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    assert_eq!(one.train_history, two.train_history);
    let (d, y) = synthetic(40_000, 57);
    let p = GbmParams {
        n_estimators: 3,
        training_metric: true,
        ..params()
    };
    let one = train(&p, &d, &y, None, None).unwrap();
    let two = train(
        &GbmParams {
            num_threads: 2,
            ..p
        },
        &d,
        &y,
        None,
        None,
    )
    .unwrap();
    assert_eq!(one.train_history, two.train_history);
}
