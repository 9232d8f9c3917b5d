//! Data capture: sampled requests and responses written as JSON Lines in
//! SageMaker's capture record shape, off the request path.
//!
//! The request handler only puts a small record (reference-counted bodies)
//! on a bounded channel with `try_send`; when the channel is full the
//! record is dropped and counted (`atelier_endpoint_capture_dropped_total`),
//! never the request. A writer task groups records by endpoint, variant and
//! hour and writes one new file per group about every second.
//!
//! Layout under the artifact store (see the crate docs):
//! `capture/<endpoint>/<variant>/YYYY/MM/DD/HH/<epoch-ms>-<random>.jsonl`,
//! under `projects/<project>/` for an endpoint of another project than the
//! default one (see [`folder`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use artifacts::{ArtifactPath, ArtifactStore};
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::Result;
use crate::metrics::EndpointMetrics;

/// Capture records waiting to be written, at most.
pub const BUFFER: usize = 4096;

/// One side of an invocation, as SageMaker writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureData {
    pub observed_content_type: String,
    /// `INPUT` or `OUTPUT`.
    pub mode: String,
    pub data: String,
    /// `CSV`, `JSON` (data is the text as sent) or `BASE64`.
    pub encoding: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Captured {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_input: Option<CaptureData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_output: Option<CaptureData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    pub event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_id: Option<String>,
    /// ISO 8601 UTC with milliseconds, e.g. `2026-11-27T02:15:18.123Z`.
    pub inference_time: String,
    /// Atelier's extension: the record is one side of a shadow test's
    /// pair (the production answer or the shadow's, same `eventId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_test: Option<ShadowMeta>,
}

/// One side of a shadow test pair (in `eventMetadata.shadowTest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowMeta {
    /// The test's id ([`crate::endpoint::ShadowConfig::id`]).
    pub id: String,
    /// `production` or `shadow`.
    pub role: String,
    /// Time to parse, predict and write the answer, in milliseconds.
    pub latency_ms: f64,
    /// HTTP status of the answer (the shadow's as if it had answered).
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Production side: whether the copy was `queued` for the shadow or
    /// `dropped` (the shadow queue was full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
    /// Production side: whether data capture sampled this request anyway
    /// (only those are Model Monitor's; the rest exist for the test).
    #[serde(default)]
    pub monitored: bool,
}

impl CaptureRecord {
    /// Whether Model Monitor (and [`read_capture`]) sees this record: not
    /// a shadow's answer, not a failed production answer, and not a
    /// production answer captured only for a shadow test.
    pub fn monitored(&self) -> bool {
        monitored(self.event_metadata.shadow_test.as_ref())
    }
}

/// Whether Model Monitor sees a record with this `shadowTest` block (see
/// [`CaptureRecord::monitored`]), for readers that parse no whole record.
pub fn monitored(shadow_test: Option<&ShadowMeta>) -> bool {
    match shadow_test {
        None => true,
        Some(m) => m.role == "production" && m.monitored && m.status == 200,
    }
}

/// One line of a capture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureRecord {
    pub capture_data: Captured,
    pub event_metadata: EventMetadata,
    pub event_version: String,
    /// The variant that answered (from the file's path; not in the line).
    #[serde(skip)]
    pub variant: String,
}

/// An endpoint's capture folder in project `workspace`'s part of the
/// artifact store (see [`artifacts::projects`]): `capture/<endpoint>` in
/// the default project, `projects/<workspace>/capture/<endpoint>` in
/// another, so an endpoint name one project frees and another takes starts
/// with no captures.
pub fn folder(workspace: &str, endpoint: &str) -> String {
    artifacts::projects::in_project(workspace, &format!("capture/{endpoint}"))
}

/// What the request path hands to the writer.
pub struct Pending {
    /// The endpoint's capture [`folder`].
    pub folder: Arc<str>,
    pub variant: Arc<str>,
    pub time_ms: i64,
    pub inference_id: Option<String>,
    pub input: Option<(String, Bytes)>,
    pub output: Option<(String, Bytes)>,
    pub metrics: Arc<EndpointMetrics>,
    /// Set for a shadow test's pair (both sides share it); a new id
    /// otherwise.
    pub event_id: Option<String>,
    pub shadow: Option<ShadowMeta>,
}

fn encoding_of(content_type: &str) -> &'static str {
    if content_type.contains("csv") {
        "CSV"
    } else {
        "JSON"
    }
}

fn side(mode: &str, (ct, body): &(String, Bytes)) -> CaptureData {
    let (data, encoding) = match std::str::from_utf8(body) {
        Ok(s) => (s.to_string(), encoding_of(ct)),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(body),
            "BASE64",
        ),
    };
    CaptureData {
        observed_content_type: ct.clone(),
        mode: mode.into(),
        data,
        encoding: encoding.into(),
    }
}

/// `2026-11-27T02:15:18.123Z`.
pub fn iso_time(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        ms.rem_euclid(1000)
    )
}

fn civil(ms: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let (y, mo, d) = tabular::civil_from_days(days);
    let secs = ms.rem_euclid(86_400_000) / 1000;
    (y, mo, d, secs / 3600, secs / 60 % 60, secs % 60)
}

/// `YYYY/MM/DD/HH` of a time.
pub fn hour_partition(ms: i64) -> String {
    let (y, mo, d, h, _, _) = civil(ms);
    format!("{y:04}/{mo:02}/{d:02}/{h:02}")
}

impl Pending {
    pub fn record(&self) -> CaptureRecord {
        CaptureRecord {
            capture_data: Captured {
                endpoint_input: self.input.as_ref().map(|i| side("INPUT", i)),
                endpoint_output: self.output.as_ref().map(|o| side("OUTPUT", o)),
            },
            event_metadata: EventMetadata {
                event_id: self
                    .event_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                inference_id: self.inference_id.clone(),
                inference_time: iso_time(self.time_ms),
                shadow_test: self.shadow.clone(),
            },
            event_version: "0".into(),
            variant: self.variant.to_string(),
        }
    }
}

/// The sending half, cloned into every endpoint.
#[derive(Clone)]
pub struct CaptureSender {
    records: mpsc::Sender<Pending>,
    flushes: mpsc::UnboundedSender<tokio::sync::oneshot::Sender<()>>,
}

impl CaptureSender {
    /// Queue a record without waiting; a full buffer drops it (counted).
    pub fn offer(&self, p: Pending) {
        let metrics = p.metrics.clone();
        if self.records.try_send(p).is_err() {
            metrics.capture_dropped.fetch_add(1, Relaxed);
        }
    }

    /// Write everything queued so far (at shutdown); waits at most 10 s.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.flushes.send(tx).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
    }
}

/// Start the writer task (on the current runtime).
pub fn start(artifacts: ArtifactStore) -> CaptureSender {
    start_with(artifacts, BUFFER, Duration::from_secs(1))
}

pub fn start_with(artifacts: ArtifactStore, buffer: usize, every: Duration) -> CaptureSender {
    let (tx, rx) = mpsc::channel(buffer);
    let (ftx, frx) = mpsc::unbounded_channel();
    tokio::spawn(writer(artifacts, rx, frx, every));
    CaptureSender {
        records: tx,
        flushes: ftx,
    }
}

type Groups = HashMap<Group, (Vec<u8>, u64, Arc<EndpointMetrics>)>;

/// Add a record to its group; returns the group's buffered size.
fn add(groups: &mut Groups, p: Pending) -> usize {
    let key = (
        p.folder.clone(),
        p.variant.clone(),
        hour_partition(p.time_ms),
    );
    let rec = p.record();
    let g = groups
        .entry(key)
        .or_insert_with(|| (Vec::new(), 0, p.metrics.clone()));
    if serde_json::to_writer(&mut g.0, &rec).is_ok() {
        g.0.push(b'\n');
        g.1 += 1;
    }
    g.0.len()
}

type Group = (Arc<str>, Arc<str>, String);

async fn writer(
    artifacts: ArtifactStore,
    mut rx: mpsc::Receiver<Pending>,
    mut flushes: mpsc::UnboundedReceiver<tokio::sync::oneshot::Sender<()>>,
    every: Duration,
) {
    let mut groups: Groups = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(p) => {
                    if add(&mut groups, p) > (4 << 20) {
                        flush(&artifacts, &mut groups).await;
                    }
                }
                None => {
                    flush(&artifacts, &mut groups).await;
                    return;
                }
            },
            Some(done) = flushes.recv() => {
                while let Ok(p) = rx.try_recv() {
                    add(&mut groups, p);
                }
                flush(&artifacts, &mut groups).await;
                let _ = done.send(());
            }
            _ = tick.tick() => flush(&artifacts, &mut groups).await,
        }
    }
}

async fn flush(artifacts: &ArtifactStore, groups: &mut Groups) {
    for ((folder, variant, hour), (buf, n, metrics)) in groups.drain() {
        if buf.is_empty() {
            continue;
        }
        let file = format!(
            "{folder}/{variant}/{hour}/{}-{}.jsonl",
            store::now_ms(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let res = match ArtifactPath::parse(&file) {
            Ok(p) => artifacts.put_bytes(&p, Bytes::from(buf)).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => {
                metrics.capture_written.fetch_add(n, Relaxed);
            }
            Err(e) => {
                metrics.capture_dropped.fetch_add(n, Relaxed);
                tracing::warn!("data capture in {folder}/{variant}: could not write {file}: {e}");
            }
        }
    }
}

/// Every capture record in an endpoint's capture `folder` whose inference time is in
/// `[from_ms, to_ms)`, oldest first, across variants. Unreadable lines are
/// skipped with a warning. Shadow tests' own records are left out (see
/// [`CaptureRecord::monitored`]).
pub async fn read_capture(
    artifacts: &ArtifactStore,
    folder: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<CaptureRecord>> {
    let mut all = read_records(artifacts, folder, from_ms, to_ms, None).await?;
    all.retain(CaptureRecord::monitored);
    Ok(all)
}

/// Every record in an endpoint's capture `folder` in `[from_ms, to_ms)`, shadow tests'
/// included, from the given variant folders only (all when `None`).
pub async fn read_records(
    artifacts: &ArtifactStore,
    folder: &str,
    from_ms: i64,
    to_ms: i64,
    variants: Option<&[&str]>,
) -> Result<Vec<CaptureRecord>> {
    let mut out: Vec<(i64, CaptureRecord)> = Vec::new();
    for f in capture_files(artifacts, folder, from_ms, to_ms, variants).await? {
        for r in read_file(artifacts, &f).await? {
            let t = tabular::parse_datetime(&r.event_metadata.inference_time).unwrap_or(i64::MIN);
            if t >= from_ms && t < to_ms {
                out.push((t, r));
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// A capture file: its path and the variant folder it is in. Files are
/// written once under a new name and never changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaptureFile {
    pub path: String,
    pub variant: String,
}

/// The capture files in `folder` whose hour partition overlaps
/// `[from_ms, to_ms)`, in the given variant folders (all when `None`).
pub async fn capture_files(
    artifacts: &ArtifactStore,
    folder: &str,
    from_ms: i64,
    to_ms: i64,
    variants: Option<&[&str]>,
) -> Result<Vec<CaptureFile>> {
    // beyond year 9999 the partition names stop being comparable
    let to_ms = to_ms.min(253_402_300_799_999);
    // a partition names its hour: no need to round the times first
    let first_hour = hour_partition(from_ms.max(0));
    let last_hour = hour_partition(to_ms.max(0));
    // only the folders asked for, and in them only the YYYY/MM/DD/HH folders
    // the window overlaps: a long-lived endpoint has millions of files, and
    // listing them all would make every read grow with the history
    let variants: Vec<String> = match variants {
        Some(v) => v.iter().map(|v| v.to_string()).collect(),
        None => capture_variants(artifacts, folder).await?,
    };
    let mut out = Vec::new();
    for variant in variants {
        let base = format!("{folder}/{variant}");
        // partial partitions ("2026", "2026/11", …) still in the window
        let mut level: Vec<String> = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for part in &level {
                let dir = if part.is_empty() {
                    base.clone()
                } else {
                    format!("{base}/{part}")
                };
                for e in artifacts.list(&ArtifactPath::parse(&dir)?).await? {
                    if !e.is_dir {
                        continue;
                    }
                    let p = if part.is_empty() {
                        e.name
                    } else {
                        format!("{part}/{}", e.name)
                    };
                    let n = p.len().min(first_hour.len());
                    if p.as_str() >= &first_hour[..n] && p.as_str() <= &last_hour[..n] {
                        next.push(p);
                    }
                }
            }
            level = next;
        }
        level.sort();
        for hour in level {
            out.extend(hour_files(artifacts, folder, &variant, &hour).await?);
        }
    }
    Ok(out)
}

/// The variant folders of an endpoint's capture.
pub async fn capture_variants(artifacts: &ArtifactStore, folder: &str) -> Result<Vec<String>> {
    Ok(artifacts
        .list(&ArtifactPath::parse(folder)?)
        .await?
        .into_iter()
        .filter(|e| e.is_dir)
        .map(|e| e.name)
        .collect())
}

/// The capture files in one variant's hour folder (`hour` as
/// [`hour_partition`] names it), by name.
pub async fn hour_files(
    artifacts: &ArtifactStore,
    folder: &str,
    variant: &str,
    hour: &str,
) -> Result<Vec<CaptureFile>> {
    let dir = format!("{folder}/{variant}/{hour}");
    let mut names: Vec<String> = artifacts
        .list(&ArtifactPath::parse(&dir)?)
        .await?
        .into_iter()
        .filter(|e| !e.is_dir && e.name.ends_with(".jsonl"))
        .map(|e| e.name)
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| CaptureFile {
            path: format!("{dir}/{name}"),
            variant: variant.to_string(),
        })
        .collect())
}

/// Every record of one capture file (unreadable lines skipped with a
/// warning).
pub async fn read_file(artifacts: &ArtifactStore, f: &CaptureFile) -> Result<Vec<CaptureRecord>> {
    let bytes = artifacts.read_all(&ArtifactPath::parse(&f.path)?).await?;
    let mut out = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<CaptureRecord>(line) {
            Ok(mut r) => {
                r.variant = f.variant.clone();
                out.push(r);
            }
            Err(e) => tracing::warn!("skipping a bad capture line in {}: {e}", f.path),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(m: &Arc<EndpointMetrics>, i: usize) -> Pending {
        Pending {
            folder: Arc::from("capture/ep"),
            variant: Arc::from("v1"),
            time_ms: 1_795_400_118_123 + i as i64,
            inference_id: Some(format!("id-{i}")),
            input: Some(("text/csv".into(), Bytes::from_static(b"1,2,3"))),
            output: Some(("application/json".into(), Bytes::from_static(b"{}"))),
            metrics: m.clone(),
            event_id: None,
            shadow: None,
        }
    }

    /// Only the hour folders a window overlaps are listed and read, in every
    /// variant folder (or the ones asked for); other hours, months and years
    /// are pruned by name.
    #[tokio::test]
    async fn capture_files_come_from_the_window_hours_only() {
        let dir = tempfile::tempdir().unwrap();
        let arts = ArtifactStore::local(dir.path()).unwrap();
        const H: i64 = 3_600_000;
        let t0 = 1_795_400_118_123; // 2026-11-22T…
        for (variant, at) in [
            ("v1", t0 - 400 * 24 * H), // a year before
            ("v1", t0 - 2 * H),
            ("v1", t0),
            ("v1", t0 + H),
            ("v2", t0),
            ("v2", t0 + 40 * 24 * H), // a month after
        ] {
            let path = format!("capture/ep/{variant}/{}/x-{at}.jsonl", hour_partition(at));
            arts.put_bytes(
                &ArtifactPath::parse(&path).unwrap(),
                Bytes::from_static(b"\n"),
            )
            .await
            .unwrap();
        }
        let names = |fs: Vec<CaptureFile>| -> Vec<String> {
            fs.into_iter()
                .map(|f| format!("{}:{}", f.variant, f.path.rsplit('/').next().unwrap()))
                .collect()
        };
        let got = capture_files(&arts, "capture/ep", t0 - H, t0 + H, None)
            .await
            .unwrap();
        assert_eq!(
            names(got),
            [
                format!("v1:x-{t0}.jsonl"),
                format!("v1:x-{}.jsonl", t0 + H),
                format!("v2:x-{t0}.jsonl")
            ]
        );
        let got = capture_files(&arts, "capture/ep", t0, t0 + 1, Some(&["v2"]))
            .await
            .unwrap();
        assert_eq!(names(got), [format!("v2:x-{t0}.jsonl")]);
        // a window over everything finds every file
        assert_eq!(
            capture_files(&arts, "capture/ep", 0, i64::MAX, None)
                .await
                .unwrap()
                .len(),
            6
        );
        assert!(
            capture_files(&arts, "nope", 0, i64::MAX, None)
                .await
                .unwrap()
                .is_empty()
        );
    }

    // one thread: the writer cannot drain while the offers run, so exactly the buffer is kept
    #[tokio::test]
    async fn a_full_buffer_drops_records_never_waits_and_the_rest_are_readable() {
        let dir = tempfile::tempdir().unwrap();
        let arts = ArtifactStore::local(dir.path()).unwrap();
        let m = Arc::new(EndpointMetrics::default());
        // a buffer of 4 and a writer that flushes once a minute: offers beyond 4 are dropped
        let tx = start_with(arts.clone(), 4, Duration::from_secs(60));
        let t = std::time::Instant::now();
        for i in 0..1000 {
            tx.offer(pending(&m, i));
        }
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "offering never waits"
        );
        let dropped = m.capture_dropped.load(Relaxed);
        assert_eq!(dropped, 996);
        // an explicit flush writes what was accepted, at once
        tx.flush().await;
        assert_eq!(m.capture_written.load(Relaxed), 4);
        drop(tx);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while m.capture_written.load(Relaxed) + dropped < 1000
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let written = m.capture_written.load(Relaxed);
        assert_eq!(written + dropped, 1000);
        let recs = read_capture(&arts, "capture/ep", 1_795_400_118_000, 1_795_400_120_000)
            .await
            .unwrap();
        assert_eq!(recs.len() as u64, written);
        let r = &recs[0];
        assert_eq!(r.variant, "v1");
        assert_eq!(
            r.capture_data.endpoint_input.as_ref().unwrap().encoding,
            "CSV"
        );
        assert_eq!(
            r.capture_data.endpoint_input.as_ref().unwrap().data,
            "1,2,3"
        );
        assert!(
            r.event_metadata
                .inference_id
                .as_deref()
                .unwrap()
                .starts_with("id-")
        );
        // outside the time range: nothing
        assert!(
            read_capture(&arts, "capture/ep", 0, 1000)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn binary_payloads_are_base64() {
        let d = side(
            "INPUT",
            &(
                "application/octet-stream".into(),
                Bytes::from_static(&[0xff, 0xfe]),
            ),
        );
        assert_eq!(d.encoding, "BASE64");
        assert_eq!(d.data, "//4=");
    }

    #[test]
    fn times_and_partitions() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_795_400_118_123), "2026-11-23T02:15:18.123Z");
        assert_eq!(hour_partition(1_795_400_118_123), "2026/11/23/02");
        assert_eq!(
            tabular::parse_datetime(&iso_time(1_795_400_118_123)),
            Some(1_795_400_118_123)
        );
    }
}
