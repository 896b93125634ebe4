"""The scheduler and node lifecycle controller: Pending with the real message, bound once a node is Ready."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.lab.cluster.nodelifecycle import NodeLifecycleController, next_taints
from bgpconform.lab.cluster.scheduler import Scheduler, filter_reason, fit_error, tolerates
from tests.cluster.conftest import Kubectl, Start, add_node, set_node_ready, wait_object

Obj = dict[str, Any]

WALKTHROUGH_NODES = ("k3s-control-plane-01", "k3s-worker-node-01", "k3s-worker-node-02", "k3s-worker-node-03")
NOT_READY_MESSAGE = (
    "0/4 nodes are available: 4 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. "
    "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.."
)


def pod(name: str, **spec: Any) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}], **spec},
    }


def scheduled_condition(found: Obj) -> Obj:
    conditions = found.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "PodScheduled"), {})


def wait_pod(kube: Kube, name: str, until: Any, expected: str) -> Obj:
    return wait_object(lambda: kube.get(Resources.PODS, name, "default"), until, expected)


# -- predicates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        ({"operator": "Exists"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, True),
        ({"key": "a", "operator": "Exists"}, {"key": "a", "value": "b", "effect": "NoExecute"}, True),
        ({"key": "a", "value": "b"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, True),
        ({"key": "a", "value": "c"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, False),
        (
            {"key": "a", "operator": "Exists", "effect": "NoExecute"},
            {"key": "a", "effect": "NoSchedule"},
            False,
        ),
    ],
)
def test_tolerations_match_as_kubernetes_matches_them(toleration: Obj, taint: Obj, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


def test_fit_error_words_reasons_as_kube_scheduler_127() -> None:
    reason = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    assert fit_error(4, {reason: 4}) == NOT_READY_MESSAGE
    mixed = fit_error(2, {reason: 1, "node(s) didn't match Pod's node affinity/selector": 1})
    assert mixed == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had "
        "untolerated taint {node.kubernetes.io/not-ready: }. preemption: 0/2 nodes are available: "
        "2 Preemption is not helpful for scheduling.."
    )
    assert fit_error(0, {}) == "no nodes available to schedule pods"


def test_filters_follow_the_default_plugin_order() -> None:
    ready = {"type": "Ready", "status": "True"}
    node: Obj = {
        "metadata": {"name": "n1", "labels": {"disk": "ssd"}},
        "spec": {
            "unschedulable": True,
            "taints": [{"key": "dedicated", "value": "bgp", "effect": "NoSchedule"}],
        },
        "status": {"conditions": [ready]},
    }
    assert filter_reason({}, node) == "node(s) were unschedulable"
    cordoned_ok = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert (
        filter_reason({"tolerations": cordoned_ok}, node) == "node(s) had untolerated taint {dedicated: bgp}"
    )
    everything = {"tolerations": [{"operator": "Exists"}]}
    assert filter_reason({**everything, "nodeSelector": {"disk": "hdd"}}, node) == (
        "node(s) didn't match Pod's node affinity/selector"
    )
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
                ]
            }
        }
    }
    assert filter_reason({**everything, "affinity": affinity}, node) is None
    # a NotReady node counts as tainted not-ready even before the lifecycle controller writes it
    node["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert filter_reason(everything, node) is None
    assert (
        filter_reason({"tolerations": [*cordoned_ok, {"key": "dedicated", "operator": "Exists"}]}, node)
        == "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    )


def test_lifecycle_taints_follow_conditions_and_keep_others() -> None:
    node: Obj = {
        "metadata": {"name": "n1"},
        "spec": {"taints": [{"key": "dedicated", "value": "bgp", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
    }
    assert next_taints(node) == [
        {"key": "dedicated", "value": "bgp", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
    ]
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    node["spec"]["taints"].append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    node["spec"]["unschedulable"] = True
    assert next_taints(node) == [
        {"key": "dedicated", "value": "bgp", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
    ]


# -- against the API -----------------------------------------------------------------------------


def test_pods_stay_pending_until_a_node_is_ready(kube: Kube, start: Start, kubectl: Kubectl) -> None:
    """The walkthrough before Cilium: four NotReady nodes, coredns Pending."""
    for name in WALKTHROUGH_NODES:
        add_node(kube, name, ready=False)
    start(NodeLifecycleController)
    start(Scheduler)
    kube.create(Resources.PODS, pod("coredns-5d78c9869d-p5svm"), "default")

    not_ready = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    wait_object(
        lambda: {"items": kube.items(Resources.NODES)},
        lambda found: all(not_ready in n["spec"].get("taints", []) for n in found["items"]),
        "every node tainted not-ready",
    )
    found = wait_pod(
        kube,
        "coredns-5d78c9869d-p5svm",
        lambda p: scheduled_condition(p).get("message") == NOT_READY_MESSAGE,
        "Unschedulable with the not-ready message",
    )
    condition = scheduled_condition(found)
    assert condition["status"] == "False"
    assert condition["reason"] == "Unschedulable"
    assert found["status"]["phase"] == "Pending"
    assert not found["spec"].get("nodeName")
    events = wait_object(
        lambda: {"items": kube.items(Resources.EVENTS, "default")},
        lambda e: any(x["reason"] == "FailedScheduling" for x in e["items"]),
        "a FailedScheduling event",
    )["items"]
    [failed] = [e for e in events if e["reason"] == "FailedScheduling"]
    assert failed["type"] == "Warning"
    assert failed["message"] == NOT_READY_MESSAGE
    assert failed["source"]["component"] == "default-scheduler"
    assert failed["involvedObject"]["name"] == "coredns-5d78c9869d-p5svm"
    table = kubectl("get", "pods").stdout
    assert "coredns-5d78c9869d-p5svm   0/1     Pending   0" in table, table

    set_node_ready(kube, "k3s-worker-node-02", True)
    bound = wait_pod(kube, "coredns-5d78c9869d-p5svm", lambda p: p["spec"].get("nodeName"), "coredns bound")
    assert bound["spec"]["nodeName"] == "k3s-worker-node-02"
    assert scheduled_condition(bound)["status"] == "True"
    wait_object(
        lambda: kube.get(Resources.NODES, "k3s-worker-node-02"),
        lambda n: not n["spec"].get("taints"),
        "the not-ready taint removed from the Ready node",
    )
    scheduled = [e for e in kube.items(Resources.EVENTS, "default") if e["reason"] == "Scheduled"]
    assert [e["message"] for e in scheduled] == [
        "Successfully assigned default/coredns-5d78c9869d-p5svm to k3s-worker-node-02"
    ]


def test_pods_spread_over_ready_nodes_and_honour_selectors(kube: Kube, start: Start) -> None:
    for name in WALKTHROUGH_NODES[1:]:
        add_node(kube, name, ready=True, labels={"rack": "a"} if name.endswith("01") else {})
    start(NodeLifecycleController)
    start(Scheduler)
    for index in range(6):
        kube.create(Resources.PODS, pod(f"nginx-{index}"), "default")
    kube.create(Resources.PODS, pod("pinned", nodeSelector={"rack": "a"}), "default")
    kube.create(Resources.PODS, pod("nowhere", nodeSelector={"rack": "b"}), "default")
    kube.create(Resources.PODS, pod("other-scheduler", schedulerName="my-scheduler"), "default")

    placed = wait_object(
        lambda: {"items": kube.items(Resources.PODS, "default")},
        lambda found: sum(1 for p in found["items"] if p["spec"].get("nodeName")) == 7,
        "seven pods bound",
    )["items"]
    by_name = {p["metadata"]["name"]: p for p in placed}
    assert by_name["pinned"]["spec"]["nodeName"] == "k3s-worker-node-01"
    counts = Counter(p["spec"]["nodeName"] for p in placed if p["spec"].get("nodeName"))
    assert sorted(counts.values()) == [2, 2, 3]
    assert not by_name["other-scheduler"]["spec"].get("nodeName")
    nowhere = wait_pod(
        kube, "nowhere", lambda p: scheduled_condition(p).get("reason") == "Unschedulable", "nowhere"
    )
    assert scheduled_condition(nowhere)["message"] == (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
    )
    # kubectl cordon: the lifecycle controller taints the node, the scheduler says it is unschedulable
    for name in WALKTHROUGH_NODES[1:]:
        kube.patch(Resources.NODES, name, {"spec": {"unschedulable": True}})
    kube.create(Resources.PODS, pod("late"), "default")
    late = wait_pod(
        kube, "late", lambda p: scheduled_condition(p).get("reason") == "Unschedulable", "late refused"
    )
    assert scheduled_condition(late)["message"].startswith(
        "0/3 nodes are available: 3 node(s) were unschedulable. "
    )


def test_operator_replicas_with_required_anti_affinity_take_a_node_each(kube: Kube, start: Start) -> None:
    """The chart's operator Deployment (two replicas under Helm) spreads by hostname: a third replica
    on two nodes stays Pending with kube-scheduler 1.27's InterPodAffinity reason."""
    for name in WALKTHROUGH_NODES[1:3]:
        add_node(kube, name, ready=True)
    start(NodeLifecycleController)
    start(Scheduler)
    spread = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"io.cilium/app": "operator"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    for index in range(3):
        body = pod(f"cilium-operator-{index}", affinity=spread)
        body["metadata"]["labels"] = {"io.cilium/app": "operator"}
        kube.create(Resources.PODS, body, "default")
    # A plain pod carrying the operator's label is refused where an operator runs, by their terms.
    impostor = pod("impostor")
    impostor["metadata"]["labels"] = {"io.cilium/app": "operator"}
    kube.create(Resources.PODS, impostor, "default")

    third = wait_pod(
        kube,
        "cilium-operator-2",
        lambda p: scheduled_condition(p).get("reason") == "Unschedulable",
        "the third replica refused",
    )
    assert scheduled_condition(third)["message"] == (
        "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
    )
    bound = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in kube.items(Resources.PODS, "default")}
    assert {bound["cilium-operator-0"], bound["cilium-operator-1"]} == set(WALKTHROUGH_NODES[1:3])
    refused = wait_pod(
        kube, "impostor", lambda p: scheduled_condition(p).get("reason") == "Unschedulable", "impostor"
    )
    assert (
        "2 node(s) didn't satisfy existing pods anti-affinity rules"
        in scheduled_condition(refused)["message"]
    )
