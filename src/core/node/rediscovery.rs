//! When the node wants seeds: the one rediscovery policy, run by the agent
//! and the simulator alike.
//!
//! A node wants seeds at start, then every
//! [`RediscoveryConfig::alone`](crate::core::RediscoveryConfig) while it has
//! no members and every `in_cluster` while it has some, and at once when it
//! finds itself alone again (its last member went down or left). A node that
//! left (or was force-left) wants none until an explicit `Join`, and wants
//! seeds at once after it. The wants are a wake-up in the node's timer queue;
//! [`Node::poll_discover`] hands them to the driver, which only carries the
//! request to its strategy and the answer back to
//! [`Node::handle_discovered`].

use super::io::Wake;
use super::Node;
use crate::core::time::Time;

/// The rediscovery state of one node.
#[derive(Debug)]
pub(super) struct Rediscovery {
    /// A request the driver has not taken yet.
    wanted: bool,
    /// When the next request is due, while one is scheduled.
    due: Option<Time>,
    /// Tells the scheduled wake from superseded ones.
    token: u32,
    /// Members at the end of the last input, to see the node become alone.
    members: usize,
}

impl Default for Rediscovery {
    /// A new node wants seeds at once.
    fn default() -> Self {
        Self {
            wanted: true,
            due: None,
            token: 0,
            members: 0,
        }
    }
}

impl Node {
    /// Whether the node wants seeds from discovery now. Each request is
    /// handed out once; the driver asks its strategy and gives what it finds
    /// to [`handle_discovered`](Self::handle_discovered). A strategy that
    /// fails needs no answer: the node asks again on its schedule. Drained
    /// after every input, with the other outputs (and once before the
    /// first input: a new node wants seeds at once).
    pub fn poll_discover(&mut self) -> bool {
        std::mem::take(&mut self.rediscovery.wanted)
    }

    /// Schedules the next request if none is (not while left).
    pub(super) fn schedule_discovery(&mut self) {
        if self.left || self.rediscovery.due.is_some() {
            return;
        }
        let wait = self.config.rediscovery.next_wait(self.swim.num_members());
        self.push_discovery(self.io.now + wait);
    }

    fn push_discovery(&mut self, at: Time) {
        let r = &mut self.rediscovery;
        r.token = r.token.wrapping_add(1);
        r.due = Some(at);
        self.io.timers.push(at, Wake::Discover(r.token));
    }

    /// A scheduled request is due.
    pub(super) fn discovery_due(&mut self, token: u32) {
        if token != self.rediscovery.token || self.left {
            return;
        }
        self.rediscovery.wanted = true;
        self.rediscovery.due = None;
        self.schedule_discovery();
    }

    /// At the end of every input: a node that had members and has none
    /// wants seeds at once, and waits the `alone` interval after that.
    pub(super) fn watch_alone(&mut self) {
        let members = self.swim.num_members();
        let was = std::mem::replace(&mut self.rediscovery.members, members);
        if self.left || was == 0 || members > 0 {
            return;
        }
        self.rediscovery.wanted = true;
        let at = self.io.now + self.config.rediscovery.alone;
        self.push_discovery(at);
    }

    /// The node left: no requests until it joins again.
    pub(super) fn stop_discovery(&mut self) {
        self.rediscovery.wanted = false;
        self.rediscovery.due = None;
    }

    /// The node joins again after leaving: it wants seeds at once (the
    /// timer queue was cleared; the next input's `begin` schedules anew).
    pub(super) fn restart_discovery(&mut self) {
        self.rediscovery.wanted = true;
        self.rediscovery.due = None;
        self.rediscovery.members = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use crate::core::config::Config;
    use crate::core::identity::{NodeId, Peer};
    use crate::core::node::{Command, Node};
    use crate::core::time::Time;

    fn node(i: u8) -> Node {
        let name = format!("rc{i}@127.0.0.1").parse().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
        Node::new(NodeId::new(name, addr, 1), Config::lan(3), [i; 32]).unwrap()
    }

    fn peer(n: &Node) -> Peer {
        Peer::new(n.identity().name().clone(), n.identity().addr())
    }

    fn at(secs: u64) -> Time {
        Time::ZERO + Duration::from_secs(secs)
    }

    /// Runs `n`'s timers up to `until`, dropping what it sends; the times at
    /// which it wanted seeds.
    fn requests_until(n: &mut Node, until: Time) -> Vec<Time> {
        let mut asked = Vec::new();
        while let Some(t) = n.poll_timeout().filter(|t| *t <= until) {
            n.handle_timeout(t);
            while n.poll_transmit().is_some() {}
            while n.poll_event().is_some() {}
            if n.poll_discover() {
                asked.push(t);
            }
        }
        asked
    }

    /// Two nodes that know each other, at time zero; requests taken.
    fn pair() -> (Node, Node) {
        let (mut a, mut b) = (node(1), node(2));
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        for _ in 0..3 {
            while let Some(t) = a.poll_transmit() {
                b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
            }
            while let Some(t) = b.poll_transmit() {
                a.handle_datagram(Time::ZERO, b.identity().addr(), &t.payload);
            }
        }
        assert_eq!((a.num_members(), b.num_members()), (1, 1));
        a.poll_discover();
        b.poll_discover();
        (a, b)
    }

    #[test]
    fn a_new_node_wants_seeds_at_once_and_every_five_seconds_while_alone() {
        let mut a = node(1);
        assert!(a.poll_discover(), "a new node wants seeds before any input");
        assert!(!a.poll_discover(), "a request is handed out once");
        a.handle_discovered(Time::ZERO, &[]);
        assert_eq!(requests_until(&mut a, at(16)), vec![at(5), at(10), at(15)]);
    }

    /// Runs both nodes' timers up to `until`, delivering what each sends
    /// to the other at once; the times at which `a` wanted seeds.
    fn run_pair(a: &mut Node, b: &mut Node, until: Time) -> Vec<Time> {
        let mut asked = Vec::new();
        loop {
            let next = match (a.poll_timeout(), b.poll_timeout()) {
                (Some(x), Some(y)) => x.min(y),
                (x, y) => x.or(y).expect("both nodes have timers"),
            };
            if next > until {
                return asked;
            }
            a.handle_timeout(next);
            b.handle_timeout(next);
            for _ in 0..3 {
                while let Some(t) = a.poll_transmit() {
                    b.handle_datagram(next, a.identity().addr(), &t.payload);
                }
                while let Some(t) = b.poll_transmit() {
                    a.handle_datagram(next, b.identity().addr(), &t.payload);
                }
            }
            while a.poll_event().is_some() {}
            while b.poll_event().is_some() {}
            if a.poll_discover() {
                asked.push(next);
            }
        }
    }

    #[test]
    fn a_node_with_members_wants_seeds_every_thirty_seconds() {
        let (mut a, mut b) = pair();
        // The request scheduled while `a` was alone (at its join) stands;
        // from there on, one every 30 s.
        assert_eq!(
            run_pair(&mut a, &mut b, at(96)),
            vec![at(5), at(35), at(65), at(95)]
        );
        assert_eq!(a.num_members(), 1, "the pair stayed together");
    }

    #[test]
    fn a_node_whose_last_member_leaves_wants_seeds_at_once() {
        let (mut a, mut b) = pair();
        b.handle_command(at(1), Command::Leave).unwrap();
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(at(1), b.identity().addr(), &t.payload);
        }
        assert_eq!(a.num_members(), 0, "the leave was heard");
        assert!(a.poll_discover(), "alone again: seeds at once");
        // Then the alone interval from there: 1 + 5 s, not 30 s.
        assert_eq!(requests_until(&mut a, at(7))[0], at(6));
    }

    #[test]
    fn a_node_that_left_wants_no_seeds_until_it_joins_again() {
        let (mut a, b) = pair();
        a.handle_command(at(1), Command::Leave).unwrap();
        assert!(!a.poll_discover());
        assert_eq!(requests_until(&mut a, at(120)), Vec::<Time>::new());
        a.handle_command(at(121), Command::Join(vec![peer(&b)]))
            .unwrap();
        assert!(a.poll_discover(), "joined again: seeds at once");
    }
}
