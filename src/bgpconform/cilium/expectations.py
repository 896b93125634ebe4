"""What Cilium documents it prints, per version (FACTS.md, "CRD registration, config, logs").

Steps compare logs with these, never with what an emulation produces, so a lab that drifted from
Cilium fails the same check a real cluster would.
"""

from __future__ import annotations

from bgpconform.cilium.versions import cilium_minor

POLICY_KIND = "CiliumBGPPeeringPolicy/v2alpha1"


def agent_missing_policy_crd(version: str) -> str:
    """The text an agent logs while the peering policy CRD is not served."""
    if cilium_minor(version, since=(1, 13), missing="the Cilium version") >= (1, 16):
        return "Still waiting for Cilium Operator to register the following CRDs"
    return "Failed to watch *v2alpha1.CiliumBGPPeeringPolicy: failed to list *v2alpha1.CiliumBGPPeeringPolicy"


def operator_created_policy_crd() -> str:
    return f'msg="Creating CRD (CustomResourceDefinition)..." name={POLICY_KIND}'
