//! The candidate notebook's structure (nbformat 4.5) and the commands it
//! runs. `tests/python/test_reports.py` validates it with the real
//! `nbformat` package and executes it against the real binary.

use std::collections::HashSet;

use learn::ProblemType;
use reports::{AutomlCall, HttpCall, LeaderboardRow, NotebookSpec, notebook};
use serde_json::Value;

fn spec() -> NotebookSpec {
    let best = LeaderboardRow {
        rank: 1,
        name: "gbm | tuned".into(),
        algorithm: "gbm".into(),
        score: 0.9312,
        fit_seconds: 1.25,
        params: vec![
            ("learning_rate".into(), "0.05".into()),
            ("num_leaves".into(), "63".into()),
        ],
    };
    NotebookSpec {
        title: "Autopilot <candidate> for adult".into(),
        data_path: "/data/my data/it's \"adult\".csv".into(),
        target: "income \"level\"".into(),
        problem: ProblemType::Binary,
        labels: vec!["<=50K".into(), ">50K".into()],
        metric: "auc".into(),
        validation: "5-fold cross-validation".into(),
        leaderboard: vec![
            LeaderboardRow {
                rank: 2,
                name: "rf".into(),
                algorithm: "rf".into(),
                score: 0.91,
                fit_seconds: 3.0,
                params: vec![],
            },
            best.clone(),
        ],
        candidate: best,
        test_path: None,
        atelier: "atelier".into(),
        automl: Some(AutomlCall {
            time_budget: 60.0,
            max_candidates: 20,
            seed: 7,
            validation_path: None,
        }),
        http: Some(HttpCall {
            server_url: "http://127.0.0.1:5000".into(),
            method: "POST".into(),
            path: "/api/x".into(),
            body: serde_json::json!({"target": "income \"level\"", "flag": true, "none": null}),
        }),
    }
}

fn source(cell: &Value) -> String {
    match &cell["source"] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(|l| l.as_str()).collect(),
        other => panic!("bad source {other}"),
    }
}

#[test]
fn notebook_is_nbformat_4_5_with_ids_and_a_python_kernel() {
    let nb = notebook(&spec());
    assert_eq!(nb["nbformat"], 4);
    assert_eq!(nb["nbformat_minor"], 5);
    assert_eq!(nb["metadata"]["kernelspec"]["name"], "python3");
    assert_eq!(nb["metadata"]["kernelspec"]["language"], "python");
    let cells = nb["cells"].as_array().unwrap();
    assert!(cells.len() >= 10);
    let mut ids = HashSet::new();
    for c in cells {
        let id = c["id"].as_str().unwrap();
        assert!(
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        );
        assert!(ids.insert(id.to_string()), "duplicate id {id}");
        match c["cell_type"].as_str().unwrap() {
            "code" => {
                assert_eq!(c["outputs"], Value::Array(vec![]));
                assert!(c["execution_count"].is_null());
            }
            "markdown" => assert!(c.get("outputs").is_none()),
            other => panic!("cell type {other}"),
        }
        // source lines end with a newline except the last
        let lines = c["source"].as_array().unwrap();
        for l in &lines[..lines.len() - 1] {
            assert!(l.as_str().unwrap().ends_with('\n'));
        }
    }
    // round-trips through JSON text
    let text = serde_json::to_string_pretty(&nb).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), nb);
}

#[test]
fn commands_quote_paths_and_use_the_cli_flags() {
    let nb = notebook(&spec());
    let cells = nb["cells"].as_array().unwrap();
    let all_md: String = cells
        .iter()
        .filter(|c| c["cell_type"] == "markdown")
        .map(source)
        .collect::<Vec<_>>()
        .join("\n");
    let all_code: String = cells
        .iter()
        .filter(|c| c["cell_type"] == "code")
        .map(source)
        .collect::<Vec<_>>()
        .join("\n");
    // the shell line a user would paste: single-quoted like shlex.quote
    assert!(all_md.contains(
        "atelier train '/data/my data/it'\"'\"'s \"adult\".csv' --target 'income \"level\"' --algorithm gbm --problem-type binary --param learning_rate=0.05 --param num_leaves=63 --output model.atelier"
    ), "{all_md}");
    assert!(all_md.contains("atelier predict model.atelier '/data/my data/it'\"'\"'s \"adult\".csv' --output predictions.csv"));
    assert!(all_md.contains(
        "--metric auc --problem-type binary --time-budget 60 --max-candidates 20 --seed 7 --output automl.atelier"
    ));
    // Python string literals are escaped (JSON strings are Python literals)
    assert!(all_code.contains(r#"DATA = "/data/my data/it's \"adult\".csv""#));
    assert!(all_code.contains(r#"TARGET = "income \"level\"""#));
    assert!(all_code.contains(r#"LABELS = ["<=50K", ">50K"]"#));
    assert!(all_code.contains("\"--param\",\n    \"learning_rate=0.05\","));
    assert!(all_code.contains("metrics.roc_auc_score(y_true == POSITIVE, proba[:, 1])"));
    // the HTTP body survives as JSON text inside a Python string
    assert!(all_code.contains(r#"body = json.loads("{\"flag\":true,\"none\":null,\"target\":\"income \\\"level\\\"\"}")"#), "{all_code}");
    // markdown text is escaped; the leaderboard is sorted by rank
    assert!(all_md.contains("Autopilot \\<candidate\\> for adult"));
    assert!(all_md.contains("| 1 | gbm \\| tuned | gbm | 0.9312 | 1.25 |"));
    let first = all_md.find("| 1 | gbm").unwrap();
    let second = all_md.find("| 2 | rf").unwrap();
    assert!(first < second);
    assert!(all_md.contains("--seed 7 --server http://127.0.0.1:5000"));
    // optional runs are off by default
    assert!(all_code.contains("RUN_AUTOML = False"));
    assert!(all_code.contains("RUN_HTTP = False"));
}

#[test]
fn regression_notebooks_score_with_regression_metrics_and_skip_optional_parts() {
    let mut s = spec();
    s.problem = ProblemType::Regression;
    s.labels.clear();
    s.metric = "rmse".into();
    s.automl = None;
    s.http = None;
    s.test_path = Some("test.parquet".into());
    let nb = notebook(&s);
    let code: String = nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cell_type"] == "code")
        .map(source)
        .collect();
    assert!(code.contains("metrics.mean_squared_error(y_true, y_pred) ** 0.5"));
    assert!(code.contains("TEST = \"test.parquet\""));
    assert!(!code.contains("RUN_AUTOML"));
    assert!(!code.contains("urllib"));
    assert!(code.contains("\"--problem-type\",\n    \"regression\","));
}
