//! Jobs and endpoints: small tables whose payloads are JSON owned by the
//! crates that run them.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{SqliteStore, invalid, not_found};
use crate::*;

const JOB_COLS: &str = "id, kind, name, status, spec, progress, result, error, created, started, ended, cancel_requested";

fn job_row(r: &Row) -> rusqlite::Result<Job> {
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
    })
}

pub(super) fn create(s: &SqliteStore, kind: &str, name: &str, spec: &str) -> Result<Job> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    s.write(|tx| {
        tx.execute(
            "INSERT INTO jobs (id, kind, name, status, spec, created) VALUES (?, ?, ?, ?, ?, ?)",
            params![id, kind, name, JobStatus::Queued.as_str(), spec, now_ms()],
        )?;
        get(tx, &id)
    })
}

pub(super) fn get(c: &Connection, id: &str) -> Result<Job> {
    c.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?"))?
        .query_row([id], job_row)
        .optional()?
        .ok_or_else(|| not_found(format!("No job with id '{id}'")))
}

pub(super) fn list(c: &Connection, kind: Option<&str>, limit: usize) -> Result<Vec<Job>> {
    let limit = limit.clamp(1, 10_000) as i64;
    let rows = match kind {
        Some(k) => c
            .prepare_cached(&format!(
                "SELECT {JOB_COLS} FROM jobs WHERE kind = ? ORDER BY created DESC, id LIMIT ?"
            ))?
            .query_map(params![k, limit], job_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        None => c
            .prepare_cached(&format!(
                "SELECT {JOB_COLS} FROM jobs ORDER BY created DESC, id LIMIT ?"
            ))?
            .query_map([limit], job_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    Ok(rows)
}

pub(super) fn update(tx: &Transaction, id: &str, upd: &JobUpdate) -> Result<Job> {
    let job = get(tx, id)?;
    if job.status.is_terminal() {
        return Err(StoreError::InvalidState(format!(
            "Job '{id}' has finished ({}); it cannot change",
            job.status.as_str()
        )));
    }
    let now = now_ms();
    let status = upd.status.unwrap_or(job.status);
    let started = match (job.started_ms, status) {
        (None, JobStatus::Running) => Some(now),
        (s, _) => s,
    };
    let ended = status.is_terminal().then_some(now);
    tx.execute(
        "UPDATE jobs SET status = ?, progress = ?, result = ?, error = ?, started = ?, ended = ? WHERE id = ?",
        params![
            status.as_str(),
            upd.progress.as_deref().unwrap_or(&job.progress),
            upd.result.as_deref().unwrap_or(&job.result),
            upd.error.as_deref().or(job.error.as_deref()),
            started,
            ended,
            id
        ],
    )?;
    get(tx, id)
}

pub(super) fn request_cancel(tx: &Transaction, id: &str) -> Result<Job> {
    let job = get(tx, id)?;
    match job.status {
        JobStatus::Queued => {
            tx.execute(
                "UPDATE jobs SET status = ?, cancel_requested = 1, ended = ?, error = ? WHERE id = ?",
                params![
                    JobStatus::Cancelled.as_str(),
                    now_ms(),
                    "cancelled before it started",
                    id
                ],
            )?;
        }
        JobStatus::Running => {
            tx.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", [id])?;
        }
        s => {
            return Err(StoreError::InvalidState(format!(
                "Job '{id}' has finished ({}); there is nothing to cancel",
                s.as_str()
            )));
        }
    }
    get(tx, id)
}

pub(super) fn fail_interrupted(tx: &Transaction, reason: &str) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE jobs SET status = 'failed', error = ?, ended = ? WHERE status IN ('queued', 'running')",
        params![reason, now_ms()],
    )?)
}

fn endpoint_row(r: &Row) -> rusqlite::Result<Endpoint> {
    Ok(Endpoint {
        name: r.get(0)?,
        config: r.get(1)?,
        created_ms: r.get(2)?,
        updated_ms: r.get(3)?,
    })
}

/// A table of named JSON documents: (table name, what one is called).
pub(super) type Docs = (&'static str, &'static str);
pub(super) const ENDPOINTS: Docs = ("endpoints", "endpoint");
pub(super) const SCHEDULES: Docs = ("monitoring_schedules", "monitoring schedule");

pub(super) fn put_doc(
    tx: &Transaction,
    (table, what): Docs,
    name: &str,
    config: &str,
) -> Result<Endpoint> {
    if name.is_empty() {
        return Err(invalid(format!("A {what} needs a name")));
    }
    let now = now_ms();
    tx.execute(
        &format!(
            "INSERT INTO {table} (name, config, created, updated) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated = excluded.updated"
        ),
        params![name, config, now],
    )?;
    get_doc(tx, (table, what), name)
}

/// Compare-and-swap on a document's configuration: written only while it is still
/// `expected`; returns whether it was.
pub(super) fn replace_doc(
    tx: &Transaction,
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

pub(super) fn get_doc(c: &Connection, (table, what): Docs, name: &str) -> Result<Endpoint> {
    c.prepare_cached(&format!(
        "SELECT name, config, created, updated FROM {table} WHERE name = ?"
    ))?
    .query_row([name], endpoint_row)
    .optional()?
    .ok_or_else(|| not_found(format!("No {what} named '{name}'")))
}

pub(super) fn list_docs(c: &Connection, (table, _): Docs) -> Result<Vec<Endpoint>> {
    Ok(c.prepare_cached(&format!(
        "SELECT name, config, created, updated FROM {table} ORDER BY name"
    ))?
    .query_map([], endpoint_row)?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn delete_doc(tx: &Transaction, (table, what): Docs, name: &str) -> Result<()> {
    if tx.execute(&format!("DELETE FROM {table} WHERE name = ?"), [name])? == 0 {
        return Err(not_found(format!("No {what} named '{name}'")));
    }
    Ok(())
}

pub(super) fn put_endpoint(tx: &Transaction, name: &str, config: &str) -> Result<Endpoint> {
    put_doc(tx, ENDPOINTS, name, config)
}
pub(super) fn get_endpoint(c: &Connection, name: &str) -> Result<Endpoint> {
    get_doc(c, ENDPOINTS, name)
}
pub(super) fn list_endpoints(c: &Connection) -> Result<Vec<Endpoint>> {
    list_docs(c, ENDPOINTS)
}
pub(super) fn delete_endpoint(tx: &Transaction, name: &str) -> Result<()> {
    delete_doc(tx, ENDPOINTS, name)
}

pub(super) fn list_named(c: &Connection, kind: &str, name: &str, limit: usize) -> Result<Vec<Job>> {
    let limit = limit.clamp(1, 10_000) as i64;
    Ok(c.prepare_cached(&format!(
        "SELECT {JOB_COLS} FROM jobs WHERE kind = ? AND name = ? ORDER BY created DESC, id LIMIT ?"
    ))?
    .query_map(params![kind, name, limit], job_row)?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SqliteStore::open(dir.path().join("m.db")).expect("open");
        (dir, s)
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
    fn interrupted_jobs_fail_at_restart_and_lists_filter_by_kind() {
        let (dir, s) = store();
        let a = s.create_job("automl", "a", "{}").unwrap();
        let b = s.create_job("batch-transform", "b", "{}").unwrap();
        s.update_job(
            &b.id,
            &JobUpdate {
                status: Some(JobStatus::Running),
                ..Default::default()
            },
        )
        .unwrap();
        drop(s);
        let s = SqliteStore::open(dir.path().join("m.db")).unwrap();
        assert_eq!(s.fail_interrupted_jobs("the server restarted").unwrap(), 2);
        let a = s.get_job(&a.id).unwrap();
        assert_eq!(a.status, JobStatus::Failed);
        assert_eq!(a.error.as_deref(), Some("the server restarted"));
        assert_eq!(s.list_jobs(Some("automl"), 10).unwrap().len(), 1);
        assert_eq!(s.list_jobs(None, 10).unwrap().len(), 2);
    }

    #[test]
    fn endpoints_upsert_list_and_delete() {
        let (_d, s) = store();
        let e = s.put_endpoint("churn", r#"{"v":1}"#).unwrap();
        let e2 = s.put_endpoint("churn", r#"{"v":2}"#).unwrap();
        assert_eq!(e.created_ms, e2.created_ms);
        assert_eq!(s.get_endpoint("churn").unwrap().config, r#"{"v":2}"#);
        s.put_endpoint("alpha", "{}").unwrap();
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
