//! What the automatic strategies are configured with: the `[cluster.dns]`,
//! `[cluster.etcd]` and `[cluster.k8s]` tables, parsed and checked.
//!
//! These types are compiled whatever the features, so a config file that
//! names a strategy left out of the build still parses (and the agent then
//! says which feature is missing). The checks run only for the strategy
//! `cluster.discovery_strategy` picks, as EMQX ignores the tables of the
//! others; each error names its key.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The DNS port used when `cluster.dns.server` gives none.
pub const DNS_PORT: u16 = 53;

/// The API server used when `cluster.k8s.apiserver` is not set: the one
/// every pod reaches.
pub const DEFAULT_APISERVER: &str = "https://kubernetes.default.svc:443";

/// Which records `cluster.dns.name` is looked up as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsRecordType {
    /// IPv4 addresses: each one is `<name part>@<ip>` at the port convention.
    #[default]
    #[serde(alias = "A")]
    A,
    /// IPv6 addresses: each one is `<name part>@<ip>` at the port convention.
    #[serde(alias = "AAAA")]
    Aaaa,
    /// Service records: each target is `<name part>@<target>` at the
    /// record's port.
    #[serde(alias = "SRV")]
    Srv,
}

/// `[cluster.dns]`: find nodes through DNS records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// `name`: the domain name to look up (required).
    pub name: String,
    /// `record_type`: `a` (default), `aaaa` or `srv`.
    pub record_type: DnsRecordType,
    /// `server`: the DNS server to ask, `ip` or `ip:port`; the system
    /// resolver when absent.
    pub server: Option<SocketAddr>,
}

/// `[cluster.etcd]`: register in, and find nodes through, an etcd cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `server`: the etcd endpoints, `http://` or `https://` URLs,
    /// comma-separated in the file (required).
    pub servers: Vec<String>,
    /// `prefix`: the first segment of every key (default `rollcall`); keys
    /// are `/<prefix>/<cluster name>/nodes/<node name>`.
    pub prefix: String,
    /// `node_ttl`: the lease on this node's key; the key disappears this
    /// long after the node stops renewing it (default 1m, at least 1s).
    pub node_ttl: Duration,
    /// `ssl`: TLS to the etcd servers (which must then be `https://`).
    pub ssl: Option<EtcdTls>,
}

/// `[cluster.etcd.ssl]`: PEM files for TLS to etcd.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdTls {
    /// `certfile`: this node's client certificate (with `keyfile`).
    pub certfile: Option<PathBuf>,
    /// `keyfile`: the client certificate's private key (with `certfile`).
    pub keyfile: Option<PathBuf>,
    /// `cacertfile`: the CA that signed the servers' certificates
    /// (required: no system roots are built in).
    pub cacertfile: Option<PathBuf>,
}

/// How a Kubernetes endpoint becomes a node name (`cluster.k8s.address_type`),
/// as EMQX defines it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum K8sAddressType {
    /// `name@10.0.0.1` (the default).
    #[default]
    Ip,
    /// `name@10-0-0-1.<namespace>.<suffix>`.
    Dns,
    /// `name@<pod hostname>.<service>.<namespace>.<suffix>`.
    Hostname,
}

/// `[cluster.k8s]`: find nodes through a Service's endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sConfig {
    /// `apiserver`: the API server's URL (default
    /// [`DEFAULT_APISERVER`]).
    pub apiserver: String,
    /// `service_name`: the (headless) Service whose endpoints are the nodes
    /// (required).
    pub service_name: String,
    /// `namespace`: the Service's namespace (default `default`).
    pub namespace: String,
    /// `address_type`: `ip` (default), `dns` or `hostname`.
    pub address_type: K8sAddressType,
    /// `suffix`: the domain after the namespace for `dns` and `hostname`
    /// (default `pod.local`).
    pub suffix: String,
}

/// A key and what is wrong with it (`("cluster.dns.name", "is required")`).
pub type KeyError = (String, String);

fn key_error(key: &str, message: impl Into<String>) -> KeyError {
    (key.to_owned(), message.into())
}

/// `[cluster.dns]` as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDns {
    name: Option<String>,
    record_type: DnsRecordType,
    server: Option<String>,
}

impl RawDns {
    /// Checks the table for `discovery_strategy = "dns"`.
    pub fn validate(self) -> Result<DnsConfig, KeyError> {
        let name = required("cluster.dns.name", self.name)?;
        let name = name.trim().to_owned();
        if name.contains(char::is_whitespace) || name.starts_with('.') {
            return Err(key_error(
                "cluster.dns.name",
                format!("{name:?} is not a domain name"),
            ));
        }
        let server = match self.server.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(ip_and_port(text, DNS_PORT).ok_or_else(|| {
                key_error(
                    "cluster.dns.server",
                    format!("{text:?} is not an IP address or an IP:port"),
                )
            })?),
        };
        Ok(DnsConfig {
            name,
            record_type: self.record_type,
            server,
        })
    }
}

/// `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port`; the port defaults to `port`.
pub(crate) fn ip_and_port(text: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = text.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

/// `[cluster.etcd]` as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEtcd {
    server: Option<String>,
    prefix: Option<String>,
    #[serde(with = "humantime_serde")]
    node_ttl: Option<Duration>,
    ssl: Option<EtcdTls>,
}

impl RawEtcd {
    /// Checks the table for `discovery_strategy = "etcd"`.
    pub fn validate(self) -> Result<EtcdConfig, KeyError> {
        const KEY: &str = "cluster.etcd.server";
        let server = required(KEY, self.server)?;
        let servers: Vec<String> = server
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if servers.is_empty() {
            return Err(key_error(KEY, "at least one URL is required"));
        }
        let mut schemes = Vec::with_capacity(servers.len());
        for url in &servers {
            schemes.push(check_url(url).map_err(|m| key_error(KEY, m))?);
        }
        let tls = schemes.contains(&Scheme::Https);
        if tls && schemes.contains(&Scheme::Http) {
            return Err(key_error(
                KEY,
                "mixes http:// and https:// URLs; use one scheme",
            ));
        }
        let prefix = self.prefix.unwrap_or_else(|| "rollcall".to_owned());
        let prefix = prefix.trim().trim_matches('/').to_owned();
        if prefix.is_empty() {
            return Err(key_error("cluster.etcd.prefix", "must not be empty"));
        }
        let node_ttl = self.node_ttl.unwrap_or(Duration::from_secs(60));
        if node_ttl < Duration::from_secs(1) {
            return Err(key_error(
                "cluster.etcd.node_ttl",
                "must be at least 1s (etcd leases count whole seconds)",
            ));
        }
        let ssl = match self.ssl {
            None => None,
            Some(ssl) => {
                if ssl.certfile.is_some() != ssl.keyfile.is_some() {
                    let missing = if ssl.certfile.is_none() {
                        "cluster.etcd.ssl.certfile"
                    } else {
                        "cluster.etcd.ssl.keyfile"
                    };
                    return Err(key_error(
                        missing,
                        "certfile and keyfile go together; set both or neither",
                    ));
                }
                if ssl.cacertfile.is_none() {
                    return Err(key_error(
                        "cluster.etcd.ssl.cacertfile",
                        "is required for TLS (the CA that signed the etcd servers' certificates)",
                    ));
                }
                Some(ssl)
            }
        };
        match (tls, &ssl) {
            (true, None) => Err(key_error(
                "cluster.etcd.ssl.cacertfile",
                "is required for https:// servers",
            )),
            (false, Some(_)) => Err(key_error(
                KEY,
                "cluster.etcd.ssl is set, so the servers must be https:// URLs",
            )),
            _ => Ok(EtcdConfig {
                servers,
                prefix,
                node_ttl,
                ssl,
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// `http://host[:port][/]` or `https://...`, with a plausible host.
fn check_url(url: &str) -> Result<Scheme, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        // [ipv6]:port
        Some(v6) => match v6.split_once(']') {
            Some((ip, port)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => {
                check_port(url, port.strip_prefix(':'))?;
                return Ok(scheme);
            }
            _ => return Err(format!("{url:?} has a malformed IPv6 host")),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => {
                check_port(url, Some(port))?;
                host
            }
            None => authority,
        },
    };
    let plausible = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    if !plausible {
        return Err(format!("{url:?} has no valid host"));
    }
    Ok(scheme)
}

fn check_port(url: &str, port: Option<&str>) -> Result<(), String> {
    match port {
        None => Ok(()),
        Some(p) if p.parse::<u16>().is_ok_and(|p| p > 0) => Ok(()),
        Some(p) => Err(format!("{url:?} has an invalid port {p:?}")),
    }
}

/// `[cluster.k8s]` as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawK8s {
    apiserver: Option<String>,
    service_name: Option<String>,
    namespace: Option<String>,
    address_type: K8sAddressType,
    suffix: Option<String>,
}

impl RawK8s {
    /// Checks the table for `discovery_strategy = "k8s"`.
    pub fn validate(self) -> Result<K8sConfig, KeyError> {
        let apiserver = self
            .apiserver
            .map(|s| s.trim().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| DEFAULT_APISERVER.to_owned());
        check_url(&apiserver).map_err(|m| key_error("cluster.k8s.apiserver", m))?;
        let service_name = required("cluster.k8s.service_name", self.service_name)?;
        let namespace = self.namespace.unwrap_or_else(|| "default".to_owned());
        let suffix = self.suffix.unwrap_or_else(|| "pod.local".to_owned());
        for (key, value) in [
            ("cluster.k8s.service_name", &service_name),
            ("cluster.k8s.namespace", &namespace),
        ] {
            if !is_dns_label(value) {
                return Err(key_error(
                    key,
                    format!("{value:?} is not a Kubernetes name (lower case letters, digits, '-')"),
                ));
            }
        }
        let suffix = suffix.trim().trim_matches('.').to_ascii_lowercase();
        if suffix.is_empty() || suffix.split('.').any(|l| !is_dns_label(l)) {
            return Err(key_error(
                "cluster.k8s.suffix",
                format!("{suffix:?} is not a domain name"),
            ));
        }
        Ok(K8sConfig {
            apiserver,
            service_name,
            namespace,
            address_type: self.address_type,
            suffix,
        })
    }
}

/// An RFC 1123 label, as Kubernetes names Services and namespaces.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn required(key: &str, value: Option<String>) -> Result<String, KeyError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(key_error(
            key,
            format!(
                "is required when cluster.discovery_strategy is {:?}",
                key.split('.').nth(1).unwrap_or_default()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(toml: &str) -> Result<DnsConfig, KeyError> {
        toml::from_str::<RawDns>(toml).unwrap().validate()
    }

    /// Through the loader: `node_ttl` is a duration field, refused (with
    /// its key) while the file is read rather than by `validate`.
    fn etcd(toml: &str) -> Result<EtcdConfig, KeyError> {
        use crate::runtime::{AgentConfig, AgentConfigError, DiscoveryStrategy};
        let text = format!(
            "[cluster]\ndiscovery_strategy = \"etcd\"\n[cluster.etcd]\n{}",
            toml.replace("[ssl]", "[cluster.etcd.ssl]")
        );
        match AgentConfig::from_toml(&text, "test.toml", std::iter::empty()) {
            Ok(AgentConfig {
                discovery: DiscoveryStrategy::Etcd(etcd),
                ..
            }) => Ok(etcd),
            Err(AgentConfigError::Key { key, message, .. }) => Err((key, message)),
            other => panic!("{other:?}"),
        }
    }

    fn k8s(toml: &str) -> Result<K8sConfig, KeyError> {
        toml::from_str::<RawK8s>(toml).unwrap().validate()
    }

    #[test]
    fn dns_needs_a_name_and_defaults_to_a_records_from_the_system_resolver() {
        let e = dns("").unwrap_err();
        assert_eq!(e.0, "cluster.dns.name");
        assert!(e.1.contains("required"), "{e:?}");
        let c = dns("name = \"nodes.example.com\"").unwrap();
        assert_eq!(c.record_type, DnsRecordType::A);
        assert_eq!(c.server, None);
    }

    #[test]
    fn a_dns_server_is_an_ip_with_an_optional_port() {
        let c = dns("name = \"n.example\"\nserver = \"127.0.0.1:5353\"").unwrap();
        assert_eq!(c.server, Some("127.0.0.1:5353".parse().unwrap()));
        let c = dns("name = \"n.example\"\nserver = \"::1\"").unwrap();
        assert_eq!(c.server, Some("[::1]:53".parse().unwrap()));
        let e = dns("name = \"n.example\"\nserver = \"dns.example\"").unwrap_err();
        assert_eq!(e.0, "cluster.dns.server");
    }

    #[test]
    fn an_unknown_record_type_is_a_parse_error_listing_the_valid_ones() {
        let e = toml::from_str::<RawDns>("record_type = \"mx\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `mx`"), "{e}");
        assert!(e.contains("`aaaa`") && e.contains("`srv`"), "{e}");
        let c = dns("name = \"n.example\"\nrecord_type = \"SRV\"").unwrap();
        assert_eq!(c.record_type, DnsRecordType::Srv);
    }

    #[test]
    fn etcd_splits_servers_on_commas_and_defaults_prefix_and_ttl() {
        let c = etcd("server = \"http://127.0.0.1:2379, http://10.0.0.2:2379\"").unwrap();
        assert_eq!(c.servers, ["http://127.0.0.1:2379", "http://10.0.0.2:2379"]);
        assert_eq!(c.prefix, "rollcall");
        assert_eq!(c.node_ttl, Duration::from_secs(60));
        assert_eq!(c.ssl, None);
        let c =
            etcd("server = \"http://e:2379\"\nprefix = \"/emqxcl/\"\nnode_ttl = \"5s\"").unwrap();
        assert_eq!(c.prefix, "emqxcl");
        assert_eq!(c.node_ttl, Duration::from_secs(5));
    }

    #[test]
    fn a_bad_etcd_url_or_ttl_is_named_with_its_key() {
        for bad in ["", "127.0.0.1:2379", "http://", "http://h:99999", "ftp://h"] {
            let e = etcd(&format!("server = {bad:?}")).unwrap_err();
            assert_eq!(e.0, "cluster.etcd.server", "{bad}: {e:?}");
        }
        let e = etcd("server = \"http://h\"\nnode_ttl = \"soon\"").unwrap_err();
        assert_eq!(e.0, "cluster.etcd.node_ttl");
        let e = etcd("server = \"http://h\"\nnode_ttl = \"10ms\"").unwrap_err();
        assert_eq!(e.0, "cluster.etcd.node_ttl");
    }

    #[test]
    fn etcd_tls_needs_https_and_a_ca_and_a_cert_with_its_key() {
        let e = etcd("server = \"https://h:2379\"").unwrap_err();
        assert_eq!(e.0, "cluster.etcd.ssl.cacertfile");
        let e = etcd("server = \"http://h:2379\"\n[ssl]\ncacertfile = \"ca.pem\"").unwrap_err();
        assert_eq!(e.0, "cluster.etcd.server");
        let e =
            etcd("server = \"https://h\"\n[ssl]\ncacertfile = \"ca.pem\"\ncertfile = \"c.pem\"")
                .unwrap_err();
        assert_eq!(e.0, "cluster.etcd.ssl.keyfile");
        let c = etcd(
            "server = \"https://h\"\n[ssl]\ncacertfile = \"ca.pem\"\ncertfile = \"c.pem\"\nkeyfile = \"k.pem\"",
        )
        .unwrap();
        assert_eq!(c.ssl.unwrap().keyfile, Some(PathBuf::from("k.pem")));
    }

    #[test]
    fn k8s_needs_a_service_name_and_has_emqx_defaults() {
        let e = k8s("").unwrap_err();
        assert_eq!(e.0, "cluster.k8s.service_name");
        let c = k8s("service_name = \"rollcall\"").unwrap();
        assert_eq!(c.apiserver, DEFAULT_APISERVER);
        assert_eq!(c.namespace, "default");
        assert_eq!(c.address_type, K8sAddressType::Ip);
        assert_eq!(c.suffix, "pod.local");
    }

    #[test]
    fn bad_k8s_values_are_named_with_their_key() {
        let e = k8s("service_name = \"s\"\napiserver = \"kubernetes:443\"").unwrap_err();
        assert_eq!(e.0, "cluster.k8s.apiserver");
        let e = k8s("service_name = \"Bad_Name\"").unwrap_err();
        assert_eq!(e.0, "cluster.k8s.service_name");
        let e = k8s("service_name = \"s\"\nsuffix = \"a..b\"").unwrap_err();
        assert_eq!(e.0, "cluster.k8s.suffix");
        assert!(toml::from_str::<RawK8s>("address_type = \"fqdn\"").is_err());
    }
}
