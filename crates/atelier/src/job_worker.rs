//! `atelier job-worker -- <argv…>` (hidden): a user job staged on a worker
//! that does not see the server's files (a Ray cluster without a shared
//! volume). It reads the manifest the server put in `ATELIER_STAGE_MANIFEST`
//! (see `userjobs::stage`), makes a private folder, recreates the job's
//! layout there, fetches inputs and code from the server's artifact API,
//! moves every path of the server's job folder in the environment to its own,
//! runs the command there (its output passes through; SIGTERM and SIGINT are
//! passed on to it), uploads the outputs and the failure reason to the run,
//! deletes its folder and exits with the command's status (128 + the signal
//! that killed it). A staging problem is one line on stderr, also uploaded as
//! the failure reason when the server can be reached, and a non-zero exit.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use serde_json::Value;
use userjobs::stage::{self, Manifest};

/// The exit status when staging fails before the command runs.
pub const STAGING_FAILED: u8 = 70;

/// The artifact API, under the server's address.
const ARTIFACTS_API: &str = "/api/2.0/mlflow-artifacts/artifacts";

/// Attempts of one HTTP call that failed on the way (no answer, or a 5xx).
const ATTEMPTS: u32 = 3;

/// The last of SIGTERM/SIGINT received and not yet passed on (0: none).
static PENDING_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    PENDING_SIGNAL.store(sig, Ordering::SeqCst);
}

/// Run the worker; `argv` is the command after `--`.
pub fn run(argv: Vec<OsString>) -> ExitCode {
    match stage_and_run(argv) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            say(&e);
            ExitCode::from(STAGING_FAILED)
        }
    }
}

/// One line on stderr (which Ray keeps in the job's log).
fn say(msg: &str) {
    let line = msg.replace('\n', " ");
    let _ = writeln!(std::io::stderr(), "atelier job-worker: {line}");
}

fn stage_and_run(argv: Vec<OsString>) -> Result<u8, String> {
    let manifest = Manifest::from_env().map_err(|e| e.to_string())?;
    if argv.is_empty() {
        return Err(
            "no command: give it after `--` (atelier job-worker -- python train.py)".into(),
        );
    }
    let http = Http::new(&manifest);
    let folder = Folder::new()?;
    let outcome = (|| {
        lay_out(&manifest, &folder.0)?;
        fetch_all(&http, &manifest, &folder.0)
    })();
    if let Err(e) = outcome {
        let msg = format!("staging the job failed: {e}");
        // the server shows it as the failure reason
        let _ = http.put_bytes(&manifest.failure_to, msg.as_bytes());
        return Err(msg);
    }
    let status = run_command(&manifest, &folder.0, argv)?;
    let failed = status != 0;
    let mut reason = None;
    if let Err(e) = upload_outputs(&http, &manifest, &folder.0) {
        say(&e);
        reason = Some(e);
    }
    // the script's own reason first when it failed, else what went wrong here
    let script = std::fs::read(folder.0.join(&manifest.failure_file))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|t| !t.is_empty());
    let text = match (failed, script, &reason) {
        (true, Some(s), _) | (false, Some(s), None) => Some(s),
        (_, _, Some(r)) => Some(r.clone()),
        (_, None, None) => None,
    };
    if let Some(t) = text
        && let Err(e) = http.put_bytes(&manifest.failure_to, t.as_bytes())
    {
        say(&format!("could not keep the failure reason: {e}"));
    }
    drop(folder);
    Ok(match (status, reason) {
        (0, Some(_)) => 1,
        (s, _) => s,
    })
}

/// A private folder (mode 0700) in the temporary folder, deleted on drop.
struct Folder(PathBuf);

impl Folder {
    fn new() -> Result<Folder, String> {
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let p = base.join(format!(
                "atelier-job-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(Folder(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(format!(
                        "could not make a folder in {}: {e}",
                        base.display()
                    ));
                }
            }
        }
        Err(format!("could not make a folder in {}", base.display()))
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            say(&format!("could not delete {}: {e}", self.0.display()));
        }
    }
}

/// The manifest's relative path under `root` (checked again: nothing
/// outside the folder is ever written).
fn under(root: &Path, what: &str, rel: &str) -> Result<PathBuf, String> {
    Ok(root.join(stage::relative(what, rel).map_err(|e| e.to_string())?))
}

/// The server's job folder as the worker's.
fn moved(m: &Manifest, root: &Path, text: &str) -> String {
    stage::rewrite_paths(text, &m.job_dir, &root.to_string_lossy())
}

fn lay_out(m: &Manifest, root: &Path) -> Result<(), String> {
    for d in std::iter::once(&m.cwd).chain(&m.dirs) {
        let p = under(root, "folder", d)?;
        std::fs::create_dir_all(&p).map_err(|e| format!("making {d}: {e}"))?;
    }
    for f in &m.files {
        let p = under(root, "file", &f.path)?;
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("making {}: {e}", f.path))?;
        }
        std::fs::write(&p, moved(m, root, &f.content))
            .map_err(|e| format!("writing {}: {e}", f.path))?;
    }
    Ok(())
}

/// Percent-encodes an artifact path's segments for a URL.
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The server's artifact API, with the job's token.
struct Http {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
    /// The job's project, named on every call (the job's token acts there only).
    workspace: Option<String>,
}

impl Http {
    fn new(m: &Manifest) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .max_redirects(0)
            .build()
            .into();
        Http {
            agent,
            base: format!("{}{ARTIFACTS_API}", m.server.trim_end_matches('/')),
            auth: m.token.as_ref().map(|t| format!("Bearer {t}")),
            workspace: m.workspace.clone(),
        }
    }

    /// One call, tried again when it got no answer or a 5xx.
    fn call<T>(
        &self,
        what: &str,
        mut once: impl FnMut() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        mut done: impl FnMut(ureq::http::Response<ureq::Body>) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match once() {
                Ok(r) if r.status().is_server_error() => {
                    last = answer(what, r);
                }
                Ok(r) => return done(r),
                Err(e) => last = format!("{what}: the server did not answer: {e}"),
            }
            if attempt < ATTEMPTS {
                std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
            }
        }
        Err(last)
    }

    fn get(&self, url: &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut r = self.agent.get(url);
        if let Some(a) = &self.auth {
            r = r.header("Authorization", a);
        }
        if let Some(w) = &self.workspace {
            r = r.header("X-MLFLOW-WORKSPACE", w);
        }
        r.call()
    }

    /// Download file `path` to `to`; `Ok(false)` when it is not a file.
    fn download(&self, path: &str, to: &Path) -> Result<bool, String> {
        let url = format!("{}/{}", self.base, encode(path));
        let what = format!("downloading '{path}'");
        self.call(
            &what,
            || self.get(&url),
            |mut r| {
                let code = r.status().as_u16();
                if code == 404 || code == 400 {
                    return Ok(false);
                }
                if code != 200 {
                    return Err(answer(&what, r));
                }
                let mut file = std::fs::File::create(to)
                    .map_err(|e| format!("{what}: {}: {e}", to.display()))?;
                std::io::copy(&mut r.body_mut().as_reader(), &mut file)
                    .map_err(|e| format!("{what}: {e}"))?;
                Ok(true)
            },
        )
    }

    /// The entries of folder `path`: (name, is a folder).
    fn list(&self, path: &str) -> Result<Vec<(String, bool)>, String> {
        let url = format!("{}?path={}", self.base, encode(path));
        let what = format!("listing '{path}'");
        let v: Value = self.call(
            &what,
            || self.get(&url),
            |mut r| {
                if r.status().as_u16() != 200 {
                    return Err(answer(&what, r));
                }
                r.body_mut()
                    .read_json::<Value>()
                    .map_err(|e| format!("{what}: {e}"))
            },
        )?;
        let mut out = Vec::new();
        for f in v["files"].as_array().into_iter().flatten() {
            let p = f["path"].as_str().unwrap_or_default();
            let name = p.rsplit('/').next().unwrap_or_default().to_string();
            if stage::relative("listed name", &name).is_err() {
                return Err(format!("{what}: the server listed '{p}', not a file name"));
            }
            out.push((name, f["is_dir"].as_bool().unwrap_or(false)));
        }
        Ok(out)
    }

    fn put_file(&self, path: &str, file: &Path) -> Result<(), String> {
        let url = format!("{}/{}", self.base, encode(path));
        let what = format!("uploading '{path}'");
        self.call(
            &what,
            || {
                let f = std::fs::File::open(file).map_err(ureq::Error::Io)?;
                let mut r = self.agent.put(&url);
                if let Some(a) = &self.auth {
                    r = r.header("Authorization", a);
                }
                if let Some(w) = &self.workspace {
                    r = r.header("X-MLFLOW-WORKSPACE", w);
                }
                r.send(f)
            },
            |r| ok_or(&what, r),
        )
    }

    fn put_bytes(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        let url = format!("{}/{}", self.base, encode(path));
        let what = format!("uploading '{path}'");
        self.call(
            &what,
            || {
                let mut r = self.agent.put(&url);
                if let Some(a) = &self.auth {
                    r = r.header("Authorization", a);
                }
                if let Some(w) = &self.workspace {
                    r = r.header("X-MLFLOW-WORKSPACE", w);
                }
                r.send(bytes)
            },
            |r| ok_or(&what, r),
        )
    }
}

fn ok_or(what: &str, r: ureq::http::Response<ureq::Body>) -> Result<(), String> {
    if r.status().is_success() {
        Ok(())
    } else {
        Err(answer(what, r))
    }
}

/// The server's answer in words: status and MLflow's `message`.
fn answer(what: &str, mut r: ureq::http::Response<ureq::Body>) -> String {
    let code = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    let msg = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(300).collect());
    let hint = match code {
        401 => " (the job's token was refused: was the job cancelled?)",
        403 => " (the job's token may not do this)",
        _ => "",
    };
    format!("{what}: the server answered {code}{hint}: {}", msg.trim())
}

/// Inputs and code into their folders: a file under its own name, a
/// folder's files below the destination.
fn fetch_all(http: &Http, m: &Manifest, root: &Path) -> Result<(), String> {
    for f in &m.fetch {
        let dest = under(root, "destination", &f.to)?;
        std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", f.to))?;
        let from = f.from.trim_end_matches('/');
        let file_name = from.rsplit('/').next().unwrap_or("data");
        stage::relative("file name", file_name).map_err(|e| e.to_string())?;
        let single = dest.join(file_name);
        if http
            .download(from, &single)
            .map_err(|e| format!("{}: {e}", f.name))?
        {
            continue;
        }
        let n = fetch_folder(http, from, &dest).map_err(|e| format!("{}: {e}", f.name))?;
        if n == 0 {
            return Err(format!("{}: nothing at '{from}' any more", f.name));
        }
    }
    Ok(())
}

/// Folder `from` into `dest`, recursively; how many files came.
fn fetch_folder(http: &Http, from: &str, dest: &Path) -> Result<usize, String> {
    let mut n = 0;
    for (name, is_dir) in http.list(from)? {
        let src = format!("{from}/{name}");
        let to = dest.join(&name);
        if is_dir {
            std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
            n += fetch_folder(http, &src, &to)?;
        } else if http.download(&src, &to)? {
            n += 1;
        } else {
            return Err(format!("'{src}' was listed but could not be downloaded"));
        }
    }
    Ok(n)
}

/// Run the command in the staged folder; its exit status (128 + signal).
fn run_command(m: &Manifest, root: &Path, argv: Vec<OsString>) -> Result<u8, String> {
    let cwd = under(root, "cwd", &m.cwd)?;
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).current_dir(&cwd).env_clear();
    for (k, v) in std::env::vars_os() {
        if k == stage::MANIFEST_ENV {
            continue;
        }
        match v.to_str() {
            Some(s) => cmd.env(&k, moved(m, root, s)),
            None => cmd.env(&k, &v),
        };
    }
    install_signal_handlers();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let prog = argv[0].to_string_lossy();
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            say(&format!("could not start {prog}: {e}"));
            return Ok(code);
        }
    };
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let status = loop {
        let sig = PENDING_SIGNAL.swap(0, Ordering::SeqCst);
        if sig != 0 && pid > 0 {
            // SAFETY: kill(2) with the child's pid, which is not reaped yet
            // (try_wait below has not seen it exit), and a valid signal.
            unsafe {
                libc::kill(pid, sig);
            }
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for the command: {e}")),
        }
    };
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from(128 + (s & 0x7f)).unwrap_or(255),
        (None, None) => 1,
    })
}

fn install_signal_handlers() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores into an atomic, which is
        // async-signal-safe; the sigaction struct is zeroed then filled.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Every output folder to the run, all or nothing per the size limit.
fn upload_outputs(http: &Http, m: &Manifest, root: &Path) -> Result<(), String> {
    let mut all = Vec::new();
    let mut total = 0u64;
    for u in &m.upload {
        let dir = under(root, "output", &u.from)?;
        let files =
            userjobs::runner::files_under(&dir).map_err(|e| format!("output '{}': {e}", u.name))?;
        total += files.iter().map(|(_, s)| s).sum::<u64>();
        if total > m.max_output_bytes {
            return Err(format!(
                "output '{}' brings the outputs to {total} bytes, over the limit of {} bytes (max_output_bytes); nothing of it was uploaded",
                u.name, m.max_output_bytes
            ));
        }
        all.push((u, dir, files));
    }
    for (u, dir, files) in all {
        for (file, _) in files {
            let rel = file
                .strip_prefix(&dir)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .replace('\\', "/");
            http.put_file(&format!("{}/{rel}", u.to.trim_end_matches('/')), &file)
                .map_err(|e| format!("output '{}' ({rel}): {e}", u.name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_are_encoded_for_urls() {
        assert_eq!(encode("datasets/raw data.csv"), "datasets/raw%20data.csv");
        assert_eq!(encode("a/b?c#d"), "a/b%3Fc%23d");
    }
}
