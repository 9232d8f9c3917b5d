//! The Ray executor against a real Ray head: the one `cargo xtask test`
//! starts (or `cargo xtask ray start`), named by `ATELIER_RAY_ADDRESS`
//! (e.g. `http://127.0.0.1:8265`). Without that variable each test says on
//! stderr that it was skipped and why, and does nothing. The head shares this
//! machine's filesystem, so the executor is told so (`with_shared_filesystem`);
//! without that the command starts in Ray's own folder. Every wait is bounded.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use jobs::executor::{ExecError, ExecStatus, Executor, Exit, Handle, Launch, LogLine};
use jobs::ray::RayExecutor;

/// The head's address, or `None` after telling the terminal that `test` was
/// skipped (written to stderr directly: the test harness does not capture it).
fn address(test: &str) -> Option<String> {
    match std::env::var("ATELIER_RAY_ADDRESS") {
        Ok(a) if !a.trim().is_empty() => Some(a),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED ray_executor::{test}: ATELIER_RAY_ADDRESS is not set (start a Ray head with `cargo xtask ray start` and export the address it prints; `cargo xtask test` does both)"
            );
            None
        }
    }
}

fn executor(address: &str) -> RayExecutor {
    RayExecutor::new(address)
        .expect("a valid address")
        .with_shared_filesystem(true)
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn launch(dir: &Path, argv: Vec<String>) -> Launch {
    Launch {
        job_id: uuid::Uuid::new_v4().simple().to_string(),
        argv,
        env: vec![
            ("GREETING".into(), "hello there".into()),
            ("QUOTED".into(), "it's \"quoted\" $HOME".into()),
        ],
        cwd: dir.to_path_buf(),
        state_dir: dir.join("executor").join("1"),
    }
}

/// Stops the job if a test fails half-way.
struct Guard<'a>(&'a RayExecutor, Handle);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.0.stop(&self.1, Duration::ZERO);
    }
}

fn wait_exit(ex: &RayExecutor, h: &Handle, timeout: Duration) -> Exit {
    let deadline = Instant::now() + timeout;
    loop {
        match ex.status(h).expect("status") {
            ExecStatus::Exited(exit) => return exit,
            ExecStatus::Running => {}
            ExecStatus::Lost { reason } => panic!("lost: {reason}"),
        }
        assert!(
            Instant::now() < deadline,
            "still running after {timeout:?}: {:?}",
            texts(&all_lines(ex, h))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_lines(ex: &RayExecutor, h: &Handle) -> Vec<LogLine> {
    let mut from = 0;
    let mut lines = Vec::new();
    loop {
        let chunk = ex.logs(h, from, 64 * 1024).expect("logs");
        if chunk.next == from {
            return lines;
        }
        from = chunk.next;
        lines.extend(chunk.lines);
    }
}

fn texts(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(|l| l.text.clone()).collect()
}

fn wait_line(ex: &RayExecutor, h: &Handle, text: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = texts(&all_lines(ex, h));
        if lines.iter().any(|l| l == text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no line {text:?} after {timeout:?}: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_command_runs_in_its_folder_with_its_environment_and_its_output_is_read() {
    let Some(addr) =
        address("a_command_runs_in_its_folder_with_its_environment_and_its_output_is_read")
    else {
        return;
    };
    let ex = executor(&addr);
    let version = ex.probe().expect("the head answers /api/version");
    assert!(version.starts_with("2."), "{version}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("input.txt"), "from the shared folder\n").expect("write");
    let l = launch(
        dir.path(),
        sh(
            "echo \"$GREETING\"; echo \"$QUOTED\"; echo to-stderr >&2; cat input.txt; echo made > out.txt; printf 'no newline'",
        ),
    );
    let h = ex.submit(&l).expect("submit");
    let _g = Guard(&ex, h.clone());
    // the handle names the head and the submission, nothing of this process
    assert_eq!(h.executor, "ray");
    assert_eq!(
        h.data,
        serde_json::json!({"address": addr.trim_end_matches('/'), "submission_id": format!("atelier-{}-1", l.job_id)})
    );
    let exit = wait_exit(&ex, &h, Duration::from_secs(120));
    assert!(exit.success(), "{exit:?}");
    assert_eq!(exit.reason(), None);
    assert!(!exit.stopped);
    let lines = all_lines(&ex, &h);
    // Ray merges the two streams; its own lines are left out; the unfinished
    // last line comes once the job ended
    assert_eq!(
        texts(&lines),
        [
            "hello there",
            "it's \"quoted\" $HOME",
            "to-stderr",
            "from the shared folder",
            "no newline"
        ]
    );
    assert!(lines.iter().all(|l| l.stream == "stdout"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt"))
            .expect("the command wrote in its folder"),
        "made\n"
    );
    // reading in small steps gives the same lines, and resumes where it stopped
    let mut from = 0;
    let mut stepwise = Vec::new();
    loop {
        let c = ex.logs(&h, from, 1).expect("logs");
        if c.next == from {
            break;
        }
        assert!(c.lines.len() <= 1, "{c:?}");
        from = c.next;
        stepwise.extend(c.lines);
    }
    assert_eq!(texts(&stepwise), texts(&lines));
    // submitting the same attempt again is refused with the reason
    let again = ex.submit(&l).expect_err("the same submission id");
    assert!(again.to_string().contains("already"), "{again}");
}

/// By default the executor does not assume the workers see the launch's
/// folder: the command starts in Ray's own working folder, not there.
#[test]
fn without_a_shared_filesystem_the_command_does_not_enter_the_servers_folder() {
    let Some(addr) =
        address("without_a_shared_filesystem_the_command_does_not_enter_the_servers_folder")
    else {
        return;
    };
    let ex = RayExecutor::new(&addr).expect("a valid address");
    assert!(!ex.shares_filesystem());
    let dir = tempfile::tempdir().expect("tempdir");
    let h = ex
        .submit(&launch(dir.path(), sh("pwd")))
        .expect("submitted");
    let _g = Guard(&ex, h.clone());
    let exit = wait_exit(&ex, &h, Duration::from_secs(120));
    assert!(exit.success(), "{exit:?}");
    let lines = texts(&all_lines(&ex, &h));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_ne!(
        Path::new(&lines[0]),
        dir.path(),
        "it entered the launch's folder"
    );
}

#[test]
fn a_failing_command_ends_with_its_status_and_rays_reason() {
    let Some(addr) = address("a_failing_command_ends_with_its_status_and_rays_reason") else {
        return;
    };
    let ex = executor(&addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = ex
        .submit(&launch(dir.path(), sh("echo before the failure; exit 3")))
        .expect("submit");
    let exit = wait_exit(&ex, &h, Duration::from_secs(120));
    assert_eq!(exit.code, Some(3), "{exit:?}");
    assert!(!exit.success() && !exit.stopped);
    let reason = exit.reason().expect("a reason");
    assert!(
        reason.starts_with("the command exited with status 3")
            && reason.contains("Ray: Job entrypoint command failed with exit code 3"),
        "{reason}"
    );
    assert_eq!(texts(&all_lines(&ex, &h)), ["before the failure"]);

    // a program that does not exist: the shell's 127, said in words
    let h = ex
        .submit(&launch(dir.path(), vec!["no-such-program-atelier".into()]))
        .expect("submit");
    let exit = wait_exit(&ex, &h, Duration::from_secs(120));
    assert_eq!(exit.code, Some(127), "{exit:?}");
    let reason = exit.reason().expect("a reason");
    assert!(reason.contains("command not found"), "{reason}");
    let lines = texts(&all_lines(&ex, &h));
    assert!(
        lines.iter().any(|l| l.contains("no-such-program-atelier")),
        "{lines:?}"
    );

    // killed by a signal: Ray's negative exit code is the signal
    let h = ex
        .submit(&launch(dir.path(), sh("kill -9 $$")))
        .expect("submit");
    let exit = wait_exit(&ex, &h, Duration::from_secs(120));
    assert_eq!((exit.code, exit.signal), (None, Some(9)), "{exit:?}");
    let reason = exit.reason().expect("a reason");
    assert!(
        reason.starts_with("the command was killed by signal 9 (SIGKILL)"),
        "{reason}"
    );
}

#[test]
fn stop_ends_the_command_through_ray_and_says_stopped() {
    let Some(addr) = address("stop_ends_the_command_through_ray_and_says_stopped") else {
        return;
    };
    let ex = executor(&addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = ex
        .submit(&launch(
            dir.path(),
            sh("trap 'echo got TERM; exit 143' TERM; echo ready; while :; do sleep 0.1; done"),
        ))
        .expect("submit");
    let _g = Guard(&ex, h.clone());
    wait_line(&ex, &h, "ready", Duration::from_secs(120));
    assert_eq!(ex.status(&h).expect("status"), ExecStatus::Running);
    let t = Instant::now();
    ex.stop(&h, Duration::from_secs(5)).expect("stop");
    let exit = wait_exit(&ex, &h, Duration::from_secs(60));
    assert!(exit.stopped, "{exit:?}");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "stopped in {:?}",
        t.elapsed()
    );
    assert!(
        texts(&all_lines(&ex, &h)).contains(&"got TERM".to_string()),
        "the command saw SIGTERM: {:?}",
        texts(&all_lines(&ex, &h))
    );
    // stopping what has ended is not an error
    ex.stop(&h, Duration::ZERO).expect("a second stop");
}

#[test]
fn another_process_follows_a_job_from_its_stored_handle() {
    let Some(addr) = address("another_process_follows_a_job_from_its_stored_handle") else {
        return;
    };
    let first = executor(&addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = first
        .submit(&launch(dir.path(), sh("echo one; sleep 2; echo two")))
        .expect("submit");
    // what the job system stores, and another server process reads back
    let stored = serde_json::to_string(&h).expect("encode");
    drop(first);
    let h: Handle = serde_json::from_str(&stored).expect("decode");
    // made for another address: the handle's own address is followed
    let second = executor("http://127.0.0.1:9");
    let _g = Guard(&second, h.clone());
    wait_line(&second, &h, "one", Duration::from_secs(120));
    let exit = wait_exit(&second, &h, Duration::from_secs(60));
    assert!(exit.success(), "{exit:?}");
    assert_eq!(texts(&all_lines(&second, &h)), ["one", "two"]);
    // a job the head no longer knows (deleted there) is lost, with the reason
    let sid = h.data["submission_id"].as_str().expect("submission id");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .delete(format!("{}/api/jobs/{sid}", addr.trim_end_matches('/')))
        .call()
        .expect("DELETE the job on the head");
    assert_eq!(r.status().as_u16(), 200);
    match second.status(&h).expect("status") {
        ExecStatus::Lost { reason } => {
            assert!(reason.contains("has no job"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// Needs no head: runs with or without `ATELIER_RAY_ADDRESS`.
#[test]
fn a_wrong_address_is_a_clear_error() {
    // nothing listens there
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let ex = executor(&nowhere).with_lost_after(Duration::from_millis(500));
    let e = ex.probe().expect_err("nothing there").to_string();
    assert!(
        e.starts_with(&format!("the Ray cluster at {nowhere} is unreachable: ")),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let e = ex
        .submit(&launch(dir.path(), sh("true")))
        .expect_err("cannot submit");
    assert!(e.to_string().contains("is unreachable"), "{e}");
    // a job there: an error the caller retries, then lost with the reason
    let h = Handle {
        executor: "ray".into(),
        data: serde_json::json!({"address": nowhere, "submission_id": "atelier-x-1"}),
    };
    assert!(matches!(ex.status(&h), Err(ExecError::Io(_))));
    std::thread::sleep(Duration::from_millis(600));
    match ex.status(&h).expect("status") {
        ExecStatus::Lost { reason } => assert!(
            reason.starts_with(&format!("the Ray cluster at {nowhere} is unreachable: ")),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    // an HTTP server that is not Ray's dashboard
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in listener.incoming().take(1) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            );
        }
    });
    let e = executor(&format!("http://127.0.0.1:{port}"))
        .probe()
        .expect_err("not Ray")
        .to_string();
    assert!(e.contains("not a Ray head's dashboard"), "{e}");
    // malformed addresses are refused before anything is contacted
    let e = RayExecutor::new("ray-head:8265").expect_err("no scheme");
    assert!(e.to_string().contains("http://"), "{e}");
}

/// A handle recorded before the submission, of a job the head never
/// received (the server stopped in between): never-started at once, not
/// running for ever; once submitted, the same planned handle follows it.
#[test]
fn a_planned_handle_of_a_submission_ray_never_received_is_never_started() {
    let Some(addr) =
        address("a_planned_handle_of_a_submission_ray_never_received_is_never_started")
    else {
        return;
    };
    let ex = executor(&addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let l = launch(dir.path(), sh("echo planned; exit 4"));
    let planned = ex
        .planned_handle(&l)
        .expect("the Ray executor plans handles");
    let status = ex.status(&planned).expect("status");
    assert!(status.never_started(), "{status:?}");
    match &status {
        ExecStatus::Lost { reason } => {
            assert!(reason.contains("never received"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // a stop of what never started is no error
    ex.stop(&planned, Duration::ZERO).expect("stop");

    let real = ex.submit(&l).expect("submit");
    let _guard = Guard(&ex, real.clone());
    assert_eq!(real.data["submission_id"], planned.data["submission_id"]);
    let exit = wait_exit(&ex, &planned, Duration::from_secs(120));
    assert_eq!(exit.code, Some(4), "{exit:?}");
    // a real handle the head does not know is lost, not never-started
    let mut gone = real.clone();
    gone.data["submission_id"] = serde_json::json!(format!("atelier-{}-9", l.job_id));
    let status = ex.status(&gone).expect("status");
    assert!(
        matches!(&status, ExecStatus::Lost { .. }) && !status.never_started(),
        "{status:?}"
    );
}
