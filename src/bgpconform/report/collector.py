"""The pytest side of the report: follows each scenario and step as pytest-bdd runs them, classifies
each scenario's outcome, and hands the whole run to the writer when the session ends.

Active only when the session runs feature scenarios (the conformance suite); the harness's own tests
write no report. The scenario's evidence comes from the features' fixtures through `EVIDENCE`; the
target hands over its versions and raw state through `record_target` before it is torn down.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bgpconform.evidence import Evidence
from bgpconform.interrupts import deferred_interrupts
from bgpconform.report import runinfo, summary
from bgpconform.report.model import EvidenceItem, RunInfo, RunReport, ScenarioResult, StepResult, Timing
from bgpconform.report.model import Provenance as ProvenanceModel
from bgpconform.report.redact import Redactor
from bgpconform.verdict import Outcome, classify

if TYPE_CHECKING:
    from bgpconform.provenance import Provenance
    from bgpconform.report.raw import RecordedTarget
    from bgpconform.topology import Topology

EVIDENCE = pytest.StashKey[Evidence]()
COLLECTOR = pytest.StashKey["ReportCollector"]()


@dataclass
class _StepState:
    keyword: str
    name: str
    background: bool
    status: str = "skipped"
    duration: float = 0.0
    began: float | None = None


@dataclass
class _ScenarioState:
    feature: str
    name: str
    node_id: str
    steps: list[_StepState]
    began: float = field(default_factory=time.monotonic)
    duration: float = 0.0
    outcome: Outcome | None = None
    failed_step: str | None = None
    error: BaseException | None = None

    def step(self, keyword: str, name: str) -> _StepState | None:
        return next(
            (s for s in self.steps if s.name == name and s.keyword == keyword and s.status == "skipped"),
            None,
        )


def scenario_template(item: pytest.Item) -> Any:
    """The scenario behind a pytest-bdd test function, or None for any other test."""
    from pytest_bdd.scenario import scenario_wrapper_template_registry

    function = getattr(item, "function", None)
    return scenario_wrapper_template_registry.get(function) if function is not None else None


class ReportCollector:
    def __init__(
        self,
        config: pytest.Config,
        reports: Path,
        *,
        topology_path: Path,
        loaded_topology: Callable[[], Topology | None],
    ) -> None:
        """`loaded_topology`: the topology once the session has read it (its secret names redact the
        report); the plugin reads it lazily, so the collector asks at the end rather than at start."""
        self.config = config
        self.topology_path = topology_path
        self._loaded_topology = loaded_topology
        self.started = datetime.now(UTC)
        self.began = time.monotonic()
        self.run_id = runinfo.new_run_id(self.started)
        self.reports = reports
        self.directory = reports / self.run_id
        self.scenarios: dict[str, _ScenarioState] = {}
        self.evidence: dict[str, Evidence] = {}
        self.versions: dict[str, str] = {}
        self.provenance: ProvenanceModel | None = None
        self.version_rules: list[str] = []
        self.harness_error: str | None = None
        self.raw_problems: list[str] = []
        self.raw_seconds = 0.0  # collecting raw evidence, part of what the report costs a run

    # -- from the features' fixtures -----------------------------------------------------------------
    def record_versions(self, target: RecordedTarget) -> None:
        """Read versions whenever the target can say them: a later reset may lose what was installed."""
        try:
            self.versions.update(target.versions())
        except Exception as exc:
            self.versions.setdefault("note", f"versions partly unreadable: {type(exc).__name__}: {exc}")

    def record_version_rules(self, decisions: list[str]) -> None:
        """Which version-tagged scenarios applied to this run's Cilium and BGP API, and which did not."""
        self.version_rules = list(decisions)

    def record_provenance(self, provenance: Provenance) -> None:
        """What the target is made of, known before it starts, so even a run that never started says it."""
        self.provenance = ProvenanceModel(
            real=list(provenance.real),
            emulated=list(provenance.emulated),
            shortcuts=list(provenance.shortcuts),
            defects=list(provenance.defects),
        )

    def record_target(self, target: RecordedTarget) -> None:
        """Called before the target stops: its versions (into report.json) and raw state, redacted, into
        `raw/`."""
        from bgpconform.report.raw import collect_raw

        began = time.monotonic()
        self.record_versions(target)
        self.raw_problems += collect_raw(target, self.directory / "raw", self.redactor())
        self.raw_seconds += time.monotonic() - began

    def redactor(self) -> Redactor:
        return Redactor.for_topology(self._loaded_topology())

    # -- pytest and pytest-bdd hooks -----------------------------------------------------------------
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            template = scenario_template(item)
            if template is None:
                continue
            self.scenarios[item.nodeid] = _ScenarioState(
                feature=str(template.feature.name),
                name=str(template.name),
                node_id=item.nodeid,
                steps=[
                    _StepState(str(step.keyword), str(step.name), step.background is not None)
                    for step in template.steps
                ],
            )
        if self.scenarios:
            self.directory.mkdir(parents=True, exist_ok=True)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        state = self.scenarios.get(item.nodeid)
        if state is not None:
            state.began = time.monotonic()

    def pytest_bdd_before_step(
        self, request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any
    ) -> None:
        state = self.scenarios.get(request.node.nodeid)
        found = state.step(str(step.keyword), str(step.name)) if state else None
        if found is not None:
            found.began = time.monotonic()

    def _finish_step(self, request: pytest.FixtureRequest, step: Any, status: str) -> None:
        state = self.scenarios.get(request.node.nodeid)
        found = state.step(str(step.keyword), str(step.name)) if state else None
        if found is not None:
            found.status = status
            found.duration = time.monotonic() - (found.began or time.monotonic())
        if state is not None and status == "failed":
            state.failed_step = f"{step.keyword} {step.name}"

    def pytest_bdd_after_step(  # noqa: PLR0917 (the hook's signature)
        self,
        request: pytest.FixtureRequest,
        feature: Any,
        scenario: Any,
        step: Any,
        step_func: Any,
        step_func_args: Any,
    ) -> None:
        self._finish_step(request, step, "passed")

    def pytest_bdd_step_error(  # noqa: PLR0917 (the hook's signature)
        self,
        request: pytest.FixtureRequest,
        feature: Any,
        scenario: Any,
        step: Any,
        step_func: Any,
        step_func_args: Any,
        exception: BaseException,
    ) -> None:
        self._finish_step(request, step, "failed")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report: pytest.TestReport = yield
        state = self.scenarios.get(item.nodeid)
        if state is None:
            return report
        error = call.excinfo.value if call.excinfo is not None else None
        if call.when == "call" or (error is not None and state.outcome is None):
            outcome = Outcome.NOT_ASSESSED if report.skipped else classify(error if report.failed else None)
            if state.outcome is None or call.when == "call":
                state.outcome, state.error = outcome, error if report.failed else None
        if call.when == "teardown":
            state.duration = time.monotonic() - state.began
            record = item.stash.get(EVIDENCE, None)
            if record is not None:
                self.evidence[item.nodeid] = record
            if error is not None and state.outcome is Outcome.PASSED:
                state.outcome, state.error = classify(error), error
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.scenarios:
            return
        from bgpconform.report.writer import write_report

        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.harness_error = self.harness_error or "the run was interrupted before it finished"
        with deferred_interrupts("writing the report"):
            write_report(self, self.build())

    # -- the run as a model --------------------------------------------------------------------------
    def build(self) -> RunReport:
        scenarios = [self._scenario(state) for state in self.scenarios.values() if state.outcome is not None]
        verdict, reason = summary.run_verdict(scenarios, self.harness_error)
        topology_path = self.topology_path
        return RunReport(
            run=RunInfo(
                run_id=self.run_id,
                target=str(self.config.getoption("--target")),
                topology_path=str(topology_path),
                topology_sha256=runinfo.file_sha256(topology_path),
                versions=dict(self.versions),
                harness_version=runinfo.harness_version(),
                git_revision=runinfo.git_revision(Path(self.config.rootpath)),
                started_at=self.started,
                duration=time.monotonic() - self.began,
                user=runinfo.user(),
                host=runinfo.host(),
                command=shlex.join([Path(sys.argv[0]).name, *self.config.invocation_params.args]),
                provenance=self.provenance,
                version_rules=self.version_rules,
            ),
            verdict=verdict,
            verdict_reason=reason,
            scenarios=scenarios,
            stages=summary.stage_summaries(scenarios),
            counts=summary.run_counts(scenarios),
            harness_error=self.harness_error,
        )

    def _scenario(self, state: _ScenarioState) -> ScenarioResult:
        record = self.evidence.get(state.node_id) or Evidence()
        assert state.outcome is not None
        failure = None
        if state.error is not None:
            failure = summary.failure(state.failed_step or "(setup)", state.error)
        return ScenarioResult(
            feature=state.feature,
            name=state.name,
            node_id=state.node_id,
            outcome=state.outcome,
            duration=state.duration,
            steps=[
                StepResult(
                    keyword=s.keyword,
                    name=s.name,
                    status=s.status,  # type: ignore[arg-type]
                    duration=round(s.duration, 3),
                    background=s.background,
                )
                for s in state.steps
            ],
            evidence=[
                EvidenceItem(step=i.step, title=i.title, kind=i.kind, body=i.body, at=i.at)
                for i in record.items
            ],
            timings=[Timing(stage=t.stage, name=t.name, seconds=round(t.seconds, 3)) for t in record.timings],
            counts=dict(record.counts),
            failure=failure,
        )
