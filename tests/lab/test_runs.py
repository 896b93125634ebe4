"""Which processes count as running: a run's owner, a lab's serving process, a pod's workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bgpconform.lab.runs import process_start_ticks
from bgpconform.waiting import wait_for


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[0]


def test_a_running_process_keeps_its_start_ticks() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        ticks = process_start_ticks(child.pid)
        assert isinstance(ticks, int)
        assert process_start_ticks(child.pid) == ticks
    finally:
        child.communicate(b"")
    assert process_start_ticks(child.pid) is None


def test_an_exited_process_not_yet_reaped_is_not_running() -> None:
    """A zombie keeps its /proc entry and start time until its parent reaps it; `lab down` and the
    sweep of killed runs must not wait for that (init may reap an orphan seconds later)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(
            lambda: _state(child.pid), lambda state: state == "Z", expected="the child a zombie", timeout=10
        )
        assert Path(f"/proc/{child.pid}/stat").exists()
        assert process_start_ticks(child.pid) is None
    finally:
        child.wait()
