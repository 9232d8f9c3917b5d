//! MLflow's model-registry webhooks: the webhooks themselves (CRUD with
//! MLflow's soft delete and offset page tokens) and their outbox.
//!
//! A registry write calls [`emit`] inside its own transaction: one delivery
//! row per active webhook subscribed to the event, so the change and its
//! deliveries commit together (no event is lost to a crash, none is sent for
//! a change that rolled back). Deliveries are claimed and recorded by the
//! Model Monitor outbox's code (`webhooks.rs`): one `UPDATE … RETURNING` on the
//! writer gives a lease, so several server processes on one database never
//! hold the same delivery; an attempt is recorded only under the claim that
//! made it. A claim reads the webhook's URL and secret as they are then.

use crate::db::{Conn, OptionalExtension, Row, params};
use serde_json::{Value, json};

use super::{decode_page_token, page};
use crate::*;

const WEBHOOK_COLS: &str = "webhook_id, name, description, url, events, status, secret, creation_timestamp, last_updated_timestamp, workspace";

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("Webhook with ID {id} not found."))
}

fn webhook_row(r: &Row) -> crate::db::Result<MlflowWebhook> {
    let events: String = r.get(4)?;
    let status: String = r.get(5)?;
    Ok(MlflowWebhook {
        webhook_id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        url: r.get(3)?,
        events: serde_json::from_str::<Vec<String>>(&events).unwrap_or_default(),
        // only this module writes the column, always through `as_str`
        status: MlflowWebhookStatus::parse(&status).unwrap_or(MlflowWebhookStatus::Disabled),
        secret: r.get(6)?,
        creation_timestamp: r.get(7)?,
        last_updated_timestamp: r.get(8)?,
        workspace: r.get(9)?,
    })
}

fn events_json(events: &[String]) -> String {
    Value::Array(events.iter().map(|e| json!(e)).collect()).to_string()
}

pub(super) fn create(tx: &Conn, w: &NewMlflowWebhook) -> Result<MlflowWebhook> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    tx.execute(
        "INSERT INTO mlflow_webhooks (webhook_id, name, description, url, events, status, secret, creation_timestamp, last_updated_timestamp, workspace)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
        params![id, w.name, w.description, w.url, events_json(&w.events), w.status.as_str(), w.secret, now, w.workspace],
    )?;
    get(tx, &id)
}

pub(super) fn get(c: &Conn, id: &str) -> Result<MlflowWebhook> {
    c.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLS} FROM mlflow_webhooks WHERE webhook_id = ?1 AND deleted_timestamp IS NULL"
    ))?
    .query_row([id], webhook_row)
    .optional()?
    .ok_or_else(|| not_found(id))
}

/// Newest first, as MLflow lists them; `workspace` narrows to one project's.
pub(super) fn list(
    c: &Conn,
    workspace: Option<&str>,
    max_results: usize,
    page_token: Option<&str>,
) -> Result<Page<MlflowWebhook>> {
    let offset = decode_page_token(page_token)?;
    let max = max_results.max(1);
    let items = c
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLS} FROM mlflow_webhooks WHERE deleted_timestamp IS NULL
             AND (CAST(?3 AS TEXT) IS NULL OR workspace = ?3)
             ORDER BY creation_timestamp DESC, rowid DESC LIMIT ?1 OFFSET ?2"
        ))?
        .query_map(
            params![(max + 1) as i64, offset as i64, workspace],
            webhook_row,
        )?
        .collect::<crate::db::Result<Vec<_>>>()?;
    Ok(page(items, offset, max))
}

pub(super) fn update(tx: &Conn, id: &str, u: &MlflowWebhookUpdate) -> Result<MlflowWebhook> {
    let old = get(tx, id)?;
    // strictly later than the last change, even within one millisecond
    let now = now_ms().max(old.last_updated_timestamp + 1);
    tx.execute(
        "UPDATE mlflow_webhooks SET
             name = COALESCE(?2, name),
             description = COALESCE(?3, description),
             url = COALESCE(?4, url),
             events = COALESCE(?5, events),
             secret = COALESCE(?6, secret),
             status = COALESCE(?7, status),
             last_updated_timestamp = ?8
         WHERE webhook_id = ?1 AND deleted_timestamp IS NULL",
        params![
            id,
            u.name,
            u.description,
            u.url,
            u.events.as_deref().map(events_json),
            u.secret,
            u.status.map(MlflowWebhookStatus::as_str),
            now
        ],
    )?;
    get(tx, id)
}

/// A soft delete, as MLflow's: the webhook is gone for the API and fires no
/// more; its queued deliveries fail at their next claim.
pub(super) fn delete(tx: &Conn, id: &str) -> Result<()> {
    let now = now_ms();
    let n = tx.execute(
        "UPDATE mlflow_webhooks SET deleted_timestamp = ?2, last_updated_timestamp = ?2
         WHERE webhook_id = ?1 AND deleted_timestamp IS NULL",
        params![id, now],
    )?;
    if n == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

// ---------------------------------------------------------------- events

/// Whether the registered model `name` is a prompt (its
/// `mlflow.prompt.is_prompt` tag reads `true`, in any case).
pub(super) fn is_prompt(c: &Conn, name: &str) -> Result<bool> {
    let v: Option<String> = c
        .prepare_cached(
            "SELECT value FROM registered_model_tags WHERE name = ?1 AND key = 'mlflow.prompt.is_prompt'",
        )?
        .query_row([name], |r| r.get(0))
        .optional()?;
    Ok(v.is_some_and(|v| v.eq_ignore_ascii_case("true")))
}

/// Whether tags sent with a request mark a prompt (the last value of the
/// key wins, as in MLflow).
pub(crate) fn tags_mark_prompt(tags: &[Tag]) -> bool {
    tags.iter()
        .rev()
        .find(|t| t.key == "mlflow.prompt.is_prompt")
        .is_some_and(|t| t.value.eq_ignore_ascii_case("true"))
}

fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!([t.key, t.value])).collect())
}

fn encode(e: &RegistryEvent) -> String {
    use RegistryEvent as E;
    let mut v = match e {
        E::ModelCreated {
            name,
            tags,
            description,
            ..
        } => json!({"name": name, "tags": tags_json(tags), "description": description}),
        E::VersionCreated {
            name,
            version,
            source,
            run_id,
            tags,
            description,
            ..
        } => json!({"name": name, "version": version, "source": source, "run_id": run_id,
                    "tags": tags_json(tags), "description": description}),
        E::PromptTagSet { name, key, value } => json!({"name": name, "key": key, "value": value}),
        E::PromptTagDeleted { name, key } => json!({"name": name, "key": key}),
        E::VersionTagSet {
            name,
            version,
            key,
            value,
            ..
        } => json!({"name": name, "version": version, "key": key, "value": value}),
        E::VersionTagDeleted {
            name, version, key, ..
        } => json!({"name": name, "version": version, "key": key}),
        E::AliasCreated {
            name,
            alias,
            version,
            ..
        } => json!({"name": name, "alias": alias, "version": version}),
        E::AliasDeleted { name, alias, .. } => json!({"name": name, "alias": alias}),
    };
    v["event"] = json!(e.event());
    v.to_string()
}

fn decode(text: &str) -> Option<RegistryEvent> {
    let v: Value = serde_json::from_str(text).ok()?;
    let s = |k: &str| v[k].as_str().map(str::to_string);
    let tags = || -> Option<Vec<Tag>> {
        v["tags"]
            .as_array()?
            .iter()
            .map(|p| Some(Tag::new(p[0].as_str()?, p[1].as_str()?)))
            .collect()
    };
    let event = v["event"].as_str()?;
    let prompt = event.starts_with("prompt");
    use RegistryEvent as E;
    Some(match event {
        "registered_model.created" | "prompt.created" => E::ModelCreated {
            prompt,
            name: s("name")?,
            tags: tags()?,
            description: s("description")?,
        },
        "model_version.created" | "prompt_version.created" => E::VersionCreated {
            prompt,
            name: s("name")?,
            version: s("version")?,
            source: s("source")?,
            run_id: s("run_id")?,
            tags: tags()?,
            description: s("description")?,
        },
        "prompt_tag.set" => E::PromptTagSet {
            name: s("name")?,
            key: s("key")?,
            value: s("value")?,
        },
        "prompt_tag.deleted" => E::PromptTagDeleted {
            name: s("name")?,
            key: s("key")?,
        },
        "model_version_tag.set" | "prompt_version_tag.set" => E::VersionTagSet {
            prompt,
            name: s("name")?,
            version: s("version")?,
            key: s("key")?,
            value: s("value")?,
        },
        "model_version_tag.deleted" | "prompt_version_tag.deleted" => E::VersionTagDeleted {
            prompt,
            name: s("name")?,
            version: s("version")?,
            key: s("key")?,
        },
        "model_version_alias.created" | "prompt_alias.created" => E::AliasCreated {
            prompt,
            name: s("name")?,
            alias: s("alias")?,
            version: s("version")?,
        },
        "model_version_alias.deleted" | "prompt_alias.deleted" => E::AliasDeleted {
            prompt,
            name: s("name")?,
            alias: s("alias")?,
        },
        _ => return None,
    })
}

/// The registered model (or prompt) an event is about.
fn model_of(e: &RegistryEvent) -> &str {
    use RegistryEvent as E;
    match e {
        E::ModelCreated { name, .. }
        | E::VersionCreated { name, .. }
        | E::PromptTagSet { name, .. }
        | E::PromptTagDeleted { name, .. }
        | E::VersionTagSet { name, .. }
        | E::VersionTagDeleted { name, .. }
        | E::AliasCreated { name, .. }
        | E::AliasDeleted { name, .. } => name,
    }
}

/// Queue `event` for every active webhook of the model's project subscribed
/// to it, inside the registry change's transaction; returns how many
/// deliveries were queued.
pub(super) fn emit(tx: &Conn, event: &RegistryEvent) -> Result<usize> {
    // The subscription test runs here, not in SQL: `events` is a JSON array
    // and the two dialects read JSON differently; active webhooks are few.
    let name = event.event();
    let ids: Vec<String> = tx
        .prepare_cached(
            "SELECT webhook_id, events FROM mlflow_webhooks
             WHERE deleted_timestamp IS NULL AND status = 'ACTIVE'
             AND workspace = COALESCE((SELECT workspace FROM registered_models WHERE name = ?1), 'default')
             ORDER BY creation_timestamp, rowid",
        )?
        .query_map([model_of(event)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .filter_map(|row| match row {
            Ok((id, events)) => serde_json::from_str::<Vec<Value>>(&events)
                .ok()?
                .iter()
                .any(|e| e.as_str() == Some(name))
                .then_some(Ok(id)),
            Err(e) => Some(Err(e)),
        })
        .collect::<crate::db::Result<_>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let body = encode(event);
    let now = now_ms();
    let mut st = tx.prepare_cached(
        "INSERT INTO mlflow_webhook_deliveries (delivery_id, webhook_id, event, event_ms, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?;
    for id in &ids {
        st.execute(params![uuid::Uuid::new_v4().to_string(), id, body, now])?;
    }
    Ok(ids.len())
}

// ---------------------------------------------------------------- outbox

const DELIVERIES: &str = "mlflow_webhook_deliveries";
const DELIVERY_COLS: &str = "d.id, d.delivery_id, d.webhook_id, d.event, d.event_ms, d.attempts, d.state, d.next_attempt_ms, d.claimed_until_ms, w.url, w.secret";

/// A delivery row with its event still as stored.
struct Raw {
    id: i64,
    delivery_id: String,
    webhook_id: String,
    event: String,
    event_ms: i64,
    attempts: String,
    state: String,
    next_attempt_ms: i64,
    claimed_until_ms: i64,
    url: Option<String>,
    secret: Option<String>,
}

fn delivery_row(r: &Row) -> crate::db::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        delivery_id: r.get(1)?,
        webhook_id: r.get(2)?,
        event: r.get(3)?,
        event_ms: r.get(4)?,
        attempts: r.get(5)?,
        state: r.get(6)?,
        next_attempt_ms: r.get(7)?,
        claimed_until_ms: r.get(8)?,
        url: r.get(9)?,
        secret: r.get(10)?,
    })
}

/// The delivery, or its id when its event cannot be read.
fn delivery(raw: Raw) -> Result<MlflowWebhookDelivery, i64> {
    let Some(event) = decode(&raw.event) else {
        return Err(raw.id);
    };
    Ok(MlflowWebhookDelivery {
        id: raw.id,
        delivery_id: raw.delivery_id,
        webhook_id: raw.webhook_id,
        event,
        event_ms: raw.event_ms,
        attempts: super::webhooks::attempts_of(&raw.attempts),
        // only this module writes the column, always through `as_str`
        state: DeliveryState::parse(&raw.state).unwrap_or(DeliveryState::Failed),
        next_attempt_ms: raw.next_attempt_ms,
        claimed_until_ms: raw.claimed_until_ms,
        url: raw.url,
        secret: raw.secret,
    })
}

pub(super) fn any_due(c: &Conn, now_ms: i64) -> Result<bool> {
    super::webhooks::any_due_in(c, DELIVERIES, now_ms)
}

pub(super) fn claim(
    tx: &Conn,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<MlflowWebhookDelivery>> {
    let ids: Vec<i64> =
        super::webhooks::claim_in(tx, DELIVERIES, "id", now_ms, lease_ms, limit, |r| r.get(0))?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(ids.len());
    let mut st = tx.prepare_cached(&format!(
        "SELECT {DELIVERY_COLS} FROM mlflow_webhook_deliveries d
         LEFT JOIN mlflow_webhooks w ON w.webhook_id = d.webhook_id AND w.deleted_timestamp IS NULL
         WHERE d.id = ?1"
    ))?;
    for id in ids {
        match delivery(st.query_row([id], delivery_row)?) {
            Ok(d) => out.push(d),
            // only this module writes events; one it cannot read is failed, not claimed for ever
            Err(id) => {
                tracing::warn!(
                    id,
                    "an MLflow webhook delivery with an unreadable event is failed"
                );
                tx.execute(
                    "UPDATE mlflow_webhook_deliveries SET state = 'failed', claimed_until_ms = 0 WHERE id = ?1",
                    [id],
                )?;
            }
        }
    }
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
    super::webhooks::record_in(tx, DELIVERIES, id, claimed_until_ms, attempt, outcome)
}

/// Every delivery queued for a webhook (deleted ones included), oldest first.
pub(super) fn deliveries(c: &Conn, webhook_id: &str) -> Result<Vec<MlflowWebhookDelivery>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLS} FROM mlflow_webhook_deliveries d
             LEFT JOIN mlflow_webhooks w ON w.webhook_id = d.webhook_id AND w.deleted_timestamp IS NULL
             WHERE d.webhook_id = ?1 ORDER BY d.id"
        ))?
        .query_map([webhook_id], delivery_row)?
        .collect::<crate::db::Result<Vec<_>>>()?;
    Ok(rows.into_iter().filter_map(|r| delivery(r).ok()).collect())
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn store() -> (crate::scratch::Scratch, SqlStore) {
        let mut sc = crate::scratch::Scratch::new().expect("a scratch store");
        let s = sc.take();
        (sc, s)
    }

    fn hook(name: &str, events: &[&str]) -> NewMlflowWebhook {
        NewMlflowWebhook {
            workspace: DEFAULT_WORKSPACE.into(),
            name: name.into(),
            description: String::new(),
            url: format!("http://{name}.example/hook"),
            events: events.iter().map(|e| e.to_string()).collect(),
            secret: "s3cret".into(),
            status: MlflowWebhookStatus::Active,
        }
    }

    fn version(name: &str, tags: &[Tag]) -> CreateModelVersion {
        CreateModelVersion {
            name: name.into(),
            source: "models:/m-1".into(),
            tags: tags.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn webhooks_are_created_listed_newest_first_updated_and_soft_deleted() {
        let (_d, s) = store();
        let ids: Vec<String> = (0..5)
            .map(|i| {
                s.create_mlflow_webhook(&hook(&format!("h{i}"), &["model_version.created"]))
                    .unwrap()
                    .webhook_id
            })
            .collect();
        let p1 = s.list_mlflow_webhooks(None, 2, None).unwrap();
        assert_eq!(
            p1.items.iter().map(|w| &w.webhook_id).collect::<Vec<_>>(),
            [&ids[4], &ids[3]]
        );
        let p2 = s
            .list_mlflow_webhooks(None, 2, p1.next_page_token.as_deref())
            .unwrap();
        let p3 = s
            .list_mlflow_webhooks(None, 2, p2.next_page_token.as_deref())
            .unwrap();
        assert_eq!(p2.items.len(), 2);
        assert_eq!(p3.items.len(), 1);
        assert_eq!(p3.next_page_token, None);
        assert_eq!(p3.items[0].webhook_id, ids[0]);

        let before = s.get_mlflow_webhook(&ids[0]).unwrap();
        assert_eq!(before.secret, "s3cret");
        let after = s
            .update_mlflow_webhook(
                &ids[0],
                &MlflowWebhookUpdate {
                    name: Some("renamed".into()),
                    events: Some(vec![
                        "registered_model.created".into(),
                        "model_version.created".into(),
                    ]),
                    status: Some(MlflowWebhookStatus::Disabled),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(after.name, "renamed");
        assert_eq!(after.url, before.url);
        assert_eq!(after.secret, "s3cret");
        assert_eq!(
            after.events,
            ["registered_model.created", "model_version.created"]
        );
        assert_eq!(after.status, MlflowWebhookStatus::Disabled);
        assert!(after.last_updated_timestamp > before.last_updated_timestamp);

        s.delete_mlflow_webhook(&ids[0]).unwrap();
        let gone = s.get_mlflow_webhook(&ids[0]).unwrap_err();
        assert_eq!(
            gone.to_string(),
            format!("Webhook with ID {} not found.", ids[0])
        );
        assert!(matches!(
            s.delete_mlflow_webhook(&ids[0]),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.update_mlflow_webhook("nope", &MlflowWebhookUpdate::default()),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(
            s.list_mlflow_webhooks(None, 100, None).unwrap().items.len(),
            4
        );
    }

    #[test]
    fn a_registry_change_queues_one_delivery_per_subscribed_active_webhook() {
        let (_d, s) = store();
        let all = s
            .create_mlflow_webhook(&hook(
                "all",
                &[
                    "registered_model.created",
                    "model_version.created",
                    "model_version_tag.set",
                    "model_version_tag.deleted",
                    "model_version_alias.created",
                    "model_version_alias.deleted",
                ],
            ))
            .unwrap();
        let versions = s
            .create_mlflow_webhook(&hook("versions", &["model_version.created"]))
            .unwrap();
        let mut off = hook("off", &["model_version.created"]);
        off.status = MlflowWebhookStatus::Disabled;
        let off = s.create_mlflow_webhook(&off).unwrap();

        s.create_registered_model("m", &[Tag::new("k", "v")], "d", "me")
            .unwrap();
        s.create_model_version(version("m", &[])).unwrap();
        s.set_model_version_tag("m", 1, "t", "x").unwrap();
        s.delete_model_version_tag("m", 1, "t").unwrap();
        s.set_alias("m", "champion", 1).unwrap();
        s.delete_alias("m", "champion").unwrap();
        // a registered model's own tags are not an MLflow event
        s.set_registered_model_tag("m", "a", "b").unwrap();
        // a failed change queues nothing
        assert!(s.set_model_version_tag("m", 9, "t", "x").is_err());

        let got: Vec<&'static str> = s
            .list_mlflow_webhook_deliveries(&all.webhook_id)
            .unwrap()
            .iter()
            .map(|d| d.event.event())
            .collect();
        assert_eq!(
            got,
            [
                "registered_model.created",
                "model_version.created",
                "model_version_tag.set",
                "model_version_tag.deleted",
                "model_version_alias.created",
                "model_version_alias.deleted",
            ]
        );
        let v = s
            .list_mlflow_webhook_deliveries(&versions.webhook_id)
            .unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].event,
            RegistryEvent::VersionCreated {
                prompt: false,
                name: "m".into(),
                version: "1".into(),
                source: "models:/m-1".into(),
                run_id: String::new(),
                tags: vec![],
                description: String::new(),
            }
        );
        assert_eq!(v[0].url.as_deref(), Some("http://versions.example/hook"));
        assert_eq!(v[0].secret.as_deref(), Some("s3cret"));
        assert!(
            s.list_mlflow_webhook_deliveries(&off.webhook_id)
                .unwrap()
                .is_empty()
        );
        let ids: std::collections::HashSet<String> = s
            .list_mlflow_webhook_deliveries(&all.webhook_id)
            .unwrap()
            .into_iter()
            .map(|d| d.delivery_id)
            .collect();
        assert_eq!(ids.len(), 6, "delivery ids are unique");
    }

    /// A webhook receives exactly the events it lists (no near match), and
    /// its subscription follows an update of its events and status.
    #[test]
    fn subscriptions_match_whole_event_names_and_follow_updates() {
        let (_d, s) = store();
        let w = s
            .create_mlflow_webhook(&hook("w", &["prompt.created", "model_version"]))
            .unwrap();
        s.create_registered_model("m1", &[], "", "me").unwrap();
        s.create_model_version(version("m1", &[])).unwrap();
        assert!(
            s.list_mlflow_webhook_deliveries(&w.webhook_id)
                .unwrap()
                .is_empty()
        );
        s.update_mlflow_webhook(
            &w.webhook_id,
            &MlflowWebhookUpdate {
                events: Some(vec!["registered_model.created".into()]),
                ..Default::default()
            },
        )
        .unwrap();
        s.create_registered_model("m2", &[], "", "me").unwrap();
        s.update_mlflow_webhook(
            &w.webhook_id,
            &MlflowWebhookUpdate {
                status: Some(MlflowWebhookStatus::Disabled),
                ..Default::default()
            },
        )
        .unwrap();
        s.create_registered_model("m3", &[], "", "me").unwrap();
        let got = s.list_mlflow_webhook_deliveries(&w.webhook_id).unwrap();
        let names: Vec<(&str, &RegistryEvent)> =
            got.iter().map(|d| (d.event.event(), &d.event)).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(
            got[0].event,
            RegistryEvent::ModelCreated {
                prompt: false,
                name: "m2".into(),
                tags: vec![],
                description: String::new(),
            }
        );
    }

    #[test]
    fn prompts_raise_prompt_events_without_their_marker_tags() {
        let (_d, s) = store();
        let w = s
            .create_mlflow_webhook(&hook(
                "p",
                &[
                    "prompt.created",
                    "prompt_version.created",
                    "prompt_tag.set",
                    "prompt_alias.created",
                ],
            ))
            .unwrap();
        let marker = Tag::new("mlflow.prompt.is_prompt", "true");
        s.create_registered_model("p", &[marker.clone(), Tag::new("team", "x")], "", "me")
            .unwrap();
        s.create_model_version(version(
            "p",
            &[
                marker,
                Tag::new("mlflow.prompt.text", "Hi {{x}}"),
                Tag::new("_mlflow_prompt_type", "text"),
            ],
        ))
        .unwrap();
        s.set_registered_model_tag("p", "team", "y").unwrap();
        s.set_alias("p", "prod", 1).unwrap();
        let got = s.list_mlflow_webhook_deliveries(&w.webhook_id).unwrap();
        let events: Vec<&str> = got.iter().map(|d| d.event.event()).collect();
        assert_eq!(
            events,
            [
                "prompt.created",
                "prompt_version.created",
                "prompt_tag.set",
                "prompt_alias.created"
            ]
        );
        assert_eq!(
            got[0].event,
            RegistryEvent::ModelCreated {
                prompt: true,
                name: "p".into(),
                tags: vec![Tag::new("team", "x")],
                description: String::new(),
            }
        );
        match &got[1].event {
            RegistryEvent::VersionCreated { tags, .. } => {
                assert_eq!(tags, &[Tag::new("mlflow.prompt.text", "Hi {{x}}")])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deliveries_are_claimed_once_under_a_lease_and_a_deleted_webhook_leaves_no_target() {
        let sc = crate::scratch::Scratch::new().expect("a scratch store");
        // two stores on one database: two writer connections, as two server processes
        let a = std::sync::Arc::new(sc.reopen().unwrap());
        let b = std::sync::Arc::new(sc.reopen().unwrap());
        let w = a
            .create_mlflow_webhook(&hook("w", &["registered_model.created"]))
            .unwrap();
        for i in 0..60 {
            b.create_registered_model(&format!("m{i}"), &[], "", "me")
                .unwrap();
        }
        let now = now_ms() + 10;
        let take = |s: std::sync::Arc<SqlStore>| {
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let got = s.claim_mlflow_webhook_deliveries(now, 30_000, 4).unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|d| d.id));
                }
            })
        };
        let (ta, tb) = (take(a.clone()), take(b.clone()));
        let mut all: Vec<i64> = ta.join().unwrap();
        all.extend(tb.join().unwrap());
        all.sort();
        let n = all.len();
        all.dedup();
        assert_eq!((n, all.len()), (60, 60), "a delivery was claimed twice");

        // the lease expired: claimed again; the late claimer cannot record
        let again = a
            .claim_mlflow_webhook_deliveries(now + 30_000, 30_000, 1)
            .unwrap();
        assert_eq!(again.len(), 1);
        let attempt = WebhookAttempt {
            at_ms: now,
            status: Some(200),
            error: None,
        };
        assert!(
            !a.record_mlflow_webhook_attempt(
                again[0].id,
                now + 30_000,
                &attempt,
                DeliveryOutcome::Delivered
            )
            .unwrap()
        );
        assert!(
            a.record_mlflow_webhook_attempt(
                again[0].id,
                again[0].claimed_until_ms,
                &attempt,
                DeliveryOutcome::Delivered
            )
            .unwrap()
        );
        a.delete_mlflow_webhook(&w.webhook_id).unwrap();
        let late = a
            .claim_mlflow_webhook_deliveries(now + 60_000, 30_000, 1)
            .unwrap();
        assert_eq!(late.len(), 1);
        assert_eq!(
            (late[0].url.as_ref(), late[0].secret.as_ref()),
            (None, None)
        );
        let ds = a.list_mlflow_webhook_deliveries(&w.webhook_id).unwrap();
        assert_eq!(
            ds.iter()
                .filter(|d| d.state == DeliveryState::Delivered)
                .count(),
            1
        );
    }
}
