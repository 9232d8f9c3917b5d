//! Model cards, their append-only history and the per-model deploy rule
//! (migration 12). Every change is a compare-and-swap on the card's
//! `revision` inside the writer's immediate transaction, written together
//! with its history row, so two server processes on one database never
//! lose each other's change and the history matches the card.

use crate::db::{Conn, OptionalExtension, Row, params};

use crate::*;

const CARD_COLS: &str = "card_id, model_name, version, status, content, revision, created_ms, created_by, updated_ms, updated_by";

fn card_row(r: &Row) -> crate::db::Result<ModelCard> {
    Ok(ModelCard {
        card_id: r.get(0)?,
        model_name: r.get(1)?,
        version: r.get(2)?,
        status: r.get(3)?,
        content: r.get(4)?,
        revision: r.get(5)?,
        created_ms: r.get(6)?,
        created_by: r.get(7)?,
        updated_ms: r.get(8)?,
        updated_by: r.get(9)?,
    })
}

fn find(c: &Conn, model_name: &str, version: i64) -> Result<Option<ModelCard>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {CARD_COLS} FROM model_cards WHERE model_name = ?1 AND version = ?2"
    ))?
    .query_row(params![model_name, version], card_row)
    .optional()?)
}

fn get(c: &Conn, model_name: &str, version: i64) -> Result<ModelCard> {
    find(c, model_name, version)?.ok_or_else(|| {
        StoreError::NotFound(format!(
            "model version '{model_name}' v{version} has no model card yet; create one first"
        ))
    })
}

fn append(tx: &Conn, card: &ModelCard, at_ms: i64, change: &CardChange) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO model_card_history (card_id, revision, at_ms, principal, address, action, status, changes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        card.card_id,
        card.revision,
        at_ms,
        change.principal,
        change.address,
        change.action,
        card.status,
        change.changes
    ])?;
    Ok(())
}

fn version_exists(c: &Conn, model_name: &str, version: i64) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM model_versions WHERE name = ?1 AND version = ?2")?
            .query_row(params![model_name, version], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

fn create(
    tx: &Conn,
    model_name: &str,
    version: i64,
    status: &str,
    content: &str,
    change: &CardChange,
) -> Result<ModelCard> {
    if !version_exists(tx, model_name, version)? {
        return Err(StoreError::NotFound(format!(
            "no model version '{model_name}' v{version}; register it first"
        )));
    }
    if find(tx, model_name, version)?.is_some() {
        return Err(StoreError::AlreadyExists(format!(
            "model version '{model_name}' v{version} has a model card already; update it instead"
        )));
    }
    let now = now_ms();
    let card = ModelCard {
        card_id: uuid::Uuid::new_v4().simple().to_string(),
        model_name: model_name.to_string(),
        version,
        status: status.to_string(),
        content: content.to_string(),
        revision: 1,
        created_ms: now,
        created_by: change.principal.clone(),
        updated_ms: now,
        updated_by: change.principal.clone(),
    };
    tx.prepare_cached(&format!(
        "INSERT INTO model_cards ({CARD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        card.card_id,
        card.model_name,
        card.version,
        card.status,
        card.content,
        card.revision,
        card.created_ms,
        card.created_by,
        card.updated_ms,
        card.updated_by
    ])?;
    append(tx, &card, now, change)?;
    Ok(card)
}

fn update(
    tx: &Conn,
    model_name: &str,
    version: i64,
    expected_revision: i64,
    status: &str,
    content: &str,
    change: &CardChange,
) -> Result<ModelCard> {
    let mut card = get(tx, model_name, version)?;
    if card.revision != expected_revision {
        return Err(StoreError::InvalidState(format!(
            "the model card of '{model_name}' v{version} changed meanwhile (revision {} by {}, you edited revision {expected_revision}); reload it and apply your change again",
            card.revision, card.updated_by
        )));
    }
    let now = now_ms();
    card.status = status.to_string();
    card.content = content.to_string();
    card.revision += 1;
    card.updated_ms = now;
    card.updated_by = change.principal.clone();
    tx.prepare_cached(
        "UPDATE model_cards SET status = ?1, content = ?2, revision = ?3, updated_ms = ?4, updated_by = ?5
         WHERE card_id = ?6 AND revision = ?7",
    )?
    .execute(params![
        card.status,
        card.content,
        card.revision,
        card.updated_ms,
        card.updated_by,
        card.card_id,
        expected_revision
    ])?;
    append(tx, &card, now, change)?;
    Ok(card)
}

fn history(c: &Conn, card_id: &str) -> Result<Vec<CardHistoryEntry>> {
    let mut st = c.prepare_cached(
        "SELECT id, card_id, revision, at_ms, principal, address, action, status, changes
         FROM model_card_history WHERE card_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([card_id], |r| {
        Ok(CardHistoryEntry {
            id: r.get(0)?,
            card_id: r.get(1)?,
            revision: r.get(2)?,
            at_ms: r.get(3)?,
            principal: r.get(4)?,
            address: r.get(5)?,
            action: r.get(6)?,
            status: r.get(7)?,
            changes: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

fn list(c: &Conn) -> Result<Vec<ModelCard>> {
    let mut st = c.prepare_cached(
        "SELECT card_id, model_name, version, status, '', revision, created_ms, created_by, updated_ms, updated_by
         FROM model_cards ORDER BY model_name, version",
    )?;
    let rows = st.query_map([], card_row)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

fn requirement_row(r: &Row) -> crate::db::Result<CardRequirement> {
    Ok(CardRequirement {
        model_name: r.get(0)?,
        require_approved_card: r.get::<_, i64>(1)? != 0,
        updated_ms: r.get(2)?,
        updated_by: r.get(3)?,
    })
}

fn set_requirement(
    tx: &Conn,
    model_name: &str,
    required: bool,
    by: &str,
) -> Result<CardRequirement> {
    let exists = tx
        .prepare_cached("SELECT 1 FROM registered_models WHERE name = ?1")?
        .query_row([model_name], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound(format!(
            "no registered model '{model_name}'"
        )));
    }
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO model_card_requirements (model_name, require_approved_card, updated_ms, updated_by)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (model_name) DO UPDATE SET require_approved_card = ?2, updated_ms = ?3, updated_by = ?4",
    )?
    .execute(params![model_name, required as i64, now, by])?;
    Ok(CardRequirement {
        model_name: model_name.to_string(),
        require_approved_card: required,
        updated_ms: now,
        updated_by: by.to_string(),
    })
}

fn requirements(c: &Conn) -> Result<Vec<CardRequirement>> {
    let mut st = c.prepare_cached(
        "SELECT model_name, require_approved_card, updated_ms, updated_by FROM model_card_requirements ORDER BY model_name",
    )?;
    let rows = st.query_map([], requirement_row)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

fn refusal(c: &Conn, model_name: &str, version: i64) -> Result<Option<String>> {
    let required = c
        .prepare_cached(
            "SELECT require_approved_card FROM model_card_requirements WHERE model_name = ?1",
        )?
        .query_row([model_name], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0)
        != 0;
    if !required {
        return Ok(None);
    }
    let status: Option<String> = c
        .prepare_cached("SELECT status FROM model_cards WHERE model_name = ?1 AND version = ?2")?
        .query_row(params![model_name, version], |r| r.get(0))
        .optional()?;
    let card = format!("/models/{model_name}/card/{version}");
    Ok(match status.as_deref() {
        Some(CARD_APPROVED) => None,
        Some(s) => Some(format!(
            "model '{model_name}' requires an Approved model card before a version is deployed, and the card of v{version} is {s}: have it reviewed and approved (Studio {card}, or POST /api/atelier/model-cards/{model_name}/{version}/status), or turn the requirement off for the model"
        )),
        None => Some(format!(
            "model '{model_name}' requires an Approved model card before a version is deployed, and v{version} has no card: create one (Studio {card}, or POST /api/atelier/model-cards/{model_name}/{version}), have it approved, then deploy"
        )),
    })
}

fn field_sql(c: &Conn, f: &str) -> Result<String> {
    let (col, key) = f
        .split_once('.')
        .filter(|(c, k)| {
            (*c == "spec" || *c == "result")
                && !k.is_empty()
                && k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        })
        .ok_or_else(|| {
            StoreError::InvalidParameter(format!(
                "job field '{f}': use spec.<key> or result.<key> (letters, digits, '_')"
            ))
        })?;
    // The value as JSON text (a JSON string stays quoted, `true` stays
    // `true`), NULL when the key is absent. SQLite's `->` and PostgreSQL's
    // `json ->` both give exactly that; the column is TEXT, which PostgreSQL
    // must be told to read as `json` (kept as written, so nothing is reordered).
    Ok(if c.is_postgres() {
        format!(
            "CAST(CAST({} AS json) -> '{key}' AS TEXT)",
            pg_without_nul(col)
        )
    } else {
        format!("({col} -> '{key}')")
    })
}

/// The JSON text of `col` with every `\u0000` escape (a NUL character in a
/// string, as serde_json writes it) made `\ufffd`: PostgreSQL's JSON
/// operators refuse a document holding one ("unsupported Unicode escape
/// sequence"), where SQLite reads it. An escaped backslash followed by
/// `u0000` is text, not the escape, and is left alone.
fn pg_without_nul(col: &str) -> String {
    format!(
        r"CASE WHEN strpos({col}, '\u0000') = 0 THEN {col}
          ELSE regexp_replace({col}, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g') END"
    )
}

fn recent_by_name(c: &Conn, kind: &str, per_name: usize, fields: &[&str]) -> Result<Vec<JobBrief>> {
    let mut cols = String::new();
    for f in fields {
        cols.push_str(", ");
        cols.push_str(&field_sql(c, f)?);
    }
    let sql = format!(
        "SELECT id, name, status, error, created, ended{cols} FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY name ORDER BY created DESC, id DESC) AS rn
           FROM jobs WHERE kind = ?1) AS ranked
         WHERE rn <= ?2 ORDER BY name, created DESC, id DESC"
    );
    let mut st = c.prepare(&sql)?;
    let n = fields.len();
    let rows = st.query_map(params![kind, per_name as i64], |r| {
        let status: String = r.get(2)?;
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            let v: Option<String> = r.get(6 + i)?;
            values.push(v.filter(|v| v != "null"));
        }
        Ok(JobBrief {
            id: r.get(0)?,
            name: r.get(1)?,
            status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
            error: r.get(3)?,
            created_ms: r.get(4)?,
            ended_ms: r.get(5)?,
            fields: values,
        })
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

impl ModelCardStore for super::SqlStore {
    fn create_model_card(
        &self,
        model_name: &str,
        version: i64,
        status: &str,
        content: &str,
        change: &CardChange,
    ) -> Result<ModelCard> {
        self.write(|tx| create(tx, model_name, version, status, content, change))
    }
    fn get_model_card(&self, model_name: &str, version: i64) -> Result<ModelCard> {
        self.read(|c| get(c, model_name, version))
    }
    fn update_model_card(
        &self,
        model_name: &str,
        version: i64,
        expected_revision: i64,
        status: &str,
        content: &str,
        change: &CardChange,
    ) -> Result<ModelCard> {
        self.write(|tx| {
            update(
                tx,
                model_name,
                version,
                expected_revision,
                status,
                content,
                change,
            )
        })
    }
    fn model_card_history(&self, card_id: &str) -> Result<Vec<CardHistoryEntry>> {
        self.read(|c| history(c, card_id))
    }
    fn list_model_cards(&self) -> Result<Vec<ModelCard>> {
        self.read(list)
    }
    fn set_card_requirement(
        &self,
        model_name: &str,
        require_approved_card: bool,
        by: &str,
    ) -> Result<CardRequirement> {
        self.write(|tx| set_requirement(tx, model_name, require_approved_card, by))
    }
    fn card_requirements(&self) -> Result<Vec<CardRequirement>> {
        self.read(requirements)
    }
    fn deploy_refusal(&self, model_name: &str, version: i64) -> Result<Option<String>> {
        self.read(|c| refusal(c, model_name, version))
    }
    fn recent_jobs_by_name(
        &self,
        kind: &str,
        per_name: usize,
        fields: &[&str],
    ) -> Result<Vec<JobBrief>> {
        self.read(|c| recent_by_name(c, kind, per_name, fields))
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn store() -> (crate::scratch::Scratch, SqlStore) {
        let mut sc = crate::scratch::Scratch::new().expect("a scratch store");
        let s = sc.take();
        (sc, s)
    }

    fn version(s: &SqlStore, name: &str) -> i64 {
        let _ = s.create_registered_model(name, &[], "", "me");
        s.create_model_version(CreateModelVersion {
            name: name.into(),
            source: "mlflow-artifacts:/x/model".into(),
            ..Default::default()
        })
        .unwrap()
        .version
    }

    fn who(p: &str, action: &str) -> CardChange {
        CardChange {
            principal: p.into(),
            address: "127.0.0.1".into(),
            action: action.into(),
            changes: "{}".into(),
        }
    }

    #[test]
    fn cards_keep_an_append_only_history_and_refuse_lost_updates() {
        let (sc, s) = store();
        let v = version(&s, "churn");
        let err = s
            .create_model_card("churn", 9, "Draft", "{}", &who("ann", "create"))
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        let c = s
            .create_model_card("churn", v, "Draft", "{\"a\":1}", &who("ann", "create"))
            .unwrap();
        assert_eq!(c.revision, 1);
        assert!(matches!(
            s.create_model_card("churn", v, "Draft", "{}", &who("ann", "create")),
            Err(StoreError::AlreadyExists(_))
        ));
        let c2 = s
            .update_model_card(
                "churn",
                v,
                1,
                "PendingReview",
                "{\"a\":1}",
                &who("bob", "status"),
            )
            .unwrap();
        assert_eq!((c2.revision, c2.updated_by.as_str()), (2, "bob"));
        // a writer that read revision 1 does not overwrite revision 2
        let stale = s
            .update_model_card("churn", v, 1, "Draft", "{}", &who("eve", "update"))
            .unwrap_err();
        assert!(matches!(stale, StoreError::InvalidState(_)), "{stale}");
        let h = s.model_card_history(&c.card_id).unwrap();
        let seen: Vec<(&str, &str, i64)> = h
            .iter()
            .map(|e| (e.principal.as_str(), e.status.as_str(), e.revision))
            .collect();
        assert_eq!(seen, [("ann", "Draft", 1), ("bob", "PendingReview", 2)]);
        // the history cannot be rewritten, even with SQL
        let e = sc
            .raw_execute("DELETE FROM model_card_history")
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
        assert!(
            sc.raw_execute("UPDATE model_card_history SET principal = 'x'")
                .is_err()
        );
    }

    #[test]
    fn deploy_gate_follows_the_rule_and_the_card() {
        let (_d, s) = store();
        let v = version(&s, "churn");
        assert_eq!(s.deploy_refusal("churn", v).unwrap(), None);
        assert!(matches!(
            s.set_card_requirement("nope", true, "ann"),
            Err(StoreError::NotFound(_))
        ));
        s.set_card_requirement("churn", true, "ann").unwrap();
        let why = s.deploy_refusal("churn", v).unwrap().unwrap();
        assert!(why.contains("has no card"), "{why}");
        s.create_model_card("churn", v, "Draft", "{}", &who("ann", "create"))
            .unwrap();
        let why = s.deploy_refusal("churn", v).unwrap().unwrap();
        assert!(why.contains("is Draft"), "{why}");
        s.update_model_card("churn", v, 1, CARD_APPROVED, "{}", &who("ann", "status"))
            .unwrap();
        assert_eq!(s.deploy_refusal("churn", v).unwrap(), None);
        // the rule and the card follow a rename; a deleted version takes its card along
        s.rename_registered_model("churn", "attrition").unwrap();
        assert_eq!(
            s.get_model_card("attrition", v).unwrap().status,
            CARD_APPROVED
        );
        assert!(s.card_requirements().unwrap()[0].model_name == "attrition");
        s.delete_model_version("attrition", v).unwrap();
        assert!(matches!(
            s.get_model_card("attrition", v),
            Err(StoreError::NotFound(_))
        ));
        assert!(s.list_model_cards().unwrap().is_empty());
    }

    #[test]
    fn recent_jobs_by_name_picks_fields_without_whole_documents() {
        let (_d, s) = store();
        for i in 0..3 {
            let j = s
                .create_job("k", "a", &format!("{{\"model\":\"m{i}\"}}"))
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
            let _ = j;
        }
        s.create_job("k", "b", "{}").unwrap();
        s.create_job("other", "a", "{}").unwrap();
        let got = s
            .recent_jobs_by_name("k", 2, &["spec.model", "result.status"])
            .unwrap();
        let names: Vec<(&str, Option<&str>)> = got
            .iter()
            .map(|j| (j.name.as_str(), j.fields[0].as_deref()))
            .collect();
        assert_eq!(
            names,
            [("a", Some("\"m2\"")), ("a", Some("\"m1\"")), ("b", None)]
        );
        assert!(got.iter().all(|j| j.fields[1].is_none()));
        assert!(matches!(
            s.recent_jobs_by_name("k", 1, &["spec.x'); DROP TABLE jobs; --"]),
            Err(StoreError::InvalidParameter(_))
        ));
    }

    /// Each picked field is the JSON value as JSON text, whatever its type,
    /// on either backend (SQLite's `json_extract` once made `true` a `1`).
    #[test]
    fn recent_job_fields_are_json_values_of_every_type() {
        let (_d, s) = store();
        let spec = r#"{"flag": true, "off": false, "n": 3, "x": 1.5, "big": 12345678901234567890,
                       "s": "caf\u00e9 \"q\"", "obj": {"b": [1, {"c": null}], "a": "z"},
                       "nul": null, "arr": [3, 2]}"#;
        s.create_job("k", "a", spec).unwrap();
        let keys = [
            "flag", "off", "n", "x", "big", "s", "obj", "nul", "arr", "missing",
        ];
        let fields: Vec<String> = keys.iter().map(|k| format!("spec.{k}")).collect();
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let got = s.recent_jobs_by_name("k", 5, &refs).unwrap();
        assert_eq!(got.len(), 1);
        let values: Vec<Option<serde_json::Value>> = got[0]
            .fields
            .iter()
            .map(|f| f.as_deref().map(|t| serde_json::from_str(t).expect(t)))
            .collect();
        let whole: serde_json::Value = serde_json::from_str(spec).unwrap();
        let want: Vec<Option<serde_json::Value>> = keys
            .iter()
            .map(|k| Some(whole[*k].clone()).filter(|v| !v.is_null()))
            .collect();
        assert_eq!(values, want);
        // a string stays a JSON string, a number keeps its digits
        assert_eq!(got[0].fields[0].as_deref(), Some("true"));
        assert_eq!(got[0].fields[2].as_deref(), Some("3"));
        assert_eq!(got[0].fields[3].as_deref(), Some("1.5"));
        assert_eq!(got[0].fields[4].as_deref(), Some("12345678901234567890"));
        // the result document is read the same way; a job of another kind is not
        let j = s.create_job("k", "b", "{}").unwrap();
        s.update_job(
            &j.id,
            &JobUpdate {
                status: Some(JobStatus::Succeeded),
                result: Some(r#"{"status": "ok", "rows": 0}"#.into()),
                ..Default::default()
            },
        )
        .unwrap();
        let got = s
            .recent_jobs_by_name("k", 5, &["result.status", "result.rows"])
            .unwrap();
        let b: Vec<_> = got.iter().filter(|j| j.name == "b").collect();
        assert_eq!(b.len(), 1);
        assert_eq!(
            b[0].fields,
            [Some("\"ok\"".to_string()), Some("0".to_string())]
        );
        assert_eq!(b[0].status, JobStatus::Succeeded);
        assert!(b[0].ended_ms.is_some());
    }

    /// A NUL character anywhere in a job's JSON (serde_json writes it as
    /// `\u0000`) does not keep its fields from being read.
    #[test]
    fn recent_job_fields_read_documents_holding_a_nul_character() {
        let (sc, s) = store();
        let spec = serde_json::json!({
            "model": "models:/m/1",
            "input": "a\u{0}b\u{0}\u{0}",
            // a backslash, `u0000` as text, a backslash, a NUL
            "path": "C:\\u0000\\\u{0}",
        })
        .to_string();
        s.create_job("k", "a", &spec).unwrap();
        let got = s
            .recent_jobs_by_name("k", 1, &["spec.model", "spec.input", "spec.path"])
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].fields[0].as_deref(), Some("\"models:/m/1\""));
        let read = |i: usize| -> String {
            serde_json::from_str(got[0].fields[i].as_deref().unwrap()).unwrap()
        };
        // PostgreSQL text cannot hold a NUL: it reads as U+FFFD, the rest as written
        let nul = if sc.is_postgres() {
            "\u{fffd}"
        } else {
            "\u{0}"
        };
        assert_eq!(read(1), format!("a{nul}b{nul}{nul}"));
        assert_eq!(read(2), format!("C:\\u0000\\{nul}"));
    }
}
