//! Baselines on disk, in SageMaker Model Monitor's shapes:
//! `statistics.json` (per feature statistics), `constraints.json`
//! (suggested, user-editable constraints and the monitoring config) and
//! `reference_sample.parquet` (Atelier's addition: the sorted sample of
//! each numeric feature, every value up to the sample size, that KS and
//! Wasserstein need).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tabular::{Kind, Table};

use crate::MonitorError;
use crate::profile::{ColumnStats, DatasetStats, is_numeric_kind};

/// Atelier's version of the baseline files (`atelier_monitor_version`);
/// SageMaker's own `version` field stays 0.
pub const FORMAT_VERSION: u32 = 1;
pub const STATISTICS_FILE: &str = "statistics.json";
pub const CONSTRAINTS_FILE: &str = "constraints.json";
pub const SAMPLE_FILE: &str = "reference_sample.parquet";
/// Histogram buckets written for each numeric feature.
pub const HISTOGRAM_BUCKETS: usize = 10;
/// Categorical values listed in `statistics.json` for free-text / id-like
/// columns (categorical and boolean columns list every value).
pub const TEXT_TOP_VALUES: usize = 20;
/// A categorical domain is suggested only up to this many values.
pub const MAX_DOMAIN: usize = 1000;

// ------------------------------------------------------------- statistics.json

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub version: f64,
    pub atelier_monitor_version: u32,
    pub dataset: DatasetInfo,
    pub features: Vec<FeatureStatistics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub item_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStatistics {
    pub name: String,
    /// "Integral", "Fractional", "String" or "Unknown" (dates).
    pub inferred_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical_statistics: Option<NumericalStatistics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_statistics: Option<StringStatistics>,
    /// Atelier's additions: the column kind and the sample behind the check.
    pub atelier: FeatureExtra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureExtra {
    /// tabular's kind: numeric, datetime, boolean, categorical, text, id_like.
    pub kind: Kind,
    pub completeness: f64,
    /// Values in `reference_sample.parquet` (numeric features).
    #[serde(default)]
    pub sample_size: u64,
    /// Whether the sample holds every value.
    #[serde(default)]
    pub sample_exact: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Common {
    pub num_present: u64,
    pub num_missing: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericalStatistics {
    pub common: Common,
    pub mean: f64,
    pub sum: f64,
    pub std_dev: f64,
    pub min: f64,
    pub max: f64,
    pub distribution: NumericDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericDistribution {
    pub kll: KllSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllSummary {
    pub buckets: Vec<KllBucket>,
    pub sketch: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllBucket {
    pub lower_bound: f64,
    pub upper_bound: f64,
    pub count: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringStatistics {
    pub common: Common,
    pub distinct_count: f64,
    pub distribution: StringDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringDistribution {
    pub categorical: Categorical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Categorical {
    pub buckets: Vec<CategoryCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryCount {
    pub value: String,
    pub count: u64,
}

// ------------------------------------------------------------- constraints.json

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    pub version: f64,
    pub atelier_monitor_version: u32,
    pub features: Vec<FeatureConstraints>,
    pub monitoring_config: MonitoringConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConstraints {
    pub name: String,
    pub inferred_type: String,
    /// Required share of rows with a value (scaled by
    /// `monitoring_config.completeness_threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completeness: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_constraints: Option<NumConstraints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_constraints: Option<StringConstraints>,
    #[serde(
        rename = "monitoringConfigOverrides",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub overrides: Option<Overrides>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumConstraints {
    pub is_non_negative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringConstraints {
    pub domains: Vec<String>,
}

/// Per-feature changes to the drift comparison.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Overrides {
    /// A [`crate::Method`] name, or SageMaker's "Robust"/"Simple" (the CDF
    /// distance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_threshold: Option<f64>,
    /// "Disabled" skips the drift comparison for this feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perform_comparison: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringConfig {
    pub evaluate_constraints: String,
    pub emit_metrics: String,
    /// Least share of present values that must have the baseline's type.
    pub datatype_check_threshold: f64,
    /// Least share of present values that must be in the domain.
    pub domain_content_threshold: f64,
    /// A feature is incomplete when its completeness falls below
    /// `completeness × completeness_threshold`.
    #[serde(default = "default_completeness_threshold")]
    pub completeness_threshold: f64,
    pub distribution_constraints: DistributionConstraints,
}

fn default_completeness_threshold() -> f64 {
    DEFAULT_COMPLETENESS_THRESHOLD
}

pub const DEFAULT_COMPLETENESS_THRESHOLD: f64 = 0.95;
pub const DEFAULT_DRIFT_THRESHOLD: f64 = 0.1;
/// One false alarm in a hundred clean checks at most (`cargo xtask bench
/// monitor-quality` measures it): 0.05 alarmed on 5 % of clean windows of
/// 200 rows, an alert every twenty hours on an hourly schedule.
pub const DEFAULT_P_VALUE_THRESHOLD: f64 = 0.01;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionConstraints {
    pub perform_comparison: String,
    /// Threshold of the default methods.
    pub comparison_threshold: f64,
    /// SageMaker's field, kept for compatibility; the statistic is chosen
    /// by `numerical_method` / `categorical_method`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_method: Option<String>,
    #[serde(default = "default_numerical")]
    pub numerical_method: String,
    #[serde(default = "default_categorical")]
    pub categorical_method: String,
    /// Atelier's addition: how the p-values of one check's features are
    /// corrected for testing many at once — `holm` (the default; also for
    /// baselines written before it existed) or `none` (each feature at its
    /// own threshold, as SageMaker and Evidently do).
    #[serde(default = "default_multiple_testing")]
    pub multiple_testing: String,
    /// Atelier's addition: the level of the p-value verdicts the `auto`
    /// methods give small samples (KS, χ²). With `multiple_testing` holm it
    /// bounds the family-wise error: a window from the baseline's own
    /// distribution raises a drift alarm in at most this share of checks.
    #[serde(default = "default_p_value_threshold")]
    pub p_value_threshold: f64,
}

fn default_p_value_threshold() -> f64 {
    DEFAULT_P_VALUE_THRESHOLD
}

fn default_multiple_testing() -> String {
    "holm".into()
}

fn default_numerical() -> String {
    "auto".into()
}
fn default_categorical() -> String {
    "auto".into()
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            evaluate_constraints: "Enabled".into(),
            emit_metrics: "Enabled".into(),
            datatype_check_threshold: 1.0,
            domain_content_threshold: 1.0,
            completeness_threshold: DEFAULT_COMPLETENESS_THRESHOLD,
            distribution_constraints: DistributionConstraints {
                perform_comparison: "Enabled".into(),
                comparison_threshold: DEFAULT_DRIFT_THRESHOLD,
                comparison_method: Some("Robust".into()),
                numerical_method: default_numerical(),
                categorical_method: default_categorical(),
                multiple_testing: default_multiple_testing(),
                p_value_threshold: DEFAULT_P_VALUE_THRESHOLD,
            },
        }
    }
}

// ------------------------------------------------------------- the baseline

/// A baseline: what `atelier monitor baseline` writes and a check reads.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub statistics: Statistics,
    pub constraints: Constraints,
    /// Sorted reference sample per numeric feature.
    pub samples: HashMap<String, Vec<f64>>,
}

/// SageMaker's type name for a column.
pub fn inferred_type(c: &ColumnStats) -> &'static str {
    match c.kind {
        Kind::Numeric => match &c.numeric {
            Some(n) if n.integral => "Integral",
            _ => "Fractional",
        },
        Kind::Datetime => "Unknown",
        Kind::IdLike if c.numeric.is_some() => "Integral",
        _ => "String",
    }
}

fn feature_statistics(c: &ColumnStats) -> FeatureStatistics {
    let common = Common {
        num_present: c.present(),
        num_missing: c.missing,
    };
    let mut extra = FeatureExtra {
        kind: c.kind,
        completeness: c.completeness(),
        sample_size: 0,
        sample_exact: false,
    };
    let numerical_statistics = c.numeric.as_ref().map(|n| {
        extra.sample_size = n.sample.len() as u64;
        extra.sample_exact = n.exact;
        let m = &n.moments;
        let empty = m.count == 0;
        let hist = tabular::profile::ColumnProfile {
            name: c.name.clone(),
            kind: c.kind,
            count: c.count,
            missing: c.missing,
            distinct: c.distinct.clone(),
            numeric: Some(tabular::profile::NumericProfile {
                moments: *m,
                sketch: n.kll.clone(),
            }),
            categories: None,
        }
        .histogram(HISTOGRAM_BUCKETS);
        let sketch = serde_json::to_value(&n.kll).unwrap_or_default();
        NumericalStatistics {
            common: common.clone(),
            mean: if empty { 0.0 } else { m.mean },
            sum: m.sum,
            std_dev: if empty { 0.0 } else { population_std(m) },
            min: if empty { 0.0 } else { m.min },
            max: if empty { 0.0 } else { m.max },
            distribution: NumericDistribution {
                kll: KllSummary {
                    buckets: hist
                        .into_iter()
                        .map(|b| KllBucket {
                            lower_bound: b.lower,
                            upper_bound: b.upper,
                            count: b.count,
                        })
                        .collect(),
                    sketch: serde_json::json!({
                        "parameters": { "c": 2.0 / 3.0, "k": sketch.get("k").cloned().unwrap_or_default() },
                        "data": sketch.get("levels").cloned().unwrap_or_default(),
                    }),
                },
            },
        }
    });
    let string_statistics = c.categories.as_ref().map(|t| {
        let all = matches!(c.kind, Kind::Categorical | Kind::Boolean);
        let top = t.top(if all { usize::MAX } else { TEXT_TOP_VALUES });
        StringStatistics {
            common: common.clone(),
            distinct_count: c.distinct.estimate().round(),
            distribution: StringDistribution {
                categorical: Categorical {
                    buckets: top
                        .into_iter()
                        .map(|(value, count)| CategoryCount { value, count })
                        .collect(),
                },
            },
        }
    });
    FeatureStatistics {
        name: c.name.clone(),
        inferred_type: inferred_type(c).into(),
        numerical_statistics,
        string_statistics,
        atelier: extra,
    }
}

/// Population standard deviation (the spread Wasserstein is normed by).
pub fn population_std(m: &tabular::sketch::Moments) -> f64 {
    if m.count == 0 {
        0.0
    } else {
        (m.m2 / m.count as f64).max(0.0).sqrt()
    }
}

fn suggest(c: &ColumnStats) -> FeatureConstraints {
    let num_constraints = c
        .numeric
        .as_ref()
        .filter(|_| c.kind == Kind::Numeric)
        .map(|n| NumConstraints {
            is_non_negative: n.moments.count > 0 && n.moments.min >= 0.0,
        });
    let string_constraints = c
        .categories
        .as_ref()
        .filter(|t| {
            matches!(c.kind, Kind::Categorical | Kind::Boolean)
                && !t.is_truncated()
                && t.distinct_seen() <= MAX_DOMAIN
        })
        .map(|t| {
            let mut domains: Vec<String> = t.top(usize::MAX).into_iter().map(|x| x.0).collect();
            domains.sort();
            StringConstraints { domains }
        });
    // free text and identifiers change by nature: no drift comparison
    let overrides =
        matches!(c.kind, Kind::Text | Kind::IdLike | Kind::Datetime).then(|| Overrides {
            perform_comparison: Some("Disabled".into()),
            ..Default::default()
        });
    FeatureConstraints {
        name: c.name.clone(),
        inferred_type: inferred_type(c).into(),
        completeness: Some(c.completeness()),
        num_constraints,
        string_constraints,
        overrides,
    }
}

impl Baseline {
    /// The statistics and suggested constraints of a profiled dataset.
    pub fn suggest(stats: &DatasetStats) -> Result<Baseline, MonitorError> {
        if stats.rows == 0 {
            return Err(MonitorError::Data(
                "the baseline data has no rows; give a dataset with at least one row".into(),
            ));
        }
        let statistics = Statistics {
            version: 0.0,
            atelier_monitor_version: FORMAT_VERSION,
            dataset: DatasetInfo {
                item_count: stats.rows,
            },
            features: stats.columns.iter().map(feature_statistics).collect(),
        };
        let constraints = Constraints {
            version: 0.0,
            atelier_monitor_version: FORMAT_VERSION,
            features: stats.columns.iter().map(suggest).collect(),
            monitoring_config: MonitoringConfig::default(),
        };
        let samples = stats
            .columns
            .iter()
            .filter_map(|c| {
                c.numeric
                    .as_ref()
                    .map(|n| (c.name.clone(), n.sample.clone()))
            })
            .collect();
        Ok(Baseline {
            statistics,
            constraints,
            samples,
        })
    }

    /// Write the three files into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<(), MonitorError> {
        std::fs::create_dir_all(dir).map_err(|e| MonitorError::io(dir, e))?;
        write_json(&dir.join(STATISTICS_FILE), &self.statistics)?;
        write_json(&dir.join(CONSTRAINTS_FILE), &self.constraints)?;
        // one nullable column per numeric feature, padded to the longest
        let longest = self.samples.values().map(Vec::len).max().unwrap_or(0);
        let mut table = Table::default();
        for f in &self.statistics.features {
            if let Some(s) = self.samples.get(&f.name) {
                let mut v: Vec<Option<f64>> = s.iter().map(|x| Some(*x)).collect();
                v.resize(longest, None);
                table
                    .columns
                    .push(tabular::Column::from_f64(&f.name, Kind::Numeric, v));
            }
        }
        let path = dir.join(SAMPLE_FILE);
        if table.columns.is_empty() {
            let _ = std::fs::remove_file(&path);
        } else {
            tabular::write_parquet(&table, &path)?;
        }
        Ok(())
    }

    /// Read a baseline directory, checking versions and shapes; every
    /// problem is an error that names the file and what to fix.
    pub fn load(dir: &Path) -> Result<Baseline, MonitorError> {
        if !dir.is_dir() {
            return Err(MonitorError::Baseline(format!(
                "{} is not a directory; give the --output directory of `atelier monitor baseline`",
                dir.display()
            )));
        }
        let statistics: Statistics = read_json(&dir.join(STATISTICS_FILE))?;
        let constraints: Constraints = read_json(&dir.join(CONSTRAINTS_FILE))?;
        let mut samples = HashMap::new();
        let numeric: Vec<&FeatureStatistics> = statistics
            .features
            .iter()
            .filter(|f| f.numerical_statistics.is_some() && f.atelier.sample_size > 0)
            .collect();
        if !numeric.is_empty() {
            let path = dir.join(SAMPLE_FILE);
            let unreadable = |e: tabular::DataError| {
                MonitorError::Baseline(format!(
                    "{e} (the numeric features' reference sample; re-create the baseline with `atelier monitor baseline`)"
                ))
            };
            // every column is numbers: no kind inference needed
            let opts = tabular::ChunkOptions {
                rows: 1 << 20,
                kinds: numeric
                    .iter()
                    .map(|f| (f.name.clone(), Kind::Numeric))
                    .collect(),
            };
            let mut cols: HashMap<String, Vec<f64>> = HashMap::new();
            for chunk in tabular::read_chunks(&path, &opts).map_err(unreadable)? {
                for c in chunk.map_err(unreadable)?.columns {
                    let v = cols.entry(c.name.clone()).or_default();
                    if let Some(a) = c.numbers() {
                        v.extend(a.iter().flatten());
                    }
                }
            }
            for f in numeric {
                let mut v = cols.remove(&f.name).ok_or_else(|| {
                    MonitorError::Baseline(format!(
                        "{}: no sample for feature '{}'; re-create the baseline",
                        path.display(),
                        f.name
                    ))
                })?;
                if v.len() as u64 != f.atelier.sample_size {
                    return Err(MonitorError::Baseline(format!(
                        "{}: feature '{}' has {} sample values but statistics.json says {}; re-create the baseline",
                        path.display(),
                        f.name,
                        v.len(),
                        f.atelier.sample_size
                    )));
                }
                v.sort_unstable_by(|a, b| a.total_cmp(b));
                samples.insert(f.name.clone(), v);
            }
        }
        let b = Baseline {
            statistics,
            constraints,
            samples,
        };
        b.validate()?;
        Ok(b)
    }

    fn validate(&self) -> Result<(), MonitorError> {
        let bad = |file: &str, msg: String| Err(MonitorError::Baseline(format!("{file}: {msg}")));
        for (file, v, av) in [
            (
                STATISTICS_FILE,
                self.statistics.version,
                self.statistics.atelier_monitor_version,
            ),
            (
                CONSTRAINTS_FILE,
                self.constraints.version,
                self.constraints.atelier_monitor_version,
            ),
        ] {
            if v != 0.0 {
                return bad(
                    file,
                    format!("\"version\" is {v}; this build reads SageMaker's version 0"),
                );
            }
            if av != FORMAT_VERSION {
                return bad(
                    file,
                    format!(
                        "\"atelier_monitor_version\" is {av}; this build reads version {FORMAT_VERSION} (re-create the baseline with this build)"
                    ),
                );
            }
        }
        for f in &self.statistics.features {
            let numeric = is_numeric_kind(f.atelier.kind);
            if numeric != f.numerical_statistics.is_some()
                || (!numeric && f.string_statistics.is_none())
            {
                return bad(
                    STATISTICS_FILE,
                    format!(
                        "feature '{}' ({:?}) needs {}",
                        f.name,
                        f.atelier.kind,
                        if numeric {
                            "\"numerical_statistics\""
                        } else {
                            "\"string_statistics\""
                        }
                    ),
                );
            }
        }
        let mc = &self.constraints.monitoring_config;
        for (name, v) in [
            ("datatype_check_threshold", mc.datatype_check_threshold),
            ("domain_content_threshold", mc.domain_content_threshold),
            ("completeness_threshold", mc.completeness_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(
                    CONSTRAINTS_FILE,
                    format!("monitoring_config.{name} is {v}; use a share between 0 and 1"),
                );
            }
        }
        let dc = &mc.distribution_constraints;
        if !(dc.comparison_threshold.is_finite() && dc.comparison_threshold >= 0.0) {
            return bad(
                CONSTRAINTS_FILE,
                "monitoring_config.distribution_constraints.comparison_threshold must be a number ≥ 0".into(),
            );
        }
        crate::check::Method::parse(&dc.numerical_method).map_err(|e| {
            MonitorError::Baseline(format!("{CONSTRAINTS_FILE}: numerical_method: {e}"))
        })?;
        crate::check::Method::parse(&dc.categorical_method).map_err(|e| {
            MonitorError::Baseline(format!("{CONSTRAINTS_FILE}: categorical_method: {e}"))
        })?;
        if !(dc.p_value_threshold > 0.0 && dc.p_value_threshold < 1.0) {
            return bad(
                CONSTRAINTS_FILE,
                "monitoring_config.distribution_constraints.p_value_threshold must be a number between 0 and 1 (default 0.01)".into(),
            );
        }
        crate::check::Correction::parse(&dc.multiple_testing).map_err(|e| {
            MonitorError::Baseline(format!("{CONSTRAINTS_FILE}: multiple_testing: {e}"))
        })?;
        for f in &self.constraints.features {
            if let Some(o) = &f.overrides {
                if let Some(m) = &o.comparison_method {
                    crate::check::Method::parse(m).map_err(|e| {
                        MonitorError::Baseline(format!(
                            "{CONSTRAINTS_FILE}: feature '{}': comparison_method: {e}",
                            f.name
                        ))
                    })?;
                }
                if let Some(t) = o.comparison_threshold
                    && !(t.is_finite() && t >= 0.0)
                {
                    return bad(
                        CONSTRAINTS_FILE,
                        format!(
                            "feature '{}': comparison_threshold must be a number ≥ 0",
                            f.name
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Column kinds by name, for reading current data the baseline's way.
    pub fn kinds(&self) -> HashMap<String, Kind> {
        self.statistics
            .features
            .iter()
            .map(|f| (f.name.clone(), f.atelier.kind))
            .collect()
    }

    pub fn feature(&self, name: &str) -> Option<&FeatureStatistics> {
        self.statistics.features.iter().find(|f| f.name == name)
    }
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), MonitorError> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| MonitorError::Data(format!("serialising {}: {e}", path.display())))?;
    std::fs::write(path, text + "\n").map_err(|e| MonitorError::io(path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, MonitorError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        MonitorError::Baseline(format!(
            "{}: {e}; a baseline directory holds {STATISTICS_FILE} and {CONSTRAINTS_FILE} written by `atelier monitor baseline`",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        MonitorError::Baseline(format!(
            "{}: {e}; fix the JSON or re-create the baseline with `atelier monitor baseline`",
            path.display()
        ))
    })
}
