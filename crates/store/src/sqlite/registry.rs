//! The model registry: registered models, versions, their tags, aliases and
//! stages.

use crate::db::{Conn, OptionalExtension, Val as SqlValue, params, params_from_iter};
use crate::*;

use super::filter_sql::{Attr, Filterable, Kind, KvTable, Sortable, Where, filter_sql, order_sql};
use super::{decode_page_token, invalid, mlflow_webhooks, not_found, page, prompt_tags};

fn mv_row(r: &crate::db::Row) -> crate::db::Result<ModelVersion> {
    Ok(ModelVersion {
        name: r.get(0)?,
        version: r.get(1)?,
        creation_timestamp: r.get(2)?,
        last_updated_timestamp: r.get(3)?,
        user_id: r.get(4)?,
        current_stage: r.get(5)?,
        description: r.get(6)?,
        source: r.get(7)?,
        run_id: r.get(8)?,
        status: r.get(9)?,
        status_message: r.get(10)?,
        run_link: r.get(11)?,
        model_id: r.get(12)?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

const MV_COLS: &str = "name, version, creation_timestamp, last_updated_timestamp, user_id, current_stage, description, source, run_id, status, status_message, run_link, model_id";

fn fill_mv(conn: &Conn, mv: &mut ModelVersion) -> Result<()> {
    let mut st = conn.prepare_cached(
        "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ? ORDER BY key",
    )?;
    mv.tags = st
        .query_map(params![mv.name, mv.version], |r| {
            Ok(Tag::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<crate::db::Result<_>>()?;
    let mut st = conn.prepare_cached(
        "SELECT alias FROM registered_model_aliases WHERE name = ? AND version = ? ORDER BY alias",
    )?;
    mv.aliases = st
        .query_map(params![mv.name, mv.version], |r| r.get(0))?
        .collect::<crate::db::Result<_>>()?;
    Ok(())
}

fn load_mv(conn: &Conn, name: &str, version: i64) -> Result<ModelVersion> {
    let mut mv = conn
        .prepare_cached(&format!(
            "SELECT {MV_COLS} FROM model_versions WHERE name = ? AND version = ?"
        ))?
        .query_row(params![name, version], mv_row)
        .optional()?
        .ok_or_else(|| {
            not_found(format!(
                "Model Version (name={name}, version={version}) not found"
            ))
        })?;
    fill_mv(conn, &mut mv)?;
    Ok(mv)
}

fn latest_per_stage(conn: &Conn, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>> {
    let mut st = conn.prepare_cached(
        "SELECT current_stage, MAX(version) FROM model_versions WHERE name = ? GROUP BY current_stage",
    )?;
    let rows: Vec<(String, i64)> = st
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<crate::db::Result<_>>()?;
    let mut out = Vec::new();
    for (stage, version) in rows {
        if stages.is_empty() || stages.iter().any(|s| s.eq_ignore_ascii_case(&stage)) {
            out.push(load_mv(conn, name, version)?);
        }
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}

fn load_registered_model(conn: &Conn, name: &str) -> Result<RegisteredModel> {
    let mut m = conn
        .prepare_cached(
            "SELECT name, creation_timestamp, last_updated_timestamp, user_id, description
             FROM registered_models WHERE name = ?",
        )?
        .query_row([name], |r| {
            Ok(RegisteredModel {
                name: r.get(0)?,
                creation_timestamp: r.get(1)?,
                last_updated_timestamp: r.get(2)?,
                user_id: r.get(3)?,
                description: r.get(4)?,
                tags: Vec::new(),
                aliases: Vec::new(),
                latest_versions: Vec::new(),
            })
        })
        .optional()?
        .ok_or_else(|| not_found(format!("Registered Model with name={name} not found")))?;
    let mut st = conn.prepare_cached(
        "SELECT key, value FROM registered_model_tags WHERE name = ? ORDER BY key",
    )?;
    m.tags = st
        .query_map([name], |r| {
            Ok(Tag::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<crate::db::Result<_>>()?;
    let mut st = conn.prepare_cached(
        "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias",
    )?;
    m.aliases = st
        .query_map([name], |r| {
            Ok(Alias {
                alias: r.get(0)?,
                version: r.get(1)?,
            })
        })?
        .collect::<crate::db::Result<_>>()?;
    m.latest_versions = latest_per_stage(conn, name, &[])?;
    Ok(m)
}

fn touch_model(tx: &Conn, name: &str) -> Result<()> {
    let n = tx.execute(
        "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
        params![now_ms(), name],
    )?;
    if n == 0 {
        return Err(not_found(format!(
            "Registered Model with name={name} not found"
        )));
    }
    Ok(())
}

fn normalise_stage(stage: &str) -> Result<&'static str> {
    STAGES
        .iter()
        .copied()
        .find(|s| s.eq_ignore_ascii_case(stage))
        .ok_or_else(|| {
            invalid(format!(
                "Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived."
            ))
        })
}

// ---------------------------------------------------------- logged models

pub(super) fn create_registered_model(
    tx: &Conn,
    workspace: &str,
    name: &str,
    tags: &[Tag],
    description: &str,
    user_id: &str,
) -> Result<RegisteredModel> {
    let holder: Option<String> = tx
        .query_row(
            "SELECT workspace FROM registered_models WHERE name = ?",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    match holder {
        Some(w) if w == workspace => {
            return Err(StoreError::AlreadyExists(format!(
                "Registered Model (name={name}) already exists."
            )));
        }
        Some(_) => {
            return Err(StoreError::AlreadyExists(format!(
                "The registered model name '{name}' is taken by another project: registered model names are unique on this server, choose another"
            )));
        }
        None => {}
    }
    let now = now_ms();
    tx.execute(
        "INSERT INTO registered_models (name, creation_timestamp, last_updated_timestamp, user_id, description, workspace) VALUES (?, ?, ?, ?, ?, ?)",
        params![name, now, now, user_id, description, workspace],
    )?;
    for t in tags {
        tx.execute(
            "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)
             ON CONFLICT(name, key) DO UPDATE SET value = excluded.value",
            params![name, t.key, t.value],
        )?;
    }
    let prompt = mlflow_webhooks::tags_mark_prompt(tags);
    let tags = if prompt {
        prompt_tags(tags)
    } else {
        tags.to_vec()
    };
    mlflow_webhooks::emit(
        tx,
        &RegistryEvent::ModelCreated {
            prompt,
            name: name.into(),
            tags,
            description: description.into(),
        },
    )?;
    load_registered_model(tx, name)
}

pub(super) fn get_registered_model(c: &Conn, name: &str) -> Result<RegisteredModel> {
    load_registered_model(c, name)
}

pub(super) fn rename_registered_model(
    tx: &Conn,
    name: &str,
    new_name: &str,
) -> Result<RegisteredModel> {
    load_registered_model(tx, name)?;
    let taken: bool = tx
        .query_row(
            "SELECT 1 FROM registered_models WHERE name = ?",
            [new_name],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if taken && new_name != name {
        return Err(StoreError::AlreadyExists(format!(
            "Registered Model (name={new_name}) already exists."
        )));
    }
    for table in [
        "registered_models",
        "registered_model_tags",
        "registered_model_aliases",
        "model_versions",
        "model_version_tags",
    ] {
        tx.execute(
            &format!("UPDATE {table} SET name = ? WHERE name = ?"),
            [new_name, name],
        )?;
    }
    touch_model(tx, new_name)?;
    load_registered_model(tx, new_name)
}

pub(super) fn update_registered_model(
    tx: &Conn,
    name: &str,
    description: &str,
) -> Result<RegisteredModel> {
    touch_model(tx, name)?;
    tx.execute(
        "UPDATE registered_models SET description = ? WHERE name = ?",
        [description, name],
    )?;
    load_registered_model(tx, name)
}

pub(super) fn delete_registered_model(tx: &Conn, name: &str) -> Result<()> {
    load_registered_model(tx, name)?;
    for table in [
        "registered_models",
        "registered_model_tags",
        "registered_model_aliases",
        "model_versions",
        "model_version_tags",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE name = ?"), [name])?;
    }
    Ok(())
}

const MODEL_FILTER: Filterable = Filterable {
    attrs: &[Attr {
        names: &["name"],
        col: "m.name",
        kind: Kind::Text,
    }],
    tags: Some(KvTable {
        table: "registered_model_tags",
        id_cond: "kv.name = m.name",
        null_inclusive_ne: true,
    }),
    params: None,
    hook: None,
    unknown_attribute: model_filter_key,
    unknown_entity: |c| model_filter_key(&c.key),
};

fn model_filter_key(key: &str) -> String {
    format!("Invalid filter key '{key}' for registered model search; use name or tags.<key>")
}

// (the registry orders by the key whatever its prefix)
const MODEL_ORDER: Sortable = Sortable {
    attrs: &[
        (&["name"], "m.name"),
        (&["creation_timestamp", "timestamp"], "m.creation_timestamp"),
        (&["last_updated_timestamp"], "m.last_updated_timestamp"),
    ],
    any_entity: true,
    nulls_last: false,
    hook: None,
    unknown: |item, _| {
        format!(
            "Invalid order_by key '{item}'; order registered models by name, creation_timestamp or last_updated_timestamp"
        )
    },
};

pub(super) fn search_registered_models(
    c: &Conn,
    q: &SearchRegistry,
) -> Result<Page<RegisteredModel>> {
    let mut w = Where::default();
    if let Some(ws) = &q.workspace {
        w.push("m.workspace = ?", [SqlValue::Text(ws.clone())]);
    }
    filter_sql(&MODEL_FILTER, &q.filter, &mut w)?;
    let mut order = Vec::new();
    order_sql(&MODEL_ORDER, &q.order_by, &mut order, &mut Vec::new())?;
    order.push("m.name ASC".into());
    let offset = decode_page_token(q.page_token.as_deref())?;
    let max = q.max_results.max(1);
    let sql = format!(
        "SELECT m.name FROM registered_models m WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        w.sql(),
        order.join(", "),
        max + 1,
        offset
    );
    let names: Vec<String> = c
        .prepare(&sql)?
        .query_map(params_from_iter(&w.args), |r| r.get(0))?
        .collect::<crate::db::Result<_>>()?;
    let items = names
        .iter()
        .map(|n| load_registered_model(c, n))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, offset, max))
}

pub(super) fn set_registered_model_tag(
    tx: &Conn,
    name: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    touch_model(tx, name)?;
    tx.execute(
        "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)
         ON CONFLICT(name, key) DO UPDATE SET value = excluded.value",
        [name, key, value],
    )?;
    if mlflow_webhooks::is_prompt(tx, name)? {
        let e = RegistryEvent::PromptTagSet {
            name: name.into(),
            key: key.into(),
            value: value.into(),
        };
        mlflow_webhooks::emit(tx, &e)?;
    }
    Ok(())
}

pub(super) fn delete_registered_model_tag(tx: &Conn, name: &str, key: &str) -> Result<()> {
    touch_model(tx, name)?;
    tx.execute(
        "DELETE FROM registered_model_tags WHERE name = ? AND key = ?",
        [name, key],
    )?;
    if mlflow_webhooks::is_prompt(tx, name)? {
        let e = RegistryEvent::PromptTagDeleted {
            name: name.into(),
            key: key.into(),
        };
        mlflow_webhooks::emit(tx, &e)?;
    }
    Ok(())
}

pub(super) fn set_alias(tx: &Conn, name: &str, alias: &str, version: i64) -> Result<()> {
    load_mv(tx, name, version)?;
    tx.execute(
        "INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?)
         ON CONFLICT(name, alias) DO UPDATE SET version = excluded.version",
        params![name, alias, version],
    )?;
    touch_model(tx, name)?;
    let e = RegistryEvent::AliasCreated {
        prompt: mlflow_webhooks::is_prompt(tx, name)?,
        name: name.into(),
        alias: alias.into(),
        version: version.to_string(),
    };
    mlflow_webhooks::emit(tx, &e)?;
    Ok(())
}

pub(super) fn delete_alias(tx: &Conn, name: &str, alias: &str) -> Result<()> {
    touch_model(tx, name)?;
    tx.execute(
        "DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?",
        [name, alias],
    )?;
    let e = RegistryEvent::AliasDeleted {
        prompt: mlflow_webhooks::is_prompt(tx, name)?,
        name: name.into(),
        alias: alias.into(),
    };
    mlflow_webhooks::emit(tx, &e)?;
    Ok(())
}

pub(super) fn get_version_by_alias(c: &Conn, name: &str, alias: &str) -> Result<ModelVersion> {
    load_registered_model(c, name)?;
    let v: Option<i64> = c
        .query_row(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
            [name, alias],
            |r| r.get(0),
        )
        .optional()?;
    match v {
        Some(v) => load_mv(c, name, v),
        None => Err(not_found(format!(
            "Registered model alias {alias} not found."
        ))),
    }
}

pub(super) fn create_model_version(tx: &Conn, req: CreateModelVersion) -> Result<ModelVersion> {
    touch_model(tx, &req.name)?;
    // the next number after the highest ever given and the highest present
    let highest: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE name = ?",
        [&req.name],
        |r| r.get(0),
    )?;
    let version: i64 = tx.query_row(
        "UPDATE registered_models
         SET last_version = CASE WHEN last_version > ?2 THEN last_version ELSE ?2 END + 1
         WHERE name = ?1 RETURNING last_version",
        params![req.name, highest],
        |r| r.get(0),
    )?;
    let now = now_ms();
    tx.execute(
        "INSERT INTO model_versions (name, version, creation_timestamp, last_updated_timestamp, user_id, description, source, run_id, run_link, model_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![req.name, version, now, now, req.user_id, req.description, req.source, req.run_id, req.run_link, req.model_id],
    )?;
    for t in &req.tags {
        tx.execute(
            "INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?)
             ON CONFLICT(name, version, key) DO UPDATE SET value = excluded.value",
            params![req.name, version, t.key, t.value],
        )?;
    }
    // MLflow tells a prompt version by the version's own tags
    let prompt = mlflow_webhooks::tags_mark_prompt(&req.tags);
    let tags = if prompt {
        prompt_tags(&req.tags)
    } else {
        req.tags.clone()
    };
    mlflow_webhooks::emit(
        tx,
        &RegistryEvent::VersionCreated {
            prompt,
            name: req.name.clone(),
            version: version.to_string(),
            source: req.source.clone(),
            run_id: req.run_id.clone(),
            tags,
            description: req.description.clone(),
        },
    )?;
    load_mv(tx, &req.name, version)
}

pub(super) fn get_model_version(c: &Conn, name: &str, version: i64) -> Result<ModelVersion> {
    load_mv(c, name, version)
}

pub(super) fn update_model_version(
    tx: &Conn,
    name: &str,
    version: i64,
    description: &str,
) -> Result<ModelVersion> {
    load_mv(tx, name, version)?;
    tx.execute(
        "UPDATE model_versions SET description = ?, last_updated_timestamp = ? WHERE name = ? AND version = ?",
        params![description, now_ms(), name, version],
    )?;
    load_mv(tx, name, version)
}

pub(super) fn delete_model_version(tx: &Conn, name: &str, version: i64) -> Result<()> {
    load_mv(tx, name, version)?;
    for table in [
        "model_versions",
        "model_version_tags",
        "registered_model_aliases",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE name = ? AND version = ?"),
            params![name, version],
        )?;
    }
    touch_model(tx, name)
}

const VERSION_FILTER: Filterable = Filterable {
    attrs: &[
        Attr {
            names: &["name"],
            col: "v.name",
            kind: Kind::Text,
        },
        Attr {
            names: &["run_id"],
            col: "v.run_id",
            kind: Kind::Text,
        },
        Attr {
            names: &["source_path", "source"],
            col: "v.source",
            kind: Kind::Text,
        },
        Attr {
            names: &["current_stage"],
            col: "v.current_stage",
            kind: Kind::Text,
        },
        Attr {
            names: &["version_number", "version"],
            col: "v.version",
            kind: Kind::IntKey {
                quoted_as_text: false,
            },
        },
    ],
    tags: Some(KvTable {
        table: "model_version_tags",
        id_cond: "kv.name = v.name AND kv.version = v.version",
        null_inclusive_ne: true,
    }),
    params: None,
    hook: None,
    unknown_attribute: version_filter_key,
    unknown_entity: |c| version_filter_key(&c.key),
};

fn version_filter_key(key: &str) -> String {
    format!(
        "Invalid filter key '{key}' for model version search; use name, run_id, source_path, version_number or tags.<key>"
    )
}

const VERSION_ORDER: Sortable = Sortable {
    attrs: &[
        (&["name"], "v.name"),
        (&["version_number", "version"], "v.version"),
        (&["creation_timestamp", "timestamp"], "v.creation_timestamp"),
        (&["last_updated_timestamp"], "v.last_updated_timestamp"),
    ],
    any_entity: true,
    nulls_last: false,
    hook: None,
    unknown: |item, _| {
        format!(
            "Invalid order_by key '{item}'; order model versions by name, version_number, creation_timestamp or last_updated_timestamp"
        )
    },
};

pub(super) fn search_model_versions(c: &Conn, q: &SearchRegistry) -> Result<Page<ModelVersion>> {
    let mut w = Where::default();
    if let Some(ws) = &q.workspace {
        w.push(
            "v.name IN (SELECT name FROM registered_models WHERE workspace = ?)",
            [SqlValue::Text(ws.clone())],
        );
    }
    filter_sql(&VERSION_FILTER, &q.filter, &mut w)?;
    let mut order = Vec::new();
    order_sql(&VERSION_ORDER, &q.order_by, &mut order, &mut Vec::new())?;
    order.push("v.name ASC".into());
    order.push("v.version DESC".into());
    let offset = decode_page_token(q.page_token.as_deref())?;
    let max = q.max_results.max(1);
    let sql = format!(
        "SELECT {} FROM model_versions v WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        MV_COLS
            .split(", ")
            .map(|c| format!("v.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        w.sql(),
        order.join(", "),
        max + 1,
        offset
    );
    let mut items: Vec<ModelVersion> = c
        .prepare(&sql)?
        .query_map(params_from_iter(&w.args), mv_row)?
        .collect::<crate::db::Result<_>>()?;
    for mv in &mut items {
        fill_mv(c, mv)?;
    }
    Ok(page(items, offset, max))
}

pub(super) fn latest_versions(
    c: &Conn,
    name: &str,
    stages: &[String],
) -> Result<Vec<ModelVersion>> {
    load_registered_model(c, name)?;
    latest_per_stage(c, name, stages)
}

pub(super) fn transition_stage(
    tx: &Conn,
    name: &str,
    version: i64,
    stage: &str,
    archive_existing: bool,
) -> Result<ModelVersion> {
    let stage = normalise_stage(stage)?;
    load_mv(tx, name, version)?;
    let now = now_ms();
    if archive_existing && (stage == "Staging" || stage == "Production") {
        tx.execute(
            "UPDATE model_versions SET current_stage = 'Archived', last_updated_timestamp = ?
             WHERE name = ? AND current_stage = ? AND version != ?",
            params![now, name, stage, version],
        )?;
    }
    tx.execute(
        "UPDATE model_versions SET current_stage = ?, last_updated_timestamp = ? WHERE name = ? AND version = ?",
        params![stage, now, name, version],
    )?;
    touch_model(tx, name)?;
    load_mv(tx, name, version)
}

pub(super) fn set_model_version_tag(
    tx: &Conn,
    name: &str,
    version: i64,
    key: &str,
    value: &str,
) -> Result<()> {
    load_mv(tx, name, version)?;
    tx.execute(
        "INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?)
         ON CONFLICT(name, version, key) DO UPDATE SET value = excluded.value",
        params![name, version, key, value],
    )?;
    let e = RegistryEvent::VersionTagSet {
        prompt: mlflow_webhooks::is_prompt(tx, name)?,
        name: name.into(),
        version: version.to_string(),
        key: key.into(),
        value: value.into(),
    };
    mlflow_webhooks::emit(tx, &e)?;
    Ok(())
}

pub(super) fn delete_model_version_tag(
    tx: &Conn,
    name: &str,
    version: i64,
    key: &str,
) -> Result<()> {
    load_mv(tx, name, version)?;
    tx.execute(
        "DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
        params![name, version, key],
    )?;
    let e = RegistryEvent::VersionTagDeleted {
        prompt: mlflow_webhooks::is_prompt(tx, name)?,
        name: name.into(),
        version: version.to_string(),
        key: key.into(),
    };
    mlflow_webhooks::emit(tx, &e)?;
    Ok(())
}

/// The workspace of a registered model.
pub(super) fn registered_model_workspace(c: &Conn, name: &str) -> Result<String> {
    c.prepare_cached("SELECT workspace FROM registered_models WHERE name = ?")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| not_found(format!("Registered Model with name={name} not found")))
}
