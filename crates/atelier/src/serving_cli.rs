//! `atelier deploy` and `atelier batch-transform`: the command-line side of
//! the `serving` crate. Deploy always talks to a server (the endpoint lives
//! there); batch transform runs locally on a pipeline file, or as a job on
//! the server for registry models.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub struct DeployArgs {
    pub model: String,
    pub name: String,
    pub server: String,
    pub variant: String,
    pub weight: f64,
    pub sampling_percentage: Option<f64>,
    pub no_capture: bool,
    pub max_concurrency: Option<usize>,
}

fn is_uri(model: &str) -> bool {
    ["models:/", "runs:/", "mlflow-artifacts:/"]
        .iter()
        .any(|p| model.starts_with(p))
}

struct Client {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
    workspace: Option<String>,
}

impl Client {
    fn new(server: &str) -> Client {
        let token = std::env::var("ATELIER_TOKEN")
            .ok()
            .or_else(|| std::env::var("MLFLOW_TRACKING_TOKEN").ok())
            .filter(|t| !t.is_empty());
        Client {
            base: server.trim_end_matches('/').to_string(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(300)))
                .build()
                .into(),
            token,
            workspace: crate::remote::workspace_from_env(),
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        ct: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let res = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                if let Some(w) = &self.workspace {
                    r = r.header("X-MLFLOW-WORKSPACE", w);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                if let Some(w) = &self.workspace {
                    r = r.header("X-MLFLOW-WORKSPACE", w);
                }
                r.call()
            }
            (m, b) => {
                let mut r = if m == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                r = r.header("Content-Type", ct);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                if let Some(w) = &self.workspace {
                    r = r.header("X-MLFLOW-WORKSPACE", w);
                }
                r.send(b.unwrap_or_default())
            }
        };
        let mut res = res.with_context(|| {
            format!(
                "cannot reach the Atelier server at {} (is `atelier serve` running? pass --server URL)",
                self.base
            )
        })?;
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        if status == 401 {
            bail!(
                "the server at {} needs an API token: set ATELIER_TOKEN (or MLFLOW_TRACKING_TOKEN)",
                self.base
            );
        }
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, v))
    }

    /// The bytes of an artifact.
    fn download(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{path}", self.base);
        let mut r = self.agent.get(&url);
        if let Some(t) = &self.token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        let mut res = r.call().with_context(|| format!("downloading {path}"))?;
        if res.status().as_u16() != 200 {
            bail!("downloading {path}: HTTP {}", res.status().as_u16());
        }
        Ok(res.body_mut().with_config().limit(u64::MAX).read_to_vec()?)
    }

    fn json(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.call(
            method,
            path,
            Some(body.to_string().into_bytes()),
            "application/json",
        )
    }
}

fn message(v: &Value) -> String {
    v.get("message")
        .and_then(Value::as_str)
        .map_or_else(|| v.to_string(), str::to_string)
}

/// Check a local pipeline file and upload it to the server's artifact store
/// as `<dir>/pipeline.atelier`; returns its `mlflow-artifacts:/` URI.
fn upload_pipeline(c: &Client, path: &Path, dir: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading {} (MODEL is a pipeline file or models:/<name>/<version>, models:/<name>@<alias>)",
            path.display()
        )
    })?;
    learn::Pipeline::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let dest = format!("{dir}/{}", serving::PIPELINE_FILE);
    let (s, v) = c.call(
        "PUT",
        &format!("/api/2.0/mlflow-artifacts/artifacts/{dest}"),
        Some(bytes),
        "application/octet-stream",
    )?;
    if s != 200 {
        bail!("uploading the pipeline failed ({s}): {}", message(&v));
    }
    eprintln!(
        "uploaded {} to the artifact store as {dest}",
        path.display()
    );
    Ok(format!("mlflow-artifacts:/{dest}"))
}

pub fn deploy(a: DeployArgs) -> anyhow::Result<()> {
    serving::endpoint::check_name("endpoint", &a.name)
        .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    serving::endpoint::check_name("variant", &a.variant)
        .map_err(|e| anyhow::anyhow!("--variant: {e}"))?;
    let c = Client::new(&a.server);
    let model = if is_uri(&a.model) {
        a.model.clone()
    } else {
        // a local pipeline file: uploaded so the endpoint survives restarts
        let dest = crate::remote::project_folder(&format!(
            "endpoints/{}/{}/{}",
            a.name,
            a.variant,
            store::now_ms()
        ));
        upload_pipeline(&c, Path::new(&a.model), &dest)?
    };
    let (s, existing) = c.call(
        "GET",
        &format!("/api/atelier/endpoints/{}", a.name),
        None,
        "",
    )?;
    let mut body = json!({});
    if a.no_capture || a.sampling_percentage.is_some() {
        body["data_capture"] = json!({
            "enabled": !a.no_capture,
            "sampling_percentage": a.sampling_percentage.unwrap_or(serving::endpoint::DEFAULT_SAMPLING_PERCENTAGE),
        });
    }
    if let Some(m) = a.max_concurrency {
        body["max_concurrency"] = json!(m);
    }
    let this = json!({"name": a.variant, "model": model, "weight": a.weight});
    let (status, v) = if s == 200 {
        // replace or add this variant, keep the others
        let mut variants: Vec<Value> = existing["endpoint"]["variants"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v["name"] != a.variant.as_str())
            .map(|v| json!({"name": v["name"], "model": v["model"], "weight": v["weight"]}))
            .collect();
        variants.push(this);
        body["variants"] = Value::Array(variants);
        c.json("PUT", &format!("/api/atelier/endpoints/{}", a.name), &body)?
    } else if s == 404 {
        body["name"] = json!(a.name);
        body["variants"] = json!([this]);
        c.json("POST", "/api/atelier/endpoints", &body)?
    } else {
        bail!("the server answered {s}: {}", message(&existing));
    };
    if status != 200 {
        bail!("deploy failed ({status}): {}", message(&v));
    }
    let ep = &v["endpoint"];
    for var in ep["variants"].as_array().into_iter().flatten() {
        eprintln!(
            "  variant {}: {} (weight {}, {} {})",
            var["name"].as_str().unwrap_or(""),
            var["model"].as_str().unwrap_or(""),
            var["weight"],
            var["problem"].as_str().unwrap_or(""),
            var["algorithm"].as_str().unwrap_or("")
        );
    }
    println!("{}/endpoints/{}/invocations", c.base, a.name);
    eprintln!(
        "endpoint '{}' is in service: POST CSV or JSON rows to the URL above",
        a.name
    );
    Ok(())
}

pub struct BatchArgs {
    pub model: String,
    pub input: PathBuf,
    pub output: PathBuf,
    pub server: Option<String>,
    pub join_input: bool,
}

fn bar(fraction: f64, text: &str, tty: bool) {
    let width = 30usize;
    let filled = ((fraction * width as f64) as usize).min(width);
    let line = format!(
        "[{}{}] {:>3.0}% {text}",
        "#".repeat(filled),
        "-".repeat(width - filled),
        fraction * 100.0
    );
    if tty {
        eprint!("\r{line}\x1b[K");
        let _ = std::io::stderr().flush();
    } else {
        eprintln!("{line}");
    }
}

pub fn batch_transform(a: BatchArgs) -> anyhow::Result<()> {
    if is_uri(&a.model) || a.server.is_some() {
        return batch_on_server(a);
    }
    let started = std::time::Instant::now();
    let pipeline = learn::Pipeline::load(Path::new(&a.model))?;
    let tty = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now() - Duration::from_secs(1);
    let cancel = AtomicBool::new(false);
    let summary = serving::batch_transform(
        &pipeline,
        &a.input,
        &a.output,
        &serving::BatchOptions {
            join_input: a.join_input,
        },
        &mut |p| {
            let every = if tty { 100 } else { 2000 };
            if last.elapsed() >= Duration::from_millis(every) {
                last = std::time::Instant::now();
                bar(
                    p.fraction(),
                    &format!(
                        "{} rows, {} failed  file {}/{} {}",
                        p.rows,
                        p.failed,
                        (p.files_done + 1).min(p.files_total),
                        p.files_total,
                        p.current
                    ),
                    tty,
                );
            }
        },
        &cancel,
    )?;
    bar(
        1.0,
        &format!("{} rows, {} failed", summary.rows, summary.failed),
        tty,
    );
    if tty {
        eprintln!();
    }
    for e in summary.errors.iter().take(20) {
        eprintln!("  {} line {}: {}", e.file.display(), e.line, e.message);
    }
    if summary.failed > 20 {
        eprintln!(
            "  … {} failures in all, listed in the .errors files beside the outputs",
            summary.failed
        );
    }
    for (i, o) in &summary.outputs {
        eprintln!("{} -> {}", i.display(), o.display());
    }
    eprintln!(
        "predicted {} rows in {:.1} s",
        summary.rows,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Run on the server as jobs: each input file is uploaded as a temporary
/// dataset, transformed by a `batch-transform` job, and its output
/// downloaded into `--output` (the server never reads or writes this
/// machine's paths).
fn batch_on_server(a: BatchArgs) -> anyhow::Result<()> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:5000".to_string());
    let c = Client::new(&server);
    let model = if is_uri(&a.model) {
        a.model.clone()
    } else {
        upload_pipeline(
            &c,
            Path::new(&a.model),
            &crate::remote::project_folder(&format!("batch-transform/models/{}", store::now_ms())),
        )?
    };
    let files = serving::batch::input_files(&a.input)?;
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("creating {}", a.output.display()))?;
    let base = if a.input.is_dir() {
        a.input.clone()
    } else {
        a.input.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let tty = std::io::stderr().is_terminal();
    let (mut rows, mut failed) = (0u64, 0u64);
    let stamp = store::now_ms();
    for (i, file) in files.iter().enumerate() {
        let fname = file
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let parquet = fname.to_ascii_lowercase().ends_with(".parquet")
            || fname.to_ascii_lowercase().ends_with(".pq");
        let ext = if parquet { "parquet" } else { "csv" };
        let dataset = format!("batch-{stamp}-{i}.{ext}");
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let (s, v) = c.call(
            "PUT",
            &format!("/api/atelier/datasets/{dataset}"),
            Some(bytes),
            "application/octet-stream",
        )?;
        if s != 200 && s != 201 {
            bail!("uploading {} failed ({s}): {}", file.display(), message(&v));
        }
        let job = run_job(&c, &model, &dataset, a.join_input, tty, i, files.len());
        let _ = c.call(
            "DELETE",
            &format!("/api/atelier/datasets/{dataset}"),
            None,
            "",
        );
        let r = job?;
        rows += r["rows"].as_u64().unwrap_or(0);
        failed += r["failed"].as_u64().unwrap_or(0);
        // the job names its output after the dataset; here it is named after the file
        let rel = file.strip_prefix(&base).unwrap_or(file);
        let mut local = a.output.join(rel);
        if parquet {
            let stem = local.file_stem().unwrap_or_default().to_os_string();
            let mut n = stem;
            n.push(".out.parquet");
            local.set_file_name(n);
        } else {
            let mut n = local.file_name().unwrap_or_default().to_os_string();
            n.push(".out");
            local.set_file_name(n);
        }
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent)?;
        }
        for o in r["outputs"].as_array().into_iter().flatten() {
            let path = o
                .as_str()
                .and_then(|u| u.strip_prefix("mlflow-artifacts:/"))
                .unwrap_or_default()
                .to_string();
            let body = c.download(&path)?;
            std::fs::write(&local, body).with_context(|| format!("writing {}", local.display()))?;
            eprintln!("{} -> {}", file.display(), local.display());
            if let Ok(errs) = c.download(&format!("{path}.errors")) {
                let mut e = local.as_os_str().to_os_string();
                e.push(".errors");
                std::fs::write(PathBuf::from(e), errs)?;
            }
        }
        for e in r["errors"].as_array().into_iter().flatten().take(20) {
            eprintln!(
                "  {} line {}: {}",
                file.display(),
                e["line"],
                e["message"].as_str().unwrap_or("")
            );
        }
    }
    eprintln!("predicted {rows} rows, {failed} failed");
    Ok(())
}

/// Submit one batch-transform job on a dataset and follow it to the end;
/// returns its result.
fn run_job(
    c: &Client,
    model: &str,
    dataset: &str,
    join_input: bool,
    tty: bool,
    i: usize,
    n: usize,
) -> anyhow::Result<Value> {
    let spec = json!({"model": model, "dataset": dataset, "join_input": join_input});
    let (s, v) = c.json(
        "POST",
        "/api/atelier/jobs",
        &json!({"kind": "batch-transform", "spec": spec}),
    )?;
    if s != 202 && s != 200 {
        bail!("submitting the job failed ({s}): {}", message(&v));
    }
    let id = v["job"]["id"].as_str().unwrap_or_default().to_string();
    loop {
        std::thread::sleep(Duration::from_millis(if tty { 300 } else { 1000 }));
        let (s, v) = c.call("GET", &format!("/api/atelier/jobs/{id}"), None, "")?;
        if s != 200 {
            bail!("reading job {id} failed ({s}): {}", message(&v));
        }
        let job = &v["job"];
        let p = &job["progress"];
        let status = job["status"].as_str().unwrap_or("");
        let frac = if status == "succeeded" {
            1.0
        } else {
            p["fraction"].as_f64().unwrap_or(0.0)
        };
        bar(
            (i as f64 + frac) / n as f64,
            &format!(
                "file {}/{n}, job {id}: {} rows, {} failed",
                i + 1,
                p["rows"].as_u64().unwrap_or(0),
                p["failed"].as_u64().unwrap_or(0)
            ),
            tty,
        );
        match status {
            "succeeded" => {
                if tty {
                    eprintln!();
                }
                return Ok(job["result"].clone());
            }
            "failed" | "cancelled" => {
                if tty {
                    eprintln!();
                }
                bail!("job {id} {status}: {}", job["error"].as_str().unwrap_or(""));
            }
            _ => {}
        }
    }
}

/// `atelier endpoints …`: endpoint operations beyond deploy.
#[derive(clap::Subcommand)]
pub enum EndpointsCommand {
    /// Shadow tests: copy a share of live requests to another model, compare, promote.
    #[command(subcommand)]
    Shadow(ShadowCommand),
}

#[derive(clap::Subcommand)]
pub enum ShadowCommand {
    /// Start a shadow test: MODEL gets a copy of a share of the requests; its answers are
    /// captured and compared, never returned.
    #[command(
        after_help = "MODEL is models:/<name>/<version>, models:/<name>@<alias>, or a pipeline
file written by `atelier train` (uploaded to the server's artifact store).

Examples:
  atelier endpoints shadow start adult models:/adult/3 --share 10 --minutes 120
  atelier endpoints shadow show adult
  atelier endpoints shadow promote adult"
    )]
    Start {
        /// The endpoint.
        endpoint: String,
        /// The shadow's model.
        model: String,
        /// Percentage of the production variant's requests copied to the shadow (above 0, at most 100).
        #[arg(long, default_value_t = 100.0)]
        share: f64,
        /// How long the test runs; it ends by itself.
        #[arg(long, default_value_t = 60.0)]
        minutes: f64,
        /// The production variant to shadow (needed when the endpoint has several).
        #[arg(long)]
        production_variant: Option<String>,
        /// The shadow's name (its capture folder).
        #[arg(long, default_value = "shadow")]
        variant: String,
        #[arg(long, default_value = "http://127.0.0.1:5000")]
        server: String,
    },
    /// The test's status and comparison (agreement or differences, latency, errors, drops).
    Show {
        endpoint: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "http://127.0.0.1:5000")]
        server: String,
    },
    /// Serve the shadow's model on the production variant (no request is dropped).
    Promote {
        endpoint: String,
        #[arg(long, default_value = "http://127.0.0.1:5000")]
        server: String,
    },
    /// End the test now (its comparison stays).
    Stop {
        endpoint: String,
        #[arg(long, default_value = "http://127.0.0.1:5000")]
        server: String,
    },
}

fn fmt_opt(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "—".to_string(), |x| format!("{x:.digits$}"))
}

pub fn endpoints(cmd: EndpointsCommand) -> anyhow::Result<()> {
    let EndpointsCommand::Shadow(cmd) = cmd;
    let (server, endpoint) = match &cmd {
        ShadowCommand::Start {
            server, endpoint, ..
        }
        | ShadowCommand::Show {
            server, endpoint, ..
        }
        | ShadowCommand::Promote { server, endpoint }
        | ShadowCommand::Stop { server, endpoint } => (server.clone(), endpoint.clone()),
    };
    serving::endpoint::check_name("endpoint", &endpoint)?;
    let c = Client::new(&server);
    let path = format!("/api/atelier/endpoints/{endpoint}/shadow");
    let done = |s: u16, v: &Value, what: &str| -> anyhow::Result<()> {
        if s != 200 {
            bail!("{what} failed ({s}): {}", message(v));
        }
        Ok(())
    };
    match cmd {
        ShadowCommand::Start {
            model,
            share,
            minutes,
            production_variant,
            variant,
            ..
        } => {
            let model = if is_uri(&model) {
                model
            } else {
                let dest = crate::remote::project_folder(&format!(
                    "endpoints/{endpoint}/{variant}/{}",
                    store::now_ms()
                ));
                upload_pipeline(&c, Path::new(&model), &dest)?
            };
            let mut body = json!({
                "model": model,
                "sampling_percentage": share,
                "duration_seconds": minutes * 60.0,
                "variant": variant,
            });
            if let Some(p) = production_variant {
                body["production_variant"] = json!(p);
            }
            let (s, v) = c.json("POST", &path, &body)?;
            done(s, &v, "starting the shadow test")?;
            let t = &v["endpoint"]["shadow"];
            println!(
                "shadow test started: {} gets {} % of {}'s requests on {endpoint} for {minutes} min",
                t["model"].as_str().unwrap_or(""),
                share,
                t["production_variant"].as_str().unwrap_or("")
            );
            println!("follow it with: atelier endpoints shadow show {endpoint} --server {server}");
        }
        ShadowCommand::Show { json, .. } => {
            let (s, v) = c.call("GET", &path, None, "")?;
            done(s, &v, "reading the shadow test")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let (t, cmp) = (&v["test"], &v["comparison"]);
            if t.is_null() {
                println!(
                    "endpoint {endpoint} has no shadow test; start one with `atelier endpoints shadow start {endpoint} MODEL`"
                );
                return Ok(());
            }
            println!(
                "{}: {} shadows {} with {} ({} % of requests)",
                t["status"].as_str().unwrap_or(""),
                t["variant"].as_str().unwrap_or(""),
                t["production_variant"].as_str().unwrap_or(""),
                t["model"].as_str().unwrap_or(""),
                t["sampling_percentage"]
            );
            println!(
                "copied {}, compared {} requests ({} rows), dropped {}, waiting {}, lost {}",
                cmp["requests_copied"],
                cmp["compared_requests"],
                cmp["compared_rows"],
                cmp["copies_dropped"],
                cmp["pending"],
                cmp["unanswered"]
            );
            if cmp["problem"] == "regression" {
                let d = &cmp["differences"];
                println!(
                    "shadow − production: mean {}, mean |d| {}, 95 % of |d| ≤ {}",
                    fmt_opt(&d["summary"]["mean"], 4),
                    fmt_opt(&d["abs"]["mean"], 4),
                    fmt_opt(&d["abs"]["p95"], 4)
                );
            } else {
                println!(
                    "agreement: {}",
                    cmp["agreement_rate"]
                        .as_f64()
                        .map_or("—".into(), |a| format!("{:.1} %", a * 100.0))
                );
            }
            for side in ["production", "shadow"] {
                let x = &cmp[side];
                println!(
                    "{side:<10} {:>7} requests {:>5} errors  p50 {} ms  p95 {} ms",
                    x["requests"],
                    x["errors"],
                    fmt_opt(&x["latency_ms"]["p50"], 3),
                    fmt_opt(&x["latency_ms"]["p95"], 3)
                );
            }
        }
        ShadowCommand::Promote { .. } => {
            let (s, v) = c.json("POST", &format!("{path}/promote"), &json!({}))?;
            done(s, &v, "promoting the shadow")?;
            let p = &v["endpoint"]["shadow"];
            println!(
                "promoted: {} now serves {} on {endpoint}",
                p["model"].as_str().unwrap_or(""),
                p["production_variant"].as_str().unwrap_or("")
            );
        }
        ShadowCommand::Stop { .. } => {
            let (s, v) = c.call("DELETE", &path, None, "")?;
            done(s, &v, "stopping the shadow test")?;
            println!("shadow test on {endpoint} stopped");
        }
    }
    Ok(())
}
