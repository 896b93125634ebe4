"""API objects as one multi-document YAML file for a run's evidence, from any cluster; secrets' values
never leave."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ResourceKey = tuple[str, str]  # (group, plural), as the API paths name a resource

REDACTED = "<redacted>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

try:  # the C dumper is several times faster on a large store
    from yaml import CSafeDumper as Dumper
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as Dumper  # type: ignore[assignment]


def redact(resource: ResourceKey, obj: dict[str, Any]) -> dict[str, Any]:
    """Drop managedFields (noise, as `kubectl get -o yaml` hides them) and secret values."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    if resource == ("", "secrets"):
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = {name: REDACTED for name in out[key]}
        annotations = dict(meta.get("annotations") or {})
        if LAST_APPLIED in annotations:
            annotations[LAST_APPLIED] = REDACTED
            meta["annotations"] = annotations
    out["metadata"] = meta
    return out


def write(path: Path, objects: Iterable[tuple[ResourceKey, dict[str, Any]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    documents = [redact(resource, obj) for resource, obj in objects]
    with path.open("w") as handle:
        yaml.dump_all(documents, handle, Dumper=Dumper, sort_keys=False, default_flow_style=False)
