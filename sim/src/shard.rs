//! Shards: one batch of seeds split across machines, and merged back.
//!
//! `--shard K/N` (1 ≤ K ≤ N) runs the seeds whose position in the batch's
//! seed list is congruent to K-1 modulo N: shard 1/4 of seeds 1..=200 runs
//! seeds 1, 5, 9, ..., shard 2/4 runs 2, 6, 10, .... Interleaving, rather
//! than contiguous blocks, spreads slow seeds (and seeds that fail early)
//! over every shard. `--out FILE` writes one JSON line per seed (a
//! [`SeedRecord`]); [`merge`] reads the lines of every shard back, checks
//! that they belong to one batch and cover its whole seed range once, and
//! returns them in seed order, to print exactly what the unsharded batch
//! prints.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::batch::{Batch, SeedRecord};

/// Shard `index` of `count` (1-based: `1/4` is the first of four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1 to `count`.
    pub index: u32,
    /// How many shards the batch is split into.
    pub count: u32,
}

impl Shard {
    /// The whole batch: shard 1 of 1.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// The items of `list` this shard runs: those at positions congruent to
    /// `index - 1` modulo `count`, in order.
    pub fn select<T: Copy>(&self, list: &[T]) -> Vec<T> {
        let (k, n) = (self.index as usize - 1, self.count as usize);
        list.iter()
            .enumerate()
            .filter(|(i, _)| i % n == k)
            .map(|(_, x)| *x)
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A shard that is not `K/N` with 1 ≤ K ≤ N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad shard {0:?}: expected K/N with 1 <= K <= N, e.g. 1/4")]
pub struct BadShard(pub String);

impl FromStr for Shard {
    type Err = BadShard;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadShard(s.to_owned());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Why shard outputs could not be merged. Nothing is printed then.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A line is not a seed record.
    #[error("{file}, line {line}: not a seed record: {source}")]
    Parse {
        /// The file.
        file: String,
        /// The line number (from 1).
        line: usize,
        /// What was wrong with it.
        source: serde_json::Error,
    },
    /// No line in any file.
    #[error("no seed records in the files given")]
    Empty,
    /// A record belongs to another batch (command, nodes, profile, sync or
    /// seed range differ).
    #[error("{file}, line {line}: seed {seed} belongs to another batch than the first record's")]
    OtherBatch {
        /// The file.
        file: String,
        /// The line number (from 1).
        line: usize,
        /// The record's seed.
        seed: u64,
    },
    /// A seed appears twice (a shard given twice, or shards that overlap).
    #[error("{file}, line {line}: seed {seed} appears a second time")]
    Duplicate {
        /// The file.
        file: String,
        /// The line number (from 1).
        line: usize,
        /// The seed.
        seed: u64,
    },
    /// A record's seed is outside the batch's range.
    #[error("{file}, line {line}: seed {seed} is outside the batch's seed range")]
    OutOfRange {
        /// The file.
        file: String,
        /// The line number (from 1).
        line: usize,
        /// The seed.
        seed: u64,
    },
    /// Seeds of the range have no record (a shard missing or unfinished).
    #[error("{missing} of the batch's {total} seeds have no record (a shard missing or unfinished?); the first: {first:?}")]
    Missing {
        /// How many seeds are missing.
        missing: usize,
        /// How many the batch holds.
        total: usize,
        /// The first few missing seeds.
        first: Vec<u64>,
    },
}

/// Reads the JSON lines of every shard (`(file name, text)`), checks that
/// they hold every seed of one batch exactly once, and returns the batch
/// and its records in seed order. Blank lines are skipped.
pub fn merge<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(Batch, Vec<SeedRecord>), MergeError> {
    let mut batch: Option<Batch> = None;
    let mut by_seed: BTreeMap<u64, SeedRecord> = BTreeMap::new();
    for (file, text) in files {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: SeedRecord = serde_json::from_str(line).map_err(|source| MergeError::Parse {
                file: file.to_owned(),
                line: n + 1,
                source,
            })?;
            let (file, line) = (file.to_owned(), n + 1);
            let b = batch.get_or_insert_with(|| r.batch.clone());
            if *b != r.batch {
                return Err(MergeError::OtherBatch {
                    file,
                    line,
                    seed: r.seed,
                });
            }
            if r.seed < b.first_seed || r.seed - b.first_seed >= b.seeds {
                return Err(MergeError::OutOfRange {
                    file,
                    line,
                    seed: r.seed,
                });
            }
            if by_seed.contains_key(&r.seed) {
                return Err(MergeError::Duplicate {
                    file,
                    line,
                    seed: r.seed,
                });
            }
            by_seed.insert(r.seed, r);
        }
    }
    let batch = batch.ok_or(MergeError::Empty)?;
    let all = batch.seed_list();
    if by_seed.len() != all.len() {
        let missing: Vec<u64> = all
            .iter()
            .copied()
            .filter(|s| !by_seed.contains_key(s))
            .collect();
        return Err(MergeError::Missing {
            missing: missing.len(),
            total: all.len(),
            first: missing.into_iter().take(10).collect(),
        });
    }
    Ok((batch, by_seed.into_values().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_k_slash_n_and_refuse_anything_else() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shards_of_a_list_interleave_and_cover_it_exactly_once() {
        let list: Vec<u64> = (1..=10).collect();
        let parts: Vec<Vec<u64>> = (1..=4)
            .map(|k| Shard { index: k, count: 4 }.select(&list))
            .collect();
        assert_eq!(parts[0], vec![1, 5, 9]);
        assert_eq!(parts[3], vec![4, 8]);
        let mut all: Vec<u64> = parts.concat();
        all.sort_unstable();
        assert_eq!(all, list);
        assert_eq!(Shard::WHOLE.select(&list), list);
    }
}
