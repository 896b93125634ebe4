"""Topology loading: the shipped files load as documented, and every bad input gets an exact message.

Messages are asserted in full because users (and the CLI's `topology check`) read them verbatim: a
changed line number or a lost fix is a regression.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
import yaml

from bgpconform.errors import ConfigError
from bgpconform.topology import (
    Credentials,
    Override,
    Problem,
    Topology,
    TopologyError,
    format_problems,
    load_topology,
    parse_topology,
)

TOPOLOGIES = Path(__file__).resolve().parents[1] / "topologies"

# A minimal valid topology; the cases below change one thing in it. Line numbers matter.
BASE = """\
cluster:
  name: k3s-rpi
  node_subnet: 192.168.1.0/24
nodes:
  - name: k3s-control-plane-01
    role: control-plane
    address: 192.168.1.200
    pod_cidr: 10.136.0.0/24
  - name: k3s-worker-node-01
    role: worker
    address: 192.168.1.201
    pod_cidr: 10.136.1.0/24
router:
  kind: frr
  address: 192.168.1.1
  asn: 64512
  north_address: 198.51.100.1/24
bgp:
  node_asn: 64512
  peer_asn: 64512
  node_selector: {bgp-policy: a}
lb_pools:
  - name: lb-pool
    cidrs: [172.198.1.0/24]
client:
  address: 198.51.100.10/24
  gateway: 198.51.100.1
"""

SHIPPED = "topologies/lab.yaml (the lab) or a copy of topologies/pi.example.yaml (real hardware)"
TOP_FIELDS = "cluster, nodes, router, bgp, lb_pools, workload, client, waits, disruption, scale"


def variant(old: str, new: str) -> str:
    """BASE with exactly one occurrence of `old` replaced, so a case cannot silently miss its target."""
    assert BASE.count(old) == 1, f"{old!r} occurs {BASE.count(old)} times in BASE"
    return BASE.replace(old, new)


def write(tmp_path: Path, text: str, name: str = "topo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> TopologyError:
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    return caught.value


# --- the shipped files ---------------------------------------------------------------------------------


def test_lab_topology_has_the_walkthrough_values() -> None:
    topo = load_topology(TOPOLOGIES / "lab.yaml")

    assert topo.cluster.name == "k3s-rpi"
    assert topo.cluster.node_subnet == IPv4Network("192.168.1.0/24")
    assert (topo.cluster.k3s_version, topo.cluster.cilium_version) == ("v1.27.3+k3s1", "1.13.4")
    assert [(n.name, n.role, str(n.address)) for n in topo.nodes] == [
        ("k3s-control-plane-01", "control-plane", "192.168.1.200"),
        ("k3s-worker-node-01", "worker", "192.168.1.201"),
        ("k3s-worker-node-02", "worker", "192.168.1.202"),
        ("k3s-worker-node-03", "worker", "192.168.1.203"),
    ]
    # Cilium's IPAM assigns each node's pod CIDR; the pool holds the walkthrough's 10.136.0-3.0/24.
    assert all(n.pod_cidr is None for n in topo.nodes)
    assert topo.cluster.pod_cidr_pool == IPv4Network("10.136.0.0/16")
    assert topo.cluster.pod_cidr_mask_size == 24
    router = topo.router
    assert (router.kind, router.name, router.address, router.asn) == (
        "frr",
        "router",
        IPv4Address("192.168.1.1"),
        64512,
    )
    assert router.north_address == IPv4Interface("198.51.100.1/24")
    assert router.ecmp is True
    assert (router.management, router.credentials) == (None, None)
    assert (topo.bgp.node_asn, topo.bgp.peer_asn) == (64512, 64512)
    assert topo.bgp.node_selector == {"bgp-policy": "a"}
    assert topo.bgp.policy_name == "01-bgp-peering-policy"
    assert topo.bgp.export_pod_cidr is True
    assert [(p.name, p.cidrs) for p in topo.lb_pools] == [("lb-pool", [IPv4Network("172.198.1.0/24")])]
    wl = topo.workload
    assert (wl.namespace, wl.pod_name, wl.app_label, wl.image) == (
        "default",
        "simple-pod",
        "simple-pod",
        "nginx:latest",
    )
    assert (wl.service_name, wl.port, wl.target_port, wl.protocol) == ("my-service", 8080, 80, "TCP")
    assert topo.client.address == IPv4Interface("198.51.100.10/24")
    assert topo.client.gateway == IPv4Address("198.51.100.1")


def test_lab_topology_derived_views() -> None:
    topo = load_topology(TOPOLOGIES / "lab.yaml")

    assert [n.name for n in topo.control_planes] == ["k3s-control-plane-01"]
    assert [n.name for n in topo.workers] == [
        "k3s-worker-node-01",
        "k3s-worker-node-02",
        "k3s-worker-node-03",
    ]
    assert topo.bgp_nodes == topo.workers
    assert topo.ibgp is True
    assert topo.node("k3s-worker-node-02").address == IPv4Address("192.168.1.202")
    assert topo.source == (TOPOLOGIES / "lab.yaml").resolve()


def test_unknown_node_name_is_a_clear_key_error() -> None:
    topo = load_topology(TOPOLOGIES / "lab.yaml")
    with pytest.raises(KeyError) as caught:
        topo.node("k3s-worker-node-09")
    assert caught.value.args[0] == (
        f"no node named 'k3s-worker-node-09' in {topo.source}; nodes: k3s-control-plane-01, "
        "k3s-worker-node-01, k3s-worker-node-02, k3s-worker-node-03"
    )


def test_pi_example_describes_a_mikrotik() -> None:
    topo = load_topology(TOPOLOGIES / "pi.example.yaml")

    assert topo.router.kind == "routeros"
    assert topo.router.routeros_version == "7.8"
    assert topo.router.ecmp is False
    assert topo.router.management is not None
    assert (topo.router.management.host, topo.router.management.port) == ("192.168.1.1", 8728)
    assert topo.router.credentials == Credentials(
        username_env="BGPCONFORM_ROUTER_USER", password_env="BGPCONFORM_ROUTER_PASSWORD"
    )
    assert [n.name for n in topo.bgp_nodes] == [
        "k3s-worker-node-01",
        "k3s-worker-node-02",
        "k3s-worker-node-03",
    ]


def test_lab_routeros_is_the_walkthrough_lab_with_a_mikrotik_router() -> None:
    routeros = load_topology(TOPOLOGIES / "lab-routeros.yaml")
    lab = load_topology(TOPOLOGIES / "lab.yaml")

    assert (routeros.router.kind, routeros.router.routeros_version, routeros.router.ecmp) == (
        "routeros",
        "7.8",
        False,
    )
    assert routeros.router.management is None  # the lab's API listens on loopback at a free port
    assert routeros.router.credentials is not None
    assert [n.model_dump() for n in routeros.nodes] == [n.model_dump() for n in lab.nodes]
    assert routeros.bgp == lab.bgp
    assert routeros.lb_pools == lab.lb_pools


def test_dump_has_the_file_shape_and_loads_back(tmp_path: Path) -> None:
    """Source and digest belong to the load, not the file: a dump must be a loadable topology again."""
    topo = load_topology(TOPOLOGIES / "lab.yaml")
    dumped = topo.model_dump(mode="json")
    assert "source" not in dumped
    assert "digest" not in dumped

    again = load_topology(write(tmp_path, yaml.safe_dump(dumped)))
    assert again.model_dump() == topo.model_dump()


def test_digest_is_sha256_of_the_bytes_and_follows_changes(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    first = load_topology(path)
    assert first.digest == hashlib.sha256(BASE.encode()).hexdigest()
    assert load_topology(path).digest == first.digest

    path.write_text(BASE + "# a comment changes the bytes, not the meaning\n")
    assert load_topology(path).digest != first.digest

    path.write_text(variant("asn: 64512\n  north", "asn: 64512\n  ecmp: false\n  north"))
    assert load_topology(path).digest != first.digest


def test_defaults_fill_optional_sections(tmp_path: Path) -> None:
    topo = load_topology(write(tmp_path, BASE))

    assert topo.client.name == "client"
    assert (topo.bgp.timers.connect_retry, topo.bgp.timers.hold, topo.bgp.timers.keepalive) == (1, 9, 3)
    assert topo.bgp.peer_nodes is None
    assert topo.waits.sessions_established is None  # the Cilium version's dialling decides
    assert topo.waits.http == 15.0
    assert topo.workload.service_name == "my-service"


def test_peer_nodes_select_the_peering_nodes(tmp_path: Path) -> None:
    text = variant(
        "  node_selector: {bgp-policy: a}\n",
        "  node_selector: {bgp-policy: a}\n  peer_nodes: [k3s-control-plane-01]\n",
    )
    topo = load_topology(write(tmp_path, text))
    assert [n.name for n in topo.bgp_nodes] == ["k3s-control-plane-01"]


def test_overlapping_pools_are_allowed(tmp_path: Path) -> None:
    """The suite creates overlapping pools on purpose, to see Cilium mark the newer one."""
    text = variant(
        "    cidrs: [172.198.1.0/24]\n",
        "    cidrs: [172.198.1.0/24]\n  - name: lb-pool-overlap\n    cidrs: [172.198.1.128/25]\n",
    )
    topo = load_topology(write(tmp_path, text))
    assert [p.name for p in topo.lb_pools] == ["lb-pool", "lb-pool-overlap"]


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    """Constructing YAML copies an anchor's pairs into the merging node; those are not the user's keys."""
    text = variant(
        "  - name: k3s-worker-node-01\n",
        "  - &worker\n    name: k3s-worker-node-01\n",
    ).replace(
        "router:\n",
        "  - <<: *worker\n    name: k3s-worker-node-02\n    address: 192.168.1.202\n"
        "    pod_cidr: 10.136.2.0/24\nrouter:\n",
    )
    topo = load_topology(write(tmp_path, text))
    assert [(n.name, n.role, str(n.address)) for n in topo.workers] == [
        ("k3s-worker-node-01", "worker", "192.168.1.201"),
        ("k3s-worker-node-02", "worker", "192.168.1.202"),
    ]


def test_ebgp_is_not_ibgp(tmp_path: Path) -> None:
    text = variant("  node_asn: 64512", "  node_asn: 65001")
    assert load_topology(write(tmp_path, text)).ibgp is False


def test_parse_topology_names_its_source() -> None:
    topo = parse_topology(BASE, source="inline.yaml")
    assert topo.source == Path("inline.yaml")
    with pytest.raises(TopologyError) as caught:
        parse_topology(variant("  asn: 64512", "  asn: 0"), source="inline.yaml")
    assert str(caught.value) == (
        "inline.yaml:16: router.asn: AS number 0 is out of range; "
        "fix: use 1..4294967295; private ranges are 64512-65534 and 4200000000-4294967294"
    )


# --- bad input: one exact message per case --------------------------------------------------------------

CASES: list[tuple[str, str, str, str]] = [
    (
        "unknown field, with a close match",
        "    address: 192.168.1.201",
        "    adress: 192.168.1.201",
        "{file}:11: nodes[1].adress: unknown field 'adress'; fix: did you mean 'address'? "
        "(allowed here: name, role, address, labels, pod_cidr)",
    ),
    (
        "unknown field, nothing close",
        "client:\n",
        "colour: blue\nclient:\n",
        f"{{file}}:25: colour: unknown field 'colour'; fix: remove it (allowed here: {TOP_FIELDS})",
    ),
    (
        "missing required field",
        "  asn: 64512\n",
        "",
        "{file}:13: router.asn: missing required field; fix: add 'asn: 64512' under 'router'",
    ),
    (
        "missing required section",
        "client:\n  address: 198.51.100.10/24\n  gateway: 198.51.100.1\n",
        "",
        "{file}:1: client: missing required field; "
        "fix: add 'client:' at the top level, as in topologies/lab.yaml",
    ),
    (
        "empty value",
        "  asn: 64512",
        "  asn:",
        "{file}:16: router.asn: has no value, expected an integer; fix: give it a value, e.g. 64512",
    ),
    (
        "quoted number",
        "  asn: 64512",
        "  asn: '64512'",
        "{file}:16: router.asn: expected an integer, got the string '64512'; fix: remove the quotes",
    ),
    (
        "version read as a number",
        "  kind: frr\n",
        "  kind: frr\n  routeros_version: 7.10\n",
        '{file}:15: router.routeros_version: expected a string, got the number 7.10; fix: quote it: "7.10"',
    ),
    (
        "label value read as a boolean",
        "{bgp-policy: a}",
        "{bgp-policy: yes}",
        "{file}:21: bgp.node_selector.bgp-policy: expected a string, got the boolean yes; "
        'fix: quote it: "yes"',
    ),
    (
        "empty list entry",
        "lb_pools:\n",
        "lb_pools:\n  -\n",
        "{file}:23: lb_pools[0]: has no value, expected a mapping; "
        "fix: write a mapping here or delete the empty entry",
    ),
    (
        "list expected",
        "  - name: lb-pool\n    cidrs: [172.198.1.0/24]\n",
        "  name: lb-pool\n",
        "{file}:22: lb_pools: expected a list, got a mapping; "
        "fix: write a list: one '- item' per line, or [a, b]",
    ),
    (
        "literal option misspelt",
        "    role: worker",
        "    role: workers",
        "{file}:10: nodes[1].role: expected 'control-plane' or 'worker', got the string 'workers'; "
        "fix: did you mean 'worker'?",
    ),
    (
        "literal option unknown",
        "  kind: frr",
        "  kind: mikrotik",
        "{file}:14: router.kind: expected 'frr' or 'routeros', got the string 'mikrotik'; "
        "fix: use 'frr' or 'routeros'",
    ),
    (
        "not an IPv4 address",
        "    address: 192.168.1.201",
        "    address: 192.168.1.300",
        "{file}:11: nodes[1].address: '192.168.1.300' is not an IPv4 address; "
        "fix: write four numbers 0-255 separated by dots, e.g. 192.168.1.10",
    ),
    (
        "network with host bits",
        "    pod_cidr: 10.136.1.0/24",
        "    pod_cidr: 10.136.1.1/24",
        "{file}:12: nodes[1].pod_cidr: '10.136.1.1/24' has host bits set; "
        "fix: use the network address: 10.136.1.0/24",
    ),
    (
        "interface without prefix length",
        "  address: 198.51.100.10/24",
        "  address: 198.51.100.10",
        "{file}:26: client.address: '198.51.100.10' has no prefix length; "
        "fix: add the length of its network, e.g. 198.51.100.10/24",
    ),
    (
        "node name not a DNS label",
        "  - name: k3s-worker-node-01",
        "  - name: K3s_Worker_1",
        "{file}:9: nodes[1].name: 'K3s_Worker_1' is not a valid DNS-1123 label; fix: use at most 63 "
        "lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. 'k3s-worker-1'",
    ),
    (
        "node outside the node subnet",
        "    address: 192.168.1.201",
        "    address: 192.168.2.201",
        "{file}:11: nodes[1].address: 192.168.2.201 is outside cluster.node_subnet 192.168.1.0/24; "
        "fix: use an address in 192.168.1.0/24 or change cluster.node_subnet",
    ),
    (
        "router outside the node subnet",
        "  address: 192.168.1.1",
        "  address: 10.0.0.1",
        "{file}:15: router.address: 10.0.0.1 is outside cluster.node_subnet 192.168.1.0/24; "
        "fix: use the router's address in 192.168.1.0/24 or change cluster.node_subnet",
    ),
    (
        "router on the network address",
        "  address: 192.168.1.1",
        "  address: 192.168.1.0",
        "{file}:15: router.address: 192.168.1.0 is the network address of cluster.node_subnet "
        "192.168.1.0/24; fix: use a host address, 192.168.1.1 to 192.168.1.254",
    ),
    (
        "router on the broadcast address",
        "  address: 192.168.1.1",
        "  address: 192.168.1.255",
        "{file}:15: router.address: 192.168.1.255 is the broadcast address of cluster.node_subnet "
        "192.168.1.0/24; fix: use a host address, 192.168.1.1 to 192.168.1.254",
    ),
    (
        "router on a node's address",
        "  address: 192.168.1.1",
        "  address: 192.168.1.201",
        "{file}:15: router.address: 192.168.1.201 is already used by nodes[1].address; "
        "fix: give each machine its own address",
    ),
    (
        "two nodes on one address",
        "    address: 192.168.1.201",
        "    address: 192.168.1.200",
        "{file}:11: nodes[1].address: 192.168.1.200 is already used by nodes[0].address; "
        "fix: give each machine its own address",
    ),
    (
        "duplicate node name",
        "  - name: k3s-worker-node-01",
        "  - name: k3s-control-plane-01",
        "{file}:9: nodes[1].name: duplicate node name 'k3s-control-plane-01' (also nodes[0]); "
        "fix: give each node a unique name",
    ),
    (
        "pod CIDRs overlap",
        "    pod_cidr: 10.136.1.0/24",
        "    pod_cidr: 10.136.0.0/16",
        "{file}:12: nodes[1].pod_cidr: 10.136.0.0/16 overlaps nodes[0].pod_cidr 10.136.0.0/24; "
        "fix: give each node its own pod CIDR, outside the node subnet and the client network",
    ),
    (
        "pod CIDR in the node subnet",
        "    pod_cidr: 10.136.1.0/24",
        "    pod_cidr: 192.168.1.128/25",
        "{file}:12: nodes[1].pod_cidr: 192.168.1.128/25 overlaps cluster.node_subnet 192.168.1.0/24; "
        "fix: give each node its own pod CIDR, outside the node subnet and the client network",
    ),
    (
        "pod CIDR in the client network",
        "    pod_cidr: 10.136.1.0/24",
        "    pod_cidr: 198.51.100.0/25",
        "{file}:12: nodes[1].pod_cidr: 198.51.100.0/25 overlaps the client network (client.address) "
        "198.51.100.0/24; "
        "fix: give each node its own pod CIDR, outside the node subnet and the client network",
    ),
    (
        "pool overlaps the node subnet",
        "[172.198.1.0/24]",
        "[172.198.1.0/24, 192.168.1.128/25]",
        "{file}:24: lb_pools[0].cidrs[1]: 192.168.1.128/25 overlaps cluster.node_subnet 192.168.1.0/24; "
        "fix: pick a pool CIDR outside the node subnet, the pod CIDRs and the client network",
    ),
    (
        "pool overlaps a pod CIDR",
        "[172.198.1.0/24]",
        "[10.136.0.0/16]",
        "{file}:24: lb_pools[0].cidrs[0]: 10.136.0.0/16 overlaps nodes[0].pod_cidr 10.136.0.0/24; "
        "fix: pick a pool CIDR outside the node subnet, the pod CIDRs and the client network",
    ),
    (
        "pool overlaps the client network",
        "[172.198.1.0/24]",
        "[198.51.100.0/24]",
        "{file}:24: lb_pools[0].cidrs[0]: 198.51.100.0/24 overlaps the client network (client.address) "
        "198.51.100.0/24; "
        "fix: pick a pool CIDR outside the node subnet, the pod CIDRs and the client network",
    ),
    (
        "pool without CIDRs",
        "[172.198.1.0/24]",
        "[]",
        "{file}:24: lb_pools[0].cidrs: is empty; fix: list at least one, e.g. [172.198.1.0/24]",
    ),
    (
        "duplicate pool name",
        "    cidrs: [172.198.1.0/24]\n",
        "    cidrs: [172.198.1.0/24]\n  - name: lb-pool\n    cidrs: [172.198.2.0/24]\n",
        "{file}:25: lb_pools[1].name: duplicate pool name 'lb-pool' (also lb_pools[0]); "
        "fix: give each pool a unique name",
    ),
    (
        "AS_TRANS",
        "  node_asn: 64512",
        "  node_asn: 23456",
        "{file}:19: bgp.node_asn: AS number 23456 is AS_TRANS, reserved for 4-byte AS transition (RFC 6793); "
        "fix: use another AS number, e.g. 64512",
    ),
    (
        "ASN above 32 bits",
        "  node_asn: 64512",
        "  node_asn: 4294967296",
        "{file}:19: bgp.node_asn: AS number 4294967296 is out of range; "
        "fix: use 1..4294967295; private ranges are 64512-65534 and 4200000000-4294967294",
    ),
    (
        "peer ASN is not the router's",
        "  peer_asn: 64512",
        "  peer_asn: 64513",
        "{file}:20: bgp.peer_asn: 64513 is not router.asn 64512; "
        "fix: set bgp.peer_asn to the router's AS number, 64512",
    ),
    (
        "peer node that does not exist",
        "  node_selector: {bgp-policy: a}\n",
        "  node_selector: {bgp-policy: a}\n  peer_nodes: [k3s-worker-node-01, k3s-worker-node-09]\n",
        "{file}:22: bgp.peer_nodes[1]: no node named 'k3s-worker-node-09'; "
        "fix: use one of: k3s-control-plane-01, k3s-worker-node-01",
    ),
    (
        "empty peer node list",
        "  node_selector: {bgp-policy: a}\n",
        "  node_selector: {bgp-policy: a}\n  peer_nodes: []\n",
        "{file}:22: bgp.peer_nodes: is empty, so no node would peer; "
        "fix: list at least one node name, or remove peer_nodes so that every worker peers",
    ),
    (
        "no worker and no peer_nodes",
        "    role: worker",
        "    role: control-plane",
        "{file}:18: bgp: no peering nodes: bgp.peer_nodes is unset, so every worker peers, and there is "
        "no worker; fix: add a worker node or list the peering nodes in bgp.peer_nodes",
    ),
    (
        "empty node selector",
        "{bgp-policy: a}",
        "{}",
        "{file}:21: bgp.node_selector: is empty; "
        "fix: give the label the harness puts on peering nodes, e.g. node_selector: {bgp-policy: a}",
    ),
    (
        "keepalive longer than hold",
        "  node_selector: {bgp-policy: a}\n",
        "  node_selector: {bgp-policy: a}\n  timers: {hold: 9, keepalive: 10}\n",
        "{file}:22: bgp.timers.keepalive: keepalive 10 is longer than hold 9; "
        "fix: use a keepalive of at most the hold time, usually a third of it",
    ),
    (
        "gateway outside the client network",
        "  gateway: 198.51.100.1",
        "  gateway: 198.51.101.1",
        "{file}:27: client.gateway: 198.51.101.1 is outside the client network 198.51.100.0/24; "
        "fix: use the router's north address, which must be in 198.51.100.0/24",
    ),
    (
        "gateway is not the router",
        "  gateway: 198.51.100.1",
        "  gateway: 198.51.100.254",
        "{file}:27: client.gateway: 198.51.100.254 is not router.north_address 198.51.100.1; "
        "fix: set client.gateway to 198.51.100.1",
    ),
    (
        "port out of range",
        "client:\n",
        "workload:\n  port: 0\nclient:\n",
        "{file}:26: workload.port: port 0 is out of range; fix: use a port in 1..65535",
    ),
    (
        "management port out of range",
        "  kind: frr\n",
        "  kind: frr\n  management: {host: 192.168.1.1, port: 70000}\n",
        "{file}:15: router.management.port: port 70000 is out of range; fix: use a port in 1..65535",
    ),
    (
        "routeros without credentials",
        "  kind: frr\n",
        "  kind: routeros\n  ecmp: false\n",
        "{file}:13: router.credentials: required when kind is 'routeros'; "
        "fix: add credentials: {username_env: BGPCONFORM_ROUTER_USER, "
        "password_env: BGPCONFORM_ROUTER_PASSWORD} and export those variables",
    ),
    (
        "ecmp on a RouterOS without multipath",
        "  kind: frr\n",
        "  kind: routeros\n  credentials: {username_env: ROUTER_USER, password_env: ROUTER_PASSWORD}\n",
        "{file}:13: router.ecmp: RouterOS 7.8 has no BGP multipath (it came in 7.22): only one of several "
        "equal paths is active; "
        "fix: set ecmp: false, or routeros_version to 7.22 or later if the router runs it",
    ),
    (
        "inline password",
        "  kind: frr\n",
        "  kind: frr\n  password: hunter2\n",
        "{file}:15: router.password: secrets are never inline in a topology file; fix: remove it, store the "
        "secret in an environment variable and put that variable's name in credentials.password_env",
    ),
    (
        "inline token under management",
        "  kind: frr\n",
        "  kind: frr\n  management: {host: 192.168.1.1, port: 8728, api_token: s3cr3t}\n",
        "{file}:15: router.management.api_token: secrets are never inline in a topology file; fix: remove "
        "it, store the secret in an environment variable and put that variable's name in "
        "credentials.password_env",
    ),
    (
        "credentials that are not variable names",
        "  kind: frr\n",
        "  kind: frr\n  credentials: {username_env: ROUTER_USER, password_env: hunter2}\n",
        "{file}:15: router.credentials.password_env: is not a valid environment variable name (it names the "
        "variable that holds the value, it is not the value); fix: use upper-case letters, digits and '_', "
        "not starting with a digit, e.g. BGPCONFORM_ROUTER_PASSWORD",
    ),
    (
        "duplicate key",
        "  name: k3s-rpi\n",
        "  name: k3s-rpi\n  name: k3s-lab\n",
        "{file}:3: cluster.name: duplicate key (first at line 2); "
        "fix: keep only one: YAML would silently use the last",
    ),
    (
        "loader-owned field in the file",
        "cluster:\n",
        "digest: 0123abcd\ncluster:\n",
        "{file}:1: digest: is set by the loader from the file itself; fix: remove it",
    ),
    (
        "label selected but not peering",
        "    role: control-plane\n",
        "    role: control-plane\n    labels: {bgp-policy: a}\n",
        "{file}:7: nodes[0].labels: carries bgp.node_selector (bgp-policy=a) but k3s-control-plane-01 is not "
        "a peering node; fix: remove that label from the node, or add the node to bgp.peer_nodes",
    ),
    (
        "no control plane",
        "    role: control-plane\n",
        "    role: worker\n",
        "{file}:4: nodes: no node has role 'control-plane'; "
        "fix: add the k3s server as a node with role: control-plane",
    ),
    (
        "RouterOS API settings on an FRR router",
        "  kind: frr\n",
        "  kind: frr\n  management: {host: 192.168.1.1, port: 8728}\n",
        "{file}:15: router.management: is the RouterOS API; an FRR router is reached through vtysh; "
        "fix: remove management and add vtysh: {ssh: user@host} (or {namespace: NAME})",
    ),
    (
        "vtysh over SSH and in a namespace at once",
        "  kind: frr\n",
        "  kind: frr\n  vtysh: {ssh: frr@192.168.1.1, namespace: router}\n",
        "{file}:15: router.vtysh.ssh: both ssh and namespace are set; fix: keep ssh for a router reached "
        "over SSH, or namespace for one in a namespace on this machine",
    ),
    (
        "outside client over SSH and in a namespace at once",
        "  gateway: 198.51.100.1\n",
        "  gateway: 198.51.100.1\n  namespace: client\n  ssh: pi@198.51.100.10\n",
        "{file}:29: client.ssh: both ssh and namespace are set; fix: keep ssh for a client reached "
        "over SSH, or namespace for one in a namespace on this machine",
    ),
    (
        "non-positive wait",
        "client:\n",
        "waits: {http: 0}\nclient:\n",
        "{file}:25: waits.http: 0 is not a positive number of seconds; fix: use a value above 0, e.g. 30",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_exact_message(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = write(tmp_path, variant(old, new))
    assert str(error_of(path)) == expected.replace("{file}", str(path))


def test_client_inside_the_node_subnet(tmp_path: Path) -> None:
    text = variant("  north_address: 198.51.100.1/24", "  north_address: 192.168.1.254/24")
    text = text.replace(
        "  address: 198.51.100.10/24\n  gateway: 198.51.100.1",
        "  address: 192.168.1.10/24\n  gateway: 192.168.1.254",
    )
    path = write(tmp_path, text)
    assert str(error_of(path)) == (
        f"{path}:26: client.address: the client network 192.168.1.0/24 overlaps cluster.node_subnet "
        "192.168.1.0/24; fix: put the client north of the router, on a network of its own such as "
        "198.51.100.0/24"
    )


def test_all_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = variant("  gateway: 198.51.100.1", "  gateway: 198.51.100.1\n  colour: blue")
    text = text.replace("  asn: 64512\n", "  asn: '64512'\n").replace("    role: worker", "    role: boss")
    path = write(tmp_path, text)
    error = error_of(path)
    assert str(error) == "\n".join(
        [
            f"{path}:10: nodes[1].role: expected 'control-plane' or 'worker', got the string 'boss'; "
            "fix: use 'control-plane' or 'worker'",
            f"{path}:16: router.asn: expected an integer, got the string '64512'; fix: remove the quotes",
            f"{path}:28: client.colour: unknown field 'colour'; fix: remove it (allowed here: name, address, "
            "gateway, namespace, ssh)",
        ]
    )
    assert [(p.line, p.path) for p in error.problems] == [
        (10, "nodes[1].role"),
        (16, "router.asn"),
        (28, "client.colour"),
    ]


def test_a_misspelt_required_field_is_not_also_reported_missing(tmp_path: Path) -> None:
    path = write(tmp_path, variant("  node_asn: 64512", "  node_as: 64512"))
    assert str(error_of(path)) == (
        f"{path}:19: bgp.node_as: unknown field 'node_as'; fix: did you mean 'node_asn'? (allowed here: "
        "node_asn, peer_asn, node_selector, peer_nodes, policy_name, export_pod_cidr, timers, api)"
    )


def test_secrets_are_never_echoed(tmp_path: Path) -> None:
    text = variant("  kind: frr\n", "  kind: frr\n  password: hunter2\n  credentials: 'admin:hunter2'\n")
    path = write(tmp_path, text)
    message = str(error_of(path))
    assert "hunter2" not in message
    assert message == (
        f"{path}:15: router.password: secrets are never inline in a topology file; fix: remove it, store the "
        "secret in an environment variable and put that variable's name in credentials.password_env\n"
        f"{path}:16: router.credentials: expected a mapping, got a string; "
        "fix: write a mapping: indented 'key: value' lines, or {key: value}"
    )


def test_error_is_a_config_error_without_pydantic_noise(tmp_path: Path) -> None:
    path = write(tmp_path, variant("  asn: 64512", "  asn: [1]"))
    error = error_of(path)
    assert isinstance(error, ConfigError)
    assert error.__cause__ is None
    assert error.__suppress_context__ is True
    message = str(error)
    assert "pydantic" not in message
    assert "For further information" not in message
    assert "Input should be" not in message
    assert message == f"{path}:16: router.asn: expected an integer, got a list; fix: write an integer here"


# --- problems with the file itself ----------------------------------------------------------------------


def test_missing_file_points_to_the_shipped_topologies(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert str(error_of(path)) == (
        f"{path}: no such file; fix: pass an existing topology file, e.g. {SHIPPED}"
    )


def test_directory_lists_its_yaml_files(tmp_path: Path) -> None:
    write(tmp_path, BASE, "b.yaml")
    write(tmp_path, BASE, "a.yaml")
    assert str(error_of(tmp_path)) == (
        f"{tmp_path}: is a directory, not a topology file; "
        "fix: pass one of the YAML files in it: a.yaml, b.yaml"
    )


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated, because root (as in CI containers) can read a chmod 000 file."""
    path = write(tmp_path, BASE)

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert str(error_of(path)) == (
        f"{path}: cannot read the file: permission denied; "
        "fix: make it readable by the user running the harness"
    )


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, variant("  kind: frr", "  kind: frr: lab"))
    assert str(error_of(path)) == (
        f"{path}:14: YAML syntax error at column 12: mapping values are not allowed here; "
        "fix: check the indentation and the quoting on this line and the one above"
    )


def test_tab_indentation(tmp_path: Path) -> None:
    path = write(tmp_path, variant("  asn: 64512", "\tasn: 64512"))
    assert str(error_of(path)) == (
        f"{path}:16: YAML syntax error at column 1: found character '\\t' that cannot start any token; "
        "fix: indent with spaces: YAML does not allow tabs"
    )


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "# a list by mistake\n- cluster\n- nodes\n")
    assert str(error_of(path)) == (
        f"{path}:2: the top level must be a mapping of sections, got a list; fix: write cluster:, nodes:, "
        "router:, bgp:, lb_pools: and client: as top-level keys, as in topologies/lab.yaml"
    )


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    assert (
        str(error_of(path)) == f"{path}:1: the file is empty; fix: start from a copy of topologies/lab.yaml"
    )


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("k3s-rpi", "k3s-caf\xe9").encode("latin-1"))
    assert str(error_of(path)) == f"{path}:2: the file is not UTF-8 text; fix: save it as UTF-8"


# --- the pieces around the loader -----------------------------------------------------------------------


def test_problem_format_without_line_or_path() -> None:
    assert (
        Problem("t.yaml", None, None, "no such file", "pass one").format()
        == "t.yaml: no such file; fix: pass one"
    )
    assert (
        Problem("t.yaml", 3, "router.asn", "is wrong", "fix it").format()
        == "t.yaml:3: router.asn: is wrong; fix: fix it"
    )
    unordered = [Problem("t.yaml", 9, "b", "m", "f"), Problem("t.yaml", 2, "a", "m", "f")]
    assert format_problems(unordered) == "t.yaml:2: a: m; fix: f\nt.yaml:9: b: m; fix: f"


def test_credentials_are_read_from_the_environment() -> None:
    creds = Credentials(username_env="ROUTER_USER", password_env="ROUTER_PASSWORD")
    assert creds.resolve({"ROUTER_USER": "admin", "ROUTER_PASSWORD": ""}) == ("admin", "")
    with pytest.raises(ConfigError) as caught:
        creds.resolve({"ROUTER_USER": "admin"})
    assert str(caught.value) == (
        "router.credentials: environment variable ROUTER_PASSWORD is not set; "
        "fix: export ROUTER_PASSWORD=... before running the harness"
    )
    with pytest.raises(ConfigError) as caught:
        creds.resolve({})
    assert str(caught.value) == (
        "router.credentials: environment variables ROUTER_USER and ROUTER_PASSWORD are not set; "
        "fix: export ROUTER_USER=... and ROUTER_PASSWORD=... before running the harness"
    )


def test_models_are_frozen() -> None:
    topo = parse_topology(BASE)
    with pytest.raises(ValueError, match="frozen"):
        topo.cluster.name = "other"
    assert isinstance(topo, Topology)


def test_connection_names_default_to_the_walkthrough_and_follow_a_template(tmp_path: Path) -> None:
    shipped = load_topology(TOPOLOGIES / "lab.yaml")
    assert [shipped.router.connection_name_for(i, n.name) for i, n in enumerate(shipped.bgp_nodes, 1)] == [
        "PEER_TO_K3S_WN_1",
        "PEER_TO_K3S_WN_2",
        "PEER_TO_K3S_WN_3",
    ]
    text = (
        (TOPOLOGIES / "lab.yaml")
        .read_text()
        .replace("  kind: frr ", "  connection_name: 'to-{node}-{zone}'\n  kind: frr ", 1)
    )
    bad = tmp_path / "template.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_topology(bad)
    assert "router.connection_name: 'to-{node}-{zone}' is not a valid name template" in str(caught.value)


# --- Cilium version and BGP API (FACTS.md, "Cilium 1.13 to 1.20") --------------------------------------


def _versioned(version: str, api: str | None = None) -> str:
    text = variant(
        "  node_subnet: 192.168.1.0/24\n", f'  node_subnet: 192.168.1.0/24\n  cilium_version: "{version}"\n'
    )
    return text.replace("  node_asn: 64512\n", f"  api: {api}\n  node_asn: 64512\n") if api else text


def test_a_cilium_version_outside_1_13_to_1_19_is_one_line_naming_the_field_and_the_fix(
    tmp_path: Path,
) -> None:
    for version in ("1.12.9", "1.20.0", "2.0.0"):
        path = write(tmp_path, _versioned(version))
        assert str(error_of(path)) == (
            f"{path}:4: cluster.cilium_version: Cilium {version} is outside 1.13 to 1.19, the releases the "
            "harness knows; fix: choose a release from 1.13 to 1.19, e.g. 1.19.1"
        )


def test_the_v1_api_on_1_19_is_refused_because_the_peering_policy_is_gone(tmp_path: Path) -> None:
    path = write(tmp_path, _versioned("1.19.1", "v1"))
    assert str(error_of(path)) == (
        f"{path}:20: bgp.api: Cilium 1.19.1 has no CiliumBGPPeeringPolicy (BGP v1 was removed in 1.19, "
        "cilium/cilium#42278); fix: set bgp.api: v2 (or leave bgp.api unset), or choose a cilium_version "
        "up to 1.18"
    )


def test_the_v2_api_before_1_16_is_refused_because_it_does_nothing_there(tmp_path: Path) -> None:
    path = write(tmp_path, _versioned("1.15.5", "v2"))
    assert str(error_of(path)) == (
        f"{path}:20: bgp.api: Cilium 1.15.5 has no working BGPv2 (CiliumBGPClusterConfig works from 1.16); "
        "fix: set bgp.api: v1 (or leave bgp.api unset), or choose a cilium_version of 1.16 or later"
    )


@pytest.mark.parametrize(
    ("version", "api", "chosen"),
    [
        ("1.13.4", None, "v1"),  # the walkthrough: v1 is all there is
        ("1.15.5", None, "v1"),
        ("1.16.3", None, "v2"),  # BGPv2 works from 1.16 and is what current docs configure
        ("1.16.3", "v1", "v1"),
        ("1.18.2", "v1", "v1"),  # deprecated, still served
        ("1.19.1", None, "v2"),  # v1 removed
    ],
)
def test_the_bgp_api_follows_the_version_unless_the_topology_chooses(
    tmp_path: Path, version: str, api: str | None, chosen: str
) -> None:
    topology = load_topology(write(tmp_path, _versioned(version, api)))
    assert topology.bgp_api.value == chosen


def test_an_option_that_replaces_a_field_is_named_in_the_message(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    with pytest.raises(TopologyError) as caught:
        load_topology(path, {("cluster", "cilium_version"): Override("--cilium-version", "1.21.0")})
    assert str(caught.value) == (
        f"{path}: cluster.cilium_version (from --cilium-version 1.21.0): Cilium 1.21.0 is outside 1.13 to "
        "1.19, the releases the harness knows; fix: choose a release from 1.13 to 1.19, e.g. 1.19.1; or "
        "pass another --cilium-version"
    )
    replaced = load_topology(path, {("cluster", "cilium_version"): Override("--cilium-version", "1.17.5")})
    assert replaced.cluster.cilium_version == "1.17.5"


def test_an_upgrade_target_must_be_a_later_minor_and_says_which_field_to_fix(tmp_path: Path) -> None:
    text = _versioned("1.17.5").replace(
        '  cilium_version: "1.17.5"\n', '  cilium_version: "1.17.5"\n  upgrade_to: "1.17.9"\n'
    )
    path = write(tmp_path, text)
    assert str(error_of(path)) == (
        f"{path}:5: cluster.upgrade_to: 1.17.9 is not a later minor than cluster.cilium_version 1.17.5; "
        "fix: choose a release of a later minor, or leave cluster.upgrade_to unset"
    )


def test_the_upgrade_topology_reaches_1_19_from_1_17_on_bgpv2() -> None:
    topology = load_topology(TOPOLOGIES / "lab-upgrade.yaml")
    assert (str(topology.cluster.cilium_version), str(topology.cluster.upgrade_to)) == ("1.17.5", "1.19.1")
    assert topology.bgp_api.value == "v2"


def test_the_scale_topology_is_the_rack_the_issue_asks_for() -> None:
    """50 nodes of which 48 peer, 500 services spread over two pools whose selectors keep the
    walkthrough's own service in lb-pool."""
    topology = load_topology(TOPOLOGIES / "lab-scale.yaml")
    assert (len(topology.nodes), len(topology.bgp_nodes)) == (50, 48)
    assert topology.scale is not None
    assert (topology.scale.services, topology.scale.pools) == (500, ["scale-pool-a", "scale-pool-b"])
    pools = {pool.name: pool for pool in topology.lb_pools}
    assert topology.lb_pools[0].name == "lb-pool"  # the walkthrough's pool, the first one its steps read
    room = {name: sum(cidr.num_addresses for cidr in pools[name].cidrs) for name in topology.scale.pools}
    assert all(size >= topology.scale.services // 2 for size in room.values()), room


def test_a_scale_pool_must_exist_and_select_by_labels(tmp_path: Path) -> None:
    text = BASE + "scale:\n  services: 10\n  pools: [lb-pool, no-such-pool]\n"
    path = write(tmp_path, text)
    message = str(error_of(path))
    assert (
        "scale.pools[0]: pool 'lb-pool' has no service_selector.match_labels to put on its services; "
        "fix: give lb_pools 'lb-pool' a service_selector with match_labels, "
        "e.g. {bgpconform.io/scale-pool: a}"
    ) in message
    missing = "scale.pools[1]: no pool named 'no-such-pool' in lb_pools; fix: name one of lb_pools (lb-pool)"
    assert missing in message


def test_a_pool_selector_reaches_the_cluster_in_ciliums_spelling(tmp_path: Path) -> None:
    from bgpconform.walkthrough.manifests import lb_pool

    topology = load_topology(TOPOLOGIES / "lab-scale.yaml")
    first, second = (lb_pool(pool, "1.13.4") for pool in topology.lb_pools[:2])
    assert first["spec"]["serviceSelector"] == {
        "matchExpressions": [{"key": "bgpconform.io/scale-pool", "operator": "DoesNotExist"}]
    }
    assert second["spec"]["serviceSelector"] == {"matchLabels": {"bgpconform.io/scale-pool": "a"}}
    walkthrough_pool = load_topology(TOPOLOGIES / "lab.yaml").lb_pools[0]
    assert "serviceSelector" not in lb_pool(walkthrough_pool, "1.13.4")["spec"]


def test_a_selector_term_with_values_that_do_not_fit_its_operator_is_refused(tmp_path: Path) -> None:
    text = BASE.replace(
        "    cidrs: [172.198.1.0/24]\n",
        "    cidrs: [172.198.1.0/24]\n    service_selector:\n      match_expressions:\n"
        "        - {key: tier, operator: In}\n",
        1,
    )
    path = write(tmp_path, text)
    assert "In without values; fix: list at least one value, or use Exists" in str(error_of(path))
