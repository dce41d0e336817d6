//! The node's side of full-state sync (the protocol is in [`crate::core::sync`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use rand::RngExt;

use super::io::Wake;
use super::Node;
use crate::core::autoclean::since_from_age;
use crate::core::config::Config;
use crate::core::identity::Peer;
use crate::core::keymap::{self, KeyMap};
use crate::core::name::NameKey;
use crate::core::rng::SeedRng;
use crate::core::sync::{self, Entry, SyncMsg, SyncRecord, SyncReject, SyncTombstone};
use crate::core::time::Time;
use crate::core::wire::{DropReason, Kind, OVERHEAD};

/// From this many records in one merge, one pass over the view to find
/// those this node already holds costs less than foca's scan per record.
const VIEW_CHECK_MIN_RECORDS: usize = 8;

/// A node's sync bookkeeping.
pub(super) struct SyncState {
    pub rng: SeedRng,
    next_session: u32,
    /// The sessions this node opened and awaits a digest for, (session,
    /// peer), newest last: the periodic round and autoheal's reaches to
    /// members held down run side by side. At most [`MAX_OPEN`].
    pub open: VecDeque<(u32, NameKey)>,
    /// Sessions whose `want` this node answered: (peer, session), newest last.
    answered: VecDeque<(NameKey, u32)>,
    interval: Duration,
    /// A difference was seen since the last tick (as opener or answerer).
    unsettled: bool,
    pub scheduled: bool,
    /// The token of the one sync wake that counts (an earlier wake may be
    /// armed after a later one: see `hasten_sync`).
    token: u32,
    /// When that wake is due.
    next_at: Time,
    /// The last seeds discovery reported: sync partners when alone.
    pub seeds: Vec<Peer>,
}

impl SyncState {
    pub fn new(rng: SeedRng, config: &Config) -> Self {
        Self {
            rng,
            next_session: 0,
            open: VecDeque::new(),
            answered: VecDeque::new(),
            interval: config.sync.map(|s| s.min_interval).unwrap_or_default(),
            unsettled: true,
            scheduled: false,
            token: 0,
            next_at: Time::ZERO,
            seeds: Vec::new(),
        }
    }
}

/// How many opened sessions a node awaits digests for at once.
const MAX_OPEN: usize = 8;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Node {
    pub(super) fn reject_sync(&mut self, reason: SyncReject) -> DropReason {
        self.io.stats.sync.count(reason);
        match reason {
            SyncReject::Malformed => DropReason::Malformed,
            _ => DropReason::SyncRejected,
        }
    }

    /// This node's view as sync sees it: itself (alive), every record no
    /// tombstone covers, and the tombstones.
    pub(super) fn digest(&self) -> [u64; sync::BUCKETS] {
        let me = std::iter::once(Entry::Record(self.swim.identity(), false));
        let records = self
            .records()
            .filter(|m| !self.tombstones.covers(m.id()))
            .map(|m| Entry::Record(m.id(), m.state() == foca::State::Down));
        let tombs = self.tombstones.iter().map(|(t, _)| Entry::Tomb(t));
        sync::digest(me.chain(records).chain(tombs))
    }

    /// This node's records and tombstones in the buckets of `want`, itself
    /// included, with their ages.
    fn entries_in(&self, want: u64) -> (Vec<SyncRecord>, Vec<SyncTombstone>) {
        let wanted = |name: &crate::core::NodeName| want & (1 << sync::bucket_of(name)) != 0;
        let now = self.io.now;
        let me = self.swim.identity();
        let mut records: Vec<SyncRecord> = self
            .records()
            .filter(|m| wanted(m.id().name()) && !self.tombstones.covers(m.id()))
            .map(|m| {
                let down_age_ms = match (m.state(), self.down.get(m.id().key())) {
                    (foca::State::Down, Some(d)) => millis(now - d.since),
                    _ => 0,
                };
                SyncRecord {
                    member: m.clone(),
                    down_age_ms,
                }
            })
            .collect();
        if wanted(me.name()) {
            records.push(SyncRecord {
                member: foca::Member::alive(me.clone()),
                down_age_ms: 0,
            });
        }
        let tombs = self
            .tombstones
            .iter()
            .filter(|(t, _)| wanted(&t.name))
            .map(|(t, since)| SyncTombstone {
                tombstone: t.clone(),
                age_ms: millis(now - since),
            })
            .collect();
        (records, tombs)
    }

    pub(super) fn send_sync(&mut self, to: SocketAddr, msg: &SyncMsg) {
        let body = postcard::to_allocvec(msg).expect("sync messages encode");
        self.io.send(Kind::Sync, to, &body);
    }

    fn send_entries(&mut self, to: SocketAddr, session: u32, want: u64, entries: u64) {
        let (records, tombs) = self.entries_in(entries);
        self.io.stats.sync.records_sent += (records.len() + tombs.len()) as u64;
        let me = self.swim.identity().clone();
        let max = self.config.max_datagram_size - OVERHEAD;
        for body in sync::members_messages(session, &me, want, records, tombs, max) {
            self.io.send(Kind::Sync, to, &body);
        }
    }

    pub(super) fn handle_sync(&mut self, msg: SyncMsg) -> Result<(), SyncReject> {
        if self.screen_sync(&msg) {
            return Ok(());
        }
        let me = self.swim.identity().clone();
        match msg {
            SyncMsg::Summary {
                session,
                from,
                hash,
                ..
            } => {
                let mine = self.digest();
                if sync::summary_hash(&mine) == hash {
                    self.io.stats.sync.summaries_equal += 1;
                } else {
                    self.io.stats.sync.summaries_differ += 1;
                    self.sync.unsettled = true;
                    let reply = SyncMsg::Digest {
                        session,
                        from: me,
                        buckets: mine.to_vec(),
                    };
                    self.send_sync(from.addr(), &reply);
                }
                Ok(())
            }
            SyncMsg::Digest {
                session,
                from,
                buckets,
            } => {
                if !self.sync.open.contains(&(session, from.name().key())) {
                    return Err(SyncReject::Unsolicited);
                }
                let diff = sync::differing(&self.digest(), &buckets);
                if diff != 0 {
                    self.sync.unsettled = true;
                    self.send_entries(from.addr(), session, diff, diff);
                }
                Ok(())
            }
            SyncMsg::Members {
                session,
                from,
                want,
                members,
                tombstones,
            } => {
                self.merge(members, tombstones);
                let key = (from.name().key(), session);
                if want != 0 && !self.sync.answered.contains(&key) {
                    if self.sync.answered.len() >= 64 {
                        self.sync.answered.pop_front();
                    }
                    self.sync.answered.push_back(key);
                    self.send_entries(from.addr(), session, 0, want);
                } else if want == 0 {
                    self.merged_with(&from);
                }
                Ok(())
            }
            SyncMsg::Notice { tombstone, .. } => {
                let now = self.io.now;
                self.learn_tombstone(tombstone, now);
                Ok(())
            }
            SyncMsg::Follow { from, winner, side } => {
                self.follow(&from, winner, side);
                Ok(())
            }
            SyncMsg::Suspected {
                from,
                you,
                incarnation,
            } => {
                self.suspected(&from, &you, incarnation);
                Ok(())
            }
        }
    }

    /// Merges a peer's records and tombstones. See ARCHITECTURE.md, "Sync
    /// merge rules".
    fn merge(&mut self, records: Vec<SyncRecord>, tombstones: Vec<SyncTombstone>) {
        let now = self.io.now;
        let autoclean = self.config.autoclean.map(millis).unwrap_or(u64::MAX);
        self.io.stats.sync.records_received += (records.len() + tombstones.len()) as u64;
        for t in tombstones {
            if t.age_ms < autoclean {
                let since = since_from_age(now, Duration::from_millis(t.age_ms));
                self.learn_tombstone(t.tombstone, since);
            }
        }
        if self.left {
            return; // one of those tombstones was this node's own
        }
        let records: Vec<SyncRecord> = records
            .into_iter()
            .filter(|r| !self.tombstones.covers(r.member.id()))
            .collect();
        // Down records need the records this node holds of them, and a
        // message of many records is cheaper to check against the view than
        // to hand to foca whole: find them in one pass over the view, and
        // only then (a joiner's first sync carries a few records, none down).
        let held = if records.len() >= VIEW_CHECK_MIN_RECORDS
            || records
                .iter()
                .any(|r| r.member.state() == foca::State::Down)
        {
            self.held_of(&records)
        } else {
            Vec::new()
        };
        let mut downs = Vec::new();
        let screening = self.screening();
        let mut stale = 0;
        let mut unchanged = 0;
        let mut apply = Vec::with_capacity(records.len());
        for (r, held) in records
            .into_iter()
            .zip(held.into_iter().chain(std::iter::repeat(None)))
        {
            let id = r.member.id();
            if r.member.state() == foca::State::Down {
                if screening && self.is_stale_down(id) {
                    stale += 1;
                    continue;
                }
                let key = id.key();
                match held.map(|m| m.id().version()) {
                    // A record older than autoclean is never taken from a
                    // peer that has not forgotten it yet.
                    None if r.down_age_ms >= autoclean => continue,
                    None => downs.push((key, id.version(), r.down_age_ms)),
                    Some(v) if v == id.version() => downs.push((key, id.version(), r.down_age_ms)),
                    Some(_) => {}
                }
            }
            self.io
                .mentions
                .note(id, r.member.incarnation(), r.member.state());
            // A record this node holds exactly (identity, incarnation,
            // state) changes nothing in foca, which would find it by a scan
            // of its member list.
            if held == Some(&r.member) {
                unchanged += 1;
            } else {
                apply.push(r.member);
            }
        }
        self.io.stats.stale_downs += stale;
        self.io.stats.sync.records_unchanged += unchanged;
        // foca's precedence rules decide every record.
        if self
            .swim
            .apply_many(apply.into_iter(), false, &mut self.io)
            .is_err()
        {
            self.io.stats.sync.rejected_malformed += 1;
        }
        for (key, version, age) in downs {
            self.down.note(
                key,
                version,
                since_from_age(now, Duration::from_millis(age)),
            );
        }
    }

    /// The record this node holds of each of `records`' members, by one
    /// pass over the view (not a scan of it per record, as foca's apply
    /// does). `records` names each member once: `sync::decode` rejects a
    /// message that names one twice.
    fn held_of<'a>(&'a self, records: &[SyncRecord]) -> Vec<Option<&'a sync::Record>> {
        let mut at: KeyMap<usize> = keymap::with_capacity(records.len());
        at.extend(
            records
                .iter()
                .enumerate()
                .map(|(i, r)| (r.member.id().key(), i)),
        );
        let mut held = vec![None; records.len()];
        for m in self.records() {
            if let Some(&i) = at.get(&m.id().key()) {
                held[i] = Some(m);
            }
        }
        held
    }

    /// Opens a sync session with `to`.
    pub(super) fn open_sync(&mut self, to: SocketAddr, key: NameKey) {
        if self.config.sync.is_none() || self.left {
            return;
        }
        let session = self.sync.next_session;
        self.sync.next_session = session.wrapping_add(1);
        if self.sync.open.len() >= MAX_OPEN {
            self.sync.open.pop_front();
        }
        self.sync.open.push_back((session, key));
        self.io.stats.sync.sessions_started += 1;
        let digest = self.digest();
        let msg = SyncMsg::Summary {
            session,
            from: self.swim.identity().clone(),
            hash: sync::summary_hash(&digest),
            side: self.side(),
            you_are_down: self.down.get(key).map(|d| d.version),
        };
        self.send_sync(to, &msg);
    }

    /// Arms the periodic sync timer.
    pub(super) fn schedule_sync(&mut self) {
        if self.sync.scheduled || self.config.sync.is_none() || self.left {
            return;
        }
        let interval = self.sync.interval;
        let delay = interval.mul_f64(self.sync.rng.random_range(0.75..1.25));
        self.arm_sync(delay);
    }

    fn arm_sync(&mut self, delay: Duration) {
        self.sync.scheduled = true;
        self.sync.token = self.sync.token.wrapping_add(1);
        self.sync.next_at = self.io.now + delay;
        self.io
            .timers
            .push(self.sync.next_at, Wake::Sync(self.sync.token));
    }

    /// Brings the next sync round forward, to within half the shortest
    /// interval, and keeps the interval short: a member held down came
    /// back, so views are about to differ (a healed partition) and the
    /// quickest way to agree is a round now rather than at the end of a
    /// long settled interval.
    pub(super) fn hasten_sync(&mut self) {
        let Some(cfg) = self.config.sync else { return };
        if self.left {
            return;
        }
        self.sync.unsettled = true;
        self.sync.interval = cfg.min_interval;
        let delay = cfg
            .min_interval
            .mul_f64(self.sync.rng.random_range(0.25..0.75));
        if self.sync.scheduled && self.sync.next_at <= self.io.now + delay {
            return;
        }
        self.arm_sync(delay);
    }

    /// The periodic sync tick: adapt the interval, pick a partner, open a
    /// session, re-arm. A wake with a stale token was replaced by an
    /// earlier one and does nothing.
    pub(super) fn sync_tick(&mut self, token: u32) {
        if token != self.sync.token || !self.sync.scheduled {
            return;
        }
        self.sync.scheduled = false;
        let Some(cfg) = self.config.sync else { return };
        self.sync.interval = if self.sync.unsettled {
            cfg.min_interval
        } else {
            (self.sync.interval * 2).min(cfg.max_interval)
        };
        self.sync.unsettled = false;
        if let Some((to, key)) = self.pick_sync_partner() {
            self.open_sync(to, key);
        }
        self.schedule_sync();
    }

    /// A random active member; when alone, a member held down or a
    /// discovered seed. (Members held down hear from a node that has
    /// members through the reach: see `reach`.)
    fn pick_sync_partner(&mut self) -> Option<(SocketAddr, NameKey)> {
        let active = self.swim.num_members();
        if active > 0 {
            let i = self.sync.rng.random_range(0..active);
            let id = self.swim.iter_members().nth(i).map(|m| m.id())?;
            return Some((id.addr(), id.key()));
        }
        if !self.down.is_empty() {
            let down: Vec<(SocketAddr, NameKey)> = self
                .held_down_records()
                .map(|id| (id.addr(), id.key()))
                .collect();
            if !down.is_empty() {
                return Some(down[self.sync.rng.random_range(0..down.len())]);
            }
        }
        let me = self.swim.identity().name().clone();
        let seeds: Vec<&Peer> = self.sync.seeds.iter().filter(|p| p.name != me).collect();
        if seeds.is_empty() {
            return None;
        }
        let p = seeds[self.sync.rng.random_range(0..seeds.len())];
        Some((p.addr, p.name.key()))
    }
}
