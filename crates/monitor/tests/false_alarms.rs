//! One check tests every feature at once: without a correction, a clean
//! window of the same data alarms whenever any one of a dozen p-values dips
//! under 0.05 (Evidently's and SageMaker's rule). Titanic
//! (datasets/titanic.csv), baselined on a random 80 % and checked on the
//! other 20 % (179 rows, where the p-value tests decide) over 60 seeded
//! splits: the default (Holm's correction at a family-wise 0.01) keeps clean
//! checks quiet while a planted 0.5-standard-deviation shift of one feature
//! is still found.

use std::path::PathBuf;

use monitor::{Baseline, Profiler, check};
use tabular::Table;

fn titanic() -> Table {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets/titanic.csv");
    tabular::read_path(&p).expect("datasets/titanic.csv")
}

/// A seeded 80/20 split of the rows (xorshift Fisher–Yates).
fn split(n: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        idx.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let cut = n * 4 / 5;
    (idx[..cut].to_vec(), idx[cut..].to_vec())
}

/// Each feature alone at 0.05: the rule without a correction.
fn uncorrected(b: &Baseline) -> Baseline {
    let mut b = b.clone();
    let dc = &mut b.constraints.monitoring_config.distribution_constraints;
    dc.multiple_testing = "none".into();
    dc.p_value_threshold = 0.05;
    b
}

/// Checks with any drift violation among `seeds` splits, uncorrected and with
/// the defaults;
/// `shift` moves the current window's Age by that many standard deviations.
fn alarms(t: &Table, seeds: u64, shift: f64) -> (usize, usize) {
    let age = t.column("Age").unwrap();
    let sd = {
        let v: Vec<f64> = (0..age.len()).filter_map(|i| age.f64_at(i)).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    let (mut none, mut holm) = (0, 0);
    for seed in 0..seeds {
        let (a, b) = split(t.rows(), seed);
        let train = t.take(&a);
        let mut cur = t.take(&b);
        if shift != 0.0 {
            let c = cur.column_index("Age").unwrap();
            let moved: Vec<Option<f64>> = (0..cur.rows())
                .map(|i| cur.columns[c].f64_at(i).map(|v| v + shift * sd))
                .collect();
            cur.columns[c] = tabular::Column::from_f64("Age", tabular::Kind::Numeric, moved);
        }
        let mut p = Profiler::for_table(&train, 100_000);
        p.add(&train).unwrap();
        let baseline = Baseline::suggest(&p.finish()).unwrap();
        let mut q = Profiler::for_table(&cur, 100_000).without_quantile_sketch();
        q.add(&cur).unwrap();
        let current = q.finish();
        let drifted = |b: &Baseline| !check(b, &current).unwrap().drift.drifted.is_empty();
        none += usize::from(drifted(&uncorrected(&baseline)));
        holm += usize::from(drifted(&baseline));
    }
    (none, holm)
}

#[test]
fn clean_windows_stay_quiet_and_a_planted_shift_is_found() {
    let t = titanic();
    let (none, holm) = alarms(&t, 60, 0.0);
    eprintln!("clean: {none} of 60 alarm uncorrected, {holm} with Holm");
    assert!(
        none >= 6,
        "the uncorrected rule alarms on clean data: {none}/60"
    );
    // Holm bounds the family-wise rate at the 0.01 threshold: expect 0.6 of 60
    assert!(holm <= 2, "Holm keeps clean checks quiet: {holm}/60");
    let (none, holm) = alarms(&t, 60, 0.5);
    eprintln!("shifted: {none} of 60 found uncorrected, {holm} with Holm");
    assert!(holm >= 54, "a 0.5 sd shift is still found: {holm}/60");
}

#[test]
fn holm_adjusts_as_the_textbook_does() {
    // sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → running max
    let adj = monitor::check::holm(&[0.01, 0.04, 0.03, 0.005]);
    let want = [0.03, 0.06, 0.06, 0.02];
    for (a, w) in adj.iter().zip(want) {
        assert!((a - w).abs() < 1e-12, "{adj:?}");
    }
    assert_eq!(monitor::check::holm(&[0.9, 0.8]), [1.0, 1.0]);
    assert!(monitor::check::holm(&[]).is_empty());
}

/// Clean 179-row windows whose Age (20 % missing in the data) happens to
/// miss a few more values than 95 % of the baseline's completeness allows
/// are not reported; a window that lost a third of its ages is.
#[test]
fn completeness_alarms_need_more_than_chance() {
    let t = titanic();
    let incomplete = |b: &Baseline, cur: &Table| {
        let mut q = Profiler::for_table(cur, 100_000).without_quantile_sketch();
        q.add(cur).unwrap();
        check(b, &q.finish())
            .unwrap()
            .violations
            .violations
            .iter()
            .any(|v| v.constraint_check_type == "completeness_check")
    };
    let (mut bar_only, mut default, mut lost) = (0, 0, 0);
    for seed in 0..60 {
        let (a, b) = split(t.rows(), seed);
        let train = t.take(&a);
        let cur = t.take(&b);
        let mut p = Profiler::for_table(&train, 100_000);
        p.add(&train).unwrap();
        let baseline = Baseline::suggest(&p.finish()).unwrap();
        // the bar alone: any p-value passes
        let mut loose = baseline.clone();
        loose
            .constraints
            .monitoring_config
            .distribution_constraints
            .p_value_threshold = 1.0;
        bar_only += usize::from(incomplete(&loose, &cur));
        default += usize::from(incomplete(&baseline, &cur));
        // every third present age removed
        let mut gone = cur.clone();
        let c = gone.column_index("Age").unwrap();
        let ages: Vec<Option<f64>> = (0..gone.rows())
            .map(|i| gone.columns[c].f64_at(i).filter(|_| i % 3 != 0))
            .collect();
        gone.columns[c] = tabular::Column::from_f64("Age", tabular::Kind::Numeric, ages);
        lost += usize::from(incomplete(&baseline, &gone));
    }
    eprintln!(
        "completeness: bar alone {bar_only}/60, default {default}/60, a third lost {lost}/60"
    );
    assert!(
        bar_only >= 3,
        "the bar alone alarms on clean windows: {bar_only}/60"
    );
    assert!(default <= 1, "clean windows stay quiet: {default}/60");
    assert_eq!(lost, 60, "a third of the ages lost is always reported");
}

/// A value the baseline never saw alarms only beyond what the baseline's
/// own rare values make likely (Good–Turing: as often as values seen once;
/// at least 3 in N, the rule of three, when it has none).
#[test]
fn new_categories_alarm_beyond_what_rare_values_predict() {
    let dir = std::env::temp_dir().join(format!("atelier-domain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = |name: &str, values: &[String]| {
        let p = dir.join(name);
        let mut text = String::from("country,n\n");
        for (i, v) in values.iter().enumerate() {
            text.push_str(&format!("{v},{}\n", i % 7));
        }
        std::fs::write(&p, text).unwrap();
        tabular::read_path(&p).unwrap()
    };
    let common = |n: usize| (0..n).map(|i| ["A", "B"][i % 2].to_string());
    // 1,900 common rows and 100 countries seen once each
    let rare: Vec<String> = common(1900)
        .chain((0..100).map(|i| format!("r{i}")))
        .collect();
    // the same 1,900 common rows and nothing rare
    let closed: Vec<String> = common(2000).collect();
    let baseline_of = |t: &Table| {
        let mut p = Profiler::for_table(t, 100_000);
        p.add(t).unwrap();
        Baseline::suggest(&p.finish()).unwrap()
    };
    let outside = |b: &Baseline, t: &Table| {
        let mut q = Profiler::for_table(t, 100_000).without_quantile_sketch();
        q.add(t).unwrap();
        check(b, &q.finish())
            .unwrap()
            .violations
            .violations
            .iter()
            .any(|v| v.constraint_check_type == "categorical_values_check")
    };
    let rare_b = baseline_of(&table("rare.csv", &rare));
    let closed_b = baseline_of(&table("closed.csv", &closed));
    // 500 rows, two of them countries never seen: 25 were expected
    let two_new = table(
        "two.csv",
        &common(498)
            .chain(["u1".into(), "u2".into()])
            .collect::<Vec<_>>(),
    );
    // 500 rows, a fifth of them new
    let many_new = table(
        "many.csv",
        &common(400)
            .chain((0..100).map(|i| format!("u{i}")))
            .collect::<Vec<_>>(),
    );
    let has_domain = |b: &Baseline| {
        b.constraints
            .features
            .iter()
            .any(|f| f.name == "country" && f.string_constraints.is_some())
    };
    assert!(has_domain(&rare_b) && has_domain(&closed_b));
    assert!(
        !outside(&rare_b, &two_new),
        "two new values among many rare ones are chance"
    );
    assert!(
        outside(&rare_b, &many_new),
        "a fifth of the rows new is not"
    );
    // a closed domain of 2,000 rows: two new values in 500 rows are within
    // the rule of three (0.75 expected), ten are not
    assert!(
        !outside(&closed_b, &two_new),
        "two new values are chance even here"
    );
    let ten_new = table(
        "ten.csv",
        &common(490)
            .chain((0..10).map(|i| format!("u{i}")))
            .collect::<Vec<_>>(),
    );
    assert!(
        outside(&closed_b, &ten_new),
        "ten new values in 500 rows are reported"
    );
    std::fs::remove_dir_all(&dir).ok();
}
