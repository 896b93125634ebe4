"""Which scenarios each shard runs: the collected scenarios dealt out by their expected cost.

A lab mostly waits on protocol timers, so labs side by side finish sooner than one lab running every
scenario in turn. A scenario costs its own steps plus, once per shard, the stages its Background
brings the lab to: a shard is expected to take the dearest Background among its scenarios plus the
sum of their own steps. Both come from an earlier report where one is given (own: the scenario's
duration less its Background steps; Background: the longest its feature's took there, which from a
run of a single lab understates a start from nothing), else every scenario counts the same. Dearest
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
