//! Maps keyed by values that are already hashes, hashed by the values.
//!
//! A name key is a 64-bit hash of the name (XXH3), and a replay stream a
//! random 64-bit draw, so hashing them again is wasted work on the paths
//! that build a map of a whole view per message (see `Node`'s sync merge).
//! These maps also need no random hash keys, so the core reads no OS
//! randomness to build one: `std`'s default hasher would. Only keys of
//! datagrams that proved the cookie reach these maps.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::name::NameKey;

/// A map from name keys to `V`, hashed by the key.
pub type KeyMap<V> = HashMap<NameKey, V, ByKey>;

/// A map from keys that are hashes already (`u64`s, or tuples led by one)
/// to `V`.
pub type HashedMap<K, V> = HashMap<K, V, ByKey>;

/// An empty [`KeyMap`] with room for `capacity` entries.
pub fn with_capacity<V>(capacity: usize) -> KeyMap<V> {
    HashMap::with_capacity_and_hasher(capacity, ByKey)
}

/// Builds [`KeyHasher`]s: the hash of a [`NameKey`] (or of a `u64`) is its
/// value.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByKey;

impl BuildHasher for ByKey {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// Hashes one [`NameKey`] (or `u64`) to its own value; the words of a
/// tuple are folded together.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Reached for anything but 64-bit words (the `u32` that ends the
    /// identity table's key, say): mixes the bytes in, which also mixes
    /// the words before them.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    /// The first word as it is; each later one folded into the rest.
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(26) ^ n;
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
    fn a_tuple_led_by_a_key_hashes_by_all_its_words() {
        let at = |g: u64, r: u32| ByKey.hash_one((7u64 << 40, g, r));
        assert_ne!(at(1, 0), at(2, 0));
        assert_ne!(at(1, 0), at(1, 1));
        assert_ne!(ByKey.hash_one((1u64, 2u64)), ByKey.hash_one((2u64, 1u64)));
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
