//! The sealed envelope every datagram travels in.
//!
//! ```text
//! +---------+-------------+-------------------+--------------------------------+
//! | version | cluster tag | nonce             | sealed: kind (1) || body       |
//! | 1 byte  | 4 bytes     | 24 bytes          | plaintext length + 16 (tag)    |
//! +---------+-------------+-------------------+--------------------------------+
//! ```
//!
//! * `version` is [`WIRE_VERSION`]; any other value is dropped unread.
//! * `cluster tag` is the first four bytes of SHA-256 over the cluster name: a
//!   datagram from another cluster is dropped before any cryptography, and
//!   counted separately from a wrong cookie.
//! * The seal is XChaCha20-Poly1305 under a key derived from the cookie and
//!   the cluster name with HKDF-SHA256. The 24-byte nonce is drawn at random
//!   from the caller's generator: at that size random nonces never repeat in
//!   practice, whatever the number of nodes sharing a cookie. Version and tag
//!   are authenticated as associated data.
//! * Inside, one `kind` byte says what the body is ([`Kind`]); the body of a
//!   [`Kind::Gossip`] datagram is a foca packet (postcard).
//!
//! Nothing is decoded before the seal opens, so a datagram that was not made
//! with the cluster's cookie reaches no parser.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::Rng;
use sha2::{Digest, Sha256};

/// The envelope version this build writes and reads.
pub const WIRE_VERSION: u8 = 1;
/// Bytes of cluster tag.
pub const TAG_LEN: usize = 4;
/// Bytes of nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of authentication tag appended by the AEAD.
pub const MAC_LEN: usize = 16;
/// Bytes before the sealed part.
pub const HEADER_LEN: usize = 1 + TAG_LEN + NONCE_LEN;
/// Bytes the envelope adds to a body (header, kind byte and MAC).
pub const OVERHEAD: usize = HEADER_LEN + 1 + MAC_LEN;

/// What a sealed body carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A foca (SWIM) packet.
    Gossip = 0,
    /// A part of a full-state sync.
    Sync = 1,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Gossip),
            1 => Some(Self::Sync),
            _ => None,
        }
    }
}

/// Why a datagram was dropped before it reached the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DropReason {
    /// Shorter than an envelope with an empty body.
    #[error("datagram too short")]
    TooShort,
    /// The version byte is not [`WIRE_VERSION`].
    #[error("unknown envelope version")]
    UnknownVersion,
    /// The cluster tag belongs to another cluster name.
    #[error("datagram from another cluster")]
    OtherCluster,
    /// The seal did not open: another cookie, or the bytes were altered.
    #[error("seal did not open (wrong cookie or corrupted)")]
    BadSeal,
    /// The seal opened but the kind byte is unknown (a newer peer).
    #[error("unknown message kind")]
    UnknownKind,
    /// The seal opened but the body did not decode.
    #[error("malformed body")]
    Malformed,
    /// Larger than the configured maximum datagram size.
    #[error("datagram too large")]
    TooLarge,
    /// Claims to come from this node's own name (a stale packet of an
    /// earlier run, or a misconfigured twin).
    #[error("datagram from this node's own name")]
    FromSelf,
    /// Arrived after this node left the cluster.
    #[error("datagram after leave")]
    AfterLeave,
    /// A sync message that decoded but broke a rule (see `SyncStats`).
    #[error("sync message rejected")]
    SyncRejected,
    /// From a node other than the winner while this node, having lost a
    /// partition, takes the winner's view (the merge barrier).
    #[error("datagram held back while merging into the winning side")]
    Merging,
    /// The seal opened but its number was taken before, or is too old: a
    /// replay, or a copy the network duplicated (see
    /// [`crate::core::replay`]).
    #[error("datagram seen before (replayed or duplicated)")]
    Replayed,
}

/// Datagrams dropped, by reason. Every drop is counted exactly once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DropCounts {
    /// See [`DropReason::TooShort`].
    pub too_short: u64,
    /// See [`DropReason::UnknownVersion`].
    pub unknown_version: u64,
    /// See [`DropReason::OtherCluster`].
    pub other_cluster: u64,
    /// See [`DropReason::BadSeal`].
    pub bad_seal: u64,
    /// See [`DropReason::UnknownKind`].
    pub unknown_kind: u64,
    /// See [`DropReason::Malformed`].
    pub malformed: u64,
    /// See [`DropReason::TooLarge`].
    pub too_large: u64,
    /// See [`DropReason::FromSelf`].
    pub from_self: u64,
    /// See [`DropReason::AfterLeave`].
    pub after_leave: u64,
    /// See [`DropReason::SyncRejected`].
    pub sync_rejected: u64,
    /// See [`DropReason::Merging`].
    pub merging: u64,
    /// See [`DropReason::Replayed`].
    pub replayed: u64,
}

impl DropCounts {
    /// Counts one drop.
    pub fn count(&mut self, reason: DropReason) {
        let slot = match reason {
            DropReason::TooShort => &mut self.too_short,
            DropReason::UnknownVersion => &mut self.unknown_version,
            DropReason::OtherCluster => &mut self.other_cluster,
            DropReason::BadSeal => &mut self.bad_seal,
            DropReason::UnknownKind => &mut self.unknown_kind,
            DropReason::Malformed => &mut self.malformed,
            DropReason::TooLarge => &mut self.too_large,
            DropReason::FromSelf => &mut self.from_self,
            DropReason::AfterLeave => &mut self.after_leave,
            DropReason::SyncRejected => &mut self.sync_rejected,
            DropReason::Merging => &mut self.merging,
            DropReason::Replayed => &mut self.replayed,
        };
        *slot += 1;
    }

    /// All drops together.
    pub fn total(&self) -> u64 {
        self.too_short
            + self.unknown_version
            + self.other_cluster
            + self.bad_seal
            + self.unknown_kind
            + self.malformed
            + self.too_large
            + self.from_self
            + self.after_leave
            + self.sync_rejected
            + self.merging
            + self.replayed
    }
}

/// Seals and opens datagrams for one cluster (name + cookie).
#[derive(Clone)]
pub struct Envelope {
    cipher: XChaCha20Poly1305,
    tag: [u8; TAG_LEN],
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// The cluster tag of a cluster name.
pub fn cluster_tag(cluster: &str) -> [u8; TAG_LEN] {
    let digest = Sha256::new()
        .chain_update(b"rollcall cluster tag\0")
        .chain_update(cluster.as_bytes())
        .finalize();
    let mut tag = [0; TAG_LEN];
    tag.copy_from_slice(&digest[..TAG_LEN]);
    tag
}

impl Envelope {
    /// Derives the key from `cookie` and binds it to `cluster`.
    pub fn new(cookie: &[u8], cluster: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"rollcall/wire/v1"), cookie);
        let mut key = [0u8; 32];
        let mut info = Vec::with_capacity(16 + cluster.len());
        info.extend_from_slice(b"seal key\0");
        info.extend_from_slice(cluster.as_bytes());
        hk.expand(&info, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
            tag: cluster_tag(cluster),
        }
    }

    /// Seals `body` as `kind` into `out` (cleared first), drawing the nonce from `rng`.
    pub fn seal_into(&self, kind: Kind, body: &[u8], rng: &mut impl Rng, out: &mut Vec<u8>) {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.seal_with(kind, body, &nonce, out);
    }

    /// Seals `body` as `kind` into `out` (cleared first) under `nonce`,
    /// which must never have sealed anything under this cookie before (a
    /// node's nonces are numbered: see [`crate::core::replay`]).
    pub fn seal_with(&self, kind: Kind, body: &[u8], nonce: &[u8; NONCE_LEN], out: &mut Vec<u8>) {
        out.clear();
        out.reserve(OVERHEAD + body.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.tag);
        out.extend_from_slice(nonce);
        out.push(kind as u8);
        out.extend_from_slice(body);
        let (aad, sealed) = out.split_at_mut(HEADER_LEN);
        let mac = self
            .cipher
            .encrypt_in_place_detached(
                XNonce::from_slice(&aad[1 + TAG_LEN..]),
                &aad[..1 + TAG_LEN],
                sealed,
            )
            .expect("XChaCha20-Poly1305 seals any datagram-sized buffer");
        out.extend_from_slice(&mac);
    }

    /// Seals `body` as `kind` into a new buffer.
    pub fn seal(&self, kind: Kind, body: &[u8], rng: &mut impl Rng) -> Vec<u8> {
        let mut out = Vec::new();
        self.seal_into(kind, body, rng, &mut out);
        out
    }

    /// The nonce of a datagram, if it is at least [`HEADER_LEN`] long.
    pub fn nonce_of(datagram: &[u8]) -> Option<&[u8; NONCE_LEN]> {
        datagram.get(1 + TAG_LEN..HEADER_LEN)?.try_into().ok()
    }

    /// Opens a datagram into `scratch` and returns its kind and body (a slice
    /// of `scratch`). Checks run cheapest first: length, version, cluster tag,
    /// then the seal; nothing is decoded unless the seal opens.
    pub fn open<'s>(
        &self,
        datagram: &[u8],
        scratch: &'s mut Vec<u8>,
    ) -> Result<(Kind, &'s [u8]), DropReason> {
        if datagram.len() < OVERHEAD {
            return Err(DropReason::TooShort);
        }
        if datagram[0] != WIRE_VERSION {
            return Err(DropReason::UnknownVersion);
        }
        if datagram[1..1 + TAG_LEN] != self.tag {
            return Err(DropReason::OtherCluster);
        }
        let (header, rest) = datagram.split_at(HEADER_LEN);
        let (sealed, mac) = rest.split_at(rest.len() - MAC_LEN);
        scratch.clear();
        scratch.extend_from_slice(sealed);
        self.cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(&header[1 + TAG_LEN..]),
                &header[..1 + TAG_LEN],
                scratch,
                Tag::from_slice(mac),
            )
            .map_err(|_| DropReason::BadSeal)?;
        let kind = Kind::from_byte(scratch[0]).ok_or(DropReason::UnknownKind)?;
        Ok((kind, &scratch[1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::SeedRng;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn env() -> Envelope {
        Envelope::new(b"a secret cookie", "rollcall")
    }

    #[test]
    fn a_sealed_datagram_opens_to_its_kind_and_body() {
        let mut rng = SeedRng::seed_from_u64(1);
        let d = env().seal(Kind::Gossip, b"hello", &mut rng);
        assert_eq!(d.len(), OVERHEAD + 5);
        let mut s = Vec::new();
        assert_eq!(env().open(&d, &mut s), Ok((Kind::Gossip, &b"hello"[..])));
    }

    #[test]
    fn a_datagram_sealed_with_another_cookie_is_rejected_as_a_bad_seal() {
        let mut rng = SeedRng::seed_from_u64(1);
        let d = Envelope::new(b"another cookie", "rollcall").seal(Kind::Gossip, b"x", &mut rng);
        assert_eq!(env().open(&d, &mut Vec::new()), Err(DropReason::BadSeal));
    }

    #[test]
    fn a_datagram_from_another_cluster_name_is_rejected_by_its_tag() {
        let mut rng = SeedRng::seed_from_u64(1);
        let d = Envelope::new(b"a secret cookie", "other").seal(Kind::Gossip, b"x", &mut rng);
        assert_eq!(
            env().open(&d, &mut Vec::new()),
            Err(DropReason::OtherCluster)
        );
    }

    #[test]
    fn short_and_unknown_version_datagrams_are_rejected_unread() {
        let mut rng = SeedRng::seed_from_u64(1);
        let mut d = env().seal(Kind::Gossip, b"", &mut rng);
        assert_eq!(
            env().open(&d[..OVERHEAD - 1], &mut Vec::new()),
            Err(DropReason::TooShort)
        );
        d[0] = 9;
        assert_eq!(
            env().open(&d, &mut Vec::new()),
            Err(DropReason::UnknownVersion)
        );
    }

    #[test]
    fn an_unknown_kind_under_a_good_seal_is_rejected_as_unknown_kind() {
        let e = env();
        let mut rng = SeedRng::seed_from_u64(1);
        let mut d = e.seal(Kind::Gossip, b"x", &mut rng);
        // Re-seal by hand with kind 77 under the same key and nonce layout.
        let nonce: [u8; NONCE_LEN] = d[1 + TAG_LEN..HEADER_LEN].try_into().unwrap();
        let mut body = vec![77u8, b'x'];
        let mac = e
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &d[..1 + TAG_LEN], &mut body)
            .unwrap();
        d.truncate(HEADER_LEN);
        d.extend_from_slice(&body);
        d.extend_from_slice(&mac);
        assert_eq!(e.open(&d, &mut Vec::new()), Err(DropReason::UnknownKind));
    }

    #[test]
    fn drop_counts_count_each_reason_once() {
        let mut c = DropCounts::default();
        c.count(DropReason::BadSeal);
        c.count(DropReason::BadSeal);
        c.count(DropReason::TooShort);
        assert_eq!((c.bad_seal, c.too_short, c.total()), (2, 1, 3));
    }

    proptest! {
        #[test]
        fn seal_then_open_round_trips(body in proptest::collection::vec(any::<u8>(), 0..1500), seed: u64, sync: bool) {
            let kind = if sync { Kind::Sync } else { Kind::Gossip };
            let d = env().seal(kind, &body, &mut SeedRng::seed_from_u64(seed));
            let mut s = Vec::new();
            let (k, b) = env().open(&d, &mut s).unwrap();
            prop_assert_eq!(k, kind);
            prop_assert_eq!(b, &body[..]);
        }

        #[test]
        fn any_flipped_bit_is_rejected(body in proptest::collection::vec(any::<u8>(), 0..200), seed: u64, bit: usize) {
            let mut d = env().seal(Kind::Gossip, &body, &mut SeedRng::seed_from_u64(seed));
            let bit = bit % (d.len() * 8);
            d[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(env().open(&d, &mut Vec::new()).is_err());
        }

        #[test]
        fn random_bytes_never_open_and_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert!(env().open(&bytes, &mut Vec::new()).is_err());
        }
    }
}
