//! The candidate notebook: an nbformat 4.5 `.ipynb` that explains the
//! problem, shows the leaderboard and reproduces the chosen candidate with
//! the `atelier` CLI (train, predict, score with pandas / scikit-learn),
//! optionally the whole AutoML run and the equivalent HTTP call.
//!
//! Commands run through `subprocess.run([...])` with an argument list, so
//! no shell ever re-parses a path; each is printed (and shown in markdown)
//! as the equivalent shell line, quoted the way Python's `shlex.quote`
//! does. Every user string enters Python code as a JSON string literal,
//! which is a valid Python literal.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use learn::ProblemType;

use crate::quality::LeaderboardRow;

/// `atelier automl` settings for the optional "reproduce the search" cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomlCall {
    pub time_budget: f64,
    pub max_candidates: usize,
    pub seed: u64,
    /// A separate validation file (`--validation`), if the run used one.
    pub validation_path: Option<String>,
}

/// An HTTP request that starts the same work on a server (the body is
/// sent as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCall {
    /// e.g. `http://127.0.0.1:5000`.
    pub server_url: String,
    /// e.g. `POST`.
    pub method: String,
    /// e.g. `/api/...`.
    pub path: String,
    pub body: Value,
}

/// What the notebook describes and reproduces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotebookSpec {
    pub title: String,
    /// The training data as the user would pass it to `atelier`.
    pub data_path: String,
    pub target: String,
    pub problem: ProblemType,
    /// Class labels by index (empty for regression); they name the
    /// `probability_<label>` columns of `atelier predict`.
    pub labels: Vec<String>,
    /// The metric the search optimised (`auc`, `accuracy`, `rmse`, …).
    pub metric: String,
    /// How candidates were validated, in words.
    pub validation: String,
    pub leaderboard: Vec<LeaderboardRow>,
    /// The candidate to reproduce with `atelier train` (a single learner:
    /// for an ensemble winner pass the best single model).
    pub candidate: LeaderboardRow,
    /// Rows to predict and score; `None` scores the training data itself.
    pub test_path: Option<String>,
    /// The command that runs Atelier (default `atelier`).
    pub atelier: String,
    pub automl: Option<AutomlCall>,
    pub http: Option<HttpCall>,
}

/// Quote one argument for a POSIX shell exactly as Python's `shlex.quote`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// A Python string literal for `s` (a JSON string is one).
fn py(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Escape text for markdown (CommonMark backslash escapes).
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            c if "\\`*_{}[]<>()#+-.!|~&$".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block whose fence is longer than any backtick run inside.
fn fenced(lang: &str, body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}{lang}\n{body}\n{fence}")
}

fn lines(src: &str) -> Value {
    let parts: Vec<&str> = src.split_inclusive('\n').collect();
    Value::Array(parts.into_iter().map(|l| Value::String(l.into())).collect())
}

struct Cells(Vec<Value>);

impl Cells {
    fn markdown(&mut self, src: &str) {
        let id = format!("md-{:02}", self.0.len());
        self.0.push(json!({
            "cell_type": "markdown",
            "id": id,
            "metadata": {},
            "source": lines(src),
        }));
    }
    fn code(&mut self, src: &str) {
        self.code_tagged(src, &[]);
    }
    fn code_tagged(&mut self, src: &str, tags: &[&str]) {
        let id = format!("code-{:02}", self.0.len());
        let metadata = if tags.is_empty() {
            json!({})
        } else {
            json!({ "tags": tags })
        };
        self.0.push(json!({
            "cell_type": "code",
            "execution_count": null,
            "id": id,
            "metadata": metadata,
            "outputs": [],
            "source": lines(src),
        }));
    }
}

/// The `atelier train` argument list (after the program name).
fn train_args(spec: &NotebookSpec) -> Vec<String> {
    let mut a = vec![
        "train".to_string(),
        spec.data_path.clone(),
        "--target".into(),
        spec.target.clone(),
        "--algorithm".into(),
        spec.candidate.algorithm.clone(),
        "--problem-type".into(),
        spec.problem.as_str().into(),
    ];
    for (k, v) in &spec.candidate.params {
        a.push("--param".into());
        a.push(format!("{k}={v}"));
    }
    a.push("--output".into());
    a.push("model.atelier".into());
    a
}

fn automl_args(spec: &NotebookSpec, call: &AutomlCall) -> Vec<String> {
    let mut a = vec![
        "automl".to_string(),
        spec.data_path.clone(),
        "--target".into(),
        spec.target.clone(),
        "--metric".into(),
        spec.metric.clone(),
        "--problem-type".into(),
        spec.problem.as_str().into(),
        "--time-budget".into(),
        format!("{}", call.time_budget),
        "--max-candidates".into(),
        call.max_candidates.to_string(),
        "--seed".into(),
        call.seed.to_string(),
    ];
    if let Some(v) = &call.validation_path {
        a.push("--validation".into());
        a.push(v.clone());
    }
    a.push("--output".into());
    a.push("automl.atelier".into());
    a
}

fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .map(|s| shell_quote(&s))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Python list expression: `[ATELIER, "train", DATA, ...]`, with the
/// known values replaced by the notebook's variables.
fn py_list(args: &[String], spec: &NotebookSpec) -> String {
    let mut items = vec!["ATELIER".to_string()];
    for (i, a) in args.iter().enumerate() {
        // the data path and target are variables the reader may change
        let prev = if i > 0 { args[i - 1].as_str() } else { "" };
        let item = if i == 1 && *a == spec.data_path {
            "DATA".to_string()
        } else if prev == "--target" && *a == spec.target {
            "TARGET".to_string()
        } else if prev == "--output" && a == "model.atelier" {
            "MODEL".to_string()
        } else {
            py(a)
        };
        items.push(item);
    }
    let mut s = String::from("[\n");
    for it in items {
        s.push_str("    ");
        s.push_str(&it);
        s.push_str(",\n");
    }
    s.push(']');
    s
}

/// Python that computes `metric` from `truth` (labels as text or values)
/// and `pred` (the predictions CSV as a DataFrame).
fn metric_code(spec: &NotebookSpec) -> String {
    let m = spec.metric.as_str();
    if spec.problem == ProblemType::Regression {
        let expr = match m {
            "rmse" => "metrics.mean_squared_error(y_true, y_pred) ** 0.5",
            "mae" => "metrics.mean_absolute_error(y_true, y_pred)",
            "r2" => "metrics.r2_score(y_true, y_pred)",
            _ => "metrics.mean_squared_error(y_true, y_pred)",
        };
        return format!(
            "y_true = truth.astype(float).to_numpy()\ny_pred = pred[\"predicted_label\"].astype(float).to_numpy()\nscore = {expr}\nprint(f\"{{METRIC}} = {{score:.4f}}\")\nprint(f\"r2 = {{metrics.r2_score(y_true, y_pred):.4f}}, rmse = {{metrics.mean_squared_error(y_true, y_pred) ** 0.5:.4f}}\")"
        );
    }
    let pos = if spec.problem == ProblemType::Binary {
        "POSITIVE = LABELS[1]  # the positive class (probability columns follow LABELS)\n"
    } else {
        ""
    };
    let expr = match (m, spec.problem) {
        ("auc", ProblemType::Binary) => "metrics.roc_auc_score(y_true == POSITIVE, proba[:, 1])",
        ("auc", _) => "metrics.roc_auc_score(y_true, proba, multi_class=\"ovr\", labels=LABELS)",
        ("log_loss", _) => "metrics.log_loss(y_true, proba, labels=LABELS)",
        ("balanced_accuracy", _) => "metrics.balanced_accuracy_score(y_true, y_pred)",
        ("f1", _) => "metrics.f1_score(y_true, y_pred, pos_label=POSITIVE)",
        ("precision", _) => "metrics.precision_score(y_true, y_pred, pos_label=POSITIVE)",
        ("recall", _) => "metrics.recall_score(y_true, y_pred, pos_label=POSITIVE)",
        ("f1_macro", _) => "metrics.f1_score(y_true, y_pred, average=\"macro\")",
        _ => "metrics.accuracy_score(y_true, y_pred)",
    };
    format!(
        "{pos}y_true = truth.map(label).to_numpy()\ny_pred = pred[\"predicted_label\"].map(label).to_numpy()\nproba = pred[[f\"probability_{{c}}\" for c in LABELS]].to_numpy()\nscore = {expr}\nprint(f\"{{METRIC}} = {{score:.4f}}\")\nprint(f\"accuracy = {{metrics.accuracy_score(y_true, y_pred):.4f}}\")"
    )
}

/// The nbformat 4.5 notebook for `spec`.
pub fn notebook(spec: &NotebookSpec) -> Value {
    let mut c = Cells(Vec::new());
    let cand = &spec.candidate;
    let mut intro = format!(
        "# {}\n\nThis notebook reproduces Autopilot's chosen candidate with the `atelier` command line, then scores its predictions with pandas and scikit-learn.\n\n",
        md(&spec.title)
    );
    intro.push_str(&format!(
        "- **Problem:** {} — predict {} from the other columns of {}\n- **Metric:** {}\n- **Validation:** {}\n- **Candidate reproduced:** {} ({}), validation score {}\n",
        md(spec.problem.as_str()),
        md(&spec.target),
        md(&spec.data_path),
        md(&spec.metric),
        md(&spec.validation),
        md(&cand.name),
        md(&cand.algorithm),
        fmt_score(cand.score)
    ));
    if spec.problem != ProblemType::Regression {
        let labels: Vec<String> = spec.labels.iter().map(|l| md(l)).collect();
        intro.push_str(&format!("- **Classes:** {}\n", labels.join(", ")));
    }
    c.markdown(&intro);

    let mut lb = String::from(
        "## Leaderboard\n\n| rank | candidate | algorithm | score | fit s | parameters |\n|---:|---|---|---:|---:|---|\n",
    );
    let mut rows: Vec<&LeaderboardRow> = spec.leaderboard.iter().collect();
    rows.sort_by_key(|r| r.rank);
    for r in rows {
        let params: Vec<String> = r
            .params
            .iter()
            .map(|(k, v)| format!("{}={}", md(k), md(v)))
            .collect();
        lb.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {} |\n",
            r.rank,
            md(&r.name),
            md(&r.algorithm),
            fmt_score(r.score),
            r.fit_seconds,
            params.join(" ")
        ));
    }
    c.markdown(lb.trim_end());

    c.markdown("## Setup\n\n`ATELIER` is the command that runs Atelier (a full path works too). `run` prints each command as the equivalent shell line and stops on failure.");
    let test = spec.test_path.as_deref().unwrap_or(&spec.data_path);
    let missing_py = format!(
        "[{}]",
        tabular::MISSING_MARKERS
            .iter()
            .map(|l| py(l))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let labels_py = format!(
        "[{}]",
        spec.labels
            .iter()
            .map(|l| py(l))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // papermill's parameters cell: a notebook job (or papermill) can set these
    c.code_tagged(
        &format!(
            "ATELIER = {}\nDATA = {}\nTEST = {}\nTARGET = {}\nMETRIC = {}",
            py(&spec.atelier),
            py(&spec.data_path),
            py(test),
            py(&spec.target),
            py(&spec.metric),
        ),
        &["parameters"],
    );
    c.code(&format!(
        "import os\nimport shlex\nimport subprocess\n\nimport pandas as pd\nfrom sklearn import metrics\n\n# run as an Atelier notebook job: this Atelier, and the dataset given as input `data`\nATELIER = os.environ.get(\"ATELIER_BIN\", ATELIER)\nif os.environ.get(\"ATELIER_INPUT_DATA\"):\n    local = os.path.join(os.environ[\"ATELIER_INPUT_DATA\"], os.path.basename(DATA))\n    TEST = local if TEST == DATA else TEST\n    DATA = local\nLABELS = {labels_py}\nMISSING = {missing_py}  # cells atelier reads as missing\nMODEL = \"model.atelier\"\nPREDICTIONS = \"predictions.csv\"\n\n\ndef run(cmd):\n    print(\"$\", shlex.join(cmd))\n    subprocess.run(cmd, check=True)\n\n\ndef read_table(path):\n    if str(path).lower().endswith((\".parquet\", \".pq\")):\n        return pd.read_parquet(path)\n    return pd.read_csv(path, dtype=str, keep_default_na=False)\n\n\ndef label(v):\n    \"\"\"A class label as `atelier predict` writes it (1.0 -> 1, True -> true).\"\"\"\n    s = str(v).strip()\n    try:\n        f = float(s)\n    except ValueError:\n        return s.lower() if s.lower() in (\"true\", \"false\") else s\n    return str(int(f)) if f.is_integer() else repr(f)",
    ));

    let targs = train_args(spec);
    let mut train_md = format!(
        "## 1. Reproduce the candidate\n\nTrain {} ({}) with the parameters the search chose, on all of the training data. In a shell:\n\n{}",
        md(&cand.name),
        md(&cand.algorithm),
        fenced("sh", &shell_line("atelier", &targs))
    );
    if cand.algorithm == "ensemble" {
        train_md.push_str("\n\nThis candidate is an ensemble; `atelier train` fits one learner, so run the AutoML cell below to rebuild the ensemble itself.");
    }
    c.markdown(&train_md);
    c.code(&format!("run({})", py_list(&targs, spec)));

    let pargs = vec![
        "predict".to_string(),
        "model.atelier".into(),
        test.to_string(),
        "--output".into(),
        "predictions.csv".into(),
    ];
    c.markdown(&format!(
        "## 2. Predict\n\n`atelier predict` writes one row per input row: `predicted_label`{}.\n\n{}",
        if spec.problem == ProblemType::Regression {
            " (the predicted value)"
        } else {
            " and one `probability_<class>` column per class"
        },
        fenced("sh", &shell_line("atelier", &pargs))
    ));
    c.code("run([ATELIER, \"predict\", MODEL, TEST, \"--output\", PREDICTIONS])\npred = pd.read_csv(PREDICTIONS, dtype={\"predicted_label\": str})\npred.head()");

    c.markdown(&format!(
        "## 3. Score the predictions\n\n{}Rows whose target is missing are left out, as in training.",
        if spec.test_path.is_none() {
            "These are the training rows themselves, so the score is optimistic; pass held-out rows as `TEST` for an honest estimate. "
        } else {
            ""
        }
    ));
    c.code(&format!(
        "data = read_table(TEST)\nknown = ~data[TARGET].astype(str).str.strip().isin(MISSING)\ntruth = data.loc[known, TARGET]\npred = pred.loc[known.to_numpy()]\n{}",
        metric_code(spec)
    ));

    if let Some(call) = &spec.automl {
        let aargs = automl_args(spec, call);
        c.markdown(&format!(
            "## 4. Reproduce the whole AutoML run (optional)\n\nThe same search, budget and seed. It takes up to {} s, so it only runs when `RUN_AUTOML` is set.\n\n{}",
            call.time_budget,
            fenced("sh", &shell_line("atelier", &aargs))
        ));
        c.code(&format!(
            "RUN_AUTOML = False\nif RUN_AUTOML:\n    run({})",
            py_list(&aargs, spec).replace('\n', "\n    ")
        ));
    }
    if let Some(h) = &spec.http {
        let body = serde_json::to_string(&h.body).unwrap_or_else(|_| "{}".into());
        let mut text = format!(
            "## 5. The same on a server (optional)\n\n`{} {}` on the Atelier server at {} starts the search as a job (the body names a dataset already uploaded to the server); set `ATELIER_TOKEN` in the environment when the server requires a token.",
            md(&h.method),
            md(&h.path),
            md(&h.server_url)
        );
        if let Some(call) = &spec.automl {
            let mut args = automl_args(spec, call);
            args.truncate(args.len() - 2); // no local --output
            args.push("--server".into());
            args.push(h.server_url.clone());
            text.push_str(&format!(
                " The command line uploads the data and follows the job for you:\n\n{}",
                fenced("sh", &shell_line("atelier", &args))
            ));
        }
        c.markdown(&text);
        c.code(&format!(
            "import json\nimport os\nimport urllib.request\n\nRUN_HTTP = False\nSERVER = {}\nbody = json.loads({})\nif RUN_HTTP:\n    headers = {{\"Content-Type\": \"application/json\"}}\n    if os.environ.get(\"ATELIER_TOKEN\"):\n        headers[\"Authorization\"] = \"Bearer \" + os.environ[\"ATELIER_TOKEN\"]\n    req = urllib.request.Request(\n        SERVER.rstrip(\"/\") + {},\n        data=json.dumps(body).encode(),\n        headers=headers,\n        method={},\n    )\n    with urllib.request.urlopen(req) as resp:\n        print(json.dumps(json.load(resp), indent=2))",
            py(&h.server_url),
            py(&body),
            py(&h.path),
            py(&h.method)
        ));
    }

    json!({
        "cells": c.0,
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3",
                "language": "python",
                "name": "python3"
            },
            "language_info": {
                "name": "python",
                "file_extension": ".py",
                "mimetype": "text/x-python"
            },
            "atelier": {
                "target": spec.target,
                "metric": spec.metric,
                "candidate": spec.candidate.name,
                "candidate_score": spec.candidate.score,
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5
    })
}

fn fmt_score(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "–".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_python_shlex() {
        assert_eq!(shell_quote("adult.csv"), "adult.csv");
        assert_eq!(shell_quote("learning_rate=0.1"), "learning_rate=0.1");
        assert_eq!(shell_quote("my data.csv"), "'my data.csv'");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn python_literals_escape_quotes_and_newlines() {
        assert_eq!(py("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn fences_outgrow_backticks_inside() {
        assert!(fenced("sh", "echo ```x```").starts_with("````sh\n"));
        assert!(fenced("sh", "plain").starts_with("```sh\n"));
    }
}
