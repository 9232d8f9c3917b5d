//! From a table and a configuration to the boolean columns the metrics take,
//! and from the metrics to Clarify's `analysis.json` and a readable table.

use std::collections::HashMap;

use learn::{Pipeline, ProblemType};
use serde_json::{Value, json};
use tabular::Table;
use tabular::array::ColumnData;

use crate::ClarifyError;
use crate::metrics::{self, Features, MetricValue};

/// Which values of a column are "in": listed values, or those above a
/// threshold (Clarify's `values_or_threshold`).
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Values(Vec<String>),
    Threshold(f64),
}

impl Selector {
    /// From a flag pair as users give it: a threshold, else the listed
    /// values, else `None` (the default: see [`BiasConfig`]).
    pub fn from_parts(values: &[String], threshold: Option<f64>) -> Option<Selector> {
        match threshold {
            Some(t) => Some(Selector::Threshold(t)),
            None if values.is_empty() => None,
            None => Some(Selector::Values(values.to_vec())),
        }
    }
}

/// What to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct BiasConfig {
    /// The label (target) column.
    pub label: String,
    /// Its positive value(s) or threshold; `None`: `true` for a boolean
    /// column, `1` for a 0/1 column, else an error asking for them.
    pub label_selector: Option<Selector>,
    /// The facet column.
    pub facet: String,
    /// The sensitive group; `None`: each value of a categorical facet in turn.
    pub facet_selector: Option<Selector>,
    /// The group column for CDDL / CDDPL.
    pub group: Option<String>,
    /// A binary classifier's probability above which the prediction is positive.
    pub probability_threshold: f64,
}

impl BiasConfig {
    pub fn new(label: &str, facet: &str) -> BiasConfig {
        BiasConfig {
            label: label.into(),
            label_selector: None,
            facet: facet.into(),
            facet_selector: None,
            group: None,
            probability_threshold: 0.5,
        }
    }
}

/// Predicted labels, already collapsed to positive / negative.
pub type Predicted = Vec<bool>;

/// One metric in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    pub name: &'static str,
    pub description: &'static str,
    pub value: MetricValue,
}

/// The metrics for one sensitive group.
#[derive(Debug, Clone, PartialEq)]
pub struct FacetReport {
    pub value_or_threshold: String,
    pub metrics: Vec<MetricResult>,
}

/// One stage (pre- or post-training) of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct StageReport {
    pub label: String,
    pub label_value_or_threshold: String,
    pub facet: String,
    pub facets: Vec<FacetReport>,
}

/// A bias report: pre-training metrics, and post-training ones when
/// predictions were given.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub rows: usize,
    pub pre_training: StageReport,
    pub post_training: Option<StageReport>,
}

fn columns_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn column<'t>(table: &'t Table, name: &str) -> Result<&'t tabular::Column, ClarifyError> {
    table
        .column(name)
        .ok_or_else(|| ClarifyError::UnknownColumn {
            name: name.into(),
            columns: columns_list(table),
        })
}

/// A number as Python prints a float (`40.0`, `0.5`), as Clarify's interval
/// strings show them.
fn py_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Does cell `i` equal one of `values`? Text compares exactly, numbers and
/// booleans by value (`1` matches `1.0`; `true`/`1` match a true boolean).
fn cell_is(col: &tabular::Column, i: usize, values: &[String]) -> bool {
    match &*col.data {
        ColumnData::Utf8(a) => a.get(i).is_some_and(|s| values.iter().any(|v| v == s)),
        ColumnData::Float64(a) => a.get(i).is_some_and(|x| {
            values
                .iter()
                .any(|v| tabular::parse_number(v).is_some_and(|y| y == x))
        }),
        ColumnData::Boolean(a) => a.get(i).is_some_and(|b| {
            values.iter().any(|v| {
                tabular::parse_bool(v)
                    .or_else(|| tabular::parse_number(v).map(|n| n != 0.0))
                    .is_some_and(|w| w == b)
            })
        }),
        ColumnData::Timestamp(_) => col.str_at(i).is_some_and(|s| values.contains(&s)),
    }
}

/// Does a class label (text) equal one of `values`, as `cell_is` compares?
fn text_is(s: &str, values: &[String]) -> bool {
    values.iter().any(|v| {
        v == s
            || matches!((tabular::parse_number(v), tabular::parse_number(s)), (Some(a), Some(b)) if a == b)
            || matches!((tabular::parse_bool(v), tabular::parse_bool(s)), (Some(a), Some(b)) if a == b)
    })
}

/// Distinct non-missing values as text, in order of first appearance.
fn distinct(col: &tabular::Column) -> Vec<String> {
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for i in 0..col.len() {
        if let Some(s) = col.str_at(i)
            && !seen.contains_key(&s)
        {
            seen.insert(s.clone(), ());
            out.push(s);
        }
    }
    out
}

fn some_values(values: &[String]) -> String {
    let mut s: Vec<&str> = values.iter().take(20).map(String::as_str).collect();
    if values.len() > 20 {
        s.push("…");
    }
    s.join(", ")
}

fn numeric_max(col: &tabular::Column, flag: &str) -> Result<f64, ClarifyError> {
    match &*col.data {
        ColumnData::Float64(_) | ColumnData::Boolean(_) => {}
        _ => {
            return Err(ClarifyError::Config(format!(
                "{flag}: column '{}' is not numeric; give its value(s) instead",
                col.name
            )));
        }
    }
    (0..col.len())
        .filter_map(|i| col.f64_at(i))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .ok_or_else(|| ClarifyError::Config(format!("column '{}' has no values", col.name)))
}

/// The label's positive selector, resolved (defaults applied), its
/// `label_value_or_threshold` text and the positive flags.
fn label_index(
    table: &Table,
    cfg: &BiasConfig,
) -> Result<(Selector, String, Vec<bool>), ClarifyError> {
    let col = column(table, &cfg.label)?;
    let sel = match &cfg.label_selector {
        Some(s) => s.clone(),
        None => {
            let values = distinct(col);
            match &*col.data {
                ColumnData::Boolean(_) => Selector::Values(vec!["true".into()]),
                ColumnData::Float64(_)
                    if values.len() == 2 && values.iter().all(|v| v == "0" || v == "1") =>
                {
                    Selector::Values(vec!["1".into()])
                }
                _ => {
                    return Err(ClarifyError::Label(format!(
                        "which values of '{}' are the positive outcome? Give --label-values (its values: {}) or --label-threshold",
                        cfg.label,
                        some_values(&values)
                    )));
                }
            }
        }
    };
    let (text, flags) = match &sel {
        Selector::Values(vs) => {
            let flags: Vec<bool> = (0..table.rows()).map(|i| cell_is(col, i, vs)).collect();
            let missing: Vec<&String> = vs
                .iter()
                .filter(|v| !(0..table.rows()).any(|i| cell_is(col, i, std::slice::from_ref(v))))
                .collect();
            if let Some(v) = missing.first() {
                return Err(ClarifyError::Label(format!(
                    "label column '{}' has no value '{v}' (values: {})",
                    cfg.label,
                    some_values(&distinct(col))
                )));
            }
            (vs.join(","), flags)
        }
        Selector::Threshold(t) => {
            let max = numeric_max(col, "--label-threshold")?;
            let flags: Vec<bool> = (0..table.rows())
                .map(|i| col.f64_at(i).is_some_and(|x| x > *t && x <= max))
                .collect();
            (format!("({}, {}]", py_float(*t), py_float(max)), flags)
        }
    };
    if !flags.iter().any(|&f| f) {
        return Err(ClarifyError::Label(format!(
            "no row of '{}' is positive with {text}; the target cannot be split into positive and negative",
            cfg.label
        )));
    }
    if flags.iter().all(|&f| f) {
        return Err(ClarifyError::Label(format!(
            "every row of '{}' is positive with {text}; the target cannot be split into positive and negative",
            cfg.label
        )));
    }
    Ok((sel, text, flags))
}

/// The sensitive groups to report: (value_or_threshold, facet flags).
fn facet_indices(
    table: &Table,
    cfg: &BiasConfig,
) -> Result<Vec<(String, Vec<bool>)>, ClarifyError> {
    let col = column(table, &cfg.facet)?;
    let n = table.rows();
    let groups: Vec<(String, Vec<bool>)> = match &cfg.facet_selector {
        Some(Selector::Threshold(t)) => {
            let max = numeric_max(col, "--facet-threshold")?;
            if max <= *t {
                return Err(ClarifyError::EmptyFacet(format!(
                    "no row of facet '{}' is above {} (its maximum is {}): the sensitive group would be empty",
                    cfg.facet,
                    py_float(*t),
                    py_float(max)
                )));
            }
            let flags = (0..n)
                .map(|i| col.f64_at(i).is_some_and(|x| x > *t && x <= max))
                .collect();
            vec![(format!("({}, {}]", py_float(*t), py_float(max)), flags)]
        }
        Some(Selector::Values(vs)) => {
            for v in vs {
                if !(0..n).any(|i| cell_is(col, i, std::slice::from_ref(v))) {
                    return Err(ClarifyError::UnknownValue {
                        column: cfg.facet.clone(),
                        value: v.clone(),
                        values: some_values(&distinct(col)),
                    });
                }
            }
            vec![(vs.join(","), (0..n).map(|i| cell_is(col, i, vs)).collect())]
        }
        None => {
            if matches!(&*col.data, ColumnData::Float64(_)) && col.kind == tabular::Kind::Numeric {
                let values = distinct(col);
                if values.len() > 20 {
                    return Err(ClarifyError::Config(format!(
                        "facet '{}' is numeric with {} values: give --facet-threshold (or --facet-values)",
                        cfg.facet,
                        values.len()
                    )));
                }
            }
            distinct(col)
                .into_iter()
                .map(|v| {
                    let one = std::slice::from_ref(&v);
                    let flags = (0..n).map(|i| cell_is(col, i, one)).collect();
                    (v, flags)
                })
                .collect()
        }
    };
    for (v, flags) in &groups {
        if !flags.iter().any(|&f| f) {
            return Err(ClarifyError::EmptyFacet(format!(
                "no row is in facet '{}' = {v}",
                cfg.facet
            )));
        }
        if flags.iter().all(|&f| f) {
            return Err(ClarifyError::EmptyFacet(format!(
                "every row is in facet '{}' = {v}: the other group (facet a) would be empty",
                cfg.facet
            )));
        }
    }
    Ok(groups)
}

/// Group codes for CDD (a missing value is a group of its own).
fn group_codes(table: &Table, cfg: &BiasConfig) -> Result<Option<Vec<usize>>, ClarifyError> {
    let Some(name) = &cfg.group else {
        return Ok(None);
    };
    let col = column(table, name)?;
    let mut codes = HashMap::new();
    let out = (0..table.rows())
        .map(|i| {
            let key = col.str_at(i);
            let next = codes.len();
            *codes.entry(key).or_insert(next)
        })
        .collect();
    Ok(Some(out))
}

/// The flip test's features: every column but the facet and the label, as
/// numbers; an error naming why when smclarify's FT would refuse the data.
fn features(table: &Table, cfg: &BiasConfig) -> Result<Features, String> {
    let cols: Vec<&tabular::Column> = table
        .columns
        .iter()
        .filter(|c| c.name != cfg.facet && c.name != cfg.label)
        .collect();
    if let Some(c) = cols
        .iter()
        .find(|c| matches!(&*c.data, ColumnData::Utf8(_) | ColumnData::Timestamp(_)))
    {
        return Err(format!(
            "FlipTest does not support non-numeric columns (column '{}')",
            c.name
        ));
    }
    if let Some(c) = cols.iter().find(|c| c.missing() > 0) {
        return Err(format!(
            "FlipTest does not support missing values (column '{}' has {})",
            c.name,
            c.missing()
        ));
    }
    let rows = table.rows();
    let mut values = vec![0.0; rows * cols.len()];
    for (j, c) in cols.iter().enumerate() {
        for i in 0..rows {
            values[i * cols.len() + j] = c.f64_at(i).unwrap_or(0.0);
        }
    }
    Ok(Features {
        cols: cols.len(),
        values,
    })
}

/// Predicted labels of `pipeline` on `table`, collapsed to positive as the
/// label is (see the crate docs).
pub fn predicted_positive(
    pipeline: &Pipeline,
    table: &Table,
    cfg: &BiasConfig,
) -> Result<Predicted, ClarifyError> {
    let pred = pipeline.predict(table)?;
    let outputs = match pipeline.problem {
        ProblemType::Regression => Outputs::Values(&pred.values),
        ProblemType::Binary | ProblemType::Multiclass => Outputs::Classes {
            classes: &pred.classes,
            probabilities: &pred.probabilities,
            binary: pipeline.problem == ProblemType::Binary,
        },
    };
    predicted_from_outputs(outputs, table, cfg)
}

/// A model's outputs for `table`'s rows, from wherever they came (a
/// pipeline's predictions, or Autopilot's out-of-fold predictions).
#[derive(Debug, Clone, Copy)]
pub enum Outputs<'a> {
    /// Class labels and row-major probabilities, one per class per row.
    Classes {
        classes: &'a [String],
        probabilities: &'a [f64],
        /// Binary: positive when the positive classes' summed probability
        /// exceeds the threshold; else the most probable class decides.
        binary: bool,
    },
    /// A regression's predicted values.
    Values(&'a [f64]),
}

/// `outputs` collapsed to positive / negative as the label is (see the crate
/// docs): one flag per row of `table`.
pub fn predicted_from_outputs(
    outputs: Outputs<'_>,
    table: &Table,
    cfg: &BiasConfig,
) -> Result<Predicted, ClarifyError> {
    let (sel, text, _) = label_index(table, cfg)?;
    let n = table.rows();
    match outputs {
        Outputs::Values(values) => {
            if values.len() != n {
                return Err(ClarifyError::Config(format!(
                    "{} predictions for {n} rows",
                    values.len()
                )));
            }
            Ok(match &sel {
                Selector::Threshold(t) => values.iter().map(|v| v > t).collect(),
                Selector::Values(vs) => values
                    .iter()
                    .map(|v| text_is(&tabular::format_number(*v), vs))
                    .collect(),
            })
        }
        Outputs::Classes {
            classes,
            probabilities,
            binary,
        } => {
            let k = classes.len();
            if k == 0 || probabilities.len() != n * k {
                return Err(ClarifyError::Config(format!(
                    "{} probabilities for {n} rows of {k} classes",
                    probabilities.len()
                )));
            }
            let positive: Vec<bool> = classes
                .iter()
                .map(|c| match &sel {
                    Selector::Values(vs) => text_is(c, vs),
                    Selector::Threshold(t) => tabular::parse_number(c).is_some_and(|x| x > *t),
                })
                .collect();
            if !positive.iter().any(|&p| p) {
                return Err(ClarifyError::Label(format!(
                    "the model's classes ({}) include no positive label ({text})",
                    classes.join(", ")
                )));
            }
            Ok(probabilities
                .chunks(k)
                .map(|row| {
                    if binary {
                        let p: f64 = row
                            .iter()
                            .zip(&positive)
                            .filter(|(_, pos)| **pos)
                            .map(|(p, _)| p)
                            .sum();
                        p > cfg.probability_threshold
                    } else {
                        // the most probable class (the first of ties), as predict does
                        let best = row
                            .iter()
                            .enumerate()
                            .fold(0, |b, (i, p)| if *p > row[b] { i } else { b });
                        positive[best]
                    }
                })
                .collect())
        }
    }
}

struct Def {
    name: &'static str,
    description: &'static str,
}

const PRE: [Def; 8] = [
    Def {
        name: "CDDL",
        description: "Conditional Demographic Disparity in Labels (CDDL)",
    },
    Def {
        name: "CI",
        description: "Class Imbalance (CI)",
    },
    Def {
        name: "DPL",
        description: "Difference in Positive Proportions in Labels (DPL)",
    },
    Def {
        name: "JS",
        description: "Jensen-Shannon Divergence (JS)",
    },
    Def {
        name: "KL",
        description: "Kullback-Liebler Divergence (KL)",
    },
    Def {
        name: "KS",
        description: "Kolmogorov-Smirnov Distance (KS)",
    },
    Def {
        name: "LP",
        description: "L-p Norm (LP)",
    },
    Def {
        name: "TVD",
        description: "Total Variation Distance (TVD)",
    },
];

const POST: [Def; 13] = [
    Def {
        name: "AD",
        description: "Accuracy Difference (AD)",
    },
    Def {
        name: "CDDPL",
        description: "Conditional Demographic Disparity in Predicted Labels (CDDPL)",
    },
    Def {
        name: "DAR",
        description: "Difference in Acceptance Rates (DAR)",
    },
    Def {
        name: "DCA",
        description: "Difference in Conditional Acceptance (DCA)",
    },
    Def {
        name: "DCR",
        description: "Difference in Conditional Rejection (DCR)",
    },
    Def {
        name: "DI",
        description: "Disparate Impact (DI)",
    },
    Def {
        name: "DPPL",
        description: "Difference in Positive Proportions in Predicted Labels (DPPL)",
    },
    Def {
        name: "DRR",
        description: "Difference in Rejection Rates (DRR)",
    },
    Def {
        name: "FT",
        description: "Flip Test (FT)",
    },
    Def {
        name: "GE",
        description: "Generalized Entropy (GE)",
    },
    Def {
        name: "RD",
        description: "Recall Difference (RD)",
    },
    Def {
        name: "SD",
        description: "Specificity Difference (SD)",
    },
    Def {
        name: "TE",
        description: "Treatment Equality (TE)",
    },
];

fn pre_metric(name: &str, f: &[bool], y: &[bool], g: Option<&[usize]>) -> MetricValue {
    match name {
        "CDDL" => metrics::cdd(f, y, g),
        "CI" => metrics::ci(f),
        "DPL" => metrics::dpl(f, y),
        "JS" => metrics::js(f, y),
        "KL" => metrics::kl(f, y),
        "KS" => metrics::ks(f, y),
        "LP" => metrics::lp(f, y),
        "TVD" => metrics::tvd(f, y),
        _ => unreachable!("not a pre-training metric: {name}"),
    }
}

fn post_metric(
    name: &str,
    f: &[bool],
    y: &[bool],
    p: &[bool],
    g: Option<&[usize]>,
    x: Result<&Features, &str>,
) -> MetricValue {
    match name {
        "AD" => metrics::ad(f, y, p),
        "CDDPL" => metrics::cdd(f, p, g),
        "DAR" => metrics::dar(f, y, p),
        "DCA" => metrics::dca(f, y, p),
        "DCR" => metrics::dcr(f, y, p),
        "DI" => metrics::di(f, p),
        "DPPL" => metrics::dpl(f, p),
        "DRR" => metrics::drr(f, y, p),
        "FT" => metrics::ft(f, p, x),
        "GE" => metrics::ge(y, p),
        "RD" => metrics::rd(f, y, p),
        "SD" => metrics::sd(f, y, p),
        "TE" => metrics::te(f, y, p),
        _ => unreachable!("not a post-training metric: {name}"),
    }
}

/// A NaN is never a value: it becomes an error.
fn checked(v: MetricValue) -> MetricValue {
    match v {
        Ok(x) if x.is_nan() => Err("the value is not a number".into()),
        v => v,
    }
}

impl Report {
    /// Compute the report. `predicted` (one flag per row, from
    /// [`predicted_positive`]) adds the post-training stage.
    pub fn build(
        table: &Table,
        cfg: &BiasConfig,
        predicted: Option<&[bool]>,
    ) -> Result<Report, ClarifyError> {
        if table.rows() == 0 {
            return Err(ClarifyError::Config("the data has no rows".into()));
        }
        if cfg.facet == cfg.label {
            return Err(ClarifyError::Config(
                "the facet and the target are the same column".into(),
            ));
        }
        let facets = facet_indices(table, cfg)?;
        let (_, label_text, y) = label_index(table, cfg)?;
        let groups = group_codes(table, cfg)?;
        let g = groups.as_deref();
        let stage = |facets: Vec<FacetReport>| StageReport {
            label: cfg.label.clone(),
            label_value_or_threshold: label_text.clone(),
            facet: cfg.facet.clone(),
            facets,
        };
        let pre = facets
            .iter()
            .map(|(v, f)| FacetReport {
                value_or_threshold: v.clone(),
                metrics: PRE
                    .iter()
                    .map(|d| MetricResult {
                        name: d.name,
                        description: d.description,
                        value: checked(pre_metric(d.name, f, &y, g)),
                    })
                    .collect(),
            })
            .collect();
        let post = match predicted {
            None => None,
            Some(p) => {
                if p.len() != y.len() {
                    return Err(ClarifyError::Config(format!(
                        "{} predictions for {} rows",
                        p.len(),
                        y.len()
                    )));
                }
                let x = features(table, cfg);
                let none_positive = !p.iter().any(|&v| v);
                Some(
                    facets
                        .iter()
                        .map(|(v, f)| FacetReport {
                            value_or_threshold: v.clone(),
                            metrics: POST
                                .iter()
                                .map(|d| MetricResult {
                                    name: d.name,
                                    description: d.description,
                                    value: if none_positive {
                                        Err("No Label values are present in the predicted Label Column, Positive Predicted Index Series contains all False values".into())
                                    } else {
                                        checked(post_metric(
                                            d.name,
                                            f,
                                            &y,
                                            p,
                                            g,
                                            x.as_ref().map_err(String::as_str),
                                        ))
                                    },
                                })
                                .collect(),
                        })
                        .collect(),
                )
            }
        };
        Ok(Report {
            rows: table.rows(),
            pre_training: stage(pre),
            post_training: post.map(stage),
        })
    }

    /// `analysis.json` in Clarify's shape (as a JSON value; object keys
    /// sorted).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.wire()).expect("a report serialises")
    }

    /// `analysis.json` as text, pretty-printed, keys in Clarify's order.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(&self.wire()).expect("a report serialises") + "\n"
    }

    fn wire(&self) -> WireAnalysis<'_> {
        WireAnalysis {
            version: "1.0",
            pre_training_bias_metrics: wire_stage(&self.pre_training),
            post_training_bias_metrics: self.post_training.as_ref().map(wire_stage),
        }
    }

    /// A readable table: stage, facet value, metric, value, description.
    pub fn table_text(&self) -> String {
        let mut rows: Vec<[String; 4]> = Vec::new();
        let stages = [Some(&self.pre_training), self.post_training.as_ref()];
        for (stage, title) in stages.iter().zip(["pre-training", "post-training"]) {
            let Some(stage) = stage else { continue };
            for f in &stage.facets {
                rows.push([
                    format!("{title}: {} = {}", stage.facet, f.value_or_threshold),
                    String::new(),
                    String::new(),
                    format!(
                        "(label {} = {})",
                        stage.label, stage.label_value_or_threshold
                    ),
                ]);
                for m in &f.metrics {
                    let (v, d) = match &m.value {
                        Ok(x) => (value_text(*x), m.description.to_string()),
                        Err(e) => (
                            "—".to_string(),
                            format!("{} — undefined: {e}", m.description),
                        ),
                    };
                    rows.push([String::new(), m.name.into(), v, d]);
                }
            }
        }
        let w1 = rows.iter().map(|r| r[1].chars().count()).max().unwrap_or(0);
        let w2 = rows.iter().map(|r| r[2].chars().count()).max().unwrap_or(0);
        let mut s = String::new();
        for r in rows {
            if !r[0].is_empty() {
                s.push_str(&format!("{}  {}\n", r[0], r[3]));
            } else {
                s.push_str(&format!(
                    "  {:<w1$}  {:>w2$}  {}\n",
                    r[1],
                    r[2],
                    r[3],
                    w1 = w1,
                    w2 = w2
                ));
            }
        }
        s
    }
}

fn value_text(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{x:.4}")
    }
}

#[derive(serde::Serialize)]
struct WireAnalysis<'a> {
    version: &'static str,
    pre_training_bias_metrics: WireStage<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_training_bias_metrics: Option<WireStage<'a>>,
}

#[derive(serde::Serialize)]
struct WireStage<'a> {
    label: &'a str,
    facets: std::collections::BTreeMap<&'a str, Vec<WireFacet<'a>>>,
    label_value_or_threshold: &'a str,
}

#[derive(serde::Serialize)]
struct WireFacet<'a> {
    value_or_threshold: &'a str,
    metrics: Vec<WireMetric<'a>>,
}

#[derive(serde::Serialize)]
struct WireMetric<'a> {
    name: &'static str,
    description: &'static str,
    value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn wire_metric(m: &MetricResult) -> WireMetric<'_> {
    let (value, error) = match &m.value {
        Ok(x) if x.is_infinite() => (json!(if *x > 0.0 { "Infinity" } else { "-Infinity" }), None),
        Ok(x) => (json!(x), None),
        Err(e) => (Value::Null, Some(e.as_str())),
    };
    WireMetric {
        name: m.name,
        description: m.description,
        value,
        error,
    }
}

#[cfg(test)]
fn metric_json(m: &MetricResult) -> Value {
    serde_json::to_value(wire_metric(m)).expect("a metric serialises")
}

fn wire_stage(s: &StageReport) -> WireStage<'_> {
    let facets = s
        .facets
        .iter()
        .map(|f| WireFacet {
            value_or_threshold: &f.value_or_threshold,
            metrics: f.metrics.iter().map(wire_metric).collect(),
        })
        .collect();
    WireStage {
        label: &s.label,
        facets: std::collections::BTreeMap::from([(s.facet.as_str(), facets)]),
        label_value_or_threshold: &s.label_value_or_threshold,
    }
}

#[cfg(test)]
mod tests;
