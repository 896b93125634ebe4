"""A backend with no BGP speaker: what the CHR stand-in runs on, where no FRR exists.

The emulated router keeps and answers its configuration as usual; nothing ever dials a peer, so
`/routing/bgp/session`, `/routing/route` and `/routing/bgp/advertisements` stay empty. That is enough
to check what the harness sends to a RouterOS version, and how it starts and waits for a router,
without a real CHR.
"""

from __future__ import annotations

from typing import Any

from bgpconform.lab.routeros.frr_backend import NeighborSpec


class NoSpeakerBackend:
    """Accepts every neighbor and any AS (as a CHR with several instances would); reports no state."""

    asn: int | None = None

    def __init__(self) -> None:
        self.applied: list[NeighborSpec] = []
        self.multipath = 1

    def apply(self, desired: list[NeighborSpec], multipath: int) -> None:
        self.applied = list(desired)
        self.multipath = multipath

    def neighbors(self) -> dict[str, Any]:
        return {}

    def bgp_table(self) -> dict[str, list[dict[str, Any]]]:
        return {}

    def rib(self) -> dict[str, list[dict[str, Any]]]:
        return {}

    def advertised(self, address: str) -> dict[str, Any]:
        return {}
