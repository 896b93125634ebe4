"""The emulated LB IPAM: FACTS.md's "Cilium: LB IPAM" decisions, checked on the written statuses."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from bgpconform.cilium.lbipam import MESSAGE_NO_POOL, MESSAGE_OUT_OF_IPS, Naming
from bgpconform.lab.cilium import lbipam
from bgpconform.lab.cilium.lbipam import (
    LBIPAM,
    LBIPAMResult,
    latest_condition,
    printer_row,
    reconcile,
    status_patch,
    usable_size,
)
from bgpconform.lab.cilium.selectors import (
    LabelSelector,
    SelectorError,
    bgp_selects_node,
    bgp_selects_service,
    pool_selects_service,
)

NOW = datetime(2023, 7, 26, 15, 0, 0, tzinfo=UTC)
LATER = datetime(2023, 7, 26, 16, 0, 0, tzinfo=UTC)
SATISFIED = "io.cilium/lb-ipam-request-satisfied"


def pool(
    name: str,
    *cidrs: str,
    created: str = "2023-07-26T14:00:00Z",
    selector: dict[str, Any] | None = None,
    disabled: bool = False,
    field: str = "cidrs",
) -> dict[str, Any]:
    spec: dict[str, Any] = {field: [{"cidr": c} for c in cidrs]}
    if selector is not None:
        spec["serviceSelector"] = selector
    if disabled:
        spec["disabled"] = True
    return {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumLoadBalancerIPPool",
        "metadata": {"name": name, "creationTimestamp": created, "generation": 1},
        "spec": spec,
    }


def service(
    name: str,
    *,
    namespace: str = "default",
    created: str = "2023-07-26T14:10:00Z",
    kind: str = "LoadBalancer",
    labels: dict[str, str] | None = None,
    load_balancer_ip: str | None = None,
    ips_annotation: str | None = None,
    ingress: Sequence[str] = (),
    lb_class: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "ports": [{"port": 8080, "targetPort": 80, "protocol": "TCP"}]}
    if load_balancer_ip is not None:
        spec["loadBalancerIP"] = load_balancer_ip
    if lb_class is not None:
        spec["loadBalancerClass"] = lb_class
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "creationTimestamp": created,
        "generation": 1,
    }
    if labels:
        meta["labels"] = labels
    if ips_annotation is not None:
        meta["annotations"] = {"io.cilium/lb-ipam-ips": ips_annotation}
    status: dict[str, Any] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ingress]} if ingress else {}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec, "status": status}


def written(result: LBIPAMResult, pools: list[dict[str, Any]], services: list[dict[str, Any]]) -> None:
    """Write the result back the way the controller will, so the next pass sees it."""
    for obj in pools:
        if obj["metadata"]["name"] in result.pool_patches():
            obj["status"] = result.pool_patches()[obj["metadata"]["name"]]
    for obj in services:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in result.service_patches():
            obj["status"] = result.service_patches()[key]


def conditions_of(result: LBIPAMResult, name: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in result.pools[name].status["conditions"]}


def ips(result: LBIPAMResult, name: str, namespace: str = "default") -> tuple[str, ...]:
    return result.services[(namespace, name)].ips


def condition(result: LBIPAMResult, name: str, namespace: str = "default") -> dict[str, Any]:
    found = result.services[(namespace, name)].condition
    assert found is not None
    return dict(found)


# --- the walkthrough's pool ---------------------------------------------------------------------------


def test_walkthrough_pool_offers_254_and_reports_every_condition_as_1_13_writes_it() -> None:
    pools = [pool("lb-pool", "172.198.1.0/24")]
    result = reconcile(pools, [], now=NOW)

    assert result.active
    stamp = "2023-07-26T15:00:00Z"

    def cond(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "observedGeneration": 1,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }

    assert result.pool_patches() == {
        "lb-pool": {
            "conditions": [
                cond("io.cilium/conflict", "False", "resolved", ""),
                cond("io.cilium/ips-total", "Unknown", "noreason", "254"),
                cond("io.cilium/ips-available", "Unknown", "noreason", "254"),
                cond("io.cilium/ips-used", "Unknown", "noreason", "0"),
            ]
        }
    }
    outcome = result.pools["lb-pool"]
    assert (outcome.total, outcome.available, outcome.used, outcome.conflicting) == (254, 254, 0, False)


def test_walkthrough_service_gets_an_address_and_the_satisfied_condition() -> None:
    pools = [pool("lb-pool", "172.198.1.0/24")]
    services = [service("my-service")]
    result = reconcile(pools, services, now=NOW)

    status = result.service_patches()[("default", "my-service")]
    assert status == {
        "loadBalancer": {"ingress": [{"ip": "172.198.1.1"}]},
        "conditions": [
            {
                "type": SATISFIED,
                "status": "True",
                "observedGeneration": 1,
                "lastTransitionTime": "2023-07-26T15:00:00Z",
                "reason": "satisfied",
                "message": "",
            }
        ],
    }
    assert result.services[("default", "my-service")].satisfied is True
    counts = conditions_of(result, "lb-pool")
    assert counts["io.cilium/ips-available"]["message"] == "253"
    assert counts["io.cilium/ips-used"]["message"] == "1"
    assert status_patch(status) == [{"op": "replace", "path": "/status", "value": status}]


def test_the_walkthrough_address_stays_and_a_second_pass_writes_nothing() -> None:
    pools = [pool("lb-pool", "172.198.1.0/24")]
    services = [service("my-service", ingress=["172.198.1.246"])]
    first = reconcile(pools, services, now=NOW)
    assert ips(first, "my-service") == ("172.198.1.246",)
    written(first, pools, services)

    second = reconcile(pools, services, now=LATER)
    assert second.pool_patches() == {}
    assert second.service_patches() == {}
    assert ips(second, "my-service") == ("172.198.1.246",)
    assert (
        conditions_of(second, "lb-pool")["io.cilium/ips-used"]["lastTransitionTime"] == "2023-07-26T15:00:00Z"
    )


def test_printer_values_follow_the_pool_status() -> None:
    pools = [pool("lb-pool", "172.198.1.0/24")]
    services = [service("my-service")]
    written(reconcile(pools, services, now=NOW), pools, services)

    assert printer_row(pools[0]).columns() == {
        "DISABLED": "false",
        "CONFLICTING": "False",
        "IPS AVAILABLE": "253",
    }
    assert printer_row(pool("fresh", "10.0.0.0/24", disabled=True)).columns() == {
        "DISABLED": "true",
        "CONFLICTING": "",
        "IPS AVAILABLE": "",
    }


# --- usable addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "size"),
    [
        ("172.198.1.0/24", 254),
        ("10.0.0.0/30", 2),
        ("10.0.0.0/31", 0),
        ("10.0.0.1/32", 0),
        ("fd00::/64", 65534),
        ("fd00::/120", 254),
        ("fd00::1/128", 0),
    ],
)
def test_usable_size_leaves_out_network_and_broadcast(cidr: str, size: int) -> None:
    assert usable_size(ip_network(cidr, strict=False)) == size


def test_a_slash_30_hands_out_only_its_two_host_addresses() -> None:
    pools = [pool("tiny", "10.0.0.0/30")]
    services = [service(f"s{i}", created=f"2023-07-26T14:1{i}:00Z") for i in range(3)]
    result = reconcile(pools, services, now=NOW)

    assert ips(result, "s0") == ("10.0.0.1",)
    assert ips(result, "s1") == ("10.0.0.2",)
    assert ips(result, "s2") == ()
    assert condition(result, "s2") | {"lastTransitionTime": None} == {
        "type": SATISFIED,
        "status": "False",
        "observedGeneration": 1,
        "lastTransitionTime": None,
        "reason": "out_of_ips",
        "message": MESSAGE_OUT_OF_IPS,
    }
    assert (result.pools["tiny"].total, result.pools["tiny"].available) == (2, 0)


@pytest.mark.parametrize("cidr", ["10.9.9.0/31", "10.9.9.9/32"])
def test_slash_31_and_32_pools_count_zero_and_run_out_at_once(cidr: str) -> None:
    result = reconcile([pool("small", cidr)], [service("web")], now=NOW)

    counts = conditions_of(result, "small")
    assert counts["io.cilium/ips-total"]["message"] == "0"
    assert counts["io.cilium/ips-available"]["message"] == "0"
    assert condition(result, "web")["reason"] == "out_of_ips"


def test_requested_network_or_broadcast_address_is_never_allocated() -> None:
    result = reconcile([pool("p", "10.0.0.0/24")], [service("a", load_balancer_ip="10.0.0.255")], now=NOW)

    assert ips(result, "a") == ()
    assert result.pools["p"].used == 0
    assert result.services[("default", "a")].condition is None


# --- conflicts ----------------------------------------------------------------------------------------


def test_the_newer_overlapping_pool_is_marked_and_allocates_nothing() -> None:
    pools = [
        pool(
            "older",
            "10.0.0.0/24",
            created="2023-07-26T14:00:00Z",
            selector={"matchLabels": {"pool": "older"}},
        ),
        pool(
            "newer",
            "10.0.0.128/25",
            created="2023-07-26T14:05:00Z",
            selector={"matchLabels": {"pool": "newer"}},
        ),
    ]
    services = [service("wants-newer", labels={"pool": "newer"})]
    result = reconcile(pools, services, now=NOW)

    marked = conditions_of(result, "newer")["io.cilium/conflict"]
    assert (marked["status"], marked["reason"]) == ("True", "cidr_overlap")
    assert (
        marked["message"]
        == "Pool conflicts since CIDR '10.0.0.128/25' overlaps CIDR '10.0.0.0/24' from IP Pool 'older'"
    )
    assert conditions_of(result, "older")["io.cilium/conflict"]["status"] == "False"
    assert result.pools["newer"].conflicting
    assert not result.pools["older"].conflicting
    assert printer_row({**pools[1], "status": result.pools["newer"].status}).conflicting == "True"
    # The marked pool would be the only one selecting the service: nothing enabled matches it.
    assert condition(result, "wants-newer")["reason"] == "no_pool"
    assert condition(result, "wants-newer")["message"] == MESSAGE_NO_POOL


def test_pools_created_in_the_same_second_are_ordered_by_arrival() -> None:
    """Timestamps have one-second resolution; the operator marks the pool whose event came later."""
    first = {
        **pool("zz-first", "10.0.0.0/24"),
        "metadata": {
            "name": "zz-first",
            "resourceVersion": "5",
            "creationTimestamp": "2023-07-26T14:00:00Z",
            "generation": 1,
        },
    }
    engine = LBIPAM()
    engine.reconcile([first], [], now=NOW)
    second = {
        **pool("aa-second", "10.0.0.0/25"),
        "metadata": {
            "name": "aa-second",
            "resourceVersion": "9",
            "creationTimestamp": "2023-07-26T14:00:00Z",
            "generation": 1,
        },
    }
    result = engine.reconcile([second, first], [], now=NOW)
    assert result.pools["aa-second"].conflicting
    assert not result.pools["zz-first"].conflicting


def test_with_the_labs_rng_same_second_pools_are_marked_either_way_and_later_ones_never() -> None:
    """FACTS.md, LB IPAM: within one second the marked pool is random (Go's map order in
    `settleConflicts`); a pool stamped a second later is always the one marked."""

    def marked(seed: int, second_created: str) -> str:
        engine = LBIPAM(rng=random.Random(seed))
        first = pool("first", "10.0.0.0/24")
        engine.reconcile([first], [], now=NOW)
        second = pool("second", "10.0.0.0/25", created=second_created)
        result = engine.reconcile([first, second], [], now=NOW)
        (name,) = [name for name, outcome in result.pools.items() if outcome.conflicting]
        return name

    same_second = str(pool("x", "10.0.0.0/24")["metadata"]["creationTimestamp"])
    assert {marked(seed, same_second) for seed in range(40)} == {"first", "second"}
    assert {marked(seed, "2023-07-26T14:05:01Z") for seed in range(40)} == {"second"}


def test_the_older_pool_keeps_allocating_during_the_overlap() -> None:
    pools = [pool("older", "10.0.0.0/24"), pool("newer", "10.0.0.0/24", created="2023-07-26T14:05:00Z")]
    result = reconcile(pools, [service("web")], now=NOW)

    assert ips(result, "web") == ("10.0.0.1",)
    assert (result.pools["older"].used, result.pools["newer"].used) == (1, 0)


def test_equal_creation_times_mark_the_greater_name() -> None:
    pools = [pool("b-pool", "10.0.0.0/24"), pool("a-pool", "10.0.0.0/25")]
    result = reconcile(pools, [], now=NOW)

    assert result.pools["b-pool"].conflicting
    assert not result.pools["a-pool"].conflicting
    message = conditions_of(result, "b-pool")["io.cilium/conflict"]["message"]
    assert (
        message == "Pool conflicts since CIDR '10.0.0.0/24' overlaps CIDR '10.0.0.0/25' from IP Pool 'a-pool'"
    )


def test_a_pool_overlapping_itself_is_marked() -> None:
    result = reconcile([pool("self", "10.0.0.0/24", "10.0.0.64/26")], [service("web")], now=NOW)

    message = conditions_of(result, "self")["io.cilium/conflict"]["message"]
    assert (
        message == "Pool conflicts since CIDR '10.0.0.0/24' overlaps CIDR '10.0.0.64/26' from IP Pool 'self'"
    )
    assert condition(result, "web")["reason"] == "no_pool"


def test_the_mark_clears_when_the_overlap_goes_and_the_pool_then_allocates() -> None:
    pools = [
        pool("older", "10.0.0.0/24", selector={"matchLabels": {"pool": "older"}}),
        pool(
            "newer",
            "10.0.0.0/25",
            created="2023-07-26T14:05:00Z",
            selector={"matchLabels": {"pool": "newer"}},
        ),
    ]
    services = [service("wants-newer", labels={"pool": "newer"})]
    first = reconcile(pools, services, now=NOW)
    assert condition(first, "wants-newer")["reason"] == "no_pool"
    written(first, pools, services)
    assert (
        conditions_of(reconcile(pools, services, now=NOW), "newer")["io.cilium/conflict"]["status"] == "True"
    )

    pools[0]["spec"]["cidrs"] = [{"cidr": "10.1.0.0/24"}]
    pools[0]["metadata"]["generation"] = 2
    result = reconcile(pools, services, now=LATER)

    cleared = conditions_of(result, "newer")["io.cilium/conflict"]
    assert (cleared["status"], cleared["reason"], cleared["message"]) == ("False", "resolved", "")
    assert cleared["lastTransitionTime"] == "2023-07-26T16:00:00Z"
    assert not result.pools["newer"].conflicting
    assert ips(result, "wants-newer") == ("10.0.0.1",)
    assert condition(result, "wants-newer")["status"] == "True"


def test_the_mark_also_clears_when_the_older_pool_is_deleted() -> None:
    pools = [pool("older", "10.0.0.0/24"), pool("newer", "10.0.0.0/24", created="2023-07-26T14:05:00Z")]
    services: list[dict[str, Any]] = []
    written(reconcile(pools, services, now=NOW), pools, services)

    result = reconcile(pools[1:], services, active=True, now=LATER)
    assert not result.pools["newer"].conflicting
    assert conditions_of(result, "newer")["io.cilium/conflict"]["reason"] == "resolved"


def test_1_15_names_and_range_wording() -> None:
    pools = [pool("older", "10.0.0.0/24"), pool("newer", "10.0.0.128/25", created="2023-07-26T14:05:00Z")]
    result = reconcile(pools, [service("web")], version="1.15", now=NOW)

    newer = conditions_of(result, "newer")
    assert set(newer) == {
        "cilium.io/PoolConflict",
        "cilium.io/IPsTotal",
        "cilium.io/IPsAvailable",
        "cilium.io/IPsUsed",
    }
    assert newer["cilium.io/PoolConflict"]["message"] == (
        "Pool conflicts since range '10.0.0.128 - 10.0.0.255' overlaps range '10.0.0.0 - 10.0.0.255' "
        "from IP Pool 'older'"
    )
    assert condition(result, "web")["type"] == "cilium.io/IPAMRequestSatisfied"
    assert Naming.for_version("v1.14.2").conflict == "io.cilium/conflict"
    with pytest.raises(ValueError, match=r"1\.13"):
        Naming.for_version("1.12")


# --- stability and release ----------------------------------------------------------------------------


def test_a_held_address_is_never_given_to_another_service() -> None:
    services = [
        service("first-created", created="2023-07-26T14:01:00Z"),
        service("holder", created="2023-07-26T14:02:00Z", ingress=["10.0.0.1"]),
    ]
    result = reconcile([pool("p", "10.0.0.0/24")], services, now=NOW)

    assert ips(result, "holder") == ("10.0.0.1",)
    assert ips(result, "first-created") == ("10.0.0.2",)
    # Already satisfied by what it holds, so (as in the operator) nothing is written for it.
    assert not result.services[("default", "holder")].changed


def test_the_same_address_in_two_services_stays_with_the_older() -> None:
    services = [
        service("older", created="2023-07-26T14:01:00Z", ingress=["10.0.0.7"]),
        service("newer", created="2023-07-26T14:02:00Z", ingress=["10.0.0.7"]),
    ]
    result = reconcile([pool("p", "10.0.0.0/24")], services, now=NOW)

    assert ips(result, "older") == ("10.0.0.7",)
    assert ips(result, "newer") == ("10.0.0.1",)


def test_an_address_outside_every_pool_is_stripped() -> None:
    result = reconcile([pool("p", "10.0.0.0/24")], [service("web", ingress=["192.0.2.9"])], now=NOW)

    assert ips(result, "web") == ("10.0.0.1",)


def test_a_service_leaving_loadbalancer_releases_its_address() -> None:
    pools = [pool("p", "10.0.0.0/30")]
    services = [service("a", created="2023-07-26T14:01:00Z"), service("b", created="2023-07-26T14:02:00Z")]
    written(reconcile(pools, services, now=NOW), pools, services)
    services.append(service("c", created="2023-07-26T14:03:00Z"))
    assert condition(reconcile(pools, services, now=NOW), "c")["reason"] == "out_of_ips"

    services[0]["spec"]["type"] = "ClusterIP"
    result = reconcile(pools, services, now=LATER)

    released = result.services[("default", "a")]
    assert not released.managed
    assert released.changed
    assert released.status == {"loadBalancer": {}}
    assert ips(result, "c") == ("10.0.0.1",)
    written(result, pools, services)
    assert ("default", "a") not in reconcile(pools, services, now=LATER).services


def test_non_loadbalancer_and_foreign_class_services_are_ignored() -> None:
    services = [
        service("cluster-ip", kind="ClusterIP"),
        service("other-class", lb_class="example.com/lb"),
        service("bgp-class", lb_class="io.cilium/bgp-control-plane"),
    ]
    result = reconcile([pool("p", "10.0.0.0/24")], services, now=NOW)

    assert set(result.services) == set()
    served = reconcile(
        [pool("p", "10.0.0.0/24")], services, lb_classes=[lbipam.BGP_LOAD_BALANCER_CLASS], now=NOW
    )
    assert set(served.services) == {("default", "bgp-class")}


# --- requested addresses ------------------------------------------------------------------------------


def test_load_balancer_ip_and_annotation_are_both_honoured() -> None:
    services = [
        service("by-field", load_balancer_ip="10.0.0.50"),
        service("by-annotation", ips_annotation="10.0.0.60, 10.0.0.61"),
    ]
    result = reconcile([pool("p", "10.0.0.0/24")], services, now=NOW)

    assert ips(result, "by-field") == ("10.0.0.50",)
    assert ips(result, "by-annotation") == ("10.0.0.60", "10.0.0.61")
    assert condition(result, "by-annotation")["status"] == "True"


def test_changing_the_request_moves_the_address() -> None:
    pools = [pool("p", "10.0.0.0/24")]
    services = [service("web", load_balancer_ip="10.0.0.5")]
    written(reconcile(pools, services, now=NOW), pools, services)

    services[0]["spec"]["loadBalancerIP"] = "10.0.0.7"
    services[0]["metadata"]["generation"] = 2
    result = reconcile(pools, services, now=LATER)

    assert ips(result, "web") == ("10.0.0.7",)
    assert result.pools["p"].used == 1


def test_requested_address_outside_every_pool_is_no_pool() -> None:
    result = reconcile([pool("p", "10.0.0.0/24")], [service("web", load_balancer_ip="192.0.2.10")], now=NOW)

    assert condition(result, "web") | {"lastTransitionTime": None} == {
        "type": SATISFIED,
        "status": "False",
        "observedGeneration": 1,
        "lastTransitionTime": None,
        "reason": "no_pool",
        "message": "No pool exists with a CIDR containing '192.0.2.10'",
    }


def test_requested_address_in_a_pool_that_does_not_select_the_service() -> None:
    pools = [pool("p", "10.0.0.0/24", selector={"matchLabels": {"team": "a"}})]
    result = reconcile(pools, [service("web", labels={"team": "b"}, load_balancer_ip="10.0.0.9")], now=NOW)

    cond = condition(result, "web")
    assert (cond["reason"], cond["message"]) == (
        "pool_selector_mismatch",
        "The pool with the CIDR containing '10.0.0.9', doesn't select this service",
    )


def test_requested_address_already_held_is_already_allocated() -> None:
    services = [
        service("first", created="2023-07-26T14:01:00Z", load_balancer_ip="10.0.0.9"),
        service("second", created="2023-07-26T14:02:00Z", load_balancer_ip="10.0.0.9"),
    ]
    result = reconcile([pool("p", "10.0.0.0/24")], services, now=NOW)

    assert ips(result, "first") == ("10.0.0.9",)
    assert ips(result, "second") == ()
    cond = condition(result, "second")
    assert (cond["reason"], cond["message"]) == (
        "already_allocated",
        "IP '10.0.0.9' has already been allocated to another service",
    )


# --- selectors, disabled pools, dormancy --------------------------------------------------------------


def test_pool_selectors_choose_the_pool() -> None:
    pools = [
        pool(
            "web-pool",
            "10.1.0.0/24",
            selector={"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
        ),
        pool("by-name", "10.2.0.0/24", selector={"matchLabels": {"io.kubernetes.service.name": "named"}}),
        pool("catch-all", "10.3.0.0/24", created="2023-07-26T14:30:00Z"),
    ]
    services = [
        service("front", labels={"tier": "web"}),
        service("named"),
        service("other", labels={"tier": "db"}),
    ]
    result = reconcile(pools, services, now=NOW)

    assert ips(result, "front") == ("10.1.0.1",)
    assert ips(result, "named") == ("10.2.0.1",)
    assert ips(result, "other") == ("10.3.0.1",)


def test_no_matching_pool_is_no_pool() -> None:
    pools = [pool("p", "10.0.0.0/24", selector={"matchLabels": {"team": "a"}})]
    result = reconcile(pools, [service("web")], now=NOW)

    assert condition(result, "web")["reason"] == "no_pool"
    assert result.services[("default", "web")].satisfied is False


def test_a_disabled_pool_allocates_nothing_new_but_keeps_what_it_gave() -> None:
    pools = [pool("p", "10.0.0.0/24")]
    services = [service("old")]
    written(reconcile(pools, services, now=NOW), pools, services)

    pools[0]["spec"]["disabled"] = True
    services.append(service("new", created="2023-07-26T14:20:00Z"))
    result = reconcile(pools, services, now=LATER)

    assert ips(result, "old") == ("10.0.0.1",)
    assert not result.services[("default", "old")].changed
    assert ips(result, "new") == ()
    assert condition(result, "new")["reason"] == "no_pool"
    assert result.pools["p"].disabled
    assert result.pools["p"].used == 1


def test_dormant_until_the_first_pool_and_again_after_the_last() -> None:
    services = [service("web", ingress=["203.0.113.5"])]
    assert reconcile([], services, now=NOW) == LBIPAMResult(active=False, pools={}, services={})

    engine = LBIPAM()
    pools = [pool("p", "10.0.0.0/24")]
    written(engine.reconcile(pools, services, now=NOW), pools, services)
    assert engine.active
    assert services[0]["status"]["loadBalancer"]["ingress"] == [{"ip": "10.0.0.1"}]

    last_pass = engine.reconcile([], services, now=LATER)
    assert not engine.active
    assert not last_pass.active
    assert last_pass.service_patches()[("default", "web")]["loadBalancer"] == {}
    assert condition(last_pass, "web")["reason"] == "no_pool"
    written(last_pass, [], services)

    services.append(service("late"))
    assert engine.reconcile([], services, now=LATER).services == {}


# --- condition bookkeeping per version ----------------------------------------------------------------


def test_1_13_appends_service_conditions_1_15_updates_in_place() -> None:
    for version, expected in (("1.13", ["False", "True"]), ("1.15", ["True"])):
        pools = [pool("p", "10.0.0.0/24", selector={"matchLabels": {"ok": "yes"}})]
        services = [service("web")]
        written(reconcile(pools, services, version=version, now=NOW), pools, services)
        services[0]["metadata"]["labels"] = {"ok": "yes"}
        result = reconcile(pools, services, version=version, now=LATER)

        kind = Naming.for_version(version).service_condition
        statuses = [
            c["status"] for c in result.services[("default", "web")].status["conditions"] if c["type"] == kind
        ]
        assert statuses == expected, version
        latest = latest_condition(result.services[("default", "web")].status["conditions"], kind)
        assert latest is not None
        assert latest["lastTransitionTime"] == "2023-07-26T16:00:00Z"


def test_random_start_allocation_stays_inside_the_usable_range() -> None:
    pools = [pool("p", "10.0.0.0/29")]
    services = [service(f"s{i}", created=f"2023-07-26T14:1{i}:00Z") for i in range(6)]
    result = reconcile(pools, services, rng=random.Random(7), now=NOW)

    got = sorted(ip_address(ip) for i in range(6) for ip in ips(result, f"s{i}"))
    assert got == [ip_address(f"10.0.0.{n}") for n in range(1, 7)]
    again = reconcile(pools, services, rng=random.Random(7), now=NOW)
    assert [ips(again, f"s{i}") for i in range(6)] == [ips(result, f"s{i}") for i in range(6)]


# --- the selector matcher -----------------------------------------------------------------------------


def test_selector_semantics() -> None:
    labels = {"app": "web", "tier": "front"}
    assert LabelSelector.parse({}).matches(labels)
    assert LabelSelector.parse({"matchLabels": {"app": "web"}}).matches(labels)
    assert not LabelSelector.parse({"matchLabels": {"app": "web", "tier": "back"}}).matches(labels)
    assert LabelSelector.parse(
        {"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["y"]}]}
    ).matches(labels)
    assert not LabelSelector.parse(
        {"matchExpressions": [{"key": "x", "operator": "In", "values": ["y"]}]}
    ).matches(labels)
    assert LabelSelector.parse({"matchExpressions": [{"key": "app", "operator": "Exists"}]}).matches(labels)
    assert LabelSelector.parse({"matchExpressions": [{"key": "gone", "operator": "DoesNotExist"}]}).matches(
        labels
    )
    assert not LabelSelector.parse(
        {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}
    ).matches(labels)


@pytest.mark.parametrize(
    "bad",
    [
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]},
        {"matchLabels": {"bad key": "x"}},
    ],
)
def test_selectors_kubernetes_would_refuse(bad: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        LabelSelector.parse(bad)


def test_nil_selector_meaning_depends_on_the_field() -> None:
    walkthrough_all = {
        "matchExpressions": [{"key": "somekey", "operator": "NotIn", "values": ["never-used-value"]}]
    }
    assert pool_selects_service(None, {"app": "web"})
    assert not bgp_selects_service(None, {"app": "web"})
    assert bgp_selects_service(walkthrough_all, {"app": "web"})
    assert bgp_selects_node(None, {"kubernetes.io/hostname": "k3s-worker-node-01"})
    assert not bgp_selects_node({"matchLabels": {"bgp-policy": "a"}}, {"kubernetes.io/hostname": "x"})


def test_an_invalid_pool_selector_leaves_the_service_alone_and_reports_it() -> None:
    pools = [
        pool(
            "p", "10.0.0.0/24", selector={"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}
        )
    ]
    result = reconcile(pools, [service("web")], now=NOW)

    outcome = result.services[("default", "web")]
    assert not outcome.changed
    assert outcome.error
    assert any("Making selector from pool 'p'" in error for error in result.errors)


def test_1_16_prefers_the_new_annotation_and_keeps_the_old_as_alias() -> None:
    svc = service("web", ips_annotation="10.0.0.20")
    svc["metadata"]["annotations"]["lbipam.cilium.io/ips"] = "10.0.0.30"

    assert ips(
        reconcile([pool("p", "10.0.0.0/24", field="blocks")], [svc], version="1.16", now=NOW), "web"
    ) == ("10.0.0.30",)
    assert ips(reconcile([pool("p", "10.0.0.0/24")], [svc], version="1.13", now=NOW), "web") == ("10.0.0.20",)


def test_dual_stack_services_get_one_address_per_family_when_ipv6_is_on() -> None:
    svc = service("web")
    svc["spec"]["ipFamilyPolicy"] = "RequireDualStack"
    pools = [pool("v4", "10.0.0.0/24"), pool("v6", "fd00:10::/120")]

    both = reconcile(pools, [svc], ipv6_enabled=True, now=NOW)
    assert ips(both, "web") == ("10.0.0.1", "fd00:10::1")
    assert condition(both, "web")["status"] == "True"
    assert ips(reconcile(pools, [svc], now=NOW), "web") == ("10.0.0.1",)


# --- blocks, 1.15 and 1.16 (FACTS.md, "Cilium: LB IPAM" and "Cilium 1.13 to 1.20") --------------------


def _every_address(version: str, pools: list[dict[str, Any]]) -> list[str]:
    """Ask for addresses until the pools run dry; the ones handed out, sorted."""
    services = [service(f"s{i}", created=f"2023-07-26T14:00:{i:02d}Z") for i in range(8)]
    result = reconcile(pools, services, version=version, now=NOW)
    return sorted((ip for s in services for ip in ips(result, s["metadata"]["name"])), key=ip_address)


def test_1_16_hands_out_a_blocks_first_and_last_addresses_by_default() -> None:
    blocks = [pool("p", "10.0.0.0/30", field="blocks")]
    assert _every_address("1.16", blocks) == ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert _every_address("1.15", blocks) == ["10.0.0.1", "10.0.0.2"]
    kept_out = pool("p", "10.0.0.0/30", field="blocks")
    kept_out["spec"]["allowFirstLastIPs"] = "No"
    assert _every_address("1.16", [kept_out]) == ["10.0.0.1", "10.0.0.2"]


def test_each_version_reads_the_pool_fields_it_has() -> None:
    cidrs = [pool("p", "10.0.0.0/30")]
    assert _every_address("1.13", cidrs) == ["10.0.0.1", "10.0.0.2"]
    assert _every_address("1.15", cidrs) == ["10.0.0.1", "10.0.0.2"]  # deprecated, still read
    assert _every_address("1.16", cidrs) == []  # removed (PR #32774): the pool holds nothing
    assert _every_address("1.13", [pool("p", "10.0.0.0/30", field="blocks")]) == []


def test_a_start_stop_block_is_taken_whole_and_named_as_a_range_in_conflicts() -> None:
    ranged = pool("r", field="blocks")
    ranged["spec"]["blocks"] = [{"start": "10.0.0.10", "stop": "10.0.0.12"}]
    assert _every_address("1.15", [ranged]) == ["10.0.0.10", "10.0.0.11", "10.0.0.12"]
    newer = pool("n", "10.0.0.0/28", field="blocks", created="2023-07-26T14:05:00Z")
    result = reconcile([ranged, newer], [], version="1.15", now=NOW)
    conflict = conditions_of(result, "n")["cilium.io/PoolConflict"]
    assert conflict["status"] == "True"
    assert conflict["message"] == (
        "Pool conflicts since range '10.0.0.0 - 10.0.0.15' overlaps range '10.0.0.10 - 10.0.0.12' "
        "from IP Pool 'r'"
    )
