//! The simulator's randomness: one u64 seed, split into independent streams.
//!
//! Everything random in a run (node seeds, network decisions, the fault
//! profile of a sweep) is drawn from streams derived from the run's seed, so
//! one seed replays the run exactly. The generator is implemented here, not
//! taken from a crate, so a seed replays the same run across dependency
//! upgrades: xoshiro256++ seeded through SplitMix64. Inside each node, the
//! core's `SeedRng` (ChaCha12, a stream fixed for a seed) takes over from the
//! node seed; `tests/golden.rs` pins the whole chain.

/// One step of SplitMix64: a good mixer for deriving seeds from seeds.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes a seed with a stream label and an index into a new 64-bit seed.
pub fn derive(seed: u64, stream: u64, index: u64) -> u64 {
    let mut s = seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F);
    let a = splitmix64(&mut s);
    let mut t = a ^ index.wrapping_mul(0xE703_7ED1_A0B4_28DB);
    splitmix64(&mut t)
}

/// The 32-byte seed for one node instance (node `index`, `restart` times
/// restarted): what `Node::new` takes and feeds to `rollcall::core::SeedRng`.
pub fn node_seed(seed: u64, index: u32, restart: u32) -> [u8; 32] {
    let mut s = derive(
        seed,
        streams::NODE,
        (u64::from(restart) << 32) | u64::from(index),
    );
    let mut out = [0u8; 32];
    for chunk in out.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut s).to_le_bytes());
    }
    out
}

/// Labels of the independent streams derived from a run's seed.
pub mod streams {
    /// Node RNG seeds.
    pub const NODE: u64 = 1;
    /// Network decisions (loss, duplication, jitter).
    pub const NETWORK: u64 = 2;
    /// Scenario choices (which node crashes, churn victims).
    pub const SCENARIO: u64 = 3;
    /// Per-link base latency.
    pub const LINK: u64 = 4;
    /// A sweep's fault profile.
    pub const SWEEP: u64 = 5;
}

/// A small, fast, seedable generator (xoshiro256++).
#[derive(Clone, Debug)]
pub struct SimRng {
    s: [u64; 4],
}

impl SimRng {
    /// A generator for `stream` of the run seeded with `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut sm = derive(seed, stream, 0);
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3]))
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (never for `p <= 0`, always for `p >= 1`).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (p >= 1.0 || self.unit() < p)
    }

    /// A uniform integer in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the tiny bias is irrelevant here.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform float in `[lo, hi)`.
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_sequence_and_streams_differ() {
        let mut a = SimRng::new(7, streams::NETWORK);
        let mut b = SimRng::new(7, streams::NETWORK);
        let mut c = SimRng::new(7, streams::SCENARIO);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_stays_in_range_and_unit_in_the_unit_interval() {
        let mut r = SimRng::new(1, 1);
        for n in 1..50 {
            assert!(r.below(n) < n);
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn node_seeds_differ_by_node_and_by_restart() {
        assert_ne!(node_seed(1, 0, 0), node_seed(1, 1, 0));
        assert_ne!(node_seed(1, 0, 0), node_seed(1, 0, 1));
        assert_eq!(node_seed(1, 3, 2), node_seed(1, 3, 2));
    }
}
