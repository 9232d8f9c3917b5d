//! Prediction layout: every tree of a model packed into one node array.
//!
//! [`Tree`] keeps LightGBM's structure-of-arrays layout, which training and TreeSHAP
//! need; walking it for a prediction reads five arrays per level and reloads each
//! tree's array pointers per call. Here a level reads one 16-byte node (threshold,
//! feature, decision) and one child index, for all trees from the same arrays.
//!
//! The child is picked with a branch on purpose: the CPU predicts it and runs ahead
//! into the next level, which beats computing the index without branches (that turns
//! the walk into one long chain of dependent loads).
//!
//! Decisions are exactly [`Tree::go_left`]'s and callers sum leaf values in tree
//! order, so predictions are bit-for-bit those of the tree-by-tree walk.

use crate::tree::{DT_CATEGORICAL, DT_DEFAULT_LEFT, Tree};
use std::sync::OnceLock;

/// `Node::decision`: numeric splits by where missing values go, categorical splits
/// whose codes going left are all below 64 (the set is `Node::value` as a bit mask),
/// and from [`CAT_WORDS`] on, categorical splits with their bitset in
/// `cats[decision - CAT_WORDS]`.
const NUM_DEFAULT_RIGHT: u32 = 0;
const NUM_DEFAULT_LEFT: u32 = 1;
const CAT_MASK: u32 = 2;
const CAT_WORDS: u32 = 3;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// numeric: the threshold's bits (go left when `x <= threshold`); [`CAT_MASK`]:
    /// the categories going left
    value: u64,
    feature: u32,
    decision: u32,
}

/// The trees of one model, packed for prediction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flat {
    nodes: Vec<Node>,
    /// children of each node: `>= 0` a node, `< 0` `!leaf` into `leaves`
    left: Vec<i32>,
    right: Vec<i32>,
    leaves: Vec<f64>,
    /// per categorical split: its bitset's range in `cat_words`
    cats: Vec<(u32, u32)>,
    cat_words: Vec<u32>,
    /// per tree: its root node, or `!leaf` for a single-leaf tree
    roots: Vec<i32>,
}

impl Flat {
    pub(crate) fn new(trees: &[Tree]) -> Flat {
        let mut f = Flat::default();
        for t in trees {
            let node0 = f.nodes.len() as i32;
            let leaf0 = f.leaves.len() as i32;
            let map = |c: i32| if c >= 0 { node0 + c } else { !(leaf0 + !c) };
            f.roots
                .push(if t.num_leaves() == 1 { !leaf0 } else { node0 });
            f.leaves.extend_from_slice(t.leaf_values());
            for n in 0..t.num_leaves().saturating_sub(1) {
                let d = t.decision[n];
                let (decision, value) = if d & DT_CATEGORICAL != 0 {
                    let ci = t.threshold_bin[n] as usize;
                    let words =
                        &t.cat_words[t.cat_bounds[ci] as usize..t.cat_bounds[ci + 1] as usize];
                    if words.len() <= 2 {
                        let mask = words
                            .iter()
                            .enumerate()
                            .fold(0u64, |m, (i, &w)| m | u64::from(w) << (32 * i));
                        (CAT_MASK, mask)
                    } else {
                        let start = f.cat_words.len() as u32;
                        f.cat_words.extend_from_slice(words);
                        f.cats.push((start, f.cat_words.len() as u32));
                        (CAT_WORDS + f.cats.len() as u32 - 1, 0)
                    }
                } else if d & DT_DEFAULT_LEFT != 0 {
                    (NUM_DEFAULT_LEFT, t.threshold[n].to_bits())
                } else {
                    (NUM_DEFAULT_RIGHT, t.threshold[n].to_bits())
                };
                f.nodes.push(Node {
                    value,
                    feature: t.split_feature[n],
                    decision,
                });
                f.left.push(map(t.left_child[n]));
                f.right.push(map(t.right_child[n]));
            }
        }
        f
    }

    /// Number of trees.
    pub(crate) fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Whether a categorical node with a bitset in `cat_words` sends code `x` left:
    /// never for NaN, negative or out-of-range codes.
    #[inline(never)]
    fn cat_words_left(&self, decision: u32, x: f64) -> bool {
        if !(0.0..4294967296.0).contains(&x) {
            return false;
        }
        let v = x as u32;
        let (s, e) = self.cats[(decision - CAT_WORDS) as usize];
        let w = (v >> 5) as usize;
        let words = &self.cat_words[s as usize..e as usize];
        w < words.len() && (words[w] >> (v & 31)) & 1 == 1
    }

    /// Leaf value of every tree for one row (holding every feature the trees split
    /// on; a missing one reads as NaN), in tree order, handed to `f(tree, value)`.
    #[inline]
    pub(crate) fn for_each_tree(&self, row: &[f64], mut f: impl FnMut(usize, f64)) {
        for (t, &root) in self.roots.iter().enumerate() {
            let mut at = root;
            while at >= 0 {
                let i = at as usize;
                let n = self.nodes[i];
                let x = row.get(n.feature as usize).copied().unwrap_or(f64::NAN);
                let left = match n.decision {
                    NUM_DEFAULT_RIGHT => x <= f64::from_bits(n.value),
                    NUM_DEFAULT_LEFT => x <= f64::from_bits(n.value) || x.is_nan(),
                    // `x as u64` is 0 for NaN and negatives, hence the range test first
                    CAT_MASK => (0.0..64.0).contains(&x) && (n.value >> (x as u64)) & 1 == 1,
                    d => self.cat_words_left(d, x),
                };
                at = if left { self.left[i] } else { self.right[i] };
            }
            f(t, self.leaves[!at as usize]);
        }
    }
}

/// A model's [`Flat`] form, built on first use. Not serialized, and equal to any other
/// (it is derived from the trees, which are compared).
#[derive(Default)]
pub(crate) struct FlatCache(OnceLock<Flat>);

impl FlatCache {
    pub(crate) fn get(&self, trees: &[Tree]) -> &Flat {
        let f = self.0.get_or_init(|| Flat::new(trees));
        debug_assert_eq!(f.n_trees(), trees.len(), "trees changed after prediction");
        f
    }
}

impl Clone for FlatCache {
    fn clone(&self) -> Self {
        FlatCache::default()
    }
}

impl PartialEq for FlatCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for FlatCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlatCache")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Dataset, GbmParams, Objective, train};

    /// Raw scores the slow way: each tree walked on its own structure-of-arrays.
    fn tree_walk(m: &crate::GbmModel, row: &[f64]) -> Vec<f64> {
        let k = m.n_outputs();
        let mut out = m.init_score.clone();
        if k == 1 {
            let s: f64 = m.trees.iter().map(|t| t.predict_row(row)).sum();
            out[0] += s;
        } else {
            for (i, t) in m.trees.iter().enumerate() {
                out[i % k] += t.predict_row(row);
            }
        }
        out
    }

    /// Numeric features with missing values, a 10-level and a 150-level categorical
    /// (bitsets of one word and of several), and a target that needs all of them.
    fn data(n: usize, classes: usize) -> (Dataset, Vec<f64>) {
        let mut state = 7u64;
        let mut rnd = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut a, mut b, mut small, mut big, mut y) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let x0 = rnd() * 10.0;
            let x1 = if rnd() < 0.15 {
                f64::NAN
            } else {
                rnd() * 4.0 - 2.0
            };
            let c0 = (rnd() * 10.0) as u32;
            let c1 = (rnd() * 150.0) as u32;
            let signal = x0.sin()
                + if x1.is_nan() { 1.5 } else { x1 }
                + if c0.is_multiple_of(3) { 1.0 } else { -0.5 }
                + if c1 % 7 < 3 { 1.2 } else { -0.4 }
                + rnd() * 0.3;
            a.push(x0);
            b.push(x1);
            small.push(c0);
            big.push(c1);
            y.push(if classes == 1 {
                signal
            } else {
                ((signal + 3.0).max(0.0) as usize % classes) as f64
            });
        }
        let cols = vec![
            Column::Numeric(a),
            Column::Numeric(b),
            Column::Categorical {
                codes: small,
                missing: u32::MAX,
            },
            Column::Categorical {
                codes: big,
                missing: u32::MAX,
            },
        ];
        (Dataset::new(cols).unwrap(), y)
    }

    #[test]
    fn packed_walk_equals_tree_walk_bit_for_bit() {
        for (objective, classes) in [
            (Objective::L2, 1),
            (Objective::Binary, 2),
            (Objective::Multiclass { num_class: 3 }, 3),
        ] {
            let (d, mut y) = data(3000, classes);
            if classes == 2 {
                y.iter_mut()
                    .for_each(|v| *v = f64::from(u8::from(*v > 0.5)));
            }
            let p = GbmParams {
                objective,
                n_estimators: 30,
                num_threads: 1,
                ..Default::default()
            };
            let m = train(&p, &d, &y, None, None).unwrap();
            let flat = Flat::new(&m.trees);
            let kinds: Vec<u32> = flat
                .nodes
                .iter()
                .map(|n| n.decision.min(CAT_WORDS))
                .collect();
            for kind in [NUM_DEFAULT_RIGHT, NUM_DEFAULT_LEFT, CAT_MASK, CAT_WORDS] {
                assert!(
                    kinds.contains(&kind),
                    "{objective:?}: no node of kind {kind}"
                );
            }
            let mut row = vec![0.0; 4];
            let mut out = vec![0.0; m.n_outputs()];
            for i in 0..d.n_rows() {
                d.row_into(i, &mut row).unwrap();
                m.predict_raw_row(&row, &mut out).unwrap();
                assert_eq!(out, tree_walk(&m, &row), "{objective:?} row {i}");
            }
            // values no training row had: missing, negative, fractional, past the
            // bitsets, past u32
            let odd = [
                f64::NAN,
                -1.0,
                -0.5,
                0.5,
                2.5,
                63.0,
                63.9,
                64.0,
                149.5,
                4e9,
                5e9,
                1e300,
            ];
            for &v0 in &odd {
                for &v1 in &odd {
                    for j in 0..4 {
                        let mut r = [1.0, 0.3, 4.0, 20.0];
                        r[j] = v0;
                        r[(j + 1) % 4] = v1;
                        m.predict_raw_row(&r, &mut out).unwrap();
                        assert_eq!(out, tree_walk(&m, &r), "{objective:?} {r:?}");
                    }
                }
            }
        }
    }
}
