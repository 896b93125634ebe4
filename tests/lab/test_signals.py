"""A pytest run that is interrupted (SIGTERM, Ctrl-C) still removes its lab."""

from __future__ import annotations

import os
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


def _namespaces_of(run_id: str) -> list[str]:
    return [ns for ns in list_namespaces() if ns.startswith(namespace_prefix(run_id))]


def _assert_run_removed(run_id: str, output: str = "") -> None:
    assert _namespaces_of(run_id) == [], output
    assert not (state_root() / run_id).exists(), output


@pytest.mark.parametrize(
    ("sig", "reader_gone"),
    [
        pytest.param(signal.SIGTERM, False, id="SIGTERM"),
        pytest.param(signal.SIGINT, False, id="SIGINT"),
        # The benchmark or CI job that started the run died first: its end of the run's stdout is
        # closed, so every line the run writes while it stops raises BrokenPipeError.
        pytest.param(signal.SIGTERM, True, id="SIGTERM-reader-gone"),
    ],
)
def test_an_interrupted_run_removes_its_lab(tmp_path: Path, sig: signal.Signals, reader_gone: bool) -> None:
    marker, release = tmp_path / "run-id", tmp_path / "never"
    test_file = tmp_path / "test_hold.py"
    test_file.write_text(BLOCKING_TEST.format(marker=str(marker), release=str(release)))
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={tmp_path}",
         f"--topology={REPO / 'topologies' / 'lab.yaml'}", "-v", str(test_file)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = "(the reader had gone)"
    try:
        wait_for(marker.exists, bool, expected="the child run started its lab", timeout=60)
        run_id = marker.read_text()
        assert _namespaces_of(run_id)
        if reader_gone:
            assert child.stdout is not None
            child.stdout.close()
        child.send_signal(sig)
        if reader_gone:
            child.wait(timeout=30)
        else:
            output, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if not reader_gone:  # with nobody reading, how pytest ends is not the point: the lab is
        assert child.returncode == pytest.ExitCode.INTERRUPTED, output
    _assert_run_removed(run_id, output)


SIGNAL_AT_TEARDOWN = """
import inspect
import os
import signal
from pathlib import Path

from bgpconform.targets.lab import LabTarget

_stop = LabTarget.stop


def stop(self):
    tearing_down = any(frame.function == "target" for frame in inspect.stack())  # not a stage's reset
    if self.started and tearing_down:
        Path({marker!r}).write_text(self.cluster.lab.run.run_id)
        os.kill(os.getpid(), signal.SIGTERM)  # lands as the teardown begins, as a second SIGTERM would
    _stop(self)


LabTarget.stop = stop
"""


def _first_scenario_with(tmp_path: Path, plugin: str) -> subprocess.CompletedProcess[str]:
    """The walkthrough's first scenario, run with `plugin` loaded: code that sends the signals."""
    (tmp_path / "signals_sent.py").write_text(plugin)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "signals_sent",
         f"--rootdir={REPO}", f"--reports-dir={tmp_path / 'reports'}", "-k", "without_a_cni",
         str(REPO / "features" / "test_walkthrough.py")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_sigterm_during_the_teardown_waits_for_the_lab_to_be_removed(tmp_path: Path) -> None:
    """The signal is said and the teardown goes on: it does not cut it short and leave the run's
    namespaces and daemons behind, nor the report unwritten."""
    marker = tmp_path / "run-id"
    done = _first_scenario_with(tmp_path, SIGNAL_AT_TEARDOWN.format(marker=str(marker)))
    output = done.stdout + done.stderr
    _assert_run_removed(marker.read_text(), output)
    assert done.returncode == pytest.ExitCode.OK, output  # the scenario passed; nothing was left to stop
    assert (tmp_path / "reports" / "latest" / "report.json").exists(), output


SIGNALS_AS_THE_LAB_STARTS = """
import os
import signal
from pathlib import Path

from bgpconform.errors import LabError
from bgpconform.lab import lab
from bgpconform.lab.cluster import cluster
from bgpconform.targets import lab as target

WHERE = {where!r}
_wait_built = lab.Lab.wait_built
_start = cluster.LabCluster.start
_stop = cluster.LabCluster.stop
_held = cluster.held_interrupts
_target_start = target.LabTarget.start


def wait_built(self):
    built = _wait_built(self)
    Path({marker!r}).write_text(self.run.run_id)
    if WHERE == "twice-while-the-wire-is-built":
        os.kill(os.getpid(), signal.SIGINT)  # the terminal's Ctrl-C ...
    if WHERE == "as-a-failed-start-is-removed":
        raise LabError("the router did not answer (a start that fails)")
    return built


def held(work):
    if WHERE == "twice-while-the-wire-is-built":
        os.kill(os.getpid(), signal.SIGINT)  # ... and the parent's, passed on, as the cleanup begins
    return _held(work)


def start(self):
    started = _start(self)
    if WHERE == "as-the-start-returns":
        os.kill(os.getpid(), signal.SIGTERM)
    return started


def target_start(self):
    _target_start(self)
    if WHERE == "as-a-reset-removes-the-lab":
        self.kube  # handed out, as a scenario before would have: the first Background replaces the lab


def stop(self):
    if WHERE in ("as-a-reset-removes-the-lab", "as-a-failed-start-is-removed") and self.lab.claimed:
        Path({marker!r}).write_text(self.lab.run.run_id)
        os.kill(os.getpid(), signal.SIGINT)
    _stop(self)


lab.Lab.wait_built = wait_built
cluster.held_interrupts = held
cluster.LabCluster.start = start
cluster.LabCluster.stop = stop
target.LabTarget.start = target_start
"""


@pytest.mark.parametrize(
    "where",
    [
        "twice-while-the-wire-is-built",
        "as-the-start-returns",
        "as-a-reset-removes-the-lab",
        "as-a-failed-start-is-removed",
    ],
)
def test_a_stop_while_the_lab_starts_or_is_replaced_removes_it(tmp_path: Path, where: str) -> None:
    """A stop can land anywhere in the lab's start: a Ctrl-C that reaches the run twice (the
    terminal's to the whole group, and a parent's that passes it on, as `bgpconform suite` does) with
    the second landing as the half-started lab is about to be removed, or one landing in the moment the
    finished start hands the lab over. Or in the first scenario's Background, as the stage machine's
    reset removes the lab to start a fresh one. Or as a start that failed is being removed: the run
    would go on to its next scenario, so the stop must still end it. Nothing of the lab is left to the
    next run's sweep, and the run ends interrupted."""
    marker = tmp_path / "run-id"
    done = _first_scenario_with(tmp_path, SIGNALS_AS_THE_LAB_STARTS.format(marker=str(marker), where=where))
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.INTERRUPTED, output
    _assert_run_removed(marker.read_text(), output)
