//! Unit tests of `Node`, one module per concern.

use super::*;
use crate::core::config::Config;
use crate::core::identity::{NodeId, Peer};
use crate::core::name::NodeName;
use crate::core::time::Time;
use crate::core::wire::{Envelope, Kind};
use rand::SeedableRng;
use std::net::SocketAddr;

/// Node `rc{i}@127.0.0.1` on port 4370 + i, alone, seeded by `i`.
fn node(i: u8) -> Node {
    let name: NodeName = format!("rc{i}@127.0.0.1").parse().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
    Node::new(NodeId::new(name, addr, 1), Config::lan(3), [i; 32]).unwrap()
}

/// `n` as a join target.
fn peer(n: &Node) -> Peer {
    Peer::new(n.identity().name().clone(), n.identity().addr())
}

/// Nodes 1 and 2 after 1 joined 2 and 2 took its announce: 2 knows 1, and
/// what 2 answered (and 1's sync summary) is still queued.
fn announced() -> (Node, Node) {
    let (mut a, mut b) = (node(1), node(2));
    a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
        .unwrap();
    let t = a.poll_transmit().unwrap();
    b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
    (a, b)
}

/// Hands `to` every datagram `from` has queued for it, at time zero.
fn deliver(to: &mut Node, from: &mut Node) {
    deliver_at(Time::ZERO, to, from);
}

/// Hands `to` every datagram `from` has queued for it, at `now`.
fn deliver_at(now: Time, to: &mut Node, from: &mut Node) {
    while let Some(t) = from.poll_transmit() {
        if t.to == to.identity().addr() {
            to.handle_datagram(now, from.identity().addr(), &t.payload);
        }
    }
}

/// Nodes 1 and 2 after 1's join and both answers: each knows the other.
fn acquainted() -> (Node, Node) {
    let (mut a, mut b) = (node(1), node(2));
    a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
        .unwrap();
    deliver(&mut b, &mut a);
    deliver(&mut a, &mut b);
    (a, b)
}

mod basics {
    use super::*;
    use crate::core::name::NodeName;

    #[test]
    fn a_new_node_is_alone_and_sends_nothing() {
        let mut a = node(1);
        assert_eq!(a.num_members(), 0);
        assert_eq!(a.poll_transmit(), None);
        assert_eq!(a.poll_event(), None);
    }

    #[test]
    fn join_sends_a_sealed_announce_to_the_peer_address() {
        let mut a = node(1);
        let b = node(2);
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        let t = a.poll_transmit().unwrap();
        assert_eq!(t.to, b.identity().addr());
        assert_eq!(t.payload[0], crate::core::wire::WIRE_VERSION);
        // The announce, and the summary that opens the join's sync round.
        assert_eq!(a.stats().datagrams_sent, 2);
        assert_eq!(a.stats().sync.datagrams_sent, 1);
    }

    #[test]
    fn joining_only_yourself_is_refused_without_sending() {
        let mut a = node(1);
        let me = peer(&a);
        assert_eq!(
            a.handle_command(Time::ZERO, Command::Join(vec![me])),
            Err(CommandError::NothingToJoin)
        );
        assert_eq!(a.poll_transmit(), None);
    }

    #[test]
    fn two_nodes_see_each_other_after_one_exchange() {
        let (mut a, mut b) = announced();
        assert_eq!(b.poll_event(), Some(Event::MemberUp(a.identity().clone())));
        let reply = b.poll_transmit().unwrap();
        a.handle_datagram(Time::ZERO, b.identity().addr(), &reply.payload);
        assert_eq!(a.num_members(), 1);
        assert_eq!(b.num_members(), 1);
        assert!(a.poll_timeout().is_some());
    }

    #[test]
    fn a_datagram_sealed_with_another_cookie_is_counted_and_never_decoded() {
        let mut a = node(1);
        let mut other = {
            let name: NodeName = "x@127.0.0.9".parse().unwrap();
            let cfg =
                Config::lan(3).with_cluster("rollcall", crate::core::config::Cookie::new("other"));
            Node::new(
                NodeId::new(name, "127.0.0.9:4370".parse().unwrap(), 1),
                cfg,
                [9; 32],
            )
            .unwrap()
        };
        other
            .handle_command(Time::ZERO, Command::Join(vec![peer(&a)]))
            .unwrap();
        let t = other.poll_transmit().unwrap();
        a.handle_datagram(Time::ZERO, other.identity().addr(), &t.payload);
        assert_eq!(a.stats().dropped.bad_seal, 1);
        assert_eq!(a.stats().dropped.malformed, 0);
        assert_eq!(a.num_members(), 0);
        assert_eq!(a.poll_event(), None);
    }

    #[test]
    fn after_leave_the_node_refuses_commands_and_drops_datagrams() {
        let (mut a, mut b) = announced();
        // The sync summary that followed a's announce.
        let t = a.poll_transmit().unwrap();
        b.handle_command(Time::ZERO, Command::Leave).unwrap();
        assert!(b.has_left());
        assert_eq!(b.poll_timeout(), None);
        assert_eq!(
            b.handle_command(Time::ZERO, Command::Leave),
            Err(CommandError::HasLeft)
        );
        b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
        assert_eq!(b.stats().dropped.after_leave, 1);
        while b.poll_transmit().is_some() {}
        b.handle_discovered(Time::ZERO, &[peer(&a)]);
        assert_eq!(
            b.poll_transmit(),
            None,
            "a node that left must not rediscover"
        );
    }

    #[test]
    fn after_leave_status_lists_only_this_node_until_it_joins_again() {
        let (mut a, mut b) = acquainted();
        assert_eq!(b.status().running_nodes.len(), 2);
        b.handle_command(Time::ZERO, Command::Leave).unwrap();
        // b still holds a's record, but lists only itself, as EMQX does.
        assert_eq!(b.membership().count(), 1);
        let s = b.status();
        assert_eq!(s.running_nodes, [b.identity().name().clone()]);
        assert!(s.stopped_nodes.is_empty());
        let states = b.member_states();
        assert_eq!(states.len(), 1);
        assert_eq!(&states[0].id, b.identity());
        assert_eq!(states[0].liveness, crate::core::Liveness::Alive);
        // Joining again lists the cluster again.
        while b.poll_transmit().is_some() {}
        b.handle_command(Time::ZERO, Command::Join(vec![peer(&a)]))
            .unwrap();
        deliver(&mut a, &mut b);
        deliver(&mut b, &mut a);
        assert_eq!(b.status().running_nodes.len(), 2);
    }

    #[test]
    fn join_after_leave_rejoins_with_a_renewed_identity_and_an_empty_view() {
        let (a, mut b) = announced();
        b.handle_command(Time::ZERO, Command::Leave).unwrap();
        while b.poll_transmit().is_some() {}
        let before = b.identity().generation();
        b.handle_command(Time::ZERO, Command::Join(vec![peer(&a)]))
            .unwrap();
        assert!(!b.has_left());
        assert_eq!(b.identity().generation(), before + 1);
        assert_eq!(b.membership().count(), 0);
        assert_eq!(b.poll_transmit().unwrap().to, a.identity().addr());
    }

    #[test]
    fn join_while_in_a_cluster_is_refused() {
        let (_a, mut b) = announced();
        let c = node(3);
        assert_eq!(
            b.handle_command(Time::ZERO, Command::Join(vec![peer(&c)])),
            Err(CommandError::AlreadyInCluster)
        );
    }

    #[test]
    fn discovered_seeds_are_announced_to_unless_already_members() {
        let (a, mut b) = announced();
        let c = node(3);
        while b.poll_transmit().is_some() {}
        b.handle_discovered(Time::ZERO, &[peer(&a), peer(&b), peer(&c)]);
        let sent: Vec<_> = std::iter::from_fn(|| b.poll_transmit())
            .map(|t| t.to)
            .collect();
        // An announce and a sync summary, both to the one non-member.
        assert_eq!(sent, [c.identity().addr(), c.identity().addr()]);
    }
}

mod force_leave {
    use super::*;

    #[test]
    fn force_leave_removes_a_member_from_both_lists() {
        let (a, mut b) = announced();
        assert_eq!(b.status().running_nodes.len(), 2);
        b.handle_command(Time::ZERO, Command::ForceLeave(a.identity().name().clone()))
            .unwrap();
        let s = b.status();
        assert_eq!(s.running_nodes, [b.identity().name().clone()]);
        assert!(s.stopped_nodes.is_empty());
        assert_eq!(b.departure(a.identity().name()), Some(Departure::ForceLeft));
        let events: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
        assert!(
            events.contains(&Event::NodeForceLeft(a.identity().clone())),
            "{events:?}"
        );
    }

    #[test]
    fn a_force_left_node_learns_it_was_removed_and_stops() {
        let (mut a, mut b) = announced();
        b.handle_command(Time::ZERO, Command::ForceLeave(a.identity().name().clone()))
            .unwrap();
        while let Some(t) = b.poll_transmit() {
            if t.to == a.identity().addr() {
                a.handle_datagram(Time::ZERO, b.identity().addr(), &t.payload);
            }
        }
        assert!(a.has_left());
        let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
        assert!(
            events.contains(&Event::NodeForceLeft(a.identity().clone())),
            "{events:?}"
        );
        assert_eq!(a.poll_timeout(), None, "a removed node keeps no timers");
    }

    #[test]
    fn force_leave_of_an_unknown_node_or_of_oneself_is_refused() {
        let (_a, mut b) = announced();
        let stranger: NodeName = "nobody@127.0.0.9".parse().unwrap();
        assert_eq!(
            b.handle_command(Time::ZERO, Command::ForceLeave(stranger.clone())),
            Err(CommandError::UnknownNode(stranger))
        );
        let me = b.identity().name().clone();
        assert_eq!(
            b.handle_command(Time::ZERO, Command::ForceLeave(me.clone())),
            Err(CommandError::ForceLeaveSelf(me))
        );
        assert_eq!(b.status().running_nodes.len(), 2);
    }
}

mod sync_merge {
    use super::*;
    use crate::core::rng::SeedRng;
    use crate::core::sync::{self, SyncMsg, SyncRecord};

    /// Seals `members` as a sync `Members` message from `from`.
    fn members_from(from: &Node, members: Vec<sync::Record>) -> Vec<u8> {
        let msg = SyncMsg::Members {
            session: 1,
            from: from.identity().clone(),
            want: 0,
            members: members
                .into_iter()
                .map(|member| SyncRecord {
                    member,
                    down_age_ms: 0,
                })
                .collect(),
            tombstones: vec![],
        };
        let c = Config::lan(3);
        let env = Envelope::new(c.cookie.as_bytes(), &c.cluster_name);
        let body = postcard::to_allocvec(&msg).unwrap();
        // A nonce of its own for each datagram: the same nonce twice is a
        // replay, and dropped.
        static SEALED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(9);
        let seed = SEALED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        env.seal(Kind::Sync, &body, &mut SeedRng::seed_from_u64(seed))
    }

    /// a knows b; b is then held down by a (force-left).
    fn a_holds_b_down() -> (Node, Node) {
        let (mut a, b) = acquainted();
        assert_eq!(a.num_members(), 1);
        let c = node(3);
        let down = foca::Member::new(b.identity().clone(), 0, foca::State::Down);
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![down]),
        );
        assert_eq!(a.status().stopped_nodes.len(), 1);
        (a, b)
    }

    #[test]
    fn a_force_left_member_stays_out_through_any_renewal_but_not_a_new_generation() {
        let (mut a, b) = acquainted();
        a.handle_command(Time::ZERO, Command::ForceLeave(b.identity().name().clone()))
            .unwrap();
        let c = node(3);
        let renewed = foca::Member::alive(b.identity().renewed().renewed());
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![renewed]),
        );
        let s = a.status();
        assert!(!s.running_nodes.contains(b.identity().name()) && s.stopped_nodes.is_empty());
        let restarted = foca::Member::alive(b.identity().next_generation());
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![restarted]),
        );
        assert!(a.status().running_nodes.contains(b.identity().name()));
        assert_eq!(a.departure(b.identity().name()), Some(Departure::ForceLeft));
    }

    #[test]
    fn a_sync_never_resurrects_a_member_held_down_at_the_same_generation() {
        let (mut a, b) = a_holds_b_down();
        let c = node(3);
        let stale = foca::Member::new(b.identity().clone(), 40, foca::State::Alive);
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![stale]),
        );
        let s = a.status();
        assert_eq!(s.stopped_nodes, [b.identity().name().clone()]);
        assert!(!s.running_nodes.contains(b.identity().name()));
    }

    #[test]
    fn a_sync_brings_back_a_member_with_a_newer_generation() {
        let (mut a, b) = a_holds_b_down();
        let c = node(3);
        let renewed = foca::Member::alive(b.identity().renewed());
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![renewed]),
        );
        assert!(a.status().running_nodes.contains(b.identity().name()));
        assert!(a.status().stopped_nodes.is_empty());
    }

    #[test]
    fn a_sync_record_older_than_the_one_held_is_ignored() {
        let (mut a, b) = acquainted();
        let c = node(3);
        let old = NodeId::new(b.identity().name().clone(), b.identity().addr(), 0);
        let down_old = foca::Member::new(old, 0, foca::State::Down);
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![down_old]),
        );
        assert!(a.status().running_nodes.contains(b.identity().name()));
    }

    #[test]
    fn a_large_sync_takes_what_is_new_and_leaves_what_is_held_unchanged() {
        let (mut a, _b) = acquainted();
        while a.poll_event().is_some() {}
        let c = node(3);
        let ids: Vec<NodeId> = (10..20).map(|i| node(i).identity().clone()).collect();
        let first: Vec<_> = ids[..9].iter().cloned().map(foca::Member::alive).collect();
        a.handle_datagram(Time::ZERO, c.identity().addr(), &members_from(&c, first));
        assert_eq!(a.num_members(), 10);
        let up: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
        assert_eq!(up.len(), 9, "{up:?}");
        // The same nine (one with a newer incarnation) and one new member.
        let mut second: Vec<_> = ids.iter().cloned().map(foca::Member::alive).collect();
        second[4] = foca::Member::new(ids[4].clone(), 3, foca::State::Alive);
        a.handle_datagram(Time::ZERO, c.identity().addr(), &members_from(&c, second));
        let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
        assert_eq!(events, [Event::MemberUp(ids[9].clone())]);
        assert_eq!(a.num_members(), 11);
        let incarnation = |id: &NodeId| {
            a.membership()
                .find(|m| m.id() == id)
                .map(|m| m.incarnation())
        };
        assert_eq!(incarnation(&ids[4]), Some(3));
        assert_eq!(incarnation(&ids[5]), Some(0));
        assert_eq!(a.stats().sync.records_received, 19);
        // The eight others were held exactly and never reached foca.
        assert_eq!(a.stats().sync.records_unchanged, 8);
    }

    #[test]
    fn a_digest_nobody_asked_for_is_rejected_and_counted() {
        let mut a = node(1);
        let c = node(3);
        let msg = SyncMsg::Digest {
            session: 77,
            from: c.identity().clone(),
            buckets: vec![0; sync::BUCKETS],
        };
        let cfg = Config::lan(3);
        let env = Envelope::new(cfg.cookie.as_bytes(), &cfg.cluster_name);
        let d = env.seal(
            Kind::Sync,
            &postcard::to_allocvec(&msg).unwrap(),
            &mut SeedRng::seed_from_u64(1),
        );
        a.handle_datagram(Time::ZERO, c.identity().addr(), &d);
        assert_eq!(a.stats().sync.rejected_unsolicited, 1);
        assert_eq!(a.stats().dropped.sync_rejected, 1);
        assert_eq!(a.poll_transmit(), None);
    }

    #[test]
    fn two_nodes_with_different_views_converge_in_one_round() {
        // a knows c; b knows nobody. One session from b to a gives b both.
        let (mut a, mut b, mut c) = (node(1), node(2), node(3));
        let pa = Peer::new(a.identity().name().clone(), a.identity().addr());
        c.handle_command(Time::ZERO, Command::Join(vec![pa.clone()]))
            .unwrap();
        deliver(&mut a, &mut c);
        while a.poll_transmit().is_some() {}
        b.open_sync(a.identity().addr(), a.identity().key());
        for _ in 0..4 {
            deliver(&mut a, &mut b);
            deliver(&mut b, &mut a);
        }
        let names: Vec<_> = b.members().map(|m| m.name().clone()).collect();
        assert!(
            names.contains(a.identity().name()) && names.contains(c.identity().name()),
            "{names:?}"
        );
        assert!(a.members().any(|m| m.name() == b.identity().name()));
    }
}

mod restore {
    use super::*;

    #[test]
    fn restored_members_are_alive_without_any_datagram_and_self_is_ignored() {
        let mk = |i: u8| {
            let name: NodeName = format!("rc{i}@127.0.0.1").parse().unwrap();
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
            NodeId::new(name, addr, 1)
        };
        let mut a = Node::new(mk(1), Config::lan(4), [1; 32]).unwrap();
        a.restore_members(Time::ZERO, [mk(1), mk(2), mk(3)]);
        assert_eq!(a.num_members(), 2);
        assert!(a.poll_timeout().is_some(), "the failure detector is armed");
        let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
        assert!(events.contains(&Event::MemberUp(mk(2))), "{events:?}");
    }
}

mod network_evidence {
    use super::*;
    use crate::core::node::Unreachable;
    use std::time::Duration;

    fn drain_events(n: &mut Node) -> Vec<Event> {
        std::iter::from_fn(|| n.poll_event()).collect()
    }

    fn state_of(a: &Node, b: &Node) -> Option<foca::State> {
        a.membership()
            .find(|m| m.id().name() == b.identity().name())
            .map(|m| m.state())
    }

    /// Runs `a`'s timers up to `until`.
    fn run_to(a: &mut Node, until: Time) {
        while let Some(t) = a.poll_timeout().filter(|t| *t <= until) {
            a.handle_timeout(t);
        }
    }

    #[test]
    fn an_unreachable_member_is_suspected_at_once_and_down_after_the_short_timeout() {
        let (mut a, b) = acquainted();
        drain_events(&mut a);
        let t0 = Time::from_duration(Duration::from_secs(1));
        assert_eq!(
            a.handle_unreachable(t0, b.identity().addr()),
            Unreachable::Suspected
        );
        assert_eq!(state_of(&a, &b), Some(foca::State::Suspect));
        // The suspect is told at once.
        assert!(std::iter::from_fn(|| a.poll_transmit()).any(|t| t.to == b.identity().addr()));
        let timeout = a.config().evidence_timeout;
        assert!(timeout < a.config().swim.suspect_to_down_after);
        run_to(&mut a, t0 + (timeout - Duration::from_millis(1)));
        assert_eq!(state_of(&a, &b), Some(foca::State::Suspect));
        run_to(&mut a, t0 + timeout);
        assert_eq!(state_of(&a, &b), Some(foca::State::Down));
        assert!(drain_events(&mut a).contains(&Event::MemberDown(b.identity().clone())));
        assert_eq!(a.stats().evidence.suspected, 1);
    }

    /// Runs both nodes' timers up to `until`, delivering every datagram
    /// between them as it is sent.
    fn run_pair(a: &mut Node, b: &mut Node, until: Time) {
        loop {
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= until)
                .min();
            let Some(t) = next else { break };
            if a.poll_timeout() == Some(t) {
                a.handle_timeout(t);
            } else {
                b.handle_timeout(t);
            }
            for _ in 0..4 {
                deliver_at(t, b, a);
                deliver_at(t, a, b);
            }
        }
    }

    #[test]
    fn a_live_member_refutes_a_forged_report_and_further_reports_are_ignored_for_a_while() {
        let (mut a, mut b) = acquainted();
        let t0 = Time::from_duration(Duration::from_secs(1));
        a.handle_unreachable(t0, b.identity().addr());
        // b hears it is suspected, refutes and answers a directly.
        deliver_at(t0, &mut b, &mut a);
        deliver_at(t0, &mut a, &mut b);
        assert_eq!(state_of(&a, &b), Some(foca::State::Alive));
        let timeout = a.config().evidence_timeout;
        run_pair(&mut a, &mut b, t0 + timeout * 2);
        assert_eq!(state_of(&a, &b), Some(foca::State::Alive));
        assert!(!drain_events(&mut a)
            .iter()
            .any(|e| matches!(e, Event::MemberDown(_))));
        let later = t0 + timeout * 3;
        assert_eq!(
            a.handle_unreachable(later, b.identity().addr()),
            Unreachable::Quiet
        );
        assert_eq!(state_of(&a, &b), Some(foca::State::Alive));
    }

    #[test]
    fn a_suspicion_and_its_refutation_are_reported_as_events_once_each() {
        let (mut a, mut b) = acquainted();
        drain_events(&mut a);
        let t0 = Time::from_duration(Duration::from_secs(1));
        a.handle_unreachable(t0, b.identity().addr());
        assert_eq!(
            drain_events(&mut a),
            [Event::MemberSuspect(b.identity().clone())]
        );
        let states = a.member_states();
        let of_b = states.iter().find(|m| &m.id == b.identity()).unwrap();
        assert_eq!(of_b.liveness, crate::core::Liveness::Suspect);
        // b hears it is suspected and refutes; a is told straight back.
        deliver_at(t0, &mut b, &mut a);
        deliver_at(t0, &mut a, &mut b);
        assert_eq!(state_of(&a, &b), Some(foca::State::Alive));
        let events = drain_events(&mut a);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::MemberAlive(id) if id == b.identity()))
                .count(),
            1,
            "{events:?}"
        );
        assert!(!events.iter().any(|e| matches!(e, Event::MemberSuspect(_))));
    }

    #[test]
    fn a_member_held_down_is_listed_down_since_it_went_down() {
        let (mut a, b) = acquainted();
        let t0 = Time::from_duration(Duration::from_secs(1));
        a.handle_unreachable(t0, b.identity().addr());
        let timeout = a.config().evidence_timeout;
        run_to(&mut a, t0 + timeout);
        let states = a.member_states();
        assert_eq!(states.len(), 2);
        let of_b = states.iter().find(|m| &m.id == b.identity()).unwrap();
        assert_eq!(of_b.liveness, crate::core::Liveness::Down);
        assert_eq!(of_b.down_since, Some(t0 + timeout));
        let of_a = states.iter().find(|m| &m.id == a.identity()).unwrap();
        assert_eq!(of_a.liveness, crate::core::Liveness::Alive);
    }

    #[test]
    fn a_report_about_an_unknown_address_or_with_evidence_off_changes_nothing() {
        let (mut a, b) = acquainted();
        let stranger: std::net::SocketAddr = "127.0.0.9:4370".parse().unwrap();
        assert_eq!(
            a.handle_unreachable(Time::ZERO, stranger),
            Unreachable::Unknown
        );
        let mut cfg = Config::lan(3);
        cfg.network_evidence = false;
        let name: NodeName = "rc7@127.0.0.1".parse().unwrap();
        let mut off = Node::new(
            NodeId::new(name, "127.0.0.1:4377".parse().unwrap(), 1),
            cfg,
            [7; 32],
        )
        .unwrap();
        assert_eq!(
            off.handle_unreachable(Time::ZERO, b.identity().addr()),
            Unreachable::Ignored
        );
        assert_eq!(state_of(&a, &b), Some(foca::State::Alive));
        assert_eq!(a.stats().evidence.ignored, 1);
    }
}

mod counters {
    use super::*;
    use std::time::Duration;

    /// Runs `n`'s timers up to `until`, delivering nothing.
    fn run_alone(n: &mut Node, until: Time) {
        while let Some(t) = n.poll_timeout().filter(|t| *t <= until) {
            n.handle_timeout(t);
            while n.poll_transmit().is_some() {}
        }
    }

    #[test]
    fn a_datagram_delivered_twice_is_handled_once_and_the_copy_counted_as_replayed() {
        let (mut a, mut b) = (node(1), node(2));
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        let announce = a.poll_transmit().unwrap().payload;
        b.handle_datagram(Time::ZERO, a.identity().addr(), &announce);
        let answered = std::iter::from_fn(|| b.poll_transmit()).count();
        assert!(answered > 0, "b answers the announce");
        for _ in 0..3 {
            b.handle_datagram(Time::ZERO, a.identity().addr(), &announce);
        }
        assert_eq!(b.poll_transmit().map(|t| t.to), None, "no answer to a copy");
        assert_eq!(b.stats().dropped.replayed, 3);
        assert_eq!(b.stats().datagrams_received, 4);
        assert_eq!(b.num_members(), 1);
    }

    #[test]
    fn a_refuted_suspicion_raises_the_incarnation_and_is_counted() {
        let (mut a, mut b) = acquainted();
        assert_eq!((b.incarnation(), b.stats().refuted), (0, 0));
        let t0 = Time::from_duration(Duration::from_secs(1));
        a.handle_unreachable(t0, b.identity().addr());
        let suspect = MemberCounts {
            suspect: 1,
            ..MemberCounts::default()
        };
        assert_eq!(a.member_counts(), suspect);
        // b hears it is suspected and refutes.
        deliver_at(t0, &mut b, &mut a);
        deliver_at(t0, &mut a, &mut b);
        assert_eq!((b.incarnation(), b.stats().refuted), (1, 1));
        assert_eq!(a.member_counts().alive, 1);
        assert_eq!(a.incarnation(), 0);
    }

    #[test]
    fn probes_downs_and_autoclean_removals_are_counted_and_leave_zeroes_the_members() {
        let mut config = Config::lan(3);
        config.autoclean = Some(Duration::from_secs(60));
        let name: NodeName = "rc1@127.0.0.1".parse().unwrap();
        let mut a = Node::new(
            NodeId::new(name, "127.0.0.1:4371".parse().unwrap(), 1),
            config,
            [1; 32],
        )
        .unwrap();
        let mut b = node(2);
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        deliver(&mut b, &mut a);
        deliver(&mut a, &mut b);
        assert_eq!(a.member_counts().alive, 1);
        // b goes silent: a's probes fail and b goes down, then is cleaned.
        run_alone(&mut a, Time::from_duration(Duration::from_secs(30)));
        let l = a.stats().lifeguard;
        assert!(l.probes_sent >= 1 && l.probes_failed >= 1, "{l:?}");
        assert_eq!(a.member_counts().down, 1);
        let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
        assert!(events.contains(&Event::MemberDown(b.identity().clone())));
        assert_eq!(a.stats().members_down, 1);
        run_alone(&mut a, Time::from_duration(Duration::from_secs(300)));
        let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
        assert!(events.contains(&Event::NodeCleaned(b.identity().name().clone())));
        assert_eq!(a.stats().autoclean_removed, 1);
        assert_eq!(a.member_counts(), MemberCounts::default());

        let (mut c, _) = acquainted();
        assert_eq!(c.member_counts().alive, 1);
        c.handle_command(Time::ZERO, Command::Leave).unwrap();
        assert_eq!(c.member_counts(), MemberCounts::default());
    }
}

mod roles {
    use super::*;
    use crate::core::membership::NO_CORE_RUNNING;
    use crate::core::role::Role;

    /// Node `rc{i}@127.0.0.1` with `role`, alone, seeded by `i`.
    fn with_role(i: u8, role: Role) -> Node {
        let name: NodeName = format!("rc{i}@127.0.0.1").parse().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
        let mut config = Config::lan(3);
        config.role = role;
        Node::new(NodeId::new(name, addr, 1), config, [i; 32]).unwrap()
    }

    /// Delivers every queued datagram between `nodes` until none is left.
    fn settle_all(nodes: &mut [&mut Node]) {
        for _ in 0..50 {
            let mut moved = false;
            for i in 0..nodes.len() {
                while let Some(t) = nodes[i].poll_transmit() {
                    let from = nodes[i].identity().addr();
                    if let Some(to) = nodes.iter_mut().find(|n| n.identity().addr() == t.to) {
                        to.handle_datagram(Time::ZERO, from, &t.payload);
                        moved = true;
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn role_of(at: &Node, of: &Node) -> Option<Role> {
        at.membership()
            .find(|m| m.id().name() == of.identity().name())
            .map(|m| m.id().role())
    }

    #[test]
    fn a_node_gossips_the_role_its_config_gives() {
        let mut r = with_role(1, Role::Replicant);
        assert_eq!(r.identity().role(), Role::Replicant);
        // Its identity changes keep the role.
        r.handle_command(Time::ZERO, Command::Leave).unwrap();
        assert_eq!(r.identity().role(), Role::Replicant);
    }

    #[test]
    fn a_replicants_role_reaches_other_nodes_through_gossip_and_sync() {
        let (mut r, mut b, mut c) = (
            with_role(1, Role::Replicant),
            with_role(2, Role::Core),
            with_role(3, Role::Core),
        );
        // The replicant finds b through discovery; b and r learn each
        // other's role from the announce and its answer.
        r.handle_discovered(Time::ZERO, &[peer(&b)]);
        settle_all(&mut [&mut r, &mut b]);
        assert_eq!(role_of(&b, &r), Some(Role::Replicant));
        assert_eq!(role_of(&r, &b), Some(Role::Core));
        // c joins b and learns r (and its role) from b's view.
        c.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        settle_all(&mut [&mut r, &mut b, &mut c]);
        assert_eq!(role_of(&c, &r), Some(Role::Replicant));
        assert_eq!(role_of(&c, &b), Some(Role::Core));
        let status = c.status();
        assert_eq!(status.role(r.identity().name()), Some(Role::Replicant));
        assert_eq!(status.role(c.identity().name()), Some(Role::Core));
        // Each side summary counts the core nodes: b and c, not r.
        let side = c.side();
        assert_eq!((side.size, side.cores), (3, 2));
        let states = c.member_states();
        let roles: Vec<Role> = states.iter().map(|m| m.id.role()).collect();
        assert_eq!(roles, [Role::Replicant, Role::Core, Role::Core]);
    }

    #[test]
    fn a_down_update_under_another_role_leaves_the_core_count_right() {
        // c holds b (core) and r (replicant) active, and has counted its
        // side's core nodes.
        let mut c = with_role(3, Role::Core);
        let b = with_role(2, Role::Core);
        let r = with_role(1, Role::Replicant);
        c.restore_members(Time::ZERO, [b.identity().clone(), r.identity().clone()]);
        assert_eq!(c.side().cores, 2);
        // b says r is down, naming r's very identity but as a core node.
        let header = foca::Header {
            src: b.identity().clone(),
            src_incarnation: 0,
            dst: c.identity().clone(),
            message: foca::Message::Gossip,
        };
        let down = foca::Member::new(
            r.identity().clone().with_role(Role::Core),
            1,
            foca::State::Down,
        );
        let mut body = Vec::new();
        foca::Codec::encode_header(&mut foca::PostcardCodec, &header, &mut body).unwrap();
        body.extend_from_slice(&1u16.to_be_bytes());
        foca::Codec::encode_member(&mut foca::PostcardCodec, &down, &mut body).unwrap();
        let config = Config::lan(3);
        let envelope = Envelope::new(config.cookie.as_bytes(), &config.cluster_name);
        let datagram = envelope.seal(Kind::Gossip, &body, &mut SeedRng::seed_from_u64(1));
        c.handle_datagram(Time::ZERO, b.identity().addr(), &datagram);
        assert_eq!(c.num_members(), 1, "r is down");
        // The replicant went down: c and b remain, both core nodes.
        assert_eq!((c.side().size, c.side().cores), (2, 2));
    }

    #[test]
    fn a_buried_record_renamed_in_the_same_packet_keeps_the_lowest_name_right() {
        let mut c = with_role(3, Role::Core);
        let b = with_role(1, Role::Core);
        c.restore_members(Time::ZERO, [b.identity().clone()]);
        assert_eq!(c.side().lowest.as_str(), "rc1@127.0.0.1");
        let config = Config::lan(3);
        let envelope = Envelope::new(config.cookie.as_bytes(), &config.cluster_name);
        let mut rng = SeedRng::seed_from_u64(1);
        // b tells c that ghost left at generation 1.
        let ghost = |generation| {
            let name: NodeName = "ghost@127.0.0.9".parse().unwrap();
            NodeId::new(name, SocketAddr::from(([127, 0, 0, 9], 4370)), generation)
        };
        let notice = crate::core::sync::SyncMsg::Notice {
            from: b.identity().clone(),
            tombstone: crate::core::tombstone::Tombstone::of(&ghost(1), Departure::Left),
        };
        let body = postcard::to_allocvec(&notice).unwrap();
        let datagram = envelope.seal(Kind::Sync, &body, &mut rng);
        c.handle_datagram(Time::ZERO, b.identity().addr(), &datagram);
        assert_eq!(c.departure(ghost(1).name()), Some(Departure::Left));
        // Then one packet names ghost at generation 1 (buried) and at 3
        // (back under a new generation): foca renames the first record to
        // the second before c buries the first.
        let header = foca::Header {
            src: b.identity().clone(),
            src_incarnation: 0,
            dst: c.identity().clone(),
            message: foca::Message::Gossip,
        };
        let mut body = Vec::new();
        foca::Codec::encode_header(&mut foca::PostcardCodec, &header, &mut body).unwrap();
        body.extend_from_slice(&2u16.to_be_bytes());
        for generation in [1, 3] {
            let up = foca::Member::alive(ghost(generation));
            foca::Codec::encode_member(&mut foca::PostcardCodec, &up, &mut body).unwrap();
        }
        let datagram = envelope.seal(Kind::Gossip, &body, &mut rng);
        c.handle_datagram(Time::ZERO, b.identity().addr(), &datagram);
        assert!(c.members().any(|m| m == &ghost(3)), "ghost runs again");
        assert_eq!(c.side().lowest.as_str(), "ghost@127.0.0.9");
    }

    #[test]
    fn an_explicit_join_on_a_replicant_is_refused_and_sends_nothing() {
        let mut r = with_role(1, Role::Replicant);
        let b = with_role(2, Role::Core);
        let e = r
            .handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap_err();
        assert_eq!(e, CommandError::ReplicantJoin);
        assert!(
            e.to_string()
                .contains("replicants join through automatic discovery only"),
            "{e}"
        );
        assert_eq!(r.poll_transmit(), None);
        assert_eq!(r.num_members(), 0);
        // Also after leaving: a replicant comes back by a restart.
        r.handle_command(Time::ZERO, Command::Leave).unwrap();
        assert_eq!(
            r.handle_command(Time::ZERO, Command::Join(vec![peer(&b)])),
            Err(CommandError::ReplicantJoin)
        );
    }

    #[test]
    fn status_says_no_core_node_is_running_until_one_is() {
        let (mut r1, mut r2, mut c) = (
            with_role(1, Role::Replicant),
            with_role(2, Role::Replicant),
            with_role(3, Role::Core),
        );
        r1.handle_discovered(Time::ZERO, &[peer(&r2)]);
        settle_all(&mut [&mut r1, &mut r2]);
        let s = r1.status();
        assert_eq!(s.running_nodes.len(), 2);
        assert!(s.no_core_running);
        assert!(s.to_string().ends_with(NO_CORE_RUNNING), "{s}");
        c.handle_discovered(Time::ZERO, &[peer(&r1)]);
        settle_all(&mut [&mut r1, &mut r2, &mut c]);
        let s = r1.status();
        assert_eq!(s.running_nodes.len(), 3, "{s}");
        assert!(!s.no_core_running);
        assert!(!s.to_string().contains(NO_CORE_RUNNING));
        // A core node alone is a cluster with a core node.
        assert!(!with_role(4, Role::Core).status().no_core_running);
    }
}
