use std::sync::Arc;

use crate::array::{ColumnData, Float64Array, StringArray};

/// What a column holds, as inferred from its values (see `infer.rs` for
/// the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Numbers; stored as Float64 (NaN never stored: missing is null).
    Numeric,
    /// true/false, yes/no; stored as Boolean.
    Boolean,
    /// A small set of repeated labels; stored as Utf8.
    Categorical,
    /// Dates or date-times; stored as Timestamp(ms, UTC).
    Datetime,
    /// Free text (many distinct values, words); stored as Utf8.
    Text,
    /// A unique identifier per row; stored as Utf8 or Float64.
    IdLike,
}

/// One column: its name, kind and values (nulls are missing values).
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub data: Arc<ColumnData>,
}

impl Column {
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn missing(&self) -> usize {
        self.data.null_count()
    }
    /// Values as f64 (numeric, id-like numbers, booleans as 0/1, datetimes as
    /// epoch ms); None for missing or non-numeric storage.
    pub fn f64_at(&self, i: usize) -> Option<f64> {
        match &*self.data {
            ColumnData::Float64(a) => a.get(i),
            ColumnData::Boolean(a) => a.get(i).map(|b| if b { 1.0 } else { 0.0 }),
            ColumnData::Timestamp(a) => a.get(i).map(|v| v as f64),
            ColumnData::Utf8(_) => None,
        }
    }
    /// The value as text (any kind), None when missing.
    pub fn str_at(&self, i: usize) -> Option<String> {
        match &*self.data {
            ColumnData::Utf8(a) => a.get(i).map(str::to_string),
            ColumnData::Boolean(a) => a.get(i).map(|b| b.to_string()),
            ColumnData::Float64(a) => a.get(i).map(crate::infer::format_number),
            ColumnData::Timestamp(a) => a.get(i).map(crate::infer::format_datetime_ms),
        }
    }
    pub fn strings(&self) -> Option<&StringArray> {
        match &*self.data {
            ColumnData::Utf8(a) => Some(a),
            _ => None,
        }
    }
    pub fn numbers(&self) -> Option<&Float64Array> {
        match &*self.data {
            ColumnData::Float64(a) => Some(a),
            _ => None,
        }
    }
    pub(crate) fn new(name: String, kind: Kind, data: ColumnData) -> Self {
        Column {
            name,
            kind,
            data: Arc::new(data),
        }
    }
    pub fn from_f64(name: &str, kind: Kind, v: Vec<Option<f64>>) -> Self {
        Column::new(name.into(), kind, ColumnData::Float64(v.into()))
    }
    pub fn from_strings(name: &str, kind: Kind, v: Vec<Option<String>>) -> Self {
        Column::new(name.into(), kind, ColumnData::Utf8(v.into()))
    }
}

/// A problem that did not stop the read: e.g. cells that did not parse in
/// an otherwise numeric column (they became missing values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub column: String,
    pub count: usize,
    /// First offending value and its 1-based file line, for the message.
    pub example: String,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column '{}': {} {} (first at line {}: {:?})",
            self.column, self.count, self.message, self.line, self.example
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub warnings: Vec<Warning>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.columns.first().map(Column::len).unwrap_or(0)
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
    /// The rows at `idx` (in that order), all columns. An index past the
    /// end gives empty columns.
    pub fn take(&self, idx: &[usize]) -> Table {
        let columns = self
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                kind: c.kind,
                data: Arc::new(if idx.iter().any(|&i| i >= c.len()) {
                    c.data.empty_like()
                } else {
                    c.data.take(idx)
                }),
            })
            .collect();
        Table {
            columns,
            warnings: Vec::new(),
        }
    }
}
