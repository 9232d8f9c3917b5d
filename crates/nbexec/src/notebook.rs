//! The notebook document: parsing, papermill's parameter injection and
//! metadata, and its error banners.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use crate::error::ExecError;
use crate::pyfmt;

pub(crate) const PARAMETERS_TAG: &str = "parameters";
pub(crate) const INJECTED_TAG: &str = "injected-parameters";
pub(crate) const ERROR_MARKER_TAG: &str = "papermill-error-cell-tag";
const ERROR_STYLE: &str = r#"style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;""#;

/// `metadata.papermill` values recorded in the output, as papermill writes them.
pub(crate) const PENDING: &str = "pending";
pub(crate) const RUNNING: &str = "running";
pub(crate) const COMPLETED: &str = "completed";
pub(crate) const FAILED: &str = "failed";

/// A wall-clock instant with microsecond resolution (as Python's `datetime`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp(i64);

impl Stamp {
    pub(crate) fn now() -> Stamp {
        Stamp(Utc::now().timestamp_micros())
    }

    /// `datetime.now(timezone.utc).isoformat()`.
    pub(crate) fn iso(self) -> String {
        let dt = DateTime::from_timestamp_micros(self.0).unwrap_or_default();
        if self.0.rem_euclid(1_000_000) == 0 {
            dt.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
        } else {
            dt.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
        }
    }

    /// `(self - earlier).total_seconds()`.
    pub(crate) fn seconds_since(self, earlier: Stamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1e6
    }
}

/// A message header's `date` as nbclient records it in
/// `metadata.execution` (`%Y-%m-%dT%H:%M:%S.%fZ`), or now if it has none.
pub(crate) fn execution_timestamp(date: Option<&str>) -> String {
    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";
    if let Some(date) = date {
        if let Ok(dt) = DateTime::parse_from_rfc3339(date) {
            return dt.with_timezone(&Utc).format(FORMAT).to_string();
        }
        if let Ok(dt) = NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S%.f") {
            return dt.format(FORMAT).to_string();
        }
    }
    Utc::now().format(FORMAT).to_string()
}

/// A new random cell id (nbformat's `uuid4().hex[:8]`), unique in `taken`.
pub(crate) fn new_cell_id(taken: &mut HashSet<String>) -> String {
    loop {
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        if taken.insert(id.clone()) {
            return id;
        }
    }
}

fn valid_cell_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn cells(nb: &Value) -> &[Value] {
    nb.get("cells")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn cells_mut(nb: &mut Value) -> &mut Vec<Value> {
    if !nb.get("cells").is_some_and(Value::is_array) {
        nb["cells"] = json!([]);
    }
    match nb.get_mut("cells") {
        Some(Value::Array(cells)) => cells,
        _ => unreachable!("cells was just made an array"),
    }
}

/// `obj[key]` as an object, created (or replaced when not an object) if needed.
pub(crate) fn object_mut<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !obj.get(key).is_some_and(Value::is_object) {
        obj[key] = json!({});
    }
    match obj.get_mut(key) {
        Some(Value::Object(map)) => map,
        _ => unreachable!("was just made an object"),
    }
}

pub(crate) fn cell_type(cell: &Value) -> &str {
    cell.get("cell_type").and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn has_tag(cell: &Value, tag: &str) -> bool {
    cell.pointer("/metadata/tags")
        .and_then(Value::as_array)
        .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag)))
}

/// A cell's source as one string (`.ipynb` files may hold a list of lines).
pub(crate) fn source(cell: &Value) -> String {
    match cell.get("source") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(lines)) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn first_tagged(nb: &Value, tag: &str) -> Option<usize> {
    cells(nb).iter().position(|c| has_tag(c, tag))
}

/// Join the multi-line fields that `.ipynb` files store as lists of lines
/// (nbformat's `rejoin_lines`), so that the in-memory notebook holds strings.
fn rejoin_lines(nb: &mut Value) {
    fn join(v: &mut Value) {
        if let Value::Array(items) = v
            && items.iter().all(Value::is_string)
        {
            *v = Value::String(items.iter().filter_map(Value::as_str).collect());
        }
    }
    fn rejoin_bundle(data: &mut Value) {
        if let Some(map) = data.as_object_mut() {
            for (key, value) in map.iter_mut() {
                let json_mime = key == "application/json"
                    || (key.starts_with("application/") && key.ends_with("+json"));
                if !json_mime {
                    join(value);
                }
            }
        }
    }
    for cell in cells_mut(nb) {
        if let Some(src) = cell.get_mut("source") {
            join(src);
        }
        if let Some(att) = cell.get_mut("attachments").and_then(Value::as_object_mut) {
            att.values_mut().for_each(rejoin_bundle);
        }
        if cell_type(cell) != "code" {
            continue;
        }
        if let Some(outputs) = cell.get_mut("outputs").and_then(Value::as_array_mut) {
            for out in outputs {
                match out.get("output_type").and_then(Value::as_str) {
                    Some("execute_result" | "display_data") => {
                        if let Some(data) = out.get_mut("data") {
                            rejoin_bundle(data);
                        }
                    }
                    Some(_) => {
                        if let Some(text) = out.get_mut("text") {
                            join(text);
                        }
                    }
                    None => {}
                }
            }
        }
    }
}

/// Parse an `.ipynb`, check that it is nbformat 4, and upgrade it to 4.5
/// (cell ids) as `nbformat.v4.upgrade` does; multi-line strings are joined.
pub(crate) fn parse(ipynb: &[u8]) -> Result<Value, ExecError> {
    let mut nb: Value = serde_json::from_slice(ipynb)
        .map_err(|e| ExecError::NotANotebook(format!("invalid JSON: {e}")))?;
    if !nb.is_object() {
        return Err(ExecError::NotANotebook(
            "the JSON document is not an object".into(),
        ));
    }
    let major = nb.get("nbformat").and_then(Value::as_i64).ok_or_else(|| {
        ExecError::NotANotebook("no \"nbformat\" version number (is this an .ipynb file?)".into())
    })?;
    let minor = nb.get("nbformat_minor").and_then(Value::as_i64);
    if major != 4 {
        return Err(ExecError::UnsupportedVersion {
            major,
            minor: minor.unwrap_or(0),
        });
    }
    let minor = minor.ok_or_else(|| {
        ExecError::NotANotebook("an nbformat 4 notebook without \"nbformat_minor\"".into())
    })?;
    if !nb.get("cells").is_some_and(Value::is_array) {
        return Err(ExecError::NotANotebook("no \"cells\" list".into()));
    }
    for (i, cell) in cells(&nb).iter().enumerate() {
        if !cell.is_object() || !cell.get("cell_type").is_some_and(Value::is_string) {
            return Err(ExecError::NotANotebook(format!(
                "cell {i} is not a cell (no \"cell_type\")"
            )));
        }
    }
    if !nb.get("metadata").is_some_and(Value::is_object) {
        nb["metadata"] = json!({});
    }
    rejoin_lines(&mut nb);
    let upgrade = minor < 5;
    let mut taken: HashSet<String> = HashSet::new();
    for cell in cells_mut(&mut nb) {
        if !cell.get("metadata").is_some_and(Value::is_object) {
            cell["metadata"] = json!({});
        }
        let keep = !upgrade
            && cell
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| valid_cell_id(id) && !taken.contains(id));
        if keep {
            if let Some(id) = cell.get("id").and_then(Value::as_str) {
                taken.insert(id.to_owned());
            }
        } else {
            cell["id"] = Value::Null; // filled below, once all kept ids are known
        }
    }
    let mut taken_all = taken;
    for cell in cells_mut(&mut nb) {
        if cell["id"].is_null() {
            cell["id"] = Value::String(new_cell_id(&mut taken_all));
        }
    }
    if minor != 5 {
        nb["metadata"]["orig_nbformat_minor"] = json!(minor);
        nb["nbformat_minor"] = json!(5);
    }
    Ok(nb)
}

/// What papermill's `load_notebook_node` adds: `metadata.papermill` (when
/// absent) and, on every cell, `metadata.tags` and `metadata.papermill`.
pub(crate) fn add_papermill_defaults(nb: &mut Value, version: &str) {
    let meta = object_mut(nb, "metadata");
    if !meta.contains_key("papermill") {
        meta.insert(
            "papermill".into(),
            json!({
                "default_parameters": {},
                "parameters": {},
                "environment_variables": {},
                "version": version,
            }),
        );
    }
    if !meta.get("papermill").is_some_and(Value::is_object) {
        meta.insert("papermill".into(), json!({}));
    }
    for cell in cells_mut(nb) {
        let cmeta = object_mut(cell, "metadata");
        cmeta.entry("tags").or_insert_with(|| json!([]));
        cmeta.entry("papermill").or_insert_with(|| json!({}));
    }
}

/// The kernel name papermill uses: the override, else the notebook's
/// `metadata.kernelspec.name`, else `python3`.
pub(crate) fn kernel_name(nb: &Value, requested: Option<&str>) -> String {
    requested
        .filter(|n| !n.is_empty())
        .or_else(|| {
            nb.pointer("/metadata/kernelspec/name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
        })
        .unwrap_or("python3")
        .to_owned()
}

/// The notebook's language: `metadata.language_info.name`, else
/// `metadata.kernelspec.language` (papermill's `nb_language`).
pub(crate) fn language(nb: &Value) -> Option<String> {
    [
        "/metadata/language_info/name",
        "/metadata/kernelspec/language",
    ]
    .iter()
    .find_map(|p| {
        nb.pointer(p)
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
    })
    .map(str::to_owned)
}

/// Parameters given but not assigned in the `parameters` cell (papermill
/// warns "Passed unknown parameter: NAME" for each).
pub(crate) fn unknown_parameters<'a>(
    nb: &Value,
    params: &'a BTreeMap<String, Value>,
) -> Vec<&'a str> {
    let known: HashSet<String> = first_tagged(nb, PARAMETERS_TAG)
        .map(|i| pyfmt::inspect_parameter_names(&source(&cells(nb)[i])))
        .unwrap_or_default()
        .into_iter()
        .collect();
    params
        .keys()
        .filter(|p| !known.contains(p.as_str()))
        .map(String::as_str)
        .collect()
}

/// papermill's `parameterize_notebook` for Python: the injected cell replaces
/// an existing `injected-parameters` cell, else goes right after the first
/// `parameters` cell, else first. Returns a warning when there is no
/// `parameters` cell.
pub(crate) fn inject_parameters(
    nb: &mut Value,
    params: &BTreeMap<String, Value>,
) -> Option<String> {
    let mut taken: HashSet<String> = cells(nb)
        .iter()
        .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let new_cell = json!({
        "cell_type": "code",
        "execution_count": null,
        "id": new_cell_id(&mut taken),
        "metadata": {"tags": [INJECTED_TAG]},
        "outputs": [],
        "source": pyfmt::codify(params),
    });
    let injected = first_tagged(nb, INJECTED_TAG);
    let param_cell = first_tagged(nb, PARAMETERS_TAG);
    let mut warning = None;
    let cells = cells_mut(nb);
    match (injected, param_cell) {
        (Some(i), _) => cells[i] = new_cell,
        (None, Some(p)) => cells.insert(p + 1, new_cell),
        (None, None) => {
            warning = Some("Input notebook does not contain a cell with tag 'parameters'".into());
            cells.insert(0, new_cell);
        }
    }
    let params: Map<String, Value> = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    object_mut(&mut nb["metadata"], "papermill").insert("parameters".into(), Value::Object(params));
    warning
}

/// `metadata.papermill.input_path` / `output_path`.
pub(crate) fn set_paths(nb: &mut Value, input: &str, output: &str) {
    let pm = object_mut(&mut nb["metadata"], "papermill");
    pm.insert("input_path".into(), json!(input));
    pm.insert("output_path".into(), json!(output));
}

/// Drop the banner cells of an earlier failed run.
pub(crate) fn remove_error_markers(nb: &mut Value) {
    cells_mut(nb).retain(|c| !has_tag(c, ERROR_MARKER_TAG));
}

/// papermill's `notebook_start`: timings reset, every cell `pending`,
/// execution counts and outputs of code cells cleared.
pub(crate) fn notebook_start(nb: &mut Value, now: Stamp) {
    let pm = object_mut(&mut nb["metadata"], "papermill");
    pm.insert("start_time".into(), json!(now.iso()));
    pm.insert("end_time".into(), Value::Null);
    pm.insert("duration".into(), Value::Null);
    pm.insert("exception".into(), Value::Null);
    for cell in cells_mut(nb) {
        let code = cell_type(cell) == "code";
        if code {
            cell["execution_count"] = Value::Null;
        }
        object_mut(cell, "metadata").insert(
            "papermill".into(),
            json!({
                "exception": null,
                "start_time": null,
                "end_time": null,
                "duration": null,
                "status": PENDING,
            }),
        );
        if code {
            cell["outputs"] = json!([]);
        }
    }
}

pub(crate) fn cell_start(cell: &mut Value, now: Stamp) {
    let pm = papermill_of(cell);
    pm.insert("start_time".into(), json!(now.iso()));
    pm.insert("status".into(), json!(RUNNING));
    pm.insert("exception".into(), json!(false));
}

pub(crate) fn cell_exception(nb: &mut Value, index: usize) {
    if let Some(cell) = cells_mut(nb).get_mut(index) {
        let pm = papermill_of(cell);
        pm.insert("exception".into(), json!(true));
        pm.insert("status".into(), json!(FAILED));
    }
    object_mut(&mut nb["metadata"], "papermill").insert("exception".into(), json!(true));
}

pub(crate) fn cell_complete(cell: &mut Value, start: Stamp, now: Stamp) {
    let pm = papermill_of(cell);
    pm.insert("end_time".into(), json!(now.iso()));
    pm.insert("duration".into(), json!(now.seconds_since(start)));
    if pm.get("status").and_then(Value::as_str) != Some(FAILED) {
        pm.insert("status".into(), json!(COMPLETED));
    }
}

/// papermill's `notebook_complete`: end time and duration, and cells still
/// `pending` before the first failed one marked `completed`.
pub(crate) fn notebook_complete(nb: &mut Value, start: Stamp, now: Stamp) {
    let pm = object_mut(&mut nb["metadata"], "papermill");
    pm.insert("end_time".into(), json!(now.iso()));
    pm.insert("duration".into(), json!(now.seconds_since(start)));
    for cell in cells_mut(nb) {
        let pm = papermill_of(cell);
        match pm.get("status").and_then(Value::as_str) {
            Some(FAILED) => break,
            Some(PENDING) => {
                pm.insert("status".into(), json!(COMPLETED));
            }
            _ => {}
        }
    }
}

/// A cell's `metadata.papermill`.
pub(crate) fn papermill_of(cell: &mut Value) -> &mut Map<String, Value> {
    let meta = object_mut(cell, "metadata");
    let pm = meta.entry("papermill").or_insert_with(|| json!({}));
    if !pm.is_object() {
        *pm = json!({});
    }
    match pm {
        Value::Object(map) => map,
        _ => unreachable!("was just made an object"),
    }
}

/// The failure papermill's `raise_for_execution_errors` finds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FoundError {
    pub cell_index: usize,
    pub execution_count: Option<i64>,
    pub ename: String,
    pub evalue: String,
}

/// papermill's `raise_for_execution_errors`: an `error` output (except
/// `SystemExit` with an empty or `0` value), or a cell whose
/// `metadata.papermill.exception` is true without one (`CellExecutionError`).
pub(crate) fn find_error(nb: &Value) -> Option<FoundError> {
    let mut error = None;
    for (index, cell) in cells(nb).iter().enumerate() {
        let mut has_sys_exit = false;
        let found = |ename: &str, evalue: &str| FoundError {
            cell_index: index,
            execution_count: cell.get("execution_count").and_then(Value::as_i64),
            ename: ename.to_owned(),
            evalue: evalue.to_owned(),
        };
        if let Some(outputs) = cell.get("outputs").and_then(Value::as_array) {
            for output in outputs {
                if output.get("output_type").and_then(Value::as_str) != Some("error") {
                    continue;
                }
                let ename = output.get("ename").and_then(Value::as_str).unwrap_or("");
                let evalue = output.get("evalue").and_then(Value::as_str).unwrap_or("");
                if ename == "SystemExit" && (evalue.is_empty() || evalue == "0") {
                    has_sys_exit = true;
                    continue;
                }
                error = Some(found(ename, evalue));
                break;
            }
        }
        let exception = cell.pointer("/metadata/papermill/exception") == Some(&Value::Bool(true));
        if error.is_none() && !has_sys_exit && exception {
            error = Some(found("CellExecutionError", ""));
            break;
        }
    }
    error
}

/// papermill's two banners: one before the failing cell (with the
/// `papermill-error-cell` anchor) and one at the top linking to it. Returns
/// the failing cell's new index.
pub(crate) fn insert_error_banners(nb: &mut Value, error: &FoundError) -> usize {
    let count = error
        .execution_count
        .map_or_else(|| "None".to_owned(), |c| c.to_string());
    let top = format!(
        "<span {ERROR_STYLE}>An Exception was encountered at '<a href=\"#papermill-error-cell\">In [{count}]</a>'.</span>"
    );
    let anchor = format!(
        "<span id=\"papermill-error-cell\" {ERROR_STYLE}>Execution using papermill encountered an exception here and stopped:</span>"
    );
    let mut taken: HashSet<String> = cells(nb)
        .iter()
        .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let mut banner = |text: String| {
        json!({
            "cell_type": "markdown",
            "id": new_cell_id(&mut taken),
            "metadata": {"tags": [ERROR_MARKER_TAG]},
            "source": text,
        })
    };
    let anchor_cell = banner(anchor);
    let top_cell = banner(top);
    let cells = cells_mut(nb);
    let at = error.cell_index.min(cells.len());
    cells.insert(at, anchor_cell);
    cells.insert(0, top_cell);
    error.cell_index + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nb(cells: Value) -> Value {
        json!({"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": cells})
    }

    #[test]
    fn upgrades_to_4_5_with_ids_and_joins_lines() {
        let raw = nb(json!([
            {"cell_type": "code", "metadata": {}, "source": ["a = 1\n", "b = 2"], "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["x\n", "y"]}], "execution_count": 1},
            {"cell_type": "markdown", "metadata": {}, "source": "# hi"}
        ]));
        let parsed = parse(raw.to_string().as_bytes()).expect("parse");
        assert_eq!(parsed["nbformat_minor"], 5);
        assert_eq!(parsed["cells"][0]["source"], "a = 1\nb = 2");
        assert_eq!(parsed["cells"][0]["outputs"][0]["text"], "x\ny");
        let ids: HashSet<&str> = cells(&parsed)
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.iter().all(|id| id.len() == 8));
    }

    #[test]
    fn rejects_what_is_not_a_v4_notebook() {
        assert!(matches!(parse(b"nope"), Err(ExecError::NotANotebook(_))));
        assert!(matches!(parse(b"{}"), Err(ExecError::NotANotebook(_))));
        assert!(matches!(
            parse(br#"{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}"#),
            Err(ExecError::UnsupportedVersion { major: 3, .. })
        ));
    }

    #[test]
    fn injects_like_papermill() {
        let params: BTreeMap<String, Value> = [
            ("alpha".to_string(), json!(0.5)),
            ("name".to_string(), json!("x")),
        ]
        .into();
        // After the parameters cell.
        let mut n = nb(json!([
            {"cell_type": "markdown", "metadata": {}, "source": ""},
            {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "alpha = 1", "outputs": []},
            {"cell_type": "code", "metadata": {}, "source": "", "outputs": []}
        ]));
        assert!(inject_parameters(&mut n, &params).is_none());
        assert_eq!(
            n["cells"][2]["metadata"]["tags"],
            json!(["injected-parameters"])
        );
        assert_eq!(
            n["cells"][2]["source"],
            "# Parameters\nalpha = 0.5\nname = \"x\"\n"
        );
        assert_eq!(
            n["metadata"]["papermill"]["parameters"],
            json!({"alpha": 0.5, "name": "x"})
        );
        // Replacing an earlier injection.
        assert!(inject_parameters(&mut n, &params).is_none());
        assert_eq!(cells(&n).len(), 4);
        // First, without a parameters cell.
        let mut n = nb(json!([{"cell_type": "code", "metadata": {}, "source": "", "outputs": []}]));
        assert!(inject_parameters(&mut n, &params).is_some());
        assert!(has_tag(&n["cells"][0], INJECTED_TAG));
    }

    #[test]
    fn finds_errors_like_papermill() {
        let mut n = nb(json!([
            {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "", "outputs": [
                {"output_type": "error", "ename": "SystemExit", "evalue": "0", "traceback": []}]},
        ]));
        assert_eq!(find_error(&n), None);
        n["cells"][0]["metadata"] = json!({"papermill": {"exception": true}});
        assert_eq!(find_error(&n), None);
        n["cells"][0]["outputs"][0]["evalue"] = json!("2");
        let e = find_error(&n).expect("error");
        assert_eq!(
            (e.cell_index, e.ename.as_str(), e.execution_count),
            (0, "SystemExit", Some(1))
        );
        n["cells"][0]["outputs"] = json!([]);
        assert_eq!(
            find_error(&n).map(|e| e.ename),
            Some("CellExecutionError".into())
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            Stamp(1_700_000_000_000_000).iso(),
            "2023-11-14T22:13:20+00:00"
        );
        assert_eq!(
            Stamp(1_700_000_000_000_123).iso(),
            "2023-11-14T22:13:20.000123+00:00"
        );
        assert_eq!(Stamp(3_500_000).seconds_since(Stamp(1_000_000)), 2.5);
        assert_eq!(
            execution_timestamp(Some("2026-11-26T10:00:00.1234Z")),
            "2026-11-26T10:00:00.123400Z"
        );
        assert_eq!(
            execution_timestamp(Some("2026-11-26T11:00:00.5+01:00")),
            "2026-11-26T10:00:00.500000Z"
        );
    }
}
