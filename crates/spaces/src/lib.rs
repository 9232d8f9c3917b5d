//! # spaces — JupyterLab "spaces" behind the Studio
//!
//! Each user gets one space: a workspace folder
//! `<workspaces_root>/<space>/` and, on demand, a real JupyterLab for it,
//! run on `127.0.0.1` with a random port and a random token, and
//! reverse-proxied (HTTP and websockets) under `/notebooks/<space>/`. The
//! browser never sees Jupyter's token (the proxy injects
//! `Authorization: token …` upstream) and Jupyter's port is never exposed.
//! This is SageMaker Studio's "JupyterLab space" model; the measured recipe
//! is in the shared notes (`jupyter-and-scale-out.md`, section 1(b)).
//!
//! - A space is named after the caller's identity ([`space_name_for`]): one
//!   space per user, `default` when authentication is off. A caller may use
//!   only their own space (admins any); anything else answers 404.
//! - [`Spaces::ensure`] starts JupyterLab if it is not running (or died)
//!   and waits until its status API answers; two concurrent calls start one
//!   JupyterLab. The proxy calls it on every request, so a dead or stopped
//!   JupyterLab comes back transparently.
//! - JupyterLab leads its own process group, gets `SIGTERM` if the server
//!   dies (Linux), and is recorded in `<state_root>/<space>/jupyterlab.pid`,
//!   so [`Spaces::new`] can kill what a `kill -9`-ed server left behind.
//! - [`Spaces::spawn_keeper`] stops spaces idle for `idle_timeout` (no
//!   proxied request, no open websocket); [`Spaces::shutdown`] stops them
//!   all, kernels included.
//!
//! Routes ([`routes`]): `/notebooks/{space}`, `/notebooks/{space}/` and
//! `/notebooks/{space}/{*rest}` (GET, POST, PUT, PATCH, DELETE; editor
//! role, raw bodies) proxy to the space's JupyterLab; `GET
//! /api/atelier/spaces` lists, `GET /api/atelier/spaces/{space}` describes,
//! `POST /api/atelier/spaces/{space}/start` and `…/stop` start and stop.
//!
//! Wiring, in the server: `let spaces = Spaces::new(cfg); spaces.spawn_keeper();`
//! at start-up, `spaces::routes(spaces.clone())` merged into the extra
//! routes of `server::serve_with`, and `spaces.shutdown().await` after the
//! server has stopped serving.

mod api;
mod error;
mod manager;
mod process;
mod proxy;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use api::{routes, space_of};
pub use error::SpaceError;
pub use manager::Spaces;

/// How spaces run.
#[derive(Debug, Clone)]
pub struct SpacesConfig {
    /// The Python interpreter with `jupyterlab` (and `ipykernel`) installed.
    pub python: PathBuf,
    /// Workspace folders live in `<workspaces_root>/<space>/`.
    pub workspaces_root: PathBuf,
    /// Pid files, logs, runtime, config and settings folders, per space in
    /// `<state_root>/<space>/`.
    pub state_root: PathBuf,
    /// A space with no proxied request and no open websocket for this long
    /// is stopped by the keeper. Zero: never.
    pub idle_timeout: Duration,
    /// How long JupyterLab may take to answer its status API.
    pub start_timeout: Duration,
    /// Environment for JupyterLab, and so its kernels and terminals (e.g.
    /// `MLFLOW_TRACKING_URI`). The server's own environment is not passed
    /// on, apart from `PATH`, `HOME`, the locale and a few such variables.
    pub env: BTreeMap<String, String>,
    /// More environment for each start of a space (e.g. a fresh API token
    /// for its kernels' MLflow client when the server requires one).
    pub space_env: Option<SpaceEnv>,
    /// Called when a space's JupyterLab has stopped or died (e.g. to revoke
    /// what `space_env` handed out).
    pub on_stop: Option<SpaceHook>,
}

/// Called with a space's name.
#[derive(Clone)]
pub struct SpaceHook(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for SpaceHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpaceHook(..)")
    }
}

/// Environment made for a space each time it starts.
#[derive(Clone)]
pub struct SpaceEnv(pub std::sync::Arc<EnvFn>);

/// Makes the environment of one start of a space, given its name.
pub type EnvFn = dyn Fn(&str) -> BTreeMap<String, String> + Send + Sync;

impl std::fmt::Debug for SpaceEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpaceEnv(..)")
    }
}

impl SpacesConfig {
    /// A configuration with the usual timeouts (1 h idle, 60 s start).
    pub fn new(python: PathBuf, workspaces_root: PathBuf, state_root: PathBuf) -> Self {
        SpacesConfig {
            python,
            workspaces_root,
            state_root,
            idle_timeout: Duration::from_secs(3600),
            start_timeout: Duration::from_secs(60),
            env: BTreeMap::new(),
            space_env: None,
            on_stop: None,
        }
    }
}

/// Where a space is in its life. Serialised as `"state": "running"`, or
/// `"state": "failed", "error": "..."`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "error", rename_all = "lowercase")]
pub enum SpaceState {
    Stopped,
    Starting,
    Running,
    Failed(String),
}

/// A space as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceStatus {
    pub space: String,
    #[serde(flatten)]
    pub state: SpaceState,
    /// Where the browser opens it: `/notebooks/<space>/lab`.
    pub url: String,
    /// When the running JupyterLab started (Unix ms).
    pub started_ms: Option<i64>,
    /// The last proxied request or websocket message (Unix ms).
    pub last_activity_ms: Option<i64>,
    /// JupyterLab's pid (= its process group id) while it runs.
    pub pid: Option<u32>,
}

/// The longest space name.
pub const MAX_NAME_LEN: usize = 40;

/// Whether `name` is a valid space name: `[a-z0-9][a-z0-9-]{0,39}`.
pub fn valid_space_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The identity names that mean "authentication is off": the server's open
/// mode gives every request the identity `local`; `anonymous` is what a
/// public route sees.
pub const OPEN_IDENTITIES: &[&str] = &["local", "anonymous"];

/// The space of an identity: `default` without one or for the open
/// server's identity ([`OPEN_IDENTITIES`]: authentication off), else the
/// name itself when it already is a valid space name (`alice`,
/// `ml-team-2`). Any other name (and `default` itself, which is taken) is
/// lower-cased, runs of other characters become one `-`, and a hash of the
/// exact name is appended (`Alice` → `alice-<8 hex>`), so that two
/// identities never share a space (`Alice` and `alice`, `a.b` and `a-b`
/// stay apart); always at most 40 characters.
pub fn space_name_for(identity_name: Option<&str>) -> String {
    let name = match identity_name {
        None => return "default".to_string(),
        Some(n) if OPEN_IDENTITIES.contains(&n) => return "default".to_string(),
        Some(n) => n,
    };
    if valid_space_name(name) && name != "default" {
        return name.to_string();
    }
    let mut base = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            base.push(c);
        } else if !base.is_empty() && !base.ends_with('-') {
            base.push('-');
        }
    }
    let hash = format!("{:08x}", fnv1a(name.as_bytes()) as u32);
    // room for "-" and the hash
    base.truncate(MAX_NAME_LEN - 1 - hash.len());
    let base = base.trim_end_matches('-');
    if base.is_empty() {
        format!("u-{hash}")
    } else {
        format!("{base}-{hash}")
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(space_name_for(None), "default");
        assert_eq!(space_name_for(Some("local")), "default");
        assert_eq!(space_name_for(Some("anonymous")), "default");
        let d = space_name_for(Some("default"));
        assert!(d.starts_with("default-") && valid_space_name(&d), "{d}");
        assert_eq!(space_name_for(Some("alice")), "alice");
        assert_eq!(space_name_for(Some("ml-team-2")), "ml-team-2");
        let a = space_name_for(Some("Alice"));
        assert!(a.starts_with("alice-") && valid_space_name(&a), "{a}");
        assert_ne!(a, space_name_for(Some("alice")));
        assert_ne!(space_name_for(Some("a.b")), space_name_for(Some("a_b")));
        assert!(space_name_for(Some("a.b")).starts_with("a-b-"));
        let long = space_name_for(Some(&"x".repeat(100)));
        assert!(
            long.len() <= MAX_NAME_LEN && valid_space_name(&long),
            "{long}"
        );
        for odd in ["", "-", "日本", "..", "-x-", "A".repeat(41).as_str()] {
            let n = space_name_for(Some(odd));
            assert!(valid_space_name(&n), "{odd:?} -> {n:?}");
        }
        assert_eq!(space_name_for(Some("Bob")), space_name_for(Some("Bob")));
    }

    #[test]
    fn validation() {
        for ok in ["a", "default", "0", "a-b", &"x".repeat(40)] {
            assert!(valid_space_name(ok), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a/b", "..", &"x".repeat(41), "é"] {
            assert!(!valid_space_name(bad), "{bad}");
        }
    }

    #[test]
    fn status_json() {
        let s = SpaceStatus {
            space: "a".into(),
            state: SpaceState::Failed("boom".into()),
            url: "/notebooks/a/lab".into(),
            started_ms: None,
            last_activity_ms: Some(5),
            pid: None,
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "failed");
        assert_eq!(v["error"], "boom");
        let s = SpaceStatus {
            state: SpaceState::Running,
            ..s
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "running");
        assert!(v.get("error").is_none());
    }
}
