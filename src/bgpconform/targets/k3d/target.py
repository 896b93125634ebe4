"""`--target=k3d`: the plan carried out on a Docker engine, and the ports the steps drive on it.

`start` runs the plan in order (host bpffs, networks, `k3d cluster create`, the CHR and client
containers, the client's route via the router, the router's interface addresses) and leaves the
cluster at the walkthrough's start: no CNI, router without peers. Cilium is installed and the router's
peers configured by the stage machine, through `installer` (the plan's cilium-cli or Helm command)
and `router` (`RouterOsRouter.configure_peers`). Everything `start` creates is torn down by `stop`,
and by `start` itself when a step fails. Missing tools are reported together before anything exists.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from contextlib import ExitStack
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from bgpconform import observe
from bgpconform.commands import run
from bgpconform.errors import CommandError, HarnessError, LabError, PrerequisiteError
from bgpconform.interrupts import held_interrupts
from bgpconform.provenance import Provenance
from bgpconform.routers.port import BgpPeer, RouterDump, topology_peers
from bgpconform.routers.routeros import RouterOsRouter
from bgpconform.routers.routeros.standin import STANDIN_REPOSITORY
from bgpconform.targets.cluster.api_dump import write_cluster_dump
from bgpconform.targets.cluster.installer import HOW_TO_INSTALL
from bgpconform.targets.k3d.chr_login import published_api, wait_for_api_login
from bgpconform.targets.k3d.containers import NetworkSpec, RunResources, StartedContainer
from bgpconform.targets.k3d.docker_engine import Engine, find_engine
from bgpconform.targets.k3d.node_links import DockerNodeLinks, node_containers
from bgpconform.targets.k3d.outside_client import ContainerCurlClient
from bgpconform.targets.k3d.plan import K3dPlan, plan_from_options
from bgpconform.targets.options import TargetOptions
from bgpconform.targets.port import FaultPort, started_part
from bgpconform.topology import Topology

if TYPE_CHECKING:
    from bgpconform.cilium.install import CiliumInstaller
    from bgpconform.cilium.operations import CiliumOperations
    from bgpconform.kubeapi.client import Kube

T = TypeVar("T")

K3D_HOW_TO_INSTALL = (
    "install k3d: `curl -s https://raw.githubusercontent.com/k3d-io/k3d/main/install.sh | bash` "
    "(https://k3d.io), or put a `k3d` release binary from https://github.com/k3d-io/k3d/releases on PATH"
)
CLUSTER_TIMEOUT = 600.0
CHR_TIMEOUT = 180.0  # a CHR under QEMU boots in 30-60 s with KVM, several minutes without


def missing_prerequisites(plan: K3dPlan, environ: dict[str, str] | None = None) -> list[str]:
    """What this machine lacks to run the plan: one line each, naming what to install."""
    path = (environ or dict(os.environ)).get("PATH", "")
    problems = []
    if shutil.which("k3d", path=path) is None:
        problems.append(f"`k3d` is not on PATH; fix: {K3D_HOW_TO_INSTALL}")
    tool = plan.cilium[0]
    if shutil.which(tool, path=path) is None:
        problems.append(f"`{tool}` (the Cilium installer) is not on PATH; fix: {HOW_TO_INSTALL[tool]}")
    for argv in plan.host:
        if shutil.which(argv[0], path=path) is None:
            problems.append(f"`{argv[0]}` is not on PATH; fix: apt-get install util-linux mount")
    return sorted(set(problems))


class K3dTarget:
    """One k3d cluster, CHR and client per `start`; `reset` recreates them (a fresh walkthrough start)."""

    name = "k3d"
    cluster_outlives_run = False

    @classmethod
    def from_options(cls, topology: Topology, options: TargetOptions) -> K3dTarget:
        # The run's name names its cluster and containers: short, as k3d and Docker want, and its own.
        return cls(topology, plan_from_options(topology, options, f"bgpc-{secrets.token_hex(3)}"))

    @classmethod
    def render_plan(cls, topology: Topology, options: TargetOptions) -> str:
        """`--dry-run`: the same plan a run carries out, printed instead."""
        return plan_from_options(topology, options, "bgpc-k3d-dry-run").render()

    def __init__(
        self,
        topology: Topology,
        plan: K3dPlan,
        *,
        engine: Engine | None = None,
        chr_timeout: float = CHR_TIMEOUT,
        cluster_timeout: float = CLUSTER_TIMEOUT,
    ) -> None:
        self.topology = topology
        self.plan = plan
        self.chr_timeout = chr_timeout
        self.cluster_timeout = cluster_timeout
        self._engine = engine
        self._stack: ExitStack | None = None
        self._kube: Kube | None = None
        self._router: RouterOsRouter | None = None
        self._client: ContainerCurlClient | None = None
        self._kubeconfig: Path | None = None
        self._pristine = False  # started and no port handed out since: already the walkthrough's start
        self.commands: list[list[str]] = []  # every command run, in order, for the evidence

    def check_options(self) -> None:
        """Nothing to check before collection: the run builds this target and checks it as it starts."""

    # -- lifecycle ---------------------------------------------------------------------------------
    def _engine_or_fail(self, problems: list[str]) -> Engine | None:
        if self._engine is None:
            self._engine = find_engine()
        if self._engine is None:
            problems.append(
                "no Docker engine answers at $DOCKER_HOST or /var/run/docker.sock; fix: start dockerd "
                "(Debian: apt-get install docker.io)"
            )
        return self._engine

    def start(self) -> None:
        if self._stack is not None:
            return
        problems = missing_prerequisites(self.plan)
        engine = self._engine_or_fail(problems)
        if problems or engine is None:
            raise PrerequisiteError(
                f"the k3d target cannot start run {self.plan.run_name}; nothing was created:\n"
                + "\n".join(f"- {problem}" for problem in problems)
            )
        stack = ExitStack()
        try:
            self._build(stack, engine)
            self._stack = stack  # inside: a stop landing as the build returns still closes the stack
        except BaseException as exc:
            try:
                stack.close()
            except Exception as cleanup:
                exc.add_note(f"tearing down after that failed too: {cleanup}")
            self._forget()
            raise
        self._pristine = True

    def _build(self, stack: ExitStack, engine: Engine) -> None:
        plan = self.plan
        self._prepare_host()
        resources = stack.enter_context(RunResources(engine, plan.run_name))
        for argv in plan.networks:
            resources.create_network(NetworkSpec.from_argv(argv))
        stack.callback(self._delete_cluster, engine)  # before create: a half-made cluster goes too
        self._k3d(engine, plan.cluster, self.cluster_timeout)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{plan.run_name}-")))
        self._kubeconfig = self._write_kubeconfig(engine, workdir / "kubeconfig")
        self._check_node_addresses(engine)
        chr_spec, client_spec = plan.containers
        chr_container = resources.start(chr_spec)
        username, password = self.topology.router.fresh_login()
        api = published_api(
            chr_container, username, password, credentials_hint=self.topology.router.credentials_hint()
        )
        stack.callback(api.close)
        wait_for_api_login(chr_container, api, self.chr_timeout)
        self._router = RouterOsRouter.for_topology(api, self.topology)
        for change in plan.router:
            if change.path == "/ip/address":  # the CHR's interfaces; the BGP part is the stage machine's
                api.call(change.command, change.words(), shown=change.cli())
        client = resources.start(client_spec)
        for argv in plan.client_setup:
            self._exec(client, argv)
        self._client = ContainerCurlClient(client, self.topology.client.address.ip)
        from bgpconform.kubeapi.client import Kube, new_api_client

        kube = Kube(new_api_client(str(self._kubeconfig)))
        stack.callback(kube.api_client.close)
        self._kube = kube

    def _forget(self) -> None:
        self._stack = None
        self._pristine = False
        self._kube = self._router = self._client = None
        self._kubeconfig = None

    @property
    def started(self) -> bool:
        return self._stack is not None

    def stop(self) -> None:
        """Tear down everything `start` created, newest first; safe to call again. A stop signal
        during it (a reset's, mid-scenario) waits for its end, or the cluster, no longer the target's,
        would be left running."""
        with held_interrupts("removing the k3d cluster, the CHR and the client"):
            stack = self._stack
            self._forget()
            if stack is not None:
                stack.close()

    def reset(self) -> None:
        """A new cluster, CHR and client, unless the ones just started were never handed out (the stage
        machine resets once before its first stage: building twice would cost minutes for nothing)."""
        if self.started and self._pristine:
            return
        self.stop()
        self.start()

    # -- steps of the plan -------------------------------------------------------------------------
    def _run(self, argv: list[str], timeout: float = 60.0, env: dict[str, str] | None = None) -> str:
        self.commands.append(argv)
        prefix = ["env", *(f"{key}={value}" for key, value in (env or {}).items())] if env else []
        return run([*prefix, *argv], timeout=timeout).stdout

    def _prepare_host(self) -> None:
        """The plan's host steps; a `mountpoint` check that holds skips the `mount -t` after it."""
        mounted = False
        for argv in self.plan.host:
            if argv[0] == "mountpoint":
                self.commands.append(argv)
                mounted = run(argv, check=False).returncode == 0
            elif argv[:2] == ["mount", "-t"] and mounted:
                continue
            else:
                self._run(argv)

    def _k3d(self, engine: Engine, argv: list[str], timeout: float) -> str:
        return self._run(argv, timeout=timeout, env=engine.environment)

    def _delete_cluster(self, engine: Engine) -> None:
        argv = next((a for a in self.plan.teardown if a[:3] == ["k3d", "cluster", "delete"]), None)
        argv = argv or ["k3d", "cluster", "delete", self.plan.run_name]
        try:
            self._k3d(engine, argv, self.cluster_timeout)
        except CommandError as exc:
            if "not found" not in (exc.stderr + exc.stdout).lower():
                raise LabError(f"k3d could not delete cluster {self.plan.run_name}: {exc}") from exc

    def _write_kubeconfig(self, engine: Engine, path: Path) -> Path:
        """k3d's kubeconfig, pointed at 127.0.0.1 where k3d wrote 0.0.0.0 (the API's published port)."""
        text = self._k3d(engine, ["k3d", "kubeconfig", "get", self.plan.run_name], 60.0)
        config: dict[str, Any] = yaml.safe_load(text) or {}
        for cluster in config.get("clusters") or []:
            server = str(cluster.get("cluster", {}).get("server", ""))
            cluster["cluster"]["server"] = server.replace("://0.0.0.0:", "://127.0.0.1:")
        path.write_text(yaml.safe_dump(config))
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        return path

    def _check_node_addresses(self, engine: Engine) -> None:
        """k3d takes node addresses from Docker's range in creation order; the topology's must match."""
        south = next(iter(self.plan.containers[0].networks))
        filters = {"label": f"k3d.cluster={self.plan.run_name}"}
        found: set[IPv4Address] = set()
        for container in engine.client.containers.list(filters=filters):
            address = container.attrs["NetworkSettings"]["Networks"].get(south, {}).get("IPAddress")
            if address and ("-server-" in container.name or "-agent-" in container.name):
                found.add(IPv4Address(address))
        wanted = {node.address for node in self.topology.nodes}
        if found != wanted:
            raise LabError(
                f"k3d gave the nodes of {self.plan.run_name} the addresses {sorted(map(str, found))} on "
                f"{south}, but the topology has {sorted(map(str, wanted))}; fix: make the topology's node "
                "addresses the first ones of the node range, in k3d's order (servers, then agents)"
            )

    def _exec(self, container: StartedContainer, argv: list[str]) -> None:
        """The plan's `docker exec NAME COMMAND...` lines, run through the Docker API as root."""
        if argv[:2] != ["docker", "exec"] or argv[2] != container.name:
            raise HarnessError(f"client setup step is not `docker exec {container.name} ...`: {argv}")
        self.commands.append(argv)
        code, out, err = container.exec(argv[3:])
        if code != 0:
            raise LabError(f"`{' '.join(argv)}` failed (exit {code}): {(err or out).strip()}")

    # -- ports -------------------------------------------------------------------------------------
    def _need(self, value: T | None) -> T:
        self._pristine = False  # a part handed out may be changed: the next reset rebuilds
        return started_part(value, self.name)

    @property
    def kube(self) -> Kube:
        return self._need(self._kube)

    @property
    def cilium(self) -> CiliumOperations:
        from bgpconform.cilium.operations import CiliumOperations

        return CiliumOperations(
            self.kube,
            cilium_version=str(self.topology.cluster.cilium_version),
            cli_version=str(self.topology.cluster.cilium_cli_version),
        )

    @property
    def installer(self) -> CiliumInstaller:
        from bgpconform.targets.cluster.access import KubeAccess
        from bgpconform.targets.cluster.installer import ToolCiliumInstaller

        kubeconfig = self._need(self._kubeconfig)
        access = KubeAccess(kubeconfig, f"k3d-{self.plan.run_name}", "k3d", "k3d kubeconfig get")
        return ToolCiliumInstaller(access, self.plan.cilium[0])

    @property
    def router(self) -> RouterOsRouter:
        return self._need(self._router)

    @property
    def client(self) -> ContainerCurlClient:
        return self._need(self._client)

    @property
    def faults(self) -> FaultPort:
        engine = self._need(self._engine)
        south = next(iter(self.plan.containers[0].networks))
        return DockerNodeLinks(
            engine.client, south, node_containers(self.topology, self.plan.run_name), self.router
        )

    def router_peers(self) -> list[BgpPeer]:
        return topology_peers(self.topology)

    def router_dump(self) -> RouterDump:
        return self.router.dump()

    def dump_api(self, path: Path) -> None:
        write_cluster_dump(self.kube, path)

    def provenance(self) -> Provenance:
        """k3s and Cilium are the real ones, in containers; the router is CHR unless the plan runs the
        stand-in image (the lab's RouterOS API over FRR)."""
        router_images = [spec.image for spec in self.plan.containers if spec.name.endswith("-router")]
        standin = any(image.startswith(STANDIN_REPOSITORY) for image in router_images)
        cluster = self.topology.cluster
        real = [
            f"k3s {cluster.k3s_version} in Docker containers (k3d), with its own kubelets and controllers",
            f"Cilium {cluster.cilium_version} as installed by {self.plan.cilium[0]}",
            "Docker networks between the nodes, the router and the outside client",
        ]
        emulated = []
        if standin:
            emulated.append(
                f"RouterOS {self.topology.router.routeros_version}: a stand-in image, the lab's RouterOS "
                "API in front of FRR, not MikroTik's CHR"
            )
        else:
            real.append(f"RouterOS {self.topology.router.routeros_version}: MikroTik CHR in QEMU")
        return Provenance(real=tuple(real), emulated=tuple(emulated))

    def versions(self) -> dict[str, str]:
        versions = {"target": "k3d", "router": self.router.version()}
        versions.update(observe.cluster_versions(self.kube))
        return versions
