//! A processing or training job's spec (JSON, as the API and the CLI send
//! it), parsed and checked before the job is queued: every mistake is a
//! message that names the field and the fix.
//!
//! ```json
//! {
//!   "name": "gbm-lr",
//!   "command": ["python", "train.py", "--epochs", "3"],
//!   "code": "jobs-code/5b2c…",               // artifact folder to run in (the CLI uploads it)
//!   "inputs": {"train": "runs:/<run>/clean/train.csv", "raw": "datasets/raw.csv",
//!              "base": "models:/churn@champion"},
//!   "outputs": ["clean"],                     // processing: processing/output/<name>
//!   "hyperparameters": {"lr": "0.1"},
//!   "environment": {"OMP_NUM_THREADS": "1"},
//!   "experiment": "jobs",
//!   "max_runtime_seconds": 86400,
//!   "stop_grace_seconds": 120,
//!   "max_output_bytes": 5368709120,
//!   "register_model": "churn"                 // training: register model/ as a version
//! }
//! ```

use std::collections::BTreeMap;

use artifacts::ArtifactPath;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::MetadataStore;

/// Processing, training, or a notebook run headless (a processing job whose
/// command is Atelier's own notebook runner: [`UserJobSpec::expanded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Processing,
    Training,
    Notebook,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Processing => "processing",
            JobKind::Training => "training",
            JobKind::Notebook => "notebook",
        }
    }
}

/// What a notebook job runs: the notebook (an artifact path, e.g. a snapshot
/// the notebooks API took of a workspace file), its parameters (papermill's
/// `-p`), the kernel and the per-cell timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotebookSpec {
    /// The `.ipynb` in the artifact store.
    pub path: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    /// A kernel spec name; default: the notebook's own.
    #[serde(default)]
    pub kernel: Option<String>,
    #[serde(default)]
    pub cell_timeout_seconds: Option<u64>,
    /// Where the user's notebook came from (`workspace:<space>/<path>`, an
    /// upload's file name, …): the notebooks page groups runs by it.
    #[serde(default)]
    pub source: Option<String>,
    /// The notebook schedule that fired this run.
    #[serde(default)]
    pub schedule: Option<String>,
}

/// The output channel of a notebook job: the executed notebook.
pub const NOTEBOOK_CHANNEL: &str = "notebook";

/// A parameter's value as a run parameter: strings as they are, the rest as JSON.
pub fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// SageMaker's default stopping condition: one day.
pub const DEFAULT_MAX_RUNTIME_S: u64 = 24 * 3600;
/// SageMaker's window between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_GRACE_S: u64 = 120;
/// Outputs larger than this (all together) fail the job.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 5 << 30;

/// A checked spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserJobSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    /// Notebook jobs only: what to run (the command is Atelier's runner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notebook: Option<NotebookSpec>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub hyperparameters: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub experiment: Option<String>,
    #[serde(default = "default_runtime")]
    pub max_runtime_seconds: u64,
    #[serde(default = "default_grace")]
    pub stop_grace_seconds: u64,
    #[serde(default = "default_max_output")]
    pub max_output_bytes: u64,
    #[serde(default)]
    pub register_model: Option<String>,
    /// Debugger rules watching the job's metrics: `"Overfit:patience=3"` or
    /// `{"name": "Overfit", "parameters": {"patience": 3}}`.
    #[serde(default)]
    pub rules: Vec<Value>,
    /// URLs told (a JSON POST, retried) when a Debugger rule finds issues.
    #[serde(default)]
    pub webhooks: Vec<String>,
}

fn default_runtime() -> u64 {
    DEFAULT_MAX_RUNTIME_S
}
fn default_grace() -> u64 {
    DEFAULT_STOP_GRACE_S
}
fn default_max_output() -> u64 {
    DEFAULT_MAX_OUTPUT_BYTES
}

const FIELDS: &str = "name, command, notebook, code, inputs, outputs, hyperparameters, environment, experiment, max_runtime_seconds, stop_grace_seconds, max_output_bytes, register_model, rules, webhooks";

/// A job, channel, input or output name (and a notebook schedule's, whose
/// runs are jobs of that name): what SageMaker allows in a channel name and
/// what fits an environment variable's suffix.
pub fn check_name(what: &str, n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name '{n}' must be 1–64 letters, digits, '_' or '-', starting with a letter or digit"
        ))
    }
}

impl UserJobSpec {
    /// Parse and check the shape (no store look-ups).
    pub fn parse(kind: JobKind, v: &Value) -> Result<UserJobSpec, String> {
        let s: UserJobSpec = serde_json::from_value(v.clone()).map_err(|e| {
            let m = e.to_string();
            if m.contains("unknown field") {
                format!("{m}; a {} job's spec has: {FIELDS}", kind.as_str())
            } else {
                format!("the {} job's spec: {m}", kind.as_str())
            }
        })?;
        match (kind, &s.notebook) {
            (JobKind::Notebook, None) => {
                return Err("a notebook job needs 'notebook': {\"path\": \"<artifact path of the .ipynb>\", \"parameters\": {…}}".into());
            }
            (JobKind::Notebook, Some(nb)) => {
                if !s.command.is_empty() {
                    return Err("a notebook job runs its notebook: leave out 'command'".into());
                }
                if !s.outputs.is_empty() {
                    return Err(format!(
                        "a notebook job's output is the executed notebook (output '{NOTEBOOK_CHANNEL}'); leave out 'outputs'"
                    ));
                }
                if s.inputs.contains_key(NOTEBOOK_CHANNEL) {
                    return Err(format!(
                        "input name '{NOTEBOOK_CHANNEL}' is the notebook itself; pick another"
                    ));
                }
                let p =
                    ArtifactPath::parse(&nb.path).map_err(|e| format!("'notebook.path': {e}"))?;
                if !p.as_str().ends_with(".ipynb") {
                    return Err(format!(
                        "'notebook.path' must name a .ipynb file, not '{}'",
                        nb.path
                    ));
                }
                for k in nb.parameters.keys() {
                    let ok = !k.is_empty()
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !k.starts_with(|c: char| c.is_ascii_digit());
                    if !ok {
                        return Err(format!(
                            "parameter name '{k}' must be a Python identifier (letters, digits and '_', not starting with a digit)"
                        ));
                    }
                }
                if let Some(t) = nb.cell_timeout_seconds
                    && (t == 0 || t > 7 * 24 * 3600)
                {
                    return Err("'notebook.cell_timeout_seconds' must be from 1 to 604800".into());
                }
            }
            (_, Some(_)) => {
                return Err("'notebook' is for notebook jobs".into());
            }
            (_, None) => {}
        }
        if kind != JobKind::Notebook && (s.command.is_empty() || s.command[0].trim().is_empty()) {
            return Err(
                "give the command to run, e.g. \"command\": [\"python\", \"train.py\"]".into(),
            );
        }
        if s.command.iter().any(|a| a.contains('\0')) {
            return Err("the command's arguments must not contain NUL characters".into());
        }
        if let Some(n) = &s.name {
            check_name("the job", n)?;
        }
        for name in s.inputs.keys() {
            check_name("input", name)?;
        }
        for name in &s.outputs {
            check_name("output", name)?;
            if s.outputs.iter().filter(|o| *o == name).count() > 1 {
                return Err(format!("output '{name}' is named twice"));
            }
        }
        if kind == JobKind::Training && !s.outputs.is_empty() {
            return Err("a training job's outputs are model/ and output/data/ (SM_MODEL_DIR, SM_OUTPUT_DATA_DIR); 'outputs' is for processing jobs".into());
        }
        if kind != JobKind::Training && s.register_model.is_some() {
            return Err("'register_model' is for training jobs (they have a model/ folder)".into());
        }
        for k in s.hyperparameters.keys() {
            if k.is_empty() || k.len() > 256 || k.contains('\0') {
                return Err(format!(
                    "hyperparameter name '{k}' must be 1–256 characters"
                ));
            }
        }
        for k in s.environment.keys() {
            let ok = !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err(format!(
                    "environment variable name '{k}' must be letters, digits and '_', not starting with a digit"
                ));
            }
        }
        if s.max_runtime_seconds == 0 || s.max_runtime_seconds > 28 * 24 * 3600 {
            return Err("'max_runtime_seconds' must be from 1 to 2419200 (28 days)".into());
        }
        if s.stop_grace_seconds > 3600 {
            return Err("'stop_grace_seconds' must be at most 3600".into());
        }
        if let Some(c) = &s.code {
            ArtifactPath::parse(c).map_err(|e| format!("'code': {e}"))?;
        }
        if let Some(e) = &s.experiment
            && e.trim().is_empty()
        {
            return Err("'experiment' must not be empty".into());
        }
        s.rule_specs()?;
        for w in &s.webhooks {
            if !(w.starts_with("http://") || w.starts_with("https://")) {
                return Err(format!("webhook '{w}' is not an http(s) URL"));
            }
        }
        if !s.webhooks.is_empty() && s.rules.is_empty() {
            return Err(
                "'webhooks' are told when a Debugger rule finds issues: give 'rules' too".into(),
            );
        }
        Ok(s)
    }

    /// The Debugger rules, parsed; an unknown rule or parameter is an error
    /// listing the known ones.
    pub fn rule_specs(&self) -> Result<Vec<debugger::RuleSpec>, String> {
        let specs = crate::rules::parse_rules(&self.rules).map_err(|e| format!("rules: {e}"))?;
        debugger::Watch::new(specs.clone(), 0).map_err(|e| format!("rules: {e}"))?;
        Ok(specs)
    }

    /// A notebook job's spec as the processing job it runs: the notebook as
    /// input `notebook`, the executed one as output `notebook`, parameters
    /// as the run's parameters, and `atelier __notebook-run` as the command
    /// (`atelier_bin`: this Atelier; `python`: the kernels' Python).
    /// Other kinds are returned unchanged.
    pub fn expanded(&self, atelier_bin: &str, python: Option<&str>) -> UserJobSpec {
        let Some(nb) = &self.notebook else {
            return self.clone();
        };
        let mut s = self.clone();
        let file = nb
            .path
            .rsplit('/')
            .next()
            .unwrap_or("notebook.ipynb")
            .to_string();
        s.inputs.insert(
            NOTEBOOK_CHANNEL.into(),
            format!("mlflow-artifacts:/{}", nb.path),
        );
        s.outputs = vec![NOTEBOOK_CHANNEL.into()];
        for (k, v) in &nb.parameters {
            s.hyperparameters.insert(k.clone(), param_text(v));
        }
        let mut argv = vec![
            atelier_bin.to_string(),
            "__notebook-run".to_string(),
            "--file".to_string(),
            file,
            "--parameters-json".to_string(),
            serde_json::to_string(&nb.parameters).unwrap_or_else(|_| "{}".into()),
        ];
        if let Some(k) = &nb.kernel {
            argv.extend(["--kernel".to_string(), k.clone()]);
        }
        if let Some(t) = nb.cell_timeout_seconds {
            argv.extend(["--cell-timeout".to_string(), t.to_string()]);
        }
        if let Some(p) = python {
            argv.extend(["--python".to_string(), p.to_string()]);
        }
        s.command = argv;
        s
    }

    /// The job's display name: the given one, else the program's file name.
    pub fn display_name(&self, kind: JobKind) -> String {
        if let (None, Some(nb)) = (&self.name, &self.notebook) {
            let file = nb.source.as_deref().unwrap_or(&nb.path);
            return format!("notebook {}", file.rsplit('/').next().unwrap_or(file));
        }
        self.name.clone().unwrap_or_else(|| {
            let prog = self
                .command
                .iter()
                .skip_while(|a| is_interpreter(a))
                .find(|a| !a.starts_with('-'))
                .or(self.command.first())
                .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
                .unwrap_or_default();
            format!("{} {prog}", kind.as_str())
        })
    }
}

fn is_interpreter(a: &str) -> bool {
    let base = a.rsplit('/').next().unwrap_or(a);
    base.starts_with("python") || base == "sh" || base == "bash" || base == "Rscript"
}

/// Where an input comes from, resolved to the artifact store.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedInput {
    pub name: String,
    /// What the user wrote.
    pub source: String,
    /// A file or a folder in the artifact store.
    pub path: ArtifactPath,
    /// The registered model and version, for `models:/` inputs.
    pub model: Option<(String, i64)>,
}

/// Resolve an input's source: an uploaded dataset (`datasets/<file>` or
/// `dataset:<file>`), a run's artifact (`runs:/<run id>/<path>`), a
/// registered model (`models:/<name>/<version>` or `models:/<name>@<alias>`)
/// or a path in the artifact store (`mlflow-artifacts:/<path>`). A run or a
/// registered model of another project than `workspace` is not there for
/// it. Blocking (store reads); does not check that the artifact exists.
pub fn resolve_input(
    store: &dyn MetadataStore,
    workspace: &str,
    name: &str,
    source: &str,
) -> Result<ResolvedInput, String> {
    let bad = |m: String| format!("input '{name}': {m}");
    if let Some(rest) = source.strip_prefix("models:/") {
        let n = rest.split(['@', '/']).next().unwrap_or(rest);
        if store
            .registered_model_workspace(n)
            .is_ok_and(|home| home != workspace)
        {
            return Err(bad(format!("Registered Model with name={n} not found")));
        }
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        let run_id = rest.split('/').next().unwrap_or(rest);
        if store
            .run_workspace(run_id)
            .is_ok_and(|home| home != workspace)
        {
            return Err(bad(format!("no run with id '{run_id}'")));
        }
    }
    let (path, model) = if let Some(file) = source
        .strip_prefix("dataset:")
        .or_else(|| source.strip_prefix("datasets/"))
    {
        (
            artifacts::datasets::dataset_path_in(workspace, file).map_err(bad)?,
            None,
        )
    } else if let Some(rest) = source.strip_prefix("models:/") {
        let (mname, mv) = if let Some((n, alias)) = rest.split_once('@') {
            let mv = store.get_version_by_alias(n, alias).map_err(|e| {
                bad(format!(
                    "no model version of '{n}' has the alias '{alias}' ({e})"
                ))
            })?;
            (n, mv)
        } else if let Some((n, v)) = rest.rsplit_once('/') {
            let v: i64 = v.parse().map_err(|_| {
                bad(format!(
                    "'{source}': the version must be a number, e.g. models:/{n}/1"
                ))
            })?;
            let mv = store
                .get_model_version(n, v)
                .map_err(|e| bad(e.to_string()))?;
            (n, mv)
        } else {
            return Err(bad(format!(
                "'{source}': name a version or an alias, e.g. models:/{rest}/1 or models:/{rest}@champion"
            )));
        };
        let p = artifact_of_uri(store, &mv.source, 0).map_err(bad)?;
        (p, Some((mname.to_string(), mv.version)))
    } else if source.starts_with("runs:/") || source.starts_with("mlflow-artifacts:") {
        (artifact_of_uri(store, source, 0).map_err(bad)?, None)
    } else {
        return Err(bad(format!(
            "'{source}' is not a source this server can read: use datasets/<file> (an uploaded dataset), runs:/<run id>/<path>, models:/<name>/<version> or models:/<name>@<alias>; the CLI uploads local files for you"
        )));
    };
    // whatever the source names, its files must be the project's own
    server::workspace::artifact_in(store, workspace, path.as_str())
        .map_err(|e| bad(e.to_string()))?;
    Ok(ResolvedInput {
        name: name.to_string(),
        source: source.to_string(),
        path,
        model,
    })
}

/// A job's code folder (the spec's `field`), refused unless it is in
/// project `workspace`'s part of the artifact store.
pub fn code_path(
    store: &dyn MetadataStore,
    workspace: &str,
    field: &str,
    code: &str,
) -> Result<ArtifactPath, String> {
    let code = artifacts::proxied_path(code).unwrap_or(code);
    server::workspace::artifact_in(store, workspace, code).map_err(|e| format!("'{field}': {e}"))
}

/// `runs:/` and `mlflow-artifacts:/` URIs as paths in the artifact store.
pub fn artifact_of_uri(
    store: &dyn MetadataStore,
    uri: &str,
    depth: usize,
) -> Result<ArtifactPath, String> {
    if depth > 4 {
        return Err(format!("'{uri}' refers to itself in a loop"));
    }
    if let Some(rest) = artifacts::proxied_path(uri) {
        return ArtifactPath::parse(rest).map_err(|e| e.to_string());
    }
    if let Some(rest) = uri.strip_prefix("runs:/") {
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        let run = store
            .get_run(run_id)
            .map_err(|_| format!("no run with id '{run_id}'"))?;
        let base = artifact_of_uri(store, &run.info.artifact_uri, depth + 1)?;
        let path = path.trim_matches('/');
        return if path.is_empty() {
            Ok(base)
        } else {
            base.join(path).map_err(|e| e.to_string())
        };
    }
    Err(format!(
        "'{uri}' is not in this server's artifact store (a runs:/ or mlflow-artifacts:/ URI)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_are_checked_with_messages_that_name_the_fix() {
        let ok = UserJobSpec::parse(
            JobKind::Processing,
            &json!({"command": ["python", "prep.py"], "inputs": {"raw": "datasets/raw.csv"}, "outputs": ["clean"]}),
        )
        .unwrap();
        assert_eq!(ok.max_runtime_seconds, DEFAULT_MAX_RUNTIME_S);
        assert_eq!(ok.stop_grace_seconds, 120);
        assert_eq!(ok.display_name(JobKind::Processing), "processing prep.py");
        let err = |kind, v: Value| UserJobSpec::parse(kind, &v).unwrap_err();
        assert!(err(JobKind::Processing, json!({"command": []})).contains("give the command"));
        assert!(
            err(
                JobKind::Processing,
                json!({"command": ["x"], "outptus": []})
            )
            .contains("outputs")
        );
        assert!(
            err(
                JobKind::Processing,
                json!({"command": ["x"], "outputs": ["a/b"]})
            )
            .contains("output name 'a/b'")
        );
        assert!(
            err(
                JobKind::Processing,
                json!({"command": ["x"], "outputs": ["a", "a"]})
            )
            .contains("twice")
        );
        assert!(
            err(
                JobKind::Training,
                json!({"command": ["x"], "outputs": ["a"]})
            )
            .contains("SM_MODEL_DIR")
        );
        assert!(
            err(
                JobKind::Training,
                json!({"command": ["x"], "code": "../etc"})
            )
            .contains("'code'")
        );
        assert!(
            err(
                JobKind::Training,
                json!({"command": ["x"], "max_runtime_seconds": 0})
            )
            .contains("max_runtime_seconds")
        );
        assert!(
            err(
                JobKind::Training,
                json!({"command": ["x"], "environment": {"A-B": "1"}})
            )
            .contains("A-B")
        );
    }
}
