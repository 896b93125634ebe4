"""Messages between the lab and its API server's process, over one socket pair.

The API server runs in a process of its own (`process`), as kube-apiserver does: the emulated
kubelets and agents then do not share an interpreter with it, and a client's list is answered by a
process that does nothing else. What only the kubelet's side knows travels here: container log lines
(one way, as a runtime's log files are read after they are written) and exec requests (answered by
the kubelet's handlers). Messages are pickled tuples `(kind, call_id, *payload)`; a call waits for
`("reply", call_id, error, value)` with a deadline. Both ends are this package's own code.
"""

from __future__ import annotations

import itertools
import logging
import pickle
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from bgpconform.errors import LabError

log = logging.getLogger(__name__)

REPLY = "reply"


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    value: Any = None


def _unknown(kind: str, *_: Any) -> None:
    raise LabError(f"no handler for {kind!r} at this end")


class ChannelClosed(LabError):
    """The other end is gone: its process exited or closed the pair."""


class Channel:
    """One end of the pair; thread-safe for senders, one thread receives (`serve`)."""

    def __init__(self, connection: Connection, name: str) -> None:
        self.name = name
        self._connection = connection
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _write(self, message: tuple[Any, ...]) -> None:
        if self._closed.is_set():
            raise ChannelClosed(f"{self.name}: the channel is closed")
        try:
            with self._send_lock:
                self._connection.send(message)
        except (OSError, ValueError) as exc:
            self._close_pending(f"{self.name}: sending failed: {exc}")
            raise ChannelClosed(f"{self.name}: sending failed: {exc}") from exc

    def send(self, kind: str, *payload: Any) -> None:
        """One way: no reply is awaited."""
        self._write((kind, None, *payload))

    def call(self, kind: str, *payload: Any, timeout: float) -> Any:
        """Send and wait for the reply; the other end's failure is raised here as a `LabError`."""
        call_id = next(self._ids)
        pending = _Pending()
        with self._pending_lock:
            self._pending[call_id] = pending
        try:
            self._write((kind, call_id, *payload))
            if not pending.done.wait(timeout):
                raise LabError(
                    f"{self.name}: expected a reply to {kind!r} within {timeout:g} s, got none "
                    f"(the other end {'has closed' if self.closed else 'is still connected'})"
                )
        finally:
            with self._pending_lock:
                self._pending.pop(call_id, None)
        if pending.error is not None:
            raise LabError(f"{self.name}: {kind} failed: {pending.error}")
        return pending.value

    def serve(
        self,
        handlers: Mapping[str, Callable[..., Any]],
        *,
        threaded: Collection[str] = (),
        until: threading.Event | None = None,
    ) -> None:
        """Receive until the other end closes (or `until` is set after a message): replies complete
        calls, requests go to `handlers`, those named in `threaded` each in a thread of its own (an
        exec may block for seconds and must not hold up the log lines behind it)."""
        try:
            while until is None or not until.is_set():
                try:
                    message = self._connection.recv()
                except (EOFError, OSError):
                    return
                kind, call_id, *payload = message
                if kind == REPLY:
                    self._complete(call_id, *payload)
                    continue
                handler = handlers.get(kind, partial(_unknown, kind))
                if kind in threaded:
                    threading.Thread(
                        target=self._answer,
                        args=(handler, kind, call_id, payload),
                        name=f"{self.name}-{kind}",
                        daemon=True,
                    ).start()
                else:
                    self._answer(handler, kind, call_id, payload)
        finally:
            self._close_pending(f"{self.name}: the other end closed the channel")

    def _answer(
        self, handler: Callable[..., Any], kind: str, call_id: int | None, payload: list[Any]
    ) -> None:
        error: str | None = None
        value: Any = None
        try:
            value = handler(*payload)
        except Exception as exc:  # reported to the caller, whose call raises it
            error = str(exc) or type(exc).__name__
            if call_id is None:
                log.warning("%s: %s failed: %s", self.name, kind, error)
        if call_id is None:
            return
        try:
            try:
                self._write((REPLY, call_id, error, value))
            except (TypeError, AttributeError, pickle.PicklingError) as exc:  # the caller must hear back
                self._write((REPLY, call_id, f"{kind}'s answer could not be sent: {exc}", None))
        except ChannelClosed:
            log.debug("%s: the reply to %s found the channel closed", self.name, kind)

    def _complete(self, call_id: int, error: str | None, value: Any) -> None:
        with self._pending_lock:
            pending = self._pending.get(call_id)
        if pending is not None:
            pending.error, pending.value = error, value
            pending.done.set()

    def _close_pending(self, why: str) -> None:
        """Every waiting call ends at once with `why` instead of running into its deadline."""
        self._closed.set()
        with self._pending_lock:
            waiting = list(self._pending.values())
        for pending in waiting:
            if not pending.done.is_set():
                pending.error = why
                pending.done.set()

    def close(self) -> None:
        """Ends waiting calls; the owner of the socket shuts it down to end a blocked `serve`."""
        self._close_pending(f"{self.name}: closed")
        with self._send_lock:
            self._connection.close()
