//! papermill-like command line over `nbexec`:
//!
//! ```text
//! cargo run -p nbexec --example run -- in.ipynb out.ipynb -p alpha=0.5 [-p name=value…]
//!     [-k KERNEL] [--python PATH] [--cwd DIR] [--timeout SECONDS] [--start-timeout SECONDS]
//!     [--tcp] [--coalesce-streams]
//! ```
//!
//! Values are typed as papermill's `-p` does (`True`/`False`/`None`, int,
//! float, else string). Prints the kernel start-up and total times; exits 1
//! when a cell failed. `RUST_LOG=nbexec=debug` shows the kernel's messages.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

/// papermill's `_resolve_type` for `-p NAME VALUE`.
fn resolve_type(value: &str) -> Value {
    match value {
        "True" => Value::Bool(true),
        "False" => Value::Bool(false),
        "None" => Value::Null,
        _ => {
            if let Ok(i) = value.parse::<i64>() {
                Value::from(i)
            } else if let Some(n) = value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Value::Number(n)
            } else {
                Value::String(value.to_owned())
            }
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: run IN.ipynb OUT.ipynb [-p NAME=VALUE]… [-k KERNEL] [--python PATH] [--cwd DIR] \
         [--timeout SECONDS] [--start-timeout SECONDS] [--tcp] [--coalesce-streams]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // colours for a terminal only, and not with NO_COLOR set
        .with_ansi({
            use std::io::IsTerminal;
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        })
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut opts = nbexec::ExecOptions {
        python: std::env::var_os("ATELIER_PYTHON").map(PathBuf::from),
        ..Default::default()
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |what: &str| it.next().ok_or_else(|| eprintln!("{arg} needs {what}"));
        match arg.as_str() {
            "-p" | "--parameters" => {
                let Ok(pair) = value("NAME=VALUE") else {
                    return usage();
                };
                let Some((name, v)) = pair.split_once('=') else {
                    eprintln!("-p takes NAME=VALUE, got {pair:?}");
                    return usage();
                };
                opts.parameters.insert(name.to_owned(), resolve_type(v));
            }
            "-k" | "--kernel" => match value("a kernel name") {
                Ok(k) => opts.kernel_name = Some(k),
                Err(()) => return usage(),
            },
            "--python" => match value("a path") {
                Ok(p) => opts.python = Some(p.into()),
                Err(()) => return usage(),
            },
            "--cwd" => match value("a directory") {
                Ok(p) => opts.cwd = Some(p.into()),
                Err(()) => return usage(),
            },
            "--timeout" | "--start-timeout" => {
                let Some(secs) = value("seconds").ok().and_then(|s| s.parse::<f64>().ok()) else {
                    return usage();
                };
                let d = Duration::from_secs_f64(secs.max(0.0));
                if arg == "--timeout" {
                    opts.cell_timeout = Some(d);
                } else {
                    opts.start_timeout = d;
                }
            }
            "--tcp" => opts.transport = nbexec::KernelTransport::Tcp,
            "--coalesce-streams" => opts.coalesce_streams = true,
            "-h" | "--help" => return usage(),
            _ => positional.push(arg),
        }
    }
    let [input, output] = positional.as_slice() else {
        return usage();
    };
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {input}: {e}");
            return ExitCode::from(2);
        }
    };
    opts.input_label = input.clone();
    opts.output_label = output.clone();
    let out_path = PathBuf::from(output);
    let save = |nb: &Value| {
        if let Err(e) = std::fs::write(&out_path, nbexec::to_ipynb_string(nb)) {
            eprintln!("cannot write {}: {e}", out_path.display());
        }
    };
    match nbexec::execute(&bytes, opts, save).await {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "kernel start {:.3} s, total {:.3} s",
                report.kernel_start.as_secs_f64(),
                report.total.as_secs_f64()
            );
            match report.outcome {
                nbexec::Outcome::Completed => ExitCode::SUCCESS,
                nbexec::Outcome::Failed {
                    cell,
                    ename,
                    evalue,
                    ..
                } => {
                    eprintln!("cell {cell} failed: {ename}: {evalue}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
