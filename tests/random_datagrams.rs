//! A node fed a million hostile datagrams changes no membership and never panics.

use std::net::SocketAddr;

use rand::{Rng, RngExt, SeedableRng};
use rollcall::core::wire::{Envelope, Kind, TAG_LEN, WIRE_VERSION};
use rollcall::core::{Command, Config, Node, NodeId, Peer, SeedRng, Time};

fn node(i: u8) -> Node {
    let name = format!("rc{i}@127.0.0.1").parse().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
    Node::new(NodeId::new(name, addr, 1), Config::lan(2), [i; 32]).unwrap()
}

#[test]
fn a_million_random_datagrams_change_no_membership_and_are_all_counted() {
    // Two nodes that know each other.
    let (mut a, mut b) = (node(1), node(2));
    let pb = Peer::new(b.identity().name().clone(), b.identity().addr());
    a.handle_command(Time::ZERO, Command::Join(vec![pb]))
        .unwrap();
    let t = a.poll_transmit().unwrap();
    b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
    while b.poll_event().is_some() {}
    while b.poll_transmit().is_some() {}
    let before: Vec<_> = b.membership().cloned().collect();
    assert_eq!(before.len(), 1);
    let received_before = b.stats().datagrams_received;
    let dropped_before = b.stats().dropped.total();

    let mut rng = SeedRng::seed_from_u64(0x5eed);
    let config = Config::lan(2);
    let envelope = Envelope::new(config.cookie.as_bytes(), &config.cluster_name);
    let tag = rollcall::core::wire::cluster_tag(&config.cluster_name);
    let from: SocketAddr = "127.0.0.66:9999".parse().unwrap();
    const N: u64 = 1_000_000;
    let mut buf = Vec::with_capacity(1500);
    for i in 0..N {
        let len = rng.random_range(0..1500usize);
        buf.resize(len, 0);
        rng.fill_bytes(&mut buf);
        let datagram = match i % 4 {
            // Pure noise.
            0 => buf.clone(),
            // The right version and cluster tag, garbage after: reaches the AEAD.
            1 => {
                if buf.len() > TAG_LEN {
                    buf[0] = WIRE_VERSION;
                    buf[1..1 + TAG_LEN].copy_from_slice(&tag);
                }
                buf.clone()
            }
            // Correctly sealed with the cluster's cookie, garbage inside:
            // reaches the SWIM decoder.
            2 => envelope.seal(Kind::Gossip, &buf[..len.min(1300)], &mut rng),
            // Correctly sealed sync kind with garbage inside.
            _ => envelope.seal(Kind::Sync, &buf[..len.min(1300)], &mut rng),
        };
        b.handle_datagram(Time::ZERO, from, &datagram);
    }

    let after: Vec<_> = b.membership().cloned().collect();
    assert_eq!(before, after, "membership changed");
    assert_eq!(b.poll_event(), None, "an event was emitted");
    assert_eq!(b.stats().datagrams_received - received_before, N);
    assert_eq!(
        b.stats().dropped.total() - dropped_before,
        N,
        "a datagram went uncounted"
    );
    let d = b.stats().dropped;
    assert!(
        d.bad_seal > 0 && d.malformed > 0 && d.too_short > 0,
        "{d:?}"
    );
}
