"""`bgpconform suite --shards 2` on the lab, as a user runs it: two labs side by side, one report
that says so, the shards' own reports kept under it, and a defect in one shard's scenario making the
merged run non-conformant."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bgpconform.lab.runs import list_namespaces
from bgpconform.report.model import RunReport, Verdict
from bgpconform.waiting import wait_for
from tests.suite.runner import ROOT, SUITE_DEADLINE, TEARDOWN_DEADLINE, end_group, group_alive

pytestmark = pytest.mark.lab

CNI = (
    "features/test_walkthrough.py::test_without_a_cni_every_node_waits_and_the_clusters_own_pods_stay_pending"
)
READY = (
    "features/test_walkthrough.py::test_installing_cilium_makes_every_node_ready_and_runs_the_pending_pods"
)
SHORTCUTS = ("--lab-shortcut=short-bgp-timers", "--lab-shortcut=router-dials")


def _sharded(out: Path, *pytest_args: str) -> tuple[subprocess.CompletedProcess[str], RunReport, Path]:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bgpconform.cli", "suite", "--shards", "2", "--out", str(out)),
            *("--", "-k", "without_a_cni or installing_cilium_makes", *SHORTCUTS, *pytest_args),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SUITE_DEADLINE,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    latest = (out / "latest").resolve()
    assert (latest / "report.json").is_file(), done.stdout + done.stderr
    return done, RunReport.model_validate_json((latest / "report.json").read_text()), latest


def test_two_labs_side_by_side_make_one_report_that_says_so(tmp_path: Path) -> None:
    done, report, directory = _sharded(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert report.verdict is Verdict.CONFORMANT, report.verdict_reason
    assert [s.node_id for s in report.scenarios] == [CNI, READY]  # the collection's order, as one run
    assert [(s.number, s.scenarios, s.returncode) for s in report.run.shards] == [(1, 1, 0), (2, 1, 0)]
    seeds = set()
    for shard in report.run.shards:
        assert shard.report is not None
        own = RunReport.model_validate_json((directory / shard.report / "report.json").read_text())
        assert own.verdict is Verdict.CONFORMANT
        seeds.add(own.run.versions["lab seed"])
        assert (directory / shard.report / "raw").is_dir()  # each lab's own evidence, kept
        assert f"--shard={directory / 'shards.json'}:{shard.number}" in shard.command
    assert len(seeds) == 1  # one seed for every lab: the merged run replays as one
    assert report.run.versions["lab seed"] in seeds
    assert report.run.versions["cilium"] == "1.13.4"  # read by the shard that installed Cilium
    assert report.run.provenance is not None
    assert [s.split(":")[0] for s in report.run.provenance.shortcuts] == ["router-dials", "short-bgp-timers"]
    cases = ET.parse(directory / "junit.xml").getroot().findall("testsuite/testcase")
    assert sorted(case.get("name", "") for case in cases) == sorted(
        n.rsplit("::", 1)[1] for n in (CNI, READY)
    )
    features = json.loads((directory / "cucumber.json").read_text())
    assert sum(len(feature["elements"]) for feature in features) == 2
    page = (directory / "report.html").read_text()
    assert "Run as 2 shards side by side, each on a lab of its own" in page
    assert "suite verdict: conformant" in done.stdout


def test_a_defect_in_one_shards_scenario_makes_the_merged_run_non_conformant(tmp_path: Path) -> None:
    """nodes-ready-without-cni (a leftover CNI config): the scenario without a CNI fails its Then step
    in its own lab; the other shard's scenario passes; the merged verdict is the run's."""
    done, report, directory = _sharded(tmp_path, "--lab-defect=nodes-ready-without-cni")
    assert done.returncode == 1, done.stdout + done.stderr
    assert report.verdict is Verdict.NON_CONFORMANT
    outcomes = {s.node_id: s.outcome.value for s in report.scenarios}
    assert outcomes == {CNI: "non-conformant", READY: "passed"}
    failed = next(s for s in report.scenarios if s.node_id == CNI)
    assert failed.failure is not None
    assert failed.failure.step.endswith("every node is NotReady because the CNI plugin is not initialized")
    failures = ET.parse(directory / "junit.xml").getroot().findall("testsuite/testcase/failure")
    assert [f.get("type") for f in failures] == ["non-conformant"]
    assert "suite verdict: non-conformant" in done.stdout


@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c-to-the-group", "sigterm-to-the-command"])
def test_a_stop_reaches_every_shard_which_removes_its_lab_and_the_run_still_merges(
    tmp_path: Path, to_group: bool
) -> None:
    """A terminal's Ctrl-C reaches the command and every shard (one process group); a CI job that
    cancels sends SIGTERM to the command alone, which passes it on. Either way each shard takes its
    lab down and writes what it saw, and the merged report says the run was interrupted."""
    before = set(list_namespaces())
    command = [
        *(sys.executable, "-m", "bgpconform.cli", "suite", "--shards", "2", "--out", str(tmp_path)),
        *("--", "-k", "goes_away or router_restart_brings", *SHORTCUTS),
    ]
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, as a terminal gives a command: the Ctrl-C goes to it
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        wait_for(
            lambda: {ns.split("-")[1] for ns in set(list_namespaces()) - before if ns.startswith("bgpc-")},
            lambda run_ids: len(run_ids) == 2,
            expected="two labs started, one per shard",
            timeout=120,
        )
        if to_group:
            os.killpg(child.pid, signal.SIGINT)
        else:
            child.send_signal(signal.SIGTERM)
        output, _ = child.communicate(timeout=TEARDOWN_DEADLINE)
    finally:
        end_group(child)
    assert child.returncode == 130, output
    report = RunReport.model_validate_json((tmp_path / "latest" / "report.json").read_text())
    assert report.verdict is Verdict.NOT_ASSESSED, output
    assert "the run was interrupted before it finished" in (report.harness_error or ""), output
    assert len(report.run.shards) == 2
    assert not group_alive(child.pid), output  # every shard ended before the command did
    # and took its lab down, though the stop came while the wires were being built (the group's Ctrl-C
    # reaches each shard twice: the terminal's and the command's, passed on)
    assert not {ns for ns in set(list_namespaces()) - before if ns.startswith("bgpc-")}, output
