"""The upgrade path and what an upgrade leaves behind, against Cilium's upgrade guide and FACTS.md."""

from __future__ import annotations

import pytest

from bgpconform.cilium.bgp_api import BgpApi
from bgpconform.cilium.install import CiliumValues, cilium_install_command
from bgpconform.cilium.upgrades import api_left_behind, problem, upgrade_path


def test_the_path_visits_every_minor_in_turn_and_ends_at_the_release_asked_for() -> None:
    """docs.cilium.io, Upgrade Guide: "Always perform rollbacks and upgrades between one minor release
    at a time"."""
    path = upgrade_path("1.13.4", "1.16.7")
    assert [tuple(int(p) for p in release.split(".")[:2]) for release in path] == [(1, 14), (1, 15), (1, 16)]
    assert path[-1] == "1.16.7"
    assert upgrade_path("1.18.2", "1.19.1") == ["1.19.1"]


@pytest.mark.parametrize(("current", "target"), [("1.17.5", "1.17.9"), ("1.18.2", "1.16.3")])
def test_a_target_that_is_not_a_later_minor_is_refused_with_its_fix(current: str, target: str) -> None:
    refused = problem(current, target)
    assert refused is not None
    assert refused[0] == f"{target} is not a later minor than cluster.cilium_version {current}"
    with pytest.raises(ValueError, match=r"leave cluster\.upgrade_to unset"):
        upgrade_path(current, target)


def test_a_v1_policy_is_left_behind_only_where_1_19_removed_it() -> None:
    """FACTS.md, the 1.19 row: leftover CiliumBGPPeeringPolicy objects are ignored; #42278."""
    assert api_left_behind("1.18.2", BgpApi.V1) is None
    assert api_left_behind("1.19.1", BgpApi.V2) is None
    said = api_left_behind("1.19.1", BgpApi.V1)
    assert said is not None
    assert "ignores CiliumBGPPeeringPolicy" in said
    assert "#42278" in said
    assert "migrate the policy to BGPv2 before upgrading" in said


@pytest.mark.parametrize("tool", ["cilium", "helm"])
def test_the_upgrade_command_gives_every_value_again_so_bgp_stays_on(tool: str) -> None:
    """`cilium config set` changed the ConfigMap, not the Helm values: an upgrade that reused the
    release's values would turn the BGP control plane off again."""
    values = CiliumValues(version="1.19.1", enable_bgp_control_plane=True, kube_proxy_replacement="true")
    argv = cilium_install_command(values, tool, upgrade=True)
    assert argv[:2] == (["cilium", "upgrade"] if tool == "cilium" else ["helm", "upgrade"])
    assert "--version=1.19.1" in argv
    assert "--set=bgpControlPlane.enabled=true" in argv
    assert "--set=kubeProxyReplacement=true" in argv
