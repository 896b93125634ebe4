"""How soon a node's BGP speaker dials the router, by Cilium version: one table (FACTS.md, "Cilium:
BGP control plane v1", GoBGP timers).

Cilium 1.13's `AddNeighbor` sets no timers, so GoBGP's defaults are in force: its connect loop dials
first 5-10 s after the neighbor is added and, after a failed dial, again after the 120 s connect retry
plus up to as much jitter (120-239 s). The node never listens, so a router configured after the first
dial waits for the next one. From 1.14 the policy's `connectRetryTimeSeconds` (default 120) replaces
the 120, and the harness's policy sets the topology's `bgp.timers` there. GoBGP raises any connect
retry below 5 s to 5 s (`minConnectRetryInterval` in its `fsm.go`), so a policy's 1 s still means a
dial every 5-9 s: the floor under every wait for a session, however short the timers. The harness's
waits for a session follow this unless a topology sets its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from bgpconform.cilium.versions import cilium_minor

GOBGP_CONNECT_RETRY = 120  # seconds, GoBGP's default and 1.14's `connectRetryTimeSeconds` default
GOBGP_MIN_CONNECT_RETRY = 5  # GoBGP's `minConnectRetryInterval`: a shorter connect retry is raised to it
FIRST_DIAL_MAX = 10.0  # GoBGP's connect loop: the first dial 5-10 s after the neighbor is added
MARGIN = 20.0  # the session's own OPEN/KEEPALIVE exchange, the agent's reconcile, our polling


@dataclass(frozen=True)
class Dialling:
    connect_retry: int  # seconds between dials before jitter, as configured
    policy_sets_it: bool  # whether a policy can change it (1.14+)

    @property
    def retry_in_force(self) -> int:
        """The retry GoBGP dials with: the configured one, raised to its floor."""
        return max(self.connect_retry, GOBGP_MIN_CONNECT_RETRY)

    @property
    def retry_min(self) -> float:
        """The shortest gap between two dials: no jitter."""
        return float(self.retry_in_force)

    @property
    def retry_max(self) -> float:
        """The longest gap between two dials: the retry plus its jitter (less than the retry again)."""
        return 2.0 * self.retry_in_force - 1

    @property
    def established_within(self) -> float:
        """How long a session may take once the router accepts it, in the worst case: a dial just
        missed, the next one after the longest gap."""
        return FIRST_DIAL_MAX + self.retry_max + MARGIN


def node_dialling(cilium_version: str, policy_connect_retry: int | None = None) -> Dialling:
    """The dialling of one node's speaker; `policy_connect_retry` is the policy's value (1.14+ only)."""
    minor = cilium_minor(cilium_version, since=(1, 13), missing="no BGP timers known for Cilium {version}")
    if minor < (1, 14):
        return Dialling(GOBGP_CONNECT_RETRY, policy_sets_it=False)
    return Dialling(policy_connect_retry or GOBGP_CONNECT_RETRY, policy_sets_it=True)


def policy_timers(cilium_version: str, connect_retry: int, hold: int, keepalive: int) -> dict[str, int]:
    """The neighbor timer fields the harness's policy sets: none on 1.13 (the CRD has none, and the
    API server would prune them), the topology's `bgp.timers` from 1.14, as cilium-cli's own BGP test
    shortens them (FACTS.md, "BGP control plane v1" and "How peers verify")."""
    if not node_dialling(cilium_version).policy_sets_it:
        return {}
    return {
        "connectRetryTimeSeconds": connect_retry,
        "holdTimeSeconds": hold,
        "keepAliveTimeSeconds": keepalive,
    }
