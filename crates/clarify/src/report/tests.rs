//! Hand-made tables; every expected value is worked out in the comments from
//! the formulas in Clarify's documentation (and smclarify's conventions).

use super::*;
use tabular::{Column, Kind};

fn s(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|x| Some(x.to_string())).collect()
}

/// Ten rows: facet d = rows 0–3 (sex F), a = rows 4–9.
///
/// | row | sex | y | ŷ | grp | x   |
/// |-----|-----|---|---|-----|-----|
/// | 0   | F   | 1 | 1 | X   | 0   |
/// | 1   | F   | 0 | 1 | X   | 10  |
/// | 2   | F   | 0 | 0 | Y   | 20  |
/// | 3   | F   | 0 | 0 | Y   | 30  |
/// | 4   | M   | 1 | 1 | X   | 1   |
/// | 5   | M   | 1 | 1 | X   | 11  |
/// | 6   | M   | 1 | 0 | X   | 21  |
/// | 7   | M   | 0 | 1 | Y   | 31  |
/// | 8   | M   | 0 | 0 | Y   | 100 |
/// | 9   | M   | 0 | 0 | Y   | 200 |
fn table() -> Table {
    Table {
        columns: vec![
            Column::from_strings(
                "sex",
                Kind::Categorical,
                s(&["F", "F", "F", "F", "M", "M", "M", "M", "M", "M"]),
            ),
            Column::from_strings(
                "y",
                Kind::Categorical,
                s(&[
                    "yes", "no", "no", "no", "yes", "yes", "yes", "no", "no", "no",
                ]),
            ),
            Column::from_strings(
                "grp",
                Kind::Categorical,
                s(&["X", "X", "Y", "Y", "X", "X", "X", "Y", "Y", "Y"]),
            ),
            Column::from_f64(
                "x",
                Kind::Numeric,
                [0., 10., 20., 30., 1., 11., 21., 31., 100., 200.]
                    .iter()
                    .map(|v| Some(*v))
                    .collect(),
            ),
        ],
        warnings: vec![],
    }
}

const PRED: [bool; 10] = [
    true, true, false, false, true, true, false, true, false, false,
];

fn cfg() -> BiasConfig {
    BiasConfig {
        label_selector: Some(Selector::Values(vec!["yes".into()])),
        facet_selector: Some(Selector::Values(vec!["F".into()])),
        group: Some("grp".into()),
        ..BiasConfig::new("y", "sex")
    }
}

fn value(stage: &StageReport, name: &str) -> MetricValue {
    stage.facets[0]
        .metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap()
        .value
        .clone()
}

fn close(got: MetricValue, want: f64, name: &str) {
    let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!((got - want).abs() < 1e-12, "{name}: got {got}, want {want}");
}

#[test]
fn pre_training_metrics_by_hand() {
    let r = Report::build(&table(), &cfg(), None).unwrap();
    let pre = &r.pre_training;
    assert_eq!(pre.facets.len(), 1);
    assert_eq!(pre.facets[0].value_or_threshold, "F");
    assert_eq!(pre.label_value_or_threshold, "yes");
    let names: Vec<&str> = pre.facets[0].metrics.iter().map(|m| m.name).collect();
    assert_eq!(names, ["CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD"]);
    // n_a = 6, n_d = 4: CI = (6 − 4) / 10
    close(value(pre, "CI"), 0.2, "CI");
    // q_a = 3/6, q_d = 1/4
    close(value(pre, "DPL"), 0.25, "DPL");
    // P_a = (½, ½), P_d = (¾, ¼) over (negative, positive)
    close(
        value(pre, "KL"),
        0.5 * (2.0f64 / 3.0).ln() + 0.5 * 2.0f64.ln(),
        "KL",
    );
    // P = (5/8, 3/8)
    let js = 0.5
        * (0.5 * (0.5f64 / 0.625).ln()
            + 0.5 * (0.5f64 / 0.375).ln()
            + 0.75 * (0.75f64 / 0.625).ln()
            + 0.25 * (0.25f64 / 0.375).ln());
    close(value(pre, "JS"), js, "JS");
    close(value(pre, "LP"), 0.25 * 2.0f64.sqrt(), "LP");
    close(value(pre, "TVD"), 0.25, "TVD");
    close(value(pre, "KS"), 0.25, "KS");
    // group X (rows 0,1,4,5,6): accepted 4, 1 in d → ¼; rejected 1, 1 in d → 1; DD = ¾
    // group Y (rows 2,3,7,8,9): accepted 0 → 0; rejected 5, 2 in d → 0.4; DD = 0.4
    // CDDL = (5·0.75 + 5·0.4) / 10
    close(value(pre, "CDDL"), 0.575, "CDDL");
    assert!(r.post_training.is_none());
}

#[test]
fn post_training_metrics_by_hand() {
    let r = Report::build(&table(), &cfg(), Some(&PRED)).unwrap();
    let post = r.post_training.as_ref().unwrap();
    let names: Vec<&str> = post.facets[0].metrics.iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        [
            "AD", "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "FT", "GE", "RD", "SD", "TE"
        ]
    );
    // d: TP 1, FP 1, FN 0, TN 2;  a: TP 2, FP 1, FN 1, TN 2
    // q̂_a = 3/6, q̂_d = 2/4
    close(value(post, "DPPL"), 0.0, "DPPL");
    close(value(post, "DI"), 1.0, "DI");
    // c_a = n_a⁽¹⁾/n̂_a⁽¹⁾ = 3/3, c_d = 1/2
    close(value(post, "DCA"), 0.5, "DCA");
    // r_d = n_d⁽⁰⁾/n̂_d⁽⁰⁾ = 3/2, r_a = 3/3
    close(value(post, "DCR"), 0.5, "DCR");
    // precision a 2/3, d 1/2
    close(value(post, "DAR"), 2.0 / 3.0 - 0.5, "DAR");
    // TN/n̂⁽⁰⁾: d 2/2, a 2/3
    close(value(post, "DRR"), 1.0 - 2.0 / 3.0, "DRR");
    // accuracy a 4/6, d 3/4
    close(value(post, "AD"), 4.0 / 6.0 - 0.75, "AD");
    // recall a 2/3, d 1/1
    close(value(post, "RD"), 2.0 / 3.0 - 1.0, "RD");
    // specificity d 2/3, a 2/3
    close(value(post, "SD"), 0.0, "SD");
    // FN/FP: d 0/1, a 1/1
    close(value(post, "TE"), -1.0, "TE");
    // benefits ŷ − y + 1: 1,2,1,1,1,1,0,2,1,1 — mean 1.1, Σb² = 15
    close(value(post, "GE"), (15.0 / 1.21 - 10.0) / 20.0, "GE");
    // X: accepted (ŷ) rows 0,1,4,5 → 2 in d: ½; rejected row 6 → 0 in d: 0; DD = −½
    // Y: accepted row 7 → 0; rejected rows 2,3,8,9 → 2 in d: ½; DD = ½
    close(value(post, "CDDPL"), 0.0, "CDDPL");
    // a has 6 rows ≤ 9 → 1-NN on x (grp is text, so it is dropped? no: text
    // makes FT undefined, see below; here only x is left)
}

#[test]
fn flip_test_by_hand() {
    // Without the text group column, FT's features are just x.
    let mut t = table();
    t.columns.retain(|c| c.name != "grp");
    let c = BiasConfig {
        group: None,
        ..cfg()
    };
    let r = Report::build(&t, &c, Some(&PRED)).unwrap();
    let post = r.post_training.as_ref().unwrap();
    // 1-NN of d's rows among a's x (1, 11, 21, 31, 100, 200; ŷ 1,1,0,1,0,0):
    // x=0 → 1 (ŷ 1), model 1: same; x=10 → 11 (1), model 1: same;
    // x=20 → 21 (0), model 0: same; x=30 → 31 (1), model 0: k-NN 1, model 0.
    // FT = (0 − 1) / 4
    close(value(post, "FT"), -0.25, "FT");
    // no group: CDDL and CDDPL are undefined, as Clarify reports them
    let e = value(post, "CDDPL").unwrap_err();
    assert!(e.contains("Group variable"), "{e}");
    // with the text group column, FT is undefined as in smclarify
    let r = Report::build(&table(), &cfg(), Some(&PRED)).unwrap();
    let e = value(r.post_training.as_ref().unwrap(), "FT").unwrap_err();
    assert!(e.contains("non-numeric"), "{e}");
}

#[test]
fn flip_test_uses_five_neighbours_beyond_nine_rows() {
    // facet a: 10 rows at x = 0..9, ŷ true for x ≥ 5 (≥ 10 rows → k = 5).
    // d: x = 7.4 → neighbours 7, 8, 6, 9, 5 (all ŷ 1) → k-NN 1;
    //    x = 2   → 2, 1, 3, 0, 4 (all ŷ 0) → k-NN 0;
    //    x = 4.6 → 5, 4, 6, 3, 7 → ŷ 1,0,1,0,1 → 3 of 5 → k-NN 1.
    // model ŷ on d: 0, 1, 1 → row 1: model 1, k-NN 0 (+1); row 0: model 0, k-NN 1 (−1)
    // FT = (1 − 1) / 3 = 0; flip row 2's model answer to 0 → (1 − 2)/3.
    let mut f = vec![false; 10];
    f.extend([true; 3]);
    let mut p: Vec<bool> = (0..10).map(|i| i >= 5).collect();
    p.extend([false, true, true]);
    let mut xs: Vec<f64> = (0..10).map(f64::from).collect();
    xs.extend([7.4, 2.0, 4.6]);
    let x = Features {
        cols: 1,
        values: xs,
    };
    close(metrics::ft(&f, &p, Ok(&x)), 0.0, "FT");
    p[12] = false;
    close(metrics::ft(&f, &p, Ok(&x)), -1.0 / 3.0, "FT");
}

#[test]
fn divisions_by_zero_follow_clarify() {
    // d: (y, ŷ) = (1,0), (1,0) → FN_d = 2, FP_d = 0 → FN/FP = +∞;
    // a: (1,1), (0,1) → FN_a = 0, FP_a = 1 → 0. TE = +∞.
    // DI = q̂_d / q̂_a = 0 / 1 = 0; DCA: c_d = 2/0 = +∞, c_a = 1/2 → −∞.
    let f = [true, true, false, false];
    let y = [true, true, true, false];
    let p = [false, false, true, true];
    assert_eq!(metrics::te(&f, &y, &p).unwrap(), f64::INFINITY);
    assert_eq!(metrics::di(&f, &p).unwrap(), 0.0);
    assert_eq!(metrics::dca(&f, &y, &p).unwrap(), f64::NEG_INFINITY);
    // both infinite → 0 (smclarify)
    let y2 = [true, true, true, true];
    let p2 = [false, false, false, false];
    assert_eq!(metrics::dca(&f, &y2, &p2).unwrap(), 0.0);
    // JSON writes infinities as Clarify does
    let m = MetricResult {
        name: "TE",
        description: "Treatment Equality (TE)",
        value: Ok(f64::INFINITY),
    };
    assert_eq!(metric_json(&m)["value"], "Infinity");
    let m = MetricResult {
        value: Err("x".into()),
        ..m
    };
    assert_eq!(metric_json(&m)["value"], Value::Null);
    assert_eq!(metric_json(&m)["error"], "x");
}

#[test]
fn distributions_keep_only_values_present_in_both_facets() {
    // d has no positive label: P_a = (½, ½), P_d = (1, 0) → only the
    // negative value is kept: (½) vs (1). KL = ½ ln ½, LP = ½, KS = ½, TVD = ¼.
    let f = [true, true, false, false];
    let y = [false, false, true, false];
    close(metrics::kl(&f, &y), 0.5 * 0.5f64.ln(), "KL");
    close(metrics::lp(&f, &y), 0.5, "LP");
    close(metrics::ks(&f, &y), 0.5, "KS");
    close(metrics::tvd(&f, &y), 0.25, "TVD");
    // GE is undefined when every prediction is a false negative
    assert!(metrics::ge(&[true, true], &[false, false]).is_err());
}

#[test]
fn thresholds_make_clarify_intervals() {
    let c = BiasConfig {
        label_selector: Some(Selector::Values(vec!["yes".into()])),
        facet_selector: Some(Selector::Threshold(20.0)),
        ..BiasConfig::new("y", "x")
    };
    let r = Report::build(&table(), &c, None).unwrap();
    // x > 20: rows 3 (30), 6 (21), 7 (31), 8, 9 → d has 5 rows: CI = 0
    assert_eq!(r.pre_training.facets[0].value_or_threshold, "(20.0, 200.0]");
    close(value(&r.pre_training, "CI"), 0.0, "CI");
    let c = BiasConfig {
        label_selector: Some(Selector::Threshold(25.0)),
        facet_selector: Some(Selector::Values(vec!["F".into()])),
        ..BiasConfig::new("x", "sex")
    };
    let r = Report::build(&table(), &c, None).unwrap();
    assert_eq!(r.pre_training.label_value_or_threshold, "(25.0, 200.0]");
    // positives x > 25: d row 3; a rows 7, 8, 9 → DPL = 3/6 − 1/4
    close(value(&r.pre_training, "DPL"), 0.25, "DPL");
}

#[test]
fn each_value_against_the_rest_without_facet_values() {
    let c = BiasConfig {
        facet_selector: None,
        ..cfg()
    };
    let r = Report::build(&table(), &c, None).unwrap();
    let v: Vec<&str> = r
        .pre_training
        .facets
        .iter()
        .map(|f| f.value_or_threshold.as_str())
        .collect();
    assert_eq!(v, ["F", "M"]);
    // M as d: CI = (4 − 6)/10
    close(
        r.pre_training.facets[1].metrics[1].value.clone(),
        -0.2,
        "CI",
    );
    let j = r.to_json();
    assert_eq!(j["version"], "1.0");
    assert_eq!(j["pre_training_bias_metrics"]["label"], "y");
    assert_eq!(
        j["pre_training_bias_metrics"]["label_value_or_threshold"],
        "yes"
    );
    assert_eq!(
        j["pre_training_bias_metrics"]["facets"]["sex"][1]["metrics"][1]["name"],
        "CI"
    );
    assert!(j.get("post_training_bias_metrics").is_none());
}

#[test]
fn clear_errors() {
    let t = table();
    let e = Report::build(
        &t,
        &BiasConfig {
            facet: "gender".into(),
            ..cfg()
        },
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no column 'gender'") && e.contains("sex, y, grp, x"),
        "{e}"
    );
    let c = BiasConfig {
        facet_selector: Some(Selector::Values(vec!["Female".into()])),
        ..cfg()
    };
    let e = Report::build(&t, &c, None).unwrap_err().to_string();
    assert!(e.contains("no value 'Female'") && e.contains("F, M"), "{e}");
    let c = BiasConfig {
        label_selector: None,
        ..cfg()
    };
    let e = Report::build(&t, &c, None).unwrap_err().to_string();
    assert!(e.contains("--label-values") && e.contains("yes, no"), "{e}");
    let c = BiasConfig {
        label_selector: Some(Selector::Values(vec!["maybe".into()])),
        ..cfg()
    };
    let e = Report::build(&t, &c, None).unwrap_err().to_string();
    assert!(e.contains("no value 'maybe'"), "{e}");
    let c = BiasConfig {
        facet: "x".into(),
        facet_selector: Some(Selector::Threshold(500.0)),
        ..cfg()
    };
    let e = Report::build(&t, &c, None).unwrap_err().to_string();
    assert!(e.contains("above 500.0") && e.contains("empty"), "{e}");
    let c = BiasConfig {
        facet_selector: Some(Selector::Threshold(1.0)),
        ..cfg()
    };
    let e = Report::build(&t, &c, None).unwrap_err().to_string();
    assert!(e.contains("not numeric"), "{e}");
    let c = BiasConfig {
        facet_selector: Some(Selector::Values(vec!["F".into(), "M".into()])),
        ..cfg()
    };
    let e = Report::build(&t, &c, None).unwrap_err().to_string();
    assert!(e.contains("facet a) would be empty"), "{e}");
    let c = BiasConfig {
        group: Some("nope".into()),
        ..cfg()
    };
    assert!(matches!(
        Report::build(&t, &c, None),
        Err(ClarifyError::UnknownColumn { .. })
    ));
}

#[test]
fn a_zero_one_target_defaults_to_one() {
    let mut t = table();
    t.columns.push(Column::from_f64(
        "survived",
        Kind::Numeric,
        [1., 0., 0., 0., 1., 1., 1., 0., 0., 0.]
            .iter()
            .map(|v| Some(*v))
            .collect(),
    ));
    let c = BiasConfig {
        label_selector: None,
        ..BiasConfig {
            label: "survived".into(),
            ..cfg()
        }
    };
    let r = Report::build(&t, &c, None).unwrap();
    assert_eq!(r.pre_training.label_value_or_threshold, "1");
    close(value(&r.pre_training, "DPL"), 0.25, "DPL");
}
