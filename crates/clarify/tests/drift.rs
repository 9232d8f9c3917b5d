//! Model Monitor's checks on top of the bias report, on hand-made inputs:
//! bias bounds from a baseline and the check of a window against them, and
//! global SHAP values (mean |SHAP|) with the nDCG of their rankings.

use clarify::drift::{self, BiasConstraints, GlobalShap};
use clarify::{BiasConfig, Report, Selector};
use tabular::{Column, Kind, Table};

/// 100 rows: facet d = group B (rows 50–99); labels alternate yes/no in both groups.
fn table() -> Table {
    let group = (0..100)
        .map(|i| Some(if i < 50 { "A" } else { "B" }.to_string()))
        .collect();
    let y = (0..100)
        .map(|i| Some(if i % 2 == 0 { "yes" } else { "no" }.to_string()))
        .collect();
    Table {
        columns: vec![
            Column::from_strings("group", Kind::Categorical, group),
            Column::from_strings("y", Kind::Categorical, y),
        ],
        ..Default::default()
    }
}

fn config() -> BiasConfig {
    let mut c = BiasConfig::new("y", "group");
    c.label_selector = Some(Selector::Values(vec!["yes".into()]));
    c.facet_selector = Some(Selector::Values(vec!["B".into()]));
    c
}

#[test]
fn a_fair_baseline_bounds_dppl_by_the_tolerance_and_di_by_the_four_fifths_rule() {
    // baseline: the model predicts the label exactly → DPPL 0, DI 1, AD 0
    let t = table();
    let truth: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
    let base = Report::build(&t, &config(), Some(&truth)).unwrap();
    let metrics: Vec<String> = drift::DEFAULT_METRICS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let c = BiasConstraints::from_report(&base, &metrics, 0.1, 1.25).unwrap();
    let g = &c.post_training_bias_metrics.facets["group"][0];
    assert_eq!(g.value_or_threshold, "B");
    let m = |n: &str| g.metrics.iter().find(|m| m.name == n).unwrap().clone();
    assert_eq!((m("DPPL").lower, m("DPPL").upper), (-0.1, 0.1));
    assert_eq!(m("DI").value, Some(1.0));
    assert!((m("DI").lower - 0.8).abs() < 1e-12 && (m("DI").upper - 1.25).abs() < 1e-12);
    assert!(
        c.check(&base).is_empty(),
        "the baseline passes its own bounds"
    );

    // a window where 10 of B's 25 positives are predicted negative: q_a = 0.5, q_d = 0.3
    // → DPPL = 0.2 > 0.1, DI = 0.6 < 0.8; AD = acc_a − acc_d = 1 − 0.8 = 0.2 > 0.1
    let mut p = truth.clone();
    let mut flipped = 0;
    for (i, v) in p.iter_mut().enumerate().skip(50) {
        if *v && flipped < 10 && i % 2 == 0 {
            *v = false;
            flipped += 1;
        }
    }
    let window = Report::build(&t, &config(), Some(&p)).unwrap();
    let found = c.check(&window);
    let names: Vec<&str> = found.iter().map(|v| v.metric_name.as_str()).collect();
    assert_eq!(names, ["DPPL", "DI", "AD"]);
    let dppl = &found[0];
    assert_eq!(dppl.constraint_check_type, "bias_drift_check");
    assert_eq!(
        (dppl.facet.as_str(), dppl.facet_value.as_str()),
        ("group", "B")
    );
    assert!((dppl.value.unwrap() - 0.2).abs() < 1e-12);
    assert!((found[1].value.unwrap() - 0.6).abs() < 1e-12);
    assert!(
        dppl.description.contains("must lie in [-0.1000, 0.1000]"),
        "{}",
        dppl.description
    );

    // a window more favourable to B than the baseline by less than the tolerance passes
    let mut q = truth.clone();
    q[51] = true; // one more positive prediction in B: DPPL −0.02
    assert!(
        c.check(&Report::build(&t, &config(), Some(&q)).unwrap())
            .is_empty()
    );
    // the constraints survive a round trip through their file
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<BiasConstraints>(&text).unwrap(), c);
}

fn contributions(values: Vec<f64>, rows: usize) -> learn::Contributions {
    let columns = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    assert_eq!(values.len(), rows * 4);
    learn::Contributions {
        columns,
        outputs: 1,
        values,
        space: learn::Space::LogOdds,
        method: learn::Method::TreeShap,
    }
}

#[test]
fn global_shap_is_the_mean_absolute_contribution_and_drift_is_its_ndcg() {
    // two rows of (a, b, c, base)
    let c = contributions(vec![1.0, -0.5, 0.1, 0.2, -3.0, 0.5, -0.1, 0.2], 2);
    let g = GlobalShap::from_contributions(&c, &["yes".to_string()]);
    assert_eq!(g.rows, 2);
    assert_eq!(g.method, "tree-shap");
    let l = &g.labels[0];
    assert_eq!(l.label, "yes");
    assert_eq!(
        l.global_shap_values,
        vec![
            ("a".to_string(), 2.0),
            ("b".to_string(), 0.5),
            ("c".to_string(), 0.1)
        ]
    );
    assert!((l.expected_value - 0.2).abs() < 1e-12);
    // Clarify's analysis.json shape, and back
    let j = g.to_json();
    assert_eq!(
        j["explanations"]["kernel_shap"]["yes"]["global_shap_values"]["a"],
        2.0
    );
    assert_eq!(
        GlobalShap::from_json(&j).unwrap().labels[0]
            .global_shap_values
            .len(),
        3
    );

    // the same ranking: nDCG 1; 'a' falls to last: (0.5 + 0.1/log2 3 + 2/2) / (2 + 0.5/log2 3 + 0.1/2)
    let same = GlobalShap::from_contributions(
        &contributions(vec![4.0, 1.0, 0.0, 0.0, 4.0, 1.0, 0.0, 0.0], 2),
        &["yes".into()],
    );
    let d = drift::attribution_drift(&g, &same, drift::NDCG_THRESHOLD, None);
    assert!((d[0].ndcg - 1.0).abs() < 1e-12 && !d[0].violation);
    let fallen = GlobalShap::from_contributions(
        &contributions(vec![0.0, 1.0, 0.5, 0.0, 0.0, 1.0, 0.5, 0.0], 2),
        &["yes".into()],
    );
    let d = drift::attribution_drift(&g, &fallen, drift::NDCG_THRESHOLD, None);
    let l3 = 3f64.log2();
    let want = (0.5 + 0.1 / l3 + 2.0 / 2.0) / (2.0 + 0.5 / l3 + 0.1 / 2.0);
    assert!((d[0].ndcg - want).abs() < 1e-12, "{} vs {want}", d[0].ndcg);
    assert!(d[0].violation);
    assert_eq!(d[0].baseline_ranking[0].0, "a");
    assert_eq!(d[0].current_ranking[0].0, "b");
}
