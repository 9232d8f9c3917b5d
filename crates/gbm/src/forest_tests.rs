//! Tests of random forests and extra trees.

use crate::forest::{ForestModel, ForestParams, ForestTask, train_forest};
use crate::split::{SplitConfig, Sums};
use crate::tests::{classification, r2, synthetic};
use crate::*;

fn small(task: ForestTask, n_estimators: usize) -> ForestParams {
    ForestParams {
        task,
        n_estimators,
        num_threads: 1,
        seed: 7,
        ..ForestParams::random_forest(task)
    }
}

fn rows(data: &Dataset) -> Vec<Vec<f64>> {
    (0..data.n_rows())
        .map(|r| {
            let mut v = vec![0.0; data.n_features()];
            data.row_into(r, &mut v).unwrap();
            v
        })
        .collect()
}

fn accuracy(y: &[f64], p: &[f64], k: usize) -> f64 {
    let ok = (0..y.len())
        .filter(|&i| {
            let r = &p[i * k..(i + 1) * k];
            (0..k).fold(0, |b, c| if r[c] > r[b] { c } else { b }) as f64 == y[i]
        })
        .count();
    ok as f64 / y.len() as f64
}

#[test]
fn forest_prediction_is_the_mean_of_its_trees() {
    let (data, y) = synthetic(600, 3);
    let m = train_forest(&small(ForestTask::Regression, 12), &data, &y, None).unwrap();
    assert_eq!(m.trees.len(), 12);
    assert_eq!(m.n_estimators(), 12);
    for row in rows(&data).iter().take(50) {
        let mean = m.trees.iter().map(|t| t.predict_row(row)).sum::<f64>() / 12.0;
        let mut out = [0.0];
        m.predict_row(row, &mut out).unwrap();
        assert!((out[0] - mean).abs() <= 1e-12 * (1.0 + mean.abs()));
    }
    // binary: the mean class-1 frequency
    let (data, y) = classification(500, 2, 4);
    let m = train_forest(&small(ForestTask::Binary, 9), &data, &y, None).unwrap();
    let batch = m.predict(&data).unwrap();
    for (i, row) in rows(&data).iter().enumerate().take(50) {
        let mean = m.trees.iter().map(|t| t.predict_row(row)).sum::<f64>() / 9.0;
        assert!((batch[i] - mean).abs() <= 1e-12);
    }
    // multiclass: per-class means of the class trees, normalised
    let k = 3;
    let (data, y) = classification(500, k, 5);
    let m = train_forest(
        &small(ForestTask::Multiclass { num_class: k }, 8),
        &data,
        &y,
        None,
    )
    .unwrap();
    assert_eq!(m.trees.len(), 8 * k);
    assert_eq!(m.trees_per_estimator(), k);
    let batch = m.predict(&data).unwrap();
    for (i, row) in rows(&data).iter().enumerate().take(50) {
        let mut means = vec![0.0; k];
        for (j, t) in m.trees.iter().enumerate() {
            means[j % k] += t.predict_row(row) / 8.0;
        }
        let s: f64 = means.iter().sum();
        for c in 0..k {
            assert!((batch[i * k + c] - means[c] / s).abs() <= 1e-12);
        }
    }
}

#[test]
fn unlimited_tree_without_bootstrap_fits_leaf_means() {
    // one tree, all features, no bootstrap: leaves are pure, so training rows are
    // reproduced exactly; duplicated x values get their mean target
    let x: Vec<f64> = (0..200).map(|i| (i / 2) as f64).collect();
    let y: Vec<f64> = (0..200).map(|i| ((i * 37) % 11) as f64).collect();
    let data = Dataset::new(vec![Column::Numeric(x)]).unwrap();
    let p = ForestParams {
        n_estimators: 1,
        bootstrap: false,
        min_data_in_bin: 1,
        ..small(ForestTask::Regression, 1)
    };
    let m = train_forest(&p, &data, &y, None).unwrap();
    assert_eq!(m.trees[0].num_leaves(), 100);
    for i in 0..100 {
        let mean = (y[2 * i] + y[2 * i + 1]) / 2.0;
        let v = m.predict_one(&[i as f64]).unwrap();
        assert!((v - mean).abs() < 1e-5, "row {i}: {v} vs {mean}");
    }
}

#[test]
fn probabilities_are_in_unit_interval_and_sum_to_one() {
    for (k, et) in [(2, false), (3, false), (4, true)] {
        let (data, y) = classification(400, k, 11);
        let task = if k == 2 {
            ForestTask::Binary
        } else {
            ForestTask::Multiclass { num_class: k }
        };
        let p = ForestParams {
            extra_trees: et,
            bootstrap: !et,
            ..small(task, 6)
        };
        let m = train_forest(&p, &data, &y, None).unwrap();
        let no = m.n_outputs();
        assert_eq!(no, if k == 2 { 1 } else { k });
        let mut out = vec![0.0; no];
        let mut check = |row: &[f64]| {
            m.predict_row(row, &mut out).unwrap();
            assert!(out.iter().all(|p| (0.0..=1.0).contains(p)), "{out:?}");
            if no > 1 {
                assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        };
        for row in rows(&data) {
            check(&row);
        }
        // missing, unseen and absurd category codes, extreme numbers
        for row in [
            [f64::NAN, f64::NAN, f64::NAN],
            [1e300, -1e300, 1e9],
            [0.5, 0.5, -3.0],
            [f64::INFINITY, f64::NEG_INFINITY, 57.0],
        ] {
            check(&row);
        }
    }
}

#[test]
fn forests_learn_with_missing_values_and_categories() {
    let (data, y) = synthetic(1500, 1);
    let (test, yt) = synthetic(500, 2);
    for p in [
        small(ForestTask::Regression, 30),
        ForestParams {
            n_estimators: 30,
            num_threads: 1,
            ..ForestParams::extra_trees(ForestTask::Regression)
        },
    ] {
        let m = train_forest(&p, &data, &y, None).unwrap();
        let s = r2(&yt, &m.predict(&test).unwrap());
        assert!(s > 0.85, "r2 {s} (extra_trees={})", p.extra_trees);
        // the informative features carry the importance, the noise feature x3 little
        let imp = m.feature_importance(ImportanceType::Gain);
        assert!(
            imp[0] > imp[3] && imp[1] > imp[3] && imp[2] > imp[3],
            "{imp:?}"
        );
        let splits = m.feature_importance(ImportanceType::Split);
        assert!(splits.iter().all(|&s| s > 0.0));
    }
    let k = 3;
    let (data, y) = classification(1500, k, 1);
    let (test, yt) = classification(500, k, 2);
    let m = train_forest(
        &small(ForestTask::Multiclass { num_class: k }, 30),
        &data,
        &y,
        None,
    )
    .unwrap();
    let acc = accuracy(&yt, &m.predict(&test).unwrap(), k);
    assert!(acc > 0.75, "accuracy {acc}");
}

#[test]
fn forest_is_deterministic_across_thread_counts() {
    let (data, y) = classification(3000, 3, 21);
    let (rdata, ry) = synthetic(3000, 22);
    for et in [false, true] {
        let mk = |task, threads| ForestParams {
            num_threads: threads,
            extra_trees: et,
            bootstrap: !et,
            max_features: Some(0.5),
            ..small(task, 7)
        };
        let task = ForestTask::Multiclass { num_class: 3 };
        let a = train_forest(&mk(task, 1), &data, &y, None).unwrap();
        let b = train_forest(&mk(task, 2), &data, &y, None).unwrap();
        assert!(a.trees == b.trees, "multiclass, extra_trees={et}");
        let a = train_forest(&mk(ForestTask::Regression, 1), &rdata, &ry, None).unwrap();
        let b = train_forest(&mk(ForestTask::Regression, 2), &rdata, &ry, None).unwrap();
        assert!(a.trees == b.trees, "regression, extra_trees={et}");
        // same seed again: same model; another seed: another model
        let c = train_forest(&mk(ForestTask::Regression, 1), &rdata, &ry, None).unwrap();
        assert!(a == c);
        let other = ForestParams {
            seed: 8,
            ..mk(ForestTask::Regression, 1)
        };
        let d = train_forest(&other, &rdata, &ry, None).unwrap();
        assert!(a.trees != d.trees);
    }
}

#[test]
fn extra_trees_differ_from_random_forest() {
    let (data, y) = synthetic(800, 5);
    let rf = train_forest(&small(ForestTask::Regression, 5), &data, &y, None).unwrap();
    let et_params = ForestParams {
        n_estimators: 5,
        num_threads: 1,
        seed: 7,
        ..ForestParams::extra_trees(ForestTask::Regression)
    };
    let et = train_forest(&et_params, &data, &y, None).unwrap();
    assert_ne!(rf.trees, et.trees);
    // without bootstrap every tree sees all rows; its root split differs between trees
    // only through the random thresholds
    let total: f64 = et.trees[0].leaf_counts().iter().sum();
    assert_eq!(total, 800.0);
    assert_ne!(et.trees[0], et.trees[1]);
    // random forest without bootstrap and with all features: every tree is the same
    let p = ForestParams {
        bootstrap: false,
        max_features: Some(1.0),
        ..small(ForestTask::Regression, 3)
    };
    let m = train_forest(&p, &data, &y, None).unwrap();
    assert_eq!(m.trees[0], m.trees[1]);
    // extra trees' thresholds are not the best ones: deeper trees for the same fit
    let depth = |m: &ForestModel| m.trees.iter().map(|t| t.max_depth()).sum::<usize>();
    assert!(
        depth(&et) > depth(&m) * 5 / 3 / 3,
        "{} {}",
        depth(&et),
        depth(&m)
    );
}

#[test]
fn features_are_sampled_per_split() {
    // x0 determines y; nine noise features. With one feature per split a single tree
    // still uses many features (they are drawn at every node, not once per tree).
    let n = 1000;
    let mut rng = crate::train::Rng::new(3);
    let mut cols = Vec::new();
    for _ in 0..10 {
        cols.push((0..n).map(|_| rng.next_f64()).collect::<Vec<f64>>());
    }
    let y: Vec<f64> = cols[0].iter().map(|v| (v * 4.0).floor()).collect();
    let data = Dataset::new(cols.into_iter().map(Column::Numeric).collect()).unwrap();
    let p = ForestParams {
        max_features: Some(0.1),
        ..small(ForestTask::Regression, 1)
    };
    assert_eq!(p.features_per_split(10), 1);
    assert_eq!(
        ForestParams::random_forest(ForestTask::Binary).features_per_split(10),
        3
    );
    assert_eq!(
        ForestParams::random_forest(ForestTask::Binary).features_per_split(9),
        3
    );
    let m = train_forest(&p, &data, &y, None).unwrap();
    let used: std::collections::BTreeSet<usize> = m.trees[0].splits().map(|(f, _)| f).collect();
    assert!(used.len() >= 5, "{used:?}");
}

#[test]
fn leaf_and_depth_limits_and_growth_order() {
    let (data, y) = synthetic(1000, 9);
    let p = ForestParams {
        num_leaves: 16,
        ..small(ForestTask::Regression, 4)
    };
    let m = train_forest(&p, &data, &y, None).unwrap();
    assert!(m.trees.iter().all(|t| t.num_leaves() == 16));
    let p = ForestParams {
        max_depth: 3,
        ..small(ForestTask::Regression, 4)
    };
    let m = train_forest(&p, &data, &y, None).unwrap();
    assert!(
        m.trees
            .iter()
            .all(|t| t.max_depth() <= 3 && t.num_leaves() <= 8)
    );
    let p = ForestParams {
        min_data_in_leaf: 25,
        bootstrap: false,
        ..small(ForestTask::Regression, 2)
    };
    let m = train_forest(&p, &data, &y, None).unwrap();
    assert!(
        m.trees
            .iter()
            .all(|t| t.leaf_counts().iter().all(|&c| c >= 25.0))
    );
    // a leaf limit that cannot bind (best-first growth) gives the same trees, up to leaf
    // numbering, as unlimited depth-first growth: node randomness is seeded by the path
    for et in [false, true] {
        let a = ForestParams {
            extra_trees: et,
            ..small(ForestTask::Regression, 3)
        };
        let b = ForestParams {
            num_leaves: 5000,
            ..a.clone()
        };
        let ma = train_forest(&a, &data, &y, None).unwrap();
        let mb = train_forest(&b, &data, &y, None).unwrap();
        assert_eq!(ma.predict(&data).unwrap(), mb.predict(&data).unwrap());
        for (ta, tb) in ma.trees.iter().zip(&mb.trees) {
            assert_eq!(ta.num_leaves(), tb.num_leaves());
        }
    }
}

#[test]
fn forest_serde_round_trip_is_exact() {
    let (data, y) = synthetic(500, 13);
    // missing values in training put +inf thresholds (present vs missing) into trees
    let m = train_forest(&small(ForestTask::Regression, 5), &data, &y, None).unwrap();
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains("\"inf\""));
    let back: ForestModel = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.predict(&data).unwrap(), m.predict(&data).unwrap());
    let (data, y) = classification(300, 3, 14);
    let p = ForestParams {
        max_features: Some(0.7),
        ..ForestParams::extra_trees(ForestTask::Multiclass { num_class: 3 })
    };
    let m = train_forest(
        &ForestParams {
            n_estimators: 4,
            num_threads: 1,
            ..p
        },
        &data,
        &y,
        None,
    )
    .unwrap();
    let back: ForestModel = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
    // parameters deserialise with missing fields defaulted
    let p: ForestParams = serde_json::from_str(r#"{"n_estimators": 10}"#).unwrap();
    assert_eq!(p.n_estimators, 10);
    assert!(p.bootstrap && !p.extra_trees);
}

#[test]
fn weights_act_like_duplicated_rows() {
    // without bootstrap and with all features, weight 2 equals a duplicated row
    let (data, y) = synthetic(300, 15);
    let w: Vec<f64> = (0..300)
        .map(|i| if i % 3 == 0 { 2.0 } else { 1.0 })
        .collect();
    let dup_rows: Vec<usize> = (0..300)
        .flat_map(|i| if i % 3 == 0 { vec![i, i] } else { vec![i] })
        .collect();
    let dup = data.select_rows(&dup_rows).unwrap();
    let ydup: Vec<f64> = dup_rows.iter().map(|&i| y[i]).collect();
    let p = ForestParams {
        bootstrap: false,
        max_features: Some(1.0),
        max_bin: 1000,
        min_data_in_bin: 1,
        ..small(ForestTask::Regression, 1)
    };
    let a = train_forest(&p, &data, &y, Some(&w)).unwrap();
    let b = train_forest(&p, &dup, &ydup, None).unwrap();
    let (pa, pb) = (a.predict(&data).unwrap(), b.predict(&data).unwrap());
    for (u, v) in pa.iter().zip(&pb) {
        assert!((u - v).abs() < 1e-4, "{u} vs {v}");
    }
}

#[test]
fn forest_errors_are_typed() {
    let (data, y) = synthetic(100, 1);
    let bad = |p: ForestParams| matches!(p.validate(), Err(GbmError::InvalidParam { .. }));
    let d = ForestParams::default();
    assert!(bad(ForestParams {
        n_estimators: 0,
        ..d.clone()
    }));
    assert!(bad(ForestParams {
        max_features: Some(0.0),
        ..d.clone()
    }));
    assert!(bad(ForestParams {
        max_features: Some(f64::NAN),
        ..d.clone()
    }));
    assert!(bad(ForestParams {
        num_leaves: 1,
        ..d.clone()
    }));
    assert!(bad(ForestParams {
        max_bin: 1,
        ..d.clone()
    }));
    assert!(
        train_forest(
            &ForestParams {
                task: ForestTask::Multiclass { num_class: 1 },
                ..d.clone()
            },
            &data,
            &y,
            None
        )
        .is_err()
    );
    let p = small(ForestTask::Regression, 2);
    assert_eq!(
        train_forest(&p, &data, &y[..5], None).unwrap_err(),
        GbmError::TargetLength {
            expected: 100,
            got: 5
        }
    );
    let mut ynan = y.clone();
    ynan[3] = f64::NAN;
    assert_eq!(
        train_forest(&p, &data, &ynan, None).unwrap_err(),
        GbmError::NonFiniteTarget { row: 3 }
    );
    let bin = small(ForestTask::Binary, 2);
    assert!(matches!(
        train_forest(&bin, &data, &y, None),
        Err(GbmError::InvalidBinaryLabel { .. })
    ));
    assert!(matches!(
        train_forest(&bin, &data, &vec![1.0; 100], None),
        Err(GbmError::SingleClass { .. })
    ));
    assert!(matches!(
        train_forest(&p, &data, &y, Some(&[-1.0; 100])),
        Err(GbmError::InvalidWeight { row: 0 })
    ));
    let m = train_forest(&p, &data, &y, None).unwrap();
    let mut out = [0.0; 2];
    assert!(matches!(
        m.predict_row(&[0.0; 4], &mut out),
        Err(GbmError::OutputLength { .. })
    ));
    assert!(matches!(
        m.predict_row(&[0.0; 3], &mut out[..1]),
        Err(GbmError::FeatureCountMismatch { .. })
    ));
    let other = Dataset::new(vec![Column::Numeric(vec![0.0; 3])]).unwrap();
    assert!(matches!(
        m.predict(&other),
        Err(GbmError::FeatureCountMismatch { .. })
    ));
}

fn cfg() -> SplitConfig {
    SplitConfig {
        lambda_l1: 0.0,
        lambda_l2: 0.0,
        min_data_in_leaf: 1,
        min_sum_hessian: 1e-300,
        min_split_gain: 0.0,
        cat_smooth: 1e-9,
        cat_l2: 0.0,
        max_cat_threshold: 1 << 20,
        min_data_per_group: 0,
        max_cat_to_onehot: 0,
    }
}

#[test]
fn random_numeric_threshold_lies_between_node_min_and_max() {
    // bins 0 (missing) .. 9; rows only in bins 3, 5 and 7
    let mut hist = vec![[0.0; 2]; 10];
    hist[3] = [-3.0, 3.0];
    hist[5] = [0.0, 2.0];
    hist[7] = [2.0, 2.0];
    let total = Sums {
        g: -1.0,
        h: 7.0,
        n: 7,
    };
    let mut seen = std::collections::BTreeSet::new();
    for draw in 0..64u64 {
        let s = cfg().random_numeric(&hist, total, draw).unwrap();
        assert!((3..7).contains(&s.threshold_bin), "{}", s.threshold_bin);
        // no missing values: the bigger side gets future missing values
        assert_eq!(s.default_left, s.left.n >= s.right.n);
        assert!(s.gain > 0.0);
        seen.insert(s.threshold_bin);
    }
    assert_eq!(seen.len(), 4);
    // with missing values, the better direction is kept: missing rows look like bin 3
    hist[0] = [-2.0, 2.0];
    let total = Sums {
        g: -3.0,
        h: 9.0,
        n: 9,
    };
    let s = cfg().random_numeric(&hist, total, 0).unwrap();
    assert_eq!(s.threshold_bin, 3);
    assert!(s.default_left);
    assert_eq!(s.left.n, 5);
    // one present bin plus missing: present vs missing
    let mut h2 = vec![[0.0; 2]; 10];
    h2[0] = [-2.0, 2.0];
    h2[4] = [1.0, 1.0];
    let s = cfg()
        .random_numeric(
            &h2,
            Sums {
                g: -1.0,
                h: 3.0,
                n: 3,
            },
            99,
        )
        .unwrap();
    assert_eq!((s.threshold_bin, s.default_left), (4, false));
    // constant in the node: no split
    let mut h3 = vec![[0.0; 2]; 10];
    h3[4] = [1.0, 3.0];
    assert!(
        cfg()
            .random_numeric(
                &h3,
                Sums {
                    g: 1.0,
                    h: 3.0,
                    n: 3
                },
                5
            )
            .is_none()
    );
}

#[test]
fn random_categorical_picks_a_proper_subset_of_present_categories() {
    let mut hist = vec![[0.0; 2]; 8];
    hist[1] = [-2.0, 2.0];
    hist[2] = [0.0, 3.0];
    hist[5] = [-1.0, 1.0];
    hist[6] = [-4.0, 4.0];
    let total = Sums {
        g: -7.0,
        h: 10.0,
        n: 10,
    };
    let mut seen = std::collections::BTreeSet::new();
    for draw in 0..200u64 {
        if let Some(s) = cfg().random_categorical(&hist, total, draw) {
            assert!(!s.cat_bins.is_empty() && s.cat_bins.len() < 4);
            assert!(s.cat_bins.iter().all(|b| [1, 2, 5, 6].contains(b)));
            assert!(s.cat_bins.windows(2).all(|w| w[0] < w[1]));
            seen.insert(s.cat_bins.clone());
        }
    }
    // 14 non-empty proper subsets; those with zero gain are rejected
    assert!(seen.len() >= 10, "{}", seen.len());
    // one category and missing values: category vs missing
    let mut h2 = vec![[0.0; 2]; 8];
    h2[0] = [0.0, 2.0];
    h2[3] = [-2.0, 2.0];
    let s = cfg()
        .random_categorical(
            &h2,
            Sums {
                g: -2.0,
                h: 4.0,
                n: 4,
            },
            1,
        )
        .unwrap();
    assert_eq!(s.cat_bins, vec![3]);
}

/// A tree's structure read back from its serialised form (the brute force below must
/// not share code with the TreeSHAP it checks).
struct Arrays {
    feature: Vec<usize>,
    left: Vec<i32>,
    right: Vec<i32>,
    internal_count: Vec<f64>,
    leaf_count: Vec<f64>,
    leaf_value: Vec<f64>,
}

fn arrays(t: &Tree) -> Arrays {
    let v = serde_json::to_value(t).unwrap();
    let floats = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().expect("finite"))
            .collect()
    };
    let ints = |k: &str| -> Vec<i64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    Arrays {
        feature: ints("split_feature").iter().map(|&f| f as usize).collect(),
        left: ints("left_child").iter().map(|&c| c as i32).collect(),
        right: ints("right_child").iter().map(|&c| c as i32).collect(),
        internal_count: floats("internal_count"),
        leaf_count: floats("leaf_count"),
        leaf_value: floats("leaf_value"),
    }
}

/// The tree's path-dependent value of coalition `s`: features in `s` follow `x`, the
/// others average their children weighted by training cover.
fn coalition_value(t: &Tree, a: &Arrays, node: i32, x: &[f64], s: &[bool]) -> f64 {
    if node < 0 {
        return a.leaf_value[!node as usize];
    }
    let n = node as usize;
    let f = a.feature[n];
    if s[f] {
        return coalition_value(t, a, t.next(n, x[f]), x, s);
    }
    let cover = |c: i32| {
        if c >= 0 {
            a.internal_count[c as usize]
        } else {
            a.leaf_count[!c as usize]
        }
    };
    (cover(a.left[n]) * coalition_value(t, a, a.left[n], x, s)
        + cover(a.right[n]) * coalition_value(t, a, a.right[n], x, s))
        / a.internal_count[n]
}

/// Shapley values of one tree by enumerating every coalition (2^nf of them), then the
/// value of the empty coalition.
fn brute_force_shapley(t: &Tree, x: &[f64], nf: usize) -> Vec<f64> {
    let a = arrays(t);
    let root = if t.num_leaves() == 1 { -1 } else { 0 };
    let v = |mask: usize| {
        let s: Vec<bool> = (0..nf).map(|f| mask >> f & 1 == 1).collect();
        coalition_value(t, &a, root, x, &s)
    };
    let fact = |n: usize| (1..=n).map(|i| i as f64).product::<f64>();
    let mut phi = vec![0.0; nf + 1];
    for (i, p) in phi.iter_mut().enumerate().take(nf) {
        for mask in 0..1usize << nf {
            if mask >> i & 1 == 1 {
                continue;
            }
            let size = mask.count_ones() as usize;
            let weight = fact(size) * fact(nf - size - 1) / fact(nf);
            *p += weight * (v(mask | 1 << i) - v(mask));
        }
    }
    phi[nf] = v(0);
    phi
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[test]
fn forest_tree_shap_equals_brute_force_shapley_values() {
    // 4 features: numeric, numeric with missing values, categorical with a missing code,
    // numeric noise; small trees so the enumeration stays readable
    let (data, y) = synthetic(400, 21);
    let nf = data.n_features();
    let all = rows(&data);
    let mut picked: Vec<&Vec<f64>> = all.iter().take(12).collect();
    // rows with a missing numeric value and with a missing category go down the
    // default direction / the "not in the set" side
    picked.extend(all.iter().filter(|r| r[1].is_nan()).take(2));
    picked.extend(all.iter().filter(|r| r[2].is_nan()).take(2));
    assert_eq!(picked.len(), 16);
    for extra in [false, true] {
        let p = ForestParams {
            num_leaves: 10,
            max_features: Some(1.0),
            extra_trees: extra,
            bootstrap: !extra,
            ..small(ForestTask::Regression, 5)
        };
        let m = train_forest(&p, &data, &y, None).unwrap();
        assert!(m.trees.iter().all(|t| t.num_leaves() > 4));
        let mut out = vec![0.0; nf + 1];
        for x in &picked {
            let mut want = vec![0.0; nf + 1];
            for t in &m.trees {
                for (w, b) in want.iter_mut().zip(brute_force_shapley(t, x, nf)) {
                    *w += b / m.trees.len() as f64;
                }
            }
            m.predict_contrib_row(x, &mut out).unwrap();
            assert!(
                close(&out, &want, 1e-9),
                "extra={extra} {x:?}: {out:?} vs {want:?}"
            );
        }
    }
    // multiclass: with m_c a class's summed tree frequencies, S their total and
    // b_c = E[m_c] / E[S], contribution j is (φ_j(m_c) − b_c·φ_j(S)) / S(x), base b_c,
    // each φ by brute force
    let k = 3;
    let (data, y) = classification(300, k, 8);
    let nf = data.n_features();
    let p = ForestParams {
        num_leaves: 8,
        ..small(ForestTask::Multiclass { num_class: k }, 4)
    };
    let m = train_forest(&p, &data, &y, None).unwrap();
    let w = nf + 1;
    let mut out = vec![0.0; k * w];
    let mut totals = Vec::new();
    for x in rows(&data).iter().take(10) {
        let mut class = vec![0.0; k * w];
        let mut total = 0.0;
        for (i, t) in m.trees.iter().enumerate() {
            let c = i % k;
            for (o, b) in class[c * w..(c + 1) * w]
                .iter_mut()
                .zip(brute_force_shapley(t, x, nf))
            {
                *o += b;
            }
            total += t.predict_row(x);
        }
        totals.push(total);
        let expected: f64 = (0..k).map(|c| class[c * w + nf]).sum();
        let mut want = vec![0.0; k * w];
        for c in 0..k {
            let b = class[c * w + nf] / expected;
            for j in 0..nf {
                let phi_s: f64 = (0..k).map(|c2| class[c2 * w + j]).sum();
                want[c * w + j] = (class[c * w + j] - b * phi_s) / total;
            }
            want[c * w + nf] = b;
        }
        m.predict_contrib_row(x, &mut out).unwrap();
        assert!(close(&out, &want, 1e-9), "{x:?}: {out:?} vs {want:?}");
        // the base is the same for every row; a feature's values cancel over classes
        for j in 0..nf {
            let s: f64 = (0..k).map(|c| out[c * w + j]).sum();
            assert!(s.abs() < 1e-12, "feature {j}: {s}");
        }
    }
    // the class trees' totals really do vary by row, so the normalisation matters
    let (lo, hi) = totals
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &t| (a.min(t), b.max(t)));
    assert!(hi - lo > 0.01, "{totals:?}");
}

#[test]
fn forest_contributions_add_up_to_predictions_for_every_task() {
    let cases: Vec<(ForestParams, Dataset, Vec<f64>)> = {
        let (d1, y1) = synthetic(500, 4);
        let (d2, y2) = classification(500, 2, 6);
        let (d3, y3) = classification(500, 4, 9);
        vec![
            (small(ForestTask::Regression, 20), d1.clone(), y1.clone()),
            (
                ForestParams {
                    num_threads: 1,
                    ..ForestParams::extra_trees(ForestTask::Regression)
                },
                d1,
                y1,
            ),
            (small(ForestTask::Binary, 20), d2, y2),
            (small(ForestTask::Multiclass { num_class: 4 }, 15), d3, y3),
        ]
    };
    for (p, data, y) in cases {
        let m = train_forest(&p, &data, &y, None).unwrap();
        let k = m.n_outputs();
        let w = data.n_features() + 1;
        let pred = m.predict(&data).unwrap();
        let contrib = m.predict_contrib(&data).unwrap();
        assert_eq!(contrib.len(), data.n_rows() * k * w);
        let all = rows(&data);
        let mut one = vec![0.0; k * w];
        for i in 0..data.n_rows() {
            for c in 0..k {
                let s: f64 = contrib[(i * k + c) * w..(i * k + c + 1) * w].iter().sum();
                assert!(
                    (s - pred[i * k + c]).abs() < 1e-9,
                    "{:?} row {i} output {c}: {s} vs {}",
                    p.task,
                    pred[i * k + c]
                );
            }
            if i % 50 == 0 {
                m.predict_contrib_row(&all[i], &mut one).unwrap();
                assert_eq!(one, contrib[i * k * w..(i + 1) * k * w], "row = batch");
            }
        }
        // one base value per output for every row
        for c in 0..k {
            let base = contrib[c * w + w - 1];
            assert!(
                (0..data.n_rows()).all(|i| contrib[(i * k + c) * w + w - 1] == base),
                "{:?}",
                p.task
            );
        }
        if k == 1 {
            // the mean of the trees' expected values
            let base = contrib[w - 1];
            let want =
                m.trees.iter().map(|t| t.expected_value()).sum::<f64>() / m.trees.len() as f64;
            assert!((base - want).abs() < 1e-12);
            assert!((0..data.n_rows()).all(|i| contrib[i * w + w - 1] == base));
        }
        // the signal's features carry most of the attribution, on average
        let mean_abs = |f: usize| {
            (0..data.n_rows())
                .map(|i| contrib[i * k * w + f].abs())
                .sum::<f64>()
        };
        assert!(mean_abs(0) > mean_abs(w - 2), "{:?}", p.task);
    }
}

#[test]
fn forest_contributions_are_checked_and_thread_independent() {
    let (data, y) = classification(300, 2, 3);
    let m = train_forest(&small(ForestTask::Binary, 10), &data, &y, None).unwrap();
    let mut out = vec![0.0; 3];
    assert!(matches!(
        m.predict_contrib_row(&[0.5, 0.5, 1.0], &mut out),
        Err(GbmError::OutputLength { expected: 4, .. })
    ));
    let mut out = vec![0.0; 4];
    assert!(matches!(
        m.predict_contrib_row(&[0.5], &mut out),
        Err(GbmError::FeatureCountMismatch { .. })
    ));
    let wrong = Dataset::new(vec![Column::Numeric(vec![1.0])]).unwrap();
    assert!(m.predict_contrib(&wrong).is_err());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| m.predict_contrib(&data).unwrap());
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(|| m.predict_contrib(&data).unwrap());
    assert_eq!(one, two);
}
