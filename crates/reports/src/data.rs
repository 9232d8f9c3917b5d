//! The data-exploration report (Autopilot's "data exploration notebook",
//! as one HTML page): summary, insights, target distribution, per-column
//! statistics, missing values, outliers, correlations and each feature's
//! association with the target.
//!
//! Counts, missing values, duplicates, outlier counts and the per-column
//! statistics cover every row (statistics from `tabular::Profile`'s
//! sketches); correlations and associations use a seeded sample of at most
//! `DataReportOptions::sample_rows` rows, and the report says so.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{Hash, Hasher};

use learn::ProblemType;
use tabular::profile::ColumnProfile;
use tabular::{Column, Kind, Profile, Table};

use crate::ReportError;
use crate::html::{Section, esc, figure, int, note, num, pct};
use crate::stats;
use crate::svg::{self, Bar, Cell};

/// Settings of [`data_report`].
#[derive(Debug, Clone)]
pub struct DataReportOptions {
    /// The dataset's name in the title (e.g. the file name).
    pub title: Option<String>,
    /// Force the problem type instead of inferring it from the target.
    pub problem: Option<ProblemType>,
    /// Rows sampled for correlations and associations.
    pub sample_rows: usize,
    /// Numeric columns shown in the correlation heatmap (the ones most
    /// associated with the target).
    pub max_heatmap_columns: usize,
}

impl Default for DataReportOptions {
    fn default() -> Self {
        DataReportOptions {
            title: None,
            problem: None,
            sample_rows: 20_000,
            max_heatmap_columns: 20,
        }
    }
}

/// Thresholds of the insights (shown in the report's wording).
const MISSING_DROP: f64 = 0.5;
const MISSING_WARN: f64 = 0.2;
const IMBALANCE_RATIO: f64 = 3.0;
const HIGH_CARDINALITY: f64 = 100.0;
const STRONG_CORRELATION: f64 = 0.9;
const LEAKAGE: f64 = 0.97;
/// Classes drawn one by one in the target chart (the rest as one bar).
const MAX_CLASS_BARS: usize = 30;
/// Numeric columns with fewer distinct values (counts, codes, ratings) are
/// not checked for outliers: Tukey's rule flags their ordinary values.
const MIN_OUTLIER_DISTINCT: f64 = 10.0;
/// Pairwise correlations are computed among at most this many numeric
/// columns (the first ones in table order).
const MAX_CORR_COLUMNS: usize = 120;

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Level {
    Bad,
    Warn,
    Info,
    Good,
}

struct Insight {
    level: Level,
    html: String,
}

/// A column prepared on the sample: numeric values (NaN missing) and/or
/// category codes.
struct Sampled {
    numeric: Option<Vec<f64>>,
    codes: Option<Vec<Option<u32>>>,
}

struct Outliers {
    column: String,
    lower: f64,
    upper: f64,
    count: usize,
    present: usize,
    examples: Vec<f64>,
}

/// The data-exploration report for `table` with `target` as the column to
/// predict: one self-contained HTML page.
pub fn data_report(
    table: &Table,
    target: &str,
    opts: &DataReportOptions,
) -> Result<String, ReportError> {
    let Some(ti) = table.column_index(target) else {
        return Err(ReportError::UnknownTarget {
            target: target.to_string(),
            available: table
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let tcol = &table.columns[ti];
    let encoded = learn::problem::encode_target(tcol, opts.problem)
        .map_err(|e| ReportError::Target(e.to_string()))?;
    let n = table.rows();
    let profile = Profile::of(table);
    let duplicates = count_duplicates(table);
    let missing_cells: usize = table.columns.iter().map(Column::missing).sum();
    let sample = stats::sample_rows(n, opts.sample_rows.max(100));
    let sampled_note = (sample.len() < n).then(|| {
        format!(
            "Correlations and associations use a seeded sample of {} of the {} rows; counts, missing values, duplicates, outliers and statistics cover every row.",
            int(sample.len() as u64),
            int(n as u64)
        )
    });

    // the target on the sample: class codes or values (NaN when missing)
    let mut target_full = vec![f64::NAN; n];
    for (&r, &v) in encoded.rows.iter().zip(&encoded.values) {
        target_full[r] = v;
    }
    let target_s: Vec<f64> = sample.iter().map(|&r| target_full[r]).collect();
    let target_codes: Vec<Option<u32>> = target_s
        .iter()
        .map(|v| v.is_finite().then_some(*v as u32))
        .collect();
    let classification = encoded.problem.is_classification();

    let sampled: Vec<Sampled> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == ti {
                Sampled {
                    numeric: None,
                    codes: None,
                }
            } else {
                sample_column(c, &sample)
            }
        })
        .collect();

    // association of each usable feature with the target
    let mut assoc: Vec<(usize, f64, &'static str)> = Vec::new();
    for (i, s) in sampled.iter().enumerate() {
        let v = match (&s.numeric, &s.codes, classification) {
            (Some(x), _, false) => (stats::pearson(x, &target_s).abs(), "|Pearson r|"),
            (Some(x), None, true) => (stats::correlation_ratio(&target_codes, x), "η"),
            (_, Some(g), true) => (stats::cramers_v(g, &target_codes), "Cramér's V"),
            (None, Some(g), false) => (stats::correlation_ratio(g, &target_s), "η"),
            (None, None, _) => continue,
        };
        if v.0.is_finite() {
            assoc.push((i, v.0, v.1));
        }
    }
    assoc.sort_by(|a, b| b.1.total_cmp(&a.1));

    // correlations among numeric features
    let numeric_cols: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(i, c)| *i != ti && c.kind == Kind::Numeric && sampled[*i].numeric.is_some())
        .map(|(i, _)| i)
        .take(MAX_CORR_COLUMNS)
        .collect();
    let mut corr: HashMap<(usize, usize), f64> = HashMap::new();
    for (a_pos, &a) in numeric_cols.iter().enumerate() {
        for &b in &numeric_cols[a_pos + 1..] {
            if let (Some(x), Some(y)) = (&sampled[a].numeric, &sampled[b].numeric) {
                corr.insert((a, b), stats::pearson(x, y));
            }
        }
    }
    let mut strong: Vec<(usize, usize, f64)> = corr
        .iter()
        .filter(|(_, r)| r.abs() >= STRONG_CORRELATION)
        .map(|(&(a, b), &r)| (a, b, r))
        .collect();
    strong.sort_by(|x, y| y.2.abs().total_cmp(&x.2.abs()).then(x.0.cmp(&y.0)));

    let outliers: Vec<Outliers> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(i, c)| *i != ti && c.kind == Kind::Numeric)
        .filter_map(|(i, c)| outliers_of(c, &profile.columns[i]))
        .collect();

    let insights = insights(
        table, ti, &profile, &encoded, duplicates, &assoc, &strong, &outliers,
    );

    // ---- sections ----
    let mut sections = Vec::new();
    sections.push(Section {
        id: "summary",
        title: "Dataset summary".into(),
        body: summary_body(
            table,
            ti,
            &encoded,
            duplicates,
            missing_cells,
            &sampled_note,
        ),
    });
    sections.push(Section {
        id: "insights",
        title: format!("Insights ({})", insights.len()),
        body: insights_body(&insights),
    });
    sections.push(Section {
        id: "target",
        title: format!("Target: {}", tcol.name),
        body: target_body(&encoded, &profile.columns[ti], tcol),
    });
    sections.push(Section {
        id: "columns",
        title: "Column statistics".into(),
        body: columns_body(&profile, ti),
    });
    sections.push(Section {
        id: "missing",
        title: "Missing values".into(),
        body: missing_body(&profile, n),
    });
    sections.push(Section {
        id: "outliers",
        title: "Outliers".into(),
        body: outliers_body(&outliers),
    });
    sections.push(Section {
        id: "correlations",
        title: "Correlations".into(),
        body: correlation_body(table, &numeric_cols, &corr, &assoc, &strong, opts),
    });
    sections.push(Section {
        id: "association",
        title: "Association with the target".into(),
        body: association_body(table, &assoc, classification, &sampled_note),
    });

    let name = opts.title.clone().unwrap_or_else(|| "Dataset".into());
    let kpis = vec![
        ("rows".to_string(), int(n as u64)),
        ("columns".to_string(), int(table.columns.len() as u64)),
        ("missing cells".to_string(), int(missing_cells as u64)),
        ("duplicate rows".to_string(), int(duplicates as u64)),
        (
            "problem type".to_string(),
            encoded.problem.as_str().to_string(),
        ),
    ];
    Ok(crate::html::page(
        &format!("Data exploration: {name}"),
        &format!(
            "Target '{}' · {} problem · {} rows × {} columns",
            tcol.name,
            encoded.problem.as_str(),
            int(n as u64),
            table.columns.len()
        ),
        &kpis,
        &sections,
    ))
}

/// Rows identical in every column to an earlier row.
fn count_duplicates(table: &Table) -> usize {
    let n = table.rows();
    let strings: Vec<_> = table.columns.iter().map(|c| c.strings()).collect();
    let mut seen: HashMap<u64, u32> = HashMap::with_capacity(n);
    let mut dup = 0;
    for i in 0..n {
        let mut h = std::hash::DefaultHasher::new();
        for (c, s) in table.columns.iter().zip(&strings) {
            if c.data.is_null(i) {
                0u8.hash(&mut h);
            } else if let Some(s) = s {
                1u8.hash(&mut h);
                s.value(i).hash(&mut h);
            } else if let Some(v) = c.f64_at(i) {
                2u8.hash(&mut h);
                v.to_bits().hash(&mut h);
            } else {
                3u8.hash(&mut h);
                c.str_at(i).hash(&mut h);
            }
        }
        let e = seen.entry(h.finish()).or_insert(0);
        if *e > 0 {
            dup += 1;
        }
        *e += 1;
    }
    dup
}

fn sample_column(c: &Column, rows: &[usize]) -> Sampled {
    match c.kind {
        Kind::Numeric | Kind::Datetime => Sampled {
            numeric: Some(
                rows.iter()
                    .map(|&r| c.f64_at(r).unwrap_or(f64::NAN))
                    .collect(),
            ),
            codes: None,
        },
        Kind::Categorical | Kind::Boolean => {
            let mut index: HashMap<String, u32> = HashMap::new();
            let codes = rows
                .iter()
                .map(|&r| {
                    c.str_at(r).map(|s| {
                        let next = index.len() as u32;
                        *index.entry(s).or_insert(next)
                    })
                })
                .collect();
            Sampled {
                numeric: None,
                codes: Some(codes),
            }
        }
        Kind::Text | Kind::IdLike => Sampled {
            numeric: None,
            codes: None,
        },
    }
}

/// Tukey's rule: outside [Q1 − 1.5 IQR, Q3 + 1.5 IQR], quartiles from the
/// profile's quantile sketch, counted over every row.
fn outliers_of(c: &Column, p: &ColumnProfile) -> Option<Outliers> {
    if p.distinct_estimate() < MIN_OUTLIER_DISTINCT {
        return None;
    }
    let q1 = p.quantile(0.25)?;
    let q3 = p.quantile(0.75)?;
    let iqr = q3 - q1;
    if iqr <= 0.0 {
        return None;
    }
    let (lower, upper) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let mut out: Vec<f64> = Vec::new();
    let mut present = 0;
    for i in 0..c.len() {
        if let Some(v) = c.f64_at(i) {
            present += 1;
            if v < lower || v > upper {
                out.push(v);
            }
        }
    }
    let count = out.len();
    // the most extreme examples, farthest from the fences first
    out.sort_by(|a, b| {
        let da = (a - upper).max(lower - a);
        let db = (b - upper).max(lower - b);
        db.total_cmp(&da)
    });
    out.dedup();
    out.truncate(5);
    Some(Outliers {
        column: c.name.clone(),
        lower,
        upper,
        count,
        present,
        examples: out,
    })
}

fn code(s: &str) -> String {
    format!("<code>{}</code>", esc(s))
}

#[allow(clippy::too_many_arguments)]
fn insights(
    table: &Table,
    ti: usize,
    profile: &Profile,
    target: &learn::problem::Target,
    duplicates: usize,
    assoc: &[(usize, f64, &'static str)],
    strong: &[(usize, usize, f64)],
    outliers: &[Outliers],
) -> Vec<Insight> {
    let n = table.rows();
    let mut out = Vec::new();
    let mut push = |level, html: String| out.push(Insight { level, html });
    let tname = &table.columns[ti].name;

    // the target
    let dropped = n - target.rows.len();
    if dropped > 0 {
        push(
            Level::Warn,
            format!(
                "{} rows ({}) have no value in the target {} — they are dropped from training.",
                int(dropped as u64),
                pct(dropped as f64 / n.max(1) as f64),
                code(tname)
            ),
        );
    }
    if target.problem.is_classification() {
        let k = target.labels.len();
        let mut counts = vec![0usize; k];
        for v in &target.values {
            if let Some(c) = counts.get_mut(*v as usize) {
                *c += 1;
            }
        }
        let (maj, min) = (
            counts.iter().enumerate().max_by_key(|c| c.1),
            counts.iter().enumerate().min_by_key(|c| c.1),
        );
        if let (Some((ma, &mc)), Some((mi, &nc))) = (maj, min)
            && nc > 0
            && mc as f64 / nc as f64 >= IMBALANCE_RATIO
        {
            let ratio = mc as f64 / nc as f64;
            let advice = if target.problem == ProblemType::Binary {
                "AUC is the default metric because it does not depend on a cut-off; use balanced_accuracy or f1 if one threshold matters"
            } else {
                "accuracy is dominated by the majority class; consider balanced_accuracy or f1_macro as the metric"
            };
            push(
                Level::Warn,
                format!(
                    "The target is imbalanced {:.0}:1 — {} has {} rows, {} only {} ({}). {}.",
                    ratio.round(),
                    code(&target.labels[ma]),
                    int(mc as u64),
                    code(&target.labels[mi]),
                    int(nc as u64),
                    pct(nc as f64 / target.values.len().max(1) as f64),
                    advice
                ),
            );
        }
    } else {
        let v = &target.values;
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let (m2, m3) = v.iter().fold((0.0, 0.0), |(a, b), x| {
            let d = x - m;
            (a + d * d, b + d * d * d)
        });
        let nn = v.len().max(1) as f64;
        let skew = (m3 / nn) / (m2 / nn).powf(1.5);
        if skew.is_finite() && skew.abs() >= 2.0 {
            push(
                Level::Info,
                format!(
                    "The target {} is strongly skewed (skewness {:.1}): large values dominate squared-error metrics; consider MAE or predicting the logarithm.",
                    code(tname),
                    skew
                ),
            );
        }
    }
    if duplicates > 0 {
        push(
            Level::Warn,
            format!(
                "{} duplicate rows ({}) — copies that land in different cross-validation folds make validation scores optimistic; drop them unless they are genuine repeats.",
                int(duplicates as u64),
                pct(duplicates as f64 / n.max(1) as f64)
            ),
        );
    }
    for (i, c) in table.columns.iter().enumerate() {
        if i == ti {
            continue;
        }
        let p = &profile.columns[i];
        let miss = p.missing as f64 / n.max(1) as f64;
        let present = p.count - p.missing;
        let distinct = p.distinct_estimate().round();
        if present == 0 {
            push(
                Level::Bad,
                format!(
                    "Column {} is empty (every value is missing) — drop it.",
                    code(&c.name)
                ),
            );
            continue;
        }
        if distinct <= 1.0 {
            push(
                Level::Bad,
                format!(
                    "Column {} is constant (only {}) — it carries no information; drop it.",
                    code(&c.name),
                    code(
                        &c.str_at((0..c.len()).find(|&r| !c.data.is_null(r)).unwrap_or(0))
                            .unwrap_or_default()
                    )
                ),
            );
        }
        if miss >= MISSING_DROP {
            push(
                Level::Bad,
                format!(
                    "Column {} is {} missing ({} of {} rows) — consider dropping it, or keep it only if being missing is itself informative.",
                    code(&c.name),
                    pct(miss),
                    int(p.missing),
                    int(n as u64)
                ),
            );
        } else if miss >= MISSING_WARN {
            push(
                Level::Warn,
                format!(
                    "Column {} is {} missing — the tree learners route missing values natively; linear models and the MLP impute them.",
                    code(&c.name),
                    pct(miss)
                ),
            );
        }
        match c.kind {
            Kind::IdLike => push(
                Level::Info,
                format!(
                    "Column {} looks like an id (all {} values distinct) — it is excluded from training.",
                    code(&c.name),
                    int(present)
                ),
            ),
            Kind::Text => push(
                Level::Info,
                format!(
                    "Column {} is free text (~{} distinct values) — training uses whether it is missing, its length in words, and its words found in at least 1 % of rows (a title in a name, a prefix in a code).",
                    code(&c.name),
                    int(distinct as u64)
                ),
            ),
            Kind::Categorical if distinct > HIGH_CARDINALITY => push(
                Level::Warn,
                format!(
                    "Column {} is a high-cardinality categorical (~{} levels) — rare levels carry little signal and invite overfitting; consider grouping them.",
                    code(&c.name),
                    int(distinct as u64)
                ),
            ),
            _ => {}
        }
    }
    for &(a, b, r) in strong.iter().take(10) {
        push(
            Level::Info,
            format!(
                "Strong correlation between {} and {} ({}) — the two carry nearly the same information; one may be dropped.",
                code(&table.columns[a].name),
                code(&table.columns[b].name),
                num((r * 100.0).round() / 100.0)
            ),
        );
    }
    if strong.len() > 10 {
        push(
            Level::Info,
            format!(
                "{} more strongly correlated pairs (|r| ≥ {STRONG_CORRELATION}) — see Correlations.",
                strong.len() - 10
            ),
        );
    }
    for &(i, v, measure) in assoc.iter().filter(|a| a.1 >= LEAKAGE) {
        push(
            Level::Bad,
            format!(
                "Column {} predicts the target almost perfectly ({measure} = {:.2}) — check for target leakage (information only known after the outcome).",
                code(&table.columns[i].name),
                v
            ),
        );
    }
    for o in outliers {
        let share = o.count as f64 / o.present.max(1) as f64;
        if share >= 0.05 {
            push(
                Level::Info,
                format!(
                    "Column {} has {} outliers ({}) outside [{}, {}] — a heavy tail; tree models are robust to it, linear models may prefer a log transform.",
                    code(&o.column),
                    int(o.count as u64),
                    pct(share),
                    esc(&num(o.lower)),
                    esc(&num(o.upper))
                ),
            );
        }
    }
    for w in &table.warnings {
        push(
            Level::Warn,
            format!("While reading: {}", esc(&w.to_string())),
        );
    }
    if out.is_empty() {
        out.push(Insight {
            level: Level::Good,
            html: "No data-quality issues found: no missing-heavy, constant, id-like or duplicated data, and a balanced target.".into(),
        });
    }
    out.sort_by_key(|i| i.level);
    out
}

fn insights_body(ins: &[Insight]) -> String {
    let mut s = String::from("<ul class=\"insights\">");
    for i in ins {
        let (class, word) = match i.level {
            Level::Bad => ("bad", "action"),
            Level::Warn => ("warn", "warning"),
            Level::Info => ("info", "note"),
            Level::Good => ("good", "ok"),
        };
        let _ = write!(
            s,
            "<li class=\"{class}\"><span class=\"lvl\">{word}</span><span>{}</span></li>",
            i.html
        );
    }
    s.push_str("</ul>");
    s
}

fn kind_tag(k: Kind) -> String {
    let name = match k {
        Kind::Numeric => "numeric",
        Kind::Boolean => "boolean",
        Kind::Categorical => "categorical",
        Kind::Datetime => "datetime",
        Kind::Text => "text",
        Kind::IdLike => "id_like",
    };
    format!(
        "<span class=\"tag {name}\">{}</span>",
        name.replace('_', "-")
    )
}

fn summary_body(
    table: &Table,
    ti: usize,
    target: &learn::problem::Target,
    duplicates: usize,
    missing_cells: usize,
    sampled_note: &Option<String>,
) -> String {
    let n = table.rows();
    let cells = n * table.columns.len();
    let mut kinds: Vec<(Kind, usize)> = Vec::new();
    for c in &table.columns {
        match kinds.iter_mut().find(|k| k.0 == c.kind) {
            Some(k) => k.1 += 1,
            None => kinds.push((c.kind, 1)),
        }
    }
    let mut s = String::from("<div class=\"grid2\"><div><table><tbody>");
    let mut row = |k: &str, v: String| {
        let _ = write!(s, "<tr><th>{}</th><td class=\"n\">{v}</td></tr>", esc(k));
    };
    row("Rows", int(n as u64));
    row("Columns", int(table.columns.len() as u64));
    row(
        "Missing cells",
        format!(
            "{} ({})",
            int(missing_cells as u64),
            pct(missing_cells as f64 / cells.max(1) as f64)
        ),
    );
    row(
        "Duplicate rows",
        format!(
            "{} ({})",
            int(duplicates as u64),
            pct(duplicates as f64 / n.max(1) as f64)
        ),
    );
    row("Target", code(&table.columns[ti].name));
    row("Problem type", esc(target.problem.as_str()));
    if target.problem.is_classification() {
        row("Classes", int(target.labels.len() as u64));
    }
    s.push_str("</tbody></table></div><div><table><thead><tr><th>Column kind</th><th class=\"n\">Columns</th><th>Used for training</th></tr></thead><tbody>");
    for (k, c) in &kinds {
        let used = match k {
            Kind::Text | Kind::IdLike => "no (dropped)",
            Kind::Datetime => "yes (year, month, day, weekday, hour)",
            _ => "yes",
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"muted\">{used}</td></tr>",
            kind_tag(*k),
            c
        );
    }
    s.push_str("</tbody></table></div></div>");
    let _ = write!(
        s,
        "<p class=\"note\">Problem type: {}.</p>",
        esc(&target.reason)
    );
    if let Some(t) = sampled_note {
        s.push_str(&note(t));
    }
    s
}

fn target_body(target: &learn::problem::Target, p: &ColumnProfile, c: &Column) -> String {
    if target.problem.is_classification() {
        let k = target.labels.len();
        let mut counts = vec![0f64; k];
        for v in &target.values {
            if let Some(c) = counts.get_mut(*v as usize) {
                *c += 1.0;
            }
        }
        let mut items: Vec<(String, f64)> = target
            .labels
            .iter()
            .cloned()
            .zip(counts.iter().copied())
            .collect();
        if items.len() > MAX_CLASS_BARS {
            // the most frequent classes, the rest as one bar
            items.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let rest: f64 = items[MAX_CLASS_BARS - 1..].iter().map(|i| i.1).sum();
            let others = items.len() - (MAX_CLASS_BARS - 1);
            items.truncate(MAX_CLASS_BARS - 1);
            items.push((format!("{others} other classes"), rest));
        }
        let total: f64 = counts.iter().sum();
        let chart = svg::column_bars(&format!("Rows per class of '{}'", c.name), &items, "rows");
        let mut t = String::from(
            "<table><thead><tr><th>Class</th><th class=\"n\">Rows</th><th class=\"n\">Share</th></tr></thead><tbody>",
        );
        for (l, v) in &items {
            let _ = write!(
                t,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(l),
                int(*v as u64),
                pct(v / total.max(1.0))
            );
        }
        t.push_str("</tbody></table>");
        format!(
            "<div class=\"grid2\"><div>{}</div><div>{t}</div></div>",
            figure(
                &chart,
                "Class balance of the rows that have a target value."
            )
        )
    } else {
        let bins: Vec<(f64, f64, f64)> = p
            .histogram(30)
            .into_iter()
            .map(|b| (b.lower, b.upper, b.count))
            .collect();
        let chart = svg::histogram(
            &format!("Distribution of '{}'", c.name),
            &bins,
            &c.name,
            "rows",
            svg::ACCENT,
        );
        let mut t = String::from("<table><tbody>");
        if let Some(nm) = &p.numeric {
            let m = &nm.moments;
            for (k, v) in [
                ("Mean", m.mean),
                ("Std", m.std()),
                ("Min", m.min),
                ("25 %", p.quantile(0.25).unwrap_or(f64::NAN)),
                ("Median", p.quantile(0.5).unwrap_or(f64::NAN)),
                ("75 %", p.quantile(0.75).unwrap_or(f64::NAN)),
                ("Max", m.max),
            ] {
                let _ = write!(t, "<tr><th>{k}</th><td class=\"n\">{}</td></tr>", num(v));
            }
        }
        t.push_str("</tbody></table>");
        format!(
            "<div class=\"grid2\"><div>{}</div><div>{t}</div></div>",
            figure(&chart, "Histogram of the target (30 equal-width bins).")
        )
    }
}

fn columns_body(profile: &Profile, ti: usize) -> String {
    let mut s = String::from(
        "<div class=\"scroll\"><table><thead><tr><th>Column</th><th>Kind</th><th class=\"n\">Missing</th><th class=\"n\">Distinct</th><th class=\"n\">Mean</th><th class=\"n\">Std</th><th class=\"n\">Min</th><th class=\"n\">Median</th><th class=\"n\">Max</th><th>Distribution / top values</th></tr></thead><tbody>",
    );
    for (i, p) in profile.columns.iter().enumerate() {
        let present = p.count - p.missing;
        let miss = p.missing as f64 / p.count.max(1) as f64;
        let target_tag = if i == ti {
            " <span class=\"tag target\">target</span>"
        } else {
            ""
        };
        let _ = write!(
            s,
            "<tr><td class=\"cname\">{}{target_tag}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            esc(&p.name),
            kind_tag(p.kind),
            if p.missing == 0 {
                "<span class=\"muted\">0</span>".to_string()
            } else {
                format!(
                    "{}<br><span class=\"muted\">{}</span>",
                    int(p.missing),
                    pct(miss)
                )
            },
            int(p.distinct_estimate().round() as u64)
        );
        match (&p.numeric, p.kind) {
            (Some(nm), Kind::Numeric) if nm.moments.count > 0 => {
                let m = &nm.moments;
                let _ = write!(
                    s,
                    "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
                    num(m.mean),
                    num(m.std()),
                    num(m.min),
                    num(p.quantile(0.5).unwrap_or(f64::NAN)),
                    num(m.max)
                );
                let bins = p.histogram(20);
                let vals: Vec<f64> = bins.iter().map(|b| b.count).collect();
                let tips: Vec<String> = bins
                    .iter()
                    .map(|b| {
                        format!(
                            "[{}, {}): {}",
                            num(b.lower),
                            num(b.upper),
                            num(b.count.round())
                        )
                    })
                    .collect();
                let _ = write!(s, "<td>{}</td>", svg::spark_bars(&vals, &tips, svg::ACCENT));
            }
            (Some(nm), Kind::Datetime) if nm.moments.count > 0 => {
                let m = &nm.moments;
                let _ = write!(
                    s,
                    "<td class=\"n\">–</td><td class=\"n\">–</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
                    esc(&tabular::format_datetime_ms(m.min as i64)),
                    esc(&tabular::format_datetime_ms(
                        p.quantile(0.5).unwrap_or(m.min) as i64
                    )),
                    esc(&tabular::format_datetime_ms(m.max as i64))
                );
                let bins = p.histogram(20);
                let vals: Vec<f64> = bins.iter().map(|b| b.count).collect();
                let _ = write!(s, "<td>{}</td>", svg::spark_bars(&vals, &[], "#8b5cf6"));
            }
            _ => {
                s.push_str("<td class=\"n muted\">–</td><td class=\"n muted\">–</td><td class=\"n muted\">–</td><td class=\"n muted\">–</td><td class=\"n muted\">–</td>");
                let top = p
                    .categories
                    .as_ref()
                    .map(|t| {
                        t.top(if matches!(p.kind, Kind::IdLike | Kind::Text) {
                            2
                        } else {
                            3
                        })
                    })
                    .unwrap_or_default();
                if top.is_empty() {
                    s.push_str("<td></td>");
                } else {
                    let items: Vec<(String, f64)> = top
                        .into_iter()
                        .map(|(v, c)| (v, c as f64 / present.max(1) as f64))
                        .collect();
                    let _ = write!(s, "<td>{}</td>", svg::spark_top(&items));
                }
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div><p class=\"note\">Distinct counts are exact up to a few thousand values and HyperLogLog estimates (±2 %) beyond; medians come from a KLL quantile sketch. Hover a bar for its range and count.</p>");
    s
}

fn missing_body(profile: &Profile, n: usize) -> String {
    let mut cols: Vec<&ColumnProfile> = profile.columns.iter().filter(|c| c.missing > 0).collect();
    if cols.is_empty() {
        return note("No missing values in any column.");
    }
    cols.sort_by(|a, b| b.missing.cmp(&a.missing).then(a.name.cmp(&b.name)));
    let shown = cols.len().min(40);
    let bars: Vec<Bar> = cols[..shown]
        .iter()
        .map(|c| {
            let share = c.missing as f64 / n.max(1) as f64;
            let colour = if share >= MISSING_DROP {
                "#dc2626"
            } else if share >= MISSING_WARN {
                "#f59e0b"
            } else {
                svg::ACCENT
            };
            Bar::new(c.name.clone(), share * 100.0)
                .text(format!("{} ({})", pct(share), int(c.missing)))
                .colour(colour)
        })
        .collect();
    let chart = svg::hbars(
        "Missing values per column",
        &bars,
        "% of rows missing",
        true,
    );
    let mut s = figure(
        &chart,
        &format!(
            "{} of {} columns have missing values. Red: ≥ {:.0} % (consider dropping), amber: ≥ {:.0} %.",
            cols.len(),
            profile.columns.len(),
            MISSING_DROP * 100.0,
            MISSING_WARN * 100.0
        ),
    );
    if cols.len() > shown {
        s.push_str(&note(&format!(
            "{} more columns with fewer missing values are not drawn.",
            cols.len() - shown
        )));
    }
    s
}

fn outliers_body(outliers: &[Outliers]) -> String {
    if outliers.is_empty() {
        return note(
            "No numeric feature column with at least 10 distinct values and a non-zero interquartile range to check.",
        );
    }
    let mut s = String::from(
        "<div class=\"scroll\"><table><thead><tr><th>Column</th><th class=\"n\">Lower fence</th><th class=\"n\">Upper fence</th><th class=\"n\">Outliers</th><th class=\"n\">Share</th><th>Most extreme values</th></tr></thead><tbody>",
    );
    let mut sorted: Vec<&Outliers> = outliers.iter().collect();
    sorted.sort_by(|a, b| b.count.cmp(&a.count).then(a.column.cmp(&b.column)));
    for o in sorted {
        let ex: Vec<String> = o.examples.iter().map(|v| num(*v)).collect();
        let _ = write!(
            s,
            "<tr><td class=\"cname\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"muted\">{}</td></tr>",
            esc(&o.column),
            num(o.lower),
            num(o.upper),
            int(o.count as u64),
            pct(o.count as f64 / o.present.max(1) as f64),
            esc(&ex.join(", "))
        );
    }
    s.push_str("</tbody></table></div><p class=\"note\">Tukey's rule: a value is an outlier when it lies below Q1 − 1.5·IQR or above Q3 + 1.5·IQR (quartiles from the column's quantile sketch; counted over every row). Numeric columns with fewer than 10 distinct values or a zero interquartile range are not checked.</p>");
    s
}

fn correlation_body(
    table: &Table,
    numeric_cols: &[usize],
    corr: &HashMap<(usize, usize), f64>,
    assoc: &[(usize, f64, &'static str)],
    strong: &[(usize, usize, f64)],
    opts: &DataReportOptions,
) -> String {
    if numeric_cols.len() < 2 {
        return note("Fewer than two numeric feature columns: no correlations to show.");
    }
    // the columns most associated with the target first, then table order
    let mut chosen: Vec<usize> = assoc
        .iter()
        .map(|a| a.0)
        .filter(|i| numeric_cols.contains(i))
        .collect();
    for &i in numeric_cols {
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen.truncate(opts.max_heatmap_columns.max(2));
    chosen.sort_unstable();
    let get = |a: usize, b: usize| -> f64 {
        if a == b {
            1.0
        } else {
            corr.get(&(a.min(b), a.max(b))).copied().unwrap_or(f64::NAN)
        }
    };
    let names: Vec<String> = chosen
        .iter()
        .map(|&i| table.columns[i].name.clone())
        .collect();
    let k = chosen.len();
    let cell_px = (640.0 / k as f64).clamp(26.0, 64.0);
    let mut cells = Vec::with_capacity(k * k);
    for &a in &chosen {
        for &b in &chosen {
            let r = get(a, b);
            cells.push(Cell {
                fill: svg::diverging(r),
                text: if k <= 14 && r.is_finite() {
                    format!("{r:.2}")
                } else {
                    String::new()
                },
                tip: format!(
                    "{} × {}: r = {}",
                    table.columns[a].name,
                    table.columns[b].name,
                    if r.is_finite() {
                        format!("{r:.3}")
                    } else {
                        "n/a".into()
                    }
                ),
                dark: r.abs() > 0.6,
            });
        }
    }
    let chart = svg::heatmap(
        "Pearson correlation",
        &names,
        &names,
        &cells,
        "",
        "",
        cell_px,
        &svg::ColourScale {
            title: "Pearson r".into(),
            stops: vec![
                (0.0, svg::diverging(-1.0)),
                (0.5, svg::diverging(0.0)),
                (1.0, svg::diverging(1.0)),
            ],
            labels: vec![(0.0, "−1".into()), (0.5, "0".into()), (1.0, "+1".into())],
        },
    );
    let mut s = figure(
        &chart,
        &format!(
            "Pearson correlation between numeric features (blue negative, red positive){}. Hover a cell for its value.",
            if numeric_cols.len() > k {
                format!(
                    "; the {k} of {} numeric columns most associated with the target",
                    numeric_cols.len()
                )
            } else {
                String::new()
            }
        ),
    );
    if !strong.is_empty() {
        s.push_str("<h3>Strongly correlated pairs</h3><table><thead><tr><th>Column</th><th>Column</th><th class=\"n\">r</th></tr></thead><tbody>");
        for &(a, b, r) in strong.iter().take(20) {
            let _ = write!(
                s,
                "<tr><td class=\"cname\">{}</td><td class=\"cname\">{}</td><td class=\"n\">{:.3}</td></tr>",
                esc(&table.columns[a].name),
                esc(&table.columns[b].name),
                r
            );
        }
        s.push_str("</tbody></table>");
    }
    s
}

fn association_body(
    table: &Table,
    assoc: &[(usize, f64, &'static str)],
    classification: bool,
    sampled_note: &Option<String>,
) -> String {
    if assoc.is_empty() {
        return note("No numeric or categorical feature columns to relate to the target.");
    }
    let shown = assoc.len().min(30);
    let bars: Vec<Bar> = assoc[..shown]
        .iter()
        .map(|&(i, v, m)| {
            let colour = match m {
                "Cramér's V" => "#f59e0b",
                "η" if classification => svg::ACCENT,
                "η" => "#f59e0b",
                _ => svg::ACCENT,
            };
            Bar::new(table.columns[i].name.clone(), v)
                .text(format!("{v:.3} ({m})"))
                .colour(colour)
        })
        .collect();
    let chart = svg::hbars(
        "Association of each feature with the target (0 = none, 1 = perfect)",
        &bars,
        "association",
        true,
    );
    let how = if classification {
        "Numeric features (blue): correlation ratio η of the feature across classes. Categorical features (amber): Cramér's V with the class."
    } else {
        "Numeric features (blue): absolute Pearson correlation with the target. Categorical features (amber): correlation ratio η of the target across the categories."
    };
    let mut s = figure(&chart, how);
    if assoc.len() > shown {
        s.push_str(&note(&format!(
            "{} weaker features are not drawn.",
            assoc.len() - shown
        )));
    }
    if let Some(t) = sampled_note {
        s.push_str(&note(t));
    }
    s
}
