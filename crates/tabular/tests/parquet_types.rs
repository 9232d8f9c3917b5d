//! Every Arrow type a Parquet file from pandas, polars or pyarrow commonly
//! holds reads as the kind and values a user expects: integers of each width
//! and sign, half floats, decimals as numbers; dates and timestamps of every
//! unit (and a time zone) as UTC epoch milliseconds, floored; strings, large
//! strings, string views and dictionaries as text. `data/arrow_types.py`
//! wrote the file (pyarrow 25.0.1); the expected values below are worked out
//! by hand from that script, not read back from this reader.

use std::collections::HashMap;
use std::path::PathBuf;

use tabular::{ChunkOptions, Kind, Table};

fn file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/arrow_types.parquet")
}

fn col<'a>(t: &'a Table, name: &str) -> &'a tabular::Column {
    t.column(name).unwrap_or_else(|| panic!("no column {name}"))
}

/// Rows 0, 1, 3 (null in every column) and 4 as numbers.
fn nums(t: &Table, name: &str) -> [Option<f64>; 4] {
    let c = col(t, name);
    [c.f64_at(0), c.f64_at(1), c.f64_at(3), c.f64_at(4)]
}

fn check_whole_file(t: &Table) {
    assert_eq!(t.rows(), 24);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    for name in [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f16", "f32", "f64", "dec",
    ] {
        assert_eq!(col(t, name).kind, Kind::Numeric, "{name}");
        assert_eq!(col(t, name).missing(), 1, "{name}");
    }
    assert_eq!(nums(t, "i8"), [Some(0.0), Some(1.0), None, Some(4.0)]);
    assert_eq!(nums(t, "i16"), [Some(0.0), Some(-1.0), None, Some(-4.0)]);
    assert_eq!(nums(t, "i32"), [Some(0.0), Some(1.0), None, Some(4.0)]);
    assert_eq!(nums(t, "i64"), [Some(0.0), Some(1e10), None, Some(4e10)]);
    assert_eq!(nums(t, "u8"), [Some(0.0), Some(1.0), None, Some(4.0)]);
    assert_eq!(nums(t, "u16"), [Some(0.0), Some(1.0), None, Some(4.0)]);
    assert_eq!(nums(t, "u32"), [Some(0.0), Some(1.0), None, Some(4.0)]);
    // 2^63 + v: beyond i64, and f64 rounds the +v away
    let big = 9_223_372_036_854_775_808.0;
    assert_eq!(nums(t, "u64"), [Some(big), Some(big), None, Some(big)]);
    assert_eq!(nums(t, "f16"), [Some(0.5), Some(1.5), None, Some(4.5)]);
    assert_eq!(nums(t, "f32"), [Some(0.25), Some(1.25), None, Some(4.25)]);
    assert_eq!(nums(t, "f64"), [Some(0.0), Some(0.125), None, Some(0.5)]);
    // decimal(9, 3): v/100 - 1.5
    let dec = nums(t, "dec");
    assert_eq!(dec[2], None);
    for (got, want) in [(dec[0], -1.5), (dec[1], -1.49), (dec[3], -1.46)] {
        assert!((got.unwrap() - want).abs() < 1e-12, "dec {got:?} != {want}");
    }

    assert_eq!(col(t, "flag").kind, Kind::Boolean);
    assert_eq!(col(t, "flag").str_at(0).as_deref(), Some("true"));
    assert_eq!(col(t, "flag").str_at(1).as_deref(), Some("false"));
    assert_eq!(col(t, "flag").str_at(3), None);

    for name in ["day", "ts_s", "ts_us_tz", "ts_ns"] {
        assert_eq!(col(t, name).kind, Kind::Datetime, "{name}");
    }
    // 2024-02-28 + v days
    let feb28 = 1_709_078_400_000.0;
    assert_eq!(
        nums(t, "day"),
        [
            Some(feb28),
            Some(feb28 + 86_400_000.0),
            None,
            Some(feb28 + 4.0 * 86_400_000.0)
        ]
    );
    // 1969-12-31T23:59:58 + v s, before the epoch
    assert_eq!(
        nums(t, "ts_s"),
        [Some(-2000.0), Some(-1000.0), None, Some(2000.0)]
    );
    // 2024-05-01T12:00:00.0015Z + v h, stored as UTC whatever the zone; 1.5 ms floors to 1
    let noon = 1_714_564_800_001.0;
    assert_eq!(
        nums(t, "ts_us_tz"),
        [
            Some(noon),
            Some(noon + 3_600_000.0),
            None,
            Some(noon + 4.0 * 3_600_000.0)
        ]
    );
    // 1969-12-31T23:59:59.999999999 + v s: one nanosecond before the epoch is in its last millisecond
    assert_eq!(
        nums(t, "ts_ns"),
        [Some(-1.0), Some(999.0), None, Some(3999.0)]
    );

    for name in ["s", "ls", "sv", "dict"] {
        let c = col(t, name);
        assert_eq!(c.kind, Kind::Categorical, "{name}");
        assert_eq!(
            [c.str_at(0), c.str_at(1), c.str_at(3), c.str_at(4)],
            [
                Some("cat0".into()),
                Some("cat1".into()),
                None,
                Some("cat4".into())
            ],
            "{name}"
        );
    }
    // numbers written as text are numbers, as in a CSV
    assert_eq!(col(t, "nums_as_text").kind, Kind::Numeric);
    assert_eq!(
        nums(t, "nums_as_text"),
        [Some(0.0), Some(2.0), None, Some(8.0)]
    );
}

#[test]
fn every_common_arrow_type_reads_as_its_kind_and_value() {
    let t = tabular::read_path(&file()).unwrap();
    check_whole_file(&t);
}

#[test]
fn chunked_reads_agree_with_the_whole_file() {
    let chunks: Vec<Table> = tabular::read_chunks(&file(), &ChunkOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(chunks.len(), 1);
    check_whole_file(&chunks[0]);
}

#[test]
fn chunked_reads_with_a_given_kind_go_through_text() {
    // a monitor reads captured data with the baseline's kinds, whatever the file says
    let kinds: HashMap<String, Kind> = [
        ("flag", Kind::Categorical),
        ("i32", Kind::Categorical),
        ("dec", Kind::Categorical),
        ("day", Kind::Categorical),
        ("dict", Kind::Categorical),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let opts = ChunkOptions { rows: 10, kinds };
    let chunks: Vec<Table> = tabular::read_chunks(&file(), &opts)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        chunks.iter().map(Table::rows).collect::<Vec<_>>(),
        [10, 10, 4]
    );
    let t = &chunks[0];
    let texts = |name: &str| {
        let c = col(t, name);
        assert_eq!(c.kind, Kind::Categorical, "{name}");
        [c.str_at(0), c.str_at(1), c.str_at(3)]
    };
    assert_eq!(
        texts("flag"),
        [Some("true".into()), Some("false".into()), None]
    );
    assert_eq!(texts("i32"), [Some("0".into()), Some("1".into()), None]);
    assert_eq!(
        texts("dec"),
        [Some("-1.5".into()), Some("-1.49".into()), None]
    );
    assert_eq!(
        texts("dict"),
        [Some("cat0".into()), Some("cat1".into()), None]
    );
    let day = texts("day");
    assert!(
        day[1]
            .as_deref()
            .is_some_and(|d| d.starts_with("2024-02-29")),
        "{day:?}"
    );
    assert_eq!(day[2], None);
}
