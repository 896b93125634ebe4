"""Condition waits report what they expected and what they last saw."""

from __future__ import annotations

import itertools
import threading

import pytest

from bgpconform.errors import HarnessError
from bgpconform.waiting import WaitTimeout, wait_for


def test_returns_the_first_value_that_satisfies_the_condition() -> None:
    counter = itertools.count()
    waited = wait_for(lambda: next(counter), lambda n: n >= 3, expected="n >= 3", timeout=5, interval=0.001)
    assert waited.value == 3
    assert waited.probes == 4


def test_timeout_names_expectation_and_last_observation() -> None:
    with pytest.raises(WaitTimeout) as caught:
        wait_for(
            lambda: {"state": "active"},
            lambda s: s["state"] == "established",
            expected="state established",
            timeout=0.2,
            interval=0.01,
        )
    message = str(caught.value)
    assert "expected: state established" in message
    assert "observed: {'state': 'active'}" in message
    assert caught.value.last_observed == {"state": "active"}


def test_tolerated_errors_count_as_not_yet_and_are_reported() -> None:
    def probe() -> int:
        raise ConnectionError("refused")

    with pytest.raises(WaitTimeout) as caught:
        wait_for(
            probe,
            lambda _: True,
            expected="an answer",
            timeout=0.1,
            interval=0.01,
            tolerate=(ConnectionError,),
        )
    assert "last probe error: ConnectionError: refused" in str(caught.value)


def test_harness_errors_are_not_swallowed() -> None:
    def probe() -> int:
        raise HarnessError("the API is gone")

    with pytest.raises(HarnessError, match="the API is gone"):
        wait_for(probe, lambda _: True, expected="anything", timeout=5)


def test_a_wake_event_cuts_the_pause_short() -> None:
    wake = threading.Event()
    state = {"ready": False}

    def flip() -> None:
        state["ready"] = True
        wake.set()

    timer = threading.Timer(0.05, flip)
    timer.start()
    waited = wait_for(lambda: state["ready"], bool, expected="ready", timeout=10, interval=5, wake=wake)
    timer.join()
    assert waited.value is True
    assert waited.elapsed < 5
