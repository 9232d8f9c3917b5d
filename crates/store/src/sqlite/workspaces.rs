//! Workspaces (projects): MLflow 3's grouping of experiments (migration 19).

use crate::db::{Conn, OptionalExtension, params};
use crate::*;

use super::{invalid, not_found};

fn workspace_row(r: &crate::db::Row) -> crate::db::Result<Workspace> {
    Ok(Workspace {
        name: r.get(0)?,
        description: r.get(1)?,
        default_artifact_root: r.get(2)?,
        creation_time: r.get(3)?,
    })
}

const COLS: &str = "name, description, default_artifact_root, creation_time";

pub(super) fn load_workspace(c: &Conn, name: &str) -> Result<Workspace> {
    c.prepare_cached(&format!("SELECT {COLS} FROM workspaces WHERE name = ?"))?
        .query_row([name], workspace_row)
        .optional()?
        .ok_or_else(|| not_found(format!("Workspace '{name}' not found")))
}

pub(super) fn list_workspaces(c: &Conn) -> Result<Vec<Workspace>> {
    Ok(
        c.prepare(&format!("SELECT {COLS} FROM workspaces ORDER BY name"))?
            .query_map([], workspace_row)?
            .collect::<crate::db::Result<_>>()?,
    )
}

pub(super) fn create_workspace(tx: &Conn, w: &Workspace) -> Result<Workspace> {
    if w.name == DEFAULT_WORKSPACE {
        return Err(invalid(format!(
            "The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be created"
        )));
    }
    let taken: Option<String> = tx
        .query_row(
            "SELECT name FROM workspaces WHERE name = ?",
            [&w.name],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::AlreadyExists(format!(
            "Workspace '{}' already exists.",
            w.name
        )));
    }
    if retired(tx, &w.name)? {
        return Err(StoreError::InvalidState(format!(
            "Workspace '{n}' was deleted, and its name stays retired while files it left \
             (projects/{n}/ in the artifact store) belong to the default workspace; \
             remove them, or pick another name.",
            n = w.name
        )));
    }
    let root = w.default_artifact_root.as_deref().filter(|r| !r.is_empty());
    tx.execute(
        "INSERT INTO workspaces (name, description, default_artifact_root, creation_time)
         VALUES (?, ?, ?, ?)",
        params![w.name, w.description, root, now_ms()],
    )?;
    load_workspace(tx, &w.name)
}

pub(super) fn update_workspace(
    tx: &Conn,
    name: &str,
    description: Option<&str>,
    default_artifact_root: Option<&str>,
) -> Result<Workspace> {
    load_workspace(tx, name)?;
    if let Some(d) = description {
        tx.execute(
            "UPDATE workspaces SET description = ? WHERE name = ?",
            params![d, name],
        )?;
    }
    if let Some(root) = default_artifact_root {
        let root = Some(root).filter(|r| !r.is_empty());
        tx.execute(
            "UPDATE workspaces SET default_artifact_root = ? WHERE name = ?",
            params![root, name],
        )?;
    }
    load_workspace(tx, name)
}

/// The tables whose rows belong to a workspace, with what a row is called
/// when a deletion is refused. Names are unique per workspace only for
/// experiments; the others' are the server's.
const HELD: &[(&str, &str)] = &[
    ("experiments", "experiment(s) (deleted ones included)"),
    ("registered_models", "registered model(s)"),
    ("endpoints", "endpoint(s)"),
    ("jobs", "job(s)"),
    ("monitoring_schedules", "monitoring schedule(s)"),
    ("notebook_schedules", "notebook schedule(s)"),
    ("mlflow_webhooks", "webhook(s)"),
    ("evaluation_datasets", "evaluation dataset(s)"),
];

pub(super) fn retired(c: &Conn, name: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM retired_workspaces WHERE name = ?")?
            .exists([name])?,
    )
}

pub(super) fn free_name(tx: &Conn, name: &str) -> Result<()> {
    tx.execute("DELETE FROM retired_workspaces WHERE name = ?", [name])?;
    Ok(())
}

pub(super) fn delete_workspace(tx: &Conn, name: &str, mode: WorkspaceDeletion) -> Result<()> {
    if name == DEFAULT_WORKSPACE {
        return Err(invalid(format!(
            "The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be deleted"
        )));
    }
    load_workspace(tx, name)?;
    let mut held = Vec::new();
    for (table, what) in HELD {
        let n: i64 = tx.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE workspace = ?"),
            [name],
            |r| r.get(0),
        )?;
        if n > 0 {
            held.push(format!("{n} {what}"));
        }
    }
    match mode {
        WorkspaceDeletion::Restrict if !held.is_empty() => {
            return Err(StoreError::InvalidState(format!(
                "Cannot delete workspace '{name}': it still holds {}. Move them to the default \
                 workspace with mode SET_DEFAULT, or delete them first.",
                held.join(", ")
            )));
        }
        WorkspaceDeletion::Restrict => {}
        WorkspaceDeletion::SetDefault => {
            let clash: Option<String> = tx
                .query_row(
                    "SELECT e.name FROM experiments e
                     WHERE e.workspace = ? AND EXISTS (
                         SELECT 1 FROM experiments d
                         WHERE d.workspace = ? AND d.name = e.name)
                     ORDER BY e.name LIMIT 1",
                    params![name, DEFAULT_WORKSPACE],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(n) = clash {
                return Err(StoreError::InvalidState(format!(
                    "Cannot move the experiments of workspace '{name}' to the default workspace: \
                     it already has an experiment named '{n}'. Rename one of them first."
                )));
            }
            // a moved endpoint or schedule counts as changed, so every server
            // process rebuilds what it runs for it in its new workspace
            for table in ["endpoints", "monitoring_schedules", "notebook_schedules"] {
                tx.execute(
                    &format!(
                        "UPDATE {table} SET updated = CASE WHEN updated >= ?1 THEN updated + 1 ELSE ?1 END
                         WHERE workspace = ?2"
                    ),
                    params![now_ms(), name],
                )?;
            }
            for (table, _) in HELD {
                tx.execute(
                    &format!("UPDATE {table} SET workspace = ? WHERE workspace = ?"),
                    params![DEFAULT_WORKSPACE, name],
                )?;
            }
            // the moved jobs go on in the default workspace, and so do their tokens
            tx.execute(
                "UPDATE access_tokens SET workspace = ? WHERE workspace = ?",
                params![DEFAULT_WORKSPACE, name],
            )?;
        }
    }
    super::people::forget_workspace(tx, name)?;
    tx.execute("DELETE FROM workspaces WHERE name = ?", [name])?;
    tx.execute(
        "INSERT INTO retired_workspaces (name, deleted_time) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET deleted_time = excluded.deleted_time",
        params![name, now_ms()],
    )?;
    Ok(())
}

pub(super) fn experiment_workspace(c: &Conn, id: i64) -> Result<String> {
    c.prepare_cached("SELECT workspace FROM experiments WHERE experiment_id = ?")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| not_found(format!("No Experiment with id={id} exists")))
}

/// The workspace of the experiment that `table`'s row keyed `key` in
/// `column` belongs to; `missing` names it when there is none.
fn owner_workspace(
    c: &Conn,
    table: &str,
    column: &str,
    key: &str,
    missing: impl FnOnce() -> String,
) -> Result<String> {
    c.prepare_cached(&format!(
        "SELECT e.workspace FROM {table} o JOIN experiments e ON e.experiment_id = o.experiment_id
         WHERE o.{column} = ?"
    ))?
    .query_row([key], |r| r.get(0))
    .optional()?
    .ok_or_else(|| not_found(missing()))
}

/// The workspace of a logged model (deleted ones too: their tags can still change).
pub(super) fn logged_model_workspace(c: &Conn, model_id: &str) -> Result<String> {
    owner_workspace(c, "logged_models", "model_id", model_id, || {
        format!("Logged model with ID '{model_id}' not found.")
    })
}

pub(super) fn trace_workspace(c: &Conn, trace_id: &str) -> Result<String> {
    owner_workspace(c, "trace_info", "trace_id", trace_id, || {
        format!("Trace with ID '{trace_id}' not found.")
    })
}

pub(super) fn run_workspace(c: &Conn, run_id: &str) -> Result<String> {
    owner_workspace(c, "runs", "run_uuid", run_id, || {
        format!("Run with id={run_id} not found")
    })
}
