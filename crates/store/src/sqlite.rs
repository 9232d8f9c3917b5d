//! The embedded metadata store: SQLite in WAL mode.
//!
//! One writer connection behind a mutex (SQLite allows one writer at a time;
//! serialising writes here instead of in SQLite means no "database is
//! locked" errors), and a pool of reader connections that never block the
//! writer thanks to WAL. `synchronous=NORMAL` in WAL mode makes every
//! committed transaction survive a crash of the process (`kill -9`); only a
//! power loss can lose the last transactions, never corrupt the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use rusqlite::Connection;

use crate::db::{Conn, OptionalExtension, PgPool, Val as SqlValue, params, params_from_iter};

use crate::filter::{self, Clause, Entity, LIKE_ESCAPE, Op, Value, like_literal, like_pattern};
use crate::*;

mod genai;
pub mod import;
mod jobs;
mod migrate;
pub use migrate::CopyReport;
mod mlflow_webhooks;
mod model_cards;
mod traces;
mod webhooks;

const MIGRATIONS: &str = include_str!("migrations.sql");
const MIGRATIONS_PG: &str = include_str!("migrations_pg.sql");
/// IN-lists are sent in chunks of this many ids.
const CHUNK: usize = 500;

pub struct SqlStore {
    backend: Backend,
    /// This process's visible writes (a cheap "did I write?" for the cache below).
    generation: AtomicU64,
    /// The database's write generation as last read: (when, `generation` then, value).
    generation_read: Mutex<Option<(std::time::Instant, u64, u64)>>,
}

/// Where the metadata lives.
enum Backend {
    /// The embedded default: one file.
    Sqlite {
        path: PathBuf,
        writer: Mutex<Connection>,
        readers: Mutex<Vec<Connection>>,
        /// Opened only to be read (`atelier migrate`'s source): the file,
        /// its WAL included, is never changed.
        read_only: bool,
    },
    /// A PostgreSQL database (`postgres://…`).
    Postgres { url: String, pool: Box<PgPool> },
}

/// Page cache per connection, in KiB: the writer keeps the hot indexes,
/// readers (up to `MAX_READERS`, kept open) stay small so idle memory stays
/// low after heavy searches.
const WRITER_CACHE_KIB: i64 = 32_000;
const READER_CACHE_KIB: i64 = 8_000;
const MAX_READERS: usize = 4;
/// Metric points are inserted this many rows per statement.
const POINTS_PER_INSERT: usize = 64;

fn configure(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "case_sensitive_like", "ON")?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

fn migrations() -> Vec<(i64, String)> {
    split_migrations(MIGRATIONS)
}

fn pg_migrations() -> Vec<(i64, String)> {
    split_migrations(MIGRATIONS_PG)
}

fn split_migrations(text: &str) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("-- migration ") {
            let n: i64 = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            out.push((n, String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

/// Schema version this build knows (the last migration).
pub fn schema_version() -> i64 {
    migrations().last().map(|m| m.0).unwrap_or(0)
}

impl SqlStore {
    /// Open (creating if needed) the database file and bring its schema up
    /// to date. Refuses a database written by a newer Atelier.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Internal(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let mut conn = Connection::open(&path).map_err(sql_err)?;
        configure(&conn, WRITER_CACHE_KIB).map_err(sql_err)?;
        let current: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql_err)?;
        let known = schema_version();
        if current > known {
            return Err(StoreError::Internal(format!(
                "{} has schema version {current}, newer than this Atelier understands ({known}); upgrade Atelier",
                path.display()
            )));
        }
        for (n, sql) in migrations() {
            if n > current {
                let tx = conn.transaction().map_err(sql_err)?;
                tx.execute_batch(&sql).map_err(sql_err)?;
                tx.pragma_update(None, "user_version", n).map_err(sql_err)?;
                tx.commit().map_err(sql_err)?;
                tracing::info!(version = n, "applied metadata migration");
            }
        }
        let store = SqlStore {
            backend: Backend::Sqlite {
                path,
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
                read_only: false,
            },
            generation: AtomicU64::new(0),
            generation_read: Mutex::new(None),
        };
        store.ensure_default_experiment()?;
        Ok(store)
    }

    /// Open an existing SQLite store only to read it: nothing is migrated
    /// or written, and every write is refused. Its schema must be this
    /// Atelier's (start this version's `atelier serve` on it once to upgrade).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        use rusqlite::OpenFlags;
        let path = path.as_ref().to_path_buf();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(sql_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql_err)?;
        let current: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql_err)?;
        let known = schema_version();
        if current != known {
            return Err(StoreError::InvalidState(format!(
                "{} has schema version {current} but this Atelier's is {known}: {}",
                path.display(),
                if current < known {
                    "start this version's `atelier serve` on it once to upgrade it first"
                } else {
                    "use the newer Atelier that wrote it"
                }
            )));
        }
        Ok(SqlStore {
            backend: Backend::Sqlite {
                path,
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
                read_only: true,
            },
            generation: AtomicU64::new(0),
            generation_read: Mutex::new(None),
        })
    }

    /// Open the store a location names: a `postgres://` (or
    /// `postgresql://`) URL, else the path of a SQLite file.
    pub fn open_url(location: &str) -> Result<Self> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            Self::connect(location)
        } else {
            Self::open(location)
        }
    }

    /// Connect to a PostgreSQL database and bring its schema up to date.
    /// Refuses a database written by a newer Atelier. Several processes
    /// may start at once: migrations run under the writer lock.
    pub fn connect(url: &str) -> Result<Self> {
        let pool = PgPool::new(url)?;
        let known = schema_version();
        pool.transaction(true, |c: &Conn| -> Result<()> {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS atelier_schema_version (version BIGINT NOT NULL)",
            )?;
            let current: i64 = c
                .query_row("SELECT MAX(version) FROM atelier_schema_version", [], |r| {
                    r.get::<_, Option<i64>>(0)
                })?
                .unwrap_or(0);
            if current > known {
                return Err(StoreError::Internal(format!(
                    "the database has schema version {current}, newer than this Atelier understands ({known}); upgrade Atelier"
                )));
            }
            for (n, sql) in pg_migrations() {
                if n > current {
                    c.execute_batch(&sql)?;
                    c.execute("DELETE FROM atelier_schema_version", [])?;
                    c.execute("INSERT INTO atelier_schema_version (version) VALUES (?1)", [n])?;
                    tracing::info!(version = n, "applied metadata migration (PostgreSQL)");
                }
            }
            Ok(())
        })?;
        let store = SqlStore {
            backend: Backend::Postgres {
                url: crate::db::redact_url(url),
                pool: Box::new(pool),
            },
            generation: AtomicU64::new(0),
            generation_read: Mutex::new(None),
        };
        store.ensure_default_experiment()?;
        Ok(store)
    }

    /// The SQLite file, when the store is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite { path, .. } => Some(path),
            Backend::Postgres { .. } => None,
        }
    }

    /// Where the store is, for people: the SQLite path, or the PostgreSQL
    /// URL without its password.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path, .. } => path.display().to_string(),
            Backend::Postgres { url, .. } => url.clone(),
        }
    }

    /// Which SQL dialect the store speaks.
    pub fn dialect(&self) -> crate::db::Dialect {
        match &self.backend {
            Backend::Sqlite { .. } => crate::db::Dialect::Sqlite,
            Backend::Postgres { .. } => crate::db::Dialect::Postgres,
        }
    }

    fn ensure_default_experiment(&self) -> Result<()> {
        self.write(|tx| {
            let exists: bool = tx
                .query_row("SELECT 1 FROM experiments WHERE experiment_id = 0", [], |_| {
                    Ok(true)
                })
                .optional()?
                .unwrap_or(false);
            if !exists {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
                     VALUES (0, 'Default', 'mlflow-artifacts:/0', ?1, ?1)",
                    [now],
                )?;
            }
            Ok(())
        })
    }

    /// A visible write: it moves the write generation in the same
    /// transaction (live pages of every process on the database reload).
    fn write<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let out = self.write_quiet(|c| {
            let out = f(c)?;
            c.prepare_cached("UPDATE atelier_generation SET n = n + 1 WHERE id = 1")?
                .execute([])?;
            Ok(out)
        })?;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(out)
    }

    /// A write that is visible only when `changed` says its outcome changed
    /// something: a poll that finds nothing to do (an idle worker's claim, a
    /// reap with no expired lease) commits without moving the generation, so
    /// an idle server's pages stay put.
    fn write_if<T>(
        &self,
        f: impl FnOnce(&Conn) -> Result<T>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T> {
        let mut moved = false;
        let out = self.write_quiet(|c| {
            let out = f(c)?;
            if changed(&out) {
                c.prepare_cached("UPDATE atelier_generation SET n = n + 1 WHERE id = 1")?
                    .execute([])?;
                moved = true;
            }
            Ok(out)
        })?;
        if moved {
            self.generation.fetch_add(1, Ordering::Release);
        }
        Ok(out)
    }

    /// A write that changes nothing a page shows (a lease renewal): no new
    /// write generation, so live pages do not reload for it.
    fn write_quiet<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => {
                let mut conn = writer.lock().unwrap_or_else(|e| e.into_inner());
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(crate::db::DbError::from)?;
                let out = f(&Conn::sqlite(&tx))?;
                tx.commit().map_err(crate::db::DbError::from)?;
                Ok(out)
            }
            Backend::Postgres { pool, .. } => pool.transaction(true, f),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let (path, readers) = match &self.backend {
            Backend::Sqlite {
                path,
                readers,
                read_only,
                ..
            } => {
                if *read_only {
                    // the one connection opened read-only
                    return self.read_only_conn(f);
                }
                (path, readers)
            }
            Backend::Postgres { pool, .. } => return pool.transaction(false, f),
        };
        let conn = readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open(path).map_err(crate::db::DbError::from)?;
                configure(&c, READER_CACHE_KIB).map_err(crate::db::DbError::from)?;
                c
            }
        };
        let out = f(&Conn::sqlite(&conn));
        let mut pool = readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_READERS {
            pool.push(conn);
        }
        out
    }
}

impl SqlStore {
    fn read_only_conn<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => {
                let conn = writer.lock().unwrap_or_else(|e| e.into_inner());
                f(&Conn::sqlite(&conn))
            }
            Backend::Postgres { .. } => Err(StoreError::Internal("not a SQLite store".into())),
        }
    }
}

fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(crate::db::DbError::from(e))
}

// ---------------------------------------------------------------- helpers

fn not_found(msg: impl Into<String>) -> StoreError {
    StoreError::NotFound(msg.into())
}
fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidParameter(msg.into())
}

/// A prompt's tags as MLflow's webhook payloads carry them: without the
/// tags that mark it a prompt (the last value of a repeated key wins).
fn prompt_tags(tags: &[Tag]) -> Vec<Tag> {
    let mut out: Vec<Tag> = Vec::new();
    for t in tags {
        if t.key == "mlflow.prompt.is_prompt" || t.key == "_mlflow_prompt_type" {
            continue;
        }
        match out.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value.clone(),
            None => out.push(t.clone()),
        }
    }
    out
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

pub(crate) fn encode_page_token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

pub(crate) fn decode_page_token(token: Option<&str>) -> Result<usize> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(token.trim()))
        .map_err(|_| invalid("Invalid page token, could not base64-decode"))?;
    let v: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|_| invalid("Invalid page token, decoded value is not JSON"))?;
    let offset = v
        .get("offset")
        .and_then(|o| o.as_u64())
        .ok_or_else(|| invalid("Invalid page token, missing 'offset'"))?;
    // a token is ours (an offset into a result); a made-up huge one must not
    // overflow the arithmetic or the database's LIMIT/OFFSET
    if offset > i32::MAX as u64 {
        return Err(invalid("Invalid page token, the offset is out of range"));
    }
    Ok(offset as usize)
}

fn page<T>(mut items: Vec<T>, offset: usize, max: usize) -> Page<T> {
    // callers fetch max + 1 rows to learn whether another page exists
    let next = if items.len() > max {
        items.truncate(max);
        Some(encode_page_token(offset + max))
    } else {
        None
    };
    Page {
        items,
        next_page_token: next,
    }
}

fn view_clause(col: &str, v: ViewType) -> String {
    match v {
        ViewType::ActiveOnly => format!("{col} = 'active'"),
        ViewType::DeletedOnly => format!("{col} = 'deleted'"),
        ViewType::All => "1=1".into(),
    }
}

fn read_value(value: Option<f64>, is_nan: bool) -> f64 {
    if is_nan {
        f64::NAN
    } else {
        value.unwrap_or(f64::NAN)
    }
}

fn lifecycle(s: String) -> Lifecycle {
    Lifecycle::parse(&s).unwrap_or(Lifecycle::Active)
}

/// SQL pieces of a WHERE clause with their bound arguments.
#[derive(Default)]
struct Where {
    parts: Vec<String>,
    args: Vec<SqlValue>,
}

impl Where {
    fn push(&mut self, sql: impl Into<String>, args: impl IntoIterator<Item = SqlValue>) {
        self.parts.push(sql.into());
        self.args.extend(args);
    }
    fn sql(&self) -> String {
        if self.parts.is_empty() {
            "1=1".into()
        } else {
            self.parts.join(" AND ")
        }
    }
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_string())
}

/// `column <op> value` for a string comparison; ILIKE lowers both sides.
fn string_cmp(col: &str, c: &Clause, w: &mut Where) -> Result<()> {
    match (&c.op, &c.value) {
        (Op::ILike, Value::Str(s)) => w.push(
            format!("LOWER({col}) LIKE LOWER(?) {LIKE_ESCAPE}"),
            [like_pattern(s)],
        ),
        (Op::Like, Value::Str(s)) => {
            w.push(format!("{col} LIKE ? {LIKE_ESCAPE}"), [like_pattern(s)])
        }
        (op, Value::Str(s)) if op.is_string() => w.push(format!("{col} {} ?", op.sql()), [text(s)]),
        (Op::In | Op::NotIn, Value::List(items)) => w.push(
            format!("{col} {} ({})", c.op.sql(), placeholders(items.len())),
            items.iter().map(|s| text(s)),
        ),
        (op, Value::Number(n)) if matches!(op, Op::Eq | Op::Ne) => {
            // a number where a string is expected: compare its text
            w.push(format!("{col} {} ?", op.sql()), [text(&format_number(*n))])
        }
        _ => {
            return Err(invalid(format!(
                "Invalid comparator '{}' or value for '{}'; string attributes support =, !=, LIKE, ILIKE, IN and NOT IN with quoted values",
                c.op.name(),
                c.key
            )));
        }
    }
    Ok(())
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `column <op> number`. A whole number is bound as an integer (PostgreSQL
/// compares it with a BIGINT column through the column's index); any other
/// is cast to DOUBLE PRECISION, since PostgreSQL would otherwise take the
/// parameter for the column's BIGINT and refuse `start_time > 1.5`.
fn number_cmp(col: &str, op: Op, n: f64, w: &mut Where) {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        w.push(
            format!("{col} {} ?", op.sql()),
            [SqlValue::Integer(n as i64)],
        );
    } else {
        w.push(
            format!("{col} {} CAST(? AS DOUBLE PRECISION)", op.sql()),
            [SqlValue::Real(n)],
        );
    }
}

fn numeric_cmp(col: &str, c: &Clause, w: &mut Where) -> Result<()> {
    match (&c.op, &c.value) {
        (op, Value::Number(n)) if op.is_numeric() => {
            number_cmp(col, *op, *n, w);
            Ok(())
        }
        (op, Value::Str(s)) if op.is_numeric() => match s.parse::<f64>() {
            Ok(n) => {
                number_cmp(col, *op, n, w);
                Ok(())
            }
            Err(_) => Err(invalid(format!(
                "Expected a numeric value for '{}', got '{s}'",
                c.key
            ))),
        },
        _ => Err(invalid(format!(
            "Invalid comparator '{}' for numeric key '{}'; use one of =, !=, <, <=, >, >=",
            c.op.name(),
            c.key
        ))),
    }
}

/// `EXISTS`-style clause for a key/value side table (params, tags).
/// `null_inclusive_ne`: whether `!=` also matches entities without the key.
fn kv_clause(
    table: &str,
    id_cond: &str,
    c: &Clause,
    w: &mut Where,
    null_inclusive_ne: bool,
) -> Result<()> {
    let base = format!("SELECT 1 FROM {table} kv WHERE {id_cond} AND kv.key = ?");
    match c.op {
        Op::IsNull => w.push(format!("NOT EXISTS ({base})"), [text(&c.key)]),
        Op::IsNotNull => w.push(format!("EXISTS ({base})"), [text(&c.key)]),
        Op::Ne if null_inclusive_ne => {
            let Value::Str(s) = &c.value else {
                return Err(invalid(format!("Expected a quoted value for '{}'", c.key)));
            };
            w.push(
                format!("NOT EXISTS ({base} AND kv.value = ?)"),
                [text(&c.key), text(s)],
            )
        }
        _ => {
            let mut inner = Where::default();
            string_cmp("kv.value", c, &mut inner)?;
            let cond = inner.sql();
            let mut args = vec![text(&c.key)];
            args.extend(inner.args);
            w.push(format!("EXISTS ({base} AND {cond})"), args)
        }
    }
    Ok(())
}

// ------------------------------------------------------------ experiments

fn load_experiment(conn: &Conn, id: i64) -> Result<Experiment> {
    let mut e = conn
        .query_row(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time
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

fn experiment_active(conn: &Conn, id: i64) -> Result<Experiment> {
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

fn load_run_info(conn: &Conn, run_id: &str) -> Result<RunInfo> {
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

/// Full runs for the given ids, in the given order (missing ids skipped).
fn load_runs(conn: &Conn, ids: &[String]) -> Result<Vec<Run>> {
    let mut runs: Vec<Option<Run>> = vec![None; ids.len()];
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    for chunk in ids.chunks(CHUNK) {
        let ph = placeholders(chunk.len());
        let mut st = conn.prepare(&format!(
            "SELECT {RUN_COLS} FROM runs WHERE run_uuid IN ({ph})"
        ))?;
        for info in st.query_map(params_from_iter(chunk), run_info_row)? {
            let info = info?;
            if let Some(&i) = index.get(info.run_id.as_str()) {
                runs[i] = Some(Run {
                    info,
                    metrics: Vec::new(),
                    params: Vec::new(),
                    tags: Vec::new(),
                    dataset_inputs: Vec::new(),
                    model_inputs: Vec::new(),
                    model_outputs: Vec::new(),
                });
            }
        }
        let mut st = conn.prepare(&format!(
            "SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({ph}) ORDER BY key"
        ))?;
        let mut rows = st.query(params_from_iter(chunk))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if let Some(Some(run)) = index.get(id.as_str()).map(|&i| runs[i].as_mut()) {
                run.params
                    .push(Tag::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?));
            }
        }
        let mut st = conn.prepare(&format!(
            "SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({ph}) ORDER BY key"
        ))?;
        let mut rows = st.query(params_from_iter(chunk))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if let Some(Some(run)) = index.get(id.as_str()).map(|&i| runs[i].as_mut()) {
                run.tags
                    .push(Tag::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?));
            }
        }
        let mut st = conn.prepare(&format!(
            "SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN ({ph}) ORDER BY key"
        ))?;
        let mut rows = st.query(params_from_iter(chunk))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if let Some(Some(run)) = index.get(id.as_str()).map(|&i| runs[i].as_mut()) {
                run.metrics.push(Metric::new(
                    r.get::<_, String>(1)?,
                    read_value(r.get(2)?, r.get(3)?),
                    r.get(4)?,
                    r.get(5)?,
                ));
            }
        }
        let mut st = conn.prepare(&format!(
            "SELECT i.run_uuid, i.tags, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
             FROM run_inputs i JOIN datasets d ON d.dataset_id = i.dataset_id
             WHERE i.run_uuid IN ({ph}) ORDER BY d.dataset_id"
        ))?;
        let mut rows = st.query(params_from_iter(chunk))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if let Some(Some(run)) = index.get(id.as_str()).map(|&i| runs[i].as_mut()) {
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
        }
        let mut st = conn.prepare(&format!(
            "SELECT run_uuid, model_id, direction, step FROM run_models WHERE run_uuid IN ({ph}) ORDER BY model_id"
        ))?;
        let mut rows = st.query(params_from_iter(chunk))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if let Some(Some(run)) = index.get(id.as_str()).map(|&i| runs[i].as_mut()) {
                let model_id: String = r.get(1)?;
                if r.get::<_, String>(2)? == "input" {
                    run.model_inputs.push(model_id);
                } else {
                    run.model_outputs.push(ModelOutput {
                        model_id,
                        step: r.get(3)?,
                    });
                }
            }
        }
    }
    Ok(runs.into_iter().flatten().collect())
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

fn series_id(tx: &Conn, cache: &mut HashMap<String, i64>, run_id: &str, key: &str) -> Result<i64> {
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

// ------------------------------------------------------------------ impl

impl MetadataStore for SqlStore {
    fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<i64> {
        self.write(|tx| {
            let exists: Option<String> = tx
                .query_row("SELECT lifecycle_stage FROM experiments WHERE name = ?", [name], |r| r.get(0))
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
            let id: i64 = tx.query_row("SELECT COALESCE(MAX(experiment_id), 0) + 1 FROM experiments", [], |r| r.get(0))?;
            let loc = match artifact_location.filter(|l| !l.is_empty()) {
                Some(l) => l.to_string(),
                None => format!("mlflow-artifacts:/{id}"),
            };
            let now = now_ms();
            tx.execute(
                "INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
                 VALUES (?, ?, ?, ?, ?)",
                params![id, name, loc, now, now],
            )?;
            for t in tags {
                tx.execute(
                    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
                     ON CONFLICT(experiment_id, key) DO UPDATE SET value = excluded.value",
                    params![id, t.key, t.value],
                )?;
            }
            Ok(id)
        })
    }

    fn get_experiment(&self, id: i64) -> Result<Experiment> {
        self.read(|c| load_experiment(c, id))
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.read(|c| {
            let id: Option<i64> = c
                .query_row(
                    "SELECT experiment_id FROM experiments WHERE name = ? ORDER BY lifecycle_stage = 'active' DESC LIMIT 1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            match id {
                Some(id) => load_experiment(c, id),
                None => Err(not_found(format!("Could not find experiment with name '{name}'"))),
            }
        })
    }

    fn search_experiments(&self, q: &SearchExperiments) -> Result<Page<Experiment>> {
        let mut w = Where::default();
        w.push(view_clause("e.lifecycle_stage", q.view_type), []);
        for c in filter::parse_filter(&q.filter, true)? {
            match c.entity {
                Entity::Attribute => match c.key.as_str() {
                    "name" => string_cmp("e.name", &c, &mut w)?,
                    "experiment_id" => match &c.value {
                        Value::List(_) | Value::Str(_) => {
                            string_cmp("CAST(e.experiment_id AS TEXT)", &c, &mut w)?
                        }
                        _ => numeric_cmp("e.experiment_id", &c, &mut w)?,
                    },
                    "creation_time" | "last_update_time" => {
                        numeric_cmp(&format!("e.{}", c.key), &c, &mut w)?
                    }
                    other => {
                        return Err(invalid(format!(
                            "Invalid attribute key '{other}' specified. Valid keys are 'name', 'experiment_id', 'creation_time', 'last_update_time'"
                        )));
                    }
                },
                Entity::Tag => kv_clause(
                    "experiment_tags",
                    "kv.experiment_id = e.experiment_id",
                    &c,
                    &mut w,
                    false,
                )?,
                _ => {
                    return Err(invalid(format!(
                        "Invalid entity type in experiment search filter: '{}'. Use attributes (name, creation_time, last_update_time) or tags",
                        c.key
                    )));
                }
            }
        }
        let mut order = Vec::new();
        for item in &q.order_by {
            let o = filter::parse_order_by(item, true)?;
            let col = match (o.entity, o.key.as_str()) {
                (Entity::Attribute, "name") => "e.name",
                (Entity::Attribute, "experiment_id") => "e.experiment_id",
                (Entity::Attribute, "creation_time") => "e.creation_time",
                (Entity::Attribute, "last_update_time") => "e.last_update_time",
                _ => {
                    return Err(invalid(format!(
                        "Invalid order_by key '{item}'; experiments order by name, experiment_id, creation_time or last_update_time"
                    )));
                }
            };
            order.push(format!(
                "{col} {}",
                if o.ascending { "ASC" } else { "DESC" }
            ));
        }
        order.push("e.creation_time DESC".into());
        order.push("e.experiment_id ASC".into());
        let offset = decode_page_token(q.page_token.as_deref())?;
        let max = q.max_results.max(1);
        self.read(|c| {
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
        })
    }

    fn rename_experiment(&self, id: i64, new_name: &str) -> Result<()> {
        self.write(|tx| {
            let e = load_experiment(tx, id)?;
            if e.lifecycle_stage != Lifecycle::Active {
                return Err(invalid(format!(
                    "Cannot rename a non-active experiment ({id})"
                )));
            }
            let taken: Option<i64> = tx
                .query_row(
                    "SELECT experiment_id FROM experiments WHERE name = ?",
                    [new_name],
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
        })
    }

    fn delete_experiment(&self, id: i64) -> Result<()> {
        if id == 0 {
            return Err(invalid("Cannot delete the default experiment '0'"));
        }
        self.write(|tx| {
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
        })
    }

    fn restore_experiment(&self, id: i64) -> Result<()> {
        self.write(|tx| {
            let e = load_experiment(tx, id)?;
            if e.lifecycle_stage == Lifecycle::Active {
                return Err(invalid(format!("Cannot restore an active experiment ({id})")));
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
        })
    }

    fn set_experiment_tag(&self, id: i64, key: &str, value: &str) -> Result<()> {
        self.write(|tx| {
            experiment_active(tx, id)?;
            tx.execute(
                "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
                 ON CONFLICT(experiment_id, key) DO UPDATE SET value = excluded.value",
                params![id, key, value],
            )?;
            touch_experiment(tx, id)
        })
    }

    fn delete_experiment_tag(&self, id: i64, key: &str) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn create_run(&self, req: CreateRun) -> Result<RunInfo> {
        self.write(|tx| {
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
                &format!("INSERT INTO runs ({RUN_COLS}) VALUES (?, ?, ?, ?, 'RUNNING', ?, NULL, ?, 'active')"),
                params![run_id, name, req.experiment_id, req.user_id, start, artifact_uri],
            )?;
            for t in &req.tags {
                if t.key != "mlflow.runName" {
                    set_run_tag(tx, &run_id, &t.key, &t.value)?;
                }
            }
            set_run_tag(tx, &run_id, "mlflow.runName", &name)?;
            load_run_info(tx, &run_id)
        })
    }

    fn get_run(&self, run_id: &str) -> Result<Run> {
        self.read(|c| {
            load_runs(c, &[run_id.to_string()])?
                .pop()
                .ok_or_else(|| not_found(format!("Run with id={run_id} not found")))
        })
    }

    fn update_run(&self, run_id: &str, upd: UpdateRun) -> Result<RunInfo> {
        self.write(|tx| {
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
        })
    }

    fn delete_run(&self, run_id: &str) -> Result<()> {
        self.write(|tx| {
            load_run_info(tx, run_id)?;
            tx.execute(
                "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE run_uuid = ?",
                params![now_ms(), run_id],
            )?;
            Ok(())
        })
    }

    fn restore_run(&self, run_id: &str) -> Result<()> {
        self.write(|tx| {
            load_run_info(tx, run_id)?;
            tx.execute(
                "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE run_uuid = ?",
                [run_id],
            )?;
            Ok(())
        })
    }

    fn log_batch(
        &self,
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
        self.write(|tx| {
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
            if !metrics.is_empty() {
                let mut cache = HashMap::new();
                let mut latest: HashMap<&str, &Metric> = HashMap::new();
                let sids = metrics
                    .iter()
                    .map(|m| series_id(tx, &mut cache, run_id, &m.key))
                    .collect::<Result<Vec<i64>>>()?;
                for (chunk, sid_chunk) in metrics.chunks(POINTS_PER_INSERT).zip(sids.chunks(POINTS_PER_INSERT)) {
                    let mut sql = String::from(
                        "INSERT INTO metric_points (series_id, step, timestamp, value, is_nan, dataset_name, dataset_digest, model_id) VALUES ",
                    );
                    for i in 0..chunk.len() {
                        sql.push_str(if i == 0 { "(?,?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?,?)" });
                    }
                    let mut args: Vec<SqlValue> = Vec::with_capacity(chunk.len() * 8);
                    for (m, sid) in chunk.iter().zip(sid_chunk) {
                        let (v, nan) = if m.value.is_nan() { (None, 1) } else { (Some(m.value), 0) };
                        args.push(SqlValue::Integer(*sid));
                        args.push(SqlValue::Integer(m.step));
                        args.push(SqlValue::Integer(m.timestamp));
                        args.push(v.map_or(SqlValue::Null, SqlValue::Real));
                        args.push(SqlValue::Integer(nan));
                        for t in [&m.dataset_name, &m.dataset_digest, &m.model_id] {
                            args.push(t.as_ref().map_or(SqlValue::Null, |s| SqlValue::Text(s.clone())));
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
                    let (v, nan) = if m.value.is_nan() { (None, 1) } else { (Some(m.value), 0) };
                    upsert.execute(params![run_id, m.key, v, nan, m.timestamp, m.step])?;
                }
            }
            Ok(())
        })
    }

    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        model_inputs: &[String],
    ) -> Result<()> {
        self.write(|tx| {
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
                let tags: Vec<(&str, &str)> = d.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
                let tags_json = serde_json::to_string(&tags)
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
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
        })
    }

    fn log_outputs(&self, run_id: &str, outputs: &[ModelOutput]) -> Result<()> {
        self.write(|tx| {
            active_run(tx, run_id)?;
            for o in outputs {
                tx.execute(
                    "INSERT INTO run_models (run_uuid, model_id, direction, step) VALUES (?, ?, 'output', ?)
                     ON CONFLICT(run_uuid, direction, model_id) DO UPDATE SET step = excluded.step",
                    params![run_id, o.model_id, o.step],
                )?;
            }
            Ok(())
        })
    }

    fn search_runs(&self, q: &SearchRuns) -> Result<Page<Run>> {
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
        for c in filter::parse_filter(&q.filter, true)? {
            match c.entity {
                Entity::Metric => {
                    if !matches!(c.value, Value::Number(_)) {
                        return Err(invalid(format!(
                            "Expected a numeric value for metric '{}' (write it without quotes)",
                            c.key
                        )));
                    }
                    let mut inner = Where::default();
                    numeric_cmp("m.value", &c, &mut inner)?;
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
                Entity::Param => {
                    kv_clause("params", "kv.run_uuid = r.run_uuid", &c, &mut w, false)?
                }
                Entity::Tag => kv_clause("tags", "kv.run_uuid = r.run_uuid", &c, &mut w, false)?,
                Entity::Attribute => match c.key.as_str() {
                    "start_time" | "end_time" | "created" | "Created" => {
                        let col = if c.key == "end_time" {
                            "r.end_time"
                        } else {
                            "r.start_time"
                        };
                        numeric_cmp(col, &c, &mut w)?
                    }
                    "run_id" | "run_uuid" => string_cmp("r.run_uuid", &c, &mut w)?,
                    "run_name" | "run name" | "Run name" => string_cmp("r.name", &c, &mut w)?,
                    "status" => string_cmp("r.status", &c, &mut w)?,
                    "user_id" => string_cmp("r.user_id", &c, &mut w)?,
                    "artifact_uri" => string_cmp("r.artifact_uri", &c, &mut w)?,
                    "lifecycle_stage" => string_cmp("r.lifecycle_stage", &c, &mut w)?,
                    other => {
                        return Err(invalid(format!(
                            "Invalid attribute key '{other}' specified. Valid keys are 'run_id', 'run_name', 'status', 'user_id', 'artifact_uri', 'start_time', 'end_time', 'created'"
                        )));
                    }
                },
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
                            _ => string_cmp(col, &c, &mut inner)?,
                        }
                    } else {
                        string_cmp(col, &c, &mut inner)?;
                    }
                    w.push(
                        format!(
                            "EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.dataset_id = i.dataset_id WHERE i.run_uuid = r.run_uuid AND {})",
                            inner.sql()
                        ),
                        inner.args,
                    );
                }
            }
        }
        let mut order = Vec::new();
        let mut order_args: Vec<SqlValue> = Vec::new();
        for item in &q.order_by {
            let o = filter::parse_order_by(item, true)?;
            let dir = if o.ascending { "ASC" } else { "DESC" };
            let expr = match o.entity {
                Entity::Metric => {
                    order_args.push(text(&o.key));
                    "(SELECT m.value FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ?)".to_string()
                }
                Entity::Param => {
                    order_args.push(text(&o.key));
                    "(SELECT p.value FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = ?)"
                        .to_string()
                }
                Entity::Tag => {
                    order_args.push(text(&o.key));
                    "(SELECT t.value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = ?)"
                        .to_string()
                }
                Entity::Attribute => match o.key.as_str() {
                    "start_time" | "created" | "Created" => "r.start_time".into(),
                    "end_time" => "r.end_time".into(),
                    "run_id" => "r.run_uuid".into(),
                    "run_name" | "run name" | "Run name" => "r.name".into(),
                    "status" => "r.status".into(),
                    "user_id" => "r.user_id".into(),
                    "artifact_uri" => "r.artifact_uri".into(),
                    other => {
                        return Err(invalid(format!(
                            "Invalid order_by attribute '{other}'; valid: artifact_uri, end_time, run_id, run_name, start_time, status, user_id"
                        )));
                    }
                },
                Entity::Dataset => {
                    return Err(invalid(format!(
                        "Cannot order runs by dataset field '{item}'"
                    )));
                }
            };
            // NULLs (runs without the key) sort last in both directions.
            order.push(format!("({expr}) IS NULL, ({expr}) {dir}"));
            // each expr appears twice, so its argument is bound twice
            if let Some(last) = order_args.last().cloned()
                && matches!(o.entity, Entity::Metric | Entity::Param | Entity::Tag)
            {
                order_args.push(last);
            }
        }
        // (SQLite puts NULL last in descending order, PostgreSQL first: say it)
        order.push("r.start_time DESC NULLS LAST".into());
        order.push("r.run_uuid ASC".into());
        let offset = decode_page_token(q.page_token.as_deref())?;
        let max = q.max_results.max(1);
        self.read(|c| {
            let sql = format!(
                "SELECT r.run_uuid FROM runs r WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
                w.sql(),
                order.join(", "),
                max + 1,
                offset
            );
            let args: Vec<&SqlValue> = w.args.iter().chain(order_args.iter()).collect();
            let ids: Vec<String> = c
                .prepare(&sql)?
                .query_map(params_from_iter(args), |r| r.get(0))?
                .collect::<crate::db::Result<_>>()?;
            let has_more = ids.len() > max;
            let ids = &ids[..ids.len().min(max)];
            let runs = load_runs(c, ids)?;
            Ok(Page {
                items: runs,
                next_page_token: has_more.then(|| encode_page_token(offset + max)),
            })
        })
    }

    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>> {
        let offset = decode_page_token(page_token)?;
        let max = max_results.max(1);
        self.read(|c| {
            load_run_info(c, run_id)?;
            let mut st = c.prepare_cached(
                "SELECT p.step, p.timestamp, p.value, p.is_nan, p.dataset_name, p.dataset_digest, p.model_id
                 FROM metric_points p JOIN metric_series s ON s.series_id = p.series_id
                 WHERE s.run_uuid = ? AND s.key = ?
                 ORDER BY p.step, p.timestamp, p.rowid LIMIT ? OFFSET ?",
            )?;
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
        })
    }

    fn metric_points_after(
        &self,
        run_id: &str,
        cursor: i64,
        limit: usize,
    ) -> Result<(Vec<Metric>, i64)> {
        let limit = limit.clamp(1, 100_000) as i64;
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT p.rowid, s.key, p.step, p.timestamp, p.value, p.is_nan
                 FROM metric_points p JOIN metric_series s ON s.series_id = p.series_id
                 WHERE s.run_uuid = ? AND p.rowid > ?
                 ORDER BY p.rowid LIMIT ?",
            )?;
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
        })
    }

    fn metric_history_bulk_interval(
        &self,
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
        const POINTS: &str =
            "SELECT DISTINCT p.step, p.timestamp, p.value, p.is_nan, COALESCE(p.value, 0) AS v
             FROM metric_points p JOIN metric_series s ON s.series_id = p.series_id
             WHERE s.run_uuid = ?1 AND s.key = ?2 AND p.step BETWEEN ?3 AND ?4";
        let sampled = format!(
            "WITH pts AS ({POINTS}),
             b AS (SELECT step, timestamp, value, is_nan, v,
                          NTILE(?5) OVER (ORDER BY step, timestamp, v, is_nan) AS bucket FROM pts),
             r AS (SELECT step, timestamp, value, is_nan, v,
                          ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY step, timestamp, v, is_nan) AS rn FROM b)
             SELECT step, timestamp, value, is_nan FROM r WHERE rn = 1
             ORDER BY step, timestamp, v, is_nan"
        );
        let last = format!(
            "SELECT step, timestamp, value, is_nan FROM ({POINTS}) AS pts
             ORDER BY step DESC, timestamp DESC, v DESC, is_nan DESC LIMIT 1"
        );
        // (an unknown run has no points: MLflow's store does not look runs up here)
        self.read(|c| {
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
        })
    }

    fn search_datasets(&self, experiment_ids: &[i64]) -> Result<Vec<DatasetSummary>> {
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
        let rows: Vec<(i64, DatasetSummary, String)> = self.read(|c| {
            Ok(c.prepare(&sql)?
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
                .collect::<crate::db::Result<_>>()?)
        })?;
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

    fn metric_keys(&self, experiment_ids: &[i64]) -> Result<Vec<String>> {
        // (`IN ()` is an empty list to SQLite, a syntax error to PostgreSQL)
        if experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            let sql = format!(
                "SELECT DISTINCT m.key FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid
                 WHERE r.experiment_id IN ({}) ORDER BY m.key",
                placeholders(experiment_ids.len())
            );
            Ok(c.prepare(&sql)?
                .query_map(params_from_iter(experiment_ids), |r| r.get(0))?
                .collect::<crate::db::Result<_>>()?)
        })
    }

    // ---------------------------------------------------------- registry

    fn create_registered_model(
        &self,
        name: &str,
        tags: &[Tag],
        description: &str,
        user_id: &str,
    ) -> Result<RegisteredModel> {
        self.write(|tx| {
            let exists: bool = tx
                .query_row("SELECT 1 FROM registered_models WHERE name = ?", [name], |_| Ok(true))
                .optional()?
                .unwrap_or(false);
            if exists {
                return Err(StoreError::AlreadyExists(format!(
                    "Registered Model (name={name}) already exists."
                )));
            }
            let now = now_ms();
            tx.execute(
                "INSERT INTO registered_models (name, creation_timestamp, last_updated_timestamp, user_id, description) VALUES (?, ?, ?, ?, ?)",
                params![name, now, now, user_id, description],
            )?;
            for t in tags {
                tx.execute(
                    "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)
                     ON CONFLICT(name, key) DO UPDATE SET value = excluded.value",
                    params![name, t.key, t.value],
                )?;
            }
            let prompt = mlflow_webhooks::tags_mark_prompt(tags);
            let tags = if prompt { prompt_tags(tags) } else { tags.to_vec() };
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
        })
    }

    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.read(|c| load_registered_model(c, name))
    }

    fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        self.write(|tx| {
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
        })
    }

    fn update_registered_model(&self, name: &str, description: &str) -> Result<RegisteredModel> {
        self.write(|tx| {
            touch_model(tx, name)?;
            tx.execute(
                "UPDATE registered_models SET description = ? WHERE name = ?",
                [description, name],
            )?;
            load_registered_model(tx, name)
        })
    }

    fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn search_registered_models(&self, q: &SearchRegistry) -> Result<Page<RegisteredModel>> {
        let mut w = Where::default();
        for c in filter::parse_filter(&q.filter, true)? {
            match (c.entity, c.key.as_str()) {
                (Entity::Attribute, "name") => string_cmp("m.name", &c, &mut w)?,
                (Entity::Tag, _) => kv_clause(
                    "registered_model_tags",
                    "kv.name = m.name",
                    &c,
                    &mut w,
                    true,
                )?,
                _ => {
                    return Err(invalid(format!(
                        "Invalid filter key '{}' for registered model search; use name or tags.<key>",
                        c.key
                    )));
                }
            }
        }
        let mut order = Vec::new();
        for item in &q.order_by {
            let o = filter::parse_order_by(item, true)?;
            let col = match o.key.as_str() {
                "name" => "m.name",
                "creation_timestamp" | "timestamp" => "m.creation_timestamp",
                "last_updated_timestamp" => "m.last_updated_timestamp",
                _ => {
                    return Err(invalid(format!(
                        "Invalid order_by key '{item}'; order registered models by name, creation_timestamp or last_updated_timestamp"
                    )));
                }
            };
            order.push(format!(
                "{col} {}",
                if o.ascending { "ASC" } else { "DESC" }
            ));
        }
        order.push("m.name ASC".into());
        let offset = decode_page_token(q.page_token.as_deref())?;
        let max = q.max_results.max(1);
        self.read(|c| {
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
        })
    }

    fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        self.read(|c| {
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
        })
    }

    fn create_model_version(&self, req: CreateModelVersion) -> Result<ModelVersion> {
        self.write(|tx| {
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
        })
    }

    fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        self.read(|c| load_mv(c, name, version))
    }

    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
    ) -> Result<ModelVersion> {
        self.write(|tx| {
            load_mv(tx, name, version)?;
            tx.execute(
                "UPDATE model_versions SET description = ?, last_updated_timestamp = ? WHERE name = ? AND version = ?",
                params![description, now_ms(), name, version],
            )?;
            load_mv(tx, name, version)
        })
    }

    fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn search_model_versions(&self, q: &SearchRegistry) -> Result<Page<ModelVersion>> {
        let mut w = Where::default();
        for c in filter::parse_filter(&q.filter, true)? {
            match (c.entity, c.key.as_str()) {
                (Entity::Attribute, "name") => string_cmp("v.name", &c, &mut w)?,
                (Entity::Attribute, "run_id") => string_cmp("v.run_id", &c, &mut w)?,
                (Entity::Attribute, "source_path" | "source") => {
                    string_cmp("v.source", &c, &mut w)?
                }
                (Entity::Attribute, "current_stage") => string_cmp("v.current_stage", &c, &mut w)?,
                (Entity::Attribute, "version_number" | "version") => match c.value {
                    Value::List(_) => string_cmp("CAST(v.version AS TEXT)", &c, &mut w)?,
                    _ => numeric_cmp("v.version", &c, &mut w)?,
                },
                (Entity::Tag, _) => kv_clause(
                    "model_version_tags",
                    "kv.name = v.name AND kv.version = v.version",
                    &c,
                    &mut w,
                    true,
                )?,
                _ => {
                    return Err(invalid(format!(
                        "Invalid filter key '{}' for model version search; use name, run_id, source_path, version_number or tags.<key>",
                        c.key
                    )));
                }
            }
        }
        let mut order = Vec::new();
        for item in &q.order_by {
            let o = filter::parse_order_by(item, true)?;
            let col = match o.key.as_str() {
                "name" => "v.name",
                "version_number" | "version" => "v.version",
                "creation_timestamp" | "timestamp" => "v.creation_timestamp",
                "last_updated_timestamp" => "v.last_updated_timestamp",
                _ => {
                    return Err(invalid(format!(
                        "Invalid order_by key '{item}'; order model versions by name, version_number, creation_timestamp or last_updated_timestamp"
                    )));
                }
            };
            order.push(format!(
                "{col} {}",
                if o.ascending { "ASC" } else { "DESC" }
            ));
        }
        order.push("v.name ASC".into());
        order.push("v.version DESC".into());
        let offset = decode_page_token(q.page_token.as_deref())?;
        let max = q.max_results.max(1);
        self.read(|c| {
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
        })
    }

    fn latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>> {
        self.read(|c| {
            load_registered_model(c, name)?;
            latest_per_stage(c, name, stages)
        })
    }

    fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        let stage = normalise_stage(stage)?;
        self.write(|tx| {
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
        })
    }

    fn set_model_version_tag(
        &self,
        name: &str,
        version: i64,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        self.write(|tx| {
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
        })
    }

    // ----------------------------------------------------- logged models

    fn create_logged_model(&self, req: CreateLoggedModel) -> Result<LoggedModel> {
        self.write(|tx| {
            let exp = experiment_active(tx, req.experiment_id)?;
            let id = format!("m-{}", uuid::Uuid::new_v4().simple());
            let name = if req.name.is_empty() { id.clone() } else { req.name.clone() };
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
            for (table, items) in [("logged_model_tags", &req.tags), ("logged_model_params", &req.params)] {
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
        })
    }

    fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        // a deleted model is gone for readers, as in MLflow (its tags can still be changed)
        let m = self.read(|c| load_logged_model(c, model_id))?;
        if m.lifecycle_stage == Lifecycle::Deleted {
            return Err(not_found(format!(
                "Logged model with ID '{model_id}' not found."
            )));
        }
        Ok(m)
    }

    fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        self.write(|tx| {
            load_logged_model(tx, model_id)?;
            tx.execute(
                "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ? WHERE model_id = ?",
                params![now_ms(), model_id],
            )?;
            Ok(())
        })
    }

    fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel> {
        self.write(|tx| {
            load_logged_model(tx, model_id)?;
            tx.execute(
                "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?",
                params![status, now_ms(), model_id],
            )?;
            load_logged_model(tx, model_id)
        })
    }

    fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()> {
        self.write(|tx| {
            load_logged_model(tx, model_id)?;
            for t in tags {
                tx.execute(
                    "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, ?)
                     ON CONFLICT(model_id, key) DO UPDATE SET value = excluded.value",
                    params![model_id, t.key, t.value],
                )?;
            }
            Ok(())
        })
    }

    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        self.write(|tx| {
            load_logged_model(tx, model_id)?;
            tx.execute(
                "DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?",
                [model_id, key],
            )?;
            Ok(())
        })
    }

    fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<()> {
        self.write(|tx| {
            load_logged_model(tx, model_id)?;
            for p in params {
                tx.execute(
                    "INSERT INTO logged_model_params (model_id, key, value) VALUES (?, ?, ?)
                     ON CONFLICT(model_id, key) DO UPDATE SET value = excluded.value",
                    params![model_id, p.key, p.value],
                )?;
            }
            Ok(())
        })
    }

    fn search_logged_models(&self, q: &SearchLoggedModels) -> Result<Page<LoggedModel>> {
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
        for c in filter::parse_filter(&q.filter, true)? {
            match (c.entity, c.key.as_str()) {
                (Entity::Attribute, "name") => string_cmp("m.name", &c, &mut w)?,
                (Entity::Attribute, "model_id") => string_cmp("m.model_id", &c, &mut w)?,
                (Entity::Attribute, "status") => string_cmp("m.status", &c, &mut w)?,
                (Entity::Attribute, "source_run_id") => string_cmp("m.source_run_id", &c, &mut w)?,
                (Entity::Attribute, "model_type") => string_cmp("m.model_type", &c, &mut w)?,
                (Entity::Attribute, "creation_timestamp" | "creation_time") => {
                    numeric_cmp("m.creation_timestamp_ms", &c, &mut w)?
                }
                (Entity::Tag, _) => kv_clause(
                    "logged_model_tags",
                    "kv.model_id = m.model_id",
                    &c,
                    &mut w,
                    false,
                )?,
                (Entity::Param, _) => kv_clause(
                    "logged_model_params",
                    "kv.model_id = m.model_id",
                    &c,
                    &mut w,
                    false,
                )?,
                _ => {
                    return Err(invalid(format!(
                        "Invalid filter key '{}' for logged model search; use name, model_id, status, source_run_id, model_type, creation_timestamp, tags.<key> or params.<key>",
                        c.key
                    )));
                }
            }
        }
        let offset = decode_page_token(q.page_token.as_deref())?;
        let max = q.max_results.max(1);
        self.read(|c| {
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
        })
    }

    // ------------------------------------------------------------ tokens

    fn create_token(&self, name: &str, role: &str, token_hash: &str) -> Result<()> {
        self.write(|tx| {
            let exists: bool = tx
                .query_row("SELECT 1 FROM access_tokens WHERE name = ?", [name], |_| {
                    Ok(true)
                })
                .optional()?
                .unwrap_or(false);
            if exists {
                return Err(StoreError::AlreadyExists(format!(
                    "A token named '{name}' exists already; revoke it first or pick another name"
                )));
            }
            tx.execute(
                "INSERT INTO access_tokens (name, role, token_hash, created) VALUES (?, ?, ?, ?)",
                params![name, role, token_hash, now_ms()],
            )?;
            Ok(())
        })
    }

    fn lookup_token(&self, token_hash: &str) -> Result<Option<(String, String)>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT name, role FROM access_tokens WHERE token_hash = ?")?
                    .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            )
        })
    }

    fn revoke_token(&self, name: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM access_tokens WHERE name = ?", [name])?;
            if n == 0 {
                return Err(not_found(format!("No token named '{name}'")));
            }
            Ok(())
        })
    }

    fn list_tokens(&self) -> Result<Vec<(String, String, i64)>> {
        self.read(|c| {
            Ok(
                c.prepare("SELECT name, role, created FROM access_tokens ORDER BY name")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<crate::db::Result<_>>()?,
            )
        })
    }

    fn queue_job(&self, job: &NewJob) -> Result<Job> {
        jobs::create(self, job)
    }
    fn get_job(&self, id: &str) -> Result<Job> {
        self.read(|c| jobs::get(c, id))
    }
    fn list_jobs(&self, kind: Option<&str>, limit: usize) -> Result<Vec<Job>> {
        self.read(|c| jobs::list(c, kind, limit))
    }
    fn update_job(&self, id: &str, upd: &JobUpdate) -> Result<Job> {
        self.write(|tx| jobs::update(tx, id, upd))
    }
    fn request_job_cancel(&self, id: &str) -> Result<Job> {
        self.write(|tx| jobs::request_cancel(tx, id))
    }
    fn claim_job(&self, worker: &str, kinds: &[&str], lease_ms: i64) -> Result<Option<Job>> {
        // an idle worker's poll (nothing claimed) is no visible write
        self.write_if(
            |tx| jobs::claim(tx, worker, kinds, lease_ms),
            Option::is_some,
        )
    }
    fn renew_job_lease(&self, id: &str, worker: &str, lease_ms: i64) -> Result<Lease> {
        // invisible to live updates: nothing a page shows changed
        self.write_quiet(|tx| jobs::renew(tx, id, worker, lease_ms))
    }
    fn jobs_cancel_requested(&self, ids: &[String]) -> Result<Vec<String>> {
        self.read(|c| jobs::cancel_requested(c, ids))
    }
    fn release_job(&self, id: &str, worker: &str) -> Result<()> {
        self.write(|tx| jobs::release(tx, id, worker))
    }
    fn reap_expired_jobs(&self, reason: &str) -> Result<Vec<Job>> {
        self.write_if(
            |tx| jobs::reap_expired(tx, reason),
            |reaped| !reaped.is_empty(),
        )
    }
    fn put_endpoint(&self, name: &str, config: &str) -> Result<Endpoint> {
        self.write(|tx| jobs::put_endpoint(tx, name, config))
    }
    fn get_endpoint(&self, name: &str) -> Result<Endpoint> {
        self.read(|c| jobs::get_endpoint(c, name))
    }
    fn list_endpoints(&self) -> Result<Vec<Endpoint>> {
        self.read(jobs::list_endpoints)
    }
    fn delete_endpoint(&self, name: &str) -> Result<()> {
        self.write(|tx| jobs::delete_endpoint(tx, name))
    }
    fn put_schedule(&self, name: &str, config: &str) -> Result<Endpoint> {
        self.write(|tx| jobs::put_doc(tx, jobs::SCHEDULES, name, config))
    }
    fn replace_schedule(&self, name: &str, expected: &str, config: &str) -> Result<bool> {
        self.write(|tx| jobs::replace_doc(tx, jobs::SCHEDULES, name, expected, config))
    }
    fn get_schedule(&self, name: &str) -> Result<Endpoint> {
        self.read(|c| jobs::get_doc(c, jobs::SCHEDULES, name))
    }
    fn list_schedules(&self) -> Result<Vec<Endpoint>> {
        self.read(|c| jobs::list_docs(c, jobs::SCHEDULES))
    }
    fn delete_schedule(&self, name: &str) -> Result<()> {
        self.write(|tx| jobs::delete_doc(tx, jobs::SCHEDULES, name))
    }
    fn put_notebook_schedule(&self, name: &str, config: &str) -> Result<Endpoint> {
        self.write(|tx| jobs::put_doc(tx, jobs::NOTEBOOK_SCHEDULES, name, config))
    }
    fn replace_notebook_schedule(&self, name: &str, expected: &str, config: &str) -> Result<bool> {
        self.write(|tx| jobs::replace_doc(tx, jobs::NOTEBOOK_SCHEDULES, name, expected, config))
    }
    fn get_notebook_schedule(&self, name: &str) -> Result<Endpoint> {
        self.read(|c| jobs::get_doc(c, jobs::NOTEBOOK_SCHEDULES, name))
    }
    fn list_notebook_schedules(&self) -> Result<Vec<Endpoint>> {
        self.read(|c| jobs::list_docs(c, jobs::NOTEBOOK_SCHEDULES))
    }
    fn delete_notebook_schedule(&self, name: &str) -> Result<()> {
        self.write(|tx| jobs::delete_doc(tx, jobs::NOTEBOOK_SCHEDULES, name))
    }
    fn list_jobs_named(&self, kind: &str, name: &str, limit: usize) -> Result<Vec<Job>> {
        self.read(|c| jobs::list_named(c, kind, name, limit))
    }

    fn enqueue_webhook_deliveries(
        &self,
        job_id: &str,
        schedule: &str,
        urls: &[String],
        body: &str,
    ) -> Result<usize> {
        if urls.is_empty() {
            return Ok(0);
        }
        self.write(|tx| webhooks::enqueue(tx, job_id, schedule, urls, body))
    }
    fn claim_webhook_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>> {
        // an idle poll only reads: no write transaction, no new write generation
        if limit == 0 || !self.read(|c| webhooks::any_due(c, now_ms))? {
            return Ok(Vec::new());
        }
        self.write(|tx| webhooks::claim(tx, now_ms, lease_ms, limit))
    }
    fn record_webhook_attempt(
        &self,
        id: i64,
        claimed_until_ms: i64,
        attempt: &WebhookAttempt,
        outcome: DeliveryOutcome,
    ) -> Result<bool> {
        self.write(|tx| webhooks::record(tx, id, claimed_until_ms, attempt, outcome))
    }
    fn list_webhook_deliveries(&self, job_ids: &[String]) -> Result<Vec<WebhookDelivery>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| webhooks::list(c, job_ids))
    }

    fn create_mlflow_webhook(&self, w: &NewMlflowWebhook) -> Result<MlflowWebhook> {
        self.write(|tx| mlflow_webhooks::create(tx, w))
    }
    fn get_mlflow_webhook(&self, id: &str) -> Result<MlflowWebhook> {
        self.read(|c| mlflow_webhooks::get(c, id))
    }
    fn list_mlflow_webhooks(
        &self,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<MlflowWebhook>> {
        self.read(|c| mlflow_webhooks::list(c, max_results, page_token))
    }
    fn update_mlflow_webhook(&self, id: &str, u: &MlflowWebhookUpdate) -> Result<MlflowWebhook> {
        self.write(|tx| mlflow_webhooks::update(tx, id, u))
    }
    fn delete_mlflow_webhook(&self, id: &str) -> Result<()> {
        self.write(|tx| mlflow_webhooks::delete(tx, id))
    }
    fn claim_mlflow_webhook_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<MlflowWebhookDelivery>> {
        // an idle poll is a read: no write, no new generation
        if limit == 0 || !self.read(|c| mlflow_webhooks::any_due(c, now_ms))? {
            return Ok(Vec::new());
        }
        self.write_quiet(|tx| mlflow_webhooks::claim(tx, now_ms, lease_ms, limit))
    }
    fn record_mlflow_webhook_attempt(
        &self,
        id: i64,
        claimed_until_ms: i64,
        attempt: &WebhookAttempt,
        outcome: DeliveryOutcome,
    ) -> Result<bool> {
        self.write_quiet(|tx| mlflow_webhooks::record(tx, id, claimed_until_ms, attempt, outcome))
    }
    fn list_mlflow_webhook_deliveries(
        &self,
        webhook_id: &str,
    ) -> Result<Vec<MlflowWebhookDelivery>> {
        self.read(|c| mlflow_webhooks::deliveries(c, webhook_id))
    }

    fn write_generation(&self) -> u64 {
        // the database's counter (moved by writes from any process), read at
        // most every 200 ms however many pages ask
        let mut cached = self
            .generation_read
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let local = self.generation.load(Ordering::Acquire);
        if let Some((at, local_then, n)) = *cached
            && at.elapsed() < std::time::Duration::from_millis(200)
            && local_then == local
        {
            return n;
        }
        let n = self
            .read(|c| {
                Ok(
                    c.query_row("SELECT n FROM atelier_generation WHERE id = 1", [], |r| {
                        r.get::<_, i64>(0)
                    })?,
                )
            })
            .map(|n| n as u64)
            .unwrap_or_else(|_| cached.map(|c| c.2).unwrap_or(local));
        *cached = Some((std::time::Instant::now(), local, n));
        n
    }
}
