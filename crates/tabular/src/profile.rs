//! Dataset profiles: per column counts, missing values, distinct values,
//! moments, quantiles and histogram (numeric and datetime columns), top
//! categories (everything else). Built from mergeable sketches, so
//! `profile(a) merged with profile(b)` equals `profile(a ∪ b)` within sketch
//! error. Serialised as JSON with a format version; Model Monitor keeps
//! them as baselines.

use serde::{Deserialize, Serialize};

use crate::sketch::{Hll, HllBuilder, Kll, Moments, TopK, hash64};
use crate::table::{Kind, Table};

pub const PROFILE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub version: u32,
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: Kind,
    /// Rows, missing or not.
    pub count: u64,
    pub missing: u64,
    pub distinct: Hll,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<TopK>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NumericProfile {
    pub moments: Moments,
    pub sketch: Kll,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "profile format version {0} is not supported (this build reads version {PROFILE_VERSION})"
    )]
    Version(u32),
    #[error("not a profile: {0}")]
    Parse(String),
    #[error("cannot merge profiles of different columns: {0}")]
    Mismatch(String),
}

/// One bin of a histogram: `[lower, upper)` (the last bin includes `upper`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
}

impl ColumnProfile {
    pub fn distinct_estimate(&self) -> f64 {
        self.distinct.estimate()
    }
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.numeric.as_ref().and_then(|n| n.sketch.quantile(q))
    }
    /// `bins` equal-width bins between min and max, counts from the sketch.
    pub fn histogram(&self, bins: usize) -> Vec<Bin> {
        let Some(n) = &self.numeric else {
            return Vec::new();
        };
        let m = &n.moments;
        if m.count == 0 || bins == 0 {
            return Vec::new();
        }
        if m.max <= m.min {
            return vec![Bin {
                lower: m.min,
                upper: m.max,
                count: m.count as f64,
            }];
        }
        let width = (m.max - m.min) / bins as f64;
        let total = m.count as f64;
        let mut prev = 0.0;
        (0..bins)
            .map(|i| {
                let lower = m.min + width * i as f64;
                let upper = if i + 1 == bins { m.max } else { lower + width };
                let c = if i + 1 == bins {
                    1.0
                } else {
                    n.sketch.cdf(upper - width * 1e-9)
                };
                let count = ((c - prev) * total).max(0.0);
                prev = c;
                Bin {
                    lower,
                    upper,
                    count,
                }
            })
            .collect()
    }
}

impl Profile {
    /// Profile every column of a table.
    pub fn of(table: &Table) -> Profile {
        let rows = table.rows() as u64;
        let columns = table
            .columns
            .iter()
            .map(|c| {
                let mut hll = HllBuilder::new();
                let numeric_kind = matches!(c.kind, Kind::Numeric | Kind::Datetime);
                let mut num = numeric_kind.then(NumericProfile::default);
                let mut cats = (!numeric_kind).then(TopK::default);
                for i in 0..c.len() {
                    if let Some(v) = num.as_mut().and_then(|n| c.f64_at(i).map(|x| (n, x))) {
                        let (n, x) = v;
                        n.moments.add(x);
                        n.sketch.add(x);
                        hll.add_hash(hash64(&x.to_bits().to_le_bytes()));
                    } else if let Some(s) = c.str_at(i) {
                        hll.add_hash(hash64(s.as_bytes()));
                        if let Some(t) = cats.as_mut() {
                            t.add(&s);
                        }
                    }
                }
                ColumnProfile {
                    name: c.name.clone(),
                    kind: c.kind,
                    count: c.len() as u64,
                    missing: c.missing() as u64,
                    distinct: hll.finish(),
                    numeric: num,
                    categories: cats,
                }
            })
            .collect();
        Profile {
            version: PROFILE_VERSION,
            rows,
            columns,
        }
    }

    /// Fold another profile of the same columns into this one.
    pub fn merge(&mut self, other: &Profile) -> Result<(), ProfileError> {
        if self.columns.len() != other.columns.len() {
            return Err(ProfileError::Mismatch(format!(
                "{} columns vs {}",
                self.columns.len(),
                other.columns.len()
            )));
        }
        for (a, b) in self.columns.iter().zip(&other.columns) {
            if a.name != b.name || a.kind != b.kind {
                return Err(ProfileError::Mismatch(format!(
                    "'{}' ({:?}) vs '{}' ({:?})",
                    a.name, a.kind, b.name, b.kind
                )));
            }
        }
        self.rows += other.rows;
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.count += b.count;
            a.missing += b.missing;
            a.distinct.merge(&b.distinct);
            if let (Some(x), Some(y)) = (a.numeric.as_mut(), b.numeric.as_ref()) {
                x.moments.merge(&y.moments);
                x.sketch.merge(&y.sketch);
            }
            if let (Some(x), Some(y)) = (a.categories.as_mut(), b.categories.as_ref()) {
                x.merge(y);
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Profile, ProfileError> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| ProfileError::Parse(e.to_string()))?;
        let version = v.get("version").and_then(|x| x.as_u64()).unwrap_or(0) as u32;
        if version != PROFILE_VERSION {
            return Err(ProfileError::Version(version));
        }
        serde_json::from_value(v).map_err(|e| ProfileError::Parse(e.to_string()))
    }

    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }
}
