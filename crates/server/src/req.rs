//! Request fields, read the way MLflow's server reads them: GET takes query
//! parameters (repeated keys for lists), other methods a JSON body. Every
//! accessor turns a missing or mistyped field into a 400 that names it, so
//! handlers never see raw user input they could `unwrap()`.

use std::collections::HashSet;

use axum::extract::{FromRequest, Request};
use axum::http::Method;
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};

pub struct Req {
    map: Map<String, Value>,
    /// Keys that came from the query string (where every value is text and
    /// a repeated key makes a list), not from a JSON body.
    query: HashSet<String>,
    /// The workspace the request works in (see [`crate::workspace`]).
    workspace: String,
}

fn parse_query(q: &str, out: &mut Map<String, Value>) {
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        let v = Value::String(v.into_owned());
        match out.get_mut(k.as_ref()) {
            Some(Value::Array(a)) => a.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
            None => {
                out.insert(k.into_owned(), v);
            }
        }
    }
}

/// A request's query string, body and workspace, not parsed yet: for a
/// handler with a typed fast path for well-formed bodies (`runs/log-batch`),
/// which hands anything else to [`Req`] through [`RawReq::into_req`] so that
/// every mistake gets the same message either way.
pub struct RawReq {
    get: bool,
    query: Option<String>,
    body: axum::body::Bytes,
    workspace: String,
}

impl<S: Send + Sync> FromRequest<S> for RawReq {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let workspace = req
            .extensions()
            .get::<crate::workspace::Ws>()
            .map(|w| w.0.clone())
            .unwrap_or_else(|| store::DEFAULT_WORKSPACE.to_string());
        let query = req.uri().query().map(str::to_string);
        if req.method() == Method::GET {
            return Ok(RawReq {
                get: true,
                query,
                body: axum::body::Bytes::new(),
                workspace,
            });
        }
        // the server's body limit (--max-request-bytes) applies here
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        "The request body exceeds the server's limit (--max-request-bytes)",
                    )
                } else {
                    ApiError::new(
                        ErrorCode::MalformedRequest,
                        format!("Could not read the request body: {e}"),
                    )
                }
            })?;
        Ok(RawReq {
            get: false,
            query,
            body,
            workspace,
        })
    }
}

impl RawReq {
    /// The body, when the request has no query string (a body alone says
    /// everything; otherwise [`RawReq::into_req`] merges the two).
    pub fn body_alone(&self) -> Option<&[u8]> {
        (!self.get && self.query.is_none()).then_some(&self.body[..])
    }

    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// Parse as [`Req`] does: query parameters, then the JSON object body.
    pub fn into_req(self) -> Result<Req, ApiError> {
        let RawReq {
            get,
            query: q,
            body,
            workspace,
        } = self;
        let mut map = Map::new();
        if let Some(q) = &q {
            parse_query(q, &mut map);
        }
        let mut query: HashSet<String> = map.keys().cloned().collect();
        if get || body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Req {
                map,
                query,
                workspace,
            });
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(obj)) => {
                // a key the body sends is the body's, not the query's
                for k in obj.keys() {
                    query.remove(k);
                }
                map.extend(obj);
                Ok(Req {
                    map,
                    query,
                    workspace,
                })
            }
            Ok(_) => Err(ApiError::new(
                ErrorCode::MalformedRequest,
                "The request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::new(
                ErrorCode::MalformedRequest,
                format!("Malformed JSON in the request body: {e}"),
            )),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Req {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        RawReq::from_request(req, state).await?.into_req()
    }
}

fn missing(key: &str) -> ApiError {
    ApiError::invalid(format!(
        "Missing value for required parameter '{key}'. See the API docs for more information about request parameters."
    ))
}

fn wrong(key: &str, want: &str, got: &Value) -> ApiError {
    let shown = match got {
        Value::String(s) => format!("'{}'", s.chars().take(100).collect::<String>()),
        other => {
            let s = other.to_string();
            s.chars().take(100).collect()
        }
    };
    ApiError::invalid(format!(
        "Invalid value {shown} for parameter '{key}' supplied: expected {want}"
    ))
}

/// String fields that also accept a JSON number (ids people type as numbers).
const NUMERIC_IDS: [&str; 3] = ["experiment_id", "version", "step"];

impl Req {
    /// Fields of a JSON object (an entry of a list in the body).
    pub fn object_fields(map: Map<String, Value>) -> Req {
        Req {
            map,
            query: HashSet::new(),
            workspace: store::DEFAULT_WORKSPACE.to_string(),
        }
    }

    fn came_from_query(&self, key: &str) -> bool {
        self.query.contains(key)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// The workspace (project) the request works in.
    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// A field as it was sent (`None` when absent or null).
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }

    /// The fields, moved out.
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // query strings can repeat a key; take the last
            Some(Value::Array(a)) if self.came_from_query(key) => match a.last() {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                _ => Err(wrong(key, "a string", &Value::Array(a.clone()))),
            },
            Some(v @ Value::Number(_)) if NUMERIC_IDS.contains(&key) => Ok(Some(v.to_string())),
            Some(v) => Err(wrong(key, "a string", v)),
        }
    }

    pub fn str(&self, key: &str) -> Result<String, ApiError> {
        self.opt_str(key)?.ok_or_else(|| missing(key))
    }

    /// A required string that must not be empty.
    pub fn nonempty(&self, key: &str) -> Result<String, ApiError> {
        let s = self.str(key)?;
        if s.is_empty() {
            return Err(missing(key));
        }
        Ok(s)
    }

    /// The run id, accepting MLflow's legacy `run_uuid` too.
    pub fn run_id(&self) -> Result<String, ApiError> {
        match self.opt_str("run_id")?.filter(|s| !s.is_empty()) {
            Some(s) => Ok(s),
            None => self
                .opt_str("run_uuid")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("run_id")),
        }
    }

    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                        .map(|f| f as i64)
                })
                .map(Some)
                .ok_or_else(|| wrong(key, "an integer", &Value::Number(n.clone()))),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| wrong(key, "an integer", &Value::String(s.clone()))),
            Some(Value::Array(a)) if a.len() == 1 => {
                Req::object_fields(Map::from_iter([(key.to_string(), a[0].clone())])).opt_i64(key)
            }
            Some(v) => Err(wrong(key, "an integer", v)),
        }
    }

    pub fn i64(&self, key: &str) -> Result<i64, ApiError> {
        self.opt_i64(key)?.ok_or_else(|| missing(key))
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(wrong(key, "true or false", v)),
        }
    }

    /// A list of strings: a JSON array, a repeated query key, or one value.
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, ApiError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(wrong(key, "a list of strings", other)),
                })
                .collect(),
            // a single query parameter is a one-element list
            Some(Value::String(s)) if self.came_from_query(key) => Ok(vec![s.clone()]),
            Some(v) => Err(wrong(key, "a list of strings", v)),
        }
    }

    /// A list of JSON objects (e.g. tags, metrics).
    pub fn objects(&self, key: &str) -> Result<Vec<Req>, ApiError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::Object(o) => Ok(Req::object_fields(o.clone())),
                    other => Err(wrong(key, "a list of objects", other)),
                })
                .collect(),
            Some(v) => Err(wrong(key, "a list of objects", v)),
        }
    }

    /// Like [`Req::objects`], but moves the objects out instead of cloning
    /// them (the log-batch hot path).
    pub fn take_objects(&mut self, key: &str) -> Result<Vec<Req>, ApiError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    Value::Object(o) => Ok(Req::object_fields(o)),
                    other => Err(wrong(key, "a list of objects", &other)),
                })
                .collect(),
            Some(v) => Err(wrong(key, "a list of objects", &v)),
        }
    }

    pub fn object(&self, key: &str) -> Result<Option<Req>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(Req::object_fields(o.clone()))),
            Some(v) => Err(wrong(key, "an object", v)),
        }
    }

    /// A metric value: a JSON number, or "NaN" / "Infinity" / "-Infinity" /
    /// a numeric string.
    pub fn f64(&self, key: &str) -> Result<f64, ApiError> {
        match self.get(key) {
            None => Err(missing(key)),
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| wrong(key, "a number", &Value::Number(n.clone()))),
            Some(Value::String(s)) => {
                parse_float(s).ok_or_else(|| wrong(key, "a number", &Value::String(s.clone())))
            }
            Some(v) => Err(wrong(key, "a number", v)),
        }
    }

    /// An experiment id: a decimal string (or number).
    pub fn experiment_id(&self, key: &str) -> Result<i64, ApiError> {
        let s = self.str(key)?;
        parse_experiment_id(&s)
    }

    pub fn max_results(&self, key: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.opt_i64(key)? {
            None => Ok(default),
            Some(n) if n <= 0 => Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter '{key}': it must be at least 1"
            ))),
            Some(n) if n as u64 > max as u64 => Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter '{key}' supplied. It must be at most {max}"
            ))),
            Some(n) => Ok(n as usize),
        }
    }

    /// `[{key, value}]` pairs.
    pub fn tags(&self, key: &str) -> Result<Vec<store::Tag>, ApiError> {
        self.objects(key)?
            .into_iter()
            .map(|t| {
                Ok(store::Tag::new(
                    t.str("key")?,
                    t.opt_str("value")?.unwrap_or_default(),
                ))
            })
            .collect()
    }
}

pub fn parse_float(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok(),
    }
}

pub fn parse_experiment_id(s: &str) -> Result<i64, ApiError> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::not_found(format!("No Experiment with id={s} exists")))
}
