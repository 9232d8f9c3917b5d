//! `atelier notebooks run`: a notebook as a job on a server (papermill's
//! `-p NAME=VALUE`), and the hidden `atelier __notebook-run` that executes it
//! inside the job with `nbexec` — saving the output notebook after every
//! cell into the job's output folder and to the job's run, so the Studio
//! previews it while it runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::remote::{self, Client, encode};

/// What `atelier notebooks run` was given.
#[derive(clap::Args)]
pub struct RunArgs {
    /// A local .ipynb file (uploaded), `workspace:<path>` (your Studio
    /// workspace), or an artifact (`runs:/<run>/<path>`).
    pub notebook: String,
    /// A parameter, NAME=VALUE (repeatable). As papermill's -p: True/False,
    /// None, integers and floats are typed, anything else is a string.
    #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    /// A parameter whose value is a string as written, NAME=VALUE (repeatable; papermill's -r).
    #[arg(short = 'r', long = "raw-parameter", value_name = "NAME=VALUE")]
    pub raw_parameters: Vec<String>,
    /// The kernel to run on [default: the notebook's own].
    #[arg(short = 'k', long)]
    pub kernel: Option<String>,
    /// Seconds one cell may run before it is interrupted and the run fails.
    #[arg(long)]
    pub cell_timeout: Option<u64>,
    /// The experiment of the run [default: jobs].
    #[arg(long)]
    pub experiment: Option<String>,
    /// Write the executed notebook here too (also when a cell failed).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Print the job id and return at once.
    #[arg(long)]
    pub detach: bool,
    #[arg(long, env = "ATELIER_SERVER", default_value = remote::DEFAULT_SERVER)]
    pub server: String,
}

/// papermill's typing of `-p` values.
pub fn typed(v: &str) -> Value {
    match v {
        "True" => return json!(true),
        "False" => return json!(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return json!(i);
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return json!(f);
    }
    json!(v)
}

fn random_hex() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The artifact path (under the artifact root) of a run's file.
fn run_artifact(c: &Client, run_id: &str, rel: &str) -> anyhow::Result<String> {
    let r = c.get(&format!(
        "/api/2.0/mlflow/runs/get?run_id={}",
        encode(run_id)
    ))?;
    let uri = r["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap_or_default();
    let root = uri
        .strip_prefix("mlflow-artifacts:/")
        .ok_or_else(|| anyhow::anyhow!("the run's artifacts are at '{uri}', not on this server"))?;
    Ok(format!("{}/{rel}", root.trim_matches('/')))
}

pub fn run(a: RunArgs) -> anyhow::Result<std::process::ExitCode> {
    let c = Client::new(&a.server)?;
    let mut parameters = serde_json::Map::new();
    for p in &a.parameters {
        let (k, v) = crate::jobs_cli::pair("-p", p)?;
        parameters.insert(k, typed(&v));
    }
    for p in &a.raw_parameters {
        let (k, v) = crate::jobs_cli::pair("-r", p)?;
        parameters.insert(k, json!(v));
    }
    let local = Path::new(&a.notebook);
    let source = if a.notebook.starts_with("workspace:") || a.notebook.starts_with("runs:/") {
        a.notebook.clone()
    } else if local.is_file() {
        let file = local
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".ipynb"))
            .ok_or_else(|| anyhow::anyhow!("{}: not a .ipynb file", local.display()))?;
        let dest =
            crate::remote::project_folder(&format!("notebook-uploads/{}/{file}", random_hex()));
        c.upload_artifact(local, &dest)?;
        dest
    } else {
        bail!(
            "{}: no such file (give a local .ipynb, workspace:<path> or runs:/<run>/<path>)",
            a.notebook
        );
    };
    let mut body = json!({"source": source, "parameters": parameters});
    if let Some(k) = &a.kernel {
        body["kernel"] = json!(k);
    }
    if let Some(t) = a.cell_timeout {
        body["cell_timeout_seconds"] = json!(t);
    }
    if let Some(e) = &a.experiment {
        body["experiment"] = json!(e);
    }
    let v = c.post("/api/atelier/notebooks/runs", &body)?;
    for w in v["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
    let id = v["job"]["id"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "job {id} ({}) queued",
        v["job"]["name"].as_str().unwrap_or("")
    );
    if a.detach {
        println!("{id}");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let job = crate::jobs_cli::follow_logs(&c, &id, true)?;
    if let Some(out) = &a.output {
        let run_id = job["progress"]["run_id"].as_str().unwrap_or_default();
        let file = job["spec"]["notebook"]["path"]
            .as_str()
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or("notebook.ipynb");
        let path = run_artifact(&c, run_id, &format!("output/notebook/{file}"))?;
        match c.download_artifact(&path, out) {
            Ok(_) => eprintln!("wrote the executed notebook to {}", out.display()),
            Err(e) => eprintln!("could not write the executed notebook: {e}"),
        }
    }
    Ok(crate::jobs_cli::report(&job))
}

/// What `atelier __notebook-run` was given (by the notebook job's spec).
#[derive(clap::Args)]
pub struct ExecArgs {
    /// The notebook's file name in $ATELIER_INPUT_NOTEBOOK (the output gets the same name).
    #[arg(long)]
    pub file: String,
    #[arg(long, default_value = "{}")]
    pub parameters_json: String,
    #[arg(long)]
    pub kernel: Option<String>,
    #[arg(long)]
    pub cell_timeout: Option<u64>,
    /// The Python whose kernel specs to use.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Input and output folders (default: the job's $ATELIER_INPUT_NOTEBOOK / $ATELIER_OUTPUT_NOTEBOOK).
    #[arg(long)]
    pub input_dir: Option<PathBuf>,
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("ipynb.partial");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The text of a cell's stream outputs and errors, for the job's log.
fn cell_log(cell: &Value) -> String {
    let mut out = String::new();
    for o in cell["outputs"].as_array().into_iter().flatten() {
        let text = |v: &Value| match v {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<String>(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        match o["output_type"].as_str() {
            Some("stream") => out.push_str(&text(&o["text"])),
            Some("execute_result") | Some("display_data") => {
                if let Some(t) = o["data"].get("text/plain") {
                    out.push_str(&text(t));
                    out.push('\n');
                }
            }
            Some("error") => out.push_str(&format!(
                "{}: {}\n",
                o["ename"].as_str().unwrap_or(""),
                o["evalue"].as_str().unwrap_or("")
            )),
            _ => {}
        }
    }
    out
}

/// Runs inside the job: execute, save after every cell (a local file and
/// the run's artifact), exit 0 when every cell ran, 1 otherwise (the reason
/// in the job's failure message).
pub fn exec(a: ExecArgs) -> anyhow::Result<std::process::ExitCode> {
    let env_dir = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let input_dir = a
        .input_dir
        .clone()
        .or_else(|| env_dir("ATELIER_INPUT_NOTEBOOK"))
        .context("no input folder: set --input-dir (a notebook job sets ATELIER_INPUT_NOTEBOOK)")?;
    let output_dir = a
        .output_dir
        .clone()
        .or_else(|| env_dir("ATELIER_OUTPUT_NOTEBOOK"))
        .context(
            "no output folder: set --output-dir (a notebook job sets ATELIER_OUTPUT_NOTEBOOK)",
        )?;
    if a.file.contains('/') || a.file.starts_with('.') {
        bail!("--file {}: a file name, not a path", a.file);
    }
    let input = input_dir.join(&a.file);
    let output = output_dir.join(&a.file);
    std::fs::create_dir_all(&output_dir)?;
    let bytes = std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
    let parameters: BTreeMap<String, Value> = serde_json::from_str(&a.parameters_json)
        .context("--parameters-json must be a JSON object")?;
    let opts = nbexec::ExecOptions {
        input_label: input.display().to_string(),
        output_label: output.display().to_string(),
        parameters,
        kernel_name: a.kernel.clone(),
        python: a.python.clone(),
        cwd: std::env::current_dir().ok(),
        cell_timeout: a.cell_timeout.map(Duration::from_secs),
        ..nbexec::ExecOptions::default()
    };
    // the run's copy is uploaded off the kernel's path, latest save first
    let (tx, rx) = mpsc::channel::<String>();
    let uploader = spawn_uploader(rx, a.file.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut printed = 0usize;
    let save_out = output.clone();
    let result = rt.block_on(nbexec::execute(&bytes, opts, move |nb: &Value| {
        let text = nbexec::to_ipynb_string(nb);
        if let Err(e) = write_atomic(&save_out, &text) {
            eprintln!("could not save {}: {e}", save_out.display());
        }
        let _ = tx.send(text);
        // the log shows each cell as it ends
        let cells = nb["cells"].as_array().cloned().unwrap_or_default();
        let mut out = std::io::stdout().lock();
        for (i, c) in cells.iter().enumerate().skip(printed) {
            match c["metadata"]["papermill"]["status"].as_str() {
                Some("completed") | Some("failed") => {
                    let log = cell_log(c);
                    if !log.is_empty() {
                        let _ = write!(out, "{log}");
                        if !log.ends_with('\n') {
                            let _ = writeln!(out);
                        }
                    }
                    printed = i + 1;
                }
                Some("running") | Some("pending") => break,
                _ => printed = i + 1,
            }
        }
        let _ = out.flush();
    }));
    let _ = uploader.join();
    let failure_file =
        std::env::var_os("ATELIER_JOB_DIR").map(|d| PathBuf::from(d).join("output/message"));
    let fail = |msg: String| -> anyhow::Result<std::process::ExitCode> {
        eprintln!("{msg}");
        if let Some(f) = &failure_file {
            if let Some(p) = f.parent() {
                let _ = std::fs::create_dir_all(p);
            }
            let _ = std::fs::write(f, &msg);
        }
        Ok(std::process::ExitCode::FAILURE)
    };
    match result {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            match report.outcome {
                nbexec::Outcome::Completed => {
                    eprintln!(
                        "notebook completed: kernel ready in {:.2} s, {:.2} s in all",
                        report.kernel_start.as_secs_f64(),
                        started.elapsed().as_secs_f64()
                    );
                    Ok(std::process::ExitCode::SUCCESS)
                }
                nbexec::Outcome::Failed {
                    execution_count,
                    ename,
                    evalue,
                    ..
                } => fail(match execution_count {
                    Some(n) => format!("{ename}: {evalue} (in cell In [{n}])"),
                    None => format!("{ename}: {evalue}"),
                }),
            }
        }
        Err(e) => fail(e.to_string()),
    }
}

/// Upload the newest saved notebook to the job's run (if the job has one),
/// at most about once a second, the last one always.
fn spawn_uploader(rx: mpsc::Receiver<String>, file: String) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (Ok(uri), Ok(run_id)) = (
            std::env::var("MLFLOW_TRACKING_URI"),
            std::env::var("MLFLOW_RUN_ID"),
        ) else {
            while rx.recv().is_ok() {}
            return;
        };
        let Ok(c) = Client::new(&uri) else {
            while rx.recv().is_ok() {}
            return;
        };
        let Ok(dest) = run_artifact(&c, &run_id, &format!("output/notebook/{file}")) else {
            while rx.recv().is_ok() {}
            return;
        };
        let mut last = Instant::now() - Duration::from_secs(5);
        while let Ok(mut text) = rx.recv() {
            // skip to the newest; wait out the second since the last upload
            loop {
                let wait = Duration::from_secs(1).saturating_sub(last.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(t) => text = t,
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            if let Err(e) = c.put_bytes(&dest, text.as_bytes()) {
                tracing::debug!("could not upload the partial notebook: {e}");
            }
            last = Instant::now();
        }
    })
}

/// The packages `atelier notebooks setup` installs: the versions Atelier's
/// tests run with.
pub const SETUP_PACKAGES: &[&str] = &[
    "jupyterlab==4.6.6",
    "ipykernel==7.4.0",
    "mlflow==3.17.2",
    "pandas",
    "matplotlib",
    "scikit-learn",
];

/// `atelier notebooks setup`: a virtual environment in `<data>/python` with
/// JupyterLab, a kernel and the usual libraries; `atelier serve` on that data
/// folder uses it without configuration.
pub fn setup(data_dir: &Path, python: &str) -> anyhow::Result<std::process::ExitCode> {
    let venv = data_dir.join("python");
    let py = venv.join("bin/python");
    if !py.exists() {
        std::fs::create_dir_all(data_dir)?;
        eprintln!("making a virtual environment in {}", venv.display());
        let st = std::process::Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("running {python} -m venv (is Python 3 installed?)"))?;
        if !st.success() {
            bail!("{python} -m venv {} failed ({st})", venv.display());
        }
    }
    eprintln!("installing {}", SETUP_PACKAGES.join(" "));
    let st = std::process::Command::new(&py)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .args(SETUP_PACKAGES)
        .status()
        .context("running pip")?;
    if !st.success() {
        bail!(
            "pip install failed ({st}); the environment is in {}",
            venv.display()
        );
    }
    println!("{}", py.display());
    eprintln!(
        "done: `atelier serve --data-dir {}` uses it for JupyterLab and notebook jobs",
        data_dir.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}
