"""How a bad topology is reported: one line per problem, with file, line, field and a fix.

The line format is the compiler convention (`file:line: ...`) so that editors and terminals can jump to
it, and it is stable so that tests and users can rely on the exact wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bgpconform.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topology file; `line` is None when the file could not be read at all."""

    file: str
    line: int | None
    path: str | None
    message: str
    fix: str

    def format(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = self.message if not self.path else f"{self.path}: {self.message}"
        return f"{where}: {what}; fix: {self.fix}"


def format_problems(problems: Sequence[Problem]) -> str:
    """Render problems in file order, so the message reads top to bottom like the file."""
    ordered = sorted(problems, key=lambda p: p.line or 0)
    return "\n".join(p.format() for p in ordered)


class TopologyError(ConfigError):
    """A `ConfigError` that also keeps the problems, for callers that want to show them differently."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.line or 0))
        super().__init__(format_problems(self.problems))
