//! The data-exploration report on the repository's datasets and on crafted
//! tables: sections, plots, numbers cross-checked against the raw files,
//! escaping, insights, and a large table.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use reports::{DataReportOptions, ReportError, data_report};
use tabular::{Column, Kind, Table};

fn dataset(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets")
        .join(format!("{name}.csv"));
    assert!(p.exists(), "expected the dataset at {}", p.display());
    p
}

/// Split one CSV line into fields (RFC 4180 quotes; the dataset files have
/// no line breaks inside quotes).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The `<tr>` of the column-statistics table for `name`.
fn stats_row<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!("<td class=\"cname\">{name}"))
        .unwrap_or_else(|| panic!("no statistics row for {name}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    &html[start..end]
}

fn kpi<'a>(html: &'a str, label: &str) -> &'a str {
    let at = html
        .find(&format!("<div class=\"kl\">{label}</div>"))
        .unwrap_or_else(|| panic!("no KPI {label}"));
    let head = &html[..at];
    let v = head.rfind("<div class=\"kv\">").unwrap() + "<div class=\"kv\">".len();
    head[v..].trim_end_matches("</div>")
}

fn assert_well_formed(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    let open = html.matches("<svg").count();
    assert_eq!(open, html.matches("</svg>").count(), "unbalanced <svg>");
    for tag in ["section", "table", "figure", "ul", "tr", "g"] {
        assert_eq!(
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count(),
            html.matches(&format!("</{tag}>")).count(),
            "unbalanced <{tag}>"
        );
    }
    // self-contained: nothing fetched, nothing executed
    assert!(!html.contains("<script"), "a script in the report");
    assert!(!html.contains("src=\"http"), "an external resource");
    assert!(!html.contains("href=\"http"), "an external link");
}

#[test]
fn titanic_report_has_every_section_and_numbers_that_match_the_file() {
    let path = dataset("titanic");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header = fields(lines.next().unwrap());
    let rows: Vec<Vec<String>> = lines.map(fields).collect();
    let age = header.iter().position(|h| h == "Age").unwrap();
    let age_missing = rows.iter().filter(|r| r[age].is_empty()).count();
    let cabin = header.iter().position(|h| h == "Cabin").unwrap();
    let cabin_missing = rows.iter().filter(|r| r[cabin].is_empty()).count();
    let distinct_lines: HashSet<&Vec<String>> = rows.iter().collect();
    let duplicates = rows.len() - distinct_lines.len();

    let table = tabular::read_path(&path).unwrap();
    let html = data_report(&table, "Survived", &DataReportOptions::default()).unwrap();
    assert_well_formed(&html);
    for id in [
        "summary",
        "insights",
        "target",
        "columns",
        "missing",
        "outliers",
        "correlations",
        "association",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "no section {id}"
        );
        assert!(html.contains(&format!("href=\"#{id}\"")), "no link to {id}");
    }
    assert!(html.matches("<svg").count() >= 10);
    assert_eq!(kpi(&html, "rows"), "891");
    assert_eq!(rows.len(), 891);
    assert_eq!(kpi(&html, "columns"), header.len().to_string());
    assert_eq!(kpi(&html, "duplicate rows"), duplicates.to_string());
    assert!(stats_row(&html, "Age").contains(&format!(">{age_missing}<")));
    assert_eq!(age_missing, 177);
    // Cabin is 77 % missing: the report says so and suggests dropping it
    let share = format!("{:.1} %", cabin_missing as f64 * 100.0 / 891.0);
    assert!(
        html.contains(&format!(
            "Column <code>Cabin</code> is {share} missing ({cabin_missing} of 891 rows) — consider dropping it"
        )),
        "no missing-value insight for Cabin ({share})"
    );
    // PassengerId is an id and excluded from training
    assert!(html.contains("Column <code>PassengerId</code> looks like an id"));
    // binary target: a bar per class with the class counts
    assert!(html.contains("Rows per class of &#39;Survived&#39;"));
    assert!(html.contains("<td>0</td><td class=\"n\">549</td>"));
    assert!(html.contains("<td>1</td><td class=\"n\">342</td>"));
}

#[test]
fn duplicate_rows_match_an_independent_count() {
    // wine_quality has many exact duplicate rows
    let path = dataset("wine_quality");
    let text = std::fs::read_to_string(&path).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let distinct: HashSet<&str> = rows.iter().copied().collect();
    let duplicates = rows.len() - distinct.len();
    assert!(duplicates > 100);
    let table = tabular::read_path(&path).unwrap();
    let html = data_report(&table, "quality", &DataReportOptions::default()).unwrap();
    assert_well_formed(&html);
    let shown: String = kpi(&html, "duplicate rows").replace(',', "");
    assert_eq!(shown, duplicates.to_string());
    assert!(html.contains("duplicate rows ("));
    assert_eq!(kpi(&html, "problem type"), "multiclass");
    // seven classes, the smallest far rarer than the largest
    assert!(html.contains("The target is imbalanced"));
    assert!(html.contains("consider balanced_accuracy or f1_macro"));
}

#[test]
fn regression_report_draws_a_histogram_and_correlations() {
    let table = tabular::read_path(&dataset("california_housing")).unwrap();
    let html = data_report(
        &table,
        "median_house_value",
        &DataReportOptions {
            sample_rows: 5000,
            ..DataReportOptions::default()
        },
    )
    .unwrap();
    assert_well_formed(&html);
    assert_eq!(kpi(&html, "problem type"), "regression");
    assert!(html.contains("Distribution of &#39;median_house_value&#39;"));
    assert!(html.contains("Pearson correlation"));
    // total_rooms, total_bedrooms and households move together
    assert!(html.contains(
        "Strong correlation between <code>total_bedrooms</code> and <code>households</code>"
    ));
    assert!(stats_row(&html, "total_bedrooms").contains(">207<"));
    assert!(html.contains("seeded sample of 5,000 of the 20,640 rows"));
    assert!(html.contains("|Pearson r|"));
}

#[test]
fn hostile_column_names_and_values_are_escaped() {
    let n = 60;
    let table = Table {
        columns: vec![
            Column::from_f64(
                "<script>alert(1)</script>",
                Kind::Numeric,
                (0..n).map(|i| Some(i as f64 * 0.5)).collect(),
            ),
            Column::from_strings(
                "cat\"><img src=x onerror=alert(2)>",
                Kind::Categorical,
                (0..n)
                    .map(|i| Some(if i % 3 == 0 { "<b>bold</b>" } else { "a&b" }.to_string()))
                    .collect(),
            ),
            Column::from_strings(
                "y</title><script>",
                Kind::Categorical,
                (0..n)
                    .map(|i| Some(if i % 2 == 0 { "<yes>" } else { "'no'" }.to_string()))
                    .collect(),
            ),
        ],
        warnings: Vec::new(),
    };
    let html = data_report(
        &table,
        "y</title><script>",
        &DataReportOptions {
            title: Some("<i>evil</i>.csv".into()),
            ..DataReportOptions::default()
        },
    )
    .unwrap();
    assert_well_formed(&html);
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>bold"));
    assert!(!html.contains("<i>evil"));
    assert!(!html.contains("<yes>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));
    assert!(html.contains("&lt;i&gt;evil&lt;/i&gt;.csv"));
}

fn crafted(n: usize) -> Table {
    let target: Vec<Option<String>> = (0..n)
        .map(|i| Some(if i % 10 == 0 { "yes" } else { "no" }.to_string()))
        .collect();
    let x: Vec<Option<f64>> = (0..n).map(|i| Some(((i * 37) % 101) as f64)).collect();
    let x_twin: Vec<Option<f64>> = x.iter().map(|v| v.map(|v| 2.0 * v + 1.0)).collect();
    Table {
        columns: vec![
            Column::from_strings(
                "order_code",
                Kind::IdLike,
                (0..n).map(|i| Some(format!("A{i:05}"))).collect(),
            ),
            Column::from_f64("always_seven", Kind::Numeric, vec![Some(7.0); n]),
            Column::from_f64(
                "mostly_missing",
                Kind::Numeric,
                (0..n).map(|i| (i % 5 == 0).then_some(i as f64)).collect(),
            ),
            Column::from_f64("x", Kind::Numeric, x),
            Column::from_f64("x_twin", Kind::Numeric, x_twin),
            Column::from_strings("label", Kind::Categorical, target),
        ],
        warnings: Vec::new(),
    }
}

#[test]
fn insights_fire_on_crafted_problems() {
    let table = crafted(500);
    let html = data_report(&table, "label", &DataReportOptions::default()).unwrap();
    assert_well_formed(&html);
    for expected in [
        "Column <code>always_seven</code> is constant",
        "Column <code>order_code</code> looks like an id (all 500 values distinct) — it is excluded from training",
        "Column <code>mostly_missing</code> is 80.0 % missing (400 of 500 rows) — consider dropping it",
        "The target is imbalanced 9:1",
        "AUC is the default metric",
        "Strong correlation between <code>x</code> and <code>x_twin</code> (1)",
    ] {
        assert!(html.contains(expected), "missing insight: {expected}");
    }
    assert!(!html.contains("duplicate rows ("), "no duplicates here");
    assert!(!html.contains("No data-quality issues found"));

    // duplicated rows are counted: append 7 copies of existing rows
    let idx: Vec<usize> = (0..500).chain([1, 2, 3, 4, 5, 6, 1]).collect();
    let dup = table.take(&idx);
    let html = data_report(&dup, "label", &DataReportOptions::default()).unwrap();
    assert_eq!(kpi(&html, "duplicate rows"), "7");
    assert!(html.contains("7 duplicate rows (1.4 %)"));
}

#[test]
fn a_clean_table_gets_a_clean_bill_of_health() {
    let n = 400;
    let table = Table {
        columns: vec![
            Column::from_f64(
                "a",
                Kind::Numeric,
                (0..n).map(|i| Some(((i * 7919) % 397) as f64)).collect(),
            ),
            Column::from_strings(
                "colour",
                Kind::Categorical,
                (0..n)
                    .map(|i| Some(["red", "green", "blue"][(i * 13) % 3].to_string()))
                    .collect(),
            ),
            Column::from_strings(
                "y",
                Kind::Categorical,
                (0..n)
                    .map(|i| Some(if (i * 31) % 7 < 3 { "p" } else { "q" }.to_string()))
                    .collect(),
            ),
        ],
        warnings: Vec::new(),
    };
    let html = data_report(&table, "y", &DataReportOptions::default()).unwrap();
    assert!(html.contains("No data-quality issues found"), "{html}");
    assert!(html.contains("No missing values in any column."));
}

#[test]
fn an_unknown_or_unusable_target_is_a_clear_error() {
    let table = crafted(100);
    match data_report(&table, "nope", &DataReportOptions::default()) {
        Err(ReportError::UnknownTarget { target, available }) => {
            assert_eq!(target, "nope");
            assert!(available.contains("label"));
        }
        other => panic!("expected UnknownTarget, got {other:?}"),
    }
    let err = data_report(&table, "always_seven", &DataReportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("always_seven"), "{err}");
}

#[test]
fn a_large_table_renders_from_a_sample() {
    // 50,000 rows × 100 columns: 80 numeric (some correlated, some with
    // missing values), 19 categorical, a binary target
    let n = 50_000;
    let mut columns = Vec::new();
    for j in 0..80 {
        let v: Vec<Option<f64>> = (0..n)
            .map(|i| {
                let z = tabular::split::key((i * 100 + j) as u64);
                let base = (z % 10_000) as f64 / 100.0;
                if j % 10 == 3 && z.is_multiple_of(7) {
                    None
                } else if j % 20 == 1 {
                    // a near copy of column j-1's value stream
                    let z0 = tabular::split::key((i * 100 + j - 1) as u64);
                    Some((z0 % 10_000) as f64 / 50.0 + base * 0.01)
                } else {
                    Some(base)
                }
            })
            .collect();
        columns.push(Column::from_f64(&format!("num_{j:02}"), Kind::Numeric, v));
    }
    for j in 0..19 {
        let v: Vec<Option<String>> = (0..n)
            .map(|i| {
                Some(format!(
                    "c{}",
                    tabular::split::key((i * 31 + j) as u64) % (3 + j as u64)
                ))
            })
            .collect();
        columns.push(Column::from_strings(
            &format!("cat_{j:02}"),
            Kind::Categorical,
            v,
        ));
    }
    let y: Vec<Option<String>> = (0..n)
        .map(|i| Some(if i % 4 == 0 { "yes" } else { "no" }.to_string()))
        .collect();
    columns.push(Column::from_strings("target", Kind::Categorical, y));
    let table = Table {
        columns,
        warnings: Vec::new(),
    };
    assert_eq!(table.columns.len(), 100);
    let t0 = Instant::now();
    let html = data_report(&table, "target", &DataReportOptions::default()).unwrap();
    eprintln!(
        "50k × 100 data report: {:.2} s, {} KiB",
        t0.elapsed().as_secs_f64(),
        html.len() / 1024
    );
    assert_well_formed(&html);
    assert_eq!(kpi(&html, "rows"), "50,000");
    assert!(html.contains("seeded sample of 20,000 of the 50,000 rows"));
    // the heatmap is limited to the configured number of columns
    assert!(html.contains("the 20 of 80 numeric columns most associated with the target"));
    assert!(
        html.contains("Strong correlation between <code>num_00</code> and <code>num_01</code>")
    );
}

#[test]
fn odd_tables_still_render() {
    let n = 40;
    // only the target
    let only = Table {
        columns: vec![Column::from_f64(
            "y",
            Kind::Numeric,
            (0..n).map(|i| Some(i as f64 * 1.5)).collect(),
        )],
        warnings: Vec::new(),
    };
    let html = data_report(&only, "y", &DataReportOptions::default()).unwrap();
    assert_well_formed(&html);
    assert!(html.contains("Fewer than two numeric feature columns"));
    // an all-missing numeric column, a datetime column, a boolean target
    let odd = Table {
        columns: vec![
            Column::from_f64("empty", Kind::Numeric, vec![None; n]),
            Column::from_f64(
                "when",
                Kind::Datetime,
                (0..n)
                    .map(|i| Some(1.7e12 + i as f64 * 86_400_000.0))
                    .collect(),
            ),
            Column::from_strings(
                "flag",
                Kind::Categorical,
                (0..n)
                    .map(|i| Some(if i % 2 == 0 { "true" } else { "false" }.to_string()))
                    .collect(),
            ),
        ],
        warnings: Vec::new(),
    };
    let html = data_report(&odd, "flag", &DataReportOptions::default()).unwrap();
    assert_well_formed(&html);
    assert!(html.contains("Column <code>empty</code> is empty (every value is missing)"));
    assert!(
        html.contains("2023-11-14"),
        "datetime minimum shown as a date"
    );
}

#[test]
fn many_classes_are_summarised_not_drawn_one_by_one() {
    let n = 3000;
    let table = Table {
        columns: vec![
            Column::from_f64("x", Kind::Numeric, (0..n).map(|i| Some(i as f64)).collect()),
            Column::from_strings(
                "code",
                Kind::Categorical,
                (0..n).map(|i| Some(format!("k{}", i % 300))).collect(),
            ),
        ],
        warnings: Vec::new(),
    };
    let html = data_report(&table, "code", &DataReportOptions::default()).unwrap();
    assert_well_formed(&html);
    assert!(
        html.contains("271 other classes"),
        "the class chart is capped"
    );
    let start = html.find("<section id=\"target\">").unwrap();
    let end = html[start..].find("</section>").unwrap() + start;
    assert!(html[start..end].matches("<rect").count() <= 30);
}
