//! Maps keyed by [`NameKey`], hashed by the key itself.
//!
//! A name key is already a 64-bit hash of the name (XXH3), so hashing it
//! again is wasted work on the paths that build a map of a whole view per
//! message (see `Node`'s sync merge). The map also needs no random hash
//! keys, so the core reads no OS randomness to build one. Only names of
//! members that proved the cookie reach these maps.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::name::NameKey;

/// A map from name keys to `V`, hashed by the key.
pub type KeyMap<V> = HashMap<NameKey, V, ByKey>;

/// An empty [`KeyMap`] with room for `capacity` entries.
pub fn with_capacity<V>(capacity: usize) -> KeyMap<V> {
    HashMap::with_capacity_and_hasher(capacity, ByKey)
}

/// Builds [`KeyHasher`]s: the hash of a [`NameKey`] is its value.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByKey;

impl BuildHasher for ByKey {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// Hashes one [`NameKey`] to its own value.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Only reached if something other than a `NameKey` is hashed: mixes
    /// the bytes in, so such a map is correct, if slower.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_key_hashes_to_its_own_value() {
        let key = "emqx@10.0.0.1"
            .parse::<crate::core::name::NodeName>()
            .unwrap()
            .key();
        assert_eq!(ByKey.hash_one(key), key.as_u64());
    }

    #[test]
    fn a_key_map_finds_what_was_put_in_it() {
        let names = ["a@h1", "b@h1", "a@h2", "c@10.0.0.3"];
        let mut map = with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            map.insert(n.parse::<crate::core::name::NodeName>().unwrap().key(), i);
        }
        for (i, n) in names.iter().enumerate() {
            let key = n.parse::<crate::core::name::NodeName>().unwrap().key();
            assert_eq!(map.get(&key), Some(&i));
        }
        assert_eq!(map.len(), names.len());
    }
}
