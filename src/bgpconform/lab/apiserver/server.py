"""The lab's Kubernetes API server: lifecycle, kubeconfig, bootstrap objects, dumps."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from bgpconform.errors import LabError
from bgpconform.lab.apiserver import kubeconfig
from bgpconform.lab.apiserver.exec_registry import ExecRegistry
from bgpconform.lab.apiserver.logs import LogRegistry
from bgpconform.lab.apiserver.operations import Api, WriteOptions
from bgpconform.lab.apiserver.resources import Registry
from bgpconform.lab.apiserver.routes import Routes, ServerState
from bgpconform.lab.apiserver.store import Store
from bgpconform.report import api_dump as dumping

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
KUBERNETES_SERVICE_IP = "10.43.0.1"  # first address of the k3s service CIDR, as on a k3s cluster


class ApiServer(kubeconfig.Addressed):
    """An in-memory Kubernetes API on 127.0.0.1, served by its own asyncio loop in a daemon thread.

    It speaks plain HTTP without authentication: it listens on loopback only, for the run's own
    clients and a person exploring the lab with kubectl. Emulated components fill `logs` and
    `exec_handlers` directly (the kubelet's side of those subresources) but reach objects only
    through the HTTP API, as real components would.
    """

    def __init__(
        self,
        run_dir: Path,
        cluster_name: str = "lab",
        k3s_version: str = "v1.27.3+k3s1",
        *,
        history: int = 1000,
        bookmark_interval: float = 60.0,
        exec_handlers: ExecRegistry | None = None,
    ) -> None:
        """`exec_handlers`: who answers exec, when not handlers registered in this process."""
        self.run_dir = Path(run_dir)
        self.cluster_name = cluster_name
        self.k3s_version = k3s_version
        self.bookmark_interval = bookmark_interval
        self.store = Store(history)
        self.registry = Registry()
        self.api = Api(self.store, self.registry)
        self.logs = LogRegistry()
        self.exec_handlers = exec_handlers if exec_handlers is not None else ExecRegistry()
        self.api.pod_removed.append(self._forget_pod)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._transports: set[asyncio.Transport] = set()
        self._state: ServerState | None = None
        self._url: str | None = None
        self._bootstrap()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _forget_pod(self, namespace: str, pod: str) -> None:
        """A removed pod's logs and exec handlers go with it, as its containers would."""
        self.logs.clear(namespace, pod)
        self.exec_handlers.unregister(namespace, pod)

    def _bootstrap(self) -> None:
        """What a fresh k3s API has before anything else runs: its namespaces and `kubernetes` service."""
        options = WriteOptions(manager="kube-apiserver")
        namespaces = self.registry.get("", "namespaces")
        services = self.registry.get("", "services")
        assert namespaces is not None
        assert services is not None
        for name in BOOTSTRAP_NAMESPACES:
            self.api.create(namespaces, "v1", None, {"metadata": {"name": name}}, options)
        service = {
            "metadata": {
                "name": "kubernetes",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": KUBERNETES_SERVICE_IP,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        }
        self.api.create(services, "v1", "default", service, options)

    def start(self) -> None:
        """Bind a free port on 127.0.0.1, serve, write the kubeconfig; returns once requests are answered."""
        with self._lock:
            if self.running:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", 0))
                sock.listen(256)
                sock.setblocking(False)
            except OSError as exc:
                sock.close()
                raise LabError(f"the lab API server could not bind 127.0.0.1: {exc}") from exc
            port = sock.getsockname()[1]
            self._url = f"http://127.0.0.1:{port}"
            ready = threading.Event()
            failures: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._serve, args=(sock, ready, failures), name="lab-apiserver", daemon=True
            )
            self._thread.start()
            if not ready.wait(timeout=30) or failures:
                detail = f": {failures[0]}" if failures else " within 30s"
                raise LabError(f"the lab API server did not start{detail}")
            kubeconfig.write(self.kubeconfig_path, self._url, self.cluster_name)

    def _serve(self, sock: socket.socket, ready: threading.Event, failures: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            state = ServerState(
                store=self.store,
                registry=self.registry,
                api=self.api,
                logs=self.logs,
                execs=self.exec_handlers,
                k3s_version=self.k3s_version,
                address=self.url.removeprefix("http://"),
                bookmark_interval=self.bookmark_interval,
            )
            # Cancelling a handler when its client goes away ends idle watches and log streams at once.
            runner = web.AppRunner(
                Routes(state).application(), access_log=None, shutdown_timeout=5.0, handler_cancellation=True
            )
            loop.run_until_complete(runner.setup())
            server = runner.server
            assert server is not None

            def connection() -> asyncio.BaseProtocol:
                """aiohttp's handler behind a shim that remembers the transport, for stop()."""
                return _Tracked(server(), self._transports)

            self._listener = loop.run_until_complete(loop.create_server(connection, sock=sock))
            self._state, self._runner = state, runner
        except BaseException as exc:  # reported to start(), which raises it in the caller's thread
            failures.append(exc)
            ready.set()
            sock.close()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._abort_connections()
            with contextlib.suppress(RuntimeError):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _abort_connections(self) -> None:
        """The last resort after the loop stops: no connection outlives stop(), so no client hangs."""
        assert self._loop is not None
        for transport in list(self._transports):
            if not transport.is_closing():
                transport.abort()
        self._transports.clear()
        self._loop.run_until_complete(asyncio.sleep(0))  # let the aborts close their sockets

    async def _shutdown(self) -> None:
        assert self._state is not None
        assert self._runner is not None
        self._state.closing.event.set()
        self.store.end_all_watches()
        for wake in list(self._state.wakers):
            wake()
        for ws in list(self._state.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server shutting down")
        if self._listener is not None:
            # Stop accepting first and let connections accepted a moment ago reach aiohttp (task,
            # protocol, connection_made take a few loop turns), so that the cleanup below closes them
            # like any other. Closing the asyncio Server at this point would strand them: Python 3.11
            # leaks a socket whose accept is still in flight when its Server closes.
            for listening in self._listener.sockets:
                asyncio.get_running_loop().remove_reader(listening.fileno())
            for _ in range(3):
                await asyncio.sleep(0)
        await self._runner.cleanup()
        if self._listener is not None:
            self._listener.close()

    def stop(self) -> None:
        """Close watches, log streams and exec sessions, stop serving and join the thread; idempotent."""
        with self._lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            if thread.is_alive() and self._runner is not None:
                future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                with contextlib.suppress(Exception):
                    future.result(timeout=30)
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            self._thread = self._loop = None
            self._runner = self._state = None

    def dump(self, path: Path) -> None:
        """Every object as multi-document YAML, secrets' values redacted; safe while serving."""
        dumping.write(Path(path), self.store.snapshot())

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class _Tracked(asyncio.Protocol):
    """Passes everything to aiohttp's protocol; keeps the set of open transports up to date."""

    def __init__(self, inner: Any, transports: set[asyncio.Transport]) -> None:
        self._inner = inner
        self._transports = transports
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._transports.add(transport)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._transports.discard(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()
