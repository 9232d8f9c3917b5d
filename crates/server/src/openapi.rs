//! `GET /api/atelier/openapi.json`: an OpenAPI 3.1 document of every route
//! the server has, generated at start-up from the route table (see
//! [`crate::routes`]) — the same declarations the request guard enforces, so
//! the document cannot leave a route out or describe one that is not there.
//!
//! From each declaration: the path (axum's `{name}` is OpenAPI's syntax; a
//! trailing `{*rest}` becomes a `rest` parameter that may hold slashes), the
//! method, the path parameters, the request body's media types (from its
//! [`BodyKind`]), the security requirement and role (from its [`Access`]),
//! and the operation's id, summary and tag (from the handler's name and the
//! path). Every operation answers errors as the [`Error`] schema.
//!
//! What it does not know yet: the fields of JSON bodies and answers (the
//! handlers read and write `serde_json::Value`), so those are `object`.
//!
//! [`Error`]: crate::error::ApiError

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use crate::routes::{Access, BodyKind, Declared, Table};

/// MLflow's REST API reference, for the MLflow-protocol routes.
const MLFLOW_DOCS: &str = "https://mlflow.org/docs/latest/api_reference/rest-api.html";

/// The tag of a route: the area of the API it belongs to.
pub fn tag(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["api" | "ajax-api", _, "mlflow-artifacts", ..] => "mlflow-artifacts".into(),
        ["api" | "ajax-api", _, "mlflow", ..] => "mlflow".into(),
        ["api", "atelier", area, ..] if !area.starts_with('{') => (*area).into(),
        [first, ..] if !first.starts_with('{') => (*first).into(),
        _ => "studio".into(),
    }
}

/// The handler's own name: the last path segment of its Rust type name, or
/// `None` for a closure.
fn handler_name(handler: &str) -> Option<&str> {
    if handler.contains("{{closure}}") || handler.contains('<') {
        return None;
    }
    handler.rsplit("::").next().filter(|s| !s.is_empty())
}

/// `list_datasets` → "List datasets".
fn humanise(name: &str) -> String {
    let words = name.replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `GET /api/2.0/mlflow/runs/get` → `get_api_2_0_mlflow_runs_get`.
fn path_id(method: &str, path: &str) -> String {
    let mut out = method.to_ascii_lowercase();
    let mut last_us = false;
    for ch in path.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
            last_us = false;
        } else if !last_us {
            out.push('_');
            last_us = true;
        }
    }
    let mut out = out.trim_end_matches('_').to_string();
    if path.len() > 1 && path.ends_with('/') {
        // `/notebooks/{space}/` beside `/notebooks/{space}`
        out.push_str("_slash");
    }
    out
}

/// The OpenAPI path and its parameters: `(path, [(name, wildcard)])`.
pub fn openapi_path(path: &str) -> (String, Vec<(String, bool)>) {
    let mut params = Vec::new();
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 1..start + len];
        let (name, wild) = match inner.strip_prefix('*') {
            Some(n) => (n, true),
            None => (inner, false),
        };
        out.push('{');
        out.push_str(name);
        out.push('}');
        params.push((name.to_string(), wild));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    (out, params)
}

fn operation(d: &Declared, id: String) -> Value {
    let method = d.method.as_str();
    let (_, params) = openapi_path(&d.path);
    let tag = tag(&d.path);
    let summary = handler_name(d.handler)
        .map(humanise)
        .unwrap_or_else(|| format!("{method} {}", d.path));
    let mut op = Map::new();
    op.insert("operationId".into(), json!(id));
    op.insert("summary".into(), json!(summary));
    op.insert("tags".into(), json!([tag]));
    if tag.starts_with("mlflow") {
        op.insert(
            "externalDocs".into(),
            json!({"description": "MLflow's REST API (the protocol this route speaks)", "url": MLFLOW_DOCS}),
        );
    }
    if !params.is_empty() {
        let ps: Vec<Value> = params
            .iter()
            .map(|(name, wild)| {
                let mut p = json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "schema": {"type": "string"},
                });
                if *wild {
                    p["description"] = json!("the rest of the path; may contain '/'");
                    p["x-atelier-wildcard"] = json!(true);
                }
                p
            })
            .collect();
        op.insert("parameters".into(), Value::Array(ps));
    }
    let has_body = !matches!(method, "GET" | "HEAD" | "OPTIONS");
    if has_body {
        let content = match d.body {
            BodyKind::Json => json!({"application/json": {"schema": {"type": "object"}}}),
            BodyKind::Upload => {
                json!({"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}})
            }
            BodyKind::Raw => json!({"*/*": {"schema": {}}}),
        };
        op.insert(
            "requestBody".into(),
            json!({"required": d.body != BodyKind::Json, "content": content}),
        );
    }
    op.insert(
        "responses".into(),
        json!({
            "200": {"description": "Success", "content": {"application/json": {"schema": {}}}},
            "4XX": {"description": "The request was refused; the message says what to fix",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "5XX": {"description": "The server failed",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        }),
    );
    if d.access == Access::Public {
        op.insert("security".into(), json!([]));
    }
    op.insert("x-atelier-access".into(), json!(d.access.as_str()));
    op.insert("x-atelier-handler".into(), json!(d.handler));
    Value::Object(op)
}

/// The document for `table`, served as `version`.
pub fn document(table: &Table, version: &str) -> Value {
    let all = table.all();
    // operation ids: the handler's name where it is unique, else the method and path
    let mut base: Vec<String> = all
        .iter()
        .map(|d| {
            handler_name(d.handler)
                .map(str::to_string)
                .unwrap_or_else(|| path_id(d.method.as_str(), &d.path))
        })
        .collect();
    let mut count: HashMap<String, usize> = HashMap::new();
    for b in &base {
        *count.entry(b.clone()).or_default() += 1;
    }
    for (b, d) in base.iter_mut().zip(&all) {
        if count.get(b.as_str()).copied().unwrap_or(0) > 1 {
            *b = path_id(d.method.as_str(), &d.path);
        }
    }
    // anything still equal (it should not be) gets a number: ids must be unique
    let mut seen: HashMap<String, usize> = HashMap::new();
    for b in base.iter_mut() {
        let n = seen.entry(b.clone()).or_default();
        *n += 1;
        if *n > 1 {
            b.push_str(&format!("_{n}"));
        }
    }
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut tags: BTreeMap<String, usize> = BTreeMap::new();
    for (d, id) in all.iter().zip(base) {
        let (p, _) = openapi_path(&d.path);
        *tags.entry(tag(&d.path)).or_default() += 1;
        paths
            .entry(p)
            .or_default()
            .insert(d.method.as_str().to_ascii_lowercase(), operation(d, id));
    }
    let tags: Vec<Value> = tags
        .keys()
        .map(|t| {
            let mut v = json!({"name": t});
            if t.starts_with("mlflow") {
                v["description"] = json!("MLflow's tracking, registry and artifact protocol");
                v["externalDocs"] = json!({"url": MLFLOW_DOCS});
            }
            v
        })
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Atelier",
            "version": version,
            "description": "Every HTTP route of this Atelier server, generated from the route table the server enforces. \
                x-atelier-access is the role a route needs when the server requires authentication \
                (viewer: read; editor: write; admin). JSON bodies and answers are described as objects; \
                the MLflow-protocol routes follow MLflow's REST API reference.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API token (`atelier token create`), as MLFLOW_TRACKING_TOKEN sends it"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error_code", "message"],
                    "properties": {
                        "error_code": {"type": "string", "examples": ["INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"]},
                        "message": {"type": "string"}
                    }
                }
            }
        }
    })
}

/// `GET /api/atelier/openapi.json`.
pub async fn serve(
    axum::Extension(t): axum::Extension<std::sync::Arc<Table>>,
) -> axum::Json<Value> {
    axum::Json(document(&t, env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_params_and_tags() {
        assert_eq!(
            openapi_path("/endpoints/{name}/invocations"),
            (
                "/endpoints/{name}/invocations".into(),
                vec![("name".into(), false)]
            )
        );
        assert_eq!(
            openapi_path("/notebooks/{space}/{*rest}"),
            (
                "/notebooks/{space}/{rest}".into(),
                vec![("space".into(), false), ("rest".into(), true)]
            )
        );
        assert_eq!(tag("/api/2.0/mlflow/runs/get"), "mlflow");
        assert_eq!(
            tag("/ajax-api/2.0/mlflow-artifacts/artifacts/{*path}"),
            "mlflow-artifacts"
        );
        assert_eq!(tag("/api/atelier/jobs/{id}"), "jobs");
        assert_eq!(tag("/health"), "health");
        assert_eq!(
            path_id("GET", "/api/2.0/mlflow/runs/get"),
            "get_api_2_0_mlflow_runs_get"
        );
        assert_eq!(
            path_id("GET", "/notebooks/{space}/"),
            "get_notebooks_space_slash"
        );
        assert_eq!(humanise("list_datasets"), "List datasets");
        assert_eq!(
            handler_name("server::atelier_api::list_datasets"),
            Some("list_datasets")
        );
        assert_eq!(handler_name("server::own_routes::{{closure}}"), None);
    }
}
