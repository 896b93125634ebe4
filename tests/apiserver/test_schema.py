"""Structural-schema semantics: the Kubernetes extensions JSON Schema does not have."""

from __future__ import annotations

from typing import Any

from bgpconform.lab.apiserver.schema import apply_defaults, drop_nulls, prune, structural_problems, validate

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["port"],
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "holdTime": {"type": "integer", "minimum": 3, "maximum": 65535, "default": 90},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "note": {"type": "string", "nullable": True, "maxLength": 5},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "peers": {
                    "type": "array",
                    "maxItems": 2,
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "address": {"type": "string", "format": "ipv4"},
                            "timers": {
                                "type": "object",
                                "properties": {"keepalive": {"type": "integer", "default": 30}},
                            },
                        },
                    },
                },
            },
        }
    },
}


def _problems(spec: dict[str, Any]) -> dict[str, str]:
    return {p.path: p.body() for p in validate({"spec": spec}, SCHEMA)}


def test_valid_object_has_no_problems() -> None:
    assert _problems({"port": "http", "mode": "a", "note": None, "tags": ["x", "y"]}) == {}
    assert _problems({"port": 179, "peers": [{"name": "r1", "address": "192.168.1.1"}]}) == {}


def test_error_texts_match_apiextensions() -> None:
    problems = _problems(
        {
            "port": True,
            "holdTime": 1,
            "mode": "c",
            "note": "toolong",
            "tags": ["x", "x"],
            "peers": [{"name": "a", "address": "nope"}, {"name": "a"}, {"name": "b"}],
        }
    )
    assert problems == {
        "spec.port": 'Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"',
        "spec.holdTime": "Invalid value: 1: spec.holdTime in body should be greater than or equal to 3",
        "spec.mode": 'Unsupported value: "c": supported values: "a", "b"',
        "spec.note": "Too long: may not be longer than 5",
        "spec.tags[1]": 'Duplicate value: "x"',
        "spec.peers": "Too many: 3: must have at most 2 items",
        "spec.peers[0].address": (
            'Invalid value: "nope": spec.peers[0].address in body must be of type ipv4: "nope"'
        ),
        "spec.peers[1]": 'Duplicate value: map[string]interface {}{"name":"a"}',
    }
    assert _problems({}) == {"spec.port": "Required value"}


def test_nulls_defaults_and_pruning() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "n", "unknownMeta": 1},
        "spec": {
            "port": 1,
            "mode": None,
            "note": None,
            "unknown": {"a": 1},
            "free": {"anything": {"goes": True}},
            "labels": {"k": "v"},
            "peers": [{"name": "r", "extra": 1, "timers": {}}],
        },
        "status": {"x": 1},
    }
    drop_nulls(obj, SCHEMA)
    apply_defaults(obj, SCHEMA)
    dropped = prune(obj, SCHEMA)
    assert sorted(dropped) == ["metadata.unknownMeta", "spec.peers[0].extra", "spec.unknown", "status"]
    assert obj["spec"] == {
        "port": 1,
        "note": None,
        "free": {"anything": {"goes": True}},
        "labels": {"k": "v"},
        "peers": [{"name": "r", "timers": {"keepalive": 30}}],
        "holdTime": 90,
    }
    assert obj["metadata"] == {"name": "n"}


def test_structural_problems() -> None:
    assert structural_problems(SCHEMA, "schema") == []
    bad = {"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}
    problems = structural_problems(bad, "schema")
    assert [p.path for p in problems] == ["schema.properties[spec].type"]
