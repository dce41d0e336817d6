//! An in-memory network of `Node`s on a virtual clock, for tests and examples.
//!
//! Every datagram is delivered after a fixed latency unless its link is cut;
//! time jumps to the next timer or delivery. The simulator (`rollcall-sim`)
//! is the full-scale version with loss, jitter and faults.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use rollcall::core::{Command, Config, Event, Node, NodeId, Peer, Time};

/// A datagram in flight: (delivery time, sequence, destination index, source, payload).
type InFlight = Reverse<(Time, u64, usize, SocketAddr, Vec<u8>)>;

/// Nodes `rc{i}@127.0.0.1` on ports 4370 + i.
pub struct MemNet {
    pub nodes: Vec<Node>,
    pub down: Vec<bool>,
    /// Links (from, to) that drop everything.
    pub cut: BTreeSet<(usize, usize)>,
    pub now: Time,
    pub latency: Duration,
    pub config: Config,
    pub verbose: bool,
    /// Every event any node reported: (time, node index, event).
    pub events: Vec<(Time, usize, Event)>,
    in_flight: BinaryHeap<InFlight>,
    seq: u64,
}

impl MemNet {
    /// `n` nodes, alone, with `config`.
    pub fn new(n: usize, config: Config) -> Self {
        let nodes = (0..n).map(|i| Self::make(i, 1, &config)).collect();
        Self {
            nodes,
            down: vec![false; n],
            cut: BTreeSet::new(),
            now: Time::ZERO,
            latency: Duration::from_millis(1),
            config,
            verbose: false,
            events: Vec::new(),
            in_flight: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// `n` nodes that all joined node 0 and converged (within 60 virtual s).
    pub fn converged_cluster(n: usize, config: Config) -> Self {
        let mut net = Self::new(n, config);
        for i in 1..n {
            net.join(i, 0);
        }
        assert!(
            net.run_until(Duration::from_secs(60), Self::converged),
            "{n} nodes did not converge within 60 virtual seconds"
        );
        net
    }

    fn make(i: usize, generation: u64, config: &Config) -> Node {
        let name = format!("rc{i}@127.0.0.1").parse().unwrap();
        let addr = Self::addr(i);
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        seed[8..16].copy_from_slice(&generation.to_le_bytes());
        Node::new(NodeId::new(name, addr, generation), config.clone(), seed).unwrap()
    }

    pub fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 4370 + i as u16))
    }

    pub fn peer(&self, i: usize) -> Peer {
        Peer::new(self.nodes[i].identity().name().clone(), Self::addr(i))
    }

    fn index_of(addr: SocketAddr) -> usize {
        usize::from(addr.port() - 4370)
    }

    /// Sends node `i`'s pending datagrams into the network; returns its events.
    pub fn drain(&mut self, i: usize) -> Vec<Event> {
        while let Some(t) = self.nodes[i].poll_transmit() {
            let dst = Self::index_of(t.to);
            if dst < self.nodes.len() && !self.cut.contains(&(i, dst)) {
                self.seq += 1;
                let at = self.now + self.latency;
                self.in_flight
                    .push(Reverse((at, self.seq, dst, Self::addr(i), t.payload)));
            }
        }
        let events: Vec<_> = std::iter::from_fn(|| self.nodes[i].poll_event()).collect();
        for e in &events {
            if self.verbose {
                let t = self.now.as_secs_f64();
                println!("{t:>8.3}s  {}  {e:?}", self.nodes[i].identity());
            }
            self.events.push((self.now, i, e.clone()));
        }
        events
    }

    /// Node `i` joins node `seed`.
    pub fn join(&mut self, i: usize, seed: usize) {
        let p = self.peer(seed);
        self.nodes[i]
            .handle_command(self.now, Command::Join(vec![p]))
            .unwrap();
        self.drain(i);
    }

    /// Stops node `i`: it neither runs timers nor receives.
    pub fn crash(&mut self, i: usize) {
        self.down[i] = true;
    }

    /// Replaces node `i` with a fresh one (empty view, next generation) that
    /// joins `seed`.
    pub fn restart(&mut self, i: usize, seed: usize) {
        let generation = self.nodes[i].identity().generation() + 1;
        self.nodes[i] = Self::make(i, generation, &self.config);
        self.down[i] = false;
        self.join(i, seed);
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
    }

    /// Advances to the next wakeup and handles it.
    pub fn step(&mut self) {
        let next_timer = (0..self.nodes.len())
            .filter(|&i| !self.down[i])
            .filter_map(|i| self.nodes[i].poll_timeout().map(|t| (t, i)))
            .min();
        let next_packet = self.in_flight.peek().map(|Reverse(p)| p.0);
        match (next_timer, next_packet) {
            (Some((t, i)), p) if p.is_none_or(|p| t < p) => {
                self.now = self.now.max(t);
                let now = self.now;
                self.nodes[i].handle_timeout(now);
                self.drain(i);
            }
            (_, Some(_)) => {
                let Reverse((at, _, dst, from, payload)) = self.in_flight.pop().unwrap();
                self.now = self.now.max(at);
                if !self.down[dst] {
                    let now = self.now;
                    self.nodes[dst].handle_datagram(now, from, &payload);
                    self.drain(dst);
                }
            }
            _ => self.now = self.now + Duration::from_millis(100),
        }
    }

    /// Steps until `done` holds (true) or `limit` of virtual time passes (false).
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Every live node (but those in `except`) calls `handle_discovered` with
    /// these seeds, as a discovery strategy would.
    pub fn discover(&mut self, seeds: &[usize], except: &[usize]) {
        let peers: Vec<Peer> = seeds.iter().map(|&s| self.peer(s)).collect();
        for i in 0..self.nodes.len() {
            if !self.down[i] && !except.contains(&i) {
                let now = self.now;
                self.nodes[i].handle_discovered(now, &peers);
                self.drain(i);
            }
        }
    }

    /// Live nodes, by index.
    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| !self.down[i]).collect()
    }

    /// Whether every live node's active members are exactly the other live nodes.
    pub fn converged(&self) -> bool {
        let live: BTreeSet<_> = (0..self.nodes.len()).filter(|&i| !self.down[i]).collect();
        live.iter().all(|&i| {
            let seen: BTreeSet<_> = self.nodes[i]
                .members()
                .map(|m| Self::index_of(m.addr()))
                .collect();
            seen.len() == live.len() - 1 && seen.iter().all(|j| live.contains(j) && *j != i)
        })
    }
}
