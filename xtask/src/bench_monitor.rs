//! `cargo xtask bench monitor`: Model Monitor against Evidently and whylogs
//! on the same data, in the same run.
//!
//! `bench/monitor/make_data.py` resamples the repository's `datasets/` into
//! 1M rows × 20 columns of reference and current data (two columns drifted on purpose);
//! Atelier baselines the reference and checks the current data with the
//! release binary; `bench/monitor/peers.py` runs Evidently's data drift
//! report, whylogs' profile and scipy's `ks_2samp`, each in its own
//! process. Every process runs under GNU `time` for its peak RSS. The report
//! is a table with times, memory and ratios, written to
//! `<target>/bench-monitor.md`.

use crate::common::{
    cpu_model, ensure_venv, loadavg, nproc, release_atelier, root, run_checked, say, tail_str,
    target_dir,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: cargo xtask bench monitor [options]

Generates 1M x 20 reference and current rows (bench/monitor/make_data.py,
resampled from datasets/, two columns drifted), then times Atelier's
`monitor baseline` + `monitor check` (release build) beside Evidently's data
drift report, whylogs' profile and scipy's ks_2samp on the numeric columns
(peers from bench/monitor/requirements.txt in <target>/bench-venv-monitor).
Prints a table with times, peak RSS and ratios; writes <target>/bench-monitor.md.

options:
  --rows N         rows per dataset [default 1000000]
  --python PATH    a Python with the packages of bench/monitor/requirements.txt
  --data DIR       dataset directory [default: datasets]
  --skip-build     use the existing release binary
  --skip-peers     Atelier only
  -h, --help       this text";

struct Opts {
    rows: usize,
    python: Option<PathBuf>,
    data: Option<PathBuf>,
    skip_build: bool,
    skip_peers: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        rows: 1_000_000,
        python: None,
        data: None,
        skip_build: false,
        skip_peers: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--rows" => {
                let v = value("--rows")?;
                o.rows =
                    v.parse().ok().filter(|&n| n >= 1000).ok_or_else(|| {
                        format!("--rows takes a count of at least 1000: got '{v}'")
                    })?;
            }
            "--python" => o.python = Some(PathBuf::from(value("--python")?)),
            "--data" => o.data = Some(PathBuf::from(value("--data")?)),
            "--skip-build" => o.skip_build = true,
            "--skip-peers" => o.skip_peers = true,
            other => return Err(format!("unknown option '{other}'\n\n{USAGE}")),
        }
    }
    Ok(Some(o))
}

/// One measured process: wall and CPU (user + system) seconds, peak RSS
/// in KiB, its stdout.
#[derive(Clone)]
struct Measured {
    wall: f64,
    cpu: f64,
    rss_kib: f64,
    stdout: String,
}

/// The fastest of `n` runs (Atelier's runs take seconds; on a shared
/// machine the best run is the one least disturbed by other load).
fn best_of(
    n: usize,
    mut run: impl FnMut() -> Result<Measured, String>,
) -> Result<Measured, String> {
    let mut best: Option<Measured> = None;
    for _ in 0..n.max(1) {
        let m = run()?;
        if best.as_ref().is_none_or(|b| m.wall < b.wall) {
            best = Some(m);
        }
    }
    best.ok_or_else(|| "no run".into())
}

/// Run under GNU time for wall time and peak RSS.
fn measured(cmd: &mut Command, what: &str) -> Result<Measured, String> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return Err("GNU time is needed for peak memory: apt-get install time".into());
    }
    let mut full = Command::new(time);
    full.arg("-f")
        .arg("bench-time wall=%e user=%U sys=%S maxrss_kb=%M");
    full.arg(cmd.get_program()).args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        full.current_dir(d);
    }
    say(&format!("running {what}"));
    let out = full
        .output()
        .map_err(|e| format!("{what}: could not start: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            tail_str(&stdout),
            tail_str(&stderr)
        ));
    }
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("bench-time "))
        .ok_or_else(|| format!("{what}: no timing line from GNU time"))?;
    let field = |k: &str| -> Result<f64, String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{what}: cannot read {k} in {line:?}"))
    };
    Ok(Measured {
        wall: field("wall=")?,
        cpu: field("user=")? + field("sys=")?,
        rss_kib: field("maxrss_kb=")?,
        stdout,
    })
}

fn kv<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn kv_f(s: &str, key: &str) -> Result<f64, String> {
    kv(s, key)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no {key}= in the output:\n{}", tail_str(s)))
}

/// The `drifted` list of a drift_report.json, parsed by hand (std only).
fn drifted_of(report: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(report).map_err(|e| format!("{}: {e}", report.display()))?;
    let start = text
        .find("\"drifted\"")
        .and_then(|i| text[i..].find('[').map(|j| i + j + 1))
        .ok_or_else(|| format!("{}: no drifted list", report.display()))?;
    let end = text[start..]
        .find(']')
        .map(|j| start + j)
        .ok_or_else(|| format!("{}: unterminated drifted list", report.display()))?;
    let mut v: Vec<String> = text[start..end]
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    Ok(v)
}

/// Atelier's runs repeated for the best wall time.
const REPEAT: usize = 3;

fn with_cpu(m: &Measured) -> String {
    format!("{} (CPU {})", secs(m.wall), secs(m.cpu))
}

fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

fn mib(kib: f64) -> String {
    let m = kib / 1024.0;
    if m >= 1024.0 {
        format!("{:.2} GiB", m / 1024.0)
    } else {
        format!("{m:.0} MiB")
    }
}

fn ratio(peer: f64, ours: f64) -> String {
    if ours <= 0.0 {
        return "-".into();
    }
    let r = peer / ours;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(o) = parse_args(args)? else {
        return Ok(());
    };
    let root = root();
    let target = target_dir(&root);
    let data_src = o.data.clone().unwrap_or_else(|| root.join("datasets"));
    if !data_src.join("california_housing.csv").exists() {
        return Err(format!(
            "{} has no california_housing.csv; pass --data DIR with the repository's datasets",
            data_src.display()
        ));
    }
    let python = match &o.python {
        Some(p) => p.clone(),
        None => ensure_venv(
            &target.join("bench-venv-monitor"),
            &root.join("bench/monitor/requirements.txt"),
        )?,
    };
    // data, regenerated when missing or of another size
    let dir = target.join("bench-monitor");
    let marker = dir.join("rows.txt");
    let (reference, current) = (dir.join("reference.parquet"), dir.join("current.parquet"));
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(o.rows.to_string().as_str())
        || !reference.exists()
        || !current.exists()
    {
        say(&format!("generating {} rows × 20 columns", o.rows));
        run_checked(
            Command::new(&python)
                .arg(root.join("bench/monitor/make_data.py"))
                .arg(&data_src)
                .arg(&dir)
                .arg(o.rows.to_string()),
            "make_data.py",
        )?;
        std::fs::write(&marker, o.rows.to_string()).map_err(|e| e.to_string())?;
    }
    let bin = release_atelier(&root, &target, o.skip_build)?;
    let load_before = loadavg();
    let base_dir = dir.join("baseline");
    let check_dir = dir.join("check");
    let run_base = || {
        measured(
            Command::new(&bin)
                .args(["monitor", "baseline"])
                .arg(&reference)
                .arg("--output")
                .arg(&base_dir),
            "atelier monitor baseline (Parquet)",
        )
    };
    let run_check = || {
        measured(
            Command::new(&bin)
                .args(["monitor", "check", "--baseline"])
                .arg(&base_dir)
                .arg(&current)
                .arg("--output")
                .arg(&check_dir),
            "atelier monitor check (Parquet)",
        )
    };
    let mut base = best_of(REPEAT, run_base)?;
    let mut check = best_of(REPEAT, run_check)?;
    let ours_drifted = drifted_of(&check_dir.join("drift_report.json"))?;
    let base_csv = measured(
        Command::new(&bin)
            .args(["monitor", "baseline"])
            .arg(dir.join("reference.csv"))
            .arg("--output")
            .arg(dir.join("baseline-csv")),
        "atelier monitor baseline (CSV)",
    )?;
    let check_csv = measured(
        Command::new(&bin)
            .args(["monitor", "check", "--baseline"])
            .arg(dir.join("baseline-csv"))
            .arg(dir.join("current.csv"))
            .arg("--output")
            .arg(dir.join("check-csv")),
        "atelier monitor check (CSV)",
    )?;
    let rss_of = |b: &Measured, c: &Measured| b.rss_kib.max(c.rss_kib);
    let peers = root.join("bench/monitor/peers.py");
    let mut rows: Vec<[String; 4]> = vec![
        [
            "baseline (profile) of the reference, Parquet".into(),
            with_cpu(&base),
            String::new(),
            String::new(),
        ],
        [
            "check of the current data, Parquet".into(),
            with_cpu(&check),
            String::new(),
            String::new(),
        ],
        [
            "baseline + check from CSV (300 MB each)".into(),
            secs(base_csv.wall + check_csv.wall),
            String::new(),
            String::new(),
        ],
    ];
    let mut notes = vec![
        format!(
            "Atelier times are the best of {REPEAT} runs before and {REPEAT} after the peers (one run each; Evidently takes minutes); CPU is user + system time, both cores counted. Peers' times exclude reading Parquet into pandas (shown beside), Atelier's include reading and writing its files.",
        ),
        format!("Atelier drifted columns: {}", ours_drifted.join(", ")),
    ];
    if !o.skip_peers {
        let ev = measured(
            Command::new(&python)
                .arg(&peers)
                .arg("evidently")
                .arg(&reference)
                .arg(&current),
            "Evidently data drift report",
        )?;
        let wl = measured(
            Command::new(&python)
                .arg(&peers)
                .arg("whylogs")
                .arg(&reference),
            "whylogs profile",
        )?;
        let sp = measured(
            Command::new(&python)
                .arg(&peers)
                .arg("scipy")
                .arg(&reference)
                .arg(&current),
            "scipy ks_2samp",
        )?;
        // Atelier again after the peers: the best of all its runs counts
        let b2 = best_of(REPEAT, run_base)?;
        if b2.wall < base.wall {
            base = b2;
        }
        let c2 = best_of(REPEAT, run_check)?;
        if c2.wall < check.wall {
            check = c2;
        }
        let ours_total = base.wall + check.wall;
        let ours_rss = rss_of(&base, &check);
        let ev_run = kv_f(&ev.stdout, "run_s")?;
        let wl_run = kv_f(&wl.stdout, "run_s")?;
        let sp_run = kv_f(&sp.stdout, "run_s")?;
        rows = vec![
            [
                "profile 1M × 20 (baseline) vs whylogs `why.log`".into(),
                with_cpu(&base),
                format!(
                    "{} (+{} reading Parquet)",
                    secs(wl_run),
                    secs(kv_f(&wl.stdout, "load_s")?)
                ),
                ratio(wl_run, base.wall),
            ],
            [
                "drift: baseline + check vs Evidently DataDriftPreset".into(),
                format!("{} (CPU {})", secs(ours_total), secs(base.cpu + check.cpu)),
                format!(
                    "{} (+{} reading Parquet)",
                    secs(ev_run),
                    secs(kv_f(&ev.stdout, "load_s")?)
                ),
                ratio(ev_run, ours_total),
            ],
            [
                format!(
                    "check (all statistics) vs scipy ks_2samp on {} numeric columns",
                    kv(&sp.stdout, "numeric_columns").unwrap_or("?")
                ),
                with_cpu(&check),
                secs(sp_run),
                ratio(sp_run, check.wall),
            ],
            [
                "peak RSS vs Evidently".into(),
                mib(ours_rss),
                mib(ev.rss_kib),
                ratio(ev.rss_kib, ours_rss),
            ],
            [
                "peak RSS vs whylogs".into(),
                mib(base.rss_kib),
                mib(wl.rss_kib),
                ratio(wl.rss_kib, base.rss_kib),
            ],
            [
                "baseline + check from CSV (300 MB files)".into(),
                secs(base_csv.wall + check_csv.wall),
                String::new(),
                String::new(),
            ],
        ];
        notes.push(format!(
            "Evidently {} drifted columns: {}",
            kv(&ev.stdout, "version").unwrap_or("?"),
            kv(&ev.stdout, "drifted").unwrap_or("?").replace(',', ", ")
        ));
        notes.push(format!(
            "scipy {} ks_2samp p < 0.05: {}",
            kv(&sp.stdout, "version").unwrap_or("?"),
            kv(&sp.stdout, "drifted").unwrap_or("?").replace(',', ", ")
        ));
        notes.push(format!(
            "whylogs {}",
            kv(&wl.stdout, "version").unwrap_or("?")
        ));
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut md = format!(
        "Measured by `cargo xtask bench monitor` (unix time {stamp}) on {} × {}, load average {} → {}; {} rows × 20 columns (15 numeric, 5 categorical) per dataset, Parquet.\n\n",
        nproc(),
        cpu_model(),
        load_before,
        loadavg(),
        o.rows
    );
    md.push_str("| measurement | Atelier | peer | ratio |\n|---|---:|---:|---:|\n");
    for r in &rows {
        md.push_str(&format!("| {} | {} | {} | {} |\n", r[0], r[1], r[2], r[3]));
    }
    md.push('\n');
    for n in &notes {
        md.push_str(&format!("- {n}\n"));
    }
    println!("{md}");
    let out = target.join("bench-monitor.md");
    std::fs::write(&out, &md).map_err(|e| format!("{}: {e}", out.display()))?;
    say(&format!("wrote {}", out.display()));
    Ok(())
}
