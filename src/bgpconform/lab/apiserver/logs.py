"""Container logs, written by the emulated components and read through `pods/log`.

Writers run in other threads; followers (`kubectl logs -f`) wait on the server's loop. A follower
registers a wake-up callable that is handed to the loop thread-safely, so appending never blocks on
a slow reader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bgpconform.lab.apiserver.util import now

Key = tuple[str, str, str]  # namespace, pod, container


@dataclass(frozen=True)
class LogLine:
    at: datetime
    text: str

    def render(self, timestamps: bool) -> str:
        if not timestamps:
            return self.text + "\n"
        return self.at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z " + self.text + "\n"


class LogSink(Protocol):
    """Where a container's runtime writes its log: the registry itself, or its forwarder when the API
    server runs in a process of its own (`process.ForwardedLogs`)."""

    def append(self, namespace: str, pod: str, container: str, line: str) -> None: ...


class LogRegistry:
    """Per-container log lines, kept while the pod exists; thread-safe."""

    def __init__(self, max_lines: int = 10000) -> None:
        self._lock = threading.Lock()
        self._lines: dict[Key, list[LogLine]] = {}
        self._dropped: dict[Key, int] = {}
        self._waiters: dict[Key, list[Callable[[], None]]] = {}
        self._max_lines = max_lines

    def append(self, namespace: str, pod: str, container: str, line: str, at: datetime | None = None) -> None:
        """Add one line (or several, if `line` holds newlines) to a container's log; `at`: when it
        was written, if not now (a forwarded line keeps the time its container wrote it)."""
        stamp = at or now()
        parts = line.rstrip("\n").split("\n") if line else [""]
        with self._lock:
            lines = self._lines.setdefault((namespace, pod, container), [])
            lines.extend(LogLine(stamp, part) for part in parts)
            if len(lines) > self._max_lines:
                excess = len(lines) - self._max_lines
                del lines[:excess]
                key = (namespace, pod, container)
                self._dropped[key] = self._dropped.get(key, 0) + excess
            waiters = list(self._waiters.get((namespace, pod, container), ()))
        for wake in waiters:
            wake()

    def lines(self, namespace: str, pod: str, container: str) -> list[LogLine]:
        with self._lock:
            return list(self._lines.get((namespace, pod, container), ()))

    def since(self, key: Key, position: int) -> tuple[list[LogLine], int]:
        """Lines appended after `position` (a count of lines ever written) and the new position."""
        with self._lock:
            lines = self._lines.get(key, [])
            dropped = self._dropped.get(key, 0)
            start = max(position - dropped, 0)
            return lines[start:], dropped + len(lines)

    def clear(self, namespace: str, pod: str) -> None:
        """Forget a removed pod's logs, and wake its followers so their streams end."""
        with self._lock:
            keys = [k for k in self._lines if k[:2] == (namespace, pod)]
            for key in keys:
                del self._lines[key]
                self._dropped.pop(key, None)
            waiters = [w for k, ws in self._waiters.items() if k[:2] == (namespace, pod) for w in ws]
        for wake in waiters:
            wake()

    def watch(self, key: Key, wake: Callable[[], None]) -> None:
        with self._lock:
            self._waiters.setdefault(key, []).append(wake)

    def unwatch(self, key: Key, wake: Callable[[], None]) -> None:
        with self._lock:
            waiters = self._waiters.get(key, [])
            if wake in waiters:
                waiters.remove(wake)
            if not waiters:
                self._waiters.pop(key, None)
