"""Creating an object a whole second after another, by the API server's own stamps.

Cilium marks the newer of two overlapping LB IP pools only when their creationTimestamps differ;
within one second (the timestamps' resolution) the marked one is random (FACTS.md, LB IPAM). So a
scenario that needs "the second pool" marked must create it in a later second than the first, and the
server's stamp decides, not our clock. Creating one in the same second and deleting it is no way out:
for that moment either pool may be marked, and a Cilium that never lifts a mark keeps the wrong one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bgpconform.errors import HarnessError
from bgpconform.kubeapi.port import KubeApi, KubeResource
from bgpconform.waiting import wait_for


def created_at(obj: Mapping[str, Any]) -> float:
    """The object's creationTimestamp as Unix seconds (whole seconds: the API's resolution)."""
    stamp = str(obj["metadata"]["creationTimestamp"]).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def create_newer_than(
    kube: KubeApi,
    create: Callable[[dict[str, Any]], dict[str, Any]],
    resource: KubeResource,
    obj: dict[str, Any],
    older: Mapping[str, Any],
    *,
    delete_timeout: float,
    attempts: int = 3,
) -> dict[str, Any]:
    """`create(obj)` once the server's clock has left `older`'s second, so the first try is stamped
    later; an object stamped in the same second anyway (API servers behind a balancer whose clocks
    differ) is deleted and created again."""
    name = obj["metadata"]["name"]
    limit = created_at(older)
    for _ in range(attempts):
        wait_for(
            kube.server_time,
            lambda now: now >= limit + 1,
            expected=f"the API server's clock (its Date header) past {limit + 1:.0f}",
            timeout=5.0,
            max_interval=0.1,
        )
        created = create(copy.deepcopy(obj))
        if created_at(created) > limit:
            return created
        kube.delete(resource, name)
        wait_for(
            lambda: kube.get_or_none(resource, name),
            lambda found: found is None,
            expected=f"{resource.plural}/{name} deleted, to be created again in a later second",
            timeout=delete_timeout,
        )
    raise HarnessError(
        f"could not create {resource.plural}/{name} in a later second than "
        f"{older['metadata']['name']} in {attempts} attempts; is the API server's clock steady?"
    )
