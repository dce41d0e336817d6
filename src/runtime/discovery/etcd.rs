//! The etcd strategy (`cluster.etcd`): every node registers itself under a
//! lease, and the nodes are the keys under the cluster's prefix.
//!
//! Keys are `/<prefix>/<cluster name>/nodes/<node name>` (as EMQX lays them
//! out), each holding `{"name": .., "addr": ..}` and attached to a lease of
//! `node_ttl`. A background task keeps the lease alive; if the lease is lost
//! (etcd restarted without its data, or unreachable longer than the TTL) it
//! grants a new one and puts the key again, backing off while etcd is away.
//! A node that crashes stops renewing, so its key disappears when the lease
//! expires. [`unregister`](Discovery::unregister) deletes the key and revokes
//! the lease.
//!
//! etcd being unreachable is never fatal: each failed round is a
//! [`DiscoveryError`] and the node keeps running on the membership it has.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, PutOptions, TlsOptions,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::core::{NodeName, Peer};

use super::resolve::{resolve_peer, AddrFamily};
use super::settings::{EtcdConfig, EtcdTls};
use super::{Discovery, DiscoveryError};

/// How long one request to etcd may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long connecting to an etcd endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait before registering again after a failure; it doubles up
/// to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts to register.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why an etcd round failed, or the strategy could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// A TLS file could not be read (at start; nothing was started).
    #[error("cannot read {key} {path}: {error}")]
    TlsFile {
        /// The config key (`cluster.etcd.ssl.cacertfile`, ...).
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// etcd refused or failed a request (or could not be reached).
    #[error("etcd {what} failed: {error}")]
    Request {
        /// What was asked (`get`, `put`, `lease grant`, ...).
        what: &'static str,
        /// The client's error.
        error: etcd_client::Error,
    },
    /// etcd did not answer in time.
    #[error("etcd {what} timed out after {} s (servers: {servers})", REQUEST_TIMEOUT.as_secs())]
    Timeout {
        /// What was asked.
        what: &'static str,
        /// The configured servers.
        servers: String,
    },
}

/// What a node's key holds.
#[derive(Debug, Serialize, Deserialize)]
struct Registration {
    name: NodeName,
    addr: SocketAddr,
}

/// Registers this node in etcd and finds the others there.
pub struct Etcd {
    servers: Vec<String>,
    options: ConnectOptions,
    node_ttl: Duration,
    /// `/<prefix>/<cluster>/nodes/`.
    dir: String,
    /// `dir` + this node's name.
    key: String,
    /// This node's [`Registration`], as JSON.
    value: String,
    base_port: u16,
    family: AddrFamily,
    client: Option<Client>,
    keeper: Option<JoinHandle<()>>,
    /// The lease this node's key is attached to (0: none yet).
    lease: Arc<AtomicI64>,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("servers", &self.servers)
            .field("key", &self.key)
            .field("node_ttl", &self.node_ttl)
            .finish_non_exhaustive()
    }
}

impl Etcd {
    /// A strategy for node `me` of cluster `cluster`, reachable at
    /// `advertise`. Keys without an address (written by something else)
    /// resolve by the port convention from `base_port`, to `family`.
    ///
    /// Reads the TLS files now, so a missing one fails the start; does not
    /// contact etcd yet.
    pub fn new(
        config: EtcdConfig,
        cluster: &str,
        me: NodeName,
        advertise: SocketAddr,
        base_port: u16,
        family: AddrFamily,
    ) -> Result<Self, EtcdError> {
        let mut options = ConnectOptions::new().with_connect_timeout(CONNECT_TIMEOUT);
        if let Some(ssl) = &config.ssl {
            options = options.with_tls(tls_options(ssl)?);
        }
        let dir = nodes_dir(&config.prefix, cluster);
        let key = format!("{dir}{me}");
        let value = serde_json::to_string(&Registration {
            name: me,
            addr: advertise,
        })
        .unwrap_or_default();
        Ok(Self {
            servers: config.servers,
            options,
            node_ttl: config.node_ttl,
            dir,
            key,
            value,
            base_port,
            family,
            client: None,
            keeper: None,
            lease: Arc::new(AtomicI64::new(0)),
        })
    }

    /// This node's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A client (connected lazily: the channel reconnects by itself).
    async fn client(&mut self) -> Result<Client, EtcdError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let servers = self.servers.join(",");
        let client = timed(
            "connect",
            &servers,
            Client::connect(&self.servers, Some(self.options.clone())),
        )
        .await?;
        self.client = Some(client.clone());
        Ok(client)
    }

    fn stop_keeper(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.abort();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop_keeper();
    }
}

impl Discovery for Etcd {
    fn name(&self) -> &'static str {
        "etcd"
    }

    async fn discover(&mut self) -> Result<Vec<Peer>, DiscoveryError> {
        let mut client = self.client().await?;
        let servers = self.servers.join(",");
        let found = timed(
            "get",
            &servers,
            client.get(self.dir.as_str(), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let mut peers = Vec::with_capacity(found.kvs().len());
        for kv in found.kvs() {
            let (Ok(key), value) = (kv.key_str(), kv.value()) else {
                continue;
            };
            match serde_json::from_slice::<Registration>(value) {
                Ok(r) => peers.push(Peer::new(r.name, r.addr)),
                // Not ours: the key's last segment may still be a node name.
                Err(_) => {
                    let name = key.strip_prefix(self.dir.as_str()).unwrap_or(key);
                    match name.parse::<NodeName>() {
                        Ok(name) => match resolve_peer(&name, self.base_port, self.family).await {
                            Ok(peer) => peers.push(peer),
                            Err(e) => tracing::warn!("etcd: {key} skipped: {e}"),
                        },
                        Err(e) => tracing::warn!("etcd: {key} skipped: {e}"),
                    }
                }
            }
        }
        Ok(peers)
    }

    async fn register(&mut self) -> Result<(), DiscoveryError> {
        self.stop_keeper();
        let registered = match self.client().await {
            Ok(mut client) => {
                let servers = self.servers.join(",");
                put_with_lease(&mut client, &servers, &self.key, &self.value, self.node_ttl).await
            }
            Err(e) => Err(e),
        };
        let first = match &registered {
            Ok(lease) => {
                self.lease.store(*lease, Ordering::Relaxed);
                Some(*lease)
            }
            Err(_) => None,
        };
        // Keep the key alive, or keep trying to put it, in the background.
        self.keeper = Some(tokio::spawn(keep_registered(
            Registrar {
                servers: self.servers.clone(),
                options: self.options.clone(),
                key: self.key.clone(),
                value: self.value.clone(),
                ttl: self.node_ttl,
            },
            self.client.clone(),
            first,
            self.lease.clone(),
        )));
        registered.map(|_| ()).map_err(Into::into)
    }

    async fn unregister(&mut self) -> Result<(), DiscoveryError> {
        self.stop_keeper();
        let lease = self.lease.swap(0, Ordering::Relaxed);
        let mut client = self.client().await?;
        let servers = self.servers.join(",");
        timed("delete", &servers, client.delete(self.key.as_str(), None)).await?;
        if lease != 0 {
            // Deleted already; a revoke that fails only leaves a lease to expire.
            if let Err(e) = timed("lease revoke", &servers, client.lease_revoke(lease)).await {
                tracing::debug!("etcd: {e}");
            }
        }
        Ok(())
    }
}

/// `/<prefix>/<cluster>/nodes/`.
pub fn nodes_dir(prefix: &str, cluster: &str) -> String {
    format!("/{}/{cluster}/nodes/", prefix.trim_matches('/'))
}

/// Grants a lease of `ttl` and puts `key` under it; returns the lease.
async fn put_with_lease(
    client: &mut Client,
    servers: &str,
    key: &str,
    value: &str,
    ttl: Duration,
) -> Result<i64, EtcdError> {
    let seconds = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
    let lease = timed("lease grant", servers, client.lease_grant(seconds, None))
        .await?
        .id();
    let put = PutOptions::new().with_lease(lease);
    timed("put", servers, client.put(key, value, Some(put))).await?;
    Ok(lease)
}

/// What the background task needs to (re)register this node.
struct Registrar {
    servers: Vec<String>,
    options: ConnectOptions,
    key: String,
    value: String,
    ttl: Duration,
}

/// Keeps `first` (or, when lost, a new lease) alive with the key on it,
/// until aborted; connects first if `client` is `None`.
async fn keep_registered(
    r: Registrar,
    mut client: Option<Client>,
    first: Option<i64>,
    current: Arc<AtomicI64>,
) {
    let servers = r.servers.join(",");
    let mut lease = first;
    let mut backoff = MIN_BACKOFF;
    loop {
        let attempt = async {
            let c = match &mut client {
                Some(c) => c,
                None => client.insert(
                    timed(
                        "connect",
                        &servers,
                        Client::connect(&r.servers, Some(r.options.clone())),
                    )
                    .await?,
                ),
            };
            match lease.take() {
                Some(id) => Ok((c.clone(), id)),
                None => {
                    let id = put_with_lease(c, &servers, &r.key, &r.value, r.ttl).await?;
                    tracing::info!("etcd: registered {}", r.key);
                    Ok::<_, EtcdError>((c.clone(), id))
                }
            }
        };
        let (mut c, id) = match attempt.await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(
                    "etcd: cannot register {}: {e}; retrying in {backoff:?}",
                    r.key
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        current.store(id, Ordering::Relaxed);
        backoff = MIN_BACKOFF;
        let why = keep_alive(&mut c, &servers, id, r.ttl).await;
        tracing::warn!("etcd: lease of {} lost ({why}); registering again", r.key);
        tokio::time::sleep(MIN_BACKOFF).await;
    }
}

/// Renews `lease` every third of `ttl`; returns why it stopped.
async fn keep_alive(client: &mut Client, servers: &str, lease: i64, ttl: Duration) -> String {
    let every = (ttl / 3).max(Duration::from_millis(300));
    let (mut keeper, mut stream) =
        match timed("lease keep-alive", servers, client.lease_keep_alive(lease)).await {
            Ok(pair) => pair,
            Err(e) => return e.to_string(),
        };
    loop {
        if let Err(e) = timed("lease keep-alive", servers, keeper.keep_alive()).await {
            return e.to_string();
        }
        match timed("lease keep-alive", servers, stream.message()).await {
            Ok(Some(answer)) if answer.ttl() > 0 => {}
            Ok(Some(_)) => return "etcd no longer knows the lease".to_owned(),
            Ok(None) => return "the keep-alive stream ended".to_owned(),
            Err(e) => return e.to_string(),
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs one request with [`REQUEST_TIMEOUT`].
async fn timed<T>(
    what: &'static str,
    servers: &str,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, EtcdError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(error)) => Err(EtcdError::Request { what, error }),
        Err(_) => Err(EtcdError::Timeout {
            what,
            servers: servers.to_owned(),
        }),
    }
}

fn tls_options(ssl: &EtcdTls) -> Result<TlsOptions, EtcdError> {
    let read = |key: &'static str, path: &Path| {
        std::fs::read(path).map_err(|error| EtcdError::TlsFile {
            key,
            path: path.to_owned(),
            error,
        })
    };
    let mut tls = TlsOptions::new();
    if let Some(ca) = &ssl.cacertfile {
        tls = tls.ca_certificate(Certificate::from_pem(read(
            "cluster.etcd.ssl.cacertfile",
            ca,
        )?));
    }
    if let (Some(cert), Some(key)) = (&ssl.certfile, &ssl.keyfile) {
        let cert = read("cluster.etcd.ssl.certfile", cert)?;
        let key = read("cluster.etcd.ssl.keyfile", key)?;
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_emqx_layout_whatever_slashes_the_prefix_has() {
        assert_eq!(nodes_dir("emqxcl", "emqxcl"), "/emqxcl/emqxcl/nodes/");
        assert_eq!(nodes_dir("/a/b/", "rc"), "/a/b/rc/nodes/");
    }

    #[test]
    fn a_registration_round_trips_as_small_json() {
        let r = Registration {
            name: "rc@10.0.0.1".parse().unwrap(),
            addr: "10.0.0.1:4370".parse().unwrap(),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"name":"rc@10.0.0.1","addr":"10.0.0.1:4370"}"#);
        let back: Registration = serde_json::from_str(&text).unwrap();
        assert_eq!(back.name, r.name);
    }

    #[test]
    fn a_missing_tls_file_is_an_error_naming_its_key() {
        let ssl = EtcdTls {
            cacertfile: Some("/nonexistent/ca.pem".into()),
            ..EtcdTls::default()
        };
        let e = tls_options(&ssl).unwrap_err().to_string();
        assert!(e.contains("cluster.etcd.ssl.cacertfile"), "{e}");
    }
}
