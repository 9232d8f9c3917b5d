//! The model-quality report for binary, multiclass and regression inputs:
//! sections, curves, numbers checked by hand, input validation.

use learn::ProblemType;
use reports::{LeaderboardRow, QualityInput, ReportError, ShapInput, quality_report};

fn leaderboard(metric_scores: &[f64]) -> Vec<LeaderboardRow> {
    metric_scores
        .iter()
        .enumerate()
        .map(|(i, s)| LeaderboardRow {
            rank: i + 1,
            name: format!("candidate-{i}"),
            algorithm: if i == 0 { "gbm" } else { "rf" }.into(),
            score: *s,
            fit_seconds: 0.5 + i as f64,
            params: vec![
                ("num_leaves".into(), format!("{}", 15 + i)),
                ("learning_rate".into(), "0.1".into()),
            ],
        })
        .collect()
}

/// A deterministic pseudo-random number in [0, 1).
fn u(i: usize, salt: u64) -> f64 {
    (tabular::split::key(i as u64 ^ (salt << 32)) % 1_000_000) as f64 / 1e6
}

fn binary_input(n: usize) -> QualityInput {
    let y: Vec<f64> = (0..n).map(|i| (u(i, 1) < 0.3) as u8 as f64).collect();
    // informative but imperfect scores
    let p: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, &t)| (0.25 + 0.4 * t + 0.5 * (u(i, 2) - 0.5)).clamp(0.0, 1.0))
        .collect();
    QualityInput {
        title: "churn.csv".into(),
        problem: ProblemType::Binary,
        target: "churned".into(),
        labels: vec!["stayed".into(), "left".into()],
        metric: "auc".into(),
        higher_is_better: true,
        best_score: 0.91,
        validation: "out-of-fold predictions of 5-fold cross-validation".into(),
        leaderboard: leaderboard(&[0.91, 0.905, 0.88]),
        y_true: y,
        predictions: p,
        feature_importance: vec![("tenure".into(), 0.6), ("plan".into(), 0.4)],
        shap: None,
        bias: None,
    }
}

fn balanced(html: &str) {
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert!(!html.contains("<script"));
}

/// AUC by brute force over all (positive, negative) pairs.
fn auc_pairs(y: &[f64], p: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..y.len() {
        for j in 0..y.len() {
            if y[i] == 1.0 && y[j] == 0.0 {
                den += 1.0;
                num += if p[i] > p[j] {
                    1.0
                } else if p[i] == p[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    num / den
}

#[test]
fn binary_report_shows_leaderboard_confusion_roc_pr_and_calibration() {
    let input = binary_input(600);
    let html = quality_report(&input).unwrap();
    balanced(&html);
    for id in [
        "summary",
        "leaderboard",
        "confusion",
        "curves",
        "importance",
    ] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert!(!html.contains("<section id=\"residuals\">"));
    assert!(!html.contains("<section id=\"shap\">"));
    for title in [
        "Confusion matrix",
        "ROC curve",
        "Precision–recall curve",
        "Reliability (calibration)",
        "Validation auc by candidate",
        "Global feature importance",
    ] {
        assert!(html.contains(&format!("aria-label=\"{title}\"")), "{title}");
    }
    // the AUC in the legend matches a brute-force count
    let auc = auc_pairs(&input.y_true, &input.predictions);
    assert!(
        html.contains(&format!("left (AUC {auc:.4})")),
        "AUC {auc:.4} not shown"
    );
    // confusion counts at the 0.5 threshold, by hand
    let (mut tp, mut fn_) = (0, 0);
    for (t, p) in input.y_true.iter().zip(&input.predictions) {
        if *t == 1.0 {
            if *p >= 0.5 { tp += 1 } else { fn_ += 1 }
        }
    }
    assert!(html.contains(&format!("true left → predicted left: {tp} rows")));
    assert!(html.contains(&format!("true left → predicted stayed: {fn_} rows")));
    // leaderboard rows with parameters
    assert!(html.contains("<code>num_leaves=16</code>"));
    assert_eq!(
        html.matches("<tr class=\"best\"><td class=\"n\">1</td>")
            .count(),
        1
    );
    // two-column probabilities give the same report
    let mut two = input.clone();
    two.predictions = input
        .predictions
        .iter()
        .flat_map(|p| [1.0 - p, *p])
        .collect();
    assert_eq!(quality_report(&two).unwrap(), html);
}

#[test]
fn multiclass_report_draws_one_vs_rest_curves_per_class() {
    let n = 900;
    let k = 4;
    let y: Vec<f64> = (0..n).map(|i| (i % k) as f64).collect();
    let mut proba = Vec::with_capacity(n * k);
    for (i, t) in y.iter().enumerate() {
        let mut row: Vec<f64> = (0..k)
            .map(|c| u(i * k + c, 3) + if c == *t as usize { 0.6 } else { 0.0 })
            .collect();
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
        proba.extend(row);
    }
    let input = QualityInput {
        title: "<b>iris</b>".into(),
        problem: ProblemType::Multiclass,
        target: "species".into(),
        labels: vec![
            "setosa".into(),
            "versicolor".into(),
            "virginica".into(),
            "<x>".into(),
        ],
        metric: "accuracy".into(),
        higher_is_better: true,
        best_score: 0.8,
        validation: "holdout".into(),
        leaderboard: leaderboard(&[0.8, 0.7]),
        y_true: y,
        predictions: proba,
        feature_importance: vec![],
        shap: None,
        bias: None,
    };
    let html = quality_report(&input).unwrap();
    balanced(&html);
    for c in ["setosa", "versicolor", "virginica", "&lt;x&gt;"] {
        assert!(html.contains(&format!("{c} vs rest (AUC")), "{c}");
        assert!(html.contains(&format!("{c} (AP")), "{c}");
    }
    assert!(!html.contains("<x>") && !html.contains("<b>iris"));
    assert!(html.contains("The model reported no feature importance."));
    // per-class support
    assert_eq!(html.matches("<td class=\"n\">225</td></tr>").count(), 4);
}

#[test]
fn regression_report_subsamples_scatter_plots_and_shows_residuals() {
    let n = 5000;
    let y: Vec<f64> = (0..n).map(|i| 100.0 * u(i, 4)).collect();
    let p: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, v)| v + 10.0 * (u(i, 5) - 0.5))
        .collect();
    let features = vec!["size".to_string(), "age".to_string(), "zone".to_string()];
    let shap_rows = 300;
    let shap = ShapInput {
        features: features.clone(),
        values: (0..shap_rows * 3)
            .map(|i| (u(i, 6) - 0.5) * (3 - i % 3) as f64)
            .collect(),
        feature_values: (0..shap_rows * 3)
            .map(|i| if i % 3 == 2 { f64::NAN } else { u(i, 7) })
            .collect(),
        space: "value".into(),
    };
    let input = QualityInput {
        title: "houses".into(),
        problem: ProblemType::Regression,
        target: "price".into(),
        labels: vec![],
        metric: "rmse".into(),
        higher_is_better: false,
        best_score: 2.9,
        validation: "5-fold".into(),
        leaderboard: leaderboard(&[2.9, 3.1, 4.0]),
        y_true: y.clone(),
        predictions: p.clone(),
        feature_importance: vec![("size".into(), 3.0), ("age".into(), 1.0)],
        shap: Some(shap),
        bias: None,
    };
    let html = quality_report(&input).unwrap();
    balanced(&html);
    assert!(html.contains("<section id=\"residuals\">"));
    assert!(html.contains("<section id=\"shap\">"));
    assert!(
        html.contains("mean |SHAP value| (value)"),
        "the SHAP axis names its space"
    );
    assert!(!html.contains("<section id=\"confusion\">"));
    // the scatter plots hold at most 2000 points each
    let scatter = |title: &str| -> usize {
        let start = html.find(&format!("aria-label=\"{title}\"")).unwrap();
        let end = html[start..].find("</svg>").unwrap() + start;
        html[start..end].matches("<circle").count()
    };
    assert_eq!(scatter("Predicted vs actual"), 2000);
    assert_eq!(scatter("Residuals vs predicted"), 2000);
    assert!(html.contains("A seeded sample of 2,000 of 5,000 rows is drawn."));
    // every SHAP row is a dot in each feature's band
    assert_eq!(scatter("SHAP summary (one dot per row)"), 3 * shap_rows);
    // importance is shown normalised: size 75 %, age 25 %
    assert!(html.contains("size: 75.0 %"));
    assert!(html.contains("age: 25.0 %"));
    // R² on the KPI strip, checked by hand
    let mean = y.iter().sum::<f64>() / n as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(&p).map(|(a, b)| (a - b).powi(2)).sum();
    let r2 = 1.0 - ss_res / ss_tot;
    assert!(html.contains(&format!(
        "<div class=\"kv\">{r2:.4}</div><div class=\"kl\">R²</div>"
    )));
}

#[test]
fn inconsistent_inputs_are_errors_that_say_what_is_wrong() {
    let good = binary_input(50);
    let mut bad = good.clone();
    bad.predictions.pop();
    let e = quality_report(&bad).unwrap_err();
    assert!(matches!(e, ReportError::Input(_)));
    assert!(
        e.to_string().contains("expected 50 rows × 2 classes"),
        "{e}"
    );

    let mut bad = good.clone();
    bad.y_true[3] = 2.0;
    let e = quality_report(&bad).unwrap_err().to_string();
    assert!(
        e.contains("y_true[3] = 2 is not a class index in 0..2"),
        "{e}"
    );

    let mut bad = good.clone();
    bad.predictions[7] = f64::NAN;
    assert!(quality_report(&bad).is_err());

    let mut bad = good.clone();
    bad.labels = vec!["only".into()];
    assert!(
        quality_report(&bad)
            .unwrap_err()
            .to_string()
            .contains("at least two")
    );

    let mut bad = good.clone();
    bad.y_true.clear();
    bad.predictions.clear();
    assert!(quality_report(&bad).is_err());

    let mut bad = good.clone();
    bad.shap = Some(ShapInput {
        features: vec!["a".into(), "b".into()],
        values: vec![0.1, 0.2, 0.3],
        feature_values: vec![],
        space: String::new(),
    });
    let e = quality_report(&bad).unwrap_err().to_string();
    assert!(e.contains("shap.values has 3 values"), "{e}");

    let mut bad = good;
    bad.problem = ProblemType::Regression;
    bad.predictions.push(1.0);
    assert!(
        quality_report(&bad)
            .unwrap_err()
            .to_string()
            .contains("one prediction per row")
    );
}

#[test]
fn many_classes_keep_the_matrix_and_curves_readable() {
    let n = 2000;
    let k = 40;
    // classes 0..9 twice as frequent as the rest
    let y: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { (i / 2) % 10 } else { (i / 2) % k } as f64)
        .collect();
    let mut proba = Vec::with_capacity(n * k);
    for (i, t) in y.iter().enumerate() {
        let mut row: Vec<f64> = (0..k)
            .map(|c| u(i * k + c, 9) + if c == *t as usize { 2.0 } else { 0.0 })
            .collect();
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
        proba.extend(row);
    }
    let input = QualityInput {
        title: "codes".into(),
        problem: ProblemType::Multiclass,
        target: "code".into(),
        labels: (0..k).map(|c| format!("class {c}")).collect(),
        metric: "accuracy".into(),
        higher_is_better: true,
        best_score: 0.5,
        validation: "holdout".into(),
        leaderboard: leaderboard(&[0.5]),
        y_true: y,
        predictions: proba,
        feature_importance: vec![("x".into(), 1.0)],
        shap: None,
        bias: None,
    };
    let html = quality_report(&input).unwrap();
    balanced(&html);
    let start = html.find("aria-label=\"Confusion matrix\"").unwrap();
    let end = html[start..].find("</svg>").unwrap() + start;
    // 20 × 20 cells and the legend bar
    assert_eq!(html[start..end].matches("<rect").count(), 20 * 20 + 1);
    assert!(html.contains("most frequent of 40 classes"));
    // at most 10 one-vs-rest curves (each named in its tooltip and the legend),
    // those of the most frequent classes
    assert_eq!(html.matches(" vs rest (AUC").count(), 2 * 10);
    assert!(html.contains("class 9 vs rest") && !html.contains("class 10 vs rest"));
}

#[test]
fn shap_input_from_a_real_pipeline_follows_the_chosen_output() {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets/penguins.csv");
    let table = tabular::read_path(&path).unwrap();
    let pipeline = learn::train(
        &table,
        "species",
        &learn::TrainOptions {
            algorithm: learn::Algorithm::Gbm,
            params: vec![("n_estimators".into(), "20".into())],
            problem: None,
        },
        &mut |_| {},
    )
    .unwrap();
    let rows = table.take(&(0..50).collect::<Vec<_>>());
    let c = pipeline.contributions(&rows).unwrap();
    assert_eq!(c.outputs, 3);
    let shap = ShapInput::from_contributions(&c, &rows, |i| i % 3, 1000).unwrap();
    let f = c.columns.len();
    assert_eq!(shap.values.len(), 50 * f);
    assert_eq!(shap.feature_values.len(), 50 * f);
    for i in [0, 1, 2, 49] {
        assert_eq!(&shap.values[i * f..(i + 1) * f], &c.row(i, i % 3)[..f]);
    }
    // colours come from the table: bill_length_mm of row 0
    let j = c
        .columns
        .iter()
        .position(|n| n == "bill_length_mm")
        .unwrap();
    assert_eq!(
        shap.feature_values[j],
        rows.column("bill_length_mm").unwrap().f64_at(0).unwrap()
    );
    // a sample when asked for fewer rows; an output that does not exist is an error
    let few = ShapInput::from_contributions(&c, &rows, |_| 0, 10).unwrap();
    assert_eq!(few.values.len(), 10 * f);
    assert!(ShapInput::from_contributions(&c, &rows, |_| 3, 100).is_err());
    let other = table.take(&[0, 1]);
    assert!(ShapInput::from_contributions(&c, &other, |_| 0, 100).is_err());
}
