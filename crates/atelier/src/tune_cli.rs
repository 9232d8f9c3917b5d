//! `atelier tune`: a hyperparameter tuning job on a server. The search is
//! checked here first; local inputs and the code are uploaded the way
//! `atelier jobs run` does it (its helpers), the job is submitted and its
//! trials are shown as they run, with the best so far, until it ends.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde_json::{Map, Value, json};

use crate::jobs_cli::{input_source, pair, upload_code};
use crate::remote::{self, Client, encode};

/// What `atelier tune` was given.
#[derive(clap::Args)]
pub struct TuneArgs {
    /// The metric the script logs and which way is better, e.g. val_loss:minimize or auc:maximize.
    #[arg(long, value_name = "METRIC:DIRECTION")]
    pub objective: String,
    /// A parameter to search (repeatable): NAME=uniform:MIN:MAX, NAME=log-uniform:MIN:MAX,
    /// NAME=int:MIN:MAX, NAME=log-int:MIN:MAX or NAME=choice:A,B,…
    #[arg(long = "param", value_name = "NAME=SPEC", required = true)]
    pub params: Vec<String>,
    /// bayesian (a Gaussian process after a few random trials) or random.
    #[arg(long, default_value = "bayesian")]
    pub strategy: String,
    /// Trials in all.
    #[arg(long, default_value_t = 10)]
    pub max_jobs: u64,
    /// Trials at once (the server needs --job-workers of at least this plus one).
    #[arg(long, default_value_t = 1)]
    pub parallel: u64,
    /// median (stop a trial whose best is worse than the median of completed
    /// trials' running averages at the same step) or off.
    #[arg(long, default_value = "off")]
    pub early_stopping: String,
    /// Seed of the random draws (the same seed gives the same random trials).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// NAME=SOURCE (repeatable): datasets/<file>, runs:/…, models:/…, or a local file or folder (uploaded).
    #[arg(long = "input", value_name = "NAME=SOURCE")]
    pub inputs: Vec<String>,
    /// A fixed hyperparameter, KEY=VALUE (repeatable).
    #[arg(long = "hyperparameter", value_name = "KEY=VALUE")]
    pub hyperparameters: Vec<String>,
    /// An environment variable for every trial, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A folder to upload and run the command in [default: the files the command names].
    #[arg(long)]
    pub code: Option<std::path::PathBuf>,
    /// The experiment of the parent run and the trials' runs [default: tuning].
    #[arg(long)]
    pub experiment: Option<String>,
    /// The trials' name (trial jobs are <name>-001, <name>-002, …).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds before a trial is stopped [default: 86400].
    #[arg(long)]
    pub max_runtime: Option<u64>,
    /// Print the job id and return at once.
    #[arg(long)]
    pub detach: bool,
    #[arg(long, env = "ATELIER_SERVER", default_value = remote::DEFAULT_SERVER)]
    pub server: String,
    /// The training command and its arguments, after --.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// `val_loss:minimize` → the objective's JSON.
fn objective(s: &str) -> anyhow::Result<Value> {
    let Some((metric, dir)) = s.rsplit_once(':') else {
        bail!("--objective {s}: write METRIC:DIRECTION, e.g. val_loss:minimize");
    };
    let direction = match dir.trim().to_ascii_lowercase().as_str() {
        "minimize" | "min" => "minimize",
        "maximize" | "max" => "maximize",
        other => bail!("--objective {s}: '{other}' is not minimize or maximize"),
    };
    Ok(json!({"metric": metric.trim(), "direction": direction}))
}

/// The tuning spec, with inputs and code as given here (not yet uploaded).
fn spec(a: &TuneArgs) -> anyhow::Result<Map<String, Value>> {
    let kv = |what: &str, list: &[String]| -> anyhow::Result<Map<String, Value>> {
        list.iter()
            .map(|s| pair(what, s).map(|(k, v)| (k, json!(v))))
            .collect()
    };
    let mut training = Map::new();
    training.insert("command".into(), json!(a.command));
    training.insert("inputs".into(), Value::Object(kv("--input", &a.inputs)?));
    training.insert(
        "hyperparameters".into(),
        Value::Object(kv("--hyperparameter", &a.hyperparameters)?),
    );
    training.insert("environment".into(), Value::Object(kv("--env", &a.env)?));
    if let Some(e) = &a.experiment {
        training.insert("experiment".into(), json!(e));
    }
    if let Some(n) = &a.name {
        training.insert("name".into(), json!(n));
    }
    if let Some(r) = a.max_runtime {
        training.insert("max_runtime_seconds".into(), json!(r));
    }
    let mut parameters = Map::new();
    for p in &a.params {
        let (name, v) = tuning::parse_cli_param(p)?;
        if parameters.insert(name.clone(), v).is_some() {
            bail!("--param {name} is given twice");
        }
    }
    let mut s = Map::new();
    s.insert("training".into(), Value::Object(training));
    s.insert("objective".into(), objective(&a.objective)?);
    s.insert("parameters".into(), Value::Object(parameters));
    s.insert("strategy".into(), json!(a.strategy));
    s.insert("max_jobs".into(), json!(a.max_jobs));
    s.insert("max_parallel_jobs".into(), json!(a.parallel));
    s.insert("early_stopping".into(), json!(a.early_stopping));
    s.insert("seed".into(), json!(a.seed));
    Ok(s)
}

/// `atelier tune`.
pub fn run(a: TuneArgs) -> anyhow::Result<ExitCode> {
    if a.command.is_empty() {
        bail!("give the training command after --, e.g. atelier tune … -- python train.py");
    }
    let mut spec = spec(&a)?;
    // every mistake in the search before anything is uploaded
    tuning::TuningSpec::parse(&Value::Object(spec.clone())).map_err(anyhow::Error::msg)?;
    let c = Client::new(&a.server)?;
    let training = spec
        .get_mut("training")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow::anyhow!("the spec has no training part"))?;
    let mut inputs = Map::new();
    for i in &a.inputs {
        let (name, src) = pair("--input", i)?;
        let source = input_source(&c, &name, &src)?;
        inputs.insert(name, json!(source));
    }
    training.insert("inputs".into(), Value::Object(inputs));
    if let Some(dest) = upload_code(&c, a.code.as_deref(), &a.command)? {
        training.insert("code".into(), json!(dest));
    }
    let v = c.post(
        "/api/atelier/jobs",
        &json!({"kind": tuning::KIND, "spec": Value::Object(spec)}),
    )?;
    let id = v["job"]["id"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "tuning job {id} ({}) queued; follow it at {}/jobs/{id}",
        v["job"]["name"].as_str().unwrap_or(""),
        a.server.trim_end_matches('/')
    );
    if a.detach {
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let job = follow(&c, &id)?;
    Ok(report(&job))
}

fn fmt_num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.6}"),
        None => "-".into(),
    }
}

fn fmt_params(p: &Value) -> String {
    p.as_object()
        .map(|m| {
            let mut kv: Vec<(&String, &Value)> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            kv.into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn trial_status(t: &Value) -> String {
    if t["stopped_early"].as_bool().unwrap_or(false) {
        "stopped early".into()
    } else {
        t["status"].as_str().unwrap_or("").to_string()
    }
}

/// The best-so-far line.
fn best_line(p: &Value) -> String {
    let metric = p["objective"]["metric"].as_str().unwrap_or("objective");
    let trials = p["trials"].as_array().cloned().unwrap_or_default();
    match p["best"].as_object() {
        Some(b) => {
            let n = trials
                .iter()
                .position(|t| t["job_id"] == b["job_id"])
                .map_or(String::new(), |i| format!(" (trial {})", i + 1));
            format!(
                "best {metric} {}{n}: {}",
                fmt_num(&b["objective"]),
                fmt_params(&b["params"])
            )
        }
        None => format!("best {metric}: -"),
    }
}

/// The trials table (the last `limit` trials) and the best so far.
fn table(p: &Value, limit: usize) -> Vec<String> {
    let metric = p["objective"]["metric"].as_str().unwrap_or("objective");
    let trials = p["trials"].as_array().cloned().unwrap_or_default();
    let mut out = vec![format!(
        "{:>4}  {:<14} {:>14}  params",
        "#", "status", metric
    )];
    let skip = trials.len().saturating_sub(limit);
    if skip > 0 {
        out.push(format!("  … {skip} earlier trial(s)"));
    }
    for (i, t) in trials.iter().enumerate().skip(skip) {
        out.push(format!(
            "{:>4}  {:<14} {:>14}  {}",
            i + 1,
            trial_status(t),
            fmt_num(&t["objective"]),
            fmt_params(&t["params"])
        ));
    }
    out.push(best_line(p));
    out
}

/// Poll the job until it ends, showing its trials: a table redrawn in
/// place on a terminal, a line per change otherwise.
fn follow(c: &Client, id: &str) -> anyhow::Result<Value> {
    let tty = std::io::stderr().is_terminal();
    let mut drawn = 0usize;
    let mut last: Vec<String> = Vec::new();
    let mut note_shown = String::new();
    loop {
        let job = c.get(&format!("/api/atelier/jobs/{}", encode(id)))?["job"].clone();
        let p = &job["progress"];
        if let Some(n) = p["note"].as_str()
            && n != note_shown
        {
            if tty && drawn > 0 {
                eprint!("\x1b[{drawn}F\x1b[J");
                drawn = 0;
            }
            eprintln!("note: {n}");
            note_shown = n.to_string();
            last.clear();
        }
        let ended = matches!(
            job["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        );
        if tty {
            let lines = table(p, 20);
            if lines != last {
                let mut err = std::io::stderr().lock();
                if drawn > 0 {
                    let _ = write!(err, "\x1b[{drawn}F\x1b[J");
                }
                for l in &lines {
                    let _ = writeln!(err, "{l}");
                }
                let _ = err.flush();
                drawn = lines.len();
                last = lines;
            }
        } else {
            // one line per trial whose state changed
            let rows: Vec<String> = p["trials"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, t)| {
                    format!(
                        "trial {} {}: {} {}",
                        i + 1,
                        trial_status(t),
                        fmt_num(&t["objective"]),
                        fmt_params(&t["params"])
                    )
                })
                .collect();
            let mut changed = false;
            for (i, r) in rows.iter().enumerate() {
                if last.get(i) != Some(r) {
                    eprintln!("{r}");
                    changed = true;
                }
            }
            if changed {
                eprintln!("  {}", best_line(p));
            }
            last = rows;
        }
        if ended {
            return Ok(job);
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
}

/// Print the outcome; the exit code says whether the tuning job succeeded.
fn report(job: &Value) -> ExitCode {
    let status = job["primary_status"].as_str().unwrap_or("");
    let r = if job["result"].is_object() {
        &job["result"]
    } else {
        &job["progress"]
    };
    match job["status"].as_str() {
        Some("succeeded") => {
            eprintln!("{status}: {}", best_line(r));
            eprintln!(
                "best run {} (tagged atelier.tuning_best=true); parent run {}",
                r["best"]["run_id"].as_str().unwrap_or("-"),
                r["parent_run_id"].as_str().unwrap_or("-")
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "{status}: {}",
                job["error"].as_str().unwrap_or("(no reason recorded)")
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_and_tables() {
        assert_eq!(
            objective("val_loss:minimize").unwrap(),
            json!({"metric": "val_loss", "direction": "minimize"})
        );
        assert_eq!(objective("a:b:max").unwrap()["metric"], "a:b");
        assert!(objective("val_loss").is_err());
        assert!(objective("val_loss:down").is_err());
        let p = json!({
            "objective": {"metric": "val_loss", "direction": "minimize"},
            "trials": [
                {"job_id": "a", "status": "succeeded", "objective": 0.5, "stopped_early": false, "params": {"lr": 0.1, "kind": "x"}},
                {"job_id": "b", "status": "cancelled", "objective": 2.0, "stopped_early": true, "params": {"lr": 0.9, "kind": "y"}}
            ],
            "best": {"job_id": "a", "objective": 0.5, "params": {"lr": 0.1, "kind": "x"}}
        });
        let t = table(&p, 20);
        assert_eq!(t.len(), 4, "{t:?}");
        assert!(t[2].contains("stopped early") && t[2].contains("2.000000"));
        assert_eq!(t[3], "best val_loss 0.500000 (trial 1): kind=x lr=0.1");
        assert!(table(&p, 1)[1].contains("1 earlier"));
    }
}
