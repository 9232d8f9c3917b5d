//! # monitor — Model Monitor's statistical core
//!
//! A **baseline** is what a dataset looked like: [`Baseline::suggest`]
//! turns streamed statistics ([`profile`]) into SageMaker Model Monitor's
//! `statistics.json` and suggested `constraints.json` (users may edit the
//! latter: types, completeness, non-negativity, categorical domains,
//! thresholds and per-feature methods), plus `reference_sample.parquet`.
//! A **check** ([`check()`]) compares current data with it and produces
//! `constraint_violations.json` (SageMaker's check types) and
//! `drift_report.json` (every statistic per feature and the verdict).
//!
//! ```no_run
//! use std::collections::HashMap;
//! let base = monitor::profile_path("train.csv".as_ref(), &HashMap::new(), 100_000, 65_536)?;
//! let baseline = monitor::Baseline::suggest(&base)?;
//! baseline.write("baseline".as_ref())?;
//! // the current data needs no quantile sketch (false)
//! let current =
//!     monitor::profile_path_with("today.csv".as_ref(), &baseline.kinds(), 100_000, 65_536, false)?;
//! let report = monitor::check(&baseline, &current)?;
//! report.write("check".as_ref())?;
//! # Ok::<(), monitor::MonitorError>(())
//! ```
//!
//! A scheduler that already holds rows does not go through files: feed
//! [`Profiler::add`] with `tabular::Table` chunks (e.g. from
//! [`table_from_records`] over captured JSON rows, with
//! [`Baseline::kinds`]) and call [`check()`] on [`Profiler::finish`].
//!
//! ## Streaming and memory
//! Data is read in chunks (`tabular::read_chunks`, 65,536 rows by default)
//! and each chunk's columns are profiled in parallel (rayon). Memory per
//! column is bounded: a HyperLogLog (4 KiB), a KLL sketch (k = 200), moments,
//! exact category counts (up to 10,000 distinct values, then the most
//! frequent) and, for numeric columns, their values in a uniform **sample
//! of at most `sample_size` rows** (default 100,000; one row sampler for
//! all columns). A file larger than memory can be baselined and checked.
//!
//! ## Exact and approximate statistics
//! Up to `sample_size` rows the sample *is* the data, and KS,
//! Wasserstein, PSI and Jensen–Shannon are exact (equal to scipy; tested
//! against committed scipy fixtures). Beyond it both sides are uniform
//! samples of `s` values (reservoir sampling) and the statistics are
//! estimates: by the Dvoretzky–Kiefer–Wolfowitz inequality each sample's
//! ECDF is within ε = √(ln(2/α) / 2s) of its column's ECDF with
//! probability 1 − α, so the KS statistic is within 2ε of the full-data one
//! (s = 100,000, α = 0.001: ε ≈ 0.0062, bound ≈ 0.012). KS p-values are
//! then computed at the sample sizes (which, on huge windows, keeps them
//! from flagging trivia quite as readily; the drift report marks
//! `sample_exact: false`). Categorical statistics use exact counts.
//!
//! ## The statistics (`stats`)
//! - **KS**: `scipy.stats.ks_2samp(a, b)` with its default method 'auto':
//!   the exact two-sided p-value when both samples have ≤ 10,000 values,
//!   else `kstwo.sf(D, round(n·m/(n+m)))`.
//! - **χ²**: `scipy.stats.chi2_contingency` on the 2×K table of baseline
//!   and current category counts (categories seen in either), Yates'
//!   correction when dof = 1.
//! - **Wasserstein**: `scipy.stats.wasserstein_distance(a, b)`; the verdict
//!   uses it divided by the baseline's population standard deviation
//!   (0.001 if that is 0), "normed Wasserstein" as Evidently does.
//! - **PSI** = Σ (q_i − p_i) ln(q_i / p_i) and **Jensen–Shannon distance**
//!   = √(½ KL(p‖m) + ½ KL(q‖m)), m = (p+q)/2, natural log (as
//!   `scipy.spatial.distance.jensenshannon`), over bins: for labels, the
//!   categories seen in either dataset (missing values excluded); for
//!   numbers, ten bins cut at the reference deciles (the values at ranks
//!   ⌊k·n/10⌋, k = 1..9, of the sorted baseline sample, duplicates merged;
//!   bins are [e_i, e_{i+1}) with open ends). PSI replaces an empty bin's
//!   share by 1e-4.
//! - **CDF distance**: the largest difference between the two ECDFs (the
//!   KS statistic) for numbers, between category shares for labels —
//!   SageMaker's baseline drift distance.
//!
//! ## Verdicts and defaults
//! A feature drifts when its chosen statistic crosses its threshold:
//! distances above it, p-values (KS, χ²) below it. The default method,
//! `auto` (`numerical_method` / `categorical_method` under
//! `monitoring_config.distribution_constraints` in `constraints.json`), is
//! Evidently's rule: while either side has at most 1,000 values, a p-value
//! test (KS for numbers, χ² for labels) at `p_value_threshold` 0.01
//! (Evidently uses 0.05, see below), since distances between small samples
//! are noisy; beyond that a distance at
//! `comparison_threshold` 0.1 — normed Wasserstein for numbers,
//! Jensen–Shannon for labels (Evidently's large-data defaults; SageMaker's
//! threshold is also 0.1, on its CDF distance) — since on large windows
//! p-values flag trivial differences (scipy's KS at p < 0.05 flags an
//! unshifted column of the 1M-row benchmark). Every statistic is reported
//! whatever decided. Per feature, `monitoringConfigOverrides` may set
//! `comparison_method` (`auto`, `wasserstein`, `jensen_shannon`, `psi`,
//! `ks`, `chi2`, `cdf_distance`; SageMaker's `Robust`/`Simple` mean
//! `cdf_distance`), `comparison_threshold` (default per method when the
//! method is overridden: 0.1, 0.1, 0.2, 0.05, 0.05, 0.1) and
//! `perform_comparison: "Disabled"`. Free text, identifiers and dates are
//! profiled but not compared by default (their suggested constraints say
//! `"perform_comparison": "Disabled"`).
//!
//! One check tests every feature at once, so the p-value verdicts (KS, χ²)
//! are corrected across the features of the check by Holm's step-down
//! method (`multiple_testing: "holm"`, the default; `"none"` tests each
//! feature alone, as SageMaker and Evidently do): a feature drifts when its
//! Holm-adjusted p-value is below its threshold, which keeps the chance of
//! any false alarm in a clean window at most the threshold. Uncorrected,
//! a dozen features at 0.05 alarm on 9 of 60 clean titanic windows; with
//! Holm on 2 (`tests/false_alarms.rs`); and Holm at 0.05 still alarmed on
//! 5 % of clean 200-row windows of the repository's datasets, hence the
//! default level 0.01 (`cargo xtask bench monitor-quality` measures both
//! rates beside Evidently). The report keeps the raw p-value (`value`)
//! beside the adjusted one (`p_adjusted`). Before the χ² test, categories
//! whose expected count is under 5 are pooled into one column (Cochran's
//! rule; the report says how many in `chi2.pooled_categories`): forty
//! rare countries otherwise make a clean 1,000-row window of `adult` look
//! drifted.
//!
//! Baselines carry `atelier_monitor_version` (1) beside SageMaker's
//! `version` (0); other versions, malformed JSON, missing fields or a
//! missing reference sample are refused with the file and the fix named.
//! A `statistics.json` written by SageMaker itself has no reference sample
//! and cannot be checked against; baseline the same data with Atelier.
//!
//! ## Constraint checks
//! `missing_column_check` / `extra_column_check` (columns by name),
//! `data_type_check` (share of present values of the baseline type
//! — numbers parse, Integral values are whole — must be at least
//! `datatype_check_threshold`, default 1.0; a negative value in an
//! `is_non_negative` feature is reported here too), `completeness_check`
//! (completeness below the feature's `completeness` × `completeness_threshold`,
//! default 0.95, and by more than chance: the one-sided χ² test of present
//! and missing counts against the baseline's must be below
//! `p_value_threshold` — the bar alone alarmed on 27 of 60 clean 179-row
//! titanic windows, `tests/false_alarms.rs`), `categorical_values_check` (share of values inside
//! `string_constraints.domains` below `domain_content_threshold`, default
//! 1.0, and more values outside it than chance gives: a value the baseline
//! never saw is expected in as many rows as values it saw once
//! (Good–Turing; at least 3 in the baseline's N rows, the rule of three),
//! and the Poisson tail of the count outside must be below
//! `p_value_threshold`: a country seen once in the data that lands in a
//! clean window rather than the reference is chance), `baseline_drift_check`
//! (the verdicts above).

pub mod baseline;
pub mod calibration;
pub mod check;
pub mod profile;
pub mod stats;

use std::path::{Path, PathBuf};

pub use baseline::Baseline;
pub use check::{DriftReport, Method, Report, Violation, Violations, check, summary_table};
pub use profile::{DatasetStats, Profiler, profile_path, profile_path_with, table_from_records};

/// File names a check writes.
pub const VIOLATIONS_FILE: &str = "constraint_violations.json";
pub const DRIFT_FILE: &str = "drift_report.json";

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Read(#[from] tabular::DataError),
    #[error("{0}")]
    Data(String),
    #[error("baseline: {0}")]
    Baseline(String),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl MonitorError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        MonitorError::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}

impl Report {
    /// Write `constraint_violations.json` and `drift_report.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), MonitorError> {
        std::fs::create_dir_all(dir).map_err(|e| MonitorError::io(dir, e))?;
        for (file, v) in [
            (VIOLATIONS_FILE, serde_json::to_value(&self.violations)),
            (DRIFT_FILE, serde_json::to_value(&self.drift)),
        ] {
            let path = dir.join(file);
            let text = v
                .and_then(|v| serde_json::to_string_pretty(&v))
                .map_err(|e| MonitorError::Data(format!("serialising {file}: {e}")))?;
            std::fs::write(&path, text + "\n").map_err(|e| MonitorError::io(&path, e))?;
        }
        Ok(())
    }
}
