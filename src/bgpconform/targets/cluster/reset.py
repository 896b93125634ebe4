"""Back to the walkthrough's start on a real cluster, after `cilium uninstall`: a k3s without a CNI.

`cilium uninstall` leaves Cilium's CRDs and custom resources (FACTS.md, "What a real cluster does that
a lab may not"), so a cluster that once had BGP would still serve `ciliumbgppeeringpolicies` and fail
"the BGP configuration resources are not served" for the harness's reasons; they are deleted here. Then
the state the first scenario asserts is waited for: every node NotReady (its runtime has no CNI config
any more) and CoreDNS and local-path Pending. Their running pods keep their old sandboxes, so they are
deleted and come back Pending, as on a fresh k3s.
"""

from __future__ import annotations

from bgpconform import observe
from bgpconform.cilium.labels import AGENT_SELECTOR, OPERATOR_SELECTOR
from bgpconform.k3s_addons import ADDON_SELECTORS, addon_pods
from bgpconform.kubeapi.port import KubeApi, Resources
from bgpconform.topology import Topology
from bgpconform.waiting import wait_for

CILIUM_GROUP_SUFFIX = ".cilium.io"


def remove_cilium_crds(kube: KubeApi) -> list[str]:
    """Delete every `*.cilium.io` CRD (their objects go with them); returns their names."""
    names = [
        crd["metadata"]["name"]
        for crd in kube.items(Resources.CRDS)
        if str(crd["metadata"]["name"]).endswith(CILIUM_GROUP_SUFFIX)
    ]
    for name in names:
        kube.delete(Resources.CRDS, name)
    return names


def wait_without_cni(kube: KubeApi, topology: Topology, *, nodes_timeout: float, pods_timeout: float) -> None:
    """Cilium's pods gone, every node NotReady, the addon pods recreated and Pending."""
    wait_for(
        lambda: [
            *observe.pods(kube, "kube-system", AGENT_SELECTOR),
            *observe.pods(kube, "kube-system", OPERATOR_SELECTOR),
        ],
        lambda pods: not pods,
        expected="no Cilium agent or operator pod left after `cilium uninstall`",
        timeout=pods_timeout,
        describe=observe.pod_table,
    )
    names = {node.name for node in topology.nodes}
    wait_for(
        lambda: [view for view in observe.nodes(kube) if view.name in names],
        lambda views: len(views) == len(names) and not any(view.ready for view in views),
        expected=(
            "every node NotReady once Cilium is gone (if they stay Ready, Cilium's CNI config is still in "
            "/var/lib/rancher/k3s/agent/etc/cni/net.d on the nodes, as with cni.uninstall=false: remove "
            "it there)"
        ),
        timeout=nodes_timeout,
        describe=lambda views: "; ".join(f"{v.name}: {'Ready' if v.ready else 'NotReady'}" for v in views),
    )
    for namespace, selector in ADDON_SELECTORS.items():
        for pod in kube.items(Resources.PODS, namespace, label_selector=selector):
            kube.delete(Resources.PODS, pod["metadata"]["name"], namespace)
    wait_for(
        lambda: addon_pods(kube),
        lambda views: (
            {v.namespace for v in views} == set(ADDON_SELECTORS) and all(v.status == "Pending" for v in views)
        ),
        expected="CoreDNS and local-path-provisioner recreated and Pending, as on a k3s without a CNI",
        timeout=pods_timeout,
        describe=observe.pod_table,
    )
