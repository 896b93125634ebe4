"""A stop signal during work that must finish (removing a run's lab, writing its report) is said and
does not cut the work short; outside such work it interrupts as before."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from bgpconform.interrupts import deferred_interrupts


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@pytest.fixture
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raising KeyboardInterrupt, as the plugin installs it for a run."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("sigterm_interrupts")
def test_a_signal_during_the_work_is_said_and_the_work_finishes(capsys: pytest.CaptureFixture[str]) -> None:
    done: list[str] = []
    with deferred_interrupts("removing the lab"):
        with deferred_interrupts("stopping the daemons"):  # nested: the inner work is held as well
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("daemons")  # a handler that raised would have stopped here
        os.kill(os.getpid(), signal.SIGTERM)
        done.append("namespaces")
    assert done == ["daemons", "namespaces"]
    said = capsys.readouterr().err
    assert "SIGTERM received while stopping the daemons; finishing that first" in said
    assert "SIGTERM received while removing the lab; finishing that first" in said
    assert signal.getsignal(signal.SIGTERM) is _interrupt  # the run's handler is back
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        os.kill(os.getpid(), signal.SIGTERM)  # and interrupts again outside the work


def test_off_the_main_thread_the_block_runs_as_it_is() -> None:
    seen: list[object] = []

    def work() -> None:
        with deferred_interrupts("a worker's cleanup"):
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [before]
