"""`cilium bgp peers`: the agent's JSON for one node and cilium-cli's summary table across nodes.

cilium-cli execs `cilium bgp peers -o json` in container `cilium-agent` of every `k8s-app=cilium` pod
and prints one table (FACTS.md, "Cilium: `cilium bgp peers`"). The lab answers that exec from per-peer
facts, so both shapes are produced here; the parsers read the same JSON from real clusters.

Agent JSON is a list of cilium's `models.BgpPeer` (`api/v1/models/bgp_peer.go`), marshalled by Go with a
two-space indent: keys in struct order, every number and string `omitempty` (a zero count or an empty
uptime is absent, FACTS.md), `families` always present (`null` when there are none). The keys depend on
the version. The 1.13 backport of the command (cilium/cilium#24821, of #24612, whose sample output
shows exactly these) carries `families`, `local-asn`, `peer-address`, `peer-asn`, `session-state` and
`uptime-nanoseconds`. Later fields are placed by the PRs that added them, unverified against each
release: 1.14 `peer-port` (#25809), the timers (`connect-retry-time-seconds`,
`configured-`/`applied-hold-time-seconds`, `configured-`/`applied-keep-alive-time-seconds`),
`ebgp-multihop-ttl` and `graceful-restart`, the last two always filled (TTL 1 and `{}` when unset,
`pkg/bgpv1/gobgp/state.go`); 1.15 `tcp-password-enabled`. Uptime is only reported for an established
session (FACTS.md).

The table is cilium-cli's `printSummary` (`bgp/peers.go`): nodes sorted by name, each node's peers
sorted, a Go `text/tabwriter` with min width 5, padding 3, space padding, uptime printed as
`time.Duration(ns).Round(time.Second).String()` (so `1h33m42s`, and `0s` for a session that is not up),
and one more line per extra address family with the session columns left empty. Rows end in the
tabwriter's padding, which the walkthrough's copy lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bgpconform.bgp_states import SessionState
from bgpconform.cilium.versions import SUPPORTED_MINORS, cilium_minor, supported_minor

DEFAULT_PEER_PORT = 179
SUMMARY_HEADER = (
    "Node",
    "Local AS",
    "Peer AS",
    "Peer Address",
    "Session State",
    "Uptime",
    "Family",
    "Received",
    "Advertised",
)
_SECOND = 1_000_000_000

# The CLI inside the agent container, by minor: `cilium` until 1.14, `cilium-dbg` from 1.15, when the
# in-pod binary was renamed (FACTS.md, "Cilium: `cilium bgp peers`"; `cilium` still answers there).
IN_POD_CLI_BY_MINOR: dict[tuple[int, int], str] = {
    minor: "cilium" if minor < (1, 15) else "cilium-dbg" for minor in SUPPORTED_MINORS
}


def peers_command(cilium_version: str) -> list[str]:
    """What cilium-cli execs in each agent for `cilium bgp peers`: the JSON of that node's peers."""
    return [IN_POD_CLI_BY_MINOR[supported_minor(cilium_version)], "bgp", "peers", "-o", "json"]


def _minor(version: str) -> tuple[int, int]:
    return cilium_minor(
        version,
        since=(1, 13),
        missing="`cilium bgp peers` does not exist in Cilium {version} (1.13 got it by backport)",
    )


@dataclass(frozen=True)
class PeerFamily:
    """One address family of a session (`BgpPeerFamilies`): route counts, zero when not reported."""

    afi: str
    safi: str
    received: int = 0
    accepted: int = 0
    advertised: int = 0


@dataclass(frozen=True)
class PeerTimers:
    """Session timers in seconds; zero means not reported (applied ones exist once established)."""

    connect_retry: int = 0
    configured_hold: int = 0
    configured_keepalive: int = 0
    applied_hold: int = 0
    applied_keepalive: int = 0


@dataclass(frozen=True)
class GracefulRestart:
    """The graceful-restart settings negotiated with the peer (`BgpGracefulRestart`)."""

    enabled: bool = False
    restart_time_seconds: int = 0


@dataclass(frozen=True)
class BgpPeer:
    """One peer as `cilium bgp peers -o json` describes it.

    `peer_port` is None when the JSON did not carry it (1.13); `uptime_ns` is None unless established.
    """

    local_asn: int
    peer_asn: int
    peer_address: str
    session_state: SessionState
    peer_port: int | None = DEFAULT_PEER_PORT
    uptime_ns: int | None = None
    families: tuple[PeerFamily, ...] = ()
    timers: PeerTimers = field(default_factory=PeerTimers)
    ebgp_multihop_ttl: int | None = None
    graceful_restart: GracefulRestart | None = None
    tcp_password_enabled: bool = False

    @classmethod
    def from_facts(
        cls,
        *,
        local_asn: int,
        peer_asn: int,
        peer_address: str,
        session_state: str | SessionState,
        uptime_seconds: float | None,
        families: Iterable[PeerFamily] = (),
        timers: PeerTimers | None = None,
        peer_port: int = DEFAULT_PEER_PORT,
        ebgp_multihop_ttl: int | None = None,
        graceful_restart: GracefulRestart | None = None,
    ) -> BgpPeer:
        """Build the agent's view from what the lab knows; uptime is dropped unless established."""
        state = SessionState(session_state)
        uptime_ns = None
        if state is SessionState.ESTABLISHED and uptime_seconds is not None:
            uptime_ns = round(uptime_seconds * _SECOND)
        return cls(
            local_asn=local_asn,
            peer_asn=peer_asn,
            peer_address=peer_address,
            session_state=state,
            peer_port=peer_port,
            uptime_ns=uptime_ns,
            families=tuple(families),
            timers=timers or PeerTimers(),
            ebgp_multihop_ttl=ebgp_multihop_ttl,
            graceful_restart=graceful_restart,
        )

    @property
    def uptime_seconds(self) -> float | None:
        return None if self.uptime_ns is None else self.uptime_ns / _SECOND

    @property
    def uptime(self) -> str:
        """The table's Uptime cell."""
        return format_uptime(self.uptime_ns or 0)


def _omitempty(obj: dict[str, Any], key: str, value: object) -> None:
    if value:
        obj[key] = value


def family_json(family: PeerFamily) -> dict[str, Any]:
    """One `families[]` entry; zero counts are omitted (FACTS.md)."""
    obj: dict[str, Any] = {}
    _omitempty(obj, "accepted", family.accepted)
    _omitempty(obj, "advertised", family.advertised)
    _omitempty(obj, "afi", family.afi)
    _omitempty(obj, "received", family.received)
    _omitempty(obj, "safi", family.safi)
    return obj


def peer_json(peer: BgpPeer, version: str = "1.13") -> dict[str, Any]:
    """One peer as the agent of `version` marshals it, keys in the model's field order."""
    newer = _minor(version) >= (1, 14)
    obj: dict[str, Any] = {}
    if newer:
        _omitempty(obj, "applied-hold-time-seconds", peer.timers.applied_hold)
        _omitempty(obj, "applied-keep-alive-time-seconds", peer.timers.applied_keepalive)
        _omitempty(obj, "configured-hold-time-seconds", peer.timers.configured_hold)
        _omitempty(obj, "configured-keep-alive-time-seconds", peer.timers.configured_keepalive)
        _omitempty(obj, "connect-retry-time-seconds", peer.timers.connect_retry)
        _omitempty(obj, "ebgp-multihop-ttl", 1 if peer.ebgp_multihop_ttl is None else peer.ebgp_multihop_ttl)
    obj["families"] = [family_json(f) for f in peer.families] or None
    if newer:
        restart = peer.graceful_restart or GracefulRestart()
        gr: dict[str, Any] = {}
        _omitempty(gr, "enabled", restart.enabled)
        _omitempty(gr, "restart-time-seconds", restart.restart_time_seconds)
        obj["graceful-restart"] = gr
    _omitempty(obj, "local-asn", peer.local_asn)
    _omitempty(obj, "peer-address", peer.peer_address)
    _omitempty(obj, "peer-asn", peer.peer_asn)
    if newer:
        _omitempty(obj, "peer-port", peer.peer_port)
    _omitempty(obj, "session-state", str(peer.session_state))
    if _minor(version) >= (1, 15):
        _omitempty(obj, "tcp-password-enabled", peer.tcp_password_enabled)
    if peer.session_state is SessionState.ESTABLISHED:
        _omitempty(obj, "uptime-nanoseconds", peer.uptime_ns)
    return obj


def agent_json(peers: Sequence[BgpPeer], version: str = "1.13") -> str:
    """What `cilium bgp peers -o json` prints inside one agent pod (`[]` when it has no peers)."""
    _minor(version)
    return json.dumps([peer_json(p, version) for p in peers], indent=2) + "\n"


def cli_json(peers_per_node: Mapping[str, Sequence[BgpPeer]], version: str = "1.13") -> str:
    """What cilium-cli's `cilium bgp peers -o json` prints: node -> peers, keys sorted, one-space indent."""
    _minor(version)
    data = {node: [peer_json(p, version) for p in peers_per_node[node]] for node in sorted(peers_per_node)}
    return json.dumps(data, indent=1) + "\n"


def _int(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = obj.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {key!r} must be an integer, got {value!r}")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key!r} must be a string, got {value!r}")
    return value


def parse_peer(obj: object, where: str = "peer") -> BgpPeer:
    """One `BgpPeer` object; absent fields take their Go zero values, unknown fields are ignored."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    state_text = _str(obj, "session-state", where) or "unknown"
    try:
        state = SessionState(state_text)
    except ValueError:
        raise ValueError(f"{where}: unknown session-state {state_text!r}") from None
    raw_families = obj.get("families")
    if raw_families is None:
        raw_families = []
    if not isinstance(raw_families, list):
        raise ValueError(f"{where}: 'families' must be a list")
    families = []
    for index, fam in enumerate(raw_families):
        at = f"{where}.families[{index}]"
        if not isinstance(fam, Mapping):
            raise ValueError(f"{at}: expected an object")
        families.append(
            PeerFamily(
                afi=_str(fam, "afi", at),
                safi=_str(fam, "safi", at),
                received=_int(fam, "received", at),
                accepted=_int(fam, "accepted", at),
                advertised=_int(fam, "advertised", at),
            )
        )
    restart = obj.get("graceful-restart")
    graceful = None
    if isinstance(restart, Mapping):
        graceful = GracefulRestart(bool(restart.get("enabled")), _int(restart, "restart-time-seconds", where))
    uptime = _int(obj, "uptime-nanoseconds", where)
    return BgpPeer(
        local_asn=_int(obj, "local-asn", where),
        peer_asn=_int(obj, "peer-asn", where),
        peer_address=_str(obj, "peer-address", where),
        session_state=state,
        peer_port=_int(obj, "peer-port", where) or None,
        uptime_ns=uptime or None,
        families=tuple(families),
        timers=PeerTimers(
            connect_retry=_int(obj, "connect-retry-time-seconds", where),
            configured_hold=_int(obj, "configured-hold-time-seconds", where),
            configured_keepalive=_int(obj, "configured-keep-alive-time-seconds", where),
            applied_hold=_int(obj, "applied-hold-time-seconds", where),
            applied_keepalive=_int(obj, "applied-keep-alive-time-seconds", where),
        ),
        ebgp_multihop_ttl=_int(obj, "ebgp-multihop-ttl", where) or None,
        graceful_restart=graceful,
        tcp_password_enabled=bool(obj.get("tcp-password-enabled")),
    )


def _peer_list(data: object, where: str) -> list[BgpPeer]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError(f"{where}: expected a list of peers, got {type(data).__name__}")
    return [parse_peer(item, f"{where}[{index}]") for index, item in enumerate(data)]


def parse_agent_json(text: str) -> list[BgpPeer]:
    """Parse one agent's `cilium bgp peers -o json` (a list; `null` reads as no peers)."""
    return _peer_list(json.loads(text), "peers")


def parse_cli_json(text: str) -> dict[str, list[BgpPeer]]:
    """Parse cilium-cli's `cilium bgp peers -o json`: node name -> that node's peers."""
    data = json.loads(text)
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an object of node -> peers, got {type(data).__name__}")
    return {str(node): _peer_list(peers, str(node)) for node, peers in data.items()}


def _round_to_second(ns: int) -> int:
    """Go's `Duration.Round(time.Second)`: halves round away from zero."""
    magnitude = abs(ns)
    rest = magnitude % _SECOND
    rounded = magnitude - rest if rest + rest < _SECOND else magnitude + _SECOND - rest
    return -rounded if ns < 0 else rounded


def format_uptime(ns: int) -> str:
    """`time.Duration(ns).Round(time.Second).String()`: `0s`, `45s`, `2m0s`, `1h33m42s`."""
    rounded = _round_to_second(ns)
    sign = "-" if rounded < 0 else ""
    seconds = abs(rounded) // _SECOND
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def _sort_peers(peers: Sequence[BgpPeer]) -> list[BgpPeer]:
    """cilium-cli's order: `sort.Slice` with `a.LocalAsn < b.LocalAsn || a.PeerAddress < b.PeerAddress`.

    That comparison is not a strict ordering, so the result depends on the algorithm; Go's sort uses
    insertion sort for up to 12 elements, reproduced here (peer addresses compare as strings).
    """
    items = list(peers)

    def less(a: BgpPeer, b: BgpPeer) -> bool:
        return a.local_asn < b.local_asn or a.peer_address < b.peer_address

    for i in range(1, len(items)):
        j = i
        while j > 0 and less(items[j], items[j - 1]):
            items[j], items[j - 1] = items[j - 1], items[j]
            j -= 1
    return items


def summary_text(peers_per_node: Mapping[str, Sequence[BgpPeer]]) -> str:
    """The tab-separated text `printSummary` feeds its tabwriter, built call for call."""
    parts = ["\t".join(SUMMARY_HEADER) + "\n"]
    for node in sorted(peers_per_node):
        for index, peer in enumerate(_sort_peers(peers_per_node[node])):
            parts.append(f"{node}\t" if index == 0 else "\t")
            parts.append(f"{peer.local_asn}\t{peer.peer_asn}\t{peer.peer_address}\t{peer.session_state}\t")
            parts.append(f"{peer.uptime}\t")
            for position, fam in enumerate(peer.families):
                if position > 0:
                    parts.append("\t" * 6)
                parts.append(f"{fam.afi}/{fam.safi}\t{fam.received}\t{fam.advertised}\t\n")
    return "".join(parts)


def summary_table(peers_per_node: Mapping[str, Sequence[BgpPeer]]) -> str:
    """The table cilium-cli prints for `cilium bgp peers` (FACTS.md columns, the walkthrough's layout)."""
    return tabwriter(summary_text(peers_per_node), minwidth=5, padding=3)


def tabwriter(text: str, *, minwidth: int, padding: int, padchar: str = " ") -> str:
    """Go's `text/tabwriter` (flags 0) over a whole text: tab-terminated cells, aligned by column block.

    A cell belongs to a column only if a tab ends it; consecutive lines sharing a column form a block
    whose width is the widest cell plus `padding` (at least `minwidth`). A line without tabs flushes, as
    in Go, so blocks never span it.
    """
    writer = _TabWriter(minwidth, padding, padchar)
    cell: list[str] = []
    for char in text:
        if char not in "\t\n":
            cell.append(char)
            continue
        writer.lines[-1].append("".join(cell))
        cell.clear()
        if char == "\n":
            ncells = len(writer.lines[-1])
            writer.lines.append([])
            if ncells == 1:
                writer.flush()
    if cell:
        writer.lines[-1].append("".join(cell))
    writer.flush()
    return "".join(writer.out)


class _TabWriter:
    """The buffered lines of cells and the recursive column-block layout of Go's `Writer.format`."""

    def __init__(self, minwidth: int, padding: int, padchar: str) -> None:
        self.minwidth = minwidth
        self.padding = padding
        self.padchar = padchar
        self.lines: list[list[str]] = [[]]
        self.widths: list[int] = []
        self.out: list[str] = []

    def flush(self) -> None:
        self._format(0, len(self.lines))
        self.lines = [[]]

    def _format(self, line0: int, line1: int) -> None:
        column = len(self.widths)
        this = line0
        while this < line1:
            if column >= len(self.lines[this]) - 1:
                this += 1
                continue
            self._write_lines(line0, this)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(self.lines[this]) - 1:
                width = max(width, len(self.lines[this][column]) + self.padding)
                this += 1
            self.widths.append(width)
            self._format(line0, this)
            self.widths.pop()
            line0 = this
            this += 1
        self._write_lines(line0, line1)

    def _write_lines(self, line0: int, line1: int) -> None:
        for index in range(line0, line1):
            for column, cell in enumerate(self.lines[index]):
                self.out.append(cell)
                if column < len(self.widths):
                    self.out.append(self.padchar * (self.widths[column] - len(cell)))
            if index + 1 != len(self.lines):
                self.out.append("\n")
