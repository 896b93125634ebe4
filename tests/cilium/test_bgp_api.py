"""The BGP API each release offers, checked against FACTS.md's sources ("Cilium 1.13 to 1.20",
"Cilium: BGPv2"), written out here rather than read from the table under test."""

from __future__ import annotations

import pytest

from bgpconform.cilium import bgp_api
from bgpconform.cilium.bgp_api import BgpApi


@pytest.mark.parametrize(
    ("version", "v1", "v2"),
    [
        ("1.13.4", True, False),  # the walkthrough's release: v1 only
        ("1.15.5", True, False),  # BGPv2 types exist but are not functional (FACTS.md)
        ("1.16.3", True, True),  # BGPv2 functional as v2alpha1
        ("1.18.2", True, True),  # v1 deprecated (#38397), still served
        ("1.19.1", False, True),  # v1 removed (#42278)
    ],
)
def test_which_api_a_release_accepts(version: str, v1: bool, v2: bool) -> None:
    assert (bgp_api.problem(version, BgpApi.V1) is None) is v1
    assert (bgp_api.problem(version, BgpApi.V2) is None) is v2


def test_bgpv2_moves_from_v2alpha1_to_v2_in_1_18() -> None:
    """PR #37765: promoted to cilium.io/v2 in 1.18."""
    assert bgp_api.v2_resources("1.16.3").cluster_configs.api_version == "cilium.io/v2alpha1"
    assert bgp_api.v2_resources("1.17.5").node_configs.api_version == "cilium.io/v2alpha1"
    assert bgp_api.v2_resources("1.18.2").peer_configs.api_version == "cilium.io/v2"
    assert bgp_api.v2_resources("1.19.1").advertisements.plural == "ciliumbgpadvertisements"
    with pytest.raises(ValueError, match="no working BGPv2"):
        bgp_api.v2_resources("1.15.5")


def test_the_resources_that_must_be_served_follow_the_api() -> None:
    assert [r.kind for r in bgp_api.configuration_resources("1.13.4", BgpApi.V1)] == [
        "CiliumBGPPeeringPolicy"
    ]
    assert {r.kind for r in bgp_api.configuration_resources("1.19.1", BgpApi.V2)} == {
        "CiliumBGPClusterConfig",
        "CiliumBGPPeerConfig",
        "CiliumBGPAdvertisement",
        "CiliumBGPNodeConfig",
    }


def test_node_status_is_written_from_1_17() -> None:
    """PR #33411: agents write CiliumBGPNodeConfig.status from 1.17."""
    assert not bgp_api.apis("1.16.3").node_status
    assert bgp_api.apis("1.17.5").node_status
