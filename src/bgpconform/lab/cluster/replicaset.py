"""kube-controller-manager's ReplicaSet controller, and the pod and ownership helpers its peers share.

The controller keeps `spec.replicas` active pods per ReplicaSet: it creates the missing ones from the
template (generateName `<rs>-`, so a deleted pod comes back under a new name) and deletes the most
expendable extras, ranked as `controller.ActivePods` ranks them. It then writes the status the
Deployment controller and `kubectl get rs` read.

Simplified against the real one: orphans matching the selector are not adopted and pods whose labels
stop matching are not released; creations are not batched by slow start; no ReplicaFailure condition.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, KubeResource, Resources
from bgpconform.lab.cilium.selectors import SelectorError
from bgpconform.lab.cilium.selectors import matches as selector_matches
from bgpconform.lab.cluster.controller import Controller

Obj = dict[str, Any]

# -- time --------------------------------------------------------------------------------------------


def timestamp(moment: datetime | None = None) -> str:
    """A `metav1.Time` as the API serializes it: RFC 3339 in UTC, whole seconds."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def epoch(text: object) -> float:
    moment = parse_time(text)
    return moment.timestamp() if moment else 0.0


# -- ownership ---------------------------------------------------------------------------------------


def owner_reference(owner: Mapping[str, Any], api_version: str, kind: str) -> Obj:
    """The controller reference a controller puts on what it makes (`metav1.NewControllerRef`)."""
    meta = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's managing controller (`metav1.GetControllerOf`), if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            uid: str | None = ref.get("uid")
            return uid
    return None


def by_controller(objects: Collection[Obj]) -> dict[str, list[Obj]]:
    grouped: dict[str, list[Obj]] = {}
    for obj in objects:
        uid = controller_uid(obj)
        if uid:
            grouped.setdefault(uid, []).append(obj)
    return grouped


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """A workload's `spec.selector`: nil selects nothing, an invalid one too (`labels.Nothing`)."""
    try:
        return selector_matches(selector, labels, nil_matches=False)
    except SelectorError:
        return False


# -- pods ----------------------------------------------------------------------------------------


def pod_is_active(pod: Mapping[str, Any]) -> bool:
    """Counted towards replicas: not terminating and not finished (`controller.IsPodActive`)."""
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def pod_condition(pod: Mapping[str, Any], kind: str) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            found: Obj = condition
            return found
    return None


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    condition = pod_condition(pod, "Ready")
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: Mapping[str, Any]) -> float | None:
    condition = pod_condition(pod, "Ready")
    if condition is None or condition.get("status") != "True":
        return None
    return epoch(condition.get("lastTransitionTime"))


def pod_is_available(pod: Mapping[str, Any], min_ready_seconds: int, at: float | None = None) -> bool:
    """Ready for at least minReadySeconds (`podutil.IsPodAvailable`)."""
    since = ready_since(pod)
    if since is None:
        return False
    return min_ready_seconds <= 0 or since + min_ready_seconds <= (at if at is not None else time.time())


def available_soon(pods: Collection[Obj], min_ready_seconds: int) -> float | None:
    """Seconds until the next ready-but-not-yet-available pod turns available, for a timed wake."""
    if min_ready_seconds <= 0:
        return None
    now = time.time()
    waits = [
        since + min_ready_seconds - now
        for since in (ready_since(pod) for pod in pods)
        if since is not None and since + min_ready_seconds > now
    ]
    return min(waits) if waits else None


def pod_from_template(template: Mapping[str, Any], generate_name: str, namespace: str, owner_ref: Obj) -> Obj:
    """A new pod from a workload template (`controller.GetPodFromTemplate`)."""
    template_meta = template.get("metadata") or {}
    meta: Obj = {
        "generateName": generate_name,
        "namespace": namespace,
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [owner_ref],
    }
    if template_meta.get("annotations"):
        meta["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        meta["finalizers"] = list(template_meta["finalizers"])
    return {"metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def deletion_rank(pod: Mapping[str, Any]) -> tuple[int, int, int, float, int, float]:
    """Sort key, most expendable first, after `controller.ActivePods`: unassigned before assigned,
    Pending before Unknown before Running, not ready before ready, ready the shortest time first,
    most restarts first, newest first."""
    status = pod.get("status") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", ""), 0)
    since = ready_since(pod)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    return (
        1 if pod.get("spec", {}).get("nodeName") else 0,
        phase_rank,
        0 if since is None else 1,
        -(since or 0.0),
        -restarts,
        -epoch(pod["metadata"].get("creationTimestamp")),
    )


# -- writes --------------------------------------------------------------------------------------


def collect_orphans(
    kube: Kube,
    owner: KubeResource,
    dependent: KubeResource,
    dependents: Collection[Obj],
    known_owners: Collection[str],
) -> None:
    """Delete dependents whose controlling `owner` the server confirms gone.

    The garbage collector's job, which the lab's API server does only inline when the owner is
    deleted: a dependent a controller created while racing that deletion (its cache still showing the
    owner) would otherwise stay forever. Only owners missing from the cache are looked up.
    """
    for obj in dependents:
        meta = obj["metadata"]
        ref = next(
            (
                r
                for r in meta.get("ownerReferences") or []
                if r.get("controller") and r.get("kind") == owner.kind
            ),
            None,
        )
        if ref is None or ref.get("uid") in known_owners or meta.get("deletionTimestamp"):
            continue
        alive = kube.get_or_none(owner, ref["name"], meta.get("namespace"))
        if alive is None or alive["metadata"]["uid"] != ref.get("uid"):
            kube.delete(dependent, meta["name"], meta.get("namespace"))


def is_stale(exc: ApiException) -> bool:
    """404 and 409 mean the cache was behind the server: the informer's next event wakes us again."""
    return exc.status in (404, 409)


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj | None:
    """A merge patch turning `current` into `desired` for the keys `desired` names (None removes)."""
    patch = {key: value for key, value in desired.items() if current.get(key) != value}
    return patch or None


class Expectations:
    """Writes a controller made that its cache has not shown yet, per owner, as client-go's
    `ControllerExpectations`: acting on a cache that lags its own creations would double them."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._pending: dict[str, dict[str, tuple[bool, float]]] = {}

    def expect(self, key: str, name: str, present: bool) -> None:
        self._pending.setdefault(key, {})[name] = (present, time.monotonic() + self.timeout)

    def satisfied(self, key: str, live_names: Collection[str]) -> bool:
        """Drop what the cache now agrees with (or what timed out); True once nothing is pending."""
        entries = self._pending.get(key)
        if not entries:
            return True
        now = time.monotonic()
        for name, (present, deadline) in list(entries.items()):
            if (name in live_names) == present or now > deadline:
                del entries[name]
        if entries:
            return False
        del self._pending[key]
        return True

    def forget(self, keep: Collection[str]) -> None:
        for key in list(self._pending):
            if key not in keep:
                del self._pending[key]


class WakeTimer:
    """One pending timed wake per controller, for what turns true with time (minReadySeconds)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._timer: threading.Timer | None = None
        self._due = float("inf")
        self._lock = threading.Lock()

    def after(self, seconds: float) -> None:
        due = time.monotonic() + max(seconds, 0.0)
        with self._lock:
            if self._timer is not None and self._timer.is_alive() and self._due <= due:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(max(seconds, 0.0) + 0.05, self._wake)
            self._timer.daemon = True
            self._due = due
            self._timer.start()

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


def key_of(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace') or ''}/{meta['name']}"


# -- the controller ------------------------------------------------------------------------------


class ReplicaSetController(Controller):
    """Keeps each ReplicaSet's pod count at `spec.replicas`, as kube-controller-manager's does."""

    name = "replicaset-controller"

    def __init__(self, kube: Kube, *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.replicasets = self.inform(Resources.REPLICASETS)
        self.pods = self.inform(Resources.PODS)
        self.expectations = Expectations()
        self.timer = WakeTimer(self.wake)

    def on_stop(self) -> None:
        self.timer.cancel()

    def reconcile(self) -> None:
        pods = self.pods.objects()
        owned = by_controller(pods)
        replicasets = self.replicasets.objects()
        self.expectations.forget({key_of(rs) for rs in replicasets})
        uids = {rs["metadata"]["uid"] for rs in replicasets}
        collect_orphans(self.kube, Resources.REPLICASETS, Resources.PODS, pods, uids)
        for rs in replicasets:
            if self.stopping:
                return
            try:
                self.sync(rs, owned.get(rs["metadata"]["uid"], []))
            except ApiException as exc:
                if not is_stale(exc):
                    raise
                self.wake()

    def sync(self, rs: Obj, owned: list[Obj]) -> None:
        meta, spec = rs["metadata"], rs.get("spec") or {}
        key = key_of(rs)
        active = [pod for pod in owned if pod_is_active(pod)]
        live = {pod["metadata"]["name"] for pod in active}
        if not meta.get("deletionTimestamp") and self.expectations.satisfied(key, live):
            wanted = int(spec.get("replicas", 1))
            if len(active) < wanted:
                self.create_pods(rs, wanted - len(active))
            elif len(active) > wanted:
                for pod in sorted(active, key=deletion_rank)[: len(active) - wanted]:
                    self.kube.delete(Resources.PODS, pod["metadata"]["name"], meta["namespace"])
                    self.expectations.expect(key, pod["metadata"]["name"], present=False)
        self.write_status(rs, active)

    def create_pods(self, rs: Obj, count: int) -> None:
        meta = rs["metadata"]
        template = (rs.get("spec") or {}).get("template") or {}
        ref = owner_reference(rs, "apps/v1", "ReplicaSet")
        for _ in range(count):
            pod = pod_from_template(template, f"{meta['name']}-", meta["namespace"], ref)
            created = self.kube.create(Resources.PODS, pod, meta["namespace"])
            self.expectations.expect(key_of(rs), created["metadata"]["name"], present=True)

    def write_status(self, rs: Obj, active: list[Obj]) -> None:
        meta, spec = rs["metadata"], rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        fully = sum(
            1
            for pod in active
            if all(pod["metadata"].get("labels", {}).get(k) == v for k, v in template_labels.items())
        )
        ready = sum(1 for pod in active if pod_is_ready(pod))
        available = sum(1 for pod in active if pod_is_available(pod, min_ready))
        desired = {
            "replicas": len(active),
            "fullyLabeledReplicas": fully or None,
            "readyReplicas": ready or None,
            "availableReplicas": available or None,
            "observedGeneration": meta.get("generation"),
        }
        patch = status_patch(rs.get("status") or {}, desired)
        if patch is not None:
            self.kube.patch(
                Resources.REPLICASETS,
                meta["name"],
                {"status": patch},
                meta["namespace"],
                subresource="status",
            )
        soon = available_soon(active, min_ready)
        if soon is not None:
            self.timer.after(soon)
