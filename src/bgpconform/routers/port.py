"""The router port: what the harness needs from an upstream BGP router, whatever its make.

Results are plain dataclasses so FRR and RouterOS (or the lab and a real rack) are interchangeable
behind the port, and so a step's evidence is the same shape on every target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bgpconform.bgp_states import SessionState

if TYPE_CHECKING:
    from bgpconform.topology import Topology


# The equal paths a router with ECMP on is asked to install (FRR maximum-paths, RouterOS multipath).
ECMP_PATHS = 16


@dataclass(frozen=True)
class BgpPeer:
    """A neighbor the harness asks the router to accept: one per peering node."""

    name: str
    address: IPv4Address
    remote_asn: int
    local_asn: int
    default_originate: bool = True
    keepalive: int = 3
    hold: int = 9
    connect_retry: int = 1

    @property
    def ibgp(self) -> bool:
        return self.remote_asn == self.local_asn


def topology_peers(topology: Topology) -> list[BgpPeer]:
    """The neighbors the router must accept: one per peering node (FACTS.md: nodes dial out), named
    as the topology's `router.connection_name` says, with its short timers."""
    timers = topology.bgp.timers
    return [
        BgpPeer(
            name=topology.router.connection_name_for(index, node.name),
            address=node.address,
            remote_asn=topology.bgp.node_asn,
            local_asn=topology.router.asn,
            default_originate=True,
            keepalive=timers.keepalive,
            hold=timers.hold,
            connect_retry=timers.connect_retry,
        )
        for index, node in enumerate(topology.bgp_nodes, start=1)
    ]


@dataclass(frozen=True)
class Session:
    """The router's view of one BGP session."""

    peer: IPv4Address
    state: SessionState
    remote_asn: int | None
    name: str = ""
    uptime_seconds: float | None = None
    received: int = 0
    advertised: int = 0

    @property
    def established(self) -> bool:
        return self.state is SessionState.ESTABLISHED


@dataclass(frozen=True)
class Route:
    """One path (BGP table) or one installed route (FIB) towards a prefix."""

    prefix: IPv4Network
    nexthops: tuple[IPv4Address, ...]
    active: bool
    protocol: str = "bgp"
    source: str = "bgp"  # "bgp": the BGP table; "fib": the kernel's forwarding table

    def __str__(self) -> str:
        hops = ",".join(str(hop) for hop in self.nexthops) or "-"
        return f"{self.prefix} via {hops} ({'active' if self.active else 'candidate'}, {self.source})"


@dataclass(frozen=True)
class RouterDump:
    """Router state as text blocks titled by the command that produced them, for evidence."""

    router: str
    sections: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        return "\n\n".join(f"## {title}\n{body.rstrip()}" for title, body in self.sections.items())


@runtime_checkable
class RouterPort(Protocol):
    """Configure and read the upstream router; adapters exist per make (FRR, RouterOS)."""

    def version(self) -> str:
        """The router software and version, as the router reports it."""
        ...

    def configure_peers(self, peers: list[BgpPeer]) -> None:
        """Accept BGP sessions from these nodes; idempotent, marks what it adds as the harness's."""
        ...

    def remove_peers(self) -> None:
        """Remove exactly the peers the harness added, nothing else."""
        ...

    def sessions(self) -> list[Session]:
        """Every BGP session the router has, configured by the harness or not."""
        ...

    def bgp_routes(self, prefix: IPv4Network) -> list[Route]:
        """Paths for `prefix` in the router's BGP table, one per next hop received."""
        ...

    def bgp_table(self, within: Sequence[IPv4Network]) -> dict[IPv4Network, list[Route]]:
        """Every path of the BGP table to a prefix inside one of `within`, read in one go: the scale
        check's thousands of paths, where one query per prefix would take minutes."""
        ...

    def fib_routes(self, prefix: IPv4Network) -> list[Route]:
        """What the router's kernel forwards `prefix` with: one route, several next hops under ECMP."""
        ...

    def advertised_to(self, peer: IPv4Address) -> list[IPv4Network]:
        """The prefixes the router sends to the neighbor at `peer` (its default route included)."""
        ...

    def show_sessions(self) -> tuple[str, str]:
        """The router's own print of its BGP sessions, titled by the command a user would type."""
        ...

    def show_routes(self) -> tuple[str, str]:
        """The router's own print of its route table, titled by the command a user would type."""
        ...

    def dump(self) -> RouterDump:
        """State for the report: sessions, BGP table, routes, configuration."""
        ...
