//! Writing `.ipynb` text byte-for-byte as Python's `nbformat.write` does.

use serde_json::{Map, Value};

use crate::pyfmt::{float_repr, splitlines};

/// Serialise a notebook like Python's `nbformat.write`: multi-line strings
/// split into lists of lines (cell sources, stream text, `text/*`,
/// `image/svg+xml` and `application/javascript` data), transient metadata
/// stripped (`orig_nbformat`, `orig_nbformat_minor`, `signature`, cell
/// `trusted`), keys sorted, 1-space indent, non-ASCII written as is
/// (`ensure_ascii=False`), floats as Python's `repr`, and a trailing newline.
pub fn to_ipynb_string(nb: &Value) -> String {
    let mut nb = nb.clone();
    split_lines(&mut nb);
    strip_transient(&mut nb);
    let mut out = String::with_capacity(4096);
    write_value(&mut out, &nb, 0);
    out.push('\n');
    out
}

fn split_str_in_place(v: &mut Value) {
    if let Value::String(s) = v {
        let lines = splitlines(s, true)
            .into_iter()
            .map(|l| Value::String(l.to_owned()))
            .collect();
        *v = Value::Array(lines);
    }
}

fn split_mimebundle(data: &mut Value) {
    if let Some(map) = data.as_object_mut() {
        for (key, value) in map.iter_mut() {
            if key.starts_with("text/") || key == "application/javascript" || key == "image/svg+xml"
            {
                split_str_in_place(value);
            }
        }
    }
}

fn split_lines(nb: &mut Value) {
    let Some(cells) = nb.get_mut("cells").and_then(Value::as_array_mut) else {
        return;
    };
    for cell in cells {
        if let Some(source) = cell.get_mut("source") {
            split_str_in_place(source);
        }
        if let Some(attachments) = cell.get_mut("attachments").and_then(Value::as_object_mut) {
            for attachment in attachments.values_mut() {
                split_mimebundle(attachment);
            }
        }
        if cell.get("cell_type").and_then(Value::as_str) != Some("code") {
            continue;
        }
        let Some(outputs) = cell.get_mut("outputs").and_then(Value::as_array_mut) else {
            continue;
        };
        for output in outputs {
            match output.get("output_type").and_then(Value::as_str) {
                Some("execute_result" | "display_data") => {
                    if let Some(data) = output.get_mut("data") {
                        split_mimebundle(data);
                    }
                }
                Some("stream") => {
                    if let Some(text) = output.get_mut("text") {
                        split_str_in_place(text);
                    }
                }
                _ => {}
            }
        }
    }
}

fn strip_transient(nb: &mut Value) {
    if let Some(meta) = nb.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("orig_nbformat");
        meta.remove("orig_nbformat_minor");
        meta.remove("signature");
    }
    if let Some(cells) = nb.get_mut("cells").and_then(Value::as_array_mut) {
        for cell in cells {
            if let Some(meta) = cell.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("trusted");
            }
        }
    }
}

fn indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push(' ');
    }
}

fn write_value(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&float_repr(n.as_f64().unwrap_or(0.0)));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_value(out, item, level + 1);
            }
            indent(out, level);
            out.push(']');
        }
        Value::Object(map) => write_object(out, map, level),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>, level: usize) {
    if map.is_empty() {
        out.push_str("{}");
        return;
    }
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        indent(out, level + 1);
        write_str(out, k);
        out.push_str(": ");
        write_value(out, v, level + 1);
    }
    indent(out, level);
    out.push('}');
}

/// A JSON string as Python's `json.dumps(..., ensure_ascii=False)` writes it.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_like_nbformat() {
        let nb = json!({
            "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"orig_nbformat_minor": 4, "b": 1e-5, "a": [], "c": {}},
            "cells": [
                {"cell_type": "code", "id": "x", "metadata": {"trusted": true}, "execution_count": 1,
                 "source": "print('é')\n\u{1}x", "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": "a\nb\n"},
                    {"output_type": "display_data", "metadata": {},
                     "data": {"text/plain": "1\n2", "image/png": "AAA\nBBB", "application/json": {"k": "v\n"}}}
                 ]}
            ]
        });
        let got = to_ipynb_string(&nb);
        let want = r#"{
 "cells": [
  {
   "cell_type": "code",
   "execution_count": 1,
   "id": "x",
   "metadata": {},
   "outputs": [
    {
     "name": "stdout",
     "output_type": "stream",
     "text": [
      "a\n",
      "b\n"
     ]
    },
    {
     "data": {
      "application/json": {
       "k": "v\n"
      },
      "image/png": "AAA\nBBB",
      "text/plain": [
       "1\n",
       "2"
      ]
     },
     "metadata": {},
     "output_type": "display_data"
    }
   ],
   "source": [
    "print('é')\n",
    "\u0001x"
   ]
  }
 ],
 "metadata": {
  "a": [],
  "b": 1e-05,
  "c": {}
 },
 "nbformat": 4,
 "nbformat_minor": 5
}
"#;
        assert_eq!(got, want);
    }
}
