//! The command line's help and usage, as a newcomer first meets them: every
//! learner `train --help` names trains; no default is shown twice; the usage
//! line after a missing required argument lists only what is required.

use std::process::{Command, Output};

fn atelier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(args)
        .env_remove("ATELIER_SERVER")
        .output()
        .expect("run atelier")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A small binary problem every learner can fit in a moment.
fn tiny_csv(dir: &std::path::Path) -> std::path::PathBuf {
    let mut s = String::from("x,colour,y\n");
    for i in 0..60 {
        let colour = ["red", "green", "blue"][i % 3];
        let y = if (i * 7) % 10 < 5 { "yes" } else { "no" };
        s.push_str(&format!("{},{colour},{y}\n", (i * 13) % 17));
    }
    let p = dir.join("tiny.csv");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn train_help_names_exactly_the_learners_train_accepts_and_each_one_trains() {
    let help = text(&atelier(&["train", "--help"]));
    assert!(!help.contains("planned"), "{help}");
    let line = help
        .lines()
        .find(|l| l.contains("--algorithm"))
        .unwrap_or_else(|| panic!("no --algorithm in\n{help}"));
    // the values the parser accepts, as clap lists them for a wrong one
    let bad = atelier(&[
        "train",
        "x.csv",
        "--target",
        "y",
        "-o",
        "m",
        "--algorithm",
        "nosuch",
    ]);
    assert!(!bad.status.success());
    let err = text(&bad);
    let listed = err
        .split("[possible values: ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or_else(|| panic!("no possible values in\n{err}"));
    let names: Vec<&str> = listed.split(", ").collect();
    assert_eq!(
        names,
        ["gbm", "rf", "extra-trees", "linear", "mlp"],
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_csv(dir.path());
    for name in names {
        assert!(
            line.contains(&format!("{name} (")),
            "{name} described: {line}"
        );
        let model = dir.path().join(format!("{name}.model"));
        let o = atelier(&[
            "train",
            data.to_str().unwrap(),
            "--target",
            "y",
            "--algorithm",
            name,
            "-o",
            model.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert!(model.is_file(), "{name}");
    }
}

/// The subcommands a `--help` text lists under "Commands:" (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn no_help_shows_a_default_twice() {
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = atelier(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        let help = text(&o);
        seen += 1;
        for line in help.lines() {
            assert!(
                line.matches("[default:").count() <= 1,
                "atelier {}: a default shown twice: {line}",
                path.join(" ")
            );
        }
        for sub in subcommands(&help) {
            let mut p = path.clone();
            p.push(sub);
            queue.push(p);
        }
    }
    assert!(seen > 20, "only {seen} help texts found");
    let automl = text(&atelier(&["automl", "--help"]));
    assert_eq!(automl.matches("[default: 3600]").count(), 1, "{automl}");
}

/// The `Usage:` line of an output.
fn usage(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_else(|| panic!("no usage in\n{out}"))
}

#[test]
fn the_usage_after_a_missing_required_argument_lists_only_required_ones() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "automl",
                "data.csv",
                "--time-budget",
                "10",
                "--metric",
                "auc",
                "--server",
                "http://127.0.0.1:9",
                "-o",
                "x.model",
            ],
            "Usage: atelier automl [OPTIONS] --target <TARGET> <TRAIN>",
        ),
        (
            &[
                "train",
                "data.csv",
                "--algorithm",
                "rf",
                "--param",
                "a=b",
                "-o",
                "x.model",
            ],
            "Usage: atelier train [OPTIONS] --target <TARGET> --output <OUTPUT> <TRAIN>",
        ),
        (
            &[
                "deploy",
                "m.model",
                "--server",
                "http://127.0.0.1:9",
                "--weight",
                "2",
            ],
            "Usage: atelier deploy [OPTIONS] --name <NAME> <MODEL>",
        ),
    ];
    for (args, want) in cases {
        let o = atelier(args);
        assert!(!o.status.success());
        let err = text(&o);
        assert!(
            err.contains("the following required arguments were not provided"),
            "{err}"
        );
        assert_eq!(usage(&err), want, "{args:?}:\n{err}");
        // the same line as the command's own help shows
        let help = text(&atelier(&[args[0], "--help"]));
        assert_eq!(usage(&help), want, "{args:?}");
    }
}

#[test]
fn output_piped_into_a_reader_that_stops_early_ends_quietly() {
    // `atelier profile data.csv --json | head -c 10`: head closes the pipe
    // after ten bytes; atelier must end without a panic and backtrace
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    // forty columns: a profile far larger than a pipe's 64 KiB buffer
    let csv = dir.path().join("wide.csv");
    let header: Vec<String> = (0..40).map(|c| format!("c{c}")).collect();
    let mut s = header.join(",") + "\n";
    for r in 0..200 {
        let row: Vec<String> = (0..40)
            .map(|c| ((r * 31 + c * 7) % 97).to_string())
            .collect();
        s += &(row.join(",") + "\n");
    }
    std::fs::write(&csv, s).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["profile", csv.to_str().unwrap(), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run atelier");
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // the read end is dropped here, as head exits
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?} {err}",
        out.status
    );
    assert_eq!(&first[..2], b"{\"");
}

#[test]
fn automl_names_the_problem_and_the_row_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let csv = tiny_csv(dir.path());
    let model = dir.path().join("m.model");
    let o = atelier(&[
        "automl",
        csv.to_str().unwrap(),
        "--target",
        "y",
        "--time-budget",
        "2",
        "--no-reports",
        "-o",
        model.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("binary problem"), "{first}");
    assert_eq!(first.matches("60 rows").count(), 1, "{first}");
    assert_eq!(err.matches("binary problem").count(), 1, "{err}");
}
