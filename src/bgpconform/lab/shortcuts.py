"""Where the lab may trade faithfulness for speed, each by name, off unless asked for.

The lab is as slow as a real cluster by default (Cilium 1.13's BGP dials on GoBGP's default timers:
first dial 5-10 s after a neighbor is added, then every 120-239 s; FACTS.md, "BGP control plane v1").
A shortcut is chosen with `pytest --lab-shortcut NAME` or `bgpconform lab up --shortcut NAME`, and a
run that used one says so in its report (`shortcuts in force`, at the top). A lab process runs one lab,
so the active set is process-wide, set where the defects' is (`LabCluster.start`, `lab serve`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from bgpconform.errors import ConfigError

SHORTCUTS: dict[str, str] = {
    "short-bgp-timers": (
        "the agents dial with the topology's bgp.timers (connect retry "
        "{connect_retry} s) instead of the timers Cilium {cilium_version} leaves to GoBGP "
        "(first dial 5-10 s, then every 120-239 s)"
    ),
}

_lock = threading.Lock()
_active: frozenset[str] = frozenset()


def checked(names: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(names)
    unknown = sorted(wanted - set(SHORTCUTS))
    if unknown:
        raise ConfigError(
            f"--lab-shortcut {', '.join(unknown)}: no such shortcut; fix: choose from {', '.join(SHORTCUTS)}"
        )
    return wanted


def activate(names: Iterable[str]) -> None:
    global _active  # noqa: PLW0603 (one lab per process: see the module docstring)
    with _lock:
        _active = checked(names)


def active(name: str) -> bool:
    if name not in SHORTCUTS:
        raise KeyError(f"no shortcut named {name!r}")
    return name in _active


def describe(name: str, **facts: object) -> str:
    """The shortcut as a report states it, with the run's values filled in."""
    return f"{name}: {SHORTCUTS[name].format(**facts)}"
