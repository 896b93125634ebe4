"""What a check is and what it says, apart from the checks themselves, so the waits and the assertions
can take any check without importing what the checks read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

T_contra = TypeVar("T_contra", contravariant=True)


@dataclass(frozen=True)
class Finding:
    """One judgement: `observed` says what broke the promise, or what was seen when it holds."""

    holds: bool
    expected: str
    observed: str


class Check(Protocol[T_contra]):
    @property
    def expected(self) -> str:
        """The promise, in the words a failure shows next to what was observed."""

    def __call__(self, observed: T_contra) -> Finding: ...
