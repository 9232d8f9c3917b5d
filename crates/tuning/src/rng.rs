//! A small seeded generator (SplitMix64): the same seed gives the same
//! trials on every machine and every version of Atelier, which a crate's
//! generator does not promise.

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, passes
/// BigCrush, one multiply-xorshift chain per draw.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix(seed) }
    }

    /// The generator of one trial: trial `i`'s draws depend on the seed and
    /// `i` only, so a resumed tuning job draws what it would have drawn.
    pub fn for_trial(seed: u64, trial: usize) -> Rng {
        Rng::new(mix(seed).wrapping_add(mix((trial as u64).wrapping_add(GOLDEN))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0; 0 gives 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the bias is below 2^-32 for any n we use
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_draws_repeat_and_differ_by_seed_and_trial() {
        let a: Vec<u64> = (0..5).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r1 = Rng::for_trial(7, 3);
        let mut r2 = Rng::for_trial(7, 3);
        let s1: Vec<f64> = (0..100).map(|_| r1.uniform()).collect();
        let s2: Vec<f64> = (0..100).map(|_| r2.uniform()).collect();
        assert_eq!(s1, s2);
        assert_ne!(
            Rng::for_trial(7, 4).next_u64(),
            Rng::for_trial(7, 3).next_u64()
        );
        assert_ne!(
            Rng::for_trial(8, 3).next_u64(),
            Rng::for_trial(7, 3).next_u64()
        );
        assert!(s1.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = s1.iter().sum::<f64>() / 100.0;
        assert!((mean - 0.5).abs() < 0.1, "{mean}");
        let mut r = Rng::new(1);
        let counts = (0..3000).fold([0usize; 3], |mut c, _| {
            c[r.below(3)] += 1;
            c
        });
        assert!(counts.iter().all(|&c| c > 900), "{counts:?}");
        let n: Vec<f64> = (0..4000).map(|_| r.normal()).collect();
        let m = n.iter().sum::<f64>() / 4000.0;
        let v = n.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 4000.0;
        assert!(m.abs() < 0.06 && (v - 1.0).abs() < 0.08, "{m} {v}");
    }
}
