"""One report from the shards of a run split over labs side by side.

The merged report is what a single run's would be: the verdict over every scenario, stage timings
and counts from them all, the same files (report.json, report.html, metrics.json, junit.xml,
cucumber.json, scenarios/). What cannot merge is said, never smoothed over: shards whose systems
report different versions, a shard that wrote no report, a planned scenario no shard ran: each
is a harness error, so the run is not assessed as conformant. Each shard's own report directory
(its raw evidence among it) stays under `shards/`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bgpconform.report import summary
from bgpconform.report.junit import merge_suites
from bgpconform.report.model import RunInfo, RunReport, ShardRun


@dataclass(frozen=True)
class ShardOutcome:
    """A finished shard as the runner saw it; `report` None when it wrote none."""

    number: int
    command: str
    returncode: int
    seconds: float
    planned: tuple[str, ...]
    report: RunReport | None
    directory: Path | None  # its report directory
    log: Path


def merge(
    shards: Sequence[ShardOutcome],
    *,
    merged_directory: Path,
    run_id: str,
    started_at: datetime,
    duration: float,
    command: str,
    order: Sequence[str] = (),
    interrupted: bool = False,
) -> RunReport:
    """`order`: the collection's, as one run would list the scenarios (else shard by shard)."""
    reported = [shard for shard in shards if shard.report is not None]
    problems = ["the run was interrupted before it finished"] if interrupted else []
    problems += [
        f"shard {shard.number} wrote no report (exit {shard.returncode}; its output: {shard.log})"
        for shard in shards
        if shard.report is None
    ]
    planned = list(order) or [node for shard in shards for node in shard.planned]
    position = {node: index for index, node in enumerate(planned)}
    scenarios = sorted(
        (scenario for shard in reported for scenario in shard.report.scenarios),  # type: ignore[union-attr]
        key=lambda scenario: position.get(scenario.node_id, len(position)),
    )
    ran = {scenario.node_id for scenario in scenarios}
    for shard in reported:
        missing = [node for node in shard.planned if node not in ran]
        if missing:
            problems.append(f"shard {shard.number} did not run {len(missing)} planned: {', '.join(missing)}")
        if shard.report is not None and shard.report.harness_error:
            problems.append(f"shard {shard.number}: {shard.report.harness_error}")
    first = reported[0].report if reported else None
    versions, differing = _versions(reported)
    problems += differing + _unlike_runs(reported)
    harness_error = "; ".join(problems) or None
    verdict, reason = summary.run_verdict(scenarios, harness_error)
    rules: list[str] = []
    for shard in reported:
        rules += [rule for rule in shard.report.run.version_rules if rule not in rules]  # type: ignore[union-attr]
    shard_runs = [
        ShardRun(
            number=shard.number,
            command=shard.command,
            returncode=shard.returncode,
            seconds=round(shard.seconds, 3),
            scenarios=len(shard.report.scenarios) if shard.report else 0,
            report=str(shard.directory.relative_to(merged_directory)) if shard.directory else None,
        )
        for shard in shards
    ]
    if first is not None:
        run = first.run.model_copy(
            update={
                "run_id": run_id,
                "started_at": started_at,
                "duration": duration,
                "command": command,
                "versions": versions,
                "version_rules": rules,
                "shards": shard_runs,
            }
        )
    else:
        run = RunInfo(
            run_id=run_id,
            target="lab",
            topology_path="unknown",
            topology_sha256="unknown",
            versions={},
            harness_version="unknown",
            git_revision="unknown",
            started_at=started_at,
            duration=duration,
            user="unknown",
            host="unknown",
            command=command,
            shards=shard_runs,
        )
    return RunReport(
        run=run,
        verdict=verdict,
        verdict_reason=reason,
        scenarios=scenarios,
        stages=summary.stage_summaries(scenarios),
        counts=summary.run_counts(scenarios),
        harness_error=harness_error,
    )


def _versions(shards: Sequence[ShardOutcome]) -> tuple[dict[str, str], list[str]]:
    """Every version any shard read (a shard that never installed Cilium reads no Cilium version);
    one that two shards read differently is a problem: the labs were not the same system."""
    seen: dict[str, dict[str, list[int]]] = {}
    for shard in shards:
        if shard.report is None:
            continue
        for name, value in shard.report.run.versions.items():
            seen.setdefault(name, {}).setdefault(value, []).append(shard.number)
    versions: dict[str, str] = {}
    problems: list[str] = []
    for name, values in seen.items():
        if len(values) == 1:
            (versions[name],) = values
            continue
        versions[name] = "; ".join(
            f"shard {','.join(map(str, numbers))}: {value}" for value, numbers in values.items()
        )
        problems.append(f"the shards' systems differ in {name} ({versions[name]})")
    return versions, problems


# What the merged report states once for the whole run, so every shard must have stated it alike: the
# report's first lines (what was real, emulated, shortened or broken on purpose) and what it ran. Not
# the git revision: each shard reads it as it ends, and a file saved meanwhile marks the later ones
# dirty though every shard loaded the same code at the same start.
SAME_IN_EVERY_SHARD = ("target", "topology_path", "topology_sha256", "harness_version")


def _unlike_runs(shards: Sequence[ShardOutcome]) -> list[str]:
    """A fact of the run two shards state differently: the merged report, which states the first
    shard's, would be wrong for the other."""
    problems: list[str] = []
    runs = [(shard.number, shard.report.run) for shard in shards if shard.report is not None]
    if not runs:
        return problems
    first_number, first = runs[0]
    for number, run in runs[1:]:
        unlike = [name for name in SAME_IN_EVERY_SHARD if getattr(run, name) != getattr(first, name)]
        if run.provenance != first.provenance:
            unlike.append("provenance (what was real, emulated, shortened or broken on purpose)")
        if unlike:
            problems.append(f"shard {number} ran unlike shard {first_number} in {', '.join(unlike)}")
    return problems


def write_merged(directory: Path, report: RunReport, shards: Sequence[ShardOutcome]) -> None:
    """The merged directory's files beside the shards' own; `reports/latest` is the caller's to move."""
    from bgpconform.report.html import render_html
    from bgpconform.report.writer import write_model_files

    directory.mkdir(parents=True, exist_ok=True)
    write_model_files(directory, report)
    written = [shard.directory for shard in shards if shard.directory is not None]
    junits = [d / "junit.xml" for d in written if (d / "junit.xml").is_file()]
    if junits:
        merge_suites(junits, directory / "junit.xml")
    features: dict[str, dict[str, Any]] = {}  # a feature two shards ran once, with both's scenarios
    for cucumber in (d / "cucumber.json" for d in written):
        if not cucumber.is_file():
            continue
        for feature in json.loads(cucumber.read_text(encoding="utf-8")):
            kept = features.setdefault(
                str(feature.get("uri", feature.get("id"))), {**feature, "elements": []}
            )
            kept["elements"] += feature.get("elements", [])
    if features:
        (directory / "cucumber.json").write_text(
            json.dumps(list(features.values()), indent=1), encoding="utf-8"
        )
    (directory / "report.html").write_text(render_html(report), encoding="utf-8")
