//! Live tests: real processes, real `/proc`. CPU-heavy tests take a lock so
//! they do not compete with each other for this machine's cores.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sysmetrics::{GpuOptions, Sample, Sampler, SamplerOptions, names};

static CPU: Mutex<()> = Mutex::new(());

fn cpu_lock() -> MutexGuard<'static, ()> {
    CPU.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A shell command in its own process group (or session), killed as a
/// group when dropped.
struct Job {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
    /// Waited for with `wait4` and its group known empty: nothing to kill.
    reaped: bool,
}

impl Job {
    fn spawn(script: &str) -> Job {
        Job::start(script, false)
    }

    /// Starts the script as the leader of a new session, as a job system
    /// that isolates its jobs would.
    fn spawn_session(script: &str) -> Job {
        Job::start(script, true)
    }

    fn start(script: &str, session: bool) -> Job {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if session {
            // SAFETY: setsid is async-signal-safe and touches no memory.
            unsafe {
                command.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        } else {
            command.process_group(0);
        }
        let mut child = command.spawn().expect("spawn sh");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        Job {
            child,
            stdin,
            stdout,
            reaped: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the root to exit and returns its CPU time with that of every
    /// descendant it waited for, as the kernel accounts it (`wait4`). Call
    /// only when no process of the job is left.
    fn wait4(&mut self) -> Duration {
        let mut status = 0;
        // SAFETY: wait4 writes only into `status` and `usage`.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            let pid = libc::wait4(self.pid() as i32, &mut status, 0, &mut usage);
            assert_eq!(pid, self.pid() as i32, "wait4 failed");
            usage
        };
        self.reaped = true;
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }

    /// Waits for the script to print `line`.
    fn expect_line(&mut self, line: &str) {
        let stdout = self.stdout.as_mut().expect("stdout");
        let mut got = String::new();
        loop {
            got.clear();
            let n = stdout.read_line(&mut got).unwrap();
            assert!(n > 0, "the job ended before printing {line:?}");
            if got.trim_end() == line {
                return;
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // The group id is the leader's pid: kill every process of the job.
        // SAFETY: kill only sends a signal.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn no_gpu() -> SamplerOptions {
    SamplerOptions {
        gpu: None,
        ..SamplerOptions::default()
    }
}

fn value(sample: &Sample, name: &str) -> f64 {
    sample
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", sample.metrics))
}

/// CPU time the scheduler has given `pids` so far (`/proc/<pid>/schedstat`,
/// nanoseconds, a counter independent of the `utime`/`stime` ticks the
/// sampler reads). Exact for single-threaded processes.
fn scheduler_time(pids: &[u32]) -> Duration {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// The tree's CPU share over about `secs` as the sampler reports it, and as
/// the scheduler accounts it over the same span.
fn tree_cpu_over(sampler: &mut Sampler, secs: f64) -> (Sample, f64) {
    sampler.sample().unwrap();
    let pids = sampler.tree_pids();
    let before = scheduler_time(&pids);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let after = scheduler_time(&pids);
    let sample = sampler.sample().unwrap();
    let truth = (after - before).as_secs_f64() / sample.interval.as_secs_f64() * 100.0;
    (sample, truth)
}

/// The process CPU is what the scheduler says (a busy loop on an idle
/// machine: 100 % of a core), within the 10 ms granularity of CPU ticks.
///
/// Compared with the scheduler rather than with a fixed 100 %: on a shared
/// 2-core machine a busy loop competing with other builds gets anywhere from
/// a quarter to all of a core.
fn assert_about_one_busy_core(sample: &Sample, truth: f64) {
    let cpu = value(sample, names::PROCESS_CPU_PERCENTAGE);
    assert!(
        (cpu - truth).abs() <= 5.0 && cpu <= 105.0 && truth >= 5.0,
        "process CPU {cpu:.1} % of a core, the scheduler says {truth:.1} % (interval {:?})",
        sample.interval
    );
}

#[test]
fn busy_child_is_about_one_core() {
    let _cpu = cpu_lock();
    let job = Job::spawn("while :; do :; done");
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    let (sample, truth) = tree_cpu_over(&mut sampler, 1.2);
    assert_about_one_busy_core(&sample, truth);
    assert_eq!(value(&sample, names::PROCESS_COUNT), 1.0);
    assert_eq!(value(&sample, names::PROCESS_THREADS), 1.0);
    let machine = value(&sample, names::CPU_UTILIZATION_PERCENTAGE);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // One of `cores` CPUs is busy at least most of the time.
    assert!(
        machine >= 55.0 / cores && machine <= 100.0,
        "machine CPU {machine}"
    );
}

#[test]
fn busy_grandchild_is_counted() {
    let _cpu = cpu_lock();
    // sh → sh → (busy subshell): the busy loop is the root's grandchild.
    let job = Job::spawn("sh -c 'while :; do :; done & wait' & wait");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    while sampler.tree_pids().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "tree never grew: {:?}",
            sampler.tree_pids()
        );
        std::thread::sleep(Duration::from_millis(20));
        sampler.sample().unwrap();
    }
    let (sample, truth) = tree_cpu_over(&mut sampler, 1.2);
    assert_about_one_busy_core(&sample, truth);
    assert_eq!(value(&sample, names::PROCESS_COUNT), 3.0);
    assert!(sampler.tree_pids().contains(&job.pid()));
}

#[test]
fn children_that_exit_between_samples_are_counted() {
    let _cpu = cpu_lock();
    // 300 inner shells spin for a few milliseconds each, exit and are waited
    // for: their CPU reaches the tree only through the root's cutime/cstime,
    // and those seen alive at a sample must not be counted twice.
    let mut job = Job::spawn(
        "read go; i=0; while [ $i -lt 300 ]; do sh -c 'j=0; while [ $j -lt 2000 ]; do j=$((j+1)); done'; i=$((i+1)); done",
    );
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    job.send("go");
    let mut accounted = 0.0;
    let mut samples = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        // Once the root is a zombie its counters are final: one more sample.
        let done = gone(job.pid());
        let sample = sampler.sample().unwrap();
        accounted +=
            value(&sample, names::PROCESS_CPU_PERCENTAGE) / 100.0 * sample.interval.as_secs_f64();
        samples += 1;
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the job never finished");
    }
    let truth = job.wait4().as_secs_f64();
    // The sampler reads utime, stime, cutime and cstime in whole 10 ms ticks
    // (up to 40 ms short in all), and the root's start-up before the first
    // reading is the kernel's, not ours.
    assert!(
        (accounted - truth).abs() <= 0.05 + 0.02 * truth,
        "accounted {accounted:.3} s over {samples} samples, the kernel says {truth:.3} s"
    );
    assert!(truth > 0.2, "the children hardly ran: {truth:.3} s");
}

#[test]
fn orphans_stay_in_the_tree() {
    let _cpu = cpu_lock();
    let mut job = Job::spawn("(while :; do :; done) & read x");
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sampler.tree_pids().len() < 2 {
        assert!(Instant::now() < deadline, "busy child never appeared");
        std::thread::sleep(Duration::from_millis(20));
        sampler.sample().unwrap();
    }
    // The root exits; the busy subshell is re-parented away from the tree.
    job.close_stdin();
    let _ = job.child.wait();
    let (sample, truth) = tree_cpu_over(&mut sampler, 1.2);
    assert_about_one_busy_core(&sample, truth);
    assert_eq!(value(&sample, names::PROCESS_COUNT), 1.0);
    assert!(!sampler.tree_pids().contains(&job.pid()));
}

#[test]
fn session_members_are_in_the_tree() {
    let _cpu = cpu_lock();
    // The middle shell starts the busy loop and exits at once, so the loop is
    // an orphan before the sampler ever sees it: only the session ties it to
    // the job.
    let job = Job::spawn_session("sh -c '(while :; do :; done) &'; read x");
    std::thread::sleep(Duration::from_millis(300));
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    let (sample, truth) = tree_cpu_over(&mut sampler, 1.2);
    assert_about_one_busy_core(&sample, truth);
    assert_eq!(value(&sample, names::PROCESS_COUNT), 2.0);
}

#[test]
fn resident_memory_of_a_200_mb_child() {
    let mut job = Job::spawn(
        "exec python3 -c \"import sys, time\nb = b'x' * (200 * 1024 * 1024)\nprint('ready', flush=True)\ntime.sleep(60)\"",
    );
    job.expect_line("ready");
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    let sample = sampler.sample().unwrap();
    let rss = value(&sample, names::PROCESS_MEMORY_RSS_MEGABYTES);
    // 200 MiB is 209.7 MB; the interpreter adds a few more.
    assert!((209.0..320.0).contains(&rss), "RSS {rss:.1} MB");
    let vms = value(&sample, names::PROCESS_MEMORY_VMS_MEGABYTES);
    assert!(vms >= rss, "VMS {vms:.1} MB < RSS {rss:.1} MB");
    let share = value(&sample, names::PROCESS_MEMORY_PERCENTAGE);
    let total_mb = value(&sample, names::SYSTEM_MEMORY_USAGE_MEGABYTES)
        / value(&sample, names::SYSTEM_MEMORY_USAGE_PERCENTAGE)
        * 100.0;
    assert!(
        (share - rss / total_mb * 100.0).abs() < 0.01,
        "share {share}"
    );
}

fn scratch_dir(name: &str) -> PathBuf {
    // The target directory is on a real filesystem; /proc/<pid>/io counts no
    // writes to tmpfs.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sysmetrics-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn disk_writes_of_a_reaped_child() {
    let dir = scratch_dir("write");
    let file = dir.join("twenty.bin");
    // `dd` runs only once the sampler has its first reading, and is waited
    // for by the shell: its write_bytes reach the tree through the shell's.
    let mut job = Job::spawn(&format!(
        "read go; dd if=/dev/zero of='{}' bs=1M count=20 conv=fsync 2>/dev/null; echo done; read x",
        file.display()
    ));
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    let before = sampler.sample().unwrap();
    assert_eq!(value(&before, names::PROCESS_DISK_WRITE_MEGABYTES), 0.0);
    job.send("go");
    job.expect_line("done");
    let after = sampler.sample().unwrap();
    let written = value(&after, names::PROCESS_DISK_WRITE_MEGABYTES);
    // 20 MiB = 20.97 MB.
    assert!((20.9..30.0).contains(&written), "wrote {written:.2} MB");
    // It stays (cumulative) after more samples.
    let later = sampler.sample().unwrap();
    assert_eq!(value(&later, names::PROCESS_DISK_WRITE_MEGABYTES), written);
    let read = value(&later, names::PROCESS_DISK_READ_MEGABYTES);
    assert!((0.0..1.0).contains(&read), "read {read} MB from /dev/zero");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn vanished_processes_are_no_error() {
    let mut job =
        Job::spawn("i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done; echo done; read x");
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    let mut stdout = job.stdout.take().unwrap();
    let finished = std::thread::spawn(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line
    });
    // Sample as fast as possible while 300 children come and go.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut samples = 0;
    while !finished.is_finished() {
        sampler.sample().unwrap();
        samples += 1;
        assert!(Instant::now() < deadline, "the job never finished");
    }
    assert_eq!(finished.join().unwrap().trim(), "done");
    assert!(samples > 10, "only {samples} samples");
    // The root exits and is waited for: the tree is empty, sampling goes on.
    job.close_stdin();
    let _ = job.child.wait();
    let sample = sampler.sample().unwrap();
    assert_eq!(value(&sample, names::PROCESS_COUNT), 0.0);
    assert_eq!(value(&sample, names::PROCESS_CPU_PERCENTAGE), 0.0);
    assert_eq!(value(&sample, names::PROCESS_MEMORY_RSS_MEGABYTES), 0.0);
    assert!(sampler.tree_pids().is_empty());
    assert!(sampler.sample().is_ok());
}

#[test]
fn a_pid_that_does_not_exist_is_refused() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    match Sampler::new(pid, no_gpu()) {
        Err(sysmetrics::Error::NoSuchProcess(p)) => assert_eq!(p, pid),
        // The pid was reused already: unlikely, but not wrong.
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => {}
    }
}

#[test]
fn machine_metrics_have_mlflow_names_and_sane_values() {
    let job = Job::spawn("read x");
    let mut sampler = Sampler::new(job.pid(), SamplerOptions::default()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let first = sampler.sample().unwrap();
    let second = sampler.sample().unwrap();
    assert_eq!((first.step, second.step), (0, 1));
    assert!(second.timestamp_ms >= first.timestamp_ms);
    assert!(first.interval >= Duration::from_millis(100));
    for name in [
        names::CPU_UTILIZATION_PERCENTAGE,
        names::SYSTEM_MEMORY_USAGE_PERCENTAGE,
        names::DISK_USAGE_PERCENTAGE,
    ] {
        let v = value(&second, name);
        assert!((0.0..=100.0).contains(&v), "{name} = {v}");
    }
    assert!(value(&second, names::SYSTEM_MEMORY_USAGE_MEGABYTES) > 0.0);
    assert!(value(&second, names::DISK_USAGE_MEGABYTES) > 0.0);
    assert!(value(&second, names::DISK_AVAILABLE_MEGABYTES) > 0.0);
    assert!(value(&second, names::NETWORK_RECEIVE_MEGABYTES) >= 0.0);
    assert!(value(&second, names::NETWORK_TRANSMIT_MEGABYTES) >= 0.0);
    assert_eq!(value(&second, names::PROCESS_COUNT), 1.0);
    // No nvidia-smi on this machine (or one without GPUs): no GPU metrics.
    if which("nvidia-smi").is_none() {
        assert!(second.metrics.iter().all(|(n, _)| !n.contains("gpu")));
    }
    // Every name is unique.
    let mut seen: Vec<&str> = second.metrics.iter().map(|(n, _)| n.as_ref()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), second.metrics.len());
}

#[test]
fn network_counts_from_the_start() {
    let job = Job::spawn("read x");
    let mut sampler = Sampler::new(job.pid(), no_gpu()).unwrap();
    let before = sampler.sample().unwrap();
    // 8 MB over loopback: loopback counts it as received and as sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        socket.read_to_end(&mut sink).unwrap();
        sink.len()
    });
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket.write_all(&vec![7u8; 8_000_000]).unwrap();
    drop(socket);
    assert_eq!(reader.join().unwrap(), 8_000_000);
    let after = sampler.sample().unwrap();
    let rx = value(&after, names::NETWORK_RECEIVE_MEGABYTES)
        - value(&before, names::NETWORK_RECEIVE_MEGABYTES);
    let tx = value(&after, names::NETWORK_TRANSMIT_MEGABYTES)
        - value(&before, names::NETWORK_TRANSMIT_MEGABYTES);
    assert!(rx >= 8.0 && tx >= 8.0, "rx {rx:.2} MB, tx {tx:.2} MB");
    // Cumulative since the sampler started, not since boot.
    assert!(value(&before, names::NETWORK_RECEIVE_MEGABYTES) < 1000.0);
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|p| p.is_file())
}

/// A stand-in `nvidia-smi`: a shell script in a fresh directory.
fn fake_nvidia_smi(name: &str, body: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir(name);
    let script = dir.join("nvidia-smi");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho $$ >> '{}/pids'\n{body}\n", dir.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, dir)
}

fn gpu_options(command: PathBuf, timeout_ms: u64) -> SamplerOptions {
    SamplerOptions {
        gpu: Some(GpuOptions {
            command,
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(timeout_ms),
            retry_after: Duration::from_secs(30),
        }),
        ..SamplerOptions::default()
    }
}

fn started_pids(dir: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn gpu_metrics_from_a_streaming_nvidia_smi() {
    let (script, dir) = fake_nvidia_smi(
        "gpu-stream",
        r#"case "$*" in
  *--query-gpu=index,utilization.gpu,memory.used,memory.total,power.draw,enforced.power.limit*--format=csv,noheader,nounits*--loop-ms=100*) ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
while :; do
  echo "0, 87, 31245, 40960, 251.37, 400.00"
  echo "1, [N/A], 3, 15360, [Not Supported], 70.00"
  sleep 0.1
done"#,
    );
    let job = Job::spawn("read x");
    let mut sampler = Sampler::new(job.pid(), gpu_options(script, 2000)).unwrap();
    let mut sample = sampler.sample().unwrap();
    wait_until("GPU metrics", || {
        sample = sampler.sample().unwrap();
        sample.get("system/gpu_1_memory_usage_megabytes").is_some()
    });
    let near = |name: &str, want: f64| {
        let got = value(&sample, name);
        assert!((got - want).abs() < 1e-6, "{name}: {got} != {want}");
    };
    near("system/gpu_0_utilization_percentage", 87.0);
    near("system/gpu_0_memory_usage_megabytes", 31245.0 * 1.048576);
    near(
        "system/gpu_0_memory_usage_percentage",
        31245.0 / 40960.0 * 100.0,
    );
    near("system/gpu_0_power_usage_watts", 251.37);
    near(
        "system/gpu_0_power_usage_percentage",
        251.37 / 400.0 * 100.0,
    );
    near("system/gpu_1_memory_usage_megabytes", 3.0 * 1.048576);
    for absent in [
        "system/gpu_1_utilization_percentage",
        "system/gpu_1_power_usage_watts",
    ] {
        assert_eq!(sample.get(absent), None, "{absent}");
    }
    // One nvidia-smi for the sampler's whole life, stopped with it.
    let pids = started_pids(&dir);
    assert_eq!(pids.len(), 1, "{pids:?}");
    drop(sampler);
    wait_until("nvidia-smi to stop", || gone(pids[0]));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_silent_nvidia_smi_is_timed_out_without_blocking() {
    let (script, dir) = fake_nvidia_smi("gpu-silent", "exec sleep 600");
    let job = Job::spawn("read x");
    let mut sampler = Sampler::new(job.pid(), gpu_options(script, 300)).unwrap();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_millis(800) {
        let t = Instant::now();
        let sample = sampler.sample().unwrap();
        slowest = slowest.max(t.elapsed());
        assert!(sample.metrics.iter().all(|(n, _)| !n.contains("gpu")));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        slowest < Duration::from_millis(200),
        "a sample took {slowest:?}"
    );
    // Killed after the timeout, not started again before `retry_after`.
    let pids = started_pids(&dir);
    assert_eq!(pids.len(), 1, "{pids:?}");
    wait_until("the silent nvidia-smi to be killed", || gone(pids[0]));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failing_nvidia_smi_is_not_restarted_at_once() {
    let (script, dir) = fake_nvidia_smi(
        "gpu-fail",
        "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"; exit 9",
    );
    let job = Job::spawn("read x");
    let mut sampler = Sampler::new(job.pid(), gpu_options(script, 2000)).unwrap();
    for _ in 0..10 {
        let sample = sampler.sample().unwrap();
        assert!(sample.metrics.iter().all(|(n, _)| !n.contains("gpu")));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(started_pids(&dir).len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_nvidia_smi_means_no_gpu_metrics() {
    let job = Job::spawn("read x");
    let opts = gpu_options(PathBuf::from("/nonexistent/nvidia-smi"), 1000);
    let mut sampler = Sampler::new(job.pid(), opts).unwrap();
    let sample = sampler.sample().unwrap();
    assert!(sample.metrics.iter().all(|(n, _)| !n.contains("gpu")));
    assert!(sample.get(names::CPU_UTILIZATION_PERCENTAGE).is_some());
}
