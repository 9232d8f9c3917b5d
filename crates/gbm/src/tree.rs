//! A regression tree in flat arrays (LightGBM layout): internal nodes `0..num_leaves-1`,
//! children `>= 0` are internal nodes, `< 0` are leaves encoded as `!leaf`.

use crate::binning::BinCol;
use serde::{Deserialize, Serialize};

pub(crate) const DT_CATEGORICAL: u8 = 1;
pub(crate) const DT_DEFAULT_LEFT: u8 = 2;

/// One decision tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    num_leaves: usize,
    // internal nodes
    pub(crate) split_feature: Vec<u32>,
    /// numeric: go left when `x <= threshold`
    #[serde(with = "crate::serde_floats")]
    pub(crate) threshold: Vec<f64>,
    /// numeric: bin threshold; categorical: index into `cat_bounds`
    pub(crate) threshold_bin: Vec<u32>,
    pub(crate) decision: Vec<u8>,
    pub(crate) left_child: Vec<i32>,
    pub(crate) right_child: Vec<i32>,
    #[serde(with = "crate::serde_floats")]
    split_gain: Vec<f64>,
    #[serde(with = "crate::serde_floats")]
    internal_value: Vec<f64>,
    #[serde(with = "crate::serde_floats")]
    internal_count: Vec<f64>,
    // categorical bitsets over raw codes and over bins
    pub(crate) cat_bounds: Vec<u32>,
    pub(crate) cat_words: Vec<u32>,
    cat_bin_bounds: Vec<u32>,
    cat_bin_words: Vec<u32>,
    // leaves
    #[serde(with = "crate::serde_floats")]
    leaf_value: Vec<f64>,
    #[serde(with = "crate::serde_floats")]
    leaf_count: Vec<f64>,
    leaf_parent: Vec<i32>,
    leaf_depth: Vec<u32>,
}

/// Description of a split to apply to a leaf.
pub(crate) struct SplitSpec<'a> {
    pub feature: u32,
    pub threshold: f64,
    pub threshold_bin: u32,
    pub default_left: bool,
    /// for categorical splits: raw category codes and bins going left
    pub cat_codes: Option<(&'a [u32], &'a [u32])>,
    pub gain: f64,
    pub left_value: f64,
    pub right_value: f64,
    pub left_count: f64,
    pub right_count: f64,
}

fn to_bitset(items: &[u32]) -> Vec<u32> {
    let max = items.iter().copied().max().unwrap_or(0);
    let mut words = vec![0u32; (max as usize >> 5) + 1];
    for &c in items {
        words[(c >> 5) as usize] |= 1 << (c & 31);
    }
    words
}

#[inline]
fn in_bitset(words: &[u32], v: u32) -> bool {
    let w = (v >> 5) as usize;
    w < words.len() && (words[w] >> (v & 31)) & 1 == 1
}

impl Tree {
    /// A tree with a single leaf.
    pub(crate) fn new_leaf(value: f64, count: f64) -> Self {
        Tree {
            num_leaves: 1,
            split_feature: vec![],
            threshold: vec![],
            threshold_bin: vec![],
            decision: vec![],
            left_child: vec![],
            right_child: vec![],
            split_gain: vec![],
            internal_value: vec![],
            internal_count: vec![],
            cat_bounds: vec![0],
            cat_words: vec![],
            cat_bin_bounds: vec![0],
            cat_bin_words: vec![],
            leaf_value: vec![value],
            leaf_count: vec![count],
            leaf_parent: vec![-1],
            leaf_depth: vec![0],
        }
    }

    /// Number of leaves.
    pub fn num_leaves(&self) -> usize {
        self.num_leaves
    }

    /// Leaf values.
    pub fn leaf_values(&self) -> &[f64] {
        &self.leaf_value
    }

    pub(crate) fn leaf_values_mut(&mut self) -> &mut [f64] {
        &mut self.leaf_value
    }

    /// Number of training rows (in the bag) that reached each leaf.
    pub fn leaf_counts(&self) -> &[f64] {
        &self.leaf_count
    }

    /// Depth of a leaf (root = 0).
    pub fn leaf_depth(&self, leaf: usize) -> u32 {
        self.leaf_depth[leaf]
    }

    /// Features and gains of all internal nodes.
    pub fn splits(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.split_feature
            .iter()
            .zip(&self.split_gain)
            .map(|(&f, &g)| (f as usize, g))
    }

    /// Splits `leaf`; the left child keeps the leaf's index, the right child gets index
    /// `num_leaves()` (before the call). Returns the right child's index.
    pub(crate) fn split(&mut self, leaf: usize, s: &SplitSpec) -> usize {
        let node = self.num_leaves - 1;
        let new_leaf = self.num_leaves;
        let parent = self.leaf_parent[leaf];
        if parent >= 0 {
            let p = parent as usize;
            if self.left_child[p] == !(leaf as i32) {
                self.left_child[p] = node as i32;
            } else {
                self.right_child[p] = node as i32;
            }
        }
        let mut decision = if s.default_left { DT_DEFAULT_LEFT } else { 0 };
        let mut threshold_bin = s.threshold_bin;
        if let Some((codes, bins)) = s.cat_codes {
            decision = DT_CATEGORICAL;
            threshold_bin = (self.cat_bounds.len() - 1) as u32;
            self.cat_words.extend(to_bitset(codes));
            self.cat_bounds.push(self.cat_words.len() as u32);
            self.cat_bin_words.extend(to_bitset(bins));
            self.cat_bin_bounds.push(self.cat_bin_words.len() as u32);
        }
        self.split_feature.push(s.feature);
        self.threshold.push(s.threshold);
        self.threshold_bin.push(threshold_bin);
        self.decision.push(decision);
        self.left_child.push(!(leaf as i32));
        self.right_child.push(!(new_leaf as i32));
        self.split_gain.push(s.gain);
        self.internal_value.push(self.leaf_value[leaf]);
        self.internal_count.push(s.left_count + s.right_count);
        self.leaf_parent[leaf] = node as i32;
        self.leaf_parent.push(node as i32);
        self.leaf_value[leaf] = s.left_value;
        self.leaf_value.push(s.right_value);
        self.leaf_count[leaf] = s.left_count;
        self.leaf_count.push(s.right_count);
        let d = self.leaf_depth[leaf] + 1;
        self.leaf_depth[leaf] = d;
        self.leaf_depth.push(d);
        self.num_leaves += 1;
        new_leaf
    }

    /// Decision on a raw value (single-row convention: NaN = missing, category codes as f64).
    #[inline(always)]
    pub(crate) fn go_left(&self, node: usize, x: f64) -> bool {
        let d = self.decision[node];
        if d & DT_CATEGORICAL == 0 {
            if x.is_nan() {
                d & DT_DEFAULT_LEFT != 0
            } else {
                x <= self.threshold[node]
            }
        } else {
            // NaN, negative and out-of-range codes never match a category: go right
            if !(0.0..4294967296.0).contains(&x) {
                return false;
            }
            let ci = self.threshold_bin[node] as usize;
            let (s, e) = (
                self.cat_bounds[ci] as usize,
                self.cat_bounds[ci + 1] as usize,
            );
            in_bitset(&self.cat_words[s..e], x as u32)
        }
    }

    #[inline(always)]
    fn go_left_bin(&self, node: usize, bin: u32) -> bool {
        let d = self.decision[node];
        if d & DT_CATEGORICAL == 0 {
            if bin == 0 {
                d & DT_DEFAULT_LEFT != 0
            } else {
                bin <= self.threshold_bin[node]
            }
        } else {
            let ci = self.threshold_bin[node] as usize;
            let (s, e) = (
                self.cat_bin_bounds[ci] as usize,
                self.cat_bin_bounds[ci + 1] as usize,
            );
            in_bitset(&self.cat_bin_words[s..e], bin)
        }
    }

    /// Child of `node` taken by raw value `x`.
    #[inline(always)]
    pub(crate) fn next(&self, node: usize, x: f64) -> i32 {
        if self.go_left(node, x) {
            self.left_child[node]
        } else {
            self.right_child[node]
        }
    }

    /// Leaf reached by a raw row.
    #[inline]
    pub(crate) fn leaf_index(&self, row: &[f64]) -> usize {
        if self.num_leaves == 1 {
            return 0;
        }
        let mut node = 0i32;
        while node >= 0 {
            let n = node as usize;
            node = self.next(n, row[self.split_feature[n] as usize]);
        }
        !node as usize
    }

    /// Raw output for a raw row.
    #[inline]
    pub(crate) fn predict_row(&self, row: &[f64]) -> f64 {
        self.leaf_value[self.leaf_index(row)]
    }

    /// Leaf reached by row `row` of binned columns.
    #[inline]
    pub(crate) fn leaf_index_binned(&self, cols: &[BinCol], row: usize) -> usize {
        if self.num_leaves == 1 {
            return 0;
        }
        let mut node = 0i32;
        while node >= 0 {
            let n = node as usize;
            let bin = cols[self.split_feature[n] as usize].get(row);
            node = if self.go_left_bin(n, bin) {
                self.left_child[n]
            } else {
                self.right_child[n]
            };
        }
        !node as usize
    }

    /// Expected value of the tree under the training distribution (count-weighted leaves).
    pub fn expected_value(&self) -> f64 {
        let total: f64 = self.leaf_count.iter().sum();
        if total <= 0.0 {
            return self.leaf_value.iter().sum::<f64>() / self.num_leaves as f64;
        }
        self.leaf_value
            .iter()
            .zip(&self.leaf_count)
            .map(|(v, c)| v * c)
            .sum::<f64>()
            / total
    }

    /// Maximum leaf depth.
    pub fn max_depth(&self) -> usize {
        self.leaf_depth.iter().copied().max().unwrap_or(0) as usize
    }

    fn node_count(&self, child: i32) -> f64 {
        if child >= 0 {
            self.internal_count[child as usize]
        } else {
            self.leaf_count[!child as usize]
        }
    }

    /// Adds this tree's exact path-dependent TreeSHAP values for `row` to `phi`
    /// (`phi.len() == n_features + 1`; the last entry receives the expected value).
    pub(crate) fn shap_into(&self, row: &[f64], phi: &mut [f64], scratch: &mut ShapScratch) {
        let nf = phi.len() - 1;
        phi[nf] += self.expected_value();
        if self.num_leaves == 1 {
            return;
        }
        let d = self.max_depth() + 2;
        let need = d * (d + 1) / 2 + 1;
        if scratch.0.len() < need {
            scratch.0.resize(need, PathElement::default());
        }
        self.tree_shap(row, phi, 0, 0, &mut scratch.0, 0, 1.0, 1.0, -1);
    }

    #[allow(clippy::too_many_arguments)]
    fn tree_shap(
        &self,
        row: &[f64],
        phi: &mut [f64],
        node: i32,
        mut unique_depth: usize,
        paths: &mut [PathElement],
        parent_start: usize,
        parent_zero_fraction: f64,
        parent_one_fraction: f64,
        parent_feature: i64,
    ) {
        // this level's path lives right after the parent's
        let start = if unique_depth == 0 {
            parent_start
        } else {
            parent_start + unique_depth
        };
        if unique_depth > 0 {
            paths.copy_within(parent_start..parent_start + unique_depth, start);
        }
        {
            let path = &mut paths[start..];
            extend_path(
                path,
                unique_depth,
                parent_zero_fraction,
                parent_one_fraction,
                parent_feature,
            );
        }
        if node < 0 {
            let path = &paths[start..];
            let value = self.leaf_value[!node as usize];
            for i in 1..=unique_depth {
                let w = unwound_path_sum(path, unique_depth, i);
                let el = path[i];
                phi[el.feature as usize] += w * (el.one_fraction - el.zero_fraction) * value;
            }
            return;
        }
        let n = node as usize;
        let feature = self.split_feature[n] as i64;
        let hot = self.next(n, row[feature as usize]);
        let cold = if hot == self.left_child[n] {
            self.right_child[n]
        } else {
            self.left_child[n]
        };
        let w = self.internal_count[n];
        let hot_zero = self.node_count(hot) / w;
        let cold_zero = self.node_count(cold) / w;
        let mut incoming_zero = 1.0;
        let mut incoming_one = 1.0;
        let path_index = (0..=unique_depth).find(|&i| paths[start + i].feature == feature);
        if let Some(pi) = path_index {
            incoming_zero = paths[start + pi].zero_fraction;
            incoming_one = paths[start + pi].one_fraction;
            unwind_path(&mut paths[start..], unique_depth, pi);
            unique_depth -= 1;
        }
        self.tree_shap(
            row,
            phi,
            hot,
            unique_depth + 1,
            paths,
            start,
            hot_zero * incoming_zero,
            incoming_one,
            feature,
        );
        self.tree_shap(
            row,
            phi,
            cold,
            unique_depth + 1,
            paths,
            start,
            cold_zero * incoming_zero,
            0.0,
            feature,
        );
    }
}

/// Reusable TreeSHAP path buffer.
#[derive(Debug, Default)]
pub(crate) struct ShapScratch(Vec<PathElement>);

#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: i64,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

fn extend_path(
    path: &mut [PathElement],
    unique_depth: usize,
    zero_fraction: f64,
    one_fraction: f64,
    feature: i64,
) {
    path[unique_depth] = PathElement {
        feature,
        zero_fraction,
        one_fraction,
        pweight: if unique_depth == 0 { 1.0 } else { 0.0 },
    };
    let ud = unique_depth as f64;
    for i in (0..unique_depth).rev() {
        path[i + 1].pweight += one_fraction * path[i].pweight * (i as f64 + 1.0) / (ud + 1.0);
        path[i].pweight = zero_fraction * path[i].pweight * (ud - i as f64) / (ud + 1.0);
    }
}

fn unwind_path(path: &mut [PathElement], unique_depth: usize, path_index: usize) {
    let one_fraction = path[path_index].one_fraction;
    let zero_fraction = path[path_index].zero_fraction;
    let mut next_one_portion = path[unique_depth].pweight;
    let ud = unique_depth as f64;
    for i in (0..unique_depth).rev() {
        if one_fraction != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one_portion * (ud + 1.0) / ((i as f64 + 1.0) * one_fraction);
            next_one_portion = tmp - path[i].pweight * zero_fraction * (ud - i as f64) / (ud + 1.0);
        } else {
            path[i].pweight = path[i].pweight * (ud + 1.0) / (zero_fraction * (ud - i as f64));
        }
    }
    for i in path_index..unique_depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_path_sum(path: &[PathElement], unique_depth: usize, path_index: usize) -> f64 {
    let one_fraction = path[path_index].one_fraction;
    let zero_fraction = path[path_index].zero_fraction;
    let mut next_one_portion = path[unique_depth].pweight;
    let mut total = 0.0;
    let ud = unique_depth as f64;
    for i in (0..unique_depth).rev() {
        if one_fraction != 0.0 {
            let tmp = next_one_portion * (ud + 1.0) / ((i as f64 + 1.0) * one_fraction);
            total += tmp;
            next_one_portion =
                path[i].pweight - tmp * zero_fraction * ((ud - i as f64) / (ud + 1.0));
        } else {
            total += (path[i].pweight / zero_fraction) / ((ud - i as f64) / (ud + 1.0));
        }
    }
    total
}
