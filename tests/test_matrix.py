"""The version matrix's plan and page, without running the suite (tests/suite/test_matrix_run.py runs it)."""

from __future__ import annotations

import pytest
from markupsafe import escape

from bgpconform.cilium.bgp_api import BgpApi
from bgpconform.errors import ConfigError
from bgpconform.matrix.cells import parse_versions, plan
from bgpconform.report.matrix_page import MatrixRow, render_matrix
from tests.report.conftest import build_conformant, build_non_conformant


def test_every_minor_from_1_13_to_1_19_runs_on_each_api_it_has() -> None:
    cells = plan(["lab.yaml"], parse_versions(None))
    shown = [(c.version, c.api.value) for c in cells]
    assert [v for v, _ in shown if _ == "v1"] == ["1.13.4", "1.14.3", "1.15.5", "1.16.3", "1.17.5", "1.18.2"]
    assert [v for v, api in shown if api == "v2"] == ["1.16.3", "1.17.5", "1.18.2", "1.19.1"]


def test_a_subset_of_minors_and_topologies() -> None:
    cells = plan(["lab.yaml", "lab-ebgp.yaml"], parse_versions("1.13, 1.16.3,v1.19"))
    assert [(c.topology, c.version, c.api) for c in cells] == [
        ("lab.yaml", "1.13.4", BgpApi.V1),
        ("lab.yaml", "1.16.3", BgpApi.V1),
        ("lab.yaml", "1.16.3", BgpApi.V2),
        ("lab.yaml", "1.19.1", BgpApi.V2),
        ("lab-ebgp.yaml", "1.13.4", BgpApi.V1),
        ("lab-ebgp.yaml", "1.16.3", BgpApi.V1),
        ("lab-ebgp.yaml", "1.16.3", BgpApi.V2),
        ("lab-ebgp.yaml", "1.19.1", BgpApi.V2),
    ]
    assert cells[2].slug == "lab-1.16.3-v2"
    assert cells[2].label == "Cilium 1.16.3 on BGPv2"


def test_a_version_outside_the_matrix_is_one_line_naming_the_option_and_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_versions("1.13,1.20")
    assert str(caught.value) == (
        "--versions: '1.20' is not a Cilium minor of the matrix (1.13 to 1.19); fix: name some of "
        "1.13, 1.14, 1.15, 1.16, 1.17, 1.18, 1.19, separated by commas"
    )


def test_the_page_has_a_cell_per_run_and_scenario_with_outcome_and_stage_times() -> None:
    good, bad = build_conformant(), build_non_conformant()
    rows = [
        MatrixRow("lab.yaml", "Cilium 1.13.4 on the v1 policy", "pytest ...", 0, 60.0, "a/report.html", good),
        MatrixRow("lab.yaml", "Cilium 1.16.3 on BGPv2", "pytest ...", 1, 70.0, "b/report.html", bad),
        MatrixRow("lab.yaml", "Cilium 1.19.1 on BGPv2", "pytest ...", 2, 3.0, None, None),
    ]
    page = render_matrix(rows)
    scenarios = {s.name for s in good.scenarios}
    assert page.count('<td class="cell') == 3 * len(scenarios)
    assert page.count('class="badge not-run"') == len(scenarios)  # the run that wrote no report
    assert 'href="a/report.html"' in page
    assert "no report (exit 2)" in page
    failed = next(s for s in bad.scenarios if s.failure is not None)
    assert f"failed at: {escape(failed.failure.step)}" in page  # type: ignore[union-attr]
    stage = next(t.stage for s in good.scenarios for t in s.timings)
    assert f"<li>{stage} " in page
