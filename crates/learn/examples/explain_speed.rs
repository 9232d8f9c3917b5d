//! How long per-row explanations take, next to plain prediction of the same rows in the
//! same run: an MLP (permutation SHAP) and a gbm + MLP ensemble on 1000 rows × 100
//! numeric features, and a gbm (exact TreeSHAP) for scale.
//!
//! ```sh
//! cargo run --release -p learn --example explain_speed [-- --max-evals 2048 --rows 1000 --features 100]
//! ```

use std::time::Instant;

use learn::{Algorithm, ExplainOptions, Member, Metadata, Model, Pipeline, fit_learner, prepare};

/// A binary problem with a linear signal and one interaction, from a fixed seed.
fn csv(rows: usize, features: usize, seed: u64) -> String {
    let mut state = seed;
    let mut normal = move || {
        // sum of uniforms: close enough to a normal for a timing run
        (0..4)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .sum::<f64>()
            - 2.0
    };
    let mut s: String = (0..features).map(|j| format!("f{j},")).collect::<String>() + "label\n";
    for _ in 0..rows {
        let x: Vec<f64> = (0..features).map(|_| normal()).collect();
        let signal: f64 = x
            .iter()
            .enumerate()
            .map(|(j, v)| if j % 3 == 0 { v / 10.0 } else { -v / 20.0 })
            .sum::<f64>()
            + x[0] * x[1.min(features - 1)];
        for v in &x {
            s.push_str(&format!("{v:.4},"));
        }
        s.push_str(if signal + normal() * 0.3 > 0.0 {
            "yes\n"
        } else {
            "no\n"
        });
    }
    s
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = arg("--rows", 1000);
    let features = arg("--features", 100).max(2);
    let max_evals = arg("--max-evals", ExplainOptions::default().max_evals);
    let dir = std::env::temp_dir().join(format!("atelier-explain-speed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let train_path = dir.join("train.csv");
    let test_path = dir.join("test.csv");
    std::fs::write(&train_path, csv(3000, features, 1))?;
    std::fs::write(&test_path, csv(rows, features, 2))?;
    let train = tabular::read_path(&train_path)?;
    let test = tabular::read_path(&test_path)?;
    std::fs::remove_dir_all(&dir)?;

    let fit = |alg: Algorithm, params: &[(&str, &str)]| -> Result<Model, learn::LearnError> {
        let prep = prepare(&train, "label", None)?;
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(fit_learner(
            alg,
            &prep.target,
            &params,
            &prep.features,
            &prep.target.values,
            None,
        )?
        .model)
    };
    let pipeline = |model: Model| -> Result<Pipeline, learn::LearnError> {
        Ok(Pipeline::assemble(
            prepare(&train, "label", None)?,
            model,
            Metadata::default(),
        ))
    };
    let mlp = fit(Algorithm::Mlp, &[])?;
    let gbm = fit(Algorithm::Gbm, &[("n_estimators", "200")])?;
    let cases = [
        ("mlp", pipeline(mlp.clone())?),
        (
            "gbm+mlp ensemble",
            pipeline(Model::Ensemble {
                members: vec![
                    Member {
                        weight: 0.5,
                        model: gbm.clone(),
                    },
                    Member {
                        weight: 0.5,
                        model: mlp,
                    },
                ],
            })?,
        ),
        ("gbm (200 trees)", pipeline(gbm)?),
    ];
    let opts = ExplainOptions {
        max_evals,
        ..Default::default()
    };
    println!(
        "{rows} rows × {features} features, max_evals {max_evals}, {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<18} {:>18} {:>10} {:>12} {:>10}",
        "model", "method", "predict s", "explain s", "ratio"
    );
    for (name, p) in cases {
        let t0 = Instant::now();
        let pred = p.predict(&test)?;
        let predict_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let c = p.contributions_with(&test, &opts)?;
        let explain_s = t1.elapsed().as_secs_f64();
        assert_eq!(c.values.len(), pred.labels.len() * (c.columns.len() + 1));
        println!(
            "{name:<18} {:>18} {predict_s:>10.3} {explain_s:>12.3} {:>9.0}×",
            c.method.as_str(),
            explain_s / predict_s.max(1e-9)
        );
    }
    Ok(())
}
