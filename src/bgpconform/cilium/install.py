"""What installing Cilium takes, whatever the target: the values and the installer contract.

The values are what the walkthrough's bare `cilium install` (cilium-cli v0.15.4, Cilium 1.13.4) ends up
with on its k3s cluster: it auto-detects kind k3s, the cluster name (`k3s-rpi`), datapath mode tunnel
(`tunnel=vxlan`) and that kube-proxy is absent, so Cilium replaces it entirely (1.13:
`kubeProxyReplacement=strict`, with `k8sServiceHost`/`k8sServicePort` pointing at the API server, FACTS.md
"k3s and k3d"). It sets `operator.replicas=1` (cilium-cli `install/helm.go`) and leaves the chart's
cluster-pool IPAM and `enable-bgp-control-plane: false` (walkthrough: `cilium config view | grep -i bgp`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Protocol

from bgpconform.cilium.versions import SUPPORTED_MINORS, supported_minor

DEFAULT_K8S_SERVICE_PORT = 6443

# Operator replicas as each installer leaves them (FACTS.md, "What a real cluster does that a lab may
# not"): the chart's default is 2; cilium-cli v0.15 sets 1 (the walkthrough's four-node rack runs one
# `cilium-operator-768959858c-*` pod after a bare `cilium install`).
OPERATOR_REPLICAS_BY_INSTALLER = {"cilium": 1, "helm": 2}

# `kubeProxyReplacement` that replaces kube-proxy entirely, by minor (FACTS.md, "k3s and k3d" and the
# 1.14 row of "Cilium 1.13 to 1.20"): `strict` in 1.13, `true` from 1.14, when `strict` was retired.
KUBE_PROXY_REPLACEMENT_BY_MINOR: dict[tuple[int, int], str] = {
    minor: "strict" if minor < (1, 14) else "true" for minor in SUPPORTED_MINORS
}


class _ClusterFacts(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def cilium_version(self) -> str: ...
    @property
    def cluster_pool(self) -> IPv4Network: ...
    @property
    def pod_cidr_mask_size(self) -> int: ...


class _NodeFacts(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def address(self) -> IPv4Address: ...


class InstallFacts(Protocol):
    """What the install reads of a topology (`bgpconform.topology.Topology` has it), named here so
    this package of Cilium's facts does not depend on the topology's."""

    @property
    def cluster(self) -> _ClusterFacts: ...
    @property
    def nodes(self) -> Sequence[_NodeFacts]: ...


@dataclass(frozen=True)
class CiliumValues:
    """The install's parameters; `extra_config` adds or overrides `cilium-config` keys."""

    version: str = "1.13.4"
    namespace: str = "kube-system"
    cluster_name: str = "default"
    k8s_service_host: str | None = None
    k8s_service_port: int = DEFAULT_K8S_SERVICE_PORT
    kube_proxy_replacement: str = "strict"
    ipam_mode: str = "cluster-pool"
    cluster_pool_ipv4_cidr: str = "10.0.0.0/8"
    cluster_pool_ipv4_mask_size: int = 24
    tunnel: str = "vxlan"
    enable_bgp_control_plane: bool = False
    operator_replicas: int = 1
    extra_config: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_topology(
        cls, topology: InstallFacts, installer: str = "cilium", **overrides: Any
    ) -> CiliumValues:
        """The walkthrough's auto-detected values for a topology: its cluster name, Cilium version, the
        control plane's address as `k8sServiceHost` (port 6443, k3s's API port), and the operator
        replicas `installer` leaves."""
        control_plane = next((n for n in topology.nodes if n.role == "control-plane"), None)
        version = str(overrides.pop("version", topology.cluster.cilium_version))
        values = cls(
            version=version,
            cluster_name=str(topology.cluster.name),
            k8s_service_host=str(control_plane.address) if control_plane is not None else None,
            operator_replicas=OPERATOR_REPLICAS_BY_INSTALLER[installer],
            kube_proxy_replacement=KUBE_PROXY_REPLACEMENT_BY_MINOR[supported_minor(version)],
            cluster_pool_ipv4_cidr=str(topology.cluster.cluster_pool),
            cluster_pool_ipv4_mask_size=topology.cluster.pod_cidr_mask_size,
        )
        return replace(values, **overrides)


class CiliumInstaller(Protocol):
    """Puts Cilium on a target and takes it off again; both are idempotent. `tool` is the installer
    it stands for (`cilium` or `helm`): what it leaves unset, the values must expect."""

    tool: str

    def install(self, values: CiliumValues) -> None:
        """Create or update what `cilium install` creates; returns once it is submitted, not ready."""

    def upgrade(self, values: CiliumValues) -> None:
        """`cilium upgrade` / `helm upgrade` to `values.version`: the agents roll as their DaemonSet's
        update strategy allows; returns once it is submitted, not rolled out."""

    def uninstall(self) -> None:
        """Remove what `install` created (CRDs and custom resources stay, as with `cilium uninstall`)."""


CILIUM_HELM_REPO = "https://helm.cilium.io/"


def cilium_install_command(
    values: CiliumValues, installer: str = "cilium", *, upgrade: bool = False
) -> list[str]:
    """`cilium install` (cilium-cli) or `helm install` with the walkthrough's values for k3s; with
    `upgrade`, `cilium upgrade` (Helm's is the same `upgrade --install`). Every value is given, so
    what `cilium config set` changed by hand (BGP on) is not reset to the chart's default."""
    settings = {
        "kubeProxyReplacement": values.kube_proxy_replacement,
        "k8sServiceHost": values.k8s_service_host or "",
        "k8sServicePort": str(values.k8s_service_port),
        "cluster.name": values.cluster_name,
        "bgpControlPlane.enabled": "true" if values.enable_bgp_control_plane else "false",
        # Explicit, so the count the checks expect does not hang on a tool's release.
        "operator.replicas": str(values.operator_replicas),
        "ipam.mode": values.ipam_mode,
    }
    if values.ipam_mode == "cluster-pool":  # a list in Helm's --set syntax
        settings["ipam.operator.clusterPoolIPv4PodCIDRList"] = "{" + values.cluster_pool_ipv4_cidr + "}"
        settings["ipam.operator.clusterPoolIPv4MaskSize"] = str(values.cluster_pool_ipv4_mask_size)
    flags = [f"--set={key}={value}" for key, value in settings.items()]
    if installer == "helm":
        return [
            "helm", "upgrade", "--install", "cilium", "cilium", f"--repo={CILIUM_HELM_REPO}",
            f"--version={values.version}", f"--namespace={values.namespace}", *flags,
        ]  # fmt: skip
    return ["cilium", "upgrade" if upgrade else "install", f"--version={values.version}", *flags]
