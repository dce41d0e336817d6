//! Discovery: how a node finds the seeds it announces to.
//!
//! One trait, [`Discovery`], that the runtime asks whenever the node wants
//! seeds ([`Node::poll_discover`](crate::core::Node::poll_discover): at
//! start, then every 5 s while the node has no members, every 30 s while it
//! has some, and at once when it finds itself alone again; the intervals are
//! the core's [`RediscoveryConfig`](crate::core::RediscoveryConfig),
//! configurable). Each result goes to
//! [`Node::handle_discovered`](crate::core::Node::handle_discovered), which
//! announces to every seed that is not already a member, so a cluster forms
//! whatever order its nodes start in.
//!
//! | file | strategy |
//! |------|----------|
//! | [`manual`] | none: the cluster forms only through `rollcall ctl cluster join` |
//! | [`static_seeds`] | a fixed list of node names (`cluster.static.seeds`) |
//! | `dns` | the A, AAAA or SRV records of one name (`cluster.dns`, feature `dns`) |
//! | `etcd` | keys under a prefix, each node's under its own lease (`cluster.etcd`, feature `etcd`) |
//! | `k8s` | a Service's EndpointSlices or Endpoints (`cluster.k8s`, feature `k8s`) |
//! | [`settings`] | what `[cluster.dns]`, `[cluster.etcd]` and `[cluster.k8s]` hold, checked |
//! | [`resolve`] | node name to socket address (port convention, DNS for domain hosts) |
//! | [`task`] | the task that carries the node's requests to the strategy |
//!
//! After `cluster leave` (or a force-leave of this node) the node asks for
//! no seeds and the task unregisters, so the node does not come straight back
//! (emqx #3211); a later `join` registers it again and resumes.

use std::future::Future;

use crate::core::Peer;

#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "k8s")]
pub mod k8s;
pub mod manual;
pub mod resolve;
pub mod settings;
pub mod static_seeds;
pub mod task;

#[cfg(feature = "dns")]
pub use dns::Dns;
#[cfg(feature = "etcd")]
pub use etcd::Etcd;
#[cfg(feature = "k8s")]
pub use k8s::K8s;
pub use manual::Manual;
pub use resolve::{resolve_peer, AddrFamily, ResolveError};
pub use static_seeds::StaticSeeds;

/// Why one round of discovery found nothing. The runtime logs it and tries
/// again on the next round; the node's state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A seed's address could not be worked out.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A DNS lookup failed (no such name, no records, no answer).
    #[cfg(feature = "dns")]
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    /// etcd failed or could not be reached.
    #[cfg(feature = "etcd")]
    #[error(transparent)]
    Etcd(#[from] etcd::EtcdError),
    /// The Kubernetes API refused or failed a request.
    #[cfg(feature = "k8s")]
    #[error(transparent)]
    K8s(#[from] k8s::K8sError),
    /// The strategy's own failure (a service that did not answer, ...).
    #[error("{0}")]
    Other(String),
}

/// A way to find the nodes of the cluster.
///
/// The runtime calls [`register`](Self::register) once at start,
/// [`discover`](Self::discover) whenever the node wants seeds, and
/// [`unregister`](Self::unregister) once when the agent stops. Each runs in
/// a task of its own, so a slow lookup never delays gossip.
pub trait Discovery: Send + 'static {
    /// The strategy's name, as `cluster.discovery_strategy` spells it.
    fn name(&self) -> &'static str;

    /// The nodes to announce to now (this node may be among them; it is
    /// ignored). An empty list is a valid answer.
    fn discover(&mut self) -> impl Future<Output = Result<Vec<Peer>, DiscoveryError>> + Send;

    /// Makes this node findable by others (for registries such as etcd).
    /// Does nothing by default.
    fn register(&mut self) -> impl Future<Output = Result<(), DiscoveryError>> + Send {
        async { Ok(()) }
    }

    /// Withdraws what [`register`](Self::register) published. Does nothing by
    /// default.
    fn unregister(&mut self) -> impl Future<Output = Result<(), DiscoveryError>> + Send {
        async { Ok(()) }
    }
}
