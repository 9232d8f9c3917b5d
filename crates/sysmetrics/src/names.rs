//! Metric names. The machine-wide ones are MLflow's (its `system/` prefix and
//! the keys of `mlflow/system_metrics/metrics/*_monitor.py`); the process-tree
//! ones follow the `system/process_*` keys of MLflow's optional
//! `ProcessMonitor` where the meaning is the same, and are Atelier's own
//! otherwise. The table in the crate docs gives units and meanings.

/// CPU busy across all CPUs, percent (0–100). MLflow: `cpu_utilization_percentage`.
pub const CPU_UTILIZATION_PERCENTAGE: &str = "system/cpu_utilization_percentage";
/// CPU time waiting on I/O across all CPUs, percent (0–100); Atelier's own
/// (MLflow logs none), read by the Debugger's IOBottleneck rule.
pub const IO_WAIT_PERCENTAGE: &str = "system/io_wait_percentage";
/// Memory in use (psutil's `used`), MB (10⁶ bytes).
pub const SYSTEM_MEMORY_USAGE_MEGABYTES: &str = "system/system_memory_usage_megabytes";
/// Memory in use over total memory, percent.
pub const SYSTEM_MEMORY_USAGE_PERCENTAGE: &str = "system/system_memory_usage_percentage";
/// Used share of the disk's space, percent (psutil's `disk_usage().percent`).
pub const DISK_USAGE_PERCENTAGE: &str = "system/disk_usage_percentage";
/// Used disk space, MB.
pub const DISK_USAGE_MEGABYTES: &str = "system/disk_usage_megabytes";
/// Disk space available to unprivileged users, MB.
pub const DISK_AVAILABLE_MEGABYTES: &str = "system/disk_available_megabytes";
/// Bytes received on all interfaces since the sampler started, MB.
pub const NETWORK_RECEIVE_MEGABYTES: &str = "system/network_receive_megabytes";
/// Bytes sent on all interfaces since the sampler started, MB.
pub const NETWORK_TRANSMIT_MEGABYTES: &str = "system/network_transmit_megabytes";

/// CPU of the process tree, percent of **one** core (200 = two cores busy).
pub const PROCESS_CPU_PERCENTAGE: &str = "system/process_cpu_percentage";
/// Sum of the tree's resident set sizes, MB.
pub const PROCESS_MEMORY_RSS_MEGABYTES: &str = "system/process_memory_rss_megabytes";
/// Sum of the tree's resident set sizes over total memory, percent.
pub const PROCESS_MEMORY_PERCENTAGE: &str = "system/process_memory_percentage";
/// Sum of the tree's virtual memory sizes, MB.
pub const PROCESS_MEMORY_VMS_MEGABYTES: &str = "system/process_memory_vms_megabytes";
/// Threads in the tree.
pub const PROCESS_THREADS: &str = "system/process_threads";
/// Live (not zombie) processes in the tree. Atelier only.
pub const PROCESS_COUNT: &str = "system/process_count";
/// Bytes the tree read from storage since the sampler started, MB. Atelier only.
pub const PROCESS_DISK_READ_MEGABYTES: &str = "system/process_disk_read_megabytes";
/// Bytes the tree wrote to storage since the sampler started, MB. Atelier only.
pub const PROCESS_DISK_WRITE_MEGABYTES: &str = "system/process_disk_write_megabytes";

/// `system/gpu_<i>_memory_usage_percentage`: GPU memory used over total, percent.
pub fn gpu_memory_usage_percentage(index: u32) -> String {
    format!("system/gpu_{index}_memory_usage_percentage")
}

/// `system/gpu_<i>_memory_usage_megabytes`: GPU memory used, MB.
pub fn gpu_memory_usage_megabytes(index: u32) -> String {
    format!("system/gpu_{index}_memory_usage_megabytes")
}

/// `system/gpu_<i>_utilization_percentage`: GPU busy, percent.
pub fn gpu_utilization_percentage(index: u32) -> String {
    format!("system/gpu_{index}_utilization_percentage")
}

/// `system/gpu_<i>_power_usage_watts`: power draw, W.
pub fn gpu_power_usage_watts(index: u32) -> String {
    format!("system/gpu_{index}_power_usage_watts")
}

/// `system/gpu_<i>_power_usage_percentage`: power draw over the enforced limit, percent.
pub fn gpu_power_usage_percentage(index: u32) -> String {
    format!("system/gpu_{index}_power_usage_percentage")
}
