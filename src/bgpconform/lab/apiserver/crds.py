"""CustomResourceDefinitions: validation, defaults, status, and the resource type a CRD serves.

The real apiextensions controllers set `NamesAccepted` and `Established` a moment after creation;
here they are set in the same request, so a CRD is servable (and in discovery) as soon as the
create returns, which is what "appears within one request" asks for.
"""

from __future__ import annotations

from typing import Any

from bgpconform.lab.apiserver import errors as e
from bgpconform.lab.apiserver.errors import FieldError
from bgpconform.lab.apiserver.meta import DNS1123_LABEL, DNS1123_SUBDOMAIN
from bgpconform.lab.apiserver.resources import ResourceType, sorted_versions
from bgpconform.lab.apiserver.schema import structural_problems
from bgpconform.lab.apiserver.util import timestamp

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def default_crd(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if isinstance(names.get("kind"), str):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    for version in spec.get("versions") or []:
        if isinstance(version, dict):
            version.setdefault("served", True)
            version.setdefault("storage", False)


def validate_crd(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    problems: list[FieldError] = []
    group = spec.get("group")
    if not group:
        problems.append(e.required("spec.group"))
    elif "." not in str(group) or not DNS1123_SUBDOMAIN.match(str(group)):
        problems.append(e.invalid("spec.group", group, "should be a domain with at least one dot"))
    plural = names.get("plural")
    if not plural:
        problems.append(e.required("spec.names.plural"))
    elif not DNS1123_LABEL.match(str(plural)):
        problems.append(
            e.invalid(
                "spec.names.plural",
                plural,
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
            )
        )
    if not names.get("kind"):
        problems.append(e.required("spec.names.kind"))
    scope = spec.get("scope")
    if scope not in ("Cluster", "Namespaced"):
        problems.append(
            e.required("spec.scope")
            if not scope
            else e.not_supported("spec.scope", scope, ["Cluster", "Namespaced"])
        )
    name = obj["metadata"].get("name")
    if plural and group and name != f"{plural}.{group}":
        problems.append(e.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        problems.append(e.required("spec.versions"))
    else:
        storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
        if len(storage) != 1:
            problems.append(
                e.invalid(
                    "spec.versions",
                    [v.get("name") for v in versions if isinstance(v, dict)],
                    "must have exactly one version marked as storage version",
                )
            )
        seen: set[str] = set()
        for index, version in enumerate(versions):
            where = f"spec.versions[{index}]"
            if not isinstance(version, dict) or not version.get("name"):
                problems.append(e.required(f"{where}.name"))
                continue
            if version["name"] in seen:
                problems.append(e.duplicate(f"{where}.name", version["name"]))
            seen.add(version["name"])
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if not isinstance(schema, dict):
                problems.append(e.required(f"{where}.schema.openAPIV3Schema", "schemas are required"))
            else:
                problems.extend(structural_problems(schema, f"{where}.schema.openAPIV3Schema"))
    if old is not None:
        old_spec = old.get("spec") or {}
        for key in ("group", "scope"):
            if old_spec.get(key) != spec.get(key):
                problems.append(e.invalid(f"spec.{key}", spec.get(key), "field is immutable"))
        if (old_spec.get("names") or {}).get("plural") != names.get("plural"):
            problems.append(e.invalid("spec.names.plural", names.get("plural"), "field is immutable"))
    return problems


def crd_status(obj: dict[str, Any], old_status: dict[str, Any] | None) -> dict[str, Any]:
    """What the apiextensions controllers would converge to: names accepted, established."""
    spec = obj["spec"]
    names = dict(spec["names"])
    accepted = {
        k: names[k]
        for k in ("plural", "singular", "kind", "listKind", "shortNames", "categories")
        if names.get(k)
    }
    old_status = old_status or {}
    stamps = {c.get("type"): c.get("lastTransitionTime") for c in old_status.get("conditions") or []}
    now = timestamp()
    stored = list(old_status.get("storedVersions") or [])
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    if storage not in stored:
        stored.append(storage)
    return {
        "acceptedNames": accepted,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": stamps.get("NamesAccepted") or now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": stamps.get("Established") or now,
            },
        ],
        "storedVersions": stored,
    }


def resource_type(crd: dict[str, Any]) -> ResourceType | None:
    """The resource a CRD serves, or None when it serves no version."""
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served")]
    if not served:
        return None
    storage = next((v["name"] for v in spec["versions"] if v.get("storage")), served[0]["name"])
    subresources: list[str] = []
    if any("status" in (v.get("subresources") or {}) for v in served):
        subresources.append("status")
    return ResourceType(
        group=spec["group"],
        versions=tuple(sorted_versions(v["name"] for v in served)),
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        kind=names["kind"],
        namespaced=spec["scope"] == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=tuple(subresources),
        generation=True,
        custom=True,
        storage=storage,
        schemas={v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {} for v in served},
        printer_columns={v["name"]: list(v.get("additionalPrinterColumns") or []) for v in served},
    )
