//! The endpoint's UDP socket, with its error queue read beside quinn: "port
//! unreachable" as evidence, as over UDP (see [`errqueue`]).
//!
//! The socket has `IP_RECVERR` (and `IPV6_RECVERR`) on, so the kernel
//! queues an entry naming the destination of every packet that met an ICMP
//! error. Two things read that queue into one [`Reports`]:
//!
//! - a task (Linux) waiting on the socket's error readiness, through a
//!   duplicate of its descriptor registered with tokio on its own: it drains the queue as soon as an entry
//!   arrives, whatever quinn is doing. Draining also clears the socket's
//!   pending error, which would otherwise fail the next send (quinn-udp
//!   logs and drops a packet whose `sendmsg` fails);
//! - [`ReportingSocket`], the [`quinn::AsyncUdpSocket`] quinn is given: it
//!   delegates to quinn's own tokio socket, and when a receive fails with
//!   the error an ICMP report raises ([`is_icmp_error`]) it drains the queue
//!   and keeps receiving. quinn's endpoint driver ends the endpoint on any
//!   receive error but `ConnectionReset`; quinn 0.11's tokio socket already
//!   retries on every error, so this is a guard against that changing, not
//!   the path reports usually take.
//!
//! Port-unreachable destinations wait in a queue of at most
//! [`MAX_QUEUED`] (256) distinct addresses for [`Transport::recv`], which
//! hands them out as [`Received::Unreachable`]; an address already waiting
//! is not queued twice, and reports past the bound are dropped (quinn sends
//! a dead peer several packets: a handshake's retransmissions, probes; the
//! node needs one). Other errors (host unreachable, fragmentation needed,
//! ...) are counted in `other_errors`.
//!
//! # Receive buffer
//!
//! quinn reads 32 datagrams at a time, into a buffer of 32 times
//! `max_udp_payload_size` (1,452, see `config`) times the segments one read
//! may return. quinn-udp turns UDP GRO on, so that the kernel may hand over
//! 64 coalesced datagrams at once: a 3 MiB buffer, of which the first pages
//! of each slot became resident (about 300 KiB per agent). Gossip never
//! comes in such bursts: this socket turns GRO off again and reports one
//! segment per read, for a buffer of 46 KiB. Where GRO cannot be turned off
//! it reports quinn's own count, and the buffer stays large.
//!
//! # Other systems
//!
//! `errqueue` does nothing there, no task runs, and QUIC,
//! like UDP, detects a crash by the suspicion timeout alone.
//!
//! [`errqueue`]: crate::runtime::transport::errqueue
//! [`Transport::recv`]: crate::runtime::transport::Transport::recv
//! [`Received::Unreachable`]: crate::runtime::transport::Received::Unreachable

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::sync::Notify;

use super::shared::{bump, Shared};
use crate::runtime::transport::errqueue::{self, Queued};

/// Port-unreachable destinations waiting for `recv`, at most.
pub(super) const MAX_QUEUED: usize = 256;

/// Error-queue entries read in one go before yielding.
const DRAIN_BATCH: usize = 1024;

/// How long the error-queue reader pauses after a read that failed for
/// another reason than an empty queue.
#[cfg(target_os = "linux")]
const ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Receive errors in a row [`ReportingSocket::poll_recv`] swallows before it
/// yields to the runtime.
const MAX_SWALLOWED: usize = 64;

/// What the error queue said, waiting for the transport.
#[derive(Debug)]
pub(super) struct Reports {
    queue: Mutex<VecDeque<SocketAddr>>,
    notify: Notify,
    shared: Arc<Shared>,
}

impl Reports {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            shared,
        }
    }

    /// Files one entry of the error queue.
    fn file(&self, entry: Queued) {
        match entry {
            Queued::PortUnreachable(to) => {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if queue.len() >= MAX_QUEUED || queue.contains(&to) {
                    return;
                }
                queue.push_back(to);
                drop(queue);
                self.notify.notify_one();
            }
            Queued::Other => bump(&self.shared.other_errors),
        }
    }

    /// The next unreachable destination, if any.
    pub fn pop(&self) -> Option<SocketAddr> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// Waits until a destination may have been queued (cancel-safe: a
    /// report filed while nobody waits wakes the next wait at once).
    pub async fn queued(&self) {
        self.notify.notified().await
    }

    /// Reads what the error queue of `fd` holds, up to [`DRAIN_BATCH`]
    /// entries.
    fn drain(&self, fd: &impl ErrorQueue) {
        for _ in 0..DRAIN_BATCH {
            match fd.read_one() {
                Ok(entry) => self.file(entry),
                Err(_) => return,
            }
        }
    }
}

/// A socket whose error queue can be read.
trait ErrorQueue {
    fn read_one(&self) -> io::Result<Queued>;
}

#[cfg(target_os = "linux")]
impl<T: std::os::fd::AsRawFd> ErrorQueue for T {
    fn read_one(&self) -> io::Result<Queued> {
        errqueue::read_one(self)
    }
}

#[cfg(not(target_os = "linux"))]
impl<T> ErrorQueue for T {
    fn read_one(&self) -> io::Result<Queued> {
        errqueue::read_one(self)
    }
}

/// Whether a receive error is the one an ICMP report raises on a socket with
/// `IP_RECVERR` (the kernel's mapping of ICMP and ICMPv6 errors to errno):
/// port or protocol unreachable, host or network unreachable or down,
/// administratively prohibited, fragmentation needed, parameter problem.
pub(super) fn is_icmp_error(error: &io::Error) -> bool {
    use nix::errno::Errno;
    let Some(code) = error.raw_os_error() else {
        return false;
    };
    matches!(
        Errno::from_raw(code),
        Errno::ECONNREFUSED
            | Errno::EHOSTUNREACH
            | Errno::ENETUNREACH
            | Errno::EHOSTDOWN
            | Errno::ENOPROTOOPT
            | Errno::EACCES
            | Errno::EMSGSIZE
            | Errno::EOPNOTSUPP
            | Errno::EPROTO
    )
}

/// quinn's tokio socket, with receive errors from ICMP reports kept from
/// quinn (see the module docs).
pub(super) struct ReportingSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    /// The descriptor `inner` owns, for its error queue: valid as long as
    /// `inner` is.
    #[cfg(target_os = "linux")]
    fd: std::os::fd::RawFd,
    /// GRO is off: each receive is one datagram.
    single_segment: bool,
    reports: Arc<Reports>,
}

impl fmt::Debug for ReportingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportingSocket")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The endpoint's socket and what reads its error queue.
pub(super) struct Bound {
    /// The socket to give quinn.
    pub socket: Arc<ReportingSocket>,
    /// The task draining the error queue (Linux), to abort on drop.
    pub reader: Option<tokio::task::JoinHandle<()>>,
}

/// Wraps `socket` (error queue already on, or not available) for quinn and
/// starts the error-queue reader. Must be called inside a tokio runtime.
pub(super) fn wrap(socket: std::net::UdpSocket, reports: Arc<Reports>) -> io::Result<Bound> {
    #[cfg(target_os = "linux")]
    let (fd, dup) = {
        use std::os::fd::AsRawFd;
        (socket.as_raw_fd(), socket.try_clone())
    };
    let inner = quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, socket)?;
    #[cfg(target_os = "linux")]
    let (single_segment, reader) = match dup {
        Ok(dup) => {
            // After quinn-udp turned GRO on (see the module docs).
            let single_segment = nix::sys::socket::setsockopt(
                &dup,
                nix::sys::socket::sockopt::UdpGroSegment,
                &false,
            )
            .is_ok();
            let reader = match tokio::net::UdpSocket::from_std(dup) {
                Ok(dup) => Some(tokio::spawn(read_errors(dup, reports.clone()))),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the QUIC socket's errors: crashes are detected by timeout only");
                    None
                }
            };
            (single_segment, reader)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the QUIC socket's errors: crashes are detected by timeout only");
            (false, None)
        }
    };
    #[cfg(not(target_os = "linux"))]
    let (single_segment, reader) = (false, None);
    Ok(Bound {
        socket: Arc::new(ReportingSocket {
            inner,
            #[cfg(target_os = "linux")]
            fd,
            single_segment,
            reports,
        }),
        reader,
    })
}

/// Drains the error queue of `dup` (a duplicate of the endpoint's socket,
/// only ever read with `MSG_ERRQUEUE`) whenever it has an entry, until the
/// transport aborts the task.
#[cfg(target_os = "linux")]
async fn read_errors(dup: tokio::net::UdpSocket, reports: Arc<Reports>) {
    use tokio::io::Interest;
    loop {
        if let Err(e) = dup.ready(Interest::ERROR).await {
            tracing::warn!(error = %e, "stopped reading the QUIC socket's errors");
            return;
        }
        let mut read = 0;
        let stopped = loop {
            if read == DRAIN_BATCH {
                break None;
            }
            // An empty queue clears the readiness (an entry that arrived
            // since keeps it, so none is missed).
            match dup.try_io(Interest::ERROR, || errqueue::read_one(&dup)) {
                Ok(entry) => reports.file(entry),
                Err(e) => break Some(e),
            }
            read += 1;
        };
        match stopped {
            Some(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Some(e) => {
                // Readiness stays set: never spin on it.
                tracing::debug!(error = %e, "cannot read the QUIC socket's error queue");
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            // More than a batch: let others run, then read on.
            None => tokio::task::yield_now().await,
        }
    }
}

impl ReportingSocket {
    /// The socket's error queue, read after a receive error.
    fn drain(&self) {
        #[cfg(target_os = "linux")]
        self.reports.drain(&self.fd);
        #[cfg(not(target_os = "linux"))]
        self.reports.drain(&());
    }
}

impl AsyncUdpSocket for ReportingSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        for _ in 0..MAX_SWALLOWED {
            match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Err(e)) if is_icmp_error(&e) => self.drain(),
                other => return other,
            }
        }
        // Never spin on a socket that keeps failing.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        if self.single_segment {
            1
        } else {
            self.inner.max_receive_segments()
        }
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports() -> Reports {
        Reports::new(Arc::new(Shared::default()))
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn an_address_already_waiting_is_queued_once() {
        let r = reports();
        r.file(Queued::PortUnreachable(addr(1)));
        r.file(Queued::PortUnreachable(addr(1)));
        r.file(Queued::PortUnreachable(addr(2)));
        assert_eq!(r.pop(), Some(addr(1)));
        assert_eq!(r.pop(), Some(addr(2)));
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn a_flood_of_reports_is_bounded_and_other_errors_are_counted() {
        let r = reports();
        for port in 0..1000 {
            r.file(Queued::PortUnreachable(addr(port)));
        }
        r.file(Queued::Other);
        let mut n = 0;
        while r.pop().is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_QUEUED);
        assert_eq!(r.shared.stats().other_errors, 1);
    }

    #[test]
    fn icmp_receive_errors_are_told_from_others() {
        let refused = io::Error::from_raw_os_error(nix::errno::Errno::ECONNREFUSED as i32);
        let unreachable = io::Error::from_raw_os_error(nix::errno::Errno::EHOSTUNREACH as i32);
        let bad_fd = io::Error::from_raw_os_error(nix::errno::Errno::EBADF as i32);
        assert!(is_icmp_error(&refused));
        assert!(is_icmp_error(&unreachable));
        assert!(!is_icmp_error(&bad_fd));
        assert!(!is_icmp_error(&io::Error::other("not from the OS")));
    }

    /// A socket whose receives fail with a report a few times, then succeed.
    #[derive(Debug)]
    struct Failing(std::sync::atomic::AtomicUsize);

    impl AsyncUdpSocket for Failing {
        fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
            unimplemented!("not used by the test")
        }
        fn try_send(&self, _: &Transmit) -> io::Result<()> {
            Ok(())
        }
        fn poll_recv(
            &self,
            _: &mut Context,
            _: &mut [IoSliceMut<'_>],
            _: &mut [RecvMeta],
        ) -> Poll<io::Result<usize>> {
            use std::sync::atomic::Ordering;
            if self.0.fetch_sub(1, Ordering::Relaxed) > 0 {
                let refused = nix::errno::Errno::ECONNREFUSED as i32;
                Poll::Ready(Err(io::Error::from_raw_os_error(refused)))
            } else {
                self.0.store(0, Ordering::Relaxed);
                Poll::Ready(Ok(1))
            }
        }
        fn local_addr(&self) -> io::Result<SocketAddr> {
            Ok(addr(1))
        }
    }

    #[test]
    fn a_receive_error_from_an_icmp_report_never_reaches_quinn() {
        let std = std::net::UdpSocket::bind(addr(0)).unwrap();
        let socket = ReportingSocket {
            inner: Arc::new(Failing(3.into())),
            #[cfg(target_os = "linux")]
            fd: std::os::fd::AsRawFd::as_raw_fd(&std),
            single_segment: true,
            reports: Arc::new(reports()),
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut buf = [0u8; 16];
        let mut bufs = [IoSliceMut::new(&mut buf)];
        let mut meta = [RecvMeta::default()];
        let got = socket.poll_recv(&mut cx, &mut bufs, &mut meta);
        assert!(matches!(got, Poll::Ready(Ok(1))));
        drop(std);
    }
}
