//! Dense encoding for learners that need every input finite and on one
//! scale (linear models, the MLP), fitted on training features only:
//!
//! - numeric feature → median-imputed, standardised (mean 0, sd 1) value,
//!   plus a 0/1 "was missing" indicator when training had missing values;
//! - categorical feature → one-hot over the `MAX_ONE_HOT` most frequent
//!   training codes; other codes, unseen codes and missing values are all
//!   zeros.
//!
//! Input is the tree learners' feature representation (a `gbm::Dataset`,
//! or a row in its convention: NaN = missing, categorical codes as f64), so
//! the same `Preprocessor` serves every learner.

use serde::{Deserialize, Serialize};

pub const MAX_ONE_HOT: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DenseFeature {
    Numeric {
        median: f64,
        mean: f64,
        sd: f64,
        indicator: bool,
    },
    OneHot {
        codes: Vec<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseEncoder {
    pub features: Vec<DenseFeature>,
    pub width: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl DenseEncoder {
    pub fn fit(x: &gbm::Dataset) -> DenseEncoder {
        let mut features = Vec::new();
        let mut width = 0;
        for col in x.columns() {
            match col {
                gbm::Column::Numeric(v) => {
                    let present: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
                    let med = median(present.clone());
                    let filled: Vec<f64> = v
                        .iter()
                        .map(|x| if x.is_finite() { *x } else { med })
                        .collect();
                    let n = filled.len().max(1) as f64;
                    let mean = filled.iter().sum::<f64>() / n;
                    let var = filled.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                    let sd = if var > 1e-24 { var.sqrt() } else { 1.0 };
                    let indicator = present.len() < v.len();
                    width += 1 + usize::from(indicator);
                    features.push(DenseFeature::Numeric {
                        median: med,
                        mean,
                        sd,
                        indicator,
                    });
                }
                gbm::Column::Categorical { codes, missing } => {
                    let mut counts: std::collections::HashMap<u32, usize> =
                        std::collections::HashMap::new();
                    for &c in codes.iter().filter(|c| **c != *missing) {
                        *counts.entry(c).or_insert(0) += 1;
                    }
                    let mut top: Vec<(u32, usize)> = counts.into_iter().collect();
                    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    top.truncate(MAX_ONE_HOT);
                    let codes: Vec<u32> = top.into_iter().map(|t| t.0).collect();
                    width += codes.len();
                    features.push(DenseFeature::OneHot { codes });
                }
            }
        }
        DenseEncoder { features, width }
    }

    /// For each dense column, the index of the feature it comes from.
    pub fn column_owners(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.width);
        for (f, feat) in self.features.iter().enumerate() {
            let w = match feat {
                DenseFeature::Numeric { indicator, .. } => 1 + usize::from(*indicator),
                DenseFeature::OneHot { codes } => codes.len(),
            };
            out.extend(std::iter::repeat_n(f, w));
        }
        out
    }

    /// Encode one row (tree-learner convention) into `out` (len = width).
    pub fn encode_row(&self, row: &[f64], out: &mut [f64]) {
        let mut j = 0;
        for (f, &x) in self.features.iter().zip(row) {
            match f {
                DenseFeature::Numeric {
                    median,
                    mean,
                    sd,
                    indicator,
                } => {
                    let missing = !x.is_finite();
                    out[j] = ((if missing { *median } else { x }) - mean) / sd;
                    j += 1;
                    if *indicator {
                        out[j] = f64::from(u8::from(missing));
                        j += 1;
                    }
                }
                DenseFeature::OneHot { codes } => {
                    for (k, &c) in codes.iter().enumerate() {
                        out[j + k] = f64::from(u8::from(!x.is_nan() && x as u32 == c));
                    }
                    j += codes.len();
                }
            }
        }
    }

    /// Encode a whole dataset, row-major `n × width`.
    pub fn encode(&self, x: &gbm::Dataset) -> Vec<f64> {
        let n = x.n_rows();
        let mut out = vec![0.0; n * self.width];
        let mut row = vec![0.0; x.n_features()];
        for i in 0..n {
            if x.row_into(i, &mut row).is_ok() {
                self.encode_row(&row, &mut out[i * self.width..(i + 1) * self.width]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imputes_scales_and_one_hot_encodes() {
        let x = gbm::Dataset::new(vec![
            gbm::Column::Numeric(vec![1.0, f64::NAN, 3.0, 5.0]),
            gbm::Column::Categorical {
                codes: vec![0, 1, 1, 9],
                missing: 9,
            },
        ])
        .unwrap();
        let e = DenseEncoder::fit(&x);
        assert_eq!(e.width, 2 + 2, "value + indicator, two one-hot codes");
        let d = e.encode(&x);
        // median 3 fills the gap; filled column [1,3,3,5] has mean 3, sd sqrt(2)
        let s = 2f64.sqrt();
        assert!((d[0] - (-2.0 / s)).abs() < 1e-12 && d[1] == 0.0);
        assert!(
            d[4] == 0.0 && d[5] == 1.0,
            "missing value → median, indicator set"
        );
        // code 1 is most frequent, so it comes first
        assert_eq!(&d[2..4], &[0.0, 1.0]);
        assert_eq!(&d[6..8], &[1.0, 0.0]);
        assert_eq!(&d[14..16], &[0.0, 0.0], "the missing code is all zeros");
        let mut out = vec![0.0; e.width];
        e.encode_row(&[f64::NAN, 42.0], &mut out);
        assert_eq!(&out[1..], &[1.0, 0.0, 0.0], "unseen codes are all zeros");
    }
}
