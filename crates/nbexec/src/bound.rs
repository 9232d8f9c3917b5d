//! Knowing when a starting kernel has bound its sockets, so that we connect
//! at once instead of sitting in ZeroMQ's reconnect back-off (50 ms, doubling),
//! which otherwise adds up to a few hundred milliseconds to every start.
//!
//! IPC (the default) on Linux: the socket files appear in our private runtime
//! directory; an inotify watch, set before the kernel is spawned, wakes us
//! when they do. TCP (and IPC elsewhere): there is no event to wait for, so
//! the ports are probed with a plain connect every few milliseconds.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often ports are probed where no event tells us they are bound.
const PROBE_EVERY: Duration = Duration::from_millis(5);

/// Where the kernel's sockets will be.
pub(crate) enum Endpoints {
    Ipc(Vec<PathBuf>),
    Tcp(Vec<std::net::SocketAddr>),
}

/// Watches a directory for new entries.
pub(crate) struct DirWatch {
    #[cfg(target_os = "linux")]
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl DirWatch {
    /// Start watching `dir` (before the files can appear).
    #[cfg(target_os = "linux")]
    pub(crate) fn new(dir: &Path) -> io::Result<DirWatch> {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscall; the returned descriptor is owned below.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `path` is a valid NUL-terminated string for the call.
        let wd = unsafe {
            libc::inotify_add_watch(raw, path.as_ptr(), libc::IN_CREATE | libc::IN_MOVED_TO)
        };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the OwnedFd moves into the AsyncFd and stays open, with the
        // same descriptor, for as long as the AsyncFd exists.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(DirWatch { fd })
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn new(_dir: &Path) -> io::Result<DirWatch> {
        Ok(DirWatch {})
    }

    /// Wait until something was created in the directory.
    #[cfg(target_os = "linux")]
    async fn changed(&mut self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 4096];
            let read = guard.try_io(|fd| {
                // SAFETY: reads into a buffer we own, of the length given.
                let n = unsafe {
                    libc::read(fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match read {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    async fn changed(&mut self) -> io::Result<()> {
        tokio::time::sleep(PROBE_EVERY).await;
        Ok(())
    }
}

/// Return once every endpoint is bound (the caller bounds this in time and
/// watches the kernel process meanwhile).
pub(crate) async fn wait_bound(endpoints: &Endpoints, watch: Option<DirWatch>) -> io::Result<()> {
    match endpoints {
        Endpoints::Ipc(paths) => {
            let mut watch = watch;
            while !paths.iter().all(|p| p.exists()) {
                match watch.as_mut() {
                    Some(w) => w.changed().await?,
                    None => tokio::time::sleep(PROBE_EVERY).await,
                }
            }
        }
        Endpoints::Tcp(addrs) => {
            for addr in addrs {
                while !accepts(addr).await {
                    tokio::time::sleep(PROBE_EVERY).await;
                }
            }
        }
    }
    Ok(())
}

/// Whether something listens on `addr`. A connection from `addr` to itself
/// (TCP simultaneous open, which Linux allows when it picks the probed port,
/// free until the kernel binds it, as our source port) does not count.
async fn accepts(addr: &std::net::SocketAddr) -> bool {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => {
            tracing::debug!(local = ?stream.local_addr(), peer = ?stream.peer_addr(), "probe connected");

            stream.local_addr().ok() != Some(*addr)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_up_when_the_files_appear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: Vec<PathBuf> = (1..=3).map(|i| dir.path().join(format!("k-{i}"))).collect();
        let watch = DirWatch::new(dir.path()).expect("watch");
        let creator = {
            let files = files.clone();
            tokio::spawn(async move {
                for f in files {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    std::fs::write(f, b"").expect("create");
                }
            })
        };
        let endpoints = Endpoints::Ipc(files);
        tokio::time::timeout(Duration::from_secs(5), wait_bound(&endpoints, Some(watch)))
            .await
            .expect("in time")
            .expect("watch");
        creator.await.expect("creator");
    }
}
