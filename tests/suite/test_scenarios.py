"""The suite's promises about itself: any scenario runs alone, and nothing in it is tied to one topology.

Each scenario alone starts from a fresh lab, so its Background must bring the deployment to the
stage it needs by itself. The second topology (`topologies/lab-ebgp.yaml`) shares no name, address,
ASN, pool or port with the walkthrough, and peers a control-plane node while leaving a worker out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.suite.runner import ROOT, node_id, run_suite, scenario_titles

pytestmark = pytest.mark.lab

SECOND_TOPOLOGY = ROOT / "topologies" / "lab-ebgp.yaml"


@pytest.mark.parametrize("title", scenario_titles())
def test_each_scenario_passes_when_run_alone(tmp_path: Path, title: str) -> None:
    run = run_suite(tmp_path, node_id(title))
    assert list(run.scenarios) == [title], run.summary()
    assert run.scenarios[title].passed, run.summary()
    assert run.scenarios[title].outcome == "passed", run.summary()
    assert run.returncode == pytest.ExitCode.OK, run.summary()


def test_the_whole_suite_passes_on_a_topology_that_shares_nothing_with_the_walkthrough(
    tmp_path: Path,
) -> None:
    run = run_suite(tmp_path, topology=SECOND_TOPOLOGY)
    assert set(run.scenarios) == set(scenario_titles()), run.summary()
    failed = [title for title, result in run.scenarios.items() if not result.passed]
    assert not failed, run.summary()
    assert run.returncode == pytest.ExitCode.OK, run.summary()
