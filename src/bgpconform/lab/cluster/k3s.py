"""What a minimal k3s server deploys on its own, before any CNI: the walkthrough's starting point.

k3s applies the manifests under `/var/lib/rancher/k3s/server/manifests` through the API as soon as it
is up. With `--flannel-backend=none --disable-network-policy --disable=traefik,servicelb,metrics-server
--disable-kube-proxy` (FACTS.md, "k3s and k3d") what remains is CoreDNS and the local-path
provisioner, whose pods stay Pending while every node is NotReady (walkthrough: `coredns-5d78c9869d-p5svm`
and `local-path-provisioner-6bc4bddd6b-xpn8h`, both `0/1 Pending`). Images and versions are the ones
k3s v1.27.3 ships; the lab runs them as idle programs (`bgpconform.lab.cluster.images`).
"""

from __future__ import annotations

import textwrap
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, KubeResource, Resources
from bgpconform.lab import defects
from bgpconform.lab.cluster.controller import Controller
from bgpconform.topology import Topology

COREDNS_IMAGE = "rancher/mirrored-coredns-coredns:1.10.1"
LOCAL_PATH_IMAGE = "rancher/local-path-provisioner:v0.0.24"
CLUSTER_DNS_IP = "10.43.0.10"  # k3s default: the tenth address of the service CIDR 10.43.0.0/16
FIELD_MANAGER = "k3s"

_CRITICAL_TOLERATIONS: list[dict[str, Any]] = [
    {"key": "CriticalAddonsOnly", "operator": "Exists"},
    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
]


def _coredns() -> list[tuple[KubeResource, dict[str, Any]]]:
    labels = {"k8s-app": "kube-dns"}
    corefile = textwrap.dedent(
        """\
        .:53 {
            errors
            health
            ready
            kubernetes cluster.local in-addr.arpa ip6.arpa {
              pods insecure
              fallthrough in-addr.arpa ip6.arpa
            }
            hosts /etc/coredns/NodeHosts {
              ttl 60
              reload 15s
              fallthrough
            }
            prometheus :9153
            forward . /etc/resolv.conf
            cache 30
            loop
            reload
            loadbalance
        }
        """
    )
    deployment = {
        "metadata": {
            "name": "coredns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
        },
        "spec": {
            "revisionHistoryLimit": 0,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": _CRITICAL_TOLERATIONS,
                    "containers": [
                        {
                            "name": "coredns",
                            "image": COREDNS_IMAGE,
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [
                                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                            ],
                            "resources": {
                                "limits": {"memory": "170Mi"},
                                "requests": {"cpu": "100m", "memory": "70Mi"},
                            },
                        }
                    ],
                },
            },
        },
    }
    service = {
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "selector": labels,
            "clusterIP": CLUSTER_DNS_IP,
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                {"name": "metrics", "port": 9153, "protocol": "TCP"},
            ],
        },
    }
    return [
        (Resources.SERVICE_ACCOUNTS, {"metadata": {"name": "coredns", "namespace": "kube-system"}}),
        (
            Resources.CONFIGMAPS,
            {"metadata": {"name": "coredns", "namespace": "kube-system"}, "data": {"Corefile": corefile}},
        ),
        (Resources.DEPLOYMENTS, deployment),
        (Resources.SERVICES, service),
    ]


def _local_path() -> list[tuple[KubeResource, dict[str, Any]]]:
    labels = {"app": "local-path-provisioner"}
    deployment = {
        "metadata": {"name": "local-path-provisioner", "namespace": "local-path-storage"},
        "spec": {
            "revisionHistoryLimit": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "local-path-provisioner-service-account",
                    "tolerations": _CRITICAL_TOLERATIONS,
                    "containers": [
                        {
                            "name": "local-path-provisioner",
                            "image": LOCAL_PATH_IMAGE,
                            "command": [
                                "local-path-provisioner",
                                "start",
                                "--config",
                                "/etc/config/config.json",
                            ],
                        }
                    ],
                },
            },
        },
    }
    return [
        (Resources.NAMESPACES, {"metadata": {"name": "local-path-storage"}}),
        (
            Resources.SERVICE_ACCOUNTS,
            {
                "metadata": {
                    "name": "local-path-provisioner-service-account",
                    "namespace": "local-path-storage",
                }
            },
        ),
        (Resources.DEPLOYMENTS, deployment),
    ]


# Defect `addons-on-host-network`: the addon manifests as some racks edit them, to run "before the
# network": on the host network and tolerating every taint, the not-ready one included.
_EVERY_TAINT: list[dict[str, Any]] = [{"operator": "Exists"}]


def _on_host_network(objects: list[tuple[KubeResource, dict[str, Any]]]) -> None:
    for resource, obj in objects:
        if resource is Resources.DEPLOYMENTS:
            spec = obj["spec"]["template"]["spec"]
            spec["hostNetwork"] = True
            spec["tolerations"] = _EVERY_TAINT


def bootstrap_objects() -> list[tuple[KubeResource, dict[str, Any]]]:
    """The objects in the order k3s's deploy controller creates them."""
    objects = [*_coredns(), *_local_path()]
    if defects.active("addons-on-host-network"):
        _on_host_network(objects)
    return objects


def leftover_manifests(topology: Topology) -> list[tuple[KubeResource, dict[str, Any]]]:
    """Manifests an earlier piece of work left in k3s's auto-deploy directory (defects only)."""
    if not defects.active("node-config-disables-bgp"):
        return []
    node = max(node.name for node in topology.bgp_nodes)
    node_config = {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumNodeConfig",
        "metadata": {"name": "bgp-rollout", "namespace": "kube-system"},
        "spec": {
            "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": node}},
            "defaults": {"enable-bgp-control-plane": "false"},
        },
    }
    return [(Resources.CILIUM_NODE_CONFIGS, node_config)]


class AutoDeploy(Controller):
    """k3s's deploy controller for manifests of kinds not served yet: it applies them once they are."""

    name = "k3s-deploy"

    def __init__(self, kube: Kube, objects: list[tuple[KubeResource, dict[str, Any]]]) -> None:
        super().__init__(kube, resync=1.0)
        self._pending = list(objects)

    def reconcile(self) -> None:
        waiting = []
        for resource, obj in self._pending:
            try:
                self.kube.create(resource, obj, obj["metadata"].get("namespace"))
            except ApiException as exc:
                if exc.status == 404:  # its CRD is not served yet
                    waiting.append((resource, obj))
                elif exc.status != 409:
                    raise
        self._pending = waiting


def deploy_bootstrap(kube: Kube) -> None:
    """Create what is missing; an object already there is left as it is, as k3s leaves edited addons."""
    for resource, obj in bootstrap_objects():
        try:
            kube.create(resource, obj, obj["metadata"].get("namespace"))
        except ApiException as exc:
            if exc.status != 409:  # already there
                raise
