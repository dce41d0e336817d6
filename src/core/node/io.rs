//! What foca's `Runtime` touches: the clock reading, the timer queue, the
//! envelope, and the queues of datagrams, notifications and events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use foca::{Notification, OwnedNotification, Runtime, Timer};
use rand::rngs::StdRng;

use super::suspicion::Suspicions;
use super::{Events, Stats, Transmit};
use crate::core::identity::NodeId;
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
}

/// Everything foca's `Runtime` touches, apart from foca itself.
pub(super) struct Io {
    pub now: Time,
    pub timers: TimerQueue<Wake>,
    pub envelope: Envelope,
    nonce_rng: StdRng,
    pub transmits: VecDeque<Transmit>,
    /// foca's notifications, turned into events by `Node::settle`.
    pub notes: VecDeque<OwnedNotification<NodeId>>,
    pub events: Events,
    pub stats: Stats,
    /// Suspicions held, to tell the suspects.
    pub suspicions: Suspicions,
    /// How often a suspect is told at most (the probe period).
    pub tell_every: Duration,
}

impl Io {
    pub fn new(envelope: Envelope, nonce_rng: StdRng, tell_every: Duration) -> Self {
        Self {
            now: Time::ZERO,
            timers: TimerQueue::default(),
            envelope,
            nonce_rng,
            transmits: VecDeque::new(),
            notes: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            suspicions: Suspicions::default(),
            tell_every,
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

impl Runtime<NodeId> for Io {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        self.notes.push_back(notification.to_owned());
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.send(Kind::Gossip, to.addr(), data);
        self.suspicions.sending(&to, self.now, self.tell_every);
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.suspicions.armed(&event);
        self.timers.push(self.now + after, Wake::Swim(event));
    }
}
