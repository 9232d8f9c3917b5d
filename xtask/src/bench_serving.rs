//! `cargo xtask bench serving`: Atelier's real-time endpoint against MLflow's
//! model server (`mlflow models serve`), same data, same load, same run.
//!
//! Both serve a 100-tree gradient-boosted model of `adult` (ours trained by
//! `atelier train`, theirs by LightGBM 4.7 and wrapped in a pyfunc that
//! restores the training categories — `bench/serving/mlflow_model.py`). A
//! separate load-generator process (`crates/serving/examples/loadgen.rs`,
//! std-only, keep-alive connections in a closed loop) drives each server
//! with single-row JSON and 100-row CSV requests at 1, 8 and 32
//! connections. Reported: requests/s, rows/s, p50/p99 latency, time from
//! spawn to a served prediction, and resident memory, with ratios.

use crate::common::{
    cpu_model, ensure_venv, free_port, kill, loadavg, nproc, root, run_checked, say, tail_str,
};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo xtask bench serving [options]

Serves a 100-tree GBM model of datasets/adult.csv with Atelier
(target/release/atelier, an endpoint made by `atelier deploy`) and the
equivalent LightGBM model with `mlflow models serve` (MLflow 3.17.2 in
target/bench-venv-serving from bench/serving/requirements.txt), then drives
each from a separate load generator (crates/serving/examples/loadgen.rs) over
keep-alive HTTP: single-row JSON and 100-row CSV requests at 1, 8 and 32
connections. Prints throughput, p50/p99 latency, start time and memory with
ratios, and writes target/bench-serving.json and target/bench-serving.md.

options:
  --seconds S          measured seconds per run [default 10]
  --connections 1,8,32 connection counts
  --skip-mlflow        only Atelier (no ratios)
  --skip-build         use the existing release binaries
  --python PATH        a Python with mlflow, lightgbm and pandas
  --data DIR           dataset directory [default: datasets]
  -h, --help           this text";

struct Opts {
    seconds: f64,
    connections: Vec<usize>,
    skip_mlflow: bool,
    skip_build: bool,
    python: Option<PathBuf>,
    data: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        seconds: 10.0,
        connections: vec![1, 8, 32],
        skip_mlflow: false,
        skip_build: false,
        python: None,
        data: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--seconds" => o.seconds = val()?.parse().map_err(|_| "--seconds S")?,
            "--connections" => {
                o.connections = val()?
                    .split(',')
                    .map(|c| {
                        c.trim()
                            .parse()
                            .map_err(|_| "--connections 1,8,32".to_string())
                    })
                    .collect::<Result<_, _>>()?
            }
            "--skip-mlflow" => o.skip_mlflow = true,
            "--skip-build" => o.skip_build = true,
            "--python" => o.python = Some(PathBuf::from(val()?)),
            "--data" => o.data = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    Ok(Some(o))
}

/// A server in its own process group (MLflow forks workers).
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> Result<Proc, String> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {:?}: {e}", cmd.get_program()))?;
        Ok(Proc { child, log })
    }

    fn group(&self) -> i32 {
        self.child.id() as i32
    }

    fn check_alive(&mut self, what: &str) -> Result<(), String> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Err(format!(
                "{what} exited ({st}):\n{}",
                tail_str(&std::fs::read_to_string(&self.log).unwrap_or_default())
            ));
        }
        Ok(())
    }

    /// Resident memory of the whole process group, MiB.
    fn rss_mib(&self) -> f64 {
        let g = self.group();
        let mut kib = 0u64;
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(stat) = std::fs::read_to_string(p.join("stat")) else {
                continue;
            };
            // pgrp is the 3rd field after the ")" closing the command name
            let Some(after) = stat.rsplit_once(')').map(|x| x.1) else {
                continue;
            };
            let pgrp: i32 = after
                .split_whitespace()
                .nth(2)
                .and_then(|x| x.parse().ok())
                .unwrap_or(-1);
            if pgrp != g {
                continue;
            }
            if let Ok(st) = std::fs::read_to_string(p.join("status")) {
                for l in st.lines() {
                    if let Some(v) = l.strip_prefix("VmRSS:") {
                        kib += v
                            .trim()
                            .trim_end_matches("kB")
                            .trim()
                            .parse::<u64>()
                            .unwrap_or(0);
                    }
                }
            }
        }
        kib as f64 / 1024.0
    }

    fn stop(&mut self) {
        let g = self.group();
        unsafe { kill(-g, 15) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { kill(-g, 9) };
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    ct: &str,
    body: &[u8],
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer from port {port}"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    Ok((status, body))
}

/// Poll until a prediction succeeds; the time since `t0`.
fn wait_serving(
    p: &mut Proc,
    what: &str,
    port: u16,
    path: &str,
    ct: &str,
    body: &[u8],
    t0: Instant,
) -> Result<f64, String> {
    loop {
        if let Ok((200, _)) = http(port, "POST", path, ct, body) {
            return Ok(t0.elapsed().as_secs_f64());
        }
        p.check_alive(what)?;
        if t0.elapsed() > Duration::from_secs(180) {
            return Err(format!("{what} did not serve a prediction within 180 s"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[derive(Clone, Default)]
struct Load {
    rps: f64,
    p50: f64,
    p99: f64,
    errors: u64,
}

fn num_field(s: &str, key: &str) -> f64 {
    s.split(&format!("\"{key}\":"))
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn load(
    loadgen: &Path,
    port: u16,
    path: &str,
    ct: &str,
    body: &Path,
    conns: usize,
    seconds: f64,
) -> Result<Load, String> {
    let out = Command::new(loadgen)
        .args(["--url", &format!("http://127.0.0.1:{port}{path}")])
        .args(["--content-type", ct, "--body"])
        .arg(body)
        .args(["--connections", &conns.to_string()])
        .args(["--seconds", &seconds.to_string(), "--warmup", "1"])
        .output()
        .map_err(|e| format!("running the load generator: {e}"))?;
    let s = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "load generator failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Load {
        rps: num_field(&s, "rps"),
        p50: num_field(&s, "p50_ms"),
        p99: num_field(&s, "p99_ms"),
        errors: num_field(&s, "errors") as u64,
    })
}

struct Side {
    start_s: f64,
    rss_mib: f64,
    /// (payload, connections) → load
    runs: Vec<(&'static str, usize, Load)>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(o) = parse_args(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let root = root();
    let data = o.data.clone().unwrap_or_else(|| root.join("datasets"));
    let adult = data.join("adult.csv");
    if !adult.exists() {
        return Err(format!("{} not found (pass --data DIR)", adult.display()));
    }
    if !o.skip_build {
        say("cargo build --release -p atelier, and the loadgen example");
        run_checked(
            Command::new("cargo")
                .current_dir(&root)
                .args(["build", "--release", "-p", "atelier"]),
            "cargo build --release -p atelier",
        )?;
        run_checked(
            Command::new("cargo").current_dir(&root).args([
                "build",
                "--release",
                "-p",
                "serving",
                "--example",
                "loadgen",
            ]),
            "cargo build --release --example loadgen",
        )?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/atelier");
    let loadgen = target.join("release/examples/loadgen");
    let python = match &o.python {
        Some(p) => p.clone(),
        None => ensure_venv(
            &root.join("target/bench-venv-serving"),
            &root.join("bench/serving/requirements.txt"),
        )?,
    };
    let work = target.join("bench-serving");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    say("preparing the split, payloads and MLflow's LightGBM pyfunc");
    run_checked(
        Command::new(&python)
            .arg(root.join("bench/serving/mlflow_model.py"))
            .arg(&adult)
            .arg(&work),
        "bench/serving/mlflow_model.py",
    )?;
    say("atelier train (100 trees, no early stopping)");
    let model = work.join("adult.model");
    run_checked(
        Command::new(&bin)
            .arg("train")
            .arg(work.join("train.csv"))
            .args(["--target", "income", "--param", "n_estimators=100"])
            .args([
                "--param",
                "early_stopping_rounds=0",
                "--param",
                "learning_rate=0.05",
            ])
            .arg("-o")
            .arg(&model),
        "atelier train",
    )?;
    let single = std::fs::read(work.join("single.json")).map_err(|e| e.to_string())?;
    let rows = work.join("rows100.csv");

    // ---------------------------------------------------------- Atelier
    let data_dir = work.join("atelier-data");
    let port = free_port()?;
    let serve = |port: u16| {
        let mut c = Command::new(&bin);
        c.args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(&data_dir)
            .env("ATELIER_LOG", "warn");
        c
    };
    {
        let mut p = Proc::spawn(serve(port), work.join("atelier-1.log"))?;
        let t0 = Instant::now();
        while http(port, "GET", "/health", "text/plain", b"").map(|r| r.0) != Ok(200) {
            p.check_alive("atelier serve")?;
            if t0.elapsed() > Duration::from_secs(30) {
                return Err("atelier serve did not start".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        run_checked(
            Command::new(&bin).arg("deploy").arg(&model).args([
                "--name",
                "adult",
                "--server",
                &format!("http://127.0.0.1:{port}"),
            ]),
            "atelier deploy",
        )?;
    }
    // restart: the endpoint comes back from the store; time to a served prediction
    let path = "/endpoints/adult/invocations";
    let port = free_port()?;
    let mut p = Proc::spawn(serve(port), work.join("atelier.log"))?;
    let t0 = Instant::now();
    let start_s = wait_serving(
        &mut p,
        "atelier serve",
        port,
        path,
        "application/json",
        &single,
        t0,
    )?;
    let single_path = work.join("single.json");
    let mut ours = Side {
        start_s,
        rss_mib: 0.0,
        runs: Vec::new(),
    };
    for &(payload, ct, body) in &[
        ("1-row JSON", "application/json", &single_path),
        ("100-row CSV", "text/csv", &rows),
    ] {
        for &c in &o.connections {
            let l = load(&loadgen, port, path, ct, body, c, o.seconds)?;
            say(&format!(
                "atelier {payload} x{c}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms ({} errors)",
                l.rps, l.p50, l.p99, l.errors
            ));
            ours.runs.push((payload, c, l));
        }
    }
    ours.rss_mib = p.rss_mib();
    p.stop();
    drop(p);

    // ---------------------------------------------------------- MLflow
    let theirs = if o.skip_mlflow {
        None
    } else {
        let mlflow = python.with_file_name("mlflow");
        let port = free_port()?;
        let mut c = Command::new(&mlflow);
        c.args(["models", "serve", "-m"])
            .arg(work.join("mlflow_model"))
            .args([
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env(
                "MLFLOW_TRACKING_URI",
                work.join("mlruns").display().to_string(),
            )
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    mlflow
                        .parent()
                        .map_or(String::new(), |p| p.display().to_string()),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        let mut p = Proc::spawn(c, work.join("mlflow.log"))?;
        let t0 = Instant::now();
        let single_m = std::fs::read(work.join("single_mlflow.json")).map_err(|e| e.to_string())?;
        let start_s = wait_serving(
            &mut p,
            "mlflow models serve",
            port,
            "/invocations",
            "application/json",
            &single_m,
            t0,
        )?;
        let mut side = Side {
            start_s,
            rss_mib: 0.0,
            runs: Vec::new(),
        };
        let single_m_path = work.join("single_mlflow.json");
        for &(payload, ct, body) in &[
            ("1-row JSON", "application/json", &single_m_path),
            ("100-row CSV", "text/csv", &rows),
        ] {
            for &c in &o.connections {
                let l = load(&loadgen, port, "/invocations", ct, body, c, o.seconds)?;
                say(&format!(
                    "mlflow {payload} x{c}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms ({} errors)",
                    l.rps, l.p50, l.p99, l.errors
                ));
                side.runs.push((payload, c, l));
            }
        }
        side.rss_mib = p.rss_mib();
        p.stop();
        Some(side)
    };
    report(&o, &ours, theirs.as_ref(), &target)
}

fn report(o: &Opts, ours: &Side, theirs: Option<&Side>, target: &Path) -> Result<(), String> {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "`cargo xtask bench serving` ({} s per run; {} cores, {}; load {}; load generator and server share the cores)\n",
        o.seconds,
        nproc(),
        cpu_model(),
        loadavg()
    );
    let _ = writeln!(
        md,
        "| payload | conns | Atelier req/s | rows/s | p50 ms | p99 ms | MLflow req/s | rows/s | p50 ms | p99 ms | throughput × |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut json = String::from("{\"runs\":[");
    for (i, (payload, c, l)) in ours.runs.iter().enumerate() {
        let rows_per = if payload.starts_with("100") {
            100.0
        } else {
            1.0
        };
        let t = theirs.and_then(|t| t.runs.get(i)).map(|r| r.2.clone());
        let (tr, tp50, tp99, ratio) = match &t {
            Some(t) => (
                format!("{:.0}", t.rps),
                format!("{:.2}", t.p50),
                format!("{:.1}", t.p99),
                format!("{:.0}×", l.rps / t.rps),
            ),
            None => ("—".into(), "—".into(), "—".into(), "—".into()),
        };
        let trows = t
            .as_ref()
            .map_or("—".to_string(), |t| format!("{:.0}", t.rps * rows_per));
        let _ = writeln!(
            md,
            "| {payload} | {c} | {:.0} | {:.0} | {:.2} | {:.2} | {tr} | {trows} | {tp50} | {tp99} | {ratio} |",
            l.rps,
            l.rps * rows_per,
            l.p50,
            l.p99
        );
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"payload\":\"{payload}\",\"connections\":{c},\"atelier\":{{\"rps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"errors\":{}}}",
            l.rps, l.p50, l.p99, l.errors
        );
        if let Some(t) = &t {
            let _ = write!(
                json,
                ",\"mlflow\":{{\"rps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"errors\":{}}}",
                t.rps, t.p50, t.p99, t.errors
            );
        }
        json.push('}');
    }
    let _ = write!(
        json,
        "],\"atelier_start_s\":{:.3},\"atelier_rss_mib\":{:.1}",
        ours.start_s, ours.rss_mib
    );
    let _ = writeln!(
        md,
        "\nStart (spawn → first prediction served, endpoint restored from the store): Atelier {:.2} s{}; memory after the runs: Atelier {:.0} MiB{}.",
        ours.start_s,
        theirs.map_or(String::new(), |t| format!(", MLflow {:.2} s", t.start_s)),
        ours.rss_mib,
        theirs.map_or(String::new(), |t| format!(", MLflow {:.0} MiB", t.rss_mib)),
    );
    if let Some(t) = theirs {
        let _ = write!(
            json,
            ",\"mlflow_start_s\":{:.3},\"mlflow_rss_mib\":{:.1}",
            t.start_s, t.rss_mib
        );
        // the targets
        let find = |side: &Side, p: &str, c: usize| {
            side.runs
                .iter()
                .find(|r| r.0 == p && r.1 == c)
                .map(|r| r.2.clone())
        };
        let mut verdict = Vec::new();
        if let (Some(a), Some(m)) = (find(ours, "1-row JSON", 32), find(t, "1-row JSON", 32)) {
            let r = a.rps / m.rps;
            verdict.push(format!(
                "single-row at 32 connections: {r:.1}× MLflow (target ≥ 100×) {}, p99 {:.2} ms (target < 5 ms) {}",
                if r >= 100.0 { "✓" } else { "✗" },
                a.p99,
                if a.p99 < 5.0 { "✓" } else { "✗" }
            ));
        }
        let best = |side: &Side| {
            side.runs
                .iter()
                .filter(|r| r.0 == "100-row CSV")
                .map(|r| r.2.rps * 100.0)
                .fold(0.0, f64::max)
        };
        let r = best(ours) / best(t);
        verdict.push(format!(
            "100-row rows/s (best of the connection counts): {r:.1}× MLflow (target ≥ 50×) {}",
            if r >= 50.0 { "✓" } else { "✗" }
        ));
        verdict.push(format!(
            "start {:.2} s (target < 1 s) {}",
            ours.start_s,
            if ours.start_s < 1.0 { "✓" } else { "✗" }
        ));
        for v in &verdict {
            let _ = writeln!(md, "- {v}");
        }
    }
    json.push('}');
    println!("\n{md}");
    std::fs::write(target.join("bench-serving.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(target.join("bench-serving.json"), json).map_err(|e| e.to_string())?;
    say(&format!(
        "wrote {} and {}",
        target.join("bench-serving.md").display(),
        target.join("bench-serving.json").display()
    ));
    Ok(())
}
