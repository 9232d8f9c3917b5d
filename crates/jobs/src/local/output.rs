//! `output.jsonl`: writing a command's output as JSON Lines in the
//! supervisor, and reading it back from a byte offset in the server. Memory
//! is bounded on both sides: at most [`MAX_LINE`] bytes of one line are held
//! while writing, and a read holds at most what it returns.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::executor::{LogChunk, LogLine};

/// A longer line is written as several, each at most this long (cut between
/// characters, never inside one).
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// The longest record a reader expects: a [`MAX_LINE`] of control characters
/// JSON-escaped as `\u001f` (6 bytes each), plus the other fields. Anything
/// longer without a newline is not ours and is skipped.
const MAX_RECORD: usize = 6 * MAX_LINE + 1024;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Serialize)]
struct Record<'a> {
    at_ms: i64,
    stream: &'a str,
    text: &'a str,
}

/// The supervisor's side: appends one record per line, each with one
/// `write` (no buffering in the process: a line is in the file, for any
/// reader, as soon as it is read from the command).
pub(crate) struct OutputWriter {
    inner: Mutex<WriterState>,
}

struct WriterState {
    file: File,
    record: Vec<u8>,
    closed: bool,
    failed: bool,
}

impl OutputWriter {
    pub fn create(path: &Path) -> io::Result<OutputWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(OutputWriter {
            inner: Mutex::new(WriterState {
                file,
                record: Vec::with_capacity(1024),
                closed: false,
                failed: false,
            }),
        })
    }

    /// Appends one line of `stream` (invalid UTF-8 replaced by U+FFFD).
    pub fn line(&self, stream: &str, bytes: &[u8]) {
        let at_ms = now_ms();
        let text = String::from_utf8_lossy(bytes);
        let Ok(mut st) = self.inner.lock() else {
            return;
        };
        if st.closed {
            return;
        }
        let st = &mut *st;
        st.record.clear();
        let record = Record {
            at_ms,
            stream,
            text: &text,
        };
        if let Err(e) = serde_json::to_writer(&mut st.record, &record) {
            tracing::warn!(error = %e, "could not encode an output line");
            return;
        }
        st.record.push(b'\n');
        if let Err(e) = st.file.write_all(&st.record)
            && !st.failed
        {
            tracing::error!(error = %e, "could not write the command's output; lines are lost");
            st.failed = true;
        }
        // Keep the buffer small after a huge record.
        if st.record.capacity() > 64 * 1024 {
            st.record = Vec::with_capacity(1024);
        }
    }

    /// No line is written after this (a reader still blocked on a pipe that
    /// an escaped process holds must not write after `exit.json`).
    pub fn close(&self) {
        if let Ok(mut st) = self.inner.lock() {
            st.closed = true;
            if let Err(e) = st.file.sync_data() {
                tracing::warn!(error = %e, "could not sync the output file");
            }
        }
    }
}

/// Reads `reader` to its end and calls `emit` with each line, without its
/// `\n` (or `\r\n`); a line longer than [`MAX_LINE`] comes in pieces, cut
/// between UTF-8 characters; a last line without a newline is emitted too.
pub(crate) fn pump(reader: impl Read, mut emit: impl FnMut(&[u8])) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(MAX_LINE, reader);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if !line.is_empty() {
                    emit(&line);
                }
                return Err(e);
            }
        };
        if buf.is_empty() {
            if !line.is_empty() {
                emit(&line);
            }
            return Ok(());
        }
        let (piece, used, ends_line) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        append(&mut line, piece, &mut emit);
        if ends_line {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            emit(&line);
            line.clear();
        }
        reader.consume(used);
    }
}

/// Appends `piece` to `line`, emitting [`MAX_LINE`]-sized pieces as the line
/// fills up.
fn append(line: &mut Vec<u8>, mut piece: &[u8], emit: &mut impl FnMut(&[u8])) {
    while !piece.is_empty() {
        let room = MAX_LINE - line.len();
        let take = room.min(piece.len());
        line.extend_from_slice(&piece[..take]);
        piece = &piece[take..];
        if line.len() >= MAX_LINE {
            let cut = char_boundary(line);
            emit(&line[..cut]);
            line.drain(..cut);
        }
    }
}

/// Where to cut `bytes` so that no UTF-8 character is split: before a
/// multi-byte character that its last three bytes start but do not finish.
fn char_boundary(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=3.min(n) {
        let i = n - back;
        let b = bytes[i];
        if b & 0b1100_0000 == 0b1000_0000 {
            // A continuation byte: look further back for the lead.
            continue;
        }
        let width = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        return if i + width > n && i > 0 { i } else { n };
    }
    n
}

/// Reads whole records of `path` from byte `from`, at most `max_bytes` of
/// them — except that a record longer than `max_bytes` is returned alone, so
/// that a reader always gets on. A record still being written (no newline
/// yet) is left for the next call. A file that does not exist yet reads as
/// empty.
pub(crate) fn read_chunk(path: &Path, from: u64, max_bytes: usize) -> io::Result<LogChunk> {
    let empty = LogChunk {
        lines: Vec::new(),
        next: from,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(empty),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if from >= len {
        return Ok(empty);
    }
    file.seek(SeekFrom::Start(from))?;
    let available = usize::try_from(len - from).unwrap_or(usize::MAX);
    let want = max_bytes.max(1).min(available);
    let mut buf = Vec::with_capacity(want);
    (&mut file).take(want as u64).read_to_end(&mut buf)?;
    let end = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => {
            // One record longer than max_bytes: read on to its end.
            BufReader::new((&mut file).take(MAX_RECORD as u64)).read_until(b'\n', &mut buf)?;
            if buf.last() == Some(&b'\n') {
                buf.len()
            } else if from + (buf.len() as u64) < len {
                // More bytes without a newline than any record has, and
                // more after them: not ours; skip them rather than stall.
                tracing::warn!(
                    path = %path.display(),
                    from,
                    skipped = buf.len(),
                    "skipping bytes that are not an output record"
                );
                buf.len()
            } else {
                // At the end of the file: a record being written.
                0
            }
        }
    };
    let mut lines = Vec::new();
    for raw in buf[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<LogLine>(raw) {
            Ok(l) => lines.push(l),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping a malformed output record")
            }
        }
    }
    Ok(LogChunk {
        lines,
        next: from + end as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        pump(input, |l| out.push(l.to_vec())).expect("pump");
        out
    }

    #[test]
    fn lines_crlf_and_a_last_line_without_newline() {
        assert_eq!(
            lines_of(b"one\ntwo\r\n\nlast"),
            vec![
                b"one".to_vec(),
                b"two".to_vec(),
                b"".to_vec(),
                b"last".to_vec()
            ]
        );
        assert_eq!(lines_of(b""), Vec::<Vec<u8>>::new());
        assert_eq!(lines_of(b"\n"), vec![b"".to_vec()]);
    }

    #[test]
    fn long_lines_are_cut_between_characters() {
        let mut input = vec![b'a'; MAX_LINE * 2 + 10];
        input.push(b'\n');
        let got = lines_of(&input);
        assert_eq!(
            got.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_LINE, MAX_LINE, 10]
        );
        // A two-byte é straddling the limit moves whole to the next piece;
        // so does a four-byte emoji.
        for ch in ["é", "€", "😀"] {
            let mut input = vec![b'a'; MAX_LINE - 1];
            input.extend_from_slice(ch.as_bytes());
            input.extend_from_slice(b"z");
            let got = lines_of(&input);
            assert_eq!(got[0], vec![b'a'; MAX_LINE - 1], "{ch}");
            assert_eq!(got[1], format!("{ch}z").into_bytes(), "{ch}");
            assert!(got.iter().all(|l| std::str::from_utf8(l).is_ok()));
        }
        // Bytes that are not UTF-8 at all are cut at the limit.
        let got = lines_of(&vec![0x80; MAX_LINE + 1]);
        assert_eq!(
            got.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_LINE, 1]
        );
    }

    #[test]
    fn a_slow_reader_sees_the_same_lines() {
        /// Hands out one byte per read.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = first;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut out = Vec::new();
        pump(Trickle(b"ab\ncd\r\nef"), |l| out.push(l.to_vec())).expect("pump");
        assert_eq!(out, vec![b"ab".to_vec(), b"cd".to_vec(), b"ef".to_vec()]);
    }

    #[test]
    fn written_records_read_back_in_bounded_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("output.jsonl");
        assert_eq!(read_chunk(&path, 0, 100).expect("missing file").next, 0);
        let w = OutputWriter::create(&path).expect("create");
        w.line("stdout", b"hello");
        w.line("stderr", b"bad \xff byte");
        w.line("stdout", &vec![b'\x01'; 1000]);
        w.close();
        w.line("stdout", b"after close");
        let len = std::fs::metadata(&path).expect("meta").len();

        let all = read_chunk(&path, 0, usize::MAX).expect("read");
        assert_eq!(all.next, len);
        assert_eq!(all.lines.len(), 3);
        assert_eq!(all.lines[0].text, "hello");
        assert_eq!(all.lines[0].stream, "stdout");
        assert_eq!(all.lines[1].text, "bad \u{fffd} byte");
        assert_eq!(all.lines[1].stream, "stderr");
        assert!(all.lines[0].at_ms > 1_600_000_000_000);

        // Small chunks: whole lines only, and a line longer than the chunk
        // comes alone rather than never.
        let mut from = 0;
        let mut got = Vec::new();
        while from < len {
            let c = read_chunk(&path, from, 50).expect("read");
            assert!(c.next > from, "no progress at {from}");
            assert!(c.lines.len() == 1 || c.next - from <= 50);
            got.extend(c.lines);
            from = c.next;
        }
        assert_eq!(got, all.lines);
        assert_eq!(
            read_chunk(&path, len + 10, 50).expect("past end").next,
            len + 10
        );
    }

    #[test]
    fn a_record_being_written_is_left_for_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("output.jsonl");
        std::fs::write(
            &path,
            "{\"at_ms\":1,\"stream\":\"stdout\",\"text\":\"a\"}\n{\"at_ms\":2,\"str",
        )
        .expect("write");
        let first = std::fs::read(&path)
            .expect("read")
            .iter()
            .position(|&b| b == b'\n')
            .expect("newline") as u64
            + 1;
        let c = read_chunk(&path, 0, 1000).expect("read");
        assert_eq!(c.lines.len(), 1);
        assert_eq!(c.next, first);
        let c = read_chunk(&path, first, 5).expect("read");
        assert_eq!((c.lines.len(), c.next), (0, first));
    }
}
