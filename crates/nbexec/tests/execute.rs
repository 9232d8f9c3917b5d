//! End-to-end tests on a real ipykernel, compared with real papermill.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nbexec::{ExecError, ExecOptions, KernelTransport, Outcome};
use serde_json::{Value, json};

fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

async fn run(name: &str, opts: ExecOptions) -> nbexec::Report {
    nbexec::execute(&fixture(name), opts, |_| {})
        .await
        .unwrap_or_else(|e| panic!("{name} could not run: {e}"))
}

#[tokio::test]
async fn parameters_are_injected_and_used() {
    let opts = ExecOptions {
        parameters: params(&[("alpha", json!(0.5)), ("name", json!("hello"))]),
        ..options()
    };
    let report = run("params.ipynb", opts).await;
    assert_eq!(report.outcome, Outcome::Completed);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let nb = &report.notebook;
    let c = cells(nb);
    assert_eq!(tags(&c[1]), ["parameters"]);
    assert_eq!(tags(&c[2]), ["injected-parameters"]);
    assert_eq!(
        text(&c[2]["source"]),
        "# Parameters\nalpha = 0.5\nname = \"hello\"\n"
    );
    assert_eq!(text(&c[3]["outputs"][0]["text"]), "1.0\nhello\n");
    let result = &c[4]["outputs"][1];
    assert_eq!(result["output_type"], "execute_result");
    assert_eq!(text(&result["data"]["text/plain"]), "5.0");
    assert_eq!(result["execution_count"], c[4]["execution_count"]);
    assert_eq!(
        nb["metadata"]["papermill"]["parameters"],
        json!({"alpha": 0.5, "name": "hello"})
    );
    assert_eq!(nb["metadata"]["language_info"]["name"], "python");
    assert!(report.kernel_start > Duration::ZERO && report.kernel_start < report.total);
}

#[tokio::test]
async fn output_validates_with_nbformat_and_matches_its_writer() {
    let opts = ExecOptions {
        parameters: params(&[("alpha", json!(2)), ("name", json!("é \"q\" \\ \n"))]),
        ..options()
    };
    let report = run("params.ipynb", opts).await;
    validate_with_nbformat(&nbexec::to_ipynb_string(&report.notebook));
    let report = run("outputs.ipynb", options()).await;
    validate_with_nbformat(&nbexec::to_ipynb_string(&report.notebook));
}

#[tokio::test]
async fn metadata_matches_papermill() {
    let theirs = papermill("params.ipynb", &[("alpha", "0.5"), ("name", "hello")]);
    let opts = ExecOptions {
        parameters: params(&[("alpha", json!(0.5)), ("name", json!("hello"))]),
        ..options()
    };
    let ours = reparse(&run("params.ipynb", opts).await.notebook);

    assert_eq!(
        keys(&ours["metadata"]["papermill"]),
        keys(&theirs["metadata"]["papermill"])
    );
    assert_eq!(keys(&ours["metadata"]), keys(&theirs["metadata"]));
    assert_eq!(cells(&ours).len(), cells(&theirs).len());
    for (i, (o, t)) in cells(&ours).iter().zip(cells(&theirs)).enumerate() {
        assert_eq!(keys(o), keys(t), "cell {i} keys");
        assert_eq!(
            keys(&o["metadata"]["papermill"]),
            keys(&t["metadata"]["papermill"]),
            "cell {i} papermill keys"
        );
        assert_eq!(status(o), status(t), "cell {i} status");
        assert_eq!(tags(o), tags(t), "cell {i} tags");
        assert_eq!(
            keys(&o["metadata"]["execution"]),
            keys(&t["metadata"]["execution"]),
            "cell {i} execution keys"
        );
        assert_eq!(o["execution_count"], t["execution_count"], "cell {i} count");
    }
    assert_eq!(
        text(&ours["cells"][2]["source"]),
        text(&theirs["cells"][2]["source"])
    );
    // Everything but timestamps, ids and the version is the same document.
    assert_eq!(normalised(&ours), normalised(&theirs));
}

#[tokio::test]
async fn outputs_match_papermill() {
    // nbformat 4.4 input (no cell ids), display updates across cells,
    // clear_output(wait=True), stderr, JSON mime data, a skipped cell.
    let theirs = papermill("outputs.ipynb", &[]);
    let report = run("outputs.ipynb", options()).await;
    assert_eq!(report.outcome, Outcome::Completed);
    let ours = reparse(&report.notebook);
    assert_eq!(ours["nbformat_minor"], 5);
    assert_eq!(normalised(&ours), normalised(&theirs));
    assert_eq!(
        text(&ours["cells"][0]["outputs"][0]["data"]["text/plain"]),
        "'second'"
    );
    assert_eq!(text(&ours["cells"][2]["outputs"][0]["text"]), "2\n");
}

#[tokio::test]
async fn failing_notebook_gets_papermills_banners() {
    let theirs = papermill("error.ipynb", &[]);
    let report = run("error.ipynb", options()).await;
    let ours = reparse(&report.notebook);
    match &report.outcome {
        Outcome::Failed {
            cell,
            execution_count,
            ename,
            evalue,
        } => {
            assert_eq!(ename, "ZeroDivisionError");
            assert_eq!(evalue, "division by zero");
            assert_eq!(*cell, 4);
            assert_eq!(*execution_count, Some(2));
            assert_eq!(
                text(&ours["cells"][*cell]["source"]),
                "print(\"before\")\n1 / 0"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let banner_positions = |nb: &Value| -> Vec<(usize, String)> {
        cells(nb)
            .iter()
            .enumerate()
            .filter(|(_, c)| tags(c).contains(&"papermill-error-cell-tag".to_string()))
            .map(|(i, c)| (i, text(&c["source"])))
            .collect()
    };
    assert_eq!(banner_positions(&ours).len(), 2);
    assert_eq!(banner_positions(&ours), banner_positions(&theirs));
    let statuses = |nb: &Value| -> Vec<Option<String>> {
        cells(nb)
            .iter()
            .map(|c| status(c).map(str::to_owned))
            .collect()
    };
    assert_eq!(statuses(&ours), statuses(&theirs));
    let last = cells(&ours).last().expect("cells");
    assert_eq!(status(last), Some("pending"));
    assert_eq!(last["outputs"], json!([]));
    assert_eq!(ours["metadata"]["papermill"]["exception"], true);
    assert_eq!(normalised(&ours), normalised(&theirs));
}

#[tokio::test]
async fn cell_timeout_interrupts_and_fails_fast() {
    let started = Instant::now();
    let opts = ExecOptions {
        cell_timeout: Some(Duration::from_secs(2)),
        ..options()
    };
    let report = run("timeout.ipynb", opts).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}");
    let Outcome::Failed {
        cell,
        ename,
        evalue,
        ..
    } = &report.outcome
    else {
        panic!("expected a failure, got {:?}", report.outcome);
    };
    assert_eq!(ename, "CellTimeoutError");
    assert!(evalue.contains("after 2 seconds"), "{evalue}");
    let nb = &report.notebook;
    let failed = &cells(nb)[*cell];
    assert_eq!(status(failed), Some("failed"));
    let outputs = failed["outputs"].as_array().expect("outputs");
    assert_eq!(text(&outputs[0]["text"]), "sleeping\n");
    assert!(outputs.iter().any(|o| o["ename"] == "CellTimeoutError"));
    assert_eq!(status(cells(nb).last().expect("cells")), Some("pending"));
}

#[tokio::test]
async fn dead_kernel_fails_fast() {
    let started = Instant::now();
    let report = run("dies.ipynb", options()).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    let Outcome::Failed {
        cell,
        ename,
        evalue,
        ..
    } = &report.outcome
    else {
        panic!("expected a failure, got {:?}", report.outcome);
    };
    assert_eq!(ename, "DeadKernelError");
    assert!(evalue.contains("exit status: 1"), "{evalue}");
    assert!(evalue.contains("In [2]"), "{evalue}");
    let nb = &report.notebook;
    assert_eq!(text(&cells(nb)[*cell]["source"]), "import os\nos._exit(1)");
    assert_eq!(status(&cells(nb)[*cell]), Some("failed"));
    assert_eq!(status(cells(nb).last().expect("cells")), Some("pending"));
    assert_eq!(nb["metadata"]["papermill"]["exception"], true);
}

#[tokio::test]
async fn unknown_kernel_lists_the_available_ones() {
    let opts = ExecOptions {
        kernel_name: Some("no-such-kernel".into()),
        ..options()
    };
    match nbexec::execute(&fixture("params.ipynb"), opts, |_| {}).await {
        Err(e @ ExecError::UnknownKernel { .. }) => {
            let ExecError::UnknownKernel { name, available } = &e else {
                unreachable!()
            };
            assert_eq!(name, "no-such-kernel");
            assert!(available.contains(&"python3".to_string()), "{available:?}");
            assert!(e.to_string().contains("python3"), "{e}");
        }
        other => panic!("expected UnknownKernel, got {:?}", other.map(|r| r.outcome)),
    }
    let specs = nbexec::kernelspecs(Some(&python()));
    let py = specs
        .iter()
        .find(|s| s.name == "python3")
        .expect("python3 spec");
    assert_eq!(py.language, "python");
}

#[tokio::test]
async fn unknown_parameter_gives_papermills_warning() {
    let opts = ExecOptions {
        parameters: params(&[("alpha", json!(1)), ("nope", json!(true))]),
        ..options()
    };
    let report = run("params.ipynb", opts).await;
    assert_eq!(report.warnings, ["Passed unknown parameter: nope"]);
    assert_eq!(report.outcome, Outcome::Completed);
    let injected = &cells(&report.notebook)[2];
    assert_eq!(
        text(&injected["source"]),
        "# Parameters\nalpha = 1\nnope = True\n"
    );
}

#[tokio::test]
async fn save_sees_the_statuses_progress() {
    let snapshots: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let sink = snapshots.clone();
    let save = move |nb: &Value| {
        let statuses = cells(nb)
            .iter()
            .map(|c| status(c).unwrap_or("-").to_owned())
            .collect();
        sink.lock().expect("lock").push(statuses);
    };
    let report = nbexec::execute(&fixture("error.ipynb"), options(), save)
        .await
        .expect("runs");
    let snapshots = snapshots.lock().expect("lock").clone();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        snapshots,
        [
            s(&["pending", "pending", "pending", "pending"]),
            s(&["running", "pending", "pending", "pending"]),
            s(&["completed", "pending", "pending", "pending"]),
            s(&["completed", "running", "pending", "pending"]),
            s(&["completed", "completed", "pending", "pending"]),
            s(&["completed", "completed", "running", "pending"]),
            s(&["completed", "completed", "failed", "pending"]),
            // The final notebook, with papermill's two banner cells.
            s(&["-", "completed", "completed", "-", "failed", "pending"]),
        ]
    );
    assert_eq!(
        snapshots.last(),
        Some(
            &cells(&report.notebook)
                .iter()
                .map(|c| status(c).unwrap_or("-").to_owned())
                .collect()
        )
    );
}

#[tokio::test]
async fn env_cwd_and_tcp_transport() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path().canonicalize().expect("canonical");
    let opts = ExecOptions {
        env: [("NBEXEC_TEST_VAR".to_string(), "from-env".to_string())].into(),
        cwd: Some(cwd.clone()),
        transport: KernelTransport::Tcp,
        ..options()
    };
    let report = run("env.ipynb", opts).await;
    assert_eq!(report.outcome, Outcome::Completed);
    let out = text(&cells(&report.notebook)[0]["outputs"][0]["text"]);
    assert_eq!(out, format!("from-env\n{}\n", cwd.display()));
}

#[tokio::test]
async fn missing_cwd_is_an_error() {
    let opts = ExecOptions {
        cwd: Some("/nonexistent/nbexec".into()),
        ..options()
    };
    let err = nbexec::execute(&fixture("params.ipynb"), opts, |_| {}).await;
    assert!(
        matches!(err, Err(ExecError::MissingCwd { .. })),
        "{:?}",
        err.err()
    );
}

#[tokio::test]
async fn sys_exit_zero_stops_without_failing_like_papermill() {
    let theirs = papermill("sysexit.ipynb", &[]);
    let report = run("sysexit.ipynb", options()).await;
    assert_eq!(report.outcome, Outcome::Completed);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let ours = reparse(&report.notebook);
    let statuses: Vec<_> = cells(&ours)
        .iter()
        .map(|c| status(c).map(str::to_owned))
        .collect();
    assert_eq!(
        statuses,
        [
            Some("completed".into()),
            Some("failed".into()),
            Some("pending".into())
        ]
    );
    assert_eq!(normalised(&ours), normalised(&theirs));
}
