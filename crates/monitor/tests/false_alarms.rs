//! One check tests every feature at once: without a correction, a clean
//! window of the same data alarms whenever any one of a dozen p-values dips
//! under 0.05. Titanic (datasets/titanic.csv), baselined on a random 80 % and
//! checked on the other 20 % (179 rows, where the p-value tests decide) over
//! 60 seeded splits: Holm's correction keeps clean checks quiet while a
//! planted 0.5-standard-deviation shift of one feature is still found.

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

fn with_correction(b: &Baseline, correction: &str) -> Baseline {
    let mut b = b.clone();
    b.constraints
        .monitoring_config
        .distribution_constraints
        .multiple_testing = correction.into();
    b
}

/// Checks with any drift violation among `seeds` splits, under each correction;
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
        none += usize::from(drifted(&with_correction(&baseline, "none")));
        holm += usize::from(drifted(&with_correction(&baseline, "holm")));
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
    // Holm bounds the family-wise rate at the 0.05 threshold: at most 3 of 60
    assert!(holm <= 3, "Holm keeps clean checks quiet: {holm}/60");
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
