"""The overlap scenario's second pool is created in a later second than the first, whatever the clock:
with equal creationTimestamps Cilium marks either pool (FACTS.md, LB IPAM), so the scenario's
"the second pool is marked" would be a coin toss. And it is created once: a twin created in the same
second and deleted would, for that moment, be a tie the operator may settle by marking the first pool.
Run against the lab's API server (second stamps, a Date header)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network
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
    for attempt in range(3):  # at once, again and again: without waiting these land in the first's second
        first = machine.create(
            Resources.LB_IP_POOLS,
            manifests.lb_pool(topology.lb_pools[0], str(topology.cluster.cilium_version)),
        )
        listed = kube.listing(Resources.LB_IP_POOLS)
        watch = kube.watch(Resources.LB_IP_POOLS, resource_version=listed["metadata"]["resourceVersion"])
        second_body = manifests.pool_object(
            "overlapping", topology.lb_pools[0].cidrs, str(topology.cluster.cilium_version)
        )
        second = machine.create_newer_than(Resources.LB_IP_POOLS, second_body, older=first)
        assert _stamp(second) > _stamp(first), (attempt, first["metadata"], second["metadata"])
        kube.delete(Resources.LB_IP_POOLS, "overlapping")
        marker = manifests.pool_object(
            "end-of-attempt", [IPv4Network("192.0.2.0/28")], str(topology.cluster.cilium_version)
        )
        kube.create(Resources.LB_IP_POOLS, marker)
        events = []
        for event in watch:
            if event["type"] == "BOOKMARK":
                continue
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if events[-1] == ("ADDED", "end-of-attempt"):
                break
        watch.close()
        once = [("ADDED", "overlapping"), ("DELETED", "overlapping"), ("ADDED", "end-of-attempt")]
        assert events == once, (attempt, events)
        kube.delete(Resources.LB_IP_POOLS, "end-of-attempt")
        kube.delete(Resources.LB_IP_POOLS, first["metadata"]["name"])
    assert kube.items(Resources.LB_IP_POOLS) == []  # nothing left behind by the retries
