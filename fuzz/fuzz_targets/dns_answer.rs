//! DNS answers into the conversions the `dns` discovery strategy applies:
//! A and AAAA records into peers ([`address_peers`]), SRV records into
//! targets ([`srv_targets`]) and each target into a node name. No panics;
//! every peer is at an address of the answer; every target is lower case,
//! without its trailing dot, listed once.
//!
//! The first byte chooses how the rest becomes records: even, as a whole
//! DNS message in wire format (hickory's parser, as the resolver reads
//! one); odd, as a list of records built from the bytes with `arbitrary`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};
use libfuzzer_sys::fuzz_target;
use rollcall::core::NodeName;
use rollcall::runtime::discovery::dns::{address_peers, srv_targets};

/// One record, as the fuzzer describes it.
#[derive(Arbitrary, Debug)]
enum Described {
    A([u8; 4]),
    Aaaa([u8; 16]),
    Srv { port: u16, target: String },
    SrvLabels { port: u16, labels: Vec<Vec<u8>> },
}

fn record(d: Described) -> Option<Record> {
    let owner = Name::from_ascii("rollcall.example.com.").ok()?;
    let data = match d {
        Described::A(ip) => RData::A(A(Ipv4Addr::from(ip))),
        Described::Aaaa(ip) => RData::AAAA(AAAA(Ipv6Addr::from(ip))),
        Described::Srv { port, target } => {
            RData::SRV(SRV::new(0, 0, port, Name::from_utf8(&target).ok()?))
        }
        Described::SrvLabels { port, labels } => {
            let target = Name::from_labels(labels.iter().map(|l| l.as_slice())).ok()?;
            RData::SRV(SRV::new(0, 0, port, target))
        }
    };
    Some(Record::from_rdata(owner, 60, data))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let answers: Vec<Record> = if mode % 2 == 0 {
        match Message::from_vec(rest) {
            Ok(message) => message.answers,
            Err(_) => return,
        }
    } else {
        let Ok(described) = Vec::<Described>::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        described.into_iter().filter_map(record).collect()
    };
    let me: NodeName = "rollcall@127.0.0.1".parse().unwrap();
    let base_port = u16::from(mode >> 1) * 257;

    for v6 in [false, true] {
        if let Ok(peers) = address_peers(&me, &answers, v6, base_port) {
            for peer in peers {
                let ip = peer.addr.ip();
                assert_eq!(ip.is_ipv6(), v6);
                assert!(answers.iter().any(|r| match &r.data {
                    RData::A(a) => IpAddr::V4(a.0) == ip,
                    RData::AAAA(a) => IpAddr::V6(a.0) == ip,
                    _ => false,
                }));
                let again: NodeName = peer.name.as_str().parse().expect("a peer's name parses");
                assert_eq!(again, peer.name);
            }
        }
    }

    let targets = srv_targets(&answers);
    assert!(targets.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
    for (host, _port) in &targets {
        assert!(!host.is_empty() && !host.ends_with('.'));
        assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
        if let Ok(name) = me.with_host(host) {
            let again: NodeName = name.as_str().parse().expect("a target's name parses");
            assert_eq!(again, name);
        }
    }
});
