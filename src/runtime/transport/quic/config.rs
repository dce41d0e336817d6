//! How quinn is configured for SWIM: [`QuicOptions`], the datagram sizes,
//! and the quinn endpoint, server and client configs built from them.
//!
//! # Sizes set here, and why
//!
//! - `max_udp_payload_size` (endpoint): the initial MTU, [`DEFAULT_INITIAL_MTU`]
//!   (1,452) unless raised, instead of quinn's 1,472. quinn sizes its receive
//!   buffer from it (32 reads of this many bytes, see `socket`), and peers
//!   never send more: MTU discovery stops at 1,452 too (quinn's default
//!   upper bound).
//! - Datagram buffers: [`DATAGRAM_BUFFER`] (16 KiB) each way per connection.
//! - Streams: none, and no stream or connection flow-control credit.
//! - TLS: no session resumption (see `tls`).

use std::sync::Arc;
use std::time::Duration;

use hkdf::hmac::{Hmac, Mac};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rand::{Rng, SeedableRng};
use sha2::Sha256;

use super::QuicError;
use crate::core::rng::SeedRng;
use crate::runtime::transport::tls::QuicTls;

/// The UDP payload size every QUIC connection starts with, unless
/// [`QuicOptions::initial_mtu`] says otherwise: 1,500-byte Ethernet less the
/// 40-byte IPv6 header and the 8-byte UDP header, so it fits IPv4 and IPv6
/// Ethernet paths alike (quinn's own default is 1,200).
pub const DEFAULT_INITIAL_MTU: u16 = 1452;

/// The UDP payload size QUIC guarantees on any path, and the floor quinn's
/// black-hole detection falls back to.
pub const MIN_MTU: u16 = 1200;

/// What a 1-RTT packet carrying one datagram adds to it, as quinn budgets
/// it: 1 byte of flags, the peer's 8-byte connection ID (quinn's default
/// length), a packet number counted at its largest (4), the AEAD tag (16),
/// and the DATAGRAM frame's type and length bound (9).
pub const DATAGRAM_OVERHEAD: usize = 1 + 8 + 4 + 16 + 9;

/// The largest datagram a connection started with `initial_mtu` carries
/// from its first packet: `initial_mtu - 38`, so 1,414 bytes at the default
/// 1,452 (1,162 at quinn's 1,200).
pub const fn max_payload_for(initial_mtu: u16) -> usize {
    initial_mtu as usize - DATAGRAM_OVERHEAD
}

/// The bytes of datagrams a connection buffers each way before quinn drops
/// the oldest: 16 KiB, 11 full datagrams (it was 64 KiB; the reader task
/// empties the receive side as datagrams arrive and SWIM sends a few a
/// second, so this only bounds the worst case: 49 peers buffered 6 MiB at
/// most, now 1.5 MiB). This is also the largest datagram frame a peer may
/// send, so it is raised to [`QuicOptions::max_payload`] if that is larger.
const DATAGRAM_BUFFER: usize = 16 * 1024;

/// The largest UDP payload quinn accepts (`max_udp_payload_size`, at most
/// 65,527).
const MAX_UDP_PAYLOAD: u16 = 65_527;

/// The QUIC transport's settings; [`Default`] gives the recommended values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuicOptions {
    /// How many peers the connection table holds (each with at most one
    /// connection it opened and one it accepted). Past it an incoming
    /// connection from a new address is refused and an outgoing one evicts
    /// the least recently used peer. Recommended: 1,024; above the cluster
    /// size avoids reconnects.
    pub max_connections: usize,
    /// Datagrams that wait for a peer whose connection is being made; past
    /// it they are dropped and counted in `queue_dropped`. Recommended: 32.
    pub pending_per_peer: usize,
    /// Incoming handshakes in progress at once; past it a new one is asked
    /// to prove its address (a QUIC retry) or refused. Recommended: 64.
    pub max_incoming_handshakes: usize,
    /// How long a connection lives without any packet before quinn closes
    /// it (no keep-alives are sent). Recommended: 60 s.
    pub idle_timeout: Duration,
    /// How long a handshake may take before it is given up and the queued
    /// datagrams are dropped. Recommended: 5 s.
    pub handshake_timeout: Duration,
    /// The UDP payload size connections start with (at least 1,200); see
    /// [`DEFAULT_INITIAL_MTU`]. Lower it on paths with a smaller MTU
    /// (tunnels, VPNs): the transport then carries less, see
    /// [`max_payload_for`].
    pub initial_mtu: u16,
    /// A secret stable across restarts of this node (for example derived
    /// from the cluster cookie and the gossip address). It keys QUIC
    /// stateless resets: a restarted node answers packets of its previous
    /// process's connections with a reset the peer accepts, so the peer
    /// reconnects at once instead of waiting out `idle_timeout`. `None`: a
    /// random key, and a peer that kept a connection to the previous process
    /// reconnects when the restarted node first sends to it, or after
    /// `idle_timeout`.
    pub reset_secret: Option<[u8; 32]>,
}

impl Default for QuicOptions {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            pending_per_peer: 32,
            max_incoming_handshakes: 64,
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(5),
            initial_mtu: DEFAULT_INITIAL_MTU,
            reset_secret: None,
        }
    }
}

impl QuicOptions {
    /// The initial MTU in force: never below [`MIN_MTU`].
    pub fn effective_initial_mtu(&self) -> u16 {
        self.initial_mtu.max(MIN_MTU)
    }

    /// The largest datagram every connection carries from its first packet.
    pub fn max_payload(&self) -> usize {
        max_payload_for(self.effective_initial_mtu())
    }
}

/// The quinn configs of one endpoint.
pub(super) struct Built {
    pub endpoint: quinn::EndpointConfig,
    pub server: quinn::ServerConfig,
    pub client: quinn::ClientConfig,
}

/// Builds the quinn configs for `tls` and `options`.
pub(super) fn build(tls: &QuicTls, options: &QuicOptions) -> Result<Built, QuicError> {
    let transport = Arc::new(transport_config(options)?);

    let server_crypto = QuicServerConfig::try_from(tls.server_config())
        .map_err(|e| QuicError::Config(format!("server TLS config: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server
        .transport_config(transport.clone())
        // The table is keyed by the peer's address: a connection does not
        // move to another one.
        .migration(false)
        .max_incoming(options.max_incoming_handshakes.max(1));

    let client_crypto = QuicClientConfig::try_from(tls.client_config())
        .map_err(|e| QuicError::Config(format!("client TLS config: {e}")))?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
    client.transport_config(transport);

    let mut endpoint = quinn::EndpointConfig::default();
    endpoint
        .max_udp_payload_size(
            options
                .effective_initial_mtu()
                .clamp(DEFAULT_INITIAL_MTU, MAX_UDP_PAYLOAD),
        )
        .map_err(|e| QuicError::Config(format!("max_udp_payload_size: {e}")))?;
    if let Some(secret) = options.reset_secret {
        endpoint.reset_key(Arc::new(ResetKey::new(&secret)));
        // quinn's default connection IDs carry a hash under a key drawn at
        // start, and packets whose ID fails it are dropped without a reset:
        // a restarted process would never reset its predecessor's
        // connections. Plain random IDs let it.
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| QuicError::Config(format!("no randomness for connection IDs: {e}")))?;
        endpoint.cid_generator(move || Box::new(RandomCids::new(seed)));
    }
    Ok(Built {
        endpoint,
        server,
        client,
    })
}

fn transport_config(options: &QuicOptions) -> Result<TransportConfig, QuicError> {
    let idle = IdleTimeout::try_from(options.idle_timeout)
        .map_err(|_| QuicError::Config("idle_timeout is too long".into()))?;
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(idle))
        .keep_alive_interval(None)
        .initial_mtu(options.effective_initial_mtu())
        .min_mtu(MIN_MTU)
        // Datagrams only: no streams either way, and no flow-control credit
        // for stream data (quinn's defaults offer 1.25 MB per stream and
        // more per connection; credit is not memory, but nothing may use it).
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(0))
        .receive_window(VarInt::from_u32(0))
        .send_window(0)
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER.max(options.max_payload())))
        .datagram_send_buffer_size(DATAGRAM_BUFFER.max(options.max_payload()));
    Ok(t)
}

/// Random 8-byte connection IDs (quinn's length), not tied to the process:
/// any short-header packet for an unknown ID is answered with a stateless
/// reset (quinn rate-limits them to one per 20 ms).
struct RandomCids(SeedRng);

impl RandomCids {
    fn new(seed: [u8; 32]) -> Self {
        Self(SeedRng::from_seed(seed))
    }
}

impl quinn::ConnectionIdGenerator for RandomCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        let mut id = [0u8; 8];
        self.0.fill_bytes(&mut id);
        quinn::ConnectionId::new(&id)
    }

    fn cid_len(&self) -> usize {
        8
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// HMAC-SHA256 under a fixed secret, as quinn's stateless-reset key.
struct ResetKey(Hmac<Sha256>);

impl ResetKey {
    fn new(secret: &[u8; 32]) -> Self {
        // HMAC takes keys of any length: this cannot fail.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts a 32-byte key"));
        Self(mac)
    }
}

impl quinn::crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let tag = self.0.clone().chain_update(data).finalize().into_bytes();
        let n = signature_out.len().min(tag.len());
        signature_out[..n].copy_from_slice(&tag[..n]);
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        self.0
            .clone()
            .chain_update(data)
            .verify_slice(signature)
            .map_err(|_| quinn::crypto::CryptoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_connection_carries_1414_byte_datagrams() {
        assert_eq!(QuicOptions::default().max_payload(), 1414);
        assert_eq!(max_payload_for(MIN_MTU), 1162);
    }

    #[test]
    fn an_initial_mtu_below_the_quic_minimum_is_raised_to_it() {
        let options = QuicOptions {
            initial_mtu: 1000,
            ..QuicOptions::default()
        };
        assert_eq!(options.effective_initial_mtu(), MIN_MTU);
    }

    #[test]
    fn a_reset_key_verifies_its_own_tags_only() {
        use quinn::crypto::HmacKey;
        let key = ResetKey::new(&[7; 32]);
        let mut tag = [0; 32];
        key.sign(b"cid", &mut tag);
        assert!(key.verify(b"cid", &tag).is_ok());
        assert!(key.verify(b"other", &tag).is_err());
        assert!(ResetKey::new(&[8; 32]).verify(b"cid", &tag).is_err());
    }
}
