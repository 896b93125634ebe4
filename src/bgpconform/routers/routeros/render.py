"""RouterOS prints for the report, in the shapes the walkthrough shows (`session/print`,
`/routing/route/print`, `advertisements/print`), built from the API's rows so a reader can lay them
next to the walkthrough line by line."""

from __future__ import annotations

from collections.abc import Iterable

from bgpconform.routers.routeros.client import Row


def truthy(value: str | None) -> bool:
    return value in {"true", "yes"}


def _pairs(row: Row, prefix: str, keys: Iterable[str]) -> str:
    """`remote.address=... .as=...`: RouterOS prints a group's first key in full, the rest as `.key`."""
    parts: list[str] = []
    for key in keys:
        value = row.get(f"{prefix}.{key}")
        if value is None:
            continue
        parts.append(f"{prefix}.{key}={value}" if not parts else f".{key}={value}")
    return " ".join(parts)


def render_sessions(rows: list[Row]) -> str:
    lines = ["Flags: E - established"]
    for index, row in enumerate(rows):
        flag = "E" if truthy(row.get("established")) else " "
        lines.append(f' {index} {flag} name="{row.get("name", "")}"')
        remote = _pairs(row, "remote", ("address", "as", "id", "afi", "hold-time", "messages", "bytes"))
        local = _pairs(row, "local", ("role", "address", "as", "id", "messages", "bytes"))
        output = _pairs(row, "output", ("default-originate",))
        for group in (remote, local, output):
            if group:
                lines.append(f"     {group}")
        tail = [
            f"{key}={row[key]}"
            for key in ("multihop", "hold-time", "keepalive-time", "uptime", "prefix-count")
            if row.get(key)
        ]
        if tail:
            lines.append("     " + " ".join(tail))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_advertisements(rows: list[Row]) -> str:
    lines = []
    for row in rows:
        fields = " ".join(
            f"{key}={row[key]}"
            for key in ("peer", "dst", "local-pref", "nexthop", "origin", "as-path")
            if key in row
        )
        lines.append(f" 0 {fields}\n")
    return "\n".join(lines) if lines else "(nothing advertised, or no connection keeps sent attributes)\n"


_ROUTE_KINDS = (("connect", "c"), ("static", "s"), ("bgp", "b"), ("dhcp", "d"))
_ROUTE_COLUMNS = ("dst-address", "gateway", "afi", "distance", "scope", "target-scope", "immediate-gw")
_RIGHT_ALIGNED = {"distance", "scope", "target-scope"}


def render_routes(rows: list[Row]) -> str:
    """The walkthrough's `/routing/route/print`: flag letters, then aligned columns."""
    header = [
        "Flags: X - DISABLED, F - FILTERED, A - ACTIVE; c - CONNECT, s - STATIC, b - BGP, d - DHCP; + - ECMP"
    ]
    header.append("Columns: " + ", ".join(column.upper() for column in _ROUTE_COLUMNS))
    table = [["", *(column.upper() for column in _ROUTE_COLUMNS)]]
    for row in rows:
        # One status letter (or a blank for a candidate), then the kind: `Ab`, ` b`, `Ac`, `Xs`.
        status = "X" if truthy(row.get("disabled")) else "F" if truthy(row.get("filtered")) else ""
        status = status or ("A" if truthy(row.get("active")) else " ")
        kind = "".join(letter for key, letter in _ROUTE_KINDS if truthy(row.get(key)))
        flags = status + kind + ("+" if truthy(row.get("ecmp")) else "")
        table.append([flags, *(row.get(column, "") for column in _ROUTE_COLUMNS)])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line in table:
        cells = []
        for i, cell in enumerate(line):
            name = _ROUTE_COLUMNS[i - 1] if i else ""
            cells.append(cell.rjust(widths[i]) if name in _RIGHT_ALIGNED else cell.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(header + lines) + "\n"


def render_rows(rows: list[Row], keys: Iterable[str]) -> str:
    """A plain `print detail` of any menu: one numbered entry per row, `key=value` for each key."""
    wanted = list(keys)
    lines = []
    for index, row in enumerate(rows):
        fields = " ".join(f"{key}={row[key]}" for key in wanted if row.get(key, "") != "")
        lines.append(f" {index}   {fields}")
    return "\n".join(lines) + "\n" if lines else "(none)\n"
