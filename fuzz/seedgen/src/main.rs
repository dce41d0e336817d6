//! Writes `fuzz/seeds/sealed_messages/`: the opened bodies of what real
//! nodes send each other (announces, feeds, pings, acks, gossip, sync
//! summaries, digests, records, notices), each behind the target's mode
//! byte. Run from `fuzz/`: `cargo run --manifest-path seedgen/Cargo.toml`.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use rollcall::core::wire::{Envelope, Kind};
use rollcall::core::{Command, Config, Node, NodeId, Peer, Time};

/// `rc<i>@127.0.0.1` at generation 1 on port 4370 + i, as the target names
/// them (the node under test is `rc@127.0.0.1`, i = 0).
fn id(i: u16) -> NodeId {
    let name = if i == 0 {
        "rc".to_owned()
    } else {
        format!("rc{i}")
    };
    NodeId::new(
        format!("{name}@127.0.0.1").parse().unwrap(),
        SocketAddr::from(([127, 0, 0, 1], 4370 + i)),
        1,
    )
}

fn main() {
    let config = Config::lan(4);
    let envelope = Envelope::new(config.cookie.as_bytes(), &config.cluster_name);
    let dir = Path::new("seeds/sealed_messages");
    fs::create_dir_all(dir).unwrap();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| Node::new(id(i), config.clone(), [i as u8; 32]).unwrap())
        .collect();
    let mut now = Time::ZERO;
    let peer = |i: u16| Peer::new(id(i).name().clone(), id(i).addr());
    nodes[1]
        .handle_command(now, Command::Join(vec![peer(0)]))
        .unwrap();
    nodes[2]
        .handle_command(now, Command::Join(vec![peer(1)]))
        .unwrap();
    let mut scratch = Vec::new();
    let mut written = 0;
    for round in 0..60 {
        now = Time::from_secs_f64(f64::from(round) * 0.4);
        if round == 40 {
            let _ = nodes[1].handle_command(now, Command::ForceLeave(id(2).name().clone()));
        }
        for i in 0..nodes.len() {
            nodes[i].handle_timeout(now);
            while let Some(t) = nodes[i].poll_transmit() {
                let Some(to) = (0..3).find(|&j| id(j).addr() == t.to) else {
                    continue;
                };
                // What reaches the node under test, as the target's input.
                if to == 0 && written < 48 {
                    if let Ok((kind, body)) = envelope.open(&t.payload, &mut scratch) {
                        let mode = match kind {
                            Kind::Gossip => 0u8,
                            Kind::Sync => 1,
                        };
                        let mut bytes = vec![mode];
                        bytes.extend_from_slice(body);
                        fs::write(dir.join(format!("{written:02}")), bytes).unwrap();
                        written += 1;
                    }
                }
                nodes[usize::from(to)].handle_datagram(now, id(i as u16).addr(), &t.payload);
            }
            while nodes[i].poll_event().is_some() {}
        }
    }
    println!("{written} seeds in {}", dir.display());
}
