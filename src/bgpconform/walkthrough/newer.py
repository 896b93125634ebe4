"""Creating an object a whole second after another, by the API server's own stamps.

Cilium marks the newer of two overlapping LB IP pools only when their creationTimestamps differ;
within one second (the timestamps' resolution) the marked one is random (FACTS.md, LB IPAM). So a
scenario that needs "the second pool" marked must create it in a later second than the first, and the
server's stamp decides, not our clock.
"""

from __future__ import annotations

import copy
import time
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
    """`create(obj)` until the server stamps it a later second than `older`: an object stamped in the
    same second is deleted and created again once the server's clock, as estimated from that stamp,
    has moved on."""
    name = obj["metadata"]["name"]
    limit = created_at(older)
    for _ in range(attempts):
        asked = time.time()
        created = create(copy.deepcopy(obj))
        stamp = created_at(created)
        if stamp > limit:
            return created
        kube.delete(resource, name)
        wait_for(
            lambda: kube.get_or_none(resource, name),
            lambda found: found is None,
            expected=f"{resource.plural}/{name} deleted, to be created again in a later second",
            timeout=delete_timeout,
        )
        skew = stamp - asked  # the server's clock ahead of ours (negative: behind), at most

        def server_clock_moved_on(now: float, skew: float = skew) -> bool:
            return now + skew >= limit + 1

        wait_for(
            time.time,
            server_clock_moved_on,
            expected=f"the server's clock past {limit + 1:.0f} (skew {skew:+.1f} s)",
            timeout=5.0,
        )
    raise HarnessError(
        f"could not create {resource.plural}/{name} in a later second than "
        f"{older['metadata']['name']} in {attempts} attempts; is the API server's clock steady?"
    )
