//! Shared test helpers: the Python venv with ipykernel, papermill and nbformat.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The Python that runs the kernels: `$ATELIER_PYTHON`, else the repository's
/// `.venv`. Missing is a failure, not a skip.
pub fn python() -> PathBuf {
    let python = std::env::var_os("ATELIER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    assert!(
        python.exists(),
        "{} does not exist. These tests run real Jupyter kernels and compare with papermill: \
         create the venv from the repository root with `python3 -m venv .venv && \
         .venv/bin/pip install ipykernel==7.4.0 papermill==2.7.0 nbformat` (next to \
         tests/python/requirements.txt), or point ATELIER_PYTHON at a Python that has \
         ipykernel, papermill and nbformat.",
        python.display()
    );
    python
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn options() -> nbexec::ExecOptions {
    nbexec::ExecOptions {
        input_label: "in.ipynb".into(),
        output_label: "out.ipynb".into(),
        python: Some(python()),
        ..Default::default()
    }
}

/// Run real papermill on a fixture; returns the output notebook.
pub fn papermill(fixture_name: &str, params: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.ipynb");
    let mut cmd = Command::new(python());
    cmd.args(["-m", "papermill", "--no-progress-bar"])
        .arg(fixture_path(fixture_name))
        .arg(&out);
    for (k, v) in params {
        cmd.args(["-p", k, v]);
    }
    let output = cmd.output().expect("run papermill");
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| {
        panic!(
            "papermill wrote no notebook ({e}); is it installed in the venv? stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    serde_json::from_str(&text).expect("papermill output is JSON")
}

/// Validate with Python's nbformat, and check that `nbformat.write` of the
/// notebook it read gives exactly our bytes.
pub fn validate_with_nbformat(text: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nb.ipynb");
    std::fs::write(&path, text).expect("write");
    let script = "import nbformat, sys\n\
                  text = open(sys.argv[1], encoding='utf-8').read()\n\
                  nb = nbformat.reads(text, as_version=4)\n\
                  nbformat.validate(nb)\n\
                  again = nbformat.writes(nb) + '\\n'\n\
                  sys.exit(0 if again == text else 3)\n";
    let out = Command::new(python())
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "nbformat rejected our notebook ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The notebook as read back from its `.ipynb` text (lists of lines joined).
pub fn reparse(nb: &Value) -> Value {
    let text = nbexec::to_ipynb_string(nb);
    serde_json::from_str(&text).expect("our output is JSON")
}

pub fn cells(nb: &Value) -> &Vec<Value> {
    nb["cells"].as_array().expect("cells")
}

pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

pub fn status(cell: &Value) -> Option<&str> {
    cell.pointer("/metadata/papermill/status")
        .and_then(Value::as_str)
}

pub fn tags(cell: &Value) -> Vec<String> {
    cell.pointer("/metadata/tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The notebook with everything that differs between two runs blanked out:
/// timestamps, durations, cell ids, papermill version and paths — and
/// consecutive stream outputs of one name joined: the kernel flushes
/// `print("warn", file=sys.stderr)` as one message or as "warn" and "\n"
/// depending on its flush timer, so neither side's split is the document's.
pub fn normalised(nb: &Value) -> Value {
    fn walk(v: &mut Value, key: Option<&str>) {
        match v {
            Value::Object(map) => {
                for (k, x) in map.iter_mut() {
                    walk(x, Some(k));
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| walk(x, None)),
            _ => {
                let blank = match key {
                    Some("start_time" | "end_time") => !v.is_null(),
                    Some("duration") => !v.is_null(),
                    Some("id" | "version" | "input_path" | "output_path") => true,
                    Some(k) => k.starts_with("iopub.") || k.starts_with("shell."),
                    None => false,
                };
                if blank {
                    *v = Value::String("~".into());
                }
            }
        }
    }
    fn join_streams(nb: &mut Value) {
        let Some(cells) = nb.get_mut("cells").and_then(Value::as_array_mut) else {
            return;
        };
        for cell in cells {
            let Some(outs) = cell.get_mut("outputs").and_then(Value::as_array_mut) else {
                continue;
            };
            let mut joined: Vec<Value> = Vec::new();
            for mut o in outs.drain(..) {
                let name = (o["output_type"] == "stream").then(|| o["name"].clone());
                if name.is_some() {
                    o["text"] = Value::String(text(&o["text"]));
                }
                if let (Some(name), Some(last)) = (&name, joined.last_mut())
                    && last["output_type"] == "stream"
                    && last["name"] == *name
                {
                    let text = format!("{}{}", text(&last["text"]), text(&o["text"]));
                    last["text"] = Value::String(text);
                    continue;
                }
                joined.push(o);
            }
            *outs = joined;
        }
    }
    let mut nb = reparse(nb);
    join_streams(&mut nb);
    walk(&mut nb, None);
    nb
}
