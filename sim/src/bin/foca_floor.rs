//! The bare-foca floor: plain foca, driven the way `rollcall-sim` drives
//! rollcall's `Node`, with nothing else. It is the lower bound the
//! simulator's speed and memory are compared with in BENCHMARKS.md.
//!
//! Identity: a `SocketAddrV4` (no name, no generation); no seal, no
//! measurement; one event queue holding every timer and every datagram;
//! the same network model (per-link latency and jitter of the LAN profile)
//! and foca's own LAN config (`Config::new_lan(N)`, as rollcall's LAN
//! profile). `--nodes` nodes join node 0, staggered over `--window`
//! seconds, and the run goes on to `--until` virtual seconds. It prints one
//! JSON object: wall time, peak RSS, and how complete the views are.
//!
//! `cargo run --release -p rollcall-sim --bin foca_floor -- --nodes 1000 --window 10 --until 300`

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use clap::Parser;
use foca::{Foca, NoCustomBroadcast, Notification, PostcardCodec, Runtime, Timer};
use rand::SeedableRng;
use rollcall::core::{SeedRng, Time};
use rollcall_sim::network::{Fate, NetProfile, Network};
use rollcall_sim::report::peak_rss_mib;
use rollcall_sim::rng::node_seed;

type Id = SocketAddrV4;
type Swim = Foca<Id, PostcardCodec, SeedRng, NoCustomBroadcast>;

#[derive(Parser)]
#[command(
    about = "Plain foca on the simulator's event loop: the floor rollcall-sim is measured against"
)]
struct Args {
    /// Nodes; node 0 is the seed every other node joins.
    #[arg(long, default_value_t = 1000)]
    nodes: u32,
    /// Nodes start staggered over this many virtual seconds.
    #[arg(long, default_value_t = 10.0)]
    window: f64,
    /// Run until this virtual second.
    #[arg(long, default_value_t = 300.0)]
    until: f64,
    /// The seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn addr(i: u32) -> Id {
    SocketAddrV4::new(Ipv4Addr::from(u32::from_be_bytes([10, 0, 0, 1]) + i), 4370)
}

fn index(a: &Id) -> u32 {
    u32::from(*a.ip()) - u32::from_be_bytes([10, 0, 0, 1])
}

enum Work {
    Start(u32),
    Timer(u32, Timer<Id>),
    Deliver(u32, u32, Vec<u8>),
}

struct Item(Time, u64, Work);
impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

/// What foca asked for during one input.
#[derive(Default)]
struct Io {
    sends: Vec<(Id, Vec<u8>)>,
    timers: Vec<(Timer<Id>, Duration)>,
}

impl Runtime<Id> for Io {
    fn notify(&mut self, _: Notification<'_, Id>) {}
    fn send_to(&mut self, to: Id, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }
    fn submit_after(&mut self, event: Timer<Id>, after: Duration) {
        self.timers.push((event, after));
    }
}

fn main() {
    let args = Args::parse();
    let n = args.nodes.max(1);
    let wall = Instant::now();
    let config = foca::Config::new_lan(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
    let mut nodes: Vec<Option<Swim>> = (0..n).map(|_| None).collect();
    let mut net = Network::new(args.seed, n as usize, NetProfile::Lan.links());
    let mut queue: BinaryHeap<Reverse<Item>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |q: &mut BinaryHeap<Reverse<Item>>, at: Time, w: Work| {
        seq += 1;
        q.push(Reverse(Item(at, seq, w)));
    };
    for i in 0..n {
        let at = if n > 1 {
            args.window * f64::from(i) / f64::from(n - 1)
        } else {
            0.0
        };
        push(&mut queue, Time::from_secs_f64(at), Work::Start(i));
    }
    let end = Time::from_secs_f64(args.until);
    let mut io = Io::default();
    let mut steps = 0u64;
    while let Some(Reverse(Item(now, _, work))) = queue.pop() {
        if now > end {
            break;
        }
        steps += 1;
        let who = match work {
            Work::Start(i) => {
                let rng = SeedRng::from_seed(node_seed(args.seed, i, 0));
                let mut swim = Foca::new(addr(i), config.clone(), rng, PostcardCodec);
                if i != 0 {
                    let _ = swim.announce(addr(0), &mut io);
                }
                nodes[i as usize] = Some(swim);
                i
            }
            Work::Timer(i, t) => {
                if let Some(swim) = nodes[i as usize].as_mut() {
                    let _ = swim.handle_timer(t, &mut io);
                }
                i
            }
            Work::Deliver(to, _from, data) => {
                if let Some(swim) = nodes[to as usize].as_mut() {
                    let _ = swim.handle_data(&data, &mut io);
                }
                to
            }
        };
        for (to, data) in io.sends.drain(..) {
            let dst = index(&to);
            if dst >= n {
                continue;
            }
            match net.route(now, who, dst) {
                Fate::Once(at) => push(&mut queue, at, Work::Deliver(dst, who, data)),
                Fate::Twice(a, b) => {
                    push(&mut queue, a, Work::Deliver(dst, who, data.clone()));
                    push(&mut queue, b, Work::Deliver(dst, who, data));
                }
                Fate::Partitioned | Fate::Lost => {}
            }
        }
        for (t, after) in io.timers.drain(..) {
            push(&mut queue, now + after, Work::Timer(who, t));
        }
    }
    let members: Vec<usize> = nodes.iter().flatten().map(|s| s.num_members()).collect();
    let complete = members.iter().filter(|&&m| m + 1 == n as usize).count();
    println!(
        "{{\"program\":\"foca_floor\",\"nodes\":{n},\"window_s\":{},\"virtual_s\":{},\"seed\":{},\"steps\":{steps},\"wall_s\":{:.3},\"peak_rss_mib\":{:.1},\"converged_fraction\":{:.4},\"slowest_node_members\":{}}}",
        args.window,
        args.until,
        args.seed,
        wall.elapsed().as_secs_f64(),
        peak_rss_mib().unwrap_or(0.0),
        complete as f64 / f64::from(n),
        members.iter().min().copied().unwrap_or(0),
    );
}
