"""Prints how long the whole suite takes on the lab split over labs side by side
(`bgpconform suite --shards N`) with every shortcut the lab has: the figure the 30 s goal on 2 cores
is about. Figures, not asserts.

Each round is the command a user types, dealing the scenarios out as `bgpconform suite` does by
default in the project: by the newest one-lab runs in reports/ on the same topology with the same
shortcuts (`python -m benchmarks.bench_suite --fast` writes such runs), else by its latest run, else
each counts the same. Wall time counts from the command's start (collection, every lab's start and
teardown, the merged report) to its exit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.rounds import labs_at_once_option, print_median
from bgpconform.lab.shortcuts import SHORTCUTS
from bgpconform.report.model import RunReport

REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 30.0
DEADLINE = 900.0


def run_once(shards: int, topology: Path, out: Path, costs: Path) -> tuple[float, RunReport, str]:
    argv = [sys.executable, "-m", "bgpconform.cli", "suite", "--shards", str(shards), "--out", str(out)]
    argv += ["--costs-from", str(costs)]
    argv += ["--", f"--topology={topology}", *(f"--lab-shortcut={name}" for name in sorted(SHORTCUTS))]
    began = time.monotonic()
    done = subprocess.run(
        argv,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    wall = time.monotonic() - began
    report_file = out / "latest" / "report.json"
    if done.returncode != 0 or not report_file.is_file():
        sys.exit(
            f"the sharded suite failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
        )
    dealt_by = done.stdout.split("\n", 1)[0].partition(" side by side (")[2].rstrip(")")
    return wall, RunReport.model_validate_json(report_file.read_text()), dealt_by


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", type=Path, default=REPO / "topologies" / "lab.yaml")
    parser.add_argument("--rounds", type=int, default=1)
    labs_at_once_option(parser, "--shards", "labs side by side")
    args = parser.parse_args()
    print(
        f"sharded suite benchmark: {args.rounds} round(s), {args.shards} labs side by side on "
        f"{os.cpu_count()} cores, topology {args.topology}, every shortcut ({', '.join(sorted(SHORTCUTS))})"
    )
    walls: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bgpconform-bench-sharded-") as scratch:
        out = Path(scratch)
        history = REPO / "reports"  # the project's runs, where `./run suite` and the bench_suite write
        for round_number in range(1, args.rounds + 1):
            wall, report, dealt_by = run_once(args.shards, args.topology.resolve(), out, history)
            walls.append(wall)
            shards = ", ".join(f"{shard.seconds:.1f}" for shard in report.run.shards)
            print(
                f" round {round_number}: {wall:6.1f} s, command start to exit (goal < {GOAL_SECONDS:.0f} s); "
                f"{report.verdict.value}, {len(report.scenarios)} scenarios; shards {shards} s; "
                f"dealt by {dealt_by}",
                flush=True,
            )
    print_median(walls, GOAL_SECONDS)


if __name__ == "__main__":
    main()
