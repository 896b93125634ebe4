"""What a 1.17+ agent writes into its CiliumBGPNodeConfig's status: its sessions as it sees them.

Per instance of the spec (`bgpInstances[].name`, `localASN`), per peer of that instance: `peerAddress`,
`peerASN`, `peeringState` (the GoBGP state, spelled as `cilium bgp peers` spells it), `establishedTime`
while established, and `routeCount[]` for ipv4/unicast (FACTS.md, "Cilium: BGPv2", PR #33411). A peer
whose speaker is not running yet is reported `unknown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bgpconform.bgp_states import SessionState
from bgpconform.lab.gobgp import SpeakerPeer


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_status(
    node_config: Mapping[str, Any],
    sessions: Mapping[int, list[SpeakerPeer]],
    *,
    now: float,
    established_since: dict[tuple[int, str], float],
) -> dict[str, Any]:
    """The status for `node_config`, given each local ASN's sessions; `established_since` remembers
    when each session came up, so the status changes only when a session does."""
    instances: list[dict[str, Any]] = []
    for instance in (node_config.get("spec") or {}).get("bgpInstances") or []:
        asn = int(instance.get("localASN") or 0)
        by_address = {str(peer.address): peer for peer in sessions.get(asn, [])}
        peers: list[dict[str, Any]] = []
        for wanted in instance.get("peers") or []:
            address = str(wanted.get("peerAddress") or "")
            session = by_address.get(address)
            state = session.state if session is not None else SessionState.UNKNOWN
            entry: dict[str, Any] = {
                "name": str(wanted.get("name") or ""),
                "peerAddress": address,
                "peerASN": int(wanted.get("peerASN") or 0),
                "peeringState": str(state),
            }
            key = (asn, address)
            if session is not None and state is SessionState.ESTABLISHED:
                since = established_since.get(key)
                if since is None:
                    since = now - (session.uptime_seconds or 0.0)
                    established_since[key] = since
                entry["establishedTime"] = _stamp(since)
                entry["routeCount"] = [
                    {
                        "afi": "ipv4",
                        "safi": "unicast",
                        "received": session.received,
                        "advertised": session.advertised,
                    }
                ]
            else:
                established_since.pop(key, None)
            peers.append(entry)
        instances.append({"name": str(instance.get("name") or ""), "localASN": asn, "peers": peers})
    return {"bgpInstances": instances}
