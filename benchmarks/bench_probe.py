"""Prints what the fault scenarios' traffic probe sustains on this machine, and what it costs.

A lab is brought to the walkthrough's last stage (nginx behind an LB IP, announced by every peering
node); the probe then runs at several rates, through the real router, kernel routes and nginx, each
until `rate x window` requests have been answered (or twice the window has passed, which the achieved
rate then shows). Per rate it prints the requests per second achieved, the slowest answer, failed
requests, and the CPU the harness process (request reader and router sampler) and the whole machine
used meanwhile. Figures, not asserts: the goal is the default rate (20/s) with no failure and the
harness under 10% of one core.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from ipaddress import IPv4Network
from pathlib import Path

from bgpconform.disruption.probe import TrafficProbe
from bgpconform.stage import Stage
from bgpconform.targets.lab import LabTarget
from bgpconform.topology import load_topology
from bgpconform.waiting import WaitTimeout, wait_for
from bgpconform.walkthrough.machine import StageMachine

REPO = Path(__file__).resolve().parents[1]
RATES = (20, 50, 100, 200)


def _machine_cpu() -> float:
    """Seconds of CPU the whole machine has spent (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(value) for index, value in enumerate(fields) if index not in (3, 4))  # not idle/iowait
    return busy / os.sysconf("SC_CLK_TCK")


def measure(walkthrough: StageMachine, rate: int, window: float) -> dict[str, float]:
    topology = walkthrough.topology
    settings = topology.disruption.model_copy(update={"rate": rate})
    address = walkthrough.service()["status"]["loadBalancer"]["ingress"][0]["ip"]
    probe = TrafficProbe(
        walkthrough.target.client,
        walkthrough.target.router,
        url=walkthrough.service_url(),
        prefix=IPv4Network(f"{address}/32"),
        settings=settings,
        title=f"bench at {rate}/s",
    )
    cpu, machine = time.process_time(), _machine_cpu()
    probe.start()
    wanted = int(rate * window)
    # Until the window's worth of requests has been answered; a probe that falls behind shows it.
    with contextlib.suppress(WaitTimeout):
        wait_for(
            probe.requests,
            lambda answered: len(answered) >= wanted,
            expected=f"{wanted} requests",
            timeout=2 * window,
        )
    timeline = probe.stop()
    harness_cpu, machine_cpu = time.process_time() - cpu, _machine_cpu() - machine
    requests = timeline.requests
    return {
        "achieved": len(requests) / timeline.duration,
        "failed": float(sum(1 for r in requests if not r.ok)),
        "slowest_ms": 1000 * max((r.elapsed for r in requests), default=0.0),
        "harness_core": harness_cpu / timeline.duration,
        "machine_cores": machine_cpu / timeline.duration,
        "samples_per_s": len(timeline.router) / timeline.duration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", type=Path, default=REPO / "topologies" / "lab.yaml")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per rate")
    args = parser.parse_args()
    topology = load_topology(args.topology)
    target = LabTarget(topology, purpose="bench", shortcuts=("short-bgp-timers",))
    print(f"probe benchmark: topology {args.topology}, {args.window:g} s per rate, {os.cpu_count()} cores")
    target.start()
    try:
        walkthrough = StageMachine(target)
        walkthrough.reached(Stage.MINIMAL)
        walkthrough.wait_nodes_registered()
        walkthrough.bring_to(Stage.LB_IPAM)
        print("  rate/s  achieved/s  failed  slowest ms  harness (cores)  machine (cores)  router samples/s")
        for rate in RATES:
            shown = measure(walkthrough, rate, args.window)
            print(
                f"  {rate:6d}  {shown['achieved']:10.1f}  {shown['failed']:6.0f}  {shown['slowest_ms']:10.1f}"
                f"  {shown['harness_core']:15.3f}  {shown['machine_cores']:15.2f}"
                f"  {shown['samples_per_s']:16.1f}"
            )
        print("  goal: 20/s (the default) achieved with no failure, the harness under 0.10 of a core")
    finally:
        target.stop()


if __name__ == "__main__":
    main()
