//! Comparing current data with a baseline: SageMaker's constraint checks
//! (`constraint_violations.json`) and the drift statistics per feature
//! (`drift_report.json`).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use tabular::Kind;

use crate::MonitorError;
use crate::baseline::{Baseline, FeatureConstraints, FeatureStatistics, population_std};
use crate::profile::{ColumnStats, DatasetStats, is_numeric_kind};
use crate::stats;

/// The statistic a drift verdict is taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The default: a p-value test while either side has at most
    /// [`SMALL_SAMPLE`] values (KS for numbers, χ² for labels, at 0.05),
    /// a distance beyond (normed Wasserstein for numbers, Jensen–Shannon
    /// for labels, at the configured threshold) — small samples make
    /// distances noisy, large ones make p-values flag trivia.
    Auto,
    /// Wasserstein distance divided by the reference's (population)
    /// standard deviation (Evidently's "normed Wasserstein"); numbers only.
    Wasserstein,
    /// Jensen–Shannon distance over categories (labels) or reference
    /// deciles (numbers).
    JensenShannon,
    /// Population Stability Index over the same bins.
    Psi,
    /// Kolmogorov–Smirnov p-value (drift when below the threshold);
    /// numbers only.
    Ks,
    /// χ² contingency p-value (drift when below the threshold); labels only.
    Chi2,
    /// SageMaker's distance: the largest difference between the two CDFs
    /// (the KS statistic) for numbers, between category shares for labels.
    CdfDistance,
}

impl Method {
    pub fn parse(s: &str) -> Result<Method, String> {
        Ok(
            match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
                "auto" => Method::Auto,
                "wasserstein" | "normed_wasserstein" => Method::Wasserstein,
                "jensen_shannon" | "jensenshannon" | "js" => Method::JensenShannon,
                "psi" => Method::Psi,
                "ks" | "kolmogorov_smirnov" => Method::Ks,
                "chi2" | "chisquare" | "chi_square" => Method::Chi2,
                "cdf_distance" | "robust" | "simple" | "linf" => Method::CdfDistance,
                other => {
                    return Err(format!(
                        "unknown method '{other}': use auto, wasserstein, jensen_shannon, psi, ks, chi2 or cdf_distance (SageMaker's Robust/Simple)"
                    ));
                }
            },
        )
    }
    /// p-value methods flag drift below the threshold, distances above it.
    pub fn is_pvalue(self) -> bool {
        matches!(self, Method::Ks | Method::Chi2)
    }
    pub fn default_threshold(self) -> f64 {
        match self {
            Method::Ks | Method::Chi2 => 0.05,
            Method::Psi => 0.2,
            Method::Auto | Method::Wasserstein | Method::JensenShannon | Method::CdfDistance => 0.1,
        }
    }
    fn applies_to(self, numeric: bool) -> bool {
        match self {
            Method::Wasserstein | Method::Ks => numeric,
            Method::Chi2 => !numeric,
            _ => true,
        }
    }
}

/// Samples up to this size are judged by p-values under [`Method::Auto`]
/// (Evidently's cut-off between its small- and large-data defaults).
pub const SMALL_SAMPLE: usize = 1000;

/// How the p-values of one check's features are corrected for testing
/// many features at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm's step-down method: the family-wise error rate (any false
    /// alarm among the p-value features of one check) stays at most the
    /// threshold, uniformly more powerful than Bonferroni.
    Holm,
    /// Each feature at its own threshold.
    None,
}

impl Correction {
    pub fn parse(s: &str) -> Result<Correction, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "holm" | "holm_bonferroni" => Ok(Correction::Holm),
            "none" | "disabled" => Ok(Correction::None),
            other => Err(format!("unknown correction '{other}': use holm or none")),
        }
    }
}

/// Holm-adjusted p-values, in the input's order: with the p-values sorted
/// ascending, p_(i) × (m − i + 1) (1-based), made non-decreasing along that
/// order and capped at 1. A feature drifts when its adjusted p-value is
/// below the threshold — the same verdicts as Holm's step-down procedure.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![1.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max((p[i] * (m - rank) as f64).min(1.0));
        out[i] = running;
    }
    out
}

/// One line of `constraint_violations.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub feature_name: String,
    pub constraint_check_type: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violations {
    pub violations: Vec<Violation>,
}

/// KS result as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KsReport {
    pub statistic: f64,
    pub pvalue: f64,
    /// "exact" or "asymptotic" (scipy's method='auto' choice).
    pub method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chi2Report {
    pub statistic: f64,
    pub pvalue: f64,
    pub dof: usize,
    /// Categories too rare for the χ² approximation (expected count under
    /// 5), merged into one column before the test.
    pub pooled_categories: usize,
}

/// Every statistic computed for one feature.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct FeatureStatisticsReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<KsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2: Option<Chi2Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein_normed: Option<f64>,
    pub psi: f64,
    pub jensen_shannon: f64,
    pub cdf_distance: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideSummary {
    pub count: u64,
    pub missing: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std_dev: Option<f64>,
    /// Values behind KS / Wasserstein (numbers), or categories (labels).
    pub sample_size: u64,
    pub sample_exact: bool,
}

/// The drift verdict and statistics for one feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    pub name: String,
    pub kind: Kind,
    /// The statistic the verdict is taken on; None when not compared.
    pub method: Option<Method>,
    pub threshold: Option<f64>,
    pub value: Option<f64>,
    /// For a p-value method under a correction: the adjusted p-value the
    /// verdict was taken on (`value` stays the raw one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_adjusted: Option<f64>,
    pub drift: bool,
    /// Why there is no verdict (disabled, no data on one side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The bins PSI and Jensen–Shannon used: "categories" or "reference
    /// deciles (n bins)".
    pub bins: String,
    pub statistics: FeatureStatisticsReport,
    pub baseline: SideSummary,
    pub current: SideSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    pub atelier_monitor_version: u32,
    pub baseline_rows: u64,
    pub current_rows: u64,
    pub features: Vec<FeatureDrift>,
    /// Names of the features whose drift crossed its threshold.
    pub drifted: Vec<String>,
    /// The correction applied to the p-value features' verdicts, and how
    /// many features it covered.
    pub multiple_testing: MultipleTesting,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultipleTesting {
    pub method: Correction,
    pub tests: usize,
}

/// What a check produces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub violations: Violations,
    pub drift: DriftReport,
}

/// Compare current data's statistics with a baseline.
pub fn check(baseline: &Baseline, current: &DatasetStats) -> Result<Report, MonitorError> {
    if current.rows == 0 {
        return Err(MonitorError::Data(
            "the current data has no rows; nothing to check".into(),
        ));
    }
    let cons = &baseline.constraints;
    let mc = &cons.monitoring_config;
    let evaluate = !mc.evaluate_constraints.eq_ignore_ascii_case("disabled");
    let compare = !mc
        .distribution_constraints
        .perform_comparison
        .eq_ignore_ascii_case("disabled");
    let mut violations = Vec::new();
    let mut v = |name: &str, kind: &str, description: String| {
        violations.push(Violation {
            feature_name: name.to_string(),
            constraint_check_type: kind.to_string(),
            description,
        })
    };
    let known: HashSet<&str> = baseline
        .statistics
        .features
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    if evaluate {
        for f in &baseline.statistics.features {
            if current.column(&f.name).is_none() {
                v(
                    &f.name,
                    "missing_column_check",
                    format!("baseline column '{}' is not in the current data", f.name),
                );
            }
        }
        for c in &current.columns {
            if !known.contains(c.name.as_str()) {
                v(
                    &c.name,
                    "extra_column_check",
                    format!("column '{}' is not in the baseline", c.name),
                );
            }
        }
    }
    let mut features = Vec::new();
    for f in &baseline.statistics.features {
        let Some(cur) = current.column(&f.name) else {
            continue;
        };
        let fc = cons.features.iter().find(|c| c.name == f.name);
        if evaluate {
            constraint_checks(f, fc, cur, mc, &mut v);
        }
        features.push(drift_for(baseline, f, fc, cur, compare)?);
    }
    // p-value verdicts are corrected across the features of this check
    let correction = Correction::parse(&mc.distribution_constraints.multiple_testing)
        .map_err(MonitorError::Baseline)?;
    let tested: Vec<usize> = features
        .iter()
        .enumerate()
        .filter(|(_, d)| d.method.is_some_and(Method::is_pvalue) && d.value.is_some())
        .map(|(i, _)| i)
        .collect();
    if correction == Correction::Holm {
        let raw: Vec<f64> = tested
            .iter()
            .map(|&i| features[i].value.unwrap_or(1.0))
            .collect();
        for (&i, adj) in tested.iter().zip(holm(&raw)) {
            let d = &mut features[i];
            d.p_adjusted = Some(adj);
            d.drift = adj < d.threshold.unwrap_or(0.0);
        }
    }
    let drifted: Vec<String> = features
        .iter()
        .filter(|d| d.drift)
        .map(|d| d.name.clone())
        .collect();
    for d in features.iter().filter(|d| d.drift) {
        let adjusted = d.p_adjusted.map_or(String::new(), |a| {
            format!(
                " (Holm-adjusted {} over {} p-value tests)",
                fmt(a),
                tested.len()
            )
        });
        v(
            &d.name,
            "baseline_drift_check",
            format!(
                "{} {}{adjusted} {} the threshold {} (baseline vs current)",
                method_label(d.method),
                fmt(d.value.unwrap_or(f64::NAN)),
                if d.method.is_some_and(Method::is_pvalue) {
                    "is below"
                } else {
                    "exceeds"
                },
                fmt(d.threshold.unwrap_or(f64::NAN))
            ),
        );
    }
    Ok(Report {
        violations: Violations { violations },
        drift: DriftReport {
            atelier_monitor_version: crate::baseline::FORMAT_VERSION,
            baseline_rows: baseline.statistics.dataset.item_count,
            current_rows: current.rows,
            features,
            drifted,
            multiple_testing: MultipleTesting {
                method: correction,
                tests: tested.len(),
            },
        },
    })
}

fn method_label(m: Option<Method>) -> &'static str {
    match m {
        Some(Method::Wasserstein) => "normed Wasserstein distance",
        Some(Method::JensenShannon) => "Jensen-Shannon distance",
        Some(Method::Psi) => "PSI",
        Some(Method::Ks) => "KS p-value",
        Some(Method::Chi2) => "chi-square p-value",
        Some(Method::CdfDistance) => "CDF distance",
        Some(Method::Auto) => "auto",
        None => "-",
    }
}

fn fmt(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-3 {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

fn constraint_checks(
    f: &FeatureStatistics,
    fc: Option<&FeatureConstraints>,
    cur: &ColumnStats,
    mc: &crate::baseline::MonitoringConfig,
    v: &mut impl FnMut(&str, &str, String),
) {
    let name = &f.name;
    // data type: share of present cells that have the baseline's type
    let present_cells = cur.present() + cur.mismatched;
    let mut conforming = cur.present();
    let want = fc.map_or(f.inferred_type.as_str(), |c| c.inferred_type.as_str());
    if want == "Integral"
        && let Some(n) = &cur.numeric
        && !n.integral
    {
        // count the fractional values in the sample, scaled to the column
        let frac = n.sample.iter().filter(|x| x.fract() != 0.0).count() as f64
            / n.sample.len().max(1) as f64;
        conforming = (cur.present() as f64 * (1.0 - frac)).round() as u64;
    }
    if present_cells > 0 {
        let share = conforming as f64 / present_cells as f64;
        if share < mc.datatype_check_threshold {
            v(
                name,
                "data_type_check",
                format!(
                    "{} of {} values are not {} (conforming share {} is below datatype_check_threshold {})",
                    present_cells - conforming,
                    present_cells,
                    want,
                    fmt(share),
                    mc.datatype_check_threshold
                ),
            );
        }
    }
    let Some(fc) = fc else {
        return;
    };
    if let Some(min) = fc.completeness {
        let need = min * mc.completeness_threshold;
        // below the bar, and by more than chance: a window drawn from the
        // baseline's own data dips under 95 % of its completeness often
        // when it is small (one 200-row titanic window in twelve for Age)
        let p = more_missing_p(f, cur);
        let level = mc.distribution_constraints.p_value_threshold;
        if cur.completeness() < need && p.is_none_or(|p| p < level) {
            let chance = p.map_or(String::new(), |p| {
                format!(
                    "; p = {} for this many missing values by chance at the baseline's rate",
                    fmt(p)
                )
            });
            v(
                name,
                "completeness_check",
                format!(
                    "completeness {} is below {} (baseline completeness {} × completeness_threshold {}){chance}",
                    fmt(cur.completeness()),
                    fmt(need),
                    fmt(min),
                    mc.completeness_threshold
                ),
            );
        }
    }
    if let (Some(nc), Some(n)) = (&fc.num_constraints, &cur.numeric)
        && nc.is_non_negative
        && n.moments.count > 0
        && n.moments.min < 0.0
    {
        v(
            name,
            "data_type_check",
            format!(
                "has negative values (min {}) but the constraint is_non_negative holds",
                fmt(n.moments.min)
            ),
        );
    }
    if let (Some(sc), Some(t)) = (&fc.string_constraints, &cur.categories) {
        let domain: HashSet<&str> = sc.domains.iter().map(String::as_str).collect();
        let all = t.top(usize::MAX);
        let total: u64 = all.iter().map(|x| x.1).sum();
        let outside: Vec<&(String, u64)> = all
            .iter()
            .filter(|(k, _)| !domain.contains(k.as_str()))
            .collect();
        let out_n: u64 = outside.iter().map(|x| x.1).sum();
        if total > 0 {
            let share = 1.0 - out_n as f64 / total as f64;
            // values the baseline never saw turn up by chance as often as
            // values it saw once (Good–Turing), and a baseline of N rows
            // without rare values cannot rule out a share of 3/N (the rule
            // of three): only more than that alarms
            let (seen_once, seen) = f.string_statistics.as_ref().map_or((0, 0), |s| {
                let b = &s.distribution.categorical.buckets;
                (
                    b.iter().filter(|c| c.count == 1).count() as u64,
                    b.iter().map(|c| c.count).sum::<u64>(),
                )
            });
            let expected = if seen > 0 {
                total as f64 * seen_once.max(UNSEEN_FLOOR) as f64 / seen as f64
            } else {
                0.0
            };
            let p = stats::poisson_sf(out_n, expected);
            if share < mc.domain_content_threshold
                && p < mc.distribution_constraints.p_value_threshold
            {
                let examples: Vec<String> = outside
                    .iter()
                    .take(5)
                    .map(|(k, _)| format!("{k:?}"))
                    .collect();
                v(
                    name,
                    "categorical_values_check",
                    format!(
                        "{out_n} of {total} values are outside the baseline domain (e.g. {}); in-domain share {} is below domain_content_threshold {}{}",
                        examples.join(", "),
                        fmt(share),
                        mc.domain_content_threshold,
                        if seen > 0 {
                            format!(
                                "; {} were expected by chance ({seen_once} values seen once in the baseline's {seen} rows), p = {}",
                                fmt(expected),
                                fmt(p)
                            )
                        } else {
                            String::new()
                        }
                    ),
                );
            }
        }
    }
}

/// One-sided p-value that the current window has this many more missing
/// values than the baseline's share by chance: half the two-sided χ² test
/// (Yates-corrected) of the 2×2 table of present and missing counts when
/// the window misses more, 1 otherwise. None without the baseline's counts
/// (a SageMaker-written statistics file).
fn more_missing_p(f: &FeatureStatistics, cur: &ColumnStats) -> Option<f64> {
    let common = f
        .numerical_statistics
        .as_ref()
        .map(|n| &n.common)
        .or_else(|| f.string_statistics.as_ref().map(|s| &s.common))?;
    let base = [common.num_present as f64, common.num_missing as f64];
    let now = [cur.present() as f64, cur.missing as f64];
    let share = |c: &[f64; 2]| c[1] / (c[0] + c[1]).max(1.0);
    if share(&now) <= share(&base) {
        return Some(1.0);
    }
    stats::chi2_contingency(&base, &now).map(|c| c.pvalue / 2.0)
}

/// The least count of "values seen once" the expectation of new values
/// assumes (the rule of three: a baseline of N rows bounds an unseen share
/// at 3/N with 95 % confidence, not at 0).
const UNSEEN_FLOOR: u64 = 3;

fn drift_for(
    baseline: &Baseline,
    f: &FeatureStatistics,
    fc: Option<&FeatureConstraints>,
    cur: &ColumnStats,
    compare: bool,
) -> Result<FeatureDrift, MonitorError> {
    let dc = &baseline
        .constraints
        .monitoring_config
        .distribution_constraints;
    let numeric = is_numeric_kind(f.atelier.kind);
    let overrides = fc.and_then(|c| c.overrides.as_ref());
    let disabled = !compare
        || overrides
            .and_then(|o| o.perform_comparison.as_deref())
            .is_some_and(|p| p.eq_ignore_ascii_case("disabled"));
    let (mut method, mut threshold) = match overrides.and_then(|o| o.comparison_method.as_deref()) {
        Some(m) => {
            let m = Method::parse(m).map_err(MonitorError::Baseline)?;
            let t = overrides
                .and_then(|o| o.comparison_threshold)
                .unwrap_or(m.default_threshold());
            (m, t)
        }
        None => {
            let m = Method::parse(if numeric {
                &dc.numerical_method
            } else {
                &dc.categorical_method
            })
            .map_err(MonitorError::Baseline)?;
            let t = overrides
                .and_then(|o| o.comparison_threshold)
                .unwrap_or(dc.comparison_threshold);
            (m, t)
        }
    };
    if !method.applies_to(numeric) {
        return Err(MonitorError::Baseline(format!(
            "constraints.json: feature '{}': method {:?} does not apply to a {} feature",
            f.name,
            method,
            if numeric { "numeric" } else { "categorical" }
        )));
    }
    let mut statistics = FeatureStatisticsReport::default();
    let bins;
    let baseline_side;
    let current_side;
    let mut note = None;
    if numeric {
        let empty = Vec::new();
        let a = baseline.samples.get(&f.name).unwrap_or(&empty);
        let b = cur.numeric.as_ref().map(|n| &n.sample).unwrap_or(&empty);
        let ns = f.numerical_statistics.as_ref();
        baseline_side = SideSummary {
            count: ns.map_or(0, |n| n.common.num_present + n.common.num_missing),
            missing: ns.map_or(0, |n| n.common.num_missing),
            mean: ns.map(|n| n.mean),
            std_dev: ns.map(|n| n.std_dev),
            sample_size: a.len() as u64,
            sample_exact: f.atelier.sample_exact,
        };
        current_side = SideSummary {
            count: cur.count,
            missing: cur.missing,
            mean: cur.numeric.as_ref().map(|n| n.moments.mean),
            std_dev: cur.numeric.as_ref().map(|n| population_std(&n.moments)),
            sample_size: b.len() as u64,
            sample_exact: cur.numeric.as_ref().is_some_and(|n| n.exact),
        };
        let edges = stats::decile_edges(a);
        bins = format!("reference deciles ({} bins)", edges.len() + 1);
        if a.is_empty() || b.is_empty() {
            note = Some("no values on one side".to_string());
        } else {
            let ks = stats::ks_2samp(a, b);
            let w = stats::wasserstein(a, b);
            let sd = ns.map_or(0.0, |n| n.std_dev);
            statistics.wasserstein = w;
            statistics.wasserstein_normed = w.map(|w| w / if sd > 0.0 { sd } else { 1e-3 });
            statistics.cdf_distance = ks.map_or(0.0, |k| k.statistic);
            statistics.ks = ks.map(|k| KsReport {
                statistic: k.statistic,
                pvalue: k.pvalue,
                method: if k.exact { "exact" } else { "asymptotic" },
            });
            let p = stats::proportions(&stats::bin_counts(a, &edges));
            let q = stats::proportions(&stats::bin_counts(b, &edges));
            statistics.psi = stats::psi(&p, &q);
            statistics.jensen_shannon = stats::jensen_shannon(&p, &q);
        }
    } else {
        let ss = f.string_statistics.as_ref();
        let base: BTreeMap<&str, u64> = ss
            .map(|s| {
                s.distribution
                    .categorical
                    .buckets
                    .iter()
                    .map(|b| (b.value.as_str(), b.count))
                    .collect()
            })
            .unwrap_or_default();
        let cur_counts = cur
            .categories
            .as_ref()
            .map(|t| t.top(usize::MAX))
            .unwrap_or_default();
        let mut keys: Vec<&str> = base.keys().copied().collect();
        for (k, _) in &cur_counts {
            if !base.contains_key(k.as_str()) {
                keys.push(k.as_str());
            }
        }
        let cur_map: BTreeMap<&str, u64> =
            cur_counts.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        let a: Vec<f64> = keys
            .iter()
            .map(|k| *base.get(k).unwrap_or(&0) as f64)
            .collect();
        let b: Vec<f64> = keys
            .iter()
            .map(|k| *cur_map.get(k).unwrap_or(&0) as f64)
            .collect();
        bins = format!("categories ({})", keys.len());
        baseline_side = SideSummary {
            count: ss.map_or(0, |s| s.common.num_present + s.common.num_missing),
            missing: ss.map_or(0, |s| s.common.num_missing),
            mean: None,
            std_dev: None,
            sample_size: base.len() as u64,
            sample_exact: true,
        };
        current_side = SideSummary {
            count: cur.count,
            missing: cur.missing,
            mean: None,
            std_dev: None,
            sample_size: cur_map.len() as u64,
            sample_exact: cur.categories.as_ref().is_some_and(|t| !t.is_truncated()),
        };
        if a.iter().sum::<f64>() == 0.0 || b.iter().sum::<f64>() == 0.0 {
            note = Some("no values on one side".to_string());
        } else {
            let (pa, pb, pooled) = stats::pool_sparse(&a, &b);
            statistics.chi2 = stats::chi2_contingency(&pa, &pb).map(|c| Chi2Report {
                statistic: c.statistic,
                pvalue: c.pvalue,
                dof: c.dof,
                pooled_categories: pooled,
            });
            let p = stats::proportions(&a);
            let q = stats::proportions(&b);
            statistics.psi = stats::psi(&p, &q);
            statistics.jensen_shannon = stats::jensen_shannon(&p, &q);
            statistics.cdf_distance = stats::linf(&p, &q);
        }
    }
    if method == Method::Auto {
        let small = baseline_side.sample_size.min(current_side.sample_size) <= SMALL_SAMPLE as u64;
        // for labels the sizes are value counts, not category counts
        let small = if numeric {
            small
        } else {
            let n = |s: &SideSummary| s.count - s.missing;
            n(&baseline_side).min(n(&current_side)) <= SMALL_SAMPLE as u64
        };
        (method, threshold) = match (small, numeric) {
            (true, true) => (Method::Ks, dc.p_value_threshold),
            (true, false) => (Method::Chi2, dc.p_value_threshold),
            (false, true) => (Method::Wasserstein, threshold),
            (false, false) => (Method::JensenShannon, threshold),
        };
    }
    let value = if note.is_some() || disabled {
        None
    } else {
        match method {
            Method::Wasserstein => statistics.wasserstein_normed,
            Method::JensenShannon => Some(statistics.jensen_shannon),
            Method::Psi => Some(statistics.psi),
            Method::Ks => statistics.ks.as_ref().map(|k| k.pvalue),
            Method::Chi2 => statistics.chi2.as_ref().map(|c| c.pvalue),
            Method::CdfDistance => Some(statistics.cdf_distance),
            Method::Auto => None, // resolved above
        }
    };
    if disabled && note.is_none() {
        note = Some("comparison disabled in constraints.json".into());
    }
    let drift = value.is_some_and(|x| {
        if method.is_pvalue() {
            x < threshold
        } else {
            x > threshold
        }
    });
    Ok(FeatureDrift {
        name: f.name.clone(),
        kind: f.atelier.kind,
        method: (!disabled).then_some(method),
        threshold: (!disabled).then_some(threshold),
        value,
        p_adjusted: None,
        drift,
        note,
        bins,
        statistics,
        baseline: baseline_side,
        current: current_side,
    })
}

/// The short table `atelier monitor check` prints.
pub fn summary_table(r: &Report) -> String {
    let mut out = format!(
        "{:<24} {:<12} {:<15} {:>10} {:>9}  {:<5} {:>10} {:>10} {:>8} {:>8}\n",
        "feature", "kind", "method", "value", "threshold", "drift", "ks p", "chi2 p", "psi", "js"
    );
    for f in &r.drift.features {
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let method = f
            .method
            .and_then(|m| serde_json::to_value(m).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "-".into());
        let opt = |x: Option<f64>| x.map_or("-".to_string(), fmt);
        out.push_str(&format!(
            "{:<24} {:<12} {:<15} {:>10} {:>9}  {:<5} {:>10} {:>10} {:>8} {:>8}\n",
            truncate(&f.name, 24),
            kind,
            method,
            opt(f.value),
            opt(f.threshold),
            if f.drift { "YES" } else { "no" },
            opt(f.statistics.ks.as_ref().map(|k| k.pvalue)),
            opt(f.statistics.chi2.as_ref().map(|c| c.pvalue)),
            fmt(f.statistics.psi),
            fmt(f.statistics.jensen_shannon),
        ));
    }
    let n = r.violations.violations.len();
    let mt = &r.drift.multiple_testing;
    let corrected = match mt.method {
        Correction::Holm if mt.tests > 1 => format!(
            " (p-value verdicts Holm-corrected over {} features)",
            mt.tests
        ),
        _ => String::new(),
    };
    out.push_str(&format!(
        "\n{} of {} features drifted{corrected}; {} constraint violation{}\n",
        r.drift.drifted.len(),
        r.drift.features.len(),
        n,
        if n == 1 { "" } else { "s" }
    ));
    for v in &r.violations.violations {
        out.push_str(&format!(
            "  {:<26} {:<24} {}\n",
            v.constraint_check_type, v.feature_name, v.description
        ));
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
