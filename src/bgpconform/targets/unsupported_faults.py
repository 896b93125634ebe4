"""The fault port of a rack: the harness reaches its nodes only through their APIs, so it cannot pull a
node's cable (asking fails with what it would take, before anything has changed), but it can reboot a
RouterOS router through the API it already uses (`/system/reboot`)."""

from __future__ import annotations

from bgpconform.routers.port import RouterPort
from bgpconform.routers.routeros import RouterOsRouter
from bgpconform.targets.port import FaultUnsupported


def reboot_router(router: RouterPort, target: str) -> None:
    """A RouterOS router reboots through its API; other makes are restarted by their operator."""
    if not isinstance(router, RouterOsRouter):
        raise FaultUnsupported(
            f"the {target} target reboots only a RouterOS router (through `/system/reboot`); restart "
            "this one by hand (FRR: `write memory`, then restart its service), or run the router "
            "restart on the lab"
        )
    router.reboot()


class UnsupportedFaults:
    def __init__(self, target: str, remedy: str, router: RouterPort) -> None:
        self.target = target
        self.remedy = remedy
        self.router = router

    def isolate_node(self, node: str) -> None:
        raise FaultUnsupported(
            f"the {self.target} target cannot take node {node} off its network: {self.remedy}"
        )

    def restore_node(self, node: str) -> None:
        raise FaultUnsupported(f"the {self.target} target cannot bring node {node} back: {self.remedy}")

    def restart_router(self) -> None:
        reboot_router(self.router, self.target)
