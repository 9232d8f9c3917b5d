//! Parsers for the `/proc` files the sampler reads. Each takes the file's
//! bytes (a command name need not be UTF-8) and returns plain numbers; none
//! does IO, so every one is tested on captured text.

/// Parses an unsigned decimal integer, rejecting anything else.
fn parse_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// Parses a signed decimal integer (`/proc/<pid>/stat` has a few).
fn parse_i64(bytes: &[u8]) -> Option<i64> {
    match bytes.split_first() {
        Some((b'-', rest)) => parse_u64(rest)
            .and_then(|v| i64::try_from(v).ok())
            .map(|v| -v),
        _ => parse_u64(bytes).and_then(|v| i64::try_from(v).ok()),
    }
}

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

/// The machine-wide CPU times of the first (`cpu `) line of `/proc/stat`, in
/// clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Every tick counted once: user, nice, system, idle, iowait, irq,
    /// softirq and steal. `guest` and `guest_nice` are left out because the
    /// kernel already counts them in `user` and `nice` (psutil does the same).
    pub total: u64,
    /// `idle + iowait`: time no task ran on the CPU.
    pub idle: u64,
    /// `iowait`: idle time with I/O outstanding.
    pub iowait: u64,
}

impl CpuTimes {
    /// Busy share of the ticks between `earlier` and `self`, in percent of
    /// all CPUs (0–100), as psutil's `cpu_percent()`. `None` when no tick
    /// passed.
    pub fn busy_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        if total == 0 {
            return None;
        }
        let idle = self.idle.saturating_sub(earlier.idle).min(total);
        Some((total - idle) as f64 / total as f64 * 100.0)
    }

    /// The share of the ticks between `earlier` and `self` spent waiting on
    /// I/O, in percent of all CPUs (0–100). `None` when no tick passed.
    pub fn iowait_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        if total == 0 {
            return None;
        }
        let wait = self.iowait.saturating_sub(earlier.iowait).min(total);
        Some(wait as f64 / total as f64 * 100.0)
    }
}

/// Reads the aggregate `cpu` line of `/proc/stat`.
pub fn parse_stat(text: &[u8]) -> Option<CpuTimes> {
    let line = text
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"cpu "))?;
    let mut values = fields(line).skip(1).map(parse_u64);
    let mut next = || values.next().flatten();
    let (user, nice, system, idle) = (next()?, next()?, next()?, next()?);
    // Fields after `idle` appeared over kernel versions; absent ones are 0.
    let iowait = next().unwrap_or(0);
    let irq = next().unwrap_or(0);
    let softirq = next().unwrap_or(0);
    let steal = next().unwrap_or(0);
    Some(CpuTimes {
        total: user + nice + system + idle + iowait + irq + softirq + steal,
        idle: idle + iowait,
        iowait,
    })
}

/// The figures of `/proc/meminfo` that MLflow's memory metrics use, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub buffers: u64,
    /// `Cached + SReclaimable`, as psutil counts the page cache.
    pub cached: u64,
}

impl MemInfo {
    /// Memory in use as psutil's `virtual_memory().used` (which MLflow logs):
    /// `total - free - buffers - cached`, or `total - free` when that would
    /// be negative (as it can be inside some containers).
    pub fn used(&self) -> u64 {
        self.total
            .checked_sub(self.free)
            .and_then(|v| v.checked_sub(self.buffers))
            .and_then(|v| v.checked_sub(self.cached))
            .unwrap_or_else(|| self.total.saturating_sub(self.free))
    }
}

/// Reads `/proc/meminfo` (values are in kB, i.e. KiB).
pub fn parse_meminfo(text: &[u8]) -> Option<MemInfo> {
    let mut info = MemInfo::default();
    let (mut total, mut free) = (None, None);
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, rest) = (&line[..colon], &line[colon + 1..]);
        let Some(kib) = fields(rest).next().and_then(parse_u64) else {
            continue;
        };
        let bytes = kib.saturating_mul(1024);
        match key {
            b"MemTotal" => total = Some(bytes),
            b"MemFree" => free = Some(bytes),
            b"Buffers" => info.buffers = bytes,
            b"Cached" | b"SReclaimable" => info.cached += bytes,
            _ => {}
        }
    }
    info.total = total?;
    info.free = free?;
    Some(info)
}

/// One interface's byte counters from `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDev {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Reads `/proc/net/dev`: every interface, the loopback included (psutil's
/// `net_io_counters()`, which MLflow sums, includes it too).
pub fn parse_net_dev(text: &[u8]) -> Vec<NetDev> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        // Header lines have `|` and no `name:`; an interface name cannot
        // contain `:`, and old kernels print no space between it and the count.
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.is_empty() || name.contains(&b'|') {
            continue;
        }
        let values: Vec<Option<u64>> = fields(&line[colon + 1..]).map(parse_u64).collect();
        if values.len() < 9 {
            continue;
        }
        let (Some(rx), Some(tx)) = (values[0], values[8]) else {
            continue;
        };
        out.push(NetDev {
            name: String::from_utf8_lossy(name).into_owned(),
            rx_bytes: rx,
            tx_bytes: tx,
        });
    }
    out
}

/// The fields of `/proc/<pid>/stat` the sampler uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PidStat {
    pub state: u8,
    pub ppid: u32,
    pub session: u32,
    /// `utime + stime` of every thread, live and exited, in clock ticks.
    pub own_ticks: u64,
    /// `cutime + cstime`: the CPU of children this process has waited for
    /// (and, through theirs, of their descendants), in clock ticks.
    pub reaped_ticks: u64,
    pub num_threads: u64,
    /// Start time after boot, in clock ticks: with the pid, it names the
    /// process (pids are reused, start times of a reused pid differ).
    pub start_ticks: u64,
    pub vsize_bytes: u64,
    pub rss_pages: u64,
}

impl PidStat {
    pub fn is_zombie(&self) -> bool {
        // `Z` zombie; `X` dead (seen only for an instant).
        matches!(self.state, b'Z' | b'X')
    }
}

/// Reads `/proc/<pid>/stat`. The command name (field 2) is in parentheses and
/// may itself contain spaces and parentheses, so the fields are counted from
/// the *last* `)`.
pub fn parse_pid_stat(text: &[u8]) -> Option<PidStat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let mut rest = fields(&text[close + 1..]);
    // `rest` starts at field 3 (state); `nth` counts from what is left.
    let state = *rest.next()?.first()?;
    let ppid = parse_i64(rest.next()?)?; // 4
    let _pgrp = rest.next()?; // 5
    let session = parse_i64(rest.next()?)?; // 6
    let utime = parse_u64(rest.nth(7)?)?; // 14 (skips 7..=13)
    let stime = parse_u64(rest.next()?)?; // 15
    let cutime = parse_i64(rest.next()?)?; // 16
    let cstime = parse_i64(rest.next()?)?; // 17
    let num_threads = parse_i64(rest.nth(2)?)?; // 20 (skips priority, nice)
    let start_ticks = parse_u64(rest.nth(1)?)?; // 22 (skips itrealvalue)
    let vsize_bytes = parse_u64(rest.next()?)?; // 23
    let rss_pages = parse_i64(rest.next()?)?; // 24
    let nonneg = |v: i64| u64::try_from(v).unwrap_or(0);
    Some(PidStat {
        state,
        ppid: u32::try_from(ppid).unwrap_or(0),
        session: u32::try_from(session).unwrap_or(0),
        own_ticks: utime + stime,
        reaped_ticks: nonneg(cutime) + nonneg(cstime),
        num_threads: nonneg(num_threads),
        start_ticks,
        vsize_bytes,
        rss_pages: nonneg(rss_pages),
    })
}

/// Storage IO of a process from `/proc/<pid>/io`, in bytes.
///
/// `read_bytes` counts what had to come from the block device (page-cache
/// hits are free); `write_bytes` counts page-cache pages the process dirtied,
/// when it dirtied them (not when they reach the disk, and not at all on
/// tmpfs). Both include the IO of children the process has waited for. The
/// syscall-level `rchar`/`wchar` (pipes, sockets, cache hits) are not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PidIo {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// Reads `/proc/<pid>/io`.
pub fn parse_pid_io(text: &[u8]) -> Option<PidIo> {
    let (mut read, mut write) = (None, None);
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = || fields(&line[colon + 1..]).next().and_then(parse_u64);
        match &line[..colon] {
            b"read_bytes" => read = value(),
            b"write_bytes" => write = value(),
            _ => {}
        }
    }
    Some(PidIo {
        read_bytes: read?,
        write_bytes: write?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_line() {
        let text = b"cpu  193884 396 26685 105996 1510 0 538 342 7 3\n\
cpu0 91154 176 11962 60322 680 0 159 181 0 0\n\
intr 1 2 3\nctxt 42\n";
        let t = parse_stat(text).unwrap();
        assert_eq!(t.total, 193884 + 396 + 26685 + 105996 + 1510 + 538 + 342);
        assert_eq!(t.idle, 105996 + 1510);
        assert_eq!(t.iowait, 1510);
        // An old kernel with four fields.
        let old = parse_stat(b"cpu 10 0 10 80\n").unwrap();
        assert_eq!((old.total, old.idle), (100, 80));
        assert_eq!(parse_stat(b"cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_stat(b"cpu  1 x 3 4\n"), None);
    }

    #[test]
    fn busy_percent() {
        let a = CpuTimes {
            total: 1000,
            idle: 800,
            iowait: 100,
        };
        let b = CpuTimes {
            total: 1200,
            idle: 850,
            iowait: 130,
        };
        assert_eq!(b.busy_percent_since(&a), Some(75.0));
        assert_eq!(b.iowait_percent_since(&a), Some(15.0));
        assert_eq!(a.iowait_percent_since(&a), None);
        assert_eq!(a.busy_percent_since(&a), None);
        assert_eq!(a.busy_percent_since(&b), None);
    }

    #[test]
    fn meminfo() {
        let text = b"MemTotal:       24683784 kB\n\
MemFree:        16344028 kB\n\
MemAvailable:   23827384 kB\n\
Buffers:           59284 kB\n\
Cached:          7269988 kB\n\
SwapCached:            0 kB\n\
SReclaimable:     480000 kB\n\
HugePages_Total:       0\n";
        let m = parse_meminfo(text).unwrap();
        assert_eq!(m.total, 24683784 * 1024);
        assert_eq!(m.free, 16344028 * 1024);
        assert_eq!(m.buffers, 59284 * 1024);
        assert_eq!(m.cached, (7269988 + 480000) * 1024);
        assert_eq!(
            m.used(),
            (24683784 - 16344028 - 59284 - 7269988 - 480000) * 1024
        );
        // Inside some containers the cache exceeds total - free.
        let odd = MemInfo {
            total: 100,
            free: 40,
            buffers: 10,
            cached: 70,
        };
        assert_eq!(odd.used(), 60);
        assert_eq!(parse_meminfo(b"MemFree: 1 kB\n"), None);
    }

    #[test]
    fn net_dev() {
        let text = b"Inter-|   Receive                                                |  Transmit\n\
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n\
    lo: 232656703  355926    0    0    0     0          0         0 232656703  355926    0    0    0     0       0          0\n\
  eth0:4377365012   88051    0    0    0     0          0         0  4527704   61408    0    0    0     0       0          0\n\
  bad0: 1 2 3\n";
        let devs = parse_net_dev(text);
        assert_eq!(
            devs,
            vec![
                NetDev {
                    name: "lo".into(),
                    rx_bytes: 232656703,
                    tx_bytes: 232656703
                },
                NetDev {
                    name: "eth0".into(),
                    rx_bytes: 4377365012,
                    tx_bytes: 4527704
                },
            ]
        );
    }

    #[test]
    fn pid_stat_plain() {
        let text = b"23067 (cat) R 23061 23061 10755 0 -1 4194304 104 0 0 0 7 3 11 2 20 0 1 0 165585 3133440 389 18446744073709551615 94296862150656 0\n";
        let s = parse_pid_stat(text).unwrap();
        assert_eq!(s.state, b'R');
        assert_eq!(s.ppid, 23061);
        assert_eq!(s.session, 10755);
        assert_eq!(s.own_ticks, 10);
        assert_eq!(s.reaped_ticks, 13);
        assert_eq!(s.num_threads, 1);
        assert_eq!(s.start_ticks, 165585);
        assert_eq!(s.vsize_bytes, 3133440);
        assert_eq!(s.rss_pages, 389);
        assert!(!s.is_zombie());
    }

    #[test]
    fn pid_stat_name_with_spaces_and_parentheses() {
        let text = b"4242 (my (odd) job) name)) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 12 0 99999 1000000 2560 18446744073709551615 1 1 0\n";
        let s = parse_pid_stat(text).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.session, 4242);
        assert_eq!(s.own_ticks, 200);
        assert_eq!(s.num_threads, 12);
        assert_eq!(s.start_ticks, 99999);
        assert_eq!(s.rss_pages, 2560);
        // A name that is not UTF-8, and a zombie (whose rss is 0).
        let mut z = b"7 (\xff\xfe) Z 6 6 6 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 0 0\n".to_vec();
        let s = parse_pid_stat(&z).unwrap();
        assert!(s.is_zombie());
        assert_eq!(s.own_ticks, 2);
        z.truncate(20);
        assert_eq!(parse_pid_stat(&z), None);
        assert_eq!(parse_pid_stat(b"no parentheses here"), None);
    }

    #[test]
    fn pid_io() {
        let text = b"rchar: 6976\nwchar: 12\nsyscr: 10\nsyscw: 1\nread_bytes: 4096\nwrite_bytes: 20979712\ncancelled_write_bytes: 0\n";
        assert_eq!(
            parse_pid_io(text),
            Some(PidIo {
                read_bytes: 4096,
                write_bytes: 20979712
            })
        );
        assert_eq!(parse_pid_io(b"rchar: 1\n"), None);
    }

    #[test]
    fn integers() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_u64(b""), None);
    }
}
