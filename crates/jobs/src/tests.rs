use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use store::{JobStatus, MetadataStore, SqlStore};

use crate::*;

/// Counts to `spec.n`, reporting each step; fails on `spec.fail`.
struct Counter;
impl Runner for Counter {
    fn kind(&self) -> &'static str {
        "count"
    }
    fn check(&self, spec: &Value, _: &CheckContext) -> Result<String, String> {
        match spec.get("n").and_then(Value::as_u64) {
            Some(n) => Ok(format!("count to {n}")),
            None => Err("give n, a whole number".into()),
        }
    }
    fn run(&self, ctx: &JobContext) -> Result<Value, JobFailure> {
        let n = ctx.spec["n"].as_u64().unwrap_or(0);
        for i in 1..=n {
            if ctx.cancelled() {
                return Err(JobFailure::Cancelled);
            }
            ctx.progress(&json!({ "done": i }));
            std::thread::sleep(Duration::from_millis(20));
        }
        if ctx.spec.get("fail").is_some() {
            return Err(JobFailure::msg("asked to fail"));
        }
        if ctx.spec.get("panic").is_some() {
            panic!("boom");
        }
        Ok(json!({ "counted": n }))
    }
}

fn setup() -> (tempfile::TempDir, Arc<dyn MetadataStore>, ArtifactStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn MetadataStore> =
        Arc::new(SqlStore::open(dir.path().join("m.db")).expect("store"));
    let arts = ArtifactStore::local(dir.path().join("a")).expect("artifacts");
    (dir, store, arts)
}

fn wait(store: &dyn MetadataStore, id: &str) -> store::Job {
    let t = Instant::now();
    loop {
        let j = store.get_job(id).expect("job");
        if j.status.is_terminal() {
            return j;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "job {id} never ended"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_report_progress_and_record_their_outcome() {
    let (_d, store, arts) = setup();
    let q = Queue::start(store.clone(), arts, vec![Arc::new(Counter)], opts()).unwrap();
    let s = store.clone();
    let (ok, failed, panicked) = tokio::task::spawn_blocking(move || {
        let a = q.submit("count", json!({"n": 3})).unwrap();
        assert_eq!(a.name, "count to 3");
        let b = q.submit("count", json!({"n": 1, "fail": true})).unwrap();
        let c = q.submit("count", json!({"n": 1, "panic": true})).unwrap();
        let out = (wait(&*s, &a.id), wait(&*s, &b.id), wait(&*s, &c.id));
        // the worker survives a panicking job
        let d = q.submit("count", json!({"n": 1})).unwrap();
        assert_eq!(wait(&*s, &d.id).status, JobStatus::Succeeded);
        q.shutdown();
        out
    })
    .await
    .unwrap();
    assert_eq!(ok.status, JobStatus::Succeeded);
    assert_eq!(ok.progress, r#"{"done":3}"#);
    assert_eq!(ok.result, r#"{"counted":3}"#);
    assert!(ok.started_ms.is_some() && ok.ended_ms.is_some());
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("asked to fail"));
    assert_eq!(panicked.status, JobStatus::Failed);
    assert!(panicked.error.unwrap_or_default().contains("crashed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_and_kinds_are_refused_before_queueing() {
    let (_d, store, arts) = setup();
    let q = Queue::start(store.clone(), arts, vec![Arc::new(Counter)], opts()).unwrap();
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        match q.submit("count", json!({"n": "many"})) {
            Err(JobsError::InvalidSpec(m)) => assert!(m.contains("whole number")),
            other => panic!("{other:?}"),
        }
        match q.submit("paint", json!({})) {
            Err(JobsError::UnknownKind(k, known)) => {
                assert_eq!(k, "paint");
                assert_eq!(known, "count");
            }
            other => panic!("{other:?}"),
        }
        assert!(s.list_jobs(None, None, 10).unwrap().is_empty());
        q.shutdown();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_and_queued_jobs_can_be_cancelled() {
    let (_d, store, arts) = setup();
    let q = Queue::start(store.clone(), arts, vec![Arc::new(Counter)], opts()).unwrap();
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        let long = q.submit("count", json!({"n": 100_000})).unwrap();
        let queued = q.submit("count", json!({"n": 1})).unwrap();
        // wait until the first one runs
        let t = Instant::now();
        while s.get_job(&long.id).unwrap().status != JobStatus::Running {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(5));
        }
        let c = q.cancel(&queued.id).unwrap();
        assert_eq!(c.status, JobStatus::Cancelled, "a queued job stops at once");
        q.cancel(&long.id).unwrap();
        let l = wait(&*s, &long.id);
        assert_eq!(l.status, JobStatus::Cancelled);
        assert!(t.elapsed() < Duration::from_secs(10));
        // the cancelled queued job never ran
        assert_eq!(s.get_job(&queued.id).unwrap().progress, "{}");
        assert!(matches!(
            q.cancel(&long.id),
            Err(JobsError::Store(StoreError::InvalidState(_)))
        ));
        q.shutdown();
    })
    .await
    .unwrap();
}

fn opts() -> QueueOptions {
    QueueOptions {
        workers: 1,
        lease: Duration::from_millis(600),
        tick: Duration::from_millis(20),
        worker_id: default_worker_id(),
    }
}

/// A job queued by a process that stopped is simply run by the next one;
/// one whose worker died mid-run is retried while attempts remain, then
/// failed with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_left_by_a_dead_process_is_run_retried_or_failed() {
    let (_d, store, arts) = setup();
    // two jobs claimed by a worker that then died (its lease runs out)
    let retry = store
        .queue_job(&store::NewJob {
            kind: "count",
            name: "retry me",
            spec: r#"{"n": 2}"#,
            owner: "ada",
            workspace: "default",
            max_attempts: 2,
        })
        .unwrap();
    let once = store.create_job("count", "once", r#"{"n": 2}"#).unwrap();
    for _ in 0..2 {
        store.claim_job("dead-worker", &["count"], 300).unwrap();
    }
    let left = store
        .create_job("count", "left queued", r#"{"n": 1}"#)
        .unwrap();
    let q = Queue::start(store.clone(), arts, vec![Arc::new(Counter)], opts()).unwrap();
    let s = store.clone();
    let (left, retry, once) = tokio::task::spawn_blocking(move || {
        let out = (
            wait(&*s, &left.id),
            wait(&*s, &retry.id),
            wait(&*s, &once.id),
        );
        q.shutdown();
        out
    })
    .await
    .unwrap();
    assert_eq!(left.status, JobStatus::Succeeded);
    assert_eq!(retry.status, JobStatus::Succeeded, "{:?}", retry.error);
    assert_eq!(retry.attempt, 2);
    assert!(retry.events.contains("Retrying"), "{}", retry.events);
    assert_eq!(once.status, JobStatus::Failed);
    let err = once.error.unwrap_or_default();
    assert!(
        err.contains("interrupted") && err.contains("dead-worker"),
        "{err}"
    );
}

/// Two queues on one database (two server processes) run every job exactly
/// once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_queues_on_one_database_run_each_job_once() {
    let (d, store, arts) = setup();
    let other: Arc<dyn MetadataStore> =
        Arc::new(SqlStore::open(d.path().join("m.db")).expect("second store"));
    let ids: Vec<String> = (0..60)
        .map(|_| store.create_job("count", "c", r#"{"n": 1}"#).unwrap().id)
        .collect();
    let q1 = Queue::start(store.clone(), arts.clone(), vec![Arc::new(Counter)], opts()).unwrap();
    let q2 = Queue::start(other, arts, vec![Arc::new(Counter)], opts()).unwrap();
    let s = store.clone();
    let jobs = tokio::task::spawn_blocking(move || {
        let jobs: Vec<_> = ids.iter().map(|id| wait(&*s, id)).collect();
        q1.shutdown();
        q2.shutdown();
        jobs
    })
    .await
    .unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.status == JobStatus::Succeeded && j.attempt == 1)
    );
    let workers: std::collections::HashSet<String> = jobs
        .iter()
        .map(|j| {
            let ev: Value = serde_json::from_str(&j.events).unwrap();
            ev[1]["message"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(workers.len(), 2, "both processes took work: {workers:?}");
}

/// Shutdown stops in-process work and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_running_work_with_the_reason() {
    let (_d, store, arts) = setup();
    let q = Queue::start(store.clone(), arts, vec![Arc::new(Counter)], opts()).unwrap();
    let s = store.clone();
    let j = tokio::task::spawn_blocking(move || {
        let j = q.submit("count", json!({"n": 100_000})).unwrap();
        let t = Instant::now();
        while s.get_job(&j.id).unwrap().status != JobStatus::Running {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(5));
        }
        q.shutdown();
        assert!(matches!(
            q.submit("count", json!({"n": 1})),
            Err(JobsError::ShuttingDown)
        ));
        s.get_job(&j.id).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(j.status, JobStatus::Cancelled);
    assert!(j.error.unwrap_or_default().contains("shut down"));
}
