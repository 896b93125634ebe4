"""A pytest run that is interrupted (SIGTERM, Ctrl-C) still removes its lab."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bgpconform.lab.runs import list_namespaces, namespace_prefix, state_root
from bgpconform.waiting import wait_for

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]

BLOCKING_TEST = """
from pathlib import Path

import pytest

from bgpconform.lab.lab import Lab
from bgpconform.waiting import wait_for

@pytest.fixture(scope="session")
def lab_network(topology):
    lab = Lab(topology, purpose="pytest")
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()

def test_holds_the_lab(lab_network, tmp_path_factory):
    Path({marker!r}).write_text(lab_network.run.run_id)
    wait_for(lambda: Path({release!r}).exists(), bool, expected="released", timeout=120)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_removes_its_lab(tmp_path: Path, sig: signal.Signals) -> None:
    marker, release = tmp_path / "run-id", tmp_path / "never"
    test_file = tmp_path / "test_hold.py"
    test_file.write_text(BLOCKING_TEST.format(marker=str(marker), release=str(release)))
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={tmp_path}",
         f"--topology={REPO / 'topologies' / 'lab.yaml'}", str(test_file)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(marker.exists, bool, expected="the child run started its lab", timeout=60)
        run_id = marker.read_text()
        assert [ns for ns in list_namespaces() if ns.startswith(namespace_prefix(run_id))]
        child.send_signal(sig)
        output, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == pytest.ExitCode.INTERRUPTED, output
    assert [ns for ns in list_namespaces() if ns.startswith(namespace_prefix(run_id))] == []
    assert not (state_root() / run_id).exists()
