//! Autopilot's candidates on a cluster. When the server runs jobs on a
//! cluster executor (`--executor ray`), the search hands out its candidates
//! a round at a time ([`automl::TrialRunner`]) and each one runs as a job of
//! that executor: `atelier __autopilot-trial`, with the [`WorkerTask`] in the
//! environment variable [`TASK_VAR`]. The worker fetches the dataset from
//! this server over HTTP (the artifact API, `MLFLOW_TRACKING_URI` and a
//! token of the Autopilot job's own), prepares it exactly as the search
//! does, evaluates the candidate and uploads its [`automl::TrialResult`]
//! beside the Autopilot run's artifacts (`trials/<attempt>/<id>.json`);
//! the search reads it back from the artifact store. Nothing is shared with
//! the worker but the server's address: no shared filesystem.
//!
//! The ensemble, the finalists' extra validation and the refit run here, on
//! the server; the candidates — the bulk of the work — run in parallel on
//! the cluster, [`Cluster::slots`] at a time (or the spec's
//! `parallel_candidates`), each reserving one CPU, so the cluster spreads
//! them over its nodes.

use std::path::Path;
use std::time::{Duration, Instant};

use artifacts::datasets::dataset_path_in;
use artifacts::{ArtifactPath, ArtifactStore};
use automl::{Trial, TrialResult, TrialRunner};
use jobs::cluster::{Cluster, POLL};
use jobs::executor::{ExecStatus, Handle, Launch};
use serde::{Deserialize, Serialize};

use crate::spec::Spec;

/// The environment variable that carries a worker's [`WorkerTask`] (JSON).
pub const TASK_VAR: &str = "ATELIER_AUTOPILOT_TRIAL";

/// Candidates evaluated at once on a cluster unless the spec says otherwise.
pub const DEFAULT_SLOTS: usize = 4;

/// How long after its own deadline a trial's job may run before it is
/// stopped and counted as failed (a worker's start-up and data download).
const TRIAL_GRACE: Duration = Duration::from_secs(180);

/// What one worker is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerTask {
    /// The dataset, as the spec names it (`datasets/<file>` in the artifact store).
    pub dataset: String,
    #[serde(default)]
    pub validation_dataset: Option<String>,
    pub target: String,
    #[serde(default)]
    pub problem_type: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    pub seed: u64,
    pub min_rows: usize,
    pub trial: Trial,
    /// Where the result goes, relative to the artifact root.
    pub result_path: String,
    /// The project whose datasets the task reads (none: the default one).
    #[serde(default)]
    pub workspace: String,
}

impl WorkerTask {
    /// The artifact paths of the dataset and the validation dataset.
    pub fn dataset_paths(&self) -> Result<(ArtifactPath, Option<ArtifactPath>), String> {
        let main = dataset_path_in(&self.workspace, &self.dataset)?;
        let val = match &self.validation_dataset {
            Some(v) => Some(dataset_path_in(&self.workspace, v)?),
            None => None,
        };
        Ok((main, val))
    }

    /// Evaluate the trial on the downloaded dataset files (what the worker
    /// does once it has them).
    pub fn evaluate(
        &self,
        dataset: &Path,
        validation: Option<&Path>,
    ) -> Result<TrialResult, String> {
        let problem = match &self.problem_type {
            None => None,
            Some(p) => Some(learn::ProblemType::parse(p).ok_or_else(|| {
                format!("problem_type '{p}' is not one of binary, multiclass, regression")
            })?),
        };
        let table = tabular::read_path(dataset).map_err(|e| e.to_string())?;
        let validation = match validation {
            Some(v) => Some(tabular::read_path(v).map_err(|e| e.to_string())?),
            None => None,
        };
        let opts = automl::Options {
            metric: self.metric.clone(),
            problem,
            seed: self.seed,
            validation,
            min_rows: self.min_rows,
            ..Default::default()
        };
        let data =
            automl::TrialData::new(&table, &self.target, &opts).map_err(|e| e.to_string())?;
        Ok(data.run(&self.trial))
    }
}

/// Runs an Autopilot job's trials as jobs of the cluster's executor.
pub(crate) struct ClusterTrials {
    pub(crate) cluster: Cluster,
    pub(crate) slots: usize,
    pub(crate) job_id: String,
    /// The job's project (whose datasets the trials read).
    pub(crate) workspace: String,
    pub(crate) attempt: i64,
    pub(crate) spec: Spec,
    /// The Autopilot run's artifact folder (results go under `trials/`).
    pub(crate) run_artifacts: ArtifactPath,
    pub(crate) token: Option<jobs::cluster::WorkerToken>,
    pub(crate) artifacts: ArtifactStore,
    pub(crate) rt: tokio::runtime::Handle,
    /// Candidate id → where its job ran (the executor's placement, e.g. a
    /// Ray node id), once known.
    pub(crate) nodes: std::sync::Mutex<std::collections::BTreeMap<usize, String>>,
}

impl std::fmt::Debug for ClusterTrials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTrials")
            .field("job_id", &self.job_id)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// A trial's job while it runs.
struct Running {
    handle: Handle,
    result: ArtifactPath,
    until: Instant,
}

impl ClusterTrials {
    /// Where candidate `id`'s job ran, when the executor said.
    pub(crate) fn node_of(&self, id: usize) -> Option<String> {
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn result_path(&self, id: usize) -> Result<ArtifactPath, String> {
        self.run_artifacts
            .join(&format!("trials/{}/{id}.json", self.attempt))
            .map_err(|e| e.to_string())
    }

    fn launch(&self, trial: &Trial) -> Result<Running, String> {
        let result = self.result_path(trial.id)?;
        let s = &self.spec;
        let task = WorkerTask {
            dataset: s.dataset.clone(),
            validation_dataset: s.validation_dataset.clone(),
            target: s.target.clone(),
            problem_type: s.problem_type.clone(),
            metric: s.metric.clone(),
            seed: s.seed,
            min_rows: s.min_rows,
            trial: trial.clone(),
            result_path: result.as_str().to_string(),
            workspace: self.workspace.clone(),
        };
        let task = serde_json::to_string(&task).map_err(|e| e.to_string())?;
        let mut env = self.cluster.worker_env(self.token.as_ref());
        env.push((TASK_VAR.to_string(), task));
        // (the worker reads and writes through the server, in the job's project)
        env.push(("MLFLOW_WORKSPACE".to_string(), self.workspace.clone()));
        // the worker's folder: one that exists on any worker (it writes
        // nothing there; the dataset goes to a private temporary folder)
        let tmp = std::env::temp_dir();
        let launch = Launch {
            job_id: format!("{}-t{}", self.job_id, trial.id),
            argv: vec![self.cluster.atelier_bin.clone(), "__autopilot-trial".into()],
            env,
            cwd: tmp.clone(),
            state_dir: tmp.join(format!(
                "atelier-autopilot-{}-t{}-{}",
                self.job_id, trial.id, self.attempt
            )),
        };
        let handle = self
            .cluster
            .executor
            .submit(&launch)
            .map_err(|e| format!("could not start the candidate on the cluster: {e}"))?;
        Ok(Running {
            handle,
            result,
            until: Instant::now() + Duration::from_secs_f64(trial.seconds.max(0.0)) + TRIAL_GRACE,
        })
    }

    fn read_result(&self, path: &ArtifactPath) -> Result<TrialResult, String> {
        let bytes = self
            .rt
            .block_on(self.artifacts.read_all(path))
            .map_err(|e| format!("the worker ended without its result ({e})"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the worker's result is not readable: {e}"))
    }

    fn finish(&self, r: &Running, status: ExecStatus) -> Option<Result<TrialResult, String>> {
        match status {
            ExecStatus::Running => None,
            st => Some(match self.cluster.failure(&r.handle, &st) {
                None => self.read_result(&r.result),
                Some(why) => Err(why),
            }),
        }
    }
}

impl TrialRunner for ClusterTrials {
    fn slots(&self) -> usize {
        self.slots
    }

    fn run(&self, trials: &[Trial], cancel: &dyn Fn() -> bool) -> Vec<Result<TrialResult, String>> {
        let mut out: Vec<Option<Result<TrialResult, String>>> = vec![None; trials.len()];
        let mut running: Vec<(usize, Running)> = Vec::new();
        for (i, t) in trials.iter().enumerate() {
            match self.launch(t) {
                Ok(r) => running.push((i, r)),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        while !running.is_empty() {
            if cancel() {
                for (i, r) in running.drain(..) {
                    let _ = self
                        .cluster
                        .executor
                        .stop(&r.handle, Duration::from_secs(3));
                    out[i] = Some(Err("the Autopilot job was cancelled".into()));
                }
                break;
            }
            std::thread::sleep(POLL);
            let mut still = Vec::new();
            for (i, r) in running.drain(..) {
                let done = match self.cluster.executor.status(&r.handle) {
                    Ok(st) => self.finish(&r, st),
                    // an unreachable cluster is retried until the trial's time is up
                    Err(e) if Instant::now() > r.until => Some(Err(format!(
                        "the cluster did not answer about the worker: {e}"
                    ))),
                    Err(_) => None,
                };
                if done.is_some()
                    && let Some(node) = self.cluster.executor.placement(&r.handle)
                {
                    self.nodes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(trials[i].id, node);
                }
                match done {
                    Some(res) => out[i] = Some(res),
                    None if Instant::now() > r.until => {
                        let _ = self
                            .cluster
                            .executor
                            .stop(&r.handle, Duration::from_secs(3));
                        out[i] = Some(Err(format!(
                            "the worker did not finish within {:.0} s of the search's deadline; it was stopped",
                            TRIAL_GRACE.as_secs_f64()
                        )));
                    }
                    None => still.push((i, r)),
                }
            }
            running = still;
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err("no result".into())))
            .collect()
    }
}
