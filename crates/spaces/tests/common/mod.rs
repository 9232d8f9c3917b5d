//! Shared test helpers: the real JupyterLab's Python, an HTTP client, a
//! served router, process checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use spaces::{Spaces, SpacesConfig};

/// The Python with JupyterLab: `ATELIER_PYTHON`, else the workspace's `.venv`.
pub fn python() -> PathBuf {
    let p = std::env::var_os("ATELIER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = std::process::Command::new(&p)
        .args(["-c", "import jupyterlab, ipykernel"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests run a real JupyterLab, and {} has no jupyterlab + ipykernel. Install them: \
         `python3 -m venv .venv && .venv/bin/python -m pip install jupyterlab ipykernel` at the \
         workspace root, or point ATELIER_PYTHON at a Python that has them",
        p.display()
    );
    p
}

pub fn config(root: &Path, python: PathBuf) -> SpacesConfig {
    let mut env = BTreeMap::new();
    env.insert(
        "MLFLOW_TRACKING_URI".to_string(),
        "http://127.0.0.1:1".to_string(),
    );
    SpacesConfig {
        python,
        workspaces_root: root.join("workspaces"),
        state_root: root.join("state"),
        idle_timeout: Duration::from_secs(3600),
        start_timeout: Duration::from_secs(120),
        env,
        space_env: None,
        on_stop: None,
    }
}

/// Serve `app` on 127.0.0.1; the address.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// The spaces' routes behind the server's real guard (open mode: every
/// request is the local admin, whose space is `default`).
pub fn guarded_app(sp: Arc<Spaces>, dir: &Path) -> Router {
    let state = server::AppState {
        store: Arc::new(store::SqlStore::open(dir.join("m.db")).unwrap()),
        artifacts: artifacts::ArtifactStore::local(dir.join("a")).unwrap(),
        auth: server::AuthMode::Open,
        max_artifact_bytes: 1 << 20,
        max_request_bytes: 16 << 20,
        site: Arc::new(server::SitePolicy::default()),
        jobs: None,
        mlflow_webhooks: None,
    };
    server::router_with(state, spaces::routes(sp))
}

pub struct Http {
    client: Client<HttpConnector, Body>,
    pub base: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

impl Http {
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Answer {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self.client.request(b.body(body).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], None).await
    }
}

/// Whether a process is gone (no such pid, or a zombie).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
    }
}

/// Live (non-zombie) members of a process group.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // fields after the name: state ppid pgrp
        if f.len() > 2 && f[0] != "Z" && f[2].parse::<u32>().ok() == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// Wait up to `secs` for `cond`.
pub async fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cond()
}

/// The `JUPYTER_TOKEN` of a running JupyterLab (from its environment).
pub fn token_of(pid: u32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("JUPYTER_TOKEN=").map(str::to_string))
}
