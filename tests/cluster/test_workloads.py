"""ReplicaSet, Deployment and DaemonSet controllers, observed through the API as kubectl would."""

from __future__ import annotations

import re
import threading
from typing import Any

from bgpconform.kubeapi.client import STRATEGIC_MERGE_PATCH, Kube, Resources
from bgpconform.lab.cluster.daemonset import DaemonSetController
from bgpconform.lab.cluster.deployment import DeploymentController
from bgpconform.lab.cluster.names import SAFE_ALPHABET, pod_template_hash, random_suffix
from bgpconform.lab.cluster.nodelifecycle import NodeLifecycleController
from bgpconform.lab.cluster.replicaset import ReplicaSetController, pod_is_ready
from bgpconform.lab.cluster.scheduler import Scheduler
from bgpconform.waiting import wait_for
from tests.cluster.conftest import (
    HASH,
    SUFFIX,
    FakeKubelet,
    Kubectl,
    Start,
    add_node,
    names,
    pods,
    set_node_ready,
    wait_object,
    wait_pods,
)

Obj = dict[str, Any]


def template(app: str, **spec: Any) -> Obj:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [{"name": app, "image": "nginx:1.25", "ports": [{"containerPort": 80}]}],
            **spec,
        },
    }


def workload(name: str, replicas: int | None = None, **spec: Any) -> Obj:
    body: Obj = {
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name, **spec)},
    }
    if replicas is not None:
        body["spec"]["replicas"] = replicas
    return body


class ReadyWatch:
    """Counts the ready pods of a selector after every watch event, to see how low it went."""

    def __init__(self, kube: Kube, selector: str) -> None:
        listed = kube.listing(Resources.PODS, "default", label_selector=selector)
        self.ready = {p["metadata"]["name"]: pod_is_ready(p) for p in listed["items"]}
        self.lowest = sum(self.ready.values())
        self.history: list[int] = [self.lowest]
        self.stream = kube.watch(
            Resources.PODS,
            "default",
            resource_version=listed["metadata"]["resourceVersion"],
            label_selector=selector,
        )
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        for event in self.stream:
            obj = event["object"]
            if event["type"] == "DELETED":
                self.ready.pop(obj["metadata"]["name"], None)
            elif event["type"] in ("ADDED", "MODIFIED"):
                self.ready[obj["metadata"]["name"]] = pod_is_ready(obj)
            else:
                continue
            self.history.append(sum(self.ready.values()))
            self.lowest = min(self.lowest, self.history[-1])

    def __enter__(self) -> ReadyWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()
        self.thread.join(timeout=10)


def start_cluster(start: Start) -> None:
    """Everything a k3s server runs for workloads, plus the stand-in kubelet."""
    start(NodeLifecycleController)
    start(Scheduler)
    start(ReplicaSetController)
    start(DeploymentController)
    start(DaemonSetController)
    start(FakeKubelet)


def restart(kube: Kube, resource: Any, name: str, when: str) -> None:
    """What `kubectl rollout restart` sends."""
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": when}}}}}
    kube.patch(resource, name, patch, "default", content_type=STRATEGIC_MERGE_PATCH)


# -- names ---------------------------------------------------------------------------------------


def test_pod_template_hash_is_stable_and_looks_real() -> None:
    first = pod_template_hash(template("web"))
    assert first == pod_template_hash(template("web"))
    assert re.fullmatch(HASH, first)
    assert pod_template_hash(template("other")) != first
    assert pod_template_hash(template("web"), 1) != first
    # rand.SafeEncodeString over the decimal sum: digits map into "456789bcdf" only
    assert set(first) <= set("456789bcdf")
    suffix = random_suffix()
    assert len(suffix) == 5
    assert set(suffix) <= set(SAFE_ALPHABET)
    assert len(random_suffix(8)) == 8


# -- ReplicaSet ----------------------------------------------------------------------------------


def test_replicaset_keeps_its_count_and_replaces_deleted_pods(kube: Kube, start: Start) -> None:
    start(ReplicaSetController)
    rs = kube.create(Resources.REPLICASETS, workload("web", 2), "default")
    found = wait_pods(kube, lambda p: len(p) == 2, "two pods for web", label_selector="app=web")
    for pod in found:
        assert re.fullmatch(f"web-{SUFFIX}", pod["metadata"]["name"])
        assert pod["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": rs["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    before = names(found)
    kube.delete(Resources.PODS, before[0], "default")
    after = names(
        wait_pods(
            kube,
            lambda p: len(p) == 2 and before[0] not in names(p),
            "the deleted pod replaced",
            label_selector="app=web",
        )
    )
    assert before[1] in after
    assert len(set(after) - set(before)) == 1
    status = wait_object(
        lambda: kube.get(Resources.REPLICASETS, "web", "default"),
        lambda o: o.get("status", {}).get("replicas") == 2 and o["status"].get("observedGeneration") == 1,
        "status.replicas 2",
    )["status"]
    assert status["fullyLabeledReplicas"] == 2
    assert "readyReplicas" not in status  # nobody runs these pods

    kube.patch(Resources.REPLICASETS, "web", {"spec": {"replicas": 1}}, "default")
    wait_pods(kube, lambda p: len(p) == 1, "scaled down to one pod", label_selector="app=web")
    wait_object(
        lambda: kube.get(Resources.REPLICASETS, "web", "default"),
        lambda o: o.get("status", {}).get("replicas") == 1 and o["status"].get("observedGeneration") == 2,
        "status.replicas 1 for generation 2",
    )


# -- Deployment ----------------------------------------------------------------------------------


def test_deployment_rolls_out_and_restarts(kube: Kube, start: Start, kubectl: Kubectl) -> None:
    add_node(kube, "k3s-worker-node-01", ready=True)
    add_node(kube, "k3s-worker-node-02", ready=True)
    start_cluster(start)
    kube.create(Resources.DEPLOYMENTS, workload("cilium-operator", 2), "default")

    deployment = wait_object(
        lambda: kube.get(Resources.DEPLOYMENTS, "cilium-operator", "default"),
        lambda o: (
            o.get("status", {}).get("availableReplicas") == 2
            and any(c["reason"] == "NewReplicaSetAvailable" for c in o["status"].get("conditions", []))
        ),
        "deployment available",
    )
    status = deployment["status"]
    assert status["replicas"] == status["updatedReplicas"] == status["readyReplicas"] == 2
    assert "unavailableReplicas" not in status
    assert status["observedGeneration"] == 1
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Available"]["message"] == "Deployment has minimum availability."
    assert conditions["Progressing"]["status"] == "True"
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

    [rs] = kube.items(Resources.REPLICASETS, "default")
    rs_name = rs["metadata"]["name"]
    assert re.fullmatch(f"cilium-operator-{HASH}", rs_name)
    hash_value = rs_name.removeprefix("cilium-operator-")
    assert conditions["Progressing"]["message"] == f'ReplicaSet "{rs_name}" has successfully progressed.'
    assert rs["metadata"]["labels"]["pod-template-hash"] == hash_value
    assert rs["spec"]["selector"]["matchLabels"] == {
        "app": "cilium-operator",
        "pod-template-hash": hash_value,
    }
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == hash_value
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    first = wait_pods(kube, lambda p: len(p) == 2, "two operator pods", label_selector="app=cilium-operator")
    for pod in first:
        assert re.fullmatch(f"{rs_name}-{SUFFIX}", pod["metadata"]["name"])
        assert pod["metadata"]["labels"]["pod-template-hash"] == hash_value
    assert {p["spec"]["nodeName"] for p in first} == {"k3s-worker-node-01", "k3s-worker-node-02"}
    kubectl("rollout", "status", "deployment/cilium-operator", "--timeout=20s")

    # kubectl rollout restart: a new ReplicaSet, every pod replaced, the old one kept at 0
    kubectl("rollout", "restart", "deployment/cilium-operator")
    done = kubectl("rollout", "status", "deployment/cilium-operator", "--timeout=30s")
    assert 'deployment "cilium-operator" successfully rolled out' in done.stdout
    second = wait_pods(
        kube,
        lambda p: len(p) == 2 and not set(names(p)) & set(names(first)),
        "both pods replaced",
        label_selector="app=cilium-operator",
    )
    replicasets = {r["metadata"]["name"]: r for r in kube.items(Resources.REPLICASETS, "default")}
    assert len(replicasets) == 2
    new_name = next(name for name in replicasets if name != rs_name)
    assert replicasets[rs_name]["spec"]["replicas"] == 0
    assert replicasets[new_name]["spec"]["replicas"] == 2
    assert replicasets[new_name]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert all(p["metadata"]["name"].startswith(f"{new_name}-") for p in second)
    deployment = kube.get(Resources.DEPLOYMENTS, "cilium-operator", "default")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    table = kubectl("get", "deploy,rs,pods", "-o", "wide").stdout
    assert re.search(r"deployment\.apps/cilium-operator\s+2/2\s+2\s+2\s", table), table
    assert re.search(rf"replicaset\.apps/{new_name}\s+2\s+2\s+2\s", table), table
    assert re.search(rf"replicaset\.apps/{rs_name}\s+0\s+0\s+0\s", table), table
    assert len(re.findall(r"\s1/1\s+Running\s", table)) == 2, table


def test_deployment_waits_while_no_node_takes_its_pods(kube: Kube, start: Start, kubectl: Kubectl) -> None:
    add_node(kube, "k3s-control-plane-01", ready=False)
    start_cluster(start)
    kube.create(Resources.DEPLOYMENTS, workload("coredns", 1), "default")
    deployment = wait_object(
        lambda: kube.get(Resources.DEPLOYMENTS, "coredns", "default"),
        lambda o: o.get("status", {}).get("unavailableReplicas") == 1,
        "coredns unavailable",
    )
    conditions = {c["type"]: c for c in deployment["status"]["conditions"]}
    assert conditions["Available"]["reason"] == "MinimumReplicasUnavailable"
    assert conditions["Available"]["status"] == "False"
    assert conditions["Progressing"]["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")
    pending = kubectl("rollout", "status", "deployment/coredns", "--watch=false").stdout
    assert "0 of 1 updated replicas are available" in pending, pending
    set_node_ready(kube, "k3s-control-plane-01", True)
    kubectl("rollout", "status", "deployment/coredns", "--timeout=20s")


# -- DaemonSet -----------------------------------------------------------------------------------


def test_daemonset_runs_one_pod_per_node_and_rolls(kube: Kube, start: Start, kubectl: Kubectl) -> None:
    for index, ready in ((1, True), (2, True), (3, False)):
        add_node(kube, f"k3s-worker-node-0{index}", ready=ready)
    start_cluster(start)
    # Cilium's agent tolerates everything and uses the host network
    ds = workload("cilium", hostNetwork=True, tolerations=[{"operator": "Exists"}])
    kube.create(Resources.DAEMONSETS, ds, "default")
    first = wait_pods(
        kube,
        lambda p: len(p) == 3 and all(x.get("status", {}).get("podIP") for x in p),
        "a running cilium pod on each of the three nodes, the NotReady one included",
        label_selector="app=cilium",
    )
    nodes = sorted(p["spec"]["nodeName"] for p in first)
    assert nodes == ["k3s-worker-node-01", "k3s-worker-node-02", "k3s-worker-node-03"]
    revision = pod_template_hash(kube.get(Resources.DAEMONSETS, "cilium", "default")["spec"]["template"])
    for pod in first:
        meta, spec = pod["metadata"], pod["spec"]
        assert re.fullmatch(f"cilium-{SUFFIX}", meta["name"])
        assert meta["labels"]["controller-revision-hash"] == revision
        assert meta["labels"]["pod-template-generation"] == "1"
        assert meta["ownerReferences"][0]["kind"] == "DaemonSet"
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms == {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [spec["nodeName"]]}]}
            ]
        }
        keys = {(t.get("key"), t.get("effect")) for t in spec["tolerations"]}
        assert {
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/network-unavailable", "NoSchedule"),
        } <= keys
    status = wait_object(
        lambda: kube.get(Resources.DAEMONSETS, "cilium", "default"),
        lambda o: o.get("status", {}).get("numberAvailable") == 3,
        "three available",
    )["status"]
    assert status["desiredNumberScheduled"] == status["currentNumberScheduled"] == status["numberReady"] == 3
    assert status["updatedNumberScheduled"] == 3
    assert status["numberMisscheduled"] == 0
    assert "numberUnavailable" not in status

    # a deleted agent pod comes back on the same node under a new name
    victim = first[0]
    kube.delete(Resources.PODS, victim["metadata"]["name"], "default")
    again = wait_pods(
        kube,
        lambda p: (
            len(p) == 3
            and victim["metadata"]["name"] not in names(p)
            and all(x.get("status", {}).get("podIP") for x in p)
        ),
        "the deleted agent replaced and running",
        label_selector="app=cilium",
    )
    assert sorted(p["spec"]["nodeName"] for p in again) == nodes

    # a template change replaces every pod, one node at a time (maxUnavailable 1)
    with ReadyWatch(kube, "app=cilium") as watch:
        kubectl("rollout", "restart", "daemonset/cilium")
        kubectl("rollout", "status", "daemonset/cilium", "--timeout=30s")
        now = names(pods(kube, label_selector="app=cilium"))
        wait_for(
            lambda: dict(watch.ready),
            lambda seen: sorted(seen) == now and all(seen.values()),
            expected=f"the watch caught up with {now}, all ready",
            timeout=10.0,
        )
    assert watch.lowest == 2, watch.history
    rolled = wait_pods(
        kube,
        lambda p: len(p) == 3 and not set(names(p)) & set(names(again)),
        "every agent replaced",
        label_selector="app=cilium",
    )
    assert sorted(p["spec"]["nodeName"] for p in rolled) == nodes
    assert len({p["metadata"]["labels"]["controller-revision-hash"] for p in rolled}) == 1
    assert rolled[0]["metadata"]["labels"]["controller-revision-hash"] != revision
    table = kubectl("get", "ds", "cilium").stdout
    assert re.search(r"cilium\s+3\s+3\s+3\s+3\s+3\s+<none>", table), table


def test_daemonset_without_tolerations_skips_not_ready_nodes(kube: Kube, start: Start) -> None:
    """The automatic not-ready toleration is NoExecute: the NoSchedule taint still keeps pods off."""
    add_node(kube, "k3s-worker-node-01", ready=True)
    add_node(kube, "k3s-worker-node-02", ready=False)
    add_node(kube, "k3s-worker-node-03", ready=True, labels={"bgp-policy": "a"})
    start_cluster(start)
    kube.create(Resources.DAEMONSETS, workload("plain"), "default")
    selected = workload("selected", nodeSelector={"bgp-policy": "a"})
    kube.create(Resources.DAEMONSETS, selected, "default")
    wait_pods(kube, lambda p: len(p) == 2, "plain on the two Ready nodes", label_selector="app=plain")
    wait_pods(kube, lambda p: len(p) == 1, "selected on the labelled node", label_selector="app=selected")
    status = wait_object(
        lambda: kube.get(Resources.DAEMONSETS, "plain", "default"),
        lambda o: o.get("status", {}).get("numberReady") == 2,
        "plain: two ready",
    )["status"]
    assert status["desiredNumberScheduled"] == 2
    set_node_ready(kube, "k3s-worker-node-02", True)
    found = wait_pods(
        kube,
        lambda p: len(p) == 3 and all(x["spec"].get("nodeName") for x in p),
        "plain bound on all three",
        label_selector="app=plain",
    )
    assert sorted(p["spec"].get("nodeName") or "" for p in found) == [
        "k3s-worker-node-01",
        "k3s-worker-node-02",
        "k3s-worker-node-03",
    ]
    [pod] = [p for p in found if p["spec"].get("nodeName") == "k3s-worker-node-02"]
    # a node that loses its label loses the pod selected by it
    kube.patch(Resources.NODES, "k3s-worker-node-03", {"metadata": {"labels": {"bgp-policy": None}}})
    wait_pods(kube, lambda p: not p, "selected gone", label_selector="app=selected")
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
