"""The lab router presented as RouterOS: FRR underneath, the RouterOS API on loopback, the adapter on top.

The API listens on 127.0.0.1 (a free port): the harness reaches it without sending anything from the
root namespace beyond loopback. Credentials are the topology's environment variables when they are
set, else those of a fresh CHR (`Router.fresh_login`), so a lab run needs no secret.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bgpconform.lab.routeros.frr_backend import FrrBackend, Vtysh
from bgpconform.lab.routeros.router import EmulatedRouter
from bgpconform.lab.routeros.server import RouterOsApiServer
from bgpconform.routers.routeros import Dialect, Endpoint, RouterOsApi, RouterOsRouter
from bgpconform.topology import Topology

LAB_BOARD = "bgpconform-lab (FRR)"


class LabRouterOs:
    """Starts the API server for the lab's FRR and hands out the RouterOS adapter connected to it."""

    def __init__(
        self, topology: Topology, frr: Vtysh, directory: Path, restart_routing: Callable[[], None]
    ) -> None:
        self.topology = topology
        router = topology.router
        self.dialect = Dialect.of(router.routeros_version)
        username, password = topology.router.fresh_login()
        self.emulated = EmulatedRouter(
            self.dialect, FrrBackend(frr, router.asn), identity=router.name, board=LAB_BOARD
        )
        self._restart_routing = restart_routing
        self.emulated.on_reboot = self._reboot
        directory.mkdir(parents=True, exist_ok=True)
        self.server = RouterOsApiServer(
            self.emulated, username=username, password=password, log_file=directory / "routeros-api.log"
        )
        self._login = (username, password)
        self._adapter: RouterOsRouter | None = None

    def start(self, timeout: float = 10.0) -> RouterOsRouter:
        self.server.start(timeout)
        api = RouterOsApi(
            self.endpoint,
            *self._login,
            timeout=timeout,
            credentials_hint=self.topology.router.credentials_hint(),
        )
        self._adapter = RouterOsRouter.for_topology(api, self.topology)
        self._adapter.wait_for_login(timeout)
        return self._adapter

    def _reboot(self) -> None:
        """What `/system/reboot` does here: every API session drops, the routing engine restarts with
        the saved configuration (RouterOS keeps it), and the API answers again on the same address."""
        self.server.stop()
        self._restart_routing()
        self.emulated.booted()
        self.server.start()

    @property
    def adapter(self) -> RouterOsRouter:
        if self._adapter is None:
            raise RuntimeError("the lab's RouterOS API is not started")
        return self._adapter

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.server.host, self.server.port)

    def stop(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None
        self.server.stop()
