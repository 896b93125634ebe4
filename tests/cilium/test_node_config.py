"""A Cilium setting per node: cilium-config, then the CiliumNodeConfigs selecting the node, asked of a
real API server (the lab's), so selector semantics are the server's."""

from __future__ import annotations

from typing import Any

from bgpconform.cilium.node_config import Setting, per_node, selector_query
from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.lab.cilium import crds

KEY = "enable-bgp-control-plane"
NODES = ["k3s-worker-node-01", "k3s-worker-node-02", "k3s-worker-node-03"]
CONFIG_MAP = "ConfigMap kube-system/cilium-config"


def _cluster(kube: Kube, value: str) -> None:
    for name in NODES:
        rack = "a" if name.endswith("01") else "b"
        kube.create(Resources.NODES, {"metadata": {"name": name, "labels": {"rack": rack}}})
    kube.create(
        Resources.CONFIGMAPS,
        {"metadata": {"name": "cilium-config", "namespace": "kube-system"}, "data": {KEY: value}},
        "kube-system",
    )


def _add_node_config(kube: Kube, name: str, selector: dict[str, Any], defaults: dict[str, str]) -> None:
    body = {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumNodeConfig",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {"nodeSelector": selector, "defaults": defaults},
    }
    kube.create(Resources.CILIUM_NODE_CONFIGS, body, "kube-system")


def test_selector_query_is_the_label_selector_string_form() -> None:
    selector = {
        "matchLabels": {"rack": "b", "bgp": "on"},
        "matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["z2", "z1"]},
            {"key": "spare", "operator": "DoesNotExist"},
            {"key": "gpu", "operator": "Exists"},
            {"key": "tier", "operator": "NotIn", "values": ["edge"]},
        ],
    }
    assert selector_query(selector) == "bgp=on,rack=b,zone in (z1,z2),!spare,gpu,tier notin (edge)"
    assert selector_query({}) == ""


def test_without_the_crd_the_config_map_decides(kube: Kube) -> None:
    _cluster(kube, "true")
    assert per_node(kube, KEY, NODES) == {name: Setting("true", CONFIG_MAP) for name in NODES}


def test_a_node_config_overrides_the_nodes_it_selects_later_names_winning(kube: Kube) -> None:
    _cluster(kube, "true")
    kube.create(Resources.CRDS, crds.CNC.definition())
    _add_node_config(kube, "a-rack-b-off", {"matchLabels": {"rack": "b"}}, {KEY: "false"})
    selects_none = {
        "matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "DoesNotExist"},
            {"key": "rack", "operator": "In", "values": ["x"]},
        ]
    }
    _add_node_config(kube, "b-selects-none", selects_none, {KEY: "true"})
    _add_node_config(kube, "c-other-key", {}, {"enable-ipv6": "true"})
    found = per_node(kube, KEY, NODES)
    assert found == {
        "k3s-worker-node-01": Setting("true", CONFIG_MAP),
        "k3s-worker-node-02": Setting("false", "CiliumNodeConfig kube-system/a-rack-b-off"),
        "k3s-worker-node-03": Setting("false", "CiliumNodeConfig kube-system/a-rack-b-off"),
    }
    _add_node_config(kube, "z-all-on", {}, {KEY: "true"})
    assert {s.value for s in per_node(kube, KEY, NODES).values()} == {"true"}
