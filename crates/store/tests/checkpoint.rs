//! The SQLite store copies its write-ahead log into the database file in the
//! background, beside the writer: a steady stream of commits does not wait
//! for checkpoints, and the log does not grow without bound.

use store::*;

/// The database file's size.
fn size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn commits_reach_the_database_file_while_the_store_is_open() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = dir.path().join("metadata.db");
    let s = SqlStore::open(&db).expect("a store");
    let run = s
        .create_run(CreateRun {
            experiment_id: 0,
            user_id: "u".into(),
            run_name: Some("bulk".into()),
            ..Default::default()
        })
        .expect("a run")
        .run_id;
    let before = size(&db);
    // about 12,000 pages (48 MB; some 90 MB of WAL frames with the indexes)
    // through the WAL, one commit each: past the wake-up threshold (1,000
    // pages) many times, and below the writer's own fallback (20,000)
    let value = "x".repeat(6_000);
    for i in 0..6_000 {
        let p = Param::new(format!("p{i}"), value.clone());
        s.log_batch(&run, &[], std::slice::from_ref(&p), &[])
            .expect("a commit");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while size(&db) < before + 16_000_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        size(&db) >= before + 16_000_000,
        "the database file did not grow: {} → {} bytes (WAL {} bytes)",
        before,
        size(&db),
        size(&dir.path().join("metadata.db-wal"))
    );
    // and the log started over rather than growing with every commit (its
    // file keeps its largest size: that of the longest stretch between two
    // starts, which depends on how fast the checkpointer ran alongside)
    let wal = size(&dir.path().join("metadata.db-wal"));
    assert!(wal < 60_000_000, "the WAL holds {wal} bytes");
    drop(s);
    // closed, the database file alone holds everything (the WAL is gone)
    assert!(
        !dir.path().join("metadata.db-wal").exists(),
        "the WAL outlived the store"
    );
    let again = SqlStore::open(&db).expect("reopened");
    assert_eq!(again.get_run(&run).expect("the run").params.len(), 6_000);
}
