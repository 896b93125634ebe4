"""The lab target: `LabCluster` behind the ports, so steps drive it exactly as they drive a real cluster.

Cluster, Cilium and `bgp peers` go through the Kubernetes API (`CiliumOperations` over the embedded
server); the router is the FRR adapter; the outside client is `curl` in the client namespace, which
reaches LB IPs only through the router's BGP routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bgpconform import observe
from bgpconform.commands import Place
from bgpconform.interrupts import held_interrupts
from bgpconform.kubeapi.client import Kube
from bgpconform.lab import chance, defects, shortcuts
from bgpconform.lab.cluster.cluster import LabCluster
from bgpconform.lab.lab import Lab
from bgpconform.lab.prerequisites import check_lab_prerequisites
from bgpconform.provenance import Provenance
from bgpconform.routers.port import BgpPeer, RouterDump, RouterPort
from bgpconform.targets.curl_client import CurlClient
from bgpconform.targets.options import TargetOptions
from bgpconform.targets.port import FaultPort, OutsideClient
from bgpconform.topology import Topology

if TYPE_CHECKING:
    from bgpconform.cilium.install import CiliumInstaller
    from bgpconform.cilium.operations import CiliumOperations


class LabTarget:
    """One lab for the session; `reset` replaces it with a fresh one (well under a second)."""

    name = "lab"
    cluster_outlives_run = False

    @classmethod
    def from_options(cls, topology: Topology, options: TargetOptions) -> LabTarget:
        return cls(
            topology,
            purpose=options.purpose,
            defects=options.lab_defects,
            shortcuts=options.lab_shortcuts,
            seed=options.lab_seed,
            installer=options.installer,
        )

    def __init__(
        self,
        topology: Topology,
        *,
        purpose: str = "pytest",
        init_step: float | None = None,
        lab: Lab | None = None,
        defects: tuple[str, ...] = (),
        shortcuts: tuple[str, ...] = (),
        seed: int | None = None,
        installer: str = "cilium",
    ) -> None:
        """`lab`: a wire half the caller already claimed, used by the first start (see `LabCluster`);
        the target owns it from here and removes it on `stop`, started or not. `defects`: names from
        `bgpconform.lab.defects`, on in every lab this target starts. `seed`: the random choices'
        (`bgpconform.lab.chance`), fresh when None; every lab this target starts draws from it.
        `installer`: the tool the lab's installer stands for (`--cilium-installer`): Helm leaves two
        operator replicas, cilium-cli one."""
        self.topology = topology
        self.defects = defects
        self.shortcuts = shortcuts
        self.seed = seed
        self.installer_tool = installer
        self.purpose = purpose
        self.init_step = init_step
        self._pending_lab = lab
        self._seeded = False
        self._cluster: LabCluster | None = None
        self._starting: LabCluster | None = None
        self._pristine = False  # started and no part handed out since: already the walkthrough's start
        self._kube: Kube | None = None

    def check_options(self) -> None:
        """Root, network namespaces and the daemons' programs, and the defects' names, before anything
        is collected."""
        defects.checked(self.defects)
        shortcuts.checked(self.shortcuts)
        check_lab_prerequisites()

    def start(self) -> None:
        if self._cluster is None:
            if not self._seeded:
                self.seed = chance.reseed(self.seed)  # once: a reset's new lab draws further from it
                self._seeded = True
            cluster = LabCluster(
                self.topology,
                self.purpose,
                init_step=self.init_step,
                lab=self._pending_lab,
                defects=self.defects,
                shortcuts=self.shortcuts,
            )
            # Held before it starts: a stop signal landing as `start` returns, before the cluster is
            # the target's, would otherwise leave a whole lab to the next run's sweep. The claimed wire
            # stays the target's until the cluster holding it is.
            self._starting = cluster
            self._pending_lab = None
            self._cluster = cluster.start()
            self._starting = None
            self._kube = self._cluster.new_kube()
            self._pristine = True

    @property
    def started(self) -> bool:
        return self._cluster is not None

    def stop(self) -> None:
        """Whole or not at all: a stop signal during it (a reset's, mid-scenario) waits for its end,
        or the lab, no longer the target's, would be left to the next run's sweep."""
        with held_interrupts("removing the lab"):
            cluster, self._cluster, self._kube = self._cluster, None, None
            self._pristine = False
            starting, self._starting = self._starting, None
            lab, self._pending_lab = self._pending_lab, None
            if cluster is not None:
                cluster.stop()
            if starting is not None and starting is not cluster:
                starting.stop()
            if lab is not None:
                lab.stop()

    def reset(self) -> None:
        """A fresh lab, unless the one just started was never handed out: the stage machine resets
        before its first stage, and the session's lab is that stage already."""
        if self.started and self._pristine:
            return
        self.stop()
        self.start()

    @property
    def cluster(self) -> LabCluster:
        if self._cluster is None:
            raise RuntimeError("the lab target is not started")
        self._pristine = False  # every part is reached through here or `kube`, and may be changed
        return self._cluster

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            raise RuntimeError("the lab target is not started")
        self._pristine = False
        return self._kube

    @property
    def cilium(self) -> CiliumOperations:
        from bgpconform.cilium.operations import CiliumOperations  # exec support loads on first use

        return CiliumOperations(
            self.kube,
            cilium_version=str(self.topology.cluster.cilium_version),
            cli_version=str(self.topology.cluster.cilium_cli_version),
        )

    @property
    def installer(self) -> CiliumInstaller:
        from bgpconform.lab.cilium.install import LabCiliumInstaller

        return LabCiliumInstaller(self.kube, tool=self.installer_tool)

    @property
    def router(self) -> RouterPort:
        return self.cluster.lab.router

    @property
    def client(self) -> OutsideClient:
        return CurlClient(
            Place(namespace=self.cluster.lab.network.client_ns), self.topology.client.address.ip
        )

    @property
    def faults(self) -> FaultPort:
        from bgpconform.lab.faults import LabFaults

        return LabFaults(self.cluster.lab)

    def router_peers(self) -> list[BgpPeer]:
        return self.cluster.lab.topology_peers()

    def router_dump(self) -> RouterDump:
        return self.router.dump()

    def dump_api(self, path: Path) -> None:
        """The embedded API server's whole store; the lab's own server, so nothing is missed."""
        self.cluster.api.dump(path)

    def provenance(self) -> Provenance:
        """The wire and the daemons on it are real; the decisions of k3s and Cilium are the lab's."""
        cluster = self.topology.cluster
        router = self.topology.router
        real = [
            "the network: Linux namespaces, veth links, a bridge, the kernel's routing and netfilter",
            "each peering node's BGP speaker: GoBGP (gobgpd), driven as the Cilium agent drives it",
            "the router's BGP: FRR (bgpd, zebra)",
            "nginx serving the page, and curl as the outside client",
        ]
        emulated = [
            f"k3s {cluster.k3s_version}: API server, scheduler, controllers and kubelets are the lab's own",
            f"Cilium {cluster.cilium_version}: agent, operator, LB IPAM, CNI plugin and service datapath "
            "decisions are the lab's own (service translation through iptables NAT)",
        ]
        if router.kind == "routeros":
            emulated.append(
                f"RouterOS {router.routeros_version}: its API and menus are the lab's, in front of FRR"
            )
        facts = {
            "connect_retry": self.topology.bgp.timers.connect_retry,
            "cilium_version": cluster.cilium_version,
        }
        return Provenance(
            real=tuple(real),
            emulated=tuple(emulated),
            shortcuts=tuple(shortcuts.describe(name, **facts) for name in sorted(self.shortcuts)),
            defects=tuple(sorted(self.defects)),
        )

    def versions(self) -> dict[str, str]:
        # No cilium-cli or Helm runs here: the lab's installer does what the named tool does, through the API.
        installed_as = "cilium-cli v0.15" if self.installer_tool == "cilium" else "Helm"
        versions = {
            "target": "lab",
            "router": self.router.version(),
            "installer": f"the lab's, as {installed_as} would install",
        }
        versions.update(observe.cluster_versions(self.kube))
        if self.defects:  # a report of a run on a broken lab says so next to the versions
            versions["lab defects"] = ", ".join(sorted(self.defects))
        if self.shortcuts:
            versions["lab shortcuts"] = ", ".join(sorted(self.shortcuts))
        versions["lab seed"] = f"{self.seed} (replay: --lab-seed {self.seed})"
        return versions
