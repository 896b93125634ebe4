"""The adapter end to end against the lab's RouterOS API, per emulated version: the commands it sends
differ as FACTS.md says they must (address-families / afi / instance / multipath), and what it reads
back (sessions, BGP paths, installed routes) is the same, over real BGP sessions with the nodes."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgpconform.bgp_states import SessionState
from bgpconform.lab.routeros.server import ReceivedCommand
from bgpconform.routers.port import Route
from bgpconform.routers.routeros.commands import CONNECTION_PATH
from bgpconform.waiting import wait_for
from tests.routeros.conftest import adapter, routeros_lab, routeros_topology

pytestmark = pytest.mark.lab

VERSIONS = ("7.8", "7.19", "7.20", "7.22")
LB_PREFIX = IPv4Network("172.198.1.193/32")
WORKERS = {IPv4Address("192.168.1.201"), IPv4Address("192.168.1.202"), IPv4Address("192.168.1.203")}
USER_CONNECTION = {  # a connection the harness did not make: it must survive remove_peers
    "name": "UPLINK_ISP",
    "as": "64512",
    "remote.address": "192.168.1.250",
    "local.role": "ibgp",
    "address-families": "ip",
}


@dataclass
class VersionRun:
    version: str
    version_text: str
    writes: list[ReceivedCommand]
    sessions: set[tuple[IPv4Address, SessionState, int | None, str]]
    uptimes_known: bool
    counts: dict[IPv4Address, tuple[int, int]]
    advertised: dict[IPv4Address, list[IPv4Network]]
    bgp_routes: list[Route]
    bgp_table: dict[IPv4Network, list[Route]]
    fib_routes: list[Route]
    connections_after_second_configure: int
    dump: str
    connections_left: list[str]
    instances_left: list[str]
    sessions_after_removal: int


def _run_version(directory: Path, version: str) -> VersionRun:
    multipath = version == "7.22"
    with routeros_lab(routeros_topology(directory, version, ecmp=multipath)) as lab:
        router = adapter(lab)
        if version in {"7.8", "7.19"}:
            user = dict(USER_CONNECTION)
            if version == "7.19":
                user["afi"] = user.pop("address-families")
            router.api.call(f"{CONNECTION_PATH}/add", [f"={k}={v}" for k, v in user.items()])
        router.configure_peers(lab.topology_peers())
        router.configure_peers(lab.topology_peers())  # idempotent: the second run sets, never adds
        connections = len(router.api.print(CONNECTION_PATH))
        lab.start_speakers()
        lab.originate_everywhere(LB_PREFIX, [node.name for node in lab.topology.bgp_nodes])
        established = wait_for(
            router.sessions,
            lambda found: len(found) == 3 and all(s.established and s.advertised == 1 for s in found),
            expected="three established sessions, each sent the default route",
            timeout=30,
        ).value
        paths = wait_for(
            lambda: router.bgp_routes(LB_PREFIX),
            lambda routes: {hop for r in routes for hop in r.nexthops} == WORKERS,
            expected=f"{LB_PREFIX} from every worker",
            timeout=30,
        ).value
        installed = wait_for(
            lambda: router.fib_routes(LB_PREFIX),
            lambda routes: len(routes) == 1 and len(routes[0].nexthops) == (3 if multipath else 1),
            expected=f"{LB_PREFIX} installed with {'3 next hops' if multipath else '1 next hop'}",
            timeout=30,
        ).value
        paths = router.bgp_routes(LB_PREFIX)
        table = router.bgp_table([LB_PREFIX.supernet(new_prefix=24)])
        advertised = {peer: router.advertised_to(peer) for peer in sorted(WORKERS)}
        dump = router.dump().render()
        assert lab.routeros is not None
        received = lab.routeros.server.commands
        writes = [c for c in received if c.command.rsplit("/", 1)[-1] in {"add", "set", "remove"}]
        router.remove_peers()
        left = [row.get("name", "") for row in router.api.print(CONNECTION_PATH)]
        instances = (
            [row.get("name", "") for row in router.api.print("/routing/bgp/instance")]
            if version in {"7.20", "7.22"}
            else []
        )
        gone = wait_for(
            router.sessions, lambda s: not s, expected="no session after removal", timeout=15
        ).value
        return VersionRun(
            version=version,
            version_text=router.version(),
            writes=writes,
            sessions={(s.peer, s.state, s.remote_asn, s.name) for s in established},
            uptimes_known=all(s.uptime_seconds is not None for s in established),
            counts={s.peer: (s.received, s.advertised) for s in established},
            advertised=advertised,
            bgp_routes=paths,
            bgp_table=table,
            fib_routes=installed,
            connections_after_second_configure=connections,
            dump=dump,
            connections_left=left,
            instances_left=instances,
            sessions_after_removal=len(gone),
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, VersionRun]:
    return {version: _run_version(tmp_path_factory.mktemp(version), version) for version in VERSIONS}


def _adds(run: VersionRun, menu: str) -> list[dict[str, str]]:
    return [c.attributes() for c in run.writes if c.command == f"/routing/bgp/{menu}/add"]


def test_every_write_was_accepted(runs: dict[str, VersionRun]) -> None:
    for run in runs.values():
        assert run.writes, run.version
        assert {c.answer for c in run.writes} == {"!done"}, (run.version, run.writes)


def test_7_8_gets_the_walkthroughs_connection(runs: dict[str, VersionRun]) -> None:
    adds = [a for a in _adds(runs["7.8"], "connection") if a["name"] != "UPLINK_ISP"]
    assert [a["name"] for a in adds] == ["PEER_TO_K3S_WN_1", "PEER_TO_K3S_WN_2", "PEER_TO_K3S_WN_3"]
    for add in adds:
        assert add["address-families"] == "ip"
        assert add["routing-table"] == "main"
        assert (add["as"], add["local.role"], add["output.default-originate"]) == ("64512", "ibgp", "always")
        assert "afi" not in add
        assert "instance" not in add
    assert not _adds(runs["7.8"], "instance")


def test_7_19_names_the_address_families_afi(runs: dict[str, VersionRun]) -> None:
    adds = [a for a in _adds(runs["7.19"], "connection") if a["name"] != "UPLINK_ISP"]
    assert len(adds) == 3
    assert all(a["afi"] == "ip" and "address-families" not in a and "instance" not in a for a in adds)


def test_7_20_adds_an_instance_first_and_every_connection_names_it(runs: dict[str, VersionRun]) -> None:
    run = runs["7.20"]
    assert run.writes[0].command == "/routing/bgp/instance/add"
    instance = run.writes[0].attributes()
    assert (instance["name"], instance["as"], instance["router-id"]) == ("bgpconform", "64512", "192.168.1.1")
    assert "multipath" not in instance
    adds = _adds(run, "connection")
    assert len(adds) == 3
    assert all(a["instance"] == "bgpconform" and a["afi"] == "ip" for a in adds)


def test_7_22_turns_multipath_on_when_the_topology_asks_for_ecmp(runs: dict[str, VersionRun]) -> None:
    assert _adds(runs["7.22"], "instance")[0]["multipath"] == "16"


def test_every_version_reads_the_same_sessions(runs: dict[str, VersionRun]) -> None:
    expected = {
        (IPv4Address(f"192.168.1.20{i}"), SessionState.ESTABLISHED, 64512, f"PEER_TO_K3S_WN_{i}")
        for i in (1, 2, 3)
    }
    for run in runs.values():
        assert run.sessions == expected, run.version
        assert run.uptimes_known, run.version
        # received: the LB /32 each node originates; advertised: the default route (default-originate)
        assert set(run.counts.values()) == {(1, 1)}, (run.version, run.counts)


def test_every_version_reads_the_same_paths_and_only_7_22_installs_them_all(
    runs: dict[str, VersionRun],
) -> None:
    for run in runs.values():
        assert {hop for route in run.bgp_routes for hop in route.nexthops} == WORKERS, run.version
        active = [route for route in run.bgp_routes if route.active]
        installed = set(run.fib_routes[0].nexthops)
        if run.version == "7.22":
            assert len(active) == 3
            assert installed == WORKERS
        else:  # before 7.22: one of equal paths is active, the others are candidates (FACTS.md)
            assert len(active) == 1, run.bgp_routes
            assert installed == set(active[0].nexthops)


def test_the_whole_table_in_one_query_holds_the_same_paths(runs: dict[str, VersionRun]) -> None:
    """The scale check reads every path at once (`/routing/route` printed once); within the /24 it
    asks for, the LB prefix is there with exactly the paths the per-prefix query gives."""
    for version, run in runs.items():
        assert run.bgp_table == {LB_PREFIX: run.bgp_routes}, version


def test_every_version_shows_the_default_route_sent_to_each_node(runs: dict[str, VersionRun]) -> None:
    """`/routing/bgp/advertisements` as the walkthrough prints it: dst=0.0.0.0/0 per peer (iBGP: the
    nodes' own /32s are not reflected to the other nodes)."""
    for run in runs.values():
        assert run.advertised == {peer: [IPv4Network("0.0.0.0/0")] for peer in WORKERS}, run.version


def test_configuring_twice_changes_connections_in_place(runs: dict[str, VersionRun]) -> None:
    for run in runs.values():
        user = 1 if run.version in {"7.8", "7.19"} else 0
        assert run.connections_after_second_configure == 3 + user, run.version
        assert len([c for c in run.writes if c.command == "/routing/bgp/connection/set"]) == 3, run.version


def test_removal_takes_exactly_what_the_harness_added(runs: dict[str, VersionRun]) -> None:
    assert runs["7.8"].connections_left == ["UPLINK_ISP"]
    assert runs["7.19"].connections_left == ["UPLINK_ISP"]
    for version in ("7.20", "7.22"):
        assert runs[version].connections_left == []
        assert runs[version].instances_left == []
    assert all(run.sessions_after_removal == 0 for run in runs.values())


def test_the_dump_reads_like_the_walkthroughs_prints(runs: dict[str, VersionRun]) -> None:
    for run in runs.values():
        dump = run.dump
        assert "## /routing/bgp/session/print\nFlags: E - established\n" in dump, run.version
        for i in (1, 2, 3):
            assert f' E name="PEER_TO_K3S_WN_{i}-1"' in dump
            assert f"remote.address=192.168.1.20{i} .as=64512" in dump
            assert (
                f"peer=PEER_TO_K3S_WN_{i}-1 dst=0.0.0.0/0 local-pref=100 nexthop=192.168.1.1 origin=0" in dump
            )
        assert "Columns: DST-ADDRESS, GATEWAY, AFI, DISTANCE, SCOPE, TARGET-SCOPE, IMMEDIATE-GW" in dump
        route_lines = [line for line in dump.splitlines() if str(LB_PREFIX) in line and " ip4 " in line]
        flags = sorted(line[:4].strip() for line in route_lines)
        assert flags == (["Ab+", "Ab+", "Ab+"] if run.version == "7.22" else ["Ab", "b", "b"]), route_lines
        assert all("200" in line.split() for line in route_lines)  # iBGP distance
        assert run.version_text.startswith(f"RouterOS {run.version} (stable)")
        assert "## changes made by the harness\n/routing/bgp/" in dump
