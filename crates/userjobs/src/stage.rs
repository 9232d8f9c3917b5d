//! Staging a job on a worker that does not see the server's files (a Ray
//! cluster without a shared volume). The server lays the job's folder out as
//! usual, then hands the worker a [`Manifest`] (JSON, in the variable
//! [`MANIFEST_ENV`]) and runs the command as `atelier job-worker -- <argv…>`:
//! the worker makes a private folder of its own, recreates the layout there
//! (folders, the small config files inline), fetches inputs and code from the
//! server's artifact API (`/api/2.0/mlflow-artifacts/artifacts/<path>`, with
//! the job's token), points every path of the server's job folder (in the
//! environment and the config files) at its own, runs the command, uploads
//! the outputs and the script's failure reason to the run, and deletes its
//! folder.
//!
//! Everything in the manifest is checked before anything is written: folder
//! and file destinations are relative paths of plain names (no `..`, no
//! absolute path), sources and targets valid artifact paths.

use std::path::{Component, Path, PathBuf};

use artifacts::ArtifactPath;
use serde::{Deserialize, Serialize};

/// The variable that carries the manifest to `atelier job-worker`.
pub const MANIFEST_ENV: &str = "ATELIER_STAGE_MANIFEST";

/// The manifest's format.
pub const MANIFEST_VERSION: u32 = 1;

/// Where in the run a staged job's failure reason lands (the script's
/// `output/failure` or `output/message`, or the worker's own words when
/// staging failed): not under `output/`, where a processing output could
/// have the same name.
pub const FAILURE_ARTIFACT: &str = "logs/failure";

/// The largest manifest (an environment value: Linux refuses one over 128 KiB).
pub const MAX_MANIFEST_BYTES: usize = 120 << 10;

/// What the worker needs to stage one job (see the module docs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The server, as the job reaches it (its `MLFLOW_TRACKING_URI`).
    pub server: String,
    /// The job's own token (its `MLFLOW_TRACKING_TOKEN`), when the server wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The job's project (sent as `X-MLFLOW-WORKSPACE`: the token acts there only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The job's folder on the server: every path under it, in the
    /// environment and the files, is moved to the worker's folder.
    pub job_dir: String,
    /// The working directory, relative to the job folder.
    pub cwd: String,
    /// Folders to make, relative.
    pub dirs: Vec<String>,
    /// Small files to write (the config files), relative.
    pub files: Vec<StageFile>,
    /// Inputs and code to fetch: a file lands in `to` under its own name, a
    /// folder's files below `to`.
    pub fetch: Vec<Fetch>,
    /// Output folders to upload to the run, all or nothing.
    pub upload: Vec<Upload>,
    /// The script's failure reason, relative (`output/failure` or `output/message`).
    pub failure_file: String,
    /// Where the failure reason goes (the run's [`FAILURE_ARTIFACT`]).
    pub failure_to: String,
    /// The outputs together may not be larger.
    pub max_output_bytes: u64,
}

// the token stays out of logs and panics
impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("job_dir", &self.job_dir)
            .field("fetch", &self.fetch)
            .field("upload", &self.upload)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageFile {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    /// What the job calls it (`input 'raw'`, `code`), for messages.
    pub name: String,
    /// An artifact path (a file or a folder).
    pub from: String,
    /// A folder, relative.
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The output's name, for messages.
    pub name: String,
    /// A folder, relative.
    pub from: String,
    /// An artifact path: the folder's files go below it.
    pub to: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StageError {
    #[error(
        "no job manifest: {MANIFEST_ENV} is not set (atelier job-worker is started by the Atelier server for jobs on Ray)"
    )]
    Missing,
    #[error("the job manifest in {MANIFEST_ENV} is not valid: {0}")]
    Invalid(String),
}

/// `p` as a relative path of plain names (`a/b`), or why not.
pub fn relative(what: &str, p: &str) -> Result<PathBuf, StageError> {
    let bad = |why: &str| StageError::Invalid(format!("{what} '{p}' {why}"));
    if p.is_empty() {
        return Err(bad("is empty"));
    }
    if p.contains('\0') || p.contains('\\') {
        return Err(bad("has a NUL or a backslash"));
    }
    let path = Path::new(p);
    if path.is_absolute() {
        return Err(bad("is absolute: give a path inside the job's folder"));
    }
    for c in p.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return Err(bad(
                "must be plain names joined by '/' (no '..', '.' or '//')",
            ));
        }
    }
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad("must stay inside the job's folder"));
    }
    Ok(path.to_path_buf())
}

fn artifact(what: &str, p: &str) -> Result<ArtifactPath, StageError> {
    let a =
        ArtifactPath::parse(p).map_err(|e| StageError::Invalid(format!("{what} '{p}': {e}")))?;
    if a.is_root() {
        return Err(StageError::Invalid(format!(
            "{what} is the whole artifact store: name a file or folder in it"
        )));
    }
    Ok(a)
}

impl Manifest {
    /// The manifest in `text`, checked.
    pub fn parse(text: &str) -> Result<Manifest, StageError> {
        if text.trim().is_empty() {
            return Err(StageError::Missing);
        }
        let m: Manifest =
            serde_json::from_str(text).map_err(|e| StageError::Invalid(e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    /// The manifest from [`MANIFEST_ENV`], checked.
    pub fn from_env() -> Result<Manifest, StageError> {
        match std::env::var(MANIFEST_ENV) {
            Ok(t) => Manifest::parse(&t),
            Err(std::env::VarError::NotPresent) => Err(StageError::Missing),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(StageError::Invalid("it is not UTF-8".into()))
            }
        }
    }

    /// Every path and address, checked (see the module docs).
    pub fn check(&self) -> Result<(), StageError> {
        let invalid = |m: String| Err(StageError::Invalid(m));
        if self.version != MANIFEST_VERSION {
            return invalid(format!(
                "version {} (this atelier reads version {MANIFEST_VERSION}: the worker's atelier and the server's differ)",
                self.version
            ));
        }
        let rest = self
            .server
            .strip_prefix("http://")
            .or_else(|| self.server.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return invalid(format!(
                "server '{}' is not an http:// or https:// address",
                self.server
            ));
        }
        if !Path::new(&self.job_dir).is_absolute() || self.job_dir.len() < 2 {
            return invalid(format!(
                "job_dir '{}' is not an absolute folder",
                self.job_dir
            ));
        }
        relative("cwd", &self.cwd)?;
        for d in &self.dirs {
            relative("folder", d)?;
        }
        for f in &self.files {
            relative("file", &f.path)?;
        }
        for f in &self.fetch {
            artifact(&format!("{} source", f.name), &f.from)?;
            relative(&format!("{} destination", f.name), &f.to)?;
        }
        for u in &self.upload {
            relative(&format!("output '{}'", u.name), &u.from)?;
            artifact(&format!("output '{}' target", u.name), &u.to)?;
        }
        relative("failure_file", &self.failure_file)?;
        artifact("failure_to", &self.failure_to)?;
        Ok(())
    }

    /// The manifest as an environment value: JSON with every `$` written
    /// `\u0024` (Ray expands `$NAME` in its variables, and the text then
    /// need not go through the shell).
    pub fn to_env_value(&self) -> Result<String, StageError> {
        let text = serde_json::to_string(self).map_err(|e| StageError::Invalid(e.to_string()))?;
        let text = text.replace('$', "\\u0024");
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(StageError::Invalid(format!(
                "it is {} bytes, over the {MAX_MANIFEST_BYTES} an environment variable can carry (the job's environment or command is too large to stage)",
                text.len()
            )));
        }
        Ok(text)
    }
}

/// Whether `c` may continue a file name (so `/jobs/ab` is not a prefix of `/jobs/abc`).
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '@')
}

/// `text` with every occurrence of the folder `from` (as a whole path
/// component: followed by `/`, the end, or a character that cannot continue
/// a name) replaced by `to`.
pub fn rewrite_paths(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() || !text.contains(from) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let after = &rest[i + from.len()..];
        out.push_str(&rest[..i]);
        if after.chars().next().is_none_or(|c| !name_char(c)) {
            out.push_str(to);
        } else {
            out.push_str(from);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The folders (but `skip`) and files below `root`, relative, sorted: what
/// a prepared layout holds before any input arrives.
pub fn contents(root: &Path, skip: &[&str]) -> std::io::Result<(Vec<String>, Vec<StageFile>)> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .replace('\\', "/");
            if skip.contains(&rel.as_str()) {
                continue;
            }
            let t = e.file_type()?;
            if t.is_dir() {
                dirs.push(rel);
                stack.push(path);
            } else if t.is_file() {
                let content = std::fs::read_to_string(&path)?;
                files.push(StageFile { path: rel, content });
            }
        }
    }
    dirs.sort();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((dirs, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            server: "http://127.0.0.1:5000".into(),
            token: Some("secret".into()),
            workspace: None,
            job_dir: "/srv/atelier/jobs/j1".into(),
            cwd: "code".into(),
            dirs: vec!["code".into(), "input/data/train".into()],
            files: vec![StageFile {
                path: "input/config/hyperparameters.json".into(),
                content: "{\"cost\": \"$5\"}".into(),
            }],
            fetch: vec![Fetch {
                name: "input 'train'".into(),
                from: "datasets/a.csv".into(),
                to: "input/data/train".into(),
            }],
            upload: vec![Upload {
                name: "model".into(),
                from: "model".into(),
                to: "1/r1/artifacts/model".into(),
            }],
            failure_file: "output/failure".into(),
            failure_to: "1/r1/artifacts/logs/failure".into(),
            max_output_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_manifest_goes_through_the_environment_without_a_dollar() {
        let m = manifest();
        let v = m.to_env_value().expect("encodes");
        assert!(!v.contains('$'), "{v}");
        assert_eq!(Manifest::parse(&v).expect("parses"), m);
        assert!(!format!("{m:?}").contains("secret"));
    }

    #[test]
    fn paths_out_of_the_job_folder_and_garbage_are_refused() {
        assert_eq!(Manifest::parse(""), Err(StageError::Missing));
        let e = Manifest::parse("{not json").expect_err("garbled");
        assert!(e.to_string().contains(MANIFEST_ENV), "{e}");
        type Change = fn(&mut Manifest);
        let cases: Vec<(Change, &str)> = vec![
            (|m| m.fetch[0].to = "../x".into(), "'../x'"),
            (|m| m.fetch[0].to = "/etc".into(), "absolute"),
            (|m| m.files[0].path = "a/../../b".into(), "'a/../../b'"),
            (|m| m.dirs.push("a//b".into()), "'a//b'"),
            (|m| m.cwd = "./code".into(), "'./code'"),
            (|m| m.upload[0].from = "..".into(), "'..'"),
            (|m| m.fetch[0].from = "../etc/passwd".into(), "source"),
            (|m| m.upload[0].to = "/abs".into(), "target"),
            (|m| m.fetch[0].from = String::new(), "whole artifact store"),
            (|m| m.server = "ftp://x".into(), "server"),
            (|m| m.job_dir = "jobs/j1".into(), "job_dir"),
            (|m| m.version = 9, "version 9"),
        ];
        for (change, says) in cases {
            let mut m = manifest();
            change(&mut m);
            let text = serde_json::to_string(&m).expect("json");
            let e = Manifest::parse(&text).expect_err(says).to_string();
            assert!(e.contains(says), "{says}: {e}");
        }
        // an unknown field is a mistake too (a newer server's manifest)
        let mut v = serde_json::to_value(manifest()).expect("json");
        v["extra"] = serde_json::json!(1);
        assert!(Manifest::parse(&v.to_string()).is_err());
    }

    #[test]
    fn only_whole_paths_of_the_job_folder_are_rewritten() {
        let from = "/srv/jobs/j1";
        let to = "/tmp/w";
        assert_eq!(rewrite_paths("/srv/jobs/j1", from, to), "/tmp/w");
        assert_eq!(
            rewrite_paths("/srv/jobs/j1/model", from, to),
            "/tmp/w/model"
        );
        assert_eq!(
            rewrite_paths(r#"{"a":"/srv/jobs/j1/x","b":"/srv/jobs/j10/x"}"#, from, to),
            r#"{"a":"/tmp/w/x","b":"/srv/jobs/j10/x"}"#
        );
        assert_eq!(rewrite_paths("lr=0.1", from, to), "lr=0.1");
    }

    #[test]
    fn a_prepared_folder_is_listed_with_its_files() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("input/config")).expect("mk");
        std::fs::create_dir_all(dir.path().join("executor/1")).expect("mk");
        std::fs::write(dir.path().join("input/config/h.json"), "{}").expect("write");
        let (dirs, files) = contents(dir.path(), &["executor"]).expect("list");
        assert_eq!(dirs, ["input", "input/config"]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "input/config/h.json");
    }
}
