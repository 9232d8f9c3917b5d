//! Layered settings for `atelier serve`: flags, then `ATELIER_*`
//! environment variables (both through clap), then a TOML file, then
//! defaults. Validated once at start-up.

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_DATA_DIR: &str = "atelier-data";
pub const DEFAULT_PORT: u16 = 5000;

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to bind. Loopback by default; any other address requires API tokens.
    #[arg(long, env = "ATELIER_HOST")]
    pub host: Option<String>,
    /// Port to listen on (0 picks a free one) [default: 5000].
    #[arg(long, env = "ATELIER_PORT")]
    pub port: Option<u16>,
    /// Folder for metadata (SQLite) and artifacts [default: ./atelier-data].
    #[arg(long, env = "ATELIER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Require an API token even on loopback.
    #[arg(long, env = "ATELIER_REQUIRE_AUTH")]
    pub require_auth: bool,
    /// Largest artifact upload accepted, in bytes [default: 5 GiB].
    #[arg(long, env = "ATELIER_MAX_ARTIFACT_BYTES")]
    pub max_artifact_bytes: Option<u64>,
    /// Largest request body other than a streamed upload, in bytes [default: 16 MiB].
    #[arg(long, env = "ATELIER_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<u64>,
    /// Host names the server answers to, besides localhost and IP addresses
    /// (comma-separated; `*.example.com` matches subdomains; `*` turns the check off).
    #[arg(long, env = "ATELIER_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Web origins (e.g. https://notebooks.example.com) allowed to call the API
    /// from a browser (comma-separated; `*` allows any) [default: none but the Studio's own].
    #[arg(long, env = "ATELIER_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// Let jobs read and write this machine's files by path (batch transform
    /// `input`/`output`); off by default, and refused when authentication is on.
    #[arg(long, env = "ATELIER_ALLOW_LOCAL_PATHS")]
    pub allow_local_paths: bool,
    /// Webhook targets allowed on loopback, private or link-local addresses:
    /// host names, IP addresses or CIDR ranges (comma-separated, e.g. 10.0.0.0/8,hooks.internal).
    #[arg(long, env = "ATELIER_WEBHOOK_ALLOWED_HOSTS", value_delimiter = ',')]
    pub webhook_allowed_hosts: Vec<String>,
    /// Jobs this server runs at once [default: 2].
    #[arg(long, env = "ATELIER_JOB_WORKERS")]
    pub job_workers: Option<usize>,
    /// Seconds a job's claim holds without renewal: another server on the same
    /// database takes over a killed server's jobs after this long [default: 30].
    #[arg(long, env = "ATELIER_JOB_LEASE_SECONDS")]
    pub job_lease_seconds: Option<u64>,
    /// The Python of JupyterLab and notebook kernels (e.g. a venv's bin/python with
    /// jupyterlab and ipykernel) [default: <data-dir>/python/bin/python, made by
    /// `atelier notebooks setup`, else the kernels found on this machine].
    #[arg(long, env = "ATELIER_NOTEBOOK_PYTHON")]
    pub notebook_python: Option<PathBuf>,
    /// Seconds without use after which a JupyterLab is stopped [default: 3600].
    #[arg(long, env = "ATELIER_NOTEBOOK_IDLE_SECONDS")]
    pub notebook_idle_seconds: Option<u64>,
    /// Log filter (tracing syntax, e.g. "info" or "server=debug") [default: info].
    #[arg(long, env = "ATELIER_LOG")]
    pub log: Option<String>,
    /// A TOML file with any of: host, port, data_dir, require_auth, max_artifact_bytes,
    /// max_request_bytes, allowed_hosts, cors_allowed_origins, allow_local_paths,
    /// webhook_allowed_hosts, job_workers, job_lease_seconds, notebook_python,
    /// notebook_idle_seconds, log.
    #[arg(long, env = "ATELIER_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    host: Option<String>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    require_auth: Option<bool>,
    max_artifact_bytes: Option<u64>,
    max_request_bytes: Option<u64>,
    allowed_hosts: Option<Vec<String>>,
    cors_allowed_origins: Option<Vec<String>>,
    allow_local_paths: Option<bool>,
    webhook_allowed_hosts: Option<Vec<String>>,
    job_workers: Option<usize>,
    job_lease_seconds: Option<u64>,
    notebook_python: Option<PathBuf>,
    notebook_idle_seconds: Option<u64>,
    log: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub require_auth: bool,
    pub max_artifact_bytes: u64,
    pub max_request_bytes: u64,
    pub allowed_hosts: Vec<String>,
    pub cors_allowed_origins: Vec<String>,
    pub allow_local_paths: bool,
    pub webhook_allowed_hosts: Vec<String>,
    pub job_workers: usize,
    pub job_lease_seconds: u64,
    /// As configured; [`Settings::notebook_python`] applies the default.
    pub notebook_python: Option<PathBuf>,
    pub notebook_idle_seconds: u64,
    pub log: String,
}

/// A list flag, else the file's list; entries trimmed, empty ones dropped.
fn list(flag: Vec<String>, file: Option<Vec<String>>) -> Vec<String> {
    let l = if flag.is_empty() {
        file.unwrap_or_default()
    } else {
        flag
    };
    l.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Settings {
    /// The Python of notebooks: the configured one, else the one `atelier
    /// notebooks setup` made in the data folder, if any.
    pub fn notebook_python(&self) -> Option<PathBuf> {
        self.notebook_python.clone().or_else(|| {
            let p = self.data_dir.join("python/bin/python");
            p.exists().then_some(p)
        })
    }

    pub fn resolve(a: ServeArgs) -> anyhow::Result<Settings> {
        let file = match &a.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading the config file {}", p.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .with_context(|| format!("in the config file {}", p.display()))?
            }
            None => FileSettings::default(),
        };
        let s = Settings {
            host: a.host.or(file.host).unwrap_or_else(|| "127.0.0.1".into()),
            port: a.port.or(file.port).unwrap_or(DEFAULT_PORT),
            data_dir: a
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            require_auth: a.require_auth || file.require_auth.unwrap_or(false),
            max_artifact_bytes: a
                .max_artifact_bytes
                .or(file.max_artifact_bytes)
                .unwrap_or(5 << 30),
            max_request_bytes: a
                .max_request_bytes
                .or(file.max_request_bytes)
                .unwrap_or(16 << 20),
            allowed_hosts: list(a.allowed_hosts, file.allowed_hosts),
            cors_allowed_origins: list(a.cors_allowed_origins, file.cors_allowed_origins),
            allow_local_paths: a.allow_local_paths || file.allow_local_paths.unwrap_or(false),
            webhook_allowed_hosts: list(a.webhook_allowed_hosts, file.webhook_allowed_hosts),
            job_workers: a.job_workers.or(file.job_workers).unwrap_or(2),
            job_lease_seconds: a.job_lease_seconds.or(file.job_lease_seconds).unwrap_or(30),
            notebook_python: a.notebook_python.or(file.notebook_python),
            notebook_idle_seconds: a
                .notebook_idle_seconds
                .or(file.notebook_idle_seconds)
                .unwrap_or(3600),
            log: a.log.or(file.log).unwrap_or_else(|| "info".into()),
        };
        if let Some(p) = &s.notebook_python
            && !p.exists()
        {
            anyhow::bail!(
                "--notebook-python {}: no such file (name a Python with jupyterlab and ipykernel, or run `atelier notebooks setup`)",
                p.display()
            );
        }
        if s.notebook_idle_seconds == 0 {
            anyhow::bail!("--notebook-idle-seconds must be positive");
        }
        if s.host.trim().is_empty() {
            anyhow::bail!("--host must not be empty");
        }
        if s.max_artifact_bytes == 0 {
            anyhow::bail!("--max-artifact-bytes must be positive");
        }
        if !(1..=64).contains(&s.job_workers) {
            anyhow::bail!("--job-workers must be between 1 and 64");
        }
        if !(2..=3600).contains(&s.job_lease_seconds) {
            anyhow::bail!("--job-lease-seconds must be between 2 and 3600");
        }
        if s.max_request_bytes < 64 << 10 {
            anyhow::bail!("--max-request-bytes must be at least 65536 (64 KiB)");
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.toml");
        std::fs::write(
            &f,
            "port = 7000\nhost = \"127.0.0.2\"\nrequire_auth = true\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeArgs {
            port: Some(9000),
            config: Some(f.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.port, 9000);
        assert_eq!(s.host, "127.0.0.2");
        assert!(s.require_auth);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        let d = Settings::resolve(ServeArgs::default()).unwrap();
        assert_eq!((d.host.as_str(), d.port), ("127.0.0.1", DEFAULT_PORT));
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.toml");
        std::fs::write(&f, "prot = 7000\n").unwrap();
        let e = Settings::resolve(ServeArgs {
            config: Some(f),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("prot"), "{e:#}");
    }
}
