//! The local executor with real processes: the supervisor is this crate's
//! `jobs-supervisor` binary (the same code as `atelier __supervise`). Every
//! wait is bounded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jobs::executor::{ExecStatus, Executor, Exit, Handle, Launch, LogLine};
use jobs::local::LocalExecutor;

const SUPERVISOR: &str = env!("CARGO_BIN_EXE_jobs-supervisor");

fn executor() -> LocalExecutor {
    LocalExecutor::new(vec![SUPERVISOR.into()])
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

struct Job {
    dir: tempfile::TempDir,
    h: Handle,
}

impl Job {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn supervisor_pid(&self) -> i32 {
        let pid = self.h.data["pid"].as_i64().expect("pid in handle");
        i32::try_from(pid).expect("pid fits")
    }

    /// The supervisor's own log, for failure messages.
    fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.state().join("supervisor.log")).unwrap_or_default()
    }
}

/// A test that fails half-way leaves nothing running.
impl Drop for Job {
    fn drop(&mut self) {
        let _ = executor().stop(&self.h, Duration::ZERO);
    }
}

fn submit_with(ex: &LocalExecutor, argv: Vec<String>) -> Job {
    let dir = tempfile::tempdir().expect("tempdir");
    let launch = Launch {
        job_id: "job-1".into(),
        argv,
        env: vec![("GREETING".into(), "hello there".into())],
        cwd: dir.path().to_path_buf(),
        state_dir: dir.path().join("state"),
    };
    let h = ex.submit(&launch).expect("submit");
    Job { dir, h }
}

fn submit(argv: Vec<String>) -> Job {
    submit_with(&executor(), argv)
}

fn wait_exit(ex: &LocalExecutor, job: &Job, timeout: Duration) -> Exit {
    let deadline = Instant::now() + timeout;
    loop {
        match ex.status(&job.h).expect("status") {
            ExecStatus::Exited(exit) => return exit,
            ExecStatus::Running => {}
            ExecStatus::Lost { reason } => {
                panic!("lost: {reason}\nsupervisor log:\n{}", job.supervisor_log())
            }
        }
        assert!(
            Instant::now() < deadline,
            "still running after {timeout:?}; supervisor log:\n{}",
            job.supervisor_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn all_lines(ex: &LocalExecutor, h: &Handle) -> Vec<LogLine> {
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

/// Waits for a line that starts with `prefix`; returns its text.
fn wait_line(ex: &LocalExecutor, job: &Job, prefix: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut from = 0;
    loop {
        let chunk = ex.logs(&job.h, from, 64 * 1024).expect("logs");
        from = chunk.next;
        if let Some(l) = chunk.lines.iter().find(|l| l.text.starts_with(prefix)) {
            return l.text.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no line starting with {prefix:?} after {timeout:?}; lines: {:?}; supervisor log:\n{}",
            all_lines(ex, &job.h),
            job.supervisor_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid a line "<prefix> <pid>" names.
fn pid_in(line: &str) -> i32 {
    line.rsplit(' ')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// Gone, or a zombie nobody reaps (this sandbox's init does not reap).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    gone(pid)
}

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_millis()).expect("ms fit")
}

#[test]
fn output_lines_carry_their_stream_and_time() {
    let ex = executor();
    let before = now_ms();
    let job = submit(sh(
        "echo out; echo err >&2; echo \"$GREETING from $(pwd)\"; printf 'bad \\377 byte\\n'; printf 'no newline'",
    ));
    let exit = wait_exit(&ex, &job, Duration::from_secs(20));
    let after = now_ms();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(exit.code, Some(0));
    assert_eq!(exit.reason(), None);
    assert!(!exit.stopped && !exit.oom_killed && exit.start_error.is_none());
    assert!(exit.ended_ms >= before && exit.ended_ms <= after);

    let lines = all_lines(&ex, &job.h);
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l.stream.as_str(), l.text.as_str()))
        .collect();
    let here = job.dir.path().display().to_string();
    assert!(got.contains(&("stdout", "out")), "{got:?}");
    assert!(got.contains(&("stderr", "err")), "{got:?}");
    assert!(
        got.contains(&("stdout", format!("hello there from {here}").as_str())),
        "{got:?}"
    );
    assert!(got.contains(&("stdout", "bad \u{fffd} byte")), "{got:?}");
    assert_eq!(lines.len(), 5);
    for l in &lines {
        assert!(l.at_ms >= before && l.at_ms <= after, "{l:?}");
    }
    // Each stream keeps its order (the two are read by two threads, so
    // stderr's line may come anywhere among stdout's); a last line without
    // a newline is kept.
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|l| l.stream == "stdout")
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(stdout.first(), Some(&"out"));
    assert_eq!(stdout.last(), Some(&"no newline"));

    // The state folder holds what the module docs say.
    for f in [
        "launch.json",
        "supervisor.json",
        "supervisor.log",
        "output.jsonl",
        "exit.json",
    ] {
        assert!(job.state().join(f).is_file(), "{f}");
    }
    // Stopping an ended command is fine and changes nothing.
    ex.stop(&job.h, Duration::from_secs(1))
        .expect("stop after the end");
    assert_eq!(ex.status(&job.h).expect("status"), ExecStatus::Exited(exit));
}

#[test]
fn no_stray_descriptor_reaches_the_supervisor_or_the_command() {
    // A descriptor of the launching process without close-on-exec.
    // SAFETY: dup of stderr; closed below.
    let leaked = unsafe { libc::dup(2) };
    assert!(leaked > 2);
    let target = std::fs::read_link(format!("/proc/self/fd/{leaked}")).expect("readlink");
    let ex = executor();
    // The shell's own descriptors, then its parent's (the supervisor's).
    let job = submit(sh("ls /proc/$$/fd; echo --; ls -l /proc/$PPID/fd"));
    let exit = wait_exit(&ex, &job, Duration::from_secs(20));
    // SAFETY: the descriptor dup returned above.
    unsafe { libc::close(leaked) };
    assert!(exit.success(), "{exit:?}");
    let lines: Vec<String> = all_lines(&ex, &job.h)
        .into_iter()
        .filter(|l| l.stream == "stdout")
        .map(|l| l.text)
        .collect();
    let split = lines.iter().position(|l| l == "--").expect("separator");
    // 0, 1, 2 and the folder ls is listing.
    let command: Vec<&str> = lines[..split].iter().map(String::as_str).collect();
    assert!(
        command.len() <= 4 && command[..3] == ["0", "1", "2"],
        "the command has descriptors {command:?}"
    );
    let state = job.state().display().to_string();
    let target = target.display().to_string();
    for l in &lines[split + 1..] {
        let Some((_, to)) = l.split_once(" -> ") else {
            continue;
        };
        assert!(
            to == "/dev/null"
                || to.starts_with(&state)
                || (to.starts_with("pipe:") && to != target),
            "the supervisor holds {l:?}; all: {lines:#?}"
        );
    }
}

#[test]
fn exit_codes_and_start_failures_have_reasons() {
    let ex = executor();
    let three = submit(sh("exit 3"));
    let missing = submit(vec!["/no/such/program-atelier".into(), "x".into()]);
    let not_found = submit(sh("exit 127"));
    // A launch whose working folder does not exist.
    let dir = tempfile::tempdir().expect("tempdir");
    let h = ex
        .submit(&Launch {
            job_id: "job-2".into(),
            argv: sh("true"),
            env: Vec::new(),
            cwd: dir.path().join("nowhere"),
            state_dir: dir.path().join("state"),
        })
        .expect("submit");
    let bad_cwd = Job { dir, h };

    let exit = wait_exit(&ex, &three, Duration::from_secs(20));
    assert_eq!(exit.code, Some(3));
    assert!(!exit.success());
    let reason = exit.reason().expect("a reason");
    assert!(reason.contains('3'), "{reason}");

    let exit = wait_exit(&ex, &missing, Duration::from_secs(20));
    assert_eq!(
        exit.start_error.as_deref(),
        Some("No such file or directory (os error 2)")
    );
    assert_eq!(exit.code, None);
    let reason = exit.reason().expect("a reason");
    assert!(reason.contains("could not start"), "{reason}");

    let exit = wait_exit(&ex, &not_found, Duration::from_secs(20));
    assert_eq!(exit.code, Some(127));
    let reason = exit.reason().expect("a reason");
    assert!(reason.contains("command not found"), "{reason}");

    let exit = wait_exit(&ex, &bad_cwd, Duration::from_secs(20));
    let err = exit.start_error.clone().expect("start error");
    assert!(
        err.contains("working folder") && err.contains("nowhere"),
        "{err}"
    );

    // One folder per launch.
    let again = ex.submit(&Launch {
        job_id: "job-3".into(),
        argv: sh("true"),
        env: Vec::new(),
        cwd: three.dir.path().to_path_buf(),
        state_dir: three.state(),
    });
    assert!(again.is_err());
}

#[test]
fn a_supervisor_that_cannot_work_says_why() {
    // A supervisor that finds its launch file spoiled.
    let ex = LocalExecutor::new(vec![
        "sh".into(),
        "-c".into(),
        "echo garbage > \"$1\" && exec \"$0\" \"$1\"".into(),
        SUPERVISOR.into(),
    ]);
    let job = submit_with(&ex, sh("true"));
    let exit = wait_exit(&ex, &job, Duration::from_secs(20));
    let err = exit.start_error.clone().expect("start error");
    assert!(
        err.contains("supervisor failed") && err.contains("launch.json"),
        "{err}"
    );
    assert!(job.supervisor_log().contains("supervisor failed"));
}

#[test]
fn stop_runs_the_commands_term_handler() {
    let ex = executor();
    let job = submit(sh(
        "sleep 1000 & echo \"grandchild $!\"; trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
    ));
    let grandchild = pid_in(&wait_line(&ex, &job, "grandchild", Duration::from_secs(20)));
    wait_line(&ex, &job, "ready", Duration::from_secs(20));
    assert_eq!(ex.status(&job.h).expect("status"), ExecStatus::Running);
    let asked = Instant::now();
    ex.stop(&job.h, Duration::from_secs(20)).expect("stop");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "stop returns at once"
    );
    // Idempotent.
    ex.stop(&job.h, Duration::from_secs(20))
        .expect("stop again");
    let exit = wait_exit(&ex, &job, Duration::from_secs(15));
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "ended by the TERM, not the grace"
    );
    assert!(exit.stopped, "{exit:?}");
    assert_eq!(exit.code, Some(0));
    assert!(!exit.oom_killed);
    let texts: Vec<String> = all_lines(&ex, &job.h).into_iter().map(|l| l.text).collect();
    assert!(texts.iter().any(|t| t == "got TERM"), "{texts:?}");
    assert!(
        wait_gone(grandchild, Duration::from_secs(2)),
        "grandchild {grandchild} lives on"
    );
}

#[test]
fn what_ignores_term_is_killed_after_the_grace() {
    let ex = executor();
    // The trap comes first, so the background sleep ignores TERM too.
    let job = submit(sh(
        "trap '' TERM; sleep 1000 & echo \"grandchild $!\"; echo ready; while :; do sleep 0.1; done",
    ));
    let grandchild = pid_in(&wait_line(&ex, &job, "grandchild", Duration::from_secs(20)));
    wait_line(&ex, &job, "ready", Duration::from_secs(20));
    let grace = Duration::from_millis(1500);
    let asked = Instant::now();
    ex.stop(&job.h, grace).expect("stop");
    let exit = wait_exit(&ex, &job, Duration::from_secs(20));
    let took = asked.elapsed();
    assert!(
        took >= grace - Duration::from_millis(100) && took < grace + Duration::from_secs(2),
        "ended after {took:?} with a grace of {grace:?}"
    );
    assert!(exit.stopped, "{exit:?}");
    assert_eq!(exit.signal, Some(9), "{exit:?}");
    assert!(
        !exit.oom_killed,
        "the supervisor's own SIGKILL is no OOM kill"
    );
    let reason = exit.reason().expect("a reason");
    assert!(reason.contains("SIGKILL"), "{reason}");
    assert!(gone(grandchild), "grandchild {grandchild} lives on");
}

#[test]
fn a_stop_right_after_submit_is_not_lost() {
    let ex = executor();
    let job = submit(sh("while :; do sleep 0.1; done"));
    ex.stop(&job.h, Duration::from_millis(500)).expect("stop");
    let exit = wait_exit(&ex, &job, Duration::from_secs(20));
    assert!(exit.stopped, "{exit:?}");
}

#[test]
fn leftover_background_processes_are_ended_with_the_command() {
    let ex = executor();
    let job = submit(sh("sleep 1000 & echo \"grandchild $!\"; exit 0"));
    let exit = wait_exit(&ex, &job, Duration::from_secs(20));
    assert_eq!(exit.code, Some(0));
    assert!(!exit.stopped);
    let line = all_lines(&ex, &job.h)
        .into_iter()
        .find(|l| l.text.starts_with("grandchild"))
        .expect("grandchild line");
    assert!(gone(pid_in(&line.text)));
}

#[test]
fn another_executor_reattaches_with_the_stored_handle() {
    let job = {
        let first = executor();
        submit_with(
            &first,
            sh("trap 'echo bye; exit 0' TERM; echo hello; while :; do sleep 0.1; done"),
        )
        // The launching executor is dropped here.
    };
    // Another server process reads the handle from the store.
    let stored = serde_json::to_string(&job.h).expect("encode");
    let h: Handle = serde_json::from_str(&stored).expect("decode");
    let second = LocalExecutor::new(vec!["/nonexistent/other-binary".into()]);
    let mut job = job;
    job.h = h;
    wait_line(&second, &job, "hello", Duration::from_secs(20));
    assert_eq!(second.status(&job.h).expect("status"), ExecStatus::Running);
    second.stop(&job.h, Duration::from_secs(10)).expect("stop");
    let exit = wait_exit(&second, &job, Duration::from_secs(15));
    assert!(exit.stopped && exit.code == Some(0), "{exit:?}");
    // (The shell may also say on stderr that its sleep was terminated.)
    let stdout: Vec<String> = all_lines(&second, &job.h)
        .into_iter()
        .filter(|l| l.stream == "stdout")
        .map(|l| l.text)
        .collect();
    assert_eq!(stdout, vec!["hello".to_string(), "bye".to_string()]);
}

#[test]
fn a_killed_supervisor_is_lost_and_its_orphans_can_be_stopped() {
    let ex = executor();
    let job = submit(sh("sleep 1000 & echo \"grandchild $!\"; wait"));
    let grandchild = pid_in(&wait_line(&ex, &job, "grandchild", Duration::from_secs(20)));
    let pid = job.supervisor_pid();
    // SAFETY: kill with a pid this test started (through submit).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let reason = loop {
        match ex.status(&job.h).expect("status") {
            ExecStatus::Lost { reason } => break reason,
            other => assert!(Instant::now() < deadline, "still {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        reason.starts_with(&format!(
            "the supervisor of this job (pid {pid}) is gone without recording how the command ended"
        )),
        "{reason}"
    );
    // The shell died with its supervisor; the background sleep did not.
    assert!(!gone(grandchild));
    // The sleep, and for a moment the shell being killed with its
    // supervisor too.
    assert!(
        reason.contains(" of the command (process group ") && reason.contains("without it"),
        "{reason}"
    );
    ex.stop(&job.h, Duration::from_millis(300))
        .expect("stop the orphans");
    assert!(
        wait_gone(grandchild, Duration::from_secs(5)),
        "grandchild {grandchild} lives on"
    );
    match ex.status(&job.h).expect("status") {
        ExecStatus::Lost { reason } => assert!(!reason.contains("still run"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reused_pid_is_never_signalled() {
    let ex = executor();
    // A process that is not a supervisor, with a pid a stale handle names.
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let pid = i32::try_from(victim.id()).expect("pid");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat format");
    let start_ticks: u64 = rest
        .split_whitespace()
        .nth(19)
        .and_then(|f| f.parse().ok())
        .expect("start ticks");
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Handle {
        executor: "local".into(),
        data: serde_json::json!({
            "pid": pid,
            "start_ticks": start_ticks + 1,
            "state_dir": dir.path(),
        }),
    };
    match ex.status(&h).expect("status") {
        ExecStatus::Lost { reason } => {
            assert!(reason.contains(&format!("(pid {pid})")), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    ex.stop(&h, Duration::ZERO).expect("stop");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        victim.try_wait().expect("try_wait").is_none(),
        "the sleep was signalled"
    );
    // The same handle with the right start ticks would be signalled: the
    // check above is not vacuous.
    let right = Handle {
        executor: "local".into(),
        data: serde_json::json!({
            "pid": pid,
            "start_ticks": start_ticks,
            "state_dir": dir.path(),
        }),
    };
    assert_eq!(ex.status(&right).expect("status"), ExecStatus::Running);
    ex.stop(&right, Duration::ZERO).expect("stop");
    let status = victim.wait().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
}

fn peak_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The supervisor's highest VmHWM seen while the job runs.
fn run_sampling_memory(ex: &LocalExecutor, job: &Job, timeout: Duration) -> (Exit, u64) {
    let pid = job.supervisor_pid();
    let deadline = Instant::now() + timeout;
    let mut peak = 0;
    loop {
        if let Some(k) = peak_rss_kib(pid) {
            peak = peak.max(k);
        }
        if let ExecStatus::Exited(exit) = ex.status(&job.h).expect("status") {
            return (exit, peak);
        }
        assert!(Instant::now() < deadline, "still running after {timeout:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn fifty_megabytes_of_output_in_bounded_memory() {
    let ex = executor();
    let small = submit(sh("echo hi; sleep 1"));
    let (_, small_peak) = run_sampling_memory(&ex, &small, Duration::from_secs(20));

    let job = submit(sh(
        "head -c 50000000 /dev/zero | tr '\\0' 'a' | fold -w 100",
    ));
    let (exit, peak) = run_sampling_memory(&ex, &job, Duration::from_secs(180));
    assert!(exit.success(), "{exit:?}");
    eprintln!("supervisor VmHWM: {small_peak} KiB for one line, {peak} KiB for 50 MB");
    assert!(peak > 0, "VmHWM was never read");
    assert!(
        peak < 24 * 1024,
        "the supervisor's peak RSS was {peak} KiB for 50 MB of output"
    );
    assert!(
        peak < small_peak + 4 * 1024,
        "the supervisor's peak RSS grew from {small_peak} KiB to {peak} KiB with the output"
    );

    // Read back in 1 MiB chunks: whole lines, bounded chunks.
    let max = 1 << 20;
    let mut from = 0;
    let mut count = 0usize;
    let started = Instant::now();
    loop {
        let chunk = ex.logs(&job.h, from, max).expect("logs");
        if chunk.next == from {
            break;
        }
        assert!(chunk.next - from <= max as u64);
        for l in &chunk.lines {
            assert_eq!(l.text.len(), 100);
            assert!(l.text.bytes().all(|b| b == b'a'));
        }
        count += chunk.lines.len();
        from = chunk.next;
        assert!(started.elapsed() < Duration::from_secs(120));
    }
    // fold's last line has no newline; it counts all the same.
    assert_eq!(count, 500_000);
    let file_len = std::fs::metadata(job.state().join("output.jsonl"))
        .expect("output")
        .len();
    assert_eq!(from, file_len);
}

/// A memory cgroup of its own with a 64 MiB limit, removed on drop.
struct MemoryCgroup(PathBuf);

impl MemoryCgroup {
    /// `None` (the test is skipped) when this machine does not let us make one.
    fn create() -> Option<MemoryCgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = format!("atelier-oom-test-{}", std::process::id());
        // cgroup v1 memory controller.
        if let Some(path) = own.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrl, path) = (p.next()?, p.next()?, p.next()?);
            ctrl.split(',')
                .any(|c| c == "memory")
                .then(|| path.to_string())
        }) {
            let parent = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
            let dir = parent.join(&name);
            if std::fs::create_dir(&dir).is_ok() {
                let cg = MemoryCgroup(dir);
                let limited = std::fs::write(cg.0.join("memory.limit_in_bytes"), "64M").is_ok();
                // Without swap accounting this file is absent; then no swap limit is needed.
                let _ = std::fs::write(cg.0.join("memory.memsw.limit_in_bytes"), "64M");
                return limited.then_some(cg);
            }
        }
        // cgroup v2.
        let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let parent = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+memory");
        let dir = parent.join(&name);
        std::fs::create_dir(&dir).ok()?;
        let cg = MemoryCgroup(dir);
        let limited = std::fs::write(cg.0.join("memory.max"), "64M").is_ok();
        let _ = std::fs::write(cg.0.join("memory.swap.max"), "0");
        limited.then_some(cg)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("could not remove the test cgroup {}", self.0.display());
    }
}

#[test]
fn an_out_of_memory_kill_is_recognised() {
    let Some(cg) = MemoryCgroup::create() else {
        eprintln!(
            "skipped: cannot create a memory-limited cgroup here (the verdict is unit-tested on fixture text in local/oom.rs)"
        );
        return;
    };
    // The supervisor moves itself into the cgroup, then becomes the supervisor;
    // its command inherits the cgroup and its 64 MiB limit.
    let ex = LocalExecutor::new(vec![
        "sh".into(),
        "-c".into(),
        "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"".into(),
        cg.0.display().to_string(),
        SUPERVISOR.into(),
    ]);
    let job = submit_with(
        &ex,
        sh("x=$(head -c 400000000 /dev/zero | tr '\\0' a); echo \"survived ${#x}\""),
    );
    let exit = wait_exit(&ex, &job, Duration::from_secs(60));
    assert_eq!(exit.signal, Some(9), "{exit:?}\n{}", job.supervisor_log());
    assert!(exit.oom_killed, "{exit:?}\n{}", job.supervisor_log());
    assert!(!exit.stopped);
    let reason = exit.reason().expect("a reason");
    assert!(reason.contains("out-of-memory"), "{reason}");
    let record = std::fs::read_to_string(job.state().join("supervisor.json")).expect("record");
    assert!(record.contains(&cg.0.display().to_string()), "{record}");
}

fn launch_in(dir: &Path, argv: Vec<String>) -> Launch {
    Launch {
        job_id: "job-planned".into(),
        argv,
        env: vec![],
        cwd: dir.to_path_buf(),
        state_dir: dir.join("state"),
    }
}

fn wait_planned_exit(ex: &LocalExecutor, h: &Handle, timeout: Duration) -> Exit {
    let deadline = Instant::now() + timeout;
    loop {
        match ex.status(h).expect("status") {
            ExecStatus::Exited(exit) => return exit,
            ExecStatus::Running => {}
            ExecStatus::Lost { reason } => panic!("lost: {reason}"),
        }
        assert!(Instant::now() < deadline, "still running after {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The handle the runner records before the start names the same work as the
/// one `submit` returns, once the supervisor recorded itself: status, logs
/// and stop all reach it. Before anything was launched it is never-started.
#[test]
fn a_planned_handle_follows_the_supervisor_once_it_records_itself() {
    let ex = executor();
    let dir = tempfile::tempdir().expect("tempdir");
    let launch = launch_in(dir.path(), sh("echo one; sleep 0.5; echo two; exit 3"));
    let planned = ex
        .planned_handle(&launch)
        .expect("the local executor plans handles");
    assert_eq!(
        planned.data["state_dir"],
        serde_json::json!(dir.path().join("state"))
    );
    assert!(planned.data.get("pid").is_none(), "{planned:?}");
    // nothing launched yet: a worker adopting it now learns it never started
    let before = ex.status(&planned).expect("status");
    assert!(before.never_started(), "{before:?}");
    match &before {
        ExecStatus::Lost { reason } => assert!(reason.contains("nothing was launched"), "{reason}"),
        other => panic!("{other:?}"),
    }

    let real = ex.submit(&launch).expect("submit");
    assert_ne!(real, planned, "the real handle names the supervisor's pid");
    let exit = wait_planned_exit(&ex, &planned, Duration::from_secs(20));
    assert_eq!(exit.code, Some(3));
    assert_eq!(ex.status(&real).expect("status"), ExecStatus::Exited(exit));
    let texts: Vec<String> = all_lines(&ex, &planned)
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(texts, vec!["one".to_string(), "two".to_string()]);

    // a stop through the planned handle reaches the running command
    let dir2 = tempfile::tempdir().expect("tempdir");
    let long = launch_in(dir2.path(), sh("echo started; sleep 60"));
    let planned = ex.planned_handle(&long).expect("planned");
    let real = ex.submit(&long).expect("submit");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !all_lines(&ex, &planned).iter().any(|l| l.text == "started") {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ex.status(&planned).expect("status"), ExecStatus::Running);
    ex.stop(&planned, Duration::from_secs(5)).expect("stop");
    let exit = wait_planned_exit(&ex, &planned, Duration::from_secs(20));
    assert!(exit.stopped, "{exit:?}");
    let _ = ex.stop(&real, Duration::ZERO);
}

/// A launch file whose supervisor never recorded itself (the server died
/// between writing it and starting the supervisor) is `Running` for a few
/// seconds, then never-started; a stop meanwhile keeps the command from
/// starting.
#[test]
fn a_planned_handle_whose_supervisor_never_started_is_never_started() {
    let ex = executor();
    let dir = tempfile::tempdir().expect("tempdir");
    let launch = launch_in(dir.path(), sh("echo should not run"));
    let planned = ex.planned_handle(&launch).expect("planned");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    let launch_file = state.join("launch.json");
    std::fs::write(&launch_file, serde_json::to_vec(&launch).expect("json")).expect("write");
    assert_eq!(ex.status(&planned).expect("status"), ExecStatus::Running);
    let f = std::fs::File::options()
        .write(true)
        .open(&launch_file)
        .expect("open");
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .expect("set mtime");
    let status = ex.status(&planned).expect("status");
    assert!(status.never_started(), "{status:?}");
    match status {
        ExecStatus::Lost { reason } => {
            assert!(reason.contains("the supervisor never started"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // stopping it leaves a stop file, so a late supervisor would not start it
    ex.stop(&planned, Duration::from_secs(1)).expect("stop");
    assert!(state.join("stop").exists());
    assert!(ex.logs(&planned, 0, 1024).expect("logs").lines.is_empty());
}
