//! Leaf-wise (best-first) growth of one tree on binned data.

use crate::binning::{BinCol, BinMapper};
use crate::split::{FeatureSplit, HistEntry, SplitConfig, Sums, leaf_output};
use crate::train::Rng;
use crate::tree::{SplitSpec, Tree};
use rayon::prelude::*;

/// Work (rows x features) below which histogram construction stays on one thread: a
/// parallel region costs tens of microseconds, more on a busy machine.
const PAR_MIN_WORK: usize = 128 * 1024;
/// Rows below which partitioning a leaf stays on one thread.
const PAR_MIN_PARTITION: usize = 16 * 1024;
/// Bins (summed over features) below which split finding stays on one thread.
const PAR_MIN_BINS: usize = 16 * 1024;

/// Per-node randomisation for random forests / extra trees.
#[derive(Debug, Clone)]
pub(crate) struct NodeSampling {
    /// Features (with at least two non-empty bins in the node) evaluated per split.
    pub max_features: usize,
    /// Extra trees: one random threshold (or category subset) per candidate feature.
    pub extra_trees: bool,
    /// Seed of the root; children derive theirs from the parent's, so the tree does not
    /// depend on the order in which leaves are expanded.
    pub seed: u64,
    /// Classification indicator targets (`g = -h` or `g = 0` per row): a leaf whose sums
    /// satisfy `G == 0` or `G == -H` is pure and is not split further.
    pub indicator_target: bool,
    /// Expand leaves depth-first (bounded histogram memory) instead of best-first; only
    /// differs from best-first when `num_leaves` binds.
    pub depth_first: bool,
}

#[inline]
fn child_seed(parent: u64, side: u64) -> u64 {
    let mut r = Rng::new(parent ^ side.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next_u64()
}

#[derive(Debug, Clone)]
struct FeatureInfo {
    offset: usize,
    num_bin: usize,
    is_cat: bool,
}

/// Reusable state for growing trees on one binned training set.
pub(crate) struct TreeLearner<'a> {
    cols: &'a [BinCol],
    mappers: &'a [BinMapper],
    feats: Vec<FeatureInfo>,
    cfg: SplitConfig,
    num_leaves: usize,
    max_depth: Option<u32>,
    threads: usize,
    n_rows: usize,
    indices: Vec<u32>,
    tmp: Vec<u32>,
    leaf_begin: Vec<usize>,
    leaf_cnt: Vec<usize>,
    /// Histogram of each open leaf (empty when the leaf has none); buffers of leaves that
    /// can no longer split go back to `pool`, so memory follows the open leaves.
    hists: Vec<Vec<HistEntry>>,
    pool: Vec<Vec<HistEntry>>,
    total_bins: usize,
    ordered: Vec<[f32; 2]>,
    identity: bool,
}

/// A leaf's best split.
#[derive(Debug, Clone)]
struct LeafSplit {
    feature: usize,
    split: FeatureSplit,
}

fn build_u8(bins: &[u8], rows: Option<&[u32]>, gh: &[[f32; 2]], out: &mut [HistEntry]) {
    // Four interleaved sub-histograms (entry `bin * 4 + lane`) break the store-to-load
    // dependency chains that runs of equal bins would otherwise create.
    let nb = out.len().min(256);
    let n = rows.map_or(bins.len(), <[u32]>::len).min(gh.len());
    if n < 4 * nb {
        // small leaves: zeroing the interleaved buffer would cost more than it saves
        out.fill([0.0; 2]);
        let mut add = |b: u8, g: &[f32; 2]| {
            if let Some(e) = out.get_mut(b as usize) {
                e[0] += g[0] as f64;
                e[1] += g[1] as f64;
            }
        };
        match rows {
            None => bins.iter().zip(gh).for_each(|(&b, g)| add(b, g)),
            Some(rows) => rows
                .iter()
                .zip(gh)
                .for_each(|(&r, g)| add(bins[r as usize], g)),
        }
        return;
    }
    let mut h = [[0.0f64; 2]; 1024];
    #[inline(always)]
    fn add(h: &mut [[f64; 2]; 1024], b: u8, lane: usize, g: &[f32; 2]) {
        let e = &mut h[(b as usize) * 4 + lane];
        e[0] += g[0] as f64;
        e[1] += g[1] as f64;
    }
    match rows {
        None => {
            let n4 = bins.len().min(gh.len()) / 4 * 4;
            for (b4, g4) in bins[..n4].chunks_exact(4).zip(gh[..n4].chunks_exact(4)) {
                add(&mut h, b4[0], 0, &g4[0]);
                add(&mut h, b4[1], 1, &g4[1]);
                add(&mut h, b4[2], 2, &g4[2]);
                add(&mut h, b4[3], 3, &g4[3]);
            }
            for (&b, g) in bins[n4..].iter().zip(&gh[n4..]) {
                add(&mut h, b, 0, g);
            }
        }
        Some(rows) => {
            let n4 = rows.len().min(gh.len()) / 4 * 4;
            for (r4, g4) in rows[..n4].chunks_exact(4).zip(gh[..n4].chunks_exact(4)) {
                add(&mut h, bins[r4[0] as usize], 0, &g4[0]);
                add(&mut h, bins[r4[1] as usize], 1, &g4[1]);
                add(&mut h, bins[r4[2] as usize], 2, &g4[2]);
                add(&mut h, bins[r4[3] as usize], 3, &g4[3]);
            }
            for (&r, g) in rows[n4..].iter().zip(&gh[n4..]) {
                add(&mut h, bins[r as usize], 0, g);
            }
        }
    }
    for (b, o) in out.iter_mut().enumerate().take(nb) {
        let q = &h[b * 4..b * 4 + 4];
        *o = [
            (q[0][0] + q[1][0]) + (q[2][0] + q[3][0]),
            (q[0][1] + q[1][1]) + (q[2][1] + q[3][1]),
        ];
    }
}

fn build_u16(bins: &[u16], rows: Option<&[u32]>, gh: &[[f32; 2]], out: &mut [HistEntry]) {
    out.fill([0.0; 2]);
    let nb = out.len();
    let mut add = |b: usize, g: &[f32; 2]| {
        if b < nb {
            let e = &mut out[b];
            e[0] += g[0] as f64;
            e[1] += g[1] as f64;
        }
    };
    match rows {
        None => bins.iter().zip(gh).for_each(|(&b, g)| add(b as usize, g)),
        Some(rows) => rows
            .iter()
            .zip(gh)
            .for_each(|(&r, g)| add(bins[r as usize] as usize, g)),
    }
}

/// Histogram of one feature over `rows` (None = all rows, `gh` indexed by row) or over
/// the given rows with `gh` already gathered in the same order.
pub(crate) fn build_feature_hist(
    col: &BinCol,
    rows: Option<&[u32]>,
    gh: &[[f32; 2]],
    out: &mut [HistEntry],
) {
    match col {
        BinCol::U8(v) => build_u8(v, rows, gh, out),
        BinCol::U16(v) => build_u16(v, rows, gh, out),
    }
}

impl<'a> TreeLearner<'a> {
    pub fn new(
        cols: &'a [BinCol],
        mappers: &'a [BinMapper],
        cfg: SplitConfig,
        num_leaves: usize,
        max_depth: i32,
        threads: usize,
        n_rows: usize,
    ) -> Self {
        let mut offset = 0;
        let feats = mappers
            .iter()
            .map(|m| {
                let f = FeatureInfo {
                    offset,
                    num_bin: m.num_bin(),
                    is_cat: m.is_categorical(),
                };
                offset += f.num_bin;
                f
            })
            .collect();
        let total_bins = offset;
        // Every leaf holds at least min_data_in_leaf (>= 1) rows: cap the leaf count and
        // with it the histogram pool.
        let num_leaves = num_leaves.min(n_rows / cfg.min_data_in_leaf.max(1)).max(1);
        TreeLearner {
            cols,
            mappers,
            feats,
            cfg,
            num_leaves,
            max_depth: if max_depth > 0 {
                Some(max_depth as u32)
            } else {
                None
            },
            threads,
            n_rows,
            indices: Vec::with_capacity(n_rows),
            tmp: vec![0; n_rows],
            leaf_begin: Vec::with_capacity(num_leaves),
            leaf_cnt: Vec::with_capacity(num_leaves),
            hists: Vec::new(),
            pool: Vec::new(),
            total_bins,
            ordered: vec![[0.0; 2]; n_rows],
            identity: false,
        }
    }

    fn alloc_hist(&mut self, leaf: usize) {
        if self.hists.len() <= leaf {
            self.hists.resize_with(leaf + 1, Vec::new);
        }
        if self.hists[leaf].is_empty() {
            let total = self.total_bins;
            self.hists[leaf] = self.pool.pop().unwrap_or_else(|| vec![[0.0; 2]; total]);
        }
    }

    fn release_hist(&mut self, leaf: usize) {
        if let Some(h) = self.hists.get_mut(leaf) {
            let b = std::mem::take(h);
            if !b.is_empty() {
                self.pool.push(b);
            }
        }
    }

    /// Rows (training row indices) in `leaf` of the last grown tree.
    pub fn leaf_rows(&self, leaf: usize) -> &[u32] {
        let b = self.leaf_begin[leaf];
        &self.indices[b..b + self.leaf_cnt[leaf]]
    }

    fn build_hist(&mut self, leaf: usize, gh: &[[f32; 2]], features: &[usize]) {
        let b = self.leaf_begin[leaf];
        let cnt = self.leaf_cnt[leaf];
        let rows = &self.indices[b..b + cnt];
        let all_rows = self.identity && cnt == self.n_rows;
        let (rows_opt, g): (Option<&[u32]>, &[[f32; 2]]) = if all_rows {
            (None, gh)
        } else {
            let ord = &mut self.ordered[..cnt];
            for (o, &r) in ord.iter_mut().zip(rows) {
                *o = gh[r as usize];
            }
            (Some(rows), &self.ordered[..cnt])
        };
        let hist = &mut self.hists[leaf];
        let cols = self.cols;
        if self.threads > 1 && cnt * features.len() >= PAR_MIN_WORK && features.len() > 1 {
            // carve one disjoint slice per selected feature (features are ascending)
            let mut parts: Vec<(usize, &mut [HistEntry])> = Vec::with_capacity(features.len());
            let mut rest: &mut [HistEntry] = hist;
            let mut consumed = 0usize;
            for &f in features {
                let fi = &self.feats[f];
                let (_, tail) = rest.split_at_mut(fi.offset - consumed);
                let (mine, tail) = tail.split_at_mut(fi.num_bin);
                parts.push((f, mine));
                rest = tail;
                consumed = fi.offset + fi.num_bin;
            }
            parts
                .par_iter_mut()
                .for_each(|(f, out)| build_feature_hist(&cols[*f], rows_opt, g, out));
        } else {
            for &f in features {
                let fi = &self.feats[f];
                build_feature_hist(
                    &cols[f],
                    rows_opt,
                    g,
                    &mut hist[fi.offset..fi.offset + fi.num_bin],
                );
            }
        }
    }

    fn subtract(&mut self, parent_into: usize, child: usize, features: &[usize]) {
        let (a, b) = if parent_into < child {
            let (lo, hi) = self.hists.split_at_mut(child);
            (&mut lo[parent_into], &hi[0])
        } else {
            let (lo, hi) = self.hists.split_at_mut(parent_into);
            (&mut hi[0], &lo[child])
        };
        for &f in features {
            let fi = &self.feats[f];
            let r = fi.offset..fi.offset + fi.num_bin;
            for (x, y) in a[r.clone()].iter_mut().zip(&b[r]) {
                x[0] -= y[0];
                x[1] -= y[1];
            }
        }
    }

    fn find_best(
        &self,
        leaf: usize,
        sums: Sums,
        depth: u32,
        features: &[usize],
        sampling: Option<(&NodeSampling, u64)>,
    ) -> Option<LeafSplit> {
        if self.max_depth.is_some_and(|d| depth >= d)
            || sums.n < 2 * self.cfg.min_data_in_leaf.max(1)
            || sums.h < 2.0 * self.cfg.min_sum_hessian
        {
            return None;
        }
        if let Some((s, _)) = sampling
            && s.indicator_target
            && (sums.g == 0.0 || sums.g == -sums.h)
        {
            return None;
        }
        let hist = &self.hists[leaf];
        let feat_hist = |f: usize| {
            let fi = &self.feats[f];
            &hist[fi.offset..fi.offset + fi.num_bin]
        };
        // (feature, random draw for extra trees)
        let chosen: Vec<(usize, u64)> = match sampling {
            None => features.iter().map(|&f| (f, 0)).collect(),
            Some((s, seed)) => {
                // Draw features without replacement until `max_features` of them that are
                // not constant in this node have been found (as scikit-learn does).
                let mut rng = Rng::new(seed);
                let mut order = features.to_vec();
                let mut chosen = Vec::with_capacity(s.max_features.min(order.len()));
                let mut i = 0;
                while i < order.len() && chosen.len() < s.max_features {
                    let j = i + rng.below(order.len() - i);
                    order.swap(i, j);
                    let f = order[i];
                    i += 1;
                    let draw = rng.next_u64();
                    let nonempty = feat_hist(f)
                        .iter()
                        .filter(|e| e[1] > 0.0 || e[0] != 0.0)
                        .take(2)
                        .count();
                    if nonempty >= 2 {
                        chosen.push((f, draw));
                    }
                }
                chosen.sort_unstable_by_key(|c| c.0);
                chosen
            }
        };
        let extra = sampling.is_some_and(|(s, _)| s.extra_trees);
        let eval = |&(f, draw): &(usize, u64)| -> Option<LeafSplit> {
            let fi = &self.feats[f];
            if fi.num_bin < 2 {
                return None;
            }
            let h = feat_hist(f);
            let split = match (fi.is_cat, extra) {
                (true, false) => self.cfg.best_categorical(h, sums),
                (false, false) => self.cfg.best_numeric(h, sums),
                (true, true) => self.cfg.random_categorical(h, sums, draw),
                (false, true) => self.cfg.random_numeric(h, sums, draw),
            }?;
            Some(LeafSplit { feature: f, split })
        };
        let bins: usize = chosen.iter().map(|&(f, _)| self.feats[f].num_bin).sum();
        let cands: Vec<Option<LeafSplit>> = if self.threads > 1 && bins >= PAR_MIN_BINS {
            chosen.par_iter().map(eval).collect()
        } else {
            chosen.iter().map(eval).collect()
        };
        let mut best: Option<LeafSplit> = None;
        for c in cands.into_iter().flatten() {
            if best.as_ref().is_none_or(|b| c.split.gain > b.split.gain) {
                best = Some(c);
            }
        }
        best
    }

    /// Partitions `leaf`'s rows (stable) by the split; returns the left count.
    fn partition(&mut self, leaf: usize, ls: &LeafSplit) -> usize {
        let fi = &self.feats[ls.feature];
        let mut lut = vec![false; fi.num_bin.max(256)];
        if fi.is_cat {
            for &b in &ls.split.cat_bins {
                lut[b as usize] = true;
            }
        } else {
            lut[0] = ls.split.default_left;
            for v in lut
                .iter_mut()
                .take(ls.split.threshold_bin as usize + 1)
                .skip(1)
            {
                *v = true;
            }
        }
        let b = self.leaf_begin[leaf];
        let cnt = self.leaf_cnt[leaf];
        let range = &mut self.indices[b..b + cnt];
        if self.threads > 1 && cnt >= PAR_MIN_PARTITION {
            // Each chunk is partitioned on its own, then lefts and rights are concatenated
            // in chunk order: the same stable order as the sequential loop, for any chunking.
            let col = &self.cols[ls.feature];
            let lut: &[bool] = &lut;
            let chunk = cnt.div_ceil(self.threads * 2).max(4096);
            let parts: Vec<(Vec<u32>, Vec<u32>)> = range
                .par_chunks(chunk)
                .map(|c| {
                    let mut l = Vec::with_capacity(c.len());
                    let mut r = Vec::with_capacity(c.len());
                    for &x in c {
                        if lut
                            .get(col.get(x as usize) as usize)
                            .copied()
                            .unwrap_or(false)
                        {
                            l.push(x);
                        } else {
                            r.push(x);
                        }
                    }
                    (l, r)
                })
                .collect();
            let mut pos = 0;
            for (l, _) in &parts {
                range[pos..pos + l.len()].copy_from_slice(l);
                pos += l.len();
            }
            let nl = pos;
            for (_, r) in &parts {
                range[pos..pos + r.len()].copy_from_slice(r);
                pos += r.len();
            }
            return nl;
        }
        let mut nl = 0usize;
        let mut nr = 0usize;
        let tmp = &mut self.tmp[..cnt];
        match &self.cols[ls.feature] {
            BinCol::U8(bins) => {
                // plain slices: the loop must not reload the Vec headers after each store
                let bins: &[u8] = bins;
                let lut: &[bool; 256] = lut[..256].try_into().unwrap_or(&[false; 256]);
                // branchless: write to both sides, advance one
                for i in 0..cnt {
                    let r = range[i];
                    let left = lut[bins[r as usize] as usize];
                    range[nl] = r;
                    tmp[nr] = r;
                    nl += left as usize;
                    nr += (!left) as usize;
                }
            }
            BinCol::U16(bins) => {
                let bins: &[u16] = bins;
                let lut: &[bool] = &lut;
                for i in 0..cnt {
                    let r = range[i];
                    let left = lut.get(bins[r as usize] as usize).copied().unwrap_or(false);
                    range[nl] = r;
                    tmp[nr] = r;
                    nl += left as usize;
                    nr += (!left) as usize;
                }
            }
        }
        range[nl..].copy_from_slice(&tmp[..nr]);
        nl
    }

    /// Grows one tree on gradients `gh` (indexed by row) over `bag` (None = all rows)
    /// using the given (ascending) features. Leaf values are not shrunk.
    pub fn grow(&mut self, gh: &[[f32; 2]], bag: Option<&[u32]>, features: &[usize]) -> Tree {
        self.grow_with(gh, bag, features, None)
    }

    /// As [`grow`](Self::grow), optionally with per-node feature sampling / random
    /// thresholds (random forests, extra trees). `bag` rows must be distinct.
    pub fn grow_with(
        &mut self,
        gh: &[[f32; 2]],
        bag: Option<&[u32]>,
        features: &[usize],
        sampling: Option<&NodeSampling>,
    ) -> Tree {
        for l in 0..self.hists.len() {
            self.release_hist(l);
        }
        self.indices.clear();
        match bag {
            None => {
                self.indices.extend(0..self.n_rows as u32);
                self.identity = true;
            }
            Some(b) => {
                self.indices.extend_from_slice(b);
                self.identity = false;
            }
        }
        self.leaf_begin.clear();
        self.leaf_cnt.clear();
        self.leaf_begin.push(0);
        self.leaf_cnt.push(self.indices.len());
        let mut root = Sums {
            g: 0.0,
            h: 0.0,
            n: self.indices.len(),
        };
        for &r in &self.indices {
            let e = gh[r as usize];
            root.g += e[0] as f64;
            root.h += e[1] as f64;
        }
        let (l1, l2) = (self.cfg.lambda_l1, self.cfg.lambda_l2);
        let mut tree = Tree::new_leaf(leaf_output(root.g, root.h, l1, l2), root.n as f64);
        if root.n == 0 {
            return tree;
        }
        let mut sums = vec![root];
        let mut best: Vec<Option<LeafSplit>> = vec![None];
        let mut seeds: Vec<u64> = vec![sampling.map_or(0, |s| s.seed)];
        let samp = |seeds: &[u64], l: usize| sampling.map(|s| (s, seeds[l]));
        let depth_first = sampling.is_some_and(|s| s.depth_first);
        let mut stack: Vec<usize> = Vec::new();
        self.alloc_hist(0);
        self.build_hist(0, gh, features);
        best[0] = self.find_best(0, root, 0, features, samp(&seeds, 0));
        if best[0].is_some() {
            stack.push(0);
        }

        while tree.num_leaves() < self.num_leaves {
            let mut pick: Option<usize> = None;
            if depth_first {
                while let Some(l) = stack.pop() {
                    if best[l].is_some() {
                        pick = Some(l);
                        break;
                    }
                }
            }
            for (l, b) in best.iter().enumerate().filter(|_| !depth_first) {
                if let Some(b) = b
                    && pick.is_none_or(|p| {
                        best[p]
                            .as_ref()
                            .is_none_or(|pb| b.split.gain > pb.split.gain)
                    })
                {
                    pick = Some(l);
                }
            }
            let Some(l) = pick else { break };
            let Some(ls) = best[l].take() else { break };
            let nl = self.partition(l, &ls);
            let begin = self.leaf_begin[l];
            let nr = self.leaf_cnt[l] - nl;
            if nl == 0 || nr == 0 {
                // Counts are estimated from hessians; with very uneven hessians (or
                // min_child_weight = 0) a chosen split can turn out one-sided. Drop it: the
                // (stable) partition left the leaf's rows as they were.
                continue;
            }
            let mapper = &self.mappers[ls.feature];
            let cat_codes: Vec<u32>;
            let spec_cat = if self.feats[ls.feature].is_cat {
                let mut codes: Vec<u32> = ls
                    .split
                    .cat_bins
                    .iter()
                    .map(|&b| mapper.bin_category(b))
                    .collect();
                codes.sort_unstable();
                cat_codes = codes;
                Some((cat_codes.as_slice(), ls.split.cat_bins.as_slice()))
            } else {
                None
            };
            let spec = SplitSpec {
                feature: ls.feature as u32,
                threshold: if spec_cat.is_some() {
                    0.0
                } else {
                    mapper.upper_bound(ls.split.threshold_bin)
                },
                threshold_bin: ls.split.threshold_bin,
                default_left: ls.split.default_left,
                cat_codes: spec_cat,
                gain: ls.split.gain,
                left_value: ls.split.left_output,
                right_value: ls.split.right_output,
                left_count: nl as f64,
                right_count: nr as f64,
            };
            let r = tree.split(l, &spec);
            debug_assert_eq!(r, self.leaf_begin.len());
            let parent_seed = seeds[l];
            seeds[l] = child_seed(parent_seed, 1);
            seeds.push(child_seed(parent_seed, 2));
            self.leaf_cnt[l] = nl;
            self.leaf_begin.push(begin + nl);
            self.leaf_cnt.push(nr);
            sums[l] = Sums {
                g: ls.split.left.g,
                h: ls.split.left.h,
                n: nl,
            };
            sums.push(Sums {
                g: ls.split.right.g,
                h: ls.split.right.h,
                n: nr,
            });
            best.push(None);
            let depth = tree.leaf_depth(l);
            let min2 = 2 * self.cfg.min_data_in_leaf.max(1);
            let pure = |s: &Sums| {
                sampling.is_some_and(|x| x.indicator_target) && (s.g == 0.0 || s.g == -s.h)
            };
            if self.max_depth.is_some_and(|d| depth >= d)
                || ((nl < min2 || pure(&sums[l])) && (nr < min2 || pure(&sums[r])))
            {
                self.release_hist(l);
                continue;
            }
            if tree.num_leaves() >= self.num_leaves {
                break;
            }
            self.alloc_hist(r);
            if nl < nr {
                self.hists.swap(l, r);
                self.build_hist(l, gh, features);
                self.subtract(r, l, features);
            } else {
                self.build_hist(r, gh, features);
                self.subtract(l, r, features);
            }
            best[l] = self.find_best(l, sums[l], depth, features, samp(&seeds, l));
            best[r] = self.find_best(r, sums[r], depth, features, samp(&seeds, r));
            for c in [l, r] {
                if best[c].is_none() {
                    self.release_hist(c);
                } else if depth_first {
                    stack.push(c);
                }
            }
        }
        tree
    }
}
