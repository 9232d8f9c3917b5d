//! Candidates evaluated elsewhere ([`automl::TrialRunner`]): a worker that
//! builds [`automl::TrialData`] from the same table and options evaluates a
//! trial exactly as the search does, results survive JSON, a round holds as
//! many candidates as the runner has slots, and a worker's failure or a
//! result for other data is the candidate's failure, not the search's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use automl::{CandidateStatus, Event, Options, Trial, TrialData, TrialResult, TrialRunner, run};

fn dataset(name: &str) -> tabular::Table {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets")
        .join(name);
    tabular::read_path(&p).unwrap()
}

/// Evaluates trials as a worker would: its own `TrialData`, every trial and
/// result through JSON. Records the rounds it was given.
#[derive(Debug)]
struct JsonWorkers {
    slots: usize,
    data: TrialData,
    rounds: Mutex<Vec<Vec<usize>>>,
    /// Candidates (by id) whose worker "crashes".
    crash: Vec<usize>,
    /// Candidates (by id) whose worker answers with a truncated prediction list.
    truncate: Vec<usize>,
}

impl TrialRunner for JsonWorkers {
    fn slots(&self) -> usize {
        self.slots
    }
    fn run(
        &self,
        trials: &[Trial],
        _cancel: &dyn Fn() -> bool,
    ) -> Vec<Result<TrialResult, String>> {
        self.rounds
            .lock()
            .unwrap()
            .push(trials.iter().map(|t| t.id).collect());
        trials
            .iter()
            .map(|t| {
                let wire = serde_json::to_string(t).unwrap();
                let t: Trial = serde_json::from_str(&wire).unwrap();
                if self.crash.contains(&t.id) {
                    return Err("the worker exited with status 1".into());
                }
                let mut r = self.data.run(&t);
                if self.truncate.contains(&t.id) {
                    r.oof.pop();
                }
                let wire = serde_json::to_string(&r).unwrap();
                Ok(serde_json::from_str(&wire).unwrap())
            })
            .collect()
    }
}

fn opts(max: usize) -> Options {
    Options {
        max_candidates: max,
        time_budget: Duration::from_secs(300),
        ..Default::default()
    }
}

fn workers(t: &tabular::Table, target: &str, o: &Options, slots: usize) -> JsonWorkers {
    JsonWorkers {
        slots,
        data: TrialData::new(t, target, o).unwrap(),
        rounds: Mutex::new(Vec::new()),
        crash: Vec::new(),
        truncate: Vec::new(),
    }
}

/// (id, name, status, score) of every candidate, in the order reported.
fn candidates(
    t: &tabular::Table,
    target: &str,
    o: &Options,
) -> (Vec<(usize, String, CandidateStatus, f64)>, automl::Outcome) {
    let mut seen = Vec::new();
    let out = run(t, target, o, &mut |e| {
        if let Event::Candidate(c) = e {
            seen.push((c.id, c.name.clone(), c.status.clone(), c.score));
        }
    })
    .unwrap();
    (seen, out)
}

#[test]
fn a_worker_evaluates_a_candidate_exactly_as_the_search_does() {
    let t = dataset("penguins.csv");
    let here = opts(6);
    let (local, local_out) = candidates(&t, "species", &here);
    // one slot: the same candidates in the same order, each through a "worker"
    let w = Arc::new(workers(&t, "species", &here, 1));
    let there = Options {
        trials: Some(w.clone()),
        ..opts(6)
    };
    let (remote, remote_out) = candidates(&t, "species", &there);
    assert_eq!(local.len(), 6);
    assert_eq!(remote.len(), local.len());
    for (a, b) in local.iter().zip(&remote) {
        assert_eq!((a.0, &a.1, &a.2), (b.0, &b.1, &b.2));
        assert!(
            (a.3 - b.3).abs() < 1e-12,
            "candidate {} scored {} here and {} on a worker",
            a.0,
            a.3,
            b.3
        );
    }
    assert!((local_out.score - remote_out.score).abs() < 1e-12);
    assert_eq!(
        local_out.validation.pred, remote_out.validation.pred,
        "the out-of-fold predictions the ensemble and reports use are the worker's, unchanged"
    );
    let rounds = w.rounds.lock().unwrap();
    assert_eq!(
        rounds.len(),
        6,
        "one candidate per round with one slot: {rounds:?}"
    );
}

#[test]
fn rounds_hold_as_many_candidates_as_the_runner_has_slots() {
    let t = dataset("penguins.csv");
    let base = opts(10);
    let w = Arc::new(workers(&t, "species", &base, 4));
    let o = Options {
        trials: Some(w.clone()),
        ..opts(10)
    };
    let (seen, out) = candidates(&t, "species", &o);
    assert_eq!(seen.len(), 10);
    let ids: Vec<usize> = seen.iter().map(|c| c.0).collect();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>(), "ids stay in order");
    let rounds = w.rounds.lock().unwrap().clone();
    assert_eq!(
        rounds,
        vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10]],
        "four at a time, and the last round stops at max_candidates"
    );
    assert!(out.score.is_finite());
    assert!(
        seen.iter().filter(|c| c.2 == CandidateStatus::Done).count() >= 8,
        "{seen:?}"
    );
}

#[test]
fn a_failed_worker_or_a_result_for_other_data_fails_only_that_candidate() {
    let t = dataset("penguins.csv");
    let base = opts(6);
    let mut w = workers(&t, "species", &base, 3);
    w.crash = vec![2];
    w.truncate = vec![3];
    let o = Options {
        trials: Some(Arc::new(w)),
        ..opts(6)
    };
    let (seen, out) = candidates(&t, "species", &o);
    assert_eq!(seen.len(), 6);
    match &seen[1].2 {
        CandidateStatus::Failed(m) => assert!(m.contains("exited with status 1"), "{m}"),
        s => panic!("candidate 2 should have failed: {s:?}"),
    }
    match &seen[2].2 {
        CandidateStatus::Failed(m) => assert!(m.contains("predictions"), "{m}"),
        s => panic!("candidate 3 should have failed: {s:?}"),
    }
    assert!(seen[1].3.is_nan() && seen[2].3.is_nan());
    // the search goes on and ranks the others
    assert!(out.score.is_finite());
    assert!(
        out.leaderboard
            .iter()
            .filter(|c| c.status == CandidateStatus::Done)
            .all(|c| c.id != 2 && c.id != 3)
    );
}

#[test]
fn when_every_worker_fails_the_search_says_why() {
    let t = dataset("penguins.csv");
    let base = opts(4);
    let mut w = workers(&t, "species", &base, 2);
    w.crash = vec![1, 2, 3, 4];
    let o = Options {
        trials: Some(Arc::new(w)),
        ..opts(4)
    };
    let Err(e) = run(&t, "species", &o, &mut |_| {}) else {
        panic!("a search whose every candidate failed has no model");
    };
    let m = e.to_string();
    assert!(
        m.contains("all 4 candidates failed") && m.contains("exited with status 1"),
        "{m}"
    );
}

#[test]
fn trial_data_refuses_what_the_search_refuses() {
    let t = dataset("penguins.csv");
    let e = TrialData::new(&t, "no_such_column", &opts(3)).unwrap_err();
    assert!(e.to_string().contains("no_such_column"), "{e}");
}
