//! Project automation, in Rust rather than shell.
//!
//! - `cargo xtask test` — the whole test suite on a fresh machine: installs
//!   what the tests need (a Python venv with the real `mlflow` client,
//!   Debian's Chromium, playwright-core from npm), builds the binary, then
//!   runs the Rust tests, the MLflow-client tests and the browser tests.
//! - `cargo xtask wheel` — the binary as a Python wheel (maturin), see wheel.rs.
//! - `cargo xtask bench tracking [--database postgres]` — tracking-server
//!   benchmark against a real MLflow server (both on SQLite, or both on one
//!   private PostgreSQL), printed as ratios.
//! - `cargo xtask bench jobs` — job submit-to-first-line latency and
//!   scheduling throughput against Ray's Jobs API on a local Ray head.
//! - `cargo xtask postgres start|stop <datadir>` — a private PostgreSQL on
//!   loopback for tests, see postgres.rs.
//! - `cargo xtask load-replicas` — two replicas on PostgreSQL and S3 under
//!   load, one killed with `kill -9` and restarted; see load_replicas.rs.
//! - `cargo xtask ray start|stop` — a local Ray head on loopback for the Ray
//!   executor's tests, see ray.rs.

mod bench_auth;
mod bench_jobs;
mod bench_learners;
mod bench_monitor;
mod bench_monitor_quality;
mod bench_monitor_scale;
mod bench_notebooks;
mod bench_serving;
mod bench_traces;
mod bench_tracking;
mod common;
mod json;
mod load_replicas;
mod postgres;
mod ray;
mod test;
mod wheel;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("wheel") => wheel::run(&args[1..]),
        Some("postgres") => postgres::run(&args[1..]),
        Some("ray") => ray::run(&args[1..]),
        Some("load-replicas") => load_replicas::run(&args[1..]),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("tracking") => bench_tracking::run(&args[2..]),
            Some("auth") => bench_auth::run(&args[2..]),
            Some("traces") => bench_traces::run(&args[2..]),
            Some("learners") => bench_learners::run(&args[2..]),
            Some("monitor") => bench_monitor::run(&args[2..]),
            Some("monitor-quality") => bench_monitor_quality::run(&args[2..]),
            Some("monitor-scale") => bench_monitor_scale::run(&args[2..]),
            Some("serving") => bench_serving::run(&args[2..]),
            Some("jobs") => bench_jobs::run(&args[2..]),
            Some("notebooks") => bench_notebooks::run(&args[2..]),
            _ => Err("usage: cargo xtask bench <tracking|auth|traces|learners|serving|monitor|monitor-quality|monitor-scale|jobs|notebooks> [options]".into()),
        },
        _ => Err("usage: cargo xtask <test|bench tracking> [options]\n\n  test [--skip-setup] [--only rust|python|browser]   run the whole suite\n  wheel [--release]                                  the binary as a pip-installable wheel (maturin)\n  postgres start | stop <datadir>                    a private PostgreSQL on 127.0.0.1 for tests\n  ray start | stop                                   a local Ray head on 127.0.0.1 for tests (prints ATELIER_RAY_ADDRESS)\n  load-replicas [--help]                             two replicas on PostgreSQL + S3 under load, one killed and restarted\n  bench tracking [--database postgres] [--help]      tracking benchmark vs MLflow (SQLite, or both on PostgreSQL)
  bench auth [--help]                                what per-request authorisation costs (open vs signed-in)
  bench traces [--help]                              OTLP span ingestion and trace search vs MLflow
  bench learners [--help]                            GBM learner benchmark vs LightGBM
  bench serving [--help]                             endpoint load benchmark vs mlflow models serve
  bench monitor [--help]                             Model Monitor vs Evidently and whylogs
  bench monitor-quality [--help]                     drift false alarms and detection vs Evidently
  bench monitor-scale [--help]                       Model Monitor on a month of hourly capture
  bench jobs [--help]                                job latency and throughput vs Ray's Jobs API
  bench notebooks [--help]                           notebook job wall time vs papermill".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
