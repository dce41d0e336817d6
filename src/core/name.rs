//! Node names: `name@host`, validated once and shared cheaply.
//!
//! A node name is the identity an operator sees: `rollcall@10.0.0.1`,
//! `rc1@127.0.0.1`, `emqx@node1.cluster.local`. The *name part* is one or more
//! of `[A-Za-z0-9_-]`; the *host* is an IPv4 address, an IPv6 address (bare,
//! `rc@::1`, or bracketed, `rc@[::1]`) or a domain name made of RFC 1123
//! labels. Names are stored in a canonical form (IP literals as Rust prints
//! them, domain names in lower case without a trailing dot), so two spellings
//! of one host are one node.
//!
//! The gossip port follows EMQX's convention for several nodes on one host:
//! `base_port + N`, where `N` is the integer suffix of the name part
//! (`rc@h` -> `base_port`, `rc1@h` -> `base_port + 1`, `rc12@h` -> `base_port + 12`).

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The port that `rc@host` (a name with no numeric suffix) gossips on.
pub const DEFAULT_BASE_PORT: u16 = 4370;

/// The longest node name accepted, in bytes (a full domain name plus a name part).
pub const MAX_NAME_LEN: usize = 255;

/// A validated node name, `name@host`.
///
/// Cloning is cheap (one reference count): every member of every view holds one.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct NodeName {
    text: Arc<str>,
    at: u16,
    key: NameKey,
}

/// A 64-bit hash of a node name (XXH3), computed once when the name is
/// parsed. foca compares member addresses in linear scans of its member list;
/// comparing two integers there instead of two shared strings keeps a
/// membership update cheap in large clusters. Two distinct names in one
/// cluster share a key with probability about `n^2 / 2^65` (about 3e-12 for
/// 10,000 nodes); if they did, foca would treat them as one node's
/// generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey(u64);

impl NameKey {
    /// The key as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// The host part of a node name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host<'a> {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A domain name (lower case, no trailing dot).
    Domain(&'a str),
}

/// Why a string is not a node name. Each variant names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The input was empty.
    #[error("a node name must not be empty (expected name@host)")]
    Empty,
    /// The input is longer than [`MAX_NAME_LEN`].
    #[error("node name is {len} bytes long; at most {MAX_NAME_LEN} are allowed")]
    TooLong {
        /// The input's length in bytes.
        len: usize,
    },
    /// There is no `@` separating the name part from the host.
    #[error("{input:?} has no '@host' part (expected name@host)")]
    NoHost {
        /// The input as given.
        input: String,
    },
    /// Nothing stands before the `@`.
    #[error("{input:?} has an empty name before '@'")]
    EmptyNamePart {
        /// The input as given.
        input: String,
    },
    /// The name part holds a character outside `[A-Za-z0-9_-]`.
    #[error("name part {name:?} may only hold letters, digits, '_' and '-', not {ch:?}")]
    BadNameChar {
        /// The name part as given.
        name: String,
        /// The first character that is not allowed.
        ch: char,
    },
    /// Nothing stands after the `@`.
    #[error("{input:?} has an empty host after '@'")]
    EmptyHost {
        /// The input as given.
        input: String,
    },
    /// The host is neither an IP address nor a valid domain name.
    #[error("host {host:?} is not a valid domain name: {reason}")]
    BadDomain {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host looks like an IP address but does not parse as one.
    #[error("host {host:?} is not a valid IP address")]
    BadIp {
        /// The host as given.
        host: String,
    },
}

/// The port convention could not produce a port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {name}: base port {base} + suffix {suffix} is beyond 65535")]
pub struct PortError {
    /// The node name.
    pub name: String,
    /// The configured base port.
    pub base: u16,
    /// The numeric suffix of the name part.
    pub suffix: u64,
}

impl NodeName {
    /// Parses and validates `name@host`; see the module docs for the rules.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        if input.is_empty() {
            return Err(NameError::Empty);
        }
        if input.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: input.len() });
        }
        let Some((name, host)) = input.split_once('@') else {
            return Err(NameError::NoHost {
                input: input.to_owned(),
            });
        };
        if name.is_empty() {
            return Err(NameError::EmptyNamePart {
                input: input.to_owned(),
            });
        }
        if let Some(ch) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(NameError::BadNameChar {
                name: name.to_owned(),
                ch,
            });
        }
        if host.is_empty() {
            return Err(NameError::EmptyHost {
                input: input.to_owned(),
            });
        }
        // Names arrive in every gossip update, almost always already in
        // canonical form: then the input is the text, with no formatting.
        let text: Arc<str> = match canonical_host(host)? {
            Cow::Borrowed(_) => Arc::from(input),
            Cow::Owned(host) => Arc::from(format!("{name}@{host}")),
        };
        if text.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: text.len() });
        }
        Ok(Self {
            at: name.len() as u16,
            key: NameKey(xxhash_rust::xxh3::xxh3_64(text.as_bytes())),
            text,
        })
    }

    /// Builds `name@ip` from a name part that is already valid (as taken from
    /// another [`NodeName`]) and an address: used by discovery.
    pub fn with_host(&self, host: &str) -> Result<Self, NameError> {
        Self::parse(&format!("{}@{}", self.name_part(), host))
    }

    /// The whole name, `name@host`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The name's 64-bit key (see [`NameKey`]).
    pub fn key(&self) -> NameKey {
        self.key
    }

    /// The part before the `@`.
    pub fn name_part(&self) -> &str {
        &self.text[..self.at as usize]
    }

    /// The part after the `@`, as written in the canonical name.
    pub fn host_str(&self) -> &str {
        &self.text[self.at as usize + 1..]
    }

    /// The host, as an IP literal or a domain name.
    pub fn host(&self) -> Host<'_> {
        let h = self.host_str();
        match h.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Domain(h),
        }
    }

    /// The integer suffix of the name part (`rc12` -> 12, `rc` -> 0).
    pub fn suffix(&self) -> u64 {
        let name = self.name_part();
        let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        // At most 255 digits: saturate rather than overflow, `port` rejects it.
        name[name.len() - digits..].bytes().fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
    }

    /// The gossip port by EMQX's convention: `base + suffix`.
    pub fn port(&self, base: u16) -> Result<u16, PortError> {
        let suffix = self.suffix();
        u64::from(base)
            .checked_add(suffix)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| PortError {
                name: self.to_string(),
                base,
                suffix,
            })
    }
}

/// The host in canonical form: borrowed when `host` already is.
fn canonical_host(host: &str) -> Result<Cow<'_, str>, NameError> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or("");
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => Ok(Cow::Owned(ip.to_string())),
            Err(_) => Err(NameError::BadIp {
                host: host.to_owned(),
            }),
        };
    }
    if host.contains(':') {
        return match host.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => {
                let canonical = ip.to_string();
                Ok(if canonical == host {
                    Cow::Borrowed(host)
                } else {
                    Cow::Owned(canonical)
                })
            }
            Err(_) => Err(NameError::BadIp {
                host: host.to_owned(),
            }),
        };
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        // std accepts only the canonical dotted-decimal form (four octets,
        // no leading zeros), so the text is already canonical.
        return Ok(Cow::Borrowed(host));
    }
    let domain = host.strip_suffix('.').unwrap_or(host);
    let bad = |reason| NameError::BadDomain {
        host: host.to_owned(),
        reason,
    };
    if domain.is_empty() {
        return Err(bad("it has no labels"));
    }
    if domain.len() > 253 {
        return Err(bad("it is longer than 253 bytes"));
    }
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(bad("it has an empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("labels may only hold letters, digits and '-'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with '-'"));
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        // `10.0.0` or `1.2.3.456`: meant as an address, and not a valid one.
        return Err(NameError::BadIp {
            host: host.to_owned(),
        });
    }
    if domain.len() == host.len() && !domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Ok(Cow::Borrowed(host));
    }
    Ok(Cow::Owned(domain.to_ascii_lowercase()))
}

impl PartialEq for NodeName {
    /// Keys first: two distinct names almost never share one, so the string
    /// comparison (foca compares identities in linear scans) is rarely needed.
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.text == other.text
    }
}

impl std::hash::Hash for NodeName {
    /// The key alone: equal names have equal keys.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl FromStr for NodeName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl Serialize for NodeName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for NodeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        NodeName::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn a_name_with_an_ipv4_host_parses_into_its_parts() {
        let n = NodeName::parse("rc1@127.0.0.1").unwrap();
        assert_eq!(n.name_part(), "rc1");
        assert_eq!(n.host_str(), "127.0.0.1");
        assert_eq!(n.host(), Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(n.to_string(), "rc1@127.0.0.1");
    }

    #[test]
    fn a_name_already_in_canonical_form_is_kept_as_given() {
        for text in [
            "rc@10.0.0.1",
            "rc7@::1",
            "emqx@node1.cluster.local",
            "a_b-c@0.0.0.0",
        ] {
            let n: NodeName = text.parse().unwrap();
            assert_eq!(n.as_str(), text);
            assert_eq!(n, NodeName::parse(n.as_str()).unwrap());
        }
    }

    #[test]
    fn ipv6_hosts_parse_bare_or_bracketed_into_one_canonical_name() {
        let a = NodeName::parse("rc@::1").unwrap();
        let b = NodeName::parse("rc@[0:0:0:0:0:0:0:1]").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "rc@::1");
        assert_eq!(a.host(), Host::Ip("::1".parse().unwrap()));
    }

    #[test]
    fn domain_hosts_are_lower_cased_and_lose_a_trailing_dot() {
        let n = NodeName::parse("emqx@Node1.Cluster.Local.").unwrap();
        assert_eq!(n.as_str(), "emqx@node1.cluster.local");
        assert_eq!(n.host(), Host::Domain("node1.cluster.local"));
    }

    #[test]
    fn each_kind_of_bad_name_gets_its_own_message() {
        assert_eq!(
            err(""),
            "a node name must not be empty (expected name@host)"
        );
        assert_eq!(
            err("emqx"),
            "\"emqx\" has no '@host' part (expected name@host)"
        );
        assert_eq!(err("@h.io"), "\"@h.io\" has an empty name before '@'");
        assert_eq!(err("rc@"), "\"rc@\" has an empty host after '@'");
        assert_eq!(
            err("r.c@h.io"),
            "name part \"r.c\" may only hold letters, digits, '_' and '-', not '.'"
        );
        assert_eq!(
            err("rc@s1..io"),
            "host \"s1..io\" is not a valid domain name: it has an empty label"
        );
        assert_eq!(
            err("rc@-a.io"),
            "host \"-a.io\" is not a valid domain name: a label starts or ends with '-'"
        );
        assert_eq!(
            err("rc@a_b.io"),
            "host \"a_b.io\" is not a valid domain name: labels may only hold letters, digits and '-'"
        );
        assert_eq!(
            err("rc@10.0.0.256"),
            "host \"10.0.0.256\" is not a valid IP address"
        );
        assert_eq!(err("rc@::g"), "host \"::g\" is not a valid IP address");
        assert_eq!(err("rc@[::1"), "host \"[::1\" is not a valid IP address");
        assert!(err(&format!("rc@{}.io", "a".repeat(300))).contains("at most 255"));
    }

    #[test]
    fn a_second_at_sign_is_rejected_as_part_of_the_host() {
        assert!(matches!(
            NodeName::parse("a@b@c.io"),
            Err(NameError::BadDomain { .. })
        ));
    }

    #[test]
    fn the_port_is_the_base_port_plus_the_name_suffix() {
        let port = |s: &str| NodeName::parse(s).unwrap().port(DEFAULT_BASE_PORT);
        assert_eq!(port("rc@h.io"), Ok(4370));
        assert_eq!(port("rc1@h.io"), Ok(4371));
        assert_eq!(port("rc12@h.io"), Ok(4382));
        assert_eq!(port("rc007@h.io"), Ok(4377));
        assert_eq!(port("12@h.io"), Ok(4382));
    }

    #[test]
    fn a_suffix_that_pushes_the_port_past_65535_is_an_error_not_a_wrap() {
        let n = NodeName::parse("rc99999@h.io").unwrap();
        assert!(n.port(DEFAULT_BASE_PORT).is_err());
        let huge = NodeName::parse(&format!("rc{}@h.io", "9".repeat(40))).unwrap();
        assert_eq!(huge.suffix(), u64::MAX);
        assert!(huge.port(1).is_err());
    }

    #[test]
    fn names_round_trip_through_serde_and_bad_ones_fail_to_decode() {
        let n = NodeName::parse("rc3@10.1.2.3").unwrap();
        let bytes = postcard::to_allocvec(&n).unwrap();
        assert_eq!(postcard::from_bytes::<NodeName>(&bytes).unwrap(), n);
        let bad = postcard::to_allocvec("no-at-sign").unwrap();
        assert!(postcard::from_bytes::<NodeName>(&bad).is_err());
    }

    #[test]
    fn equal_names_have_equal_keys_and_distinct_names_distinct_keys() {
        let a = NodeName::parse("rc@Node.io").unwrap();
        let b = NodeName::parse("rc@node.io").unwrap();
        assert_eq!(a.key(), b.key());
        let keys: std::collections::BTreeSet<_> = (0..10_000)
            .map(|i| NodeName::parse(&format!("rc{i}@127.0.0.1")).unwrap().key())
            .collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn with_host_keeps_the_name_part_and_swaps_the_host() {
        let n = NodeName::parse("emqx@127.0.0.1").unwrap();
        assert_eq!(n.with_host("10.0.0.2").unwrap().as_str(), "emqx@10.0.0.2");
    }
}
