"""Error kinds, split so a report can tell a broken product from a broken harness.

A `NonConformance` means the system under test did not behave as documented. Everything else that
derives from `HarnessError` means the harness or its infrastructure could not assess the system.
"""

from __future__ import annotations

from typing import Any


class BgpconformError(Exception):
    """Root of every error the harness raises on purpose."""


class HarnessError(BgpconformError):
    """The harness or its infrastructure failed: the verdict is 'not assessed'."""


class ConfigError(HarnessError):
    """Bad input from the user (topology, option, credentials); the message names file, field and fix."""


class PrerequisiteError(HarnessError):
    """The machine lacks something the target needs (root, `ip netns`, a daemon binary)."""


class LabError(HarnessError):
    """The lab could not build, start or tear down a part of itself."""


class CommandError(LabError):
    """An external command failed; carries the command line and its output for the evidence."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr or stdout).strip()
        super().__init__(
            f"command failed (exit {returncode}): {' '.join(argv)}" + (f"\n{detail}" if detail else "")
        )


def product_failure(excinfo: Any) -> bool:
    """For `__tracebackhide__` in helpers that wait and assert: a product's failure points at the step
    that judged it; a harness error keeps every frame, since that is where its cause is."""
    return bool(excinfo.errisinstance(NonConformance))


class NonConformance(BgpconformError, AssertionError):
    """The system under test did not reach or keep the state the walkthrough documents.

    `expected` and `observed` carry the two states as text, so a report shows them side by side
    without parsing the message back apart.
    """

    def __init__(self, message: str, expected: str | None = None, observed: str | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.observed = observed
