//! The Kubernetes strategy (`cluster.k8s`): the nodes are the endpoints of
//! one Service.
//!
//! Each round lists the Service's EndpointSlices (`discovery.k8s.io/v1`,
//! label `kubernetes.io/service-name=<service>`); an API server without
//! EndpointSlices (404) is asked for the Service's Endpoints instead. Every
//! ready address becomes a node name, as EMQX builds them
//! (`cluster.k8s.address_type`):
//!
//! | type | node name |
//! |------|-----------|
//! | `ip` | `name@10.0.0.1` |
//! | `dns` | `name@10-0-0-1.<namespace>.<suffix>` |
//! | `hostname` | `name@<pod hostname>.<service>.<namespace>.<suffix>` |
//!
//! where `name` is this node's name part; each gossips on the port
//! convention at the endpoint's IP. In a pod the service account's token
//! and CA (`/var/run/secrets/kubernetes.io/serviceaccount/`) are used when
//! present. A 403 (the pod may not read endpoints) and a 404 (no such
//! Service) are errors that say what is missing.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::{Client, Config};

use crate::core::{NodeName, Peer};

use super::settings::{K8sAddressType, K8sConfig};
use super::{Discovery, DiscoveryError, ResolveError};

/// Where a pod finds its service account's credentials.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How long one request to the API server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a Kubernetes round failed, or the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// `cluster.k8s.apiserver` is not a URL the client accepts.
    #[error("cluster.k8s.apiserver {url:?} is not a valid URL: {message}")]
    BadUrl {
        /// The configured URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The client could not be built (TLS setup).
    #[error("cannot build the Kubernetes client: {0}")]
    Client(kube::Error),
    /// The service account may not read what discovery needs (RBAC).
    #[error(
        "forbidden to list {resource} in namespace {namespace}: grant the pod's service account \
         get and list on endpoints and endpointslices (a Role and RoleBinding, see \
         examples/k8s/rbac.yaml): {message}"
    )]
    Forbidden {
        /// `endpointslices` or `endpoints`.
        resource: &'static str,
        /// The namespace.
        namespace: String,
        /// The API server's message.
        message: String,
    },
    /// The Service has no Endpoints (and the server has no EndpointSlices).
    #[error(
        "service {namespace}/{service} not found: no Endpoints of that name (check \
         cluster.k8s.service_name and cluster.k8s.namespace): {message}"
    )]
    NotFound {
        /// The Service.
        service: String,
        /// Its namespace.
        namespace: String,
        /// The API server's message.
        message: String,
    },
    /// Any other failure: unreachable server, unexpected answer.
    #[error("kubernetes api {what} failed: {error}")]
    Api {
        /// What was asked.
        what: &'static str,
        /// The client's error.
        error: kube::Error,
    },
    /// The server did not answer in time.
    #[error("kubernetes api {what} timed out after {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout {
        /// What was asked.
        what: &'static str,
    },
}

/// An endpoint address as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointAddr {
    /// The pod's IP.
    pub ip: IpAddr,
    /// The pod's hostname, when the Service gives one (StatefulSet pods).
    pub hostname: Option<String>,
}

/// Finds nodes among a Service's endpoints.
pub struct K8s {
    client: Client,
    config: K8sConfig,
    me: NodeName,
    base_port: u16,
    /// Whether the server answered 404 to EndpointSlices once already.
    no_slices: bool,
}

impl std::fmt::Debug for K8s {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8s")
            .field("config", &self.config)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl K8s {
    /// A strategy for node `me` with ports by the convention from
    /// `base_port`. Uses the service account's token and CA when this runs
    /// in a pod; does not contact the API server yet.
    pub fn new(config: K8sConfig, me: NodeName, base_port: u16) -> Result<Self, K8sError> {
        Self::with_credentials(config, me, base_port, Path::new(SERVICE_ACCOUNT_DIR))
    }

    /// [`new`](Self::new), taking the token and CA from `dir` (when there).
    pub fn with_credentials(
        config: K8sConfig,
        me: NodeName,
        base_port: u16,
        dir: &Path,
    ) -> Result<Self, K8sError> {
        let url = config.apiserver.parse().map_err(|e| K8sError::BadUrl {
            url: config.apiserver.clone(),
            message: format!("{e}"),
        })?;
        let mut kube = Config::new(url);
        kube.default_namespace = config.namespace.clone();
        kube.read_timeout = Some(REQUEST_TIMEOUT);
        let token = dir.join("token");
        if token.is_file() {
            kube.auth_info.token_file = Some(token.display().to_string());
        }
        let ca = dir.join("ca.crt");
        if ca.is_file() {
            kube.root_cert_file = Some(ca);
        }
        let client = Client::try_from(kube).map_err(K8sError::Client)?;
        Ok(Self {
            client,
            config,
            me,
            base_port,
            no_slices: false,
        })
    }

    /// The ready addresses of the Service's EndpointSlices; `None` if the
    /// server has no EndpointSlices (404).
    async fn slices(&self) -> Result<Option<Vec<EndpointAddr>>, K8sError> {
        const WHAT: &str = "list endpointslices";
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &self.config.namespace);
        let selector = format!("kubernetes.io/service-name={}", self.config.service_name);
        let list = match timed(api.list(&ListParams::default().labels(&selector))).await {
            Ok(list) => list,
            Err(TimedError::Kube(kube::Error::Api(status))) if status.code == 404 => {
                return Ok(None)
            }
            Err(e) => return Err(self.classify(WHAT, "endpointslices", e)),
        };
        Ok(Some(slice_addrs(&list.items)))
    }

    /// The ready addresses of the Service's Endpoints.
    async fn endpoints(&self) -> Result<Vec<EndpointAddr>, K8sError> {
        const WHAT: &str = "get endpoints";
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &self.config.namespace);
        let endpoints = match timed(api.get(&self.config.service_name)).await {
            Ok(e) => e,
            Err(e) => return Err(self.classify(WHAT, "endpoints", e)),
        };
        Ok(endpoints_addrs(endpoints))
    }

    fn classify(&self, what: &'static str, resource: &'static str, e: TimedError) -> K8sError {
        match e {
            TimedError::Timeout => K8sError::Timeout { what },
            TimedError::Kube(kube::Error::Api(status)) if status.code == 403 => {
                K8sError::Forbidden {
                    resource,
                    namespace: self.config.namespace.clone(),
                    message: status.message,
                }
            }
            TimedError::Kube(kube::Error::Api(status)) if status.code == 404 => {
                K8sError::NotFound {
                    service: self.config.service_name.clone(),
                    namespace: self.config.namespace.clone(),
                    message: status.message,
                }
            }
            TimedError::Kube(error) => K8sError::Api { what, error },
        }
    }
}

impl Discovery for K8s {
    fn name(&self) -> &'static str {
        "k8s"
    }

    async fn discover(&mut self) -> Result<Vec<Peer>, DiscoveryError> {
        let addrs = if self.no_slices {
            self.endpoints().await?
        } else {
            match self.slices().await? {
                Some(addrs) => addrs,
                None => {
                    tracing::info!(
                        "k8s: the API server has no EndpointSlices; reading Endpoints instead"
                    );
                    self.no_slices = true;
                    self.endpoints().await?
                }
            }
        };
        endpoint_peers(&self.config, &self.me, self.base_port, &addrs)
    }
}

/// The ready addresses of some EndpointSlices, with each endpoint's
/// hostname (or its pod's name): FQDN slices, endpoints not ready and
/// addresses that are not IPs are left out.
pub fn slice_addrs(slices: &[EndpointSlice]) -> Vec<EndpointAddr> {
    let mut found = Vec::new();
    for slice in slices {
        if slice.address_type == "FQDN" {
            continue;
        }
        for endpoint in &slice.endpoints {
            let ready = endpoint.conditions.as_ref().and_then(|c| c.ready);
            if ready == Some(false) {
                continue;
            }
            let hostname = endpoint
                .hostname
                .clone()
                .or_else(|| pod_name(&endpoint.target_ref));
            found.extend(endpoint.addresses.iter().filter_map(|a| {
                Some(EndpointAddr {
                    ip: a.parse().ok()?,
                    hostname: hostname.clone(),
                })
            }));
        }
    }
    found
}

/// The ready addresses of an Endpoints object (its subsets' `addresses`,
/// not `notReadyAddresses`), with each one's hostname (or its pod's
/// name); addresses that are not IPs are left out.
pub fn endpoints_addrs(endpoints: Endpoints) -> Vec<EndpointAddr> {
    endpoints
        .subsets
        .unwrap_or_default()
        .into_iter()
        .flat_map(|s| s.addresses.unwrap_or_default())
        .filter_map(|a| {
            Some(EndpointAddr {
                ip: a.ip.parse().ok()?,
                hostname: a.hostname.or_else(|| pod_name(&a.target_ref)),
            })
        })
        .collect()
}

/// The peers `addrs` stand for: each named by [`node_host`] under `me`'s
/// name part, at the port convention from `base_port`, sorted by name,
/// without duplicates. An endpoint with no hostname (when the address
/// type needs one) or whose host makes no node name is skipped with a
/// warning; a name whose port is out of range is an error.
pub fn endpoint_peers(
    config: &K8sConfig,
    me: &NodeName,
    base_port: u16,
    addrs: &[EndpointAddr],
) -> Result<Vec<Peer>, DiscoveryError> {
    let mut peers = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let Some(host) = node_host(config, addr) else {
            tracing::warn!("k8s: endpoint {} has no hostname; skipped", addr.ip);
            continue;
        };
        let name = match me.with_host(&host) {
            Ok(name) => name,
            Err(e) => {
                tracing::warn!("k8s: endpoint {} skipped: {e}", addr.ip);
                continue;
            }
        };
        let port = name.port(base_port).map_err(ResolveError::from)?;
        peers.push(Peer::new(name, SocketAddr::new(addr.ip, port)));
    }
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    peers.dedup();
    Ok(peers)
}

/// The host part of an endpoint's node name, by `config.address_type`;
/// `None` for `hostname` when the endpoint has none.
pub fn node_host(config: &K8sConfig, addr: &EndpointAddr) -> Option<String> {
    let ns = &config.namespace;
    let suffix = &config.suffix;
    match config.address_type {
        K8sAddressType::Ip => Some(addr.ip.to_string()),
        K8sAddressType::Dns => {
            let dashed = addr.ip.to_string().replace(['.', ':'], "-");
            Some(format!("{dashed}.{ns}.{suffix}"))
        }
        K8sAddressType::Hostname => {
            let hostname = addr.hostname.as_deref().filter(|h| !h.is_empty())?;
            Some(format!("{hostname}.{}.{ns}.{suffix}", config.service_name))
        }
    }
}

/// A pod's name from an endpoint's reference, for endpoints without a
/// hostname.
fn pod_name(target: &Option<k8s_openapi::api::core::v1::ObjectReference>) -> Option<String> {
    let target = target.as_ref()?;
    if target.kind.as_deref() == Some("Pod") {
        target.name.clone()
    } else {
        None
    }
}

/// A failed request: the client's error, or no answer in time.
enum TimedError {
    Kube(kube::Error),
    Timeout,
}

async fn timed<T>(
    request: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, TimedError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(TimedError::Kube(e)),
        Err(_) => Err(TimedError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(address_type: K8sAddressType) -> K8sConfig {
        K8sConfig {
            apiserver: "http://127.0.0.1:1".into(),
            service_name: "rollcall".into(),
            namespace: "prod".into(),
            address_type,
            suffix: "pod.local".into(),
        }
    }

    fn addr(ip: &str, hostname: Option<&str>) -> EndpointAddr {
        EndpointAddr {
            ip: ip.parse().unwrap(),
            hostname: hostname.map(str::to_owned),
        }
    }

    #[test]
    fn address_type_ip_names_the_node_by_its_pod_ip() {
        let host = node_host(&config(K8sAddressType::Ip), &addr("10.0.0.1", None));
        assert_eq!(host.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn address_type_dns_dashes_the_ip_under_namespace_and_suffix() {
        let host = node_host(&config(K8sAddressType::Dns), &addr("10.0.0.1", None));
        assert_eq!(host.as_deref(), Some("10-0-0-1.prod.pod.local"));
        let host = node_host(&config(K8sAddressType::Dns), &addr("fd00::1", None));
        assert_eq!(host.as_deref(), Some("fd00--1.prod.pod.local"));
    }

    #[test]
    fn address_type_hostname_uses_pod_hostname_service_namespace_and_suffix() {
        let c = config(K8sAddressType::Hostname);
        let host = node_host(&c, &addr("10.0.0.1", Some("rollcall-0")));
        assert_eq!(host.as_deref(), Some("rollcall-0.rollcall.prod.pod.local"));
        assert_eq!(node_host(&c, &addr("10.0.0.1", None)), None);
    }

    #[test]
    fn every_address_type_gives_a_valid_node_name() {
        let me: NodeName = "rc@self.example".parse().unwrap();
        for t in [
            K8sAddressType::Ip,
            K8sAddressType::Dns,
            K8sAddressType::Hostname,
        ] {
            let host = node_host(&config(t), &addr("10.0.0.1", Some("rollcall-0"))).unwrap();
            let name = me.with_host(&host).unwrap();
            assert_eq!(name.name_part(), "rc");
        }
    }

    #[test]
    fn ready_addresses_of_slices_and_endpoints_become_sorted_peers() {
        let slice: EndpointSlice = serde_json::from_str(
            r#"{"metadata":{},"addressType":"IPv4","endpoints":[
                {"addresses":["10.0.0.2"],"targetRef":{"kind":"Pod","name":"rollcall-1"}},
                {"addresses":["10.0.0.3"],"conditions":{"ready":false}},
                {"addresses":["not an ip"],"hostname":"x"}]}"#,
        )
        .unwrap();
        let from_slice = slice_addrs(&[slice]);
        assert_eq!(from_slice, [addr("10.0.0.2", Some("rollcall-1"))]);
        let endpoints: Endpoints = serde_json::from_str(
            r#"{"metadata":{},"subsets":[{"addresses":[
                {"ip":"10.0.0.2","hostname":"rollcall-1"},{"ip":"10.0.0.1"}],
                "notReadyAddresses":[{"ip":"10.0.0.3"}]}]}"#,
        )
        .unwrap();
        let addrs = endpoints_addrs(endpoints);
        assert_eq!(addrs.len(), 2);
        let me: NodeName = "rc@self.example".parse().unwrap();
        let peers = endpoint_peers(&config(K8sAddressType::Ip), &me, 4370, &addrs).unwrap();
        let names: Vec<_> = peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["rc@10.0.0.1", "rc@10.0.0.2"]);
        let by_host = endpoint_peers(&config(K8sAddressType::Hostname), &me, 4370, &addrs);
        assert_eq!(
            by_host.unwrap().len(),
            1,
            "the endpoint without a hostname is skipped"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_bad_apiserver_url_is_an_error_not_a_panic() {
        let mut c = config(K8sAddressType::Ip);
        c.apiserver = "http://exa mple".into();
        let e = K8s::new(c, "rc@127.0.0.1".parse().unwrap(), 4370).unwrap_err();
        assert!(e.to_string().contains("cluster.k8s.apiserver"), "{e}");
    }
}
