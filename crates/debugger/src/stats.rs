//! Small streaming statistics with bounded memory.

use std::collections::VecDeque;

/// The last `cap` values, also kept sorted, so percentiles cost O(1) and an update O(cap) in
/// moves (a `memmove`) rather than a sort.
#[derive(Debug, Clone)]
pub(crate) struct SortedWindow {
    cap: usize,
    arrival: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl SortedWindow {
    pub fn new(cap: usize) -> SortedWindow {
        let cap = cap.max(1);
        SortedWindow {
            cap,
            arrival: VecDeque::new(),
            sorted: Vec::new(),
        }
    }

    /// Adds a finite value, dropping the oldest when full.
    pub fn push(&mut self, value: f64) {
        if self.arrival.len() == self.cap
            && let Some(old) = self.arrival.pop_front()
        {
            let at = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            if at < self.sorted.len() {
                self.sorted.remove(at);
            }
        }
        self.arrival.push_back(value);
        let at = self.sorted.partition_point(|v| v.total_cmp(&value).is_le());
        self.sorted.insert(at, value);
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `q` quantile with linear interpolation (numpy's default); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile_sorted(&self.sorted, q)
    }
}

/// The `q` quantile of sorted values, linear interpolation between closest ranks.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let (lo, hi) = (*sorted.get(below)?, *sorted.get(above)?);
    Some(lo + (hi - lo) * (position - below as f64))
}

/// Running mean and (population) standard deviation, Welford's method.
#[derive(Debug, Clone, Default)]
pub(crate) struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    pub fn push(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn std(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.m2 / self.count as f64).max(0.0).sqrt()
        }
    }
}

/// Two consecutive windows of `window` values each; the means of the newer and the older one.
#[derive(Debug, Clone)]
pub(crate) struct TwoWindows {
    window: usize,
    values: VecDeque<f64>,
    newer: f64,
    older: f64,
    pushes: u64,
}

impl TwoWindows {
    pub fn new(window: usize) -> TwoWindows {
        TwoWindows {
            window: window.max(1),
            values: VecDeque::new(),
            newer: 0.0,
            older: 0.0,
            pushes: 0,
        }
    }

    pub fn push(&mut self, value: f64) {
        let w = self.window;
        if self.values.len() == 2 * w
            && let Some(oldest) = self.values.pop_front()
        {
            self.older -= oldest;
        }
        if self.values.len() >= w
            && let Some(&moving) = self.values.get(self.values.len() - w)
        {
            self.newer -= moving;
            self.older += moving;
        }
        self.values.push_back(value);
        self.newer += value;
        self.pushes += 1;
        // Resum now and then so rounding errors cannot accumulate.
        if self.pushes.is_multiple_of(4 * w as u64 + 1024) {
            let split = self.values.len().saturating_sub(w);
            self.older = self.values.iter().take(split).sum();
            self.newer = self.values.iter().skip(split).sum();
        }
    }

    /// `(newer mean, older mean)` once both windows are full.
    pub fn means(&self) -> Option<(f64, f64)> {
        let w = self.window;
        (self.values.len() == 2 * w).then(|| (self.newer / w as f64, self.older / w as f64))
    }
}

/// A number for a message: at most 4 decimals, scientific notation for tiny or huge values.
pub(crate) fn fmt_num(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_owned()
        } else if value > 0.0 {
            "Infinity".to_owned()
        } else {
            "-Infinity".to_owned()
        };
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs();
    if !(1e-3..1e7).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy() {
        // numpy.quantile([1, 2, 3, 4], 0.95) == 3.85; 0.05 -> 1.15
        let mut w = SortedWindow::new(4);
        for v in [4.0, 1.0, 3.0, 2.0] {
            w.push(v);
        }
        assert!((w.quantile(0.95).unwrap_or(f64::NAN) - 3.85).abs() < 1e-12);
        assert!((w.quantile(0.05).unwrap_or(f64::NAN) - 1.15).abs() < 1e-12);
        w.push(10.0); // drops the 4.0
        assert_eq!(w.len(), 4);
        assert!((w.quantile(1.0).unwrap_or(f64::NAN) - 10.0).abs() < 1e-12);
        assert!((w.quantile(0.0).unwrap_or(f64::NAN) - 1.0).abs() < 1e-12);
        assert_eq!(SortedWindow::new(3).quantile(0.5), None);
    }

    #[test]
    fn two_windows() {
        let mut w = TwoWindows::new(2);
        for v in [1.0, 2.0, 3.0] {
            w.push(v);
            assert_eq!(w.means(), None);
        }
        w.push(5.0);
        assert_eq!(w.means(), Some((4.0, 1.5)));
        w.push(7.0);
        assert_eq!(w.means(), Some((6.0, 2.5)));
    }

    #[test]
    fn welford() {
        let mut s = Welford::default();
        for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            s.push(v);
        }
        assert!((s.mean() - 5.0).abs() < 1e-12);
        assert!((s.std() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn numbers_for_messages() {
        assert_eq!(fmt_num(0.21000000000000002), "0.21");
        assert_eq!(fmt_num(1e-9), "1.000e-9");
        assert_eq!(fmt_num(f64::NAN), "NaN");
        assert_eq!(fmt_num(1800.0), "1800");
    }
}
