//! A model card's content (SageMaker's sections, as JSON), its statuses and
//! transitions, edits, and what lineage fills in.

use serde_json::{Map, Value, json};
use store::{MetadataStore, StoreError};

/// SageMaker's `ModelCardStatus` values.
pub const DRAFT: &str = "Draft";
pub const PENDING_REVIEW: &str = "PendingReview";
pub const APPROVED: &str = store::CARD_APPROVED;
pub const ARCHIVED: &str = "Archived";
pub const STATUSES: [&str; 4] = [DRAFT, PENDING_REVIEW, APPROVED, ARCHIVED];

/// SageMaker's risk ratings.
pub const RISK_RATINGS: [&str; 4] = ["High", "Medium", "Low", "Unknown"];

/// The longest text a field takes.
pub const MAX_FIELD_CHARS: usize = 10_000;

/// The fields people write, by section (everything else is filled from lineage).
pub const EDITABLE: &[(&str, &[&str])] = &[
    ("model_overview", &["model_description"]),
    (
        "intended_uses",
        &[
            "purpose_of_model",
            "intended_uses",
            "factors_affecting_model_efficiency",
            "risk_rating",
            "explanations_for_risk_rating",
        ],
    ),
    (
        "business_details",
        &[
            "business_problem",
            "business_stakeholders",
            "line_of_business",
        ],
    ),
    (
        "training_details",
        &["objective_function", "training_observations"],
    ),
    (
        "additional_information",
        &["ethical_considerations", "caveats_and_recommendations"],
    ),
];

/// Why a transition is refused, or `Ok` when `from → to` is allowed. `Ok(true)`
/// when it needs the admin role.
pub fn transition(from: &str, to: &str, comment: &str) -> Result<bool, String> {
    if !STATUSES.contains(&to) {
        return Err(format!(
            "status '{to}' is not a model card status; use one of {}",
            STATUSES.join(", ")
        ));
    }
    if from == to {
        return Err(format!("the card is {from} already"));
    }
    match (from, to) {
        (DRAFT, PENDING_REVIEW) => Ok(false),
        (PENDING_REVIEW, APPROVED) => Ok(true),
        (PENDING_REVIEW, DRAFT) if comment.trim().is_empty() => {
            Err("sending a card back to Draft asks for changes: say which in 'comment'".into())
        }
        (PENDING_REVIEW, DRAFT) => Ok(false),
        (APPROVED, ARCHIVED) => Ok(false),
        (ARCHIVED, _) => Err("the card is Archived: it no longer changes".into()),
        _ => Err(format!(
            "a {from} card cannot become {to}: cards go Draft → PendingReview → Approved → Archived, and back from PendingReview to Draft when changes are requested{}",
            match from {
                DRAFT => "; submit it for review (PendingReview) first",
                APPROVED =>
                    "; an Approved card can only be Archived (a new version gets a new card)",
                _ => "",
            }
        )),
    }
}

/// Apply an edit (`{"section": {"field": "text"}}`) to `content`; returns the
/// changes (`[{field, from, to}]`), or why the edit is refused.
pub fn apply_edit(content: &mut Value, edit: &Value) -> Result<Vec<Value>, String> {
    let allowed = || {
        EDITABLE
            .iter()
            .flat_map(|(s, fs)| fs.iter().map(move |f| format!("{s}.{f}")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(sections) = edit.as_object() else {
        return Err(format!(
            "'content' must be an object of sections, e.g. {{\"intended_uses\": {{\"risk_rating\": \"Low\"}}}}; editable fields: {}",
            allowed()
        ));
    };
    let mut changes = Vec::new();
    for (section, fields) in sections {
        let Some((_, names)) = EDITABLE.iter().find(|(s, _)| s == section) else {
            return Err(format!(
                "'{section}' is not a section people edit; editable fields: {}",
                allowed()
            ));
        };
        let Some(fields) = fields.as_object() else {
            return Err(format!(
                "'{section}' must be an object of fields ({})",
                names.join(", ")
            ));
        };
        for (field, value) in fields {
            if !names.contains(&field.as_str()) {
                return Err(format!(
                    "'{section}.{field}' is not an editable field; {section} takes {}",
                    names.join(", ")
                ));
            }
            let Some(text) = value.as_str() else {
                return Err(format!("'{section}.{field}' must be text"));
            };
            if text.chars().count() > MAX_FIELD_CHARS {
                return Err(format!(
                    "'{section}.{field}' is longer than {MAX_FIELD_CHARS} characters; shorten it"
                ));
            }
            if field == "risk_rating" && !RISK_RATINGS.contains(&text) {
                return Err(format!(
                    "risk_rating '{text}' is not one of {}",
                    RISK_RATINGS.join(", ")
                ));
            }
            let slot = &mut content[section.as_str()][field.as_str()];
            let old = slot.as_str().unwrap_or("").to_string();
            if old != text {
                changes
                    .push(json!({"field": format!("{section}.{field}"), "from": old, "to": text}));
                *slot = json!(text);
            }
        }
    }
    Ok(changes)
}

/// A new card's content: the editable fields empty (risk `Unknown`), the
/// rest filled from the version's lineage.
pub fn from_lineage(s: &dyn MetadataStore, name: &str, version: i64) -> Result<Value, StoreError> {
    let mv = s.get_model_version(name, version)?;
    let tag = |k: &str| mv.tags.iter().find(|t| t.key == k).map(|t| t.value.clone());
    // the lineage is read only from the model's own project: a version's
    // run id and tags are the caller's to set, and may name another's
    let home = s.registered_model_workspace(name).ok();
    let ours = |ws: Option<&str>| ws.is_some() && ws == home.as_deref();
    let run = if mv.run_id.is_empty() || !ours(s.run_workspace(&mv.run_id).ok().as_deref()) {
        None
    } else {
        s.get_run(&mv.run_id).ok()
    };
    let run_tag = |k: &str| {
        run.as_ref()
            .and_then(|r| r.tags.iter().find(|t| t.key == k).map(|t| t.value.clone()))
    };
    let job_id = tag("atelier.job_id").or_else(|| run_tag("atelier.job_id"));
    let job = job_id
        .as_deref()
        .and_then(|id| s.get_job(id).ok())
        .filter(|j| ours(Some(&j.workspace)));
    let result: Value = job
        .as_ref()
        .and_then(|j| serde_json::from_str(&j.result).ok())
        .unwrap_or(Value::Null);
    let mut datasets: Vec<String> = Vec::new();
    if let Some(d) = tag("atelier.dataset") {
        datasets.push(d);
    }
    if let Some(r) = &run {
        for d in &r.dataset_inputs {
            if !datasets.contains(&d.dataset.name) {
                datasets.push(d.dataset.name.clone());
            }
        }
    }
    let pairs = |items: Vec<(String, Value)>| -> Vec<Value> {
        items
            .into_iter()
            .take(100)
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect()
    };
    let (params, metrics) = match &run {
        Some(r) => (
            pairs(
                r.params
                    .iter()
                    .map(|p| (p.key.clone(), json!(p.value)))
                    .collect(),
            ),
            pairs(
                r.metrics
                    .iter()
                    .filter(|m| m.value.is_finite())
                    .map(|m| (m.key.clone(), json!(m.value)))
                    .collect(),
            ),
        ),
        None => (vec![], vec![]),
    };
    let objective = match (
        result["metric"].as_str(),
        result["higher_is_better"].as_bool(),
    ) {
        (Some(m), Some(true)) => format!("maximise {m} on the validation folds"),
        (Some(m), _) => format!("minimise {m} on the validation folds"),
        _ => String::new(),
    };
    let evaluation = evaluation_from_report(&result, job.as_ref(), &datasets);
    Ok(json!({
        "model_overview": {
            "model_name": name,
            "model_version": version,
            "model_description": mv.description,
            "model_creator": mv.user_id,
            "model_artifact": [mv.source],
            "algorithm_type": result["algorithm"].as_str().map(str::to_string).or_else(|| run_tag("atelier.algorithm")),
            "problem_type": result["problem"],
        },
        "intended_uses": {
            "purpose_of_model": "",
            "intended_uses": "",
            "factors_affecting_model_efficiency": "",
            "risk_rating": "Unknown",
            "explanations_for_risk_rating": "",
        },
        "business_details": {
            "business_problem": "",
            "business_stakeholders": "",
            "line_of_business": "",
        },
        "training_details": {
            "objective_function": objective,
            "training_observations": "",
            "training_job_details": {
                "run_id": if mv.run_id.is_empty() { Value::Null } else { json!(mv.run_id) },
                "run_name": run.as_ref().map(|r| r.info.run_name.clone()),
                "experiment_id": run.as_ref().map(|r| r.info.experiment_id.to_string()),
                "job_id": job_id,
                "job_kind": job.as_ref().map(|j| j.kind.clone()),
                "job_status": job.as_ref().map(|j| j.status.as_str()),
                "training_datasets": datasets,
                "hyper_parameters": params,
                "training_metrics": metrics,
            },
        },
        "evaluation_details": evaluation,
        "additional_information": {
            "ethical_considerations": "",
            "caveats_and_recommendations": "",
        },
    }))
}

/// SageMaker's `evaluation_details` from an Autopilot job's result: its
/// model-quality report, the validation scheme and the best model's scores.
fn evaluation_from_report(result: &Value, job: Option<&store::Job>, datasets: &[String]) -> Value {
    let Some(report) = result["reports"]["model_quality"].as_str() else {
        return json!([]);
    };
    let best = result["leaderboard"]
        .as_array()
        .and_then(|l| l.first())
        .cloned()
        .unwrap_or(Value::Null);
    let mut data: Vec<Value> = Vec::new();
    if let (Some(m), Some(v)) = (result["metric"].as_str(), result["score"].as_f64()) {
        data.push(json!({"name": m, "type": "number", "value": v}));
    }
    if let Some(ms) = best["metrics"].as_object() {
        for (k, v) in ms {
            if Some(k.as_str()) != result["metric"].as_str()
                && let Some(x) = v.as_f64()
            {
                data.push(json!({"name": k, "type": "number", "value": x}));
            }
        }
    }
    json!([{
        "name": "Autopilot model-quality report",
        "evaluation_observation": result["validation"].as_str().map(|v| format!("out-of-fold predictions of {v}")),
        "evaluation_job": job.map(|j| j.id.clone()),
        "report": report,
        "datasets": datasets,
        "metric_groups": [{"name": "validation", "metric_data": data}],
    }])
}

/// A card's content as stored; a card whose JSON is unreadable shows as empty.
pub fn parse_content(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_sagemaker_statuses_with_changes_requested() {
        assert_eq!(transition(DRAFT, PENDING_REVIEW, ""), Ok(false));
        assert_eq!(transition(PENDING_REVIEW, APPROVED, ""), Ok(true));
        assert_eq!(transition(PENDING_REVIEW, DRAFT, "add risks"), Ok(false));
        assert!(
            transition(PENDING_REVIEW, DRAFT, " ")
                .unwrap_err()
                .contains("comment")
        );
        assert_eq!(transition(APPROVED, ARCHIVED, ""), Ok(false));
        assert!(
            transition(DRAFT, APPROVED, "")
                .unwrap_err()
                .contains("PendingReview")
        );
        assert!(
            transition(APPROVED, DRAFT, "")
                .unwrap_err()
                .contains("only be Archived")
        );
        assert!(
            transition(ARCHIVED, DRAFT, "")
                .unwrap_err()
                .contains("Archived")
        );
        assert!(
            transition(DRAFT, "Done", "")
                .unwrap_err()
                .contains("Draft, PendingReview")
        );
        assert!(
            transition(DRAFT, DRAFT, "")
                .unwrap_err()
                .contains("already")
        );
    }

    #[test]
    fn edits_touch_only_editable_fields_and_report_what_changed() {
        let mut c = json!({"intended_uses": {"risk_rating": "Unknown"}});
        let ch = apply_edit(
            &mut c,
            &json!({"intended_uses": {"risk_rating": "Low", "purpose_of_model": "churn"}}),
        )
        .unwrap();
        assert_eq!(c["intended_uses"]["risk_rating"], "Low");
        assert_eq!(ch.len(), 2);
        assert!(ch.contains(
            &json!({"field": "intended_uses.risk_rating", "from": "Unknown", "to": "Low"})
        ));
        // the same value again is no change
        assert!(
            apply_edit(&mut c, &json!({"intended_uses": {"risk_rating": "Low"}}))
                .unwrap()
                .is_empty()
        );
        let err = |e: Value| apply_edit(&mut c.clone(), &e).unwrap_err();
        assert!(
            err(json!({"intended_uses": {"risk_rating": "Huge"}}))
                .contains("High, Medium, Low, Unknown")
        );
        assert!(err(json!({"evaluation_details": {}})).contains("not a section people edit"));
        assert!(err(json!({"intended_uses": {"owner": "x"}})).contains("takes purpose_of_model"));
        assert!(err(json!({"intended_uses": {"purpose_of_model": 3}})).contains("must be text"));
        assert!(err(json!("x")).contains("must be an object"));
        let long = "x".repeat(MAX_FIELD_CHARS + 1);
        assert!(err(json!({"intended_uses": {"purpose_of_model": long}})).contains("shorten"));
    }
}
