//! `cargo xtask test`: the whole suite, from a fresh clone on a fresh
//! machine. Set-up steps are idempotent and skipped when already done.
//!
//! Suites: Rust (`cargo test --workspace`, including the end-to-end tests
//! that start the real binary, and the Ray executor's tests against a local
//! Ray head started for them, see ray.rs), Python (`pytest tests/python`, the real
//! `mlflow` client against the built binary) and browser (`node --test e2e`,
//! playwright-core driving Debian's Chromium). The Python suite also gets
//! the binary as a wheel (`ATELIER_WHEEL`, see wheel.rs). After the PostgreSQL suites,
//! `load-replicas --quick` (load_replicas.rs) counts as one test. The last line is the total
//! count, `tests: N passed, M failed`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

type R<T = ()> = Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn step(msg: &str) {
    eprintln!("\n==> {msg}");
}

fn sh(cmd: &mut Command) -> R {
    let shown = format!("{cmd:?}");
    let st = cmd
        .status()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    if !st.success() {
        return Err(format!("{shown} failed with {st}"));
    }
    Ok(())
}

/// Counts from one suite's output.
#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
}

/// Run a test command, echoing its output and reading its counts.
fn run_suite(name: &str, cmd: &mut Command, parse: fn(&str, &mut Counts)) -> R<(Counts, bool)> {
    step(&format!("{name} tests"));
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    let mut counts = Counts::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            parse(&line, &mut counts);
        }
    }
    let ok = child.wait().map_err(|e| e.to_string())?.success();
    Ok((counts, ok))
}

fn number_before(line: &str, word: &str) -> Option<u64> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches(['.', ',', ';']) == word)
        .and_then(|w| w[0].parse().ok())
}

fn parse_cargo(line: &str, c: &mut Counts) {
    if line.starts_with("test result:") {
        c.passed += number_before(line, "passed").unwrap_or(0);
        c.failed += number_before(line, "failed").unwrap_or(0);
    }
}

fn parse_pytest(line: &str, c: &mut Counts) {
    // "===== 40 passed, 2 failed, 1 skipped in 12.3s ====="
    let l = line.trim_matches(|ch: char| ch == '=' || ch.is_whitespace());
    if (l.contains(" passed") || l.contains(" failed") || l.contains(" error"))
        && l.contains(" in ")
    {
        c.passed += number_before(l, "passed").unwrap_or(0);
        c.failed += number_before(l, "failed").unwrap_or(0)
            + number_before(l, "error").unwrap_or(0)
            + number_before(l, "errors").unwrap_or(0);
    }
}

fn parse_node(line: &str, c: &mut Counts) {
    // node --test (TAP/spec reporter): "# pass 5" / "ℹ pass 5"
    let l = line.trim_start_matches(['#', 'ℹ', ' ']);
    if let Some(n) = l.strip_prefix("pass ") {
        c.passed += n.trim().parse().unwrap_or(0);
    } else if let Some(n) = l.strip_prefix("fail ") {
        c.failed += n.trim().parse().unwrap_or(0);
    }
}

fn parse_load(line: &str, c: &mut Counts) {
    // load_replicas.rs ends with "load-replicas: PASS" or "load-replicas: FAIL"
    match line.trim() {
        "load-replicas: PASS" => c.passed += 1,
        "load-replicas: FAIL" => c.failed += 1,
        _ => {}
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub(crate) fn setup_python(root: &Path, venv: &str, requirements: &str) -> R<PathBuf> {
    let venv = root.join(venv);
    let py = venv.join("bin/python");
    let req = root.join(requirements);
    let stamp = venv.join(".requirements.installed");
    let wanted =
        std::fs::read_to_string(&req).map_err(|e| format!("reading {}: {e}", req.display()))?;
    if py.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(py);
    }
    step(&format!(
        "Python venv {} from {requirements}",
        venv.display()
    ));
    if !py.exists() {
        sh(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    // from the repository root: requirement files name local packages by relative path
    sh(Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&req)
        .current_dir(root))?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(py)
}

fn setup_chromium() -> R {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    step("Debian's chromium for the browser tests");
    if !is_root() {
        return Err(
            "/usr/bin/chromium is missing; install it with `apt-get install chromium` (needs root)"
                .into(),
        );
    }
    sh(Command::new("apt-get").args(["update", "-q"]))?;
    sh(Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "chromium",
            "fonts-dejavu-core",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn setup_node(root: &Path) -> R {
    let e2e = root.join("e2e");
    if e2e.join("node_modules/playwright-core").exists() {
        return Ok(());
    }
    step("playwright-core from npm (e2e/package-lock.json)");
    if !have("npm") {
        return Err("npm is missing; install Node.js 20 and npm".into());
    }
    // never download a browser: Debian's chromium is used
    sh(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&e2e)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))
}

pub fn run(args: &[String]) -> R {
    let root = root();
    let skip_setup = args.iter().any(|a| a == "--skip-setup");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let want = |s: &str| only.is_none_or(|o| o == s);
    let started = std::time::Instant::now();

    let mut python = root.join(".venv/bin/python");
    let mut skinny = root.join(".venv-skinny/bin/python");
    if !skip_setup {
        // the Rust tests of notebooks (nbexec, spaces) run real kernels and JupyterLab too
        if want("rust") || want("python") || want("browser") {
            python = setup_python(&root, ".venv", "tests/python/requirements.txt")?;
        }
        if want("python") {
            skinny = setup_python(
                &root,
                ".venv-skinny",
                "tests/python/requirements-skinny.txt",
            )?;
        }
        if want("browser") {
            setup_chromium()?;
            setup_node(&root)?;
        }
    }
    step("building the atelier binary");
    sh(Command::new("cargo")
        .args(["build", "--quiet", "-p", "atelier"])
        .current_dir(&root))?;
    let bin = root.join("target/debug/atelier");
    // the in-process S3 server (s3s-fs, checks SigV4) tests/python/test_s3_artifacts.py starts
    sh(Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "-p",
            "artifacts",
            "--example",
            "s3_server",
        ])
        .current_dir(&root))?;
    let s3_server = root.join("target/debug/examples/s3_server");

    // the Ray executor's tests run against a real local head (ray.rs)
    let mut ray_head = None;
    if want("rust") {
        let t = std::time::Instant::now();
        let ray = crate::ray::ray_program(&root, skip_setup)?;
        let installed = t.elapsed();
        step("a local Ray cluster (a head and a worker node) for the Ray tests");
        let head = crate::ray::start(&ray, &root, &format!("test-{}", std::process::id()))?;
        eprintln!(
            "xtask: Ray: venv {} ready in {:.1} s, head answering at {} in {:.1} s",
            crate::ray::VENV,
            installed.as_secs_f64(),
            head.address,
            head.started_in.as_secs_f64()
        );
        ray_head = Some(head);
    }

    // the second backend: the store's suite, the replica tests and the
    // MLflow client suite run again on a private PostgreSQL (postgres.rs);
    // each test's server gets its own database there (store::scratch)
    let mut pg = None;
    if want("rust") || want("python") {
        step("a private PostgreSQL for the suites' second backend");
        let t = std::time::Instant::now();
        let cluster = crate::postgres::start(&crate::common::target_dir(&root))?;
        eprintln!(
            "xtask: PostgreSQL at {} in {:.1} s",
            cluster.url,
            t.elapsed().as_secs_f64()
        );
        pg = Some(cluster);
    }
    let pg_url = pg.as_ref().map(|c| c.url.clone()).unwrap_or_default();

    let mut total = Counts::default();
    let mut failures: Vec<&str> = Vec::new();
    let mut record = |name: &'static str, (c, ok): (Counts, bool)| {
        total.passed += c.passed;
        total.failed += c.failed;
        if !ok || c.failed > 0 {
            failures.push(name);
        }
        if ok && c.passed == 0 {
            failures.push(name);
            eprintln!("xtask: the {name} suite ran no test");
        }
    };
    if want("rust") {
        let r = run_suite(
            "Rust",
            Command::new("cargo")
                .args(["test", "--workspace", "--quiet"])
                .current_dir(&root)
                .env("ATELIER_PYTHON", &python)
                .env(
                    "ATELIER_RAY_ADDRESS",
                    ray_head.as_ref().map_or("", |h| h.address.as_str()),
                ),
            parse_cargo,
        );
        // stopped (by its guard) also when the suite could not run
        drop(ray_head.take());
        record("rust", r?);
        let r = run_suite(
            "Rust on PostgreSQL: the store",
            Command::new("cargo")
                .args(["test", "--quiet", "-p", "store", "-p", "mlflowimport"])
                .current_dir(&root)
                .env("ATELIER_TEST_DATABASE_URL", &pg_url),
            parse_cargo,
        );
        record("rust-postgres-store", r?);
        let r = run_suite(
            "Rust on PostgreSQL: several servers on one database",
            Command::new("cargo")
                .args([
                    "test", "--quiet", "-p", "atelier", "--test", "jobs", "--test", "shadow",
                    "--test", "replicas",
                ])
                .current_dir(&root)
                .env("ATELIER_PYTHON", &python)
                .env("ATELIER_TEST_DATABASE_URL", &pg_url),
            parse_cargo,
        );
        record("rust-postgres-replicas", r?);
    }
    if want("python") {
        // the pip path: test_wheel.py installs this into a fresh venv and serves
        step("building the wheel (maturin, dev profile: the binary above)");
        let wheel = crate::wheel::build(&root, &python, false, &root.join("target/wheels/test"))?;
        // once on the embedded defaults, once with every server's metadata in
        // its own PostgreSQL database (the pip install path is the same twice:
        // not repeated)
        let pytest = |postgres: Option<&str>| {
            let mut c = Command::new(&python);
            c.args([
                "-m",
                "pytest",
                "tests/python",
                "-q",
                "-p",
                "no:cacheprovider",
            ])
            .current_dir(&root)
            .env("ATELIER_BIN", &bin)
            .env("ATELIER_SKINNY_PYTHON", &skinny)
            .env("ATELIER_WHEEL", &wheel)
            .env("ATELIER_S3_SERVER", &s3_server)
            .env("MLFLOW_DISABLE_TELEMETRY", "true");
            if let Some(url) = postgres {
                c.args(["--ignore", "tests/python/test_wheel.py"])
                    .env("ATELIER_TEST_DATABASE_URL", url);
            }
            c
        };
        let r = run_suite("MLflow client (pytest)", &mut pytest(None), parse_pytest)?;
        record("python", r);
        let r = run_suite(
            "MLflow client (pytest) on PostgreSQL",
            &mut pytest(Some(&pg_url)),
            parse_pytest,
        )?;
        record("python-postgres", r);
    }
    drop(pg.take());
    if want("rust") {
        // two replicas on PostgreSQL and S3 under load, one killed with kill -9
        // and restarted (load_replicas.rs; its own PostgreSQL, after the one above
        // is gone); one test: passed when it finds no violation
        let r = run_suite(
            "replicas under load, one killed and restarted (load-replicas --quick)",
            Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
                .args(["load-replicas", "--quick", "--skip-build"])
                .current_dir(&root),
            parse_load,
        )?;
        record("load-replicas", r);
    }
    if want("browser") {
        let r = run_suite(
            "Studio in Chromium (node --test)",
            Command::new("node")
                .args(["--test", "--test-concurrency=1", "--test-reporter=tap"])
                .arg("e2e/")
                .current_dir(&root)
                .env("ATELIER_BIN", &bin)
                .env("ATELIER_PYTHON", &python),
            parse_node,
        )?;
        record("browser", r);
    }
    eprintln!(
        "\nxtask: finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        eprintln!("xtask: failing suites: {}", failures.join(", "));
    }
    println!("tests: {} passed, {} failed", total.passed, total.failed);
    if failures.is_empty() {
        Ok(())
    } else {
        Err("some tests failed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_runners_summary() {
        let mut c = Counts::default();
        parse_cargo(
            "test result: ok. 12 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.05s",
            &mut c,
        );
        parse_pytest(
            "======= 40 passed, 2 failed, 1 skipped in 12.34s =======",
            &mut c,
        );
        parse_pytest("1 error in 0.5s", &mut c);
        parse_node("# pass 5", &mut c);
        parse_node("# fail 0", &mut c);
        parse_load("load-replicas: PASS", &mut c);
        parse_load("load-replicas: 8 clients, 25.4 s of load", &mut c);
        assert_eq!((c.passed, c.failed), (58, 4));
        parse_load("load-replicas: FAIL", &mut c);
        assert_eq!((c.passed, c.failed), (58, 5));
    }
}
