//! Logged models (MLflow 3): their tags and params.

use crate::db::{Conn, OptionalExtension, Val as SqlValue, params, params_from_iter};
use crate::*;

use super::experiments::experiment_active;
use super::filter_sql::{Attr, Filterable, Kind, KvTable, Where, filter_sql};
use super::{decode_page_token, lifecycle, not_found, page, placeholders, read_value};

fn load_logged_model(conn: &Conn, id: &str) -> Result<LoggedModel> {
    let mut m = conn
        .prepare_cached(
            "SELECT model_id, experiment_id, name, artifact_uri, status, model_type, source_run_id,
                    creation_timestamp_ms, last_updated_timestamp_ms, lifecycle_stage
             FROM logged_models WHERE model_id = ?",
        )?
        .query_row([id], |r| {
            Ok(LoggedModel {
                model_id: r.get(0)?,
                experiment_id: r.get(1)?,
                name: r.get(2)?,
                artifact_uri: r.get(3)?,
                status: r.get(4)?,
                model_type: r.get(5)?,
                source_run_id: r.get(6)?,
                creation_timestamp_ms: r.get(7)?,
                last_updated_timestamp_ms: r.get(8)?,
                lifecycle_stage: lifecycle(r.get(9)?),
                tags: Vec::new(),
                params: Vec::new(),
                metrics: Vec::new(),
            })
        })
        .optional()?
        .ok_or_else(|| not_found(format!("Logged model with ID '{id}' not found.")))?;
    m.metrics = conn
        .prepare_cached(
            "SELECT s.run_uuid, s.key, p.step, p.timestamp, p.value, p.is_nan, p.dataset_name, p.dataset_digest
             FROM metric_points p JOIN metric_series s ON s.series_id = p.series_id
             WHERE p.model_id = ?
             ORDER BY s.key, s.run_uuid, p.step, p.timestamp, p.rowid",
        )?
        .query_map([id], |r| {
            Ok(RunMetric {
                run_id: r.get(0)?,
                metric: Metric {
                    key: r.get(1)?,
                    step: r.get(2)?,
                    timestamp: r.get(3)?,
                    value: read_value(r.get(4)?, r.get(5)?),
                    dataset_name: r.get(6)?,
                    dataset_digest: r.get(7)?,
                    model_id: Some(id.to_string()),
                },
            })
        })?
        .collect::<crate::db::Result<_>>()?;
    for (table, dst) in [
        ("logged_model_tags", &mut m.tags),
        ("logged_model_params", &mut m.params),
    ] {
        let mut st = conn.prepare_cached(&format!(
            "SELECT key, value FROM {table} WHERE model_id = ? ORDER BY key"
        ))?;
        *dst = st
            .query_map([id], |r| {
                Ok(Tag::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<crate::db::Result<_>>()?;
    }
    Ok(m)
}

pub(super) fn create_logged_model(tx: &Conn, req: CreateLoggedModel) -> Result<LoggedModel> {
    let exp = experiment_active(tx, req.experiment_id)?;
    let id = format!("m-{}", uuid::Uuid::new_v4().simple());
    let name = if req.name.is_empty() {
        id.clone()
    } else {
        req.name.clone()
    };
    let uri = format!(
        "{}/models/{id}/artifacts",
        exp.artifact_location.trim_end_matches('/')
    );
    let now = now_ms();
    tx.execute(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, status, model_type, source_run_id, creation_timestamp_ms, last_updated_timestamp_ms)
         VALUES (?, ?, ?, ?, 'LOGGED_MODEL_PENDING', ?, ?, ?, ?)",
        params![id, req.experiment_id, name, uri, req.model_type, req.source_run_id, now, now],
    )?;
    for (table, items) in [
        ("logged_model_tags", &req.tags),
        ("logged_model_params", &req.params),
    ] {
        for t in items.iter() {
            tx.execute(
                &format!(
                    "INSERT INTO {table} (model_id, key, value) VALUES (?, ?, ?)
                     ON CONFLICT(model_id, key) DO UPDATE SET value = excluded.value"
                ),
                params![id, t.key, t.value],
            )?;
        }
    }
    load_logged_model(tx, &id)
}

pub(super) fn get_logged_model(c: &Conn, model_id: &str) -> Result<LoggedModel> {
    // a deleted model is gone for readers, as in MLflow (its tags can still be changed)
    let m = load_logged_model(c, model_id)?;
    if m.lifecycle_stage == Lifecycle::Deleted {
        return Err(not_found(format!(
            "Logged model with ID '{model_id}' not found."
        )));
    }
    Ok(m)
}

pub(super) fn delete_logged_model(tx: &Conn, model_id: &str) -> Result<()> {
    load_logged_model(tx, model_id)?;
    tx.execute(
        "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ? WHERE model_id = ?",
        params![now_ms(), model_id],
    )?;
    Ok(())
}

pub(super) fn finalize_logged_model(
    tx: &Conn,
    model_id: &str,
    status: &str,
) -> Result<LoggedModel> {
    load_logged_model(tx, model_id)?;
    tx.execute(
        "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?",
        params![status, now_ms(), model_id],
    )?;
    load_logged_model(tx, model_id)
}

pub(super) fn set_logged_model_tags(tx: &Conn, model_id: &str, tags: &[Tag]) -> Result<()> {
    load_logged_model(tx, model_id)?;
    for t in tags {
        tx.execute(
            "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, ?)
             ON CONFLICT(model_id, key) DO UPDATE SET value = excluded.value",
            params![model_id, t.key, t.value],
        )?;
    }
    Ok(())
}

pub(super) fn delete_logged_model_tag(tx: &Conn, model_id: &str, key: &str) -> Result<()> {
    load_logged_model(tx, model_id)?;
    tx.execute(
        "DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?",
        [model_id, key],
    )?;
    Ok(())
}

pub(super) fn log_logged_model_params(tx: &Conn, model_id: &str, params: &[Param]) -> Result<()> {
    load_logged_model(tx, model_id)?;
    for p in params {
        tx.execute(
            "INSERT INTO logged_model_params (model_id, key, value) VALUES (?, ?, ?)
             ON CONFLICT(model_id, key) DO UPDATE SET value = excluded.value",
            params![model_id, p.key, p.value],
        )?;
    }
    Ok(())
}

const FILTER: Filterable = Filterable {
    attrs: &[
        Attr {
            names: &["name"],
            col: "m.name",
            kind: Kind::Text,
        },
        Attr {
            names: &["model_id"],
            col: "m.model_id",
            kind: Kind::Text,
        },
        Attr {
            names: &["status"],
            col: "m.status",
            kind: Kind::Text,
        },
        Attr {
            names: &["source_run_id"],
            col: "m.source_run_id",
            kind: Kind::Text,
        },
        Attr {
            names: &["model_type"],
            col: "m.model_type",
            kind: Kind::Text,
        },
        Attr {
            names: &["creation_timestamp", "creation_time"],
            col: "m.creation_timestamp_ms",
            kind: Kind::Number,
        },
    ],
    tags: Some(KvTable {
        table: "logged_model_tags",
        id_cond: "kv.model_id = m.model_id",
        null_inclusive_ne: false,
    }),
    params: Some(KvTable {
        table: "logged_model_params",
        id_cond: "kv.model_id = m.model_id",
        null_inclusive_ne: false,
    }),
    hook: None,
    unknown_attribute: filter_key,
    unknown_entity: |c| filter_key(&c.key),
};

fn filter_key(key: &str) -> String {
    format!(
        "Invalid filter key '{key}' for logged model search; use name, model_id, status, source_run_id, model_type, creation_timestamp, tags.<key> or params.<key>"
    )
}

pub(super) fn search_logged_models(c: &Conn, q: &SearchLoggedModels) -> Result<Page<LoggedModel>> {
    let mut w = Where::default();
    w.push("m.lifecycle_stage = 'active'", []);
    if !q.experiment_ids.is_empty() {
        w.push(
            format!(
                "m.experiment_id IN ({})",
                placeholders(q.experiment_ids.len())
            ),
            q.experiment_ids.iter().map(|i| SqlValue::Integer(*i)),
        );
    }
    if let Some(ws) = &q.workspace {
        w.push(
            "m.experiment_id IN (SELECT experiment_id FROM experiments WHERE workspace = ?)",
            [SqlValue::Text(ws.clone())],
        );
    }
    filter_sql(&FILTER, &q.filter, &mut w)?;
    let offset = decode_page_token(q.page_token.as_deref())?;
    let max = q.max_results.max(1);
    let sql = format!(
        "SELECT m.model_id FROM logged_models m WHERE {} ORDER BY m.creation_timestamp_ms DESC, m.model_id LIMIT {} OFFSET {}",
        w.sql(),
        max + 1,
        offset
    );
    let ids: Vec<String> = c
        .prepare(&sql)?
        .query_map(params_from_iter(&w.args), |r| r.get(0))?
        .collect::<crate::db::Result<_>>()?;
    let items = ids
        .iter()
        .map(|id| load_logged_model(c, id))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, offset, max))
}
