//! Render a Jupyter notebook (`.ipynb`, nbformat 4) to a safe, self-contained HTML
//! fragment for previewing in the Studio.
//!
//! No kernel, no nbconvert, no CDN: the notebook JSON is read with `serde_json`, and
//! every cell becomes a `<section class="nb-cell …">` inside one `<div class="nb">`.
//! Style it with [`CSS`] (every selector is scoped under `.nb`).
//!
//! What is done to untrusted content:
//!
//! * **Code sources, raw cells, streams, `text/plain`, `text/latex`, JSON and
//!   tracebacks** are HTML-escaped. Terminal colour codes (ANSI SGR) become
//!   `<span class="ansi-…">`; carriage returns and backspaces overwrite text the way a
//!   terminal (and Jupyter) does; every other control sequence is dropped.
//! * **Markdown** (cells and `text/markdown` outputs) goes through `pulldown-cmark`
//!   (tables, strikethrough, task lists; `$math$` is kept as literal text) and then the
//!   `ammonia` sanitiser: no script, style, iframe, form or event handler survives, links
//!   may only be `http(s):`, `mailto:` or `#fragment`, images only `http(s):` or
//!   `data:image/…`; `attachment:NAME` images resolve to the cell's attachments.
//!   papermill's red error banners (`<span style="color:red">`) become `class="nb-red"`.
//! * **`text/html` outputs** are never put in the page: they go, attribute-escaped, into
//!   the `srcdoc` of an `<iframe sandbox="">` (no scripts, opaque origin).
//! * **Images** become `<img src="data:…">` only when the payload is base64; SVG is
//!   base64-encoded into an `<img>` too, never inlined.
//! * Any single text output over 1 MiB is truncated with a visible note.
//!
//! papermill metadata is understood: the notebook's `parameters` are shown in a header
//! table, cells get `nb-failed` / `nb-pending` / `nb-running` classes and their
//! duration, and cells tagged `injected-parameters` are labelled.
//!
//! ```
//! let nb = br##"{"nbformat": 4, "nbformat_minor": 5, "metadata": {},
//!   "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Hi"]}]}"##;
//! let page = nbrender::render(nb).expect("a notebook");
//! assert!(page.html.contains("<h1>Hi</h1>"));
//! assert_eq!(page.cells, 1);
//! ```

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Map, Value};

/// Styles for the HTML produced by [`render`]; every selector is scoped under `.nb`.
pub const CSS: &str = include_str!("notebook.css");

/// Text outputs (and sources) longer than this are cut, with a note saying so.
const MAX_TEXT: usize = 1 << 20;

/// Iframe height bounds (pixels) for `text/html` outputs.
const IFRAME_MIN: usize = 60;
const IFRAME_MAX: usize = 600;

/// A rendered notebook.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The HTML fragment: one `<div class="nb">…</div>`.
    pub html: String,
    /// Number of cells in the notebook.
    pub cells: usize,
    /// `(nbformat, nbformat_minor)`.
    pub nbformat: (u32, u32),
    /// The kernel's name from `metadata.kernelspec.name` (e.g. `python3`), falling
    /// back to its `display_name`.
    pub kernel: Option<String>,
    /// The language from `metadata.language_info.name`, falling back to
    /// `metadata.kernelspec.language`.
    pub language: Option<String>,
    /// Index of the cell where execution failed: the cell papermill marked `failed`,
    /// or else the first code cell with an `error` output.
    pub failed_cell: Option<usize>,
}

/// Why a file could not be rendered. The messages are meant to be shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The bytes are not JSON (or not UTF-8). Carries the parser's message.
    #[error(
        "this file is not a Jupyter notebook: it is not valid JSON ({0}). If the notebook \
         is still being written, wait for it to finish and reload; otherwise re-save it \
         from Jupyter"
    )]
    NotJson(String),
    /// Valid JSON, but not shaped like a notebook. Carries what is wrong.
    #[error(
        "this file is not a Jupyter notebook: {0}. A notebook (.ipynb) is a JSON object \
         with `nbformat`, `metadata` and a `cells` list; re-save it from Jupyter"
    )]
    NotANotebook(String),
    /// A notebook in a format version other than 4.
    #[error("{}", unsupported_message(*.major, *.minor))]
    UnsupportedVersion { major: u32, minor: u32 },
}

fn unsupported_message(major: u32, minor: u32) -> String {
    let convert = "jupyter nbconvert --to notebook --nbformat 4 NOTEBOOK.ipynb";
    if major < 4 {
        format!(
            "this notebook uses the old nbformat {major}.{minor}; the preview only reads \
             nbformat 4. Convert it with `{convert}` (it writes NOTEBOOK.nbconvert.ipynb), \
             or open and re-save it in a current Jupyter"
        )
    } else {
        format!(
            "this notebook uses nbformat {major}.{minor}, newer than the preview supports \
             (nbformat 4.x). Save it as version 4 with `{convert}` (it writes \
             NOTEBOOK.nbconvert.ipynb)"
        )
    }
}

/// Render a notebook to an HTML fragment (see the crate docs for what is emitted).
///
/// Accepts nbformat 4 (any minor version; 4.0–4.5 exist today). Malformed cells or
/// outputs inside an otherwise valid notebook are shown as notes rather than failing
/// the whole preview.
pub fn render(ipynb: &[u8]) -> Result<Rendered, RenderError> {
    let bytes = ipynb.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(ipynb);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(RenderError::NotJson("the file is empty".into()));
    }
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| RenderError::NotJson(e.to_string()))?;
    let Value::Object(root) = root else {
        return Err(RenderError::NotANotebook(format!(
            "the JSON is {} rather than an object",
            json_kind(&root)
        )));
    };
    let minor = root.get("nbformat_minor").and_then(as_u32).unwrap_or(0);
    let major = match root.get("nbformat").and_then(as_u32) {
        Some(4) => 4,
        Some(major) => return Err(RenderError::UnsupportedVersion { major, minor }),
        // nbformat 1–3 keep their cells in `worksheets`.
        None if root.contains_key("worksheets") => {
            return Err(RenderError::UnsupportedVersion { major: 3, minor });
        }
        None if root.contains_key("cells") => 4,
        None => {
            return Err(RenderError::NotANotebook(
                "the JSON has neither an `nbformat` version nor a `cells` list".into(),
            ));
        }
    };
    let cells = match root.get("cells") {
        Some(Value::Array(cells)) => cells,
        Some(other) => {
            return Err(RenderError::NotANotebook(format!(
                "its `cells` is {} instead of a list",
                json_kind(other)
            )));
        }
        None => {
            return Err(RenderError::NotANotebook(
                "the JSON has no `cells` list".into(),
            ));
        }
    };

    let empty = Map::new();
    let meta = root
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let kernelspec = meta.get("kernelspec").and_then(Value::as_object);
    let kernel = kernelspec
        .and_then(|k| k.get("name").or_else(|| k.get("display_name")))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let language = meta
        .get("language_info")
        .and_then(|l| l.get("name"))
        .or_else(|| kernelspec.and_then(|k| k.get("language")))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);

    let mut html = String::with_capacity(bytes.len() / 2 + 4096);
    html.push_str("<div class=\"nb\">");
    if let Some(pm) = meta.get("papermill").and_then(Value::as_object) {
        papermill_header(&mut html, pm);
    }

    let mut papermill_failed = None;
    let mut first_error = None;
    for (index, cell) in cells.iter().enumerate() {
        let outcome = render_cell(&mut html, index, cell);
        if outcome.papermill_failed && papermill_failed.is_none() {
            papermill_failed = Some(index);
        }
        if outcome.has_error && first_error.is_none() {
            first_error = Some(index);
        }
    }
    html.push_str("</div>");

    Ok(Rendered {
        html,
        cells: cells.len(),
        nbformat: (major, minor),
        kernel,
        language,
        failed_cell: papermill_failed.or(first_error),
    })
}

fn as_u32(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------

#[derive(Default)]
struct CellOutcome {
    papermill_failed: bool,
    has_error: bool,
}

fn render_cell(out: &mut String, index: usize, cell: &Value) -> CellOutcome {
    let mut outcome = CellOutcome::default();
    let Some(cell) = cell.as_object() else {
        let _ = write!(
            out,
            "<section class=\"nb-cell nb-raw\" data-index=\"{index}\">"
        );
        note(
            out,
            "This cell is malformed (not a JSON object) and cannot be shown.",
        );
        out.push_str("</section>");
        return outcome;
    };
    let cell_type = cell.get("cell_type").and_then(Value::as_str).unwrap_or("");
    let kind = match cell_type {
        "code" => "nb-code",
        "markdown" => "nb-markdown",
        _ => "nb-raw",
    };
    let meta = cell.get("metadata").and_then(Value::as_object);
    let papermill = meta
        .and_then(|m| m.get("papermill"))
        .and_then(Value::as_object);
    let status = papermill
        .and_then(|p| p.get("status"))
        .and_then(Value::as_str);
    let tags: Vec<&str> = meta
        .and_then(|m| m.get("tags"))
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    let _ = write!(out, "<section class=\"nb-cell {kind}");
    match status {
        Some("failed") => {
            out.push_str(" nb-failed");
            outcome.papermill_failed = true;
        }
        Some("pending") => out.push_str(" nb-pending"),
        Some("running") => out.push_str(" nb-running"),
        _ => {}
    }
    let _ = write!(out, "\" data-index=\"{index}\">");

    // Labels: papermill status and duration, parameter tags, unknown cell types.
    let mut head = String::new();
    if tags.contains(&"injected-parameters") {
        head.push_str("<span class=\"nb-label nb-label-injected\">injected parameters</span>");
    } else if tags.contains(&"parameters") {
        head.push_str("<span class=\"nb-label\">parameters</span>");
    }
    match status {
        Some("failed") => head.push_str("<span class=\"nb-label nb-label-failed\">failed</span>"),
        Some("pending") => head.push_str("<span class=\"nb-label\">not run</span>"),
        Some("running") => head.push_str("<span class=\"nb-label\">running</span>"),
        _ => {}
    }
    if let Some(secs) = papermill
        .and_then(|p| p.get("duration"))
        .and_then(Value::as_f64)
        .filter(|d| d.is_finite() && *d >= 0.0)
    {
        let _ = write!(
            head,
            "<span class=\"nb-duration\">{}</span>",
            format_duration(secs)
        );
    }
    if kind == "nb-raw" && cell_type != "raw" {
        head.push_str("<span class=\"nb-label\">unknown cell type ");
        escape_into(&mut head, cell_type);
        head.push_str("</span>");
    }
    if !head.is_empty() {
        let _ = write!(out, "<div class=\"nb-cell-head\">{head}</div>");
    }

    let source = multiline(cell.get("source"));
    match kind {
        "nb-code" => {
            let prompt = match cell.get("execution_count").and_then(Value::as_u64) {
                Some(n) => format!("In&nbsp;[{n}]:"),
                None => "In&nbsp;[&nbsp;]:".to_owned(),
            };
            let _ = write!(
                out,
                "<div class=\"nb-input\"><div class=\"nb-prompt\">{prompt}</div>\
                 <pre class=\"nb-source\"><code>"
            );
            let (text, cut) = limit(&source);
            escape_into(out, text);
            out.push_str("</code></pre></div>");
            if let Some(total) = cut {
                truncation_note(out, total);
            }
            if let Some(outputs) = cell.get("outputs").and_then(Value::as_array)
                && !outputs.is_empty()
            {
                out.push_str("<div class=\"nb-outputs\">");
                outcome.has_error = render_outputs(out, outputs);
                out.push_str("</div>");
            }
        }
        "nb-markdown" => {
            let attachments = cell
                .get("attachments")
                .and_then(Value::as_object)
                .map(attachment_uris)
                .unwrap_or_default();
            out.push_str("<div class=\"nb-md\">");
            let (text, cut) = limit(&source);
            out.push_str(&markdown_to_html(text, attachments));
            out.push_str("</div>");
            if let Some(total) = cut {
                truncation_note(out, total);
            }
        }
        _ => {
            out.push_str("<pre class=\"nb-raw-source\">");
            let (text, cut) = limit(&source);
            escape_into(out, text);
            out.push_str("</pre>");
            if let Some(total) = cut {
                truncation_note(out, total);
            }
        }
    }
    out.push_str("</section>");
    outcome
}

fn papermill_header(out: &mut String, pm: &Map<String, Value>) {
    let params = pm.get("parameters").and_then(Value::as_object);
    let duration = pm
        .get("duration")
        .and_then(Value::as_f64)
        .filter(|d| d.is_finite() && *d >= 0.0);
    if params.is_none_or(Map::is_empty) && duration.is_none() {
        return;
    }
    out.push_str("<div class=\"nb-header\">");
    if let Some(params) = params.filter(|p| !p.is_empty()) {
        out.push_str(
            "<table class=\"nb-params\"><caption>Parameters</caption>\
             <thead><tr><th>Name</th><th>Value</th></tr></thead><tbody>",
        );
        for (name, value) in params {
            out.push_str("<tr><th>");
            escape_into(out, name);
            out.push_str("</th><td><code>");
            let shown = serde_json::to_string(value).unwrap_or_default();
            escape_into(out, limit(&shown).0);
            out.push_str("</code></td></tr>");
        }
        out.push_str("</tbody></table>");
    }
    if let Some(secs) = duration {
        let _ = write!(
            out,
            "<div class=\"nb-run-info\">papermill run took {}</div>",
            format_duration(secs)
        );
    }
    out.push_str("</div>");
}

fn format_duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = secs.round() as u64;
        if whole < 3600 {
            format!("{} min {} s", whole / 60, whole % 60)
        } else {
            format!("{} h {} min", whole / 3600, (whole % 3600) / 60)
        }
    }
}

// ---------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------

/// Renders a code cell's outputs; returns whether one of them is an `error`.
fn render_outputs(out: &mut String, outputs: &[Value]) -> bool {
    let mut has_error = false;
    let mut i = 0;
    while let Some(output) = outputs.get(i) {
        i += 1;
        let Some(output) = output.as_object() else {
            output_row(out, "", |o| note(o, "A malformed output was skipped."));
            continue;
        };
        match output.get("output_type").and_then(Value::as_str) {
            Some("stream") => {
                // Jupyter shows consecutive chunks of one stream as one block (progress
                // bars rely on this for their carriage returns).
                let name = output
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("stdout");
                let mut text = multiline(output.get("text"));
                while let Some(next) = outputs.get(i).and_then(Value::as_object) {
                    let same = next.get("output_type").and_then(Value::as_str) == Some("stream")
                        && next.get("name").and_then(Value::as_str).unwrap_or("stdout") == name;
                    if !same {
                        break;
                    }
                    text.to_mut().push_str(&multiline(next.get("text")));
                    i += 1;
                }
                let class = if name == "stderr" {
                    "nb-stderr"
                } else {
                    "nb-stdout"
                };
                output_row(out, "", |o| {
                    let _ = write!(o, "<div class=\"nb-output nb-stream {class}\">");
                    terminal_pre(o, "", &text);
                    o.push_str("</div>");
                });
            }
            Some(kind @ ("execute_result" | "display_data")) => {
                let prompt = match output.get("execution_count").and_then(Value::as_u64) {
                    Some(n) if kind == "execute_result" => format!("Out[{n}]:"),
                    _ => String::new(),
                };
                output_row(out, &prompt, |o| rich_output(o, output));
            }
            Some("error") => {
                has_error = true;
                output_row(out, "", |o| error_output(o, output));
            }
            other => {
                let what = other.unwrap_or("(missing)");
                output_row(out, "", |o| {
                    o.push_str("<div class=\"nb-note\">Output of unknown type ");
                    escape_into(o, what);
                    o.push_str(" cannot be shown.</div>");
                });
            }
        }
    }
    has_error
}

fn output_row(out: &mut String, prompt: &str, body: impl FnOnce(&mut String)) {
    out.push_str("<div class=\"nb-output-row\"><div class=\"nb-prompt nb-out-prompt\">");
    escape_into(out, prompt);
    out.push_str("</div><div class=\"nb-output-body\">");
    body(out);
    out.push_str("</div></div>");
}

/// MIME types we can show, best first.
const MIME_PRIORITY: &[&str] = &[
    "text/html",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/svg+xml",
    "text/markdown",
    "text/latex",
    "application/json",
    "text/plain",
];

fn rich_output(out: &mut String, output: &Map<String, Value>) {
    let Some(data) = output.get("data").and_then(Value::as_object) else {
        note(out, "This output has no data.");
        return;
    };
    let Some((mime, value)) = MIME_PRIORITY.iter().find_map(|m| data.get_key_value(*m)) else {
        out.push_str("<div class=\"nb-note\">Output of type ");
        let kinds: Vec<&str> = data.keys().map(String::as_str).collect();
        escape_into(out, &kinds.join(", "));
        out.push_str(" cannot be previewed.</div>");
        return;
    };
    let mime = mime.as_str();
    let image_meta = output
        .get("metadata")
        .and_then(|m| m.get(mime))
        .and_then(Value::as_object);
    match mime {
        "text/html" => html_iframe(out, &multiline(Some(value))),
        "image/png" | "image/jpeg" | "image/gif" => {
            image_output(out, mime, &multiline(Some(value)), image_meta);
        }
        "image/svg+xml" => {
            let svg = multiline(Some(value));
            let encoded = base64::engine::general_purpose::STANDARD.encode(svg.as_bytes());
            out.push_str("<div class=\"nb-output nb-image\"><img alt=\"SVG output\"");
            size_attrs(out, image_meta);
            let _ = write!(out, " src=\"data:image/svg+xml;base64,{encoded}\"></div>");
        }
        "text/markdown" => {
            let text = multiline(Some(value));
            let (text, cut) = limit(&text);
            out.push_str("<div class=\"nb-output nb-md\">");
            out.push_str(&markdown_to_html(text, HashMap::new()));
            out.push_str("</div>");
            if let Some(total) = cut {
                truncation_note(out, total);
            }
        }
        "application/json" => {
            let text = match value {
                Value::String(s) => s.clone(),
                v => serde_json::to_string_pretty(v).unwrap_or_default(),
            };
            out.push_str("<div class=\"nb-output nb-json\">");
            terminal_pre(out, "", &text);
            out.push_str("</div>");
        }
        "text/latex" => {
            out.push_str("<div class=\"nb-output nb-latex\">");
            terminal_pre(out, "", &multiline(Some(value)));
            out.push_str("</div>");
        }
        _ => {
            out.push_str("<div class=\"nb-output nb-text\">");
            terminal_pre(out, "", &multiline(Some(value)));
            out.push_str("</div>");
        }
    }
}

fn error_output(out: &mut String, output: &Map<String, Value>) {
    let ename = output
        .get("ename")
        .and_then(Value::as_str)
        .unwrap_or("Error");
    let evalue = output.get("evalue").and_then(Value::as_str).unwrap_or("");
    out.push_str("<div class=\"nb-output nb-error\"><div class=\"nb-error-title\"><strong>");
    ansi::to_html(out, limit(ename).0);
    out.push_str("</strong>");
    if !evalue.is_empty() {
        out.push_str(": ");
        ansi::to_html(out, limit(evalue).0);
    }
    out.push_str("</div>");
    let traceback: Vec<&str> = output
        .get("traceback")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !traceback.is_empty() {
        terminal_pre(out, "nb-traceback", &traceback.join("\n"));
    }
    out.push_str("</div>");
}

/// `<pre>` with terminal text (ANSI colours, `\r`), truncated to [`MAX_TEXT`].
fn terminal_pre(out: &mut String, class: &str, text: &str) {
    let (text, cut) = limit(text);
    if class.is_empty() {
        out.push_str("<pre>");
    } else {
        let _ = write!(out, "<pre class=\"{class}\">");
    }
    ansi::to_html(out, text);
    out.push_str("</pre>");
    if let Some(total) = cut {
        truncation_note(out, total);
    }
}

fn html_iframe(out: &mut String, html: &str) {
    let (html, cut) = limit(html);
    let height = estimate_html_height(html);
    // The frame has no scripts and an opaque origin; give its document readable
    // defaults since the page's styles do not reach into it.
    // The CSP is defence in depth on top of the sandbox: nothing but images and
    // inline styles may load.
    let doc = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{IFRAME_CSP}\">\
         <style>{IFRAME_STYLE}</style></head><body>{html}</body></html>"
    );
    let _ = write!(
        out,
        "<div class=\"nb-output nb-html-output\"><iframe class=\"nb-html\" sandbox=\"\" \
         title=\"HTML output\" loading=\"lazy\" referrerpolicy=\"no-referrer\" \
         style=\"height:{height}px\" srcdoc=\""
    );
    escape_into(out, &doc);
    out.push_str("\"></iframe></div>");
    if let Some(total) = cut {
        truncation_note(out, total);
    }
}

const IFRAME_CSP: &str =
    "default-src 'none'; img-src data: http: https:; style-src 'unsafe-inline'; font-src data:";

const IFRAME_STYLE: &str = "body{margin:4px;font:13px/1.4 system-ui,-apple-system,'Segoe UI',\
sans-serif;color:#1f2328}table{border-collapse:collapse;font-size:12px}\
th,td{padding:3px 8px;border-bottom:1px solid #d0d7de;text-align:right}\
thead th{border-bottom:2px solid #8c959f}tbody tr:nth-child(odd){background:#f6f8fa}\
img{max-width:100%}pre{overflow-x:auto}";

/// Rough rendered height of an HTML output: table rows and block elements.
fn estimate_html_height(html: &str) -> usize {
    let rows = count_tags(html, &["tr"]);
    let blocks = count_tags(
        html,
        &["p", "li", "br", "h1", "h2", "h3", "h4", "h5", "h6", "hr"],
    );
    let text_lines = if rows == 0 && blocks == 0 {
        // Plain text or inline HTML: count visible lines, roughly.
        html.lines().filter(|l| !l.trim().is_empty()).count().max(1)
    } else {
        0
    };
    let estimate = 24 + rows * 25 + blocks * 22 + text_lines * 20;
    estimate.clamp(IFRAME_MIN, IFRAME_MAX)
}

/// Counts opening tags `<name` followed by whitespace, `>` or `/` (ASCII case-insensitive).
fn count_tags(html: &str, names: &[&str]) -> usize {
    let bytes = html.as_bytes();
    let mut count = 0;
    for (pos, _) in html.match_indices('<') {
        let rest = &bytes[pos + 1..];
        for name in names {
            let n = name.len();
            if rest.len() > n
                && rest[..n].eq_ignore_ascii_case(name.as_bytes())
                && matches!(rest[n], b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/')
            {
                count += 1;
                break;
            }
        }
    }
    count
}

fn image_output(out: &mut String, mime: &str, payload: &str, meta: Option<&Map<String, Value>>) {
    match clean_base64(payload) {
        Some(b64) => {
            out.push_str("<div class=\"nb-output nb-image\"><img alt=\"output image\"");
            size_attrs(out, meta);
            let _ = write!(out, " src=\"data:{mime};base64,{b64}\"></div>");
        }
        None => {
            let _ = write!(
                out,
                "<div class=\"nb-note nb-warn\">This {mime} output is not valid base64 \
                 and is not shown.</div>"
            );
        }
    }
}

fn size_attrs(out: &mut String, meta: Option<&Map<String, Value>>) {
    for attr in ["width", "height"] {
        if let Some(px) = meta
            .and_then(|m| m.get(attr))
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && *v > 0.0 && *v < 100_000.0)
        {
            let _ = write!(out, " {attr}=\"{}\"", px.round() as u64);
        }
    }
}

/// The payload without whitespace if it is plain base64 (standard alphabet, padded
/// correctly), else `None`.
fn clean_base64(payload: &str) -> Option<Cow<'_, str>> {
    let cleaned: Cow<str> = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        Cow::Owned(
            payload
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect(),
        )
    } else {
        Cow::Borrowed(payload)
    };
    let bytes = cleaned.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let body_len = bytes.len()
        - bytes
            .iter()
            .rev()
            .take(2)
            .take_while(|&&b| b == b'=')
            .count();
    let body_ok = bytes[..body_len]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    body_ok.then_some(cleaned)
}

// ---------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------

/// `data:` URIs for a markdown cell's `attachments` (`{name: {mime: base64}}`).
fn attachment_uris(attachments: &Map<String, Value>) -> HashMap<String, String> {
    let mut uris = HashMap::new();
    for (name, bundle) in attachments {
        let Some(bundle) = bundle.as_object() else {
            continue;
        };
        for (mime, data) in bundle {
            if !mime.starts_with("image/") || mime.contains(['"', '<', '>', ' ', ';', ',']) {
                continue;
            }
            let data = multiline(Some(data));
            let b64 = match clean_base64(&data) {
                Some(b64) => b64.into_owned(),
                // SVG attachments are sometimes stored as text.
                None if mime == "image/svg+xml" && data.contains('<') => {
                    base64::engine::general_purpose::STANDARD.encode(data.as_bytes())
                }
                None => continue,
            };
            uris.insert(name.clone(), format!("data:{mime};base64,{b64}"));
            break;
        }
    }
    uris
}

fn markdown_to_html(src: &str, attachments: HashMap<String, String>) -> String {
    use pulldown_cmark::{CowStr, Event, Options, Parser};

    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH;
    // Math is kept as literal text (with its delimiters), shielded from emphasis.
    let math = |class: &str, delim: &str, tex: &str| {
        let mut s = format!("<span class=\"{class}\">{delim}");
        escape_into(&mut s, tex);
        let _ = write!(s, "{delim}</span>");
        Event::InlineHtml(CowStr::from(s))
    };
    let events = Parser::new_ext(src, options).map(|event| match event {
        Event::InlineMath(tex) => math("nb-math", "$", &tex),
        Event::DisplayMath(tex) => math("nb-math nb-math-display", "$$", &tex),
        other => other,
    });
    let mut html = String::with_capacity(src.len() + src.len() / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    let html = mark_red_spans(&html);
    sanitize(&html, attachments)
}

/// papermill's error banners are `<span style="color:red; …">`; styles are not allowed
/// through the sanitiser, so such spans get `class="nb-red"` instead.
fn mark_red_spans(html: &str) -> Cow<'_, str> {
    if !html.contains("<span") && !html.contains("<SPAN") {
        return Cow::Borrowed(html);
    }
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len());
    let mut copied = 0;
    let mut pos = 0;
    while let Some(found) = html[pos..].find('<') {
        let start = pos + found;
        pos = start + 1;
        let is_span = bytes.len() > start + 5
            && bytes[start + 1..start + 5].eq_ignore_ascii_case(b"span")
            && bytes[start + 5].is_ascii_whitespace();
        if !is_span {
            continue;
        }
        let Some(end) = html[start..].find('>').map(|e| start + e) else {
            break;
        };
        let tag = &html[start..end];
        let lower = tag.to_ascii_lowercase();
        for quote in ['"', '\''] {
            let needle = format!("style={quote}");
            let Some(s) = lower.find(&needle) else {
                continue;
            };
            let value_start = s + needle.len();
            let Some(len) = lower[value_start..].find(quote) else {
                continue;
            };
            let value: String = lower[value_start..value_start + len]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if value.contains("color:red") || value.contains("color:#f00") {
                out.push_str(&html[copied..start + s]);
                out.push_str("class=\"nb-red\"");
                copied = start + value_start + len + 1;
            }
            break;
        }
        pos = end;
    }
    out.push_str(&html[copied..]);
    Cow::Owned(out)
}

fn sanitize(html: &str, attachments: HashMap<String, String>) -> String {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(&["input"])
        .add_tag_attributes("input", &["checked", "disabled"])
        .add_tag_attribute_values("input", "type", &["checkbox"])
        .set_tag_attribute_value("input", "disabled", "")
        .add_tag_attributes("span", &["id"])
        .add_tag_attributes("th", &["style"])
        .add_tag_attributes("td", &["style"])
        .add_allowed_classes("span", &["nb-math", "nb-math-display", "nb-red"])
        // Checked again per element by `filter_attribute`; `attachment:` is rewritten
        // to a data URI there.
        .url_schemes(HashSet::from([
            "http",
            "https",
            "mailto",
            "data",
            "attachment",
        ]))
        .url_relative(ammonia::UrlRelative::PassThrough)
        .id_prefix(Some(ID_PREFIX))
        .attribute_filter(move |element, attribute, value| {
            filter_attribute(element, attribute, value, &attachments)
        });
    builder.clean(html).to_string()
}

const ID_PREFIX: &str = "nb-";

fn filter_attribute<'u>(
    element: &str,
    attribute: &str,
    value: &'u str,
    attachments: &HashMap<String, String>,
) -> Option<Cow<'u, str>> {
    let trimmed = value.trim();
    match attribute {
        "href" if element == "a" => {
            if let Some(fragment) = trimmed.strip_prefix('#') {
                // Ids are prefixed by the sanitiser; keep in-notebook links working.
                return Some(if fragment.starts_with(ID_PREFIX) {
                    Cow::Borrowed(value)
                } else {
                    Cow::Owned(format!("#{ID_PREFIX}{fragment}"))
                });
            }
            matches!(
                scheme(trimmed).as_deref(),
                Some("http" | "https" | "mailto")
            )
            .then_some(Cow::Borrowed(value))
        }
        "src" if element == "img" => match scheme(trimmed).as_deref() {
            Some("http" | "https") => Some(Cow::Borrowed(value)),
            Some("data") => {
                let head = trimmed.get(..32).unwrap_or(trimmed).to_ascii_lowercase();
                let ok = [
                    "data:image/png",
                    "data:image/jpeg",
                    "data:image/jpg",
                    "data:image/gif",
                    "data:image/webp",
                    "data:image/svg+xml",
                    "data:image/bmp",
                ]
                .iter()
                .any(|p| {
                    head.starts_with(p) && matches!(head.as_bytes().get(p.len()), Some(b';' | b','))
                });
                ok.then_some(Cow::Borrowed(value))
            }
            Some("attachment") => {
                let name = trimmed.get("attachment:".len()..).unwrap_or("");
                attachments
                    .get(name)
                    .or_else(|| attachments.get(percent_decode(name).as_ref()))
                    .map(|uri| Cow::Owned(uri.clone()))
            }
            _ => None,
        },
        // Any other URL-carrying attribute (cite, …): web links only.
        "href" | "src" | "cite" | "longdesc" => {
            matches!(scheme(trimmed).as_deref(), Some("http" | "https"))
                .then_some(Cow::Borrowed(value))
        }
        // Table alignment from markdown.
        "style" => {
            let compact: String = trimmed
                .chars()
                .filter(|c| !c.is_whitespace() && *c != ';')
                .collect::<String>()
                .to_ascii_lowercase();
            matches!(
                compact.as_str(),
                "text-align:left" | "text-align:center" | "text-align:right"
            )
            .then_some(Cow::Borrowed(value))
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// The lower-cased URL scheme, if `url` starts with one.
fn scheme(url: &str) -> Option<String> {
    let (head, _) = url.split_once(':')?;
    let mut chars = head.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then(|| head.to_ascii_lowercase())
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

// ---------------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------------

/// nbformat "multiline strings": a string or a list of strings, joined.
fn multiline(value: Option<&Value>) -> Cow<'_, str> {
    match value {
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(Value::Array(parts)) => {
            let len = parts.iter().filter_map(Value::as_str).map(str::len).sum();
            let mut s = String::with_capacity(len);
            for part in parts.iter().filter_map(Value::as_str) {
                s.push_str(part);
            }
            Cow::Owned(s)
        }
        _ => Cow::Borrowed(""),
    }
}

/// At most [`MAX_TEXT`] bytes of `text` (on a char boundary), and the original length
/// if it was cut.
fn limit(text: &str) -> (&str, Option<usize>) {
    if text.len() <= MAX_TEXT {
        return (text, None);
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], Some(text.len()))
}

fn truncation_note(out: &mut String, total: usize) {
    let _ = write!(
        out,
        "<div class=\"nb-note nb-truncated\">Output truncated: showing the first {} of {}.</div>",
        human_size(MAX_TEXT),
        human_size(total)
    );
}

fn human_size(bytes: usize) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= MIB {
        format!("{:.1} MiB", b / MIB)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

fn note(out: &mut String, text: &str) {
    out.push_str("<div class=\"nb-note\">");
    escape_into(out, text);
    out.push_str("</div>");
}

/// HTML-escapes text for element content and (double- or single-quoted) attributes.
fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

// ---------------------------------------------------------------------------------
// ANSI / terminal text
// ---------------------------------------------------------------------------------

mod ansi {
    //! Terminal text to HTML: SGR colours to spans, `\r` / backspace as overwrites,
    //! every other escape or control sequence dropped.

    use super::escape_into;
    use std::fmt::Write as _;
    use std::iter::Peekable;
    use std::str::Chars;

    #[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
    struct Style {
        bold: bool,
        fg: Option<Color>,
        bg: Option<Color>,
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Color {
        /// 0–15: the named colours (classes); 16–255: the xterm palette.
        Indexed(u8),
        Rgb(u8, u8, u8),
    }

    const NAMES: [&str; 16] = [
        "black",
        "red",
        "green",
        "yellow",
        "blue",
        "magenta",
        "cyan",
        "white",
        "bright-black",
        "bright-red",
        "bright-green",
        "bright-yellow",
        "bright-blue",
        "bright-magenta",
        "bright-cyan",
        "bright-white",
    ];

    /// Appends `text` as escaped HTML with colour spans.
    pub(crate) fn to_html(out: &mut String, text: &str) {
        let plain = !text
            .bytes()
            .any(|b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f);
        if plain {
            escape_into(out, text);
            return;
        }
        let mut emitter = Emitter { out, open: None };
        // The current line as (char, style) cells, so `\r` and backspace can overwrite.
        let mut line: Vec<(char, Style)> = Vec::new();
        let mut cursor = 0usize;
        let mut style = Style::default();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\n' => {
                    emitter.line(&line);
                    // Spans never cross lines.
                    emitter.close();
                    emitter.out.push('\n');
                    line.clear();
                    cursor = 0;
                }
                '\r' => {
                    if chars.peek() != Some(&'\n') {
                        cursor = 0;
                    }
                }
                '\u{8}' => cursor = cursor.saturating_sub(1),
                '\u{1b}' => escape_sequence(&mut chars, &mut style),
                '\t' => put(&mut line, &mut cursor, c, style),
                c if c.is_control() => {}
                c => put(&mut line, &mut cursor, c, style),
            }
        }
        emitter.line(&line);
        emitter.close();
    }

    fn put(line: &mut Vec<(char, Style)>, cursor: &mut usize, c: char, style: Style) {
        match line.get_mut(*cursor) {
            Some(cell) => *cell = (c, style),
            None => line.push((c, style)),
        }
        *cursor += 1;
    }

    /// Consumes the sequence after an ESC; applies it if it is SGR (`ESC [ … m`).
    fn escape_sequence(chars: &mut Peekable<Chars<'_>>, style: &mut Style) {
        match chars.next() {
            Some('[') => {
                let mut params = String::new();
                for c in chars.by_ref() {
                    match c {
                        '0'..='?' => {
                            if params.len() < 256 {
                                params.push(c);
                            }
                        }
                        ' '..='/' => {}
                        '@'..='~' => {
                            if c == 'm' {
                                apply_sgr(&params, style);
                            }
                            return;
                        }
                        // Not a valid CSI sequence: drop what we have.
                        _ => return,
                    }
                }
            }
            Some(']') => {
                // OSC (window titles, hyperlinks): up to BEL or ST (ESC \).
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        return;
                    }
                    if c == '\u{1b}' {
                        if chars.peek() == Some(&'\\') {
                            chars.next();
                        }
                        return;
                    }
                }
            }
            // Two-character escapes (ESC 7, ESC c, …): drop.
            _ => {}
        }
    }

    fn apply_sgr(params: &str, style: &mut Style) {
        if params.contains(['<', '=', '>', '?']) {
            return; // private sequences
        }
        let mut codes = Vec::new();
        for p in params.split([';', ':']) {
            if p.is_empty() {
                codes.push(0);
            } else {
                match p.parse::<u32>() {
                    Ok(n) => codes.push(n),
                    Err(_) => return,
                }
            }
        }
        let mut it = codes.into_iter();
        while let Some(code) = it.next() {
            match code {
                0 => *style = Style::default(),
                1 => style.bold = true,
                22 => style.bold = false,
                30..=37 => style.fg = Some(Color::Indexed((code - 30) as u8)),
                39 => style.fg = None,
                40..=47 => style.bg = Some(Color::Indexed((code - 40) as u8)),
                49 => style.bg = None,
                90..=97 => style.fg = Some(Color::Indexed((code - 90 + 8) as u8)),
                100..=107 => style.bg = Some(Color::Indexed((code - 100 + 8) as u8)),
                38 | 48 => {
                    let color = match it.next() {
                        Some(5) => it
                            .next()
                            .and_then(|n| u8::try_from(n).ok())
                            .map(Color::Indexed),
                        Some(2) => {
                            let (r, g, b) = (it.next(), it.next(), it.next());
                            match (r, g, b) {
                                (Some(r), Some(g), Some(b)) => {
                                    match (u8::try_from(r), u8::try_from(g), u8::try_from(b)) {
                                        (Ok(r), Ok(g), Ok(b)) => Some(Color::Rgb(r, g, b)),
                                        _ => None,
                                    }
                                }
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    if let Some(color) = color {
                        if code == 38 {
                            style.fg = Some(color);
                        } else {
                            style.bg = Some(color);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// RGB for xterm palette entries 16–255.
    fn xterm_rgb(index: u8) -> (u8, u8, u8) {
        if index >= 232 {
            let v = 8 + 10 * (index - 232);
            return (v, v, v);
        }
        let i = index.saturating_sub(16);
        let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
        (level(i / 36), level((i / 6) % 6), level(i % 6))
    }

    struct Emitter<'a> {
        out: &'a mut String,
        /// The style of the open `<span>`, if one is open.
        open: Option<Style>,
    }

    impl Emitter<'_> {
        fn line(&mut self, cells: &[(char, Style)]) {
            let mut buf = [0u8; 4];
            for &(c, style) in cells {
                let current = self.open.unwrap_or_default();
                if style != current {
                    self.close();
                    if style != Style::default() {
                        self.open_span(style);
                    }
                }
                escape_into(self.out, c.encode_utf8(&mut buf));
            }
        }

        fn open_span(&mut self, style: Style) {
            let mut classes = Vec::new();
            let mut css = String::new();
            if style.bold {
                classes.push("ansi-bold".to_owned());
            }
            for (color, layer, property) in [
                (style.fg, "fg", "color"),
                (style.bg, "bg", "background-color"),
            ] {
                let rgb = match color {
                    None => continue,
                    Some(Color::Indexed(i)) if usize::from(i) < NAMES.len() => {
                        classes.push(format!("ansi-{}-{layer}", NAMES[usize::from(i)]));
                        continue;
                    }
                    Some(Color::Indexed(i)) => xterm_rgb(i),
                    Some(Color::Rgb(r, g, b)) => (r, g, b),
                };
                let _ = write!(css, "{property}:rgb({},{},{});", rgb.0, rgb.1, rgb.2);
            }
            self.out.push_str("<span");
            if !classes.is_empty() {
                let _ = write!(self.out, " class=\"{}\"", classes.join(" "));
            }
            if !css.is_empty() {
                let _ = write!(self.out, " style=\"{css}\"");
            }
            self.out.push('>');
            self.open = Some(style);
        }

        fn close(&mut self) {
            if self.open.take().is_some() {
                self.out.push_str("</span>");
            }
        }
    }

    #[cfg(test)]
    mod tests {
        fn html(text: &str) -> String {
            let mut s = String::new();
            super::to_html(&mut s, text);
            s
        }

        #[test]
        fn sgr_colours_become_spans() {
            assert_eq!(
                html("\u{1b}[31mred\u{1b}[0m plain"),
                "<span class=\"ansi-red-fg\">red</span> plain"
            );
            assert_eq!(
                html("\u{1b}[1;92;44mx\u{1b}[39;49m"),
                "<span class=\"ansi-bold ansi-bright-green-fg ansi-blue-bg\">x</span>"
            );
            assert_eq!(
                html("\u{1b}[38;5;196ma\u{1b}[38;2;1;2;3mb\u{1b}[48;5;3mc"),
                "<span style=\"color:rgb(255,0,0);\">a</span>\
                 <span style=\"color:rgb(1,2,3);\">b</span>\
                 <span class=\"ansi-yellow-bg\" style=\"color:rgb(1,2,3);\">c</span>"
            );
        }

        #[test]
        fn other_sequences_are_dropped_and_text_escaped() {
            let out = html("a\u{1b}[2Kb\u{1b}]0;title\u{7}c\u{1b}[?25l<d>\u{7}\u{1b}");
            assert_eq!(out, "abc&lt;d&gt;");
            // Garbage SGR parameters are ignored, not applied.
            assert_eq!(html("\u{1b}[3x1mz"), "1mz");
        }

        #[test]
        fn carriage_returns_overwrite_like_a_terminal() {
            assert_eq!(html("10%\r50%\r100%\ndone"), "100%\ndone");
            assert_eq!(html("abcdef\rXY"), "XYcdef");
            assert_eq!(html("line\r\nnext\r"), "line\nnext");
            assert_eq!(html("ab\u{8}c"), "ac");
            assert!(!html("x\ry\r").contains('\r'));
        }
    }
}

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notebook(cells: Value) -> Vec<u8> {
        notebook_with_meta(cells, json!({}))
    }

    fn notebook_with_meta(cells: Value, metadata: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells
        }))
        .expect("serialise test notebook")
    }

    fn md(source: &str) -> Value {
        json!({"cell_type": "markdown", "metadata": {}, "source": source})
    }

    fn code(source: &str, outputs: Value) -> Value {
        json!({"cell_type": "code", "metadata": {}, "execution_count": 1,
               "source": source, "outputs": outputs})
    }

    fn render_ok(bytes: &[u8]) -> Rendered {
        match render(bytes) {
            Ok(r) => r,
            Err(e) => panic!("render failed: {e}"),
        }
    }

    fn html_of(cells: Value) -> String {
        render_ok(&notebook(cells)).html
    }

    /// The HTML with the contents of every `srcdoc="…"` attribute removed.
    fn outside_srcdoc(html: &str) -> String {
        let mut rest = html;
        let mut out = String::new();
        while let Some(i) = rest.find("srcdoc=\"") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 8..];
            let end = after.find('"').expect("closed srcdoc attribute");
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn markdown_with_table_list_and_heading() {
        let html = html_of(json!([md(
            "# Title\n\n- one\n- ~~two~~\n- [x] done\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n"
        )]));
        assert!(html.contains("<section class=\"nb-cell nb-markdown\" data-index=\"0\">"));
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<li>one</li>"));
        assert!(html.contains("<del>two</del>"));
        assert!(html.contains("<input"), "task list checkbox kept: {html}");
        assert!(html.contains("checked"));
        assert!(html.contains("<table>"));
        assert!(
            html.contains("<th style=\"text-align: left\">a</th>"),
            "{html}"
        );
        assert!(
            html.contains("<td style=\"text-align: right\">2</td>"),
            "{html}"
        );
    }

    #[test]
    fn markdown_math_stays_as_text() {
        let html = html_of(json!([md("Energy $E = m_1 c_2^2$ and $$\\sum_i x_i$$")]));
        assert!(html.contains("$E = m_1 c_2^2$"), "{html}");
        assert!(html.contains("$$\\sum_i x_i$$"), "{html}");
        assert!(!html.contains("<em>"));
    }

    #[test]
    fn markdown_xss_is_neutralised() {
        let html = html_of(json!([md(
            "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n\
             [x](javascript:alert(3)) [y](JaVaScRiPt:alert(4)) <a href=\"data:text/html,hi\">z</a>\n\n\
             <iframe src=\"https://evil\"></iframe><style>body{}</style>\
             <div onclick=\"alert(5)\">div</div>"
        )]));
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(
            !lower.contains("alert(1)"),
            "script contents dropped: {html}"
        );
        assert!(!lower.contains("onerror"), "{html}");
        assert!(!lower.contains("onclick"), "{html}");
        assert!(!lower.contains("javascript:"), "{html}");
        assert!(!lower.contains("data:text/html"), "{html}");
        assert!(!lower.contains("<iframe"), "{html}");
        assert!(!lower.contains("<style"), "{html}");
        // Relative image source dropped; the link text survives.
        assert!(!html.contains("src=\"x\""));
        assert!(html.contains(">x</a>") || html.contains("x"));
    }

    #[test]
    fn markdown_links_and_images_allowed() {
        let html = html_of(json!([md(
            "[web](https://example.com/a) [mail](mailto:a@b.c) [frag](#sec)\n\n\
             ![pic](https://example.com/p.png) ![inline](data:image/png;base64,iVBORw0KGgo=)"
        )]));
        assert!(html.contains("href=\"https://example.com/a\""), "{html}");
        assert!(html.contains("href=\"mailto:a@b.c\""));
        assert!(html.contains("href=\"#nb-sec\""), "{html}");
        assert!(html.contains("src=\"https://example.com/p.png\""));
        assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""));
    }

    #[test]
    fn markdown_attachments_resolve_to_data_uris() {
        let cell = json!({
            "cell_type": "markdown", "metadata": {},
            "source": ["![shot](attachment:shot.png)\n", "![gone](attachment:missing.png)"],
            "attachments": {"shot.png": {"image/png": "iVBORw0K\nGgo="}}
        });
        let html = html_of(json!([cell]));
        assert!(
            html.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""),
            "{html}"
        );
        assert!(!html.contains("attachment:"), "{html}");
    }

    #[test]
    fn papermill_banner_stays_readable() {
        let html = html_of(json!([
            md(
                "<span style=\"color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; \
             font-size:2em;\">An Exception was encountered at '<a href=\"#papermill-error-cell\">In [3]</a>'.</span>"
            ),
            md(
                "<span id=\"papermill-error-cell\" style=\"color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; \
             font-size:2em;\">Execution using papermill encountered an exception here and stopped:</span>"
            )
        ]));
        assert!(
            html.contains("<span class=\"nb-red\">An Exception was encountered"),
            "{html}"
        );
        assert!(html.contains("href=\"#nb-papermill-error-cell\""), "{html}");
        assert!(html.contains("id=\"nb-papermill-error-cell\""), "{html}");
        assert!(!html.contains("style=\"color"), "{html}");
    }

    #[test]
    fn html_output_only_inside_sandboxed_srcdoc() {
        let rows: String = (0..10).map(|i| format!("<tr><td>{i}</td></tr>")).collect();
        let html = html_of(json!([code(
            "HTML(...)",
            json!([{
                "output_type": "execute_result", "execution_count": 1, "metadata": {},
                "data": {
                    "text/html": ["<b>hi</b>", "<script>document.title=\"pwned\"</script>",
                                  "<img src=x onerror=alert(1)>"],
                    "text/plain": ["<HTML object>"]
                }
            }, {
                "output_type": "display_data", "metadata": {},
                "data": {"text/html": format!("<table>{rows}</table>")}
            }])
        )]));
        assert!(
            html.contains("<iframe class=\"nb-html\" sandbox=\"\""),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;"));
        let outside = outside_srcdoc(&html).to_ascii_lowercase();
        assert!(!outside.contains("<script"), "{outside}");
        assert!(!outside.contains("onerror"), "{outside}");
        assert!(
            !html.to_ascii_lowercase().contains("<script"),
            "raw script anywhere"
        );
        // Heights: a tiny snippet gets the minimum, a 10-row table more.
        assert!(html.contains("style=\"height:60px\""), "{html}");
        assert!(html.contains("style=\"height:274px\""), "{html}");
        assert!(html.contains(">Out[1]:<"));
    }

    #[test]
    fn png_becomes_data_uri_and_invalid_base64_is_refused() {
        let html = html_of(json!([code(
            "plot()",
            json!([
                {"output_type": "display_data", "metadata": {"image/png": {"width": 320}},
                 "data": {"image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk\n+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\n",
                          "text/plain": ["<Figure>"]}},
                {"output_type": "display_data", "metadata": {},
                 "data": {"image/jpeg": "not base64!\" onerror=\"alert(1)"}}
            ])
        )]));
        assert!(
            html.contains("src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\""),
            "{html}"
        );
        assert!(html.contains("width=\"320\""));
        assert!(!html.contains("<Figure>"), "text/plain not chosen over png");
        assert!(
            html.contains("image/jpeg output is not valid base64"),
            "{html}"
        );
        assert!(!html.contains("onerror"));
        assert!(!html.contains("data:image/jpeg"));
    }

    #[test]
    fn base64_validation() {
        assert!(clean_base64("aGVsbG8=").is_some());
        assert!(clean_base64("aGVs\nbG8=\n").is_some());
        assert!(clean_base64("aGVsbG8").is_none(), "bad length");
        assert!(clean_base64("aGV=bG8=").is_none(), "padding inside");
        assert!(clean_base64("aGVs\"G8=").is_none());
        assert!(clean_base64("").is_none());
    }

    #[test]
    fn svg_is_base64_image_never_inline() {
        let html = html_of(json!([code(
            "svg",
            json!([{"output_type": "display_data", "metadata": {},
                    "data": {"image/svg+xml": ["<svg xmlns=\"http://www.w3.org/2000/svg\">", "<script>alert(1)</script></svg>"]}}])
        )]));
        assert!(
            html.contains("src=\"data:image/svg+xml;base64,PHN2Zy"),
            "{html}"
        );
        assert!(!html.contains("<svg"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn ansi_traceback_becomes_coloured_spans() {
        let r = render_ok(&notebook(json!([code(
            "1/0",
            json!([{
                "output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                "traceback": [
                    "\u{1b}[31m----------------\u{1b}[39m",
                    "\u{1b}[31mZeroDivisionError\u{1b}[39m  Traceback (most recent call last)",
                    "\u{1b}[32m----> \u{1b}[39m\u{1b}[32m1\u{1b}[39m \u{1b}[1;38;5;208m1\u{1b}[0m/\u{1b}[32m0\u{1b}[39m <x>",
                ]
            }])
        )])));
        let html = &r.html;
        assert!(html.contains("<div class=\"nb-output nb-error\">"));
        assert!(
            html.contains("<strong>ZeroDivisionError</strong>: division by zero"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"ansi-red-fg\">ZeroDivisionError</span>"),
            "{html}"
        );
        // Adjacent runs of one colour are merged.
        assert!(
            html.contains("<span class=\"ansi-green-fg\">----&gt; 1</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"ansi-bold\" style=\"color:rgb(255,135,0);\">1</span>"),
            "{html}"
        );
        assert!(html.contains("&lt;x&gt;"));
        assert!(!html.contains('\u{1b}'), "raw ESC left");
        assert!(!html.contains("[39m"));
        assert_eq!(r.failed_cell, Some(0), "error output marks the failed cell");
    }

    #[test]
    fn stream_arrays_are_joined_and_merged() {
        let html = html_of(json!([code(
            "print",
            json!([
                {"output_type": "stream", "name": "stdout", "text": ["hello ", "world\n", "progress 10%\r"]},
                {"output_type": "stream", "name": "stdout", "text": "progress 100%\n"},
                {"output_type": "stream", "name": "stderr", "text": ["oops\n"]}
            ])
        )]));
        assert!(html.contains("<div class=\"nb-output nb-stream nb-stdout\"><pre>hello world\nprogress 100%\n</pre>"), "{html}");
        assert!(
            html.contains("<div class=\"nb-output nb-stream nb-stderr\"><pre>oops\n</pre>"),
            "{html}"
        );
        assert!(!html.contains('\r'));
        assert_eq!(
            html.matches("nb-stdout").count(),
            1,
            "consecutive chunks merged"
        );
    }

    #[test]
    fn code_cell_source_escaped_with_prompt() {
        let cells = json!([
            code("if a < b and c > d:\n    print(\"&\")", json!([])),
            {"cell_type": "code", "metadata": {}, "execution_count": null, "source": [], "outputs": []},
            {"cell_type": "raw", "metadata": {}, "source": "<b>raw</b>"}
        ]);
        let html = html_of(cells);
        assert!(html.contains("In&nbsp;[1]:"));
        assert!(html.contains("In&nbsp;[&nbsp;]:"));
        assert!(html.contains("<pre class=\"nb-source\"><code>if a &lt; b and c &gt; d:\n    print(&quot;&amp;&quot;)</code></pre>"), "{html}");
        assert!(html.contains("<section class=\"nb-cell nb-raw\" data-index=\"2\">"));
        assert!(html.contains("&lt;b&gt;raw&lt;/b&gt;"));
        assert!(html.starts_with("<div class=\"nb\">") && html.ends_with("</div>"));
    }

    #[test]
    fn other_mime_types() {
        let html = html_of(json!([code(
            "x",
            json!([
                {"output_type": "display_data", "metadata": {}, "data": {"text/markdown": "**bold** <script>x()</script>"}},
                {"output_type": "display_data", "metadata": {}, "data": {"text/latex": "$\\alpha < 1$"}},
                {"output_type": "display_data", "metadata": {}, "data": {"application/json": {"k": [1, 2]}}},
                {"output_type": "display_data", "metadata": {}, "data": {"application/x-unknown": "?"}}
            ])
        )]));
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(!html.contains("<script"));
        assert!(html.contains("$\\alpha &lt; 1$"));
        assert!(html.contains("&quot;k&quot;: ["), "{html}");
        assert!(html.contains("application/x-unknown cannot be previewed"));
    }

    #[test]
    fn nbformat_3_is_unsupported_with_advice() {
        let v3 = br#"{"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
                      "worksheets": [{"cells": [], "metadata": {}}]}"#;
        let err = render(v3).expect_err("v3 rejected");
        assert!(matches!(
            err,
            RenderError::UnsupportedVersion { major: 3, minor: 0 }
        ));
        let msg = err.to_string();
        assert!(msg.contains("3.0"), "{msg}");
        assert!(
            msg.contains("jupyter nbconvert --to notebook --nbformat 4"),
            "{msg}"
        );

        let v5 = br#"{"nbformat": 5, "nbformat_minor": 1, "metadata": {}, "cells": []}"#;
        let msg = render(v5).expect_err("v5 rejected").to_string();
        assert!(msg.contains("5.1") && msg.contains("nbconvert"), "{msg}");
    }

    #[test]
    fn non_json_and_non_notebooks() {
        for bad in [
            &b"print('hello')"[..],
            b"",
            b"{\"nbformat\": 4, \"cells\": [",
            b"\xff\xfe",
        ] {
            match render(bad) {
                Err(e @ RenderError::NotJson(_)) => {
                    assert!(e.to_string().contains("not a Jupyter notebook"), "{e}")
                }
                other => panic!("expected NotJson, got {other:?}"),
            }
        }
        for bad in [
            &b"[1, 2]"[..],
            b"{\"hello\": 1}",
            b"{\"nbformat\": 4, \"cells\": {}}",
        ] {
            match render(bad) {
                Err(e @ RenderError::NotANotebook(_)) => {
                    assert!(e.to_string().contains("not a Jupyter notebook"), "{e}")
                }
                other => panic!("expected NotANotebook, got {other:?}"),
            }
        }
    }

    #[test]
    fn metadata_is_reported() {
        let bytes = notebook_with_meta(
            json!([md("a"), md("b")]),
            json!({"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}),
        );
        let r = render_ok(&bytes);
        assert_eq!(r.cells, 2);
        assert_eq!(r.nbformat, (4, 5));
        assert_eq!(r.kernel.as_deref(), Some("python3"));
        assert_eq!(r.language.as_deref(), Some("python"));
        assert_eq!(r.failed_cell, None);
        // A BOM and a missing nbformat_minor are tolerated.
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(br#"{"nbformat": 4, "metadata": {}, "cells": []}"#);
        assert_eq!(render_ok(&bom).nbformat, (4, 0));
    }

    #[test]
    fn papermill_status_parameters_and_labels() {
        let pm = |status: &str| json!({"papermill": {"status": status, "duration": 1.25, "exception": status == "failed"}});
        let cells = json!([
            {"cell_type": "code", "execution_count": 1, "source": "alpha = 0.1",
             "metadata": {"tags": ["injected-parameters"], "papermill": {"status": "completed", "duration": 0.012}},
             "outputs": []},
            {"cell_type": "code", "execution_count": 2, "source": "boom()", "metadata": pm("failed"),
             "outputs": [{"output_type": "error", "ename": "NameError", "evalue": "boom", "traceback": []}]},
            {"cell_type": "code", "execution_count": null, "source": "later()", "metadata": pm("pending"), "outputs": []}
        ]);
        let bytes = notebook_with_meta(
            cells,
            json!({"papermill": {"parameters": {"alpha": 0.1, "name": "<b>x</b>"}, "duration": 75.0}}),
        );
        let r = render_ok(&bytes);
        assert_eq!(r.failed_cell, Some(1));
        assert!(
            r.html
                .contains("<section class=\"nb-cell nb-code nb-failed\" data-index=\"1\">"),
            "{}",
            r.html
        );
        assert!(
            r.html
                .contains("<section class=\"nb-cell nb-code nb-pending\" data-index=\"2\">")
        );
        assert!(r.html.contains("injected parameters</span>"));
        assert!(
            r.html.contains("<span class=\"nb-duration\">12 ms</span>"),
            "{}",
            r.html
        );
        assert!(
            r.html.contains("<span class=\"nb-duration\">1.2 s</span>") || r.html.contains("1.3 s")
        );
        assert!(r.html.contains("<caption>Parameters</caption>"));
        assert!(
            r.html
                .contains("<tr><th>alpha</th><td><code>0.1</code></td></tr>"),
            "{}",
            r.html
        );
        assert!(r.html.contains("&quot;&lt;b&gt;x&lt;/b&gt;&quot;"));
        assert!(r.html.contains("papermill run took 1 min 15 s"));
    }

    #[test]
    fn huge_outputs_are_truncated() {
        let big = "x".repeat(3 * MAX_TEXT);
        let html = html_of(json!([code(
            "spam()",
            json!([{"output_type": "stream", "name": "stdout", "text": big},
                   {"output_type": "display_data", "metadata": {}, "data": {"text/html": format!("<p>{big}</p>")}}])
        )]));
        assert_eq!(
            html.matches("Output truncated: showing the first 1.0 MiB of 3.0 MiB.")
                .count(),
            2,
            "one note per output"
        );
        assert!(html.len() < 3 * MAX_TEXT, "output bounded: {}", html.len());
    }

    #[test]
    fn large_notebook_renders() {
        // ~50 MB: many cells with outputs plus a few large images.
        let image = "iVBORw0KGgo".to_owned() + &"A".repeat(8 * 1024 * 1024 - 12) + "=";
        let text = "line of output\n".repeat(2000);
        let mut cells = Vec::new();
        for i in 0..1000 {
            cells.push(code(
                &format!("step({i})"),
                json!([{"output_type": "stream", "name": "stdout", "text": text}]),
            ));
        }
        for _ in 0..2 {
            cells.push(code("plot()", json!([{"output_type": "display_data", "metadata": {}, "data": {"image/png": image}}])));
        }
        let bytes = notebook(Value::Array(cells));
        assert!(bytes.len() > 45_000_000, "{}", bytes.len());
        let r = render_ok(&bytes);
        assert_eq!(r.cells, 1002);
        assert_eq!(r.html.matches("data:image/png;base64,").count(), 2);
    }

    /// `tests/fixtures/preview.ipynb` was made by really executing a notebook with
    /// `.venv/bin/jupyter nbconvert --to notebook --execute --allow-errors` (its cells
    /// are visible in the file; re-execute it the same way to refresh it).
    #[test]
    fn real_executed_fixture() {
        let bytes = include_bytes!("../tests/fixtures/preview.ipynb");
        let r = render_ok(bytes);
        let html = &r.html;
        assert_eq!(r.cells, 6);
        assert_eq!(r.nbformat.0, 4);
        assert_eq!(r.kernel.as_deref(), Some("python3"));
        assert_eq!(r.language.as_deref(), Some("python"));
        assert_eq!(r.failed_cell, Some(5));
        // Markdown: heading, list, table.
        assert!(html.contains("<h1>Preview fixture</h1>"), "{html}");
        assert!(html.contains("<li><strong>beta</strong></li>"));
        assert!(
            html.contains("<td style=\"text-align: right\">0.91</td>"),
            "{html}"
        );
        // Streams.
        assert!(html.contains("nb-stdout\"><pre>hello from stdout\n</pre>"));
        assert!(html.contains("nb-stderr\"><pre>warning on stderr\n</pre>"));
        // Matplotlib PNG.
        assert!(
            html.contains("<img alt=\"output image\" src=\"data:image/png;base64,iVBORw0KGgo"),
            "{html}"
        );
        // pandas DataFrame: an HTML table inside a sandboxed iframe.
        assert!(
            html.contains("&lt;table border=&quot;1&quot; class=&quot;dataframe&quot;&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;td&gt;2.25&lt;/td&gt;"));
        assert!(
            !html.contains("<table border"),
            "DataFrame HTML not inlined"
        );
        assert!(
            html.matches("<iframe class=\"nb-html\" sandbox=\"\"")
                .count()
                >= 2
        );
        // IPython HTML with a script: only escaped, inside srcdoc.
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt;&lt;script&gt;"));
        assert!(
            !outside_srcdoc(html)
                .to_ascii_lowercase()
                .contains("<script")
        );
        assert!(!html.to_ascii_lowercase().contains("<script"));
        // ZeroDivisionError with colours.
        assert!(html.contains("<strong>ZeroDivisionError</strong>: division by zero"));
        assert!(html.contains("<span class=\"ansi-red-fg\">ZeroDivisionError</span>"));
        assert!(!html.contains('\u{1b}'));
        assert!(html.contains("In&nbsp;[5]:"));
    }

    #[test]
    fn css_is_scoped() {
        assert!(CSS.contains(".nb "));
        let mut css = String::new();
        let mut rest = CSS;
        while let Some(start) = rest.find("/*") {
            css.push_str(&rest[..start]);
            let end = rest[start..].find("*/").expect("closed comment");
            rest = &rest[start + end + 2..];
        }
        css.push_str(rest);
        assert!(css.contains("overflow-x: auto") && css.contains("resize: vertical"));
        for rule in css.split('}') {
            let Some((selectors, _)) = rule.split_once('{') else {
                continue;
            };
            let selectors = selectors.trim();
            if selectors.is_empty() || selectors.starts_with('@') {
                continue;
            }
            for sel in selectors.split(',') {
                let sel = sel.trim();
                assert!(sel.starts_with(".nb"), "unscoped selector: {sel:?}");
            }
        }
    }
}
