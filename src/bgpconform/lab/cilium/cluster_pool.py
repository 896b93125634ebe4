"""Cilium's cluster-pool IPAM, the operator leader's half: a pod CIDR for every CiliumNode.

Each agent creates its node's CiliumNode without pod CIDRs and waits; the leading operator gives it
the next free block of `cluster-pool-ipv4-cidr` (`/cluster-pool-ipv4-mask-size`) in
`spec.ipam.podCIDRs`, in the order it hears of the nodes (`bgpconform.lab.cidrset`; FACTS.md, "What a
real cluster does that a lab may not"). Blocks already written are taken again at start, so a new
leader keeps every node's CIDR; a deleted CiliumNode's block is freed.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Network
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, Resources
from bgpconform.lab.cidrset import CidrSet, CidrSetFull
from bgpconform.lab.cluster.controller import Controller

DEFAULT_POOL = "10.0.0.0/8"  # the chart's clusterPoolIPv4PodCIDRList (FACTS.md)
DEFAULT_MASK = "24"


def ipv4_pod_cidrs(cilium_node: Mapping[str, Any]) -> list[IPv4Network]:
    """`spec.ipam.podCIDRs`, the IPv4 ones."""
    found = ((cilium_node.get("spec") or {}).get("ipam") or {}).get("podCIDRs") or []
    return [IPv4Network(c) for c in found if ":" not in c]


class ClusterPoolAllocator(Controller):
    """Writes a block into every CiliumNode that has none."""

    name = "cilium-operator-cluster-pool"

    def __init__(self, kube: Kube, config: Mapping[str, str], *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.cilium_nodes = self.inform(Resources.CILIUM_NODES, retry=1.0)
        pool = IPv4Network(config.get("cluster-pool-ipv4-cidr") or DEFAULT_POOL)
        self.blocks = CidrSet(pool, int(config.get("cluster-pool-ipv4-mask-size") or DEFAULT_MASK))
        self._held: dict[str, list[IPv4Network]] = {}

    def reconcile(self) -> None:
        nodes = self.cilium_nodes.objects()
        present = {node["metadata"]["name"] for node in nodes}
        for name in set(self._held) - present:
            for cidr in self._held.pop(name):
                self.blocks.release(cidr)
        for node in nodes:
            cidrs = ipv4_pod_cidrs(node)
            if cidrs and node["metadata"]["name"] not in self._held:
                self._held[node["metadata"]["name"]] = [c for c in cidrs if self.blocks.occupy(c)]
        for node in nodes:
            name = node["metadata"]["name"]
            if name in self._held or node["metadata"].get("deletionTimestamp"):
                continue
            try:
                cidr = self.blocks.allocate_next()
            except CidrSetFull:
                return
            patch = {
                "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"ipam": {"podCIDRs": [str(cidr)]}},
            }
            try:
                self.kube.patch(Resources.CILIUM_NODES, name, patch)
            except ApiException as exc:
                self.blocks.release(cidr)
                if exc.status not in (404, 409):
                    raise
                self.wake()
                continue
            self._held[name] = [cidr]
