//! MLflow's search filter grammar: `clause AND clause AND ...` where a
//! clause is `<entity>.<key> <comparator> <value>`, and `order_by` items
//! `<entity>.<key> [ASC|DESC]`.
//!
//! This module only parses; what each entity and comparator means for a
//! given search (runs, experiments, registry) is decided by the SQL
//! translation in `sqlite.rs`, which also rejects combinations that search
//! does not allow.

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "LIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
    pub fn is_numeric(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
    pub fn is_string(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Like | Op::ILike)
    }
    pub fn name(self) -> &'static str {
        match self {
            Op::ILike => "ILIKE",
            other => other.sql(),
        }
    }
}

/// A LIKE pattern as SQL text and its argument, the same on both backends:
/// `%` and `_` are the wildcards and a backslash is an ordinary character
/// (SQLite's LIKE has no escape character; PostgreSQL's escapes with a
/// backslash unless told otherwise, so the escape is named and doubled).
pub(crate) const LIKE_ESCAPE: &str = "ESCAPE '\\'";

pub(crate) fn like_pattern(pattern: &str) -> crate::db::Val {
    crate::db::Val::Text(pattern.replace('\\', "\\\\"))
}

/// Text a LIKE (with [`LIKE_ESCAPE`]) matches only literally: its backslashes, `%`
/// and `_` escaped, to be put inside a pattern.
pub(crate) fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Str(String),
    List(Vec<String>),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub key: String,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub key: String,
    pub ascending: bool,
}

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidParameter(msg.into())
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word (identifier, keyword, or number text).
    Word(String),
    /// A quoted string: 'x' or "x".
    Quoted(String),
    /// A backticked identifier part.
    Backtick(String),
    Op(String),
    LParen,
    RParen,
    Comma,
    Dot,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, StoreError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '.' if !chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                out.push(Tok::Dot);
                i += 1
            }
            '\'' | '"' | '`' => {
                let quote = c;
                let mut v = String::new();
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    if chars[i] == quote {
                        // '' inside a single-quoted string is an escaped quote
                        if quote != '`' && chars.get(i + 1) == Some(&quote) {
                            v.push(quote);
                            i += 2;
                            continue;
                        }
                        closed = true;
                        i += 1;
                        break;
                    }
                    if chars[i] == '\\' && quote != '`' && i + 1 < chars.len() {
                        v.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                if !closed {
                    return Err(bad(format!(
                        "Invalid filter '{s}': unterminated {quote}-quoted string"
                    )));
                }
                out.push(if quote == '`' {
                    Tok::Backtick(v)
                } else {
                    Tok::Quoted(v)
                });
            }
            '=' | '!' | '<' | '>' | '~' => {
                let mut op = String::new();
                while i < chars.len() && "=!<>~".contains(chars[i]) {
                    op.push(chars[i]);
                    i += 1;
                }
                out.push(Tok::Op(op));
            }
            _ => {
                let mut w = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    // a dot continues a word only inside a number (1.5, -2.0e3)
                    let numeric_dot = c == '.'
                        && w.chars()
                            .next()
                            .is_some_and(|f| f.is_ascii_digit() || f == '-' || f == '+');
                    if c.is_alphanumeric() || "_-+:/".contains(c) || numeric_dot {
                        w.push(c);
                        i += 1;
                    } else {
                        break;
                    }
                }
                if w.is_empty() {
                    return Err(bad(format!(
                        "Invalid filter '{s}': unexpected character '{c}'"
                    )));
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

fn entity_of(word: &str) -> Option<Entity> {
    Some(match word.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => Entity::Metric,
        "param" | "params" | "parameter" | "parameters" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
        "dataset" | "datasets" => Entity::Dataset,
        _ => return None,
    })
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    src: &'a str,
    /// Identifiers without an entity prefix are attributes (registry and
    /// experiment search write `name LIKE 'x%'`).
    bare_is_attribute: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn err(&self, what: &str) -> StoreError {
        bad(format!("Invalid filter '{}': {what}", self.src))
    }

    /// The end of an `order_by` item after its key: nothing or `ASC` (true),
    /// `DESC` (false), and nothing after it.
    fn direction(&mut self) -> Result<bool, StoreError> {
        let item = self.src;
        let ascending = match self.next() {
            None => true,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("asc") => true,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("desc") => false,
            _ => {
                return Err(bad(format!(
                    "Invalid order_by clause '{item}': expected ASC or DESC after the key"
                )));
            }
        };
        if self.next().is_some() {
            return Err(bad(format!("Invalid order_by clause '{item}'")));
        }
        Ok(ascending)
    }

    /// The whole filter as `one (AND one)*`: OR and parentheses are refused.
    fn and_list<T>(
        &mut self,
        mut one: impl FnMut(&mut Self) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        loop {
            out.push(one(self)?);
            match self.next() {
                None => break,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") => continue,
                Some(_) => {
                    return Err(bad(format!(
                        "Invalid clause(s) in filter string: '{}'. Search filters must be an AND-ed expression list (OR and parentheses are not supported)",
                        self.src
                    )));
                }
            }
        }
        Ok(out)
    }

    fn identifier(&mut self) -> Result<(Entity, String), StoreError> {
        let first = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(Tok::Backtick(w)) | Some(Tok::Quoted(w)) if self.bare_is_attribute => {
                return Ok((Entity::Attribute, w));
            }
            _ => return Err(self.err("expected an identifier like metrics.rmse")),
        };
        if let Some(entity) = entity_of(&first)
            && self.peek() == Some(&Tok::Dot)
        {
            {
                self.pos += 1;
                let key = match self.next() {
                    Some(Tok::Word(w)) | Some(Tok::Backtick(w)) | Some(Tok::Quoted(w)) => w,
                    _ => return Err(self.err("expected a key after the entity prefix")),
                };
                let mut key = key;
                while self.peek() == Some(&Tok::Dot) {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Word(w)) => {
                            key.push('.');
                            key.push_str(&w)
                        }
                        _ => return Err(self.err("bad key after '.'")),
                    }
                }
                return Ok((entity, key));
            }
        }
        if self.bare_is_attribute {
            return Ok((Entity::Attribute, first));
        }
        Err(self.err(&format!(
            "invalid identifier '{first}': expected a prefix metrics., params., tags., attributes. or datasets."
        )))
    }

    fn comparator(&mut self) -> Result<Op, StoreError> {
        let t = self
            .next()
            .ok_or_else(|| self.err("expected a comparator"))?;
        let op = match t {
            Tok::Op(o) => match o.as_str() {
                "=" | "==" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                other => {
                    return Err(bad(format!(
                        "Invalid comparator '{other}' not one of '['=', '!=', '>', '>=', '<', '<=', 'LIKE', 'ILIKE', 'IN', 'NOT IN', 'IS NULL', 'IS NOT NULL']'"
                    )));
                }
            },
            Tok::Word(w) => match w.to_ascii_uppercase().as_str() {
                "LIKE" => Op::Like,
                "ILIKE" => Op::ILike,
                "IN" => Op::In,
                "NOT" => match self.next() {
                    Some(Tok::Word(w2)) if w2.eq_ignore_ascii_case("IN") => Op::NotIn,
                    _ => return Err(self.err("expected IN after NOT")),
                },
                "IS" => match self.next() {
                    Some(Tok::Word(w2)) if w2.eq_ignore_ascii_case("NULL") => Op::IsNull,
                    Some(Tok::Word(w2)) if w2.eq_ignore_ascii_case("NOT") => match self.next() {
                        Some(Tok::Word(w3)) if w3.eq_ignore_ascii_case("NULL") => Op::IsNotNull,
                        _ => return Err(self.err("expected NULL after IS NOT")),
                    },
                    _ => return Err(self.err("expected NULL or NOT NULL after IS")),
                },
                other => {
                    return Err(bad(format!(
                        "Invalid comparator '{other}' not one of '['=', '!=', '>', '>=', '<', '<=', 'LIKE', 'ILIKE', 'IN', 'NOT IN', 'IS NULL', 'IS NOT NULL']'"
                    )));
                }
            },
            _ => return Err(self.err("expected a comparator")),
        };
        Ok(op)
    }

    fn value(&mut self, op: Op) -> Result<Value, StoreError> {
        match op {
            Op::IsNull | Op::IsNotNull => return Ok(Value::Null),
            Op::In | Op::NotIn => {
                if self.next() != Some(Tok::LParen) {
                    return Err(self.err("expected '(' after IN"));
                }
                let mut items = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::Quoted(s)) => items.push(s),
                        Some(Tok::Word(w)) => items.push(w),
                        _ => return Err(self.err("expected a quoted value in the IN list")),
                    }
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RParen) => break,
                        _ => return Err(self.err("expected ',' or ')' in the IN list")),
                    }
                }
                return Ok(Value::List(items));
            }
            _ => {}
        }
        match self.next() {
            Some(Tok::Quoted(s)) => Ok(Value::Str(s)),
            Some(Tok::Word(w)) => match w.parse::<f64>() {
                Ok(n) => Ok(Value::Number(n)),
                Err(_) => {
                    Err(self.err(&format!("expected a number or a quoted string, got '{w}'")))
                }
            },
            _ => Err(self.err("expected a value")),
        }
    }
}

/// What a clause of a trace search names (MLflow's `SearchTraceUtils`):
/// `trace.`/`attribute.` fields, `tag.`, `metadata.`/`request_metadata.`, and
/// the span and assessment prefixes (parsed so they can be refused by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceEntity {
    Attribute,
    Tag,
    Metadata,
    Span,
    Feedback,
    Expectation,
}

fn trace_entity_of(word: &str) -> Option<TraceEntity> {
    Some(match word.to_ascii_lowercase().as_str() {
        "trace" | "attribute" | "attributes" => TraceEntity::Attribute,
        "tag" | "tags" => TraceEntity::Tag,
        "metadata" | "request_metadata" => TraceEntity::Metadata,
        "span" => TraceEntity::Span,
        "feedback" => TraceEntity::Feedback,
        "expectation" => TraceEntity::Expectation,
        _ => return None,
    })
}

impl Parser<'_> {
    /// `<prefix>.<key>` with a trace search's prefixes; a bare name is an attribute.
    fn trace_identifier(&mut self) -> Result<(TraceEntity, String), StoreError> {
        let first = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(Tok::Backtick(w)) | Some(Tok::Quoted(w)) => {
                return Ok((TraceEntity::Attribute, w));
            }
            _ => return Err(self.err("expected an identifier like trace.status or tag.`key`")),
        };
        if self.peek() != Some(&Tok::Dot) {
            return Ok((TraceEntity::Attribute, first));
        }
        let Some(entity) = trace_entity_of(&first) else {
            return Err(self.err(&format!(
                "invalid identifier '{first}': expected a prefix trace., attribute., tag., metadata. or span."
            )));
        };
        self.pos += 1;
        let mut key = match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Backtick(w)) | Some(Tok::Quoted(w)) => w,
            _ => return Err(self.err("expected a key after the prefix")),
        };
        while self.peek() == Some(&Tok::Dot) {
            self.pos += 1;
            match self.next() {
                Some(Tok::Word(w)) | Some(Tok::Backtick(w)) => {
                    key.push('.');
                    key.push_str(&w)
                }
                _ => return Err(self.err("bad key after '.'")),
            }
        }
        Ok((entity, key))
    }
}

/// A trace search's filter: AND-ed `(entity, clause)` pairs; the clause's own
/// `entity` is `Attribute` for attributes and `Tag` otherwise.
pub fn parse_trace_filter(filter: &str) -> Result<Vec<(TraceEntity, Clause)>, StoreError> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Parser {
        toks: tokenize(filter)?,
        pos: 0,
        src: filter,
        bare_is_attribute: true,
    };
    p.and_list(|p| {
        let (te, key) = p.trace_identifier()?;
        let op = p.comparator()?;
        let value = p.value(op)?;
        let entity = if te == TraceEntity::Attribute {
            Entity::Attribute
        } else {
            Entity::Tag
        };
        Ok((
            te,
            Clause {
                entity,
                key,
                op,
                value,
            },
        ))
    })
}

/// One `order_by` item of a trace search: `[prefix.]key [ASC|DESC]`.
pub fn parse_trace_order_by(item: &str) -> Result<(TraceEntity, String, bool), StoreError> {
    let mut p = Parser {
        toks: tokenize(item)?,
        pos: 0,
        src: item,
        bare_is_attribute: true,
    };
    let (te, key) = p
        .trace_identifier()
        .map_err(|_| bad(format!("Invalid order_by clause '{item}'")))?;
    let ascending = p.direction()?;
    Ok((te, key, ascending))
}

/// Parse a filter string into AND-ed clauses. An empty filter is no clause.
pub fn parse_filter(filter: &str, bare_is_attribute: bool) -> Result<Vec<Clause>, StoreError> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let toks = tokenize(filter)?;
    let mut p = Parser {
        toks,
        pos: 0,
        src: filter,
        bare_is_attribute,
    };
    p.and_list(|p| {
        let (entity, key) = p.identifier()?;
        let op = p.comparator()?;
        let value = p.value(op)?;
        Ok(Clause {
            entity,
            key,
            op,
            value,
        })
    })
}

/// Parse one `order_by` item: `<entity>.<key> [ASC|DESC]`.
pub fn parse_order_by(item: &str, bare_is_attribute: bool) -> Result<OrderBy, StoreError> {
    let toks = tokenize(item)?;
    let mut p = Parser {
        toks,
        pos: 0,
        src: item,
        bare_is_attribute,
    };
    let (entity, key) = p
        .identifier()
        .map_err(|_| bad(format!("Invalid order_by clause '{item}'")))?;
    let ascending = p.direction()?;
    Ok(OrderBy {
        entity,
        key,
        ascending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(f: &str) -> Clause {
        let mut c = parse_filter(f, false).unwrap();
        assert_eq!(c.len(), 1, "{f}");
        c.remove(0)
    }

    #[test]
    fn parses_the_documented_example() {
        let c = parse_filter(
            "metrics.rmse < 1 and params.model = 'gbm' and tags.`mlflow.runName` LIKE '%x%'",
            false,
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            Clause {
                entity: Entity::Metric,
                key: "rmse".into(),
                op: Op::Lt,
                value: Value::Number(1.0)
            }
        );
        assert_eq!(c[1].value, Value::Str("gbm".into()));
        assert_eq!(c[2].key, "mlflow.runName");
        assert_eq!(c[2].op, Op::Like);
    }

    #[test]
    fn parses_in_lists_nulls_and_quoted_keys() {
        let c = one("attributes.run_id IN ('a', 'b')");
        assert_eq!(c.value, Value::List(vec!["a".into(), "b".into()]));
        assert_eq!(one("attr.status NOT IN ('FAILED')").op, Op::NotIn);
        assert_eq!(one("params.x IS NULL").op, Op::IsNull);
        assert_eq!(one("params.x is not null").op, Op::IsNotNull);
        assert_eq!(
            one("metrics.\"my-metric\" >= -1.5e-3").value,
            Value::Number(-1.5e-3)
        );
        assert_eq!(one("metrics.a.b > 2").key, "a.b");
        assert_eq!(one("tags.t ILIKE 'AB%'").op, Op::ILike);
        assert_eq!(one("metric.m != 0.25").value, Value::Number(0.25));
    }

    #[test]
    fn rejects_or_bad_comparators_and_bare_words() {
        assert!(parse_filter("metrics.a < 1 or metrics.b < 2", false).is_err());
        let e = parse_filter("metrics.x <<< 1", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Invalid comparator '<<<'"), "{e}");
        assert!(parse_filter("rmse < 1", false).is_err());
        assert!(parse_filter("params.x = 'unterminated", false).is_err());
        assert!(parse_filter("(metrics.a < 1)", false).is_err());
    }

    #[test]
    fn bare_names_are_attributes_where_allowed() {
        let c = parse_filter("name LIKE 'x%' AND tags.k = 'v'", true).unwrap();
        assert_eq!(c[0].entity, Entity::Attribute);
        assert_eq!(c[0].key, "name");
        assert_eq!(c[1].entity, Entity::Tag);
    }

    #[test]
    fn parses_trace_filters() {
        let c = parse_trace_filter(
            "trace.status = 'OK' AND tag.`mlflow.traceName` = 'f' AND metadata.`mlflow.sourceRun` = 'r' AND timestamp_ms > 5",
        )
        .unwrap();
        let ents: Vec<TraceEntity> = c.iter().map(|(e, _)| *e).collect();
        assert_eq!(
            ents,
            [
                TraceEntity::Attribute,
                TraceEntity::Tag,
                TraceEntity::Metadata,
                TraceEntity::Attribute
            ]
        );
        assert_eq!(c[1].1.key, "mlflow.traceName");
        assert_eq!(c[3].1.value, Value::Number(5.0));
        assert!(parse_trace_filter("bogus.x = 'a'").is_err());
        assert!(parse_trace_filter("trace.status = 'OK' OR trace.status = 'ERROR'").is_err());
        let (e, k, asc) = parse_trace_order_by("timestamp_ms DESC").unwrap();
        assert_eq!(
            (e, k.as_str(), asc),
            (TraceEntity::Attribute, "timestamp_ms", false)
        );
    }

    #[test]
    fn parses_order_by() {
        let o = parse_order_by("metrics.rmse DESC", false).unwrap();
        assert_eq!(
            (o.entity, o.key.as_str(), o.ascending),
            (Entity::Metric, "rmse", false)
        );
        let o = parse_order_by("attributes.start_time", false).unwrap();
        assert!(o.ascending);
        assert!(parse_order_by("metrics.rmse sideways", false).is_err());
        let o = parse_order_by("tags.`mlflow.runName` asc", false).unwrap();
        assert_eq!(o.key, "mlflow.runName");
    }
}
