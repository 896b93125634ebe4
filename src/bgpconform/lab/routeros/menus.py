"""The configuration menus the lab's RouterOS presents: `/routing/bgp/connection` and, from 7.20,
`/routing/bgp/instance`, with RouterOS's field names, the values each field takes, and the fields of
the emulated version only (`Dialect`, FACTS.md). A field the version lacks is refused as RouterOS
refuses it: a trap naming the parameter.

Trap wording follows RouterOS where it is known ("no such item", "invalid value for argument ...");
the exact text of the others is not verified against a router and says what went wrong plainly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from bgpconform.routers.routeros.dialect import Dialect
from bgpconform.routers.routeros.durations import parse_duration

Row = dict[str, str]
Check = Callable[[str], str | None]  # returns the value as RouterOS stores it, or None when invalid

# RouterOS trap categories (API manual): 0 missing item or command, 1 argument value failure,
# 2 execution interrupted, 3 scripting failure, 4 general failure, 5 API failure.
MISSING = "0"
ARGUMENT = "1"
FAILURE = "4"
API = "5"


class Trap(Exception):
    """A command the router refuses: answered `!trap =category=... =message=...`, then `!done`."""

    def __init__(self, message: str, category: str = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.category = category


def _choice(*allowed: str) -> Check:
    return lambda value: value if value in allowed else None


def _yes_no(value: str) -> str | None:
    return {"yes": "yes", "no": "no", "true": "yes", "false": "no"}.get(value)


def _flag(value: str) -> str | None:
    """`disabled` reads back as true/false on the API."""
    return {"yes": "true", "no": "false", "true": "true", "false": "false"}.get(value)


def _asn(value: str) -> str | None:
    return value if value.isdigit() and 0 < int(value) < 2**32 else None


def _ipv4(value: str) -> str | None:
    try:
        return str(IPv4Address(value))
    except ValueError:
        return None


def _address_or_host_prefix(value: str) -> str | None:
    """`remote.address` takes an address or a prefix; the lab emulates single peers only."""
    address = value[:-3] if value.endswith("/32") else value
    try:
        return str(ip_address(address))
    except ValueError:
        return None


def _duration(value: str) -> str | None:
    if value == "infinity":
        return value
    seconds = parse_duration(value)
    return value if seconds is not None else None


def _families(value: str) -> str | None:
    known = {"ip", "ipv6", "l2vpn", "l2vpn-cisco", "vpnv4", "vpnv6"}
    parts = value.split(",")
    return value if parts and all(part in known for part in parts) else None


def _anything(value: str) -> str | None:
    return value


def _count(value: str) -> str | None:
    return value if value.isdigit() else None


ROLES = (
    "ebgp",
    "ebgp-customer",
    "ebgp-peer",
    "ebgp-provider",
    "ebgp-rs",
    "ebgp-rs-client",
    "ibgp",
    "ibgp-rr",
    "ibgp-rr-client",
)

_CONNECTION_FIELDS: dict[str, Check] = {
    "name": _anything,
    "comment": _anything,
    "disabled": _flag,
    "as": _asn,
    "remote.address": _address_or_host_prefix,
    "remote.as": _asn,
    "remote.port": _count,
    "local.role": _choice(*ROLES),
    "local.address": _ipv4,
    "output.default-originate": _choice("never", "always", "if-installed"),
    "output.keep-sent-attributes": _yes_no,
    "routing-table": _choice("main"),
    "hold-time": _duration,
    "keepalive-time": _duration,
    "multihop": _yes_no,
    "connect": _yes_no,
    "listen": _yes_no,
    "router-id": _ipv4,
    "nexthop-choice": _choice("default", "force-self", "propagate"),
    "templates": _anything,
}

_INSTANCE_FIELDS: dict[str, Check] = {
    "name": _anything,
    "comment": _anything,
    "disabled": _flag,
    "as": _asn,
    "router-id": _ipv4,
    "routing-table": _choice("main"),
    "vrf": _choice("main"),
    "cluster-id": _ipv4,
    "ignore-as-path-len": _yes_no,
}


def connection_schema(dialect: Dialect) -> dict[str, Check]:
    fields = dict(_CONNECTION_FIELDS)
    fields[dialect.families_field] = _families
    if dialect.needs_instance:
        fields["instance"] = _anything  # checked against the instance table by the caller
    return fields


def instance_schema(dialect: Dialect) -> dict[str, Check]:
    fields = dict(_INSTANCE_FIELDS)
    if dialect.has_multipath:
        fields["multipath"] = _count
    return fields


def checked(schema: dict[str, Check], fields: Row) -> Row:
    """The fields as RouterOS would store them; a trap for the first unknown or invalid one."""
    out: Row = {}
    for name, value in fields.items():
        check = schema.get(name)
        if check is None:
            raise Trap(f"unknown parameter {name}", ARGUMENT)
        stored = check(value)
        if stored is None:
            raise Trap(f"invalid value for argument {name}: {value!r}", ARGUMENT)
        out[name] = stored
    return out


@dataclass
class Table:
    """A configuration menu's rows, addressed by `.id` (`*1`, `*2`, ...) or by name."""

    path: str
    rows: dict[str, Row]
    next_id: int = 1

    def add(self, fields: Row) -> str:
        name = fields.get("name")
        if name and any(row.get("name") == name for row in self.rows.values()):
            raise Trap(f"failure: entry with name {name!r} already exists", FAILURE)
        item_id = f"*{self.next_id:X}"
        self.next_id += 1
        self.rows[item_id] = {".id": item_id, **fields}
        return item_id

    def resolve(self, reference: str) -> str:
        if reference in self.rows:
            return reference
        for item_id, row in self.rows.items():
            if row.get("name") == reference:
                return item_id
        raise Trap("no such item", MISSING)

    def ordered(self) -> list[Row]:
        return [self.rows[key] for key in sorted(self.rows, key=lambda k: int(k[1:], 16))]
