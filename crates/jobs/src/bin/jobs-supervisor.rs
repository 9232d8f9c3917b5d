//! The local executor's supervisor as a program of its own:
//! `jobs-supervisor <state_dir>/launch.json`. The `atelier` binary runs the
//! same code as `atelier __supervise`; this one exists for the jobs crate's
//! tests, which cannot start the `atelier` binary.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let mut args = std::env::args_os().skip(1);
    let (Some(launch_file), None) = (args.next(), args.next()) else {
        eprintln!("usage: jobs-supervisor <state_dir>/launch.json");
        return ExitCode::from(2);
    };
    jobs::local::supervise(&PathBuf::from(launch_file))
}
