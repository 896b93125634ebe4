"""The matrix page: releases down, scenarios across, one self-contained HTML file over many runs.

Each cell shows the scenario's outcome in that run, its duration and where its time went by stage
(the convergence timings the run recorded); each row links the run's own report and shows the command
that replays it. A scenario the release does not promise (a version rule, `bgpconform.applicability`)
shows as "not applicable", one the run never reached as "not run".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bgpconform.report.html import environment
from bgpconform.report.model import RunReport, ScenarioResult


@dataclass(frozen=True)
class MatrixRow:
    """One run of the matrix as the page needs it; `report` is None when the run wrote none."""

    topology: str
    label: str
    command: str
    returncode: int | None  # None: never started, the matrix was stopped first
    seconds: float
    report_link: str | None  # relative to the page
    report: RunReport | None


@dataclass(frozen=True)
class CellView:
    outcome: str  # an Outcome value, "not applicable" or "not run"
    duration: float | None
    stages: list[tuple[str, float]]  # stage -> seconds of recorded convergence
    failed_step: str | None


def _not_applicable(report: RunReport) -> set[str]:
    return {rule.split(": ", 1)[0] for rule in report.run.version_rules if ": not applicable" in rule}


def _cell(result: ScenarioResult | None, name: str, report: RunReport | None) -> CellView:
    if result is None:
        skipped = report is not None and name in _not_applicable(report)
        return CellView("not applicable" if skipped else "not run", None, [], None)
    stages: dict[str, float] = defaultdict(float)
    for timing in result.timings:
        stages[timing.stage] += timing.seconds
    failed = result.failure.step if result.failure is not None else None
    return CellView(result.outcome.value, result.duration, sorted(stages.items()), failed)


def render_matrix(rows: Sequence[MatrixRow], title: str = "bgpconform version matrix") -> str:
    """The page for `rows`, one table per topology; scenario columns in the order the runs met them."""
    topologies: dict[str, list[MatrixRow]] = {}
    for row in rows:
        topologies.setdefault(row.topology, []).append(row)
    tables = []
    for topology, members in topologies.items():
        scenarios: list[str] = []
        for row in members:
            for result in row.report.scenarios if row.report else []:
                if result.name not in scenarios:
                    scenarios.append(result.name)
            for name in sorted(_not_applicable(row.report)) if row.report else []:
                if name not in scenarios:
                    scenarios.append(name)
        cells = []
        for row in members:
            by_name = {s.name: s for s in row.report.scenarios} if row.report else {}
            cells.append([_cell(by_name.get(name), name, row.report) for name in scenarios])
        tables.append((topology, scenarios, list(zip(members, cells, strict=True))))
    failed = sum(1 for row in rows if row.report is None or row.report.verdict.value != "conformant")
    return (
        environment()
        .get_template("matrix.html.j2")
        .render(title=title, tables=tables, runs=len(rows), failed=failed)
    )


def write_matrix(rows: Sequence[MatrixRow], page: Path) -> Path:
    page.write_text(render_matrix(rows))
    return page
