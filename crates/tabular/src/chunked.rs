//! Streaming reads: a CSV or Parquet file as a sequence of [`Table`]
//! chunks of at most `rows` rows, so that a file larger than memory can be
//! profiled chunk by chunk (Model Monitor's baselines and checks).
//!
//! Column kinds are decided once: from the first chunk by the rules of
//! `infer.rs` (the same rules [`crate::read_path`] applies to the whole
//! file), or given by the caller per column name (a monitor check reads
//! current data with the baseline's kinds). Later chunks are typed with
//! those kinds; cells that do not fit become missing values and are counted
//! in each chunk's [`Table::warnings`] (one [`Warning`] per column with bad
//! cells, `count` for that chunk).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::infer::{self, Inferred};
use crate::parquet_reader::ParquetRows;
use crate::table::{Column, Kind, Table, Warning};

/// How to cut a file into chunks.
#[derive(Debug, Clone)]
pub struct ChunkOptions {
    /// Rows per chunk (at least 1).
    pub rows: usize,
    /// Kinds to use for these columns instead of inferring them.
    pub kinds: HashMap<String, Kind>,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            rows: 65_536,
            kinds: HashMap::new(),
        }
    }
}

enum Source {
    Csv {
        rdr: csv::Reader<BufReader<File>>,
        delim: u8,
    },
    Parquet {
        reader: ParquetRows,
    },
}

/// An iterator of [`Table`] chunks over one file (see the module docs).
pub struct Chunks {
    path: PathBuf,
    source: Source,
    names: Vec<String>,
    rows: usize,
    forced: HashMap<String, Kind>,
    /// Decided kinds, once the first chunk has been read.
    kinds: Option<Vec<Kind>>,
    seen_rows: u64,
    done: bool,
}

/// Open a CSV or Parquet file (chosen as [`crate::read_path`] chooses) for
/// reading in chunks. The header (or schema) is read here; an empty file or
/// a header with duplicate names is an error now, a file with no data rows
/// on the first [`Iterator::next`].
pub fn read_chunks(path: &Path, opts: &ChunkOptions) -> Result<Chunks, DataError> {
    let mut head = [0u8; 4];
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let n = f.read(&mut head).map_err(|e| DataError::io(path, e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let rows = opts.rows.max(1);
    let (source, names) = if (n == 4 && &head == b"PAR1") || ext == "parquet" || ext == "pq" {
        let reader = ParquetRows::open(path)?;
        let names = reader.names().to_vec();
        (Source::Parquet { reader }, names)
    } else {
        let mut sample = Vec::with_capacity(64 * 1024);
        File::open(path)
            .map_err(|e| DataError::io(path, e))?
            .take(64 * 1024)
            .read_to_end(&mut sample)
            .map_err(|e| DataError::io(path, e))?;
        let body = sample.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&sample);
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(DataError::Empty { path: path.into() });
        }
        if let Some(offset) = body.iter().position(|&b| b == 0) {
            return Err(DataError::Binary {
                path: path.into(),
                offset,
            });
        }
        let delim = crate::csv_reader::sniff(body);
        let open = || -> Result<BufReader<File>, DataError> {
            Ok(BufReader::with_capacity(
                1 << 20,
                File::open(path).map_err(|e| DataError::io(path, e))?,
            ))
        };
        let mut file = open()?;
        // skip a UTF-8 byte-order mark (else start again from the top)
        let mut bom = [0u8; 3];
        let had = file.read(&mut bom).map_err(|e| DataError::io(path, e))?;
        if !(had == 3 && bom == *b"\xEF\xBB\xBF") {
            file = open()?;
        }
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(true)
            .from_reader(file);
        let names: Vec<String> = rdr
            .headers()
            .map_err(|e| csv_err(path, e))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        (Source::Csv { rdr, delim }, names)
    };
    let mut seen = std::collections::HashSet::new();
    for (i, h) in names.iter().enumerate() {
        if !seen.insert(h.as_str()) {
            return Err(DataError::DuplicateColumn {
                path: path.into(),
                index: i + 1,
                name: h.clone(),
            });
        }
    }
    Ok(Chunks {
        path: path.into(),
        source,
        names,
        rows,
        forced: opts.kinds.clone(),
        kinds: None,
        seen_rows: 0,
        done: false,
    })
}

fn perr(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Parquet {
        path: path.into(),
        message: format!("not a readable Parquet file: {e}"),
    }
}

fn csv_err(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8; save the file as UTF-8",
            err.field() + 1
        ),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "this row has {len} fields but the header has {expected_len}; quote cells that contain the delimiter"
        ),
        _ => e.to_string(),
    };
    DataError::Malformed {
        path: path.into(),
        line,
        message,
    }
}

impl Chunks {
    /// Column names, in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Kinds of the columns, once the first chunk has been read.
    pub fn kinds(&self) -> Option<&[Kind]> {
        self.kinds.as_deref()
    }

    /// Data rows read so far.
    pub fn rows_read(&self) -> u64 {
        self.seen_rows
    }

    fn kind_for(&self, i: usize) -> Option<Kind> {
        match &self.kinds {
            Some(k) => Some(k[i]),
            None => self.forced.get(&self.names[i]).copied(),
        }
    }

    fn next_csv(&mut self) -> Result<Option<Table>, DataError> {
        let Source::Csv { rdr, delim } = &mut self.source else {
            return Ok(None);
        };
        let width = self.names.len();
        let mut records: Vec<csv::StringRecord> = Vec::with_capacity(self.rows);
        let mut lines: Vec<u64> = Vec::with_capacity(self.rows);
        let mut record = csv::StringRecord::new();
        while records.len() < self.rows {
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_err(&self.path, e)),
            }
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) && width > 1
            {
                continue;
            }
            if record.len() != width {
                return Err(DataError::Malformed {
                    path: self.path.clone(),
                    line,
                    message: format!(
                        "this row has {} fields but the header has {width} (delimiter {:?}); quote cells that contain the delimiter, or fix the row",
                        record.len(),
                        *delim as char
                    ),
                });
            }
            records.push(std::mem::take(&mut record));
            lines.push(line);
        }
        if records.is_empty() {
            return Ok(None);
        }
        // columns are typed independently: spread them over the cores
        let fixed: Vec<Option<Kind>> = (0..width).map(|c| self.kind_for(c)).collect();
        let names = &self.names;
        let convert = |c: usize| -> (Kind, crate::array::ColumnData, Option<Warning>) {
            let name = &names[c];
            let refs: Vec<&str> = records.iter().map(|r| r.get(c).unwrap_or("")).collect();
            let inf = match fixed[c] {
                Some(kind) => Inferred {
                    kind,
                    bad: 0,
                    first_bad: None,
                },
                None => infer::infer(name, &refs),
            };
            let data = crate::csv_reader::typed(&refs, &inf);
            // cells that did not fit are nulls that were not missing markers
            // (no scan when the column has no nulls at all)
            let bad = if data.null_count() == 0 {
                0
            } else {
                let present = refs.iter().filter(|r| !infer::is_missing(r)).count();
                present.saturating_sub(data.len() - data.null_count())
            };
            let warning = (bad > 0).then(|| {
                let i = (0..refs.len())
                    .find(|&i| data.is_null(i) && !infer::is_missing(refs[i]))
                    .unwrap_or(0);
                Warning {
                    column: name.clone(),
                    count: bad,
                    example: refs.get(i).copied().unwrap_or("").to_string(),
                    line: lines.get(i).copied().unwrap_or(0),
                    message: format!(
                        "cells did not fit the column's kind ({:?}); they were read as missing values",
                        inf.kind
                    ),
                }
            });
            (inf.kind, data, warning)
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(width)
            .max(1);
        let mut converted: Vec<Option<(Kind, crate::array::ColumnData, Option<Warning>)>> =
            vec![None; width];
        if threads == 1 {
            for (c, slot) in converted.iter_mut().enumerate() {
                *slot = Some(convert(c));
            }
        } else {
            std::thread::scope(|scope| {
                let convert = &convert;
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || {
                            (t..width)
                                .step_by(threads)
                                .map(|c| (c, convert(c)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                for h in handles {
                    if let Ok(done) = h.join() {
                        for (c, r) in done {
                            converted[c] = Some(r);
                        }
                    }
                }
            });
        }
        let mut table = Table::default();
        let mut kinds = Vec::with_capacity(width);
        for (c, slot) in converted.into_iter().enumerate() {
            let (kind, data, warning) = match slot {
                Some(x) => x,
                None => convert(c), // a conversion thread panicked: redo it here
            };
            if let Some(w) = warning {
                table.warnings.push(w);
            }
            kinds.push(kind);
            table
                .columns
                .push(Column::new(names[c].clone(), kind, data));
        }
        if self.kinds.is_none() {
            self.kinds = Some(kinds);
        }
        Ok(Some(table))
    }

    fn next_parquet(&mut self) -> Result<Option<Table>, DataError> {
        let Source::Parquet { reader } = &mut self.source else {
            return Ok(None);
        };
        let Some(batch) = reader
            .next_batch(self.rows)
            .map_err(|e| perr(&self.path, e))?
        else {
            return Ok(None);
        };
        let mut table = Table::default();
        let mut kinds = Vec::with_capacity(self.names.len());
        for (c, (name, cells)) in self.names.iter().zip(batch).enumerate() {
            let (kind, data, bad) = match self.kind_for(c) {
                None => crate::parquet_reader::convert(name, cells),
                Some(kind) => {
                    let (data, bad) = crate::parquet_reader::convert_as(cells, kind);
                    (kind, data, bad)
                }
            };
            if bad > 0 {
                table.warnings.push(Warning {
                    column: name.clone(),
                    count: bad,
                    example: String::new(),
                    line: 0,
                    message: format!("values did not fit the column's kind ({kind:?}); they were read as missing values"),
                });
            }
            kinds.push(kind);
            table.columns.push(Column::new(name.clone(), kind, data));
        }
        if self.kinds.is_none() {
            self.kinds = Some(kinds);
        }
        Ok(Some(table))
    }
}

impl Iterator for Chunks {
    type Item = Result<Table, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match self.source {
            Source::Csv { .. } => self.next_csv(),
            Source::Parquet { .. } => self.next_parquet(),
        };
        match r {
            Ok(Some(t)) => {
                self.seen_rows += t.rows() as u64;
                Some(Ok(t))
            }
            Ok(None) => {
                self.done = true;
                (self.seen_rows == 0).then(|| {
                    Err(DataError::NoRows {
                        path: self.path.clone(),
                    })
                })
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_chunks_keep_the_first_chunks_kinds_and_count_bad_cells() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = String::from("\u{feff}x;c\n");
        for i in 0..10 {
            s.push_str(&format!("{i};{}\n", ["a", "b"][i % 2]));
        }
        s.push_str("oops;a\n\n7;\n");
        let p = write(dir.path(), "t.csv", &s);
        let opts = ChunkOptions {
            rows: 4,
            ..Default::default()
        };
        let chunks: Vec<Table> = read_chunks(&p, &opts)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            chunks.iter().map(Table::rows).collect::<Vec<_>>(),
            [4, 4, 4]
        );
        assert!(
            chunks
                .iter()
                .all(|t| t.columns[0].kind == Kind::Numeric
                    && t.columns[1].kind == Kind::Categorical)
        );
        let last = &chunks[2];
        assert_eq!(last.columns[0].name, "x");
        assert_eq!(last.warnings.len(), 1);
        assert_eq!((last.warnings[0].count, last.warnings[0].line), (1, 12));
        assert_eq!(last.columns[1].missing(), 1);
        assert_eq!(chunks[2].columns[0].f64_at(1), Some(9.0));
    }

    #[test]
    fn forced_kinds_parquet_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "t.csv", "x,y\n1,2\n3,4\n");
        let mut opts = ChunkOptions::default();
        opts.kinds.insert("y".into(), Kind::Categorical);
        let t = read_chunks(&p, &opts).unwrap().next().unwrap().unwrap();
        assert_eq!(t.columns[1].kind, Kind::Categorical);
        assert_eq!(t.columns[1].str_at(1).as_deref(), Some("4"));

        let pq = dir.path().join("t.parquet");
        crate::write_parquet(&crate::read_path(&p).unwrap(), &pq).unwrap();
        let mut opts = ChunkOptions {
            rows: 1,
            ..Default::default()
        };
        let n: Vec<Table> = read_chunks(&pq, &opts)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[1].columns[0].f64_at(0), Some(3.0));
        opts.kinds.insert("x".into(), Kind::Categorical);
        let t = read_chunks(&pq, &opts).unwrap().next().unwrap().unwrap();
        assert_eq!(t.columns[0].str_at(0).as_deref(), Some("1"));

        let e = read_chunks(&write(dir.path(), "e.csv", ""), &opts)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let mut it = read_chunks(&write(dir.path(), "h.csv", "a,b\n"), &opts).unwrap();
        let e = it.next().unwrap().unwrap_err().to_string();
        assert!(e.contains("no data rows"), "{e}");
        assert!(it.next().is_none());
        let e = read_chunks(&write(dir.path(), "d.csv", "a,a\n1,2\n"), &opts)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("more than once"), "{e}");
        let e = read_chunks(&write(dir.path(), "m.csv", "a,b\n1,2\n3\n"), &opts)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
    }
}
