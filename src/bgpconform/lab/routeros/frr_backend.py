"""The lab router's FRR seen as RouterOS: connections become FRR neighbors, reads come back from FRR.

FRR does the BGP on the wire (real sessions with the nodes' GoBGP speakers); this module only maps
configuration one way and state the other. Where the mapping is a lab choice rather than RouterOS
behaviour, the line says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from bgpconform.errors import HarnessError


class Vtysh(Protocol):
    def vtysh(self, *commands: str) -> str: ...


class BackendError(HarnessError):
    """FRR refused what a RouterOS command asked for; the server answers with a trap."""


@dataclass(frozen=True)
class NeighborSpec:
    """What one enabled RouterOS connection asks of FRR."""

    address: str
    remote_as: str  # an AS number, or "internal"/"external" from local.role when remote.as is unset
    description: str
    hold: int | None
    keepalive: int | None
    default_originate: bool
    shutdown: bool


_SAFE_DESCRIPTION = re.compile(r"[^A-Za-z0-9_.:@-]")


class FrrBackend:
    """Applies neighbor specs to bgpd and reads its JSON views."""

    def __init__(self, transport: Vtysh, asn: int) -> None:
        self.transport = transport
        self.asn = asn
        self._applied: dict[str, NeighborSpec] = {}
        self._multipath = 1

    # -- configuration ---------------------------------------------------------------------------
    def apply(self, desired: list[NeighborSpec], multipath: int) -> None:
        """Bring bgpd to `desired` with the fewest changes, so unchanged sessions stay up."""
        wanted = {spec.address: spec for spec in desired}
        commands: list[str] = []
        for address in sorted(set(self._applied) - set(wanted)):
            commands.append(f"no neighbor {address}")
        family: list[str] = []
        for address, spec in sorted(wanted.items()):
            before = self._applied.get(address)
            if before == spec:
                continue
            if before is not None and before.remote_as != spec.remote_as:
                commands.append(f"no neighbor {address}")
            commands += self._neighbor(spec)
            family += [f"neighbor {address} activate"]
            family.append(f"{'' if spec.default_originate else 'no '}neighbor {address} default-originate")
        if multipath != self._multipath:
            family += [f"maximum-paths {multipath}", f"maximum-paths ibgp {multipath}"]
        if family:
            commands += ["address-family ipv4 unicast", *family, "exit-address-family"]
        if commands:
            self._configure(commands)
        self._applied = dict(wanted)
        self._multipath = multipath

    def _neighbor(self, spec: NeighborSpec) -> list[str]:
        address = spec.address
        description = _SAFE_DESCRIPTION.sub("_", spec.description) or "connection"
        lines = [
            f"neighbor {address} remote-as {spec.remote_as}",
            f"neighbor {address} description {description}",
        ]
        if spec.hold is not None and spec.keepalive is not None:
            lines.append(f"neighbor {address} timers {spec.keepalive} {spec.hold}")
        else:
            lines.append(f"no neighbor {address} timers")
        # Lab choice: retry the TCP connection every second so lab sessions come up in seconds.
        lines.append(f"neighbor {address} timers connect 1")
        lines.append(f"{'' if spec.shutdown else 'no '}neighbor {address} shutdown")
        return lines

    def _configure(self, commands: list[str]) -> None:
        output = self.transport.vtysh("configure terminal", f"router bgp {self.asn}", *commands, "end")
        problems = [line for line in output.splitlines() if line.startswith("%")]
        if problems:
            raise BackendError("; ".join(problems))

    # -- state -----------------------------------------------------------------------------------
    def _json(self, command: str) -> Any:
        text = self.transport.vtysh(command)
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise BackendError(f"FRR answered `{command}` with something that is not JSON") from exc

    def neighbors(self) -> dict[str, Any]:
        data = self._json("show bgp neighbors json")
        return data if isinstance(data, dict) else {}

    def bgp_table(self) -> dict[str, list[dict[str, Any]]]:
        routes = self._json("show bgp ipv4 unicast json").get("routes", {})
        return routes if isinstance(routes, dict) else {}

    def rib(self) -> dict[str, list[dict[str, Any]]]:
        data = self._json("show ip route json")
        return data if isinstance(data, dict) else {}

    def advertised(self, address: str) -> dict[str, Any]:
        data = self._json(f"show bgp ipv4 unicast neighbors {address} advertised-routes json")
        return data if isinstance(data, dict) else {}
