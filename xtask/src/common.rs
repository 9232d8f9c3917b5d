//! Helpers the benchmarks share: paths, processes, the machine, venvs, the
//! clock, and the process groups killed when a benchmark is interrupted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

unsafe extern "C" {
    pub fn kill(pid: i32, sig: i32) -> i32;
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(code: i32) -> !;
}

/// Process groups a benchmark leads (the servers it started), by slot;
/// SIGKILLed if the benchmark is interrupted.
static GROUPS: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];

/// Remember the group `pgid` in `slot` (below 8).
pub fn lead_group(slot: usize, pgid: i32) {
    GROUPS[slot].store(pgid, Ordering::SeqCst);
}

/// Forget the group in `slot`; returns it (0 when there was none).
pub fn forget_group(slot: usize) -> i32 {
    GROUPS[slot].swap(0, Ordering::SeqCst)
}

extern "C" fn on_signal(_sig: i32) {
    // Only async-signal-safe calls here: kill(2) and _exit(2).
    for g in &GROUPS {
        let g = g.load(Ordering::SeqCst);
        if g > 0 {
            unsafe { kill(-g, SIGKILL) };
        }
    }
    unsafe { _exit(130) }
}

/// On SIGINT or SIGTERM, kill every group led, then exit 130.
pub fn kill_groups_on_signal() {
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
}

// what every report states about its run: shared with `atelier bench automl`
pub use benchreport::{cpu_model, loadavg, utc_now, utc_stamp};

pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let st = cmd
        .status()
        .map_err(|e| format!("{what}: could not start {:?}: {e}", cmd.get_program()))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({st})"))
    }
}

pub fn say(msg: &str) {
    eprintln!("bench: {msg}");
}

pub fn tail_str(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The build's target folder: `CARGO_TARGET_DIR` (relative to the root)
/// when set, else `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() { d } else { root.join(d) }
        }
        _ => root.join("target"),
    }
}

/// The release binary the benchmarks measure, built first unless
/// `skip_build` (then it must already exist).
pub fn release_atelier(root: &Path, target: &Path, skip_build: bool) -> Result<PathBuf, String> {
    if !skip_build {
        say("cargo build --release -p atelier");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run_checked(
            Command::new(cargo)
                .current_dir(root)
                .args(["build", "--release", "-p", "atelier"]),
            "cargo build --release -p atelier",
        )?;
    }
    let bin = target.join("release/atelier");
    if !bin.exists() {
        return Err(format!("{} is missing (drop --skip-build)", bin.display()));
    }
    Ok(bin)
}

/// The venv's python, created and filled from `req_path` if needed.
pub fn ensure_venv(venv: &Path, req_path: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    let req = std::fs::read_to_string(req_path)
        .map_err(|e| format!("reading {}: {e}", req_path.display()))?;
    let marker = venv.join(".bench-requirements");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(req.as_str()) {
        return Ok(python);
    }
    if !python.exists() {
        say(&format!("creating {}", venv.display()));
        run_checked(
            Command::new("python3").arg("-m").arg("venv").arg(venv),
            "python3 -m venv (install python3-venv, or pass --python)",
        )?;
    }
    say(&format!("pip install -r {}", req_path.display()));
    run_checked(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(req_path),
        "pip install",
    )?;
    std::fs::write(&marker, req).map_err(|e| e.to_string())?;
    Ok(python)
}

/// Replace what lies between the README's `<!-- bench:NAME -->` and
/// `<!-- /bench:NAME -->` markers with `md` (a README without them is left
/// as it is, with a word saying so).
pub fn update_readme(path: &Path, name: &str, md: &str) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let new = match benchreport::replace_block(&text, name, md) {
        Ok(new) => new,
        Err(e @ benchreport::BlockError::Missing { .. }) => {
            say(&format!("{} {e}; not updated", path.display()));
            return Ok(());
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    std::fs::write(path, new).map_err(|e| format!("writing {}: {e}", path.display()))?;
    say(&format!(
        "updated {} between <!-- bench:{name} --> and <!-- /bench:{name} -->",
        path.display()
    ));
    Ok(())
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// An HTTP/1.1 answer read to its end (`Connection: close`): its status and
/// body, a chunked body decoded. `what` names the request in errors.
pub fn parse_http_answer(buf: &[u8], what: &str) -> Result<(u16, Vec<u8>), String> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{what}: no HTTP answer"))?;
    let head = String::from_utf8_lossy(&buf[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{what}: bad status line"))?;
    let raw = &buf[split + 4..];
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok((status, if chunked { dechunk(raw) } else { raw.to_vec() }))
}

/// A chunked HTTP body, decoded (stops at the last chunk or a short one).
pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_txt = String::from_utf8_lossy(&b[..eol]);
        let size =
            usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || size > b.len() {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

#[cfg(test)]
mod http_tests {
    use super::*;

    #[test]
    fn answers_are_parsed_plain_and_chunked() {
        let plain = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(
            parse_http_answer(plain, "x").unwrap(),
            (201, b"ok".to_vec())
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        assert_eq!(
            parse_http_answer(chunked, "x").unwrap(),
            (200, b"abcde".to_vec())
        );
        assert!(
            parse_http_answer(b"HTTP/1.1 200", "x")
                .unwrap_err()
                .contains("no HTTP answer")
        );
        assert!(
            parse_http_answer(b"garbage\r\n\r\n", "x")
                .unwrap_err()
                .contains("bad status line")
        );
    }
}

#[cfg(test)]
mod readme_tests {
    use super::*;

    #[test]
    fn only_the_named_block_is_replaced() {
        let p = std::env::temp_dir().join(format!("xtask-readme-{}.md", std::process::id()));
        let text = "a\n<!-- bench:jobs -->\nold jobs\n<!-- /bench:jobs -->\n<!-- bench:notebooks -->\nold nb\n<!-- /bench:notebooks -->\nz\n";
        std::fs::write(&p, text).unwrap();
        update_readme(&p, "notebooks", "new nb\n\n").unwrap();
        let got = std::fs::read_to_string(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        assert_eq!(
            got,
            "a\n<!-- bench:jobs -->\nold jobs\n<!-- /bench:jobs -->\n<!-- bench:notebooks -->\nnew nb\n<!-- /bench:notebooks -->\nz\n"
        );
    }
}
