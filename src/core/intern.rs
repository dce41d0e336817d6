//! One allocation per distinct identity in a process.
//!
//! Every member of every view holds a [`NodeId`](super::identity::NodeId),
//! and foca keeps them in a list it scans on every update. A `NodeId` is a
//! name key and a shared pointer to the rest ([`Parts`]); this table hands
//! out the pointer, so an identity decoded from many datagrams, or held by
//! many nodes of one process (the simulator runs thousands), is stored
//! once. An agent runs one node, where the table holds the identities its
//! one view knows.
//!
//! The table holds weak references: an identity no view holds any more is
//! freed, and its entry is swept out once the table has grown to twice its
//! size after the last sweep. It is split into shards by name key, each
//! behind its own lock, so threads that decode at once rarely wait for one
//! another. Sharing changes no behaviour: two identities are equal, hash
//! and encode alike whether or not they share their parts.
//!
//! In front of the table, each thread keeps the identities it handed out
//! last ([`RECENT`] slots, one per hash of name, generation and renewal):
//! a node hears of the same members over and over, and a hit there takes
//! no lock, and, when decoding, no parsing of the name either
//! ([`recent`]).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use super::identity::Parts;
use super::keymap::{ByKey, HashedMap};
use super::role::Role;

/// Slots of each thread's cache of recent identities (a power of two).
const RECENT: usize = 1024;

thread_local! {
    static LAST: RefCell<Vec<Option<Arc<Parts>>>> = RefCell::new(vec![None; RECENT]);
}

fn recent_slot(name: &str, generation: u64, renewal: u32) -> usize {
    let h = xxhash_rust::xxh3::xxh3_64(name.as_bytes())
        ^ generation.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ u64::from(renewal).rotate_left(32);
    (h as usize) & (RECENT - 1)
}

/// The identity with exactly these fields that this thread handed out
/// recently, if any. `name` as received: a hit means it is the canonical
/// text of a name parsed before, so the caller need not parse it.
pub(crate) fn recent(
    name: &str,
    addr: SocketAddr,
    generation: u64,
    renewal: u32,
    role: Role,
) -> Option<Arc<Parts>> {
    let slot = recent_slot(name, generation, renewal);
    LAST.with(|last| {
        let last = last.borrow();
        let held = last[slot].as_ref()?;
        (held.name.as_str() == name
            && held.addr == addr
            && held.generation == generation
            && held.renewal == renewal
            && held.role == role)
            .then(|| Arc::clone(held))
    })
}

fn remember(parts: &Arc<Parts>) {
    let slot = recent_slot(parts.name.as_str(), parts.generation, parts.renewal);
    LAST.with(|last| last.borrow_mut()[slot] = Some(Arc::clone(parts)));
}

/// Shards of the table (a power of two).
const SHARDS: usize = 64;

/// A shard is swept when it holds at least this many entries.
const FIRST_SWEEP: usize = 64;

/// `(name key, generation, renewal)`: what almost always tells two
/// identities apart. The rest is compared on a hit.
type Key = (u64, u64, u32);

struct Shard {
    live: HashedMap<Key, Weak<Parts>>,
    sweep_at: usize,
}

static TABLE: LazyLock<Vec<Mutex<Shard>>> = LazyLock::new(|| {
    (0..SHARDS)
        .map(|_| {
            Mutex::new(Shard {
                live: HashedMap::with_hasher(ByKey),
                sweep_at: FIRST_SWEEP,
            })
        })
        .collect()
});

/// The shared parts equal to `parts`: the ones already held somewhere in
/// this process, or `parts` itself, now shared.
pub(crate) fn intern(parts: Parts) -> Arc<Parts> {
    if let Some(held) = recent(
        parts.name.as_str(),
        parts.addr,
        parts.generation,
        parts.renewal,
        parts.role,
    ) {
        return held;
    }
    intern_unseen(parts)
}

/// [`intern`] for `parts` the caller already looked for in this thread's
/// cache ([`recent`]) and did not find.
pub(crate) fn intern_unseen(parts: Parts) -> Arc<Parts> {
    let shared = shared(parts);
    remember(&shared);
    shared
}

/// [`intern`] past this thread's cache: from the process-wide table.
fn shared(parts: Parts) -> Arc<Parts> {
    let key: Key = (parts.name.key().as_u64(), parts.generation, parts.renewal);
    let shard = &TABLE[(key.0 as usize) & (SHARDS - 1)];
    // A panic elsewhere while the lock was held left nothing half-written
    // that matters: every entry is a complete weak reference.
    let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(held) = shard.live.get(&key).and_then(Weak::upgrade) {
        if *held == parts {
            return held;
        }
        // The same key and version with another address, text or role
        // (not seen in one cluster): kept apart, the first keeps the entry.
        return Arc::new(parts);
    }
    let shared = Arc::new(parts);
    shard.live.insert(key, Arc::downgrade(&shared));
    if shard.live.len() >= shard.sweep_at {
        shard.live.retain(|_, w| w.strong_count() > 0);
        shard.sweep_at = (shard.live.len() * 2).max(FIRST_SWEEP);
    }
    shared
}

/// Empties this thread's cache (for tests).
#[cfg(test)]
fn forget_recent() {
    LAST.with(|last| last.borrow_mut().iter_mut().for_each(|s| *s = None));
}

/// Entries in the table, live or not yet swept (for tests).
#[cfg(test)]
fn entries() -> usize {
    TABLE
        .iter()
        .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).live.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::identity::tests::id;
    use crate::core::identity::NodeId;

    #[test]
    fn an_identity_decoded_twice_is_stored_once() {
        let a = id("intern-a@127.0.0.1", 3);
        let bytes = postcard::to_allocvec(&a).unwrap();
        let b: NodeId = postcard::from_bytes(&bytes).unwrap();
        let c: NodeId = postcard::from_bytes(&bytes).unwrap();
        assert!(a.shares_parts_with(&b));
        assert!(b.shares_parts_with(&c));
        assert_eq!(a, c);
    }

    #[test]
    fn an_identity_made_on_another_thread_is_shared_too() {
        let a = id("intern-d@127.0.0.1", 3);
        let b = std::thread::spawn(|| id("intern-d@127.0.0.1", 3))
            .join()
            .unwrap();
        assert!(a.shares_parts_with(&b));
    }

    #[test]
    fn identities_that_differ_in_anything_are_not_shared() {
        let a = id("intern-b@127.0.0.1", 3);
        let other_addr = NodeId::new(
            "intern-b@127.0.0.1".parse().unwrap(),
            "127.0.0.1:4371".parse().unwrap(),
            3,
        );
        let other_role = a.clone().with_role(crate::core::role::Role::Replicant);
        assert!(!a.shares_parts_with(&other_addr));
        assert!(!a.shares_parts_with(&other_role));
        assert!(!a.shares_parts_with(&a.renewed()));
        assert!(!a.shares_parts_with(&a.next_generation()));
        assert_ne!(a, other_addr);
        assert_eq!(a, other_role);
    }

    #[test]
    fn identities_no_one_holds_are_swept_out() {
        let before = entries();
        for g in 0..10 * FIRST_SWEEP as u64 {
            drop(id("intern-c@127.0.0.1", g));
            forget_recent();
        }
        // Every shard sweeps once it holds FIRST_SWEEP entries, and these
        // all fall into one shard; other tests may add a few meanwhile.
        assert!(entries() < before + 2 * FIRST_SWEEP + 64);
    }
}
