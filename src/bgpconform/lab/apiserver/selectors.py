"""Label and field selectors in the query-string syntax of `labels.Parse` and `fields.ParseSelector`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bgpconform.lab.apiserver.errors import ApiError, bad_request

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt") and present and value is not None:
            try:
                number = int(value)
            except ValueError:
                return False
            limit = int(self.values[0])
            return number > limit if self.op == "gt" else number < limit
        return False


class LabelSelector:
    """A parsed `labelSelector`; the empty selector matches everything."""

    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_TOKEN = re.compile(r"\s*(==|!=|=|\(|\)|,|!|>|<|[^\s=!(),<>]+)")


def parse_labels(text: str | None) -> LabelSelector:
    """Parse `app=x,tier in (a,b),!legacy`; raises a 400 ApiError like the real parser would."""
    if not text or not text.strip():
        return LabelSelector([])
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            if text[position:].strip() == "":
                break
            raise _label_error(text, f"unexpected character at position {position}")
        tokens.append(match.group(1))
        position = match.end()
    requirements: list[Requirement] = []
    index = 0

    def take() -> str:
        nonlocal index
        if index >= len(tokens):
            raise _label_error(text, "unexpected end of selector")
        token = tokens[index]
        index += 1
        return token

    while index < len(tokens):
        token = take()
        if token == "!":
            key = take()
            _check_key(text, key)
            requirements.append(Requirement(key, "!"))
        else:
            key = token
            _check_key(text, key)
            if index >= len(tokens) or tokens[index] == ",":
                requirements.append(Requirement(key, "exists"))
            else:
                op = take()
                if op in ("=", "==", "!="):
                    value = ""
                    if index < len(tokens) and tokens[index] != ",":
                        value = take()
                    _check_value(text, value)
                    requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
                elif op in (">", "<"):
                    number = take()
                    if not number.lstrip("-").isdigit():
                        raise _label_error(
                            text, f"for 'Gt', 'Lt' operators, the value must be an integer: {number}"
                        )
                    requirements.append(Requirement(key, "gt" if op == ">" else "lt", (number,)))
                elif op in ("in", "notin"):
                    if take() != "(":
                        raise _label_error(text, "found '" + tokens[index - 1] + "', expected: '('")
                    values: list[str] = []
                    while True:
                        item = take()
                        if item == ")":
                            break
                        if item == ",":
                            continue
                        _check_value(text, item)
                        values.append(item)
                    requirements.append(Requirement(key, op, tuple(values)))
                else:
                    raise _label_error(text, f"found '{op}', expected: '=', '!=', '==', 'in', notin'")
        if index < len(tokens):
            if tokens[index] != ",":
                raise _label_error(text, f"found '{tokens[index]}', expected: ',' or 'end of string'")
            index += 1
            if index >= len(tokens):
                raise _label_error(text, "found '', expected: identifier after ','")
    return LabelSelector(requirements)


def _check_key(text: str, key: str) -> None:
    if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise _label_error(
            text, f'invalid label key "{key}": name part must consist of alphanumeric characters'
        )


def _check_value(text: str, value: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise _label_error(
            text,
            f'invalid label value: "{value}": a valid label must be an empty string or '
            "consist of alphanumeric characters, '-', '_' or '.'",
        )


def _label_error(text: str, detail: str) -> ApiError:
    return bad_request(f"unable to parse requirement: {detail}")


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negate: bool

    def matches(self, actual: str) -> bool:
        return (actual != self.value) if self.negate else (actual == self.value)


class FieldSelector:
    """A parsed `fieldSelector`: `metadata.name=x,spec.nodeName!=`; values compared as strings."""

    def __init__(self, terms: list[FieldTerm]) -> None:
        self.terms = terms

    @property
    def empty(self) -> bool:
        return not self.terms

    def check_supported(self, supported: tuple[str, ...], describe: Callable[[str], ApiError]) -> None:
        for term in self.terms:
            if term.field not in supported:
                raise describe(term.field)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(term.matches(field_value(obj, term.field)) for term in self.terms)

    def single_name(self) -> str | None:
        """The name an `metadata.name=x` selector pins, as kubectl's `delete --wait` sends."""
        for term in self.terms:
            if term.field == "metadata.name" and not term.negate:
                return term.value
        return None


def parse_fields(text: str | None) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector([])
    terms: list[FieldTerm] = []
    for part in _split_commas(text):
        if not part:
            continue
        index = 0
        while index < len(part):
            if part[index] == "\\":
                index += 2
                continue
            if part.startswith(("!=", "=="), index) or part[index] == "=":
                width = 1 if part[index] == "=" and not part.startswith("==", index) else 2
                name, value = part[:index], part[index + width :]
                terms.append(FieldTerm(_unescape(name).strip(), _unescape(value), part[index] == "!"))
                break
            index += 1
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(terms)


def _split_commas(text: str) -> list[str]:
    parts: list[str] = []
    current = ""
    index = 0
    while index < len(text):
        if text[index] == "\\" and index + 1 < len(text):
            current += text[index : index + 2]
            index += 2
        elif text[index] == ",":
            parts.append(current)
            current = ""
            index += 1
        else:
            current += text[index]
            index += 1
    parts.append(current)
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string a field selector compares: nested lookup, booleans as true/false, absent as ""."""
    if path == "source":
        path = "source.component"
    if path == "status.podIPs":
        path = "status.podIP"
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def match_label_selector_object(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """`metav1.LabelSelector` (matchLabels/matchExpressions) against labels; None selects nothing."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        op = str(expression.get("operator", ""))
        values = tuple(str(v) for v in expression.get("values") or [])
        requirement = {
            "In": Requirement(expression["key"], "in", values),
            "NotIn": Requirement(expression["key"], "notin", values),
            "Exists": Requirement(expression["key"], "exists"),
            "DoesNotExist": Requirement(expression["key"], "!"),
        }.get(op)
        if requirement is None or not requirement.matches(labels):
            return False
    return True
