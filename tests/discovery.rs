//! The DNS, etcd and Kubernetes strategies on their own, against real
//! servers: dnsmasq, etcd, and an HTTP server answering in Kubernetes JSON.
//! (tests/agent_dns.rs, agent_etcd.rs and agent_k8s.rs run whole clusters.)
#![cfg(all(feature = "dns", feature = "etcd", feature = "k8s"))]

mod discovery_support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use discovery_support::dnsmasq::{Dnsmasq, Srv};
use discovery_support::etcd::Etcd as EtcdServer;
use discovery_support::kube_api::{pod, KubeApi, Mode};
use discovery_support::tls::TlsFiles;
use rollcall::core::{NodeName, Peer};
use rollcall::runtime::discovery::dns::Dns;
use rollcall::runtime::discovery::etcd::Etcd;
use rollcall::runtime::discovery::k8s::K8s;
use rollcall::runtime::discovery::settings::{
    DnsConfig, DnsRecordType, EtcdConfig, EtcdTls, K8sAddressType, K8sConfig,
};
use rollcall::runtime::discovery::{AddrFamily, Discovery};

const ZONE: &str = "rollcall.test";

fn name(s: &str) -> NodeName {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn shown(peers: &[Peer]) -> Vec<String> {
    let mut v: Vec<String> = peers
        .iter()
        .map(|p| format!("{} {}", p.name, p.addr))
        .collect();
    v.sort();
    v
}

fn dns(server: SocketAddr, record_type: DnsRecordType, lookup: &str) -> Dns {
    let config = DnsConfig {
        name: lookup.to_owned(),
        record_type,
        server: Some(server),
    };
    Dns::new(config, name("rc@127.0.0.1"), 24370, AddrFamily::V4).unwrap()
}

#[test]
fn a_records_become_the_name_part_at_each_ip_on_the_port_convention() {
    let server = Dnsmasq::start(
        ZONE,
        &[
            ("nodes.rollcall.test", ip("127.0.10.2")),
            ("nodes.rollcall.test", ip("127.0.10.3")),
        ],
        &[],
    );
    let mut d = dns(server.addr(), DnsRecordType::A, "nodes.rollcall.test");
    let peers = runtime().block_on(d.discover()).unwrap();
    assert_eq!(
        shown(&peers),
        [
            "rc@127.0.10.2 127.0.10.2:24370",
            "rc@127.0.10.3 127.0.10.3:24370"
        ]
    );
}

#[test]
fn aaaa_records_become_ipv6_nodes() {
    let server = Dnsmasq::start(
        ZONE,
        &[
            ("nodes6.rollcall.test", ip("fd00::2")),
            ("nodes6.rollcall.test", ip("fd00::3")),
        ],
        &[],
    );
    let config = DnsConfig {
        name: "nodes6.rollcall.test".into(),
        record_type: DnsRecordType::Aaaa,
        server: Some(server.addr()),
    };
    let mut d = Dns::new(config, name("rc1@::1"), 24370, AddrFamily::V6).unwrap();
    let peers = runtime().block_on(d.discover()).unwrap();
    assert_eq!(
        shown(&peers),
        ["rc1@fd00::2 [fd00::2]:24371", "rc1@fd00::3 [fd00::3]:24371"]
    );
}

#[test]
fn srv_targets_become_nodes_at_the_records_ports_with_their_own_addresses() {
    let server = Dnsmasq::start(
        ZONE,
        &[
            ("n1.rollcall.test", ip("127.0.10.2")),
            ("n2.rollcall.test", ip("127.0.10.3")),
        ],
        &[
            Srv {
                name: "_rollcall._udp.rollcall.test".into(),
                target: "n1.rollcall.test".into(),
                port: 5001,
            },
            Srv {
                name: "_rollcall._udp.rollcall.test".into(),
                target: "n2.rollcall.test".into(),
                port: 5002,
            },
        ],
    );
    let mut d = dns(
        server.addr(),
        DnsRecordType::Srv,
        "_rollcall._udp.rollcall.test",
    );
    let peers = runtime().block_on(d.discover()).unwrap();
    assert_eq!(
        shown(&peers),
        [
            "rc@n1.rollcall.test 127.0.10.2:5001",
            "rc@n2.rollcall.test 127.0.10.3:5002"
        ]
    );
}

#[test]
fn a_record_added_while_running_is_seen_on_the_next_round() {
    let mut server = Dnsmasq::start(ZONE, &[("nodes.rollcall.test", ip("127.0.10.2"))], &[]);
    let mut d = dns(server.addr(), DnsRecordType::A, "nodes.rollcall.test");
    let rt = runtime();
    assert_eq!(rt.block_on(d.discover()).unwrap().len(), 1);
    server.add_host("nodes.rollcall.test", ip("127.0.10.9"));
    let end = Instant::now() + Duration::from_secs(10);
    let mut peers = Vec::new();
    while Instant::now() < end {
        peers = rt.block_on(d.discover()).unwrap();
        if peers.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        shown(&peers),
        [
            "rc@127.0.10.2 127.0.10.2:24370",
            "rc@127.0.10.9 127.0.10.9:24370"
        ],
        "dnsmasq log:\n{}",
        server.log()
    );
}

#[test]
fn an_unknown_name_is_a_discovery_error_naming_it() {
    let server = Dnsmasq::start(ZONE, &[("nodes.rollcall.test", ip("127.0.10.2"))], &[]);
    let mut d = dns(server.addr(), DnsRecordType::A, "nobody.rollcall.test");
    let e = runtime().block_on(d.discover()).unwrap_err().to_string();
    assert!(e.contains("nobody.rollcall.test"), "{e}");
}

#[test]
fn a_dns_server_that_never_answers_is_a_discovery_error_within_seconds() {
    // A socket nobody reads: queries vanish.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut d = dns(
        silent.local_addr().unwrap(),
        DnsRecordType::A,
        "nodes.rollcall.test",
    );
    let started = Instant::now();
    let e = runtime().block_on(d.discover()).unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(15), "{e}");
    assert!(e.contains("nodes.rollcall.test"), "{e}");
}

fn etcd(server: &str, me: &str, ttl: Duration) -> Etcd {
    let config = EtcdConfig {
        servers: vec![server.to_owned()],
        prefix: "rctest".into(),
        node_ttl: ttl,
        ssl: None,
    };
    let me = name(me);
    let addr = SocketAddr::new(ip(me.host_str()), 24370);
    Etcd::new(config, "c1", me, addr, 24370, AddrFamily::V4).unwrap()
}

/// Polls `done` every 100 ms for at most `within`.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn etcd_registrations_are_keys_under_the_cluster_prefix_and_discovery_lists_them() {
    let server = EtcdServer::start();
    let rt = runtime();
    let mut a = etcd(&server.url(), "rc@127.0.11.2", Duration::from_secs(30));
    let mut b = etcd(&server.url(), "rc@127.0.11.3", Duration::from_secs(30));
    rt.block_on(a.register()).unwrap();
    rt.block_on(b.register()).unwrap();
    assert_eq!(
        server.keys("/rctest/"),
        [
            "/rctest/c1/nodes/rc@127.0.11.2",
            "/rctest/c1/nodes/rc@127.0.11.3"
        ]
    );
    // A key written by hand with a bare value resolves by the port convention.
    server.put("/rctest/c1/nodes/rc4@127.0.11.4", "rc4@127.0.11.4");
    let peers = rt.block_on(a.discover()).unwrap();
    assert_eq!(
        shown(&peers),
        [
            "rc4@127.0.11.4 127.0.11.4:24374",
            "rc@127.0.11.2 127.0.11.2:24370",
            "rc@127.0.11.3 127.0.11.3:24370"
        ]
    );
    rt.block_on(b.unregister()).unwrap();
    assert_eq!(
        server.keys("/rctest/c1/nodes/rc@"),
        ["/rctest/c1/nodes/rc@127.0.11.2"]
    );
}

#[test]
fn an_etcd_key_expires_when_its_node_stops_renewing_the_lease() {
    let server = EtcdServer::start();
    let rt = runtime();
    let mut a = etcd(&server.url(), "rc@127.0.11.2", Duration::from_secs(2));
    rt.block_on(a.register()).unwrap();
    // Renewed (the keeper runs while the runtime does): still there after
    // twice the TTL.
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(4)).await });
    assert_eq!(server.keys("/rctest/").len(), 1, "{}", server.log());
    // Dropped without unregistering, as a crash: the lease runs out.
    drop(a);
    let gone = eventually(Duration::from_secs(10), || {
        server.keys("/rctest/").is_empty()
    });
    assert!(
        gone,
        "the key outlived its lease: {:?}",
        server.keys("/rctest/")
    );
}

#[test]
fn a_node_registers_again_when_etcd_loses_its_lease() {
    let mut server = EtcdServer::start();
    let rt = runtime();
    let mut a = etcd(&server.url(), "rc@127.0.11.2", Duration::from_secs(2));
    rt.block_on(a.register()).unwrap();
    server.restart_empty();
    assert!(server.keys("/rctest/").is_empty());
    // The keeper runs on the runtime: drive it while waiting.
    let back = eventually(Duration::from_secs(20), || {
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
        !server.keys("/rctest/").is_empty()
    });
    assert!(back, "the key was not put again\n{}", server.log());
}

#[test]
fn an_unreachable_etcd_is_a_discovery_error_within_seconds() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let rt = runtime();
    let mut a = etcd(&url, "rc@127.0.11.2", Duration::from_secs(5));
    let started = Instant::now();
    let e = rt.block_on(a.discover()).unwrap_err().to_string();
    assert!(e.contains("etcd"), "{e}");
    let e = rt.block_on(a.register()).unwrap_err().to_string();
    assert!(e.contains("etcd"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

fn k8s(api: &KubeApi, address_type: K8sAddressType) -> K8s {
    let config = K8sConfig {
        apiserver: api.url(),
        service_name: "rollcall".into(),
        namespace: "prod".into(),
        address_type,
        suffix: "pod.local".into(),
    };
    let none = std::env::temp_dir().join("rollcall-no-service-account");
    K8s::with_credentials(config, name("rc@127.0.0.1"), 24370, &none).unwrap()
}

#[test]
fn endpoint_slices_become_nodes_by_each_address_type() {
    let rt = runtime();
    let api = KubeApi::start(
        "prod",
        "rollcall",
        Mode::Slices,
        vec![pod("10.1.0.2", 0), pod("10.1.0.3", 1)],
    );
    let mut ip = rt.block_on(async { k8s(&api, K8sAddressType::Ip) });
    assert_eq!(
        shown(&rt.block_on(ip.discover()).unwrap()),
        ["rc@10.1.0.2 10.1.0.2:24370", "rc@10.1.0.3 10.1.0.3:24370"]
    );
    let mut dns = rt.block_on(async { k8s(&api, K8sAddressType::Dns) });
    assert_eq!(
        shown(&rt.block_on(dns.discover()).unwrap()),
        [
            "rc@10-1-0-2.prod.pod.local 10.1.0.2:24370",
            "rc@10-1-0-3.prod.pod.local 10.1.0.3:24370"
        ]
    );
    let mut host = rt.block_on(async { k8s(&api, K8sAddressType::Hostname) });
    assert_eq!(
        shown(&rt.block_on(host.discover()).unwrap()),
        [
            "rc@rollcall-0.rollcall.prod.pod.local 10.1.0.2:24370",
            "rc@rollcall-1.rollcall.prod.pod.local 10.1.0.3:24370"
        ]
    );
    let asked = api.requests();
    assert!(
        asked.iter().all(|r| r.contains(
            "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?&labelSelector=kubernetes.io%2Fservice-name%3Drollcall"
        )),
        "{asked:?}"
    );
}

#[test]
fn not_ready_endpoints_are_left_out() {
    let rt = runtime();
    let mut unready = pod("10.1.0.3", 1);
    unready.ready = false;
    let api = KubeApi::start(
        "prod",
        "rollcall",
        Mode::Slices,
        vec![pod("10.1.0.2", 0), unready],
    );
    let mut d = rt.block_on(async { k8s(&api, K8sAddressType::Ip) });
    assert_eq!(
        shown(&rt.block_on(d.discover()).unwrap()),
        ["rc@10.1.0.2 10.1.0.2:24370"]
    );
}

#[test]
fn a_server_without_endpoint_slices_falls_back_to_endpoints() {
    let rt = runtime();
    let api = KubeApi::start(
        "prod",
        "rollcall",
        Mode::EndpointsOnly,
        vec![pod("10.1.0.2", 0), pod("10.1.0.3", 1)],
    );
    let mut d = rt.block_on(async { k8s(&api, K8sAddressType::Hostname) });
    for _ in 0..2 {
        assert_eq!(
            shown(&rt.block_on(d.discover()).unwrap()),
            [
                "rc@rollcall-0.rollcall.prod.pod.local 10.1.0.2:24370",
                "rc@rollcall-1.rollcall.prod.pod.local 10.1.0.3:24370"
            ]
        );
    }
    let asked = api.requests();
    // Slices once; Endpoints from then on.
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(asked[1].contains("/api/v1/namespaces/prod/endpoints/rollcall"));
    assert!(asked[2].contains("/api/v1/namespaces/prod/endpoints/rollcall"));
}

#[test]
fn a_403_says_which_rbac_permission_is_missing() {
    let rt = runtime();
    let api = KubeApi::start("prod", "rollcall", Mode::Forbidden, vec![]);
    let mut d = rt.block_on(async { k8s(&api, K8sAddressType::Ip) });
    let e = rt.block_on(d.discover()).unwrap_err().to_string();
    assert!(
        e.contains("forbidden to list endpointslices in namespace prod"),
        "{e}"
    );
    assert!(
        e.contains("get and list on endpoints and endpointslices"),
        "{e}"
    );
}

#[test]
fn a_404_names_the_missing_service() {
    let rt = runtime();
    let api = KubeApi::start("prod", "rollcall", Mode::EndpointsOnly, vec![]);
    api.set_mode(Mode::NoService);
    let mut d = rt.block_on(async { k8s(&api, K8sAddressType::Ip) });
    // A Service with no slices is an empty answer, not an error...
    assert!(rt.block_on(d.discover()).unwrap().is_empty());
    // ...and without the EndpointSlice API, a missing Service is a 404.
    api.set_mode(Mode::EndpointsOnly);
    rt.block_on(d.discover()).unwrap();
    api.set_mode(Mode::NoService);
    let e = rt.block_on(d.discover()).unwrap_err().to_string();
    assert!(e.contains("service prod/rollcall not found"), "{e}");
}

#[test]
fn the_service_account_token_goes_with_every_request() {
    let rt = runtime();
    let api = KubeApi::start("prod", "rollcall", Mode::Slices, vec![pod("10.1.0.2", 0)]);
    let dir = std::env::temp_dir().join(format!("rollcall-sa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), "test-token-123").unwrap();
    let config = K8sConfig {
        apiserver: api.url(),
        service_name: "rollcall".into(),
        namespace: "prod".into(),
        address_type: K8sAddressType::Ip,
        suffix: "pod.local".into(),
    };
    let mut d = rt.block_on(async {
        K8s::with_credentials(config, name("rc@127.0.0.1"), 24370, &dir).unwrap()
    });
    rt.block_on(d.discover()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(api.authorizations(), ["Bearer test-token-123"]);
}

#[test]
fn etcd_over_tls_with_a_client_certificate_registers_and_discovers() {
    let tls = TlsFiles::generate("etcd");
    let server = EtcdServer::start_tls(&tls);
    assert!(server.url().starts_with("https://"));
    let ssl = |client: bool| EtcdTls {
        cacertfile: Some(tls.path("ca.pem")),
        certfile: client.then(|| tls.path("client.pem")),
        keyfile: client.then(|| tls.path("client.key")),
    };
    let config = |client: bool| EtcdConfig {
        servers: vec![server.url()],
        prefix: "rctest".into(),
        node_ttl: Duration::from_secs(30),
        ssl: Some(ssl(client)),
    };
    let me = name("rc@127.0.11.2");
    let addr: SocketAddr = "127.0.11.2:24370".parse().unwrap();
    let rt = runtime();
    let mut a = rt.block_on(async {
        Etcd::new(config(true), "c1", me.clone(), addr, 24370, AddrFamily::V4).unwrap()
    });
    rt.block_on(a.register()).unwrap();
    let peers = rt.block_on(a.discover()).unwrap();
    assert_eq!(shown(&peers), ["rc@127.0.11.2 127.0.11.2:24370"]);
    // Without a client certificate the server refuses: an error, not a panic.
    let mut b = rt.block_on(async {
        Etcd::new(config(false), "c1", me, addr, 24370, AddrFamily::V4).unwrap()
    });
    assert!(rt.block_on(b.discover()).is_err());
}
