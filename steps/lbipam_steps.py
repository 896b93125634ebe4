"""Steps of the LB IPAM stage: pools, services, conflicts, impossible requests."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pytest_bdd import given, then, when

from bgpconform import checks, observe
from bgpconform.cilium.lbipam import (
    REASON_CIDR_OVERLAP,
    REASON_NO_POOL,
    REASON_SATISFIED,
    Naming,
    conflict_message,
)
from bgpconform.evidence import Evidence
from bgpconform.expect import expect, expect_check
from bgpconform.kubeapi.port import Resources
from bgpconform.stage import Stage
from bgpconform.waiting import consistently, wait_for, wait_until
from bgpconform.walkthrough import manifests
from bgpconform.walkthrough.machine import StageMachine

SECOND_POOL = "bgpconform-overlap"


def _names(walkthrough: StageMachine) -> Naming:
    """The condition types and wording of the Cilium version under test (FACTS.md, "LB IPAM")."""
    return Naming.for_version(str(walkthrough.topology.cluster.cilium_version))


def _first_pool(walkthrough: StageMachine) -> IPv4Network:
    first: IPv4Network = walkthrough.topology.lb_pools[0].cidrs[0]
    return first


def _all_pool_networks(walkthrough: StageMachine) -> list[IPv4Network]:
    return [cidr for pool in walkthrough.topology.lb_pools for cidr in pool.cidrs]


def _allocated(walkthrough: StageMachine) -> int:
    """LoadBalancer IPs handed out cluster-wide, for the report's counts."""
    services = walkthrough.target.kube.items(Resources.SERVICES)
    return sum(len(s.get("status", {}).get("loadBalancer", {}).get("ingress") or []) for s in services)


def _outside_every_pool(walkthrough: StageMachine, prefixlen: int | None = None) -> IPv4Network:
    """A block (of the first pool's size unless `prefixlen` says) after the first pool that overlaps no
    topology pool and no node subnet."""
    first = _first_pool(walkthrough)
    size = first.prefixlen if prefixlen is None else prefixlen
    taken = [*_all_pool_networks(walkthrough), walkthrough.topology.cluster.node_subnet]
    candidate = IPv4Network(f"{first.network_address}/{size}", strict=False)
    for _ in range(1024):
        candidate = IPv4Network(f"{candidate.broadcast_address + 1}/{size}")
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise AssertionError(f"no free block of /{size} after {first}")  # pragma: no cover


@given("BGP peering between the labelled nodes and the router is established")
def peering_established(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.bring_to(Stage.PEERING)


@given("the first LB IP pool exists")
def first_pool(walkthrough: StageMachine, evidence: Evidence) -> None:
    pool = walkthrough.create_pool()
    evidence.json("CiliumLoadBalancerIPPool", pool.get("spec"))


@given("the nginx pod runs")
def nginx_runs(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.create_nginx()
    evidence.table("kubectl get pods -o wide", observe.pod_table(walkthrough.wait_nginx_running()))


@when("a LoadBalancer service is created for it")
def create_service(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.create_service()


@then("the service gets an external IP inside the first pool", target_fixture="service_ip")
def ip_inside_pool(walkthrough: StageMachine, evidence: Evidence) -> IPv4Address:
    address = walkthrough.wait_service_ip()
    evidence.text("kubectl get svc", f"{walkthrough.topology.workload.service_name}  EXTERNAL-IP {address}")
    pool = _first_pool(walkthrough)
    expect(address in pool, f"an address in {pool}", str(address))
    evidence.count("lb_ips_allocated", _allocated(walkthrough))
    return address


EDGE_POOL = "bgpconform-edges"


@when(
    "a pool of one /30 is created and a LoadBalancer service asks for each of its four addresses",
    target_fixture="edge_requests",
)
def ask_for_every_address(walkthrough: StageMachine, evidence: Evidence) -> dict[str, IPv4Address]:
    """A /30 beside every pool, and four services each requesting one of its addresses by annotation:
    only this pool can satisfy them, so what it hands out is exactly what the version allows."""
    block = _outside_every_pool(walkthrough, 30)
    walkthrough.added_extra_objects()
    version = str(walkthrough.topology.cluster.cilium_version)
    walkthrough.create(Resources.LB_IP_POOLS, manifests.pool_object(EDGE_POOL, [block], version))
    annotation = _names(walkthrough).ips_annotations[0]
    requests: dict[str, IPv4Address] = {}
    for index, address in enumerate(block):
        name = f"bgpconform-edge-{index}"
        walkthrough.create_service(name, annotations={annotation: str(address)})
        requests[name] = address
    evidence.json(
        f"CiliumLoadBalancerIPPool {EDGE_POOL}",
        {"cidr": str(block), "requests": {k: str(v) for k, v in requests.items()}},
    )
    return requests


def _address_of(service: dict[str, Any]) -> str:
    """A service's LB addresses as text, "" while it has none."""
    ingress = (service.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    return ",".join(str(i.get("ip")) for i in ingress)


def _addresses(walkthrough: StageMachine, names: Iterable[str]) -> dict[str, str]:
    return {name: _address_of(walkthrough.service(name)) for name in names}


def _decided(walkthrough: StageMachine, names: Collection[str]) -> dict[str, str]:
    """Each named service's outcome once LB IPAM has decided on it: its address, or "none (reason)"
    from its request condition; address and condition are read from one object, as the operator
    writes them in one status update."""
    satisfied = _names(walkthrough).service_condition

    def outcomes() -> dict[str, str]:
        found: dict[str, str] = {}
        for name in names:
            service = walkthrough.service(name)
            address, condition = _address_of(service), checks.condition(service, satisfied)
            if address:
                found[name] = address
            elif condition:
                found[name] = f"none ({condition.get('reason')})"
        return found

    return wait_for(
        outcomes,
        lambda seen: len(seen) == len(names),
        expected=f"LB IPAM to decide on {', '.join(sorted(names))}",
        timeout=walkthrough.topology.waits.ip_allocated,
    ).value


EDGE_HOLD = 3.0  # seconds the first and last addresses must stay unassigned (1.13 writes no condition)


@then("only the services asking for the two middle addresses get them")
def only_middle_addresses(
    walkthrough: StageMachine, evidence: Evidence, edge_requests: dict[str, IPv4Address]
) -> None:
    """1.13-1.15 write no condition for a request of a CIDR's network or broadcast address (they log
    "Unable to allocate IP"), so those are held to stay without an address, not waited on."""
    names = list(edge_requests)
    middle, edges = names[1:3], {names[0], names[-1]}
    decided = _decided(walkthrough, middle)
    held = consistently(
        lambda: _addresses(walkthrough, names),
        checks.ServicesWithoutAddress(frozenset(edges)),
        duration=EDGE_HOLD,
    ).value
    shown = {str(edge_requests[n]): decided.get(n) or held[n] or "none" for n in names}
    evidence.json("requested address -> outcome", shown)
    expect(
        all(decided[name] == str(edge_requests[name]) for name in middle),
        f"{edge_requests[middle[0]]} and {edge_requests[middle[1]]} handed out to the services that asked",
        shown,
    )


@then("every service gets the address it asked for, the first and last included")
def every_address(
    walkthrough: StageMachine, evidence: Evidence, edge_requests: dict[str, IPv4Address]
) -> None:
    outcomes = _decided(walkthrough, list(edge_requests))
    evidence.json("requested address -> outcome", {str(edge_requests[n]): o for n, o in outcomes.items()})
    expect(
        all(outcomes[name] == str(address) for name, address in edge_requests.items()),
        "every address of the /30 handed out to the service that asked for it, "
        + ", ".join(str(a) for a in edge_requests.values()),
        {str(edge_requests[n]): o for n, o in outcomes.items()},
    )


@then("the service reports that its IP request is satisfied")
def request_satisfied(walkthrough: StageMachine, evidence: Evidence) -> None:
    satisfied = _names(walkthrough).service_condition
    condition = checks.condition(walkthrough.service(), satisfied)
    evidence.json("service condition", condition)
    expect(
        (condition.get("status"), condition.get("reason")) == ("True", REASON_SATISFIED),
        f"{satisfied} True, reason {REASON_SATISFIED}",
        condition,
    )


@then("the router learns that address as a /32 from every labelled node")
def route_from_every_node(walkthrough: StageMachine, evidence: Evidence, service_ip: IPv4Address) -> None:
    walkthrough.wait_route(service_ip)
    walkthrough.reached(Stage.LB_IPAM)
    prefix = IPv4Network(f"{service_ip}/32")
    routes = observe.router_routes(walkthrough.target.router, [prefix])
    evidence.table("router: routes", observe.routes_table(routes))
    command, printed = walkthrough.target.router.show_routes()
    evidence.text(f"router: {command}", printed)
    evidence.count("lb_routes_at_router", len([r for r in routes if r.source == "bgp"]))


@when("a second pool overlapping the first pool is created")
def create_overlap(walkthrough: StageMachine, evidence: Evidence) -> None:
    """The second pool overlaps the first with its first CIDR and has a second CIDR no other pool has,
    so a request that only it could satisfy shows whether a conflicting pool allocates."""
    first = _first_pool(walkthrough)
    overlap = IPv4Network(f"{first.network_address}/{min(first.prefixlen + 1, 32)}")
    walkthrough.added_extra_objects()
    cidrs = [overlap, _outside_every_pool(walkthrough)]
    first_pool = walkthrough.target.kube.get(Resources.LB_IP_POOLS, walkthrough.topology.lb_pools[0].name)
    pool = walkthrough.create_newer_than(
        Resources.LB_IP_POOLS,
        manifests.pool_object(SECOND_POOL, cidrs, str(walkthrough.topology.cluster.cilium_version)),
        older=first_pool,
    )
    evidence.json(
        f"CiliumLoadBalancerIPPool {SECOND_POOL}",
        {"creationTimestamp": pool["metadata"]["creationTimestamp"], "spec": pool.get("spec")},
    )


def _wait_conflict(walkthrough: StageMachine, status: str) -> dict[str, Any]:
    conflict = _names(walkthrough).conflict
    pool = wait_until(
        lambda: walkthrough.target.kube.get(Resources.LB_IP_POOLS, SECOND_POOL),
        checks.PoolConflict(SECOND_POOL, conflict, status),
        timeout=walkthrough.topology.waits.ip_allocated,
    ).value
    return checks.condition(pool, conflict)


@then("the second pool is marked conflicting because its CIDR overlaps the first pool's")
def overlap_marked(walkthrough: StageMachine, evidence: Evidence) -> None:
    names = _names(walkthrough)
    condition = _wait_conflict(walkthrough, "True")
    evidence.json(f"{SECOND_POOL} {names.conflict}", condition)
    first = walkthrough.topology.lb_pools[0]
    overlap = IPv4Network(f"{first.cidrs[0].network_address}/{min(first.cidrs[0].prefixlen + 1, 32)}")
    message = conflict_message(names, overlap, first.cidrs[0], first.name)
    expect(
        (condition.get("reason"), condition.get("message")) == (REASON_CIDR_OVERLAP, message),
        f"reason {REASON_CIDR_OVERLAP}, message {message!r}",
        condition,
    )


@then("the first pool is not marked conflicting")
def first_not_marked(walkthrough: StageMachine, evidence: Evidence) -> None:
    conflict = _names(walkthrough).conflict
    first = walkthrough.topology.lb_pools[0].name
    pool = walkthrough.target.kube.get(Resources.LB_IP_POOLS, first)
    evidence.json(f"{first} {conflict}", checks.condition(pool, conflict))
    expect_check(checks.PoolConflict(first, conflict, "False"), pool)


@then("a new LoadBalancer service still gets an address from the first pool")
def first_still_allocates(walkthrough: StageMachine, evidence: Evidence) -> None:
    name = walkthrough.create_service("bgpconform-second")
    address = walkthrough.wait_service_ip(name)
    evidence.text("kubectl get svc bgpconform-second", f"EXTERNAL-IP {address}")
    expect(address in _first_pool(walkthrough), f"an address in {_first_pool(walkthrough)}", str(address))
    evidence.count("lb_ips_allocated", _allocated(walkthrough))


@when("the second pool is changed to a CIDR that overlaps no pool")
def move_overlap(walkthrough: StageMachine, evidence: Evidence) -> None:
    free = _outside_every_pool(walkthrough)
    ranges = manifests.pool_ranges([free], str(walkthrough.topology.cluster.cilium_version))
    walkthrough.target.kube.patch(Resources.LB_IP_POOLS, SECOND_POOL, {"spec": ranges})


@then("the second pool is no longer marked conflicting")
def overlap_cleared(walkthrough: StageMachine, evidence: Evidence) -> None:
    condition = _wait_conflict(walkthrough, "False")
    evidence.json(f"{SECOND_POOL} {_names(walkthrough).conflict}", condition)


@when("a LoadBalancer service requests an address outside every pool", target_fixture="impossible_service")
@when(
    "a LoadBalancer service requests an address only the second pool holds",
    target_fixture="impossible_service",
)
def request_outside(walkthrough: StageMachine, evidence: Evidence) -> str:
    """One block serves both requests: outside every topology pool, and in the overlap scenario the
    second pool's own CIDR (`create_overlap`), which a marked pool must not allocate from (FACTS.md)."""
    wanted = _outside_every_pool(walkthrough).network_address + 1
    walkthrough.added_extra_objects()
    return walkthrough.create_service(
        "bgpconform-impossible", annotations={_names(walkthrough).ips_annotations[0]: str(wanted)}
    )


@then("the service gets no external IP")
def no_ip(walkthrough: StageMachine, evidence: Evidence, impossible_service: str) -> None:
    satisfied = _names(walkthrough).service_condition
    waited = wait_for(
        lambda: walkthrough.service(impossible_service),
        lambda svc: bool(checks.condition(svc, satisfied)),
        expected=f"service {impossible_service} to get an LB IPAM condition",
        timeout=walkthrough.topology.waits.ip_allocated,
    )
    status = waited.value.get("status", {})
    expect(not status.get("loadBalancer", {}).get("ingress"), "no external IP", status)


@then("the service reports that no pool can satisfy its request")
def says_why(walkthrough: StageMachine, evidence: Evidence, impossible_service: str) -> None:
    satisfied = _names(walkthrough).service_condition
    condition = checks.condition(walkthrough.service(impossible_service), satisfied)
    evidence.json("service condition", condition)
    expect(
        (condition.get("status"), condition.get("reason")) == ("False", REASON_NO_POOL)
        and bool(condition.get("message")),
        f"{satisfied} False, reason {REASON_NO_POOL}, with a message",
        condition,
    )
