//! SageMaker's container contract on local paths. A job's folder plays the
//! part of `/opt/ml`; only the paths change, and the environment says where
//! they are, so an unchanged SageMaker-style script works.
//!
//! | | training job | processing job |
//! |---|---|---|
//! | inputs | `input/data/<channel>/` | `processing/input/<name>/` |
//! | outputs | `model/`, `output/data/` | `processing/output/<name>/` |
//! | config | `input/config/hyperparameters.json`, `inputdataconfig.json`, `resourceconfig.json` | `config/processingjobconfig.json`, `config/resourceconfig.json` |
//! | failure reason (first 1,024 characters) | `output/failure` | `output/message` |
//! | checkpoints | `checkpoints/` | — |
//! | working directory | `code/` (the job's code) | `code/` |
//!
//! Environment (training, as SageMaker's training toolkit sets it):
//!
//! | variable | value |
//! |---|---|
//! | `SM_MODEL_DIR` | `<job>/model` |
//! | `SM_CHANNELS` | JSON list of channel names |
//! | `SM_CHANNEL_<NAME>` | `<job>/input/data/<name>` (name upper-cased, `-` → `_`) |
//! | `SM_HPS` | JSON object of hyperparameters (strings) |
//! | `SM_HP_<NAME>` | one hyperparameter |
//! | `SM_INPUT_DIR`, `SM_INPUT_CONFIG_DIR` | `<job>/input`, `<job>/input/config` |
//! | `SM_OUTPUT_DIR`, `SM_OUTPUT_DATA_DIR` | `<job>/output`, `<job>/output/data` |
//! | `SM_RESOURCE_CONFIG`, `SM_INPUT_DATA_CONFIG` | the JSON of the config files |
//! | `SM_CURRENT_HOST`, `SM_HOSTS` | `algo-1`, `["algo-1"]` |
//! | `SM_NUM_CPUS`, `SM_NUM_GPUS` | this machine's CPUs, NVIDIA GPUs |
//! | `SM_USER_ARGS` | JSON list of the command's arguments after the program |
//! | `SM_TRAINING_ENV` | JSON of all of the above |
//! | `TRAINING_JOB_NAME`, `TRAINING_JOB_ARN` | the job's name, `atelier:training-job/<id>` |
//!
//! Both kinds also get `ATELIER_JOB_ID`, `ATELIER_JOB_DIR` (the `/opt/ml`
//! stand-in), `ATELIER_BIN` (Atelier's program where the command runs: this one, or on Ray `--ray-atelier-bin`; for `"$ATELIER_BIN" train …`), processing jobs `ATELIER_INPUT_<NAME>` / `ATELIER_OUTPUT_<NAME>`
//! and `PROCESSING_JOB_NAME`, and MLflow's `MLFLOW_TRACKING_URI`,
//! `MLFLOW_RUN_ID`, `MLFLOW_EXPERIMENT_ID` (and `MLFLOW_TRACKING_TOKEN` when
//! the server gives one), so `mlflow.start_run()` logs into the job's run.
//!
//! A job staged on a worker that does not see the server's files (Ray, by
//! default; see [`crate::stage`]) gets the same layout in a private folder of
//! the worker's, and every path above (and in the config files) points there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::spec::{JobKind, UserJobSpec};

/// The host name SageMaker gives a single-instance job.
pub const HOST: &str = "algo-1";

/// A job's folder and its parts.
#[derive(Debug, Clone)]
pub struct Layout {
    pub kind: JobKind,
    pub root: PathBuf,
}

/// `train-set` → `TRAIN_SET`.
pub fn env_suffix(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

impl Layout {
    pub fn new(kind: JobKind, root: PathBuf) -> Layout {
        Layout { kind, root }
    }
    pub fn code(&self) -> PathBuf {
        self.root.join("code")
    }
    /// Where input `name` is placed.
    pub fn input(&self, name: &str) -> PathBuf {
        match self.kind {
            JobKind::Training => self.root.join("input/data").join(name),
            JobKind::Processing | JobKind::Notebook => {
                self.root.join("processing/input").join(name)
            }
        }
    }
    /// Where processing output `name` is read from.
    pub fn output(&self, name: &str) -> PathBuf {
        self.root.join("processing/output").join(name)
    }
    pub fn model(&self) -> PathBuf {
        self.root.join("model")
    }
    pub fn output_data(&self) -> PathBuf {
        self.root.join("output/data")
    }
    /// The file whose first 1,024 characters become the failure reason.
    pub fn failure_file(&self) -> PathBuf {
        match self.kind {
            JobKind::Training => self.root.join("output/failure"),
            JobKind::Processing | JobKind::Notebook => self.root.join("output/message"),
        }
    }
    pub fn config_dir(&self) -> PathBuf {
        match self.kind {
            JobKind::Training => self.root.join("input/config"),
            JobKind::Processing | JobKind::Notebook => self.root.join("config"),
        }
    }
    /// The executor's own files (logs, exit status) for one attempt: a
    /// retried job never reuses an earlier attempt's folder.
    pub fn state_dir(&self, attempt: i64) -> PathBuf {
        self.root.join("executor").join(attempt.to_string())
    }

    /// Make every folder (inputs and outputs included) and write the config
    /// files; returns the environment for the command.
    pub fn prepare(
        &self,
        spec: &UserJobSpec,
        env: &JobEnv,
    ) -> std::io::Result<Vec<(String, String)>> {
        let mk = |p: &Path| std::fs::create_dir_all(p);
        mk(&self.code())?;
        mk(&self.config_dir())?;
        if let Some(parent) = self.failure_file().parent() {
            mk(parent)?;
        }
        for name in spec.inputs.keys() {
            mk(&self.input(name))?;
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let resource = json!({
            "current_host": HOST,
            "current_instance_type": "local",
            "current_group_name": "homogeneousCluster",
            "hosts": [HOST],
            "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "local", "hosts": [HOST]}],
            "network_interface_name": "lo",
        });
        let write = |name: &str, v: &Value| {
            std::fs::write(
                self.config_dir().join(name),
                serde_json::to_vec_pretty(v).unwrap_or_default(),
            )
        };
        write("resourceconfig.json", &resource)?;
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        let path = |p: PathBuf| p.display().to_string();
        match self.kind {
            JobKind::Training => {
                mk(&self.model())?;
                mk(&self.output_data())?;
                mk(&self.root.join("checkpoints"))?;
                let hps: BTreeMap<&String, &String> = spec.hyperparameters.iter().collect();
                write("hyperparameters.json", &json!(hps))?;
                let data_config: serde_json::Map<String, Value> = spec
                    .inputs
                    .keys()
                    .map(|c| {
                        (
                            c.clone(),
                            json!({"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}),
                        )
                    })
                    .collect();
                write("inputdataconfig.json", &Value::Object(data_config.clone()))?;
                let channels: Vec<&String> = spec.inputs.keys().collect();
                let user_args: Vec<&String> = spec.command.iter().skip(1).collect();
                out.insert("SM_MODEL_DIR".into(), path(self.model()));
                out.insert("SM_CHANNELS".into(), json!(channels).to_string());
                for c in &channels {
                    out.insert(format!("SM_CHANNEL_{}", env_suffix(c)), path(self.input(c)));
                }
                out.insert("SM_HPS".into(), json!(hps).to_string());
                for (k, v) in &spec.hyperparameters {
                    out.insert(format!("SM_HP_{}", env_suffix(k)), v.clone());
                }
                out.insert("SM_INPUT_DIR".into(), path(self.root.join("input")));
                out.insert("SM_INPUT_CONFIG_DIR".into(), path(self.config_dir()));
                out.insert("SM_OUTPUT_DIR".into(), path(self.root.join("output")));
                out.insert("SM_OUTPUT_DATA_DIR".into(), path(self.output_data()));
                out.insert("SM_RESOURCE_CONFIG".into(), resource.to_string());
                out.insert(
                    "SM_INPUT_DATA_CONFIG".into(),
                    Value::Object(data_config).to_string(),
                );
                out.insert("SM_CURRENT_HOST".into(), HOST.into());
                out.insert("SM_HOSTS".into(), json!([HOST]).to_string());
                out.insert("SM_NUM_CPUS".into(), cpus.to_string());
                out.insert("SM_NUM_GPUS".into(), env.gpus.to_string());
                out.insert("SM_USER_ARGS".into(), json!(user_args).to_string());
                out.insert("TRAINING_JOB_NAME".into(), env.job_name.clone());
                out.insert(
                    "TRAINING_JOB_ARN".into(),
                    format!("atelier:training-job/{}", env.job_id),
                );
                let training_env: serde_json::Map<String, Value> = out
                    .iter()
                    .map(|(k, v)| {
                        let key = k.trim_start_matches("SM_").to_ascii_lowercase();
                        (key, serde_json::from_str(v).unwrap_or_else(|_| json!(v)))
                    })
                    .collect();
                out.insert(
                    "SM_TRAINING_ENV".into(),
                    Value::Object(training_env).to_string(),
                );
            }
            JobKind::Processing | JobKind::Notebook => {
                for name in &spec.outputs {
                    mk(&self.output(name))?;
                }
                let inputs: Vec<Value> = spec
                    .inputs
                    .iter()
                    .map(|(n, src)| {
                        json!({"InputName": n, "AppManaged": false, "AtelierSource": src,
                               "S3Input": {"LocalPath": path(self.input(n)), "S3InputMode": "File"}})
                    })
                    .collect();
                let outputs: Vec<Value> = spec
                    .outputs
                    .iter()
                    .map(|n| json!({"OutputName": n, "S3Output": {"LocalPath": path(self.output(n)), "S3UploadMode": "EndOfJob"}}))
                    .collect();
                write(
                    "processingjobconfig.json",
                    &json!({
                        "ProcessingJobName": env.job_name,
                        "ProcessingInputs": inputs,
                        "ProcessingOutputConfig": {"Outputs": outputs},
                        "AppSpecification": {"ContainerEntrypoint": spec.command},
                        "Environment": spec.environment,
                        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_seconds},
                    }),
                )?;
                for name in spec.inputs.keys() {
                    out.insert(
                        format!("ATELIER_INPUT_{}", env_suffix(name)),
                        path(self.input(name)),
                    );
                }
                for name in &spec.outputs {
                    out.insert(
                        format!("ATELIER_OUTPUT_{}", env_suffix(name)),
                        path(self.output(name)),
                    );
                }
                out.insert("PROCESSING_JOB_NAME".into(), env.job_name.clone());
            }
        }
        out.insert("ATELIER_JOB_ID".into(), env.job_id.clone());
        out.insert("ATELIER_JOB_DIR".into(), path(self.root.clone()));
        out.insert("MLFLOW_TRACKING_URI".into(), env.tracking_uri.clone());
        out.insert("MLFLOW_RUN_ID".into(), env.run_id.clone());
        out.insert("MLFLOW_EXPERIMENT_ID".into(), env.experiment_id.clone());
        if let Some(t) = &env.token {
            out.insert("MLFLOW_TRACKING_TOKEN".into(), t.clone());
        }
        out.insert("MLFLOW_WORKSPACE".into(), env.workspace.clone());
        if let Some(b) = &env.atelier_bin {
            out.insert("ATELIER_BIN".into(), b.clone());
        }
        out.insert("PYTHONUNBUFFERED".into(), "1".into());
        // the user's own variables last: they win
        for (k, v) in &spec.environment {
            out.insert(k.clone(), v.clone());
        }
        Ok(out.into_iter().collect())
    }
}

/// What the environment needs besides the spec.
#[derive(Debug, Clone)]
pub struct JobEnv {
    pub job_id: String,
    pub job_name: String,
    pub tracking_uri: String,
    pub run_id: String,
    pub experiment_id: String,
    pub token: Option<String>,
    /// The job's project (its `MLFLOW_WORKSPACE`: the job's token acts there only).
    pub workspace: String,
    pub gpus: usize,
    /// This Atelier's own program, for scripts that call `atelier train`.
    pub atelier_bin: Option<String>,
}

/// The failure reason a script left, first 1,024 characters, if any.
pub fn failure_reason(layout: &Layout) -> Option<String> {
    let text = std::fs::read(layout.failure_file()).ok()?;
    let text = String::from_utf8_lossy(&text);
    let t: String = text.trim().chars().take(1024).collect();
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> JobEnv {
        JobEnv {
            job_id: "j1".into(),
            job_name: "gbm".into(),
            tracking_uri: "http://127.0.0.1:5000".into(),
            run_id: "r1".into(),
            experiment_id: "3".into(),
            token: None,
            workspace: "default".into(),
            gpus: 0,
            atelier_bin: None,
        }
    }

    #[test]
    fn training_jobs_get_sagemakers_folders_files_and_variables() {
        let dir = tempfile::tempdir().unwrap();
        let spec = UserJobSpec::parse(
            JobKind::Training,
            &json!({"command": ["python", "train.py", "--epochs", "3"],
                    "inputs": {"train": "datasets/a.csv", "val-set": "datasets/b.csv"},
                    "hyperparameters": {"lr": "0.1", "max-depth": "6"}}),
        )
        .unwrap();
        let l = Layout::new(JobKind::Training, dir.path().to_path_buf());
        let env: BTreeMap<String, String> = l.prepare(&spec, &env()).unwrap().into_iter().collect();
        let root = dir.path().display().to_string();
        assert_eq!(env["SM_MODEL_DIR"], format!("{root}/model"));
        assert_eq!(env["SM_CHANNEL_TRAIN"], format!("{root}/input/data/train"));
        assert_eq!(
            env["SM_CHANNEL_VAL_SET"],
            format!("{root}/input/data/val-set")
        );
        assert_eq!(env["SM_CHANNELS"], r#"["train","val-set"]"#);
        assert_eq!(env["SM_HP_LR"], "0.1");
        assert_eq!(env["SM_HP_MAX_DEPTH"], "6");
        assert_eq!(env["SM_USER_ARGS"], r#"["train.py","--epochs","3"]"#);
        assert_eq!(env["MLFLOW_RUN_ID"], "r1");
        assert_eq!(env["TRAINING_JOB_NAME"], "gbm");
        let te: Value = serde_json::from_str(&env["SM_TRAINING_ENV"]).unwrap();
        assert_eq!(te["hps"]["lr"], "0.1");
        assert_eq!(te["current_host"], "algo-1");
        let hps: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("input/config/hyperparameters.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(hps, json!({"lr": "0.1", "max-depth": "6"}));
        let idc: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("input/config/inputdataconfig.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(idc["train"]["TrainingInputMode"], "File");
        for d in [
            "model",
            "output/data",
            "checkpoints",
            "input/data/train",
            "code",
        ] {
            assert!(dir.path().join(d).is_dir(), "{d}");
        }
        std::fs::write(l.failure_file(), format!("  {}  ", "x".repeat(2000))).unwrap();
        assert_eq!(failure_reason(&l).unwrap().len(), 1024);
    }

    #[test]
    fn processing_jobs_get_their_paths_and_the_users_variables_win() {
        let dir = tempfile::tempdir().unwrap();
        let spec = UserJobSpec::parse(
            JobKind::Processing,
            &json!({"command": ["python", "prep.py"], "inputs": {"raw": "datasets/a.csv"},
                    "outputs": ["clean"], "environment": {"MLFLOW_RUN_ID": "mine"}}),
        )
        .unwrap();
        let l = Layout::new(JobKind::Processing, dir.path().to_path_buf());
        let env: BTreeMap<String, String> = l.prepare(&spec, &env()).unwrap().into_iter().collect();
        let root = dir.path().display().to_string();
        assert_eq!(
            env["ATELIER_INPUT_RAW"],
            format!("{root}/processing/input/raw")
        );
        assert_eq!(
            env["ATELIER_OUTPUT_CLEAN"],
            format!("{root}/processing/output/clean")
        );
        assert_eq!(env["MLFLOW_RUN_ID"], "mine");
        assert!(!env.contains_key("SM_MODEL_DIR"));
        let cfg: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("config/processingjobconfig.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            cfg["ProcessingOutputConfig"]["Outputs"][0]["OutputName"],
            "clean"
        );
        assert!(dir.path().join("processing/output/clean").is_dir());
    }
}
