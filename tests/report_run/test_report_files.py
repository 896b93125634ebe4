"""The report directory a suite run leaves: every file, in the shapes its readers expect, and no secret.

One child suite run on the second lab topology (which shares nothing with the walkthrough) with
secrets planted where a careless report would copy them; every test reads what that run wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
import yaml
from playwright.sync_api import sync_playwright

from bgpconform.report.model import RunReport, Verdict
from bgpconform.verdict import Outcome
from tests.report.test_browser import CHROMIUM_MISSING, VIEWPORT, _check_report_page
from tests.report_run import plant_secret
from tests.suite.runner import ROOT, SuiteRun, run_suite, scenario_titles

pytestmark = pytest.mark.lab

SECOND_TOPOLOGY = ROOT / "topologies" / "lab-ebgp.yaml"
JUNIT_SCHEMA = Path(__file__).with_name("junit.xsd")
STAGE_NAMES = ["minimal", "cilium", "bgp-enabled", "bgp-ready", "peering", "lb-ipam", "faults"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, Path]:
    directory = tmp_path_factory.mktemp("report-run")
    topology, env = plant_secret.with_planted_credentials(SECOND_TOPOLOGY, directory)
    done = run_suite(directory, topology=topology, plugins=("tests.report_run.plant_secret",), env=env)
    reports = directory / "reports"
    return done, reports


def _latest(run: tuple[SuiteRun, Path]) -> Path:
    return (run[1] / "latest").resolve()


def _report(run: tuple[SuiteRun, Path]) -> RunReport:
    return RunReport.model_validate_json((_latest(run) / "report.json").read_text())


def test_the_whole_suite_passes_on_a_topology_that_shares_nothing_with_the_walkthrough(
    run: tuple[SuiteRun, Path],
) -> None:
    done, _ = run
    assert set(done.scenarios) == set(scenario_titles()), done.summary()
    assert [t for t, r in done.scenarios.items() if not r.passed] == [], done.summary()
    assert done.returncode == pytest.ExitCode.OK, done.summary()


def test_the_report_directory_holds_every_file_and_latest_points_at_it(run: tuple[SuiteRun, Path]) -> None:
    _, reports = run
    runs = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1
    assert (reports / "latest").is_symlink()
    assert _latest(run) == runs[0].resolve()
    names = {p.relative_to(runs[0]).as_posix() for p in runs[0].rglob("*") if p.is_file()}
    for expected in ("report.html", "report.json", "metrics.json", "junit.xml", "cucumber.json"):
        assert expected in names
    assert "raw/api-objects.yaml" in names
    assert any(n.startswith("raw/router/") for n in names)
    assert any(n.startswith("raw/logs/kube-system_cilium-operator") for n in names)
    assert len([n for n in names if n.startswith("scenarios/")]) == len(scenario_titles())


def test_report_json_says_what_was_tested(run: tuple[SuiteRun, Path]) -> None:
    report = _report(run)
    assert report.verdict is Verdict.CONFORMANT
    assert report.run.target == "lab"
    topology = Path(report.run.topology_path)
    assert report.run.topology_sha256 == hashlib.sha256(topology.read_bytes()).hexdigest()
    assert report.run.versions["k3s"] == "v1.27.3+k3s1"
    assert report.run.versions["cilium"] == "1.13.4"
    assert report.run.versions["router"].startswith("FRRouting")
    assert "cilium-cli" in report.run.versions["installer"], report.run.versions
    assert report.run.git_revision != "unknown"
    assert report.run.duration > 0
    assert [s.stage for s in report.stages] == STAGE_NAMES
    assert {s.outcome for s in report.scenarios} == {Outcome.PASSED}
    assert report.counts["bgp_sessions_established"] == 2  # the topology peers two nodes
    provenance = report.run.provenance
    assert provenance is not None
    assert any(part.startswith("k3s v1.27.3+k3s1") for part in provenance.emulated), provenance
    assert any(part.startswith("Cilium 1.13.4") for part in provenance.emulated), provenance
    assert any("FRR" in part for part in provenance.real), provenance
    assert provenance.defects == []


def test_metrics_json_keeps_its_documented_field_names(run: tuple[SuiteRun, Path]) -> None:
    metrics = json.loads((_latest(run) / "metrics.json").read_text())
    assert set(metrics) == {
        "schema_version", "run_id", "verdict", "target", "started_at", "duration_seconds",
        "versions", "provenance", "counts", "stages", "scenarios",
    }  # fmt: skip
    assert set(metrics["provenance"]) == {"real", "emulated", "shortcuts", "defects"}
    assert metrics["verdict"] == "conformant"
    sessions = metrics["stages"]["peering"]["router configured -> every session established"]
    assert set(sessions) == {"count", "min", "max", "last"}
    assert 0 < sessions["min"] <= sessions["max"]
    for name in ("bgp_sessions_established", "pod_cidr_routes_at_router", "lb_ips_allocated"):
        assert metrics["counts"][name] >= 1, name


def test_junit_validates_against_the_junit_schema_with_one_case_per_scenario(
    run: tuple[SuiteRun, Path],
) -> None:
    junit = _latest(run) / "junit.xml"
    xmlschema.XMLSchema(JUNIT_SCHEMA).validate(junit)
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == len(scenario_titles())


def test_cucumber_json_lists_every_scenario_and_step(run: tuple[SuiteRun, Path]) -> None:
    cucumber = json.loads((_latest(run) / "cucumber.json").read_text())
    scenarios = {element["name"]: element for feature in cucumber for element in feature["elements"]}
    assert set(scenarios) == set(scenario_titles())
    for element in scenarios.values():
        assert element["steps"], element["name"]
        assert all(step["result"]["status"] == "passed" for step in element["steps"])


def test_the_raw_evidence_holds_the_api_objects_router_state_and_cilium_logs(
    run: tuple[SuiteRun, Path],
) -> None:
    raw = _latest(run) / "raw"
    kinds = {doc["kind"] for doc in yaml.safe_load_all((raw / "api-objects.yaml").read_text()) if doc}
    assert {"Node", "Pod", "Service", "CiliumLoadBalancerIPPool", "CiliumBGPPeeringPolicy"} <= kinds
    summary = (raw / "router" / "show_bgp_summary.txt").read_text()
    assert "10.77.0.10" in summary
    assert "10.77.0.21" in summary
    agent_logs = list((raw / "logs").glob("kube-system_cilium-*_cilium-agent.log"))
    assert len(agent_logs) == 3  # one agent per node


def test_no_planted_secret_survives_in_any_written_file(run: tuple[SuiteRun, Path]) -> None:
    directory = _latest(run)
    leaks = []
    redactions = 0
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
        content = path.read_bytes()
        leaks += [
            f"{path.relative_to(directory)}: {secret}"
            for secret in plant_secret.PLANTED
            if secret.encode() in content
        ]
        redactions += content.count(b"<redacted>")
    assert not leaks, leaks
    assert redactions >= 3  # the secrets were there to remove: evidence, ConfigMap, Secret
    assert os.environ.get(plant_secret.PASSWORD_VARIABLE) is None  # the child's environment only


def test_the_runs_html_shows_the_verdict_and_every_scenario_in_chromium(
    run: tuple[SuiteRun, Path], tmp_path: Path
) -> None:
    """The page the suite really wrote, not one rendered for the test, in Debian's chromium."""
    executable = shutil.which("chromium")
    assert executable is not None, CHROMIUM_MISSING
    report = _report(run)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
            _check_report_page(page, _latest(run) / "report.html", tmp_path, report)
        finally:
            browser.close()
