"""The lab's random choices, where Cilium's are random, from one seed a run records.

Cilium 1.13's LB IPAM starts its address scan at a random offset, and which of two pools created in
the same second is marked conflicting depends on Go's map order (FACTS.md, LB IPAM). The lab makes
those choices at random too, so the harness meets them as it would on a rack; the seed is printed in
the report (`lab seed`), and `pytest --lab-seed N` / `bgpconform lab up --seed N` replays a run's
choices. Each component asks for its own stream by name, so one component's choices do not shift
another's, whatever order threads ask in.

A lab process runs one lab, so the seed is process-wide, set by `LabCluster.start` (as the defects).
"""

from __future__ import annotations

import random
import secrets
import threading

_lock = threading.Lock()
_seed: int = secrets.randbits(32)
_asked: dict[str, int] = {}


def reseed(seed: int | None) -> int:
    """Start the run's choices from `seed` (None: a fresh one); returns the seed in force."""
    global _seed  # noqa: PLW0603 (one lab per process: see the module docstring)
    with _lock:
        _seed = secrets.randbits(32) if seed is None else seed
        _asked.clear()
        return _seed


def seed() -> int:
    return _seed


def stream(name: str) -> random.Random:
    """A generator for one component's choices; the n-th stream of a name is the same for a seed."""
    with _lock:
        count = _asked.get(name, 0)
        _asked[name] = count + 1
        return random.Random(f"{_seed}/{name}/{count}")
