//! A pipeline loaded for serving, and the resolver from model URIs
//! (`models:/name/3`, `models:/name@alias`, `runs:/<id>/path`,
//! `mlflow-artifacts:/path`) to the artifact holding the pipeline file.

use std::collections::HashMap;
use std::sync::Arc;

use artifacts::{ArtifactPath, ArtifactStore};
use learn::{Pipeline, ProblemType};
use store::MetadataStore;

use crate::error::{Result, ServingError};

/// The file name looked for when a model source is a directory.
pub const PIPELINE_FILE: &str = "pipeline.atelier";

/// A pipeline plus everything precomputed for writing answers without
/// per-row allocation.
pub struct LoadedModel {
    pub pipeline: Pipeline,
    /// Input column names, in the pipeline's order (dropped ones included).
    pub columns: Vec<String>,
    /// Whether each input column must be present (dropped ones need not).
    pub required: Vec<bool>,
    index: HashMap<String, usize>,
    /// Each class label as a JSON string literal (quotes included).
    pub labels_json: Vec<String>,
    /// Each class label as a CSV field.
    pub labels_csv: Vec<String>,
    /// `["a","b"]`: the class labels as a JSON list.
    pub labels_list_json: String,
    /// `predicted_label,probability_<class>…` (what `atelier predict` writes).
    pub csv_header: String,
}

impl LoadedModel {
    pub fn new(pipeline: Pipeline) -> LoadedModel {
        let columns: Vec<String> = pipeline
            .preprocessor
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let required = pipeline
            .preprocessor
            .columns
            .iter()
            .map(|c| c.encoding.parts() > 0 && !c.encoding.may_be_absent())
            .collect();
        let index = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        let labels_json: Vec<String> = pipeline
            .labels
            .iter()
            .map(|l| serde_json::Value::String(l.clone()).to_string())
            .collect();
        let labels_csv = pipeline.labels.iter().map(|l| csv_field(l)).collect();
        let labels_list_json = format!("[{}]", labels_json.join(","));
        let mut csv_header = String::from("predicted_label");
        if pipeline.problem != ProblemType::Regression {
            for l in &pipeline.labels {
                csv_header.push(',');
                csv_header.push_str(&csv_field(&format!("probability_{l}")));
            }
        }
        LoadedModel {
            pipeline,
            columns,
            required,
            index,
            labels_json,
            labels_csv,
            labels_list_json,
            csv_header,
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<LoadedModel> {
        let p = Pipeline::from_bytes(bytes).map_err(ServingError::BadRequest)?;
        Ok(LoadedModel::new(p))
    }

    /// Position of an input column by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn is_classification(&self) -> bool {
        self.pipeline.problem != ProblemType::Regression
    }

    /// Class probabilities of a raw model output: `P(class 1)` for binary
    /// becomes `[1 - p, p]`. Returns the index of the predicted class.
    pub fn predicted_class(&self, out: &[f64]) -> usize {
        match self.pipeline.problem {
            ProblemType::Binary => usize::from(out[0] >= 0.5),
            _ => out
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |x| x.0),
        }
    }
}

/// Quote a CSV field the way `atelier predict` does.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Where a model URI points, and the registry version it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Artifact-store path of the pipeline file.
    pub artifact_path: String,
    pub registered_model: Option<String>,
    pub version: Option<i64>,
}

fn artifact_path_of_uri(store: &dyn MetadataStore, uri: &str, depth: usize) -> Result<String> {
    if depth > 4 {
        return Err(ServingError::BadRequest(format!(
            "model source '{uri}' refers to itself in a loop"
        )));
    }
    if let Some(rest) = artifacts::proxied_path(uri) {
        return Ok(rest.to_string());
    }
    if let Some(rest) = uri.strip_prefix("runs:/") {
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        let run = store.get_run(run_id)?;
        let base = artifact_path_of_uri(store, &run.info.artifact_uri, depth + 1)?;
        let path = path.trim_matches('/');
        return Ok(if path.is_empty() {
            base
        } else {
            format!("{}/{path}", base.trim_end_matches('/'))
        });
    }
    Err(ServingError::BadRequest(format!(
        "model source '{uri}' is not in this server's artifact store: use a models:/, runs:/ or mlflow-artifacts:/ URI"
    )))
}

/// [`resolve`] for project `workspace`: a registered model or a run of
/// another project is not there for it.
pub fn resolve_in(store: &dyn MetadataStore, workspace: &str, model: &str) -> Result<Resolved> {
    let other = |home: store::Result<String>| home.is_ok_and(|h| h != workspace);
    if let Some(rest) = model.strip_prefix("models:/") {
        let name = rest.split(['@', '/']).next().unwrap_or(rest);
        if other(store.registered_model_workspace(name)) {
            return Err(ServingError::NotFound(format!(
                "Registered Model with name={name} not found"
            )));
        }
    }
    if let Some(rest) = model.strip_prefix("runs:/") {
        let run = rest
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or(rest);
        if other(store.run_workspace(run)) {
            return Err(ServingError::NotFound(format!(
                "Run with id={run} not found"
            )));
        }
    }
    let r = resolve(store, model)?;
    // whatever it names, the model's file must be the project's own (an
    // uploaded path, or a version whose source points elsewhere)
    let path = ArtifactPath::parse(&r.artifact_path)?;
    if !server::workspace::artifact_allowed(store, workspace, false, &path) {
        return Err(ServingError::NotFound(format!(
            "no model at '{model}' in project '{workspace}'"
        )));
    }
    Ok(r)
}

/// Resolve a model URI through the registry (blocking: call it off the
/// async runtime). A local file path is not accepted here: upload it first.
pub fn resolve(store: &dyn MetadataStore, model: &str) -> Result<Resolved> {
    if let Some(rest) = model.strip_prefix("models:/") {
        let (name, mv) = if let Some((name, alias)) = rest.split_once('@') {
            let mv = store.get_version_by_alias(name, alias)?;
            (name, mv)
        } else if let Some((name, version)) = rest.rsplit_once('/') {
            let v: i64 = version.parse().map_err(|_| {
                ServingError::BadRequest(format!(
                    "'{model}': the version must be a number, e.g. models:/{name}/1 (or use models:/{name}@alias)"
                ))
            })?;
            let mv = store.get_model_version(name, v)?;
            (name, mv)
        } else {
            return Err(ServingError::BadRequest(format!(
                "'{model}': name a version or an alias, e.g. models:/{rest}/1 or models:/{rest}@champion"
            )));
        };
        let path = artifact_path_of_uri(store, &mv.source, 0)?;
        return Ok(Resolved {
            artifact_path: path,
            registered_model: Some(name.to_string()),
            version: Some(mv.version),
        });
    }
    Ok(Resolved {
        artifact_path: artifact_path_of_uri(store, model, 0)?,
        registered_model: None,
        version: None,
    })
}

/// Read the pipeline at `path`, or at `path/pipeline.atelier` when `path`
/// is a directory.
pub async fn load(artifacts: &ArtifactStore, path: &str) -> Result<(String, Arc<LoadedModel>)> {
    let p = ArtifactPath::parse(path)?;
    let (path, bytes) = match artifacts.read_all(&p).await {
        Ok(b) => (path.to_string(), b),
        // not a file (missing, or a directory): look for the pipeline inside
        Err(first) => {
            let inner = p.join(PIPELINE_FILE)?;
            match artifacts.read_all(&inner).await {
                Ok(b) => (inner.as_str().to_string(), b),
                Err(artifacts::ArtifactError::NotFound(_)) => {
                    return Err(match first {
                        artifacts::ArtifactError::Storage(m) => ServingError::Internal(m),
                        _ => ServingError::BadRequest(format!(
                            "no pipeline file at '{path}' nor at '{}' in the artifact store",
                            inner.as_str()
                        )),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let model = tokio::task::spawn_blocking(move || LoadedModel::from_bytes(&bytes))
        .await
        .map_err(|e| ServingError::Internal(format!("model loading task failed: {e}")))?
        .map_err(|e| ServingError::BadRequest(format!("{path}: {e}")))?;
    Ok((path, Arc::new(model)))
}
