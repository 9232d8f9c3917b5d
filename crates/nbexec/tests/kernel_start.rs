//! Kernels that do not start: the error says why, quickly. (A test binary of
//! its own, because it points JUPYTER_PATH at kernel specs made for it.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use nbexec::{ExecError, ExecOptions};

fn write_spec(root: &std::path::Path, name: &str, code: &str) {
    let dir = root.join("kernels").join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let spec = serde_json::json!({
        "argv": ["python", "-c", code, "{connection_file}"],
        "display_name": name,
        "language": "python",
    });
    std::fs::write(dir.join("kernel.json"), spec.to_string()).expect("write");
}

async fn start_error(kernel: &str, start_timeout: Duration) -> (String, Duration) {
    let opts = ExecOptions {
        kernel_name: Some(kernel.into()),
        start_timeout,
        ..options()
    };
    let started = Instant::now();
    match nbexec::execute(&fixture("params.ipynb"), opts, |_| {}).await {
        Err(ExecError::KernelStart { kernel: k, reason }) => {
            assert_eq!(k, kernel);
            (reason, started.elapsed())
        }
        other => panic!("expected KernelStart, got {:?}", other.map(|r| r.outcome)),
    }
}

#[tokio::test]
async fn kernels_that_do_not_start() {
    let root = tempfile::tempdir().expect("tempdir");
    write_spec(
        root.path(),
        "broken",
        "import sys; print('no kernel here', file=sys.stderr); sys.exit(3)",
    );
    write_spec(root.path(), "sleepy", "import time; time.sleep(60)");
    // SAFETY: this test binary holds this one test, which sets the variable
    // before it starts anything that could read the environment concurrently.
    unsafe { std::env::set_var("JUPYTER_PATH", root.path()) };

    let names: Vec<String> = nbexec::kernelspecs(Some(&python()))
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(names.contains(&"broken".to_string()) && names.contains(&"python3".to_string()));

    let (reason, took) = start_error("broken", Duration::from_secs(30)).await;
    assert!(reason.contains("exit status: 3"), "{reason}");
    assert!(reason.contains("no kernel here"), "{reason}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let (reason, took) = start_error("sleepy", Duration::from_secs(1)).await;
    assert!(reason.contains("start_timeout"), "{reason}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}
