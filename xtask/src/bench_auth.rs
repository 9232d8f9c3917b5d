//! `cargo xtask bench auth`: what per-request authorisation costs the tracking hot paths. The same
//! release binary runs twice in this run on this machine: open (the local admin, no lookups) and
//! with `--require-auth`, called with a user's token inside a project (`X-MLFLOW-WORKSPACE`), so
//! that every request resolves the token and the user's role in that project before its handler.
//! Both get the same requests, in alternating rounds (open, authorised, open, …) so that drift in
//! the machine's speed falls on both; the figures are medians over the rounds.

use crate::bench_tracking::{Http, Server};
use crate::common::{
    cpu_model, free_port, kill_groups_on_signal, loadavg, nproc, release_atelier, root, say,
    target_dir, update_readme, utc_stamp,
};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo xtask bench auth [options]

Starts target/release/atelier twice on 127.0.0.1 (SQLite): open, and with --require-auth where
a user 'alice' is an editor of project 'team-a' and calls with her own token and
X-MLFLOW-WORKSPACE: team-a. Times the same requests on both in alternating rounds — single
log-metric calls, log-batch calls of 1000 metrics and runs/search — on one keep-alive connection.
Prints a table, writes target/bench-auth.md and README.md's <!-- bench:auth --> block.

options:
  --rounds R       alternating rounds per server [default 5]
  --calls N        log-metric and search calls per round [default 1000]
  --batches N      log-batch calls per round [default 100]
  --skip-build     use the existing release binary
  --no-readme      leave README.md alone
  -h, --help       this text";

struct Opts {
    rounds: usize,
    calls: usize,
    batches: usize,
    skip_build: bool,
    readme: bool,
}

fn parse(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        rounds: 5,
        calls: 1000,
        batches: 100,
        skip_build: false,
        readme: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{name} takes a positive number, got '{v}'"))
        };
        match a.as_str() {
            "--rounds" => o.rounds = num("--rounds")?,
            "--calls" => o.calls = num("--calls")?,
            "--batches" => o.batches = num("--batches")?,
            "--skip-build" => o.skip_build = true,
            "--no-readme" => o.readme = false,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option '{other}'\n\n{USAGE}")),
        }
    }
    Ok(Some(o))
}

fn cli(bin: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut c = Command::new(bin);
    c.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("ATELIER_DATABASE_URL")
        .env_remove("ATELIER_TEST_DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("atelier {args:?}: {e}"))?;
    if let (Some(s), Some(mut w)) = (stdin, child.stdin.take()) {
        let _ = w.write_all(s.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "atelier {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One server under test: its port and the headers every request carries.
struct Target {
    port: u16,
    headers: Vec<(String, String)>,
    run: String,
    exp: String,
}

impl Target {
    fn post(&self, h: &mut Http, path: &str, body: &str) -> Result<String, String> {
        let mut hs: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        hs.push(("Content-Type", "application/json"));
        let r = h
            .post_bytes(path, &hs, body.as_bytes())
            .map_err(|e| format!("{path}: {e}"))?;
        if r.status != 200 {
            return Err(format!("{path}: HTTP {} {}", r.status, r.body));
        }
        Ok(r.body)
    }
}

fn field(body: &str, key: &str) -> Option<String> {
    let at = body.find(&format!("\"{key}\""))?;
    let rest = &body[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

fn prepare(t: &mut Target) -> Result<(), String> {
    let mut h = Http::new(t.port, Duration::from_secs(30));
    let b = t.post(
        &mut h,
        "/api/2.0/mlflow/experiments/create",
        "{\"name\":\"bench-auth\"}",
    )?;
    t.exp = field(&b, "experiment_id").ok_or(format!("no experiment_id in {b}"))?;
    let b = t.post(
        &mut h,
        "/api/2.0/mlflow/runs/create",
        &format!("{{\"experiment_id\":\"{}\",\"start_time\":1}}", t.exp),
    )?;
    t.run = field(&b, "run_id").ok_or(format!("no run_id in {b}"))?;
    Ok(())
}

/// (median latency in ms, calls per second) of `n` sequential calls.
fn time_calls(
    t: &Target,
    n: usize,
    f: &dyn Fn(&Target, &mut Http, usize) -> Result<(), String>,
) -> Result<(f64, f64), String> {
    let mut h = Http::new(t.port, Duration::from_secs(30));
    let _ = h.get("/health");
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let s = Instant::now();
        f(t, &mut h, i)?;
        lat.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok((median(&mut lat), n as f64 / secs))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn log_metric(t: &Target, h: &mut Http, i: usize) -> Result<(), String> {
    let body = format!(
        "{{\"run_id\":\"{}\",\"key\":\"loss\",\"value\":{:?},\"timestamp\":1700000000000,\"step\":{i}}}",
        t.run,
        1.0 / (i + 1) as f64
    );
    t.post(h, "/api/2.0/mlflow/runs/log-metric", &body)
        .map(|_| ())
}

fn log_batch(t: &Target, h: &mut Http, i: usize) -> Result<(), String> {
    let mut body = format!("{{\"run_id\":\"{}\",\"metrics\":[", t.run);
    for k in 0..1000 {
        if k > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"key\":\"m{}\",\"value\":{}.5,\"timestamp\":1700000000000,\"step\":{}}}",
            k % 10,
            k,
            i * 100 + k / 10
        ));
    }
    body.push_str("]}");
    t.post(h, "/api/2.0/mlflow/runs/log-batch", &body)
        .map(|_| ())
}

fn search(t: &Target, h: &mut Http, _i: usize) -> Result<(), String> {
    let body = format!("{{\"experiment_ids\":[\"{}\"],\"max_results\":10}}", t.exp);
    t.post(h, "/api/2.0/mlflow/runs/search", &body).map(|_| ())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(o) = parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    kill_groups_on_signal();
    let root = root();
    let target = target_dir(&root);
    let bin = release_atelier(&root, &target, o.skip_build)?;
    let tmp = std::env::temp_dir().join(format!("atelier-bench-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let result = bench(&o, &bin, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    let md = result?;
    println!("\n{md}");
    let out = target.join("bench-auth.md");
    std::fs::write(&out, &md).map_err(|e| format!("{}: {e}", out.display()))?;
    if o.readme {
        update_readme(&root.join("README.md"), "auth", &md)?;
    }
    Ok(())
}

fn bench(o: &Opts, bin: &Path, tmp: &Path) -> Result<String, String> {
    let load_before = loadavg();
    let t_all = Instant::now();

    // the authorised installation: a user, a project, her token
    let auth_dir = tmp.join("auth");
    std::fs::create_dir_all(&auth_dir).map_err(|e| e.to_string())?;
    cli(bin, &auth_dir, &["users", "create", "alice"], None)?;
    cli(bin, &auth_dir, &["projects", "create", "team-a"], None)?;
    cli(
        bin,
        &auth_dir,
        &["projects", "grant", "team-a", "alice", "editor"],
        None,
    )?;
    let token = cli(
        bin,
        &auth_dir,
        &[
            "token", "create", "alice-t", "--user", "alice", "--role", "editor",
        ],
        None,
    )?;

    let mut servers = Vec::new();
    let mut targets = Vec::new();
    for (slot, (name, dir, auth)) in [
        ("open", tmp.join("open"), false),
        ("authorised", auth_dir.clone(), true),
    ]
    .into_iter()
    .enumerate()
    {
        let port = free_port()?;
        let mut cmd = crate::bench_tracking::serve_cmd(bin, port, &dir);
        if auth {
            cmd.arg("--require-auth");
        }
        say(&format!("starting Atelier ({name}) on 127.0.0.1:{port}"));
        let (mut s, t0) = Server::spawn(
            if auth {
                "Atelier (authorised)"
            } else {
                "Atelier (open)"
            },
            slot,
            cmd,
            port,
            tmp.join(format!("{name}.log")),
        )?;
        s.wait_healthy(t0, Duration::from_secs(60))?;
        servers.push(s);
        let headers = if auth {
            vec![
                ("Authorization".to_string(), format!("Bearer {token}")),
                ("X-MLFLOW-WORKSPACE".to_string(), "team-a".to_string()),
            ]
        } else {
            Vec::new()
        };
        let mut t = Target {
            port,
            headers,
            run: String::new(),
            exp: String::new(),
        };
        prepare(&mut t)?;
        targets.push(t);
    }

    type Job = fn(&Target, &mut Http, usize) -> Result<(), String>;
    let cases: [(&str, Job, usize); 3] = [
        ("log-metric (1 point)", log_metric, o.calls),
        ("log-batch (1000 metrics)", log_batch, o.batches),
        ("runs/search (10 of 1 run)", search, o.calls),
    ];
    // per case, per server: the rounds' (p50 ms, calls/s)
    let mut got = vec![[Vec::new(), Vec::new()]; cases.len()];
    for round in 0..o.rounds {
        for (c, (label, job, n)) in cases.iter().enumerate() {
            // alternate which server goes first, so neither always follows the other
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for s in order {
                let (p50, rate) = time_calls(&targets[s], *n, job)?;
                got[c][s].push((p50, rate));
            }
            say(&format!(
                "round {}/{}: {label}: open p50 {:.3} ms, authorised p50 {:.3} ms",
                round + 1,
                o.rounds,
                got[c][0].last().map_or(f64::NAN, |x| x.0),
                got[c][1].last().map_or(f64::NAN, |x| x.0)
            ));
        }
    }
    drop(servers);

    let mut md = format!(
        "`cargo xtask bench auth` ({:.0} s), measured {} on {} CPUs ({}). The same release binary \
         twice, on SQLite: **open** (no sign-in) and **authorised** (`--require-auth`; user `alice`, \
         editor of project `team-a`, with her own token and `X-MLFLOW-WORKSPACE: team-a`, so each \
         request looks up the token and her role in the project). {} alternating rounds; medians of \
         the rounds' medians; one keep-alive connection.\n\n",
        t_all.elapsed().as_secs_f64(),
        utc_stamp(),
        nproc(),
        cpu_model(),
        o.rounds
    );
    md.push_str("| request | open p50 | authorised p50 | cost p50 | open spread (min–max of rounds) | open calls/s | authorised calls/s |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    let mut verdicts = Vec::new();
    for (c, (label, _, n)) in cases.iter().enumerate() {
        let p = |s: usize| median(&mut got[c][s].iter().map(|x| x.0).collect::<Vec<_>>());
        let r = |s: usize| median(&mut got[c][s].iter().map(|x| x.1).collect::<Vec<_>>());
        let lo = got[c][0].iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
        let hi = got[c][0].iter().map(|x| x.0).fold(0.0, f64::max);
        let (po, pa) = (p(0), p(1));
        let cost = pa - po;
        md.push_str(&format!(
            "| {label}, {n} calls a round | {po:.3} ms | {pa:.3} ms | {cost:+.3} ms ({:+.1} %) | {lo:.3}–{hi:.3} ms | {:.0} | {:.0} |\n",
            cost / po * 100.0,
            r(0),
            r(1)
        ));
        verdicts.push(format!(
            "{label}: {cost:+.3} ms a request ({:+.1} %), {} the open server's own spread between rounds ({:.3} ms)",
            cost / po * 100.0,
            if cost.abs() <= hi - lo { "within" } else { "beyond" },
            hi - lo
        ));
    }
    md.push('\n');
    for v in verdicts {
        md.push_str(&format!("- {v}.\n"));
    }
    md.push_str(&format!(
        "- Machine: {} CPUs ({}); load average {} before, {} after.\n",
        nproc(),
        cpu_model(),
        load_before,
        loadavg()
    ));
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse_nonsense() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = parse(&a(&["--rounds", "3", "--no-readme"]))
            .unwrap()
            .unwrap();
        assert_eq!((o.rounds, o.readme, o.calls), (3, false, 1000));
        assert!(parse(&a(&["--rounds", "0"])).is_err());
        assert!(parse(&a(&["--bogus"])).is_err());
        assert!(parse(&a(&["--help"])).unwrap().is_none());
        assert_eq!(
            field(r#"{"run": {"info": {"run_id": "abc"}}}"#, "run_id").as_deref(),
            Some("abc")
        );
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
