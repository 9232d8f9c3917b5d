//! Per endpoint and variant counters and latency histograms (atomics on the
//! request path, nothing else), a history of 5-second buckets for the
//! Studio's charts (filled by a ticker off the request path), and the
//! Prometheus text exposition.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Seconds between history points, and how many are kept (one hour).
pub const TICK_SECONDS: u64 = 5;
const HISTORY: usize = 720;

#[derive(Default)]
pub struct VariantMetrics {
    pub requests: AtomicU64,
    pub rows: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    /// Cumulative count per bucket (the last one is +Inf).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_us: AtomicU64,
    history: Mutex<History>,
}

#[derive(Default)]
struct History {
    last: Option<Snapshot>,
    points: VecDeque<Point>,
}

#[derive(Clone, Copy, Default)]
struct Snapshot {
    requests: u64,
    errors: u64,
    rows: u64,
    latency_us: u64,
    buckets: [u64; BUCKETS.len() + 1],
}

/// One history bucket: what happened in the `TICK_SECONDS` before `t_ms`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    pub t_ms: i64,
    pub requests: u64,
    pub errors: u64,
    pub rows: u64,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Cumulative figures of one variant.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub rows: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The latency below which a fraction `q` of requests fell, interpolated
/// within the bucket (milliseconds).
fn quantile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let want = (q * total as f64).ceil().max(1.0);
    let mut seen = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        if c > 0 && (seen + c) as f64 >= want {
            let lo = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
            let hi = BUCKETS.get(i).copied().unwrap_or(lo * 2.0);
            let frac = (want - seen as f64) / c as f64;
            return Some((lo + (hi - lo) * frac) * 1000.0);
        }
        seen += c;
    }
    None
}

impl VariantMetrics {
    /// Record one answered request.
    pub fn observe(&self, seconds: f64, rows: usize, status: u16) {
        self.requests.fetch_add(1, Relaxed);
        self.rows.fetch_add(rows as u64, Relaxed);
        if (400..500).contains(&status) {
            self.client_errors.fetch_add(1, Relaxed);
        } else if status >= 500 {
            self.server_errors.fetch_add(1, Relaxed);
        }
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.latency_us
            .fetch_add((seconds * 1e6).round() as u64, Relaxed);
    }

    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot {
            requests: self.requests.load(Relaxed),
            errors: self.client_errors.load(Relaxed) + self.server_errors.load(Relaxed),
            rows: self.rows.load(Relaxed),
            latency_us: self.latency_us.load(Relaxed),
            ..Default::default()
        };
        for (d, b) in s.buckets.iter_mut().zip(&self.buckets) {
            *d = b.load(Relaxed);
        }
        s
    }

    pub fn totals(&self) -> Totals {
        let s = self.snapshot();
        Totals {
            requests: s.requests,
            rows: s.rows,
            client_errors: self.client_errors.load(Relaxed),
            server_errors: self.server_errors.load(Relaxed),
            mean_ms: (s.requests > 0).then(|| s.latency_us as f64 / s.requests as f64 / 1000.0),
            p50_ms: quantile(&s.buckets, 0.5),
            p99_ms: quantile(&s.buckets, 0.99),
        }
    }

    /// Close the current history bucket (called every `TICK_SECONDS`).
    pub fn tick(&self, now_ms: i64) {
        let s = self.snapshot();
        let Ok(mut h) = self.history.lock() else {
            return;
        };
        let prev = h.last.unwrap_or_default();
        let mut d = [0u64; BUCKETS.len() + 1];
        for (i, x) in d.iter_mut().enumerate() {
            *x = s.buckets[i].saturating_sub(prev.buckets[i]);
        }
        let requests = s.requests.saturating_sub(prev.requests);
        let p = Point {
            t_ms: now_ms,
            requests,
            errors: s.errors.saturating_sub(prev.errors),
            rows: s.rows.saturating_sub(prev.rows),
            mean_ms: (requests > 0).then(|| {
                s.latency_us.saturating_sub(prev.latency_us) as f64 / requests as f64 / 1000.0
            }),
            p50_ms: quantile(&d, 0.5),
            p99_ms: quantile(&d, 0.99),
        };
        h.last = Some(s);
        h.points.push_back(p);
        while h.points.len() > HISTORY {
            h.points.pop_front();
        }
    }

    pub fn history(&self) -> Vec<Point> {
        self.history
            .lock()
            .map(|h| h.points.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Prometheus lines for this variant.
    pub fn expose(&self, out: &mut String, endpoint: &str, variant: &str) {
        let l = format!("endpoint=\"{endpoint}\",variant=\"{variant}\"");
        let s = self.snapshot();
        let _ = writeln!(out, "atelier_endpoint_requests_total{{{l}}} {}", s.requests);
        let _ = writeln!(out, "atelier_endpoint_rows_total{{{l}}} {}", s.rows);
        let _ = writeln!(
            out,
            "atelier_endpoint_errors_total{{{l},kind=\"client\"}} {}",
            self.client_errors.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "atelier_endpoint_errors_total{{{l},kind=\"server\"}} {}",
            self.server_errors.load(Relaxed)
        );
        let mut cum = 0;
        for (i, c) in s.buckets.iter().enumerate() {
            cum += c;
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "atelier_endpoint_latency_seconds_bucket{{{l},le=\"{le}\"}} {cum}"
            );
        }
        let _ = writeln!(
            out,
            "atelier_endpoint_latency_seconds_sum{{{l}}} {}",
            s.latency_us as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "atelier_endpoint_latency_seconds_count{{{l}}} {}",
            s.requests
        );
    }
}

/// Counters of an endpoint as a whole (before a variant is chosen, and
/// capture).
#[derive(Default)]
pub struct EndpointMetrics {
    /// Requests refused with 503 because the endpoint was at its
    /// concurrency limit.
    pub overloaded: AtomicU64,
    /// Requests refused before reaching a variant (bad headers, too large).
    pub rejected: AtomicU64,
    pub capture_written: AtomicU64,
    /// Capture records dropped because the capture buffer was full.
    pub capture_dropped: AtomicU64,
}

pub const HELP: &str = "# HELP atelier_endpoint_requests_total Invocations answered by a variant.
# TYPE atelier_endpoint_requests_total counter
# HELP atelier_endpoint_rows_total Rows predicted by a variant.
# TYPE atelier_endpoint_rows_total counter
# HELP atelier_endpoint_errors_total Invocations a variant answered with an error (client: 4xx, server: 5xx).
# TYPE atelier_endpoint_errors_total counter
# HELP atelier_endpoint_latency_seconds Time from the request's arrival to its answer.
# TYPE atelier_endpoint_latency_seconds histogram
# HELP atelier_endpoint_overloaded_total Invocations refused with 503 at the endpoint's concurrency limit.
# TYPE atelier_endpoint_overloaded_total counter
# HELP atelier_endpoint_rejected_total Invocations refused before reaching a variant (payload too large, unknown target variant).
# TYPE atelier_endpoint_rejected_total counter
# HELP atelier_endpoint_capture_records_total Data capture records written.
# TYPE atelier_endpoint_capture_records_total counter
# HELP atelier_endpoint_capture_dropped_total Data capture records dropped because the capture buffer was full.
# TYPE atelier_endpoint_capture_dropped_total counter
# HELP atelier_endpoint_shadow_dropped_total Copies for a running shadow test dropped because the shadow queue was full (this process).
# TYPE atelier_endpoint_shadow_dropped_total counter
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let m = VariantMetrics::default();
        for _ in 0..99 {
            m.observe(0.0003, 1, 200);
        }
        m.observe(0.2, 1, 500);
        let t = m.totals();
        assert_eq!(t.requests, 100);
        assert_eq!(t.server_errors, 1);
        assert!(t.p50_ms.is_some_and(|p| p <= 0.5), "{t:?}");
        assert!(t.p99_ms.is_some_and(|p| p <= 0.5), "{t:?}");
        m.tick(1);
        m.observe(0.2, 3, 400);
        m.tick(2);
        let h = m.history();
        assert_eq!(h.len(), 2);
        assert_eq!((h[1].requests, h[1].errors, h[1].rows), (1, 1, 3));
        assert!(h[1].p50_ms.is_some_and(|p| (100.0..=250.0).contains(&p)));
        let mut s = String::new();
        m.expose(&mut s, "e", "v");
        assert!(s.contains(
            "atelier_endpoint_latency_seconds_bucket{endpoint=\"e\",variant=\"v\",le=\"+Inf\"} 101"
        ));
    }
}
