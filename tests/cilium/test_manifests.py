"""What the lab's `cilium install` creates (walkthrough: `cilium install` on k3s, its pods and their
containers; FACTS.md, "CRD registration, config, logs"), and that the API accepts it, idempotently."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bgpconform.cilium.install import CiliumValues
from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.lab.apiserver.selectors import match_label_selector_object
from bgpconform.lab.cilium.install import LabCiliumInstaller
from bgpconform.lab.cilium.manifests import (
    INIT_CONTAINERS,
    agent_daemonset,
    config_data,
    manifests,
    operator_deployment,
)
from bgpconform.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
# The walkthrough's rack: its nodes' pod CIDRs are 10.136.N.0/24 (the router's table), so its
# cluster-pool was 10.136.0.0/16, not the chart's 10.0.0.0/8.
WALKTHROUGH = CiliumValues(
    cluster_name="k3s-rpi", k8s_service_host="192.168.1.200", cluster_pool_ipv4_cidr="10.136.0.0/16"
)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def test_values_for_the_lab_topology_are_the_walkthroughs() -> None:
    values = CiliumValues.for_topology(load_topology(REPO / "topologies" / "lab.yaml"))
    assert values == WALKTHROUGH
    assert CiliumValues.for_topology(
        load_topology(REPO / "topologies" / "lab.yaml"), tunnel="disabled"
    ).tunnel == ("disabled")


def test_objects_and_their_order() -> None:
    listed = [(resource.kind, obj["metadata"]["name"]) for resource, obj in manifests(WALKTHROUGH)]
    assert listed == [
        ("ServiceAccount", "cilium"),
        ("ServiceAccount", "cilium-operator"),
        ("ConfigMap", "cilium-config"),
        ("DaemonSet", "cilium"),
        ("Deployment", "cilium-operator"),
    ]
    assert {obj["metadata"]["namespace"] for _, obj in manifests(WALKTHROUGH)} == {"kube-system"}


def test_config_is_what_cilium_config_view_shows() -> None:
    data = config_data(WALKTHROUGH)
    assert data["enable-bgp-control-plane"] == "false"  # walkthrough: `cilium config view | grep -i bgp`
    assert data["kube-proxy-replacement"] == "strict"
    assert data["ipam"] == "cluster-pool"
    assert data["cluster-pool-ipv4-cidr"] == "10.136.0.0/16"
    assert config_data(CiliumValues())["cluster-pool-ipv4-cidr"] == "10.0.0.0/8"  # the chart default
    assert data["cluster-name"] == "k3s-rpi"
    assert data["tunnel"] == "vxlan"
    assert (data["enable-ipv4"], data["enable-ipv6"]) == ("true", "false")
    assert data["identity-gc-interval"] == "15m0s"
    assert all(isinstance(v, str) for v in data.values())
    assert config_data(CiliumValues(enable_bgp_control_plane=True))["enable-bgp-control-plane"] == "true"
    assert config_data(CiliumValues(extra_config={"debug": "true"}))["debug"] == "true"


def test_agent_daemonset() -> None:
    ds = agent_daemonset(WALKTHROUGH)
    labels = {
        "k8s-app": "cilium",
        "app.kubernetes.io/name": "cilium-agent",
        "app.kubernetes.io/part-of": "cilium",
    }
    assert ds["metadata"]["labels"] == labels
    template = ds["spec"]["template"]
    assert template["metadata"]["labels"] == labels
    assert match_label_selector_object(ds["spec"]["selector"], template["metadata"]["labels"])
    assert ds["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    spec = template["spec"]
    assert spec["hostNetwork"] is True
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["serviceAccountName"] == "cilium"
    # walkthrough: `Defaulted container "cilium-agent" out of: cilium-agent, config (init), ...`
    assert (
        [c["name"] for c in spec["initContainers"]]
        == list(INIT_CONTAINERS)
        == [
            "config",
            "mount-cgroup",
            "apply-sysctl-overwrites",
            "mount-bpf-fs",
            "clean-cilium-state",
            "install-cni-binaries",
        ]
    )
    [agent] = spec["containers"]
    assert agent["name"] == "cilium-agent"
    assert agent["image"].startswith("quay.io/cilium/cilium:v1.13.4@sha256:")
    assert DIGEST.search(agent["image"])
    assert {c["image"] for c in spec["initContainers"]} == {agent["image"]}
    probe = agent["readinessProbe"]["httpGet"]
    assert (probe["port"], probe["path"]) == (9879, "/healthz")
    env = {e["name"]: e.get("value") for e in agent["env"]}
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("192.168.1.200", "6443")


def test_operator_deployment() -> None:
    deployment = operator_deployment(WALKTHROUGH)
    assert deployment["metadata"]["labels"]["io.cilium/app"] == "operator"
    assert deployment["metadata"]["labels"]["name"] == "cilium-operator"
    assert deployment["spec"]["replicas"] == 1  # walkthrough: one cilium-operator pod
    template = deployment["spec"]["template"]
    assert match_label_selector_object(deployment["spec"]["selector"], template["metadata"]["labels"])
    assert template["metadata"]["labels"]["io.cilium/app"] == "operator"
    spec = template["spec"]
    assert spec["hostNetwork"] is True
    [operator] = spec["containers"]
    assert operator["image"].startswith("quay.io/cilium/operator-generic:v1.13.4@sha256:")
    assert DIGEST.search(operator["image"])
    assert not DIGEST.search(
        operator_deployment(CiliumValues(version="1.14.2"))["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
    )


def _fetch(kube: Kube) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for resource, obj in manifests(WALKTHROUGH):
        got = kube.get_or_none(resource, obj["metadata"]["name"], "kube-system")
        if got is not None:
            found[f"{resource.kind}/{obj['metadata']['name']}"] = got
    return found


def test_install_is_idempotent_and_uninstall_removes_it(kube: Kube) -> None:
    installer = LabCiliumInstaller(kube)
    installer.install(WALKTHROUGH)
    first = _fetch(kube)
    assert sorted(first) == [
        "ConfigMap/cilium-config",
        "DaemonSet/cilium",
        "Deployment/cilium-operator",
        "ServiceAccount/cilium",
        "ServiceAccount/cilium-operator",
    ]
    installer.install(WALKTHROUGH)
    LabCiliumInstaller(kube).install(CiliumValues(cluster_name="k3s-rpi", enable_bgp_control_plane=True))
    again = _fetch(kube)
    assert {k: v["metadata"]["uid"] for k, v in again.items()} == {
        k: v["metadata"]["uid"] for k, v in first.items()
    }
    assert again["ConfigMap/cilium-config"]["data"]["enable-bgp-control-plane"] == "true"

    installer.uninstall()
    assert _fetch(kube) == {}
    installer.uninstall()
    LabCiliumInstaller(kube).uninstall()
    assert kube.items(Resources.PODS, "kube-system") == []
