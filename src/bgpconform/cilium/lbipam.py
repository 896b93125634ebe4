"""LB IPAM's names per Cilium version: condition types, reasons, messages, annotations.

One table for this concern (FACTS.md, "Cilium: LB IPAM"), read by the steps to judge any cluster and by
the lab's emulated operator to write its statuses: the steps check the condition that the topology's
`cluster.cilium_version` writes, on every target.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from bgpconform.cilium.versions import cilium_minor

ANNOTATION_IPS = "io.cilium/lb-ipam-ips"
ANNOTATION_IPS_1_16 = "lbipam.cilium.io/ips"

REASON_SATISFIED = "satisfied"
REASON_NO_POOL = "no_pool"
REASON_OUT_OF_IPS = "out_of_ips"
REASON_SELECTOR_MISMATCH = "pool_selector_mismatch"
REASON_ALREADY_ALLOCATED = "already_allocated"
REASON_RESOLVED = "resolved"
REASON_CIDR_OVERLAP = "cidr_overlap"
REASON_NOREASON = "noreason"

MESSAGE_NO_POOL = "There are no enabled CiliumLoadBalancerIPPools that match this service"
MESSAGE_OUT_OF_IPS = (
    "All enabled CiliumLoadBalancerIPPools that match this service ran out of allocatable IPs"
)


def parse_version(version: str) -> tuple[int, int]:
    """`1.13`, `v1.13.4`, `1.15.0-rc.1` -> (1, 13); LB IPAM does not exist before 1.13."""
    return cilium_minor(
        version, since=(1, 13), missing="Cilium {version} has no LB IPAM (it first shipped in 1.13)"
    )


@dataclass(frozen=True)
class Naming:
    """The names and bookkeeping that changed in 1.15 (FACTS.md, "Cilium: LB IPAM").

    1.13-1.14 write `io.cilium/...` conditions; a pool condition is replaced by removing the old one and
    appending the new (fresh lastTransitionTime), and a service condition is appended unless an
    identical one (status, generation, reason, message) is already there. 1.15+ write `cilium.io/...`
    conditions and update each in place (`meta.SetStatusCondition`: one per type, lastTransitionTime
    moves only when the status does), and say `range '<first> - <last>'` where 1.13 says `CIDR`.
    1.16 reads requested IPs from `lbipam.cilium.io/ips` first, the old annotation as an alias.
    """

    service_condition: str
    ips_total: str
    ips_available: str
    ips_used: str
    conflict: str
    overlap_word: str
    append_conditions: bool
    ips_annotations: tuple[str, ...] = (ANNOTATION_IPS,)

    @classmethod
    def for_version(cls, version: str) -> Naming:
        parsed = parse_version(version)
        if parsed < (1, 15):
            return cls(
                service_condition="io.cilium/lb-ipam-request-satisfied",
                ips_total="io.cilium/ips-total",
                ips_available="io.cilium/ips-available",
                ips_used="io.cilium/ips-used",
                conflict="io.cilium/conflict",
                overlap_word="CIDR",
                append_conditions=True,
            )
        return cls(
            service_condition="cilium.io/IPAMRequestSatisfied",
            ips_total="cilium.io/IPsTotal",
            ips_available="cilium.io/IPsAvailable",
            ips_used="cilium.io/IPsUsed",
            conflict="cilium.io/PoolConflict",
            overlap_word="range",
            append_conditions=False,
            ips_annotations=(ANNOTATION_IPS_1_16, ANNOTATION_IPS) if parsed >= (1, 16) else (ANNOTATION_IPS,),
        )


Span = IPv4Network | IPv6Network | tuple[IPv4Address | IPv6Address, IPv4Address | IPv6Address]


def conflict_message(naming: Naming, mine: Span, theirs: Span, other_pool: str) -> str:
    """The message of a pool marked conflicting (FACTS.md: 1.13-1.14 name CIDRs, 1.15+ ranges); a
    span is a CIDR or a 1.15+ block's (start, stop)."""

    def described(span: Span) -> str:
        if isinstance(span, tuple):
            return f"{span[0]} - {span[1]}"
        if naming.overlap_word == "CIDR":
            return str(span)
        return f"{span.network_address} - {span.broadcast_address}"

    word = naming.overlap_word
    return (
        f"Pool conflicts since {word} '{described(mine)}' overlaps {word} '{described(theirs)}' "
        f"from IP Pool '{other_pool}'"
    )


@dataclass(frozen=True)
class PoolFormat:
    """How a pool's addresses are written and counted, per version (FACTS.md, "Cilium: LB IPAM").

    1.13-1.14 read `spec.cidrs[]{cidr}` only. 1.15 adds `spec.blocks[]` (a `cidr`, or `start` and
    `stop`) and `allowFirstLastIPs`, and deprecates `cidrs`; 1.16 removes `cidrs` (PR #32774, so the
    API server prunes it and the pool holds nothing) and makes `allowFirstLastIPs` default to Yes, so
    a /24 block then gives 256 addresses. The harness writes `blocks` wherever they exist.
    """

    ranges_field: str  # where the harness writes its CIDRs
    reads_cidrs: bool
    reads_blocks: bool
    first_last_by_default: bool

    @classmethod
    def for_version(cls, version: str) -> PoolFormat:
        parsed = parse_version(version)
        return cls(
            ranges_field="cidrs" if parsed < (1, 15) else "blocks",
            reads_cidrs=parsed < (1, 16),
            reads_blocks=parsed >= (1, 15),
            first_last_by_default=parsed >= (1, 16),
        )

    def spec_ranges(self, cidrs: list[IPv4Network] | list[IPv4Network | IPv6Network]) -> dict[str, Any]:
        """The part of `spec` that holds `cidrs`, as this version reads it."""
        return {self.ranges_field: [{"cidr": str(cidr)} for cidr in cidrs]}
