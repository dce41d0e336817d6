//! Five nodes in one process, on a virtual clock: they form a cluster through
//! one seed, then one stops and the others report it down.
//!
//! Run it with `cargo run --example five_nodes`. It is also a test
//! (`cargo test --example five_nodes`). The simulator (`rollcall-sim`) is the
//! full-scale version of this loop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;

use rollcall::core::{Command, Config, Event, Node, NodeId, Peer, Time};

/// A datagram in flight: (delivery time, sequence, destination index, source, payload).
type InFlight = Reverse<(Time, u64, usize, SocketAddr, Vec<u8>)>;

/// Five nodes and a network that delivers every datagram after 1 ms.
struct Cluster {
    nodes: Vec<Node>,
    stopped: Vec<bool>,
    now: Time,
    in_flight: BinaryHeap<InFlight>,
    seq: u64,
}

impl Cluster {
    fn new(n: u8) -> Self {
        let nodes = (0..n)
            .map(|i| {
                let name = format!("rc{i}@127.0.0.1").parse().unwrap();
                let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
                Node::new(
                    NodeId::new(name, addr, 1),
                    Config::lan(u32::from(n)),
                    [i; 32],
                )
                .unwrap()
            })
            .collect();
        Self {
            nodes,
            stopped: vec![false; usize::from(n)],
            now: Time::ZERO,
            in_flight: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.identity().addr() == addr)
    }

    /// Drains a node's outputs into the network; returns its events.
    fn drain(&mut self, i: usize) -> Vec<Event> {
        let from = self.nodes[i].identity().addr();
        while let Some(t) = self.nodes[i].poll_transmit() {
            if let Some(dst) = self.index_of(t.to) {
                self.seq += 1;
                let at = self.now + Duration::from_millis(1);
                self.in_flight
                    .push(Reverse((at, self.seq, dst, from, t.payload)));
            }
        }
        std::iter::from_fn(|| self.nodes[i].poll_event()).collect()
    }

    /// Advances virtual time to the next wakeup and handles it.
    fn step(&mut self) -> Vec<(usize, Event)> {
        let next_timer = (0..self.nodes.len())
            .filter(|&i| !self.stopped[i])
            .filter_map(|i| self.nodes[i].poll_timeout().map(|t| (t, i)))
            .min();
        let next_packet = self.in_flight.peek().map(|Reverse(p)| p.0);
        let mut events = vec![];
        match (next_timer, next_packet) {
            (Some((t, i)), p) if p.is_none_or(|p| t < p) => {
                self.now = t;
                self.nodes[i].handle_timeout(t);
                events.extend(self.drain(i).into_iter().map(|e| (i, e)));
            }
            (_, Some(_)) => {
                let Reverse((at, _, dst, from, payload)) = self.in_flight.pop().unwrap();
                self.now = at;
                if !self.stopped[dst] {
                    self.nodes[dst].handle_datagram(at, from, &payload);
                    events.extend(self.drain(dst).into_iter().map(|e| (dst, e)));
                }
            }
            _ => {}
        }
        events
    }

    /// Steps until `done` holds or `limit` of virtual time has passed.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            for (i, e) in self.step() {
                println!(
                    "{:>8.3}s  {}  {:?}",
                    self.now.as_secs_f64(),
                    self.nodes[i].identity(),
                    e
                );
            }
        }
        done(self)
    }
}

fn run() -> (Cluster, bool, bool) {
    let mut c = Cluster::new(5);
    let seed = Peer::new(
        c.nodes[0].identity().name().clone(),
        c.nodes[0].identity().addr(),
    );
    for i in 1..c.nodes.len() {
        c.nodes[i]
            .handle_command(Time::ZERO, Command::Join(vec![seed.clone()]))
            .unwrap();
        c.drain(i);
    }
    let formed = c.run_until(Duration::from_secs(30), |c| {
        c.nodes.iter().all(|n| n.num_members() == 4)
    });
    println!("cluster formed: {formed} at {:.3}s", c.now.as_secs_f64());

    c.stopped[4] = true;
    let gone = c.nodes[4].identity().name().clone();
    let detected = c.run_until(Duration::from_secs(60), |c| {
        c.nodes[..4]
            .iter()
            .all(|n| n.num_members() == 3 && n.members().all(|m| m.name() != &gone))
    });
    println!(
        "{gone} reported down by all others: {detected} at {:.3}s",
        c.now.as_secs_f64()
    );
    (c, formed, detected)
}

fn main() {
    let (_, formed, detected) = run();
    if !(formed && detected) {
        std::process::exit(1);
    }
}

#[test]
fn five_nodes_form_a_cluster_and_report_a_stopped_one_down() {
    let (c, formed, detected) = run();
    assert!(
        formed,
        "the five nodes did not all see four members within 30 virtual seconds"
    );
    assert!(
        detected,
        "the stopped node was not reported down by all four others within 60 s"
    );
    let down = c.nodes[0]
        .membership()
        .filter(|m| m.state() == rollcall::core::State::Down)
        .count();
    assert_eq!(down, 1);
}
