"""Every object a real cluster serves, read through discovery, for a run's evidence.

What `kubectl api-resources --verbs=list` lists, listed one by one; Secrets' values and
last-applied annotations are replaced before anything is written (the lab's dump does the same).
Events are left out: on a real cluster they are many and say nothing the other objects do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube
from bgpconform.report.api_dump import write

SKIPPED = {("", "events"), ("events.k8s.io", "events")}


def served_lists(kube: Kube) -> Iterator[tuple[str, str, str]]:
    """(group, version, plural) of every top-level resource that can be listed, each once: in its
    group's preferred version when it has one there (Cilium keeps CiliumNode in v2 but pools and peering
    policies in v2alpha1, so the preferred version alone misses them)."""
    seen: set[tuple[str, str]] = set()
    versions = [("", version) for version in kube.get_path("/api").get("versions", [])]
    for group in kube.get_path("/apis").get("groups", []):
        preferred = group.get("preferredVersion", {}).get("version")
        listed = [v.get("version") for v in group.get("versions", []) if v.get("version")]
        versions += [(group["name"], version) for version in sorted(listed, key=lambda v: v != preferred)]
    for name, version in versions:
        for resource in kube.api_resources(f"{name}/{version}" if name else version):
            plural = resource["name"]
            if "/" in plural or "list" not in resource.get("verbs", []) or (name, plural) in seen:
                continue
            seen.add((name, plural))
            yield name, version, plural


def dump_cluster(kube: Kube, path: Path) -> list[str]:
    """Write the dump; returns the resources that could not be listed (and why), for the evidence."""
    objects: list[tuple[tuple[str, str], dict[str, Any]]] = []
    problems: list[str] = []
    for group, version, plural in served_lists(kube):
        if (group, plural) in SKIPPED:
            continue
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            listing = kube.get_path(f"{base}/{plural}")
        except ApiException as exc:  # RBAC may forbid some lists to the user's context
            problems.append(f"{plural}.{group or 'core'}: {exc.status} {exc.reason}")
            continue
        api_version = f"{group}/{version}" if group else version
        kind = str(listing.get("kind", "")).removesuffix("List")
        for item in listing.get("items", []):
            objects.append(((group, plural), {"apiVersion": api_version, "kind": kind, **item}))
    write(path, objects)
    return problems


def write_cluster_dump(kube: Kube, path: Path) -> None:
    """The dump, and beside it what could not be listed (a user's RBAC may forbid some lists)."""
    problems = dump_cluster(kube, path)
    if problems:
        path.with_suffix(".unlisted.txt").write_text("\n".join(problems) + "\n")
