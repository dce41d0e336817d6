//! First-hand evidence beats a second-hand verdict: a `Down` about a member
//! this node has heard from since that `Down` could have been decided is
//! stale, and is not taken.
//!
//! A `Down` is final for the identity it names, so a live member declared
//! down must renew, and every node that took the `Down` reports it down and
//! up again: a flap. After a cut is lifted, verdicts reached on one side
//! (while the other was unreachable) cross to nodes that see the member
//! alive: by gossip from a sender that was only suspected here, or by sync.
//! A `Down` comes at least the suspicion timeout after the suspicion that
//! led to it began (the evidence timeout, when the network's word counts:
//! see `evidence`), so a node that heard from the member itself within
//! that time knows the member was alive after it was suspected: the
//! verdict is stale. Such a `Down` is dropped from the
//! gossip before foca sees it and from sync records, and counted
//! (`Stats::stale_downs`). The declaring node then holds the member down
//! and tells it so when they next talk (the member renews, as after any
//! false positive); the nodes that ignored the verdict see a renewal, not a
//! down and an up. A member that did crash is not heard from again, so its
//! `Down` is taken once the window has passed: by then sync carries it, if
//! gossip no longer does.
//!
//! The screening costs a header decode per gossip datagram, and a decode
//! of its updates, so it runs only while it can matter: while this node
//! holds a member down or suspects one, and for one suspicion timeout after
//! a member held down came back.

use bytes::{Buf, BufMut};
use foca::{Codec, Member, Message, PostcardCodec, State};

use super::Node;
use crate::core::identity::NodeId;
use crate::core::keymap::KeyMap;
use crate::core::time::Time;

/// When each member was last heard from directly, while screening.
#[derive(Default)]
pub(super) struct Heard {
    last: KeyMap<((u64, u32), Time)>,
    /// Screening goes on until then after a member came back.
    pub until: Time,
}

impl Node {
    /// Whether `Down` verdicts are screened now.
    pub(super) fn screening(&self) -> bool {
        !self.down.is_empty() || self.io.suspicions.any() || self.io.now < self.heard.until
    }

    /// A member came back: screen for one suspicion timeout more.
    pub(super) fn screen_after_return(&mut self) {
        self.heard.until = self.io.now + self.config.swim.suspect_to_down_after;
    }

    /// The shortest time from the start of a suspicion to its `Down`: the
    /// suspicion timeout, or the evidence timeout when the network's word
    /// counts (a `Down` on evidence comes that soon after its suspicion).
    fn stale_window(&self) -> std::time::Duration {
        if self.config.network_evidence {
            self.config
                .evidence_timeout
                .min(self.config.swim.suspect_to_down_after)
        } else {
            self.config.swim.suspect_to_down_after
        }
    }

    /// `id` sent this node a datagram just now.
    pub(super) fn heard_from(&mut self, id: &NodeId) {
        let now = self.io.now;
        let window = self.stale_window();
        if self.heard.last.len() > 2 * (self.swim.num_members() + 1) {
            self.heard.last.retain(|_, (_, at)| now - *at < window);
        }
        self.heard.last.insert(id.key(), (id.version(), now));
    }

    /// Whether a `Down` about `id` is stale here (see the module docs).
    pub(super) fn is_stale_down(&self, id: &NodeId) -> bool {
        let window = self.stale_window();
        id.name() != self.swim.identity().name()
            && self
                .heard
                .last
                .get(&id.key())
                .is_some_and(|(v, at)| *v == id.version() && self.io.now - *at < window)
    }

    /// A gossip body without its stale `Down`s, if it carries any (None: take
    /// the body as it is). Undecodable bodies are left to foca to refuse.
    pub(super) fn without_stale_downs(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        let mut codec = PostcardCodec;
        let mut rest = body;
        let header: foca::Header<NodeId> = codec.decode_header(&mut rest).ok()?;
        if rest.remaining() < 2 || header.message == Message::Broadcast {
            return None;
        }
        let count = rest.get_u16();
        let mut updates: Vec<Member<NodeId>> = Vec::with_capacity(usize::from(count).min(64));
        for _ in 0..count {
            updates.push(codec.decode_member(&mut rest).ok()?);
        }
        let stale = |m: &Member<NodeId>| m.state() == State::Down && self.is_stale_down(m.id());
        let dropped = updates.iter().filter(|m| stale(m)).count();
        if dropped == 0 {
            return None;
        }
        let mut out = Vec::with_capacity(body.len());
        codec.encode_header(&header, &mut out).ok()?;
        out.put_u16(count - dropped as u16);
        for m in updates.iter().filter(|m| !stale(m)) {
            codec.encode_member(m, &mut out).ok()?;
        }
        out.extend_from_slice(rest);
        self.io.stats.stale_downs += dropped as u64;
        Some(out)
    }
}
