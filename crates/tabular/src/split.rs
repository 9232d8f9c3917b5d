//! The train/test split of the benchmark datasets
//! (`datasets/README.md` at the repository's root): a splitmix64 key per 0-based row; for
//! classification, per target value, the ceil(20 %) rows with the smallest
//! keys are test; for regression the same over all rows. Both parts keep
//! file order.

use std::collections::BTreeMap;

use crate::sketch::mix;

pub fn key(i: u64) -> u64 {
    mix(i.wrapping_add(0x9E3779B97F4A7C15))
}

fn take_test(rows: &mut [usize], test: &mut [bool]) {
    rows.sort_by_key(|&i| key(i as u64));
    let n_test = rows.len().div_ceil(5);
    for &i in &rows[..n_test] {
        test[i] = true;
    }
}

/// (train rows, test rows). `labels` groups rows for a stratified split
/// (classification); None splits all rows together (regression).
pub fn train_test(n: usize, labels: Option<&[String]>) -> (Vec<usize>, Vec<usize>) {
    let mut test = vec![false; n];
    match labels {
        Some(labels) => {
            let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, l) in labels.iter().enumerate().take(n) {
                groups.entry(l.as_str()).or_default().push(i);
            }
            for rows in groups.values_mut() {
                take_test(rows, &mut test);
            }
        }
        None => {
            let mut rows: Vec<usize> = (0..n).collect();
            take_test(&mut rows, &mut test);
        }
    }
    let train = (0..n).filter(|&i| !test[i]).collect();
    let te = (0..n).filter(|&i| test[i]).collect();
    (train, te)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_readme() {
        assert_eq!(key(0), 0xe220a8397b1dcdaf);
        assert_eq!(key(1), 0x910a2dec89025cc1);
        assert_eq!(key(2), 0x975835de1c9756ce);
    }
}
