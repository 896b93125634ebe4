"""The ports a target offers the steps, and the outside client's result type."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from bgpconform.disruption.request_stream import RequestStream
from bgpconform.errors import HarnessError
from bgpconform.provenance import Provenance

if TYPE_CHECKING:  # the kubernetes client is slow to import; a `lab up` without Cilium needs none of it
    from bgpconform.cilium.install import CiliumInstaller
    from bgpconform.cilium.port import CiliumPort
    from bgpconform.kubeapi.port import KubeApi
    from bgpconform.routers.port import BgpPeer, RouterDump, RouterPort
    from bgpconform.topology import Topology


T = TypeVar("T")


def started_part(value: T | None, target: str) -> T:
    """A part that exists only between `start` and `stop`; asking for it outside that is a harness bug."""
    if value is None:
        raise HarnessError(f"the {target} target is not started")
    return value


@dataclass(frozen=True)
class HttpAnswer:
    """One request from the outside client: what came back, or why nothing did."""

    url: str
    local_port: int | None
    status: int | None
    body: str
    error: str | None
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    def summary(self) -> str:
        if self.error is not None:
            return f"GET {self.url} from port {self.local_port}: no answer ({self.error})"
        return (
            f"GET {self.url} from port {self.local_port}: HTTP {self.status} in {self.elapsed * 1000:.0f} ms"
        )


class OutsideClient(Protocol):
    """The machine north of the router: reaches LB IPs only through the router's BGP routes."""

    @property
    def address(self) -> IPv4Address: ...

    def http_get(self, url: str, *, timeout: float, local_port: int | None = None) -> HttpAnswer: ...

    def request_stream(self, url: str, *, rate: int, timeout: float, lifetime: float) -> RequestStream:
        """Start `rate` requests a second to `url`, each a new connection, until stopped or `lifetime`."""


class FaultUnsupported(HarnessError):
    """The target cannot inject this fault; the message says what it would take."""


class FaultPort(Protocol):
    """Faults a scenario injects and undoes; each undo brings back exactly what its fault took."""

    def isolate_node(self, node: str) -> None:
        """Take the node off the network it peers and serves on, as a node that died or lost its link."""

    def restore_node(self, node: str) -> None:
        """Bring an isolated node's link back."""

    def restart_router(self) -> None:
        """Restart the upstream router as its operator would; it comes back with its saved
        configuration. May return before the router is back: the scenario measures how long it takes."""


class Target(Protocol):
    """What the steps drive; `start` makes it usable, `reset` returns it to a cluster without CNI."""

    name: str
    topology: Topology
    cluster_outlives_run: bool
    """The cluster was there before the run and stays after it: the run removes only its own objects."""

    def check_options(self) -> None:
        """Refuse bad options before anything is collected or changed (ConfigError, PrerequisiteError)."""

    def start(self) -> None: ...

    @property
    def started(self) -> bool:
        """Whether `start` succeeded and `stop` has not run since."""

    def stop(self) -> None: ...

    def reset(self) -> None:
        """Back to the walkthrough's start: nodes NotReady, no Cilium, no policy, router unconfigured."""

    @property
    def kube(self) -> KubeApi: ...

    @property
    def cilium(self) -> CiliumPort: ...

    @property
    def installer(self) -> CiliumInstaller: ...

    @property
    def router(self) -> RouterPort: ...

    @property
    def client(self) -> OutsideClient: ...

    @property
    def faults(self) -> FaultPort: ...

    def router_peers(self) -> list[BgpPeer]:
        """The router neighbors the topology calls for (one per peering node)."""

    def router_dump(self) -> RouterDump: ...

    def dump_api(self, path: Path) -> None:
        """Every API object the run can read, as multi-document YAML, Secret values left out."""

    def provenance(self) -> Provenance:
        """What of this target is the real software and what is emulated; known before `start`."""

    def versions(self) -> dict[str, str]:
        """Versions as read from the system (k3s, Cilium, router), for evidence and the report."""
