"""RouterOS's read-only menus (`session`, `route`, `advertisements`) computed from FRR's JSON.

Field names and values are RouterOS's (FACTS.md, the walkthrough's `session/print` and
`/routing/route/print`): sessions named `<connection>-1` with `remote.*`/`local.*` groups and an
`established` flag; one route row per BGP path, `active` for the paths the router forwards with and
candidates for the rest (RouterOS before 7.22 installs one of equal paths), distance 200 for iBGP and
20 for eBGP, scope 40 and target-scope 30 for BGP, connected routes with distance 0 and scope 10.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from bgpconform.routers.routeros.durations import format_duration

Row = dict[str, str]

# A TCP session exists in these states; RouterOS's session menu lists established and pending ones.
_SESSION_STATES = {"Established", "OpenSent", "OpenConfirm"}
_ORIGIN_CODES = {"igp": "0", "egp": "1", "incomplete": "2", "?": "2", "i": "0", "e": "1"}


def _yes(value: bool) -> str:
    return "true" if value else "false"


def _millis(value: Any) -> str | None:
    return format_duration(value / 1000) if isinstance(value, int | float) else None


def session_rows(connections: list[Row], neighbors: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for connection in connections:
        if connection.get("disabled") == "true":
            continue
        data = neighbors.get(connection.get("remote.address", ""))
        if not isinstance(data, dict) or data.get("bgpState") not in _SESSION_STATES:
            continue
        established = data.get("bgpState") == "Established"
        stats = data.get("messageStats", {})
        family = data.get("addressFamilyInfo", {}).get("ipv4Unicast", {})
        row: Row = {
            "name": f"{connection.get('name', '')}-1",
            "remote.address": connection.get("remote.address", ""),
            "remote.as": str(data.get("remoteAs", "")),
            "remote.id": str(data.get("remoteRouterId", "")),
            "remote.afi": "ip",
            "remote.messages": str(stats.get("totalRecv", "")),
            "local.role": connection.get("local.role", ""),
            "local.address": str(data.get("hostLocal", "")),
            "local.as": str(data.get("localAs", "")),
            "local.id": str(data.get("localRouterId", "")),
            "local.messages": str(stats.get("totalSent", "")),
            "output.default-originate": connection.get("output.default-originate", "never"),
            "multihop": "yes" if connection.get("local.role", "").startswith("ibgp") else "no",
            "established": _yes(established),
            "prefix-count": str(family.get("acceptedPrefixCounter", 0)),
        }
        for key, value in (
            ("remote.hold-time", _millis(data.get("bgpTimerHoldTimeMsecs"))),
            ("hold-time", _millis(data.get("bgpTimerHoldTimeMsecs"))),
            ("keepalive-time", _millis(data.get("bgpTimerKeepAliveIntervalMsecs"))),
            ("uptime", _millis(data.get("bgpTimerUpMsec")) if established else None),
        ):
            if value is not None:
                row[key] = value
        rows.append({key: value for key, value in row.items() if value != ""})
    return rows


def _network_key(prefix: str) -> tuple[int, int]:
    try:
        network = IPv4Network(prefix)
    except ValueError:
        return (1 << 33, 0)
    return (int(network.network_address), network.prefixlen)


def route_rows(bgp_table: dict[str, list[dict[str, Any]]], rib: dict[str, list[dict[str, Any]]]) -> list[Row]:
    rows: list[Row] = []
    interfaces: dict[str, str] = {}
    for entries in rib.values():
        for entry in entries:
            if entry.get("protocol") == "connected":
                for hop in entry.get("nexthops", []):
                    interfaces[entry.get("prefix", "")] = str(hop.get("interfaceName", ""))
    for prefix in sorted(set(bgp_table) | set(rib), key=_network_key):
        installed: dict[str, str] = {}
        for entry in rib.get(prefix, []):
            if entry.get("protocol") == "bgp" and entry.get("installed"):
                for hop in entry.get("nexthops", []):
                    if hop.get("fib") and "ip" in hop:
                        installed[str(hop["ip"])] = str(hop.get("interfaceName", ""))
        paths = bgp_table.get(prefix, [])
        active_count = sum(1 for path in paths if _path_hop(path) in installed)
        for path in sorted(paths, key=lambda p: _network_key(_path_hop(p) + "/32")):
            hop = _path_hop(path)
            internal = path.get("pathFrom") == "internal"
            active = hop in installed
            interface = installed.get(hop) or _interface_for(hop, interfaces)
            rows.append(
                {
                    "dst-address": prefix,
                    "gateway": hop,
                    "immediate-gw": f"{hop}%{interface}" if interface else hop,
                    "afi": "ip4",
                    "distance": "200" if internal else "20",
                    "scope": "40",
                    "target-scope": "30",
                    "routing-table": "main",
                    "belongs-to": f"bgp-IP-{path.get('peerId', hop)}",
                    "bgp": "true",
                    "active": _yes(active),
                    "inactive": "false",
                    "disabled": "false",
                    "ecmp": _yes(active and active_count > 1),
                    "contribution": "active" if active else "candidate",
                }
            )
        for entry in rib.get(prefix, []):
            protocol = entry.get("protocol")
            if protocol not in {"connected", "kernel", "static"}:
                continue
            hops = entry.get("nexthops", [{}])
            first = hops[0] if hops else {}
            interface = str(first.get("interfaceName", ""))
            connected = protocol == "connected"
            gateway = str(first.get("ip", interface))
            rows.append(
                {
                    "dst-address": prefix,
                    "gateway": gateway,
                    "immediate-gw": interface if connected else f"{gateway}%{interface}",
                    "afi": "ip4",
                    "distance": "0" if connected else "1",
                    "scope": "10" if connected else "30",
                    "target-scope": "" if connected else "10",
                    "routing-table": "main",
                    "connect": _yes(connected),
                    "static": _yes(not connected),
                    "active": _yes(bool(entry.get("installed"))),
                    "inactive": "false",
                    "disabled": "false",
                    "ecmp": "false",
                }
            )
    return [{key: value for key, value in row.items() if value != ""} for row in rows]


def _path_hop(path: dict[str, Any]) -> str:
    hops = [hop for hop in path.get("nexthops", []) if hop.get("afi", "ipv4") == "ipv4" and "ip" in hop]
    return str(hops[0]["ip"]) if hops else ""


def _interface_for(address: str, connected: dict[str, str]) -> str:
    for prefix, interface in connected.items():
        try:
            if IPv4Network(f"{address}/32").subnet_of(IPv4Network(prefix)):
                return interface
        except ValueError:
            continue
    return ""


def advertisement_rows(
    connections: list[Row], neighbors: dict[str, Any], advertised: dict[str, dict[str, Any]]
) -> list[Row]:
    """What each session sent, only for connections that keep sent attributes (FACTS.md)."""
    rows: list[Row] = []
    for connection in connections:
        if connection.get("output.keep-sent-attributes") != "yes":
            continue
        address = connection.get("remote.address", "")
        data = neighbors.get(address)
        if not isinstance(data, dict) or data.get("bgpState") != "Established":
            continue
        internal = connection.get("local.role", "").startswith("ibgp")
        peer = f"{connection.get('name', '')}-1"
        nexthop = str(data.get("nexthop") or data.get("hostLocal", ""))
        family = data.get("addressFamilyInfo", {}).get("ipv4Unicast", {})
        if connection.get("output.default-originate") == "always" and family.get("defaultSent"):
            rows.append(_advertisement(peer, "0.0.0.0/0", nexthop, internal, "0"))
        for prefix, route in sorted(advertised.get(address, {}).get("advertisedRoutes", {}).items()):
            origin = _ORIGIN_CODES.get(str(route.get("origin", "")).lower(), "2")
            rows.append(_advertisement(peer, prefix, str(route.get("nextHop", nexthop)), internal, origin))
    return rows


def _advertisement(peer: str, dst: str, nexthop: str, internal: bool, origin: str) -> Row:
    row = {"peer": peer, "dst": dst, "nexthop": nexthop, "origin": origin}
    if internal:
        row["local-pref"] = "100"
    return row
