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
    /// Where the metadata is kept: a PostgreSQL URL
    /// (postgres://USER[:PASSWORD]@HOST:PORT/DATABASE) [default: SQLite in
    /// <data-dir>/metadata.db].
    #[arg(long, env = "ATELIER_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Require an API token even on loopback.
    #[arg(long, env = "ATELIER_REQUIRE_AUTH")]
    pub require_auth: bool,
    /// Where artifacts are kept: a folder, or a prefix of an S3-compatible
    /// bucket as s3://BUCKET/PREFIX (credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY, or s3_access_key_id and s3_secret_access_key in
    /// the config file) [default: <data-dir>/artifacts].
    #[arg(long, env = "ATELIER_ARTIFACTS")]
    pub artifacts: Option<String>,
    /// The endpoint of an S3-compatible server, e.g. https://minio:9000
    /// (http:// is allowed, for a server on this machine) [default: AWS S3].
    #[arg(long, env = "ATELIER_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// The S3 region [default: AWS_REGION, else us-east-1].
    #[arg(long, env = "ATELIER_S3_REGION")]
    pub s3_region: Option<String>,
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
    /// Where users' job commands (processing, training, notebook jobs) run: `local`
    /// (this machine, each under a supervisor process) or `ray` (a Ray cluster,
    /// through its Jobs API at --ray-address; each job is staged on its worker
    /// through this server, see --ray-atelier-bin) [default: local].
    #[arg(long, env = "ATELIER_EXECUTOR", value_enum)]
    pub executor: Option<ExecutorKind>,
    /// The address users' jobs and notebooks reach this server at for MLflow
    /// tracking (their MLFLOW_TRACKING_URI), e.g. http://atelier.ml.svc when they
    /// run on other machines (a Ray cluster) [default: the address the server
    /// listens on].
    #[arg(long, env = "ATELIER_JOBS_TRACKING_URI")]
    pub jobs_tracking_uri: Option<String>,
    /// The Ray head's dashboard, where its Jobs API answers, for --executor ray
    /// (e.g. http://ray-head:8265); checked when the server starts.
    #[arg(long, env = "ATELIER_RAY_ADDRESS")]
    pub ray_address: Option<String>,
    /// The atelier program on the Ray workers, which stages each job there
    /// (fetches its inputs and code from this server, uploads its outputs)
    /// [default: this server's own executable path].
    #[arg(long, env = "ATELIER_RAY_ATELIER_BIN")]
    pub ray_atelier_bin: Option<String>,
    /// The Ray workers see --data-dir at the same path (a shared volume): jobs
    /// run in the server's job folders instead of being staged.
    #[arg(long, env = "ATELIER_RAY_SHARED_FILESYSTEM")]
    pub ray_shared_filesystem: bool,
    /// Log filter (tracing syntax, e.g. "info" or "server=debug") [default: info].
    #[arg(long, env = "ATELIER_LOG")]
    pub log: Option<String>,
    /// A TOML file with any of: host, port, data_dir, database_url, artifacts, s3_endpoint, s3_region,
    /// s3_access_key_id, s3_secret_access_key, require_auth, max_artifact_bytes,
    /// max_request_bytes, allowed_hosts, cors_allowed_origins, allow_local_paths,
    /// webhook_allowed_hosts, job_workers, job_lease_seconds, notebook_python,
    /// notebook_idle_seconds, executor, ray_address, ray_atelier_bin,
    /// ray_shared_filesystem, jobs_tracking_uri, log.
    #[arg(long, env = "ATELIER_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    host: Option<String>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    database_url: Option<FileSecret>,
    artifacts: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<FileSecret>,
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
    executor: Option<ExecutorKind>,
    jobs_tracking_uri: Option<String>,
    ray_address: Option<String>,
    ray_atelier_bin: Option<String>,
    ray_shared_filesystem: Option<bool>,
    log: Option<String>,
}

/// `--executor`.
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// This machine.
    Local,
    /// A Ray cluster's Jobs API.
    Ray,
}

/// Where users' job commands run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorAt {
    Local,
    /// The head's dashboard address, normalised (no trailing slash).
    Ray {
        address: String,
    },
}

/// A secret read from the config file: `Debug` never shows it.
#[derive(Deserialize, Default)]
#[serde(transparent)]
struct FileSecret(String);

impl std::fmt::Debug for FileSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where artifacts are kept.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactsAt {
    Local(PathBuf),
    /// Credentials inside are redacted from `Debug`.
    S3(artifacts::S3Settings),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// A PostgreSQL URL (it may hold a password: `Debug` hides it); `None`
    /// is SQLite in the data folder.
    pub database_url: Option<artifacts::Secret>,
    pub artifacts: ArtifactsAt,
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
    pub executor: ExecutorAt,
    /// The atelier program on Ray's workers (`None`: this executable's path).
    pub ray_atelier_bin: Option<String>,
    /// Ray's workers see the data folder: jobs are not staged.
    pub ray_shared_filesystem: bool,
    /// What jobs' MLflow clients are told to reach (`None`: the bound address).
    pub jobs_tracking_uri: Option<String>,
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

/// A config file's parse error with the value of any secret key masked
/// (TOML errors quote the offending line).
fn redact_secrets(msg: &str) -> String {
    msg.lines()
        .map(|l| {
            match l
                .find("s3_secret_access_key")
                .or_else(|| l.find("database_url"))
            {
                Some(i) => match l[i..].find('=') {
                    Some(j) => format!("{} <redacted>", &l[..i + j + 1]),
                    None => l.to_string(),
                },
                None => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `--artifacts` and the S3 settings, with credentials from `AWS_*`
/// variables first, else the config file (both halves from one place).
fn artifacts_at(
    flag: Option<String>,
    file: &mut FileSettings,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    data_dir: &std::path::Path,
) -> anyhow::Result<ArtifactsAt> {
    let Some(at) = flag
        .or(file.artifacts.take())
        .filter(|a| !a.trim().is_empty())
    else {
        if s3_endpoint.is_some() {
            anyhow::bail!(
                "--s3-endpoint needs --artifacts s3://BUCKET/PREFIX (the artifacts are in a local folder otherwise)"
            );
        }
        return Ok(ArtifactsAt::Local(data_dir.join("artifacts")));
    };
    let at = at.trim();
    if !at.starts_with("s3://") {
        if let Some((scheme, _)) = at.split_once("://") {
            anyhow::bail!(
                "--artifacts {at}: '{scheme}://' is not supported; give a folder or s3://BUCKET/PREFIX"
            );
        }
        if s3_endpoint.is_some() {
            anyhow::bail!("--s3-endpoint needs --artifacts s3://BUCKET/PREFIX, not a folder");
        }
        return Ok(ArtifactsAt::Local(PathBuf::from(at)));
    }
    let mut s3 = artifacts::S3Settings::from_url(at)?;
    s3.endpoint = s3_endpoint.filter(|e| !e.trim().is_empty());
    s3.region = s3_region.filter(|r| !r.trim().is_empty());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let file_key = file.s3_access_key_id.take();
    let file_secret = file.s3_secret_access_key.take().map(|s| s.0);
    if env("AWS_ACCESS_KEY_ID").is_some() || env("AWS_SECRET_ACCESS_KEY").is_some() {
        if env("AWS_ACCESS_KEY_ID").is_none() || env("AWS_SECRET_ACCESS_KEY").is_none() {
            anyhow::bail!(
                "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for --artifacts {at}, or neither"
            );
        }
        // object_store reads them (and AWS_SESSION_TOKEN) itself
    } else {
        match (file_key, file_secret) {
            (Some(k), Some(sec)) => {
                s3.access_key_id = Some(k);
                s3.secret_access_key = Some(artifacts::Secret::new(sec));
            }
            (None, None) => {}
            _ => anyhow::bail!(
                "the config file needs both s3_access_key_id and s3_secret_access_key, or neither"
            ),
        }
    }
    Ok(ArtifactsAt::S3(s3))
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
                toml::from_str::<FileSettings>(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "in the config file {}: {}",
                        p.display(),
                        redact_secrets(&e.to_string())
                    )
                })?
            }
            None => FileSettings::default(),
        };
        let mut file = file;
        let data_dir = a
            .data_dir
            .or(file.data_dir.take())
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let database_url = a
            .database_url
            .or(file.database_url.take().map(|s| s.0))
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .map(artifacts::Secret::new);
        if let Some(u) = &database_url
            && !(u.expose().starts_with("postgres://") || u.expose().starts_with("postgresql://"))
        {
            anyhow::bail!(
                "--database-url must be a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE); leave it out for SQLite in the data folder"
            );
        }
        let s3_endpoint = a.s3_endpoint.or(file.s3_endpoint.take());
        let s3_region = a.s3_region.or(file.s3_region.take());
        let artifacts = artifacts_at(a.artifacts, &mut file, s3_endpoint, s3_region, &data_dir)?;
        // a Ray address alone is kept for when --executor ray is chosen
        let ray_address = a
            .ray_address
            .or(file.ray_address.take())
            .filter(|r| !r.trim().is_empty());
        let executor = match a.executor.or(file.executor).unwrap_or(ExecutorKind::Local) {
            ExecutorKind::Local => ExecutorAt::Local,
            ExecutorKind::Ray => {
                let Some(addr) = ray_address else {
                    anyhow::bail!(
                        "--executor ray needs the Ray head's address: --ray-address http://HEAD:8265 (or ATELIER_RAY_ADDRESS, or ray_address in the config file)"
                    );
                };
                let address = jobs::ray::normalize_address(&addr)
                    .map_err(|e| anyhow::anyhow!("--ray-address {e}"))?;
                ExecutorAt::Ray { address }
            }
        };
        let s = Settings {
            host: a.host.or(file.host).unwrap_or_else(|| "127.0.0.1".into()),
            port: a.port.or(file.port).unwrap_or(DEFAULT_PORT),
            data_dir,
            database_url,
            artifacts,
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
            executor,
            ray_atelier_bin: a
                .ray_atelier_bin
                .or(file.ray_atelier_bin)
                .map(|b| b.trim().to_string())
                .filter(|b| !b.is_empty()),
            ray_shared_filesystem: a.ray_shared_filesystem
                || file.ray_shared_filesystem.unwrap_or(false),
            jobs_tracking_uri: a
                .jobs_tracking_uri
                .or(file.jobs_tracking_uri)
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty()),
            log: a.log.or(file.log).unwrap_or_else(|| "info".into()),
        };
        if let Some(u) = &s.jobs_tracking_uri
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            anyhow::bail!(
                "--jobs-tracking-uri {u}: give the http:// or https:// address jobs reach this server at"
            );
        }
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
    fn the_database_url_and_the_jobs_tracking_uri_from_flags_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.toml");
        std::fs::write(
            &f,
            "database_url = \"postgres://a:pw@db:5432/atelier\"\njobs_tracking_uri = \"http://atelier.ml.svc/\"\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeArgs {
            config: Some(f),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.database_url.as_ref().map(|u| u.expose()),
            Some("postgres://a:pw@db:5432/atelier")
        );
        assert!(
            !format!("{s:?}").contains("pw@"),
            "Debug shows the password"
        );
        assert_eq!(
            s.jobs_tracking_uri.as_deref(),
            Some("http://atelier.ml.svc")
        );
        for (args, says) in [
            (
                ServeArgs {
                    database_url: Some("mysql://db/x".into()),
                    ..Default::default()
                },
                "must be a PostgreSQL URL",
            ),
            (
                ServeArgs {
                    jobs_tracking_uri: Some("atelier.ml.svc".into()),
                    ..Default::default()
                },
                "--jobs-tracking-uri",
            ),
        ] {
            let e = Settings::resolve(args).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        // a password in a bad config file never reaches the error
        let bad = dir.path().join("b.toml");
        std::fs::write(
            &bad,
            "database_url = \"postgres://a:pw@db/x\"\nport = \"x\"\n",
        )
        .unwrap();
        let e = Settings::resolve(ServeArgs {
            config: Some(bad),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(!e.contains("pw@"), "{e}");
    }

    #[test]
    fn the_ray_executor_needs_an_address_from_a_flag_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.toml");
        std::fs::write(
            &f,
            "executor = \"ray\"\nray_address = \"http://ray-head:8265/\"\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeArgs {
            config: Some(f.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.executor,
            ExecutorAt::Ray {
                address: "http://ray-head:8265".into()
            }
        );
        // staged through the server unless the workers share the data folder
        assert!(!s.ray_shared_filesystem);
        assert_eq!(s.ray_atelier_bin, None);
        let g = dir.path().join("shared.toml");
        std::fs::write(
            &g,
            "executor = \"ray\"\nray_address = \"http://h:8265\"\nray_shared_filesystem = true\nray_atelier_bin = \"/opt/atelier/bin/atelier\"\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeArgs {
            config: Some(g),
            ..Default::default()
        })
        .unwrap();
        assert!(s.ray_shared_filesystem);
        assert_eq!(
            s.ray_atelier_bin.as_deref(),
            Some("/opt/atelier/bin/atelier")
        );
        // the flag beats the file; an address alone changes nothing
        let s = Settings::resolve(ServeArgs {
            config: Some(f),
            executor: Some(ExecutorKind::Local),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.executor, ExecutorAt::Local);
        let s = Settings::resolve(ServeArgs {
            ray_address: Some("http://h:8265".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.executor, ExecutorAt::Local);
        for (args, says) in [
            (
                ServeArgs {
                    executor: Some(ExecutorKind::Ray),
                    ..Default::default()
                },
                "--ray-address",
            ),
            (
                ServeArgs {
                    executor: Some(ExecutorKind::Ray),
                    ray_address: Some("ray-head:8265".into()),
                    ..Default::default()
                },
                "--ray-address 'ray-head:8265' is not an http://",
            ),
        ] {
            let e = Settings::resolve(args).unwrap_err();
            assert!(format!("{e:#}").contains(says), "{e:#}");
        }
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

    #[test]
    fn artifacts_in_s3_from_flags_and_file_without_showing_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.toml");
        std::fs::write(
            &f,
            "artifacts = \"s3://ml-artifacts/atelier\"\ns3_endpoint = \"https://minio:9000\"\n\
             s3_access_key_id = \"AKID\"\ns3_secret_access_key = \"wJalrXUtnFEMI-secret\"\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeArgs {
            config: Some(f.clone()),
            s3_region: Some("eu-west-1".into()),
            ..Default::default()
        })
        .unwrap();
        let ArtifactsAt::S3(s3) = &s.artifacts else {
            panic!("{:?}", s.artifacts)
        };
        assert_eq!(s3.url(), "s3://ml-artifacts/atelier");
        assert_eq!(s3.endpoint.as_deref(), Some("https://minio:9000"));
        assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            assert_eq!(s3.access_key_id.as_deref(), Some("AKID"));
            assert_eq!(
                s3.secret_access_key.as_ref().map(|x| x.expose()),
                Some("wJalrXUtnFEMI-secret")
            );
        }
        assert!(!format!("{s:?}").contains("wJalrXUtnFEMI"));
        // a flag beats the file; a folder is a local store
        let s = Settings::resolve(ServeArgs {
            config: Some(f.clone()),
            artifacts: Some("/srv/art".into()),
            s3_endpoint: Some(String::new()),
            ..Default::default()
        });
        assert!(s.is_err(), "an endpoint without s3:// artifacts is refused");
        let d = Settings::resolve(ServeArgs {
            data_dir: Some("/srv/d".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(d.artifacts, ArtifactsAt::Local("/srv/d/artifacts".into()));
        for (bad, says) in [
            ("gs://bkt/x", "'gs://' is not supported"),
            ("s3://B", "--artifacts s3://B"),
        ] {
            let e = Settings::resolve(ServeArgs {
                artifacts: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(format!("{e:#}").contains(says), "{e:#}");
        }
        // half a key pair in the file, and a broken secret line, are errors
        // that never quote the secret
        std::fs::write(
            &f,
            "artifacts = \"s3://bkt\"\ns3_secret_access_key = \"only-half\"\n",
        )
        .unwrap();
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_none()
        {
            let e = Settings::resolve(ServeArgs {
                config: Some(f.clone()),
                ..Default::default()
            })
            .unwrap_err();
            let e = format!("{e:#}");
            assert!(
                e.contains("s3_access_key_id") && !e.contains("only-half"),
                "{e}"
            );
        }
        std::fs::write(&f, "s3_secret_access_key = \"unterminated-s3cret\n").unwrap();
        let e = Settings::resolve(ServeArgs {
            config: Some(f),
            ..Default::default()
        })
        .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            !e.contains("unterminated-s3cret") && e.contains("<redacted>"),
            "{e}"
        );
    }
}
