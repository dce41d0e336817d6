//! The accept loop: incoming handshakes, bounded, beside the driver.
//!
//! Each incoming connection is handshaken in a task of its own, at most
//! `max_incoming_handshakes` at once. Past that, a source that has not
//! proved its address is asked to (a QUIC retry: a spoofed source never
//! answers) and one that has is refused; both are counted in
//! `connections_refused`. A handshake that completes is handed to the
//! transport, which files it in the connection table or refuses it when the
//! table is full; one that TLS refuses is counted and logged once per
//! address.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};

use super::shared::{bump, Shared};
use super::Inbound;

/// Accepts connections on `endpoint` until it closes.
pub(super) async fn run(
    endpoint: quinn::Endpoint,
    inbound: mpsc::Sender<Inbound>,
    shared: Arc<Shared>,
    max_handshakes: usize,
    handshake_timeout: Duration,
) {
    let slots = Arc::new(Semaphore::new(max_handshakes.max(1)));
    while let Some(incoming) = endpoint.accept().await {
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            bump(&shared.connections_refused);
            if incoming.remote_address_validated() {
                incoming.refuse();
            } else if let Err(e) = incoming.retry() {
                e.into_incoming().refuse();
            }
            continue;
        };
        let peer = incoming.remote_address();
        let inbound = inbound.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let connecting = match incoming.accept() {
                Ok(connecting) => connecting,
                Err(error) => {
                    shared.connection_failed(peer, &error);
                    return;
                }
            };
            match tokio::time::timeout(handshake_timeout, connecting).await {
                Ok(Ok(conn)) => {
                    let _ = inbound.send(Inbound::Accepted(conn)).await;
                }
                Ok(Err(error)) => {
                    shared.connection_failed(peer, &error);
                }
                Err(_) => tracing::debug!(%peer, "incoming QUIC handshake timed out"),
            }
        });
    }
}
