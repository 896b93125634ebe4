"""Verify mode against a lab whose router is FRR, reached through vtysh in its namespace, and which
stands at `peering`: no pool, pod or service yet. The run makes its own, checks through them, and
removes them; the cluster's peering stays as it was."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bgpconform.cli.lab_commands import LabState
from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.ownership import HARNESS_LABEL
from bgpconform.report.model import RunReport, Verdict
from tests.pi.conftest import lab_at, pi_topology
from tests.suite.runner import ROOT, SuiteRun, run_suite, verify_scenario_titles

pytestmark = pytest.mark.lab

FRR_TOPOLOGY = ROOT / "topologies" / "lab.yaml"


def owned_objects(state: LabState) -> list[str]:
    api: Any = new_api_client(state.kubeconfig)
    kube = Kube(api)
    try:
        found = []
        for resource in (Resources.SERVICES, Resources.PODS, Resources.LB_IP_POOLS):
            for obj in kube.items(resource, label_selector=f"{HARNESS_LABEL}=true"):
                found.append(f"{resource.kind}/{obj['metadata']['name']}")
        return sorted(found)
    finally:
        api.close()


def frr_neighbors(state: LabState) -> dict[str, str]:
    argv = ["vtysh", "--vty_socket", f"{state.details['run_directory']}/frr", "-c", "show bgp neighbors json"]
    shown = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=20).stdout)
    return {address: str(data.get("nbrDesc", "")) for address, data in shown.items()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, Path, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("pi-frr")
    with lab_at(FRR_TOPOLOGY, "peering") as state:
        before = {"owned": owned_objects(state), "neighbors": frr_neighbors(state)}
        done = run_suite(
            directory, topology=pi_topology(FRR_TOPOLOGY, state, directory), options=("--target=pi",)
        )
        after = {"owned": owned_objects(state), "neighbors": frr_neighbors(state)}
    return done, directory, {"before": before, "after": after}


def test_verify_mode_passes_with_an_frr_router_over_vtysh(run: tuple[SuiteRun, Path, dict[str, Any]]) -> None:
    done, directory, _ = run
    assert done.returncode == 0, done.summary()
    assert set(done.scenarios) == set(verify_scenario_titles()), done.summary()
    report = RunReport.model_validate_json((directory / "reports" / "latest" / "report.json").read_text())
    assert report.verdict is Verdict.CONFORMANT, report.verdict_reason
    assert report.run.versions["router"].startswith("FRRouting"), report.run.versions
    titles = {item.title for scenario in report.scenarios for item in scenario.evidence}
    assert "router: show bgp summary" in titles, sorted(titles)


def test_the_run_makes_its_own_test_objects_and_removes_them(
    run: tuple[SuiteRun, Path, dict[str, Any]],
) -> None:
    done, _, states = run
    assert states["before"]["owned"] == []  # `lab up --stage peering`: no pool, pod or service yet
    assert states["after"]["owned"] == []
    evidence = done.output
    assert f"{len(verify_scenario_titles())} passed" in evidence, evidence[-2000:]


def test_the_routers_peering_is_left_as_it_was(run: tuple[SuiteRun, Path, dict[str, Any]]) -> None:
    _, _, states = run
    assert states["after"]["neighbors"] == states["before"]["neighbors"]
    assert len(states["before"]["neighbors"]) == 3
