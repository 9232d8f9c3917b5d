//! JupyterLab spaces of the real binary: a JupyterLab (and its kernels)
//! never outlives the server — SIGTERM stops them with it — and an idle one
//! is stopped after `--notebook-idle-seconds`, then started again by the next
//! request through the proxy. Needs the test venv's Python (jupyterlab,
//! ipykernel): `ATELIER_PYTHON`, else `.venv/bin/python` at the repository root.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Server, agent, get, post};
use serde_json::json;

fn python() -> PathBuf {
    let p = std::env::var_os("ATELIER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    assert!(
        p.exists(),
        "no Python with jupyterlab at {}: run `cargo xtask test` once (it makes .venv from tests/python/requirements.txt) or set ATELIER_PYTHON",
        p.display()
    );
    p
}

fn alive(pid: u32) -> bool {
    // a zombie has exited: only its parent has not reaped it yet
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Processes whose environment names `parent` as their Jupyter server (kernels).
fn kernels_of(parent: u32) -> Vec<u32> {
    let want = format!("JPY_PARENT_PID={parent}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            && env.split(|b| *b == 0).any(|v| v == want.as_bytes())
        {
            out.push(pid);
        }
    }
    out
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// Start the space and a kernel in it; returns JupyterLab's pid and the kernel's.
fn start_space_with_kernel(s: &Server) -> (u32, u32) {
    let a = agent();
    let (code, v) = post(&a, &s.url("/api/atelier/spaces/default/start"), &json!({})).unwrap();
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "running", "{v}");
    let pid = v["pid"].as_u64().expect("a pid") as u32;
    let (code, k) = post(
        &a,
        &s.url("/notebooks/default/api/kernels"),
        &json!({"name": "python3"}),
    )
    .unwrap();
    assert!(code == 200 || code == 201, "{code} {k}");
    let mut kernel = 0;
    wait_until("the kernel process", 60, || {
        kernel = kernels_of(pid).into_iter().next().unwrap_or(0);
        kernel != 0
    });
    (pid, kernel)
}

#[test]
fn sigterm_stops_the_servers_jupyterlab_and_its_kernels() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &["--notebook-python", py.to_str().unwrap()]);
    let (lab, kernel) = start_space_with_kernel(&s);
    assert!(alive(lab) && alive(kernel));
    // a save larger than --max-request-bytes (16 MiB) goes through to JupyterLab
    let big = "x".repeat(20 << 20);
    let nb = json!({"type": "notebook", "content": {"nbformat": 4, "nbformat_minor": 5,
        "metadata": {}, "cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": big}]}});
    let (code, v) = common::put(
        &agent(),
        &s.url("/notebooks/default/api/contents/big.ipynb"),
        &nb,
    )
    .unwrap();
    assert!(code == 200 || code == 201, "{code} {v}");
    let saved = std::fs::metadata(dir.path().join("workspaces/default/big.ipynb")).unwrap();
    assert!(saved.len() > 20 << 20, "{}", saved.len());
    let st = std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let started = Instant::now();
    loop {
        if s.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until("JupyterLab and its kernel to end", 10, || {
        !alive(lab) && !alive(kernel)
    });
    // the pid file is gone: nothing is left for a later server to clean up
    assert!(!dir.path().join("spaces/default/jupyterlab.pid").exists());
}

#[test]
fn an_idle_jupyterlab_stops_and_the_next_request_starts_it_again() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--notebook-python",
            py.to_str().unwrap(),
            "--notebook-idle-seconds",
            "3",
        ],
    );
    let (lab, kernel) = start_space_with_kernel(&s);
    let a = agent();
    wait_until("the idle space to stop", 30, || {
        !alive(lab)
            && !alive(kernel)
            && get(&a, &s.url("/api/atelier/spaces/default"))
                .is_ok_and(|(_, v)| v["state"] == "stopped")
    });
    // the proxy starts it again for the next request
    let (code, v) = get(&a, &s.url("/notebooks/default/api/status")).unwrap();
    assert_eq!(code, 200, "{v}");
    let (_, st) = get(&a, &s.url("/api/atelier/spaces/default")).unwrap();
    assert_eq!(st["state"], "running", "{st}");
    assert_ne!(st["pid"].as_u64(), Some(lab as u64));
}

#[test]
fn with_auth_on_a_spaces_kernels_get_a_token_of_their_own_that_works() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let admin = common::token(dir.path(), "ann", "editor");
    let s = Server::start(
        dir.path(),
        &["--require-auth", "--notebook-python", py.to_str().unwrap()],
    );
    let a = agent();
    let auth = format!("Bearer {admin}");
    // no token, no JupyterLab
    let (code, _) = post(&a, &s.url("/api/atelier/spaces/ann/start"), &json!({})).unwrap();
    assert_eq!(code, 401);
    let mut r = a
        .post(s.url("/api/atelier/spaces/ann/start"))
        .header("Authorization", &auth)
        .send_json(json!({}))
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(r.status().as_u16(), 200, "{v}");
    let pid = v["pid"].as_u64().unwrap();
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let token = env
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"MLFLOW_TRACKING_TOKEN="))
        .map(|t| String::from_utf8_lossy(t).to_string())
        .expect("JupyterLab (and so its kernels) has MLFLOW_TRACKING_TOKEN");
    assert_ne!(token, admin, "the space's token is its own, not the user's");
    let r = a
        .get(s.url("/api/2.0/mlflow/experiments/search?max_results=5"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // stopping the space revokes its token
    let r = a
        .post(s.url("/api/atelier/spaces/ann/stop"))
        .header("Authorization", &auth)
        .send_json(json!({}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = a
        .get(s.url("/api/2.0/mlflow/experiments/search?max_results=5"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "the stopped space's token still works"
    );
    // another user's space answers 404 to this user
    let r = a
        .post(s.url("/api/atelier/spaces/bob/start"))
        .header("Authorization", &auth)
        .send_json(json!({}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
