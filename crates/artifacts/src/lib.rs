//! # artifacts — run artifacts on an object store
//!
//! Brief overview: [`ArtifactStore`] stores files under one root through the
//! `object_store` crate: a local folder, or (cargo feature `s3`) a prefix of
//! an S3-compatible bucket ([`ArtifactStore::s3`], see [`s3`]). Every path a client supplies goes through
//! [`ArtifactPath::parse`] first, which rejects anything that could escape
//! the root: `..` and `.` segments, absolute paths, backslashes, NUL and
//! control characters, and percent-encoded separators or dots left over
//! from double encoding. On the local backend, symlinks anywhere below the
//! root are refused too, so a planted link cannot point outside.
//!
//! The crate knows nothing about runs or HTTP: callers decide which prefix a
//! request may touch.

pub mod datasets;
pub mod projects;

/// The path in this store that an `mlflow-artifacts:` URI names
/// (`mlflow-artifacts:/a/b` → `a/b`); `None` for any other location.
pub fn proxied_path(uri: &str) -> Option<&str> {
    uri.strip_prefix("mlflow-artifacts:")
        .map(|rest| rest.trim_start_matches('/'))
}
pub mod s3;

pub use s3::{S3Settings, Secret};

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The path is not acceptable (traversal, absolute, bad characters...).
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    NotFound(String),
    /// Storage failed: not the client's fault.
    #[error("artifact storage error: {0}")]
    Storage(String),
}

/// The artifact store cannot be opened as configured (start-up only); the
/// message names the setting to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;

/// A validated, root-relative artifact path ("" is the root itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath(String);

impl ArtifactPath {
    /// Validate a client-supplied, already percent-decoded path.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |why: &str| {
            Err(ArtifactError::InvalidPath(format!(
                "Invalid artifact path '{}': {why}",
                raw.escape_debug()
            )))
        };
        if raw.starts_with('/') {
            return bad(
                "absolute paths are not allowed; give a path relative to the artifact root",
            );
        }
        if raw.contains('\\') {
            return bad("backslashes are not allowed");
        }
        if raw.chars().any(|c| c.is_control()) {
            return bad("control characters are not allowed");
        }
        let lower = raw.to_ascii_lowercase();
        if lower.contains("%2e")
            || lower.contains("%2f")
            || lower.contains("%5c")
            || lower.contains("%00")
            || lower.contains("%25")
        {
            return bad("encoded '.', '/' or '\\' characters are not allowed");
        }
        let trimmed = raw.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(ArtifactPath(String::new()));
        }
        for seg in trimmed.split('/') {
            if seg.is_empty() {
                return bad("empty path segments ('//') are not allowed");
            }
            if seg == "." || seg == ".." {
                return bad("'.' and '..' segments are not allowed");
            }
            if seg.len() >= 2
                && seg.as_bytes()[1] == b':'
                && seg.as_bytes()[0].is_ascii_alphabetic()
                && raw.starts_with(seg)
            {
                return bad("drive-letter paths are not allowed");
            }
        }
        Ok(ArtifactPath(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this path is `prefix` itself or lies below it.
    pub fn starts_with(&self, prefix: &ArtifactPath) -> bool {
        prefix.0.is_empty()
            || self.0 == prefix.0
            || (self.0.starts_with(&prefix.0)
                && self.0.as_bytes().get(prefix.0.len()) == Some(&b'/'))
    }

    /// `self/child`, validating `child`.
    pub fn join(&self, child: &str) -> Result<Self> {
        let c = ArtifactPath::parse(child)?;
        Ok(match (self.is_root(), c.is_root()) {
            (true, _) => c,
            (false, true) => self.clone(),
            (false, false) => ArtifactPath(format!("{}/{}", self.0, c.0)),
        })
    }

    fn obj(&self) -> Result<ObjPath> {
        ObjPath::parse(&self.0).map_err(|e| {
            ArtifactError::InvalidPath(format!("Invalid artifact path '{}': {e}", self.0))
        })
    }
}

/// One entry of a directory listing; `name` is relative to the listed dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: Option<u64>,
}

/// A file being read: its size and its bytes as a stream.
pub struct Download {
    pub size: u64,
    pub stream: futures::stream::BoxStream<'static, Result<Bytes>>,
}

#[derive(Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    /// The local root, when the backend is a folder (for symlink checks).
    local_root: Option<PathBuf>,
    description: String,
}

fn storage(e: object_store::Error) -> ArtifactError {
    match e {
        object_store::Error::NotFound { path, .. } => {
            ArtifactError::NotFound(format!("No artifact at '{path}'"))
        }
        other => ArtifactError::Storage(other.to_string()),
    }
}

/// Uploads at most this big go in one piece; larger ones stream in parts.
const SINGLE_PUT_LIMIT: usize = 8 << 20;

impl ArtifactStore {
    /// Artifacts in a local folder (created if needed).
    pub fn local(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| {
            ArtifactError::Storage(format!("cannot create {}: {e}", root.display()))
        })?;
        let root = root.canonicalize().map_err(|e| {
            ArtifactError::Storage(format!("cannot resolve {}: {e}", root.display()))
        })?;
        let fs = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| ArtifactError::Storage(e.to_string()))?
            .with_automatic_cleanup(true);
        Ok(ArtifactStore {
            store: Arc::new(fs),
            description: format!("local folder {}", root.display()),
            local_root: Some(root),
        })
    }

    /// Artifacts under a prefix of an S3-compatible bucket, once a small
    /// probe object was written, read back and deleted there (so wrong
    /// credentials or a missing bucket stop start-up with
    /// [`ConfigError`] naming the setting to fix). Needs the `s3`
    /// cargo feature.
    pub async fn s3(settings: &S3Settings) -> Result<Self, ConfigError> {
        #[cfg(feature = "s3")]
        {
            let store = s3::backend::open(settings).await?;
            let at = settings
                .endpoint
                .as_deref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default();
            Ok(ArtifactStore {
                store,
                local_root: None,
                description: format!("{}{at}", settings.url()),
            })
        }
        #[cfg(not(feature = "s3"))]
        {
            Err(ConfigError(format!(
                "--artifacts {}: this atelier was built without S3 support (build it with the cargo feature `s3`, on by default)",
                settings.url()
            )))
        }
    }

    /// Whether the backend is a folder on this machine.
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// A file's size, `None` when there is no file at `path`.
    pub async fn size(&self, path: &ArtifactPath) -> Result<Option<u64>> {
        if path.is_root() {
            return Ok(None);
        }
        self.check_links(path)?;
        match self.store.head(&path.obj()?).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Refuse paths that traverse a symlink below the local root.
    fn check_links(&self, path: &ArtifactPath) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let mut cur = root.clone();
        for seg in path.as_str().split('/').filter(|s| !s.is_empty()) {
            cur.push(seg);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ArtifactError::InvalidPath(format!(
                        "Invalid artifact path '{}': it goes through a symbolic link, which is not allowed",
                        path.as_str()
                    )));
                }
                Ok(_) => {}
                Err(_) => break, // does not exist (yet): nothing below can be a link
            }
        }
        Ok(())
    }

    /// Store a file from a stream of chunks; returns its size.
    pub async fn put_stream<S, E>(&self, path: &ArtifactPath, body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        if path.is_root() {
            return Err(ArtifactError::InvalidPath(
                "An artifact upload needs a file path".into(),
            ));
        }
        self.check_links(path)?;
        let loc = path.obj()?;
        let mut body = body;
        let mut first: Vec<u8> = Vec::new();
        let mut total = 0u64;
        // Small files (the common case) are written in one put.
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| ArtifactError::InvalidPath(format!("upload interrupted: {e}")))?;
            total += chunk.len() as u64;
            first.extend_from_slice(&chunk);
            if first.len() > SINGLE_PUT_LIMIT {
                let upload = self.store.put_multipart(&loc).await.map_err(storage)?;
                let mut w = WriteMultipart::new(upload);
                w.write(&first);
                while let Some(chunk) = body.next().await {
                    let chunk = match chunk {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = w.abort().await;
                            return Err(ArtifactError::InvalidPath(format!(
                                "upload interrupted: {e}"
                            )));
                        }
                    };
                    total += chunk.len() as u64;
                    w.wait_for_capacity(4).await.map_err(storage)?;
                    w.write(&chunk);
                }
                w.finish().await.map_err(storage)?;
                return Ok(total);
            }
        }
        self.store
            .put(&loc, PutPayload::from(first))
            .await
            .map_err(storage)?;
        Ok(total)
    }

    /// Store a local file, read in 1 MiB chunks (never whole in memory).
    pub async fn put_file(&self, path: &ArtifactPath, local: &std::path::Path) -> Result<u64> {
        use tokio::io::AsyncReadExt;
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|e| ArtifactError::Storage(format!("cannot read {}: {e}", local.display())))?;
        let chunks = futures::stream::unfold(Some(file), |f| async move {
            let mut f = f?;
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        self.put_stream(path, Box::pin(chunks)).await
    }

    pub async fn put_bytes(&self, path: &ArtifactPath, data: Bytes) -> Result<u64> {
        let s = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
        self.put_stream(path, Box::pin(s)).await
    }

    pub async fn get(&self, path: &ArtifactPath) -> Result<Download> {
        if path.is_root() {
            return Err(ArtifactError::InvalidPath(
                "Give the path of a file to download".into(),
            ));
        }
        self.check_links(path)?;
        let r = self.store.get(&path.obj()?).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                ArtifactError::NotFound(format!("No artifact file at '{}'", path.as_str()))
            }
            other => storage(other),
        })?;
        let size = r.meta.size;
        let stream = r.into_stream().map_err(storage).boxed();
        Ok(Download { size, stream })
    }

    /// The file's path on this machine when the backend is a local folder
    /// (after the same checks as every other access); `None` otherwise.
    pub fn local_file(&self, path: &ArtifactPath) -> Result<Option<PathBuf>> {
        let Some(root) = &self.local_root else {
            return Ok(None);
        };
        self.check_links(path)?;
        let mut p = root.clone();
        p.extend(path.as_str().split('/').filter(|s| !s.is_empty()));
        Ok(Some(p))
    }

    /// A file's path on this machine: the file itself when the backend is a
    /// local folder, else a copy downloaded into the folder `tmp`.
    pub async fn fetch_local(&self, path: &ArtifactPath, tmp: &std::path::Path) -> Result<PathBuf> {
        if let Some(p) = self.local_file(path)? {
            if !p.exists() {
                return Err(ArtifactError::NotFound(format!(
                    "No artifact file at '{}'",
                    path.as_str()
                )));
            }
            return Ok(p);
        }
        let name = path.as_str().rsplit('/').next().unwrap_or("data");
        let dest = tmp.join(name);
        self.download_to(path, &dest).await?;
        Ok(dest)
    }

    /// Copy a file to `dest` on this machine, streaming; returns its size.
    pub async fn download_to(&self, path: &ArtifactPath, dest: &std::path::Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let mut d = self.get(path).await?;
        let io = |e: std::io::Error| ArtifactError::Storage(format!("{}: {e}", dest.display()));
        let mut f = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut n = 0u64;
        while let Some(chunk) = d.stream.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        Ok(n)
    }

    /// Read a whole (small) file.
    /// Bytes `start..start + len` of a file (fewer at its end; none past it),
    /// read without the rest of the file.
    pub async fn read_range(&self, path: &ArtifactPath, start: u64, len: u64) -> Result<Bytes> {
        self.check_links(path)?;
        let loc = path.obj()?;
        let size = self
            .store
            .head(&loc)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    ArtifactError::NotFound(format!("No artifact at '{}'", path.as_str()))
                }
                other => storage(other),
            })?
            .size;
        let start = start.min(size);
        let end = start.saturating_add(len).min(size);
        if start == end {
            return Ok(Bytes::new());
        }
        self.store
            .get_range(&loc, start..end)
            .await
            .map_err(storage)
    }

    pub async fn read_all(&self, path: &ArtifactPath) -> Result<Bytes> {
        let d = self.get(path).await?;
        let chunks: Vec<Bytes> = d.stream.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Immediate children of a directory; an empty list when it does not exist.
    pub async fn list(&self, dir: &ArtifactPath) -> Result<Vec<Entry>> {
        self.check_links(dir)?;
        let prefix = if dir.is_root() {
            None
        } else {
            Some(dir.obj()?)
        };
        let res = self
            .store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map_err(storage)?;
        let base_len = if dir.is_root() {
            0
        } else {
            dir.as_str().len() + 1
        };
        let mut out: Vec<Entry> = Vec::new();
        for p in res.common_prefixes {
            let s = p.to_string();
            out.push(Entry {
                name: s.get(base_len..).unwrap_or(&s).to_string(),
                is_dir: true,
                size: None,
            });
        }
        for o in res.objects {
            let s = o.location.to_string();
            out.push(Entry {
                name: s.get(base_len..).unwrap_or(&s).to_string(),
                is_dir: false,
                size: Some(o.size),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every file below `dir` (recursive), as root-relative paths with sizes.
    pub async fn list_recursive(&self, dir: &ArtifactPath) -> Result<Vec<(String, u64)>> {
        self.check_links(dir)?;
        let prefix = if dir.is_root() {
            None
        } else {
            Some(dir.obj()?)
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(storage)?;
        Ok(metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect())
    }

    /// Delete a file, or a whole directory tree. Missing paths are not an error.
    pub async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        if path.is_root() {
            return Err(ArtifactError::InvalidPath(
                "Refusing to delete the artifact root".into(),
            ));
        }
        self.check_links(path)?;
        let below = self.list_recursive(path).await?;
        if below.is_empty() {
            return match self.store.delete(&path.obj()?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(storage(e)),
            };
        }
        for (p, _) in below {
            let p = ObjPath::parse(&p).map_err(|e| ArtifactError::Storage(e.to_string()))?;
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_every_traversal_form() {
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "a/./b",
            "/etc/passwd",
            "//etc/passwd",
            "a\\..\\b",
            "a/%2e%2e/b",
            "a/%2E%2e%2Fb",
            "a/%252e",
            "a//b",
            "a/\0b",
            "C:/windows",
        ] {
            assert!(
                matches!(ArtifactPath::parse(bad), Err(ArtifactError::InvalidPath(_))),
                "{bad:?} was accepted"
            );
        }
        assert_eq!(
            ArtifactPath::parse("1/abc/artifacts/x.txt")
                .unwrap()
                .as_str(),
            "1/abc/artifacts/x.txt"
        );
        assert!(ArtifactPath::parse("dir/").unwrap().as_str() == "dir");
        assert!(ArtifactPath::parse("").unwrap().is_root());
        assert!(
            ArtifactPath::parse("a..b/c.d").is_ok(),
            "dots inside names are fine"
        );
    }

    #[test]
    fn prefix_checks_respect_segment_boundaries() {
        let run = ArtifactPath::parse("1/run1/artifacts").unwrap();
        assert!(
            ArtifactPath::parse("1/run1/artifacts/x")
                .unwrap()
                .starts_with(&run)
        );
        assert!(
            ArtifactPath::parse("1/run1/artifacts")
                .unwrap()
                .starts_with(&run)
        );
        assert!(
            !ArtifactPath::parse("1/run1/artifactsX/x")
                .unwrap()
                .starts_with(&run)
        );
        assert!(
            !ArtifactPath::parse("1/run2/artifacts/x")
                .unwrap()
                .starts_with(&run)
        );
    }

    #[tokio::test]
    async fn round_trips_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let s = ArtifactStore::local(dir.path().join("art")).unwrap();
        let p = |x: &str| ArtifactPath::parse(x).unwrap();
        s.put_bytes(&p("1/r/artifacts/a.txt"), Bytes::from_static(b"hello"))
            .await
            .unwrap();
        s.put_bytes(&p("1/r/artifacts/sub/b.json"), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(
            &s.read_all(&p("1/r/artifacts/a.txt")).await.unwrap()[..],
            b"hello"
        );
        let l = s.list(&p("1/r/artifacts")).await.unwrap();
        assert_eq!(
            l,
            vec![
                Entry {
                    name: "a.txt".into(),
                    is_dir: false,
                    size: Some(5)
                },
                Entry {
                    name: "sub".into(),
                    is_dir: true,
                    size: None
                },
            ]
        );
        // a local copy, and the local path, hold the same bytes
        let out = dir.path().join("copy.txt");
        assert_eq!(
            s.download_to(&p("1/r/artifacts/a.txt"), &out)
                .await
                .unwrap(),
            5
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"hello");
        let local = s.local_file(&p("1/r/artifacts/a.txt")).unwrap().unwrap();
        assert_eq!(std::fs::read(local).unwrap(), b"hello");
        let fetched = s
            .fetch_local(&p("1/r/artifacts/a.txt"), dir.path())
            .await
            .unwrap();
        assert_eq!(std::fs::read(fetched).unwrap(), b"hello");
        assert!(matches!(
            s.fetch_local(&p("1/r/artifacts/none.txt"), dir.path())
                .await,
            Err(ArtifactError::NotFound(_))
        ));
        s.delete(&p("1/r/artifacts/sub")).await.unwrap();
        assert_eq!(s.list(&p("1/r/artifacts")).await.unwrap().len(), 1);
        assert!(matches!(
            s.get(&p("1/r/artifacts/nope")).await,
            Err(ArtifactError::NotFound(_))
        ));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn refuses_symlinks_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s3cret").unwrap();
        let s = ArtifactStore::local(dir.path().join("art")).unwrap();
        std::fs::create_dir_all(dir.path().join("art/1/r/artifacts")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("art/1/r/artifacts/link")).unwrap();
        let p = ArtifactPath::parse("1/r/artifacts/link/secret").unwrap();
        assert!(matches!(
            s.get(&p).await,
            Err(ArtifactError::InvalidPath(_))
        ));
        assert!(matches!(
            s.put_bytes(&p, Bytes::from_static(b"x")).await,
            Err(ArtifactError::InvalidPath(_))
        ));
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"s3cret");
    }

    #[tokio::test]
    async fn streams_large_uploads_in_parts() {
        let dir = tempfile::tempdir().unwrap();
        let s = ArtifactStore::local(dir.path().join("art")).unwrap();
        let chunk = Bytes::from(vec![7u8; 1 << 20]);
        let chunks: Vec<std::result::Result<Bytes, std::convert::Infallible>> =
            (0..12).map(|_| Ok(chunk.clone())).collect();
        let p = ArtifactPath::parse("big/file.bin").unwrap();
        let n = s
            .put_stream(&p, futures::stream::iter(chunks))
            .await
            .unwrap();
        assert_eq!(n, 12 << 20);
        assert_eq!(s.get(&p).await.unwrap().size, 12 << 20);
    }
}
