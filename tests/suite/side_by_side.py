"""Suite runs of one parametrized test started side by side, each a pytest process with its own lab.

A suite run on the lab mostly waits (BGP timers, the probe's stream, the kubelet's pace), so two labs on
two cores take little more than one. The first test of the module that asks starts the runs of every
parameter the session selected, at most `width` at a time (`BGPCONFORM_LABS_SIDE_BY_SIDE`, default: the
machine's cores); each test then waits for its own and judges it. Labs share nothing but the machine:
each has its own namespaces, run directory, sockets and loopback ports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import pytest

T = TypeVar("T")

WIDTH_VARIABLE = "BGPCONFORM_LABS_SIDE_BY_SIDE"


def width() -> int:
    """How many labs run at once: the variable's value, else one per core."""
    given = os.environ.get(WIDTH_VARIABLE)
    if given is not None:
        if not given.isdigit() or int(given) < 1:
            raise pytest.UsageError(f"{WIDTH_VARIABLE}={given!r}: give a whole number of labs, 1 or more")
        return int(given)
    return max(1, os.cpu_count() or 1)


def selected_params(session: pytest.Session, test_name: str, param: str) -> list[str]:
    """The values of `param` the session will run `test_name` with, in run order."""
    found: list[str] = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "originalname", None) == test_name and callspec is not None:
            found.append(str(callspec.params[param]))
    return found


def selected_tests(session: pytest.Session) -> list[str]:
    """The names of the test functions the session will run, in run order."""
    return [str(getattr(item, "originalname", item.name)) for item in session.items]


class SideBySide(Generic[T]):
    """Runs started in order, `width` at a time; `result` waits for one of them."""

    def __init__(self, runs: Iterable[tuple[str, Callable[[], T]]], at_once: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="lab")
        self._futures: dict[str, Future[T]] = {key: self._pool.submit(run) for key, run in runs}

    def result(self, key: str) -> T:
        future = self._futures.get(key)
        if future is None:
            raise KeyError(f"no run was started for {key!r} (started: {sorted(self._futures)})")
        return future.result()

    def close(self) -> None:
        """Runs not started yet are dropped; those running finish (each has its own deadline)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
