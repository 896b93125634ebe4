"""RouterOS time values (`1h33m44s560ms`, `1m30s`, `3s`), read from sessions and written to connections."""

from __future__ import annotations

import re

_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")


def parse_duration(text: str) -> float | None:
    """Seconds in a RouterOS duration; a bare number counts as seconds; None when it is not one."""
    value = text.strip()
    if not value:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    if re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ms|w|d|h|m|s))+", value) is None:
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(value))


def format_duration(seconds: float) -> str:
    """The way RouterOS prints an uptime: largest units first, milliseconds last, zero parts left out."""
    millis = max(0, round(seconds * 1000))
    parts = []
    for unit, size in (("w", 604800000), ("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts) or "0s"
