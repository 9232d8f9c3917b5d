//! What kind of problem a target column poses. The rule:
//!
//! - a boolean target, or a text target with two distinct values → binary;
//! - a text target with more values → multiclass;
//! - a numeric target whose values are all integers with exactly two
//!   distinct values → binary; with 3 to 20 distinct values → multiclass
//!   (an ambiguous case: ratings and counts look alike; it is reported and
//!   `--problem-type regression` overrides it);
//! - any other numeric target → regression.
//!
//! Rows whose target is missing are dropped. A target that is missing
//! everywhere, a single class, a constant regression target, or a class
//! with a single row is an error that says what to do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tabular::{Column, Kind};

use crate::LearnError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    Binary,
    Multiclass,
    Regression,
}

impl ProblemType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "binary" => Some(ProblemType::Binary),
            "multiclass" => Some(ProblemType::Multiclass),
            "regression" => Some(ProblemType::Regression),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemType::Binary => "binary",
            ProblemType::Multiclass => "multiclass",
            ProblemType::Regression => "regression",
        }
    }
    pub fn is_classification(self) -> bool {
        self != ProblemType::Regression
    }
}

/// The target, encoded for learning.
#[derive(Debug, Clone)]
pub struct Target {
    pub problem: ProblemType,
    /// Rows kept (those with a target value), in order.
    pub rows: Vec<usize>,
    /// Regression values, or class indices as f64.
    pub values: Vec<f64>,
    /// Class labels by index (empty for regression).
    pub labels: Vec<String>,
    /// Why the problem type was chosen (shown to the user).
    pub reason: String,
}

fn label_of(c: &Column, i: usize) -> Option<String> {
    c.str_at(i)
}

pub fn encode_target(col: &Column, forced: Option<ProblemType>) -> Result<Target, LearnError> {
    let name = &col.name;
    let rows: Vec<usize> = (0..col.len()).filter(|&i| !arrow_null(col, i)).collect();
    if rows.is_empty() {
        return Err(LearnError::Target(format!(
            "the target column '{name}' has no values (every row is missing)"
        )));
    }
    let numeric = matches!(col.kind, Kind::Numeric | Kind::IdLike) && col.numbers().is_some();
    let (problem, reason) = match forced {
        Some(p) => (p, format!("problem type {} was given", p.as_str())),
        None => infer(col, &rows, numeric),
    };
    if problem == ProblemType::Regression {
        if !numeric {
            return Err(LearnError::Target(format!(
                "the target column '{name}' is not numeric ({:?}), so it cannot be a regression target; use --problem-type binary or multiclass",
                col.kind
            )));
        }
        let values: Vec<f64> = rows.iter().filter_map(|&i| col.f64_at(i)).collect();
        let first = values[0];
        if values.iter().all(|&v| v == first) {
            return Err(LearnError::Target(format!(
                "the target column '{name}' is constant ({first}); there is nothing to learn"
            )));
        }
        return Ok(Target {
            problem,
            rows,
            values,
            labels: Vec::new(),
            reason,
        });
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for &i in &rows {
        if let Some(l) = label_of(col, i) {
            *counts.entry(l).or_insert(0) += 1;
        }
    }
    let mut labels: Vec<String> = counts.keys().cloned().collect();
    if numeric {
        // numeric class labels sort as numbers (2 before 10)
        labels.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(f64::NAN),
                b.parse::<f64>().unwrap_or(f64::NAN),
            );
            x.total_cmp(&y)
        });
    }
    if labels.len() < 2 {
        return Err(LearnError::Target(format!(
            "the target column '{name}' has a single class ({}); a classifier needs at least two",
            labels.first().cloned().unwrap_or_default()
        )));
    }
    if problem == ProblemType::Binary && labels.len() > 2 {
        return Err(LearnError::Target(format!(
            "the target column '{name}' has {} classes, not 2; use --problem-type multiclass",
            labels.len()
        )));
    }
    if let Some((l, _)) = counts.iter().find(|(_, c)| **c < 2) {
        return Err(LearnError::Target(format!(
            "class '{l}' of the target column '{name}' has a single row; drop that row or collect more examples of the class"
        )));
    }
    let index: BTreeMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let values = rows
        .iter()
        .map(|&i| {
            label_of(col, i)
                .and_then(|l| index.get(l.as_str()).copied())
                .unwrap_or(0) as f64
        })
        .collect();
    let problem = if labels.len() == 2 {
        ProblemType::Binary
    } else {
        ProblemType::Multiclass
    };
    Ok(Target {
        problem,
        rows,
        values,
        labels,
        reason,
    })
}

fn arrow_null(c: &Column, i: usize) -> bool {
    c.str_at(i).is_none()
}

fn infer(col: &Column, rows: &[usize], numeric: bool) -> (ProblemType, String) {
    let name = &col.name;
    if col.kind == Kind::Boolean {
        return (
            ProblemType::Binary,
            format!("'{name}' holds true/false values → binary"),
        );
    }
    if !numeric {
        let distinct: std::collections::HashSet<String> =
            rows.iter().filter_map(|&i| col.str_at(i)).collect();
        return if distinct.len() == 2 {
            (
                ProblemType::Binary,
                format!("'{name}' holds 2 labels → binary"),
            )
        } else {
            (
                ProblemType::Multiclass,
                format!("'{name}' holds {} labels → multiclass", distinct.len()),
            )
        };
    }
    let vals: Vec<f64> = rows.iter().filter_map(|&i| col.f64_at(i)).collect();
    let integral = vals.iter().all(|v| v.fract() == 0.0);
    let distinct: std::collections::BTreeSet<i64> = vals.iter().map(|v| *v as i64).collect();
    match (integral, distinct.len()) {
        (true, 2) => (
            ProblemType::Binary,
            format!("'{name}' holds 2 integer values → binary"),
        ),
        (true, 3..=20) => (
            ProblemType::Multiclass,
            format!(
                "'{name}' holds {} distinct integers → multiclass (ambiguous: use --problem-type regression if they are quantities)",
                distinct.len()
            ),
        ),
        _ => (
            ProblemType::Regression,
            format!("'{name}' holds numbers → regression"),
        ),
    }
}
