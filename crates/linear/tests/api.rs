//! Errors, shapes, serialisation and determinism.

use linear::{LinearError, LinearModel, LinearParams, Task, fit};

fn toy() -> (Vec<f64>, Vec<f64>) {
    // 12 rows × 2 features, class 1 when x0 + x1 > 0 (with two flipped labels).
    let x: Vec<f64> = (0..24).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
    let mut y: Vec<f64> = x.chunks(2).map(|r| f64::from(r[0] + r[1] > 0.0)).collect();
    y[0] = 1.0 - y[0];
    y[5] = 1.0 - y[5];
    (x, y)
}

#[test]
fn input_errors_are_typed() {
    let p = LinearParams::default();
    let (x, y) = toy();
    assert_eq!(
        fit(&p, Task::Regression, &[], 0, 2, &[]),
        Err(LinearError::EmptyData)
    );
    assert_eq!(
        fit(&p, Task::Regression, &[], 3, 0, &[1.0, 2.0, 3.0]),
        Err(LinearError::NoFeatures)
    );
    assert_eq!(
        fit(&p, Task::Regression, &x[..23], 12, 2, &y),
        Err(LinearError::DataLength {
            expected: 24,
            got: 23
        })
    );
    assert_eq!(
        fit(&p, Task::Regression, &x, 12, 2, &y[..11]),
        Err(LinearError::TargetLength {
            expected: 12,
            got: 11
        })
    );
    let mut bad = x.clone();
    bad[5] = f64::NAN;
    assert!(matches!(
        fit(&p, Task::Binary, &bad, 12, 2, &y),
        Err(LinearError::NonFinite {
            row: 2,
            column: 1,
            ..
        })
    ));
    let mut bad_y = y.clone();
    bad_y[3] = f64::INFINITY;
    assert!(matches!(
        fit(&p, Task::Regression, &x, 12, 2, &bad_y),
        Err(LinearError::NonFiniteTarget { row: 3, .. })
    ));
    let mut bad_y = y.clone();
    bad_y[4] = 2.0;
    assert!(matches!(
        fit(&p, Task::Binary, &x, 12, 2, &bad_y),
        Err(LinearError::InvalidClass { row: 4, .. })
    ));
    bad_y[4] = 0.5;
    assert!(matches!(
        fit(&p, Task::Multiclass { num_class: 3 }, &x, 12, 2, &bad_y),
        Err(LinearError::InvalidClass { row: 4, .. })
    ));
    assert_eq!(
        fit(&p, Task::Binary, &x, 12, 2, &[1.0; 12]),
        Err(LinearError::SingleClass { class: 1 })
    );
    assert!(matches!(
        fit(&p, Task::Multiclass { num_class: 1 }, &x, 12, 2, &[0.0; 12]),
        Err(LinearError::InvalidParam {
            name: "num_class",
            ..
        })
    ));
}

#[test]
fn bad_params_are_rejected() {
    let (x, y) = toy();
    for (p, name) in [
        (
            LinearParams {
                alpha: -1.0,
                ..Default::default()
            },
            "alpha",
        ),
        (
            LinearParams {
                alpha: f64::NAN,
                ..Default::default()
            },
            "alpha",
        ),
        (
            LinearParams {
                l1_ratio: 1.5,
                ..Default::default()
            },
            "l1_ratio",
        ),
        (
            LinearParams {
                max_iter: 0,
                ..Default::default()
            },
            "max_iter",
        ),
        (
            LinearParams {
                tol: 0.0,
                ..Default::default()
            },
            "tol",
        ),
    ] {
        match fit(&p, Task::Binary, &x, 12, 2, &y) {
            Err(LinearError::InvalidParam { name: got, .. }) => assert_eq!(got, name),
            other => panic!("expected InvalidParam({name}), got {other:?}"),
        }
    }
}

#[test]
fn predict_row_checks_lengths_and_values() {
    let (x, y) = toy();
    let m = fit(&LinearParams::default(), Task::Binary, &x, 12, 2, &y).unwrap();
    let mut out = [0.0];
    assert_eq!(
        m.predict_row(&[1.0], &mut out),
        Err(LinearError::RowLength {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        m.predict_row(&[1.0, 2.0], &mut [0.0; 2]),
        Err(LinearError::OutputLength {
            expected: 1,
            got: 2
        })
    );
    assert!(matches!(
        m.predict_row(&[1.0, f64::NAN], &mut out),
        Err(LinearError::NonFinite { column: 1, .. })
    ));
    assert!(matches!(
        m.predict(&[0.0, 0.0, f64::INFINITY, 0.0], 2),
        Err(LinearError::NonFinite {
            row: 1,
            column: 0,
            ..
        })
    ));
    assert_eq!(
        m.predict(&x[..5], 3),
        Err(LinearError::DataLength {
            expected: 6,
            got: 5
        })
    );
    m.predict_row(&[2.0, 2.0], &mut out).unwrap();
    assert!(out[0] > 0.5 && out[0] < 1.0);
    let batch = m.predict(&x, 12).unwrap();
    for (row, p) in x.chunks(2).zip(&batch) {
        m.predict_row(row, &mut out).unwrap();
        assert_eq!(out[0], *p);
    }
}

#[test]
fn multiclass_probabilities_sum_to_one() {
    let (x, y) = toy();
    let y3: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 4 == 0 { 2.0 } else { *v })
        .collect();
    for l1_ratio in [0.0, 0.5, 1.0] {
        let p = LinearParams {
            l1_ratio,
            alpha: 0.5,
            ..Default::default()
        };
        let m = fit(&p, Task::Multiclass { num_class: 3 }, &x, 12, 2, &y3).unwrap();
        assert_eq!(m.n_outputs(), 3);
        assert_eq!(m.coef().len(), 6);
        assert_eq!(m.coef_row(2).unwrap().len(), 2);
        assert!(m.coef_row(3).is_none());
        assert!(m.intercept().iter().sum::<f64>().abs() < 1e-12);
        let proba = m.predict(&x, 12).unwrap();
        for p in proba.chunks(3) {
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(p.iter().all(|v| *v > 0.0 && *v < 1.0));
        }
    }
}

#[test]
fn serde_round_trip_is_exact() {
    let (x, y) = toy();
    for task in [
        Task::Regression,
        Task::Binary,
        Task::Multiclass { num_class: 2 },
    ] {
        let m = fit(
            &LinearParams {
                l1_ratio: 0.3,
                ..Default::default()
            },
            task,
            &x,
            12,
            2,
            &y,
        )
        .unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back: LinearModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let p: LinearParams =
            serde_json::from_str(&serde_json::to_string(&LinearParams::default()).unwrap())
                .unwrap();
        assert_eq!(p, LinearParams::default());
    }
}

#[test]
fn corrupt_model_is_rejected_on_load() {
    let (x, y) = toy();
    let m = fit(&LinearParams::default(), Task::Binary, &x, 12, 2, &y).unwrap();
    let mut v: serde_json::Value = serde_json::to_value(&m).unwrap();
    v["coef"] = serde_json::json!([1.0]);
    assert!(serde_json::from_value::<LinearModel>(v).is_err());
}

#[test]
fn deterministic() {
    let (x, y) = toy();
    for l1_ratio in [0.0, 0.7] {
        let p = LinearParams {
            l1_ratio,
            ..Default::default()
        };
        assert_eq!(
            fit(&p, Task::Binary, &x, 12, 2, &y).unwrap(),
            fit(&p, Task::Binary, &x, 12, 2, &y).unwrap()
        );
        assert_eq!(
            fit(&p, Task::Regression, &x, 12, 2, &y).unwrap(),
            fit(&p, Task::Regression, &x, 12, 2, &y).unwrap()
        );
    }
}

#[test]
fn singular_ridge_falls_back_to_coordinate_descent() {
    // Two identical columns and alpha = 0: XᵀX is singular.
    let x: Vec<f64> = (0..10).flat_map(|i| [i as f64, i as f64]).collect();
    let y: Vec<f64> = (0..10).map(|i| 3.0 * i as f64 + 1.0).collect();
    let p = LinearParams {
        alpha: 0.0,
        tol: 1e-10,
        ..Default::default()
    };
    let m = fit(&p, Task::Regression, &x, 10, 2, &y).unwrap();
    let mut out = [0.0];
    m.predict_row(&[20.0, 20.0], &mut out).unwrap();
    assert!((out[0] - 61.0).abs() < 1e-6, "{}", out[0]);
}

#[test]
fn huge_alpha_lasso_gives_zero_coefficients() {
    let (x, y) = toy();
    let m = fit(
        &LinearParams {
            alpha: 1e6,
            l1_ratio: 1.0,
            ..Default::default()
        },
        Task::Regression,
        &x,
        12,
        2,
        &y,
    )
    .unwrap();
    assert_eq!(m.coef(), &[0.0, 0.0]);
    let mean = y.iter().sum::<f64>() / 12.0;
    assert!((m.intercept()[0] - mean).abs() < 1e-12);
}
