"""kube-controller-manager's DaemonSet controller: one pod per eligible node, replaced on change.

Eligibility is `NodeShouldRunDaemonPod`: the template's nodeSelector and required node affinity, and its
tolerations plus the ones the controller adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`:
not-ready and unreachable NoExecute, disk-, memory-, pid-pressure and unschedulable NoSchedule,
network-unavailable NoSchedule for hostNetwork pods). The not-ready toleration is NoExecute, so it does
not cover the not-ready NoSchedule taint of a NotReady node: a DaemonSet runs there only if its own
tolerations do, as Cilium's `operator: Exists` does. Pods are named from generateName `<ds>-`
(`cilium-6fnjv`), labelled `controller-revision-hash` and `pod-template-generation`, and pinned with
the node affinity `matchFields metadata.name In [node]` (since 1.12) for the scheduler to bind.
RollingUpdate replaces old pods at most maxUnavailable at a time: an old pod is deleted, its
replacement must be available before the next goes.

Simplified against the real one: no ControllerRevision objects (the lab's API does not serve them;
the hash is of the template, as the revision's would be), no maxSurge, failed pods are deleted without
backoff, and daemon pods on nodes that no longer exist are deleted here rather than by the pod GC.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, Resources
from bgpconform.kubeapi.intstr import int_or_percent
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.names import pod_template_hash
from bgpconform.lab.cluster.replicaset import (
    Expectations,
    WakeTimer,
    available_soon,
    by_controller,
    collect_orphans,
    epoch,
    is_stale,
    key_of,
    owner_reference,
    pod_from_template,
    pod_is_available,
    pod_is_ready,
    status_patch,
)
from bgpconform.lab.cluster.scheduler import (
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    effective_taints,
    matches_node_affinity,
    untolerated_taint,
)

Obj = dict[str, Any]

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"},
    {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION: Obj = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def daemon_pod_spec(template_spec: Mapping[str, Any]) -> Obj:
    """The template's spec with the daemon tolerations added where no equal one is present."""
    spec = copy.deepcopy(dict(template_spec))
    tolerations: list[Obj] = spec.setdefault("tolerations", [])
    extra = [*DAEMON_TOLERATIONS, *([HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else [])]
    fields = ("key", "operator", "value", "effect")
    for toleration in extra:
        if not any(all(t.get(f) == toleration.get(f) for f in fields) for t in tolerations):
            tolerations.append(dict(toleration))
    return spec


def pin_to_node(spec: Obj, node: str) -> None:
    """`ReplaceDaemonSetPodNodeNameNodeAffinity`: every required term gets `metadata.name In [node]`."""
    requirement = {"key": "metadata.name", "operator": "In", "values": [node]}
    node_affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchFields": [requirement]}]
        }
        return
    for term in terms:
        term["matchFields"] = [dict(requirement)]


def target_node(pod: Mapping[str, Any]) -> str | None:
    """`GetTargetNodeName`: the bound node, else the node the matchFields affinity pins the pod to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            values = field.get("values") or []
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None


def should_run(spec: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[bool, bool]:
    """`NodeShouldRunDaemonPod`: (should run, should keep running); a pod whose node gained only an
    untolerated NoSchedule taint stays, one with an untolerated NoExecute taint goes."""
    name = node["metadata"]["name"]
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False, False
    if not matches_node_affinity(spec, node):
        return False, False
    tolerations = spec.get("tolerations") or []
    taints = effective_taints(node)
    if untolerated_taint(tolerations, taints) is None:
        return True, True
    no_execute = [t for t in taints if t.get("effect") == "NoExecute"]
    return False, untolerated_taint(tolerations, no_execute) is None


class DaemonSetController(Controller):
    """Runs one pod of each DaemonSet on every eligible node, as kube-controller-manager's does."""

    name = "daemonset-controller"

    def __init__(self, kube: Kube, *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.daemonsets = self.inform(Resources.DAEMONSETS)
        self.pods = self.inform(Resources.PODS)
        self.nodes = self.inform(Resources.NODES)
        self.expectations = Expectations()
        self.timer = WakeTimer(self.wake)

    def on_stop(self) -> None:
        self.timer.cancel()

    def reconcile(self) -> None:
        nodes = sorted(self.nodes.objects(), key=lambda n: n["metadata"]["name"])
        pods = self.pods.objects()
        owned = by_controller(pods)
        daemonsets = self.daemonsets.objects()
        self.expectations.forget({key_of(ds) for ds in daemonsets})
        uids = {ds["metadata"]["uid"] for ds in daemonsets}
        collect_orphans(self.kube, Resources.DAEMONSETS, Resources.PODS, pods, uids)
        for ds in daemonsets:
            if self.stopping:
                return
            try:
                self.sync(ds, owned.get(ds["metadata"]["uid"], []), nodes)
            except ApiException as exc:
                if not is_stale(exc):
                    raise
                self.wake()

    def sync(self, ds: Obj, owned: list[Obj], nodes: list[Obj]) -> None:
        meta, spec = ds["metadata"], ds.get("spec") or {}
        template = spec.get("template") or {}
        revision = pod_template_hash(template, (ds.get("status") or {}).get("collisionCount"))
        pod_spec = daemon_pod_spec(template.get("spec") or {})
        min_ready = int(spec.get("minReadySeconds") or 0)
        live = [pod for pod in owned if not pod["metadata"].get("deletionTimestamp")]
        by_node: dict[str, list[Obj]] = {}
        for pod in sorted(live, key=lambda p: epoch(p["metadata"].get("creationTimestamp"))):
            by_node.setdefault(target_node(pod) or "", []).append(pod)
        eligibility = {node["metadata"]["name"]: should_run(pod_spec, node) for node in nodes}
        key = key_of(ds)
        if not meta.get("deletionTimestamp") and self.expectations.satisfied(
            key, {pod["metadata"]["name"] for pod in live}
        ):
            changed = self.manage(ds, revision, pod_spec, eligibility, by_node)
            if (
                not changed
                and (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
            ):
                self.roll(ds, revision, eligibility, by_node, min_ready)
        self.write_status(ds, revision, eligibility, by_node, min_ready)

    def manage(
        self,
        ds: Obj,
        revision: str,
        pod_spec: Obj,
        eligibility: Mapping[str, tuple[bool, bool]],
        by_node: Mapping[str, list[Obj]],
    ) -> bool:
        """`manage`: create where a pod is missing, delete failed, duplicate and misplaced pods."""
        doomed: list[Obj] = []
        missing: list[str] = []
        for node, pods in by_node.items():
            if node not in eligibility:
                doomed.extend(pods)
        for node, (run, keep) in eligibility.items():
            pods = by_node.get(node, [])
            if not run:
                if not keep:
                    doomed.extend(pods)
                continue
            running = [p for p in pods if (p.get("status") or {}).get("phase") != "Failed"]
            doomed.extend(p for p in pods if p not in running)
            doomed.extend(running[1:])
            if not running:
                missing.append(node)
        for pod in doomed:
            self.delete(ds, pod)
        for node in missing:
            self.create(ds, revision, pod_spec, node)
        return bool(doomed or missing)

    def roll(
        self,
        ds: Obj,
        revision: str,
        eligibility: Mapping[str, tuple[bool, bool]],
        by_node: Mapping[str, list[Obj]],
        min_ready: int,
    ) -> None:
        """`rollingUpdate` without surge: delete old pods while fewer than maxUnavailable are down."""
        wanted = [node for node, (run, _) in eligibility.items() if run]
        rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        max_unavailable = int_or_percent(rolling.get("maxUnavailable", 1), len(wanted), round_up=True) or 1
        unavailable = 0
        replace_now: list[Obj] = []
        candidates: list[Obj] = []
        for node in wanted:
            pods = by_node.get(node, [])
            if len(pods) != 1:
                unavailable += 1
                continue
            pod = pods[0]
            if pod["metadata"].get("labels", {}).get(HASH_LABEL) == revision:
                if not pod_is_available(pod, min_ready):
                    unavailable += 1
            elif not pod_is_available(pod, min_ready):
                replace_now.append(pod)
            else:
                candidates.append(pod)
        budget = max(0, max_unavailable - unavailable)
        for pod in [*replace_now, *candidates[:budget]]:
            self.delete(ds, pod)

    def create(self, ds: Obj, revision: str, pod_spec: Obj, node: str) -> None:
        meta = ds["metadata"]
        template = (ds.get("spec") or {}).get("template") or {}
        ref = owner_reference(ds, "apps/v1", "DaemonSet")
        pod = pod_from_template(template, f"{meta['name']}-", meta["namespace"], ref)
        generation = (meta.get("annotations") or {}).get(TEMPLATE_GENERATION) or meta.get("generation", 1)
        pod["metadata"]["labels"][HASH_LABEL] = revision
        pod["metadata"]["labels"][GENERATION_LABEL] = str(generation)
        pod["spec"] = copy.deepcopy(pod_spec)
        pin_to_node(pod["spec"], node)
        created = self.kube.create(Resources.PODS, pod, meta["namespace"])
        self.expectations.expect(key_of(ds), created["metadata"]["name"], present=True)

    def delete(self, ds: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        self.kube.delete(Resources.PODS, name, pod["metadata"]["namespace"])
        self.expectations.expect(key_of(ds), name, present=False)

    def write_status(
        self,
        ds: Obj,
        revision: str,
        eligibility: Mapping[str, tuple[bool, bool]],
        by_node: Mapping[str, list[Obj]],
        min_ready: int,
    ) -> None:
        """`updateDaemonSetStatus`: counts over eligible nodes, each judged by its oldest pod."""
        desired = current = misscheduled = ready = available = updated = 0
        firsts: list[Obj] = []
        for node, (run, _) in eligibility.items():
            pods = by_node.get(node, [])
            if not run:
                misscheduled += 1 if pods else 0
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = pods[0]
            firsts.append(pod)
            if pod_is_ready(pod):
                ready += 1
                available += 1 if pod_is_available(pod, min_ready) else 0
            if pod["metadata"].get("labels", {}).get(HASH_LABEL) == revision:
                updated += 1
        meta = ds["metadata"]
        wanted = {
            "currentNumberScheduled": current,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available or None,
            "numberUnavailable": (desired - available) or None,
            "updatedNumberScheduled": updated or None,
            "observedGeneration": meta.get("generation"),
        }
        patch = status_patch(ds.get("status") or {}, wanted)
        if patch is not None:
            self.kube.patch(
                Resources.DAEMONSETS, meta["name"], {"status": patch}, meta["namespace"], subresource="status"
            )
        soon = available_soon(firsts, min_ready)
        if soon is not None:
            self.timer.after(soon)
