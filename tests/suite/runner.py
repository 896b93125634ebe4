"""Run the conformance suite in a child pytest and read back what each scenario and step did.

The suite is the product's main job, so its own tests run it the way a user does (a separate pytest
process with its own lab) and read its results from the files it writes: pytest-bdd's cucumber JSON
for steps and their messages, the run's report.json for the verdict class of each scenario.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pytest_bdd.feature import get_features
from pytest_bdd.scenario import make_python_name

from bgpconform.applicability import applicability
from bgpconform.topology import load_topology
from bgpconform.waiting import WaitTimeout, wait_for

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "features"
WALKTHROUGH_MODULE = "features/test_walkthrough.py"
SUITE_DEADLINE = 600.0  # seconds; far above any healthy run, so only a hang hits it
TEARDOWN_DEADLINE = 60.0


@dataclass(frozen=True)
class StepResult:
    keyword: str
    name: str
    status: str
    error: str


@dataclass(frozen=True)
class ScenarioResult:
    feature: str
    name: str
    steps: tuple[StepResult, ...]
    outcome: str

    @property
    def passed(self) -> bool:
        return all(step.status == "passed" for step in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((step for step in self.steps if step.status == "failed"), None)


@dataclass(frozen=True)
class SuiteRun:
    returncode: int
    scenarios: dict[str, ScenarioResult]
    output: str

    def summary(self) -> str:
        """What a failed expectation shows: each scenario's result and the end of the run's output."""
        lines = [f"exit code {self.returncode}"]
        for title, result in self.scenarios.items():
            failed = result.failed_step
            where = f" at '{failed.keyword} {failed.name}'" if failed else ""
            lines.append(f"  {result.outcome:<15} {title}{where}")
        return "\n".join(lines) + "\n--- output (end) ---\n" + self.output[-4000:]


LAB_TOPOLOGY = ROOT / "topologies" / "lab.yaml"
BGPV2_TOPOLOGY = ROOT / "topologies" / "lab-bgpv2.yaml"
UPGRADE_TOPOLOGY = ROOT / "topologies" / "lab-upgrade.yaml"
MIGRATE_TOPOLOGY = ROOT / "topologies" / "lab-migrate.yaml"
SERVICES_TOPOLOGY = ROOT / "topologies" / "lab-services.yaml"  # the scale check at the tests' size


def _tags(feature: Any, scenario: Any) -> set[str]:
    rule_tags = scenario.rule.tags if scenario.rule is not None else set()
    return set(scenario.tags | feature.tags | rule_tags)


def _applies(feature: Any, scenario: Any, topology: Path) -> bool:
    loaded = load_topology(topology)
    cluster = loaded.cluster
    upgrade_to = str(cluster.upgrade_to) if cluster.upgrade_to is not None else None
    verdict = applicability(
        _tags(feature, scenario),
        str(cluster.cilium_version),
        loaded.bgp_api,
        str(cluster.cilium_cli_version),
        upgrade_to,
        scale=loaded.scale.services if loaded.scale is not None else None,
    )
    return verdict is None or verdict.applies


def scenario_titles(topology: Path | None = LAB_TOPOLOGY) -> list[str]:
    """The scenarios of the walkthrough's features a run on `topology` holds its release to (version
    rules, `bgpconform.applicability`), in file order; every one when `topology` is None."""
    return [
        title
        for feature in _features()
        for title, scenario in feature.scenarios.items()
        if topology is None or _applies(feature, scenario, topology)
    ]


def topology_for(title: str) -> Path:
    """A shipped lab topology whose release the scenario applies to: the walkthrough's, else 1.19's,
    else the upgrade's (1.17 to 1.19), else the migration's (1.18 on the v1 policy), else the scale
    check's at the tests' size (40 services)."""
    for feature in _features():
        for name, scenario in feature.scenarios.items():
            if name == title:
                shipped = (
                    LAB_TOPOLOGY,
                    BGPV2_TOPOLOGY,
                    UPGRADE_TOPOLOGY,
                    MIGRATE_TOPOLOGY,
                    SERVICES_TOPOLOGY,
                )
                return next(t for t in shipped if _applies(feature, scenario, t))
    raise LookupError(title)


def verify_scenario_titles(topology: Path = LAB_TOPOLOGY) -> list[str]:
    """The scenarios verify mode keeps: those not tagged @destructive on themselves, their rule or feature,
    of the ones `topology`'s release applies."""
    kept = []
    for feature in _features():
        for title, scenario in feature.scenarios.items():
            if "destructive" not in _tags(feature, scenario) and _applies(feature, scenario, topology):
                kept.append(title)
    return kept


def first_scenario_stating(step_name: str) -> str:
    """The first scenario (file order) whose own steps, not its Background's, state `step_name` after
    a Then: the first place a broken promise of that name can be caught."""
    for feature in _features():
        for title, scenario in feature.scenarios.items():
            kinds = [step.type for step in scenario.steps if step.background is None]
            names = [step.name for step in scenario.steps if step.background is None]
            if any(kind == "then" and name == step_name for kind, name in zip(kinds, names, strict=True)):
                return str(title)
    raise LookupError(f"no scenario states {step_name!r} as a Then step")


def then_steps() -> list[str]:
    """Every distinct Then step of the features, in file order."""
    found: list[str] = []
    for feature in _features():
        for scenario in feature.scenarios.values():
            for step in scenario.steps:
                if step.type == "then" and step.name not in found:
                    found.append(step.name)
    return found


def node_id(title: str) -> str:
    return f"{WALKTHROUGH_MODULE}::test_{make_python_name(title)}"


def _features() -> list[Any]:
    return sorted(get_features([str(FEATURES)]), key=lambda f: str(f.filename))


def topology_with(base: Path, directory: Path, **waits: float) -> Path:
    """A copy of a topology file with some waits shortened, so a run that must fail fails quickly."""
    data = yaml.safe_load(base.read_text())
    data.setdefault("waits", {}).update(waits)
    written = directory / f"{base.stem}-short-waits.yaml"
    written.write_text(yaml.safe_dump(data, sort_keys=False))
    return written


def run_suite(
    directory: Path,
    *selection: str,
    topology: Path | None = None,
    plugins: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
) -> SuiteRun:
    """`pytest` on the features in a child process; `selection` is node ids (all scenarios if empty)."""
    cucumber = directory / "cucumber.json"
    junit = directory / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--rootdir={ROOT}"]
    argv += [f"--cucumberjson={cucumber}", f"--junitxml={junit}", f"--reports-dir={directory / 'reports'}"]
    for plugin in plugins:
        argv += ["-p", plugin]
    if topology is not None:
        argv.append(f"--topology={topology}")
    argv += list(options)
    argv += list(selection) or [WALKTHROUGH_MODULE]
    # The checkout's steps, fixtures and library, whichever checkout the installed package points at.
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]), **(env or {})}
    returncode, output = _run_with_deadline(argv, child_env)
    report = directory / "reports" / "latest" / "report.json"
    outcomes = _report_outcomes(report) if report.exists() else {}
    scenarios = _cucumber_scenarios(cucumber, outcomes) if cucumber.exists() else {}
    return SuiteRun(returncode, scenarios, output)


def _run_with_deadline(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """At the deadline the child gets SIGTERM first, which the harness turns into a clean teardown
    of its lab; only a child that ignores that too is killed."""
    with subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        try:
            output, _ = child.communicate(timeout=SUITE_DEADLINE)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                output, _ = child.communicate(timeout=TEARDOWN_DEADLINE)
            except subprocess.TimeoutExpired:
                child.kill()
                output, _ = child.communicate()
            raise AssertionError(
                f"the suite did not finish within {SUITE_DEADLINE:.0f}s: {' '.join(argv)}\n{output[-4000:]}"
            ) from None
        return child.returncode, output


def _report_outcomes(path: Path) -> dict[str, str]:
    """Scenario title -> the verdict class the harness gave it, from the run's report.json."""
    data = json.loads(path.read_text())
    return {str(s["name"]): str(s["outcome"]) for s in data["scenarios"]}


def _cucumber_scenarios(path: Path, outcomes: dict[str, str]) -> dict[str, ScenarioResult]:
    results: dict[str, ScenarioResult] = {}
    for feature in json.loads(path.read_text()):
        for element in feature.get("elements", []):
            steps = tuple(
                StepResult(
                    keyword=str(step.get("keyword", "")).strip(),
                    name=str(step.get("name", "")),
                    status=str(step.get("result", {}).get("status", "")),
                    error=str(step.get("result", {}).get("error_message", "")),
                )
                for step in element.get("steps", [])
            )
            title = str(element["name"])
            outcome = outcomes.get(title, "unknown")
            results[title] = ScenarioResult(str(feature["name"]), title, steps, outcome)
    return results


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def end_group(child: subprocess.Popen[str]) -> None:
    """Whatever the test saw, no child of a command started in a group of its own outlives it: a
    Ctrl-C to what is left of the group (each child then removes its lab), SIGKILL if that does not
    end it."""
    if group_alive(child.pid):
        os.killpg(child.pid, signal.SIGINT)
        try:
            wait_for(
                lambda: group_alive(child.pid),
                lambda alive: not alive,
                expected="the group ended",
                timeout=TEARDOWN_DEADLINE,
            )
        except WaitTimeout:
            os.killpg(child.pid, signal.SIGKILL)
    if child.poll() is None:
        child.wait()
