//! SIGINT and SIGTERM: the agent's cue to leave the cluster and exit.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Listens for SIGINT and SIGTERM. Create it early: from then on these
/// signals no longer end the process, they wake [`recv`](Self::recv).
#[derive(Debug)]
pub struct ShutdownSignal {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignal {
    /// Installs the handlers.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either signal; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
