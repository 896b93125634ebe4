"""A pytest plugin for `bench_scale.py`: once the scale scenario has passed, and while its lab still
runs, puts 1,000 pods into the cluster and times listing every pod: the API's answer (request to last
byte, from a process of its own), and the API client the harness uses (from a process of its own, and
in the lab's process beside its 50 agents); then removes them. The pods ask for a node label no node
has, so they stay Pending: the API holds and serves 1,000 pod objects while no kubelet starts anything
for them. The figures go to the JSON file named by `BGPCONFORM_BENCH_SCALE`."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bgpconform.kubeapi.port import Resources
from bgpconform.waiting import wait_for
from bgpconform.walkthrough.machine import StageMachine

OUTPUT_VARIABLE = "BGPCONFORM_BENCH_SCALE"
PODS = 1000
LISTS = 20
NAMESPACE = "bgpconform-bench"


def pause_pod(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pause-{index:04d}", "namespace": NAMESPACE, "labels": {"app": "bench-pause"}},
        "spec": {
            "nodeSelector": {"bgpconform.io/bench": "no-such-node"},
            "containers": [{"name": "pause", "image": "rancher/mirrored-pause:3.6"}],
        },
    }


def _token(configuration: Any) -> str | None:
    """The bearer token the harness's client sends, wherever its configuration keeps it."""
    token: str | None = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
    return token


def _list_from_another_process(kube: Any) -> dict[str, list[float]]:
    """`list_client.py` in a fresh interpreter: the API's answer and the same client, none of the lab's
    threads beside them."""
    configuration = kube.api_client.configuration
    given = {"host": configuration.host, "token": _token(configuration), "ca": configuration.ssl_ca_cert}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.list_client", json.dumps(given), str(LISTS)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    timed: dict[str, list[float]] = json.loads(done.stdout)
    return timed


def _list_latency(machine: StageMachine) -> dict[str, Any]:
    kube = machine.target.kube
    machine.create(
        Resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    began = time.monotonic()
    for index in range(PODS):
        machine.create(Resources.PODS, pause_pod(index), NAMESPACE)
    created = time.monotonic() - began
    pending = wait_for(
        lambda: sum(
            1
            for pod in kube.items(Resources.PODS, NAMESPACE)
            if pod.get("status", {}).get("phase") == "Pending"
        ),
        lambda count: count >= PODS,
        expected=f"{PODS} pause pods Pending",
        timeout=600,
    )
    total = len(kube.items(Resources.PODS))
    seconds = []
    for _ in range(LISTS):
        start = time.perf_counter()
        kube.listing(Resources.PODS)
        seconds.append(time.perf_counter() - start)
    apart = _list_from_another_process(kube)
    for index in range(PODS):
        kube.delete(Resources.PODS, f"pause-{index:04d}", NAMESPACE)
    kube.delete(Resources.NAMESPACES, NAMESPACE)
    return {
        "pods_listed": total,
        "list_median": statistics.median(seconds),
        "list_max": max(seconds),
        "answer_median": statistics.median(apart["answers"]),
        "answer_max": max(apart["answers"]),
        "apart_list_median": statistics.median(apart["seconds"]),
        "apart_list_max": max(apart["seconds"]),
        "pods_created": created,
        "pods_pending": pending.elapsed,
    }


_passed: list[str] = []


def pytest_bdd_after_step(step: Any) -> None:
    _passed.append(str(step.name))


def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """Only after every step of the scale scenario passed: an interrupted one has nothing to measure."""
    if "scale" not in set(feature.tags) | set(scenario.tags) or len(_passed) < len(scenario.steps):
        return
    machine: StageMachine = request.getfixturevalue("walkthrough")
    output = Path(os.environ[OUTPUT_VARIABLE])
    output.write_text(json.dumps(_list_latency(machine), indent=1))
