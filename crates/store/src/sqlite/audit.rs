//! The audit log (migration 21): append-only records of changes and sign-ins.

use crate::db::{Val, params};
use crate::*;

const COLS: &str = "id, at_ms, actor, address, workspace, action, target, status, detail";

pub(super) fn append(tx: &crate::db::Conn, e: &AuditEntry) -> Result<i64> {
    Ok(tx.query_row(
        "INSERT INTO audit_log (at_ms, actor, address, workspace, action, target, status, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        params![
            e.at_ms,
            e.actor,
            e.address,
            e.workspace,
            e.action,
            e.target,
            e.status,
            e.detail
        ],
        |r| r.get(0),
    )?)
}

pub(super) fn search(c: &crate::db::Conn, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let mut sql = format!("SELECT {COLS} FROM audit_log WHERE 1 = 1");
    let mut args: Vec<Val> = Vec::new();
    if let Some(a) = &q.actor {
        sql.push_str(" AND actor = ?");
        args.push(Val::Text(a.clone()));
    }
    if let Some(w) = &q.workspace {
        sql.push_str(" AND workspace = ?");
        args.push(Val::Text(w.clone()));
    }
    if let Some(a) = &q.action {
        // a word of the action or its target: "experiments", "sign-in", "DELETE"
        let pos = if c.is_postgres() { "strpos" } else { "instr" };
        sql.push_str(&format!(
            " AND ({pos}(action, ?) > 0 OR {pos}(target, ?) > 0)"
        ));
        args.push(Val::Text(a.clone()));
        args.push(Val::Text(a.clone()));
    }
    if let Some(t) = q.since_ms {
        sql.push_str(" AND at_ms >= ?");
        args.push(Val::Integer(t));
    }
    if let Some(t) = q.until_ms {
        sql.push_str(" AND at_ms < ?");
        args.push(Val::Integer(t));
    }
    if let Some(id) = q.before_id {
        sql.push_str(" AND id < ?");
        args.push(Val::Integer(id));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(Val::Integer(q.limit.clamp(1, 100_000) as i64));
    Ok(c.prepare(&sql)?
        .query_map(crate::db::params_from_iter(args), |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                actor: r.get(2)?,
                address: r.get(3)?,
                workspace: r.get(4)?,
                action: r.get(5)?,
                target: r.get(6)?,
                status: r.get(7)?,
                detail: r.get(8)?,
            })
        })?
        .collect::<crate::db::Result<_>>()?)
}
