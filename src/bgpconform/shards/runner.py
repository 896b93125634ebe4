"""Run a plan's shards side by side, each a pytest process with a lab of its own, then merge.

Each shard is the user's own pytest command plus `--shard=PLAN:N` and a reports directory under the
merged run's (`shards/shard-N`), so a shard replays alone from the command the report shows. The
merged report goes where a single run's would (`--reports-dir`, default reports/) and `latest`
points at it.

A stop reaches every shard (`bgpconform.side_by_side`); what they wrote is still merged, and marked
interrupted.
"""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bgpconform.child_pytest import pytest_argv
from bgpconform.report.merge import ShardOutcome, merge, write_merged
from bgpconform.report.model import RunReport
from bgpconform.report.redact import Redactor
from bgpconform.report.runinfo import new_run_id
from bgpconform.report.writer import LATEST, point_latest
from bgpconform.shards.plan import Shard, write_plan
from bgpconform.side_by_side import Children, run_child, stops_passed_on, wait_all

PLAN_FILE = "shards.json"


@dataclass(frozen=True)
class ShardedRun:
    directory: Path  # the merged report's
    report: RunReport
    shards: list[ShardOutcome]
    interrupted: bool  # a stop signal arrived: the shards stopped early, the report says so


def shard_command(shard: Shard, plan: Path, reports: Path, pytest_args: Sequence[str]) -> list[str]:
    return pytest_argv(*pytest_args, f"--shard={plan}:{shard.number}", f"--reports-dir={reports}")


def _run_shard(
    shard: Shard, root: Path, plan: Path, directory: Path, pytest_args: Sequence[str], *, children: Children
) -> ShardOutcome:
    reports = directory / "shards" / f"shard-{shard.number}"
    command = shard_command(shard, plan, reports, pytest_args)
    log = directory / "shards" / f"shard-{shard.number}.log"
    began = time.monotonic()
    returncode = run_child(command, cwd=root, log=log, children=children)
    seconds = time.monotonic() - began
    report: RunReport | None = None
    written: Path | None = None
    try:
        report = RunReport.model_validate_json((reports / LATEST / "report.json").read_text(encoding="utf-8"))
        written = (reports / LATEST).resolve()
    except (OSError, ValueError):
        pass  # none, or cut short: the merge names the shard as one that wrote no report
    return ShardOutcome(
        shard.number, shlex.join(command), returncode, seconds, shard.node_ids, report, written, log
    )


def run_sharded(
    shards: Sequence[Shard],
    root: Path,
    reports: Path,
    pytest_args: Sequence[str],
    *,
    command: str,
    order: Sequence[str],
    redactor: Redactor,
    progress: Callable[[ShardOutcome], None] = lambda _: None,
) -> ShardedRun:
    """Every shard at once (a lab mostly waits on timers), merged with the scenarios in `order` (the
    collection's, as one run would list them); the shards in their order."""
    started_at = datetime.now(UTC)
    began = time.monotonic()
    run_id = new_run_id(started_at)
    directory = (reports / run_id).resolve()
    (directory / "shards").mkdir(parents=True)
    plan = directory / PLAN_FILE
    write_plan(shards, plan)
    if not any(arg == "--lab-seed" or arg.startswith("--lab-seed=") for arg in pytest_args):
        # One seed for every lab, as one run has one: the merged report names it, and it replays
        # any shard's random choices.
        pytest_args = [*pytest_args, f"--lab-seed={secrets.randbits(32)}"]
    children = Children()
    with (
        stops_passed_on(children),
        ThreadPoolExecutor(max_workers=len(shards), thread_name_prefix="shard") as pool,
    ):
        futures = [
            pool.submit(_run_shard, shard, root, plan, directory, pytest_args, children=children)
            for shard in shards
        ]
        wait_all(futures, children, progress)
        outcomes = [future.result() for future in futures]
    report = merge(
        outcomes,
        merged_directory=directory,
        run_id=run_id,
        started_at=started_at,
        duration=time.monotonic() - began,
        command=command,
        order=order,
        interrupted=children.stopped,
    )
    write_merged(directory, report, outcomes)
    redactor.tree(directory)  # the shards' own directories were; their logs and the merged files now
    point_latest(reports, directory)
    return ShardedRun(directory, report, outcomes, children.stopped)
