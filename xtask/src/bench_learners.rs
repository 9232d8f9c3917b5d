//! `cargo xtask bench learners`: our gradient-boosting learner (`crates/gbm`)
//! against LightGBM, same split, same hyperparameters, measured in the same run.
//!
//! Ours runs through `crates/gbm/examples/compare.rs --bench`, LightGBM through
//! `bench/learners/lightgbm_run.py` in a venv made from
//! `bench/learners/requirements.txt`. Both print `key=value` lines (test
//! metric, training time, batch prediction rows/s, median single-row latency,
//! model size), parsed here by hand: this crate stays std-only. The two
//! runners are interleaved (best of N rounds, alternating which goes first) so
//! that load from other processes on a shared machine hits both alike, and the
//! report is ratios from this one run.

use crate::common::{
    self, cpu_model, ensure_venv, loadavg, nproc, root, run_checked, say, tail_str, target_dir,
};
use crate::json::json_str;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask bench learners [options]

Trains our GBM (crates/gbm, via `examples/compare.rs --bench`) and LightGBM
(Python package, in target/bench-venv-lgbm from bench/learners/requirements.txt)
on the repository's datasets with the split of datasets/README.md and the same
settings (200 trees, 31 leaves, learning rate 0.1, 255 bins), at 1 thread and at
all threads, and prints one table per thread setting: test metric, training
time, batch prediction rows/s, single-row latency and model size, with ratios,
then a verdict against the targets of issue 3. Also writes
target/bench-learners.json and target/bench-learners.md (the Markdown table for
the README; --quick writes target/bench-learners-quick.* instead).

options:
  --quick              penguins and titanic at 1 thread only (under a minute)
  --threads 1,2        thread settings [default: 1 and all cores]
  --datasets a,b       datasets (file stems in the data directory) [default: all]
  --repeat N           interleaved rounds per measurement, best of N [default 3]
  --python PATH        a Python with lightgbm, pandas, numpy and scikit-learn
                       (skips creating target/bench-venv-lgbm)
  --data DIR           dataset directory [default: datasets]
  --skip-build         use the existing compare example binary
  -h, --help           this text";

/// name, target column, task, expected test rows (datasets/README.md).
const DATASETS: &[(&str, &str, &str, usize)] = &[
    ("penguins", "species", "multiclass", 70),
    ("titanic", "Survived", "binary", 179),
    ("wine_quality", "quality", "multiclass", 1302),
    (
        "california_housing",
        "median_house_value",
        "regression",
        4128,
    ),
    ("adult", "income", "binary", 6513),
    ("bank_marketing", "y", "binary", 9043),
    ("diamonds", "price", "regression", 10788),
];
const QUICK_DATASETS: &[&str] = &["penguins", "titanic"];

const TREES: usize = 200;
const LEAVES: usize = 31;
const LEARNING_RATE: f64 = 0.1;
const BINS: usize = 255;

/// Targets of issue 3.
const METRIC_TOLERANCE: f64 = 0.002;
const TRAIN_RATIO_MAX: f64 = 1.2;
/// Rounds whose training times vary more than this (slowest / fastest) are marked noisy.
const NOISY_SPREAD: f64 = 1.5;

// ---------------------------------------------------------------- options

#[derive(Debug)]
struct Opts {
    quick: bool,
    threads: Vec<usize>,
    datasets: Vec<String>,
    repeat: usize,
    python: Option<PathBuf>,
    data: Option<PathBuf>,
    skip_build: bool,
}

fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        quick: false,
        threads: Vec::new(),
        datasets: Vec::new(),
        repeat: 3,
        python: None,
        data: None,
        skip_build: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match flag {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--quick" => o.quick = true,
            "--skip-build" => o.skip_build = true,
            "--python" => o.python = Some(PathBuf::from(value("--python")?)),
            "--data" => o.data = Some(PathBuf::from(value("--data")?)),
            "--datasets" => {
                o.datasets = parse_list(&value("--datasets")?);
                if o.datasets.is_empty() {
                    return Err("--datasets needs names like adult,titanic".into());
                }
            }
            "--threads" => {
                let v = value("--threads")?;
                o.threads = parse_list(&v)
                    .iter()
                    .map(|s| s.parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("--threads takes counts like 1,2: got '{v}'"))?;
                if o.threads.is_empty() {
                    return Err("--threads needs at least one count".into());
                }
            }
            "--repeat" => {
                let v = value("--repeat")?;
                o.repeat = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--repeat takes a positive count: got '{v}'"))?;
            }
            other => return Err(format!("unknown option '{other}'\n\n{USAGE}")),
        }
    }
    let cores = nproc().max(1);
    if o.threads.is_empty() {
        o.threads = if o.quick { vec![1] } else { vec![1, cores] };
    }
    // 0 means all cores, as in both libraries; name it explicitly.
    for t in &mut o.threads {
        if *t == 0 {
            *t = cores;
        }
    }
    o.threads.sort_unstable();
    o.threads.dedup();
    if o.datasets.is_empty() && o.quick {
        o.datasets = QUICK_DATASETS.iter().map(|s| s.to_string()).collect();
    }
    for d in &o.datasets {
        if spec(d).is_none() {
            let known: Vec<&str> = DATASETS.iter().map(|d| d.0).collect();
            return Err(format!(
                "unknown dataset '{d}' (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(Some(o))
}

fn spec(name: &str) -> Option<(&'static str, &'static str, &'static str, usize)> {
    DATASETS.iter().copied().find(|d| d.0 == name)
}

// ---------------------------------------------------------------- set-up

/// Build the compare example and return its path.
fn build_ours(root: &Path, skip: bool) -> Result<PathBuf, String> {
    let bin = target_dir(root).join("release/examples/compare");
    if !skip {
        say("cargo build --release -p gbm --example compare");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run_checked(
            Command::new(cargo).current_dir(root).args([
                "build",
                "--release",
                "-p",
                "gbm",
                "--example",
                "compare",
            ]),
            "building crates/gbm/examples/compare.rs",
        )?;
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing (run without --skip-build)",
            bin.display()
        ))
    }
}

/// Datasets to run: the requested ones, or every known CSV in the directory.
fn pick_datasets(dir: &Path, requested: &[String]) -> Result<Vec<&'static str>, String> {
    let mut picked = Vec::new();
    if requested.is_empty() {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let mut unknown = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".csv")
                && spec(stem).is_none()
            {
                unknown.push(name);
            }
        }
        unknown.sort();
        for u in unknown {
            say(&format!("skipping {u}: no target/task known for it"));
        }
        for d in DATASETS {
            if dir.join(format!("{}.csv", d.0)).exists() {
                picked.push(d.0);
            }
        }
    } else {
        for r in requested {
            let d = spec(r).expect("checked in parse_args").0;
            if !dir.join(format!("{d}.csv")).exists() {
                return Err(format!("{}/{d}.csv does not exist", dir.display()));
            }
            if !picked.contains(&d) {
                picked.push(d);
            }
        }
    }
    if picked.is_empty() {
        return Err(format!("no benchmark datasets in {}", dir.display()));
    }
    Ok(picked)
}

// ---------------------------------------------------------------- one run

/// What one runner reports for one dataset at one thread setting.
#[derive(Clone, Debug, Default)]
struct Measure {
    library: String,
    metric_name: String,
    metric: f64,
    logloss: f64,
    n_train: usize,
    n_test: usize,
    trees: usize,
    train_s: f64,
    predict_rows_per_s: f64,
    single_row_us: f64,
    single_row_numpy_us: Option<f64>,
    model_bytes: usize,
    versions: Option<String>,
    /// Training time of every round, in run order.
    train_runs: Vec<f64>,
    /// Largest change of the test metric between rounds (0 when deterministic).
    metric_spread: f64,
}

fn parse_kv(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.is_empty() && !k.contains(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn parse_measure(out: &str) -> Result<Measure, String> {
    let kv = parse_kv(out);
    let get = |k: &str| {
        kv.get(k)
            .ok_or_else(|| format!("no '{k}=' in the output:\n{}", tail_str(out)))
    };
    let num = |k: &str| -> Result<f64, String> {
        let v = get(k)?;
        match v.as_str() {
            "nan" | "NaN" => Ok(f64::NAN),
            _ => v.parse().map_err(|_| format!("'{k}={v}' is not a number")),
        }
    };
    let int = |k: &str| -> Result<usize, String> {
        let v = get(k)?;
        v.parse().map_err(|_| format!("'{k}={v}' is not a count"))
    };
    let train_s = num("train_s")?;
    Ok(Measure {
        library: get("library")?.clone(),
        metric_name: get("metric_name")?.clone(),
        metric: num("metric")?,
        logloss: num("logloss")?,
        n_train: int("n_train")?,
        n_test: int("n_test")?,
        trees: int("trees")?,
        train_s,
        predict_rows_per_s: num("predict_rows_per_s")?,
        single_row_us: num("single_row_us")?,
        single_row_numpy_us: kv
            .contains_key("single_row_numpy_us")
            .then(|| num("single_row_numpy_us"))
            .transpose()?,
        model_bytes: int("model_bytes")?,
        versions: kv.get("versions").cloned(),
        train_runs: vec![train_s],
        metric_spread: 0.0,
    })
}

/// Best of two rounds: fastest times, highest throughput.
fn merge(best: &mut Option<Measure>, m: Measure) {
    let Some(b) = best else {
        *best = Some(m);
        return;
    };
    // The first round's metric is reported; LightGBM is not bit-deterministic with
    // threads (and picks col-/row-wise histograms by timing), so record any spread.
    b.metric_spread = b.metric_spread.max((b.metric - m.metric).abs());
    b.train_s = b.train_s.min(m.train_s);
    b.train_runs.push(m.train_s);
    b.predict_rows_per_s = b.predict_rows_per_s.max(m.predict_rows_per_s);
    b.single_row_us = b.single_row_us.min(m.single_row_us);
    if let (Some(x), Some(y)) = (b.single_row_numpy_us, m.single_row_numpy_us) {
        b.single_row_numpy_us = Some(x.min(y));
    }
}

fn output_of(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: could not start {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}",
            out.status,
            tail_str(&String::from_utf8_lossy(&out.stderr))
        ))
    }
}

struct Runners {
    ours: PathBuf,
    python: PathBuf,
    script: PathBuf,
    data: PathBuf,
}

impl Runners {
    fn ours(&self, dataset: &str, threads: usize) -> Result<Measure, String> {
        let csv = self.data.join(format!("{dataset}.csv"));
        let out = output_of(
            Command::new(&self.ours).arg(&csv).args([
                "--threads".to_string(),
                threads.to_string(),
                "--trees".into(),
                TREES.to_string(),
                "--leaves".into(),
                LEAVES.to_string(),
                "--lr".into(),
                LEARNING_RATE.to_string(),
                "--bins".into(),
                BINS.to_string(),
                "--bench".into(),
            ]),
            &format!("gbm compare on {dataset}"),
        )?;
        parse_measure(&out).map_err(|e| format!("gbm compare on {dataset}: {e}"))
    }

    fn lightgbm(&self, dataset: &str, threads: usize) -> Result<Measure, String> {
        let (_, target, task, _) = spec(dataset).expect("known dataset");
        let csv = self.data.join(format!("{dataset}.csv"));
        let out = output_of(
            Command::new(&self.python)
                .arg(&self.script)
                .arg(&csv)
                .args([
                    "--target".to_string(),
                    target.into(),
                    "--task".into(),
                    task.into(),
                    "--threads".into(),
                    threads.to_string(),
                    "--trees".into(),
                    TREES.to_string(),
                    "--leaves".into(),
                    LEAVES.to_string(),
                    "--lr".into(),
                    LEARNING_RATE.to_string(),
                    "--bins".into(),
                    BINS.to_string(),
                ])
                .env("PYTHONUNBUFFERED", "1")
                .env("PYTHONDONTWRITEBYTECODE", "1"),
            &format!("lightgbm_run.py on {dataset}"),
        )?;
        parse_measure(&out).map_err(|e| format!("lightgbm_run.py on {dataset}: {e}"))
    }
}

/// Both libraries on one dataset at one thread setting.
#[derive(Clone, Debug)]
struct Pair {
    dataset: String,
    task: String,
    threads: usize,
    ours: Measure,
    lgbm: Measure,
}

impl Pair {
    fn delta(&self) -> f64 {
        self.ours.metric - self.lgbm.metric
    }
    fn train_ratio(&self) -> f64 {
        self.ours.train_s / self.lgbm.train_s
    }
    fn predict_ratio(&self) -> f64 {
        self.ours.predict_rows_per_s / self.lgbm.predict_rows_per_s
    }
    fn single_speedup(&self) -> f64 {
        self.lgbm.single_row_us / self.ours.single_row_us
    }
    /// The training times of the rounds varied by more than `NOISY_SPREAD`× for either library.
    fn noisy(&self) -> bool {
        self.ours.train_spread() > NOISY_SPREAD || self.lgbm.train_spread() > NOISY_SPREAD
    }
}

impl Measure {
    /// Slowest over fastest training time of the rounds.
    fn train_spread(&self) -> f64 {
        let max = self.train_runs.iter().copied().fold(0.0, f64::max);
        max / self.train_s
    }
}

fn measure_pair(r: &Runners, dataset: &str, threads: usize, repeat: usize) -> Result<Pair, String> {
    let (_, _, task, expected_test) = spec(dataset).expect("known dataset");
    let mut ours = None;
    let mut lgbm = None;
    for round in 0..repeat {
        // Alternate which library goes first so neither always follows the other.
        for first_ours in [round % 2 == 0, round % 2 == 1] {
            if first_ours {
                merge(&mut ours, r.ours(dataset, threads)?);
            } else {
                merge(&mut lgbm, r.lightgbm(dataset, threads)?);
            }
        }
        let (o, l) = (ours.as_ref().unwrap(), lgbm.as_ref().unwrap());
        say(&format!(
            "  {dataset} threads={threads} round {}/{repeat}: train {:.3} s / {:.3} s",
            round + 1,
            o.train_runs.last().unwrap(),
            l.train_runs.last().unwrap()
        ));
    }
    let (ours, lgbm) = (ours.unwrap(), lgbm.unwrap());
    if (ours.n_train, ours.n_test) != (lgbm.n_train, lgbm.n_test) {
        return Err(format!(
            "{dataset}: the runners split differently (train/test {}/{} vs {}/{})",
            ours.n_train, ours.n_test, lgbm.n_train, lgbm.n_test
        ));
    }
    if ours.n_test != expected_test {
        return Err(format!(
            "{dataset}: {} test rows, datasets/README.md says {expected_test}",
            ours.n_test
        ));
    }
    if ours.metric_name != lgbm.metric_name {
        return Err(format!(
            "{dataset}: metrics differ ({} vs {})",
            ours.metric_name, lgbm.metric_name
        ));
    }
    Ok(Pair {
        dataset: dataset.to_string(),
        task: task.to_string(),
        threads,
        ours,
        lgbm,
    })
}

// ---------------------------------------------------------------- formatting

fn metric_label(name: &str) -> &str {
    match name {
        "auc" => "AUC",
        "accuracy" => "accuracy",
        "r2" => "R²",
        other => other,
    }
}

fn fmt_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{s:.3}")
    } else if s < 10.0 {
        format!("{s:.2}")
    } else {
        format!("{s:.1}")
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.0}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn fmt_us(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn fmt_delta(d: f64) -> String {
    if d.abs() < 5e-5 {
        "0.0000".into()
    } else {
        format!("{d:+.4}")
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

fn kib(bytes: usize) -> String {
    format!("{:.0}", bytes as f64 / 1024.0)
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// A plain-text table: a group header line, a column header line, rows.
/// The first column is left-aligned, the others right-aligned.
fn render_text(groups: &[&str], heads: &[&str], rows: &[Vec<String>]) -> String {
    let n = heads.len();
    let mut w: Vec<usize> = heads.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(width(c));
        }
    }
    // A group label spans its column and the unlabelled ones after it.
    let mut spans = Vec::new();
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && groups[j].is_empty() {
            j += 1;
        }
        spans.push((i, j));
        i = j;
    }
    for &(a, b) in &spans {
        let span: usize = w[a..b].iter().sum::<usize>() + 2 * (b - a - 1);
        let g = width(groups[a]);
        if g > span {
            w[b - 1] += g - span;
        }
    }
    let span_width = |a: usize, b: usize| w[a..b].iter().sum::<usize>() + 2 * (b - a - 1);
    let mut out = String::new();
    let mut line = String::new();
    for (k, &(a, b)) in spans.iter().enumerate() {
        if k > 0 {
            line.push_str(" │ ");
        }
        let g = groups[a];
        let pad = " ".repeat(span_width(a, b) - width(g));
        if a == 0 {
            let _ = write!(line, "{g}{pad}");
        } else {
            let _ = write!(line, "{pad}{g}");
        }
    }
    out.push_str(&line);
    out.push('\n');
    let cell_line = |cells: &[String]| {
        let mut line = String::new();
        for (k, &(a, b)) in spans.iter().enumerate() {
            if k > 0 {
                line.push_str(" │ ");
            }
            for i in a..b {
                if i > a {
                    line.push_str("  ");
                }
                let c = &cells[i];
                let pad = " ".repeat(w[i] - width(c));
                if i == 0 {
                    let _ = write!(line, "{c}{pad}");
                } else {
                    let _ = write!(line, "{pad}{c}");
                }
            }
        }
        line
    };
    let heads: Vec<String> = heads.iter().map(|h| h.to_string()).collect();
    let head_line = cell_line(&heads);
    out.push_str(&head_line);
    out.push('\n');
    out.push_str(&"─".repeat(width(&head_line)));
    out.push('\n');
    for r in rows {
        out.push_str(&cell_line(r));
        out.push('\n');
    }
    out
}

const TEXT_GROUPS: &[&str] = &[
    "",
    "",
    "test metric",
    "",
    "",
    "train s",
    "",
    "",
    "predict rows/s",
    "",
    "",
    "single-row µs",
    "",
    "",
    "model KiB",
    "",
];
const TEXT_HEADS: &[&str] = &[
    "dataset", "metric", "ours", "LightGBM", "Δ", "ours", "LightGBM", "ratio", "ours", "LightGBM",
    "ratio", "ours", "LightGBM", "(numpy)", "ours", "LightGBM",
];

fn text_row(p: &Pair) -> Vec<String> {
    vec![
        p.dataset.clone(),
        metric_label(&p.ours.metric_name).into(),
        format!("{:.4}", p.ours.metric),
        format!("{:.4}", p.lgbm.metric),
        fmt_delta(p.delta()),
        fmt_secs(p.ours.train_s),
        fmt_secs(p.lgbm.train_s),
        format!("{}{}", fmt_ratio(p.train_ratio()), noisy_mark(p)),
        fmt_rate(p.ours.predict_rows_per_s),
        fmt_rate(p.lgbm.predict_rows_per_s),
        fmt_ratio(p.predict_ratio()),
        fmt_us(p.ours.single_row_us),
        fmt_us(p.lgbm.single_row_us),
        p.lgbm
            .single_row_numpy_us
            .map_or("-".into(), |u| format!("({})", fmt_us(u))),
        kib(p.ours.model_bytes),
        kib(p.lgbm.model_bytes),
    ]
}

fn noisy_mark(p: &Pair) -> &'static str {
    if p.noisy() { "†" } else { "" }
}

fn md_row(p: &Pair) -> String {
    format!(
        "| {} | {} | {:.4} / {:.4} ({}) | {} / {} ({}){} | {} / {} ({}) | {} / {}{} | {} / {} |",
        p.dataset,
        metric_label(&p.ours.metric_name),
        p.ours.metric,
        p.lgbm.metric,
        fmt_delta(p.delta()).replace('-', "−"),
        fmt_secs(p.ours.train_s),
        fmt_secs(p.lgbm.train_s),
        fmt_ratio(p.train_ratio()),
        noisy_mark(p),
        fmt_rate(p.ours.predict_rows_per_s),
        fmt_rate(p.lgbm.predict_rows_per_s),
        fmt_ratio(p.predict_ratio()),
        fmt_us(p.ours.single_row_us),
        fmt_us(p.lgbm.single_row_us),
        p.lgbm
            .single_row_numpy_us
            .map_or(String::new(), |u| format!(" ({})", fmt_us(u))),
        kib(p.ours.model_bytes),
        kib(p.lgbm.model_bytes),
    )
}

const MD_HEAD: &str = "| dataset | metric | ours / LightGBM (Δ) | train s: ours / LightGBM (ratio) | predict rows/s: ours / LightGBM (ratio) | single-row µs: ours / LightGBM (numpy input) | model KiB: ours / LightGBM |\n|---|---|---|---|---|---|---|";

// ---------------------------------------------------------------- verdict

struct Check {
    name: String,
    pass: Option<bool>,
    detail: String,
}

fn verdict(pairs: &[Pair], failed: &[(String, usize, String)]) -> Vec<Check> {
    let mut checks = Vec::new();

    let bad: Vec<&Pair> = pairs
        .iter()
        .filter(|p| p.delta() < -METRIC_TOLERANCE - 1e-12)
        .collect();
    let worst = pairs.iter().min_by(|a, b| a.delta().total_cmp(&b.delta()));
    checks.push(Check {
        name: format!("metric ≥ LightGBM − {METRIC_TOLERANCE}"),
        pass: (!pairs.is_empty()).then_some(bad.is_empty()),
        detail: match (bad.is_empty(), worst) {
            (_, None) => "not measured".into(),
            (true, Some(w)) => format!(
                "worst Δ {} ({}, {} thr)",
                fmt_delta(w.delta()),
                w.dataset,
                w.threads
            ),
            (false, _) => bad
                .iter()
                .map(|p| format!("{} {} thr Δ {}", p.dataset, p.threads, fmt_delta(p.delta())))
                .collect::<Vec<_>>()
                .join(", "),
        },
    });

    let one: Vec<&Pair> = pairs.iter().filter(|p| p.threads == 1).collect();
    let slow: Vec<&&Pair> = one
        .iter()
        .filter(|p| p.train_ratio() > TRAIN_RATIO_MAX)
        .collect();
    let max = one
        .iter()
        .max_by(|a, b| a.train_ratio().total_cmp(&b.train_ratio()));
    checks.push(Check {
        name: format!("train time ≤ {TRAIN_RATIO_MAX}× LightGBM at 1 thread"),
        pass: (!one.is_empty()).then_some(slow.is_empty()),
        detail: match (slow.is_empty(), max) {
            (_, None) => "not measured (no 1-thread run)".into(),
            (true, Some(m)) => format!("max {} ({})", fmt_ratio(m.train_ratio()), m.dataset),
            (false, _) => slow
                .iter()
                .map(|p| format!("{} {}", p.dataset, fmt_ratio(p.train_ratio())))
                .collect::<Vec<_>>()
                .join(", "),
        },
    });

    let lagging: Vec<&Pair> = pairs.iter().filter(|p| p.single_speedup() <= 1.0).collect();
    let min = pairs
        .iter()
        .min_by(|a, b| a.single_speedup().total_cmp(&b.single_speedup()));
    let numpy_min = pairs
        .iter()
        .filter_map(|p| {
            p.lgbm
                .single_row_numpy_us
                .map(|u| (u / p.ours.single_row_us, p))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    checks.push(Check {
        name: "single-row faster than LightGBM's Python predict".into(),
        pass: (!pairs.is_empty()).then_some(lagging.is_empty()),
        detail: match (lagging.is_empty(), min) {
            (_, None) => "not measured".into(),
            (true, Some(m)) => {
                let mut d = format!(
                    "≥ {} faster ({}); vs numpy input ≥ {}",
                    fmt_ratio(m.single_speedup()),
                    m.dataset,
                    numpy_min.map_or("-".into(), |(r, _)| fmt_ratio(r))
                );
                if let Some((_, p)) = numpy_min {
                    let _ = write!(d, " ({})", p.dataset);
                }
                d
            }
            (false, _) => lagging
                .iter()
                .map(|p| {
                    format!(
                        "{} {} thr {}",
                        p.dataset,
                        p.threads,
                        fmt_ratio(p.single_speedup())
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        },
    });

    if !failed.is_empty() {
        checks.push(Check {
            name: "all runs completed".into(),
            pass: Some(false),
            detail: failed
                .iter()
                .map(|(d, t, _)| format!("{d} at {t} thr failed"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    checks
}

fn verdict_line(checks: &[Check]) -> String {
    let all = checks.iter().all(|c| c.pass == Some(true));
    let parts: Vec<String> = checks
        .iter()
        .map(|c| {
            let s = match c.pass {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "n/a",
            };
            format!("{} {s} ({})", c.name, c.detail)
        })
        .collect();
    format!(
        "verdict: {} — {}",
        if all {
            "all targets met"
        } else {
            "targets NOT all met"
        },
        parts.join("; ")
    )
}

// ---------------------------------------------------------------- JSON

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

fn json_measure(m: &Measure) -> String {
    let mut o = String::from("{");
    let _ = write!(
        o,
        "\"library\": {}, \"metric\": {}, \"logloss\": {}, \"trees\": {}, \"train_s\": {}, \"train_s_runs\": [{}], \"predict_rows_per_s\": {}, \"single_row_us\": {}",
        json_str(&m.library),
        json_num(m.metric),
        json_num(m.logloss),
        m.trees,
        json_num(m.train_s),
        m.train_runs
            .iter()
            .map(|&t| json_num(t))
            .collect::<Vec<_>>()
            .join(", "),
        json_num(m.predict_rows_per_s),
        json_num(m.single_row_us),
    );
    if let Some(u) = m.single_row_numpy_us {
        let _ = write!(o, ", \"single_row_numpy_us\": {}", json_num(u));
    }
    let _ = write!(
        o,
        ", \"metric_spread\": {}, \"model_bytes\": {}}}",
        json_num(m.metric_spread),
        m.model_bytes
    );
    o
}

fn write_json(
    path: &Path,
    meta: &[(&str, String)],
    pairs: &[Pair],
    failed: &[(String, usize, String)],
    checks: &[Check],
) -> Result<(), String> {
    let mut o = String::from("{\n \"meta\": {\n");
    let meta_lines: Vec<String> = meta
        .iter()
        .map(|(k, v)| format!("  {}: {}", json_str(k), v))
        .collect();
    o.push_str(&meta_lines.join(",\n"));
    o.push_str("\n },\n \"results\": [\n");
    let rows: Vec<String> = pairs
        .iter()
        .map(|p| {
            format!(
                "  {{\"dataset\": {}, \"task\": {}, \"threads\": {}, \"metric_name\": {}, \"n_train\": {}, \"n_test\": {}, \"metric_delta\": {}, \"train_ratio\": {}, \"predict_ratio\": {}, \"single_row_speedup\": {}, \"noisy\": {},\n   \"gbm\": {},\n   \"lightgbm\": {}}}",
                json_str(&p.dataset),
                json_str(&p.task),
                p.threads,
                json_str(&p.ours.metric_name),
                p.ours.n_train,
                p.ours.n_test,
                json_num(p.delta()),
                json_num(p.train_ratio()),
                json_num(p.predict_ratio()),
                json_num(p.single_speedup()),
                p.noisy(),
                json_measure(&p.ours),
                json_measure(&p.lgbm),
            )
        })
        .collect();
    o.push_str(&rows.join(",\n"));
    o.push_str("\n ],\n \"failed\": [");
    let f: Vec<String> = failed
        .iter()
        .map(|(d, t, e)| {
            format!(
                "{{\"dataset\": {}, \"threads\": {t}, \"error\": {}}}",
                json_str(d),
                json_str(e)
            )
        })
        .collect();
    o.push_str(&f.join(", "));
    o.push_str("],\n \"verdict\": [\n");
    let v: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "  {{\"target\": {}, \"pass\": {}, \"detail\": {}}}",
                json_str(&c.name),
                c.pass.map_or("null".into(), |b| b.to_string()),
                json_str(&c.detail)
            )
        })
        .collect();
    o.push_str(&v.join(",\n"));
    o.push_str("\n ]\n}\n");
    std::fs::write(path, o).map_err(|e| format!("writing {}: {e}", path.display()))
}

// ---------------------------------------------------------------- misc

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let (y, m, d, h, mi, sec) = common::utc_now();
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{sec:02}Z")
}

// ---------------------------------------------------------------- the benchmark

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(opts) = parse_args(args)? else {
        return Ok(());
    };
    let started = Instant::now();
    let root = root();
    let data = opts.data.clone().unwrap_or_else(|| root.join("datasets"));
    let data = data.canonicalize().unwrap_or(data);
    let datasets = pick_datasets(&data, &opts.datasets)?;

    let ours = build_ours(&root, opts.skip_build)?;
    let python = match &opts.python {
        Some(p) => p.clone(),
        None => ensure_venv(
            &target_dir(&root).join("bench-venv-lgbm"),
            &root.join("bench/learners/requirements.txt"),
        )?,
    };
    let runners = Runners {
        ours,
        python,
        script: root.join("bench/learners/lightgbm_run.py"),
        data: data.clone(),
    };
    let load_start = loadavg();
    let t_measure = Instant::now();
    say(&format!(
        "{} dataset(s) × threads {:?} × {} interleaved round(s); load average {load_start}",
        datasets.len(),
        opts.threads,
        opts.repeat
    ));

    let mut pairs = Vec::new();
    let mut failed: Vec<(String, usize, String)> = Vec::new();
    for &t in &opts.threads {
        for d in &datasets {
            match measure_pair(&runners, d, t, opts.repeat) {
                Ok(p) => pairs.push(p),
                Err(e) => {
                    say(&format!("{d} at {t} thread(s) FAILED: {e}"));
                    failed.push((d.to_string(), t, e));
                }
            }
        }
    }
    let measure_s = t_measure.elapsed().as_secs_f64();
    let load_end = loadavg();
    let versions = pairs
        .iter()
        .find_map(|p| p.lgbm.versions.clone())
        .unwrap_or_else(|| "?".into());

    // ---- report
    let checks = verdict(&pairs, &failed);
    let verdict = verdict_line(&checks);
    let machine = format!("{} × {}", nproc(), cpu_model());
    let settings = format!(
        "{TREES} trees, {LEAVES} leaves, learning rate {LEARNING_RATE}, {BINS} bins, otherwise defaults; best of {} interleaved runs",
        opts.repeat
    );
    let legend = "ratios are ours / LightGBM (train < 1 and predict > 1: ours faster). Train = binning + boosting, \
not CSV parsing. Single-row: median of 5000 `predict_row` calls (ours) vs LightGBM `Booster.predict` on a one-row \
DataFrame (in parentheses: on a one-row numpy array).";

    let mut notes = Vec::new();
    if pairs.iter().any(Pair::noisy) {
        notes.push(format!(
            "† the training times of the {} rounds varied by more than {NOISY_SPREAD}× \
(other processes competing for the CPU): a rough ratio.",
            opts.repeat
        ));
    }
    let cores = nproc();
    let busy = [&load_start, &load_end].iter().any(|l| {
        l.split_whitespace()
            .next()
            .and_then(|x| x.parse::<f64>().ok())
            .is_some_and(|x| x > cores as f64 * 0.75)
    });
    if busy && opts.threads.iter().any(|&t| t > 1) {
        notes.push(format!(
            "Note: the load average ({load_start} → {load_end}) was high for {cores} cores, so \
multi-threaded times mostly measure how each library copes with a busy CPU. LightGBM's OpenMP \
threads synchronise several times per tree, and a thread that is not scheduled stalls the \
others, so 2-thread LightGBM can be many times slower than at 1 thread."
        ));
    }
    let mut text = String::new();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Measured by `cargo xtask bench learners` on {} ({machine}; load average {load_start} → {load_end}), {versions}. \
Same split (datasets/README.md) and settings: {settings}.\n",
        utc_now()
    );
    for &t in &opts.threads {
        let rows: Vec<&Pair> = pairs.iter().filter(|p| p.threads == t).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            text,
            "\n{} thread{} — {settings}",
            t,
            if t == 1 { "" } else { "s" }
        );
        let cells: Vec<Vec<String>> = rows.iter().map(|p| text_row(p)).collect();
        text.push_str(&render_text(TEXT_GROUPS, TEXT_HEADS, &cells));
        let _ = writeln!(md, "**{t} thread{}**\n", if t == 1 { "" } else { "s" });
        md.push_str(MD_HEAD);
        md.push('\n');
        for p in &rows {
            md.push_str(&md_row(p));
            md.push('\n');
        }
        md.push('\n');
    }
    let note_text: String = notes.iter().map(|n| format!("{n}\n")).collect();
    let _ = writeln!(
        text,
        "\n{legend}\n{note_text}machine: {machine}; load average {load_start} → {load_end}; {versions}\n\n{verdict}"
    );
    let note_md: String = notes.iter().map(|n| format!("{n}\n\n")).collect();
    let _ = writeln!(md, "{legend}\n\n{note_md}{verdict}");
    print!("{text}");

    let target = target_dir(&root);
    // A quick run must not replace the full table the README is pasted from.
    let stem = if opts.quick {
        "bench-learners-quick"
    } else {
        "bench-learners"
    };
    let json_path = target.join(format!("{stem}.json"));
    let md_path = target.join(format!("{stem}.md"));
    let meta = vec![
        ("generated", json_str(&utc_now())),
        (
            "command",
            json_str(format!("cargo xtask bench learners {}", args.join(" ")).trim_end()),
        ),
        ("machine", json_str(&machine)),
        ("load_average_start", json_str(&load_start)),
        ("load_average_end", json_str(&load_end)),
        ("versions", json_str(&versions)),
        ("trees", TREES.to_string()),
        ("num_leaves", LEAVES.to_string()),
        ("learning_rate", json_num(LEARNING_RATE)),
        ("max_bin", BINS.to_string()),
        ("repeat", opts.repeat.to_string()),
        (
            "threads",
            format!(
                "[{}]",
                opts.threads
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ("measure_s", json_num((measure_s * 10.0).round() / 10.0)),
        ("legend", json_str(legend)),
    ];
    write_json(&json_path, &meta, &pairs, &failed, &checks)?;
    std::fs::write(&md_path, &md).map_err(|e| format!("writing {}: {e}", md_path.display()))?;
    println!(
        "\nwrote {} and {} ({:.0} s in all, {:.0} s measuring)",
        json_path.display(),
        md_path.display(),
        started.elapsed().as_secs_f64(),
        measure_s
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} measurement(s) failed (see above)",
            failed.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options() {
        let o = parse_args(&args("--quick")).unwrap().unwrap();
        assert_eq!(o.threads, vec![1]);
        assert_eq!(o.datasets, vec!["penguins", "titanic"]);
        assert_eq!(o.repeat, 3);
        let o = parse_args(&args(
            "--threads 2,1,2 --datasets adult --repeat=5 --python /x/py",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(o.threads, vec![1, 2]);
        assert_eq!(o.datasets, vec!["adult"]);
        assert_eq!(o.repeat, 5);
        assert_eq!(o.python, Some(PathBuf::from("/x/py")));
        assert!(parse_args(&args("--datasets nope")).is_err());
        assert!(parse_args(&args("--repeat 0")).is_err());
        assert!(parse_args(&args("--threads")).is_err());
        assert!(parse_args(&args("--bogus")).is_err());
        assert!(parse_args(&args("--help")).unwrap().is_none());
    }

    const OUT: &str = "dataset=titanic\ntask=binary\nlibrary=gbm\nthreads=1\nn_train=712\nn_test=179\n\
n_features=11\ntrees=200\nmetric_name=auc\nmetric=0.870751\nlogloss=0.611607\ntrain_s=0.033383\n\
predict_rows_per_s=98894.2\nsingle_row_us=10.526\nsingle_row_calls=5000\nmodel_bytes=595703\n";

    #[test]
    fn parses_runner_output() {
        let m = parse_measure(OUT).unwrap();
        assert_eq!(m.metric_name, "auc");
        assert_eq!((m.n_train, m.n_test, m.trees), (712, 179, 200));
        assert!((m.train_s - 0.033383).abs() < 1e-12);
        assert_eq!(m.model_bytes, 595_703);
        assert_eq!(m.single_row_numpy_us, None);
        let lgb =
            format!("{OUT}single_row_numpy_us=26.7\nlogloss=nan\nversions=lightgbm 4.7.0, x=1\n");
        let m = parse_measure(&lgb).unwrap();
        assert_eq!(m.single_row_numpy_us, Some(26.7));
        assert!(m.logloss.is_nan());
        assert_eq!(m.versions.as_deref(), Some("lightgbm 4.7.0, x=1"));
        assert!(parse_measure("metric=1\n").is_err());
    }

    #[test]
    fn merges_best_of_rounds() {
        let a = parse_measure(OUT).unwrap();
        let mut b = a.clone();
        b.train_s = 0.02;
        b.train_runs = vec![0.02];
        b.single_row_us = 12.0;
        b.predict_rows_per_s = 2e5;
        let mut best = None;
        merge(&mut best, a.clone());
        merge(&mut best, b);
        let best_m = best.clone().unwrap();
        assert_eq!(best_m.train_s, 0.02);
        assert_eq!(best_m.train_runs, vec![0.033383, 0.02]);
        assert_eq!(best_m.single_row_us, 10.526);
        assert_eq!(best_m.predict_rows_per_s, 2e5);
        let mut c = a;
        c.metric += 0.01;
        merge(&mut best, c);
        let best = best.unwrap();
        assert!((best.metric_spread - 0.01).abs() < 1e-9);
        assert_eq!(best.metric, 0.870751);
    }

    #[test]
    fn verdict_and_formatting() {
        let ours = parse_measure(OUT).unwrap();
        let mut lgbm = ours.clone();
        lgbm.metric = 0.8631;
        lgbm.train_s = 0.044;
        lgbm.single_row_us = 1100.0;
        lgbm.single_row_numpy_us = Some(26.0);
        let p = Pair {
            dataset: "titanic".into(),
            task: "binary".into(),
            threads: 1,
            ours,
            lgbm,
        };
        let checks = verdict(std::slice::from_ref(&p), &[]);
        assert!(checks.iter().all(|c| c.pass == Some(true)));
        assert!(verdict_line(&checks).contains("all targets met"));
        let mut slow = p.clone();
        slow.ours.train_s = 0.06;
        slow.ours.metric = 0.86;
        let checks = verdict(&[slow], &[]);
        assert_eq!(checks[0].pass, Some(false));
        assert_eq!(checks[1].pass, Some(false));
        assert!(verdict_line(&checks).contains("NOT"));
        assert!(!p.noisy());
        let mut noisy = p.clone();
        noisy.lgbm.train_runs = vec![0.044, 0.2];
        assert!(noisy.noisy());
        assert!(text_row(&noisy)[7].ends_with('†'));

        assert_eq!(fmt_delta(0.00761), "+0.0076");
        assert_eq!(fmt_delta(-0.00001), "0.0000");
        assert_eq!(fmt_rate(98_894.2), "99k");
        assert_eq!(fmt_rate(1_234_567.0), "1.23M");
        assert_eq!(fmt_ratio(0.7587), "0.76×");
        assert!(md_row(&p).starts_with("| titanic | AUC | 0.8708 / 0.8631 (+0.0077) |"));
        let t = render_text(TEXT_GROUPS, TEXT_HEADS, &[text_row(&p)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        // every line of the table is as wide as the header line
        assert_eq!(width(lines[1]), width(lines[3]));
        assert_eq!(width(lines[0]), width(lines[1]));
    }

    #[test]
    fn utc_format() {
        let s = utc_now();
        assert_eq!(s.len(), 20);
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }

    #[test]
    fn dataset_table_matches_readme_sizes() {
        let total: usize = DATASETS.iter().map(|d| d.3).sum();
        assert_eq!(DATASETS.len(), 7);
        assert_eq!(total, 70 + 179 + 1302 + 4128 + 6513 + 9043 + 10788);
    }
}
