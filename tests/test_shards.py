"""Dealing scenarios out to shards, reading a shard of a plan, and merging the shards' reports:
the parts of `bgpconform suite --shards` that need no lab (tests/suite/test_sharded_run.py runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bgpconform.errors import ConfigError
from bgpconform.report.merge import ShardOutcome, merge
from bgpconform.report.model import (
    Provenance,
    RunInfo,
    RunReport,
    ScenarioResult,
    ShardRun,
    StepResult,
    Verdict,
)
from bgpconform.shards.plan import Alike, Cost, collected, costs_for, costs_from, deal, read_shard, write_plan
from bgpconform.verdict import Outcome

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[1]
LAB_TOPOLOGY = f"--topology={REPO / 'topologies' / 'lab.yaml'}"
NODES = [f"features/test_walkthrough.py::test_{name}" for name in "abcdef"]


def test_the_dearest_scenarios_go_first_each_to_the_shard_it_lengthens_least() -> None:
    own = {NODES[0]: 2.0, NODES[1]: 30.0, NODES[2]: 12.0, NODES[3]: 10.0, NODES[4]: 9.0, NODES[5]: 1.0}
    shards = deal(NODES, 2, {node: Cost(seconds, 0.0) for node, seconds in own.items()})
    # 30 | 12, 10 -> 22 | +9 -> 31 | 30 +2 -> 32 | 31 +1: each shard keeps the collection order.
    assert [s.node_ids for s in shards] == [
        (NODES[0], NODES[1]),
        (NODES[2], NODES[3], NODES[4], NODES[5]),
    ]
    assert [s.expected_seconds for s in shards] == [32.0, 32.0]


def test_a_background_is_paid_once_per_shard_so_its_scenarios_stay_together() -> None:
    """Three short scenarios behind a 10 s Background and one of 12 s with none: the three share a lab
    (10 + 3 s); spread as if each paid its Background, one would join the 12 s scenario (23 s)."""
    costs = {NODES[0]: Cost(12.0, 0.0), **{node: Cost(1.0, 10.0) for node in NODES[1:4]}}
    shards = deal(NODES[:4], 2, costs)
    assert [s.node_ids for s in shards] == [(NODES[0],), (NODES[1], NODES[2], NODES[3])]
    assert [s.expected_seconds for s in shards] == [12.0, 13.0]


def test_scenarios_without_a_cost_count_as_the_median_and_no_shard_is_empty() -> None:
    shards = deal(NODES[:3], 5, {NODES[0]: Cost(4.0, 0.0)})
    assert [len(s.node_ids) for s in shards] == [1, 1, 1]
    assert sorted(s.expected_seconds for s in shards) == [4.0, 4.0, 4.0]
    even = deal(NODES, 3, {})
    assert [len(s.node_ids) for s in even] == [2, 2, 2]
    with pytest.raises(ConfigError, match="--shards 0"):
        deal(NODES, 0, {})


def test_costs_are_read_from_a_report_own_steps_apart_from_the_background(tmp_path: Path) -> None:
    report = _report(0, Outcome.PASSED, {})
    scenario = report.scenarios[0].model_copy(
        update={
            "duration": 9.0,
            "steps": [
                StepResult(keyword="Given", name="a stage", status="passed", duration=6.0, background=True),
                StepResult(keyword="When", name="a fault", status="passed", duration=3.0),
            ],
        }
    )
    sibling = scenario.model_copy(update={"node_id": NODES[1], "duration": 2.0, "steps": []})
    path = tmp_path / "report.json"
    path.write_text(report.model_copy(update={"scenarios": [scenario, sibling]}).model_dump_json())
    assert costs_from(path) == {NODES[0]: Cost(3.0, 6.0), NODES[1]: Cost(2.0, 6.0)}  # one feature: one setup
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"bad\.json: not a readable report\.json"):
        costs_from(tmp_path / "bad.json")


def _run_dir(reports: Path, name: str, seconds: float, shortcuts: list[str]) -> None:
    report = _report(0, Outcome.PASSED, {})
    report.scenarios[0].duration = seconds
    assert report.run.provenance is not None
    report.run.provenance.shortcuts.extend(f"{name}: what it shortens" for name in shortcuts)
    (reports / name).mkdir(parents=True)
    (reports / name / "report.json").write_text(report.model_dump_json())


def test_a_reports_directory_deals_by_its_newest_one_lab_runs_alike(tmp_path: Path) -> None:
    """One run's durations are noisy, and a run with other timers took other times: the deal takes
    each scenario's median own time over the newest one-lab runs on the same topology with the same
    shortcuts."""
    alike = Alike("0" * 64, frozenset({"router-dials"}))
    for name, seconds, shortcuts in (
        ("20261201-100000-aaaa", 50.0, ["router-dials"]),  # older than the newest five alike
        ("20261202-100000-aaaa", 9.0, ["router-dials"]),
        ("20261202-110000-aaaa", 3.0, ["router-dials"]),
        ("20261202-120000-aaaa", 4.0, ["router-dials"]),
        ("20261202-130000-aaaa", 5.0, ["router-dials"]),
        ("20261202-140000-aaaa", 2.0, ["router-dials"]),
        ("20261203-100000-aaaa", 99.0, []),  # the newest: faithful timers
    ):
        _run_dir(tmp_path, name, seconds, shortcuts)
    (tmp_path / "latest").symlink_to("20261203-100000-aaaa")
    costs, source = costs_for(tmp_path, alike)
    assert costs == {NODES[0]: Cost(4.0, 0.0)}  # the median of 9, 3, 4, 5, 2
    assert source == f"durations of the 5 newest one-lab runs alike in {tmp_path}"
    faithful = Alike("0" * 64, frozenset())
    assert costs_for(tmp_path, faithful)[0] == {NODES[0]: Cost(99.0, 0.0)}
    other_topology = Alike("1" * 64, frozenset())
    costs, source = costs_for(tmp_path, other_topology)
    assert costs == {NODES[0]: Cost(99.0, 0.0)}  # none alike: the latest run, said to be unlike
    assert "a run with another topology or shortcuts" in source
    assert costs_for(tmp_path / "20261202-100000-aaaa" / "report.json", other_topology)[0] == {
        NODES[0]: Cost(9.0, 0.0)
    }  # a file is taken as it is
    sharded = _report(0, Outcome.PASSED, {})
    sharded.run.shards.append(
        ShardRun(number=1, command="pytest", returncode=0, seconds=1.0, scenarios=1, report=None)
    )
    (tmp_path / "20261204-100000-aaaa").mkdir()
    (tmp_path / "20261204-100000-aaaa" / "report.json").write_text(sharded.model_dump_json())
    costs, _ = costs_for(tmp_path, faithful)  # newer and alike but sharded: its Backgrounds say nothing
    assert costs == {NODES[0]: Cost(99.0, 0.0)}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert costs_for(empty, alike) == ({}, "every scenario counted the same")


def test_a_shard_is_read_from_its_plan_and_bad_ones_name_the_fix(tmp_path: Path) -> None:
    plan = tmp_path / "shards.json"
    write_plan(deal(NODES, 2, {}), plan)
    path, wanted = read_shard(f"{plan}:2")
    assert path == plan
    assert wanted == frozenset(json.loads(plan.read_text())["shards"][1])
    for given, message in (
        (f"{plan}:3", "the plan has shards 1 to 2"),
        (f"{plan}:x", "not FILE:N"),
        (f"{tmp_path / 'missing.json'}:1", "is not a shard plan"),
    ):
        with pytest.raises(ConfigError, match=message) as caught:
            read_shard(given)
        assert "fix: give --shard=PLAN.json:N" in str(caught.value)


def _report(
    number: int, outcome: Outcome, versions: dict[str, str], *, harness_error: str | None = None
) -> RunReport:
    node_id = NODES[number]
    return RunReport(
        run=RunInfo(
            run_id=f"shard-run-{number}",
            target="lab",
            topology_path="topologies/lab.yaml",
            topology_sha256="0" * 64,
            versions=versions,
            harness_version="0",
            git_revision="unknown",
            started_at=datetime(2026, 12, 5, tzinfo=UTC),
            duration=1.0,
            user="root",
            host="lab",
            command="pytest",
            provenance=Provenance(real=["FRR"], emulated=["Cilium 1.13.4: agent"]),
        ),
        verdict=Verdict.CONFORMANT,
        verdict_reason="",
        scenarios=[
            ScenarioResult(feature="f", name=f"s{number}", node_id=node_id, outcome=outcome, duration=1.0)
        ],
        stages=[],
        counts={},
        harness_error=harness_error,
    )


def _outcome(number: int, report: RunReport | None, tmp_path: Path) -> ShardOutcome:
    directory = tmp_path / "merged" / "shards" / f"shard-{number}" / "run" if report else None
    return ShardOutcome(
        number,
        f"pytest --shard=p:{number}",
        0 if report else 3,
        2.0,
        (NODES[number],),
        report,
        directory,
        tmp_path / f"{number}.log",
    )


def _merged(shards: list[ShardOutcome], tmp_path: Path, order: tuple[str, ...] = ()) -> RunReport:
    return merge(
        shards,
        merged_directory=tmp_path / "merged",
        run_id="merged",
        started_at=datetime(2026, 12, 5, tzinfo=UTC),
        duration=3.0,
        command="bgpconform suite --shards 2",
        order=order,
    )


def test_the_merged_verdict_is_over_every_shards_scenarios_in_plan_order(tmp_path: Path) -> None:
    versions = {"k3s": "v1.27.3+k3s1", "lab seed": "7"}
    merged = _merged(
        [
            _outcome(1, _report(1, Outcome.NON_CONFORMANT, {**versions, "cilium": "1.13.4"}), tmp_path),
            _outcome(0, _report(0, Outcome.PASSED, versions), tmp_path),
        ],
        tmp_path,
    )
    assert merged.verdict is Verdict.NON_CONFORMANT
    assert [s.node_id for s in merged.scenarios] == [NODES[1], NODES[0]]  # no order given: shard by shard
    assert merged.run.versions == {
        **versions,
        "cilium": "1.13.4",
    }  # a shard that installed no Cilium read none
    assert merged.counts["scenarios_non_conformant"] == 1
    assert [(s.number, s.report) for s in merged.run.shards] == [
        (1, "shards/shard-1/run"),
        (0, "shards/shard-0/run"),
    ]
    assert merged.run.provenance is not None
    assert merged.run.provenance.emulated == ["Cilium 1.13.4: agent"]
    assert merged.harness_error is None


def test_given_the_collection_order_the_merged_scenarios_follow_it_as_one_run_lists_them(
    tmp_path: Path,
) -> None:
    shards = [
        _outcome(1, _report(1, Outcome.PASSED, {}), tmp_path),
        _outcome(0, _report(0, Outcome.PASSED, {}), tmp_path),
    ]
    merged = _merged(shards, tmp_path, order=tuple(NODES))
    assert [s.node_id for s in merged.scenarios] == [NODES[0], NODES[1]]


def test_what_cannot_merge_is_a_harness_error_never_conformant(tmp_path: Path) -> None:
    missing = _merged(
        [_outcome(0, _report(0, Outcome.PASSED, {}), tmp_path), _outcome(1, None, tmp_path)], tmp_path
    )
    assert missing.verdict is Verdict.NOT_ASSESSED
    assert "shard 1 wrote no report (exit 3" in (missing.harness_error or "")
    differing = _merged(
        [
            _outcome(0, _report(0, Outcome.PASSED, {"cilium": "1.13.4"}), tmp_path),
            _outcome(1, _report(1, Outcome.PASSED, {"cilium": "1.14.0"}), tmp_path),
        ],
        tmp_path,
    )
    assert differing.verdict is Verdict.NOT_ASSESSED
    assert "differ in cilium (shard 0: 1.13.4; shard 1: 1.14.0)" in (differing.harness_error or "")
    shortened = _report(1, Outcome.PASSED, {})
    assert shortened.run.provenance is not None
    shortened.run.provenance.shortcuts.append("router-dials: the nodes' BGP speakers listen on port 179")
    unlike = _merged(
        [_outcome(0, _report(0, Outcome.PASSED, {}), tmp_path), _outcome(1, shortened, tmp_path)], tmp_path
    )
    assert unlike.verdict is Verdict.NOT_ASSESSED  # the merged banner would not say shard 1's shortcut
    assert "shard 1 ran unlike shard 0 in provenance" in (unlike.harness_error or "")
    other_topology = _report(1, Outcome.PASSED, {})
    other_topology.run.topology_sha256 = "1" * 64
    assert "shard 1 ran unlike shard 0 in topology_sha256" in (
        _merged(
            [_outcome(0, _report(0, Outcome.PASSED, {}), tmp_path), _outcome(1, other_topology, tmp_path)],
            tmp_path,
        ).harness_error
        or ""
    )
    stopped = _merged(
        [_outcome(0, _report(0, Outcome.PASSED, {}, harness_error="the lab did not start"), tmp_path)],
        tmp_path,
    )
    assert stopped.verdict is Verdict.NOT_ASSESSED
    assert stopped.harness_error == "shard 0: the lab did not start"


def test_a_planned_scenario_no_shard_ran_is_said(tmp_path: Path) -> None:
    shard = _outcome(0, _report(0, Outcome.PASSED, {}), tmp_path)
    planned = ShardOutcome(
        0, shard.command, 0, 2.0, (NODES[0], NODES[5]), shard.report, shard.directory, shard.log
    )
    merged = _merged([planned], tmp_path)
    assert merged.verdict is Verdict.NOT_ASSESSED
    assert f"shard 0 did not run 1 planned: {NODES[5]}" in (merged.harness_error or "")


def test_shard_is_refused_on_a_target_that_is_one_system(pytester: pytest.Pytester) -> None:
    plan = pytester.path / "shards.json"
    write_plan(deal(NODES, 1, {}), plan)
    result = pytester.runpytest_subprocess("--target=pi", f"--shard={plan}:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--shard splits the suite over labs of its own; --target=pi is one system*"]
    )


def test_the_suite_command_refuses_a_real_target_and_options_it_sets_itself(tmp_path: Path) -> None:
    for extra, message in (
        (["--target=pi"], "--target=pi: shards each start a lab of their own"),
        (["--target", "k3d"], "--target=k3d: shards each start a lab of their own"),
        ([f"--reports-dir={tmp_path}"], "--reports-dir is set per shard by bgpconform suite"),
        ([f"--junitxml={tmp_path}/junit.xml"], "--junitxml: every shard would write that one file"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bgpconform.cli", "suite", "--shards", "2", "--", *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["suite", "--shards", "2"], ["matrix", "--versions", "1.13"]])
def test_started_inside_the_project_or_outside_it_the_command_says_where_to_run(
    command: list[str], tmp_path: Path
) -> None:
    """pytest's `testpaths` and the default topology hold only in the project's directory: from
    features/ it would collect something else, so it is told where to run instead."""
    for cwd, message in (
        (REPO / "features", f"is inside the project at {REPO}; fix: cd {REPO} and run it there"),
        (tmp_path, "holds no features/ and topologies/, nor does any directory above it"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bgpconform.cli", *command],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (REPO / "features" / "reports").exists()
    assert list(tmp_path.iterdir()) == []


def test_the_plan_holds_what_the_shards_will_run_not_every_scenario_of_the_features() -> None:
    """A listing pytest shows every scenario unless it reads a topology; the plan must not hold one
    that every shard then leaves out by its version rule (it would be reported as never run)."""
    planned = collected(REPO, ["--lab-shortcut=router-dials", LAB_TOPOLOGY])
    assert collected(REPO, ["-q", LAB_TOPOLOGY]) == planned  # the terminal's form aside
    assert collected(REPO, ["-v", LAB_TOPOLOGY]) == planned
    names = [node.rsplit("::", 1)[1] for node in planned]
    assert "test_agents_wait_for_the_bgp_resources_until_the_operator_restarts" in names  # cilium-cli v0.15
    assert (
        "test_the_configuration_change_restarts_the_operator_too_so_the_bgp_resources_come_at_once"
        not in names
    )
    on_bgpv2 = collected(REPO, ["--topology=topologies/lab-bgpv2.yaml"])
    assert "test_every_labelled_nodes_bgp_node_config_reports_its_session_with_the_router" in {
        node.rsplit("::", 1)[1] for node in on_bgpv2
    }
