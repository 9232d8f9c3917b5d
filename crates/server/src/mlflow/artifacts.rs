//! MLflow's proxied artifact API (`/api/2.0/mlflow-artifacts/artifacts`),
//! `runs/artifacts/list` and `server-info`. Paths are relative to the
//! artifact root and validated by `artifacts::ArtifactPath` before any IO.

use artifacts::ArtifactPath;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use serde_json::{Value, json};

use super::JsonResult;
use crate::AppState;
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::req::Req;
use crate::routes::{Access, BodyKind, Routes};
use crate::workspace::Ws;

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

/// Refuse, as missing, a path in the artifact store that belongs to another
/// project than `ws` (the rule is [`artifacts::projects`]'s: an
/// experiment's artifacts by its id, `projects/<name>/…` that project's,
/// everything else the default project's; the root and the list of
/// projects a server administrator's).
pub(super) fn owned_path(
    st: &dyn store::MetadataStore,
    ws: &str,
    admin: bool,
    path: &ArtifactPath,
) -> store::Result<()> {
    if crate::workspace::artifact_allowed(st, ws, admin, path) {
        Ok(())
    } else {
        Err(store::StoreError::NotFound(format!(
            "No such file or directory: '{}'",
            path.as_str()
        )))
    }
}

/// [`owned_path`] on the blocking pool.
async fn check_path(
    s: &AppState,
    req_ws: &str,
    who: Option<&Identity>,
    path: &ArtifactPath,
) -> ApiResult<()> {
    let (ws, path) = (req_ws.to_string(), path.clone());
    let admin = who.is_some_and(|w| w.admin);
    s.db(move |st| owned_path(st, &ws, admin, &path)).await
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

async fn list(
    State(s): State<AppState>,
    Extension(who): Extension<Identity>,
    req: Req,
) -> JsonResult {
    let dir = ArtifactPath::parse(&req.opt_str("path")?.unwrap_or_default())?;
    check_path(&s, req.workspace(), Some(&who), &dir).await?;
    let entries = s.artifacts.list(&dir).await?;
    if entries.is_empty() {
        return Ok(Json(json!({})));
    }
    Ok(Json(json!({"files": file_infos(entries, "")})))
}

/// The Content-Type MLflow's server sends for an artifact
/// (`mlflow.utils.mime_type_utils._guess_mime_type`): `text/plain` for its
/// text extensions (and `MLmodel`/`MLproject`), else what Python's
/// `mimetypes` guesses, else `application/octet-stream`. One deliberate
/// difference: HTML is sent as `text/plain`, never rendered on our origin.
fn content_type(path: &str) -> &'static str {
    const TEXT: [&str; 26] = [
        "txt",
        "log",
        "err",
        "cfg",
        "conf",
        "cnf",
        "cf",
        "ini",
        "properties",
        "prop",
        "hocon",
        "toml",
        "yaml",
        "yml",
        "xml",
        "json",
        "js",
        "py",
        "py3",
        "csv",
        "tsv",
        "md",
        "rst",
        "ipynb",
        "MLmodel",
        "MLproject",
    ];
    let name = path.rsplit('/').next().unwrap_or_default();
    // Python's os.path.splitext: a leading dot does not start an extension
    let ext = match name.trim_start_matches('.').rsplit_once('.') {
        Some((_, e)) => e,
        None => name,
    };
    if TEXT.contains(&ext) {
        return "text/plain";
    }
    // mimetypes.guess_type looks at the last suffix, case-insensitively
    // (".tar.gz" is a tar whose encoding is gzip)
    let lower = name.to_ascii_lowercase();
    let last = match lower.rsplit_once('.') {
        Some((stem, "gz" | "bz2" | "xz" | "br")) => {
            stem.rsplit_once('.').map(|(_, e)| e).unwrap_or_default()
        }
        Some((_, e)) => e,
        None => "",
    };
    match last {
        "html" | "htm" | "xhtml" | "shtml" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "ico" => "image/vnd.microsoft.icon",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "tar" | "tgz" => "application/x-tar",
        "h5" => "application/x-hdf5",
        "css" => "text/css",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "wav" => "audio/x-wav",
        "ogg" => "audio/ogg",
        _ => "application/octet-stream",
    }
}

async fn download(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Extension(who): Extension<Identity>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let path = path_of(p)?;
    check_path(&s, &ws.0, Some(&who), &path).await?;
    send_file(&s, &path).await
}

/// Stream one file of the artifact store as an attachment, with MLflow's
/// Content-Type, Content-Disposition and `X-Content-Type-Options: nosniff`.
/// A directory is refused as MLflow refuses it (400).
pub(super) async fn send_file(s: &AppState, path: &ArtifactPath) -> ApiResult<Response> {
    let d = match s.artifacts.get(path).await {
        Ok(d) => d,
        Err(artifacts::ArtifactError::NotFound(msg)) => {
            if !path.is_root() && !s.artifacts.list(path).await?.is_empty() {
                return Err(ApiError::invalid(format!(
                    "Artifact path refers to a directory, not a file: '{}'",
                    path.as_str()
                )));
            }
            return Err(ApiError::not_found(msg));
        }
        Err(e) => return Err(e.into()),
    };
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
    Extension(ws): Extension<Ws>,
    Extension(who): Extension<Identity>,
    p: Result<Path<String>, PathRejection>,
    req: Request,
) -> JsonResult {
    let path = path_of(p)?;
    check_path(&s, &ws.0, Some(&who), &path).await?;
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

async fn remove(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    Extension(who): Extension<Identity>,
    p: Result<Path<String>, PathRejection>,
) -> JsonResult {
    let path = path_of(p)?;
    check_path(&s, &ws.0, Some(&who), &path).await?;
    s.artifacts.delete(&path).await?;
    Ok(Json(json!({})))
}

/// Where a `mlflow-artifacts:/` URI (a run's or a logged model's artifact
/// root) points in the artifact store. Other locations are outside this
/// server's store and are not read through it.
pub(super) fn proxied_root(uri: &str) -> ApiResult<ArtifactPath> {
    let Some(root) = uri.strip_prefix(URI_SCHEME) else {
        return Err(ApiError::invalid(format!(
            "The artifacts live at '{uri}', outside this server's artifact store; read them with the client directly"
        )));
    };
    Ok(ArtifactPath::parse(root)?)
}

/// A path from a client, checked as MLflow's `validate_path_is_safe` checks
/// it (and then as every artifact path is): a refusal is a 400 whose message
/// starts with MLflow's "Invalid path".
pub(super) fn safe_path(raw: &str) -> ApiResult<ArtifactPath> {
    if raw.contains('#') {
        return Err(ApiError::invalid(format!(
            "Invalid path '{}': '#' is not allowed",
            raw.escape_debug()
        )));
    }
    ArtifactPath::parse(raw).map_err(|e| {
        ApiError::invalid(
            e.to_string()
                .replacen("Invalid artifact path", "Invalid path", 1),
        )
    })
}

/// `runs/artifacts/list`: listing relative to a run's artifact root, which
/// the requested path may not leave.
pub async fn list_for_run(State(s): State<AppState>, req: Req) -> JsonResult {
    let run_id = req.run_id()?;
    let sub = req.opt_str("path")?.unwrap_or_default();
    let run =
        crate::workspace::on_run(&s, req.workspace(), run_id, |st, id| st.get_run(id)).await?;
    let root_uri = run.info.artifact_uri.clone();
    let root = proxied_root(&root_uri)?;
    let rel = ArtifactPath::parse(&sub)?;
    list_under(&s, root_uri, &root, &rel).await
}

/// `{root_uri, files}` for the directory `rel` below `root`.
async fn list_under(
    s: &AppState,
    root_uri: String,
    root: &ArtifactPath,
    rel: &ArtifactPath,
) -> JsonResult {
    let dir = root.join(rel.as_str())?;
    let entries = s.artifacts.list(&dir).await?;
    let mut out = json!({"root_uri": root_uri});
    if !entries.is_empty() {
        out["files"] = file_infos(entries, rel.as_str());
    }
    Ok(Json(out))
}

/// `GET /get-artifact?run_id=…&path=…` (or `run_uuid`): one file of a run's
/// artifacts, as the MLflow UI downloads it.
pub async fn get_run_artifact(State(s): State<AppState>, req: Req) -> ApiResult<Response> {
    let raw = req.str("path")?;
    let rel = safe_path(&raw)?;
    let run_id = req.run_id()?;
    let run =
        crate::workspace::on_run(&s, req.workspace(), run_id, |st, id| st.get_run(id)).await?;
    let root = proxied_root(&run.info.artifact_uri)?;
    send_file(&s, &root.join(rel.as_str())?).await
}

/// MLflow's limit on `upload-artifact` bodies.
const UI_UPLOAD_MAX: u64 = 10 * 1024 * 1024;

/// `POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=…&path=…`: the raw
/// body becomes the file `path` in the run's artifacts (at most 10 MB, as
/// MLflow's UI upload). Answers an empty body, as MLflow does.
pub async fn upload_run_artifact(
    State(s): State<AppState>,
    Extension(ws): Extension<Ws>,
    req: Request,
) -> ApiResult<Response> {
    // Flask's `request.args.get`: the first value of a key
    let query = req.uri().query().unwrap_or_default().to_string();
    let first = |key: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let Some(run_id) = first("run_uuid").filter(|r| !r.is_empty()) else {
        return Err(ApiError::invalid("Request must specify run_uuid."));
    };
    let Some(raw) = first("path").filter(|p| !p.is_empty()) else {
        return Err(ApiError::invalid("Request must specify path."));
    };
    let rel = safe_path(&raw)?;
    if rel.is_root() {
        return Err(ApiError::invalid("Request must specify path."));
    }
    let too_large = || ApiError::invalid("Artifact size is too large. Max size is 10MB.");
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > UI_UPLOAD_MAX) {
        return Err(too_large());
    }
    let limit = usize::try_from(UI_UPLOAD_MAX + 1).unwrap_or(usize::MAX);
    let data = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            if e.to_string().contains("length limit") {
                too_large()
            } else {
                ApiError::new(
                    ErrorCode::MalformedRequest,
                    format!("Could not read the request body: {e}"),
                )
            }
        })?;
    if data.is_empty() {
        return Err(ApiError::invalid("Request must specify data."));
    }
    if data.len() as u64 > UI_UPLOAD_MAX {
        return Err(too_large());
    }
    let max = s.max_artifact_bytes;
    if data.len() as u64 > max {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "Artifact of {} bytes exceeds the upload limit of {max} bytes (--max-artifact-bytes)",
                data.len()
            ),
        ));
    }
    let run = crate::workspace::on_run(&s, &ws.0, run_id, |st, id| st.get_run(id)).await?;
    let root = proxied_root(&run.info.artifact_uri)?;
    s.artifacts
        .put_bytes(&root.join(rel.as_str())?, data)
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        "",
    )
        .into_response())
}

/// Logged model `id` of the request's workspace (another's answers as missing).
async fn logged_model(s: &AppState, req: &Req, id: String) -> ApiResult<store::LoggedModel> {
    let ws = crate::workspace::of(req);
    s.db(move |st| {
        crate::workspace::logged_model_in(st, &ws, &id)?;
        st.get_logged_model(&id)
    })
    .await
}

/// `GET …/logged-models/{model_id}/artifacts/files?artifact_file_path=…`:
/// one file of a logged model's artifacts.
pub async fn logged_model_file(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    req: Req,
) -> ApiResult<Response> {
    let Some(raw) = req.opt_str("artifact_file_path")?.filter(|p| !p.is_empty()) else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "Request must include the \"artifact_file_path\" query parameter.",
        ));
    };
    let rel = safe_path(&raw)?;
    let model = logged_model(&s, &req, model_id).await?;
    let root = proxied_root(&model.artifact_uri)?;
    send_file(&s, &root.join(rel.as_str())?).await
}

/// `GET …/logged-models/{model_id}/artifacts/directories?artifact_directory_path=…`:
/// a logged model's artifacts, one directory at a time (`ListLoggedModelArtifacts`).
pub async fn list_logged_model(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    req: Req,
) -> JsonResult {
    let rel = match req.opt_str("artifact_directory_path")? {
        Some(raw) => safe_path(&raw)?,
        None => ArtifactPath::parse("")?,
    };
    let model = logged_model(&s, &req, model_id).await?;
    let root = proxied_root(&model.artifact_uri)?;
    list_under(&s, model.artifact_uri, &root, &rel).await
}

pub async fn server_info() -> JsonResult {
    Ok(Json(json!({
        "store_type": "SqlStore",
        // projects are workspaces (crate::workspace); the client refuses to name
        // one unless this says so
        "workspaces_enabled": true,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "server": "atelier",
        "version": env!("CARGO_PKG_VERSION"),
    })))
}
