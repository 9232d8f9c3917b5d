//! The store's one door to SQL: a small, dialect-neutral layer over SQLite
//! (`rusqlite`) and PostgreSQL (`tokio-postgres`), shaped like the part of
//! rusqlite's API the store uses (`execute`, `query_row`, `prepare_cached`,
//! `query_map`, `params!`, `optional()`), so that every entity's SQL is
//! written once and runs on both.
//!
//! SQL is written with SQLite's `?N` / `?` placeholders; for PostgreSQL they
//! are rewritten to `$N` ([`pg_placeholders`]). A bound value is converted
//! to whatever type PostgreSQL infers for its parameter (an `i64` bound
//! where PostgreSQL expects `DOUBLE PRECISION` or `TEXT` is sent as one), so
//! callers bind values as they would for SQLite. Rows from PostgreSQL are
//! read into owned [`Val`]s; rows from SQLite are read in place.
//!
//! PostgreSQL connections are driven by a small runtime of the store's own
//! on one background thread; a call waits for its answer with
//! `futures_executor::block_on`, so the store stays synchronous and may be
//! called from any thread, inside a tokio runtime or not.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql as PgToSql, Type, to_sql_checked};

/// A database failure: not the caller's fault. Opaque on purpose — no
/// driver type leaks out of the store.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DbError(Kind);

#[derive(Debug, thiserror::Error)]
enum Kind {
    #[error("{0}")]
    Sqlite(rusqlite::Error),
    #[error("{}", pg_message(.0))]
    Pg(tokio_postgres::Error),
    #[error("query returned no rows")]
    NoRows,
    #[error("{0}")]
    Other(String),
}

fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let hint = match d.code().code() {
                "3D000" => {
                    " (create it first: CREATE DATABASE … TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C')"
                }
                "28P01" | "28000" => " (check the user and password in the database URL)",
                _ => "",
            };
            format!("{}: {}{hint}", d.code().code(), d.message())
        }
        None => {
            // the driver's own text stops at "error connecting to server":
            // the cause (refused, timed out, unknown host) is what helps
            let mut msg = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                let text = c.to_string();
                if !msg.contains(&text) {
                    msg.push_str(": ");
                    msg.push_str(&text);
                }
                cause = c.source();
            }
            msg
        }
    }
}

impl DbError {
    pub(crate) fn other(msg: impl Into<String>) -> Self {
        DbError(Kind::Other(msg.into()))
    }
    /// A UNIQUE or PRIMARY KEY constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        match &self.0 {
            Kind::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                f.code == rusqlite::ErrorCode::ConstraintViolation
            }
            Kind::Pg(e) => e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
    /// PostgreSQL refused a NUL character (U+0000) in a text value
    /// (SQLSTATE 22021), which SQLite would have stored.
    pub fn is_nul_in_text(&self) -> bool {
        match &self.0 {
            Kind::Pg(e) => {
                e.code() == Some(&tokio_postgres::error::SqlState::CHARACTER_NOT_IN_REPERTOIRE)
                    && e.as_db_error()
                        .is_some_and(|d| d.message().contains("0x00"))
            }
            _ => false,
        }
    }
    fn is_no_rows(&self) -> bool {
        matches!(self.0, Kind::NoRows)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => DbError(Kind::NoRows),
            e => DbError(Kind::Sqlite(e)),
        }
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError(Kind::Pg(e))
    }
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// `query_row(...).optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_no_rows() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

// ---------------------------------------------------------------- values

/// One SQL value (the names follow rusqlite's `Value`).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Val::Null => ValueRef::Null,
            Val::Integer(i) => ValueRef::Integer(*i),
            Val::Real(f) => ValueRef::Real(*f),
            Val::Text(s) => ValueRef::Text(s.as_bytes()),
            Val::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl rusqlite::types::FromSql for Val {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::ValueRef;
        Ok(match v {
            ValueRef::Null => Val::Null,
            ValueRef::Integer(i) => Val::Integer(i),
            ValueRef::Real(f) => Val::Real(f),
            ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Val::Blob(b.to_vec()),
        })
    }
}

/// A value that can be bound to a statement on either backend.
pub trait ToVal: rusqlite::ToSql {
    fn to_val(&self) -> Val;
}

macro_rules! int_to_val {
    ($($t:ty),*) => {$(
        impl ToVal for $t {
            fn to_val(&self) -> Val {
                Val::Integer(*self as i64)
            }
        }
    )*};
}
int_to_val!(i64, i32, i16, i8, u32, u16, u8);

impl ToVal for f64 {
    fn to_val(&self) -> Val {
        Val::Real(*self)
    }
}
impl ToVal for f32 {
    fn to_val(&self) -> Val {
        Val::Real(*self as f64)
    }
}
impl ToVal for bool {
    fn to_val(&self) -> Val {
        Val::Integer(*self as i64)
    }
}
impl ToVal for str {
    fn to_val(&self) -> Val {
        Val::Text(self.to_string())
    }
}
impl ToVal for String {
    fn to_val(&self) -> Val {
        Val::Text(self.clone())
    }
}
impl ToVal for [u8] {
    fn to_val(&self) -> Val {
        Val::Blob(self.to_vec())
    }
}
impl ToVal for Vec<u8> {
    fn to_val(&self) -> Val {
        Val::Blob(self.clone())
    }
}
impl ToVal for Val {
    fn to_val(&self) -> Val {
        self.clone()
    }
}
impl<T: ToVal> ToVal for Option<T> {
    fn to_val(&self) -> Val {
        match self {
            Some(v) => v.to_val(),
            None => Val::Null,
        }
    }
}
impl<T: ToVal + ?Sized> ToVal for &T {
    fn to_val(&self) -> Val {
        (**self).to_val()
    }
}
impl<T: ToVal + ?Sized> ToVal for Box<T> {
    fn to_val(&self) -> Val {
        (**self).to_val()
    }
}
impl ToVal for std::borrow::Cow<'_, str> {
    fn to_val(&self) -> Val {
        Val::Text(self.to_string())
    }
}

/// A value read from a column, on either backend.
pub trait FromVal: rusqlite::types::FromSql + Sized {
    fn from_val(v: Val) -> std::result::Result<Self, String>;
}

fn wrong(v: &Val, want: &str) -> String {
    format!("cannot read {v:?} as {want}")
}

impl FromVal for i64 {
    fn from_val(v: Val) -> std::result::Result<Self, String> {
        match v {
            Val::Integer(i) => Ok(i),
            v => Err(wrong(&v, "an integer")),
        }
    }
}
macro_rules! narrow_from_val {
    ($($t:ty),*) => {$(
        impl FromVal for $t {
            fn from_val(v: Val) -> std::result::Result<Self, String> {
                let i = i64::from_val(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range"))
            }
        }
    )*};
}
narrow_from_val!(i32, u32, i16, u16, u8);

impl FromVal for f64 {
    fn from_val(v: Val) -> std::result::Result<Self, String> {
        match v {
            Val::Real(f) => Ok(f),
            Val::Integer(i) => Ok(i as f64),
            v => Err(wrong(&v, "a number")),
        }
    }
}
impl FromVal for bool {
    fn from_val(v: Val) -> std::result::Result<Self, String> {
        match v {
            Val::Integer(i) => Ok(i != 0),
            v => Err(wrong(&v, "a flag")),
        }
    }
}
impl FromVal for String {
    fn from_val(v: Val) -> std::result::Result<Self, String> {
        match v {
            Val::Text(s) => Ok(s),
            v => Err(wrong(&v, "text")),
        }
    }
}
impl FromVal for Vec<u8> {
    fn from_val(v: Val) -> std::result::Result<Self, String> {
        match v {
            Val::Blob(b) => Ok(b),
            Val::Text(s) => Ok(s.into_bytes()),
            v => Err(wrong(&v, "bytes")),
        }
    }
}
impl FromVal for Val {
    fn from_val(v: Val) -> std::result::Result<Self, String> {
        Ok(v)
    }
}
impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: Val) -> std::result::Result<Self, String> {
        match v {
            Val::Null => Ok(None),
            v => T::from_val(v).map(Some),
        }
    }
}

// ---------------------------------------------------------------- params

/// Statement arguments: `params![a, b]`, `[x]`, `[]`, `()`,
/// `params_from_iter(values)`, or a slice of `&dyn ToVal`.
pub trait Params {
    fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R;
}

impl Params for () {
    fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R {
        f(&[])
    }
}
impl Params for [&dyn ToVal; 0] {
    fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R {
        f(&[])
    }
}
impl Params for &[&dyn ToVal] {
    fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R {
        f(self)
    }
}
impl Params for Vec<&dyn ToVal> {
    fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R {
        f(self)
    }
}
impl Params for &Vec<&dyn ToVal> {
    fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R {
        f(self)
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToVal> Params for [T; $n] {
            fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R {
                let refs: Vec<&dyn ToVal> = self.iter().map(|v| v as &dyn ToVal).collect();
                f(&refs)
            }
        }
        impl<T: ToVal> Params for &[T; $n] {
            fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R {
                let refs: Vec<&dyn ToVal> = self.iter().map(|v| v as &dyn ToVal).collect();
                f(&refs)
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);

/// Arguments from an iterator (rusqlite's `params_from_iter`).
pub struct ParamsFromIter<T>(Vec<T>);

pub fn params_from_iter<I>(iter: I) -> ParamsFromIter<I::Item>
where
    I: IntoIterator,
    I::Item: ToVal,
{
    ParamsFromIter(iter.into_iter().collect())
}

impl<T: ToVal> Params for ParamsFromIter<T> {
    fn with_refs<R>(&self, f: impl FnOnce(&[&dyn ToVal]) -> R) -> R {
        let refs: Vec<&dyn ToVal> = self.0.iter().map(|v| v as &dyn ToVal).collect();
        f(&refs)
    }
}

/// `params![a, b, c]`: arguments of different types.
#[macro_export]
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::db::ToVal]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::db::ToVal),+] as &[&dyn $crate::db::ToVal]
    };
}
pub use crate::params;

fn sqlite_refs<'a>(refs: &'a [&'a dyn ToVal]) -> Vec<&'a dyn rusqlite::ToSql> {
    refs.iter().map(|r| *r as &dyn rusqlite::ToSql).collect()
}

// ---------------------------------------------------------------- rows

/// Where a column is: its position, or its name.
pub trait RowIndex: rusqlite::RowIndex {
    fn position(&self, names: &[String]) -> Option<usize>;
}
impl RowIndex for usize {
    fn position(&self, names: &[String]) -> Option<usize> {
        (*self < names.len()).then_some(*self)
    }
}
impl RowIndex for &str {
    fn position(&self, names: &[String]) -> Option<usize> {
        names.iter().position(|n| n.eq_ignore_ascii_case(self))
    }
}

/// A row read from PostgreSQL.
#[derive(Debug, Clone)]
pub struct OwnedRow {
    names: Arc<[String]>,
    vals: Vec<Val>,
}

/// One result row.
pub enum Row<'r, 's> {
    Sqlite(&'r rusqlite::Row<'s>),
    Owned(&'r OwnedRow),
}

impl Row<'_, '_> {
    pub fn get<I: RowIndex, T: FromVal>(&self, idx: I) -> Result<T> {
        match self {
            Row::Sqlite(r) => Ok(r.get::<I, T>(idx)?),
            Row::Owned(r) => {
                let i = idx
                    .position(&r.names)
                    .ok_or_else(|| DbError::other("no such column in the result"))?;
                let v = r.vals.get(i).cloned().unwrap_or(Val::Null);
                T::from_val(v).map_err(|e| DbError::other(format!("column {i}: {e}")))
            }
        }
    }
}

/// The rows of a query, one at a time.
pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Owned(std::vec::IntoIter<OwnedRow>, Option<OwnedRow>),
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_, '_>>> {
        match self {
            Rows::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            Rows::Owned(it, cur) => {
                *cur = it.next();
                Ok(cur.as_ref().map(Row::Owned))
            }
        }
    }
}

// ---------------------------------------------------------------- connections

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection or transaction, on either backend. Store code takes `&Conn`.
pub struct Conn<'a>(Inner<'a>);

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Pg(RefCell<PgTx<'a>>),
}

pub(crate) struct PgTx<'a> {
    tx: tokio_postgres::Transaction<'a>,
    cache: &'a mut HashMap<String, tokio_postgres::Statement>,
}

impl<'a> Conn<'a> {
    pub(crate) fn sqlite(c: &'a rusqlite::Connection) -> Self {
        Conn(Inner::Sqlite(c))
    }
    pub(crate) fn pg(
        tx: tokio_postgres::Transaction<'a>,
        cache: &'a mut HashMap<String, tokio_postgres::Statement>,
    ) -> Self {
        Conn(Inner::Pg(RefCell::new(PgTx { tx, cache })))
    }
    pub(crate) fn into_pg(self) -> Option<tokio_postgres::Transaction<'a>> {
        match self.0 {
            Inner::Pg(t) => Some(t.into_inner().tx),
            Inner::Sqlite(_) => None,
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.0 {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Pg(_) => Dialect::Postgres,
        }
    }
    pub fn is_postgres(&self) -> bool {
        self.dialect() == Dialect::Postgres
    }

    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        match &self.0 {
            Inner::Sqlite(c) => {
                params.with_refs(|refs| Ok(c.execute(sql, sqlite_refs(refs).as_slice())?))
            }
            Inner::Pg(t) => params.with_refs(|refs| t.borrow_mut().execute(sql, refs)),
        }
    }

    /// Several statements, no arguments (migrations).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.0 {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Pg(t) => {
                let t = t.borrow_mut();
                block_on(t.tx.batch_execute(sql))?;
                Ok(())
            }
        }
    }

    pub fn query_row<T, P: Params, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        F: FnOnce(&Row<'_, '_>) -> Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        match &self.0 {
            Inner::Sqlite(c) => Ok(Stmt(StmtInner::Sqlite(c.prepare_cached(sql)?))),
            Inner::Pg(t) => Ok(Stmt(StmtInner::Pg {
                tx: t,
                sql: sql.to_string(),
            })),
        }
    }

    /// PostgreSQL only: one statement whose arguments are bound as the driver
    /// sends them (arrays for `unnest($1::text[], …)`: a whole batch in one
    /// round trip); its rows, read as [`Conn::prepare_cached`]'s are.
    pub(crate) fn pg_query(&self, sql: &str, args: &[&(dyn PgToSql + Sync)]) -> Result<Rows<'_>> {
        match &self.0 {
            Inner::Pg(t) => Ok(Rows::Owned(
                t.borrow_mut().query_raw(sql, args)?.into_iter(),
                None,
            )),
            Inner::Sqlite(_) => Err(DbError::other("pg_query on a SQLite connection")),
        }
    }

    /// As [`Conn::prepare_cached`], for SQL built at run time (not cached by SQLite).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        match &self.0 {
            Inner::Sqlite(c) => Ok(Stmt(StmtInner::SqliteOnce(c.prepare(sql)?))),
            Inner::Pg(_) => self.prepare_cached(sql),
        }
    }
}

/// A prepared statement.
pub struct Stmt<'c>(StmtInner<'c>);

enum StmtInner<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    SqliteOnce(rusqlite::Statement<'c>),
    Pg { tx: &'c dyn PgRun, sql: String },
}

/// A PostgreSQL transaction as statements see it.
trait PgRun {
    fn run_execute(&self, sql: &str, refs: &[&dyn ToVal]) -> Result<usize>;
    fn run_query(&self, sql: &str, refs: &[&dyn ToVal]) -> Result<Vec<OwnedRow>>;
}

impl PgRun for RefCell<PgTx<'_>> {
    fn run_execute(&self, sql: &str, refs: &[&dyn ToVal]) -> Result<usize> {
        self.borrow_mut().execute(sql, refs)
    }
    fn run_query(&self, sql: &str, refs: &[&dyn ToVal]) -> Result<Vec<OwnedRow>> {
        self.borrow_mut().query(sql, refs)
    }
}

impl<'c> Stmt<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match &mut self.0 {
            StmtInner::Sqlite(s) => Some(s),
            StmtInner::SqliteOnce(s) => Some(s),
            StmtInner::Pg { .. } => None,
        }
    }

    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        if let StmtInner::Pg { tx, sql } = &self.0 {
            return params.with_refs(|refs| tx.run_execute(sql, refs));
        }
        let st = self.sqlite().ok_or_else(|| DbError::other("statement"))?;
        params.with_refs(|refs| Ok(st.execute(sqlite_refs(refs).as_slice())?))
    }

    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        if let StmtInner::Pg { tx, sql } = &self.0 {
            let rows = params.with_refs(|refs| tx.run_query(sql, refs))?;
            return Ok(Rows::Owned(rows.into_iter(), None));
        }
        let st = self.sqlite().ok_or_else(|| DbError::other("statement"))?;
        params.with_refs(|refs| Ok(Rows::Sqlite(st.query(sqlite_refs(refs).as_slice())?)))
    }

    /// Every row mapped through `f` (read eagerly).
    pub fn query_map<T, P: Params, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        F: FnMut(&Row<'_, '_>) -> Result<T>,
    {
        let mut out = Vec::new();
        let mut rows = self.query(params)?;
        while let Some(r) = rows.next()? {
            out.push(f(&r));
        }
        Ok(out.into_iter())
    }

    pub fn query_row<T, P: Params, F>(&mut self, params: P, f: F) -> Result<T>
    where
        F: FnOnce(&Row<'_, '_>) -> Result<T>,
    {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(r) => f(&r),
            None => Err(DbError(Kind::NoRows)),
        }
    }

    /// Whether the query returns at least one row.
    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        let mut rows = self.query(params)?;
        Ok(rows.next()?.is_some())
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// Waits for a future on the calling thread. The connection it talks to is
/// driven by the pool's own runtime, so this never needs (nor conflicts
/// with) a caller's tokio runtime.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let text = pg_placeholders(sql);
        let st = block_on(self.tx.prepare(&text))?;
        if self.cache.len() > 512 {
            self.cache.clear();
        }
        self.cache.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    fn execute(&mut self, sql: &str, refs: &[&dyn ToVal]) -> Result<usize> {
        let st = self.statement(sql)?;
        let vals: Vec<PgVal> = refs.iter().map(|r| PgVal(r.to_val())).collect();
        let args: Vec<&(dyn PgToSql + Sync)> =
            vals.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
        Ok(block_on(self.tx.execute(&st, &args))? as usize)
    }

    fn query(&mut self, sql: &str, refs: &[&dyn ToVal]) -> Result<Vec<OwnedRow>> {
        let vals: Vec<PgVal> = refs.iter().map(|r| PgVal(r.to_val())).collect();
        let args: Vec<&(dyn PgToSql + Sync)> =
            vals.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
        self.query_raw(sql, &args)
    }

    fn query_raw(&mut self, sql: &str, args: &[&(dyn PgToSql + Sync)]) -> Result<Vec<OwnedRow>> {
        let st = self.statement(sql)?;
        let rows = block_on(self.tx.query(&st, args))?;
        let names: Arc<[String]> = st.columns().iter().map(|c| c.name().to_string()).collect();
        rows.iter()
            .map(|r| {
                let vals = (0..r.len())
                    .map(|i| read_pg(r, i))
                    .collect::<Result<Vec<Val>>>()?;
                Ok(OwnedRow {
                    names: names.clone(),
                    vals,
                })
            })
            .collect()
    }
}

/// SQLite's `?N` and `?` placeholders as PostgreSQL's `$N` (a bare `?` is
/// one more than the largest number so far, as in SQLite). Quoted strings,
/// quoted identifiers and comments are left alone.
pub fn pg_placeholders(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut i = 0;
    let mut last = 0usize;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if i + 1 < b.len() && b[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'?' => {
                out.push_str(&sql[copied..i]);
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let n = if j > start {
                    sql[start..j].parse::<usize>().unwrap_or(0)
                } else {
                    last + 1
                };
                last = last.max(n);
                out.push('$');
                out.push_str(&n.to_string());
                i = j;
                copied = j;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    out
}

/// A bound value, converted to the type PostgreSQL wants for its parameter.
#[derive(Debug)]
struct PgVal(Val);

type BoxErr = Box<dyn std::error::Error + Sync + Send>;

impl PgToSql for PgVal {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxErr> {
        let bad = |what: &str| -> BoxErr {
            format!("cannot send {what} as a PostgreSQL {}", ty.name()).into()
        };
        match &self.0 {
            Val::Null => Ok(IsNull::Yes),
            Val::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::OID => u32::try_from(*i)?.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    i.to_string().to_sql(&Type::TEXT, out)
                }
                _ => Err(bad("an integer")),
            },
            Val::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::INT8 if f.fract() == 0.0 => (*f as i64).to_sql(ty, out),
                Type::INT4 if f.fract() == 0.0 => (*f as i32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    f.to_string().to_sql(&Type::TEXT, out)
                }
                _ => Err(bad("a number")),
            },
            Val::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.as_str().to_sql(&Type::TEXT, out)
                }
                Type::JSON => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::INT8 => s.trim().parse::<i64>()?.to_sql(ty, out),
                Type::INT4 => s.trim().parse::<i32>()?.to_sql(ty, out),
                Type::FLOAT8 => s.trim().parse::<f64>()?.to_sql(ty, out),
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => Err(bad("text")),
            },
            Val::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    std::str::from_utf8(b)?.to_sql(&Type::TEXT, out)
                }
                _ => Err(bad("bytes")),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Column `i` of a PostgreSQL row as a [`Val`].
fn read_pg(r: &tokio_postgres::Row, i: usize) -> Result<Val> {
    let ty = r.columns()[i].type_().clone();
    let v = match ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Val::Integer),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Val::Integer(v.into())),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Val::Integer(v.into())),
        Type::OID => r
            .try_get::<_, Option<u32>>(i)?
            .map(|v| Val::Integer(v.into())),
        Type::BOOL => r
            .try_get::<_, Option<bool>>(i)?
            .map(|v| Val::Integer(v as i64)),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Val::Real),
        Type::FLOAT4 => r.try_get::<_, Option<f32>>(i)?.map(|v| Val::Real(v.into())),
        Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Val::Blob),
        Type::NUMERIC => r.try_get::<_, Option<Numeric>>(i)?.map(|n| n.0),
        Type::JSON | Type::JSONB => r.try_get::<_, Option<JsonText>>(i)?.map(|j| Val::Text(j.0)),
        _ => r.try_get::<_, Option<String>>(i)?.map(Val::Text),
    };
    Ok(v.unwrap_or(Val::Null))
}

/// A NUMERIC read as an integer when it has no fraction, else a float
/// (`SUM` of a BIGINT column is NUMERIC in PostgreSQL).
struct Numeric(Val);

impl<'a> tokio_postgres::types::FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxErr> {
        let word = |k: usize| -> std::result::Result<i64, BoxErr> {
            raw.get(k..k + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]) as i64)
                .ok_or_else(|| "short NUMERIC".into())
        };
        let ndigits = word(0)? as usize;
        let weight = word(2)?;
        let sign = word(4)? as u16;
        let dscale = word(6)?;
        if sign == 0xC000 {
            return Ok(Numeric(Val::Real(f64::NAN)));
        }
        let mut int: i128 = 0;
        let mut value = 0f64;
        let mut exact = true;
        for k in 0..ndigits {
            let d = word(8 + 2 * k)?;
            let power = weight - k as i64;
            value += d as f64 * 10f64.powi(4 * power as i32);
            if power >= 0 {
                int = int
                    .checked_mul(10_000)
                    .and_then(|v| v.checked_add(d as i128))
                    .unwrap_or_else(|| {
                        exact = false;
                        0
                    });
            } else if d != 0 {
                exact = false;
            }
        }
        if exact && ndigits > 0 {
            let last_power = weight - ndigits as i64 + 1;
            for _ in 0..last_power.max(0) {
                int = int.checked_mul(10_000).unwrap_or_else(|| {
                    exact = false;
                    0
                });
            }
        }
        let neg = sign == 0x4000;
        if exact && (dscale == 0 || ndigits == 0) && i64::try_from(int).is_ok() {
            let i = int as i64;
            return Ok(Numeric(Val::Integer(if neg { -i } else { i })));
        }
        Ok(Numeric(Val::Real(if neg { -value } else { value })))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// JSON or JSONB as its text.
struct JsonText(String);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxErr> {
        let body = if *ty == Type::JSONB {
            raw.get(1..).unwrap_or_default()
        } else {
            raw
        };
        Ok(JsonText(std::str::from_utf8(body)?.to_string()))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }
}

/// One PostgreSQL connection with its prepared-statement cache.
pub(crate) struct PgConn {
    client: tokio_postgres::Client,
    cache: HashMap<String, tokio_postgres::Statement>,
}

/// Connections to one PostgreSQL database, driven by a runtime of their own.
pub(crate) struct PgPool {
    config: tokio_postgres::Config,
    tls: PgTls,
    /// Always `Some` until dropped (taken out to be shut down without blocking).
    runtime: Option<tokio::runtime::Runtime>,
    idle: std::sync::Mutex<Vec<PgConn>>,
}

impl Drop for PgPool {
    fn drop(&mut self) {
        // a store may be dropped inside a caller's runtime (a server shutting
        // down), where dropping a runtime would block and tokio panics
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Idle connections kept open.
const PG_IDLE: usize = 8;

impl PgPool {
    pub(crate) fn new(url: &str) -> Result<Self> {
        let (config, tls) = parse_pg_url(url)?;
        Self::with_config(config, tls)
    }

    pub(crate) fn with_config(config: tokio_postgres::Config, tls: PgTlsPolicy) -> Result<Self> {
        let tls = PgTls::new(tls)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("atelier-pg")
            .enable_all()
            .build()
            .map_err(|e| DbError::other(format!("cannot start the PostgreSQL driver: {e}")))?;
        let pool = PgPool {
            config,
            tls,
            runtime: Some(runtime),
            idle: std::sync::Mutex::new(Vec::new()),
        };
        let first = pool.connect()?;
        pool.put(first);
        Ok(pool)
    }

    /// Statements outside any transaction (`CREATE DATABASE` must be).
    pub(crate) fn batch_outside_transaction(&self, sql: &str) -> Result<()> {
        let pc = self.take()?;
        block_on(pc.client.batch_execute(sql))?;
        self.put(pc);
        Ok(())
    }

    fn connect(&self) -> Result<PgConn> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| DbError::other("the PostgreSQL driver has stopped"))?;
        let task = runtime.spawn(async move {
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "PostgreSQL connection ended");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = block_on(task)
            .map_err(|e| DbError::other(format!("PostgreSQL connect task failed: {e}")))??;
        Ok(PgConn {
            client,
            cache: HashMap::new(),
        })
    }

    fn take(&self) -> Result<PgConn> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => self.connect(),
        }
    }

    fn put(&self, c: PgConn) {
        if c.client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < PG_IDLE {
            idle.push(c);
        }
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`. `lock`
    /// takes the store-wide writer lock first (a transaction-scoped advisory
    /// lock), so writes are serialised across every process on the database
    /// exactly as SQLite serialises its writers.
    pub(crate) fn transaction<T, E: From<DbError>>(
        &self,
        lock: bool,
        f: impl FnOnce(&Conn) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut pc = self.take()?;
        let out = {
            let PgConn { client, cache } = &mut pc;
            let tx = block_on(client.transaction()).map_err(DbError::from)?;
            if lock {
                block_on(tx.batch_execute(WRITER_LOCK_SQL)).map_err(DbError::from)?;
            }
            let conn = Conn::pg(tx, cache);
            match f(&conn) {
                Ok(v) => {
                    if let Some(tx) = conn.into_pg() {
                        block_on(tx.commit()).map_err(DbError::from)?;
                    }
                    Ok(v)
                }
                Err(e) => {
                    if let Some(tx) = conn.into_pg() {
                        let _ = block_on(tx.rollback());
                    }
                    Err(e)
                }
            }
        };
        self.put(pc);
        out
    }
}

/// A database URL with its password hidden (`postgres://user:***@host/db`),
/// for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..scheme + 3 + colon], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// Create the database a PostgreSQL URL names when it does not exist yet
/// (through the server's `postgres` maintenance database); `true` when it
/// was created. For commands whose target must be new (`atelier migrate`).
pub fn ensure_database(url: &str) -> Result<bool> {
    let (config, tls) = parse_pg_url(url)?;
    let Some(name) = config.get_dbname().map(str::to_string) else {
        return Err(DbError::other("the database URL names no database"));
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let pool = PgPool::with_config(admin, tls)?;
    let exists = pool.transaction(false, |c| {
        c.query_row(
            "SELECT COUNT(*) FROM pg_database WHERE datname = ?1",
            [name.as_str()],
            |r| r.get::<_, i64>(0),
        )
    })?;
    if exists > 0 {
        return Ok(false);
    }
    let quoted = name.replace('"', "\"\"");
    match pool.batch_outside_transaction(&format!("CREATE DATABASE \"{quoted}\"")) {
        Ok(()) => Ok(true),
        Err(e) if e.to_string().contains("42P04") => Ok(false),
        Err(e) => Err(e),
    }
}

/// How a PostgreSQL URL asks for TLS (`sslmode`, as libpq reads it) and what
/// the certificate is checked against (`sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PgTlsPolicy {
    /// The `sslmode` as written (`prefer` when absent), for messages.
    mode: String,
    /// Whether the server's certificate is checked (chain and host name).
    verify: bool,
    /// PEM file of the only CAs to trust; `None`: the platform's store.
    root_cert: Option<String>,
}

/// Parses a PostgreSQL URL (`postgres://…` or `key=value …`): the driver's
/// settings, with `sslmode` and `sslrootcert` taken out and interpreted here
/// (the driver knows neither `verify-ca`/`verify-full` nor `sslrootcert`).
pub(crate) fn parse_pg_url(url: &str) -> Result<(tokio_postgres::Config, PgTlsPolicy)> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> bool {
        match key {
            "sslmode" => mode = Some(percent_decode(value)),
            "sslrootcert" => root_cert = Some(percent_decode(value)),
            _ => return false,
        }
        true
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        !take(k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        url.split_whitespace()
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k.trim(), v.trim())
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| DbError::other(format!("the database URL is not valid: {e}")))?;
    let mode = mode.unwrap_or_else(|| "prefer".to_string());
    let (ssl, verify) = match mode.as_str() {
        "disable" => (tokio_postgres::config::SslMode::Disable, false),
        "allow" | "prefer" => (tokio_postgres::config::SslMode::Prefer, false),
        "require" | "verify-ca" | "verify-full" => (tokio_postgres::config::SslMode::Require, true),
        other => {
            return Err(DbError::other(format!(
                "the database URL's sslmode={other} is not one of disable, allow, prefer, \
                 require, verify-ca, verify-full"
            )));
        }
    };
    config.ssl_mode(ssl);
    Ok((
        config,
        PgTlsPolicy {
            mode,
            verify,
            root_cert,
        },
    ))
}

/// `%XX` escapes of a URL query value (a path in `sslrootcert`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The driver's TLS connector over rustls (ring), built once per pool.
#[derive(Clone)]
pub(crate) struct PgTls {
    connector: tokio_rustls::TlsConnector,
    policy: Arc<PgTlsPolicy>,
}

impl PgTls {
    pub(crate) fn new(policy: PgTlsPolicy) -> Result<Self> {
        use rustls::client::danger::ServerCertVerifier;
        // ring, as for S3: rustls deprecates its provider only for the
        // missing post-quantum key exchange; aws-lc-rs is a large C build
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = if !policy.verify {
            Arc::new(NoCheck(provider.clone()))
        } else if let Some(path) = &policy.root_cert {
            use rustls::pki_types::pem::PemObject;
            let bad = |e: &dyn std::fmt::Display| {
                DbError::other(format!(
                    "cannot read the database URL's sslrootcert={path}: {e}"
                ))
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))?
            {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no PEM certificate in it"));
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| bad(&e))?
        } else {
            Arc::new(
                rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| {
                    DbError::other(format!(
                        "cannot read the system's trusted certificates: {e}"
                    ))
                })?,
            )
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DbError::other(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(PgTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            policy: Arc::new(policy),
        })
    }
}

/// `sslmode=prefer`/`allow`: encryption when the server offers it, as libpq,
/// without checking who holds the certificate (the handshake's signatures are
/// still checked).
#[derive(Debug)]
struct NoCheck(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for PgTls
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = DbError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect> {
        let name = match rustls::pki_types::ServerName::try_from(domain.to_string()) {
            Ok(name) => name,
            // a Unix socket has no host name; PostgreSQL offers no TLS there,
            // and an unchecked certificate needs none
            Err(_) if !self.policy.verify => {
                rustls::pki_types::ServerName::try_from("localhost")
                    .map_err(|e| DbError::other(format!("cannot set up TLS: {e}")))?
            }
            Err(e) => {
                return Err(DbError::other(format!(
                    "sslmode={} needs a host name to check the certificate against, \
                     and {domain:?} is none: {e}",
                    self.policy.mode
                )));
            }
        };
        Ok(PgTlsConnect {
            tls: self.clone(),
            name,
        })
    }
}

pub(crate) struct PgTlsConnect {
    tls: PgTls,
    name: rustls::pki_types::ServerName<'static>,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for PgTlsConnect
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<PgTlsStream<S>>> + Send>,
    >;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let policy = self.tls.policy.clone();
            match self.tls.connector.connect(self.name, stream).await {
                Ok(s) => Ok(PgTlsStream(s)),
                Err(e) => Err(explain_tls_error(e, &policy)),
            }
        })
    }
}

/// A certificate the checks refuse says which setting asked for the check,
/// why it failed and how to make it trusted.
fn explain_tls_error(e: std::io::Error, policy: &PgTlsPolicy) -> std::io::Error {
    use rustls::CertificateError as C;
    let cause = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(c)) => c,
        _ => return e,
    };
    let trusted = match &policy.root_cert {
        Some(path) => format!("the CAs in sslrootcert={path}"),
        None => "the system's trusted CAs (or the file SSL_CERT_FILE names)".to_string(),
    };
    let fix = match cause {
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "connect by a host name (or IP address) the certificate names"
        }
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            "renew the server's certificate (or check this machine's clock)"
        }
        _ => {
            "give the CA that signed it with sslrootcert=/path/to/ca.pem in the database URL \
             (or SSL_CERT_FILE)"
        }
    };
    std::io::Error::new(
        e.kind(),
        format!(
            "the database server's TLS certificate is not trusted (sslmode={}, checked \
             against {trusted}): {e}; {fix}",
            policy.mode
        ),
    )
}

/// The TLS stream the driver reads and writes.
pub(crate) struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead
    for PgTlsStream<S>
{
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite
    for PgTlsStream<S>
{
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio_postgres::tls::TlsStream
    for PgTlsStream<S>
{
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        // no SCRAM-SHA-256-PLUS: the password exchange is SCRAM-SHA-256
        tokio_postgres::tls::ChannelBinding::none()
    }
}

/// The advisory-lock key of the store's single writer ("atelier" in ASCII).
pub(crate) const WRITER_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(6879955296060786)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_from_urls() {
        assert_eq!(
            redact_url("postgres://ann:s3cr:et@db:5432/x"),
            "postgres://ann:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://ann@db/x"), "postgres://ann@db/x");
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn sslmode_and_sslrootcert_are_read_as_libpq_reads_them() {
        use tokio_postgres::config::SslMode;
        let (c, t) = parse_pg_url("postgres://u@db:5432/x").unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
        assert!(!t.verify && t.root_cert.is_none());
        let (c, t) = parse_pg_url(
            "postgres://u@db/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        assert_eq!(c.get_application_name(), Some("a"));
        assert!(t.verify);
        assert_eq!(t.mode, "verify-full");
        assert_eq!(t.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (c, t) = parse_pg_url("host=db dbname=x sslmode=require").unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        assert_eq!(c.get_dbname(), Some("x"));
        assert!(t.verify);
        let (c, t) = parse_pg_url("postgresql://db/x?sslmode=disable").unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
        assert!(!t.verify);
        let err = parse_pg_url("postgres://db/x?sslmode=on").err().unwrap();
        assert!(
            err.to_string().contains("sslmode=on is not one of"),
            "{err}"
        );
    }

    #[test]
    fn placeholders_numbered_bare_and_quoted() {
        assert_eq!(pg_placeholders("a = ?1 AND b = ?1"), "a = $1 AND b = $1");
        assert_eq!(pg_placeholders("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(pg_placeholders("a = ?2 AND b = ?"), "a = $2 AND b = $3");
        assert_eq!(
            pg_placeholders("x = '?' AND \"y?\" = ? -- what?\n AND z = ?"),
            "x = '?' AND \"y?\" = $1 -- what?\n AND z = $2"
        );
        assert_eq!(
            pg_placeholders("s = 'it''s ?' OR t = ?"),
            "s = 'it''s ?' OR t = $1"
        );
    }

    #[test]
    fn sqlite_round_trip_through_the_neutral_api() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let conn = Conn::sqlite(&c);
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c REAL)")
            .unwrap();
        conn.execute("INSERT INTO t VALUES (?1, ?2, ?3)", params![1i64, "x", 0.5])
            .unwrap();
        conn.execute(
            "INSERT INTO t VALUES (?, ?, ?)",
            params![2i64, None::<String>, 1.5],
        )
        .unwrap();
        let (a, b): (i64, String) = conn
            .query_row("SELECT a, b FROM t WHERE a = ?", [1i64], |r| {
                Ok((r.get(0)?, r.get("b")?))
            })
            .unwrap();
        assert_eq!((a, b.as_str()), (1, "x"));
        let none = conn
            .query_row("SELECT a FROM t WHERE a = 99", [], |r| r.get::<_, i64>(0))
            .optional()
            .unwrap();
        assert_eq!(none, None);
        let mut st = conn.prepare("SELECT c FROM t ORDER BY a").unwrap();
        let cs: Vec<f64> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(cs, vec![0.5, 1.5]);
        let e = conn
            .execute_batch("CREATE UNIQUE INDEX u ON t (a); INSERT INTO t VALUES (1, 'y', 0)")
            .unwrap_err();
        assert!(e.is_unique_violation(), "{e}");
    }
}
