//! Debugger rules attached to an experiment: every run of it is watched
//! while it runs, whoever logs it — a plain `mlflow` client outside Atelier
//! included (SageMaker's Debugger only watches its own training jobs).
//!
//! Attach rules by setting the experiment tag [`RULES_TAG`] to a JSON list of
//! rule specs, e.g. `["LossNotDecreasing", "Overfit:patience=3"]`
//! (`mlflow.set_experiment_tag("atelier.debugger.rules", json.dumps([...]))`).
//! A watcher in every server process follows the experiment's RUNNING runs:
//! their new metric points feed a `debugger::Watch`, and each rule's result
//! is written to the run as the tag `atelier.debugger.<label>` (JSON:
//! status, message, trigger), so the Studio, the API and the client all
//! see it. A run outside Atelier cannot be stopped from here: StopTraining
//! is recorded, not acted on. A restarted process replays each run's
//! history; a result already recorded as IssuesFound is never rewritten.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use store::{MetadataStore, RunStatus, SearchExperiments, SearchRuns, Tag};

use crate::rules::RunRules;

/// The experiment tag that holds the rules.
pub const RULES_TAG: &str = "atelier.debugger.rules";
/// The prefix of the run tags that hold the results.
pub const RESULT_TAG: &str = "atelier.debugger.";

/// How often experiments and their running runs are looked at.
pub const EVERY: Duration = Duration::from_secs(2);

struct Watched {
    rules_watch: RunRules,
    /// The rules text it was built from (rebuilt when the tag changes).
    rules: String,
    /// The status recorded on the run, by label.
    recorded: HashMap<String, String>,
}

/// Parse an experiment's rules tag.
pub fn parse_rules_tag(text: &str) -> Result<Vec<debugger::RuleSpec>, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("{RULES_TAG} must be a JSON list of rules: {e}"))?;
    let list = v
        .as_array()
        .ok_or_else(|| format!("{RULES_TAG} must be a JSON list of rules"))?;
    crate::rules::parse_rules(list).map_err(|e| e.to_string())
}

/// The watcher: one thread per server process.
pub fn spawn(store: Arc<dyn MetadataStore>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("debugger-experiments".into())
        .spawn(move || {
            let mut runs: HashMap<String, Watched> = HashMap::new();
            let mut complained: HashMap<i64, String> = HashMap::new();
            loop {
                if let Err(e) = pass(store.as_ref(), &mut runs, &mut complained) {
                    tracing::warn!("the Debugger's experiment watcher: {e}");
                }
                std::thread::sleep(EVERY);
            }
        })
        .map(|_| ())
}

/// One look at every experiment with rules.
fn pass(
    st: &dyn MetadataStore,
    runs: &mut HashMap<String, Watched>,
    complained: &mut HashMap<i64, String>,
) -> store::Result<()> {
    let now = store::now_ms();
    let exps = st.search_experiments(&SearchExperiments {
        max_results: 1000,
        ..Default::default()
    })?;
    let mut seen = Vec::new();
    for e in exps.items {
        let Some(text) = e
            .tags
            .iter()
            .find(|t| t.key == RULES_TAG)
            .map(|t| t.value.clone())
        else {
            continue;
        };
        let specs = match parse_rules_tag(&text) {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => continue,
            Err(msg) => {
                if complained.get(&e.experiment_id) != Some(&msg) {
                    tracing::warn!(experiment = e.experiment_id, "{msg}");
                    complained.insert(e.experiment_id, msg);
                }
                continue;
            }
        };
        let running = st.search_runs(&SearchRuns {
            experiment_ids: vec![e.experiment_id],
            filter: "attributes.status = 'RUNNING'".into(),
            max_results: 1000,
            ..Default::default()
        })?;
        for run in running.items {
            let id = run.info.run_id.clone();
            seen.push(id.clone());
            let fresh = runs.get(&id).is_none_or(|w| w.rules != text);
            if fresh {
                let Ok(watch) =
                    debugger::Watch::new(specs.clone(), run.info.start_time.unwrap_or(now))
                else {
                    continue;
                };
                let recorded = run
                    .tags
                    .iter()
                    .filter_map(|t| {
                        t.key
                            .strip_prefix(RESULT_TAG)
                            .filter(|l| *l != "rules")
                            .map(|l| {
                                let v: Value =
                                    serde_json::from_str(&t.value).unwrap_or(Value::Null);
                                (
                                    l.to_string(),
                                    v["status"].as_str().unwrap_or("").to_string(),
                                )
                            })
                    })
                    .collect();
                runs.insert(
                    id.clone(),
                    Watched {
                        rules_watch: RunRules::new(watch),
                        rules: text.clone(),
                        recorded,
                    },
                );
            }
            if let Some(w) = runs.get_mut(&id) {
                feed(st, &id, w, now, false)?;
            }
        }
    }
    // runs that ended (or whose experiment lost its rules): a last look
    let gone: Vec<String> = runs
        .keys()
        .filter(|id| !seen.contains(id))
        .cloned()
        .collect();
    for id in gone {
        if let Some(mut w) = runs.remove(&id) {
            let ended = st
                .get_run(&id)
                .map(|r| r.info.status != RunStatus::Running)
                .unwrap_or(false);
            if ended {
                feed(st, &id, &mut w, now, true)?;
            }
        }
    }
    Ok(())
}

/// New points into the rules; changed results onto the run.
fn feed(
    st: &dyn MetadataStore,
    run_id: &str,
    w: &mut Watched,
    now: i64,
    finished: bool,
) -> store::Result<()> {
    let rr = &mut w.rules_watch;
    rr.observe_new(st, run_id, now, &mut Vec::new())?;
    if finished {
        rr.watch.finish(now);
    } else {
        rr.watch.tick(now);
    }
    let mut tags = Vec::new();
    for r in w.rules_watch.watch.results() {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        // written when the status changes; a firing once recorded stays
        match w.recorded.get(&r.label) {
            Some(old) if old == "IssuesFound" || *old == status => continue,
            _ => {}
        }
        let mut v = serde_json::json!({"rule": r.rule, "status": r.status, "message": r.message});
        if let Some(t) = &r.trigger {
            v["trigger"] = serde_json::to_value(t).unwrap_or(Value::Null);
        }
        if !r.actions.is_empty() {
            v["actions"] = serde_json::to_value(&r.actions).unwrap_or(Value::Null);
        }
        w.recorded.insert(r.label.clone(), status);
        tags.push(Tag::new(format!("{RESULT_TAG}{}", r.label), v.to_string()));
    }
    if !tags.is_empty() {
        st.log_batch(run_id, &[], &[], &tags)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_tags_must_be_json_lists_of_known_rules() {
        assert_eq!(
            parse_rules_tag(r#"["Overfit:patience=3"]"#).unwrap().len(),
            1
        );
        assert!(
            parse_rules_tag("Overfit")
                .unwrap_err()
                .contains("JSON list")
        );
        assert!(
            parse_rules_tag(r#"{"a": 1}"#)
                .unwrap_err()
                .contains("JSON list")
        );
        assert!(parse_rules_tag(r#"["Overfitt"]"#).is_err());
    }
}
