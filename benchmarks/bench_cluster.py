"""Prints how fast the emulated cluster answers: `lab up` to a usable API, LB IP to a route at the router.

Figures, not asserts. Targets (issue: the lab's emulated kubelet and Cilium): from `lab up` to an API
that lists every registered node under 2 s; from the operator writing a service's LB IP to the route
being in the router's kernel table under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from ipaddress import IPv4Network
from pathlib import Path

from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.lab.cluster.cluster import LabCluster
from bgpconform.stage import Stage
from bgpconform.targets.lab import LabTarget
from bgpconform.topology import Topology, load_topology
from bgpconform.waiting import wait_for
from bgpconform.walkthrough.machine import StageMachine

REPO = Path(__file__).resolve().parents[1]


def api_usable(topology_path: Path) -> dict[str, float]:
    """In-process start to every node listed by a fresh client, then teardown."""
    topology = load_topology(topology_path)
    began = time.monotonic()
    cluster = LabCluster(topology, purpose="bench").start()
    try:
        kube = Kube(new_api_client(str(cluster.kubeconfig)))
        wait_for(
            lambda: kube.items(Resources.NODES),
            lambda nodes: len(nodes) == len(topology.nodes),
            expected="every node registered",
            timeout=10,
            interval=0.005,
            max_interval=0.01,
        )
        usable = time.monotonic() - began
    finally:
        cluster.stop()
    return {"usable": usable, "teardown": cluster.timings.teardown}


def cli_up_down(topology_path: Path) -> dict[str, float]:
    """The command a person types: `bgpconform lab up` returning, then `lab down` returning."""
    cli = [sys.executable, "-m", "bgpconform.cli", "lab"]
    began = time.monotonic()
    subprocess.run([*cli, "up", "--topology", str(topology_path)], check=True, capture_output=True)
    up = time.monotonic() - began
    began = time.monotonic()
    subprocess.run([*cli, "down"], check=True, capture_output=True)
    return {"cli_up": up, "cli_down": time.monotonic() - began}


def peered_cluster(topology: Topology) -> LabTarget:
    """The walkthrough up to established sessions (the features' stage machine), then the pool."""
    target = LabTarget(topology, purpose="bench", init_step=0.0)
    walkthrough = StageMachine(target)
    walkthrough.bring_to(Stage.PEERING)
    walkthrough.create_pool()
    return target


def allocation_to_route(target: LabTarget, index: int) -> float:
    """Seconds from the LB IP appearing on the service (seen by a watch) to the /32 in the router's FIB."""
    cluster = target.cluster
    kube = cluster.new_kube()
    name = f"bench-{index}"
    allocated: dict[str, float | str] = {}

    def watch() -> None:
        stream = Kube(new_api_client(str(cluster.kubeconfig))).watch(
            Resources.SERVICES, "default", field_selector=f"metadata.name={name}", timeout_seconds=30
        )
        for event in stream:
            ingress = event["object"].get("status", {}).get("loadBalancer", {}).get("ingress")
            if ingress:
                allocated.update(at=time.monotonic(), ip=ingress[0]["ip"])
                stream.close()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    kube.create(
        Resources.SERVICES,
        {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
        },
        "default",
    )
    wait_for(lambda: "at" in allocated, bool, expected="the LB IP written", timeout=30, interval=0.005)
    prefix = IPv4Network(f"{allocated['ip']}/32")
    wait_for(
        lambda: cluster.lab.router.fib_routes(prefix),
        bool,
        expected=f"{prefix} in the router's kernel table",
        timeout=30,
        interval=0.005,
        max_interval=0.01,
    )
    return time.monotonic() - float(allocated["at"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", type=Path, default=REPO / "topologies" / "lab.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--services", type=int, default=5)
    args = parser.parse_args()
    starts = [api_usable(args.topology) for _ in range(args.rounds)]
    clis = [cli_up_down(args.topology) for _ in range(args.rounds)]
    target = peered_cluster(load_topology(args.topology))
    try:
        routes = [allocation_to_route(target, i) for i in range(args.services)]
    finally:
        target.stop()
    print(f"cluster benchmark: {args.rounds} rounds, {args.services} services, topology {args.topology}")
    rows = [
        ("start -> API lists every node (in process)", [s["usable"] for s in starts], "target < 2.0 s"),
        ("`bgpconform lab up` returns (new process)", [c["cli_up"] for c in clis], "target < 2.0 s"),
        ("`bgpconform lab down` returns", [c["cli_down"] for c in clis], ""),
        ("teardown (in process)", [s["teardown"] for s in starts], ""),
        ("LB IP written -> route in router FIB", routes, "target < 1.0 s"),
    ]
    for label, values, goal in rows:
        print(f"  {label:<44} median {statistics.median(values):6.3f} s  max {max(values):6.3f} s  {goal}")


if __name__ == "__main__":
    main()
