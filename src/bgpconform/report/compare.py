"""Two runs side by side: what changed in the verdict, the versions, the scenarios and the timings.

A release is signed against the previous one, so the comparison answers the questions a sign-off
asks: did the verdict move, which component changed, which scenario changed outcome and which stage
got slower. Runs are read back from the `report.json` each run writes.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bgpconform.disruption.timeline import Figures, Timeline
from bgpconform.errors import ConfigError
from bgpconform.report.html import environment
from bgpconform.report.model import SCHEMA_VERSION, RunInfo, RunReport, ScenarioResult, Verdict
from bgpconform.verdict import Outcome

REPORT_FILE = "report.json"
_FIX = "pass a run's report directory (e.g. reports/latest) or its report.json"


def _report_file(path: Path) -> Path:
    if path.is_dir():
        file = path / REPORT_FILE
        if not file.exists():
            raise ConfigError(f"{path}: no {REPORT_FILE} in this directory; {_FIX}")
        return file
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"{path}: broken link to {path.readlink()}; {_FIX}")
    if not path.exists():
        raise ConfigError(f"{path}: no such report directory or file; {_FIX}")
    return path


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = error.error_count() - 1
    return f"{where}: {first['msg']}" + (f" (and {more} more)" if more else "")


def load_report(path: Path) -> RunReport:
    """A run from its report directory, a `reports/latest` link or a `report.json` path.

    Every way this can go wrong is the user's input, so each is one ConfigError naming the file and
    what to pass instead, never a traceback.
    """
    file = _report_file(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{file}: cannot read it ({reason}); {_FIX}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
            f"it is damaged or not a report, {_FIX}"
        ) from None
    if isinstance(data, dict) and data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ConfigError(
            f"{file}: report schema {data.get('schema_version')!r}, this bgpconform reads schema "
            f"{SCHEMA_VERSION}; compare it with the bgpconform version that wrote it"
        )
    try:
        return RunReport.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{file}: not a bgpconform run report ({_first_error(exc)}); {_FIX}") from None


@dataclass(frozen=True)
class VersionChange:
    """A component whose version differs; None when one run did not record it."""

    name: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ScenarioChange:
    """A scenario whose outcome differs; None on the side where it did not run."""

    feature: str
    name: str
    old: Outcome | None
    new: Outcome | None


@dataclass(frozen=True)
class TimingDelta:
    """One stage timing's median in each run; None on the side that did not record it."""

    stage: str
    name: str
    old_median: float | None
    new_median: float | None

    @property
    def delta(self) -> float | None:
        if self.old_median is None or self.new_median is None:
            return None
        return self.new_median - self.old_median

    @property
    def percent(self) -> float | None:
        if self.delta is None or not self.old_median:
            return None
        return 100.0 * self.delta / self.old_median


@dataclass(frozen=True)
class DisruptionChange:
    """A fault scenario's disruption figures (from its fault on) in each run; None where it has none."""

    feature: str
    name: str
    old: Figures | None
    new: Figures | None


DISRUPTION_FIGURES = (
    ("failed", "failed requests"),
    ("longest_gap", "longest gap (s)"),
    ("session_flaps", "session flaps"),
    ("withdrawals", "withdrawals"),
    ("requests_per_second", "requests/s"),
)


def disruption(scenario: ScenarioResult) -> Figures | None:
    """The figures of the scenario's probe timeline from its first mark (the fault) on."""
    for item in scenario.evidence:
        if item.kind == "timeline":
            timeline = Timeline.model_validate_json(item.body)
            return timeline.figures(timeline.marks[0].at if timeline.marks else 0.0)
    return None


@dataclass(frozen=True)
class Comparison:
    old: RunInfo
    new: RunInfo
    old_verdict: Verdict
    new_verdict: Verdict
    new_verdict_reason: str
    versions: list[VersionChange]
    outcomes: list[ScenarioChange]  # ran in both runs, outcome differs
    added: list[ScenarioChange]  # only in the new run
    removed: list[ScenarioChange]  # only in the old run
    timings: list[TimingDelta]
    scenarios_compared: int  # ran in both runs
    disruptions: list[DisruptionChange]  # every fault scenario of either run, side by side

    @property
    def verdict_changed(self) -> bool:
        return self.old_verdict != self.new_verdict


_Key = tuple[str, str, int]


def _by_key(scenarios: Sequence[ScenarioResult]) -> dict[_Key, ScenarioResult]:
    """Scenarios by feature and name; a name seen again (an outline's examples) by its occurrence."""
    seen: Counter[tuple[str, str]] = Counter()
    keyed: dict[_Key, ScenarioResult] = {}
    for scenario in scenarios:
        pair = (scenario.feature, scenario.name)
        keyed[(*pair, seen[pair])] = scenario
        seen[pair] += 1
    return keyed


def _medians(report: RunReport) -> dict[tuple[str, str], float]:
    values: dict[tuple[str, str], list[float]] = {}
    for stage in report.stages:
        for name, seen in stage.timings.items():
            values.setdefault((stage.stage, name), []).extend(seen)
    return {key: statistics.median(seen) for key, seen in values.items() if seen}


def compare(old: RunReport, new: RunReport) -> Comparison:
    """What changed from `old` to `new`; things that stayed the same are left out, except timings,
    which are always listed because a release manager judges their drift."""
    versions = [
        VersionChange(name, old.run.versions.get(name), new.run.versions.get(name))
        for name in [*old.run.versions, *(n for n in new.run.versions if n not in old.run.versions)]
        if old.run.versions.get(name) != new.run.versions.get(name)
    ]
    old_scenarios, new_scenarios = _by_key(old.scenarios), _by_key(new.scenarios)
    outcomes = [
        ScenarioChange(key[0], key[1], old_scenarios[key].outcome, scenario.outcome)
        for key, scenario in new_scenarios.items()
        if key in old_scenarios and old_scenarios[key].outcome != scenario.outcome
    ]
    added = [
        ScenarioChange(key[0], key[1], None, scenario.outcome)
        for key, scenario in new_scenarios.items()
        if key not in old_scenarios
    ]
    removed = [
        ScenarioChange(key[0], key[1], scenario.outcome, None)
        for key, scenario in old_scenarios.items()
        if key not in new_scenarios
    ]
    old_medians, new_medians = _medians(old), _medians(new)
    timings = [
        TimingDelta(stage, name, old_medians.get((stage, name)), new_medians.get((stage, name)))
        for stage, name in [*old_medians, *(k for k in new_medians if k not in old_medians)]
    ]
    disruptions = []
    for key in [*old_scenarios, *(k for k in new_scenarios if k not in old_scenarios)]:
        before = disruption(old_scenarios[key]) if key in old_scenarios else None
        after = disruption(new_scenarios[key]) if key in new_scenarios else None
        if before is not None or after is not None:
            disruptions.append(DisruptionChange(key[0], key[1], before, after))
    return Comparison(
        old=old.run,
        new=new.run,
        old_verdict=old.verdict,
        new_verdict=new.verdict,
        new_verdict_reason=new.verdict_reason,
        versions=versions,
        outcomes=outcomes,
        added=added,
        removed=removed,
        timings=timings,
        scenarios_compared=sum(1 for key in new_scenarios if key in old_scenarios),
        disruptions=disruptions,
    )


def _run_line(label: str, run: RunInfo) -> str:
    started = run.started_at.isoformat(sep=" ", timespec="seconds")
    return (
        f"{label} run {run.run_id}, {started}, target {run.target}, "
        f"bgpconform {run.harness_version} ({run.git_revision})"
    )


def _outcome(value: Outcome | None) -> str:
    return "(absent)" if value is None else value.value


def format_delta(delta: TimingDelta) -> str:
    """`+0.81 s (+25.2%)`; or which run alone recorded the timing."""
    if delta.old_median is None:
        return "only in the new run"
    if delta.new_median is None:
        return "only in the old run"
    assert delta.delta is not None  # both medians are known
    percent = "" if delta.percent is None else f" ({delta.percent:+.1f}%)"
    return f"{delta.delta:+.2f} s{percent}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in [header, *rows]
    ]


def render_text(comparison: Comparison) -> str:
    """A short plain-text summary a sign-off can quote as it is."""
    c = comparison
    lines = [_run_line("old:", c.old), _run_line("new:", c.new), ""]
    if c.verdict_changed:
        lines.append(f"Verdict: {c.old_verdict.value} -> {c.new_verdict.value} (CHANGED)")
    else:
        lines.append(f"Verdict: {c.new_verdict.value} (unchanged)")
    lines.append(f"  {c.new_verdict_reason}")
    lines.append("")
    if c.versions:
        lines.append("Versions changed:")
        lines += [f"  {v.name}: {v.old or '(absent)'} -> {v.new or '(absent)'}" for v in c.versions]
    else:
        lines.append("Versions: unchanged")
    lines.append("")
    if c.outcomes:
        lines.append(f"Scenario outcomes changed ({len(c.outcomes)} of {c.scenarios_compared}):")
        lines += [f"  {s.feature} / {s.name}: {_outcome(s.old)} -> {_outcome(s.new)}" for s in c.outcomes]
    else:
        lines.append(f"Scenario outcomes: unchanged ({c.scenarios_compared} scenarios in both runs)")
    if c.added:
        lines.append("Scenarios added:")
        lines += [f"  {s.feature} / {s.name}: {_outcome(s.new)}" for s in c.added]
    if c.removed:
        lines.append("Scenarios removed:")
        lines += [f"  {s.feature} / {s.name}: was {_outcome(s.old)}" for s in c.removed]
    lines.append("")
    if c.timings:
        lines.append("Stage timings (median seconds):")
        rows = [
            [
                t.stage,
                t.name,
                "-" if t.old_median is None else f"{t.old_median:.2f}",
                "-" if t.new_median is None else f"{t.new_median:.2f}",
                format_delta(t),
            ]
            for t in c.timings
        ]
        lines += _table(["stage", "timing", "old", "new", "delta"], rows, right={2, 3})
    else:
        lines.append("Stage timings: none recorded")
    if c.disruptions:
        lines += ["", "Disruption under faults (from each fault on, old -> new):"]
        rows = [
            [d.name, label, figure(d.old, key), figure(d.new, key)]
            for d in c.disruptions
            for key, label in DISRUPTION_FIGURES
        ]
        lines += _table(["scenario", "figure", "old", "new"], rows, right={2, 3})
    return "\n".join(lines) + "\n"


def figure(figures: Figures | None, key: str) -> str:
    """One figure as the comparison shows it; `-` where the run has no timeline for the scenario."""
    return "-" if figures is None else f"{getattr(figures, key):g}"


def render_html(comparison: Comparison) -> str:
    """The comparison as a self-contained page, styled like the run report."""
    c = comparison
    return (
        environment()
        .get_template("compare.html.j2")
        .render(
            c=c,
            old_started=c.old.started_at.isoformat(sep=" ", timespec="seconds"),
            new_started=c.new.started_at.isoformat(sep=" ", timespec="seconds"),
            format_delta=format_delta,
            figure=figure,
            disruption_figures=DISRUPTION_FIGURES,
        )
    )
