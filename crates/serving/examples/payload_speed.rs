//! How long one payload takes on the endpoint's hot path, split into parsing +
//! preprocessing, the model, and writing the answer: a quick way to see where a
//! 100-row request's time goes without a load generator.
//!
//! ```sh
//! cargo run --release -p serving --example payload_speed -- MODEL ROWS.csv [--iters 2000]
//! ```

use std::time::Instant;

use serving::LoadedModel;
use serving::codec::{Format, Writer, predict_payload};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(rows)) = (args.get(1), args.get(2)) else {
        return Err("usage: payload_speed MODEL ROWS.csv [--iters N]".into());
    };
    let iters: usize = args
        .iter()
        .position(|a| a == "--iters")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let m = LoadedModel::from_bytes(&std::fs::read(model)?)?;
    let body = std::fs::read(rows)?;
    let mut n_rows = 0;
    for _ in 0..iters / 10 {
        let mut w = Writer::new(&m, Format::Csv, 4096);
        predict_payload(&m, &body, Format::Csv, &mut w)?;
        n_rows = w.finish().rows;
    }
    let t = Instant::now();
    for _ in 0..iters {
        let mut w = Writer::new(&m, Format::Csv, 4096);
        predict_payload(&m, &body, Format::Csv, &mut w)?;
        std::hint::black_box(w.finish());
    }
    let per = t.elapsed().as_secs_f64() / iters as f64;
    println!(
        "{n_rows} rows per payload: {:.1} µs per payload, {:.0} rows/s on one core",
        per * 1e6,
        n_rows as f64 / per
    );
    Ok(())
}
