"""How each list field merges: by key (containers by name), as a set (finalizers), or atomically.

Strategic merge patch and server-side apply both need this. The real server reads it from the Go
struct tags (`patchMergeKey`, `listType`) of built-in types and from `x-kubernetes-list-type` in a
CRD's schema; the lab has no Go types, so the built-in fields that kubectl and controllers actually
merge are listed here by field name, which is how those tags are spread across the core types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bgpconform.lab.apiserver.schema import Schema


@dataclass(frozen=True)
class ListStrategy:
    """`keys` set: an associative list; `primitive_set`: a list of scalars merged as a set."""

    keys: tuple[str, ...] = ()
    primitive_set: bool = False
    retain_keys: bool = False


ATOMIC = ListStrategy()

# Field name -> strategy, for built-in kinds. "ports" depends on the parent, see below.
_BUILTIN: dict[str, ListStrategy] = {
    "containers": ListStrategy(("name",)),
    "initContainers": ListStrategy(("name",)),
    "ephemeralContainers": ListStrategy(("name",)),
    "env": ListStrategy(("name",)),
    "volumes": ListStrategy(("name",), retain_keys=True),
    "volumeMounts": ListStrategy(("mountPath",)),
    "volumeDevices": ListStrategy(("devicePath",)),
    "imagePullSecrets": ListStrategy(("name",)),
    "hostAliases": ListStrategy(("ip",)),
    "conditions": ListStrategy(("type",)),
    "addresses": ListStrategy(("type",)),
    "taints": ListStrategy(("key",)),
    "ownerReferences": ListStrategy(("uid",)),
    "finalizers": ListStrategy(primitive_set=True),
    "topologySpreadConstraints": ListStrategy(("topologyKey",)),
    "readinessGates": ListStrategy(("conditionType",)),
    "resourceClaims": ListStrategy(("name",)),
    "secrets": ListStrategy(("name",)),
}


def builtin_strategy(kind: str, path: tuple[str, ...]) -> ListStrategy:
    """The strategy for the list at `path` (field names only, list indexes left out) of a built-in."""
    if not path:
        return ATOMIC
    name = path[-1]
    if name == "ports":
        if kind == "Service" and path == ("spec", "ports"):
            return ListStrategy(("port",))
        if len(path) >= 2 and path[-2] in ("containers", "initContainers", "ephemeralContainers"):
            return ListStrategy(("containerPort",))
        return ATOMIC
    if name == "finalizers" and path != ("metadata", "finalizers"):
        return ATOMIC
    if name == "conditions" and len(path) >= 2 and path[-2] != "status":
        return ATOMIC
    return _BUILTIN.get(name, ATOMIC)


def schema_strategy(schema: Schema | None, path: tuple[str, ...]) -> ListStrategy:
    """The strategy a CRD schema declares for the list at `path`; metadata lists as for built-ins."""
    if path and path[0] == "metadata":
        return builtin_strategy("", path)
    node = _schema_at(schema, path)
    if node is None:
        return ATOMIC
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "map":
        return ListStrategy(tuple(node.get("x-kubernetes-list-map-keys") or ()))
    if list_type == "set":
        return ListStrategy(primitive_set=True)
    return ATOMIC


def _schema_at(schema: Schema | None, path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = schema
    for part in path:
        if not isinstance(node, dict):
            return None
        while node.get("type") == "array" and isinstance(node.get("items"), dict):
            node = node["items"]
        properties = node.get("properties") or {}
        if part in properties:
            node = properties[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node if isinstance(node, dict) else None


class ListKeys:
    """The strategy lookup for one resource: built-in tables or its CRD schema."""

    def __init__(self, kind: str, schema: Schema | None = None, custom: bool = False) -> None:
        self.kind = kind
        self.schema = schema
        self.custom = custom

    def strategy(self, path: tuple[str, ...]) -> ListStrategy:
        if self.custom:
            return schema_strategy(self.schema, path)
        return builtin_strategy(self.kind, path)
