//! `rollcall ctl monitor`: membership events as they happen, one JSON
//! object per line, until the client goes away or the agent stops. The
//! control socket serves it ([`control::monitor`](super::control::monitor)
//! is the client).
//!
//! ```text
//! -> {"command":"monitor","since_start":true}
//! <- {"time":"2026-01-01T00:00:00.101Z","seq":1,"event":"joined"}
//! <- {"time":"2026-01-01T00:00:00.101Z","seq":2,"event":"member_up","node":"rc1@127.0.0.1","generation":1767225600000,"renewal":0,"address":"127.0.0.1:4371"}
//! <- ...
//! ```
//!
//! With `since_start` the agent first replays its [history](super::history)
//! (the last [`HISTORY_LEN`](super::history::HISTORY_LEN) events; a first
//! `history_dropped` line counts older ones it no longer holds), then goes
//! on live. A client that reads too slowly never slows the agent: the
//! events it could not take in time are skipped and a `lagged` line says
//! how many.

use std::net::SocketAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, Lines};
use tokio::sync::broadcast;

use super::clock::rfc3339;
use super::history::RecordedEvent;
use crate::core::{Event, NodeId, NodeName};

/// What a monitor receives from the agent: the replay, then the live events.
#[derive(Debug)]
pub struct EventStream {
    /// The history, oldest first (empty unless asked for).
    pub replay: Vec<RecordedEvent>,
    /// Events older than the replay that the history dropped.
    pub dropped: u64,
    /// Every event from the end of the replay on.
    pub live: broadcast::Receiver<RecordedEvent>,
}

/// The kind of a monitor line: a membership event, or a note about the
/// stream itself (`lagged`, `history_dropped`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A member became active: it joined, or came back (`MemberUp`).
    MemberUp,
    /// A probe of an alive member failed; down unless it refutes.
    MemberSuspect,
    /// A suspect member refuted: alive again.
    MemberAlive,
    /// An active member was declared down (it is in `stopped_nodes`).
    MemberDown,
    /// A member restarted or renewed its identity.
    MemberRenewed,
    /// A member left the cluster (`cluster leave`).
    MemberLeft,
    /// A member was removed by `cluster force-leave` (also reported about
    /// this node when it learns it was removed).
    MemberRemoved,
    /// Autoclean forgot a member that had been down too long.
    MemberCleaned,
    /// This node is in a cluster: an active member knows it.
    Joined,
    /// This node has no active member left.
    Alone,
    /// The cluster declared this node down; it renewed its identity.
    SelfRenewed,
    /// Autoheal: a node from the other side of a partition was heard.
    PartitionDetected,
    /// Autoheal: that partition merged back.
    PartitionHealed,
    /// Autoheal: this node rejoined under a renewed identity
    /// (`lost_partition`: its side lost, resync application data).
    Rejoined,
    /// This client read too slowly: `missed` events were skipped.
    Lagged,
    /// The replay starts after `missed` older events the history dropped.
    HistoryDropped,
}

/// One line of `rollcall ctl monitor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorLine {
    /// When the agent reported the event (RFC 3339, UTC).
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// The event's number in the agent's history (none on `lagged` and
    /// `history_dropped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// What happened.
    pub event: EventKind,
    /// The node it is about (for `joined` and `alone`: none, this node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeName>,
    /// That node's generation (its start time in ms, or more after a join).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// That node's renewal within the generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<u32>,
    /// Where that node gossips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    /// `member_renewed`: the generation it had before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_generation: Option<u64>,
    /// `rejoined`: whether this node's side lost the partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_partition: Option<bool>,
    /// `lagged` and `history_dropped`: how many events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
}

impl MonitorLine {
    fn bare(time: SystemTime, event: EventKind) -> Self {
        Self {
            time,
            seq: None,
            event,
            node: None,
            generation: None,
            renewal: None,
            address: None,
            previous_generation: None,
            lost_partition: None,
            missed: None,
        }
    }

    fn about(mut self, id: &NodeId) -> Self {
        self.node = Some(id.name().clone());
        self.generation = Some(id.generation());
        self.renewal = Some(id.renewal());
        self.address = Some(id.addr());
        self
    }

    /// A note that `missed` events are not in the stream.
    pub fn missed(time: SystemTime, event: EventKind, missed: u64) -> Self {
        Self {
            missed: Some(missed),
            ..Self::bare(time, event)
        }
    }
}

impl From<&RecordedEvent> for MonitorLine {
    fn from(r: &RecordedEvent) -> Self {
        let line = |kind| MonitorLine {
            seq: Some(r.seq),
            ..MonitorLine::bare(r.at, kind)
        };
        match &r.event {
            Event::MemberUp(id) => line(EventKind::MemberUp).about(id),
            Event::MemberSuspect(id) => line(EventKind::MemberSuspect).about(id),
            Event::MemberAlive(id) => line(EventKind::MemberAlive).about(id),
            Event::MemberDown(id) => line(EventKind::MemberDown).about(id),
            Event::MemberRenewed { old, new } => MonitorLine {
                previous_generation: Some(old.generation()),
                ..line(EventKind::MemberRenewed).about(new)
            },
            Event::MemberLeft(id) => line(EventKind::MemberLeft).about(id),
            Event::NodeForceLeft(id) => line(EventKind::MemberRemoved).about(id),
            Event::NodeCleaned(name) => MonitorLine {
                node: Some(name.clone()),
                ..line(EventKind::MemberCleaned)
            },
            Event::Joined => line(EventKind::Joined),
            Event::Alone => line(EventKind::Alone),
            Event::SelfRenewed(id) => line(EventKind::SelfRenewed).about(id),
            Event::PartitionDetected { peer } => line(EventKind::PartitionDetected).about(peer),
            Event::PartitionHealed { peer } => line(EventKind::PartitionHealed).about(peer),
            Event::Rejoined { id, lost_partition } => MonitorLine {
                lost_partition: Some(*lost_partition),
                ..line(EventKind::Rejoined).about(id)
            },
        }
    }
}

/// Serves one monitor on the control socket: writes the replay (if any)
/// and then every event, until the client closes its end (`requests`
/// ends), a write fails or the agent stops.
pub(crate) async fn serve<R, W>(
    stream: EventStream,
    since_start: bool,
    mut requests: Lines<BufReader<R>>,
    write: &mut W,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let EventStream {
        replay,
        dropped,
        mut live,
    } = stream;
    if since_start {
        tracing::info!(
            "monitor connected (replaying {} events, {dropped} older dropped)",
            replay.len()
        );
    } else {
        tracing::info!("monitor connected");
    }
    if dropped > 0 {
        let first = replay.first().map_or_else(SystemTime::now, |e| e.at);
        let note = MonitorLine::missed(first, EventKind::HistoryDropped, dropped);
        if send(write, &note).await.is_err() {
            return;
        }
    }
    for e in &replay {
        if send(write, &MonitorLine::from(e)).await.is_err() {
            return;
        }
    }
    drop(replay);
    loop {
        let line = tokio::select! {
            received = live.recv() => match received {
                Ok(e) => MonitorLine::from(&e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    MonitorLine::missed(SystemTime::now(), EventKind::Lagged, n)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // The client sends nothing more; the end of its input (or an
            // error) means it has gone.
            request = requests.next_line() => match request {
                Ok(Some(_)) => continue,
                _ => return,
            },
        };
        if send(write, &line).await.is_err() {
            return;
        }
    }
}

/// Writes `value` as one line of JSON.
pub(crate) async fn send<W: AsyncWrite + Unpin>(
    write: &mut W,
    value: &impl Serialize,
) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id() -> NodeId {
        NodeId::new(
            "rc1@127.0.0.1".parse().unwrap(),
            "127.0.0.1:4371".parse().unwrap(),
            1_767_225_600_000,
        )
    }

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_000 + ms)
    }

    #[test]
    fn an_event_becomes_one_line_of_json_naming_the_node() {
        let r = RecordedEvent {
            seq: 7,
            at: at(123),
            event: Event::MemberDown(id()),
        };
        let text = serde_json::to_string(&MonitorLine::from(&r)).unwrap();
        assert_eq!(
            text,
            r#"{"time":"2026-01-01T00:00:00.123Z","seq":7,"event":"member_down","node":"rc1@127.0.0.1","generation":1767225600000,"renewal":0,"address":"127.0.0.1:4371"}"#
        );
        assert_eq!(
            serde_json::from_str::<MonitorLine>(&text).unwrap(),
            MonitorLine::from(&r)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_monitor_that_falls_behind_is_told_how_many_events_it_missed() {
        use tokio::io::AsyncBufReadExt;
        // Four events fit; ten were sent before the monitor read any.
        let (tx, live) = broadcast::channel(4);
        for seq in 1..=10 {
            let _ = tx.send(RecordedEvent {
                seq,
                at: at(seq),
                event: Event::Joined,
            });
        }
        drop(tx);
        let stream = EventStream {
            replay: Vec::new(),
            dropped: 0,
            live,
        };
        // The client's end stays open; the agent's end closes (tx dropped).
        let (_client, requests) = tokio::io::duplex(64);
        let mut out = Vec::new();
        serve(stream, false, BufReader::new(requests).lines(), &mut out).await;
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<MonitorLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0].event, EventKind::Lagged);
        assert_eq!(lines[0].missed, Some(6));
        let seqs: Vec<_> = lines[1..].iter().filter_map(|l| l.seq).collect();
        assert_eq!(seqs, [7, 8, 9, 10]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_replay_starts_with_how_many_older_events_were_dropped() {
        use tokio::io::AsyncBufReadExt;
        let (tx, live) = broadcast::channel(4);
        drop(tx);
        let replay = (3..=4)
            .map(|seq| RecordedEvent {
                seq,
                at: at(seq),
                event: Event::Alone,
            })
            .collect();
        let stream = EventStream {
            replay,
            dropped: 2,
            live,
        };
        let (_client, requests) = tokio::io::duplex(64);
        let mut out = Vec::new();
        serve(stream, true, BufReader::new(requests).lines(), &mut out).await;
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            r#"{"time":"2026-01-01T00:00:00.003Z","event":"history_dropped","missed":2}"#
        );
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn autoheal_autoclean_and_lag_lines_carry_what_they_are_about() {
        let rejoined = RecordedEvent {
            seq: 1,
            at: at(0),
            event: Event::Rejoined {
                id: id().renewed(),
                lost_partition: true,
            },
        };
        let line = MonitorLine::from(&rejoined);
        assert_eq!(line.event, EventKind::Rejoined);
        assert_eq!((line.lost_partition, line.renewal), (Some(true), Some(1)));
        let cleaned = RecordedEvent {
            seq: 2,
            at: at(0),
            event: Event::NodeCleaned(id().name().clone()),
        };
        let text = serde_json::to_string(&MonitorLine::from(&cleaned)).unwrap();
        assert_eq!(
            text,
            r#"{"time":"2026-01-01T00:00:00.000Z","seq":2,"event":"member_cleaned","node":"rc1@127.0.0.1"}"#
        );
        let lagged = MonitorLine::missed(at(5), EventKind::Lagged, 12);
        assert_eq!(
            serde_json::to_string(&lagged).unwrap(),
            r#"{"time":"2026-01-01T00:00:00.005Z","event":"lagged","missed":12}"#
        );
    }
}
