"""The router port on MikroTik RouterOS 7, through its API (librouteros).

The adapter reads the version the router reports and writes the BGP connection that version takes
(`dialect.Dialect`, FACTS.md); it marks what it adds with a comment and removes only that. Reads map
RouterOS's menus to the port's shapes: sessions from `/routing/bgp/session`, paths and installed
routes from `/routing/route`, advertisements from `/routing/bgp/advertisements`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import TYPE_CHECKING

from bgpconform.bgp_states import SessionState
from bgpconform.errors import HarnessError
from bgpconform.routers.port import ECMP_PATHS, BgpPeer, Route, RouterDump, Session
from bgpconform.routers.routeros.client import RouterApiError, RouterOsApi, Row
from bgpconform.routers.routeros.commands import (
    CONNECTION_PATH,
    HARNESS_COMMENT,
    INSTANCE_NAME,
    INSTANCE_PATH,
    Change,
    connection_fields,
    instance_fields,
)
from bgpconform.routers.routeros.dialect import Dialect, RouterOsVersion
from bgpconform.routers.routeros.durations import parse_duration
from bgpconform.routers.routeros.render import (
    render_advertisements,
    render_routes,
    render_rows,
    render_sessions,
    truthy,
)
from bgpconform.waiting import wait_for

if TYPE_CHECKING:
    from bgpconform.topology import Topology

log = logging.getLogger(__name__)

SESSION_PATH = "/routing/bgp/session"
ROUTE_PATH = "/routing/route"
ADVERTISEMENT_PATH = "/routing/bgp/advertisements"
RESOURCE_PATH = "/system/resource"
_SESSION_SUFFIX = re.compile(r"-\d+$")


@dataclass(frozen=True)
class Advertisement:
    """One route the router sent to a peer (needs `output.keep-sent-attributes=yes`, FACTS.md)."""

    peer: str
    prefix: IPv4Network
    nexthop: str
    local_pref: str
    origin: str


class RouterOsRouter:
    """The router port on RouterOS 7.x; one API session, reopened when the router drops it."""

    def __init__(
        self, api: RouterOsApi, *, name: str, asn: int, router_id: str, multipath: int | None = None
    ) -> None:
        self.api = api
        self.name = name
        self.asn = asn
        self.router_id = router_id
        self.multipath = multipath
        self.changes: list[Change] = []  # every write, in order, for the evidence and the tests
        self._resource: Row | None = None

    @classmethod
    def for_topology(cls, api: RouterOsApi, topology: Topology) -> RouterOsRouter:
        """The adapter for the topology's router: its AS, its node-side address as router ID, and
        multipath only where the topology says the router does ECMP."""
        router = topology.router
        return cls(
            api,
            name=router.name,
            asn=router.asn,
            router_id=str(router.address),
            multipath=ECMP_PATHS if router.ecmp else None,
        )

    # -- identity --------------------------------------------------------------------------------
    def wait_for_login(self, timeout: float) -> None:
        """A router that accepts TCP may still be booting (CHR under QEMU): only a login counts."""

        def attempt() -> bool:
            self.api.login()
            return True

        wait_for(
            attempt,
            bool,
            expected=f"a RouterOS API login at {self.api.endpoint}",
            timeout=timeout,
            interval=0.2,
            max_interval=2.0,
            tolerate=(RouterApiError,),
        )

    def resource(self) -> Row:
        if self._resource is None:
            rows = self.api.print(RESOURCE_PATH)
            if not rows:
                raise HarnessError(
                    f"RouterOS at {self.api.endpoint} answered {RESOURCE_PATH}/print with nothing"
                )
            self._resource = rows[0]
        return self._resource

    @property
    def routeros_version(self) -> RouterOsVersion:
        return RouterOsVersion.parse(self.resource().get("version", ""))

    @property
    def dialect(self) -> Dialect:
        return Dialect(self.routeros_version)

    def version(self) -> str:
        resource = self.resource()
        board = resource.get("board-name")
        return f"RouterOS {resource.get('version', '?')}" + (f" on {board}" if board else "")

    def reboot(self) -> None:
        """`/system/reboot`, as a fault: RouterOS keeps its configuration across it. The session drops
        with the router; the next call logs in again once the API answers."""
        change = Change("/system", "reboot")
        self.api.call_dropping_session(change.command)
        self.changes.append(change)
        log.info("router %s: %s", self.name, change.cli())
        self._resource = None  # its uptime starts again

    # -- configuration ---------------------------------------------------------------------------
    def _apply(self, change: Change) -> list[Row]:
        rows = self.api.call(change.command, change.words(), shown=change.cli())
        self.changes.append(change)
        log.info("router %s: %s", self.name, change.cli())
        return rows

    def _ensure_instance(self) -> str:
        """The 7.20+ instance for the harness's connections: its own, or the router's one with our AS."""
        instances = self.api.print(INSTANCE_PATH)
        for row in instances:
            if row.get("comment") == HARNESS_COMMENT:
                return row.get("name", INSTANCE_NAME)
        for row in instances:
            if row.get("as") == str(self.asn) and not truthy(row.get("disabled")):
                return row.get("name", INSTANCE_NAME)
        fields = instance_fields(self.asn, self.router_id, self.dialect, self.multipath)
        self._apply(Change(INSTANCE_PATH, "add", fields))
        return fields["name"]

    def configure_peers(self, peers: list[BgpPeer]) -> None:
        dialect = self.dialect
        instance = self._ensure_instance() if dialect.needs_instance and peers else None
        existing = self.api.print(CONNECTION_PATH)
        for peer in peers:
            fields = connection_fields(peer, dialect, instance)
            same_name = [row for row in existing if row.get("name") == peer.name]
            same_remote = [
                row for row in existing if _address(row.get("remote.address", "")) == str(peer.address)
            ]
            foreign = [row for row in same_name + same_remote if row.get("comment") != HARNESS_COMMENT]
            if foreign:
                row = foreign[0]
                raise HarnessError(
                    f"router {self.name}: connection {row.get('name')!r} (remote.address="
                    f"{row.get('remote.address')}) was not added by the harness and overlaps peer "
                    f"{peer.name} ({peer.address}); fix: remove it on the router, or change "
                    "router.connection_name in the topology"
                )
            ours = same_name or same_remote
            if ours:
                self._apply(Change(CONNECTION_PATH, "set", {".id": ours[0][".id"], **fields}))
            else:
                self._apply(Change(CONNECTION_PATH, "add", fields))

    def remove_peers(self) -> None:
        for row in self.api.print(CONNECTION_PATH):
            if row.get("comment") == HARNESS_COMMENT:
                self._apply(Change(CONNECTION_PATH, "remove", {".id": row[".id"]}))
        if self.dialect.needs_instance:
            for row in self.api.print(INSTANCE_PATH):
                if row.get("comment") == HARNESS_COMMENT:
                    self._apply(Change(INSTANCE_PATH, "remove", {".id": row[".id"]}))

    # -- reads -----------------------------------------------------------------------------------
    def sessions(self) -> list[Session]:
        advertised: dict[str, int] = {}
        for advertisement in self.advertisements():
            advertised[advertisement.peer] = advertised.get(advertisement.peer, 0) + 1
        sessions = []
        for row in self.api.print(SESSION_PATH):
            established = truthy(row.get("established"))
            remote_as = row.get("remote.as", "")
            uptime = parse_duration(row.get("uptime", "")) if established else None
            sessions.append(
                Session(
                    peer=IPv4Address(_address(row.get("remote.address", ""))),
                    # RouterOS tells only whether a session is established, not its FSM state.
                    state=SessionState.ESTABLISHED if established else SessionState.UNKNOWN,
                    remote_asn=int(remote_as) if remote_as.isdigit() else None,
                    name=_SESSION_SUFFIX.sub("", row.get("name", "")),
                    uptime_seconds=uptime,
                    received=int(row.get("prefix-count", "0") or 0),
                    advertised=advertised.get(row.get("name", ""), 0),
                )
            )
        return sorted(sessions, key=lambda s: s.peer)

    def _route_rows(self, prefix: IPv4Network) -> list[Row]:
        return self.api.print(ROUTE_PATH, f"?=dst-address={prefix}")

    def bgp_routes(self, prefix: IPv4Network) -> list[Route]:
        routes = []
        for row in self._route_rows(prefix):
            if not truthy(row.get("bgp")):
                continue
            hop = _address(row.get("gateway", ""))
            hops = (IPv4Address(hop),) if _is_ipv4(hop) else ()
            routes.append(Route(prefix, hops, truthy(row.get("active")), "bgp", "bgp"))
        return sorted(routes, key=lambda r: r.nexthops)

    def bgp_table(self, within: Sequence[IPv4Network]) -> dict[IPv4Network, list[Route]]:
        """`/routing/route/print` once, keeping the BGP rows inside `within`."""
        table: dict[IPv4Network, list[Route]] = {}
        for row in self.api.print(ROUTE_PATH):
            if not truthy(row.get("bgp")):
                continue
            try:
                prefix = IPv4Network(row.get("dst-address", ""))
            except ValueError:
                continue
            if not any(prefix.subnet_of(net) for net in within):
                continue
            hop = _address(row.get("gateway", ""))
            hops = (IPv4Address(hop),) if _is_ipv4(hop) else ()
            table.setdefault(prefix, []).append(Route(prefix, hops, truthy(row.get("active")), "bgp", "bgp"))
        return {prefix: sorted(routes, key=lambda r: r.nexthops) for prefix, routes in table.items()}

    def fib_routes(self, prefix: IPv4Network) -> list[Route]:
        """Active routes are what RouterOS forwards with; several active paths are one ECMP route."""
        active = [row for row in self._route_rows(prefix) if truthy(row.get("active"))]
        if not active:
            return []
        hops = sorted(
            IPv4Address(hop) for hop in (_address(row.get("gateway", "")) for row in active) if _is_ipv4(hop)
        )
        protocol = next((kind for kind in ("bgp", "connect", "static") if truthy(active[0].get(kind))), "")
        return [Route(prefix, tuple(hops), True, protocol, "fib")]

    def advertised_to(self, peer: IPv4Address) -> list[IPv4Network]:
        """`/routing/bgp/advertisements` rows name the session (`PEER_TO_..-1`), which names the address."""
        names = {
            row.get("name", "")
            for row in self.api.print(SESSION_PATH)
            if _address(row.get("remote.address", "")) == str(peer)
        }
        return sorted({row.prefix for row in self.advertisements() if row.peer in names})

    def advertisements(self) -> list[Advertisement]:
        found = []
        for row in self.api.print(ADVERTISEMENT_PATH):
            try:
                prefix = IPv4Network(row.get("dst", ""))
            except ValueError:
                continue
            found.append(
                Advertisement(
                    row.get("peer", ""),
                    prefix,
                    row.get("nexthop", ""),
                    row.get("local-pref", ""),
                    row.get("origin", ""),
                )
            )
        return found

    def show_sessions(self) -> tuple[str, str]:
        return f"{SESSION_PATH}/print", render_sessions(self.api.print(SESSION_PATH))

    def show_routes(self) -> tuple[str, str]:
        return f"{ROUTE_PATH}/print", render_routes(self.api.print(ROUTE_PATH))

    def dump(self) -> RouterDump:
        """The walkthrough's prints, each read on its own so one failure leaves the others."""
        sections: dict[str, str] = {}
        reads: tuple[tuple[str, Callable[[], str]], ...] = (
            (f"{RESOURCE_PATH}/print", lambda: render_rows([self.resource()], _RESOURCE_KEYS)),
            (
                f"{CONNECTION_PATH}/print",
                lambda: render_rows(self.api.print(CONNECTION_PATH), _CONNECTION_KEYS),
            ),
            (f"{SESSION_PATH}/print", lambda: render_sessions(self.api.print(SESSION_PATH))),
            (
                f"{ADVERTISEMENT_PATH}/print",
                lambda: render_advertisements(self.api.print(ADVERTISEMENT_PATH)),
            ),
            (f"{ROUTE_PATH}/print", lambda: render_routes(self.api.print(ROUTE_PATH))),
        )
        if self.changes:
            sections["changes made by the harness"] = (
                "\n".join(change.cli() for change in self.changes) + "\n"
            )
        for title, read in reads:
            try:
                sections[title] = read()
            except HarnessError as exc:
                sections[title] = f"<failed: {exc}>"
        return RouterDump(self.name, sections)

    def close(self) -> None:
        self.api.close()


_RESOURCE_KEYS = ("version", "board-name", "architecture-name", "platform", "uptime", "cpu-count")
_CONNECTION_KEYS = (
    "name",
    "instance",
    "as",
    "remote.address",
    "remote.as",
    "local.role",
    "address-families",
    "afi",
    "routing-table",
    "output.default-originate",
    "output.keep-sent-attributes",
    "hold-time",
    "keepalive-time",
    "disabled",
    "comment",
)


def _address(value: str) -> str:
    """`192.168.1.201`, from `192.168.1.201/32` or `192.168.1.201%bridge` as RouterOS may print it."""
    return value.split("%", 1)[0].split("/", 1)[0].strip()


def _is_ipv4(value: str) -> bool:
    try:
        return ip_address(value).version == 4
    except ValueError:
        return False
