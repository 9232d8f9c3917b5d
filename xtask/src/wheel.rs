//! `cargo xtask wheel`: the `atelier` binary as a Python wheel, built with
//! maturin's binary bindings (`crates/atelier/pyproject.toml`), so that
//! `pip install <wheel>` puts `atelier` on a venv's PATH with no Rust
//! toolchain. maturin comes from the test venv (`tests/python/requirements.txt`
//! pins it).
//!
//! `cargo xtask test` builds one with the dev profile (it reuses the binary
//! the tests already built) and hands it to `tests/python/test_wheel.py`,
//! which installs it into a fresh venv, serves, and logs a run with the
//! `mlflow` client.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

const USAGE: &str = "usage: cargo xtask wheel [--release] [--out DIR]

Builds target/wheels/atelier_studio-<version>-py3-none-<platform>.whl with
maturin (binary bindings), from crates/atelier. --release builds the binary
you would ship (a cold build takes minutes); without it the dev profile is
used, which reuses `cargo build -p atelier`.
Install:  pip install target/wheels/atelier_studio-*.whl && atelier serve";

/// Build the wheel with `maturin` from `venv_python`'s venv; returns its path.
pub fn build(
    root: &Path,
    venv_python: &Path,
    release: bool,
    out: &Path,
) -> Result<PathBuf, String> {
    let maturin = venv_python.with_file_name("maturin");
    if !maturin.exists() {
        return Err(format!(
            "{} is missing: install the test requirements (`cargo xtask test` does) or `pip install maturin`",
            maturin.display()
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    // only this build's wheel in `out`, so the caller finds it unambiguously
    for e in std::fs::read_dir(out).map_err(|e| e.to_string())?.flatten() {
        if e.path().extension().is_some_and(|x| x == "whl") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let mut cmd = Command::new(&maturin);
    cmd.args([
        "build",
        "--quiet",
        "-m",
        "crates/atelier/Cargo.toml",
        "--out",
    ])
    .arg(out)
    .current_dir(root);
    if release {
        cmd.arg("--release");
    } else {
        cmd.args(["--profile", "dev"]);
    }
    common::run_checked(&mut cmd, "maturin build")?;
    let wheel = std::fs::read_dir(out)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("maturin built no wheel in {}", out.display()))?;
    Ok(wheel)
}

pub fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let root = common::root();
    let mut release = false;
    let mut out = root.join("target/wheels");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--release" => release = true,
            "--out" => {
                out = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| format!("--out needs a folder\n{USAGE}"))?;
            }
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    let py = crate::test::setup_python(&root, ".venv", "tests/python/requirements.txt")?;
    let wheel = build(&root, &py, release, &out)?;
    println!("{}", wheel.display());
    Ok(())
}
