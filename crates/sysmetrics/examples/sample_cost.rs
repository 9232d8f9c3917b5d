//! What sampling costs: starts a tree of ten processes (a shell, eight
//! sleepers and a busy `yes`), samples it every 500 ms for ten seconds and
//! prints this process's own CPU time over that span as a share of one core.
//!
//! `cargo run --release -p sysmetrics --example sample_cost [seconds] [interval_ms]`

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use sysmetrics::{Sampler, SamplerOptions, names};

/// This process's user + system CPU time (getrusage: microsecond resolution,
/// where `/proc/self/stat` counts 10 ms ticks).
fn own_cpu() -> Duration {
    // SAFETY: getrusage writes only into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let interval = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(500));

    let mut child = Command::new("sh")
        .arg("-c")
        .arg("for i in 1 2 3 4 5 6 7 8; do sleep 60 & done; yes > /dev/null")
        .process_group(0)
        .spawn()
        .expect("spawn the tree");
    std::thread::sleep(Duration::from_millis(200));

    let processes_on_host = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter(|e| {
                e.as_ref().is_ok_and(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
            })
            .count()
        })
        .unwrap_or(0);

    let mut sampler = Sampler::new(child.id(), SamplerOptions::default()).expect("sampler");
    let cpu_before = own_cpu();
    let started = Instant::now();
    let mut samples = 0u32;
    let mut slowest = Duration::ZERO;
    let mut busy = Duration::ZERO;
    let mut last = None;
    while started.elapsed().as_secs_f64() < seconds {
        std::thread::sleep(interval);
        let t = Instant::now();
        let sample = sampler.sample().expect("sample");
        let took = t.elapsed();
        busy += took;
        slowest = slowest.max(took);
        samples += 1;
        last = Some(sample);
    }
    let wall = started.elapsed();
    let cpu = own_cpu() - cpu_before;

    // SAFETY: kill only sends a signal, to the tree's own process group.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.wait();

    let last = last.expect("at least one sample");
    println!("processes on this host:   {processes_on_host}");
    println!(
        "tree:                     {} processes, {:.0} % of a core",
        last.get(names::PROCESS_COUNT).unwrap_or(0.0),
        last.get(names::PROCESS_CPU_PERCENTAGE).unwrap_or(0.0)
    );
    println!("samples:                  {samples} every {interval:?} over {wall:.1?}");
    println!(
        "per sample (wall):        mean {:.0?}, slowest {slowest:.0?}",
        busy / samples.max(1)
    );
    println!("own CPU over the run:     {cpu:.1?}");
    println!(
        "cost:                     {:.3} % of one core",
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
    );
    println!("metrics in a sample:      {}", last.metrics.len());
}
