//! One peer's task: its connections, its handshake and its queue.
//!
//! The transport hands each datagram for a peer to that peer's task over a
//! bounded channel and never waits. The task holds at most two connections
//! to the peer, the one it opened and the one it accepted, and sends on the
//! newer one that is still up. Two nodes that start talking at once open one
//! each; when both came up within [`RACE_WINDOW`] of each other, both sides
//! keep the one opened by the node with the lower address and close the
//! other (see `Peer::drop_duplicate`), so they agree without a message and
//! an idle pair holds one connection. With no
//! connection up it opens one, in the background, and keeps up to
//! `pending_per_peer` datagrams for it; they leave in order once the
//! handshake completes, or are dropped and counted if it fails.
//!
//! A connection that is lost (reset by a restarted peer, closed, idle) is
//! dropped at once and the next datagram opens a new one. A newly accepted
//! connection replaces the accepted one held (the peer restarted, or lost
//! its side): the old one is closed. The task ends when the transport drops
//! its handle (the peer was forgotten or evicted), closing its connections,
//! or when it has no connection left and none being made; it then tells the
//! transport, which drops its entry.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, ConnectionError, SendDatagramError};
use tokio::sync::mpsc;

use super::shared::{add, bump, Shared};
use super::Inbound;

/// Two connections with a peer that came up at most this far apart were
/// opened at once by both sides; further apart, the older one is the
/// remains of an earlier incarnation of one side, kept until it fails.
pub(super) const RACE_WINDOW: Duration = Duration::from_secs(2);

/// Application close codes on the wire.
pub(super) mod close {
    use quinn::VarInt;
    /// The peer was forgotten, evicted, or the transport shut down.
    pub const GONE: VarInt = VarInt::from_u32(0);
    /// A newer connection from the same address replaced this one.
    pub const REPLACED: VarInt = VarInt::from_u32(1);
    /// The connection table was full.
    pub const BUSY: VarInt = VarInt::from_u32(2);
    /// Both nodes opened a connection; this is the one neither keeps.
    pub const DUPLICATE: VarInt = VarInt::from_u32(3);
}

/// What every peer task needs from the transport.
#[derive(Debug)]
pub(super) struct Context {
    pub endpoint: quinn::Endpoint,
    /// The address the endpoint is bound to (its IP may be unspecified).
    pub local: SocketAddr,
    /// Whether a spare connection of a race is closed: only with a reset
    /// secret, which ends a connection kept by mistake (to a process that
    /// restarted within [`RACE_WINDOW`]) on its first packet. The agent
    /// derives every node's secret from the cookie, so a node that has one
    /// has peers that have one.
    pub close_duplicates: bool,
    pub client: quinn::ClientConfig,
    pub shared: Arc<Shared>,
    pub inbound: mpsc::Sender<Inbound>,
    pub handshake_timeout: Duration,
    pub pending_per_peer: usize,
}

/// The transport's end of a peer task.
#[derive(Debug)]
pub(super) struct PeerHandle {
    /// Datagrams to send.
    pub data: mpsc::Sender<Bytes>,
    /// Connections accepted from the peer.
    pub accepted: mpsc::Sender<Connection>,
    /// Tells this task from a later one for the same address.
    pub id: u64,
    /// When the transport last used the entry (its own tick), for eviction.
    pub last_used: u64,
}

/// Starts the task for the peer at `addr`, checked against `server_name` when
/// connecting, with an accepted connection if that is why it starts.
pub(super) fn spawn(
    ctx: Arc<Context>,
    addr: SocketAddr,
    id: u64,
    server_name: String,
    accepted: Option<Connection>,
    now: u64,
) -> PeerHandle {
    let (data_tx, data_rx) = mpsc::channel(ctx.pending_per_peer.max(1));
    let (accepted_tx, accepted_rx) = mpsc::channel(2);
    let mut peer = Peer {
        ctx,
        addr,
        id,
        server_name,
        opened: None,
        accepted: None,
        connecting: None,
        pending: VecDeque::new(),
        seq: 0,
    };
    if let Some(conn) = accepted {
        peer.adopt(conn);
    }
    tokio::spawn(peer.run(data_rx, accepted_rx));
    PeerHandle {
        data: data_tx,
        accepted: accepted_tx,
        id,
        last_used: now,
    }
}

/// A connection and when it came up, in the task's own order.
struct Up {
    conn: Connection,
    seq: u64,
    at: tokio::time::Instant,
}

/// Why an outgoing connection did not come up.
enum Failure {
    Connection(ConnectionError),
    TimedOut,
}

type Handshake = Pin<Box<dyn Future<Output = Result<Connection, Failure>> + Send>>;

struct Peer {
    ctx: Arc<Context>,
    addr: SocketAddr,
    id: u64,
    server_name: String,
    opened: Option<Up>,
    accepted: Option<Up>,
    connecting: Option<Handshake>,
    pending: VecDeque<Bytes>,
    seq: u64,
}

#[derive(Clone, Copy)]
enum Slot {
    Opened,
    Accepted,
}

impl Peer {
    async fn run(
        mut self,
        mut data: mpsc::Receiver<Bytes>,
        mut accepted: mpsc::Receiver<Connection>,
    ) {
        loop {
            let opened = self.opened.as_ref().map(|u| u.conn.clone());
            let acc = self.accepted.as_ref().map(|u| u.conn.clone());
            tokio::select! {
                biased;
                Some(conn) = accepted.recv() => self.adopt(conn),
                msg = data.recv() => match msg {
                    Some(bytes) => self.send(bytes),
                    None => break,
                },
                result = handshake(&mut self.connecting), if self.connecting.is_some() => {
                    self.connecting = None;
                    self.handshake_done(result);
                }
                error = closed(opened), if self.opened.is_some() => {
                    self.lost(Slot::Opened, &error);
                }
                error = closed(acc), if self.accepted.is_some() => {
                    self.lost(Slot::Accepted, &error);
                }
            }
            if self.opened.is_none() && self.accepted.is_none() && self.connecting.is_none() {
                break;
            }
        }
        self.finish(data);
    }

    /// Closes what is left, counts what was never sent, tells the transport.
    fn finish(mut self, mut data: mpsc::Receiver<Bytes>) {
        for up in [self.opened.take(), self.accepted.take()]
            .into_iter()
            .flatten()
        {
            up.conn.close(close::GONE, b"");
        }
        data.close();
        let mut dropped = self.pending.len() as u64;
        while data.try_recv().is_ok() {
            dropped += 1;
        }
        add(&self.ctx.shared.queue_dropped, dropped);
        // Never wait here: if the transport's channel is full, it finds the
        // entry ended on its next send to the peer, or when making room.
        let _ = self.ctx.inbound.try_send(Inbound::PeerGone {
            addr: self.addr,
            id: self.id,
        });
    }

    /// The newer connection that is still up.
    fn best(&self) -> Option<(Slot, &Connection)> {
        match (live(&self.opened), live(&self.accepted)) {
            (Some(o), Some(a)) if o.seq > a.seq => Some((Slot::Opened, &o.conn)),
            (_, Some(a)) => Some((Slot::Accepted, &a.conn)),
            (Some(o), None) => Some((Slot::Opened, &o.conn)),
            (None, None) => None,
        }
    }

    fn send(&mut self, bytes: Bytes) {
        while let Some((slot, conn)) = self.best() {
            match conn.send_datagram(bytes.clone()) {
                Ok(()) => {
                    bump(&self.ctx.shared.sent);
                    return;
                }
                Err(SendDatagramError::TooLarge) => {
                    let carried = conn.max_datagram_size();
                    self.ctx
                        .shared
                        .too_large_to_send(self.addr, bytes.len(), carried);
                    return;
                }
                Err(SendDatagramError::ConnectionLost(error)) => self.lost(slot, &error),
                Err(e) => {
                    bump(&self.ctx.shared.send_errors);
                    tracing::debug!(peer = %self.addr, error = %e, "QUIC datagram not sent");
                    return;
                }
            }
        }
        if self.pending.len() >= self.ctx.pending_per_peer {
            bump(&self.ctx.shared.queue_dropped);
        } else {
            self.pending.push_back(bytes);
        }
        if self.connecting.is_none() {
            self.connect();
        }
    }

    /// Starts a handshake in the background.
    fn connect(&mut self) {
        let connecting = match self.ctx.endpoint.connect_with(
            self.ctx.client.clone(),
            self.addr,
            &self.server_name,
        ) {
            Ok(connecting) => connecting,
            Err(e) => {
                // A name quinn cannot use, an address of the wrong
                // family, an endpoint shutting down: nothing to wait for.
                add(&self.ctx.shared.send_errors, self.pending.len() as u64);
                self.pending.clear();
                tracing::debug!(peer = %self.addr, error = %e, "cannot connect over QUIC");
                return;
            }
        };
        let limit = self.ctx.handshake_timeout;
        self.connecting = Some(Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(result) => result.map_err(Failure::Connection),
                Err(_) => Err(Failure::TimedOut),
            }
        }));
    }

    fn handshake_done(&mut self, result: Result<Connection, Failure>) {
        match result {
            Ok(conn) => {
                self.seq += 1;
                spawn_reader(conn.clone(), self.ctx.inbound.clone());
                self.opened = Some(Up {
                    conn,
                    seq: self.seq,
                    at: tokio::time::Instant::now(),
                });
                self.drop_duplicate();
                self.flush();
            }
            Err(failure) => {
                match failure {
                    Failure::Connection(error) => {
                        self.ctx.shared.connection_failed(self.addr, &error);
                    }
                    Failure::TimedOut => {
                        tracing::debug!(peer = %self.addr, "QUIC handshake timed out");
                    }
                }
                if self.best().is_none() {
                    add(&self.ctx.shared.queue_dropped, self.pending.len() as u64);
                    self.pending.clear();
                }
            }
        }
    }

    /// A connection accepted from the peer: it replaces the accepted one.
    fn adopt(&mut self, conn: Connection) {
        self.seq += 1;
        spawn_reader(conn.clone(), self.ctx.inbound.clone());
        if let Some(old) = self.accepted.replace(Up {
            conn,
            seq: self.seq,
            at: tokio::time::Instant::now(),
        }) {
            old.conn.close(close::REPLACED, b"");
        }
        self.drop_duplicate();
        self.flush();
    }

    /// With an opened and an accepted connection up that came up within
    /// [`RACE_WINDOW`] of each other, closes the one opened by the node with
    /// the higher address. The peer, holding the same two, closes the same
    /// one, so the pair ends with one connection and neither side waits on
    /// the other's choice. Both stay up (until one fails or idles out) when
    /// our address as the peer sees it is unknown (bound to an unspecified
    /// IP on a platform that does not report a connection's local IP), or
    /// without a shared reset secret.
    fn drop_duplicate(&mut self) {
        if !self.ctx.close_duplicates {
            return;
        }
        let (Some(opened), Some(accepted)) = (live(&self.opened), live(&self.accepted)) else {
            return;
        };
        let apart = if opened.at > accepted.at {
            opened.at - accepted.at
        } else {
            accepted.at - opened.at
        };
        if apart > RACE_WINDOW {
            return;
        }
        let ours = if self.ctx.local.ip().is_unspecified() {
            match opened.conn.local_ip() {
                Some(ip) => SocketAddr::new(ip.to_canonical(), self.ctx.local.port()),
                None => return,
            }
        } else {
            super::canonical(self.ctx.local)
        };
        let spare = match ours.cmp(&self.addr) {
            std::cmp::Ordering::Less => self.accepted.take(),
            std::cmp::Ordering::Greater => self.opened.take(),
            std::cmp::Ordering::Equal => return,
        };
        if let Some(up) = spare {
            up.conn.close(close::DUPLICATE, b"");
        }
    }

    fn lost(&mut self, slot: Slot, error: &ConnectionError) {
        let up = match slot {
            Slot::Opened => self.opened.take(),
            Slot::Accepted => self.accepted.take(),
        };
        if up.is_some() {
            self.ctx.shared.connection_failed(self.addr, error);
        }
    }

    /// Sends what waited for a connection.
    fn flush(&mut self) {
        while let Some(bytes) = self.pending.pop_front() {
            self.send(bytes);
            if self.best().is_none() {
                break;
            }
        }
    }
}

/// The connection held in a slot, if it is still up.
fn live(up: &Option<Up>) -> Option<&Up> {
    up.as_ref().filter(|u| u.conn.close_reason().is_none())
}

async fn handshake(connecting: &mut Option<Handshake>) -> Result<Connection, Failure> {
    match connecting {
        Some(handshake) => handshake.await,
        None => std::future::pending().await,
    }
}

async fn closed(conn: Option<Connection>) -> ConnectionError {
    match conn {
        Some(conn) => conn.closed().await,
        None => std::future::pending().await,
    }
}

/// Hands the connection's datagrams to the transport until it closes.
fn spawn_reader(conn: Connection, inbound: mpsc::Sender<Inbound>) {
    tokio::spawn(async move {
        let from = super::canonical(conn.remote_address());
        while let Ok(bytes) = conn.read_datagram().await {
            if inbound
                .send(Inbound::Datagram { from, bytes })
                .await
                .is_err()
            {
                break;
            }
        }
    });
}
