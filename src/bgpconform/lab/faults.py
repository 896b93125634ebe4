"""Faults injected into the lab where they happen on real machines: a node's cable is pulled at the
switch, so its BGP session dies by the hold timer and its datapath stops answering, while the node
itself keeps its addresses and routes, as a node whose link went down does; the router restarts as
its make restarts (`Lab.restart_router`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bgpconform.lab.lab import Lab


class LabFaults:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def isolate_node(self, node: str) -> None:
        self.lab.network.set_switch_port(node, up=False)

    def restore_node(self, node: str) -> None:
        self.lab.network.set_switch_port(node, up=True)

    def restart_router(self) -> None:
        self.lab.restart_router()
