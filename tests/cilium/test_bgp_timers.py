"""How soon a node dials and what the harness's policy sets, per Cilium version, against FACTS.md's
sources: 1.13's `AddNeighbor` sets no timers (GoBGP: connect retry 120 s, first dial 5-10 s, then
120-239 s), 1.14 adds `connectRetryTimeSeconds`, `holdTimeSeconds`, `keepAliveTimeSeconds`; GoBGP v3's
`fsm.go` raises a connect retry below `minConnectRetryInterval = 5` to 5 s (vendored in Cilium,
`vendor/github.com/osrg/gobgp/v3/pkg/server/fsm.go`; docs/verified-facts.md, "GoBGP's dial floor")."""

from __future__ import annotations

import pytest
import yaml

from bgpconform.cilium.bgp_timers import node_dialling, policy_timers
from bgpconform.topology import parse_topology
from bgpconform.walkthrough.manifests import peering_policy
from tests.suite.runner import ROOT


def test_1_13_waits_out_gobgps_longest_redial() -> None:
    dialling = node_dialling("1.13.4")
    assert dialling.connect_retry == 120
    assert dialling.retry_max == 239  # 120 s plus jitter below another 120 s
    assert dialling.established_within >= 10 + 239  # a first dial missed, then the longest gap


def test_from_1_14_the_policys_connect_retry_decides() -> None:
    assert node_dialling("1.14.0", policy_connect_retry=30).retry_max == 59
    assert node_dialling("v1.16.2").connect_retry == 120  # the field's default
    with pytest.raises(ValueError, match=r"no BGP timers known for Cilium 1\.12\.0"):
        node_dialling("1.12.0")


def test_a_connect_retry_below_gobgps_floor_still_dials_every_5_to_9_seconds() -> None:
    """cilium-cli's BGP test sets 1 s; GoBGP dials no sooner than 5 s, with jitter below another 5 s."""
    dialling = node_dialling("1.16.2", policy_connect_retry=1)
    assert (dialling.retry_min, dialling.retry_max) == (5, 9)
    assert dialling.established_within >= 10 + 9


def test_the_policy_sets_timers_only_where_the_crd_has_them() -> None:
    assert policy_timers("1.13.4", 1, 9, 3) == {}
    assert policy_timers("1.15.1", 1, 9, 3) == {
        "connectRetryTimeSeconds": 1,
        "holdTimeSeconds": 9,
        "keepAliveTimeSeconds": 3,
    }


@pytest.mark.parametrize(("version", "has_timers"), [("1.13.4", False), ("1.14.5", True)])
def test_the_harness_policy_carries_the_topologys_timers_from_1_14(version: str, has_timers: bool) -> None:
    data = yaml.safe_load((ROOT / "topologies" / "lab.yaml").read_text())
    data["cluster"]["cilium_version"] = version
    topology = parse_topology(yaml.safe_dump(data), "lab.yaml")
    (neighbor,) = peering_policy(topology)["spec"]["virtualRouters"][0]["neighbors"]
    assert ("connectRetryTimeSeconds" in neighbor) is has_timers
    assert neighbor["peerAddress"] == "192.168.1.1/32"  # the walkthrough's router
