//! MLflow 3 GenAI evaluation datasets and registered scorers in the SQL
//! store, SQLite or PostgreSQL (migration 14). Everything is read from and
//! written to the database in one transaction per call, so every server
//! process on the database sees the same datasets and scorers.
//!
//! Semantics follow MLflow's SQLAlchemy store: records are merged by the
//! SHA-256 of their inputs as canonical JSON (sorted keys); an upsert
//! recomputes the dataset's schema (field types), profile (record count)
//! and digest (first 8 hex digits of SHA-256 of `name:last_update_time`).

use std::collections::HashMap;

use crate::db::Val as SqlValue;
use crate::db::{Conn, OptionalExtension, Row, params, params_from_iter};
use base64::Engine;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use super::filter_sql::{
    Attr, Filterable, Kind, KvTable, Sortable, Where, filter_sql, order_sql, text,
};
use super::{
    CHUNK, decode_page_token, experiment_active, invalid, load_experiment, not_found, page,
    placeholders,
};
use crate::filter::{Clause, Entity, Op};
use crate::*;

const MLFLOW_USER: &str = "mlflow.user";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn digest(name: &str, at_ms: i64) -> String {
    sha256_hex(&format!("{name}:{at_ms}"))[..8].to_string()
}

fn dataset_not_found(id: &str) -> StoreError {
    not_found(format!("Evaluation dataset with id '{id}' not found"))
}

const DATASET_COLS: &str = "dataset_id, name, schema, profile, digest, created_time, last_update_time, created_by, last_updated_by";

fn dataset_row(r: &Row) -> crate::db::Result<EvalDataset> {
    Ok(EvalDataset {
        dataset_id: r.get(0)?,
        name: r.get(1)?,
        schema: r.get(2)?,
        profile: r.get(3)?,
        digest: r.get(4)?,
        created_time: r.get(5)?,
        last_update_time: r.get(6)?,
        created_by: r.get(7)?,
        last_updated_by: r.get(8)?,
        tags: Vec::new(),
        experiment_ids: Vec::new(),
    })
}

/// Fill in the tags and experiment links of `datasets`.
fn attach(c: &Conn, datasets: &mut [EvalDataset]) -> Result<()> {
    let ids: Vec<String> = datasets.iter().map(|d| d.dataset_id.clone()).collect();
    let mut tags: HashMap<String, Vec<Tag>> = HashMap::new();
    let mut exps: HashMap<String, Vec<i64>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let ph = placeholders(chunk.len());
        let mut st = c.prepare(&format!(
            "SELECT dataset_id, key, value FROM evaluation_dataset_tags WHERE dataset_id IN ({ph}) ORDER BY dataset_id, key"
        ))?;
        let rows = st.query_map(params_from_iter(chunk.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                Tag::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
            ))
        })?;
        for row in rows {
            let (id, t) = row?;
            tags.entry(id).or_default().push(t);
        }
        let mut st = c.prepare(&format!(
            "SELECT dataset_id, experiment_id FROM evaluation_dataset_experiments WHERE dataset_id IN ({ph}) ORDER BY dataset_id, experiment_id"
        ))?;
        let rows = st.query_map(params_from_iter(chunk.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (id, e) = row?;
            exps.entry(id).or_default().push(e);
        }
    }
    for d in datasets {
        d.tags = tags.remove(&d.dataset_id).unwrap_or_default();
        d.experiment_ids = exps.remove(&d.dataset_id).unwrap_or_default();
    }
    Ok(())
}

fn find_dataset(c: &Conn, id: &str) -> Result<Option<EvalDataset>> {
    let d = c
        .prepare_cached(&format!(
            "SELECT {DATASET_COLS} FROM evaluation_datasets WHERE dataset_id = ?"
        ))?
        .query_row([id], dataset_row)
        .optional()?;
    let Some(d) = d else { return Ok(None) };
    let mut one = [d];
    attach(c, &mut one)?;
    let [d] = one;
    Ok(Some(d))
}

fn load_dataset(c: &Conn, id: &str) -> Result<EvalDataset> {
    find_dataset(c, id)?.ok_or_else(|| dataset_not_found(id))
}

fn dataset_exists(c: &Conn, id: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM evaluation_datasets WHERE dataset_id = ?")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// Every id must name an experiment (active or deleted, as MLflow checks).
fn check_experiments(c: &Conn, ids: &[i64]) -> Result<()> {
    for id in ids {
        load_experiment(c, *id)?;
    }
    Ok(())
}

fn link(tx: &Conn, dataset_id: &str, experiment_ids: &[i64], at: i64) -> Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO evaluation_dataset_experiments (dataset_id, experiment_id, created_time) VALUES (?1, ?2, ?3)
         ON CONFLICT (dataset_id, experiment_id) DO NOTHING",
    )?;
    for e in experiment_ids {
        st.execute(params![dataset_id, e, at])?;
    }
    Ok(())
}

/// MLflow's type names for a JSON value in a dataset schema.
fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(_) => "float",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// The dataset schema after `records`, as MLflow computes it: new field
/// names get the type of their first value; existing ones are kept.
fn updated_schema(existing: Option<&str>, records: &[RecordInput]) -> Option<String> {
    if records.is_empty() && existing.is_none() {
        return None;
    }
    let mut schema: Map<String, Json> = existing
        .and_then(|s| serde_json::from_str::<Json>(s).ok())
        .and_then(|v| match v {
            Json::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_else(|| {
            let mut m = Map::new();
            for k in ["inputs", "outputs", "expectations"] {
                m.insert(k.into(), Json::Object(Map::new()));
            }
            m.insert("version".into(), Json::String("1.0".into()));
            m
        });
    fn add(schema: &mut Map<String, Json>, section: &str, fields: &Map<String, Json>) {
        let entry = schema
            .entry(section.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(sec) = entry {
            for (k, v) in fields {
                sec.entry(k.clone())
                    .or_insert_with(|| Json::String(type_name(v).into()));
            }
        }
    }
    for r in records {
        add(&mut schema, "inputs", &r.inputs);
        match &r.outputs {
            Some(Json::Object(o)) => add(&mut schema, "outputs", o),
            Some(other) => {
                let empty = match schema.get("outputs") {
                    None | Some(Json::Null) => true,
                    Some(Json::Object(m)) => m.is_empty(),
                    Some(Json::String(s)) => s.is_empty(),
                    Some(_) => false,
                };
                if empty && !other.is_null() {
                    schema.insert("outputs".into(), Json::String(type_name(other).into()));
                }
            }
            None => {}
        }
        if let Some(e) = &r.expectations {
            add(&mut schema, "expectations", e);
        }
    }
    Some(Json::Object(schema).to_string())
}

fn user_of(tags: Option<&Map<String, Json>>) -> Option<String> {
    match tags?.get(MLFLOW_USER)? {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

fn source_json(s: &RecordSource) -> Json {
    let mut m = Map::new();
    m.insert("source_type".into(), Json::String(s.source_type.clone()));
    m.insert("source_data".into(), Json::Object(s.source_data.clone()));
    Json::Object(m)
}

/// MLflow's `source_id`: the trace id of a TRACE source, else `source_data.source_id`.
fn source_id(s: &RecordSource) -> Option<String> {
    let key = if s.source_type == "TRACE" {
        "trace_id"
    } else {
        "source_id"
    };
    match s.source_data.get(key)? {
        Json::String(v) => Some(v.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

fn json_text(v: &Json) -> String {
    v.to_string()
}

fn parse_json(s: Option<String>) -> Option<Json> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

const RECORD_COLS: &str = "dataset_record_id, dataset_id, inputs, outputs, expectations, tags, source, source_id, source_type, created_time, last_update_time, created_by, last_updated_by";

fn record_row(r: &Row) -> crate::db::Result<EvalDatasetRecord> {
    Ok(EvalDatasetRecord {
        dataset_record_id: r.get(0)?,
        dataset_id: r.get(1)?,
        inputs: parse_json(r.get(2)?).unwrap_or_else(|| Json::Object(Map::new())),
        outputs: parse_json(r.get(3)?),
        expectations: parse_json(r.get(4)?),
        tags: parse_json(r.get(5)?).unwrap_or_else(|| Json::Object(Map::new())),
        source: parse_json(r.get(6)?),
        source_id: r.get(7)?,
        source_type: r.get(8)?,
        created_time: r.get(9)?,
        last_update_time: r.get(10)?,
        created_by: r.get(11)?,
        last_updated_by: r.get(12)?,
    })
}

fn record_cursor(created_time: i64, id: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{created_time}:{id}"))
}

fn parse_record_cursor(token: &str) -> Result<(i64, String)> {
    let bad = || {
        invalid(format!(
            "Invalid page token '{token}': pass the next_page_token of the previous page"
        ))
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    let (t, id) = s.split_once(':').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, id.to_string()))
}

const SCORER_COLS: &str = "s.experiment_id, s.scorer_name, v.scorer_version, v.serialized_scorer, v.creation_time, s.scorer_id";

fn scorer_row(r: &Row) -> crate::db::Result<ScorerVersion> {
    Ok(ScorerVersion {
        experiment_id: r.get(0)?,
        scorer_name: r.get(1)?,
        scorer_version: r.get(2)?,
        serialized_scorer: r.get(3)?,
        creation_time: r.get(4)?,
        scorer_id: r.get(5)?,
    })
}

fn scorer_not_found(name: &str, experiment_id: i64, version: Option<i64>) -> StoreError {
    match version {
        Some(v) => not_found(format!(
            "Scorer with name '{name}' and version {v} not found for experiment {experiment_id}."
        )),
        None => not_found(format!(
            "Scorer with name '{name}' not found for experiment {experiment_id}."
        )),
    }
}

fn scorer_id(c: &Conn, experiment_id: i64, name: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached(
        "SELECT scorer_id FROM scorers WHERE experiment_id = ?1 AND scorer_name = ?2",
    )?
    .query_row(params![experiment_id, name], |r| r.get(0))
    .optional()?)
}

/// Latest versions of the scorers of `experiment_ids`, by experiment then name.
fn latest_scorers(c: &Conn, experiment_ids: &[i64]) -> Result<Vec<ScorerVersion>> {
    let mut out = Vec::new();
    for chunk in experiment_ids.chunks(CHUNK) {
        let ph = placeholders(chunk.len());
        let mut st = c.prepare(&format!(
            "SELECT {SCORER_COLS} FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id
             WHERE s.experiment_id IN ({ph})
               AND v.scorer_version = (SELECT MAX(scorer_version) FROM scorer_versions WHERE scorer_id = s.scorer_id)"
        ))?;
        for row in st.query_map(params_from_iter(chunk.iter()), scorer_row)? {
            out.push(row?);
        }
    }
    out.sort_by(|a, b| (a.experiment_id, &a.scorer_name).cmp(&(b.experiment_id, &b.scorer_name)));
    Ok(out)
}

/// Set one tag of a dataset (a new value replaces the old one).
const PUT_TAG: &str =
    "INSERT INTO evaluation_dataset_tags (dataset_id, key, value) VALUES (?1, ?2, ?3)
     ON CONFLICT (dataset_id, key) DO UPDATE SET value = excluded.value";

const DATASET_ATTRS: &str =
    "'name', 'created_time', 'last_update_time', 'created_by', 'last_updated_by'";

const DATASET_FILTER: Filterable = Filterable {
    attrs: &[
        Attr {
            names: &["name"],
            col: "d.name",
            kind: Kind::Text,
        },
        Attr {
            names: &["created_by"],
            col: "d.created_by",
            kind: Kind::Text,
        },
        Attr {
            names: &["last_updated_by"],
            col: "d.last_updated_by",
            kind: Kind::Text,
        },
        Attr {
            names: &["created_time"],
            col: "d.created_time",
            kind: Kind::WholeNumber,
        },
        Attr {
            names: &["last_update_time"],
            col: "d.last_update_time",
            kind: Kind::WholeNumber,
        },
    ],
    tags: Some(KvTable {
        table: "evaluation_dataset_tags",
        id_cond: "kv.dataset_id = d.dataset_id",
        null_inclusive_ne: false,
    }),
    params: None,
    hook: Some(dataset_clause),
    unknown_attribute: |k| {
        format!("Invalid attribute key '{k}' specified. Valid keys are: {{{DATASET_ATTRS}}}")
    },
    unknown_entity: |c| {
        let prefix = match c.entity {
            Entity::Metric => "metrics",
            Entity::Param => "params",
            Entity::Dataset => "datasets",
            Entity::Tag | Entity::Attribute => "attributes",
        };
        format!(
            "Invalid identifier token '{prefix}' specified: dataset search supports the attributes {DATASET_ATTRS} and tags.<key>"
        )
    },
};

/// The dataset search's comparator rules (MLflow's): lists only on `name`, and only `IN`;
/// tags by `=`, `!=`, `LIKE` and `ILIKE`.
fn dataset_clause(c: &Clause, _: &mut Where) -> Result<bool> {
    let list = matches!(c.op, Op::In | Op::NotIn);
    match (c.entity, c.key.as_str()) {
        (Entity::Attribute, "created_by" | "last_updated_by") if list => Err(invalid(format!(
            "Invalid comparator '{}' for '{}': lists are only supported for 'name'",
            c.op.name(),
            c.key
        ))),
        (Entity::Attribute, "name") if c.op == Op::NotIn => {
            Err(invalid("Invalid comparator 'NOT IN' for 'name': use IN"))
        }
        (Entity::Tag, _) if !matches!(c.op, Op::Eq | Op::Ne | Op::Like | Op::ILike) => Err(
            invalid(format!("Invalid comparator for tag: {}", c.op.name())),
        ),
        _ => Ok(false),
    }
}

const DATASET_ORDER: Sortable = Sortable {
    attrs: &[
        (&["name"], "d.name"),
        (&["created_time"], "d.created_time"),
        (&["last_update_time"], "d.last_update_time"),
    ],
    any_entity: false,
    nulls_last: false,
    hook: None,
    unknown: |item, _| {
        format!(
            "Invalid order_by clause '{item}': order by 'name', 'created_time' or 'last_update_time', ASC or DESC"
        )
    },
};

impl GenaiStore for super::SqlStore {
    fn create_eval_dataset(
        &self,
        workspace: &str,
        name: &str,
        tags: &[Tag],
        experiment_ids: &[i64],
        created_by: Option<&str>,
    ) -> Result<EvalDataset> {
        self.write(|tx| {
            check_experiments(tx, experiment_ids)?;
            let id = format!("d-{}", uuid::Uuid::new_v4().simple());
            let now = now_ms();
            tx.execute(
                "INSERT INTO evaluation_datasets (dataset_id, name, digest, created_time, last_update_time, created_by, last_updated_by, workspace)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?5, ?6)",
                params![id, name, digest(name, now), now, created_by, workspace],
            )?;
            let mut st = tx.prepare_cached(PUT_TAG)?;
            for t in tags {
                st.execute(params![id, t.key, t.value])?;
            }
            link(tx, &id, experiment_ids, now)?;
            load_dataset(tx, &id)
        })
    }

    fn get_eval_dataset(&self, dataset_id: &str) -> Result<EvalDataset> {
        self.read(|c| load_dataset(c, dataset_id))
    }

    fn eval_dataset_workspace(&self, dataset_id: &str) -> Result<String> {
        self.read(|c| {
            c.prepare_cached("SELECT workspace FROM evaluation_datasets WHERE dataset_id = ?")?
                .query_row([dataset_id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| {
                    not_found(format!(
                        "Evaluation dataset with id '{dataset_id}' not found"
                    ))
                })
        })
    }

    fn delete_eval_dataset(&self, dataset_id: &str) -> Result<()> {
        self.write(|tx| {
            for table in [
                "evaluation_dataset_records",
                "evaluation_dataset_tags",
                "evaluation_dataset_experiments",
                "evaluation_datasets",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE dataset_id = ?"),
                    [dataset_id],
                )?;
            }
            Ok(())
        })
    }

    fn search_eval_datasets(&self, q: &SearchEvalDatasets) -> Result<Page<EvalDataset>> {
        let mut w = Where::default();
        if let Some(ws) = &q.workspace {
            w.push("d.workspace = ?", [SqlValue::Text(ws.clone())]);
        }
        if !q.experiment_ids.is_empty() {
            w.push(
                format!(
                    "d.dataset_id IN (SELECT dataset_id FROM evaluation_dataset_experiments WHERE experiment_id IN ({}))",
                    placeholders(q.experiment_ids.len())
                ),
                q.experiment_ids.iter().map(|e| SqlValue::Integer(*e)),
            );
        }
        filter_sql(&DATASET_FILTER, &q.filter, &mut w)?;
        let mut order = Vec::new();
        let mut order_args = Vec::new();
        let default_order = ["created_time DESC".to_string()];
        let items = if q.order_by.is_empty() {
            &default_order[..]
        } else {
            &q.order_by[..]
        };
        order_sql(&DATASET_ORDER, items, &mut order, &mut order_args)?;
        order.push("d.dataset_id DESC".into());
        let offset = decode_page_token(q.page_token.as_deref())?;
        let max = q.max_results.max(1);
        self.read(|c| {
            let sql = format!(
                "SELECT {} FROM evaluation_datasets d WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
                DATASET_COLS
                    .split(", ")
                    .map(|c| format!("d.{c}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                w.sql(),
                order.join(", "),
                max + 1,
                offset
            );
            let mut st = c.prepare(&sql)?;
            let mut items: Vec<EvalDataset> = st
                .query_map(
                    params_from_iter(w.args.iter().chain(order_args.iter())),
                    dataset_row,
                )?
                .collect::<crate::db::Result<_>>()?;
            let mut p = page(std::mem::take(&mut items), offset, max);
            attach(c, &mut p.items)?;
            Ok(p)
        })
    }

    fn set_eval_dataset_tags(
        &self,
        dataset_id: &str,
        set: &[Tag],
        remove: &[String],
    ) -> Result<()> {
        self.write(|tx| {
            if !dataset_exists(tx, dataset_id)? {
                return Err(not_found(format!(
                    "Could not find evaluation dataset with ID {dataset_id}"
                )));
            }
            let mut st = tx.prepare_cached(PUT_TAG)?;
            for t in set {
                st.execute(params![dataset_id, t.key, t.value])?;
            }
            let mut del = tx.prepare_cached(
                "DELETE FROM evaluation_dataset_tags WHERE dataset_id = ?1 AND key = ?2",
            )?;
            for k in remove {
                del.execute(params![dataset_id, k])?;
            }
            Ok(())
        })
    }

    fn delete_eval_dataset_tag(&self, dataset_id: &str, key: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM evaluation_dataset_tags WHERE dataset_id = ?1 AND key = ?2",
                params![dataset_id, key],
            )?;
            Ok(())
        })
    }

    fn upsert_eval_dataset_records(
        &self,
        dataset_id: &str,
        records: &[RecordInput],
    ) -> Result<UpsertCounts> {
        self.write(|tx| {
            let d = tx
                .prepare_cached("SELECT name, schema FROM evaluation_datasets WHERE dataset_id = ?")?
                .query_row([dataset_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .optional()?
                .ok_or_else(|| dataset_not_found(dataset_id))?;
            let (name, schema) = d;
            let now = now_ms();
            let mut counts = UpsertCounts::default();
            let mut updated_by: Option<String> = None;
            for r in records {
                // serde_json's maps are sorted, so this is the canonical form
                let inputs = Json::Object(r.inputs.clone()).to_string();
                let hash = sha256_hex(&inputs);
                let user = user_of(r.tags.as_ref());
                if user.is_some() {
                    updated_by = user.clone();
                }
                let existing = tx
                    .prepare_cached(
                        "SELECT dataset_record_id, expectations, tags FROM evaluation_dataset_records
                         WHERE dataset_id = ?1 AND input_hash = ?2",
                    )?
                    .query_row(params![dataset_id, hash], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, Option<String>>(1)?,
                            row.get::<_, Option<String>>(2)?,
                        ))
                    })
                    .optional()?;
                match existing {
                    Some((record_id, old_exp, old_tags)) => {
                        let merge = |old: Option<String>, new: &Option<Map<String, Json>>| {
                            let mut m = match parse_json(old) {
                                Some(Json::Object(m)) => Some(m),
                                _ => None,
                            };
                            if let Some(new) = new.as_ref().filter(|n| !n.is_empty()) {
                                let base = m.get_or_insert_with(Map::new);
                                for (k, v) in new {
                                    base.insert(k.clone(), v.clone());
                                }
                            }
                            m.map(|m| json_text(&Json::Object(m)))
                        };
                        let expectations = merge(old_exp, &r.expectations);
                        let tags = merge(old_tags, &r.tags);
                        let mut sql = String::from(
                            "UPDATE evaluation_dataset_records SET expectations = ?1, tags = ?2, last_update_time = ?3, last_updated_by = COALESCE(?4, last_updated_by)",
                        );
                        let mut args: Vec<SqlValue> = vec![
                            expectations.map_or(SqlValue::Null, SqlValue::Text),
                            tags.map_or(SqlValue::Null, SqlValue::Text),
                            SqlValue::Integer(now),
                            user.clone().map_or(SqlValue::Null, SqlValue::Text),
                        ];
                        if let Some(out) = &r.outputs {
                            sql.push_str(", outputs = ?5");
                            args.push(if out.is_null() {
                                SqlValue::Null
                            } else {
                                SqlValue::Text(json_text(out))
                            });
                        }
                        sql.push_str(&format!(" WHERE dataset_record_id = ?{}", args.len() + 1));
                        args.push(SqlValue::Text(record_id));
                        tx.execute(&sql, params_from_iter(args.iter()))?;
                        counts.updated += 1;
                    }
                    None => {
                        let outputs = match &r.outputs {
                            None => Some("{}".to_string()),
                            Some(Json::Null) => None,
                            Some(v) => Some(json_text(v)),
                        };
                        let tags = r
                            .tags
                            .clone()
                            .map(|t| json_text(&Json::Object(t)))
                            .unwrap_or_else(|| "{}".into());
                        let id = format!("dr-{}", uuid::Uuid::new_v4().simple());
                        tx.prepare_cached(&format!(
                            "INSERT INTO evaluation_dataset_records ({RECORD_COLS}, input_hash)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?11, ?12)"
                        ))?
                        .execute(params![
                            id,
                            dataset_id,
                            inputs,
                            outputs,
                            r.expectations.clone().map(|e| json_text(&Json::Object(e))),
                            tags,
                            r.source.as_ref().map(|s| json_text(&source_json(s))),
                            r.source.as_ref().and_then(source_id),
                            r.source.as_ref().map(|s| s.source_type.clone()),
                            now,
                            user,
                            hash,
                        ])?;
                        counts.inserted += 1;
                    }
                }
            }
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM evaluation_dataset_records WHERE dataset_id = ?",
                [dataset_id],
                |r| r.get(0),
            )?;
            let schema = updated_schema(schema.as_deref(), records);
            let profile = (n > 0).then(|| format!("{{\"num_records\": {n}}}"));
            tx.execute(
                "UPDATE evaluation_datasets SET last_update_time = ?1, last_updated_by = ?2, digest = ?3,
                   schema = COALESCE(?4, schema), profile = COALESCE(?5, profile)
                 WHERE dataset_id = ?6",
                params![now, updated_by, digest(&name, now), schema, profile, dataset_id],
            )?;
            Ok(counts)
        })
    }

    fn eval_dataset_records(
        &self,
        dataset_id: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<EvalDatasetRecord>> {
        let cursor = match page_token.filter(|t| !t.is_empty()) {
            Some(t) => Some(parse_record_cursor(t)?),
            None => None,
        };
        let max = max_results.max(1);
        self.read(|c| {
            if !dataset_exists(c, dataset_id)? {
                return Err(dataset_not_found(dataset_id));
            }
            let mut args: Vec<SqlValue> = vec![text(dataset_id)];
            let mut cond = String::new();
            if let Some((t, id)) = &cursor {
                cond = " AND (created_time > ?2 OR (created_time = ?2 AND dataset_record_id > ?3))"
                    .into();
                args.push(SqlValue::Integer(*t));
                args.push(text(id));
            }
            let mut st = c.prepare(&format!(
                "SELECT {RECORD_COLS} FROM evaluation_dataset_records WHERE dataset_id = ?1{cond}
                 ORDER BY created_time, dataset_record_id LIMIT {}",
                max + 1
            ))?;
            let mut items: Vec<EvalDatasetRecord> = st
                .query_map(params_from_iter(args.iter()), record_row)?
                .collect::<crate::db::Result<_>>()?;
            let next = if items.len() > max {
                items.truncate(max);
                items
                    .last()
                    .map(|r| record_cursor(r.created_time, &r.dataset_record_id))
            } else {
                None
            };
            Ok(Page {
                items,
                next_page_token: next,
            })
        })
    }

    fn delete_eval_dataset_records(
        &self,
        dataset_id: &str,
        record_ids: &[String],
    ) -> Result<usize> {
        self.write(|tx| {
            if !dataset_exists(tx, dataset_id)? {
                return Err(dataset_not_found(dataset_id));
            }
            let mut deleted = 0;
            for chunk in record_ids.chunks(CHUNK) {
                let mut args: Vec<SqlValue> = vec![text(dataset_id)];
                args.extend(chunk.iter().map(|s| text(s)));
                deleted += tx.execute(
                    &format!(
                        "DELETE FROM evaluation_dataset_records WHERE dataset_id = ? AND dataset_record_id IN ({})",
                        placeholders(chunk.len())
                    ),
                    params_from_iter(args.iter()),
                )?;
            }
            if deleted > 0 {
                let n: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM evaluation_dataset_records WHERE dataset_id = ?",
                    [dataset_id],
                    |r| r.get(0),
                )?;
                let profile = (n > 0).then(|| format!("{{\"num_records\": {n}}}"));
                tx.execute(
                    "UPDATE evaluation_datasets SET profile = ?1 WHERE dataset_id = ?2",
                    params![profile, dataset_id],
                )?;
            }
            Ok(deleted)
        })
    }

    fn eval_dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<i64>> {
        self.read(|c| Ok(load_dataset(c, dataset_id)?.experiment_ids))
    }

    fn add_eval_dataset_to_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[i64],
    ) -> Result<EvalDataset> {
        self.write(|tx| {
            if !dataset_exists(tx, dataset_id)? {
                return Err(not_found(format!("Dataset '{dataset_id}' not found")));
            }
            check_experiments(tx, experiment_ids)?;
            let now = now_ms();
            link(tx, dataset_id, experiment_ids, now)?;
            tx.execute(
                "UPDATE evaluation_datasets SET last_update_time = ?1 WHERE dataset_id = ?2",
                params![now, dataset_id],
            )?;
            load_dataset(tx, dataset_id)
        })
    }

    fn remove_eval_dataset_from_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[i64],
    ) -> Result<EvalDataset> {
        self.write(|tx| {
            if !dataset_exists(tx, dataset_id)? {
                return Err(not_found(format!("Dataset '{dataset_id}' not found")));
            }
            let mut removed = 0;
            for e in experiment_ids {
                removed += tx.execute(
                    "DELETE FROM evaluation_dataset_experiments WHERE dataset_id = ?1 AND experiment_id = ?2",
                    params![dataset_id, e],
                )?;
            }
            if removed > 0 {
                tx.execute(
                    "UPDATE evaluation_datasets SET last_update_time = ?1 WHERE dataset_id = ?2",
                    params![now_ms(), dataset_id],
                )?;
            }
            load_dataset(tx, dataset_id)
        })
    }

    fn register_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        serialized_scorer: &str,
    ) -> Result<ScorerVersion> {
        self.write(|tx| {
            experiment_active(tx, experiment_id)?;
            let id = match scorer_id(tx, experiment_id, name)? {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    tx.execute(
                        "INSERT INTO scorers (scorer_id, experiment_id, scorer_name) VALUES (?1, ?2, ?3)",
                        params![id, experiment_id, name],
                    )?;
                    id
                }
            };
            let version: i64 = tx.query_row(
                "SELECT COALESCE(MAX(scorer_version), 0) + 1 FROM scorer_versions WHERE scorer_id = ?",
                [&id],
                |r| r.get(0),
            )?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO scorer_versions (scorer_id, scorer_version, serialized_scorer, creation_time) VALUES (?1, ?2, ?3, ?4)",
                params![id, version, serialized_scorer, now],
            )?;
            Ok(ScorerVersion {
                experiment_id,
                scorer_name: name.to_string(),
                scorer_version: version,
                serialized_scorer: serialized_scorer.to_string(),
                creation_time: now,
                scorer_id: id,
            })
        })
    }

    fn list_scorers(&self, experiment_id: i64) -> Result<Vec<ScorerVersion>> {
        self.read(|c| {
            experiment_active(c, experiment_id)?;
            latest_scorers(c, &[experiment_id])
        })
    }

    fn list_scorers_across(&self, experiment_ids: Option<&[i64]>) -> Result<Vec<ScorerVersion>> {
        self.read(|c| {
            let active: Vec<i64> = match experiment_ids {
                None => c
                    .prepare("SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'active'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<crate::db::Result<_>>()?,
                Some(ids) => {
                    let mut out = Vec::new();
                    for chunk in ids.chunks(CHUNK) {
                        let mut st = c.prepare(&format!(
                            "SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'active' AND experiment_id IN ({})",
                            placeholders(chunk.len())
                        ))?;
                        for id in st.query_map(params_from_iter(chunk.iter()), |r| r.get(0))? {
                            out.push(id?);
                        }
                    }
                    out
                }
            };
            latest_scorers(c, &active)
        })
    }

    fn list_scorer_versions(&self, experiment_id: i64, name: &str) -> Result<Vec<ScorerVersion>> {
        self.read(|c| {
            experiment_active(c, experiment_id)?;
            let id = scorer_id(c, experiment_id, name)?
                .ok_or_else(|| scorer_not_found(name, experiment_id, None))?;
            let mut st = c.prepare_cached(&format!(
                "SELECT {SCORER_COLS} FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id
                 WHERE s.scorer_id = ? ORDER BY v.scorer_version"
            ))?;
            let out = st
                .query_map([id], scorer_row)?
                .collect::<crate::db::Result<_>>()?;
            Ok(out)
        })
    }

    fn get_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<ScorerVersion> {
        self.read(|c| {
            experiment_active(c, experiment_id)?;
            let id = scorer_id(c, experiment_id, name)?
                .ok_or_else(|| scorer_not_found(name, experiment_id, None))?;
            let found = match version {
                Some(v) => c
                    .prepare_cached(&format!(
                        "SELECT {SCORER_COLS} FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id
                         WHERE s.scorer_id = ?1 AND v.scorer_version = ?2"
                    ))?
                    .query_row(params![id, v], scorer_row)
                    .optional()?,
                None => c
                    .prepare_cached(&format!(
                        "SELECT {SCORER_COLS} FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id
                         WHERE s.scorer_id = ?1 ORDER BY v.scorer_version DESC LIMIT 1"
                    ))?
                    .query_row(params![id], scorer_row)
                    .optional()?,
            };
            found.ok_or_else(|| scorer_not_found(name, experiment_id, version))
        })
    }

    fn delete_scorer(&self, experiment_id: i64, name: &str, version: Option<i64>) -> Result<()> {
        self.write(|tx| {
            experiment_active(tx, experiment_id)?;
            let id = scorer_id(tx, experiment_id, name)?
                .ok_or_else(|| scorer_not_found(name, experiment_id, None))?;
            match version {
                Some(v) => {
                    let n = tx.execute(
                        "DELETE FROM scorer_versions WHERE scorer_id = ?1 AND scorer_version = ?2",
                        params![id, v],
                    )?;
                    if n == 0 {
                        return Err(scorer_not_found(name, experiment_id, Some(v)));
                    }
                }
                None => {
                    tx.execute("DELETE FROM scorer_versions WHERE scorer_id = ?", [&id])?;
                    tx.execute("DELETE FROM scorers WHERE scorer_id = ?", [&id])?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MetadataStore, SqlStore};

    fn store() -> (crate::scratch::Scratch, SqlStore) {
        let mut sc = crate::scratch::Scratch::new().expect("a scratch store");
        let s = sc.take();
        (sc, s)
    }

    fn rec(inputs: Json, expectations: Option<Json>) -> RecordInput {
        RecordInput {
            inputs: inputs.as_object().unwrap().clone(),
            expectations: expectations.map(|e| e.as_object().unwrap().clone()),
            ..Default::default()
        }
    }

    #[test]
    fn records_merge_by_inputs_whatever_the_key_order() {
        let (_d, s) = store();
        let ds = s
            .create_eval_dataset("default", "qa", &[], &[0], None)
            .unwrap();
        // the digest hashes the update time in ms
        std::thread::sleep(std::time::Duration::from_millis(3));
        let a = serde_json::json!({"q": "x", "ctx": 1});
        let b = serde_json::json!({"ctx": 1, "q": "x"});
        let c = s
            .upsert_eval_dataset_records(
                &ds.dataset_id,
                &[
                    rec(a, Some(serde_json::json!({"y": 1}))),
                    rec(b, Some(serde_json::json!({"z": 2}))),
                ],
            )
            .unwrap();
        assert_eq!((c.inserted, c.updated), (1, 1));
        let p = s.eval_dataset_records(&ds.dataset_id, 10, None).unwrap();
        assert_eq!(p.items.len(), 1);
        assert_eq!(
            p.items[0].expectations,
            Some(serde_json::json!({"y": 1, "z": 2}))
        );
        let got = s.get_eval_dataset(&ds.dataset_id).unwrap();
        assert_eq!(got.profile.as_deref(), Some("{\"num_records\": 1}"));
        assert_ne!(got.digest, ds.digest);
        let schema: Json = serde_json::from_str(got.schema.as_deref().unwrap()).unwrap();
        assert_eq!(schema["inputs"]["ctx"], "integer");
        assert_eq!(schema["expectations"]["z"], "integer");
    }

    #[test]
    fn record_pages_follow_the_cursor() {
        let (_d, s) = store();
        let ds = s
            .create_eval_dataset("default", "p", &[], &[], None)
            .unwrap();
        let recs: Vec<RecordInput> = (0..5)
            .map(|i| rec(serde_json::json!({"i": i}), None))
            .collect();
        s.upsert_eval_dataset_records(&ds.dataset_id, &recs)
            .unwrap();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let p = s
                .eval_dataset_records(&ds.dataset_id, 2, token.as_deref())
                .unwrap();
            seen.extend(p.items.into_iter().map(|r| r.dataset_record_id));
            match p.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5);
    }

    #[test]
    fn search_filters_tags_attributes_and_pages() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        let mut ids = Vec::new();
        for (i, env) in ["prod", "dev", "prod"].iter().enumerate() {
            let d = s
                .create_eval_dataset(
                    "default",
                    &format!("ds-{i}"),
                    &[Tag::new("env", *env)],
                    if i == 1 {
                        &[]
                    } else {
                        std::slice::from_ref(&exp)
                    },
                    Some(if i == 0 { "ana" } else { "bo" }),
                )
                .unwrap();
            ids.push(d.dataset_id);
        }
        let search = |filter: &str, order: &[&str], exps: Vec<i64>| {
            s.search_eval_datasets(&SearchEvalDatasets {
                experiment_ids: exps,
                filter: filter.into(),
                max_results: 10,
                order_by: order.iter().map(|o| o.to_string()).collect(),
                page_token: None,
                workspace: None,
            })
            .map(|p| p.items.into_iter().map(|d| d.name).collect::<Vec<_>>())
        };
        assert_eq!(
            search("tags.env = 'prod'", &["name"], vec![]).unwrap(),
            ["ds-0", "ds-2"]
        );
        assert_eq!(search("tags.env != 'prod'", &[], vec![]).unwrap(), ["ds-1"]);
        assert_eq!(
            search("name IN ('ds-1', 'ds-2')", &["name DESC"], vec![]).unwrap(),
            ["ds-2", "ds-1"]
        );
        assert_eq!(search("created_by = 'ana'", &[], vec![]).unwrap(), ["ds-0"]);
        assert_eq!(
            search("", &["name ASC"], vec![exp]).unwrap(),
            ["ds-0", "ds-2"]
        );
        assert_eq!(
            search("name ILIKE 'DS-%' AND created_time > 0", &["name"], vec![]).unwrap(),
            ["ds-0", "ds-1", "ds-2"]
        );
        for bad in [
            "digest = 'x'",
            "metrics.a > 1",
            "tags.env > 'a'",
            "created_time > 1.5",
        ] {
            assert!(
                matches!(
                    search(bad, &[], vec![]),
                    Err(StoreError::InvalidParameter(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            search("", &["digest"], vec![]),
            Err(StoreError::InvalidParameter(_))
        ));
        let first = s
            .search_eval_datasets(&SearchEvalDatasets {
                max_results: 2,
                order_by: vec!["name".into()],
                ..Default::default()
            })
            .unwrap();
        let rest = s
            .search_eval_datasets(&SearchEvalDatasets {
                max_results: 2,
                order_by: vec!["name".into()],
                page_token: first.next_page_token.clone(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(first.items.len() + rest.items.len(), 3);
        assert!(rest.next_page_token.is_none());
    }

    #[test]
    fn scorer_versions_count_up_and_delete() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        for i in 1..=3 {
            let v = s
                .register_scorer(exp, "judge", &format!("{{\"v\": {i}}}"))
                .unwrap();
            assert_eq!(v.scorer_version, i);
        }
        assert_eq!(s.get_scorer(exp, "judge", None).unwrap().scorer_version, 3);
        s.delete_scorer(exp, "judge", Some(3)).unwrap();
        assert_eq!(s.list_scorers(exp).unwrap()[0].scorer_version, 2);
        assert!(matches!(
            s.get_scorer(exp, "judge", Some(3)),
            Err(StoreError::NotFound(_))
        ));
        s.delete_scorer(exp, "judge", None).unwrap();
        assert!(s.list_scorers(exp).unwrap().is_empty());
        s.delete_experiment(exp).unwrap();
        assert!(matches!(
            s.register_scorer(exp, "judge", "{}"),
            Err(StoreError::InvalidParameter(_))
        ));
    }

    /// Setting a tag again replaces its value; linking a dataset to an experiment it is already
    /// linked to changes nothing.
    #[test]
    fn tags_replace_and_links_do_not_repeat() {
        let (_d, s) = store();
        let exp = s.create_experiment("e", None, &[]).unwrap();
        let ds = s
            .create_eval_dataset(
                "default",
                "t",
                &[Tag::new("env", "dev"), Tag::new("env", "prod")],
                &[exp],
                None,
            )
            .unwrap();
        assert_eq!(ds.tags, [Tag::new("env", "prod")]);
        s.set_eval_dataset_tags(
            &ds.dataset_id,
            &[Tag::new("env", "staging"), Tag::new("team", "a")],
            &[],
        )
        .unwrap();
        let got = s
            .add_eval_dataset_to_experiments(&ds.dataset_id, &[exp, exp])
            .unwrap();
        assert_eq!(
            got.tags,
            [Tag::new("env", "staging"), Tag::new("team", "a")]
        );
        assert_eq!(got.experiment_ids, [exp]);
        assert_eq!(
            s.eval_dataset_experiment_ids(&ds.dataset_id).unwrap(),
            [exp]
        );
    }
}
