//! Arbitrary bodies, sealed with the cluster's cookie, into a node: the
//! fuzzer's bytes reach the decoders behind the seal (foca's gossip codec
//! and the sync decoder, `rollcall::core::sync::decode`) and everything
//! that acts on what they decode.
//!
//! The first byte chooses the kind (bit 0: gossip or sync) and the node's
//! state before the datagram (bit 1: it holds two members; bit 2: it has
//! force-left a third, so a tombstone screens what arrives); the rest is
//! the body. Nothing may panic, and the datagram is accounted for: it is
//! counted as received once and dropped at most once, and dropped (as
//! malformed, or a rejected sync message) whenever the body does not
//! decode. The timeout that follows drops no datagram.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use foca::{Codec, PostcardCodec};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rollcall::core::wire::{DropCounts, Envelope, Kind};
use rollcall::core::{Command, Config, Node, NodeId, SeedRng, Time};

fn config() -> Config {
    Config::lan(4)
}

fn envelope() -> &'static Envelope {
    static E: OnceLock<Envelope> = OnceLock::new();
    E.get_or_init(|| {
        let c = config();
        Envelope::new(c.cookie.as_bytes(), &c.cluster_name)
    })
}

/// `rc<i>@127.0.0.1` at generation 1, gossiping on port 4370 + i (the
/// node under test is `rc@127.0.0.1`, i = 0).
fn id(i: u16) -> NodeId {
    let name = if i == 0 {
        "rc@127.0.0.1".to_owned()
    } else {
        format!("rc{i}@127.0.0.1")
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + i));
    NodeId::new(name.parse().unwrap(), addr, 1)
}

fuzz_target!(|data: &[u8]| {
    let (&mode, body) = data.split_first().unwrap_or((&0, &[]));
    let kind = if mode & 1 == 0 {
        Kind::Gossip
    } else {
        Kind::Sync
    };
    let mut node = Node::new(id(0), config(), [7; 32]).unwrap();
    let mut now = Time::ZERO;
    if mode & 2 != 0 {
        node.restore_members(now, [id(1), id(2)]);
    }
    if mode & 4 != 0 {
        node.restore_members(now, [id(3)]);
        node.handle_command(now, Command::ForceLeave(id(3).name().clone()))
            .expect("a member can be force-left");
    }
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}

    let datagram = envelope().seal(kind, body, &mut SeedRng::seed_from_u64(1));
    let fits = datagram.len() <= config().max_datagram_size;
    let decodes = match kind {
        Kind::Gossip => Codec::<NodeId>::decode_header(&mut PostcardCodec, body).is_ok(),
        _ => rollcall::core::sync::decode(body).is_ok(),
    };

    let before = *node.stats();
    now = Time::from_secs_f64(0.5);
    node.handle_datagram(now, SocketAddr::from(([127, 0, 0, 2], 4370)), &datagram);
    let after = *node.stats();
    assert_eq!(after.datagrams_received, before.datagrams_received + 1);
    let dropped = after.dropped.total() - before.dropped.total();
    assert!(dropped <= 1, "a datagram is dropped at most once");
    let grew = |f: fn(&DropCounts) -> u64| f(&after.dropped) > f(&before.dropped);
    if !fits {
        assert!(
            grew(|d| d.too_large),
            "an oversized datagram is dropped as too large"
        );
    } else if !decodes {
        assert_eq!(dropped, 1, "a body that does not decode is dropped");
        let reason = match kind {
            Kind::Gossip => grew(|d| d.malformed),
            _ => grew(|d| d.malformed) || grew(|d| d.sync_rejected),
        };
        assert!(
            reason,
            "dropped as malformed or rejected: {:?}",
            after.dropped
        );
    }

    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    node.handle_timeout(Time::from_secs_f64(2.0));
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    assert_eq!(
        node.stats().dropped.total(),
        after.dropped.total(),
        "a timeout drops no datagram"
    );
    let status = node.status();
    assert!(!status.stopped_nodes.contains(node.identity().name()));
});
