"""What Cilium documents it prints, per version (FACTS.md, "CRD registration, config, logs").

Steps compare logs with these, never with what an emulation produces, so a lab that drifted from
Cilium fails the same check a real cluster would.
"""

from __future__ import annotations

from bgpconform.cilium import bgp_api
from bgpconform.cilium.bgp_api import BgpApi
from bgpconform.cilium.versions import cilium_minor

POLICY_KIND = "CiliumBGPPeeringPolicy/v2alpha1"


def agent_missing_policy_crd(version: str) -> str:
    """The text an agent logs while the peering policy CRD is not served."""
    if cilium_minor(version, since=(1, 13), missing="the Cilium version") >= (1, 16):
        return "Still waiting for Cilium Operator to register the following CRDs"
    return "Failed to watch *v2alpha1.CiliumBGPPeeringPolicy: failed to list *v2alpha1.CiliumBGPPeeringPolicy"


def operator_created_bgp_crd(version: str, api: BgpApi) -> str:
    """The operator's line for the CRD that `api` is configured through: the policy on v1, the cluster
    config on BGPv2, under the group version the release serves it (`bgp_api`)."""
    if api is BgpApi.V1:
        kind = POLICY_KIND
    else:
        cluster_configs = bgp_api.v2_resources(version).cluster_configs
        kind = f"{cluster_configs.kind}/{cluster_configs.version}"
    return f'msg="Creating CRD (CustomResourceDefinition)..." name={kind}'
