//! Parquet layouts beyond one row group of flat columns, as other writers
//! produce them: several row groups (read whole and in chunks that cross
//! them), Spark's legacy INT96 timestamps, unsigned integers, UUIDs, and
//! unannotated binary that holds text; and the columns tabular refuses
//! (nested, binary that is not text), named in the error. The files were
//! written by `data/parquet_layouts.py` (pyarrow 25.0.1); the expected values
//! are worked out from that script.

use std::path::PathBuf;

use tabular::{ChunkOptions, Kind, Table};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn col<'a>(t: &'a Table, name: &str) -> &'a tabular::Column {
    t.column(name).unwrap_or_else(|| panic!("no column {name}"))
}

/// Row `i` of the table (0-based over the whole file) against the script.
fn check_row(t: &Table, at: usize, i: usize) {
    assert_eq!(col(t, "n").f64_at(at), Some(i as f64));
    // 2000-01-01T00:00:00.0009 + i days - 1 s, floored to the millisecond
    let ms = 946_684_800_000.0 + i as f64 * 86_400_000.0 - 1000.0;
    assert_eq!(col(t, "spark_ts").f64_at(at), Some(ms), "row {i}");
    assert_eq!(col(t, "u").f64_at(at), Some((u32::MAX as usize - i) as f64));
    assert_eq!(
        col(t, "id").str_at(at).as_deref(),
        Some(format!("00000000-0000-0000-0000-{i:012x}").as_str())
    );
    assert_eq!(
        col(t, "raw").str_at(at).as_deref(),
        Some(format!("r{}", i % 3).as_str())
    );
}

#[test]
fn several_row_groups_read_whole() {
    let t = tabular::read_path(&data("row_groups.parquet")).unwrap();
    assert_eq!(t.rows(), 25);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(col(&t, "spark_ts").kind, Kind::Datetime);
    assert_eq!(col(&t, "u").kind, Kind::Numeric);
    assert_eq!(col(&t, "id").kind, Kind::IdLike);
    assert_eq!(col(&t, "raw").kind, Kind::Categorical);
    for i in 0..25 {
        check_row(&t, i, i);
    }
}

#[test]
fn chunks_cross_row_group_boundaries() {
    // row groups of 10, 10 and 5 rows; chunks of 7
    let opts = ChunkOptions {
        rows: 7,
        ..Default::default()
    };
    let chunks: Vec<Table> = tabular::read_chunks(&data("row_groups.parquet"), &opts)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        chunks.iter().map(Table::rows).collect::<Vec<_>>(),
        [7, 7, 7, 4]
    );
    let mut i = 0;
    for c in &chunks {
        for at in 0..c.rows() {
            check_row(c, at, i);
            i += 1;
        }
    }
}

#[test]
fn nested_and_binary_columns_are_refused_by_name() {
    let e = tabular::read_path(&data("nested.parquet"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'tags'") && e.contains("nested") && e.contains("flatten"),
        "{e}"
    );
    let e = tabular::read_path(&data("binary.parquet"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("'blob'") && e.contains("binary"), "{e}");
    // the chunked reader says the same before reading a row
    let e = tabular::read_chunks(&data("nested.parquet"), &ChunkOptions::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("'tags'"), "{e}");
}

#[test]
fn what_tabular_writes_pyarrow_layouts_read_back() {
    // write_parquet's output read by this reader: kinds and values survive
    let t = tabular::read_path(&data("row_groups.parquet")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    tabular::write_parquet(&t, &out).unwrap();
    let back = tabular::read_path(&out).unwrap();
    assert_eq!(back.rows(), 25);
    for c in &t.columns {
        assert_eq!(col(&back, &c.name).kind, c.kind, "{}", c.name);
    }
    for i in 0..25 {
        check_row(&back, i, i);
    }
}
