//! What foca's `Runtime` touches: the clock reading, the timer queue, the
//! envelope, and the queues of datagrams, notifications and events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use foca::{Notification, OwnedNotification, Runtime, Timer};

use super::suspicion::Suspicions;
use super::transitions::Mentions;
use super::{Events, Stats, Transmit};
use crate::core::dynamic_suspicion::expected_confirmations;
use crate::core::health::Health;
use crate::core::identity::NodeId;
use crate::core::name::NameKey;
use crate::core::replay::Sequence;
use crate::core::rng::SeedRng;
use crate::core::role::Role;
use crate::core::time::Time;
use crate::core::timers::TimerQueue;
use crate::core::wire::{Envelope, Kind, NONCE_LEN};

/// What a deadline in the timer queue is for.
#[derive(Debug)]
pub(super) enum Wake {
    /// One of foca's timers.
    Swim(Timer<NodeId>),
    /// The periodic sync tick, with its token.
    Sync(u32),
    /// The autoclean sweep.
    Clean,
    /// The reach to members held down (autoheal).
    Reach,
    /// A suspicion on network evidence is due: (member, incarnation).
    Evidence(NodeId, foca::Incarnation),
    /// A rediscovery request is due, with its token.
    Discover(u32),
}

/// Everything foca's `Runtime` touches, apart from foca itself.
pub(super) struct Io {
    pub now: Time,
    pub timers: TimerQueue<Wake>,
    pub envelope: Envelope,
    nonce_rng: SeedRng,
    /// Numbers every sealed datagram (replay protection).
    sequence: Sequence,
    pub transmits: VecDeque<Transmit>,
    /// foca's notifications, turned into events by `Node::settle`.
    pub notes: VecDeque<OwnedNotification<NodeId>>,
    pub events: Events,
    pub stats: Stats,
    /// Suspicions held, to tell the suspects.
    pub suspicions: Suspicions,
    /// How often a suspect is told at most (the probe period).
    pub tell_every: Duration,
    /// Lifeguard: dynamic suspicion and local health on.
    pub lifeguard: bool,
    /// This node's name, to tell its own claims from others'.
    pub me: NameKey,
    /// Active members, as of the start of this input.
    pub members: usize,
    /// Local health (Lifeguard): scales the probe period and timeout.
    pub health: Health,
    /// Whether a probe of ours is running (foca started one and the next
    /// probe period has not yet judged it).
    pub probing: bool,
    /// The highest incarnation at which we were told we are suspected.
    pub refuted: Option<foca::Incarnation>,
    /// Claims to broadcast: our probe of the member failed at that
    /// incarnation.
    pub claims_out: Vec<(NodeId, foca::Incarnation)>,
    /// This node's incarnation, and the identity version it belongs to, as
    /// the last message it sent carried them.
    sent_incarnation: ((u64, u32), foca::Incarnation),
    /// Updates that may move a member between alive and suspect
    /// (shared with foca's codec; see `transitions`).
    pub mentions: Mentions,
}

impl Io {
    pub fn new(
        envelope: Envelope,
        nonce_rng: SeedRng,
        stream_salt: u64,
        tell_every: Duration,
        lifeguard: bool,
        me: NameKey,
        mentions: Mentions,
    ) -> Self {
        Self {
            now: Time::ZERO,
            timers: TimerQueue::default(),
            envelope,
            nonce_rng,
            sequence: Sequence::new(stream_salt),
            transmits: VecDeque::new(),
            notes: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            suspicions: Suspicions::new(lifeguard),
            tell_every,
            lifeguard,
            me,
            members: 0,
            health: Health::default(),
            probing: false,
            refuted: None,
            claims_out: Vec::new(),
            sent_incarnation: ((0, 0), 0),
            mentions,
        }
    }

    /// This node's incarnation under the identity at `version`: 0 until a
    /// message sent under it says otherwise (foca starts every identity
    /// at 0).
    pub fn incarnation(&self, version: (u64, u32)) -> foca::Incarnation {
        match self.sent_incarnation {
            (v, incarnation) if v == version => incarnation,
            _ => 0,
        }
    }

    /// Keeps this node's incarnation as a message it is sending carries it,
    /// and counts each raise (a refutation) in `Stats::refuted`.
    fn note_incarnation(&mut self, message: &[u8]) {
        let Some((version, incarnation)) = sender_incarnation(message) else {
            return;
        };
        let before = self.incarnation(version);
        if incarnation > before {
            self.stats.refuted += u64::from(incarnation - before);
        }
        self.sent_incarnation = (version, incarnation.max(before));
    }

    /// Gives back the room a burst left in the drained queues.
    ///
    /// Restoring or syncing a whole view reports one event per member; a
    /// queue keeps its largest size once drained, and in a cluster of N
    /// nodes that is N records' worth per node, held for nothing.
    pub fn trim(&mut self) {
        const KEEP: usize = 64;
        if self.notes.is_empty() && self.notes.capacity() > KEEP {
            self.notes.shrink_to(KEEP);
        }
        if self.events.is_empty() && self.events.capacity() > KEEP {
            self.events.shrink_to(KEEP);
        }
        if self.transmits.is_empty() && self.transmits.capacity() > KEEP {
            self.transmits.shrink_to(KEEP);
        }
    }

    /// Seals `body` as `kind` and queues it for `to`.
    pub fn send(&mut self, kind: Kind, to: SocketAddr, body: &[u8]) {
        let mut nonce = [0u8; NONCE_LEN];
        rand::Rng::fill_bytes(&mut self.nonce_rng, &mut nonce);
        self.sequence.stamp(&mut nonce);
        let mut payload = Vec::new();
        self.envelope.seal_with(kind, body, &nonce, &mut payload);
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += payload.len() as u64;
        if kind == Kind::Sync {
            self.stats.sync.datagrams_sent += 1;
            self.stats.sync.bytes_sent += payload.len() as u64;
        }
        self.transmits.push_back(Transmit { to, payload });
    }
}

/// The sender's identity version and incarnation at the head of one of
/// foca's messages, read without decoding the rest or allocating.
///
/// foca's postcard header is `Header { src, src_incarnation, dst, message }`
/// and `src` is a [`NodeId`] (`name`, `addr`, `generation`, `renewal`,
/// `role`), each
/// struct written as its fields in order: so the message opens with this
/// tuple. A test checks it against foca's own encoding.
fn sender_incarnation(message: &[u8]) -> Option<((u64, u32), foca::Incarnation)> {
    type Head<'a> = (&'a str, SocketAddr, u64, u32, Role, foca::Incarnation);
    let ((_, _, generation, renewal, _, incarnation), _) =
        postcard::take_from_bytes::<Head<'_>>(message).ok()?;
    Some(((generation, renewal), incarnation))
}

impl Io {
    /// A probe timing stretched by local health (Lifeguard on).
    fn stretch(&self, d: Duration) -> Duration {
        if self.lifeguard {
            self.health.scale(d)
        } else {
            d
        }
    }
}

impl Runtime<NodeId> for Io {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        self.notes.push_back(notification.to_owned());
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.note_incarnation(data);
        self.send(Kind::Gossip, to.addr(), data);
        self.suspicions.sending(&to, self.now, self.tell_every);
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        let at = match &event {
            // foca arms this only when a probe of ours failed.
            Timer::ChangeSuspectToDown {
                member_id,
                incarnation,
                ..
            } => {
                self.stats.lifeguard.probes_failed += 1;
                self.mentions
                    .note(member_id, *incarnation, foca::State::Suspect);
                if !self.lifeguard {
                    self.suspicions.armed(&event);
                    self.now + after
                } else {
                    self.health.probe_failed();
                    self.claims_out.push((member_id.clone(), *incarnation));
                    let expected = expected_confirmations(self.members);
                    let now = self.now;
                    match self
                        .suspicions
                        .armed_dynamic(&event, now, after, expected, self.me)
                    {
                        Some(at) => at,
                        None => return,
                    }
                }
            }
            // foca arms this right after the ping of a new probe.
            Timer::SendIndirectProbe { .. } => {
                self.stats.lifeguard.probes_sent += 1;
                self.probing = true;
                self.now + self.stretch(after)
            }
            Timer::ProbeRandomMember(_) => self.now + self.stretch(after),
            _ => self.now + after,
        };
        self.timers.push(at, Wake::Swim(event));
    }
}

#[cfg(test)]
mod tests {
    use foca::{Codec, Header, Message, PostcardCodec};

    use super::*;

    #[test]
    fn the_incarnation_is_read_from_the_head_of_foca_s_own_encoding() {
        let id = |name: &str, generation| {
            NodeId::new(
                name.parse().unwrap(),
                ([127, 0, 0, 1], 4370).into(),
                generation,
            )
        };
        let header = Header {
            src: id("rc@127.0.0.1", 1_764_000_000_000)
                .with_role(Role::Replicant)
                .renewed(),
            src_incarnation: 517,
            dst: id("rc1@127.0.0.1", 7),
            message: Message::Ping(3),
        };
        let mut buf = Vec::new();
        PostcardCodec.encode_header(&header, &mut buf).unwrap();
        assert_eq!(
            sender_incarnation(&buf),
            Some(((1_764_000_000_000, 1), 517))
        );
        assert_eq!(sender_incarnation(&buf[..3]), None);
    }
}
