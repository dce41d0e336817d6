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
use crate::core::rng::SeedRng;
use crate::core::time::Time;
use crate::core::timers::TimerQueue;
use crate::core::wire::{Envelope, Kind};

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
    /// Updates that may move a member between alive and suspect
    /// (shared with foca's codec; see `transitions`).
    pub mentions: Mentions,
}

impl Io {
    pub fn new(
        envelope: Envelope,
        nonce_rng: SeedRng,
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
            mentions,
        }
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
        let payload = self.envelope.seal(kind, body, &mut self.nonce_rng);
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += payload.len() as u64;
        if kind == Kind::Sync {
            self.stats.sync.datagrams_sent += 1;
            self.stats.sync.bytes_sent += payload.len() as u64;
        }
        self.transmits.push_back(Transmit { to, payload });
    }
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
            Timer::SendIndirectProbe { .. } => {
                self.probing = true;
                self.now + self.stretch(after)
            }
            Timer::ProbeRandomMember(_) => self.now + self.stretch(after),
            _ => self.now + after,
        };
        self.timers.push(at, Wake::Swim(event));
    }
}
