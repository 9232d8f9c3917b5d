//! Behaviour of the metadata store that users of MLflow depend on, on the
//! backend the run asks for (SQLite, or PostgreSQL when
//! `ATELIER_TEST_DATABASE_URL` is set: see `store::scratch`).

use store::scratch::Scratch;
use store::*;

fn fresh() -> Scratch {
    Scratch::new().expect("a scratch store")
}

fn run_in(s: &SqlStore, exp: i64, name: &str) -> String {
    s.create_run(CreateRun {
        experiment_id: exp,
        user_id: "u".into(),
        run_name: Some(name.into()),
        ..Default::default()
    })
    .unwrap()
    .run_id
}

#[test]
fn latest_metric_is_the_highest_step_then_timestamp() {
    let s = fresh();
    let r = run_in(&s, 0, "a");
    s.log_batch(
        &r,
        &[Metric::new("m", 5.0, 100, 3), Metric::new("m", 1.0, 999, 1)],
        &[],
        &[],
    )
    .unwrap();
    s.log_batch(&r, &[Metric::new("m", 7.0, 50, 2)], &[], &[])
        .unwrap();
    assert_eq!(s.get_run(&r).unwrap().metrics[0].value, 5.0);
    s.log_batch(&r, &[Metric::new("m", 2.0, 101, 3)], &[], &[])
        .unwrap();
    assert_eq!(
        s.get_run(&r).unwrap().metrics[0].value,
        2.0,
        "same step, later timestamp wins"
    );
    s.log_batch(
        &r,
        &[
            Metric::new("m", f64::NAN, 102, 3),
            Metric::new("inf", f64::INFINITY, 1, 0),
        ],
        &[],
        &[],
    )
    .unwrap();
    let run = s.get_run(&r).unwrap();
    assert!(
        run.metrics
            .iter()
            .find(|m| m.key == "m")
            .unwrap()
            .value
            .is_nan()
    );
    assert_eq!(
        run.metrics.iter().find(|m| m.key == "inf").unwrap().value,
        f64::INFINITY
    );
    let h = s.metric_history(&r, "m", 100, None).unwrap();
    assert_eq!(
        h.items.iter().map(|m| m.step).collect::<Vec<_>>(),
        vec![1, 2, 3, 3, 3]
    );
}

#[test]
fn params_are_immutable_but_relogging_the_same_value_is_fine() {
    let s = fresh();
    let r = run_in(&s, 0, "a");
    s.log_batch(&r, &[], &[Tag::new("lr", "0.1")], &[]).unwrap();
    s.log_batch(&r, &[], &[Tag::new("lr", "0.1")], &[]).unwrap();
    let e = s
        .log_batch(&r, &[], &[Tag::new("lr", "0.2")], &[])
        .unwrap_err();
    assert!(matches!(e, StoreError::InvalidParameter(_)), "{e}");
    assert!(
        e.to_string()
            .contains("Changing param values is not allowed")
    );
    s.delete_run(&r).unwrap();
    assert!(matches!(
        s.log_batch(&r, &[Metric::new("m", 1.0, 1, 0)], &[], &[]),
        Err(StoreError::InvalidParameter(_))
    ));
}

#[test]
fn bulk_interval_keeps_first_and_last_steps() {
    let s = fresh();
    let r = run_in(&s, 0, "a");
    let pts: Vec<Metric> = (0..1000)
        .map(|i| Metric::new("m", i as f64, i, i))
        .collect();
    s.log_batch(&r, &pts, &[], &[]).unwrap();
    let got = s
        .metric_history_bulk_interval(std::slice::from_ref(&r), "m", None, None, 10)
        .unwrap();
    let steps: Vec<i64> = got.iter().map(|m| m.metric.step).collect();
    assert_eq!(steps.len(), 10);
    assert_eq!((steps[0], steps[9]), (0, 999));
    assert!(steps.windows(2).all(|w| w[0] < w[1]));
    let got = s
        .metric_history_bulk_interval(&[r], "m", Some(100), Some(199), 2500)
        .unwrap();
    assert_eq!(got.len(), 100);
    assert_eq!(got[0].metric.step, 100);
}

#[test]
fn search_filters_orders_with_missing_last_and_pages() {
    let s = fresh();
    let exp = s.create_experiment("e", None, &[]).unwrap();
    for i in 0..25 {
        let r = run_in(&s, exp, &format!("run-{i}"));
        let mut metrics = vec![Metric::new("acc", i as f64 / 100.0, 1, 0)];
        if i == 7 {
            metrics.clear();
        }
        let model = if i % 2 == 0 { "gbm" } else { "linear" };
        s.log_batch(
            &r,
            &metrics,
            &[Tag::new("model", model)],
            &[Tag::new("group", format!("g{}", i % 3))],
        )
        .unwrap();
    }
    let q = |filter: &str, order: &[&str], max: usize, token: Option<String>| SearchRuns {
        experiment_ids: vec![exp],
        filter: filter.into(),
        max_results: max,
        order_by: order.iter().map(|s| s.to_string()).collect(),
        page_token: token,
        ..Default::default()
    };
    let p = s
        .search_runs(&q(
            "metrics.acc >= 0.2 and params.model = 'gbm'",
            &["metrics.acc DESC"],
            100,
            None,
        ))
        .unwrap();
    let names: Vec<&str> = p.items.iter().map(|r| r.info.run_name.as_str()).collect();
    assert_eq!(names, vec!["run-24", "run-22", "run-20"]);
    let p = s
        .search_runs(&q("", &["metrics.acc ASC"], 100, None))
        .unwrap();
    assert_eq!(p.items.len(), 25);
    assert_eq!(
        p.items.last().unwrap().info.run_name,
        "run-7",
        "runs without the metric sort last"
    );
    let p = s
        .search_runs(&q(
            "tags.group ILIKE 'G1%' and attributes.run_name LIKE 'run-1%'",
            &[],
            100,
            None,
        ))
        .unwrap();
    let mut names: Vec<String> = p.items.iter().map(|r| r.info.run_name.clone()).collect();
    names.sort();
    assert_eq!(names, vec!["run-1", "run-10", "run-13", "run-16", "run-19"]);
    // IN / NOT IN and IS NULL
    let ids: Vec<String> = p
        .items
        .iter()
        .take(2)
        .map(|r| format!("'{}'", r.info.run_id))
        .collect();
    let p2 = s
        .search_runs(&q(
            &format!("attributes.run_id IN ({})", ids.join(",")),
            &[],
            100,
            None,
        ))
        .unwrap();
    assert_eq!(p2.items.len(), 2);
    let p2 = s
        .search_runs(&q(
            &format!("attributes.run_id NOT IN ({})", ids.join(",")),
            &[],
            100,
            None,
        ))
        .unwrap();
    assert_eq!(p2.items.len(), 23);
    assert_eq!(
        s.search_runs(&q("params.nope IS NULL", &[], 100, None))
            .unwrap()
            .items
            .len(),
        25
    );
    assert_eq!(
        s.search_runs(&q("params.model IS NOT NULL", &[], 100, None))
            .unwrap()
            .items
            .len(),
        25
    );
    // paging: no duplicates, no gaps
    let mut seen = std::collections::HashSet::new();
    let mut token = None;
    loop {
        let p = s
            .search_runs(&q("", &["attributes.run_name ASC"], 10, token))
            .unwrap();
        for r in &p.items {
            assert!(seen.insert(r.info.run_id.clone()));
        }
        token = p.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 25);
}

#[test]
fn registry_aliases_stages_and_rename() {
    let s = fresh();
    s.create_registered_model("m", &[], "", "u").unwrap();
    assert!(matches!(
        s.create_registered_model("m", &[], "", "u"),
        Err(StoreError::AlreadyExists(_))
    ));
    for i in 0..3 {
        s.create_model_version(CreateModelVersion {
            name: "m".into(),
            source: format!("runs:/r{i}/model"),
            ..Default::default()
        })
        .unwrap();
    }
    s.set_alias("m", "champion", 2).unwrap();
    assert_eq!(s.get_version_by_alias("m", "champion").unwrap().version, 2);
    s.transition_stage("m", 1, "production", false).unwrap();
    s.transition_stage("m", 3, "Production", true).unwrap();
    assert_eq!(
        s.get_model_version("m", 1).unwrap().current_stage,
        "Archived"
    );
    let latest = s.latest_versions("m", &["Production".into()]).unwrap();
    assert_eq!(
        latest.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![3]
    );
    s.rename_registered_model("m", "n").unwrap();
    assert_eq!(s.get_version_by_alias("n", "champion").unwrap().name, "n");
    let found = s
        .search_registered_models(&SearchRegistry {
            filter: "name LIKE 'n%' AND tags.`mlflow.prompt.is_prompt` != 'true'".into(),
            max_results: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        found.items.len(),
        1,
        "models without the prompt tag match the client's != filter"
    );
    s.delete_model_version("n", 2).unwrap();
    assert!(matches!(
        s.get_version_by_alias("n", "champion"),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn refuses_a_database_from_a_newer_atelier() {
    let s = fresh();
    if s.is_postgres() {
        s.raw_execute("UPDATE atelier_schema_version SET version = 999")
            .unwrap();
    } else {
        s.raw_execute("PRAGMA user_version = 999").unwrap();
    }
    let e = s.reopen().err().expect("must refuse");
    assert!(e.to_string().contains("newer"), "{e}");
}

#[test]
fn replacing_a_schedule_is_a_compare_and_swap_on_what_was_read() {
    let s = fresh();
    s.put_schedule("default", "nightly", r#"{"v":1}"#).unwrap();
    let read = s.get_schedule("nightly").unwrap();
    // a user replaces the schedule after the scheduler read it…
    s.put_schedule("default", "nightly", r#"{"v":2,"enabled":false}"#)
        .unwrap();
    // …so the scheduler's bookmark over the old version is refused, and the user's change stays
    assert!(
        !s.replace_schedule("nightly", &read.config, r#"{"v":1,"bookmark":5}"#)
            .unwrap()
    );
    assert_eq!(
        s.get_schedule("nightly").unwrap().config,
        r#"{"v":2,"enabled":false}"#
    );
    // over the current version it is written
    let now = s.get_schedule("nightly").unwrap();
    assert!(
        s.replace_schedule("nightly", &now.config, r#"{"v":2,"bookmark":6}"#)
            .unwrap()
    );
    assert_eq!(
        s.get_schedule("nightly").unwrap().config,
        r#"{"v":2,"bookmark":6}"#
    );
    // a deleted schedule is not brought back
    s.delete_schedule("nightly").unwrap();
    assert!(
        !s.replace_schedule("nightly", r#"{"v":2,"bookmark":6}"#, "{}")
            .unwrap()
    );
    assert!(s.get_schedule("nightly").is_err());
}

#[test]
fn metric_points_after_a_cursor_come_in_write_order_for_one_run_only() {
    let s = fresh();
    let a = run_in(&s, 0, "a");
    let b = run_in(&s, 0, "b");
    let m = |k: &str, v: f64, step: i64| Metric::new(k, v, 1000 + step, step);
    s.log_batch(
        &a,
        &[m("loss", 1.0, 0), m("val_loss", f64::NAN, 0)],
        &[],
        &[],
    )
    .unwrap();
    s.log_batch(&b, &[m("loss", 9.0, 0)], &[], &[]).unwrap();
    let (first, cursor) = s.metric_points_after(&a, 0, 1).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].key.as_str(), first[0].value), ("loss", 1.0));
    let (rest, cursor) = s.metric_points_after(&a, cursor, 100).unwrap();
    assert_eq!(rest.len(), 1);
    assert!(rest[0].value.is_nan(), "NaN comes back as NaN");
    let (none, same) = s.metric_points_after(&a, cursor, 100).unwrap();
    assert!(none.is_empty());
    assert_eq!(same, cursor, "nothing new leaves the cursor where it was");
    s.log_batch(&a, &[m("loss", 0.5, 1)], &[], &[]).unwrap();
    let (new, _) = s.metric_points_after(&a, cursor, 100).unwrap();
    assert_eq!((new.len(), new[0].step, new[0].value), (1, 1, 0.5));
}

#[test]
fn batches_of_interleaved_keys_read_back_in_logging_order_by_cursor_and_by_history() {
    // (on PostgreSQL each batch's points of one key are one row of arrays)
    let s = fresh();
    let a = run_in(&s, 0, "a");
    let mut logged = Vec::new();
    for batch in 0..3i64 {
        let mut ms = Vec::new();
        for step in 0..40 {
            for k in ["k0", "k1", "k2"] {
                let step = batch * 40 + step;
                ms.push(Metric::new(k, (step * 10) as f64, 5_000 + step, step));
            }
        }
        // one more point at an existing step: a history's tie goes to logging order
        ms.push(Metric::new("k1", -1.0, 5_000 + batch * 40, batch * 40));
        s.log_batch(&a, &ms, &[], &[]).unwrap();
        logged.extend(ms);
    }
    // the cursor hands out every point exactly once, in pages
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let (page, next) = s.metric_points_after(&a, cursor, 7).unwrap();
        if page.is_empty() {
            assert_eq!(next, cursor);
            break;
        }
        assert!(next > cursor, "the cursor moves forward");
        cursor = next;
        seen.extend(page);
    }
    assert_eq!(seen.len(), logged.len());
    let key = |m: &Metric| (m.key.clone(), m.step, m.value.to_bits());
    let mut want: Vec<_> = logged.iter().map(key).collect();
    let mut got: Vec<_> = seen.iter().map(key).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "no point lost or repeated");
    // a batch comes after the one logged before it
    let first_of_third = seen.iter().position(|m| m.step >= 80).unwrap();
    assert!(seen[..first_of_third].iter().all(|m| m.step < 80));
    // one key's history: by step, ties in logging order, paged
    let mut hist = Vec::new();
    let mut token = None;
    loop {
        let page = s.metric_history(&a, "k1", 25, token.as_deref()).unwrap();
        hist.extend(page.items);
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(hist.len(), 123);
    let steps: Vec<i64> = hist.iter().map(|m| m.step).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "ordered by step");
    for tie in [0usize, 40, 80] {
        let at: Vec<f64> = hist
            .iter()
            .filter(|m| m.step == tie as i64)
            .map(|m| m.value)
            .collect();
        assert_eq!(
            at,
            vec![(tie * 10) as f64, -1.0],
            "step {tie}: logged order"
        );
    }
}

#[test]
fn a_batch_mixing_model_and_dataset_points_with_plain_ones_keeps_each_points_own() {
    let s = fresh();
    let a = run_in(&s, 0, "a");
    let model = s
        .create_logged_model(CreateLoggedModel {
            experiment_id: 0,
            name: "m".into(),
            source_run_id: a.clone(),
            ..Default::default()
        })
        .unwrap()
        .model_id;
    let tagged = |v: f64, step: i64| Metric {
        dataset_name: Some("eval".into()),
        dataset_digest: Some("d1".into()),
        model_id: Some(model.clone()),
        ..Metric::new("acc", v, 10 + step, step)
    };
    // plain and tagged points of one key interleaved in one batch
    let batch = vec![
        Metric::new("acc", 0.1, 10, 0),
        tagged(0.5, 0),
        Metric::new("acc", 0.2, 11, 1),
        tagged(0.6, 1),
        Metric::new("loss", f64::NAN, 12, 2),
    ];
    s.log_batch(&a, &batch, &[], &[]).unwrap();
    let hist = s.metric_history(&a, "acc", 100, None).unwrap().items;
    let got: Vec<(i64, f64, Option<&str>, Option<&str>)> = hist
        .iter()
        .map(|m| {
            (
                m.step,
                m.value,
                m.dataset_name.as_deref(),
                m.model_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0.1, None, None),
            (0, 0.5, Some("eval"), Some(model.as_str())),
            (1, 0.2, None, None),
            (1, 0.6, Some("eval"), Some(model.as_str())),
        ]
    );
    let lm = s.get_logged_model(&model).unwrap();
    let on_model: Vec<(i64, f64)> = lm
        .metrics
        .iter()
        .map(|m| (m.metric.step, m.metric.value))
        .collect();
    assert_eq!(
        on_model,
        vec![(0, 0.5), (1, 0.6)],
        "only the model's points"
    );
    let loss = s.metric_history(&a, "loss", 10, None).unwrap().items;
    assert!(loss.len() == 1 && loss[0].value.is_nan());
}

fn input(name: &str, context: Option<&str>) -> DatasetInput {
    DatasetInput {
        tags: context
            .map(|c| vec![Tag::new("mlflow.data.context", c)])
            .unwrap_or_default(),
        dataset: Dataset {
            name: name.into(),
            digest: format!("{name}-digest"),
            source_type: "local".into(),
            source: "{}".into(),
            schema: None,
            profile: None,
        },
    }
}

#[test]
fn datasets_of_experiments_come_once_per_context_and_filter_runs_by_context() {
    let s = fresh();
    let exp = s.create_experiment("e", None, &[]).unwrap();
    let other = s.create_experiment("other", None, &[]).unwrap();
    let train = run_in(&s, exp, "train");
    let eval = run_in(&s, exp, "eval");
    let plain = run_in(&s, exp, "plain");
    let elsewhere = run_in(&s, other, "elsewhere");
    s.log_inputs(&train, &[input("d1", Some("training"))], &[])
        .unwrap();
    s.log_inputs(&eval, &[input("d1", Some("eval"))], &[])
        .unwrap();
    s.log_inputs(&plain, &[input("d2", None), input("d1", Some("eval"))], &[])
        .unwrap();
    s.log_inputs(&elsewhere, &[input("d3", Some("training"))], &[])
        .unwrap();
    let found: Vec<(String, Option<String>)> = s
        .search_datasets(&[exp])
        .unwrap()
        .into_iter()
        .map(|d| {
            assert_eq!(d.experiment_id, exp);
            assert_eq!(d.digest, format!("{}-digest", d.name));
            (d.name, d.context)
        })
        .collect();
    let want = |n: &str, c: Option<&str>| (n.to_string(), c.map(String::from));
    assert_eq!(
        found,
        vec![
            want("d1", Some("eval")),
            want("d1", Some("training")),
            want("d2", None)
        ],
        "by dataset (first logged first), then context; each once"
    );
    let by_context = |ctx: &str| -> Vec<String> {
        let mut names: Vec<String> = s
            .search_runs(&SearchRuns {
                experiment_ids: vec![exp],
                filter: format!("dataset.context = '{ctx}'"),
                max_results: 10,
                ..Default::default()
            })
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.info.run_name)
            .collect();
        names.sort();
        names
    };
    assert!(s.search_datasets(&[]).unwrap().is_empty());
    assert!(
        s.metric_keys(&[]).unwrap().is_empty(),
        "no experiments, no keys"
    );
    assert_eq!(by_context("eval"), vec!["eval", "plain"]);
    assert_eq!(by_context("training"), vec!["train"]);
    // the context is matched exactly: '_' is no wildcard, quotes are kept
    let odd = s.create_experiment("odd", None, &[]).unwrap();
    for (name, ctx) in [
        ("under", "x_y"),
        ("letter", "xzy"),
        ("quoted", r#"say "hi"\"#),
    ] {
        let r = run_in(&s, odd, name);
        s.log_inputs(&r, &[input("d9", Some(ctx))], &[]).unwrap();
    }
    assert_eq!(run_names(&s, odd, "dataset.context = 'x_y'"), vec!["under"]);
    assert_eq!(
        run_names(&s, odd, r#"dataset.context = 'say "hi"\\'"#),
        vec!["quoted"]
    );
}

fn run_names(s: &SqlStore, exp: i64, filter: &str) -> Vec<String> {
    let mut names: Vec<String> = s
        .search_runs(&SearchRuns {
            experiment_ids: vec![exp],
            filter: filter.into(),
            max_results: 100,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{filter}: {e}"))
        .items
        .into_iter()
        .map(|r| r.info.run_name)
        .collect();
    names.sort();
    names
}

#[test]
fn like_takes_a_backslash_literally_and_numbers_may_have_fractions() {
    let s = fresh();
    let exp = s.create_experiment("e", None, &[]).unwrap();
    for (name, start) in [(r"C:\temp\a", 10), ("C:_temp", 20), ("C:xtemp", 30)] {
        let id = s
            .create_run(CreateRun {
                experiment_id: exp,
                user_id: "u".into(),
                run_name: Some(name.into()),
                start_time: Some(start),
                ..Default::default()
            })
            .unwrap()
            .run_id;
        s.log_batch(
            &id,
            &[Metric::new("score", start as f64 / 100.0, 1, 0)],
            &[],
            &[Tag::new("path", name)],
        )
        .unwrap();
    }
    // in a filter, '\\' is one backslash; in LIKE it is an ordinary character
    assert_eq!(
        run_names(&s, exp, r"attributes.run_name LIKE 'C:\\temp%'"),
        vec![r"C:\temp\a"]
    );
    assert_eq!(
        run_names(&s, exp, r"attributes.run_name ILIKE 'c:\\TEMP\\_'"),
        vec![r"C:\temp\a"],
        "'_' stays a wildcard after a backslash"
    );
    assert_eq!(
        run_names(&s, exp, r"tags.path LIKE '%\\%'"),
        vec![r"C:\temp\a"]
    );
    assert_eq!(
        run_names(&s, exp, "attributes.run_name LIKE 'C:_temp'"),
        vec!["C:_temp", "C:xtemp"]
    );
    assert_eq!(
        run_names(&s, exp, "attributes.start_time > 15.5"),
        vec!["C:_temp", "C:xtemp"]
    );
    assert_eq!(
        run_names(&s, exp, "attributes.start_time <= 20"),
        vec![r"C:\temp\a", "C:_temp"]
    );
    assert_eq!(
        run_names(&s, exp, "attributes.end_time < 0.5"),
        Vec::<String>::new()
    );
    assert_eq!(
        run_names(&s, exp, "metrics.score > 0.15"),
        vec!["C:_temp", "C:xtemp"]
    );
    assert_eq!(run_names(&s, exp, "metrics.score = 0.3"), vec!["C:xtemp"]);
    let exps = s
        .search_experiments(&SearchExperiments {
            filter: "creation_time > 0.5 AND name LIKE 'e'".into(),
            max_results: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(exps.items.len(), 1);
}

#[test]
fn version_numbers_are_never_reused_and_repeated_tag_keys_keep_the_last_value() {
    let s = fresh();
    let twice = [Tag::new("k", "first"), Tag::new("k", "last")];
    let exp = s.create_experiment("tagged", None, &twice).unwrap();
    assert_eq!(
        s.get_experiment(exp).unwrap().tags,
        vec![Tag::new("k", "last")]
    );
    let m = s.create_registered_model("m", &twice, "", "u").unwrap();
    assert_eq!(m.tags, vec![Tag::new("k", "last")]);
    let version = |s: &SqlStore| {
        s.create_model_version(CreateModelVersion {
            name: "m".into(),
            source: "runs:/r/model".into(),
            tags: twice.to_vec(),
            ..Default::default()
        })
        .unwrap()
    };
    assert_eq!(version(&s).version, 1);
    let v2 = version(&s);
    assert_eq!((v2.version, v2.tags), (2, vec![Tag::new("k", "last")]));
    s.delete_model_version("m", 2).unwrap();
    assert_eq!(
        version(&s).version,
        3,
        "a deleted version's number is not given again"
    );
    let found = s
        .search_model_versions(&SearchRegistry {
            filter: "name = 'm' AND version_number > 1.5".into(),
            max_results: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        found.items.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![3]
    );
    let lm = s
        .create_logged_model(CreateLoggedModel {
            experiment_id: exp,
            name: "lm".into(),
            tags: twice.to_vec(),
            params: vec![Tag::new("p", "1"), Tag::new("p", "2")],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(lm.tags, vec![Tag::new("k", "last")]);
    assert_eq!(lm.params, vec![Tag::new("p", "2")]);
    let run = run_in(&s, exp, "r");
    let models = [lm.model_id.clone()];
    s.log_inputs(&run, &[], &models).unwrap();
    s.log_inputs(&run, &[], &models).unwrap();
    assert_eq!(s.get_run(&run).unwrap().model_inputs, models.to_vec());
}

#[test]
fn bulk_interval_accepts_any_maximum() {
    let s = fresh();
    let r = run_in(&s, 0, "a");
    let pts: Vec<Metric> = (0..5).map(|i| Metric::new("m", i as f64, i, i)).collect();
    s.log_batch(&r, &pts, &[], &[]).unwrap();
    let got = s
        .metric_history_bulk_interval(std::slice::from_ref(&r), "m", None, None, usize::MAX)
        .unwrap();
    assert_eq!(got.len(), 5);
}

#[test]
fn long_values_mlflow_allows_are_kept_and_found() {
    let s = fresh();
    let r = run_in(&s, 0, "a");
    // MLflow's limits: params 6000 characters, tags 8000 (random letters:
    // PostgreSQL cannot compress them under its 2704-byte index entry limit)
    let noise = |n: usize, seed: u64| -> String {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + ((x >> 33) % 26) as u8)
            })
            .collect()
    };
    let (p, t) = (noise(6000, 1), noise(8000, 2));
    s.log_batch(&r, &[], &[Tag::new("p", &p)], &[Tag::new("t", &t)])
        .unwrap();
    let run = s.get_run(&r).unwrap();
    assert_eq!(run.params, vec![Tag::new("p", &p)]);
    assert!(run.tags.contains(&Tag::new("t", &t)));
    let exp = 0;
    assert_eq!(
        run_names(&s, exp, &format!("params.p = '{p}'")),
        vec!["a".to_string()]
    );
}

/// Metric-only batches take no store-wide lock on PostgreSQL: two "processes"
/// (two stores on one database), two threads each, log to one run at once,
/// racing to create the same new series and to move the same latest values.
/// Every point is kept once, each key has one series, and each latest value
/// is the newest point by (step, timestamp, value) whatever the interleaving.
#[test]
fn concurrent_metric_batches_keep_every_point_and_the_newest_latest_value() {
    let s = fresh();
    let other = s.reopen().unwrap();
    let r = run_in(&s, 0, "concurrent");
    let batch = |t: u64, b: u64| -> Vec<Metric> {
        let mut ms = Vec::new();
        for k in 0..4u64 {
            // steps and values interleave across threads: later batches are
            // not always newer
            let step = ((b * 7 + t * 3 + k) % 23) as i64;
            let v = ((b * 31 + t * 17 + k * 5) % 101) as f64 / 10.0;
            ms.push(Metric::new(format!("k{k}"), v, (b % 5) as i64, step));
        }
        // a key every thread creates at about the same time
        ms.push(Metric::new(format!("new{b}"), t as f64, 1, t as i64));
        ms
    };
    let batches = 30u64;
    std::thread::scope(|sc| {
        for t in 0..4u64 {
            let st: &SqlStore = if t % 2 == 0 { &s } else { &other };
            let r = r.clone();
            sc.spawn(move || {
                for b in 0..batches {
                    st.log_batch(&r, &batch(t, b), &[], &[])
                        .unwrap_or_else(|e| panic!("thread {t} batch {b}: {e}"));
                }
            });
        }
    });
    let all: Vec<Metric> = (0..4)
        .flat_map(|t| (0..batches).flat_map(move |b| batch(t, b)))
        .collect();
    let run = s.get_run(&r).unwrap();
    let keys: std::collections::BTreeSet<&str> = all.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(run.metrics.len(), keys.len(), "one latest value per key");
    for key in keys {
        let pts: Vec<&Metric> = all.iter().filter(|m| m.key == key).collect();
        let newest = pts
            .iter()
            .max_by(|a, b| {
                (a.step, a.timestamp)
                    .cmp(&(b.step, b.timestamp))
                    .then(a.value.total_cmp(&b.value))
            })
            .unwrap();
        let got = run.metrics.iter().find(|m| m.key == key).unwrap();
        assert_eq!(
            (got.step, got.timestamp, got.value),
            (newest.step, newest.timestamp, newest.value),
            "latest value of {key}"
        );
        let h = s.metric_history(&r, key, 10_000, None).unwrap();
        assert_eq!(h.items.len(), pts.len(), "every point of {key} kept once");
    }
}

/// A run's lists (params, tags, latest metrics) written at once by two
/// "processes" (two stores on one database), two threads each, into one run:
/// every param and tag and every key's newest value is in `get_run` and in
/// `search_runs` alike (on PostgreSQL both read the lists `run_lists` keeps
/// beside the run, rebuilt by a trigger at each commit: a rebuild that missed
/// a concurrent writer would lose its keys here).
#[test]
fn concurrent_writers_of_params_tags_and_metrics_all_show_in_the_run() {
    let s = fresh();
    let other = s.reopen().unwrap();
    let r = run_in(&s, 0, "lists");
    let rounds = 25u64;
    std::thread::scope(|sc| {
        for t in 0..4u64 {
            let st: &SqlStore = if t % 2 == 0 { &s } else { &other };
            let r = r.clone();
            sc.spawn(move || {
                for b in 0..rounds {
                    let metrics = [
                        Metric::new(format!("m{t}"), b as f64, 1, b as i64),
                        Metric::new("shared", (t * 100 + b) as f64, 1, (t * 100 + b) as i64),
                    ];
                    let params = [Tag::new(format!("p{t}_{b}"), format!("{b}"))];
                    st.log_batch(&r, &metrics, &params, &[])
                        .unwrap_or_else(|e| panic!("thread {t} round {b}: {e}"));
                    st.log_batch(&r, &[], &[], &[Tag::new(format!("t{t}"), format!("{b}"))])
                        .unwrap_or_else(|e| panic!("thread {t} tag {b}: {e}"));
                }
            });
        }
    });
    let run = s.get_run(&r).unwrap();
    assert_eq!(run.params.len(), 4 * rounds as usize, "{:?}", run.params);
    for t in 0..4u64 {
        for b in 0..rounds {
            assert!(
                run.params
                    .contains(&Tag::new(format!("p{t}_{b}"), format!("{b}")))
            );
        }
        assert!(
            run.tags
                .contains(&Tag::new(format!("t{t}"), format!("{}", rounds - 1))),
            "tag t{t} holds its last value: {:?}",
            run.tags
        );
        let m = run
            .metrics
            .iter()
            .find(|m| m.key == format!("m{t}"))
            .unwrap();
        assert_eq!(m.value, (rounds - 1) as f64);
    }
    let shared = run.metrics.iter().find(|m| m.key == "shared").unwrap();
    assert_eq!(
        shared.value,
        (300 + rounds - 1) as f64,
        "the highest step wins"
    );
    s.delete_tag(&r, "t0").unwrap();
    let run = s.get_run(&r).unwrap();
    assert!(
        !run.tags.iter().any(|t| t.key == "t0"),
        "a deleted tag is gone"
    );
    let found = s
        .search_runs(&SearchRuns {
            experiment_ids: vec![0],
            max_results: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.items.len(), 1);
    let hit = &found.items[0];
    assert_eq!(hit.params, run.params);
    assert_eq!(hit.tags, run.tags);
    assert_eq!(hit.metrics.len(), run.metrics.len());
}

/// Metric values come back bit for bit, whichever way the store keeps a
/// run's lists (on PostgreSQL: as text in `run_lists`, and from the tables
/// for a run whose row is missing).
#[test]
fn latest_metric_values_round_trip_exactly() {
    let s = fresh();
    let r = run_in(&s, 0, "exact");
    let values = [
        0.1 + 0.2,
        1.0 / 3.0,
        // (not -0.0: SQLite keeps a REAL of integral value as an integer, so it reads back 0.0)
        5e-324,
        f64::MIN_POSITIVE,
        f64::MAX,
        -f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        123_456_789.123_456_79,
        1e22,
    ];
    let metrics: Vec<Metric> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Metric::new(format!("v{i:02}"), *v, 1, 0))
        .collect();
    s.log_batch(&r, &metrics, &[], &[]).unwrap();
    let check = |run: &Run, how: &str| {
        assert_eq!(run.metrics.len(), values.len(), "{how}");
        for (m, v) in run.metrics.iter().zip(values) {
            assert_eq!(m.value.to_bits(), v.to_bits(), "{how}: {} = {v:e}", m.key);
        }
    };
    check(&s.get_run(&r).unwrap(), "get_run");
    if s.is_postgres() {
        s.raw_execute(&format!("DELETE FROM run_lists WHERE run_uuid = '{r}'"))
            .unwrap();
        check(&s.get_run(&r).unwrap(), "without its run_lists row");
    }
}

/// A metric-only batch checks the run as any batch does: an unknown run is
/// not found, a deleted one refused, and nothing of the batch is written.
#[test]
fn metric_batches_refuse_unknown_and_deleted_runs() {
    let s = fresh();
    let r = run_in(&s, 0, "gone");
    let err = s
        .log_batch(
            "0123456789abcdef0123456789abcdef",
            &[Metric::new("m", 1.0, 1, 0)],
            &[],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    s.delete_run(&r).unwrap();
    let err = s
        .log_batch(&r, &[Metric::new("m", 1.0, 1, 0)], &[], &[])
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidParameter(_)), "{err:?}");
    s.restore_run(&r).unwrap();
    let run = s.get_run(&r).unwrap();
    assert!(run.metrics.is_empty(), "{:?}", run.metrics);
    assert!(
        s.metric_history(&r, "m", 10, None)
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn searched_runs_carry_their_lists_sorted_by_key_as_get_run_gives_them() {
    let s = fresh();
    let (a, b) = (run_in(&s, 0, "a"), run_in(&s, 0, "b"));
    // logged out of key order ("Z" < "a" in byte order)
    s.log_batch(
        &a,
        &[
            Metric::new("zeta", 1.0, 1, 0),
            Metric::new("alpha", f64::NAN, 2, 3),
            Metric::new("Z", 3.0, 3, 0),
        ],
        &[
            Tag::new("p_z", "1"),
            Tag::new("p_a", "2"),
            Tag::new("P", "3"),
        ],
        &[Tag::new("t_b", "x"), Tag::new("t_a", "y")],
    )
    .unwrap();
    s.log_batch(
        &b,
        &[Metric::new("m", 5.0, 1, 0)],
        &[Tag::new("q", "1")],
        &[],
    )
    .unwrap();
    let model = |name: &str| {
        s.create_logged_model(CreateLoggedModel {
            experiment_id: 0,
            name: name.into(),
            ..Default::default()
        })
        .unwrap()
        .model_id
    };
    let (m1, m2, m3) = (model("m1"), model("m2"), model("m3"));
    let dataset = DatasetInput {
        tags: vec![Tag::new("mlflow.data.context", "train")],
        dataset: Dataset {
            name: "d".into(),
            digest: "abc".into(),
            source_type: "local".into(),
            source: "{}".into(),
            schema: None,
            profile: Some("{\"rows\": 1}".into()),
        },
    };
    s.log_inputs(
        &a,
        std::slice::from_ref(&dataset),
        &[m2.clone(), m1.clone()],
    )
    .unwrap();
    s.log_outputs(
        &a,
        &[
            ModelOutput {
                model_id: m3.clone(),
                step: 7,
            },
            ModelOutput {
                model_id: m1.clone(),
                step: 2,
            },
        ],
    )
    .unwrap();
    let got = s.get_run(&a).unwrap();
    let keys = |v: &[Tag]| v.iter().map(|t| t.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&got.params), ["P", "p_a", "p_z"]);
    assert_eq!(keys(&got.tags)[..], ["mlflow.runName", "t_a", "t_b"]);
    let metric_keys: Vec<&str> = got.metrics.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(metric_keys, ["Z", "alpha", "zeta"]);
    assert!(got.metrics[1].value.is_nan() && got.metrics[1].step == 3);
    let mut inputs = vec![m1.clone(), m2];
    inputs.sort();
    assert_eq!(got.model_inputs, inputs);
    let mut outputs = vec![(m1, 2), (m3, 7)];
    outputs.sort();
    let got_outputs: Vec<(String, i64)> = got
        .model_outputs
        .iter()
        .map(|o| (o.model_id.clone(), o.step))
        .collect();
    assert_eq!(got_outputs, outputs);
    assert_eq!(got.dataset_inputs, vec![dataset]);
    // a search finds both, each with its own lists only
    let page = s
        .search_runs(&SearchRuns {
            experiment_ids: vec![0],
            order_by: vec!["attributes.run_name ASC".into()],
            max_results: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let found_a = &page.items[0];
    assert_eq!(found_a.info, got.info);
    assert_eq!(found_a.params, got.params);
    assert_eq!(found_a.tags, got.tags);
    assert_eq!(
        found_a
            .metrics
            .iter()
            .map(|m| (&m.key, m.step))
            .collect::<Vec<_>>(),
        got.metrics
            .iter()
            .map(|m| (&m.key, m.step))
            .collect::<Vec<_>>()
    );
    assert_eq!(found_a.model_inputs, got.model_inputs);
    assert_eq!(found_a.model_outputs, got.model_outputs);
    assert_eq!(found_a.dataset_inputs, got.dataset_inputs);
    let found_b = &page.items[1];
    assert_eq!(found_b.info.run_name, "b");
    assert_eq!(found_b.params, vec![Tag::new("q", "1")]);
    assert_eq!(found_b.metrics.len(), 1);
    assert!(found_b.model_inputs.is_empty() && found_b.dataset_inputs.is_empty());
}

/// Projects are workspaces: `default` always exists and holds what existed
/// before; names are unique per workspace, ids global; a workspace holding
/// experiments is only deleted by moving them to `default` (refused when a
/// name is taken there).
#[test]
fn workspaces_group_experiments_and_keep_their_names_apart() {
    let s = fresh();
    assert_eq!(
        s.list_workspaces()
            .unwrap()
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>(),
        vec![DEFAULT_WORKSPACE]
    );
    assert_eq!(s.get_experiment(0).unwrap().workspace, DEFAULT_WORKSPACE);
    let ws = |name: &str| Workspace {
        name: name.into(),
        description: Some(format!("{name} team")),
        default_artifact_root: None,
        creation_time: 0,
    };
    let a = s.create_workspace(&ws("team-a")).unwrap();
    assert_eq!(a.description.as_deref(), Some("team-a team"));
    assert!(a.creation_time > 0);
    assert!(matches!(
        s.create_workspace(&ws("team-a")),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(s.create_workspace(&ws(DEFAULT_WORKSPACE)).is_err());
    s.create_workspace(&ws("team-b")).unwrap();

    // the same name in two workspaces; ids are global
    let ea = s
        .create_experiment_in("team-a", "shared", None, &[])
        .unwrap();
    let eb = s
        .create_experiment_in("team-b", "shared", None, &[])
        .unwrap();
    assert_ne!(ea, eb);
    assert!(matches!(
        s.create_experiment_in("team-a", "shared", None, &[]),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.create_experiment_in("no-such", "x", None, &[]),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.get_experiment_by_name_in("team-b", "shared")
            .unwrap()
            .experiment_id,
        eb
    );
    assert!(
        s.get_experiment_by_name("shared").is_err(),
        "not in default"
    );
    let found = s
        .search_experiments(&SearchExperiments {
            workspace: Some("team-a".into()),
            max_results: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        found
            .items
            .iter()
            .map(|e| e.experiment_id)
            .collect::<Vec<_>>(),
        vec![ea]
    );
    let r = run_in(&s, eb, "in-b");
    assert_eq!(s.run_workspace(&r).unwrap(), "team-b");
    assert_eq!(s.experiment_workspace(ea).unwrap(), "team-a");
    assert!(s.run_workspace("0123456789abcdef0123456789abcdef").is_err());

    // a workspace's artifact root places its new experiments
    let w = s
        .update_workspace("team-a", None, Some("s3://bucket/team-a/"))
        .unwrap();
    assert_eq!(w.description.as_deref(), Some("team-a team"), "kept");
    let e2 = s
        .create_experiment_in("team-a", "rooted", None, &[])
        .unwrap();
    assert_eq!(
        s.get_experiment(e2).unwrap().artifact_location,
        format!("s3://bucket/team-a/{e2}")
    );
    let w = s.update_workspace("team-a", Some("A"), Some("")).unwrap();
    assert_eq!(
        (w.description.as_deref(), w.default_artifact_root),
        (Some("A"), None)
    );

    // deleting: refused while it holds experiments; moved to default unless a name clashes
    assert!(matches!(
        s.delete_workspace("team-a", WorkspaceDeletion::Restrict),
        Err(StoreError::InvalidState(_))
    ));
    s.create_experiment("shared", None, &[]).unwrap();
    assert!(matches!(
        s.delete_workspace("team-a", WorkspaceDeletion::SetDefault),
        Err(StoreError::InvalidState(_))
    ));
    assert_eq!(
        s.experiment_workspace(ea).unwrap(),
        "team-a",
        "nothing moved"
    );
    s.rename_experiment(ea, "shared-a").unwrap();
    // everything a project holds counts, not only experiments, and moves with them
    s.put_endpoint("team-a", "ep-a", "{}").unwrap();
    s.create_project_token("job-a", "editor", "hash-a", "team-a")
        .unwrap();
    let refused = s
        .delete_workspace("team-a", WorkspaceDeletion::Restrict)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("2 experiment(s)") && refused.contains("1 endpoint(s)"),
        "{refused}"
    );
    let before = s.get_endpoint("ep-a").unwrap().updated_ms;
    s.delete_workspace("team-a", WorkspaceDeletion::SetDefault)
        .unwrap();
    assert_eq!(s.experiment_workspace(ea).unwrap(), DEFAULT_WORKSPACE);
    let moved = s.get_endpoint("ep-a").unwrap();
    assert_eq!(moved.workspace, DEFAULT_WORKSPACE);
    assert!(
        moved.updated_ms > before,
        "servers see the move as a change"
    );
    assert!(s.get_workspace("team-a").is_err());
    // a moved job's token goes on where the job now is; the name is retired
    // until freed: a new team-a inherits nothing
    assert_eq!(
        s.lookup_token("hash-a").unwrap().and_then(|c| c.workspace),
        Some(DEFAULT_WORKSPACE.to_string())
    );
    assert!(s.workspace_retired("team-a").unwrap());
    assert!(!s.workspace_retired("team-b").unwrap());
    let again = Workspace {
        name: "team-a".into(),
        description: None,
        default_artifact_root: None,
        creation_time: 0,
    };
    match s.create_workspace(&again) {
        Err(StoreError::InvalidState(m)) => assert!(m.contains("retired"), "{m}"),
        other => panic!("a retired name was taken: {other:?}"),
    }
    s.free_workspace_name("team-a").unwrap();
    s.create_workspace(&again).unwrap();
    assert!(!s.workspace_retired("team-a").unwrap());
    assert!(
        s.delete_workspace(DEFAULT_WORKSPACE, WorkspaceDeletion::SetDefault)
            .is_err()
    );
}

/// People: a user's token stands for the user (capped by its role) until it
/// expires or the user goes; a service token stands for itself; roles are
/// per project and go with the project or the user; sessions end on a new
/// password; failed sign-ins are counted per name.
#[test]
fn people_have_roles_per_project_and_their_credentials_end_with_them() {
    let s = fresh();
    let alice = s.create_user("alice", Some("$argon2id$x"), false).unwrap();
    assert!(alice.has_password && !alice.is_admin);
    assert!(matches!(
        s.create_user("alice", None, true),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.create_user("no spaces", None, false),
        Err(StoreError::InvalidParameter(_))
    ));
    s.create_user("root", None, true).unwrap();
    assert_eq!(
        s.password_hash("alice").unwrap().as_deref(),
        Some("$argon2id$x")
    );
    assert_eq!(s.password_hash("root").unwrap(), None);
    assert!(matches!(
        s.password_hash("nobody"),
        Err(StoreError::NotFound(_))
    ));

    s.create_workspace(&Workspace {
        name: "team-a".into(),
        description: None,
        default_artifact_root: None,
        creation_time: 0,
    })
    .unwrap();
    s.set_member("team-a", "alice", "viewer").unwrap();
    s.set_member("team-a", "alice", "editor").unwrap(); // replaces
    assert!(matches!(
        s.set_member("team-a", "alice", "owner"),
        Err(StoreError::InvalidParameter(_))
    ));
    assert!(matches!(
        s.set_member("team-b", "alice", "viewer"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.set_member("team-a", "bob", "viewer"),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.member_role("team-a", "alice").unwrap().as_deref(),
        Some("editor")
    );
    assert_eq!(s.member_role(DEFAULT_WORKSPACE, "alice").unwrap(), None);
    assert_eq!(
        s.list_members("team-a").unwrap(),
        vec![("alice".to_string(), "editor".to_string())]
    );

    // a user's token, capped at viewer; an expired one is refused
    s.create_user_token("alice", "alice-laptop", "viewer", "h1", None)
        .unwrap();
    s.create_user_token("alice", "alice-old", "editor", "h2", Some(now_ms() - 1))
        .unwrap();
    let c = s.lookup_token("h1").unwrap().unwrap();
    assert_eq!(
        (c.user.as_str(), c.is_admin, c.cap.as_str(), c.service),
        ("alice", false, "viewer", false)
    );
    assert_eq!(s.lookup_token("h2").unwrap(), None);
    assert!(matches!(
        s.create_user_token("bob", "b", "viewer", "h3", None),
        Err(StoreError::NotFound(_))
    ));
    // a service token
    s.create_token("ci", "editor", "h4", None).unwrap();
    let c = s.lookup_token("h4").unwrap().unwrap();
    assert_eq!(
        (c.user.as_str(), c.is_admin, c.cap.as_str(), c.service),
        ("ci", false, "editor", true)
    );
    assert!(s.lookup_token("h5").unwrap().is_none());
    let tokens = s.list_tokens().unwrap();
    assert_eq!(
        tokens
            .iter()
            .map(|t| (t.name.as_str(), t.user.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            ("alice-laptop", Some("alice")),
            ("alice-old", Some("alice")),
            ("ci", None)
        ]
    );

    // one trip for the guard: the credential and its user's role in the workspace
    let a = s.authenticate(Some("h1"), false, Some("team-a")).unwrap();
    assert_eq!(
        (a.credential.map(|c| c.user), a.member_role.as_deref()),
        (Some("alice".to_string()), Some("editor"))
    );
    // no role in a project: none (the guard answers as if it did not exist)
    let a = s
        .authenticate(Some("h1"), false, Some(DEFAULT_WORKSPACE))
        .unwrap();
    assert!(a.credential.is_some() && a.member_role.is_none());
    assert!(
        s.authenticate(Some("h2"), false, Some("team-a"))
            .unwrap()
            .credential
            .is_none()
    );
    assert!(
        !s.authenticate(Some("h4"), false, Some("no-such"))
            .unwrap()
            .workspace_exists
    );
    assert!(
        s.authenticate(Some("h4"), false, Some("team-a"))
            .unwrap()
            .workspace_exists
    );
    let open = s.authenticate(None, false, Some("team-a")).unwrap();
    assert!(open.workspace_exists && open.credential.is_none());
    assert!(
        s.authenticate(Some("nope"), false, Some("team-a"))
            .unwrap()
            .credential
            .is_none()
    );

    // an endpoint's invocation key acts as no one, and outlives who made it
    s.create_endpoint_key("churn", "checkout", "hk", "alice")
        .unwrap();
    let k = s.lookup_token("hk").unwrap().unwrap();
    assert_eq!(
        (k.user.as_str(), k.is_admin, k.endpoint.as_deref()),
        ("checkout", false, Some("churn"))
    );
    assert!(matches!(
        s.create_endpoint_key("churn", "checkout", "hk2", "alice"),
        Err(StoreError::AlreadyExists(_))
    ));

    // sessions end with a new password, or on request
    s.create_session("alice", "s1", now_ms() + 60_000).unwrap();
    s.create_session("alice", "s2", now_ms() - 1).unwrap();
    assert_eq!(s.lookup_session("s1").unwrap().unwrap().user, "alice");
    assert_eq!(s.lookup_session("s2").unwrap(), None);
    // the guard's one trip works for sessions too, and an expired one is refused there
    let a = s.authenticate(Some("s1"), true, Some("team-a")).unwrap();
    assert_eq!(
        (a.credential.map(|c| c.user), a.member_role.as_deref()),
        (Some("alice".to_string()), Some("editor"))
    );
    let a = s
        .authenticate(Some("s1"), true, Some(DEFAULT_WORKSPACE))
        .unwrap();
    assert!(a.credential.is_some() && a.member_role.is_none());
    assert!(
        s.authenticate(Some("s2"), true, Some("team-a"))
            .unwrap()
            .credential
            .is_none()
    );
    s.set_user_password("alice", Some("$argon2id$y")).unwrap();
    assert_eq!(s.lookup_session("s1").unwrap(), None);
    s.create_session("alice", "s3", now_ms() + 60_000).unwrap();
    assert_eq!(s.end_sessions("alice").unwrap(), 1);

    // failed sign-ins, per name
    let t = now_ms();
    for i in 0..3 {
        s.record_login_failure("alice", t - i * 1000).unwrap();
    }
    s.record_login_failure("nobody", t).unwrap();
    assert_eq!(s.login_failures_since("alice", t - 1500).unwrap(), 2);
    s.clear_login_failures("alice").unwrap();
    assert_eq!(s.login_failures_since("alice", 0).unwrap(), 0);
    assert_eq!(s.login_failures_since("nobody", 0).unwrap(), 1);

    // a project's roles and the tokens bound to it go with it; a user's
    // tokens, sessions and roles go with them
    s.create_project_token("job-t", "editor", "hash-job", "team-a")
        .unwrap();
    s.delete_workspace("team-a", WorkspaceDeletion::Restrict)
        .unwrap();
    assert_eq!(s.lookup_token("hash-job").unwrap(), None);
    assert_eq!(s.member_roles("alice").unwrap(), vec![]);
    s.set_member(DEFAULT_WORKSPACE, "alice", "viewer").unwrap();
    s.create_session("alice", "s4", now_ms() + 60_000).unwrap();
    s.delete_user("alice").unwrap();
    assert_eq!(s.lookup_token("h1").unwrap(), None);
    assert_eq!(s.lookup_session("s4").unwrap(), None);
    assert_eq!(s.list_members(DEFAULT_WORKSPACE).unwrap(), vec![]);
    assert_eq!(
        s.list_tokens()
            .unwrap()
            .iter()
            .map(|t| (t.name.as_str(), t.endpoint.as_deref()))
            .collect::<Vec<_>>(),
        vec![("checkout", Some("churn")), ("ci", None)]
    );
    assert_eq!(s.lookup_token("hk").unwrap().unwrap().user, "checkout");
    assert_eq!(
        s.list_users()
            .unwrap()
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        vec!["root"]
    );
}

/// The audit log: records come back newest first, filtered by actor,
/// project, text of the action or target, and time; nothing rewrites them.
#[test]
fn the_audit_log_is_searchable_and_append_only() {
    let s = fresh();
    let rec = |actor: &str, ws: &str, action: &str, target: &str, at: i64| AuditEntry {
        at_ms: at,
        actor: actor.into(),
        address: "127.0.0.1:5000".into(),
        workspace: ws.into(),
        action: action.into(),
        target: target.into(),
        status: 200,
        detail: r#"{"name":"x"}"#.into(),
        ..Default::default()
    };
    let a = s
        .append_audit(&rec(
            "alice",
            "team-a",
            "POST /experiments/create",
            "/api/x",
            1000,
        ))
        .unwrap();
    let b = s
        .append_audit(&rec(
            "bob",
            "team-b",
            "DELETE /endpoints/{name}",
            "/api/atelier/endpoints/churn",
            2000,
        ))
        .unwrap();
    let c = s
        .append_audit(&rec("alice", "", "sign-in", "/login", 3000))
        .unwrap();
    assert!(a < b && b < c);
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        s.search_audit(&q)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(q(&|_| {}), vec![c, b, a]);
    assert_eq!(q(&|q| q.actor = Some("alice".into())), vec![c, a]);
    assert_eq!(q(&|q| q.workspace = Some("team-b".into())), vec![b]);
    assert_eq!(q(&|q| q.action = Some("churn".into())), vec![b]);
    assert_eq!(q(&|q| q.action = Some("sign-in".into())), vec![c]);
    assert_eq!(
        q(&|q| {
            q.since_ms = Some(1500);
            q.until_ms = Some(3000);
        }),
        vec![b]
    );
    assert_eq!(q(&|q| q.before_id = Some(c)), vec![b, a]);
    assert_eq!(q(&|q| q.limit = 1), vec![c]);
    let first = &s
        .search_audit(&AuditQuery {
            limit: 1,
            ..Default::default()
        })
        .unwrap()[0];
    assert_eq!(
        (
            first.actor.as_str(),
            first.address.as_str(),
            first.status,
            first.detail.as_str()
        ),
        ("alice", "127.0.0.1:5000", 200, r#"{"name":"x"}"#)
    );
    for sql in [
        "UPDATE audit_log SET actor = 'nobody'",
        "DELETE FROM audit_log",
    ] {
        let e = s.raw_execute(sql).expect_err(sql);
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(q(&|_| {}).len(), 3);
}

/// Jobs, endpoints, schedules and registered models belong to the project
/// they were made in; names of endpoints, schedules and models are the
/// server's, so another project taking one is refused and changes nothing;
/// a registry webhook hears only its own project's models.
#[test]
fn resources_belong_to_their_project_and_names_are_the_servers() {
    let s = fresh();
    s.create_workspace(&Workspace {
        name: "team-a".into(),
        description: None,
        default_artifact_root: None,
        creation_time: 0,
    })
    .unwrap();
    // jobs
    let j = s
        .queue_job(&NewJob {
            kind: "k",
            name: "a",
            spec: "{}",
            owner: "ada",
            workspace: "team-a",
            max_attempts: 1,
        })
        .unwrap();
    assert_eq!(j.workspace, "team-a");
    s.create_job("k", "d", "{}").unwrap();
    let names = |ws: Option<&str>| -> Vec<String> {
        let mut v: Vec<String> = s
            .list_jobs(ws, None, 10)
            .unwrap()
            .into_iter()
            .map(|j| j.name)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(Some("team-a")), ["a"]);
    assert_eq!(names(Some("default")), ["d"]);
    assert_eq!(names(None), ["a", "d"]);
    // endpoints (and schedules, the same documents)
    s.put_endpoint("team-a", "ep", r#"{"v":1}"#).unwrap();
    let e = s.put_endpoint("team-a", "ep", r#"{"v":2}"#).unwrap();
    assert_eq!(
        (e.workspace.as_str(), e.config.as_str()),
        ("team-a", r#"{"v":2}"#)
    );
    match s.put_endpoint("default", "ep", r#"{"v":3}"#) {
        Err(StoreError::AlreadyExists(m)) => assert!(m.contains("another project"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.get_endpoint("ep").unwrap().config, r#"{"v":2}"#);
    assert!(s.put_notebook_schedule("default", "nb", "{}").is_ok());
    assert!(matches!(
        s.put_notebook_schedule("team-a", "nb", "{}"),
        Err(StoreError::AlreadyExists(_))
    ));
    // registered models, and the webhooks that hear them
    let hook = |ws: &str| {
        s.create_mlflow_webhook(&NewMlflowWebhook {
            workspace: ws.into(),
            name: format!("h-{ws}"),
            description: String::new(),
            url: "http://127.0.0.1:9/x".into(),
            events: vec!["registered_model.created".into()],
            secret: String::new(),
            status: MlflowWebhookStatus::Active,
        })
        .unwrap()
        .webhook_id
    };
    let (ha, hd) = (hook("team-a"), hook("default"));
    s.create_registered_model_in("team-a", "churn", &[], "", "ada")
        .unwrap();
    assert_eq!(s.registered_model_workspace("churn").unwrap(), "team-a");
    match s.create_registered_model("churn", &[], "", "bob") {
        Err(StoreError::AlreadyExists(m)) => assert!(m.contains("another project"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.registered_model_for("default", "churn", "", "bob"),
        Err(StoreError::AlreadyExists(_))
    ));
    s.registered_model_for("team-a", "churn", "", "ada")
        .unwrap();
    assert_eq!(s.list_mlflow_webhook_deliveries(&ha).unwrap().len(), 1);
    assert_eq!(s.list_mlflow_webhook_deliveries(&hd).unwrap().len(), 0);
    let found = |ws: &str| {
        s.search_registered_models(&SearchRegistry {
            workspace: Some(ws.into()),
            max_results: 10,
            ..Default::default()
        })
        .unwrap()
        .items
        .len()
    };
    assert_eq!((found("team-a"), found("default")), (1, 0));
    let listed = |ws: &str| {
        s.list_mlflow_webhooks(Some(ws), 10, None)
            .unwrap()
            .items
            .into_iter()
            .map(|w| w.webhook_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(listed("team-a"), [ha]);
    // a job's experiment is its project's
    let a = s.experiment_for("team-a", "jobs").unwrap();
    assert_eq!(s.experiment_for("team-a", "jobs").unwrap(), a);
    assert_eq!(s.experiment_workspace(a).unwrap(), "team-a");
    assert_ne!(s.experiment_for("default", "jobs").unwrap(), a);
}
