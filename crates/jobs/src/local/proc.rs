//! What `/proc` tells about processes, and the few signals the local executor
//! sends. Every `unsafe` block of the local executor that is not about
//! spawning lives here, each a single libc call.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// The fields of `/proc/<pid>/stat` the executor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), …
    pub state: char,
    /// Field 5: the process group.
    pub pgrp: i32,
    /// Field 6: the session.
    pub session: i32,
    /// Field 22: when the process started, in clock ticks after boot. With the
    /// pid it names one process: a pid is reused, this pair is not (until a
    /// reboot).
    pub start_ticks: u64,
}

impl Stat {
    /// Running, sleeping or stopped: anything but a zombie waiting to be
    /// reaped or a process being torn down.
    pub fn live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: field 3 is the first.
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    // Fields 7..=21 (15 fields), then 22.
    let start_ticks = fields.nth(15)?.parse().ok()?;
    Some(Stat {
        state,
        pgrp,
        session,
        start_ticks,
    })
}

/// `/proc/<pid>/stat`, or `None` when there is no such process (or it cannot
/// be read, which for our own processes means the same).
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// This process's own stat.
pub(crate) fn own_stat() -> io::Result<Stat> {
    let text = std::fs::read_to_string("/proc/self/stat")?;
    parse_stat(&text).ok_or_else(|| io::Error::other("/proc/self/stat has an unexpected format"))
}

/// Whether the process `pid` that started at `start_ticks` is still alive
/// (a zombie is not).
pub(crate) fn alive(pid: i32, start_ticks: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_ticks == start_ticks && s.live())
}

/// This boot of the machine (`/proc/sys/kernel/random/boot_id`): pids and
/// start ticks mean nothing across a reboot.
pub(crate) fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Sends `sig` to the process `pid` only if it is the one that started at
/// `start_ticks`. Race-free where the kernel has pidfds (5.3+): the pidfd is
/// opened first and the identity checked after, so a pid reused in between
/// is never signalled. Returns whether the signal was sent.
pub(crate) fn signal_if_same(pid: i32, start_ticks: u64, sig: i32) -> io::Result<bool> {
    if pid <= 1 {
        return Ok(false);
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(false),
            // An old kernel (or a seccomp filter): check, then kill. The
            // window between the two is microseconds.
            Some(libc::ENOSYS) | Some(libc::EPERM) => {
                if !alive(pid, start_ticks) {
                    return Ok(false);
                }
                match kill(pid, sig) {
                    Ok(()) => Ok(true),
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            _ => Err(e),
        };
    }
    let Ok(raw) = i32::try_from(fd) else {
        return Err(io::Error::other(
            "pidfd_open returned an impossible descriptor",
        ));
    };
    // SAFETY: `raw` is a descriptor pidfd_open just returned to us alone.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw) };
    if !alive(pid, start_ticks) {
        return Ok(false);
    }
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        _ => Err(e),
    }
}

fn kill(target: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers; callers never pass 0, -1 or 1.
    if unsafe { libc::kill(target, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `sig` to every process of the group `pgid`.
pub(crate) fn signal_group(pgid: i32, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::other(format!(
            "refusing to signal process group {pgid}"
        )));
    }
    kill(-pgid, sig)
}

/// Whether any process (a zombie too) is in the group `pgid`.
pub(crate) fn group_exists(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    match kill(-pgid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}

/// The live (not zombie) processes in process group `pgid` of session
/// `session`, from a scan of `/proc`. The pair identifies the group of a
/// supervisor that is gone: neither number can be given to a new process
/// while any member of the group is alive.
pub(crate) fn group_members(pgid: i32, session: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(s) = stat(pid)
            && s.pgrp == pgid
            && s.session == session
            && s.live()
        {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// The peak resident memory (`VmHWM`) of process `pid`, in KiB.
pub(crate) fn peak_rss_kib(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (we (ird) name) S 1 4240 4239 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 8450048 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let s = parse_stat(text).expect("parses");
        assert_eq!(
            s,
            Stat {
                state: 'S',
                pgrp: 4240,
                session: 4239,
                start_ticks: 987654
            }
        );
        assert!(s.live());
        let z =
            parse_stat("7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0").expect("parses");
        assert!(!z.live());
        assert_eq!(z.start_ticks, 55);
        assert_eq!(parse_stat("7 (sh) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_with_its_own_start_ticks_only() {
        let me = own_stat().expect("own stat");
        let pid = i32::try_from(std::process::id()).expect("pid");
        assert!(alive(pid, me.start_ticks));
        assert!(!alive(pid, me.start_ticks + 1));
        assert_eq!(
            signal_if_same(pid, me.start_ticks + 1, libc::SIGTERM).ok(),
            Some(false)
        );
        // Signal 0 checks without sending anything.
        assert_eq!(signal_if_same(pid, me.start_ticks, 0).ok(), Some(true));
        assert!(signal_group(0, libc::SIGTERM).is_err());
        assert!(signal_group(1, libc::SIGTERM).is_err());
        assert!(!group_exists(1));
        assert!(peak_rss_kib("self").is_some_and(|k| k > 0));
    }
}
