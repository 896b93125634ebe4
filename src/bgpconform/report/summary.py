"""From scenario results to what the top of the report and `metrics.json` say about the run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bgpconform.errors import NonConformance
from bgpconform.report.model import (
    SCHEMA_VERSION,
    Failure,
    RunReport,
    ScenarioResult,
    StageSummary,
    Verdict,
)
from bgpconform.stage import Stage
from bgpconform.verdict import Outcome


def failure(step: str, error: BaseException) -> Failure:
    """The failure as the report shows it; a `NonConformance` brings expected and observed with it."""
    return Failure(
        step=step,
        kind=type(error).__name__,
        message=str(error) or type(error).__name__,
        expected=error.expected if isinstance(error, NonConformance) else None,
        observed=error.observed if isinstance(error, NonConformance) else None,
    )


def run_verdict(scenarios: list[ScenarioResult], harness_error: str | None) -> tuple[Verdict, str]:
    """A product failure seen anywhere makes the run non-conformant; otherwise anything the harness
    could not assess (or no scenario at all) leaves it not assessed; only a full pass is conformant."""
    failed = [s.name for s in scenarios if s.outcome is Outcome.NON_CONFORMANT]
    unassessed = [s.name for s in scenarios if s.outcome is Outcome.NOT_ASSESSED]
    if failed:
        return Verdict.NON_CONFORMANT, (
            f"{len(failed)} of {len(scenarios)} scenarios found the system not conforming: "
            + "; ".join(failed)
        )
    if harness_error is not None:
        return Verdict.NOT_ASSESSED, f"the harness could not run the suite: {harness_error}"
    if not scenarios:
        return Verdict.NOT_ASSESSED, "no scenario ran"
    if unassessed:
        return Verdict.NOT_ASSESSED, (
            f"{len(unassessed)} of {len(scenarios)} scenarios could not be assessed "
            "(harness or infrastructure failure): " + "; ".join(unassessed)
        )
    return Verdict.CONFORMANT, f"all {len(scenarios)} scenarios passed"


def stage_summaries(scenarios: list[ScenarioResult]) -> list[StageSummary]:
    """Every timing per stage, in walkthrough order; stages the run never converged are absent."""
    per_stage: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for scenario in scenarios:
        for timing in scenario.timings:
            per_stage[timing.stage][timing.name].append(round(timing.seconds, 3))
    order = {stage.label: int(stage) for stage in Stage}
    return [
        StageSummary(stage=stage, timings=dict(timings))
        for stage, timings in sorted(per_stage.items(), key=lambda item: order.get(item[0], len(order)))
    ]


def run_counts(scenarios: list[ScenarioResult]) -> dict[str, int]:
    """Scenario outcomes plus the largest value each observed count reached in any scenario."""
    counts: dict[str, int] = {
        "scenarios": len(scenarios),
        "scenarios_passed": sum(s.outcome is Outcome.PASSED for s in scenarios),
        "scenarios_non_conformant": sum(s.outcome is Outcome.NON_CONFORMANT for s in scenarios),
        "scenarios_not_assessed": sum(s.outcome is Outcome.NOT_ASSESSED for s in scenarios),
    }
    for scenario in scenarios:
        for name, value in scenario.counts.items():
            counts[name] = max(counts.get(name, value), value)
    return counts


def metrics(report: RunReport) -> dict[str, Any]:
    """`metrics.json`: flat, stable names for dashboards (documented in the README)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": report.run.run_id,
        "verdict": str(report.verdict),
        "target": report.run.target,
        "started_at": report.run.started_at.isoformat(),
        "duration_seconds": round(report.run.duration, 3),
        "versions": dict(report.run.versions),
        "provenance": None if report.run.provenance is None else report.run.provenance.model_dump(),
        "counts": dict(report.counts),
        "stages": {
            summary.stage: {
                name: {"count": len(values), "min": min(values), "max": max(values), "last": values[-1]}
                for name, values in summary.timings.items()
            }
            for summary in report.stages
        },
        "scenarios": {
            s.name: {"outcome": str(s.outcome), "duration_seconds": round(s.duration, 3)}
            for s in report.scenarios
        },
    }
