"""`./run matrix --versions 1.13,1.16,1.19 --topologies lab-ebgp.yaml` as CI runs it: the whole suite on
the lab for the oldest release, the first with BGPv2 (on both APIs) and the newest (BGPv2 only), on the
topology that shares nothing with the walkthrough (the walkthrough's own runs in `./run suite` and,
scenario by scenario, on 1.19 in test_scenarios); every run conformant, and the page, opened in
chromium, shows every cell."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from bgpconform.lab.runs import list_namespaces
from bgpconform.waiting import wait_for
from tests.suite.runner import ROOT, TEARDOWN_DEADLINE, end_group, group_alive

pytestmark = pytest.mark.lab

MATRIX_DEADLINE = 4 * 600.0  # four runs, each far below the suite's own deadline


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("matrix")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bgpconform.cli", "matrix", "--versions", "1.13,1.16,1.19"),
            *("--topologies", "lab-ebgp.yaml", "--out", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=MATRIX_DEADLINE,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_every_run_of_the_matrix_is_conformant(matrix: Path) -> None:
    runs = json.loads((matrix / "matrix.json").read_text())
    assert [(r["topology"], r["cilium"], r["bgp_api"]) for r in runs] == [
        ("lab-ebgp.yaml", version, api)
        for version, api in (("1.13.4", "v1"), ("1.16.3", "v1"), ("1.16.3", "v2"), ("1.19.1", "v2"))
    ]
    assert {r["verdict"] for r in runs} == {"conformant"}, runs
    for run in runs:
        report = json.loads((matrix / run["report"] / "report.json").read_text())
        assert report["run"]["versions"]["cilium"] == run["cilium"]
        rules = report["run"]["version_rules"]
        first_last = "applied" if run["cilium"] >= "1.16" else "not applicable"
        assert any(
            r.startswith("From Cilium 1.16 a pool hands out") and f": {first_last} " in r for r in rules
        )


def test_the_page_shows_every_cell_in_a_real_browser(matrix: Path) -> None:
    executable = shutil.which("chromium")
    assert executable is not None, "chromium is not installed: apt-get install chromium"
    page_file = matrix / "matrix.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(page_file.as_uri(), wait_until="load")
            page.screenshot(path=str(matrix / "matrix.png"), full_page=True)
            rows = page.locator("table.matrix tbody tr")
            assert rows.count() == 4
            columns = page.locator("table.matrix thead th.scenario").count()  # one table: one topology
            cells = page.locator("table.matrix td.cell")
            assert cells.count() == 4 * columns
            for index in range(cells.count()):
                cell = cells.nth(index)
                cell.scroll_into_view_if_needed()
                assert cell.is_visible(), index
                assert cell.locator(".badge").inner_text() in {"passed", "not applicable"}
            assert requested == [page_file.as_uri()]  # self-contained: nothing fetched
            report_link = page.locator("a", has_text="report").first.get_attribute("href")
            assert report_link is not None
            assert (matrix / report_link).is_file()
        finally:
            browser.close()


def test_a_sigterm_stops_the_cells_running_and_starts_no_more(tmp_path: Path) -> None:
    """A CI job that cancels sends SIGTERM to the command alone: the cell running must stop and take
    its lab down, the cells not yet started must not start, and the page says which ran."""
    before = set(list_namespaces())
    child = subprocess.Popen(
        [
            *(sys.executable, "-m", "bgpconform.cli", "matrix", "--versions", "1.13,1.14,1.15"),
            *("--topologies", "lab.yaml", "--side-by-side", "1", "--out", str(tmp_path)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        wait_for(
            lambda: {ns for ns in set(list_namespaces()) - before if ns.startswith("bgpc-")},
            bool,
            expected="the first cell's lab started",
            timeout=120,
        )
        child.send_signal(signal.SIGTERM)
        output, _ = child.communicate(timeout=TEARDOWN_DEADLINE)
    finally:
        end_group(child)
    assert child.returncode == 130, output
    assert not group_alive(child.pid), output  # the cell ended before the command did
    assert not {ns for ns in set(list_namespaces()) - before if ns.startswith("bgpc-")}, output
    runs = json.loads((tmp_path / "matrix.json").read_text())
    assert [run["cilium"] for run in runs] == ["1.13.4", "1.14.3", "1.15.5"]
    assert runs[0]["verdict"] == "not-assessed", runs  # stopped: its report says it was interrupted
    assert [(run["returncode"], run["verdict"]) for run in runs[1:]] == [(None, None), (None, None)]
    assert output.count("not run: the matrix was stopped first") == 2, output
    assert (tmp_path / "matrix.html").read_text().count("not run: the matrix was stopped first") == 2
