"""Prints how long the version matrix takes on the lab (`bgpconform matrix`): every Cilium minor from
1.13 to 1.19, each BGP API it has, with every shortcut the lab has and labs side by side (default two
per core): the figure the goal of seven releases under 5 minutes on 2 cores is about. Figures, not
asserts.

Wall time counts from the command's start (every run's lab, suite and report, the matrix page) to
its exit; each run's own time and verdict are printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.rounds import labs_at_once_option, print_median
from bgpconform.lab.shortcuts import SHORTCUTS

REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 300.0
GOAL_RELEASES = 7
DEADLINE = 3600.0


def run_once(topologies: str, side_by_side: int, out: Path) -> tuple[float, list[dict[str, object]]]:
    argv = [
        *(sys.executable, "-m", "bgpconform.cli", "matrix", "--topologies", topologies),
        *("--side-by-side", str(side_by_side), "--out", str(out), "--"),
        *(f"--lab-shortcut={name}" for name in sorted(SHORTCUTS)),
    ]
    began = time.monotonic()
    with subprocess.Popen(
        argv,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as matrix:
        try:
            output, _ = matrix.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            matrix.send_signal(signal.SIGTERM)  # passed on to each run, which removes its lab
            output, _ = matrix.communicate()
    wall = time.monotonic() - began
    summary = out / "matrix.json"
    if not summary.is_file():
        sys.exit(f"the matrix wrote no matrix.json (exit {matrix.returncode}):\n{output[-5000:]}")
    runs: list[dict[str, object]] = json.loads(summary.read_text())
    return wall, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topologies", default="lab.yaml", help="files under topologies/, comma-separated")
    parser.add_argument("--rounds", type=int, default=1)
    labs_at_once_option(parser, "--side-by-side", "labs at once")
    args = parser.parse_args()
    print(
        f"matrix benchmark: {args.rounds} round(s), {args.side_by_side} labs side by side on "
        f"{os.cpu_count()} cores, topologies {args.topologies}, "
        f"every shortcut ({', '.join(sorted(SHORTCUTS))})"
    )
    walls: list[float] = []
    for round_number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="bgpconform-bench-matrix-") as scratch:
            wall, runs = run_once(args.topologies, args.side_by_side, Path(scratch) / "matrix")
        walls.append(wall)
        releases = {".".join(str(run["cilium"]).split(".")[:2]) for run in runs}
        conformant = sum(run["verdict"] == "conformant" for run in runs)
        print(
            f" round {round_number}: {wall:6.1f} s, command start to exit (goal < {GOAL_SECONDS:.0f} s "
            f"for {GOAL_RELEASES} releases); {len(releases)} releases in {len(runs)} runs, "
            f"{conformant} conformant",
            flush=True,
        )
        for run in runs:
            print(
                f"   {run['topology']:<14} Cilium {run['cilium']:<8} {run['bgp_api']:<3} "
                f"{run['verdict']:<15} {run['seconds']:6.1f} s"
            )
    print_median(walls, GOAL_SECONDS)


if __name__ == "__main__":
    main()
