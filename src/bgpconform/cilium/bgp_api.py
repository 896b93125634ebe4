"""Which BGP API a Cilium release has, and the resources each one is configured with: one table.

FACTS.md ("Cilium: BGP control plane v1", "Cilium: BGPv2", "Cilium 1.13 to 1.20"): the v1
`CiliumBGPPeeringPolicy` (cilium.io/v2alpha1) exists from 1.13, is deprecated in 1.18 (#38397) and
removed in 1.19 (#42278). BGPv2 (`CiliumBGPClusterConfig`, `CiliumBGPPeerConfig`,
`CiliumBGPAdvertisement`, `CiliumBGPNodeConfig`) ships as types in 1.15 but works only from 1.16, as
cilium.io/v2alpha1, and moves to cilium.io/v2 in 1.18 (#37765). Agents write
`CiliumBGPNodeConfig.status` from 1.17 (#33411).

The harness uses v1 where it is the only API and v2 from 1.16, unless the topology's `bgp.api` says
otherwise; whether a choice exists on a release is decided here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bgpconform.cilium.versions import supported_minor
from bgpconform.kubeapi.port import KubeResource, Resources


class BgpApi(StrEnum):
    V1 = "v1"  # CiliumBGPPeeringPolicy
    V2 = "v2"  # CiliumBGPClusterConfig, PeerConfig, Advertisement (NodeConfig written by the operator)


@dataclass(frozen=True)
class BgpApis:
    """What one minor offers."""

    available: tuple[BgpApi, ...]
    default: BgpApi
    v2_group_version: str | None  # where the BGPv2 kinds are served (None: no working BGPv2)
    node_status: bool  # agents report their peers in CiliumBGPNodeConfig.status
    v1_deprecated: bool  # the API server warns on every v1 policy request


_V1_ONLY = BgpApis((BgpApi.V1,), BgpApi.V1, None, node_status=False, v1_deprecated=False)

BY_MINOR: dict[tuple[int, int], BgpApis] = {
    (1, 13): _V1_ONLY,
    (1, 14): _V1_ONLY,
    (1, 15): _V1_ONLY,  # the v2 types exist but nothing acts on them (FACTS.md, "BGPv2")
    (1, 16): BgpApis(
        (BgpApi.V1, BgpApi.V2), BgpApi.V2, "cilium.io/v2alpha1", node_status=False, v1_deprecated=False
    ),
    (1, 17): BgpApis(
        (BgpApi.V1, BgpApi.V2), BgpApi.V2, "cilium.io/v2alpha1", node_status=True, v1_deprecated=False
    ),
    (1, 18): BgpApis((BgpApi.V1, BgpApi.V2), BgpApi.V2, "cilium.io/v2", node_status=True, v1_deprecated=True),
    (1, 19): BgpApis((BgpApi.V2,), BgpApi.V2, "cilium.io/v2", node_status=True, v1_deprecated=True),
}


def apis(cilium_version: str) -> BgpApis:
    return BY_MINOR[supported_minor(cilium_version)]


def problem(cilium_version: str, api: BgpApi) -> tuple[str, str] | None:
    """Why `api` cannot configure BGP on `cilium_version`, and the fix; None when it can."""
    offered = apis(cilium_version)
    if api in offered.available:
        return None
    if api is BgpApi.V1:
        return (
            f"Cilium {cilium_version} has no CiliumBGPPeeringPolicy (BGP v1 was removed in 1.19, "
            "cilium/cilium#42278)",
            "set bgp.api: v2 (or leave bgp.api unset), or choose a cilium_version up to 1.18",
        )
    return (
        f"Cilium {cilium_version} has no working BGPv2 (CiliumBGPClusterConfig works from 1.16)",
        "set bgp.api: v1 (or leave bgp.api unset), or choose a cilium_version of 1.16 or later",
    )


def chosen(cilium_version: str, requested: BgpApi | None) -> BgpApi:
    """The API a run uses: the topology's, else the release's default."""
    return requested if requested is not None else apis(cilium_version).default


@dataclass(frozen=True)
class BgpV2Resources:
    """The BGPv2 kinds where a minor serves them (cilium.io/v2alpha1 in 1.16-1.17, cilium.io/v2 from 1.18)."""

    cluster_configs: KubeResource
    peer_configs: KubeResource
    advertisements: KubeResource
    node_configs: KubeResource
    node_config_overrides: KubeResource

    @property
    def configured(self) -> tuple[KubeResource, ...]:
        """What the harness writes, in the order it creates them (referenced before referencing)."""
        return (self.peer_configs, self.advertisements, self.cluster_configs)


def v2_resources(cilium_version: str) -> BgpV2Resources:
    group_version = apis(cilium_version).v2_group_version
    if group_version is None:
        raise ValueError(f"Cilium {cilium_version} has no working BGPv2 (it works from 1.16)")
    group, version = group_version.split("/")

    def kind(name: str, plural: str) -> KubeResource:
        return KubeResource(group, version, plural, False, name)

    return BgpV2Resources(
        cluster_configs=kind("CiliumBGPClusterConfig", "ciliumbgpclusterconfigs"),
        peer_configs=kind("CiliumBGPPeerConfig", "ciliumbgppeerconfigs"),
        advertisements=kind("CiliumBGPAdvertisement", "ciliumbgpadvertisements"),
        node_configs=kind("CiliumBGPNodeConfig", "ciliumbgpnodeconfigs"),
        node_config_overrides=kind("CiliumBGPNodeConfigOverride", "ciliumbgpnodeconfigoverrides"),
    )


def configuration_resources(cilium_version: str, api: BgpApi) -> tuple[KubeResource, ...]:
    """The resources the operator must serve before BGP can be configured through `api`: the policy
    for v1; for v2 the kinds the harness writes and the node configs the operator derives from them."""
    if api is BgpApi.V1:
        return (Resources.BGP_PEERING_POLICIES,)
    kinds = v2_resources(cilium_version)
    return (kinds.cluster_configs, kinds.peer_configs, kinds.advertisements, kinds.node_configs)
