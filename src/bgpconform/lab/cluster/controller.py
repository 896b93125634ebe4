"""A level-triggered control loop: informers wake it, one worker thread reconciles from their caches.

Wakes are coalesced (many events, one pass), a failed pass is retried with backoff, and `resync`
gives each loop a heartbeat for what no event announces (timers, processes that died).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bgpconform.kubeapi.client import Kube, KubeResource
from bgpconform.lab.cluster.informer import Informer

log = logging.getLogger(__name__)


class Controller:
    """Subclasses add informers in `__init__` through `inform` and implement `reconcile`."""

    name = "controller"

    def __init__(self, kube: Kube, *, resync: float = 5.0) -> None:
        self.kube = kube
        self.resync = resync
        self.informers: list[Informer] = []
        self.passes = 0
        self.last_error: Exception | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def inform(self, resource: KubeResource, **kwargs: Any) -> Informer:
        informer = Informer(self.kube, resource, on_change=self.wake, **kwargs)
        self.informers.append(informer)
        return informer

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> Controller:
        for informer in self.informers:
            informer.start()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for informer in self.informers:
            informer.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=15)
        self.on_stop()

    def on_stop(self) -> None:
        """Release what the loop holds (processes, namespaces); runs once the loop has ended."""

    def synced(self) -> bool:
        return all(informer.synced.is_set() for informer in self.informers)

    def reconcile(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            self._wake.wait(self.resync)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not self.synced():
                continue
            try:
                self.reconcile()
                self.passes += 1
                self.last_error = None
                backoff = 0.05
            except Exception as exc:
                if self._stop.is_set():
                    return
                self.last_error = exc
                log.warning("%s: reconcile failed, retrying in %.2fs: %s", self.name, backoff, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                self._wake.set()
