//! HTTP, under `/api/atelier`:
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/dashboard` | every registered model in one answer (see [`crate::dashboard`]) |
//! | GET | `/model-cards/{model}/{version}` | the card, its history, the model's deploy rule |
//! | POST | `/model-cards/{model}/{version}` | create it (filled from lineage; optional `content` edits) |
//! | PATCH | `/model-cards/{model}/{version}` | edit a Draft: `{"content": {section: {field: text}}, "revision"?}` |
//! | POST | `/model-cards/{model}/{version}/status` | `{"status", "comment"?, "revision"?}` |
//! | GET, PUT | `/model-card-requirements/{model}` | the rule `{"require_approved_card": bool}` (PUT: admin) |
//!
//! `revision`, when given, is the card's revision the change was made on: a
//! card changed meanwhile (by anyone, in any process) refuses it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::Extensions;
use axum::{Extension, Json};
use bytes::Bytes;
use serde_json::{Value, json};
use server::Identity;
use server::Role;
use server::atelier_api::blocking;
use server::error::{ApiError, ApiResult, ErrorCode};
use server::routes::{Access, Routes};
use server::workspace::{Ws, model_in};
use store::{CardChange, MetadataStore, ModelCard};

use crate::card;

#[derive(Clone)]
pub struct ModelCards {
    pub store: Arc<dyn MetadataStore>,
    /// This process's endpoints, for request counts on the dashboard.
    pub serving: Option<serving::Serving>,
}

/// Reading needs a signed-in identity; cards need the editor role (approving
/// one, the admin role); the deploy rule the admin role.
pub fn router(m: ModelCards) -> Routes {
    use Access::{Admin, Read, Write};
    const C: &str = "/api/atelier/model-cards/{model}/{version}";
    Routes::new()
        .get("/api/atelier/dashboard", Read, dashboard)
        .get(C, Read, get_card)
        .post(C, Write, create_card)
        .patch(C, Write, edit_card)
        .post(&format!("{C}/status"), Write, set_status)
        .get(
            "/api/atelier/model-card-requirements/{model}",
            Read,
            get_rule,
        )
        .put(
            "/api/atelier/model-card-requirements/{model}",
            Admin,
            put_rule,
        )
        .with_state(m)
}

/// Who is asking and from where (the socket's peer; "unknown" without one).
fn caller(ext: &Extensions) -> (String, String) {
    let who = ext
        .get::<Identity>()
        .map_or_else(|| "anonymous".to_string(), |i| i.name.clone());
    let addr = ext
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    (who, addr)
}

/// The project the request works in.
fn ws_of(ext: &Extensions) -> String {
    ext.get::<Ws>()
        .map_or_else(|| store::DEFAULT_WORKSPACE.to_string(), |w| w.0.clone())
}

fn role(ext: &Extensions) -> Role {
    ext.get::<Identity>().map_or(Role::Viewer, |i| i.role)
}

fn card_path(p: Result<Path<(String, String)>, PathRejection>) -> ApiResult<(String, i64)> {
    let Path((model, version)) = p.map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
    let v: i64 = version.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::invalid(format!(
            "version '{version}' is not a version number; use /api/atelier/model-cards/<model>/<version>, e.g. /api/atelier/model-cards/{model}/1"
        ))
    })?;
    Ok((model, v))
}

fn body(b: &[u8]) -> ApiResult<Value> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    server::atelier_api::body_json(b)
}

fn only_keys(v: &Value, keys: &[&str]) -> ApiResult<()> {
    if let Some(o) = v.as_object() {
        for k in o.keys() {
            if !keys.contains(&k.as_str()) {
                return Err(ApiError::invalid(format!(
                    "unknown field '{k}'; this call takes {}",
                    keys.join(", ")
                )));
            }
        }
    }
    Ok(())
}

fn revision_of(v: &Value, card: &ModelCard) -> ApiResult<i64> {
    match &v["revision"] {
        Value::Null => Ok(card.revision),
        r => r.as_i64().ok_or_else(|| {
            ApiError::invalid(format!(
                "'revision' must be the card's revision number you edited (it is {} now)",
                card.revision
            ))
        }),
    }
}

/// A card as the API answers it: [`card_json`] with its model's deploy rule.
fn card_with_rule(s: &dyn MetadataStore, c: &ModelCard, model: &str) -> ApiResult<Value> {
    let mut v = card_json(s, c)?;
    v["requirement"] = rule_json(s, model)?;
    Ok(v)
}

fn card_json(s: &dyn MetadataStore, c: &ModelCard) -> ApiResult<Value> {
    let history: Vec<Value> = s
        .model_card_history(&c.card_id)?
        .into_iter()
        .map(|h| {
            json!({
                "revision": h.revision,
                "at_ms": h.at_ms,
                "principal": h.principal,
                "address": h.address,
                "action": h.action,
                "status": h.status,
                "changes": serde_json::from_str::<Value>(&h.changes).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(json!({
        "model_name": c.model_name,
        "version": c.version,
        "status": c.status,
        "revision": c.revision,
        "content": card::parse_content(&c.content),
        "created_ms": c.created_ms,
        "created_by": c.created_by,
        "updated_ms": c.updated_ms,
        "updated_by": c.updated_by,
        "history": history,
    }))
}

fn rule_json(s: &dyn MetadataStore, model: &str) -> ApiResult<Value> {
    let r = s
        .card_requirements()?
        .into_iter()
        .find(|r| r.model_name == model);
    Ok(match r {
        Some(r) => json!({
            "model_name": model,
            "require_approved_card": r.require_approved_card,
            "updated_ms": r.updated_ms,
            "updated_by": r.updated_by,
        }),
        None => json!({"model_name": model, "require_approved_card": false}),
    })
}

async fn dashboard(
    State(m): State<ModelCards>,
    Extension(ws): Extension<Ws>,
) -> ApiResult<Json<Value>> {
    let serving = m.serving.clone();
    let out = blocking(move || {
        crate::dashboard::build(m.store.as_ref(), serving.as_ref(), &ws.0).map_err(ApiError::from)
    })
    .await?;
    Ok(Json(out))
}

async fn get_card(
    State(m): State<ModelCards>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let (model, version) = card_path(p)?;
    let out = blocking(move || {
        let s = m.store.as_ref();
        model_in(s, &ws.0, &model)?;
        // an unknown version is a different 404 from a version without a card
        s.get_model_version(&model, version)?;
        let rule = rule_json(s, &model)?;
        let c = s.get_model_card(&model, version)?;
        let mut v = card_json(s, &c)?;
        v["requirement"] = rule;
        Ok(json!({ "model_card": v }))
    })
    .await?;
    Ok(Json(out))
}

async fn create_card(
    State(m): State<ModelCards>,
    ext: Extensions,
    p: Result<Path<(String, String)>, PathRejection>,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    let (model, version) = card_path(p)?;
    let ws = ws_of(&ext);
    let req = body(&b)?;
    only_keys(&req, &["content"])?;
    let (who, addr) = caller(&ext);
    let out = blocking(move || {
        let s = m.store.as_ref();
        model_in(s, &ws, &model)?;
        let mut content = card::from_lineage(s, &model, version)?;
        let mut changes = Vec::new();
        if !req["content"].is_null() {
            changes = card::apply_edit(&mut content, &req["content"]).map_err(ApiError::invalid)?;
        }
        let c = s.create_model_card(
            &model,
            version,
            card::DRAFT,
            &content.to_string(),
            &CardChange {
                principal: who,
                address: addr,
                action: "create".into(),
                changes: json!({"status": card::DRAFT, "fields": changes}).to_string(),
            },
        )?;
        Ok(json!({ "model_card": card_with_rule(s, &c, &model)? }))
    })
    .await?;
    Ok(Json(out))
}

async fn edit_card(
    State(m): State<ModelCards>,
    ext: Extensions,
    p: Result<Path<(String, String)>, PathRejection>,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    let (model, version) = card_path(p)?;
    let ws = ws_of(&ext);
    let req = body(&b)?;
    only_keys(&req, &["content", "revision"])?;
    if req["content"].is_null() {
        return Err(ApiError::invalid(
            "give the fields to change in 'content', e.g. {\"content\": {\"intended_uses\": {\"risk_rating\": \"Low\"}}}",
        ));
    }
    let (who, addr) = caller(&ext);
    let out = blocking(move || {
        let s = m.store.as_ref();
        model_in(s, &ws, &model)?;
        let c = s.get_model_card(&model, version)?;
        let revision = revision_of(&req, &c)?;
        if c.status != card::DRAFT {
            return Err(ApiError::new(
                ErrorCode::InvalidState,
                if c.status == card::ARCHIVED {
                    "the card is Archived: its content no longer changes".to_string()
                } else {
                    format!(
                        "the card is {}: only a Draft card's content changes{}",
                        c.status,
                        if c.status == card::PENDING_REVIEW {
                            "; a reviewer can send it back to Draft (status Draft with a comment)"
                        } else {
                            "; register a new version for a new card"
                        }
                    )
                },
            ));
        }
        let mut content = card::parse_content(&c.content);
        let changes = card::apply_edit(&mut content, &req["content"]).map_err(ApiError::invalid)?;
        if changes.is_empty() {
            return Ok(json!({ "model_card": card_with_rule(s, &c, &model)?, "changed": false }));
        }
        let c = s.update_model_card(
            &model,
            version,
            revision,
            &c.status,
            &content.to_string(),
            &CardChange {
                principal: who,
                address: addr,
                action: "update".into(),
                changes: json!({"fields": changes}).to_string(),
            },
        )?;
        Ok(json!({ "model_card": card_with_rule(s, &c, &model)?, "changed": true }))
    })
    .await?;
    Ok(Json(out))
}

async fn set_status(
    State(m): State<ModelCards>,
    ext: Extensions,
    p: Result<Path<(String, String)>, PathRejection>,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    let (model, version) = card_path(p)?;
    let ws = ws_of(&ext);
    let req = body(&b)?;
    only_keys(&req, &["status", "comment", "revision"])?;
    let Some(to) = req["status"].as_str().map(str::to_string) else {
        return Err(ApiError::invalid(format!(
            "give the new 'status', one of {}",
            card::STATUSES.join(", ")
        )));
    };
    let comment = match &req["comment"] {
        Value::Null => String::new(),
        Value::String(s) if s.chars().count() <= card::MAX_FIELD_CHARS => s.clone(),
        Value::String(_) => {
            return Err(ApiError::invalid(format!(
                "'comment' is longer than {} characters",
                card::MAX_FIELD_CHARS
            )));
        }
        _ => return Err(ApiError::invalid("'comment' must be text")),
    };
    let (who, addr) = caller(&ext);
    let role = role(&ext);
    let out = blocking(move || {
        let s = m.store.as_ref();
        model_in(s, &ws, &model)?;
        let c = s.get_model_card(&model, version)?;
        let revision = revision_of(&req, &c)?;
        let needs_admin = card::transition(&c.status, &to, &comment)
            .map_err(|e| ApiError::new(ErrorCode::InvalidState, e))?;
        if needs_admin && role < Role::Admin {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "approving a model card needs the admin role; '{who}' has the {} role: ask an admin to review it",
                    role.as_str()
                ),
            ));
        }
        let mut change = json!({"field": "status", "from": c.status, "to": to});
        if !comment.is_empty() {
            change["comment"] = json!(comment);
        }
        let c = s.update_model_card(
            &model,
            version,
            revision,
            &to,
            &c.content,
            &CardChange {
                principal: who,
                address: addr,
                action: "status".into(),
                changes: change.to_string(),
            },
        )?;
        Ok(json!({ "model_card": card_with_rule(s, &c, &model)? }))
    })
    .await?;
    Ok(Json(out))
}

fn model_of(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    let Path(n) = p.map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
    Ok(n)
}

async fn get_rule(
    State(m): State<ModelCards>,
    Extension(ws): Extension<Ws>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let model = model_of(p)?;
    let out = blocking(move || {
        model_in(m.store.as_ref(), &ws.0, &model)?;
        rule_json(m.store.as_ref(), &model)
    })
    .await?;
    Ok(Json(json!({ "requirement": out })))
}

async fn put_rule(
    State(m): State<ModelCards>,
    ext: Extensions,
    p: Result<Path<String>, PathRejection>,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    let model = model_of(p)?;
    let ws = ws_of(&ext);
    let req = body(&b)?;
    only_keys(&req, &["require_approved_card"])?;
    let Some(on) = req["require_approved_card"].as_bool() else {
        return Err(ApiError::invalid(
            "give {\"require_approved_card\": true} or false",
        ));
    };
    let (who, _) = caller(&ext);
    let out = blocking(move || {
        model_in(m.store.as_ref(), &ws, &model)?;
        m.store.set_card_requirement(&model, on, &who)?;
        rule_json(m.store.as_ref(), &model)
    })
    .await?;
    Ok(Json(json!({ "requirement": out })))
}
