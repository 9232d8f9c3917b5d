//! Experiments and their tags.

use crate::db::{Conn, OptionalExtension, params, params_from_iter};
use crate::*;

use super::filter_sql::{
    Attr, Filterable, Kind, KvTable, Sortable, Where, filter_sql, order_sql, view_clause,
};
use super::{decode_page_token, invalid, lifecycle, not_found, page};

pub(super) fn load_experiment(conn: &Conn, id: i64) -> Result<Experiment> {
    let mut e = conn
        .query_row(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time,
                    workspace
             FROM experiments WHERE experiment_id = ?",
            [id],
            |r| {
                Ok(Experiment {
                    experiment_id: r.get(0)?,
                    name: r.get(1)?,
                    artifact_location: r.get(2)?,
                    lifecycle_stage: lifecycle(r.get(3)?),
                    creation_time: r.get(4)?,
                    last_update_time: r.get(5)?,
                    tags: Vec::new(),
                    workspace: r.get(6)?,
                })
            },
        )
        .optional()?
        .ok_or_else(|| not_found(format!("No Experiment with id={id} exists")))?;
    let mut st = conn.prepare_cached(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key",
    )?;
    e.tags = st
        .query_map([id], |r| {
            Ok(Tag::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<crate::db::Result<_>>()?;
    Ok(e)
}

pub(super) fn experiment_active(conn: &Conn, id: i64) -> Result<Experiment> {
    let e = load_experiment(conn, id)?;
    if e.lifecycle_stage != Lifecycle::Active {
        return Err(invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is deleted."
        )));
    }
    Ok(e)
}

fn touch_experiment(tx: &Conn, id: i64) -> Result<()> {
    let n = tx.execute(
        "UPDATE experiments SET last_update_time = ? WHERE experiment_id = ?",
        params![now_ms(), id],
    )?;
    if n == 0 {
        return Err(not_found(format!("No Experiment with id={id} exists")));
    }
    Ok(())
}

// ------------------------------------------------------------------- runs

pub(super) fn create_experiment(
    tx: &Conn,
    workspace: &str,
    name: &str,
    artifact_location: Option<&str>,
    tags: &[Tag],
) -> Result<i64> {
    let root = super::workspaces::load_workspace(tx, workspace)?.default_artifact_root;
    let exists: Option<String> = tx
        .query_row(
            "SELECT lifecycle_stage FROM experiments WHERE workspace = ? AND name = ?",
            [workspace, name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(stage) = exists {
        let extra = if stage == "deleted" {
            " (it is deleted: restore it, or delete it permanently, to reuse the name)"
        } else {
            ""
        };
        return Err(StoreError::AlreadyExists(format!(
            "Experiment(name={name}) already exists{extra}"
        )));
    }
    let id: i64 = tx.query_row(
        "SELECT COALESCE(MAX(experiment_id), 0) + 1 FROM experiments",
        [],
        |r| r.get(0),
    )?;
    let loc = match (artifact_location.filter(|l| !l.is_empty()), root) {
        (Some(l), _) => l.to_string(),
        (None, Some(root)) => format!("{}/{id}", root.trim_end_matches('/')),
        (None, None) => format!("mlflow-artifacts:/{id}"),
    };
    let now = now_ms();
    tx.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time,
                                  workspace)
         VALUES (?, ?, ?, ?, ?, ?)",
        params![id, name, loc, now, now, workspace],
    )?;
    for t in tags {
        tx.execute(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
             ON CONFLICT(experiment_id, key) DO UPDATE SET value = excluded.value",
            params![id, t.key, t.value],
        )?;
    }
    Ok(id)
}

pub(super) fn get_experiment(c: &Conn, id: i64) -> Result<Experiment> {
    load_experiment(c, id)
}

pub(super) fn get_experiment_by_name(c: &Conn, workspace: &str, name: &str) -> Result<Experiment> {
    let id: Option<i64> = c
        .query_row(
            "SELECT experiment_id FROM experiments WHERE workspace = ? AND name = ?
             ORDER BY lifecycle_stage = 'active' DESC LIMIT 1",
            [workspace, name],
            |r| r.get(0),
        )
        .optional()?;
    match id {
        Some(id) => load_experiment(c, id),
        None => Err(not_found(format!(
            "Could not find experiment with name '{name}'"
        ))),
    }
}

const FILTER: Filterable = Filterable {
    attrs: &[
        Attr {
            names: &["name"],
            col: "e.name",
            kind: Kind::Text,
        },
        Attr {
            names: &["experiment_id"],
            col: "e.experiment_id",
            kind: Kind::IntKey {
                quoted_as_text: true,
            },
        },
        Attr {
            names: &["creation_time"],
            col: "e.creation_time",
            kind: Kind::Number,
        },
        Attr {
            names: &["last_update_time"],
            col: "e.last_update_time",
            kind: Kind::Number,
        },
    ],
    tags: Some(KvTable {
        table: "experiment_tags",
        id_cond: "kv.experiment_id = e.experiment_id",
        null_inclusive_ne: false,
    }),
    params: None,
    hook: None,
    unknown_attribute: |key| {
        format!(
            "Invalid attribute key '{key}' specified. Valid keys are 'name', 'experiment_id', 'creation_time', 'last_update_time'"
        )
    },
    unknown_entity: |c| {
        format!(
            "Invalid entity type in experiment search filter: '{}'. Use attributes (name, creation_time, last_update_time) or tags",
            c.key
        )
    },
};

const ORDER: Sortable = Sortable {
    attrs: &[
        (&["name"], "e.name"),
        (&["experiment_id"], "e.experiment_id"),
        (&["creation_time"], "e.creation_time"),
        (&["last_update_time"], "e.last_update_time"),
    ],
    any_entity: false,
    nulls_last: false,
    hook: None,
    unknown: |item, _| {
        format!(
            "Invalid order_by key '{item}'; experiments order by name, experiment_id, creation_time or last_update_time"
        )
    },
};

pub(super) fn search_experiments(c: &Conn, q: &SearchExperiments) -> Result<Page<Experiment>> {
    let mut w = Where::default();
    w.push(view_clause("e.lifecycle_stage", q.view_type), []);
    if let Some(ws) = &q.workspace {
        w.push("e.workspace = ?", [super::filter_sql::text(ws)]);
    }
    filter_sql(&FILTER, &q.filter, &mut w)?;
    let mut order = Vec::new();
    order_sql(&ORDER, &q.order_by, &mut order, &mut Vec::new())?;
    order.push("e.creation_time DESC".into());
    order.push("e.experiment_id ASC".into());
    let offset = decode_page_token(q.page_token.as_deref())?;
    let max = q.max_results.max(1);
    let sql = format!(
        "SELECT e.experiment_id FROM experiments e WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        w.sql(),
        order.join(", "),
        max + 1,
        offset
    );
    let ids: Vec<i64> = c
        .prepare(&sql)?
        .query_map(params_from_iter(&w.args), |r| r.get(0))?
        .collect::<crate::db::Result<_>>()?;
    let items = ids
        .into_iter()
        .map(|id| load_experiment(c, id))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, offset, max))
}

pub(super) fn rename_experiment(tx: &Conn, id: i64, new_name: &str) -> Result<()> {
    let e = load_experiment(tx, id)?;
    if e.lifecycle_stage != Lifecycle::Active {
        return Err(invalid(format!(
            "Cannot rename a non-active experiment ({id})"
        )));
    }
    let taken: Option<i64> = tx
        .query_row(
            "SELECT experiment_id FROM experiments WHERE workspace = ? AND name = ?",
            [e.workspace.as_str(), new_name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = taken.filter(|o| *o != id) {
        return Err(StoreError::AlreadyExists(format!(
            "Experiment(name={new_name}) already exists (id {other})"
        )));
    }
    tx.execute(
        "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
        params![new_name, now_ms(), id],
    )?;
    Ok(())
}

pub(super) fn delete_experiment(tx: &Conn, id: i64) -> Result<()> {
    if id == 0 {
        return Err(invalid("Cannot delete the default experiment '0'"));
    }
    load_experiment(tx, id)?;
    tx.execute(
        "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? WHERE experiment_id = ?",
        params![now_ms(), id],
    )?;
    tx.execute(
        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE experiment_id = ? AND lifecycle_stage = 'active'",
        params![now_ms(), id],
    )?;
    Ok(())
}

pub(super) fn restore_experiment(tx: &Conn, id: i64) -> Result<()> {
    let e = load_experiment(tx, id)?;
    if e.lifecycle_stage == Lifecycle::Active {
        return Err(invalid(format!(
            "Cannot restore an active experiment ({id})"
        )));
    }
    tx.execute(
        "UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? WHERE experiment_id = ?",
        params![now_ms(), id],
    )?;
    tx.execute(
        "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE experiment_id = ?",
        [id],
    )?;
    Ok(())
}

pub(super) fn set_experiment_tag(tx: &Conn, id: i64, key: &str, value: &str) -> Result<()> {
    experiment_active(tx, id)?;
    tx.execute(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
         ON CONFLICT(experiment_id, key) DO UPDATE SET value = excluded.value",
        params![id, key, value],
    )?;
    touch_experiment(tx, id)
}

pub(super) fn delete_experiment_tag(tx: &Conn, id: i64, key: &str) -> Result<()> {
    experiment_active(tx, id)?;
    let n = tx.execute(
        "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
        params![id, key],
    )?;
    if n == 0 {
        return Err(not_found(format!(
            "No tag with name: {key} in experiment with id {id}"
        )));
    }
    touch_experiment(tx, id)
}
