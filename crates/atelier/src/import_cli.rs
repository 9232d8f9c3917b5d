//! `atelier import mlflow`: copy an MLflow server's database (and artifacts)
//! into a data folder, keeping MLflow's ids and timestamps (see the
//! `mlflowimport` crate). Progress goes to stderr, the per-table counts to
//! stdout.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Copy an MLflow tracking server's data (SQLite backend store) into this data folder.
    #[command(
        after_help = "Stop the MLflow server first (the import reads one consistent snapshot either way,
but runs logged during the import would be left out). The MLflow database is opened read-only
and never changed. Experiment ids, run ids, logged model ids, trace ids, version numbers and
every timestamp are kept; an id the data folder already holds is refused and nothing is written.

Examples:
  atelier import mlflow --from sqlite:////srv/mlflow/mlflow.db --artifacts /srv/mlflow/artifacts --data-dir /srv/atelier
  atelier import mlflow --from sqlite:///mlflow.db --artifacts ./mlartifacts     # from MLflow's working folder"
    )]
    Mlflow(MlflowArgs),
}

#[derive(Args)]
pub struct MlflowArgs {
    /// The MLflow server's --backend-store-uri: sqlite:///relative.db or sqlite:////absolute.db
    /// (only SQLite sources are supported for now).
    #[arg(long = "from", value_name = "URI")]
    pub from: String,
    /// The MLflow server's artifact root (its --artifacts-destination, or --default-artifact-root
    /// when it did not proxy artifacts): copied into this data folder. Without it only metadata
    /// is imported.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// The Atelier data folder to import into (metadata.db and artifacts/).
    #[arg(long, env = "ATELIER_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn run(cmd: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Mlflow(args) = cmd;
    // refuse a PostgreSQL/MySQL URI before creating anything
    let source = mlflowimport::source_path(&args.from)?;
    let store = crate::open_store(&args.data_dir)?;
    let opts = mlflowimport::Options {
        source: args.from.clone(),
        artifacts: args.artifacts.clone(),
        dest_artifacts: args.data_dir.join("artifacts"),
    };
    eprintln!(
        "importing MLflow database {} into {}",
        source.display(),
        args.data_dir.display()
    );
    let started = std::time::Instant::now();
    let mut err = std::io::stderr();
    let mut progress = |p: mlflowimport::Progress| {
        let _ = match p {
            mlflowimport::Progress::Stage(s) => writeln!(err, "  {s}…"),
            mlflowimport::Progress::Rows { table, done, total } => {
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                writeln!(err, "    {table}: {done} / {total} rows ({pct} %)")
            }
            mlflowimport::Progress::Files { done, bytes } => {
                writeln!(err, "    artifacts: {done} files, {}", human_bytes(bytes))
            }
        };
    };
    let report = mlflowimport::import(&store, &opts, &mut progress)
        .with_context(|| format!("importing {}", args.from))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "imported MLflow database {} (schema revision {}) in {:.1} s",
        source.display(),
        report.revision,
        started.elapsed().as_secs_f64()
    )?;
    writeln!(
        out,
        "{:<26} {:>12} {:>12}  note",
        "MLflow table", "MLflow rows", "imported"
    )?;
    for c in &report.counts {
        writeln!(
            out,
            "{:<26} {:>12} {:>12}  {}",
            c.table, c.source, c.imported, c.note
        )?;
    }
    writeln!(
        out,
        "counts verified; artifacts: {} files, {}",
        report.files,
        human_bytes(report.bytes)
    )?;
    for w in &report.warnings {
        writeln!(out, "note: {w}")?;
    }
    Ok(())
}
