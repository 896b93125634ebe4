"""Fixtures and helpers every step module shares: the scenario's context and the standard waits."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def context() -> dict[str, Any]:
    """Values one step hands the next within a scenario (a service name, an observed IP)."""
    return {}
