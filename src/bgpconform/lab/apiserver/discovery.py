"""Discovery documents: /version, /api, /apis and the APIResourceLists kubectl and clients read.

They are built from the registry on every request, so a CRD created or deleted a moment ago is
already (or no longer) listed. Only the legacy (unaggregated) format is served; kubectl 1.32 asks
for aggregated discovery first and falls back to this when the answer is plain `application/json`.
"""

from __future__ import annotations

import platform
import re
from typing import Any

from bgpconform.lab.apiserver.resources import Registry, ResourceType

_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "log": ["get"], "exec": ["create", "get"]}
_SUBRESOURCE_KIND = {"exec": "PodExecOptions"}


def version_info(k3s_version: str) -> dict[str, Any]:
    match = re.match(r"v(\d+)\.(\d+)", k3s_version)
    major, minor = (match.group(1), match.group(2)) if match else ("1", "27")
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": major,
        "minor": minor,
        "gitVersion": k3s_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "go1.20.5",
        "compiler": "gc",
        "platform": f"linux/{machine}",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{name}/{versions[0]}", "version": versions[0]},
    }


def group_list(registry: Registry) -> dict[str, Any]:
    groups = registry.group_versions()
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, versions) for name, versions in groups.items() if name],
    }


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _entry(resource: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def resource_list(registry: Registry, group_name: str, version: str) -> dict[str, Any] | None:
    resources = registry.in_group_version(group_name, version)
    if not resources:
        return None
    entries: list[dict[str, Any]] = []
    for resource in resources:
        entries.append(_entry(resource))
        for sub in resource.subresources:
            entries.append(
                {
                    "name": f"{resource.plural}/{sub}",
                    "singularName": "",
                    "namespaced": resource.namespaced,
                    "kind": _SUBRESOURCE_KIND.get(sub, resource.kind),
                    "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"]),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_name}/{version}" if group_name else version,
        "resources": entries,
    }


def root_paths(registry: Registry) -> dict[str, Any]:
    paths = {"/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"}
    for name, versions in registry.group_versions().items():
        if name:
            paths.add(f"/apis/{name}")
            paths.update(f"/apis/{name}/{v}" for v in versions)
    return {"paths": sorted(paths)}
