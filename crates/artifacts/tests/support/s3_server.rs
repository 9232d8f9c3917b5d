//! A real S3 server for tests: s3s-fs (files under a folder) behind s3s's
//! SigV4 checks, served on 127.0.0.1 from the current tokio runtime.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// What the server was asked, for tests to check how a client talked to it.
#[derive(Default)]
pub struct Seen {
    /// Multipart upload parts received (`PUT ...?partNumber=N&uploadId=...`).
    pub parts: AtomicUsize,
}

/// Serve `root` (each sub-folder is a bucket) on a free loopback port,
/// accepting only requests signed with `access_key`/`secret_key`.
pub async fn start(
    root: &Path,
    access_key: &str,
    secret_key: &str,
) -> std::io::Result<(SocketAddr, Arc<Seen>)> {
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let mut b = S3ServiceBuilder::new(fs);
    b.set_auth(SimpleAuth::from_single(access_key, secret_key));
    let service = b.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        while let Ok((socket, _)) = listener.accept().await {
            let (service, counts) = (service.clone(), counts.clone());
            let counted = hyper::service::service_fn(move |req: hyper::Request<_>| {
                if req.method() == hyper::Method::PUT
                    && req.uri().query().is_some_and(|q| q.contains("partNumber="))
                {
                    counts.parts.fetch_add(1, Ordering::Relaxed);
                }
                hyper::service::Service::call(&service, req)
            });
            let conn = http
                .serve_connection(TokioIo::new(socket), counted)
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    Ok((addr, seen))
}
