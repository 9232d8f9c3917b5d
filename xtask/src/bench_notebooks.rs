//! `cargo xtask bench notebooks`: Atelier's notebook runner (`nbexec`, as a
//! notebook job runs it: `atelier __notebook-run`) against papermill, on the
//! same notebook, with the same kernel and Python, in the same run.
//!
//! - **The work**: `bench/notebooks/analysis.ipynb` (a markdown cell, a
//!   `parameters` cell, pandas + numpy + matplotlib imports, reading
//!   `datasets/penguins.csv`, per-species statistics, one
//!   Agg figure displayed as a PNG, a displayed DataFrame), run with the
//!   parameters `alpha = 0.5` and `data = <absolute path of the CSV>`.
//! - **The runners**: papermill (`.venv/bin/python -m papermill IN OUT -p
//!   alpha 0.5 -p data PATH -k python3`) and Atelier
//!   (`target/release/atelier __notebook-run --file analysis.ipynb
//!   --input-dir bench/notebooks --output-dir DIR --parameters-json
//!   '{"alpha":0.5,"data":"PATH"}' --python .venv/bin/python`), both from
//!   the workspace root, both on the `python3` kernel spec of the repository's
//!   test venv (`.venv`, made by `cargo xtask test --only python`), so the
//!   kernel is the same ipykernel on the same interpreter; Atelier with
//!   `MLFLOW_TRACKING_URI` / `MLFLOW_RUN_ID` / `ATELIER_*` removed from its
//!   environment, so it saves the output notebook locally and uploads nothing.
//! - **The figure**: wall time of the whole command, spawn to exit (kernel
//!   start to saved output, plus each tool's own start-up and exit: what a
//!   user or a job waits for). `--warmup` rounds are run and discarded, then
//!   `--reps` rounds, each running both, papermill first in even rounds and
//!   Atelier first in odd ones. Median and minimum per side; the ratio is
//!   papermill's median over Atelier's (how many times faster Atelier is).
//! - **Where the time goes**, per run, from the output notebook's own
//!   papermill metadata (both runners write it, one wall clock) and the
//!   benchmark's spawn and exit times: the tool's start-up (spawn → the
//!   notebook's `start_time`, which both set just before starting the
//!   kernel), kernel start (→ the first cell's `start_time`), the cells
//!   (→ the last cell's `end_time`), kernel shutdown (→ the notebook's
//!   `end_time`, which both set after the kernel is stopped) and the final
//!   save and exit (→ the process has exited). Atelier's own
//!   `notebook completed: kernel ready in X s, Y s in all` line (stderr) is
//!   parsed and reported as well.
//! - **Same work, checked**: both commands must exit 0, every code cell of
//!   both outputs must have `metadata.papermill.status == "completed"`, both
//!   must hold a PNG, and the stdout of every code cell must be identical on
//!   both sides (it includes the kernel's `sys.executable` and library
//!   versions, and the `stats` cell's table, which must show `alpha = 0.5`);
//!   any difference fails the benchmark.
//!
//! Plain std, like the other benchmarks: a small JSON reader for the output
//! notebooks.

use crate::common::{cpu_model, loadavg, nproc, root, say, tail_str};
use crate::json::{Json, json_str};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: cargo xtask bench notebooks [options]

Runs bench/notebooks/analysis.ipynb (pandas, numpy, a matplotlib figure, on
datasets/penguins.csv) with papermill and with Atelier's
notebook runner (target/release/atelier __notebook-run, as a notebook job
runs it), both on the python3 kernel of the repository's test venv (.venv,
made by `cargo xtask test --only python`), parameters alpha=0.5 and data=<the
CSV's absolute path>, alternating which goes first. Times each command from
spawn to exit, checks both did the same work (every cell completed, the same
printed output), prints a table, writes target/bench-notebooks.md and .json,
and replaces the README's block between <!-- bench:notebooks --> and
<!-- /bench:notebooks -->.

options:
  --reps N         measured rounds, each running both [default 7]
  --warmup N       rounds run first and discarded [default 1]
  --skip-build     use the existing target/release/atelier
  --no-readme      do not touch README.md
  -h, --help       this text";

const NOTEBOOK: &str = "analysis.ipynb";
const ALPHA: &str = "0.5";

struct Opts {
    reps: usize,
    warmup: usize,
    skip_build: bool,
    readme: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        reps: 7,
        warmup: 1,
        skip_build: false,
        readme: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--reps" => {
                o.reps = val()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--reps N (a positive whole number)")?
            }
            "--warmup" => o.warmup = val()?.parse().map_err(|_| "--warmup N")?,
            "--skip-build" => o.skip_build = true,
            "--no-readme" => o.readme = false,
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    Ok(Some(o))
}

// ---------------------------------------------------------------- one run

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Papermill,
    Atelier,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Papermill => "papermill",
            Tool::Atelier => "Atelier",
        }
    }
}

/// Phases of one run, seconds; they add up to `wall`.
const PHASES: [&str; 5] = [
    "the tool's start-up (spawn → notebook `start_time`)",
    "kernel start (→ first cell's `start_time`)",
    "the cells (→ last cell's `end_time`)",
    "kernel shutdown (→ notebook `end_time`)",
    "final save and exit (→ process exited)",
];

/// One timed run of one tool.
#[derive(Clone, Default)]
struct Run {
    wall: f64,
    phases: [f64; 5],
    /// Atelier's own "kernel ready in X s, Y s in all".
    kernel_ready: Option<f64>,
    in_all: Option<f64>,
    /// Every code cell's stdout, in order.
    stdout: Vec<String>,
}

/// What both runners are given.
struct Setup {
    root: PathBuf,
    python: PathBuf,
    bin: PathBuf,
    input_dir: PathBuf,
    data: String,
    out_dir: PathBuf,
}

fn run_once(s: &Setup, tool: Tool) -> Result<Run, String> {
    let mut cmd;
    let output = match tool {
        Tool::Papermill => {
            let out = s.out_dir.join("papermill").join(NOTEBOOK);
            cmd = Command::new(&s.python);
            cmd.args(["-m", "papermill"])
                .arg(s.input_dir.join(NOTEBOOK))
                .arg(&out)
                .args(["-p", "alpha", ALPHA, "-p", "data", &s.data, "-k", "python3"]);
            out
        }
        Tool::Atelier => {
            let dir = s.out_dir.join("atelier");
            cmd = Command::new(&s.bin);
            cmd.args(["__notebook-run", "--file", NOTEBOOK, "--input-dir"])
                .arg(&s.input_dir)
                .arg("--output-dir")
                .arg(&dir)
                .arg("--parameters-json")
                .arg(format!(
                    "{{\"alpha\":{ALPHA},\"data\":{}}}",
                    json_str(&s.data)
                ))
                .arg("--python")
                .arg(&s.python);
            dir.join(NOTEBOOK)
        }
    };
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&output);
    for k in [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_ID",
        "ATELIER_JOB_DIR",
        "ATELIER_INPUT_NOTEBOOK",
        "ATELIER_OUTPUT_NOTEBOOK",
    ] {
        cmd.env_remove(k);
    }
    cmd.current_dir(&s.root).stdin(Stdio::null());

    let spawned = unix_now();
    let t0 = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("starting {} ({:?}): {e}", tool.label(), cmd.get_program()))?;
    let wall = t0.elapsed().as_secs_f64();
    let exited = spawned + wall;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}",
            tool.label(),
            out.status,
            tail_str(&stderr)
        ));
    }

    let text = std::fs::read_to_string(&output).map_err(|e| {
        format!(
            "{}: no output notebook {}: {e}",
            tool.label(),
            output.display()
        )
    })?;
    let nb = Json::parse(&text).map_err(|e| format!("{}: {}", output.display(), e))?;
    let checked = check_notebook(&nb).map_err(|e| format!("{}: {e}", output.display()))?;
    let at = |t: f64, what: &str| {
        if t.is_nan() {
            Err(format!("{}: no {what}", output.display()))
        } else {
            Ok(t)
        }
    };
    let nb_start = at(checked.nb_start, "notebook start_time")?;
    let first = at(checked.first_cell_start, "cell start_time")?;
    let last = at(checked.last_cell_end, "cell end_time")?;
    let nb_end = at(checked.nb_end, "notebook end_time")?;
    let mut run = Run {
        wall,
        phases: [
            nb_start - spawned,
            first - nb_start,
            last - first,
            nb_end - last,
            exited - nb_end,
        ],
        stdout: checked.stdout,
        ..Run::default()
    };
    if tool == Tool::Atelier {
        let (ready, all) = atelier_line(&stderr).ok_or_else(|| {
            format!(
                "Atelier printed no \"notebook completed: kernel ready in X s, Y s in all\":\n{}",
                tail_str(&stderr)
            )
        })?;
        run.kernel_ready = Some(ready);
        run.in_all = Some(all);
    }
    Ok(run)
}

/// `notebook completed: kernel ready in X s, Y s in all` → (X, Y).
fn atelier_line(stderr: &str) -> Option<(f64, f64)> {
    let l = stderr.lines().find_map(|l| {
        l.trim()
            .strip_prefix("notebook completed: kernel ready in ")
    })?;
    let (ready, rest) = l.split_once(" s, ")?;
    let all = rest.strip_suffix(" s in all")?;
    Some((ready.trim().parse().ok()?, all.trim().parse().ok()?))
}

/// What the output notebook says about its run.
struct Checked {
    nb_start: f64,
    nb_end: f64,
    first_cell_start: f64,
    last_cell_end: f64,
    stdout: Vec<String>,
}

fn text_of(v: Option<&Json>) -> String {
    match v {
        Some(Json::Str(s)) => s.clone(),
        Some(Json::Arr(a)) => a.iter().filter_map(Json::str).collect(),
        _ => String::new(),
    }
}

/// Every code cell completed, a PNG among the outputs, and the `stats`
/// cell's table printed with our alpha; the times of the run.
fn check_notebook(nb: &Json) -> Result<Checked, String> {
    let pm_time = |v: &Json, key: &str| {
        v.get("metadata")
            .and_then(|m| m.get("papermill"))
            .and_then(|p| p.field_str(key))
            .and_then(parse_iso)
            .unwrap_or(f64::NAN)
    };
    let cells = nb.get("cells").map(Json::arr).unwrap_or_default();
    if cells.is_empty() {
        return Err("no cells".into());
    }
    let mut c = Checked {
        nb_start: pm_time(nb, "start_time"),
        nb_end: pm_time(nb, "end_time"),
        first_cell_start: pm_time(&cells[0], "start_time"),
        last_cell_end: pm_time(&cells[cells.len() - 1], "end_time"),
        stdout: Vec::new(),
    };
    let mut png = false;
    let mut stats = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.field_str("cell_type") != Some("code") {
            continue;
        }
        let meta = cell.get("metadata");
        let status = meta
            .and_then(|m| m.get("papermill"))
            .and_then(|p| p.field_str("status"));
        if status != Some("completed") {
            return Err(format!(
                "code cell {i} is {:?}, not completed",
                status.unwrap_or("without papermill status")
            ));
        }
        let mut out = String::new();
        for o in cell.get("outputs").map(Json::arr).unwrap_or_default() {
            match o.field_str("output_type") {
                Some("stream") if o.field_str("name") == Some("stdout") => {
                    out.push_str(&text_of(o.get("text")))
                }
                Some("display_data") | Some("execute_result") => {
                    png |= o.get("data").and_then(|d| d.get("image/png")).is_some();
                }
                Some("error") => return Err(format!("code cell {i} has an error output")),
                _ => {}
            }
        }
        let tagged = meta
            .and_then(|m| m.get("tags"))
            .map(Json::arr)
            .unwrap_or_default()
            .iter()
            .any(|t| t.str() == Some("stats"));
        if tagged {
            stats = Some(out.clone());
        }
        c.stdout.push(out);
    }
    if !png {
        return Err("no image/png output (the figure)".into());
    }
    match stats {
        None => Err("no cell tagged `stats`".into()),
        Some(s) if !s.contains(&format!("alpha = {ALPHA}\n")) => Err(format!(
            "the stats cell did not print \"alpha = {ALPHA}\" (parameters not injected?):\n{s}"
        )),
        Some(_) => Ok(c),
    }
}

/// `2026-12-06T05:48:47.159919+00:00` or `…Z` → seconds since the epoch.
fn parse_iso(s: &str) -> Option<f64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (time, offset) = if let Some(t) = time.strip_suffix('Z') {
        (t, 0.0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (t, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1.0 } else { 1.0 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            t,
            sign * (oh.parse::<f64>().ok()? * 3600.0 + om.parse::<f64>().ok()? * 60.0),
        )
    } else {
        (time, 0.0)
    };
    let mut t = time.split(':');
    let (h, mi, sec) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    // days from civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec - offset)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------- the benchmark

fn output_of(python: &Path, args: &[&str]) -> String {
    Command::new(python)
        .args(args)
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if s.is_empty() {
                String::from_utf8_lossy(&o.stderr).trim().to_string()
            } else {
                s
            }
        })
        .unwrap_or_default()
}

struct Versions {
    atelier: String,
    papermill: String,
    python: String,
    ipykernel: String,
    nbclient: String,
    jupyter_client: String,
    libs: String,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(o) = parse_args(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let root = root();
    let target = crate::common::target_dir(&root);
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return Err(format!(
            "{} is missing: run `cargo xtask test --only python` (it creates the test venv from tests/python/requirements.txt, with papermill and ipykernel)",
            python.display()
        ));
    }
    let pm = output_of(&python, &["-m", "papermill", "--version"]);
    let papermill = pm
        .split_whitespace()
        .next()
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .ok_or_else(|| {
            format!(
                "{} has no papermill ({pm}): run `cargo xtask test --only python`",
                python.display()
            )
        })?
        .to_string();
    let v = output_of(
        &python,
        &[
            "-c",
            "import platform, ipykernel, nbclient, jupyter_client, numpy, pandas, matplotlib; \
             print(platform.python_version(), ipykernel.__version__, nbclient.__version__, \
             jupyter_client.__version__, numpy.__version__, pandas.__version__, matplotlib.__version__)",
        ],
    );
    let f: Vec<&str> = v.split_whitespace().collect();
    if f.len() != 7 {
        return Err(format!(
            "{} lacks ipykernel, pandas or matplotlib ({v}): run `cargo xtask test --only python`",
            python.display()
        ));
    }

    let bin = crate::common::release_atelier(&root, &target, o.skip_build)?;
    let atelier = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map_err(|e| format!("{}: {e} (build it, or drop --skip-build)", bin.display()))?;
    let versions = Versions {
        atelier: atelier
            .strip_prefix("atelier ")
            .unwrap_or(&atelier)
            .to_string(),
        papermill,
        python: f[0].into(),
        ipykernel: f[1].into(),
        nbclient: f[2].into(),
        jupyter_client: f[3].into(),
        libs: format!("numpy {}, pandas {}, matplotlib {}", f[4], f[5], f[6]),
    };

    let data = root.join("datasets/penguins.csv");
    if !data.is_file() {
        return Err(format!("{} is missing", data.display()));
    }
    let input_dir = root.join("bench/notebooks");
    if !input_dir.join(NOTEBOOK).is_file() {
        return Err(format!("{} is missing", input_dir.join(NOTEBOOK).display()));
    }
    let out_dir = target.join("bench-notebooks");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let setup = Setup {
        root: root.clone(),
        python: python.clone(),
        bin,
        input_dir,
        data: data.display().to_string(),
        out_dir: out_dir.clone(),
    };

    let load_before = loadavg();
    let started = crate::common::utc_stamp();
    let mut pm_runs: Vec<Run> = Vec::new();
    let mut at_runs: Vec<Run> = Vec::new();
    for round in 0..o.warmup + o.reps {
        let measured = round >= o.warmup;
        let order = if round % 2 == 0 {
            [Tool::Papermill, Tool::Atelier]
        } else {
            [Tool::Atelier, Tool::Papermill]
        };
        let mut pair: [Option<Run>; 2] = [None, None];
        for tool in order {
            let r = run_once(&setup, tool)?;
            say(&format!(
                "{} {} {}: {:.2} s{}",
                if measured { "round" } else { "warm-up" },
                if measured {
                    round - o.warmup + 1
                } else {
                    round + 1
                },
                tool.label(),
                r.wall,
                r.kernel_ready
                    .map_or(String::new(), |k| format!(" (kernel ready in {k:.2} s)"))
            ));
            pair[usize::from(tool == Tool::Atelier)] = Some(r);
        }
        let [Some(p), Some(a)] = pair else {
            unreachable!("both tools ran")
        };
        if p.stdout != a.stdout {
            let diff = p
                .stdout
                .iter()
                .zip(&a.stdout)
                .position(|(x, y)| x != y)
                .unwrap_or(p.stdout.len().min(a.stdout.len()));
            return Err(format!(
                "the two outputs differ (code cell {diff} of {} / {}):\npapermill:\n{}\nAtelier:\n{}",
                p.stdout.len(),
                a.stdout.len(),
                p.stdout.get(diff).map_or("(none)", String::as_str),
                a.stdout.get(diff).map_or("(none)", String::as_str)
            ));
        }
        if measured {
            pm_runs.push(p);
            at_runs.push(a);
        }
    }
    let ctx = Context {
        o: &o,
        started,
        load_before,
        load_after: loadavg(),
        versions,
        data: setup.data.clone(),
    };
    report(&ctx, &pm_runs, &at_runs, &target, &root)
}

// ---------------------------------------------------------------- report

struct Context<'a> {
    o: &'a Opts,
    started: String,
    load_before: String,
    load_after: String,
    versions: Versions,
    data: String,
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn fmt_s(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v.abs() < 1.0 {
        format!("{:.0} ms", v * 1000.0)
    } else {
        format!("{v:.2} s")
    }
}

fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        "—".into()
    } else if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

fn walls(runs: &[Run]) -> Vec<f64> {
    runs.iter().map(|r| r.wall).collect()
}

fn phase(runs: &[Run], i: usize) -> Vec<f64> {
    runs.iter().map(|r| r.phases[i]).collect()
}

fn report(c: &Context, pm: &[Run], at: &[Run], target: &Path, root: &Path) -> Result<(), String> {
    let v = &c.versions;
    let (pm_med, at_med) = (median(&walls(pm)), median(&walls(at)));
    let ratio = pm_med / at_med;
    let ready: Vec<f64> = at.iter().filter_map(|r| r.kernel_ready).collect();
    let in_all: Vec<f64> = at.iter().filter_map(|r| r.in_all).collect();

    let mut rows: Vec<[String; 4]> = vec![
        [
            "wall time, spawn → exit, median".into(),
            fmt_s(at_med),
            fmt_s(pm_med),
            fmt_ratio(ratio),
        ],
        [
            "wall time, spawn → exit, min".into(),
            fmt_s(min(&walls(at))),
            fmt_s(min(&walls(pm))),
            fmt_ratio(min(&walls(pm)) / min(&walls(at))),
        ],
    ];
    for (i, name) in PHASES.iter().enumerate() {
        let (a, p) = (median(&phase(at, i)), median(&phase(pm, i)));
        rows.push([
            format!("– {name}, median"),
            fmt_s(a),
            fmt_s(p),
            fmt_ratio(p / a),
        ]);
    }
    rows.push([
        "Atelier's own line: kernel ready in, median".into(),
        fmt_s(median(&ready)),
        "—".into(),
        "—".into(),
    ]);
    rows.push([
        "Atelier's own line: in all, median".into(),
        fmt_s(median(&in_all)),
        "—".into(),
        "—".into(),
    ]);

    let mut md = String::new();
    let _ = writeln!(
        md,
        "`cargo xtask bench notebooks` runs `bench/notebooks/analysis.ipynb` (pandas, numpy, one matplotlib\n\
         figure, on `datasets/penguins.csv`; parameters `alpha=0.5`, `data=<the CSV's path>`) with\n\
         papermill {} and with Atelier {}'s notebook runner (`atelier __notebook-run`, release build, as a\n\
         notebook job runs it), both on the `python3` kernel of the test venv (ipykernel {}, Python {}).\n\
         Measured on {} on this project's {}-core machine ({}; load average {} before, {} after),\n\
         both in the same run, {} rounds after {} warm-up round(s), alternating which goes first; \"ratio\" is\n\
         how many times faster Atelier is.",
        v.papermill,
        v.atelier,
        v.ipykernel,
        v.python,
        c.started,
        nproc(),
        cpu_model(),
        c.load_before,
        c.load_after,
        c.o.reps,
        c.o.warmup
    );
    md.push('\n');
    let head = [
        "measurement".to_string(),
        format!("Atelier {}", v.atelier),
        format!("papermill {}", v.papermill),
        "ratio".to_string(),
    ];
    let mut w = [0usize; 4];
    for r in rows.iter().chain(std::iter::once(&head)) {
        for (i, cell) in r.iter().enumerate() {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    let pad = |s: &str, n: usize, right: bool| {
        let fill = " ".repeat(n.saturating_sub(s.chars().count()));
        if right {
            format!("{fill}{s}")
        } else {
            format!("{s}{fill}")
        }
    };
    let line = |r: &[String; 4]| {
        format!(
            "| {} | {} | {} | {} |",
            pad(&r[0], w[0], false),
            pad(&r[1], w[1], true),
            pad(&r[2], w[2], true),
            pad(&r[3], w[3], true)
        )
    };
    let _ = writeln!(md, "{}", line(&head));
    let _ = writeln!(
        md,
        "|{}|{}:|{}:|{}:|",
        "-".repeat(w[0] + 2),
        "-".repeat(w[1] + 1),
        "-".repeat(w[2] + 1),
        "-".repeat(w[3] + 1)
    );
    for r in &rows {
        let _ = writeln!(md, "{}", line(r));
    }
    md.push('\n');

    let list = |runs: &[Run]| {
        runs.iter()
            .map(|r| format!("{:.2}", r.wall))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let _ = writeln!(
        md,
        "- Wall time is the whole command, spawn to exit: `.venv/bin/python -m papermill IN OUT -p alpha 0.5 -p\n  \
         data PATH -k python3` and `target/release/atelier __notebook-run --file analysis.ipynb --input-dir\n  \
         bench/notebooks --output-dir DIR --parameters-json '{{\"alpha\":0.5,\"data\":\"PATH\"}}' --python\n  \
         .venv/bin/python` (no `MLFLOW_*`/`ATELIER_*` variables: it saves locally, uploads nothing). Each\n  \
         round, in seconds:\n  papermill {}\n  Atelier {}",
        list(pm),
        list(at)
    );
    let _ = writeln!(
        md,
        "- The phases come from each output notebook's own papermill metadata (both runners write it; one\n  \
         wall clock) and the benchmark's spawn and exit times; per run they add up to the wall time (the\n  \
         medians need not). Both set the notebook's `start_time` just before starting the kernel and its\n  \
         `end_time` after stopping it. papermill's start-up is Python importing papermill and what it\n  \
         uses (nbformat, nbclient, jupyter_client); the cells are the same work on the same kernel (the\n  \
         imports of pandas and matplotlib dominate), so they bound what any runner can gain."
    );
    let _ = writeln!(
        md,
        "- Same work, checked every round: both exit 0, every code cell is `completed` in both outputs, both\n  \
         hold the PNG, and every code cell's printed output is identical (it shows the kernel's\n  \
         `sys.executable`, the library versions and the per-species table for `alpha = 0.5`).\n  \
         Versions: {}; papermill runs on nbclient {} and jupyter_client {}.",
        v.libs, v.nbclient, v.jupyter_client
    );
    let _ = writeln!(
        md,
        "- Target: a notebook job ≥ 2× faster than papermill on the same notebook (medians): {} {}.",
        fmt_ratio(ratio),
        if ratio >= 2.0 { "✓" } else { "✗" }
    );

    println!("\n{md}");
    std::fs::write(target.join("bench-notebooks.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(target.join("bench-notebooks.json"), json(c, pm, at))
        .map_err(|e| e.to_string())?;
    say(&format!(
        "wrote {} and {} (the last round's output notebooks are in {})",
        target.join("bench-notebooks.md").display(),
        target.join("bench-notebooks.json").display(),
        target.join("bench-notebooks").display()
    ));
    if c.o.readme {
        crate::common::update_readme(&root.join("README.md"), "notebooks", &md)?;
    }
    Ok(())
}

fn side_json(version: &str, runs: &[Run]) -> String {
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.4}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let w = walls(runs);
    let phases: Vec<String> = [
        "startup",
        "kernel_start",
        "cells",
        "kernel_shutdown",
        "save_exit",
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| format!("\"{k}_s\":[{}]", list(&phase(runs, i))))
    .collect();
    let ready: Vec<f64> = runs.iter().filter_map(|r| r.kernel_ready).collect();
    let in_all: Vec<f64> = runs.iter().filter_map(|r| r.in_all).collect();
    let own = if ready.is_empty() {
        String::new()
    } else {
        format!(
            ",\"kernel_ready_s\":[{}],\"in_all_s\":[{}]",
            list(&ready),
            list(&in_all)
        )
    };
    format!(
        "{{\"version\":{},\"wall_s\":[{}],\"wall_median_s\":{:.4},\"wall_min_s\":{:.4},\"phases\":{{{}}}{own}}}",
        json_str(version),
        list(&w),
        median(&w),
        min(&w),
        phases.join(",")
    )
}

fn json(c: &Context, pm: &[Run], at: &[Run]) -> String {
    let v = &c.versions;
    format!(
        "{{\"started\":{},\"cores\":{},\"cpu\":{},\"load_before\":{},\"load_after\":{},\"reps\":{},\"warmup\":{},\"notebook\":\"bench/notebooks/{NOTEBOOK}\",\"parameters\":{{\"alpha\":{ALPHA},\"data\":{}}},\"python\":{},\"ipykernel\":{},\"nbclient\":{},\"jupyter_client\":{},\"ratio_median\":{:.3},\"atelier\":{},\"papermill\":{}}}\n",
        json_str(&c.started),
        nproc(),
        json_str(&cpu_model()),
        json_str(&c.load_before),
        json_str(&c.load_after),
        c.o.reps,
        c.o.warmup,
        json_str(&c.data),
        json_str(&v.python),
        json_str(&v.ipykernel),
        json_str(&v.nbclient),
        json_str(&v.jupyter_client),
        median(&walls(pm)) / median(&walls(at)),
        side_json(&v.atelier, at),
        side_json(&v.papermill, pm)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_and_atelier_line() {
        let a = parse_iso("2026-12-06T05:48:47.159919+00:00").unwrap();
        let b = parse_iso("2026-12-06T05:48:47.165088Z").unwrap();
        assert!((b - a - 0.005169).abs() < 1e-6);
        assert_eq!(parse_iso("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(parse_iso("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(
            atelier_line("warning: x\nnotebook completed: kernel ready in 0.27 s, 1.41 s in all\n"),
            Some((0.27, 1.41))
        );
        assert_eq!(atelier_line("nothing"), None);
    }

    #[test]
    fn checks_an_output_notebook() {
        let nb = |status: &str, alpha: &str| {
            format!(
                r#"{{"metadata": {{"papermill": {{"start_time": "2026-12-06T05:48:47.1+00:00", "end_time": "2026-12-06T05:48:49.0+00:00"}}}},
                "cells": [
                 {{"cell_type": "markdown", "metadata": {{"papermill": {{"start_time": "2026-12-06T05:48:48.0+00:00", "status": "completed"}}}}, "source": ""}},
                 {{"cell_type": "code", "metadata": {{"tags": ["stats"], "papermill": {{"status": "{status}"}}}},
                   "outputs": [{{"output_type": "stream", "name": "stdout", "text": ["alpha = {alpha}\n", "x\n"]}},
                               {{"output_type": "display_data", "data": {{"image/png": "iVBOR"}}, "metadata": {{}}}}]}},
                 {{"cell_type": "code", "metadata": {{"papermill": {{"status": "completed", "end_time": "2026-12-06T05:48:48.5+00:00"}}}}, "outputs": []}}
                ]}}"#
            )
        };
        let c = check_notebook(&Json::parse(&nb("completed", "0.5")).unwrap()).unwrap();
        assert_eq!(
            c.stdout,
            vec!["alpha = 0.5\nx\n".to_string(), String::new()]
        );
        assert!((c.first_cell_start - c.nb_start - 0.9).abs() < 1e-6);
        assert!((c.nb_end - c.last_cell_end - 0.5).abs() < 1e-6);
        assert!(check_notebook(&Json::parse(&nb("pending", "0.5")).unwrap()).is_err());
        assert!(check_notebook(&Json::parse(&nb("completed", "0.1")).unwrap()).is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(min(&[4.0, 1.0]), 1.0);
    }
}
