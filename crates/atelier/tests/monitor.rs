//! `atelier monitor baseline` and `atelier monitor check` end to end, on the
//! repository's datasets split as datasets/README.md says, on shifted
//! copies, with user-edited constraints, and on broken baselines and data.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::dataset;
use serde_json::Value;

fn atelier(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(args)
        .output()
        .expect("run atelier");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "atelier panicked: {text}");
    (out.status.success(), text)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Train and test CSVs of a dataset, by the README's split.
fn split(name: &str, target: Option<&str>, dir: &Path) -> (PathBuf, PathBuf) {
    let src = dataset(&format!("{name}.csv"));
    let text = std::fs::read_to_string(&src).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let labels: Option<Vec<String>> = target.map(|t| {
        let table = tabular::read_path(&src).unwrap();
        assert_eq!(table.rows(), rows.len());
        let col = table.column(t).unwrap();
        (0..table.rows())
            .map(|i| col.str_at(i).unwrap_or_default())
            .collect()
    });
    let (train, test) = tabular::split::train_test(rows.len(), labels.as_deref());
    let write = |idx: &[usize], file: &str| {
        let p = dir.join(format!("{name}_{file}"));
        let mut out = String::from(header);
        out.push('\n');
        for &i in idx {
            out.push_str(rows[i]);
            out.push('\n');
        }
        std::fs::write(&p, out).unwrap();
        p
    };
    (write(&train, "train.csv"), write(&test, "test.csv"))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn violations(dir: &Path) -> Vec<(String, String)> {
    read_json(&dir.join("constraint_violations.json"))["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["constraint_check_type"].as_str().unwrap().to_string(),
                v["feature_name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn drifted(dir: &Path) -> Vec<String> {
    let mut d: Vec<String> = read_json(&dir.join("drift_report.json"))["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    d.sort();
    d
}

fn baseline(data: &Path, out: &Path) {
    let (ok, text) = atelier(&["monitor", "baseline", s(data), "--output", s(out)]);
    assert!(ok, "{text}");
}

fn check(base: &Path, data: &Path, out: &Path) -> String {
    let (ok, text) = atelier(&[
        "monitor",
        "check",
        "--baseline",
        s(base),
        s(data),
        "--output",
        s(out),
    ]);
    assert!(ok, "{text}");
    text
}

#[test]
fn a_test_split_does_not_drift_from_its_training_split() {
    let dir = tempfile::tempdir().unwrap();
    // adult's one Holand-Netherlands row falls in the test split, a value the
    // baseline never saw; its native_country has no value seen once either, so
    // the rule of three's expectation (3 in the baseline's rows) says chance
    for (name, target) in [
        ("bank_marketing", Some("y")),
        ("diamonds", None),
        ("california_housing", None),
        ("adult", Some("income")),
        ("titanic", Some("Survived")),
    ] {
        let (train, test) = split(name, target, dir.path());
        let base = dir.path().join(format!("{name}_base"));
        let out = dir.path().join(format!("{name}_check"));
        baseline(&train, &base);
        let text = check(&base, &test, &out);
        assert!(
            text.contains("0 of") && text.contains("features drifted"),
            "{text}"
        );
        assert_eq!(drifted(&out), Vec::<String>::new(), "{name}: {text}");
        let v = violations(&out);
        assert!(
            v.iter().all(|(kind, _)| kind != "baseline_drift_check"),
            "{name}: {v:?}"
        );
        assert_eq!(v, [], "{name}: {text}");
    }
}

#[test]
fn baseline_files_have_sagemakers_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _) = split("bank_marketing", Some("y"), dir.path());
    let base = dir.path().join("base");
    baseline(&train, &base);
    let st = read_json(&base.join("statistics.json"));
    assert_eq!(st["version"], 0.0);
    assert_eq!(st["dataset"]["item_count"], 36168);
    let feats = st["features"].as_array().unwrap();
    let age = feats.iter().find(|f| f["name"] == "age").unwrap();
    assert_eq!(age["inferred_type"], "Integral");
    let ns = &age["numerical_statistics"];
    assert_eq!(ns["common"]["num_present"], 36168);
    assert_eq!(ns["common"]["num_missing"], 0);
    for k in ["mean", "sum", "std_dev", "min", "max"] {
        assert!(ns[k].is_number(), "{k}");
    }
    let buckets = ns["distribution"]["kll"]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 10);
    let total: f64 = buckets.iter().map(|b| b["count"].as_f64().unwrap()).sum();
    assert!((total - 36168.0).abs() < 1.0, "{total}");
    assert!(ns["distribution"]["kll"]["sketch"]["data"].is_array());
    let job = feats.iter().find(|f| f["name"] == "job").unwrap();
    assert_eq!(job["inferred_type"], "String");
    let ss = &job["string_statistics"];
    assert_eq!(ss["distinct_count"], 12.0);
    let cats = ss["distribution"]["categorical"]["buckets"]
        .as_array()
        .unwrap();
    assert_eq!(cats.len(), 12);
    assert!(cats[0]["value"].is_string() && cats[0]["count"].is_u64());

    let c = read_json(&base.join("constraints.json"));
    let mc = &c["monitoring_config"];
    assert_eq!(mc["evaluate_constraints"], "Enabled");
    assert_eq!(mc["datatype_check_threshold"], 1.0);
    assert_eq!(mc["distribution_constraints"]["comparison_threshold"], 0.1);
    let cf = c["features"].as_array().unwrap();
    let age = cf.iter().find(|f| f["name"] == "age").unwrap();
    assert_eq!(age["completeness"], 1.0);
    assert_eq!(age["num_constraints"]["is_non_negative"], true);
    let balance = cf.iter().find(|f| f["name"] == "balance").unwrap();
    assert_eq!(balance["num_constraints"]["is_non_negative"], false);
    let job = cf.iter().find(|f| f["name"] == "job").unwrap();
    assert_eq!(
        job["string_constraints"]["domains"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
}

/// The bank test split with `age` moved up by 3 years (~0.3 standard
/// deviations) and 60 % of the blue-collar rows relabelled management,
/// written as Parquet.
fn shifted_copy(test: &Path, out: &Path) {
    let t = tabular::read_path(test).unwrap();
    let mut cols = Vec::new();
    for c in &t.columns {
        let col = match c.name.as_str() {
            "age" => tabular::Column::from_f64(
                "age",
                c.kind,
                (0..c.len()).map(|i| c.f64_at(i).map(|x| x + 3.0)).collect(),
            ),
            "job" => {
                let mut seen = 0usize;
                tabular::Column::from_strings(
                    "job",
                    c.kind,
                    (0..c.len())
                        .map(|i| {
                            c.str_at(i).map(|v| {
                                if v == "blue-collar" {
                                    seen += 1;
                                    if seen % 5 < 3 {
                                        return "management".to_string();
                                    }
                                }
                                v
                            })
                        })
                        .collect(),
                )
            }
            _ => c.clone(),
        };
        cols.push(col);
    }
    let t = tabular::Table {
        columns: cols,
        warnings: vec![],
    };
    tabular::write_parquet(&t, out).unwrap();
}

#[test]
fn a_shifted_column_and_a_changed_category_are_exactly_what_drifts() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = split("bank_marketing", Some("y"), dir.path());
    let base = dir.path().join("base");
    baseline(&train, &base);
    let shifted = dir.path().join("shifted.parquet");
    shifted_copy(&test, &shifted);
    let out = dir.path().join("check");
    let text = check(&base, &shifted, &out);
    assert_eq!(drifted(&out), ["age", "job"], "{text}");
    assert_eq!(
        violations(&out),
        [
            ("baseline_drift_check".to_string(), "age".to_string()),
            ("baseline_drift_check".to_string(), "job".to_string())
        ],
        "{text}"
    );
    assert!(text.contains("2 of 17 features drifted"), "{text}");
    let report = read_json(&out.join("drift_report.json"));
    let f = |n: &str| {
        report["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .unwrap()
            .clone()
    };
    let age = f("age");
    assert_eq!(age["method"], "wasserstein");
    assert_eq!(age["threshold"], 0.1);
    assert!(age["value"].as_f64().unwrap() > 0.2, "{age}");
    let st = &age["statistics"];
    // 36,168 vs 9,043 values: every value is kept (exact samples), and
    // scipy's 'auto' takes the asymptotic p-value beyond 10,000
    assert_eq!(age["baseline"]["sample_exact"], true);
    assert_eq!(age["current"]["sample_exact"], true);
    assert_eq!(st["ks"]["method"], "asymptotic");
    assert!(st["ks"]["pvalue"].as_f64().unwrap() < 1e-6);
    // the raw distance is the shift's size in years, less where it overlaps
    let w = st["wasserstein"].as_f64().unwrap();
    assert!((2.5..=3.0).contains(&w), "{w}");
    for k in [
        "psi",
        "jensen_shannon",
        "cdf_distance",
        "wasserstein_normed",
    ] {
        assert!(st[k].is_number(), "{k}");
    }
    assert!(age["bins"].as_str().unwrap().contains("reference deciles"));
    let job = f("job");
    assert_eq!(job["method"], "jensen_shannon");
    assert!(job["statistics"]["chi2"]["pvalue"].as_f64().unwrap() < 1e-6);
    assert_eq!(job["statistics"]["chi2"]["dof"], 11);
    let balance = f("balance");
    assert_eq!(balance["drift"], false);
}

#[test]
fn edited_constraints_are_respected() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = split("bank_marketing", Some("y"), dir.path());
    let base = dir.path().join("base");
    baseline(&train, &base);
    let shifted = dir.path().join("shifted.parquet");
    shifted_copy(&test, &shifted);
    let cpath = base.join("constraints.json");
    let mut c = read_json(&cpath);
    for f in c["features"].as_array_mut().unwrap() {
        match f["name"].as_str().unwrap() {
            "age" => {
                f["monitoringConfigOverrides"] =
                    serde_json::json!({"perform_comparison": "Disabled"})
            }
            "job" => {
                f["monitoringConfigOverrides"] =
                    serde_json::json!({"comparison_method": "psi", "comparison_threshold": 5.0});
                // the user no longer accepts 'management'
                let d: Vec<Value> = f["string_constraints"]["domains"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| *v != "management")
                    .cloned()
                    .collect();
                f["string_constraints"]["domains"] = Value::Array(d);
            }
            "duration" => {
                f["monitoringConfigOverrides"] =
                    serde_json::json!({"comparison_method": "ks", "comparison_threshold": 1.0})
            }
            _ => {}
        }
    }
    std::fs::write(&cpath, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    let out = dir.path().join("check");
    let text = check(&base, &shifted, &out);
    // KS p-values are below 1 always, so duration is flagged by the user's threshold
    assert_eq!(drifted(&out), ["duration"], "{text}");
    let v = violations(&out);
    assert!(
        v.contains(&("categorical_values_check".into(), "job".into())),
        "{v:?}"
    );
    let report = read_json(&out.join("drift_report.json"));
    let age = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "age")
        .unwrap();
    assert!(age["method"].is_null() && age["note"].as_str().unwrap().contains("disabled"));
    let job = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "job")
        .unwrap();
    assert_eq!(job["method"], "psi");
    assert_eq!(job["threshold"], 5.0);
}

#[test]
fn broken_baselines_and_empty_data_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = split("penguins", Some("species"), dir.path());
    let good = dir.path().join("good");
    baseline(&train, &good);
    let out = dir.path().join("out");
    let run_check = |base: &Path, data: &Path| {
        atelier(&[
            "monitor",
            "check",
            "--baseline",
            s(base),
            s(data),
            "--output",
            s(&out),
        ])
    };
    let copy = |name: &str, edit: &dyn Fn(&Path)| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in [
            "statistics.json",
            "constraints.json",
            "reference_sample.parquet",
        ] {
            std::fs::copy(good.join(f), d.join(f)).unwrap();
        }
        edit(&d);
        d
    };
    let edit_json = |d: &Path, file: &str, f: &dyn Fn(&mut Value)| {
        let p = d.join(file);
        let mut v = read_json(&p);
        f(&mut v);
        std::fs::write(&p, v.to_string()).unwrap();
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            copy("bad_json", &|d| {
                std::fs::write(d.join("statistics.json"), "{\"version\": 0.0, ").unwrap()
            }),
            "statistics.json",
        ),
        (
            copy("wrong_version", &|d| {
                edit_json(d, "constraints.json", &|v| {
                    v["atelier_monitor_version"] = 7.into()
                })
            }),
            "atelier_monitor_version\" is 7",
        ),
        (
            copy("sagemaker_version", &|d| {
                edit_json(d, "statistics.json", &|v| v["version"] = 2.0.into())
            }),
            "\"version\" is 2",
        ),
        (
            copy("missing_field", &|d| {
                edit_json(d, "constraints.json", &|v| {
                    v.as_object_mut().unwrap().remove("monitoring_config");
                })
            }),
            "missing field `monitoring_config`",
        ),
        (
            copy("missing_feature_name", &|d| {
                edit_json(d, "statistics.json", &|v| {
                    v["features"][0].as_object_mut().unwrap().remove("name");
                })
            }),
            "missing field `name`",
        ),
        (
            copy("no_sample", &|d| {
                std::fs::remove_file(d.join("reference_sample.parquet")).unwrap()
            }),
            "reference sample",
        ),
        (
            copy("bad_method", &|d| {
                edit_json(d, "constraints.json", &|v| {
                    v["features"][2]["monitoringConfigOverrides"] =
                        serde_json::json!({"comparison_method": "magic"})
                })
            }),
            "unknown method 'magic'",
        ),
        (
            copy("bad_threshold", &|d| {
                edit_json(d, "constraints.json", &|v| {
                    v["monitoring_config"]["completeness_threshold"] = 3.0.into()
                })
            }),
            "completeness_threshold is 3",
        ),
        (dir.path().join("nowhere"), "not a directory"),
    ];
    for (base, want) in cases {
        let (ok, text) = run_check(&base, &test);
        assert!(!ok, "{}: should fail", base.display());
        assert!(
            text.contains(want),
            "{}: want {want:?} in {text}",
            base.display()
        );
        assert!(text.contains("error:"), "{text}");
    }

    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let header_only = dir.path().join("header.csv");
    std::fs::write(&header_only, "species,island,bill_length_mm\n").unwrap();
    for data in [&empty, &header_only] {
        let (ok, text) = atelier(&[
            "monitor",
            "baseline",
            s(data),
            "--output",
            s(&dir.path().join("b2")),
        ]);
        assert!(!ok);
        assert!(
            text.contains("empty") || text.contains("no data rows"),
            "{text}"
        );
        let (ok, text) = run_check(&good, data);
        assert!(!ok);
        assert!(
            text.contains("empty") || text.contains("no data rows"),
            "{text}"
        );
    }
    let (ok, text) = run_check(&good, &dir.path().join("missing.csv"));
    assert!(!ok && text.contains("missing.csv"), "{text}");
    // missing and extra columns are violations, not errors
    let t = tabular::read_path(&test).unwrap();
    let mut cols: Vec<tabular::Column> = t
        .columns
        .iter()
        .filter(|c| c.name != "island")
        .cloned()
        .collect();
    cols.push(tabular::Column::from_f64(
        "new_sensor",
        tabular::Kind::Numeric,
        vec![Some(1.0); t.rows()],
    ));
    let changed = dir.path().join("changed.parquet");
    tabular::write_parquet(
        &tabular::Table {
            columns: cols,
            warnings: vec![],
        },
        &changed,
    )
    .unwrap();
    let (ok, text) = run_check(&good, &changed);
    assert!(ok, "{text}");
    let v = violations(&out);
    assert!(
        v.contains(&("missing_column_check".into(), "island".into())),
        "{v:?}"
    );
    assert!(
        v.contains(&("extra_column_check".into(), "new_sensor".into())),
        "{v:?}"
    );
}

#[test]
fn a_bounded_sample_still_finds_the_drift() {
    // 36,168 baseline rows kept as a 2,000-value sample per numeric column
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = split("bank_marketing", Some("y"), dir.path());
    let base = dir.path().join("base");
    let (ok, text) = atelier(&[
        "monitor",
        "baseline",
        s(&train),
        "--output",
        s(&base),
        "--sample-size",
        "2000",
        "--chunk-rows",
        "5000",
    ]);
    assert!(ok, "{text}");
    let st = read_json(&base.join("statistics.json"));
    let age = st["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "age")
        .unwrap()
        .clone();
    assert_eq!(age["atelier"]["sample_size"], 2000);
    assert_eq!(age["atelier"]["sample_exact"], false);
    // counts and moments still cover every row
    assert_eq!(age["numerical_statistics"]["common"]["num_present"], 36168);
    for (data, want) in [
        (test.clone(), vec![]),
        (dir.path().join("shifted.parquet"), vec!["age", "job"]),
    ] {
        if want.len() == 2 {
            shifted_copy(&test, &data);
        }
        let out = dir.path().join("check");
        let (ok, text) = atelier(&[
            "monitor",
            "check",
            "--baseline",
            s(&base),
            s(&data),
            "--output",
            s(&out),
            "--sample-size",
            "2000",
        ]);
        assert!(ok, "{text}");
        assert_eq!(drifted(&out), want, "{text}");
        let report = read_json(&out.join("drift_report.json"));
        let f = &report["features"][0];
        assert_eq!(f["name"], "age");
        assert_eq!(f["current"]["sample_size"], 2000);
        assert_eq!(f["current"]["sample_exact"], false);
    }
}
