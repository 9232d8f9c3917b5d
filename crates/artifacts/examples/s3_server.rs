//! A SigV4-checking S3 server on 127.0.0.1 for tests outside Rust (the
//! Python suite starts it): `s3_server ROOT ACCESS_KEY SECRET_KEY [BUCKET...]`.
//! Creates the buckets (folders under ROOT), prints `listening on
//! http://127.0.0.1:PORT` and serves until its standard input closes.

#[path = "../tests/support/s3_server.rs"]
mod s3_server;

use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, access, secret, buckets @ ..] = args.as_slice() else {
        eprintln!("usage: s3_server ROOT ACCESS_KEY SECRET_KEY [BUCKET...]");
        std::process::exit(2);
    };
    let root = std::path::Path::new(root);
    for b in buckets {
        std::fs::create_dir_all(root.join(b))?;
    }
    let (addr, _) = s3_server::start(root, access, secret).await?;
    println!("listening on http://{addr}");
    // the parent closes stdin (or exits) to stop the server
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    Ok(())
}
