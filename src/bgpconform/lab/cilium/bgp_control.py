"""The decisions of Cilium 1.13's BGP control plane (v1) for one node, as pure functions over API objects.

The 1.13 agent (`pkg/bgpv1/agent/controller.go`) reconciles level-triggered: on any event it lists
every CiliumBGPPeeringPolicy, selects the ones whose `nodeSelector` matches its node's labels and
(FACTS.md, "Cilium: BGP control plane v1"):
- none: no BGP at all (every session torn down, "full withdrawal");
- two or more: the same full withdrawal, plus the error `ErrMultiplePolicies` logged as
  `POLICY_SELECTION_FAILED` (the wording, "more then one", is Cilium's);
- exactly one: one BGP server per virtual router (`localASN`), dialing each neighbor (`peerAddress`
  is a CIDR, /32 for a host), announcing the node's pod CIDR when `exportPodCIDR` is set and a /32 per
  `status.loadBalancer.ingress[].ip` of each LoadBalancer service its `serviceSelector` matches. The
  selector sees the service's labels plus `io.kubernetes.service.name` / `.namespace`; a nil selector
  announces no services (`selectors.bgp_selects_service`).

Not emulated (none exists in 1.13 or the lab cannot use it): IPv6 neighbors and prefixes (the lab's
wire is IPv4 only; they are skipped and reported in `problems`), the router-id annotation, and the
1.14+ additions (`loadBalancerClass` filtering, `externalTrafficPolicy: Local` awareness, timers).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address, ip_network
from typing import Any

from bgpconform.lab.cilium.selectors import SelectorError, bgp_selects_node, bgp_selects_service

SERVICE_NAME_LABEL = "io.kubernetes.service.name"
SERVICE_NAMESPACE_LABEL = "io.kubernetes.service.namespace"
# `ErrMultiplePolicies` in pkg/bgpv1/agent/controller.go, sic.
ERR_MULTIPLE_POLICIES = (
    "more then one CiliumBGPPeeringPolicy applies to this node, "
    "please ensure only a single Policy matches this node's labels"
)
# What `Controller.Reconcile` logs (logrus text format, keys sorted), as Cilium's BGP troubleshooting
# guide quotes it; `Controller.Run` then logs the same error once more as a failed reconciliation.
POLICY_SELECTION_FAILED = (
    f'level=error msg="Policy selection failed" component=Controller.Reconcile '
    f'error="{ERR_MULTIPLE_POLICIES}" subsys=bgp-control-plane'
)
RECONCILIATION_FAILED = (
    f'level=error msg="Encountered error during reconciliation" component=Controller.Run '
    f'error="{ERR_MULTIPLE_POLICIES}" subsys=bgp-control-plane'
)


@dataclass(frozen=True, order=True)
class NeighborTimers:
    """connect retry, hold and keepalive in seconds, as a 1.14+ policy or a BGPv2 peer config sets them."""

    connect_retry: int = 120
    hold: int = 90
    keepalive: int = 30


@dataclass(frozen=True, order=True)
class DesiredNeighbor:
    """A neighbor to dial: `peerAddress` without its prefix length, `peerASN`, and its timers (None:
    Cilium sets none and GoBGP's defaults dial, as in 1.13)."""

    address: IPv4Address
    asn: int
    timers: NeighborTimers | None = None
    restart_time: int | None = None  # graceful restart's restart time when enabled (1.14+), else None


@dataclass(frozen=True)
class VirtualRouter:
    """One BGP server of the node: its ASN, whom it dials and what it announces (sorted, unique)."""

    local_asn: int
    neighbors: tuple[DesiredNeighbor, ...]
    export_pod_cidr: bool
    pod_cidrs: tuple[IPv4Network, ...]
    service_prefixes: tuple[IPv4Network, ...]

    @property
    def prefixes(self) -> tuple[IPv4Network, ...]:
        """Everything the router originates: the pod CIDRs it exports, then the LB /32s."""
        return tuple(sorted({*self.pod_cidrs, *self.service_prefixes}))


@dataclass(frozen=True)
class NodeBgpConfig:
    """The node's BGP config under the one policy that selects it."""

    policy: str
    routers: tuple[VirtualRouter, ...]
    problems: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class PolicyConflict:
    """Two or more policies select the node: Cilium clears its BGP config and logs the error."""

    policies: tuple[str, ...]
    error: str = ERR_MULTIPLE_POLICIES

    @property
    def log_lines(self) -> tuple[str, str]:
        return (POLICY_SELECTION_FAILED, RECONCILIATION_FAILED)


BgpDecision = NodeBgpConfig | PolicyConflict | None


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def selecting_policies(
    policies: Sequence[Mapping[str, Any]], node_labels: Mapping[str, str] | None
) -> list[Mapping[str, Any]]:
    """The policies whose `nodeSelector` matches the node; an invalid selector matches nothing.

    (1.13 logs "Failed to convert CiliumBGPPeeringPolicy's NodeSelector" and goes on with the others.)
    """
    selected = []
    for policy in policies:
        try:
            if bgp_selects_node(policy.get("spec", {}).get("nodeSelector"), node_labels):
                selected.append(policy)
        except SelectorError:
            continue
    return selected


def service_selector_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's labels as BGP `serviceSelector` sees them: plus its name and namespace (FACTS.md)."""
    meta = service.get("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels[SERVICE_NAME_LABEL] = str(meta.get("name", ""))
    labels[SERVICE_NAMESPACE_LABEL] = str(meta.get("namespace", ""))
    return labels


def is_load_balancer(service: Mapping[str, Any]) -> bool:
    return bool(service.get("spec", {}).get("type") == "LoadBalancer")


@functools.lru_cache(maxsize=65536)
def _parsed(text: str) -> IPv4Address | IPv6Address | None:
    """An ingress address parsed once for every agent and pass that reads it."""
    try:
        return ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def _host_route(address: IPv4Address) -> IPv4Network:
    return IPv4Network(f"{address}/32")


def ingress_ips(service: Mapping[str, Any]) -> list[IPv4Address]:
    """The IPv4 addresses of `status.loadBalancer.ingress[].ip` (hostname-only entries carry none)."""
    found = []
    for ingress in service.get("status", {}).get("loadBalancer", {}).get("ingress") or []:
        address = _parsed(str(ingress.get("ip", "")))
        if isinstance(address, IPv4Address):
            found.append(address)
    return found


# (id of a service object, selector) -> (that object, its /32s under the selector). An informer hands
# out the same object until the service changes, so an unchanged one is not matched again: 50 agents
# matching 500 services on every event of a burst was a scale run's largest cost. Bounded by clearing.
_SELECTED: dict[tuple[int, str], tuple[Mapping[str, Any], tuple[IPv4Network, ...]]] = {}
_SELECTED_LIMIT = 200_000


def _service_routes(
    service: Mapping[str, Any], selector: Mapping[str, Any] | None
) -> tuple[IPv4Network, ...]:
    if not is_load_balancer(service):
        return ()
    if bgp_selects_service(selector, service_selector_labels(service)):
        return tuple(_host_route(ip) for ip in ingress_ips(service))
    return ()


def announced_services(
    selector: Mapping[str, Any] | None, services: Sequence[Mapping[str, Any]]
) -> tuple[IPv4Network, ...]:
    """The /32s a virtual router announces: one per ingress IP of each selected LoadBalancer service."""
    prefixes: set[IPv4Network] = set()
    selector_key = json.dumps(selector, sort_keys=True)
    if len(_SELECTED) > _SELECTED_LIMIT:
        _SELECTED.clear()
    for service in services:
        key = (id(service), selector_key)
        known = _SELECTED.get(key)
        if known is not None and known[0] is service:
            prefixes.update(known[1])
            continue
        try:
            routes = _service_routes(service, selector)
        except SelectorError:
            return ()
        _SELECTED[key] = (service, routes)
        prefixes.update(routes)
    return tuple(sorted(prefixes))


def _timers(fields: Mapping[str, Any]) -> NeighborTimers:
    """The neighbor timers of a 1.14+ policy neighbor or a BGPv2 peer config's `timers`, defaults as the
    CRDs default them (FACTS.md)."""
    defaults = NeighborTimers()
    return NeighborTimers(
        int(fields.get("connectRetryTimeSeconds") or defaults.connect_retry),
        int(fields.get("holdTimeSeconds") or defaults.hold),
        int(fields.get("keepAliveTimeSeconds") or defaults.keepalive),
    )


DEFAULT_RESTART_TIME = 120  # `gracefulRestart.restartTimeSeconds` when unset (FACTS.md)


def _restart_time(fields: Mapping[str, Any]) -> int | None:
    """The restart time of an enabled `gracefulRestart` (1.14+ policy neighbor, BGPv2 peer config)."""
    graceful = fields.get("gracefulRestart") or {}
    if not graceful.get("enabled"):
        return None
    return int(graceful.get("restartTimeSeconds") or DEFAULT_RESTART_TIME)


def _neighbors(
    router: Mapping[str, Any], problems: list[str], *, with_timers: bool
) -> tuple[DesiredNeighbor, ...]:
    found: set[DesiredNeighbor] = set()
    for neighbor in router.get("neighbors") or []:
        text = str(neighbor.get("peerAddress", ""))
        try:
            address = ip_network(text, strict=False).network_address
        except ValueError:
            problems.append(f"neighbor peerAddress {text!r} is not a CIDR; skipped")
            continue
        if not isinstance(address, IPv4Address):
            problems.append(f"neighbor {text}: IPv6 peers are not emulated; skipped")
            continue
        timers = _timers(neighbor) if with_timers else None
        restart = _restart_time(neighbor) if with_timers else None
        found.add(DesiredNeighbor(address, int(neighbor.get("peerASN", 0)), timers, restart))
    return tuple(sorted(found))


def node_bgp_config(
    policies: Sequence[Mapping[str, Any]],
    node_labels: Mapping[str, str] | None,
    pod_cidrs: Sequence[IPv4Network],
    services: Sequence[Mapping[str, Any]],
    *,
    policy_timers: bool = False,
) -> BgpDecision:
    """The node's desired BGP state: None (no policy), a `PolicyConflict`, or its virtual routers.

    Virtual routers are keyed by `localASN` as 1.13's router manager keys its BGP servers; a second
    virtual router with an ASN already seen is ignored and reported in `problems`. `policy_timers`:
    the neighbors' timer fields count (1.14+); 1.13 has none.
    """
    selected = selecting_policies(policies, node_labels)
    if not selected:
        return None
    if len(selected) > 1:
        return PolicyConflict(tuple(sorted(_name(policy) for policy in selected)))
    policy = selected[0]
    problems: list[str] = []
    routers: dict[int, VirtualRouter] = {}
    for router in policy.get("spec", {}).get("virtualRouters") or []:
        asn = int(router.get("localASN", 0))
        if asn in routers:
            problems.append(f"a second virtual router with localASN {asn} is ignored")
            continue
        export = bool(router.get("exportPodCIDR", False))
        routers[asn] = VirtualRouter(
            local_asn=asn,
            neighbors=_neighbors(router, problems, with_timers=policy_timers),
            export_pod_cidr=export,
            pod_cidrs=tuple(sorted(set(pod_cidrs))) if export else (),
            service_prefixes=announced_services(router.get("serviceSelector"), services),
        )
    return NodeBgpConfig(_name(policy), tuple(routers.values()), tuple(problems))


# -- BGPv2 (1.16+): the node's CiliumBGPNodeConfig, written by the operator, read by the agent -------


def advertised_prefixes(
    advertisements: Sequence[Mapping[str, Any]],
    selector: Mapping[str, Any] | None,
    pod_cidrs: Sequence[IPv4Network],
    services: Sequence[Mapping[str, Any]],
) -> tuple[tuple[IPv4Network, ...], tuple[IPv4Network, ...], list[str]]:
    """What a peer's family announces: the advertisements its label selector picks (none without
    one), each `PodCIDR` entry giving the node's pod CIDRs and each `Service` entry with
    `LoadBalancerIP` the /32s of the services its `selector` matches (FACTS.md, "BGPv2 in brief")."""
    pods: set[IPv4Network] = set()
    lb: set[IPv4Network] = set()
    problems: list[str] = []
    if selector is None:
        return (), (), problems
    for advertisement in advertisements:
        labels = (advertisement.get("metadata") or {}).get("labels") or {}
        try:
            if not bgp_selects_service(selector, labels):
                continue
        except SelectorError as exc:
            problems.append(f"advertisement selector: {exc}")
            return (), (), problems
        for entry in (advertisement.get("spec") or {}).get("advertisements") or []:
            kind = entry.get("advertisementType")
            if kind == "PodCIDR":
                pods.update(pod_cidrs)
            elif kind == "Service":
                addresses = (entry.get("service") or {}).get("addresses") or []
                if "LoadBalancerIP" in addresses:
                    lb.update(announced_services(entry.get("selector"), services))
            else:
                problems.append(f"advertisement type {kind!r} is not emulated; skipped")
    return tuple(sorted(pods)), tuple(sorted(lb)), problems


def node_bgp_config_v2(
    node_config: Mapping[str, Any] | None,
    peer_configs: Mapping[str, Mapping[str, Any]],
    advertisements: Sequence[Mapping[str, Any]],
    pod_cidrs: Sequence[IPv4Network],
    services: Sequence[Mapping[str, Any]],
) -> NodeBgpConfig | None:
    """The node's BGP state from its CiliumBGPNodeConfig: one BGP server per instance, each peer
    dialled with its peer config's timers and announcing what that config's ipv4/unicast family
    selects. A peer whose peer config is missing is dialled with the defaults and announces nothing
    (the cluster config then reports `MissingPeerConfigs`)."""
    if node_config is None:
        return None
    problems: list[str] = []
    routers: dict[int, VirtualRouter] = {}
    for instance in (node_config.get("spec") or {}).get("bgpInstances") or []:
        asn = int(instance.get("localASN") or 0)
        if asn in routers:
            problems.append(f"a second instance with localASN {asn} is ignored")
            continue
        neighbors: set[DesiredNeighbor] = set()
        pods: set[IPv4Network] = set()
        lb: set[IPv4Network] = set()
        for peer in instance.get("peers") or []:
            text = str(peer.get("peerAddress") or "")
            try:
                address = ip_address(text)
            except ValueError:
                problems.append(f"peer {peer.get('name')!r}: peerAddress {text!r} is not an address; skipped")
                continue
            if not isinstance(address, IPv4Address):
                problems.append(f"peer {text}: IPv6 peers are not emulated; skipped")
                continue
            ref = str((peer.get("peerConfigRef") or {}).get("name") or "")
            config = peer_configs.get(ref)
            spec = (config or {}).get("spec") or {}
            if config is None:
                problems.append(f"peer {text}: peer config {ref!r} not found")
            neighbors.add(
                DesiredNeighbor(
                    address,
                    int(peer.get("peerASN") or 0),
                    _timers(spec.get("timers") or {}),
                    _restart_time(spec),
                )
            )
            for family in spec.get("families") or []:
                if (family.get("afi"), family.get("safi")) != ("ipv4", "unicast"):
                    continue
                found_pods, found_lb, found_problems = advertised_prefixes(
                    advertisements, family.get("advertisements"), pod_cidrs, services
                )
                pods.update(found_pods)
                lb.update(found_lb)
                problems.extend(found_problems)
        routers[asn] = VirtualRouter(
            local_asn=asn,
            neighbors=tuple(sorted(neighbors)),
            export_pod_cidr=bool(pods),
            pod_cidrs=tuple(sorted(pods)),
            service_prefixes=tuple(sorted(lb)),
        )
    name = str((node_config.get("metadata") or {}).get("name") or "")
    return NodeBgpConfig(name, tuple(routers.values()), tuple(problems))
