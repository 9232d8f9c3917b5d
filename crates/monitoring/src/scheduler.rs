//! Fires schedules on their cron: once a second, every enabled schedule
//! whose next firing time (after its bookmark) has come gets an execution
//! job over the window from the previous firing to this one. The bookmark
//! (`last_fired_ms`) is stored before the job is queued, so a restart
//! neither repeats nor (within a day) skips a window; missed firings while
//! the server was down are caught up by one execution covering them. The
//! bookmark is a compare-and-swap on the schedule as read, so it never
//! overwrites a user's concurrent change (nor the user's write the bookmark).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use store::MetadataStore;

use crate::execute::EXECUTION_KIND;
use crate::schedule::Schedule;

/// Longest window a caught-up execution covers.
const MAX_CATCH_UP_MS: i64 = 24 * 3_600_000;

/// One pass: fire what is due at `now_ms`; returns the job ids queued.
pub fn tick(store: &dyn MetadataStore, queue: &jobs::Queue, now_ms: i64) -> Vec<String> {
    let mut fired = Vec::new();
    let Ok(rows) = store.list_schedules() else {
        return fired;
    };
    for row in rows {
        let Ok(mut s) = serde_json::from_str::<Schedule>(&row.config) else {
            continue;
        };
        if !s.enabled {
            continue;
        }
        let cron = s.cron();
        // a new schedule starts counting from its creation; the latest due
        // firing, whose window starts at the previous firing
        let from = s.last_fired_ms.unwrap_or(row.created_ms);
        let Some(due) = cron.last_in(from, now_ms) else {
            continue;
        };
        let start = match s.last_fired_ms {
            Some(l) => l.max(due - MAX_CATCH_UP_MS),
            None => cron
                .previous(due - 1, MAX_CATCH_UP_MS)
                .unwrap_or(row.created_ms)
                .min(due - 1),
        };
        s.last_fired_ms = Some(due);
        let Ok(text) = serde_json::to_string(&s) else {
            continue;
        };
        // only over the version read above: a schedule replaced or deleted meanwhile
        // keeps the user's change and is looked at again on the next tick
        match store.replace_schedule(&row.name, &row.config, &text) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(schedule = %s.name, "could not bookmark the schedule: {e}");
                continue;
            }
        }
        let spec = json!({
            "schedule": s.name,
            "window_start_ms": start,
            "window_end_ms": due,
            "trigger": "cron",
        });
        let origin = jobs::Origin::new("", &row.workspace);
        match queue.submit_as(EXECUTION_KIND, spec, &origin, 1) {
            Ok(j) => fired.push(j.id),
            Err(e) => tracing::warn!(schedule = %s.name, "could not start an execution: {e}"),
        }
    }
    fired
}

/// Run [`tick`] every second until the process ends.
pub fn spawn(store: Arc<dyn MetadataStore>, queue: Arc<jobs::Queue>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let (s, q) = (store.clone(), queue.clone());
            let _ =
                tokio::task::spawn_blocking(move || tick(s.as_ref(), &q, store::now_ms())).await;
        }
    });
}
