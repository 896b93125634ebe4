"""The configuration the harness writes to RouterOS, built per version and readable as CLI text.

Every change is a `Change` so one value serves three readers: the API call (`words`), the evidence and
dry-run plans (`cli`, in the walkthrough's own `add ... name=... remote.address=...` form, keys sorted
as the walkthrough lists them), and the tests that check the commands for each version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bgpconform.routers.port import BgpPeer
from bgpconform.routers.routeros.dialect import Dialect

HARNESS_COMMENT = "bgpconform"  # set on everything the harness adds; removal touches nothing else
INSTANCE_NAME = "bgpconform"
CONNECTION_PATH = "/routing/bgp/connection"
INSTANCE_PATH = "/routing/bgp/instance"


@dataclass(frozen=True)
class Change:
    """One write to the router: `path/verb` with its fields."""

    path: str
    verb: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return f"{self.path}/{self.verb}"

    def words(self) -> list[str]:
        return [f"={key}={value}" for key, value in self.fields.items()]

    def cli(self) -> str:
        """The command as a RouterOS terminal would take it."""
        parts = [self.command] + [f"{key}={_cli_value(value)}" for key, value in sorted(self.fields.items())]
        return " ".join(parts)


def _cli_value(value: str) -> str:
    if value and all(ch.isalnum() or ch in "._-/:,*" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connection_fields(peer: BgpPeer, dialect: Dialect, instance: str | None = None) -> dict[str, str]:
    """The walkthrough's connection (`add address-families=ip as=64512 ... routing-table=main`) for this
    version, plus what the harness needs: its comment, short timers, and sent attributes kept so
    `/routing/bgp/advertisements` can show them (FACTS.md)."""
    fields = {
        dialect.families_field: "ip",
        "as": str(peer.local_asn),
        "comment": HARNESS_COMMENT,
        "disabled": "no",
        "hold-time": f"{peer.hold}s",
        "keepalive-time": f"{peer.keepalive}s",
        "local.role": "ibgp" if peer.ibgp else "ebgp",
        "name": peer.name,
        "output.default-originate": "always" if peer.default_originate else "never",
        "output.keep-sent-attributes": "yes",
        "remote.address": str(peer.address),
        "remote.as": str(peer.remote_asn),
    }
    if dialect.needs_instance:
        # From 7.20 the routing table belongs to the instance; the connection names its instance.
        fields["instance"] = instance or INSTANCE_NAME
    else:
        fields["routing-table"] = "main"
    return fields


def instance_fields(asn: int, router_id: str, dialect: Dialect, multipath: int | None) -> dict[str, str]:
    """The instance a 7.20+ connection needs; `multipath` (7.22+) is the number of equal paths to install
    (help.mikrotik.com `/routing/bgp/instance`: "multipath (integer)")."""
    fields = {
        "as": str(asn),
        "comment": HARNESS_COMMENT,
        "name": INSTANCE_NAME,
        "router-id": router_id,
        "routing-table": "main",
    }
    if multipath is not None and dialect.has_multipath:
        fields["multipath"] = str(multipath)
    return fields


def plan_peers(
    peers: list[BgpPeer], dialect: Dialect, *, router_id: str, multipath: int | None
) -> list[Change]:
    """The changes that configure `peers` on an empty router: what a dry run prints."""
    changes: list[Change] = []
    if dialect.needs_instance and peers:
        changes.append(
            Change(INSTANCE_PATH, "add", instance_fields(peers[0].local_asn, router_id, dialect, multipath))
        )
    changes += [Change(CONNECTION_PATH, "add", connection_fields(peer, dialect)) for peer in peers]
    return changes
