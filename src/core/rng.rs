//! [`SeedRng`]: the one generator every seeded draw in rollcall goes through.
//!
//! A node's 32-byte seed decides everything random it does: foca's probe
//! order and gossip targets, sync partners, the nonces of sealed datagrams,
//! the seeds of the SWIM instances a rejoin builds. The simulator derives
//! those seeds from a run's seed, so a seed names one run only as long as
//! this generator's output for a given seed never changes.
//!
//! `rand::rngs::StdRng` does not promise that: rand documents it as not
//! portable, its algorithm free to change in any release. [`SeedRng`] is a
//! generator named after its algorithm, ChaCha with 12 rounds from the
//! `chacha20` crate, whose output for a seed is fixed by the cipher (the
//! crate tests it against published test vectors). It is also the
//! algorithm behind rand 0.10's `StdRng` (0.10.0 to 0.10.4), so every seed
//! kept its meaning when rollcall moved off `StdRng`.
//!
//! What stays rand's: the `Rng`/`RngExt` traits and the sampling functions
//! (`random_range`, slice shuffles) that foca and the node call on the
//! generator. rand's reproducibility policy allows those to change their
//! output only in a new minor version (0.10 to 0.11), never in a patch
//! release, so `cargo update` keeps every seed's meaning; moving to a new
//! minor version of rand, or to a new foca, may not, and the golden runs in
//! `sim/tests/golden.rs` show it.

/// The seedable generator behind every node's randomness: ChaCha12, whose
/// stream for a given 32-byte seed is fixed by the algorithm.
///
/// Seed it with `rand::SeedableRng::from_seed`. Change it only together with
/// the golden hashes in `sim/tests/golden.rs`: every seed's meaning changes.
pub type SeedRng = chacha20::ChaCha12Rng;

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::SeedRng;

    #[test]
    fn the_generator_produces_the_published_chacha12_stream() {
        // Strombergson, "Test Vectors for the Stream Cipher ChaCha"
        // (draft-strombergson-chacha-test-vectors-01), TC1: all-zero key and
        // IV, 12 rounds; the first 16 bytes of the keystream, little-endian.
        let mut rng = SeedRng::from_seed([0; 32]);
        assert_eq!(rng.next_u64(), 0x53f9_5507_6a9a_f49b);
        assert_eq!(rng.next_u64(), 0xd583_265f_12ce_1f81);
    }

    #[test]
    fn a_seed_always_gives_the_same_draws() {
        let mut a = SeedRng::from_seed([7; 32]);
        let mut b = SeedRng::from_seed([7; 32]);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
    }
}
