"""The harness reads each node's pod CIDR from the cluster, as Cilium's IPAM assigned it: cluster-pool
gives 10.0.N.0/24 whatever the topology says (FACTS.md, "What a real cluster does that a lab may
not"), so a step that assumed the topology's would fail a healthy rack. Against the lab's API server."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import cast

import pytest

from bgpconform.errors import NonConformance
from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.lab.cilium import crds
from bgpconform.targets.port import Target
from bgpconform.topology import Topology, load_topology
from bgpconform.walkthrough.machine import StageMachine
from tests.suite.runner import ROOT


@dataclass
class _ApiOnly:
    kube: Kube
    topology: Topology


def test_pod_cidrs_come_from_cilium_nodes_then_nodes_then_the_topology(kube: Kube) -> None:
    topology = load_topology(ROOT / "topologies" / "pi.example.yaml")  # it names each node's pod CIDR
    first, second = topology.bgp_nodes[0], topology.bgp_nodes[1]
    machine = StageMachine(cast(Target, _ApiOnly(kube, topology)))
    for node in topology.nodes:
        kube.create(Resources.NODES, {"metadata": {"name": node.name}, "spec": {}})

    before_cilium = machine.pod_cidrs()
    assert before_cilium[first.name] == (first.pod_cidr, "the topology (the cluster assigns none)")

    kube.patch(Resources.NODES, second.name, {"spec": {"podCIDR": "10.42.7.0/24"}})
    kube.create(Resources.CRDS, crds.CN.definition())
    cluster_pool = {"ipam": {"podCIDRs": ["fd00:10::/96", "10.0.3.0/24"]}}
    kube.create(Resources.CILIUM_NODES, {"metadata": {"name": first.name}, "spec": cluster_pool})

    assigned = machine.pod_cidrs()
    assert assigned[first.name] == (IPv4Network("10.0.3.0/24"), f"CiliumNode {first.name} spec.ipam.podCIDRs")
    assert assigned[second.name] == (IPv4Network("10.42.7.0/24"), f"Node {second.name} spec.podCIDR")
    assert set(assigned) == {node.name for node in topology.bgp_nodes}


def test_a_node_without_a_pod_cidr_anywhere_is_a_non_conformance(kube: Kube) -> None:
    """The lab topology names no node's pod CIDR: where the cluster shows none either, IPAM never
    served the node, and the step says which node and what the others got."""
    topology = load_topology(ROOT / "topologies" / "lab.yaml")
    first = topology.bgp_nodes[0]
    machine = StageMachine(cast(Target, _ApiOnly(kube, topology)))
    for node in topology.nodes:
        kube.create(Resources.NODES, {"metadata": {"name": node.name}, "spec": {}})
    kube.create(Resources.CRDS, crds.CN.definition())
    for index, node in enumerate(topology.bgp_nodes[1:]):
        spec = {"ipam": {"podCIDRs": [f"10.136.{index}.0/24"]}}
        kube.create(Resources.CILIUM_NODES, {"metadata": {"name": node.name}, "spec": spec})

    with pytest.raises(NonConformance) as caught:
        machine.pod_cidrs()
    assert str(caught.value) == f"no pod CIDR assigned to {first.name}"
    assert caught.value.observed is not None
    assert caught.value.observed.startswith(f"none for {first.name}; assigned: ")
    assert "10.136.0.0/24" in caught.value.observed
