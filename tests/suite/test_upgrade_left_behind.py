"""Upgrading to 1.19 with the v1 peering policy left behind (FACTS.md, the 1.19 row; #42278): the run is
non-conformant at the step that names the cause, not at a generic timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.suite.runner import UPGRADE_TOPOLOGY, first_scenario_stating, node_id, run_suite, topology_with

pytestmark = pytest.mark.lab

BACK = (
    "after each minor every agent and the operator run it and every peering node's session and path to "
    "the LB IP come back"
)


def test_an_upgrade_to_1_19_with_a_v1_policy_names_the_policy_left_behind(tmp_path: Path) -> None:
    title = first_scenario_stating(BACK)
    topology = topology_with(UPGRADE_TOPOLOGY, tmp_path, sessions_established=15, routes=8)
    options = ("--bgp-api=v1", "--cilium-version=1.18.2", "--lab-shortcut=short-bgp-timers")
    run = run_suite(tmp_path, node_id(title), topology=topology, options=options)
    result = run.scenarios[title]
    failed = result.failed_step
    assert failed is not None, run.summary()
    assert failed.name == BACK, run.summary()
    assert result.outcome == "non-conformant", run.summary()
    assert "the upgrade to 1.19.1 did not come back" in failed.error, failed.error
    left = "CiliumBGPPeeringPolicy ['01-bgp-peering-policy'] left in the cluster"
    assert left in failed.error, failed.error
    assert "migrate the policy to BGPv2 before upgrading" in failed.error, failed.error
