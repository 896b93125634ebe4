"""What a minimal k3s deploys on its own and keeps Pending until a CNI runs: CoreDNS and the
local-path provisioner (walkthrough: both `0/1 Pending` before Cilium), found by these selectors."""

from __future__ import annotations

from bgpconform import observe
from bgpconform.kubeapi.port import KubeApi

ADDON_SELECTORS = {"kube-system": "k8s-app=kube-dns", "local-path-storage": "app=local-path-provisioner"}


def addon_pods(kube: KubeApi) -> list[observe.PodView]:
    found: list[observe.PodView] = []
    for namespace, selector in ADDON_SELECTORS.items():
        found += observe.pods(kube, namespace, selector)
    return found
