"""The images the lab can "pull": what runs when a container names them.

The lab has no registry access and no container runtime (`runtime.py`), so an image is a program:
`nginx:*` is a real nginx in the pod's namespace serving the stock page (the walkthrough's
`simple-pod`); the add-ons a minimal k3s v1.27.3 deploys (CoreDNS, local-path-provisioner, pause) and
busybox run nothing and are ready once started, after logging the first lines the real images print.
Cilium's images are registered by the Cilium emulation (`quay.io/cilium/cilium:*`,
`quay.io/cilium/operator-generic:*`); `ImageRegistry.register` stays open for that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from bgpconform.lab.cluster.runtime import ContainerContext, ContainerProgram, ImageRegistry
from bgpconform.lab.network import PodAttachment
from bgpconform.lab.workloads import NginxContainer, parse_access_log

log = logging.getLogger(__name__)

NGINX_START_TIMEOUT = 10.0
# How often a running nginx's access log is read for new requests: how late they show in its pod log.
ACCESS_LOG_TICK = 0.1

# The official nginx image's entrypoint prints these before nginx starts (docker-nginx
# `docker-entrypoint.sh` and its `/docker-entrypoint.d` scripts).
NGINX_ENTRYPOINT_LINES = (
    "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration",
    "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/",
    "/docker-entrypoint.sh: Launching /docker-entrypoint.d/10-listen-on-ipv6-by-default.sh",
    "10-listen-on-ipv6-by-default.sh: info: Getting the checksum of /etc/nginx/conf.d/default.conf",
    "10-listen-on-ipv6-by-default.sh: info: Enabled listen on IPv6 in /etc/nginx/conf.d/default.conf",
    "/docker-entrypoint.sh: Launching /docker-entrypoint.d/20-envsubst-on-templates.sh",
    "/docker-entrypoint.sh: Launching /docker-entrypoint.d/30-tune-worker-processes.sh",
    "/docker-entrypoint.sh: Configuration complete; ready for start up",
)


def container_port(ctx: ContainerContext, default: int = 80) -> int:
    """The container's first declared containerPort, else `default`."""
    for port in ctx.container.get("ports") or []:
        if port.get("containerPort"):
            return int(port["containerPort"])
    return default


class NginxProgram:
    """`nginx:*`: a real nginx in the pod's namespace; ready once a GET from inside gets the page.

    `NginxContainer.start` waits for the page, so it runs in a thread of its own: the kubelet's loop
    never blocks on it, and `ready()` turns True when it returned. A hostNetwork pod's nginx listens
    in the node's namespace on the node's address.

    The official image links its access log to stdout, so `kubectl logs` shows each request in the
    `combined` format; so does this one. That thread follows the JSON access log nginx already keeps
    for evidence, reading new bytes by offset on a short tick: the file is the one record nginx writes,
    so no request is lost, repeated or reordered, and `stop()` forwards what the last tick missed from
    the copy the container keeps. A second, `syslog:server=unix:` access log would be event-driven
    but lossy: nginx writes it non-blocking and drops what a full socket buffer or an absent listener
    refuses. Readiness probe GETs are left out: a pod without a probe logs none.
    """

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        attachment = ctx.attachment or PodAttachment(
            namespace=ctx.namespace,
            node=ctx.node.name,
            ip=ctx.node.address,
            gateway=ctx.topology.router.address,
            host_device="",
        )
        self.port = container_port(ctx)
        self.container = NginxContainer(attachment, ctx.directory / "nginx", port=self.port)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: Exception | None = None
        self._stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._log_offset = 0

    def start(self) -> None:
        for line in NGINX_ENTRYPOINT_LINES:
            self.ctx.log(line)
        self._thread = threading.Thread(target=self._run, name=f"nginx-{self.ctx.pod_name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.container.start(timeout=NGINX_START_TIMEOUT)
        except Exception as exc:
            self._failed = exc
            if not self._stopping.is_set():
                self.ctx.log(f"nginx: [emerg] {exc}")
            return
        stamp = datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S")
        pid = self.container.pid or 1
        self.ctx.log(f'{stamp} [notice] {pid}#{pid}: using the "epoll" event method')
        self.ctx.log(f"{stamp} [notice] {pid}#{pid}: start worker processes")
        self._ready.set()
        while not self._stopping.wait(ACCESS_LOG_TICK):
            self._forward_access_log()

    def _forward_access_log(self) -> None:
        """Log the requests nginx logged since the last call, in the format the real image logs."""
        with self._log_lock:
            try:
                lines, self._log_offset = self.container.access_log_since(self._log_offset)
            except Exception as exc:
                log.warning("nginx in pod %s: reading its access log failed: %s", self.ctx.pod_name, exc)
                return
            for line in lines:
                try:
                    entry = parse_access_log([line])[0]
                    text = entry.combined()
                except (ValueError, KeyError) as exc:
                    log.warning(
                        "nginx in pod %s: unreadable access log line %r: %s", self.ctx.pod_name, line, exc
                    )
                    continue
                if not entry.probe:
                    self.ctx.log(text)

    def ready(self) -> bool:
        return self._ready.is_set() and self.container.running

    def exit_code(self) -> int | None:
        if self._failed is not None:
            return 1
        if self._ready.is_set() and not self.container.running:
            return 1  # nginx died on its own; the lab does not keep its status, only that it is gone
        return None

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=NGINX_START_TIMEOUT + 5)
        self.container.stop()
        self._forward_access_log()  # requests since the last tick, from the copy stop() kept


class IdleProgram:
    """An image whose behaviour nothing in the lab observes: it logs its first lines and stays up."""

    def __init__(self, ctx: ContainerContext, lines: Callable[[ContainerContext], list[str]]) -> None:
        self.ctx = ctx
        self._lines = lines
        self._started = False

    def start(self) -> None:
        for line in self._lines(self.ctx):
            self.ctx.log(line)
        self._started = True

    def ready(self) -> bool:
        return self._started

    def exit_code(self) -> int | None:
        return None

    def stop(self) -> None:
        self._started = False


def _coredns_lines(ctx: ContainerContext) -> list[str]:
    """CoreDNS 1.10.1's start-up banner (the version k3s v1.27.3 ships)."""
    arch = str(ctx.extra.get("architecture", "arm64"))
    return [".:53", "CoreDNS-1.10.1", f"linux/{arch}, go1.20, 055b2c3"]


def _local_path_lines(ctx: ContainerContext) -> list[str]:
    """local-path-provisioner v0.0.24 logs its config, then that it started (k3s's storage path)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = (
        '{\\"nodePathMap\\":[{\\"node\\":\\"DEFAULT_PATH_FOR_NON_LISTED_NODES\\",'
        '\\"paths\\":[\\"/var/lib/rancher/k3s/storage\\"]}]}'
    )
    return [
        f'time="{stamp}" level=debug msg="Applied config: {config}"',
        f'time="{stamp}" level=debug msg="Provisioner started"',
    ]


def _silent(ctx: ContainerContext) -> list[str]:
    return []


def idle(
    lines: Callable[[ContainerContext], list[str]] = _silent,
) -> Callable[[ContainerContext], IdleProgram]:
    """A factory of `IdleProgram`s logging `lines(ctx)` at start."""

    def factory(ctx: ContainerContext) -> IdleProgram:
        return IdleProgram(ctx, lines)

    return factory


def _nginx(ctx: ContainerContext) -> ContainerProgram:
    return NginxProgram(ctx)


def builtin_images() -> ImageRegistry:
    """nginx, the k3s v1.27.3 add-ons and busybox; the caller adds Cilium's images."""
    registry = ImageRegistry()
    registry.register("nginx:*", _nginx)  # also nginx, docker.io/library/nginx:1.25, nginx@sha256:...
    registry.register("rancher/mirrored-coredns-coredns:*", idle(_coredns_lines))
    registry.register("rancher/local-path-provisioner:*", idle(_local_path_lines))
    registry.register("rancher/mirrored-pause:*", idle())
    registry.register("busybox:*", idle())
    return registry
