"""Teardown leaves nothing, and a run killed with SIGKILL mid-setup is swept by the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bgpconform.lab.lab import Lab
from bgpconform.lab.runs import list_namespaces, namespace_prefix, state_root, sweep_stale_runs
from bgpconform.topology import Topology
from bgpconform.waiting import wait_for

pytestmark = pytest.mark.lab


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _run_namespaces(run_id: str) -> list[str]:
    return [ns for ns in list_namespaces() if ns.startswith(namespace_prefix(run_id))]


def test_stop_removes_every_namespace_process_and_file(lab_topology: Topology) -> None:
    lab = Lab(lab_topology, purpose="tests-cleanup").start()
    try:
        run_id, directory = lab.run.run_id, lab.run.directory
        lab.router.configure_peers(lab.topology_peers())
        speakers = lab.start_speakers()
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
