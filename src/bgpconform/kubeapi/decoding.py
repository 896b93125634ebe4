"""Decoding the API's JSON answers, with the garbage collector paused for large ones.

A list of 1,000 pods is 3-4 MB of JSON and a few hundred thousand new objects; each ten thousand or
so allocations start a collection, and in a process that already holds many objects (a harness with
an informer's cache) those collections cost as much as the decoding itself: measured on 2 cores,
orjson took 17-30 ms for such a list with the collector running and 10-14 ms with it paused. Decoded
JSON holds no reference cycles, so pausing finds nothing later that it would have found then.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

import orjson

PAUSE_FROM_BYTES = 256 * 1024  # below this the collector's passes cost little next to the request


class _CollectorPause:
    """Counts the decodes under way; the first pauses the collector, the last resumes it if it ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoding = 0
        self._resume = False

    def __enter__(self) -> None:
        with self._lock:
            if self._decoding == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._decoding += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._decoding -= 1
            if self._decoding == 0 and self._resume:
                gc.enable()


_paused = _CollectorPause()


def decode_json(data: bytes) -> Any:
    """`orjson.loads`, the collector paused while it decodes a large body (thread-safe)."""
    if len(data) < PAUSE_FROM_BYTES:
        return orjson.loads(data)
    with _paused:
        return orjson.loads(data)
