//! Measurements of one run: whose view is correct, how fast crashes are
//! detected, how partitions are seen and healed, false positives, force-left
//! nodes reported up again (resurrections), when autoclean forgot a node, and
//! the convergence curve. All of it comes from the nodes' events; what is read
//! from the nodes themselves is the [`audit`](crate::audit)'s.
//!
//! A node's *view* is the set of names in `Node::members()` plus its own. It
//! is *correct* when it equals the set of live nodes the node can reach: all
//! of them, except while a partition stands, when it is the live nodes on
//! the node's own side (the others are rightly held down or absent). A node
//! on a side of a partition reaches exactly its side: every partition the
//! network makes (symmetric or one-way) keeps any two sides from talking
//! both ways, and SWIM needs both ways.
//!
//! Checking that by comparing every view after every step would cost O(N²)
//! per step, so views are tracked from the nodes' events instead: one bit
//! per (observer, member) pair, set by `MemberUp` and cleared by
//! `MemberDown`, and per observer the number of names it holds that it
//! should hold (live, on its side) and of those it should not. The number
//! of correct views then changes in O(1) per event, in O(N) when a node
//! crashes or starts, and in O(N²/64) when a partition is made or lifted.
//! foca keeps at most one identity per name and renames (`MemberRenewed`)
//! without touching the active set, so names are exact.

use std::collections::BTreeSet;
use std::time::Duration;

use rollcall::core::Time;
use serde::Serialize;

/// What happened to one crash.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrashRecord {
    /// The crashed node's index.
    pub node: u32,
    /// What crashed: the process (its host answers "port unreachable") or
    /// the whole host (silence).
    pub cause: CrashCause,
    /// When it crashed (virtual seconds).
    pub at_s: f64,
    /// Seconds until the first live node reported it down.
    pub first_down_s: Option<f64>,
    /// Seconds until no live node held it as a member any more.
    pub all_down_s: Option<f64>,
    /// Whether it restarted before every live node had marked it down.
    pub restarted_before_detection: bool,
}

/// What a crash took down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashCause {
    /// The node's process: its host answers datagrams with "port unreachable".
    Process,
    /// The node's host: nothing answers.
    Host,
}

/// Why a live member was declared down, as far as the simulator can tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FalseDownCauses {
    /// The member declared down was handling its inputs late (slow).
    pub slow_member: u64,
    /// The node that declared it was slow (and the member was not).
    pub slow_observer: u64,
    /// Reported within one suspicion timeout after a partition was lifted,
    /// about a member that partition cut off from some node: a verdict
    /// reached (or begun) while the cut stood, still spreading.
    pub after_heal: u64,
    /// None of the above: loss, a missed refutation, ...
    pub other: u64,
}

/// A scenario operation and how long views took to become correct after it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    /// When the operation happened (virtual seconds).
    pub at_s: f64,
    /// What it was.
    pub what: String,
    /// Seconds from the operation until every live view was correct, if it happened.
    pub converged_after_s: Option<f64>,
    /// The later partition or heal, and its time, that changed what a
    /// correct view is before every view was correct (`converged_after_s`
    /// is then null: that moment never came under the operation's terms).
    pub cut_short_by: Option<String>,
}

/// One partition: when every side saw the others stopped, and when the
/// cluster agreed again after the heal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartitionRecord {
    /// When the cut was made (virtual seconds).
    pub at_s: f64,
    /// The operation, as the timeline names it.
    pub what: String,
    /// How many sides the cut made.
    pub sides: u32,
    /// Seconds from the cut until every live node's view held exactly the
    /// live nodes on its own side (the other sides stopped or absent);
    /// null if that did not happen while the cut stood.
    pub sides_apart_after_s: Option<f64>,
    /// When the heal lifted the cut; null if it was not lifted within the
    /// run (or another partition replaced it).
    pub healed_at_s: Option<f64>,
    /// How far apart the sides had got when the cut was lifted: of every
    /// (live node, live node on another side) pair, the share in which the
    /// first no longer listed the second (1 once the sides were apart).
    pub seen_stopped_at_heal: Option<f64>,
    /// Seconds from the heal until every live node listed every live node
    /// again; null if that did not happen within the run (or before the
    /// next partition).
    pub agreed_after_s: Option<f64>,
}

/// The measurements of a run, updated from the world's events.
#[derive(Debug)]
pub struct Measure {
    words: usize,
    view: Vec<u64>,
    live: Vec<bool>,
    live_count: u32,
    /// Each node's side of the standing partition (all 0 without one).
    side: Vec<u16>,
    /// Live nodes on each side.
    live_on_side: Vec<u32>,
    /// Per observer: names held that it should hold (live, on its side).
    good: Vec<u32>,
    /// Per observer: names held that it should not hold.
    bad: Vec<u32>,
    up_count: Vec<u32>,
    correct: u32,
    all_correct_since: Option<Time>,
    crashes: Vec<CrashRecord>,
    open_crash: Vec<Option<(usize, Time)>>,
    false_positives: BTreeSet<(u32, u64)>,
    false_down_events: u64,
    false_down_causes: FalseDownCauses,
    samples: Vec<(f64, f64)>,
    grid: Duration,
    next_sample: Time,
    /// Each operation, when it happened, and whether its convergence time is still open.
    marks: Vec<(Time, Mark, bool)>,
    partitions: Vec<PartitionRecord>,
    /// The partition whose cut, or whose heal, decides what is correct now.
    current_partition: Option<usize>,
    /// Whether a partition stands.
    partitioned: bool,
    /// Per node: the generation a force-leave removed, if one did.
    forced: Vec<Option<u64>>,
    /// Force-left nodes some node reported up again.
    resurrected: BTreeSet<u32>,
    resurrection_events: u64,
    /// Per node: when some node last reported `NodeCleaned` about it.
    last_cleaned: Vec<Option<Time>>,
}

impl Measure {
    /// Measures `n` nodes, none of them live yet, sampling the fraction of
    /// correct views every `grid` of virtual time.
    pub fn new(n: usize, grid: Duration) -> Self {
        let words = n.div_ceil(64).max(1);
        Self {
            words,
            view: vec![0; words * n],
            live: vec![false; n],
            live_count: 0,
            side: vec![0; n],
            live_on_side: vec![0],
            good: vec![0; n],
            bad: vec![0; n],
            up_count: vec![0; n],
            correct: 0,
            all_correct_since: None,
            crashes: Vec::new(),
            open_crash: vec![None; n],
            false_positives: BTreeSet::new(),
            false_down_events: 0,
            false_down_causes: FalseDownCauses::default(),
            samples: Vec::new(),
            grid: grid.max(Duration::from_millis(1)),
            next_sample: Time::ZERO,
            marks: Vec::new(),
            partitions: Vec::new(),
            current_partition: None,
            partitioned: false,
            forced: vec![None; n],
            resurrected: BTreeSet::new(),
            resurrection_events: 0,
            last_cleaned: vec![None; n],
        }
    }

    fn bit(&self, observer: usize, member: usize) -> bool {
        self.view[observer * self.words + member / 64] & (1u64 << (member % 64)) != 0
    }

    fn set_bit(&mut self, observer: usize, member: usize, on: bool) {
        let w = &mut self.view[observer * self.words + member / 64];
        let mask = 1u64 << (member % 64);
        if on {
            *w |= mask;
        } else {
            *w &= !mask;
        }
    }

    fn is_correct(&self, i: usize) -> bool {
        self.live[i]
            && self.bad[i] == 0
            && self.good[i] + 1 == self.live_on_side[usize::from(self.side[i])]
    }

    /// Whether a correct view of observer `o` holds `m` now.
    fn should_hold(&self, o: usize, m: usize) -> bool {
        self.live[m] && self.side[o] == self.side[m]
    }

    fn recount(&mut self) {
        self.correct = (0..self.live.len()).filter(|&i| self.is_correct(i)).count() as u32;
    }

    fn settle(&mut self, now: Time) {
        let all = self.live_count > 0 && self.correct == self.live_count;
        if all {
            if self.all_correct_since.is_none() {
                self.all_correct_since = Some(now);
                for (at, mark, open) in &mut self.marks {
                    if *open {
                        mark.converged_after_s = Some((now - *at).as_secs_f64());
                        *open = false;
                    }
                }
                if let Some(p) = self.current_partition.map(|i| &mut self.partitions[i]) {
                    let since = |t: f64| (now.as_secs_f64() - t).max(0.0);
                    match p.healed_at_s {
                        None if p.sides_apart_after_s.is_none() => {
                            p.sides_apart_after_s = Some(since(p.at_s));
                        }
                        Some(h) if p.agreed_after_s.is_none() => {
                            p.agreed_after_s = Some(since(h));
                        }
                        _ => {}
                    }
                }
            }
        } else {
            self.all_correct_since = None;
        }
    }

    /// What a correct view is changes at `now` (a partition is made or
    /// lifted, by `what`): every operation still waiting for correct views
    /// under the old terms never gets them, and views must become correct
    /// anew under the new ones.
    fn change_terms(&mut self, now: Time, what: &str, side: Option<Vec<u16>>) {
        let n = self.live.len();
        let mut side = side.unwrap_or_default();
        side.resize(n, 0);
        let sides = side.iter().map(|&s| usize::from(s) + 1).max().unwrap_or(1);
        self.side = side;
        self.live_on_side = vec![0; sides];
        for m in (0..n).filter(|&m| self.live[m]) {
            self.live_on_side[usize::from(self.side[m])] += 1;
        }
        let words = self.words;
        let reach = self.live_by_side();
        for o in 0..n {
            let row = &self.view[o * words..(o + 1) * words];
            let mine = &reach[usize::from(self.side[o]) * words..][..words];
            let held: u32 = row.iter().map(|w| w.count_ones()).sum();
            let good: u32 = row
                .iter()
                .zip(mine)
                .map(|(w, r)| (w & r).count_ones())
                .sum();
            self.good[o] = good;
            self.bad[o] = held - good;
        }
        let at = now.as_secs_f64();
        for (_, mark, open) in &mut self.marks {
            if *open {
                mark.cut_short_by = Some(format!("{what} at {at:.3} s"));
                *open = false;
            }
        }
        self.recount();
        self.all_correct_since = None;
        self.settle(now);
    }

    /// Each side's live nodes as a bit set (`words` words per side).
    fn live_by_side(&self) -> Vec<u64> {
        let words = self.words;
        let mut sets = vec![0u64; self.live_on_side.len() * words];
        for m in (0..self.live.len()).filter(|&m| self.live[m]) {
            sets[usize::from(self.side[m]) * words + m / 64] |= 1u64 << (m % 64);
        }
        sets
    }

    /// Of every (live node, live node on another side) pair, the share in
    /// which the first no longer lists the second (1 without such pairs).
    fn seen_stopped_across(&self) -> f64 {
        let words = self.words;
        let sets = self.live_by_side();
        let mut live = vec![0u64; words];
        for side in sets.chunks(words) {
            live.iter_mut().zip(side).for_each(|(l, s)| *l |= s);
        }
        let (mut pairs, mut held) = (0u64, 0u64);
        for o in (0..self.live.len()).filter(|&o| self.live[o]) {
            let s = usize::from(self.side[o]);
            pairs += u64::from(self.live_count - self.live_on_side[s]);
            let row = &self.view[o * words..(o + 1) * words];
            let mine = &sets[s * words..(s + 1) * words];
            held += row
                .iter()
                .zip(mine)
                .zip(&live)
                .map(|((v, m), l)| u64::from((v & l & !m).count_ones()))
                .sum::<u64>();
        }
        if pairs == 0 {
            1.0
        } else {
            1.0 - held as f64 / pairs as f64
        }
    }

    /// The network is cut at `now` into sides (`side[i]` is node `i`'s,
    /// as [`Network::partition`](crate::network::Network::partition) takes
    /// it) by the operation `what`. From now on a node's correct view is the
    /// live nodes on its side, until [`heal`](Self::heal).
    pub fn partition(&mut self, now: Time, what: &str, side: Vec<u16>) {
        let sides = side.iter().map(|&s| u32::from(s) + 1).max().unwrap_or(1);
        self.partitions.push(PartitionRecord {
            at_s: now.as_secs_f64(),
            what: what.to_owned(),
            sides,
            sides_apart_after_s: None,
            healed_at_s: None,
            seen_stopped_at_heal: None,
            agreed_after_s: None,
        });
        self.current_partition = Some(self.partitions.len() - 1);
        self.partitioned = true;
        self.change_terms(now, what, Some(side));
    }

    /// The standing partition is lifted at `now`: from now on a correct
    /// view is every live node again. Does nothing without a partition.
    pub fn heal(&mut self, now: Time) {
        if !self.partitioned {
            return;
        }
        self.partitioned = false;
        let seen_stopped = self.seen_stopped_across();
        if let Some(p) = self.current_partition.map(|i| &mut self.partitions[i]) {
            p.healed_at_s = Some(now.as_secs_f64());
            p.seen_stopped_at_heal = Some(seen_stopped);
        }
        self.change_terms(now, "heal", None);
    }

    /// Records samples of the correct fraction on the grid up to (not including) `now`.
    pub fn sample_until(&mut self, now: Time) {
        while self.next_sample < now {
            let f = self.fraction();
            self.samples.push((self.next_sample.as_secs_f64(), f));
            self.next_sample = self.next_sample + self.grid;
        }
    }

    /// Node `i` starts (first boot or restart) with an empty view.
    pub fn on_start(&mut self, now: Time, i: u32) {
        let i = i as usize;
        if self.live[i] {
            return;
        }
        for w in &mut self.view[i * self.words..(i + 1) * self.words] {
            *w = 0;
        }
        self.good[i] = 0;
        self.bad[i] = 0;
        self.live[i] = true;
        self.live_count += 1;
        self.live_on_side[usize::from(self.side[i])] += 1;
        for o in 0..self.live.len() {
            if o != i && self.bit(o, i) && self.should_hold(o, i) {
                self.bad[o] -= 1;
                self.good[o] += 1;
            }
        }
        if let Some((c, _)) = self.open_crash[i].take() {
            if self.crashes[c].all_down_s.is_none() {
                self.crashes[c].restarted_before_detection = true;
            }
        }
        self.recount();
        self.settle(now);
    }

    /// Node `i` crashes: its view stops counting, and every view that
    /// holds it is wrong until it is marked down there.
    pub fn on_crash(&mut self, now: Time, i: u32, cause: CrashCause) {
        let iu = i as usize;
        if !self.live[iu] {
            return;
        }
        self.leave_live_set(now, iu);
        let c = self.crashes.len();
        self.crashes.push(CrashRecord {
            node: i,
            cause,
            at_s: now.as_secs_f64(),
            first_down_s: None,
            all_down_s: None,
            restarted_before_detection: false,
        });
        self.open_crash[iu] = Some((c, now));
        self.check_all_down(now, iu);
        self.recount();
        self.settle(now);
    }

    /// Node `i` departs (it was force-left): like a crash for the views
    /// (its own stops counting, and every view that holds it is wrong until
    /// it drops it), but not a failure, so no crash record.
    pub fn on_depart(&mut self, now: Time, i: u32) {
        let iu = i as usize;
        if !self.live[iu] {
            return;
        }
        self.leave_live_set(now, iu);
        self.recount();
        self.settle(now);
    }

    /// Node `i`, in generation `generation`, is force-left at `now`: it
    /// departs (see [`on_depart`](Self::on_depart)), and from now on a
    /// `MemberUp` of that generation or an older one is a resurrection.
    pub fn on_force_leave(&mut self, now: Time, i: u32, generation: u64) {
        if let Some(f) = self.forced.get_mut(i as usize) {
            *f = Some(generation);
        }
        self.on_depart(now, i);
    }

    /// Observer `o` reports member `m` up in generation `generation`:
    /// counts it, and returns true, if that is a resurrection (a force-left
    /// identity, or any renewal of the covered generation, reported up again
    /// by another node).
    pub fn is_resurrection(&mut self, o: u32, m: u32, generation: u64) -> bool {
        let forced = self.forced.get(m as usize).copied().flatten();
        if o != m && forced.is_some_and(|g| generation <= g) {
            self.resurrected.insert(m);
            self.resurrection_events += 1;
            true
        } else {
            false
        }
    }

    /// Force-left nodes that some node reported up again at a covered
    /// generation, and how many such `MemberUp` events there were.
    pub fn resurrections(&self) -> (usize, u64) {
        (self.resurrected.len(), self.resurrection_events)
    }

    /// Some node reported `NodeCleaned` about node `m` at `now` (autoclean
    /// forgot it there).
    pub fn on_cleaned(&mut self, now: Time, m: u32) {
        if let Some(t) = self.last_cleaned.get_mut(m as usize) {
            *t = Some(now);
        }
    }

    /// When some node last reported `NodeCleaned` about node `i`.
    pub fn last_cleaned(&self, i: u32) -> Option<Time> {
        self.last_cleaned.get(i as usize).copied().flatten()
    }

    fn leave_live_set(&mut self, now: Time, iu: usize) {
        // Who should hold `iu` until now: its side.
        let side = self.side[iu];
        self.live[iu] = false;
        self.live_count -= 1;
        self.live_on_side[usize::from(side)] -= 1;
        for m in 0..self.live.len() {
            if self.bit(iu, m) {
                self.up_count[m] -= 1;
                // A crashed node may have been the last holder of another crashed one.
                self.check_all_down(now, m);
            }
        }
        for o in 0..self.live.len() {
            if o != iu && self.bit(o, iu) && self.side[o] == side {
                self.good[o] -= 1;
                self.bad[o] += 1;
            }
        }
    }

    fn check_all_down(&mut self, now: Time, m: usize) {
        if self.up_count[m] == 0 {
            if let Some((c, at)) = self.open_crash[m] {
                if self.crashes[c].all_down_s.is_none() {
                    self.crashes[c].all_down_s = Some((now - at).as_secs_f64());
                }
            }
        }
    }

    /// Observer `o` reports `m` up.
    pub fn member_up(&mut self, now: Time, o: u32, m: u32) {
        let (o, m) = (o as usize, m as usize);
        if o == m || self.bit(o, m) || !self.live[o] {
            return;
        }
        let before = self.is_correct(o);
        self.set_bit(o, m, true);
        if self.should_hold(o, m) {
            self.good[o] += 1;
        } else {
            self.bad[o] += 1;
        }
        self.up_count[m] += 1;
        self.adjust(now, o, before);
    }

    /// Observer `o` reports `m` down; `false_positive` when `m` is live in
    /// that generation and nothing separates the two (a correct node
    /// declared dead), with `generation` naming the identity.
    pub fn member_down(&mut self, now: Time, o: u32, m: u32, false_positive: Option<u64>) {
        let (ou, mu) = (o as usize, m as usize);
        if let Some(generation) = false_positive {
            self.false_down_events += 1;
            self.false_positives.insert((m, generation));
        }
        if let Some((c, at)) = self.open_crash[mu] {
            if self.crashes[c].first_down_s.is_none() && self.live[ou] {
                self.crashes[c].first_down_s = Some((now - at).as_secs_f64());
            }
        }
        if ou == mu || !self.bit(ou, mu) || !self.live[ou] {
            return;
        }
        let before = self.is_correct(ou);
        self.set_bit(ou, mu, false);
        if self.should_hold(ou, mu) {
            self.good[ou] -= 1;
        } else {
            self.bad[ou] -= 1;
        }
        self.up_count[mu] -= 1;
        self.check_all_down(now, mu);
        self.adjust(now, ou, before);
    }

    fn adjust(&mut self, now: Time, o: usize, before: bool) {
        let after = self.is_correct(o);
        if before != after {
            if after {
                self.correct += 1;
            } else {
                self.correct -= 1;
            }
            self.settle(now);
        }
    }

    /// How many members observer `o`'s tracked view holds (itself excluded).
    pub fn tracked_members(&self, o: u32) -> u32 {
        let o = o as usize;
        self.good[o] + self.bad[o]
    }

    /// Replaces observer `o`'s tracked view by `members` (read from the node
    /// itself): for view changes that came without `MemberUp` or
    /// `MemberDown` events, such as a rejoin that starts from a fresh view.
    pub fn resync(&mut self, now: Time, o: u32, members: &[u32]) {
        let ou = o as usize;
        if !self.live[ou] {
            return;
        }
        let before = self.is_correct(ou);
        let n = self.live.len();
        let mut removed = Vec::new();
        for m in 0..n {
            if self.bit(ou, m) {
                self.set_bit(ou, m, false);
                self.up_count[m] -= 1;
                removed.push(m);
            }
        }
        self.good[ou] = 0;
        self.bad[ou] = 0;
        for &m in members {
            let m = m as usize;
            if m == ou || m >= n || self.bit(ou, m) {
                continue;
            }
            self.set_bit(ou, m, true);
            self.up_count[m] += 1;
            if self.should_hold(ou, m) {
                self.good[ou] += 1;
            } else {
                self.bad[ou] += 1;
            }
        }
        for m in removed {
            self.check_all_down(now, m);
        }
        self.adjust(now, ou, before);
    }

    /// Records a scenario operation at `now`; its convergence time is the
    /// time until every live view is next correct, unless a partition or a
    /// heal changes what correct means first. Call it after the operation's
    /// own [`partition`](Self::partition) or [`heal`](Self::heal).
    pub fn mark(&mut self, now: Time, what: String) {
        let done = self.all_correct_since.is_some();
        self.marks.push((
            now,
            Mark {
                at_s: now.as_secs_f64(),
                what,
                converged_after_s: done.then_some(0.0),
                cut_short_by: None,
            },
            !done,
        ));
    }

    /// Whether every live node's view is correct now.
    pub fn all_correct(&self) -> bool {
        self.all_correct_since.is_some()
    }

    /// Since when every live view has been correct, if they are now (and
    /// at the latest since the last partition or heal changed what correct
    /// means).
    pub fn all_correct_since(&self) -> Option<Time> {
        self.all_correct_since
    }

    /// The fraction of live nodes whose view is correct (1 with no live node).
    pub fn fraction(&self) -> f64 {
        if self.live_count == 0 {
            1.0
        } else {
            f64::from(self.correct) / f64::from(self.live_count)
        }
    }

    /// Whether node `i` is live.
    pub fn is_live(&self, i: u32) -> bool {
        self.live.get(i as usize).copied().unwrap_or(false)
    }

    /// How many nodes are live.
    pub fn live_count(&self) -> u32 {
        self.live_count
    }

    /// How many live nodes hold a correct view.
    pub fn correct_count(&self) -> u32 {
        self.correct
    }

    /// Every crash so far, in order.
    pub fn crashes(&self) -> &[CrashRecord] {
        &self.crashes
    }

    /// The distinct (node, generation) identities that were declared down
    /// while live and reachable.
    pub fn false_positives(&self) -> usize {
        self.false_positives.len()
    }

    /// How many `MemberDown` events named a live, reachable node.
    pub fn false_down_events(&self) -> u64 {
        self.false_down_events
    }

    /// False down events by what was slow at the time.
    pub fn false_down_causes(&self) -> FalseDownCauses {
        self.false_down_causes
    }

    /// Counts one false down event's cause (the event itself is counted by
    /// [`member_down`](Self::member_down)).
    pub fn false_down_cause(&mut self, member_slow: bool, observer_slow: bool, after_heal: bool) {
        let c = &mut self.false_down_causes;
        if member_slow {
            c.slow_member += 1;
        } else if observer_slow {
            c.slow_observer += 1;
        } else if after_heal {
            c.after_heal += 1;
        } else {
            c.other += 1;
        }
    }

    /// The convergence curve: (virtual seconds, fraction of correct views).
    pub fn samples(&self) -> &[(f64, f64)] {
        &self.samples
    }

    /// The operations marked so far, with their convergence times.
    pub fn marks(&self) -> impl Iterator<Item = &Mark> {
        self.marks.iter().map(|(_, m, _)| m)
    }

    /// When the last operation was marked.
    pub fn last_mark(&self) -> Option<Time> {
        self.marks.last().map(|(t, _, _)| *t)
    }

    /// Every partition so far, in order.
    pub fn partitions(&self) -> &[PartitionRecord] {
        &self.partitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Time {
        Time::ZERO + Duration::from_secs(s)
    }

    fn three() -> Measure {
        let mut m = Measure::new(3, Duration::from_millis(100));
        for i in 0..3 {
            m.on_start(t(0), i);
        }
        m
    }

    #[test]
    fn views_are_correct_once_everyone_knows_everyone() {
        let mut m = three();
        assert!(!m.all_correct());
        for o in 0..3 {
            for x in 0..3 {
                m.member_up(t(1), o, x);
            }
        }
        assert!(m.all_correct());
        assert_eq!(m.all_correct_since(), Some(t(1)));
    }

    #[test]
    fn a_crash_makes_views_wrong_until_every_holder_marks_it_down() {
        let mut m = three();
        for o in 0..3 {
            for x in 0..3 {
                m.member_up(t(1), o, x);
            }
        }
        m.on_crash(t(2), 2, CrashCause::Process);
        m.mark(t(2), "crash".into());
        assert!(!m.all_correct());
        m.member_down(t(3), 0, 2, None);
        assert_eq!(m.crashes()[0].first_down_s, Some(1.0));
        assert!(!m.all_correct());
        m.member_down(t(5), 1, 2, None);
        assert_eq!(m.crashes()[0].all_down_s, Some(3.0));
        assert!(m.all_correct());
        assert_eq!(m.marks().next().unwrap().converged_after_s, Some(3.0));
    }

    #[test]
    fn a_restart_makes_old_views_of_the_node_count_as_correct_again() {
        let mut m = three();
        for o in 0..3 {
            for x in 0..3 {
                m.member_up(t(1), o, x);
            }
        }
        m.on_crash(t(2), 2, CrashCause::Process);
        m.on_start(t(3), 2);
        assert!(m.crashes()[0].restarted_before_detection);
        assert!(!m.all_correct(), "the restarted node knows nobody yet");
        m.member_up(t(4), 2, 0);
        m.member_up(t(4), 2, 1);
        assert!(m.all_correct());
    }

    fn four_who_know_each_other() -> Measure {
        let mut m = Measure::new(4, Duration::from_millis(100));
        for i in 0..4 {
            m.on_start(t(0), i);
        }
        for o in 0..4 {
            for x in 0..4 {
                m.member_up(t(1), o, x);
            }
        }
        m
    }

    #[test]
    fn during_a_partition_a_correct_view_holds_exactly_the_nodes_own_side() {
        let mut m = four_who_know_each_other();
        assert!(m.all_correct());
        m.partition(t(2), "cut", vec![0, 0, 1, 1]);
        m.mark(t(2), "cut".into());
        assert_eq!(m.correct_count(), 0, "everyone still lists the other side");
        for (o, others) in [(0, [2, 3]), (1, [2, 3]), (2, [0, 1])] {
            for x in others {
                m.member_down(t(5), o, x, None);
            }
        }
        assert_eq!(m.correct_count(), 3);
        assert!(!m.all_correct());
        m.member_down(t(6), 3, 0, None);
        m.member_down(t(7), 3, 1, None);
        assert!(m.all_correct());
        let p = &m.partitions()[0];
        assert_eq!(p.sides, 2);
        assert_eq!(p.sides_apart_after_s, Some(5.0));
        assert_eq!(m.marks().next().unwrap().converged_after_s, Some(5.0));
    }

    #[test]
    fn after_a_heal_a_correct_view_holds_every_live_node_again() {
        let mut m = four_who_know_each_other();
        m.partition(t(2), "cut", vec![0, 0, 1, 1]);
        for (o, others) in [(0, [2, 3]), (1, [2, 3]), (2, [0, 1]), (3, [0, 1])] {
            for x in others {
                m.member_down(t(5), o, x, None);
            }
        }
        assert!(m.all_correct());
        m.heal(t(10));
        m.mark(t(10), "heal".into());
        assert_eq!(m.correct_count(), 0, "everyone holds only its side");
        for (o, others) in [(0, [2, 3]), (1, [2, 3]), (2, [0, 1]), (3, [0, 1])] {
            for x in others {
                m.member_up(t(12), o, x);
            }
        }
        assert!(m.all_correct());
        let p = &m.partitions()[0];
        assert_eq!(p.healed_at_s, Some(10.0));
        assert_eq!(p.seen_stopped_at_heal, Some(1.0));
        assert_eq!(p.agreed_after_s, Some(2.0));
        assert_eq!(m.marks().next().unwrap().converged_after_s, Some(2.0));
    }

    #[test]
    fn a_heal_records_how_far_the_sides_had_got_apart() {
        let mut m = four_who_know_each_other();
        m.partition(t(2), "cut", vec![0, 0, 1, 1]);
        m.member_down(t(3), 0, 2, None);
        m.member_down(t(3), 3, 1, None);
        m.heal(t(4));
        // Two of the eight (node, node across the cut) pairs were apart.
        assert_eq!(m.partitions()[0].seen_stopped_at_heal, Some(0.25));
        assert_eq!(m.partitions()[0].sides_apart_after_s, None);
    }

    #[test]
    fn a_crash_during_a_partition_leaves_its_side_only() {
        let mut m = four_who_know_each_other();
        m.partition(t(2), "cut", vec![0, 0, 1, 1]);
        m.on_crash(t(3), 3, CrashCause::Host);
        for (o, others) in [(0, [2, 3]), (1, [2, 3]), (2, [0, 1])] {
            for x in others {
                m.member_down(t(5), o, x, None);
            }
        }
        assert_eq!(
            m.correct_count(),
            2,
            "node 2 still holds the crashed node 3"
        );
        m.member_down(t(6), 2, 3, None);
        assert!(m.all_correct());
        assert_eq!(m.partitions()[0].sides_apart_after_s, Some(4.0));
    }

    #[test]
    fn an_operation_still_waiting_when_a_partition_comes_never_converges() {
        let mut m = four_who_know_each_other();
        m.on_crash(t(2), 3, CrashCause::Host);
        m.mark(t(2), "crash".into());
        m.partition(t(3), "cut", vec![0, 0, 1, 1]);
        m.heal(t(4));
        for o in 0..3 {
            m.member_down(t(5), o, 3, None);
        }
        assert!(m.all_correct());
        let crash = m.marks().next().unwrap();
        assert_eq!(crash.converged_after_s, None);
        assert_eq!(crash.cut_short_by.as_deref(), Some("cut at 3.000 s"));
        let p = &m.partitions()[0];
        assert_eq!(p.sides_apart_after_s, None, "healed first");
        assert_eq!(
            p.seen_stopped_at_heal,
            Some(0.0),
            "nobody had been marked down"
        );
        assert_eq!(p.agreed_after_s, Some(1.0));
    }

    #[test]
    fn samples_fall_on_the_grid() {
        let mut m = three();
        m.sample_until(t(1));
        assert_eq!(m.samples().len(), 10);
        assert_eq!(m.samples()[0], (0.0, 0.0));
    }
}
