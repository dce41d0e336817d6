//! The QUIC transport's certificates: mutual TLS from a test CA made here
//! with rcgen, the cases it refuses (and counts), and the load errors.
//!
//! Certificates are written to a directory of their own under the system's
//! temporary directory, removed at the end of each test.
#![cfg(feature = "quic")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[path = "common/ca.rs"]
mod ca;
#[path = "common/eventually.rs"]
mod wait;

use ca::Ca;
use wait::eventually;

use rollcall::runtime::transport::{
    QuicCertConfig, QuicOptions, QuicTls, QuicTransport, Received, TlsError, Transport, Verify,
};
use tokio::time::timeout;

const TEST_BUDGET: Duration = Duration::from_secs(20);

/// A directory for one test's files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rollcall-quic-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn node(config: &QuicCertConfig, at: SocketAddr) -> QuicTransport {
    let tls = QuicTls::load(config, &at.ip().to_string()).expect("certificates load");
    QuicTransport::bind(at, &tls, QuicOptions::default())
        .await
        .expect("bind")
}

/// Whether `to` receives a datagram `from` sends, trying for `limit`.
async fn reaches(from: &mut QuicTransport, to: &mut QuicTransport, limit: Duration) -> bool {
    let addr = to.local_addr();
    let mut buf = vec![0; 2048];
    timeout(limit, async {
        loop {
            from.send(addr, b"hello").await;
            if let Ok(Received::Datagram { len, .. }) =
                timeout(Duration::from_millis(100), to.recv(&mut buf)).await
            {
                if &buf[..len] == b"hello" {
                    return;
                }
            }
        }
    })
    .await
    .is_ok()
}

async fn within<F: std::future::Future<Output = ()>>(body: F) {
    timeout(TEST_BUDGET, body)
        .await
        .expect("the test did not finish within its budget");
}

#[tokio::test(flavor = "current_thread")]
async fn nodes_with_certificates_from_one_ca_talk_both_ways() {
    within(async {
        let dir = TempDir::new();
        let ca = Ca::new("cluster CA");
        let mut a = node(&ca.files(&dir.0, "a", &["127.0.0.1"], false), loopback()).await;
        let mut b = node(&ca.files(&dir.0, "b", &["127.0.0.1"], false), loopback()).await;
        assert!(reaches(&mut a, &mut b, Duration::from_secs(3)).await);
        assert!(reaches(&mut b, &mut a, Duration::from_secs(3)).await);
        assert_eq!(
            a.stats().handshakes_refused + b.stats().handshakes_refused,
            0
        );
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn nodes_on_ipv6_loopback_talk_with_mutual_tls() {
    within(async {
        let dir = TempDir::new();
        let ca = Ca::new("cluster CA");
        let at: SocketAddr = "[::1]:0".parse().unwrap();
        let mut a = node(&ca.files(&dir.0, "a", &["::1"], false), at).await;
        let mut b = node(&ca.files(&dir.0, "b", &["::1"], false), at).await;
        assert!(reaches(&mut a, &mut b, Duration::from_secs(3)).await);
        assert!(reaches(&mut b, &mut a, Duration::from_secs(3)).await);
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_with_a_certificate_from_another_ca_is_refused_and_counted_on_both_sides() {
    within(async {
        let dir = TempDir::new();
        let ours = Ca::new("cluster CA");
        let theirs = Ca::new("another CA");
        let mut a = node(&ours.files(&dir.0, "a", &["127.0.0.1"], false), loopback()).await;
        let mut b = node(
            &theirs.files(&dir.0, "b", &["127.0.0.1"], false),
            loopback(),
        )
        .await;
        // Ten datagrams at once wait behind one handshake: one refusal, not
        // one per datagram.
        for _ in 0..10 {
            a.send(b.local_addr(), b"let me in").await;
        }
        let mut buf = vec![0; 2048];
        let got = timeout(Duration::from_secs(1), b.recv(&mut buf)).await;
        assert!(got.is_err(), "a datagram crossed CAs: {got:?}");
        assert!(eventually(Duration::from_secs(2), || a.stats().handshakes_refused == 1).await);
        assert!(eventually(Duration::from_secs(2), || b.stats().handshakes_refused == 1).await);
        assert_eq!(a.stats().queue_dropped, 10);
        assert_eq!(a.stats().sent, 0);
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_with_an_expired_certificate_is_refused() {
    within(async {
        let dir = TempDir::new();
        let ca = Ca::new("cluster CA");
        let mut a = node(&ca.files(&dir.0, "a", &["127.0.0.1"], false), loopback()).await;
        let mut b = node(&ca.files(&dir.0, "b", &["127.0.0.1"], true), loopback()).await;
        // b as server: a refuses its certificate.
        assert!(!reaches(&mut a, &mut b, Duration::from_secs(1)).await);
        assert!(a.stats().handshakes_refused >= 1);
        // b as client: a refuses its certificate.
        assert!(!reaches(&mut b, &mut a, Duration::from_secs(1)).await);
        assert!(b.stats().handshakes_refused >= 1);
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_certificate_that_does_not_name_the_dialled_address_is_refused() {
    within(async {
        let dir = TempDir::new();
        let ca = Ca::new("cluster CA");
        let mut a = node(&ca.files(&dir.0, "a", &["127.0.0.1"], false), loopback()).await;
        let mut b = node(&ca.files(&dir.0, "b", &["10.9.9.9"], false), loopback()).await;
        assert!(!reaches(&mut a, &mut b, Duration::from_secs(1)).await);
        assert!(a.stats().handshakes_refused >= 1);
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_registered_host_name_is_checked_against_the_certificate_dns_name() {
    within(async {
        let dir = TempDir::new();
        let ca = Ca::new("cluster CA");
        let mut a = node(&ca.files(&dir.0, "a", &["127.0.0.1"], false), loopback()).await;
        let mut b = node(
            &ca.files(&dir.0, "b", &["node-b.cluster.local"], false),
            loopback(),
        )
        .await;
        let mut c = node(
            &ca.files(&dir.0, "c", &["node-c.cluster.local"], false),
            loopback(),
        )
        .await;
        a.set_peer_host(b.local_addr(), "node-b.cluster.local");
        assert!(reaches(&mut a, &mut b, Duration::from_secs(3)).await);
        // C's certificate names another host than the one registered for it.
        a.set_peer_host(c.local_addr(), "node-b.cluster.local");
        assert!(!reaches(&mut a, &mut c, Duration::from_secs(1)).await);
        assert!(a.stats().handshakes_refused >= 1);
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_without_a_certificate_is_refused_by_a_verify_peer_server() {
    within(async {
        let dir = TempDir::new();
        let ca = Ca::new("cluster CA");
        let mut server = node(&ca.files(&dir.0, "a", &["127.0.0.1"], false), loopback()).await;
        // A bare quinn client that trusts the CA but presents no certificate.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(ca.der.clone()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![rollcall::runtime::transport::tls::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut client = quinn::Endpoint::client(loopback()).unwrap();
        client.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let conn = client
            .connect(server.local_addr(), "127.0.0.1")
            .unwrap()
            .await;
        // TLS 1.3: the client may finish first; the server then closes.
        if let Ok(conn) = conn {
            let _ = conn.send_datagram(bytes::Bytes::from_static(b"no cert"));
            let _ = timeout(Duration::from_secs(2), conn.closed()).await;
        }
        let mut buf = vec![0; 2048];
        assert!(timeout(Duration::from_millis(300), server.recv(&mut buf))
            .await
            .is_err());
        assert!(
            eventually(Duration::from_secs(2), || server.stats().handshakes_refused
                == 1)
            .await
        );
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn verify_none_accepts_a_peer_from_another_ca() {
    within(async {
        let dir = TempDir::new();
        let mut config_a = Ca::new("one CA").files(&dir.0, "a", &["127.0.0.1"], false);
        let mut config_b = Ca::new("another CA").files(&dir.0, "b", &["10.9.9.9"], false);
        config_a.verify = Some(Verify::VerifyNone);
        config_b.verify = Some(Verify::VerifyNone);
        let mut a = node(&config_a, loopback()).await;
        let mut b = node(&config_b, loopback()).await;
        assert!(reaches(&mut a, &mut b, Duration::from_secs(3)).await);
        assert!(reaches(&mut b, &mut a, Duration::from_secs(3)).await);
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_node_without_files_talks_to_a_verify_none_node_with_files() {
    within(async {
        let dir = TempDir::new();
        let mut with_files = Ca::new("cluster CA").files(&dir.0, "a", &["127.0.0.1"], false);
        with_files.verify = Some(Verify::VerifyNone);
        let mut a = node(&with_files, loopback()).await;
        let mut b = node(&QuicCertConfig::default(), loopback()).await;
        assert!(reaches(&mut a, &mut b, Duration::from_secs(3)).await);
        assert!(reaches(&mut b, &mut a, Duration::from_secs(3)).await);
    })
    .await
}

fn load_error(config: &QuicCertConfig) -> TlsError {
    QuicTls::load(config, "127.0.0.1").expect_err("the load should fail")
}

fn mentions(err: &TlsError, key: &str, path: &Path) -> bool {
    let text = err.to_string();
    text.starts_with(key) && text.contains(&path.display().to_string())
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_a_load_error_naming_the_keyfile() {
    let dir = TempDir::new();
    let ca = Ca::new("cluster CA");
    let mut config = ca.files(&dir.0, "a", &["127.0.0.1"], false);
    let (_, other_key) = ca.leaf(&["127.0.0.1"], false);
    let keyfile = dir.write("other.key", &other_key);
    config.keyfile = Some(keyfile.clone());
    let err = load_error(&config);
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(mentions(&err, "cluster.quic.keyfile", &keyfile), "{err}");
}

#[test]
fn a_missing_file_is_a_load_error_naming_the_key_and_the_file() {
    let dir = TempDir::new();
    let ca = Ca::new("cluster CA");
    let mut config = ca.files(&dir.0, "a", &["127.0.0.1"], false);
    let missing = dir.0.join("no-such-ca.crt");
    config.cacertfile = Some(missing.clone());
    let err = load_error(&config);
    assert!(matches!(err, TlsError::Unreadable { .. }), "{err}");
    assert!(mentions(&err, "cluster.quic.cacertfile", &missing), "{err}");

    let mut config = ca.files(&dir.0, "b", &["127.0.0.1"], false);
    let missing = dir.0.join("no-such.crt");
    config.certfile = Some(missing.clone());
    assert!(mentions(
        &load_error(&config),
        "cluster.quic.certfile",
        &missing
    ));
}

#[test]
fn a_file_without_pem_is_a_load_error_naming_it() {
    let dir = TempDir::new();
    let ca = Ca::new("cluster CA");
    let mut config = ca.files(&dir.0, "a", &["127.0.0.1"], false);
    let junk = dir.write("junk.key", "this is not a key\n");
    config.keyfile = Some(junk.clone());
    let err = load_error(&config);
    assert!(matches!(err, TlsError::BadPem { .. }), "{err}");
    assert!(mentions(&err, "cluster.quic.keyfile", &junk), "{err}");

    let mut config = ca.files(&dir.0, "b", &["127.0.0.1"], false);
    let junk = dir.write("junk.crt", "-----BEGIN CERTIFICATE-----\n!!!\n");
    config.certfile = Some(junk.clone());
    assert!(mentions(
        &load_error(&config),
        "cluster.quic.certfile",
        &junk
    ));
}

#[test]
fn verify_peer_without_a_cacertfile_is_a_load_error_naming_cacertfile() {
    let dir = TempDir::new();
    let mut config = Ca::new("cluster CA").files(&dir.0, "a", &["127.0.0.1"], false);
    config.cacertfile = None;
    let err = load_error(&config);
    assert!(
        err.to_string().starts_with("cluster.quic.cacertfile:"),
        "{err}"
    );
}

#[test]
fn a_certfile_without_a_keyfile_is_a_load_error_naming_keyfile() {
    let dir = TempDir::new();
    let mut config = Ca::new("cluster CA").files(&dir.0, "a", &["127.0.0.1"], false);
    config.keyfile = None;
    let err = load_error(&config);
    assert!(
        err.to_string().starts_with("cluster.quic.keyfile:"),
        "{err}"
    );
}
