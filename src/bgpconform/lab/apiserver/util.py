"""Small helpers shared by the modules: JSON-shaped copies and Kubernetes timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from sys import intern
from typing import Any


def jcopy(value: Any) -> Any:
    """Deep copy of JSON-shaped data; several times faster than `copy.deepcopy` on API objects.

    Keys are interned: every stored object repeats "metadata", "name", "image"..., and sharing them
    is a large part of what keeps ten thousand objects small.
    """
    if isinstance(value, dict):
        return {intern(k) if type(k) is str else k: jcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jcopy(v) for v in value]
    return value


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """`metav1.Time` on the wire: RFC 3339 in UTC with whole seconds."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
