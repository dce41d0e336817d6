#!/usr/bin/env python3
"""rollcall agents under hostile traffic and a broken network (root, Linux).

A cluster of N (default 10) real `rollcall agent` processes, each in a
network namespace of its own on one bridge (the layout of
bench/compare/compare.py, whose helpers this script uses), and one more
namespace for the attacker, which runs `examples/flood.rs` pinned to one
core (`taskset -c 1`). One agent, the victim (agent 1), is flooded for
--seconds (default 60) with each kind in turn:

  wrong-cookie  envelopes of the right cluster sealed under another cookie
  random        random bytes of random length
  replay        datagrams captured on the victim's link, resent as they were
                (they open under the cookie; the victim drops each copy as
                `replayed`)
  spoofed       the captured datagrams and wrong-cookie ones, each from a
                source address the attacker does not own (the members'
                addresses and 64 unused ones of the subnet)

During each flood every agent's member list is polled twice a second: a
"false alarm" is any agent listing a live agent as stopped. Halfway through
the flood one other agent is killed (SIGKILL) and the time until every
survivor lists it stopped is measured; after the flood it is restarted and
the cluster must list all N running again. Measured on the victim: CPU
(% of a core, and the CPU time per 100,000 hostile datagrams after its
idle rate is taken off), RSS (before, highest, after), the longest answer to
a `status` request on its control socket (its owner task is the one that
handles datagrams), and the accounting of every datagram: what the flooder
sent = what the kernel delivered to the victim's socket (and the agent
counted, by drop reason) + what the kernel dropped (receive buffer full,
counted in the victim namespace's /proc/net/snmp) + what the victim's link
dropped, less the cluster's own traffic over the same time (its rate is
measured before the flood).

Then two network faults, each followed by a check that every live agent
lists all N running again (within --settle s) and that no process exited:

  one-way    agent 2 hears agent 3, agent 3 does not hear agent 2 (a
             bridge nft rule dropping 2 -> 3 only), held --hold s
  flap       agent 4's link goes down and up every 2 s for --flap s

Usage: sudo bench/hostile/hostile.py [--agents 10] [--seconds 60]
           [--kinds wrong-cookie,random,replay,spoofed] [--json FILE]
Builds `rollcall` and the `flood` example (release) unless --rollcall and
--flood name binaries. Exits non-zero if a check failed.
"""

import argparse
import atexit
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compare"))
import compare  # noqa: E402
from compare import Net, RollcallAgent, addr, log, loadavg, proc_stats, run  # noqa: E402

PORT = 4370
VICTIM = 1
CRASHED = 7
ONE_WAY = (2, 3)
FLAPPING = 4
KINDS = ["wrong-cookie", "random", "replay", "spoofed"]
# Where each kind's datagrams are expected to end up in the victim's counters.
EXPECTED_DROPS = {
    "wrong-cookie": ["bad_seal"],
    "random": ["too_short", "unknown_version", "other_cluster"],
    "replay": ["replayed"],
    "spoofed": ["bad_seal", "replayed"],
}
CUT_TABLE = "rchostile"


def stats_of(agent):
    answer = agent.request({"command": "stats"}, timeout=5.0)
    answer = answer.get("ok", answer)
    return answer["stats"]


def snmp_udp(ns):
    """The Udp counters of namespace `ns` as a dict."""
    text = run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"])
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Udp:")]
    return dict(zip(rows[0], (int(x) for x in rows[1])))


def link_rx_dropped(ns):
    info = json.loads(run(["ip", "-n", ns, "-s", "-j", "link", "show", "eth0"]))[0]
    return info["stats64"]["rx"]["dropped"]


def softnet_dropped():
    total = 0
    with open("/proc/net/softnet_stat") as f:
        for line in f:
            total += int(line.split()[1], 16)
    return total


class Snapshot:
    """Everything counted about the victim at one moment."""

    def __init__(self, agent, net):
        self.at = time.time()
        self.stats = stats_of(agent)
        self.rss, self.anon, self.cpu_ns = proc_stats(agent.proc.pid)
        self.udp = snmp_udp(net.ns(agent.index))
        self.link_dropped = link_rx_dropped(net.ns(agent.index))
        self.softnet = softnet_dropped()

    def received(self):
        t = self.stats["transport"]
        return t["received"] + t.get("too_large", 0) + t.get("unreadable", 0)

    def drops(self):
        return self.stats["node"]["dropped"]


def capture(net, victim, seconds):
    """Datagrams sent to the victim's gossip port, read off its link."""
    sock = compare.socket_in_netns(net.ns(victim.index), socket.AF_PACKET, socket.SOCK_RAW,
                                   socket.htons(0x0800))
    sock.bind(("eth0", 0x0800))
    sock.settimeout(0.2)
    want = socket.inet_aton(addr(victim.index))
    seen, out = set(), []
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            frame = sock.recv(65536)
        except socket.timeout:
            continue
        ip = frame[14:]
        if len(ip) < 28 or ip[9] != 17 or ip[16:20] != want:
            continue
        ihl = (ip[0] & 0x0F) * 4
        dport = struct.unpack("!H", ip[ihl + 2:ihl + 4])[0]
        payload = ip[ihl + 8:struct.unpack("!H", ip[2:4])[0]]
        if dport == PORT and payload not in seen:
            seen.add(payload)
            out.append(payload)
    sock.close()
    return out


def all_running(agents, n, within, what):
    names = {a.name for a in agents}
    return compare.poll_until(
        agents, lambda v: all(v.get(x) == "alive" for x in names) and len(v) >= n,
        within, 0.25, what)


def one_way_rules(net, a, b):
    rules = (f"table bridge {CUT_TABLE} {{\n  chain cut {{\n"
             f"    type filter hook forward priority 0; policy accept;\n"
             f"    ip saddr {addr(a)} ip daddr {addr(b)} drop\n  }}\n}}\n")
    run(["ip", "netns", "exec", net.bridge(), "nft", "-f", "-"], input_text=rules)


def lift_one_way(net):
    subprocess.run(["ip", "netns", "exec", net.bridge(), "nft", "delete", "table", "bridge",
                    CUT_TABLE], capture_output=True, timeout=20)


class Watch:
    """Polls every live agent's member list; records false alarms (a live
    agent listed stopped by another) and the victim's slowest status answer."""

    def __init__(self, agents, victim):
        self.agents = agents
        self.victim = victim
        self.false_alarms = []
        self.slowest_status = 0.0
        self.exited = []

    def round(self, dead=()):
        live = [a for a in self.agents if a.index not in dead]
        live_names = {a.name for a in live}
        for a in live:
            if not a.alive():
                self.exited.append(a.name)
                raise compare.RunFailed(f"{a.name} exited with {a.proc.returncode}")
            t0 = time.time()
            v = a.view()
            took = time.time() - t0
            if a is self.victim:
                self.slowest_status = max(self.slowest_status, took)
            if v is None:
                continue
            for name, state in v.items():
                if name in live_names and state == "failed":
                    self.false_alarms.append((round(time.time(), 2), a.name, name))


def flood_phase(kind, args, net, agents, victim, capture_file):
    n = len(agents)
    all_running(agents, n, 60, f"all {n} running before {kind}")
    # The victim's idle rate: CPU and the cluster's own datagrams.
    idle0 = Snapshot(victim, net)
    time.sleep(args.idle)
    idle1 = Snapshot(victim, net)
    idle_s = idle1.at - idle0.at
    idle_cpu_rate = (idle1.cpu_ns - idle0.cpu_ns) / idle_s
    idle_recv_rate = (idle1.received() - idle0.received()) / idle_s

    spoof = [f"{addr(i)}:{PORT}" for i in range(n) if i != victim.index]
    spoof += [f"{compare.SUBNET}.{100 + j}:{40000 + j}" for j in range(64)]
    argv = ["ip", "netns", "exec", net.ns(n), "taskset", "-c", "1", args.flood,
            "--to", f"{addr(victim.index)}:{PORT}", "--kind", kind,
            "--seconds", str(args.seconds), "--capture", capture_file,
            "--spoof", ",".join(spoof)]
    before = Snapshot(victim, net)
    rss_max = before.rss
    flooder = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch = Watch(agents, victim)
    crash_at = before.at + args.seconds / 2
    crashed = agents[CRASHED]
    crash_detect = None
    dead = set()
    while flooder.poll() is None:
        t0 = time.time()
        if crash_detect is None and not dead and t0 >= crash_at:
            crashed.kill()
            dead.add(crashed.index)
            killed_at = time.time()
        watch.round(dead)
        if dead and crash_detect is None:
            survivors = [a for a in agents if a.index not in dead]
            views = [a.view() for a in survivors]
            if all(v is not None and v.get(crashed.name) == "failed" for v in views):
                crash_detect = time.time() - killed_at
        rss_max = max(rss_max, proc_stats(victim.proc.pid)[0])
        time.sleep(max(0.0, 0.5 - (time.time() - t0)))
    out, err = flooder.communicate()
    if flooder.returncode != 0:
        raise compare.RunFailed(f"flood {kind} failed: {err.strip()}")
    sent = json.loads(out.strip().splitlines()[-1])
    after = Snapshot(victim, net)
    took = after.at - before.at

    delivered = after.received() - before.received()
    legit = idle_recv_rate * took
    kernel_dropped = after.udp["RcvbufErrors"] - before.udp["RcvbufErrors"]
    in_errors = after.udp["InErrors"] - before.udp["InErrors"]
    kernel_delivered = after.udp["InDatagrams"] - before.udp["InDatagrams"]
    link_dropped = after.link_dropped - before.link_dropped
    softnet = after.softnet - before.softnet
    accounted = delivered - legit + in_errors + link_dropped + softnet
    drops = {k: after.drops()[k] - before.drops().get(k, 0) for k in after.drops()}
    drops = {k: v for k, v in drops.items() if v}
    expected = EXPECTED_DROPS[kind]
    cpu_s = (after.cpu_ns - before.cpu_ns) / 1e9
    hostile_delivered = max(1.0, delivered - legit)
    cpu_per_100k = (cpu_s - idle_cpu_rate * took / 1e9) / hostile_delivered * 1e5
    sent_by_victim = (after.stats["transport"]["sent"] - before.stats["transport"]["sent"])

    # The crashed agent comes back; the cluster must list all N again.
    crashed.stop()
    restart = time.time()
    agents[CRASHED] = RollcallAgent(args.rollcall, args.root, net, CRASHED, n, range(n))
    rejoin = all_running(agents, n, args.settle, f"all {n} running after {kind}") - restart

    checks = {
        "no false alarm": not watch.false_alarms,
        "crash detected during the flood": crash_detect is not None,
        "RSS growth under 1 MiB": rss_max - before.rss < 1024,
        "kernel deliveries all counted by the agent":
            abs(kernel_delivered - delivered) <= max(5, 0.001 * delivered),
        "every datagram accounted for (within 1%)":
            abs(sent["sent"] - accounted) <= 0.01 * sent["sent"],
    }
    got = sum(drops.get(k, 0) for k in expected)
    checks["hostile datagrams dropped for the expected reason (within 1%)"] = (
        abs(got - (delivered - legit)) <= 0.01 * max(1, delivered - legit) + 5)
    return {
        "kind": kind, "flood": sent, "seconds": round(took, 2),
        "rate_per_s": round(sent["sent"] / sent["seconds"]),
        "victim_received": delivered, "legit_estimate": round(legit),
        "kernel_delivered": kernel_delivered, "kernel_rcvbuf_dropped": kernel_dropped,
        "kernel_in_errors": in_errors, "link_dropped": link_dropped, "softnet_dropped": softnet,
        "unaccounted": round(sent["sent"] - accounted),
        "drops": drops, "victim_sent": sent_by_victim,
        "victim_sent_idle_estimate": round(
            (idle1.stats["transport"]["sent"] - idle0.stats["transport"]["sent"]) / idle_s * took),
        "cpu_pct": round(100 * cpu_s / took, 1),
        "cpu_ms_per_100k": round(1000 * cpu_per_100k, 1),
        "rss_kib": [before.rss, rss_max, after.rss],
        "slowest_status_ms": round(1000 * watch.slowest_status, 1),
        "false_alarms": watch.false_alarms[:20], "crash_detect_s": crash_detect and round(
            crash_detect, 2),
        "rejoin_s": round(rejoin, 2), "checks": checks,
    }


def fault_phase(name, args, net, agents):
    n = len(agents)
    all_running(agents, n, 60, f"all {n} running before {name}")
    watch = Watch(agents, agents[VICTIM])
    start = time.time()
    if name == "one-way":
        a, b = ONE_WAY
        one_way_rules(net, a, b)
        try:
            while time.time() < start + args.hold:
                t0 = time.time()
                watch.round()
                time.sleep(max(0.0, 0.5 - (time.time() - t0)))
        finally:
            lift_one_way(net)
        detail = f"{addr(a)} -> {addr(b)} dropped for {args.hold:g} s"
    else:
        port = f"p{FLAPPING}"
        up = True
        flips = 0
        try:
            while time.time() < start + args.flap:
                t0 = time.time()
                up = not up
                run(["ip", "-n", net.bridge(), "link", "set", port, "up" if up else "down"])
                flips += 1
                while time.time() < t0 + 2.0:
                    t1 = time.time()
                    watch.round()
                    time.sleep(max(0.0, min(0.5, t0 + 2.0 - time.time()) - (time.time() - t1)))
        finally:
            run(["ip", "-n", net.bridge(), "link", "set", port, "up"])
        detail = f"agent {FLAPPING}'s link flipped {flips} times, 2 s apart"
    whole = time.time()
    settled = None
    try:
        settled = all_running(agents, n, args.settle, f"all {n} running after {name}") - whole
    except compare.PhaseTimeout as e:
        log(str(e))
    during = {}
    for t, by, about in watch.false_alarms:
        during[f"{by} listed {about} stopped"] = during.get(f"{by} listed {about} stopped", 0) + 1
    return {
        "fault": name, "detail": detail,
        "stopped_listings_during": during,
        "all_running_after_s": settled and round(settled, 2),
        "checks": {
            "every live agent lists all running afterwards": settled is not None,
            "no agent exited": all(a.alive() for a in agents),
        },
    }


def report(results, info):
    print(f"# hostile traffic: {info['agents']} agents, victim {info['victim']}, "
          f"load average {' '.join(info['load_start'])} -> {' '.join(info['load_end'])}")
    print()
    print("| flood | sent/s | victim CPU | CPU ms per 100k | RSS KiB before/max/after | "
          "slowest status | false alarms | crash seen in | unaccounted | checks |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "kind" not in r:
            continue
        ok = "all pass" if all(r["checks"].values()) else "FAIL: " + ", ".join(
            k for k, v in r["checks"].items() if not v)
        print(f"| {r['kind']} | {r['rate_per_s']:,} | {r['cpu_pct']}% | {r['cpu_ms_per_100k']} | "
              f"{'/'.join(str(x) for x in r['rss_kib'])} | {r['slowest_status_ms']} ms | "
              f"{len(r['false_alarms'])} | {r['crash_detect_s']} s | {r['unaccounted']} | {ok} |")
    print()
    for r in results:
        if "kind" in r:
            print(f"{r['kind']}: sent {r['flood']['sent']:,} in {r['flood']['seconds']} s "
                  f"({r['flood']['distinct']} distinct, {r['flood']['sources']} sources); "
                  f"victim received {r['victim_received']:,} (cluster's own about "
                  f"{r['legit_estimate']:,}), kernel dropped {r['kernel_rcvbuf_dropped']:,} "
                  f"(receive buffer) + {r['link_dropped']:,} (link) + {r['softnet_dropped']:,} "
                  f"(backlog); drops by reason {r['drops']}; victim sent {r['victim_sent']:,} "
                  f"(about {r['victim_sent_idle_estimate']:,} when idle); rejoin after restart "
                  f"{r['rejoin_s']} s")
    print()
    for r in results:
        if "fault" in r:
            ok = "all pass" if all(r["checks"].values()) else "FAIL: " + ", ".join(
                k for k, v in r["checks"].items() if not v)
            print(f"{r['fault']}: {r['detail']}; all running {r['all_running_after_s']} s after "
                  f"the link was whole; stopped listings while broken: "
                  f"{r['stopped_listings_during'] or 'none'}; {ok}")


def build(args):
    if args.rollcall and args.flood:
        return
    log("building rollcall and the flood example (release)")
    subprocess.run(["cargo", "build", "--release", "--bin", "rollcall", "--example", "flood"],
                   cwd=args.repo, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(args.repo, "target"))
    args.rollcall = args.rollcall or os.path.join(target, "release", "rollcall")
    args.flood = args.flood or os.path.join(target, "release", "examples", "flood")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0, help="each flood")
    p.add_argument("--idle", type=float, default=10.0, help="idle measure before each flood")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--faults", default="one-way,flap")
    p.add_argument("--hold", type=float, default=30.0, help="one-way cut held")
    p.add_argument("--flap", type=float, default=120.0, help="flapping lasts")
    p.add_argument("--settle", type=float, default=60.0)
    p.add_argument("--rollcall")
    p.add_argument("--flood")
    p.add_argument("--json")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("hostile.py needs root (network namespaces, nft, IP_TRANSPARENT)")
    if args.agents < 8:
        sys.exit("--agents must be at least 8 (agents 1, 2, 3, 4 and 7 have roles)")
    args.repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    build(args)
    kinds = [k for k in args.kinds.split(",") if k]
    faults = [f for f in args.faults.split(",") if f]
    for k in kinds:
        if k not in KINDS:
            sys.exit(f"unknown kind {k!r} (kinds: {', '.join(KINDS)})")
    info = {"agents": args.agents, "victim": addr(VICTIM), "load_start": loadavg()}
    n = args.agents
    net = Net(n + 1)
    results = []
    with tempfile.TemporaryDirectory(prefix="rollcall-hostile-") as root:
        args.root = root
        agents = [RollcallAgent(args.rollcall, root, net, i, n, range(n)) for i in range(n)]
        all_running(agents, n, 60, f"all {n} running")
        victim = agents[VICTIM]
        capture_file = os.path.join(root, "capture.bin")
        datagrams = capture(net, victim, 8.0)
        with open(capture_file, "wb") as f:
            for d in datagrams:
                f.write(struct.pack("!H", len(d)) + d)
        log(f"captured {len(datagrams)} datagrams on the victim's link")
        try:
            for kind in kinds:
                log(f"flood: {kind}")
                results.append(flood_phase(kind, args, net, agents, victim, capture_file))
                log(json.dumps(results[-1]))
            for fault in faults:
                log(f"fault: {fault}")
                results.append(fault_phase(fault, args, net, agents))
                log(json.dumps(results[-1]))
        finally:
            for a in agents:
                a.stop()
            net.close()
    info["load_end"] = loadavg()
    info["captured"] = len(datagrams)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": results}, f, indent=1)
    report(results, info)
    if any(not all(r["checks"].values()) for r in results):
        sys.exit(1)


def on_term(*_):
    raise SystemExit(1)


if __name__ == "__main__":
    atexit.register(compare.cleanup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    main()
