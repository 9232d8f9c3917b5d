//! A private PostgreSQL cluster for tests: `cargo xtask postgres start`
//! (prints its URL and data folder, leaves it running) and `cargo xtask
//! postgres stop <datadir>`; from Rust, [`start`] returns a [`PgCluster`]
//! guard that stops the cluster (and deletes its folder) when dropped.
//!
//! The cluster is Debian's PostgreSQL (`/usr/lib/postgresql/<v>/bin`,
//! installed with apt-get when missing and we are root), initialised in a
//! fresh folder under `<target>/postgres/` with trust authentication, UTF-8
//! and the `C` locale (so that every database made on it, also a test's
//! own, compares text in byte order and folds case of ASCII letters only,
//! as SQLite does; under `C.UTF-8`, `LOWER('É')` is `'é'` and the ILIKE
//! translation `LOWER(col) LIKE LOWER(?)` matches rows SQLite does not),
//! and started with `pg_ctl -w` listening on
//! 127.0.0.1 only, at a free port, with its unix socket inside the data
//! folder, without fsync (the data outlives a killed server, not a crashed
//! machine). initdb and pg_ctl refuse to run as root, so as root they run as
//! the `postgres` user through `su`, which owns the folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{free_port, root, target_dir};

type R<T = ()> = Result<T, String>;

/// The database every cluster is created with.
const DATABASE: &str = "atelier";
/// Where the Debian packages put each major version's server binaries.
const PG_LIB: &str = "/usr/lib/postgresql";
/// A unix socket path longer than this is refused by the kernel (108 with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The file that marks a data folder as one [`start`] made (and may delete).
const MARKER: &str = "atelier-test-cluster";

unsafe extern "C" {
    fn geteuid() -> u32;
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

/// A running test cluster. Dropping it stops the server (`pg_ctl -m fast -w
/// stop`) and deletes its folder; [`PgCluster::leave_running`] hands both
/// over instead.
pub(crate) struct PgCluster {
    /// `postgres://postgres@127.0.0.1:<port>/atelier`
    pub(crate) url: String,
    /// The data folder (also holds the server's log and unix socket).
    pub(crate) data_dir: PathBuf,
    bin: PathBuf,
    port: u16,
    running: bool,
}

impl PgCluster {
    /// The port the server listens on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Create another (empty) database on this cluster; its URL.
    pub(crate) fn create_database(&self, name: &str) -> R<String> {
        checked(
            Command::new(self.bin.join("createdb"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .arg(name)
                .env_remove("PGPASSWORD")
                .output(),
            "createdb",
        )?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    /// Run `sql` with psql in database `db`; its output (unaligned, tuples only).
    pub(crate) fn psql(&self, db: &str, sql: &str) -> R<String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-d",
                db,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env_remove("PGPASSWORD")
            .output()
            .map_err(|e| format!("psql: could not start: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "psql `{sql}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Leave the server running after this guard is gone: returns its URL
    /// and data folder (stop it later with [`stop`]).
    pub(crate) fn leave_running(mut self) -> (String, PathBuf) {
        self.running = false;
        (
            std::mem::take(&mut self.url),
            std::mem::take(&mut self.data_dir),
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        if let Err(e) = stop_with(&self.bin, &self.data_dir) {
            eprintln!(
                "xtask: stopping PostgreSQL in {}: {e}",
                self.data_dir.display()
            );
        }
        if let Err(e) = remove_cluster_dir(&self.data_dir) {
            eprintln!("xtask: {e}");
        }
    }
}

/// Start a fresh cluster under `<target>/postgres/` with an empty database
/// `atelier`, installing PostgreSQL first when it is missing (root only).
pub(crate) fn start(target: &Path) -> R<PgCluster> {
    start_with(target, false)
}

/// [`start`] with PostgreSQL's default durability (fsync and full-page
/// writes on), for benchmarks that should measure what a deployment pays.
pub(crate) fn start_durable(target: &Path) -> R<PgCluster> {
    start_with(target, true)
}

fn start_with(target: &Path, durable: bool) -> R<PgCluster> {
    let bin = find_or_install_bin()?;
    let parent = target.join("postgres");
    std::fs::create_dir_all(&parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let data_dir = parent.join(format!("{stamp}-{}", std::process::id()));
    // the socket is <data_dir>/.s.PGSQL.<port>: at most 16 more bytes
    if data_dir.as_os_str().len() + 16 > MAX_SOCKET_PATH {
        return Err(format!(
            "{} is too long for a unix socket path ({MAX_SOCKET_PATH} bytes at most); use a shorter target dir",
            data_dir.display()
        ));
    }
    std::fs::create_dir(&data_dir).map_err(|e| format!("creating {}: {e}", data_dir.display()))?;
    if is_root() {
        checked(
            Command::new("chown")
                .arg("postgres:")
                .arg(&data_dir)
                .output(),
            "chown postgres: <data dir> (is the postgres user there?)",
        )?;
    }
    let mut cluster = PgCluster {
        url: String::new(),
        data_dir,
        bin,
        port: 0,
        running: false,
    };
    let initdb = cluster.bin.join("initdb");
    let d = path_str(&cluster.data_dir)?;
    let init = as_postgres(
        &initdb,
        &[
            "-D",
            d,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        &cluster.data_dir,
    );
    if let Err(e) = checked(init, "initdb") {
        // the folder is the one made above
        let _ = std::fs::remove_dir_all(&cluster.data_dir);
        return Err(e);
    }
    std::fs::write(
        cluster.data_dir.join(MARKER),
        "made by `cargo xtask postgres start`\n",
    )
    .map_err(|e| format!("writing {MARKER}: {e}"))?;
    // the port is free when picked but may be taken before the server binds it
    let mut last = String::new();
    let mut port = 0;
    for _ in 0..3 {
        port = free_port()?;
        match start_server(&cluster.bin, &cluster.data_dir, port, durable) {
            Ok(()) => {
                last.clear();
                break;
            }
            Err(e) => last = e,
        }
    }
    if !last.is_empty() {
        remove_cluster_dir(&cluster.data_dir)?;
        return Err(last);
    }
    cluster.running = true;
    cluster.port = port;
    // from here on, dropping the guard stops the server
    checked(
        Command::new(cluster.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .arg(DATABASE)
            .env_remove("PGPASSWORD")
            .output(),
        "createdb",
    )?;
    cluster.url = format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}");
    Ok(cluster)
}

/// Stop the cluster in `data_dir` (`pg_ctl -m fast -w stop`); its folder stays.
pub(crate) fn stop(data_dir: &Path) -> R {
    let bin = bin_for(data_dir)?;
    stop_with(&bin, data_dir)
}

fn start_server(bin: &Path, data_dir: &Path, port: u16, durable: bool) -> R {
    let d = path_str(data_dir)?;
    let log = data_dir.join("postgres.log");
    // pg_ctl hands -o to the server through sh -c: the socket folder is quoted for it
    // no fsync: a test cluster's data need not survive the machine's crash, only the
    // server's (a killed postgres loses nothing it acknowledged; synchronous_commit stays on).
    // The store's suite ran in 59 s instead of 85 s on 2 busy cores.
    let mut opts = format!("-c listen_addresses=127.0.0.1 -p {port} -k {}", sh_quote(d));
    if !durable {
        opts.push_str(" -c fsync=off -c full_page_writes=off");
    }
    let r = checked(
        as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                d,
                "-l",
                path_str(&log)?,
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
            data_dir,
        ),
        "pg_ctl start",
    );
    r.map_err(|e| {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        format!("{e}\n{}", crate::common::tail_str(&tail))
    })
}

fn stop_with(bin: &Path, data_dir: &Path) -> R {
    let d = path_str(data_dir)?;
    checked(
        as_postgres(
            &bin.join("pg_ctl"),
            &["-D", d, "-m", "fast", "-w", "stop"],
            data_dir,
        ),
        "pg_ctl stop",
    )
}

/// Delete a cluster folder [`start`] made (it holds the marker file), never
/// anything else.
fn remove_cluster_dir(data_dir: &Path) -> R {
    if !data_dir.exists() {
        return Ok(());
    }
    if !data_dir.join(MARKER).is_file() {
        return Err(format!(
            "{} is not a cluster folder `cargo xtask postgres start` made; left in place",
            data_dir.display()
        ));
    }
    std::fs::remove_dir_all(data_dir).map_err(|e| format!("deleting {}: {e}", data_dir.display()))
}

/// The server binaries of the data folder's major version (`PG_VERSION`).
fn bin_for(data_dir: &Path) -> R<PathBuf> {
    let version = std::fs::read_to_string(data_dir.join("PG_VERSION")).map_err(|e| {
        format!(
            "{} is not a PostgreSQL data folder (reading PG_VERSION: {e})",
            data_dir.display()
        )
    })?;
    let bin = Path::new(PG_LIB).join(version.trim()).join("bin");
    if bin.join("pg_ctl").exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} has no pg_ctl (the cluster is PostgreSQL {})",
            bin.display(),
            version.trim()
        ))
    }
}

/// The newest `/usr/lib/postgresql/<v>/bin` with initdb and pg_ctl.
fn find_bin() -> Option<PathBuf> {
    let entries = std::fs::read_dir(PG_LIB).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((v, bin))
        })
        .max_by_key(|(v, _)| *v)
        .map(|(_, bin)| bin)
}

fn find_or_install_bin() -> R<PathBuf> {
    if let Some(bin) = find_bin() {
        return Ok(bin);
    }
    if !is_root() {
        return Err(format!(
            "no PostgreSQL server under {PG_LIB}/*/bin; install it with `apt-get install postgresql` (needs root)"
        ));
    }
    eprintln!("xtask: installing Debian's postgresql (apt-get)");
    checked(
        Command::new("apt-get").args(["update", "-q"]).output(),
        "apt-get update",
    )?;
    checked(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output(),
        "apt-get install postgresql",
    )?;
    find_bin().ok_or_else(|| format!("apt-get installed postgresql but {PG_LIB}/*/bin is missing"))
}

/// `prog args…`, as the `postgres` user when we are root (initdb and pg_ctl
/// refuse root), run in `dir` (root's own working folder may be closed to it).
fn as_postgres(prog: &Path, args: &[&str], dir: &Path) -> std::io::Result<Output> {
    if is_root() {
        let mut line = sh_quote(&prog.to_string_lossy());
        for a in args {
            line.push(' ');
            line.push_str(&sh_quote(a));
        }
        Command::new("su")
            .args(["-s", "/bin/sh", "postgres", "-c", &line])
            .current_dir(dir)
            .output()
    } else {
        Command::new(prog).args(args).current_dir(dir).output()
    }
}

/// `s` as one word for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn path_str(p: &Path) -> R<&str> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

/// A finished command's result: its output on failure, with `what`.
fn checked(out: std::io::Result<Output>, what: &str) -> R {
    let out = out.map_err(|e| format!("{what}: could not start: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(format!(
        "{what} failed ({}):\n{}",
        out.status,
        crate::common::tail_str(text.trim())
    ))
}

const USAGE: &str = "usage: cargo xtask postgres start | stop <datadir> [--keep]

  start                  a private PostgreSQL on 127.0.0.1 at a free port, in a fresh folder
                         under <target>/postgres/; prints its URL, then its data folder, and
                         leaves it running
  stop <datadir> [--keep]
                         stop it (pg_ctl -m fast) and delete the folder (--keep: keep it)";

/// `cargo xtask postgres …`
pub(crate) fn run(args: &[String]) -> R {
    match args.first().map(String::as_str) {
        Some("start") if args.len() == 1 => {
            let root = root();
            let cluster = start(&target_dir(&root))?;
            let (url, data_dir) = cluster.leave_running();
            println!("{url}");
            println!("{}", data_dir.display());
            eprintln!(
                "xtask: PostgreSQL is running; stop it with `cargo xtask postgres stop {}`",
                data_dir.display()
            );
            Ok(())
        }
        Some("stop") => {
            let mut dir = None;
            let mut keep = false;
            for a in &args[1..] {
                match a.as_str() {
                    "--keep" => keep = true,
                    a if dir.is_none() && !a.starts_with('-') => dir = Some(PathBuf::from(a)),
                    _ => return Err(USAGE.into()),
                }
            }
            let dir = dir.ok_or(USAGE)?;
            stop(&dir)?;
            if keep {
                eprintln!("xtask: stopped; {} kept", dir.display());
                return Ok(());
            }
            remove_cluster_dir(&dir)?;
            eprintln!("xtask: stopped; {} deleted", dir.display());
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_a_word_for_sh() {
        assert_eq!(sh_quote("/a b/c"), "'/a b/c'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn deletes_only_its_own_cluster_folders() {
        let dir = std::env::temp_dir().join(format!("xtask-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = remove_cluster_dir(&dir).unwrap_err();
        assert!(e.contains("left in place"), "{e}");
        assert!(dir.exists());
        std::fs::write(dir.join(MARKER), "").unwrap();
        remove_cluster_dir(&dir).unwrap();
        assert!(!dir.exists());
    }

    /// Starts a real server (and installs PostgreSQL when missing): run with
    /// `cargo test -p xtask -- --ignored postgres`.
    #[test]
    #[ignore = "starts a real PostgreSQL"]
    fn a_cluster_serves_on_loopback_and_goes_with_its_guard() {
        let target = target_dir(&root());
        let cluster = start(&target).unwrap();
        let port = cluster
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let psql = |sql: &str| {
            let out = Command::new(cluster.bin.join("psql"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-d",
                    DATABASE,
                ])
                .args(["-X", "-A", "-t", "-c", sql])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(psql("SHOW listen_addresses"), "127.0.0.1");
        assert_eq!(psql("SHOW server_encoding"), "UTF8");
        assert_eq!(psql("SHOW fsync"), "off");
        assert_eq!(psql("SHOW synchronous_commit"), "on");
        assert_eq!(psql("SHOW lc_collate"), "C");
        // a database made without options (as each test makes its own) is "C" too
        psql("CREATE DATABASE t");
        assert_eq!(
            psql("SELECT datcollate || datctype FROM pg_database WHERE datname = 't'"),
            "CC"
        );
        assert_eq!(psql("SHOW lc_ctype"), "C");
        assert_eq!(psql("SELECT LOWER('ÉA') || ('a' < 'B')::text"), "Éafalse");
        assert_eq!(
            psql("SHOW unix_socket_directories"),
            cluster.data_dir.to_str().unwrap()
        );
        let dir = cluster.data_dir.clone();
        drop(cluster);
        assert!(!dir.exists(), "{} left behind", dir.display());
        let gone = std::net::TcpStream::connect(format!("127.0.0.1:{port}"));
        assert!(gone.is_err(), "the server still listens on {port}");
    }
}
