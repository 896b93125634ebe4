"""The lab router presented as RouterOS: FRR underneath, the RouterOS API on loopback, the adapter on top.

The API listens on 127.0.0.1 (a free port): the harness reaches it without sending anything from the
root namespace beyond loopback. Credentials are the topology's environment variables when they are
set, else those of a fresh CHR (user `admin`, empty password; FACTS.md), so a lab run needs no secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bgpconform.errors import ConfigError
from bgpconform.lab.routeros.frr_backend import FrrBackend, Vtysh
from bgpconform.lab.routeros.router import EmulatedRouter
from bgpconform.lab.routeros.server import RouterOsApiServer
from bgpconform.routers.routeros import Dialect, Endpoint, RouterOsApi, RouterOsRouter
from bgpconform.topology import Topology

CHR_USER = "admin"
CHR_PASSWORD = ""
LAB_BOARD = "bgpconform-lab (FRR)"


def lab_credentials(topology: Topology, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The topology's variables when both are set; a fresh CHR's login when neither is."""
    env = os.environ if environ is None else environ
    credentials = topology.router.credentials
    if credentials is None:
        return CHR_USER, CHR_PASSWORD
    present = [name for name in (credentials.username_env, credentials.password_env) if name in env]
    if not present:
        return CHR_USER, CHR_PASSWORD
    if len(present) == 1:
        missing = (
            credentials.password_env if present[0] == credentials.username_env else credentials.username_env
        )
        raise ConfigError(
            f"router.credentials: {present[0]} is set but {missing} is not; fix: export both, or unset both "
            "to use the lab router's default login (admin, empty password)"
        )
    return credentials.resolve(env)


def credentials_hint(topology: Topology) -> str:
    credentials = topology.router.credentials
    if credentials is None:
        return "the router credentials"
    return credentials.hint()


class LabRouterOs:
    """Starts the API server for the lab's FRR and hands out the RouterOS adapter connected to it."""

    def __init__(self, topology: Topology, frr: Vtysh, directory: Path) -> None:
        self.topology = topology
        router = topology.router
        self.dialect = Dialect.of(router.routeros_version)
        username, password = lab_credentials(topology)
        self.emulated = EmulatedRouter(
            self.dialect, FrrBackend(frr, router.asn), identity=router.name, board=LAB_BOARD
        )
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
            credentials_hint=credentials_hint(self.topology),
        )
        self._adapter = RouterOsRouter.for_topology(api, self.topology)
        self._adapter.wait_for_login(timeout)
        return self._adapter

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.server.host, self.server.port)

    def stop(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None
        self.server.stop()
