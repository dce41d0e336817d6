//! Full-state sync: anti-entropy for foca's gossip.
//!
//! foca disseminates membership only by piggybacking updates on its probes
//! and gossip, a bounded number of times each; a node that misses them (a join
//! storm, a loss burst, a partition) may never learn some members. Sync closes
//! that gap by comparing views directly, digest first so that agreeing views
//! cost one small datagram:
//!
//! ```text
//! A -> B  Summary { session, hash of A's view }
//!         B: equal to its own? done (no reply). Otherwise:
//! B -> A  Digest  { session, one hash per bucket of B's view }
//!         A: buckets whose hashes differ = D
//! A -> B  Members { session, want: D, A's members in D }   (one or more datagrams)
//!         B: merges them; answers `want` once per session:
//! B -> A  Members { session, want: {}, B's members in D }  (one or more datagrams)
//!         A: merges them.
//! ```
//!
//! A view is this node (alive), every record it holds that no tombstone
//! covers, and its tombstones. Entries are placed in [`BUCKETS`] buckets by
//! their name's key; a bucket's hash is the wrapping sum of its entries'
//! hashes, which cover name, version and standing (alive, down, left,
//! force-left) and nothing transient (suspicion, incarnation), so converged
//! views hash equal. Down records travel with their age and tombstones with
//! theirs (see [`autoclean`](super::autoclean)). Every message fits one
//! datagram; a lost one only delays the next round, which starts from scratch.
//!
//! A `Summary` also carries the sender's [`Side`] and whether the sender holds
//! the receiver down: this is how the sides of a healed partition recognise
//! each other (see [`autoheal`](super::autoheal)). A `Notice` carries one
//! tombstone straight to a member when a node leaves or force-leaves another.
//!
//! Merging goes through foca's `apply_many`, so foca's precedence rules hold
//! (see ARCHITECTURE.md, "Sync merge rules"): a member held down stays down for
//! its generation; only a newer generation replaces it.

use serde::{Deserialize, Serialize};

use super::autoheal::Side;
use super::identity::NodeId;
use super::name::NodeName;
use super::tombstone::{Departure, Tombstone};

/// How many buckets a view is split into for the digest.
pub const BUCKETS: usize = 64;

/// The most members one `Members` message may carry; more is rejected as
/// corrupt (a full datagram holds far fewer).
pub const MAX_MEMBERS_PER_MESSAGE: usize = 256;

/// A member record (foca's own, serialized with postcard).
pub type Record = foca::Member<NodeId>;

/// A member record as sync carries it: with its age if it is down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The record.
    pub member: Record,
    /// How long ago (ms) the sender saw it go down; 0 if it is not down.
    pub down_age_ms: u64,
}

/// A tombstone as sync carries it: with its age.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncTombstone {
    /// The tombstone.
    pub tombstone: Tombstone,
    /// How long ago (ms) the sender learned it.
    pub age_ms: u64,
}

/// One sync message; the body of a [`Kind::Sync`](super::wire::Kind::Sync) datagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMsg {
    /// Opens a session: the sender's whole-view hash.
    Summary {
        /// Chosen by the sender; echoed in replies.
        session: u32,
        /// The sender.
        from: NodeId,
        /// Hash of the sender's view.
        hash: u64,
        /// The sender's side: its core count, size and lowest name.
        side: Side,
        /// The version `(generation, renewal)` of the receiver that the
        /// sender holds down, if it holds the receiver's name down.
        you_are_down: Option<(u64, u32)>,
    },
    /// The receiver's bucket hashes, sent when the summary differed.
    Digest {
        /// The session this answers.
        session: u32,
        /// The sender.
        from: NodeId,
        /// One hash per bucket, [`BUCKETS`] of them.
        buckets: Vec<u64>,
    },
    /// Records of some buckets.
    Members {
        /// The session this belongs to.
        session: u32,
        /// The sender.
        from: NodeId,
        /// Buckets (bit i = bucket i) the sender wants the receiver's records
        /// of; zero in a final answer.
        want: u64,
        /// The records.
        members: Vec<SyncRecord>,
        /// The tombstones.
        tombstones: Vec<SyncTombstone>,
    },
    /// A tombstone sent straight to a member: a node left or was removed.
    Notice {
        /// The sender.
        from: NodeId,
        /// The departure.
        tombstone: Tombstone,
    },
    /// Sent by a node whose side lost autoheal's decision to its side-mates:
    /// rejoin `winner` too, now (see ALGORITHM.md, "Autoheal").
    Follow {
        /// The sender, as its side-mates know it (before it renewed).
        from: NodeId,
        /// The node of the winning side the sender rejoins.
        winner: NodeId,
        /// The winning side, as the winner's summary gave it.
        side: Side,
    },
    /// The sender suspects the receiver: refute now (see
    /// `node/suspicion.rs`).
    Suspected {
        /// The sender.
        from: NodeId,
        /// The identity the sender suspects.
        you: NodeId,
        /// The incarnation it suspects.
        incarnation: u16,
    },
}

impl SyncMsg {
    /// The sender's identity.
    pub fn from(&self) -> &NodeId {
        match self {
            SyncMsg::Summary { from, .. }
            | SyncMsg::Digest { from, .. }
            | SyncMsg::Members { from, .. }
            | SyncMsg::Notice { from, .. }
            | SyncMsg::Follow { from, .. }
            | SyncMsg::Suspected { from, .. } => from,
        }
    }
}

/// Why a sync message was refused. Each is counted; none changes state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncReject {
    /// The body did not decode.
    #[error("sync message did not decode")]
    Malformed,
    /// A digest with the wrong number of buckets.
    #[error("digest with a wrong bucket count")]
    BadDigest,
    /// More records than [`MAX_MEMBERS_PER_MESSAGE`].
    #[error("too many records in one message")]
    TooMany,
    /// The same name twice in one message.
    #[error("duplicate record in one message")]
    Duplicate,
    /// A digest for a session this node did not open.
    #[error("digest for a session this node did not open")]
    Unsolicited,
}

/// Counters of the sync exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyncStats {
    /// Sessions this node opened.
    pub sessions_started: u64,
    /// Summaries received that matched this node's view.
    pub summaries_equal: u64,
    /// Summaries received that differed.
    pub summaries_differ: u64,
    /// Records received in `Members` messages.
    pub records_received: u64,
    /// Of those, records equal to the one this node held (identity,
    /// incarnation, state): not handed to foca, which would change nothing.
    pub records_unchanged: u64,
    /// Records sent in `Members` messages.
    pub records_sent: u64,
    /// Sync datagrams sent.
    pub datagrams_sent: u64,
    /// Bytes of sync datagrams sent, envelope included.
    pub bytes_sent: u64,
    /// Messages rejected: did not decode.
    pub rejected_malformed: u64,
    /// Messages rejected: digest of the wrong size.
    pub rejected_bad_digest: u64,
    /// Messages rejected: too many records.
    pub rejected_too_many: u64,
    /// Messages rejected: duplicate records.
    pub rejected_duplicate: u64,
    /// Messages rejected: digest for no open session.
    pub rejected_unsolicited: u64,
}

impl SyncStats {
    /// Counts one rejected message.
    pub fn count(&mut self, r: SyncReject) {
        *match r {
            SyncReject::Malformed => &mut self.rejected_malformed,
            SyncReject::BadDigest => &mut self.rejected_bad_digest,
            SyncReject::TooMany => &mut self.rejected_too_many,
            SyncReject::Duplicate => &mut self.rejected_duplicate,
            SyncReject::Unsolicited => &mut self.rejected_unsolicited,
        } += 1;
    }
}

/// The bucket a name falls in.
pub fn bucket_of(name: &NodeName) -> usize {
    (name.key().as_u64() % BUCKETS as u64) as usize
}

/// One entry of a view, as the digest sees it.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    /// A record no tombstone covers: identity, and whether it is down.
    Record(&'a NodeId, bool),
    /// A tombstone.
    Tomb(&'a Tombstone),
}

impl Entry<'_> {
    fn name(&self) -> &NodeName {
        match self {
            Entry::Record(id, _) => id.name(),
            Entry::Tomb(t) => &t.name,
        }
    }

    /// The hash of the entry's stable part: name, version, standing.
    pub fn stable_hash(&self) -> u64 {
        let (generation, renewal, standing) = match self {
            Entry::Record(id, down) => (id.generation(), id.renewal(), u8::from(*down)),
            Entry::Tomb(t) => (
                t.generation,
                0,
                match t.kind {
                    Departure::Left => 2,
                    Departure::ForceLeft => 3,
                },
            ),
        };
        let mut buf = [0u8; 21];
        buf[..8].copy_from_slice(&self.name().key().as_u64().to_le_bytes());
        buf[8..16].copy_from_slice(&generation.to_le_bytes());
        buf[16..20].copy_from_slice(&renewal.to_le_bytes());
        buf[20] = standing;
        xxhash_rust::xxh3::xxh3_64(&buf)
    }
}

/// A view's bucket hashes.
pub fn digest<'a>(view: impl Iterator<Item = Entry<'a>>) -> [u64; BUCKETS] {
    let mut buckets = [0u64; BUCKETS];
    for entry in view {
        let b = bucket_of(entry.name());
        buckets[b] = buckets[b].wrapping_add(entry.stable_hash());
    }
    buckets
}

/// The whole-view hash of a digest.
pub fn summary_hash(buckets: &[u64; BUCKETS]) -> u64 {
    let mut bytes = [0u8; BUCKETS * 8];
    for (i, b) in buckets.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&b.to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// The buckets (as a bit set) where two digests differ.
pub fn differing(a: &[u64; BUCKETS], b: &[u64]) -> u64 {
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .fold(0u64, |set, (i, _)| set | (1 << i))
}

/// Decodes and validates a sync body.
pub fn decode(body: &[u8]) -> Result<SyncMsg, SyncReject> {
    let msg: SyncMsg = postcard::from_bytes(body).map_err(|_| SyncReject::Malformed)?;
    match &msg {
        SyncMsg::Digest { buckets, .. } if buckets.len() != BUCKETS => Err(SyncReject::BadDigest),
        SyncMsg::Members {
            members,
            tombstones,
            ..
        } => {
            if members.len() + tombstones.len() > MAX_MEMBERS_PER_MESSAGE {
                return Err(SyncReject::TooMany);
            }
            let mut keys: Vec<_> = members.iter().map(|m| m.member.id().key()).collect();
            keys.sort_unstable();
            let mut tomb_keys: Vec<_> = tombstones.iter().map(|t| t.tombstone.name.key()).collect();
            tomb_keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) || tomb_keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(SyncReject::Duplicate);
            }
            Ok(msg)
        }
        _ => Ok(msg),
    }
}

/// Splits records and tombstones into `Members` messages whose encoding fits
/// `max_body` bytes each. Always yields at least one message (possibly
/// empty), so a `want` is delivered even when the sender has nothing in
/// those buckets.
pub fn members_messages(
    session: u32,
    from: &NodeId,
    want: u64,
    records: Vec<SyncRecord>,
    tombstones: Vec<SyncTombstone>,
    max_body: usize,
) -> Vec<Vec<u8>> {
    let header = postcard::to_allocvec(&SyncMsg::Members {
        session,
        from: from.clone(),
        want,
        members: Vec::new(),
        tombstones: Vec::new(),
    })
    .expect("a sync header encodes");
    // Each count's varint grows from 1 to at most 2 bytes (<= 256 entries).
    let budget = max_body.saturating_sub(header.len() + 2);
    let mut out = Vec::new();
    let (mut recs, mut tombs): (Vec<SyncRecord>, Vec<SyncTombstone>) = (Vec::new(), Vec::new());
    let mut used = 0;
    let flush =
        |recs: &mut Vec<SyncRecord>, tombs: &mut Vec<SyncTombstone>, out: &mut Vec<Vec<u8>>| {
            let msg = SyncMsg::Members {
                session,
                from: from.clone(),
                want,
                members: std::mem::take(recs),
                tombstones: std::mem::take(tombs),
            };
            out.push(postcard::to_allocvec(&msg).expect("sync members encode"));
        };
    enum Item {
        R(SyncRecord),
        T(SyncTombstone),
    }
    let items = records
        .into_iter()
        .map(Item::R)
        .chain(tombstones.into_iter().map(Item::T));
    for item in items {
        let size = match &item {
            Item::R(r) => postcard::experimental::serialized_size(r),
            Item::T(t) => postcard::experimental::serialized_size(t),
        }
        .unwrap_or(usize::MAX);
        if size > budget {
            continue; // cannot fit any datagram; never happens with valid names
        }
        if used + size > budget || recs.len() + tombs.len() == MAX_MEMBERS_PER_MESSAGE - 1 {
            flush(&mut recs, &mut tombs, &mut out);
            used = 0;
        }
        used += size;
        match item {
            Item::R(r) => recs.push(r),
            Item::T(t) => tombs.push(t),
        }
    }
    if !recs.is_empty() || !tombs.is_empty() || out.is_empty() {
        flush(&mut recs, &mut tombs, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::{Member, State};

    fn id(i: u32, generation: u64) -> NodeId {
        NodeId::new(
            format!("rc{i}@127.0.0.1").parse().unwrap(),
            "127.0.0.1:4370".parse().unwrap(),
            generation,
        )
    }

    fn rec(id: NodeId) -> SyncRecord {
        SyncRecord {
            member: Member::alive(id),
            down_age_ms: 0,
        }
    }

    fn entries(v: &[(NodeId, bool)]) -> impl Iterator<Item = Entry<'_>> {
        v.iter().map(|(i, d)| Entry::Record(i, *d))
    }

    #[test]
    fn equal_views_in_any_order_have_equal_digests() {
        let a = [(id(1, 1), false), (id(2, 1), true), (id(3, 5), false)];
        let mut b = a.clone();
        b.reverse();
        let da = digest(entries(&a));
        let db = digest(entries(&b));
        assert_eq!(da, db);
        assert_eq!(summary_hash(&da), summary_hash(&db));
        assert_eq!(differing(&da, &db), 0);
    }

    #[test]
    fn a_down_flag_a_renewal_or_a_tombstone_shows_in_exactly_one_bucket() {
        let base = [(id(1, 1), false), (id(2, 1), false)];
        let d0 = digest(entries(&base));
        let down = digest(entries(&[(id(1, 1), false), (id(2, 1), true)]));
        let renewed = digest(entries(&[(id(1, 1), false), (id(2, 1).renewed(), false)]));
        let t = Tombstone::of(&id(2, 1), Departure::Left);
        let left = digest([Entry::Record(&id(1, 1), false), Entry::Tomb(&t)].into_iter());
        for other in [down, renewed, left] {
            let diff = differing(&d0, &other);
            assert_eq!(diff.count_ones(), 1);
            assert_eq!(diff, 1 << bucket_of(id(2, 1).name()));
        }
    }

    #[test]
    fn members_are_split_into_messages_that_fit_the_datagram() {
        let records: Vec<SyncRecord> = (0..1000).map(|i| rec(id(i, 1))).collect();
        let tombs: Vec<SyncTombstone> = (1000..1100)
            .map(|i| SyncTombstone {
                tombstone: Tombstone::of(&id(i, 1), Departure::ForceLeft),
                age_ms: 5,
            })
            .collect();
        let msgs = members_messages(7, &id(9999, 1), 3, records, tombs, 1300);
        assert!(msgs.len() > 1);
        let mut seen = 0;
        for m in &msgs {
            assert!(m.len() <= 1300, "{} bytes", m.len());
            match decode(m).unwrap() {
                SyncMsg::Members {
                    session,
                    want,
                    members,
                    tombstones,
                    ..
                } => {
                    assert_eq!((session, want), (7, 3));
                    seen += members.len() + tombstones.len();
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, 1100);
    }

    #[test]
    fn an_empty_answer_is_still_one_message() {
        let msgs = members_messages(1, &id(1, 1), 5, vec![], vec![], 1300);
        assert_eq!(msgs.len(), 1);
    }

    #[test]
    fn duplicate_records_oversized_messages_and_bad_digests_are_rejected() {
        let dup = SyncMsg::Members {
            session: 1,
            from: id(1, 1),
            want: 0,
            members: vec![
                rec(id(2, 1)),
                SyncRecord {
                    member: Member::new(id(2, 3), 0, State::Down),
                    down_age_ms: 1,
                },
            ],
            tombstones: vec![],
        };
        assert_eq!(
            decode(&postcard::to_allocvec(&dup).unwrap()),
            Err(SyncReject::Duplicate)
        );
        let many = SyncMsg::Members {
            session: 1,
            from: id(1, 1),
            want: 0,
            members: (0..300).map(|i| rec(id(i, 1))).collect(),
            tombstones: vec![],
        };
        assert_eq!(
            decode(&postcard::to_allocvec(&many).unwrap()),
            Err(SyncReject::TooMany)
        );
        let bad = SyncMsg::Digest {
            session: 1,
            from: id(1, 1),
            buckets: vec![0; 3],
        };
        assert_eq!(
            decode(&postcard::to_allocvec(&bad).unwrap()),
            Err(SyncReject::BadDigest)
        );
        assert_eq!(decode(&[0xff, 0xff, 0xff]), Err(SyncReject::Malformed));
        // A huge claimed length with no bytes behind it does not allocate or panic.
        assert_eq!(
            decode(&[2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(SyncReject::Malformed)
        );
    }
}
