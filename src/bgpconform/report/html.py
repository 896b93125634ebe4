"""The run report as one self-contained HTML page, the file a release manager reads and signs from.

Everything (styles included) is inside the page so it can be mailed, attached to a ticket or printed
to PDF and still show the same thing; it loads nothing from anywhere. The verdict and what was tested
come first, then every scenario with its steps and the evidence each step recorded.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import lru_cache

import jinja2
import markupsafe

from bgpconform.disruption.timeline import Timeline
from bgpconform.report import timeline_svg
from bgpconform.report.model import EvidenceItem, RunReport, ScenarioResult, StepResult
from bgpconform.report.tables import parse_text_table

FOLD_LINES = 15  # longer text is folded so the steps stay readable; printing unfolds it
STATE_AT_FAILURE = " (state at failure)"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates next to this module, escaped by default: evidence is untrusted text."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bgpconform.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = format_duration
    env.filters["seconds"] = format_seconds
    return env


def format_duration(seconds: float) -> str:
    """A duration a person reads at a glance: `0.42 s`, `12.3 s`, `2 min 05 s`, `1 h 02 min`."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {(whole % 3600) // 60:02d} min"


def format_seconds(seconds: float | None) -> str:
    """A convergence time in seconds, as the timing tables show them; `-` when there is none."""
    return "-" if seconds is None else f"{seconds:.2f}"


@dataclass(frozen=True)
class EvidenceView:
    item: EvidenceItem
    recorded: str  # time of day it was recorded, in the run's time zone
    table: tuple[list[str], list[list[str]]] | None
    text: str  # what a <pre> shows when there is no table (JSON pretty-printed)
    folded: bool
    svg: markupsafe.Markup | None = None  # a timeline, drawn
    figures: list[tuple[str, str]] = field(default_factory=list)  # a timeline's figures, named


@dataclass
class StepView:
    anchor: str
    step: StepResult
    failed_here: bool
    evidence: list[EvidenceView] = field(default_factory=list)
    state_at_failure: list[EvidenceView] = field(default_factory=list)

    @property
    def label(self) -> str:
        return step_label(self.step)


@dataclass
class ScenarioView:
    anchor: str
    scenario: ScenarioResult
    steps: list[StepView]
    other_evidence: list[EvidenceView]
    failing_step: StepView | None


@dataclass
class FeatureView:
    name: str
    scenarios: list[ScenarioView]


@dataclass(frozen=True)
class StageRow:
    stage: str
    name: str
    values: list[float]
    median: float


def step_label(step: StepResult) -> str:
    """How evidence names its step: keyword and text, as written in the feature."""
    return f"{step.keyword} {step.name}"


FIGURE_NAMES = {
    "requests": "requests",
    "failed": "failed requests",
    "longest_gap": "longest gap without an answer (s)",
    "session_flaps": "session flaps",
    "withdrawals": "withdrawals of a next hop",
    "fewest_nexthops": "fewest next hops",
    "requests_per_second": "requests per second",
}


def _timeline_view(item: EvidenceItem, zone: tzinfo) -> EvidenceView:
    """A timeline drawn, with its figures from the fault's first mark on (the whole run without one)."""
    timeline = Timeline.model_validate_json(item.body)
    since = timeline.marks[0].at if timeline.marks else 0.0
    shown = timeline.figures(since).model_dump()
    recorded = datetime.fromtimestamp(item.at, tz=zone).strftime("%H:%M:%S")
    return EvidenceView(
        item=item,
        recorded=recorded,
        table=None,
        text="",
        folded=False,
        svg=markupsafe.Markup(timeline_svg.render(timeline)),  # its labels are escaped by the renderer
        figures=[(FIGURE_NAMES[key], f"{value:g}") for key, value in shown.items()],
    )


def _evidence_view(item: EvidenceItem, zone: tzinfo) -> EvidenceView:
    if item.kind == "timeline":
        return _timeline_view(item, zone)
    table = parse_text_table(item.body) if item.kind == "table" else None
    text = item.body
    if item.kind == "json":
        try:
            text = json.dumps(json.loads(item.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = item.body  # shown as recorded: what the step saw matters more than its shape
    recorded = datetime.fromtimestamp(item.at, tz=zone).strftime("%H:%M:%S")
    folded = table is None and len(text.splitlines()) > FOLD_LINES
    return EvidenceView(item=item, recorded=recorded, table=table, text=text, folded=folded)


def _match_step(label: str, steps: Sequence[StepView], cursor: int) -> int | None:
    """The step an evidence label names. A step text may repeat in a scenario (two `When`s doing the
    same thing), so the first match at or after the step of the previous item wins; evidence is
    recorded in step order. A keyword that differs (`And` for `Then`) still matches on the text."""
    found = [i for i, view in enumerate(steps) if view.label == label]
    if not found:
        text = label.split(" ", 1)[1] if " " in label else label
        found = [i for i, view in enumerate(steps) if view.step.name == text]
    if not found:
        return None
    return next((i for i in found if i >= cursor), found[0])


def _scenario_view(index: int, scenario: ScenarioResult, zone: tzinfo) -> ScenarioView:
    anchor = f"scenario-{index}"
    failed = next((i for i, step in enumerate(scenario.steps) if step.status == "failed"), None)
    if failed is None and scenario.failure is not None:
        labels = [step_label(step) for step in scenario.steps]
        failed = labels.index(scenario.failure.step) if scenario.failure.step in labels else None
    steps = [
        StepView(anchor=f"{anchor}-step-{number}", step=step, failed_here=number - 1 == failed)
        for number, step in enumerate(scenario.steps, 1)
    ]
    other: list[EvidenceView] = []
    cursor = 0
    for item in scenario.evidence:
        view = _evidence_view(item, zone)
        at_failure = item.step.endswith(STATE_AT_FAILURE)
        label = item.step.removesuffix(STATE_AT_FAILURE) if at_failure else item.step
        matched = _match_step(label, steps, cursor)
        if matched is None:
            other.append(view)
        elif at_failure:
            steps[matched].state_at_failure.append(view)
        else:
            steps[matched].evidence.append(view)
            cursor = matched
    failing = next((s for s in steps if s.failed_here), None)
    return ScenarioView(anchor, scenario, steps, other, failing)


def _features(scenarios: Sequence[ScenarioResult], zone: tzinfo) -> list[FeatureView]:
    """Scenarios grouped by feature, features in the order their first scenario ran."""
    features: dict[str, FeatureView] = {}
    for index, scenario in enumerate(scenarios, 1):
        feature = features.setdefault(scenario.feature, FeatureView(scenario.feature, []))
        feature.scenarios.append(_scenario_view(index, scenario, zone))
    return list(features.values())


def _stage_rows(report: RunReport) -> list[StageRow]:
    return [
        StageRow(stage.stage, name, values, statistics.median(values))
        for stage in report.stages
        for name, values in stage.timings.items()
        if values
    ]


def render_html(report: RunReport) -> str:
    """The whole report page; every value from the run is escaped, nothing is fetched."""
    zone = report.run.started_at.tzinfo or UTC
    features = _features(report.scenarios, zone)
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            run=report.run,
            verdict=report.verdict.value,
            features=features,
            stage_rows=_stage_rows(report),
            started=report.run.started_at.isoformat(sep=" ", timespec="seconds"),
        )
    )
