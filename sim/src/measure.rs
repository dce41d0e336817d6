//! Measurements of one run: whose view is correct, how fast crashes are
//! detected, false positives, and the convergence curve.
//!
//! A node's *view* is the set of names in `Node::members()` plus its own. It
//! is *correct* when it equals the set of live nodes. Checking that by
//! comparing every view after every step would cost O(N²) per step, so views
//! are tracked from the nodes' events instead: one bit per (observer,
//! member) pair, set by `MemberUp` and cleared by `MemberDown`, and per
//! observer the number of live and of dead names it holds. The number of
//! correct views then changes in O(1) per event, and in O(N) when a node
//! crashes or starts. foca keeps at most one identity per name and renames
//! (`MemberRenewed`) without touching the active set, so names are exact.

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
}

/// The measurements of a run, updated from the world's events.
#[derive(Debug)]
pub struct Measure {
    words: usize,
    view: Vec<u64>,
    live: Vec<bool>,
    live_count: u32,
    good: Vec<u32>,
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
    marks: Vec<(Time, Mark)>,
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
        self.live[i] && self.bad[i] == 0 && self.good[i] + 1 == self.live_count
    }

    fn recount(&mut self) {
        self.correct = (0..self.live.len()).filter(|&i| self.is_correct(i)).count() as u32;
    }

    fn settle(&mut self, now: Time) {
        let all = self.live_count > 0 && self.correct == self.live_count;
        if all {
            if self.all_correct_since.is_none() {
                self.all_correct_since = Some(now);
                for (at, mark) in &mut self.marks {
                    if mark.converged_after_s.is_none() {
                        mark.converged_after_s = Some((now - *at).as_secs_f64());
                    }
                }
            }
        } else {
            self.all_correct_since = None;
        }
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
        for o in 0..self.live.len() {
            if o != i && self.bit(o, i) {
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

    fn leave_live_set(&mut self, now: Time, iu: usize) {
        self.live[iu] = false;
        self.live_count -= 1;
        for m in 0..self.live.len() {
            if self.bit(iu, m) {
                self.up_count[m] -= 1;
                // A crashed node may have been the last holder of another crashed one.
                self.check_all_down(now, m);
            }
        }
        for o in 0..self.live.len() {
            if o != iu && self.bit(o, iu) {
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
        if self.live[m] {
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
        if self.live[mu] {
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
            if self.live[m] {
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
    /// time until every live view is next correct.
    pub fn mark(&mut self, now: Time, what: String) {
        let done = self.all_correct_since.is_some();
        self.marks.push((
            now,
            Mark {
                at_s: now.as_secs_f64(),
                what,
                converged_after_s: done.then_some(0.0),
            },
        ));
    }

    /// Whether every live node's view is correct now.
    pub fn all_correct(&self) -> bool {
        self.all_correct_since.is_some()
    }

    /// Since when every live view has been correct, if they are now.
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
        self.marks.iter().map(|(_, m)| m)
    }

    /// When the last operation was marked.
    pub fn last_mark(&self) -> Option<Time> {
        self.marks.last().map(|(t, _)| *t)
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

    #[test]
    fn samples_fall_on_the_grid() {
        let mut m = three();
        m.sample_until(t(1));
        assert_eq!(m.samples().len(), 10);
        assert_eq!(m.samples()[0], (0.0, 0.0));
    }
}
