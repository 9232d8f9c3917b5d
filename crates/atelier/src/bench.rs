//! `atelier bench automl`: AutoML at a fixed budget on every benchmark
//! dataset (the repository's `datasets/`, with the split of its README),
//! scored on the test part and printed beside the peers' figures in
//! `datasets/anchors/automl.json` (LightGBM defaults, FLAML 60 s, AutoGluon 60 s).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct AutomlBench {
    /// The repository's `datasets/` folder (or a copy): the CSVs and `anchors/automl.json`.
    pub data: PathBuf,
    pub time_budget: f64,
    pub max_candidates: usize,
    pub datasets: Vec<String>,
    pub json_out: Option<PathBuf>,
}

const CASES: [(&str, &str, &str); 7] = [
    ("penguins", "species", "multiclass"),
    ("titanic", "Survived", "binary"),
    ("wine_quality", "quality", "multiclass"),
    ("california_housing", "median_house_value", "regression"),
    ("adult", "income", "binary"),
    ("bank_marketing", "y", "binary"),
    ("diamonds", "price", "regression"),
];

/// What to pass when the data folder lacks a file: an installed binary has no
/// repository beside it.
const PASS_DATA: &str = "pass --data DIR, a folder with the benchmark CSVs and \
    anchors/automl.json (the repository's datasets/ folder; the default `datasets` works from \
    the repository's root)";

/// `path` must be a readable file of the data folder.
fn need(path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!("{}: no such file; {PASS_DATA}", path.display());
    }
    Ok(())
}

fn anchors(data: &Path) -> anyhow::Result<serde_json::Value> {
    let p = data.join("anchors/automl.json");
    need(&p)?;
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("reading {}", p.display()))
}

fn anchor(a: &serde_json::Value, dataset: &str, method: &str, metric: &str) -> Option<f64> {
    a["results"]
        .as_array()?
        .iter()
        .find(|r| {
            r["dataset"] == dataset
                && (r["method_label"] == method
                    || (r["method_label"].is_null() && r["method"] == method))
        })
        .and_then(|r| r[metric].as_f64())
}

/// Test-set score of a pipeline: (metric name, value).
fn score(
    p: &learn::Pipeline,
    test: &tabular::Table,
    target: &str,
    task: &str,
) -> anyhow::Result<(&'static str, f64)> {
    let pred = p.predict(test)?;
    let col = test
        .column(target)
        .context("target column missing from the test part")?;
    let truth: Vec<String> = (0..test.rows())
        .map(|i| col.str_at(i).unwrap_or_default())
        .collect();
    Ok(match task {
        "regression" => {
            let y: Vec<f64> = (0..test.rows())
                .map(|i| col.f64_at(i).unwrap_or(f64::NAN))
                .collect();
            ("r2", learn::metrics::r2(&y, &pred.values))
        }
        "binary" => {
            let pos = pred.classes.get(1).cloned().unwrap_or_default();
            let y: Vec<usize> = truth.iter().map(|t| usize::from(*t == pos)).collect();
            let s: Vec<f64> = (0..test.rows())
                .map(|i| pred.probabilities[2 * i + 1])
                .collect();
            ("roc_auc", learn::metrics::roc_auc(&y, &s))
        }
        _ => {
            let right = pred
                .labels
                .iter()
                .zip(&truth)
                .filter(|(a, b)| a == b)
                .count();
            ("accuracy", right as f64 / truth.len().max(1) as f64)
        }
    })
}

pub fn automl(b: &AutomlBench) -> anyhow::Result<()> {
    let a = anchors(&b.data)?;
    let cases: Vec<_> = CASES
        .into_iter()
        .filter(|(name, _, _)| b.datasets.is_empty() || b.datasets.iter().any(|d| d == name))
        .collect();
    // every file is checked before the first (long) AutoML run
    for (name, _, _) in &cases {
        need(&b.data.join(format!("{name}.csv")))?;
    }
    let mut rows = Vec::new();
    println!(
        "AutoML at a {:.0} s budget on {} cores; test scores (AUC binary, accuracy multiclass, R² regression)\n",
        b.time_budget,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>7} {:>6}  verdict",
        "dataset", "atelier", "lgbm", "flaml60", "autogl60", "best peer", "time s", "cands"
    );
    for (name, target, task) in cases {
        let path = b.data.join(format!("{name}.csv"));
        let table = tabular::read_path(&path)?;
        let col = table.column(target).context("target missing")?;
        let labels: Vec<String> = (0..table.rows())
            .map(|i| col.str_at(i).unwrap_or_default())
            .collect();
        let (train_idx, test_idx) =
            tabular::split::train_test(table.rows(), (task != "regression").then_some(&labels[..]));
        let (train, test) = (table.take(&train_idx), table.take(&test_idx));
        let opts = automl::Options {
            time_budget: Duration::from_secs_f64(b.time_budget),
            max_candidates: b.max_candidates,
            ..Default::default()
        };
        let started = Instant::now();
        let out = automl::run(&train, target, &opts, &mut |_| {})?;
        let took = started.elapsed().as_secs_f64();
        let (metric, s) = score(&out.pipeline, &test, target, task)?;
        let lgbm = anchor(&a, name, "lgbm", metric);
        let flaml = anchor(&a, name, "flaml_60s", metric);
        let ag = anchor(&a, name, "autogluon_60s", metric);
        let best = [flaml, ag].into_iter().flatten().fold(f64::NAN, f64::max);
        let verdict = match (lgbm, best.is_nan()) {
            (Some(l), _) if s < l - 0.002 => "below LightGBM default",
            (_, false) if s >= best - 0.002 => "at or above the best peer",
            _ => "above LightGBM default",
        };
        let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
        println!(
            "{name:<20} {s:>9.4} {:>9} {:>9} {:>9} {:>9}  {took:>7.1} {:>6}  {verdict}",
            f(lgbm),
            f(flaml),
            f(ag),
            f((!best.is_nan()).then_some(best)),
            out.leaderboard.len()
        );
        rows.push(serde_json::json!({
            "dataset": name, "metric": metric, "atelier": s, "lgbm": lgbm, "flaml_60s": flaml,
            "autogluon_60s": ag, "seconds": took, "candidates": out.leaderboard.len(),
            "solution": out.pipeline.metadata.algorithm, "verdict": verdict,
        }));
        if took > b.time_budget * 1.1 + 1.0 {
            bail!(
                "{name}: AutoML took {took:.1} s for a {:.0} s budget",
                b.time_budget
            );
        }
    }
    if let Some(p) = &b.json_out {
        std::fs::write(p, serde_json::to_string_pretty(&rows)?)?;
        println!("\nwrote {}", p.display());
    }
    Ok(())
}
