"""Work a stop signal must not cut short: removing what a run made, writing its report.

The plugin turns SIGTERM and SIGHUP into KeyboardInterrupt so that pytest tears down (Ctrl-C is one
already). A signal that arrives while the teardown itself runs (a CI job cancelled twice, a supervisor
that follows SIGTERM with another, or the first one landing as the run ends) would raise inside it and
leave namespaces, daemons or objects behind. Inside `deferred_interrupts` those signals are noted
and said on stderr instead. It guards only work after which the run ends (or re-raises what it is
cleaning up after), so a noted signal has nothing left to stop and is not raised again: raised from
pytest's session finish it would escape pytest and cost the report.

A run stops once. A terminal's Ctrl-C reaches every process of its group and a parent that passes it
on sends another, so two can land a few bytecodes apart: the second one would fire in the `except`
clause that is about to clean up after the first, before any cleanup could defer it. `stop_once`
raises KeyboardInterrupt for the first stop signal of a run and only says those that follow it
within seconds.

Work the run goes on after, a target removing its lab before a fresh one, is held instead
(`held_interrupts`): the signal waits for the work's end and then stops the run.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# The same stop reaches a run more than once within milliseconds (the terminal's Ctrl-C, a parent's
# passed on); one that comes this long after the first is a new request: the first did not take.
REPEAT_AFTER = 5.0


def _say(text: str) -> None:
    # Nobody reads stderr any more, or the signal interrupted a write to it (a reentrant call): the
    # work matters, not the words.
    with suppress(OSError, ValueError, RuntimeError):
        print(text, file=sys.stderr, flush=True)


def stop_once(clock: Callable[[], float] = time.monotonic) -> Callable[[], None]:
    """SIGINT, SIGTERM and SIGHUP interrupt the run (KeyboardInterrupt, so pytest tears down) the
    first time; one within `REPEAT_AFTER` seconds of it is said and ignored, as the run is already
    removing what it made. A later one interrupts again: this handler is only reached outside the
    work that defers signals, so the first stop was lost (raised where Python ignores exceptions, a
    finalizer, say) and the run would otherwise go on to its end.
    Returns what puts the handlers before back, for a run inside a longer-lived process."""
    first: list[tuple[str, float]] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        name, now = signal.Signals(signum).name, clock()
        if first and now - first[0][1] < REPEAT_AFTER:
            _say(f"bgpconform: {name} received; already stopping ({first[0][0]}), removing what the run made")
            return
        first[:] = [(name, now)]
        raise KeyboardInterrupt(f"received signal {name}")

    previous = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


@contextmanager
def deferred_interrupts(work: str) -> Iterator[None]:
    """Run the block to its end whatever stop signal comes; `work` names it in what the user is told.
    Signals are only handled on the main thread: elsewhere the block runs as it is."""
    with _noting(work, []):
        yield


@contextmanager
def held_interrupts(work: str) -> Iterator[None]:
    """Like `deferred_interrupts`, for work the run goes on after (removing a lab before a fresh one):
    the first stop signal that came is raised again once the block has ended, so the run still stops,
    with nothing of the work left half done."""
    seen: list[signal.Signals] = []
    try:
        with _noting(work, seen):
            yield
    finally:
        if seen:  # also after a failure: the stop the user asked for goes first, the failure with it
            signal.raise_signal(seen[0])  # to the handlers put back: the run's own, or an outer hold's


@contextmanager
def _noting(work: str, seen: list[signal.Signals]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: FrameType | None) -> None:
        seen.append(signal.Signals(signum))
        _say(f"bgpconform: {seen[-1].name} received while {work}; finishing that first")

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
