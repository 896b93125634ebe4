"""Which scenarios each shard runs: the collected scenarios dealt out by their expected cost.

A lab mostly waits on protocol timers, so labs side by side finish sooner than one lab running every
scenario in turn. A scenario costs its own steps plus, once per shard, the stages its Background
brings the lab to: a shard is expected to take the dearest Background among its scenarios plus the
sum of their own steps. Both come from an earlier report where one is given (own: the scenario's
duration less its Background steps; Background: the longest its feature's took there, which from a
run of a single lab understates a start from nothing; from a reports directory, its newest one-lab
runs on the same topology with the same shortcuts, see `costs_for`), else every scenario counts the
same. Dearest
first, each to the shard it lengthens least (the LPT rule with a setup term); inside a shard the
scenarios keep their collection order, which the stage machine is built for.

The plan is a JSON file (`{"shards": [[node ids], ...]}`) that every shard's pytest reads with
`--shard=FILE:N`, so one shard can be replayed alone from the command its report shows.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bgpconform.child_pytest import pytest_argv
from bgpconform.errors import ConfigError, HarnessError
from bgpconform.report.model import RunReport
from bgpconform.shards.listing import LISTING_VARIABLE

COLLECT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Shard:
    number: int  # 1-based, as the command line names it
    node_ids: tuple[str, ...]
    expected_seconds: float


def collected(root: Path, pytest_args: Sequence[str]) -> list[str]:
    """The scenarios the same pytest command would run, in their order (a `--collect-only` session
    with `bgpconform.shards.listing`). The arguments must name the topology: a listing session reads
    none unless given one, and then lists every scenario whatever its version rule."""
    with tempfile.TemporaryDirectory(prefix="bgpconform-plan-") as scratch:
        listing = Path(scratch) / "node-ids.json"
        try:
            done = subprocess.run(
                pytest_argv("-p", "bgpconform.shards.listing", "--collect-only", *pytest_args),
                cwd=root,
                env={**os.environ, LISTING_VARIABLE: str(listing)},
                capture_output=True,
                text=True,
                timeout=COLLECT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(
                f"collecting the scenarios took over {COLLECT_TIMEOUT:g} s; nothing ran"
            ) from exc
        node_ids: list[str] = json.loads(listing.read_text(encoding="utf-8")) if listing.is_file() else []
    if done.returncode != 0 or not node_ids:
        raise HarnessError(
            f"collecting the scenarios found {len(node_ids)} to run (pytest exit {done.returncode}); "
            f"nothing ran:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return node_ids


@dataclass(frozen=True)
class Cost:
    own: float  # the scenario's own steps, in seconds
    setup: float  # its Background from wherever the lab was: paid once per shard


def costs_from(report_file: Path | None) -> dict[str, Cost]:
    """Each scenario's cost as an earlier run's report.json shows it; none without one."""
    if report_file is None:
        return {}
    try:
        report = RunReport.model_validate_json(report_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"--costs-from {report_file}: not a readable report.json ({exc}); fix: name a run's "
            "report.json, or leave the option out to count every scenario the same"
        ) from exc
    background = {
        scenario.node_id: sum(step.duration for step in scenario.steps if step.background)
        for scenario in report.scenarios
    }
    setup: dict[str, float] = {}
    for scenario in report.scenarios:
        setup[scenario.feature] = max(setup.get(scenario.feature, 0.0), background[scenario.node_id])
    return {
        s.node_id: Cost(max(0.0, s.duration - background[s.node_id]), setup[s.feature])
        for s in report.scenarios
    }


# How many of a reports directory's newest runs a deal takes its durations from: one run's are noisy
# (GoBGP's random dial delays, labs slowing each other), and a deal off by a few seconds is a run
# a few seconds longer.
RUNS_FOR_COSTS = 5
RUNS_LOOKED_AT = 40  # newest first; the rest of a long history is not read


@dataclass(frozen=True)
class Alike:
    """What makes an earlier run's durations this run's: the same topology file, the same shortcuts,
    one lab. A sharded run records each Background from wherever its shard's lab happened to be, so
    it tells nothing of what a feature costs a fresh lab; a run on one lab walks the stages in the
    collection's order, as each shard does."""

    topology_sha256: str
    shortcuts: frozenset[str]

    def matches(self, report: RunReport) -> bool:
        provenance = report.run.provenance
        named = frozenset(d.split(":", 1)[0] for d in provenance.shortcuts) if provenance else frozenset()
        return (
            report.run.target == "lab"
            and not report.run.shards
            and report.run.topology_sha256 == self.topology_sha256
            and named == self.shortcuts
        )


def costs_for(source: Path, alike: Alike) -> tuple[dict[str, Cost], str]:
    """The costs a deal uses and where they came from. `source`: a report.json, or a reports
    directory, whose newest runs alike this one give each scenario its cost (else its latest run,
    said to be unlike, else every scenario counts the same)."""
    if not source.is_dir():
        return costs_from(source), f"durations in {source}"
    runs = sorted(
        (d for d in source.iterdir() if d.is_dir() and not d.is_symlink() and d.name[:1].isdigit()),
        key=lambda d: d.name,
        reverse=True,
    )[:RUNS_LOOKED_AT]
    chosen: list[Path] = []
    for run in runs:
        try:
            report = RunReport.model_validate_json((run / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if alike.matches(report):
            chosen.append(run / "report.json")
            if len(chosen) == RUNS_FOR_COSTS:
                break
    if chosen:
        every = [costs_from(report) for report in chosen]
        nodes = {node for costs in every for node in costs}
        # Own steps: the median. Setup: the most any of them paid, as a run records its Background
        # from wherever its lab was, and only a run where the feature came first to a fresh lab shows
        # what a shard pays for it; the median would take the cheap case for the typical one.
        combined = {
            node: Cost(
                statistics.median(c[node].own for c in every if node in c),
                max(c[node].setup for c in every if node in c),
            )
            for node in nodes
        }
        return combined, f"durations of the {len(chosen)} newest one-lab runs alike in {source}"
    latest = source / "latest" / "report.json"
    if latest.is_file():
        try:
            return costs_from(latest), f"durations in {latest} (a run with another topology or shortcuts)"
        except ConfigError:
            return {}, f"every scenario counted the same: {latest} could not be read"
    return {}, "every scenario counted the same"


def deal(node_ids: Sequence[str], count: int, costs: Mapping[str, Cost]) -> list[Shard]:
    """At most `count` shards, none empty."""
    if count < 1:
        raise ConfigError(f"--shards {count}: fix: give 1 or more")
    known = [costs[node] for node in node_ids if node in costs]
    typical = (
        Cost(statistics.median(c.own for c in known), statistics.median(c.setup for c in known))
        if known
        else Cost(1.0, 0.0)
    )
    cost = {node: costs.get(node, typical) for node in node_ids}
    order = {node: index for index, node in enumerate(node_ids)}
    bins: list[list[str]] = [[] for _ in range(min(count, len(node_ids)))]
    own = [0.0] * len(bins)
    setup = [0.0] * len(bins)

    def load(index: int, extra: Cost | None = None) -> float:
        if extra is None:
            return setup[index] + own[index]
        return max(setup[index], extra.setup) + own[index] + extra.own

    for node in sorted(node_ids, key=lambda n: (-(cost[n].own + cost[n].setup), order[n])):
        chosen = min(range(len(bins)), key=lambda i: (load(i, cost[node]), i))
        bins[chosen].append(node)
        own[chosen] += cost[node].own
        setup[chosen] = max(setup[chosen], cost[node].setup)
    # A shard left empty (a lab would cost more than the scenarios it could take) is not started.
    filled = [(nodes, load(index)) for index, nodes in enumerate(bins) if nodes]
    return [
        Shard(number, tuple(sorted(nodes, key=order.__getitem__)), expected)
        for number, (nodes, expected) in enumerate(filled, start=1)
    ]


def write_plan(shards: Sequence[Shard], path: Path) -> None:
    path.write_text(json.dumps({"shards": [list(s.node_ids) for s in shards]}, indent=1) + "\n")


def read_shard(given: str) -> tuple[Path, frozenset[str]]:
    """`FILE:N` -> the plan's file and shard N's scenarios."""
    file_part, _, number_part = given.rpartition(":")
    fix = "fix: give --shard=PLAN.json:N, N counting from 1 (`bgpconform suite --shards` writes the plan)"
    if not file_part or not number_part.isdigit():
        raise ConfigError(f"--shard {given!r}: not FILE:N; {fix}")
    path, number = Path(file_part), int(number_part)
    try:
        shards = json.loads(path.read_text(encoding="utf-8"))["shards"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--shard {given!r}: {path} is not a shard plan ({exc}); {fix}") from exc
    if not 1 <= number <= len(shards):
        raise ConfigError(f"--shard {given!r}: the plan has shards 1 to {len(shards)}; {fix}")
    return path, frozenset(shards[number - 1])
