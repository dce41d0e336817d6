//! What the QUIC transport's tasks share: counters, and the memory of which
//! refused peers have been logged.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use quinn::ConnectionError;

use crate::runtime::transport::TransportStats;

/// Refused addresses remembered for the log; when full the set is cleared,
/// so a peer refused again is logged again at most once per this many
/// distinct refused addresses.
pub(super) const MAX_LOGGED_REFUSALS: usize = 1024;

/// Counters the transport and its tasks bump, and the log-once memory.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub received: AtomicU64,
    pub too_large: AtomicU64,
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub handshakes_refused: AtomicU64,
    pub queue_dropped: AtomicU64,
    pub too_large_sent: AtomicU64,
    pub connections_refused: AtomicU64,
    pub unreachable: AtomicU64,
    pub other_errors: AtomicU64,
    refusals_logged: Mutex<HashSet<SocketAddr>>,
    too_large_logged: AtomicBool,
}

/// Adds one to a counter.
pub(super) fn bump(counter: &AtomicU64) {
    add(counter, 1);
}

/// Adds `n` to a counter.
pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Shared {
    /// The counters as [`TransportStats`].
    pub fn stats(&self) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            received: get(&self.received),
            too_large: get(&self.too_large),
            sent: get(&self.sent),
            send_errors: get(&self.send_errors),
            handshakes_refused: get(&self.handshakes_refused),
            queue_dropped: get(&self.queue_dropped),
            too_large_sent: get(&self.too_large_sent),
            connections_refused: get(&self.connections_refused),
            unreachable: get(&self.unreachable),
            other_errors: get(&self.other_errors),
            ..TransportStats::default()
        }
    }

    /// A connection with `peer` ended with `error`: counts and logs (once
    /// per address) a TLS refusal, and says whether it was one.
    pub fn connection_failed(&self, peer: SocketAddr, error: &ConnectionError) -> bool {
        if !is_tls_refusal(error) {
            tracing::debug!(%peer, %error, "QUIC connection ended");
            return false;
        }
        bump(&self.handshakes_refused);
        let first = {
            let mut logged = self
                .refusals_logged
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if logged.len() >= MAX_LOGGED_REFUSALS {
                logged.clear();
            }
            logged.insert(peer)
        };
        if first {
            tracing::warn!(
                %peer,
                %error,
                "QUIC handshake refused (certificate or protocol); logged once per address, \
                 counted in handshakes_refused"
            );
        } else {
            tracing::debug!(%peer, %error, "QUIC handshake refused");
        }
        true
    }

    /// A datagram was larger than a connection carries: counts it, logs the
    /// first one.
    pub fn too_large_to_send(&self, peer: SocketAddr, len: usize, carried: Option<usize>) {
        bump(&self.too_large_sent);
        if !self.too_large_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                %peer,
                len,
                carried,
                "a datagram was larger than the QUIC connection carries and was not sent \
                 (logged once, counted in too_large_sent): the node's max_datagram_size \
                 exceeds the transport's max_payload, or the path's MTU fell"
            );
        }
    }
}

/// Whether a connection ended because TLS refused it: a crypto error code
/// (a TLS alert: bad or unknown certificate, expired, no certificate, no
/// common ALPN), raised here or sent by the peer.
pub(super) fn is_tls_refusal(error: &ConnectionError) -> bool {
    let code = match error {
        ConnectionError::TransportError(e) => e.code,
        ConnectionError::ConnectionClosed(close) => close.error_code,
        _ => return false,
    };
    (0x100..0x200).contains(&u64::from(code))
}
