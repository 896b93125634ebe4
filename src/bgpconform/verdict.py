"""Tell product non-conformance apart from a harness or infrastructure failure.

An assertion about the system under test (`AssertionError`, including a wait that timed out on the
system's state) means the product did not conform. Anything else (the lab could not start, the API
was unreachable, a command failed) means the harness could not assess it.
"""

from __future__ import annotations

from enum import StrEnum

from bgpconform.errors import HarnessError


class Outcome(StrEnum):
    PASSED = "passed"
    NON_CONFORMANT = "non-conformant"
    NOT_ASSESSED = "not-assessed"


def classify(error: BaseException | None) -> Outcome:
    if error is None:
        return Outcome.PASSED
    if isinstance(error, AssertionError) and not isinstance(error, HarnessError):
        return Outcome.NON_CONFORMANT
    return Outcome.NOT_ASSESSED
