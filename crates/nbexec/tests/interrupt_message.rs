//! A kernel spec with `interrupt_mode: message`: a cell that times out is
//! interrupted with a signed `interrupt_request` on the control channel
//! (rather than SIGINT). (A test binary of its own, because it points
//! JUPYTER_PATH at a kernel spec made for it.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use nbexec::{ExecOptions, Outcome};

#[tokio::test]
async fn interrupt_request_on_control_stops_the_cell() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("kernels/python3-msg");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let spec = serde_json::json!({
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (interrupt by message)",
        "language": "python",
        "interrupt_mode": "message",
    });
    std::fs::write(dir.join("kernel.json"), spec.to_string()).expect("write");
    // SAFETY: this test binary holds this one test, which sets the variable
    // before it starts anything that could read the environment concurrently.
    unsafe { std::env::set_var("JUPYTER_PATH", root.path()) };

    let opts = ExecOptions {
        kernel_name: Some("python3-msg".into()),
        cell_timeout: Some(Duration::from_secs(2)),
        ..options()
    };
    let started = Instant::now();
    let report = nbexec::execute(&fixture("timeout.ipynb"), opts, |_| {})
        .await
        .expect("runs");
    let elapsed = started.elapsed();
    let Outcome::Failed { cell, ename, .. } = &report.outcome else {
        panic!("expected a failure, got {:?}", report.outcome);
    };
    assert_eq!(ename, "CellTimeoutError");
    // The kernel reported the interruption (its KeyboardInterrupt traceback)
    // instead of being given up on after the grace period.
    let outputs = cells(&report.notebook)[*cell]["outputs"]
        .as_array()
        .expect("outputs")
        .clone();
    assert!(
        outputs.iter().any(|o| o["ename"] == "KeyboardInterrupt"),
        "{outputs:#?}"
    );
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}");
}
