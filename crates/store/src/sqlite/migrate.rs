//! Moving up: every row of a SQLite store copied into an empty PostgreSQL
//! store of the same schema version (`atelier migrate`). Tables and
//! columns are read from the two databases themselves, so a new migration
//! needs no change here; a column one side lacks stops the copy before
//! anything is written. The source is only read; the target is written in
//! one transaction, so a failed copy leaves it as it was.

use crate::db::{Conn, Val};
use crate::*;

use super::{PG_POINT_ROWS, SqlStore};

/// Rows per INSERT statement (PostgreSQL allows 65,535 parameters).
const ROWS_PER_INSERT: usize = 200;
/// Rows read from the source at a time.
const READ_CHUNK: i64 = 5_000;

/// What a copy moved: rows per table, in copy order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(String, i64)>,
}

impl CopyReport {
    pub fn rows(&self) -> i64 {
        self.tables.iter().map(|t| t.1).sum()
    }
}

/// Tables a fresh store fills by itself (the Default experiment, the write
/// generation, the default workspace): emptied on the target before the copy.
const SEEDED: &[&str] = &["experiments", "atelier_generation", "workspaces"];

/// Bookkeeping that is not data.
fn skipped(table: &str) -> bool {
    table.starts_with("sqlite_") || table == "atelier_schema_version"
}

/// The PostgreSQL table a SQLite table's rows go to: its namesake, except
/// `metric_points`, a view on PostgreSQL whose single points are rows of
/// `metric_point_rows` (migration 17).
fn pg_table(table: &str) -> &str {
    if table == "metric_points" {
        PG_POINT_ROWS
    } else {
        table
    }
}

fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The source's tables in creation order (each migration creates what the
/// next one refers to).
fn sqlite_tables(c: &Conn) -> Result<Vec<String>> {
    let mut st = c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<crate::db::Result<Vec<String>>>()?;
    Ok(names.into_iter().filter(|t| !skipped(t)).collect())
}

fn sqlite_columns(c: &Conn, table: &str) -> Result<Vec<String>> {
    let mut st = c.prepare(&format!("PRAGMA table_info({})", q(table)))?;
    Ok(st
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<crate::db::Result<Vec<String>>>()?)
}

/// A PostgreSQL column: its name, whether the database computes it, and
/// whether it is an identity (its sequence is moved past the copied ids).
struct PgColumn {
    name: String,
    generated: bool,
    identity: bool,
}

fn pg_columns(c: &Conn, table: &str) -> Result<Vec<PgColumn>> {
    let mut st = c.prepare(
        "SELECT column_name, is_generated, is_identity FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
    )?;
    Ok(st
        .query_map([table], |r| {
            Ok(PgColumn {
                name: r.get(0)?,
                generated: r.get::<_, String>(1)? == "ALWAYS",
                identity: r.get::<_, String>(2)? == "YES",
            })
        })?
        .collect::<crate::db::Result<Vec<PgColumn>>>()?)
}

fn count(c: &Conn, table: &str) -> Result<i64> {
    Ok(
        c.query_row(&format!("SELECT COUNT(*) FROM {}", q(table)), [], |r| {
            r.get(0)
        })?,
    )
}

impl SqlStore {
    /// Copy every row of this SQLite store into `target`, an empty
    /// PostgreSQL store (only what a fresh store seeds itself), then check
    /// that each table holds as many rows on both sides. `progress` hears
    /// each table as it is done.
    pub fn copy_into(
        &self,
        target: &SqlStore,
        mut progress: impl FnMut(&str, i64),
    ) -> Result<CopyReport> {
        if self.dialect() != crate::db::Dialect::Sqlite
            || target.dialect() != crate::db::Dialect::Postgres
        {
            return Err(StoreError::InvalidParameter(
                "a copy goes from a SQLite store to a PostgreSQL store".into(),
            ));
        }
        // the plan: which tables and columns, checked before any write
        let plan: Vec<(String, Vec<String>)> = self.read(|src| {
            sqlite_tables(src)?
                .into_iter()
                .map(|t| {
                    let cols = sqlite_columns(src, &t)?;
                    Ok((t, cols))
                })
                .collect()
        })?;
        let report = target.write(|dst| {
            for (table, cols) in &plan {
                let theirs = pg_columns(dst, table)?;
                if theirs.is_empty() {
                    return Err(StoreError::Internal(format!(
                        "the PostgreSQL database has no table {table}: its schema is not this Atelier's"
                    )));
                }
                for c in cols {
                    if !theirs.iter().any(|p| &p.name == c) {
                        return Err(StoreError::Internal(format!(
                            "the PostgreSQL table {table} has no column {c}: the two schemas differ"
                        )));
                    }
                }
                let n = count(dst, table)?;
                if n > 0 && !SEEDED.contains(&table.as_str()) {
                    return Err(StoreError::InvalidState(format!(
                        "the PostgreSQL database is not empty ({table} has {n} rows): migrate into a new database"
                    )));
                }
            }
            if count(dst, "runs")? > 0 || count(dst, "experiments")? > 1 {
                return Err(StoreError::InvalidState(
                    "the PostgreSQL database is not empty: migrate into a new database".into(),
                ));
            }
            for t in SEEDED {
                dst.execute(&format!("DELETE FROM {}", q(t)), [])?;
            }
            self.copy_rows(dst, &plan, &mut progress)
        })?;
        self.verify_copy(target, &plan)?;
        Ok(report)
    }

    /// Every table's rows into `dst` (one open write transaction).
    fn copy_rows(
        &self,
        dst: &Conn,
        plan: &[(String, Vec<String>)],
        progress: &mut impl FnMut(&str, i64),
    ) -> Result<CopyReport> {
        let mut report = CopyReport::default();
        {
            for (table, cols) in plan {
                let into = pg_table(table);
                let pg = pg_columns(dst, into)?;
                // a real `rowid` column on PostgreSQL takes SQLite's implicit rowid
                let with_rowid = !cols.iter().any(|c| c == "rowid")
                    && pg.iter().any(|p| p.name == "rowid" && !p.generated);
                let mut select: Vec<String> = cols.iter().map(|c| q(c)).collect();
                let mut insert: Vec<String> = select.clone();
                if with_rowid {
                    select.push("rowid".into());
                    insert.push(q("rowid"));
                }
                let insert_cols: Vec<&String> = insert.iter().collect();
                let generated: Vec<&str> = pg
                    .iter()
                    .filter(|p| p.generated)
                    .map(|p| p.name.as_str())
                    .collect();
                if cols.iter().any(|c| generated.contains(&c.as_str())) {
                    return Err(StoreError::Internal(format!(
                        "the PostgreSQL table {table} computes a column SQLite stores"
                    )));
                }
                let mut copied = 0i64;
                let mut offset = 0i64;
                loop {
                    let rows: Vec<Vec<Val>> = self.read(|src| {
                        let sql = format!(
                            "SELECT {} FROM {} LIMIT ?1 OFFSET ?2",
                            select.join(", "),
                            q(table)
                        );
                        let mut st = src.prepare(&sql)?;
                        let n = select.len();
                        Ok(st
                            .query_map([READ_CHUNK, offset], |r| {
                                (0..n).map(|i| r.get::<_, Val>(i)).collect()
                            })?
                            .collect::<crate::db::Result<Vec<Vec<Val>>>>()?)
                    })?;
                    if rows.is_empty() {
                        break;
                    }
                    offset += rows.len() as i64;
                    for batch in rows.chunks(ROWS_PER_INSERT) {
                        let one = format!("({})", vec!["?"; insert_cols.len()].join(","));
                        let sql = format!(
                            "INSERT INTO {} ({}) VALUES {}",
                            q(into),
                            insert.join(", "),
                            vec![one.as_str(); batch.len()].join(",")
                        );
                        let args = crate::db::params_from_iter(batch.iter().flatten());
                        dst.prepare(&sql)?.execute(args)?;
                    }
                    copied += rows.len() as i64;
                }
                // identities continue after the copied ids
                for p in pg.iter().filter(|p| p.identity) {
                    dst.query_row(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence(?1, ?2), \
                             GREATEST(COALESCE((SELECT MAX({}) FROM {}), 0), 1), \
                             COALESCE((SELECT MAX({}) FROM {}), 0) > 0)",
                            q(&p.name),
                            q(into),
                            q(&p.name),
                            q(into)
                        ),
                        [into, p.name.as_str()],
                        |r| r.get::<_, i64>(0),
                    )?;
                }
                if into == PG_POINT_ROWS {
                    // point ids continue after the copied ones (steps of 2^20)
                    dst.query_row(
                        "SELECT setval('metric_point_ids', \
                         COALESCE((SELECT MAX(rowid) FROM metric_point_rows), 0) / 1048576 + 1, false)",
                        [],
                        |r| r.get::<_, i64>(0),
                    )?;
                }
                let theirs = count(dst, table)?;
                if theirs != copied {
                    return Err(StoreError::Internal(format!(
                        "{table}: copied {copied} rows but PostgreSQL holds {theirs}"
                    )));
                }
                progress(table, copied);
                report.tables.push((table.clone(), copied));
            }
        }
        Ok(report)
    }

    /// Row counts, table by table, on both sides after the commit.
    fn verify_copy(&self, target: &SqlStore, plan: &[(String, Vec<String>)]) -> Result<()> {
        let source: Vec<(String, i64)> = self.read(|src| {
            plan.iter()
                .map(|(t, _)| Ok((t.clone(), count(src, t)?)))
                .collect()
        })?;
        let target_counts: Vec<(String, i64)> = target.read(|dst| {
            plan.iter()
                .map(|(t, _)| Ok((t.clone(), count(dst, t)?)))
                .collect()
        })?;
        if source != target_counts {
            return Err(StoreError::Internal(format!(
                "row counts differ after the copy: SQLite {source:?}, PostgreSQL {target_counts:?}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    /// A populated SQLite store lands in PostgreSQL whole: ids, histories,
    /// the registry, jobs; new ids continue after the copied ones; a second
    /// copy into the same database is refused.
    #[test]
    fn a_populated_sqlite_store_moves_into_postgresql() {
        let Some(server) = crate::scratch::test_database_url() else {
            eprintln!(
                "skipped: set {} to a PostgreSQL server to run this test (cargo xtask test does)",
                crate::scratch::TEST_DATABASE_URL
            );
            return;
        };
        let src_scratch = crate::scratch::Scratch::sqlite().unwrap();
        let src = &*src_scratch;
        let exp = src
            .create_experiment("moving", None, &[Tag::new("team", "ml")])
            .unwrap();
        let run = src
            .create_run(CreateRun {
                experiment_id: exp,
                user_id: "ann".into(),
                run_name: Some("r1".into()),
                ..Default::default()
            })
            .unwrap();
        let points: Vec<Metric> = (0..1200)
            .map(|i| Metric::new("loss", 1.0 / (i + 1) as f64, i, i))
            .collect();
        src.log_batch(
            &run.run_id,
            &points,
            &[Param::new("lr", "0.1")],
            &[Tag::new("k", "v")],
        )
        .unwrap();
        src.create_registered_model("m", &[], "d", "ann").unwrap();
        src.create_model_version(CreateModelVersion {
            name: "m".into(),
            source: format!("runs:/{}/model", run.run_id),
            run_id: run.run_id.clone(),
            ..Default::default()
        })
        .unwrap();
        src.create_job("automl", "j", "{}").unwrap();

        let dst = crate::scratch::Scratch::postgres(&server).unwrap();
        let mut seen = Vec::new();
        let report = src
            .copy_into(&dst, |t, n| seen.push((t.to_string(), n)))
            .unwrap();
        assert!(
            report
                .tables
                .iter()
                .any(|(t, n)| t == "metric_points" && *n == 1200),
            "{report:?}"
        );
        assert_eq!(seen, report.tables);

        let got = dst.get_run(&run.run_id).unwrap();
        assert_eq!(got.info.run_name, "r1");
        assert_eq!(got.params[0].value, "0.1");
        let hist = dst.metric_history(&run.run_id, "loss", 5000, None).unwrap();
        assert_eq!(hist.items.len(), 1200);
        assert_eq!(
            dst.get_experiment_by_name("moving").unwrap().experiment_id,
            exp
        );
        assert_eq!(dst.get_model_version("m", 1).unwrap().run_id, run.run_id);
        // new ids continue after the copied ones
        let next = dst.create_experiment("after", None, &[]).unwrap();
        assert!(next > exp, "{next} after {exp}");
        assert_eq!(dst.list_jobs(None, None, 10).unwrap().len(), 1);
        // the target is not empty any more: a second copy is refused, nothing written
        let again = src.copy_into(&dst, |_, _| {}).unwrap_err();
        assert!(again.to_string().contains("not empty"), "{again}");
    }
}
