//! Kubernetes API answers into the `k8s` discovery strategy's conversions:
//! JSON as an EndpointSliceList, an EndpointSlice or an Endpoints object
//! ([`slice_addrs`], [`endpoints_addrs`]), then the addresses into peers
//! under each address type ([`endpoint_peers`]). No panics; every peer's
//! name parses back to itself; peers are sorted by name.
//!
//! The first byte chooses the object (mod 3) and the address type (div 3);
//! the rest is the JSON.
#![no_main]

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::List;
use libfuzzer_sys::fuzz_target;
use rollcall::core::NodeName;
use rollcall::runtime::discovery::k8s::{endpoint_peers, endpoints_addrs, slice_addrs};
use rollcall::runtime::discovery::settings::{K8sAddressType, K8sConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, json)) = data.split_first() else {
        return;
    };
    let addrs = match mode % 3 {
        0 => match serde_json::from_slice::<List<EndpointSlice>>(json) {
            Ok(list) => slice_addrs(&list.items),
            Err(_) => return,
        },
        1 => match serde_json::from_slice::<EndpointSlice>(json) {
            Ok(slice) => slice_addrs(std::slice::from_ref(&slice)),
            Err(_) => return,
        },
        _ => match serde_json::from_slice::<Endpoints>(json) {
            Ok(endpoints) => endpoints_addrs(endpoints),
            Err(_) => return,
        },
    };
    let address_type = match (mode / 3) % 3 {
        0 => K8sAddressType::Ip,
        1 => K8sAddressType::Dns,
        _ => K8sAddressType::Hostname,
    };
    let config = K8sConfig {
        apiserver: "https://kubernetes.default.svc:443".to_owned(),
        service_name: "rollcall".to_owned(),
        namespace: "default".to_owned(),
        address_type,
        suffix: "pod.local".to_owned(),
    };
    let me: NodeName = "rollcall@127.0.0.1".parse().unwrap();
    // Up to 28 * 2340 = 65520: the port convention near its end too.
    let base_port = u16::from(mode / 9) * 2340;
    if let Ok(peers) = endpoint_peers(&config, &me, base_port, &addrs) {
        assert!(peers.windows(2).all(|w| w[0].name <= w[1].name), "sorted");
        for peer in &peers {
            assert!(addrs.iter().any(|a| a.ip == peer.addr.ip()));
            let again: NodeName = peer.name.as_str().parse().expect("a peer's name parses");
            assert_eq!(again, peer.name);
        }
    }
});
