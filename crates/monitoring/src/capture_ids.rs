//! Which captured predictions exist, read cheaply: the event and inference
//! ids of chosen capture hours only, parsed without the captured payloads.
//!
//! A ground-truth upload answers how many of its labels match captured
//! traffic. Reading every capture record ever written for that grew with
//! the endpoint's history (30 days of hourly capture is millions of records);
//! this reads the hours a label can concern:
//! * an `eventId` label whose id is one of ours (a UUIDv7, which carries the
//!   capture's millisecond) → that hour and the one before (the id is made
//!   when the record is written, a moment after the request);
//! * other ids (an `inferenceId` the client chose) → hours back from now, up
//!   to a limit, stopping as soon as every id has been found.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use artifacts::{ArtifactPath, ArtifactStore};
use serde::Deserialize;

const HOUR_MS: i64 = 3_600_000;

/// The part of a capture line this module reads, borrowed from the line
/// where it can be; `captureData` is skipped by the parser without
/// building it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdsOnly<'a> {
    #[serde(borrow)]
    event_metadata: MetaIds<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaIds<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(default)]
    inference_id: Option<String>,
    #[serde(default)]
    shadow_test: Option<serving::capture::ShadowMeta>,
}

/// The ids a ground-truth upload looks for, by kind.
#[derive(Debug, Default)]
pub struct WantedIds {
    pub events: HashSet<String>,
    pub inferences: HashSet<String>,
}

/// Which of the wanted ids were found in monitored capture records (see
/// [`serving::CaptureRecord::monitored`]).
#[derive(Debug, Default)]
pub struct CapturedIds {
    pub events: HashSet<String>,
    pub inferences: HashSet<String>,
}

/// The capture millisecond in one of our event ids (UUIDv7: the first 48
/// bits are Unix milliseconds), or `None` for any other id.
pub fn event_id_time_ms(id: &str) -> Option<i64> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    // version nibble (13th hex digit) and RFC 4122 variant
    if &hex[12..13] != "7" || !matches!(&hex[16..17], "8" | "9" | "a" | "b" | "A" | "B") {
        return None;
    }
    i64::from_str_radix(&hex[..12], 16).ok()
}

/// The start of the hour holding `ms`.
fn hour_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// The wanted ids in one capture file's lines: (event ids, inference ids).
///
/// Only each record's `eventMetadata` object is parsed: it is found by its
/// key, `"eventMetadata":`, which cannot occur inside a string (a quote in
/// a string is escaped), so the captured payloads before it are passed
/// over by a substring search rather than by the JSON parser.
fn scan(bytes: &[u8], wanted: &WantedIds) -> (Vec<String>, Vec<String>) {
    const KEY: &str = "\"eventMetadata\":";
    let (mut events, mut inferences) = (Vec::new(), Vec::new());
    let mut keep = |m: MetaIds| {
        if !serving::capture::monitored(m.shadow_test.as_ref()) {
            return;
        }
        if let Some(i) = m.inference_id
            && wanted.inferences.contains(&i)
        {
            inferences.push(i);
        }
        if wanted.events.contains(m.event_id.as_ref()) {
            events.push(m.event_id.into_owned());
        }
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let mut at = 0;
            while let Some(i) = text[at..].find(KEY) {
                at += i + KEY.len();
                let mut de = serde_json::Deserializer::from_str(&text[at..]);
                if let Ok(m) = MetaIds::deserialize(&mut de) {
                    keep(m);
                }
            }
        }
        // not UTF-8 (never written by the server): line by line, whole lines
        Err(_) => {
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let Ok(r) = serde_json::from_slice::<IdsOnly>(line) {
                    keep(r.event_metadata);
                }
            }
        }
    }
    (events, inferences)
}

impl CapturedIds {
    /// Add the `wanted` ids found among the monitored records in an
    /// endpoint's capture `folder` (`serving::capture::folder`) in the hour starting at `hour_ms` (every variant folder).
    /// The files are read and parsed on the blocking pool: from a local
    /// folder in one read each (the object store's stream would take a
    /// blocking-pool hop per 8 KiB), from a remote store through it.
    pub async fn read_hour(
        &mut self,
        arts: &ArtifactStore,
        folder: &str,
        variants: &[String],
        hour_ms: i64,
        wanted: &Arc<WantedIds>,
    ) -> Result<(), String> {
        let part = serving::capture::hour_partition(hour_ms);
        let mut files = Vec::new();
        for v in variants {
            for f in serving::capture::hour_files(arts, folder, v, &part)
                .await
                .map_err(|e| e.to_string())?
            {
                files.push(ArtifactPath::parse(&f.path).map_err(|e| e.to_string())?);
            }
        }
        let mut local = Vec::new();
        let mut fetched = Vec::new();
        for f in &files {
            match arts.local_file(f).map_err(|e| e.to_string())? {
                Some(p) => local.push(p),
                None => fetched.push(arts.read_all(f).await.map_err(|e| e.to_string())?),
            }
        }
        let wanted = Arc::clone(wanted);
        let found = tokio::task::spawn_blocking(move || {
            let mut found = (Vec::new(), Vec::new());
            let mut add = |(e, i): (Vec<String>, Vec<String>)| {
                found.0.extend(e);
                found.1.extend(i);
            };
            for p in local {
                match std::fs::read(&p) {
                    Ok(bytes) => add(scan(&bytes, &wanted)),
                    // written and removed since the listing: nothing to match
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("reading {}: {e}", p.display())),
                }
            }
            for bytes in fetched {
                add(scan(&bytes, &wanted));
            }
            Ok(found)
        })
        .await
        .map_err(|e| e.to_string())??;
        self.events.extend(found.0);
        self.inferences.extend(found.1);
        Ok(())
    }
}

/// A label to look up: its id and whether it is an `inferenceId`.
pub struct Wanted<'a> {
    pub id: &'a str,
    pub by_inference_id: bool,
}

/// Which of `wanted` match a monitored capture record, reading only the
/// hours they can concern (see the module docs); `back_hours` bounds the
/// search for ids that carry no time. Returns the matched flags (in order)
/// and how many hours were read.
pub async fn match_ids(
    arts: &ArtifactStore,
    folder: &str,
    wanted: &[Wanted<'_>],
    now_ms: i64,
    back_hours: u32,
) -> Result<(Vec<bool>, usize), String> {
    let variants = serving::capture::capture_variants(arts, folder)
        .await
        .map_err(|e| e.to_string())?;
    let mut found = vec![false; wanted.len()];
    if variants.is_empty() {
        return Ok((found, 0));
    }
    let mut sets = WantedIds::default();
    for w in wanted {
        if w.by_inference_id {
            sets.inferences.insert(w.id.to_string());
        } else {
            sets.events.insert(w.id.to_string());
        }
    }
    let sets = Arc::new(sets);
    let mut ids = CapturedIds::default();
    let mut read: HashSet<i64> = HashSet::new();
    // ids that say when they were captured
    let mut timed: Vec<i64> = wanted
        .iter()
        .filter(|w| !w.by_inference_id)
        .filter_map(|w| event_id_time_ms(w.id))
        .flat_map(|t| [hour_start(t), hour_start(t) - HOUR_MS])
        .collect();
    timed.sort_unstable();
    timed.dedup();
    for h in timed {
        if read.insert(h) {
            ids.read_hour(arts, folder, &variants, h, &sets).await?;
        }
    }
    let matches = |ids: &CapturedIds, w: &Wanted<'_>| {
        if w.by_inference_id {
            ids.inferences.contains(w.id)
        } else {
            ids.events.contains(w.id)
        }
    };
    for (f, w) in found.iter_mut().zip(wanted) {
        *f = matches(&ids, w);
    }
    // the rest: back from the current hour until all are found
    let mut h = hour_start(now_ms);
    for _ in 0..back_hours {
        if found.iter().all(|f| *f) {
            break;
        }
        if read.insert(h) {
            ids.read_hour(arts, folder, &variants, h, &sets).await?;
            for (f, w) in found.iter_mut().zip(wanted) {
                if !*f {
                    *f = matches(&ids, w);
                }
            }
        }
        h -= HOUR_MS;
    }
    Ok((found, read.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uuid_v7_ids_give_a_time() {
        // 0x0191_2d3f_8a00 ms = 2024-08-07T…; version 7, variant 10xx
        assert_eq!(
            event_id_time_ms("01912d3f-8a00-7abc-9def-0123456789ab"),
            Some(0x0191_2d3f_8a00)
        );
        assert_eq!(
            event_id_time_ms("01912d3f8a007abc9def0123456789ab"),
            Some(0x0191_2d3f_8a00)
        );
        // v4, wrong variant, not hex, wrong length
        assert_eq!(
            event_id_time_ms("01912d3f-8a00-4abc-9def-0123456789ab"),
            None
        );
        assert_eq!(
            event_id_time_ms("01912d3f-8a00-7abc-cdef-0123456789ab"),
            None
        );
        assert_eq!(
            event_id_time_ms("0191zd3f-8a00-7abc-9def-0123456789ab"),
            None
        );
        assert_eq!(event_id_time_ms("id-17"), None);
    }

    #[test]
    fn a_scan_keeps_the_wanted_ids_of_monitored_records_only() {
        let mut wanted = WantedIds::default();
        wanted.events.insert("e1".into());
        wanted.events.insert("e-shadow".into());
        wanted.inferences.insert("i \"quoted\"".into());
        wanted.inferences.insert("i2".into());
        let lines = [
            // captureData holds what looks like ids; it is skipped, not read
            r#"{"captureData":{"endpointInput":{"data":"{\"eventId\":\"e-shadow\"}","encoding":"JSON","mode":"INPUT","observedContentType":"application/json"}},"eventMetadata":{"eventId":"e1","inferenceId":"i \"quoted\"","inferenceTime":"2026-11-27T02:15:18.123Z"},"eventVersion":"0"}"#,
            // a shadow's answer is not Model Monitor's
            r#"{"captureData":{},"eventMetadata":{"eventId":"e-shadow","inferenceId":"i2","inferenceTime":"2026-11-27T02:15:18.123Z","shadowTest":{"id":"t","role":"shadow","latencyMs":1.0,"status":200,"monitored":true}},"eventVersion":"0"}"#,
            "not json",
            r#"{"captureData":{},"eventMetadata":{"eventId":"e-other","inferenceTime":"2026-11-27T02:15:18.123Z"},"eventVersion":"0"}"#,
            // another key order
            r#"{"eventVersion":"0","eventMetadata":{"inferenceTime":"2026-11-27T02:15:18.123Z","inferenceId":"i2","eventId":"e9"},"captureData":{}}"#,
        ];
        let text = lines.join("\n");
        let (events, inferences) = scan(text.as_bytes(), &wanted);
        assert_eq!(events, vec!["e1".to_string()]);
        assert_eq!(
            inferences,
            vec!["i \"quoted\"".to_string(), "i2".to_string()]
        );
        // a file that is not UTF-8 is read line by line: its good lines count
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\n\xff\xfe\n");
        assert_eq!(scan(&bytes, &wanted), (events, inferences));
    }

    #[test]
    fn hours_start_on_the_hour() {
        assert_eq!(hour_start(3 * HOUR_MS + 59_999), 3 * HOUR_MS);
        assert_eq!(hour_start(-1), -HOUR_MS);
    }
}
