//! `cargo xtask bench traces`: OTLP/HTTP span ingestion and trace search, Atelier against a real
//! `mlflow server` (3.17.2, SQLite backend), both started in the same run on this machine and fed
//! the same protobuf request bodies; then Atelier alone with a store of 1M spans (sent through
//! OTLP too) to see whether trace search stays interactive.
//!
//! The OTLP requests are encoded here by hand (a few protobuf messages: varints, length-delimited
//! fields, fixed64 times), generated from a seed: trace `g` is an agent span with nine children
//! (retrievers, LLM calls with `mlflow.chat.tokenUsage`, tools named `tool-0`…`tool-9`), every
//! 20th trace failing. Ten traces (100 spans) per request, as a batch span processor sends them.

use crate::bench_tracking::{Http, Server, group_stats, settle};
use crate::common::free_port;
use crate::common::{
    cpu_model, ensure_venv, kill_groups_on_signal, loadavg, nproc, release_atelier, root, say,
    target_dir, update_readme, utc_stamp,
};
use crate::json::{Json, json_str};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo xtask bench traces [options]

Starts Atelier (target/release/atelier) and `mlflow server` 3.17.2 (SQLite
backend; MLflow from target/bench-venv, bench/tracking/requirements.txt) on
127.0.0.1, sends both the same OTLP/HTTP protobuf requests (100 spans each)
to /v1/traces and times them, then times the same trace searches on both
(/api/3.0/mlflow/traces/search). Then fills Atelier alone up to --big spans
through OTLP and times the searches again. Prints a table, writes
target/bench-traces.json and target/bench-traces.md and README.md's
<!-- bench:traces --> block.

options:
  --spans N            spans sent to each server for the comparison [default 20000]
  --big N              spans in Atelier's large store [default 1000000; 0 skips it]
  --conns C            concurrent connections while ingesting [default 4]
  --repeat R           timed runs of each search [default 15]
  --skip-mlflow        only Atelier (no ratios)
  --skip-build         use the existing release binary
  --no-readme          leave README.md alone
  --python PATH        a Python with mlflow==3.17.2 (skips target/bench-venv)
  -h, --help           this text";

const MLFLOW_VERSION: &str = "3.17.2";
const SPANS_PER_TRACE: u64 = 10;
const TRACES_PER_REQUEST: u64 = 10;
/// Trace g starts at BASE_NS + g * 10 ms.
const BASE_NS: u64 = 1_780_000_000_000_000_000;
/// Interactive: every search answers within this many milliseconds.
const INTERACTIVE_MS: f64 = 200.0;

struct Opts {
    spans: u64,
    big: u64,
    conns: usize,
    repeat: usize,
    skip_mlflow: bool,
    skip_build: bool,
    readme: bool,
    python: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        spans: 20_000,
        big: 1_000_000,
        conns: 4,
        repeat: 15,
        skip_mlflow: false,
        skip_build: false,
        readme: true,
        python: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--spans" => o.spans = val()?.parse().map_err(|_| "--spans N")?,
            "--big" => o.big = val()?.parse().map_err(|_| "--big N")?,
            "--conns" => o.conns = val()?.parse().map_err(|_| "--conns C")?,
            "--repeat" => o.repeat = val()?.parse().map_err(|_| "--repeat R")?,
            "--skip-mlflow" => o.skip_mlflow = true,
            "--skip-build" => o.skip_build = true,
            "--no-readme" => o.readme = false,
            "--python" => o.python = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    let per_request = SPANS_PER_TRACE * TRACES_PER_REQUEST;
    if o.spans < per_request || o.conns == 0 || o.repeat == 0 {
        return Err(format!(
            "--spans must be at least {per_request}; --conns and --repeat at least 1"
        ));
    }
    Ok(Some(o))
}

// ---------------------------------------------------------------- protobuf by hand

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}
fn key(b: &mut Vec<u8>, field: u32, wire: u8) {
    varint(b, (u64::from(field) << 3) | u64::from(wire));
}
fn bytes(b: &mut Vec<u8>, field: u32, v: &[u8]) {
    key(b, field, 2);
    varint(b, v.len() as u64);
    b.extend_from_slice(v);
}
fn fixed64(b: &mut Vec<u8>, field: u32, v: u64) {
    key(b, field, 1);
    b.extend_from_slice(&v.to_le_bytes());
}
fn uint(b: &mut Vec<u8>, field: u32, v: u64) {
    key(b, field, 0);
    varint(b, v);
}
fn msg(b: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    bytes(b, field, &inner);
}
/// A `KeyValue` with a string `AnyValue`, as field `field` of its message.
fn kv(b: &mut Vec<u8>, field: u32, k: &str, v: &str) {
    msg(b, field, |m| {
        bytes(m, 1, k.as_bytes());
        msg(m, 2, |a| bytes(a, 1, v.as_bytes()));
    });
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Trace g's duration in ms: 100 … 999.
fn trace_ms(g: u64) -> u64 {
    100 + (g * 37) % 900
}
fn is_error(g: u64) -> bool {
    g.is_multiple_of(20)
}

/// One span (`opentelemetry.proto.trace.v1.Span`) into `b` as field 2 of a ScopeSpans.
#[allow(clippy::too_many_arguments)]
fn span(
    b: &mut Vec<u8>,
    trace_id: &[u8; 16],
    span_id: u64,
    parent: Option<u64>,
    name: &str,
    kind: &str,
    start: u64,
    end: u64,
    error: bool,
    g: u64,
    j: u64,
) {
    msg(b, 2, |s| {
        bytes(s, 1, trace_id);
        bytes(s, 2, &span_id.to_be_bytes());
        if let Some(p) = parent {
            bytes(s, 4, &p.to_be_bytes());
        }
        bytes(s, 5, name.as_bytes());
        uint(s, 6, 1); // SPAN_KIND_INTERNAL
        fixed64(s, 7, start);
        fixed64(s, 8, end);
        kv(s, 9, "mlflow.spanType", &format!("\"{kind}\""));
        kv(
            s,
            9,
            "mlflow.spanInputs",
            &format!(
                "{{\"question\": \"question {g}, step {j}: what is the weather in city {}?\", \"top_k\": 5}}",
                g % 97
            ),
        );
        kv(
            s,
            9,
            "mlflow.spanOutputs",
            &format!(
                "{{\"answer\": \"it is sunny in city {} (trace {g}, span {j})\"}}",
                g % 97
            ),
        );
        kv(
            s,
            9,
            "user.tier",
            if g.is_multiple_of(3) { "pro" } else { "free" },
        );
        if kind == "LLM" {
            let i = 50 + (g + j) % 200;
            let o = 10 + (g * 7 + j) % 90;
            kv(
                s,
                9,
                "mlflow.chat.tokenUsage",
                &format!(
                    "{{\"input_tokens\": {i}, \"output_tokens\": {o}, \"total_tokens\": {}}}",
                    i + o
                ),
            );
        }
        msg(s, 15, |st| {
            if error {
                bytes(st, 2, b"tool call failed");
            }
            uint(st, 3, if error { 2 } else { 1 });
        });
    });
}

/// The OTLP `ExportTraceServiceRequest` carrying traces `first .. first + TRACES_PER_REQUEST`.
fn request_body(first: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    msg(&mut out, 1, |rs| {
        msg(rs, 1, |res| kv(res, 1, "service.name", "bench-agent"));
        msg(rs, 2, |ss| {
            msg(ss, 1, |scope| bytes(scope, 1, b"atelier-bench"));
            for g in first..first + TRACES_PER_REQUEST {
                let hi = splitmix64(g ^ 0xA7E1_1E55);
                let lo = splitmix64(hi ^ g);
                let mut tid = [0u8; 16];
                tid[..8].copy_from_slice(&hi.to_be_bytes());
                tid[8..].copy_from_slice(&lo.to_be_bytes());
                let start = BASE_NS + g * 10_000_000;
                let dur = trace_ms(g) * 1_000_000;
                let root = splitmix64(lo) | 1;
                let err = is_error(g);
                span(
                    ss,
                    &tid,
                    root,
                    None,
                    "agent",
                    "AGENT",
                    start,
                    start + dur,
                    err,
                    g,
                    0,
                );
                let step = dur / SPANS_PER_TRACE;
                for j in 1..SPANS_PER_TRACE {
                    let (name, kind) = match j % 3 {
                        1 => ("retrieve".to_string(), "RETRIEVER"),
                        2 => ("llm".to_string(), "LLM"),
                        // one trace in 1,000 escalates to a human: a rare span name
                        _ if j == SPANS_PER_TRACE - 1 && g % 1000 == 7 => {
                            ("escalate".to_string(), "TOOL")
                        }
                        _ => (format!("tool-{}", (g + j) % 10), "TOOL"),
                    };
                    let s0 = start + j * step;
                    span(
                        ss,
                        &tid,
                        splitmix64(root ^ j) | 1,
                        Some(root),
                        &name,
                        kind,
                        s0,
                        s0 + step * 8 / 10,
                        err && j == SPANS_PER_TRACE - 1,
                        g,
                        j,
                    );
                }
            }
        });
    });
    out
}

// ---------------------------------------------------------------- measuring

struct Ingest {
    spans: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The bodies of requests `from .. to` (request r carries traces r*10 …), made before they are
/// timed.
fn bodies(from: u64, to: u64) -> Vec<Vec<u8>> {
    (from..to)
        .map(|r| request_body(r * TRACES_PER_REQUEST))
        .collect()
}

/// Sends requests `from .. to` over `conns` keep-alive connections (their bodies made first, in
/// chunks, untimed); every answer must be 200.
fn ingest(port: u16, exp: &str, from: u64, to: u64, conns: usize) -> Result<Ingest, String> {
    const CHUNK: u64 = 500;
    let mut total = Ingest {
        spans: 0,
        secs: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
    };
    let mut lat = Vec::new();
    let mut at = from;
    while at < to {
        let end = (at + CHUNK).min(to);
        let b = bodies(at, end);
        let (secs, mut l) = send_all(port, exp, &b, conns)?;
        total.secs += secs;
        total.spans += (end - at) * TRACES_PER_REQUEST * SPANS_PER_TRACE;
        lat.append(&mut l);
        at = end;
    }
    total.p50_ms = percentile(&mut lat, 0.5);
    total.p99_ms = percentile(&mut lat, 0.99);
    Ok(total)
}

/// Sends these bodies over `conns` connections; the seconds it took and each request's ms.
fn send_all(
    port: u16,
    exp: &str,
    bodies: &[Vec<u8>],
    conns: usize,
) -> Result<(f64, Vec<f64>), String> {
    let (from, to) = (0u64, bodies.len() as u64);
    let next = Arc::new(AtomicUsize::new(from as usize));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..conns {
            let (next, lat, failure) = (next.clone(), lat.clone(), failure.clone());
            sc.spawn(move || {
                let mut h = Http::new(port, Duration::from_secs(300));
                let mut mine = Vec::new();
                loop {
                    let r = next.fetch_add(1, Ordering::Relaxed) as u64;
                    if r >= to {
                        break;
                    }
                    let body = &bodies[r as usize];
                    let t = Instant::now();
                    let res = h.post_bytes(
                        "/v1/traces",
                        &[
                            ("Content-Type", "application/x-protobuf"),
                            ("x-mlflow-experiment-id", exp),
                        ],
                        body,
                    );
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    let bad = match res {
                        Ok(r) if r.status == 200 => None,
                        Ok(r) => Some(format!(
                            "HTTP {}: {}",
                            r.status,
                            r.body.chars().take(300).collect::<String>()
                        )),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(b) = bad {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(b);
                        }
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                        break;
                    }
                }
                if let Ok(mut l) = lat.lock() {
                    l.extend(mine);
                }
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    if let Some(f) = failure.lock().ok().and_then(|f| f.clone()) {
        return Err(format!("OTLP export failed: {f}"));
    }
    let l = lat.lock().map(|l| l.clone()).unwrap_or_default();
    Ok((secs, l))
}

fn create_experiment(port: u16, name: &str) -> Result<String, String> {
    let mut h = Http::new(port, Duration::from_secs(60));
    let r = h
        .post(
            "/api/2.0/mlflow/experiments/create",
            &format!("{{\"name\": {}}}", json_str(name)),
        )
        .map_err(|e| format!("experiments/create: {e}"))?;
    if r.status != 200 {
        return Err(format!("experiments/create: HTTP {} {}", r.status, r.body));
    }
    Json::parse(&r.body)?
        .field_str("experiment_id")
        .map(str::to_string)
        .ok_or_else(|| format!("experiments/create answered {}", r.body))
}

/// The searches, as (label, filter, order_by); the first is what the Studio's Traces tab asks.
fn searches(n_traces: u64) -> Vec<(String, String, Option<&'static str>)> {
    // a window holding 1 % of the traces, in the middle
    let from_ms = (BASE_NS + n_traces / 2 * 10_000_000) / 1_000_000;
    let to_ms = from_ms + n_traces / 100 * 10;
    vec![
        ("newest 50 (the Traces tab)".into(), String::new(), None),
        (
            "status = ERROR".into(),
            "trace.status = 'ERROR'".into(),
            None,
        ),
        (
            "latency > 950 ms".into(),
            "trace.execution_time_ms > 950".into(),
            None,
        ),
        (
            "time window (1 % of traces)".into(),
            format!("trace.timestamp_ms >= {from_ms} AND trace.timestamp_ms < {to_ms}"),
            None,
        ),
        (
            "span name (span.name = 'tool-7')".into(),
            "span.name = 'tool-7'".into(),
            None,
        ),
        (
            "rare span name (0.1 % of traces)".into(),
            "span.name = 'escalate'".into(),
            None,
        ),
        (
            "status AND latency, slowest first".into(),
            "trace.status = 'OK' AND trace.execution_time_ms > 500".into(),
            Some("execution_time_ms DESC"),
        ),
    ]
}

fn search_body(exp: &str, filter: &str, order: Option<&str>) -> String {
    let mut b = format!(
        "{{\"locations\": [{{\"type\": \"MLFLOW_EXPERIMENT\", \"mlflow_experiment\": {{\"experiment_id\": {}}}}}], \"max_results\": 50",
        json_str(exp)
    );
    if !filter.is_empty() {
        let _ = write!(b, ", \"filter\": {}", json_str(filter));
    }
    if let Some(o) = order {
        let _ = write!(b, ", \"order_by\": [{}]", json_str(o));
    }
    b.push('}');
    b
}

/// Median and max ms of `repeat` runs of one search (after one untimed run); and how many traces
/// its first page held.
fn time_search(
    port: u16,
    exp: &str,
    filter: &str,
    order: Option<&str>,
    repeat: usize,
) -> Result<(f64, f64, usize), String> {
    let mut h = Http::new(port, Duration::from_secs(600));
    let body = search_body(exp, filter, order);
    let mut times = Vec::with_capacity(repeat);
    let mut found = 0;
    let mut runs = repeat;
    let mut i = 0;
    while i <= runs {
        let t = Instant::now();
        let r = h
            .post("/api/3.0/mlflow/traces/search", &body)
            .map_err(|e| format!("traces/search {filter:?}: {e}"))?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if r.status != 200 {
            return Err(format!(
                "traces/search {filter:?}: HTTP {} {}",
                r.status,
                r.body.chars().take(300).collect::<String>()
            ));
        }
        if i == 0 {
            found = Json::parse(&r.body)?
                .get("traces")
                .map_or(0, |t| t.arr().len());
            // a search that takes seconds is timed 3 times, not `repeat`
            if ms > 2000.0 {
                runs = runs.min(3);
            }
        } else {
            times.push(ms);
        }
        i += 1;
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    Ok((percentile(&mut times, 0.5), max, found))
}

/// Every trace the server has in the experiment with this filter, counted through the pages.
fn count_traces(port: u16, exp: &str, filter: &str) -> Result<usize, String> {
    let mut h = Http::new(port, Duration::from_secs(600));
    let mut token: Option<String> = None;
    let mut n = 0;
    loop {
        let mut body =
            search_body(exp, filter, None).replace("\"max_results\": 50", "\"max_results\": 500");
        if let Some(t) = &token {
            body.pop();
            let _ = write!(body, ", \"page_token\": {}}}", json_str(t));
        }
        let r = h
            .post("/api/3.0/mlflow/traces/search", &body)
            .map_err(|e| format!("counting traces: {e}"))?;
        if r.status != 200 {
            return Err(format!("counting traces: HTTP {} {}", r.status, r.body));
        }
        let j = Json::parse(&r.body)?;
        n += j.get("traces").map_or(0, |t| t.arr().len());
        token = j
            .field_str("next_page_token")
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok(n);
        }
    }
}

/// Time to fetch one whole trace (the trace page's request), median of `repeat`.
fn time_get(port: u16, trace_id: &str, repeat: usize) -> Result<f64, String> {
    let mut h = Http::new(port, Duration::from_secs(60));
    let path = format!("/api/3.0/mlflow/traces/get?trace_id={trace_id}");
    let mut times = Vec::new();
    for i in 0..=repeat {
        let t = Instant::now();
        let r = h.get(&path).map_err(|e| format!("traces/get: {e}"))?;
        if r.status != 200 {
            return Err(format!("traces/get: HTTP {} {}", r.status, r.body));
        }
        if i > 0 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(percentile(&mut times, 0.5))
}

fn trace_id_hex(g: u64) -> String {
    let hi = splitmix64(g ^ 0xA7E1_1E55);
    let lo = splitmix64(hi ^ g);
    format!("tr-{hi:016x}{lo:016x}")
}

// ---------------------------------------------------------------- report

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let s = if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(a, b)| (a, b));
    let mut o = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(c);
    }
    if !frac.is_empty() {
        o.push('.');
        o.push_str(frac);
    }
    o
}
fn fmt_ms(x: f64) -> String {
    if x.is_finite() && x >= 1000.0 {
        format!("{} s", fmt_num(x / 1000.0))
    } else {
        format!("{} ms", fmt_num(x))
    }
}

struct Row {
    what: String,
    atelier: String,
    mlflow: String,
    ratio: String,
}

fn table(rows: &[Row], peer: &str) -> String {
    let mut s = format!("| measurement | Atelier | {peer} | ratio |\n|---|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.what, r.atelier, r.mlflow, r.ratio
        );
    }
    s
}

fn ratio(a: f64, m: f64, higher_better: bool) -> String {
    if !(a.is_finite() && m.is_finite()) || a <= 0.0 || m <= 0.0 {
        return "—".into();
    }
    let r = if higher_better { a / m } else { m / a };
    if r >= 100.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

// ---------------------------------------------------------------- the benchmark

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(opts) = parse_args(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    kill_groups_on_signal();
    let root = root();
    let target = target_dir(&root);
    let wall = Instant::now();
    let atelier_bin = release_atelier(&root, &target, opts.skip_build)?;
    let python = if opts.skip_mlflow {
        None
    } else {
        Some(match &opts.python {
            Some(p) => p.clone(),
            None => ensure_venv(
                &target.join("bench-venv"),
                &root.join("bench/tracking/requirements.txt"),
            )?,
        })
    };
    let tmp = std::env::temp_dir().join(format!("atelier-bench-traces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let load_before = loadavg();
    let result = bench(&opts, &atelier_bin, python.as_deref(), &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    let out = result?;
    let load_after = loadavg();
    let total = wall.elapsed().as_secs_f64();

    let peer = format!("MLflow {}", out.mlflow_version);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "`cargo xtask bench traces` sends the same OTLP/HTTP protobuf requests (100 spans each: ten \
         traces of an agent span and nine children — retrievers, LLM calls with token usage, tools — \
         every 20th trace failing) to Atelier and to `mlflow server` {MLFLOW_VERSION} (SQLite backend, \
         default workers) started side by side, then times the same `traces/search` calls on both \
         (max_results 50, the median of {} runs after one untimed run; 3 runs for a search that takes seconds). Each server ingests alone: MLflow is started after Atelier's ingestion and measured once idle. Measured {} on {} × {} \
         (load average {load_before} before, {load_after} after); whole run {:.0} s.",
        opts.repeat,
        utc_stamp(),
        nproc(),
        cpu_model(),
        total
    );
    md.push('\n');
    md.push_str(&table(&out.rows, &peer));
    md.push('\n');
    for n in &out.notes {
        let _ = writeln!(md, "- {n}");
    }
    if !out.big_rows.is_empty() {
        let _ = writeln!(
            md,
            "\n**Atelier with {} spans** ({} traces, all sent through `/v1/traces`; database {}):\n",
            fmt_num(out.big_spans as f64),
            fmt_num((out.big_spans / SPANS_PER_TRACE) as f64),
            out.big_db
        );
        md.push_str("| search (max_results 50) | median | slowest | traces on the page |\n|---|---:|---:|---:|\n");
        for (what, med, max, n) in &out.big_rows {
            let _ = writeln!(md, "| {what} | {} | {} | {n} |", fmt_ms(*med), fmt_ms(*max));
        }
        md.push('\n');
        for n in &out.big_notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    println!("\n{md}");
    std::fs::write(target.join("bench-traces.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(target.join("bench-traces.json"), &out.json).map_err(|e| e.to_string())?;
    say(&format!(
        "wrote {} and {}",
        target.join("bench-traces.md").display(),
        target.join("bench-traces.json").display()
    ));
    if opts.readme {
        update_readme(&root.join("README.md"), "traces", &md)?;
    }
    Ok(())
}

struct Outcome {
    mlflow_version: String,
    rows: Vec<Row>,
    notes: Vec<String>,
    big_spans: u64,
    big_db: String,
    big_rows: Vec<(String, f64, f64, usize)>,
    big_notes: Vec<String>,
    json: String,
}

fn start_atelier(bin: &Path, tmp: &Path) -> Result<(Server, u16), String> {
    let port = free_port()?;
    let cmd = crate::bench_tracking::serve_cmd(bin, port, &tmp.join("atelier-data"));
    say(&format!("starting Atelier on 127.0.0.1:{port}"));
    let (mut s, t0) = Server::spawn("Atelier", 0, cmd, port, tmp.join("atelier.log"))?;
    s.wait_healthy(t0, Duration::from_secs(60))?;
    Ok((s, port))
}

fn start_mlflow(python: &Path, tmp: &Path) -> Result<(Server, u16, String), String> {
    let bin = python.parent().map(|d| d.join("mlflow"));
    let mut cmd = match bin.filter(|b| b.exists()) {
        Some(b) => Command::new(b),
        None => {
            let mut c = Command::new(python);
            c.args(["-m", "mlflow"]);
            c
        }
    };
    let version = {
        let mut v = Command::new(cmd.get_program());
        v.args(cmd.get_args()).arg("--version");
        let o = v
            .output()
            .map_err(|e| format!("running mlflow --version: {e}"))?;
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .last()
            .unwrap_or("?")
            .to_string()
    };
    if version != MLFLOW_VERSION {
        say(&format!(
            "warning: expected mlflow {MLFLOW_VERSION}, found {version}"
        ));
    }
    let port = free_port()?;
    cmd.args(["server", "--backend-store-uri"])
        .arg(format!("sqlite:///{}", tmp.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(tmp.join("mlflow-artifacts"))
        .args(["--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .current_dir(tmp)
        .env("MLFLOW_DISABLE_TELEMETRY", "true");
    say(&format!("starting MLflow on 127.0.0.1:{port}"));
    let (mut s, t0) = Server::spawn("MLflow", 1, cmd, port, tmp.join("mlflow.log"))?;
    s.wait_healthy(t0, Duration::from_secs(240))?;
    // let it finish starting its workers (no CPU used for 2 s) before it is measured
    let (_, waited) = settle(s.pgid(), Duration::from_secs(180));
    say(&format!("MLflow idle {waited:.0} s after /health"));
    Ok((s, port, version))
}

#[allow(clippy::too_many_lines)]
fn bench(
    opts: &Opts,
    atelier_bin: &Path,
    python: Option<&Path>,
    tmp: &Path,
) -> Result<Outcome, String> {
    let per_request = SPANS_PER_TRACE * TRACES_PER_REQUEST;
    let requests = opts.spans / per_request;
    let n_traces = requests * TRACES_PER_REQUEST;
    let (mut atelier, a_port) = start_atelier(atelier_bin, tmp)?;
    let a_exp = create_experiment(a_port, "bench-traces")?;

    // ---- ingestion: a warm-up of 1 % (at least one request) on each, then the same requests;
    // each server ingests alone (MLflow starts after Atelier's ingestion, and is idle first)
    let warm = (requests / 100).max(1);
    say(&format!(
        "ingesting {} spans ({requests} requests of {per_request}) into each server over {} connections",
        fmt_num((requests * per_request) as f64),
        opts.conns
    ));
    ingest(a_port, &a_exp, 0, warm, 1)?;
    let a_ing = ingest(a_port, &a_exp, warm, requests, opts.conns)?;
    say(&format!(
        "Atelier: {:.0} spans/s",
        a_ing.spans as f64 / a_ing.secs
    ));
    let a_one = ingest(a_port, &a_exp, requests, requests + 50, 1)?;
    let mut mlflow = None;
    let mut version = "—".to_string();
    if let Some(py) = python {
        let (s, port, v) = start_mlflow(py, tmp)?;
        let exp = create_experiment(port, "bench-traces")?;
        mlflow = Some((s, port, exp));
        version = v;
    }
    let m_ing = match &mlflow {
        Some((_, port, exp)) => {
            ingest(*port, exp, 0, warm, 1)?;
            let m = ingest(*port, exp, warm, requests, opts.conns)?;
            say(&format!("MLflow: {:.0} spans/s", m.spans as f64 / m.secs));
            Some(m)
        }
        None => None,
    };
    let m_one = match &mlflow {
        Some((_, port, exp)) => Some(ingest(*port, exp, requests, requests + 50, 1)?),
        None => None,
    };
    let total_traces = n_traces + 50 * TRACES_PER_REQUEST;

    // ---- both hold the same traces
    let a_err = count_traces(a_port, &a_exp, "trace.status = 'ERROR'")?;
    let want_err = (0..total_traces).filter(|g| is_error(*g)).count();
    if a_err != want_err {
        return Err(format!(
            "Atelier holds {a_err} failed traces, {want_err} were sent"
        ));
    }
    if let Some((_, port, exp)) = &mlflow {
        let m_err = count_traces(*port, exp, "trace.status = 'ERROR'")?;
        if m_err != want_err {
            return Err(format!(
                "MLflow holds {m_err} failed traces, {want_err} were sent"
            ));
        }
    }

    let mut rows = Vec::new();
    let mut json = String::from("{\"benchmark\": \"cargo xtask bench traces\"");
    let _ = write!(
        json,
        ", \"nproc\": {}, \"cpu\": {}, \"mlflow_version\": {}, \"spans\": {}, \"conns\": {}",
        nproc(),
        json_str(&cpu_model()),
        json_str(&version),
        requests * per_request,
        opts.conns
    );
    let rate = |i: &Ingest| i.spans as f64 / i.secs;
    let m_rate = m_ing.as_ref().map_or(f64::NAN, rate);
    rows.push(Row {
        what: format!(
            "OTLP protobuf ingestion, {} conns, {} spans",
            opts.conns,
            fmt_num(a_ing.spans as f64)
        ),
        atelier: format!("{} spans/s", fmt_num(rate(&a_ing))),
        mlflow: m_ing
            .as_ref()
            .map_or("—".into(), |m| format!("{} spans/s", fmt_num(rate(m)))),
        ratio: ratio(rate(&a_ing), m_rate, true),
    });
    let m_one_rate = m_one.as_ref().map_or(f64::NAN, rate);
    rows.push(Row {
        what: "OTLP protobuf ingestion, 1 conn, 5,000 spans".into(),
        atelier: format!("{} spans/s", fmt_num(rate(&a_one))),
        mlflow: m_one
            .as_ref()
            .map_or("—".into(), |m| format!("{} spans/s", fmt_num(rate(m)))),
        ratio: ratio(rate(&a_one), m_one_rate, true),
    });
    rows.push(Row {
        what: "– one 100-span request, p50 (1 conn)".into(),
        atelier: fmt_ms(a_one.p50_ms),
        mlflow: m_one.as_ref().map_or("—".into(), |m| fmt_ms(m.p50_ms)),
        ratio: ratio(
            a_one.p50_ms,
            m_one.as_ref().map_or(f64::NAN, |m| m.p50_ms),
            false,
        ),
    });
    rows.push(Row {
        what: "– one 100-span request, p99 (1 conn)".into(),
        atelier: fmt_ms(a_one.p99_ms),
        mlflow: m_one.as_ref().map_or("—".into(), |m| fmt_ms(m.p99_ms)),
        ratio: ratio(
            a_one.p99_ms,
            m_one.as_ref().map_or(f64::NAN, |m| m.p99_ms),
            false,
        ),
    });
    let _ = write!(
        json,
        ", \"ingest_spans_per_s\": {{\"atelier\": {:.1}, \"mlflow\": {}}}, \"ingest_1conn_spans_per_s\": {{\"atelier\": {:.1}, \"mlflow\": {}}}",
        rate(&a_ing),
        if m_rate.is_finite() {
            format!("{m_rate:.1}")
        } else {
            "null".into()
        },
        rate(&a_one),
        if m_one_rate.is_finite() {
            format!("{m_one_rate:.1}")
        } else {
            "null".into()
        }
    );

    // ---- searches, same calls on both
    say("timing searches");
    json.push_str(", \"search_ms\": [");
    for (i, (label, filter, order)) in searches(total_traces).into_iter().enumerate() {
        let (a_med, _, a_n) = time_search(a_port, &a_exp, &filter, order, opts.repeat)?;
        let (m_med, m_n) = match &mlflow {
            Some((_, port, exp)) => {
                let (m, _, n) = time_search(*port, exp, &filter, order, opts.repeat)?;
                (m, Some(n))
            }
            None => (f64::NAN, None),
        };
        if let Some(m_n) = m_n
            && m_n != a_n
        {
            return Err(format!(
                "search {filter:?}: Atelier's first page holds {a_n} traces, MLflow's {m_n}"
            ));
        }
        rows.push(Row {
            what: format!(
                "search over {} traces: {label}{}",
                fmt_num(total_traces as f64),
                if filter.is_empty() {
                    String::new()
                } else {
                    format!(" — `{filter}`")
                }
            ),
            atelier: fmt_ms(a_med),
            mlflow: if m_med.is_finite() {
                fmt_ms(m_med)
            } else {
                "—".into()
            },
            ratio: ratio(a_med, m_med, false),
        });
        let _ = write!(
            json,
            "{}{{\"search\": {}, \"atelier\": {a_med:.3}, \"mlflow\": {}}}",
            if i == 0 { "" } else { ", " },
            json_str(label.as_str()),
            if m_med.is_finite() {
                format!("{m_med:.3}")
            } else {
                "null".into()
            }
        );
    }
    json.push(']');
    let probe = trace_id_hex(n_traces / 2);
    let a_get = time_get(a_port, &probe, opts.repeat)?;
    let m_get = match &mlflow {
        Some((_, port, _)) => time_get(*port, &probe, opts.repeat)?,
        None => f64::NAN,
    };
    rows.push(Row {
        what: "get one trace with its 10 spans (the trace page)".into(),
        atelier: fmt_ms(a_get),
        mlflow: if m_get.is_finite() {
            fmt_ms(m_get)
        } else {
            "—".into()
        },
        ratio: ratio(a_get, m_get, false),
    });
    let a_rss = group_stats(atelier.pgid()).rss_mib;
    let m_rss = mlflow
        .as_ref()
        .map_or(f64::NAN, |(s, _, _)| group_stats(s.pgid()).rss_mib);
    rows.push(Row {
        what: "RSS after ingestion and search (process tree)".into(),
        atelier: format!("{} MiB", fmt_num(a_rss)),
        mlflow: if m_rss.is_finite() {
            format!("{} MiB", fmt_num(m_rss))
        } else {
            "—".into()
        },
        ratio: ratio(a_rss, m_rss, false),
    });
    let mut notes = vec![format!(
        "Same request bodies on both (the warm-up's {warm} request(s) excepted from the timing), each answered 200; afterwards both servers hold the same {} failed traces (counted through `traces/search` pages) and every search's first page holds as many traces on both.",
        want_err
    )];
    if let Some((s, _, _)) = &mut mlflow {
        s.stop();
        notes.push(format!(
            "Target from issue 14: ingestion ≥ 50× MLflow's: {} ({}).",
            ratio(rate(&a_ing), m_rate, true),
            if rate(&a_ing) >= 50.0 * m_rate {
                "met"
            } else {
                "not met"
            }
        ));
    }
    drop(mlflow);

    // ---- Atelier alone, filled up to `big` spans through OTLP
    let mut big_rows = Vec::new();
    let mut big_notes = Vec::new();
    let mut big_db = String::new();
    let mut big_spans = 0;
    if opts.big > 0 {
        let have = requests + 50;
        let want = opts.big.div_ceil(per_request).max(have);
        say(&format!(
            "filling Atelier up to {} spans",
            fmt_num((want * per_request) as f64)
        ));
        let fill = ingest(a_port, &a_exp, have, want, opts.conns)?;
        big_spans = want * per_request;
        let big_traces = want * TRACES_PER_REQUEST;
        big_notes.push(format!(
            "Filling it: {} spans in {:.0} s ({} spans/s, {} connections) on top of the comparison's.",
            fmt_num(fill.spans as f64),
            fill.secs,
            fmt_num(fill.spans as f64 / fill.secs),
            opts.conns
        ));
        let db_bytes: u64 = std::fs::read_dir(tmp.join("atelier-data"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().contains(".db"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        big_db = format!("{} MiB", fmt_num(db_bytes as f64 / 1048576.0));
        json.push_str(", \"big\": {");
        let _ = write!(json, "\"spans\": {big_spans}, \"search_ms\": [");
        let mut slowest: f64 = 0.0;
        for (i, (label, filter, order)) in searches(big_traces).into_iter().enumerate() {
            let (med, max, n) = time_search(a_port, &a_exp, &filter, order, opts.repeat)?;
            slowest = slowest.max(med);
            big_rows.push((
                if filter.is_empty() {
                    label.clone()
                } else {
                    format!("{label} — `{filter}`")
                },
                med,
                max,
                n,
            ));
            let _ = write!(
                json,
                "{}{{\"search\": {}, \"median\": {med:.3}, \"max\": {max:.3}}}",
                if i == 0 { "" } else { ", " },
                json_str(label.as_str())
            );
        }
        let get = time_get(a_port, &trace_id_hex(big_traces / 2), opts.repeat)?;
        big_rows.push(("get one trace with its 10 spans".into(), get, get, 1));
        let _ = write!(json, "], \"get_ms\": {get:.3}}}");
        big_notes.push(format!(
            "Interactive (every search's median under {INTERACTIVE_MS:.0} ms): {} — the slowest median is {}.",
            if slowest < INTERACTIVE_MS { "yes" } else { "no" },
            fmt_ms(slowest)
        ));
        big_notes.push(format!(
            "Atelier's RSS after filling and searching: {} MiB.",
            fmt_num(group_stats(atelier.pgid()).rss_mib)
        ));
    }
    json.push_str("}\n");
    atelier.stop();
    Ok(Outcome {
        mlflow_version: version,
        rows,
        notes,
        big_spans,
        big_db,
        big_rows,
        big_notes,
        json,
    })
}
