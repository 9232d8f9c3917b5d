//! Helpers both benchmarks use: paths, processes, the machine, venvs.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.split_whitespace().take(3).collect();
            (f.len() == 3).then(|| f.join(" "))
        })
        .unwrap_or_else(|| "?".into())
}

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
