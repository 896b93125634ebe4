"""Pod CIDRs as Cilium's cluster-pool IPAM and k3s's node IPAM hand them out: the next free block of
the cluster CIDR in the order the allocator hears of the nodes, never the topology's list (FACTS.md,
"What a real cluster does that a lab may not": 10.0.N.0/24 by default, k3s's 10.42.N.0/24). Against
the lab's API server, with the emulated operator leading."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from bgpconform.cilium.install import CiliumValues
from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.cidrset import CidrSet, CidrSetFull
from bgpconform.lab.cilium.manifests import config_data
from bgpconform.lab.cilium.operator import Operator
from bgpconform.lab.cluster.nodeipam import NodeIpamController
from bgpconform.waiting import wait_for


def test_blocks_go_out_in_turn_after_the_last_one_and_wrap() -> None:
    blocks = CidrSet(IPv4Network("10.136.0.0/22"), 24)
    assert blocks.occupy(IPv4Network("10.136.1.0/24"))
    assert not blocks.occupy(IPv4Network("10.137.0.0/24"))  # not ours
    assert [str(blocks.allocate_next()) for _ in range(3)] == [
        "10.136.0.0/24",
        "10.136.2.0/24",
        "10.136.3.0/24",
    ]
    blocks.release(IPv4Network("10.136.0.0/24"))
    assert str(blocks.allocate_next()) == "10.136.0.0/24"  # wrapped round to the one freed
    with pytest.raises(CidrSetFull, match=r"no remaining CIDRs left to allocate in 10\.136\.0\.0/22"):
        blocks.allocate_next()


def test_a_freed_block_is_not_reused_before_the_scan_comes_round() -> None:
    """cidrset scans on from the last block handed out: a node that comes back gets a new block."""
    blocks = CidrSet(IPv4Network("10.0.0.0/8"), 24)
    first, second = blocks.allocate_next(), blocks.allocate_next()
    blocks.release(first)
    assert blocks.allocate_next() == IPv4Network("10.0.2.0/24")
    assert second == IPv4Network("10.0.1.0/24")


def _operator(server: ApiServer, kube: Kube, pool: str, mask: int) -> Operator:
    values = CiliumValues(
        cluster_name="k3s-rpi", cluster_pool_ipv4_cidr=pool, cluster_pool_ipv4_mask_size=mask
    )
    if kube.get_or_none(Resources.CONFIGMAPS, "cilium-config", "kube-system") is None:
        body = {"metadata": {"name": "cilium-config"}, "data": config_data(values)}
        kube.create(Resources.CONFIGMAPS, body, "kube-system")
    operator = Operator(Kube(new_api_client(str(server.kubeconfig_path))), lambda _line: None, resync=1.0)
    operator.start()
    return operator


def _cidrs(kube: Kube) -> dict[str, list[str]]:
    return {
        n["metadata"]["name"]: ((n.get("spec") or {}).get("ipam") or {}).get("podCIDRs") or []
        for n in kube.items_if_served(Resources.CILIUM_NODES)
    }


def _register(kube: Kube, name: str) -> None:
    """What an agent creates at start in cluster-pool mode: its CiliumNode, without pod CIDRs."""
    wait_for(
        lambda: bool(kube.api_resources("cilium.io/v2")),
        bool,
        expected="the CiliumNode CRD registered by the operator",
        timeout=20,
    )
    kube.create(Resources.CILIUM_NODES, {"metadata": {"name": name}, "spec": {"ipam": {}}})


def test_the_leader_gives_each_cilium_node_the_next_block_in_the_order_they_arrive(
    server: ApiServer, kube: Kube
) -> None:
    operator = _operator(server, kube, "10.250.0.0/16", 26)
    try:
        for name in ("w3", "cp", "w1"):  # the order agents happened to start in, not the topology's
            _register(kube, name)
            wait_for(
                lambda name=name: _cidrs(kube)[name],  # type: ignore[misc]
                bool,
                expected=f"a pod CIDR in CiliumNode {name}",
                timeout=10,
            )
        assert _cidrs(kube) == {
            "w3": ["10.250.0.0/26"],
            "cp": ["10.250.0.64/26"],
            "w1": ["10.250.0.128/26"],
        }
    finally:
        operator.stop()
        operator.kube.api_client.close()  # type: ignore[no-untyped-call]

    # A new leader keeps every block written and goes on after them; a deleted node's block is freed.
    kube.delete(Resources.CILIUM_NODES, "cp")
    successor = _operator(server, kube, "10.250.0.0/16", 26)
    try:
        _register(kube, "w2")
        found = wait_for(
            lambda: _cidrs(kube), lambda cidrs: bool(cidrs.get("w2")), expected="w2's block", timeout=20
        ).value
        assert found == {"w3": ["10.250.0.0/26"], "w1": ["10.250.0.128/26"], "w2": ["10.250.0.64/26"]}
    finally:
        successor.stop()
        successor.kube.api_client.close()  # type: ignore[no-untyped-call]


def test_k3s_node_ipam_sets_each_node_a_pod_cidr_of_its_cluster_cidr(kube: Kube) -> None:
    controller = NodeIpamController(kube, resync=0.5)
    controller.start()
    try:
        for name in ("k3s-worker-node-02", "k3s-control-plane-01"):
            kube.create(Resources.NODES, {"metadata": {"name": name}, "spec": {}})
            wait_for(
                lambda name=name: (kube.get(Resources.NODES, name).get("spec") or {}).get("podCIDR"),  # type: ignore[misc]
                bool,
                expected=f"Node {name} spec.podCIDR",
                timeout=10,
            )
        specs = {
            name: kube.get(Resources.NODES, name)["spec"]
            for name in ("k3s-worker-node-02", "k3s-control-plane-01")
        }
        assert specs["k3s-worker-node-02"]["podCIDR"] == "10.42.0.0/24"
        assert specs["k3s-control-plane-01"]["podCIDRs"] == ["10.42.1.0/24"]
    finally:
        controller.stop()
