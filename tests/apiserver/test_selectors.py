"""Selector parsing and matching, in the query-string syntax clients send."""

from __future__ import annotations

import pytest

from bgpconform.lab.apiserver.errors import ApiError
from bgpconform.lab.apiserver.selectors import match_label_selector_object, parse_fields, parse_labels

LABELS = {"app": "web", "tier": "front", "bgp-policy": "a", "example.com/zone": "z1", "count": "5"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app=web,tier=back", False),
        ("tier in (front, back)", True),
        ("tier notin (front)", False),
        ("example.com/zone", True),
        ("!example.com/zone", False),
        ("!missing", True),
        ("count>4,count<6", True),
        ("bgp-policy=a", True),
        ("app=", False),
    ],
)
def test_label_selectors(selector: str, matches: bool) -> None:
    assert parse_labels(selector).matches(LABELS) is matches


@pytest.mark.parametrize("selector", ["app in (a", "=x", "app=web,", "a b", "bad key!=x"])
def test_malformed_label_selectors_are_400(selector: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_labels(selector)
    assert raised.value.code == 400


def test_field_selectors() -> None:
    pod = {
        "metadata": {"name": "a", "namespace": "kube-system"},
        "spec": {"nodeName": "", "hostNetwork": True},
    }
    assert parse_fields("metadata.name=a,metadata.namespace==kube-system").matches(pod)
    assert parse_fields("spec.nodeName=").matches(pod)
    assert parse_fields("spec.hostNetwork=true").matches(pod)
    assert not parse_fields("metadata.name!=a").matches(pod)
    assert parse_fields("metadata.name=a").single_name() == "a"
    assert parse_fields(r"metadata.name=a\,b").terms[0].value == "a,b"
    with pytest.raises(ApiError):
        parse_fields("nonsense")


def test_label_selector_objects() -> None:
    walkthrough = {
        "matchExpressions": [{"key": "somekey", "operator": "NotIn", "values": ["never-used-value"]}]
    }
    assert match_label_selector_object(walkthrough, {"anything": "x"})
    assert match_label_selector_object({"matchLabels": {"bgp-policy": "a"}}, LABELS)
    assert not match_label_selector_object({"matchLabels": {"bgp-policy": "b"}}, LABELS)
    assert match_label_selector_object({}, {})
    assert not match_label_selector_object(None, LABELS)
