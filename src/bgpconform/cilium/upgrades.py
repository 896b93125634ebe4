"""The path of a Cilium upgrade, and what a release leaves behind that its predecessor used.

Cilium's upgrade guide (docs.cilium.io, "Upgrade Guide"): "The only tested rollback and upgrade path
is between consecutive minor releases. Always perform rollbacks and upgrades between one minor release
at a time." So the harness walks every minor between the run's release and the one asked for, each
intermediate minor at the release the version matrix uses for it (`versions.MATRIX_RELEASES`).

What an upgrade leaves behind comes from the BGP API table (`bgp_api`): a run configured with the v1
`CiliumBGPPeeringPolicy` that reaches 1.19 keeps its policy, which 1.19 ignores silently, and its
sessions go away (FACTS.md, the 1.19 row of "Cilium 1.13 to 1.20"; cilium/cilium#42278).
"""

from __future__ import annotations

from bgpconform.cilium import bgp_api
from bgpconform.cilium.bgp_api import BgpApi
from bgpconform.cilium.versions import MATRIX_RELEASES, supported_minor


def problem(current: str, target: str) -> tuple[str, str] | None:
    """Why `target` cannot be upgraded to from `current`, and the fix; None when it can."""
    try:
        target_minor = supported_minor(target)
    except ValueError as exc:
        return str(exc), "choose a release from 1.13 to 1.19"
    if target_minor <= supported_minor(current):
        return (
            f"{target} is not a later minor than cluster.cilium_version {current}",
            "choose a release of a later minor, or leave cluster.upgrade_to unset",
        )
    return None


def upgrade_path(current: str, target: str) -> list[str]:
    """The releases installed in turn: one per minor after `current`'s, the last one `target`."""
    refused = problem(current, target)
    if refused is not None:
        raise ValueError(f"{refused[0]}; {refused[1]}")
    first, last = supported_minor(current), supported_minor(target)
    between = [MATRIX_RELEASES[(1, minor)] for minor in range(first[1] + 1, last[1])]
    return [*between, target]


def api_left_behind(release: str, configured: BgpApi) -> str | None:
    """What the run configured that `release` no longer reads, said for a failure message; None when
    the release still has the run's BGP API."""
    if bgp_api.problem(release, configured) is None:
        return None
    if configured is BgpApi.V1:
        return (
            f"Cilium {release} ignores CiliumBGPPeeringPolicy objects (BGPv1 was removed in 1.19, "
            "cilium/cilium#42278): migrate the policy to BGPv2 before upgrading"
        )
    return f"Cilium {release} does not read the run's BGP {configured.value} configuration"
