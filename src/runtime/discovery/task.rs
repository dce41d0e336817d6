//! The task that carries the node's requests for seeds to a [`Discovery`]
//! and its answers back to the node's owner task.
//!
//! When to ask is the core's decision
//! ([`Node::poll_discover`](crate::core::Node::poll_discover)); this task
//! keeps no timer of its own. The owner task hands it each request over a
//! channel of one: a request made while one is still being answered waits
//! there, and more merge into it.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::Discovery;
use crate::runtime::inputs::Input;
use crate::runtime::stats::DiscoveryCounters;

/// Registers, then answers every request for seeds until the owner task goes
/// away; unregisters on the way out. Counts every round in `counters`.
///
/// While `left` is true (the node left, or was force-left) it stays
/// unregistered, so a node that left is not brought straight back by others
/// finding its registration (emqx #3211); the node makes no requests then.
/// When a `join` clears it, the task registers again.
pub(crate) async fn run<D: Discovery>(
    mut discovery: D,
    mut requests: mpsc::Receiver<()>,
    inputs: mpsc::Sender<Input>,
    mut left: watch::Receiver<bool>,
    counters: Arc<DiscoveryCounters>,
) {
    let strategy = discovery.name();
    let mut registered = false;
    loop {
        if *left.borrow_and_update() {
            if registered {
                unregister(&mut discovery).await;
                registered = false;
                tracing::info!("discovery ({strategy}): paused: this node left the cluster");
            }
            tokio::select! {
                r = left.wait_for(|l| !*l) => if r.is_err() { break },
                () = inputs.closed() => break,
            }
            tracing::info!("discovery ({strategy}): resumed");
            continue;
        }
        if !registered {
            // A strategy that registers keeps retrying by itself (etcd).
            if let Err(e) = discovery.register().await {
                tracing::warn!("discovery ({strategy}): could not register: {e}");
            }
            registered = true;
        }
        tokio::select! {
            request = requests.recv() => if request.is_none() { break },
            // Left (or joined again): the top of the loop decides.
            r = left.changed() => { if r.is_err() { break } continue }
            () = inputs.closed() => break,
        }
        let found = tokio::select! {
            found = discovery.discover() => found,
            () = inputs.closed() => break,
        };
        counters.count(found.is_err());
        match found {
            Ok(peers) => {
                tracing::debug!("discovery ({strategy}): {} seeds", peers.len());
                if inputs.send(Input::Discovered(peers)).await.is_err() {
                    break;
                }
            }
            Err(e) => tracing::warn!("discovery ({strategy}): {e}"),
        }
    }
    if registered {
        unregister(&mut discovery).await;
    }
}

async fn unregister<D: Discovery>(discovery: &mut D) {
    if let Err(e) = discovery.unregister().await {
        tracing::warn!(
            "discovery ({}): could not unregister: {e}",
            discovery.name()
        );
    }
}
