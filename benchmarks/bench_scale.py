"""Prints what the scale topology costs on this machine: 50 nodes, 48 peering, 500 LoadBalancer services.

Runs the scale check (`features/8_scale.feature`) on `topologies/lab-scale.yaml` as the suite would,
with the short-timer shortcut (1.13's own dialling adds minutes of waiting and nothing about scale),
samples the memory of every lab process meanwhile, and once the check has passed times listing 1,000
pods (`scale_probe.py`). Figures, not asserts; each printed next to its goal:
  all sessions established     < 60 s   (router configured -> every session, 48 nodes)
  500th service -> its route   < 60 s   (and every route, counted from the same moment)
  peak memory, whole lab       < 4 GiB  (PSS of the pytest process and every process it started or
                                         that lives in one of the run's namespaces: gobgpd, FRR, nginx)
  list of 1,000 pods           < 20 ms  (median of 20: the API's answer, from the request to the last
                                         byte as SIG Scalability's "API call latency" counts it, read by a
                                         process of its own; beside it, the harness's client decoding the
                                         list, from a process of its own and in the lab's process)
Afterwards it checks that the run left no namespace and no process behind.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.scale_probe import OUTPUT_VARIABLE

REPO = Path(__file__).resolve().parents[1]
TOPOLOGY = REPO / "topologies" / "lab-scale.yaml"
DEADLINE = 3600.0
GIB = 1024**3


def namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def _pss(process: psutil.Process) -> int:
    try:
        return int(process.memory_full_info().pss)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0


RUNS = Path("/run/bgpconform")  # each lab's run directory, its owner's pid in owner.json


def lab_runs_of(pid: int) -> set[str]:
    """The lab runs the process `pid` owns: other labs on the machine (a test run beside the
    benchmark) are neither measured nor taken for leftovers."""
    owned = set()
    for owner in RUNS.glob("*/owner.json"):
        try:
            if json.loads(owner.read_text()).get("owner_pid") == pid:
                owned.add(owner.parent.name)
        except (OSError, ValueError):
            continue
    return owned


class MemorySampler:
    """Peak of the summed PSS (shared pages counted once) over the run's processes, once a second."""

    def __init__(self, root: int, before: set[str]) -> None:
        self.root = root
        self.before = before
        self.runs: set[str] = set()
        self.peak = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> set[int]:
        pids: set[int] = set()
        try:
            root = psutil.Process(self.root)
            pids = {root.pid, *(child.pid for child in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            return pids
        self.runs |= lab_runs_of(self.root)
        for name in namespaces() - self.before:
            if not any(name.startswith(f"bgpc-{run}-") for run in self.runs):
                continue
            listed = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
            )
            pids.update(int(pid) for pid in listed.stdout.split())
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = self._pids()
            total = 0
            for pid in pids:
                try:
                    total += _pss(psutil.Process(pid))
                except psutil.NoSuchProcess:
                    continue
            if total > self.peak:
                self.peak, self.peak_processes = total, len(pids)
            self._stop.wait(1.0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def run_once(topology: Path) -> dict[str, Any]:
    before = namespaces()
    with tempfile.TemporaryDirectory(prefix="bgpconform-bench-scale-") as scratch:
        probe = Path(scratch) / "probe.json"
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={REPO}"]
        argv += ["-p", "benchmarks.scale_probe", f"--topology={topology}", "--lab-shortcut=short-bgp-timers"]
        argv += ["-m", "scale", f"--reports-dir={Path(scratch) / 'reports'}", "features/test_walkthrough.py"]
        env = {**os.environ, "PYTHONPATH": str(REPO), OUTPUT_VARIABLE: str(probe)}
        began = time.monotonic()
        child = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        sampler = MemorySampler(child.pid, before)
        sampler.start()
        output, _ = child.communicate(timeout=DEADLINE)
        sampler.stop()
        wall = time.monotonic() - began
        if child.returncode != 0 or not probe.exists():
            sys.exit(f"the scale check failed (exit {child.returncode}):\n{output[-4000:]}")
        figures: dict[str, Any] = json.loads(probe.read_text())
        report = json.loads((Path(scratch) / "reports" / "latest" / "report.json").read_text())
    timings = {t["name"]: t["seconds"] for s in report["scenarios"] for t in s.get("timings", [])}
    counts = {k: v for s in report["scenarios"] for k, v in (s.get("counts") or {}).items()}
    left_namespaces = sorted(
        name for name in namespaces() - before if any(name.startswith(f"bgpc-{run}-") for run in sampler.runs)
    )
    left_processes = sorted(
        str(p.info["name"])
        for p in psutil.process_iter(["name", "cmdline"])
        if any(
            mark in " ".join(p.info["cmdline"] or [])
            for run in sampler.runs
            for mark in (f"/run/bgpconform/{run}/", f"bgpc-{run}-")
        )
    )
    left_directories = sorted(run for run in sampler.runs if (RUNS / run).exists())
    return {
        **figures,
        "wall": wall,
        "timings": timings,
        "counts": counts,
        "peak_pss": sampler.peak,
        "peak_processes": sampler.peak_processes,
        "left_namespaces": left_namespaces,
        "left_processes": left_processes,
        "left_directories": left_directories,
        "lab_runs": sorted(sampler.runs),
    }


def _timing(timings: dict[str, float], start: str) -> float | None:
    return next((seconds for name, seconds in timings.items() if name.startswith(start)), None)


Figure = tuple[str, float | None, str, str, str]  # label, value, unit, goal, this round's detail


def goal_figures(figures: dict[str, Any]) -> list[Figure]:
    """Each figure the issue sets a goal for, from one round."""
    timings: dict[str, float] = figures["timings"]
    paths = next(iter(figures["counts"].values()), None)
    pods = figures["pods_listed"]
    return [
        ("router configured -> all sessions established",
         timings.get("router configured -> every session established"), "s", "< 60 s", ""),
        ("500th service created -> its route",
         _timing(timings, "last service created -> its /32"), "s", "< 60 s", ""),
        ("500th service created -> every route",
         _timing(timings, "last service created -> all"), "s", "< 60 s", ""),
        ("router's paths to the services' LB IPs",
         float(paths) if paths else None, "", "48 x 500 = 24000", ""),
        ("peak memory of the whole lab (PSS)", figures["peak_pss"] / GIB, "GiB", "< 4 GiB",
         f"{figures['peak_processes']} processes"),
        (f"list of {pods} pods: the API's answer (median)", figures["answer_median"] * 1000, "ms", "< 20 ms",
         f"max {figures['answer_max'] * 1000:.1f} ms; request to last byte, from a process of its own"),
        ("  decoded by the harness's client, own process", figures["apart_list_median"] * 1000, "ms", "",
         f"max {figures['apart_list_max'] * 1000:.1f} ms"),
        ("  the same client in the lab's process", figures["list_median"] * 1000, "ms", "",
         f"max {figures['list_max'] * 1000:.1f} ms; beside 50 emulated agents"),
    ]  # fmt: skip


def other_figures(figures: dict[str, Any]) -> list[Figure]:
    """The rest of the check's timings, with no goal: how long the batches took each way."""
    timings: dict[str, float] = figures["timings"]
    shown: list[Figure] = []
    for name in ("services created", "answering from outside", "services removed", "withdrawn"):
        label = next((n for n in timings if name in n), name)
        shown.append((label, next((s for n, s in timings.items() if name in n), None), "s", "", ""))
    shown.append(("whole run, process start to exit", figures["wall"], "s", "", ""))
    return shown


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    shown = f"{value:.0f}" if not unit else f"{value:.2f}" if unit == "GiB" else f"{value:.1f}"
    return f"{shown} {unit}".rstrip()


def _line(label: str, value: str, notes: list[str]) -> None:
    said = "; ".join(note for note in notes if note)
    print(f"  {label:<46} {value:>12}" + (f"   ({said})" if said else ""))


def report(figures: dict[str, Any]) -> None:
    for label, value, unit, goal, detail in goal_figures(figures) + other_figures(figures):
        _line(label, _value(value, unit), [f"goal {goal}" if goal else "", detail])
    left = figures["left_namespaces"] + figures["left_processes"] + figures["left_directories"]
    runs = ", ".join(figures["lab_runs"]) or "none found"
    shown = ", ".join(left) if left else "nothing (namespaces, daemons, files)"
    print(f"  left behind by lab run {runs}: {shown}")


def report_medians(rounds: list[dict[str, Any]]) -> None:
    """The median of each figure over the rounds, with its range: what README quotes."""
    print(f" median of {len(rounds)} rounds")
    per_round = [goal_figures(figures) + other_figures(figures) for figures in rounds]
    for index, (label, _, unit, goal, _) in enumerate(per_round[0]):
        values = [value for found in per_round if (value := found[index][1]) is not None]
        if not values:
            _line(label, "-", [])
            continue
        spread = f"range {_value(min(values), unit)} - {_value(max(values), unit)}"
        _line(label, _value(statistics.median(values), unit), [f"goal {goal}" if goal else "", spread])
    left = sum(len(f["left_namespaces"] + f["left_processes"] + f["left_directories"]) for f in rounds)
    print(f"  left behind over all rounds: {left or 'nothing'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--topology", type=Path, default=TOPOLOGY)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"scale benchmark: {args.rounds} round(s), topology {args.topology}")
    rounds = []
    for round_number in range(1, args.rounds + 1):
        print(f" round {round_number}", flush=True)
        rounds.append(run_once(args.topology.resolve()))
        report(rounds[-1])
    if len(rounds) > 1:
        report_medians(rounds)


if __name__ == "__main__":
    main()
