//! The one translation of MLflow's search grammar (`crate::filter`) to SQL,
//! shared by every searchable entity and both dialects.
//!
//! An entity declares what can be searched as data — a [`Filterable`]
//! (attribute name → column and how it compares, its tag and param tables)
//! and a [`Sortable`] (attribute name → column) — and [`filter_sql`] /
//! [`order_sql`] turn a filter string and `order_by` items into SQL with its
//! bound arguments. A rule that fits no table (runs' metrics and datasets)
//! is a hook the entity names, tried before the tables.

use crate::db::Val as SqlValue;
use crate::filter::{self, Clause, Entity, LIKE_ESCAPE, Op, OrderBy, Value, like_pattern};
use crate::*;

use super::{invalid, placeholders};

/// SQL pieces of a WHERE clause with their bound arguments.
#[derive(Default)]
pub(super) struct Where {
    pub(super) parts: Vec<String>,
    pub(super) args: Vec<SqlValue>,
}

impl Where {
    pub(super) fn push(
        &mut self,
        sql: impl Into<String>,
        args: impl IntoIterator<Item = SqlValue>,
    ) {
        self.parts.push(sql.into());
        self.args.extend(args);
    }
    pub(super) fn sql(&self) -> String {
        if self.parts.is_empty() {
            "1=1".into()
        } else {
            self.parts.join(" AND ")
        }
    }
}

pub(super) fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_string())
}

pub(super) fn view_clause(col: &str, v: ViewType) -> String {
    match v {
        ViewType::ActiveOnly => format!("{col} = 'active'"),
        ViewType::DeletedOnly => format!("{col} = 'deleted'"),
        ViewType::All => "1=1".into(),
    }
}

/// `column <op> value` for a string comparison; ILIKE lowers both sides.
pub(super) fn string_cmp(col: &str, c: &Clause, w: &mut Where) -> Result<()> {
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

pub(super) fn format_number(n: f64) -> String {
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
pub(super) fn number_cmp(col: &str, op: Op, n: f64, w: &mut Where) {
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

pub(super) fn numeric_cmp(col: &str, c: &Clause, w: &mut Where) -> Result<()> {
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
pub(super) fn kv_clause(
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

/// How an attribute's clause compares.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// A text column: `=`, `!=`, `LIKE`, `ILIKE`, `IN`, `NOT IN` ([`string_cmp`]).
    Text,
    /// A number column: `=`, `!=`, `<`, `<=`, `>`, `>=` ([`numeric_cmp`]).
    Number,
    /// An integer key compared as a number, except that an `IN`/`NOT IN`
    /// list — and, with `quoted_as_text`, a quoted value — compares its text.
    IntKey { quoted_as_text: bool },
}

/// A searchable attribute: the names a filter may call it by.
pub(super) struct Attr {
    pub(super) names: &'static [&'static str],
    pub(super) col: &'static str,
    pub(super) kind: Kind,
}

/// A key/value side table (tags, params) and how its rows join the entity
/// (`kv` is the side table's alias).
pub(super) struct KvTable {
    pub(super) table: &'static str,
    pub(super) id_cond: &'static str,
    /// whether `!=` also matches entities without the key
    pub(super) null_inclusive_ne: bool,
}

/// An entity's own rule for some clauses: `Ok(true)` when it handled the
/// clause (pushed its SQL or refused it), `Ok(false)` to leave it to the tables.
pub(super) type ClauseHook = fn(&Clause, &mut Where) -> Result<bool>;

/// What a search filter can name on one entity.
pub(super) struct Filterable {
    pub(super) attrs: &'static [Attr],
    pub(super) tags: Option<KvTable>,
    pub(super) params: Option<KvTable>,
    pub(super) hook: Option<ClauseHook>,
    /// the message for an attribute no entry names
    pub(super) unknown_attribute: fn(&str) -> String,
    /// the message for a clause on an entity with no table here
    pub(super) unknown_entity: fn(&Clause) -> String,
}

/// Parses `filter` and adds its clauses to `w`.
pub(super) fn filter_sql(f: &Filterable, filter: &str, w: &mut Where) -> Result<()> {
    for c in filter::parse_filter(filter, true)? {
        if let Some(hook) = f.hook
            && hook(&c, w)?
        {
            continue;
        }
        let kv = match c.entity {
            Entity::Attribute => {
                let Some(a) = f.attrs.iter().find(|a| a.names.contains(&c.key.as_str())) else {
                    return Err(invalid((f.unknown_attribute)(&c.key)));
                };
                attr_cmp(a, &c, w)?;
                continue;
            }
            Entity::Tag => f.tags.as_ref(),
            Entity::Param => f.params.as_ref(),
            Entity::Metric | Entity::Dataset => None,
        };
        let Some(kv) = kv else {
            return Err(invalid((f.unknown_entity)(&c)));
        };
        kv_clause(kv.table, kv.id_cond, &c, w, kv.null_inclusive_ne)?;
    }
    Ok(())
}

fn attr_cmp(a: &Attr, c: &Clause, w: &mut Where) -> Result<()> {
    match a.kind {
        Kind::Text => string_cmp(a.col, c, w),
        Kind::Number => numeric_cmp(a.col, c, w),
        Kind::IntKey { quoted_as_text } => match &c.value {
            Value::List(_) => string_cmp(&format!("CAST({} AS TEXT)", a.col), c, w),
            Value::Str(_) if quoted_as_text => {
                string_cmp(&format!("CAST({} AS TEXT)", a.col), c, w)
            }
            _ => numeric_cmp(a.col, c, w),
        },
    }
}

/// An entity's own ordering rule: `Ok(Some((expression, arguments)))` when it
/// handled the item, `Ok(None)` to look the key up among the attributes.
pub(super) type OrderHook = fn(&OrderBy, &str) -> Result<Option<(String, Vec<SqlValue>)>>;

/// What `order_by` can name on one entity.
pub(super) struct Sortable {
    /// attribute names → column
    pub(super) attrs: &'static [(&'static [&'static str], &'static str)],
    /// whether the key alone picks the column, whatever the entity prefix
    /// (the registry's rule: `tags.name` orders like `name`)
    pub(super) any_entity: bool,
    /// `(x) IS NULL, (x) dir`: rows without a value sort last both ways
    pub(super) nulls_last: bool,
    pub(super) hook: Option<OrderHook>,
    /// the message for an unknown key, given the item and its key
    pub(super) unknown: fn(&str, &str) -> String,
}

/// Parses `items` and adds their ORDER BY terms to `order`, their bound
/// arguments (in the terms' order) to `args`.
pub(super) fn order_sql(
    s: &Sortable,
    items: &[String],
    order: &mut Vec<String>,
    args: &mut Vec<SqlValue>,
) -> Result<()> {
    for item in items {
        let o = filter::parse_order_by(item, true)?;
        let dir = if o.ascending { "ASC" } else { "DESC" };
        let hooked = match s.hook {
            Some(hook) => hook(&o, item)?,
            None => None,
        };
        let (expr, expr_args) = match hooked {
            Some(e) => e,
            None => {
                let col = s
                    .attrs
                    .iter()
                    .find(|(names, _)| {
                        (s.any_entity || o.entity == Entity::Attribute)
                            && names.contains(&o.key.as_str())
                    })
                    .map(|(_, col)| *col)
                    .ok_or_else(|| invalid((s.unknown)(item, &o.key)))?;
                (col.to_string(), Vec::new())
            }
        };
        if s.nulls_last {
            order.push(format!("({expr}) IS NULL, ({expr}) {dir}"));
            // the expression appears twice, so its arguments are bound twice
            args.extend(expr_args.iter().cloned());
            args.extend(expr_args);
        } else {
            order.push(format!("{expr} {dir}"));
            args.extend(expr_args);
        }
    }
    Ok(())
}
