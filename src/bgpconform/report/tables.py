"""Read the column-aligned text tables steps record (kubectl, `cilium bgp peers`, router lists).

The report shows them as HTML tables so a reader can scan columns, but only when the text really is
laid out by columns: anything else stays preformatted text, exactly as the step recorded it.
"""

from __future__ import annotations

import re

# A column title is words separated by single spaces ("Peer Address"); titles are 2+ spaces apart.
_TITLE = re.compile(r"\S+(?: \S+)*")


def _column_starts(header: str) -> list[int] | None:
    """Where each column title starts; None unless the line looks like a header of 2+ columns."""
    starts = [match.start() for match in _TITLE.finditer(header)]
    return starts if len(starts) >= 2 else None


def _crosses_a_boundary(line: str, starts: list[int]) -> bool:
    """A word running over a column start means the line is not aligned to the header."""
    return any(start < len(line) and line[start - 1] != " " and line[start] != " " for start in starts[1:])


def parse_text_table(body: str) -> tuple[list[str], list[list[str]]] | None:
    """Split a text table into its header cells and rows, cut at the header's column starts.

    Cells are sliced by position rather than split on whitespace because rows leave cells empty
    (`cilium bgp peers` prints one extra line per address family with only the last columns filled)
    and cells may contain single spaces. Returns None when the text is not such a table: fewer than
    two lines, a blank line between rows, tabs, a header with fewer than two columns, or a row whose
    text runs across a column start; the caller then shows the text as it is.
    """
    if "\t" in body:
        return None
    lines = body.strip("\n").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if len(lines) < 2 or any(not line.strip() for line in lines):
        return None
    starts = _column_starts(lines[0].rstrip())
    if starts is None:
        return None
    bounds = [0, *starts[1:]]
    ends = [*starts[1:], None]
    header = [lines[0][start:end].strip() for start, end in zip(starts, ends, strict=True)]
    rows: list[list[str]] = []
    for raw in lines[1:]:
        line = raw.rstrip()
        if _crosses_a_boundary(line, starts):
            return None
        rows.append([line[start:end].strip() for start, end in zip(bounds, ends, strict=True)])
    return header, rows
