//! `atelier migrate`: move a one-machine installation (SQLite metadata and
//! a local artifact folder) up to PostgreSQL and, optionally, an
//! S3-compatible bucket. The source is read, never changed; the database
//! must be new; counts are verified on both sides. Progress goes to stderr,
//! the result to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

#[derive(Args)]
#[command(
    after_help = "Stop every `atelier serve` on the data folder first: rows written during the
copy would be left behind. The PostgreSQL database must be new (it is created when missing);
the copy runs in one transaction, so a failure leaves it empty. Artifacts move only with
--artifacts s3://…; without it they stay in the data folder and the new server keeps using them.

Examples:
  atelier migrate --data-dir /srv/atelier --to postgres://atelier@db:5432/atelier
  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… atelier migrate --data-dir /srv/atelier \\
      --to postgres://atelier@db:5432/atelier --artifacts s3://ml-artifacts/atelier --s3-endpoint https://minio:9000"
)]
pub struct MigrateArgs {
    /// The PostgreSQL database to move the metadata into: postgres://USER[:PASSWORD]@HOST:PORT/DATABASE
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Also copy the artifacts into this bucket prefix: s3://BUCKET/PREFIX (credentials from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long, value_name = "S3_URL")]
    pub artifacts: Option<String>,
    /// The S3-compatible server's endpoint, e.g. https://minio:9000 [default: AWS S3].
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// The S3 region [default: AWS_REGION, else us-east-1].
    #[arg(long)]
    pub s3_region: Option<String>,
    /// The data folder to move (its metadata.db and artifacts/).
    #[arg(long, env = "ATELIER_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

fn say(msg: impl AsRef<str>) {
    let mut e = std::io::stderr();
    let _ = writeln!(e, "{}", msg.as_ref());
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let to = args.to.trim();
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to must be a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)");
    }
    let db_file = args.data_dir.join("metadata.db");
    if !db_file.is_file() {
        bail!(
            "no Atelier installation in {}: {} does not exist (give the data folder with --data-dir)",
            args.data_dir.display(),
            db_file.display()
        );
    }
    let s3 = match &args.artifacts {
        None => {
            if args.s3_endpoint.is_some() {
                bail!("--s3-endpoint needs --artifacts s3://BUCKET/PREFIX");
            }
            None
        }
        Some(a) if a.trim().starts_with("s3://") => {
            let mut s = artifacts::S3Settings::from_url(a.trim())?;
            s.endpoint = args.s3_endpoint.clone().filter(|e| !e.trim().is_empty());
            s.region = args.s3_region.clone().filter(|r| !r.trim().is_empty());
            Some(s)
        }
        Some(a) => bail!(
            "--artifacts {a}: give s3://BUCKET/PREFIX (artifacts in a folder stay where they are)"
        ),
    };

    let source = store::SqlStore::open_read_only(&db_file)
        .with_context(|| format!("opening {}", db_file.display()))?;
    if store::db::ensure_database(to)
        .map_err(|e| anyhow::anyhow!("reaching --to {}: {e}", store::db::redact_url(to)))?
    {
        say(format!(
            "created the database {}",
            store::db::redact_url(to)
        ));
    }
    let target = store::SqlStore::connect(to)
        .map_err(|e| anyhow::anyhow!("connecting to --to {}: {e}", store::db::redact_url(to)))?;
    say(format!(
        "copying the metadata from {} to {} …",
        db_file.display(),
        target.location()
    ));
    let started = std::time::Instant::now();
    let report = source.copy_into(&target, |table, n| {
        say(format!("  {table:<28} {n:>10} rows"));
    })?;
    say(format!(
        "metadata: {} rows in {} tables, counts verified ({:.1} s)",
        report.rows(),
        report.tables.len(),
        started.elapsed().as_secs_f64()
    ));

    let mut moved_artifacts = None;
    if let Some(s3) = &s3 {
        let local = args.data_dir.join("artifacts");
        let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        let (files, bytes) = rt.block_on(copy_artifacts(&local, s3))?;
        say(format!(
            "artifacts: {files} files, {bytes} bytes copied to {} and verified",
            args.artifacts.as_deref().unwrap_or_default()
        ));
        moved_artifacts = Some((files, bytes));
    }

    let mut out = std::io::stdout();
    writeln!(out, "table\trows")?;
    for (t, n) in &report.tables {
        writeln!(out, "{t}\t{n}")?;
    }
    if let Some((files, bytes)) = moved_artifacts {
        writeln!(out, "artifact files\t{files}")?;
        writeln!(out, "artifact bytes\t{bytes}")?;
    }
    let artifacts_flag = match &args.artifacts {
        Some(a) => {
            let mut f = format!(" --artifacts {a}");
            if let Some(e) = &args.s3_endpoint {
                f.push_str(&format!(" --s3-endpoint {e}"));
            }
            f
        }
        None => format!(" --artifacts {}", args.data_dir.join("artifacts").display()),
    };
    say(format!(
        "done. Start the server on the new backends with:\n  atelier serve --database-url {}{artifacts_flag}\nThe data folder {} was not changed.",
        store::db::redact_url(to),
        args.data_dir.display()
    ));
    Ok(())
}

/// Every file under `local` into the bucket (same relative paths), then the
/// bucket listed back: the same files with the same sizes, or an error.
async fn copy_artifacts(local: &Path, s3: &artifacts::S3Settings) -> anyhow::Result<(u64, u64)> {
    let target = artifacts::ArtifactStore::s3(s3).await?;
    let mut files: Vec<(String, PathBuf, u64)> = Vec::new();
    if local.is_dir() {
        let mut stack = vec![local.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in
                std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
            {
                let e = e?;
                let ty = e.file_type()?;
                let p = e.path();
                if ty.is_dir() {
                    stack.push(p);
                } else if ty.is_file() {
                    let rel = p
                        .strip_prefix(local)
                        .map_err(|_| {
                            anyhow::anyhow!("{} is outside {}", p.display(), local.display())
                        })?
                        .to_string_lossy()
                        .replace('\\', "/");
                    files.push((rel, p.clone(), e.metadata()?.len()));
                } else {
                    tracing::warn!(path = %p.display(), "not a file or folder (a symlink?): not copied");
                }
            }
        }
    }
    files.sort();
    let total = files.len();
    let mut bytes = 0u64;
    for (i, (rel, path, size)) in files.iter().enumerate() {
        let at = artifacts::ArtifactPath::parse(rel)
            .map_err(|e| anyhow::anyhow!("artifact {rel}: {e}"))?;
        target
            .put_file(&at, path)
            .await
            .with_context(|| format!("copying {}", path.display()))?;
        bytes += size;
        if (i + 1) % 200 == 0 || i + 1 == total {
            say(format!("  artifacts {}/{total}", i + 1));
        }
    }
    // verify: everything is there with its size
    let listed = target
        .list_recursive(&artifacts::ArtifactPath::parse("")?)
        .await?;
    let there: std::collections::HashMap<&str, u64> =
        listed.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    for (rel, _, size) in &files {
        match there.get(rel.as_str()) {
            Some(s) if s == size => {}
            Some(s) => bail!("{rel}: {size} bytes here but {s} in the bucket"),
            None => bail!("{rel} is missing from the bucket after the copy"),
        }
    }
    Ok((total as u64, bytes))
}
