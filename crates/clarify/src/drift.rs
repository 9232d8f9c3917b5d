//! What Model Monitor's ModelBias and ModelExplainability checks need on top
//! of the bias report: a bias baseline turned into constraints with bounds
//! and the check of a window's report against them (`bias_drift_check`),
//! global SHAP values (mean |SHAP| per input column and label) and the nDCG
//! of a window's feature ranking against the baseline's
//! (`feature_attribution_drift_check`).
//!
//! ## Bias bounds
//!
//! SageMaker records a violation when a metric in the window is farther
//! from its fair value than the baseline's value is (a DPPL of −0.3 against
//! a baseline 0.2 violates, 0.1 does not). Taken literally that alarms on
//! about half of all clean windows (sampling noise alone moves a metric
//! past the baseline half of the time), so the bound here is the baseline's
//! distance from fair **plus a tolerance**:
//!
//! * difference metrics (DPPL, AD, RD, DAR, DCA, DCR, DRR, SD, TE, CDDPL, FT,
//!   GE; fair value 0): `[−(|b| + t), |b| + t]`, `t` = 0.1 by default (a
//!   tenth of the metric's range of ±1, about two standard errors of a
//!   difference of proportions with 200 rows a side);
//! * DI (fair value 1, a ratio): with `m = max(b, 1/b)`, `[1/(m·r), m·r]`,
//!   `r` = 1.25 by default — for a fair baseline that is the four-fifths
//!   rule's `[0.8, 1.25]`, and a biased baseline widens it by its own ratio.
//!
//! Only a window that is *more* biased than the baseline by more than the
//! tolerance alerts; a window fairer than the baseline never does (as in
//! SageMaker). The bounds are written in `constraints.json` beside each
//! metric (`lower`, `upper`), where they can be edited. The tolerance is
//! fixed, so on small windows noise alone crosses it; Model Monitor
//! (`monitoring::clarify_checks`) also asks that a value be evidently
//! beyond its bound before it alerts.
//!
//! ## nDCG
//!
//! SageMaker's definition (the scikit-learn `ndcg_score` its page links,
//! with the baseline's global SHAP values as the relevance): rank the
//! features by the window's global SHAP values, `DCG = Σᵢ F(xᵢ)/log₂(i+1)`
//! with `F` the baseline's value of the feature at rank `i`, divided by the
//! DCG of the baseline's own ranking. Ties in the window's values share the
//! average gain of their positions (scikit-learn's `ignore_ties=False`).
//! Below 0.9 (SageMaker's threshold) is a violation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::metrics::MetricValue;
use crate::report::{Report, StageReport};

/// SageMaker's nDCG threshold for feature attribution drift.
pub const NDCG_THRESHOLD: f64 = 0.9;
/// Default tolerance of the difference metrics beyond the baseline's distance from 0.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// Default ratio for DI beyond the baseline's distance from 1 (four-fifths rule).
pub const DEFAULT_DI_RATIO: f64 = 1.25;
/// Metrics a bias schedule watches unless told otherwise.
pub const DEFAULT_METRICS: [&str; 3] = ["DPPL", "DI", "AD"];

/// nDCG of `current`'s ranking against `baseline`'s values (same features,
/// same order), over the top `k` ranks (`None`: all). 1.0 when the baseline
/// has no positive value (nothing to rank).
pub fn ndcg(baseline: &[f64], current: &[f64], k: Option<usize>) -> f64 {
    let n = baseline.len().min(current.len());
    let k = k.unwrap_or(n).min(n);
    if k == 0 {
        return 1.0;
    }
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    // the ideal: baseline values sorted down
    let mut ideal: Vec<f64> = baseline[..n].to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g * discount(i))
        .sum();
    if idcg <= 0.0 {
        return 1.0;
    }
    // the window's ranking, ties sharing the mean gain of their positions
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| current[b].total_cmp(&current[a]));
    let mut dcg = 0.0;
    let mut i = 0;
    while i < n && i < k {
        let mut j = i + 1;
        while j < n && current[order[j]] == current[order[i]] {
            j += 1;
        }
        let gain = order[i..j].iter().map(|&f| baseline[f]).sum::<f64>() / (j - i) as f64;
        let disc: f64 = (i..j.min(k)).map(discount).sum();
        dcg += gain * disc;
        i = j;
    }
    dcg / idcg
}

/// Global SHAP values of one label: mean |contribution| per input column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelShap {
    pub label: String,
    /// Column name → mean |SHAP|, in the pipeline's column order.
    pub global_shap_values: Vec<(String, f64)>,
    /// The mean base value (what the contributions start from).
    pub expected_value: f64,
}

/// Global SHAP values of a model on some rows, one entry per output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalShap {
    pub rows: usize,
    pub method: String,
    pub space: String,
    pub labels: Vec<LabelShap>,
}

impl GlobalShap {
    /// From `Pipeline::contributions`; `labels` names the outputs (one for a
    /// binary or regression model, one per class for a multiclass one).
    pub fn from_contributions(c: &learn::Contributions, labels: &[String]) -> GlobalShap {
        let f = c.columns.len();
        let outputs = c.outputs.max(1);
        let rows = c.values.len() / ((f + 1) * outputs);
        let labels = (0..outputs)
            .map(|k| {
                let mut sums = vec![0.0; f];
                let mut base = 0.0;
                for i in 0..rows {
                    let r = c.row(i, k);
                    for (s, v) in sums.iter_mut().zip(r) {
                        *s += v.abs();
                    }
                    base += r[f];
                }
                let n = rows.max(1) as f64;
                LabelShap {
                    label: labels
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| format!("label{k}")),
                    global_shap_values: c
                        .columns
                        .iter()
                        .zip(&sums)
                        .map(|(c, s)| (c.clone(), s / n))
                        .collect(),
                    expected_value: base / n,
                }
            })
            .collect();
        GlobalShap {
            rows,
            method: c.method.as_str().to_string(),
            space: c.space.as_str().to_string(),
            labels,
        }
    }

    /// Clarify's `analysis.json` explanations section:
    /// `{"version", "explanations": {"kernel_shap": {label: {"global_shap_values":
    /// {feature: value}, "expected_value"}}}}` (the key is Clarify's; our own
    /// method is named in `"method"` beside it).
    pub fn to_json(&self) -> Value {
        let mut by_label = serde_json::Map::new();
        for l in &self.labels {
            let mut vals = serde_json::Map::new();
            for (f, v) in &l.global_shap_values {
                vals.insert(f.clone(), json!(v));
            }
            by_label.insert(
                l.label.clone(),
                json!({"global_shap_values": vals, "expected_value": l.expected_value}),
            );
        }
        json!({
            "version": "1.0",
            "explanations": {"kernel_shap": by_label},
            "method": self.method,
            "space": self.space,
            "rows": self.rows,
        })
    }

    /// Read back what [`GlobalShap::to_json`] wrote (feature order as stored).
    pub fn from_json(v: &Value) -> Result<GlobalShap, String> {
        let labels = v["explanations"]["kernel_shap"]
            .as_object()
            .ok_or("no explanations.kernel_shap in the explainability baseline")?;
        let mut out = Vec::new();
        for (label, e) in labels {
            let vals = e["global_shap_values"]
                .as_object()
                .ok_or_else(|| format!("label '{label}' has no global_shap_values"))?;
            out.push(LabelShap {
                label: label.clone(),
                global_shap_values: vals
                    .iter()
                    .map(|(f, x)| (f.clone(), x.as_f64().unwrap_or(0.0)))
                    .collect(),
                expected_value: e["expected_value"].as_f64().unwrap_or(0.0),
            });
        }
        Ok(GlobalShap {
            rows: v["rows"].as_u64().unwrap_or(0) as usize,
            method: v["method"].as_str().unwrap_or("").to_string(),
            space: v["space"].as_str().unwrap_or("").to_string(),
            labels: out,
        })
    }
}

/// One label's comparison: both rankings and the nDCG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionDrift {
    pub label: String,
    pub ndcg: f64,
    pub threshold: f64,
    pub violation: bool,
    /// `[feature, value]` sorted down, the baseline's and the window's.
    pub baseline_ranking: Vec<(String, f64)>,
    pub current_ranking: Vec<(String, f64)>,
}

fn ranking(v: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut r = v.to_vec();
    r.sort_by(|a, b| b.1.total_cmp(&a.1));
    r
}

/// Compare a window's global SHAP values with the baseline's, label by label
/// (features matched by name; one missing from the window counts as 0).
pub fn attribution_drift(
    baseline: &GlobalShap,
    current: &GlobalShap,
    threshold: f64,
    k: Option<usize>,
) -> Vec<AttributionDrift> {
    baseline
        .labels
        .iter()
        .filter_map(|b| {
            let c = current.labels.iter().find(|c| c.label == b.label)?;
            let base: Vec<f64> = b.global_shap_values.iter().map(|x| x.1).collect();
            let cur: Vec<f64> = b
                .global_shap_values
                .iter()
                .map(|(f, _)| {
                    c.global_shap_values
                        .iter()
                        .find(|(g, _)| g == f)
                        .map_or(0.0, |x| x.1)
                })
                .collect();
            let score = ndcg(&base, &cur, k);
            Some(AttributionDrift {
                label: b.label.clone(),
                ndcg: score,
                threshold,
                violation: score < threshold,
                baseline_ranking: ranking(&b.global_shap_values),
                current_ranking: ranking(&c.global_shap_values),
            })
        })
        .collect()
}

/// A watched metric with its bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundedMetric {
    pub name: String,
    pub description: String,
    /// The baseline's value (`None` when it was undefined there).
    pub value: Option<f64>,
    pub lower: f64,
    pub upper: f64,
}

/// One facet group's watched metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundedFacet {
    pub value_or_threshold: String,
    pub metrics: Vec<BoundedMetric>,
}

/// `constraints.json` of a bias baseline: the post-training metrics of the
/// training data in `analysis.json`'s shape, each with `lower` / `upper`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiasConstraints {
    pub version: String,
    pub post_training_bias_metrics: BoundedStage,
    /// How the bounds were made.
    pub tolerance: f64,
    pub di_ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundedStage {
    pub label: String,
    pub label_value_or_threshold: String,
    pub facets: BTreeMap<String, Vec<BoundedFacet>>,
}

/// SageMaker's `constraint_violations.json` entry for bias drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiasViolation {
    pub facet: String,
    pub facet_value: String,
    pub metric_name: String,
    pub constraint_check_type: String,
    pub description: String,
    pub value: Option<f64>,
    pub lower: f64,
    pub upper: f64,
}

/// The bounds of one metric from its baseline value (see the module docs).
pub fn bounds(name: &str, baseline: f64, tolerance: f64, di_ratio: f64) -> (f64, f64) {
    if name == "DI" {
        let m = if baseline.is_finite() && baseline > 0.0 {
            baseline.max(1.0 / baseline)
        } else {
            f64::INFINITY
        };
        (1.0 / (m * di_ratio), m * di_ratio)
    } else {
        let w = baseline.abs() + tolerance;
        (-w, w)
    }
}

fn finite(v: &MetricValue) -> Option<f64> {
    v.as_ref().ok().copied().filter(|x| x.is_finite())
}

impl BiasConstraints {
    /// Bounds for `metrics` (names as in the report) from a baseline report
    /// with a post-training stage.
    pub fn from_report(
        report: &Report,
        metrics: &[String],
        tolerance: f64,
        di_ratio: f64,
    ) -> Result<BiasConstraints, String> {
        let post: &StageReport = report
            .post_training
            .as_ref()
            .ok_or("the baseline report has no post-training metrics")?;
        let facets = post
            .facets
            .iter()
            .map(|f| BoundedFacet {
                value_or_threshold: f.value_or_threshold.clone(),
                metrics: metrics
                    .iter()
                    .filter_map(|m| f.metrics.iter().find(|r| r.name == m.as_str()))
                    .map(|r| {
                        let value = finite(&r.value);
                        // an undefined baseline: only the tolerance around fair
                        let fair = if r.name == "DI" { 1.0 } else { 0.0 };
                        let (lower, upper) =
                            bounds(r.name, value.unwrap_or(fair), tolerance, di_ratio);
                        BoundedMetric {
                            name: r.name.to_string(),
                            description: r.description.to_string(),
                            value,
                            lower,
                            upper,
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok(BiasConstraints {
            version: "1.0".into(),
            post_training_bias_metrics: BoundedStage {
                label: post.label.clone(),
                label_value_or_threshold: post.label_value_or_threshold.clone(),
                facets: BTreeMap::from([(post.facet.clone(), facets)]),
            },
            tolerance,
            di_ratio,
        })
    }

    /// Check a window's report: every watched metric outside its bounds is a
    /// violation; an undefined value in the window is not (it is reported).
    pub fn check(&self, report: &Report) -> Vec<BiasViolation> {
        let Some(post) = &report.post_training else {
            return vec![];
        };
        let mut out = Vec::new();
        for (facet, groups) in &self.post_training_bias_metrics.facets {
            for g in groups {
                let Some(cur) = post
                    .facets
                    .iter()
                    .find(|f| f.value_or_threshold == g.value_or_threshold)
                    .or_else(|| (post.facets.len() == 1).then(|| &post.facets[0]))
                else {
                    continue;
                };
                for m in &g.metrics {
                    let Some(r) = cur.metrics.iter().find(|r| r.name == m.name) else {
                        continue;
                    };
                    let Ok(v) = r.value else { continue };
                    if v.is_nan() || (v >= m.lower && v <= m.upper) {
                        continue;
                    }
                    out.push(BiasViolation {
                        facet: facet.clone(),
                        facet_value: g.value_or_threshold.clone(),
                        metric_name: m.name.clone(),
                        constraint_check_type: "bias_drift_check".into(),
                        description: format!(
                            "Value {v} does not meet the constraint requirement: {} must lie in [{:.4}, {:.4}] (baseline {})",
                            m.name,
                            m.lower,
                            m.upper,
                            m.value.map_or("undefined".to_string(), |b| format!("{b:.4}"))
                        ),
                        value: v.is_finite().then_some(v),
                        lower: m.lower,
                        upper: m.upper,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_is_one_for_the_same_ranking_and_drops_when_the_top_feature_falls() {
        let base = [0.7, 0.5, 0.05];
        assert!((ndcg(&base, &[0.3, 0.2, 0.01], None) - 1.0).abs() < 1e-12);
        // SageMaker's college-admission example: the ranking reversed
        let reversed = ndcg(&base, &[0.1, 0.2, 0.7], None);
        let want = (0.05 + 0.5 / 3f64.log2() + 0.7 / 2.0) / (0.7 + 0.5 / 3f64.log2() + 0.05 / 2.0);
        assert!((reversed - want).abs() < 1e-12, "{reversed} vs {want}");
        assert!(reversed < NDCG_THRESHOLD);
        // ties share their gain: all equal = the mean gain at every rank
        let tied = ndcg(&base, &[1.0, 1.0, 1.0], None);
        let mean = (0.7 + 0.5 + 0.05) / 3.0;
        let d: f64 = (0..3).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
        let ideal = 0.7 + 0.5 / 3f64.log2() + 0.05 / 2.0;
        assert!((tied - mean * d / ideal).abs() < 1e-12);
        assert_eq!(ndcg(&[0.0, 0.0], &[1.0, 2.0], None), 1.0);
    }

    #[test]
    fn bounds_widen_the_baseline_by_the_tolerance_and_di_by_its_ratio() {
        assert_eq!(
            bounds("DPPL", -0.2, 0.1, 1.25),
            (-0.30000000000000004, 0.30000000000000004)
        );
        let (lo, hi) = bounds("DI", 1.0, 0.1, 1.25);
        assert!((lo - 0.8).abs() < 1e-12 && (hi - 1.25).abs() < 1e-12);
        let (lo, hi) = bounds("DI", 0.5, 0.1, 1.25);
        assert!((lo - 0.4).abs() < 1e-12 && (hi - 2.5).abs() < 1e-12);
        let (lo, hi) = bounds("DI", 0.0, 0.1, 1.25);
        assert!(lo == 0.0 && hi.is_infinite());
    }
}
