//! The Debugger over one run: a `debugger::Watch` and a cursor over the
//! metric points the run has written, shared by jobs' own rules
//! ([`crate::runner`]) and rules attached to experiments
//! ([`crate::experiments`]).

use serde_json::Value;
use store::MetadataStore;

/// Rule specs as a job spec or an experiment tag gives them: the text form
/// (`"Overfit:patience=3"`) or the JSON form (`{"name": "Overfit", …}`).
pub fn parse_rules(values: &[Value]) -> Result<Vec<debugger::RuleSpec>, debugger::SpecError> {
    values
        .iter()
        .map(|r| match r {
            Value::String(t) => debugger::RuleSpec::parse(t),
            other => debugger::RuleSpec::from_json(other),
        })
        .collect()
}

/// Rules watching one run's metrics.
pub struct RunRules {
    pub watch: debugger::Watch,
    /// The last metric point read (`MetadataStore::metric_points_after`).
    cursor: i64,
}

impl RunRules {
    /// From the run's first point (a re-attached worker or a restarted
    /// process replays the whole history).
    pub fn new(watch: debugger::Watch) -> RunRules {
        RunRules { watch, cursor: 0 }
    }

    /// Feed the points the run wrote since the last call; the results that
    /// fired go into `fired`. On a store error the points read so far stay
    /// fed and the error is returned.
    pub fn observe_new(
        &mut self,
        st: &dyn MetadataStore,
        run_id: &str,
        now_ms: i64,
        fired: &mut Vec<debugger::RuleResult>,
    ) -> store::Result<()> {
        loop {
            let (points, next) = st.metric_points_after(run_id, self.cursor, 10_000)?;
            if points.is_empty() {
                return Ok(());
            }
            self.cursor = next;
            let pts: Vec<debugger::Point> = points
                .into_iter()
                .map(|m| debugger::Point::new(m.key, m.value, m.step, m.timestamp))
                .collect();
            fired.extend(self.watch.observe(&pts, now_ms));
        }
    }
}
