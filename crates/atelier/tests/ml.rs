//! `atelier train` and `atelier predict` from the command line, on every
//! dataset of the repository's `datasets/` and on bad inputs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{dataset, datasets};

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
    (out.status.success(), text)
}

/// Split a dataset file into train and test CSVs with the README's rule.
fn split(
    name: &str,
    target: &str,
    classification: bool,
    dir: &Path,
) -> (PathBuf, PathBuf, Vec<String>) {
    let src = dataset(&format!("{name}.csv"));
    let text = std::fs::read_to_string(&src).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let table = tabular::read_path(&src).unwrap();
    assert_eq!(
        table.rows(),
        rows.len(),
        "{name}: a quoted field spans lines"
    );
    let col = table.column(target).unwrap();
    let labels: Vec<String> = (0..table.rows())
        .map(|i| col.str_at(i).unwrap_or_default())
        .collect();
    let (train, test) =
        tabular::split::train_test(rows.len(), classification.then_some(&labels[..]));
    let write = |idx: &[usize], file: &str| {
        let p = dir.join(file);
        let mut s = String::from(header);
        s.push('\n');
        for &i in idx {
            s.push_str(rows[i]);
            s.push('\n');
        }
        std::fs::write(&p, s).unwrap();
        p
    };
    let truth = test.iter().map(|&i| labels[i].clone()).collect();
    (write(&train, "train.csv"), write(&test, "test.csv"), truth)
}

fn anchor(dataset: &str, metric: &str) -> f64 {
    let a: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(datasets().join("anchors/automl.json")).unwrap(),
    )
    .unwrap();
    a["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dataset"] == dataset && r["method"] == "lgbm")
        .and_then(|r| r[metric].as_f64())
        .unwrap_or_else(|| panic!("no lgbm {metric} anchor for {dataset}"))
}

/// With default settings, every dataset scores at least LightGBM's
/// default level on its test part (within 0.002: the anchors were measured
/// once, on a busy machine).
#[test]
fn train_and_predict_reach_lightgbm_default_on_every_dataset() {
    let cases = [
        ("penguins", "species", "multiclass"),
        ("titanic", "Survived", "binary"),
        ("wine_quality", "quality", "multiclass"),
        ("california_housing", "median_house_value", "regression"),
        ("adult", "income", "binary"),
        ("bank_marketing", "y", "binary"),
        ("diamonds", "price", "regression"),
    ];
    let mut report = Vec::new();
    for (name, target, task) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (train, test, truth) = split(name, target, task != "regression", dir.path());
        let model = dir.path().join("m.model");
        let pred = dir.path().join("pred.csv");
        let (ok, out) = atelier(&[
            "train",
            train.to_str().unwrap(),
            "--target",
            target,
            "--output",
            model.to_str().unwrap(),
        ]);
        assert!(ok, "{name}: train failed:\n{out}");
        let (ok, out) = atelier(&[
            "predict",
            model.to_str().unwrap(),
            test.to_str().unwrap(),
            "--output",
            pred.to_str().unwrap(),
        ]);
        assert!(ok, "{name}: predict failed:\n{out}");
        let p = tabular::read_path(&pred).unwrap();
        assert_eq!(p.rows(), truth.len(), "{name}: one prediction per test row");
        let predicted = p.column("predicted_label").unwrap();
        let (score, metric) = match task {
            "regression" => {
                let y: Vec<f64> = truth.iter().map(|v| v.parse().unwrap()).collect();
                let yhat: Vec<f64> = (0..p.rows())
                    .map(|i| predicted.f64_at(i).unwrap())
                    .collect();
                (learn::metrics::r2(&y, &yhat), "r2")
            }
            "binary" => {
                let classes: Vec<&str> = p
                    .columns
                    .iter()
                    .filter_map(|c| c.name.strip_prefix("probability_"))
                    .collect();
                assert_eq!(classes.len(), 2, "{name}: {classes:?}");
                let pos = p.column(&format!("probability_{}", classes[1])).unwrap();
                let y: Vec<usize> = truth.iter().map(|t| usize::from(t == classes[1])).collect();
                let s: Vec<f64> = (0..p.rows()).map(|i| pos.f64_at(i).unwrap()).collect();
                (learn::metrics::roc_auc(&y, &s), "roc_auc")
            }
            _ => {
                let right = (0..p.rows())
                    .filter(|&i| predicted.str_at(i).as_deref() == Some(truth[i].as_str()))
                    .count();
                (right as f64 / truth.len() as f64, "accuracy")
            }
        };
        let floor = anchor(name, metric);
        report.push(format!(
            "{name}: {metric} {score:.4} (LightGBM default {floor:.4})"
        ));
        assert!(
            score >= floor - 0.002,
            "{name}: {metric} {score:.4} is below LightGBM default {floor:.4}\n{}",
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = |name: &str, content: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_string()
    };
    let model = d.join("m.model");
    let m = model.to_str().unwrap();
    let mut good = String::from("x,y,label\n");
    for i in 0..60 {
        good.push_str(&format!(
            "{i},{},{}\n",
            i % 7,
            if i % 3 == 0 { "a" } else { "b" }
        ));
    }
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![file("empty.csv", b"")], "empty"),
        (
            vec![
                file("good.csv", good.as_bytes()),
                "--target".into(),
                "nope".into(),
            ],
            "no column 'nope'",
        ),
        (
            vec![file("allmissing.csv", b"x,t\n1,\n2,\n3,NA\n")],
            "has no values",
        ),
        (
            vec![file("oneclass.csv", b"x,t\n1,a\n2,a\n3,a\n")],
            "single class",
        ),
        (vec![file("ragged.csv", b"x,t\n1,a\n2,b,3\n")], "line 3"),
        (
            vec![file("garbage.csv", b"\x7fELF\x02\x01\x01\0\0\0\0binary")],
            "binary",
        ),
        (
            vec![
                file("good2.csv", good.as_bytes()),
                "--algorithm".into(),
                "svm".into(),
            ],
            "invalid value 'svm' for '--algorithm <ALGORITHM>'\n  [possible values: gbm, rf, extra-trees, linear, mlp]",
        ),
        (
            vec![
                file("good3.csv", good.as_bytes()),
                "--param".into(),
                "num_leaves=lots".into(),
            ],
            "num_leaves",
        ),
        (
            vec![
                file("good4.csv", good.as_bytes()),
                "--param".into(),
                "bogus=1".into(),
            ],
            "unknown parameter",
        ),
        (
            vec![file("lonely.csv", b"x,t\n1,a\n2,a\n3,b\n4,c\n5,c\n")],
            "single row",
        ),
    ];
    for (args, expect) in cases {
        let mut full = vec!["train".to_string(), args[0].clone()];
        if !args.iter().any(|a| a == "--target") {
            full.extend([
                "--target".into(),
                if args[0].contains("good") {
                    "label".into()
                } else {
                    "t".into()
                },
            ]);
        }
        full.extend(args[1..].iter().cloned());
        full.extend(["--output".into(), m.into()]);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let (ok, out) = atelier(&refs);
        assert!(!ok, "{args:?} should fail");
        assert!(
            out.contains(expect),
            "{args:?}: expected {expect:?} in:\n{out}"
        );
    }
    // a good model, then prediction inputs and model files that do not fit
    let train = file("train.csv", good.as_bytes());
    let (ok, out) = atelier(&["train", &train, "--target", "label", "--output", m]);
    assert!(ok, "{out}");
    let pred = d.join("p.csv");
    let p = pred.to_str().unwrap();
    let input = file("noy.csv", b"x\n1\n");
    let (ok, out) = atelier(&["predict", m, &input, "--output", p]);
    assert!(!ok && out.contains("no column 'y'"), "{out}");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&model).unwrap()).unwrap();
    v["version"] = serde_json::json!(99);
    let future = file("future.model", v.to_string().as_bytes());
    let (ok, out) = atelier(&["predict", &future, &train, "--output", p]);
    assert!(!ok && out.contains("format version 99"), "{out}");
    let corrupt = file("corrupt.model", &std::fs::read(&model).unwrap()[..200]);
    let (ok, out) = atelier(&["predict", &corrupt, &train, "--output", p]);
    assert!(!ok && out.contains("not an Atelier pipeline"), "{out}");
    let other = file("other.model", b"{\"format\": \"something-else\"}");
    let (ok, out) = atelier(&["predict", &other, &train, "--output", p]);
    assert!(!ok && out.contains("not an Atelier pipeline"), "{out}");
    // explanations: one contribution per used input column, plus the base
    // (x counts 0, 1, 2, ... so it is id-like and not used)
    let (ok, out) = atelier(&["predict", m, &train, "--output", p, "--contributions"]);
    assert!(ok, "{out}");
    let header = std::fs::read_to_string(&pred)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        header,
        "predicted_label,probability_a,probability_b,contribution_y,contribution_base"
    );
    // unseen categories and missing values are handled as in training
    let input = file("odd.csv", b"x,y,label\n1,3,zzz\n,,\n");
    let (ok, out) = atelier(&["predict", m, &input, "--output", p]);
    assert!(ok, "{out}");
    let rows = std::fs::read_to_string(&pred).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
    assert!(
        rows.starts_with("predicted_label,probability_a,probability_b"),
        "{rows}"
    );
}

#[test]
fn automl_cli_and_its_benchmark_run() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test, _) = split("titanic", "Survived", true, dir.path());
    let model = dir.path().join("auto.model");
    let (ok, out) = atelier(&[
        "automl",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--time-budget",
        "5",
        "--max-candidates",
        "6",
        "--output",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("leaderboard (auc)") && out.contains("gbm-default"),
        "{out}"
    );
    // why the search ended, in words, at the end
    assert!(
        out.contains("stopped: the maximum number of candidates (6) was reached")
            || out.contains("stopped: the time budget (5 s) was spent"),
        "{out}"
    );
    // the reports and the notebook land beside the pipeline, as on a server
    let reports = dir.path().join("auto.model.reports");
    let data = std::fs::read_to_string(reports.join("reports/data_exploration.html")).unwrap();
    assert!(
        data.contains("<svg") && data.contains("Survived"),
        "{data:.300}"
    );
    let quality = std::fs::read_to_string(reports.join("reports/model_quality.html")).unwrap();
    assert!(
        quality.contains("<svg") && quality.contains("ROC") && quality.contains("gbm-default"),
        "{quality:.300}"
    );
    let nb: serde_json::Value = serde_json::from_slice(
        &std::fs::read(reports.join("notebooks/autopilot_candidate.ipynb")).unwrap(),
    )
    .unwrap();
    assert_eq!(nb["nbformat"], 4);
    assert!(nb.to_string().contains("atelier automl"), "{nb}");
    assert!(out.contains("model_quality.html"), "{out}");
    let quick = dir.path().join("quick.model");
    let (ok, out) = atelier(&[
        "automl",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--time-budget",
        "3",
        "--max-candidates",
        "2",
        "--no-reports",
        "-o",
        quick.to_str().unwrap(),
    ]);
    assert!(ok && quick.exists(), "{out}");
    assert!(!dir.path().join("quick.model.reports").exists(), "{out}");
    let (ok, out) = atelier(&[
        "automl",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--reports",
        "r",
        "--no-reports",
        "-o",
        "x",
    ]);
    assert!(!ok && out.contains("cannot be used with"), "{out}");
    let pred = dir.path().join("p.csv");
    let (ok, out) = atelier(&[
        "predict",
        model.to_str().unwrap(),
        test.to_str().unwrap(),
        "-o",
        pred.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = atelier(&[
        "automl",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--time-budget",
        "0",
        "-o",
        "x",
    ]);
    assert!(
        !ok && out.contains("--time-budget must be a positive"),
        "{out}"
    );
    let (ok, out) = atelier(&[
        "automl",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--metric",
        "r2",
        "-o",
        "x",
    ]);
    assert!(!ok && out.contains("does not fit a binary"), "{out}");
    // files that are not tables, and files that are not there: said once, with the fix
    let xlsx = dir.path().join("data.xlsx");
    std::fs::write(&xlsx, b"PK\x03\x04 a zip container").unwrap();
    let (ok, out) = atelier(&["automl", xlsx.to_str().unwrap(), "--target", "y", "-o", "x"]);
    assert!(
        !ok && out.contains("this is a spreadsheet (.xlsx), not CSV or Parquet"),
        "{out}"
    );
    let (ok, out) = atelier(&[
        "automl",
        "/nonexistent/data.csv",
        "--target",
        "y",
        "-o",
        "x",
    ]);
    assert!(!ok && out.matches("No such file").count() == 1, "{out}");
    // tiny, constant and single-row-class targets: one clear message each
    let tiny = dir.path().join("tiny.csv");
    let mut text = String::from("a,b,y\n");
    for i in 0..12 {
        text.push_str(&format!(
            "{i},{},{}\n",
            i % 3,
            if i % 2 == 0 { "p" } else { "q" }
        ));
    }
    std::fs::write(&tiny, &text).unwrap();
    let t = tiny.to_str().unwrap();
    let (ok, out) = atelier(&["automl", t, "--target", "y", "-o", "x"]);
    assert!(
        !ok && out.contains("only 12 rows have a target value; AutoML needs at least 20"),
        "{out}"
    );
    let m = dir.path().join("tiny.model");
    let (ok, out) = atelier(&[
        "automl",
        t,
        "--target",
        "y",
        "--min-rows",
        "10",
        "--time-budget",
        "5",
        "--max-candidates",
        "2",
        "-o",
        m.to_str().unwrap(),
    ]);
    assert!(ok, "--min-rows lowers the floor: {out}");
    std::fs::write(&tiny, text.replace(",p\n", ",q\n")).unwrap();
    let (ok, out) = atelier(&["automl", t, "--target", "y", "--min-rows", "10", "-o", "x"]);
    assert!(!ok && out.contains("has a single class (q)"), "{out}");
    assert_eq!(out.matches("single class").count(), 1, "said once: {out}");
    std::fs::write(&tiny, format!("{text}99,1,r\n")).unwrap();
    let (ok, out) = atelier(&["automl", t, "--target", "y", "--min-rows", "10", "-o", "x"]);
    assert!(
        !ok && out.contains("class 'r' of the target column 'y' has a single row"),
        "{out}"
    );
    let json = dir.path().join("b.json");
    let data = datasets();
    let (ok, out) = atelier(&[
        "bench",
        "automl",
        "--data",
        data.to_str().unwrap(),
        "--time-budget",
        "2",
        "--datasets",
        "penguins",
        "--peers",
        "anchors",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("penguins")
            && out.contains("0.9714")
            && out.contains("measured at another time"),
        "the LightGBM anchor is printed beside ours, labelled as another time's:\n{out}"
    );
    let res: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(res["rows"][0]["atelier"].as_f64().unwrap() > 0.9);
    assert_eq!(res["rows"][0]["stop_reason"]["kind"], "budget_spent");
    // without the datasets folder (an installed binary has no repository), the
    // error names the missing file and says what to pass
    let empty = dir.path().join("no-datasets");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, out) = atelier(&[
        "bench",
        "automl",
        "--data",
        empty.to_str().unwrap(),
        "--peers",
        "anchors",
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("anchors/automl.json: no such file") && out.contains("pass --data DIR"),
        "{out}"
    );
    let (ok, out) = atelier(&["bench", "automl", "--data", empty.to_str().unwrap()]);
    assert!(
        !ok && out.contains("penguins.csv: no such file") && out.contains("pass --data DIR"),
        "{out}"
    );
}

/// The `--contributions` columns of a predictions CSV add up, row by row, to the
/// prediction in the space `atelier predict` reports on stderr (multiclass: the
/// predicted class).
/// `atelier automl --facet`: Clarify's bias metrics on the out-of-fold
/// predictions, in the model-quality report and as analysis.json; the
/// pre-training half is the data's, so it equals `atelier clarify bias` on
/// the same file.
#[test]
fn automl_with_a_facet_adds_a_bias_report() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _, _) = split("titanic", "Survived", true, dir.path());
    let model = dir.path().join("auto.model");
    let (ok, out) = atelier(&[
        "automl",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--time-budget",
        "10",
        "--max-candidates",
        "4",
        "--facet",
        "Sex",
        "--facet-values",
        "female",
        "--output",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let reports = dir.path().join("auto.model.reports/reports");
    let analysis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.join("bias/analysis.json")).unwrap())
            .unwrap();
    let metrics = |stage: &str| -> std::collections::BTreeMap<String, serde_json::Value> {
        analysis[stage]["facets"]["Sex"][0]["metrics"]
            .as_array()
            .unwrap_or_else(|| panic!("{stage}: {analysis}"))
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_string(), m["value"].clone()))
            .collect()
    };
    let post = metrics("post_training_bias_metrics");
    let names: Vec<&str> = post.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "AD", "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "FT", "GE", "RD", "SD", "TE"
        ]
    );
    // women are predicted to survive far more often than men: DPPL = q̂a − q̂d < 0, DI > 1
    let dppl = post["DPPL"].as_f64().unwrap();
    let di = post["DI"].as_f64().unwrap();
    assert!(dppl < -0.3 && di > 2.0, "DPPL {dppl}, DI {di}");
    // the pre-training metrics are the data's own
    let bias_dir = dir.path().join("clarify");
    let (ok, out) = atelier(&[
        "clarify",
        "bias",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--facet",
        "Sex",
        "--facet-values",
        "female",
        "-o",
        bias_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let direct: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bias_dir.join("analysis.json")).unwrap()).unwrap();
    assert_eq!(
        analysis["pre_training_bias_metrics"], direct["pre_training_bias_metrics"],
        "pre-training metrics differ from `atelier clarify bias`"
    );
    // and the model-quality page shows them, with a chart
    let quality = std::fs::read_to_string(reports.join("model_quality.html")).unwrap();
    let at = quality
        .find("Bias (Clarify metrics)")
        .expect("a bias section");
    assert!(quality[at..].contains("<svg") && quality[at..].contains("DPPL"));

    // a facet the data lacks stops before the search, with the columns named
    let (ok, out) = atelier(&[
        "automl",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--facet",
        "Gender",
        "-o",
        model.to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("no column 'Gender'"), "{out}");
    assert!(
        !out.contains("candidates"),
        "the search should not start: {out}"
    );
    // value flags need a facet
    let (ok, out) = atelier(&[
        "automl",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "--facet-values",
        "female",
        "-o",
        model.to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("--facet"), "{out}");
}

fn check_contributions(pred: &Path, stderr: &str, what: &str) {
    let text = std::fs::read_to_string(pred).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"contribution_base"), "{what}");
    let first = header
        .iter()
        .position(|h| h.starts_with("contribution_"))
        .unwrap();
    assert!(header.len() - first >= 3, "{what}: {header:?}");
    let space = ["log-odds", "logits", "probability", "value"]
        .into_iter()
        .find(|s| stderr.contains(&format!(" in {s} space")))
        .unwrap_or_else(|| panic!("{what}: no space named in {stderr}"));
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let sum: f64 = cells[first..]
            .iter()
            .map(|c| c.parse::<f64>().unwrap())
            .sum();
        let prob = |col: usize| -> f64 { cells[col].parse().unwrap() };
        // columns: predicted_label, one probability per class, the contributions
        let binary = first == 3;
        let predicted = || {
            1 + header[1..first]
                .iter()
                .position(|h| *h == format!("probability_{}", cells[0]))
                .unwrap()
        };
        let (got, want) = match space {
            "value" => (sum, cells[0].parse::<f64>().unwrap()),
            "log-odds" => (1.0 / (1.0 + (-sum).exp()), prob(2)),
            "probability" if binary => (sum, prob(2)),
            "probability" => (sum, prob(predicted())),
            // one class's logit does not give its probability without the others
            _ => {
                assert!(sum.is_finite(), "{what}: {line}");
                (sum, sum)
            }
        };
        assert!(
            (got - want).abs() < 1e-9 * want.abs().max(1.0),
            "{what}: contributions add up to {got}, the prediction is {want}: {line}"
        );
        rows += 1;
    }
    assert!(rows > 0, "{what}");
}

/// Every learner trains and predicts through the CLI, on a small
/// multiclass and a binary dataset, with per-row contributions.
#[test]
fn every_algorithm_trains_and_predicts() {
    for (name, target, task, floor) in [
        ("penguins", "species", "multiclass", 0.95),
        ("titanic", "Survived", "binary", 0.82),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (train, test, truth) = split(name, target, true, dir.path());
        for alg in ["gbm", "rf", "extra-trees", "linear", "mlp"] {
            let model = dir.path().join(format!("{alg}.model"));
            let pred = dir.path().join(format!("{alg}.csv"));
            let (ok, out) = atelier(&[
                "train",
                train.to_str().unwrap(),
                "--target",
                target,
                "--algorithm",
                alg,
                "-o",
                model.to_str().unwrap(),
            ]);
            assert!(ok, "{name} {alg}: {out}");
            let (ok, out) = atelier(&[
                "predict",
                model.to_str().unwrap(),
                test.to_str().unwrap(),
                "-o",
                pred.to_str().unwrap(),
                "--contributions",
            ]);
            assert!(ok, "{name} {alg}: {out}");
            check_contributions(&pred, &out, &format!("{name} {alg}"));
            let p = tabular::read_path(&pred).unwrap();
            let score = if task == "binary" {
                let pos = p.column("probability_1").unwrap();
                let y: Vec<usize> = truth.iter().map(|t| usize::from(t == "1")).collect();
                let s: Vec<f64> = (0..p.rows()).map(|i| pos.f64_at(i).unwrap()).collect();
                learn::metrics::roc_auc(&y, &s)
            } else {
                let l = p.column("predicted_label").unwrap();
                (0..p.rows())
                    .filter(|&i| l.str_at(i).as_deref() == Some(truth[i].as_str()))
                    .count() as f64
                    / truth.len() as f64
            };
            assert!(score >= floor, "{name} {alg}: {score:.4} < {floor}");
        }
    }
}

#[test]
fn profile_prints_a_table_and_versioned_json() {
    let adult = dataset("adult.csv");
    let (ok, out) = atelier(&["profile", adult.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.starts_with("32561 rows, 15 columns"), "{out}");
    let workclass = out.lines().find(|l| l.starts_with("workclass")).unwrap();
    assert!(
        workclass.contains("categorical")
            && workclass.contains("1836")
            && workclass.contains("Private"),
        "{workclass}"
    );
    let (ok, out) = atelier(&["profile", adult.to_str().unwrap(), "--json"]);
    assert!(ok, "{out}");
    let p = tabular::Profile::from_json(out.trim()).unwrap();
    assert_eq!(p.rows, 32561);
    assert_eq!(p.column("age").unwrap().missing, 0);
}

#[test]
fn training_logs_per_iteration_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _, _) = split("titanic", "Survived", true, dir.path());
    let model = dir.path().join("m.model");
    let (ok, out) = atelier(&[
        "train",
        train.to_str().unwrap(),
        "--target",
        "Survived",
        "-o",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    // not a terminal here, so the progress bar becomes thinned log lines
    assert!(
        out.contains("iteration 1/2000  validation loss 0."),
        "{out}"
    );
    assert!(
        out.contains("iteration 50/2000  validation loss 0."),
        "{out}"
    );
}
