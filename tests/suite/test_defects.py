"""Each defect of the lab's catalogue fails the Then step that names the promise it breaks.

The lab is started broken one way (`--lab-defect NAME`, the bug living in the emulated component where
the real one lives); the first scenario that states the defect's Then step is run, and it must fail
at exactly that step, as a non-conformance showing expected and observed, with the report saying
which defect the lab ran with. Earlier steps of the scenario (its Background, its Whens) must pass:
a defect caught by a Given or a timeout elsewhere would say nothing about the promise. The runs go
side by side (`tests.suite.side_by_side`), each with its own lab.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from bgpconform.lab.defects import CATALOGUE, markdown_table
from bgpconform.report.model import RunReport, Verdict
from tests.suite.runner import (
    ROOT,
    SuiteRun,
    first_scenario_stating,
    node_id,
    run_suite,
    then_steps,
    topology_with,
)
from tests.suite.side_by_side import SideBySide, selected_params, width

pytestmark = pytest.mark.lab

TOPOLOGIES = ROOT / "topologies"
# Short enough that a wait the defect makes hopeless ends soon, long enough for a healthy lab.
SHORT_WAITS = {
    "sessions_established": 12,
    "routes": 8,
    "ip_allocated": 8,
    "crd_registered": 15,
    "http": 6,
    "pods_running": 30,
}


def _run_defect(name: str, directory: Path) -> tuple[SuiteRun, Path]:
    """The first scenario stating the defect's Then step, on a lab started with the defect."""
    defect = CATALOGUE[name]
    title = first_scenario_stating(defect.caught_by)
    topology = topology_with(TOPOLOGIES / defect.topology, directory, **{**SHORT_WAITS, **dict(defect.waits)})
    # Sessions in a second (short-bgp-timers, router-dials), unless the defect is about the nodes' own timers.
    options = (f"--lab-defect={name}", *(f"--lab-shortcut={s}" for s in defect.shortcuts))
    return run_suite(directory, node_id(title), topology=topology, options=options), directory


@pytest.fixture(scope="module")
def defect_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SideBySide[tuple[SuiteRun, Path]]]:
    names = selected_params(
        request.session, "test_a_defect_fails_the_then_step_that_names_its_promise", "name"
    )
    runs = SideBySide(
        [(name, partial(_run_defect, name, tmp_path_factory.mktemp(name))) for name in names], width()
    )
    yield runs
    runs.close()


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_a_defect_fails_the_then_step_that_names_its_promise(
    defect_runs: SideBySide[tuple[SuiteRun, Path]], name: str
) -> None:
    defect = CATALOGUE[name]
    title = first_scenario_stating(defect.caught_by)
    run, tmp_path = defect_runs.result(name)
    result = run.scenarios[title]
    failed = result.failed_step
    assert failed is not None, f"{name}: {title!r} passed\n{run.summary()}"
    assert failed.name == defect.caught_by, f"{name}: failed at {failed.name!r}\n{run.summary()}"
    assert result.outcome == "non-conformant", run.summary()
    for phrase in ("expected:", "observed:"):
        assert phrase in failed.error, f"{phrase!r} missing from the failure:\n{failed.error}"

    report = RunReport.model_validate_json((tmp_path / "reports" / "latest" / "report.json").read_text())
    assert report.verdict is Verdict.NON_CONFORMANT
    assert report.run.versions.get("lab defects") == name, json.dumps(report.run.versions)
    assert report.run.provenance is not None
    assert report.run.provenance.defects == [name]
    assert [s.split(":")[0] for s in report.run.provenance.shortcuts] == sorted(defect.shortcuts)
    scenario = next(s for s in report.scenarios if s.name == title)
    assert scenario.failure is not None
    assert scenario.failure.expected, scenario.failure
    assert scenario.failure.observed, scenario.failure
    captured = {item.title for item in scenario.evidence}
    assert {"kubectl get pods -A -o wide", "cilium bgp peers", "router sessions"} <= captured, captured
    assert any(title.startswith("router: ") for title in captured), captured


def test_every_defect_names_a_then_step_of_the_features() -> None:
    steps = then_steps()
    assert {name: d.caught_by for name, d in CATALOGUE.items() if d.caught_by not in steps} == {}


def test_every_then_step_is_broken_by_a_defect() -> None:
    caught = {defect.caught_by for defect in CATALOGUE.values()}
    uncaught = [step for step in then_steps() if step not in caught]
    print("Then steps no defect breaks:", *uncaught, sep="\n  ")
    assert uncaught == []


def test_the_readme_shows_the_catalogue_as_it_is() -> None:
    """README.md's table is `bgpconform lab defects --markdown`; regenerate it when this fails."""
    assert markdown_table() in (ROOT / "README.md").read_text()
