"""Product assertions read as expected/observed and count as non-conformance, not harness failure."""

from __future__ import annotations

import pytest

from bgpconform.errors import NonConformance
from bgpconform.expect import expect
from bgpconform.verdict import Outcome, classify


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
