//! When to rediscover, and the task that polls a [`Discovery`] on that
//! schedule and feeds what it finds to the node's owner task.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Discovery;
use crate::runtime::inputs::Input;

/// How often to rediscover: often while the node is alone, rarely once it
/// has members (and at once when it finds itself alone again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The interval while the node has no members (default 5 s).
    pub alone: Duration,
    /// The interval while it has members (default 30 s).
    pub in_cluster: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            alone: Duration::from_secs(5),
            in_cluster: Duration::from_secs(30),
        }
    }
}

impl Schedule {
    /// The wait before the next round, given how many members the node has.
    pub fn next_wait(&self, members: usize) -> Duration {
        if members == 0 {
            self.alone
        } else {
            self.in_cluster
        }
    }
}

/// Registers, then discovers at once and on the schedule until the owner task
/// goes away; unregisters on the way out.
///
/// While `left` is true (the node left, or was force-left) it neither
/// discovers nor stays registered, so a node that left is not brought
/// straight back by its own strategy or by others finding its registration
/// (emqx #3211); when a `join` clears it, the task registers again and
/// resumes.
pub(crate) async fn run<D: Discovery>(
    mut discovery: D,
    schedule: Schedule,
    inputs: mpsc::Sender<Input>,
    mut members: watch::Receiver<usize>,
    mut left: watch::Receiver<bool>,
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
        let found = tokio::select! {
            found = discovery.discover() => found,
            () = inputs.closed() => break,
        };
        match found {
            Ok(peers) => {
                tracing::debug!("discovery ({strategy}): {} seeds", peers.len());
                if inputs.send(Input::Discovered(peers)).await.is_err() {
                    break;
                }
            }
            Err(e) => tracing::warn!("discovery ({strategy}): {e}"),
        }
        let now = *members.borrow_and_update();
        let wait = schedule.next_wait(now);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            // In a cluster and then alone again: look for seeds at once.
            _ = members.wait_for(|n| *n == 0), if now > 0 => {}
            // Left (or joined again): the top of the loop decides.
            r = left.changed() => if r.is_err() { break },
            () = inputs.closed() => break,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_node_rediscovers_often_and_a_member_rarely() {
        let s = Schedule::default();
        assert_eq!(s.next_wait(0), Duration::from_secs(5));
        assert_eq!(s.next_wait(4), Duration::from_secs(30));
    }
}
