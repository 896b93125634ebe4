"""`print` queries and `.proplist`, as the RouterOS API manual defines them.

Query words form a small stack program evaluated per row: `?name=x` / `?=name=x` (equal), `?<name=x`,
`?>name=x`, `?name` (has the property), `?-name` (lacks it), and `?#...` operations on the stack
(`|` or, `&` and, `!` not, `.` duplicate the top, a number pushes a copy of that stack entry). A row
is printed when every value left on the stack is true; no query prints every row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Row = dict[str, str]
Test = Callable[[Row], bool]
_DIGITS = frozenset("0123456789")  # ASCII only: `str.isdigit` also takes superscripts `int()` refuses
_OPERATIONS = _DIGITS | frozenset("|&!.")
_MAX_POSITION_DIGITS = 6


class QueryError(ValueError):
    """A query word the server cannot evaluate; answered with a trap."""


@dataclass(frozen=True)
class Query:
    steps: tuple[Test | str, ...]

    @classmethod
    def parse(cls, words: list[str]) -> Query:
        steps: list[Test | str] = []
        for word in words:
            body = word[1:]
            if body.startswith("#"):
                ops = body[1:]
                if not ops or any(op not in _OPERATIONS for op in ops):
                    raise QueryError(f"unknown query operation {word!r}")
                if any(len(run) > _MAX_POSITION_DIGITS for run in re.findall(r"[0-9]+", ops)):
                    raise QueryError(f"stack position too large in {word[:32]!r}")
                steps.append(ops)
            else:
                steps.append(_test(body, word))
        return cls(tuple(steps))

    def matches(self, row: Row) -> bool:
        stack: list[bool] = []
        for step in self.steps:
            if isinstance(step, str):
                _operate(stack, step)
            else:
                stack.append(step(row))
        return all(stack)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _compare(left: str | None, right: str, less: bool) -> bool:
    if left is None:
        return False
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a < b if less else a > b
    return left < right if less else left > right


def _test(body: str, word: str) -> Test:
    if body.startswith("-"):
        name = body[1:]
        return lambda row: name not in row
    if body[:1] in {"<", ">"}:
        less = body[0] == "<"
        name, sep, value = body[1:].partition("=")
        if not sep or not name:
            raise QueryError(f"query word {word!r} needs name=value")
        return lambda row: _compare(row.get(name), value, less)
    if body.startswith("="):
        body = body[1:]
    name, sep, value = body.partition("=")
    if not name:
        raise QueryError(f"query word {word!r} names no property")
    if not sep:
        return lambda row: name in row
    return lambda row: row.get(name) == value


def _operate(stack: list[bool], ops: str) -> None:
    index = 0
    while index < len(ops):
        op = ops[index]
        if op in _DIGITS:
            end = index
            while end < len(ops) and ops[end] in _DIGITS:
                end += 1
            position = int(ops[index:end])
            stack.append(stack[position] if position < len(stack) else False)
            index = end
            continue
        if op == "!":
            stack.append(not stack.pop() if stack else True)
        elif op == ".":
            stack.append(stack[-1] if stack else True)
        else:
            right = stack.pop() if stack else True
            left = stack.pop() if stack else True
            stack.append(left or right if op == "|" else left and right)
        index += 1


def project(row: Row, proplist: list[str] | None) -> Row:
    """Only the properties asked for, in the order asked (`=.proplist=a,b`)."""
    if proplist is None:
        return row
    return {name: row[name] for name in proplist if name in row}
