"""Who answers `kubectl exec` for a container: handlers the emulated components register.

A handler stands in for the container runtime: it gets the command and, when the client sends
stdin, all of it, and returns what the process would have written and its exit code. Handlers run
in a worker thread, so they may block (run a real command in a network namespace, say).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ExecResult:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0


class ExecHandler(Protocol):
    def __call__(self, argv: list[str], stdin: bytes | None) -> ExecResult: ...


class ExecRegistry:
    """Handlers by (namespace, pod, container); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[tuple[str, str, str], ExecHandler] = {}

    def register(self, namespace: str, pod: str, container: str, handler: ExecHandler) -> None:
        with self._lock:
            self._handlers[(namespace, pod, container)] = handler

    def unregister(self, namespace: str, pod: str, container: str | None = None) -> None:
        """Remove one container's handler, or every handler of the pod when `container` is None."""
        with self._lock:
            for key in list(self._handlers):
                if key[:2] == (namespace, pod) and (container is None or key[2] == container):
                    del self._handlers[key]

    def lookup(self, namespace: str, pod: str, container: str) -> ExecHandler | None:
        with self._lock:
            return self._handlers.get((namespace, pod, container))
