"""Faults injected into the lab where they happen on real machines: a node's cable is pulled at the
switch, so its BGP session dies by the hold timer and its datapath stops answering, while the node
itself keeps its addresses and routes, as a node whose link went down does."""

from __future__ import annotations

from bgpconform.lab.network import LabNetwork


class LabFaults:
    def __init__(self, network: LabNetwork) -> None:
        self.network = network

    def isolate_node(self, node: str) -> None:
        self.network.set_switch_port(node, up=False)

    def restore_node(self, node: str) -> None:
        self.network.set_switch_port(node, up=True)
