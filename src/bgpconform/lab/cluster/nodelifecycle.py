"""kube-controller-manager's node lifecycle controller, its NoSchedule tainting pass only.

Taints follow node conditions as `doNoScheduleTaintingPass` maps them (TaintNodesByCondition): Ready
False gives `node.kubernetes.io/not-ready:NoSchedule`, Ready Unknown `node.kubernetes.io/unreachable`,
MemoryPressure/DiskPressure/PIDPressure/NetworkUnavailable True their own taints, and
`spec.unschedulable` (kubectl cordon) `node.kubernetes.io/unschedulable`. A node without a Ready
condition yet counts as not ready, as the kubelet registers it with the not-ready taint. These taints
are what keep ordinary pods Pending on NotReady nodes (coredns in the walkthrough).

Not done: the NoExecute taints and evictions the real controller adds once a node has been NotReady
or unreachable for a while (`--node-monitor-grace-period`, taint-based eviction), and marking a
silent node's conditions Unknown; the lab's kubelets do not go silent.
"""

from __future__ import annotations

from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, Resources
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.replicaset import is_stale
from bgpconform.lab.cluster.scheduler import NOT_READY, UNREACHABLE, UNSCHEDULABLE

Obj = dict[str, Any]

CONDITION_TAINTS: dict[tuple[str, str], str] = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
MANAGED = {*CONDITION_TAINTS.values(), UNSCHEDULABLE}


def wanted_taints(node: Obj) -> set[str]:
    """The keys of the NoSchedule taints the node's conditions and spec call for."""
    conditions = {
        c.get("type"): str(c.get("status")) for c in (node.get("status") or {}).get("conditions") or []
    }
    conditions.setdefault("Ready", "False")
    wanted = {key for (kind, status), key in CONDITION_TAINTS.items() if conditions.get(kind) == status}
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.add(UNSCHEDULABLE)
    return wanted


def next_taints(node: Obj) -> list[Obj]:
    """The node's taints with the managed NoSchedule ones made to match; others kept as they are."""
    wanted = wanted_taints(node)
    taints: list[Obj] = []
    present: set[str] = set()
    for taint in (node.get("spec") or {}).get("taints") or []:
        managed = taint.get("key") in MANAGED and taint.get("effect") == "NoSchedule"
        if managed and (taint["key"] not in wanted or taint["key"] in present):
            continue
        if managed:
            present.add(taint["key"])
        taints.append(taint)
    taints.extend({"key": key, "effect": "NoSchedule"} for key in sorted(wanted - present))
    return taints


class NodeLifecycleController(Controller):
    """Keeps condition taints on nodes in step with their conditions, as node-lifecycle-controller."""

    name = "node-lifecycle-controller"

    def __init__(self, kube: Kube, *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.nodes = self.inform(Resources.NODES)

    def reconcile(self) -> None:
        for node in self.nodes.objects():
            if self.stopping:
                return
            taints = next_taints(node)
            if taints == ((node.get("spec") or {}).get("taints") or []):
                continue
            meta = node["metadata"]
            patch = {
                "metadata": {"resourceVersion": meta["resourceVersion"]},
                "spec": {"taints": taints or None},
            }
            try:
                self.kube.patch(Resources.NODES, meta["name"], patch)
            except ApiException as exc:
                if not is_stale(exc):
                    raise
                self.wake()
