//! `atelier bench automl`: AutoML at a fixed budget on every benchmark
//! dataset (the repository's `datasets/`, with the split of its README),
//! scored on the test part beside its peers measured in the same run: LightGBM
//! with default settings, FLAML and AutoGluon at the same budget, each run
//! after the other (never two at once) by `bench/automl/peers.py` in venvs the
//! command creates under `target/bench-automl/` from the pinned requirement
//! files beside it. `--peers anchors` prints the figures of
//! `datasets/anchors/automl.json` instead, measured at another time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Where the peers' figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peers {
    /// Run LightGBM, FLAML and AutoGluon in this run, one after the other.
    Live,
    /// Figures from `datasets/anchors/automl.json`, measured at another time.
    Anchors,
    /// Atelier alone.
    None,
}

pub struct AutomlBench {
    /// The repository's `datasets/` folder (or a copy): the CSVs (and `anchors/automl.json`).
    pub data: PathBuf,
    pub time_budget: f64,
    pub max_candidates: usize,
    pub datasets: Vec<String>,
    pub json_out: Option<PathBuf>,
    pub peers: Peers,
    /// `bench/automl`: the requirement files and `peers.py`.
    pub peers_dir: PathBuf,
    /// Where the venvs and the peers' logs go (`target/bench-automl`).
    pub work_dir: PathBuf,
    /// The Python that creates the venvs.
    pub python: PathBuf,
    /// A README to write the table into, between `<!-- bench:automl -->` markers.
    pub readme: Option<PathBuf>,
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

/// Scores closer than this count as equal in the verdict.
const TIE: f64 = 0.002;

/// What to pass when the data folder lacks a file: an installed binary has no
/// repository beside it.
const PASS_DATA: &str = "pass --data DIR, a folder with the benchmark CSVs (and \
    anchors/automl.json for --peers anchors): the repository's datasets/ folder; the default \
    `datasets` works from the repository's root";

/// `path` must be a readable file of the data folder.
fn need(path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!("{}: no such file; {PASS_DATA}", path.display());
    }
    Ok(())
}

fn anchors(data: &Path) -> anyhow::Result<Value> {
    let p = data.join("anchors/automl.json");
    need(&p)?;
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("reading {}", p.display()))
}

fn anchor(a: &Value, dataset: &str, method: &str, metric: &str) -> Option<f64> {
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

/// The venv's python, created and filled from `req` if its marker differs
/// (the marker holds the requirement file it was made from).
fn ensure_venv(base_python: &Path, venv: &Path, req: &Path) -> anyhow::Result<PathBuf> {
    let python = venv.join("bin/python");
    let want = std::fs::read_to_string(req)
        .with_context(|| format!("reading {} (or pass --no-peers)", req.display()))?;
    let marker = venv.join(".bench-requirements");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("bench: creating {}", venv.display());
        let st = Command::new(base_python)
            .arg("-m")
            .arg("venv")
            .arg(venv)
            .status()
            .with_context(|| format!("starting {}", base_python.display()))?;
        if !st.success() {
            bail!(
                "{} -m venv {} failed ({st}); install python3-venv or pass --python",
                base_python.display(),
                venv.display()
            );
        }
    }
    eprintln!(
        "bench: pip install -r {} (into {})",
        req.display(),
        venv.display()
    );
    let st = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(req)
        .status()
        .with_context(|| format!("starting {}", python.display()))?;
    if !st.success() {
        bail!("pip install -r {} failed ({st})", req.display());
    }
    std::fs::write(&marker, want)?;
    Ok(python)
}

/// A peer's result on one dataset (its JSON carries `wall_seconds`, the whole
/// process's, Python start-up included), or why there is none.
struct PeerRun {
    score: Option<f64>,
    json: Value,
}

/// Run `peers.py` for one tool, at most `limit`; its stderr goes to `log`.
#[allow(clippy::too_many_arguments)]
fn run_peer(
    python: &Path,
    script: &Path,
    csv: &Path,
    target: &str,
    task: &str,
    tool: &str,
    budget: f64,
    log: &Path,
    workdir: &Path,
    limit: Duration,
) -> anyhow::Result<PeerRun> {
    let err = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let started = Instant::now();
    let mut child = Command::new(python)
        .arg(script)
        .arg(csv)
        .args(["--target", target, "--task", task, "--tool", tool])
        .arg("--budget")
        .arg(format!("{budget}"))
        .args(["--threads", "2"])
        .arg("--workdir")
        .arg(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall_s = started.elapsed().as_secs_f64();
    let out = reader.join().unwrap_or_default();
    let failed = |why: String| PeerRun {
        score: None,
        json: json!({"tool": tool, "error": why, "wall_seconds": wall_s, "log": log.display().to_string()}),
    };
    let Some(status) = status else {
        return Ok(failed(format!("killed after {:.0} s", limit.as_secs_f64())));
    };
    if !status.success() {
        return Ok(failed(format!("{status}; see {}", log.display())));
    }
    let Some(v) = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
    else {
        return Ok(failed(format!("no JSON on stdout; see {}", log.display())));
    };
    let mut v = v;
    v["wall_seconds"] = json!(wall_s);
    Ok(PeerRun {
        score: v["score"].as_f64(),
        json: v,
    })
}

fn update_readme(path: &Path, md: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let new = benchreport::replace_block(&text, "automl", md)
        .map_err(|e| anyhow::anyhow!("{} {e}; nothing replaced", path.display()))?;
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "bench: updated {} between <!-- bench:automl --> and <!-- /bench:automl -->",
        path.display()
    );
    Ok(())
}

fn f4(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

pub fn automl(b: &AutomlBench) -> anyhow::Result<()> {
    if !(b.time_budget.is_finite() && b.time_budget > 0.0) {
        bail!("--time-budget must be a positive number of seconds");
    }
    let cases: Vec<_> = CASES
        .into_iter()
        .filter(|(name, _, _)| b.datasets.is_empty() || b.datasets.iter().any(|d| d == name))
        .collect();
    if cases.is_empty() {
        bail!("--datasets names none of {}", CASES.map(|c| c.0).join(", "));
    }
    // every file is checked before the first (long) run
    let anchor_data = match b.peers {
        Peers::Anchors => Some(anchors(&b.data)?),
        _ => None,
    };
    for (name, _, _) in &cases {
        need(&b.data.join(format!("{name}.csv")))?;
    }
    let script = b.peers_dir.join("peers.py");
    let (flaml_py, ag_py) = if b.peers == Peers::Live {
        if !script.is_file() {
            bail!(
                "{}: no such file; run from the repository's root, pass --peers-dir DIR (the repository's bench/automl), or --no-peers",
                script.display()
            );
        }
        std::fs::create_dir_all(&b.work_dir)
            .with_context(|| format!("creating {}", b.work_dir.display()))?;
        let f = ensure_venv(
            &b.python,
            &b.work_dir.join("venv-flaml"),
            &b.peers_dir.join("requirements-flaml.txt"),
        )?;
        let a = ensure_venv(
            &b.python,
            &b.work_dir.join("venv-autogluon"),
            &b.peers_dir.join("requirements-autogluon.txt"),
        )?;
        (Some(f), Some(a))
    } else {
        (None, None)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stamp = benchreport::utc_stamp();
    let load_before = benchreport::loadavg();
    let peers_word = match b.peers {
        Peers::Live => "peers run in this run, one after the other",
        Peers::Anchors => {
            "peers' figures from datasets/anchors/automl.json, measured at another time"
        }
        Peers::None => "Atelier alone",
    };
    println!(
        "AutoML at a {:.0} s budget on {cores} cores ({peers_word}); test scores (AUC binary, accuracy multiclass, R² regression)\n",
        b.time_budget,
    );
    let header = format!(
        "{:<20} {:>8} {:>8} {:>8} {:>8} {:>9}  {:>6} {:>5}  {:<14} verdict",
        "dataset", "atelier", "lgbm", "flaml", "autogl", "best peer", "time s", "cands", "stopped"
    );
    println!("{header}");
    let mut rows = Vec::new();
    let mut versions: serde_json::Map<String, Value> = serde_json::Map::new();
    let limit = Duration::from_secs_f64(b.time_budget * 4.0 + 300.0);
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
        drop(train);
        let mut peer_json = serde_json::Map::new();
        let (lgbm, flaml, ag) = match b.peers {
            Peers::Live => {
                let logs = b.work_dir.join("logs");
                std::fs::create_dir_all(&logs)?;
                let mut get = |tool: &str, py: &Path| -> anyhow::Result<Option<f64>> {
                    let wd = b.work_dir.join(format!("work/{name}-{tool}"));
                    let _ = std::fs::remove_dir_all(&wd);
                    let r = run_peer(
                        py,
                        &script,
                        &path,
                        target,
                        task,
                        tool,
                        b.time_budget,
                        &logs.join(format!("{name}-{tool}.log")),
                        &wd,
                        limit,
                    )?;
                    let _ = std::fs::remove_dir_all(&wd);
                    if let Some(err) = r.json["error"].as_str() {
                        eprintln!("bench: {tool} on {name} failed: {err}");
                    } else {
                        // the same split on both sides
                        let n_test = r.json["n_test"].as_u64().unwrap_or(0) as usize;
                        let first: Vec<usize> = r.json["first_test"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|v| v.as_u64().map(|v| v as usize))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let ours: Vec<usize> = test_idx.iter().take(first.len()).copied().collect();
                        if n_test != test_idx.len() || first != ours {
                            bail!(
                                "{tool} on {name}: peers.py's split ({n_test} test rows, first {first:?}) differs from Atelier's ({} rows, first {ours:?})",
                                test_idx.len()
                            );
                        }
                        if let Some(vs) = r.json["versions"].as_object() {
                            let key = if tool == "autogluon" {
                                "autogluon"
                            } else {
                                "flaml"
                            };
                            versions.insert(key.into(), Value::Object(vs.clone()));
                        }
                    }
                    peer_json.insert(tool.into(), r.json);
                    Ok(r.score)
                };
                let f_py = flaml_py.as_deref().context("flaml venv")?;
                let a_py = ag_py.as_deref().context("autogluon venv")?;
                let l = get("lgbm", f_py)?;
                let f = get("flaml", f_py)?;
                let a = get("autogluon", a_py)?;
                (l, f, a)
            }
            Peers::Anchors => {
                let a = anchor_data.as_ref().context("anchors")?;
                (
                    anchor(a, name, "lgbm", metric),
                    anchor(a, name, "flaml_60s", metric),
                    anchor(a, name, "autogluon_60s", metric),
                )
            }
            Peers::None => (None, None, None),
        };
        let best = [flaml, ag].into_iter().flatten().reduce(f64::max);
        let verdict = match (lgbm, best) {
            (Some(l), _) if s < l - TIE => "below LightGBM default",
            (_, Some(bp)) if s >= bp - TIE => "at or above the best peer",
            (_, Some(_)) => "below the best peer",
            (Some(_), None) => "at or above LightGBM default",
            (None, None) => "-",
        };
        let stop = out.stop_reason.kind().replace('_', " ");
        println!(
            "{name:<20} {s:>8.4} {:>8} {:>8} {:>8} {:>9}  {took:>6.1} {:>5}  {stop:<14} {verdict}",
            f4(lgbm),
            f4(flaml),
            f4(ag),
            f4(best),
            out.leaderboard.len(),
        );
        rows.push(json!({
            "dataset": name, "task": task, "metric": metric, "atelier": s, "lgbm": lgbm,
            "flaml": flaml, "autogluon": ag, "best_peer": best, "seconds": took,
            "candidates": out.leaderboard.len(),
            "stop_reason": out.stop_reason.to_json(out.metric),
            "search_seconds": out.search_seconds,
            "validation_score": out.score,
            "solution": out.pipeline.metadata.algorithm, "verdict": verdict,
            "peers": Value::Object(peer_json),
        }));
        if took > b.time_budget * 1.1 + 1.0 {
            bail!(
                "{name}: AutoML took {took:.1} s for a {:.0} s budget",
                b.time_budget
            );
        }
    }
    let load_after = benchreport::loadavg();
    let machine = format!("{cores} × {}", benchreport::cpu_model());
    let t = tally(&rows);
    println!(
        "\nat or above the best peer (within {TIE}) on {} of {} datasets ({} with no tolerance); below LightGBM default on {}",
        t.at_or_above,
        rows.len(),
        t.strictly_at_or_above,
        t.below_lgbm
    );
    let version_line = versions_line(&versions);
    if !version_line.is_empty() {
        println!("{version_line}");
    }
    let meta = json!({
        "date": stamp, "machine": machine, "load_average_before": load_before,
        "load_average_after": load_after, "time_budget": b.time_budget,
        "max_candidates": b.max_candidates, "peers": format!("{:?}", b.peers).to_lowercase(),
        "atelier_version": env!("CARGO_PKG_VERSION"), "versions": Value::Object(versions.clone()),
        "tie": TIE,
    });
    if let Some(p) = &b.json_out {
        std::fs::write(
            p,
            serde_json::to_string_pretty(&json!({"meta": meta, "rows": rows}))?,
        )?;
        println!("wrote {}", p.display());
    }
    if let Some(readme) = &b.readme {
        update_readme(readme, &markdown(b, &rows, &meta, &version_line))?;
    }
    Ok(())
}

/// "FLAML 2.7.0 (…), AutoGluon tabular 1.6.3 (…)", from the peers' reports.
fn versions_line(v: &serde_json::Map<String, Value>) -> String {
    let list = |o: &Value, skip: &str| -> String {
        o.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != skip)
                    .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    if let Some(f) = v.get("flaml") {
        parts.push(format!(
            "FLAML {} and LightGBM {} ({})",
            f["flaml"].as_str().unwrap_or("?"),
            f["lightgbm"].as_str().unwrap_or("?"),
            list(f, "flaml")
        ));
    }
    if let Some(a) = v.get("autogluon") {
        parts.push(format!(
            "AutoGluon tabular {} ({})",
            a["autogluon.tabular"].as_str().unwrap_or("?"),
            list(a, "autogluon.tabular")
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("versions: {}", parts.join("; "))
    }
}

/// The README block: how it was measured, then the table.
fn markdown(b: &AutomlBench, rows: &[Value], meta: &Value, versions: &str) -> String {
    let mut md = String::new();
    let peers = match b.peers {
        Peers::Live => {
            "every tool in the same run, one after the other on the same machine (never two at \
             once): LightGBM with default settings, FLAML (`time_budget`) and AutoGluon tabular \
             (`time_limit`, `medium_quality` without its torch models), each with 2 threads, run \
             by `bench/automl/peers.py` in venvs the command made from the pinned \
             `bench/automl/requirements-*.txt`"
        }
        Peers::Anchors => {
            "peers' figures from `datasets/anchors/automl.json`, measured at another time"
        }
        Peers::None => "Atelier alone",
    };
    md.push_str(&format!(
        "Measured by `atelier bench automl --time-budget {:.0}{}` on {} ({}; load average {} → {}), \
         release build, {peers}. Test scores on the split of `datasets/README.md` (ROC AUC binary, \
         accuracy multiclass, R² regression); \"time\" is Atelier's wall time for search and \
         refit, \"stopped\" why its search ended. A verdict counts scores within {TIE} as equal.\n",
        b.time_budget,
        if b.max_candidates == automl::MAX_CANDIDATES {
            String::new()
        } else {
            format!(" --max-candidates {}", b.max_candidates)
        },
        meta["date"].as_str().unwrap_or(""),
        meta["machine"].as_str().unwrap_or(""),
        meta["load_average_before"].as_str().unwrap_or(""),
        meta["load_average_after"].as_str().unwrap_or(""),
    ));
    if !versions.is_empty() {
        md.push_str(&format!(
            "{}.\n",
            versions.replacen("versions: ", "Versions: ", 1)
        ));
    }
    md.push_str(
        "\n| dataset | metric | Atelier | LightGBM | FLAML | AutoGluon | best peer | time s | candidates | stopped | verdict |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    let f = |v: &Value| v.as_f64().map_or("-".into(), |v| format!("{v:.4}"));
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} |\n",
            r["dataset"].as_str().unwrap_or(""),
            r["metric"].as_str().unwrap_or(""),
            f(&r["atelier"]),
            f(&r["lgbm"]),
            f(&r["flaml"]),
            f(&r["autogluon"]),
            f(&r["best_peer"]),
            r["seconds"].as_f64().unwrap_or(0.0),
            r["candidates"],
            r["stop_reason"]["kind"]
                .as_str()
                .unwrap_or("")
                .replace('_', " "),
            r["verdict"].as_str().unwrap_or(""),
        ));
    }
    let t = tally(rows);
    md.push_str(&format!(
        "\nAt or above the best peer on {} of {} datasets ({} with no tolerance: Atelier's score ≥ the best peer's); below LightGBM default on {}.\n",
        t.at_or_above,
        rows.len(),
        t.strictly_at_or_above,
        t.below_lgbm
    ));
    md
}

/// The run's summary, for the terminal and the README alike.
struct Tally {
    /// Verdict "at or above the best peer" (within [`TIE`]).
    at_or_above: usize,
    /// Atelier's score at least the best peer's, no tolerance (scores as
    /// printed, to four places).
    strictly_at_or_above: usize,
    below_lgbm: usize,
}

fn tally(rows: &[Value]) -> Tally {
    let verdicts = |v: &str| rows.iter().filter(|r| r["verdict"] == v).count();
    let r4 = |v: &Value| v.as_f64().map(|x| (x * 1e4).round());
    Tally {
        at_or_above: verdicts("at or above the best peer"),
        strictly_at_or_above: rows
            .iter()
            .filter(|r| match (r4(&r["atelier"]), r4(&r["best_peer"])) {
                (Some(a), Some(b)) => a >= b,
                _ => false,
            })
            .count(),
        below_lgbm: verdicts("below LightGBM default"),
    }
}
