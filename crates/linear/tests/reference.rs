//! Coefficients and probabilities pinned to scikit-learn (values printed by `reference.py`
//! in this directory; see that script for the parameter mapping).

use linear::{LinearModel, LinearParams, Task, fit};

#[rustfmt::skip]
const REG_X: [f64; 60] = [1.691, -0.466, 0.033, 0.408, -0.789, 0.002, -0.001, -1.755, 1.018, 0.6, -0.625, -0.172, 0.505, -0.261, -0.243, -1.453, 0.555, 0.124, 0.274, -1.527, 1.651, 0.154, -0.387, 2.029, -0.045, -1.451, -0.405, -2.288, 1.049, -0.416, -0.743, 1.072, -1.651, 0.535, -2.064, -0.662, -1.204, 1.462, 1.766, -0.329, 0.841, -0.18, 0.568, -0.753, -1.708, -1.803, 0.383, 2.248, 0.269, -0.525, 1.912, 0.237, 0.101, 0.253, -0.132, -0.309, -1.435, 0.502, -0.095, 1.193];
#[rustfmt::skip]
const REG_Y: [f64; 20] = [3.994, 1.937, 4.464, 3.648, 1.715, -2.997, 4.064, 1.789, 3.263, -5.545, -2.305, 5.291, -3.446, -0.81, 3.297, -2.202, 2.893, 1.297, 0.593, 1.112];
#[rustfmt::skip]
const RIDGE_COEF: [f64; 4] = [1.579134424977, -1.754121151714, 0.130680997979, 0.759402117852];
#[rustfmt::skip]
const RIDGE_NOINT_COEF: [f64; 3] = [1.214324273048, -1.791170444655, 0.194888030789];
#[rustfmt::skip]
const LASSO_COEF: [f64; 4] = [1.370032893985, -1.645536838702, 0.0, 0.800928397109];
#[rustfmt::skip]
const ENET_COEF: [f64; 4] = [1.445927076867, -1.639831850102, 0.046862439323, 0.798514784696];
#[rustfmt::skip]
const BIN_X: [f64; 90] = [0.655, 0.894, 0.416, -0.924, -0.196, -0.591, -0.3, 1.297, 1.53, 0.669, 0.549, 0.677, -0.012, -0.076, -0.674, -0.056, 2.26, 0.869, -0.342, -0.472, -0.864, 0.374, 0.392, -1.443, 0.486, -0.569, 1.427, 0.157, 1.718, -0.458, -0.288, 0.3, 1.056, 0.566, -1.234, 0.183, 0.022, -0.429, -0.648, 1.748, -0.39, -0.846, 0.637, 0.131, -0.076, 0.781, 0.489, 0.362, 0.964, 0.284, -0.617, -0.362, -0.521, 0.21, -1.078, -1.832, 0.088, -1.337, -1.952, 0.373, -0.711, 0.496, -0.531, -1.122, -1.244, -0.515, -0.273, -0.823, -0.281, -1.536, 0.014, -1.794, -0.194, 0.697, 1.092, 1.714, -1.556, 0.759, 1.206, 0.981, -0.929, 0.412, 1.86, -1.497, 0.476, 1.112, -0.697, 0.583, -1.071, -0.812];
#[rustfmt::skip]
const BIN_Y: [f64; 30] = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
#[rustfmt::skip]
const LOGIT_L2_COEF: [f64; 4] = [0.839326003912, -1.82028278835, 0.428728241186, -0.368119875999];
#[rustfmt::skip]
const LOGIT_L2_PROBA: [f64; 5] = [0.219712390294, 0.261099816807, 0.089084056573, 0.373858965699, 0.370793748971];
#[rustfmt::skip]
const LOGIT_L1_COEF: [f64; 4] = [0.36162516797, -1.552989102727, 0.0, -0.382123352266];
#[rustfmt::skip]
const LOGIT_L1_PROBA: [f64; 5] = [0.177463029904, 0.398461623539, 0.075519729569, 0.270361918469, 0.433291172939];
#[rustfmt::skip]
const MULTI_X: [f64; 90] = [-1.683, 1.015, -1.442, -1.344, -0.362, 0.789, 0.3, 0.811, -0.444, -0.172, -1.137, -0.317, 0.593, -0.3, 0.475, -0.573, -0.592, 0.039, -0.195, 0.592, 0.178, 1.74, -0.219, -0.227, -1.04, 0.023, 0.683, -0.74, -0.05, 0.719, -0.127, -0.519, 0.973, 0.097, 0.397, 1.171, 1.145, -0.347, -0.525, 0.284, -0.133, -1.9, 1.275, 0.019, 0.736, -1.173, 1.288, -0.588, -0.108, -1.401, -0.167, -0.23, -0.185, 0.439, 0.06, 0.976, -0.468, -0.996, -0.019, 0.628, 1.245, 0.814, -1.765, 0.377, 1.46, 0.063, -0.516, 0.309, -0.503, 0.639, -0.013, 1.393, 0.5, -0.724, 0.605, 0.936, -0.568, -0.426, -2.305, 0.903, -0.588, -2.122, -1.769, -0.223, 0.761, -0.089, 0.472, -1.101, -1.341, 0.886];
#[rustfmt::skip]
const MULTI_Y: [f64; 30] = [2.0, 2.0, 0.0, 0.0, 2.0, 2.0, 2.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 1.0, 0.0, 1.0, 1.0, 2.0, 1.0, 0.0, 2.0, 2.0, 0.0, 2.0];
#[rustfmt::skip]
const MULTI_COEF: [f64; 9] = [0.838226074125, -0.201354813068, -0.765012805589, 0.137334651492, 0.410634693259, 0.316509111157, -0.975560725617, -0.209279880191, 0.448503694432];
#[rustfmt::skip]
const MULTI_INTERCEPT: [f64; 3] = [-0.438025481949, 0.158813624093, 0.279211857856];
#[rustfmt::skip]
const MULTI_PROBA: [f64; 15] = [0.092683401872, 0.214271417991, 0.693045180137, 0.014077705979, 0.12337273993, 0.862549554091, 0.313959543961, 0.469638652514, 0.216401803525, 0.274157197105, 0.198823911939, 0.527018890955, 0.255482134355, 0.42602116747, 0.318496698175];

const TOL: f64 = 1e-4;

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL,
            "{what}[{i}]: got {g}, scikit-learn {w} (all: {got:?})"
        );
    }
}

fn tight(alpha: f64, l1_ratio: f64) -> LinearParams {
    LinearParams {
        alpha,
        l1_ratio,
        tol: 1e-10,
        max_iter: 100_000,
        ..Default::default()
    }
}

fn coef_and_intercept(m: &LinearModel) -> Vec<f64> {
    let mut v = m.coef().to_vec();
    v.extend_from_slice(m.intercept());
    v
}

fn proba(m: &LinearModel, x: &[f64], rows: usize) -> Vec<f64> {
    let p = m.predict(&x[..rows * m.n_features()], rows).unwrap();
    if m.n_outputs() == 1 { p } else { p.to_vec() }
}

#[test]
fn ridge_matches_sklearn() {
    let m = fit(
        &LinearParams::default(),
        Task::Regression,
        &REG_X,
        20,
        3,
        &REG_Y,
    )
    .unwrap();
    assert!(m.converged());
    assert_close("ridge", &coef_and_intercept(&m), &RIDGE_COEF);
}

#[test]
fn ridge_without_intercept_matches_sklearn() {
    let p = LinearParams {
        alpha: 5.0,
        fit_intercept: false,
        ..Default::default()
    };
    let m = fit(&p, Task::Regression, &REG_X, 20, 3, &REG_Y).unwrap();
    assert_close("ridge no intercept", m.coef(), &RIDGE_NOINT_COEF);
    assert_eq!(m.intercept(), &[0.0]);
}

#[test]
fn lasso_matches_sklearn() {
    // sklearn Lasso(alpha=0.3) on n = 20 rows == ours alpha = 6.
    let m = fit(&tight(6.0, 1.0), Task::Regression, &REG_X, 20, 3, &REG_Y).unwrap();
    assert!(m.converged());
    assert_close("lasso", &coef_and_intercept(&m), &LASSO_COEF);
    assert_eq!(
        m.coef()[2],
        0.0,
        "lasso should zero the weak feature exactly"
    );
}

#[test]
fn elastic_net_matches_sklearn() {
    let m = fit(&tight(4.0, 0.5), Task::Regression, &REG_X, 20, 3, &REG_Y).unwrap();
    assert_close("elastic net", &coef_and_intercept(&m), &ENET_COEF);
}

#[test]
fn ridge_via_coordinate_descent_agrees_with_cholesky() {
    // A tiny l1_ratio routes through coordinate descent; it must land next to the ridge solution.
    let m = fit(&tight(1.0, 1e-12), Task::Regression, &REG_X, 20, 3, &REG_Y).unwrap();
    assert_close("ridge (cd)", &coef_and_intercept(&m), &RIDGE_COEF);
}

#[test]
fn binary_logistic_l2_matches_sklearn() {
    let m = fit(&tight(1.0, 0.0), Task::Binary, &BIN_X, 30, 3, &BIN_Y).unwrap();
    assert!(m.converged());
    assert_close("logistic l2 coef", &coef_and_intercept(&m), &LOGIT_L2_COEF);
    assert_close("logistic l2 proba", &proba(&m, &BIN_X, 5), &LOGIT_L2_PROBA);
}

#[test]
fn binary_logistic_default_tolerance_is_close() {
    let m = fit(
        &LinearParams::default(),
        Task::Binary,
        &BIN_X,
        30,
        3,
        &BIN_Y,
    )
    .unwrap();
    for (g, w) in coef_and_intercept(&m).iter().zip(&LOGIT_L2_COEF) {
        assert!((g - w).abs() < 1e-2, "{g} vs {w}");
    }
}

#[test]
fn binary_logistic_l1_matches_sklearn() {
    // LogisticRegression(C=0.5, l1_ratio=1) == ours alpha = 2, l1_ratio = 1.
    let m = fit(&tight(2.0, 1.0), Task::Binary, &BIN_X, 30, 3, &BIN_Y).unwrap();
    assert!(m.converged());
    assert_close("logistic l1 coef", &coef_and_intercept(&m), &LOGIT_L1_COEF);
    assert_close("logistic l1 proba", &proba(&m, &BIN_X, 5), &LOGIT_L1_PROBA);
    assert_eq!(m.coef()[2], 0.0);
}

#[test]
fn multinomial_logistic_matches_sklearn() {
    // LogisticRegression(C=2) == ours alpha = 0.5.
    let m = fit(
        &tight(0.5, 0.0),
        Task::Multiclass { num_class: 3 },
        &MULTI_X,
        30,
        3,
        &MULTI_Y,
    )
    .unwrap();
    assert!(m.converged());
    assert_eq!(m.n_outputs(), 3);
    assert_close("multinomial coef", m.coef(), &MULTI_COEF);
    assert_close("multinomial intercept", m.intercept(), &MULTI_INTERCEPT);
    assert_close("multinomial proba", &proba(&m, &MULTI_X, 5), &MULTI_PROBA);
}
