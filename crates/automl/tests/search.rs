use std::time::{Duration, Instant};

use automl::{CandidateStatus, Event, Options, StopReason, run};

fn table(csv: &str) -> tabular::Table {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.csv");
    std::fs::write(&p, csv).unwrap();
    tabular::read_path(&p).unwrap()
}

/// A dataset of the repository's `datasets/` folder.
fn dataset(name: &str) -> tabular::Table {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets")
        .join(name);
    assert!(p.exists(), "dataset missing: {}", p.display());
    tabular::read_path(&p).unwrap()
}

#[test]
fn finds_a_model_reports_every_candidate_and_ranks_them() {
    let t = dataset("penguins.csv");
    let mut seen = Vec::new();
    let opts = Options {
        max_candidates: 6,
        time_budget: Duration::from_secs(60),
        ..Default::default()
    };
    let out = run(&t, "species", &opts, &mut |e| {
        if let Event::Candidate(c) = e {
            seen.push(c.id)
        }
    })
    .unwrap();
    assert_eq!(seen.len(), 6, "every candidate is reported");
    assert_eq!(out.leaderboard.len(), 6);
    assert_eq!(out.stop_reason, StopReason::MaxCandidates { max: 6 });
    assert_eq!(out.stop_reason.kind(), "max_candidates");
    assert!(
        out.stop_reason
            .describe(out.metric)
            .contains("maximum number of candidates (6)")
    );
    // 274 rows: the cross-validation is repeated
    assert!(
        out.validation.describe.contains("repeated 2 times"),
        "{}",
        out.validation.describe
    );
    let done: Vec<f64> = out
        .leaderboard
        .iter()
        .filter(|c| c.status == CandidateStatus::Done)
        .map(|c| c.score)
        .collect();
    assert!(
        done.windows(2).all(|w| w[0] >= w[1]),
        "ranked best first: {done:?}"
    );
    assert!(out.score >= 0.95, "penguins accuracy {}", out.score);
    // six candidates take seconds of the minute: the final model fits each
    // stochastic member with BAG_SEEDS seeds, averaged within its weight
    let chosen: Vec<&automl::Candidate> = match &out.ensemble {
        Some(w) => w
            .iter()
            .filter_map(|(id, _)| out.leaderboard.iter().find(|c| c.id == *id))
            .collect(),
        None => vec![&out.leaderboard[0]],
    };
    let bagged = chosen.iter().filter(|c| automl::is_stochastic(c)).count();
    assert!(bagged > 0, "the ensemble has a forest or a network");
    let fits = match &out.pipeline.model {
        learn::Model::Ensemble { members } => {
            let total: f64 = members.iter().map(|m| m.weight).sum();
            assert!((total - 1.0).abs() < 1e-9, "weights add up to 1: {total}");
            members.len()
        }
        _ => 1,
    };
    assert_eq!(fits, chosen.len() + bagged * (automl::BAG_SEEDS - 1));
    assert!(
        out.pipeline
            .metadata
            .algorithm
            .contains(&format!("{} seeds", automl::BAG_SEEDS)),
        "{}",
        out.pipeline.metadata.algorithm
    );
    let pred = out.pipeline.predict(&t).unwrap();
    assert_eq!(pred.classes, vec!["Adelie", "Chinstrap", "Gentoo"]);
    assert!(out.leaderboard.iter().all(|c| c.model_bytes > 100));
    // the reports' validation predictions: one probability row per scored row,
    // scoring what the leaderboard says
    let v = &out.validation;
    assert_eq!(v.outputs, 3);
    assert_eq!(v.pred.len(), v.y.len() * 3);
    let correct =
        v.y.iter()
            .zip(v.pred.chunks(3))
            .filter(|(y, p)| {
                let arg = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
                arg as f64 == **y
            })
            .count();
    let acc = correct as f64 / v.y.len() as f64;
    assert!((acc - out.score).abs() < 1e-9, "{acc} vs {}", out.score);
    // loss curves of the first fold: gbm per iteration (fixed tree counts for multiclass,
    // the validation loss measured anyway), mlp per epoch, none for the others
    for c in &out.leaderboard {
        match c.algorithm {
            learn::Algorithm::Gbm => {
                let cv = c.curves.as_ref().expect("gbm curves");
                assert_eq!(cv.loss, "multi_logloss");
                assert_eq!(cv.train.len(), 400, "{}", c.name);
                assert_eq!(cv.valid.len(), 400, "{}", c.name);
                assert!(cv.train[399] < cv.train[0] && cv.valid[399] < cv.valid[0]);
            }
            learn::Algorithm::Mlp => {
                let cv = c.curves.as_ref().expect("mlp curves");
                assert_eq!(cv.loss, "cross_entropy");
                assert!(!cv.train.is_empty() && cv.train.len() == cv.valid.len());
            }
            _ => assert!(c.curves.is_none(), "{}", c.name),
        }
    }
    assert!(
        out.leaderboard
            .iter()
            .any(|c| c.algorithm == learn::Algorithm::Mlp)
    );
}

#[test]
fn a_cancelled_run_stops_after_the_candidate_in_progress() {
    let t = dataset("penguins.csv");
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opts = Options {
        max_candidates: 50,
        time_budget: Duration::from_secs(600),
        cancel: Some(flag.clone()),
        ..Default::default()
    };
    let mut seen = 0;
    let started = Instant::now();
    let r = run(&t, "species", &opts, &mut |e| {
        if let Event::Candidate(_) = e {
            seen += 1;
            if seen == 2 {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    assert!(
        matches!(r, Err(automl::AutomlError::Cancelled)),
        "cancelled"
    );
    assert_eq!(seen, 2, "no candidate starts after the cancel");
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn stays_within_the_time_budget() {
    let t = dataset("adult.csv");
    let budget = Duration::from_secs(8);
    let start = Instant::now();
    let out = run(
        &t,
        "income",
        &Options {
            time_budget: budget,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let took = start.elapsed();
    // the budget includes the refit; allow 10 % plus one second of slack for a loaded CI box
    assert!(
        took <= budget.mul_f64(1.1) + Duration::from_secs(1),
        "took {took:?} for a {budget:?} budget"
    );
    assert!(!out.leaderboard.is_empty());
    // 26,000 rows do not converge in 8 s: the budget ended the search
    assert_eq!(out.stop_reason, StopReason::BudgetSpent { budget_s: 8.0 });
    assert!(out.search_seconds < took.as_secs_f64());
    assert!(out.score > 0.9, "adult AUC {}", out.score);
}

#[test]
fn bad_options_get_clear_errors() {
    let mut csv = String::from("x,y\n");
    for i in 0..50 {
        csv.push_str(&format!(
            "{},{}\n",
            i % 7,
            if i % 2 == 0 { "a" } else { "b" }
        ));
    }
    let t = table(&csv);
    let err = |o: Options| {
        run(&t, "y", &o, &mut |_| {})
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(
        err(Options {
            time_budget: Duration::ZERO,
            ..Default::default()
        })
        .contains("time budget")
    );
    assert!(
        err(Options {
            metric: Some("rmse".into()),
            ..Default::default()
        })
        .contains("does not fit a binary")
    );
    assert!(
        err(Options {
            metric: Some("speed".into()),
            ..Default::default()
        })
        .contains("unknown metric")
    );
    assert!(
        err(Options {
            max_candidates: 0,
            ..Default::default()
        })
        .contains("max-candidates")
    );
    let e = run(&t, "nope", &Options::default(), &mut |_| {})
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("no column 'nope'"), "{e}");
    let small = table("x,y\n1,a\n2,b\n3,a\n4,b\n");
    let e = run(&small, "y", &Options::default(), &mut |_| {})
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("at least 20"), "{e}");
}

#[test]
fn hopeless_candidates_stop_after_their_first_fold() {
    // 2,000 rows: cross-validated; the linear models' MSE is about twice the
    // boosted trees' on housing prices, so once four candidates are in, the
    // second linear one is stopped after one fold instead of five
    let t = dataset("california_housing.csv");
    let t = t.take(&(0..2000).collect::<Vec<_>>());
    let opts = Options {
        max_candidates: 10,
        time_budget: Duration::from_secs(300),
        ..Default::default()
    };
    let out = run(&t, "median_house_value", &opts, &mut |_| {}).unwrap();
    let by_name = |n: &str| {
        out.leaderboard
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(
        by_name("linear").status,
        CandidateStatus::Done,
        "too early to prune"
    );
    let weak = by_name("linear-weak-reg");
    assert_eq!(weak.status, CandidateStatus::Pruned);
    assert!(weak.score.is_nan(), "a pruned candidate is not ranked");
    // pruned candidates sit after every ranked one
    let first_unranked = out
        .leaderboard
        .iter()
        .position(|c| c.status != CandidateStatus::Done)
        .unwrap();
    assert!(
        out.leaderboard[first_unranked..]
            .iter()
            .all(|c| c.status != CandidateStatus::Done)
    );
}

#[test]
fn a_small_budget_stops_by_the_budget_and_says_so_once() {
    let t = dataset("titanic.csv");
    let budget = Duration::from_secs(3);
    let mut stops = Vec::new();
    let start = Instant::now();
    let out = run(
        &t,
        "Survived",
        &Options {
            time_budget: budget,
            ..Default::default()
        },
        &mut |e| {
            if let Event::Stopped {
                reason, candidates, ..
            } = e
            {
                stops.push((reason.clone(), *candidates));
            }
        },
    )
    .unwrap();
    let took = start.elapsed();
    assert!(
        took <= budget.mul_f64(1.1) + Duration::from_secs(1),
        "took {took:?} for a {budget:?} budget"
    );
    assert_eq!(
        stops,
        vec![(out.stop_reason.clone(), out.leaderboard.len())],
        "one Stopped event, before the refit, with the outcome's reason"
    );
    assert_eq!(out.stop_reason.kind(), "budget_spent");
    assert_eq!(
        out.stop_reason.describe(out.metric),
        "the time budget (3 s) was spent"
    );
    let j = out.stop_reason.to_json(out.metric);
    assert_eq!(j["kind"], "budget_spent");
    assert_eq!(j["budget_s"], 3.0);
}

#[test]
fn a_search_that_stops_improving_stops_early_as_converged() {
    // one feature separates the classes perfectly: every reasonable candidate
    // scores AUC 1, so nothing after the portfolio can improve the best
    let mut csv = String::from("x,noise,y\n");
    for i in 0..200u64 {
        let x = (i * 7919 % 200) as f64 / 200.0;
        let noise = (i * 104_729 % 97) as f64;
        csv.push_str(&format!(
            "{x},{noise},{}\n",
            if x > 0.5 { "yes" } else { "no" }
        ));
    }
    let t = table(&csv);
    let budget = Duration::from_secs(300);
    let start = Instant::now();
    let out = run(
        &t,
        "y",
        &Options {
            time_budget: budget,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let took = start.elapsed();
    let StopReason::Converged {
        since_candidate,
        window,
        threshold,
        improvement,
    } = out.stop_reason.clone()
    else {
        panic!("expected convergence, got {:?}", out.stop_reason);
    };
    let n = out.leaderboard.len();
    assert!(n < automl::MAX_CANDIDATES, "{n} candidates");
    assert!(
        took < budget / 2,
        "converged well before the budget: {took:?}"
    );
    // the window: the last max(20, 40 %) candidates, all after the portfolio
    assert_eq!(
        window,
        (n * automl::CONVERGE_PERCENT)
            .div_ceil(100)
            .max(automl::CONVERGE_MIN_WINDOW)
    );
    assert_eq!(since_candidate, n - window + 1);
    assert!(improvement < threshold && threshold > 0.0);
    assert!((out.score - 1.0).abs() < 1e-9, "AUC {}", out.score);
    let words = out.stop_reason.describe(out.metric);
    assert!(
        words.starts_with(&format!("converged: the last {window} candidates")),
        "{words}"
    );
    assert_eq!(out.stop_reason.to_json(out.metric)["kind"], "converged");
    // small data with time left: the finalists were validated on more fold assignments
    assert!(
        out.validation.describe.contains(&format!(
            "finalists on {} fold assignments",
            automl::REFINE_MAX_REPEATS
        )),
        "{}",
        out.validation.describe
    );
}
