"""`pytest --target=pi --mode=install` against a lab left at the peering stage, as a rack that once ran
the walkthrough: the reset must bring it back to a k3s without a CNI through the real-target code path
(`cilium uninstall` through the tool on PATH, Cilium's leftover CRDs deleted, every node NotReady,
CoreDNS and local-path Pending), so "the BGP configuration resources are not served" holds after the
reinstall. cilium-cli is a stand-in driving the lab's installer (tests/pi/fake_cilium.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.pi.conftest import LAB_LOGIN, lab_at, pi_topology
from tests.pi.fake_cilium import TOPOLOGY_VARIABLE
from tests.suite.runner import ROOT, node_id, run_suite

pytestmark = pytest.mark.lab

LAB = ROOT / "topologies" / "lab.yaml"
SCENARIOS = [
    "Without a CNI every node waits and the cluster's own pods stay pending",
    "Installing Cilium makes every node Ready and runs the pending pods",
    "Agents wait for the BGP resources until the operator restarts",
]


def _cilium_on_path(directory: Path) -> str:
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "cilium"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m tests.pi.fake_cilium "$@"\n')
    shim.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_install_mode_resets_a_used_rack_to_a_cluster_without_cni_and_replays_it(tmp_path: Path) -> None:
    with lab_at(LAB, "peering") as state:
        topology = pi_topology(LAB, state, tmp_path)
        env = {**LAB_LOGIN, "PATH": _cilium_on_path(tmp_path), TOPOLOGY_VARIABLE: str(LAB)}
        options = ("--target=pi", "--mode=install", "--allow-destructive")
        run = run_suite(
            tmp_path / "run", *map(node_id, SCENARIOS), topology=topology, options=options, env=env
        )
    assert run.returncode == 0, run.summary()
    assert [title for title in SCENARIOS if not run.scenarios[title].passed] == [], run.summary()
