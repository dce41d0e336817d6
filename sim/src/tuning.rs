//! The protocol knobs a run sets on top of its profile: full-state sync on
//! or off, the autoclean delay, network evidence, Lifeguard and autoheal.
//! [`NetProfile::configure`] applies them; it is the one place a node's
//! [`Config`](rollcall::core::Config) is built.
//!
//! [`NetProfile::configure`]: crate::network::NetProfile::configure

use std::time::Duration;

/// Overrides of the profile's protocol configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Full-state sync on (the profile's `SyncConfig`) or off
    /// (`Config::sync = None`: plain foca gossip only).
    pub sync: bool,
    /// `Config::autoclean`, when set; otherwise the profile's (24 h).
    pub autoclean: Option<Duration>,
    /// `Config::network_evidence`: whether "port unreachable" answers from
    /// a crashed process's host count (on by default).
    pub network_evidence: bool,
    /// `Config::lifeguard`: Lifeguard on top of SWIM (on by default).
    pub lifeguard: bool,
    /// `Config::autoheal`: sides of a healed partition merge by themselves
    /// (on by default); off, they stay apart until a manual join.
    pub autoheal: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            sync: true,
            autoclean: None,
            network_evidence: true,
            lifeguard: true,
            autoheal: true,
        }
    }
}

impl Tuning {
    /// The default tuning with sync turned off.
    pub fn without_sync() -> Self {
        Self {
            sync: false,
            ..Self::default()
        }
    }
}
