//! Arrow arrays from a Parquet file into the three storages tabular keeps:
//! `f64` numbers, UTC epoch milliseconds, and text.
//!
//! Written here rather than calling `arrow-cast`: that crate (with
//! `arrow-ord`, `arrow-cmp` and `lexical-*` it pulls in) was about two CPU
//! minutes of a cold release build for these few conversions, and it refused
//! timestamps with a named time zone ("Europe/Paris") unless `chrono-tz` was
//! compiled in too. An Arrow timestamp is UTC epoch time whatever its zone
//! says, so none is needed.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type,
    Decimal256Type, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, Float64Array, StringArray};
use arrow_schema::{DataType, TimeUnit};

fn map<T: ArrowPrimitiveType>(a: &dyn Array, f: impl Fn(T::Native) -> f64) -> Float64Array {
    a.as_primitive::<T>().unary::<_, Float64Type>(f)
}

fn ms<T: ArrowPrimitiveType>(a: &dyn Array, f: impl Fn(T::Native) -> i64) -> ArrayRef {
    Arc::new(
        a.as_primitive::<T>()
            .unary::<_, TimestampMillisecondType>(f)
            .with_timezone("UTC"),
    )
}

fn scaled(scale: i8) -> impl Fn(f64) -> f64 {
    let p = 10f64.powi(i32::from(scale.unsigned_abs()));
    move |v| if scale >= 0 { v / p } else { v * p }
}

/// A numeric column (integers of any width, half/single/double floats,
/// decimals) as `f64`, nulls kept; `None` for any other type.
pub(crate) fn to_f64(a: &dyn Array) -> Option<ArrayRef> {
    let out = match a.data_type() {
        DataType::Int8 => map::<Int8Type>(a, f64::from),
        DataType::Int16 => map::<Int16Type>(a, f64::from),
        DataType::Int32 => map::<Int32Type>(a, f64::from),
        DataType::Int64 => map::<Int64Type>(a, |v| v as f64),
        DataType::UInt8 => map::<UInt8Type>(a, f64::from),
        DataType::UInt16 => map::<UInt16Type>(a, f64::from),
        DataType::UInt32 => map::<UInt32Type>(a, f64::from),
        DataType::UInt64 => map::<UInt64Type>(a, |v| v as f64),
        DataType::Float16 => map::<Float16Type>(a, |v| v.to_f64()),
        DataType::Float32 => map::<Float32Type>(a, f64::from),
        DataType::Float64 => a.as_primitive::<Float64Type>().clone(),
        DataType::Decimal32(_, s) => {
            let f = scaled(*s);
            map::<Decimal32Type>(a, |v| f(f64::from(v)))
        }
        DataType::Decimal64(_, s) => {
            let f = scaled(*s);
            map::<Decimal64Type>(a, |v| f(v as f64))
        }
        DataType::Decimal128(_, s) => {
            let f = scaled(*s);
            map::<Decimal128Type>(a, |v| f(v as f64))
        }
        DataType::Decimal256(_, s) => {
            let f = scaled(*s);
            map::<Decimal256Type>(a, |v| {
                let (low, high) = v.to_parts();
                f(high as f64 * 2f64.powi(128) + low as f64)
            })
        }
        _ => return None,
    };
    Some(Arc::new(out))
}

/// A date or timestamp column (any unit, any zone) as UTC epoch
/// milliseconds, floored (a nanosecond before the epoch is -1 ms);
/// `None` for any other type.
pub(crate) fn to_epoch_ms(a: &dyn Array) -> Option<ArrayRef> {
    Some(match a.data_type() {
        DataType::Date32 => ms::<Date32Type>(a, |d| i64::from(d) * 86_400_000),
        DataType::Date64 => ms::<Date64Type>(a, |v| v),
        DataType::Timestamp(TimeUnit::Second, _) => {
            ms::<TimestampSecondType>(a, |v| v.saturating_mul(1000))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => ms::<TimestampMillisecondType>(a, |v| v),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            ms::<TimestampMicrosecondType>(a, |v| v.div_euclid(1000))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            ms::<TimestampNanosecondType>(a, |v| v.div_euclid(1_000_000))
        }
        _ => return None,
    })
}

/// Any column tabular can read, as text: strings of every layout,
/// dictionaries (decoded), booleans as `true`/`false`, numbers as the CSV
/// reader writes them, dates and timestamps as ISO 8601 UTC. `None` for
/// types tabular cannot use (lists, structs, binary, …).
pub(crate) fn to_text(a: &dyn Array) -> Option<StringArray> {
    Some(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().clone(),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().collect(),
        DataType::Utf8View => a.as_string_view().iter().collect(),
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary_opt()?;
            let decoded = arrow_select::take::take(d.values().as_ref(), d.keys(), None).ok()?;
            return to_text(decoded.as_ref());
        }
        DataType::Boolean => a
            .as_boolean()
            .iter()
            .map(|v| v.map(|b| if b { "true" } else { "false" }))
            .collect(),
        d if d.is_numeric() => {
            let f = to_f64(a)?;
            f.as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map(crate::infer::format_number))
                .collect()
        }
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => {
            let t = to_epoch_ms(a)?;
            t.as_primitive::<TimestampMillisecondType>()
                .iter()
                .map(|v| v.map(crate::infer::format_datetime_ms))
                .collect()
        }
        _ => return None,
    })
}
