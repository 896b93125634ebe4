"""Condition waits report what they expected and what they last saw."""

from __future__ import annotations

import itertools
import threading

import pytest

from bgpconform.errors import HarnessError
from bgpconform.waiting import WaitRecord, WaitTimeout, observe_waits, wait_for


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


def test_observers_see_every_finished_wait_until_they_stop() -> None:
    seen: list[WaitRecord] = []
    stop = observe_waits(seen.append)
    try:
        values = iter([1, 2, 3])
        wait_for(lambda: next(values), lambda v: v == 3, expected="three", timeout=5, interval=0.001)
        with pytest.raises(WaitTimeout):
            wait_for(lambda: 0, bool, expected="never", timeout=0.01, interval=0.001)
    finally:
        stop()
    wait_for(lambda: 1, bool, expected="after stop", timeout=1)
    assert [(r.expected, r.probes, r.succeeded) for r in seen[:1]] == [("three", 3, True)]
    assert [(r.expected, r.succeeded) for r in seen[1:]] == [("never", False)]
    assert seen[1].elapsed >= 0.01
    assert {r.thread for r in seen} == {threading.current_thread().name}


def test_consistently_holds_for_its_whole_duration() -> None:
    from bgpconform.bgp_states import SessionState
    from bgpconform.checks import SessionsInState
    from bgpconform.waiting import consistently

    probes = itertools.count()
    check = SessionsInState(frozenset({"node-1"}), SessionState.ESTABLISHED)
    waited = consistently(
        lambda: (next(probes), {"node-1": "established"})[1], check, duration=0.3, interval=0.01
    )
    assert waited.elapsed >= 0.3
    assert waited.probes >= 5


def test_consistently_fails_at_the_first_observation_that_breaks_it() -> None:
    from bgpconform.bgp_states import SessionState
    from bgpconform.checks import SessionsInState
    from bgpconform.waiting import HeldFalse, consistently

    states = iter([{"node-1": "idle"}, {"node-1": "idle"}, {"node-1": "established"}])
    check = SessionsInState(frozenset({"node-1"}), SessionState.IDLE)
    with pytest.raises(HeldFalse) as caught:
        consistently(lambda: next(states), check, duration=5, interval=0.01)
    assert caught.value.expected == "sessions idle on ['node-1']"
    assert caught.value.observed == "{'node-1': 'established'}"
    assert "stopped holding after" in str(caught.value)
