//! The webhook outbox: deliveries queued by executions, claimed with a lease
//! by a delivery loop (in any process on this database), one attempt per
//! claim. A claim is one `UPDATE … RETURNING` inside the writer's immediate
//! transaction, so two claimers never hold the same delivery at once; the
//! lease (`claimed_until_ms`) is also the claim's token: an attempt is
//! recorded only while it still holds.

use crate::db::{Conn, OptionalExtension, Row, params, params_from_iter};
use serde_json::json;

use super::CHUNK;
use crate::*;

const TABLE: &str = "webhook_deliveries";
const COLS: &str = "id, job_id, schedule, url, body, attempts, state, next_attempt_ms, claimed_until_ms, created_ms";

pub(super) fn attempts_of(text: &str) -> Vec<WebhookAttempt> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(text) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|a| WebhookAttempt {
            at_ms: a["at_ms"].as_i64().unwrap_or(0),
            status: a["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
            error: a["error"].as_str().map(str::to_string),
        })
        .collect()
}

fn row(r: &Row) -> crate::db::Result<WebhookDelivery> {
    let attempts: String = r.get(5)?;
    let state: String = r.get(6)?;
    Ok(WebhookDelivery {
        id: r.get(0)?,
        job_id: r.get(1)?,
        schedule: r.get(2)?,
        url: r.get(3)?,
        body: r.get(4)?,
        attempts: attempts_of(&attempts),
        // Only this module writes the column, always through `as_str`.
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Failed),
        next_attempt_ms: r.get(7)?,
        claimed_until_ms: r.get(8)?,
        created_ms: r.get(9)?,
    })
}

pub(super) fn enqueue(
    tx: &Conn,
    job_id: &str,
    schedule: &str,
    urls: &[String],
    body: &str,
) -> Result<usize> {
    let now = now_ms();
    let mut st = tx.prepare_cached(
        "INSERT INTO webhook_deliveries (job_id, schedule, url, body, state, next_attempt_ms, created_ms)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
    )?;
    for url in urls {
        st.execute(params![job_id, schedule, url, body, now])?;
    }
    Ok(urls.len())
}

/// Whether anything is claimable at `now_ms` (a read, so an idle poll writes nothing).
pub(super) fn any_due(c: &Conn, now_ms: i64) -> Result<bool> {
    any_due_in(c, TABLE, now_ms)
}

pub(super) fn claim(
    tx: &Conn,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<WebhookDelivery>> {
    let mut out = claim_in(tx, TABLE, COLS, now_ms, lease_ms, limit, row)?;
    out.sort_by_key(|d| (d.next_attempt_ms, d.id));
    Ok(out)
}

pub(super) fn record(
    tx: &Conn,
    id: i64,
    claimed_until_ms: i64,
    attempt: &WebhookAttempt,
    outcome: DeliveryOutcome,
) -> Result<bool> {
    record_in(tx, TABLE, id, claimed_until_ms, attempt, outcome)
}

// The lease protocol below is shared with MLflow's webhook outbox
// (`mlflow_webhooks.rs`): `table` is `webhook_deliveries` or
// `mlflow_webhook_deliveries`, whose state columns are the same.

/// Whether `table` holds a delivery claimable at `now_ms`.
pub(super) fn any_due_in(c: &Conn, table: &str, now_ms: i64) -> Result<bool> {
    Ok(c.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table}
             WHERE state = 'pending' AND next_attempt_ms <= ?1 AND claimed_until_ms <= ?1)"
    ))?
    .query_row([now_ms], |r| r.get(0))?)
}

/// Claim up to `limit` due deliveries of `table` (oldest due first) for
/// `lease_ms`: one `UPDATE … RETURNING {returning}`, each row read by `map`.
pub(super) fn claim_in<T>(
    tx: &Conn,
    table: &str,
    returning: &str,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
    map: impl FnMut(&Row) -> crate::db::Result<T>,
) -> Result<Vec<T>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = limit.min(10_000) as i64;
    let until = now_ms.saturating_add(lease_ms.max(1));
    Ok(tx
        .prepare_cached(&format!(
            "UPDATE {table} SET claimed_until_ms = ?2
             WHERE id IN (SELECT id FROM {table}
                          WHERE state = 'pending' AND next_attempt_ms <= ?1 AND claimed_until_ms <= ?1
                          ORDER BY next_attempt_ms, id LIMIT ?3)
             RETURNING {returning}"
        ))?
        .query_map(params![now_ms, until, limit], map)?
        .collect::<crate::db::Result<Vec<_>>>()?)
}

/// Record one attempt of delivery `id` of `table` and its outcome, only while
/// the claim that made it (`claimed_until_ms`) still holds; whether it did.
pub(super) fn record_in(
    tx: &Conn,
    table: &str,
    id: i64,
    claimed_until_ms: i64,
    attempt: &WebhookAttempt,
    outcome: DeliveryOutcome,
) -> Result<bool> {
    let mut a = json!({ "at_ms": attempt.at_ms });
    if let Some(s) = attempt.status {
        a["status"] = json!(s);
    }
    if let Some(e) = &attempt.error {
        a["error"] = json!(e);
    }
    let (state, next) = match outcome {
        DeliveryOutcome::Delivered => (DeliveryState::Delivered, None),
        DeliveryOutcome::Failed => (DeliveryState::Failed, None),
        DeliveryOutcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
    };
    // Read, append, write back: both inside the writer's transaction (the
    // store-wide writer lock on PostgreSQL), so nothing changes in between;
    // one portable statement pair instead of SQLite's `json_insert`.
    let held: Option<String> = tx
        .prepare_cached(&format!(
            "SELECT attempts FROM {table}
             WHERE id = ?1 AND claimed_until_ms = ?2 AND state = 'pending'"
        ))?
        .query_row(params![id, claimed_until_ms], |r| r.get(0))
        .optional()?;
    let Some(held) = held else {
        return Ok(false);
    };
    let mut attempts = match serde_json::from_str::<Vec<serde_json::Value>>(&held) {
        Ok(v) => v,
        Err(e) => {
            // only this module writes the column; never let junk block a delivery
            tracing::warn!(id, table, error = %e, "unreadable webhook attempts replaced");
            Vec::new()
        }
    };
    attempts.push(a);
    let n = tx.execute(
        &format!(
            "UPDATE {table}
         SET attempts = ?3,
             state = ?4,
             next_attempt_ms = COALESCE(?5, next_attempt_ms),
             claimed_until_ms = 0
         WHERE id = ?1 AND claimed_until_ms = ?2 AND state = 'pending'"
        ),
        params![
            id,
            claimed_until_ms,
            serde_json::Value::Array(attempts).to_string(),
            state.as_str(),
            next
        ],
    )?;
    Ok(n == 1)
}

pub(super) fn list(c: &Conn, job_ids: &[String]) -> Result<Vec<WebhookDelivery>> {
    let mut out = Vec::new();
    for chunk in job_ids.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut st = c.prepare(&format!(
            "SELECT {COLS} FROM webhook_deliveries WHERE job_id IN ({marks}) ORDER BY id"
        ))?;
        let rows = st
            .query_map(params_from_iter(chunk.iter()), row)?
            .collect::<crate::db::Result<Vec<_>>>()?;
        out.extend(rows);
    }
    out.sort_by_key(|d| d.id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn store() -> (crate::scratch::Scratch, SqlStore) {
        let mut sc = crate::scratch::Scratch::new().expect("a scratch store");
        let s = sc.take();
        (sc, s)
    }

    fn attempt(at_ms: i64, status: Option<u16>, error: Option<&str>) -> WebhookAttempt {
        WebhookAttempt {
            at_ms,
            status,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn an_attempt_is_recorded_only_under_the_claim_that_made_it() {
        let (_d, s) = store();
        let urls = ["http://a.example/".to_string(), "http://b.example/".into()];
        assert_eq!(
            s.enqueue_webhook_deliveries("job1", "drift", &urls, r#"{"x":1}"#)
                .unwrap(),
            2
        );
        let now = now_ms() + 10;
        let got = s.claim_webhook_deliveries(now, 30_000, 1).unwrap();
        assert_eq!(got.len(), 1);
        let d = &got[0];
        assert_eq!(
            (d.url.as_str(), d.state, d.claimed_until_ms),
            ("http://a.example/", DeliveryState::Pending, now + 30_000)
        );
        assert!(d.attempts.is_empty());
        // a retry: pending again, due later, lease released
        assert!(
            s.record_webhook_attempt(
                d.id,
                d.claimed_until_ms,
                &attempt(now, Some(500), None),
                DeliveryOutcome::RetryAt(now + 500)
            )
            .unwrap()
        );
        // the same claim cannot record twice
        assert!(
            !s.record_webhook_attempt(
                d.id,
                d.claimed_until_ms,
                &attempt(now, Some(200), None),
                DeliveryOutcome::Delivered
            )
            .unwrap()
        );
        // not due yet: only the other one is claimed
        let got = s.claim_webhook_deliveries(now + 1, 30_000, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].url, "http://b.example/");
        assert!(
            s.record_webhook_attempt(
                got[0].id,
                got[0].claimed_until_ms,
                &attempt(now + 1, None, Some("connection refused")),
                DeliveryOutcome::Failed
            )
            .unwrap()
        );
        let got = s.claim_webhook_deliveries(now + 600, 30_000, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].attempts, [attempt(now, Some(500), None)]);
        assert!(
            s.record_webhook_attempt(
                got[0].id,
                got[0].claimed_until_ms,
                &attempt(now + 600, Some(200), None),
                DeliveryOutcome::Delivered
            )
            .unwrap()
        );
        // nothing left to claim, ever
        assert!(
            s.claim_webhook_deliveries(now + 10_000_000, 30_000, 10)
                .unwrap()
                .is_empty()
        );
        let all = s
            .list_webhook_deliveries(&["job1".into(), "other".into()])
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].state, DeliveryState::Delivered);
        assert_eq!(
            all[0].attempts,
            [
                attempt(now, Some(500), None),
                attempt(now + 600, Some(200), None)
            ]
        );
        assert_eq!(all[0].body, r#"{"x":1}"#);
        assert_eq!(all[0].claimed_until_ms, 0);
        assert_eq!(all[1].state, DeliveryState::Failed);
        assert_eq!(
            all[1].attempts,
            [attempt(now + 1, None, Some("connection refused"))]
        );
        assert!(s.list_webhook_deliveries(&[]).unwrap().is_empty());
    }

    /// Each attempt is appended to the ones before, exactly as given (the
    /// error text of a failed request may hold anything).
    #[test]
    fn attempts_accumulate_in_order_with_any_error_text() {
        let (_d, s) = store();
        s.enqueue_webhook_deliveries("job1", "drift", &["http://a.example/".into()], "{}")
            .unwrap();
        let now = now_ms() + 10;
        let errors = [
            "quote \" backslash \\ newline \n tab \t",
            "naïve café — ✓ 😀",
            "[\"not\", \"json\"]",
        ];
        let mut want = Vec::new();
        for (i, e) in errors.iter().enumerate() {
            let at = now + 1_000 * i as i64;
            let got = s.claim_webhook_deliveries(at, 30_000, 1).unwrap();
            assert_eq!(got.len(), 1, "attempt {i}");
            assert_eq!(got[0].attempts, want);
            let a = attempt(at, (i % 2 == 0).then_some(503), Some(e));
            assert!(
                s.record_webhook_attempt(
                    got[0].id,
                    got[0].claimed_until_ms,
                    &a,
                    DeliveryOutcome::RetryAt(at + 1)
                )
                .unwrap()
            );
            want.push(a);
        }
        let all = s.list_webhook_deliveries(&["job1".into()]).unwrap();
        assert_eq!(all[0].attempts, want);
        assert_eq!(all[0].state, DeliveryState::Pending);
        assert_eq!(all[0].next_attempt_ms, now + 2_001);
        assert_eq!(all[0].claimed_until_ms, 0);
    }

    #[test]
    fn a_lease_keeps_others_off_until_it_expires() {
        let (_d, s) = store();
        s.enqueue_webhook_deliveries("job1", "drift", &["http://a.example/".into()], "{}")
            .unwrap();
        let now = now_ms() + 10;
        let first = s.claim_webhook_deliveries(now, 30_000, 5).unwrap();
        assert_eq!(first.len(), 1);
        // leased: nobody else gets it, even once it is due
        assert!(
            s.claim_webhook_deliveries(now + 29_999, 30_000, 5)
                .unwrap()
                .is_empty()
        );
        // the claimer died: after the lease it comes back
        let second = s.claim_webhook_deliveries(now + 30_000, 30_000, 5).unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, first[0].id);
        // the first claimer woke up late: its attempt is not recorded
        assert!(
            !s.record_webhook_attempt(
                first[0].id,
                first[0].claimed_until_ms,
                &attempt(now, Some(200), None),
                DeliveryOutcome::Delivered
            )
            .unwrap()
        );
        assert!(
            s.record_webhook_attempt(
                second[0].id,
                second[0].claimed_until_ms,
                &attempt(now + 30_000, Some(200), None),
                DeliveryOutcome::Delivered
            )
            .unwrap()
        );
        let all = s.list_webhook_deliveries(&["job1".into()]).unwrap();
        assert_eq!(all[0].attempts.len(), 1);
        assert_eq!(all[0].state, DeliveryState::Delivered);
    }

    #[test]
    fn two_processes_never_claim_the_same_delivery() {
        let sc = crate::scratch::Scratch::new().expect("a scratch store");
        // two stores on one database: two writer connections, as two server processes
        let a = std::sync::Arc::new(sc.reopen().unwrap());
        let b = std::sync::Arc::new(sc.reopen().unwrap());
        let urls: Vec<String> = (0..200).map(|i| format!("http://h{i}.example/")).collect();
        a.enqueue_webhook_deliveries("job1", "drift", &urls, "{}")
            .unwrap();
        let now = now_ms() + 10;
        let take = |s: std::sync::Arc<SqlStore>| {
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let got = s.claim_webhook_deliveries(now, 30_000, 3).unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|d| d.id));
                }
            })
        };
        let (ta, tb) = (take(a.clone()), take(b.clone()));
        let (ma, mb) = (ta.join().unwrap(), tb.join().unwrap());
        let mut all: Vec<i64> = ma.iter().chain(&mb).copied().collect();
        all.sort();
        let n = all.len();
        all.dedup();
        assert_eq!(n, all.len(), "a delivery was claimed twice");
        assert_eq!(n, 200);
    }
}
