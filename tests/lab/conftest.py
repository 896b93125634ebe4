"""A lab per test module, built from the shipped walkthrough topology with the real daemons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bgpconform.lab.lab import Lab
from bgpconform.topology import Topology, load_topology

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab_topology() -> Topology:
    return load_topology(REPO / "topologies" / "lab.yaml")


@pytest.fixture(scope="module")
def lab(lab_topology: Topology) -> Iterator[Lab]:
    with Lab(lab_topology, purpose="tests") as running:
        yield running
