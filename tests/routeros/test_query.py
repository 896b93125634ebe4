"""`print` query words and `.proplist` as the lab's RouterOS evaluates them, checked on small rows so each
operator's effect is visible in which rows come back."""

from __future__ import annotations

import pytest

from bgpconform.lab.routeros.query import Query, QueryError, Row, project

ETHER1: Row = {".id": "*1", "name": "ether1", "type": "ether", "mtu": "1500", "comment": "a=b"}
ETHER2: Row = {".id": "*2", "name": "ether2", "type": "ether", "mtu": "900", "disabled": "true"}
VLAN: Row = {".id": "*3", "name": "vlan10", "type": "vlan", "mtu": "1496"}
BRIDGE: Row = {".id": "*4", "name": "bridge", "type": "bridge"}
ROWS = [ETHER1, ETHER2, VLAN, BRIDGE]


def names(words: list[str], rows: list[Row] = ROWS) -> list[str]:
    query = Query.parse(words)
    return [row["name"] for row in rows if query.matches(row)]


def test_empty_query_matches_every_row() -> None:
    assert names([]) == ["ether1", "ether2", "vlan10", "bridge"]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["?type=ether"], ["ether1", "ether2"]),
        (["?=type=ether"], ["ether1", "ether2"]),
        (["?type=nothing"], []),
        (["?mtu="], []),  # equal to the empty string: no row has an empty mtu
        (["?=comment=a=b"], ["ether1"]),  # the value keeps every `=` after the first
        (["?comment=a=b"], ["ether1"]),
        (["?disabled"], ["ether2"]),  # has the property
        (["?-mtu"], ["bridge"]),  # lacks it
        (["?type=ether", "?-disabled"], ["ether1"]),  # every value left on the stack must hold
    ],
)
def test_equality_and_presence(words: list[str], expected: list[str]) -> None:
    assert names(words) == expected


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        # Numbers compare as numbers: "900" < "1500" although "9" > "1".
        (["?<mtu=1500"], ["ether2", "vlan10"]),
        (["?>mtu=1496"], ["ether1"]),
        (["?>mtu=1500"], []),
        # Anything else compares as text; a row without the property never matches.
        (["?<name=c"], ["bridge"]),
        (["?>name=ether1"], ["ether2", "vlan10"]),
        (["?<type=zzz"], ["ether1", "ether2", "vlan10", "bridge"]),
    ],
)
def test_less_and_greater(words: list[str], expected: list[str]) -> None:
    assert names(words) == expected


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        # The RouterOS API manual's examples.
        (["?type=ether", "?type=vlan", "?#|!"], ["bridge"]),  # neither ether nor vlan
        (["?type=ether", "?type=vlan", "?#|"], ["ether1", "ether2", "vlan10"]),
        # The same with the operations in separate words.
        (["?type=ether", "?type=vlan", "?#|", "?#!"], ["bridge"]),
        (["?type=ether", "?-disabled", "?#&"], ["ether1"]),
        (["?type=ether", "?#!"], ["vlan10", "bridge"]),
        # `.` duplicates the top; `!` then negates only the copy, so nothing can match.
        (["?type=ether", "?#.!"], []),
        (["?type=ether", "?#.&"], ["ether1", "ether2"]),
    ],
)
def test_stack_operations(words: list[str], expected: list[str]) -> None:
    assert names(words) == expected


def test_digit_copies_the_entry_counted_from_the_bottom() -> None:
    """[ether, vlan] then a copy of entry 0 gives [ether, vlan, ether]; `|&` leaves ether & (vlan|ether).

    A copy from the top (vlan) would leave ether & vlan, which no row is."""
    assert names(["?type=ether", "?type=vlan", "?#0|&"]) == ["ether1", "ether2"]
    assert names(["?type=ether", "?type=vlan", "?#1|&"]) == []


def test_digit_past_the_stack_pushes_false() -> None:
    assert names(["?type=ether", "?#5"]) == []
    assert names(["?type=ether", "?#5!"]) == ["ether1", "ether2"]


def test_digits_form_one_number() -> None:
    """`?#10` copies entry 10, not entry 1 and then entry 0.

    Entries 0-9 are `?name`, entry 10 is `?-disabled`; `10!|` replaces entry 10 by
    (-disabled | !-disabled), always true, so every named row matches. Read as `1`, `0` the copies
    would be of `?name`, and entry 10 would stay: ether2 (disabled) would drop out."""
    words = ["?name"] * 10 + ["?-disabled", "?#10!|"]
    assert names(words) == ["ether1", "ether2", "vlan10", "bridge"]


@pytest.mark.parametrize(
    "word",
    ["?", "?=", "?==x", "?<", "?<mtu", "?>=5", "?<=5", "?#", "?#x", "?#|a", "?# ", "?#-1"],
)
def test_words_that_cannot_be_evaluated_raise(word: str) -> None:
    with pytest.raises(QueryError):
        Query.parse([word])


def test_query_error_names_the_word() -> None:
    with pytest.raises(QueryError, match=r"\?#x"):
        Query.parse(["?type=ether", "?#x"])


@pytest.mark.parametrize("word", ["?#²", "?#" + "1" * 5000], ids=["superscript-two", "5000-digits"])
def test_a_parsed_query_always_evaluates(word: str) -> None:
    """What parse accepts, matches must evaluate to a bool. A superscript digit passes `str.isdigit`
    but not `int`; 5000 digits exceed Python's int-from-string limit: parse refuses both."""
    try:
        query = Query.parse(["?type=ether", word])
    except QueryError:
        return
    assert query.matches(ETHER1) in {True, False}


def test_project_without_proplist_is_the_row() -> None:
    assert project(ETHER1, None) == ETHER1


def test_project_follows_proplist_order_and_skips_missing_names() -> None:
    projected = project(ETHER1, ["mtu", "nope", "name", ".id"])
    assert list(projected.items()) == [("mtu", "1500"), ("name", "ether1"), (".id", "*1")]


def test_project_with_an_empty_proplist_is_empty() -> None:
    """`=.proplist=` splits to a single empty name, which no row has."""
    assert project(ETHER1, [""]) == {}
    assert project(ETHER1, []) == {}


def test_project_does_not_change_the_row() -> None:
    before = dict(ETHER1)
    project(ETHER1, ["name"])
    assert before == ETHER1
