#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/seeds/<target>/: valid inputs of each
kind, for the fuzzer to start from. Run from anywhere:
`python3 fuzz/make_seeds.py`. The binary targets (sealed_messages,
stateful_node) start from inputs their own runs found, kept as they are."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


FULL = """[node]
name = "rollcall@127.0.0.1"
cookie = "a secret cookie"
data_dir = "data"
role = "core"

[cluster]
name = "rollcall"
discovery_strategy = "static"
proto_dist = "udp"
base_port = 4370
autoheal = true
network_evidence = true
lifeguard = true
autoclean = "24h"
profile = "lan"
expected_size = 16
max_datagram_size = 1400
discovery_interval = "30s"
discovery_interval_alone = "5s"

[cluster.static]
seeds = ["rollcall@127.0.0.1", "rollcall1@127.0.0.1"]

[metrics]
listen = "127.0.0.1:9100"
"""


def config():
    write("config", "full.toml", FULL)
    write("config", "empty.toml", "")
    write("config", "dns.toml", '[cluster]\ndiscovery_strategy = "dns"\n[cluster.dns]\n'
          'name = "rollcall.example.com"\nrecord_type = "srv"\nserver = "10.0.0.53:53"\n')
    write("config", "etcd.toml", '[cluster]\ndiscovery_strategy = "etcd"\n[cluster.etcd]\n'
          'server = "https://127.0.0.1:2379"\nprefix = "rollcall"\nnode_ttl = "1m"\n'
          '[cluster.etcd.ssl]\ncacertfile = "ca.pem"\n')
    write("config", "k8s.toml", '[cluster]\ndiscovery_strategy = "k8s"\nproto_dist = "quic6"\n'
          '[cluster.k8s]\nservice_name = "rollcall"\naddress_type = "hostname"\n'
          '[cluster.quic]\nverify = "verify_none"\n[node]\nname = "a@[::1]"\nrole = "replicant"\n')
    write("config", "env.toml", '[node]\nname = "a@10.0.0.1"\n\0NODE__NAME=b@10.0.0.2\n'
          'CLUSTER__STATIC__SEEDS=a@10.0.0.1, b@10.0.0.2\nCLUSTER__AUTOCLEAN=off\n'
          'CLUSTER__BASE_PORT=5000\n')


def control():
    for name, req in [
        ("status", {"command": "status"}),
        ("status_verbose", {"command": "status_verbose"}),
        ("monitor", {"command": "monitor", "since_start": True}),
        ("join", {"command": "join", "node": "rollcall1@127.0.0.1"}),
        ("leave", {"command": "leave"}),
        ("force_leave", {"command": "force_leave", "node": "rollcall1@127.0.0.1"}),
        ("stats", {"command": "stats"}),
    ]:
        write("control_request", name, json.dumps(req, separators=(",", ":")))


def dns_name(name):
    out = b""
    for label in name.strip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_message(answers, qtype):
    # Header: id, flags (response, recursion), one question, answers.
    msg = struct.pack(">HHHHHH", 7, 0x8180, 1, len(answers), 0, 0)
    msg += dns_name("rollcall.example.com") + struct.pack(">HH", qtype, 1)
    for rtype, rdata in answers:
        # The owner as a pointer to the question's name (offset 12).
        msg += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 60, len(rdata)) + rdata
    return msg


def dns():
    a = lambda ip: (1, bytes(int(x) for x in ip.split(".")))
    aaaa = (28, b"\0" * 15 + b"\1")
    srv = lambda port, target: (33, struct.pack(">HHH", 0, 0, port) + dns_name(target))
    write("dns_answer", "a", b"\0" + dns_message([a("10.0.0.1"), a("10.0.0.2")], 1))
    write("dns_answer", "aaaa", b"\0" + dns_message([aaaa], 28))
    write("dns_answer", "srv", b"\0" + dns_message(
        [srv(4370, "Node1.Example.COM"), srv(4371, "node2.example.com"), (33, struct.pack(">HHH", 0, 0, 0) + b"\0")], 33))


def k8s():
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "rollcall-abc", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "rollcall"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "hostname": "rollcall-0",
             "targetRef": {"kind": "Pod", "name": "rollcall-0", "namespace": "default"}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
            {"addresses": ["fd00::3"], "targetRef": {"kind": "Pod", "name": "rollcall-2"}},
        ],
        "ports": [{"name": "gossip", "port": 4370, "protocol": "UDP"}],
    }
    slice_list = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList",
                  "metadata": {"resourceVersion": "1"}, "items": [endpoint_slice]}
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "rollcall", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1", "hostname": "rollcall-0"},
                                   {"ip": "10.0.0.2", "targetRef": {"kind": "Pod", "name": "rollcall-1"}}],
                     "notReadyAddresses": [{"ip": "10.0.0.3"}],
                     "ports": [{"port": 4370, "protocol": "UDP"}]}],
    }
    # First byte: object (mod 3) and address type (div 3).
    for mode, name, obj in [(0, "slice_list_ip", slice_list), (1 + 3, "slice_dns", endpoint_slice),
                            (2 + 6, "endpoints_hostname", endpoints)]:
        write("k8s_endpoints", name, bytes([mode]) + json.dumps(obj, separators=(",", ":")).encode())


config()
control()
dns()
k8s()
