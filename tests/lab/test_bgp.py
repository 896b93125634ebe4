"""The lab's router and speakers with real FRR and GoBGP: sessions, ECMP routes, withdrawal."""

from __future__ import annotations

import itertools
import json
import time
from functools import partial
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgpconform.bgp_states import SessionState
from bgpconform.commands import run
from bgpconform.lab import defects
from bgpconform.lab.gobgp import GoBgpSpeaker, Neighbor, Timers, render_config
from bgpconform.lab.lab import Lab
from bgpconform.lab.netns import netns_exec
from bgpconform.routers.port import Route
from bgpconform.waiting import wait_for

pytestmark = pytest.mark.lab

SESSION_TIMEOUT = 30.0
ROUTE_TIMEOUT = 15.0
DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


def _states(lab: Lab) -> dict[IPv4Address, SessionState]:
    return {session.peer: session.state for session in lab.router.sessions()}


def _peer_addresses(lab: Lab) -> set[IPv4Address]:
    return {node.address for node in lab.topology.bgp_nodes}


def _bgp_nexthops(lab: Lab, prefix: IPv4Network) -> set[IPv4Address]:
    return {hop for route in lab.router.bgp_routes(prefix) for hop in route.nexthops}


def _fib(lab: Lab, prefix: IPv4Network) -> list[Route]:
    return lab.router.fib_routes(prefix)


def _establish(lab: Lab) -> None:
    lab.router.configure_peers(lab.topology_peers())
    lab.start_speakers()
    peers = _peer_addresses(lab)
    wait_for(
        lambda: _states(lab),
        lambda states: all(states.get(p) is SessionState.ESTABLISHED for p in peers),
        expected=f"sessions with {sorted(map(str, peers))} established",
        timeout=SESSION_TIMEOUT,
    )


def test_router_sessions_are_active_while_the_speakers_are_down(lab: Lab) -> None:
    for node in lab.topology.bgp_nodes:
        lab.speaker(node.name).stop()
    lab.router.configure_peers(lab.topology_peers())
    peers = _peer_addresses(lab)
    observed = wait_for(
        lambda: _states(lab),
        lambda states: set(states) == peers and all(s is SessionState.ACTIVE for s in states.values()),
        expected=f"exactly {sorted(map(str, peers))}, each in state active",
        timeout=SESSION_TIMEOUT,
    ).value
    assert set(observed.values()) == {SessionState.ACTIVE}
    assert all(session.uptime_seconds is None for session in lab.router.sessions())


def test_sessions_establish_once_the_speakers_start(lab: Lab) -> None:
    _establish(lab)
    sessions = lab.router.sessions()
    assert {s.peer for s in sessions} == _peer_addresses(lab)
    assert all(s.remote_asn == lab.topology.bgp.node_asn for s in sessions)
    assert all(s.uptime_seconds is not None and s.uptime_seconds >= 0 for s in sessions)
    assert {s.name for s in sessions} == {peer.name for peer in lab.topology_peers()}
    for node in lab.topology.bgp_nodes:
        speaker = lab.speaker(node.name)
        (peer,) = speaker.peers()
        assert peer.state is SessionState.ESTABLISHED
        assert peer.address == lab.topology.router.address
        # default-originate: every node receives the default route (the walkthrough's Received 1).
        received_from_router = partial(speaker.received, lab.topology.router.address)
        wait_for(
            received_from_router,
            lambda prefixes: DEFAULT_ROUTE in prefixes,
            expected=f"{node.name} received 0.0.0.0/0 from the router",
            timeout=ROUTE_TIMEOUT,
        )
        # The router's side of the same: what it sends this node (FRR reports default-originate apart).
        assert lab.router.advertised_to(node.address) == [DEFAULT_ROUTE]
    assert lab.router.advertised_to(lab.topology.client.address.ip) == []  # not a neighbor


def test_a_prefix_from_every_worker_is_an_ecmp_route_and_withdrawal_removes_one_path(lab: Lab) -> None:
    _establish(lab)
    pool = lab.topology.lb_pools[0].cidrs[0]
    prefix = IPv4Network(f"{next(iter(pool.hosts()))}/32")
    workers = [node.name for node in lab.topology.bgp_nodes]
    all_hops = _peer_addresses(lab)
    lab.originate_everywhere(prefix, workers)

    wait_for(
        lambda: _bgp_nexthops(lab, prefix),
        lambda hops: hops == all_hops,
        expected=f"BGP paths for {prefix} via {sorted(map(str, all_hops))}",
        timeout=ROUTE_TIMEOUT,
    )
    assert len(lab.router.bgp_routes(prefix)) == len(workers)
    # the whole table in one query: the same paths, and nothing from outside the networks asked for
    table = lab.router.bgp_table([pool])
    assert table == {prefix: lab.router.bgp_routes(prefix)}
    assert lab.router.bgp_table([IPv4Network("203.0.113.0/24")]) == {}
    fib = wait_for(
        lambda: _fib(lab, prefix),
        lambda routes: len(routes) == 1 and set(routes[0].nexthops) == all_hops,
        expected=f"one kernel route for {prefix} with next hops {sorted(map(str, all_hops))}",
        timeout=ROUTE_TIMEOUT,
    ).value
    assert fib[0].protocol == "bgp"
    kernel = json.loads(
        _router_kernel(lab, prefix)
    )  # read the kernel directly too, not only through the port
    assert {hop["gateway"] for hop in kernel[0]["nexthops"]} == {str(h) for h in all_hops}

    withdrawn_on = lab.topology.node(workers[0])
    lab.speaker(withdrawn_on.name).withdraw(prefix)
    remaining = all_hops - {withdrawn_on.address}
    wait_for(
        lambda: (_bgp_nexthops(lab, prefix), [set(r.nexthops) for r in _fib(lab, prefix)]),
        lambda seen: seen[0] == remaining and seen[1] == [remaining],
        expected=f"{prefix} via {sorted(map(str, remaining))} in the BGP table and the kernel",
        timeout=ROUTE_TIMEOUT,
    )
    for name in workers[1:]:
        lab.speaker(name).withdraw(prefix)
    wait_for(
        lambda: (lab.router.bgp_routes(prefix), _fib(lab, prefix)),
        lambda seen: seen == ([], []),
        expected=f"{prefix} gone from the router",
        timeout=ROUTE_TIMEOUT,
    )


def _router_kernel(lab: Lab, prefix: IPv4Network) -> str:
    return run(["ip", "-n", lab.network.router_ns, "-j", "route", "show", str(prefix)]).stdout


def _first_node_speaker(
    lab: Lab, directory: Path, neighbors: list[Neighbor], *, listen: bool = False
) -> GoBgpSpeaker:
    """A speaker of its own on the first peering node, beside the lab's."""
    node = lab.topology.bgp_nodes[0]
    return GoBgpSpeaker(
        node=node.name,
        namespace=lab.network.node_ns[node.name],
        directory=directory,
        router_id=node.address,
        asn=lab.topology.bgp.node_asn,
        neighbors=neighbors,
        listen=listen,
    )


def test_a_speaker_given_no_timers_dials_on_gobgps_defaults_as_cilium_1_13_does(
    lab: Lab, tmp_path: Path
) -> None:
    """FACTS.md, BGP control plane v1: 1.13's `AddNeighbor` sets no timers, so gobgpd's defaults
    (connect retry 120 s, hold 90 s, keepalive 30 s) are what its speakers dial with; the lab's agent
    renders no timers unless the `short-bgp-timers` shortcut is on."""
    node = lab.topology.bgp_nodes[0]
    router = lab.topology.router.address
    speaker = _first_node_speaker(
        lab, tmp_path / "speaker", [Neighbor(router, lab.topology.bgp.peer_asn, None)]
    )
    speaker.start()
    try:
        timers = speaker.timers_in_force(router)
    finally:
        speaker.stop()
    assert (timers["connect_retry"], timers["hold_time"], timers["keepalive_interval"]) == (120, 90, 30)
    assert "[neighbors.timers.config]" not in render_config(node.address, 64512, [Neighbor(router, 1, None)])


DIAL_COUNTER = "bgpconform-test-dial-floor"
NOBODY = IPv4Address("127.0.0.2")  # the node's own loopback, where nothing listens on 179


def _dials(namespace: str) -> int:
    """SYNs the namespace has sent to NOBODY:179, as the counting rule saw them."""
    listing = netns_exec(namespace, ["iptables", "-w", "-n", "-v", "-x", "-L", "OUTPUT"])
    (line,) = [line for line in listing.splitlines() if DIAL_COUNTER in line]
    return int(line.split()[0])


def test_a_speaker_told_to_retry_every_second_dials_every_5_to_9_seconds(lab: Lab, tmp_path: Path) -> None:
    """GoBGP's connect loop raises a retry below 5 s to 5 s and adds jitter below another 5 s
    (`minConnectRetryInterval`, docs/verified-facts.md "GoBGP's dial floor"): the floor under every
    wait for a session, whatever the policy's `connectRetryTimeSeconds`. Each dial is a SYN counted
    by an iptables rule in the node's namespace; the port is closed, so every dial fails at once."""
    node = lab.topology.bgp_nodes[0]
    namespace = lab.network.node_ns[node.name]
    rule = ["OUTPUT", "-p", "tcp", "-d", str(NOBODY), "--dport", "179", "--syn"]
    rule += ["-m", "comment", "--comment", DIAL_COUNTER]
    netns_exec(namespace, ["iptables", "-w", "-I", *rule])
    one_second = Timers(connect_retry=1, hold=9, keepalive=3)
    speaker = _first_node_speaker(
        lab, tmp_path / "speaker", [Neighbor(NOBODY, lab.topology.bgp.peer_asn, one_second)]
    )
    dialled_at: dict[int, float] = {}

    def count() -> int:
        dials = _dials(namespace)
        dialled_at.setdefault(dials, time.monotonic())
        return dials

    speaker.start()
    started = time.monotonic()
    try:
        wait_for(
            count, lambda dials: dials >= 4, expected="4 dials of NOBODY:179", timeout=60.0, max_interval=0.2
        )
    finally:
        speaker.stop()
        netns_exec(namespace, ["iptables", "-w", "-D", *rule])
    moments = [dialled_at[dials] for dials in sorted(dialled_at) if 1 <= dials <= 4]
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert len(gaps) == 3, dialled_at  # the polls saw each dial apart (they are seconds apart)
    # 5-9 s each (whole seconds of jitter), give or take a poll on a busy machine; a retry of 1 s would
    # dial every 1-2 s. The first dial is not timed: it counts from the neighbor's configuration.
    assert all(4.0 <= gap < 11.0 for gap in gaps), gaps
    assert moments[0] - started >= 3.0, moments[0] - started  # 5-9 s after the start, less its own time


def _listeners_on_179(lab: Lab, node_name: str) -> str:
    return lab.node_exec(node_name, ["ss", "-Htln", "sport", "=", ":179"]).strip()


@pytest.mark.parametrize("listen", [False, True], ids=["as-cilium", "router-dials"])
def test_the_router_dials_a_node_only_when_its_speaker_listens(
    lab: Lab, tmp_path: Path, listen: bool
) -> None:
    """Cilium's GoBGP does not listen (FACTS.md, ListenPort -1), so the node dials and the router's
    connection has the router's port 179 on its own side; the `router-dials` shortcut's speaker listens,
    and the router's dial, every connect retry (1 s), brings the session up before GoBGP's first dial
    (5-9 s): the router's connection then goes to the node's port 179."""
    node = lab.topology.bgp_nodes[0]
    lab.speaker(node.name).stop()
    neighbors = list(lab.speaker(node.name).neighbors)
    speaker = _first_node_speaker(lab, tmp_path / "speaker", neighbors, listen=listen)
    lab.router.configure_peers([p for p in lab.topology_peers() if p.address == node.address])
    speaker.start()
    try:
        assert bool(_listeners_on_179(lab, node.name)) is listen
        wait_for(
            lambda: _states(lab).get(node.address),
            lambda state: state is SessionState.ESTABLISHED,
            expected=f"the session with {node.address} established",
            timeout=SESSION_TIMEOUT,
        )
        router_side = json.loads(
            run([*lab.router_vtysh(), "-c", f"show bgp neighbors {node.address} json"]).stdout
        )[str(node.address)]
    finally:
        speaker.stop()
    dialled_by_router = router_side["portForeign"] == 179
    assert dialled_by_router is listen, router_side["portForeign"]


def _replace_speaker(lab: Lab, node_name: str, restart_time: int | None) -> GoBgpSpeaker:
    """The node's speaker started anew, offering graceful restart or not."""
    old = lab.speaker(node_name)
    old.stop()
    (neighbor,) = old.neighbors
    speaker = GoBgpSpeaker(
        node=old.node,
        namespace=old.namespace,
        directory=old.directory.parent / f"{node_name}-gr",
        router_id=old.router_id,
        asn=old.asn,
        neighbors=[Neighbor(neighbor.address, neighbor.asn, neighbor.timers, restart_time)],
    )
    speaker.start()
    return speaker


@pytest.mark.parametrize(
    ("restart_time", "ends", "kept"),
    [
        pytest.param(120, "kill", True, id="graceful-restart-killed"),
        pytest.param(None, "stop", False, id="plain-stopped"),
    ],
)
def test_a_speaker_offering_graceful_restart_that_dies_leaves_its_path_at_the_router(
    lab: Lab, restart_time: int | None, ends: str, kept: bool
) -> None:
    """FRR as helper keeps a graceful-restart peer's routes when its connection just closes (the lab's
    agent restart); a peer that says goodbye with a Cease is withdrawn at once."""
    _establish(lab)
    node = lab.topology.bgp_nodes[0]
    speaker = _replace_speaker(lab, node.name, restart_time)
    prefix = IPv4Network("172.198.1.50/32")
    wait_for(
        lab.router.sessions,
        lambda sessions: any(s.peer == node.address and s.established for s in sessions),
        expected=f"the session with {node.address} established again",
        timeout=SESSION_TIMEOUT,
    )
    speaker.originate(prefix)
    wait_for(
        partial(_bgp_nexthops, lab, prefix),
        lambda hops: node.address in hops,
        expected=f"a path to {prefix} via {node.address}",
        timeout=ROUTE_TIMEOUT,
    )
    getattr(speaker, ends)()
    session_down = wait_for(
        lambda: {s.peer: s.state for s in lab.router.sessions()},
        lambda states: states.get(node.address) is not SessionState.ESTABLISHED,
        expected=f"the router's session with {node.address} down",
        timeout=SESSION_TIMEOUT,
    )
    assert session_down.value[node.address] is not SessionState.ESTABLISHED
    hops = _bgp_nexthops(lab, prefix)
    if kept:
        assert node.address in hops, "the helper dropped a restarting peer's path"
        assert node.address in {hop for route in _fib(lab, prefix) for hop in route.nexthops}
    else:
        withdrawn = wait_for(
            partial(_bgp_nexthops, lab, prefix),
            lambda found: node.address not in found,
            expected=f"the path via {node.address} withdrawn",
            timeout=ROUTE_TIMEOUT,
        )
        assert node.address not in withdrawn.value


def test_graceful_restart_is_rendered_with_the_ipv4_forwarding_state() -> None:
    text = render_config(
        IPv4Address("192.168.1.201"), 64512, [Neighbor(IPv4Address("192.168.1.1"), 64512, None, 120)]
    )
    assert "[neighbors.graceful-restart.config]" in text
    assert "restart-time = 120" in text
    assert "[neighbors.afi-safis.mp-graceful-restart.config]" in text


def _uptimes(lab: Lab) -> dict[IPv4Address, float | None]:
    return {session.peer: session.uptime_seconds for session in lab.router.sessions()}


@pytest.mark.parametrize(
    ("defect", "kept"),
    [
        pytest.param(None, True, id="configuration-saved"),
        pytest.param("router-boots-without-saved-peers", False, id="boots-without-saved-peers"),
    ],
)
def test_a_restarted_router_comes_back_with_the_neighbors_it_was_given(
    lab: Lab, defect: str | None, kept: bool
) -> None:
    """FRR's daemons restart from the saved configuration: the neighbors added through the router port
    are there again and the speakers' sessions come back with a new uptime; a router that boots an
    older configuration has none of them."""
    _establish(lab)
    peers = _peer_addresses(lab)
    old_pids = set(lab.router_pids)
    restarted_at = time.monotonic()
    defects.activate([defect] if defect else [])
    try:
        lab.restart_router()
    finally:
        defects.activate([])
    assert old_pids.isdisjoint(lab.router_pids), "the router's daemons were not restarted"
    if not kept:
        assert lab.router.sessions() == []
        lab.router.configure_peers(lab.topology_peers())  # the next test's router has them again
    states = wait_for(
        lambda: _states(lab),
        lambda found: all(found.get(p) is SessionState.ESTABLISHED for p in peers),
        expected=f"sessions with {sorted(map(str, peers))} established again after the restart",
        timeout=SESSION_TIMEOUT,
    )
    assert set(states.value) == peers
    since_restart = time.monotonic() - restarted_at
    uptimes = {peer: uptime for peer, uptime in _uptimes(lab).items() if uptime is not None}
    assert set(uptimes) == peers
    assert all(uptime <= since_restart + 1 for uptime in uptimes.values()), uptimes
