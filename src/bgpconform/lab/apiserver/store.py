"""The object store: every object in memory, one resourceVersion counter, a bounded event history.

Objects are keyed by (group, resource, namespace, name) without the version: a CRD that serves
v2alpha1 and v2 has one set of objects, and the version is only how they are shown. Stored dicts are
never mutated after they go in, so readers share them without copies and each keeps its serialized
JSON, which is what makes a list of a thousand pods a join of cached bytes.

All writers hold one lock, and watch subscribers are called under it, so every subscriber sees events
in resourceVersion order with no gap between the initial state it was given and the first event.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

ResourceKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace or "", name)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as the API server writes it (orjson: the lab encodes every object it stores)."""
    return orjson.dumps(value)


@dataclass
class Stored:
    """One version of one object; `obj` must not be mutated once stored."""

    obj: dict[str, Any]
    rv: int
    _json: bytes | None = field(default=None, repr=False)

    def json(self) -> bytes:
        if self._json is None:
            self._json = dumps(self.obj)
        return self._json

    @property
    def namespace(self) -> str:
        return str(self.obj.get("metadata", {}).get("namespace") or "")

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.obj.get("metadata", {}).get("labels") or {}
        return labels


@dataclass
class Event:
    """A change: ADDED, MODIFIED or DELETED, with the previous version for selector transitions."""

    type: str
    stored: Stored
    previous: Stored | None
    _line: bytes | None = field(default=None, repr=False)

    @property
    def rv(self) -> int:
        return self.stored.rv

    def line(self) -> bytes:
        if self._line is None:
            self._line = b'{"type":"' + self.type.encode() + b'","object":' + self.stored.json() + b"}\n"
        return self._line


class TooOld(Exception):
    """A watch asked for a resourceVersion whose events are no longer in the history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


Callback = Callable[[Event | None], None]  # None: the resource went away, end the watch


@dataclass(eq=False)
class Subscription:
    resource: ResourceKey
    namespace: str | None
    callback: Callback


class Store:
    """Thread-safe; all methods may be called from any thread."""

    def __init__(self, history: int = 1000) -> None:
        self.lock = threading.RLock()
        self._history_size = history
        self._objects: dict[ResourceKey, dict[str, dict[str, Stored]]] = {}
        self._history: dict[ResourceKey, deque[Event]] = {}
        self._evicted: dict[ResourceKey, int] = {}
        self._subscriptions: dict[ResourceKey, list[Subscription]] = {}
        self._dependents: dict[str, set[tuple[ResourceKey, str, str]]] = {}
        self._rv = 1

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, resource: ResourceKey, namespace: str, name: str) -> Stored | None:
        return self._objects.get(resource, {}).get(namespace, {}).get(name)

    def list_objects(self, resource: ResourceKey, namespace: str | None) -> tuple[list[Stored], int]:
        """Objects sorted by namespace then name (etcd key order), and the list's resourceVersion."""
        with self.lock:
            by_namespace = self._objects.get(resource, {})
            if namespace is not None:
                items = sorted(by_namespace.get(namespace, {}).items())
                return [stored for _, stored in items], self._rv
            result: list[Stored] = []
            for ns in sorted(by_namespace):
                result.extend(stored for _, stored in sorted(by_namespace[ns].items()))
            return result, self._rv

    def count(self, resource: ResourceKey) -> int:
        return sum(len(names) for names in self._objects.get(resource, {}).values())

    def namespace_empty(self, namespace: str) -> bool:
        with self.lock:
            return not any(by_ns.get(namespace) for by_ns in self._objects.values())

    def in_namespace(self, namespace: str) -> list[tuple[ResourceKey, Stored]]:
        with self.lock:
            found: list[tuple[ResourceKey, Stored]] = []
            for resource, by_ns in self._objects.items():
                found.extend((resource, stored) for stored in by_ns.get(namespace, {}).values())
            return found

    def dependents(self, owner_uid: str) -> list[tuple[ResourceKey, str, str]]:
        with self.lock:
            return sorted(self._dependents.get(owner_uid, ()))

    def put(self, resource: ResourceKey, obj: dict[str, Any]) -> Stored:
        """Create or replace; sets metadata.resourceVersion on `obj`, which the store then owns."""
        with self.lock:
            meta = obj["metadata"]
            namespace, name = str(meta.get("namespace") or ""), str(meta["name"])
            names = self._objects.setdefault(resource, {}).setdefault(namespace, {})
            previous = names.get(name)
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            stored = Stored(obj, self._rv)
            names[name] = stored
            self._index_owners(resource, namespace, name, previous, stored)
            self._emit(resource, Event("MODIFIED" if previous else "ADDED", stored, previous))
            return stored

    def remove(self, resource: ResourceKey, namespace: str, name: str) -> Stored | None:
        """Delete for good; the DELETED event carries the object at a new resourceVersion."""
        with self.lock:
            names = self._objects.get(resource, {}).get(namespace)
            if not names or name not in names:
                return None
            previous = names.pop(name)
            if not names:
                del self._objects[resource][namespace]
            self._rv += 1
            obj = dict(previous.obj)
            obj["metadata"] = dict(obj["metadata"], resourceVersion=str(self._rv))
            stored = Stored(obj, self._rv)
            self._index_owners(resource, namespace, name, previous, None)
            self._emit(resource, Event("DELETED", stored, previous))
            return stored

    def _index_owners(
        self, resource: ResourceKey, namespace: str, name: str, old: Stored | None, new: Stored | None
    ) -> None:
        key = (resource, namespace, name)
        for stored, add in ((old, False), (new, True)):
            if stored is None:
                continue
            for ref in stored.obj["metadata"].get("ownerReferences") or []:
                uid = ref.get("uid")
                if not uid:
                    continue
                if add:
                    self._dependents.setdefault(uid, set()).add(key)
                else:
                    self._dependents.get(uid, set()).discard(key)
                    if not self._dependents.get(uid, True):
                        del self._dependents[uid]

    def _emit(self, resource: ResourceKey, event: Event) -> None:
        history = self._history.setdefault(resource, deque())
        history.append(event)
        while len(history) > self._history_size:
            self._evicted[resource] = history.popleft().rv
        for subscription in self._subscriptions.get(resource, ()):
            if subscription.namespace is None or subscription.namespace == event.stored.namespace:
                subscription.callback(event)

    def subscribe(
        self, resource: ResourceKey, namespace: str | None, since: int | None, callback: Callback
    ) -> tuple[list[Event], Subscription]:
        """Register a watcher and return what it must send first, atomically.

        With `since` None the catch-up is a synthetic ADDED per existing object (a watch without a
        resourceVersion, or with "0"); otherwise it is every recorded event after `since`, or TooOld.
        """
        with self.lock:
            if since is None:
                items, _ = self.list_objects(resource, namespace)
                initial = [Event("ADDED", stored, None) for stored in items]
            else:
                evicted = self._evicted.get(resource, 0)
                if since < evicted:
                    raise TooOld(since, evicted + 1)
                initial = [
                    event
                    for event in self._history.get(resource, ())
                    if event.rv > since and (namespace is None or event.stored.namespace == namespace)
                ]
            subscription = Subscription(resource, namespace, callback)
            self._subscriptions.setdefault(resource, []).append(subscription)
            return initial, subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self.lock:
            subscriptions = self._subscriptions.get(subscription.resource, [])
            if subscription in subscriptions:
                subscriptions.remove(subscription)

    def end_watches(self, resource: ResourceKey) -> None:
        """Tell every watcher of `resource` that it is gone (its CRD was deleted)."""
        with self.lock:
            for subscription in self._subscriptions.pop(resource, []):
                subscription.callback(None)
            self._history.pop(resource, None)
            self._evicted[resource] = self._rv

    def end_all_watches(self) -> None:
        with self.lock:
            for subscriptions in self._subscriptions.values():
                for subscription in subscriptions:
                    subscription.callback(None)
            self._subscriptions.clear()

    def snapshot(self) -> Iterator[tuple[ResourceKey, dict[str, Any]]]:
        """Every object, for a dump; taken under the lock, yielded after it."""
        with self.lock:
            items = [
                (resource, stored.obj)
                for resource in sorted(self._objects)
                for ns in sorted(self._objects[resource])
                for _, stored in sorted(self._objects[resource][ns].items())
            ]
        yield from items
