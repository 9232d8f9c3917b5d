//! # tabular — data in
//!
//! Brief overview: [`read_path`] loads a CSV or Parquet file into a
//! [`Table`] of typed columns ([`array`]), one [`Column`] per field, each with an
//! inferred [`Kind`] (numeric, boolean, categorical, datetime, free text,
//! id-like). A malformed file is a [`DataError`] naming the file, line and
//! column and what to fix; a bad cell in an otherwise good column becomes a
//! missing value and a [`Warning`] with a count.
//!
//! [`Profile`] summarises a table per column (counts, missing, distinct via
//! HyperLogLog, moments, KLL quantiles and histogram, top categories);
//! profiles of two halves merge into the profile of the whole within sketch
//! error, and serialise to versioned JSON (Model Monitor stores them as
//! baselines). [`split`] reproduces the shared datasets' train/test split.
//!
//! Pure compute: no network, no database.
//!
//! ```no_run
//! let table = tabular::read_path("data/adult.csv".as_ref()).unwrap();
//! for c in &table.columns {
//!     println!("{} {:?}", c.name, c.kind);
//! }
//! let profile = tabular::Profile::of(&table);
//! println!("{}", serde_json::to_string_pretty(&profile).unwrap());
//! ```

pub mod array;
pub mod chunked;
mod csv_reader;
mod error;
mod infer;
mod parquet_reader;
pub mod profile;
pub mod sketch;
pub mod split;
mod table;

pub use chunked::{ChunkOptions, Chunks, read_chunks};
pub use csv_reader::{CsvOptions, read_csv};
pub use error::DataError;
pub use infer::{
    MISSING_MARKERS, civil_from_days, days_from_civil, format_datetime_ms, format_number,
    is_missing, parse_bool, parse_datetime, parse_number,
};
pub use parquet_reader::{read_parquet, write_parquet};
pub use profile::Profile;
pub use table::{Column, Kind, Table, Warning};

/// Read a CSV or Parquet file, choosing by content (Parquet's `PAR1` magic)
/// and extension.
pub fn read_path(path: &std::path::Path) -> Result<Table, DataError> {
    let mut head = [0u8; 4];
    let is_parquet = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        f.read(&mut head).map_err(|e| DataError::io(path, e))? == 4 && &head == b"PAR1"
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !is_parquet
        && let Some(kind) = match ext.as_str() {
            "xlsx" | "xlsm" | "xls" | "ods" => Some("a spreadsheet"),
            "json" | "jsonl" | "ndjson" => Some("JSON"),
            "zip" | "gz" | "bz2" | "xz" | "zst" | "7z" => Some("a compressed archive"),
            "feather" | "arrow" | "orc" | "avro" => Some("a columnar format Atelier does not read"),
            _ => None,
        }
    {
        return Err(DataError::Unsupported {
            path: path.to_path_buf(),
            message: format!(
                "this is {kind} (.{ext}), not CSV or Parquet; export the data as CSV or Parquet"
            ),
        });
    }
    if is_parquet || ext == "parquet" || ext == "pq" {
        read_parquet(path)
    } else {
        read_csv(path, &CsvOptions::default())
    }
}
