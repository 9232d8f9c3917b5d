//! `atelier monitor baseline|check`: the command-line face of the
//! `monitor` crate (files in, SageMaker-shaped JSON out, a summary table).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum MonitorCommand {
    /// Profile a dataset into a baseline: statistics.json, constraints.json (editable) and a reference sample.
    #[command(
        after_help = "The data is streamed in chunks, so files larger than memory work. Edit constraints.json to
change types, completeness, domains, thresholds or per-feature methods
(monitoringConfigOverrides: comparison_method wasserstein | jensen_shannon | psi | ks | chi2 |
cdf_distance, comparison_threshold, perform_comparison Disabled).

Example:
  atelier monitor baseline train.csv --output baseline/"
    )]
    Baseline {
        /// Baseline data (.csv or .parquet).
        data: PathBuf,
        /// Directory for statistics.json, constraints.json and reference_sample.parquet.
        #[arg(long, short)]
        output: PathBuf,
        /// Rows sampled for KS and Wasserstein (every row up to this many).
        #[arg(long, default_value_t = monitor::profile::DEFAULT_SAMPLE_SIZE)]
        sample_size: usize,
        /// Rows read per chunk.
        #[arg(long, default_value_t = 65_536)]
        chunk_rows: usize,
    },
    /// Compare a dataset with a baseline: constraint_violations.json and drift_report.json.
    #[command(
        after_help = "Drift verdicts default to normed Wasserstein (numbers) and Jensen-Shannon distance
(categories) at 0.1; KS and chi-square p-values, PSI and the CDF distance are reported beside them.

Example:
  atelier monitor check --baseline baseline/ today.csv --output check/"
    )]
    Check {
        /// The directory `atelier monitor baseline` wrote.
        #[arg(long)]
        baseline: PathBuf,
        /// Current data (.csv or .parquet).
        data: PathBuf,
        /// Directory for constraint_violations.json and drift_report.json.
        #[arg(long, short)]
        output: PathBuf,
        /// Rows sampled for KS and Wasserstein (every row up to this many).
        #[arg(long, default_value_t = monitor::profile::DEFAULT_SAMPLE_SIZE)]
        sample_size: usize,
        /// Rows read per chunk.
        #[arg(long, default_value_t = 65_536)]
        chunk_rows: usize,
    },
}

fn positive(name: &str, v: usize) -> anyhow::Result<()> {
    if v == 0 {
        bail!("--{name} must be at least 1");
    }
    Ok(())
}

pub fn run(cmd: MonitorCommand) -> anyhow::Result<()> {
    match cmd {
        MonitorCommand::Baseline {
            data,
            output,
            sample_size,
            chunk_rows,
        } => {
            positive("sample-size", sample_size)?;
            positive("chunk-rows", chunk_rows)?;
            let started = std::time::Instant::now();
            let stats = monitor::profile_path(&data, &HashMap::new(), sample_size, chunk_rows)?;
            let baseline = monitor::Baseline::suggest(&stats)?;
            baseline
                .write(&output)
                .with_context(|| format!("writing the baseline to {}", output.display()))?;
            for c in &stats.columns {
                if c.mismatched > 0 {
                    eprintln!(
                        "warning: column '{}': {} values did not fit its kind and were read as missing",
                        c.name, c.mismatched
                    );
                }
            }
            eprintln!(
                "baseline of {} rows, {} features written to {} in {:.2} s",
                stats.rows,
                stats.columns.len(),
                output.display(),
                started.elapsed().as_secs_f64()
            );
        }
        MonitorCommand::Check {
            baseline,
            data,
            output,
            sample_size,
            chunk_rows,
        } => {
            positive("sample-size", sample_size)?;
            positive("chunk-rows", chunk_rows)?;
            let started = std::time::Instant::now();
            let base = monitor::Baseline::load(&baseline)?;
            let current =
                monitor::profile_path_with(&data, &base.kinds(), sample_size, chunk_rows, false)?;
            let report = monitor::check(&base, &current)?;
            report
                .write(&output)
                .with_context(|| format!("writing the report to {}", output.display()))?;
            print!("{}", monitor::summary_table(&report));
            eprintln!(
                "checked {} rows against a baseline of {} in {:.2} s; wrote {} and {} to {}",
                current.rows,
                report.drift.baseline_rows,
                started.elapsed().as_secs_f64(),
                monitor::VIOLATIONS_FILE,
                monitor::DRIFT_FILE,
                output.display()
            );
        }
    }
    Ok(())
}
