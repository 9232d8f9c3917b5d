//! Batch transform: predict every row of a CSV or Parquet file, or of every
//! such file in a folder: a CSV becomes `<output>/<file>.out` (CSV:
//! `predicted_label` and `probability_<class>` columns as `atelier predict`
//! writes them, optionally after the input columns), a Parquet file
//! `<output>/<stem>.out.parquet` with the same columns.
//!
//! CSV files are streamed row by row: a row that cannot be predicted (a
//! wrong type, a wrong number of fields) is reported with its line number
//! in `<file>.out.errors` and its prediction fields are left empty, so the
//! output stays aligned with the input and the other rows are kept.
//! Parquet files are read whole and predicted in chunks of 10,000 rows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use learn::{Cell, Pipeline};

use crate::codec;
use crate::error::{Result, ServingError};
use crate::model::LoadedModel;

#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Write the input columns before the predictions (SageMaker's
    /// `JoinSource=Input`).
    pub join_input: bool,
}

/// Reported as the transform goes (about every 2,000 rows and per file).
#[derive(Debug, Clone, Default)]
pub struct BatchProgress {
    pub files_done: usize,
    pub files_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub rows: u64,
    pub failed: u64,
    pub current: String,
}

impl BatchProgress {
    /// Share done, 0–1.
    pub fn fraction(&self) -> f64 {
        if self.bytes_total == 0 {
            0.0
        } else {
            (self.bytes_done as f64 / self.bytes_total as f64).min(1.0)
        }
    }
}

/// A row that could not be predicted.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub file: PathBuf,
    /// 1-based line in the input file (0 for Parquet and whole-file errors).
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct BatchSummary {
    /// `(input, output)` of each file transformed.
    pub outputs: Vec<(PathBuf, PathBuf)>,
    pub rows: u64,
    pub failed: u64,
    /// The first 1,000 failures (all are in the `.errors` files).
    pub errors: Vec<RowError>,
    pub cancelled: bool,
}

const KEEP_ERRORS: usize = 1000;

fn io_err(path: &Path, e: impl std::fmt::Display) -> ServingError {
    ServingError::BadRequest(format!("{}: {e}", path.display()))
}

/// The input files of a batch transform: `input` itself, or every `.csv` /
/// `.parquet` below it, sorted (also what `atelier batch-transform --server` uploads).
pub fn input_files(input: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(input).map_err(|e| io_err(input, e))?;
    if meta.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![input.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let p = e.map_err(|e| io_err(&dir, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension()
                    .and_then(|x| x.to_str())
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                Some("csv" | "parquet" | "pq")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(ServingError::BadRequest(format!(
            "{}: no .csv or .parquet files in this folder",
            input.display()
        )));
    }
    Ok(out)
}

/// Predict `input` (a file or a folder) into the folder `output` with
/// `pipeline`. `cancel` is checked every few hundred rows; a cancelled
/// transform returns what it finished with `cancelled` set.
pub fn batch_transform(
    pipeline: &Pipeline,
    input: &Path,
    output: &Path,
    opts: &BatchOptions,
    on_progress: &mut dyn FnMut(&BatchProgress),
    cancel: &AtomicBool,
) -> Result<BatchSummary> {
    let model = LoadedModel::new(pipeline.clone());
    let files = input_files(input)?;
    std::fs::create_dir_all(output).map_err(|e| io_err(output, e))?;
    let base = if input.is_dir() {
        input.to_path_buf()
    } else {
        input.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let mut progress = BatchProgress {
        files_total: files.len(),
        bytes_total: files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum(),
        ..Default::default()
    };
    let mut summary = BatchSummary::default();
    for file in &files {
        let rel = file.strip_prefix(&base).unwrap_or(file);
        let is_parquet = matches!(
            file.extension()
                .and_then(|x| x.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("parquet" | "pq")
        );
        let mut out_path = output.join(rel);
        if is_parquet {
            // Parquet in, Parquet out: a.parquet → a.out.parquet
            let mut name = out_path.file_stem().unwrap_or_default().to_os_string();
            name.push(".out.parquet");
            out_path.set_file_name(name);
        } else {
            let mut name = out_path.file_name().unwrap_or_default().to_os_string();
            name.push(".out");
            out_path.set_file_name(name);
        }
        if let Some(parent) = out_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        progress.current = rel.display().to_string();
        on_progress(&progress);
        let before = progress.bytes_done;
        let res = if is_parquet {
            parquet_file(
                &model,
                file,
                &out_path,
                opts,
                &mut progress,
                &mut summary,
                on_progress,
                cancel,
            )
        } else {
            csv_file(
                &model,
                file,
                &out_path,
                opts,
                &mut progress,
                &mut summary,
                on_progress,
                cancel,
            )
        };
        if let Err(e) = res {
            // a file that cannot be read at all fails alone
            progress.failed += 1;
            summary.failed += 1;
            if summary.errors.len() < KEEP_ERRORS {
                summary.errors.push(RowError {
                    file: file.clone(),
                    line: 0,
                    message: e.to_string(),
                });
            }
        } else {
            summary.outputs.push((file.clone(), out_path));
        }
        progress.bytes_done = before + std::fs::metadata(file).map_or(0, |m| m.len());
        progress.files_done += 1;
        on_progress(&progress);
        if cancel.load(Ordering::Relaxed) {
            summary.cancelled = true;
            break;
        }
    }
    summary.rows = progress.rows;
    Ok(summary)
}

fn push_field(buf: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        buf.push(b'"');
        buf.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
}

#[allow(clippy::too_many_arguments)]
fn csv_file(
    m: &LoadedModel,
    file: &Path,
    out_path: &Path,
    opts: &BatchOptions,
    progress: &mut BatchProgress,
    summary: &mut BatchSummary,
    on_progress: &mut dyn FnMut(&BatchProgress),
    cancel: &AtomicBool,
) -> Result<()> {
    let f = std::fs::File::open(file).map_err(|e| io_err(file, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(f));
    let mut rec = csv::StringRecord::new();
    if !rdr.read_record(&mut rec).map_err(|e| io_err(file, e))? {
        return Err(io_err(file, "the file is empty (a header row is needed)"));
    }
    let header: Vec<String> = rec
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = h.trim();
            if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                h
            }
            .to_string()
        })
        .collect();
    let mut map: Vec<Option<usize>> = vec![None; m.columns.len()];
    for (i, h) in header.iter().enumerate() {
        if let Some(c) = m.column(h) {
            map[c] = Some(i);
        }
    }
    for (c, name) in m.columns.iter().enumerate() {
        if map[c].is_none() && m.required[c] {
            return Err(io_err(
                file,
                format!("there is no column '{name}', which the model needs"),
            ));
        }
    }
    let out = std::fs::File::create(out_path).map_err(|e| io_err(out_path, e))?;
    let mut w = std::io::BufWriter::new(out);
    let mut errors: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    if opts.join_input {
        for (i, h) in header.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            push_field(&mut buf, h);
        }
        buf.push(b',');
    }
    buf.extend_from_slice(m.csv_header.as_bytes());
    buf.push(b'\n');
    let empty_fields = m.csv_header.matches(',').count();
    let mut scratch = m.pipeline.scratch();
    let mut cells: Vec<Cell<'static>> = Vec::with_capacity(m.columns.len());
    let mut n = 0u64;
    let start_bytes = progress.bytes_done;
    loop {
        let more = match rdr.read_record(&mut rec) {
            Ok(b) => b,
            Err(e) => {
                // a malformed record: report it and go on
                let line = e.position().map_or(0, |p| p.line());
                fail(
                    file,
                    line,
                    e.to_string(),
                    progress,
                    summary,
                    &mut errors,
                    out_path,
                )?;
                buf.extend(std::iter::repeat_n(b',', empty_fields));
                buf.push(b'\n');
                continue;
            }
        };
        if !more {
            break;
        }
        let line = rec.position().map_or(0, |p| p.line());
        if opts.join_input {
            for (i, f) in rec.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                push_field(&mut buf, f);
            }
            buf.push(b',');
        }
        let result = if rec.len() != header.len() {
            Err(format!(
                "{} fields, but the header has {}",
                rec.len(),
                header.len()
            ))
        } else {
            let mut c = codec::recycle(std::mem::take(&mut cells));
            for f in &map {
                c.push(match f {
                    Some(i) => Cell::Text(rec.get(*i).unwrap_or("")),
                    None => Cell::Missing,
                });
            }
            let r = m.pipeline.predict_row(&c, &mut scratch);
            cells = codec::recycle(c);
            r.map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => codec::csv_prediction(m, &scratch.out, &mut buf),
            Err(msg) => {
                fail(file, line, msg, progress, summary, &mut errors, out_path)?;
                buf.extend(std::iter::repeat_n(b',', empty_fields));
            }
        }
        buf.push(b'\n');
        n += 1;
        progress.rows += 1;
        if buf.len() > 1 << 20 {
            w.write_all(&buf).map_err(|e| io_err(out_path, e))?;
            buf.clear();
        }
        if n.is_multiple_of(2000) {
            progress.bytes_done = start_bytes + rec.position().map_or(0, |p| p.byte());
            on_progress(progress);
            if cancel.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    w.write_all(&buf).map_err(|e| io_err(out_path, e))?;
    w.flush().map_err(|e| io_err(out_path, e))?;
    if let Some(mut e) = errors {
        e.flush().map_err(|e| io_err(out_path, e))?;
    }
    Ok(())
}

fn fail(
    file: &Path,
    line: u64,
    message: String,
    progress: &mut BatchProgress,
    summary: &mut BatchSummary,
    errors: &mut Option<std::io::BufWriter<std::fs::File>>,
    out_path: &Path,
) -> Result<()> {
    progress.failed += 1;
    summary.failed += 1;
    if errors.is_none() {
        let mut p = out_path.as_os_str().to_os_string();
        p.push(".errors");
        let p = PathBuf::from(p);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p).map_err(|e| io_err(&p, e))?);
        writeln!(f, "line,error").map_err(|e| io_err(&p, e))?;
        *errors = Some(f);
    }
    if let Some(f) = errors.as_mut() {
        let mut b = Vec::new();
        push_field(&mut b, &message);
        writeln!(f, "{line},{}", String::from_utf8_lossy(&b)).map_err(|e| io_err(out_path, e))?;
    }
    if summary.errors.len() < KEEP_ERRORS {
        summary.errors.push(RowError {
            file: file.to_path_buf(),
            line,
            message,
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn parquet_file(
    m: &LoadedModel,
    file: &Path,
    out_path: &Path,
    opts: &BatchOptions,
    progress: &mut BatchProgress,
    _summary: &mut BatchSummary,
    on_progress: &mut dyn FnMut(&BatchProgress),
    cancel: &AtomicBool,
) -> Result<()> {
    use tabular::{Column, Kind, Table};
    let table = tabular::read_path(file).map_err(|e| ServingError::BadRequest(e.to_string()))?;
    let n = table.rows();
    let classes = m.pipeline.labels.clone();
    let regression = !m.is_classification();
    let mut labels: Vec<Option<String>> = Vec::with_capacity(n);
    let mut values: Vec<Option<f64>> = Vec::new();
    let mut probs: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(n); classes.len()];
    let mut start = 0;
    while start < n {
        let end = (start + 10_000).min(n);
        let idx: Vec<usize> = (start..end).collect();
        let chunk = table.take(&idx);
        let pred = m.pipeline.predict(&chunk).map_err(|e| io_err(file, e))?;
        let k = pred.classes.len();
        if regression {
            values.extend(pred.values.iter().map(|v| Some(*v)));
        } else {
            labels.extend(pred.labels.into_iter().map(Some));
            for r in 0..chunk.rows() {
                for (c, col) in probs.iter_mut().enumerate() {
                    col.push(pred.probabilities.get(r * k + c).copied());
                }
            }
        }
        progress.rows += (end - start) as u64;
        on_progress(progress);
        start = end;
        if cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
    let mut columns: Vec<Column> = if opts.join_input {
        table.columns.clone()
    } else {
        Vec::new()
    };
    if regression {
        columns.push(Column::from_f64("predicted_label", Kind::Numeric, values));
    } else {
        columns.push(Column::from_strings(
            "predicted_label",
            Kind::Categorical,
            labels,
        ));
        for (c, col) in classes.iter().zip(probs) {
            columns.push(Column::from_f64(
                &format!("probability_{c}"),
                Kind::Numeric,
                col,
            ));
        }
    }
    let out = Table {
        columns,
        warnings: Vec::new(),
    };
    tabular::write_parquet(&out, out_path).map_err(|e| io_err(out_path, e))
}
