//! Work that jobs of the server hand to a cluster executor (`--executor
//! ray`): Autopilot's candidates, batch transforms. Such a job keeps its
//! claim on the server and runs its heavy part as commands of the hidden
//! `atelier __…` kind on the cluster's workers, which reach the server only
//! over HTTP (its artifact API, `MLFLOW_TRACKING_URI`, and with
//! authentication a token made for the job and revoked when it ends).

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::MetadataStore;

use crate::executor::{ExecStatus, Executor, Handle, Launch};

/// Makes a token for a job's workers: the store, the token's name, the
/// job's project (the only one the token acts in); the token's secret back.
pub type MintToken =
    Arc<dyn Fn(&dyn MetadataStore, &str, &str) -> Result<String, String> + Send + Sync>;

/// How often a command on the cluster is looked at.
pub const POLL: Duration = Duration::from_millis(250);

/// Where server jobs send their heavy work.
#[derive(Clone)]
pub struct Cluster {
    pub executor: Arc<dyn Executor>,
    /// This server's address as the workers reach it.
    pub tracking_uri: String,
    /// The `atelier` program on the workers.
    pub atelier_bin: String,
    /// Commands at once, for work that runs several (Autopilot's candidates).
    pub slots: usize,
    /// `Some` when the server wants tokens.
    pub mint_token: Option<MintToken>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("tracking_uri", &self.tracking_uri)
            .field("atelier_bin", &self.atelier_bin)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// A token the workers of one job use, revoked when dropped.
pub struct WorkerToken {
    store: Arc<dyn MetadataStore>,
    name: String,
    pub secret: String,
}

impl Drop for WorkerToken {
    fn drop(&mut self) {
        match self.store.revoke_token(&self.name) {
            Ok(()) | Err(store::StoreError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(token = %self.name, "could not revoke a job's workers' token: {e}")
            }
        }
    }
}

impl Cluster {
    /// A token named `name` for the workers, when the server wants tokens.
    pub fn token(
        &self,
        store: &Arc<dyn MetadataStore>,
        name: &str,
        workspace: &str,
    ) -> Result<Option<WorkerToken>, String> {
        let Some(mint) = &self.mint_token else {
            return Ok(None);
        };
        let secret = mint(store.as_ref(), name, workspace)
            .map_err(|e| format!("could not make the workers' token: {e}"))?;
        Ok(Some(WorkerToken {
            store: store.clone(),
            name: name.to_string(),
            secret,
        }))
    }

    /// The variables every worker gets: the server's address and the token.
    pub fn worker_env(&self, token: Option<&WorkerToken>) -> Vec<(String, String)> {
        let mut env = vec![("MLFLOW_TRACKING_URI".to_string(), self.tracking_uri.clone())];
        if let Some(t) = token {
            env.push(("MLFLOW_TRACKING_TOKEN".to_string(), t.secret.clone()));
        }
        env
    }

    /// The last lines of a command's output, for a failure message (` | `
    /// between them; empty when there are none).
    pub fn tail(&self, handle: &Handle, lines: usize) -> String {
        let Ok(chunk) = self.executor.logs(handle, 0, 1 << 20) else {
            return String::new();
        };
        let all: Vec<&str> = chunk
            .lines
            .iter()
            .map(|l| l.text.trim_end())
            .filter(|l| !l.is_empty())
            .collect();
        all[all.len().saturating_sub(lines)..].join(" | ")
    }

    /// Why a command that ended did not succeed (`None`: it did).
    pub fn failure(&self, handle: &Handle, status: &ExecStatus) -> Option<String> {
        match status {
            ExecStatus::Running => None,
            ExecStatus::Exited(e) if e.success() => None,
            ExecStatus::Exited(e) => {
                let tail = self.tail(handle, 3);
                let reason = e.reason().unwrap_or_else(|| "it ended".into());
                Some(if tail.is_empty() {
                    format!("the worker failed: {reason}")
                } else {
                    format!("the worker failed: {reason}: {tail}")
                })
            }
            ExecStatus::Lost { reason } => Some(format!("the worker was lost: {reason}")),
        }
    }

    /// Run one command on the cluster and follow it to its end. `on_line`
    /// gets its output lines as they come; `cancel` stops it (the answer is
    /// then `Err("cancelled")`), as does running past `limit`.
    pub fn run_one(
        &self,
        launch: &Launch,
        limit: Duration,
        cancel: &dyn Fn() -> bool,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<(), String> {
        let handle = self
            .executor
            .submit(launch)
            .map_err(|e| format!("could not start the work on the cluster: {e}"))?;
        let until = Instant::now() + limit;
        let mut from = 0u64;
        loop {
            std::thread::sleep(POLL);
            if let Ok(chunk) = self.executor.logs(&handle, from, 1 << 20) {
                for l in &chunk.lines {
                    on_line(&l.text);
                }
                from = chunk.next;
            }
            if cancel() {
                let _ = self.executor.stop(&handle, Duration::from_secs(3));
                return Err("cancelled".into());
            }
            match self.executor.status(&handle) {
                Ok(ExecStatus::Running) => {}
                Ok(st) => {
                    // the last lines, once it ended
                    if let Ok(chunk) = self.executor.logs(&handle, from, 1 << 20) {
                        for l in &chunk.lines {
                            on_line(&l.text);
                        }
                    }
                    return match self.failure(&handle, &st) {
                        None => Ok(()),
                        Some(why) => Err(why),
                    };
                }
                // an unreachable cluster is asked again until the time is up
                Err(e) if Instant::now() > until => {
                    return Err(format!("the cluster did not answer about the work: {e}"));
                }
                Err(_) => {}
            }
            if Instant::now() > until {
                let _ = self.executor.stop(&handle, Duration::from_secs(3));
                return Err(format!(
                    "the work did not finish within {:.0} s on the cluster; it was stopped",
                    limit.as_secs_f64()
                ));
            }
        }
    }
}
