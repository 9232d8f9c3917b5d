//! NVIDIA GPUs through `nvidia-smi`.
//!
//! One `nvidia-smi --query-gpu=… --format=csv,noheader,nounits
//! --loop-ms=<interval>` runs beside the sampler for as long as it lives and
//! prints a line per GPU every interval; a reader thread keeps the latest line
//! of each GPU. Starting `nvidia-smi` costs tens of milliseconds of CPU (more
//! without the persistence daemon), so a new process every 500 ms would cost
//! more than everything else the sampler does; one long-lived process costs
//! that once, and [`GpuMonitor::readings`] never waits for it.
//!
//! No `nvidia-smi` on `PATH` means no GPU metrics and no error. A line older
//! than the timeout is not reported; a process that printed nothing for that
//! long is killed, and one that exits (no driver, say) is started again after
//! a back-off that doubles up to ten minutes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The fields asked of `nvidia-smi`, in this order.
pub const QUERY_FIELDS: &str =
    "index,utilization.gpu,memory.used,memory.total,power.draw,enforced.power.limit";

const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// How GPU metrics are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuOptions {
    /// The program to run; a bare name is looked up on `PATH`.
    pub command: PathBuf,
    /// How often `nvidia-smi` prints (its `--loop-ms`); set it to the
    /// sampling interval.
    pub interval: Duration,
    /// A GPU's line older than this is not reported, and an `nvidia-smi`
    /// that printed nothing for this long is killed and started again.
    pub timeout: Duration,
    /// First wait before starting `nvidia-smi` again after it exited or was
    /// killed; doubles each time it fails again, up to ten minutes.
    pub retry_after: Duration,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            command: PathBuf::from("nvidia-smi"),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            retry_after: Duration::from_secs(10),
        }
    }
}

/// One GPU's line. A field `nvidia-smi` reports as `[N/A]` or
/// `[Not Supported]` is `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuReading {
    pub index: u32,
    /// Percent of the last sample period a kernel was running.
    pub utilization_percent: Option<f64>,
    /// MiB, as `nvidia-smi` prints them.
    pub memory_used_mib: Option<f64>,
    pub memory_total_mib: Option<f64>,
    pub power_watts: Option<f64>,
    pub power_limit_watts: Option<f64>,
}

/// Parses one line of `--format=csv,noheader,nounits` output for
/// [`QUERY_FIELDS`]; `None` for anything else (an error message, a blank).
pub fn parse_line(line: &str) -> Option<GpuReading> {
    let cols: Vec<&str> = line.split(',').map(str::trim).collect();
    if cols.len() != 6 {
        return None;
    }
    let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
    Some(GpuReading {
        index: cols[0].parse().ok()?,
        utilization_percent: num(cols[1]),
        memory_used_mib: num(cols[2]),
        memory_total_mib: num(cols[3]),
        power_watts: num(cols[4]),
        power_limit_watts: num(cols[5]),
    })
}

/// Parses a whole output; lines that are not GPU lines are skipped.
pub fn parse_csv(text: &str) -> Vec<GpuReading> {
    text.lines().filter_map(parse_line).collect()
}

#[derive(Default)]
struct Shared {
    latest: BTreeMap<u32, (GpuReading, Instant)>,
    last_line: Option<Instant>,
    ended: bool,
}

struct Running {
    child: Child,
    started: Instant,
    shared: Arc<Mutex<Shared>>,
}

/// Runs `nvidia-smi` in loop mode and hands out its latest lines.
pub(crate) struct GpuMonitor {
    opts: GpuOptions,
    running: Option<Running>,
    next_start: Instant,
    backoff: Duration,
    /// The command does not exist: never try again.
    absent: bool,
}

impl GpuMonitor {
    pub(crate) fn new(opts: GpuOptions) -> GpuMonitor {
        let backoff = opts.retry_after;
        let mut monitor = GpuMonitor {
            opts,
            running: None,
            next_start: Instant::now(),
            backoff,
            absent: false,
        };
        monitor.start(Instant::now());
        monitor
    }

    fn start(&mut self, now: Instant) {
        let mut command = Command::new(&self.opts.command);
        command
            .arg(format!("--query-gpu={QUERY_FIELDS}"))
            .arg("--format=csv,noheader,nounits")
            .arg(format!(
                "--loop-ms={}",
                self.opts.interval.as_millis().max(1)
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::debug!(command = %self.opts.command.display(), "no nvidia-smi: no GPU metrics");
                self.absent = true;
                return;
            }
            Err(e) => {
                tracing::warn!(command = %self.opts.command.display(), error = %e, "cannot start nvidia-smi");
                self.schedule_retry(now);
                return;
            }
        };
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let for_thread = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("sysmetrics-nvidia-smi".into())
            .spawn(move || read_lines(stdout, &for_thread));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the nvidia-smi reader thread");
            reap_in_background(child);
            self.schedule_retry(now);
            return;
        }
        self.running = Some(Running {
            child,
            started: now,
            shared,
        });
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.next_start = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF.max(self.opts.retry_after));
    }

    /// The latest reading of each GPU, none older than the timeout. Never
    /// blocks on `nvidia-smi`.
    pub(crate) fn readings(&mut self, now: Instant) -> Vec<GpuReading> {
        if self.absent {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut stop = false;
        if let Some(running) = &self.running {
            let shared = running
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (reading, at) in shared.latest.values() {
                if now.saturating_duration_since(*at) <= self.opts.timeout {
                    out.push(*reading);
                }
            }
            let quiet_since = shared.last_line.unwrap_or(running.started);
            if shared.ended {
                tracing::debug!("nvidia-smi exited");
                stop = true;
            } else if now.saturating_duration_since(quiet_since) > self.opts.timeout {
                tracing::warn!(timeout = ?self.opts.timeout, "nvidia-smi printed nothing in time; restarting it");
                stop = true;
            }
            if stop && shared.last_line.is_some() {
                // It worked for a while: retry soon again.
                self.backoff = self.opts.retry_after;
            }
        }
        if stop && let Some(running) = self.running.take() {
            reap_in_background(running.child);
            self.schedule_retry(now);
        }
        if self.running.is_none() && now >= self.next_start {
            self.start(now);
        }
        out
    }
}

impl Drop for GpuMonitor {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            reap_in_background(running.child);
        }
    }
}

/// Kills `child` and waits for it on another thread: an `nvidia-smi` stuck
/// in the driver may take long to die, and the caller must not wait for it.
fn reap_in_background(mut child: Child) {
    let _ = child.kill();
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("sysmetrics-reap".into())
        .spawn(move || {
            let _ = child.wait();
        });
}

fn read_lines(stdout: std::process::ChildStdout, shared: &Mutex<Shared>) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let now = Instant::now();
                let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(reading) = parse_line(&line) {
                    shared.latest.insert(reading.index, (reading, now));
                    shared.last_line = Some(now);
                }
            }
        }
    }
    shared.lock().unwrap_or_else(PoisonError::into_inner).ended = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,
    /// memory.total,power.draw,enforced.power.limit --format=csv,noheader,nounits`
    /// on a two-GPU machine (an A100 and a T4).
    const TWO_GPUS: &str = "0, 87, 31245, 40960, 251.37, 400.00\n1, 0, 3, 15360, 9.83, 70.00\n";

    #[test]
    fn parses_captured_output() {
        let r = parse_csv(TWO_GPUS);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            GpuReading {
                index: 0,
                utilization_percent: Some(87.0),
                memory_used_mib: Some(31245.0),
                memory_total_mib: Some(40960.0),
                power_watts: Some(251.37),
                power_limit_watts: Some(400.0),
            }
        );
        assert_eq!(r[1].index, 1);
        assert_eq!(r[1].power_watts, Some(9.83));
    }

    #[test]
    fn unsupported_fields_are_none() {
        // A GPU without power readings (e.g. some GeForce or vGPU).
        let r = parse_line("2, [N/A], 1024, 8192, [Not Supported], [N/A]").unwrap();
        assert_eq!(r.index, 2);
        assert_eq!(r.utilization_percent, None);
        assert_eq!(r.memory_used_mib, Some(1024.0));
        assert_eq!(r.power_watts, None);
        assert_eq!(r.power_limit_watts, None);
    }

    #[test]
    fn other_lines_are_skipped() {
        let text = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. \
Make sure that the latest NVIDIA driver is installed and running.\n\n\
index, utilization.gpu [%], memory.used [MiB]\n\
0, 5, 10, 100\n\
x, 1, 2, 3, 4, 5\n\
0, 5, 10, 100, 30, 70\r\n";
        let r = parse_csv(text);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].power_limit_watts, Some(70.0));
    }
}
