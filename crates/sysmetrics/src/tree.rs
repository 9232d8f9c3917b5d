//! The job's process tree: which processes belong to it, and how much CPU and
//! storage IO it used between two readings.
//!
//! **Membership.** The tree is the root and every process whose parent is in
//! the tree, found by walking the parent pids of all of `/proc/*/stat`.
//! Membership is sticky: a process once in the tree stays in it until it
//! exits, even when its parent exits first and it is re-parented to init or a
//! sub-reaper (`sh -c 'worker &'` leaves such orphans). When the root leads
//! its own session (the job was started with `setsid`), every process of that
//! session is in the tree too, which also catches a daemon that double-forked
//! between two readings. A process is named by its pid *and* its start time,
//! so a reused pid is a new process.
//!
//! **Accounting.** A live process's `utime + stime` grows with its own CPU;
//! when a child exits and its parent waits for it, the child's whole CPU (own
//! and reaped) is added to the parent's `cutime + cstime`, and the same holds
//! for `/proc/<pid>/io`. Between two readings the tree used:
//!
//! - the growth of every member seen both times, own and reaped, plus
//! - everything a member seen for the first time shows (it started since), less
//! - for each member that vanished, what it showed at the previous reading,
//!   taken from the growth of the nearest ancestor still alive in the tree
//!   (that ancestor's reaped counters now include it, and the earlier part
//!   was counted already).
//!
//! So a child that lived and died between two readings is counted once, via
//! its parent. What is lost: the last interval of a member whose parent is not
//! in the tree (the root itself, reaped by Atelier; an orphan reaped by init)
//! and children reaped without a wait (`SIGCHLD` ignored), whose times the
//! kernel adds to no parent.

use std::collections::{HashMap, HashSet};

use crate::procfs::{PidIo, PidStat};

/// What the accounting needs of one member at one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub start: u64,
    pub ppid: u32,
    pub own_ticks: u64,
    pub reaped_ticks: u64,
    /// `None` when `/proc/<pid>/io` could not be read (another user's
    /// process, or a kernel without IO accounting).
    pub io: Option<PidIo>,
}

/// Use of the tree between two readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Usage {
    pub cpu_ticks: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// A process seen in `/proc`, reduced to what membership needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node {
    pub start: u64,
    pub ppid: u32,
    pub session: u32,
}

/// The members of the tree among `nodes`, given the members of the previous
/// reading (`pid → start`). `root` is the root's pid and start time.
pub(crate) fn members(
    root: (u32, u64),
    session_leader: bool,
    previous: &HashMap<u32, u64>,
    nodes: &HashMap<u32, Node>,
) -> HashSet<u32> {
    let mut set: HashSet<u32> = HashSet::new();
    let mut queue: Vec<u32> = Vec::new();
    let add = |pid: u32, set: &mut HashSet<u32>, queue: &mut Vec<u32>| {
        if set.insert(pid) {
            queue.push(pid);
        }
    };
    for (&pid, node) in nodes {
        let same = |start: u64| start == node.start;
        // While any process has the root's pid as its session id, the kernel
        // cannot hand that pid out again, so this rule is safe after the root
        // is gone.
        if (pid == root.0 && same(root.1))
            || previous.get(&pid).copied().is_some_and(same)
            || (session_leader && node.session == root.0)
        {
            add(pid, &mut set, &mut queue);
        }
    }
    if queue.is_empty() {
        return set;
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, node) in nodes {
        if !set.contains(&pid) {
            children.entry(node.ppid).or_default().push(pid);
        }
    }
    while let Some(parent) = queue.pop() {
        if let Some(kids) = children.remove(&parent) {
            for kid in kids {
                add(kid, &mut set, &mut queue);
            }
        }
    }
    set
}

/// The tree's use between reading `previous` and reading `current` (both
/// `pid → counters` of the members). See the module docs.
pub(crate) fn usage(previous: &HashMap<u32, Counters>, current: &HashMap<u32, Counters>) -> Usage {
    let continuing = |pid: u32| match (previous.get(&pid), current.get(&pid)) {
        (Some(p), Some(c)) => p.start == c.start,
        _ => false,
    };

    // What vanished members had shown, credited to their nearest ancestor
    // that is still alive in the tree.
    #[derive(Default, Clone, Copy)]
    struct Credit {
        ticks: u64,
        read: u64,
        write: u64,
        io_known: bool,
    }
    let mut credits: HashMap<u32, Credit> = HashMap::new();
    for (&pid, gone) in previous {
        if continuing(pid) {
            continue;
        }
        let mut ancestor = gone.ppid;
        // Bounded: a parent chain in `previous` cannot loop, but a reused pid
        // could make it look as if it did.
        for _ in 0..previous.len() {
            if continuing(ancestor) {
                let credit = credits.entry(ancestor).or_default();
                credit.ticks += gone.own_ticks + gone.reaped_ticks;
                if let Some(io) = gone.io {
                    credit.read += io.read_bytes;
                    credit.write += io.write_bytes;
                    credit.io_known = true;
                }
                break;
            }
            match previous.get(&ancestor) {
                Some(p) if ancestor != 0 => ancestor = p.ppid,
                _ => break,
            }
        }
    }

    let mut total = Usage::default();
    for (&pid, now) in current {
        if continuing(pid) {
            let before = &previous[&pid];
            let credit = credits.get(&pid).copied().unwrap_or_default();
            total.cpu_ticks += now.own_ticks.saturating_sub(before.own_ticks);
            // The reaped part may grow by less than the credit when the child
            // was reaped without a wait; never let it go below zero.
            total.cpu_ticks += now
                .reaped_ticks
                .saturating_sub(before.reaped_ticks)
                .saturating_sub(credit.ticks);
            if let (Some(a), Some(b)) = (before.io, now.io) {
                let (read, write) = if credit.io_known {
                    (credit.read, credit.write)
                } else {
                    (0, 0)
                };
                total.read_bytes += b
                    .read_bytes
                    .saturating_sub(a.read_bytes)
                    .saturating_sub(read);
                total.write_bytes += b
                    .write_bytes
                    .saturating_sub(a.write_bytes)
                    .saturating_sub(write);
            }
        } else {
            total.cpu_ticks += now.own_ticks + now.reaped_ticks;
            if let Some(io) = now.io {
                total.read_bytes += io.read_bytes;
                total.write_bytes += io.write_bytes;
            }
        }
    }
    total
}

impl Counters {
    pub(crate) fn from_stat(stat: &PidStat, io: Option<PidIo>) -> Counters {
        Counters {
            start: stat.start_ticks,
            ppid: stat.ppid,
            own_ticks: stat.own_ticks,
            reaped_ticks: stat.reaped_ticks,
            io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(start: u64, ppid: u32, session: u32) -> Node {
        Node {
            start,
            ppid,
            session,
        }
    }

    fn c(start: u64, ppid: u32, own: u64, reaped: u64, io: u64) -> Counters {
        Counters {
            start,
            ppid,
            own_ticks: own,
            reaped_ticks: reaped,
            io: Some(PidIo {
                read_bytes: io,
                write_bytes: 2 * io,
            }),
        }
    }

    fn sorted(set: HashSet<u32>) -> Vec<u32> {
        let mut v: Vec<u32> = set.into_iter().collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn members_are_descendants_of_the_root() {
        let nodes = HashMap::from([
            (1, node(1, 0, 1)),
            (100, node(50, 1, 90)),   // the root
            (101, node(51, 100, 90)), // child
            (102, node(52, 101, 90)), // grandchild
            (103, node(53, 1, 90)),   // same session, but the root leads none
            (200, node(60, 1, 200)),
        ]);
        let m = members((100, 50), false, &HashMap::new(), &nodes);
        assert_eq!(sorted(m), vec![100, 101, 102]);
        // A different start time: pid 100 is not our root any more.
        let m = members((100, 49), false, &HashMap::new(), &nodes);
        assert!(m.is_empty());
    }

    #[test]
    fn orphans_stay_and_session_members_join() {
        // The root (100) is gone; its child 101 was re-parented to init.
        let nodes = HashMap::from([
            (1, node(1, 0, 1)),
            (101, node(51, 1, 100)),
            (102, node(52, 101, 100)),
            (103, node(53, 1, 100)), // a double-forked daemon of the session
            (104, node(54, 1, 104)),
        ]);
        let previous = HashMap::from([(100, 50), (101, 51)]);
        let m = members((100, 50), false, &previous, &nodes);
        assert_eq!(sorted(m), vec![101, 102]);
        let m = members((100, 50), true, &previous, &nodes);
        assert_eq!(sorted(m), vec![101, 102, 103]);
        // Pid 101 reused by another process: not ours.
        let nodes = HashMap::from([(101, node(70, 1, 1))]);
        assert!(members((100, 50), false, &previous, &nodes).is_empty());
    }

    #[test]
    fn growth_of_live_members() {
        let a = HashMap::from([(10, c(5, 1, 100, 0, 10)), (11, c(6, 10, 50, 0, 0))]);
        let b = HashMap::from([(10, c(5, 1, 130, 0, 15)), (11, c(6, 10, 70, 0, 4))]);
        assert_eq!(
            usage(&a, &b),
            Usage {
                cpu_ticks: 50,
                read_bytes: 9,
                write_bytes: 18
            }
        );
    }

    #[test]
    fn reaped_child_is_counted_once() {
        // Child 11 had 50 ticks; it ran 20 more, exited and was reaped by 10.
        let a = HashMap::from([(10, c(5, 1, 100, 0, 0)), (11, c(6, 10, 50, 0, 100))]);
        let b = HashMap::from([(10, c(5, 1, 110, 70, 130))]);
        // 10 own + 20 of the child's last stretch; IO: 30 new of the child.
        assert_eq!(
            usage(&a, &b),
            Usage {
                cpu_ticks: 30,
                read_bytes: 30,
                write_bytes: 60
            }
        );
    }

    #[test]
    fn short_lived_children_count_in_full() {
        // Never seen: a child that lived between the readings, reaped by 10.
        let a = HashMap::from([(10, c(5, 1, 100, 0, 0))]);
        let b = HashMap::from([(10, c(5, 1, 100, 40, 7))]);
        assert_eq!(usage(&a, &b).cpu_ticks, 40);
        assert_eq!(usage(&a, &b).read_bytes, 7);
    }

    #[test]
    fn new_members_count_in_full() {
        let a = HashMap::from([(10, c(5, 1, 100, 0, 0))]);
        let b = HashMap::from([(10, c(5, 1, 100, 0, 0)), (12, c(9, 10, 25, 5, 3))]);
        assert_eq!(
            usage(&a, &b),
            Usage {
                cpu_ticks: 30,
                read_bytes: 3,
                write_bytes: 6
            }
        );
    }

    #[test]
    fn vanished_chain_is_credited_to_the_live_ancestor() {
        // 11 (child of 10) and 12 (child of 11) both exited; 11 reaped 12 and
        // 10 reaped 11, so 10's reaped ticks grew by 11's and 12's totals.
        let a = HashMap::from([
            (10, c(5, 1, 100, 0, 0)),
            (11, c(6, 10, 10, 0, 0)),
            (12, c(7, 11, 20, 0, 0)),
        ]);
        let b = HashMap::from([(10, c(5, 1, 100, 10 + 5 + 20 + 5, 0))]);
        assert_eq!(usage(&a, &b).cpu_ticks, 10);
    }

    #[test]
    fn lost_members_do_not_go_negative() {
        // The root (10, parent 1 outside the tree) exited: its last stretch
        // is lost, nothing is subtracted. An orphan (11) reaped by init too.
        let a = HashMap::from([(10, c(5, 1, 100, 0, 0)), (11, c(6, 1, 50, 0, 0))]);
        let b: HashMap<u32, Counters> = HashMap::new();
        assert_eq!(usage(&a, &b), Usage::default());
        // A child auto-reaped (no wait): the parent's reaped ticks do not
        // grow; the credit must not eat the parent's own growth.
        let a = HashMap::from([(10, c(5, 1, 100, 0, 0)), (11, c(6, 10, 50, 0, 0))]);
        let b = HashMap::from([(10, c(5, 1, 120, 0, 0))]);
        assert_eq!(usage(&a, &b).cpu_ticks, 20);
    }

    #[test]
    fn reused_pid_is_a_new_process() {
        let a = HashMap::from([(10, c(5, 1, 100, 0, 0)), (11, c(6, 10, 50, 0, 0))]);
        // 11 exited (reaped by 10, 55 ticks in all) and its pid now names a
        // new child with 3 ticks.
        let b = HashMap::from([(10, c(5, 1, 100, 55, 0)), (11, c(8, 10, 3, 0, 0))]);
        assert_eq!(usage(&a, &b).cpu_ticks, 5 + 3);
    }

    #[test]
    fn unknown_io_is_skipped() {
        let mut a = HashMap::from([(10, c(5, 1, 100, 0, 10))]);
        let b = HashMap::from([(10, c(5, 1, 100, 0, 50))]);
        a.get_mut(&10).unwrap().io = None;
        assert_eq!(usage(&a, &b).read_bytes, 0);
    }
}
