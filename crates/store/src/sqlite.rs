//! The embedded metadata store: SQLite in WAL mode.
//!
//! One writer connection behind a mutex (SQLite allows one writer at a time;
//! serialising writes here instead of in SQLite means no "database is
//! locked" errors), and a pool of reader connections that never block the
//! writer thanks to WAL. `synchronous=NORMAL` in WAL mode makes every
//! committed transaction survive a crash of the process (`kill -9`); only a
//! power loss can lose the last transactions, never corrupt the file.
//!
//! The SQL of each entity lives in a submodule (`experiments`, `runs`,
//! `registry`, `logged_models`, `people`, `jobs`, …) as functions over a
//! `&Conn`; the trait impls here run them inside `write`/`read`.
//! `filter_sql` translates MLflow's search grammar for all of them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use rusqlite::Connection;

use crate::db::{Conn, OptionalExtension, PgPool};

use crate::*;

mod audit;
mod experiments;
mod filter_sql;
mod genai;
pub mod import;
mod jobs;
mod logged_models;
mod migrate;
mod people;
mod registry;
mod runs;
pub use migrate::CopyReport;
mod mlflow_webhooks;
mod model_cards;
mod traces;
mod webhooks;
mod workspaces;

// (for the modules outside the split: genai, traces, import)
use experiments::{experiment_active, load_experiment};
use runs::load_run_info;

const MIGRATIONS: &str = include_str!("migrations.sql");
const MIGRATIONS_PG: &str = include_str!("migrations_pg.sql");
/// IN-lists are sent in chunks of this many ids.
const CHUNK: usize = 500;

/// PostgreSQL's table of metric points written one at a time (migration 17).
const PG_POINT_ROWS: &str = "metric_point_rows";

/// The table metric points written one at a time go to: `metric_points` on
/// SQLite; on PostgreSQL `metric_points` is a view over these rows and the
/// batches' chunks (migration 17), and single points are rows of
/// `metric_point_rows`.
fn point_rows(c: &crate::db::Conn) -> &'static str {
    if c.is_postgres() {
        PG_POINT_ROWS
    } else {
        "metric_points"
    }
}

pub struct SqlStore {
    backend: Backend,
    /// This process's visible writes (a cheap "did I write?" for the cache below).
    generation: AtomicU64,
    /// The database's write generation as last read: (when, `generation` then, value).
    generation_read: Mutex<Option<(std::time::Instant, u64, u64)>>,
}

impl Drop for SqlStore {
    /// The checkpoint thread ends before the connections close, so the
    /// writer's close is the last: SQLite copies the WAL into the database
    /// file and removes it, and the file alone is complete once a CLI
    /// command returns.
    fn drop(&mut self) {
        if let Backend::Sqlite {
            writer,
            checkpointer,
            ..
        } = &self.backend
        {
            let handle = checkpointer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(handle) = handle {
                let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                // drops the hook and with it the thread's only sender
                let none: Option<
                    fn(&mut rusqlite::hooks::Wal, std::ffi::c_int) -> rusqlite::Result<()>,
                > = None;
                if let Err(e) = w.wal_hook(none) {
                    tracing::warn!(error = %e, "could not remove the WAL hook");
                    return;
                }
                drop(w);
                let _ = handle.join();
            }
        }
    }
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
        /// The thread that checkpoints the WAL ([`checkpoint_in_background`]).
        checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
    },
    /// A PostgreSQL database (`postgres://…`).
    Postgres { url: String, pool: Box<PgPool> },
}

/// Page cache per connection, in KiB: the writer keeps the hot indexes,
/// readers (up to `MAX_READERS`, kept open) stay small so idle memory stays
/// low after heavy searches.
const WRITER_CACHE_KIB: i64 = 32_000;
const READER_CACHE_KIB: i64 = 8_000;
/// The checkpointer only copies pages out of the WAL: it needs no cache.
const CHECKPOINTER_CACHE_KIB: i64 = 1_000;
/// WAL pages after which the checkpointer thread is woken (SQLite's own
/// auto-checkpoint threshold).
const CHECKPOINT_PAGES: std::ffi::c_int = 1_000;
/// WAL pages after which the writer checkpoints by itself, as SQLite would:
/// the checkpointer is behind (a long read pins the WAL) or gone.
const WRITER_CHECKPOINT_PAGES: std::ffi::c_int = 20_000;
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
    // One plan per statement, whatever values are bound: without it SQLite
    // re-prepares (re-parses and re-plans) a cached statement whenever a
    // parameter its plan looked at is bound again, which made every
    // token lookup and run lookup parse its SQL anew on the hot paths.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Checkpoints off the writer's commit path. SQLite's auto-checkpoint runs
/// inside the COMMIT that takes the WAL past 1,000 pages: that one request
/// copies the pages of a thousand others into the database file and waits
/// for both files' fsync, with every other writer queued behind it (a
/// quarter of the writer's time while traces stream in). Instead the
/// writer's WAL hook wakes a thread with a connection of its own, which
/// copies the WAL beside the writer (a PASSIVE checkpoint never blocks it
/// or readers). The pages committed during that copy are left; the next
/// commit past the threshold copies just those itself, so that every page
/// is in the database and the write after it starts the WAL over — under a
/// steady stream of commits the WAL stays small. Durability is unchanged: a
/// commit is in the WAL either way. The thread ends with the writer
/// connection (its hook holds the only sender).
fn checkpoint_in_background(
    path: &Path,
    writer: &mut Connection,
) -> rusqlite::Result<Option<std::thread::JoinHandle<()>>> {
    use rusqlite::wal::CheckpointMode::PASSIVE;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let conn = Connection::open(path)?;
    configure(&conn, CHECKPOINTER_CACHE_KIB)?;
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    // a background pass has ended: the writer may finish it
    let passed = Arc::new(AtomicBool::new(false));
    let done = passed.clone();
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                match conn.wal_checkpoint_v2(None::<&str>, PASSIVE) {
                    Ok(_) => {}
                    // another process's checkpoint, or the writer's own catch-up
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::DatabaseBusy =>
                    {
                        tracing::debug!("a checkpoint is running already");
                    }
                    Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
                }
                done.store(true, Ordering::Release);
            }
        });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => {
            // no thread: SQLite's own auto-checkpoint stays in place
            tracing::warn!(error = %e, "no checkpoint thread; the writer checkpoints itself");
            return Ok(None);
        }
    };
    let mut last: std::ffi::c_int = 0;
    writer.wal_hook(Some(
        move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            if pages < last {
                // the WAL started over: a pass over the old one is no reason to copy here
                passed.store(false, Ordering::Release);
            }
            last = pages;
            if pages >= WRITER_CHECKPOINT_PAGES
                || (pages >= CHECKPOINT_PAGES && passed.swap(false, Ordering::AcqRel))
            {
                // as SQLite's own hook: best effort, the commit stands
                let _ = wal.checkpoint();
            } else if pages >= CHECKPOINT_PAGES {
                // full: a checkpoint is asked for already
                let _ = wake.try_send(());
            }
            Ok(())
        },
    ))?;
    Ok(Some(handle))
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
        let checkpointer = checkpoint_in_background(&path, &mut conn).map_err(sql_err)?;
        let store = SqlStore {
            backend: Backend::Sqlite {
                path,
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
                read_only: false,
                checkpointer: Mutex::new(checkpointer),
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
                checkpointer: Mutex::new(None),
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

    /// A visible write of metric points only: `pg` on PostgreSQL runs WITHOUT
    /// the store-wide writer lock (it keeps its own consistency row by row,
    /// see `runs::log_metrics_pg`), so loggers on several connections and
    /// processes append side by side; SQLite's one writer runs `sqlite`.
    fn write_points<T>(
        &self,
        pg: impl FnOnce(&Conn) -> Result<T>,
        sqlite: impl FnOnce(&Conn) -> Result<T>,
    ) -> Result<T> {
        let Backend::Postgres { pool, .. } = &self.backend else {
            return self.write(sqlite);
        };
        let out = pool.transaction(false, |c| -> Result<T> {
            let out = pg(c)?;
            // last, so the counter's row is held only while committing
            c.prepare_cached("UPDATE atelier_generation SET n = n + 1 WHERE id = 1")?
                .execute([])?;
            Ok(out)
        })?;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(out)
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

// ------------------------------------------------------------ experiments

// ------------------------------------------------------------------ impl

impl MetadataStore for SqlStore {
    fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        self.read(workspaces::list_workspaces)
    }

    fn create_workspace(&self, w: &Workspace) -> Result<Workspace> {
        self.write(|tx| workspaces::create_workspace(tx, w))
    }

    fn get_workspace(&self, name: &str) -> Result<Workspace> {
        self.read(|c| workspaces::load_workspace(c, name))
    }

    fn update_workspace(
        &self,
        name: &str,
        description: Option<&str>,
        default_artifact_root: Option<&str>,
    ) -> Result<Workspace> {
        self.write(|tx| workspaces::update_workspace(tx, name, description, default_artifact_root))
    }

    fn delete_workspace(&self, name: &str, mode: WorkspaceDeletion) -> Result<()> {
        self.write(|tx| workspaces::delete_workspace(tx, name, mode))
    }

    fn workspace_retired(&self, name: &str) -> Result<bool> {
        self.read(|c| workspaces::retired(c, name))
    }

    fn free_workspace_name(&self, name: &str) -> Result<()> {
        self.write(|tx| workspaces::free_name(tx, name))
    }

    fn experiment_workspace(&self, id: i64) -> Result<String> {
        self.read(|c| workspaces::experiment_workspace(c, id))
    }

    fn run_workspace(&self, run_id: &str) -> Result<String> {
        self.read(|c| workspaces::run_workspace(c, run_id))
    }

    fn logged_model_workspace(&self, model_id: &str) -> Result<String> {
        self.read(|c| workspaces::logged_model_workspace(c, model_id))
    }

    fn trace_workspace(&self, trace_id: &str) -> Result<String> {
        self.read(|c| workspaces::trace_workspace(c, trace_id))
    }

    fn create_experiment_in(
        &self,
        workspace: &str,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<i64> {
        self.write(|tx| {
            experiments::create_experiment(tx, workspace, name, artifact_location, tags)
        })
    }

    fn get_experiment(&self, id: i64) -> Result<Experiment> {
        self.read(|c| experiments::get_experiment(c, id))
    }

    fn get_experiment_by_name_in(&self, workspace: &str, name: &str) -> Result<Experiment> {
        self.read(|c| experiments::get_experiment_by_name(c, workspace, name))
    }

    fn search_experiments(&self, q: &SearchExperiments) -> Result<Page<Experiment>> {
        self.read(|c| experiments::search_experiments(c, q))
    }

    fn rename_experiment(&self, id: i64, new_name: &str) -> Result<()> {
        self.write(|tx| experiments::rename_experiment(tx, id, new_name))
    }

    fn delete_experiment(&self, id: i64) -> Result<()> {
        self.write(|tx| experiments::delete_experiment(tx, id))
    }

    fn restore_experiment(&self, id: i64) -> Result<()> {
        self.write(|tx| experiments::restore_experiment(tx, id))
    }

    fn set_experiment_tag(&self, id: i64, key: &str, value: &str) -> Result<()> {
        self.write(|tx| experiments::set_experiment_tag(tx, id, key, value))
    }

    fn delete_experiment_tag(&self, id: i64, key: &str) -> Result<()> {
        self.write(|tx| experiments::delete_experiment_tag(tx, id, key))
    }

    fn create_run(&self, req: CreateRun) -> Result<RunInfo> {
        self.write(|tx| runs::create_run(tx, req))
    }

    fn get_run(&self, run_id: &str) -> Result<Run> {
        self.read(|c| runs::get_run(c, run_id))
    }

    fn update_run(&self, run_id: &str, upd: UpdateRun) -> Result<RunInfo> {
        self.write(|tx| runs::update_run(tx, run_id, upd))
    }

    fn delete_run(&self, run_id: &str) -> Result<()> {
        self.write(|tx| runs::delete_run(tx, run_id))
    }

    fn restore_run(&self, run_id: &str) -> Result<()> {
        self.write(|tx| runs::restore_run(tx, run_id))
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()> {
        if params.is_empty() && tags.is_empty() {
            return self.write_points(
                |tx| runs::log_metrics_pg(tx, run_id, metrics),
                |tx| runs::log_batch(tx, run_id, metrics, params, tags),
            );
        }
        self.write(|tx| runs::log_batch(tx, run_id, metrics, params, tags))
    }

    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        self.write(|tx| runs::delete_tag(tx, run_id, key))
    }

    fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        model_inputs: &[String],
    ) -> Result<()> {
        self.write(|tx| runs::log_inputs(tx, run_id, datasets, model_inputs))
    }

    fn log_outputs(&self, run_id: &str, outputs: &[ModelOutput]) -> Result<()> {
        self.write(|tx| runs::log_outputs(tx, run_id, outputs))
    }

    fn search_runs(&self, q: &SearchRuns) -> Result<Page<Run>> {
        self.read(|c| runs::search_runs(c, q))
    }

    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>> {
        self.read(|c| runs::metric_history(c, run_id, key, max_results, page_token))
    }

    fn metric_points_after(
        &self,
        run_id: &str,
        cursor: i64,
        limit: usize,
    ) -> Result<(Vec<Metric>, i64)> {
        self.read(|c| runs::metric_points_after(c, run_id, cursor, limit))
    }

    fn metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: usize,
    ) -> Result<Vec<RunMetric>> {
        self.read(|c| {
            runs::metric_history_bulk_interval(c, run_ids, key, start_step, end_step, max_results)
        })
    }

    fn search_datasets(&self, experiment_ids: &[i64]) -> Result<Vec<DatasetSummary>> {
        self.read(|c| runs::search_datasets(c, experiment_ids))
    }

    fn metric_keys(&self, experiment_ids: &[i64]) -> Result<Vec<String>> {
        self.read(|c| runs::metric_keys(c, experiment_ids))
    }

    // ---------------------------------------------------------- registry

    fn create_registered_model_in(
        &self,
        workspace: &str,
        name: &str,
        tags: &[Tag],
        description: &str,
        user_id: &str,
    ) -> Result<RegisteredModel> {
        self.write(|tx| {
            registry::create_registered_model(tx, workspace, name, tags, description, user_id)
        })
    }

    fn registered_model_workspace(&self, name: &str) -> Result<String> {
        self.read(|c| registry::registered_model_workspace(c, name))
    }

    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.read(|c| registry::get_registered_model(c, name))
    }

    fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        self.write(|tx| registry::rename_registered_model(tx, name, new_name))
    }

    fn update_registered_model(&self, name: &str, description: &str) -> Result<RegisteredModel> {
        self.write(|tx| registry::update_registered_model(tx, name, description))
    }

    fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.write(|tx| registry::delete_registered_model(tx, name))
    }

    fn search_registered_models(&self, q: &SearchRegistry) -> Result<Page<RegisteredModel>> {
        self.read(|c| registry::search_registered_models(c, q))
    }

    fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.write(|tx| registry::set_registered_model_tag(tx, name, key, value))
    }

    fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        self.write(|tx| registry::delete_registered_model_tag(tx, name, key))
    }

    fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        self.write(|tx| registry::set_alias(tx, name, alias, version))
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.write(|tx| registry::delete_alias(tx, name, alias))
    }

    fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        self.read(|c| registry::get_version_by_alias(c, name, alias))
    }

    fn create_model_version(&self, req: CreateModelVersion) -> Result<ModelVersion> {
        self.write(|tx| registry::create_model_version(tx, req))
    }

    fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        self.read(|c| registry::get_model_version(c, name, version))
    }

    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
    ) -> Result<ModelVersion> {
        self.write(|tx| registry::update_model_version(tx, name, version, description))
    }

    fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        self.write(|tx| registry::delete_model_version(tx, name, version))
    }

    fn search_model_versions(&self, q: &SearchRegistry) -> Result<Page<ModelVersion>> {
        self.read(|c| registry::search_model_versions(c, q))
    }

    fn latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>> {
        self.read(|c| registry::latest_versions(c, name, stages))
    }

    fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        self.write(|tx| registry::transition_stage(tx, name, version, stage, archive_existing))
    }

    fn set_model_version_tag(
        &self,
        name: &str,
        version: i64,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.write(|tx| registry::set_model_version_tag(tx, name, version, key, value))
    }

    fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        self.write(|tx| registry::delete_model_version_tag(tx, name, version, key))
    }

    // ----------------------------------------------------- logged models

    fn create_logged_model(&self, req: CreateLoggedModel) -> Result<LoggedModel> {
        self.write(|tx| logged_models::create_logged_model(tx, req))
    }

    fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        self.read(|c| logged_models::get_logged_model(c, model_id))
    }

    fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        self.write(|tx| logged_models::delete_logged_model(tx, model_id))
    }

    fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel> {
        self.write(|tx| logged_models::finalize_logged_model(tx, model_id, status))
    }

    fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()> {
        self.write(|tx| logged_models::set_logged_model_tags(tx, model_id, tags))
    }

    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        self.write(|tx| logged_models::delete_logged_model_tag(tx, model_id, key))
    }

    fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<()> {
        self.write(|tx| logged_models::log_logged_model_params(tx, model_id, params))
    }

    fn search_logged_models(&self, q: &SearchLoggedModels) -> Result<Page<LoggedModel>> {
        self.read(|c| logged_models::search_logged_models(c, q))
    }

    // ------------------------------------------------------------ people

    fn create_user(&self, name: &str, password_hash: Option<&str>, is_admin: bool) -> Result<User> {
        self.write(|tx| people::create_user(tx, name, password_hash, is_admin))
    }
    fn get_user(&self, name: &str) -> Result<User> {
        self.read(|c| people::get_user(c, name))
    }
    fn list_users(&self) -> Result<Vec<User>> {
        self.read(people::list_users)
    }
    fn set_user_password(&self, name: &str, password_hash: Option<&str>) -> Result<()> {
        self.write(|tx| people::set_user_password(tx, name, password_hash))
    }
    fn set_user_admin(&self, name: &str, is_admin: bool) -> Result<()> {
        self.write(|tx| people::set_user_admin(tx, name, is_admin))
    }
    fn delete_user(&self, name: &str) -> Result<()> {
        self.write(|tx| people::delete_user(tx, name))
    }
    fn password_hash(&self, name: &str) -> Result<Option<String>> {
        self.read(|c| people::password_hash(c, name))
    }
    fn set_member(&self, workspace: &str, user: &str, role: &str) -> Result<()> {
        self.write(|tx| people::set_member(tx, workspace, user, role))
    }
    fn remove_member(&self, workspace: &str, user: &str) -> Result<()> {
        self.write(|tx| people::remove_member(tx, workspace, user))
    }
    fn list_members(&self, workspace: &str) -> Result<Vec<(String, String)>> {
        self.read(|c| people::list_members(c, workspace))
    }
    fn member_roles(&self, user: &str) -> Result<Vec<(String, String)>> {
        self.read(|c| people::member_roles(c, user))
    }
    fn member_role(&self, workspace: &str, user: &str) -> Result<Option<String>> {
        self.read(|c| people::member_role(c, workspace, user))
    }
    fn create_token(
        &self,
        name: &str,
        role: &str,
        token_hash: &str,
        expires: Option<i64>,
    ) -> Result<()> {
        self.write(|tx| people::create_token(tx, name, role, token_hash, expires, None))
    }
    fn create_project_token(
        &self,
        name: &str,
        role: &str,
        token_hash: &str,
        workspace: &str,
    ) -> Result<()> {
        self.write(|tx| people::create_token(tx, name, role, token_hash, None, Some(workspace)))
    }
    fn create_user_token(
        &self,
        user: &str,
        name: &str,
        role: &str,
        token_hash: &str,
        expires: Option<i64>,
    ) -> Result<()> {
        self.write(|tx| people::create_user_token(tx, user, name, role, token_hash, expires))
    }
    fn create_endpoint_key(
        &self,
        endpoint: &str,
        name: &str,
        token_hash: &str,
        created_by: &str,
    ) -> Result<()> {
        self.write(|tx| people::create_endpoint_key(tx, endpoint, name, token_hash, created_by))
    }
    fn reads_in_place(&self) -> bool {
        matches!(self.backend, Backend::Sqlite { .. })
    }
    fn authenticate(
        &self,
        secret_hash: Option<&str>,
        session: bool,
        workspace: Option<&str>,
    ) -> Result<Authenticated> {
        self.read(|c| people::authenticate(c, secret_hash, session, workspace))
    }
    fn lookup_token(&self, token_hash: &str) -> Result<Option<Credential>> {
        self.read(|c| people::lookup_token(c, token_hash))
    }
    fn revoke_token(&self, name: &str) -> Result<()> {
        self.write(|tx| people::revoke_token(tx, name))
    }
    fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        self.read(people::list_tokens)
    }
    fn create_session(&self, user: &str, id_hash: &str, expires: i64) -> Result<()> {
        self.write(|tx| people::create_session(tx, user, id_hash, expires))
    }
    fn lookup_session(&self, id_hash: &str) -> Result<Option<Credential>> {
        self.read(|c| people::lookup_session(c, id_hash))
    }
    fn end_session(&self, id_hash: &str) -> Result<()> {
        self.write(|tx| people::end_session(tx, id_hash))
    }
    fn end_sessions(&self, user: &str) -> Result<usize> {
        self.write(|tx| people::end_sessions(tx, user))
    }
    fn record_login_failure(&self, user: &str, at: i64) -> Result<()> {
        self.write(|tx| people::record_login_failure(tx, user, at))
    }
    fn login_failures_since(&self, user: &str, since: i64) -> Result<i64> {
        self.read(|c| people::login_failures_since(c, user, since))
    }
    fn clear_login_failures(&self, user: &str) -> Result<()> {
        self.write(|tx| people::clear_login_failures(tx, user))
    }
    fn append_audit(&self, e: &AuditEntry) -> Result<i64> {
        self.write(|tx| audit::append(tx, e))
    }
    fn search_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.read(|c| audit::search(c, q))
    }

    fn queue_job(&self, job: &NewJob) -> Result<Job> {
        jobs::create(self, job)
    }
    fn get_job(&self, id: &str) -> Result<Job> {
        self.read(|c| jobs::get(c, id))
    }
    fn list_jobs(
        &self,
        workspace: Option<&str>,
        kind: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        self.read(|c| jobs::list(c, workspace, kind, limit))
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
    fn put_endpoint(&self, workspace: &str, name: &str, config: &str) -> Result<Endpoint> {
        self.write(|tx| jobs::put_endpoint(tx, workspace, name, config))
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
    fn put_schedule(&self, workspace: &str, name: &str, config: &str) -> Result<Endpoint> {
        self.write(|tx| jobs::put_doc(tx, jobs::SCHEDULES, workspace, name, config))
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
    fn put_notebook_schedule(&self, workspace: &str, name: &str, config: &str) -> Result<Endpoint> {
        self.write(|tx| jobs::put_doc(tx, jobs::NOTEBOOK_SCHEDULES, workspace, name, config))
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
        workspace: Option<&str>,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<MlflowWebhook>> {
        self.read(|c| mlflow_webhooks::list(c, workspace, max_results, page_token))
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
