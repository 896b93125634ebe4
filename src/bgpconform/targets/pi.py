"""`--target=pi`: a k3s cluster and router the user already runs, driven only through their own
interfaces (the Kubernetes API, the router's API or vtysh, curl where the client lives).

Nothing here knows about the lab: pointed at a lab started by `bgpconform lab up`, this code reaches it
exactly as it reaches a Raspberry Pi rack, which is how the tests prove it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kubernetes.config.config_exception import ConfigException

from bgpconform import observe
from bgpconform.cilium import bgp_api
from bgpconform.commands import Place, run
from bgpconform.errors import CommandError, ConfigError, HarnessError
from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.mode import Mode, check_install_allowed
from bgpconform.ownership import HARNESS_LABEL
from bgpconform.provenance import Provenance
from bgpconform.routers.port import BgpPeer, RouterDump, RouterPort, topology_peers
from bgpconform.targets.cluster.access import KubeAccess, resolve_kube_access
from bgpconform.targets.cluster.api_dump import write_cluster_dump
from bgpconform.targets.cluster.installer import ToolCiliumInstaller, require_tool
from bgpconform.targets.cluster.preflight import Check, Preflight, PreflightFailed
from bgpconform.targets.cluster.reset import remove_cilium_crds, wait_without_cni
from bgpconform.targets.cluster.router_access import connect_router
from bgpconform.targets.curl_client import CurlClient
from bgpconform.targets.options import TargetOptions
from bgpconform.targets.port import FaultPort, started_part
from bgpconform.targets.unsupported_faults import UnsupportedFaults
from bgpconform.topology import Topology

if TYPE_CHECKING:
    from bgpconform.cilium.install import CiliumInstaller
    from bgpconform.cilium.operations import CiliumOperations


class ClusterTarget:
    name = "pi"
    cluster_outlives_run = True

    @classmethod
    def from_options(cls, topology: Topology, options: TargetOptions) -> ClusterTarget:
        return cls(
            topology,
            mode=options.mode or Mode.VERIFY,
            kubeconfig=options.kubeconfig,
            context=options.context,
            installer=options.installer,
            allow_destructive=options.allow_destructive,
        )

    def __init__(
        self,
        topology: Topology,
        *,
        mode: Mode = Mode.VERIFY,
        kubeconfig: Path | None = None,
        context: str | None = None,
        installer: str = "cilium",
        allow_destructive: bool = False,
    ) -> None:
        self.topology = topology
        self.mode = mode
        self._kubeconfig_option = kubeconfig
        self._context_option = context
        self._installer_tool = installer
        self._allow_destructive = allow_destructive
        self.access: KubeAccess | None = None
        self.checks: list[Check] = []
        self._kube: Kube | None = None
        self._router: RouterPort | None = None
        self._client: CurlClient | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def check_options(self) -> None:
        self.resolve_access()

    def resolve_access(self) -> KubeAccess:
        """Decide the kubeconfig and context and, for install mode, refuse unless both proofs hold;
        cheap and side-effect free, so a refused run has touched nothing."""
        access = resolve_kube_access(self.topology, self._kubeconfig_option, self._context_option)
        if self.mode is Mode.INSTALL:
            check_install_allowed(
                self.topology, access.kubeconfig, access.context, allow_destructive=self._allow_destructive
            )
            require_tool(self._installer_tool)  # before `reset` has unpeered anything
        return access

    def start(self) -> None:
        access = self.resolve_access()
        try:
            kube = Kube(new_api_client(str(access.kubeconfig), access.context))
        except ConfigException as exc:  # e.g. a client certificate file the kubeconfig names is missing
            raise ConfigError(f"{access}: the kubernetes client cannot use it: {exc}") from None
        try:
            router = connect_router(self.topology)
        except BaseException:
            kube.api_client.close()  # type: ignore[no-untyped-call]
            raise
        client_spec = self.topology.client
        client = CurlClient(
            Place(namespace=client_spec.namespace, ssh=client_spec.ssh), client_spec.address.ip
        )
        preflight = Preflight(
            self.topology, access, kube, router, client, cilium_expected=self.mode is Mode.VERIFY
        )
        self.checks = preflight.run()
        if not all(check.ok for check in self.checks):
            _close(router)
            kube.api_client.close()  # type: ignore[no-untyped-call]
            raise PreflightFailed(self.checks)
        self.access, self._kube, self._router, self._client = access, kube, router, client

    @property
    def started(self) -> bool:
        return self._kube is not None

    def stop(self) -> None:
        kube, router = self._kube, self._router
        self._kube = self._router = self._client = None
        if router is not None:
            _close(router)
        if kube is not None:
            kube.api_client.close()  # type: ignore[no-untyped-call]

    def reset(self) -> None:
        """Install mode only: back to a cluster without CNI, the harness's objects and peering gone."""
        if self.mode is not Mode.INSTALL:
            raise HarnessError(
                "verify mode never resets the cluster (that would uninstall Cilium); a scenario asked for "
                "a stage before the cluster's own. Run --mode=install --allow-destructive to replay the "
                "walkthrough from a cluster without CNI"
            )
        kube = self.kube
        selector = f"{HARNESS_LABEL}=true"
        for service in kube.items(Resources.SERVICES, label_selector=selector):
            kube.delete(Resources.SERVICES, service["metadata"]["name"], service["metadata"]["namespace"])
        for pod in kube.items(Resources.PODS, label_selector=selector):
            kube.delete(Resources.PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
        version = str(self.topology.cluster.cilium_version)
        bgp_kinds = [
            resource
            for api in bgp_api.apis(version).available
            for resource in bgp_api.configuration_resources(version, api)
        ]
        for resource in (Resources.LB_IP_POOLS, *bgp_kinds):
            # not served: Cilium (and its CRDs) is not installed
            for obj in kube.items_if_served(resource, label_selector=selector):
                kube.delete(resource, obj["metadata"]["name"])
        unlabel = {"metadata": {"labels": {key: None for key in self.topology.bgp.node_selector}}}
        for node in self.topology.nodes:
            kube.patch(Resources.NODES, node.name, unlabel)
        self.router.remove_peers()
        self.installer.uninstall()
        remove_cilium_crds(kube)  # uninstall leaves them (FACTS.md); the walkthrough starts without
        waits = self.topology.waits
        wait_without_cni(
            kube, self.topology, nodes_timeout=waits.nodes_ready, pods_timeout=waits.pods_running
        )

    # -- ports -------------------------------------------------------------------------------------
    @property
    def kube(self) -> Kube:
        return started_part(self._kube, self.name)

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
        return ToolCiliumInstaller(started_part(self.access, self.name), self._installer_tool)

    @property
    def router(self) -> RouterPort:
        return started_part(self._router, self.name)

    @property
    def client(self) -> CurlClient:
        return started_part(self._client, self.name)

    @property
    def faults(self) -> FaultPort:
        return UnsupportedFaults(
            self.name,
            "it reaches a rack's nodes only through their APIs; pull the node's cable or shut its switch "
            "port by hand, or run the fault scenarios on the lab or k3d",
            self.router,
        )

    def router_peers(self) -> list[BgpPeer]:
        return topology_peers(self.topology)

    def router_dump(self) -> RouterDump:
        return self.router.dump()

    def dump_api(self, path: Path) -> None:
        write_cluster_dump(self.kube, path)

    def provenance(self) -> Provenance:
        """Everything is the user's own: their k3s, their Cilium, their router."""
        router = self.topology.router
        return Provenance(
            real=(
                f"k3s and Cilium: the cluster {self.topology.cluster.name} ({self.mode} mode)",
                f"the router: {router.kind} at {router.address}",
                "the outside client and the network between them",
            )
        )

    def versions(self) -> dict[str, str]:
        versions = {"target": f"pi ({self.mode})", "router": self.router.version()}
        if self.access is not None:
            versions["kube-context"] = self.access.context
        versions.update(observe.cluster_versions(self.kube))
        if self.mode is Mode.INSTALL:
            versions[f"{self._installer_tool} (installer)"] = _tool_version(self._installer_tool)
        return versions


def _tool_version(tool: str) -> str:
    argv = ["cilium", "version", "--client"] if tool == "cilium" else ["helm", "version", "--short"]
    try:
        return run(argv, timeout=20).stdout.strip().splitlines()[0]
    except (CommandError, IndexError):
        return "not installed"


def _close(router: RouterPort) -> None:
    close = getattr(router, "close", None)
    if callable(close):
        close()
