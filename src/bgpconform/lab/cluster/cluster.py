"""The whole lab target: the wire (namespaces, FRR), the embedded API, and the emulated k3s and Cilium.

`LabCluster.start()` leaves the lab as a minimal k3s install leaves a cluster (FACTS.md, "k3s and
k3d"; walkthrough, first `kubectl get nodes` and `get pods -A`): the API answers, every topology node
has registered and is NotReady for want of a CNI, CoreDNS and the local-path provisioner are Pending,
and no Cilium is installed. Installing Cilium is a separate step (`bgpconform.lab.cilium.install`), as
it is on a real cluster.

Every component is a client of the API with its own connection, as separate binaries would be.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from bgpconform.interrupts import held_interrupts
from bgpconform.kubeapi.client import Kube, new_api_client
from bgpconform.lab import defects as lab_defects
from bgpconform.lab import shortcuts as lab_shortcuts
from bgpconform.lab.apiserver.process import ApiServerProcess
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.daemonset import DaemonSetController
from bgpconform.lab.cluster.deployment import DeploymentController
from bgpconform.lab.cluster.endpointslices import EndpointsController, EndpointSliceController
from bgpconform.lab.cluster.images import builtin_images
from bgpconform.lab.cluster.k3s import AutoDeploy, deploy_bootstrap, leftover_manifests
from bgpconform.lab.cluster.kubelet import Kubelet
from bgpconform.lab.cluster.nodeipam import NodeIpamController
from bgpconform.lab.cluster.nodelifecycle import NodeLifecycleController
from bgpconform.lab.cluster.replicaset import ReplicaSetController
from bgpconform.lab.cluster.runtime import ContainerContext, ContainerProgram, ImageRegistry
from bgpconform.lab.cluster.scheduler import Scheduler
from bgpconform.lab.lab import Lab
from bgpconform.topology import Topology

log = logging.getLogger(__name__)

AGENT_IMAGE_PATTERN = "quay.io/cilium/cilium:*"
OPERATOR_IMAGE_PATTERN = "quay.io/cilium/operator-generic:*"


def _cilium_agent(ctx: ContainerContext) -> ContainerProgram:
    """Cilium's programs are imported when a node first runs them, as a node pulls an image on first
    use: a lab without Cilium (`lab up` leaves a minimal k3s) never pays for them."""
    from bgpconform.lab.cilium.agent import AgentProgram

    return AgentProgram(ctx)


def _cilium_operator(ctx: ContainerContext) -> ContainerProgram:
    from bgpconform.lab.cilium.operator import OperatorProgram

    return OperatorProgram(ctx)


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass
class ClusterTimings:
    """Bring-up phases in seconds, for `lab up`, the benchmark and the report."""

    network: float = 0.0
    api: float = 0.0
    components: float = 0.0
    up: float = 0.0  # wall time of the whole start; network overlaps api and components
    teardown: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class LabCluster:
    """Owns every part of the lab target; `stop()` removes all of it, also after a failed start."""

    def __init__(
        self,
        topology: Topology,
        purpose: str = "lab",
        *,
        init_step: float | None = None,
        lab: Lab | None = None,
        defects: Iterable[str] = (),
        shortcuts: Iterable[str] = (),
    ) -> None:
        """`lab`: the wire half already claimed (and perhaps building) by the caller, for `lab serve`,
        which starts it before importing the control plane; otherwise the cluster makes its own."""
        self.topology = topology
        self.purpose = purpose
        self.init_step = init_step
        self.defects = lab_defects.checked(defects)
        self.shortcuts = lab_shortcuts.checked(shortcuts)
        self.timings = ClusterTimings()
        self.lab = lab if lab is not None else Lab(topology, purpose)
        self._api: ApiServerProcess | None = None
        self._kube: Kube | None = None
        self._controllers: list[Controller] = []
        self._kubelets: dict[str, Kubelet] = {}
        self._started: list[_Stoppable] = []

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> LabCluster:
        """The wire and the control plane come up side by side, then the kubelets join them.

        Building the wire is mostly waiting on `ip` and FRR, and the API server and controllers need
        only the run's directory, so the two overlap; the kubelets need both (node namespaces, API).
        """
        started = time.monotonic()
        lab_defects.activate(self.defects)  # before any emulated component runs
        lab_shortcuts.activate(self.shortcuts)
        try:
            if not self.lab.claimed:
                self.lab.claim()
            self.lab.begin_build()
            self._start_control_plane()
            images = self._images()
            self.lab.wait_built()
            self.timings.network = self.lab.timings.network + self.lab.timings.router
            began = time.monotonic()
            self._start_kubelets(images)
            self.timings.components += time.monotonic() - began
            self.timings.up = time.monotonic() - started
        except BaseException:
            # Held, not dropped: after a failed start (not a stop) the run goes on to its next
            # scenario, so a stop that came meanwhile must still stop it once the lab is removed.
            with held_interrupts("removing the half-started lab"):
                self.stop()
            raise
        return self

    def _start_control_plane(self) -> None:
        began = time.monotonic()
        self._api = ApiServerProcess(
            self.lab.run.directory / "api",
            cluster_name=self.topology.cluster.name,
            k3s_version=self.topology.cluster.k3s_version,
        )
        self._started.append(self._api)  # before start: a start cut short is stopped as well
        self._api.start()
        self._kube = self.new_kube()
        self.timings.api = time.monotonic() - began
        began = time.monotonic()
        for controller_type in (
            NodeIpamController,
            NodeLifecycleController,
            Scheduler,
            ReplicaSetController,
            DeploymentController,
            DaemonSetController,
            EndpointSliceController,
            EndpointsController,
        ):
            controller: Controller = controller_type(self.new_kube())
            controller.start()
            self._controllers.append(controller)
            self._started.append(controller)
        deploy_bootstrap(self._kube)
        leftovers = leftover_manifests(self.topology)
        if leftovers:
            deploy = AutoDeploy(self.new_kube(), leftovers)
            deploy.start()
            self._controllers.append(deploy)
            self._started.append(deploy)
        self.timings.components = time.monotonic() - began

    def _start_kubelets(self, images: ImageRegistry) -> None:
        api = self.api
        assert api.logs is not None
        assert api.exec_handlers is not None
        for node in self.topology.nodes:
            kubelet = Kubelet(
                self.new_kube(),
                node=node,
                topology=self.topology,
                network=self.lab.network,
                images=images,
                logs=api.logs,
                exec_handlers=api.exec_handlers,
                kubeconfig=str(api.kubeconfig_path),
                directory=self.lab.run.directory / "nodes" / node.name,
                k3s_version=self.topology.cluster.k3s_version,
                **({} if self.init_step is None else {"init_step": self.init_step}),
            )
            kubelet.start()
            self._kubelets[node.name] = kubelet
            self._started.append(kubelet)

    def _images(self) -> ImageRegistry:
        """The images the lab can run: the k3s addons, nginx, and Cilium's agent and operator."""
        images = builtin_images()
        images.register(AGENT_IMAGE_PATTERN, _cilium_agent)
        images.register(OPERATOR_IMAGE_PATTERN, _cilium_operator)
        return images

    def stop(self) -> None:
        """Stop kubelets first (their programs hold speakers and nginx), then controllers, API, wire."""
        began = time.monotonic()
        for part in reversed(self._started):
            try:
                part.stop()
            except Exception:
                log.exception("stopping %s failed; going on with the rest", type(part).__name__)
        self._started.clear()
        self._controllers.clear()
        self._kubelets.clear()
        self._api = None
        self._kube = None
        self.lab.stop()
        self.timings.teardown = time.monotonic() - began

    def __enter__(self) -> LabCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- parts -----------------------------------------------------------------------------------
    @property
    def api(self) -> ApiServerProcess:
        if self._api is None:
            raise RuntimeError("the lab cluster is not running")
        return self._api

    @property
    def kube(self) -> Kube:
        """The harness's own client (other components each have theirs)."""
        if self._kube is None:
            raise RuntimeError("the lab cluster is not running")
        return self._kube

    @property
    def kubeconfig(self) -> Path:
        return self.api.kubeconfig_path

    def new_kube(self) -> Kube:
        return Kube(new_api_client(str(self.api.kubeconfig_path)))

    @property
    def kubelets(self) -> dict[str, Kubelet]:
        return dict(self._kubelets)

    def describe(self) -> dict[str, Any]:
        """Where everything is, for `lab up`'s state file and the report."""
        network = self.lab.network
        return {
            "run_id": self.lab.run.run_id,
            "run_directory": str(self.lab.run.directory),
            "kubeconfig": str(self.kubeconfig),
            "api_url": self.api.url,
            "api_pid": self.api.pid,
            "api_log": str(self.api.log_path),
            "namespaces": {
                "client": network.client_ns,
                "router": network.router_ns,
                "nodes": dict(network.node_ns),
            },
            "client_address": str(self.topology.client.address),
            "router_vtysh": shlex.join(self.lab.router_vtysh()),
            "router_kind": self.topology.router.kind,
            **self._routeros_details(),
        }

    def _routeros_details(self) -> dict[str, Any]:
        routeros = self.lab.routeros
        if routeros is None:
            return {}
        return {"routeros_api": str(routeros.endpoint), "routeros_version": str(routeros.dialect.version)}
