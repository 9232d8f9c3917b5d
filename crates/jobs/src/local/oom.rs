//! Telling an out-of-memory kill from any other SIGKILL.
//!
//! A process the kernel's OOM killer ends dies of SIGKILL, like one a person
//! kills with `kill -9`; the kernel says which in a counter only. The
//! supervisor reads the `oom_kill` counter of its own memory cgroup (where
//! the command runs too) before it starts the command and after the command
//! died, and calls the death an OOM kill when **all** of these hold:
//!
//! * the command's main process died of SIGKILL,
//! * the supervisor did not send a SIGKILL itself (a stop's grace running
//!   out),
//! * the counter went up in between.
//!
//! The counter is, in order of preference:
//!
//! 1. cgroup v2: `oom_kill` in `<cgroup2 mount>/<own cgroup>/memory.events`
//!    (hierarchical: kills in child cgroups count too);
//! 2. cgroup v1: `oom_kill` in `<memory mount>/<own cgroup>/memory.oom_control`
//!    (Linux 4.13+);
//! 3. the whole machine's `oom_kill` in `/proc/vmstat` (Linux 4.13+), when
//!    there is no memory cgroup to read.
//!
//! A cgroup holds more than this one command (typically the whole server and
//! its other jobs), and the machine-wide counter everything, so the verdict
//! can be wrong only when someone else SIGKILLs the command **and** the OOM
//! killer ends some other process of the same cgroup (or machine) while the
//! command runs. No counter at all: never an OOM kill.

use std::path::{Path, PathBuf};

/// Where the supervisor reads its `oom_kill` counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OomCounter {
    path: PathBuf,
}

impl OomCounter {
    /// The first readable counter for this process (see the module docs).
    pub fn discover() -> Option<OomCounter> {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        candidates(&cgroup, &mountinfo)
            .into_iter()
            .chain([PathBuf::from("/proc/vmstat")])
            .map(|path| OomCounter { path })
            .find(|c| c.read().is_some())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The counter now, `None` when it cannot be read.
    pub fn read(&self) -> Option<u64> {
        parse_oom_kill(&std::fs::read_to_string(&self.path).ok()?)
    }
}

/// The value of the `oom_kill` line of `memory.events`, `memory.oom_control`
/// or `/proc/vmstat` (all `key value` lines; `oom_group_kill` is another key).
pub(crate) fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.trim().split_once(char::is_whitespace)?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

/// The cgroup files that may hold this process's counter, v2 first, from the
/// texts of `/proc/self/cgroup` and `/proc/self/mountinfo`.
pub(crate) fn candidates(proc_cgroup: &str, mountinfo: &str) -> Vec<PathBuf> {
    let mut v2_path = None;
    let mut v1_path = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2_path = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            v1_path = Some(path.to_string());
        }
    }
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        // "36 35 0:30 / /sys/fs/cgroup/memory rw,… - cgroup cgroup rw,memory"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mount_point), Some(fstype)) =
            (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        let super_options = right.get(2).copied().unwrap_or_default();
        let (path, file) = match *fstype {
            "cgroup2" => (v2_path.as_deref(), "memory.events"),
            "cgroup" if super_options.split(',').any(|o| o == "memory") => {
                (v1_path.as_deref(), "memory.oom_control")
            }
            _ => continue,
        };
        let Some(path) = path else {
            continue;
        };
        // Inside a cgroup namespace the mount's root is the namespace's root;
        // a path that does not start with it is outside what is mounted.
        let rel = if *root == "/" {
            Some(path)
        } else {
            path.strip_prefix(root)
                .filter(|r| r.is_empty() || r.starts_with('/'))
        };
        let Some(rel) = rel else {
            continue;
        };
        let candidate = Path::new(mount_point)
            .join(rel.trim_start_matches('/'))
            .join(file);
        if *fstype == "cgroup2" {
            out.insert(0, candidate);
        } else {
            out.push(candidate);
        }
    }
    out
}

/// The verdict (see the module docs).
pub(crate) fn oom_killed(
    signal: Option<i32>,
    sent_sigkill: bool,
    before: Option<u64>,
    after: Option<u64>,
) -> bool {
    signal == Some(libc::SIGKILL)
        && !sent_sigkill
        && matches!((before, after), (Some(b), Some(a)) if a > b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2_EVENTS: &str = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
    const V1_OOM_CONTROL: &str = "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n";
    const VMSTAT: &str = "nr_free_pages 123\npgfault 99\noom_kill 41\nunevictable_pgs_culled 0\n";

    #[test]
    fn the_counter_is_read_from_each_format() {
        assert_eq!(parse_oom_kill(V2_EVENTS), Some(2));
        assert_eq!(parse_oom_kill(V1_OOM_CONTROL), Some(7));
        assert_eq!(parse_oom_kill(VMSTAT), Some(41));
        // oom_group_kill alone is not oom_kill; old kernels have no counter.
        assert_eq!(parse_oom_kill("oom_group_kill 5\n"), None);
        assert_eq!(parse_oom_kill("oom_kill_disable 0\nunder_oom 0\n"), None);
        assert_eq!(parse_oom_kill(""), None);
    }

    #[test]
    fn only_an_unsent_sigkill_with_a_rising_counter_is_an_oom_kill() {
        let before = parse_oom_kill(V2_EVENTS);
        let after = parse_oom_kill(&V2_EVENTS.replace("oom_kill 2", "oom_kill 3"));
        assert!(oom_killed(Some(9), false, before, after));
        // The supervisor killed it after a stop's grace.
        assert!(!oom_killed(Some(9), true, before, after));
        // Another signal, or an exit code.
        assert!(!oom_killed(Some(15), false, before, after));
        assert!(!oom_killed(None, false, before, after));
        // Someone's kill -9 with no OOM kill meanwhile.
        assert!(!oom_killed(Some(9), false, before, before));
        // No counter.
        assert!(!oom_killed(Some(9), false, None, None));
        assert!(!oom_killed(Some(9), false, before, None));
    }

    #[test]
    fn cgroup_v2_files_come_first() {
        let cgroup = "0::/system.slice/atelier.service\n";
        let mountinfo = "22 1 0:21 / /sys rw - sysfs sysfs rw\n\
                         30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            candidates(cgroup, mountinfo),
            vec![PathBuf::from(
                "/sys/fs/cgroup/system.slice/atelier.service/memory.events"
            )]
        );
        // The namespace root is "/" inside a container.
        assert_eq!(
            candidates("0::/\n", mountinfo),
            vec![PathBuf::from("/sys/fs/cgroup/memory.events")]
        );
    }

    #[test]
    fn cgroup_v1_and_hybrid_hierarchies() {
        let cgroup = "9:name=systemd:/\n4:memory:/process_api/9de5\n1:cpu,cpuacct:/\n0::/\n";
        let mountinfo = "40 30 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                         41 30 0:34 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                         42 30 0:35 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            candidates(cgroup, mountinfo),
            vec![
                PathBuf::from("/sys/fs/cgroup/unified/memory.events"),
                PathBuf::from("/sys/fs/cgroup/memory/process_api/9de5/memory.oom_control"),
            ]
        );
        // A mount whose root is a sub-tree (a v1 cgroup namespace).
        let nested = "41 30 0:34 /process_api /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            candidates("4:memory:/process_api/9de5\n", nested),
            vec![PathBuf::from(
                "/sys/fs/cgroup/memory/9de5/memory.oom_control"
            )]
        );
        assert_eq!(
            candidates("4:memory:/elsewhere\n", nested),
            Vec::<PathBuf>::new()
        );
        assert_eq!(candidates("", ""), Vec::<PathBuf>::new());
    }

    #[test]
    fn this_machine_has_some_counter() {
        // Linux 4.13+ always has /proc/vmstat's.
        if let Some(c) = OomCounter::discover() {
            assert!(c.read().is_some(), "{}", c.path().display());
        }
    }
}
