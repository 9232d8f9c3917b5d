//! Write sample reports and notebooks from the repository's datasets, for
//! looking at them and for `tests/python/test_reports.py`.
//!
//!     cargo run -p reports --example write_samples -- OUT_DIR [DATASETS_DIR]
//!
//! `DATASETS_DIR` defaults to the repository's `datasets/`.
//!
//! For penguins (multiclass), titanic (binary) and california_housing
//! (regression): the data-exploration report of the whole file; the
//! README's train/test split written under `OUT_DIR/data dir 'quoted'/`
//! (a path that needs shell quoting); three real candidates trained on the
//! train part and scored on the test part; the model-quality report of the
//! best (test predictions, importance, TreeSHAP); and the candidate
//! notebook that reproduces it with the `atelier` CLI.

use std::path::{Path, PathBuf};
use std::time::Instant;

use learn::{Algorithm, ProblemType, TrainOptions};
use reports::{
    AutomlCall, DataReportOptions, HttpCall, LeaderboardRow, NotebookSpec, QualityInput, ShapInput,
};

type Error = Box<dyn std::error::Error>;
type Params = Vec<(String, String)>;

struct Dataset {
    name: &'static str,
    target: &'static str,
    metric: &'static str,
    higher_is_better: bool,
}

const DATASETS: [Dataset; 3] = [
    Dataset {
        name: "penguins",
        target: "species",
        metric: "accuracy",
        higher_is_better: true,
    },
    Dataset {
        name: "titanic",
        target: "Survived",
        metric: "auc",
        higher_is_better: true,
    },
    Dataset {
        name: "california_housing",
        target: "median_house_value",
        metric: "rmse",
        higher_is_better: false,
    },
];

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: write_samples OUT_DIR [DATASETS_DIR]")?,
    );
    let datasets = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets"));
    std::fs::create_dir_all(&out)?;
    let data_dir = out.join("data dir 'quoted'");
    std::fs::create_dir_all(&data_dir)?;
    for d in &DATASETS {
        let src = datasets.join(format!("{}.csv", d.name));
        let table = tabular::read_path(&src)?;
        let t0 = Instant::now();
        let html = reports::data_report(
            &table,
            d.target,
            &DataReportOptions {
                title: Some(format!("{}.csv", d.name)),
                ..DataReportOptions::default()
            },
        )?;
        std::fs::write(out.join(format!("data_{}.html", d.name)), &html)?;
        eprintln!(
            "data_{}.html: {} KiB in {:.2} s",
            d.name,
            html.len() / 1024,
            t0.elapsed().as_secs_f64()
        );
        sample(d, &src, &table, &out, &data_dir)?;
    }
    Ok(())
}

/// Split, train candidates, write the quality report and the notebook.
fn sample(
    d: &Dataset,
    src: &Path,
    table: &tabular::Table,
    out: &Path,
    data_dir: &Path,
) -> Result<(), Error> {
    let text = std::fs::read_to_string(src)?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty file")?;
    let rows: Vec<&str> = lines.collect();
    if rows.len() != table.rows() {
        return Err(format!("{}: a quoted field spans lines", d.name).into());
    }
    let col = table.column(d.target).ok_or("no target")?;
    let classification = d.metric != "rmse";
    let labels: Vec<String> = (0..table.rows())
        .map(|i| col.str_at(i).unwrap_or_default())
        .collect();
    let (train_idx, test_idx) =
        tabular::split::train_test(rows.len(), classification.then_some(&labels[..]));
    let write = |idx: &[usize], file: &str| -> Result<PathBuf, Error> {
        let p = data_dir.join(file);
        let mut s = format!("{header}\n");
        for &i in idx {
            s.push_str(rows[i]);
            s.push('\n');
        }
        std::fs::write(&p, s)?;
        Ok(p)
    };
    let train_path = write(&train_idx, &format!("{} \"train\".csv", d.name))?;
    let test_path = write(&test_idx, &format!("{} test.csv", d.name))?;
    let train = tabular::read_path(&train_path)?;
    let test = tabular::read_path(&test_path)?;

    // three real candidates, scored on the test part
    let candidates: Vec<(&str, Algorithm, Params)> = vec![
        (
            "gbm-default",
            Algorithm::Gbm,
            vec![("n_estimators".into(), "200".into())],
        ),
        (
            "gbm-shallow",
            Algorithm::Gbm,
            vec![
                ("num_leaves".into(), "7".into()),
                ("learning_rate".into(), "0.05".into()),
            ],
        ),
        ("linear", Algorithm::Linear, vec![]),
    ];
    let mut fitted = Vec::new();
    for (name, alg, params) in candidates {
        let t0 = Instant::now();
        let p = learn::train(
            &train,
            d.target,
            &TrainOptions {
                algorithm: alg,
                params: params.clone(),
                problem: None,
            },
            &mut |_| {},
        )?;
        let secs = t0.elapsed().as_secs_f64();
        let pred = p.predict(&test)?;
        let k = p.labels.len();
        let tcol = test.column(d.target).ok_or("no target in test")?;
        let mut y = Vec::new();
        let mut keep = Vec::new();
        for i in 0..test.rows() {
            let v = if p.problem.is_classification() {
                tcol.str_at(i)
                    .and_then(|l| p.labels.iter().position(|x| *x == l))
                    .map(|c| c as f64)
            } else {
                tcol.f64_at(i)
            };
            if let Some(v) = v {
                y.push(v);
                keep.push(i);
            }
        }
        let predictions: Vec<f64> = if p.problem.is_classification() {
            keep.iter()
                .flat_map(|&i| pred.probabilities[i * k..(i + 1) * k].to_vec())
                .collect()
        } else {
            keep.iter().map(|&i| pred.values[i]).collect()
        };
        let eval_pred: Vec<f64> = if p.problem == ProblemType::Binary {
            predictions.chunks(2).map(|r| r[1]).collect()
        } else {
            predictions.clone()
        };
        let score = learn::evaluate(p.problem, k, &y, &eval_pred)
            .get(d.metric)
            .copied()
            .unwrap_or(f64::NAN);
        fitted.push((name, alg, params, secs, score, p, y, predictions, keep));
    }
    fitted.sort_by(|a, b| {
        if d.higher_is_better {
            b.4.total_cmp(&a.4)
        } else {
            a.4.total_cmp(&b.4)
        }
    });
    let leaderboard: Vec<LeaderboardRow> = fitted
        .iter()
        .enumerate()
        .map(|(i, f)| LeaderboardRow {
            rank: i + 1,
            name: f.0.to_string(),
            algorithm: f.1.name().to_string(),
            score: f.4,
            fit_seconds: f.3,
            params: f.2.clone(),
        })
        .collect();
    // the best gbm explains itself with TreeSHAP
    let (_, _, _, _, best_score, best, y, predictions, keep) = fitted
        .iter()
        .find(|f| f.1 == Algorithm::Gbm)
        .ok_or("no gbm candidate")?;
    let kept = test.take(keep);
    let contrib = best.contributions(&kept)?;
    let k = best.labels.len();
    // multiclass: the contributions to the predicted class's score
    let shap = ShapInput::from_contributions(
        &contrib,
        &kept,
        |i| {
            if contrib.outputs > 1 {
                predictions[i * k..(i + 1) * k]
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |x| x.0)
            } else {
                0
            }
        },
        5000,
    )?;
    let input = QualityInput {
        title: format!("{}.csv", d.name),
        problem: best.problem,
        target: d.target.to_string(),
        labels: best.labels.clone(),
        metric: d.metric.to_string(),
        higher_is_better: d.higher_is_better,
        best_score: *best_score,
        validation: format!("held-out test split ({} rows)", y.len()),
        leaderboard: leaderboard.clone(),
        y_true: y.clone(),
        predictions: predictions.clone(),
        feature_importance: best.importance(),
        shap: Some(shap),
        bias: None,
    };
    let t0 = Instant::now();
    let html = reports::quality_report(&input)?;
    std::fs::write(out.join(format!("quality_{}.html", d.name)), &html)?;
    eprintln!(
        "quality_{}.html: {} KiB in {:.2} s",
        d.name,
        html.len() / 1024,
        t0.elapsed().as_secs_f64()
    );

    let candidate = leaderboard
        .iter()
        .find(|r| r.algorithm == "gbm")
        .cloned()
        .ok_or("no gbm candidate")?;
    let spec = NotebookSpec {
        title: format!("Autopilot candidate for {}.csv", d.name),
        data_path: train_path.display().to_string(),
        target: d.target.to_string(),
        problem: best.problem,
        labels: best.labels.clone(),
        metric: d.metric.to_string(),
        validation: "held-out test split".into(),
        leaderboard,
        candidate,
        test_path: Some(test_path.display().to_string()),
        atelier: "atelier".into(),
        automl: Some(AutomlCall {
            time_budget: 10.0,
            max_candidates: 3,
            seed: 0,
            validation_path: None,
        }),
        http: Some(HttpCall {
            server_url: "http://127.0.0.1:5000".into(),
            method: "POST".into(),
            path: "/api/atelier/automl".into(),
            body: serde_json::json!({
                "dataset": train_path.file_name().map(|f| f.to_string_lossy().to_string()),
                "target": d.target,
                "metric": d.metric,
                "time_budget": 10.0,
                "max_candidates": 3,
            }),
        }),
    };
    let nb = reports::notebook(&spec);
    std::fs::write(
        out.join(format!("notebook_{}.ipynb", d.name)),
        serde_json::to_string_pretty(&nb)?,
    )?;
    Ok(())
}
