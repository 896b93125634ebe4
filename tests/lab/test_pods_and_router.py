"""Pod namespaces on demand, and the FRR adapter's ownership of what it configures."""

from __future__ import annotations

import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgpconform.errors import CommandError, LabError
from bgpconform.lab.lab import Lab
from bgpconform.lab.netns import netns_exec, ns_argv
from bgpconform.lab.runs import list_namespaces
from bgpconform.lab.supervisor import Daemon
from bgpconform.routers.frr import FrrRouter
from bgpconform.waiting import wait_for

pytestmark = pytest.mark.lab
STATIC_SERVER = str(Path(__file__).with_name("static_server.py"))


def test_a_node_without_a_pod_cidr_has_no_pod_network(lab: Lab) -> None:
    """cilium-cni's ADD needs the agent's pod CIDR: before IPAM gave one there is no address to give."""
    node = lab.topology.workers[2]
    with pytest.raises(LabError, match=f"no pod CIDR has been assigned to {node.name} yet"):
        lab.network.attach_pod(node.name, "default/too-early")


def test_pods_get_addresses_from_their_nodes_cidr_and_reach_each_other_across_nodes(lab: Lab) -> None:
    first, second = lab.topology.workers[0], lab.topology.workers[1]
    # What each node's agent does once IPAM gave it a CIDR: its pod network, routes to the other's.
    first_cidr, second_cidr = IPv4Network("10.136.1.0/24"), IPv4Network("10.136.3.0/24")
    lab.network.assign_pod_cidr(first.name, first_cidr)
    lab.network.assign_pod_cidr(second.name, second_cidr)
    lab.network.route_pod_cidr(first.name, second_cidr, second.address)
    lab.network.route_pod_cidr(second.name, first_cidr, first.address)
    assert lab.network.pod_cidr(first.name) == first_cidr
    a = lab.network.attach_pod(first.name, "default/pod-a")
    b = lab.network.attach_pod(second.name, "default/pod-b")
    a_again = lab.network.attach_pod(first.name, "default/pod-a-2")
    try:
        assert a.ip in first_cidr
        assert b.ip in second_cidr
        assert a.gateway == next(iter(first_cidr.hosts()))
        assert a.ip != a.gateway
        assert a_again.ip not in (a.ip, a.gateway)
        assert lab.network.attach_pod(first.name, "default/pod-a") == a  # idempotent
        web_root = lab.run.directory / "pod-a-web"
        web_root.mkdir(exist_ok=True)
        (web_root / "index.html").write_text("pod-a")
        server = Daemon(
            "pod-a http",
            ns_argv(a.namespace, [sys.executable, STATIC_SERVER, str(a.ip), "80", str(web_root)]),
            lab.run.directory / "pod-a-web.log",
        )
        server.start()
        try:
            # Real traffic from a pod on one node to a pod on another, over the switch (direct node routes).
            body = wait_for(
                lambda: netns_exec(b.namespace, ["curl", "-sS", "--max-time", "2", f"http://{a.ip}/"]),
                lambda text: text == "pod-a",
                expected=f"pod-b on {second.name} fetches the page of pod-a on {first.name}",
                timeout=10,
                tolerate=(CommandError,),
            ).value
            assert body == "pod-a"
        finally:
            server.stop()
        assert f"via {b.gateway}" in netns_exec(b.namespace, ["ip", "route", "get", str(a.ip)])
    finally:
        for key in ("default/pod-a", "default/pod-b", "default/pod-a-2"):
            lab.network.detach_pod(key)
    assert a.namespace not in list_namespaces()
    assert lab.network.attach_pod(first.name, "default/pod-c").ip == a.ip  # the address was freed
    lab.network.detach_pod("default/pod-c")


def test_remove_peers_removes_only_what_the_harness_added(lab: Lab) -> None:
    foreign = IPv4Address("192.168.1.250")
    asn = lab.topology.router.asn
    frr = lab.router
    assert isinstance(frr, FrrRouter)
    frr.transport.vtysh(
        "configure terminal", f"router bgp {asn}", f"neighbor {foreign} remote-as {asn}", "end"
    )
    lab.router.configure_peers(lab.topology_peers())
    assert {s.peer for s in lab.router.sessions()} == {foreign, *(n.address for n in lab.topology.bgp_nodes)}

    lab.router.remove_peers()

    assert [s.peer for s in lab.router.sessions()] == [foreign]
    frr.transport.vtysh("configure terminal", f"router bgp {asn}", f"no neighbor {foreign}", "end")
    assert lab.router.sessions() == []


def test_dump_holds_the_routers_state_for_evidence(lab: Lab) -> None:
    lab.router.configure_peers(lab.topology_peers())
    dump = lab.router.dump()
    assert list(dump.sections) == [
        "show version",
        "show running-config",
        "show bgp summary",
        "show bgp neighbors",
        "show bgp ipv4 unicast",
        "show ip route",
    ]
    text = dump.render()
    assert "FRRouting" in text
    assert all(
        f"neighbor {n.address} remote-as" in dump.sections["show running-config"]
        for n in lab.topology.bgp_nodes
    )
    assert lab.router.version().startswith("FRRouting 8.")
