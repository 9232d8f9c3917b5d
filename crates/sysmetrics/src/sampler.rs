//! [`Sampler`]: reads `/proc` (and `statvfs`, and `nvidia-smi`'s stream) and
//! turns two readings into a [`Sample`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::gpu::{GpuMonitor, GpuOptions, GpuReading};
use crate::names;
use crate::procfs::{self, CpuTimes, MemInfo, NetDev, PidIo, PidStat};
use crate::tree::{self, Counters, Node};
use crate::{Error, Result};

/// Bytes in one of MLflow's megabytes.
const MB: f64 = 1e6;

/// Every this many readings every `/proc/<pid>/stat` is read again, not only
/// the tree's and those of pids whose `/proc` entry is new (see
/// [`Scanner`]).
const FULL_SCAN_EVERY: u64 = 20;

/// What a [`Sampler`] reads besides the process tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplerOptions {
    /// The filesystem `system/disk_*` describe. MLflow uses `/`; Atelier may
    /// prefer its data directory's.
    pub disk_path: PathBuf,
    /// GPU metrics through `nvidia-smi`; `None` turns them off.
    pub gpu: Option<GpuOptions>,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        SamplerOptions {
            disk_path: PathBuf::from("/"),
            gpu: Some(GpuOptions::default()),
        }
    }
}

/// One reading: `(name, value)` pairs under the names of [`crate::names`].
///
/// A metric that could not be read this time (the disk path vanished, no GPU)
/// is absent rather than zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// 0 for the first sample of a [`Sampler`], then 1, 2, …: the step
    /// MLflow's monitor logs system metrics at.
    pub step: u64,
    /// Wall-clock time of the reading, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Time since the previous reading (for the first sample, since
    /// [`Sampler::new`]); rates are averages over it. CPU times come in
    /// 10 ms clock ticks, so below ~100 ms the process CPU share is coarse.
    pub interval: Duration,
    pub metrics: Vec<(Cow<'static, str>, f64)>,
}

impl Sample {
    /// The value of the metric `name`, if the sample has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    fn push(&mut self, name: impl Into<Cow<'static, str>>, value: f64) {
        self.metrics.push((name.into(), value));
    }
}

/// Samples the machine and one job's process tree. See the crate docs.
///
/// It is `Send`, so it can live on the thread that runs the job; sampling
/// takes `&mut self`. Dropping it stops its `nvidia-smi`.
pub struct Sampler {
    root: (u32, u64),
    session_leader: bool,
    page_size: u64,
    ticks_per_second: f64,
    opts: SamplerOptions,
    scanner: Scanner,
    /// The tree at the last reading.
    members: HashMap<u32, Counters>,
    tree_read_bytes: u64,
    tree_write_bytes: u64,
    last_at: Instant,
    cpu: CpuTimes,
    cpu_percent: f64,
    iowait_percent: f64,
    net: Network,
    disk_warned: bool,
    gpu: Option<GpuMonitor>,
    step: u64,
}

impl Sampler {
    /// Starts sampling the tree rooted at `root_pid`: takes the first reading
    /// of every counter (the first [`Sampler::sample`] reports use since this
    /// call) and starts `nvidia-smi` if asked and present.
    ///
    /// Fails when `/proc` cannot be read or `root_pid` does not exist (a
    /// zombie, exited but not yet waited for, still exists).
    pub fn new(root_pid: u32, opts: SamplerOptions) -> Result<Sampler> {
        let mut scanner = Scanner::new();
        let root_stat = scanner
            .read_stat(root_pid)
            .ok_or(Error::NoSuchProcess(root_pid))?;
        let root = (root_pid, root_stat.start_ticks);
        let session_leader = root_stat.session == root_pid;
        let cpu = read_cpu(&mut scanner.buf)?;
        let net = Network::new(read_net(&mut scanner.buf));
        let gpu = opts.gpu.clone().map(GpuMonitor::new);
        let mut sampler = Sampler {
            root,
            session_leader,
            page_size: sysconf(libc::_SC_PAGESIZE).unwrap_or(4096),
            ticks_per_second: sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64,
            opts,
            scanner,
            members: HashMap::new(),
            tree_read_bytes: 0,
            tree_write_bytes: 0,
            last_at: Instant::now(),
            cpu,
            cpu_percent: 0.0,
            iowait_percent: 0.0,
            net,
            disk_warned: false,
            gpu,
            step: 0,
        };
        sampler.members = sampler.read_tree()?.0;
        sampler.last_at = Instant::now();
        Ok(sampler)
    }

    /// The root's pid.
    pub fn root_pid(&self) -> u32 {
        self.root.0
    }

    /// The pids of the tree at the last reading, sorted.
    pub fn tree_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.members.keys().copied().collect();
        pids.sort_unstable();
        pids
    }

    /// Reads every counter and reports the machine and the tree since the
    /// previous reading. Processes that exit meanwhile are no error; once the
    /// whole tree has exited the process figures are zero (the cumulative
    /// ones keep their totals).
    ///
    /// Fails only when `/proc` itself cannot be read.
    pub fn sample(&mut self) -> Result<Sample> {
        let (members, stats) = self.read_tree()?;
        let cpu = read_cpu(&mut self.scanner.buf)?;
        let mem = read_meminfo(&mut self.scanner.buf)?;
        let net = read_net(&mut self.scanner.buf);
        let now = Instant::now();
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let interval = now.saturating_duration_since(self.last_at);
        self.last_at = now;

        let mut sample = Sample {
            step: self.step,
            timestamp_ms,
            interval,
            metrics: Vec::with_capacity(24),
        };
        self.step += 1;

        // Machine-wide, as MLflow's CPUMonitor, DiskMonitor, NetworkMonitor.
        // With no clock tick since the last reading the CPU share is
        // unknown: report the last one and keep the older baseline.
        if let Some(percent) = cpu.busy_percent_since(&self.cpu) {
            self.cpu_percent = percent;
            self.iowait_percent = cpu.iowait_percent_since(&self.cpu).unwrap_or(0.0);
            self.cpu = cpu;
        }
        sample.push(names::CPU_UTILIZATION_PERCENTAGE, self.cpu_percent);
        sample.push(names::IO_WAIT_PERCENTAGE, self.iowait_percent);
        let used = mem.used();
        sample.push(names::SYSTEM_MEMORY_USAGE_MEGABYTES, used as f64 / MB);
        sample.push(
            names::SYSTEM_MEMORY_USAGE_PERCENTAGE,
            percent_of(used, mem.total),
        );
        self.push_disk(&mut sample);
        if let Some(net) = net {
            let (rx, tx) = self.net.update(&net);
            sample.push(names::NETWORK_RECEIVE_MEGABYTES, rx as f64 / MB);
            sample.push(names::NETWORK_TRANSMIT_MEGABYTES, tx as f64 / MB);
        }

        // The process tree.
        let used = tree::usage(&self.members, &members);
        self.members = members;
        self.tree_read_bytes += used.read_bytes;
        self.tree_write_bytes += used.write_bytes;
        let seconds = interval.as_secs_f64();
        let cpu_percent = if seconds > 0.0 {
            used.cpu_ticks as f64 / self.ticks_per_second / seconds * 100.0
        } else {
            0.0
        };
        let (mut rss, mut vms, mut threads, mut live) = (0u64, 0u64, 0u64, 0u64);
        for stat in stats.values().filter(|s| !s.is_zombie()) {
            rss += stat.rss_pages * self.page_size;
            vms += stat.vsize_bytes;
            threads += stat.num_threads;
            live += 1;
        }
        sample.push(names::PROCESS_CPU_PERCENTAGE, cpu_percent);
        sample.push(names::PROCESS_MEMORY_RSS_MEGABYTES, rss as f64 / MB);
        sample.push(names::PROCESS_MEMORY_PERCENTAGE, percent_of(rss, mem.total));
        sample.push(names::PROCESS_MEMORY_VMS_MEGABYTES, vms as f64 / MB);
        sample.push(names::PROCESS_THREADS, threads as f64);
        sample.push(names::PROCESS_COUNT, live as f64);
        sample.push(
            names::PROCESS_DISK_READ_MEGABYTES,
            self.tree_read_bytes as f64 / MB,
        );
        sample.push(
            names::PROCESS_DISK_WRITE_MEGABYTES,
            self.tree_write_bytes as f64 / MB,
        );

        if let Some(gpu) = &mut self.gpu {
            for reading in gpu.readings(now) {
                push_gpu(&mut sample, &reading);
            }
        }
        Ok(sample)
    }

    fn push_disk(&mut self, sample: &mut Sample) {
        match disk_usage(&self.opts.disk_path) {
            Ok(disk) => {
                self.disk_warned = false;
                sample.push(names::DISK_USAGE_PERCENTAGE, disk.percent());
                sample.push(names::DISK_USAGE_MEGABYTES, disk.used as f64 / MB);
                sample.push(names::DISK_AVAILABLE_MEGABYTES, disk.available as f64 / MB);
            }
            Err(e) => {
                if !self.disk_warned {
                    tracing::warn!(path = %self.opts.disk_path.display(), error = %e, "cannot read disk usage; no disk metrics");
                    self.disk_warned = true;
                }
            }
        }
    }

    /// Reads the tree: its members' counters and their stats.
    fn read_tree(&mut self) -> Result<(HashMap<u32, Counters>, HashMap<u32, PidStat>)> {
        let previous: HashMap<u32, u64> = self
            .members
            .iter()
            .map(|(&pid, c)| (pid, c.start))
            .collect();
        let (nodes, mut stats) = self.scanner.scan(&previous)?;
        let member_pids = tree::members(self.root, self.session_leader, &previous, &nodes);
        let mut counters = HashMap::with_capacity(member_pids.len());
        let mut member_stats = HashMap::with_capacity(member_pids.len());
        for pid in member_pids {
            let stat = match stats.remove(&pid) {
                Some(stat) => stat,
                // Known from the cache only: read it now.
                None => match self.scanner.read_stat(pid) {
                    Some(stat) if stat.start_ticks == nodes[&pid].start => stat,
                    _ => continue,
                },
            };
            let io = self.scanner.read_io(pid);
            counters.insert(pid, Counters::from_stat(&stat, io));
            member_stats.insert(pid, stat);
        }
        self.scanner.forget(counters.keys().copied());
        Ok((counters, member_stats))
    }
}

fn push_gpu(sample: &mut Sample, r: &GpuReading) {
    const MIB: f64 = 1024.0 * 1024.0;
    if let Some(used) = r.memory_used_mib {
        if let Some(total) = r.memory_total_mib.filter(|&t| t > 0.0) {
            sample.push(
                names::gpu_memory_usage_percentage(r.index),
                used / total * 100.0,
            );
        }
        sample.push(names::gpu_memory_usage_megabytes(r.index), used * MIB / MB);
    }
    if let Some(util) = r.utilization_percent {
        sample.push(names::gpu_utilization_percentage(r.index), util);
    }
    if let Some(watts) = r.power_watts {
        sample.push(names::gpu_power_usage_watts(r.index), watts);
        if let Some(limit) = r.power_limit_watts.filter(|&l| l > 0.0) {
            sample.push(
                names::gpu_power_usage_percentage(r.index),
                watts / limit * 100.0,
            );
        }
    }
}

fn percent_of(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64 * 100.0
    }
}

/// Reads `path` into `buf` (cleared first).
fn read_into(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    File::open(path)?.read_to_end(buf)?;
    Ok(())
}

fn read_required(path: &str, buf: &mut Vec<u8>) -> Result<()> {
    read_into(Path::new(path), buf).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_cpu(buf: &mut Vec<u8>) -> Result<CpuTimes> {
    read_required("/proc/stat", buf)?;
    procfs::parse_stat(buf).ok_or_else(|| Error::Parse {
        path: "/proc/stat".into(),
        what: "no aggregate `cpu` line".into(),
    })
}

fn read_meminfo(buf: &mut Vec<u8>) -> Result<MemInfo> {
    read_required("/proc/meminfo", buf)?;
    procfs::parse_meminfo(buf).ok_or_else(|| Error::Parse {
        path: "/proc/meminfo".into(),
        what: "no MemTotal or MemFree".into(),
    })
}

/// `None` when `/proc/net/dev` is missing (some sandboxes): no network
/// metrics then.
fn read_net(buf: &mut Vec<u8>) -> Option<Vec<NetDev>> {
    read_into(Path::new("/proc/net/dev"), buf).ok()?;
    Some(procfs::parse_net_dev(buf))
}

/// Network bytes since the sampler started, summed over interfaces. Each
/// interface's counter is followed on its own, so one that goes away, comes
/// back or is reset neither subtracts nor counts twice.
struct Network {
    last: HashMap<String, (u64, u64)>,
    rx: u64,
    tx: u64,
}

impl Network {
    fn new(devs: Option<Vec<NetDev>>) -> Network {
        let last = devs
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.name, (d.rx_bytes, d.tx_bytes)))
            .collect();
        Network { last, rx: 0, tx: 0 }
    }

    fn update(&mut self, devs: &[NetDev]) -> (u64, u64) {
        for dev in devs {
            let grown = |now: u64, before: Option<u64>| match before {
                Some(b) if now >= b => now - b,
                // New interface, or its counter was reset: all of it is new.
                _ => now,
            };
            let before = self.last.get(&dev.name).copied();
            self.rx += grown(dev.rx_bytes, before.map(|b| b.0));
            self.tx += grown(dev.tx_bytes, before.map(|b| b.1));
            self.last
                .insert(dev.name.clone(), (dev.rx_bytes, dev.tx_bytes));
        }
        (self.rx, self.tx)
    }
}

struct DiskUsage {
    used: u64,
    available: u64,
}

impl DiskUsage {
    /// As psutil's `disk_usage().percent`: used over what unprivileged users
    /// can reach (used + available), so the root-reserved blocks do not count.
    fn percent(&self) -> f64 {
        percent_of(self.used, self.used + self.available)
    }
}

fn disk_usage(path: &Path) -> std::io::Result<DiskUsage> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "path has a NUL byte"))?;
    // SAFETY: `c_path` is a valid NUL-terminated string and `st` a writable
    // `statvfs` that lives across the call; statvfs writes nothing else.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut st) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        st
    };
    let frsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frsize;
    let free_for_root = st.f_bfree as u64 * frsize;
    Ok(DiskUsage {
        used: total.saturating_sub(free_for_root),
        available: st.f_bavail as u64 * frsize,
    })
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads its integer argument.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|&v| v > 0)
}

/// Lists `/proc` and reads the `stat` of the processes that need it.
///
/// The tree's members are read every time. Every other process is read once
/// and then remembered with the inode number of its `/proc/<pid>` entry: the
/// kernel gives a new process a new inode, so an unchanged inode means an
/// unchanged process, whose parent and session cannot have moved it into the
/// tree (re-parenting only ever goes to init or a sub-reaper, and a
/// sub-reaper's orphans were in the tree before). Every [`FULL_SCAN_EVERY`]
/// readings everything is read again anyway. On a host with a few hundred
/// processes this makes a reading cost about what the tree's own files cost.
struct Scanner {
    /// pid → (inode of `/proc/<pid>`, node, number of the scan that last saw it).
    known: HashMap<u32, (u64, Node, u64)>,
    buf: Vec<u8>,
    path: String,
    scans: u64,
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            known: HashMap::new(),
            buf: Vec::with_capacity(4096),
            path: String::with_capacity(32),
            scans: 0,
        }
    }

    /// Reads `/proc/<pid>/<file>` into `self.buf`.
    fn read_pid_file(&mut self, pid: u32, file: &str) -> bool {
        use std::fmt::Write;
        let Scanner { path, buf, .. } = self;
        path.clear();
        let _ = write!(path, "/proc/{pid}/{file}");
        read_into(Path::new(path.as_str()), buf).is_ok()
    }

    fn read_stat(&mut self, pid: u32) -> Option<PidStat> {
        if !self.read_pid_file(pid, "stat") {
            return None;
        }
        procfs::parse_pid_stat(&self.buf)
    }

    fn read_io(&mut self, pid: u32) -> Option<PidIo> {
        if !self.read_pid_file(pid, "io") {
            return None;
        }
        procfs::parse_pid_io(&self.buf)
    }

    /// Every process's node, and the stats read this time (all of the
    /// members among them).
    fn scan(
        &mut self,
        members: &HashMap<u32, u64>,
    ) -> Result<(HashMap<u32, Node>, HashMap<u32, PidStat>)> {
        let scan = self.scans;
        self.scans += 1;
        let full = scan.is_multiple_of(FULL_SCAN_EVERY);
        let dir = std::fs::read_dir("/proc").map_err(|source| Error::Read {
            path: "/proc".into(),
            source,
        })?;
        let mut nodes = HashMap::with_capacity(self.known.len() + 16);
        let mut stats = HashMap::new();
        for entry in dir {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let ino = entry.ino();
            if !full
                && !members.contains_key(&pid)
                && let Some((known_ino, node, seen)) = self.known.get_mut(&pid)
                && *known_ino == ino
            {
                *seen = scan;
                nodes.insert(pid, *node);
                continue;
            }
            // Gone since the listing: skip it.
            let Some(stat) = self.read_stat(pid) else {
                continue;
            };
            let node = Node {
                start: stat.start_ticks,
                ppid: stat.ppid,
                session: stat.session,
            };
            nodes.insert(pid, node);
            stats.insert(pid, stat);
            self.known.insert(pid, (ino, node, scan));
        }
        self.known.retain(|_, (_, _, seen)| *seen == scan);
        Ok((nodes, stats))
    }

    /// Members are read every time; no need to remember them.
    fn forget(&mut self, pids: impl Iterator<Item = u32>) {
        for pid in pids {
            self.known.remove(&pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str, rx: u64, tx: u64) -> NetDev {
        NetDev {
            name: name.into(),
            rx_bytes: rx,
            tx_bytes: tx,
        }
    }

    #[test]
    fn network_counts_from_the_first_reading() {
        let mut net = Network::new(Some(vec![dev("lo", 1000, 1000), dev("eth0", 5000, 300)]));
        assert_eq!(
            net.update(&[dev("lo", 1500, 1500), dev("eth0", 5000, 400)]),
            (500, 600)
        );
        // eth0 was reset (driver reload) and a new interface appeared.
        assert_eq!(
            net.update(&[
                dev("lo", 1500, 1500),
                dev("eth0", 10, 20),
                dev("veth1", 7, 8)
            ]),
            (517, 628)
        );
        // An interface that goes away subtracts nothing.
        assert_eq!(net.update(&[dev("lo", 1600, 1600)]), (617, 728));
    }

    #[test]
    fn gpu_metrics_from_a_reading() {
        let mut sample = Sample {
            step: 0,
            timestamp_ms: 0,
            interval: Duration::ZERO,
            metrics: Vec::new(),
        };
        let readings = crate::gpu::parse_csv(
            "0, 87, 31245, 40960, 251.37, 400.00\n3, [N/A], 512, 0, 30, [N/A]\n",
        );
        for r in &readings {
            push_gpu(&mut sample, r);
        }
        let names: Vec<&str> = sample.metrics.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(
            names,
            [
                "system/gpu_0_memory_usage_percentage",
                "system/gpu_0_memory_usage_megabytes",
                "system/gpu_0_utilization_percentage",
                "system/gpu_0_power_usage_watts",
                "system/gpu_0_power_usage_percentage",
                // GPU 3: no total memory, no utilisation, no power limit.
                "system/gpu_3_memory_usage_megabytes",
                "system/gpu_3_power_usage_watts",
            ]
        );
        assert_eq!(
            sample.get("system/gpu_3_memory_usage_megabytes"),
            Some(512.0 * 1.048576)
        );
        assert_eq!(
            sample.get("system/gpu_0_power_usage_percentage"),
            Some(251.37 / 400.0 * 100.0)
        );
    }

    #[test]
    fn disk_percent_leaves_out_reserved_blocks() {
        // 100 GB disk, 60 used, 35 available, 5 reserved for root.
        let disk = DiskUsage {
            used: 60,
            available: 35,
        };
        assert!((disk.percent() - 60.0 / 95.0 * 100.0).abs() < 1e-9);
        let root = disk_usage(Path::new("/")).unwrap();
        assert!(root.used > 0 && root.available > 0);
        assert!(disk_usage(Path::new("/no/such/dir")).is_err());
    }

    #[test]
    fn a_sampler_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Sampler>();
    }
}
