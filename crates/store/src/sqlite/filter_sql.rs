//! The one translation of MLflow's search grammar (`crate::filter`) to SQL,
//! shared by every searchable entity and both dialects.
//!
//! An entity declares what can be searched as data — a [`Filterable`]
//! (attribute name → column and how it compares, its tag and param tables)
//! and a [`Sortable`] (attribute name → column) — and [`filter_sql`] /
//! [`order_sql`] turn a filter string and `order_by` items into SQL with its
//! bound arguments. A rule that fits no table (runs' metrics and datasets)
//! is a hook the entity names, tried before the tables.
//!
//! Traces speak a grammar of their own prefixes (`filter::parse_trace_filter`:
//! `trace.`, `tag.`, `metadata.`, `span.`, `feedback.`, `expectation.`); a
//! [`TraceFilterable`] and a [`TraceSortable`] declare what each names, and
//! [`trace_filter_sql`] / [`trace_order_sql`] translate them with the same
//! comparisons. Only the assessment JSON reads differently on each dialect
//! ([`JsonDocs`]).

use crate::db::Val as SqlValue;
use crate::filter::{
    self, Clause, Entity, LIKE_ESCAPE, Op, OrderBy, TraceEntity, Value, like_pattern,
};
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
    /// A whole-number column ([`numeric_cmp`]): a number with a fraction is refused.
    WholeNumber,
    /// One key of a key/value side table, compared as its tags are ([`kv_clause`]; `IS NULL`:
    /// the entity has no such key). The attribute's `col` is unused.
    KeyOf {
        table: &'static KvTable,
        key: &'static str,
    },
    /// Rows of a related table: `sql` with its `{}` replaced by the text comparison of the
    /// attribute's `col` ([`string_cmp`]), e.g. `EXISTS (SELECT 1 FROM … WHERE … AND {})`.
    /// With `like_only` (what the refusal calls the field) only LIKE and ILIKE are taken.
    Related {
        sql: &'static str,
        like_only: Option<&'static str>,
    },
    /// Any of several attributes (their names unused): the clause holds when it holds for
    /// one, `(a OR b)`. `IS NULL`/`IS NOT NULL` are refused (none or all of them is not a
    /// question the grammar can ask). The attribute's `col` is unused.
    AnyOf(&'static [Attr]),
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
        Kind::WholeNumber => {
            if let Value::Number(n) = c.value
                && n.fract() != 0.0
            {
                return Err(invalid(format!(
                    "Invalid value for numeric attribute '{}': '{n}'",
                    c.key
                )));
            }
            numeric_cmp(a.col, c, w)
        }
        Kind::KeyOf { table, key } => {
            let c = Clause {
                key: key.to_string(),
                ..c.clone()
            };
            kv_clause(table.table, table.id_cond, &c, w, table.null_inclusive_ne)
        }
        Kind::Related { sql, like_only } => {
            if let Some(what) = like_only
                && !matches!(c.op, Op::Like | Op::ILike)
            {
                return Err(invalid(format!(
                    "Invalid comparator '{}' for '{}': {what} support LIKE and ILIKE",
                    c.op.name(),
                    c.key
                )));
            }
            let mut inner = Where::default();
            string_cmp(a.col, c, &mut inner)?;
            w.push(sql.replacen("{}", &inner.sql(), 1), inner.args);
            Ok(())
        }
        Kind::AnyOf(alternatives) => {
            if matches!(c.op, Op::IsNull | Op::IsNotNull) {
                return Err(invalid(format!(
                    "{} supports =, !=, LIKE, ILIKE, IN and NOT IN",
                    c.key
                )));
            }
            let mut inner = Where::default();
            for alt in alternatives {
                attr_cmp(alt, c, &mut inner)?;
            }
            w.push(format!("({})", inner.parts.join(" OR ")), inner.args);
            Ok(())
        }
    }
}

/// JSON documents attached to an entity by name (a trace's assessments, MLflow's
/// Assessment), read the same way on both dialects: SQLite's JSON functions or PostgreSQL's
/// `jsonb` operators on the same text. A document is a `kind` (`feedback`, `expectation`)
/// when it has that key, even as null; `valid` absent, null, true or 1 means not overridden.
pub(super) struct JsonDocs {
    /// `table alias` of the documents
    pub(super) from: &'static str,
    /// how a document joins the entity
    pub(super) join: &'static str,
    /// the column holding its name, and the one holding its JSON text
    pub(super) name_col: &'static str,
    pub(super) json_col: &'static str,
}

impl JsonDocs {
    /// The document is a `kind`.
    fn is(&self, kind: &str, pg: bool) -> String {
        let j = self.json_col;
        if pg {
            format!("({j}::jsonb -> '{kind}') IS NOT NULL")
        } else {
            format!("json_type({j}, '$.{kind}') IS NOT NULL")
        }
    }

    /// Not marked invalid.
    fn valid(&self, pg: bool) -> String {
        let j = self.json_col;
        if pg {
            format!(
                "COALESCE({j}::jsonb -> 'valid', 'null'::jsonb) IN ('null'::jsonb, 'true'::jsonb, '1'::jsonb)"
            )
        } else {
            format!("COALESCE(json_extract({j}, '$.valid'), 1) = 1")
        }
    }

    /// The value as JSON text (a string quoted, a number or `true` as written); an
    /// expectation's serialized value (a string) unquoted.
    fn value(&self, kind: &str, pg: bool) -> String {
        let j = self.json_col;
        match (pg, kind) {
            (true, "expectation") => format!(
                "COALESCE(({j}::jsonb -> 'expectation' -> 'value')::text,
                 {j}::jsonb -> 'expectation' -> 'serialized_value' ->> 'value')"
            ),
            (true, _) => format!("({j}::jsonb -> '{kind}' -> 'value')::text"),
            (false, "expectation") => format!(
                "COALESCE({j} -> '$.expectation.value', json_extract({j}, '$.expectation.serialized_value.value'))"
            ),
            (false, _) => format!("({j} -> '$.{kind}.value')"),
        }
    }

    /// The value when it is a JSON number, else NULL.
    fn number(&self, kind: &str, pg: bool) -> String {
        let j = self.json_col;
        if pg {
            let v = format!("({j}::jsonb -> '{kind}' -> 'value')");
            format!("(CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::float8 END)")
        } else {
            let path = format!("'$.{kind}.value'");
            format!(
                "(CASE WHEN json_type({j}, {path}) IN ('integer', 'real') THEN json_extract({j}, {path}) END)"
            )
        }
    }

    /// Entities with a valid document of `kind` named `c.key` whose value matches, as MLflow
    /// compares them: `=`/`!=` on the value's JSON text or on the JSON of the string given,
    /// `<`…`>=` on numeric values, `IS [NOT] NULL` on whether such a document exists.
    fn clause(&self, kind: &str, c: &Clause, w: &mut Where, pg: bool) -> Result<()> {
        let base = format!(
            "SELECT 1 FROM {} WHERE {} AND {} = ? AND {} AND {}",
            self.from,
            self.join,
            self.name_col,
            self.is(kind, pg),
            self.valid(pg)
        );
        let value = self.value(kind, pg);
        let key = text(&c.key);
        let as_text = |v: &Value| match v {
            Value::Str(s) => Ok(s.clone()),
            Value::Number(n) => Ok(format_number(*n)),
            _ => Err(invalid(format!("Expected a value for '{kind}.{}'", c.key))),
        };
        match c.op {
            Op::IsNull => w.push(format!("NOT EXISTS ({base})"), [key]),
            Op::IsNotNull => w.push(format!("EXISTS ({base})"), [key]),
            Op::Eq | Op::Ne => {
                let v = as_text(&c.value)?;
                let quoted = serde_json::Value::String(v.clone()).to_string();
                let not = if c.op == Op::Ne { "NOT " } else { "" };
                w.push(
                    format!("EXISTS ({base} AND {not}({value} = ? OR {value} = ?))"),
                    [key, text(&v), text(&quoted)],
                )
            }
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let n = match &c.value {
                    Value::Number(n) => *n,
                    Value::Str(s) => s.parse::<f64>().map_err(|_| {
                        invalid(format!(
                            "Expected a number for '{kind}.{}', got '{s}'",
                            c.key
                        ))
                    })?,
                    _ => return Err(invalid(format!("Expected a number for '{kind}.{}'", c.key))),
                };
                w.push(
                    format!(
                        "EXISTS ({base} AND {} {} ?)",
                        self.number(kind, pg),
                        c.op.sql()
                    ),
                    [key, SqlValue::Real(n)],
                )
            }
            _ => {
                return Err(invalid(format!(
                    "Invalid comparator '{}' for '{kind}.{}': use =, !=, <, <=, >, >=, IS NULL or IS NOT NULL",
                    c.op.name(),
                    c.key
                )));
            }
        }
        Ok(())
    }
}

/// What a trace search's filter can name, prefix by prefix.
pub(super) struct TraceFilterable {
    /// `trace.`, `attribute.` or no prefix
    pub(super) attrs: &'static [Attr],
    pub(super) unknown_attribute: fn(&str) -> String,
    /// `tag.<key>`
    pub(super) tags: KvTable,
    /// `metadata.<key>`
    pub(super) metadata: KvTable,
    /// `span.`: fields of the entity's related rows
    pub(super) spans: &'static [Attr],
    pub(super) unknown_span: fn(&str) -> String,
    /// `feedback.<name>` and `expectation.<name>`
    pub(super) assessments: JsonDocs,
}

/// Parses a trace-grammar `filter` and adds its clauses to `w`; `pg` picks how
/// assessment JSON is read.
pub(super) fn trace_filter_sql(
    f: &TraceFilterable,
    filter: &str,
    pg: bool,
    w: &mut Where,
) -> Result<()> {
    let find = |attrs: &'static [Attr], key: &str| attrs.iter().find(|a| a.names.contains(&key));
    for (te, c) in filter::parse_trace_filter(filter)? {
        match te {
            TraceEntity::Attribute => match find(f.attrs, &c.key) {
                Some(a) => attr_cmp(a, &c, w)?,
                None => return Err(invalid((f.unknown_attribute)(&c.key))),
            },
            TraceEntity::Span => match find(f.spans, &c.key) {
                Some(a) => attr_cmp(a, &c, w)?,
                None => return Err(invalid((f.unknown_span)(&c.key))),
            },
            TraceEntity::Tag => kv_clause(
                f.tags.table,
                f.tags.id_cond,
                &c,
                w,
                f.tags.null_inclusive_ne,
            )?,
            TraceEntity::Metadata => kv_clause(
                f.metadata.table,
                f.metadata.id_cond,
                &c,
                w,
                f.metadata.null_inclusive_ne,
            )?,
            TraceEntity::Feedback => f.assessments.clause("feedback", &c, w, pg)?,
            TraceEntity::Expectation => f.assessments.clause("expectation", &c, w, pg)?,
        }
    }
    Ok(())
}

/// How a trace search orders by one attribute.
pub(super) enum SortBy {
    /// an expression never NULL
    Column(&'static str),
    /// an expression that can be NULL: rows without a value last both ways
    Nullable(&'static str),
    /// one key of a side table: rows without it last both ways
    KeyOf {
        table: &'static KvTable,
        key: &'static str,
    },
}

/// What a trace search's `order_by` can name: attributes, `tag.<key>`, `metadata.<key>`.
pub(super) struct TraceSortable {
    pub(super) attrs: &'static [(&'static [&'static str], SortBy)],
    pub(super) tags: KvTable,
    pub(super) metadata: KvTable,
    /// the message for an item naming nothing here
    pub(super) unknown: fn(&str) -> String,
}

/// Parses trace-grammar `items` and adds their ORDER BY terms to `order`, their bound
/// arguments to `args`. A term that can be NULL is written `NULLS LAST` (SQLite would put
/// NULLs first going up, PostgreSQL first going down).
pub(super) fn trace_order_sql(
    s: &TraceSortable,
    items: &[String],
    order: &mut Vec<String>,
    args: &mut Vec<SqlValue>,
) -> Result<()> {
    let value_of = |table: &KvTable, key: &str, args: &mut Vec<SqlValue>| {
        args.push(text(key));
        format!(
            "(SELECT kv.value FROM {} kv WHERE {} AND kv.key = ?)",
            table.table, table.id_cond
        )
    };
    for item in items {
        let (te, key, ascending) = filter::parse_trace_order_by(item)?;
        let dir = if ascending { "ASC" } else { "DESC" };
        let expr = match te {
            TraceEntity::Attribute => {
                match s
                    .attrs
                    .iter()
                    .find(|(names, _)| names.contains(&key.as_str()))
                {
                    Some((_, SortBy::Column(col))) => {
                        order.push(format!("{col} {dir}"));
                        continue;
                    }
                    Some((_, SortBy::Nullable(col))) => col.to_string(),
                    Some((_, SortBy::KeyOf { table, key })) => value_of(table, key, args),
                    None => return Err(invalid((s.unknown)(item))),
                }
            }
            TraceEntity::Tag => value_of(&s.tags, &key, args),
            TraceEntity::Metadata => value_of(&s.metadata, &key, args),
            _ => return Err(invalid((s.unknown)(item))),
        };
        order.push(format!("{expr} {dir} NULLS LAST"));
    }
    Ok(())
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
    /// `x dir NULLS LAST`: rows without a value sort last both ways
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
            // (both dialects spell it so; the expression — often a subquery — is
            // evaluated once per row, where `(x) IS NULL, (x) dir` evaluated it twice)
            order.push(format!("{expr} {dir} NULLS LAST"));
            args.extend(expr_args);
        } else {
            order.push(format!("{expr} {dir}"));
            args.extend(expr_args);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Each entity's declared tables through the one translation, on the
    //! backend the run asks for (`ATELIER_TEST_DATABASE_URL`: PostgreSQL).

    use crate::scratch::Scratch;
    use crate::*;

    fn refused<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(StoreError::InvalidParameter(m)) => m,
            other => panic!("expected an invalid-parameter error, got {other:?}"),
        }
    }

    fn experiment_names(s: &SqlStore, filter: &str, order_by: &[&str]) -> Result<Vec<String>> {
        Ok(s.search_experiments(&SearchExperiments {
            filter: filter.into(),
            max_results: 100,
            order_by: order_by.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        })?
        .items
        .into_iter()
        .map(|e| e.name)
        .collect())
    }

    #[test]
    fn experiments_compare_ids_as_text_or_number_and_name_their_keys() {
        let s = Scratch::new().unwrap();
        let a = s
            .create_experiment("alpha", None, &[Tag::new("team", "x")])
            .unwrap();
        s.create_experiment("beta", None, &[]).unwrap();
        let q = |f: &str| experiment_names(&s, f, &["name DESC"]).unwrap();
        assert_eq!(q(&format!("experiment_id = '{a}'")), ["alpha"]);
        assert_eq!(
            q(&format!("experiment_id IN ('{a}', '0')")),
            ["alpha", "Default"]
        );
        assert_eq!(q(&format!("experiment_id > {a}")), ["beta"]);
        assert_eq!(q("tags.team = 'x'"), ["alpha"]);
        // `!=` on an experiment tag does not match experiments without it
        assert_eq!(q("tags.team != 'y'"), ["alpha"]);
        assert_eq!(q("creation_time > 0 AND name LIKE '%a'"), ["beta", "alpha"]);
        assert_eq!(
            refused(experiment_names(&s, "owner = 'me'", &[])),
            "Invalid attribute key 'owner' specified. Valid keys are 'name', 'experiment_id', 'creation_time', 'last_update_time'"
        );
        assert_eq!(
            refused(experiment_names(&s, "params.lr = '1'", &[])),
            "Invalid entity type in experiment search filter: 'lr'. Use attributes (name, creation_time, last_update_time) or tags"
        );
        // only attributes order experiments
        assert_eq!(
            refused(experiment_names(&s, "", &["tags.name"])),
            "Invalid order_by key 'tags.name'; experiments order by name, experiment_id, creation_time or last_update_time"
        );
    }

    #[test]
    fn model_versions_compare_version_lists_as_text_and_tag_ne_includes_untagged() {
        let s = Scratch::new().unwrap();
        s.create_registered_model("m", &[], "", "u").unwrap();
        s.create_registered_model("n", &[Tag::new("k", "v")], "", "u")
            .unwrap();
        for _ in 0..3 {
            s.create_model_version(CreateModelVersion {
                name: "m".into(),
                source: "s3://b/m".into(),
                ..Default::default()
            })
            .unwrap();
        }
        s.set_model_version_tag("m", 2, "k", "v").unwrap();
        let versions = |f: &str, order: &str| -> Result<Vec<i64>> {
            Ok(s.search_model_versions(&SearchRegistry {
                filter: f.into(),
                max_results: 100,
                order_by: vec![order.into()],
                ..Default::default()
            })?
            .items
            .into_iter()
            .map(|v| v.version)
            .collect())
        };
        assert_eq!(
            versions("version_number IN ('1', '3')", "version").unwrap(),
            [1, 3]
        );
        assert_eq!(
            versions("version_number >= 2", "version DESC").unwrap(),
            [3, 2]
        );
        assert_eq!(versions("version = '2'", "version").unwrap(), [2]);
        // the registry's `!=` on a tag also matches versions without the tag
        assert_eq!(versions("tags.k != 'v'", "version").unwrap(), [1, 3]);
        // the registry orders by the key whatever its prefix
        assert_eq!(versions("", "tags.version_number DESC").unwrap(), [3, 2, 1]);
        assert_eq!(
            refused(versions("stage = 'x'", "version")),
            "Invalid filter key 'stage' for model version search; use name, run_id, source_path, version_number or tags.<key>"
        );
        assert_eq!(
            refused(versions("", "status")),
            "Invalid order_by key 'status'; order model versions by name, version_number, creation_timestamp or last_updated_timestamp"
        );
        let models = |f: &str| -> Result<Vec<String>> {
            Ok(s.search_registered_models(&SearchRegistry {
                filter: f.into(),
                max_results: 100,
                ..Default::default()
            })?
            .items
            .into_iter()
            .map(|m| m.name)
            .collect())
        };
        assert_eq!(models("tags.k != 'v'").unwrap(), ["m"]);
        assert_eq!(models("tags.k = 'v'").unwrap(), ["n"]);
        assert_eq!(
            refused(models("params.k = 'v'")),
            "Invalid filter key 'k' for registered model search; use name or tags.<key>"
        );
    }

    #[test]
    fn logged_models_filter_by_params_tags_and_time() {
        let s = Scratch::new().unwrap();
        let lm = |name: &str, lr: &str| {
            s.create_logged_model(CreateLoggedModel {
                experiment_id: 0,
                name: name.into(),
                params: vec![Param::new("lr", lr)],
                tags: vec![Tag::new("kind", name)],
                ..Default::default()
            })
            .unwrap()
        };
        lm("small", "0.1");
        lm("large", "0.01");
        let names = |f: &str| -> Result<Vec<String>> {
            let mut n: Vec<String> = s
                .search_logged_models(&SearchLoggedModels {
                    experiment_ids: vec![0],
                    filter: f.into(),
                    max_results: 100,
                    ..Default::default()
                })?
                .items
                .into_iter()
                .map(|m| m.name)
                .collect();
            n.sort();
            Ok(n)
        };
        assert_eq!(names("params.lr = '0.1'").unwrap(), ["small"]);
        assert_eq!(names("tags.kind LIKE 'l%'").unwrap(), ["large"]);
        assert_eq!(names("creation_timestamp > 0").unwrap(), ["large", "small"]);
        assert_eq!(
            refused(names("metrics.acc > 1")),
            "Invalid filter key 'acc' for logged model search; use name, model_id, status, source_run_id, model_type, creation_timestamp, tags.<key> or params.<key>"
        );
    }

    #[test]
    fn runs_keep_their_own_rules_for_metrics_datasets_and_lists() {
        let s = Scratch::new().unwrap();
        let search = |f: &str, order: &[&str]| {
            s.search_runs(&SearchRuns {
                experiment_ids: vec![0],
                filter: f.into(),
                max_results: 10,
                order_by: order.iter().map(|o| o.to_string()).collect(),
                ..Default::default()
            })
        };
        assert_eq!(
            refused(search("params.lr IN ('1')", &[])),
            "Invalid comparator 'IN' for 'lr': params and tags support =, !=, LIKE, ILIKE, IS NULL and IS NOT NULL"
        );
        assert_eq!(
            refused(search("metrics.acc > '1'", &[])),
            "Expected a numeric value for metric 'acc' (write it without quotes)"
        );
        assert_eq!(
            refused(search("datasets.size = '1'", &[])),
            "Invalid dataset key 'size'; valid keys are name, digest, context"
        );
        assert_eq!(
            refused(search("", &["datasets.name"])),
            "Cannot order runs by dataset field 'datasets.name'"
        );
        assert_eq!(
            refused(search("", &["lifecycle_stage"])),
            "Invalid order_by attribute 'lifecycle_stage'; valid: artifact_uri, end_time, run_id, run_name, start_time, status, user_id"
        );
    }

    /// Traces `ids` of experiment `exp` matching `filter`, in `order` then newest first.
    fn trace_ids(s: &SqlStore, exp: i64, filter: &str, order: &[&str]) -> Result<Vec<String>> {
        Ok(s.search_traces(&SearchTraces {
            experiment_ids: vec![exp],
            filter: filter.into(),
            max_results: 100,
            order_by: order.iter().map(|o| o.to_string()).collect(),
            page_token: None,
        })?
        .items
        .into_iter()
        .map(|t| t.trace_id)
        .collect())
    }

    /// Three traces: `tr-1` (OK, named "alpha", client request "c-1", spans of type LLM with
    /// "hello world" in their content, source run metadata), `tr-2` (ERROR, named "beta",
    /// linked to a run), `tr-3` (in progress, unnamed).
    fn three_traces(s: &SqlStore) -> (i64, String) {
        let exp = s.create_experiment("traces", None, &[]).unwrap();
        let run = s
            .create_run(CreateRun {
                experiment_id: exp,
                ..Default::default()
            })
            .unwrap()
            .run_id;
        let trace = |id: &str, t: i64, state: &str, name: Option<&str>| TraceInfo {
            trace_id: id.into(),
            experiment_id: exp,
            request_time_ms: t,
            execution_time_ms: (state != "IN_PROGRESS").then_some(10),
            state: state.into(),
            tags: name
                .map(|n| vec![Tag::new(TRACE_NAME_TAG, n)])
                .unwrap_or_default(),
            ..Default::default()
        };
        let mut one = trace("tr-1", 100, "OK", Some("alpha"));
        one.client_request_id = Some("c-1".into());
        one.metadata = vec![Tag::new(SOURCE_RUN_METADATA, "run-in-metadata")];
        s.start_trace(&one).unwrap();
        s.start_trace(&trace("tr-2", 200, "ERROR", Some("beta")))
            .unwrap();
        s.start_trace(&trace("tr-3", 300, "IN_PROGRESS", None))
            .unwrap();
        s.link_traces_to_run(&["tr-2".into()], &run).unwrap();
        s.log_spans(&LogSpans {
            experiment_id: exp,
            spans: vec![TraceSpan {
                trace_id: "tr-1".into(),
                span_id: "01".into(),
                name: "root".into(),
                span_type: Some("LLM".into()),
                status: "OK".into(),
                start_time_ns: 100_000_000,
                end_time_ns: Some(110_000_000),
                content: r#"{"inputs": "hello world"}"#.into(),
                ..Default::default()
            }],
            resource_tags: vec![],
        })
        .unwrap();
        (exp, run)
    }

    #[test]
    fn trace_attributes_compare_as_text_or_number_and_name_their_keys() {
        let s = Scratch::new().unwrap();
        let (exp, _) = three_traces(&s);
        let q = |f: &str| trace_ids(&s, exp, f, &["timestamp_ms ASC"]).unwrap();
        assert_eq!(q("trace.status IN ('OK', 'ERROR')"), ["tr-1", "tr-2"]);
        assert_eq!(q("state NOT IN ('OK', 'ERROR')"), ["tr-3"]);
        assert_eq!(q("status ILIKE 'err%'"), ["tr-2"]);
        assert_eq!(q("request_id = 'tr-2'"), ["tr-2"]);
        assert_eq!(q("trace.trace_id LIKE 'tr-%'"), ["tr-1", "tr-2", "tr-3"]);
        assert_eq!(q("client_request_id = 'c-1'"), ["tr-1"]);
        assert_eq!(q("timestamp >= 200 AND timestamp_ms < 300"), ["tr-2"]);
        // a quoted number compares as a number
        assert_eq!(q("timestamp_ms > '150'"), ["tr-2", "tr-3"]);
        // a trace in progress has no duration and no end
        assert_eq!(q("execution_time_ms = 10"), ["tr-1", "tr-2"]);
        assert_eq!(q("end_time_ms > 150.5"), ["tr-2"]);
        assert_eq!(q("end_time <= 110"), ["tr-1"]);
        // the name is the trace's name tag; IS NULL finds the unnamed
        assert_eq!(q("name = 'beta'"), ["tr-2"]);
        assert_eq!(q("trace.name IN ('alpha', 'gamma')"), ["tr-1"]);
        assert_eq!(q("name IS NULL"), ["tr-3"]);
        // `!=` on a tag does not match traces without it
        assert_eq!(q("name != 'alpha'"), ["tr-2"]);
        assert_eq!(q("tag.`mlflow.traceName` ILIKE 'AL%'"), ["tr-1"]);
        assert_eq!(q("tag.missing IS NULL"), ["tr-1", "tr-2", "tr-3"]);
        assert_eq!(q("metadata.`mlflow.sourceRun` IS NOT NULL"), ["tr-1"]);
        assert_eq!(
            refused(trace_ids(&s, exp, "owner = 'me'", &[])),
            "Invalid attribute key 'owner' in a trace search: use one of timestamp_ms, execution_time_ms, end_time_ms, status, request_id, client_request_id, name, run_id, text"
        );
        assert_eq!(
            refused(trace_ids(&s, exp, "status > 'A'", &[])),
            "Invalid comparator '>' or value for 'status'; string attributes support =, !=, LIKE, ILIKE, IN and NOT IN with quoted values"
        );
        assert_eq!(
            refused(trace_ids(&s, exp, "timestamp_ms LIKE '1%'", &[])),
            "Invalid comparator 'LIKE' for numeric key 'timestamp_ms'; use one of =, !=, <, <=, >, >="
        );
        assert_eq!(
            refused(trace_ids(&s, exp, "timestamp_ms > 'soon'", &[])),
            "Expected a numeric value for 'timestamp_ms', got 'soon'"
        );
    }

    /// A trace's run is its source-run metadata or a link to the run, either.
    #[test]
    fn traces_are_found_by_run_in_metadata_or_links() {
        let s = Scratch::new().unwrap();
        let (exp, run) = three_traces(&s);
        let q = |f: &str| trace_ids(&s, exp, f, &["timestamp_ms ASC"]);
        assert_eq!(q(&format!("run_id = '{run}'")).unwrap(), ["tr-2"]);
        assert_eq!(q("run_id = 'run-in-metadata'").unwrap(), ["tr-1"]);
        assert_eq!(
            q(&format!("run_id IN ('run-in-metadata', '{run}')")).unwrap(),
            ["tr-1", "tr-2"]
        );
        assert_eq!(q("run_id LIKE 'run-%'").unwrap(), ["tr-1"]);
        // `!=` needs a run that is not this one
        assert_eq!(q(&format!("run_id != '{run}'")).unwrap(), ["tr-1"]);
        assert_eq!(
            refused(q("run_id IS NULL")),
            "run_id supports =, !=, LIKE, ILIKE, IN and NOT IN"
        );
    }

    /// Span fields find the traces with such a span; a span's content and the trace's text
    /// are searched by pattern only.
    #[test]
    fn traces_are_found_by_their_spans() {
        let s = Scratch::new().unwrap();
        let (exp, _) = three_traces(&s);
        let q = |f: &str| trace_ids(&s, exp, f, &[]);
        assert_eq!(q("span.name = 'root'").unwrap(), ["tr-1"]);
        assert_eq!(q("span.name IN ('x', 'root')").unwrap(), ["tr-1"]);
        assert_eq!(q("span.type = 'LLM'").unwrap(), ["tr-1"]);
        assert_eq!(q("span.status != 'OK'").unwrap(), Vec::<String>::new());
        assert_eq!(q("span.content ILIKE '%HELLO%'").unwrap(), ["tr-1"]);
        assert_eq!(q("text LIKE '%world%'").unwrap(), ["tr-1"]);
        assert_eq!(q("text LIKE '%World%'").unwrap(), Vec::<String>::new());
        assert_eq!(
            refused(q("text = 'hello world'")),
            "Invalid comparator '=' for 'text': span content and trace text support LIKE and ILIKE"
        );
        assert_eq!(
            refused(q("span.content != 'x'")),
            "Invalid comparator '!=' for 'content': span content and trace text support LIKE and ILIKE"
        );
        assert_eq!(
            refused(q("span.bogus = 'x'")),
            "Invalid span key 'bogus' in a trace search: use span.name, span.type, span.status or span.content"
        );
    }

    #[test]
    fn assessment_filters_refuse_patterns_and_non_numbers() {
        let s = Scratch::new().unwrap();
        let (exp, _) = three_traces(&s);
        let q = |f: &str| trace_ids(&s, exp, f, &[]);
        assert_eq!(
            refused(q("feedback.score LIKE '1%'")),
            "Invalid comparator 'LIKE' for 'feedback.score': use =, !=, <, <=, >, >=, IS NULL or IS NOT NULL"
        );
        assert_eq!(
            refused(q("expectation.score > 'high'")),
            "Expected a number for 'expectation.score', got 'high'"
        );
        assert_eq!(
            refused(q("feedback.score IN ('1')")),
            "Invalid comparator 'IN' for 'feedback.score': use =, !=, <, <=, >, >=, IS NULL or IS NOT NULL"
        );
    }

    /// Name, run, tags and metadata order traces with those without the value last, both ways;
    /// the experiment orders too, and ties fall back to newest first.
    #[test]
    fn traces_order_by_name_run_and_metadata() {
        let s = Scratch::new().unwrap();
        let (exp, _) = three_traces(&s);
        let q = |order: &[&str]| trace_ids(&s, exp, "", order);
        assert_eq!(q(&["name ASC"]).unwrap(), ["tr-1", "tr-2", "tr-3"]);
        assert_eq!(q(&["name DESC"]).unwrap(), ["tr-2", "tr-1", "tr-3"]);
        assert_eq!(q(&["run_id DESC"]).unwrap(), ["tr-1", "tr-3", "tr-2"]);
        assert_eq!(
            q(&["metadata.`mlflow.sourceRun`"]).unwrap(),
            ["tr-1", "tr-3", "tr-2"]
        );
        assert_eq!(
            q(&["experiment_id", "status DESC"]).unwrap(),
            ["tr-1", "tr-3", "tr-2"]
        );
        assert_eq!(q(&["trace_id DESC"]).unwrap(), ["tr-3", "tr-2", "tr-1"]);
        assert_eq!(
            refused(q(&["span.name"])),
            "Invalid order_by clause 'span.name' for traces"
        );
        assert_eq!(
            refused(q(&["client_request_id"])),
            "Invalid order_by clause 'client_request_id' for traces"
        );
    }

    #[test]
    fn eval_datasets_take_lists_on_name_only_and_tags_by_value() {
        let s = Scratch::new().unwrap();
        s.create_eval_dataset("default", "a", &[Tag::new("env", "prod")], &[], Some("ana"))
            .unwrap();
        s.create_eval_dataset("default", "b", &[], &[], Some("bo"))
            .unwrap();
        let names = |f: &str, order: &[&str]| -> Result<Vec<String>> {
            Ok(s.search_eval_datasets(&SearchEvalDatasets {
                filter: f.into(),
                max_results: 10,
                order_by: order.iter().map(|o| o.to_string()).collect(),
                ..Default::default()
            })?
            .items
            .into_iter()
            .map(|d| d.name)
            .collect())
        };
        assert_eq!(names("last_updated_by LIKE 'b%'", &[]).unwrap(), ["b"]);
        assert_eq!(names("created_time > '0'", &["name"]).unwrap(), ["a", "b"]);
        assert_eq!(names("tags.env ILIKE 'PROD'", &[]).unwrap(), ["a"]);
        assert_eq!(
            names("", &["last_update_time ASC", "name DESC"])
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            refused(names("created_by IN ('ana')", &[])),
            "Invalid comparator 'IN' for 'created_by': lists are only supported for 'name'"
        );
        assert_eq!(
            refused(names("last_updated_by NOT IN ('ana')", &[])),
            "Invalid comparator 'NOT IN' for 'last_updated_by': lists are only supported for 'name'"
        );
        assert_eq!(
            refused(names("name NOT IN ('a')", &[])),
            "Invalid comparator 'NOT IN' for 'name': use IN"
        );
        assert_eq!(
            refused(names("created_time > 1.5", &[])),
            "Invalid value for numeric attribute 'created_time': '1.5'"
        );
        assert_eq!(
            refused(names("tags.env IS NULL", &[])),
            "Invalid comparator for tag: IS NULL"
        );
        assert_eq!(
            refused(names("digest = 'x'", &[])),
            "Invalid attribute key 'digest' specified. Valid keys are: {'name', 'created_time', 'last_update_time', 'created_by', 'last_updated_by'}"
        );
        assert_eq!(
            refused(names("params.k = 'x'", &[])),
            "Invalid identifier token 'params' specified: dataset search supports the attributes 'name', 'created_time', 'last_update_time', 'created_by', 'last_updated_by' and tags.<key>"
        );
        assert_eq!(
            refused(names("", &["tags.env"])),
            "Invalid order_by clause 'tags.env': order by 'name', 'created_time' or 'last_update_time', ASC or DESC"
        );
    }
}
