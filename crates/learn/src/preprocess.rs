//! Preprocessing fitted on training data only, turning table columns into
//! the learners' feature matrix (`gbm::Dataset`: numeric values with NaN
//! for missing, or categorical codes):
//!
//! - numeric → as is (missing stays missing: the tree learners route it);
//! - boolean → 0/1;
//! - categorical → codes of the training levels, most frequent first;
//!   an unseen level or a missing value gets the "missing" code;
//! - datetime → year, month, day of month, day of week, hour, days since
//!   1970 (six numeric features);
//! - free text → a missing flag, its word count, and one 0/1 feature per
//!   word found in at least 1 % of training rows (at most 32 words, most
//!   frequent first): a passenger's title in a name, a ticket's prefix. A
//!   text column absent from the input is read as missing;
//! - id-like columns are dropped, with a note (they identify rows rather
//!   than describe them).
//!
//! The same plan transforms a table in bulk or one row at a time
//! ([`Preprocessor::transform_row`], allocation-free given a buffer).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tabular::{Column, Kind, Table};

use crate::LearnError;

/// How one input column becomes features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case")]
pub enum Encoding {
    Numeric,
    Boolean,
    Categorical {
        levels: Vec<String>,
    },
    Datetime,
    /// Free text: `missing`, `words`, then one presence flag per word.
    Text {
        words: Vec<String>,
    },
    Dropped {
        reason: String,
    },
}

impl Encoding {
    /// Whether an input may leave this column out (it then reads as
    /// missing): free text, which earlier pipelines dropped, so clients never
    /// had to send it.
    pub fn may_be_absent(&self) -> bool {
        matches!(self, Encoding::Text { .. })
    }

    /// How many features this column becomes.
    pub fn parts(&self) -> usize {
        match self {
            Encoding::Dropped { .. } => 0,
            Encoding::Datetime => DATETIME_PARTS.len(),
            Encoding::Text { words } => 2 + words.len(),
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputColumn {
    pub name: String,
    pub kind: Kind,
    pub encoding: Encoding,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub columns: Vec<InputColumn>,
    /// Feature names, in model order.
    pub features: Vec<String>,
    /// Per categorical column, each level's code (rebuilt after loading). foldhash: a
    /// served request looks up every categorical cell, and SipHash was a visible share
    /// of its time.
    #[serde(skip)]
    index: Vec<foldhash::HashMap<String, u32>>,
}

/// One raw input cell for single-row prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Missing,
    Number(f64),
    Bool(bool),
    Text(&'a str),
}

const DATETIME_PARTS: [&str; 6] = ["year", "month", "day", "weekday", "hour", "days"];
/// Categorical levels kept per column (the rest share the missing code).
const MAX_LEVELS: usize = 4096;
/// Words kept per text column, and the share (and least number) of
/// training rows a word must appear in.
const MAX_WORDS: usize = 32;
const MIN_WORD_SHARE: f64 = 0.01;
const MIN_WORD_ROWS: usize = 10;

/// The words of a text cell: maximal runs of letters and digits.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// The words a text column keeps, fitted on its training values.
fn fit_words(c: &Column) -> Vec<String> {
    let mut df: HashMap<String, usize> = HashMap::new();
    let mut seen: Vec<String> = Vec::new();
    for i in 0..c.len() {
        let Some(s) = c.str_at(i) else { continue };
        seen.clear();
        for w in words(&s) {
            let w = w.to_lowercase();
            if !seen.contains(&w) {
                seen.push(w);
            }
        }
        for w in seen.drain(..) {
            *df.entry(w).or_insert(0) += 1;
        }
    }
    let least = MIN_WORD_ROWS.max((c.len() as f64 * MIN_WORD_SHARE).ceil() as usize);
    let mut kept: Vec<(String, usize)> = df.into_iter().filter(|(_, n)| *n >= least).collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    kept.truncate(MAX_WORDS);
    kept.into_iter().map(|(w, _)| w).collect()
}

/// A text cell's features into `out` (len = 2 + words): missing flag, word
/// count, then each kept word's presence. Allocation-free for ASCII text.
fn text_features(cell: Option<&str>, kept: &[String], out: &mut [f64]) {
    out.iter_mut().for_each(|v| *v = 0.0);
    let Some(s) = cell.filter(|s| !tabular::is_missing(s)) else {
        out[0] = 1.0;
        return;
    };
    let mut n = 0.0;
    for w in words(s) {
        n += 1.0;
        let hit = if w.is_ascii() {
            kept.iter().position(|k| k.eq_ignore_ascii_case(w))
        } else {
            let lower = w.to_lowercase();
            kept.iter().position(|k| *k == lower)
        };
        if let Some(k) = hit {
            out[2 + k] = 1.0;
        }
    }
    out[1] = n;
}

fn datetime_parts(ms: i64) -> [f64; 6] {
    let days = ms.div_euclid(86_400_000);
    let (y, m, d) = tabular::civil_from_days(days);
    let hour = (ms.rem_euclid(86_400_000) / 3_600_000) as f64;
    let weekday = ((days + 3).rem_euclid(7)) as f64; // 1970-01-01 was a Thursday; Monday = 0
    [y as f64, m as f64, d as f64, weekday, hour, days as f64]
}

impl Preprocessor {
    /// Fit on the training table, skipping the target column.
    pub fn fit(table: &Table, target: &str) -> Preprocessor {
        let mut columns = Vec::new();
        for c in table.columns.iter().filter(|c| c.name != target) {
            let encoding = match c.kind {
                Kind::Numeric => Encoding::Numeric,
                Kind::Boolean => Encoding::Boolean,
                Kind::Datetime => Encoding::Datetime,
                Kind::Categorical => {
                    let mut counts: HashMap<String, usize> = HashMap::new();
                    for i in 0..c.len() {
                        if let Some(s) = c.str_at(i) {
                            *counts.entry(s).or_insert(0) += 1;
                        }
                    }
                    let mut levels: Vec<(String, usize)> = counts.into_iter().collect();
                    levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    levels.truncate(MAX_LEVELS);
                    Encoding::Categorical {
                        levels: levels.into_iter().map(|l| l.0).collect(),
                    }
                }
                Kind::Text => Encoding::Text {
                    words: fit_words(c),
                },
                Kind::IdLike => Encoding::Dropped {
                    reason: "id-like (unique per row): not used as a feature".into(),
                },
            };
            columns.push(InputColumn {
                name: c.name.clone(),
                kind: c.kind,
                encoding,
            });
        }
        Self::from_columns(columns)
    }

    fn from_columns(columns: Vec<InputColumn>) -> Preprocessor {
        let mut features = Vec::new();
        for c in &columns {
            match &c.encoding {
                Encoding::Dropped { .. } => {}
                Encoding::Datetime => {
                    features.extend(DATETIME_PARTS.iter().map(|p| format!("{}__{p}", c.name)))
                }
                Encoding::Text { words } => {
                    features.push(format!("{}__missing", c.name));
                    features.push(format!("{}__words", c.name));
                    features.extend(words.iter().map(|w| format!("{}__has_{w}", c.name)));
                }
                _ => features.push(c.name.clone()),
            }
        }
        let mut p = Preprocessor {
            columns,
            features,
            index: Vec::new(),
        };
        p.rebuild_index();
        p
    }

    /// Rebuild lookup tables after deserialising.
    pub fn rebuild_index(&mut self) {
        self.index = self
            .columns
            .iter()
            .map(|c| match &c.encoding {
                Encoding::Categorical { levels } => levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.clone(), i as u32))
                    .collect(),
                _ => foldhash::HashMap::default(),
            })
            .collect();
    }

    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Dropped columns and why.
    pub fn notes(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter_map(|c| match &c.encoding {
                Encoding::Dropped { reason } => Some(format!("'{}': {reason}", c.name)),
                _ => None,
            })
            .collect()
    }

    /// The columns a prediction input must have.
    pub fn required(&self) -> impl Iterator<Item = &InputColumn> {
        self.columns
            .iter()
            .filter(|c| !matches!(c.encoding, Encoding::Dropped { .. }))
    }

    /// Transform `rows` of a table into the feature matrix.
    pub fn transform(&self, table: &Table, rows: &[usize]) -> Result<gbm::Dataset, LearnError> {
        let mut out = Vec::with_capacity(self.features.len());
        for (ci, c) in self.columns.iter().enumerate() {
            if matches!(c.encoding, Encoding::Dropped { .. }) {
                continue;
            }
            if let Encoding::Text { words } = &c.encoding {
                let col = table.column(&c.name);
                let mut cols = vec![Vec::with_capacity(rows.len()); 2 + words.len()];
                let mut buf = vec![0.0; 2 + words.len()];
                for &i in rows {
                    let cell = col.and_then(|col| col.str_at(i));
                    text_features(cell.as_deref(), words, &mut buf);
                    for (k, v) in buf.iter().enumerate() {
                        cols[k].push(*v);
                    }
                }
                out.extend(cols.into_iter().map(gbm::Column::Numeric));
                continue;
            }
            let col = table.column(&c.name).ok_or_else(|| {
                LearnError::Input(format!(
                    "the input has no column '{}', which the model needs",
                    c.name
                ))
            })?;
            match &c.encoding {
                Encoding::Numeric => out.push(gbm::Column::Numeric(
                    rows.iter().map(|&i| num(col, i)).collect(),
                )),
                Encoding::Boolean => out.push(gbm::Column::Numeric(
                    rows.iter().map(|&i| boolean(col, i)).collect(),
                )),
                Encoding::Categorical { levels } => {
                    let missing = levels.len() as u32;
                    let idx = &self.index[ci];
                    let codes = rows
                        .iter()
                        .map(|&i| {
                            col.str_at(i)
                                .and_then(|s| idx.get(&s).copied())
                                .unwrap_or(missing)
                        })
                        .collect();
                    out.push(gbm::Column::Categorical { codes, missing });
                }
                Encoding::Datetime => {
                    let parts: Vec<Option<[f64; 6]>> = rows
                        .iter()
                        .map(|&i| datetime(col, i).map(datetime_parts))
                        .collect();
                    for k in 0..6 {
                        out.push(gbm::Column::Numeric(
                            parts.iter().map(|p| p.map_or(f64::NAN, |p| p[k])).collect(),
                        ));
                    }
                }
                Encoding::Dropped { .. } | Encoding::Text { .. } => {}
            }
        }
        gbm::Dataset::new(out).map_err(|e| LearnError::Model(e.to_string()))
    }

    /// Transform one row given as cells aligned with [`Preprocessor::columns`]
    /// (dropped columns may hold anything) into `out` (len = n_features).
    pub fn transform_row(&self, cells: &[Cell<'_>], out: &mut [f64]) -> Result<(), LearnError> {
        if cells.len() != self.columns.len() {
            return Err(LearnError::Input(format!(
                "expected {} values, got {}",
                self.columns.len(),
                cells.len()
            )));
        }
        let mut j = 0;
        for (ci, (c, cell)) in self.columns.iter().zip(cells).enumerate() {
            match &c.encoding {
                Encoding::Dropped { .. } => {}
                Encoding::Numeric => {
                    out[j] = match cell {
                        Cell::Number(v) => *v,
                        Cell::Bool(b) => f64::from(u8::from(*b)),
                        Cell::Text(s) if !tabular::is_missing(s) => tabular::parse_number(s)
                            .ok_or_else(|| {
                                LearnError::Input(format!(
                                    "column '{}' needs a number, got {:?}",
                                    c.name, s
                                ))
                            })?,
                        _ => f64::NAN,
                    };
                    j += 1;
                }
                Encoding::Boolean => {
                    out[j] = match cell {
                        Cell::Bool(b) => f64::from(u8::from(*b)),
                        Cell::Number(v) if *v == 0.0 || *v == 1.0 => *v,
                        Cell::Text(s) if !tabular::is_missing(s) => match tabular::parse_bool(s) {
                            Some(b) => f64::from(u8::from(b)),
                            None => {
                                return Err(LearnError::Input(format!(
                                    "column '{}' needs true/false, got {:?}",
                                    c.name, s
                                )));
                            }
                        },
                        Cell::Missing | Cell::Text(_) => f64::NAN,
                        Cell::Number(v) => {
                            return Err(LearnError::Input(format!(
                                "column '{}' needs true/false, got {v}",
                                c.name
                            )));
                        }
                    };
                    j += 1;
                }
                Encoding::Categorical { levels } => {
                    let idx = &self.index[ci];
                    let code = match cell {
                        Cell::Text(s) => idx.get(s.trim()).copied(),
                        Cell::Number(v) => idx.get(&tabular::format_number(*v)).copied(),
                        Cell::Bool(b) => idx.get(&b.to_string()).copied(),
                        Cell::Missing => None,
                    };
                    // unseen levels and missing values are missing (NaN in gbm's row convention)
                    let _ = levels;
                    out[j] = code.map_or(f64::NAN, |c| c as f64);
                    j += 1;
                }
                Encoding::Datetime => {
                    let ms = match cell {
                        Cell::Text(s) if !tabular::is_missing(s) => {
                            Some(tabular::parse_datetime(s).ok_or_else(|| {
                                LearnError::Input(format!(
                                    "column '{}' needs an ISO date, got {:?}",
                                    c.name, s
                                ))
                            })?)
                        }
                        Cell::Number(v) => Some(*v as i64),
                        _ => None,
                    };
                    let p = ms.map(datetime_parts);
                    for k in 0..6 {
                        out[j + k] = p.map_or(f64::NAN, |p| p[k]);
                    }
                    j += 6;
                }
                Encoding::Text { words } => {
                    let n = 2 + words.len();
                    let number;
                    let text = match cell {
                        Cell::Text(s) => Some(*s),
                        Cell::Number(v) => {
                            number = tabular::format_number(*v);
                            Some(number.as_str())
                        }
                        Cell::Bool(b) => Some(if *b { "true" } else { "false" }),
                        Cell::Missing => None,
                    };
                    text_features(text, words, &mut out[j..j + n]);
                    j += n;
                }
            }
        }
        Ok(())
    }
}

fn num(col: &Column, i: usize) -> f64 {
    if let Some(v) = col.f64_at(i) {
        return v;
    }
    col.str_at(i)
        .and_then(|s| tabular::parse_number(&s))
        .unwrap_or(f64::NAN)
}

fn boolean(col: &Column, i: usize) -> f64 {
    if let Some(v) = col.f64_at(i) {
        return v;
    }
    col.str_at(i)
        .and_then(|s| tabular::parse_bool(&s))
        .map_or(f64::NAN, |b| f64::from(u8::from(b)))
}

fn datetime(col: &Column, i: usize) -> Option<i64> {
    if col.kind == Kind::Datetime {
        return col.f64_at(i).map(|v| v as i64);
    }
    col.str_at(i).and_then(|s| tabular::parse_datetime(&s))
}
