"""The lab's API server in a process of its own, as kube-apiserver is on a cluster.

In one interpreter with fifty emulated agents, the API server answered a list of 1,000 pods in
80-210 ms, where on its own it takes a few: every request waited for the interpreter the agents kept
busy (README, "Many services at once"). `ApiServerProcess` starts `process_main` and offers what
the lab needs of the server: its URL and kubeconfig, a log sink for the kubelets, an exec registry
whose handlers the server's process calls back, and a dump of every object for the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import bgpconform
from bgpconform.errors import LabError
from bgpconform.lab.apiserver import kubeconfig
from bgpconform.lab.apiserver.channel import Channel, ChannelClosed
from bgpconform.lab.apiserver.exec_registry import ExecHandler, ExecRegistry, ExecResult
from bgpconform.lab.apiserver.util import now
from bgpconform.lab.supervisor import Daemon

START_DEADLINE = 60.0  # an interpreter importing aiohttp on a loaded 2-core machine
CALL_DEADLINE = 60.0
STOP_DEADLINE = 30.0
LOG_NAME = "apiserver.log"


class ForwardedLogs:
    """The kubelets' container logs, sent to the server's process as they are written."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def append(self, namespace: str, pod: str, container: str, line: str) -> None:
        with contextlib.suppress(ChannelClosed):  # a container's last words after the API stopped
            self._channel.send("log", namespace, pod, container, line, now().isoformat())


class MirroredExecs(ExecRegistry):
    """Handlers stay in the lab's process; the server's process learns each key before `register`
    returns, so a pod reported Running can always be exec'd into."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel
        self._mirroring = threading.Lock()  # both sides change in the same order

    def register(self, namespace: str, pod: str, container: str, handler: ExecHandler) -> None:
        with self._mirroring:
            self._channel.call("exec-register", namespace, pod, container, timeout=CALL_DEADLINE)
            super().register(namespace, pod, container, handler)

    def unregister(self, namespace: str, pod: str, container: str | None = None) -> None:
        with self._mirroring:
            super().unregister(namespace, pod, container)
            with contextlib.suppress(ChannelClosed):  # the server's process already forgot everything
                self._channel.call("exec-unregister", namespace, pod, container, timeout=CALL_DEADLINE)

    def run(
        self, namespace: str, pod: str, container: str, argv: list[str], stdin: bytes | None
    ) -> ExecResult:
        handler = self.lookup(namespace, pod, container)
        if handler is None:
            raise LabError(f"no exec handler for container {container} of pod {namespace}/{pod}")
        return handler(argv, stdin)


class ApiServerProcess(kubeconfig.Addressed):
    """Starts, serves and stops the API server's process; the lab's view of `server.ApiServer`."""

    def __init__(self, run_dir: Path, cluster_name: str = "lab", k3s_version: str = "v1.27.3+k3s1") -> None:
        self.run_dir = Path(run_dir)
        self.cluster_name = cluster_name
        self.k3s_version = k3s_version
        self._lock = threading.Lock()
        self._daemon: Daemon | None = None
        self._socket: socket.socket | None = None
        self._channel: Channel | None = None
        self._reader: threading.Thread | None = None
        self._url: str | None = None
        self._started = threading.Event()
        self._start_answer: tuple[str, str] | None = None
        self.logs: ForwardedLogs | None = None
        self.exec_handlers: MirroredExecs | None = None

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def pid(self) -> int | None:
        return None if self._daemon is None else self._daemon.pid

    @property
    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running

    def start(self) -> None:
        """Start the process and return once it serves (its kubeconfig written), or raise naming why."""
        with self._lock:
            if self.running:
                return
            if self._daemon is not None:  # died on its own: its socket and reader go before a new one
                self._close()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ours, theirs = socket.socketpair()
            settings = {
                "run_dir": str(self.run_dir),
                "cluster_name": self.cluster_name,
                "k3s_version": self.k3s_version,
            }
            environment = dict(os.environ)
            package_root = str(Path(bgpconform.__file__).resolve().parents[1])
            environment["PYTHONPATH"] = os.pathsep.join(
                p for p in (package_root, environment.get("PYTHONPATH", "")) if p
            )
            daemon = Daemon(
                "the lab API server",
                [
                    sys.executable, "-m", "bgpconform.lab.apiserver.process_main",
                    str(theirs.fileno()), json.dumps(settings),
                ],
                self.log_path, env=environment, pass_fds=(theirs.fileno(),),
            )  # fmt: skip
            try:
                daemon.start()
            except OSError as exc:
                ours.close()
                raise LabError(f"the lab API server's process could not start: {exc}") from exc
            finally:
                theirs.close()
            self._daemon = daemon
            self._socket = ours
            channel = Channel(Connection(os.dup(ours.fileno())), "lab")
            self._channel = channel
            self.logs = ForwardedLogs(channel)
            self.exec_handlers = MirroredExecs(channel)
            self._started.clear()
            self._start_answer = None
            self._reader = threading.Thread(
                target=self._serve, args=(channel,), name="lab-apiserver-channel", daemon=True
            )
            self._reader.start()
        try:
            answered = self._started.wait(START_DEADLINE)
        except BaseException:  # a Ctrl-C while waiting: the process is in no group the signal reaches
            self._abandon()
            raise
        if not answered or self._start_answer is None:
            self._abandon()
            raise LabError(
                f"the lab API server's process did not answer within {START_DEADLINE:g} s; "
                f"its log ({self.log_path}) ends: {self._log_tail()}"
            )
        kind, detail = self._start_answer
        if kind != "ready":
            self._abandon()
            raise LabError(
                f"the lab API server did not start: {detail}; "
                f"its log ({self.log_path}) ends: {self._log_tail()}"
            )
        self._url = detail

    def _serve(self, channel: Channel) -> None:
        exec_handlers = self.exec_handlers
        assert exec_handlers is not None

        def answered(kind: str) -> Callable[[str], None]:
            def handler(detail: str) -> None:
                self._start_answer = (kind, detail)
                self._started.set()

            return handler

        channel.serve(
            {"ready": answered("ready"), "failed": answered("failed"), "exec": exec_handlers.run},
            threaded=("exec",),
        )
        self._started.set()  # the process went away before a word: start() says so

    def _log_tail(self) -> str:
        return " | ".join(self._daemon.log_tail(5).strip().splitlines()) if self._daemon else "(no log)"

    def stop(self) -> None:
        """Ask the process to close its watches and streams and exit; kill it if it does not; idempotent."""
        with self._lock:
            daemon, channel = self._daemon, self._channel
            if daemon is None or channel is None:
                return
            if daemon.running:
                with contextlib.suppress(LabError):  # ended below if it does not answer
                    channel.call("stop", timeout=STOP_DEADLINE)
            self._close()
            self._url = None

    def _abandon(self) -> None:
        with self._lock:
            if self._daemon is not None:
                self._close()

    def _close(self) -> None:
        assert self._daemon is not None
        assert self._socket is not None
        assert self._channel is not None
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # the process sees its end close; our reader wakes
        self._daemon.stop(grace=STOP_DEADLINE)  # gone already once it answered "stop"
        if self._reader is not None:
            self._reader.join(timeout=STOP_DEADLINE)
        if self._reader is None or not self._reader.is_alive():  # never close an fd under a recv
            self._channel.close()
            self._socket.close()
        self._daemon = self._socket = self._channel = self._reader = None

    def dump(self, path: Path) -> None:
        """Every object as multi-document YAML, secrets' values redacted, written by the server."""
        if self._channel is None:
            raise LabError("the lab API server is not started")
        self._channel.call("dump", str(Path(path).resolve()), timeout=CALL_DEADLINE)

    def __enter__(self) -> ApiServerProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
