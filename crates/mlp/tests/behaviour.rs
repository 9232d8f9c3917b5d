//! Learning behaviour, errors, determinism and serialisation.

use mlp::{MlpError, MlpModel, MlpParams, Task, fit};

/// Deterministic pseudo-random numbers for test data (SplitMix64).
struct Gen(u64);
impl Gen {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Approximately standard normal (sum of 12 uniforms).
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

fn small() -> MlpParams {
    MlpParams {
        hidden_layers: vec![16, 8],
        batch_size: 32,
        max_epochs: 60,
        ..Default::default()
    }
}

/// Noisy y = 2x₀ − x₁ + 0.5x₂ + 1 with n rows.
fn linear_data(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut g = Gen(seed);
    let x: Vec<f64> = (0..n * 3).map(|_| g.normal()).collect();
    let y = x
        .chunks(3)
        .map(|r| 2.0 * r[0] - r[1] + 0.5 * r[2] + 1.0 + 0.1 * g.normal())
        .collect();
    (x, y)
}

/// Three Gaussian blobs in 2-D.
fn blobs(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut g = Gen(5);
    let centres = [(-2.0, 0.0), (2.0, 0.0), (0.0, 2.5)];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = i % 3;
        x.push(centres[c].0 + 0.7 * g.normal());
        x.push(centres[c].1 + 0.7 * g.normal());
        y.push(c as f64);
    }
    (x, y)
}

fn r2(y: &[f64], p: &[f64]) -> f64 {
    let m = y.iter().sum::<f64>() / y.len() as f64;
    1.0 - y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
        / y.iter().map(|a| (a - m).powi(2)).sum::<f64>()
}

#[test]
fn fits_xor() {
    let mut g = Gen(1);
    let corners = [
        ([0.0, 0.0], 0.0),
        ([0.0, 1.0], 1.0),
        ([1.0, 0.0], 1.0),
        ([1.0, 1.0], 0.0),
    ];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..200 {
        let (c, t) = corners[i % 4];
        x.push(c[0] * 2.0 - 1.0 + 0.1 * g.normal());
        x.push(c[1] * 2.0 - 1.0 + 0.1 * g.normal());
        y.push(t);
    }
    let p = MlpParams {
        hidden_layers: vec![16],
        learning_rate: 0.01,
        batch_size: 20,
        max_epochs: 100,
        ..Default::default()
    };
    let m = fit(&p, Task::Binary, &x, 200, 2, &y).unwrap();
    assert_eq!(m.n_outputs(), 1);
    let mut out = [0.0];
    for (c, t) in corners {
        m.predict_row(&[c[0] * 2.0 - 1.0, c[1] * 2.0 - 1.0], &mut out)
            .unwrap();
        assert!((out[0] - t).abs() < 0.2, "XOR{c:?} = {} (want {t})", out[0]);
    }
}

#[test]
fn noisy_linear_regression_r2_above_095() {
    let (x, y) = linear_data(600, 2);
    let (xt, yt) = linear_data(300, 3);
    let m = fit(&small(), Task::Regression, &x, 600, 3, &y).unwrap();
    let r = r2(&yt, &m.predict(&xt, 300).unwrap());
    assert!(r > 0.95, "R² = {r}");
}

#[test]
fn softmax_probabilities_sum_to_one_and_classify() {
    let (x, y) = blobs(300);
    let m = fit(&small(), Task::Multiclass { num_class: 3 }, &x, 300, 2, &y).unwrap();
    assert_eq!(m.n_outputs(), 3);
    let p = m.predict(&x, 300).unwrap();
    let mut hits = 0;
    for (row, t) in p.chunks(3).zip(&y) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(row.iter().all(|v| (0.0..=1.0).contains(v)));
        let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        hits += usize::from(best as f64 == *t);
    }
    assert!(
        hits as f64 / 300.0 > 0.9,
        "train accuracy {}",
        hits as f64 / 300.0
    );
}

#[test]
fn deterministic_for_a_seed() {
    let (x, y) = linear_data(200, 4);
    let p = MlpParams {
        dropout: 0.1,
        max_epochs: 10,
        ..small()
    };
    let a = fit(&p, Task::Regression, &x, 200, 3, &y).unwrap();
    let b = fit(&p, Task::Regression, &x, 200, 3, &y).unwrap();
    assert_eq!(a, b);
    let c = fit(
        &MlpParams { seed: 1, ..p },
        Task::Regression,
        &x,
        200,
        3,
        &y,
    )
    .unwrap();
    assert_ne!(a, c);
}

#[test]
fn serde_round_trip_is_exact() {
    let (x, y) = blobs(90);
    let m = fit(
        &MlpParams {
            max_epochs: 5,
            ..small()
        },
        Task::Multiclass { num_class: 3 },
        &x,
        90,
        2,
        &y,
    )
    .unwrap();
    let json = serde_json::to_string(&m).unwrap();
    let back: MlpModel = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.predict(&x, 90).unwrap(), m.predict(&x, 90).unwrap());
    // A corrupted file is rejected rather than panicking later.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["layers"][1]["b"] = serde_json::json!([0.0]);
    assert!(serde_json::from_value::<MlpModel>(v).is_err());
    let p: MlpParams = serde_json::from_str(r#"{"hidden_layers": [8]}"#).unwrap();
    assert_eq!(
        p,
        MlpParams {
            hidden_layers: vec![8],
            ..Default::default()
        }
    );
}

#[test]
fn early_stopping_stops() {
    // Pure-noise target: validation loss stops improving quickly.
    let mut g = Gen(9);
    let x: Vec<f64> = (0..400 * 3).map(|_| g.normal()).collect();
    let y: Vec<f64> = (0..400).map(|_| g.normal()).collect();
    let p = MlpParams {
        patience: 5,
        max_epochs: 500,
        learning_rate: 0.01,
        ..small()
    };
    let m = fit(&p, Task::Regression, &x, 400, 3, &y).unwrap();
    assert!(
        m.epochs_trained() < 500,
        "trained all {} epochs",
        m.epochs_trained()
    );
    assert_eq!(m.epochs_trained(), m.best_epoch() + 5);
    let best = m.history()[m.best_epoch() - 1].valid_loss.unwrap();
    assert!(m.history().iter().all(|e| e.valid_loss.unwrap() >= best));
}

#[test]
fn loss_curves_have_one_point_per_epoch() {
    let (x, y) = blobs(300);
    let p = MlpParams {
        max_epochs: 25,
        patience: 100,
        ..small()
    };
    let m = fit(&p, Task::Multiclass { num_class: 3 }, &x, 300, 2, &y).unwrap();
    assert_eq!(m.epochs_trained(), 25);
    let (train, valid) = (m.train_losses(), m.valid_losses());
    assert_eq!(train.len(), 25);
    assert_eq!(valid.len(), 25);
    assert!(
        train
            .iter()
            .chain(&valid)
            .all(|v| v.is_finite() && *v >= 0.0)
    );
    assert!(train[24] < 0.5 * train[0], "{train:?}");
    assert!(valid[24] < valid[0], "{valid:?}");
    for (e, s) in m.history().iter().enumerate() {
        assert_eq!((s.train_loss, s.valid_loss), (train[e], Some(valid[e])));
    }
    assert_eq!(m.loss_name(), "cross_entropy");
    // early stopping ends both curves at the last epoch trained
    let (x, y) = linear_data(400, 8);
    let p = MlpParams {
        patience: 3,
        max_epochs: 500,
        learning_rate: 0.02,
        ..small()
    };
    let m = fit(&p, Task::Regression, &x, 400, 3, &y).unwrap();
    assert!(m.epochs_trained() < 500);
    assert_eq!(m.train_losses().len(), m.epochs_trained());
    assert_eq!(m.valid_losses().len(), m.epochs_trained());
    assert_eq!(m.loss_name(), "half_squared_error_standardised");
}

#[test]
fn no_validation_runs_all_epochs() {
    let (x, y) = linear_data(100, 6);
    let p = MlpParams {
        validation_fraction: 0.0,
        max_epochs: 7,
        ..small()
    };
    let m = fit(&p, Task::Regression, &x, 100, 3, &y).unwrap();
    assert_eq!((m.epochs_trained(), m.best_epoch()), (7, 7));
    assert!(m.history().iter().all(|e| e.valid_loss.is_none()));
    assert_eq!((m.train_losses().len(), m.valid_losses().len()), (7, 0));
}

#[test]
fn dropout_and_no_hidden_layers_still_learn() {
    let (x, y) = linear_data(600, 2);
    let (xt, yt) = linear_data(300, 3);
    let m = fit(
        &MlpParams {
            dropout: 0.2,
            ..small()
        },
        Task::Regression,
        &x,
        600,
        3,
        &y,
    )
    .unwrap();
    assert!(r2(&yt, &m.predict(&xt, 300).unwrap()) > 0.9);
    let m = fit(
        &MlpParams {
            hidden_layers: vec![],
            learning_rate: 0.01,
            ..small()
        },
        Task::Regression,
        &x,
        600,
        3,
        &y,
    )
    .unwrap();
    assert_eq!(m.layers().len(), 1);
    assert!(r2(&yt, &m.predict(&xt, 300).unwrap()) > 0.95);
}

#[test]
fn input_errors_are_typed() {
    let p = small();
    let (x, y) = blobs(30);
    assert_eq!(
        fit(&p, Task::Regression, &[], 0, 2, &[]),
        Err(MlpError::EmptyData)
    );
    assert_eq!(
        fit(&p, Task::Regression, &[], 2, 0, &[0.0, 1.0]),
        Err(MlpError::NoFeatures)
    );
    assert_eq!(
        fit(&p, Task::Regression, &x[..59], 30, 2, &y),
        Err(MlpError::DataLength {
            expected: 60,
            got: 59
        })
    );
    assert_eq!(
        fit(&p, Task::Regression, &x, 30, 2, &y[..3]),
        Err(MlpError::TargetLength {
            expected: 30,
            got: 3
        })
    );
    let mut bad = x.clone();
    bad[7] = f64::NEG_INFINITY;
    assert!(matches!(
        fit(&p, Task::Regression, &bad, 30, 2, &y),
        Err(MlpError::NonFinite {
            row: 3,
            column: 1,
            ..
        })
    ));
    let mut bad_y = y.clone();
    bad_y[2] = f64::NAN;
    assert!(matches!(
        fit(&p, Task::Regression, &x, 30, 2, &bad_y),
        Err(MlpError::NonFiniteTarget { row: 2, .. })
    ));
    assert!(matches!(
        fit(&p, Task::Binary, &x, 30, 2, &y),
        Err(MlpError::InvalidClass { row: 2, .. })
    ));
    assert_eq!(
        fit(&p, Task::Multiclass { num_class: 3 }, &x, 30, 2, &[2.0; 30]),
        Err(MlpError::SingleClass { class: 2 })
    );
    for (bad, name) in [
        (
            MlpParams {
                hidden_layers: vec![4, 0],
                ..small()
            },
            "hidden_layers",
        ),
        (
            MlpParams {
                dropout: 1.0,
                ..small()
            },
            "dropout",
        ),
        (
            MlpParams {
                learning_rate: 0.0,
                ..small()
            },
            "learning_rate",
        ),
        (
            MlpParams {
                batch_size: 0,
                ..small()
            },
            "batch_size",
        ),
        (
            MlpParams {
                max_epochs: 0,
                ..small()
            },
            "max_epochs",
        ),
        (
            MlpParams {
                validation_fraction: 1.0,
                ..small()
            },
            "validation_fraction",
        ),
        (
            MlpParams {
                patience: 0,
                ..small()
            },
            "patience",
        ),
        (
            MlpParams {
                weight_decay: -1.0,
                ..small()
            },
            "weight_decay",
        ),
    ] {
        match fit(&bad, Task::Multiclass { num_class: 3 }, &x, 30, 2, &y) {
            Err(MlpError::InvalidParam { name: got, .. }) => assert_eq!(got, name),
            other => panic!("expected InvalidParam({name}), got {other:?}"),
        }
    }
    let diverged = MlpParams {
        learning_rate: 1e300,
        validation_fraction: 0.0,
        ..small()
    };
    let (lx, ly) = linear_data(50, 1);
    assert!(matches!(
        fit(&diverged, Task::Regression, &lx, 50, 3, &ly),
        Err(MlpError::Diverged { .. })
    ));
}

#[test]
fn predict_row_checks_inputs() {
    let (x, y) = blobs(30);
    let m = fit(
        &MlpParams {
            max_epochs: 2,
            ..small()
        },
        Task::Multiclass { num_class: 3 },
        &x,
        30,
        2,
        &y,
    )
    .unwrap();
    let mut out = [0.0; 3];
    assert_eq!(
        m.predict_row(&[1.0], &mut out),
        Err(MlpError::RowLength {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        m.predict_row(&[1.0, 2.0], &mut [0.0; 1]),
        Err(MlpError::OutputLength {
            expected: 3,
            got: 1
        })
    );
    assert!(matches!(
        m.predict_row(&[f64::NAN, 2.0], &mut out),
        Err(MlpError::NonFinite { column: 0, .. })
    ));
    assert!(matches!(
        m.predict(&[0.0, 0.0, 0.0, f64::NAN], 2),
        Err(MlpError::NonFinite {
            row: 1,
            column: 1,
            ..
        })
    ));
    assert_eq!(
        m.predict(&x[..3], 2),
        Err(MlpError::DataLength {
            expected: 4,
            got: 3
        })
    );
    let batch = m.predict(&x, 30).unwrap();
    for (row, p) in x.chunks(2).zip(batch.chunks(3)) {
        m.predict_row(row, &mut out).unwrap();
        assert_eq!(&out[..], p);
    }
}
