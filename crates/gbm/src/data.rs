//! Column-major input data.

use crate::GbmError;
use serde::{Deserialize, Serialize};

/// Largest accepted categorical code (exclusive). Codes are expected to be dense
/// indices (0, 1, 2, ...) so that split bitsets stay small.
pub const MAX_CATEGORY_CODE: u32 = 1 << 24;

/// Kind of a feature column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureKind {
    /// Real-valued; NaN means missing.
    Numeric,
    /// Integer category codes; one designated code means missing.
    Categorical,
}

/// One feature column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numeric values; `NaN` is missing.
    Numeric(Vec<f64>),
    /// Category codes; `missing` is the code that stands for a missing value.
    Categorical { codes: Vec<u32>, missing: u32 },
}

impl Column {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Categorical { codes, .. } => codes.len(),
        }
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column's kind.
    pub fn kind(&self) -> FeatureKind {
        match self {
            Column::Numeric(_) => FeatureKind::Numeric,
            Column::Categorical { .. } => FeatureKind::Categorical,
        }
    }

    /// Value of `row` in the row convention used by single-row prediction:
    /// numeric as is, categorical code as `f64`, missing as `NaN`.
    #[inline]
    pub(crate) fn value(&self, row: usize) -> f64 {
        match self {
            Column::Numeric(v) => v[row],
            Column::Categorical { codes, missing } => {
                let c = codes[row];
                if c == *missing { f64::NAN } else { c as f64 }
            }
        }
    }
}

/// A dense, column-major feature matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    columns: Vec<Column>,
    n_rows: usize,
}

impl Dataset {
    /// Builds a dataset; all columns must have the same length and there must be at least one.
    pub fn new(columns: Vec<Column>) -> Result<Self, GbmError> {
        let first = columns.first().ok_or(GbmError::NoFeatures)?;
        let n_rows = first.len();
        for (i, c) in columns.iter().enumerate() {
            if c.len() != n_rows {
                return Err(GbmError::ColumnLength {
                    column: i,
                    expected: n_rows,
                    got: c.len(),
                });
            }
        }
        Ok(Self { columns, n_rows })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.columns.len()
    }

    /// The columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Kinds of all columns.
    pub fn kinds(&self) -> Vec<FeatureKind> {
        self.columns.iter().map(Column::kind).collect()
    }

    /// Writes row `row` into `out` in the single-row convention (missing = NaN,
    /// categorical codes as f64). `out.len()` must equal `n_features()`.
    pub fn row_into(&self, row: usize, out: &mut [f64]) -> Result<(), GbmError> {
        if row >= self.n_rows {
            return Err(GbmError::RowOutOfRange {
                row,
                n_rows: self.n_rows,
            });
        }
        if out.len() != self.columns.len() {
            return Err(GbmError::OutputLength {
                expected: self.columns.len(),
                got: out.len(),
            });
        }
        self.row_into_unchecked(row, out);
        Ok(())
    }

    #[inline]
    pub(crate) fn row_into_unchecked(&self, row: usize, out: &mut [f64]) {
        for (o, c) in out.iter_mut().zip(&self.columns) {
            *o = c.value(row);
        }
    }

    /// Keeps only the given rows (in the given order).
    pub fn select_rows(&self, rows: &[usize]) -> Result<Dataset, GbmError> {
        if let Some(&row) = rows.iter().find(|&&r| r >= self.n_rows) {
            return Err(GbmError::RowOutOfRange {
                row,
                n_rows: self.n_rows,
            });
        }
        let columns = self
            .columns
            .iter()
            .map(|c| match c {
                Column::Numeric(v) => Column::Numeric(rows.iter().map(|&r| v[r]).collect()),
                Column::Categorical { codes, missing } => Column::Categorical {
                    codes: rows.iter().map(|&r| codes[r]).collect(),
                    missing: *missing,
                },
            })
            .collect();
        Ok(Dataset {
            columns,
            n_rows: rows.len(),
        })
    }
}
