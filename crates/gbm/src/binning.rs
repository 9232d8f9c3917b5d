//! Quantile binning of features (LightGBM's greedy bin finder).
//!
//! Every feature gets bin 0 for missing values (NaN, the missing category code, and for
//! categoricals also rare or unseen categories). Numeric values fall into bins
//! `1..num_bin`, bin `b` holding values in `(upper[b-2], upper[b-1]]`.

use crate::GbmError;
use crate::data::{Column, Dataset, MAX_CATEGORY_CODE};

const ZERO_THRESHOLD: f64 = 1e-35;

/// How the values of one feature map to bins.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BinMapper {
    /// `upper[j]` is the inclusive upper bound of bin `j + 1`; the last is `+inf`.
    Numeric { upper: Vec<f64> },
    /// Bin `b >= 1` holds category `bin_to_cat[b - 1]`; `cat_to_bin[code]` is 0 when unmapped.
    Categorical {
        bin_to_cat: Vec<u32>,
        cat_to_bin: Vec<u32>,
        missing: u32,
    },
}

impl BinMapper {
    /// Number of bins including the missing bin 0.
    pub fn num_bin(&self) -> usize {
        match self {
            BinMapper::Numeric { upper } => upper.len() + 1,
            BinMapper::Categorical { bin_to_cat, .. } => bin_to_cat.len() + 1,
        }
    }

    pub fn is_categorical(&self) -> bool {
        matches!(self, BinMapper::Categorical { .. })
    }

    /// Upper bound (inclusive) of numeric bin `bin` (>= 1).
    pub fn upper_bound(&self, bin: u32) -> f64 {
        match self {
            BinMapper::Numeric { upper } => upper[bin as usize - 1],
            BinMapper::Categorical { .. } => f64::NAN,
        }
    }

    /// Category code of categorical bin `bin` (>= 1).
    pub fn bin_category(&self, bin: u32) -> u32 {
        match self {
            BinMapper::Categorical { bin_to_cat, .. } => bin_to_cat[bin as usize - 1],
            BinMapper::Numeric { .. } => 0,
        }
    }

    /// Bin of a numeric value.
    #[inline]
    pub fn value_to_bin(upper: &[f64], x: f64) -> u32 {
        if x.is_nan() {
            return 0;
        }
        // first j with x <= upper[j]; the last bound is +inf so one always exists.
        let j = upper.partition_point(|&u| u < x);
        (j.min(upper.len() - 1) + 1) as u32
    }

    /// Fits a mapper on a training column.
    pub fn fit(
        column: &Column,
        col_index: usize,
        max_bin: usize,
        min_data_in_bin: usize,
    ) -> Result<BinMapper, GbmError> {
        match column {
            Column::Numeric(values) => {
                let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
                let has_missing = v.len() < values.len();
                v.sort_unstable_by(f64::total_cmp);
                let mut distinct: Vec<f64> = Vec::new();
                let mut counts: Vec<usize> = Vec::new();
                for x in v {
                    // -0.0 and 0.0 compare equal here, which is what we want.
                    if distinct.last().is_some_and(|&d| d == x) {
                        if let Some(c) = counts.last_mut() {
                            *c += 1;
                        }
                    } else {
                        distinct.push(x);
                        counts.push(1);
                    }
                }
                let total: usize = counts.iter().sum();
                let max_bin = if has_missing { max_bin - 1 } else { max_bin }.max(1);
                let upper = if distinct.is_empty() {
                    vec![f64::INFINITY]
                } else {
                    find_bin_with_zero_as_one_bin(
                        &distinct,
                        &counts,
                        max_bin,
                        total,
                        min_data_in_bin,
                    )
                };
                Ok(BinMapper::Numeric { upper })
            }
            Column::Categorical { codes, missing } => {
                let mut max_code = 0u32;
                for &c in codes {
                    if c == *missing {
                        continue;
                    }
                    if c >= MAX_CATEGORY_CODE {
                        return Err(GbmError::CategoryCodeTooLarge {
                            column: col_index,
                            code: c,
                            max: MAX_CATEGORY_CODE,
                        });
                    }
                    max_code = max_code.max(c);
                }
                let mut counts = vec![0usize; max_code as usize + 1];
                for &c in codes {
                    if c != *missing {
                        counts[c as usize] += 1;
                    }
                }
                let mut cats: Vec<u32> =
                    (0..=max_code).filter(|&c| counts[c as usize] > 0).collect();
                // most frequent first; ties by code for determinism
                cats.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
                // LightGBM keeps categories by frequency while fewer than `max_bin` are
                // kept, stopping at the first rare one (after the two most frequent).
                let mut bin_to_cat = Vec::new();
                for (i, &c) in cats.iter().enumerate() {
                    if bin_to_cat.len() >= max_bin
                        || (counts[c as usize] < min_data_in_bin && i > 1)
                    {
                        break;
                    }
                    bin_to_cat.push(c);
                }
                let mut cat_to_bin = vec![0u32; max_code as usize + 1];
                for (b, &c) in bin_to_cat.iter().enumerate() {
                    cat_to_bin[c as usize] = b as u32 + 1;
                }
                Ok(BinMapper::Categorical {
                    bin_to_cat,
                    cat_to_bin,
                    missing: *missing,
                })
            }
        }
    }

    /// Bins a whole column (which must be of the mapper's kind; checked by the caller).
    pub fn bin_column(&self, column: &Column) -> BinCol {
        let n = column.len();
        let wide = self.num_bin() > 256;
        let mut out: Vec<u32> = Vec::with_capacity(n);
        match (self, column) {
            (BinMapper::Numeric { upper }, Column::Numeric(v)) => {
                out.extend(v.iter().map(|&x| Self::value_to_bin(upper, x)));
            }
            (
                BinMapper::Categorical {
                    cat_to_bin,
                    missing,
                    ..
                },
                Column::Categorical { codes, .. },
            ) => {
                out.extend(codes.iter().map(|&c| {
                    if c == *missing {
                        0
                    } else {
                        cat_to_bin.get(c as usize).copied().unwrap_or(0)
                    }
                }));
            }
            // Kind mismatch is rejected before binning; map everything to missing.
            _ => out.resize(n, 0),
        }
        if wide {
            BinCol::U16(out.into_iter().map(|b| b as u16).collect())
        } else {
            BinCol::U8(out.into_iter().map(|b| b as u8).collect())
        }
    }
}

/// A binned column: `u8` when at most 256 bins, else `u16`.
#[derive(Debug, Clone)]
pub(crate) enum BinCol {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

impl BinCol {
    #[inline]
    pub fn get(&self, row: usize) -> u32 {
        match self {
            BinCol::U8(v) => v[row] as u32,
            BinCol::U16(v) => v[row] as u32,
        }
    }
}

fn midpoint(a: f64, b: f64) -> f64 {
    let m = (a + b) / 2.0;
    // keep the bound strictly below b so that b falls into the next bin
    if m >= b { a } else { m }
}

/// LightGBM's `GreedyFindBin`: returns inclusive upper bounds, the last being +inf.
pub(crate) fn greedy_find_bin(
    distinct: &[f64],
    counts: &[usize],
    max_bin: usize,
    total_cnt: usize,
    min_data_in_bin: usize,
) -> Vec<f64> {
    let n = distinct.len();
    let mut bounds: Vec<f64> = Vec::new();
    if n == 0 {
        bounds.push(f64::INFINITY);
        return bounds;
    }
    if n <= max_bin {
        let mut cur = 0usize;
        for i in 0..n - 1 {
            cur += counts[i];
            if cur >= min_data_in_bin {
                let val = midpoint(distinct[i], distinct[i + 1]);
                if bounds.last().is_none_or(|&l| l < val) {
                    bounds.push(val);
                    cur = 0;
                }
            }
        }
        bounds.push(f64::INFINITY);
        return bounds;
    }
    let mut max_bin = max_bin;
    if let Some(cap) = total_cnt.checked_div(min_data_in_bin) {
        max_bin = max_bin.min(cap).max(1);
    }
    let mut mean_bin_size = total_cnt as f64 / max_bin as f64;
    let mut rest_bin_cnt = max_bin as i64;
    let mut rest_sample_cnt = total_cnt as i64;
    let is_big: Vec<bool> = counts.iter().map(|&c| c as f64 >= mean_bin_size).collect();
    for i in 0..n {
        if is_big[i] {
            rest_bin_cnt -= 1;
            rest_sample_cnt -= counts[i] as i64;
        }
    }
    mean_bin_size = rest_sample_cnt as f64 / rest_bin_cnt.max(1) as f64;
    let mut upper_bounds = vec![f64::INFINITY; max_bin];
    let mut lower_bounds = vec![f64::INFINITY; max_bin];
    let mut bin_cnt = 0usize;
    lower_bounds[0] = distinct[0];
    let mut cur = 0usize;
    for i in 0..n - 1 {
        if !is_big[i] {
            rest_sample_cnt -= counts[i] as i64;
        }
        cur += counts[i];
        if is_big[i]
            || cur as f64 >= mean_bin_size
            || (is_big[i + 1] && cur as f64 >= (mean_bin_size * 0.5).max(1.0))
        {
            upper_bounds[bin_cnt] = distinct[i];
            bin_cnt += 1;
            lower_bounds[bin_cnt] = distinct[i + 1];
            if bin_cnt >= max_bin - 1 {
                break;
            }
            cur = 0;
            if !is_big[i] {
                rest_bin_cnt -= 1;
                mean_bin_size = rest_sample_cnt as f64 / rest_bin_cnt.max(1) as f64;
            }
        }
    }
    bin_cnt += 1;
    for i in 0..bin_cnt - 1 {
        let val = midpoint(upper_bounds[i], lower_bounds[i + 1]);
        if bounds.last().is_none_or(|&l| l < val) {
            bounds.push(val);
        }
    }
    bounds.push(f64::INFINITY);
    bounds
}

/// LightGBM's `FindBinWithZeroAsOneBin`: negative values, zero and positive values are
/// binned separately so that zero always has a bin of its own.
pub(crate) fn find_bin_with_zero_as_one_bin(
    distinct: &[f64],
    counts: &[usize],
    max_bin: usize,
    total_cnt: usize,
    min_data_in_bin: usize,
) -> Vec<f64> {
    let n = distinct.len();
    let mut left_cnt_data = 0usize;
    let mut cnt_zero = 0usize;
    let mut right_cnt_data = 0usize;
    for i in 0..n {
        if distinct[i] <= -ZERO_THRESHOLD {
            left_cnt_data += counts[i];
        } else if distinct[i] > ZERO_THRESHOLD {
            right_cnt_data += counts[i];
        } else {
            cnt_zero += counts[i];
        }
    }
    let left_cnt = distinct
        .iter()
        .position(|&d| d > -ZERO_THRESHOLD)
        .unwrap_or(n);
    let mut bounds: Vec<f64> = Vec::new();
    if left_cnt > 0 && max_bin > 1 {
        let denom = (total_cnt - cnt_zero).max(1) as f64;
        let left_max_bin = ((left_cnt_data as f64 / denom * (max_bin - 1) as f64) as usize).max(1);
        bounds = greedy_find_bin(
            &distinct[..left_cnt],
            &counts[..left_cnt],
            left_max_bin,
            left_cnt_data,
            min_data_in_bin,
        );
        if let Some(last) = bounds.last_mut() {
            *last = -ZERO_THRESHOLD;
        }
    }
    let right_start = (left_cnt..n).find(|&i| distinct[i] > ZERO_THRESHOLD);
    let right_max_bin = (max_bin as i64) - 1 - bounds.len() as i64;
    match right_start {
        Some(rs) if right_max_bin > 0 => {
            let right = greedy_find_bin(
                &distinct[rs..],
                &counts[rs..],
                right_max_bin as usize,
                right_cnt_data,
                min_data_in_bin,
            );
            bounds.push(ZERO_THRESHOLD);
            bounds.extend(right);
        }
        _ => bounds.push(f64::INFINITY),
    }
    // A feature whose values are all zero (or all negative) may end with a finite bound.
    if bounds.last().is_none_or(|&l| l != f64::INFINITY) {
        bounds.push(f64::INFINITY);
    }
    bounds
}

/// Every feature binned, and which features can split.
pub(crate) struct Binned {
    pub mappers: Vec<BinMapper>,
    pub cols: Vec<BinCol>,
    pub usable: Vec<usize>,
}

/// Bin every feature of `data` (in parallel when `threads > 1`) and list
/// the usable ones: a feature whose training values all fall into one bin
/// can never split.
pub(crate) fn bin_features(
    data: &Dataset,
    max_bin: usize,
    min_data_in_bin: usize,
    threads: usize,
) -> Result<Binned, GbmError> {
    use rayon::prelude::*;
    let n = data.n_rows();
    let nf = data.n_features();
    let fit_one = |f: usize| -> Result<(BinMapper, BinCol), GbmError> {
        let col = &data.columns()[f];
        let m = BinMapper::fit(col, f, max_bin, min_data_in_bin)?;
        let b = m.bin_column(col);
        Ok((m, b))
    };
    let fitted: Vec<(BinMapper, BinCol)> = if threads > 1 {
        (0..nf)
            .into_par_iter()
            .map(fit_one)
            .collect::<Result<_, _>>()?
    } else {
        (0..nf).map(fit_one).collect::<Result<_, _>>()?
    };
    let (mappers, cols): (Vec<BinMapper>, Vec<BinCol>) = fitted.into_iter().unzip();
    let usable = (0..nf)
        .filter(|&f| {
            let c = &cols[f];
            let first = c.get(0);
            (1..n).any(|r| c.get(r) != first)
        })
        .collect();
    Ok(Binned {
        mappers,
        cols,
        usable,
    })
}
