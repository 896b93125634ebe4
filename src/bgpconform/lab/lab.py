"""The lab as one object: claim a run, build the wire, start the router, and always clean up.

Order matters for honest cleanup: stale runs are swept and this run's ownership record is written
before anything is created; teardown stops daemons, deletes namespaces, and removes the record last.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from types import TracebackType
from typing import TYPE_CHECKING

from bgpconform.commands import run
from bgpconform.lab.frr import LabFrr
from bgpconform.lab.gobgp import GoBgpSpeaker, Neighbor, Timers
from bgpconform.lab.network import LabNetwork
from bgpconform.lab.prerequisites import check_lab_prerequisites
from bgpconform.lab.runs import Run, SweptRun, remove_run_artifacts, start_run, sweep_stale_runs
from bgpconform.routers.frr import FrrRouter
from bgpconform.routers.port import BgpPeer, RouterPort, topology_peers
from bgpconform.topology import Topology

if TYPE_CHECKING:
    from bgpconform.lab.routeros.lab_router import LabRouterOs

log = logging.getLogger(__name__)


@dataclass
class LabTimings:
    """How long bring-up and teardown took, for benchmarks and the report."""

    sweep: float = 0.0
    network: float = 0.0
    router: float = 0.0
    teardown: float = 0.0
    swept: list[SweptRun] = field(default_factory=list)


class Lab:
    """The lab target's network half: namespaces, FRR on the router (behind a RouterOS API when the
    topology's router is `kind: routeros`), GoBGP speakers on demand."""

    def __init__(self, topology: Topology, purpose: str = "lab") -> None:
        self.topology = topology
        self.purpose = purpose
        self.timings = LabTimings()
        self._run: Run | None = None
        self._network: LabNetwork | None = None
        self._frr: LabFrr | None = None
        self._routeros: LabRouterOs | None = None
        self._router: RouterPort | None = None
        self._speakers: dict[str, GoBgpSpeaker] = {}
        self._building: Future[Lab] | None = None
        self._build_reported = False  # the build's failure reached a caller through wait_built

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Lab:
        self.claim()
        try:
            self.build()
        except BaseException:
            self.stop()
            raise
        return self

    def claim(self) -> Lab:
        """Sweep killed runs and write this run's ownership record, before anything is created.

        Split from `build` so that a caller can start work that needs only the run directory (the
        cluster's API server) while the wire is being built.
        """
        check_lab_prerequisites()
        began = time.monotonic()
        self.timings.swept = sweep_stale_runs()
        for swept in self.timings.swept:
            log.warning(
                "removed a stale lab run %s (owner %s): %s", swept.run_id, swept.owner_pid, swept.namespaces
            )
        self.timings.sweep = time.monotonic() - began
        self._run = start_run(self.purpose)
        return self

    def begin_build(self) -> None:
        """Build the claimed run's wire on a thread of its own; `wait_built` joins it.

        The wire is mostly waiting on `ip` and FRR, so a caller overlaps it with work of its own: the
        cluster starts its API server and controllers meanwhile, `lab serve` imports them meanwhile.
        """
        if self._building is None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-wire")
            self._building = pool.submit(self.build)
            pool.shutdown(wait=False)

    def wait_built(self) -> Lab:
        """The wire that `begin_build` started; raises the build's failure."""
        if self._building is None:
            raise RuntimeError("wait_built() before begin_build()")
        self._build_reported = True
        return self._building.result()

    @property
    def claimed(self) -> bool:
        return self._run is not None

    def build(self) -> Lab:
        """The namespaces, links and router of the claimed run.

        On failure what was made stays for the caller's `stop()`, which removes it with the rest.
        """
        run = self.run
        began = time.monotonic()
        self._network = LabNetwork(self.topology, run)
        self._network.build()
        self.timings.network = time.monotonic() - began
        began = time.monotonic()
        self._frr = LabFrr(self.topology, self._network.router_ns, run.directory)
        self._frr.start()
        if self.topology.router.kind == "routeros":
            from bgpconform.lab.routeros.lab_router import LabRouterOs  # only a RouterOS lab pays for it

            self._routeros = LabRouterOs(
                self.topology, self._frr.transport, run.directory / "routeros", self._frr.restart
            )
            self._router = self._routeros.start()
        else:
            self._router = FrrRouter(self._frr.transport, self.topology.router.asn, self.topology.router.name)
        self.timings.router = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Remove everything this run made; safe to call twice and after a partial start."""
        began = time.monotonic()
        building = self._building
        if building is not None:
            wait([building])  # a build still running would go on creating what is removed here
            self._building = None
            failure = building.exception()
            if failure is not None and not self._build_reported:
                log.warning("building the lab's wire had failed too: %s", failure)
        for speaker in self._speakers.values():
            speaker.stop()
        self._speakers.clear()
        if self._routeros is not None:
            self._routeros.stop()
            self._routeros = None
        if self._frr is not None:
            self._frr.stop()
            self._frr = None
        if self._run is not None:
            remove_run_artifacts(self._run.run_id, self._run.directory)
            self._run = None
        self._network = None
        self._router = None
        self.timings.teardown = time.monotonic() - began

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- parts -----------------------------------------------------------------------------------
    @property
    def run(self) -> Run:
        if self._run is None:
            raise RuntimeError("the lab is not running")
        return self._run

    @property
    def network(self) -> LabNetwork:
        if self._network is None:
            raise RuntimeError("the lab is not running")
        return self._network

    def router_vtysh(self) -> list[str]:
        """vtysh as a person types it to reach the lab router: its daemons' sockets are under the run
        directory, not FRR's default /var/run/frr, so a bare `vtysh` finds no daemon."""
        if self._frr is None:
            raise RuntimeError("the lab is not running")
        return ["vtysh", "--vty_socket", str(self._frr.directory)]

    @property
    def router(self) -> RouterPort:
        if self._router is None:
            raise RuntimeError("the lab is not running")
        return self._router

    def restart_router(self) -> None:
        """The router restarts as its make does: FRR's daemons from the saved configuration; a RouterOS
        router reboots, its API gone until the routing engine is back."""
        if self._frr is None:
            raise RuntimeError("the lab is not running")
        if self._routeros is not None:
            self._routeros.adapter.reboot()  # through the API, as the harness reboots a MikroTik
        else:
            self._frr.restart()

    @property
    def routeros(self) -> LabRouterOs | None:
        """The RouterOS API in front of FRR, when the topology's router is `kind: routeros`."""
        return self._routeros

    @property
    def router_pids(self) -> list[int]:
        return self._frr.pids if self._frr else []

    def topology_peers(self) -> list[BgpPeer]:
        return topology_peers(self.topology)

    def speaker(self, node_name: str) -> GoBgpSpeaker:
        """The node's speaker (created on first use, not started), peering with the topology's router."""
        if node_name not in self._speakers:
            node = self.topology.node(node_name)
            timers = self.topology.bgp.timers
            neighbor = Neighbor(
                self.topology.router.address,
                self.topology.bgp.peer_asn,
                Timers(timers.connect_retry, timers.hold, timers.keepalive),
            )
            self._speakers[node_name] = GoBgpSpeaker(
                node=node.name,
                namespace=self.network.node_ns[node.name],
                directory=self.run.directory / "speakers" / node.name,
                router_id=node.address,
                asn=self.topology.bgp.node_asn,
                neighbors=[neighbor],
            )
        return self._speakers[node_name]

    def start_speakers(self, node_names: list[str] | None = None) -> list[GoBgpSpeaker]:
        names = node_names if node_names is not None else [n.name for n in self.topology.bgp_nodes]
        speakers = [self.speaker(name) for name in names]
        for speaker in speakers:
            speaker.start()
        return speakers

    def client_exec(self, argv: list[str], timeout: float = 30.0) -> str:
        """Run a command on the outside client (north of the router)."""
        return run(["ip", "netns", "exec", self.network.client_ns, *argv], timeout=timeout).stdout

    def node_exec(self, node_name: str, argv: list[str], timeout: float = 30.0) -> str:
        return run(["ip", "netns", "exec", self.network.node_ns[node_name], *argv], timeout=timeout).stdout

    def originate_everywhere(self, prefix: IPv4Network, node_names: list[str]) -> None:
        for name in node_names:
            self.speaker(name).originate(prefix)
