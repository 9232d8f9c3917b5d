//! Request payloads in, predictions out.
//!
//! In: `text/csv` (with or without a header row; without one, values come
//! in the pipeline's input column order), `application/json` (a record,
//! a list of records, `{"instances": [...]}`; a record is an object by
//! column name, a list of values in column order, or `{"features": [...]}`)
//! and `application/jsonlines` (one record per line).
//!
//! Out, by `Accept`: JSON `{"predictions": [{…}, …]}` and JSON Lines carry
//! SageMaker's inference keys — `predicted_label`, and for classification
//! `probability` (of the predicted label), `probabilities` and `labels`
//! (in the same order); CSV is exactly what `atelier predict` writes
//! (`predicted_label`, then `probability_<class>` per class, header
//! included).
//!
//! Each row is predicted as it is parsed, into one output buffer: no
//! allocation per row.

use std::io::Write;

use learn::Cell;
use serde_json::Value;

use crate::error::{Result, ServingError};
use crate::model::LoadedModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    JsonLines,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Json => "application/json",
            Format::JsonLines => "application/jsonlines",
        }
    }

    fn parse_mime(mime: &str) -> Option<Format> {
        let m = mime
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match m.as_str() {
            "text/csv" | "application/csv" | "text/plain" => Some(Format::Csv),
            "application/json" => Some(Format::Json),
            "application/jsonlines"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/x-ndjson"
            | "application/ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// The request's format from its Content-Type; without one, JSON when
    /// the body starts with `{` or `[`, CSV otherwise.
    pub fn from_content_type(ct: Option<&str>, body: &[u8]) -> Result<Format> {
        match ct.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Format::parse_mime(c).ok_or_else(|| {
                ServingError::UnsupportedMediaType(format!(
                    "Content-Type '{c}' is not supported: send text/csv, application/json or application/jsonlines"
                ))
            }),
            None => {
                let first = body.iter().find(|b| !b.is_ascii_whitespace());
                Ok(match first {
                    Some(b'{') | Some(b'[') => Format::Json,
                    _ => Format::Csv,
                })
            }
        }
    }

    /// The answer's format from `Accept` (first supported type wins;
    /// absent or `*/*` answers in the request's format).
    pub fn from_accept(accept: Option<&str>, request: Format) -> Result<Format> {
        let Some(a) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(request);
        };
        for part in a.split(',') {
            let mime = part.split(';').next().unwrap_or("").trim();
            if mime == "*/*" || mime == "application/*" && request != Format::Csv {
                return Ok(request);
            }
            if let Some(f) = Format::parse_mime(mime) {
                return Ok(f);
            }
        }
        Err(ServingError::NotAcceptable(format!(
            "Accept '{a}' is not supported: ask for text/csv, application/json or application/jsonlines"
        )))
    }
}

/// An answer body and how many rows it holds.
pub struct Answer {
    pub body: Vec<u8>,
    pub rows: usize,
}

/// Where a prediction input row came from, for error messages.
#[derive(Debug, Clone, Copy)]
enum At {
    Line(u64),
    Record(usize),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Line(l) => write!(f, "line {l}"),
            At::Record(r) => write!(f, "record {r}"),
        }
    }
}

/// A cell vector emptied and handed back with a new lifetime, keeping its
/// allocation (in-place collect).
pub(crate) fn recycle<'b>(mut v: Vec<Cell<'_>>) -> Vec<Cell<'b>> {
    v.clear();
    v.into_iter()
        .map(|_| -> Cell<'b> { unreachable!() })
        .collect()
}

/// Writes predictions in one output format.
pub struct Writer<'m> {
    m: &'m LoadedModel,
    fmt: Format,
    pub buf: Vec<u8>,
    rows: usize,
}

fn num(buf: &mut Vec<u8>, v: f64, json: bool) {
    if v.is_finite() || !json {
        let _ = write!(buf, "{v}");
    } else {
        buf.extend_from_slice(b"null");
    }
}

impl<'m> Writer<'m> {
    pub fn new(m: &'m LoadedModel, fmt: Format, capacity: usize) -> Writer<'m> {
        let mut buf = Vec::with_capacity(capacity);
        match fmt {
            Format::Csv => {
                buf.extend_from_slice(m.csv_header.as_bytes());
                buf.push(b'\n');
            }
            Format::Json => buf.extend_from_slice(b"{\"predictions\":["),
            Format::JsonLines => {}
        }
        Writer {
            m,
            fmt,
            buf,
            rows: 0,
        }
    }

    /// One row from the pipeline's raw output (`RowScratch::out`).
    pub fn row(&mut self, out: &[f64]) {
        let m = self.m;
        let buf = &mut self.buf;
        match self.fmt {
            Format::Csv => {
                csv_prediction(m, out, buf);
                buf.push(b'\n');
            }
            Format::Json | Format::JsonLines => {
                if self.fmt == Format::Json && self.rows > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"predicted_label\":");
                if m.is_classification() {
                    let k = m.predicted_class(out);
                    buf.extend_from_slice(m.labels_json[k].as_bytes());
                    buf.extend_from_slice(b",\"probability\":");
                    let mut i = 0;
                    let mut pk = f64::NAN;
                    for_probs(m, out, |p| {
                        if i == k {
                            pk = p;
                        }
                        i += 1;
                    });
                    num(buf, pk, true);
                    buf.extend_from_slice(b",\"probabilities\":[");
                    let mut first = true;
                    for_probs(m, out, |p| {
                        if !first {
                            buf.push(b',');
                        }
                        first = false;
                        num(buf, p, true);
                    });
                    buf.extend_from_slice(b"],\"labels\":");
                    buf.extend_from_slice(m.labels_list_json.as_bytes());
                } else {
                    num(buf, out[0], true);
                }
                buf.push(b'}');
                if self.fmt == Format::JsonLines {
                    buf.push(b'\n');
                }
            }
        }
        self.rows += 1;
    }

    pub fn finish(mut self) -> Answer {
        if self.fmt == Format::Json {
            self.buf.extend_from_slice(b"]}");
        }
        Answer {
            body: self.buf,
            rows: self.rows,
        }
    }
}

/// The prediction fields of one CSV row (no newline), as `atelier
/// predict` writes them.
pub fn csv_prediction(m: &LoadedModel, out: &[f64], buf: &mut Vec<u8>) {
    if m.is_classification() {
        let k = m.predicted_class(out);
        buf.extend_from_slice(m.labels_csv[k].as_bytes());
        for_probs(m, out, |p| {
            buf.push(b',');
            num(buf, p, false);
        });
    } else {
        num(buf, out[0], false);
    }
}

/// Class probabilities in label order (binary: `1 - p`, `p`), computed as
/// `atelier predict` computes them.
fn for_probs(m: &LoadedModel, out: &[f64], mut f: impl FnMut(f64)) {
    if m.pipeline.problem == learn::ProblemType::Binary {
        f(1.0 - out[0]);
        f(out[0]);
    } else {
        for &p in out {
            f(p);
        }
    }
}

/// Predicts every row of a payload into `w`.
pub fn predict_payload(
    m: &LoadedModel,
    body: &[u8],
    input: Format,
    w: &mut Writer<'_>,
) -> Result<()> {
    let mut scratch = m.pipeline.scratch();
    let mut predict = |cells: &[Cell<'_>], at: At| -> Result<()> {
        m.pipeline
            .predict_row(cells, &mut scratch)
            .map_err(|e| match e {
                learn::LearnError::Input(msg) => ServingError::BadRequest(format!("{at}: {msg}")),
                other => ServingError::Internal(format!("{at}: prediction failed: {other}")),
            })?;
        w.row(&scratch.out);
        Ok(())
    };
    match input {
        Format::Csv => csv_rows(m, body, &mut predict),
        Format::Json => {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                ServingError::BadRequest(format!(
                    "the body is not valid JSON ({e}); send a record, a list of records or {{\"instances\": [...]}}"
                ))
            })?;
            let records: &[Value] = match &v {
                Value::Object(o) => match o.get("instances") {
                    Some(Value::Array(a)) => a,
                    Some(_) => {
                        return Err(ServingError::BadRequest(
                            "\"instances\" must be a list of records".into(),
                        ));
                    }
                    None => std::slice::from_ref(&v),
                },
                // a list of plain values is one record in column order
                Value::Array(a)
                    if !a.is_empty() && a.iter().all(|x| !x.is_array() && !x.is_object()) =>
                {
                    std::slice::from_ref(&v)
                }
                Value::Array(a) => a,
                _ => {
                    return Err(ServingError::BadRequest(
                        "send a JSON object (one record), a list of records or {\"instances\": [...]}"
                            .into(),
                    ));
                }
            };
            if records.is_empty() {
                return Err(ServingError::BadRequest(
                    "the payload has no records".into(),
                ));
            }
            let mut cells: Vec<Cell<'_>> = Vec::with_capacity(m.columns.len());
            for (i, r) in records.iter().enumerate() {
                let at = At::Record(i + 1);
                json_cells(m, r, at, &mut cells)?;
                predict(&cells, at)?;
            }
            Ok(())
        }
        Format::JsonLines => {
            let text = std::str::from_utf8(body).map_err(|_| {
                ServingError::BadRequest("the JSON Lines body is not valid UTF-8".into())
            })?;
            let mut cells: Vec<Cell<'static>> = Vec::with_capacity(m.columns.len());
            let mut n = 0;
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let at = At::Line(i as u64 + 1);
                let v: Value = serde_json::from_str(line)
                    .map_err(|e| ServingError::BadRequest(format!("{at}: not valid JSON ({e})")))?;
                let mut c = recycle(std::mem::take(&mut cells));
                json_cells(m, &v, at, &mut c)?;
                predict(&c, at)?;
                cells = recycle(c);
                n += 1;
            }
            if n == 0 {
                return Err(ServingError::BadRequest(
                    "the payload has no records".into(),
                ));
            }
            Ok(())
        }
    }
}

fn json_cell<'a>(v: &'a Value, col: &str, at: At) -> Result<Cell<'a>> {
    Ok(match v {
        Value::Null => Cell::Missing,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => Cell::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Cell::Text(s),
        Value::Array(_) | Value::Object(_) => {
            return Err(ServingError::BadRequest(format!(
                "{at}: column '{col}' holds a list or object; give a number, text, true/false or null"
            )));
        }
    })
}

fn json_cells<'a>(m: &LoadedModel, r: &'a Value, at: At, cells: &mut Vec<Cell<'a>>) -> Result<()> {
    cells.clear();
    let positional = |list: &'a [Value], cells: &mut Vec<Cell<'a>>| -> Result<()> {
        if list.len() != m.columns.len() {
            return Err(ServingError::BadRequest(format!(
                "{at}: {} values for {} columns; in order they are: {}",
                list.len(),
                m.columns.len(),
                m.columns.join(", ")
            )));
        }
        for (v, c) in list.iter().zip(&m.columns) {
            cells.push(json_cell(v, c, at)?);
        }
        Ok(())
    };
    match r {
        Value::Object(o) => {
            if let (Some(Value::Array(f)), None) = (o.get("features"), m.column("features")) {
                return positional(f, cells);
            }
            for (ci, name) in m.columns.iter().enumerate() {
                match o.get(name.as_str()) {
                    Some(v) => cells.push(json_cell(v, name, at)?),
                    None if m.required[ci] => {
                        return Err(ServingError::BadRequest(format!(
                            "{at} has no '{name}', which the model needs (use null for a missing value)"
                        )));
                    }
                    None => cells.push(Cell::Missing),
                }
            }
            Ok(())
        }
        Value::Array(a) => positional(a, cells),
        _ => Err(ServingError::BadRequest(format!(
            "{at}: a record is an object by column name or a list of values in column order"
        ))),
    }
}

thread_local! {
    /// A built CSV parser, lent to one [`CsvRecords`] at a time.
    static CSV_PARSER: std::cell::Cell<Option<csv_core::Reader>> = const { std::cell::Cell::new(None) };
}

/// Records of an in-memory CSV body (RFC 4180 quoting, any line ending), parsed
/// with `csv-core` straight from the body: no reader buffer, and the parser's state
/// machine is built once per thread and reset for each payload, since building it
/// took a visible share of a small request's time. (It is kept, not cloned:
/// `csv_core::Reader::clone` copies only part of the state machine, and the copy
/// misparses.)
struct CsvRecords<'a> {
    core: csv_core::Reader,
    input: &'a [u8],
    /// the current record's fields, back to back, and where each ends
    out: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    done: bool,
}

impl<'a> CsvRecords<'a> {
    fn new(input: &'a [u8]) -> CsvRecords<'a> {
        // `Reader::default()` is not a built parser (it misparses); `new` builds one
        #[allow(clippy::unwrap_or_default)]
        let mut core = CSV_PARSER.take().unwrap_or_else(csv_core::Reader::new);
        core.reset();
        CsvRecords {
            core,
            input,
            out: vec![0; input.len().clamp(64, 1 << 16)],
            ends: vec![0; 64],
            len: 0,
            done: false,
        }
    }

    /// Moves to the next record and returns the line it starts on, or `None` at the
    /// end of the body. Blank lines are skipped.
    fn next_record(&mut self) -> Option<u64> {
        use csv_core::ReadRecordResult::*;
        if self.done {
            return None;
        }
        // the parser counts the newlines it has consumed; the record starts after the
        // empty lines (and a CRLF's pending LF) it is about to skip
        let skipped = self.input.iter().take_while(|&&b| b == b'\n' || b == b'\r');
        let line = self.core.line() + skipped.filter(|&&b| b == b'\n').count() as u64;
        let (mut outlen, mut endlen) = (0, 0);
        loop {
            let (res, nin, nout, nend) = self.core.read_record(
                self.input,
                &mut self.out[outlen..],
                &mut self.ends[endlen..],
            );
            self.input = &self.input[nin..];
            outlen += nout;
            endlen += nend;
            match res {
                // an empty input on the next call tells the parser the body ended
                InputEmpty => {}
                OutputFull => self.out.resize(self.out.len() * 2, 0),
                OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                Record => {
                    self.len = endlen;
                    return Some(line);
                }
                End => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    /// Number of fields in the current record.
    fn len(&self) -> usize {
        self.len
    }

    /// The current record's fields back to back, or `None` when they are not UTF-8
    /// (checked once per record rather than per field).
    fn text(&self) -> Option<&str> {
        let end = self.len.checked_sub(1).map_or(0, |l| self.ends[l]);
        std::str::from_utf8(&self.out[..end]).ok()
    }

    /// Field `i` (`i < len()`) of the current record, out of its [`text`](Self::text).
    /// Fields split at ASCII delimiters, so each holds whole characters; `None` only
    /// when an invalid byte sequence straddled a delimiter.
    fn field<'t>(&self, text: &'t str, i: usize) -> Option<&'t str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        text.get(start..self.ends[i])
    }

    /// Every field of the current record, which starts on `line`.
    fn fields(&self, line: u64) -> Result<Vec<&str>> {
        let text = self.text().ok_or_else(|| not_utf8(line))?;
        (0..self.len)
            .map(|i| self.field(text, i).ok_or_else(|| not_utf8(line)))
            .collect()
    }
}

impl Drop for CsvRecords<'_> {
    fn drop(&mut self) {
        CSV_PARSER.set(Some(std::mem::take(&mut self.core)));
    }
}

fn not_utf8(line: u64) -> ServingError {
    ServingError::BadRequest(format!("line {line}: the CSV is not valid UTF-8"))
}

fn csv_rows(
    m: &LoadedModel,
    body: &[u8],
    predict: &mut dyn FnMut(&[Cell<'_>], At) -> Result<()>,
) -> Result<()> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut rec = CsvRecords::new(body);
    let n = m.columns.len();
    // for each input column, the CSV field holding it
    let mut map: Vec<Option<usize>> = (0..n).map(Some).collect();
    let mut width = n;
    let mut has_header = false;
    let mut first = true;
    let mut rows = 0usize;
    let mut cells: Vec<Cell<'static>> = Vec::with_capacity(n);
    while let Some(line) = rec.next_record() {
        let text = rec.text().ok_or_else(|| not_utf8(line))?;
        if rec.len() == 1 && text.trim().is_empty() {
            continue; // blank line
        }
        if first {
            first = false;
            if let Some(h) = header_map(m, &rec.fields(line)?)? {
                map = h;
                width = rec.len();
                has_header = true;
                continue;
            }
        }
        if rec.len() != width {
            return Err(ServingError::BadRequest(if !has_header {
                format!(
                    "line {line}: {} values for {n} columns; without a header row, send the columns in this order: {}",
                    rec.len(),
                    m.columns.join(", ")
                )
            } else {
                format!(
                    "line {line}: {} values, but the header row has {width}",
                    rec.len()
                )
            }));
        }
        let mut c = recycle(std::mem::take(&mut cells));
        for f in &map {
            c.push(match f {
                Some(i) => Cell::Text(rec.field(text, *i).ok_or_else(|| not_utf8(line))?),
                None => Cell::Missing,
            });
        }
        predict(&c, At::Line(line))?;
        cells = recycle(c);
        rows += 1;
    }
    if rows == 0 {
        return Err(ServingError::BadRequest("the payload has no rows".into()));
    }
    Ok(())
}

/// When the first record is a header, the field of each input column. It
/// is a header when it names every column the model needs (other fields
/// are ignored, as `atelier predict` ignores extra columns), or when every
/// field names an input column or the target and at least one is needed
/// (then a missing one is an error naming it).
fn header_map(m: &LoadedModel, rec: &[&str]) -> Result<Option<Vec<Option<usize>>>> {
    let target = m.pipeline.target.as_str();
    let named = |name: &str| rec.iter().any(|f| f.trim() == name);
    let all_required = m
        .columns
        .iter()
        .zip(&m.required)
        .all(|(c, r)| !r || named(c));
    let all_names = rec
        .iter()
        .all(|f| m.column(f.trim()).is_some() || f.trim() == target);
    let any_required = rec
        .iter()
        .any(|f| m.column(f.trim()).is_some_and(|c| m.required[c]));
    if !(all_required || all_names && any_required) {
        return Ok(None);
    }
    let mut map = vec![None; m.columns.len()];
    for (i, f) in rec.iter().enumerate() {
        if let Some(c) = m.column(f.trim()) {
            map[c] = Some(i);
        }
    }
    for (c, name) in m.columns.iter().enumerate() {
        if map[c].is_none() && m.required[c] {
            return Err(ServingError::BadRequest(format!(
                "the CSV header has no column '{name}', which the model needs"
            )));
        }
    }
    Ok(Some(map))
}

/// Predict a payload: parse, predict and write in one pass.
pub fn invoke(m: &LoadedModel, body: &[u8], input: Format, output: Format) -> Result<Answer> {
    let mut w = Writer::new(m, output, 64 + body.len() / 2);
    predict_payload(m, body, input, &mut w)?;
    Ok(w.finish())
}

#[cfg(test)]
mod csv_tests {
    use super::CsvRecords;

    fn records(body: &str) -> Vec<(u64, Vec<String>)> {
        let mut r = CsvRecords::new(body.as_bytes());
        let mut out = vec![];
        while let Some(line) = r.next_record() {
            out.push((
                line,
                r.fields(line)
                    .unwrap()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ));
            assert!(out.len() < 100, "runaway: {out:?}");
        }
        out
    }

    fn rec(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn csv_records_quoting_line_endings_and_lines() {
        // twice: the second parse reuses the first one's parser
        for _ in 0..2 {
            assert_eq!(
                records("a,b\n1,2\n"),
                vec![(1, rec(&["a", "b"])), (2, rec(&["1", "2"]))]
            );
        }
        // CRLF, a last line without a newline, quoted commas, quotes and newlines
        assert_eq!(
            records("x,y\r\n\"a,b\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",3"),
            vec![
                (1, rec(&["x", "y"])),
                (2, rec(&["a,b", "say \"hi\""])),
                (3, rec(&["two\nlines", "3"])),
            ]
        );
        // a record's line is where it starts; empty lines are skipped
        assert_eq!(
            records("\n\n1,2\n\n3,4"),
            vec![(3, rec(&["1", "2"])), (5, rec(&["3", "4"]))]
        );
        assert_eq!(
            records("1,2\r\n\r\n3,4\r\n"),
            vec![(1, rec(&["1", "2"])), (3, rec(&["3", "4"]))]
        );
        // ragged rows keep their own field counts; a record longer than the buffers grows them
        let wide = vec!["v"; 300].join(",");
        let long = "z".repeat(100_000);
        let got = records(&format!("1\n{wide}\n{long},1\n"));
        assert_eq!(got[0].1.len(), 1);
        assert_eq!(got[1].1.len(), 300);
        assert_eq!(got[2].1, rec(&[&long, "1"]));
        assert!(records("").is_empty());
    }

    #[test]
    fn csv_records_refuse_invalid_utf8_by_line() {
        let body = b"a,b\n1,\xff\n";
        let mut r = CsvRecords::new(body);
        assert_eq!(r.next_record(), Some(1));
        assert!(r.fields(1).is_ok());
        assert_eq!(r.next_record(), Some(2));
        assert_eq!(r.text(), None);
        let e = r.fields(2).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("UTF-8"), "{e}");
        // valid once the delimiter is gone, invalid as two fields
        let mut r = CsvRecords::new(b"\xc3,\xa9\n");
        assert_eq!(r.next_record(), Some(1));
        assert_eq!(r.text(), Some("\u{e9}"));
        assert!(r.fields(1).is_err());
    }
}
