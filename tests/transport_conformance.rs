//! One conformance suite, generic over the `Transport` trait, run against
//! every transport: UDP and QUIC on IPv4 and IPv6 loopback, and the memory
//! network. Then QUIC's own guarantees: the bounded queue and table, and
//! reaching a restarted peer.
//!
//! A wrong cookie is not the transport's business: garbage bytes must reach
//! the node as bytes, and the node's seal rejects them (tests/agent_cookie.rs,
//! tests/random_datagrams.rs).
#![cfg(feature = "runtime")]

#[cfg(feature = "quic")]
#[path = "common/eventually.rs"]
mod wait;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use rollcall::runtime::transport::{
    MemoryNetwork, Received, Transport, UdpTransport, MAX_UDP_PAYLOAD,
};
use tokio::time::timeout;

/// Every test's whole budget.
const TEST_BUDGET: Duration = Duration::from_secs(20);

/// Larger than any UDP datagram (65,535 bytes less the UDP header), over
/// IPv4 or IPv6: no transport carries it.
const NEVER_CARRIED: usize = 65_536;

/// One wait for one datagram.
const RECV_WAIT: Duration = Duration::from_secs(5);

/// Binds transports of one kind.
trait Harness {
    type T: Transport;
    /// A transport at `addr` (port 0: any free port); retried while a
    /// previous one at the same address is still shutting down.
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = Self::T>;
}

/// Runs a test body within the budget.
async fn within<F: Future<Output = ()>>(body: F) {
    timeout(TEST_BUDGET, body)
        .await
        .expect("the test did not finish within its budget");
}

/// The next datagram, within `RECV_WAIT`, with its bytes.
async fn recv_one(t: &mut impl Transport, buf: &mut [u8]) -> (Vec<u8>, SocketAddr) {
    loop {
        match timeout(RECV_WAIT, t.recv(buf))
            .await
            .expect("no datagram within the wait")
        {
            Received::Datagram { len, from } => return (buf[..len].to_vec(), from),
            Received::Unreachable(_) => continue,
        }
    }
}

fn any_port(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 0)
}

async fn delivers_datagrams_both_ways<H: Harness>(h: &H, ip: &str) {
    let mut a = h.bind(any_port(ip)).await;
    let mut b = h.bind(any_port(ip)).await;
    let mut buf = vec![0; 2048];
    a.send(b.local_addr(), b"ping").await;
    let (got, from) = recv_one(&mut b, &mut buf).await;
    assert_eq!((got.as_slice(), from), (&b"ping"[..], a.local_addr()));
    b.send(a.local_addr(), b"pong").await;
    let (got, from) = recv_one(&mut a, &mut buf).await;
    assert_eq!((got.as_slice(), from), (&b"pong"[..], b.local_addr()));
    assert_eq!(a.stats().received, 1);
    assert_eq!(b.stats().received, 1);
}

async fn a_datagram_larger_than_the_receive_buffer_is_dropped_and_counted<H: Harness>(
    h: &H,
    ip: &str,
) {
    let mut a = h.bind(any_port(ip)).await;
    let mut b = h.bind(any_port(ip)).await;
    b.send(a.local_addr(), &[7; 600]).await;
    b.send(a.local_addr(), &[8; 100]).await;
    // A node with max_datagram_size 512 reads into 513 bytes.
    let mut buf = vec![0; 513];
    let (got, _) = recv_one(&mut a, &mut buf).await;
    assert_eq!(got, vec![8; 100]);
    assert_eq!(a.stats().too_large, 1);
    assert_eq!(a.stats().received, 1);
}

async fn a_datagram_of_max_payload_bytes_is_delivered_from_the_first_one<H: Harness>(
    h: &H,
    ip: &str,
) {
    let mut a = h.bind(any_port(ip)).await;
    let mut b = h.bind(any_port(ip)).await;
    let max = a.max_payload();
    // The very first datagram between the two, at the limit.
    a.send(b.local_addr(), &vec![9; max]).await;
    let mut buf = vec![0; MAX_UDP_PAYLOAD + 1];
    let (got, _) = recv_one(&mut b, &mut buf).await;
    assert_eq!(got.len(), max);
    assert_eq!(a.stats().too_large_sent, 0);
}

async fn a_datagram_no_transport_carries_is_dropped_and_counted_at_the_sender<H: Harness>(
    h: &H,
    ip: &str,
) {
    let mut a = h.bind(any_port(ip)).await;
    let mut b = h.bind(any_port(ip)).await;
    a.send(b.local_addr(), &vec![1; NEVER_CARRIED]).await;
    a.send(b.local_addr(), b"small").await;
    let mut buf = vec![0; NEVER_CARRIED + 1];
    let (got, _) = recv_one(&mut b, &mut buf).await;
    assert_eq!(got, b"small");
    let s = a.stats();
    // UDP: the kernel refuses it (a send error); QUIC and memory count it as
    // too large to send.
    assert_eq!(s.too_large_sent + s.send_errors, 1, "{s:?}");
}

async fn garbage_bytes_are_delivered_as_bytes<H: Harness>(h: &H, ip: &str) {
    let mut a = h.bind(any_port(ip)).await;
    let mut b = h.bind(any_port(ip)).await;
    let garbage: Vec<Vec<u8>> = vec![
        vec![0xff; 37],
        b"\x00\x01not a sealed envelope".to_vec(),
        (0..=255).collect(),
    ];
    for g in &garbage {
        a.send(b.local_addr(), g).await;
    }
    let mut buf = vec![0; 2048];
    for g in &garbage {
        let (got, from) = recv_one(&mut b, &mut buf).await;
        assert_eq!(&got, g);
        assert_eq!(from, a.local_addr());
    }
}

async fn a_peer_that_vanishes_and_comes_back_on_the_same_address_is_reached_again<H: Harness>(
    h: &H,
    ip: &str,
) {
    let mut a = h.bind(any_port(ip)).await;
    let mut b = h.bind(any_port(ip)).await;
    let b_addr = b.local_addr();
    let mut buf = vec![0; 2048];
    a.send(b_addr, b"before").await;
    assert_eq!(recv_one(&mut b, &mut buf).await.0, b"before");
    drop(b);
    // Something to the vanished peer, as a node probing it would send.
    a.send(b_addr, b"anyone?").await;
    let mut b = h.bind(b_addr).await;
    let reached = timeout(Duration::from_secs(3), async {
        loop {
            a.send(b_addr, b"again").await;
            if let Ok(Received::Datagram { len, .. }) =
                timeout(Duration::from_millis(100), b.recv(&mut buf)).await
            {
                if &buf[..len] == b"again" {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "the peer back on {b_addr} was not reached within 3 s"
    );
}

macro_rules! suite {
    ($name:ident, $harness:expr, $ip:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "current_thread")]
            async fn delivers_datagrams_both_ways() {
                within(super::delivers_datagrams_both_ways(&$harness, $ip)).await
            }

            #[tokio::test(flavor = "current_thread")]
            async fn a_datagram_larger_than_the_receive_buffer_is_dropped_and_counted() {
                within(
                    super::a_datagram_larger_than_the_receive_buffer_is_dropped_and_counted(
                        &$harness, $ip,
                    ),
                )
                .await
            }

            #[tokio::test(flavor = "current_thread")]
            async fn a_datagram_of_max_payload_bytes_is_delivered_from_the_first_one() {
                within(
                    super::a_datagram_of_max_payload_bytes_is_delivered_from_the_first_one(
                        &$harness, $ip,
                    ),
                )
                .await
            }

            #[tokio::test(flavor = "current_thread")]
            async fn a_datagram_no_transport_carries_is_dropped_and_counted_at_the_sender() {
                within(
                    super::a_datagram_no_transport_carries_is_dropped_and_counted_at_the_sender(
                        &$harness, $ip,
                    ),
                )
                .await
            }

            #[tokio::test(flavor = "current_thread")]
            async fn garbage_bytes_are_delivered_as_bytes() {
                within(super::garbage_bytes_are_delivered_as_bytes(&$harness, $ip)).await
            }

            #[tokio::test(flavor = "current_thread")]
            async fn a_peer_that_vanishes_and_comes_back_on_the_same_address_is_reached_again() {
                within(
                    super::a_peer_that_vanishes_and_comes_back_on_the_same_address_is_reached_again(
                        &$harness, $ip,
                    ),
                )
                .await
            }
        }
    };
}

/// Binds `addr`, retrying for up to 2 s while the address is still held.
async fn bind_retrying<T, E: std::fmt::Debug, F: Future<Output = Result<T, E>>>(
    addr: SocketAddr,
    bind: impl Fn(SocketAddr) -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match bind(addr).await {
            Ok(t) => return t,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("cannot bind {addr}: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

struct Udp;

impl Harness for Udp {
    type T = UdpTransport;
    async fn bind(&self, addr: SocketAddr) -> UdpTransport {
        bind_retrying(addr, UdpTransport::bind).await
    }
}

struct Memory(MemoryNetwork);

impl Harness for Memory {
    type T = rollcall::runtime::transport::MemoryTransport;
    async fn bind(&self, addr: SocketAddr) -> Self::T {
        let net = self.0.clone();
        bind_retrying(addr, |a| {
            let net = net.clone();
            async move { net.bind(a) }
        })
        .await
    }
}

suite!(udp, Udp, "127.0.0.1");
suite!(udp_ipv6, Udp, "::1");
suite!(memory, Memory(MemoryNetwork::new()), "127.0.0.1");

#[cfg(feature = "quic")]
mod quic_support {
    use super::*;
    use rollcall::runtime::transport::{QuicCertConfig, QuicOptions, QuicTls, QuicTransport};

    /// QUIC with a self-signed certificate per node (verify_none) and a
    /// reset secret shared by a node's incarnations, as the agent derives it.
    pub struct Quic;

    pub fn options() -> QuicOptions {
        QuicOptions {
            reset_secret: Some([42; 32]),
            ..QuicOptions::default()
        }
    }

    pub async fn bind_with(addr: SocketAddr, options: QuicOptions) -> QuicTransport {
        let tls = QuicTls::load(&QuicCertConfig::default(), &addr.ip().to_string())
            .expect("a self-signed certificate");
        bind_retrying(addr, |a| QuicTransport::bind(a, &tls, options.clone())).await
    }

    impl Harness for Quic {
        type T = QuicTransport;
        async fn bind(&self, addr: SocketAddr) -> QuicTransport {
            bind_with(addr, options()).await
        }
    }
}

#[cfg(feature = "quic")]
use quic_support::Quic;

#[cfg(feature = "quic")]
suite!(quic, Quic, "127.0.0.1");
#[cfg(feature = "quic")]
suite!(quic_ipv6, Quic, "::1");

/// QUIC's own guarantees, beyond the suite.
#[cfg(feature = "quic")]
mod quic_guarantees {
    use super::quic_support::{bind_with, options};
    use super::*;
    use rollcall::runtime::transport::quic::{QuicOptions, QuicTransport};

    fn local() -> SocketAddr {
        any_port("127.0.0.1")
    }

    use super::wait::eventually;

    #[test]
    fn every_connection_carries_1414_bytes_from_its_first_datagram() {
        assert_eq!(QuicOptions::default().max_payload(), 1414);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn datagrams_for_a_peer_being_connected_wait_in_a_bounded_queue_and_the_rest_are_counted()
    {
        within(async {
            // A UDP socket that never answers: the handshake never completes.
            let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = silent.local_addr().unwrap();
            let mut a = bind_with(
                local(),
                QuicOptions {
                    handshake_timeout: Duration::from_millis(300),
                    ..options()
                },
            )
            .await;
            let started = std::time::Instant::now();
            for i in 0..100u8 {
                a.send(to, &[i; 100]).await;
            }
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "send waited: {:?}",
                started.elapsed()
            );
            // On one thread the peer's task has not run yet: 32 wait in its
            // channel, the other 68 are dropped at once.
            assert_eq!(a.stats().queue_dropped, 68);
            // The 32 move to the pending queue (no more drops), then the
            // handshake times out and they are dropped and counted too.
            assert!(
                eventually(Duration::from_secs(3), || a.stats().queue_dropped == 100).await,
                "{:?}",
                a.stats()
            );
            assert_eq!(a.stats().sent, 0);
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_table_evicts_the_least_recently_used_peer_for_an_outgoing_connection() {
        within(async {
            let mut a = bind_with(
                local(),
                QuicOptions {
                    max_connections: 2,
                    ..options()
                },
            )
            .await;
            let mut peers = Vec::new();
            for _ in 0..3 {
                peers.push(bind_with(local(), options()).await);
            }
            let mut buf = vec![0; 2048];
            for p in peers.iter_mut() {
                a.send(p.local_addr(), b"hello").await;
                assert_eq!(recv_one(p, &mut buf).await.0, b"hello");
                assert!(a.peers() <= 2);
            }
            assert_eq!(a.peers(), 2);
            // The first peer was evicted; it is reached again, evicting the
            // second.
            let first = peers[0].local_addr();
            a.send(first, b"again").await;
            assert_eq!(recv_one(&mut peers[0], &mut buf).await.0, b"again");
            assert_eq!(a.peers(), 2);
            // Evicted connections close: at most two (plus closing ones)
            // remain open.
            assert!(eventually(Duration::from_secs(3), || a.connections_open() <= 2).await);
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_table_refuses_incoming_connections_from_new_addresses_and_counts_them() {
        within(async {
            let mut a = bind_with(
                local(),
                QuicOptions {
                    max_connections: 1,
                    ..options()
                },
            )
            .await;
            let mut b = bind_with(local(), options()).await;
            let mut c = bind_with(local(), options()).await;
            let mut buf = vec![0; 2048];
            b.send(a.local_addr(), b"from b").await;
            assert_eq!(recv_one(&mut a, &mut buf).await.0, b"from b");
            // C keeps trying; A keeps reading and hears nothing from C.
            let from_c = timeout(Duration::from_secs(1), async {
                loop {
                    c.send(a.local_addr(), b"from c").await;
                    if let Ok(Received::Datagram { from, .. }) =
                        timeout(Duration::from_millis(50), a.recv(&mut buf)).await
                    {
                        if from == c.local_addr() {
                            return;
                        }
                    }
                }
            })
            .await;
            assert!(from_c.is_err(), "a datagram from C got past a full table");
            assert!(a.stats().connections_refused >= 1, "{:?}", a.stats());
            assert_eq!(a.peers(), 1);
            // B, in the table, still gets through.
            b.send(a.local_addr(), b"b again").await;
            let (got, from) = recv_one(&mut a, &mut buf).await;
            assert_eq!((got.as_slice(), from), (&b"b again"[..], b.local_addr()));
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn two_nodes_that_connect_to_each_other_at_once_keep_one_connection() {
        within(async {
            let mut a = bind_with(local(), options()).await;
            let mut b = bind_with(local(), options()).await;
            let (to_a, to_b) = (a.local_addr(), b.local_addr());
            let mut buf = vec![0; 2048];
            // Both open a connection before either has heard of the other.
            a.send(to_b, b"from a").await;
            b.send(to_a, b"from b").await;
            assert_eq!(recv_one(&mut b, &mut buf).await, (b"from a".to_vec(), to_a));
            assert_eq!(recv_one(&mut a, &mut buf).await, (b"from b".to_vec(), to_b));
            // Each keeps reading (that is where accepted connections are
            // filed) until both hold the one connection they agree on.
            let settled = timeout(Duration::from_secs(3), async {
                loop {
                    let _ = timeout(Duration::from_millis(20), a.recv(&mut buf)).await;
                    let _ = timeout(Duration::from_millis(20), b.recv(&mut buf)).await;
                    if a.connections_open() == 1 && b.connections_open() == 1 {
                        return;
                    }
                }
            })
            .await;
            assert!(
                settled.is_ok(),
                "connections open: {} and {}",
                a.connections_open(),
                b.connections_open()
            );
            // The one left carries datagrams both ways.
            a.send(to_b, b"still a").await;
            assert_eq!(
                recv_one(&mut b, &mut buf).await,
                (b"still a".to_vec(), to_a)
            );
            b.send(to_a, b"still b").await;
            assert_eq!(
                recv_one(&mut a, &mut buf).await,
                (b"still b".to_vec(), to_b)
            );
            assert_eq!((a.connections_open(), b.connections_open()), (1, 1));
            assert_eq!(a.stats().queue_dropped + b.stats().queue_dropped, 0);
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn forgetting_a_peer_closes_its_connection() {
        within(async {
            let mut a = bind_with(local(), options()).await;
            let mut b = bind_with(local(), options()).await;
            let mut buf = vec![0; 2048];
            a.send(b.local_addr(), b"hello").await;
            recv_one(&mut b, &mut buf).await;
            assert_eq!(a.connections_open(), 1);
            a.forget(b.local_addr());
            assert_eq!(a.peers(), 0);
            assert!(eventually(Duration::from_secs(2), || a.connections_open() == 0).await);
            assert!(eventually(Duration::from_secs(2), || b.connections_open() == 0).await);
        })
        .await
    }

    /// Binds a transport in a runtime of its own on another thread, lets it
    /// receive one datagram, then kills the runtime: the process "crashes",
    /// its socket closes and no CONNECTION_CLOSE is sent.
    fn crashing_peer(
        reset_secret: Option<[u8; 32]>,
    ) -> (
        SocketAddr,
        std::sync::mpsc::Receiver<()>,
        std::thread::JoinHandle<()>,
    ) {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (got_tx, got_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let b = rt.block_on(async {
                let mut b = bind_with(
                    local(),
                    QuicOptions {
                        reset_secret,
                        ..QuicOptions::default()
                    },
                )
                .await;
                addr_tx.send(b.local_addr()).unwrap();
                let mut buf = vec![0; 2048];
                recv_one(&mut b, &mut buf).await;
                got_tx.send(()).unwrap();
                b
            });
            drop(rt);
            drop(b);
        });
        (addr_rx.recv().unwrap(), got_rx, thread)
    }

    /// Has `a` connect to a peer (whose incarnations share `secret`) that
    /// then crashes once it got the datagram; the peer's address.
    async fn connect_then_crash(a: &mut QuicTransport, secret: Option<[u8; 32]>) -> SocketAddr {
        let (b_addr, got, thread) = crashing_peer(secret);
        a.send(b_addr, b"hello").await;
        tokio::task::spawn_blocking(move || got.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap()
            .expect("the first incarnation got nothing");
        thread.join().unwrap();
        b_addr
    }

    /// The crashed peer's next incarnation, on the same address.
    async fn restart(addr: SocketAddr, secret: Option<[u8; 32]>) -> QuicTransport {
        let options = QuicOptions {
            reset_secret: secret,
            ..QuicOptions::default()
        };
        bind_with(addr, options).await
    }

    /// Sends to `to` every 50 ms until `b` receives, for up to `limit`.
    async fn reach(a: &mut QuicTransport, b: &mut QuicTransport, limit: Duration) -> bool {
        let to = b.local_addr();
        let mut buf = vec![0; 2048];
        timeout(limit, async {
            loop {
                a.send(to, b"are you back?").await;
                if let Ok(Received::Datagram { .. }) =
                    timeout(Duration::from_millis(50), b.recv(&mut buf)).await
                {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_peer_that_crashes_and_restarts_on_the_same_address_is_reached_within_two_seconds() {
        within(async {
            let secret = Some([7; 32]);
            let mut a = bind_with(local(), options()).await;
            let b_addr = connect_then_crash(&mut a, secret).await;
            // A still holds its connection to the crashed process.
            assert_eq!(a.connections_open(), 1);
            let mut b = restart(b_addr, secret).await;
            assert!(
                reach(&mut a, &mut b, Duration::from_secs(2)).await,
                "the restarted peer was not reached within 2 s"
            );
        })
        .await
    }

    /// A holds a connection to B's first incarnation, which crashes; B
    /// comes back on the same address (with `secret`, as its first
    /// incarnation had) and speaks first, within the race window of A's
    /// stale connection. A must hear it, and reach it, within 2 s each.
    async fn restarted_peer_speaks_first(secret: Option<[u8; 32]>) {
        let mut a = bind_with(
            local(),
            QuicOptions {
                reset_secret: secret.map(|_| [42; 32]),
                ..QuicOptions::default()
            },
        )
        .await;
        let b_addr = connect_then_crash(&mut a, secret).await;
        let mut b = restart(b_addr, secret).await;
        let to_a = a.local_addr();
        assert!(
            reach(&mut b, &mut a, Duration::from_secs(2)).await,
            "the restarted peer was not heard within 2 s"
        );
        assert!(
            reach(&mut a, &mut b, Duration::from_secs(2)).await,
            "the restarted peer was not reached within 2 s"
        );
        // Both ways work now: a datagram from B arrives (after any of the
        // probes still on their way).
        b.send(to_a, b"I am back").await;
        let mut buf = vec![0; 2048];
        while recv_one(&mut a, &mut buf).await.0 != b"I am back" {}
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_restarted_peer_that_speaks_first_replaces_the_stale_connection_at_once() {
        // No reset secret anywhere: only the new connection can help.
        within(restarted_peer_speaks_first(None)).await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_restarted_peer_that_speaks_first_with_a_reset_secret_is_reached_at_once() {
        // With reset secrets, a spare connection of a race is closed: the
        // stale one may be kept by that rule, and the reset must end it.
        within(restarted_peer_speaks_first(Some([7; 32]))).await
    }

    /// Sends to a port where nothing listens: the network's "port
    /// unreachable" must come back within 5 s, and the endpoint must still
    /// carry datagrams both ways afterwards.
    async fn closed_port_then_live_peer(ip: &str) {
        let mut a = bind_with(any_port(ip), options()).await;
        let gone = {
            let socket = std::net::UdpSocket::bind(any_port(ip)).unwrap();
            socket.local_addr().unwrap()
        };
        a.send(gone, b"anyone?").await;
        let mut buf = vec![0; 2048];
        let got = timeout(RECV_WAIT, a.recv(&mut buf))
            .await
            .expect("no word from the network within 5 s");
        assert_eq!(got, Received::Unreachable(gone));
        assert!(a.stats().unreachable >= 1);
        let mut b = bind_with(any_port(ip), options()).await;
        a.send(b.local_addr(), b"still here").await;
        let (got, from) = recv_one(&mut b, &mut buf).await;
        assert_eq!((got.as_slice(), from), (&b"still here"[..], a.local_addr()));
        b.send(from, b"and back").await;
        assert_eq!(recv_one(&mut a, &mut buf).await.0, b"and back");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_to_a_closed_ipv4_port_comes_back_as_unreachable_and_the_endpoint_keeps_working(
    ) {
        within(closed_port_then_live_peer("127.0.0.1")).await
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_to_a_closed_ipv6_port_comes_back_as_unreachable_and_the_endpoint_keeps_working(
    ) {
        within(closed_port_then_live_peer("::1")).await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dual_stack_node_knows_an_ipv4_peer_by_one_ipv4_address() {
        within(async {
            let mut a = bind_with(any_port("::"), options()).await;
            let a_v4 = SocketAddr::new("127.0.0.1".parse().unwrap(), a.local_addr().port());
            let mut b = bind_with(local(), options()).await;
            let mut buf = vec![0; 2048];
            b.send(a_v4, b"over v4").await;
            let (got, from) = recv_one(&mut a, &mut buf).await;
            assert_eq!((got.as_slice(), from), (&b"over v4"[..], b.local_addr()));
            a.send(from, b"reply").await;
            assert_eq!(recv_one(&mut b, &mut buf).await.0, b"reply");
            assert_eq!(a.peers(), 1);
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn two_peers_that_connect_at_once_keep_talking_both_ways() {
        within(async {
            let mut a = bind_with(local(), options()).await;
            let mut b = bind_with(local(), options()).await;
            let mut buf = vec![0; 2048];
            a.send(b.local_addr(), b"a1").await;
            b.send(a.local_addr(), b"b1").await;
            assert_eq!(recv_one(&mut b, &mut buf).await.0, b"a1");
            assert_eq!(recv_one(&mut a, &mut buf).await.0, b"b1");
            for i in 0..20u8 {
                a.send(b.local_addr(), &[i]).await;
                b.send(a.local_addr(), &[i]).await;
                assert_eq!(recv_one(&mut b, &mut buf).await.0, [i]);
                assert_eq!(recv_one(&mut a, &mut buf).await.0, [i]);
            }
            assert_eq!(a.stats().queue_dropped + b.stats().queue_dropped, 0);
        })
        .await
    }
}
