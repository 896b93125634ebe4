"""A stop signal during work that must finish (removing a run's lab, writing its report) is said and
does not cut the work short; outside such work it interrupts as before."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from bgpconform.interrupts import (
    REPEAT_AFTER,
    STOP_SIGNALS,
    deferred_interrupts,
    held_interrupts,
    stop_once,
)


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


def test_a_run_stops_once_and_says_the_signals_after_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C from the terminal and the same Ctrl-C passed on by a parent land together; the second
    must not raise inside the cleanup that the first began."""
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    restore = stop_once()
    try:
        cleaned: list[str] = []
        try:
            os.kill(os.getpid(), signal.SIGINT)
            cleaned.append("never")  # the first signal raised before this
        except KeyboardInterrupt as first:
            cleaned.append(str(first))
            os.kill(os.getpid(), signal.SIGINT)  # the second, as the cleanup begins
            os.kill(os.getpid(), signal.SIGTERM)  # and a CI job's cancel on top
            cleaned.append("lab removed")
        assert cleaned == ["received signal SIGINT", "lab removed"]
        said = capsys.readouterr().err
        assert "SIGINT received; already stopping (SIGINT), removing what the run made" in said
        assert "SIGTERM received; already stopping (SIGINT)" in said
    finally:
        restore()
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before


@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=lambda sig: sig.name)
def test_each_stop_signal_interrupts_a_run_the_first_time(sig: signal.Signals) -> None:
    restore = stop_once()
    try:
        with pytest.raises(KeyboardInterrupt, match=sig.name):
            os.kill(os.getpid(), sig)
    finally:
        restore()


@pytest.mark.usefixtures("sigterm_interrupts")
def test_a_held_signal_stops_the_run_once_the_work_is_done(capsys: pytest.CaptureFixture[str]) -> None:
    """A reset removing the lab before a fresh one: the removal finishes, then the run stops."""
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):  # noqa: PT012 (the raise comes as the block ends)
        with held_interrupts("removing the lab"):
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("lab removed")
        done.append("a fresh lab started")
    assert done == ["lab removed"]
    assert "SIGTERM received while removing the lab; finishing that first" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is _interrupt


@pytest.mark.usefixtures("sigterm_interrupts")
def test_a_held_signal_goes_before_the_works_failure() -> None:
    with pytest.raises(KeyboardInterrupt) as stopped, held_interrupts("removing the lab"):  # noqa: PT012
        os.kill(os.getpid(), signal.SIGTERM)
        raise OSError("a namespace would not go")
    assert isinstance(stopped.value.__context__, OSError)  # the failure is not lost: it travels with it


@pytest.mark.usefixtures("sigterm_interrupts")
def test_inside_the_runs_last_work_a_held_signal_is_only_said(capsys: pytest.CaptureFixture[str]) -> None:
    """The session's teardown removes the lab through the same stop a reset uses: there the run is
    ending anyway, and a KeyboardInterrupt out of pytest's teardown would cost the report."""
    done: list[str] = []
    with deferred_interrupts("removing what the lab target started"):
        with held_interrupts("removing the lab"):
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("lab removed")
        done.append("report written")
    assert done == ["lab removed", "report written"]
    said = capsys.readouterr().err
    assert "received while removing the lab;" in said
    assert "received while removing what the lab target started;" in said


def test_a_stop_long_after_the_first_interrupts_again(capsys: pytest.CaptureFixture[str]) -> None:
    """The first one was lost (raised in a finalizer, where Python only prints it): a user's next
    Ctrl-C must still stop the run, or only SIGKILL would, leaving the lab to the next sweep."""
    now = [100.0]
    restore = stop_once(clock=lambda: now[0])
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        now[0] += REPEAT_AFTER - 0.5
        os.kill(os.getpid(), signal.SIGINT)  # the same stop, passed on late: said only
        assert "already stopping (SIGINT)" in capsys.readouterr().err
        now[0] += 1.0
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)  # seconds later, and the run still not stopped
    finally:
        restore()
