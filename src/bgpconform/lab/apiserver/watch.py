"""Watch streams: catch-up, live events in resourceVersion order, selector transitions, bookmarks.

A watcher gets, atomically from the store, either a synthetic ADDED per existing object (no
resourceVersion, or "0") or every recorded event after the given version, then live events. An
object that starts or stops matching the selectors arrives as ADDED or DELETED, as from the
real watch cache. Too old a version ends the stream with an `Expired` (410) ERROR event, the
shape client-go and the Python client's `Watch` turn into a relist.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from bgpconform.lab.apiserver.errors import gone
from bgpconform.lab.apiserver.resources import ResourceType
from bgpconform.lab.apiserver.selectors import FieldSelector, LabelSelector
from bgpconform.lab.apiserver.store import Event, Store, Stored, TooOld, dumps

Render = Callable[[str, Stored], bytes]  # (event type, object) -> one JSON line


@dataclass
class WatchRequest:
    resource: ResourceType
    version: str
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    since: int | None
    timeout: float
    bookmarks: bool
    initial_events_end: bool  # sendInitialEvents=true: a bookmark marks the end of the catch-up


class Closing:
    """Set when the server stops, so long-lived streams end instead of holding the shutdown."""

    def __init__(self) -> None:
        self.event = asyncio.Event()


def default_render(resource: ResourceType, version: str) -> Render:
    """Events as JSON lines; the cached line is reused when the stored version is the served one."""
    api_version = resource.api_version(version)

    def render(kind: str, stored: Stored) -> bytes:
        if stored.obj.get("apiVersion") == api_version:
            return b'{"type":"' + kind.encode() + b'","object":' + stored.json() + b"}\n"
        return dumps({"type": kind, "object": {**stored.obj, "apiVersion": api_version}}) + b"\n"

    return render


def _matches(request: WatchRequest, stored: Stored | None) -> bool:
    return stored is not None and request.labels.matches(stored.labels) and request.fields.matches(stored.obj)


def translate(request: WatchRequest, event: Event) -> str | None:
    """The event type this watcher should see, or None to skip it."""
    now_matches = _matches(request, event.stored) if event.type != "DELETED" else False
    before = _matches(request, event.previous)
    if event.type == "ADDED":
        return "ADDED" if now_matches else None
    if event.type == "DELETED":
        return "DELETED" if before else None
    if now_matches and before:
        return "MODIFIED"
    if now_matches:
        return "ADDED"
    if before:
        return "DELETED"
    return None


def bookmark(request: WatchRequest, rv: int, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {
        "kind": request.resource.kind,
        "apiVersion": request.resource.api_version(request.version),
        "metadata": meta,
    }
    return dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


async def stream(
    store: Store,
    request: WatchRequest,
    render: Render,
    closing: Closing,
    bookmark_interval: float,
) -> AsyncGenerator[bytes, None]:
    """Yield the watch's lines until timeout, server stop, or the resource going away."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def deliver(event: Event | None) -> None:
        if threading.get_ident() == loop_thread:
            queue.put_nowait(event)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, event)

    namespace = request.namespace
    try:
        initial, subscription = store.subscribe(request.resource.key, namespace, request.since, deliver)
    except TooOld as exc:
        status = gone(str(exc)).status()
        yield dumps({"type": "ERROR", "object": status}) + b"\n"
        return
    try:
        last_rv = request.since or 0
        for event in initial:
            kind = translate(request, event)
            if kind is not None:
                yield render(kind, event.stored)
            last_rv = max(last_rv, event.rv)
        if request.initial_events_end and request.bookmarks:
            yield bookmark(request, max(last_rv, store.resource_version), initial_end=True)
        deadline = time.monotonic() + request.timeout
        next_bookmark = time.monotonic() + bookmark_interval
        while not closing.event.is_set():
            now = time.monotonic()
            if now >= deadline:
                if request.bookmarks and queue.empty():
                    yield bookmark(request, store.resource_version)
                return
            if queue.empty():
                wait_until = min(deadline, next_bookmark) if request.bookmarks else deadline
                try:
                    live = await asyncio.wait_for(queue.get(), timeout=max(wait_until - now, 0))
                except TimeoutError:
                    if request.bookmarks and time.monotonic() >= next_bookmark and queue.empty():
                        yield bookmark(request, store.resource_version)
                        next_bookmark = time.monotonic() + bookmark_interval
                    continue
            else:
                live = queue.get_nowait()
            if live is None:  # the resource went away or the server is stopping
                return
            kind = translate(request, live)
            if kind is not None:
                yield render(kind, live.stored)
    finally:
        store.unsubscribe(subscription)
