"""Field ownership (`metadata.managedFields`) and server-side apply.

Server-side apply is defined by ownership: an apply conflicts when it changes a field another
manager owns, and a field a manager stops applying is removed unless someone else owns it. So every
write records who set which fields, in the `FieldsV1` notation clients see (`f:spec`,
`k:{"name":"nginx"}`, `v:"finalizer"`, `.`). Lists merge by the keys `listkeys` knows.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from bgpconform.lab.apiserver.listkeys import ListKeys
from bgpconform.lab.apiserver.patch import json_equal
from bgpconform.lab.apiserver.util import jcopy

Path = tuple[str, ...]

UNTRACKED_META = frozenset(
    {
        "name",
        "namespace",
        "generateName",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


@dataclass
class Entry:
    manager: str
    operation: str
    subresource: str
    api_version: str
    time: str
    fields: set[Path] = field(default_factory=set)

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode_fields(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


@dataclass
class Conflict:
    manager: str
    api_version: str
    path: Path


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        groups: dict[tuple[str, str], list[str]] = {}
        for c in conflicts:
            groups.setdefault((c.manager, c.api_version), []).append(path_string(c.path))
        messages = []
        for (manager, version), paths in groups.items():
            if len(paths) == 1:
                messages.append(f'conflict with "{manager}" using {version}: {paths[0]}')
            else:
                messages.append(
                    f'conflicts with "{manager}" using {version}:' + "".join(f"\n- {p}" for p in paths)
                )
        plural = "" if len(conflicts) == 1 else "s"
        super().__init__(f"Apply failed with {len(conflicts)} conflict{plural}: " + "\n".join(messages))

    def causes(self) -> list[dict[str, str]]:
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{c.manager}" using {c.api_version}',
                "field": path_string(c.path),
            }
            for c in self.conflicts
        ]


# --- field sets --------------------------------------------------------------------------------


def tracked(obj: dict[str, Any], subresource: str, has_status: bool) -> dict[str, Any]:
    """The part of an object whose fields are owned: no identity metadata, status only via /status."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if subresource == "status":
        return {"status": out["status"]} if "status" in out else {}
    if has_status:
        out.pop("status", None)
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in UNTRACKED_META}
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def _item_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps({k: item[k] for k in keys if k in item}, sort_keys=True, separators=(",", ":"))


def leaves(obj: dict[str, Any], keys: ListKeys) -> set[Path]:
    out: set[Path] = set()
    for name, value in obj.items():
        _walk(value, (name,), (_field(name),), keys, out)
    return out


def _walk(value: Any, names: tuple[str, ...], prefix: Path, keys: ListKeys, out: set[Path]) -> None:
    if isinstance(value, dict):
        if not value:
            out.add(prefix)
        for name, child in value.items():
            _walk(child, (*names, name), (*prefix, _field(name)), keys, out)
    elif isinstance(value, list):
        strategy = keys.strategy(names)
        if strategy.keys and value and all(isinstance(item, dict) for item in value):
            for item in value:
                item_prefix = (*prefix, _item_key(item, strategy.keys))
                out.add((*item_prefix, "."))
                for name, child in item.items():
                    _walk(child, (*names, name), (*item_prefix, _field(name)), keys, out)
        elif strategy.primitive_set and value:
            for item in value:
                out.add((*prefix, "v:" + json.dumps(item, separators=(",", ":"))))
        else:
            out.add(prefix)
    else:
        out.add(prefix)


_MISSING = object()


def value_at(obj: Any, path: Path) -> Any:
    node = obj
    for element in path:
        if element == ".":
            return node
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(node, dict) or rest not in node:
                return _MISSING
            node = node[rest]
        elif kind == "k":
            wanted = json.loads(rest)
            if not isinstance(node, list):
                return _MISSING
            node = next(
                (i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())),
                _MISSING,
            )
            if node is _MISSING:
                return _MISSING
        elif kind == "v":
            wanted_value = json.loads(rest)
            if not isinstance(node, list) or wanted_value not in node:
                return _MISSING
            return wanted_value
    return node


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Remove the leaf `path` names (a field, a list item, a set member) if it is there."""
    if not path:
        return
    last = path[-1]
    if last == ".":
        container = value_at(obj, path[:-2])
        item = value_at(obj, path[:-1])
        if isinstance(container, list) and item is not _MISSING:
            container.remove(item)
        return
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    kind, _, rest = last.partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(rest)
        if value in parent:
            parent.remove(value)


def path_string(path: Path) -> str:
    out = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            pairs = json.loads(rest)
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in pairs.items()) + "]"
        elif kind == "v":
            out += f"[={rest}]"
    return out


def encode_fields(paths: set[Path]) -> dict[str, Any]:
    """The FieldsV1 tree; objects with the same fields share one (stored objects are never mutated)."""
    return _encode(frozenset(paths))


@functools.lru_cache(maxsize=4096)
def _encode(paths: frozenset[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    return root


def _field(name: str) -> str:
    """Path elements repeat across every object: interned, thousands of them cost one string each."""
    return sys.intern("f:" + name)


def decode_fields(fields: Any, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not isinstance(fields, dict):
        return out
    for element, child in fields.items():
        path = (*prefix, element)
        if element == "." or not child:
            out.add(path)
        else:
            out |= decode_fields(child, path)
    return out


def decode_entries(obj: dict[str, Any] | None) -> list[Entry]:
    if not obj:
        return []
    entries = []
    for raw in obj.get("metadata", {}).get("managedFields") or []:
        if not isinstance(raw, dict):
            continue
        entries.append(
            Entry(
                manager=str(raw.get("manager", "")),
                operation=str(raw.get("operation", "Update")),
                subresource=str(raw.get("subresource", "")),
                api_version=str(raw.get("apiVersion", "")),
                time=str(raw.get("time", "")),
                fields=decode_fields(raw.get("fieldsV1")),
            )
        )
    return entries


def _encode_entries(entries: list[Entry]) -> list[dict[str, Any]]:
    return [entry.encode() for entry in entries if entry.fields]


# --- recording writes ---------------------------------------------------------------------------


@dataclass
class Context:
    """What every ownership computation needs about the resource and the request."""

    keys: ListKeys
    manager: str
    subresource: str
    has_status: bool
    api_version: str
    now: str


def record_update(old: dict[str, Any] | None, new: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """The managedFields after a create, update or patch: the writer owns what it changed."""
    entries = decode_entries(old)
    old_view = tracked(old, ctx.subresource, ctx.has_status) if old else {}
    new_view = tracked(new, ctx.subresource, ctx.has_status)
    old_leaves = leaves(old_view, ctx.keys)
    new_leaves = leaves(new_view, ctx.keys)
    changed = {p for p in new_leaves if p not in old_leaves or not _same(old_view, new_view, p)}
    removed = old_leaves - new_leaves
    if ctx.subresource != "status":
        removed = {p for p in removed if p[:1] != ("f:status",)} if ctx.has_status else removed
    for entry in entries:
        entry.fields -= changed | removed
    if changed:
        mine = _entry(entries, ctx, "Update")
        mine.fields |= changed
        mine.time = ctx.now
    return _encode_entries(entries)


def _same(a: Any, b: Any, path: Path) -> bool:
    left, right = value_at(a, path), value_at(b, path)
    if path[-1] == ".":
        return left is not _MISSING and right is not _MISSING
    if left is _MISSING or right is _MISSING:
        return left is right
    return json_equal(left, right)


def _entry(entries: list[Entry], ctx: Context, operation: str) -> Entry:
    for entry in entries:
        if entry.ident == (ctx.manager, operation, ctx.subresource):
            entry.api_version = ctx.api_version
            return entry
    entry = Entry(ctx.manager, operation, ctx.subresource, ctx.api_version, ctx.now)
    entries.append(entry)
    return entry


def structured_merge(live: Any, applied: Any, keys: ListKeys, names: tuple[str, ...] = ()) -> Any:
    """Merge an applied configuration into the live object: maps deep, keyed lists by key."""
    if isinstance(live, dict) and isinstance(applied, dict):
        result = dict(live)
        for key, value in applied.items():
            result[key] = structured_merge(live.get(key), value, keys, (*names, key))
        return result
    if isinstance(live, list) and isinstance(applied, list):
        strategy = keys.strategy(names)
        if strategy.primitive_set:
            return list(live) + [v for v in applied if v not in live]
        if strategy.keys and all(isinstance(i, dict) for i in live + applied):
            result_list = list(live)
            for item in applied:
                ident = {k: item.get(k) for k in strategy.keys}
                index = next(
                    (
                        i
                        for i, old in enumerate(result_list)
                        if {k: old.get(k) for k in strategy.keys} == ident
                    ),
                    None,
                )
                if index is None:
                    result_list.append(item)
                else:
                    result_list[index] = structured_merge(result_list[index], item, keys, names)
            return result_list
    return applied


def apply(
    live: dict[str, Any] | None, applied: dict[str, Any], ctx: Context, force: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Server-side apply of `applied` by `ctx.manager`; raises ApplyConflict unless forced."""
    entries = decode_entries(live)
    applied_view = tracked(applied, ctx.subresource, ctx.has_status)
    wanted = leaves(applied_view, ctx.keys)
    mine = (ctx.manager, "Apply", ctx.subresource)
    if live is not None:
        live_view = tracked(live, ctx.subresource, ctx.has_status)
        conflicts: list[tuple[Entry, Path]] = []
        for entry in entries:
            if entry.ident == mine:
                continue
            for path in sorted(entry.fields & wanted):
                if not _same(live_view, applied_view, path):
                    conflicts.append((entry, path))
        if conflicts and not force:
            raise ApplyConflict(
                [Conflict(entry.manager, entry.api_version, path) for entry, path in conflicts]
            )
        for entry, path in conflicts:
            entry.fields.discard(path)
    base: dict[str, Any] = jcopy(live) if live is not None else {}
    merged_view = structured_merge(
        tracked(base, ctx.subresource, ctx.has_status), jcopy(applied_view), ctx.keys
    )
    previously = next((entry.fields for entry in entries if entry.ident == mine), set())
    others: set[Path] = set()
    for entry in entries:
        if entry.ident != mine:
            others |= entry.fields
    for path in sorted(previously - wanted, key=len, reverse=True):
        if path not in others:
            remove_path(merged_view, path)
    if ctx.subresource == "status":
        merged = dict(base)
        if "status" in merged_view:
            merged["status"] = merged_view["status"]
        else:
            merged.pop("status", None)
    else:
        merged = dict(merged_view)
        meta = dict(merged_view.get("metadata") or {})
        for key, value in (base.get("metadata") or {}).items():
            if key in UNTRACKED_META:
                meta[key] = value
        for key in ("name", "namespace", "generateName"):
            if key not in meta and key in (applied.get("metadata") or {}):
                meta[key] = applied["metadata"][key]
        merged["metadata"] = meta
        if ctx.has_status and "status" in base:
            merged["status"] = base["status"]
        for key in ("apiVersion", "kind"):
            value = applied.get(key, base.get(key))
            if value is not None:
                merged[key] = value
    entry = _entry(entries, ctx, "Apply")
    entry.fields = wanted
    entry.time = ctx.now
    return merged, _encode_entries(entries)
