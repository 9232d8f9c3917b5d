//! MLflow's JSON shapes. The only place that knows them: store types have no
//! `Serialize`; these functions convert explicitly. Conventions: snake_case,
//! ids as strings, int64 as numbers, empty lists and empty strings omitted,
//! NaN/±inf metric values as "NaN"/"Infinity"/"-Infinity".

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
