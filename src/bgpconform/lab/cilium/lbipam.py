"""Cilium's LB IPAM as a pure function: CiliumLoadBalancerIPPools and Services in, statuses out.

The operator's decisions (FACTS.md, "Cilium: LB IPAM"; detail from cilium/cilium
`operator/pkg/lbipam/lbipam.go` and `pkg/ipam/service/ipallocator/allocator.go`) evaluated on the objects
as they are now rather than event by event, so a controller can call `reconcile` after any change and
write back exactly the statuses it reports as changed. The operator replaces the whole `/status` with a
JSON patch under field manager `cilium-operator-lb-ipam`; `status_patch` builds that patch.

What the evaluation reproduces:
- Dormancy: nothing is decided until the first pool exists. When the last pool goes, that final pass
  still strips the addresses it took away and marks services `no_pool`, then LB IPAM sleeps again;
  the caller carries `LBIPAMResult.active` into the next call for that.
- Usable addresses: a CIDR's network and broadcast addresses are never handed out, so a /24 offers 254,
  a /31 or /32 none (IPv6 ranges stop after 65534 addresses, as the bitmap allocator caps them).
- Conflicts: every new pool gets `conflict` False/`resolved`; of two overlapping pools the newer one
  (later creationTimestamp, then the greater name) is marked True/`cidr_overlap` and allocates nothing;
  the mark is lifted only once the pool overlaps no other pool, marked or not.
- Stability: an address in `status.loadBalancer.ingress` stays with its service while its pool exists,
  selects the service, and the service still wants it (requested IPs, address family). This holds for
  pools that are disabled or marked conflicting since the allocation: they allocate nothing new but keep
  what they gave, as the running operator does (it only re-checks pool, selector and request). All held
  addresses are claimed before anything new is allocated, so a new service never takes a held address.
  A service already satisfied by what it holds gets no condition written, as in the operator.
- Requests: `spec.loadBalancerIP` then annotation `io.cilium/lb-ipam-ips` (comma separated); reasons
  `no_pool`, `pool_selector_mismatch`, `already_allocated`; without a request one address per wanted
  family, failing with `no_pool` or `out_of_ips`.
- Responsibility: only `type: LoadBalancer` services without a `loadBalancerClass` (or with one of
  `lb_classes`); a service that stops qualifying loses its addresses and condition.

Allocation order is a choice: Cilium 1.13-1.14's bitmap allocator (`pkg/ipam/service/allocator`,
`randomScanStrategy`) starts at a random offset and scans forward, wrapping (consistent with the
walkthrough's 172.198.1.246 and .193); 1.15+ use another allocator (`pkg/ipalloc`). Given a
`random.Random` (the lab's operator always passes one, seeded from the run: `bgpconform.lab.chance`)
this module scans from a random start and breaks same-second pool ties at random; without one it takes
the lowest free address and ranks same-second pools by arrival, which its unit tests rely on.

Blocks (`bgpconform.cilium.lbipam.PoolFormat`): 1.13-1.14 read `spec.cidrs`, 1.15 both `cidrs` and
`blocks` (a CIDR, or `start`/`stop` taken whole), 1.16+ only `blocks`; a CIDR keeps its network and
broadcast addresses out unless `allowFirstLastIPs` (default Yes from 1.16) lets them in. 1.15+'s
allocator (`pkg/ipalloc`) is not reproduced: the random-start scan stands in for its choice.
Not emulated: sharing keys.

Services and pools are visited in (creationTimestamp, namespace, name) order; the operator follows event
order, which this approximates. Pool IP counts are written as the converged values (the operator's
`||` chain sets one count per pass and catches up on later passes).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from bgpconform.cilium.lbipam import (
    MESSAGE_NO_POOL,
    MESSAGE_OUT_OF_IPS,
    REASON_ALREADY_ALLOCATED,
    REASON_CIDR_OVERLAP,
    REASON_NO_POOL,
    REASON_NOREASON,
    REASON_OUT_OF_IPS,
    REASON_RESOLVED,
    REASON_SATISFIED,
    REASON_SELECTOR_MISMATCH,
    Naming,
    PoolFormat,
    Span,
    conflict_message,
)
from bgpconform.lab import defects
from bgpconform.lab.cilium.selectors import SelectorError, pool_selects_service

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

SERVICE_NAME_LABEL = "io.kubernetes.service.name"
SERVICE_NAMESPACE_LABEL = "io.kubernetes.service.namespace"
BGP_LOAD_BALANCER_CLASS = "io.cilium/bgp-control-plane"
FIELD_MANAGER = "cilium-operator-lb-ipam"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def usable_size(network: IPNetwork) -> int:
    """How many addresses LB IPAM hands out from a CIDR (FACTS.md: /24 -> 254, /31 and /32 -> 0).

    Mirrors `ipallocator.RangeSize` minus network and broadcast: IPv6 ranges are capped at 2^16 before
    that subtraction, and a /0 or /1 (/127 or /128 for IPv6) counts as empty.
    """
    host_bits = network.max_prefixlen - network.prefixlen
    if network.version == 4:
        size = 0 if host_bits >= 31 else 1 << host_bits
    else:
        size = 0 if host_bits >= 127 else 1 << min(host_bits, 16)
    return max(0, size - 2)


def _now_text(now: datetime | None) -> str:
    moment = now or datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(text: object) -> datetime:
    if not isinstance(text, str) or not text:
        return _EPOCH
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_ip(text: object) -> IPAddress | None:
    if not isinstance(text, str):
        return None
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def _condition(
    kind: str, status: str, generation: int, now: str, *, reason: str, message: str
) -> dict[str, Any]:
    """A `metav1.Condition` in its JSON field order; observedGeneration is omitempty."""
    cond: dict[str, Any] = {"type": kind, "status": status}
    if generation:
        cond["observedGeneration"] = generation
    cond["lastTransitionTime"] = now
    cond["reason"] = reason
    cond["message"] = message
    return cond


def _same(
    cond: Mapping[str, Any], kind: str, status: str, generation: int, *, reason: str, message: str
) -> bool:
    return (
        cond.get("type") == kind
        and cond.get("status") == status
        and int(cond.get("observedGeneration") or 0) == generation
        and cond.get("reason") == reason
        and (cond.get("message") or "") == message
    )


def _set_in_place(conditions: list[dict[str, Any]], new: dict[str, Any]) -> None:
    """`meta.SetStatusCondition`: update the first condition of the type, or append."""
    for cond in conditions:
        if cond.get("type") == new["type"]:
            if cond.get("status") != new["status"]:
                cond["status"] = new["status"]
                cond["lastTransitionTime"] = new["lastTransitionTime"]
            cond["reason"] = new["reason"]
            cond["message"] = new["message"]
            if new.get("observedGeneration"):
                cond["observedGeneration"] = new["observedGeneration"]
            else:
                cond.pop("observedGeneration", None)
            return
    conditions.append(new)


def _first_of(conditions: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((cond for cond in conditions if cond.get("type") == kind), None)


def latest_condition(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> Mapping[str, Any] | None:
    """The condition of `kind` written last: 1.13-1.14 may leave several of one type on a service."""
    found = [cond for cond in conditions or () if cond.get("type") == kind]
    return found[-1] if found else None


def status_patch(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch the operator sends to the `status` subresource for a pool or a service."""
    return [{"op": "replace", "path": "/status", "value": dict(status)}]


class _Failed(Exception):
    """The operator would error out on this object and leave it as it is (and retry)."""


class _Pool:
    """A pool as the operator holds it: its ranges, its working status and whether it is marked."""

    def __init__(self, obj: Mapping[str, Any], naming: Naming, pool_format: PoolFormat) -> None:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        self.name: str = str(meta.get("name") or "")
        self.created = _timestamp(meta.get("creationTimestamp"))
        self.generation = int(meta.get("generation") or 0)
        self.selector: Mapping[str, Any] | None = spec.get("serviceSelector")
        self.disabled = bool(spec.get("disabled"))
        self.original_status: dict[str, Any] = copy.deepcopy(dict(obj.get("status") or {}))
        self.conditions: list[dict[str, Any]] = copy.deepcopy(
            list(self.original_status.get("conditions") or [])
        )
        self.naming = naming
        self.rank = 0  # position in creation order, set by `reconcile`
        self.errors: list[str] = []
        self.ranges: list[_Range] = []
        allow = spec.get("allowFirstLastIPs")
        default = pool_format.first_last_by_default and not defects.active("first-last-ips-withheld")
        keep_ends = default if allow not in ("Yes", "No") else allow == "Yes"
        blocks: list[Any] = list(spec.get("cidrs") or []) if pool_format.reads_cidrs else []
        blocks += list(spec.get("blocks") or []) if pool_format.reads_blocks else []
        for written in blocks:
            block: Mapping[str, Any] = written if isinstance(written, Mapping) else {}
            if block.get("cidr") is not None or "start" not in block:
                text = block.get("cidr")
                try:
                    network = ip_network(str(text), strict=False)
                except ValueError:
                    self.errors.append(f"pool '{self.name}': Error parsing cidr '{text}'")
                    continue
                self.ranges.append(_Range.of_cidr(self, network, keep_ends=keep_ends))
                continue
            try:
                start, stop = (
                    ip_address(str(block.get("start"))),
                    ip_address(str(block.get("stop") or block.get("start"))),
                )
            except ValueError:
                self.errors.append(
                    f"pool '{self.name}': Error parsing block '{block.get('start')} - {block.get('stop')}'"
                )
                continue
            if start.version != stop.version or int(stop) < int(start):
                self.errors.append(f"pool '{self.name}': invalid block '{start} - {stop}'")
                continue
            self.ranges.append(_Range(self, int(start), int(stop), start.version, None))
        self.known = _first_of(self.conditions, naming.conflict) is not None
        self.conflicting = self.known and self._marked()

    def _marked(self) -> bool:
        """Whether the status says conflicting, read the way each version reads it."""
        kind = self.naming.conflict
        if not self.naming.append_conditions:
            first = _first_of(self.conditions, kind)
            return first is not None and first.get("status") == "True"
        last: Mapping[str, Any] | None = None
        for cond in self.conditions:
            if cond.get("type") != kind:
                continue
            if last is None:
                last = cond
            if int(cond.get("observedGeneration") or 0) > int(last.get("observedGeneration") or 0):
                last = cond
            if _timestamp(cond.get("lastTransitionTime")) > _timestamp(last.get("lastTransitionTime")):
                last = cond
        return last is not None and last.get("status") == "True"

    def set_condition(self, kind: str, status: str, reason: str, message: str, now: str) -> None:
        if self.naming.append_conditions:
            if any(
                _same(c, kind, status, self.generation, reason=reason, message=message)
                for c in self.conditions
            ):
                return
            self.conditions = [c for c in self.conditions if c.get("type") != kind]
            self.conditions.append(
                _condition(kind, status, self.generation, now, reason=reason, message=message)
            )
            return
        first = _first_of(self.conditions, kind)
        if first is not None and _same(first, kind, status, self.generation, reason=reason, message=message):
            return
        _set_in_place(
            self.conditions, _condition(kind, status, self.generation, now, reason=reason, message=message)
        )

    def selects(self, labels: Mapping[str, str]) -> bool:
        if defects.active("pool-service-selector-ignored"):
            return True
        try:
            return pool_selects_service(self.selector, labels)
        except SelectorError as exc:
            raise _Failed(f"Making selector from pool '{self.name}' label selector: {exc}") from None

    def internally_overlapping(self) -> tuple[_Range, _Range] | None:
        for i, outer in enumerate(self.ranges):
            for j, inner in enumerate(self.ranges):
                if i != j and outer.overlaps(inner):
                    return outer, inner
        return None

    def overlapping(self, other: _Pool) -> tuple[_Range, _Range] | None:
        for mine in self.ranges:
            for theirs in other.ranges:
                if mine.overlaps(theirs):
                    return mine, theirs
        return None


class _Range:
    """One block of a pool, a CIDR or a 1.15+ start-stop range, and who holds which of its usable
    addresses (slot 0 = the first usable one: network + 1 for a CIDR that keeps its ends out)."""

    def __init__(self, pool: _Pool, first: int, last: int, version: int, network: IPNetwork | None) -> None:
        self.pool = pool
        self.first, self.last, self.version, self.network = first, last, version, network
        self.size = last - first + 1
        self.base = first
        self.owners: dict[int, _Service] = {}

    @classmethod
    def of_cidr(cls, pool: _Pool, network: IPNetwork, *, keep_ends: bool) -> _Range:
        """A CIDR block: without its network and broadcast addresses unless `allowFirstLastIPs` (1.16's
        default) keeps them (FACTS.md)."""
        first, last = int(network.network_address), int(network.broadcast_address)
        block = cls(pool, first, last, network.version, network)
        if keep_ends:
            block.size = min(block.size, usable_size(network) + 2) if network.version == 6 else block.size
            return block
        block.size = usable_size(network)
        # The defect moves every slot down by one: the network address becomes slot 0.
        block.base = first + (0 if defects.active("network-address-handed-out") else 1)
        return block

    @property
    def span(self) -> Span:
        """The block as Cilium names it in a conflict message."""
        if self.network is not None:
            return self.network
        return (self._ip(self.first), self._ip(self.last))

    def _ip(self, value: int) -> IPAddress:
        return IPv4Address(value) if self.version == 4 else IPv6Address(value)

    @property
    def disabled(self) -> bool:
        conflicting = self.pool.conflicting and not defects.active("conflicting-pool-allocates")
        return self.pool.disabled or conflicting

    def overlaps(self, other: _Range) -> bool:
        return self.version == other.version and self.first <= other.last and other.first <= self.last

    def contains(self, ip: IPAddress) -> bool:
        return ip.version == self.version and self.first <= int(ip) <= self.last

    def offset(self, ip: IPAddress) -> int | None:
        """The allocator slot of `ip`, or None for the network/broadcast address (ErrNotInRange)."""
        if not self.contains(ip):
            return None
        offset = int(ip) - self.base
        return offset if 0 <= offset < self.size else None

    def address(self, offset: int) -> IPAddress:
        return self._ip(self.base + offset)

    def take_any(self, owner: _Service, rng: random.Random | None) -> IPAddress | None:
        if len(self.owners) >= self.size:
            return None
        if defects.active("address-outside-pool-handed-out") and not self.owners:
            self.owners[self.size + 1] = owner  # an off-by-one past the block's end: the next block's first
            return self._ip(self.last + 1)
        start = rng.randrange(self.size) if rng is not None else 0
        if defects.active("network-address-handed-out"):
            start = 0  # the defect hands the network address out first, wherever the scan would start
        for step in range(self.size):
            offset = (start + step) % self.size
            if offset not in self.owners:
                self.owners[offset] = owner
                return self.address(offset)
        return None


class _Service:
    """A service as LB IPAM sees it: labels with name/namespace added, requests, working status."""

    def __init__(
        self, obj: Mapping[str, Any], naming: Naming, *, ipv4_enabled: bool, ipv6_enabled: bool
    ) -> None:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        self.namespace = str(meta.get("namespace") or "default")
        self.name = str(meta.get("name") or "")
        self.created = _timestamp(meta.get("creationTimestamp"))
        self.generation = int(meta.get("generation") or 0)
        self.spec = spec
        self.labels: dict[str, str] = dict(meta.get("labels") or {})
        self.labels[SERVICE_NAMESPACE_LABEL] = self.namespace
        self.labels[SERVICE_NAME_LABEL] = self.name
        self.requested = _requested_ips(spec, meta.get("annotations") or {}, naming.ips_annotations)
        self.want_v4, self.want_v6 = _families(spec, ipv4_enabled, ipv6_enabled)
        self.original_status: dict[str, Any] = copy.deepcopy(dict(obj.get("status") or {}))
        load_balancer = self.original_status.get("loadBalancer") or {}
        self.ingress: list[dict[str, Any]] = [dict(i) for i in load_balancer.get("ingress") or []]
        self.conditions: list[dict[str, Any]] = copy.deepcopy(
            list(self.original_status.get("conditions") or [])
        )
        self.allocated: list[tuple[IPAddress, _Range]] = []
        self.error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def order(self) -> tuple[datetime, str, str]:
        return (self.created, self.namespace, self.name)

    def wants_family(self, ip: IPAddress) -> bool:
        return self.want_v6 if ip.version == 6 else self.want_v4

    def holds(self, ip: IPAddress) -> bool:
        return any(held == ip for held, _ in self.allocated)

    def ingress_ips(self) -> list[IPAddress]:
        return [ip for ip in (_parse_ip(i.get("ip")) for i in self.ingress) if ip is not None]

    def satisfied(self) -> bool:
        """`ServiceView.isSatisfied`: every requested IP in ingress, else every wanted family held."""
        if self.requested:
            present = self.ingress_ips()
            return all(ip in present for ip in self.requested)
        has_v4 = any(ip.version == 4 for ip, _ in self.allocated)
        has_v6 = any(ip.version == 6 for ip, _ in self.allocated)
        return not ((self.want_v4 and not has_v4) or (self.want_v6 and not has_v6))

    def set_condition(self, naming: Naming, satisfied: bool, reason: str, message: str, now: str) -> None:
        kind, status = naming.service_condition, "True" if satisfied else "False"
        new = _condition(kind, status, self.generation, now, reason=reason, message=message)
        if naming.append_conditions:
            if not any(
                _same(c, kind, status, self.generation, reason=reason, message=message)
                for c in self.conditions
            ):
                self.conditions.append(new)
            return
        first = _first_of(self.conditions, kind)
        if first is None or not _same(first, kind, status, self.generation, reason=reason, message=message):
            _set_in_place(self.conditions, new)

    def status(self) -> dict[str, Any]:
        return _canonical_status(self.original_status, self.ingress, self.conditions)


def _canonical_status(
    base: Mapping[str, Any], ingress: Sequence[Mapping[str, Any]], conditions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A Service status the way Go marshals it: `loadBalancer: {}` when empty, no empty conditions."""
    status: dict[str, Any] = {
        k: copy.deepcopy(v) for k, v in base.items() if k not in ("loadBalancer", "conditions")
    }
    load_balancer = {
        k: copy.deepcopy(v) for k, v in (base.get("loadBalancer") or {}).items() if k != "ingress"
    }
    if ingress:
        load_balancer["ingress"] = [dict(i) for i in ingress]
    status["loadBalancer"] = load_balancer
    if conditions:
        status["conditions"] = [dict(c) for c in conditions]
    return status


def _requested_ips(
    spec: Mapping[str, Any], annotations: Mapping[str, Any], keys: Sequence[str]
) -> list[IPAddress]:
    """`spec.loadBalancerIP`, then the comma-separated `io.cilium/lb-ipam-ips` (FACTS.md).

    Unparseable entries are skipped and adjacent duplicates collapsed, as `getSVCRequestedIPs` does.
    """
    found: list[IPAddress] = []
    first = _parse_ip(spec.get("loadBalancerIP") or "")
    if first is not None:
        found.append(first)
    annotation = next((annotations[key] for key in keys if annotations.get(key)), "")
    if isinstance(annotation, str):
        found.extend(ip for ip in (_parse_ip(part) for part in annotation.split(",")) if ip is not None)
    compact: list[IPAddress] = []
    for ip in found:
        if not compact or compact[-1] != ip:
            compact.append(ip)
    return compact


def _families(spec: Mapping[str, Any], ipv4_enabled: bool, ipv6_enabled: bool) -> tuple[bool, bool]:
    """Which address families a service without requested IPs gets (`serviceIPFamilyRequest`)."""
    policy = spec.get("ipFamilyPolicy")
    families = list(spec.get("ipFamilies") or [])
    if policy in (None, "SingleStack"):
        if families:
            return (True, False) if families[0] == "IPv4" else (False, True)
        return (True, False) if ipv4_enabled else (False, ipv6_enabled)
    if policy == "PreferDualStack" and families:
        return ("IPv4" in families and ipv4_enabled, "IPv6" in families and ipv6_enabled)
    if policy in ("PreferDualStack", "RequireDualStack"):
        return (ipv4_enabled, ipv6_enabled)
    return (False, False)


def _responsible(spec: Mapping[str, Any], lb_classes: Sequence[str]) -> bool:
    """LoadBalancer services with no `loadBalancerClass`, or one LB IPAM was told to serve."""
    if spec.get("type") != "LoadBalancer":
        return False
    lb_class = spec.get("loadBalancerClass")
    return lb_class is None or lb_class in lb_classes


@dataclass(frozen=True)
class PoolOutcome:
    """One pool's desired status and what it means."""

    name: str
    status: dict[str, Any]
    changed: bool
    conflicting: bool
    disabled: bool
    total: int
    available: int
    used: int


@dataclass(frozen=True)
class ServiceOutcome:
    """One service's desired status; `managed` is False for a service LB IPAM just let go of."""

    namespace: str
    name: str
    status: dict[str, Any]
    changed: bool
    managed: bool
    ips: tuple[str, ...]
    condition: Mapping[str, Any] | None
    error: str | None = None

    @property
    def satisfied(self) -> bool | None:
        """The latest request-satisfied condition as a bool, None when there is none."""
        return None if self.condition is None else self.condition.get("status") == "True"


@dataclass(frozen=True)
class LBIPAMResult:
    """What one evaluation decided. `active` says whether LB IPAM is awake afterwards."""

    active: bool
    pools: dict[str, PoolOutcome]
    services: dict[tuple[str, str], ServiceOutcome]
    errors: tuple[str, ...] = ()

    def pool_patches(self) -> dict[str, dict[str, Any]]:
        """Pool name -> new status, for the pools whose status must be written."""
        return {name: pool.status for name, pool in self.pools.items() if pool.changed}

    def service_patches(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(namespace, name) -> new status, for the services whose status must be written."""
        return {key: svc.status for key, svc in self.services.items() if svc.changed}


@dataclass(frozen=True)
class PoolPrinterRow:
    """A pool's `kubectl get ippools` cells after NAME (FACTS.md: DISABLED, CONFLICTING, IPS AVAILABLE, AGE).

    A missing condition prints blank, which is why the operator writes `conflict` False on every new pool.
    """

    disabled: str
    conflicting: str
    ips_available: str

    def columns(self) -> dict[str, str]:
        return {
            "DISABLED": self.disabled,
            "CONFLICTING": self.conflicting,
            "IPS AVAILABLE": self.ips_available,
        }


def printer_row(pool: Mapping[str, Any], version: str = "1.13") -> PoolPrinterRow:
    """Printer column values of a pool object, each jsonpath taking its first match as kubectl does."""
    naming = Naming.for_version(version)
    spec = pool.get("spec") or {}
    conditions = (pool.get("status") or {}).get("conditions") or []
    conflict = _first_of(conditions, naming.conflict)
    available = _first_of(conditions, naming.ips_available)
    return PoolPrinterRow(
        disabled="true" if spec.get("disabled") else "false",
        conflicting=str(conflict.get("status", "")) if conflict else "",
        ips_available=str(available.get("message", "")) if available else "",
    )


def reconcile(
    pools: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
    *,
    version: str = "1.13",
    active: bool = False,
    now: datetime | None = None,
    lb_classes: Sequence[str] = (),
    ipv4_enabled: bool = True,
    ipv6_enabled: bool = False,
    rng: random.Random | None = None,
    arrival: Mapping[str, float] | None = None,
) -> LBIPAMResult:
    """Decide every pool's and LoadBalancer service's status from the objects as they stand.

    `active` is whether LB IPAM was awake before this call (the previous result's `active`): with no
    pools it decides nothing unless it was (FACTS.md: "dormant until the first pool exists").
    `lb_classes` are the `loadBalancerClass` values served besides none (1.14+ adds
    `io.cilium/bgp-control-plane` when the BGP control plane is on). `rng` switches allocation from
    lowest-free to the random-start scan of 1.13's allocator. `arrival` ranks pools by when the
    caller first saw them: the operator marks the pool whose event came later, and two pools created
    within one second share a creationTimestamp.
    """
    naming = Naming.for_version(version)
    pool_format = PoolFormat.for_version(version)
    stamp = _now_text(now)
    if not pools and not active:
        return LBIPAMResult(active=False, pools={}, services={})

    seen = arrival or {}
    parsed_pools = sorted(
        (_Pool(obj, naming, pool_format) for obj in pools),
        key=lambda p: (p.created, seen.get(p.name, 0), p.name),
    )
    for rank, pool in enumerate(parsed_pools):
        pool.rank = rank
    errors: list[str] = [error for pool in parsed_pools for error in pool.errors]
    _settle_conflicts(parsed_pools, naming, stamp)
    ranges = [rng_ for pool in parsed_pools for rng_ in pool.ranges]

    parsed_services = sorted(
        (_Service(obj, naming, ipv4_enabled=ipv4_enabled, ipv6_enabled=ipv6_enabled) for obj in services),
        key=lambda s: s.order,
    )
    outcomes: dict[tuple[str, str], ServiceOutcome] = {}
    mine: list[_Service] = []
    for svc in parsed_services:
        if _responsible(svc.spec, lb_classes):
            mine.append(svc)
        elif _first_of(svc.conditions, naming.service_condition) is not None:
            outcomes[svc.key] = _release(svc, naming)

    for svc in mine:
        try:
            _strip_or_import(svc, ranges)
        except _Failed as exc:
            svc.error = str(exc)
    halted = defects.active("conflict-stops-every-pool") and any(pool.conflicting for pool in parsed_pools)
    for svc in mine:
        if svc.error is None and not svc.satisfied() and not halted:
            try:
                _satisfy(svc, ranges, naming, stamp, rng)
            except _Failed as exc:
                svc.error = str(exc)
    for svc in mine:
        outcomes[svc.key] = _outcome(svc, naming)
        if svc.error:
            errors.append(f"service '{svc.namespace}/{svc.name}': {svc.error}")

    pool_outcomes = {pool.name: _count(pool, naming, stamp) for pool in parsed_pools}
    return LBIPAMResult(active=bool(pools), pools=pool_outcomes, services=outcomes, errors=tuple(errors))


def _settle_conflicts(pools: Sequence[_Pool], naming: Naming, now: str) -> None:
    """`settleConflicts`: unmark new pools, mark the newer of overlapping pools, unmark resolved ones."""
    for pool in pools:
        if not pool.known:
            pool.set_condition(naming.conflict, "False", REASON_RESOLVED, "", now)
    for outer in pools:
        if outer.conflicting:
            continue
        internal = outer.internally_overlapping()
        if internal is not None:
            _mark(outer, outer, internal[0], internal[1], naming, now=now)
            continue
        for inner in pools:
            if inner is outer or inner.conflicting:
                continue
            overlap = outer.overlapping(inner)
            if overlap is None:
                continue
            if (outer.rank < inner.rank) != defects.active("older-pool-marked-conflicting"):
                _mark(inner, outer, overlap[1], overlap[0], naming, now=now)
            else:
                _mark(outer, inner, overlap[0], overlap[1], naming, now=now)
            if defects.active("both-overlapping-pools-marked"):
                _mark(outer, inner, overlap[0], overlap[1], naming, now=now)
                _mark(inner, outer, overlap[1], overlap[0], naming, now=now)
            break
    for outer in pools:
        if not outer.conflicting or outer.internally_overlapping() is not None:
            continue
        if defects.active("conflict-mark-never-lifted"):
            continue
        if all(outer.overlapping(inner) is None for inner in pools if inner is not outer):
            outer.conflicting = False
            outer.set_condition(naming.conflict, "False", REASON_RESOLVED, "", now)


def _mark(target: _Pool, other: _Pool, mine: _Range, theirs: _Range, naming: Naming, *, now: str) -> None:
    """Mark `target` conflicting with the message FACTS.md quotes ("Cilium: LB IPAM")."""
    message = conflict_message(naming, mine.span, theirs.span, other.name)
    target.conflicting = True
    target.set_condition(naming.conflict, "True", REASON_CIDR_OVERLAP, message, now)


def _holding_range(svc: _Service, ip: IPAddress, ranges: Sequence[_Range]) -> _Range | None:
    """The range an address already in ingress belongs to: an enabled one first, as `findRangeOfIP`
    looks, then a disabled or conflicting one, whose earlier allocations the operator keeps."""
    for want_enabled in (True, False):
        for rng_ in ranges:
            if rng_.disabled == want_enabled or not rng_.contains(ip):
                continue
            if rng_.pool.selects(svc.labels):
                return rng_
    return None


def _strip_or_import(svc: _Service, ranges: Sequence[_Range]) -> None:
    """Keep each ingress address the service may still hold and claim it; drop the rest."""
    kept: list[dict[str, Any]] = []
    for ingress in svc.ingress:
        ip = _parse_ip(ingress.get("ip") or "")
        if ip is None:
            continue
        if svc.holds(ip):
            kept.append(ingress)
            continue
        if (svc.requested and ip not in svc.requested) or not svc.wants_family(ip):
            continue
        rng_ = _holding_range(svc, ip, ranges)
        if rng_ is None:
            continue
        offset = rng_.offset(ip)
        if offset is None:
            raise _Failed(f"Error while attempting to allocate IP '{ingress.get('ip')}'")
        if offset in rng_.owners:
            continue  # another service holds it; the operator warns and strips it here
        rng_.owners[offset] = svc
        svc.allocated.append((ip, rng_))
        kept.append(ingress)
    compact: list[dict[str, Any]] = []
    for ingress in kept:
        if not compact or compact[-1].get("ip") != ingress.get("ip"):
            compact.append(ingress)
    svc.ingress = compact


def _enabled_range_of(svc: _Service, ip: IPAddress, ranges: Sequence[_Range]) -> tuple[_Range | None, bool]:
    """`findRangeOfIP`: the first enabled range containing `ip` whose pool selects the service, and
    whether any enabled range contained it at all."""
    found_pool = False
    for rng_ in ranges:
        if rng_.disabled or not rng_.contains(ip):
            continue
        found_pool = True
        if rng_.pool.selects(svc.labels):
            return rng_, False
    return None, found_pool


def _satisfy(
    svc: _Service, ranges: Sequence[_Range], naming: Naming, now: str, rng: random.Random | None
) -> None:
    """`satisfyService`: allocate what is missing and record why anything could not be."""
    if svc.requested:
        for ip in svc.requested:
            if svc.holds(ip):
                continue
            rng_, found_pool = _enabled_range_of(svc, ip, ranges)
            if rng_ is None:
                if found_pool:
                    reason = REASON_SELECTOR_MISMATCH
                    message = f"The pool with the CIDR containing '{ip}', doesn't select this service"
                else:
                    reason, message = REASON_NO_POOL, f"No pool exists with a CIDR containing '{ip}'"
                if defects.active("unsatisfied-request-without-reason"):
                    reason, message = "", ""
                svc.set_condition(naming, False, reason, message, now)
                continue
            offset = rng_.offset(ip)
            if offset is None:
                continue  # network or broadcast address: the operator logs "Unable to allocate IP"
            if offset in rng_.owners:
                message = f"IP '{ip}' has already been allocated to another service"
                svc.set_condition(naming, False, REASON_ALREADY_ALLOCATED, message, now)
                continue
            rng_.owners[offset] = svc
            svc.allocated.append((ip, rng_))
    else:
        for version, wanted in ((4, svc.want_v4), (6, svc.want_v6)):
            if not wanted or any(ip.version == version for ip, _ in svc.allocated):
                continue
            full = False
            for rng_ in ranges:
                if rng_.disabled or rng_.version != version or not rng_.pool.selects(svc.labels):
                    continue
                new_ip = rng_.take_any(svc, rng)
                if new_ip is None:
                    full = True
                    continue
                svc.allocated.append((new_ip, rng_))
                break
            else:
                reason, message = (
                    (REASON_OUT_OF_IPS, MESSAGE_OUT_OF_IPS) if full else (REASON_NO_POOL, MESSAGE_NO_POOL)
                )
                svc.set_condition(naming, False, reason, message, now)
    present = svc.ingress_ips()
    for ip, _ in svc.allocated:
        if ip not in present:
            svc.ingress.append({"ip": str(ip)})
    if svc.satisfied() and not defects.active("request-satisfied-never-written"):
        svc.set_condition(naming, True, REASON_SATISFIED, "", now)


def _release(svc: _Service, naming: Naming) -> ServiceOutcome:
    """A service LB IPAM no longer serves loses its addresses and its condition."""
    kept = [c for c in svc.conditions if c.get("type") != naming.service_condition]
    status = _canonical_status(svc.original_status, [], kept)
    changed = status != _canonical(svc.original_status)
    return ServiceOutcome(svc.namespace, svc.name, status, changed, managed=False, ips=(), condition=None)


def _canonical(status: Mapping[str, Any]) -> dict[str, Any]:
    load_balancer = status.get("loadBalancer") or {}
    return _canonical_status(
        status, list(load_balancer.get("ingress") or []), list(status.get("conditions") or [])
    )


def _outcome(svc: _Service, naming: Naming) -> ServiceOutcome:
    if svc.error is not None:
        status = _canonical(svc.original_status)
        changed = False
    else:
        status = svc.status()
        changed = status != _canonical(svc.original_status)
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    return ServiceOutcome(
        namespace=svc.namespace,
        name=svc.name,
        status=status,
        changed=changed,
        managed=True,
        ips=tuple(str(i.get("ip")) for i in ingress if i.get("ip")),
        condition=latest_condition(status.get("conditions"), naming.service_condition),
        error=svc.error,
    )


def _count(pool: _Pool, naming: Naming, now: str) -> PoolOutcome:
    """`updatePoolCounts`: total, available and used as Unknown/`noreason` conditions."""
    total = sum(rng_.size for rng_ in pool.ranges)
    used = sum(len(rng_.owners) for rng_ in pool.ranges)
    for kind, value in (
        (naming.ips_total, total),
        (naming.ips_available, total - used),
        (naming.ips_used, used),
    ):
        pool.set_condition(kind, "Unknown", REASON_NOREASON, str(value), now)
    status = {k: copy.deepcopy(v) for k, v in pool.original_status.items() if k != "conditions"}
    status["conditions"] = pool.conditions
    original = dict(pool.original_status)
    original.setdefault("conditions", [])
    return PoolOutcome(
        name=pool.name,
        status=status,
        changed=status != original,
        conflicting=pool.conflicting,
        disabled=pool.disabled,
        total=total,
        available=total - used,
        used=used,
    )


class LBIPAM:
    """`reconcile` with the awake/dormant state and the options kept between calls."""

    def __init__(
        self,
        *,
        version: str = "1.13",
        lb_classes: Sequence[str] = (),
        ipv4_enabled: bool = True,
        ipv6_enabled: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        Naming.for_version(version)
        self.version = version
        self.lb_classes = tuple(lb_classes)
        self.ipv4_enabled = ipv4_enabled
        self.ipv6_enabled = ipv6_enabled
        self.rng = rng
        self.active = False
        self._arrival: dict[str, float] = {}
        self._arrivals = 0

    def reconcile(
        self,
        pools: Sequence[Mapping[str, Any]],
        services: Sequence[Mapping[str, Any]],
        now: datetime | None = None,
    ) -> LBIPAMResult:
        names = {str((pool.get("metadata") or {}).get("name") or "") for pool in pools}
        self._arrival = {name: rank for name, rank in self._arrival.items() if name in names}
        for pool in sorted(pools, key=lambda p: int((p.get("metadata") or {}).get("resourceVersion") or 0)):
            name = str((pool.get("metadata") or {}).get("name") or "")
            if name not in self._arrival:
                self._arrivals += 1
                # Same-second pools: without an rng the later event is the newer pool; with one, the
                # order is random, as Go's map order makes it in `settleConflicts` (FACTS.md).
                self._arrival[name] = self.rng.random() if self.rng is not None else self._arrivals
        result = reconcile(
            pools,
            services,
            arrival=self._arrival,
            version=self.version,
            active=self.active,
            now=now,
            lb_classes=self.lb_classes,
            ipv4_enabled=self.ipv4_enabled,
            ipv6_enabled=self.ipv6_enabled,
            rng=self.rng,
        )
        self.active = result.active
        return result
