//! The `"automl"` job runner.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use artifacts::{ArtifactPath, ArtifactStore};
use automl::{Candidate, CandidateStatus, Event};
use bytes::Bytes;
use jobs::{CheckContext, JobContext, JobFailure, Runner};
use serde_json::{Value, json};
use store::{
    CreateModelVersion, CreateRun, MetadataStore, Metric, Param, RunStatus, Tag, UpdateRun,
};

use std::sync::Arc;

use crate::AutopilotError;
use crate::cluster::ClusterTrials;
use crate::outputs::Report;
use crate::spec::{Spec, check_against};
use jobs::cluster::Cluster;

/// Files above this size are not read when a job is submitted (the job
/// itself reports any problem with them).
const CHECK_MAX_BYTES: u64 = 64 << 20;

/// Metric points per `log_batch` call (MLflow's limit for one batch request).
const METRICS_PER_BATCH: usize = 1000;

/// Logs a candidate's loss curves as metric histories through `log` (one call per batch of
/// at most [`METRICS_PER_BATCH`] points): `train_loss` and `val_loss`, step = boosting
/// iteration (gbm) or epoch (mlp), from 1; all at `timestamp` (they are logged when the
/// candidate finishes).
fn log_curves<E>(
    c: &learn::Curves,
    timestamp: i64,
    mut log: impl FnMut(&[Metric]) -> Result<(), E>,
) -> Result<(), E> {
    let series = |key: &'static str, values: &[f64]| {
        values
            .iter()
            .enumerate()
            .map(move |(i, v)| Metric::new(key, *v, timestamp, i as i64 + 1))
            .collect::<Vec<_>>()
    };
    let mut points = series("train_loss", &c.train);
    points.extend(series("val_loss", &c.valid));
    for batch in points.chunks(METRICS_PER_BATCH) {
        log(batch)?;
    }
    Ok(())
}

/// Runs Autopilot jobs (kind `"automl"`): on the server, or with their
/// candidates on a cluster (see [`crate::cluster`]).
#[derive(Debug, Default)]
pub struct AutomlRunner {
    cluster: Option<Cluster>,
}

impl AutomlRunner {
    /// Every candidate evaluated here, one at a time.
    pub fn local() -> AutomlRunner {
        AutomlRunner { cluster: None }
    }

    /// Candidates evaluated in parallel as jobs of the cluster's executor.
    pub fn on_cluster(cluster: Cluster) -> AutomlRunner {
        AutomlRunner {
            cluster: Some(cluster),
        }
    }
}

impl Runner for AutomlRunner {
    fn kind(&self) -> &'static str {
        "automl"
    }

    fn check(&self, spec: &Value, ctx: &CheckContext) -> Result<String, String> {
        let s = Spec::parse(spec)?;
        for name in std::iter::once(&s.dataset).chain(s.validation_dataset.as_ref()) {
            let path = artifacts::datasets::dataset_path_in(&ctx.workspace, name)?;
            let local = ctx.artifacts.local_file(&path).map_err(|e| e.to_string())?;
            match local {
                Some(p) => {
                    let meta = std::fs::metadata(&p).map_err(|_| {
                        format!("no dataset named '{name}'; upload it first (PUT /api/atelier/datasets/{name})")
                    })?;
                    if name == &s.dataset && meta.len() <= CHECK_MAX_BYTES {
                        let t = tabular::read_path(&p).map_err(|e| e.to_string())?;
                        check_against(&s, &t)?;
                    }
                }
                None => {
                    // not a local folder (S3): ask the store whether the file is there
                    let exists = ctx
                        .rt
                        .block_on(ctx.artifacts.size(&path))
                        .map_err(|e| format!("dataset '{name}': {e}"))?
                        .is_some();
                    if !exists {
                        return Err(format!(
                            "no dataset named '{name}'; upload it first (PUT /api/atelier/datasets/{name})"
                        ));
                    }
                }
            }
        }
        Ok(s.display_name())
    }

    fn run(&self, ctx: &JobContext) -> Result<Value, JobFailure> {
        let spec = Spec::parse(&ctx.spec).map_err(JobFailure::Failed)?;
        let mut job = Job::new(ctx, spec, self.cluster.clone());
        let outcome = job.run();
        // the workers' token goes with the trial runner
        job.on_cluster = None;
        match outcome {
            Ok(v) => Ok(v),
            Err(e) => {
                let cancelled = matches!(e, AutopilotError::Automl(automl::AutomlError::Cancelled));
                job.end_runs(if cancelled {
                    RunStatus::Killed
                } else {
                    RunStatus::Failed
                });
                if cancelled {
                    Err(JobFailure::Cancelled)
                } else {
                    Err(JobFailure::Failed(e.to_string()))
                }
            }
        }
    }
}

struct Job<'a> {
    ctx: &'a JobContext,
    spec: Spec,
    started: Instant,
    progress: Value,
    last_progress: Option<Instant>,
    experiment_id: i64,
    parent: Option<String>,
    /// Candidate id → run id.
    runs: BTreeMap<usize, String>,
    /// The search metric, once the search has started.
    metric: Option<automl::Metric>,
    _tmp: Option<tempfile::TempDir>,
    cluster: Option<Cluster>,
    /// The trial runner, when candidates run on the cluster.
    on_cluster: Option<Arc<ClusterTrials>>,
}

fn now() -> i64 {
    store::now_ms()
}

/// `mlflow-artifacts:/a/b` → `a/b`.
fn artifact_path_of(uri: &str) -> Result<ArtifactPath, AutopilotError> {
    let rest = uri.strip_prefix("mlflow-artifacts:/").ok_or_else(|| {
        AutopilotError::Spec(format!(
            "the run's artifact location '{uri}' is not in Atelier's artifact store"
        ))
    })?;
    Ok(ArtifactPath::parse(rest.trim_start_matches('/'))?)
}

impl<'a> Job<'a> {
    fn new(ctx: &'a JobContext, spec: Spec, cluster: Option<Cluster>) -> Self {
        Job {
            ctx,
            progress: json!({
                "phase": "reading",
                "budget_s": spec.time_budget,
                "elapsed_s": 0.0,
                "started_ms": now(),
                "dataset": spec.dataset,
                "target": spec.target,
                "candidates": [],
            }),
            spec,
            started: Instant::now(),
            last_progress: None,
            experiment_id: 0,
            parent: None,
            runs: BTreeMap::new(),
            metric: None,
            _tmp: None,
            cluster,
            on_cluster: None,
        }
    }

    /// The trial runner of a cluster, when the server has one: the workers
    /// get a token of their own (with authentication on) and put their
    /// results beside the parent run's artifacts.
    fn trials(
        &mut self,
        parent: &store::RunInfo,
    ) -> Result<Option<Arc<dyn automl::TrialRunner>>, AutopilotError> {
        let Some(cluster) = self.cluster.clone() else {
            return Ok(None);
        };
        // revoked when the job's runner (which holds it) is dropped
        let token = cluster
            .token(
                &self.ctx.store,
                &format!("autopilot:{}", self.ctx.job.id),
                &self.ctx.job.workspace,
            )
            .map_err(AutopilotError::Spec)?;
        let slots = self
            .spec
            .parallel_candidates
            .unwrap_or(cluster.slots)
            .max(1);
        self.progress["cluster"] = json!({"parallel_candidates": slots});
        let runner = Arc::new(ClusterTrials {
            cluster,
            slots,
            job_id: self.ctx.job.id.clone(),
            workspace: self.ctx.job.workspace.clone(),
            attempt: self.ctx.job.attempt,
            spec: self.spec.clone(),
            run_artifacts: artifact_path_of(&parent.artifact_uri)?,
            token,
            artifacts: self.ctx.artifacts.clone(),
            rt: self.ctx.runtime(),
            nodes: Default::default(),
        });
        self.on_cluster = Some(runner.clone());
        Ok(Some(runner))
    }

    fn store(&self) -> &dyn MetadataStore {
        self.ctx.store.as_ref()
    }
    fn artifacts(&self) -> &ArtifactStore {
        &self.ctx.artifacts
    }

    /// Publish progress; `force` skips the rate limit (phase changes).
    fn publish(&mut self, force: bool) {
        let due = self
            .last_progress
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(250));
        if force || due {
            self.progress["elapsed_s"] = json!(self.started.elapsed().as_secs_f64());
            self.ctx.progress(&self.progress);
            self.last_progress = Some(Instant::now());
        }
    }

    fn local_dataset(&mut self, name: &str) -> Result<PathBuf, AutopilotError> {
        let path = artifacts::datasets::dataset_path_in(&self.ctx.job.workspace, name)
            .map_err(AutopilotError::Spec)?;
        if self._tmp.is_none() {
            self._tmp = Some(tempfile::tempdir()?);
        }
        let dir = self
            ._tmp
            .as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default();
        self.ctx
            .block_on(self.artifacts().fetch_local(&path, &dir))
            .map_err(|e| match e {
                artifacts::ArtifactError::NotFound(_) => {
                    AutopilotError::Spec(format!("no dataset named '{name}'"))
                }
                other => other.into(),
            })
    }

    fn experiment(&self) -> Result<i64, AutopilotError> {
        let ws = &self.ctx.job.workspace;
        Ok(self
            .store()
            .experiment_for(ws, &self.spec.experiment_name)?)
    }

    fn run(&mut self) -> Result<Value, AutopilotError> {
        let data = self.local_dataset(&self.spec.dataset.clone())?;
        let table = tabular::read_path(&data)?;
        let validation = match self.spec.validation_dataset.clone() {
            Some(v) => Some(tabular::read_path(&self.local_dataset(&v)?)?),
            None => None,
        };
        check_against(&self.spec, &table).map_err(AutopilotError::Spec)?;
        self.experiment_id = self.experiment()?;
        let job_id = self.ctx.job.id.clone();
        let parent = self.store().create_run(CreateRun {
            experiment_id: self.experiment_id,
            user_id: "autopilot".into(),
            run_name: Some(format!("autopilot-{}", &job_id[..8.min(job_id.len())])),
            start_time: None,
            tags: vec![
                Tag::new("atelier.job_id", &job_id),
                Tag::new("atelier.dataset", &self.spec.dataset),
                Tag::new("atelier.autopilot", "parent"),
                Tag::new("mlflow.source.type", "JOB"),
                Tag::new("mlflow.source.name", "atelier autopilot"),
            ],
        })?;
        let s = &self.spec;
        let mut params = vec![
            Param::new("dataset", &s.dataset),
            Param::new("target", &s.target),
            Param::new("time_budget", s.time_budget.to_string()),
            Param::new("max_candidates", s.max_candidates.to_string()),
            Param::new("seed", s.seed.to_string()),
        ];
        if let Some(m) = &s.metric {
            params.push(Param::new("metric", m));
        }
        if let Some(p) = &s.problem_type {
            params.push(Param::new("problem_type", p));
        }
        let trials = self.trials(&parent)?;
        if let Some(t) = &trials {
            params.push(Param::new("parallel_candidates", t.slots().to_string()));
        }
        self.store().log_batch(&parent.run_id, &[], &params, &[])?;
        self.parent = Some(parent.run_id.clone());
        self.progress["experiment_id"] = json!(self.experiment_id.to_string());
        self.progress["run_id"] = json!(parent.run_id);
        self.progress["phase"] = json!("searching");
        self.publish(true);

        let opts = automl::Options {
            time_budget: Duration::from_secs_f64(self.spec.time_budget),
            max_candidates: self.spec.max_candidates,
            metric: self.spec.metric.clone(),
            problem: self.spec.problem().map_err(AutopilotError::Spec)?,
            seed: self.spec.seed,
            validation,
            cancel: Some(self.ctx.cancel_flag()),
            min_rows: self.spec.min_rows,
            trials,
        };
        let target = self.spec.target.clone();
        let mut failure: Option<AutopilotError> = None;
        let outcome = automl::run(&table, &target, &opts, &mut |ev| {
            if failure.is_some() {
                return;
            }
            if let Err(e) = self.on_event(ev) {
                failure = Some(e);
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let outcome = outcome?;
        self.progress["phase"] = json!("saving");
        self.publish(true);
        self.finish(&outcome, &table, opts.validation.as_ref())
    }

    fn on_event(&mut self, ev: &Event) -> Result<(), AutopilotError> {
        match ev {
            Event::Started {
                problem,
                metric,
                rows,
                validation,
                reason,
            } => {
                self.metric = Some(*metric);
                self.progress["problem"] = json!(problem.as_str());
                self.progress["metric"] = json!(metric.name());
                self.progress["higher_is_better"] = json!(metric.higher_is_better());
                self.progress["rows"] = json!(rows);
                self.progress["validation"] = json!(validation);
                self.progress["reason"] = json!(reason);
                self.publish(true);
            }
            Event::Candidate(c) => {
                let node = self.on_cluster.as_ref().and_then(|t| t.node_of(c.id));
                let run_id = self.log_candidate(c, node.as_deref())?;
                self.runs.insert(c.id, run_id.clone());
                let mut entry = candidate_json(c, Some(&run_id));
                if let Some(n) = &node {
                    entry["node"] = json!(n);
                }
                if let Some(list) = self.progress["candidates"].as_array_mut() {
                    list.push(entry);
                }
                let higher = self.progress["higher_is_better"].as_bool().unwrap_or(true);
                if c.status == CandidateStatus::Done {
                    let best = self.progress["best"]["score"].as_f64();
                    let better =
                        best.is_none_or(|b| if higher { c.score > b } else { c.score < b });
                    if better {
                        self.progress["best"] =
                            json!({"id": c.id, "name": c.name, "score": c.score, "run_id": run_id});
                    }
                }
                self.publish(true);
            }
            Event::Ensemble {
                members,
                score,
                best_single,
            } => {
                self.progress["phase"] = json!("ensembling");
                self.progress["ensemble"] = json!({
                    "members": members.iter().map(|(id, w)| json!({"id": id, "weight": w})).collect::<Vec<_>>(),
                    "score": score,
                    "best_single": best_single,
                });
                self.publish(true);
            }
            Event::Refitting { members } => {
                self.progress["phase"] = json!("refitting");
                self.progress["refit_members"] = json!(members);
                self.publish(true);
            }
            Event::Stopped {
                reason,
                candidates,
                elapsed_s,
            } => {
                let metric = self.metric.unwrap_or(automl::Metric::Auc);
                self.progress["stop_reason"] = json!(reason.describe(metric));
                self.progress["stop_kind"] = json!(reason.kind());
                self.progress["stop"] = reason.to_json(metric);
                self.progress["search_candidates"] = json!(candidates);
                self.progress["search_seconds"] = json!(elapsed_s);
                self.publish(true);
            }
        }
        Ok(())
    }

    /// `node`: where the candidate was evaluated, on a cluster.
    fn log_candidate(&self, c: &Candidate, node: Option<&str>) -> Result<String, AutopilotError> {
        let parent = self.parent.clone().unwrap_or_default();
        let run = self.store().create_run(CreateRun {
            experiment_id: self.experiment_id,
            user_id: "autopilot".into(),
            run_name: Some(format!("{:02}-{}", c.id, c.name)),
            start_time: Some(now() - (c.fit_seconds * 1000.0) as i64),
            tags: vec![
                Tag::new("mlflow.parentRunId", &parent),
                Tag::new("atelier.job_id", &self.ctx.job.id),
                Tag::new("atelier.autopilot", "candidate"),
                Tag::new("atelier.candidate_id", c.id.to_string()),
                Tag::new("atelier.algorithm", c.algorithm.name()),
            ]
            .into_iter()
            .chain(node.map(|n| Tag::new("atelier.autopilot.node", n)))
            .collect(),
        })?;
        let t = now();
        let mut metrics = vec![
            Metric::new("fit_seconds", c.fit_seconds, t, 0),
            Metric::new("model_bytes", c.model_bytes as f64, t, 0),
            Metric::new("iterations", c.iterations as f64, t, 0),
        ];
        if c.status == CandidateStatus::Done {
            let metric = self.progress["metric"].as_str().unwrap_or("score");
            metrics.push(Metric::new(format!("validation_{metric}"), c.score, t, 0));
            for (k, v) in &c.metrics {
                if v.is_finite() {
                    metrics.push(Metric::new(k.clone(), *v, t, 0));
                }
            }
        }
        let mut params = vec![Param::new("algorithm", c.algorithm.name())];
        params.extend(c.params.iter().map(|(k, v)| Param::new(k, v)));
        let mut tags = match &c.status {
            CandidateStatus::Failed(m) => vec![Tag::new(
                "atelier.error",
                m.chars().take(5000).collect::<String>(),
            )],
            _ => vec![],
        };
        if let Some(curves) = &c.curves {
            tags.push(Tag::new("atelier.loss", curves.loss));
        }
        self.store()
            .log_batch(&run.run_id, &metrics, &params, &tags)?;
        if let Some(curves) = &c.curves {
            log_curves(curves, t, |batch| {
                self.store().log_batch(&run.run_id, batch, &[], &[])
            })?;
        }
        let status = match c.status {
            CandidateStatus::Done => RunStatus::Finished,
            CandidateStatus::Stopped | CandidateStatus::Pruned => RunStatus::Killed,
            CandidateStatus::Failed(_) => RunStatus::Failed,
        };
        self.store().update_run(
            &run.run_id,
            UpdateRun {
                status: Some(status),
                end_time: Some(now()),
                run_name: None,
            },
        )?;
        Ok(run.run_id)
    }

    /// End the parent run (after a failure or cancel).
    fn end_runs(&self, status: RunStatus) {
        if let Some(p) = &self.parent {
            let r = self.store().update_run(
                p,
                UpdateRun {
                    status: Some(status),
                    end_time: Some(now()),
                    run_name: None,
                },
            );
            if let Err(e) = r {
                tracing::warn!("could not end the Autopilot run {p}: {e}");
            }
        }
    }

    fn put(&self, base: &ArtifactPath, rel: &str, data: Vec<u8>) -> Result<String, AutopilotError> {
        let path = base.join(rel)?;
        self.ctx
            .block_on(self.artifacts().put_bytes(&path, Bytes::from(data)))?;
        Ok(path.as_str().to_string())
    }

    fn finish(
        &mut self,
        out: &automl::Outcome,
        table: &tabular::Table,
        holdout: Option<&tabular::Table>,
    ) -> Result<Value, AutopilotError> {
        let parent = self.parent.clone().unwrap_or_default();
        let run = self.store().get_run(&parent)?;
        let base = artifact_path_of(&run.info.artifact_uri)?;
        let pipeline = serde_json::to_vec(&out.pipeline)
            .map_err(|e| AutopilotError::Spec(format!("could not serialise the pipeline: {e}")))?;
        let model_path = self.put(&base, "model/pipeline.atelier", pipeline)?;
        let leaderboard: Vec<Value> = out
            .leaderboard
            .iter()
            .enumerate()
            .map(|(rank, c)| {
                let mut j = candidate_json(c, self.runs.get(&c.id).map(String::as_str));
                j["rank"] = json!(rank + 1);
                j
            })
            .collect();
        let summary = json!({
            "problem": out.problem.as_str(),
            "metric": out.metric.name(),
            "higher_is_better": out.metric.higher_is_better(),
            "score": out.score,
            "validation": out.validation.describe,
            "ensemble": out.ensemble.as_ref().map(|m| m.iter().map(|(id, w)| json!({"id": id, "weight": w})).collect::<Vec<_>>()),
            "stop_reason": out.stop_reason.describe(out.metric),
            "stop_kind": out.stop_reason.kind(),
            "stop": out.stop_reason.to_json(out.metric),
            "search_seconds": out.search_seconds,
            "leaderboard": leaderboard,
        });
        let lb_path = self.put(
            &base,
            "leaderboard.json",
            serde_json::to_vec_pretty(&summary).unwrap_or_default(),
        )?;
        self.progress["phase"] = json!("reports");
        self.publish(true);
        let mut reports_out = serde_json::Map::new();
        for (name, rel, made) in self.reports(out, table, holdout) {
            match made {
                Ok(bytes) => {
                    let path = self.put(&base, rel, bytes)?;
                    reports_out.insert(name.to_string(), json!(path));
                }
                // a report is an extra: the model still counts
                Err(e) => tracing::warn!(job = %self.ctx.job.id, "the {name} report failed: {e}"),
            }
        }
        let t = now();
        let mut metrics = vec![Metric::new(
            format!("validation_{}", out.metric.name()),
            out.score,
            t,
            0,
        )];
        metrics.push(Metric::new(
            "candidates",
            out.leaderboard.len() as f64,
            t,
            0,
        ));
        let best = out.leaderboard.first();
        let mut tags = vec![
            Tag::new("atelier.metric", out.metric.name()),
            Tag::new("atelier.stop_kind", out.stop_reason.kind()),
            Tag::new("atelier.stop_reason", out.stop_reason.describe(out.metric)),
        ];
        if let Some(b) = best {
            tags.push(Tag::new("atelier.best_candidate", &b.name));
        }
        self.store().log_batch(&parent, &metrics, &[], &tags)?;

        // register the pipeline
        let model_name = self.spec.model_name();
        self.store().registered_model_for(
            &self.ctx.job.workspace,
            &model_name,
            &format!(
                "Autopilot models for '{}' from {}",
                self.spec.target, self.spec.dataset
            ),
            "autopilot",
        )?;
        // Model Monitor's baseline: the training data's inputs, profiled
        let baseline = match self.baseline(table, out) {
            Ok(files) => {
                for (name, bytes) in files {
                    self.put(&base, &format!("baseline/{name}"), bytes)?;
                }
                Some(base.join("baseline")?.as_str().to_string())
            }
            Err(e) => {
                tracing::warn!(job = %self.ctx.job.id, "no monitoring baseline: {e}");
                None
            }
        };
        let mut version_tags = Vec::new();
        if let Some(b) = &baseline {
            version_tags.push(Tag::new("atelier.baseline", b));
        }
        let version = self.store().create_model_version(CreateModelVersion {
            name: model_name.clone(),
            source: format!("mlflow-artifacts:/{}/model", base.as_str()),
            run_id: parent.clone(),
            tags: vec![
                Tag::new("atelier.job_id", &self.ctx.job.id),
                Tag::new("atelier.dataset", &self.spec.dataset),
                Tag::new("atelier.metric", out.metric.name()),
                Tag::new(
                    format!("validation_{}", out.metric.name()),
                    out.score.to_string(),
                ),
            ]
            .into_iter()
            .chain(version_tags)
            .collect(),
            run_link: String::new(),
            description: format!(
                "{} — validation {} {:.4} ({})",
                out.pipeline.metadata.algorithm,
                out.metric.name(),
                out.score,
                out.validation.describe
            ),
            model_id: String::new(),
            user_id: "autopilot".into(),
        })?;
        self.store().update_run(
            &parent,
            UpdateRun {
                status: Some(RunStatus::Finished),
                end_time: Some(now()),
                run_name: None,
            },
        )?;
        self.progress["phase"] = json!("done");
        self.publish(true);
        Ok(json!({
            "experiment_id": self.experiment_id.to_string(),
            "run_id": parent,
            "model_name": model_name,
            "model_version": version.version.to_string(),
            "problem": out.problem.as_str(),
            "metric": out.metric.name(),
            "higher_is_better": out.metric.higher_is_better(),
            "score": out.score,
            "validation": out.validation.describe,
            "algorithm": out.pipeline.metadata.algorithm,
            "leaderboard": summary["leaderboard"],
            "ensemble": summary["ensemble"],
            "stop_reason": summary["stop_reason"],
            "stop_kind": summary["stop_kind"],
            "stop": summary["stop"],
            "search_seconds": out.search_seconds,
            "artifacts": {
                "model": model_path,
                "leaderboard": lb_path,
            },
            "reports": reports_out,
            "baseline": baseline,
        }))
    }

    /// `statistics.json`, `constraints.json` and the reference sample of the
    /// training inputs (the target left out: endpoints do not receive it).
    fn baseline(
        &self,
        table: &tabular::Table,
        out: &automl::Outcome,
    ) -> Result<Vec<(String, Vec<u8>)>, String> {
        let inputs = tabular::Table {
            columns: table
                .columns
                .iter()
                .filter(|c| c.name != self.spec.target)
                .cloned()
                .collect(),
            warnings: vec![],
        };
        let mut prof = monitor::Profiler::for_table(&inputs, 100_000);
        prof.add(&inputs).map_err(|e| e.to_string())?;
        let b = monitor::Baseline::suggest(&prof.finish()).map_err(|e| e.to_string())?;
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        b.write(tmp.path()).map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        for e in std::fs::read_dir(tmp.path())
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let bytes = std::fs::read(e.path()).map_err(|e| e.to_string())?;
            files.push((e.file_name().to_string_lossy().to_string(), bytes));
        }
        // how far the model's probabilities are to be trusted, from its
        // out-of-fold predictions (Model Monitor's estimates without labels)
        if out.problem != learn::ProblemType::Regression {
            let v = &out.validation;
            if let Some(c) = monitor::calibration::Calibration::fit(&v.pred, v.outputs, &v.y) {
                let bytes = serde_json::to_vec_pretty(&c).map_err(|e| e.to_string())?;
                files.push((monitor::calibration::CALIBRATION_FILE.to_string(), bytes));
            }
        }
        Ok(files)
    }

    /// The data-exploration and model-quality reports and the candidate
    /// notebook: (name, artifact path below the run, bytes or what failed).
    fn reports(
        &self,
        out: &automl::Outcome,
        table: &tabular::Table,
        holdout: Option<&tabular::Table>,
    ) -> Vec<Report> {
        let spec = &self.spec;
        let mut body = self.ctx.spec.clone();
        body["dataset"] = json!(spec.dataset);
        crate::outputs::outcome_files(
            out,
            table,
            holdout,
            &crate::outputs::About {
                dataset: spec.dataset.clone(),
                target: spec.target.clone(),
                title: spec.display_name(),
                automl: reports::AutomlCall {
                    time_budget: spec.time_budget,
                    max_candidates: spec.max_candidates,
                    seed: spec.seed,
                    validation_path: spec.validation_dataset.clone(),
                },
                http: Some(reports::HttpCall {
                    server_url: "http://127.0.0.1:5000".into(),
                    method: "POST".into(),
                    path: "/api/atelier/automl".into(),
                    body,
                }),
                bias: spec.bias.as_ref().and_then(|b| b.config(&spec.target).ok()),
            },
        )
    }
}

fn candidate_json(c: &Candidate, run_id: Option<&str>) -> Value {
    let (status, error) = match &c.status {
        CandidateStatus::Done => ("done", None),
        CandidateStatus::Stopped => ("stopped", None),
        CandidateStatus::Pruned => ("pruned", None),
        CandidateStatus::Failed(m) => ("failed", Some(m.clone())),
    };
    json!({
        "id": c.id,
        "name": c.name,
        "algorithm": c.algorithm.name(),
        "params": c.params.iter().cloned().collect::<BTreeMap<String, String>>(),
        "score": if c.score.is_finite() { json!(c.score) } else { Value::Null },
        "metrics": c.metrics.iter().filter(|(_, v)| v.is_finite()).map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "fit_seconds": c.fit_seconds,
        "model_bytes": c.model_bytes,
        "iterations": c.iterations,
        "status": status,
        "error": error,
        "run_id": run_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_are_logged_in_batches_of_at_most_1000_with_steps_from_1() {
        let curves = learn::Curves {
            loss: "binary_logloss",
            train: (0..1500).map(|i| 1.0 / (i + 1) as f64).collect(),
            valid: (0..1500).map(|i| 2.0 / (i + 1) as f64).collect(),
        };
        let mut batches: Vec<Vec<Metric>> = Vec::new();
        log_curves(&curves, 42, |b| {
            batches.push(b.to_vec());
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1000, 1000, 1000]
        );
        let all: Vec<&Metric> = batches.iter().flatten().collect();
        for (key, values) in [("train_loss", &curves.train), ("val_loss", &curves.valid)] {
            let pts: Vec<&&Metric> = all.iter().filter(|m| m.key == key).collect();
            assert_eq!(pts.len(), 1500);
            for (i, m) in pts.iter().enumerate() {
                assert_eq!(
                    (m.step, m.value, m.timestamp),
                    (i as i64 + 1, values[i], 42)
                );
            }
        }
        // an mlp without a validation split: a training curve only
        let only_train = learn::Curves {
            loss: "cross_entropy",
            train: vec![0.7, 0.5],
            valid: vec![],
        };
        let mut n = 0;
        log_curves(&only_train, 0, |b| {
            n += b.len();
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(n, 2);
    }
}
