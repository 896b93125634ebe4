"""Product assertions read as expected/observed and count as non-conformance, not harness failure."""

from __future__ import annotations

import pytest

from bgpconform.errors import NonConformance
from bgpconform.expect import expect
from bgpconform.verdict import Outcome, classify

pytest_plugins = ["pytester"]


def test_a_holding_expectation_is_silent() -> None:
    expect(True, "anything", {"ignored": True})


def test_a_failed_expectation_names_both_states_and_is_non_conformance() -> None:
    with pytest.raises(NonConformance) as caught:
        expect(False, "every node Ready", {"k3s-worker-node-01": "NotReady"})
    assert str(caught.value) == 'expected: every node Ready\n  observed: {"k3s-worker-node-01": "NotReady"}'
    assert (caught.value.expected, caught.value.observed) == (
        "every node Ready",
        '{"k3s-worker-node-01": "NotReady"}',
    )
    assert classify(caught.value) is Outcome.NON_CONFORMANT


def test_tables_keep_their_lines_below_the_label() -> None:
    table = "NAME   STATUS\nnode   NotReady"
    with pytest.raises(NonConformance) as caught:
        expect(False, "every node Ready", table)
    assert str(caught.value).endswith("observed: \nNAME   STATUS\nnode   NotReady")


def test_a_failed_expectation_or_wait_points_at_the_step_not_the_helper(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from bgpconform import checks
        from bgpconform.expect import expect, expect_check
        from bgpconform.waiting import wait_for, wait_until

        def test_expect():
            expect(False, "the promise", "what was seen")

        def test_expect_check():
            expect_check(checks.EveryNodeRegistered(frozenset({"n1"})), [])

        def test_wait():
            wait_for(lambda: 1, lambda value: value == 2, expected="two", timeout=0.05)

        def test_wait_until():
            wait_until(lambda: [], checks.EveryNodeRegistered(frozenset({"n1"})), timeout=0.05)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tb=long")
    result.assert_outcomes(failed=4)
    shown = result.stdout.str()
    assert "test_a_failed_expectation_or_wait_points_at_the_step_not_the_helper.py:" in shown
    for helper in ("expect.py:", "waiting.py:"):
        assert helper not in shown


def test_a_harness_error_inside_a_wait_keeps_the_waits_frame(pytester: pytest.Pytester) -> None:
    """Where the harness broke is where its cause is, so that frame stays in the traceback."""
    pytester.makepyfile(
        """
        from bgpconform.errors import HarnessError
        from bgpconform.waiting import wait_for

        def broken_probe():
            raise HarnessError("the API went away")

        def test_wait():
            wait_for(broken_probe, bool, expected="anything", timeout=1)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tb=long")
    result.assert_outcomes(failed=1)
    assert "waiting.py:" in result.stdout.str()
