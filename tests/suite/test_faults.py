"""A broken stage fails the right scenario, and every later one, with a message that says what was
expected and seen.

Each test runs the whole suite on a lab broken one way (a lab defect, or one of the two outside
faults of `tests.suite.faults`) and checks every scenario's fate: the ones before the broken stage
pass, the first one that depends on it fails at the step that asserts it, classified as
non-conformance, and the later ones fail in their Background while it brings the cluster to that stage.
"""

from __future__ import annotations

import ast
import html
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml

from bgpconform.report.model import RunReport, Verdict
from bgpconform.topology import load_topology
from bgpconform.verdict import Outcome
from tests.suite.faults import FAULT_VARIABLE, LAB_FAILURE
from tests.suite.runner import ROOT, ScenarioResult, SuiteRun, run_suite, scenario_titles, topology_with
from tests.suite.side_by_side import SideBySide, selected_tests, width

pytestmark = pytest.mark.lab

LAB = ROOT / "topologies" / "lab.yaml"
CNI = [
    "Without a CNI every node waits and the cluster's own pods stay pending",
    "Installing Cilium makes every node Ready and runs the pending pods",
]
BGP = ["Agents wait for the BGP resources until the operator restarts"]
PEERING = ["Sessions are active until the router knows the nodes, then established"]
ALLOCATES = "A LoadBalancer service gets an address from the pool, announced by every peering node"
OVERLAP = "An overlapping pool is marked conflicting and allocates nothing"
IMPOSSIBLE = "A service asking for an address no pool has is told why"
EDGES = "Before Cilium 1.16 a pool never hands out a CIDR's first or last address"
REACH_ONE = "The outside client gets the nginx page through the LB IP"
REACH_MANY = "Requests from many source ports spread over the peering nodes"


def _latest(tmp_path: Path) -> Path:
    return tmp_path / "reports" / "latest"


def _report(tmp_path: Path) -> RunReport:
    return RunReport.model_validate_json((_latest(tmp_path) / "report.json").read_text())


def _html_text(tmp_path: Path) -> str:
    return (_latest(tmp_path) / "report.html").read_text()


def _faulty_run(tmp_path: Path, fault: str | None, topology: Path, *, defect: str | None = None) -> SuiteRun:
    env = {FAULT_VARIABLE: fault} if fault else {}
    plugins = ("tests.suite.faults",) if fault else ()
    shortcuts = ("--lab-shortcut=short-bgp-timers", "--lab-shortcut=router-dials")
    options = (*shortcuts, *((f"--lab-defect={defect}",) if defect else ()))
    run = run_suite(tmp_path, topology=topology, plugins=plugins, env=env, options=options)
    assert set(run.scenarios) == set(scenario_titles()), run.summary()
    return run


def _passed(run: SuiteRun, titles: list[str]) -> None:
    failed = [title for title in titles if not run.scenarios[title].passed]
    assert not failed, f"expected to pass: {failed}\n{run.summary()}"


def _failed_at(run: SuiteRun, title: str, step: str, *phrases: str) -> ScenarioResult:
    result = run.scenarios[title]
    failed = result.failed_step
    assert failed is not None, f"{title!r} should fail\n{run.summary()}"
    assert failed.name == step, f"{title!r} failed at {failed.name!r}, not {step!r}\n{run.summary()}"
    assert result.outcome == "non-conformant", run.summary()
    for phrase in ("expected:", "observed:", *phrases):
        assert phrase in failed.error, f"{phrase!r} missing from the failure message:\n{failed.error}"
    return result


def _failed_in_background(run: SuiteRun, titles: list[str], phrase: str) -> None:
    """Scenarios after the broken stage fail while their Background brings the deployment to it."""
    for title in titles:
        failed = run.scenarios[title].failed_step
        assert failed is not None, f"{title!r} should fail\n{run.summary()}"
        assert failed.keyword == "Given", f"{title!r} failed at {failed.name!r}\n{run.summary()}"
        assert phrase in failed.error, f"{phrase!r} missing from:\n{failed.error}"


Runs = SideBySide[tuple[SuiteRun, Path]]


def _in(directory: Path, make: Callable[[Path], SuiteRun]) -> tuple[SuiteRun, Path]:
    return make(directory), directory


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Each broken lab's whole-suite run, side by side (`tests.suite.side_by_side`), for the tests
    the session selected; keyed by the test that judges it."""
    makers: dict[str, Callable[[Path], SuiteRun]] = {
        "test_sessions_that_never_establish_fail_peering_and_every_later_stage": _sessions_never_establish,
        "test_an_operator_that_registers_no_policy_resource_fails_the_bgp_control_plane": (
            _operator_registers_nothing
        ),
        "test_a_pool_that_cannot_allocate_fails_allocation_and_says_what_the_service_shows": (
            _pool_cannot_allocate
        ),
        "test_a_stopped_nginx_fails_reachability_and_shows_the_client_error": _nginx_stopped,
        "test_a_lab_that_cannot_start_is_not_assessed_never_non_conformant": _lab_cannot_start,
    }
    chosen = [name for name in selected_tests(request.session) if name in makers]
    started = SideBySide(
        [(name, partial(_in, tmp_path_factory.mktemp("faulty"), makers[name])) for name in chosen], width()
    )
    yield started
    started.close()


def _sessions_never_establish(tmp_path: Path) -> SuiteRun:
    topology = topology_with(LAB, tmp_path, sessions_established=8)
    return _faulty_run(tmp_path, None, topology, defect="agent-dials-wrong-peer-asn")


def test_sessions_that_never_establish_fail_peering_and_every_later_stage(runs: Runs) -> None:
    run, tmp_path = runs.result("test_sessions_that_never_establish_fail_peering_and_every_later_stage")
    _passed(run, CNI + BGP)
    _failed_at(
        run,
        PEERING[0],
        "every labelled node's session with the router is established on both sides",
        "established",
    )
    _failed_in_background(run, [ALLOCATES, OVERLAP, IMPOSSIBLE, EDGES, REACH_ONE, REACH_MANY], "established")
    assert run.returncode == pytest.ExitCode.TESTS_FAILED

    report = _report(tmp_path)
    assert report.verdict is Verdict.NON_CONFORMANT
    failure = next(s.failure for s in report.scenarios if s.name == PEERING[0])
    assert failure is not None
    assert failure.expected is not None
    assert "established" in failure.expected
    assert failure.observed is not None
    # GoBGP alternates between active (waiting to connect) and idle (after the router hung up).
    workers = [n.name for n in load_topology(LAB).bgp_nodes]
    observed = ast.literal_eval(failure.observed)
    assert {observed[name] for name in workers} <= {"active", "idle", "connect"}, failure.observed
    page = html.unescape(_html_text(tmp_path))
    assert "non-conformant" in page
    assert failure.expected in page
    assert failure.observed in page
    assert "router: show running-config" in page  # the router dump taken at the failure


def _operator_registers_nothing(tmp_path: Path) -> SuiteRun:
    topology = topology_with(LAB, tmp_path, crd_registered=6, pods_running=20)
    return _faulty_run(tmp_path, None, topology, defect="operator-registers-no-bgp-crd")


def test_an_operator_that_registers_no_policy_resource_fails_the_bgp_control_plane(runs: Runs) -> None:
    run, _ = runs.result("test_an_operator_that_registers_no_policy_resource_fails_the_bgp_control_plane")
    _passed(run, CNI)
    _failed_at(
        run,
        BGP[0],
        "the operator logs that it created the BGP configuration resources",
        "Creating CRD (CustomResourceDefinition)",
    )
    _failed_in_background(
        run, [*PEERING, ALLOCATES, REACH_ONE], "ciliumbgppeeringpolicies (cilium.io/v2alpha1)"
    )


def _pool_cannot_allocate(tmp_path: Path) -> SuiteRun:
    data = yaml.safe_load(LAB.read_text())
    first = data["lb_pools"][0]["cidrs"][0]
    data["lb_pools"][0]["cidrs"] = [first.split("/")[0].rsplit(".", 1)[0] + ".7/32"]
    data["waits"]["ip_allocated"] = 4
    topology = tmp_path / "lab-slash32.yaml"
    topology.write_text(yaml.safe_dump(data, sort_keys=False))
    return _faulty_run(tmp_path, None, topology)


def test_a_pool_that_cannot_allocate_fails_allocation_and_says_what_the_service_shows(runs: Runs) -> None:
    run, _ = runs.result("test_a_pool_that_cannot_allocate_fails_allocation_and_says_what_the_service_shows")
    _passed(run, CNI + BGP + PEERING + [IMPOSSIBLE, EDGES])  # the /30 beside it is a pool of its own
    _failed_at(
        run,
        ALLOCATES,
        "the service gets an external IP inside the first pool",
        "external IP",
    )
    _failed_at(run, OVERLAP, "a new LoadBalancer service still gets an address from the first pool")
    _failed_in_background(run, [REACH_ONE, REACH_MANY], "external IP")


def _nginx_stopped(tmp_path: Path) -> SuiteRun:
    return _faulty_run(tmp_path, "nginx-stopped", topology_with(LAB, tmp_path, http=1))


def test_a_stopped_nginx_fails_reachability_and_shows_the_client_error(runs: Runs) -> None:
    run, _ = runs.result("test_a_stopped_nginx_fails_reachability_and_shows_the_client_error")
    _passed(run, CNI + BGP + PEERING + [ALLOCATES, OVERLAP, IMPOSSIBLE, EDGES])
    _failed_at(run, REACH_ONE, "it gets the nginx welcome page", "Welcome to nginx!", "no answer")
    _failed_at(run, REACH_MANY, "every request gets the nginx welcome page")


def _lab_cannot_start(tmp_path: Path) -> SuiteRun:
    return _faulty_run(tmp_path, "lab-cannot-start", LAB)


def test_a_lab_that_cannot_start_is_not_assessed_never_non_conformant(runs: Runs) -> None:
    run, tmp_path = runs.result("test_a_lab_that_cannot_start_is_not_assessed_never_non_conformant")
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.summary()
    report = _report(tmp_path)
    assert report.verdict is Verdict.NOT_ASSESSED
    assert {s.outcome for s in report.scenarios} == {Outcome.NOT_ASSESSED}
    assert report.harness_error is not None
    assert LAB_FAILURE in report.harness_error
    junit = ET.parse(_latest(tmp_path) / "junit.xml").getroot()
    assert not list(junit.iter("failure"))
    errors = list(junit.iter("error"))
    assert len(errors) == len(scenario_titles())
    assert {e.get("type") for e in errors} == {"not-assessed"}
    page = html.unescape(_html_text(tmp_path))
    assert "not-assessed" in page or "not assessed" in page.lower()
    assert LAB_FAILURE in page
