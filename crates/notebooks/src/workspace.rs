//! A space's workspace folder: `<root>/<space>/`, the folder its JupyterLab
//! opens. Every path a client names is checked before any IO: relative, no
//! `.`/`..` or hidden segments, no backslashes or control characters, and no
//! symlink on the way out of the folder.

use std::path::{Path, PathBuf};

/// Largest notebook read for a preview or a job (larger ones are refused
/// with a message, not read into memory).
pub const MAX_NOTEBOOK_BYTES: u64 = 64 << 20;

/// A notebook in a workspace.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// Relative to the workspace, with `/`.
    pub path: String,
    pub size: u64,
    pub modified_ms: i64,
}

/// Why a workspace path was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}")]
    BadPath(String),
    #[error("no file '{0}' in the workspace")]
    NotFound(String),
    #[error("'{path}' is {size} bytes, over the limit of {limit} bytes for a notebook")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Check a client's relative path (see the module's rules).
pub fn check_rel(rel: &str) -> Result<(), WorkspaceError> {
    let bad = |why: &str| Err(WorkspaceError::BadPath(format!("path '{rel}' {why}")));
    if rel.is_empty() {
        return bad("is empty: name a file in the workspace, e.g. 'analysis.ipynb'");
    }
    if rel.len() > 1024 {
        return bad("is longer than 1024 characters");
    }
    if rel.starts_with('/') {
        return bad("must be relative to the workspace, not absolute");
    }
    if rel.contains('\\') || rel.chars().any(|c| c.is_control()) {
        return bad("must not contain backslashes or control characters");
    }
    for seg in rel.split('/') {
        if seg.is_empty() {
            return bad("has an empty segment ('//' or a trailing '/')");
        }
        if seg.starts_with('.') {
            return bad("has a '.', '..' or hidden segment");
        }
    }
    Ok(())
}

/// The workspace folder of `space` (made if missing).
pub fn dir(root: &Path, space: &str) -> Result<PathBuf, WorkspaceError> {
    let d = root.join(space);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// The file `rel` in `space`'s workspace, checked to stay inside it.
pub fn resolve(root: &Path, space: &str, rel: &str) -> Result<PathBuf, WorkspaceError> {
    check_rel(rel)?;
    let base = dir(root, space)?.canonicalize()?;
    let p = base.join(rel);
    // the deepest existing ancestor must still be inside (no symlink out)
    let mut probe = p.clone();
    while !probe.exists() {
        if !probe.pop() {
            break;
        }
    }
    let real = probe.canonicalize()?;
    if !real.starts_with(&base) {
        return Err(WorkspaceError::BadPath(format!(
            "path '{rel}' leads out of the workspace"
        )));
    }
    if let Ok(m) = std::fs::symlink_metadata(&p)
        && m.file_type().is_symlink()
    {
        return Err(WorkspaceError::BadPath(format!(
            "path '{rel}' is a symbolic link; name the file itself"
        )));
    }
    Ok(p)
}

/// Read a notebook (at most [`MAX_NOTEBOOK_BYTES`]).
pub fn read(root: &Path, space: &str, rel: &str) -> Result<Vec<u8>, WorkspaceError> {
    let p = resolve(root, space, rel)?;
    let m = match std::fs::metadata(&p) {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            return Err(WorkspaceError::BadPath(format!(
                "'{rel}' is a folder, not a notebook"
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WorkspaceError::NotFound(rel.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    if m.len() > MAX_NOTEBOOK_BYTES {
        return Err(WorkspaceError::TooLarge {
            path: rel.to_string(),
            size: m.len(),
            limit: MAX_NOTEBOOK_BYTES,
        });
    }
    Ok(std::fs::read(&p)?)
}

/// Write `bytes` as a new file near `rel` (`name.ipynb`, else `name-1.ipynb`,
/// …): never overwrites the user's work. Returns the relative path written.
pub fn write_new(
    root: &Path,
    space: &str,
    rel: &str,
    bytes: &[u8],
) -> Result<String, WorkspaceError> {
    check_rel(rel)?;
    let (stem, ext) = match rel.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && !e.contains('/') => (s.to_string(), format!(".{e}")),
        _ => (rel.to_string(), String::new()),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            rel.to_string()
        } else {
            format!("{stem}-{n}{ext}")
        };
        let p = resolve(root, space, &candidate)?;
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(bytes)?;
                f.sync_all()?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(WorkspaceError::BadPath(format!(
        "too many files named like '{rel}' already"
    )))
}

/// The notebooks in `space`'s workspace, by path (hidden folders such as
/// `.ipynb_checkpoints` and symlinks are skipped; at most 5,000, 12 deep).
pub fn list(root: &Path, space: &str) -> Result<Vec<Entry>, WorkspaceError> {
    let base = dir(root, space)?;
    let mut out = Vec::new();
    let mut stack = vec![(base.clone(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() {
                continue;
            }
            if ft.is_dir() {
                if depth < 12 {
                    stack.push((e.path(), depth + 1));
                }
                continue;
            }
            if !name.ends_with(".ipynb") {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            let rel = e
                .path()
                .strip_prefix(&base)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or(name);
            let modified_ms = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            out.push(Entry {
                path: rel,
                size: m.len(),
                modified_ms,
            });
            if out.len() >= 5000 {
                break;
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_tricks_are_refused_before_any_io() {
        for bad in [
            "",
            "/etc/passwd",
            "../x.ipynb",
            "a/../../x.ipynb",
            "./x.ipynb",
            ".hidden.ipynb",
            "a//b.ipynb",
            "a\\b.ipynb",
            "a\u{0}b",
        ] {
            assert!(check_rel(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_rel("reports/q1/analysis.ipynb").is_ok());
    }

    #[test]
    fn a_symlink_out_of_the_workspace_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.ipynb"), "{}").unwrap();
        let ws = dir(t.path(), "default").unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.join("out")).unwrap();
        let e = read(t.path(), "default", "out/secret.ipynb").unwrap_err();
        assert!(e.to_string().contains("out of the workspace"), "{e}");
        std::os::unix::fs::symlink(outside.path().join("secret.ipynb"), ws.join("s.ipynb"))
            .unwrap();
        assert!(read(t.path(), "default", "s.ipynb").is_err());
    }

    #[test]
    fn lists_notebooks_skips_checkpoints_and_never_overwrites() {
        let t = tempfile::tempdir().unwrap();
        let ws = dir(t.path(), "ann").unwrap();
        std::fs::create_dir_all(ws.join("sub/.ipynb_checkpoints")).unwrap();
        std::fs::write(ws.join("a.ipynb"), "{}").unwrap();
        std::fs::write(ws.join("sub/b.ipynb"), "{}").unwrap();
        std::fs::write(ws.join("sub/.ipynb_checkpoints/b-checkpoint.ipynb"), "{}").unwrap();
        std::fs::write(ws.join("notes.txt"), "x").unwrap();
        let names: Vec<String> = list(t.path(), "ann")
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(names, ["a.ipynb", "sub/b.ipynb"]);
        assert_eq!(
            write_new(t.path(), "ann", "a.ipynb", b"new").unwrap(),
            "a-1.ipynb"
        );
        assert_eq!(std::fs::read(ws.join("a.ipynb")).unwrap(), b"{}");
        assert_eq!(read(t.path(), "ann", "a-1.ipynb").unwrap(), b"new");
        assert!(matches!(
            read(t.path(), "ann", "missing.ipynb"),
            Err(WorkspaceError::NotFound(_))
        ));
    }
}
