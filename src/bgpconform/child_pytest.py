"""The suite in a child pytest process: how the matrix and the shards start it, so a run they report
can be replayed from the command they show."""

from __future__ import annotations

import sys

# Plugins a run of the features never uses that pytest would load from the environment anyway: the
# cache (runs side by side would share one), and hypothesis, which the harness's own tests use and
# whose plugin costs each child half a second of CPU, against four to eight children on two cores.
UNUSED_PLUGINS = ("cacheprovider", "hypothesispytest")


def pytest_argv(*args: str) -> list[str]:
    """This interpreter's pytest without the plugins the features never use."""
    blocked = [arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")]
    return [sys.executable, "-m", "pytest", *blocked, *args]
