"""kube-controller-manager's Deployment controller: a ReplicaSet per pod template, rolled over.

Each Deployment owns ReplicaSets named `<deployment>-<pod-template-hash>`, the hash label added to
their selector, template and labels so old and new pods never overlap (as `kubectl get rs` shows
`cilium-operator-768959858c`). A template change (`kubectl rollout restart` sets the template
annotation `kubectl.kubernetes.io/restartedAt`) makes a new ReplicaSet that is scaled up while the old
ones are scaled down, within maxSurge and maxUnavailable, as `rolling.go` does; Recreate scales the
old ones to 0 first. The status and its Available/Progressing conditions use the real reasons, which
is what `kubectl rollout status` reads.

Simplified against the real one: no rollback (`spec.rollbackTo`), no proportional scaling of several
ReplicaSets when a Deployment is resized mid-rollout (the newest takes the difference), ReplicaSets
are not adopted or released by selector, and annotations are not copied from Deployment to ReplicaSet.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, Resources
from bgpconform.kubeapi.intstr import int_or_percent
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.names import pod_template_hash
from bgpconform.lab.cluster.replicaset import (
    WakeTimer,
    by_controller,
    collect_orphans,
    controller_uid,
    epoch,
    is_stale,
    key_of,
    owner_reference,
    timestamp,
)

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"

# Condition reasons, from pkg/controller/deployment/util/deployment_util.go.
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_REPLICA_SET_CREATED = "NewReplicaSetCreated"
FOUND_NEW_REPLICA_SET = "FoundNewReplicaSet"
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
NEW_REPLICA_SET_AVAILABLE = "NewReplicaSetAvailable"
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


def surge_and_unavailable(deployment: Mapping[str, Any]) -> tuple[int, int]:
    """`deploymentutil.ResolveFenceposts`: both zero would deadlock, so unavailable becomes 1."""
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    replicas = int(spec.get("replicas", 1))
    surge = int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def without_hash(template: Mapping[str, Any]) -> Obj:
    stripped = copy.deepcopy(dict(template))
    labels = (stripped.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return stripped


def revision(rs: Mapping[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def spec_replicas(rs: Mapping[str, Any]) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def status_count(rs: Mapping[str, Any], field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def condition(kind: str, status: str, reason: str, message: str) -> Obj:
    now = timestamp()
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(conditions: list[Obj], new: Obj, *, refresh: bool = False) -> None:
    """`SetDeploymentCondition`: same status and reason keeps the old one unless `refresh` (progress)."""
    for index, current in enumerate(conditions):
        if current.get("type") != new["type"]:
            continue
        if current.get("status") == new["status"]:
            if current.get("reason") == new["reason"] and not refresh:
                return
            new["lastTransitionTime"] = current.get("lastTransitionTime", new["lastTransitionTime"])
        conditions[index] = new
        return
    conditions.append(new)


def find_condition(conditions: list[Obj], kind: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == kind), None)


class DeploymentController(Controller):
    """Rolls Deployments out through ReplicaSets, as kube-controller-manager's Deployment controller."""

    name = "deployment-controller"

    def __init__(self, kube: Kube, *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.deployments = self.inform(Resources.DEPLOYMENTS)
        self.replicasets = self.inform(Resources.REPLICASETS)
        self.timer = WakeTimer(self.wake)
        self._created: set[str] = set()  # ReplicaSets this controller made, by namespace/name

    def on_stop(self) -> None:
        self.timer.cancel()

    def reconcile(self) -> None:
        replicasets = self.replicasets.objects()
        owned = by_controller(replicasets)
        deployments = self.deployments.objects()
        uids = {d["metadata"]["uid"] for d in deployments}
        collect_orphans(self.kube, Resources.DEPLOYMENTS, Resources.REPLICASETS, replicasets, uids)
        self._created &= {key_of(rs) for rs in replicasets}
        for deployment in deployments:
            if self.stopping:
                return
            try:
                self.sync(deployment, owned.get(deployment["metadata"]["uid"], []))
            except ApiException as exc:
                if not is_stale(exc):
                    raise
                self.wake()

    # -- one deployment ----------------------------------------------------------------------------
    def sync(self, deployment: Obj, owned: list[Obj]) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return
        replicasets = sorted(
            (rs for rs in owned if not rs["metadata"].get("deletionTimestamp")),
            key=lambda rs: (epoch(rs["metadata"].get("creationTimestamp")), rs["metadata"]["name"]),
        )
        template = spec.get("template") or {}
        new_rs = next((rs for rs in replicasets if without_hash(rs["spec"]["template"]) == template), None)
        old = [rs for rs in replicasets if rs is not new_rs]
        conditions: list[Obj] = copy.deepcopy((deployment.get("status") or {}).get("conditions") or [])
        if spec.get("paused"):
            self.write_status(deployment, new_rs, old, conditions)
            return
        if new_rs is None:
            new_rs = self.create_replicaset(deployment, old)
            if new_rs is None:
                return
            message = f'Created new replica set "{new_rs["metadata"]["name"]}"'
            set_condition(conditions, condition("Progressing", "True", NEW_REPLICA_SET_CREATED, message))
        else:
            new_rs = self.bump_revision(new_rs, old)
            if find_condition(conditions, "Progressing") is None:
                # our own creation, the cached status not showing the condition written with it yet
                created = key_of(new_rs) in self._created
                reason = NEW_REPLICA_SET_CREATED if created else FOUND_NEW_REPLICA_SET
                verb = "Created" if created else "Found"
                message = f'{verb} new replica set "{new_rs["metadata"]["name"]}"'
                set_condition(conditions, condition("Progressing", "True", reason, message))
        new_revision = str(revision(new_rs))
        if (meta.get("annotations") or {}).get(REVISION) != new_revision:
            patch = {"metadata": {"annotations": {REVISION: new_revision}}}
            self.kube.patch(Resources.DEPLOYMENTS, meta["name"], patch, meta["namespace"])
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            new_rs, old = self.recreate(deployment, new_rs, old)
        else:
            new_rs, old = self.rolling_update(deployment, new_rs, old)
        old = self.cleanup(deployment, old)
        self.write_status(deployment, new_rs, old, conditions)

    def create_replicaset(self, deployment: Obj, old: list[Obj]) -> Obj | None:
        """`getNewReplicaSet`: name from the template hash; a name taken by another template bumps
        `status.collisionCount` so the next hash differs."""
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        collisions = (deployment.get("status") or {}).get("collisionCount")
        template_hash = pod_template_hash(spec.get("template") or {}, collisions)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = template_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = template_hash
        replicas = int(spec.get("replicas", 1))
        surge, _ = surge_and_unavailable(deployment)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            start = 0 if any(spec_replicas(rs) or status_count(rs, "replicas") for rs in old) else replicas
        else:
            start = max(0, min(replicas, replicas + surge - sum(spec_replicas(rs) for rs in old)))
        name = f"{meta['name']}-{template_hash}"
        body = {
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(max((revision(rs) for rs in old), default=0) + 1),
                    DESIRED_REPLICAS: str(replicas),
                    MAX_REPLICAS: str(replicas + surge),
                },
                "ownerReferences": [owner_reference(deployment, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": start,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        try:
            created = self.kube.create(Resources.REPLICASETS, body, meta["namespace"])
            self._created.add(key_of(created))
            return created
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = self.kube.get_or_none(Resources.REPLICASETS, name, meta["namespace"])
        if (
            existing is not None
            and controller_uid(existing) == meta["uid"]
            and without_hash(existing["spec"]["template"]) == spec.get("template")
        ):
            return existing  # ours, the cache had not shown it yet
        patch = {"status": {"collisionCount": int(collisions or 0) + 1}}
        self.kube.patch(Resources.DEPLOYMENTS, meta["name"], patch, meta["namespace"], subresource="status")
        return None

    def bump_revision(self, new_rs: Obj, old: list[Obj]) -> Obj:
        """The current template's ReplicaSet carries the highest revision (`SetNewReplicaSetAnnotations`)."""
        highest_old = max((revision(rs) for rs in old), default=0)
        if revision(new_rs) > highest_old:
            return new_rs
        meta = new_rs["metadata"]
        patch = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "annotations": {REVISION: str(highest_old + 1)},
            }
        }
        return self.kube.patch(Resources.REPLICASETS, meta["name"], patch, meta["namespace"])

    def scale(self, rs: Obj, replicas: int, deployment: Obj) -> Obj:
        if spec_replicas(rs) == replicas:
            return rs
        meta = rs["metadata"]
        wanted = int((deployment.get("spec") or {}).get("replicas", 1))
        surge, _ = surge_and_unavailable(deployment)
        patch = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "annotations": {DESIRED_REPLICAS: str(wanted), MAX_REPLICAS: str(wanted + surge)},
            },
            "spec": {"replicas": replicas},
        }
        return self.kube.patch(Resources.REPLICASETS, meta["name"], patch, meta["namespace"])

    def rolling_update(self, deployment: Obj, new_rs: Obj, old: list[Obj]) -> tuple[Obj, list[Obj]]:
        """`rolloutRolling`: scale the new ReplicaSet up within maxSurge, then the old ones down as far
        as maxUnavailable allows, unhealthy pods first."""
        replicas = int((deployment.get("spec") or {}).get("replicas", 1))
        surge, unavailable = surge_and_unavailable(deployment)
        current = spec_replicas(new_rs)
        if current > replicas:
            new_rs = self.scale(new_rs, replicas, deployment)
        elif current < replicas:
            total = spec_replicas(new_rs) + sum(spec_replicas(rs) for rs in old)
            room = replicas + surge - total
            if room > 0:
                new_rs = self.scale(new_rs, current + min(room, replicas - current), deployment)
        if not any(spec_replicas(rs) for rs in old):
            return new_rs, old
        everything = [*old, new_rs]
        min_available = replicas - unavailable
        new_unavailable = spec_replicas(new_rs) - status_count(new_rs, "availableReplicas")
        budget = sum(spec_replicas(rs) for rs in everything) - min_available - new_unavailable
        if budget <= 0:
            return new_rs, old
        scaled_old: list[Obj] = []
        for rs in old:  # oldest first: their unavailable pods go at no cost to availability
            unhealthy = spec_replicas(rs) - status_count(rs, "availableReplicas")
            down = min(budget, unhealthy) if budget > 0 and unhealthy > 0 else 0
            budget -= down
            scaled_old.append(self.scale(rs, spec_replicas(rs) - down, deployment))
        old = scaled_old
        available = sum(status_count(rs, "availableReplicas") for rs in [*old, new_rs])
        excess = available - min_available
        scaled_old = []
        for rs in old:
            down = min(spec_replicas(rs), excess) if excess > 0 else 0
            excess -= down
            scaled_old.append(self.scale(rs, spec_replicas(rs) - down, deployment))
        return new_rs, scaled_old

    def recreate(self, deployment: Obj, new_rs: Obj, old: list[Obj]) -> tuple[Obj, list[Obj]]:
        """`rolloutRecreate`: every old pod gone before the new ReplicaSet is scaled up."""
        old = [self.scale(rs, 0, deployment) for rs in old]
        if any(status_count(rs, "replicas") for rs in old):
            return new_rs, old
        replicas = int((deployment.get("spec") or {}).get("replicas", 1))
        return self.scale(new_rs, replicas, deployment), old

    def cleanup(self, deployment: Obj, old: list[Obj]) -> list[Obj]:
        """`cleanupDeployment`: keep `revisionHistoryLimit` scaled-down old ReplicaSets."""
        limit = int((deployment.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = sorted(
            (rs for rs in old if not spec_replicas(rs) and not status_count(rs, "replicas")), key=revision
        )
        doomed = idle[: max(0, len(idle) - limit)]
        for rs in doomed:
            self.kube.delete(Resources.REPLICASETS, rs["metadata"]["name"], rs["metadata"]["namespace"])
        return [rs for rs in old if rs not in doomed]

    # -- status ------------------------------------------------------------------------------------
    def write_status(
        self, deployment: Obj, new_rs: Obj | None, old: list[Obj], conditions: list[Obj]
    ) -> None:
        """`calculateStatus` and `syncRolloutStatus`: counts from the ReplicaSets, then conditions."""
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        previous = deployment.get("status") or {}
        everything = [*old, *([new_rs] if new_rs is not None else [])]
        replicas = int(spec.get("replicas", 1))
        _, unavailable_allowed = surge_and_unavailable(deployment)
        available = sum(status_count(rs, "availableReplicas") for rs in everything)
        counts = {
            "observedGeneration": meta.get("generation"),
            "replicas": sum(status_count(rs, "replicas") for rs in everything),
            "updatedReplicas": status_count(new_rs, "replicas") if new_rs is not None else 0,
            "readyReplicas": sum(status_count(rs, "readyReplicas") for rs in everything),
            "availableReplicas": available,
            "unavailableReplicas": max(0, sum(spec_replicas(rs) for rs in everything) - available),
        }
        if available >= replicas - unavailable_allowed:
            available_condition = condition(
                "Available", "True", MINIMUM_REPLICAS_AVAILABLE, "Deployment has minimum availability."
            )
        else:
            available_condition = condition(
                "Available",
                "False",
                MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.",
            )
        set_condition(conditions, available_condition)
        conditions.sort(key=lambda c: 0 if c.get("type") == "Available" else 1)
        if new_rs is not None and not spec.get("paused"):
            self.progress(deployment, new_rs, counts, conditions)
        desired: Obj = {key: (value or None) for key, value in counts.items()}
        desired["conditions"] = conditions
        patch = {key: value for key, value in desired.items() if previous.get(key) != value}
        if patch:
            self.kube.patch(
                Resources.DEPLOYMENTS,
                meta["name"],
                {"status": patch},
                meta["namespace"],
                subresource="status",
            )

    def progress(
        self, deployment: Obj, new_rs: Obj, counts: Mapping[str, Any], conditions: list[Obj]
    ) -> None:
        """`syncRolloutStatus`: complete, progressing (refreshes lastUpdateTime) or timed out."""
        spec, previous = deployment.get("spec") or {}, deployment.get("status") or {}
        deadline = spec.get("progressDeadlineSeconds")
        if deadline is None or int(deadline) >= 2**31 - 1:
            return
        replicas = int(spec.get("replicas", 1))
        current = find_condition(conditions, "Progressing")
        name = new_rs["metadata"]["name"]
        if (
            counts["replicas"] == counts["updatedReplicas"]
            and current is not None
            and current.get("reason") == NEW_REPLICA_SET_AVAILABLE
        ):
            return
        complete = (
            counts["updatedReplicas"] == replicas
            and counts["replicas"] == replicas
            and counts["availableReplicas"] == replicas
            and int(counts["observedGeneration"] or 0) >= int(deployment["metadata"].get("generation") or 0)
        )
        old_before = int(previous.get("replicas") or 0) - int(previous.get("updatedReplicas") or 0)
        old_now = counts["replicas"] - counts["updatedReplicas"]
        progressing = (
            counts["updatedReplicas"] > int(previous.get("updatedReplicas") or 0)
            or old_now < old_before
            or counts["readyReplicas"] > int(previous.get("readyReplicas") or 0)
            or counts["availableReplicas"] > int(previous.get("availableReplicas") or 0)
        )
        if complete:
            message = f'ReplicaSet "{name}" has successfully progressed.'
            set_condition(conditions, condition("Progressing", "True", NEW_REPLICA_SET_AVAILABLE, message))
        elif progressing:
            message = f'ReplicaSet "{name}" is progressing.'
            set_condition(
                conditions, condition("Progressing", "True", REPLICA_SET_UPDATED, message), refresh=True
            )
        elif current is not None and current.get("reason") != PROGRESS_DEADLINE_EXCEEDED:
            since = epoch(current.get("lastUpdateTime"))
            remaining = since + int(deadline) - time.time()
            if remaining <= 0:
                message = f'ReplicaSet "{name}" has timed out progressing.'
                set_condition(
                    conditions, condition("Progressing", "False", PROGRESS_DEADLINE_EXCEEDED, message)
                )
            else:
                self.timer.after(remaining)
