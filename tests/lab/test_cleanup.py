"""Teardown leaves nothing, and a run killed with SIGKILL mid-setup is swept by the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from bgpconform.lab.lab import Lab
from bgpconform.lab.runs import (
    list_namespaces,
    namespace_prefix,
    process_start_ticks,
    state_root,
    sweep_stale_runs,
)
from bgpconform.topology import Topology
from bgpconform.waiting import wait_for
from tests.lab.pod_networks import give_pod_networks
from tests.lab.processes import running_command_lines

pytestmark = pytest.mark.lab


def _alive(pid: int) -> bool:
    return process_start_ticks(pid) is not None


def _run_namespaces(run_id: str) -> list[str]:
    return [ns for ns in list_namespaces() if ns.startswith(namespace_prefix(run_id))]


def test_stop_removes_every_namespace_process_and_file(lab_topology: Topology) -> None:
    lab = Lab(lab_topology, purpose="tests-cleanup").start()
    try:
        run_id, directory = lab.run.run_id, lab.run.directory
        lab.router.configure_peers(lab.topology_peers())
        speakers = lab.start_speakers()
        give_pod_networks(lab)
        attachment = lab.network.attach_pod(lab_topology.workers[0].name, "default/cleanup-probe")
        pids = [*lab.router_pids, *(s.pid for s in speakers if s.pid is not None)]
        assert len(pids) == 2 + len(lab_topology.bgp_nodes)
        assert attachment.namespace in _run_namespaces(run_id)
        assert len(_run_namespaces(run_id)) == 3 + len(lab_topology.nodes) + 1  # router, switch, client, pod
    finally:
        lab.stop()

    assert _run_namespaces(run_id) == []
    assert [pid for pid in pids if _alive(pid)] == []
    assert not directory.exists()
    lab.stop()  # a second stop is harmless


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from bgpconform.lab import frr, lab as lab_module
    from bgpconform.topology import load_topology

    stage = sys.argv[2]
    original_start = frr.LabFrr.start
    original_build = lab_module.LabNetwork.build

    def build_then_die(self):
        original_build(self)
        if stage == "network":
            print(self.run.run_id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    def start_then_die(self, timeout=10.0):
        original_start(self, timeout)
        print(self.directory.parent.name, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    lab_module.LabNetwork.build = build_then_die
    frr.LabFrr.start = start_then_die
    lab_module.Lab(load_topology(sys.argv[1]), purpose="killed").start()
    """
)


@pytest.mark.parametrize("killed_after", ["network", "router"])
def test_a_run_killed_mid_setup_is_swept_by_the_next_start(lab_topology: Topology, killed_after: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(lab_topology.source), killed_after],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    run_id = child.stdout.strip()
    left = _run_namespaces(run_id)
    assert len(left) == 3 + len(lab_topology.nodes), "the killed run should have left its namespaces"
    assert (state_root() / run_id).is_dir()
    left_pids = [
        int(p)
        for ns in left
        for p in subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=True
        ).stdout.split()
    ]
    if killed_after == "router":
        assert len(left_pids) == 2, "zebra and bgpd should have outlived their killed owner"

    swept = sweep_stale_runs()

    assert run_id in {s.run_id for s in swept}
    assert _run_namespaces(run_id) == []
    assert not (state_root() / run_id).exists()
    wait_for(
        lambda: [pid for pid in left_pids if _alive(pid)],
        lambda alive: alive == [],
        expected="every daemon of the killed run gone",
        timeout=5,
    )


def test_a_live_run_is_never_swept(lab: Lab) -> None:
    swept = sweep_stale_runs()
    assert lab.run.run_id not in {s.run_id for s in swept}
    assert len(_run_namespaces(lab.run.run_id)) >= 4
    assert os.path.isdir(lab.run.directory)


def test_stop_while_the_wire_is_still_building_waits_for_it_then_removes_it(lab_topology: Topology) -> None:
    lab = Lab(lab_topology, purpose="tests-cleanup").claim()
    run_id, directory = lab.run.run_id, lab.run.directory
    lab.begin_build()
    lab.stop()  # at once: the build thread is between `ip` calls or starting FRR

    assert _run_namespaces(run_id) == []
    assert running_command_lines(namespace_prefix(run_id)) == []  # FRR and GoBGP name the namespace
    assert not directory.exists()


def test_a_wire_that_fails_while_the_control_plane_starts_leaves_nothing(
    lab_topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wire builds on its own thread beside the API server and controllers; its failure is the one
    reported, and the cluster's cleanup removes both halves."""
    from bgpconform.errors import LabError
    from bgpconform.lab import frr
    from bgpconform.lab.cluster.cluster import LabCluster

    claimed: list[Path] = []

    def frr_refuses(self: frr.LabFrr, timeout: float = 10.0) -> None:
        claimed.append(self.directory.parent)
        raise LabError("zebra did not start (injected)")

    monkeypatch.setattr(frr.LabFrr, "start", frr_refuses)
    threads_before = set(threading.enumerate())
    cluster = LabCluster(lab_topology, purpose="tests-cleanup")

    with pytest.raises(LabError, match="injected"):
        cluster.start()

    [directory] = claimed
    assert _run_namespaces(directory.name) == []
    assert not directory.exists()
    wait_for(
        lambda: [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()],
        lambda alive: alive == [],
        expected="no thread of the failed start still running (API server, controllers, wire)",
        timeout=10,
    )
