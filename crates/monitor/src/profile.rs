//! Streaming per-column statistics: fed [`Table`] chunks one after
//! another, memory bounded by the sketches and the sample size, whatever
//! the number of rows. Columns of a chunk are processed in parallel.
//!
//! Per column: counts (rows, missing, values that did not fit the kind),
//! HyperLogLog distinct count, and either moments + KLL quantiles + the
//! values in a uniform sample of at most `sample_size` rows (numbers, dates
//! as epoch ms; one row sampler for all columns, so the samples are
//! row-aligned and every value is kept while there are at most
//! `sample_size` rows) or exact category counts (labels; [`TopK`], exact up
//! to 10,000 distinct values).

use std::collections::HashMap;

use rayon::prelude::*;
use tabular::array::ColumnData;
use tabular::sketch::{Hll, HllBuilder, Kll, Moments, TopK, hash64, mix};
use tabular::{Kind, Table};

use crate::MonitorError;

/// Default bound on the per-column sample kept for KS and Wasserstein.
pub const DEFAULT_SAMPLE_SIZE: usize = 100_000;

/// Which items of a stream to keep for a uniform sample of at most `cap`:
/// every item while there are at most `cap`, then Li's "Algorithm L"
/// (1994), which draws how many items to skip before the next replacement,
/// so a full sample costs a counter decrement per item. Deterministic given
/// its seed. The profiler samples *rows* with one sampler, so its
/// logarithms are paid once for all numeric columns.
#[derive(Debug, Clone)]
pub struct Sampler {
    cap: usize,
    seen: u64,
    filled: usize,
    state: u64,
    /// ln of Algorithm L's running weight W.
    log_w: f64,
    /// Items still to skip before the next replacement.
    skip: u64,
}

impl Sampler {
    pub fn new(cap: usize, seed: u64) -> Self {
        Sampler {
            cap: cap.max(1),
            seen: 0,
            filled: 0,
            state: seed,
            log_w: 0.0,
            skip: 0,
        }
    }
    /// A uniform number in (0, 1).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E3779B97F4A7C15);
        ((mix(self.state) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn draw_skip(&mut self) {
        let u = self.uniform();
        self.log_w += u.ln() / self.cap as f64;
        let w = self.log_w.exp();
        let u = self.uniform();
        // floor(ln u / ln(1 − W)); ln_1p keeps precision when W is tiny
        let s = (u.ln() / (-w).ln_1p()).floor();
        self.skip = if s.is_finite() && s < 1e18 {
            s as u64
        } else {
            u64::MAX
        };
    }
    /// The slot the next item goes to (the next free one while filling),
    /// or None when it is not sampled.
    #[inline]
    pub fn offer(&mut self) -> Option<usize> {
        self.seen += 1;
        if self.filled < self.cap {
            let slot = self.filled;
            self.filled += 1;
            if self.filled == self.cap {
                self.draw_skip();
            }
            Some(slot)
        } else if self.skip > 0 {
            self.skip -= 1;
            None
        } else {
            self.state = self.state.wrapping_add(0x9E3779B97F4A7C15);
            let slot = (mix(self.state) % self.cap as u64) as usize;
            self.draw_skip();
            Some(slot)
        }
    }
    /// True while every item offered was kept.
    pub fn is_exact(&self) -> bool {
        self.seen as usize <= self.cap
    }
}

/// A uniform sample of at most `cap` values (see [`Sampler`]).
#[derive(Debug, Clone)]
pub struct Reservoir {
    sampler: Sampler,
    values: Vec<f64>,
}

impl Reservoir {
    pub fn new(cap: usize, seed: u64) -> Self {
        Reservoir {
            sampler: Sampler::new(cap, seed),
            values: Vec::new(),
        }
    }
    #[inline]
    pub fn add(&mut self, x: f64) {
        if let Some(slot) = self.sampler.offer() {
            if slot == self.values.len() {
                self.values.push(x);
            } else {
                self.values[slot] = x;
            }
        }
    }
    /// True while the sample holds every value seen.
    pub fn is_exact(&self) -> bool {
        self.sampler.is_exact()
    }
    /// The sample, sorted.
    pub fn into_sorted(mut self) -> Vec<f64> {
        self.values.sort_unstable_by(|a, b| a.total_cmp(b));
        self.values
    }
}

/// What is known about one numeric column.
#[derive(Debug, Clone)]
pub struct NumericStats {
    pub moments: Moments,
    pub kll: Kll,
    /// Sorted sample (every value when `exact`).
    pub sample: Vec<f64>,
    pub exact: bool,
    /// Every value is a whole number.
    pub integral: bool,
}

/// What is known about one column after the stream.
#[derive(Debug, Clone)]
pub struct ColumnStats {
    pub name: String,
    pub kind: Kind,
    /// Rows, missing or not.
    pub count: u64,
    /// Missing cells (including those that did not fit the kind).
    pub missing: u64,
    /// Present cells that did not fit the kind (read as missing).
    pub mismatched: u64,
    pub distinct: Hll,
    pub numeric: Option<NumericStats>,
    pub categories: Option<TopK>,
}

impl ColumnStats {
    pub fn present(&self) -> u64 {
        self.count - self.missing
    }
    /// Share of rows with a value, 1 for an empty column.
    pub fn completeness(&self) -> f64 {
        if self.count == 0 {
            1.0
        } else {
            self.present() as f64 / self.count as f64
        }
    }
}

/// Per-column statistics of a whole dataset.
#[derive(Debug, Clone)]
pub struct DatasetStats {
    pub rows: u64,
    pub columns: Vec<ColumnStats>,
}

impl DatasetStats {
    pub fn column(&self, name: &str) -> Option<&ColumnStats> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Whether a kind is summarised as numbers (else as labels).
pub fn is_numeric_kind(kind: Kind) -> bool {
    matches!(kind, Kind::Numeric | Kind::Datetime)
}

struct Acc {
    name: String,
    kind: Kind,
    count: u64,
    missing: u64,
    mismatched: u64,
    hll: HllBuilder,
    /// Moments, quantile sketch, the values of the sampled rows (NaN where
    /// missing), all values whole.
    num: Option<(Moments, Kll, Vec<f64>, bool)>,
    cats: Option<TopK>,
    /// Whether to keep the KLL quantile sketch (baselines do, checks need not).
    sketch: bool,
    /// The chunk's values, sorted into a KLL sketch of their own.
    buf: Vec<f64>,
    seed: u64,
}

/// A KLL sketch (k = 200, as `Kll::default()`) of one chunk's values,
/// without sorting them: with w = 2^h the smallest power of two that
/// leaves at most k blocks, the values at ranks o, o + w, o + 2w, … (o
/// random in [0, w)) of the first m·w are kept with weight w, each standing
/// for its block of w ranks (rank error below w, as a chain of h KLL
/// compactions), and the r = n − m·w largest values with weight 1. The
/// order statistics come from a recursive `select_nth_unstable` (about
/// log2(k) passes over the data instead of a full sort). Merging the result
/// costs one compaction pass instead of one per value.
fn chunk_kll(values: &mut [f64], seed: &mut u64) -> Kll {
    const K: usize = 200;
    let n = values.len();
    let mut h = 0u32;
    while (n >> h) > K {
        h += 1;
    }
    let w = 1usize << h;
    let m = n / w;
    *seed = mix(seed.wrapping_add(0x9E3779B97F4A7C15));
    let off = if w > 1 {
        (*seed % w as u64) as usize
    } else {
        0
    };
    let mut ranks: Vec<usize> = (0..m).map(|j| j * w + off).collect();
    if m * w < n {
        ranks.push(m * w); // splits off the r largest values
    }
    select_ranks(values, &ranks, 0);
    let mut levels: Vec<Vec<f64>> = vec![Vec::new(); h as usize + 1];
    levels[h as usize] = (0..m).map(|j| values[j * w + off]).collect();
    levels[0].extend_from_slice(&values[m * w..]);
    serde_json::from_value(serde_json::json!({
        "k": K, "n": n, "levels": levels, "seed": *seed,
    }))
    .unwrap_or_default()
}

/// Rearrange `v` so that each rank in `ranks` (sorted, relative to `base`
/// + the slice start) holds the value a sort would put there.
fn select_ranks(v: &mut [f64], ranks: &[usize], base: usize) {
    if ranks.is_empty() || v.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let r = ranks[mid] - base;
    if r >= v.len() {
        return;
    }
    v.select_nth_unstable_by(r, f64::total_cmp);
    let (left, rest) = v.split_at_mut(r);
    select_ranks(left, &ranks[..mid], base);
    select_ranks(&mut rest[1..], &ranks[mid + 1..], base + r + 1);
}

impl Acc {
    fn new(name: &str, kind: Kind, sample_size: usize, sketch: bool) -> Self {
        let numeric = is_numeric_kind(kind);
        Acc {
            name: name.to_string(),
            kind,
            count: 0,
            missing: 0,
            mismatched: 0,
            hll: HllBuilder::new(),
            num: numeric.then(|| {
                (
                    Moments::default(),
                    Kll::default(),
                    Vec::with_capacity(sample_size.min(1 << 16)),
                    true,
                )
            }),
            cats: (!numeric).then(TopK::default),
            sketch,
            buf: Vec::new(),
            seed: hash64(name.as_bytes()) ^ 0x5851F42D4C957F2D,
        }
    }

    /// Fold in a chunk's column; `picks` are the (sample slot, row) pairs
    /// the row sampler chose in this chunk.
    fn add(&mut self, col: &tabular::Column, picks: &[(usize, usize)]) {
        self.count += col.len() as u64;
        self.missing += col.missing() as u64;
        if let Some((mom, kll, res, integral)) = &mut self.num {
            let buf = &mut self.buf;
            buf.clear();
            let sketch = self.sketch;
            let mut push = |x: f64| {
                mom.add(x);
                if sketch {
                    buf.push(x);
                }
                *integral &= x.fract() == 0.0;
            };
            let mut last_bits = None;
            let mut add_hash = |x: f64, hll: &mut HllBuilder| {
                // runs of one value hash once (HLL ignores repeats anyway)
                let bits = x.to_bits();
                if last_bits != Some(bits) {
                    hll.add_hash(hash64(&bits.to_le_bytes()));
                    last_bits = Some(bits);
                }
            };
            if let Some(a) = col.numbers() {
                if a.null_count() == 0 {
                    for &x in a.values().iter() {
                        push(x);
                        add_hash(x, &mut self.hll);
                    }
                } else {
                    for x in a.iter().flatten() {
                        push(x);
                        add_hash(x, &mut self.hll);
                    }
                }
            } else {
                for i in 0..col.len() {
                    if let Some(x) = col.f64_at(i) {
                        push(x);
                        add_hash(x, &mut self.hll);
                    }
                }
            }
            if !self.buf.is_empty() {
                kll.merge(&chunk_kll(&mut self.buf, &mut self.seed));
            }
            let nums = col.numbers();
            for &(slot, row) in picks {
                let x = match nums {
                    Some(a) if a.is_valid(row) => a.value(row),
                    Some(_) => f64::NAN,
                    None => col.f64_at(row).unwrap_or(f64::NAN),
                };
                if slot == res.len() {
                    res.push(x);
                } else if let Some(v) = res.get_mut(slot) {
                    *v = x;
                }
            }
        } else if let Some(t) = &mut self.cats {
            let mut counts: HashMap<&str, u64> = HashMap::new();
            let owned: Vec<Option<String>>;
            if let ColumnData::Utf8(s) = &*col.data {
                for v in s.iter().flatten() {
                    *counts.entry(v).or_insert(0) += 1;
                }
            } else if let ColumnData::Boolean(b) = &*col.data {
                for v in b.iter().flatten() {
                    *counts.entry(if v { "true" } else { "false" }).or_insert(0) += 1;
                }
            } else {
                owned = (0..col.len()).map(|i| col.str_at(i)).collect();
                for v in owned.iter().flatten() {
                    *counts.entry(v.as_str()).or_insert(0) += 1;
                }
            }
            for v in counts.keys() {
                self.hll.add_hash(hash64(v.as_bytes()));
            }
            t.merge(&topk_from(counts));
        }
    }

    fn finish(self, exact: bool) -> ColumnStats {
        ColumnStats {
            name: self.name,
            kind: self.kind,
            count: self.count,
            missing: self.missing,
            mismatched: self.mismatched,
            distinct: self.hll.finish(),
            numeric: self.num.map(|(moments, kll, res, integral)| {
                let mut sample: Vec<f64> = res.into_iter().filter(|x| !x.is_nan()).collect();
                sample.sort_unstable_by(f64::total_cmp);
                NumericStats {
                    moments,
                    kll,
                    sample,
                    exact,
                    integral: integral && moments.count > 0,
                }
            }),
            categories: self.cats,
        }
    }
}

/// A [`TopK`] holding exactly these counts.
pub(crate) fn topk_from<S: AsRef<str>>(counts: impl IntoIterator<Item = (S, u64)>) -> TopK {
    let map: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), serde_json::Value::from(v)))
        .collect();
    serde_json::from_value(serde_json::json!({ "counts": map, "truncated": false }))
        .unwrap_or_default()
}

/// Accumulates chunks of one dataset (see the module docs).
pub struct Profiler {
    accs: Vec<Acc>,
    rows_sampler: Sampler,
    rows: u64,
    sample_size: usize,
}

impl Profiler {
    /// A profiler for these columns and kinds (the first chunk's, or the
    /// baseline's). `sample_size` bounds the per-column sample.
    pub fn new(columns: &[(String, Kind)], sample_size: usize) -> Self {
        Profiler {
            accs: columns
                .iter()
                .map(|(n, k)| Acc::new(n, *k, sample_size, true))
                .collect(),
            rows_sampler: Sampler::new(sample_size, 0x243F6A8885A308D3),
            rows: 0,
            sample_size,
        }
    }

    /// A profiler whose columns are those of `table`.
    pub fn for_table(table: &Table, sample_size: usize) -> Self {
        let cols: Vec<(String, Kind)> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.kind))
            .collect();
        Profiler::new(&cols, sample_size)
    }

    /// Skip the KLL quantile sketch (a check's current data needs only
    /// the sample; baselines keep the sketch for statistics.json).
    pub fn without_quantile_sketch(mut self) -> Self {
        self.accs.iter_mut().for_each(|a| a.sketch = false);
        self
    }

    pub fn sample_size(&self) -> usize {
        self.sample_size
    }

    /// Fold in one chunk. Its columns are matched by name; a chunk missing
    /// one of the profiler's columns, or with another kind for it, is an
    /// error (columns the profiler does not know are ignored).
    pub fn add(&mut self, chunk: &Table) -> Result<(), MonitorError> {
        let mut cols = Vec::with_capacity(self.accs.len());
        for a in &self.accs {
            let c = chunk
                .column(&a.name)
                .ok_or_else(|| MonitorError::Data(format!("a chunk has no column '{}'", a.name)))?;
            if c.kind != a.kind {
                return Err(MonitorError::Data(format!(
                    "column '{}' is {:?} in this chunk but {:?} before",
                    a.name, c.kind, a.kind
                )));
            }
            cols.push(c);
        }
        let mismatched: HashMap<&str, usize> = chunk
            .warnings
            .iter()
            .map(|w| (w.column.as_str(), w.count))
            .collect();
        let sampler = &mut self.rows_sampler;
        let picks: Vec<(usize, usize)> = (0..chunk.rows())
            .filter_map(|r| sampler.offer().map(|slot| (slot, r)))
            .collect();
        self.accs
            .par_iter_mut()
            .zip(cols.par_iter())
            .for_each(|(a, c)| {
                a.add(c, &picks);
                a.mismatched += mismatched.get(a.name.as_str()).copied().unwrap_or(0) as u64;
            });
        self.rows += chunk.rows() as u64;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn finish(self) -> DatasetStats {
        DatasetStats {
            rows: self.rows,
            columns: {
                let exact = self.rows_sampler.is_exact();
                self.accs.into_par_iter().map(|a| a.finish(exact)).collect()
            },
        }
    }
}

/// Profile a CSV or Parquet file by streaming it in chunks of `chunk_rows`
/// rows. `kinds` forces column kinds (a check reads current data with the
/// baseline's kinds); other columns' kinds come from the first chunk.
pub fn profile_path(
    path: &std::path::Path,
    kinds: &HashMap<String, Kind>,
    sample_size: usize,
    chunk_rows: usize,
) -> Result<DatasetStats, MonitorError> {
    profile_path_with(path, kinds, sample_size, chunk_rows, true)
}

/// [`profile_path`], choosing whether to keep the KLL quantile sketch.
pub fn profile_path_with(
    path: &std::path::Path,
    kinds: &HashMap<String, Kind>,
    sample_size: usize,
    chunk_rows: usize,
    quantile_sketch: bool,
) -> Result<DatasetStats, MonitorError> {
    let opts = tabular::ChunkOptions {
        rows: chunk_rows,
        kinds: kinds.clone(),
    };
    let mut chunks = tabular::read_chunks(path, &opts)?;
    // read the next chunk on another thread while this one is profiled
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Table, tabular::DataError>>(1);
    let reader = std::thread::spawn(move || {
        for c in chunks.by_ref() {
            let stop = c.is_err();
            if tx.send(c).is_err() || stop {
                break;
            }
        }
    });
    let mut profiler: Option<Profiler> = None;
    let mut result = Ok(());
    for chunk in rx {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                result = Err(e.into());
                break;
            }
        };
        let p = profiler.get_or_insert_with(|| {
            let p = Profiler::for_table(&chunk, sample_size);
            if quantile_sketch {
                p
            } else {
                p.without_quantile_sketch()
            }
        });
        if let Err(e) = p.add(&chunk) {
            result = Err(e);
            break;
        }
    }
    let _ = reader.join();
    result?;
    profiler
        .map(Profiler::finish)
        .ok_or_else(|| MonitorError::Data(format!("{}: no data rows", path.display())))
}

/// Profile rows given as JSON objects (e.g. captured endpoint requests),
/// with the kinds given per column; values that do not fit the kind count
/// as mismatched, absent keys and nulls as missing. Keys not in `columns`
/// are ignored.
pub fn table_from_records(
    records: &[serde_json::Map<String, serde_json::Value>],
    columns: &[(String, Kind)],
) -> Table {
    let mut table = Table::default();
    for (name, kind) in columns {
        let mut bad = 0usize;
        let col = if is_numeric_kind(*kind) {
            let vals: Vec<Option<f64>> = records
                .iter()
                .map(|r| match r.get(name) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::Number(n)) => n.as_f64(),
                    Some(serde_json::Value::String(s)) if tabular::is_missing(s) => None,
                    Some(serde_json::Value::String(s)) => {
                        let v = if *kind == Kind::Datetime {
                            tabular::parse_datetime(s).map(|ms| ms as f64)
                        } else {
                            tabular::parse_number(s)
                        };
                        bad += v.is_none() as usize;
                        v
                    }
                    Some(_) => {
                        bad += 1;
                        None
                    }
                })
                .collect();
            tabular::Column::from_f64(name, *kind, vals)
        } else {
            let vals: Vec<Option<String>> = records
                .iter()
                .map(|r| match r.get(name) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) if tabular::is_missing(s) => None,
                    Some(serde_json::Value::String(s)) => Some(s.trim().to_string()),
                    Some(serde_json::Value::Number(n)) => {
                        Some(n.as_f64().map_or(n.to_string(), tabular::format_number))
                    }
                    Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                    Some(_) => {
                        bad += 1;
                        None
                    }
                })
                .collect();
            tabular::Column::from_strings(name, *kind, vals)
        };
        if bad > 0 {
            table.warnings.push(tabular::Warning {
                column: name.clone(),
                count: bad,
                example: String::new(),
                line: 0,
                message: "values did not fit the column's kind".into(),
            });
        }
        table.columns.push(col);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservoir_is_exact_then_bounded() {
        let mut r = Reservoir::new(10, 1);
        (0..10).for_each(|i| r.add(i as f64));
        assert!(r.is_exact());
        let mut r2 = r.clone();
        r2.add(99.0);
        assert!(!r2.is_exact());
        assert_eq!(r2.clone().into_sorted().len(), 10);
        assert_eq!(
            r.into_sorted(),
            (0..10).map(|i| i as f64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_reservoir_is_uniform_over_the_stream() {
        let n = 200_000u64;
        let mut r = Reservoir::new(2000, 7);
        (0..n).for_each(|i| r.add(i as f64));
        let v = r.into_sorted();
        assert_eq!(v.len(), 2000);
        v.windows(2)
            .for_each(|w| assert!(w[0] < w[1], "no value twice"));
        // the share in each tenth of the stream is 0.1 (± 4 standard errors)
        for k in 0..10 {
            let lo = (k * n / 10) as f64;
            let hi = ((k + 1) * n / 10) as f64;
            let share = v.iter().filter(|&&x| x >= lo && x < hi).count() as f64 / 2000.0;
            assert!(
                (share - 0.1).abs() < 4.0 * (0.09f64 / 2000.0).sqrt(),
                "tenth {k}: {share}"
            );
        }
    }

    #[test]
    fn chunk_sketches_keep_quantiles_within_rank_error() {
        // 16 chunks of 6,250 shuffled values, merged
        let n = 100_000usize;
        let mut p = Profiler::new(&[("x".into(), Kind::Numeric)], 10);
        for c in 0..16 {
            let vals: Vec<Option<f64>> = (c * n / 16..(c + 1) * n / 16)
                .map(|i| Some(((i * 7919) % n) as f64))
                .collect();
            let t = Table {
                columns: vec![tabular::Column::from_f64("x", Kind::Numeric, vals)],
                warnings: vec![],
            };
            p.add(&t).unwrap();
        }
        let s = p.finish();
        let kll = &s.columns[0].numeric.as_ref().unwrap().kll;
        assert_eq!(kll.count(), n as u64);
        for q in [0.01, 0.1, 0.5, 0.9, 0.99] {
            let v = kll.quantile(q).unwrap();
            assert!((v / n as f64 - q).abs() < 0.02, "q={q}: {v}");
        }
        let mut off = Profiler::new(&[("x".into(), Kind::Numeric)], 10).without_quantile_sketch();
        off.add(&Table {
            columns: vec![tabular::Column::from_f64(
                "x",
                Kind::Numeric,
                vec![Some(1.0)],
            )],
            warnings: vec![],
        })
        .unwrap();
        assert_eq!(
            off.finish().columns[0]
                .numeric
                .as_ref()
                .unwrap()
                .kll
                .count(),
            0
        );
    }

    #[test]
    fn selected_ranks_are_the_sorted_values() {
        let mut v: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64).collect();
        let ranks = [0, 3, 250, 251, 500, 999];
        select_ranks(&mut v, &ranks, 0);
        for r in ranks {
            assert_eq!(v[r], r as f64);
        }
        let mut seed = 1;
        let mut vals: Vec<f64> = (0..1234).map(|i| ((i * 31) % 1234) as f64).collect();
        let k = chunk_kll(&mut vals, &mut seed);
        assert_eq!(k.count(), 1234);
        assert!((k.quantile(0.5).unwrap() - 617.0).abs() <= 8.0);
    }

    #[test]
    fn chunks_add_up_to_the_whole() {
        let t = Table {
            columns: vec![
                tabular::Column::from_f64(
                    "x",
                    Kind::Numeric,
                    vec![Some(1.0), None, Some(2.5), Some(-1.0)],
                ),
                tabular::Column::from_strings(
                    "c",
                    Kind::Categorical,
                    vec![Some("a".into()), Some("b".into()), Some("a".into()), None],
                ),
            ],
            warnings: vec![],
        };
        // the sample holds rows: all 4 fit
        let mut p = Profiler::for_table(&t, 4);
        p.add(&t.take(&[0, 1])).unwrap();
        p.add(&t.take(&[2, 3])).unwrap();
        let s = p.finish();
        assert_eq!(s.rows, 4);
        let x = s.column("x").unwrap();
        assert_eq!((x.count, x.missing), (4, 1));
        let n = x.numeric.as_ref().unwrap();
        assert_eq!(n.sample, [-1.0, 1.0, 2.5]);
        assert!(n.exact && !n.integral);
        let c = s.column("c").unwrap();
        assert_eq!(
            c.categories.as_ref().unwrap().top(5),
            [("a".to_string(), 2), ("b".to_string(), 1)]
        );
        assert_eq!(c.distinct.estimate(), 2.0);
        // three sampled rows of four: a uniform pick, no longer exact
        let mut p3 = Profiler::for_table(&t, 3);
        p3.add(&t).unwrap();
        let s3 = p3.finish();
        let n3 = s3.column("x").unwrap().numeric.as_ref().unwrap();
        assert!(!n3.exact && (2..=3).contains(&n3.sample.len()));
        let bad = t.take(&[0]);
        let mut q = Profiler::new(&[("y".into(), Kind::Numeric)], 3);
        assert!(q.add(&bad).unwrap_err().to_string().contains("'y'"));
    }

    #[test]
    fn json_records_become_a_table() {
        let recs: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(
            r#"[{"x": 1.5, "c": "a"}, {"x": "2", "c": 3}, {"x": "oops"}, {"x": null, "c": true}]"#,
        )
        .unwrap();
        let t = table_from_records(
            &recs,
            &[("x".into(), Kind::Numeric), ("c".into(), Kind::Categorical)],
        );
        assert_eq!(t.columns[0].f64_at(1), Some(2.0));
        assert_eq!(t.columns[0].missing(), 2);
        assert_eq!(t.warnings[0].count, 1);
        assert_eq!(t.columns[1].str_at(1).as_deref(), Some("3"));
        assert_eq!(t.columns[1].str_at(3).as_deref(), Some("true"));
    }
}
