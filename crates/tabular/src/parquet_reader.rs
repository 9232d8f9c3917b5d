//! Parquet in (and out, for batch outputs and monitor samples), through the
//! `parquet` crate's column readers and writers, without its Arrow layer.
//!
//! Each column's Parquet physical type and logical annotation decide what
//! it becomes ([`Plan`]): integers of any width and sign, floats, half
//! floats and decimals → numbers; dates, timestamps of any unit (and zone)
//! and legacy INT96 timestamps → UTC epoch milliseconds, floored; booleans →
//! booleans; strings (and enums, JSON, UUIDs) → text, inferred as for CSV.
//! Nested columns (lists, maps, structs), times of day and binary blobs are
//! refused with a message that names the column.
//!
//! Written against the column API rather than `parquet`'s `arrow` feature:
//! that feature (with `arrow-select`, `arrow-ipc`, `arrow-cmp` and
//! `flatbuffers` behind it) was about a fifth of a cold release build of the
//! binary, for the handful of conversions below.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::array::ColumnData;
use parquet::basic::{ConvertedType, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, DataType as ParquetType, FixedLenByteArray};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnDescriptor, Type as SchemaType};

use crate::error::DataError;
use crate::infer::{self, Inferred};
use crate::table::{Column, Kind, Table, Warning};

fn perr(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Parquet {
        path: path.into(),
        message: format!("not a readable Parquet file: {e}"),
    }
}

/// One column's values as read, in the storages tabular keeps.
pub(crate) enum Cells {
    Bool(Vec<Option<bool>>),
    Num(Vec<Option<f64>>),
    /// UTC epoch milliseconds.
    Time(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

impl Cells {
    fn nulls(&self) -> usize {
        match self {
            Cells::Bool(v) => v.iter().filter(|x| x.is_none()).count(),
            Cells::Num(v) => v.iter().filter(|x| x.is_none()).count(),
            Cells::Time(v) => v.iter().filter(|x| x.is_none()).count(),
            Cells::Text(v) => v.iter().filter(|x| x.is_none()).count(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Cells::Bool(v) => v.len(),
            Cells::Num(v) => v.len(),
            Cells::Time(v) => v.len(),
            Cells::Text(v) => v.len(),
        }
    }

    fn append(&mut self, other: Cells) {
        match (self, other) {
            (Cells::Bool(a), Cells::Bool(b)) => a.extend(b),
            (Cells::Num(a), Cells::Num(b)) => a.extend(b),
            (Cells::Time(a), Cells::Time(b)) => a.extend(b),
            (Cells::Text(a), Cells::Text(b)) => a.extend(b),
            // a column's plan is fixed for the file, so its batches agree
            _ => unreachable!("one column's batches share a plan"),
        }
    }

    /// Every cell as the text a CSV would hold (missing → None).
    fn into_text(self) -> Vec<Option<String>> {
        match self {
            Cells::Text(v) => v,
            Cells::Bool(v) => v
                .into_iter()
                .map(|b| b.map(|b| if b { "true" } else { "false" }.to_string()))
                .collect(),
            Cells::Num(v) => v.into_iter().map(|x| x.map(infer::format_number)).collect(),
            Cells::Time(v) => v
                .into_iter()
                .map(|t| t.map(infer::format_datetime_ms))
                .collect(),
        }
    }
}

/// How one leaf column's values become [`Cells`].
#[derive(Debug, Clone, Copy)]
enum Plan {
    Bool,
    Int32 {
        unsigned: bool,
        scale: i32,
    },
    Int32Date,
    Int64 {
        unsigned: bool,
        scale: i32,
    },
    /// Milliseconds = value.div_euclid(divisor) × multiplier.
    Int64Time {
        div: i64,
    },
    Int96Time,
    Float,
    Double,
    BytesText,
    BytesDecimal {
        scale: i32,
    },
    /// No annotation: text when every value is UTF-8, else refused.
    BytesUnknown,
    FixedDecimal {
        scale: i32,
    },
    FixedFloat16,
    FixedUuid,
}

fn plan(d: &ColumnDescriptor) -> Result<Plan, String> {
    let name = d.name();
    if d.max_rep_level() > 0 || d.path().parts().len() > 1 {
        return Err(format!(
            "column '{}' is nested (a list, map or struct), which tabular data cannot use; flatten it into plain columns",
            d.path().string()
        ));
    }
    let logical = d.logical_type_ref();
    let converted = d.converted_type();
    let refuse = |what: &str| {
        Err(format!(
            "column '{name}' holds {what}, which tabular data cannot use; drop it or convert it to numbers or strings"
        ))
    };
    let decimal_scale = match logical {
        Some(LogicalType::Decimal(dec)) => Some(dec.scale),
        _ if converted == ConvertedType::DECIMAL => Some(d.type_scale()),
        _ => None,
    };
    let unsigned = matches!(logical, Some(LogicalType::Integer(i)) if !i.is_signed)
        || matches!(
            converted,
            ConvertedType::UINT_8
                | ConvertedType::UINT_16
                | ConvertedType::UINT_32
                | ConvertedType::UINT_64
        );
    let time_of_day = matches!(logical, Some(LogicalType::Time(_)))
        || matches!(
            converted,
            ConvertedType::TIME_MILLIS | ConvertedType::TIME_MICROS
        );
    Ok(match d.physical_type() {
        Physical::BOOLEAN => Plan::Bool,
        Physical::INT32 if time_of_day => return refuse("times of day"),
        Physical::INT32
            if matches!(logical, Some(LogicalType::Date)) || converted == ConvertedType::DATE =>
        {
            Plan::Int32Date
        }
        Physical::INT32 => Plan::Int32 {
            unsigned,
            scale: decimal_scale.unwrap_or(0),
        },
        Physical::INT64 if time_of_day => return refuse("times of day"),
        Physical::INT64 => {
            let unit = match logical {
                Some(LogicalType::Timestamp(t)) => Some(t.unit),
                _ => match converted {
                    ConvertedType::TIMESTAMP_MILLIS => Some(TimeUnit::MILLIS),
                    ConvertedType::TIMESTAMP_MICROS => Some(TimeUnit::MICROS),
                    _ => None,
                },
            };
            match unit {
                Some(TimeUnit::MILLIS) => Plan::Int64Time { div: 1 },
                Some(TimeUnit::MICROS) => Plan::Int64Time { div: 1_000 },
                Some(TimeUnit::NANOS) => Plan::Int64Time { div: 1_000_000 },
                None => Plan::Int64 {
                    unsigned,
                    scale: decimal_scale.unwrap_or(0),
                },
            }
        }
        Physical::INT96 => Plan::Int96Time,
        Physical::FLOAT => Plan::Float,
        Physical::DOUBLE => Plan::Double,
        Physical::BYTE_ARRAY => match (logical, decimal_scale) {
            (_, Some(scale)) => Plan::BytesDecimal { scale },
            (Some(LogicalType::String | LogicalType::Enum | LogicalType::Json), _) => {
                Plan::BytesText
            }
            (None, _)
                if matches!(
                    converted,
                    ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON
                ) =>
            {
                Plan::BytesText
            }
            (None, _) if converted == ConvertedType::NONE => Plan::BytesUnknown,
            _ => return refuse("binary values"),
        },
        Physical::FIXED_LEN_BYTE_ARRAY => match (logical, decimal_scale) {
            (_, Some(scale)) => Plan::FixedDecimal { scale },
            (Some(LogicalType::Float16), _) => Plan::FixedFloat16,
            (Some(LogicalType::Uuid), _) => Plan::FixedUuid,
            _ => return refuse("fixed-length binary values"),
        },
    })
}

fn scaled(v: f64, scale: i32) -> f64 {
    if scale == 0 { v } else { v / 10f64.powi(scale) }
}

/// A big-endian two's-complement integer of any length (a Parquet decimal's
/// unscaled value) as f64.
fn be_signed(bytes: &[u8]) -> f64 {
    let mut acc = 0f64;
    for &b in bytes {
        acc = acc * 256.0 + f64::from(b);
    }
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        acc -= 2f64.powi(8 * bytes.len() as i32);
    }
    acc
}

/// An IEEE 754 half float (little-endian, as Parquet's FLOAT16 stores it).
fn half(bytes: &[u8]) -> Option<f64> {
    let [lo, hi] = bytes else { return None };
    let bits = u16::from_le_bytes([*lo, *hi]);
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    Some(
        sign * match exp {
            0 => frac * 2f64.powi(-24),
            31 if frac == 0.0 => f64::INFINITY,
            31 => f64::NAN,
            e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
        },
    )
}

fn uuid(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if hex.len() == 32 {
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    } else {
        hex
    }
}

fn general(msg: impl Into<String>) -> ParquetError {
    ParquetError::General(msg.into())
}

/// `n` rows of one column (nulls as None).
fn read_n<T: ParquetType>(
    r: &mut ColumnReaderImpl<T>,
    n: usize,
    max_def: i16,
) -> Result<Vec<Option<T::T>>, ParquetError> {
    let mut defs: Vec<i16> = Vec::with_capacity(if max_def > 0 { n } else { 0 });
    let mut vals: Vec<T::T> = Vec::with_capacity(n);
    let mut got = 0;
    while got < n {
        let defs_arg = if max_def > 0 { Some(&mut defs) } else { None };
        let (records, _, _) = r.read_records(n - got, defs_arg, None, &mut vals)?;
        if records == 0 {
            return Err(general(format!(
                "a column chunk ended after {got} of its {n} rows"
            )));
        }
        got += records;
    }
    if max_def == 0 {
        return Ok(vals.into_iter().map(Some).collect());
    }
    let mut it = vals.into_iter();
    Ok(defs
        .iter()
        .map(|&d| if d == max_def { it.next() } else { None })
        .collect())
}

fn map_all<A, B>(v: Vec<Option<A>>, f: impl Fn(A) -> B) -> Vec<Option<B>> {
    v.into_iter().map(|x| x.map(&f)).collect()
}

fn read_cells(
    reader: &mut ColumnReader,
    plan: Plan,
    n: usize,
    max_def: i16,
    name: &str,
) -> Result<Cells, ParquetError> {
    let wrong = || general(format!("column '{name}' changed type within the file"));
    Ok(match (reader, plan) {
        (ColumnReader::BoolColumnReader(r), Plan::Bool) => Cells::Bool(read_n(r, n, max_def)?),
        (ColumnReader::Int32ColumnReader(r), Plan::Int32Date) => {
            Cells::Time(map_all(read_n(r, n, max_def)?, |d| {
                i64::from(d) * 86_400_000
            }))
        }
        (ColumnReader::Int32ColumnReader(r), Plan::Int32 { unsigned, scale }) => {
            Cells::Num(map_all(read_n(r, n, max_def)?, |v| {
                let x = if unsigned {
                    f64::from(v as u32)
                } else {
                    f64::from(v)
                };
                scaled(x, scale)
            }))
        }
        (ColumnReader::Int64ColumnReader(r), Plan::Int64 { unsigned, scale }) => {
            Cells::Num(map_all(read_n(r, n, max_def)?, |v| {
                let x = if unsigned { v as u64 as f64 } else { v as f64 };
                scaled(x, scale)
            }))
        }
        (ColumnReader::Int64ColumnReader(r), Plan::Int64Time { div }) => {
            Cells::Time(map_all(read_n(r, n, max_def)?, |v| v.div_euclid(div)))
        }
        (ColumnReader::Int96ColumnReader(r), Plan::Int96Time) => {
            Cells::Time(map_all(read_n(r, n, max_def)?, |v| {
                // to_millis truncates toward zero within the day; nanos are never negative
                v.to_millis()
            }))
        }
        (ColumnReader::FloatColumnReader(r), Plan::Float) => {
            Cells::Num(map_all(read_n(r, n, max_def)?, f64::from))
        }
        (ColumnReader::DoubleColumnReader(r), Plan::Double) => Cells::Num(read_n(r, n, max_def)?),
        (ColumnReader::ByteArrayColumnReader(r), Plan::BytesText | Plan::BytesUnknown) => {
            let raw: Vec<Option<ByteArray>> = read_n(r, n, max_def)?;
            let mut out = Vec::with_capacity(raw.len());
            for (i, v) in raw.into_iter().enumerate() {
                out.push(match v {
                    None => None,
                    Some(b) => Some(
                        std::str::from_utf8(b.data())
                            .map_err(|_| {
                                if matches!(plan, Plan::BytesText) {
                                    general(format!(
                                        "column '{name}' row {} is not valid UTF-8 text",
                                        i + 1
                                    ))
                                } else {
                                    general(format!(
                                        "column '{name}' holds binary values, which tabular data cannot use; drop it or convert it to strings"
                                    ))
                                }
                            })?
                            .to_string(),
                    ),
                });
            }
            Cells::Text(out)
        }
        (ColumnReader::ByteArrayColumnReader(r), Plan::BytesDecimal { scale }) => {
            Cells::Num(map_all(read_n(r, n, max_def)?, |b: ByteArray| {
                scaled(be_signed(b.data()), scale)
            }))
        }
        (ColumnReader::FixedLenByteArrayColumnReader(r), Plan::FixedDecimal { scale }) => {
            Cells::Num(map_all(read_n(r, n, max_def)?, |b: FixedLenByteArray| {
                scaled(be_signed(b.data()), scale)
            }))
        }
        (ColumnReader::FixedLenByteArrayColumnReader(r), Plan::FixedFloat16) => {
            let raw = read_n(r, n, max_def)?;
            Cells::Num(
                raw.into_iter()
                    .map(|b| b.and_then(|b: FixedLenByteArray| half(b.data())))
                    .collect(),
            )
        }
        (ColumnReader::FixedLenByteArrayColumnReader(r), Plan::FixedUuid) => {
            Cells::Text(map_all(read_n(r, n, max_def)?, |b: FixedLenByteArray| {
                uuid(b.data())
            }))
        }
        _ => return Err(wrong()),
    })
}

/// A Parquet file read a batch of rows at a time, row group by row group.
pub(crate) struct ParquetRows {
    file: SerializedFileReader<File>,
    names: Vec<String>,
    plans: Vec<Plan>,
    max_defs: Vec<i16>,
    next_group: usize,
    readers: Vec<ColumnReader>,
    left_in_group: usize,
}

impl ParquetRows {
    pub(crate) fn open(path: &Path) -> Result<Self, DataError> {
        let f = File::open(path).map_err(|e| DataError::io(path, e))?;
        let file = SerializedFileReader::new(f).map_err(|e| perr(path, e))?;
        let schema = file.metadata().file_metadata().schema_descr_ptr();
        let mut names = Vec::new();
        let mut plans = Vec::new();
        let mut max_defs = Vec::new();
        for field in schema.root_schema().get_fields() {
            if field.is_group() {
                return Err(DataError::Unsupported {
                    path: path.into(),
                    message: format!(
                        "column '{}' is nested (a list, map or struct), which tabular data cannot use; flatten it into plain columns",
                        field.name()
                    ),
                });
            }
        }
        for d in schema.columns() {
            let p = plan(d).map_err(|message| DataError::Unsupported {
                path: path.into(),
                message,
            })?;
            names.push(d.name().to_string());
            plans.push(p);
            max_defs.push(d.max_def_level());
        }
        Ok(ParquetRows {
            file,
            names,
            plans,
            max_defs,
            next_group: 0,
            readers: Vec::new(),
            left_in_group: 0,
        })
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Up to `max` rows (across row groups), one [`Cells`] per column;
    /// `None` at the end of the file.
    pub(crate) fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Cells>>, ParquetError> {
        let max = max.max(1);
        let mut out: Option<Vec<Cells>> = None;
        let mut have = 0;
        while have < max {
            if self.left_in_group == 0 {
                if self.next_group >= self.file.num_row_groups() {
                    break;
                }
                let group = self.file.get_row_group(self.next_group)?;
                self.next_group += 1;
                self.left_in_group = usize::try_from(group.metadata().num_rows())
                    .map_err(|_| general("a row group with a negative row count"))?;
                self.readers = (0..self.names.len())
                    .map(|j| group.get_column_reader(j))
                    .collect::<Result<_, _>>()?;
                continue;
            }
            let n = (max - have).min(self.left_in_group);
            self.left_in_group -= n;
            have += n;
            let mut part = Vec::with_capacity(self.names.len());
            for (j, reader) in self.readers.iter_mut().enumerate() {
                part.push(read_cells(
                    reader,
                    self.plans[j],
                    n,
                    self.max_defs[j],
                    &self.names[j],
                )?);
            }
            match out.as_mut() {
                None => out = Some(part),
                Some(o) => o.iter_mut().zip(part).for_each(|(a, b)| a.append(b)),
            }
        }
        Ok(out)
    }
}

pub fn read_parquet(path: &Path) -> Result<Table, DataError> {
    let mut rows = ParquetRows::open(path)?;
    let whole = rows.next_batch(usize::MAX).map_err(|e| perr(path, e))?;
    let Some(whole) = whole.filter(|w| w.first().is_some_and(|c| c.len() > 0)) else {
        return Err(DataError::NoRows { path: path.into() });
    };
    let mut table = Table::default();
    for (name, cells) in rows.names().iter().zip(whole) {
        let (kind, data, bad) = convert(name, cells);
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
        table.columns.push(Column::new(name.clone(), kind, data));
    }
    Ok(table)
}

/// A column's kind from its values (text is inferred as for CSV), and
/// its array; the count is of cells that did not fit the inferred kind.
pub(crate) fn convert(name: &str, cells: Cells) -> (Kind, ColumnData, usize) {
    match cells {
        Cells::Bool(v) => (Kind::Boolean, ColumnData::Boolean(v.into()), 0),
        Cells::Num(v) => {
            let kind = numeric_or_id(name, &v);
            (kind, ColumnData::Float64(v.into()), 0)
        }
        Cells::Time(v) => (Kind::Datetime, ColumnData::Timestamp(v.into()), 0),
        Cells::Text(v) => {
            let cells: Vec<&str> = v.iter().map(|c| c.as_deref().unwrap_or("")).collect();
            let inf = infer::infer(name, &cells);
            (inf.kind, crate::csv_reader::typed(&cells, &inf), inf.bad)
        }
    }
}

/// Values as the array for a given kind (a monitor reads current data with
/// the baseline's kinds); the count is of values that did not fit.
pub(crate) fn convert_as(cells: Cells, kind: Kind) -> (ColumnData, usize) {
    let out = match (kind, cells) {
        (Kind::Numeric | Kind::IdLike, Cells::Num(v)) => ColumnData::Float64(v.into()),
        (Kind::Boolean, Cells::Bool(v)) => ColumnData::Boolean(v.into()),
        (Kind::Datetime, Cells::Time(v)) => ColumnData::Timestamp(v.into()),
        (_, other) => {
            // through text, with the CSV rules for the kind
            let before = other.nulls();
            let text = other.into_text();
            let cells: Vec<&str> = text.iter().map(|c| c.as_deref().unwrap_or("")).collect();
            let inf = Inferred {
                kind,
                bad: 0,
                first_bad: None,
            };
            let a = crate::csv_reader::typed(&cells, &inf);
            let bad = a.null_count().saturating_sub(before);
            return (a, bad);
        }
    };
    (out, 0)
}

fn numeric_or_id(name: &str, v: &[Option<f64>]) -> Kind {
    if v.len() < 20 || v.iter().any(Option::is_none) {
        return Kind::Numeric;
    }
    let cells: Vec<String> = v
        .iter()
        .map(|x| infer::format_number(x.unwrap_or(f64::NAN)))
        .collect();
    let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
    infer::infer(name, &refs).kind
}

/// Write a table as Parquet (snappy): numbers as DOUBLE, booleans as
/// BOOLEAN, text as UTF-8 strings, datetimes as INT64 UTC milliseconds;
/// every column optional (nulls are missing values).
pub fn write_parquet(table: &Table, path: &Path) -> Result<(), DataError> {
    let wr = |e: ParquetError| perr(path, e);
    let mut fields = Vec::with_capacity(table.columns.len());
    for c in &table.columns {
        let (physical, logical) = match &*c.data {
            ColumnData::Float64(_) => (Physical::DOUBLE, None),
            ColumnData::Boolean(_) => (Physical::BOOLEAN, None),
            ColumnData::Utf8(_) => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            ColumnData::Timestamp(_) => (
                Physical::INT64,
                Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
            ),
        };
        let t = SchemaType::primitive_type_builder(&c.name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()
            .map_err(wr)?;
        fields.push(Arc::new(t));
    }
    let schema = SchemaType::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .map_err(wr)?;
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let file = File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut w = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).map_err(wr)?;
    let mut group = w.next_row_group().map_err(wr)?;
    let mut columns = table.columns.iter();
    while let Some(mut cw) = group.next_column().map_err(wr)? {
        let Some(c) = columns.next() else {
            return Err(perr(path, "more Parquet columns than table columns"));
        };
        let a = &*c.data;
        let defs: Vec<i16> = (0..a.len()).map(|i| i16::from(a.is_valid(i))).collect();
        let mismatch = || {
            perr(
                path,
                format!("column '{}' changed storage while written", c.name),
            )
        };
        match (cw.untyped(), a) {
            (ColumnWriter::DoubleColumnWriter(t), ColumnData::Float64(a)) => {
                let v: Vec<f64> = a.iter().flatten().collect();
                t.write_batch(&v, Some(&defs), None).map_err(wr)?;
            }
            (ColumnWriter::BoolColumnWriter(t), ColumnData::Boolean(a)) => {
                let v: Vec<bool> = a.iter().flatten().collect();
                t.write_batch(&v, Some(&defs), None).map_err(wr)?;
            }
            (ColumnWriter::ByteArrayColumnWriter(t), ColumnData::Utf8(a)) => {
                let v: Vec<ByteArray> = a.iter().flatten().map(ByteArray::from).collect();
                t.write_batch(&v, Some(&defs), None).map_err(wr)?;
            }
            (ColumnWriter::Int64ColumnWriter(t), ColumnData::Timestamp(a)) => {
                let v: Vec<i64> = a.iter().flatten().collect();
                t.write_batch(&v, Some(&defs), None).map_err(wr)?;
            }
            _ => return Err(mismatch()),
        }
        cw.close().map_err(wr)?;
    }
    group.close().map_err(wr)?;
    w.close().map_err(wr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_big_endian_twos_complement() {
        assert_eq!(be_signed(&[0x00, 0x7b]), 123.0);
        assert_eq!(be_signed(&[0xff, 0x85]), -123.0);
        assert_eq!(be_signed(&[0x80]), -128.0);
        assert_eq!(be_signed(&[]), 0.0);
        assert_eq!(scaled(be_signed(&[0xff, 0x85]), 2), -1.23);
    }

    #[test]
    fn half_floats_decode_every_class() {
        assert_eq!(half(&0x3c00u16.to_le_bytes()), Some(1.0));
        assert_eq!(half(&0xc000u16.to_le_bytes()), Some(-2.0));
        assert_eq!(half(&0x3800u16.to_le_bytes()), Some(0.5));
        assert_eq!(half(&0x0001u16.to_le_bytes()), Some(2f64.powi(-24)));
        assert_eq!(half(&0x7bffu16.to_le_bytes()), Some(65504.0));
        assert_eq!(half(&0x7c00u16.to_le_bytes()), Some(f64::INFINITY));
        assert!(half(&0x7e00u16.to_le_bytes()).is_some_and(f64::is_nan));
        assert_eq!(half(&[1]), None);
    }

    #[test]
    fn uuids_print_in_their_usual_groups() {
        let b: Vec<u8> = (0u8..16).collect();
        assert_eq!(uuid(&b), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }
}
