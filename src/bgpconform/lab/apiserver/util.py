"""Small helpers shared by the modules: JSON-shaped copies and Kubernetes timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def jcopy(value: Any) -> Any:
    """Deep copy of JSON-shaped data; several times faster than `copy.deepcopy` on API objects."""
    if isinstance(value, dict):
        return {k: jcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jcopy(v) for v in value]
    return value


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """`metav1.Time` on the wire: RFC 3339 in UTC with whole seconds."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(moment: datetime | None = None) -> str:
    """`metav1.MicroTime`, as events' eventTime uses it."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
