//! The CLI's side of a running server: a small HTTP client for Atelier's API
//! (`--server URL`), Autopilot jobs started and followed from the terminal,
//! and `atelier jobs list|show|cancel`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The default server when `--server` is not given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:5000";

/// The project a command works in on a server: `MLFLOW_WORKSPACE`, as the
/// `mlflow` client reads it (none: the default project).
pub fn workspace_from_env() -> Option<String> {
    std::env::var("MLFLOW_WORKSPACE")
        .ok()
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
}

/// Where an upload to folder `rel` (`jobs-code/…`, `endpoints/…`) goes in
/// the artifact store for the project of [`workspace_from_env`]: each
/// project's uploads are its own (see `artifacts::projects`).
pub fn project_folder(rel: &str) -> String {
    artifacts::projects::in_project(workspace_from_env().as_deref().unwrap_or_default(), rel)
}

/// An Atelier server, with the token from `ATELIER_TOKEN` or
/// `MLFLOW_TRACKING_TOKEN` when set.
pub struct Client {
    base: String,
    token: Option<String>,
    /// The project every request works in (`MLFLOW_WORKSPACE`, as the
    /// `mlflow` client reads it; none: the default project).
    workspace: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str) -> anyhow::Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server {base}: give a URL like http://127.0.0.1:5000");
        }
        let token = std::env::var("ATELIER_TOKEN")
            .ok()
            .or_else(|| std::env::var("MLFLOW_TRACKING_TOKEN").ok())
            .filter(|t| !t.is_empty());
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .new_agent();
        let workspace = workspace_from_env();
        Ok(Client {
            base,
            token,
            workspace,
            agent,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth<B>(&self, r: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let r = match &self.workspace {
            Some(w) => r.header("X-MLFLOW-WORKSPACE", w),
            None => r,
        };
        match &self.token {
            Some(t) => r.header("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    fn answer(
        &self,
        what: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let mut r = r.map_err(|e| anyhow::anyhow!("{what}: cannot reach {} ({e})", self.base))?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 {
            let msg = v["message"].as_str().map(str::to_string).unwrap_or(text);
            if status == 401 {
                bail!("{what}: the server wants a token (set ATELIER_TOKEN): {msg}");
            }
            bail!("{what}: {msg} (HTTP {status})");
        }
        Ok(v)
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self.auth(self.agent.get(&self.url(path))).call();
        self.answer(&format!("GET {path}"), r)
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self
            .auth(self.agent.post(&self.url(path)))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes());
        self.answer(&format!("POST {path}"), r)
    }

    /// Upload a file as a dataset; returns its name on the server.
    pub fn upload_dataset(&self, file: &Path) -> anyhow::Result<String> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow::anyhow!("{}: not a file name", file.display()))?
            .to_string();
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let path = format!("/api/atelier/datasets/{}", encode(&name));
        let r = self
            .auth(self.agent.put(&self.url(&path)))
            .header("Content-Type", "application/octet-stream")
            .send(ureq::SendBody::from_reader(&mut &f));
        self.answer(&format!("uploading {}", file.display()), r)?;
        Ok(name)
    }

    /// The artifact API's URL of a path under the artifact root.
    fn artifact_url(&self, path: &str) -> String {
        self.url(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/{}",
            path.split('/').map(encode).collect::<Vec<_>>().join("/")
        ))
    }

    /// Upload a local file to a path under the artifact root.
    pub fn upload_artifact(&self, file: &Path, dest: &str) -> anyhow::Result<()> {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let url = self.artifact_url(dest);
        let r = self
            .auth(self.agent.put(&url))
            .header("Content-Type", "application/octet-stream")
            .send(ureq::SendBody::from_reader(&mut &f));
        self.answer(&format!("uploading {}", file.display()), r)?;
        Ok(())
    }

    /// Upload bytes to a path under the artifact root.
    pub fn put_bytes(&self, dest: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let url = self.artifact_url(dest);
        let r = self
            .auth(self.agent.put(&url))
            .header("Content-Type", "application/octet-stream")
            .send(bytes);
        self.answer(&format!("uploading {dest}"), r)?;
        Ok(())
    }

    /// Download an artifact (a path under the artifact root) to a file.
    pub fn download_artifact(&self, path: &str, dest: &Path) -> anyhow::Result<u64> {
        let url = self.artifact_url(path);
        let mut r = self
            .auth(self.agent.get(&url))
            .call()
            .map_err(|e| anyhow::anyhow!("downloading {path}: {e}"))?;
        if r.status().as_u16() >= 400 {
            bail!("downloading {path}: HTTP {}", r.status().as_u16());
        }
        let mut f =
            std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        let n = std::io::copy(&mut r.body_mut().as_reader(), &mut f)
            .with_context(|| format!("writing {}", dest.display()))?;
        Ok(n)
    }
}

/// Percent-encode one path segment.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct RemoteAutoml<'a> {
    pub server: &'a str,
    pub train: &'a Path,
    pub validation: Option<&'a Path>,
    pub spec: Value,
    pub output: Option<&'a Path>,
    pub detach: bool,
}

/// `file` can be read: checked before anything is said about uploading it.
pub fn readable_file(file: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(file).with_context(|| format!("{}", file.display()))?;
    if !meta.is_file() {
        bail!("{}: not a file", file.display());
    }
    std::fs::File::open(file).with_context(|| format!("{}", file.display()))?;
    Ok(())
}

/// Upload the data, start an Autopilot job and follow it to the end.
pub fn automl(a: RemoteAutoml) -> anyhow::Result<()> {
    let c = Client::new(a.server)?;
    readable_file(a.train)?;
    if let Some(v) = a.validation {
        readable_file(v)?;
    }
    let mut spec = a.spec;
    eprintln!("uploading {} to {} …", a.train.display(), a.server);
    spec["dataset"] = json!(c.upload_dataset(a.train)?);
    if let Some(v) = a.validation {
        spec["validation_dataset"] = json!(c.upload_dataset(v)?);
    }
    let job = c.post("/api/atelier/automl", &spec)?;
    let id = job["job"]["id"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "Autopilot job {id} queued; follow it at {}/autopilot/{id}",
        a.server.trim_end_matches('/')
    );
    if a.detach {
        println!("{id}");
        return Ok(());
    }
    let job = follow(&c, &id)?;
    print_outcome(&c, &job, a.output)
}

/// Poll a job, drawing a progress line, until it ends.
pub fn follow(c: &Client, id: &str) -> anyhow::Result<Value> {
    let tty = std::io::stderr().is_terminal();
    // the problem line, once: polls before the first candidate see it too
    let mut problem_shown = false;
    let mut last_line = String::new();
    let started = Instant::now();
    loop {
        let job = c.get(&format!("/api/atelier/jobs/{}", encode(id)))?["job"].clone();
        let p = &job["progress"];
        let cands = p["candidates"].as_array().cloned().unwrap_or_default();
        if !problem_shown && p["problem"].is_string() {
            problem_shown = true;
            eprintln!(
                "{} problem ({}); optimising {} over {}",
                p["problem"].as_str().unwrap_or(""),
                p["reason"].as_str().unwrap_or(""),
                p["metric"].as_str().unwrap_or(""),
                p["validation"].as_str().unwrap_or("")
            );
        }
        let budget = p["budget_s"].as_f64().unwrap_or(0.0);
        let elapsed = p["elapsed_s"].as_f64().unwrap_or(0.0);
        let width = 30usize;
        let filled = if budget > 0.0 {
            ((elapsed / budget).min(1.0) * width as f64) as usize
        } else {
            0
        };
        let best = match (&p["best"]["score"], &p["best"]["name"]) {
            (Value::Number(s), Value::String(n)) => {
                format!("{:.4} ({n})", s.as_f64().unwrap_or(f64::NAN))
            }
            _ => "-".into(),
        };
        let line = format!(
            "[{}{}] {elapsed:>5.0}/{budget:.0} s  {:>3} candidates  best {} {best}  {}",
            "#".repeat(filled),
            "-".repeat(width - filled),
            cands.len(),
            p["metric"].as_str().unwrap_or(""),
            p["phase"]
                .as_str()
                .unwrap_or(job["status"].as_str().unwrap_or(""))
        );
        if line != last_line {
            if tty {
                eprint!("\r{line}\x1b[K");
                let _ = std::io::stderr().flush();
            } else if started.elapsed() > Duration::from_secs(1) || !cands.is_empty() {
                eprintln!("{line}");
            }
            last_line = line;
        }
        match job["status"].as_str() {
            Some("succeeded") | Some("failed") | Some("cancelled") => {
                if tty {
                    eprintln!();
                }
                return Ok(job);
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn print_outcome(c: &Client, job: &Value, output: Option<&Path>) -> anyhow::Result<()> {
    match job["status"].as_str() {
        Some("succeeded") => {}
        Some("cancelled") => bail!("the Autopilot job was cancelled"),
        _ => bail!(
            "the Autopilot job failed: {}",
            job["error"].as_str().unwrap_or("no message")
        ),
    }
    let r = &job["result"];
    let metric = r["metric"].as_str().unwrap_or("score");
    eprintln!("\nleaderboard ({metric}):");
    eprintln!(
        "{:>4}  {:<20} {:>10} {:>8}  run",
        "rank", "candidate", metric, "fit s"
    );
    for c in r["leaderboard"].as_array().into_iter().flatten().take(15) {
        let score = match c["score"].as_f64() {
            Some(s) => format!("{s:>10.4}"),
            None => format!("{:>10}", c["status"].as_str().unwrap_or("")),
        };
        eprintln!(
            "{:>4}  {:<20} {score} {:>8.1}  {}",
            c["rank"].as_u64().unwrap_or(0),
            c["name"].as_str().unwrap_or(""),
            c["fit_seconds"].as_f64().unwrap_or(0.0),
            c["run_id"].as_str().unwrap_or("")
        );
    }
    eprintln!(
        "best: {} — validation {metric} {:.4}; registered as models:/{}/{}",
        r["algorithm"].as_str().unwrap_or(""),
        r["score"].as_f64().unwrap_or(f64::NAN),
        r["model_name"].as_str().unwrap_or(""),
        r["model_version"].as_str().unwrap_or("")
    );
    if let Some(why) = r["stop_reason"].as_str() {
        eprintln!("stopped: {why}");
    }
    if let Some(out) = output {
        let path = r["artifacts"]["model"].as_str().unwrap_or_default();
        c.download_artifact(path, out)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// `atelier jobs list`.
pub fn list_jobs(server: &str, kind: Option<&str>) -> anyhow::Result<()> {
    let c = Client::new(server)?;
    let path = match kind {
        Some(k) => format!("/api/atelier/jobs?kind={}", encode(k)),
        None => "/api/atelier/jobs".into(),
    };
    let v = c.get(&path)?;
    print!(
        "{}",
        jobs_table(v["jobs"].as_array().map_or(&[][..], Vec::as_slice))
    );
    Ok(())
}

/// `atelier jobs list`'s table: id, kind and status as wide as their
/// longest cell (kinds run from "tuning" to "monitoring-execution"), then
/// the name.
fn jobs_table(jobs: &[Value]) -> String {
    use std::fmt::Write as _;
    let cell = |j: &Value, key: &str| j[key].as_str().unwrap_or("").to_string();
    let rows: Vec<[String; 4]> =
        std::iter::once(["id", "kind", "status", "name"].map(String::from))
            .chain(
                jobs.iter()
                    .map(|j| ["id", "kind", "status", "name"].map(|k| cell(j, k))),
            )
            .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = String::new();
    for [id, kind, status, name] in &rows {
        let _ = writeln!(out, "{id:<w0$}  {kind:<w1$}  {status:<w2$}  {name}");
    }
    out
}

/// `atelier jobs show`: the job as JSON.
pub fn show_job(server: &str, id: &str) -> anyhow::Result<()> {
    let c = Client::new(server)?;
    let v = c.get(&format!("/api/atelier/jobs/{}", encode(id)))?;
    println!("{}", serde_json::to_string_pretty(&v["job"])?);
    Ok(())
}

/// `atelier jobs cancel`.
pub fn cancel_job(server: &str, id: &str) -> anyhow::Result<()> {
    let c = Client::new(server)?;
    let v = c.post(
        &format!("/api/atelier/jobs/{}/cancel", encode(id)),
        &json!({}),
    )?;
    eprintln!(
        "job {id}: {}{}",
        v["job"]["status"].as_str().unwrap_or(""),
        if v["job"]["status"] == "running" {
            " (stops after the step in progress)"
        } else {
            ""
        }
    );
    Ok(())
}

/// A private folder of this process (under the system's temporary folder),
/// deleted with everything in it when dropped: where cluster workers keep
/// what they download.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn new(what: &str) -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!(
            "atelier-{what}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&dir).with_context(|| format!("making {}", dir.display()))?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_table_columns_are_as_wide_as_their_longest_cell() {
        let jobs = [
            json!({"id": "a1", "kind": "automl", "status": "succeeded", "name": "x"}),
            json!({"id": "b2", "kind": "monitoring-execution", "status": "running", "name": "y"}),
        ];
        let t = jobs_table(&jobs);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        let at = |l: &str, s: &str| l.find(s).unwrap();
        assert_eq!(at(lines[0], "kind"), at(lines[1], "automl"), "{t}");
        assert_eq!(at(lines[0], "status"), at(lines[2], "running"), "{t}");
        assert_eq!(at(lines[0], "name"), at(lines[2], "y"), "{t}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{t}");
    }
}
