//! A sequence of operations against one node, checking its invariants
//! after every step.
//!
//! The node under test, `rc@127.0.0.1`, lives on a small virtual network
//! with three real nodes (`rc1`..`rc3`), so what it hears is what the
//! protocol really sends (announces, pings, acks, sync summaries, digests,
//! records, notices, Follow). The fuzzer chooses which datagrams are
//! delivered and in what order (or lost), alters them inside the seal,
//! crafts foca packets and sync messages of its own from a handful of
//! identities, advances the virtual clock, and gives commands (join,
//! leave, force-leave, discovered seeds) to any node.
//!
//! After every step, of the node under test:
//! - nothing panicked;
//! - it never lists itself as stopped (down);
//! - `running_nodes` and `stopped_nodes` share no name;
//! - a name it force-left is not running again unless at a newer
//!   generation (until autoclean forgets the tombstone);
//! - memory is bounded: at most one record per name, besides one earlier
//!   identity of its own; and, as long as no datagram was altered or
//!   made of raw bytes, every record is of a name some input carried.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

use arbitrary::Arbitrary;
use foca::{Codec, Header, Member, Message, PostcardCodec, State};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rollcall::core::autoheal::Side;
use rollcall::core::sync::{SyncMsg, SyncRecord, SyncTombstone};
use rollcall::core::wire::{Envelope, Kind};
use rollcall::core::{
    Command, Config, Departure, Event, Node, NodeId, NodeName, Peer, Role, SeedRng, Time, Tombstone,
};

/// Names in play: 0 is the node under test, 1..=3 the real peers, 4 a
/// name no node runs under.
const NAMES: usize = 5;
/// Datagrams in flight, at most; the oldest is lost beyond.
const IN_FLIGHT: usize = 64;

fn name(i: usize) -> NodeName {
    match i % NAMES {
        0 => "rc@127.0.0.1".parse().unwrap(),
        4 => "ghost@127.0.0.9".parse().unwrap(),
        i => format!("rc{i}@127.0.0.1").parse().unwrap(),
    }
}

fn addr(i: usize) -> SocketAddr {
    match i % NAMES {
        4 => SocketAddr::from(([127, 0, 0, 9], 4370)),
        i => SocketAddr::from(([127, 0, 0, 1], 4370 + i as u16)),
    }
}

fn config() -> Config {
    Config::lan(4)
}

/// An identity the fuzzer describes: which name, generation, renewal and
/// role.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Ident {
    name: u8,
    generation: u8,
    renewal: u8,
    replicant: bool,
}

impl Ident {
    fn id(self) -> NodeId {
        let i = usize::from(self.name);
        let mut id = NodeId::new(name(i), addr(i), u64::from(self.generation % 4));
        for _ in 0..self.renewal % 3 {
            id = id.renewed();
        }
        if self.replicant {
            id = id.with_role(Role::Replicant);
        }
        id
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Gossip {
    Ping(u8),
    Ack(u8),
    PingReq(Ident, u8),
    IndirectPing(Ident, u8),
    IndirectAck(Ident, u8),
    ForwardedAck(Ident, u8),
    Announce,
    Feed,
    Gossip,
    TurnUndead,
}

#[derive(Arbitrary, Debug, Clone)]
enum Sync {
    Summary {
        session: u32,
        hash: u64,
        side: (u8, u8, u8),
        you_are_down: Option<(u8, u8)>,
    },
    Digest {
        session: u32,
        buckets: Vec<u64>,
    },
    Members {
        session: u32,
        want: u64,
        members: Vec<(Ident, u16, u8, u16)>,
        tombstones: Vec<(Ident, bool, u16)>,
    },
    Notice(Ident, bool),
    Follow(Ident, (u8, u8, u8)),
    Suspected(Ident, u16),
}

#[derive(Arbitrary, Debug, Clone)]
enum Order {
    Join(Vec<u8>),
    Leave,
    ForceLeave(u8),
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    /// Deliver one datagram in flight (chosen by index), perhaps with a
    /// byte of its body altered (position, xor).
    Deliver(u8, Option<(u16, u8)>),
    /// Lose one datagram in flight.
    Lose(u8),
    /// Advance the clock by this many milliseconds and handle timeouts.
    Advance(u16),
    /// A command to a node (0 is the node under test).
    Command(u8, Order),
    /// Seeds found by discovery, given to a node.
    Discovered(u8, Vec<u8>),
    /// A foca packet to the node under test, from `src` to `dst`, with
    /// updates (identity, incarnation, state).
    CraftGossip {
        src: Ident,
        incarnation: u16,
        dst: Ident,
        message: Gossip,
        updates: Vec<(Ident, u16, u8)>,
    },
    /// A sync message to the node under test.
    CraftSync(Ident, Sync),
    /// Any body, sealed, to the node under test.
    Raw(bool, Vec<u8>),
}

fn side((size, lowest, cores): (u8, u8, u8)) -> Side {
    Side {
        size: u32::from(size % 8),
        lowest: name(usize::from(lowest)),
        cores: u32::from(cores % 8),
    }
}

fn state(s: u8) -> State {
    match s % 3 {
        0 => State::Alive,
        1 => State::Suspect,
        _ => State::Down,
    }
}

fn departure(forced: bool) -> Departure {
    if forced {
        Departure::ForceLeft
    } else {
        Departure::Left
    }
}

fn gossip_body(
    src: NodeId,
    incarnation: u16,
    dst: NodeId,
    message: Gossip,
    updates: &[(Ident, u16, u8)],
) -> Vec<u8> {
    let message = match message {
        Gossip::Ping(n) => Message::Ping(n),
        Gossip::Ack(n) => Message::Ack(n),
        Gossip::PingReq(t, n) => Message::PingReq {
            target: t.id(),
            probe_number: n,
        },
        Gossip::IndirectPing(o, n) => Message::IndirectPing {
            origin: o.id(),
            probe_number: n,
        },
        Gossip::IndirectAck(t, n) => Message::IndirectAck {
            target: t.id(),
            probe_number: n,
        },
        Gossip::ForwardedAck(o, n) => Message::ForwardedAck {
            origin: o.id(),
            probe_number: n,
        },
        Gossip::Announce => Message::Announce,
        Gossip::Feed => Message::Feed,
        Gossip::Gossip => Message::Gossip,
        Gossip::TurnUndead => Message::TurnUndead,
    };
    let announce = message == Message::Announce;
    let header = Header {
        src,
        src_incarnation: incarnation,
        dst,
        message,
    };
    let mut body = Vec::new();
    PostcardCodec.encode_header(&header, &mut body).unwrap();
    if !announce {
        let updates = &updates[..updates.len().min(16)];
        body.extend_from_slice(&(updates.len() as u16).to_be_bytes());
        for (id, inc, s) in updates {
            let member = Member::new(id.id(), *inc, state(*s));
            PostcardCodec.encode_member(&member, &mut body).unwrap();
        }
    }
    body
}

fn sync_body(from: NodeId, msg: Sync) -> Vec<u8> {
    let msg = match msg {
        Sync::Summary {
            session,
            hash,
            side: s,
            you_are_down,
        } => SyncMsg::Summary {
            session,
            from,
            hash,
            side: side(s),
            you_are_down: you_are_down.map(|(g, r)| (u64::from(g % 4), u32::from(r % 3))),
        },
        Sync::Digest { session, buckets } => SyncMsg::Digest {
            session,
            from,
            buckets,
        },
        Sync::Members {
            session,
            want,
            members,
            tombstones,
        } => SyncMsg::Members {
            session,
            from,
            want,
            members: members
                .iter()
                .take(8)
                .map(|(id, inc, s, age)| SyncRecord {
                    member: Member::new(id.id(), *inc, state(*s)),
                    down_age_ms: u64::from(*age) * 1000,
                })
                .collect(),
            tombstones: tombstones
                .iter()
                .take(8)
                .map(|(id, forced, age)| SyncTombstone {
                    tombstone: Tombstone::of(&id.id(), departure(*forced)),
                    age_ms: u64::from(*age) * 1000,
                })
                .collect(),
        },
        Sync::Notice(id, forced) => SyncMsg::Notice {
            from,
            tombstone: Tombstone::of(&id.id(), departure(forced)),
        },
        Sync::Follow(winner, s) => SyncMsg::Follow {
            from,
            winner: winner.id(),
            side: side(s),
        },
        Sync::Suspected(you, incarnation) => SyncMsg::Suspected {
            from,
            you: you.id(),
            incarnation,
        },
    };
    postcard::to_allocvec(&msg).unwrap()
}

/// The node under test, the peers, the datagrams in flight, the clock.
struct World {
    nodes: Vec<Node>,
    flight: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    now: Time,
    envelope: Envelope,
    rng: SeedRng,
    scratch: Vec<u8>,
    /// Names the node under test force-left, with the generation.
    forced: BTreeMap<NodeName, u64>,
    /// Whether any datagram was altered or made of raw bytes.
    tampered: bool,
}

impl World {
    fn new() -> Self {
        let config = config();
        let nodes = (0..4)
            .map(|i| {
                let id = NodeId::new(name(i), addr(i), 1);
                Node::new(id, config.clone(), [i as u8; 32]).unwrap()
            })
            .collect();
        Self {
            nodes,
            flight: VecDeque::new(),
            now: Time::ZERO,
            envelope: Envelope::new(config.cookie.as_bytes(), &config.cluster_name),
            rng: SeedRng::seed_from_u64(0),
            scratch: Vec::new(),
            forced: BTreeMap::new(),
            tampered: false,
        }
    }

    fn to_test(&mut self, kind: Kind, body: &[u8]) {
        let datagram = self.envelope.seal(kind, body, &mut self.rng);
        self.nodes[0].handle_datagram(self.now, addr(4), &datagram);
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Deliver(which, alter) => {
                if self.flight.is_empty() {
                    return;
                }
                let which = usize::from(which) % self.flight.len();
                let (from, to, mut datagram) = self.flight.remove(which).unwrap();
                if let Some((at, xor)) = alter.filter(|(_, x)| *x != 0) {
                    if let Ok((kind, body)) = self.envelope.open(&datagram, &mut self.scratch) {
                        let mut body = body.to_vec();
                        if !body.is_empty() {
                            let at = usize::from(at) % body.len();
                            body[at] ^= xor;
                            self.tampered = true;
                        }
                        datagram = self.envelope.seal(kind, &body, &mut self.rng);
                    }
                }
                if let Some(i) = (0..4).find(|&i| addr(i) == to) {
                    self.nodes[i].handle_datagram(self.now, from, &datagram);
                }
            }
            Op::Lose(which) => {
                if !self.flight.is_empty() {
                    let which = usize::from(which) % self.flight.len();
                    self.flight.remove(which);
                }
            }
            Op::Advance(ms) => {
                self.now = self.now + std::time::Duration::from_millis(u64::from(ms));
                for node in &mut self.nodes {
                    if node.poll_timeout().is_some_and(|t| t <= self.now) {
                        node.handle_timeout(self.now);
                    }
                }
            }
            Op::Command(on, order) => {
                let on = usize::from(on) % 4;
                let command = match order {
                    Order::Join(peers) => Command::Join(
                        peers
                            .iter()
                            .take(4)
                            .map(|&p| Peer::new(name(usize::from(p)), addr(usize::from(p))))
                            .collect(),
                    ),
                    Order::Leave => Command::Leave,
                    Order::ForceLeave(who) => Command::ForceLeave(name(usize::from(who))),
                };
                let target = match &command {
                    Command::ForceLeave(n) if on == 0 => self.nodes[0]
                        .membership()
                        .find(|m| m.id().name() == n)
                        .map(|m| (n.clone(), m.id().generation())),
                    _ => None,
                };
                if self.nodes[on].handle_command(self.now, command).is_ok() {
                    if let Some((n, generation)) = target {
                        let held = self.forced.entry(n).or_insert(generation);
                        *held = (*held).max(generation);
                    }
                }
            }
            Op::Discovered(on, seeds) => {
                let seeds: Vec<Peer> = seeds
                    .iter()
                    .take(5)
                    .map(|&p| Peer::new(name(usize::from(p)), addr(usize::from(p))))
                    .collect();
                self.nodes[usize::from(on) % 4].handle_discovered(self.now, &seeds);
            }
            Op::CraftGossip {
                src,
                incarnation,
                dst,
                message,
                updates,
            } => {
                let body = gossip_body(src.id(), incarnation, dst.id(), message, &updates);
                self.to_test(Kind::Gossip, &body);
            }
            Op::CraftSync(from, msg) => {
                let body = sync_body(from.id(), msg);
                self.to_test(Kind::Sync, &body);
            }
            Op::Raw(sync, body) => {
                self.tampered = true;
                let kind = if sync { Kind::Sync } else { Kind::Gossip };
                self.to_test(kind, &body);
            }
        }
        self.drain();
    }

    /// Moves every node's datagrams into flight and reads its events.
    fn drain(&mut self) {
        for i in 0..self.nodes.len() {
            let from = addr(i);
            while let Some(t) = self.nodes[i].poll_transmit() {
                if self.flight.len() == IN_FLIGHT {
                    self.flight.pop_front();
                }
                self.flight.push_back((from, t.to, t.payload));
            }
            while let Some(event) = self.nodes[i].poll_event() {
                if let (0, Event::NodeCleaned(n)) = (i, &event) {
                    self.forced.remove(n);
                }
            }
            let _ = self.nodes[i].poll_discover();
        }
    }

    fn check(&self) {
        let node = &self.nodes[0];
        let me = node.identity().name();
        let status = node.status();
        assert!(
            !status.stopped_nodes.contains(me),
            "the node lists itself as down"
        );
        let running: BTreeSet<_> = status.running_nodes.iter().collect();
        for n in &status.stopped_nodes {
            assert!(!running.contains(n), "{n} is both running and stopped");
        }
        let states = node.member_states();
        for (n, generation) in &self.forced {
            if running.contains(n) {
                let id = &states.iter().find(|s| s.id.name() == n).unwrap().id;
                assert!(
                    id.generation() > *generation,
                    "{n} was force-left at generation {generation} and runs again as {id:?}"
                );
            }
        }
        let mut names = BTreeSet::new();
        for m in node.membership() {
            assert!(
                names.insert(m.id().name().clone()),
                "two records of one name"
            );
        }
        assert!(
            node.num_records() <= names.len() + 1,
            "more records than names, besides one earlier identity of its own"
        );
        if !self.tampered {
            let universe: BTreeSet<_> = (0..NAMES).map(name).collect();
            assert!(names.is_subset(&universe), "a record of a name never sent");
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut world = World::new();
    world.drain();
    world.check();
    for op in ops.into_iter().take(256) {
        world.step(op);
        world.check();
    }
});
