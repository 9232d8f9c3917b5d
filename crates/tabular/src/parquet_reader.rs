//! Parquet in (and out, for tests and batch outputs), through the `parquet`
//! crate's Arrow reader. Column types map to kinds: integers and floats →
//! numeric (or id-like), booleans → boolean, dates and timestamps →
//! datetime, strings and dictionaries → inferred as for CSV.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::arrow_conv;
use crate::error::DataError;
use crate::infer;
use crate::table::{Column, Kind, Table, Warning};

fn perr(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Parquet {
        path: path.into(),
        message: format!("not a readable Parquet file: {e}"),
    }
}

pub fn read_parquet(path: &Path) -> Result<Table, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| perr(path, e))?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| perr(path, e))?;
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| perr(path, e))?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows == 0 {
        return Err(DataError::NoRows { path: path.into() });
    }
    let mut table = Table::default();
    for (i, field) in schema.fields().iter().enumerate() {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
        let whole = arrow_select::concat::concat(&parts).map_err(|e| perr(path, e))?;
        let name = field.name().clone();
        let (kind, data, bad) = convert(path, &name, whole)?;
        if bad > 0 {
            table.warnings.push(Warning {
                column: name.clone(),
                count: bad,
                example: String::new(),
                line: 0,
                message: "values did not fit the column's kind; they were read as missing values"
                    .into(),
            });
        }
        table.columns.push(Column::new(name, kind, data));
    }
    Ok(table)
}

pub(crate) fn convert(
    path: &Path,
    name: &str,
    a: ArrayRef,
) -> Result<(Kind, ArrayRef, usize), DataError> {
    let dt = a.data_type().clone();
    Ok(match dt {
        DataType::Boolean => (Kind::Boolean, a, 0),
        d if d.is_numeric() => {
            let f = arrow_conv::to_f64(&a).ok_or_else(|| perr(path, "numeric column"))?;
            let kind = numeric_or_id(name, &f);
            (kind, f, 0)
        }
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => {
            let t = arrow_conv::to_epoch_ms(&a).ok_or_else(|| perr(path, "date column"))?;
            (Kind::Datetime, t, 0)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            let s = arrow_conv::to_text(&a).ok_or_else(|| {
                perr(
                    path,
                    format!("column '{name}' has type {dt}, which tabular data cannot use"),
                )
            })?;
            let cells: Vec<&str> = (0..s.len())
                .map(|i| if s.is_null(i) { "" } else { s.value(i) })
                .collect();
            let inf = infer::infer(name, &cells);
            (inf.kind, crate::csv_reader::typed(&cells, &inf), inf.bad)
        }
        other => {
            return Err(DataError::Unsupported {
                path: path.into(),
                message: format!(
                    "column '{name}' has Parquet/Arrow type {other}, which tabular data cannot use; drop it or convert it to numbers or strings"
                ),
            });
        }
    })
}

fn numeric_or_id(name: &str, f: &ArrayRef) -> Kind {
    let Some(a) = f.as_any().downcast_ref::<arrow_array::Float64Array>() else {
        return Kind::Numeric;
    };
    if a.null_count() > 0 || a.len() < 20 {
        return Kind::Numeric;
    }
    let cells: Vec<String> = a
        .values()
        .iter()
        .map(|v| infer::format_number(*v))
        .collect();
    let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
    infer::infer(name, &refs).kind
}

/// Write a table as Parquet (snappy), one Arrow column per column.
pub fn write_parquet(table: &Table, path: &Path) -> Result<(), DataError> {
    let fields: Vec<Field> = table
        .columns
        .iter()
        .map(|c| Field::new(&c.name, c.data.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        table.columns.iter().map(|c| c.data.clone()).collect(),
    )
    .map_err(|e| perr(path, e))?;
    let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| perr(path, e))?;
    w.write(&batch).map_err(|e| perr(path, e))?;
    w.close().map_err(|e| perr(path, e))?;
    Ok(())
}
