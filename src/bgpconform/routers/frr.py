"""FRR adapter for the router port, reading `vtysh ... json` (the way MetalLB's e2e reads FRR).

The adapter only speaks vtysh and `ip -j route` through a transport, so the same code serves the lab's
FRR (a local vty socket) and an FRR reached over SSH.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Any, Protocol

from bgpconform.bgp_states import SessionState
from bgpconform.commands import Place
from bgpconform.errors import CommandError, HarnessError
from bgpconform.routers.port import BgpPeer, Route, RouterDump, Session

HARNESS_MARK = "bgpconform"

_FRR_STATES = {
    "idle": SessionState.IDLE,
    "connect": SessionState.CONNECT,
    "active": SessionState.ACTIVE,
    "opensent": SessionState.OPEN_SENT,
    "openconfirm": SessionState.OPEN_CONFIRM,
    "established": SessionState.ESTABLISHED,
}


class FrrTransport(Protocol):
    """How commands reach an FRR router."""

    def vtysh(self, *commands: str) -> str:
        """Run vtysh with each command as one `-c`; return its output."""
        ...

    def kernel_routes(self, prefix: IPv4Network) -> str:
        """`ip -j route show <prefix>` as the router's kernel answers it."""
        ...


class VtyshTransport:
    """vtysh and `ip route` run at a `Place`: the lab's namespace, a router's namespace here, or SSH."""

    def __init__(self, place: Place, vty_socket: str | None = None, timeout: float = 15.0) -> None:
        self.place = place
        self.vty_socket = vty_socket
        self.timeout = timeout

    def vtysh(self, *commands: str) -> str:
        argv = ["vtysh"] + (["--vty_socket", self.vty_socket] if self.vty_socket else [])
        for command in commands:
            argv += ["-c", command]
        try:
            return self.place.run(argv, timeout=self.timeout).stdout
        except CommandError as exc:
            raise HarnessError(f"vtysh on {self.place} failed: {exc}") from exc

    def kernel_routes(self, prefix: IPv4Network) -> str:
        try:
            return self.place.run(["ip", "-j", "route", "show", str(prefix)], timeout=self.timeout).stdout
        except CommandError as exc:
            raise HarnessError(f"`ip route` on {self.place} failed: {exc}") from exc


class FrrRouter:
    """The router port on FRR 8.x."""

    def __init__(self, transport: FrrTransport, asn: int, name: str = "frr") -> None:
        self.transport = transport
        self.asn = asn
        self.name = name

    def _json(self, command: str) -> Any:
        text = self.transport.vtysh(command)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise HarnessError(
                f"FRR answered `{command}` with something that is not JSON: {text[:200]!r}"
            ) from exc

    def version(self) -> str:
        first = self.transport.vtysh("show version").splitlines()
        return first[0].strip() if first else "FRR (unknown version)"

    def configure_peers(self, peers: list[BgpPeer]) -> None:
        commands = ["configure terminal", f"router bgp {self.asn}"]
        for peer in peers:
            commands += [
                f"neighbor {peer.address} remote-as {peer.remote_asn}",
                f"neighbor {peer.address} description {HARNESS_MARK}:{peer.name}",
                f"neighbor {peer.address} timers {peer.keepalive} {peer.hold}",
                f"neighbor {peer.address} timers connect {peer.connect_retry}",
            ]
        commands.append("address-family ipv4 unicast")
        for peer in peers:
            commands.append(f"neighbor {peer.address} activate")
            if peer.default_originate:
                commands.append(f"neighbor {peer.address} default-originate")
        commands += ["exit-address-family", "end"]
        self._configure(commands)

    def remove_peers(self) -> None:
        neighbors = self._json("show bgp neighbors json")
        ours = [address for address, data in neighbors.items() if _is_ours(data)]
        if ours:
            self._configure(
                ["configure terminal", f"router bgp {self.asn}", *(f"no neighbor {a}" for a in ours), "end"]
            )

    def _configure(self, commands: list[str]) -> None:
        output = self.transport.vtysh(*commands)
        problems = [line for line in output.splitlines() if line.startswith("%")]
        if problems:
            raise HarnessError("FRR refused the configuration:\n" + "\n".join(problems))

    def sessions(self) -> list[Session]:
        neighbors = self._json("show bgp neighbors json")
        sessions = []
        for address, data in neighbors.items():
            state = _FRR_STATES.get(str(data.get("bgpState", "")).lower(), SessionState.UNKNOWN)
            family = data.get("addressFamilyInfo", {}).get("ipv4Unicast", {})
            uptime = data.get("bgpTimerUpMsec") if state is SessionState.ESTABLISHED else None
            description = str(data.get("nbrDesc", ""))
            sessions.append(
                Session(
                    peer=IPv4Address(address),
                    state=state,
                    remote_asn=data.get("remoteAs"),
                    name=description.removeprefix(f"{HARNESS_MARK}:"),
                    uptime_seconds=uptime / 1000 if isinstance(uptime, int) else None,
                    received=int(family.get("acceptedPrefixCounter", 0)),
                    advertised=int(family.get("sentPrefixCounter", 0)),
                )
            )
        return sorted(sessions, key=lambda s: s.peer)

    def bgp_routes(self, prefix: IPv4Network) -> list[Route]:
        data = self._json(f"show bgp ipv4 unicast {prefix} json")
        routes = []
        for path in data.get("paths", []):
            hops = tuple(
                IPv4Address(h["ip"]) for h in path.get("nexthops", []) if h.get("afi", "ipv4") == "ipv4"
            )
            best = (
                bool(path.get("bestpath", {}).get("overall"))
                if isinstance(path.get("bestpath"), dict)
                else False
            )
            active = best or bool(path.get("multipath"))
            routes.append(Route(prefix, hops, active, "bgp", "bgp"))
        return sorted(routes, key=lambda r: r.nexthops)

    def bgp_table(self, within: Sequence[IPv4Network]) -> dict[IPv4Network, list[Route]]:
        """`show bgp ipv4 unicast json`: the whole table, whose paths say `bestpath`/`multipath` as
        booleans (the per-prefix view nests them)."""
        data = self._json("show bgp ipv4 unicast json")
        table: dict[IPv4Network, list[Route]] = {}
        for key, paths in (data.get("routes") or {}).items():
            prefix = IPv4Network(key)
            if not any(prefix.subnet_of(net) for net in within):
                continue
            routes = []
            for path in paths:
                hops = tuple(
                    IPv4Address(h["ip"]) for h in path.get("nexthops", []) if h.get("afi", "ipv4") == "ipv4"
                )
                best = path.get("bestpath")
                active = bool(best.get("overall") if isinstance(best, dict) else best) or bool(
                    path.get("multipath")
                )
                routes.append(Route(prefix, hops, active, "bgp", "bgp"))
            table[prefix] = sorted(routes, key=lambda r: r.nexthops)
        return table

    def advertised_to(self, peer: IPv4Address) -> list[IPv4Network]:
        """`show bgp ipv4 unicast neighbors PEER advertised-routes json`; a `default-originate` route is
        reported beside the table (`bgpOriginatingDefaultNetwork`), not in it."""
        data = self._json(f"show bgp ipv4 unicast neighbors {peer} advertised-routes json")
        prefixes = [IPv4Network(prefix) for prefix in data.get("advertisedRoutes", {})]
        default = data.get("bgpOriginatingDefaultNetwork")
        if default:
            prefixes.append(IPv4Network(default))
        return sorted(set(prefixes))

    def fib_routes(self, prefix: IPv4Network) -> list[Route]:
        text = self.transport.kernel_routes(prefix)
        entries = json.loads(text) if text.strip() else []
        routes = []
        for entry in entries:
            dst = entry.get("dst", "")
            if ip_network("0.0.0.0/0" if dst == "default" else dst, strict=False) != prefix:
                continue
            hops = [entry["gateway"]] if "gateway" in entry else []
            hops += [hop["gateway"] for hop in entry.get("nexthops", []) if "gateway" in hop]
            routes.append(
                Route(
                    prefix,
                    tuple(sorted(IPv4Address(h) for h in hops)),
                    True,
                    entry.get("protocol", ""),
                    "fib",
                )
            )
        return routes

    def show_sessions(self) -> tuple[str, str]:
        return "show bgp summary", self.transport.vtysh("show bgp summary")

    def show_routes(self) -> tuple[str, str]:
        return "show ip route", self.transport.vtysh("show ip route")

    def dump(self) -> RouterDump:
        sections = {}
        for command in (
            "show version",
            "show running-config",
            "show bgp summary",
            "show bgp neighbors",
            "show bgp ipv4 unicast",
            "show ip route",
        ):
            try:
                sections[command] = self.transport.vtysh(command)
            except HarnessError as exc:
                sections[command] = f"<failed: {exc}>"
        return RouterDump(self.name, sections)


def _is_ours(neighbor: dict[str, Any]) -> bool:
    return str(neighbor.get("nbrDesc", "")).startswith(f"{HARNESS_MARK}:")
