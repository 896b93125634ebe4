"""List-then-watch caches of one resource, as client-go's informers keep them.

A component reacts to changes by reading the whole cache (level-triggered), never by trusting one
event: a missed or coalesced event then costs nothing. The watch is restarted from the last seen
resourceVersion, and from a fresh list when the server answers 410 Gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, KubeResource, WatchStream
from bgpconform.lab.cluster.frozen import cached

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace or "", name)


def object_key(obj: dict[str, Any]) -> ObjectKey:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Informer:
    """Keeps `objects` equal to the server's, calling `on_change()` after every change it applies.

    `synced` is set once the first list is in. Missing resources (a CRD not installed yet) are listed
    again every `retry` seconds; the attempt's error is kept in `last_error` for the caller to report.
    """

    def __init__(
        self,
        kube: Kube,
        resource: KubeResource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        on_change: Callable[[], None] | None = None,
        retry: float = 0.5,
        watch_timeout: int = 55,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.on_change = on_change or (lambda: None)
        self.retry = retry
        self.watch_timeout = watch_timeout
        self.synced = threading.Event()
        self.last_error: Exception | None = None
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self.generation = 0  # counts the changes applied, so a reader can tell "nothing changed" cheaply
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None

    # -- reading -----------------------------------------------------------------------------------
    def objects(self) -> list[dict[str, Any]]:
        """The cached objects themselves, shared (`frozen`): a reader that changes one deep-copies it."""
        with self._lock:
            return list(self._objects.values())

    def get(self, name: str, namespace: str = "") -> dict[str, Any] | None:
        """The cached object, read-only like `objects()`."""
        with self._lock:
            return self._objects.get((namespace, name))

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Informer:
        name = f"informer-{self.resource.plural}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._relist()
                version = self._watch(version)
            except ApiException as exc:
                self.last_error = exc
                if exc.status == 410:
                    version = None
                    continue
                version = None
                self._stop.wait(self.retry)
            except Exception as exc:
                if self._stop.is_set():
                    return
                self.last_error = exc
                log.debug("informer %s: %s", self.resource.plural, exc)
                version = None
                self._stop.wait(self.retry)

    def _relist(self) -> str:
        listed = self.kube.listing(
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh = {object_key(item): cached(item) for item in listed["items"]}
        with self._lock:
            changed = fresh != self._objects
            self._objects = fresh
            self.generation += 1
        self.last_error = None
        first = not self.synced.is_set()
        self.synced.set()
        if changed or first:
            self.on_change()
        version: str = listed["metadata"].get("resourceVersion", "")
        return version

    def _watch(self, version: str) -> str | None:
        stream = self.kube.watch(
            self.resource,
            self.namespace,
            resource_version=version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
        )
        self._stream = stream
        if self._stop.is_set():
            stream.close()
        for event in stream:
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return None
                raise RuntimeError(f"watch {self.resource.plural}: {obj.get('message')}")
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if kind == "BOOKMARK":
                continue
            kept = cached(obj)
            with self._lock:
                if kind == "DELETED":
                    self._objects.pop(object_key(obj), None)
                else:
                    self._objects[object_key(obj)] = kept
                self.generation += 1
            self.on_change()
        return version
