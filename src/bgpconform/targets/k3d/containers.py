"""The Docker objects of one k3d run: networks with the plan's subnets, and containers started through
testcontainers at the plan's fixed addresses, with published ports bound to 127.0.0.1 only.

Every object is recorded before it is asked for, so a create that fails half-way is still removed;
`close` removes them in reverse order, tolerates what is already gone, and never touches an object
that does not carry this run's label (a same-named network someone else made stays).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.types import EndpointConfig, IPAMConfig, IPAMPool
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from bgpconform.errors import HarnessError, LabError
from bgpconform.targets.k3d.docker_engine import Engine
from bgpconform.targets.k3d.plan import ContainerSpec

RUN_LABEL = "org.bgpconform.run"
LOG_LINES = 20


@dataclass(frozen=True)
class NetworkSpec:
    """A bridge network with a fixed subnet; the gateway and the range Docker assigns from are optional."""

    name: str
    subnet: str
    gateway: str | None = None
    ip_range: str | None = None

    @classmethod
    def from_argv(cls, argv: list[str]) -> NetworkSpec:
        """The plan's `docker network create --subnet=... [--gateway=...] [--ip-range=...] NAME`."""
        if argv[:3] != ["docker", "network", "create"] or len(argv) < 4 or argv[-1].startswith("-"):
            raise HarnessError(f"not a `docker network create ... NAME` command: {argv}")
        flags = dict(arg[2:].split("=", 1) for arg in argv[3:-1] if arg.startswith("--") and "=" in arg)
        unknown = set(flags) - {"subnet", "gateway", "ip-range"}
        if unknown or "subnet" not in flags:
            raise HarnessError(
                f"cannot create network from {argv}: needs --subnet, knows no {sorted(unknown)}"
            )
        return cls(argv[-1], flags["subnet"], flags.get("gateway"), flags.get("ip-range"))


class ContainerNotReady(HarnessError):
    """A container of the run did not become what its spec waits for; says what was expected and seen."""


@dataclass
class StartedContainer:
    """A running container of the run, with what the harness reads from it."""

    spec: ContainerSpec
    container: DockerContainer

    @property
    def name(self) -> str:
        return self.spec.name

    def _wrapped(self) -> Any:
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        return wrapped

    def status(self) -> str:
        """`running`, or e.g. `exited (code 1)`."""
        state = self._wrapped().attrs.get("State", {})
        status = str(state.get("Status", "unknown"))
        return f"{status} (code {state.get('ExitCode')})" if status in {"exited", "dead"} else status

    def published(self, port: int) -> tuple[str, int]:
        """The host address and port where the container's `port` is published."""
        bindings = (self._wrapped().attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp")
        if not bindings:  # Docker drops the bindings of a container that stopped
            raise ContainerNotReady(
                f"container {self.name} is {self.status()}, expected it to publish {port}/tcp; its last "
                f"log lines:\n{self.log_tail()}"
            )
        return str(bindings[0]["HostIp"]), int(bindings[0]["HostPort"])

    def addresses(self) -> dict[str, str]:
        networks = self._wrapped().attrs.get("NetworkSettings", {}).get("Networks") or {}
        return {name: str(data.get("IPAddress", "")) for name, data in networks.items()}

    def log_tail(self, lines: int = LOG_LINES) -> str:
        try:
            text = self._wrapped().logs(tail=lines).decode(errors="replace").rstrip()
        except DockerException as exc:
            return f"<logs unreadable: {exc}>"
        return text or "<no output>"

    def exec(self, argv: list[str], *, user: str = "root") -> tuple[int, str, str]:
        """Run `argv` inside; returns the exit code, stdout and stderr."""
        code, (out, err) = self._wrapped().exec_run(argv, user=user, demux=True)
        return int(code), (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")


@dataclass
class RunResources:
    """Creates the run's networks and containers and removes every one of them on `close`."""

    engine: Engine
    run_name: str
    _created: list[tuple[str, str]] = field(default_factory=list)  # (kind, name), in creation order
    containers: dict[str, StartedContainer] = field(default_factory=dict)

    def __enter__(self) -> RunResources:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @property
    def client(self) -> docker.DockerClient:
        return self.engine.client

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.run_name}

    # -- creation ----------------------------------------------------------------------------------
    def create_network(self, spec: NetworkSpec) -> None:
        self._created.append(("network", spec.name))
        pool = IPAMPool(subnet=spec.subnet, gateway=spec.gateway, iprange=spec.ip_range)
        try:
            self.client.networks.create(
                spec.name,
                driver="bridge",
                ipam=IPAMConfig(pool_configs=[pool]),
                labels=self.labels,
                check_duplicate=True,  # older APIs would otherwise make a second network of that name
            )
        except APIError as exc:
            raise LabError(
                f"cannot create Docker network {spec.name} ({spec.subnet}): {exc.explanation}"
            ) from exc

    def start(self, spec: ContainerSpec, *, environment: Mapping[str, str] | None = None) -> StartedContainer:
        """Start `spec` through testcontainers on its first network, then join the others, every one at
        the spec's fixed address; published ports listen on the spec's host address only."""
        # The reaper would have to be pulled, and this run removes its own containers anyway.
        testcontainers_config.ryuk_disabled = True
        networks = list(spec.networks.items())
        first, address = networks[0]
        self._created.append(("container", spec.name))
        container = DockerContainer(
            spec.image,
            docker_client_kw=self.engine.client_kwargs,
            env=dict(environment or {}),
            name=spec.name,
        )
        if spec.command:
            container.with_command(list(spec.command))
        for port, host in spec.published.items():
            # Docker takes (host address, None): any free port on that address only.
            container.ports[f"{port}/tcp"] = (host, None)  # type: ignore[assignment]
        container.with_kwargs(
            network=first,
            networking_config={first: EndpointConfig(self.client.api.api_version, ipv4_address=address)},
            cap_add=list(spec.capabilities),
            devices=[f"{device}:{device}:rwm" for device in spec.devices],
            labels=self.labels,
            hostname=spec.name,
        )
        started = StartedContainer(spec, container)
        self.containers[spec.name] = started
        try:
            container.start()
            for network, fixed in networks[1:]:
                self.client.networks.get(network).connect(container.get_container_id(), ipv4_address=fixed)
        except DockerException as exc:
            detail = getattr(exc, "explanation", None) or str(exc)
            raise LabError(f"cannot start container {spec.name} from {spec.image}: {detail}") from exc
        return started

    # -- removal -----------------------------------------------------------------------------------
    def _ours(self, obj: Any) -> bool:
        labels = obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}
        return bool(labels.get(RUN_LABEL) == self.run_name)

    def _remove(self, kind: str, name: str) -> None:
        collection = self.client.containers if kind == "container" else self.client.networks
        try:
            obj = collection.get(name)
        except NotFound:
            return
        if not self._ours(obj):
            return
        try:
            if kind == "container":
                obj.remove(force=True, v=True)
            else:
                obj.remove()
        except NotFound:
            pass
        started = self.containers.pop(name, None) if kind == "container" else None
        if started is not None:  # testcontainers keeps a client of its own per container
            started.container.get_docker_client().client.close()

    def close(self) -> None:
        """Remove everything created, newest first; safe to call again. What could not be removed is
        reported together once every removal was tried."""
        problems = []
        while self._created:
            kind, name = self._created.pop()
            try:
                self._remove(kind, name)
            except DockerException as exc:
                problems.append(f"{kind} {name}: {getattr(exc, 'explanation', None) or exc}")
        self.containers.clear()
        if problems:
            raise LabError("could not remove the run's Docker objects: " + "; ".join(problems))

    def leftovers(self) -> list[str]:
        """Containers and networks still carrying this run's label, for checks after `close`."""
        filters = {"label": f"{RUN_LABEL}={self.run_name}"}
        found = [f"container {c.name}" for c in self.client.containers.list(all=True, filters=filters)]
        found += [f"network {n.name}" for n in self.client.networks.list(filters=filters)]
        return found
