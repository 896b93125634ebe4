"""Condition waits with deadlines: the only way the harness waits for anything.

A fixed sleep hides how long convergence took and fails without saying what was seen; `wait_for`
polls a probe until a predicate holds and, on timeout, reports the expectation next to the last
observation, as a diff would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from bgpconform.errors import BgpconformError, NonConformance, product_failure

if TYPE_CHECKING:
    from bgpconform.finding import Check

T = TypeVar("T")


class WaitTimeout(NonConformance):
    """A condition did not hold by its deadline."""

    def __init__(self, expected: str, last_observed: object, waited: float, last_error: str | None) -> None:
        self.last_observed = last_observed
        self.waited = waited
        self.last_error = last_error
        observed = last_observed if isinstance(last_observed, str) else repr(last_observed)
        lines = [f"timed out after {waited:.1f}s", f"  expected: {expected}", f"  observed: {observed}"]
        if last_error:
            lines.append(f"  last probe error: {last_error}")
        super().__init__("\n".join(lines), expected=expected, observed=observed)


@dataclass(frozen=True)
class Waited(Generic[T]):
    """What a successful wait saw and how long it took, for convergence timings."""

    value: T
    elapsed: float
    probes: int


@dataclass(frozen=True)
class WaitRecord:
    """One finished wait, for whoever accounts for where a run's time went (benchmarks, reports)."""

    expected: str
    elapsed: float
    probes: int
    succeeded: bool
    thread: str


WaitObserver = Callable[[WaitRecord], None]
_observers: list[WaitObserver] = []


def observe_waits(observer: WaitObserver) -> Callable[[], None]:
    """Call `observer` after every wait in this process ends; returns the function that stops it."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


def _finished(expected: str, start: float, probes: int, succeeded: bool) -> float:
    elapsed = time.monotonic() - start
    if _observers:
        record = WaitRecord(expected, elapsed, probes, succeeded, threading.current_thread().name)
        for observer in list(_observers):
            observer(record)
    return elapsed


def wait_for(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    expected: str,
    timeout: float,
    interval: float = 0.05,
    max_interval: float = 0.5,
    describe: Callable[[T], object] | None = None,
    wake: threading.Event | None = None,
    tolerate: tuple[type[BaseException], ...] = (),
) -> Waited[T]:
    """Poll `probe` until `until(value)` holds or `timeout` seconds pass.

    The poll interval grows from `interval` to `max_interval` so short waits stay fast and long ones
    stay cheap. `wake`, when given, cuts a pause short (a watch can set it). Exceptions listed in
    `tolerate` count as "not yet" and are reported if the wait times out; a `BgpconformError` that is
    not tolerated propagates at once because it means the harness itself is broken.
    """
    __tracebackhide__ = product_failure  # a timeout points at the step that waited, not at this loop
    start = time.monotonic()
    deadline = start + timeout
    pause = interval
    probes = 0
    last_value: object = "<nothing observed yet>"
    last_error: str | None = None
    while True:
        probes += 1
        try:
            value = probe()
        except tolerate as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        except BgpconformError:
            raise
        else:
            last_error = None
            if until(value):
                return Waited(value, _finished(expected, start, probes, succeeded=True), probes)
            last_value = describe(value) if describe else value
        now = time.monotonic()
        if now >= deadline:
            raise WaitTimeout(expected, last_value, _finished(expected, start, probes, False), last_error)
        remaining = deadline - now
        if wake is not None:
            if wake.wait(min(pause, remaining)):
                wake.clear()
        else:
            _pause(min(pause, remaining))
        pause = min(pause * 1.5, max_interval)


def wait_until(
    probe: Callable[[], T],
    check: Check[T],
    *,
    timeout: float,
    tolerate: tuple[type[BaseException], ...] = (),
) -> Waited[T]:
    """`wait_for` with a check from `bgpconform.checks`: its promise is the expectation, and on timeout
    the last observation is shown as the check judged it."""
    __tracebackhide__ = product_failure
    return wait_for(
        probe,
        lambda value: check(value).holds,
        expected=check.expected,
        timeout=timeout,
        describe=lambda value: check(value).observed,
        tolerate=tolerate,
    )


class HeldFalse(NonConformance):
    """A condition that had to hold for a while stopped holding."""

    def __init__(self, expected: str, observed: object, after: float, held_for: float) -> None:
        self.observed_value = observed
        shown = observed if isinstance(observed, str) else repr(observed)
        super().__init__(
            f"stopped holding after {after:.1f}s of the {held_for:.1f}s it had to hold\n"
            f"  expected: {expected}\n  observed: {shown}",
            expected=expected,
            observed=shown,
        )


def consistently(
    probe: Callable[[], T],
    check: Check[T],
    *,
    duration: float,
    interval: float = 0.1,
) -> Waited[T]:
    """Poll `probe` for `duration` seconds and fail at the first observation the check rejects: for
    promises about what must not happen ("no session on an unlabelled node"), which a single look
    taken too early would pass. Returns the last observation."""
    __tracebackhide__ = product_failure
    start = time.monotonic()
    deadline = start + duration
    probes = 0
    while True:
        probes += 1
        value = probe()
        finding = check(value)
        now = time.monotonic()
        if not finding.holds:
            _finished(check.expected, start, probes, succeeded=False)
            raise HeldFalse(check.expected, finding.observed, now - start, duration)
        if now >= deadline:
            return Waited(value, _finished(check.expected, start, probes, succeeded=True), probes)
        _pause(min(interval, deadline - now))


_never = threading.Event()


def _pause(seconds: float) -> None:
    """Block for one poll interval; an Event wait rather than a sleep keeps it interruptible."""
    _never.wait(seconds)
