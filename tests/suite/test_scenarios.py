"""Any scenario runs alone: each starts from a fresh lab, so its Background must bring the deployment
to the stage it needs by itself. (The whole suite on a second topology runs in tests/report_run.)
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from tests.suite.runner import SuiteRun, node_id, run_suite, scenario_titles, topology_for
from tests.suite.side_by_side import SideBySide, selected_params, width

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def alone(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SideBySide[SuiteRun]]:
    titles = selected_params(request.session, "test_each_scenario_passes_when_run_alone", "title")
    runs = SideBySide(
        [
            (
                title,
                partial(
                    run_suite, tmp_path_factory.mktemp("alone"), node_id(title), topology=topology_for(title)
                ),
            )
            for title in titles
        ],
        width(),
    )
    yield runs
    runs.close()


@pytest.mark.parametrize("title", scenario_titles(None))
def test_each_scenario_passes_when_run_alone(alone: SideBySide[SuiteRun], title: str) -> None:
    """On the walkthrough's release, else on the first shipped topology whose release and API the
    scenario's rules hold for (`topology_for`); each run has its own lab, side by side with another."""
    run = alone.result(title)
    assert list(run.scenarios) == [title], run.summary()
    assert run.scenarios[title].passed, run.summary()
    assert run.scenarios[title].outcome == "passed", run.summary()
    assert run.returncode == pytest.ExitCode.OK, run.summary()
