"""Any scenario runs alone: each starts from a fresh lab, so its Background must bring the deployment
to the stage it needs by itself. (The whole suite on a second topology runs in tests/report_run.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.suite.runner import node_id, run_suite, scenario_titles, topology_for

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("title", scenario_titles(None))
def test_each_scenario_passes_when_run_alone(tmp_path: Path, title: str) -> None:
    """On the walkthrough's release, or on 1.19 with BGPv2 for a scenario only later releases promise."""
    run = run_suite(tmp_path, node_id(title), topology=topology_for(title))
    assert list(run.scenarios) == [title], run.summary()
    assert run.scenarios[title].passed, run.summary()
    assert run.scenarios[title].outcome == "passed", run.summary()
    assert run.returncode == pytest.ExitCode.OK, run.summary()
