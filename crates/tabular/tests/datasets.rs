//! Every dataset of the repository's `datasets/` loads with the right kinds; Parquet round-trips;
//! profiles merge.

use std::path::PathBuf;

use tabular::{Kind, Profile, read_path};

fn dataset(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets")
        .join(name);
    assert!(
        p.exists(),
        "dataset {} is missing (the repository's datasets/ folder)",
        p.display()
    );
    p
}

fn kinds(name: &str) -> Vec<(String, Kind, usize)> {
    let t = read_path(&dataset(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(t.warnings.is_empty(), "{name}: {:?}", t.warnings);
    t.columns
        .iter()
        .map(|c| (c.name.clone(), c.kind, c.missing()))
        .collect()
}

fn kind_of(ks: &[(String, Kind, usize)], col: &str) -> (Kind, usize) {
    ks.iter()
        .find(|k| k.0 == col)
        .map(|k| (k.1, k.2))
        .unwrap_or_else(|| panic!("no column {col}"))
}

#[test]
fn every_dataset_loads_with_the_right_kinds() {
    let t = kinds("titanic.csv");
    assert_eq!(kind_of(&t, "PassengerId").0, Kind::IdLike);
    assert_eq!(kind_of(&t, "Name").0, Kind::Text);
    assert_eq!(kind_of(&t, "Survived").0, Kind::Numeric);
    assert_eq!(kind_of(&t, "Sex").0, Kind::Categorical);
    assert_eq!(kind_of(&t, "Age"), (Kind::Numeric, 177));
    assert_eq!(kind_of(&t, "Cabin").1, 687);
    assert_eq!(kind_of(&t, "Embarked"), (Kind::Categorical, 2));

    let a = kinds("adult.csv");
    assert_eq!(kind_of(&a, "workclass"), (Kind::Categorical, 1836));
    assert_eq!(kind_of(&a, "occupation"), (Kind::Categorical, 1843));
    assert_eq!(kind_of(&a, "native_country"), (Kind::Categorical, 583));
    assert_eq!(kind_of(&a, "age").0, Kind::Numeric);
    assert_eq!(kind_of(&a, "income").0, Kind::Categorical);

    let b = kinds("bank_marketing.csv");
    assert_eq!(
        kind_of(&b, "y").0,
        Kind::Categorical,
        "yes/no keeps its labels"
    );
    assert_eq!(kind_of(&b, "job").0, Kind::Categorical);
    assert_eq!(kind_of(&b, "balance").0, Kind::Numeric);

    let c = kinds("california_housing.csv");
    assert_eq!(kind_of(&c, "total_bedrooms"), (Kind::Numeric, 207));
    assert_eq!(kind_of(&c, "ocean_proximity").0, Kind::Categorical);

    let d = kinds("diamonds.csv");
    assert_eq!(kind_of(&d, "cut").0, Kind::Categorical);
    assert_eq!(kind_of(&d, "price").0, Kind::Numeric);

    let p = kinds("penguins.csv");
    assert_eq!(kind_of(&p, "species").0, Kind::Categorical);
    assert_eq!(kind_of(&p, "sex"), (Kind::Categorical, 11));
    assert_eq!(p.iter().map(|k| k.2).sum::<usize>(), 19);

    let w = kinds("wine_quality.csv");
    assert_eq!(kind_of(&w, "type").0, Kind::Categorical);
    assert_eq!(kind_of(&w, "quality").0, Kind::Numeric);
    assert_eq!(w.len(), 13);
}

#[test]
fn the_split_matches_the_readme() {
    for (name, target, classification, n_test) in [
        ("penguins.csv", "species", true, 70),
        ("titanic.csv", "Survived", true, 179),
        ("california_housing.csv", "median_house_value", false, 4128),
    ] {
        let t = read_path(&dataset(name)).unwrap();
        let col = t.column(target).unwrap();
        let labels: Vec<String> = (0..t.rows())
            .map(|i| col.str_at(i).unwrap_or_default())
            .collect();
        let (train, test) =
            tabular::split::train_test(t.rows(), classification.then_some(&labels[..]));
        assert_eq!(test.len(), n_test, "{name}");
        assert_eq!(train.len() + test.len(), t.rows());
        let first: Vec<usize> = test.iter().take(4).copied().collect();
        assert_eq!(&first[..3], &[3, 10, 18], "{name}");
    }
}

#[test]
fn parquet_round_trips_kinds_and_values() {
    let t = read_path(&dataset("titanic.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("titanic.parquet");
    tabular::write_parquet(&t, &pq).unwrap();
    let back = read_path(&pq).unwrap();
    assert_eq!(back.rows(), t.rows());
    for (a, b) in t.columns.iter().zip(&back.columns) {
        assert_eq!((a.name.as_str(), a.kind), (b.name.as_str(), b.kind));
        assert_eq!(a.missing(), b.missing(), "{}", a.name);
        for i in [0, 5, 500, 890] {
            assert_eq!(a.str_at(i), b.str_at(i), "{} row {i}", a.name);
        }
    }
    // a file that claims to be Parquet but is not
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, b"PAR1 this is not parquet").unwrap();
    let e = read_path(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.parquet") && e.contains("Parquet"), "{e}");
}

/// Property: for random tables and random cut points, the profile of the
/// two halves merged equals the profile of the whole (exactly for counts
/// and moments, within sketch error for distinct counts and quantiles).
#[test]
fn profiles_of_halves_merge_into_the_whole() {
    let mut seed = 42u64;
    let mut rnd = || {
        seed = tabular::sketch::mix(seed.wrapping_add(0x9E37));
        seed
    };
    for case in 0..25 {
        let n = 200 + (rnd() % 5000) as usize;
        let mut csv = String::from("x,c,d\n");
        for _ in 0..n {
            let x = if rnd() % 17 == 0 {
                String::new()
            } else {
                format!("{:.3}", (rnd() % 100_000) as f64 / 7.0 - 3000.0)
            };
            let c = format!("cat{}", rnd() % (1 + case as u64 * 3));
            let d = format!("2020-01-{:02}", 1 + rnd() % 28);
            csv.push_str(&format!("{x},{c},{d}\n"));
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.csv");
        std::fs::write(&f, csv).unwrap();
        let t = read_path(&f).unwrap();
        let cut = 1 + (rnd() as usize % (n - 1));
        let idx: Vec<usize> = (0..n).collect();
        let (a, b) = (t.take(&idx[..cut]), t.take(&idx[cut..]));
        let whole = Profile::of(&t);
        let mut merged = Profile::of(&a);
        merged.merge(&Profile::of(&b)).unwrap();
        assert_eq!(merged.rows, whole.rows);
        for (m, w) in merged.columns.iter().zip(&whole.columns) {
            assert_eq!(
                (m.count, m.missing),
                (w.count, w.missing),
                "case {case} {}",
                m.name
            );
            let (dm, dw) = (m.distinct_estimate(), w.distinct_estimate());
            assert!(
                (dm - dw).abs() <= 0.03 * dw + 1.0,
                "case {case} {}: distinct {dm} vs {dw}",
                m.name
            );
            if let (Some(x), Some(y)) = (&m.numeric, &w.numeric) {
                assert_eq!(x.moments.count, y.moments.count);
                assert!(
                    (x.moments.mean - y.moments.mean).abs() < 1e-6 * (1.0 + y.moments.mean.abs())
                );
                assert!((x.moments.std() - y.moments.std()).abs() < 1e-6 * (1.0 + y.moments.std()));
                assert_eq!(
                    (x.moments.min, x.moments.max),
                    (y.moments.min, y.moments.max)
                );
                for q in [0.1, 0.5, 0.9] {
                    let (qm, qw) = (x.sketch.quantile(q).unwrap(), y.sketch.quantile(q).unwrap());
                    // compare ranks, not values: the merged quantile must sit
                    // within ~3 % rank of q in the whole (ties span a range)
                    let below = y.sketch.cdf(qm - qm.abs() * 1e-12 - 1e-12);
                    let upto = y.sketch.cdf(qm);
                    assert!(
                        below - 0.03 <= q && q <= upto + 0.03,
                        "case {case} {} q{q}: {qm} vs {qw} (ranks {below}..{upto})",
                        m.name
                    );
                }
            }
            if let (Some(x), Some(y)) = (&m.categories, &w.categories) {
                assert_eq!(x.top(50), y.top(50), "case {case} {}", m.name);
            }
        }
        // and it survives JSON
        let back = Profile::from_json(&merged.to_json()).unwrap();
        assert!(
            back == merged,
            "case {case}: the profile changed through JSON"
        );
    }
}

#[test]
fn profile_json_rejects_other_versions() {
    let e = Profile::from_json(r#"{"version": 99, "rows": 0, "columns": []}"#).unwrap_err();
    assert!(e.to_string().contains("version 99"), "{e}");
    assert!(Profile::from_json("garbage").is_err());
}

#[test]
fn histogram_counts_add_up() {
    let t = read_path(&dataset("california_housing.csv")).unwrap();
    let p = Profile::of(&t);
    let c = p.column("median_income").unwrap();
    let h = c.histogram(20);
    assert_eq!(h.len(), 20);
    let total: f64 = h.iter().map(|b| b.count).sum();
    assert!((total - 20640.0).abs() < 1.0, "{total}");
    let med = c.quantile(0.5).unwrap();
    assert!((med - 3.53).abs() < 0.15, "median {med}");
}
