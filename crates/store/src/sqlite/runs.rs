//! Runs: their params, tags, metric points (and the latest-value table),
//! inputs/outputs and datasets.

use std::collections::HashMap;

use crate::db::{Conn, OptionalExtension, Val as SqlValue, params, params_from_iter};
use crate::filter::{Clause, Entity, LIKE_ESCAPE, Op, OrderBy, Value, like_literal};
use crate::*;

use super::experiments::experiment_active;
use super::filter_sql::{
    Attr, Filterable, Kind, KvTable, Sortable, Where, filter_sql, numeric_cmp, order_sql,
    string_cmp, text, view_clause,
};
use super::{
    CHUNK, POINTS_PER_INSERT, decode_page_token, encode_page_token, invalid, lifecycle, not_found,
    page, placeholders, read_value,
};

fn run_info_row(r: &crate::db::Row) -> crate::db::Result<RunInfo> {
    Ok(RunInfo {
        run_id: r.get(0)?,
        run_name: r.get(1)?,
        experiment_id: r.get(2)?,
        user_id: r.get(3)?,
        status: RunStatus::parse(&r.get::<_, String>(4)?).unwrap_or(RunStatus::Running),
        start_time: r.get(5)?,
        end_time: r.get(6)?,
        artifact_uri: r.get(7)?,
        lifecycle_stage: lifecycle(r.get(8)?),
    })
}

const RUN_COLS: &str = "run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage";

pub(super) fn load_run_info(conn: &Conn, run_id: &str) -> Result<RunInfo> {
    conn.prepare_cached(&format!("SELECT {RUN_COLS} FROM runs WHERE run_uuid = ?"))?
        .query_row([run_id], run_info_row)
        .optional()?
        .ok_or_else(|| not_found(format!("Run with id={run_id} not found")))
}

fn active_run(conn: &Conn, run_id: &str) -> Result<RunInfo> {
    let info = load_run_info(conn, run_id)?;
    if info.lifecycle_stage != Lifecycle::Active {
        return Err(invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is deleted."
        )));
    }
    Ok(info)
}

/// Runs `sql` once for all `ids` — its `IN ({ids})` (which may occur several
/// times) is bound as one array on PostgreSQL (`= ANY($1)`: one statement,
/// prepared once, whatever the count) and as chunks of numbered placeholders
/// on SQLite — passing each row to `f`.
///
/// On PostgreSQL the array is read through a scalar subquery, which hides its
/// length from the planner: shown the array (a statement's first executions are
/// planned with their arguments), it reads every row of each table for 500 of
/// 10,000 runs, 3× slower than the index lookups it plans without it.
fn for_each_row_of(
    conn: &Conn,
    sql: &str,
    ids: &[String],
    mut f: impl FnMut(&crate::db::Row<'_, '_>) -> Result<()>,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    if conn.is_postgres() {
        let sql = sql.replace("IN ({ids})", "= ANY((SELECT $1::text[])::text[])");
        let mut rows = conn.pg_query(&sql, &[&ids])?;
        while let Some(r) = rows.next()? {
            f(&r)?;
        }
        return Ok(());
    }
    for chunk in ids.chunks(CHUNK) {
        let numbered = (1..=chunk.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut st = conn.prepare(&sql.replace("{ids}", &numbered))?;
        let mut rows = st.query(params_from_iter(chunk))?;
        while let Some(r) = rows.next()? {
            f(&r)?;
        }
    }
    Ok(())
}

/// Full runs for the given ids, in the given order (missing ids skipped).
fn load_runs(conn: &Conn, ids: &[String]) -> Result<Vec<Run>> {
    let mut runs: Vec<Option<Run>> = vec![None; ids.len()];
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    for_each_row_of(
        conn,
        &format!("SELECT {RUN_COLS} FROM runs WHERE run_uuid IN ({{ids}})"),
        ids,
        |r| {
            let info = run_info_row(r)?;
            if let Some(&i) = index.get(info.run_id.as_str()) {
                runs[i] = Some(bare_run(info));
            }
            Ok(())
        },
    )?;
    let mut runs: Vec<Run> = runs.into_iter().flatten().collect();
    load_run_details(conn, &mut runs)?;
    Ok(runs)
}

/// A run with its info only.
fn bare_run(info: RunInfo) -> Run {
    Run {
        info,
        metrics: Vec::new(),
        params: Vec::new(),
        tags: Vec::new(),
        dataset_inputs: Vec::new(),
        model_inputs: Vec::new(),
        model_outputs: Vec::new(),
    }
}

/// A run's lists as `run_lists` keeps them on PostgreSQL (migration 18):
/// `[params, tags, metrics, models]`, a metric's value as the 16 hex digits
/// of its IEEE 754 bits (null with `is_nan` for NaN).
type ListsRow = (
    Vec<(String, String)>,
    Vec<(String, String)>,
    Vec<(String, Option<String>, i64, i64, i64)>,
    Vec<(String, String, i64)>,
);

fn fill_lists(run: &mut Run, json: &str) -> Result<()> {
    let bad = |e: String| {
        StoreError::Internal(format!(
            "run_lists of run {} cannot be read: {e}",
            run.info.run_id
        ))
    };
    let (params, tags, metrics, models): ListsRow =
        serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    run.params = params.into_iter().map(|(k, v)| Tag::new(k, v)).collect();
    run.tags = tags.into_iter().map(|(k, v)| Tag::new(k, v)).collect();
    run.metrics = Vec::with_capacity(metrics.len());
    for (key, value, is_nan, ts, step) in metrics {
        let value = match value {
            Some(hex) => Some(f64::from_bits(
                u64::from_str_radix(&hex, 16).map_err(|e| bad(format!("{key}: {hex:?}: {e}")))?,
            )),
            None => None,
        };
        run.metrics
            .push(Metric::new(key, read_value(value, is_nan != 0), ts, step));
    }
    for (model_id, direction, step) in models {
        push_model(run, model_id, &direction, step);
    }
    Ok(())
}

/// A `run_models` row into the run's inputs or outputs by its direction.
fn push_model(run: &mut Run, model_id: String, direction: &str, step: i64) {
    if direction == "input" {
        run.model_inputs.push(model_id);
    } else {
        run.model_outputs.push(ModelOutput { model_id, step });
    }
}

/// Fills in the params, tags, latest metrics, dataset inputs and models of
/// `runs` (whose lists are empty): two statements for any number of runs —
/// the key/value rows of the four tables in one, as rows of one shape tagged
/// by their table, and the dataset inputs. Lists come sorted by key (model
/// id), in byte order as the tables' "C"/BINARY collation sorts them; rows
/// are sorted here rather than by the database, which would sort them all.
///
/// On PostgreSQL the four lists come from `run_lists` (one row per run,
/// kept by triggers; migration 18); a run without a row there is read from
/// the tables.
fn load_run_details(conn: &Conn, runs: &mut [Run]) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = runs.iter().map(|r| r.info.run_id.clone()).collect();
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut from_tables: Vec<String> = Vec::new();
    if conn.is_postgres() {
        let mut found = vec![false; runs.len()];
        for_each_row_of(
            conn,
            "SELECT run_uuid, lists FROM run_lists WHERE run_uuid IN ({ids})",
            &ids,
            |r| {
                let id: String = r.get(0)?;
                if let Some(&i) = index.get(id.as_str())
                    && let Some(run) = runs.get_mut(i)
                {
                    fill_lists(run, &r.get::<_, String>(1)?)?;
                    found[i] = true;
                }
                Ok(())
            },
        )?;
        from_tables.extend(
            ids.iter()
                .zip(&found)
                .filter(|(_, f)| !**f)
                .map(|(id, _)| id.clone()),
        );
    } else {
        from_tables.clone_from(&ids);
    }
    // the run a row belongs to (its column `col`)
    fn run_of<'a>(
        runs: &'a mut [Run],
        index: &HashMap<&str, usize>,
        r: &crate::db::Row<'_, '_>,
        col: usize,
    ) -> Result<Option<&'a mut Run>> {
        let id: String = r.get(col)?;
        Ok(index.get(id.as_str()).and_then(|&i| runs.get_mut(i)))
    }
    // kind, run, key (model id), text value (direction), number, is_nan, timestamp, step
    const ROWS: &str = "SELECT CAST(0 AS BIGINT) AS kind, run_uuid, key, value,
                CAST(NULL AS DOUBLE PRECISION) AS num, CAST(NULL AS BIGINT) AS is_nan,
                CAST(NULL AS BIGINT) AS ts, CAST(NULL AS BIGINT) AS step
         FROM params WHERE run_uuid IN ({ids})
         UNION ALL SELECT 1, run_uuid, key, value, NULL, NULL, NULL, NULL
         FROM tags WHERE run_uuid IN ({ids})
         UNION ALL SELECT 2, run_uuid, key, NULL, value, is_nan, timestamp, step
         FROM latest_metrics WHERE run_uuid IN ({ids})
         UNION ALL SELECT 3, run_uuid, model_id, direction, NULL, NULL, NULL, step
         FROM run_models WHERE run_uuid IN ({ids})";
    for_each_row_of(conn, ROWS, &from_tables, |r| {
        let Some(run) = run_of(runs, &index, r, 1)? else {
            return Ok(());
        };
        let key: String = r.get(2)?;
        match r.get::<_, i64>(0)? {
            0 => run.params.push(Tag::new(key, r.get::<_, String>(3)?)),
            1 => run.tags.push(Tag::new(key, r.get::<_, String>(3)?)),
            2 => run.metrics.push(Metric::new(
                key,
                read_value(r.get(4)?, r.get(5)?),
                r.get(6)?,
                r.get(7)?,
            )),
            _ => push_model(run, key, &r.get::<_, String>(3)?, r.get(7)?),
        }
        Ok(())
    })?;
    for run in runs.iter_mut() {
        run.params.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        run.tags.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        run.metrics.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        run.model_inputs.sort_unstable();
        run.model_outputs
            .sort_unstable_by(|a, b| a.model_id.cmp(&b.model_id));
    }
    for_each_row_of(
        conn,
        "SELECT i.run_uuid, i.tags, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
         FROM run_inputs i JOIN datasets d ON d.dataset_id = i.dataset_id
         WHERE i.run_uuid IN ({ids}) ORDER BY d.dataset_id",
        &ids,
        |r| {
            if let Some(run) = run_of(runs, &index, r, 0)? {
                let tags_json: String = r.get(1)?;
                let tags: Vec<(String, String)> =
                    serde_json::from_str::<Vec<(String, String)>>(&tags_json).unwrap_or_default();
                run.dataset_inputs.push(DatasetInput {
                    tags: tags.into_iter().map(|(k, v)| Tag::new(k, v)).collect(),
                    dataset: Dataset {
                        name: r.get(2)?,
                        digest: r.get(3)?,
                        source_type: r.get(4)?,
                        source: r.get(5)?,
                        schema: r.get(6)?,
                        profile: r.get(7)?,
                    },
                });
            }
            Ok(())
        },
    )?;
    Ok(())
}

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brisk", "calm", "clever", "crisp", "daring", "eager", "fancy", "gentle",
    "golden", "honest", "jolly", "keen", "lively", "lucid", "merry", "nimble", "polite", "proud",
    "quiet", "rapid", "silent", "sleek", "steady", "sunny", "swift", "tidy", "vivid", "witty",
];
const NOUNS: &[&str] = &[
    "badger", "bear", "crane", "deer", "eagle", "falcon", "finch", "fox", "gull", "hare", "heron",
    "ibis", "koala", "lark", "lynx", "mole", "newt", "otter", "owl", "panda", "quail", "raven",
    "seal", "shrew", "stoat", "swan", "tern", "toad", "vole", "wren",
];

fn generated_run_name(run_id: &str) -> String {
    let b = run_id.as_bytes();
    let h = |i: usize| b.get(i).copied().unwrap_or(0) as usize;
    let n = u32::from_str_radix(run_id.get(0..4).unwrap_or("0"), 16).unwrap_or(0) % 1000;
    format!(
        "{}-{}-{}",
        ADJECTIVES[(h(4) * 7 + h(5)) % ADJECTIVES.len()],
        NOUNS[(h(6) * 7 + h(7)) % NOUNS.len()],
        n
    )
}

pub(super) fn series_id(
    tx: &Conn,
    cache: &mut HashMap<String, i64>,
    run_id: &str,
    key: &str,
) -> Result<i64> {
    if let Some(&id) = cache.get(key) {
        return Ok(id);
    }
    let existing: Option<i64> = tx
        .prepare_cached("SELECT series_id FROM metric_series WHERE run_uuid = ? AND key = ?")?
        .query_row([run_id, key], |r| r.get(0))
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => tx
            .prepare_cached(
                "INSERT INTO metric_series (run_uuid, key) VALUES (?, ?) RETURNING series_id",
            )?
            .query_row([run_id, key], |r| r.get(0))?,
    };
    cache.insert(key.to_string(), id);
    Ok(id)
}

fn set_run_tag(tx: &Conn, run_id: &str, key: &str, value: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)
         ON CONFLICT(run_uuid, key) DO UPDATE SET value = excluded.value",
    )?
    .execute([run_id, key, value])?;
    if key == "mlflow.runName" {
        tx.prepare_cached("UPDATE runs SET name = ? WHERE run_uuid = ?")?
            .execute([value, run_id])?;
    }
    Ok(())
}

fn metric_point_newer(a: &Metric, b: &Metric) -> bool {
    let va = if a.value.is_nan() {
        f64::NEG_INFINITY
    } else {
        a.value
    };
    let vb = if b.value.is_nan() {
        f64::NEG_INFINITY
    } else {
        b.value
    };
    (a.step, a.timestamp)
        .cmp(&(b.step, b.timestamp))
        .then(va.partial_cmp(&vb).unwrap_or(std::cmp::Ordering::Equal))
        == std::cmp::Ordering::Greater
}

// --------------------------------------------------------------- registry

pub(super) fn create_run(tx: &Conn, req: CreateRun) -> Result<RunInfo> {
    let exp = experiment_active(tx, req.experiment_id)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let tag_name = req
        .tags
        .iter()
        .find(|t| t.key == "mlflow.runName")
        .map(|t| t.value.clone());
    let name = req
        .run_name
        .clone()
        .filter(|n| !n.is_empty())
        .or(tag_name)
        .unwrap_or_else(|| generated_run_name(&run_id));
    let artifact_uri = format!(
        "{}/{}/artifacts",
        exp.artifact_location.trim_end_matches('/'),
        run_id
    );
    let start = req.start_time.unwrap_or_else(now_ms);
    tx.execute(
        &format!(
            "INSERT INTO runs ({RUN_COLS}) VALUES (?, ?, ?, ?, 'RUNNING', ?, NULL, ?, 'active')"
        ),
        params![
            run_id,
            name,
            req.experiment_id,
            req.user_id,
            start,
            artifact_uri
        ],
    )?;
    for t in &req.tags {
        if t.key != "mlflow.runName" {
            set_run_tag(tx, &run_id, &t.key, &t.value)?;
        }
    }
    set_run_tag(tx, &run_id, "mlflow.runName", &name)?;
    load_run_info(tx, &run_id)
}

pub(super) fn get_run(c: &Conn, run_id: &str) -> Result<Run> {
    load_runs(c, &[run_id.to_string()])?
        .pop()
        .ok_or_else(|| not_found(format!("Run with id={run_id} not found")))
}

pub(super) fn update_run(tx: &Conn, run_id: &str, upd: UpdateRun) -> Result<RunInfo> {
    load_run_info(tx, run_id)?;
    if let Some(st) = upd.status {
        tx.execute(
            "UPDATE runs SET status = ? WHERE run_uuid = ?",
            params![st.as_str(), run_id],
        )?;
    }
    if let Some(end) = upd.end_time {
        tx.execute(
            "UPDATE runs SET end_time = ? WHERE run_uuid = ?",
            params![end, run_id],
        )?;
    }
    if let Some(name) = upd.run_name.filter(|n| !n.is_empty()) {
        set_run_tag(tx, run_id, "mlflow.runName", &name)?;
    }
    load_run_info(tx, run_id)
}

pub(super) fn delete_run(tx: &Conn, run_id: &str) -> Result<()> {
    load_run_info(tx, run_id)?;
    tx.execute(
        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE run_uuid = ?",
        params![now_ms(), run_id],
    )?;
    Ok(())
}

pub(super) fn restore_run(tx: &Conn, run_id: &str) -> Result<()> {
    load_run_info(tx, run_id)?;
    tx.execute(
        "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE run_uuid = ?",
        [run_id],
    )?;
    Ok(())
}

pub(super) fn log_batch(
    tx: &Conn,
    run_id: &str,
    metrics: &[Metric],
    params: &[Param],
    tags: &[Tag],
) -> Result<()> {
    // Conflicting values for one param key inside the batch are refused
    // before anything is written.
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for p in params {
        if let Some(prev) = seen.insert(&p.key, &p.value)
            && prev != p.value
        {
            return Err(invalid(format!(
                "Duplicate parameter keys with different values in the batch: '{}' ('{prev}' and '{}')",
                p.key, p.value
            )));
        }
    }
    active_run(tx, run_id)?;
    for p in params {
        let existing: Option<String> = tx
            .prepare_cached("SELECT value FROM params WHERE run_uuid = ? AND key = ?")?
            .query_row([run_id, &p.key], |r| r.get(0))
            .optional()?;
        match existing {
            Some(v) if v == p.value => {}
            Some(v) => {
                return Err(invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with value='{v}' for run ID='{run_id}'. Attempted logging new value '{}'.",
                    p.key, p.value
                )));
            }
            None => {
                tx.prepare_cached("INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)")?
                    .execute([run_id, &p.key, &p.value])?;
            }
        }
    }
    for t in tags {
        set_run_tag(tx, run_id, &t.key, &t.value)?;
    }
    if tx.is_postgres() {
        return match metrics.is_empty() {
            true => Ok(()),
            false => log_metrics_pg(tx, run_id, metrics),
        };
    }
    if !metrics.is_empty() {
        let mut cache = HashMap::new();
        let mut latest: HashMap<&str, &Metric> = HashMap::new();
        let sids = metrics
            .iter()
            .map(|m| series_id(tx, &mut cache, run_id, &m.key))
            .collect::<Result<Vec<i64>>>()?;
        for (chunk, sid_chunk) in metrics
            .chunks(POINTS_PER_INSERT)
            .zip(sids.chunks(POINTS_PER_INSERT))
        {
            let mut sql = String::from(
                "INSERT INTO metric_points (series_id, step, timestamp, value, is_nan, dataset_name, dataset_digest, model_id) VALUES ",
            );
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 {
                    "(?,?,?,?,?,?,?,?)"
                } else {
                    ",(?,?,?,?,?,?,?,?)"
                });
            }
            let mut args: Vec<SqlValue> = Vec::with_capacity(chunk.len() * 8);
            for (m, sid) in chunk.iter().zip(sid_chunk) {
                let (v, nan) = if m.value.is_nan() {
                    (None, 1)
                } else {
                    (Some(m.value), 0)
                };
                args.push(SqlValue::Integer(*sid));
                args.push(SqlValue::Integer(m.step));
                args.push(SqlValue::Integer(m.timestamp));
                args.push(v.map_or(SqlValue::Null, SqlValue::Real));
                args.push(SqlValue::Integer(nan));
                for t in [&m.dataset_name, &m.dataset_digest, &m.model_id] {
                    args.push(
                        t.as_ref()
                            .map_or(SqlValue::Null, |s| SqlValue::Text(s.clone())),
                    );
                }
            }
            tx.prepare_cached(&sql)?.execute(params_from_iter(args))?;
        }
        for m in metrics {
            let e = latest.entry(m.key.as_str()).or_insert(m);
            if metric_point_newer(m, e) {
                *e = m;
            }
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(run_uuid, key) DO UPDATE SET
                value = excluded.value, is_nan = excluded.is_nan,
                timestamp = excluded.timestamp, step = excluded.step
             WHERE (excluded.step, excluded.timestamp, COALESCE(excluded.value, -1e308))
                 >= (latest_metrics.step, latest_metrics.timestamp, COALESCE(latest_metrics.value, -1e308))",
        )?;
        for m in latest.values() {
            let (v, nan) = if m.value.is_nan() {
                (None, 1)
            } else {
                (Some(m.value), 0)
            };
            upsert.execute(params![run_id, m.key, v, nan, m.timestamp, m.step])?;
        }
    }
    Ok(())
}

/// PostgreSQL: a batch's metric points, any new series and the latest
/// values in ONE statement (columns bound whole as arrays), which also checks
/// that the run exists and is active. It needs no store-wide writer lock:
/// the run's row is share-locked (a concurrent delete or update of the run
/// waits for the batch), a series another connection adds at the same time
/// is taken from the conflict (`DO UPDATE … RETURNING` returns the row that
/// won), and a key's latest value only moves forward — `ON CONFLICT … WHERE`
/// is re-checked against the row a concurrent batch committed, with the
/// order [`metric_point_newer`] defines (step, timestamp, value; NaN
/// lowest). Keys are upserted in key order, so two batches never deadlock.
///
/// The points of one series (and dataset and model) in the batch are one row
/// of `metric_point_chunks`, as arrays in logging order (migration 17): ten
/// rows for a batch of ten keys × 100 steps, where a row per point wrote
/// 1,000 rows and 2,000 index entries.
pub(super) fn log_metrics_pg(tx: &Conn, run_id: &str, metrics: &[Metric]) -> Result<()> {
    // a chunk's points take the ids base, base + 1, …: fewer than 2^20 of them
    const MAX_POINTS: usize = 1 << 19;
    if metrics.len() > MAX_POINTS {
        for part in metrics.chunks(MAX_POINTS) {
            log_metrics_pg(tx, run_id, part)?;
        }
        return Ok(());
    }
    const SQL: &str = "WITH run AS (
            SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid = $1 FOR NO KEY UPDATE
        ), live AS (
            SELECT run_uuid FROM run WHERE lifecycle_stage = 'active'
        ), g AS (
            SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::int4[])
                WITH ORDINALITY AS g(key, dataset_name, dataset_digest, model_id, lo, hi, ord)
        ), keys AS (
            SELECT DISTINCT key FROM g
        ), old AS (
            SELECT s.key, s.series_id FROM metric_series s
            WHERE s.run_uuid = $1 AND s.key IN (SELECT key FROM keys)
        ), new AS (
            INSERT INTO metric_series (run_uuid, key)
            SELECT live.run_uuid, k.key FROM live, keys k
            WHERE k.key NOT IN (SELECT key FROM old)
            ORDER BY k.key
            ON CONFLICT (run_uuid, key) DO UPDATE SET key = excluded.key
            RETURNING key, series_id
        ), ser AS (
            SELECT key, series_id FROM old UNION ALL SELECT key, series_id FROM new
        ), pts AS (
            INSERT INTO metric_point_chunks (series_id, dataset_name, dataset_digest, model_id, steps, timestamps, vals)
            SELECT ser.series_id, g.dataset_name, g.dataset_digest, g.model_id,
                   ($8::int8[])[g.lo:g.hi], ($9::int8[])[g.lo:g.hi], ($10::float8[])[g.lo:g.hi]
            FROM g JOIN ser ON ser.key = g.key
            WHERE EXISTS (SELECT 1 FROM live)
            ORDER BY g.ord
            RETURNING 1
        ), latest AS (
            INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step)
            SELECT live.run_uuid, l.key, l.value, l.is_nan, l.ts, l.step
            FROM live, unnest($11::text[], $12::float8[], $13::int8[], $14::int8[], $15::int8[])
                AS l(key, value, is_nan, ts, step)
            ORDER BY l.key
            ON CONFLICT (run_uuid, key) DO UPDATE SET
                value = excluded.value, is_nan = excluded.is_nan,
                timestamp = excluded.timestamp, step = excluded.step
            WHERE (excluded.step, excluded.timestamp, COALESCE(excluded.value, -1e308))
                >= (latest_metrics.step, latest_metrics.timestamp, COALESCE(latest_metrics.value, -1e308))
            RETURNING 1
        )
        SELECT (SELECT lifecycle_stage FROM run), (SELECT count(*) FROM pts), (SELECT count(*) FROM latest)";
    if metrics.is_empty() {
        active_run(tx, run_id)?;
        return Ok(());
    }
    let value = |m: &Metric| (!m.value.is_nan()).then_some(m.value);
    let nan = |m: &Metric| i64::from(m.value.is_nan());
    // The chunks, grouped here rather than in SQL (a GROUP BY with ordered
    // array_agg cost PostgreSQL more than the writes): the points reordered
    // so that each chunk's are contiguous and in logging order, and per
    // chunk its key, dataset, model and 1-based bounds into those arrays.
    type ChunkKey<'m> = (&'m str, Option<&'m str>, Option<&'m str>, Option<&'m str>);
    let mut chunk_of: HashMap<ChunkKey, usize> = HashMap::new();
    let mut chunks: Vec<(ChunkKey, Vec<&Metric>)> = Vec::new();
    for m in metrics {
        let k = (
            m.key.as_str(),
            m.dataset_name.as_deref(),
            m.dataset_digest.as_deref(),
            m.model_id.as_deref(),
        );
        let i = *chunk_of.entry(k).or_insert_with(|| {
            chunks.push((k, Vec::new()));
            chunks.len() - 1
        });
        chunks[i].1.push(m);
    }
    let n = chunks.len();
    let (mut keys, mut ds_names, mut ds_digests, mut models) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut los, mut his) = (Vec::<i32>::with_capacity(n), Vec::<i32>::with_capacity(n));
    let mut steps: Vec<i64> = Vec::with_capacity(metrics.len());
    let mut times: Vec<i64> = Vec::with_capacity(metrics.len());
    let mut values: Vec<Option<f64>> = Vec::with_capacity(metrics.len());
    for ((key, ds_name, ds_digest, model), points) in &chunks {
        keys.push(*key);
        ds_names.push(*ds_name);
        ds_digests.push(*ds_digest);
        models.push(*model);
        // (at most MAX_POINTS points: the bounds fit an int4)
        los.push(steps.len() as i32 + 1);
        for m in points {
            steps.push(m.step);
            times.push(m.timestamp);
            values.push(value(m));
        }
        his.push(steps.len() as i32);
    }
    // the newest point of each key, in key order
    let mut latest: std::collections::BTreeMap<&str, &Metric> = std::collections::BTreeMap::new();
    for m in metrics {
        let e = latest.entry(m.key.as_str()).or_insert(m);
        if metric_point_newer(m, e) {
            *e = m;
        }
    }
    let l_keys: Vec<&str> = latest.keys().copied().collect();
    let l_values: Vec<Option<f64>> = latest.values().map(|m| value(m)).collect();
    let l_nans: Vec<i64> = latest.values().map(|m| nan(m)).collect();
    let l_times: Vec<i64> = latest.values().map(|m| m.timestamp).collect();
    let l_steps: Vec<i64> = latest.values().map(|m| m.step).collect();
    let mut rows = tx.pg_query(
        SQL,
        &[
            &run_id,
            &keys,
            &ds_names,
            &ds_digests,
            &models,
            &los,
            &his,
            &steps,
            &times,
            &values,
            &l_keys,
            &l_values,
            &l_nans,
            &l_times,
            &l_steps,
        ],
    )?;
    let stage: Option<String> = match rows.next()? {
        Some(r) => r.get(0)?,
        None => None,
    };
    match stage.as_deref() {
        None => Err(not_found(format!("Run with id={run_id} not found"))),
        Some("active") => Ok(()),
        Some(_) => Err(invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is deleted."
        ))),
    }
}

pub(super) fn delete_tag(tx: &Conn, run_id: &str, key: &str) -> Result<()> {
    active_run(tx, run_id)?;
    let n = tx.execute(
        "DELETE FROM tags WHERE run_uuid = ? AND key = ?",
        [run_id, key],
    )?;
    if n == 0 {
        return Err(not_found(format!(
            "No tag with name: {key} in run with id {run_id}"
        )));
    }
    Ok(())
}

pub(super) fn log_inputs(
    tx: &Conn,
    run_id: &str,
    datasets: &[DatasetInput],
    model_inputs: &[String],
) -> Result<()> {
    let info = active_run(tx, run_id)?;
    for d in datasets {
        let ds = &d.dataset;
        tx.execute(
            "INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema, profile)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(experiment_id, name, digest) DO NOTHING",
            params![info.experiment_id, ds.name, ds.digest, ds.source_type, ds.source, ds.schema, ds.profile],
        )?;
        let dataset_id: i64 = tx.query_row(
            "SELECT dataset_id FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
            params![info.experiment_id, ds.name, ds.digest],
            |r| r.get(0),
        )?;
        let tags: Vec<(&str, &str)> = d
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        let tags_json =
            serde_json::to_string(&tags).map_err(|e| StoreError::Internal(e.to_string()))?;
        tx.execute(
            "INSERT INTO run_inputs (run_uuid, dataset_id, tags) VALUES (?, ?, ?)
             ON CONFLICT(run_uuid, dataset_id) DO UPDATE SET tags = excluded.tags",
            params![run_id, dataset_id, tags_json],
        )?;
    }
    for m in model_inputs {
        tx.execute(
            "INSERT INTO run_models (run_uuid, model_id, direction, step) VALUES (?, ?, 'input', 0)
             ON CONFLICT(run_uuid, direction, model_id) DO NOTHING",
            params![run_id, m],
        )?;
    }
    Ok(())
}

pub(super) fn log_outputs(tx: &Conn, run_id: &str, outputs: &[ModelOutput]) -> Result<()> {
    active_run(tx, run_id)?;
    for o in outputs {
        tx.execute(
            "INSERT INTO run_models (run_uuid, model_id, direction, step) VALUES (?, ?, 'output', ?)
             ON CONFLICT(run_uuid, direction, model_id) DO UPDATE SET step = excluded.step",
            params![run_id, o.model_id, o.step],
        )?;
    }
    Ok(())
}

const FILTER: Filterable = Filterable {
    attrs: &[
        Attr {
            names: &["start_time", "created", "Created"],
            col: "r.start_time",
            kind: Kind::Number,
        },
        Attr {
            names: &["end_time"],
            col: "r.end_time",
            kind: Kind::Number,
        },
        Attr {
            names: &["run_id", "run_uuid"],
            col: "r.run_uuid",
            kind: Kind::Text,
        },
        Attr {
            names: &["run_name", "run name", "Run name"],
            col: "r.name",
            kind: Kind::Text,
        },
        Attr {
            names: &["status"],
            col: "r.status",
            kind: Kind::Text,
        },
        Attr {
            names: &["user_id"],
            col: "r.user_id",
            kind: Kind::Text,
        },
        Attr {
            names: &["artifact_uri"],
            col: "r.artifact_uri",
            kind: Kind::Text,
        },
        Attr {
            names: &["lifecycle_stage"],
            col: "r.lifecycle_stage",
            kind: Kind::Text,
        },
    ],
    tags: Some(KvTable {
        table: "tags",
        id_cond: "kv.run_uuid = r.run_uuid",
        null_inclusive_ne: false,
    }),
    params: Some(KvTable {
        table: "params",
        id_cond: "kv.run_uuid = r.run_uuid",
        null_inclusive_ne: false,
    }),
    hook: Some(run_clause),
    unknown_attribute: |key| {
        format!(
            "Invalid attribute key '{key}' specified. Valid keys are 'run_id', 'run_name', 'status', 'user_id', 'artifact_uri', 'start_time', 'end_time', 'created'"
        )
    },
    // (metrics and datasets are `run_clause`'s)
    unknown_entity: |c| format!("Invalid entity in run search filter: '{}'", c.key),
};

/// Runs' own filter rules: metrics (a number against the latest value),
/// datasets (through the run's inputs) and no IN/NOT IN on params and tags.
fn run_clause(c: &Clause, w: &mut Where) -> Result<bool> {
    match c.entity {
        Entity::Metric => {
            if !matches!(c.value, Value::Number(_)) {
                return Err(invalid(format!(
                    "Expected a numeric value for metric '{}' (write it without quotes)",
                    c.key
                )));
            }
            let mut inner = Where::default();
            numeric_cmp("m.value", c, &mut inner)?;
            let cond = inner.sql();
            let mut args = vec![text(&c.key)];
            args.extend(inner.args);
            w.push(
                format!(
                    "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ? AND m.is_nan = 0 AND {cond})"
                ),
                args,
            );
        }
        Entity::Param | Entity::Tag if matches!(c.op, Op::In | Op::NotIn) => {
            return Err(invalid(format!(
                "Invalid comparator '{}' for '{}': params and tags support =, !=, LIKE, ILIKE, IS NULL and IS NOT NULL",
                c.op.name(),
                c.key
            )));
        }
        Entity::Dataset => {
            let col = match c.key.as_str() {
                "name" => "d.name",
                "digest" => "d.digest",
                "context" => "i.tags",
                other => {
                    return Err(invalid(format!(
                        "Invalid dataset key '{other}'; valid keys are name, digest, context"
                    )));
                }
            };
            let mut inner = Where::default();
            if c.key == "context" {
                // context is stored inside the input's tag list
                match (&c.op, &c.value) {
                    (Op::Eq, Value::Str(s)) => {
                        // the pair as the tag list's JSON holds it, matched
                        // literally (a '_' or '%' in the context is no wildcard)
                        let pair = serde_json::to_string(&("mlflow.data.context", s))
                            .map_err(|e| StoreError::Internal(e.to_string()))?;
                        inner.push(
                            format!("i.tags LIKE ? {LIKE_ESCAPE}"),
                            [SqlValue::Text(format!("%{}%", like_literal(&pair)))],
                        )
                    }
                    _ => string_cmp(col, c, &mut inner)?,
                }
            } else {
                string_cmp(col, c, &mut inner)?;
            }
            w.push(
                format!(
                    "EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.dataset_id = i.dataset_id WHERE i.run_uuid = r.run_uuid AND {})",
                    inner.sql()
                ),
                inner.args,
            );
        }
        Entity::Param | Entity::Tag | Entity::Attribute => return Ok(false),
    }
    Ok(true)
}

const ORDER: Sortable = Sortable {
    attrs: &[
        (&["start_time", "created", "Created"], "r.start_time"),
        (&["end_time"], "r.end_time"),
        (&["run_id"], "r.run_uuid"),
        (&["run_name", "run name", "Run name"], "r.name"),
        (&["status"], "r.status"),
        (&["user_id"], "r.user_id"),
        (&["artifact_uri"], "r.artifact_uri"),
    ],
    any_entity: false,
    // NULLs (runs without the key) sort last in both directions.
    nulls_last: true,
    hook: Some(run_order),
    unknown: |_, key| {
        format!(
            "Invalid order_by attribute '{key}'; valid: artifact_uri, end_time, run_id, run_name, start_time, status, user_id"
        )
    },
};

/// Runs order by a metric's latest value, a param or a tag too (a subquery
/// per key); not by a dataset field.
fn run_order(o: &OrderBy, item: &str) -> Result<Option<(String, Vec<SqlValue>)>> {
    let sql = match o.entity {
        Entity::Metric => {
            "(SELECT m.value FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ?)"
        }
        Entity::Param => {
            "(SELECT p.value FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = ?)"
        }
        Entity::Tag => "(SELECT t.value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = ?)",
        Entity::Dataset => {
            return Err(invalid(format!(
                "Cannot order runs by dataset field '{item}'"
            )));
        }
        Entity::Attribute => return Ok(None),
    };
    Ok(Some((sql.to_string(), vec![text(&o.key)])))
}

pub(super) fn search_runs(c: &Conn, q: &SearchRuns) -> Result<Page<Run>> {
    let mut w = Where::default();
    if q.experiment_ids.is_empty() {
        return Ok(Page {
            items: Vec::new(),
            next_page_token: None,
        });
    }
    w.push(
        format!(
            "r.experiment_id IN ({})",
            placeholders(q.experiment_ids.len())
        ),
        q.experiment_ids.iter().map(|i| SqlValue::Integer(*i)),
    );
    w.push(view_clause("r.lifecycle_stage", q.view_type), []);
    filter_sql(&FILTER, &q.filter, &mut w)?;
    let mut order = Vec::new();
    let mut order_args: Vec<SqlValue> = Vec::new();
    order_sql(&ORDER, &q.order_by, &mut order, &mut order_args)?;
    // (SQLite puts NULL last in descending order, PostgreSQL first: say it)
    order.push("r.start_time DESC NULLS LAST".into());
    order.push("r.run_uuid ASC".into());
    let offset = decode_page_token(q.page_token.as_deref())?;
    let max = q.max_results.max(1);
    // the hits' own columns come with them: only their lists are loaded after
    let sql = format!(
        "SELECT {RUN_COLS} FROM runs r WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        w.sql(),
        order.join(", "),
        max + 1,
        offset
    );
    let args: Vec<&SqlValue> = w.args.iter().chain(order_args.iter()).collect();
    let mut runs: Vec<Run> = c
        .prepare(&sql)?
        .query_map(params_from_iter(args), |r| Ok(bare_run(run_info_row(r)?)))?
        .collect::<crate::db::Result<_>>()?;
    let has_more = runs.len() > max;
    runs.truncate(max);
    load_run_details(c, &mut runs)?;
    Ok(Page {
        items: runs,
        next_page_token: has_more.then(|| encode_page_token(offset + max)),
    })
}

/// `FROM` text joining a run's series `s` to its points `p` (the columns of
/// `metric_points`). On PostgreSQL the points of each series are read in a
/// LATERAL subquery by `series_id`: through the `metric_points` view (a
/// UNION ALL with an unnest, which the planner cannot push a join into) a
/// history would unnest every chunk of the database.
fn series_points(c: &Conn) -> &'static str {
    if c.is_postgres() {
        "metric_series s CROSS JOIN LATERAL (
            SELECT r.step, r.timestamp, r.value, r.is_nan, r.dataset_name, r.dataset_digest,
                   r.model_id, r.rowid
            FROM metric_point_rows r WHERE r.series_id = s.series_id
            UNION ALL
            SELECT u.step, u.timestamp, u.value, CASE WHEN u.value IS NULL THEN 1 ELSE 0 END::BIGINT,
                   ch.dataset_name, ch.dataset_digest, ch.model_id, ch.base + u.ord - 1
            FROM metric_point_chunks ch
            CROSS JOIN LATERAL unnest(ch.steps, ch.timestamps, ch.vals)
                WITH ORDINALITY AS u(step, timestamp, value, ord)
            WHERE ch.series_id = s.series_id
         ) AS p"
    } else {
        "metric_points p JOIN metric_series s ON s.series_id = p.series_id"
    }
}

pub(super) fn metric_history(
    c: &Conn,
    run_id: &str,
    key: &str,
    max_results: usize,
    page_token: Option<&str>,
) -> Result<Page<Metric>> {
    let offset = decode_page_token(page_token)?;
    let max = max_results.max(1);
    load_run_info(c, run_id)?;
    let mut st = c.prepare_cached(&format!(
        "SELECT p.step, p.timestamp, p.value, p.is_nan, p.dataset_name, p.dataset_digest, p.model_id
         FROM {}
         WHERE s.run_uuid = ? AND s.key = ?
         ORDER BY p.step, p.timestamp, p.rowid LIMIT ? OFFSET ?",
        series_points(c)
    ))?;
    let items = st
        .query_map(params![run_id, key, (max + 1) as i64, offset as i64], |r| {
            Ok(Metric {
                key: key.to_string(),
                step: r.get(0)?,
                timestamp: r.get(1)?,
                value: read_value(r.get(2)?, r.get(3)?),
                dataset_name: r.get(4)?,
                dataset_digest: r.get(5)?,
                model_id: r.get(6)?,
            })
        })?
        .collect::<crate::db::Result<Vec<_>>>()?;
    Ok(page(items, offset, max))
}

pub(super) fn metric_points_after(
    c: &Conn,
    run_id: &str,
    cursor: i64,
    limit: usize,
) -> Result<(Vec<Metric>, i64)> {
    let limit = limit.clamp(1, 100_000) as i64;
    let cursor = cursor.max(0); // ids start at 1 (and `cursor - 2^20` must not overflow)
    // PostgreSQL: the chunks that can hold a point after the cursor are
    // found by their `base` (index on series and base) before any is
    // unnested — the view would unnest every chunk of the run.
    const PG: &str = "SELECT rowid, key, step, timestamp, value, is_nan FROM (
            SELECT p.rowid, s.key, p.step, p.timestamp, p.value, p.is_nan
            FROM metric_point_rows p JOIN metric_series s ON s.series_id = p.series_id
            WHERE s.run_uuid = ?1 AND p.rowid > ?2
            UNION ALL
            SELECT c.base + u.ord - 1, s.key, u.step, u.timestamp, u.value,
                   CASE WHEN u.value IS NULL THEN 1 ELSE 0 END::BIGINT
            FROM metric_point_chunks c JOIN metric_series s ON s.series_id = c.series_id
            CROSS JOIN LATERAL unnest(c.steps, c.timestamps, c.vals)
                WITH ORDINALITY AS u(step, timestamp, value, ord)
            WHERE s.run_uuid = ?1 AND c.base > ?2 - 1048576 AND c.base + u.ord - 1 > ?2
         ) AS p ORDER BY rowid LIMIT ?3";
    const SQLITE: &str = "SELECT p.rowid, s.key, p.step, p.timestamp, p.value, p.is_nan
         FROM metric_points p JOIN metric_series s ON s.series_id = p.series_id
         WHERE s.run_uuid = ?1 AND p.rowid > ?2
         ORDER BY p.rowid LIMIT ?3";
    let mut st = c.prepare_cached(if c.is_postgres() { PG } else { SQLITE })?;
    let mut next = cursor;
    let items = st
        .query_map(params![run_id, cursor, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Metric::new(
                    r.get::<_, String>(1)?,
                    read_value(r.get(4)?, r.get(5)?),
                    r.get(3)?,
                    r.get(2)?,
                ),
            ))
        })?
        .collect::<crate::db::Result<Vec<_>>>()?;
    let items = items
        .into_iter()
        .map(|(rowid, m)| {
            next = next.max(rowid);
            m
        })
        .collect();
    Ok((items, next))
}

pub(super) fn metric_history_bulk_interval(
    c: &Conn,
    run_ids: &[String],
    key: &str,
    start_step: Option<i64>,
    end_step: Option<i64>,
    max_results: usize,
) -> Result<Vec<RunMetric>> {
    // MLflow's SqlAlchemyStore: the distinct points (its primary key makes
    // them so) ordered by (step, timestamp, value, is_nan), a NaN counting
    // as 0 as MLflow stores it; NTILE(max) buckets, the first point of each,
    // and the last point, which replaces the last pick when already at max.
    // (NTILE's argument is a 32-bit INTEGER on PostgreSQL)
    let max = i64::try_from(max_results.clamp(1, i32::MAX as usize)).unwrap_or(1);
    let lo = start_step.unwrap_or(i64::MIN);
    let hi = end_step.unwrap_or(i64::MAX);
    let points = format!(
        "SELECT DISTINCT p.step, p.timestamp, p.value, p.is_nan, COALESCE(p.value, 0) AS v
         FROM {}
         WHERE s.run_uuid = ?1 AND s.key = ?2 AND p.step BETWEEN ?3 AND ?4",
        series_points(c)
    );
    let sampled = format!(
        "WITH pts AS ({points}),
         b AS (SELECT step, timestamp, value, is_nan, v,
                      NTILE(?5) OVER (ORDER BY step, timestamp, v, is_nan) AS bucket FROM pts),
         r AS (SELECT step, timestamp, value, is_nan, v,
                      ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY step, timestamp, v, is_nan) AS rn FROM b)
         SELECT step, timestamp, value, is_nan FROM r WHERE rn = 1
         ORDER BY step, timestamp, v, is_nan"
    );
    let last = format!(
        "SELECT step, timestamp, value, is_nan FROM ({points}) AS pts
         ORDER BY step DESC, timestamp DESC, v DESC, is_nan DESC LIMIT 1"
    );
    // (an unknown run has no points: MLflow's store does not look runs up here)
    let row = |r: &crate::db::Row| -> crate::db::Result<(i64, i64, Option<f64>, bool)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    };
    let mut out = Vec::new();
    for run_id in run_ids {
        let mut rows: Vec<(i64, i64, Option<f64>, bool)> = c
            .prepare_cached(&sampled)?
            .query_map(params![run_id, key, lo, hi, max], row)?
            .collect::<crate::db::Result<_>>()?;
        let last_row = c
            .prepare_cached(&last)?
            .query_row(params![run_id, key, lo, hi], row)
            .optional()?;
        if let Some(l) = last_row
            && rows.last() != Some(&l)
        {
            if rows.len() as i64 >= max {
                rows.pop();
            }
            rows.push(l);
        }
        out.extend(
            rows.into_iter()
                .map(|(step, timestamp, value, is_nan)| RunMetric {
                    run_id: run_id.clone(),
                    metric: Metric::new(key, read_value(value, is_nan), timestamp, step),
                }),
        );
    }
    Ok(out)
}

pub(super) fn search_datasets(c: &Conn, experiment_ids: &[i64]) -> Result<Vec<DatasetSummary>> {
    if experiment_ids.is_empty() {
        return Ok(Vec::new());
    }
    // MLflow's `_search_datasets`: distinct (experiment, name, digest,
    // context) over the runs' inputs, the context from the input's
    // `mlflow.data.context` tag (absent when it has none), at most 1000,
    // by dataset and then context (none first). The input's tags are a
    // JSON list read here, not in SQL: SQLite's and PostgreSQL's JSON
    // functions differ.
    let sql = format!(
        "SELECT DISTINCT d.dataset_id, d.experiment_id, d.name, d.digest, i.tags
         FROM datasets d
         JOIN run_inputs i ON i.dataset_id = d.dataset_id
         WHERE d.experiment_id IN ({})
         ORDER BY d.dataset_id",
        placeholders(experiment_ids.len())
    );
    let rows: Vec<(i64, DatasetSummary, String)> = c
        .prepare(&sql)?
        .query_map(params_from_iter(experiment_ids), |r| {
            Ok((
                r.get(0)?,
                DatasetSummary {
                    experiment_id: r.get(1)?,
                    name: r.get(2)?,
                    digest: r.get(3)?,
                    context: None,
                },
                r.get(4)?,
            ))
        })?
        .collect::<crate::db::Result<_>>()?;
    let mut found: Vec<(i64, DatasetSummary)> = Vec::new();
    for (dataset_id, summary, tags) in rows {
        let tags: Vec<(String, String)> = serde_json::from_str(&tags).unwrap_or_default();
        let contexts: Vec<String> = tags
            .into_iter()
            .filter(|(k, _)| k == "mlflow.data.context")
            .map(|(_, v)| v)
            .collect();
        if contexts.is_empty() {
            found.push((dataset_id, summary));
        } else {
            for ctx in contexts {
                found.push((
                    dataset_id,
                    DatasetSummary {
                        context: Some(ctx),
                        ..summary.clone()
                    },
                ));
            }
        }
    }
    found.sort_by(|a, b| (a.0, &a.1.context).cmp(&(b.0, &b.1.context)));
    found.dedup_by(|a, b| a.0 == b.0 && a.1.context == b.1.context);
    Ok(found.into_iter().take(1000).map(|(_, d)| d).collect())
}

pub(super) fn metric_keys(c: &Conn, experiment_ids: &[i64]) -> Result<Vec<String>> {
    // (`IN ()` is an empty list to SQLite, a syntax error to PostgreSQL)
    if experiment_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT DISTINCT m.key FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid
         WHERE r.experiment_id IN ({}) ORDER BY m.key",
        placeholders(experiment_ids.len())
    );
    Ok(c.prepare(&sql)?
        .query_map(params_from_iter(experiment_ids), |r| r.get(0))?
        .collect::<crate::db::Result<_>>()?)
}
