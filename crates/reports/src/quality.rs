//! The model-quality report (Autopilot's "model quality report"): the
//! leaderboard, then for classification the confusion matrix, ROC and
//! precision–recall curves and a reliability plot, for regression
//! predicted-vs-actual and residual plots, and for both the global feature
//! importance and a SHAP summary.
//!
//! [`QualityInput`] is plain data the caller fills from an AutoML outcome;
//! metrics and curve points come from `learn::metrics` / `learn::evaluate`.

use std::fmt::Write;

use learn::ProblemType;
use learn::metrics;
use serde::{Deserialize, Serialize};

use crate::ReportError;
use crate::html::{Section, esc, figure, int, note, num, pct, score};
use crate::stats;
use crate::svg::{self, Bar, Cell, Corner, Series};

/// One candidate of the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardRow {
    /// 1 = best.
    pub rank: usize,
    pub name: String,
    /// e.g. `gbm`, `rf`, `extra-trees`, `linear`, `mlp`, `ensemble`.
    pub algorithm: String,
    /// The validation score in the report's metric.
    pub score: f64,
    pub fit_seconds: f64,
    pub params: Vec<(String, String)>,
}

/// Per-row SHAP values for a summary plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapInput {
    pub features: Vec<String>,
    /// Row-major `rows × features.len()` contributions, in `space`.
    pub values: Vec<f64>,
    /// Row-major `rows × features.len()` feature values used to colour the
    /// dots (NaN for missing or non-numeric); may be empty (no colouring).
    pub feature_values: Vec<f64>,
    /// What the contributions add up to: "log-odds", "logits",
    /// "probability" or "value" (empty: the model's raw output).
    #[serde(default)]
    pub space: String,
}

impl ShapInput {
    /// From `Pipeline::contributions(table)`: each row's contributions to
    /// output `output_of_row(i)` (0 for binary and regression; e.g. the
    /// predicted class for multiclass), coloured by the table's values of
    /// each input column (numbers, booleans as 0/1, dates; NaN otherwise).
    /// Rows beyond `max_rows` are left out (a seeded sample is kept).
    pub fn from_contributions(
        c: &learn::Contributions,
        table: &tabular::Table,
        output_of_row: impl Fn(usize) -> usize,
        max_rows: usize,
    ) -> Result<ShapInput, ReportError> {
        let f = c.columns.len();
        let w = f + 1;
        let outputs = c.outputs.max(1);
        let rows = c.values.len() / (w * outputs);
        if rows != table.rows() || c.values.len() != rows * w * outputs {
            return Err(ReportError::Input(format!(
                "contributions hold {} values, not {} rows × {outputs} outputs × ({f} columns + base)",
                c.values.len(),
                table.rows()
            )));
        }
        let cols: Vec<Option<&tabular::Column>> =
            c.columns.iter().map(|n| table.column(n)).collect();
        let keep = stats::sample_rows(rows, max_rows.max(1));
        let mut values = Vec::with_capacity(keep.len() * f);
        let mut feature_values = Vec::with_capacity(keep.len() * f);
        for &i in &keep {
            let k = output_of_row(i);
            if k >= outputs {
                return Err(ReportError::Input(format!(
                    "row {i}: output {k} does not exist (the model has {outputs})"
                )));
            }
            values.extend_from_slice(&c.row(i, k)[..f]);
            feature_values.extend(
                cols.iter()
                    .map(|col| col.and_then(|col| col.f64_at(i)).unwrap_or(f64::NAN)),
            );
        }
        Ok(ShapInput {
            features: c.columns.clone(),
            values,
            feature_values,
            space: c.space.as_str().to_string(),
        })
    }
}

/// Everything the model-quality report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityInput {
    /// The dataset or job name, for the title.
    pub title: String,
    pub problem: ProblemType,
    pub target: String,
    /// Class labels by index (empty for regression).
    pub labels: Vec<String>,
    /// The metric the search optimised, e.g. `auc`, `accuracy`, `mse`.
    pub metric: String,
    pub higher_is_better: bool,
    pub best_score: f64,
    /// How the scores and the predictions below were obtained, e.g.
    /// "out-of-fold predictions of 5-fold cross-validation".
    pub validation: String,
    pub leaderboard: Vec<LeaderboardRow>,
    /// Class index (classification) or value (regression) per row.
    pub y_true: Vec<f64>,
    /// Regression: one value per row. Classification: row-major
    /// probabilities with `labels.len()` columns (binary may also be one
    /// column: the probability of `labels[1]`).
    pub predictions: Vec<f64>,
    /// Global importance per input column (any scale; shown normalised).
    pub feature_importance: Vec<(String, f64)>,
    pub shap: Option<ShapInput>,
    /// SageMaker Clarify's bias metrics, when the user named a facet.
    #[serde(default)]
    pub bias: Option<BiasInput>,
}

/// A bias report (SageMaker Clarify's metrics, from the `clarify` crate) as
/// the model-quality report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiasInput {
    /// The facet column.
    pub facet: String,
    /// The label column and its positive value(s) or threshold, as text.
    pub label: String,
    /// Which rows and predictions the metrics come from.
    pub source: String,
    /// One entry per sensitive group (facet value or threshold).
    pub groups: Vec<BiasGroup>,
}

/// The metrics for one sensitive group (facet d) against the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiasGroup {
    pub value_or_threshold: String,
    pub pre_training: Vec<BiasMetric>,
    pub post_training: Vec<BiasMetric>,
}

/// One metric: its value, or why it is undefined for the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiasMetric {
    pub name: String,
    pub description: String,
    pub value: Option<f64>,
    pub error: Option<String>,
}

/// Most points drawn in a scatter plot; rows are subsampled beyond.
const MAX_SCATTER: usize = 2000;
/// Most rows drawn per feature in the SHAP beeswarm.
const MAX_SWARM_ROWS: usize = 700;
const MAX_CURVE_CLASSES: usize = 10;
/// Classes drawn in the confusion matrix (the most frequent).
const MAX_MATRIX_CLASSES: usize = 20;

/// The model-quality report: one self-contained HTML page.
pub fn quality_report(input: &QualityInput) -> Result<String, ReportError> {
    let n = input.y_true.len();
    if n == 0 {
        return Err(ReportError::Input(
            "y_true is empty: the report needs the validation rows' true values".into(),
        ));
    }
    let mut sections = Vec::new();
    let mut kpis = vec![
        (
            "problem type".to_string(),
            input.problem.as_str().to_string(),
        ),
        (
            format!(
                "best {} ({})",
                input.metric,
                if input.higher_is_better {
                    "higher is better"
                } else {
                    "lower is better"
                }
            ),
            score(input.best_score),
        ),
        (
            "candidates".to_string(),
            int(input.leaderboard.len() as u64),
        ),
        ("validation rows".to_string(), int(n as u64)),
    ];
    let evaluated;
    match input.problem {
        ProblemType::Regression => {
            if input.predictions.len() != n {
                return Err(ReportError::Input(format!(
                    "predictions has {} values but y_true has {n} rows; regression needs one prediction per row",
                    input.predictions.len()
                )));
            }
            if let Some(i) =
                (0..n).find(|&i| !input.y_true[i].is_finite() || !input.predictions[i].is_finite())
            {
                return Err(ReportError::Input(format!(
                    "row {i} has a non-finite true value or prediction"
                )));
            }
            evaluated = learn::evaluate(input.problem, 0, &input.y_true, &input.predictions);
            sections.push(summary(input, &evaluated));
            sections.push(leaderboard(input));
            sections.push(regression_plots(input));
        }
        ProblemType::Binary | ProblemType::Multiclass => {
            let k = input.labels.len();
            if k < 2 {
                return Err(ReportError::Input(format!(
                    "labels has {k} classes; classification needs at least two class labels"
                )));
            }
            let proba: Vec<f64> = if input.predictions.len() == n * k {
                input.predictions.clone()
            } else if k == 2 && input.predictions.len() == n {
                input
                    .predictions
                    .iter()
                    .flat_map(|p| [1.0 - p, *p])
                    .collect()
            } else {
                return Err(ReportError::Input(format!(
                    "predictions has {} values; expected {n} rows × {k} classes = {} probabilities{}",
                    input.predictions.len(),
                    n * k,
                    if k == 2 {
                        format!(" (or {n} for binary)")
                    } else {
                        String::new()
                    }
                )));
            };
            if let Some(i) = proba.iter().position(|p| !p.is_finite()) {
                return Err(ReportError::Input(format!(
                    "probability {} of row {} is not a finite number",
                    i % k,
                    i / k
                )));
            }
            let mut y = Vec::with_capacity(n);
            for (i, v) in input.y_true.iter().enumerate() {
                if !(v.is_finite() && v.fract() == 0.0 && *v >= 0.0 && (*v as usize) < k) {
                    return Err(ReportError::Input(format!(
                        "y_true[{i}] = {v} is not a class index in 0..{k}"
                    )));
                }
                y.push(*v as usize);
            }
            let pred_for_eval: Vec<f64> = if k == 2 {
                (0..n).map(|i| proba[i * 2 + 1]).collect()
            } else {
                proba.clone()
            };
            evaluated = learn::evaluate(input.problem, k, &input.y_true, &pred_for_eval);
            sections.push(summary(input, &evaluated));
            sections.push(leaderboard(input));
            let predicted: Vec<usize> = proba
                .chunks(k)
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map_or(0, |x| x.0)
                })
                .collect();
            sections.push(confusion(input, &y, &predicted, k));
            sections.push(curves(input, &y, &proba, k));
        }
    }
    if let Some(acc) = evaluated.get("accuracy") {
        kpis.push(("accuracy".into(), score(*acc)));
    }
    if let Some(r2) = evaluated.get("r2") {
        kpis.push(("R²".into(), score(*r2)));
    }
    sections.push(importance(input));
    if let Some(shap) = &input.shap {
        sections.push(shap_section(shap)?);
    }
    if let Some(bias) = &input.bias {
        sections.push(bias_section(bias));
    }
    Ok(crate::html::page(
        &format!("Model quality: {}", input.title),
        &format!(
            "Target '{}' · {} · metric {} · {}",
            input.target,
            input.problem.as_str(),
            input.metric,
            input.validation
        ),
        &kpis,
        &sections,
    ))
}

fn summary(input: &QualityInput, m: &std::collections::BTreeMap<String, f64>) -> Section {
    let mut s = String::from("<div class=\"grid2\"><div><table><tbody>");
    let best = input.leaderboard.iter().min_by_key(|r| r.rank);
    let rows: Vec<(&str, String)> = vec![
        ("Problem type", esc(input.problem.as_str())),
        ("Target", format!("<code>{}</code>", esc(&input.target))),
        ("Metric", format!("<code>{}</code>", esc(&input.metric))),
        ("Best score", score(input.best_score)),
        (
            "Best candidate",
            best.map(|b| {
                format!(
                    "{} <span class=\"muted\">({})</span>",
                    esc(&b.name),
                    esc(&b.algorithm)
                )
            })
            .unwrap_or_else(|| "–".into()),
        ),
        ("Validation", esc(&input.validation)),
        ("Rows evaluated", int(input.y_true.len() as u64)),
    ];
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    s.push_str("</tbody></table></div><div><table><thead><tr><th>Metric on these predictions</th><th class=\"n\">Value</th></tr></thead><tbody>");
    for (k, v) in m {
        let cls = if *k == input.metric {
            " class=\"best\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<tr{cls}><td><code>{}</code></td><td class=\"n\">{}</td></tr>",
            esc(k),
            score(*v)
        );
    }
    s.push_str("</tbody></table></div></div>");
    s.push_str(&note("The plots below use the predictions described under Validation; the leaderboard scores come from the search itself."));
    Section {
        id: "summary",
        title: "Summary".into(),
        body: s,
    }
}

fn leaderboard(input: &QualityInput) -> Section {
    let mut rows: Vec<&LeaderboardRow> = input.leaderboard.iter().collect();
    rows.sort_by_key(|r| r.rank);
    if rows.is_empty() {
        return Section {
            id: "leaderboard",
            title: "Leaderboard".into(),
            body: note("No candidates were recorded."),
        };
    }
    let mut s = String::new();
    let shown = rows.len().min(25);
    let bars: Vec<Bar> = rows[..shown]
        .iter()
        .map(|r| {
            Bar::new(format!("#{} {}", r.rank, r.name), r.score)
                .text(score(r.score))
                .colour(if r.rank == 1 {
                    svg::ACCENT
                } else {
                    svg::MUTED_BAR
                })
        })
        .collect();
    let chart = svg::hbars(
        &format!("Validation {} by candidate", input.metric),
        &bars,
        &format!(
            "{} ({})",
            input.metric,
            if input.higher_is_better {
                "higher is better"
            } else {
                "lower is better"
            }
        ),
        false,
    );
    s.push_str(&figure(
        &chart,
        &format!(
            "{}The axis starts near the lowest score so that close candidates stay distinguishable.",
            if rows.len() > shown {
                format!("The best {shown} of {} candidates. ", rows.len())
            } else {
                String::new()
            }
        ),
    ));
    s.push_str("<div class=\"scroll\"><table><thead><tr><th class=\"n\">Rank</th><th>Candidate</th><th>Algorithm</th><th class=\"n\">Score</th><th class=\"n\">Fit s</th><th>Parameters</th></tr></thead><tbody>");
    for r in &rows {
        let params: Vec<String> = r
            .params
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code>", esc(k), esc(v)))
            .collect();
        let _ = write!(
            s,
            "<tr{}><td class=\"n\">{}</td><td class=\"cname\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            if r.rank == 1 { " class=\"best\"" } else { "" },
            r.rank,
            esc(&r.name),
            esc(&r.algorithm),
            score(r.score),
            if r.fit_seconds.is_finite() {
                format!("{:.2}", r.fit_seconds)
            } else {
                "–".into()
            },
            params.join(" ")
        );
    }
    s.push_str("</tbody></table></div>");
    Section {
        id: "leaderboard",
        title: format!("Leaderboard ({} candidates)", rows.len()),
        body: s,
    }
}

fn confusion(input: &QualityInput, y: &[usize], pred: &[usize], k: usize) -> Section {
    let m = metrics::confusion_matrix(y, pred, k);
    // beyond MAX_MATRIX_CLASSES, the most frequent true classes (rows keep
    // their full totals, so shares stay shares of the whole class)
    let shown: Vec<usize> = if k > MAX_MATRIX_CLASSES {
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|a, b| {
            let (sa, sb): (u64, u64) = (m[*a].iter().sum(), m[*b].iter().sum());
            sb.cmp(&sa).then(a.cmp(b))
        });
        order.truncate(MAX_MATRIX_CLASSES);
        order.sort_unstable();
        order
    } else {
        (0..k).collect()
    };
    let labels: Vec<String> = shown.iter().map(|&c| input.labels[c].clone()).collect();
    let ks = shown.len();
    let mut cells = Vec::with_capacity(ks * ks);
    for &t in &shown {
        let row = &m[t];
        let total: u64 = row.iter().sum();
        for &p in &shown {
            let c = row[p];
            let share = if total > 0 {
                c as f64 / total as f64
            } else {
                0.0
            };
            let fill = if t == p {
                svg::mix("#f8fafc", "#1d4ed8", share)
            } else {
                svg::mix("#f8fafc", "#dc2626", share.sqrt().min(1.0) * 0.85)
            };
            cells.push(Cell {
                fill,
                text: if ks <= 12 {
                    format!("{}\n{}", int(c), pct(share))
                } else {
                    String::new()
                },
                tip: format!(
                    "true {} → predicted {}: {} rows ({} of the true class)",
                    input.labels[t],
                    input.labels[p],
                    int(c),
                    pct(share)
                ),
                dark: (t == p && share > 0.5) || (t != p && share > 0.45),
            });
        }
    }
    let cell_px = (560.0 / ks as f64).clamp(30.0, 110.0);
    let chart = svg::heatmap(
        "Confusion matrix",
        &labels,
        &labels,
        &cells,
        "true class",
        "predicted class",
        cell_px,
        &svg::ColourScale {
            title: "share of the true class".into(),
            stops: vec![(0.0, "#f8fafc".into()), (1.0, "#1d4ed8".into())],
            labels: vec![
                (0.0, "0 %".into()),
                (0.5, "50 %".into()),
                (1.0, "100 %".into()),
            ],
        },
    );
    let mut s = String::from("<div class=\"grid2\"><div>");
    s.push_str(&figure(
        &chart,
        &format!(
            "{}Counts and row-normalised shares (each row sums to 100 %): the diagonal is recall per class. Blue: correct, red: confusions. Hover a cell for its count.",
            if ks < k {
                format!("The {ks} most frequent of {k} classes. ")
            } else {
                String::new()
            }
        ),
    ));
    s.push_str("</div><div><table><thead><tr><th>Class</th><th class=\"n\">Precision</th><th class=\"n\">Recall</th><th class=\"n\">F1</th><th class=\"n\">Support</th></tr></thead><tbody>");
    for (c, (p, r, f, sup)) in metrics::per_class(y, pred, k).into_iter().enumerate() {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&input.labels[c]),
            score(p),
            score(r),
            score(f),
            int(sup)
        );
    }
    s.push_str("</tbody></table>");
    s.push_str(&note(if k == 2 {
        "Predicted class: the more probable one (a 0.5 threshold on the positive class)."
    } else {
        "Predicted class: the most probable one."
    }));
    s.push_str("</div></div>");
    Section {
        id: "confusion",
        title: "Confusion matrix".into(),
        body: s,
    }
}

/// Which classes get their own one-vs-rest curve: binary → the positive
/// class only; multiclass → up to 10 (the most frequent).
fn curve_classes(y: &[usize], k: usize) -> Vec<usize> {
    if k == 2 {
        return vec![1];
    }
    let mut counts = vec![0usize; k];
    for &c in y {
        counts[c] += 1;
    }
    let mut order: Vec<usize> = (0..k).filter(|&c| counts[c] > 0).collect();
    order.sort_by(|a, b| counts[*b].cmp(&counts[*a]).then(a.cmp(b)));
    order.truncate(MAX_CURVE_CLASSES);
    order.sort_unstable();
    order
}

fn curves(input: &QualityInput, y: &[usize], proba: &[f64], k: usize) -> Section {
    let n = y.len();
    let classes = curve_classes(y, k);
    let mut roc = Vec::new();
    let mut pr = Vec::new();
    let mut rows = String::new();
    for (ci, &c) in classes.iter().enumerate() {
        let yc: Vec<usize> = y.iter().map(|&v| usize::from(v == c)).collect();
        let sc: Vec<f64> = (0..n).map(|i| proba[i * k + c]).collect();
        let auc = metrics::roc_auc(&yc, &sc);
        let pr_pts = metrics::pr_curve(&yc, &sc);
        let ap = stats::average_precision(&pr_pts);
        let prevalence = yc.iter().sum::<usize>() as f64 / n.max(1) as f64;
        let name = if k == 2 {
            format!("{} (AUC {})", input.labels[c], score(auc))
        } else {
            format!("{} vs rest (AUC {:.3})", input.labels[c], auc)
        };
        roc.push(Series {
            name,
            points: metrics::roc_curve(&yc, &sc)
                .iter()
                .map(|p| (p.x, p.y))
                .collect(),
            colour: svg::colour(ci),
            dashed: false,
            dots: false,
        });
        let mut pts: Vec<(f64, f64)> = vec![(0.0, pr_pts.first().map_or(1.0, |p| p.y))];
        pts.extend(pr_pts.iter().map(|p| (p.x, p.y)));
        pr.push(Series {
            name: if k == 2 {
                format!("{} (AP {})", input.labels[c], score(ap))
            } else {
                format!("{} (AP {:.3})", input.labels[c], ap)
            },
            points: pts,
            colour: svg::colour(ci),
            dashed: false,
            dots: false,
        });
        let _ = write!(
            rows,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&input.labels[c]),
            score(auc),
            score(ap),
            pct(prevalence)
        );
    }
    let roc_chart = svg::lines(
        "ROC curve",
        &roc,
        (0.0, 1.0),
        (0.0, 1.0),
        "false positive rate",
        "true positive rate",
        true,
        Corner::BottomRight,
    );
    let pr_chart = svg::lines(
        "Precision–recall curve",
        &pr,
        (0.0, 1.0),
        (0.0, 1.0),
        "recall",
        "precision",
        false,
        Corner::BottomLeft,
    );
    let mut s = String::from("<div class=\"grid2\"><div>");
    let which = if k == 2 {
        format!(
            "Positive class: {}. The dashed diagonal is a random ranking.",
            input.labels[1]
        )
    } else if classes.len() < k {
        format!(
            "One-vs-rest per class, the {} most frequent of {k} classes. The dashed diagonal is a random ranking.",
            classes.len()
        )
    } else {
        "One-vs-rest per class. The dashed diagonal is a random ranking.".to_string()
    };
    s.push_str(&figure(&roc_chart, &which));
    s.push_str("</div><div>");
    s.push_str(&figure(
        &pr_chart,
        "Average precision (AP) summarises each curve; a random ranking scores the class's prevalence.",
    ));
    s.push_str("</div></div>");
    let table = format!(
        "<table><thead><tr><th>Class</th><th class=\"n\">ROC AUC</th><th class=\"n\">Average precision</th><th class=\"n\">Prevalence</th></tr></thead><tbody>{rows}</tbody></table>"
    );
    // reliability: binary → P(positive); multiclass → top-class confidence
    let bins = 10usize;
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut cnt = vec![0usize; bins];
    for i in 0..n {
        let (p, hit) = if k == 2 {
            (proba[i * 2 + 1], (y[i] == 1) as u8 as f64)
        } else {
            let row = &proba[i * k..(i + 1) * k];
            let (arg, p) = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or((0, 0.0), |(a, p)| (a, *p));
            (p, (y[i] == arg) as u8 as f64)
        };
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sum_p[b] += p;
        sum_y[b] += hit;
        cnt[b] += 1;
    }
    let pts: Vec<(f64, f64)> = (0..bins)
        .filter(|&b| cnt[b] > 0)
        .map(|b| (sum_p[b] / cnt[b] as f64, sum_y[b] / cnt[b] as f64))
        .collect();
    let ece: f64 = (0..bins)
        .filter(|&b| cnt[b] > 0)
        .map(|b| (sum_p[b] - sum_y[b]).abs())
        .sum::<f64>()
        / n.max(1) as f64;
    let cal = svg::lines(
        "Reliability (calibration)",
        &[Series {
            name: if k == 2 {
                "model".into()
            } else {
                "top-class confidence".into()
            },
            points: pts,
            colour: svg::ACCENT,
            dashed: false,
            dots: true,
        }],
        (0.0, 1.0),
        (0.0, 1.0),
        if k == 2 {
            "mean predicted probability"
        } else {
            "mean confidence"
        },
        if k == 2 {
            "observed share of positives"
        } else {
            "observed accuracy"
        },
        true,
        Corner::TopLeft,
    );
    s.push_str("<div class=\"grid2\"><div>");
    s.push_str(&figure(
        &cal,
        &format!(
            "10 equal-width probability bins; points on the diagonal are well calibrated. Expected calibration error: {:.3}.",
            ece
        ),
    ));
    let _ = write!(s, "</div><div>{table}</div></div>");
    Section {
        id: "curves",
        title: "ROC, precision–recall and calibration".into(),
        body: s,
    }
}

/// Every `n / max`-th row (deterministic, spread over the data).
fn subsample(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    stats::sample_rows(n, max)
}

fn regression_plots(input: &QualityInput) -> Section {
    let n = input.y_true.len();
    let rows = subsample(n, MAX_SCATTER);
    let pa: Vec<(f64, f64)> = rows
        .iter()
        .map(|&i| (input.y_true[i], input.predictions[i]))
        .collect();
    let resid: Vec<(f64, f64)> = rows
        .iter()
        .map(|&i| (input.predictions[i], input.y_true[i] - input.predictions[i]))
        .collect();
    let t = &input.target;
    let note_sub = if rows.len() < n {
        format!(
            " A seeded sample of {} of {} rows is drawn.",
            int(rows.len() as u64),
            int(n as u64)
        )
    } else {
        String::new()
    };
    let mut s = String::from("<div class=\"grid2\"><div>");
    s.push_str(&figure(
        &svg::scatter(
            "Predicted vs actual",
            &pa,
            &format!("actual {t}"),
            &format!("predicted {t}"),
            Some(true),
        ),
        &format!("Points on the dashed y = x line are perfect predictions.{note_sub}"),
    ));
    s.push_str("</div><div>");
    s.push_str(&figure(
        &svg::scatter(
            "Residuals vs predicted",
            &resid,
            &format!("predicted {t}"),
            "residual (actual − predicted)",
            Some(false),
        ),
        "A funnel shape means errors grow with the prediction; a curve means a missed non-linearity.",
    ));
    s.push_str("</div></div>");
    let all_resid: Vec<f64> = (0..n)
        .map(|i| input.y_true[i] - input.predictions[i])
        .collect();
    let (lo, hi) = all_resid
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let nb = 40usize;
    let width = if hi > lo { (hi - lo) / nb as f64 } else { 1.0 };
    let mut counts = vec![0.0; nb];
    for v in &all_resid {
        let b = (((v - lo) / width) as usize).min(nb - 1);
        counts[b] += 1.0;
    }
    let bins: Vec<(f64, f64, f64)> = (0..nb)
        .map(|b| {
            (
                lo + width * b as f64,
                lo + width * (b + 1) as f64,
                counts[b],
            )
        })
        .collect();
    let mut sorted = all_resid.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = all_resid.iter().sum::<f64>() / n as f64;
    s.push_str(&figure(
        &svg::histogram(
            "Residual distribution",
            &bins,
            "residual (actual − predicted)",
            "rows",
            "#10b981",
        ),
        &format!(
            "Mean residual {} (bias), median {}, 5–95 % range [{}, {}] over all {} rows.",
            num(mean),
            num(stats::quantile_sorted(&sorted, 0.5)),
            num(stats::quantile_sorted(&sorted, 0.05)),
            num(stats::quantile_sorted(&sorted, 0.95)),
            int(n as u64)
        ),
    ));
    Section {
        id: "residuals",
        title: "Predictions and residuals".into(),
        body: s,
    }
}

fn importance(input: &QualityInput) -> Section {
    let mut imp: Vec<(String, f64)> = input
        .feature_importance
        .iter()
        .filter(|(_, v)| v.is_finite())
        .cloned()
        .collect();
    if imp.is_empty() {
        return Section {
            id: "importance",
            title: "Feature importance".into(),
            body: note("The model reported no feature importance."),
        };
    }
    imp.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f64 = imp.iter().map(|i| i.1.abs()).sum();
    let shown = imp.len().min(25);
    let bars: Vec<Bar> = imp[..shown]
        .iter()
        .map(|(name, v)| {
            let share = if total > 0.0 { v / total } else { 0.0 };
            Bar::new(name.clone(), share * 100.0).text(pct(share))
        })
        .collect();
    let chart = svg::hbars(
        "Global feature importance",
        &bars,
        "% of total importance",
        true,
    );
    let mut s = figure(
        &chart,
        "Share of the model's total importance (split gain for tree models) per input column.",
    );
    if imp.len() > shown {
        s.push_str(&note(&format!(
            "{} less important columns are not drawn.",
            imp.len() - shown
        )));
    }
    Section {
        id: "importance",
        title: "Feature importance".into(),
        body: s,
    }
}

fn shap_section(shap: &ShapInput) -> Result<Section, ReportError> {
    let f = shap.features.len();
    if f == 0 || shap.values.is_empty() || !shap.values.len().is_multiple_of(f) {
        return Err(ReportError::Input(format!(
            "shap.values has {} values, not a whole number of rows of {f} features",
            shap.values.len()
        )));
    }
    let rows = shap.values.len() / f;
    let coloured = !shap.feature_values.is_empty();
    if coloured && shap.feature_values.len() != shap.values.len() {
        return Err(ReportError::Input(format!(
            "shap.feature_values has {} values; expected {rows} rows × {f} features = {} (or none)",
            shap.feature_values.len(),
            shap.values.len()
        )));
    }
    let mut mean_abs: Vec<(usize, f64)> = (0..f)
        .map(|j| {
            let s: f64 = (0..rows)
                .map(|i| shap.values[i * f + j])
                .filter(|v| v.is_finite())
                .map(f64::abs)
                .sum();
            (j, s / rows as f64)
        })
        .collect();
    mean_abs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown = mean_abs.len().min(20);
    let bars: Vec<Bar> = mean_abs[..shown]
        .iter()
        .map(|&(j, v)| Bar::new(shap.features[j].clone(), v).colour("#7c3aed"))
        .collect();
    let unit = if shap.space.is_empty() {
        "the model's raw output".to_string()
    } else {
        shap.space.clone()
    };
    let bar_chart = svg::hbars(
        "Mean |SHAP value| per feature",
        &bars,
        &format!("mean |SHAP value| ({unit})"),
        true,
    );

    let swarm_feats: Vec<usize> = mean_abs.iter().take(15).map(|m| m.0).collect();
    let sample = subsample(rows, MAX_SWARM_ROWS);
    let mut per_feature = Vec::with_capacity(swarm_feats.len());
    for &j in &swarm_feats {
        // colour position: the value's rank among this feature's values
        let vals: Vec<f64> = sample
            .iter()
            .map(|&i| {
                if coloured {
                    shap.feature_values[i * f + j]
                } else {
                    f64::NAN
                }
            })
            .collect();
        let mut sorted: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let pos = |v: f64| -> f64 {
            if !v.is_finite() || sorted.is_empty() {
                return f64::NAN;
            }
            let lo = sorted.partition_point(|x| *x < v);
            let hi = sorted.partition_point(|x| *x <= v);
            let mid = (lo + hi) as f64 / 2.0;
            if sorted.len() > 1 {
                (mid / (sorted.len() - 1) as f64).clamp(0.0, 1.0)
            } else {
                0.5
            }
        };
        per_feature.push(
            sample
                .iter()
                .zip(&vals)
                .map(|(&i, &v)| (shap.values[i * f + j], pos(v)))
                .collect::<Vec<_>>(),
        );
    }
    let names: Vec<String> = swarm_feats
        .iter()
        .map(|&j| shap.features[j].clone())
        .collect();
    let swarm = svg::beeswarm(
        "SHAP summary (one dot per row)",
        &names,
        &per_feature,
        &format!("SHAP value (impact on the prediction, in {unit})"),
    );
    let mut s = figure(
        &bar_chart,
        "Average magnitude of each feature's contribution to the model's raw output (TreeSHAP).",
    );
    s.push_str(&figure(
        &swarm,
        &format!(
            "Each dot is one row{}: its position is the feature's contribution, its colour the feature's value (blue low, red high, grey missing or categorical). Features ordered by mean |SHAP|.",
            if sample.len() < rows {
                format!(" ({} of {} rows sampled)", int(sample.len() as u64), int(rows as u64))
            } else {
                String::new()
            }
        ),
    ));
    Ok(Section {
        id: "shap",
        title: "SHAP summary".into(),
        body: s,
    })
}

/// Most sensitive groups drawn (a facet with many values lists the rest in
/// the table only).
const MAX_BIAS_CHARTS: usize = 6;

/// A bias metric's value as text: "∞", "undefined (why)", or the number.
fn bias_value(m: &BiasMetric) -> String {
    match (m.value, &m.error) {
        (Some(v), _) if v.is_infinite() => if v > 0.0 { "∞" } else { "−∞" }.to_string(),
        (Some(v), _) => num(v),
        (None, Some(e)) => format!("undefined ({e})"),
        (None, None) => "undefined".to_string(),
    }
}

fn bias_section(bias: &BiasInput) -> Section {
    let mut body = String::new();
    body.push_str(&note(&format!(
        "SageMaker Clarify's bias metrics for facet '{}' (each sensitive group d against all other rows), label {}; {}. \
         Near 0 means no difference between the groups for the difference metrics; DI near 1. \
         analysis.json in Clarify's shape is stored beside this report (bias/analysis.json).",
        bias.facet, bias.label, bias.source
    )));
    for g in bias.groups.iter().take(MAX_BIAS_CHARTS) {
        // the finite post-training metrics, drawn; DI is a ratio around 1
        // and gets its own scale in the table only
        let bars: Vec<Bar> = g
            .post_training
            .iter()
            .chain(&g.pre_training)
            .filter(|m| m.name != "DI" && m.value.is_some_and(f64::is_finite))
            .map(|m| {
                let v = m.value.unwrap_or(0.0);
                let colour = if v.abs() > 0.1 {
                    svg::colour(3)
                } else {
                    svg::colour(0)
                };
                Bar::new(m.name.clone(), v).text(num(v)).colour(colour)
            })
            .collect();
        if !bars.is_empty() {
            body.push_str(&figure(
                &svg::hbars(
                    &format!("{} = {}", bias.facet, g.value_or_threshold),
                    &bars,
                    "metric value (0 = no difference)",
                    true,
                ),
                "Post-training metrics first, then pre-training; bars beyond ±0.1 are highlighted.",
            ));
        }
    }
    let _ = write!(
        body,
        "<div class=\"scroll\"><table><thead><tr><th>{}</th><th>Stage</th><th>Metric</th><th class=\"n\">Value</th><th>What it measures</th></tr></thead><tbody>",
        esc(&bias.facet)
    );
    for g in &bias.groups {
        for (stage, ms) in [
            ("pre-training", &g.pre_training),
            ("post-training", &g.post_training),
        ] {
            for m in ms {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td style=\"white-space:nowrap\">{stage}</td><td><b>{}</b></td><td class=\"n\">{}</td><td>{}</td></tr>",
                    esc(&g.value_or_threshold),
                    esc(&m.name),
                    esc(&bias_value(m)),
                    esc(&m.description)
                );
            }
        }
    }
    body.push_str("</tbody></table></div>");
    Section {
        id: "bias",
        title: "Bias (Clarify metrics)".into(),
        body,
    }
}
