"""A named set of switches a lab process turns on at start: its defects, its shortcuts.

A lab process runs one lab, so the set in force is process-wide; the emulated components ask
`active(NAME)` where the behaviour would be, and the lab (`LabCluster.start`, `lab serve`) sets it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from bgpconform.errors import ConfigError


class Switches:
    def __init__(self, option: str, kind: str, names: Iterable[str]) -> None:
        self.option = option  # as the user types it, for the error message
        self.kind = kind
        self.names = tuple(names)
        self._lock = threading.Lock()
        self._active: frozenset[str] = frozenset()

    def checked(self, names: Iterable[str]) -> frozenset[str]:
        """The names, each known; an unknown one is one message listing the catalogue."""
        wanted = frozenset(names)
        unknown = sorted(wanted - set(self.names))
        if unknown:
            raise ConfigError(
                f"{self.option} {', '.join(unknown)}: no such {self.kind}; "
                f"fix: choose from {', '.join(self.names)}"
            )
        return wanted

    def activate(self, names: Iterable[str]) -> None:
        with self._lock:
            self._active = self.checked(names)

    def active(self, name: str) -> bool:
        """Whether this one is on; asking for a name the catalogue lacks is a harness bug."""
        if name not in self.names:
            raise KeyError(f"no {self.kind} named {name!r}")
        return name in self._active

    def active_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._active))
