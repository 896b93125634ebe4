"""Structural-schema semantics for custom resources: null dropping, defaulting, pruning, validation.

`jsonschema` validates JSON Schema, but a CRD's `openAPIV3Schema` is OpenAPI v3 with Kubernetes
extensions (`nullable`, `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
`x-kubernetes-list-type`, `x-kubernetes-embedded-resource`) and pruning, which JSON Schema has no
notion of; and the error texts must be the apiextensions ones (`spec.x in body must be of type
integer: "string"`), so this walks the schema itself. CEL rules (`x-kubernetes-validations`) are
not evaluated.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bgpconform.lab.apiserver import errors as e
from bgpconform.lab.apiserver.errors import FieldError

Schema = dict[str, Any]

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_type(value: Any, expected: str) -> bool:
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "string":
        return isinstance(value, str)
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    return True


def _join(path: str, key: str) -> str:
    if not path:
        return key
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{key}]"


# --- null dropping and defaulting -------------------------------------------------------------


def drop_nulls(value: Any, schema: Schema) -> Any:
    """Remove nulls where the schema does not say `nullable`, as the server does before defaulting."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key in list(value):
            sub = properties.get(key)
            if sub is None and isinstance(additional, dict):
                sub = additional
            if sub is None:
                continue
            if value[key] is None and not sub.get("nullable"):
                del value[key]
            else:
                drop_nulls(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            drop_nulls(item, schema["items"])
    return value


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Fill absent properties that have a `default`, inside objects that exist."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, item in value.items():
            sub = properties.get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                apply_defaults(item, sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])
    return value


# --- pruning ----------------------------------------------------------------------------------


def prune(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Drop unknown fields from a whole custom object in place; returns the dropped paths."""
    dropped: list[str] = []
    root = dict(schema)
    root_properties = dict(root.get("properties") or {})
    for key in ("apiVersion", "kind"):
        root_properties.setdefault(key, {"type": "string"})
    root_properties["metadata"] = {"x-kubernetes-preserve-unknown-fields": True}
    root["properties"] = root_properties
    _prune(obj, root, "", dropped, is_root=True)
    dropped.extend(prune_metadata(obj.get("metadata")))
    return dropped


def prune_metadata(meta: Any) -> list[str]:
    """ObjectMeta fields the Go types do not have are dropped when any object is decoded."""
    if not isinstance(meta, dict):
        return []
    unknown = [key for key in meta if key not in OBJECT_META_FIELDS]
    for key in unknown:
        del meta[key]
    return [f"metadata.{key}" for key in unknown]


def _prune(value: Any, schema: Schema, path: str, dropped: list[str], is_root: bool = False) -> None:
    if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
        return
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        embedded = schema.get("x-kubernetes-embedded-resource")
        for key in list(value):
            sub = properties.get(key)
            if sub is None and isinstance(additional, dict):
                sub = additional
            if sub is None:
                if additional is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                    continue
                if embedded and key in ("apiVersion", "kind", "metadata"):
                    continue
                dropped.append(_join(path, key))
                del value[key]
                continue
            _prune(value[key], sub, _join(path, key), dropped)
        if embedded and isinstance(value.get("metadata"), dict):
            dropped.extend(_join(path, p) for p in prune_metadata(value["metadata"]))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _prune(item, schema["items"], f"{path}[{index}]", dropped)


# --- validation -------------------------------------------------------------------------------


def validate(obj: dict[str, Any], schema: Schema) -> list[FieldError]:
    """Validate a whole custom object; metadata is the caller's job, as it is for the real server."""
    problems: list[FieldError] = []
    for key, sub in (schema.get("properties") or {}).items():
        if key in ("metadata", "apiVersion", "kind"):
            continue
        if key in obj:
            _validate(obj[key], sub, key, problems)
    for key in schema.get("required") or []:
        if key not in obj and key not in ("metadata", "apiVersion", "kind"):
            problems.append(e.required(key))
    return problems


def _validate(value: Any, schema: Schema, path: str, problems: list[FieldError]) -> None:
    if value is None:
        if schema.get("nullable"):
            return
        if schema.get("type"):
            problems.append(
                e.type_invalid(path, "null", f'{path} in body must be of type {schema["type"]}: "null"')
            )
        return
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (_is_type(value, "integer") or isinstance(value, str)):
            detail = f'{path} in body must be of type integer,string: "{_type_name(value)}"'
            problems.append(e.type_invalid(path, _type_name(value), detail))
            return
    elif expected and not _is_type(value, expected):
        detail = f'{path} in body must be of type {expected}: "{_type_name(value)}"'
        problems.append(e.type_invalid(path, _type_name(value), detail))
        return
    before = len(problems)
    _check_enum(value, schema, path, problems)
    if isinstance(value, str):
        _check_string(value, schema, path, problems)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, path, problems)
    elif isinstance(value, list):
        _check_array(value, schema, path, problems)
    elif isinstance(value, dict):
        _check_object(value, schema, path, problems)
    if len(problems) == before:
        _check_combinators(value, schema, path, problems)


def _check_enum(value: Any, schema: Schema, path: str, problems: list[FieldError]) -> None:
    allowed = schema.get("enum")
    if allowed is not None and value not in allowed:
        problems.append(e.not_supported(path, value, list(allowed)))


def _check_string(value: str, schema: Schema, path: str, problems: list[FieldError]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.append(e.too_long(path, int(schema["maxLength"])))
    if "minLength" in schema and len(value) < schema["minLength"]:
        problems.append(
            e.invalid(path, value, f"{path} in body should be at least {schema['minLength']} chars long")
        )
    pattern = schema.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        problems.append(e.invalid(path, value, f"{path} in body should match '{pattern}'"))
    fmt = schema.get("format")
    checker = FORMATS.get(str(fmt)) if fmt else None
    if checker is not None and not checker(value):
        problems.append(e.invalid(path, value, f'{path} in body must be of type {fmt}: "{value}"'))


def _check_number(value: float, schema: Schema, path: str, problems: list[FieldError]) -> None:
    shown: Any = int(value) if isinstance(value, float) and value.is_integer() else value
    if "maximum" in schema:
        maximum = schema["maximum"]
        if value > maximum or (schema.get("exclusiveMaximum") and value == maximum):
            relation = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
            problems.append(e.invalid(path, shown, f"{path} in body should be {relation} {maximum}"))
    if "minimum" in schema:
        minimum = schema["minimum"]
        if value < minimum or (schema.get("exclusiveMinimum") and value == minimum):
            relation = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
            problems.append(e.invalid(path, shown, f"{path} in body should be {relation} {minimum}"))
    multiple = schema.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        problems.append(e.invalid(path, shown, f"{path} in body should be a multiple of {multiple}"))
    fmt = schema.get("format")
    if fmt in ("int32", "int64") and isinstance(value, int):
        bits = 31 if fmt == "int32" else 63
        if not -(2**bits) <= value < 2**bits:
            problems.append(e.invalid(path, value, f'{path} in body must be of type {fmt}: "{value}"'))


def _check_array(value: list[Any], schema: Schema, path: str, problems: list[FieldError]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.append(e.too_many(path, len(value), int(schema["maxItems"])))
    if "minItems" in schema and len(value) < schema["minItems"]:
        problems.append(
            e.invalid(path, value, f"{path} in body should have at least {schema['minItems']} items")
        )
    if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
        problems.append(e.invalid(path, value, f"{path} in body shouldn't contain duplicates"))
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(item, items, f"{path}[{index}]", problems)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        seen: list[Any] = []
        for index, item in enumerate(value):
            if item in seen:
                problems.append(e.duplicate(f"{path}[{index}]", item))
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: list[dict[str, Any]] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = {k: item.get(k) for k in keys if k in item}
            if key in seen_keys:
                problems.append(e.duplicate(f"{path}[{index}]", key))
            seen_keys.append(key)


def _check_object(value: dict[str, Any], schema: Schema, path: str, problems: list[FieldError]) -> None:
    properties = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in value:
            problems.append(e.required(_join(path, key)))
    for key, item in value.items():
        sub = properties.get(key)
        if sub is None and isinstance(schema.get("additionalProperties"), dict):
            sub = schema["additionalProperties"]
        if sub is not None:
            _validate(item, sub, _join(path, key), problems)
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        problems.append(e.too_many(path, len(value), int(schema["maxProperties"])))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        detail = f"{path} in body should have at least {schema['minProperties']} properties"
        problems.append(e.invalid(path, value, detail))


def _passes(value: Any, schema: Schema, path: str) -> bool:
    found: list[FieldError] = []
    _validate(value, schema, path, found)
    return not found


def _check_combinators(value: Any, schema: Schema, path: str, problems: list[FieldError]) -> None:
    for sub in schema.get("allOf") or []:
        _validate(value, sub, path, problems)
    any_of = schema.get("anyOf")
    if any_of and not any(_passes(value, sub, path) for sub in any_of):
        problems.append(e.invalid(path, value, f"{path} in body must validate at least one schema (anyOf)"))
    one_of = schema.get("oneOf")
    if one_of and sum(_passes(value, sub, path) for sub in one_of) != 1:
        problems.append(
            e.invalid(path, value, f"{path} in body must validate one and only one schema (oneOf)")
        )
    negated = schema.get("not")
    if isinstance(negated, dict) and _passes(value, negated, path):
        problems.append(e.invalid(path, value, f"{path} in body must not validate the schema (not)"))


# --- formats (the kube-openapi set that matters here; unknown formats are ignored, as upstream) --


def _ip(version: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return check


def _cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value or "t" in value


def _date(value: str) -> bool:
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None


def _byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_HOSTNAME = r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*"
_DURATION = r"(\d+(\.\d+)?\s*(ns|us|µs|ms|s|m|h|d|w|second|seconds|minute|minutes|hour|hours|day|days)\s*)+"

FORMATS: dict[str, Callable[[str], bool]] = {
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "cidr": _cidr,
    "date-time": _datetime,
    "datetime": _datetime,
    "date": _date,
    "byte": _byte,
    "uuid": lambda v: re.fullmatch(_UUID, v) is not None,
    "mac": lambda v: re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}", v) is not None,
    "hostname": lambda v: len(v) <= 255 and re.fullmatch(_HOSTNAME, v) is not None,
    "duration": lambda v: re.fullmatch(_DURATION, v) is not None,
}


# --- structural checks on a CRD's schema ------------------------------------------------------


def structural_problems(schema: Schema, path: str) -> list[FieldError]:
    """The checks that matter for serving: types are specified, the root is an object."""
    problems: list[FieldError] = []
    if schema.get("type") != "object":
        problems.append(e.invalid(f"{path}.type", schema.get("type", ""), "must be object at the root"))
    _structural(schema, path, problems, root=True)
    return problems


def _structural(schema: Schema, path: str, problems: list[FieldError], root: bool = False) -> None:
    if not isinstance(schema, dict):
        problems.append(e.invalid(path, schema, "must be a schema object"))
        return
    exempt = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if not root and not schema.get("type") and not exempt:
        problems.append(e.required(f"{path}.type", "must not be empty for specified object fields"))
    for key, sub in (schema.get("properties") or {}).items():
        _structural(sub, f"{path}.properties[{key}]", problems)
    if isinstance(schema.get("items"), dict):
        _structural(schema["items"], f"{path}.items", problems)
    if isinstance(schema.get("additionalProperties"), dict):
        _structural(schema["additionalProperties"], f"{path}.additionalProperties", problems)
    if schema.get("properties") and schema.get("additionalProperties") not in (None, False):
        problems.append(
            e.forbidden(
                f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"
            )
        )
