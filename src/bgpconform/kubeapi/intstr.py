"""Kubernetes' int-or-percent fields (`maxUnavailable`, `maxSurge`), read as its controllers read them;
one rule for the lab's controllers and for the harness reading a real DaemonSet."""

from __future__ import annotations

import math
import re


def int_or_percent(value: object, total: int, round_up: bool) -> int:
    """`intstr.GetScaledValueFromIntOrPercent`: "25%" of total, rounded as the field wants."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"(\d+)%", str(value))
    if not match:
        return int(str(value))
    scaled = int(match.group(1)) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)
