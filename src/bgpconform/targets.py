"""The targets the harness knows."""

from __future__ import annotations

TARGETS = ("lab", "k3d", "pi")
