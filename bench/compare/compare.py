#!/usr/bin/env python3
"""rollcall and HashiCorp Serf side by side: N real agents of each, in one
run on one machine, on the same network, driven and measured the same way.

Implementations (--impls, default all three, run alternately: run k of a
size runs them in an order rotated by k):
  rollcall      `rollcall agent`, profile lan, expected_size N, UDP, static
                discovery with seeds (--seeds), one cookie (every datagram
                is sealed).
  serf          `serf agent`, its defaults (profile lan), -node NAME
                -bind IP:7946 -rpc-addr 127.0.0.1:7373 and -retry-join for
                each seed other than itself (-join would exit when no seed
                answers yet, as for the first agent).
  serf-encrypt  the same with -encrypt KEY (a random 32-byte key), since
                rollcall always seals.

The network: one namespace per agent (eth0, 10.80.0.(10+i)/24), each
joined by a veth pair to a bridge in one more namespace, with a permanent
neighbour entry for every other agent (no ARP; N*(N-1) dynamic entries
overflow the kernel's shared neighbour table at N = 50), made once for the
largest N and deleted at the end (also on error, SIGINT, SIGTERM). Nodes
start STAGGER (20 ms) apart; with --seeds all (default) every node's seeds
are all N nodes, with --seeds first only node 0.

Each run measures, in this order (every time from the event to the first
poll at which every agent concerned passes, per agent the start of its
current passing streak; polls every --poll s (50 ms); each phase bounded
by --phase-timeout s (120), a phase that runs out is recorded as
"timeout"):
  join          last start (the last process spawned) -> every agent lists
                all N alive (rollcall: running_nodes; Serf: status alive).
  idle          after --settle s (10) without polling, a window of --idle s
                (20) with no polling at all: per agent VmRSS and RssAnon at
                its end, CPU as the sum of the agent's threads'
                sum_exec_runtime (/proc/PID/task/*/schedstat) over the
                window (% of one core), and wire bytes: the bytes every
                agent sent on its eth0 (the bridge ports' rx counters, so
                IP/UDP/TCP headers included; every namespace holds
                permanent neighbour entries, so no ARP) per node per
                second.
  partition     the first ceil(N/2) nodes and the rest are cut apart: one
                nftables table in the bridge's namespace drops IPv4 between
                the halves both ways (added in one command, so the cut is
                atomic; the agents' sends never fail, their packets are
                dropped on the way in). partition_detect: cut -> every node
                lists every node of the other side stopped (Serf: failed).
                The cut is held --hold s (35) from the cut, then lifted;
                partition_heal: lift -> every node lists all N alive.
  crash         after --settle s, SIGKILL of one node (never node 0) ->
                every survivor lists it stopped (Serf: failed).
  force_leave   node 0 is asked to force-leave the crashed node (rollcall:
                `force_leave` on its control socket; Serf: the force-leave
                RPC) -> every survivor no longer lists it (Serf: left or
                absent).
  leave         another node (not node 0) is asked to leave (rollcall:
                `leave`; Serf: the leave RPC, after which the agent exits)
                -> every remaining node no longer lists it (Serf: left or
                absent).

Polling: rollcall over each agent's control socket (data_dir/rollcall.sock,
one JSON line each way, the connection kept open); Serf over its RPC
(msgpack over TCP; this script holds a minimal msgpack codec: handshake,
members-filtered, force-leave, leave), the socket opened inside the agent's
namespace (setns) so the RPC stays on that namespace's loopback and off
the measured eth0. Members are filtered on the Serf side where the phase
allows (crash and leaves: the one node's name; partition: status failed).

Then (unless --no-memberlist) bench/memberlist_join (Go, memberlist 0.2.2 in
one process) is built in a temporary directory and run once with
--memberlist-args (default `-profile local -runs 3 -timeout 120 -subnet
140`) inside a namespace of its own (its 127.0.S.x addresses stay on that
namespace's loopback); its runs and median go into the same report.

Prints a Markdown table: per N and measure, each implementation's median
(every run's value in parentheses) and the ratios rollcall / serf and
rollcall / serf-encrypt; the load average at the start and end. --json FILE
writes every run's numbers. Exits 1 if any phase failed or timed out.

Needs root, `ip` (iproute2), `nft` (nftables), `serf` (apt-get install -y
serf) and, for the memberlist run, `go` with Debian's
golang-github-hashicorp-memberlist-dev.
"""

import argparse
import atexit
import base64
import ctypes
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

SUBNET = "10.80.0"
COOKIE = "compare cookie"
TABLE = "rccompare"
STAGGER_S = 0.02
SERF_PORT = 7946
SERF_RPC = ("127.0.0.1", 7373)
IMPLS = ["rollcall", "serf", "serf-encrypt"]
MEASURES = [
    ("join_s", "join: last start -> all list all N alive", "s"),
    ("partition_detect_s", "partition: cut -> each side lists the other stopped/failed", "s"),
    ("partition_heal_s", "partition: lift (after HOLD s) -> all list all N alive", "s"),
    ("crash_s", "crash: SIGKILL -> every survivor lists it stopped/failed", "s"),
    ("force_leave_s", "force-leave of the crashed node -> gone/left everywhere", "s"),
    ("leave_s", "graceful leave -> gone/left everywhere", "s"),
    ("rss_mib", "idle RSS per agent, mean (MiB)", "mib"),
    ("rss_anon_mib", "idle RssAnon per agent, mean (MiB)", "mib"),
    ("cpu_pct", "idle CPU per agent, mean (% of a core)", "pct"),
    ("wire_bps", "idle wire bytes sent per node per s", "bytes"),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def run(args, input_text=None, timeout=30):
    out = subprocess.run(args, input=input_text, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed: {out.stdout}{out.stderr}".strip())
    return out.stdout


def addr(i):
    return f"{SUBNET}.{10 + i}"


def halves(n):
    h = math.ceil(n / 2)
    return list(range(h)), list(range(h, n))


# Everything this script started, for the exit handler (also on an error or
# a signal between two finally blocks).
LIVE_AGENTS = set()
LIVE_NETS = []


def cleanup():
    for a in list(LIVE_AGENTS):
        a.stop()
    for net in LIVE_NETS:
        net.lift_quietly()
        net.close()


class PhaseTimeout(Exception):
    pass


class RunFailed(Exception):
    pass


# ------------------------------------------------------------------ msgpack

class Incomplete(Exception):
    pass


def mp_pack(obj):
    """msgpack of None, bool, int, str, bytes, list, dict (old-spec-safe
    string types: fixstr, str16, str32)."""
    if obj is None:
        return b"\xc0"
    if obj is True:
        return b"\xc3"
    if obj is False:
        return b"\xc2"
    if isinstance(obj, int):
        if 0 <= obj < 0x80:
            return bytes([obj])
        if 0 <= obj <= 0xFFFF:
            return b"\xcd" + struct.pack(">H", obj)
        if 0 <= obj <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", obj)
        if 0 <= obj:
            return b"\xcf" + struct.pack(">Q", obj)
        return b"\xd3" + struct.pack(">q", obj)
    if isinstance(obj, str):
        b = obj.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) <= 0xFFFF:
            return b"\xda" + struct.pack(">H", len(b)) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(obj, bytes):
        return b"\xc6" + struct.pack(">I", len(obj)) + obj
    if isinstance(obj, (list, tuple)):
        head = (bytes([0x90 | len(obj)]) if len(obj) < 16
                else b"\xdd" + struct.pack(">I", len(obj)))
        return head + b"".join(mp_pack(x) for x in obj)
    if isinstance(obj, dict):
        head = (bytes([0x80 | len(obj)]) if len(obj) < 16
                else b"\xdf" + struct.pack(">I", len(obj)))
        return head + b"".join(mp_pack(k) + mp_pack(v) for k, v in obj.items())
    raise TypeError(f"cannot pack {type(obj).__name__}")


_FIXED = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
          0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}


def mp_unpack(buf, pos=0):
    """(object, next position) of the msgpack object at buf[pos:]; raises
    Incomplete if the buffer ends inside it. Strings and binaries both
    decode to str (Serf's codec writes raw bytes for both)."""
    def need(k):
        if pos + k > len(buf):
            raise Incomplete()

    need(1)
    b = buf[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0xA0 <= b <= 0xBF:
        k = b & 0x1F
        need(k)
        return buf[pos:pos + k].decode("utf-8", "replace"), pos + k
    if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF):
        if b <= 0x8F:
            k = b & 0x0F
        else:
            w = 2 if b == 0xDE else 4
            need(w)
            k = int.from_bytes(buf[pos:pos + w], "big")
            pos += w
        out = {}
        for _ in range(k):
            key, pos = mp_unpack(buf, pos)
            val, pos = mp_unpack(buf, pos)
            out[key] = val
        return out, pos
    if 0x90 <= b <= 0x9F or b in (0xDC, 0xDD):
        if b <= 0x9F:
            k = b & 0x0F
        else:
            w = 2 if b == 0xDC else 4
            need(w)
            k = int.from_bytes(buf[pos:pos + w], "big")
            pos += w
        out = []
        for _ in range(k):
            val, pos = mp_unpack(buf, pos)
            out.append(val)
        return out, pos
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    if b in (0xC4, 0xC5, 0xC6, 0xD9, 0xDA, 0xDB):
        w = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
        need(w)
        k = int.from_bytes(buf[pos:pos + w], "big")
        pos += w
        need(k)
        return buf[pos:pos + k].decode("utf-8", "replace"), pos + k
    if b in _FIXED:
        fmt = _FIXED[b]
        k = struct.calcsize(fmt)
        need(k)
        return struct.unpack(fmt, buf[pos:pos + k])[0], pos + k
    if b in (0xD4, 0xD5, 0xD6, 0xD7, 0xD8):  # fixext: type byte + 1..16 bytes
        k = 1 + {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}[b]
        need(k)
        return None, pos + k
    if b in (0xC7, 0xC8, 0xC9):
        w = {0xC7: 1, 0xC8: 2, 0xC9: 4}[b]
        need(w)
        k = int.from_bytes(buf[pos:pos + w], "big") + 1
        pos += w
        need(k)
        return None, pos + k
    raise ValueError(f"bad msgpack byte 0x{b:02x}")


# ------------------------------------------------------------ network names

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def socket_in_netns(ns, family=socket.AF_INET, kind=socket.SOCK_STREAM, proto=0):
    """A socket created inside network namespace `ns` (it stays there after
    this thread switches back)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns({ns}): {os.strerror(e)}")
            try:
                return socket.socket(family, kind, proto)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    # Never go on in the wrong namespace.
                    os._exit(3)
        finally:
            os.close(target)
    finally:
        os.close(own)


class Net:
    """`size` namespaces on one bridge (in a namespace of its own)."""

    def __init__(self, size):
        self.prefix = f"rcc{os.getpid()}"
        self.size = size
        self.created = []
        self.cut_on = False
        LIVE_NETS.append(self)
        br = self.bridge()
        self.add_ns(br)
        run(["ip", "-n", br, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", br, "link", "set", "br0", "up"])
        for i in range(size):
            ns = self.ns(i)
            self.add_ns(ns)
            run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                 "peer", "name", f"p{i}", "netns", br])
            run(["ip", "-n", br, "link", "set", f"p{i}", "master", "br0"])
            run(["ip", "-n", br, "link", "set", f"p{i}", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{addr(i)}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # Permanent neighbour entries: no ARP on the wire, and none of the
        # size * (size - 1) dynamic entries, which overflow the kernel's
        # neighbour table (shared by every namespace) at 50 agents and
        # then drop datagrams.
        macs = [json.loads(run(["ip", "-n", self.ns(i), "-j", "link", "show", "eth0"]))[0]
                ["address"] for i in range(size)]
        for i in range(size):
            batch = "".join(f"neigh replace {addr(j)} lladdr {macs[j]} dev eth0 nud permanent\n"
                            for j in range(size) if j != i)
            run(["ip", "-n", self.ns(i), "-batch", "-"], input_text=batch)

    def add_ns(self, ns):
        run(["ip", "netns", "add", ns])
        self.created.append(ns)

    def bridge(self):
        return f"{self.prefix}-br"

    def ns(self, i):
        return f"{self.prefix}-{i}"

    def port_tx_bytes(self, n):
        """Bytes sent by agents 0..n-1 on their eth0 (received by the bridge ports)."""
        links = json.loads(run(["ip", "-n", self.bridge(), "-s", "-j", "link", "show"]))
        want = {f"p{i}" for i in range(n)}
        return sum(link["stats64"]["rx"]["bytes"] for link in links
                   if link.get("ifname") in want)

    def cut(self, side_a, side_b):
        a = ", ".join(addr(i) for i in side_a)
        b = ", ".join(addr(i) for i in side_b)
        rules = (f"table bridge {TABLE} {{\n  chain cut {{\n"
                 f"    type filter hook forward priority 0; policy accept;\n"
                 f"    ip saddr {{ {a} }} ip daddr {{ {b} }} drop\n"
                 f"    ip saddr {{ {b} }} ip daddr {{ {a} }} drop\n  }}\n}}\n")
        run(["ip", "netns", "exec", self.bridge(), "nft", "-f", "-"], input_text=rules)
        self.cut_on = True

    def lift(self):
        run(["ip", "netns", "exec", self.bridge(), "nft", "delete", "table", "bridge", TABLE])
        self.cut_on = False

    def lift_quietly(self):
        if self.cut_on:
            subprocess.run(["ip", "netns", "exec", self.bridge(), "nft", "delete", "table",
                            "bridge", TABLE], capture_output=True, timeout=20)
            self.cut_on = False

    def close(self):
        for ns in reversed(self.created):
            try:
                subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=20)
            except Exception as e:  # keep deleting the others
                log(f"cannot delete namespace {ns}: {e}")
        self.created = []


# ------------------------------------------------------------------- agents

def proc_stats(pid):
    """(VmRSS KiB, RssAnon KiB, CPU ns summed over the threads) of a process."""
    rss = anon = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    cpu = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return rss, anon, cpu


class Agent:
    """One agent process in namespace net.ns(i); view() is its member list
    as {name: "alive" | "failed" | "left" | "other"}, or None."""

    impl = None

    def __init__(self, root, net, i):
        self.index = i
        self.net = net
        self.root = root
        self.proc = None
        self.log = None

    def spawn(self, argv, env=None):
        slug = f"{self.impl}_{self.index}"
        self.log = open(os.path.join(self.root, slug + ".log"), "w")
        self.spawned_at = time.time()
        LIVE_AGENTS.add(self)
        # `ip netns exec` execs the agent in place: the pid is the agent's.
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.net.ns(self.index)] + argv,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.disconnect()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.proc.pid}) did not exit after SIGKILL")

    def stop(self):
        self.kill()
        LIVE_AGENTS.discard(self)
        if self.log is not None:
            self.log.close()
            self.log = None

    def disconnect(self):
        pass


class RollcallAgent(Agent):
    impl = "rollcall"

    def __init__(self, binary, root, net, i, n, seeds):
        super().__init__(root, net, i)
        self.name = f"rc@{addr(i)}"
        self.data_dir = os.path.join(root, f"rc_{i}")
        self.sock_path = os.path.join(self.data_dir, "rollcall.sock")
        self.sock, self.buf = None, b""
        config = os.path.join(root, f"rc_{i}.toml")
        seeds = ", ".join(json.dumps(f"rc@{addr(j)}") for j in seeds)
        with open(config, "w") as f:
            f.write(f'[node]\nname = "{self.name}"\ncookie = "{COOKIE}"\n'
                    f'data_dir = "{self.data_dir}"\n\n'
                    f'[cluster]\ndiscovery_strategy = "static"\nproto_dist = "udp"\n'
                    f'profile = "lan"\nexpected_size = {n}\n\n'
                    f"[cluster.static]\nseeds = [{seeds}]\n")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.spawn([binary, "agent", "--config", config], env=env)

    def request(self, req, timeout=2.0):
        if self.sock is None:
            if not os.path.exists(self.sock_path):
                raise ConnectionError("no control socket yet")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.sock_path)
            self.sock, self.buf = s, b""
        self.sock.settimeout(timeout)
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no answer")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def view(self, hint=None):
        try:
            st = self.request({"command": "status"})["ok"]["status"]
        except (OSError, ValueError, KeyError, TypeError):
            self.disconnect()
            return None
        out = {x: "alive" for x in st["running_nodes"]}
        out.update({x: "failed" for x in st["stopped_nodes"]})
        return out

    def command(self, req):
        """One request on a connection of its own; raises on an error answer."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        try:
            s.connect(self.sock_path)
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        answer = json.loads(buf.split(b"\n", 1)[0])
        if "error" in answer:
            raise RunFailed(f"{req['command']} at {self.name}: {answer['error']}")

    def force_leave(self, other):
        self.command({"command": "force_leave", "node": other.name})

    def leave(self):
        self.command({"command": "leave"})

    def disconnect(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.buf = None, b""


class SerfRPC:
    """One connection to a Serf agent's RPC, opened inside its namespace."""

    def __init__(self, ns, timeout=2.0):
        self.sock = socket_in_netns(ns)
        self.buf, self.seq = b"", 0
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(SERF_RPC)
            self.call("handshake", {"Version": 1}, timeout=timeout)
        except BaseException:
            self.close()
            raise

    def _read_obj(self, deadline):
        while True:
            try:
                obj, pos = mp_unpack(self.buf)
                self.buf = self.buf[pos:]
                return obj
            except Incomplete:
                pass
            if time.time() > deadline:
                raise TimeoutError("no answer")
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def call(self, command, body=None, has_reply_body=False, timeout=2.0):
        self.sock.settimeout(timeout)
        self.seq += 1
        seq = self.seq
        msg = mp_pack({"Command": command, "Seq": seq})
        if body is not None:
            msg += mp_pack(body)
        self.sock.sendall(msg)
        deadline = time.time() + timeout
        header = self._read_obj(deadline)
        if not isinstance(header, dict) or header.get("Seq") != seq:
            raise ValueError(f"unexpected RPC header {header!r}")
        if header.get("Error"):
            raise RunFailed(f"serf {command}: {header['Error']}")
        return self._read_obj(deadline) if has_reply_body else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class SerfAgent(Agent):
    impl = "serf"

    def __init__(self, binary, root, net, i, n, seeds, key=None):
        super().__init__(root, net, i)
        if key:
            self.impl = "serf-encrypt"
        self.name = f"serf@{addr(i)}"
        self.conn = None
        argv = [binary, "agent", "-node", self.name, "-bind", f"{addr(i)}:{SERF_PORT}",
                "-rpc-addr", f"{SERF_RPC[0]}:{SERF_RPC[1]}"]
        for j in seeds:
            if j != i:
                argv += ["-retry-join", f"{addr(j)}:{SERF_PORT}"]
        if key:
            argv += ["-encrypt", key]
        self.spawn(argv)

    def view(self, hint=None):
        """hint: {"Name": regex} or {"Status": regex} to filter on the agent's side."""
        body = {"Tags": {}, "Status": "", "Name": ""}
        if hint:
            body.update(hint)
        try:
            if self.conn is None:
                self.conn = SerfRPC(self.net.ns(self.index))
            reply = self.conn.call("members-filtered", body, has_reply_body=True)
            members = reply["Members"] or []
        except (OSError, ValueError, KeyError, TypeError, RunFailed):
            self.disconnect()
            return None
        states = {"alive": "alive", "failed": "failed", "left": "left"}
        return {m["Name"]: states.get(m["Status"], "other") for m in members}

    def command(self, command, body=None):
        """One RPC on a connection of its own (the agent's poll connection
        may be in use meanwhile)."""
        c = SerfRPC(self.net.ns(self.index), timeout=5.0)
        try:
            c.call(command, body, timeout=30.0)
        except ConnectionError:
            if command != "leave":  # the agent may exit before it answers
                raise
        finally:
            c.close()

    def force_leave(self, other):
        self.command("force-leave", {"Node": other.name})

    def leave(self):
        self.command("leave")

    def disconnect(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


class Background:
    """Runs fn() in a thread (a command whose effect is polled meanwhile)."""

    def __init__(self, fn):
        self.error, self.took = None, None
        self.started = time.time()

        def body():
            try:
                fn()
            except BaseException as e:  # reported by join()
                self.error = e
            self.took = time.time() - self.started
        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def join(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RunFailed("a command did not return within its timeout")
        if self.error is not None:
            raise RunFailed(f"command failed: {self.error}")
        return self.took


# ------------------------------------------------------------------ phases

def poll_until(agents, test, within, poll, what, hint=None, since=None):
    """Polls every agent until each satisfies test(view) on one round; returns
    the latest start among the agents' passing streaks (poll times). Raises
    PhaseTimeout after `within` s, RunFailed if an agent died."""
    deadline = time.time() + within
    streak = [None] * len(agents)
    while True:
        round_at = time.time()
        for i, a in enumerate(agents):
            if not a.alive():
                raise RunFailed(f"{a.name} exited with {a.proc.returncode} during {what}")
            v = a.view(hint)
            now = time.time()
            if v is not None and test(v):
                if streak[i] is None:
                    streak[i] = now
            else:
                streak[i] = None
        if all(s is not None for s in streak):
            return max(streak)
        if time.time() >= deadline:
            missing = [a.name for a, s in zip(agents, streak) if s is None]
            raise PhaseTimeout(f"no {what} within {within:g} s (not yet: "
                               f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
        time.sleep(max(0.0, poll - (time.time() - round_at)))


def sleep_checking(until, agents):
    while time.time() < until:
        time.sleep(min(0.5, max(0.0, until - time.time())))
        for a in agents:
            if not a.alive():
                raise RunFailed(f"{a.name} exited with {a.proc.returncode}")


def name_re(name):
    return "^" + re.escape(name) + "$"


def one_run(impl, bins, net, n, k, args, key):
    root = tempfile.mkdtemp(prefix=f"rollcall-compare-{impl}-{n}-")
    result = {"impl": impl, "n": n, "run": k + 1, "dir": root,
              "load_start": loadavg(), "started": time.time()}
    agents = []
    phases = {}

    def phase(key_, fn):
        try:
            result[key_] = fn()
        except PhaseTimeout as e:
            result[key_] = "timeout"
            phases[key_] = str(e)
            log(f"   {key_}: {e}")

    try:
        seeds = list(range(n)) if args.seeds == "all" else [0]
        t0 = time.time()
        for i in range(n):
            sleep_checking(t0 + i * STAGGER_S, agents)
            if impl == "rollcall":
                agents.append(RollcallAgent(bins["rollcall"], root, net, i, n, seeds))
            else:
                agents.append(SerfAgent(bins["serf"], root, net, i, n, seeds,
                                        key if impl == "serf-encrypt" else None))
        names = [a.name for a in agents]
        everyone = set(names)
        last_start = agents[-1].spawned_at

        def all_alive(v):
            return everyone <= {x for x, s in v.items() if s == "alive"}

        alive_hint = {"Status": "alive"}
        phase("join_s", lambda: poll_until(agents, all_alive, args.phase_timeout, args.poll,
                                           f"join of {n}", alive_hint) - last_start)
        if result["join_s"] == "timeout":
            raise RunFailed("the cluster did not form")

        # Idle: no polling, no control connection held.
        for a in agents:
            a.disconnect()
        sleep_checking(time.time() + args.settle, agents)
        before = [proc_stats(a.proc.pid) for a in agents]
        bytes_before = net.port_tx_bytes(n)
        w0 = time.time()
        sleep_checking(w0 + args.idle, agents)
        after = [proc_stats(a.proc.pid) for a in agents]
        bytes_after = net.port_tx_bytes(n)
        window = time.time() - w0
        result["rss_mib"] = statistics.mean(x[0] for x in after) / 1024
        result["rss_anon_mib"] = statistics.mean(x[1] for x in after) / 1024
        result["rss_max_mib"] = max(x[0] for x in after) / 1024
        result["cpu_pct"] = statistics.mean(
            (b[2] - a_[2]) / 1e9 / window * 100 for a_, b in zip(before, after))
        result["wire_bps"] = (bytes_after - bytes_before) / n / window
        result["idle_window_s"] = window

        # Partition.
        side_a, side_b = halves(n)
        other = {}
        for i in range(n):
            other[i] = {names[j] for j in (side_b if i in side_a else side_a)}
        for a in agents:
            a.disconnect()
        cut_at = time.time()
        net.cut(side_a, side_b)
        hold_until = cut_at + args.hold
        tests = {a.index: other[a.index] for a in agents}
        phase("partition_detect_s", lambda: poll_until_each(
            agents, tests, "failed", args.partition_timeout, args.poll,
            "each side listing the other stopped", {"Status": "failed"}) - cut_at)
        if time.time() > hold_until:
            phases["partition_hold"] = "detection outlasted the hold"
        sleep_checking(hold_until, agents)
        lift_at = time.time()
        net.lift()
        result["held_s"] = lift_at - cut_at
        phase("partition_heal_s", lambda: poll_until(
            agents, all_alive, args.phase_timeout, args.poll, "agreement after the lift",
            alive_hint) - lift_at)

        # Crash.
        sleep_checking(time.time() + args.settle, agents)
        v = 1 + (k * 7919) % (n - 1)
        leaver_i = 1 + (v % (n - 1))  # another node, never 0
        victim, leaver = agents[v], agents[leaver_i]
        result["victim"], result["leaver"] = v, leaver_i
        survivors = [a for a in agents if a is not victim]
        # Every measured change starts from an agreed view.
        poll_until(agents, all_alive, args.phase_timeout, args.poll,
                   "all N alive before the crash", alive_hint)
        killed_at = time.time()
        victim.kill()
        phase("crash_s", lambda: poll_until(
            survivors, lambda view: view.get(victim.name) == "failed", args.phase_timeout,
            args.poll, f"{victim.name} stopped everywhere", {"Name": name_re(victim.name)})
            - killed_at)

        # Force-leave of the crashed node, asked at node 0.
        fl_at = time.time()
        call = Background(lambda: agents[0].force_leave(victim))
        phase("force_leave_s", lambda: poll_until(
            survivors, lambda view: view.get(victim.name) in (None, "left"),
            args.phase_timeout, args.poll, f"{victim.name} gone everywhere",
            {"Name": name_re(victim.name)}) - fl_at)
        result["force_leave_call_s"] = call.join(60)

        # Graceful leave of another node.
        rest = [a for a in survivors if a is not leaver]
        poll_until(rest, lambda view: view.get(leaver.name) == "alive", args.phase_timeout,
                   args.poll, f"{leaver.name} alive before its leave",
                   {"Name": name_re(leaver.name)})
        leave_at = time.time()
        call = Background(leaver.leave)
        phase("leave_s", lambda: poll_until(
            rest, lambda view: view.get(leaver.name) in (None, "left"),
            args.phase_timeout, args.poll, f"{leaver.name} gone everywhere",
            {"Name": name_re(leaver.name)}) - leave_at)
        result["leave_call_s"] = call.join(60)
        result["ok"] = not phases
    except (RunFailed, PhaseTimeout, RuntimeError, OSError, ValueError,
            subprocess.TimeoutExpired) as e:
        result["ok"] = False
        phases["run"] = f"{type(e).__name__}: {e}"
        log(f"   FAILED: {e}")
    finally:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for a in agents:
                a.stop()
            net.lift_quietly()
            if result.get("ok") and not args.keep:
                shutil.rmtree(root, ignore_errors=True)
                result["dir"] = None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    result["errors"] = phases
    result["load_end"] = loadavg()
    result["took_s"] = time.time() - result["started"]
    return result


def poll_until_each(agents, wanted, state, within, poll, what, hint):
    """As poll_until, with a set per agent: every name in wanted[agent.index]
    must be listed in `state`."""
    deadline = time.time() + within
    streak = [None] * len(agents)
    while True:
        round_at = time.time()
        for i, a in enumerate(agents):
            if not a.alive():
                raise RunFailed(f"{a.name} exited with {a.proc.returncode} during {what}")
            v = a.view(hint)
            now = time.time()
            if v is not None and all(v.get(x) == state for x in wanted[a.index]):
                if streak[i] is None:
                    streak[i] = now
            else:
                streak[i] = None
        if all(s is not None for s in streak):
            return max(streak)
        if time.time() >= deadline:
            missing = [a.name for a, s in zip(agents, streak) if s is None]
            raise PhaseTimeout(f"no {what} within {within:g} s (not yet: "
                               f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
        time.sleep(max(0.0, poll - (time.time() - round_at)))


# --------------------------------------------------------------- memberlist

ML_RUN = re.compile(r"^run (\d+) \(.*?\): (?:converged in ([0-9.]+) s|NOT converged)")


def memberlist_bench(repo, extra, timeout):
    """Builds bench/memberlist_join in a temporary directory and runs it in a
    namespace of its own. Returns a dict with its output and parsed runs."""
    out = {"args": extra}
    tmp = tempfile.mkdtemp(prefix="rollcall-compare-ml-")
    ns = f"rcc{os.getpid()}-ml"
    made = False
    try:
        env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
                   GOCACHE=os.path.join(tmp, "gocache"), GOFLAGS="")
        binary = os.path.join(tmp, "memberlist_join")
        b = subprocess.run(["go", "build", "-o", binary, "."],
                           cwd=os.path.join(repo, "bench", "memberlist_join"), env=env,
                           capture_output=True, text=True, timeout=600)
        if b.returncode != 0:
            out["error"] = f"go build failed: {b.stderr.strip()}"
            return out
        made = True
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        out["load_start"] = loadavg()
        t = time.time()
        r = subprocess.run(["ip", "netns", "exec", ns, binary] + extra, capture_output=True,
                           text=True, timeout=timeout)
        out["took_s"] = time.time() - t
        out["load_end"] = loadavg()
        out["exit"] = r.returncode
        out["output"] = r.stdout + r.stderr
        out["runs"] = []
        for line in r.stdout.splitlines():
            m = ML_RUN.match(line)
            if m:
                out["runs"].append(float(m.group(2)) if m.group(2) else "not converged")
        m = re.search(r"^median of \d+ runs: ([0-9.]+) s", r.stdout, re.M)
        out["median_s"] = float(m.group(1)) if m else None
        m = re.search(r"^process RSS now ([0-9.]+) MiB, peak ([0-9.]+) MiB", r.stdout, re.M)
        out["peak_rss_mib"] = float(m.group(2)) if m else None
        m = re.search(r"^memberlist_join: (.*)$", r.stdout, re.M)
        out["header"] = m.group(1) if m else None
    except (subprocess.TimeoutExpired, RuntimeError, OSError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        if made:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ------------------------------------------------------------------- report

def vals(results, impl, n, key):
    return [r.get(key) for r in results if r["impl"] == impl and r["n"] == n and key in r]


def nums(v):
    return [x for x in v if isinstance(x, (int, float))]


def fmt_one(x, unit):
    if not isinstance(x, (int, float)):
        return str(x)
    if unit == "s":
        return f"{x:.3f}" if x < 1 else f"{x:.2f}"
    if unit == "mib":
        return f"{x:.1f}"
    if unit == "pct":
        return f"{x:.3f}"
    return f"{x:.0f}"


def fmt_cell(v, unit):
    if not v:
        return "-"
    good = nums(v)
    med = fmt_one(statistics.median(good), unit) if good else "timeout"
    suffix = {"s": " s", "mib": " MiB", "pct": " %", "bytes": " B"}[unit]
    if good:
        med += suffix
    return f"{med} ({', '.join(fmt_one(x, unit) for x in v)})"


def ratio(a, b):
    a, b = nums(a), nums(b)
    if not a or not b or statistics.median(b) == 0:
        return "-"
    return f"{statistics.median(a) / statistics.median(b):.2f}"


def report(results, impls, sizes, info, ml, args):
    print(f"{info['date']}; {info['host_cores']} cores; serf {info.get('serf_version', '?')}; "
          f"rollcall {info.get('rollcall_version', '?')}; seeds {args.seeds}; "
          f"hold {args.hold:g} s; idle window {args.idle:g} s after {args.settle:g} s; "
          f"poll {args.poll * 1000:.0f} ms; load average {' '.join(info['load_start'])} at the "
          f"start, {' '.join(info.get('load_end', ['?']))} at the end\n")
    head = ["N", "measure"] + [f"{i}: median (runs)" for i in impls]
    others = [i for i in impls if i != "rollcall"]
    if "rollcall" in impls:
        head += [f"rollcall / {i}" for i in others]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in sizes:
        for key, what, unit in MEASURES:
            cells = [str(n), what.replace("HOLD", f"{args.hold:g}")]
            cols = {i: vals(results, i, n, key) for i in impls}
            if not any(cols.values()):
                continue
            cells += [fmt_cell(cols[i], unit) for i in impls]
            if "rollcall" in impls:
                cells += [ratio(cols["rollcall"], cols[i]) for i in others]
            print("| " + " | ".join(cells) + " |")
    if ml is not None:
        print()
        if ml.get("error"):
            print(f"memberlist_join ({' '.join(ml['args'])}): failed: {ml['error']}")
        else:
            runs = ", ".join(fmt_one(x, "s") for x in ml.get("runs", []))
            med = ml.get("median_s")
            print("| memberlist_join | runs (s, after the last start) | median | process peak RSS | load |")
            print("|---|---|---|---|---|")
            print(f"| {ml.get('header') or ' '.join(ml['args'])} (`{' '.join(ml['args'])}`) "
                  f"| {runs or '-'} | {fmt_one(med, 's') + ' s' if med is not None else 'not defined'} "
                  f"| {ml.get('peak_rss_mib')} MiB "
                  f"| {' '.join(ml.get('load_start', []))} -> {' '.join(ml.get('load_end', []))} |")
    bad = [r for r in results if not r.get("ok")]
    for r in bad:
        where = f"; logs in {r['dir']}" if r.get("dir") else ""
        print(f"\n{r['impl']} N={r['n']} run {r['run']}: {r.get('errors')}{where}")


# --------------------------------------------------------------------- main

def version_of(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--rollcall", help="the rollcall binary (default: cargo build --release "
                   "--bin rollcall -p rollcall, into $CARGO_TARGET_DIR or target/)")
    p.add_argument("--serf", default=shutil.which("serf") or "serf", help="the serf binary")
    p.add_argument("--sizes", default="5,20,50", help="comma list of N (default 5,20,50)")
    p.add_argument("--runs", type=int, default=3, help="runs per N and implementation (3)")
    p.add_argument("--impls", default=",".join(IMPLS),
                   help=f"comma list of implementations (default {','.join(IMPLS)})")
    p.add_argument("--seeds", choices=["all", "first"], default="all",
                   help="each node's seeds: all N nodes (default) or node 0 only")
    p.add_argument("--hold", type=float, default=35.0, help="partition held, s (35)")
    p.add_argument("--idle", type=float, default=20.0, help="idle window, s (20)")
    p.add_argument("--settle", type=float, default=10.0,
                   help="quiet time before the idle window and before the crash, s (10)")
    p.add_argument("--poll", type=float, default=0.05, help="poll interval, s (0.05)")
    p.add_argument("--phase-timeout", type=float, default=120.0,
                   help="bound of each measured phase, s (120)")
    p.add_argument("--memberlist-args",
                   default="-profile local -runs 3 -timeout 120 -subnet 140",
                   help="arguments of bench/memberlist_join (default: %(default)s)")
    p.add_argument("--no-memberlist", action="store_true", help="skip bench/memberlist_join")
    p.add_argument("--json", help="write every run's numbers to this file")
    p.add_argument("--keep", action="store_true", help="keep every run's directory (logs)")
    args = p.parse_args()
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        p.error("--sizes: a comma list of integers")
    if not sizes or min(sizes) < 3 or max(sizes) > 200:
        p.error("--sizes: each N between 3 and 200")
    impls = [x.strip() for x in args.impls.split(",") if x.strip()]
    for i in impls:
        if i not in IMPLS:
            p.error(f"unknown implementation {i!r} (expected: {', '.join(IMPLS)})")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.hold < 5:
        p.error("--hold must be at least 5 s")
    args.partition_timeout = min(args.phase_timeout, args.hold)
    if os.geteuid() != 0:
        p.error("needs root (network namespaces, nftables)")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            p.error(f"`{tool}` not found: apt-get install -y iproute2 nftables")
    if any(i.startswith("serf") for i in impls) and not (
            os.access(args.serf, os.X_OK) or shutil.which(args.serf)):
        p.error("serf not found: apt-get install -y serf, or pass --serf PATH")
    if not args.no_memberlist and shutil.which("go") is None:
        p.error("go not found (apt-get install -y golang-go golang-github-hashicorp-"
                "memberlist-dev), or pass --no-memberlist")

    if "rollcall" in impls and not args.rollcall:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target"))
        log("building rollcall (cargo build --release --bin rollcall -p rollcall)")
        subprocess.run(["cargo", "build", "--release", "--bin", "rollcall", "-p", "rollcall"],
                       cwd=repo, check=True)
        args.rollcall = os.path.join(target, "release", "rollcall")

    results, net, copied, ml = [], None, None, None
    info = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "host_cores": os.cpu_count(), "load_start": loadavg()}
    try:
        # Copies: a rebuild during the measurement must not change the binaries.
        copied = tempfile.mkdtemp(prefix="rollcall-compare-bin-")
        bins = {}
        if "rollcall" in impls:
            bins["rollcall"] = os.path.join(copied, "rollcall")
            shutil.copy2(args.rollcall, bins["rollcall"])
            info["rollcall_version"] = version_of([bins["rollcall"], "--version"])
        if any(i.startswith("serf") for i in impls):
            bins["serf"] = os.path.join(copied, "serf")
            shutil.copy2(shutil.which(args.serf) or args.serf, bins["serf"])
            dpkg = version_of(["dpkg-query", "-W", "-f", "${Version}", "serf"])
            info["serf_version"] = dpkg or version_of([bins["serf"], "version"])
        key = base64.b64encode(os.urandom(32)).decode()
        log(f"making {max(sizes)} namespaces on a bridge")
        net = Net(max(sizes))
        for n in sizes:
            for k in range(args.runs):
                order = impls[k % len(impls):] + impls[:k % len(impls)]
                for impl in order:
                    log(f"== N={n} {impl} run {k + 1}/{args.runs} (load {' '.join(loadavg())})")
                    r = one_run(impl, bins, net, n, k, args, key)
                    results.append(r)
                    log("   " + ", ".join(
                        f"{key_} {fmt_one(r[key_], unit)}" for key_, _, unit in MEASURES
                        if key_ in r) + f" (took {r['took_s']:.0f} s)")
        net.close()
        net = None
        info["load_end"] = loadavg()
        if not args.no_memberlist:
            log(f"== memberlist_join {args.memberlist_args} (load {' '.join(loadavg())})")
            ml = memberlist_bench(repo, args.memberlist_args.split(), timeout=3600)
            log("   " + (ml.get("error") or f"runs {ml.get('runs')}, median {ml.get('median_s')}"))
            info["load_end_memberlist"] = loadavg()
    finally:
        if net is not None:
            net.close()
        if copied:
            shutil.rmtree(copied, ignore_errors=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"info": info, "args": vars(args), "results": results,
                           "memberlist_join": ml}, f, indent=1)
    report(results, impls, sizes, info, ml, args)
    if any(not r.get("ok") for r in results) or (ml is not None and (
            ml.get("error") or ml.get("exit"))):
        sys.exit(1)


def on_term(*_):
    raise SystemExit(1)


if __name__ == "__main__":
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    main()
