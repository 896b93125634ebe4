"""The suite in a child pytest process: how the matrix and the shards start it, so a run they report
can be replayed from the command they show."""

from __future__ import annotations

import sys


def pytest_argv(*args: str) -> list[str]:
    """This interpreter's pytest without its cache (runs side by side would share one)."""
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
