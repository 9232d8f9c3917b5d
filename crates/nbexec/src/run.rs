//! Running one code cell: the execute request, IOPub outputs turned into
//! nbformat outputs as nbclient does, the per-cell timeout, and a kernel
//! that dies on the way.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::time::{sleep_until, timeout};

use crate::kernel::{Kernel, Msg, wait_exit};
use crate::notebook::{self, cells_mut, execution_timestamp, object_mut};

/// After `execute_reply`, how long to wait for the cell's `status: idle` on
/// IOPub (nbclient's `iopub_timeout`).
const IOPUB_TIMEOUT: Duration = Duration::from_secs(4);
/// After interrupting a cell that timed out, how long to wait for the kernel
/// to report the interruption before giving up on it.
const INTERRUPT_GRACE: Duration = Duration::from_secs(3);
/// papermill's `autosave_cell_every`: save a long-running cell's partial
/// outputs at most this often.
const AUTOSAVE_EVERY: Duration = Duration::from_secs(30);

/// How a cell's execution ended.
#[derive(Debug)]
pub(crate) enum CellEnd {
    /// `execute_reply` with status `ok` (or `aborted`).
    Ok,
    /// `execute_reply` with status `error`.
    Error { ename: String, evalue: String },
    /// Still running after the cell timeout; the kernel was interrupted.
    Timeout,
    /// The kernel process exited.
    Died(Option<ExitStatus>),
    /// A socket failed.
    Lost(String),
}

/// The caller's `save`, with papermill's autosave throttle.
pub(crate) struct Saver<'a> {
    pub f: &'a mut (dyn FnMut(&Value) + Send),
    pub last: Instant,
}

impl Saver<'_> {
    pub(crate) fn save(&mut self, nb: &Value) {
        (self.f)(nb);
        self.last = Instant::now();
    }

    fn autosave(&mut self, nb: &Value) {
        if self.last.elapsed() >= AUTOSAVE_EVERY {
            self.save(nb);
        }
    }
}

/// Output bookkeeping across cells (nbclient's `_display_id_map`) and within
/// one (`clear_output(wait=True)`).
#[derive(Default)]
pub(crate) struct OutputState {
    display_ids: HashMap<String, BTreeMap<usize, Vec<usize>>>,
    clear_before_next_output: bool,
}

fn outputs_mut(nb: &mut Value, index: usize) -> Option<&mut Vec<Value>> {
    let cell = cells_mut(nb).get_mut(index)?;
    if !cell.get("outputs").is_some_and(Value::is_array) {
        cell["outputs"] = json!([]);
    }
    cell.get_mut("outputs").and_then(Value::as_array_mut)
}

fn record_timing(nb: &mut Value, index: usize, key: &str, date: Option<&str>) {
    if let Some(cell) = cells_mut(nb).get_mut(index) {
        let meta = object_mut(cell, "metadata");
        let exec = meta.entry("execution").or_insert_with(|| json!({}));
        if !exec.is_object() {
            *exec = json!({});
        }
        exec[key] = json!(execution_timestamp(date));
    }
}

/// nbformat's `output_from_msg`.
fn output_from_msg(msg_type: &str, content: &Value) -> Option<Value> {
    let field = |key: &str, default: Value| content.get(key).cloned().unwrap_or(default);
    Some(match msg_type {
        "execute_result" => json!({
            "output_type": "execute_result",
            "metadata": field("metadata", json!({})),
            "data": field("data", json!({})),
            "execution_count": field("execution_count", Value::Null),
        }),
        "display_data" => json!({
            "output_type": "display_data",
            "metadata": field("metadata", json!({})),
            "data": field("data", json!({})),
        }),
        "stream" => json!({
            "output_type": "stream",
            "name": field("name", json!("stdout")),
            "text": field("text", json!("")),
        }),
        "error" => json!({
            "output_type": "error",
            "ename": field("ename", json!("")),
            "evalue": field("evalue", json!("")),
            "traceback": field("traceback", json!([])),
        }),
        _ => return None,
    })
}

impl OutputState {
    fn clear_display_id_mapping(&mut self, index: usize) {
        for cells in self.display_ids.values_mut() {
            if let Some(outputs) = cells.get_mut(&index) {
                outputs.clear();
            }
        }
    }

    /// Replace data and metadata of every output shown with `display_id`.
    fn update_display(&self, nb: &mut Value, display_id: &str, content: &Value) {
        let Some(targets) = self.display_ids.get(display_id) else {
            tracing::debug!(display_id, "update for an unknown display id");
            return;
        };
        let data = content.get("data").cloned().unwrap_or_else(|| json!({}));
        let metadata = content
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| json!({}));
        for (&cell, indices) in targets {
            let Some(outputs) = outputs_mut(nb, cell) else {
                continue;
            };
            for &i in indices {
                if let Some(out) = outputs.get_mut(i) {
                    out["data"] = data.clone();
                    out["metadata"] = metadata.clone();
                }
            }
        }
    }

    /// nbclient's `process_message` for an IOPub message of the running
    /// cell. Returns true on `status: idle`.
    fn process(&mut self, nb: &mut Value, index: usize, msg: &Msg) -> bool {
        let content = &msg.content;
        let msg_type = msg.msg_type.as_str();
        let display_id = content
            .get("transient")
            .and_then(|t| t.get("display_id"))
            .and_then(Value::as_str);
        if let Some(id) = display_id
            && matches!(
                msg_type,
                "execute_result" | "display_data" | "update_display_data"
            )
        {
            self.update_display(nb, id, content);
        }
        if let Some(count) = content.get("execution_count")
            && let Some(cell) = cells_mut(nb).get_mut(index)
        {
            cell["execution_count"] = count.clone();
        }
        match msg_type {
            "status" => match content.get("execution_state").and_then(Value::as_str) {
                Some("idle") => {
                    record_timing(nb, index, "iopub.status.idle", msg.date.as_deref());
                    return true;
                }
                Some("busy") => record_timing(nb, index, "iopub.status.busy", msg.date.as_deref()),
                _ => {}
            },
            "execute_input" => {
                record_timing(nb, index, "iopub.execute_input", msg.date.as_deref());
            }
            "clear_output" => {
                if content
                    .get("wait")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                {
                    self.clear_before_next_output = true;
                } else {
                    if let Some(outputs) = outputs_mut(nb, index) {
                        outputs.clear();
                    }
                    self.clear_display_id_mapping(index);
                }
            }
            "update_display_data" => {}
            t if t.starts_with("comm") => {}
            _ => match output_from_msg(msg_type, content) {
                Some(out) => {
                    if self.clear_before_next_output {
                        if let Some(outputs) = outputs_mut(nb, index) {
                            outputs.clear();
                        }
                        self.clear_display_id_mapping(index);
                        self.clear_before_next_output = false;
                    }
                    if let Some(outputs) = outputs_mut(nb, index) {
                        if let Some(id) = display_id {
                            self.display_ids
                                .entry(id.to_owned())
                                .or_default()
                                .entry(index)
                                .or_default()
                                .push(outputs.len());
                        }
                        outputs.push(out);
                    }
                }
                None => tracing::debug!(msg_type, "unhandled iopub message"),
            },
        }
        false
    }
}

/// Drop everything up to the last carriage return of each line that is not
/// followed by a newline (what a terminal shows), and apply backspaces.
fn collapse_control_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let bytes = body.as_bytes();
        let cut = (0..bytes.len())
            .rev()
            .find(|&i| bytes[i] == b'\r' && i + 1 < bytes.len())
            .map_or(0, |i| i + 1);
        let mut kept: Vec<char> = Vec::new();
        for c in body[cut..].chars() {
            if c == '\x08' && kept.last().is_some_and(|&k| k != '\x08') {
                kept.pop();
                continue;
            }
            kept.push(c);
        }
        out.extend(kept);
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Merge consecutive stream outputs of the same name (as JupyterLab does
/// when it shows and saves them).
pub(crate) fn coalesce_streams(outputs: &mut Vec<Value>) {
    let stream_name = |o: &Value| -> Option<String> {
        (o.get("output_type").and_then(Value::as_str) == Some("stream"))
            .then(|| o.get("name").and_then(Value::as_str).map(str::to_owned))
            .flatten()
    };
    let mut merged: Vec<Value> = Vec::with_capacity(outputs.len());
    for out in outputs.drain(..) {
        if let (Some(name), Some(last)) = (stream_name(&out), merged.last_mut())
            && stream_name(last).as_deref() == Some(name.as_str())
        {
            let more = out.get("text").and_then(Value::as_str).unwrap_or("");
            let text = format!(
                "{}{more}",
                last.get("text").and_then(Value::as_str).unwrap_or("")
            );
            last["text"] = json!(text);
            continue;
        }
        merged.push(out);
    }
    for out in &mut merged {
        if stream_name(out).is_some() {
            let text =
                collapse_control_chars(out.get("text").and_then(Value::as_str).unwrap_or(""));
            out["text"] = json!(text);
        }
    }
    *outputs = merged;
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Execute code cell `index` and collect its outputs into the notebook.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_cell(
    kernel: &mut Kernel,
    nb: &mut Value,
    index: usize,
    execution_count: i64,
    cell_timeout: Option<Duration>,
    coalesce: bool,
    state: &mut OutputState,
    saver: &mut Saver<'_>,
) -> CellEnd {
    let Some(cell) = cells_mut(nb).get_mut(index) else {
        return CellEnd::Ok;
    };
    let code = notebook::source(cell);
    let stop_on_error = !notebook::has_tag(cell, "raises-exception");
    object_mut(cell, "metadata").insert("execution".into(), json!({}));
    cell["outputs"] = json!([]);
    state.clear_before_next_output = false;

    let msg_id = match kernel.execute(&code, stop_on_error).await {
        Ok(id) => id,
        Err(e) => return CellEnd::Lost(e),
    };
    let sent = tokio::time::Instant::now();
    let timeout_at = cell_timeout.map(|t| sent + t);
    let mut reply: Option<Value> = None;
    let mut idle = false;
    let mut timed_out = false;
    let mut give_up_at: Option<tokio::time::Instant> = None;
    let mut iopub_deadline: Option<tokio::time::Instant> = None;
    while reply.is_none() || !idle {
        tokio::select! {
            m = kernel.iopub_rx.recv() => match m {
                Some(Ok(msg)) => {
                    if msg.parent_id.as_deref() == Some(msg_id.as_str()) {
                        idle |= state.process(nb, index, &msg);
                        saver.autosave(nb);
                    }
                }
                Some(Err(e)) => return CellEnd::Lost(e),
                None => return CellEnd::Lost("the iopub channel closed".into()),
            },
            m = kernel.shell_rx.recv() => match m {
                Some(Ok(msg)) => {
                    if msg.parent_id.as_deref() == Some(msg_id.as_str())
                        && msg.msg_type == "execute_reply"
                    {
                        record_timing(nb, index, "shell.execute_reply", msg.date.as_deref());
                        reply = Some(msg.content);
                        iopub_deadline = Some(tokio::time::Instant::now() + IOPUB_TIMEOUT);
                    }
                }
                Some(Err(e)) => return CellEnd::Lost(e),
                None => return CellEnd::Lost("the shell channel closed".into()),
            },
            status = wait_exit(&mut kernel.exit_rx) => {
                drain_iopub(kernel, nb, index, &msg_id, state).await;
                return CellEnd::Died(status);
            }
            _ = sleep_until_opt(timeout_at), if !timed_out && reply.is_none() => {
                tracing::warn!(cell = index, timeout = ?cell_timeout, "cell timed out; interrupting the kernel");
                kernel.interrupt().await;
                timed_out = true;
                give_up_at = Some(tokio::time::Instant::now() + INTERRUPT_GRACE);
            }
            _ = sleep_until_opt(give_up_at) => {
                tracing::warn!(cell = index, "the kernel did not report the interruption in time");
                break;
            }
            _ = sleep_until_opt(iopub_deadline), if !idle => {
                tracing::warn!(cell = index, "timeout waiting for IOPub output after execute_reply");
                break;
            }
        }
    }
    if timed_out {
        return CellEnd::Timeout;
    }
    if let Some(cell) = cells_mut(nb).get_mut(index) {
        cell["execution_count"] = json!(execution_count);
    }
    if coalesce && let Some(outputs) = outputs_mut(nb, index) {
        coalesce_streams(outputs);
    }
    let reply = reply.unwrap_or(Value::Null);
    if reply.get("status").and_then(Value::as_str) == Some("error") {
        let text = |k: &str| {
            reply
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        CellEnd::Error {
            ename: text("ename"),
            evalue: text("evalue"),
        }
    } else {
        CellEnd::Ok
    }
}

/// Outputs already on their way when the kernel died.
async fn drain_iopub(
    kernel: &mut Kernel,
    nb: &mut Value,
    index: usize,
    msg_id: &str,
    state: &mut OutputState,
) {
    let until = Instant::now() + Duration::from_millis(200);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match timeout(left.min(Duration::from_millis(50)), kernel.iopub_rx.recv()).await {
            Ok(Some(Ok(msg))) => {
                if msg.parent_id.as_deref() == Some(msg_id) {
                    state.process(nb, index, &msg);
                }
            }
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(msg_type: &str, content: Value) -> Msg {
        Msg {
            msg_type: msg_type.into(),
            parent_id: Some("p".into()),
            date: Some("2026-01-02T03:04:05.678901Z".into()),
            content,
        }
    }

    fn nb() -> Value {
        json!({"cells": [
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": ""},
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": ""}
        ]})
    }

    #[test]
    fn collects_outputs_like_nbclient() {
        let mut state = OutputState::default();
        let mut n = nb();
        state.process(
            &mut n,
            0,
            &msg("status", json!({"execution_state": "busy"})),
        );
        state.process(
            &mut n,
            0,
            &msg("execute_input", json!({"code": "", "execution_count": 7})),
        );
        state.process(
            &mut n,
            0,
            &msg("stream", json!({"name": "stdout", "text": "a\n"})),
        );
        state.process(
            &mut n,
            0,
            &msg(
                "display_data",
                json!({
            "data": {"text/plain": "v1"}, "metadata": {}, "transient": {"display_id": "d"}}),
            ),
        );
        state.process(
            &mut n,
            0,
            &msg(
                "execute_result",
                json!({
            "data": {"text/plain": "3"}, "metadata": {}, "execution_count": 7}),
            ),
        );
        assert!(state.process(
            &mut n,
            0,
            &msg("status", json!({"execution_state": "idle"}))
        ));
        let cell = &n["cells"][0];
        assert_eq!(cell["execution_count"], 7);
        assert_eq!(cell["outputs"].as_array().map(Vec::len), Some(3));
        assert_eq!(cell["outputs"][2]["execution_count"], 7);
        assert_eq!(
            cell["metadata"]["execution"]["iopub.status.busy"],
            "2026-01-02T03:04:05.678901Z"
        );
        assert!(cell["outputs"][1].get("transient").is_none());

        // A later cell updates the display shown by the first one.
        state.process(
            &mut n,
            1,
            &msg(
                "update_display_data",
                json!({
            "data": {"text/plain": "v2"}, "metadata": {"m": 1}, "transient": {"display_id": "d"}}),
            ),
        );
        assert_eq!(n["cells"][0]["outputs"][1]["data"]["text/plain"], "v2");
        assert_eq!(n["cells"][1]["outputs"], json!([]));

        // clear_output(wait=True) clears when the next output arrives.
        state.process(
            &mut n,
            1,
            &msg("stream", json!({"name": "stdout", "text": "x"})),
        );
        state.process(&mut n, 1, &msg("clear_output", json!({"wait": true})));
        assert_eq!(n["cells"][1]["outputs"].as_array().map(Vec::len), Some(1));
        state.process(
            &mut n,
            1,
            &msg("stream", json!({"name": "stdout", "text": "y"})),
        );
        assert_eq!(
            n["cells"][1]["outputs"],
            json!([{"output_type": "stream", "name": "stdout", "text": "y"}])
        );
        state.process(&mut n, 1, &msg("clear_output", json!({"wait": false})));
        assert_eq!(n["cells"][1]["outputs"], json!([]));
    }

    #[test]
    fn coalesces_consecutive_streams() {
        let s =
            |name: &str, text: &str| json!({"output_type": "stream", "name": name, "text": text});
        let mut outputs = vec![
            s("stdout", "a\n"),
            s("stdout", "10%\r50%\r100%\n"),
            s("stderr", "w\n"),
            json!({"output_type": "display_data", "data": {}, "metadata": {}}),
            s("stdout", "ab\x08c\n"),
        ];
        coalesce_streams(&mut outputs);
        assert_eq!(outputs.len(), 4);
        assert_eq!(outputs[0]["text"], "a\n100%\n");
        assert_eq!(outputs[3]["text"], "ac\n");
    }
}
