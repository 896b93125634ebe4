"""The topology's router as a port for a real target: RouterOS over its API (`router.management`),
FRR through vtysh where `router.vtysh` says (SSH, a namespace here, or this machine)."""

from __future__ import annotations

from bgpconform.commands import Place
from bgpconform.errors import ConfigError
from bgpconform.routers.frr import FrrRouter, VtyshTransport
from bgpconform.routers.port import RouterPort
from bgpconform.routers.routeros import Endpoint, RouterOsApi, RouterOsRouter
from bgpconform.topology import Topology

API_TIMEOUT = 10.0


def connect_router(topology: Topology) -> RouterPort:
    """Nothing is sent here; the first command logs in, so preflight reports a refused login itself."""
    router = topology.router
    if router.kind == "routeros":
        if router.management is None or router.credentials is None:
            raise ConfigError(
                f"{topology.source}: router.management: required to reach a RouterOS router on a real "
                "target; fix: add management: {host: <router API address>, port: 8728}"
            )
        management = router.management
        username, password = router.credentials.resolve()
        endpoint = Endpoint(management.host, management.port, management.tls, management.verify_tls)
        api = RouterOsApi(
            endpoint, username, password, timeout=API_TIMEOUT, credentials_hint=router.credentials.hint()
        )
        return RouterOsRouter.for_topology(api, topology)
    vtysh = router.vtysh
    place = Place() if vtysh is None else Place(namespace=vtysh.namespace, ssh=vtysh.ssh, sudo=vtysh.sudo)
    transport = VtyshTransport(place, vtysh.vty_socket if vtysh is not None else None)
    return FrrRouter(transport, router.asn, router.name)
