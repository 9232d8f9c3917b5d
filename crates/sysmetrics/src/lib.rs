//! # sysmetrics — system metrics of a job's process tree
//!
//! Atelier runs users' jobs as local processes and logs, every 500 ms, metrics
//! of the machine and of the job's process tree as metrics of the job's MLflow
//! run. The machine-wide metrics carry the names MLflow's own system-metrics
//! monitor logs (`mlflow/system_metrics/metrics/*_monitor.py`, prefixed
//! `system/` by `system_metrics_monitor.py`) and are computed as MLflow's
//! psutil calls compute them, so MLflow's UI and the Studio draw them alike.
//! The process-tree metrics use the `system/process_*` keys of MLflow's
//! optional `ProcessMonitor` where they mean the same thing (the monitored
//! process and all its descendants), and Atelier's own names where MLflow has
//! none.
//!
//! ```no_run
//! use sysmetrics::{Sampler, SamplerOptions};
//! # fn main() -> Result<(), sysmetrics::Error> {
//! let child = std::process::Command::new("python3").arg("train.py").spawn().unwrap();
//! let mut sampler = Sampler::new(child.id(), SamplerOptions::default())?;
//! loop {
//!     std::thread::sleep(std::time::Duration::from_millis(500));
//!     let sample = sampler.sample()?;
//!     for (name, value) in &sample.metrics {
//!         // log_metric(run_id, name, value, sample.timestamp_ms, sample.step)
//!         # let _ = (name, value);
//!     }
//! #   break;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Metrics
//!
//! MB are 10⁶ bytes, as MLflow divides by `1e6`. "Since start" means since
//! [`Sampler::new`] (MLflow's network metrics likewise count from when its
//! monitor started). Rates are averages over [`Sample::interval`]; the first
//! sample covers the time since [`Sampler::new`], which took the first reading.
//!
//! | name | unit | meaning | origin |
//! |---|---|---|---|
//! | `system/cpu_utilization_percentage` | % of all CPUs (0–100) | busy share of every CPU's time (`/proc/stat`: not idle, not iowait; guest time counted once), as psutil's `cpu_percent()` | MLflow `CPUMonitor` |
//! | `system/io_wait_percentage` | % of all CPUs (0–100) | share of every CPU's time idle with I/O outstanding (`/proc/stat` iowait), read by the Debugger's IOBottleneck | Atelier |
//! | `system/system_memory_usage_megabytes` | MB | memory in use as psutil's `used`: `MemTotal − MemFree − Buffers − Cached − SReclaimable` (or `MemTotal − MemFree` when that is negative) | MLflow `CPUMonitor` |
//! | `system/system_memory_usage_percentage` | % | that over `MemTotal` | MLflow `CPUMonitor` |
//! | `system/disk_usage_percentage` | % | used over used + available on [`SamplerOptions::disk_path`] (`/` by default), as psutil's `disk_usage().percent` | MLflow `DiskMonitor` |
//! | `system/disk_usage_megabytes` | MB | used space (blocks − free blocks) | MLflow `DiskMonitor` |
//! | `system/disk_available_megabytes` | MB | space available to unprivileged users | MLflow `DiskMonitor` |
//! | `system/network_receive_megabytes` | MB, cumulative since start | bytes received on every interface, loopback included (`/proc/net/dev`) | MLflow `NetworkMonitor` |
//! | `system/network_transmit_megabytes` | MB, cumulative since start | bytes sent, likewise | MLflow `NetworkMonitor` |
//! | `system/gpu_<i>_memory_usage_percentage` | % | GPU `i`'s memory used over its total | MLflow `GPUMonitor` |
//! | `system/gpu_<i>_memory_usage_megabytes` | MB | GPU memory used (`nvidia-smi`'s MiB × 1.048576) | MLflow `GPUMonitor` |
//! | `system/gpu_<i>_utilization_percentage` | % | share of the last period a kernel ran on GPU `i` | MLflow `GPUMonitor` |
//! | `system/gpu_<i>_power_usage_watts` | W | power draw | MLflow `GPUMonitor` |
//! | `system/gpu_<i>_power_usage_percentage` | % | power draw over the enforced power limit | MLflow `GPUMonitor` |
//! | `system/process_cpu_percentage` | % of **one** core | CPU the tree used over the interval (100 = one core busy, 200 = two), including children that exited meanwhile (see below) | MLflow `ProcessMonitor` |
//! | `system/process_memory_rss_megabytes` | MB | sum of the members' resident set sizes; pages shared between members (after `fork`, shared libraries) count once per member, as psutil sums them | MLflow `ProcessMonitor` |
//! | `system/process_memory_percentage` | % | that sum over `MemTotal` | MLflow `ProcessMonitor` |
//! | `system/process_memory_vms_megabytes` | MB | sum of the members' virtual sizes | MLflow `ProcessMonitor` |
//! | `system/process_threads` | count | threads of the live members | MLflow `ProcessMonitor` |
//! | `system/process_count` | count | live (not zombie) members | Atelier |
//! | `system/process_disk_read_megabytes` | MB, cumulative since start | bytes the tree caused to be read from storage (`/proc/<pid>/io` `read_bytes`: page-cache hits are not counted) | Atelier |
//! | `system/process_disk_write_megabytes` | MB, cumulative since start | bytes the tree wrote into the page cache for storage (`write_bytes`: counted when a page is dirtied, before `fsync` or write-back; nothing for tmpfs; later truncation of unwritten pages is not subtracted) | Atelier |
//!
//! GPU metrics appear only when `nvidia-smi` runs and reports (see
//! [`GpuOptions`]); a field a GPU does not support is left out. A metric that
//! cannot be read at some sample (the disk path vanished, say) is left out of
//! that sample rather than reported as zero.
//!
//! **Process CPU as a share of one core.** `top`, psutil's
//! `Process.cpu_percent()` and MLflow's `ProcessMonitor` all report a
//! process's CPU this way, and it reads directly as "how many cores the job
//! keeps busy"; a share of all cores would make the same job read differently
//! on another machine. The machine-wide `system/cpu_utilization_percentage`
//! stays a share of all CPUs, as in MLflow.
//!
//! ## The process tree
//!
//! The tree is the root and its descendants, found by walking the parent pids
//! of `/proc/*/stat`; a member stays a member when re-parented, and a process
//! is named by pid and start time so a reused pid is not mistaken for it. The
//! CPU and IO of a child that exits and is waited for move into its parent's
//! `cutime`/`cstime` and `/proc/<pid>/io`, and are counted once from there.
//! The rules and what they miss are in the docs of the `tree` module.
//!
//! ## Cost
//!
//! One [`Sampler::sample`] lists `/proc`, reads `stat` and `io` of each member,
//! `stat` of the processes it has not seen before (a process already seen is
//! recognised by the inode number of its `/proc/<pid>` entry, which the kernel
//! makes new for a new process; every 20th sample reads them all again),
//! `/proc/stat`, `/proc/meminfo`, `/proc/net/dev` and one `statvfs`;
//! `nvidia-smi` runs on its own and is never waited for.
//! `examples/sample_cost.rs` measures it: about 0.1 % of one core at two
//! samples a second for a tree of ten processes on a host of ninety, 0.3 % on
//! a host of five hundred (1.3 % if every `stat` were read every time).

mod gpu;
pub mod names;
pub mod procfs;
mod sampler;
mod tree;

pub use gpu::{
    GpuOptions, GpuReading, QUERY_FIELDS as GPU_QUERY_FIELDS, parse_csv as parse_nvidia_smi_csv,
};
pub use sampler::{Sample, Sampler, SamplerOptions};

/// Why a [`Sampler`] could not be made or could not sample.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The root pid names no process (it exited and was waited for).
    #[error("process {0} does not exist")]
    NoSuchProcess(u32),
    /// A machine-wide `/proc` file could not be read: `/proc` is not mounted
    /// or not readable.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A machine-wide `/proc` file is not in the expected format.
    #[error("cannot parse {path}: {what}")]
    Parse { path: String, what: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
