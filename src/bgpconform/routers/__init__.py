"""The router port and its adapters: how the harness configures and reads the upstream router."""

from bgpconform.routers.port import (
    BgpPeer,
    Route,
    RouterDump,
    RouterPort,
    Session,
    SessionState,
)

__all__ = ["BgpPeer", "Route", "RouterDump", "RouterPort", "Session", "SessionState"]
