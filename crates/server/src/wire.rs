//! MLflow's JSON shapes. The only place that knows them: store types have no
//! `Serialize`; these functions convert explicitly. Conventions: snake_case,
//! ids as strings, int64 as numbers, empty lists and empty strings omitted,
//! NaN/±inf metric values as "NaN"/"Infinity"/"-Infinity".

use serde::ser::SerializeMap;
use serde_json::{Map, Value, json};
use store::*;

/// An object builder that drops empty values as proto3-JSON does.
#[derive(Default)]
pub struct Obj(Map<String, Value>);

impl Obj {
    pub fn new() -> Self {
        Obj(Map::new())
    }
    pub fn s(mut self, k: &str, v: &str) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), Value::String(v.into()));
        }
        self
    }
    pub fn i(mut self, k: &str, v: i64) -> Self {
        self.0.insert(k.into(), json!(v));
        self
    }
    pub fn oi(self, k: &str, v: Option<i64>) -> Self {
        match v {
            Some(v) => self.i(k, v),
            None => self,
        }
    }
    pub fn v(mut self, k: &str, v: Value) -> Self {
        let empty = match &v {
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Null => true,
            _ => false,
        };
        if !empty {
            self.0.insert(k.into(), v);
        }
        self
    }
    /// Insert even when empty (messages MLflow always sends).
    pub fn always(mut self, k: &str, v: Value) -> Self {
        self.0.insert(k.into(), v);
        self
    }
    pub fn done(self) -> Value {
        Value::Object(self.0)
    }
}

pub fn float(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

pub fn tags(t: &[Tag]) -> Value {
    Value::Array(
        t.iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect(),
    )
}

pub fn experiment(e: &Experiment) -> Value {
    Obj::new()
        .s("experiment_id", &e.experiment_id.to_string())
        .s("name", &e.name)
        .s("artifact_location", &e.artifact_location)
        .s("lifecycle_stage", e.lifecycle_stage.as_str())
        .i("last_update_time", e.last_update_time)
        .i("creation_time", e.creation_time)
        .v("tags", tags(&e.tags))
        .s("workspace", &e.workspace)
        .done()
}

/// A workspace as MLflow's `Workspace` message (unset fields left out).
pub fn workspace(w: &store::Workspace) -> Value {
    Obj::new()
        .s("name", &w.name)
        .v("description", json!(w.description))
        .v("default_artifact_root", json!(w.default_artifact_root))
        .done()
}

pub fn metric(m: &Metric) -> Value {
    Obj::new()
        .s("key", &m.key)
        .always("value", float(m.value))
        .i("timestamp", m.timestamp)
        .i("step", m.step)
        .s("dataset_name", m.dataset_name.as_deref().unwrap_or(""))
        .s("dataset_digest", m.dataset_digest.as_deref().unwrap_or(""))
        .s("model_id", m.model_id.as_deref().unwrap_or(""))
        .done()
}

pub fn run_metric(m: &RunMetric) -> Value {
    let mut v = metric(&m.metric);
    if let Value::Object(o) = &mut v {
        o.insert("run_id".into(), json!(m.run_id));
    }
    v
}

pub fn run_info(i: &RunInfo) -> Value {
    Obj::new()
        .s("run_id", &i.run_id)
        .s("run_uuid", &i.run_id)
        .s("run_name", &i.run_name)
        .s("experiment_id", &i.experiment_id.to_string())
        .s("user_id", &i.user_id)
        .s("status", i.status.as_str())
        .oi("start_time", i.start_time)
        .oi("end_time", i.end_time)
        .s("artifact_uri", &i.artifact_uri)
        .s("lifecycle_stage", i.lifecycle_stage.as_str())
        .done()
}

fn dataset_input(d: &DatasetInput) -> Value {
    let ds = &d.dataset;
    Obj::new()
        .v("tags", tags(&d.tags))
        .v(
            "dataset",
            Obj::new()
                .s("name", &ds.name)
                .s("digest", &ds.digest)
                .s("source_type", &ds.source_type)
                .s("source", &ds.source)
                .s("schema", ds.schema.as_deref().unwrap_or(""))
                .s("profile", ds.profile.as_deref().unwrap_or(""))
                .done(),
        )
        .done()
}

pub fn run(r: &Run) -> Value {
    let data = Obj::new()
        .v(
            "metrics",
            Value::Array(r.metrics.iter().map(metric).collect()),
        )
        .v("params", tags(&r.params))
        .v("tags", tags(&r.tags))
        .done();
    let inputs = Obj::new()
        .v(
            "dataset_inputs",
            Value::Array(r.dataset_inputs.iter().map(dataset_input).collect()),
        )
        .v(
            "model_inputs",
            Value::Array(
                r.model_inputs
                    .iter()
                    .map(|m| json!({"model_id": m}))
                    .collect(),
            ),
        )
        .done();
    let outputs = Obj::new()
        .v(
            "model_outputs",
            Value::Array(
                r.model_outputs
                    .iter()
                    .map(|m| json!({"model_id": m.model_id, "step": m.step}))
                    .collect(),
            ),
        )
        .done();
    Obj::new()
        .always("info", run_info(&r.info))
        .always("data", data)
        .always("inputs", inputs)
        .always("outputs", outputs)
        .done()
}

/// A run in MLflow's JSON written straight to the output, byte for byte
/// what [`run`] gives (keys in the same sorted order, the same omissions):
/// a search returns up to 50,000 runs, and building a `Value` tree of each
/// (a map and a `String` per key) cost a search over 10,000 runs more time
/// than its SQL on PostgreSQL.
pub struct RunOut<'a>(pub &'a Run);

impl serde::Serialize for RunOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("data", &RunData(r))?;
        m.serialize_entry("info", &InfoOut(&r.info))?;
        m.serialize_entry("inputs", &InputsOut(r))?;
        m.serialize_entry("outputs", &OutputsOut(r))?;
        m.end()
    }
}

/// Entries of a map in key order, dropping empty strings and lists as
/// [`Obj`] does (so keys must be given sorted).
struct Entries<'m, M>(&'m mut M);

impl<M: serde::ser::SerializeMap> Entries<'_, M> {
    fn s(&mut self, k: &str, v: &str) -> Result<(), M::Error> {
        if v.is_empty() {
            return Ok(());
        }
        self.0.serialize_entry(k, v)
    }
    fn i(&mut self, k: &str, v: i64) -> Result<(), M::Error> {
        self.0.serialize_entry(k, &v)
    }
    fn list<T: serde::Serialize>(&mut self, k: &str, v: &[T]) -> Result<(), M::Error> {
        if v.is_empty() {
            return Ok(());
        }
        self.0.serialize_entry(k, v)
    }
}

fn map_of<S: serde::Serializer>(
    s: S,
    f: impl FnOnce(&mut Entries<'_, S::SerializeMap>) -> Result<(), S::Error>,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    f(&mut Entries(&mut m))?;
    m.end()
}

struct RunData<'a>(&'a Run);
impl serde::Serialize for RunData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let metrics: Vec<MetricOut> = r.metrics.iter().map(MetricOut).collect();
        let params: Vec<KeyValue> = r.params.iter().map(KeyValue).collect();
        let tags: Vec<KeyValue> = r.tags.iter().map(KeyValue).collect();
        map_of(s, |e| {
            e.list("metrics", &metrics)?;
            e.list("params", &params)?;
            e.list("tags", &tags)
        })
    }
}

struct KeyValue<'a>(&'a Tag);
impl serde::Serialize for KeyValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("key", &self.0.key)?;
        m.serialize_entry("value", &self.0.value)?;
        m.end()
    }
}

struct MetricOut<'a>(&'a Metric);
impl serde::Serialize for MetricOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        map_of(s, |e| {
            e.s("dataset_digest", m.dataset_digest.as_deref().unwrap_or(""))?;
            e.s("dataset_name", m.dataset_name.as_deref().unwrap_or(""))?;
            e.s("key", &m.key)?;
            e.s("model_id", m.model_id.as_deref().unwrap_or(""))?;
            e.i("step", m.step)?;
            e.i("timestamp", m.timestamp)?;
            e.0.serialize_entry("value", &float(m.value))
        })
    }
}

struct InfoOut<'a>(&'a RunInfo);
impl serde::Serialize for InfoOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.0;
        map_of(s, |e| {
            e.s("artifact_uri", &i.artifact_uri)?;
            if let Some(t) = i.end_time {
                e.i("end_time", t)?;
            }
            e.s("experiment_id", &i.experiment_id.to_string())?;
            e.s("lifecycle_stage", i.lifecycle_stage.as_str())?;
            e.s("run_id", &i.run_id)?;
            e.s("run_name", &i.run_name)?;
            e.s("run_uuid", &i.run_id)?;
            if let Some(t) = i.start_time {
                e.i("start_time", t)?;
            }
            e.s("status", i.status.as_str())?;
            e.s("user_id", &i.user_id)
        })
    }
}

struct InputsOut<'a>(&'a Run);
impl serde::Serialize for InputsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        // (dataset inputs are few: the Value form, sorted as `run` sorts them)
        let datasets: Vec<Value> = r.dataset_inputs.iter().map(dataset_input).collect();
        let models: Vec<Value> = r
            .model_inputs
            .iter()
            .map(|m| json!({"model_id": m}))
            .collect();
        map_of(s, |e| {
            e.list("dataset_inputs", &datasets)?;
            e.list("model_inputs", &models)
        })
    }
}

struct OutputsOut<'a>(&'a Run);
impl serde::Serialize for OutputsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let outputs: Vec<Value> = self
            .0
            .model_outputs
            .iter()
            .map(|m| json!({"model_id": m.model_id, "step": m.step}))
            .collect();
        map_of(s, |e| e.list("model_outputs", &outputs))
    }
}

pub fn model_version(m: &ModelVersion) -> Value {
    Obj::new()
        .s("name", &m.name)
        .s("version", &m.version.to_string())
        .i("creation_timestamp", m.creation_timestamp)
        .i("last_updated_timestamp", m.last_updated_timestamp)
        .s("user_id", &m.user_id)
        .s("current_stage", &m.current_stage)
        .s("description", &m.description)
        .s("source", &m.source)
        .s("run_id", &m.run_id)
        .s("status", &m.status)
        .s("status_message", &m.status_message)
        .v("tags", tags(&m.tags))
        .s("run_link", &m.run_link)
        .v("aliases", json!(m.aliases))
        .s("model_id", &m.model_id)
        .done()
}

pub fn registered_model(m: &RegisteredModel) -> Value {
    Obj::new()
        .s("name", &m.name)
        .i("creation_timestamp", m.creation_timestamp)
        .i("last_updated_timestamp", m.last_updated_timestamp)
        .s("user_id", &m.user_id)
        .s("description", &m.description)
        .v(
            "latest_versions",
            Value::Array(m.latest_versions.iter().map(model_version).collect()),
        )
        .v("tags", tags(&m.tags))
        .v(
            "aliases",
            Value::Array(
                m.aliases
                    .iter()
                    .map(|a| json!({"alias": a.alias, "version": a.version.to_string()}))
                    .collect(),
            ),
        )
        .done()
}

pub fn logged_model(m: &LoggedModel) -> Value {
    let info = Obj::new()
        .s("model_id", &m.model_id)
        .s("experiment_id", &m.experiment_id.to_string())
        .s("name", &m.name)
        .i("creation_timestamp_ms", m.creation_timestamp_ms)
        .i("last_updated_timestamp_ms", m.last_updated_timestamp_ms)
        .s("artifact_uri", &m.artifact_uri)
        .s("status", &m.status)
        .s("model_type", &m.model_type)
        .s("source_run_id", &m.source_run_id)
        .v("tags", tags(&m.tags))
        .s("lifecycle_stage", m.lifecycle_stage.as_str())
        .done();
    let data = Obj::new()
        .v("params", tags(&m.params))
        .v(
            "metrics",
            Value::Array(m.metrics.iter().map(run_metric).collect()),
        )
        .done();
    json!({"info": info, "data": data})
}

/// One entry of `search-datasets` (MLflow's `DatasetSummary`).
pub fn dataset_summary(d: &DatasetSummary) -> Value {
    Obj::new()
        .s("experiment_id", &d.experiment_id.to_string())
        .s("name", &d.name)
        .s("digest", &d.digest)
        .s("context", d.context.as_deref().unwrap_or_default())
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a_run(full: bool) -> Run {
        let t = |k: &str, v: &str| Tag::new(k, v);
        Run {
            info: RunInfo {
                run_id: "abc".into(),
                run_name: if full {
                    "name \"quoted\" ü".into()
                } else {
                    String::new()
                },
                experiment_id: 7,
                user_id: if full { "u".into() } else { String::new() },
                status: RunStatus::Running,
                start_time: full.then_some(1_700_000_000_000),
                end_time: None,
                artifact_uri: "mlflow-artifacts:/7/abc/artifacts".into(),
                lifecycle_stage: Lifecycle::Active,
            },
            metrics: if full {
                vec![
                    Metric::new("loss", 0.1, 5, 2),
                    Metric::new("nan", f64::NAN, 5, 2),
                    Metric::new("inf", f64::INFINITY, 5, 2),
                    Metric::new("ninf", f64::NEG_INFINITY, 5, -1),
                    Metric {
                        dataset_name: Some("eval".into()),
                        dataset_digest: Some("d".into()),
                        model_id: Some("m-1".into()),
                        ..Metric::new("acc", 1e300, 0, 0)
                    },
                ]
            } else {
                Vec::new()
            },
            params: if full {
                vec![t("lr", "0.1"), t("empty", "")]
            } else {
                Vec::new()
            },
            tags: if full {
                vec![t("mlflow.runName", "x\ny")]
            } else {
                Vec::new()
            },
            dataset_inputs: if full {
                vec![DatasetInput {
                    tags: vec![t("mlflow.data.context", "train")],
                    dataset: Dataset {
                        name: "d".into(),
                        digest: "1".into(),
                        source_type: "local".into(),
                        source: "{}".into(),
                        schema: None,
                        profile: Some("{}".into()),
                    },
                }]
            } else {
                Vec::new()
            },
            model_inputs: if full { vec!["m-1".into()] } else { Vec::new() },
            model_outputs: if full {
                vec![ModelOutput {
                    model_id: "m-2".into(),
                    step: 3,
                }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn a_run_written_straight_out_is_byte_for_byte_the_value_form() {
        for full in [true, false] {
            let r = a_run(full);
            let tree = serde_json::to_string(&run(&r)).unwrap();
            let direct = serde_json::to_string(&RunOut(&r)).unwrap();
            assert_eq!(direct, tree, "full: {full}");
        }
    }
}
