"""kube-controller-manager's node IPAM as k3s runs it: each new Node gets `spec.podCIDR` from the
cluster CIDR (k3s: `--cluster-cidr` 10.42.0.0/16, a /24 a node; FACTS.md, "What a real cluster does").

Cilium in its default cluster-pool IPAM ignores these; `ipam.mode=kubernetes` takes them. Blocks go
out in the order the controller hears of the nodes (`bgpconform.lab.cidrset`), and a Node's pod CIDR,
once set, never changes.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, Resources
from bgpconform.lab.cidrset import CidrSet, CidrSetFull
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.replicaset import is_stale

K3S_CLUSTER_CIDR = IPv4Network("10.42.0.0/16")
K3S_NODE_CIDR_MASK = 24


def _pod_cidr(node: dict[str, Any]) -> IPv4Network | None:
    value = (node.get("spec") or {}).get("podCIDR")
    return IPv4Network(value) if value and ":" not in value else None


class NodeIpamController(Controller):
    """Gives every Node without a pod CIDR the next free block; frees a deleted Node's."""

    name = "node-ipam-controller"

    def __init__(
        self,
        kube: Kube,
        *,
        cluster_cidr: IPv4Network = K3S_CLUSTER_CIDR,
        mask: int = K3S_NODE_CIDR_MASK,
        resync: float = 5.0,
    ) -> None:
        super().__init__(kube, resync=resync)
        self.nodes = self.inform(Resources.NODES)
        self.blocks = CidrSet(cluster_cidr, mask)
        self._held: dict[str, IPv4Network] = {}

    def reconcile(self) -> None:
        nodes = self.nodes.objects()
        present = {node["metadata"]["name"] for node in nodes}
        for name in set(self._held) - present:
            self.blocks.release(self._held.pop(name))
        for node in nodes:
            found = _pod_cidr(node)
            if found is not None and node["metadata"]["name"] not in self._held:
                self.blocks.occupy(found)
                self._held[node["metadata"]["name"]] = found
        for node in nodes:
            name = node["metadata"]["name"]
            if name in self._held or node["metadata"].get("deletionTimestamp"):
                continue
            try:
                cidr = self.blocks.allocate_next()
            except CidrSetFull:
                return  # the real controller records a CIDRNotAvailable event and retries
            patch = {
                "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"podCIDR": str(cidr), "podCIDRs": [str(cidr)]},
            }
            try:
                self.kube.patch(Resources.NODES, name, patch)
            except ApiException as exc:
                self.blocks.release(cidr)
                if not is_stale(exc):
                    raise
                self.wake()
                continue
            self._held[name] = cidr
