//! HTTP, under `/api/atelier`:
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/jobs/{id}/logs?from=<offset>&max_bytes=` | output lines from a byte offset: `{"lines": [{"at_ms", "stream", "text"}], "next", "done"}`; poll with `from=next` to follow |
//!
//! While the command runs the lines come from the executor; once the job
//! ended, from the log kept in the job's run (read in ranges, so a large log
//! never sits in memory whole). A job on an executor that keeps its logs
//! itself (Ray) is read from there after its end too, while it can be: the
//! run's copy is the fallback (its offsets differ from Ray's).

use std::sync::Arc;

use artifacts::{ArtifactPath, ArtifactStore};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use jobs::executor::{Executor, Handle, LogChunk, LogLine};
use serde_json::{Value, json};
use server::atelier_api::blocking;
use server::error::{ApiError, ApiResult};
use server::routes::{Access, Routes};
use store::MetadataStore;

use crate::runner::LOG_ARTIFACT;

#[derive(Clone)]
pub struct UserJobs {
    pub store: Arc<dyn MetadataStore>,
    pub artifacts: ArtifactStore,
    pub executor: Arc<dyn Executor>,
}

pub fn router(u: UserJobs) -> Routes {
    Routes::new()
        .get("/api/atelier/jobs/{id}/logs", Access::Read, logs)
        .with_state(u)
}

#[derive(serde::Deserialize)]
struct LogQuery {
    from: Option<u64>,
    max_bytes: Option<usize>,
}

/// Most bytes of log one call returns.
const MAX_LOG_BYTES: usize = 4 << 20;

async fn logs(
    State(u): State<UserJobs>,
    Extension(ws): Extension<server::workspace::Ws>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Path(id) = p.map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("bad query: {e}")))?;
    let from = q.from.unwrap_or(0);
    let max = q.max_bytes.unwrap_or(1 << 20).clamp(1024, MAX_LOG_BYTES);
    let store = u.store.clone();
    let job = blocking(move || {
        server::workspace::job_in(store.as_ref(), &ws.0, &id).map_err(ApiError::from)
    })
    .await?;
    if !["processing", "training", "notebook"].contains(&job.kind.as_str()) {
        return Err(ApiError::invalid(format!(
            "job '{}' is a {} job; only processing and training jobs have command output",
            job.id, job.kind
        )));
    }
    let done = job.status.is_terminal();
    // from the executor while the command runs; afterwards from the run's copy
    // — except that an executor which keeps logs itself (Ray) is asked first
    // then too: its offsets are not the copy's, and a reader that followed
    // the job while it ran goes on from where it was
    if let Some(h) = job
        .handle
        .as_deref()
        .and_then(|h| serde_json::from_str::<Handle>(h).ok())
        && (!done || h.executor != jobs::local::NAME)
    {
        let ex = u.executor.clone();
        let got = blocking(move || {
            ex.logs(&h, from, max)
                .map_err(|e| ApiError::invalid(e.to_string()))
        })
        .await;
        if let Ok(chunk) = got {
            return Ok(Json(answer(chunk, done)));
        }
    }
    // else from the run's copy
    let progress: Value = serde_json::from_str(&job.progress).unwrap_or(Value::Null);
    let Some(run_id) = progress["run_id"].as_str().map(str::to_string) else {
        return Ok(Json(answer(
            LogChunk {
                lines: vec![],
                next: from,
            },
            done,
        )));
    };
    let store = u.store.clone();
    let root = blocking(move || {
        let run = store.get_run(&run_id).map_err(ApiError::from)?;
        crate::spec::artifact_of_uri(store.as_ref(), &run.info.artifact_uri, 0)
            .map_err(ApiError::invalid)
    })
    .await?;
    let path: ArtifactPath = root.join(LOG_ARTIFACT)?;
    // only the part asked for: a log may be far larger than memory wants
    let bytes = match u.artifacts.read_range(&path, from, max as u64 + 1).await {
        Ok(b) => b,
        Err(artifacts::ArtifactError::NotFound(_)) => {
            return Ok(Json(answer(
                LogChunk {
                    lines: vec![],
                    next: from,
                },
                done,
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut chunk = chunk_of(&bytes, 0, max);
    chunk.next += from;
    Ok(Json(answer(chunk, done)))
}

fn answer(c: LogChunk, done: bool) -> Value {
    json!({"lines": c.lines, "next": c.next, "done": done})
}

/// Whole JSON lines of `bytes` from `from`, up to `max` bytes.
fn chunk_of(bytes: &[u8], from: u64, max: usize) -> LogChunk {
    let start = (from as usize).min(bytes.len());
    let mut lines = Vec::new();
    let mut pos = start;
    for raw in bytes[start..].split_inclusive(|b| *b == b'\n') {
        if !raw.ends_with(b"\n") || (pos - start + raw.len() > max && !lines.is_empty()) {
            break;
        }
        pos += raw.len();
        if let Ok(l) = serde_json::from_slice::<LogLine>(raw) {
            lines.push(l);
        }
    }
    LogChunk {
        lines,
        next: pos as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_chunks_are_whole_lines_and_resume_where_they_stopped() {
        let mut b = Vec::new();
        for i in 0..5 {
            b.extend_from_slice(
                format!("{{\"at_ms\": {i}, \"stream\": \"stdout\", \"text\": \"line {i}\"}}\n")
                    .as_bytes(),
            );
        }
        b.extend_from_slice(b"{\"at_ms\": 9, \"stream\"");
        let all = chunk_of(&b, 0, 1 << 20);
        assert_eq!(all.lines.len(), 5);
        let first = chunk_of(&b, 0, 60);
        assert_eq!(first.lines.len(), 1);
        let rest = chunk_of(&b, first.next, 1 << 20);
        assert_eq!(rest.lines[0].text, "line 1");
        assert_eq!(rest.next, all.next, "a half-written last line waits");
    }
}
