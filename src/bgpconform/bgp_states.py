"""BGP session states: the protocol's own vocabulary, shared by the router port and Cilium's CLI output."""

from __future__ import annotations

from enum import StrEnum


class SessionState(StrEnum):
    """BGP FSM states (RFC 4271), spelled as `cilium bgp peers` prints them (FACTS.md)."""

    UNKNOWN = "unknown"
    IDLE = "idle"
    CONNECT = "connect"
    ACTIVE = "active"
    OPEN_SENT = "open_sent"
    OPEN_CONFIRM = "open_confirm"
    ESTABLISHED = "established"
