//! Run a Jupyter notebook headless on a real kernel, the way
//! `papermill in.ipynb out.ipynb -p alpha 0.5` does, without Python on our
//! side of the wire.
//!
//! The kernel (ipykernel, or any kernel spec, found as `jupyter kernelspec
//! list` finds it: see [`kernel_dirs`]) is started as a child process in its
//! own process group and driven over the Jupyter messaging protocol (5.3):
//! pure-Rust ZeroMQ from the `zeromq` crate, the wire format (connection
//! file, HMAC-SHA256-signed multipart messages) our own, in `wire.rs`. The
//! cost of a run is kernel start-up plus the cells: there is no Python
//! interpreter, papermill or nbclient import on our side.
//!
//! # The kernel process
//!
//! * Argv from the kernel spec with `{connection_file}` (in a private temp
//!   dir), `{resource_dir}` and `{prefix}` filled in, `python`/`python3`
//!   replaced by [`ExecOptions::python`], and `--HistoryManager.hist_file=:memory:`
//!   for ipykernel specs (as nbclient does); environment = ours + the spec's
//!   `env` + [`ExecOptions::env`] + `JPY_PARENT_PID`; stdout/stderr go to
//!   `tracing` (target `nbexec::kernel`) and their last lines into error
//!   messages.
//! * Sockets are IPC (Unix sockets in the temp dir) by default, so nothing
//!   listens on the network and ipykernel does not warn about unencrypted TCP.
//!   An inotify watch on that dir tells us the moment the kernel has bound
//!   them (rather than ZeroMQ's reconnect back-off); then we wait for
//!   `kernel_info_reply` and for IOPub to be live (ipykernel 7's
//!   `iopub_welcome`, or any status message) before the first cell, so no
//!   output is lost.
//! * Messages are read as raw JSON (HMAC-checked), so outputs land in the
//!   notebook exactly as the kernel sent them.
//! * The run watches the kernel process itself, so a kernel that dies is
//!   noticed at once, not by polling.
//! * At the end: `shutdown_request`, then SIGTERM to the process group after
//!   1 s and SIGKILL after another (jupyter_client waits 2.5 s + 2.5 s). This
//!   matters: ipykernel 7 sometimes answers `shutdown_request` and never
//!   exits.
//!
//! # papermill's conventions, reproduced
//!
//! Checked against papermill 2.7.0 and nbclient 0.11 (their source):
//!
//! * **Input.** nbformat 4 notebooks, upgraded to 4.5 (cells get random 8-hex
//!   ids) like `nbformat.v4.upgrade`. Cells get `metadata.tags` (`[]`) and
//!   `metadata.papermill` (`{}`); the notebook gets `metadata.papermill` =
//!   `{default_parameters: {}, parameters: {}, environment_variables: {},
//!   version}` unless it already has one (a notebook papermill already ran
//!   keeps its old values, as with papermill). Banner cells of an earlier
//!   failed run (tag `papermill-error-cell-tag`) are removed.
//! * **Parameters** (only when some are given, as papermill): the injected
//!   code cell, tagged `injected-parameters`, holds `# Parameters\n` and one
//!   `name = <Python literal>` line per parameter (papermill's Python
//!   translator: `None`, `True`/`False`, ints, floats by `repr` with
//!   `float('nan')`/`float('inf')`, strings `unicode_escape`d in double quotes,
//!   lists, dicts). It replaces an existing `injected-parameters` cell, else
//!   goes right after the first `parameters` cell, else first (with a
//!   warning). Names not assigned in the `parameters` cell give the warning
//!   `Passed unknown parameter: NAME` (papermill's parameter-cell inspection).
//!   Parameters are written in name order ([`ExecOptions::parameters`] is a
//!   `BTreeMap`), where papermill keeps the command-line order. papermill
//!   formats the cell with `black` when black is installed; we never do.
//!   Kernels whose language is not Python are refused when parameters are
//!   given ([`ExecError::UnsupportedLanguage`]).
//! * **Metadata.** Notebook `metadata.papermill`: `parameters`,
//!   `default_parameters`, `input_path`, `output_path` (the labels of
//!   [`ExecOptions`]), `start_time`, `end_time` (`isoformat()` in UTC),
//!   `duration` (seconds), `exception` (`null`, or `true` once a cell failed),
//!   `environment_variables`, `version` (`atelier-nbexec-<version>`). Each cell's
//!   `metadata.papermill`: `exception`, `start_time`, `end_time`, `duration`,
//!   `status` going `pending` → `running` → `completed`/`failed` (markdown cells
//!   too). Executed code cells get nbclient's `metadata.execution` timestamps
//!   (`iopub.status.busy`, `iopub.execute_input`, `shell.execute_reply`,
//!   `iopub.status.idle`, from the kernel's message dates) and
//!   `execution_count`. `metadata.language_info` comes from `kernel_info_reply`.
//! * **Cells** are run in order; empty ones and those tagged `skip-execution`
//!   are not sent to the kernel; a cell tagged `raises-exception` may fail
//!   without stopping the run (but, as with papermill, its error still makes
//!   the run [`Outcome::Failed`]).
//! * **Outputs** as nbformat's `output_from_msg`: `stream`, `display_data`,
//!   `execute_result` (with `execution_count`), `error`; `clear_output` (with
//!   `wait=True` deferred to the next output) and `update_display_data` /
//!   outputs with a `display_id` updating earlier outputs, across cells.
//!   Stream outputs are kept as the kernel sent them (nbclient's default);
//!   [`ExecOptions::coalesce_streams`] merges consecutive ones of the same name.
//!   Comm/widget messages are ignored (no widget state is saved).
//! * **Failure.** The first failing cell stops the run: it is `failed`, later
//!   cells stay `pending` with no outputs, `metadata.papermill.exception` is
//!   `true`, and papermill's two red banner markdown cells (tag
//!   `papermill-error-cell-tag`) are inserted, one at the top linking to
//!   `In [N]` and one with `<span id="papermill-error-cell" …>` just before
//!   the failing cell. As with papermill, `SystemExit` with no value or `0`
//!   stops the run without making it fail.
//! * **Timeouts and dead kernels**, where we go beyond papermill (which lets
//!   nbclient's exception escape, leaving the cell `completed` and no banner):
//!   a cell still running after [`ExecOptions::cell_timeout`] is interrupted
//!   (SIGINT to the kernel's process group, or `interrupt_request` for
//!   `interrupt_mode: message` kernels) and fails with `CellTimeoutError`; a
//!   kernel process that exits mid-cell fails it at once with
//!   `DeadKernelError` naming the cell and the exit status. Both add an
//!   `error` output saying so, then take the normal failure path.
//! * **Saving.** `save` gets the notebook after preparation (all cells
//!   `pending`), when each cell starts and ends, every 30 s during a long cell
//!   that produces output (papermill's autosave), and at the end. It is the
//!   in-memory form (multi-line strings joined); write it with
//!   [`to_ipynb_string`], which matches `nbformat.write` byte for byte.

mod bound;
mod error;
mod ipynb;
mod kernel;
mod kernelspec;
mod notebook;
mod pyfmt;
mod run;
mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use error::ExecError;
pub use ipynb::to_ipynb_string;
pub use kernelspec::{InterruptMode, KernelSpec, kernel_dirs, kernelspecs};
pub use pyfmt::python_literal;

use notebook::{FoundError, Stamp, cells, cells_mut};
use run::{CellEnd, OutputState, Saver};

/// What this runner writes as `metadata.papermill.version`.
pub const VERSION: &str = concat!("atelier-nbexec-", env!("CARGO_PKG_VERSION"));

/// How the client reaches the kernel's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelTransport {
    /// Unix sockets in a private temporary directory (the default: no ports,
    /// nothing reachable from other users).
    #[default]
    Ipc,
    /// TCP on 127.0.0.1 (for kernels without IPC support). Free ports are
    /// reserved by binding them and released just before the kernel starts,
    /// as jupyter_client does, so another process could take one in between;
    /// readiness is found by probing the ports every few milliseconds.
    Tcp,
}

/// How to run a notebook.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Recorded as `metadata.papermill.input_path`.
    pub input_label: String,
    /// Recorded as `metadata.papermill.output_path`.
    pub output_label: String,
    pub parameters: BTreeMap<String, Value>,
    /// Else the notebook's `metadata.kernelspec.name`, else `python3`.
    pub kernel_name: Option<String>,
    /// A kernel spec's `python`/`python3` `argv[0]` is replaced by this (as
    /// jupyter_client replaces it with `sys.executable`); its environment's
    /// `share/jupyter/kernels` is searched for kernel specs.
    pub python: Option<PathBuf>,
    /// The kernel's working directory (else ours).
    pub cwd: Option<PathBuf>,
    /// Extra environment for the kernel (it inherits the rest of ours).
    pub env: BTreeMap<String, String>,
    /// Interrupt and fail a cell that runs longer (none by default, as papermill).
    pub cell_timeout: Option<Duration>,
    /// Fail when the kernel is not ready by then (papermill: 60 s).
    pub start_timeout: Duration,
    pub transport: KernelTransport,
    /// Merge consecutive stream outputs of the same name (off: papermill keeps
    /// them as the kernel sent them).
    pub coalesce_streams: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            input_label: String::new(),
            output_label: String::new(),
            parameters: BTreeMap::new(),
            kernel_name: None,
            python: None,
            cwd: None,
            env: BTreeMap::new(),
            cell_timeout: None,
            start_timeout: Duration::from_secs(60),
            transport: KernelTransport::Ipc,
            coalesce_streams: false,
        }
    }
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    /// `cell` indexes [`Report::notebook`]'s cells (after the banner cells
    /// were inserted); `execution_count` is the `In [N]` the banner names.
    Failed {
        cell: usize,
        execution_count: Option<i64>,
        ename: String,
        evalue: String,
    },
}

#[derive(Debug, Clone)]
pub struct Report {
    pub outcome: Outcome,
    pub warnings: Vec<String>,
    /// The executed notebook (in-memory form; see [`to_ipynb_string`]).
    pub notebook: Value,
    /// From spawning the kernel until it answered `kernel_info_request`.
    pub kernel_start: Duration,
    /// The whole call, kernel shutdown included.
    pub total: Duration,
}

fn warn(warnings: &mut Vec<String>, message: String) {
    tracing::warn!("{message}");
    warnings.push(message);
}

fn find_spec(specs: &[KernelSpec], name: &str) -> Option<KernelSpec> {
    let name = name.to_lowercase();
    specs.iter().find(|s| s.name == name).cloned()
}

/// Parse and parameterise a notebook without running it (papermill's
/// `--prepare-only`): usable to validate a job when it is submitted. Returns
/// the prepared notebook and the warnings.
pub fn prepare(ipynb: &[u8], opts: &ExecOptions) -> Result<(Value, Vec<String>), ExecError> {
    let mut nb = notebook::parse(ipynb)?;
    let mut warnings = Vec::new();
    notebook::add_papermill_defaults(&mut nb, VERSION);
    if !opts.parameters.is_empty() {
        if let Some(bad) = opts
            .parameters
            .keys()
            .find(|k| !pyfmt::is_python_identifier(k))
        {
            return Err(ExecError::InvalidParameterName { name: bad.clone() });
        }
        let kernel = notebook::kernel_name(&nb, opts.kernel_name.as_deref());
        let spec_language =
            || find_spec(&kernelspecs(opts.python.as_deref()), &kernel).map(|s| s.language);
        let language = if opts.kernel_name.is_some() {
            spec_language().or_else(|| notebook::language(&nb))
        } else {
            notebook::language(&nb).or_else(spec_language)
        };
        let is_python = match &language {
            Some(l) => l.eq_ignore_ascii_case("python"),
            None => kernel.starts_with("python"),
        } || kernel == "pysparkkernel";
        if !is_python {
            return Err(ExecError::UnsupportedLanguage {
                kernel,
                language: language.unwrap_or_else(|| "an unknown language".into()),
            });
        }
        for name in notebook::unknown_parameters(&nb, &opts.parameters) {
            warn(&mut warnings, format!("Passed unknown parameter: {name}"));
        }
        if let Some(w) = notebook::inject_parameters(&mut nb, &opts.parameters) {
            warn(&mut warnings, w);
        }
    }
    notebook::set_paths(&mut nb, &opts.input_label, &opts.output_label);
    notebook::remove_error_markers(&mut nb);
    Ok((nb, warnings))
}

fn error_output(ename: &str, evalue: &str, traceback: Vec<String>) -> Value {
    json!({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback})
}

/// "cell In [N] (id X)", as a reader of the output notebook finds it.
fn cell_label(cell: &Value) -> String {
    let id = cell.get("id").and_then(Value::as_str).unwrap_or("?");
    match cell.get("execution_count").and_then(Value::as_i64) {
        Some(n) => format!("cell In [{n}] (id {id})"),
        None => format!("cell id {id}"),
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

/// Execute a notebook. `save` is called with the notebook after parameter
/// injection, when each cell starts and ends, and at the end (the caller
/// writes or uploads it). Returns `Ok` also when a cell failed
/// ([`Outcome::Failed`]); `Err` only when nothing could run.
pub async fn execute(
    ipynb: &[u8],
    opts: ExecOptions,
    save: impl FnMut(&Value) + Send,
) -> Result<Report, ExecError> {
    let started = Instant::now();
    let (mut nb, mut warnings) = prepare(ipynb, &opts)?;
    let kernel_name = notebook::kernel_name(&nb, opts.kernel_name.as_deref());
    let specs = kernelspecs(opts.python.as_deref());
    let Some(spec) = find_spec(&specs, &kernel_name) else {
        return Err(ExecError::UnknownKernel {
            name: kernel_name,
            available: specs.into_iter().map(|s| s.name).collect(),
        });
    };
    if let Some(cwd) = &opts.cwd
        && !cwd.is_dir()
    {
        return Err(ExecError::MissingCwd {
            kernel: spec.name,
            dir: cwd.clone(),
        });
    }
    let mut save = save;
    let mut saver = Saver {
        f: &mut save,
        last: Instant::now(),
    };
    let nb_start = Stamp::now();
    notebook::notebook_start(&mut nb, nb_start);
    saver.save(&nb);

    tracing::info!(kernel = %spec.name, input = %opts.input_label, "starting kernel");
    let kernel_started = Instant::now();
    let mut kernel = kernel::Kernel::start(&spec, &opts).await?;
    let kernel_start = kernel_started.elapsed();
    tracing::info!(kernel = %spec.name, elapsed = ?kernel_start, "kernel ready");
    if let Some(info) = kernel.info.get("language_info") {
        notebook::object_mut(&mut nb, "metadata").insert("language_info".into(), info.clone());
    }

    let mut state = OutputState::default();
    let mut executed: i64 = 0;
    // Our own verdict when a cell could not finish (timeout, dead kernel…).
    let mut stopped: Option<FoundError> = None;
    let mut kernel_gone = false;
    let total_cells = cells(&nb).len();
    for index in 0..total_cells {
        let cell_started = Stamp::now();
        if let Some(cell) = cells_mut(&mut nb).get_mut(index) {
            notebook::cell_start(cell, cell_started);
        }
        saver.save(&nb);
        let cell = &cells(&nb)[index];
        let runs = notebook::cell_type(cell) == "code"
            && !pyfmt::py_strip(&notebook::source(cell)).is_empty()
            && !notebook::has_tag(cell, "skip-execution");
        let mut failed = false;
        if runs {
            executed += 1;
            let end = run::run_cell(
                &mut kernel,
                &mut nb,
                index,
                executed,
                opts.cell_timeout,
                opts.coalesce_streams,
                &mut state,
                &mut saver,
            )
            .await;
            tracing::debug!(cell = index, ?end, "cell finished");
            if matches!(end, CellEnd::Timeout | CellEnd::Died(_) | CellEnd::Lost(_)) {
                // The kernel may not have said which `In [N]` this was: it is
                // the one we asked for (what the banner and messages show).
                if let Some(cell) = cells_mut(&mut nb).get_mut(index)
                    && cell["execution_count"].is_null()
                {
                    cell["execution_count"] = json!(executed);
                }
            }
            let own_error = match end {
                CellEnd::Ok => None,
                CellEnd::Error { ename, evalue } => {
                    let allowed = notebook::has_tag(&cells(&nb)[index], "raises-exception");
                    if !allowed {
                        tracing::info!(cell = index, %ename, %evalue, "cell failed");
                        failed = true;
                    }
                    None
                }
                CellEnd::Timeout => {
                    let limit = seconds(opts.cell_timeout.unwrap_or_default());
                    let evalue = format!(
                        "A cell timed out while it was being executed, after {limit} seconds."
                    );
                    let traceback = vec![
                        evalue.clone(),
                        format!(
                            "{} was interrupted after the cell timeout of {limit} s.",
                            cell_label(&cells(&nb)[index])
                        ),
                    ];
                    Some(("CellTimeoutError", evalue, traceback))
                }
                CellEnd::Died(status) => {
                    kernel_gone = true;
                    let status =
                        status.map_or_else(|| "exit status unknown".into(), |s| s.to_string());
                    let evalue = format!(
                        "Kernel died while executing {} ({status})",
                        cell_label(&cells(&nb)[index])
                    );
                    let mut traceback = vec![evalue.clone()];
                    if let Some(tail) = kernel.exit_output().await {
                        traceback.push("Kernel output (last lines):".into());
                        traceback.extend(tail.lines().map(str::to_owned));
                    }
                    Some(("DeadKernelError", evalue, traceback))
                }
                CellEnd::Lost(reason) => {
                    kernel_gone = true;
                    let evalue = format!(
                        "Lost the connection to the kernel while executing {}: {reason}",
                        cell_label(&cells(&nb)[index])
                    );
                    Some(("KernelConnectionError", evalue.clone(), vec![evalue]))
                }
            };
            if let Some((ename, evalue, traceback)) = own_error {
                tracing::warn!(cell = index, ename, %evalue, "cell failed");
                let count = cells(&nb)[index]
                    .get("execution_count")
                    .and_then(Value::as_i64);
                if let Some(outputs) = cells_mut(&mut nb)[index]
                    .get_mut("outputs")
                    .and_then(Value::as_array_mut)
                {
                    outputs.push(error_output(ename, &evalue, traceback));
                }
                stopped = Some(FoundError {
                    cell_index: index,
                    execution_count: count,
                    ename: ename.into(),
                    evalue,
                });
                failed = true;
            }
        }
        if failed {
            notebook::cell_exception(&mut nb, index);
        }
        if let Some(cell) = cells_mut(&mut nb).get_mut(index) {
            notebook::cell_complete(cell, cell_started, Stamp::now());
        }
        saver.save(&nb);
        if failed {
            break;
        }
    }

    if kernel_gone {
        tracing::debug!(
            kernel = %kernel.name,
            status = kernel.exit_status().map(tracing::field::display),
            "kernel gone"
        );
        drop(kernel);
    } else {
        kernel.shutdown().await;
    }
    notebook::notebook_complete(&mut nb, nb_start, Stamp::now());

    let found = notebook::find_error(&nb);
    let outcome = match &found {
        Some(error) => {
            let cell = notebook::insert_error_banners(&mut nb, error);
            let verdict = stopped
                .filter(|s| s.cell_index == error.cell_index)
                .unwrap_or_else(|| error.clone());
            Outcome::Failed {
                cell,
                execution_count: verdict.execution_count,
                ename: verdict.ename,
                evalue: verdict.evalue,
            }
        }
        None => {
            if let Some(at) = cells(&nb).iter().position(|c| {
                c.pointer("/metadata/papermill/status")
                    .and_then(Value::as_str)
                    == Some(notebook::FAILED)
            }) {
                warn(
                    &mut warnings,
                    format!(
                        "Cell {at} stopped the notebook with SystemExit; later cells did not run"
                    ),
                );
            }
            Outcome::Completed
        }
    };
    saver.save(&nb);
    let total = started.elapsed();
    match &outcome {
        Outcome::Completed => tracing::info!(outcome = %"completed", ?total, "notebook finished"),
        Outcome::Failed {
            cell,
            execution_count,
            ename,
            ..
        } => tracing::info!(
            outcome = %"failed",
            cell,
            execution_count,
            %ename,
            ?total,
            "notebook finished"
        ),
    }
    Ok(Report {
        outcome,
        warnings,
        notebook: nb,
        kernel_start,
        total,
    })
}

/// The kernel spec a (prepared) notebook would run on, for callers that want
/// to check it when a job is submitted.
pub fn resolve_kernel(nb: &Value, opts: &ExecOptions) -> Result<KernelSpec, ExecError> {
    let name = notebook::kernel_name(nb, opts.kernel_name.as_deref());
    let specs = kernelspecs(opts.python.as_deref());
    find_spec(&specs, &name).ok_or_else(|| ExecError::UnknownKernel {
        name,
        available: specs.into_iter().map(|s| s.name).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notebook(language: &str, cells: Value) -> Vec<u8> {
        json!({
            "nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "k", "display_name": "K", "language": language}},
        })
        .to_string()
        .into_bytes()
    }

    fn with_params(pairs: &[(&str, Value)]) -> ExecOptions {
        ExecOptions {
            parameters: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn prepare_validates_without_a_kernel() {
        let code = json!([{"cell_type": "code", "id": "a", "metadata": {}, "outputs": [],
                           "execution_count": null, "source": "x = 1"}]);
        let nb = notebook("R", code.clone());
        assert!(prepare(&nb, &ExecOptions::default()).is_ok());
        assert!(matches!(
            prepare(&nb, &with_params(&[("x", json!(1))])),
            Err(ExecError::UnsupportedLanguage { .. })
        ));
        let nb = notebook("python", code);
        assert!(matches!(
            prepare(&nb, &with_params(&[("not-a-name", json!(1))])),
            Err(ExecError::InvalidParameterName { .. })
        ));
        let (prepared, warnings) = prepare(&nb, &with_params(&[("x", json!(2))])).expect("ok");
        assert_eq!(
            warnings,
            [
                "Passed unknown parameter: x",
                "Input notebook does not contain a cell with tag 'parameters'"
            ]
        );
        assert_eq!(prepared["cells"][0]["source"], "# Parameters\nx = 2\n");
        assert_eq!(prepared["metadata"]["papermill"]["version"], VERSION);
    }

    #[test]
    fn execute_future_is_send() {
        fn is_send<T: Send>(_: T) {}
        is_send(execute(b"", ExecOptions::default(), |_| {}));
    }
}
