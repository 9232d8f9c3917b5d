//! MLflow 3 traces in the SQL store, SQLite or PostgreSQL (migration 10):
//! `trace_info`, its tags and request metadata, spans and run links.
//!
//! Search declares what MLflow's trace filter grammar names (`FILTER`, `ORDER`)
//! and `filter_sql` translates it: `EXISTS` clauses on the side tables, whose
//! `(key, value)` indexes keep tag and metadata lookups narrow; status, time and
//! duration read indexed columns of `trace_info`. Nothing is cached in memory:
//! every server process sharing the database sees the same traces.

use std::collections::{BTreeMap, HashMap};

use crate::db::Val as SqlValue;
use crate::db::{Conn, OptionalExtension, Row, params, params_from_iter};

use super::filter_sql::{
    Attr, JsonDocs, Kind, KvTable, SortBy, TraceFilterable, TraceSortable, Where, text,
    trace_filter_sql, trace_order_sql,
};
use super::{
    CHUNK, decode_page_token, experiment_active, invalid, load_run_info, not_found, page,
    placeholders,
};
use crate::*;

fn trace_not_found(id: &str) -> StoreError {
    not_found(format!("Trace with ID '{id}' not found."))
}

const INFO_COLS: &str = "trace_id, experiment_id, client_request_id, timestamp_ms, execution_time_ms, status, request_preview, response_preview";

fn info_row(r: &Row) -> crate::db::Result<TraceInfo> {
    Ok(TraceInfo {
        trace_id: r.get(0)?,
        experiment_id: r.get(1)?,
        client_request_id: r.get(2)?,
        request_time_ms: r.get(3)?,
        execution_time_ms: r.get(4)?,
        state: r.get(5)?,
        request_preview: r.get(6)?,
        response_preview: r.get(7)?,
        metadata: Vec::new(),
        tags: Vec::new(),
        assessments: Vec::new(),
    })
}

/// The infos of those of `ids` that exist, in the order of `ids`.
fn load_infos(c: &Conn, ids: &[String]) -> Result<Vec<TraceInfo>> {
    let mut by_id: HashMap<String, TraceInfo> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let ph = placeholders(chunk.len());
        let mut st = c.prepare(&format!(
            "SELECT {INFO_COLS} FROM trace_info WHERE trace_id IN ({ph})"
        ))?;
        for info in st.query_map(params_from_iter(chunk.iter()), info_row)? {
            let info = info?;
            by_id.insert(info.trace_id.clone(), info);
        }
        for (table, is_tag) in [("trace_tags", true), ("trace_request_metadata", false)] {
            let mut st = c.prepare(&format!(
                "SELECT trace_id, key, value FROM {table} WHERE trace_id IN ({ph}) ORDER BY trace_id, key"
            ))?;
            let rows = st.query_map(params_from_iter(chunk.iter()), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            for row in rows {
                let (id, k, v) = row?;
                if let Some(info) = by_id.get_mut(&id) {
                    let list = if is_tag {
                        &mut info.tags
                    } else {
                        &mut info.metadata
                    };
                    list.push(Tag::new(k, v));
                }
            }
        }
    }
    for a in assessments(c, ids)? {
        if let Some(info) = by_id.get_mut(&a.trace_id) {
            info.assessments.push(a);
        }
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

fn assessment_row(r: &Row) -> crate::db::Result<TraceAssessment> {
    Ok(TraceAssessment {
        trace_id: r.get(0)?,
        assessment_id: r.get(1)?,
        name: r.get(2)?,
        create_time_ms: r.get(3)?,
        content: r.get(4)?,
    })
}

const ASSESSMENT_COLS: &str = "trace_id, assessment_id, name, create_time_ms, content";

fn assessments(c: &Conn, ids: &[String]) -> Result<Vec<TraceAssessment>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let mut st = c.prepare(&format!(
            "SELECT {ASSESSMENT_COLS} FROM trace_assessments WHERE trace_id IN ({})
             ORDER BY create_time_ms, assessment_id",
            placeholders(chunk.len())
        ))?;
        for a in st.query_map(params_from_iter(chunk.iter()), assessment_row)? {
            out.push(a?);
        }
    }
    Ok(out)
}

fn assessment_not_found(trace_id: &str, id: &str) -> StoreError {
    not_found(format!(
        "Assessment with ID '{id}' not found for trace '{trace_id}'"
    ))
}

pub(super) fn save_assessments(tx: &Conn, trace_id: &str, items: &[TraceAssessment]) -> Result<()> {
    require(tx, trace_id)?;
    for a in items {
        tx.prepare_cached(
            "INSERT INTO trace_assessments (trace_id, assessment_id, name, create_time_ms, content)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (trace_id, assessment_id) DO UPDATE SET
                 name = excluded.name, content = excluded.content",
        )?
        .execute(params![
            trace_id,
            a.assessment_id,
            a.name,
            a.create_time_ms,
            a.content
        ])?;
    }
    Ok(())
}

pub(super) fn get_assessment(c: &Conn, trace_id: &str, id: &str) -> Result<TraceAssessment> {
    require(c, trace_id)?;
    c.prepare_cached(&format!(
        "SELECT {ASSESSMENT_COLS} FROM trace_assessments WHERE trace_id = ?1 AND assessment_id = ?2"
    ))?
    .query_row(params![trace_id, id], assessment_row)
    .optional()?
    .ok_or_else(|| assessment_not_found(trace_id, id))
}

pub(super) fn delete_assessment(tx: &Conn, trace_id: &str, id: &str) -> Result<()> {
    require(tx, trace_id)?;
    let n = tx.execute(
        "DELETE FROM trace_assessments WHERE trace_id = ?1 AND assessment_id = ?2",
        params![trace_id, id],
    )?;
    if n == 0 {
        return Err(assessment_not_found(trace_id, id));
    }
    Ok(())
}

pub(super) fn get(c: &Conn, id: &str) -> Result<TraceInfo> {
    load_infos(c, &[id.to_string()])?
        .pop()
        .ok_or_else(|| trace_not_found(id))
}

/// The trace must exist: [`trace_not_found`] otherwise.
fn require(c: &Conn, id: &str) -> Result<()> {
    if exists(c, id)?.is_none() {
        return Err(trace_not_found(id));
    }
    Ok(())
}

fn exists(c: &Conn, id: &str) -> Result<Option<(i64, bool)>> {
    Ok(c.prepare_cached(
        "SELECT experiment_id, EXISTS (SELECT 1 FROM trace_request_metadata m
                 WHERE m.trace_id = t.trace_id AND m.key = ?2)
             FROM trace_info t WHERE trace_id = ?1",
    )?
    .query_row(params![id, INFO_FINALIZED_METADATA], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()?)
}

fn put_kv(tx: &Conn, table: &str, id: &str, key: &str, value: &str) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (trace_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (trace_id, key) DO UPDATE SET value = excluded.value"
    ))?
    .execute(params![id, key, value])?;
    Ok(())
}

fn artifact_location(tx: &Conn, experiment_id: i64, id: &str) -> Result<String> {
    let e = experiment_active(tx, experiment_id)?;
    Ok(format!(
        "{}/traces/{id}/artifacts",
        e.artifact_location.trim_end_matches('/')
    ))
}

pub(super) fn start(tx: &Conn, info: &TraceInfo) -> Result<TraceInfo> {
    let location = artifact_location(tx, info.experiment_id, &info.trace_id)?;
    tx.execute(
        "INSERT INTO trace_info (trace_id, experiment_id, client_request_id, timestamp_ms, execution_time_ms, status, request_preview, response_preview)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (trace_id) DO UPDATE SET
             experiment_id = excluded.experiment_id,
             client_request_id = excluded.client_request_id,
             timestamp_ms = excluded.timestamp_ms,
             execution_time_ms = excluded.execution_time_ms,
             status = excluded.status,
             request_preview = COALESCE(excluded.request_preview, trace_info.request_preview),
             response_preview = COALESCE(excluded.response_preview, trace_info.response_preview)",
        params![
            info.trace_id,
            info.experiment_id,
            info.client_request_id,
            info.request_time_ms,
            info.execution_time_ms,
            info.state,
            info.request_preview,
            info.response_preview
        ],
    )?;
    for t in &info.tags {
        put_kv(tx, "trace_tags", &info.trace_id, &t.key, &t.value)?;
    }
    put_kv(
        tx,
        "trace_tags",
        &info.trace_id,
        ARTIFACT_LOCATION_TAG,
        &location,
    )?;
    for m in &info.metadata {
        put_kv(
            tx,
            "trace_request_metadata",
            &info.trace_id,
            &m.key,
            &m.value,
        )?;
    }
    put_kv(
        tx,
        "trace_request_metadata",
        &info.trace_id,
        INFO_FINALIZED_METADATA,
        "true",
    )?;
    save_assessments(tx, &info.trace_id, &info.assessments)?;
    get(tx, &info.trace_id)
}

/// What a trace's stored spans say about it.
struct FromSpans {
    start_ms: i64,
    execution_ms: Option<i64>,
    state: &'static str,
    root_name: Option<String>,
}

fn summarize(tx: &Conn, id: &str) -> Result<FromSpans> {
    let (min_start, max_end): (i64, Option<i64>) = tx
        .prepare_cached(
            "SELECT MIN(start_time_ns), MAX(end_time_ns) FROM trace_spans WHERE trace_id = ?1",
        )?
        .query_row([id], |r| {
            Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get(1)?))
        })?;
    let root: Option<(String, String, Option<i64>)> = tx
        .prepare_cached(
            "SELECT name, status, end_time_ns FROM trace_spans
             WHERE trace_id = ?1 AND parent_span_id IS NULL ORDER BY start_time_ns, span_id LIMIT 1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (state, end, root_name) = match root {
        Some((name, status, end)) => (
            if status == "ERROR" { "ERROR" } else { "OK" },
            end,
            Some(name),
        ),
        None => ("IN_PROGRESS", max_end, None),
    };
    Ok(FromSpans {
        start_ms: min_start.div_euclid(1_000_000),
        execution_ms: end.map(|e| e.saturating_sub(min_start).max(0) / 1_000_000),
        state,
        root_name,
    })
}

/// The trace's token usage as MLflow sums it: over the spans that report one and have no ancestor
/// that does (an LLM call's usage is not counted again in the agent span that wraps it and reports
/// the total). `None` when no span reports usage.
fn token_usage(tx: &Conn, id: &str) -> Result<Option<TokenUsage>> {
    type Row = (String, Option<String>, Option<TokenUsage>);
    let rows: Vec<Row> = tx
        .prepare_cached(
            "SELECT span_id, parent_span_id, input_tokens, output_tokens, total_tokens
             FROM trace_spans WHERE trace_id = ?1",
        )?
        .query_map([id], |r| {
            let (i, o, t): (Option<i64>, Option<i64>, Option<i64>) =
                (r.get(2)?, r.get(3)?, r.get(4)?);
            let usage = (i.is_some() || o.is_some() || t.is_some()).then(|| TokenUsage {
                input_tokens: i.unwrap_or(0),
                output_tokens: o.unwrap_or(0),
                total_tokens: t.unwrap_or(0),
            });
            Ok((r.get(0)?, r.get(1)?, usage))
        })?
        .collect::<crate::db::Result<_>>()?;
    let by_id: HashMap<&str, &Row> = rows.iter().map(|r| (r.0.as_str(), r)).collect();
    let mut total: Option<TokenUsage> = None;
    for (_, parent, usage) in &rows {
        let Some(u) = usage else { continue };
        // walk up (at most as many steps as there are spans, so a cycle ends)
        let mut covered = false;
        let mut up = parent.as_deref();
        for _ in 0..rows.len() {
            let Some(p) = up.and_then(|p| by_id.get(p)) else {
                break;
            };
            if p.2.is_some() {
                covered = true;
                break;
            }
            up = p.1.as_deref();
        }
        if !covered {
            let t = total.get_or_insert_with(TokenUsage::default);
            t.input_tokens = t.input_tokens.saturating_add(u.input_tokens);
            t.output_tokens = t.output_tokens.saturating_add(u.output_tokens);
            t.total_tokens = t.total_tokens.saturating_add(u.total_tokens);
        }
    }
    Ok(total)
}

pub(super) fn log_spans(tx: &Conn, batch: &LogSpans) -> Result<usize> {
    let mut by_trace: BTreeMap<&str, Vec<&TraceSpan>> = BTreeMap::new();
    for s in &batch.spans {
        by_trace.entry(s.trace_id.as_str()).or_default().push(s);
    }
    for (id, spans) in by_trace {
        let location = artifact_location(tx, batch.experiment_id, id)?;
        let existing = exists(tx, id)?;
        if let Some((exp, _)) = existing
            && exp != batch.experiment_id
        {
            return Err(invalid(format!(
                "Trace with ID '{id}' belongs to experiment {exp}, not {}",
                batch.experiment_id
            )));
        }
        let mut st = tx.prepare_cached(
            "INSERT INTO trace_spans (trace_id, span_id, parent_span_id, name, span_type, status, start_time_ns, end_time_ns, content,
                                      input_tokens, output_tokens, total_tokens)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (trace_id, span_id) DO UPDATE SET
                 parent_span_id = excluded.parent_span_id, name = excluded.name,
                 span_type = excluded.span_type, status = excluded.status,
                 start_time_ns = excluded.start_time_ns, end_time_ns = excluded.end_time_ns,
                 content = excluded.content, input_tokens = excluded.input_tokens,
                 output_tokens = excluded.output_tokens, total_tokens = excluded.total_tokens",
        )?;
        for s in &spans {
            let u = s.token_usage;
            st.execute(params![
                s.trace_id,
                s.span_id,
                s.parent_span_id,
                s.name,
                s.span_type,
                s.status,
                s.start_time_ns,
                s.end_time_ns,
                s.content,
                u.map(|u| u.input_tokens),
                u.map(|u| u.output_tokens),
                u.map(|u| u.total_tokens)
            ])?;
        }
        let root = spans.iter().find(|s| s.parent_span_id.is_none());
        let finalized = existing.is_some_and(|(_, f)| f);
        if !finalized {
            let sum = summarize(tx, id)?;
            tx.execute(
                "INSERT INTO trace_info (trace_id, experiment_id, timestamp_ms, execution_time_ms, status, request_preview, response_preview)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (trace_id) DO UPDATE SET
                     timestamp_ms = excluded.timestamp_ms,
                     execution_time_ms = excluded.execution_time_ms,
                     status = excluded.status,
                     request_preview = COALESCE(excluded.request_preview, trace_info.request_preview),
                     response_preview = COALESCE(excluded.response_preview, trace_info.response_preview)",
                params![
                    id,
                    batch.experiment_id,
                    sum.start_ms,
                    sum.execution_ms,
                    sum.state,
                    root.and_then(|r| r.request_preview.clone()),
                    root.and_then(|r| r.response_preview.clone())
                ],
            )?;
            if let Some(name) = sum.root_name {
                put_kv(tx, "trace_tags", id, TRACE_NAME_TAG, &name)?;
            }
            if spans.iter().any(|s| s.token_usage.is_some())
                && let Some(u) = token_usage(tx, id)?
            {
                let json = format!(
                    "{{\"input_tokens\": {}, \"output_tokens\": {}, \"total_tokens\": {}}}",
                    u.input_tokens, u.output_tokens, u.total_tokens
                );
                put_kv(
                    tx,
                    "trace_request_metadata",
                    id,
                    TOKEN_USAGE_METADATA,
                    &json,
                )?;
            }
        }
        put_kv(tx, "trace_tags", id, SPANS_LOCATION_TAG, "TRACKING_STORE")?;
        put_kv(tx, "trace_tags", id, ARTIFACT_LOCATION_TAG, &location)?;
        for t in &batch.resource_tags {
            tx.prepare_cached(
                "INSERT INTO trace_tags (trace_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (trace_id, key) DO NOTHING",
            )?
            .execute(params![id, t.key, t.value])?;
        }
    }
    Ok(batch.spans.len())
}

pub(super) fn spans(c: &Conn, ids: &[String]) -> Result<Vec<TraceSpan>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let mut st = c.prepare(&format!(
            "SELECT trace_id, span_id, parent_span_id, name, span_type, status, start_time_ns, end_time_ns, content
             FROM trace_spans WHERE trace_id IN ({}) ORDER BY trace_id, start_time_ns, span_id",
            placeholders(chunk.len())
        ))?;
        let rows = st.query_map(params_from_iter(chunk.iter()), |r| {
            Ok(TraceSpan {
                trace_id: r.get(0)?,
                span_id: r.get(1)?,
                parent_span_id: r.get(2)?,
                name: r.get(3)?,
                span_type: r.get(4)?,
                status: r.get(5)?,
                start_time_ns: r.get(6)?,
                end_time_ns: r.get(7)?,
                content: r.get(8)?,
                request_preview: None,
                response_preview: None,
                token_usage: None,
            })
        })?;
        for s in rows {
            out.push(s?);
        }
    }
    // keep the order the ids were asked in
    let rank: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    out.sort_by_key(|s| rank.get(s.trace_id.as_str()).copied().unwrap_or(usize::MAX));
    Ok(out)
}

const TAGS: KvTable = KvTable {
    table: "trace_tags",
    id_cond: "kv.trace_id = t.trace_id",
    null_inclusive_ne: false,
};

const METADATA: KvTable = KvTable {
    table: "trace_request_metadata",
    id_cond: "kv.trace_id = t.trace_id",
    null_inclusive_ne: false,
};

/// Traces with a span where the attribute's column matches.
const WITH_SPAN: &str = "EXISTS (SELECT 1 FROM trace_spans s WHERE s.trace_id = t.trace_id AND {})";

/// What `LIKE`-only span content is called when another comparator is refused.
const CONTENT: Option<&str> = Some("span content and trace text");

/// A trace's end time in ms (NULL while in progress). Summed as floating point: a client may send
/// any duration, and the BIGINT sum would overflow on PostgreSQL (an error for the whole search)
/// where SQLite turns it into a float.
const END_TIME: &str = "(CAST(t.timestamp_ms AS DOUBLE PRECISION) + t.execution_time_ms)";

const FILTER: TraceFilterable = TraceFilterable {
    attrs: &[
        Attr {
            names: &["text"],
            col: "s.content",
            kind: Kind::Related {
                sql: WITH_SPAN,
                like_only: CONTENT,
            },
        },
        Attr {
            names: &["timestamp_ms", "timestamp"],
            col: "t.timestamp_ms",
            kind: Kind::Number,
        },
        Attr {
            names: &["execution_time_ms", "execution_time"],
            col: "t.execution_time_ms",
            kind: Kind::Number,
        },
        Attr {
            names: &["end_time_ms", "end_time"],
            col: END_TIME,
            kind: Kind::Number,
        },
        Attr {
            names: &["status", "state"],
            col: "t.status",
            kind: Kind::Text,
        },
        Attr {
            names: &["request_id", "trace_id"],
            col: "t.trace_id",
            kind: Kind::Text,
        },
        Attr {
            names: &["client_request_id"],
            col: "t.client_request_id",
            kind: Kind::Text,
        },
        Attr {
            names: &["name"],
            col: "",
            kind: Kind::KeyOf {
                table: &TAGS,
                key: TRACE_NAME_TAG,
            },
        },
        // the run that made the trace (its metadata) or one it was linked to
        Attr {
            names: &["run_id"],
            col: "",
            kind: Kind::AnyOf(&[
                Attr {
                    names: &[],
                    col: "",
                    kind: Kind::KeyOf {
                        table: &METADATA,
                        key: SOURCE_RUN_METADATA,
                    },
                },
                Attr {
                    names: &[],
                    col: "l.run_id",
                    kind: Kind::Related {
                        sql: "EXISTS (SELECT 1 FROM trace_run_links l WHERE l.trace_id = t.trace_id AND {})",
                        like_only: None,
                    },
                },
            ]),
        },
    ],
    unknown_attribute: |k| {
        format!(
            "Invalid attribute key '{k}' in a trace search: use one of timestamp_ms, execution_time_ms, end_time_ms, status, request_id, client_request_id, name, run_id, text"
        )
    },
    tags: TAGS,
    metadata: METADATA,
    spans: &[
        // `t.trace_id IN (…)` over the `(name, trace_id)` index, so that a rare name is found
        // without reading every span of every newer trace
        Attr {
            names: &["name"],
            col: "s.name",
            kind: Kind::Related {
                sql: "t.trace_id IN (SELECT s.trace_id FROM trace_spans s WHERE {})",
                like_only: None,
            },
        },
        Attr {
            names: &["type"],
            col: "s.span_type",
            kind: Kind::Related {
                sql: WITH_SPAN,
                like_only: None,
            },
        },
        Attr {
            names: &["status"],
            col: "s.status",
            kind: Kind::Related {
                sql: WITH_SPAN,
                like_only: None,
            },
        },
        Attr {
            names: &["content"],
            col: "s.content",
            kind: Kind::Related {
                sql: WITH_SPAN,
                like_only: CONTENT,
            },
        },
    ],
    unknown_span: |k| {
        format!(
            "Invalid span key '{k}' in a trace search: use span.name, span.type, span.status or span.content"
        )
    },
    assessments: JsonDocs {
        from: "trace_assessments a",
        join: "a.trace_id = t.trace_id",
        name_col: "a.name",
        json_col: "a.content",
    },
};

/// As in MLflow, a trace without the value (no duration yet, no such tag) comes last in
/// either direction.
const ORDER: TraceSortable = TraceSortable {
    attrs: &[
        (
            &["timestamp_ms", "timestamp"],
            SortBy::Column("t.timestamp_ms"),
        ),
        (&["status", "state"], SortBy::Column("t.status")),
        (&["request_id", "trace_id"], SortBy::Column("t.trace_id")),
        (&["experiment_id"], SortBy::Column("t.experiment_id")),
        (
            &["execution_time_ms", "execution_time"],
            SortBy::Nullable("t.execution_time_ms"),
        ),
        (&["end_time_ms", "end_time"], SortBy::Nullable(END_TIME)),
        (
            &["name"],
            SortBy::KeyOf {
                table: &TAGS,
                key: TRACE_NAME_TAG,
            },
        ),
        (
            &["run_id"],
            SortBy::KeyOf {
                table: &METADATA,
                key: SOURCE_RUN_METADATA,
            },
        ),
    ],
    tags: TAGS,
    metadata: METADATA,
    unknown: |item| format!("Invalid order_by clause '{item}' for traces"),
};

pub(super) fn search(c: &Conn, q: &SearchTraces) -> Result<Page<TraceInfo>> {
    let offset = decode_page_token(q.page_token.as_deref())?;
    let max = q.max_results.max(1);
    if q.experiment_ids.is_empty() {
        return Ok(page(Vec::new(), offset, max));
    }
    let mut w = Where::default();
    w.push(
        format!(
            "t.experiment_id IN ({})",
            placeholders(q.experiment_ids.len())
        ),
        q.experiment_ids.iter().map(|e| SqlValue::Integer(*e)),
    );
    trace_filter_sql(&FILTER, &q.filter, c.is_postgres(), &mut w)?;
    let mut order_args = Vec::new();
    let mut order = Vec::new();
    trace_order_sql(&ORDER, &q.order_by, &mut order, &mut order_args)?;
    order.push("t.timestamp_ms DESC".into());
    order.push("t.trace_id ASC".into());
    let sql = format!(
        "SELECT t.trace_id FROM trace_info t WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
        w.sql(),
        order.join(", ")
    );
    let mut args = w.args;
    args.extend(order_args);
    args.push(SqlValue::Integer((max + 1) as i64));
    args.push(SqlValue::Integer(offset as i64));
    let ids = c
        .prepare(&sql)?
        .query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))?
        .collect::<crate::db::Result<Vec<_>>>()?;
    Ok(page(load_infos(c, &ids)?, offset, max))
}

fn delete_ids(tx: &Conn, ids: &[String]) -> Result<usize> {
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        let ph = placeholders(chunk.len());
        for table in [
            "trace_assessments",
            "trace_tags",
            "trace_request_metadata",
            "trace_spans",
            "trace_run_links",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE trace_id IN ({ph})"),
                params_from_iter(chunk.iter()),
            )?;
        }
        n += tx.execute(
            &format!("DELETE FROM trace_info WHERE trace_id IN ({ph})"),
            params_from_iter(chunk.iter()),
        )?;
    }
    Ok(n)
}

pub(super) fn delete(tx: &Conn, d: &DeleteTraces) -> Result<usize> {
    let ids: Vec<String> = if let Some(max_ts) = d.max_timestamp_millis {
        let mut args = vec![
            SqlValue::Integer(d.experiment_id),
            SqlValue::Integer(max_ts),
        ];
        // no LIMIT at all when there is no maximum (a negative one is none, as in SQLite):
        // PostgreSQL refuses `LIMIT -1`
        let limit = match d.max_traces.filter(|n| *n >= 0) {
            Some(n) => {
                args.push(SqlValue::Integer(n));
                " LIMIT ?3"
            }
            None => "",
        };
        tx.prepare(&format!(
            "SELECT trace_id FROM trace_info WHERE experiment_id = ?1 AND timestamp_ms <= ?2
             ORDER BY timestamp_ms ASC, trace_id{limit}"
        ))?
        .query_map(params_from_iter(args.iter()), |r| r.get(0))?
        .collect::<crate::db::Result<_>>()?
    } else {
        let mut found = Vec::new();
        for chunk in d.trace_ids.chunks(CHUNK) {
            let mut args: Vec<SqlValue> = vec![SqlValue::Integer(d.experiment_id)];
            args.extend(chunk.iter().map(|s| text(s)));
            let rows = tx
                .prepare(&format!(
                    "SELECT trace_id FROM trace_info WHERE experiment_id = ? AND trace_id IN ({})",
                    placeholders(chunk.len())
                ))?
                .query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))?
                .collect::<crate::db::Result<Vec<_>>>()?;
            found.extend(rows);
        }
        found
    };
    delete_ids(tx, &ids)
}

pub(super) fn set_tag(tx: &Conn, id: &str, key: &str, value: &str) -> Result<()> {
    require(tx, id)?;
    put_kv(tx, "trace_tags", id, key, value)
}

pub(super) fn delete_tag(tx: &Conn, id: &str, key: &str) -> Result<()> {
    require(tx, id)?;
    let n = tx.execute(
        "DELETE FROM trace_tags WHERE trace_id = ?1 AND key = ?2",
        params![id, key],
    )?;
    if n == 0 {
        return Err(not_found(format!(
            "No trace tag with key '{key}' for trace with ID '{id}'"
        )));
    }
    Ok(())
}

pub(super) fn link_to_run(tx: &Conn, ids: &[String], run_id: &str) -> Result<()> {
    load_run_info(tx, run_id)?;
    for id in ids {
        require(tx, id)?;
        tx.prepare_cached(
            "INSERT INTO trace_run_links (trace_id, run_id) VALUES (?1, ?2)
             ON CONFLICT (trace_id, run_id) DO NOTHING",
        )?
        .execute(params![id, run_id])?;
    }
    Ok(())
}

impl TraceStore for super::SqlStore {
    fn start_trace(&self, info: &TraceInfo) -> Result<TraceInfo> {
        self.write(|tx| start(tx, info))
    }
    fn log_spans(&self, batch: &LogSpans) -> Result<usize> {
        self.write(|tx| log_spans(tx, batch))
    }
    fn get_trace_info(&self, trace_id: &str) -> Result<TraceInfo> {
        self.read(|c| get(c, trace_id))
    }
    fn get_trace_infos(&self, trace_ids: &[String]) -> Result<Vec<TraceInfo>> {
        self.read(|c| load_infos(c, trace_ids))
    }
    fn get_trace_spans(&self, trace_ids: &[String]) -> Result<Vec<TraceSpan>> {
        self.read(|c| spans(c, trace_ids))
    }
    fn search_traces(&self, q: &SearchTraces) -> Result<Page<TraceInfo>> {
        self.read(|c| search(c, q))
    }
    fn delete_traces(&self, d: &DeleteTraces) -> Result<usize> {
        self.write(|tx| delete(tx, d))
    }
    fn set_trace_tag(&self, trace_id: &str, key: &str, value: &str) -> Result<()> {
        self.write(|tx| set_tag(tx, trace_id, key, value))
    }
    fn delete_trace_tag(&self, trace_id: &str, key: &str) -> Result<()> {
        self.write(|tx| delete_tag(tx, trace_id, key))
    }
    fn link_traces_to_run(&self, trace_ids: &[String], run_id: &str) -> Result<()> {
        self.write(|tx| link_to_run(tx, trace_ids, run_id))
    }
    fn save_trace_assessments(&self, trace_id: &str, items: &[TraceAssessment]) -> Result<()> {
        self.write(|tx| save_assessments(tx, trace_id, items))
    }
    fn get_trace_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<TraceAssessment> {
        self.read(|c| get_assessment(c, trace_id, assessment_id))
    }
    fn delete_trace_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<()> {
        self.write(|tx| delete_assessment(tx, trace_id, assessment_id))
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        DeleteTraces, LogSpans, MetadataStore, SearchTraces, SqlStore, TOKEN_USAGE_METADATA, Tag,
        TokenUsage, TraceInfo, TraceSpan, TraceStore,
    };

    fn store() -> (crate::scratch::Scratch, SqlStore) {
        let mut sc = crate::scratch::Scratch::new().expect("a scratch store");
        let s = sc.take();
        (sc, s)
    }

    fn info(id: &str, exp: i64, t: i64, state: &str, name: &str) -> TraceInfo {
        TraceInfo {
            trace_id: id.into(),
            experiment_id: exp,
            request_time_ms: t,
            execution_time_ms: Some(10 * t),
            state: state.into(),
            tags: vec![Tag::new("mlflow.traceName", name)],
            metadata: vec![Tag::new("mlflow.sourceRun", "r1")],
            ..Default::default()
        }
    }

    fn span(trace: &str, id: &str, parent: Option<&str>, start: i64, end: i64) -> TraceSpan {
        TraceSpan {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: format!("s{id}"),
            status: "OK".into(),
            start_time_ns: start,
            end_time_ns: Some(end),
            content: "{}".into(),
            ..Default::default()
        }
    }

    fn ids(s: &SqlStore, exp: i64, filter: &str, order: &[&str]) -> Vec<String> {
        s.search_traces(&SearchTraces {
            experiment_ids: vec![exp],
            filter: filter.into(),
            max_results: 100,
            order_by: order.iter().map(|o| o.to_string()).collect(),
            page_token: None,
        })
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.trace_id)
        .collect()
    }

    /// A trace's token usage is summed over spans that arrive in several requests, each counted
    /// once: a span whose ancestor reports usage (its total) is not added again.
    #[test]
    fn token_usage_is_summed_over_the_spans_of_a_trace() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        let with = |mut sp: TraceSpan, i: i64, o: i64| {
            sp.token_usage = Some(TokenUsage {
                input_tokens: i,
                output_tokens: o,
                total_tokens: i + o,
            });
            sp
        };
        let usage = |id: &str| {
            s.get_trace_info(id)
                .unwrap()
                .metadata
                .into_iter()
                .find(|m| m.key == TOKEN_USAGE_METADATA)
                .map(|m| m.value)
        };
        let log = |spans: Vec<TraceSpan>| {
            s.log_spans(&LogSpans {
                experiment_id: exp,
                spans,
                resource_tags: vec![],
            })
            .unwrap()
        };
        // two LLM calls under a tool span, one request each, then the root without usage
        log(vec![with(span("tr-u", "03", Some("02"), 2, 3), 10, 5)]);
        assert_eq!(
            usage("tr-u").as_deref(),
            Some(r#"{"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}"#)
        );
        log(vec![
            with(span("tr-u", "04", Some("02"), 3, 4), 1, 2),
            span("tr-u", "02", Some("01"), 2, 5),
        ]);
        log(vec![span("tr-u", "01", None, 1, 9)]);
        assert_eq!(
            usage("tr-u").as_deref(),
            Some(r#"{"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}"#)
        );
        // an agent span that reports its calls' total: counted once, not twice
        log(vec![
            with(span("tr-v", "01", None, 1, 9), 100, 20),
            with(span("tr-v", "02", Some("01"), 2, 3), 100, 20),
        ]);
        assert_eq!(
            usage("tr-v").as_deref(),
            Some(r#"{"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}"#)
        );
        // no usage, no metadata
        log(vec![span("tr-w", "01", None, 1, 9)]);
        assert_eq!(usage("tr-w"), None);
    }

    #[test]
    fn spans_first_then_info_merge_and_search_filters() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        // a child span alone: the trace exists, in progress
        s.log_spans(&LogSpans {
            experiment_id: exp,
            spans: vec![span("tr-a", "02", Some("01"), 2_000_000, 3_000_000)],
            resource_tags: vec![Tag::new("service.name", "svc")],
        })
        .unwrap();
        let t = s.get_trace_info("tr-a").unwrap();
        assert_eq!((t.state.as_str(), t.request_time_ms), ("IN_PROGRESS", 2));
        // the root: OK, named after it, spans in the tracking store
        s.log_spans(&LogSpans {
            experiment_id: exp,
            spans: vec![span("tr-a", "01", None, 1_000_000, 9_000_000)],
            resource_tags: vec![],
        })
        .unwrap();
        let t = s.get_trace_info("tr-a").unwrap();
        assert_eq!((t.state.as_str(), t.execution_time_ms), ("OK", Some(8)));
        let tag =
            |t: &TraceInfo, k: &str| t.tags.iter().find(|x| x.key == k).map(|x| x.value.clone());
        assert_eq!(tag(&t, "mlflow.traceName").as_deref(), Some("s01"));
        assert_eq!(
            tag(&t, "mlflow.trace.spansLocation").as_deref(),
            Some("TRACKING_STORE")
        );
        assert_eq!(tag(&t, "service.name").as_deref(), Some("svc"));
        // the client's info wins over what the spans said
        s.start_trace(&info("tr-a", exp, 5, "ERROR", "mine"))
            .unwrap();
        s.start_trace(&info("tr-b", exp, 7, "OK", "other")).unwrap();
        let t = s.get_trace_info("tr-a").unwrap();
        assert_eq!((t.state.as_str(), t.request_time_ms), ("ERROR", 5));
        assert_eq!(tag(&t, "mlflow.traceName").as_deref(), Some("mine"));
        assert!(
            tag(&t, "mlflow.artifactLocation")
                .unwrap()
                .ends_with("/traces/tr-a/artifacts")
        );
        assert_eq!(s.get_trace_spans(&["tr-a".into()]).unwrap().len(), 2);

        assert_eq!(ids(&s, exp, "", &[]), ["tr-b", "tr-a"]);
        assert_eq!(ids(&s, exp, "trace.status = 'ERROR'", &[]), ["tr-a"]);
        assert_eq!(ids(&s, exp, "trace.timestamp_ms > 6", &[]), ["tr-b"]);
        assert_eq!(ids(&s, exp, "trace.execution_time_ms <= 50", &[]), ["tr-a"]);
        assert_eq!(ids(&s, exp, "trace.name = 'other'", &[]), ["tr-b"]);
        assert_eq!(ids(&s, exp, "tag.`service.name` = 'svc'", &[]), ["tr-a"]);
        assert_eq!(
            ids(
                &s,
                exp,
                "metadata.`mlflow.sourceRun` = 'r1'",
                &["timestamp_ms ASC"]
            ),
            ["tr-a", "tr-b"]
        );
        assert_eq!(ids(&s, exp, "span.name = 's02'", &[]), ["tr-a"]);
        assert_eq!(
            ids(&s, exp, "span.status = 'ERROR'", &[]),
            Vec::<String>::new()
        );
        assert!(
            s.search_traces(&SearchTraces {
                experiment_ids: vec![exp],
                filter: "span.bogus = 'x'".into(),
                max_results: 1,
                ..Default::default()
            })
            .is_err()
        );
        // pages
        let p = s
            .search_traces(&SearchTraces {
                experiment_ids: vec![exp],
                max_results: 1,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(p.items.len(), 1);
        assert!(p.next_page_token.is_some());

        // delete by time, oldest first
        let n = s
            .delete_traces(&DeleteTraces {
                experiment_id: exp,
                max_timestamp_millis: Some(100),
                max_traces: Some(1),
                trace_ids: vec![],
            })
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(ids(&s, exp, "", &[]), ["tr-b"]);
        assert!(s.get_trace_spans(&["tr-a".into()]).unwrap().is_empty());
        assert!(matches!(
            s.get_trace_info("tr-a"),
            Err(crate::StoreError::NotFound(_))
        ));
    }

    #[test]
    fn assessments_belong_to_an_existing_trace_and_go_with_it() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        let a = |id: &str, t: i64| crate::TraceAssessment {
            trace_id: "tr-a".into(),
            assessment_id: id.into(),
            name: "quality".into(),
            create_time_ms: t,
            content: format!("{{\"id\": \"{id}\"}}"),
        };
        assert!(matches!(
            s.save_trace_assessments("tr-a", &[a("a-1", 1)]),
            Err(crate::StoreError::NotFound(_))
        ));
        let mut i = info("tr-a", exp, 5, "OK", "n");
        i.assessments = vec![a("a-2", 2)];
        s.start_trace(&i).unwrap();
        s.save_trace_assessments("tr-a", &[a("a-1", 1)]).unwrap();
        let got = s.get_trace_info("tr-a").unwrap().assessments;
        let ids: Vec<&str> = got.iter().map(|x| x.assessment_id.as_str()).collect();
        assert_eq!(ids, ["a-1", "a-2"], "oldest first");
        assert_eq!(
            s.get_trace_assessment("tr-a", "a-2").unwrap().content,
            "{\"id\": \"a-2\"}"
        );
        s.delete_trace_assessment("tr-a", "a-2").unwrap();
        assert!(matches!(
            s.get_trace_assessment("tr-a", "a-2"),
            Err(crate::StoreError::NotFound(_))
        ));
        s.delete_traces(&DeleteTraces {
            experiment_id: exp,
            trace_ids: vec!["tr-a".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(s.get_trace_infos(&["tr-a".into()]).unwrap().is_empty());
        assert!(matches!(
            s.get_trace_assessment("tr-a", "a-1"),
            Err(crate::StoreError::NotFound(_))
        ));
    }

    /// Feedback and expectation filters read the assessment JSON the same way on every backend:
    /// a string value by its text, a number by value, an invalidated (overridden) assessment not
    /// at all, an expectation's serialized value as its text.
    #[test]
    fn traces_are_found_by_their_assessments() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        for (i, id) in ["tr-good", "tr-bad", "tr-none"].iter().enumerate() {
            s.start_trace(&info(id, exp, i as i64 + 1, "OK", "n"))
                .unwrap();
        }
        let a = |trace: &str, id: &str, name: &str, content: serde_json::Value| {
            s.save_trace_assessments(
                trace,
                &[crate::TraceAssessment {
                    trace_id: trace.into(),
                    assessment_id: id.into(),
                    name: name.into(),
                    create_time_ms: 1,
                    content: content.to_string(),
                }],
            )
            .unwrap()
        };
        use serde_json::json;
        a(
            "tr-good",
            "a1",
            "verdict",
            json!({"feedback": {"value": "yes"}, "valid": true}),
        );
        a(
            "tr-bad",
            "a2",
            "verdict",
            json!({"feedback": {"value": "no"}}),
        );
        a(
            "tr-good",
            "a3",
            "score",
            json!({"feedback": {"value": 0.9}, "valid": true}),
        );
        a(
            "tr-bad",
            "a4",
            "score",
            json!({"feedback": {"value": 0.95}, "valid": false}),
        );
        a(
            "tr-bad",
            "a5",
            "score",
            json!({"feedback": {"value": 0.2}, "valid": null}),
        );
        a(
            "tr-good",
            "a6",
            "flag",
            json!({"feedback": {"value": true}}),
        );
        a("tr-bad", "a7", "flag", json!({"feedback": {"value": "1"}}));
        a(
            "tr-good",
            "a8",
            "answer",
            json!({"expectation": {"value": "42"}}),
        );
        a(
            "tr-bad",
            "a9",
            "answer",
            json!({"expectation": {"serialized_value": {
                "serialization_format": "JSON_FORMAT", "value": "{\"x\": 1}"}}}),
        );
        a(
            "tr-none",
            "a10",
            "verdict",
            json!({"expectation": {"value": "yes"}}),
        );
        let found = |f: &str| {
            let mut v = ids(&s, exp, f, &[]);
            v.sort();
            v
        };
        assert_eq!(found("feedback.verdict = 'yes'"), ["tr-good"]);
        assert_eq!(found("feedback.verdict != 'yes'"), ["tr-bad"]);
        assert_eq!(
            found("feedback.score > 0.5"),
            ["tr-good"],
            "0.95 was invalidated"
        );
        assert_eq!(found("feedback.score <= 0.5"), ["tr-bad"]);
        assert_eq!(found("feedback.score >= 0.9"), ["tr-good"]);
        assert_eq!(found("feedback.score < 1"), ["tr-bad", "tr-good"]);
        assert_eq!(
            found("feedback.flag > 0"),
            Vec::<String>::new(),
            "not numbers"
        );
        assert_eq!(found("feedback.flag = 'true'"), ["tr-good"]);
        assert_eq!(found("feedback.flag = '1'"), ["tr-bad"]);
        assert_eq!(found("feedback.verdict IS NOT NULL"), ["tr-bad", "tr-good"]);
        assert_eq!(found("feedback.verdict IS NULL"), ["tr-none"]);
        assert_eq!(found("expectation.verdict IS NOT NULL"), ["tr-none"]);
        assert_eq!(found("expectation.answer = '42'"), ["tr-good"]);
        assert_eq!(found("expectation.answer = '{\"x\": 1}'"), ["tr-bad"]);
        assert_eq!(
            found("feedback.verdict = 'yes' AND trace.status = 'OK'"),
            ["tr-good"]
        );
    }

    /// As in MLflow, traces without the value ordered by (no duration yet, no such tag) come
    /// last whichever the direction.
    #[test]
    fn order_by_puts_traces_without_the_value_last() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        let mut open = info("tr-open", exp, 3, "IN_PROGRESS", "c");
        open.execution_time_ms = None;
        open.tags.clear();
        s.start_trace(&open).unwrap();
        s.start_trace(&info("tr-short", exp, 1, "OK", "a")).unwrap();
        s.start_trace(&info("tr-long", exp, 2, "OK", "b")).unwrap();
        s.set_trace_tag("tr-short", "rank", "2").unwrap();
        s.set_trace_tag("tr-long", "rank", "1").unwrap();
        for (order, want) in [
            ("execution_time_ms ASC", ["tr-short", "tr-long", "tr-open"]),
            ("execution_time_ms DESC", ["tr-long", "tr-short", "tr-open"]),
            ("end_time_ms ASC", ["tr-short", "tr-long", "tr-open"]),
            ("end_time_ms DESC", ["tr-long", "tr-short", "tr-open"]),
            ("tag.rank ASC", ["tr-long", "tr-short", "tr-open"]),
            ("tag.rank DESC", ["tr-short", "tr-long", "tr-open"]),
            ("timestamp_ms ASC", ["tr-short", "tr-long", "tr-open"]),
        ] {
            assert_eq!(ids(&s, exp, "", &[order]), want, "{order}");
        }
        // a page boundary in the middle keeps the same order
        let first = s
            .search_traces(&SearchTraces {
                experiment_ids: vec![exp],
                max_results: 2,
                order_by: vec!["execution_time_ms ASC".into()],
                ..Default::default()
            })
            .unwrap();
        let rest = s
            .search_traces(&SearchTraces {
                experiment_ids: vec![exp],
                max_results: 2,
                order_by: vec!["execution_time_ms ASC".into()],
                page_token: first.next_page_token.clone(),
                ..Default::default()
            })
            .unwrap();
        let all: Vec<String> = first
            .items
            .into_iter()
            .chain(rest.items)
            .map(|t| t.trace_id)
            .collect();
        assert_eq!(all, ["tr-short", "tr-long", "tr-open"]);
    }

    /// Writes that only add what is missing keep what is there: a second start without previews,
    /// resource tags over a client's tag, a second link to the same run.
    #[test]
    fn repeated_writes_keep_what_is_there() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        let mut first = info("tr-a", exp, 5, "OK", "n");
        first.request_preview = Some("question".into());
        first.response_preview = Some("answer".into());
        s.start_trace(&first).unwrap();
        s.start_trace(&info("tr-a", exp, 6, "OK", "n")).unwrap();
        let t = s.get_trace_info("tr-a").unwrap();
        assert_eq!(t.request_time_ms, 6);
        assert_eq!(t.request_preview.as_deref(), Some("question"));
        assert_eq!(t.response_preview.as_deref(), Some("answer"));
        s.set_trace_tag("tr-a", "service.name", "mine").unwrap();
        s.log_spans(&LogSpans {
            experiment_id: exp,
            spans: vec![span("tr-a", "01", None, 1, 2)],
            resource_tags: vec![Tag::new("service.name", "theirs"), Tag::new("host", "h1")],
        })
        .unwrap();
        let t = s.get_trace_info("tr-a").unwrap();
        let tag = |k: &str| t.tags.iter().find(|x| x.key == k).map(|x| x.value.as_str());
        assert_eq!(
            (tag("service.name"), tag("host")),
            (Some("mine"), Some("h1"))
        );

        let run_id = s
            .create_run(crate::CreateRun {
                experiment_id: exp,
                ..Default::default()
            })
            .unwrap()
            .run_id;
        s.link_traces_to_run(&["tr-a".into()], &run_id).unwrap();
        s.link_traces_to_run(&["tr-a".into()], &run_id).unwrap();
        s.start_trace(&info("tr-b", exp, 7, "OK", "m")).unwrap();
        assert_eq!(
            ids(&s, exp, &format!("trace.run_id = '{run_id}'"), &[]),
            ["tr-a"]
        );
    }

    /// Deleting by time without a maximum count deletes every older trace.
    #[test]
    fn delete_by_time_without_a_count_deletes_all_older() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        for (id, t) in [("tr-1", 1), ("tr-2", 2), ("tr-3", 3)] {
            s.start_trace(&info(id, exp, t, "OK", "n")).unwrap();
        }
        let n = s
            .delete_traces(&DeleteTraces {
                experiment_id: exp,
                max_timestamp_millis: Some(2),
                max_traces: None,
                trace_ids: vec![],
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(ids(&s, exp, "", &[]), ["tr-3"]);
    }

    /// Times at the ends of the range a client may send neither overflow the duration nor break a
    /// search by end time.
    #[test]
    fn extreme_times_are_stored_and_searched() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        s.log_spans(&LogSpans {
            experiment_id: exp,
            spans: vec![span("tr-x", "01", None, i64::MIN + 1, i64::MAX)],
            resource_tags: vec![],
        })
        .unwrap();
        let t = s.get_trace_info("tr-x").unwrap();
        assert_eq!(t.execution_time_ms, Some(i64::MAX / 1_000_000));
        let mut long = info("tr-long", exp, 1_700_000_000_000, "OK", "n");
        long.execution_time_ms = Some(i64::MAX - 1);
        s.start_trace(&long).unwrap();
        s.start_trace(&info("tr-short", exp, 5, "OK", "n")).unwrap();
        assert_eq!(
            ids(&s, exp, "trace.end_time_ms > 1000", &["end_time_ms DESC"]),
            ["tr-long"]
        );
        // tr-x ends at -1 ms (started at i64::MIN ns, lasted as long as an i64 holds)
        assert_eq!(
            ids(&s, exp, "", &["end_time_ms ASC"]),
            ["tr-x", "tr-short", "tr-long"]
        );
    }
}
