"""How `lab serve` answers signals in each phase, with real signals sent to this process."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from bgpconform.cli.lab_commands import _Signals, _StopWhileStarting


@pytest.fixture
def signals() -> Iterator[_Signals]:
    saved = {sig: signal.getsignal(sig) for sig in _Signals.WATCHED}
    handling = _Signals()
    handling.install()
    try:
        yield handling
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_starting_the_first_signal_unwinds_the_start_and_later_ones_leave_its_cleanup_alone(
    signals: _Signals,
) -> None:
    with pytest.raises(_StopWhileStarting, match="SIGTERM"):
        signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGINT)  # during the cleanup: must not raise again
    assert not signals.stop.is_set()


def test_a_signal_inside_held_takes_effect_when_the_block_ends(signals: _Signals) -> None:
    steps: list[str] = []

    def claim() -> None:
        with signals.held():
            signal.raise_signal(signal.SIGHUP)
            steps.append("the rest of the block ran")

    with pytest.raises(_StopWhileStarting, match="SIGHUP"):
        claim()
    assert steps == ["the rest of the block ran"]


def test_a_failure_inside_held_goes_before_a_pending_signal(signals: _Signals) -> None:
    def claim() -> None:
        with signals.held():
            signal.raise_signal(signal.SIGTERM)
            raise OSError("claim failed")

    with pytest.raises(OSError, match="claim failed"):
        claim()


def test_serving_a_signal_ends_the_wait(signals: _Signals) -> None:
    signals.serving = True
    signal.raise_signal(signal.SIGTERM)
    assert signals.stop.is_set()


def test_stopping_signals_are_ignored(signals: _Signals) -> None:
    signals.ignore()
    signal.raise_signal(signal.SIGTERM)  # would end this process if it were not ignored
    assert not signals.stop.is_set()
