//! Early stopping: the median stopping rule (Golovin et al., "Google
//! Vizier", KDD 2017), on the curve of the objective metric each trial logs.
//!
//! **The rule.** Let a running trial's latest logged step be `s` and its
//! best objective over its points so far be `b` (the lowest when
//! minimising). For every *completed* trial (one that succeeded) with points
//! at steps `≤ s`, take the running average of its objective over those
//! points. If at least [`MIN_COMPLETED`] completed trials have one, and `b`
//! is strictly worse than their median, the running trial is stopped.
//! Non-finite values are ignored. The tuning job applies it to every running
//! trial about once a second.

use crate::spec::Direction;

/// Completed curves needed before any trial is stopped.
pub const MIN_COMPLETED: usize = 3;

/// Why a trial should stop.
#[derive(Debug, Clone, PartialEq)]
pub struct MedianStop {
    /// The running trial's latest step.
    pub step: i64,
    /// Its best objective so far.
    pub best: f64,
    /// The median of the completed trials' running averages at `step`.
    pub median: f64,
    /// How many completed trials the median is over.
    pub completed: usize,
}

impl std::fmt::Display for MedianStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "at step {} its best objective {} is worse than the median {} of {} completed trials' running averages",
            self.step, self.best, self.median, self.completed
        )
    }
}

/// The mean of a curve's finite values at steps `≤ step` (points in step order).
pub fn running_average(curve: &[(i64, f64)], step: i64) -> Option<f64> {
    let (sum, n) = curve
        .iter()
        .take_while(|(s, _)| *s <= step)
        .filter(|(_, v)| v.is_finite())
        .fold((0.0, 0usize), |(a, n), (_, v)| (a + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Whether the running trial (its curve in step order) should stop, given
/// the completed trials' curves.
pub fn median_rule(
    direction: Direction,
    running: &[(i64, f64)],
    completed: &[Vec<(i64, f64)>],
) -> Option<MedianStop> {
    let finite = running.iter().filter(|(_, v)| v.is_finite());
    let step = finite.clone().map(|(s, _)| *s).max()?;
    let best = finite
        .map(|(_, v)| *v)
        .reduce(|a, b| if direction.better(b, a) { b } else { a })?;
    let averages: Vec<f64> = completed
        .iter()
        .filter_map(|c| running_average(c, step))
        .collect();
    if averages.len() < MIN_COMPLETED {
        return None;
    }
    let completed = averages.len();
    let median = median(averages);
    direction.better(median, best).then_some(MedianStop {
        step,
        best,
        median,
        completed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loss curve that falls from `start` towards `end`.
    fn curve(start: f64, end: f64, steps: i64) -> Vec<(i64, f64)> {
        (0..steps)
            .map(|s| (s, end + (start - end) * (-(s as f64) / 3.0).exp()))
            .collect()
    }

    #[test]
    fn a_hopeless_trial_stops_and_a_promising_one_goes_on() {
        let done = vec![
            curve(1.0, 0.2, 10),
            curve(1.2, 0.3, 10),
            curve(0.9, 0.25, 10),
        ];
        // averages at step 3: each completed curve's mean over steps 0..=3
        let bad = curve(3.0, 2.0, 4);
        let d = median_rule(Direction::Minimize, &bad, &done).unwrap();
        assert_eq!(d.step, 3);
        assert_eq!(d.completed, 3);
        assert!((d.best - bad[3].1).abs() < 1e-12);
        let mut avgs: Vec<f64> = done
            .iter()
            .map(|c| running_average(c, 3).unwrap())
            .collect();
        avgs.sort_by(f64::total_cmp);
        assert!((d.median - avgs[1]).abs() < 1e-12);
        assert!(d.to_string().contains("step 3"));
        // as good as the others: goes on
        assert_eq!(
            median_rule(Direction::Minimize, &curve(1.0, 0.1, 4), &done),
            None
        );
        // its best point counts, not its latest
        let mut dip = bad.clone();
        dip[1].1 = 0.1;
        assert_eq!(median_rule(Direction::Minimize, &dip, &done), None);
        // fewer than three completed curves: never stop
        assert_eq!(median_rule(Direction::Minimize, &bad, &done[..2]), None);
        // completed curves without points up to the step do not count
        let late: Vec<Vec<(i64, f64)>> = done
            .iter()
            .map(|c| c.iter().map(|(s, v)| (s + 5, *v)).collect())
            .collect();
        assert_eq!(median_rule(Direction::Minimize, &bad, &late), None);
        // nothing logged yet: nothing to judge
        assert_eq!(median_rule(Direction::Minimize, &[], &done), None);
        assert_eq!(
            median_rule(Direction::Minimize, &[(0, f64::NAN)], &done),
            None
        );
    }

    #[test]
    fn maximising_flips_the_comparison_and_the_median_is_the_middle() {
        let acc = |v: f64| -> Vec<(i64, f64)> { (0..5).map(|s| (s, v)).collect() };
        let done = vec![acc(0.75), acc(0.5), acc(0.25), acc(1.0)];
        // median of 0.25, 0.5, 0.75, 1.0 is 0.625
        let d = median_rule(Direction::Maximize, &acc(0.4), &done).unwrap();
        assert_eq!(d.median, 0.625);
        assert_eq!(median_rule(Direction::Maximize, &acc(0.7), &done), None);
        // equal to the median is not worse
        assert_eq!(median_rule(Direction::Maximize, &acc(0.625), &done), None);
        assert!(median_rule(Direction::Minimize, &acc(0.7), &done).is_some());
        // an odd count: the middle value
        let d = median_rule(Direction::Minimize, &acc(0.9), &done[..3]).unwrap();
        assert_eq!(d.median, 0.5);
    }

    #[test]
    fn running_averages_use_points_up_to_the_step() {
        let c = vec![(0, 4.0), (1, 2.0), (1, f64::NAN), (2, 0.0), (5, 10.0)];
        assert_eq!(running_average(&c, -1), None);
        assert_eq!(running_average(&c, 0), Some(4.0));
        assert_eq!(running_average(&c, 1), Some(3.0));
        assert_eq!(running_average(&c, 4), Some(2.0));
        assert_eq!(running_average(&c, 5), Some(4.0));
    }
}
