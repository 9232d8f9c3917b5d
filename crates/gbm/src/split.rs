//! Split finding on one feature's histogram (LightGBM's rules).

/// Histogram entry: (sum of gradients, sum of hessians).
pub(crate) type HistEntry = [f64; 2];

/// Regularisation and constraint settings for split finding.
#[derive(Debug, Clone)]
pub(crate) struct SplitConfig {
    pub lambda_l1: f64,
    pub lambda_l2: f64,
    pub min_data_in_leaf: usize,
    pub min_sum_hessian: f64,
    pub min_split_gain: f64,
    pub cat_smooth: f64,
    pub cat_l2: f64,
    pub max_cat_threshold: usize,
    pub min_data_per_group: usize,
    pub max_cat_to_onehot: usize,
}

/// Totals of a leaf or child.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sums {
    pub g: f64,
    pub h: f64,
    pub n: usize,
}

/// Best split of one feature, before it is tied to the feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeatureSplit {
    /// gain over the parent minus `min_split_gain` (> 0)
    pub gain: f64,
    /// numeric: bins `1..=threshold_bin` go left
    pub threshold_bin: u32,
    pub default_left: bool,
    /// categorical: bins going left (sorted); empty for numeric
    pub cat_bins: Vec<u32>,
    pub left: Sums,
    pub right: Sums,
    pub left_output: f64,
    pub right_output: f64,
}

#[inline]
fn threshold_l1(s: f64, l1: f64) -> f64 {
    let r = s.abs() - l1;
    if r > 0.0 { s.signum() * r } else { 0.0 }
}

/// Gain of a leaf: `ThresholdL1(G)^2 / (H + l2)`.
#[inline]
pub(crate) fn leaf_gain(g: f64, h: f64, l1: f64, l2: f64) -> f64 {
    let t = threshold_l1(g, l1);
    let d = h + l2;
    if d <= 0.0 { 0.0 } else { t * t / d }
}

/// Optimal leaf value: `-ThresholdL1(G) / (H + l2)`.
#[inline]
pub(crate) fn leaf_output(g: f64, h: f64, l1: f64, l2: f64) -> f64 {
    let d = h + l2;
    if d <= 0.0 {
        0.0
    } else {
        -threshold_l1(g, l1) / d
    }
}

impl SplitConfig {
    #[inline]
    fn ok(&self, s: &Sums) -> bool {
        s.n >= self.min_data_in_leaf && s.h >= self.min_sum_hessian
    }

    /// Best split of a numeric feature (bin 0 = missing), trying missing left and right.
    pub fn best_numeric(&self, hist: &[HistEntry], total: Sums) -> Option<FeatureSplit> {
        let nb = hist.len();
        if nb < 2 {
            return None;
        }
        let (l1, l2) = (self.lambda_l1, self.lambda_l2);
        let cnt_factor = if total.h > 0.0 {
            total.n as f64 / total.h
        } else {
            0.0
        };
        let cnt = |e: &HistEntry| (e[1] * cnt_factor + 0.5) as usize;
        let min_gain_shift = leaf_gain(total.g, total.h, l1, l2) + self.min_split_gain;
        let miss = hist[0];
        let has_missing = cnt(&miss) > 0 || miss[1] > 0.0 || miss[0] != 0.0;

        let mut best_gain = f64::NEG_INFINITY;
        let mut best: Option<(u32, bool, Sums)> = None;
        // pass 0: missing goes right; pass 1: missing goes left
        for pass in 0..2 {
            let missing_left = pass == 1;
            if missing_left && !has_missing {
                break;
            }
            let mut left = if missing_left {
                Sums {
                    g: miss[0],
                    h: miss[1],
                    n: cnt(&miss),
                }
            } else {
                Sums::default()
            };
            // with missing right, t = nb-1 puts every value left and only missing right
            let t_end = if missing_left || !has_missing {
                nb - 1
            } else {
                nb
            };
            for (t, e) in hist.iter().enumerate().take(t_end).skip(1) {
                if t > 1 && e[1] == 0.0 && e[0] == 0.0 {
                    // An empty bin gives the same partition as the previous threshold, which
                    // was evaluated. Not at t = 1: in the missing-left pass the starting
                    // partition (missing alone on the left) has not been evaluated yet.
                    continue;
                }
                left.g += e[0];
                left.h += e[1];
                left.n += cnt(e);
                if !self.ok(&left) {
                    continue;
                }
                let right = Sums {
                    g: total.g - left.g,
                    h: total.h - left.h,
                    n: total.n.saturating_sub(left.n),
                };
                if !self.ok(&right) {
                    break;
                }
                let gain = leaf_gain(left.g, left.h, l1, l2) + leaf_gain(right.g, right.h, l1, l2);
                if gain > min_gain_shift && gain > best_gain {
                    best_gain = gain;
                    best = Some((t as u32, missing_left, left));
                }
            }
        }
        let (t, missing_left, left) = best?;
        let right = Sums {
            g: total.g - left.g,
            h: total.h - left.h,
            n: total.n.saturating_sub(left.n),
        };
        // without missing values in training, route future missing values to the bigger side
        let default_left = if has_missing {
            missing_left
        } else {
            left.n >= right.n
        };
        Some(FeatureSplit {
            gain: best_gain - min_gain_shift,
            threshold_bin: t,
            default_left,
            cat_bins: Vec::new(),
            left,
            right,
            left_output: leaf_output(left.g, left.h, l1, l2),
            right_output: leaf_output(right.g, right.h, l1, l2),
        })
    }

    /// Best split of a categorical feature (bin 0 = missing/other, always right).
    pub fn best_categorical(&self, hist: &[HistEntry], total: Sums) -> Option<FeatureSplit> {
        let nb = hist.len();
        if nb < 2 {
            return None;
        }
        let l1 = self.lambda_l1;
        let cnt_factor = if total.h > 0.0 {
            total.n as f64 / total.h
        } else {
            0.0
        };
        let cnt = |e: &HistEntry| (e[1] * cnt_factor + 0.5) as usize;
        let min_gain_shift = leaf_gain(total.g, total.h, l1, self.lambda_l2) + self.min_split_gain;
        let sub = |l: &Sums| Sums {
            g: total.g - l.g,
            h: total.h - l.h,
            n: total.n.saturating_sub(l.n),
        };
        let mut best_gain = f64::NEG_INFINITY;
        let mut best_bins: Vec<u32> = Vec::new();
        let mut best_left = Sums::default();
        let l2;
        if nb - 1 <= self.max_cat_to_onehot {
            l2 = self.lambda_l2;
            for (t, e) in hist.iter().enumerate().skip(1) {
                let left = Sums {
                    g: e[0],
                    h: e[1],
                    n: cnt(e),
                };
                if !self.ok(&left) {
                    continue;
                }
                let right = sub(&left);
                if !self.ok(&right) {
                    continue;
                }
                let gain = leaf_gain(left.g, left.h, l1, l2) + leaf_gain(right.g, right.h, l1, l2);
                if gain > min_gain_shift && gain > best_gain {
                    best_gain = gain;
                    best_bins = vec![t as u32];
                    best_left = left;
                }
            }
        } else {
            l2 = self.lambda_l2 + self.cat_l2;
            let mut sorted: Vec<u32> = (1..nb as u32)
                .filter(|&t| cnt(&hist[t as usize]) as f64 >= self.cat_smooth)
                .collect();
            let ctr = |t: u32| {
                let e = hist[t as usize];
                e[0] / (e[1] + self.cat_smooth)
            };
            sorted.sort_by(|&a, &b| ctr(a).total_cmp(&ctr(b)).then(a.cmp(&b)));
            let used = sorted.len();
            let max_num_cat = self.max_cat_threshold.min(used.div_ceil(2));
            let mut best_pos: Option<(bool, usize)> = None;
            for reverse in [false, true] {
                let mut left = Sums::default();
                let mut cnt_group = 0usize;
                for i in 0..used.min(max_num_cat) {
                    let t = if reverse {
                        sorted[used - 1 - i]
                    } else {
                        sorted[i]
                    };
                    let e = &hist[t as usize];
                    let c = cnt(e);
                    left.g += e[0];
                    left.h += e[1];
                    left.n += c;
                    cnt_group += c;
                    if !self.ok(&left) {
                        continue;
                    }
                    let right = sub(&left);
                    if !self.ok(&right) {
                        break;
                    }
                    if cnt_group < self.min_data_per_group {
                        continue;
                    }
                    cnt_group = 0;
                    let gain =
                        leaf_gain(left.g, left.h, l1, l2) + leaf_gain(right.g, right.h, l1, l2);
                    if gain > min_gain_shift && gain > best_gain {
                        best_gain = gain;
                        best_pos = Some((reverse, i));
                        best_left = left;
                    }
                }
            }
            if let Some((reverse, i)) = best_pos {
                best_bins = if reverse {
                    sorted[used - 1 - i..].to_vec()
                } else {
                    sorted[..=i].to_vec()
                };
                best_bins.sort_unstable();
            }
        }
        if best_bins.is_empty() {
            return None;
        }
        let left = best_left;
        let right = sub(&left);
        Some(FeatureSplit {
            gain: best_gain - min_gain_shift,
            threshold_bin: 0,
            default_left: false,
            cat_bins: best_bins,
            left,
            right,
            left_output: leaf_output(left.g, left.h, l1, l2),
            right_output: leaf_output(right.g, right.h, l1, l2),
        })
    }

    /// Extra trees: one random split of a numeric feature. The threshold bin is drawn
    /// uniformly (from `draw`) between the node's smallest and largest non-empty value
    /// bins; missing values go to the better side. `None` when the feature is constant in
    /// the node or the split violates a constraint or has no positive gain.
    pub fn random_numeric(
        &self,
        hist: &[HistEntry],
        total: Sums,
        draw: u64,
    ) -> Option<FeatureSplit> {
        let nb = hist.len();
        if nb < 2 {
            return None;
        }
        let nonempty = |e: &HistEntry| e[1] > 0.0 || e[0] != 0.0;
        let lo = (1..nb).find(|&b| nonempty(&hist[b]))?;
        let hi = (1..nb).rev().find(|&b| nonempty(&hist[b]))?;
        let miss = hist[0];
        let has_missing = nonempty(&miss);
        let t = if lo < hi {
            lo + (draw % (hi - lo) as u64) as usize
        } else if has_missing {
            // a single present bin: split present vs missing
            hi
        } else {
            return None;
        };
        let (l1, l2) = (self.lambda_l1, self.lambda_l2);
        let cnt_factor = if total.h > 0.0 {
            total.n as f64 / total.h
        } else {
            0.0
        };
        let cnt = |e: &HistEntry| (e[1] * cnt_factor + 0.5) as usize;
        let min_gain_shift = leaf_gain(total.g, total.h, l1, l2) + self.min_split_gain;
        let mut present = Sums::default();
        for e in &hist[1..=t] {
            present.g += e[0];
            present.h += e[1];
            present.n += cnt(e);
        }
        let mut best: Option<(f64, bool, Sums)> = None;
        for missing_left in [false, true] {
            if missing_left && !has_missing {
                break;
            }
            let left = if missing_left {
                Sums {
                    g: present.g + miss[0],
                    h: present.h + miss[1],
                    n: present.n + cnt(&miss),
                }
            } else {
                present
            };
            let right = Sums {
                g: total.g - left.g,
                h: total.h - left.h,
                n: total.n.saturating_sub(left.n),
            };
            if !self.ok(&left) || !self.ok(&right) {
                continue;
            }
            let gain = leaf_gain(left.g, left.h, l1, l2) + leaf_gain(right.g, right.h, l1, l2);
            if gain > min_gain_shift && best.as_ref().is_none_or(|b| gain > b.0) {
                best = Some((gain, missing_left, left));
            }
        }
        let (gain, missing_left, left) = best?;
        let right = Sums {
            g: total.g - left.g,
            h: total.h - left.h,
            n: total.n.saturating_sub(left.n),
        };
        let default_left = if has_missing {
            missing_left
        } else {
            left.n >= right.n
        };
        Some(FeatureSplit {
            gain: gain - min_gain_shift,
            threshold_bin: t as u32,
            default_left,
            cat_bins: Vec::new(),
            left,
            right,
            left_output: leaf_output(left.g, left.h, l1, l2),
            right_output: leaf_output(right.g, right.h, l1, l2),
        })
    }

    /// Extra trees: one random split of a categorical feature: a uniformly drawn non-empty
    /// proper subset of the categories present in the node goes left (with a single present
    /// category and missing values: that category vs missing). Missing/other always right.
    pub fn random_categorical(
        &self,
        hist: &[HistEntry],
        total: Sums,
        draw: u64,
    ) -> Option<FeatureSplit> {
        let nonempty = |e: &HistEntry| e[1] > 0.0 || e[0] != 0.0;
        let present: Vec<u32> = (1..hist.len() as u32)
            .filter(|&b| nonempty(&hist[b as usize]))
            .collect();
        let k = present.len();
        let bins: Vec<u32> = match k {
            0 => return None,
            1 if nonempty(hist.first()?) => present,
            1 => return None,
            2..=63 => {
                // mask in 1..=2^k-2: every non-empty proper subset equally likely
                let mask = 1 + draw % ((1u64 << k) - 2);
                (0..k)
                    .filter(|&i| mask >> i & 1 == 1)
                    .map(|i| present[i])
                    .collect()
            }
            _ => {
                let mut rng = crate::train::Rng::new(draw);
                let mut sel: Vec<u32> = present
                    .iter()
                    .copied()
                    .filter(|_| rng.next_u64() >> 63 == 1)
                    .collect();
                if sel.is_empty() || sel.len() == k {
                    sel = vec![present[rng.below(k)]];
                }
                sel
            }
        };
        let (l1, l2) = (self.lambda_l1, self.lambda_l2);
        let cnt_factor = if total.h > 0.0 {
            total.n as f64 / total.h
        } else {
            0.0
        };
        let mut left = Sums::default();
        for &b in &bins {
            let e = hist[b as usize];
            left.g += e[0];
            left.h += e[1];
            left.n += (e[1] * cnt_factor + 0.5) as usize;
        }
        let right = Sums {
            g: total.g - left.g,
            h: total.h - left.h,
            n: total.n.saturating_sub(left.n),
        };
        if !self.ok(&left) || !self.ok(&right) {
            return None;
        }
        let min_gain_shift = leaf_gain(total.g, total.h, l1, l2) + self.min_split_gain;
        let gain = leaf_gain(left.g, left.h, l1, l2) + leaf_gain(right.g, right.h, l1, l2);
        if gain <= min_gain_shift {
            return None;
        }
        Some(FeatureSplit {
            gain: gain - min_gain_shift,
            threshold_bin: 0,
            default_left: false,
            cat_bins: bins,
            left,
            right,
            left_output: leaf_output(left.g, left.h, l1, l2),
            right_output: leaf_output(right.g, right.h, l1, l2),
        })
    }
}
