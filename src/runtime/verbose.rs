//! `cluster status --verbose`: every node with its state, role,
//! generation, address, and since when it is in that state.
//!
//! The state comes from the core ([`Node::member_states`]). Since when is
//! recorded by the owner task from the events, as it reports them: a
//! member's `MemberUp`, `MemberSuspect`, `MemberAlive`, `MemberDown` or
//! `MemberRenewed` sets the time its current state began; this node's own
//! time restarts when its identity changes (a join after leaving, a
//! renewal) or when it leaves. For a down member the core's date wins: the
//! earliest report of that down any node made, which autoclean counts
//! from (a member learned down from another node's view has no event
//! here). A state the events did not announce has no date (`null`, `-`).
//!
//! [`Node::member_states`]: crate::core::Node::member_states

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::clock::{rfc3339, Clock};
use crate::core::name::NameKey;
use crate::core::{Event, Liveness, MemberState, NodeId, NodeName, Role, Status, Time};

/// A verbose status: EMQX's two lists, and each node's details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerboseStatus {
    /// `running_nodes` and `stopped_nodes`, as in the plain status.
    #[serde(flatten)]
    pub status: Status,
    /// Every node in those lists, this one included, sorted by name.
    pub members: Vec<MemberReport>,
}

/// One node in a verbose status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    /// Its name.
    pub node: NodeName,
    /// `alive`, `suspect` or `down`.
    pub state: Liveness,
    /// `core` or `replicant`.
    pub role: Role,
    /// Its generation: the start time in ms since the Unix epoch, plus one
    /// per join after a leave.
    pub generation: u64,
    /// Its renewal within the generation (after a false down, or a lost
    /// partition).
    pub renewal: u32,
    /// Where it gossips.
    pub address: SocketAddr,
    /// Since when it is in that state, if this node knows.
    #[serde(with = "rfc3339::option")]
    pub since: Option<SystemTime>,
}

impl VerboseStatus {
    /// The status line, then a table of the members, with each state's
    /// age as of `now`.
    pub fn to_text(&self, now: SystemTime) -> String {
        let rows: Vec<[String; 6]> = self
            .members
            .iter()
            .map(|m| {
                let since = match m.since {
                    Some(t) => format!(
                        "{} ({} ago)",
                        humantime::format_rfc3339_millis(t),
                        ago(now, t)
                    ),
                    None => "-".to_owned(),
                };
                [
                    m.node.to_string(),
                    m.state.to_string(),
                    m.role.to_string(),
                    m.generation.to_string(),
                    m.address.to_string(),
                    since,
                ]
            })
            .collect();
        let header = ["NODE", "STATE", "ROLE", "GENERATION", "ADDRESS", "SINCE"].map(str::to_owned);
        let mut width = [0usize; 6];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = format!("{}\n", self.status);
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row
                .iter()
                .zip(width)
                .map(|(cell, w)| format!("{cell:w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out.pop();
        out
    }
}

/// How long before `now` `t` was, to the second (`0s` for the future).
fn ago(now: SystemTime, t: SystemTime) -> humantime::FormattedDuration {
    let d = now.duration_since(t).unwrap_or_default();
    humantime::format_duration(Duration::from_secs(d.as_secs()))
}

/// How many members' times the owner task remembers at most.
const MAX_REMEMBERED: usize = 65_536;

/// Since when each member, and this node, is in its state, from the events.
#[derive(Debug)]
pub(crate) struct Since {
    members: HashMap<NameKey, ((u64, u32), Liveness, Time)>,
    /// This node: its version, whether it has left, and since when.
    me: ((u64, u32), bool, Time),
}

impl Since {
    /// Times for a node that started at `start` under `me`.
    pub(crate) fn new(me: &NodeId, start: Time) -> Self {
        Self {
            members: HashMap::new(),
            me: (me.version(), false, start),
        }
    }

    /// Notes what `event`, reported at `now`, changes.
    pub(crate) fn follow(&mut self, event: &Event, now: Time) {
        let (id, liveness) = match event {
            Event::MemberUp(id) | Event::MemberAlive(id) => (id, Liveness::Alive),
            Event::MemberRenewed { new, .. } => (new, Liveness::Alive),
            Event::MemberSuspect(id) => (id, Liveness::Suspect),
            Event::MemberDown(id) => (id, Liveness::Down),
            Event::MemberLeft(id) | Event::NodeForceLeft(id) => {
                self.members.remove(&id.name().key());
                return;
            }
            Event::NodeCleaned(name) => {
                self.members.remove(&name.key());
                return;
            }
            _ => return,
        };
        let key = id.name().key();
        if self.members.len() < MAX_REMEMBERED || self.members.contains_key(&key) {
            self.members.insert(key, (id.version(), liveness, now));
        }
    }

    /// Notes this node's identity and whether it has left, after an input
    /// at `now`: a change restarts its time. Leaving forgets the members.
    pub(crate) fn follow_self(&mut self, me: &NodeId, left: bool, now: Time) {
        if (me.version(), left) != (self.me.0, self.me.1) {
            self.me = (me.version(), left, now);
            if left {
                self.members.clear();
            }
        }
    }

    /// Since when `m` is in its state, if known.
    fn of(&self, m: &MemberState, me: &NodeId) -> Option<Time> {
        if m.id.name() == me.name() {
            return Some(self.me.2);
        }
        if let Some(t) = m.down_since.filter(|_| m.liveness == Liveness::Down) {
            return Some(t);
        }
        self.members
            .get(&m.id.name().key())
            .filter(|(version, liveness, _)| *version == m.id.version() && *liveness == m.liveness)
            .map(|(.., t)| *t)
    }

    /// The verbose status of a node whose plain status is `status`, whose
    /// identity is `me` and whose members are `members`.
    pub(crate) fn report(
        &self,
        status: Status,
        me: &NodeId,
        members: Vec<MemberState>,
        clock: &Clock,
    ) -> VerboseStatus {
        let members = members
            .into_iter()
            .map(|m| MemberReport {
                since: self.of(&m, me).map(|t| clock.wall(t)),
                node: m.id.name().clone(),
                state: m.liveness,
                role: m.id.role(),
                generation: m.id.generation(),
                renewal: m.id.renewal(),
                address: m.id.addr(),
            })
            .collect();
        VerboseStatus { status, members }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, generation: u64) -> NodeId {
        NodeId::new(
            name.parse().unwrap(),
            "127.0.0.1:4371".parse().unwrap(),
            generation,
        )
    }

    fn at(s: u64) -> Time {
        Time::ZERO + Duration::from_secs(s)
    }

    fn state(id: &NodeId, liveness: Liveness) -> MemberState {
        MemberState {
            id: id.clone(),
            liveness,
            down_since: None,
        }
    }

    #[test]
    fn each_state_dates_from_the_event_that_began_it() {
        let me = id("rc@127.0.0.1", 1);
        let b = id("rc1@127.0.0.1", 1);
        let mut since = Since::new(&me, Time::ZERO);
        since.follow(&Event::MemberUp(b.clone()), at(1));
        assert_eq!(since.of(&state(&b, Liveness::Alive), &me), Some(at(1)));
        since.follow(&Event::MemberSuspect(b.clone()), at(5));
        assert_eq!(since.of(&state(&b, Liveness::Suspect), &me), Some(at(5)));
        // A state no event announced has no date.
        assert_eq!(since.of(&state(&b, Liveness::Alive), &me), None);
        since.follow(&Event::MemberAlive(b.clone()), at(6));
        assert_eq!(since.of(&state(&b, Liveness::Alive), &me), Some(at(6)));
        // A down member's date is the core's when it has one.
        let down = MemberState {
            down_since: Some(at(3)),
            ..state(&b, Liveness::Down)
        };
        since.follow(&Event::MemberDown(b.clone()), at(9));
        assert_eq!(since.of(&down, &me), Some(at(3)));
        // Another generation is another member.
        assert_eq!(
            since.of(&state(&id("rc1@127.0.0.1", 2), Liveness::Down), &me),
            None
        );
        // This node: since its start, then since it left.
        assert_eq!(
            since.of(&state(&me, Liveness::Alive), &me),
            Some(Time::ZERO)
        );
        since.follow_self(&me, true, at(20));
        assert_eq!(since.of(&state(&me, Liveness::Alive), &me), Some(at(20)));
        assert_eq!(since.members.len(), 0);
    }

    #[test]
    fn the_verbose_status_keeps_both_lists_and_adds_a_member_table() {
        let me = id("rc@127.0.0.1", 1);
        let status = Status::new(
            (me.name().clone(), Role::Core),
            [("rc1@127.0.0.1".parse().unwrap(), Role::Replicant, false)],
        );
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_000);
        let v = VerboseStatus {
            status,
            members: vec![
                MemberReport {
                    node: me.name().clone(),
                    state: Liveness::Alive,
                    role: Role::Core,
                    generation: 1,
                    renewal: 0,
                    address: "127.0.0.1:4370".parse().unwrap(),
                    since: Some(t0),
                },
                MemberReport {
                    node: "rc1@127.0.0.1".parse().unwrap(),
                    state: Liveness::Down,
                    role: Role::Replicant,
                    generation: 1,
                    renewal: 0,
                    address: "127.0.0.1:4371".parse().unwrap(),
                    since: None,
                },
            ],
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"{"running_nodes":["rc@127.0.0.1"],"stopped_nodes":["rc1@127.0.0.1"],"roles":{"rc1@127.0.0.1":"replicant","rc@127.0.0.1":"core"},"members":[{"node":"rc@127.0.0.1","state":"alive","role":"core","generation":1,"renewal":0,"address":"127.0.0.1:4370","since":"2026-01-01T00:00:00.000Z"},{"node":"rc1@127.0.0.1","state":"down","role":"replicant","generation":1,"renewal":0,"address":"127.0.0.1:4371","since":null}]}"#
        );
        assert_eq!(serde_json::from_str::<VerboseStatus>(&json).unwrap(), v);
        let text = v.to_text(t0 + Duration::from_secs(75));
        assert_eq!(
            text,
            "Cluster status: running_nodes: ['rc@127.0.0.1'] stopped_nodes: ['rc1@127.0.0.1']\n\
             NODE           STATE  ROLE       GENERATION  ADDRESS         SINCE\n\
             rc@127.0.0.1   alive  core       1           127.0.0.1:4370  2026-01-01T00:00:00.000Z (1m 15s ago)\n\
             rc1@127.0.0.1  down   replicant  1           127.0.0.1:4371  -"
        );
    }
}
