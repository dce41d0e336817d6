//! The transitions foca does not report: a member becoming suspect, and a
//! suspect proving it is alive.
//!
//! foca notifies a member going up, going down and being renamed, but a
//! member's move between alive and suspect changes its record silently:
//! whether this node's own probe failed, a suspicion arrived by gossip or
//! sync, or the suspect refuted (an update at a higher incarnation, or any
//! message whose header carries one). The node turns these moves into
//! [`Event::MemberSuspect`] and [`Event::MemberAlive`].
//!
//! Every update that can cause such a move passes through one of few
//! places: foca's codec (gossip: each decoded header and member), the
//! node's own `apply_many` calls (sync, network evidence) and foca's
//! suspect-to-down timer (our probe failed). Each notes a *mention* (name,
//! version, incarnation, suspect or alive) in a list the node reads after
//! the input. A mention that could change what the node believes (a
//! suspicion newer than the one it holds of that member, or an alive
//! update newer than a suspicion it holds) makes the member a candidate;
//! the node then reads the candidates' records from foca, in one scan per
//! input, and reports what changed. So the node never guesses foca's
//! precedence rules, and in steady state (no suspicion anywhere) the cost
//! is one atomic read per datagram: alive mentions are noted only while
//! this node holds a suspicion.
//!
//! Memory is small and bounded: the suspects held, and for a while the
//! incarnation at which recently checked members were alive (so that a
//! stale suspicion still circulating after a refute does not cause a scan
//! each time it arrives).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut};
use foca::{Codec, Header, Incarnation, Member, PostcardCodec, State};

use super::Node;
use crate::core::event::Event;
use crate::core::identity::NodeId;
use crate::core::keymap::KeyMap;
use crate::core::name::NameKey;
use crate::core::time::Time;

/// One update seen: about whom, at which version and incarnation, and
/// whether it says suspect (otherwise alive; down updates are not noted,
/// foca reports those).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Mention {
    key: NameKey,
    version: (u64, u32),
    incarnation: Incarnation,
    suspect: bool,
}

impl Mention {
    fn of(id: &NodeId, incarnation: Incarnation, state: State) -> Option<Self> {
        let suspect = match state {
            State::Suspect => true,
            State::Alive => false,
            State::Down => return None,
        };
        Some(Self {
            key: id.key(),
            version: id.version(),
            incarnation,
            suspect,
        })
    }
}

/// The mentions of the current input, shared by the node and its codec.
/// One thread at a time uses them (the node is driven by one task); the
/// lock only makes the node `Send`, and the flags keep it off the path of
/// an input that noted nothing.
#[derive(Clone, Default)]
pub(super) struct Mentions(Arc<Shared>);

#[derive(Default)]
struct Shared {
    list: Mutex<Vec<Mention>>,
    /// Whether the list may hold something.
    noted: AtomicBool,
    /// Whether alive updates are noted (this node holds a suspicion).
    watch_alive: AtomicBool,
}

impl Mentions {
    /// Notes an update about `id`, if it can matter.
    pub fn note(&self, id: &NodeId, incarnation: Incarnation, state: State) {
        if state == State::Alive && !self.0.watch_alive.load(Ordering::Relaxed) {
            return;
        }
        if let Some(m) = Mention::of(id, incarnation, state) {
            if let Ok(mut list) = self.0.list.lock() {
                list.push(m);
                self.0.noted.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Whether anything was noted since the last `take`.
    fn any(&self) -> bool {
        self.0.noted.load(Ordering::Relaxed)
    }

    /// Takes the mentions noted so far.
    fn take(&self, into: &mut Vec<Mention>) {
        if !self.0.noted.swap(false, Ordering::Relaxed) {
            return;
        }
        if let Ok(mut list) = self.0.list.lock() {
            into.append(&mut list);
        }
    }

    fn clear(&self) {
        let mut discard = Vec::new();
        self.take(&mut discard);
    }

    fn watch_alive(&self, on: bool) {
        self.0.watch_alive.store(on, Ordering::Relaxed);
    }
}

/// foca's codec: postcard, noting every header and member it decodes.
pub(super) struct NotingCodec {
    mentions: Mentions,
}

impl NotingCodec {
    pub fn new(mentions: Mentions) -> Self {
        Self { mentions }
    }
}

impl Codec<NodeId> for NotingCodec {
    type Error = <PostcardCodec as Codec<NodeId>>::Error;

    fn encode_header(
        &mut self,
        header: &Header<NodeId>,
        buf: impl BufMut,
    ) -> Result<(), Self::Error> {
        PostcardCodec.encode_header(header, buf)
    }

    fn decode_header(&mut self, buf: impl Buf) -> Result<Header<NodeId>, Self::Error> {
        let header: Header<NodeId> = PostcardCodec.decode_header(buf)?;
        // foca takes every sender as alive at the incarnation it sends.
        self.mentions
            .note(&header.src, header.src_incarnation, State::Alive);
        Ok(header)
    }

    fn encode_member(
        &mut self,
        member: &Member<NodeId>,
        buf: impl BufMut,
    ) -> Result<(), Self::Error> {
        PostcardCodec.encode_member(member, buf)
    }

    fn decode_member(&mut self, buf: impl Buf) -> Result<Member<NodeId>, Self::Error> {
        let member: Member<NodeId> = PostcardCodec.decode_member(buf)?;
        self.mentions
            .note(member.id(), member.incarnation(), member.state());
        Ok(member)
    }
}

/// How long a member found alive is remembered, to skip stale suspicions
/// of it at lower incarnations.
const ALIVE_KEPT_FOR: Duration = Duration::from_secs(60);

/// What the node believes of its members' suspicions.
#[derive(Default)]
pub(super) struct Transitions {
    /// Members held suspect: version and incarnation.
    suspects: KeyMap<((u64, u32), Incarnation)>,
    /// Members recently found alive: version, incarnation, when.
    alive: KeyMap<((u64, u32), Incarnation, Time)>,
    /// Scratch for the mentions of one input.
    scratch: Vec<Mention>,
    /// Whether the maps changed since the last input ended.
    changed: bool,
}

impl Transitions {
    /// Whether `m` could change what this node believes of its member.
    fn is_news(&self, m: &Mention) -> bool {
        let held = self.suspects.get(&m.key);
        if !m.suspect {
            // Alive beats suspect at a higher incarnation only.
            return held.is_some_and(|(v, i)| *v == m.version && m.incarnation > *i);
        }
        match held {
            Some((v, i)) if *v > m.version || (*v == m.version && *i >= m.incarnation) => false,
            _ => !self
                .alive
                .get(&m.key)
                .is_some_and(|(v, i, _)| *v > m.version || (*v == m.version && *i > m.incarnation)),
        }
    }

    /// Forgets `key` (down, departed, renamed).
    pub fn forget(&mut self, key: NameKey) {
        let held = self.suspects.remove(&key).is_some();
        if held | self.alive.remove(&key).is_some() {
            self.changed = true;
        }
    }

    /// Forgets everything (a fresh SWIM instance), and what was noted.
    pub fn clear(&mut self, mentions: &Mentions) {
        self.suspects.clear();
        self.alive.clear();
        mentions.clear();
        self.changed = true;
        self.settled(mentions);
    }

    /// After an input: gives back room (a cut makes many suspects at
    /// once, down soon after) and sets what the codec notes.
    fn settled(&mut self, mentions: &Mentions) {
        if !std::mem::take(&mut self.changed) {
            return;
        }
        shrink(&mut self.suspects);
        shrink(&mut self.alive);
        // Alive updates matter while a suspicion is held, and only then.
        mentions.watch_alive(!self.suspects.is_empty());
    }
}

/// Gives back most of a map's room once it is mostly empty.
fn shrink<V>(map: &mut KeyMap<V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

impl Node {
    /// After an input: reads the candidates' records and reports members
    /// that became suspect or proved alive.
    pub(super) fn follow_transitions(&mut self) {
        // Most inputs note nothing and change nothing.
        if !self.io.mentions.any() && !self.transitions.changed {
            return;
        }
        let mut mentions = std::mem::take(&mut self.transitions.scratch);
        self.io.mentions.take(&mut mentions);
        let me = self.swim.identity().key();
        let mut candidates: Vec<NameKey> = Vec::new();
        if !self.left {
            candidates.extend(
                mentions
                    .iter()
                    .filter(|m| m.key != me && self.transitions.is_news(m))
                    .map(|m| m.key),
            );
        }
        mentions.clear();
        self.transitions.scratch = mentions;
        candidates.sort_unstable();
        candidates.dedup();
        if candidates.is_empty() {
            self.transitions.settled(&self.io.mentions);
            return;
        }
        let now = self.io.now;
        let found: Vec<(NodeId, Incarnation, State)> = self
            .swim
            .iter_membership_state()
            .filter(|m| candidates.binary_search(&m.id().key()).is_ok())
            .map(|m| (m.id().clone(), m.incarnation(), m.state()))
            .collect();
        let t = &mut self.transitions;
        t.changed = true;
        for key in &candidates {
            if !found.iter().any(|(id, ..)| id.key() == *key) {
                t.suspects.remove(key);
            }
        }
        for (id, incarnation, state) in found {
            let key = id.key();
            let version = id.version();
            match state {
                State::Suspect => {
                    t.alive.remove(&key);
                    let before = t.suspects.insert(key, (version, incarnation));
                    if before.is_none_or(|(v, _)| v != version) {
                        self.io.events.push_back(Event::MemberSuspect(id));
                    }
                }
                State::Alive => {
                    if t.suspects.remove(&key).is_some_and(|(v, _)| v == version) {
                        self.io.events.push_back(Event::MemberAlive(id));
                    }
                    t.alive.insert(key, (version, incarnation, now));
                }
                // foca reported it (MemberDown), or it was down already.
                State::Down => {
                    t.suspects.remove(&key);
                    t.alive.remove(&key);
                }
            }
        }
        if t.alive.len() > 64 + t.suspects.len() {
            t.alive.retain(|_, (_, _, at)| now - *at < ALIVE_KEPT_FOR);
        }
        t.settled(&self.io.mentions);
    }
}
