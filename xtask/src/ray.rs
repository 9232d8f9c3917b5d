//! A local Ray cluster (a head and worker nodes) for the Ray executor's tests: `cargo xtask ray start`
//! (prints its address, leaves it running) and `cargo xtask ray stop`; from
//! Rust, [`start`] returns a [`RayHead`] guard that stops the head (and
//! deletes its folder) when dropped — `cargo xtask test` runs the Rust suite
//! with one, passing its address as `ATELIER_RAY_ADDRESS`.
//!
//! Ray (`tests/ray/requirements.txt`) is installed into the venv `.venv-ray`
//! by [`crate::test::setup_python`]. The cluster is a head with 2 CPUs and
//! [`WORKER_NODES`] worker node(s) with 2 CPUs each, started by
//! `tests/ray/cluster.py` with Ray's `ray.cluster_utils.Cluster` (`ray start`
//! cannot add a worker node while keeping Ray on 127.0.0.1, see the script),
//! on 127.0.0.1 only (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, without which
//! Ray advertises and binds the host's routable address), at free
//! ports picked here (GCS, dashboard, client server, dashboard agent; all
//! from the kernel's ephemeral range, outside Ray's worker ports
//! 10002-19999), usage stats off, with its temporary folder under
//! `<target>/ray/` (Ray's unix sockets live there: the path must stay short).
//! It is ready when the Jobs API answers and every node is alive. It runs in
//! a session of its own; its pid and start time are kept in `<folder>/head`
//! so that `stop` — from another process too — signals that very process:
//! SIGTERM to the script, which shuts every node down, then SIGKILL to whatever of its session, its descendants or the
//! processes naming its folder is left. Never `ray stop`: that kills every
//! Ray on the machine (a benchmark's, another checkout's).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    SIGKILL, SIGTERM, forget_group, free_port, kill, kill_groups_on_signal, lead_group, root,
    target_dir,
};

type R<T = ()> = Result<T, String>;

/// The venv Ray is installed in, relative to the repository root.
pub(crate) const VENV: &str = ".venv-ray";
/// Its requirements, relative to the repository root.
pub(crate) const REQUIREMENTS: &str = "tests/ray/requirements.txt";
/// The file in a head's folder that names its cluster process.
const HEAD_FILE: &str = "head";
/// How long the head may take to answer (`ray start` took 10-11 s in the
/// shared note's measurements, under load).
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the cluster process has to stop its nodes after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// The slot of [`lead_group`] the head's process group takes.
const SIGNAL_SLOT: usize = 7;
/// A unix socket path longer than this is refused by the kernel.
const MAX_SOCKET_PATH: usize = 107;
/// What Ray appends to its temporary folder for its longest socket path
/// (`/session_2026-12-06_19-47-03_682383_19384/sockets/plasma_store`, with room).
const RAY_SOCKET_SUFFIX: usize = 72;

unsafe extern "C" {
    fn setsid() -> i32;
}

/// A running head. Dropping it stops the head and deletes its folder;
/// [`RayHead::leave_running`] hands it over instead.
pub(crate) struct RayHead {
    /// `http://127.0.0.1:<dashboard port>`: Ray's Jobs API.
    pub(crate) address: String,
    /// Its folder (Ray's temporary folder, the `ray start` log, [`HEAD_FILE`]).
    pub(crate) dir: PathBuf,
    /// How long `ray start` took to answer on the Jobs API.
    pub(crate) started_in: Duration,
    running: bool,
}

impl RayHead {
    /// Leave the head running after this guard is gone (stop it later with
    /// [`stop`]).
    pub(crate) fn leave_running(mut self) -> (String, PathBuf) {
        self.running = false;
        (
            std::mem::take(&mut self.address),
            std::mem::take(&mut self.dir),
        )
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let t = Instant::now();
        match stop(&self.dir) {
            Ok(()) => eprintln!(
                "xtask: Ray head stopped in {:.1} s",
                t.elapsed().as_secs_f64()
            ),
            Err(e) => eprintln!(
                "xtask: stopping the Ray head in {}: {e}",
                self.dir.display()
            ),
        }
    }
}

/// The `ray` program of the venv, installing it first unless `skip_setup`.
pub(crate) fn ray_program(root: &Path, skip_setup: bool) -> R<PathBuf> {
    let python = if skip_setup {
        root.join(VENV).join("bin/python")
    } else {
        crate::test::setup_python(root, VENV, REQUIREMENTS)?
    };
    let ray = python.with_file_name("ray");
    if !ray.exists() {
        return Err(format!(
            "{} is missing: install {REQUIREMENTS} into {VENV} (run without --skip-setup)",
            ray.display()
        ));
    }
    Ok(ray)
}

/// The folder a head named `name` uses: under `<target>/ray/`, or under
/// /tmp when that path would make Ray's socket paths too long.
fn head_dir(root: &Path, name: &str) -> PathBuf {
    let under_target = target_dir(root).join("ray").join(name);
    if under_target.as_os_str().len() + RAY_SOCKET_SUFFIX <= MAX_SOCKET_PATH {
        under_target
    } else {
        PathBuf::from(format!("/tmp/atelier-ray-{name}"))
    }
}

/// Start a head named `name` (its folder: see [`head_dir`]) with `ray`.
pub(crate) fn start(ray: &Path, root: &Path, name: &str) -> R<RayHead> {
    let dir = head_dir(root, name);
    if dir.join(HEAD_FILE).exists() {
        // a head left running (or killed) by an earlier run of this name
        stop(&dir)?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = dir.join("tmp");
    let ports: Vec<u16> = (0..4 + WORKER_NODES)
        .map(|_| free_port())
        .collect::<R<_>>()?;
    let (gcs, dashboard, client) = (ports[0], ports[1], ports[2]);
    let agents: Vec<String> = ports[3..].iter().map(u16::to_string).collect();
    let log_path = dir.join("ray-start.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let python = ray.with_file_name("python");
    let mut cmd = Command::new(&python);
    cmd.arg(root.join(CLUSTER_SCRIPT))
        .args(["--gcs-port", &gcs.to_string()])
        .args(["--dashboard-port", &dashboard.to_string()])
        .args(["--client-port", &client.to_string()])
        .args(["--agent-ports", &agents.join(",")])
        .args(["--head-cpus", "2", "--workers", &WORKER_NODES.to_string()])
        .args(["--worker-cpus", "2", "--temp-dir"])
        .arg(&tmp)
        .env("RAY_USAGE_STATS_ENABLED", "0")
        // keeps every Ray port on 127.0.0.1 instead of the host's routable address
        .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: setsid(2) is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            setsid();
            Ok(())
        });
    }
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", python.display()))?;
    let pid = child.id() as i32;
    // an interrupted `cargo xtask test` SIGKILLs the head's process group
    lead_group(SIGNAL_SLOT, pid);
    kill_groups_on_signal();
    let start_ticks = read_stat(pid).map_or(0, |s| s.start);
    std::fs::write(dir.join(HEAD_FILE), format!("{pid} {start_ticks}\n"))
        .map_err(|e| format!("writing {}: {e}", dir.join(HEAD_FILE).display()))?;
    let address = format!("http://127.0.0.1:{dashboard}");
    let head = RayHead {
        address,
        dir: dir.clone(),
        started_in: Duration::ZERO,
        running: true,
    };
    // the head is stopped (by the guard) if it never gets ready
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!(
                "the Ray cluster exited ({st}) before its Jobs API answered:\n{}",
                tail(&log_path)
            ));
        }
        if answers(dashboard, "/api/version")
            && answers(dashboard, "/api/jobs/")
            && alive_nodes(dashboard) > WORKER_NODES
        {
            break;
        }
        if t0.elapsed() > START_TIMEOUT {
            return Err(format!(
                "Ray's Jobs API did not answer at {} within {} s:\n{}",
                head.address,
                START_TIMEOUT.as_secs(),
                tail(&log_path)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // `child` is not waited for: stop() ends it by pid, from any process
    std::mem::forget(child);
    let mut head = head;
    head.started_in = t0.elapsed();
    Ok(head)
}

/// Worker nodes started beside the head (by [`CLUSTER_SCRIPT`]): a cluster
/// of more than one node, so that work spread "across the cluster's
/// workers" can be seen to be.
pub(crate) const WORKER_NODES: usize = 1;
/// Starts the cluster, relative to the repository root.
const CLUSTER_SCRIPT: &str = "tests/ray/cluster.py";

/// How many nodes the dashboard lists as alive.
fn alive_nodes(port: u16) -> usize {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let path = "/nodes?view=summary";
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let Ok((200, body)) = crate::common::parse_http_answer(&buf, path) else {
        return 0;
    };
    let Ok(v) = crate::json::Json::parse(&String::from_utf8_lossy(&body)) else {
        return 0;
    };
    v.get("data")
        .and_then(|d| d.get("summary"))
        .map_or(0, |nodes| {
            nodes
                .arr()
                .iter()
                .filter(|n| {
                    n.get("raylet")
                        .and_then(|r| r.get("state"))
                        .and_then(|s| s.str())
                        == Some("ALIVE")
                })
                .count()
        })
}

/// Whether `GET path` on the dashboard answers 200.
fn answers(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    crate::common::parse_http_answer(&buf, path).is_ok_and(|(status, _)| status == 200)
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    crate::common::tail_str(&std::fs::read_to_string(path).unwrap_or_default())
}

/// One process as `/proc/<pid>/stat` shows it.
#[derive(Clone, Copy)]
struct Stat {
    pid: i32,
    ppid: i32,
    sid: i32,
    /// Start time in clock ticks after boot: (pid, start) names a process.
    start: u64,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the fields after "(comm)": state ppid pgrp session … starttime is field 22
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.first().is_some_and(|s| *s == "Z" || *s == "X") {
        return None;
    }
    Some(Stat {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

fn all_procs() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter_map(read_stat)
        .collect()
}

/// The head's processes: the leader's session, its descendants, and any
/// process whose command line names the head's folder.
fn members(leader: i32, dir: &Path) -> Vec<Stat> {
    let procs = all_procs();
    let marker = dir.to_string_lossy().to_string();
    // never this process or its parents (`cargo xtask ray stop <folder>` names it too)
    let mut ours = vec![std::process::id() as i32];
    while let Some(parent) = ours
        .last()
        .and_then(|p| read_stat(*p))
        .map(|s| s.ppid)
        .filter(|pp| *pp > 1 && !ours.contains(pp))
    {
        ours.push(parent);
    }
    let procs: Vec<Stat> = procs
        .into_iter()
        .filter(|p| !ours.contains(&p.pid))
        .collect();
    let mut take: Vec<Stat> = procs
        .iter()
        .filter(|p| {
            p.pid == leader
                || p.sid == leader
                || std::fs::read(format!("/proc/{}/cmdline", p.pid))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .copied()
        .collect();
    let mut i = 0;
    while i < take.len() {
        let parent = take[i].pid;
        for p in &procs {
            if p.ppid == parent && !take.iter().any(|t| t.pid == p.pid) {
                take.push(*p);
            }
        }
        i += 1;
    }
    take
}

fn alive(p: &Stat) -> bool {
    read_stat(p.pid).is_some_and(|q| q.start == p.start)
}

/// Stop the head whose folder is `dir` (see the module docs) and delete the
/// folder. A head that is gone already is not an error.
pub(crate) fn stop(dir: &Path) -> R {
    let head_file = dir.join(HEAD_FILE);
    let text = match std::fs::read_to_string(&head_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{} is not a Ray head's folder (no {HEAD_FILE} file)",
                dir.display()
            ));
        }
        Err(e) => return Err(format!("reading {}: {e}", head_file.display())),
    };
    let mut f = text.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(pid)), Some(Ok(start))) = (f.next(), f.next()) else {
        return Err(format!(
            "{} is not '<pid> <start ticks>'",
            head_file.display()
        ));
    };
    let leader = i32::try_from(pid).map_err(|_| format!("pid {pid} in {}", head_file.display()))?;
    let is_ours = read_stat(leader).is_some_and(|s| s.start == start);
    let snapshot = if is_ours {
        members(leader, dir)
    } else {
        // the cluster process is gone; what names the folder may be left
        members(-1, dir)
    };
    if is_ours {
        // SAFETY: kill(2) on a pid whose start time we just checked.
        unsafe { kill(leader, SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < STOP_GRACE && snapshot.iter().any(alive) {
            reap(leader);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mut left: Vec<Stat> = snapshot.into_iter().filter(alive).collect();
    left.extend(members(if is_ours { leader } else { -1 }, dir));
    for p in &left {
        if alive(p) {
            // SAFETY: as above, the start time was checked just now.
            unsafe { kill(p.pid, SIGKILL) };
        }
    }
    reap(leader);
    if is_ours {
        forget_group(SIGNAL_SLOT);
    }
    std::fs::remove_dir_all(dir).map_err(|e| format!("removing {}: {e}", dir.display()))
}

/// Reap the leader if it is our child (started by this process).
fn reap(pid: i32) {
    unsafe extern "C" {
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    }
    const WNOHANG: i32 = 1;
    let mut status = 0;
    // SAFETY: waitpid(2) with WNOHANG on one pid; an error (not our child) is fine.
    unsafe { waitpid(pid, &mut status, WNOHANG) };
}

/// `cargo xtask ray start|stop [--skip-setup]`.
pub fn run(args: &[String]) -> R {
    let root = root();
    let skip_setup = args.iter().any(|a| a == "--skip-setup");
    match args.first().map(String::as_str) {
        Some("start") => {
            let t = Instant::now();
            let ray = ray_program(&root, skip_setup)?;
            let installed = t.elapsed();
            let head = start(&ray, &root, "dev")?;
            eprintln!(
                "xtask: Ray head ready in {:.1} s (venv {:.1} s); stop it with `cargo xtask ray stop`",
                head.started_in.as_secs_f64(),
                installed.as_secs_f64()
            );
            let (address, dir) = head.leave_running();
            eprintln!("xtask: its folder (logs): {}", dir.display());
            println!("ATELIER_RAY_ADDRESS={address}");
            Ok(())
        }
        Some("stop") => {
            let dir = args
                .get(1)
                .filter(|a| !a.starts_with("--"))
                .map_or_else(|| head_dir(&root, "dev"), PathBuf::from);
            let t = Instant::now();
            stop(&dir)?;
            eprintln!(
                "xtask: Ray head stopped in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        _ => Err("usage: cargo xtask ray start [--skip-setup] | stop [<folder>]".into()),
    }
}
