//! The S3 backend against a real S3 server that checks SigV4 signatures
//! (s3s-fs, in-process on 127.0.0.1).

mod support {
    pub mod s3_server;
}

use artifacts::{ArtifactPath, ArtifactStore, S3Settings, Secret};
use bytes::Bytes;
use futures::StreamExt;

const KEY: &str = "atelier-test";
const SECRET: &str = "s3cr3t-Key-for-tests";

struct Server {
    dir: tempfile::TempDir,
    endpoint: String,
    seen: std::sync::Arc<support::s3_server::Seen>,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ml-artifacts")).unwrap();
    let (addr, seen) = support::s3_server::start(dir.path(), KEY, SECRET)
        .await
        .unwrap();
    Server {
        dir,
        endpoint: format!("http://{addr}"),
        seen,
    }
}

fn settings(srv: &Server, url: &str, secret: &str) -> S3Settings {
    S3Settings {
        endpoint: Some(srv.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(KEY.into()),
        secret_access_key: Some(Secret::new(secret)),
        ..S3Settings::from_url(url).unwrap()
    }
}

fn p(x: &str) -> ArtifactPath {
    ArtifactPath::parse(x).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_list_delete_under_a_prefix() {
    let srv = server().await;
    let s = ArtifactStore::s3(&settings(&srv, "s3://ml-artifacts/atelier", SECRET))
        .await
        .unwrap();
    assert!(!s.is_local());
    // small files go in one request each
    s.put_bytes(&p("small.bin"), Bytes::from(vec![1u8; 1 << 20]))
        .await
        .unwrap();
    assert_eq!(srv.seen.parts.load(std::sync::atomic::Ordering::Relaxed), 0);
    s.delete(&p("small.bin")).await.unwrap();
    assert!(
        s.describe()
            .starts_with("s3://ml-artifacts/atelier at http://127.0.0.1:")
    );
    s.put_bytes(&p("1/r/artifacts/a.txt"), Bytes::from_static(b"hello"))
        .await
        .unwrap();
    s.put_bytes(&p("1/r/artifacts/sub/b.json"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    // objects land under the prefix, as plain files of the S3 server
    assert_eq!(
        std::fs::read(
            srv.dir
                .path()
                .join("ml-artifacts/atelier/1/r/artifacts/a.txt")
        )
        .unwrap(),
        b"hello"
    );
    // the start-up probe left nothing behind
    let root: Vec<String> = s
        .list(&p(""))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(root, vec!["1".to_string()]);
    assert_eq!(
        &s.read_all(&p("1/r/artifacts/a.txt")).await.unwrap()[..],
        b"hello"
    );
    assert_eq!(
        &s.read_range(&p("1/r/artifacts/a.txt"), 1, 3).await.unwrap()[..],
        b"ell"
    );
    let l = s.list(&p("1/r/artifacts")).await.unwrap();
    let names: Vec<(&str, bool, Option<u64>)> = l
        .iter()
        .map(|e| (e.name.as_str(), e.is_dir, e.size))
        .collect();
    assert_eq!(names, vec![("a.txt", false, Some(5)), ("sub", true, None)]);
    assert_eq!(
        s.list_recursive(&p("1/r")).await.unwrap(),
        vec![
            ("1/r/artifacts/a.txt".to_string(), 5),
            ("1/r/artifacts/sub/b.json".to_string(), 2)
        ]
    );
    assert_eq!(s.size(&p("1/r/artifacts/a.txt")).await.unwrap(), Some(5));
    assert_eq!(s.size(&p("1/r/artifacts/none")).await.unwrap(), None);
    // code that needs a file on this machine gets a downloaded copy
    assert_eq!(s.local_file(&p("1/r/artifacts/a.txt")).unwrap(), None);
    let tmp = tempfile::tempdir().unwrap();
    let f = s
        .fetch_local(&p("1/r/artifacts/a.txt"), tmp.path())
        .await
        .unwrap();
    assert_eq!(std::fs::read(f).unwrap(), b"hello");
    assert!(matches!(
        s.fetch_local(&p("1/r/artifacts/none.txt"), tmp.path())
            .await,
        Err(artifacts::ArtifactError::NotFound(_))
    ));
    // a directory goes as a whole
    s.delete(&p("1/r/artifacts/sub")).await.unwrap();
    assert_eq!(s.list(&p("1/r/artifacts")).await.unwrap().len(), 1);
    s.delete(&p("1/r/artifacts/a.txt")).await.unwrap();
    assert!(matches!(
        s.get(&p("1/r/artifacts/a.txt")).await,
        Err(artifacts::ArtifactError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_artifacts_go_up_in_parts_and_stream_down() {
    let srv = server().await;
    let s = ArtifactStore::s3(&settings(&srv, "s3://ml-artifacts", SECRET))
        .await
        .unwrap();
    // 21 MiB of non-repeating bytes, sent in 1 MiB chunks: more than the
    // 8 MiB single-put limit, so a multipart upload of 5 MiB parts
    let total = 21usize << 20;
    let data: Vec<u8> = (0..total)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect();
    let data = Bytes::from(data);
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> = (0..21)
        .map(|i| Ok(data.slice(i << 20..(i + 1) << 20)))
        .collect();
    let path = p("big/model.bin");
    assert_eq!(
        s.put_stream(&path, futures::stream::iter(chunks))
            .await
            .unwrap(),
        total as u64
    );
    // five parts (5 MiB each, the last 1 MiB) went up, and the object is whole
    assert_eq!(srv.seen.parts.load(std::sync::atomic::Ordering::Relaxed), 5);
    let on_disk = std::fs::read(srv.dir.path().join("ml-artifacts/big/model.bin")).unwrap();
    assert!(on_disk == data, "the stored object differs from the upload");
    // the download is a stream of pieces, never the whole file at once
    let mut d = s.get(&path).await.unwrap();
    assert_eq!(d.size, total as u64);
    let (mut n, mut pieces, mut largest, mut same) = (0usize, 0usize, 0usize, true);
    while let Some(c) = d.stream.next().await {
        let c = c.unwrap();
        same &= c[..] == data[n..n + c.len()];
        n += c.len();
        pieces += 1;
        largest = largest.max(c.len());
    }
    assert_eq!(n, total);
    assert!(same, "downloaded bytes differ");
    assert!(
        pieces > 10 && largest < 4 << 20,
        "{pieces} pieces, largest {largest}"
    );
    // and a local copy (for jobs that read files) is the same file
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.bin");
    assert_eq!(s.download_to(&path, &out).await.unwrap(), total as u64);
    assert!(std::fs::read(&out).unwrap() == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_bucket_stops_start_up_with_the_setting_to_fix() {
    let srv = server().await;
    let e = ArtifactStore::s3(&settings(
        &srv,
        "s3://ml-artifacts/atelier",
        "not-the-secret",
    ))
    .await
    .err()
    .expect("a wrong secret was accepted")
    .to_string();
    assert!(e.contains("refused the credentials"), "{e}");
    assert!(e.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
    assert!(!e.contains("not-the-secret") && !e.contains(SECRET), "{e}");
    // nothing was written with the wrong key
    assert!(!srv.dir.path().join("ml-artifacts/atelier").exists());

    let mut wrong_key = settings(&srv, "s3://ml-artifacts", SECRET);
    wrong_key.access_key_id = Some("nobody".into());
    let e = ArtifactStore::s3(&wrong_key)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");

    let e = ArtifactStore::s3(&settings(&srv, "s3://no-such-bucket/x", SECRET))
        .await
        .err()
        .expect("a missing bucket was accepted")
        .to_string();
    assert!(e.contains("'no-such-bucket' does not exist"), "{e}");
    assert!(e.contains("--artifacts"), "{e}");

    // nothing listening: a clear error, quickly (no minutes of retries)
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut down = settings(&srv, "s3://ml-artifacts", SECRET);
    down.endpoint = Some(format!("http://127.0.0.1:{port}"));
    let t = std::time::Instant::now();
    let e = ArtifactStore::s3(&down).await.err().unwrap().to_string();
    assert!(e.contains("--s3-endpoint"), "{e}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        t.elapsed()
    );

    let mut ftp = settings(&srv, "s3://ml-artifacts", SECRET);
    ftp.endpoint = Some("minio:9000".into());
    let e = ArtifactStore::s3(&ftp).await.err().unwrap().to_string();
    assert!(e.contains("--s3-endpoint minio:9000"), "{e}");
}
