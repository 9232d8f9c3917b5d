//! `atelier jobs run | logs | stop`: users' own code as processing and
//! training jobs on a server. Local files named as inputs are uploaded as
//! datasets (folders as artifacts), and the code — `--code DIR`, or else the
//! files the command names that exist here — is uploaded so that the job
//! runs it in its working folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::remote::{self, Client, encode};

/// What `atelier jobs run` was given.
#[derive(clap::Args)]
pub struct RunArgs {
    /// processing or training.
    #[arg(long, default_value = "training")]
    pub kind: String,
    #[arg(long)]
    pub name: Option<String>,
    /// NAME=SOURCE (repeatable).
    #[arg(long = "input", value_name = "NAME=SOURCE")]
    pub inputs: Vec<String>,
    /// A processing job's output folder name (repeatable).
    #[arg(long = "output", value_name = "NAME")]
    pub outputs: Vec<String>,
    /// KEY=VALUE (repeatable).
    #[arg(long = "hyperparameter", value_name = "KEY=VALUE")]
    pub hyperparameters: Vec<String>,
    /// An environment variable for the command, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A Debugger rule, e.g. Overfit:patience=3,stop_training=true (repeatable).
    #[arg(long = "rule", value_name = "RULE[:PARAM=VALUE,…]")]
    pub rules: Vec<String>,
    /// The experiment of the job's run [default: jobs].
    #[arg(long)]
    pub experiment: Option<String>,
    /// Seconds before the job is stopped [default: 86400].
    #[arg(long)]
    pub max_runtime: Option<u64>,
    /// Seconds between SIGTERM and SIGKILL when stopping [default: 120].
    #[arg(long)]
    pub stop_grace: Option<u64>,
    /// Register the training job's model/ under this name.
    #[arg(long)]
    pub register_model: Option<String>,
    /// A folder to upload and run the command in.
    #[arg(long)]
    pub code: Option<PathBuf>,
    /// Print the job id and return at once.
    #[arg(long)]
    pub detach: bool,
    #[arg(long, env = "ATELIER_SERVER", default_value = remote::DEFAULT_SERVER)]
    pub server: String,
    /// The command and its arguments, after --.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Files bigger than this are not uploaded as code.
const MAX_CODE_FILE: u64 = 50 << 20;

pub(crate) fn pair(what: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => bail!("{what} '{s}': write NAME=VALUE"),
    }
}

fn random_hex() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Upload every file below `dir` under the artifact folder `dest`; hidden
/// folders, `__pycache__`, virtual environments and large files are left out.
fn upload_dir(c: &Client, dir: &Path, dest: &str) -> anyhow::Result<usize> {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            let t = e.file_type()?;
            if t.is_dir() {
                let skip = name.starts_with('.')
                    || name == "__pycache__"
                    || name == "node_modules"
                    || e.path().join("pyvenv.cfg").exists();
                if !skip {
                    stack.push(e.path());
                }
            } else if t.is_file() && e.metadata()?.len() <= MAX_CODE_FILE {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or(name);
                c.upload_artifact(&e.path(), &format!("{dest}/{rel}"))?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Upload a job's code: `code` (a folder), or else the files the command
/// names that exist here. Returns the artifact folder, when anything went.
pub(crate) fn upload_code(
    c: &Client,
    code: Option<&Path>,
    command: &[String],
) -> anyhow::Result<Option<String>> {
    let dest = crate::remote::project_folder(&format!("jobs-code/{}", random_hex()));
    let uploaded = match code {
        Some(dir) => {
            if !dir.is_dir() {
                bail!("--code {}: not a folder", dir.display());
            }
            upload_dir(c, dir, &dest)?
        }
        None => {
            let mut n = 0;
            for arg in command.iter().skip(1) {
                let p = Path::new(arg);
                if p.is_relative()
                    && p.is_file()
                    && !arg.contains("..")
                    && p.metadata().map(|m| m.len()).unwrap_or(u64::MAX) <= MAX_CODE_FILE
                {
                    c.upload_artifact(p, &format!("{dest}/{}", arg.replace('\\', "/")))?;
                    n += 1;
                }
            }
            n
        }
    };
    if uploaded == 0 {
        return Ok(None);
    }
    eprintln!("uploaded {uploaded} code file(s) to {dest}");
    Ok(Some(dest))
}

/// A local input becomes something the server can read.
pub(crate) fn input_source(c: &Client, name: &str, src: &str) -> anyhow::Result<String> {
    let remote = [
        "datasets/",
        "dataset:",
        "runs:/",
        "models:/",
        "mlflow-artifacts:",
    ];
    if remote.iter().any(|p| src.starts_with(p)) {
        return Ok(src.to_string());
    }
    let p = Path::new(src);
    if p.is_file() {
        let uploaded = c.upload_dataset(p)?;
        eprintln!("uploaded {src} as the dataset {uploaded}");
        Ok(format!("datasets/{uploaded}"))
    } else if p.is_dir() {
        let dest = crate::remote::project_folder(&format!("jobs-inputs/{}", random_hex()));
        let n = upload_dir(c, p, &dest)?;
        eprintln!("uploaded {n} file(s) of {src}");
        Ok(format!("mlflow-artifacts:/{dest}"))
    } else {
        bail!(
            "input '{name}': '{src}' is neither a local file or folder nor a server source (datasets/…, runs:/…, models:/…)"
        )
    }
}

/// `atelier jobs run`.
pub fn run(a: RunArgs) -> anyhow::Result<std::process::ExitCode> {
    if a.command.is_empty() {
        bail!("give the command after --, e.g. atelier jobs run -- python train.py");
    }
    if a.kind != "processing" && a.kind != "training" {
        bail!("--kind {}: processing or training", a.kind);
    }
    let c = Client::new(&a.server)?;
    let mut spec = Map::new();
    spec.insert("command".into(), json!(a.command));
    if let Some(n) = &a.name {
        spec.insert("name".into(), json!(n));
    }
    let mut inputs = Map::new();
    for i in &a.inputs {
        let (name, src) = pair("--input", i)?;
        let source = input_source(&c, &name, &src)?;
        inputs.insert(name, json!(source));
    }
    spec.insert("inputs".into(), Value::Object(inputs));
    if !a.outputs.is_empty() {
        spec.insert("outputs".into(), json!(a.outputs));
    }
    let kv = |what: &str, list: &[String]| -> anyhow::Result<Map<String, Value>> {
        list.iter()
            .map(|s| pair(what, s).map(|(k, v)| (k, json!(v))))
            .collect()
    };
    spec.insert(
        "hyperparameters".into(),
        Value::Object(kv("--hyperparameter", &a.hyperparameters)?),
    );
    spec.insert("environment".into(), Value::Object(kv("--env", &a.env)?));
    if !a.rules.is_empty() {
        spec.insert("rules".into(), json!(a.rules));
    }
    for (k, v) in [
        ("experiment", a.experiment.as_ref().map(|e| json!(e))),
        ("max_runtime_seconds", a.max_runtime.map(|v| json!(v))),
        ("stop_grace_seconds", a.stop_grace.map(|v| json!(v))),
        (
            "register_model",
            a.register_model.as_ref().map(|v| json!(v)),
        ),
    ] {
        if let Some(v) = v {
            spec.insert(k.into(), v);
        }
    }
    if let Some(dest) = upload_code(&c, a.code.as_deref(), &a.command)? {
        spec.insert("code".into(), json!(dest));
    }
    let v = c.post(
        "/api/atelier/jobs",
        &json!({"kind": a.kind, "spec": Value::Object(spec)}),
    )?;
    let id = v["job"]["id"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "job {id} ({}) queued",
        v["job"]["name"].as_str().unwrap_or("")
    );
    if a.detach {
        println!("{id}");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let job = follow_logs(&c, &id, true)?;
    Ok(report(&job))
}

/// Print the outcome; the exit code says whether it succeeded.
pub(crate) fn report(job: &Value) -> std::process::ExitCode {
    let status = job["primary_status"].as_str().unwrap_or("");
    match job["status"].as_str() {
        Some("succeeded") => {
            let run = job["result"]["run_id"].as_str().unwrap_or("");
            eprintln!("{status}: run {run}");
            if let Some(m) = job["result"]["model_version"].as_object() {
                eprintln!(
                    "registered model {} version {}",
                    m.get("name").and_then(Value::as_str).unwrap_or(""),
                    m.get("version").cloned().unwrap_or(Value::Null)
                );
            }
            std::process::ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "{status}: {}",
                job["error"].as_str().unwrap_or("(no reason recorded)")
            );
            std::process::ExitCode::FAILURE
        }
    }
}

/// Print a job's output lines; with `follow`, until the job ends. Returns
/// the job as it ended (or as it is, without `follow`).
pub fn follow_logs(c: &Client, id: &str, follow: bool) -> anyhow::Result<Value> {
    let mut from = 0u64;
    let out = std::io::stdout();
    loop {
        let v = c.get(&format!(
            "/api/atelier/jobs/{}/logs?from={from}",
            encode(id)
        ))?;
        let mut lock = out.lock();
        for l in v["lines"].as_array().into_iter().flatten() {
            let text = l["text"].as_str().unwrap_or("");
            if l["stream"] == "stderr" {
                eprintln!("{text}");
            } else {
                let _ = writeln!(lock, "{text}");
            }
        }
        let _ = lock.flush();
        let next = v["next"].as_u64().unwrap_or(from);
        let done = v["done"].as_bool().unwrap_or(false);
        if next == from && (done || !follow) {
            return Ok(c.get(&format!("/api/atelier/jobs/{}", encode(id)))?["job"].clone());
        }
        if next == from {
            std::thread::sleep(Duration::from_millis(400));
        }
        from = next;
    }
}

/// `atelier jobs logs [-f]`.
pub fn logs(server: &str, id: &str, follow: bool) -> anyhow::Result<std::process::ExitCode> {
    let c = Client::new(server)?;
    let job = follow_logs(&c, id, follow)?;
    Ok(if follow {
        report(&job)
    } else {
        std::process::ExitCode::SUCCESS
    })
}
