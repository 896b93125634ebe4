"""Which runs a version matrix holds: one per (topology, Cilium release, BGP API it offers).

The releases are `MATRIX_RELEASES` (one patch release per supported minor); each runs on every API it
has (`bgp_api.apis`): v1 up to 1.18, BGPv2 from 1.16. `--versions 1.13,1.16,1.19` keeps some minors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bgpconform.cilium import bgp_api
from bgpconform.cilium.bgp_api import BgpApi
from bgpconform.cilium.versions import MATRIX_RELEASES, SUPPORTED_RANGE, cilium_minor
from bgpconform.errors import ConfigError


@dataclass(frozen=True, order=True)
class Cell:
    topology: str  # a file name under topologies/
    minor: tuple[int, int]
    api: BgpApi

    @property
    def version(self) -> str:
        return MATRIX_RELEASES[self.minor]

    @property
    def label(self) -> str:
        """The row's name: `Cilium 1.16.3 on BGPv2`."""
        return f"Cilium {self.version} on {'BGPv2' if self.api is BgpApi.V2 else 'the v1 policy'}"

    @property
    def slug(self) -> str:
        """A directory name for the cell's reports."""
        return f"{self.topology.removesuffix('.yaml')}-{self.version}-{self.api.value}"


def parse_versions(text: str | None) -> list[tuple[int, int]]:
    """`1.13,1.16.3,v1.19` -> their minors; None or empty: every minor of the matrix."""
    if not text:
        return sorted(MATRIX_RELEASES)
    minors: list[tuple[int, int]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            minor = cilium_minor(part, since=(0, 0), missing="{version}")
        except ValueError:
            minor = None
        if minor not in MATRIX_RELEASES:
            known = ", ".join(f"{m[0]}.{m[1]}" for m in sorted(MATRIX_RELEASES))
            raise ConfigError(
                f"--versions: {part!r} is not a Cilium minor of the matrix ({SUPPORTED_RANGE}); "
                f"fix: name some of {known}, separated by commas"
            )
        if minor not in minors:
            minors.append(minor)
    return sorted(minors)


def plan(topologies: Sequence[str], minors: Iterable[tuple[int, int]]) -> list[Cell]:
    """Every cell, topology by topology, releases in order, v1 before BGPv2."""
    cells = [
        Cell(topology, minor, api)
        for topology in topologies
        for minor in minors
        for api in bgp_api.apis(MATRIX_RELEASES[minor]).available
    ]
    return sorted(cells, key=lambda c: (list(topologies).index(c.topology), c.minor, c.api.value))
