//! Arbitrary bytes into the envelope opener and, sealed with the right key,
//! into a node's SWIM and sync decoders. Nothing may panic; a datagram the
//! envelope refuses (bad seal, too short, too large, another cluster) is
//! counted as dropped exactly once; one that opens is counted at most once
//! (the decoders behind the seal decide, and this target cannot tell a
//! valid body from an invalid one without decoding it the same way).
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rollcall::core::wire::{Envelope, Kind};
use rollcall::core::{Config, Node, NodeId, SeedRng, Time};

fn envelope() -> &'static Envelope {
    static E: OnceLock<Envelope> = OnceLock::new();
    E.get_or_init(|| {
        let c = Config::lan(3);
        Envelope::new(c.cookie.as_bytes(), &c.cluster_name)
    })
}

fuzz_target!(|data: &[u8]| {
    let id = NodeId::new(
        "rc@127.0.0.1".parse().unwrap(),
        "127.0.0.1:4370".parse().unwrap(),
        1,
    );
    let mut node = Node::new(id, Config::lan(3), [7; 32]).unwrap();
    let from: SocketAddr = "127.0.0.2:4370".parse().unwrap();
    let mut scratch = Vec::new();
    let _ = envelope().open(data, &mut scratch);

    let (mode, body) = data.split_first().unwrap_or((&0, &[]));
    let datagram = match mode % 3 {
        0 => body.to_vec(),
        1 => envelope().seal(Kind::Gossip, body, &mut SeedRng::seed_from_u64(1)),
        _ => envelope().seal(Kind::Sync, body, &mut SeedRng::seed_from_u64(1)),
    };
    let refused = datagram.len() > Config::lan(3).max_datagram_size
        || envelope().open(&datagram, &mut scratch).is_err();
    let dropped = node.stats().dropped.total();
    node.handle_datagram(Time::ZERO, from, &datagram);
    node.handle_timeout(Time::from_secs_f64(1.0));
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    let counted = node.stats().dropped.total() - dropped;
    if refused {
        assert_eq!(counted, 1, "a refused datagram is counted once");
    } else {
        assert!(counted <= 1, "a datagram is counted at most once");
    }
});
