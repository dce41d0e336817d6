//! The manual strategy: discovery finds nobody; operators run
//! `rollcall ctl cluster join NODE` on the joining node.

use crate::core::Peer;

use super::{Discovery, DiscoveryError};

/// Finds no seeds: the cluster forms only through explicit joins.
#[derive(Clone, Copy, Debug, Default)]
pub struct Manual;

impl Discovery for Manual {
    fn name(&self) -> &'static str {
        "manual"
    }

    async fn discover(&mut self) -> Result<Vec<Peer>, DiscoveryError> {
        Ok(Vec::new())
    }
}
