"""The three PATCH formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge.

RFC 6902 is small enough to carry here rather than add a dependency, and strategic merge patch has
no Python implementation at all. The strategic merge covers the directives kubectl's three-way
patches send: `$patch` (replace/delete), `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`
and `$retainKeys`.
"""

from __future__ import annotations

from typing import Any

from bgpconform.lab.apiserver.listkeys import ListKeys
from bgpconform.lab.apiserver.util import jcopy


class PatchError(Exception):
    """The patch cannot be applied to the object (a 422 for the client)."""


class MalformedPatch(Exception):
    """The patch document itself is not valid (a 400 for the client)."""


# --- RFC 7386 -----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return jcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 -----------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise MalformedPatch(f"invalid JSON pointer: {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise MalformedPatch(f'JSON pointer must be empty or start with a "/": "{path}"')
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f'invalid array index "{token}" in path "{path}"')
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f'array index {index} out of bounds in path "{path}"')
    return index


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f'doc is missing path: "{path}"')
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, allow_end=False)]
        else:
            raise PatchError(f'doc is missing path: "{path}"')
    return node


def _get(doc: Any, path: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f'doc is missing path: "{path}"')
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, path, allow_end=False)]
    raise PatchError(f'doc is missing path: "{path}"')


def _add(doc: Any, path: Any, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, path, allow_end=True), value)
    else:
        raise PatchError(f'add operation does not apply: doc is missing path: "{path}"')
    return doc


def _remove(doc: Any, path: Any) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        return None, doc
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f'remove operation does not apply: doc is missing path: "{path}"')
        return doc, parent.pop(token)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, token, path, allow_end=False))
    raise PatchError(f'remove operation does not apply: doc is missing path: "{path}"')


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def json_patch(document: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise MalformedPatch("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = jcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise MalformedPatch(f"invalid JSON patch operation: {operation!r}")
        op, path = operation["op"], operation.get("path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise MalformedPatch(f"{op} operation is missing a value")
        if op == "add":
            doc = _add(doc, path, jcopy(operation["value"]))
        elif op == "remove":
            doc, _ = _remove(doc, path)
        elif op == "replace":
            # evanphx/json-patch v4, which kube-apiserver uses, lets `replace` set a missing object
            # key like `add` (evanphx/json-patch#204); Cilium's operator relies on it for `/status`.
            parts = _pointer(path)
            parent = _parent(doc, parts, str(path)) if parts else None
            if not (isinstance(parent, dict) and parts[-1] not in parent):
                _get(doc, path)
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, jcopy(operation["value"])) if doc is not None else operation["value"]
        elif op == "move":
            doc, value = _remove(doc, operation.get("from"))
            doc = _add(doc, path, value)
        elif op == "copy":
            doc = _add(doc, path, jcopy(_get(doc, operation.get("from"))))
        elif op == "test":
            if not json_equal(_get(doc, path), operation["value"]):
                raise PatchError(f'testing value "{path}" failed: test failed')
        else:
            raise MalformedPatch(f"unexpected kind of JSON patch operation: {op!r}")
    return doc


# --- strategic merge patch ----------------------------------------------------------------------

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge(original: dict[str, Any], patch: Any, keys: ListKeys) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise MalformedPatch("strategic merge patch must be a JSON object")
    merged = _merge_map(original, patch, keys, ())
    return merged if merged is not None else {}


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], keys: ListKeys, path: tuple[str, ...]
) -> dict[str, Any] | None:
    patch = dict(patch)
    directive = patch.pop("$patch", None)
    if directive == "replace":
        replaced: dict[str, Any] = _clean(patch, keys, path)
        return replaced
    if directive == "delete":
        return None
    retain = patch.pop("$retainKeys", None)
    orders = {k[len(_ORDER) :]: patch.pop(k) for k in list(patch) if k.startswith(_ORDER)}
    removals = {
        k[len(_DELETE_PRIMITIVE) :]: patch.pop(k) for k in list(patch) if k.startswith(_DELETE_PRIMITIVE)
    }
    result = dict(original)
    if isinstance(retain, list):
        for key in list(result):
            if key not in retain:
                del result[key]
    for field, values in removals.items():
        if isinstance(result.get(field), list) and isinstance(values, list):
            result[field] = [v for v in result[field] if v not in values]
    for key, value in patch.items():
        current = result.get(key)
        child = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            merged = _merge_map(current, value, keys, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(current if isinstance(current, list) else [], value, keys, child)
        elif isinstance(value, dict):
            cleaned = _merge_map({}, value, keys, child)
            if cleaned is None:
                result.pop(key, None)
            else:
                result[key] = cleaned
        else:
            result[key] = value
    for field, order in orders.items():
        if isinstance(result.get(field), list) and isinstance(order, list):
            result[field] = _apply_order(result[field], order, keys, (*path, field))
    return result


def _merge_list(current: list[Any], patch: list[Any], keys: ListKeys, path: tuple[str, ...]) -> list[Any]:
    strategy = keys.strategy(path)
    if strategy.primitive_set:
        merged = list(current)
        for value in patch:
            if not isinstance(value, dict) and value not in merged:
                merged.append(value)
        return merged
    if not strategy.keys:
        return [_clean(item, keys, path) for item in patch if not _is_directive(item)]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" and len(item) == 1 for item in patch):
        return [_clean(item, keys, path) for item in patch if not _is_directive(item)]
    result = [item for item in current]
    for item in patch:
        if not isinstance(item, dict):
            result.append(item)
            continue
        key = tuple(item.get(k) for k in strategy.keys)
        position = next(
            (
                index
                for index, existing in enumerate(result)
                if isinstance(existing, dict) and tuple(existing.get(k) for k in strategy.keys) == key
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
            continue
        if position is not None:
            updated = _merge_map(result[position], item, keys, path)
            if updated is None:
                del result[position]
            else:
                result[position] = updated
        else:
            added = _merge_map({}, item, keys, path)
            if added is not None:
                result.append(added)
    return result


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item and len(item) == 1


def _clean(value: Any, keys: ListKeys, path: tuple[str, ...]) -> Any:
    """A value taken as is from the patch, with its directives resolved against nothing."""
    if isinstance(value, dict):
        merged = _merge_map({}, value, keys, path)
        return merged if merged is not None else {}
    if isinstance(value, list):
        return _merge_list([], value, keys, path)
    return value


def _apply_order(items: list[Any], order: list[Any], keys: ListKeys, path: tuple[str, ...]) -> list[Any]:
    """`$setElementOrder`: listed elements in the listed order, unlisted ones after, as they were."""
    strategy = keys.strategy(path)

    def identity(item: Any) -> Any:
        if strategy.keys and isinstance(item, dict):
            return tuple(item.get(k) for k in strategy.keys)
        return item

    wanted = [identity(item) for item in order]
    listed = sorted(
        (item for item in items if identity(item) in wanted), key=lambda i: wanted.index(identity(i))
    )
    rest = [item for item in items if identity(item) not in wanted]
    return listed + rest
