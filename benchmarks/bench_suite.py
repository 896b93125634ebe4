"""Prints where the conformance suite's time goes on the lab: per feature (the walkthrough's stages,
then faults and upgrades) and per kind, next to the whole run's wall time.

Kinds: protocol (waits for BGP to act: sessions, routes arriving or leaving at the router, the
outside client's answers behind them), emulation (waits for the emulated kubelet and Cilium: nodes,
pods, CRDs, LB IPAM, agents' logs) and harness (everything else: the harness's own calls, lab start
and teardown, reports). Figures, not asserts. Targets: with faithful timers, wall time under 1.2x
the protocol waits; the report under 2 s. The 30 s goal on 2 cores is for the suite with every
shortcut on labs side by side: `bench_sharded.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.suite_waits import OUTPUT_VARIABLE
from bgpconform.cilium.bgp_timers import GOBGP_MIN_CONNECT_RETRY
from bgpconform.lab.shortcuts import SHORTCUTS

REPO = Path(__file__).resolve().parents[1]
SUITE_DEADLINE = 900.0

UP = re.compile(r"(?<!not )established")  # a wait for a session up, not for one still down
PROTOCOL = {"BGP sessions", "routes at the router", "outside client HTTP"}
CATEGORIES = (
    ("BGP sessions", ("session",)),
    ("routes at the router", ("at the router", "via", "route")),
    ("outside client HTTP", ("HTTP", "stream", "requests answered")),  # the probe's traffic via the router
    ("LB IPAM", ("external IP", "condition", "LB IPAM")),
    ("Cilium CRD and logs", ("served under", "log to contain", "CRD")),
)


def category(expected: str) -> str:
    for name, words in CATEGORIES:
        if any(word in expected for word in words):
            return name
    return "nodes and pods"


def kind(category_name: str) -> str:
    return "protocol" if category_name in PROTOCOL else "emulation"


def run_once(topology: Path, shortcuts: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bgpconform-bench-") as scratch:
        output = Path(scratch) / "waits.json"
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={REPO}"]
        argv += ["-p", "benchmarks.suite_waits", f"--topology={topology}", "features/test_walkthrough.py"]
        argv += [f"--lab-shortcut={name}" for name in shortcuts]
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
    per_feature(figures)
    dial_floor(waits)
    print(f"  harness's own time                   {process_wall - waited:7.2f} s")
    report_seconds = figures.get("report_seconds")
    if isinstance(report_seconds, float):
        print(f"  of which writing the report          {report_seconds:7.2f} s   (target < 2 s)")
    else:
        print("  writing the report                   (no report line in the output)")


def per_feature(figures: dict[str, object]) -> None:
    """Each feature's scenarios' wall time, split into protocol and emulation waits and the rest."""
    scenarios, waits = figures["scenarios"], figures["waits"]
    assert isinstance(scenarios, list)
    assert isinstance(waits, list)
    feature_of = {s["nodeid"]: s["feature"] or "(outside a scenario)" for s in scenarios}
    wall: dict[str, float] = defaultdict(float)
    for scenario in scenarios:
        wall[feature_of[scenario["nodeid"]]] += scenario["seconds"]
    split: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for wait in waits:
        split[feature_of.get(wait["nodeid"], "(outside a scenario)")][kind(category(wait["expected"]))] += (
            wait["elapsed"]
        )
    print(f"  {'feature':<26} {'wall':>7} {'protocol':>9} {'emulation':>10} {'harness':>8}")
    for feature in sorted(wall):
        protocol, emulation = split[feature]["protocol"], split[feature]["emulation"]
        harness = max(0.0, wall[feature] - protocol - emulation)
        print(f"  {feature:<26} {wall[feature]:7.1f} {protocol:9.1f} {emulation:10.1f} {harness:8.1f}")


def report_medians(rounds: list[dict[str, Any]]) -> None:
    """The whole suite's figures as medians over the rounds, with their range: what README quotes."""
    walls = [float(figures["process_wall"]) for figures in rounds]
    waited = [sum(float(wait["elapsed"]) for wait in figures["waits"]) for figures in rounds]
    ratios = [wall / waits for wall, waits in zip(walls, waited, strict=True)]
    print(f" median of {len(rounds)} rounds (range)")
    for label, values, unit in (
        ("whole suite, process start to exit", walls, " s"),
        ("waits", waited, " s"),
        ("wall / waits", ratios, " x"),
    ):
        median, low, high = statistics.median(values), min(values), max(values)
        print(f"  {label:<36} {median:7.2f}{unit}   ({low:.2f} - {high:.2f})")


def dial_floor(waits: list[dict[str, object]]) -> None:
    """What no shortcut can cut: a session not up when the wait began waits for a GoBGP dial, and GoBGP
    dials 5-9 s apart at best, however short the connect retry (docs/verified-facts.md)."""
    dialled = [
        float(wait["elapsed"])  # type: ignore[arg-type]
        for wait in waits
        if UP.search(str(wait["expected"])) and float(wait["elapsed"]) >= 1.0  # type: ignore[arg-type]
    ]
    print(
        f"  waits for a session to come up         {sum(dialled):7.2f} s   ({len(dialled)} waits; GoBGP"
        f" dials {GOBGP_MIN_CONNECT_RETRY}-{2 * GOBGP_MIN_CONNECT_RETRY - 1} s apart at best; router-dials:"
        " the router's connect retry)"
    )


def longest(figures: dict[str, object], count: int) -> None:
    """The waits that cost most, each with what it waited for: where the next cut would come from."""
    waits = figures["waits"]
    assert isinstance(waits, list)
    for wait in sorted(waits, key=lambda w: -float(w["elapsed"]))[:count]:
        scenario = str(wait["nodeid"]).rsplit("::", 1)[-1]
        print(f"    {float(wait['elapsed']):6.2f} s  {str(wait['expected'])[:90]}  [{scenario[:60]}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", type=Path, default=REPO / "topologies" / "lab.yaml")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--shortcut",
        action="append",
        nargs="?",
        const="short-bgp-timers",
        default=[],
        metavar="NAME",
        help="run with this lab shortcut (repeatable; alone: short-bgp-timers)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="with every shortcut the lab has (the 30 s target's run)"
    )
    parser.add_argument("--longest", type=int, default=0, help="also print the N longest waits")
    args = parser.parse_args()
    chosen = sorted(SHORTCUTS) if args.fast else sorted(set(args.shortcut))
    timers = f"shortcuts {', '.join(chosen)}" if chosen else "faithful timers"
    print(f"suite benchmark: {args.rounds} round(s), topology {args.topology}, {timers}")
    rounds: list[dict[str, Any]] = []
    for round_number in range(1, args.rounds + 1):
        print(f" round {round_number}", flush=True)
        rounds.append(run_once(args.topology.resolve(), chosen))
        report(rounds[-1])
        longest(rounds[-1], args.longest)
    if len(rounds) > 1:
        report_medians(rounds)


if __name__ == "__main__":
    main()
