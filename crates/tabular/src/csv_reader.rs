//! CSV in: UTF-8 (BOM stripped), delimiter detected among `,` `;` `\t` `|`,
//! RFC 4180 quoting, a header row; cells read as text, then typed per
//! column by `infer`.

use std::path::Path;

use crate::array::ColumnData;

use crate::error::DataError;
use crate::infer::{self, Inferred};
use crate::table::{Column, Kind, Table, Warning};

#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// Force a delimiter instead of detecting one.
    pub delimiter: Option<u8>,
}

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Pick the delimiter that splits the first lines into the same number
/// (more than one) of fields most consistently; `,` when nothing does.
pub(crate) fn sniff(sample: &[u8]) -> u8 {
    let mut best = (b',', 0usize, 0usize);
    for &d in &CANDIDATES {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(d)
            .has_headers(false)
            .flexible(true)
            .from_reader(sample);
        let counts: Vec<usize> = rdr
            .records()
            .take(20)
            .filter_map(|r| r.ok())
            .map(|r| r.len())
            .collect();
        // the last sampled line may be cut off mid-way
        let counts = if counts.len() > 2 {
            &counts[..counts.len() - 1]
        } else {
            &counts[..]
        };
        let Some(&first) = counts.first() else {
            continue;
        };
        let agree = counts.iter().filter(|&&c| c == first).count();
        if first > 1 && (agree > best.1 || (agree == best.1 && first > best.2)) {
            best = (d, agree, first);
        }
    }
    best.0
}

pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Table, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_csv(path, &bytes, opts)
}

pub(crate) fn parse_csv(path: &Path, bytes: &[u8], opts: &CsvOptions) -> Result<Table, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DataError::Empty { path: path.into() });
    }
    if let Some(offset) = bytes.iter().take(64 * 1024).position(|&b| b == 0) {
        return Err(DataError::Binary {
            path: path.into(),
            offset,
        });
    }
    let delim = opts
        .delimiter
        .unwrap_or_else(|| sniff(&bytes[..bytes.len().min(64 * 1024)]));
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(true)
        .from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (i, h) in header.iter().enumerate() {
        if !seen.insert(h.as_str()) {
            return Err(DataError::DuplicateColumn {
                path: path.into(),
                index: i + 1,
                name: h.clone(),
            });
        }
    }
    let width = header.len();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); width];
    let mut lines: Vec<u64> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, e)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) && width > 1 {
            continue; // a blank line
        }
        if record.len() != width {
            return Err(DataError::Malformed {
                path: path.into(),
                line,
                message: format!(
                    "this row has {} fields but the header has {width} (delimiter {:?}); quote cells that contain the delimiter, or fix the row",
                    record.len(),
                    delim as char
                ),
            });
        }
        for (col, cell) in cells.iter_mut().zip(record.iter()) {
            col.push(cell.to_string());
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(DataError::NoRows { path: path.into() });
    }
    let mut table = Table::default();
    for (name, col) in header.into_iter().zip(cells) {
        let refs: Vec<&str> = col.iter().map(String::as_str).collect();
        let inf = infer::infer(&name, &refs);
        if inf.bad > 0 {
            let i = inf.first_bad.unwrap_or(0);
            table.warnings.push(Warning {
                column: name.clone(),
                count: inf.bad,
                example: refs[i].to_string(),
                line: lines.get(i).copied().unwrap_or(0),
                message: format!(
                    "cells are not {}; they were read as missing values",
                    kind_noun(inf.kind)
                ),
            });
        }
        table
            .columns
            .push(Column::new(name, inf.kind, typed(&refs, &inf)));
    }
    Ok(table)
}

fn kind_noun(k: Kind) -> &'static str {
    match k {
        Kind::Numeric | Kind::IdLike => "numbers",
        Kind::Datetime => "dates",
        Kind::Boolean => "true/false values",
        Kind::Categorical | Kind::Text => "text",
    }
}

/// Cells as the storage for their kind (missing and unparsable → null).
pub(crate) fn typed(cells: &[&str], inf: &Inferred) -> ColumnData {
    /// Each present cell through `parse`; missing cells are None.
    fn each<'a, T>(cells: &[&'a str], parse: impl Fn(&'a str) -> Option<T>) -> Vec<Option<T>> {
        cells
            .iter()
            .map(|c| if infer::is_missing(c) { None } else { parse(c) })
            .collect()
    }
    let numeric_ids = inf.kind == Kind::IdLike
        && cells
            .iter()
            .filter(|c| !infer::is_missing(c))
            .all(|c| infer::parse_number(c).is_some());
    match inf.kind {
        Kind::Numeric => ColumnData::Float64(each(cells, infer::parse_number).into()),
        Kind::IdLike if numeric_ids => ColumnData::Float64(each(cells, infer::parse_number).into()),
        Kind::Boolean => ColumnData::Boolean(each(cells, infer::parse_bool).into()),
        Kind::Datetime => ColumnData::Timestamp(each(cells, infer::parse_datetime).into()),
        Kind::Categorical | Kind::Text | Kind::IdLike => {
            ColumnData::Utf8(each(cells, |c| Some(c.trim())).into())
        }
    }
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8; save the file as UTF-8",
            err.field() + 1
        ),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!(
                "this row has {len} fields but the header has {expected_len}; quote cells that contain the delimiter"
            )
        }
        _ => e.to_string(),
    };
    DataError::Malformed {
        path: path.into(),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Table, DataError> {
        parse_csv(Path::new("t.csv"), s.as_bytes(), &CsvOptions::default())
    }

    #[test]
    fn detects_delimiters_bom_quotes_and_missing() {
        for text in [
            "\u{feff}a,b,c\n1,\"x, y\",2020-01-01\n2,z,\n",
            "a;b;c\n1;\"x, y\";2020-01-01\n2;z;\n",
            "a\tb\tc\n1\t\"x, y\"\t2020-01-01\n2\tz\tNA\n",
        ] {
            let t = parse(text).unwrap();
            assert_eq!(
                t.columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
                ["a", "b", "c"],
                "{text:?}"
            );
            assert_eq!(t.columns[0].kind, Kind::Numeric);
            assert_eq!(t.columns[1].str_at(0).as_deref(), Some("x, y"));
            assert_eq!(t.columns[2].kind, Kind::Datetime);
            assert_eq!(t.columns[2].missing(), 1);
        }
    }

    #[test]
    fn clear_errors_for_bad_files() {
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = parse("a,b\n").unwrap_err().to_string();
        assert!(e.contains("no data rows"), "{e}");
        let e = parse("a,b\n1,2\n3,4,5\n").unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("3 fields") && e.contains("header has 2"),
            "{e}"
        );
        let e = parse("a,a\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("more than once"), "{e}");
        let e = parse_csv(
            Path::new("g.bin"),
            b"\x89PNG\r\n\x1a\n\0\0\0",
            &CsvOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("binary"), "{e}");
        let e = parse_csv(
            Path::new("l.csv"),
            b"a,b\n1,\xff\xfe\n",
            &CsvOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("UTF-8") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn bad_cells_become_missing_with_a_warning() {
        let mut s = String::from("x,y\n");
        for i in 0..40 {
            s.push_str(&format!("{i},{}\n", i % 3));
        }
        s.push_str("oops,1\n");
        let t = parse(&s).unwrap();
        assert_eq!(t.columns[0].kind, Kind::Numeric);
        assert_eq!(t.columns[0].missing(), 1);
        assert_eq!(t.warnings.len(), 1);
        assert_eq!((t.warnings[0].count, t.warnings[0].line), (1, 42));
    }
}
