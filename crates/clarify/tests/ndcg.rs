//! nDCG against scikit-learn's `ndcg_score` (fixtures/ndcg.py writes the cases).

#[test]
fn ndcg_matches_scikit_learn() {
    let text = include_str!("fixtures/ndcg.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    let nums = |x: &serde_json::Value| -> Vec<f64> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    for (i, c) in cases.iter().enumerate() {
        let (b, cur) = (nums(&c["baseline"]), nums(&c["current"]));
        let k = c["k"].as_u64().map(|k| k as usize);
        let got = clarify::drift::ndcg(&b, &cur, k);
        let want = c["ndcg"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-12,
            "case {i}: {got} vs scikit-learn {want}"
        );
    }
}
