"""The overlap scenario's second pool is created in a later second than the first, whatever the clock:
with equal creationTimestamps Cilium marks either pool (FACTS.md, LB IPAM), so the scenario's
"the second pool is marked" would be a coin toss. Run against the lab's API server (second stamps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.lab.cilium import crds
from bgpconform.targets.port import Target
from bgpconform.topology import Topology, load_topology
from bgpconform.walkthrough import manifests
from bgpconform.walkthrough.machine import StageMachine
from tests.suite.runner import ROOT


@dataclass
class _ApiOnly:
    """The two parts of a target that creating objects uses."""

    kube: Kube
    topology: Topology


def _stamp(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(obj["metadata"]["creationTimestamp"]).replace("Z", "+00:00"))


def test_the_second_pool_is_stamped_a_later_second_even_when_created_at_once(kube: Kube) -> None:
    kube.create(Resources.CRDS, crds.LB_IP_POOL.definition())
    topology = load_topology(ROOT / "topologies" / "lab.yaml")
    machine = StageMachine(cast(Target, _ApiOnly(kube, topology)), run_id="test")
    for attempt in range(3):  # at once, again and again: most of these land in the first's second
        first = machine.create(Resources.LB_IP_POOLS, manifests.lb_pool(topology.lb_pools[0]))
        second_body = manifests.pool_object("overlapping", topology.lb_pools[0].cidrs)
        second = machine.create_newer_than(Resources.LB_IP_POOLS, second_body, older=first)
        assert _stamp(second) > _stamp(first), (attempt, first["metadata"], second["metadata"])
        for name in (first["metadata"]["name"], "overlapping"):
            kube.delete(Resources.LB_IP_POOLS, name)
    assert kube.items(Resources.LB_IP_POOLS) == []  # nothing left behind by the retries
