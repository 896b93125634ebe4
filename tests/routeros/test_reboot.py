"""`/system/reboot` through the adapter against the lab's RouterOS API over real FRR and GoBGP: the
code path a rack's MikroTik takes in the router restart scenario."""

from __future__ import annotations

import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from bgpconform.bgp_states import SessionState
from bgpconform.commands import Place
from bgpconform.lab.lab import Lab
from bgpconform.routers.frr import FrrRouter, VtyshTransport
from bgpconform.routers.routeros.durations import parse_duration
from bgpconform.targets.port import FaultUnsupported
from bgpconform.targets.unsupported_faults import UnsupportedFaults
from bgpconform.waiting import wait_for
from tests.routeros.conftest import adapter, routeros_lab, routeros_topology

pytestmark = pytest.mark.lab

SESSION_TIMEOUT = 30.0


def _established(lab: Lab) -> dict[IPv4Address, SessionState]:
    peers = {node.address for node in lab.topology.bgp_nodes}
    return wait_for(
        lambda: {s.peer: s.state for s in lab.router.sessions()},
        lambda states: all(states.get(p) is SessionState.ESTABLISHED for p in peers),
        expected=f"sessions with {sorted(map(str, peers))} established",
        timeout=SESSION_TIMEOUT,
        tolerate=(Exception,),  # while the router is away its API refuses the login
    ).value


def test_a_reboot_drops_the_api_session_keeps_the_configuration_and_the_next_call_logs_in_again(
    tmp_path: Path,
) -> None:
    with routeros_lab(routeros_topology(tmp_path, "7.8")) as lab:
        router = adapter(lab)
        router.configure_peers(lab.topology_peers())
        lab.start_speakers()
        _established(lab)
        connections = [row["name"] for row in router.api.print("/routing/bgp/connection")]
        routing_pids = set(lab.router_pids)
        served = len(lab.routeros.server.commands) if lab.routeros else 0

        rebooted_at = time.monotonic()
        router.reboot()

        assert router.changes[-1].cli() == "/system/reboot"
        states = _established(lab)  # the adapter logged in again to read them
        assert set(states) == {node.address for node in lab.topology.bgp_nodes}
        assert routing_pids.isdisjoint(lab.router_pids), "the routing engine did not restart"
        assert [row["name"] for row in router.api.print("/routing/bgp/connection")] == connections
        assert lab.routeros is not None
        received = [c.command for c in lab.routeros.server.commands[served:]]
        assert received.count("/system/reboot") == 1, received  # sent once, never retried
        uptime = parse_duration(router.api.print("/system/resource")[0]["uptime"])
        assert uptime is not None
        assert uptime <= time.monotonic() - rebooted_at, "the router's uptime did not start again"


def test_a_rack_with_another_router_make_refuses_the_restart_before_touching_it() -> None:
    """Only RouterOS is rebooted through its API; an FRR router is left to its operator, and nothing is
    sent to it (the transport points nowhere reachable: a command would fail differently)."""
    frr = FrrRouter(VtyshTransport(Place(namespace="bgpconform-no-such-namespace")), asn=64512)
    with pytest.raises(FaultUnsupported, match=r"reboots only a RouterOS router .* restart this one by hand"):
        UnsupportedFaults("pi", "pull the cable by hand", frr).restart_router()
