use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, StringArray, TimestampMillisecondArray,
};

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
    pub data: ArrayRef,
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
        if self.data.is_null(i) {
            return None;
        }
        let any = self.data.as_any();
        if let Some(a) = any.downcast_ref::<Float64Array>() {
            return Some(a.value(i));
        }
        if let Some(a) = any.downcast_ref::<BooleanArray>() {
            return Some(if a.value(i) { 1.0 } else { 0.0 });
        }
        if let Some(a) = any.downcast_ref::<TimestampMillisecondArray>() {
            return Some(a.value(i) as f64);
        }
        None
    }
    /// The value as text (any kind), None when missing.
    pub fn str_at(&self, i: usize) -> Option<String> {
        if self.data.is_null(i) {
            return None;
        }
        let any = self.data.as_any();
        if let Some(a) = any.downcast_ref::<StringArray>() {
            return Some(a.value(i).to_string());
        }
        if let Some(a) = any.downcast_ref::<BooleanArray>() {
            return Some(a.value(i).to_string());
        }
        if let Some(a) = any.downcast_ref::<Float64Array>() {
            return Some(crate::infer::format_number(a.value(i)));
        }
        if let Some(a) = any.downcast_ref::<TimestampMillisecondArray>() {
            return Some(crate::infer::format_datetime_ms(a.value(i)));
        }
        None
    }
    pub fn strings(&self) -> Option<&StringArray> {
        self.data.as_any().downcast_ref::<StringArray>()
    }
    pub fn numbers(&self) -> Option<&Float64Array> {
        self.data.as_any().downcast_ref::<Float64Array>()
    }
    pub(crate) fn new(name: String, kind: Kind, data: ArrayRef) -> Self {
        Column { name, kind, data }
    }
    pub fn from_f64(name: &str, kind: Kind, v: Vec<Option<f64>>) -> Self {
        Column::new(name.into(), kind, Arc::new(Float64Array::from(v)))
    }
    pub fn from_strings(name: &str, kind: Kind, v: Vec<Option<String>>) -> Self {
        Column::new(name.into(), kind, Arc::new(StringArray::from(v)))
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
                data: take(c.data.as_ref(), idx),
            })
            .collect();
        Table {
            columns,
            warnings: Vec::new(),
        }
    }
}

/// The values at `idx` of one array: typed for the four storages tabular
/// keeps, through Arrow's generic copier for anything else.
fn take(a: &dyn Array, idx: &[usize]) -> ArrayRef {
    if idx.iter().any(|&i| i >= a.len()) {
        return a.slice(0, 0);
    }
    let any = a.as_any();
    if let Some(f) = any.downcast_ref::<Float64Array>() {
        return Arc::new(Float64Array::from_iter(
            idx.iter().map(|&i| f.is_valid(i).then(|| f.value(i))),
        ));
    }
    if let Some(b) = any.downcast_ref::<BooleanArray>() {
        return Arc::new(BooleanArray::from_iter(
            idx.iter().map(|&i| b.is_valid(i).then(|| b.value(i))),
        ));
    }
    if let Some(s) = any.downcast_ref::<StringArray>() {
        return Arc::new(StringArray::from_iter(
            idx.iter().map(|&i| s.is_valid(i).then(|| s.value(i))),
        ));
    }
    if let Some(t) = any.downcast_ref::<TimestampMillisecondArray>() {
        return Arc::new(
            TimestampMillisecondArray::from_iter(
                idx.iter().map(|&i| t.is_valid(i).then(|| t.value(i))),
            )
            .with_timezone_opt(t.timezone()),
        );
    }
    let data = a.to_data();
    let mut out = arrow_data::transform::MutableArrayData::new(vec![&data], false, idx.len());
    for &i in idx {
        if out.try_extend(0, i, i + 1).is_err() {
            return a.slice(0, 0);
        }
    }
    arrow_array::make_array(out.freeze())
}
