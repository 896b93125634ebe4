"""The agent's side of pod IPAM and node routes: where a node's pod CIDR comes from, and how the other
nodes' pods are reached.

At start the agent needs its node's pod CIDR before it can serve the CNI (FACTS.md, "What a real
cluster does that a lab may not"): in cluster-pool mode (the default) it creates its CiliumNode without
one and waits for the leading operator to write `spec.ipam.podCIDRs` (`cluster_pool`); in `kubernetes`
mode it copies `Node.spec.podCIDRs`, which k3s's node IPAM set, into its CiliumNode. A restarted agent
finds its CiliumNode with the CIDR already there. Until then it logs, as 1.13's k8s node init does,
`Waiting for k8s node information` and, once it has one, `Received own node information from API
server`. The CIDR's first address becomes `cilium_host`'s (the router IP, `CiliumInternalIP`).

Every agent then routes each other node's pod CIDRs through that node's InternalIP, learnt from the
CiliumNodes (native routing with `auto-direct-node-routes`; tunnel mode reaches the same nodes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, Resources
from bgpconform.lab.cilium.cluster_pool import ipv4_pod_cidrs
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.network import LabNetwork
from bgpconform.topology import Node

Log = Callable[[str, str, Mapping[str, object]], None]  # (level, message, fields): the agent's log line


def _node_pod_cidrs(node: Mapping[str, Any]) -> list[IPv4Network]:
    found = (node.get("spec") or {}).get("podCIDRs") or []
    return [IPv4Network(c) for c in found if ":" not in c]


def _internal_ip(cilium_node: Mapping[str, Any]) -> IPv4Address | None:
    for address in (cilium_node.get("spec") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and ":" not in str(address.get("ip")):
            return IPv4Address(str(address["ip"]))
    return None


class PodCidrWait:
    """Obtain this node's pod CIDR as the agent does at start; `obtain` returns None once stopped."""

    def __init__(self, kube: Kube, node: Node, mode: str, stop: threading.Event, log: Log) -> None:
        self.kube = kube
        self.node = node
        self.mode = mode
        self.stop = stop
        self.log = log
        self.crd_missing = False  # the CiliumNode CRD was not served at the last attempt

    def obtain(self, crd_deadline: float) -> IPv4Network | None:
        """The CIDR, or None once stopped or, with the CiliumNode CRD still missing, at `crd_deadline`
        (monotonic): the agent's `crd-wait-timeout` covers that CRD as every other."""
        waiting_said = False
        while not self.stop.is_set():
            cidr = self._attempt()
            if cidr is not None:
                fields = {"nodeName": self.node.name, "v4Prefix": str(cidr)}
                self.log("info", "Received own node information from API server", fields)
                return cidr
            if self.crd_missing and time.monotonic() >= crd_deadline:
                return None
            if not waiting_said:
                self.log("warning", "Waiting for k8s node information", {"error": self._why()})
                waiting_said = True
            self.stop.wait(0.2)
        return None

    def _why(self) -> str:
        if self.mode == "kubernetes":
            return "required IPv4 PodCIDR not available"
        return f"no podCIDRs in CiliumNode {self.node.name} yet (the operator allocates them)"

    def _attempt(self) -> IPv4Network | None:
        try:
            cilium_node = self.kube.get_or_none(Resources.CILIUM_NODES, self.node.name)
        except ApiException as exc:
            if exc.status == 404:  # the CiliumNode CRD is not registered yet: the operator is starting
                self.crd_missing = True
                return None
            raise
        self.crd_missing = False
        if self.mode == "kubernetes":
            api_node = self.kube.get_or_none(Resources.NODES, self.node.name) or {}
            from_node = _node_pod_cidrs(api_node)
            if not from_node:
                return None
            self._write(cilium_node, from_node)
            return from_node[0]
        if cilium_node is None:
            self._write(None, [])
            return None
        assigned = ipv4_pod_cidrs(cilium_node)
        return assigned[0] if assigned else None

    def _write(self, cilium_node: dict[str, Any] | None, pod_cidrs: list[IPv4Network]) -> None:
        """Create this node's CiliumNode (or set its pod CIDRs): what the agent registers about itself."""
        ipam: dict[str, Any] = {"podCIDRs": [str(c) for c in pod_cidrs]} if pod_cidrs else {}
        try:
            if cilium_node is None:
                body = {
                    "metadata": {"name": self.node.name, "labels": dict(self.node.labels)},
                    "spec": {
                        "addresses": [{"type": "InternalIP", "ip": str(self.node.address)}],
                        "ipam": ipam,
                    },
                }
                self.kube.create(Resources.CILIUM_NODES, body)
            elif ipv4_pod_cidrs(cilium_node) != pod_cidrs:
                self.kube.patch(Resources.CILIUM_NODES, self.node.name, {"spec": {"ipam": ipam}})
        except ApiException as exc:
            if exc.status not in (404, 409):  # CRD not served yet, or written meanwhile: try again
                raise

    def announce_router_ip(self, gateway: IPv4Address) -> None:
        """Add `CiliumInternalIP` (cilium_host's address) to this node's CiliumNode addresses."""
        addresses = [
            {"type": "InternalIP", "ip": str(self.node.address)},
            {"type": "CiliumInternalIP", "ip": str(gateway)},
        ]
        self.kube.patch(Resources.CILIUM_NODES, self.node.name, {"spec": {"addresses": addresses}})


class NodeRoutesController(Controller):
    """Routes on this node to every other node's pod CIDRs, as their CiliumNodes say."""

    name = "cilium-node-routes"

    def __init__(self, kube: Kube, network: LabNetwork, node: Node, *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.network = network
        self.node = node
        self.cilium_nodes = self.inform(Resources.CILIUM_NODES, retry=1.0)
        self.routed: dict[IPv4Network, IPv4Address] = {}

    def reconcile(self) -> None:
        wanted: dict[IPv4Network, IPv4Address] = {}
        for other in self.cilium_nodes.objects():
            via = _internal_ip(other)
            if other["metadata"]["name"] == self.node.name or via is None:
                continue
            for cidr in ipv4_pod_cidrs(other):
                wanted[cidr] = via
        for cidr in set(self.routed) - set(wanted):
            self.network.unroute_pod_cidr(self.node.name, cidr)
            del self.routed[cidr]
        for cidr, via in wanted.items():
            if self.routed.get(cidr) != via:
                self.network.route_pod_cidr(self.node.name, cidr, via)
                self.routed[cidr] = via
