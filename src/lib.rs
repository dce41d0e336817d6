//! rollcall: cluster membership on SWIM, as EMQX documents its clustering.
//!
//! Nodes are named `name@host`, prove a shared cookie on every datagram, and
//! detect failures with SWIM (via [foca]). The protocol lives in [`core`], a
//! sans-io state machine ([`core::Node`]) that takes time and randomness as
//! inputs; drivers feed it datagrams, timeouts and commands and drain the
//! datagrams and events it produces. See `ARCHITECTURE.md` for the layout.
//!
//! [foca]: https://docs.rs/foca
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod core;

#[cfg(feature = "runtime")]
pub mod runtime;

#[cfg(feature = "runtime")]
pub use runtime::{Agent, AgentConfig, AgentHandle};
