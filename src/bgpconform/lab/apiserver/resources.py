"""The resource types the server serves: the built-in table plus whatever CRDs add at runtime.

Discovery, routing, selectors and tables all read one `ResourceType`, so a CRD that is created or
deleted changes every one of them in the same request.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NO_COLLECTION_DELETE = ("create", "delete", "get", "list", "patch", "update", "watch")
COMMON_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceType:
    """One served resource; for a CRD, `schemas` and `printer_columns` are per version."""

    group: str
    versions: tuple[str, ...]  # served versions, highest priority first
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # "status", "log", "exec"
    generation: bool = False  # metadata.generation counts spec changes
    returns_deleted_object: bool = False  # DELETE answers with the object instead of a Status
    extra_field_labels: tuple[str, ...] = ()
    custom: bool = False  # served from a CRD
    storage: str = ""  # the version objects are stored at, when not the first served one
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, hash=False)
    printer_columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def storage_version(self) -> str:
        return self.storage or self.versions[0]

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def field_labels(self) -> tuple[str, ...]:
        return COMMON_FIELDS + self.extra_field_labels

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


def _core(plural: str, singular: str, kind: str, namespaced: bool, **kw: Any) -> ResourceType:
    return ResourceType("", ("v1",), plural, singular, kind, namespaced, **kw)


def _apps(plural: str, singular: str, kind: str, **kw: Any) -> ResourceType:
    return ResourceType(
        "apps",
        ("v1",),
        plural,
        singular,
        kind,
        True,
        categories=("all",),
        subresources=("status",),
        generation=True,
        **kw,
    )


BUILTINS: tuple[ResourceType, ...] = (
    _core("configmaps", "configmap", "ConfigMap", True, short_names=("cm",)),
    _core("endpoints", "endpoints", "Endpoints", True, short_names=("ep",)),
    _core(
        "events",
        "event",
        "Event",
        True,
        short_names=("ev",),
        extra_field_labels=(
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ),
    ),
    _core(
        "namespaces",
        "namespace",
        "Namespace",
        False,
        short_names=("ns",),
        verbs=NO_COLLECTION_DELETE,
        subresources=("status",),
        returns_deleted_object=True,
        extra_field_labels=("status.phase",),
    ),
    _core(
        "nodes",
        "node",
        "Node",
        False,
        short_names=("no",),
        subresources=("status",),
        extra_field_labels=("spec.unschedulable",),
    ),
    _core(
        "pods",
        "pod",
        "Pod",
        True,
        short_names=("po",),
        categories=("all",),
        subresources=("status", "log", "exec"),
        returns_deleted_object=True,
        extra_field_labels=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ),
    ),
    _core("secrets", "secret", "Secret", True, extra_field_labels=("type",)),
    _core("serviceaccounts", "serviceaccount", "ServiceAccount", True, short_names=("sa",)),
    _core(
        "services",
        "service",
        "Service",
        True,
        short_names=("svc",),
        categories=("all",),
        subresources=("status",),
        returns_deleted_object=True,
    ),
    _apps("daemonsets", "daemonset", "DaemonSet", short_names=("ds",)),
    _apps("deployments", "deployment", "Deployment", short_names=("deploy",)),
    _apps(
        "replicasets",
        "replicaset",
        "ReplicaSet",
        short_names=("rs",),
        extra_field_labels=("status.replicas",),
    ),
    # The EndpointSlice controller writes these and Cilium's agents read them for service backends.
    ResourceType(
        "discovery.k8s.io",
        ("v1",),
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        True,
        extra_field_labels=("addressType",),
    ),
    # Kubelets renew their node's lease here (kube-node-lease), as the node heartbeat.
    ResourceType("coordination.k8s.io", ("v1",), "leases", "lease", "Lease", True),
    ResourceType(
        "apiextensions.k8s.io",
        ("v1",),
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
        generation=True,
    ),
)


class Registry:
    """Built-in types plus CRD-backed ones; readers always see one consistent snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._builtin = {r.key: r for r in BUILTINS}
        self._custom: dict[tuple[str, str], ResourceType] = {}

    def set_custom(self, resource: ResourceType) -> None:
        with self._lock:
            custom = dict(self._custom)
            custom[resource.key] = resource
            self._custom = custom

    def remove_custom(self, key: tuple[str, str]) -> None:
        with self._lock:
            custom = dict(self._custom)
            custom.pop(key, None)
            self._custom = custom

    def get(self, group: str, plural: str) -> ResourceType | None:
        return self._builtin.get((group, plural)) or self._custom.get((group, plural))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The resource served at `group/version/plural`, or None (the caller answers 404)."""
        resource = self.get(group, plural)
        if resource is None or version not in resource.versions:
            return None
        return resource

    def all(self) -> list[ResourceType]:
        return [*self._builtin.values(), *self._custom.values()]

    def group_versions(self) -> dict[str, list[str]]:
        """Every served group and its versions, preferred first, in a stable order."""
        groups: dict[str, list[str]] = {}
        for resource in self.all():
            versions = groups.setdefault(resource.group, [])
            for version in resource.versions:
                if version not in versions:
                    versions.append(version)
        for versions in groups.values():
            versions.sort(key=version_priority)
        return groups

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (r for r in self.all() if r.group == group and version in r.versions), key=lambda r: r.plural
        )


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA before beta before alpha, higher numbers first, others last."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0, version)
    major = int(match.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[match.group(2) or ""]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, version)


def sorted_versions(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=version_priority)
