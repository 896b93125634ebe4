"""The emulated RouterOS: its menus, one version's dialect, and a backend doing the BGP underneath.

`EmulatedRouter.run` takes one parsed API command and answers with rows, as RouterOS would; it is
called from the API server's worker threads, so the configuration tables sit behind one lock. The
backend is FRR in the lab (`FrrBackend`: real sessions) or none at all in the CHR stand-in
(`NoSpeakerBackend`: configuration kept, no session ever established).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bgpconform.lab import defects
from bgpconform.lab.routeros.frr_backend import BackendError, NeighborSpec
from bgpconform.lab.routeros.menus import (
    ARGUMENT,
    FAILURE,
    MISSING,
    Row,
    Table,
    Trap,
    checked,
    connection_schema,
    instance_schema,
)
from bgpconform.lab.routeros.views import advertisement_rows, route_rows, session_rows
from bgpconform.routers.routeros.dialect import Dialect
from bgpconform.routers.routeros.durations import format_duration, parse_duration

CONNECTION = "/routing/bgp/connection"
INSTANCE = "/routing/bgp/instance"
SESSION = "/routing/bgp/session"
ROUTE = "/routing/route"
ADVERTISEMENTS = "/routing/bgp/advertisements"
RESOURCE = "/system/resource"
IDENTITY = "/system/identity"
SYSTEM = "/system"
PRINT_OPTIONS = {"detail", "terse", "without-paging", "count-only", ".proplist", "brief", "stats"}


@dataclass
class Answer:
    """What a command returns: rows for `!re`, and `ret` for `!done` (the new `.id` of an add)."""

    rows: list[Row] = field(default_factory=list)
    ret: str | None = None
    printed: bool = False


class BgpBackend(Protocol):
    """What the emulated router needs from whatever speaks BGP for it: the configuration goes one way
    (`apply`, raising `BackendError` to refuse), state in FRR's JSON shapes comes back."""

    @property
    def asn(self) -> int | None:
        """The one AS every connection must use, or None when any AS is accepted."""

    def apply(self, desired: list[NeighborSpec], multipath: int) -> None: ...

    def neighbors(self) -> dict[str, Any]: ...

    def bgp_table(self) -> dict[str, list[dict[str, Any]]]: ...

    def rib(self) -> dict[str, list[dict[str, Any]]]: ...

    def advertised(self, address: str) -> dict[str, Any]: ...


class EmulatedRouter:
    """One RouterOS router as the API sees it."""

    def __init__(self, dialect: Dialect, backend: BgpBackend, *, identity: str, board: str) -> None:
        self.dialect = dialect
        self.backend = backend
        self.identity = identity
        self.board = board
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.connections = Table(CONNECTION, {})
        self.instances = Table(INSTANCE, {})
        # What `/system/reboot` does to the lab (drop the API, restart the routing engine); run on
        # its own thread, as the router answers before it goes down. None: the menu is absent.
        self.on_reboot: Callable[[], None] | None = None

    def booted(self) -> None:
        """The router is back from a reboot: its uptime starts again."""
        self._started = time.monotonic()

    @property
    def menus(self) -> dict[str, set[str]]:
        menus = {
            RESOURCE: {"print"},
            IDENTITY: {"print"},
            CONNECTION: {"print", "add", "set", "remove", "enable", "disable"},
            SESSION: {"print"},
            ROUTE: {"print"},
            ADVERTISEMENTS: {"print"},
        }
        if self.dialect.needs_instance:
            menus[INSTANCE] = {"print", "add", "set", "remove", "enable", "disable"}
        if self.on_reboot is not None:
            menus[SYSTEM] = {"reboot"}
        return menus

    def run(self, command: str, attributes: Row, query_words: list[str]) -> Answer:
        path, _, verb = command.rpartition("/")
        verbs = self.menus.get(path)
        if verbs is None:
            prefix = command.rstrip("/") + "/"
            known = any(menu.startswith(prefix) or (menu + "/").startswith(prefix) for menu in self.menus)
            raise Trap("no such command" if known else "no such command prefix", MISSING)
        if verb not in verbs:
            raise Trap("no such command", MISSING)
        if verb == "print":
            return self._print(path, attributes)
        if path == SYSTEM and self.on_reboot is not None:
            threading.Thread(target=self.on_reboot, name="routeros-reboot", daemon=True).start()
            return Answer()
        if query_words:
            raise Trap("query words work with print only", ARGUMENT)
        with self._lock:
            table = self.connections if path == CONNECTION else self.instances
            before = ({key: dict(row) for key, row in table.rows.items()}, table.next_id)
            try:
                answer = self._change(table, path, verb, attributes)
                self._sync()
            except Trap:
                table.rows, table.next_id = before  # a refused command changes nothing
                self._sync()
                raise
        return answer

    # -- reads -----------------------------------------------------------------------------------
    def _print(self, path: str, attributes: Row) -> Answer:
        unknown = [name for name in attributes if name not in PRINT_OPTIONS]
        if unknown:
            raise Trap(f"unknown parameter {unknown[0]}", ARGUMENT)
        with self._lock:
            connections = [dict(row) for row in self.connections.ordered()]
            instances = [dict(row) for row in self.instances.ordered()]
        if path == RESOURCE:
            rows = [self._resource()]
        elif path == IDENTITY:
            rows = [{"name": self.identity}]
        elif path == CONNECTION:
            rows = connections
        elif path == INSTANCE:
            rows = instances
        elif path == SESSION:
            rows = session_rows(connections, self.backend.neighbors())
        elif path == ROUTE:
            rows = route_rows(self.backend.bgp_table(), self.backend.rib())
        else:
            neighbors = self.backend.neighbors()
            advertised = {
                row["remote.address"]: self.backend.advertised(row["remote.address"])
                for row in connections
                if row.get("output.keep-sent-attributes") == "yes"
                and neighbors.get(row.get("remote.address", ""), {}).get("bgpState") == "Established"
            }
            rows = advertisement_rows(connections, neighbors, advertised)
        if path in {SESSION, ROUTE, ADVERTISEMENTS}:
            rows = [{".id": f"*{index + 1:X}", **row} for index, row in enumerate(rows)]
        return Answer(rows=rows, printed=True)

    def _resource(self) -> Row:
        return {
            "uptime": format_duration(time.monotonic() - self._started),
            "version": f"{self.dialect.version.number} (stable)",
            "cpu-count": "1",
            "architecture-name": "x86_64",
            "board-name": self.board,
            "platform": "MikroTik",
        }

    # -- writes ----------------------------------------------------------------------------------
    def _change(self, table: Table, path: str, verb: str, attributes: Row) -> Answer:
        schema = connection_schema(self.dialect) if path == CONNECTION else instance_schema(self.dialect)
        if verb == "add":
            fields = checked(schema, attributes)
            fields = self._complete(path, fields)
            return Answer(ret=table.add(fields))
        reference = attributes.get(".id")
        if reference is None:
            raise Trap("missing =.id= (the item to change)", MISSING)
        item_ids = [table.resolve(part) for part in reference.split(",")]
        if verb == "remove":
            for item_id in item_ids:
                if path == INSTANCE:
                    self._check_unused(table.rows[item_id])
                del table.rows[item_id]
            return Answer()
        changes = {key: value for key, value in attributes.items() if key != ".id"}
        if verb in {"enable", "disable"}:
            changes = {"disabled": "true" if verb == "disable" else "false"}
        fields = checked(schema, changes)
        for item_id in item_ids:
            merged = {**table.rows[item_id], **fields}
            merged.pop(".id")
            others = [row for key, row in table.rows.items() if key != item_id]
            if fields.get("name") and any(row.get("name") == fields["name"] for row in others):
                raise Trap(f"failure: entry with name {fields['name']!r} already exists", FAILURE)
            table.rows[item_id] = {".id": item_id, **self._complete(path, merged)}
        return Answer()

    def _complete(self, path: str, fields: Row) -> Row:
        """Defaults and cross-field rules RouterOS applies on add and set."""
        if path == INSTANCE:
            if "as" not in fields:
                raise Trap("failure: as must be set", FAILURE)
            self._check_asn(fields["as"])
            return {
                "disabled": "false",
                "name": fields.get("name", f"bgp-instance-{self.instances.next_id}"),
                **fields,
            }
        if "remote.address" not in fields:
            raise Trap("failure: remote.address must be set", FAILURE)
        if "local.role" not in fields:
            raise Trap("failure: local.role must be set", FAILURE)
        asn = fields.get("as")
        if self.dialect.needs_instance:
            name = fields.get("instance")
            if name is None:
                raise Trap("failure: instance must be set", FAILURE)
            instance = next((row for row in self.instances.rows.values() if row.get("name") == name), None)
            if instance is None:
                raise Trap(f"input does not match any value of instance: {name!r}", ARGUMENT)
            asn = asn or instance.get("as")
        if asn is None:
            raise Trap("failure: as must be set", FAILURE)
        self._check_asn(asn)
        defaults = {
            "name": f"bgp{self.connections.next_id}",
            "disabled": "false",
            "output.default-originate": "never",
            "output.keep-sent-attributes": "no",
            "connect": "yes",
            "listen": "yes",
        }
        if not self.dialect.needs_instance:
            defaults["routing-table"] = "main"
        return {**defaults, **fields}

    def _check_asn(self, asn: str) -> None:
        required = self.backend.asn
        if required is not None and int(asn) != required:
            # Lab limit: FRR runs one BGP instance, so every connection shares the router's AS.
            raise Trap(f"failure: this lab router runs one BGP instance, AS {required}; as={asn}", FAILURE)

    def _check_unused(self, instance: Row) -> None:
        users = [
            row.get("name", "")
            for row in self.connections.rows.values()
            if row.get("instance") == instance.get("name")
        ]
        if users:
            raise Trap(
                f"failure: instance {instance.get('name')!r} is used by connection {users[0]!r}", FAILURE
            )

    def _sync(self) -> None:
        specs = []
        for row in self.connections.ordered():
            if row.get("disabled") == "true":
                continue
            role = row.get("local.role", "ibgp")
            hold = _seconds(row.get("hold-time"))
            keepalive = _seconds(row.get("keepalive-time"))
            if hold is not None and keepalive is None:
                keepalive = max(1, hold // 3)
            if keepalive is not None and hold is None:
                hold = keepalive * 3
            if defects.active("router-ignores-connection-hold-time"):
                hold, keepalive = None, None  # RouterOS 7's defaults (3m, 1m) stay in force
            specs.append(
                NeighborSpec(
                    address=row["remote.address"].removesuffix("/32"),
                    remote_as=row.get("remote.as") or ("internal" if role.startswith("ibgp") else "external"),
                    description=row.get("name", ""),
                    hold=hold,
                    keepalive=keepalive,
                    # Lab choice: if-installed is treated as always (the lab router has no default route).
                    default_originate=row.get("output.default-originate") in {"always", "if-installed"}
                    and not defects.active("router-never-originates-default"),
                    shutdown=False,
                )
            )
        multipath = 1
        for row in self.instances.rows.values():
            if row.get("disabled") != "true" and row.get("multipath", "").isdigit():
                multipath = max(multipath, int(row["multipath"]))
        try:
            self.backend.apply(specs, multipath)
        except BackendError as exc:
            raise Trap(f"failure: {exc}", FAILURE) from exc


def _seconds(value: str | None) -> int | None:
    if value is None or value == "infinity":
        return None
    seconds = parse_duration(value)
    return int(seconds) if seconds is not None else None
