//! Mergeable sketches, written here (each is under a hundred lines and the
//! crates that offer them either drag in heavy trees or do not serialise):
//!
//! - [`Hll`]: HyperLogLog distinct counts (p = 12, ±1.6 %), exact while
//!   there are at most 1024 distinct values;
//! - [`Kll`]: the KLL quantile sketch (Karnin, Lang, Liberty 2016), k = 200
//!   (rank error about 1 %), deterministic given its seed;
//! - [`TopK`]: value frequencies, exact up to 10 000 distinct values, then
//!   pruned to the most frequent;
//! - [`Moments`]: count, sum, mean, M2, min, max with Chan's parallel merge.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// FNV-1a then the splitmix64 finaliser: a fast, stable 64-bit hash (stable
/// across builds, which `std`'s hasher does not promise).
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    mix(h)
}

pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

const P: u32 = 12;
const M: usize = 1 << P;
const EXACT_LIMIT: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hll {
    /// Registers as hex (two characters each), to keep JSON small.
    registers: String,
    /// Hashes of the values while there are few; None once past the limit.
    exact: Option<BTreeSet<u64>>,
}

impl Default for Hll {
    fn default() -> Self {
        Hll {
            registers: "00".repeat(M),
            exact: Some(BTreeSet::new()),
        }
    }
}

fn decode(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}
fn encode(r: &[u8]) -> String {
    r.iter().map(|b| format!("{b:02x}")).collect()
}

/// The working form of an [`Hll`] while values stream in.
pub struct HllBuilder {
    regs: Vec<u8>,
    exact: Option<BTreeSet<u64>>,
}

impl HllBuilder {
    pub fn new() -> Self {
        HllBuilder {
            regs: vec![0; M],
            exact: Some(BTreeSet::new()),
        }
    }
    pub fn add_hash(&mut self, h: u64) {
        let idx = (h >> (64 - P)) as usize;
        let rank = ((h << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
        if rank > self.regs[idx] {
            self.regs[idx] = rank;
        }
        if let Some(set) = &mut self.exact {
            set.insert(h);
            if set.len() > EXACT_LIMIT {
                self.exact = None;
            }
        }
    }
    pub fn finish(self) -> Hll {
        Hll {
            registers: encode(&self.regs),
            exact: self.exact,
        }
    }
}

impl Default for HllBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl Hll {
    pub fn estimate(&self) -> f64 {
        if let Some(e) = &self.exact {
            return e.len() as f64;
        }
        let regs = decode(&self.registers);
        let m = M as f64;
        let sum: f64 = regs.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let zeros = regs.iter().filter(|&&r| r == 0).count();
        if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        }
    }
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }
    pub fn merge(&mut self, other: &Hll) {
        let a = decode(&self.registers);
        let b = decode(&other.registers);
        let regs: Vec<u8> = a.iter().zip(&b).map(|(x, y)| *x.max(y)).collect();
        self.registers = encode(&regs);
        self.exact = match (self.exact.take(), &other.exact) {
            (Some(mut x), Some(y)) => {
                x.extend(y.iter().copied());
                (x.len() <= EXACT_LIMIT).then_some(x)
            }
            _ => None,
        };
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kll {
    k: u32,
    n: u64,
    levels: Vec<Vec<f64>>,
    seed: u64,
}

impl Default for Kll {
    fn default() -> Self {
        Kll::new(200)
    }
}

impl Kll {
    pub fn new(k: u32) -> Self {
        Kll {
            k: k.max(8),
            n: 0,
            levels: vec![Vec::new()],
            seed: 0x9E3779B97F4A7C15,
        }
    }
    pub fn count(&self) -> u64 {
        self.n
    }
    fn capacity(&self, h: usize) -> usize {
        let depth = self.levels.len() - 1 - h;
        ((self.k as f64) * (2.0f64 / 3.0).powi(depth as i32))
            .ceil()
            .max(2.0) as usize
    }
    fn coin(&mut self) -> usize {
        self.seed = mix(self.seed.wrapping_add(0x9E3779B97F4A7C15));
        (self.seed & 1) as usize
    }
    fn compress(&mut self) {
        let mut h = 0;
        while h < self.levels.len() {
            if self.levels[h].len() > self.capacity(h) {
                if h + 1 == self.levels.len() {
                    self.levels.push(Vec::new());
                }
                let mut items = std::mem::take(&mut self.levels[h]);
                items.sort_by(|a, b| a.total_cmp(b));
                // an odd item out stays at this level
                if items.len() % 2 == 1 {
                    self.levels[h].push(items.pop().unwrap_or(0.0));
                }
                let off = self.coin();
                let kept: Vec<f64> = items.iter().skip(off).step_by(2).copied().collect();
                self.levels[h + 1].extend(kept);
            }
            h += 1;
        }
    }
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        self.levels[0].push(x);
        if self.levels[0].len() > self.capacity(0) {
            self.compress();
        }
    }
    pub fn merge(&mut self, other: &Kll) {
        while self.levels.len() < other.levels.len() {
            self.levels.push(Vec::new());
        }
        for (h, items) in other.levels.iter().enumerate() {
            self.levels[h].extend(items);
        }
        self.n += other.n;
        self.seed ^= other.seed.rotate_left(17);
        self.compress();
    }
    fn weighted(&self) -> Vec<(f64, u64)> {
        let mut v: Vec<(f64, u64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(h, items)| items.iter().map(move |&x| (x, 1u64 << h)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }
    /// The value at rank `q` in [0, 1]; None when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let w = self.weighted();
        let total: u64 = w.iter().map(|x| x.1).sum();
        if total == 0 {
            return None;
        }
        let target = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut cum = 0u64;
        for (x, wt) in &w {
            cum += wt;
            if cum as f64 >= target {
                return Some(*x);
            }
        }
        w.last().map(|x| x.0)
    }
    /// Share of values ≤ x.
    pub fn cdf(&self, x: f64) -> f64 {
        let w = self.weighted();
        let total: u64 = w.iter().map(|x| x.1).sum();
        if total == 0 {
            return 0.0;
        }
        w.iter()
            .filter(|(v, _)| *v <= x)
            .map(|(_, wt)| wt)
            .sum::<u64>() as f64
            / total as f64
    }
}

const TOPK_CAP: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TopK {
    counts: BTreeMap<String, u64>,
    /// Whether rarer values were dropped (counts of the rest stay exact
    /// within the part of the data that kept them).
    truncated: bool,
}

impl TopK {
    pub fn add(&mut self, v: &str) {
        *self.counts.entry(v.to_string()).or_insert(0) += 1;
        if self.counts.len() > TOPK_CAP {
            self.prune();
        }
    }
    fn prune(&mut self) {
        let mut v: Vec<(String, u64)> = std::mem::take(&mut self.counts).into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(TOPK_CAP / 2);
        self.counts = v.into_iter().collect();
        self.truncated = true;
    }
    pub fn merge(&mut self, other: &TopK) {
        for (k, c) in &other.counts {
            *self.counts.entry(k.clone()).or_insert(0) += c;
        }
        self.truncated |= other.truncated;
        if self.counts.len() > TOPK_CAP {
            self.prune();
        }
    }
    /// The `n` most frequent values, most frequent first (ties by value).
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
    pub fn distinct_seen(&self) -> usize {
        self.counts.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub count: u64,
    pub sum: f64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            count: 0,
            sum: 0.0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        self.sum += x;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }
    pub fn merge(&mut self, o: &Moments) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        let n = (self.count + o.count) as f64;
        let d = o.mean - self.mean;
        self.mean += d * o.count as f64 / n;
        self.m2 += o.m2 + d * d * self.count as f64 * o.count as f64 / n;
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
    /// Sample standard deviation (n − 1), 0 for fewer than two values.
    pub fn std(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_is_exact_when_small_and_close_when_large() {
        let mut b = HllBuilder::new();
        for i in 0..500 {
            b.add_hash(hash64(format!("v{}", i % 300).as_bytes()));
        }
        let h = b.finish();
        assert!(h.is_exact());
        assert_eq!(h.estimate(), 300.0);
        let mut b = HllBuilder::new();
        for i in 0..100_000u64 {
            b.add_hash(hash64(&i.to_le_bytes()));
        }
        let e = b.finish().estimate();
        assert!((e - 100_000.0).abs() / 100_000.0 < 0.05, "{e}");
    }

    #[test]
    fn kll_quantiles_within_rank_error() {
        let mut k = Kll::default();
        for i in 0..100_000 {
            k.add(((i * 7919) % 100_000) as f64);
        }
        for q in [0.01, 0.25, 0.5, 0.9, 0.99] {
            let v = k.quantile(q).unwrap();
            assert!((v / 100_000.0 - q).abs() < 0.02, "q={q} got {v}");
        }
        assert!((k.cdf(50_000.0) - 0.5).abs() < 0.02);
    }

    #[test]
    fn moments_merge_equals_whole() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i * 37) % 101) as f64 * 0.5 - 3.0)
            .collect();
        let mut whole = Moments::default();
        xs.iter().for_each(|&x| whole.add(x));
        let (mut a, mut b) = (Moments::default(), Moments::default());
        xs[..333].iter().for_each(|&x| a.add(x));
        xs[333..].iter().for_each(|&x| b.add(x));
        a.merge(&b);
        assert_eq!(a.count, whole.count);
        assert!((a.mean - whole.mean).abs() < 1e-9 && (a.std() - whole.std()).abs() < 1e-9);
        assert_eq!((a.min, a.max), (whole.min, whole.max));
    }
}
