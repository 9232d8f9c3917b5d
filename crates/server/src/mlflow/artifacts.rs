//! MLflow's proxied artifact API (`/api/2.0/mlflow-artifacts/artifacts`),
//! `runs/artifacts/list` and `server-info`. Paths are relative to the
//! artifact root and validated by `artifacts::ArtifactPath` before any IO.

use artifacts::ArtifactPath;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use super::JsonResult;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::req::Req;
use crate::routes::{Access, BodyKind, Routes};

pub const URI_SCHEME: &str = "mlflow-artifacts:/";

pub fn proxy_routes() -> Routes<AppState> {
    Routes::new()
        .get("/artifacts", Access::Read, list)
        .get("/artifacts/", Access::Read, list)
        .get("/artifacts/{*path}", Access::Read, download)
        .add(
            Method::PUT,
            "/artifacts/{*path}",
            Access::Write,
            BodyKind::Upload,
            upload,
        )
        .delete("/artifacts/{*path}", Access::Write, remove)
}

fn path_of(p: Result<Path<String>, PathRejection>) -> ApiResult<ArtifactPath> {
    let Path(raw) = p.map_err(|e| ApiError::invalid(format!("Invalid artifact path: {e}")))?;
    Ok(ArtifactPath::parse(&raw)?)
}

fn file_infos(entries: Vec<artifacts::Entry>, prefix: &str) -> Value {
    Value::Array(
        entries
            .into_iter()
            .map(|e| {
                let path = if prefix.is_empty() {
                    e.name
                } else {
                    format!("{prefix}/{}", e.name)
                };
                let mut o = json!({"path": path, "is_dir": e.is_dir});
                if let Some(sz) = e.size {
                    o["file_size"] = json!(sz);
                }
                o
            })
            .collect(),
    )
}

async fn list(State(s): State<AppState>, req: Req) -> JsonResult {
    let dir = ArtifactPath::parse(&req.opt_str("path")?.unwrap_or_default())?;
    let entries = s.artifacts.list(&dir).await?;
    if entries.is_empty() {
        return Ok(Json(json!({})));
    }
    Ok(Json(json!({"files": file_infos(entries, "")})))
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "txt" | "log" | "md" | "py" | "yaml" | "yml" | "toml" | "cfg" | "ini" | "sh" => {
            "text/plain; charset=utf-8"
        }
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "html" | "htm" => "text/plain; charset=utf-8", // never render user HTML on our origin
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

async fn download(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let path = path_of(p)?;
    let d = s.artifacts.get(&path).await?;
    let ct = content_type(path.as_str());
    let stream = d.stream.map(|r| r.map_err(std::io::Error::other));
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.size));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if ct == "image/svg+xml" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("script-src 'none'; sandbox"),
        );
    }
    let name = path.as_str().rsplit('/').next().unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&content_disposition(name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `attachment; filename=…` as MLflow's server sends it (RFC 6266): the name
/// as a token or quoted string, and for a non-ASCII name an ASCII fallback
/// plus `filename*=UTF-8''` with the name percent-encoded (RFC 5987).
fn content_disposition(name: &str) -> String {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let header_value = |s: &str| {
        if !s.is_empty() && s.chars().all(tchar) {
            s.to_string()
        } else {
            let mut quoted = String::from('"');
            for c in s.chars().filter(|c| !c.is_ascii_control()) {
                if c == '"' || c == '\\' {
                    quoted.push('\\');
                }
                quoted.push(c);
            }
            quoted.push('"');
            quoted
        }
    };
    if name.is_ascii() && !name.chars().any(|c| c.is_ascii_control()) {
        return format!("attachment; filename={}", header_value(name));
    }
    // compatibility decomposition first, so "ï" falls back to "i", not to nothing
    let fallback: String = icu_normalizer::DecomposingNormalizerBorrowed::new_nfkd()
        .normalize(name)
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    let fallback = if fallback.is_empty() {
        "download".to_string()
    } else {
        fallback
    };
    let attr_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b);
    let encoded: String = name
        .bytes()
        .map(|b| {
            if attr_char(b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "attachment; filename={}; filename*=UTF-8''{encoded}",
        header_value(&fallback)
    )
}

async fn upload(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    req: Request,
) -> JsonResult {
    let path = path_of(p)?;
    let max = s.max_artifact_bytes;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "Artifact of {len} bytes exceeds the upload limit of {max} bytes (--max-artifact-bytes)"
            ),
        ));
    }
    let mut seen = 0u64;
    let stream = req.into_body().into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(|e| e.to_string())?;
        seen += chunk.len() as u64;
        if seen > max {
            return Err(format!("the upload exceeds the limit of {max} bytes"));
        }
        Ok(chunk)
    });
    s.artifacts.put_stream(&path, Box::pin(stream)).await?;
    Ok(Json(json!({})))
}

async fn remove(State(s): State<AppState>, p: Result<Path<String>, PathRejection>) -> JsonResult {
    let path = path_of(p)?;
    s.artifacts.delete(&path).await?;
    Ok(Json(json!({})))
}

/// `runs/artifacts/list`: listing relative to a run's artifact root, which
/// the requested path may not leave.
pub async fn list_for_run(State(s): State<AppState>, req: Req) -> JsonResult {
    let run_id = req.run_id()?;
    let sub = req.opt_str("path")?.unwrap_or_default();
    let run = s.db(move |st| st.get_run(&run_id)).await?;
    let root_uri = run.info.artifact_uri.clone();
    let Some(root) = root_uri.strip_prefix(URI_SCHEME) else {
        return Err(ApiError::invalid(format!(
            "The run's artifacts live at '{root_uri}', outside this server's artifact store; list them with the client directly"
        )));
    };
    let root = ArtifactPath::parse(root)?;
    let rel = ArtifactPath::parse(&sub)?;
    let dir = root.join(rel.as_str())?;
    let entries = s.artifacts.list(&dir).await?;
    let mut out = json!({"root_uri": root_uri});
    if !entries.is_empty() {
        out["files"] = file_infos(entries, rel.as_str());
    }
    Ok(Json(out))
}

pub async fn server_info() -> JsonResult {
    Ok(Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "server": "atelier",
        "version": env!("CARGO_PKG_VERSION"),
    })))
}
