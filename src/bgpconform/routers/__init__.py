"""The router port and its adapters: how the harness configures and reads the upstream router."""

from bgpconform.bgp_states import SessionState
from bgpconform.routers.port import BgpPeer, Route, RouterDump, RouterPort, Session

__all__ = ["BgpPeer", "Route", "RouterDump", "RouterPort", "Session", "SessionState"]
