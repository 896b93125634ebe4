"""Assertions about the system under test that read like a wait's timeout.

A release manager reads a failure as "expected X, observed Y"; a bare `assert` gives Python's
expression instead. Failing here raises `NonConformance`, which the verdict counts as the product's
failure, never the harness's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypeVar

from bgpconform.errors import NonConformance

if TYPE_CHECKING:
    from bgpconform.finding import Check

T = TypeVar("T")


def show(observed: object) -> str:
    """Multi-line text stays as it is (tables); structures are shown as compact JSON."""
    if isinstance(observed, str):
        return observed if "\n" not in observed else "\n" + observed
    try:
        return json.dumps(observed, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(observed)


def expect(holds: bool, expected: str, observed: object) -> None:
    __tracebackhide__ = True  # the failure points at the step that expected, not here
    if not holds:
        shown = show(observed)
        raise NonConformance(f"expected: {expected}\n  observed: {shown}", expected=expected, observed=shown)


def expect_check(check: Check[T], observed: T) -> None:
    """Assert a check from `bgpconform.checks` once, on what a step observed."""
    __tracebackhide__ = True
    finding = check(observed)
    expect(finding.holds, finding.expected, finding.observed)
