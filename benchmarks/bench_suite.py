"""Prints the wall time of the whole conformance suite on the lab next to the time it spent waiting
for the system under test (BGP sessions to come up, routes to arrive, pods to run, ...).

Figures, not asserts. Targets: the whole suite under 60 s on 2 cores; wall time under 1.5x the
protocol waits (the harness's own work, lab start and teardown included, adds less than half again);
the report (raw evidence read at teardown, then every file written and redacted) under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.suite_waits import OUTPUT_VARIABLE

REPO = Path(__file__).resolve().parents[1]
SUITE_DEADLINE = 900.0

CATEGORIES = (
    ("BGP sessions", ("session",)),
    ("routes at the router", ("at the router", "via", "route")),
    ("outside client HTTP", ("HTTP",)),
    ("LB IPAM", ("external IP", "condition", "LB IPAM")),
    ("Cilium CRD and logs", ("served under", "log to contain", "CRD")),
)


def category(expected: str) -> str:
    for name, words in CATEGORIES:
        if any(word in expected for word in words):
            return name
    return "nodes and pods"


def run_once(topology: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bgpconform-bench-") as scratch:
        output = Path(scratch) / "waits.json"
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={REPO}"]
        argv += ["-p", "benchmarks.suite_waits", f"--topology={topology}", "features/test_walkthrough.py"]
        env = {**os.environ, "PYTHONPATH": str(REPO), OUTPUT_VARIABLE: str(output)}
        began = time.monotonic()
        done = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=SUITE_DEADLINE, check=False
        )
        process_wall = time.monotonic() - began
        if done.returncode != 0 or not output.exists():
            sys.exit(
                f"the suite failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
            )
        figures: dict[str, object] = json.loads(output.read_text())
    figures["process_wall"] = process_wall
    cost = re.search(r"report cost: written in ([\d.]+) s, raw evidence read in ([\d.]+) s", done.stdout)
    figures["report_seconds"] = float(cost.group(1)) + float(cost.group(2)) if cost else None
    return figures


def report(figures: dict[str, object]) -> None:
    waits = figures["waits"]
    assert isinstance(waits, list)
    by_category: dict[str, float] = defaultdict(float)
    for wait in waits:
        by_category[category(wait["expected"])] += wait["elapsed"]
    waited = sum(by_category.values())
    process_wall = float(figures["process_wall"])  # type: ignore[arg-type]
    session_wall = float(figures["session_wall"])  # type: ignore[arg-type]
    print(f"  whole suite, process start to exit   {process_wall:7.2f} s   (set by the protocol waits)")
    print(f"  pytest session                       {session_wall:7.2f} s")
    print(f"  protocol waits ({len(waits):3d} waits)          {waited:7.2f} s")
    for name, seconds in sorted(by_category.items(), key=lambda item: -item[1]):
        print(f"    {name:<34} {seconds:7.2f} s")
    print(f"  wall / protocol waits                {process_wall / waited:7.2f} x   (target < 1.2 x)")
    print(f"  harness's own time                   {process_wall - waited:7.2f} s")
    report_seconds = figures.get("report_seconds")
    if isinstance(report_seconds, float):
        print(f"  of which writing the report          {report_seconds:7.2f} s   (target < 2 s)")
    else:
        print("  writing the report                   (no report line in the output)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", type=Path, default=REPO / "topologies" / "lab.yaml")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"suite benchmark: {args.rounds} round(s), topology {args.topology}")
    for round_number in range(1, args.rounds + 1):
        print(f" round {round_number}")
        report(run_once(args.topology.resolve()))


if __name__ == "__main__":
    main()
