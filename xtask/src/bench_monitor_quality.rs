//! `cargo xtask bench monitor-quality`: how often Model Monitor's default
//! drift verdict is right, beside Evidently's `DataDriftPreset` on the same
//! windows in the same run.
//!
//! `bench/monitor/quality.py` draws random clean splits of every dataset in
//! `datasets/` (current windows of 200, 1,000 and 10,000 rows, the rest as
//! the reference), plants shifts into some (a numeric column moved by 0.5
//! standard deviations; one category's share raised by 15 points), runs the
//! release binary's `monitor baseline` + `monitor check` and Evidently on
//! each window and writes one JSON line per check. This module counts:
//! the false-alarm rate (clean checks with any drifted column) and the
//! detection rate (shifted checks whose shifted column is flagged), per
//! window size, prints the table and rewrites the README's
//! `bench:monitor-quality` block.

use crate::common::{ensure_venv, nproc, release_atelier, root, say, target_dir, update_readme};
use crate::json::Json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const USAGE: &str = "usage: cargo xtask bench monitor-quality [options]

Random clean splits of every dataset in datasets/ (current windows of 200,
1,000 and 10,000 rows; the other rows are the reference) and the same windows
with a planted shift (a numeric column + 0.5 sd; a category's share + 15
points), checked by Atelier's `monitor check` (release build, defaults) and
Evidently's DataDriftPreset (defaults) in the same run
(bench/monitor/quality.py, peers from bench/monitor/requirements.txt in
<target>/bench-venv-monitor). Prints false-alarm and detection rates per
window size; writes <target>/bench-monitor-quality.md and the README block.

options:
  --trials N         clean splits per dataset and size [default 40]
  --shift-trials N   of those, how many also get each planted shift [default 20]
  --sizes A,B,..     window sizes [default 200,1000,10000]
  --datasets A,B,..  a subset of datasets/ (the README is then left alone)
  --python PATH      a Python with the packages of bench/monitor/requirements.txt
  --skip-build       use the existing release binary
  --no-readme        do not rewrite README.md
  -h, --help         this text";

/// Targets the issue sets: at most this share of clean checks alarm…
const FALSE_ALARM_TARGET: f64 = 0.02;
/// …and at least this share of shifts are found at the 1,000-row size.
const DETECTION_TARGET: f64 = 0.95;
const DETECTION_SIZE: u64 = 1000;

struct Opts {
    trials: usize,
    shift_trials: usize,
    sizes: String,
    datasets: Option<String>,
    python: Option<PathBuf>,
    skip_build: bool,
    readme: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        trials: 40,
        shift_trials: 20,
        sizes: "200,1000,10000".into(),
        datasets: None,
        python: None,
        skip_build: false,
        readme: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        let count = |name: &str, v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("{name} takes a count of at least 1: got '{v}'"))
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--trials" => o.trials = count("--trials", value("--trials")?)?,
            "--shift-trials" => o.shift_trials = count("--shift-trials", value("--shift-trials")?)?,
            "--sizes" => {
                let v = value("--sizes")?;
                if v.split(',')
                    .any(|s| s.trim().parse::<u64>().map_or(true, |n| n < 10))
                {
                    return Err(format!(
                        "--sizes takes window sizes of at least 10 rows, comma-separated: got '{v}'"
                    ));
                }
                o.sizes = v;
            }
            "--datasets" => o.datasets = Some(value("--datasets")?),
            "--python" => o.python = Some(PathBuf::from(value("--python")?)),
            "--skip-build" => o.skip_build = true,
            "--no-readme" => o.readme = false,
            other => return Err(format!("unknown option '{other}'\n\n{USAGE}")),
        }
    }
    if o.shift_trials > o.trials {
        return Err(format!(
            "--shift-trials ({}) cannot exceed --trials ({})",
            o.shift_trials, o.trials
        ));
    }
    Ok(Some(o))
}

/// One check's outcome, as quality.py wrote it.
struct Check {
    dataset: String,
    size: u64,
    kind: String,
    column: Option<String>,
    atelier: Vec<String>,
    atelier_quality: Vec<String>,
    evidently: Vec<String>,
    evidently_dataset: bool,
}

fn strings(j: Option<&Json>) -> Vec<String> {
    j.map(|v| {
        v.arr()
            .iter()
            .filter_map(|s| s.str().map(str::to_string))
            .collect()
    })
    .unwrap_or_default()
}

fn parse_check(line: &str) -> Result<Check, String> {
    let j = Json::parse(line).map_err(|e| format!("results line {line:?}: {e}"))?;
    Ok(Check {
        dataset: j.field_str("dataset").unwrap_or("?").to_string(),
        size: j.get("size").and_then(Json::num).unwrap_or(0.0) as u64,
        kind: j.field_str("kind").unwrap_or("?").to_string(),
        column: j.field_str("column").map(str::to_string),
        atelier: strings(j.get("atelier_drifted")),
        atelier_quality: strings(j.get("atelier_violations"))
            .into_iter()
            .filter(|v| v != "baseline_drift_check")
            .collect(),
        evidently: strings(j.get("evidently_drifted")),
        evidently_dataset: matches!(j.get("evidently_dataset_drift"), Some(Json::Bool(true))),
    })
}

/// A share with its counts: "1.4 % (4 of 280)".
fn rate(hits: usize, n: usize) -> String {
    if n == 0 {
        return "-".into();
    }
    format!("{:.1} % ({hits} of {n})", 100.0 * hits as f64 / n as f64)
}

#[derive(Default)]
struct Cell {
    clean: usize,
    atelier_fa: usize,
    evidently_fa: usize,
    atelier_quality: usize,
    evidently_dataset: usize,
    numeric: usize,
    atelier_numeric: usize,
    evidently_numeric: usize,
    category: usize,
    atelier_category: usize,
    evidently_category: usize,
    datasets: std::collections::BTreeSet<String>,
}

impl Cell {
    fn add(&mut self, c: &Check) {
        self.datasets.insert(c.dataset.clone());
        let col = c.column.as_deref().unwrap_or("");
        let found = |v: &[String]| v.iter().any(|x| x == col);
        match c.kind.as_str() {
            "clean" => {
                self.clean += 1;
                self.atelier_fa += usize::from(!c.atelier.is_empty());
                self.evidently_fa += usize::from(!c.evidently.is_empty());
                self.atelier_quality += usize::from(!c.atelier_quality.is_empty());
                self.evidently_dataset += usize::from(c.evidently_dataset);
            }
            "numeric" => {
                self.numeric += 1;
                self.atelier_numeric += usize::from(found(&c.atelier));
                self.evidently_numeric += usize::from(found(&c.evidently));
            }
            "category" => {
                self.category += 1;
                self.atelier_category += usize::from(found(&c.atelier));
                self.evidently_category += usize::from(found(&c.evidently));
            }
            _ => {}
        }
    }
}

fn share(hits: usize, n: usize) -> f64 {
    if n == 0 { 0.0 } else { hits as f64 / n as f64 }
}

/// The verdict lines under the table: each target, met or not.
fn verdicts(cells: &BTreeMap<u64, Cell>) -> Vec<String> {
    let mut out = Vec::new();
    let fa: Vec<String> = cells
        .iter()
        .map(|(s, c)| format!("{:.1} % at {s}", 100.0 * share(c.atelier_fa, c.clean)))
        .collect();
    let fa_ok = cells
        .values()
        .all(|c| share(c.atelier_fa, c.clean) <= FALSE_ALARM_TARGET);
    out.push(format!(
        "False alarms ≤ {:.0} % at every size: {} ({}).",
        FALSE_ALARM_TARGET * 100.0,
        if fa_ok { "met" } else { "NOT met" },
        fa.join(", ")
    ));
    if let Some(c) = cells.get(&DETECTION_SIZE) {
        let n = share(c.atelier_numeric, c.numeric);
        let k = share(c.atelier_category, c.category);
        out.push(format!(
            "Detection ≥ {:.0} % at {DETECTION_SIZE} rows: {} (numeric shift {:.1} %, category shift {:.1} %).",
            DETECTION_TARGET * 100.0,
            if n >= DETECTION_TARGET && k >= DETECTION_TARGET { "met" } else { "NOT met" },
            n * 100.0,
            k * 100.0
        ));
    }
    let fewer_fa = cells.values().all(|c| c.atelier_fa <= c.evidently_fa);
    out.push(format!(
        "False alarms against Evidently: {} at every size.",
        if fewer_fa {
            "as few or fewer"
        } else {
            "MORE at some size"
        }
    ));
    if let Some(c) = cells.get(&DETECTION_SIZE) {
        let ok =
            c.atelier_numeric >= c.evidently_numeric && c.atelier_category >= c.evidently_category;
        out.push(format!(
            "Detection against Evidently at {DETECTION_SIZE} rows: {}.",
            if ok { "as many or more" } else { "FEWER" }
        ));
    }
    // where Evidently finds more, say so, with what it pays for it
    for (size, c) in cells {
        let (a, e) = (
            c.atelier_numeric + c.atelier_category,
            c.evidently_numeric + c.evidently_category,
        );
        if e > a {
            out.push(format!(
                "At {size} rows Evidently finds more shifts ({} against {}) while alarming on {:.1} % of clean windows (Atelier {:.1} %).",
                rate(e, c.numeric + c.category),
                rate(a, c.numeric + c.category),
                100.0 * share(c.evidently_fa, c.clean),
                100.0 * share(c.atelier_fa, c.clean)
            ));
        }
    }
    out
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(o) = parse_args(args)? else {
        return Ok(());
    };
    let root = root();
    let target = target_dir(&root);
    let data = root.join("datasets");
    let python = match &o.python {
        Some(p) => p.clone(),
        None => ensure_venv(
            &target.join("bench-venv-monitor"),
            &root.join("bench/monitor/requirements.txt"),
        )?,
    };
    let bin = release_atelier(&root, &target, o.skip_build)?;
    let atelier_version = Command::new(&bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .and_then(|v| v.split_whitespace().last().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let dir = target.join("bench-monitor-quality");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let results = dir.join("results.jsonl");
    let load_before = benchreport::loadavg();
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("bench/monitor/quality.py"))
        .arg("--atelier")
        .arg(&bin)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&results)
        .args(["--trials", &o.trials.to_string()])
        .args(["--shift-trials", &o.shift_trials.to_string()])
        .args(["--sizes", &o.sizes])
        .args(["--workers", &nproc().clamp(1, 4).to_string()]);
    if let Some(d) = &o.datasets {
        cmd.args(["--datasets", d]);
    }
    say("checking the windows (quality.py: Atelier and Evidently on each)");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("quality.py: could not start: {e}"))?;
    if !out.status.success() {
        return Err(format!("quality.py failed ({})", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .rev()
        .find_map(|l| Json::parse(l).ok())
        .ok_or("quality.py printed no summary line")?;
    let text =
        std::fs::read_to_string(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    let checks: Vec<Check> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_check)
        .collect::<Result<_, _>>()?;
    let mut cells: BTreeMap<u64, Cell> = BTreeMap::new();
    let mut per_dataset: BTreeMap<(String, u64), Cell> = BTreeMap::new();
    for c in &checks {
        cells.entry(c.size).or_default().add(c);
        per_dataset
            .entry((c.dataset.clone(), c.size))
            .or_default()
            .add(c);
    }
    let mut md = format!(
        "Measured by `cargo xtask bench monitor-quality` on {} ({} × {}; load average {} → {}): Atelier {} (`monitor baseline` + `monitor check`, release build, default constraints) and Evidently {} (`Report([DataDriftPreset()])`, its defaults; pandas {}) on the same windows. Each check is a random split of one dataset of `datasets/` (target column left out): the current window of the size below, the other rows as the reference; {} clean splits per dataset and size, {} of them also with a planted shift — a numeric column moved by 0.5 of its standard deviation, or one category's share raised by 15 points (column and category drawn at random; `bench/monitor/quality.py`). A false alarm is a clean check with any drifted column; a detection is a shifted check that flags the shifted column. Free-text columns (titanic's Name, Ticket, Cabin) are left out of Evidently's input: its text-drift classifier takes 15 s a check, and Atelier does not compare text.\n\n",
        benchreport::utc_stamp(),
        nproc(),
        benchreport::cpu_model(),
        load_before,
        benchreport::loadavg(),
        atelier_version,
        summary.field_str("evidently").unwrap_or("?"),
        summary.field_str("pandas").unwrap_or("?"),
        o.trials,
        o.shift_trials,
    );
    md.push_str("| window rows | datasets | false alarms: Atelier | Evidently | numeric shift found: Atelier | Evidently | category shift found: Atelier | Evidently |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size, c) in &cells {
        md.push_str(&format!(
            "| {size} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.datasets.len(),
            rate(c.atelier_fa, c.clean),
            rate(c.evidently_fa, c.clean),
            rate(c.atelier_numeric, c.numeric),
            rate(c.evidently_numeric, c.numeric),
            rate(c.atelier_category, c.category),
            rate(c.evidently_category, c.category),
        ));
    }
    md.push('\n');
    for v in verdicts(&cells) {
        md.push_str(&format!("- {v}\n"));
    }
    let quality: Vec<String> = cells
        .iter()
        .map(|(s, c)| format!("{} at {s}", rate(c.atelier_quality, c.clean)))
        .collect();
    let ev_dataset: Vec<String> = cells
        .iter()
        .map(|(s, c)| format!("{} at {s}", rate(c.evidently_dataset, c.clean)))
        .collect();
    md.push_str(&format!(
        "- Not counted above: clean checks where Atelier reported a data-quality violation (completeness, type, a value outside the baseline's domain): {}. Evidently's dataset-level verdict (half the columns drifted) on clean checks: {}.\n",
        quality.join(", "),
        ev_dataset.join(", ")
    ));
    let mut detail = String::from(
        "\n| dataset | window rows | false alarms: Atelier | Evidently | numeric found: Atelier | Evidently | category found: Atelier | Evidently |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for ((d, size), c) in &per_dataset {
        detail.push_str(&format!(
            "| {d} | {size} | {} | {} | {} | {} | {} | {} |\n",
            rate(c.atelier_fa, c.clean),
            rate(c.evidently_fa, c.clean),
            rate(c.atelier_numeric, c.numeric),
            rate(c.evidently_numeric, c.numeric),
            rate(c.atelier_category, c.category),
            rate(c.evidently_category, c.category),
        ));
    }
    println!("{md}{detail}");
    let report = target.join("bench-monitor-quality.md");
    std::fs::write(&report, format!("{md}{detail}"))
        .map_err(|e| format!("{}: {e}", report.display()))?;
    say(&format!("wrote {}", report.display()));
    if o.readme && o.datasets.is_none() {
        update_readme(&root.join("README.md"), "monitor-quality", &md)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_count_into_false_alarms_and_detections() {
        let lines = [
            r#"{"dataset":"a","size":200,"kind":"clean","column":null,"atelier_drifted":[],"atelier_violations":["completeness_check"],"evidently_drifted":["x"],"evidently_dataset_drift":false}"#,
            r#"{"dataset":"a","size":200,"kind":"clean","column":null,"atelier_drifted":["y"],"atelier_violations":["baseline_drift_check"],"evidently_drifted":[],"evidently_dataset_drift":true}"#,
            r#"{"dataset":"b","size":200,"kind":"numeric","column":"x","atelier_drifted":["x"],"atelier_violations":[],"evidently_drifted":["y"],"evidently_dataset_drift":false}"#,
            r#"{"dataset":"b","size":200,"kind":"category","column":"c","atelier_drifted":["x"],"atelier_violations":[],"evidently_drifted":["c"],"evidently_dataset_drift":false}"#,
            r#"{"dataset":"b","size":200,"kind":"category","column":"d","atelier_drifted":[],"atelier_violations":[],"evidently_drifted":["d"],"evidently_dataset_drift":false}"#,
        ];
        let mut cell = Cell::default();
        for l in lines {
            cell.add(&parse_check(l).unwrap());
        }
        assert_eq!((cell.clean, cell.atelier_fa, cell.evidently_fa), (2, 1, 1));
        // the drift violation itself is not a data-quality one
        assert_eq!((cell.atelier_quality, cell.evidently_dataset), (1, 1));
        // a detection is the shifted column flagged, not any column
        assert_eq!(
            (cell.numeric, cell.atelier_numeric, cell.evidently_numeric),
            (1, 1, 0)
        );
        assert_eq!(
            (
                cell.category,
                cell.atelier_category,
                cell.evidently_category
            ),
            (2, 0, 2)
        );
        assert_eq!(cell.datasets.len(), 2);
        let mut cells = BTreeMap::new();
        cells.insert(200, cell);
        let v = verdicts(&cells);
        assert!(v[0].contains("NOT met"), "{v:?}");
        assert!(v[1].contains("as few or fewer"), "{v:?}");
        assert!(
            v[2].starts_with("At 200 rows Evidently finds more shifts (66.7 % (2 of 3) against 33.3 % (1 of 3)) while alarming on 50.0 %"),
            "{v:?}"
        );
        assert_eq!(rate(1, 3), "33.3 % (1 of 3)");
    }

    #[test]
    fn options_are_checked() {
        let a = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(parse_args(&a(&["--trials", "0"])).is_err());
        assert!(parse_args(&a(&["--trials", "5", "--shift-trials", "6"])).is_err());
        assert!(parse_args(&a(&["--sizes", "200,abc"])).is_err());
        let o = parse_args(&a(&["--sizes", "300", "--no-readme"]))
            .unwrap()
            .unwrap();
        assert_eq!((o.sizes.as_str(), o.readme), ("300", false));
    }
}
