//! Jobs and endpoints: small tables whose payloads are JSON owned by the
//! crates that run them.

use crate::db::{Conn, OptionalExtension, Row, params};

use super::{SqlStore, invalid, not_found};
use crate::*;

const JOB_COLS: &str = "id, kind, name, status, spec, progress, result, error, created, started, ended, cancel_requested, owner, worker, lease_until, attempt, max_attempts, handle, events, workspace";

fn job_row(r: &Row) -> crate::db::Result<Job> {
    let status: String = r.get(3)?;
    Ok(Job {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        // Only this module writes the column, always through `as_str`.
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        spec: r.get(4)?,
        progress: r.get(5)?,
        result: r.get(6)?,
        error: r.get(7)?,
        created_ms: r.get(8)?,
        started_ms: r.get(9)?,
        ended_ms: r.get(10)?,
        cancel_requested: r.get::<_, i64>(11)? != 0,
        owner: r.get(12)?,
        worker: r.get(13)?,
        lease_until_ms: r.get(14)?,
        attempt: r.get(15)?,
        max_attempts: r.get(16)?,
        handle: r.get(17)?,
        events: r.get(18)?,
        workspace: r.get(19)?,
    })
}

pub(super) fn create(s: &SqlStore, j: &NewJob) -> Result<Job> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = now_ms();
    let events =
        serde_json::json!([{"at_ms": now, "status": "Queued", "message": "queued"}]).to_string();
    s.write(|tx| {
        tx.execute(
            "INSERT INTO jobs (id, kind, name, status, spec, created, owner, max_attempts, events, workspace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                id,
                j.kind,
                j.name,
                JobStatus::Queued.as_str(),
                j.spec,
                now,
                j.owner,
                j.max_attempts.max(1),
                events,
                if j.workspace.is_empty() {
                    DEFAULT_WORKSPACE
                } else {
                    j.workspace
                }
            ],
        )?;
        get(tx, &id)
    })
}

/// `events` with one more `{at_ms, status, message}`.
fn push_event(events: &str, at_ms: i64, status: &str, message: &str) -> String {
    let mut v: Vec<serde_json::Value> = serde_json::from_str(events).unwrap_or_default();
    v.push(serde_json::json!({"at_ms": at_ms, "status": status, "message": message}));
    serde_json::Value::Array(v).to_string()
}

/// Placeholders `?, ?, …` for `n` values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(super) fn claim(tx: &Conn, worker: &str, kinds: &[&str], lease_ms: i64) -> Result<Option<Job>> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let now = now_ms();
    let k = marks(kinds.len());
    let mut args: Vec<&dyn crate::db::ToVal> = vec![&now];
    for kind in kinds {
        args.push(kind);
    }
    // an orphan: running on an executor, its worker gone
    let orphan: Option<String> = tx
        .prepare_cached(&format!(
            "SELECT id FROM jobs WHERE status = 'running' AND handle IS NOT NULL AND COALESCE(lease_until, 0) < ? AND kind IN ({k}) ORDER BY created, rowid LIMIT 1"
        ))?
        .query_row(args.as_slice(), |r| r.get(0))
        .optional()?;
    if let Some(id) = orphan {
        let job = get(tx, &id)?;
        let events = push_event(
            &job.events,
            now,
            "Reattaching",
            &format!(
                "worker {worker} took over from {}",
                job.worker.as_deref().unwrap_or("a stopped worker")
            ),
        );
        tx.execute(
            "UPDATE jobs SET worker = ?, lease_until = ?, events = ? WHERE id = ?",
            params![worker, now + lease_ms, events, id],
        )?;
        return Ok(Some(get(tx, &id)?));
    }
    let mut args: Vec<&dyn crate::db::ToVal> = Vec::new();
    for kind in kinds {
        args.push(kind);
    }
    let queued: Option<String> = tx
        .prepare_cached(&format!(
            "SELECT id FROM jobs WHERE status = 'queued' AND kind IN ({k}) ORDER BY created, rowid LIMIT 1"
        ))?
        .query_row(args.as_slice(), |r| r.get(0))
        .optional()?;
    let Some(id) = queued else {
        return Ok(None);
    };
    let job = get(tx, &id)?;
    let attempt = job.attempt + 1;
    let events = push_event(
        &job.events,
        now,
        "Starting",
        &if attempt > 1 {
            format!("attempt {attempt} of {} on {worker}", job.max_attempts)
        } else {
            format!("claimed by {worker}")
        },
    );
    tx.execute(
        "UPDATE jobs SET status = 'running', worker = ?, lease_until = ?, attempt = ?, started = COALESCE(started, ?), events = ?, handle = NULL WHERE id = ?",
        params![worker, now + lease_ms, attempt, now, events, id],
    )?;
    Ok(Some(get(tx, &id)?))
}

pub(super) fn renew(tx: &Conn, id: &str, worker: &str, lease_ms: i64) -> Result<Lease> {
    let n = tx.execute(
        "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND status = 'running'",
        params![now_ms() + lease_ms, id, worker],
    )?;
    if n == 0 {
        return Ok(Lease::Lost);
    }
    let cancel: i64 = tx.query_row(
        "SELECT cancel_requested FROM jobs WHERE id = ?",
        [id],
        |r| r.get(0),
    )?;
    Ok(Lease::Held {
        cancel_requested: cancel != 0,
    })
}

pub(super) fn cancel_requested(c: &Conn, ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let args: Vec<&dyn crate::db::ToVal> = ids.iter().map(|i| i as &dyn crate::db::ToVal).collect();
    let rows = c
        .prepare(&format!(
            "SELECT id FROM jobs WHERE cancel_requested = 1 AND id IN ({})",
            marks(ids.len())
        ))?
        .query_map(args.as_slice(), |r| r.get(0))?
        .collect::<crate::db::Result<Vec<String>>>()?;
    Ok(rows)
}

pub(super) fn release(tx: &Conn, id: &str, worker: &str) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET lease_until = 0 WHERE id = ? AND worker = ? AND status = 'running'",
        params![id, worker],
    )?;
    Ok(())
}

pub(super) fn reap_expired(tx: &Conn, reason: &str) -> Result<Vec<Job>> {
    let now = now_ms();
    let ids: Vec<String> = tx
        .prepare_cached(
            "SELECT id FROM jobs WHERE status = 'running' AND handle IS NULL AND COALESCE(lease_until, 0) < ? ORDER BY created, id",
        )?
        .query_map([now], |r| r.get(0))?
        .collect::<crate::db::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for id in ids {
        let job = get(tx, &id)?;
        let who = job.worker.as_deref().unwrap_or("its worker");
        if job.attempt < job.max_attempts && !job.cancel_requested {
            let events = push_event(
                &job.events,
                now,
                "Retrying",
                &format!(
                    "{who} stopped renewing its lease; queued for attempt {} of {}",
                    job.attempt + 1,
                    job.max_attempts
                ),
            );
            tx.execute(
                "UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL, events = ? WHERE id = ?",
                params![events, id],
            )?;
        } else {
            let msg = format!(
                "{reason} (worker {who}, attempt {} of {})",
                job.attempt, job.max_attempts
            );
            let events = push_event(&job.events, now, "Failed", &msg);
            tx.execute(
                "UPDATE jobs SET status = 'failed', error = ?, ended = ?, worker = NULL, lease_until = NULL, events = ? WHERE id = ?",
                params![msg, now, events, id],
            )?;
        }
        out.push(get(tx, &id)?);
    }
    Ok(out)
}

pub(super) fn get(c: &Conn, id: &str) -> Result<Job> {
    c.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?"))?
        .query_row([id], job_row)
        .optional()?
        .ok_or_else(|| not_found(format!("No job with id '{id}'")))
}

pub(super) fn list(
    c: &Conn,
    workspace: Option<&str>,
    kind: Option<&str>,
    limit: usize,
) -> Result<Vec<Job>> {
    let limit = limit.clamp(1, 10_000) as i64;
    // (one statement per combination of filters, so each can use its index)
    let mut conds = Vec::new();
    let mut args: Vec<crate::db::Val> = Vec::new();
    if let Some(w) = workspace {
        conds.push("workspace = ?");
        args.push(crate::db::Val::Text(w.to_string()));
    }
    if let Some(k) = kind {
        conds.push("kind = ?");
        args.push(crate::db::Val::Text(k.to_string()));
    }
    args.push(crate::db::Val::Integer(limit));
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let rows = c
        .prepare_cached(&format!(
            "SELECT {JOB_COLS} FROM jobs {filter} ORDER BY created DESC, id LIMIT ?"
        ))?
        .query_map(crate::db::params_from_iter(&args), job_row)?
        .collect::<crate::db::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn update(tx: &Conn, id: &str, upd: &JobUpdate) -> Result<Job> {
    let job = get(tx, id)?;
    if job.status.is_terminal() {
        return Err(StoreError::InvalidState(format!(
            "Job '{id}' has finished ({}); it cannot change",
            job.status.as_str()
        )));
    }
    if let Some(w) = &upd.worker
        && job.worker.as_deref() != Some(w.as_str())
    {
        return Err(StoreError::InvalidState(format!(
            "Job '{id}' is no longer claimed by {w}"
        )));
    }
    let now = now_ms();
    let status = upd.status.unwrap_or(job.status);
    let started = match (job.started_ms, status) {
        (None, JobStatus::Running) => Some(now),
        (s, _) => s,
    };
    let ended = status.is_terminal().then_some(now);
    let events = match &upd.event {
        Some((st, msg)) => push_event(&job.events, now, st, msg),
        None => job.events.clone(),
    };
    let (worker, lease) = if status.is_terminal() {
        (None, None)
    } else {
        (job.worker.clone(), job.lease_until_ms)
    };
    tx.execute(
        "UPDATE jobs SET status = ?, progress = ?, result = ?, error = ?, started = ?, ended = ?, handle = ?, events = ?, worker = ?, lease_until = ? WHERE id = ?",
        params![
            status.as_str(),
            upd.progress.as_deref().unwrap_or(&job.progress),
            upd.result.as_deref().unwrap_or(&job.result),
            upd.error.as_deref().or(job.error.as_deref()),
            started,
            ended,
            upd.handle.as_deref().or(job.handle.as_deref()),
            events,
            worker,
            lease,
            id
        ],
    )?;
    get(tx, id)
}

pub(super) fn request_cancel(tx: &Conn, id: &str) -> Result<Job> {
    let job = get(tx, id)?;
    match job.status {
        JobStatus::Queued => {
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET status = ?, cancel_requested = 1, ended = ?, error = ?, events = ? WHERE id = ?",
                params![
                    JobStatus::Cancelled.as_str(),
                    now,
                    "cancelled before it started",
                    push_event(&job.events, now, "Stopped", "cancelled before it started"),
                    id
                ],
            )?;
        }
        JobStatus::Running if !job.cancel_requested => {
            tx.execute(
                "UPDATE jobs SET cancel_requested = 1, events = ? WHERE id = ?",
                params![
                    push_event(&job.events, now_ms(), "Stopping", "stop requested"),
                    id
                ],
            )?;
        }
        JobStatus::Running => {}
        s => {
            return Err(StoreError::InvalidState(format!(
                "Job '{id}' has finished ({}); there is nothing to cancel",
                s.as_str()
            )));
        }
    }
    get(tx, id)
}

fn endpoint_row(r: &Row) -> crate::db::Result<Endpoint> {
    Ok(Endpoint {
        name: r.get(0)?,
        config: r.get(1)?,
        created_ms: r.get(2)?,
        updated_ms: r.get(3)?,
        workspace: r.get(4)?,
    })
}

/// A table of named JSON documents: (table name, what one is called).
pub(super) type Docs = (&'static str, &'static str);
pub(super) const ENDPOINTS: Docs = ("endpoints", "endpoint");
pub(super) const SCHEDULES: Docs = ("monitoring_schedules", "monitoring schedule");
pub(super) const NOTEBOOK_SCHEDULES: Docs = ("notebook_schedules", "notebook schedule");

/// Create document `name` in project `workspace`, or replace its configuration
/// when it is already there. Names are unique on the server: one that another
/// project holds is refused (`AlreadyExists`), its document left alone.
pub(super) fn put_doc(
    tx: &Conn,
    (table, what): Docs,
    workspace: &str,
    name: &str,
    config: &str,
) -> Result<Endpoint> {
    if name.is_empty() {
        return Err(invalid(format!("A {what} needs a name")));
    }
    let now = now_ms();
    let n = tx.execute(
        &format!(
            "INSERT INTO {table} (name, config, created, updated, workspace) VALUES (?1, ?2, ?3, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated = excluded.updated
             WHERE {table}.workspace = excluded.workspace"
        ),
        params![name, config, now, workspace],
    )?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "The {what} name '{name}' is taken by another project: {what} names are unique on this server, choose another"
        )));
    }
    get_doc(tx, (table, what), name)
}

/// Compare-and-swap on a document's configuration: written only while it is still
/// `expected`; returns whether it was.
pub(super) fn replace_doc(
    tx: &Conn,
    (table, _): Docs,
    name: &str,
    expected: &str,
    config: &str,
) -> Result<bool> {
    let n = tx.execute(
        &format!("UPDATE {table} SET config = ?3, updated = ?4 WHERE name = ?1 AND config = ?2"),
        params![name, expected, config, now_ms()],
    )?;
    Ok(n == 1)
}

pub(super) fn get_doc(c: &Conn, (table, what): Docs, name: &str) -> Result<Endpoint> {
    c.prepare_cached(&format!(
        "SELECT name, config, created, updated, workspace FROM {table} WHERE name = ?"
    ))?
    .query_row([name], endpoint_row)
    .optional()?
    .ok_or_else(|| not_found(format!("No {what} named '{name}'")))
}

pub(super) fn list_docs(c: &Conn, (table, _): Docs) -> Result<Vec<Endpoint>> {
    Ok(c.prepare_cached(&format!(
        "SELECT name, config, created, updated, workspace FROM {table} ORDER BY name"
    ))?
    .query_map([], endpoint_row)?
    .collect::<crate::db::Result<Vec<_>>>()?)
}

pub(super) fn delete_doc(tx: &Conn, (table, what): Docs, name: &str) -> Result<()> {
    if tx.execute(&format!("DELETE FROM {table} WHERE name = ?"), [name])? == 0 {
        return Err(not_found(format!("No {what} named '{name}'")));
    }
    Ok(())
}

pub(super) fn put_endpoint(
    tx: &Conn,
    workspace: &str,
    name: &str,
    config: &str,
) -> Result<Endpoint> {
    put_doc(tx, ENDPOINTS, workspace, name, config)
}
pub(super) fn get_endpoint(c: &Conn, name: &str) -> Result<Endpoint> {
    get_doc(c, ENDPOINTS, name)
}
pub(super) fn list_endpoints(c: &Conn) -> Result<Vec<Endpoint>> {
    list_docs(c, ENDPOINTS)
}
pub(super) fn delete_endpoint(tx: &Conn, name: &str) -> Result<()> {
    delete_doc(tx, ENDPOINTS, name)
}

pub(super) fn list_named(c: &Conn, kind: &str, name: &str, limit: usize) -> Result<Vec<Job>> {
    let limit = limit.clamp(1, 10_000) as i64;
    Ok(c.prepare_cached(&format!(
        "SELECT {JOB_COLS} FROM jobs WHERE kind = ? AND name = ? ORDER BY created DESC, id LIMIT ?"
    ))?
    .query_map(params![kind, name, limit], job_row)?
    .collect::<crate::db::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn store() -> (crate::scratch::Scratch, SqlStore) {
        let mut sc = crate::scratch::Scratch::new().expect("a scratch store");
        let s = sc.take();
        (sc, s)
    }

    #[test]
    fn a_job_moves_through_its_life_and_then_stays_put() {
        let (_d, s) = store();
        let j = s
            .create_job("automl", "adult", r#"{"target":"income"}"#)
            .unwrap();
        assert_eq!(j.status, JobStatus::Queued);
        assert_eq!(j.id.len(), 32);
        let j = s
            .update_job(
                &j.id,
                &JobUpdate {
                    status: Some(JobStatus::Running),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(j.started_ms.is_some() && j.ended_ms.is_none());
        let j = s
            .update_job(
                &j.id,
                &JobUpdate {
                    progress: Some(r#"{"done":3}"#.into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(j.progress, r#"{"done":3}"#);
        assert_eq!(j.status, JobStatus::Running);
        let j = s
            .update_job(
                &j.id,
                &JobUpdate {
                    status: Some(JobStatus::Succeeded),
                    result: Some(r#"{"best":1}"#.into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(j.ended_ms.is_some());
        let again = s.update_job(
            &j.id,
            &JobUpdate {
                status: Some(JobStatus::Running),
                ..Default::default()
            },
        );
        assert!(matches!(again, Err(StoreError::InvalidState(_))));
        assert_eq!(s.get_job(&j.id).unwrap().result, r#"{"best":1}"#);
        assert!(matches!(s.get_job("nope"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn cancel_is_immediate_when_queued_and_a_request_when_running() {
        let (_d, s) = store();
        let a = s.create_job("automl", "a", "{}").unwrap();
        let a = s.request_job_cancel(&a.id).unwrap();
        assert_eq!(a.status, JobStatus::Cancelled);
        let b = s.create_job("automl", "b", "{}").unwrap();
        s.update_job(
            &b.id,
            &JobUpdate {
                status: Some(JobStatus::Running),
                ..Default::default()
            },
        )
        .unwrap();
        let b = s.request_job_cancel(&b.id).unwrap();
        assert_eq!(b.status, JobStatus::Running);
        assert!(b.cancel_requested);
        assert!(matches!(
            s.request_job_cancel(&a.id),
            Err(StoreError::InvalidState(_))
        ));
    }

    #[test]
    fn lists_filter_by_kind_and_claims_take_only_known_kinds() {
        let (_dir, s) = store();
        let a = s.create_job("automl", "a", "{}").unwrap();
        s.create_job("batch-transform", "b", "{}").unwrap();
        assert_eq!(s.list_jobs(None, Some("automl"), 10).unwrap().len(), 1);
        assert_eq!(s.list_jobs(None, None, 10).unwrap().len(), 2);
        assert!(s.claim_job("w1", &["nope"], 1000).unwrap().is_none());
        assert!(s.claim_job("w1", &[], 1000).unwrap().is_none());
        let c = s.claim_job("w1", &["automl"], 1000).unwrap().unwrap();
        assert_eq!(c.id, a.id);
        assert_eq!(c.status, JobStatus::Running);
        assert_eq!((c.worker.as_deref(), c.attempt), (Some("w1"), 1));
        assert!(c.started_ms.is_some());
        assert!(s.claim_job("w2", &["automl"], 1000).unwrap().is_none());
    }

    /// Two stores on one file (two server processes): every job is claimed
    /// exactly once, whoever asks.
    #[test]
    fn concurrent_claims_from_two_stores_never_share_a_job() {
        let (sc, s) = store();
        for i in 0..200 {
            s.create_job("k", &format!("j{i}"), "{}").unwrap();
        }
        let sc = &sc;
        let both_open = std::sync::Barrier::new(2);
        let claimed: Vec<Vec<String>> = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..2)
                .map(|w| {
                    let both_open = &both_open;
                    scope.spawn(move || {
                        let st = sc.reopen().unwrap();
                        both_open.wait();
                        let mut got = Vec::new();
                        while let Some(j) = st.claim_job(&format!("w{w}"), &["k"], 60_000).unwrap()
                        {
                            got.push(j.id);
                            // a moment of "work", as a worker has, between claims
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                        got
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<&String> = claimed.iter().flatten().collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!((n, all.len()), (200, 200), "each job claimed exactly once");
        assert!(
            claimed.iter().all(|c| !c.is_empty()),
            "both stores got work"
        );
    }

    #[test]
    fn a_lost_lease_is_retried_then_failed_and_only_the_holder_writes() {
        let (_dir, s) = store();
        let j = s
            .queue_job(&NewJob {
                kind: "k",
                name: "n",
                spec: "{}",
                owner: "ada",
                workspace: "default",
                max_attempts: 2,
            })
            .unwrap();
        assert_eq!(j.owner, "ada");
        let c = s.claim_job("w1", &["k"], 60_000).unwrap().unwrap();
        assert_eq!(
            s.renew_job_lease(&c.id, "w1", 60_000).unwrap(),
            Lease::Held {
                cancel_requested: false
            }
        );
        assert_eq!(s.renew_job_lease(&c.id, "w2", 60_000).unwrap(), Lease::Lost);
        // a live lease is not reaped
        assert!(s.reap_expired_jobs("gone").unwrap().is_empty());
        // expire it: the job is queued again for its second attempt
        s.renew_job_lease(&c.id, "w1", -1).unwrap();
        let r = s.reap_expired_jobs("gone").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, JobStatus::Queued);
        // the old worker cannot write any more
        let e = s.update_job(
            &c.id,
            &JobUpdate {
                status: Some(JobStatus::Succeeded),
                worker: Some("w1".into()),
                ..Default::default()
            },
        );
        assert!(matches!(e, Err(StoreError::InvalidState(_))), "{e:?}");
        let c2 = s.claim_job("w2", &["k"], 60_000).unwrap().unwrap();
        assert_eq!((c2.attempt, c2.worker.as_deref()), (2, Some("w2")));
        assert_eq!(
            s.renew_job_lease(&c2.id, "w1", 60_000).unwrap(),
            Lease::Lost,
            "the old worker learns it lost the job"
        );
        // the second loss fails it, with the reason and who lost it
        s.renew_job_lease(&c2.id, "w2", -1).unwrap();
        let r = s.reap_expired_jobs("its worker stopped").unwrap();
        assert_eq!(r[0].status, JobStatus::Failed);
        let err = r[0].error.clone().unwrap();
        assert!(
            err.contains("its worker stopped") && err.contains("w2"),
            "{err}"
        );
        let events: serde_json::Value = serde_json::from_str(&r[0].events).unwrap();
        let names: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Queued", "Starting", "Retrying", "Starting", "Failed"]
        );
    }

    #[test]
    fn work_on_an_executor_is_adopted_not_retried() {
        let (_dir, s) = store();
        let j = s.create_job("k", "n", "{}").unwrap();
        let c = s.claim_job("w1", &["k"], 60_000).unwrap().unwrap();
        s.update_job(
            &c.id,
            &JobUpdate {
                handle: Some("{\"pid\": 1}".into()),
                worker: Some("w1".into()),
                ..Default::default()
            },
        )
        .unwrap();
        // a live claim is not adopted
        assert!(s.claim_job("w2", &["k"], 60_000).unwrap().is_none());
        // released at shutdown: adopted at once, same attempt, handle kept
        s.release_job(&j.id, "w1").unwrap();
        assert!(
            s.reap_expired_jobs("gone").unwrap().is_empty(),
            "not reaped"
        );
        let a = s.claim_job("w2", &["k"], 60_000).unwrap().unwrap();
        assert_eq!(a.id, j.id);
        assert_eq!((a.attempt, a.status), (1, JobStatus::Running));
        assert_eq!(a.handle.as_deref(), Some("{\"pid\": 1}"));
        assert_eq!(a.worker.as_deref(), Some("w2"));
        // a stop request reaches the holder through its renewal and a read
        s.request_job_cancel(&j.id).unwrap();
        assert_eq!(
            s.renew_job_lease(&j.id, "w2", 60_000).unwrap(),
            Lease::Held {
                cancel_requested: true
            }
        );
        assert_eq!(
            s.jobs_cancel_requested(&[j.id.clone(), "other".into()])
                .unwrap(),
            vec![j.id.clone()]
        );
        // finishing clears the claim
        let done = s
            .update_job(
                &j.id,
                &JobUpdate {
                    status: Some(JobStatus::Cancelled),
                    worker: Some("w2".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!((done.worker, done.lease_until_ms), (None, None));
    }

    #[test]
    fn lease_renewals_are_not_visible_writes() {
        let (_dir, s) = store();
        let j = s.create_job("k", "n", "{}").unwrap();
        s.claim_job("w", &["k"], 60_000).unwrap();
        let g = s.write_generation();
        s.renew_job_lease(&j.id, "w", 60_000).unwrap();
        assert_eq!(s.write_generation(), g);
        s.request_job_cancel(&j.id).unwrap();
        assert!(s.write_generation() > g);
    }

    /// Idle workers poll for work several times a second in every server
    /// process: a claim that finds nothing and a reap with nothing expired
    /// must not wake every live page; a claim that takes a job does.
    #[test]
    fn idle_polls_are_not_visible_writes() {
        let (_dir, s) = store();
        let g = s.write_generation();
        assert_eq!(s.claim_job("w", &["k"], 60_000).unwrap(), None);
        assert!(s.reap_expired_jobs("gone").unwrap().is_empty());
        assert_eq!(s.write_generation(), g);
        s.create_job("k", "n", "{}").unwrap();
        let g = s.write_generation();
        assert!(s.claim_job("w", &["k"], 60_000).unwrap().is_some());
        assert!(s.write_generation() > g);
        // an expired lease reaped is a change pages show
        s.create_job("k", "n2", "{}").unwrap();
        s.claim_job("w2", &["k"], -1).unwrap();
        let g = s.write_generation();
        assert_eq!(s.reap_expired_jobs("gone").unwrap().len(), 1);
        assert!(s.write_generation() > g);
    }

    /// Jobs are claimed first come, first served: by creation time, and in
    /// the order they were queued when created in the same millisecond
    /// (SQLite's rowid; a real identity column on PostgreSQL).
    #[test]
    fn queued_jobs_are_claimed_in_the_order_they_were_queued() {
        let (sc, s) = store();
        let ids: Vec<String> = (0..12)
            .map(|i| s.create_job("k", &format!("j{i}"), "{}").unwrap().id)
            .collect();
        // the same millisecond for all: only the queueing order is left to decide
        sc.raw_execute("UPDATE jobs SET created = 1000").unwrap();
        let mut got = Vec::new();
        while let Some(j) = s.claim_job("w", &["k"], 60_000).unwrap() {
            got.push(j.id);
        }
        assert_eq!(got, ids);
        // an older job still goes first, whenever it was queued
        let late = s.create_job("k", "late", "{}").unwrap();
        let early = s.create_job("k", "early", "{}").unwrap();
        sc.raw_execute(&format!(
            "UPDATE jobs SET created = 5 WHERE id = '{}'",
            early.id
        ))
        .unwrap();
        let first = s.claim_job("w", &["k"], 60_000).unwrap().unwrap();
        assert_eq!(first.id, early.id);
        let second = s.claim_job("w", &["k"], 60_000).unwrap().unwrap();
        assert_eq!(second.id, late.id);
    }

    #[test]
    fn endpoints_upsert_list_and_delete() {
        let (_d, s) = store();
        let e = s.put_endpoint("default", "churn", r#"{"v":1}"#).unwrap();
        let e2 = s.put_endpoint("default", "churn", r#"{"v":2}"#).unwrap();
        assert_eq!(e.created_ms, e2.created_ms);
        assert_eq!(s.get_endpoint("churn").unwrap().config, r#"{"v":2}"#);
        s.put_endpoint("default", "alpha", "{}").unwrap();
        let names: Vec<_> = s
            .list_endpoints()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["alpha", "churn"]);
        s.delete_endpoint("churn").unwrap();
        assert!(matches!(
            s.get_endpoint("churn"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.delete_endpoint("churn"),
            Err(StoreError::NotFound(_))
        ));
    }
}
