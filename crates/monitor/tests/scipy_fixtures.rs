//! Every statistic against values scipy computed (tests/fixtures/monitor,
//! made by make_fixtures.py there).

use monitor::stats;
use serde_json::Value;

fn fixtures() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/monitor/scipy_fixtures.json");
    serde_json::from_str(&std::fs::read_to_string(&p).expect("fixture file")).expect("fixture JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn sorted(v: &Value) -> Vec<f64> {
    let mut x = floats(v);
    x.sort_by(f64::total_cmp);
    x
}

/// |got − want| ≤ abs + rel·|want|.
fn close(got: f64, want: f64, abs: f64, rel: f64) -> bool {
    (got - want).abs() <= abs + rel * want.abs()
}

#[test]
fn ks_2samp_matches_scipy() {
    let f = fixtures();
    let cases = f["ks"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (sorted(&c["a"]), sorted(&c["b"]));
        let r = stats::ks_2samp(&a, &b).unwrap();
        let (ws, wp) = (
            c["statistic"].as_f64().unwrap(),
            c["pvalue"].as_f64().unwrap(),
        );
        assert!(
            (r.statistic - ws).abs() <= 1e-9,
            "{name}: statistic {} vs scipy {ws}",
            r.statistic
        );
        assert!(
            close(r.pvalue, wp, 1e-15, 1e-7),
            "{name}: p {} vs scipy {wp} ({r:?})",
            r.pvalue
        );
        assert_eq!(r.exact, a.len().max(b.len()) <= 10_000, "{name}");
    }
}

#[test]
fn kolmogorov_distribution_matches_scipy_kstwo() {
    let f = fixtures();
    for c in f["kstwo"].as_array().unwrap() {
        let (n, x, want) = (
            c["n"].as_u64().unwrap(),
            c["x"].as_f64().unwrap(),
            c["sf"].as_f64().unwrap(),
        );
        let got = stats::kolmogorov_sf(n, x);
        assert!(
            close(got, want, 1e-12, 1e-7),
            "kstwo.sf({x}, {n}): {got} vs scipy {want}"
        );
    }
    for c in f["smirnov"].as_array().unwrap() {
        let (n, x, want) = (
            c["n"].as_u64().unwrap(),
            c["x"].as_f64().unwrap(),
            c["sf"].as_f64().unwrap(),
        );
        let got = stats::smirnov_sf(n, x);
        assert!(
            close(got, want, 1e-14, 1e-8),
            "smirnov({n}, {x}): {got} vs scipy {want}"
        );
    }
}

#[test]
fn chi2_contingency_matches_scipy() {
    let f = fixtures();
    for c in f["chi2"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let r = stats::chi2_contingency(&floats(&c["a"]), &floats(&c["b"])).unwrap();
        let (ws, wp) = (
            c["statistic"].as_f64().unwrap(),
            c["pvalue"].as_f64().unwrap(),
        );
        assert_eq!(r.dof as u64, c["dof"].as_u64().unwrap(), "{name}");
        assert!(
            close(r.statistic, ws, 1e-12, 1e-10),
            "{name}: {} vs {ws}",
            r.statistic
        );
        assert!(
            close(r.pvalue, wp, 1e-14, 1e-9),
            "{name}: p {} vs {wp}",
            r.pvalue
        );
    }
}

#[test]
fn wasserstein_matches_scipy() {
    let f = fixtures();
    for c in f["wasserstein"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let got = stats::wasserstein(&sorted(&c["a"]), &sorted(&c["b"])).unwrap();
        let want = c["distance"].as_f64().unwrap();
        assert!(close(got, want, 1e-12, 1e-10), "{name}: {got} vs {want}");
    }
}

#[test]
fn psi_and_jensen_shannon_match_the_documented_bins() {
    let f = fixtures();
    for c in f["binned"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (p, q) = if c["kind"] == "numeric" {
            let (a, b) = (sorted(&c["a"]), sorted(&c["b"]));
            let edges = stats::decile_edges(&a);
            assert_eq!(edges, floats(&c["edges"]), "{name}: bin edges");
            (
                stats::proportions(&stats::bin_counts(&a, &edges)),
                stats::proportions(&stats::bin_counts(&b, &edges)),
            )
        } else {
            (
                stats::proportions(&floats(&c["a"])),
                stats::proportions(&floats(&c["b"])),
            )
        };
        let (psi, js) = (stats::psi(&p, &q), stats::jensen_shannon(&p, &q));
        let (wpsi, wjs) = (
            c["psi"].as_f64().unwrap(),
            c["jensen_shannon"].as_f64().unwrap(),
        );
        assert!(
            close(psi, wpsi, 1e-12, 1e-10),
            "{name}: psi {psi} vs {wpsi}"
        );
        assert!(close(js, wjs, 1e-12, 1e-10), "{name}: js {js} vs {wjs}");
    }
}
