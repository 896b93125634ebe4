"""kube-scheduler, reduced to the filters the walkthrough exercises, and the predicates it shares.

A pod with no `spec.nodeName` and `schedulerName: default-scheduler` is bound to a node that passes the
1.27 default filters in their order (NodeUnschedulable, TaintToleration, NodeAffinity); among those the
one with the fewest pods wins, ties by name. A pod no node accepts stays Pending with condition
PodScheduled=False, reason Unschedulable, and the FitError message of kube-scheduler 1.27, e.g.
`0/4 nodes are available: 4 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.
preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling..` (the double dot is
real), plus a FailedScheduling event. That is why coredns is Pending in the walkthrough until a CNI
makes the nodes Ready.

Deviations: the lab's API server has no `pods/binding` subresource, so binding patches `spec.nodeName`
(with the cached resourceVersion as precondition, as a Binding refuses an already-bound pod) and sets
PodScheduled=True itself. A node whose Ready condition is not True counts as tainted
`node.kubernetes.io/not-ready:NoSchedule` (`unreachable` when Unknown) even before the node lifecycle
controller has written the taint, so the two controllers' ordering does not matter; no Ready check
beyond that, as the real scheduler has none (DaemonSets tolerating everything, like Cilium's, must run
on NotReady nodes). InterPodAffinity keeps only required anti-affinity, both ways (the pod's terms
against the pods on a node's topology domain, and those pods' terms against the pod): the chart's
operator Deployment spreads its replicas with it, so Helm's two replicas need two nodes. Every pod bound
to a node counts, terminating ones too, as in the scheduler's cache. No resources, ports, volumes, pod
affinity, spreading or preemption; every node is evaluated, without NodeAffinity's PreFilter narrowing
to matchFields nodes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from bgpconform.kubeapi.client import STRATEGIC_MERGE_PATCH, ApiException, Kube, Resources
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.replicaset import epoch, is_stale, selects, timestamp

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SCHEDULER_NAME = "default-scheduler"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

# Filter reasons, kube-scheduler 1.27 (pkg/scheduler/framework/plugins/*).
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
NO_NODES = "no nodes available to schedule pods"


# -- predicates ----------------------------------------------------------------------------------


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """`Toleration.ToleratesTaint`: effect (if set) and key (if set) equal; Exists or an equal value."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(
    tolerations: Iterable[Mapping[str, Any]], taints: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first NoSchedule/NoExecute taint no toleration covers (`FindMatchingUntoleratedTaint`)."""
    held = list(tolerations)
    for taint in taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(toleration, taint) for toleration in held):
            return taint
    return None


def node_ready(node: Mapping[str, Any]) -> str:
    """The Ready condition's status: "True", "False" or "Unknown"; absent counts as "False", the state a
    kubelet registers its node in (with the not-ready taint)."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status", "Unknown"))
    return "False"


def effective_taints(node: Mapping[str, Any]) -> list[Obj]:
    """The node's taints, plus the NoSchedule taint its Ready condition implies if not written yet."""
    taints: list[Obj] = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
    ready = node_ready(node)
    if ready != "True" and not any(
        t.get("key") in (NOT_READY, UNREACHABLE) and t.get("effect") == "NoSchedule" for t in taints
    ):
        taints.append({"key": UNREACHABLE if ready == "Unknown" else NOT_READY, "effect": "NoSchedule"})
    return taints


def _label_requirement(requirement: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = requirement.get("key", ""), requirement.get("operator")
    values = [str(v) for v in requirement.get("values") or []]
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _field_requirement(requirement: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """matchFields supports only `metadata.name` with In/NotIn, as `nodeaffinity` does."""
    if requirement.get("key") != "metadata.name":
        return False
    values = [str(v) for v in requirement.get("values") or []]
    name = node["metadata"]["name"]
    if requirement.get("operator") == "In":
        return name in values
    if requirement.get("operator") == "NotIn":
        return name not in values
    return False


def term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """A NodeSelectorTerm: all its requirements hold; a term with none matches nothing."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    return all(_label_requirement(r, labels) for r in expressions) and all(
        _field_requirement(r, node) for r in fields
    )


def required_terms(pod_spec: Mapping[str, Any]) -> list[Obj] | None:
    """requiredDuringSchedulingIgnoredDuringExecution's terms, or None when there is no such rule."""
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    terms: list[Obj] = list(required.get("nodeSelectorTerms") or [])
    return terms


def matches_node_affinity(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """`nodeSelector` (every label) and the required node affinity (any term), as NodeAffinity filters."""
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    terms = required_terms(pod_spec)
    return terms is None or any(term_matches(term, node) for term in terms)


def filter_reason(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """Why `node` cannot take the pod (the first failing default filter), or None when it can."""
    tolerations = pod_spec.get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable") and not any(
        tolerates(t, {"key": UNSCHEDULABLE, "effect": "NoSchedule"}) for t in tolerations
    ):
        return REASON_UNSCHEDULABLE
    taint = untolerated_taint(tolerations, effective_taints(node))
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"
    if not matches_node_affinity(pod_spec, node):
        return REASON_AFFINITY
    return None


def _anti_affinity_terms(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    anti = (pod_spec.get("affinity") or {}).get("podAntiAffinity") or {}
    return list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def _term_selects(term: Mapping[str, Any], term_namespace: str, other: Mapping[str, Any]) -> bool:
    """Whether a pod-affinity term of a pod in `term_namespace` selects `other` (namespaces: the
    term's list, else the pod's own)."""
    namespaces = term.get("namespaces") or [term_namespace]
    meta = other.get("metadata") or {}
    if meta.get("namespace") not in namespaces:
        return False
    return selects(term.get("labelSelector"), meta.get("labels") or {})


def _same_domain(
    term: Mapping[str, Any], node: Mapping[str, Any], other_node: Mapping[str, Any] | None
) -> bool:
    key = str(term.get("topologyKey") or "")
    mine = ((node.get("metadata") or {}).get("labels") or {}).get(key)
    theirs = (((other_node or {}).get("metadata") or {}).get("labels") or {}).get(key)
    return mine is not None and mine == theirs


def anti_affinity_reason(
    pod: Mapping[str, Any],
    node: Mapping[str, Any],
    placed: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> str | None:
    """InterPodAffinity's Filter for required anti-affinity: `placed` is every (pod, its node) bound."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    own_terms = _anti_affinity_terms(pod.get("spec") or {})
    for other, other_node in placed:
        if any(_same_domain(t, node, other_node) and _term_selects(t, namespace, other) for t in own_terms):
            return REASON_ANTI_AFFINITY
        other_namespace = str((other.get("metadata") or {}).get("namespace") or "default")
        for term in _anti_affinity_terms(other.get("spec") or {}):
            if _same_domain(term, node, other_node) and _term_selects(term, other_namespace, pod):
                return REASON_EXISTING_ANTI_AFFINITY
    return None


def fit_error(total_nodes: int, reasons: Mapping[str, int], preemption_policy: str | None = None) -> str:
    """`FitError.Error()` followed by the DefaultPreemption PostFilter message, as 1.27 words them."""
    if total_nodes == 0:
        return NO_NODES
    histogram = ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))
    message = f"0/{total_nodes} nodes are available: {histogram}."
    if preemption_policy == "Never":
        post = "preemption: not eligible due to preemptionPolicy=Never."
    else:
        post = (
            f"preemption: 0/{total_nodes} nodes are available: "
            f"{total_nodes} Preemption is not helpful for scheduling."
        )
    return f"{message} {post}."


def pod_needs_scheduling(pod: Mapping[str, Any]) -> bool:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return (
        not spec.get("nodeName")
        and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME
        and not pod["metadata"].get("deletionTimestamp")
        and status.get("phase", "Pending") not in ("Succeeded", "Failed")
    )


# -- the scheduler -------------------------------------------------------------------------------


class Scheduler(Controller):
    """Binds pending pods to nodes, as kube-scheduler's default profile would for these filters."""

    name = "default-scheduler"

    def __init__(self, kube: Kube, *, resync: float = 5.0, events: bool = True) -> None:
        super().__init__(kube, resync=resync)
        self.pods = self.inform(Resources.PODS)
        self.nodes = self.inform(Resources.NODES)
        self.events = events
        self._reported: dict[str, str] = {}  # pod uid -> the last FailedScheduling message written
        # Pods bound but not yet shown bound by the cache: uid -> (node, give up at), the scheduler
        # cache's "assumed" pods. Without it a lagging cache would count them nowhere and bind them twice.
        self._assumed: dict[str, tuple[str, float]] = {}

    def reconcile(self) -> None:
        nodes = sorted(self.nodes.objects(), key=lambda n: n["metadata"]["name"])
        pods = self.pods.objects()
        now = time.monotonic()
        unbound = {pod["metadata"]["uid"] for pod in pods if not (pod.get("spec") or {}).get("nodeName")}
        self._assumed = {
            uid: (node, until)
            for uid, (node, until) in self._assumed.items()
            if uid in unbound and until > now
        }
        load: Counter[str] = Counter(
            pod["spec"]["nodeName"]
            for pod in pods
            if (pod.get("spec") or {}).get("nodeName")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
        load.update(node for node, _ in self._assumed.values())
        pending = sorted(
            (
                pod
                for pod in pods
                if pod_needs_scheduling(pod) and pod["metadata"]["uid"] not in self._assumed
            ),
            key=lambda p: (
                -int(p["spec"].get("priority") or 0),
                epoch(p["metadata"].get("creationTimestamp")),
                p["metadata"]["name"],
            ),
        )
        live = {pod["metadata"]["uid"] for pod in pods}
        self._reported = {uid: message for uid, message in self._reported.items() if uid in live}
        by_name = {node["metadata"]["name"]: node for node in nodes}
        placed: list[tuple[Obj, Obj]] = []
        for pod in pods:
            node_name = (pod.get("spec") or {}).get("nodeName") or self._assumed.get(
                pod["metadata"]["uid"], ("", 0.0)
            )[0]
            if node_name in by_name and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                placed.append((pod, by_name[node_name]))
        for pod in pending:
            if self.stopping:
                return
            try:
                self.schedule(pod, nodes, load, placed)
            except ApiException as exc:
                if not is_stale(exc):
                    raise
                self.wake()

    def schedule(
        self, pod: Obj, nodes: list[Obj], load: Counter[str], placed: list[tuple[Obj, Obj]] | None = None
    ) -> None:
        spec = pod["spec"]
        placed = placed if placed is not None else []
        reasons: Counter[str] = Counter()
        feasible: list[str] = []
        for node in nodes:
            reason = filter_reason(spec, node) or anti_affinity_reason(pod, node, placed)
            if reason is None:
                feasible.append(node["metadata"]["name"])
            else:
                reasons[reason] += 1
        if not feasible:
            self.unschedulable(pod, fit_error(len(nodes), reasons, spec.get("preemptionPolicy")))
            return
        chosen = min(feasible, key=lambda name: (load[name], name))
        self.bind(pod, chosen)
        load[chosen] += 1
        placed.append((pod, next(node for node in nodes if node["metadata"]["name"] == chosen)))

    def bind(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "spec": {"nodeName": node}}
        self.kube.patch(Resources.PODS, meta["name"], patch, meta["namespace"])
        self._assumed[meta["uid"]] = (node, time.monotonic() + 30.0)
        scheduled = {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": timestamp(),
        }
        self.kube.patch(
            Resources.PODS,
            meta["name"],
            {"status": {"conditions": [scheduled]}},
            meta["namespace"],
            content_type=STRATEGIC_MERGE_PATCH,
            subresource="status",
        )
        self._reported.pop(meta["uid"], None)
        self.event(
            pod, "Normal", "Scheduled", f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}"
        )

    def unschedulable(self, pod: Obj, message: str) -> None:
        meta = pod["metadata"]
        current: Obj = next(
            (c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
            {},
        )
        if current.get("status") != "False" or current.get("message") != message:
            condition = {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": current.get("lastTransitionTime")
                if current.get("status") == "False"
                else timestamp(),
                "reason": "Unschedulable",
                "message": message,
            }
            self.kube.patch(
                Resources.PODS,
                meta["name"],
                {
                    "metadata": {"resourceVersion": meta["resourceVersion"]},
                    "status": {"conditions": [condition]},
                },
                meta["namespace"],
                content_type=STRATEGIC_MERGE_PATCH,
                subresource="status",
            )
        if self._reported.get(meta["uid"]) != message:
            self._reported[meta["uid"]] = message
            self.event(pod, "Warning", "FailedScheduling", message)

    def event(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        """A core/v1 Event from `default-scheduler`, as `kubectl describe pod` lists them."""
        if not self.events:
            return
        meta = pod["metadata"]
        now = timestamp()
        body = {
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": SCHEDULER_NAME},
            "reportingComponent": SCHEDULER_NAME,
            "reportingInstance": SCHEDULER_NAME,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.kube.create(Resources.EVENTS, body, meta["namespace"])
        except ApiException as exc:  # events are best effort, as the real recorder's are
            log.debug("scheduler: event for %s/%s not written: %s", meta["namespace"], meta["name"], exc)
