"""The scale check: many LoadBalancer services at once, each announced by every peering node.

A rack that carries one service well may not carry five hundred: LB IPAM hands out addresses under a
stream of creations, every agent announces every /32, the router holds one path per node and service
(48 x 500 = 24,000 on the scale topology) and must forward to each. The check creates the run's own
services, copies of the workload's service under other names (`scale-0001`, ...), `batch` at a time,
waits for each batch's addresses before the next (a stalled LB IPAM is named at the batch it stalled),
then for every /32 at the router from every peering node and an answer from every LB IP outside, and
removes them the same way, until the router has withdrawn every one. Nothing of the user's is created
or changed, so verify mode runs it on a real cluster too.

Figures for the report and the scale benchmark: the time from the last service created to its route at
the router, from there to every route, the router's path count, and each wait's time.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bgpconform import checks
from bgpconform.errors import ConfigError, product_failure
from bgpconform.finding import Finding
from bgpconform.kubeapi.port import Resources
from bgpconform.routers.port import Route
from bgpconform.topology import Scale, Topology
from bgpconform.waiting import wait_for, wait_until
from bgpconform.walkthrough import manifests
from bgpconform.walkthrough.machine import StageMachine

SCALE_LABEL = "bgpconform.io/scale"  # on each of the run's scale services, besides the run's labels
NAME_PREFIX = "scale-"
STAGE = "scale"
CLIENT_THREADS = 8  # requests in flight from the outside client at once
SHOWN = 5  # of many wrong things, how many a failure names


@dataclass(frozen=True)
class PlannedService:
    name: str
    pool: str | None  # the topology pool whose labels it carries; None: Cilium picks
    labels: Mapping[str, str]


def planned_services(topology: Topology) -> list[PlannedService]:
    """The run's services, spread round robin over `scale.pools`."""
    scale = _scale(topology)
    pools = {pool.name: pool for pool in topology.lb_pools}
    width = max(4, len(str(scale.services)))
    planned = []
    for index in range(scale.services):
        name = scale.pools[index % len(scale.pools)] if scale.pools else None
        selector = pools[name].service_selector if name is not None else None
        labels = dict(selector.match_labels) if selector is not None else {}
        planned.append(PlannedService(f"{NAME_PREFIX}{index + 1:0{width}d}", name, labels))
    return planned


def _scale(topology: Topology) -> Scale:
    if topology.scale is None:
        raise ConfigError(
            f"{topology.source}: the scale check needs a scale section, e.g. scale: {{services: 500}} "
            "(topologies/lab-scale.yaml has one)"
        )
    return topology.scale


def _next_hops(table: Mapping[IPv4Network, list[Route]]) -> dict[IPv4Network, set[IPv4Address]]:
    return {prefix: {hop for route in routes for hop in route.nexthops} for prefix, routes in table.items()}


def _shown(items: Sequence[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _without_address(planned: Sequence[PlannedService], observed: Mapping[str, IPv4Address | None]) -> str:
    """The services holding no external IP, as a failure shows them ("" when none)."""
    missing = [s.name for s in planned if observed.get(s.name) is None]
    return f"{len(missing)} without an external IP: {_shown(missing)}" if missing else ""


@dataclass(frozen=True)
class AddressesFromPools:
    """Every planned service holds one external IP, inside its pool's CIDRs (any topology pool where
    the service names none), and no two hold the same."""

    planned: Sequence[PlannedService]
    cidrs: Mapping[str | None, Sequence[IPv4Network]]

    @property
    def expected(self) -> str:
        return f"each of {len(self.planned)} services with its own external IP from its pool"

    def __call__(self, observed: Mapping[str, IPv4Address | None]) -> Finding:
        missing = _without_address(self.planned, observed)
        outside = [
            f"{s.name}: {observed[s.name]} not in {s.pool or 'any pool'}"
            for s in self.planned
            if (address := observed.get(s.name)) is not None
            and not any(address in net for net in self.cidrs[s.pool])
        ]
        holders: dict[IPv4Address, list[str]] = {}
        for name, address in observed.items():
            if address is not None:
                holders.setdefault(address, []).append(name)
        shared = [
            f"{address} held by {', '.join(names)}" for address, names in holders.items() if len(names) > 1
        ]
        problems = [missing] if missing else []
        if outside:
            problems.append(f"{len(outside)} outside their pool: {_shown(outside)}")
        if shared:
            problems.append(f"{len(shared)} addresses given twice: {_shown(shared)}")
        held = len(self.planned)
        return Finding(not problems, self.expected, "; ".join(problems) or f"{held} services hold one each")


@dataclass(frozen=True)
class EachHoldsAnAddress:
    """Every service of a batch holds an external IP, wherever from: what a batch waits for before
    the next; which pool it came from is the Then's to judge."""

    planned: Sequence[PlannedService]

    @property
    def expected(self) -> str:
        return f"each of {len(self.planned)} services with an external IP"

    def __call__(self, observed: Mapping[str, IPv4Address | None]) -> Finding:
        missing = _without_address(self.planned, observed)
        return Finding(not missing, self.expected, missing or f"{len(self.planned)} hold one")


@dataclass(frozen=True)
class NoneAtRouter:
    """None of the removed services' /32s is left in the router's BGP table."""

    prefixes: Collection[IPv4Network]

    @property
    def expected(self) -> str:
        return f"none of the {len(self.prefixes)} removed LB IPs left at the router"

    def __call__(self, observed: Mapping[IPv4Network, list[Route]]) -> Finding:
        left = sorted(str(prefix) for prefix in self.prefixes if observed.get(prefix))
        if left:
            return Finding(False, self.expected, f"{len(left)} still at the router: {_shown(left)}")
        return Finding(True, self.expected, "all withdrawn")


@dataclass(frozen=True)
class ScaleFigures:
    created: int
    last_created_to_route: float
    every_route: float
    paths: int


class ScaleRun:
    """One run of the scale check on any target, through the stage machine's ports."""

    def __init__(self, machine: StageMachine) -> None:
        self.machine = machine
        self.topology = machine.topology
        self.scale = _scale(self.topology)
        self.planned = planned_services(self.topology)
        self.namespace = self.topology.workload.namespace
        self.selector = f"{machine.run_selector},{SCALE_LABEL}=true"
        self.addresses: dict[str, IPv4Address] = {}
        self._last_created_at = 0.0

    @property
    def kube(self) -> Any:
        return self.machine.target.kube

    def _record(self, name: str, seconds: float) -> None:
        self.machine.evidence.timing(STAGE, name, seconds)

    # -- creating ------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """The pools the services are spread over, as the run's own where the cluster lacks them; and
        no planned name may belong to somebody else's service."""
        for index, pool in enumerate(self.topology.lb_pools):
            if pool.name in self.scale.pools:
                self.machine.create_pool(index)
        own = {
            s["metadata"]["name"]
            for s in self.kube.items(Resources.SERVICES, self.namespace, label_selector=self.selector)
        }
        taken = [
            s["metadata"]["name"]
            for s in self.kube.items(Resources.SERVICES, self.namespace)
            if s["metadata"]["name"].startswith(NAME_PREFIX) and s["metadata"]["name"] not in own
        ]
        if taken:
            raise ConfigError(
                f"namespace {self.namespace} already has services named like the scale check's "
                f"({_shown(sorted(taken))}): they are not this run's, so it will not touch them; remove "
                "them or set workload.namespace to another namespace"
            )

    def manifest(self, planned: PlannedService) -> dict[str, Any]:
        service = manifests.lb_service(self.topology, planned.name)
        service["metadata"]["labels"] = {
            **service["metadata"]["labels"],
            **planned.labels,
            SCALE_LABEL: "true",
        }
        return service

    def create_all(self) -> None:
        """`batch` services at a time, each batch's addresses awaited before the next."""
        __tracebackhide__ = product_failure
        self.machine.added_extra_objects()
        began = time.monotonic()
        for start in range(0, len(self.planned), self.scale.batch):
            batch = self.planned[start : start + self.scale.batch]
            for planned in batch:
                self.machine.create(Resources.SERVICES, self.manifest(planned), self.namespace)
            self._last_created_at = time.monotonic()
            self._wait_addresses(batch, f"services {batch[0].name}-{batch[-1].name} -> external IPs")
        self._record(
            f"{len(self.planned)} services created, {self.scale.batch} at a time", time.monotonic() - began
        )

    def observed_addresses(self) -> dict[str, IPv4Address | None]:
        found: dict[str, IPv4Address | None] = {}
        for service in self.kube.items(Resources.SERVICES, self.namespace, label_selector=self.selector):
            ingress = (service.get("status", {}).get("loadBalancer", {}) or {}).get("ingress") or []
            ip = ingress[0].get("ip") if ingress else None
            found[service["metadata"]["name"]] = IPv4Address(ip) if ip else None
        return found

    def _pool_cidrs(self) -> dict[str | None, Sequence[IPv4Network]]:
        cidrs: dict[str | None, Sequence[IPv4Network]] = {
            pool.name: list(pool.cidrs) for pool in self.topology.lb_pools
        }
        cidrs[None] = [cidr for pool in self.topology.lb_pools for cidr in pool.cidrs]
        return cidrs

    def _wait_addresses(self, planned: Sequence[PlannedService], name: str) -> dict[str, IPv4Address]:
        __tracebackhide__ = product_failure
        check = EachHoldsAnAddress(planned)
        wanted = {s.name for s in planned}
        waited = wait_until(
            lambda: {k: v for k, v in self.observed_addresses().items() if k in wanted},
            check,
            timeout=self.scale.converge,
        )
        self._record(name, waited.elapsed)
        self.addresses.update({k: v for k, v in waited.value.items() if v is not None})
        return {k: v for k, v in waited.value.items() if v is not None}

    def every_address_from_its_pool(self) -> Finding:
        """Judged once more over all services: a later batch may have moved an earlier one's address."""
        return AddressesFromPools(self.planned, self._pool_cidrs())(self.observed_addresses())

    # -- the router ----------------------------------------------------------------------------------
    @property
    def pool_networks(self) -> list[IPv4Network]:
        return [cidr for pool in self.topology.lb_pools for cidr in pool.cidrs]

    def _table(self) -> dict[IPv4Network, list[Route]]:
        return self.machine.target.router.bgp_table(self.pool_networks)

    def wait_every_path(self) -> ScaleFigures:
        """The last service's route first (its own figure), then every service's from every node."""
        __tracebackhide__ = product_failure
        nodes = frozenset(node.address for node in self.topology.bgp_nodes)
        last = self.planned[-1].name
        last_prefix = IPv4Network(f"{self.addresses[last]}/32")
        router = self.machine.target.router
        wait_until(
            lambda: _next_hops({last_prefix: router.bgp_routes(last_prefix)}),
            checks.RoutesViaNodes({last_prefix: nodes}),
            timeout=self.scale.converge,
        )
        to_last = time.monotonic() - self._last_created_at
        self._record(f"last service created -> its /32 at the router from all {len(nodes)} nodes", to_last)
        prefixes = [IPv4Network(f"{address}/32") for address in self.addresses.values()]
        table: dict[IPv4Network, list[Route]] = {}

        def read_table() -> dict[IPv4Network, set[IPv4Address]]:
            table.clear()
            table.update(self._table())
            return _next_hops(table)

        wait_until(
            read_table, checks.RoutesViaNodes(dict.fromkeys(prefixes, nodes)), timeout=self.scale.converge
        )
        every = time.monotonic() - self._last_created_at
        self._record(f"last service created -> all {len(prefixes)} /32s at the router", every)
        wanted = set(prefixes)
        paths = sum(len(routes) for prefix, routes in table.items() if prefix in wanted)
        self.machine.evidence.count("router paths to the scale services' LB IPs", paths)
        return ScaleFigures(len(prefixes), to_last, every, paths)

    # -- the outside client --------------------------------------------------------------------------
    def unanswered(self) -> list[str]:
        """LB IPs whose page the outside client cannot get (one request each, several at once)."""
        client = self.machine.target.client
        port = self.topology.workload.port
        timeout = min(3.0, self.topology.waits.http)

        def ask(item: tuple[str, IPv4Address]) -> str | None:
            name, address = item
            answer = client.http_get(f"http://{address}:{port}/", timeout=timeout)
            return None if answer.ok else f"{name} {address}: {answer.summary()}"

        with ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="scale-client") as pool:
            failed = [said for said in pool.map(ask, sorted(self.addresses.items())) if said is not None]
        return failed

    def wait_every_answer(self) -> None:
        __tracebackhide__ = product_failure
        began = time.monotonic()
        wait_for(
            self.unanswered,
            lambda failed: not failed,
            expected=f"HTTP 200 from each of {len(self.addresses)} LB IPs from outside",
            timeout=self.scale.converge,
            describe=lambda failed: f"{len(failed)} without an answer: {_shown(failed)}",
        )
        self._record(
            f"every one of {len(self.addresses)} LB IPs answering from outside", time.monotonic() - began
        )

    # -- removing ------------------------------------------------------------------------------------
    def remove_all(self) -> None:
        """`batch` at a time, each batch gone from the API before the next."""
        __tracebackhide__ = product_failure
        began = time.monotonic()
        for start in range(0, len(self.planned), self.scale.batch):
            batch = {planned.name for planned in self.planned[start : start + self.scale.batch]}
            for name in sorted(batch):
                self.kube.delete(Resources.SERVICES, name, self.namespace)
            wait_for(
                lambda batch=batch: batch & set(self.observed_addresses()),  # type: ignore[misc]
                lambda left: not left,
                expected=f"services {min(batch)}-{max(batch)} removed",
                timeout=self.scale.converge,
                describe=lambda left: _shown(sorted(left)),
            )
        self._record(
            f"{len(self.planned)} services removed, {self.scale.batch} at a time", time.monotonic() - began
        )

    def wait_every_withdrawal(self) -> None:
        __tracebackhide__ = product_failure
        prefixes = [IPv4Network(f"{address}/32") for address in self.addresses.values()]
        waited = wait_until(self._table, NoneAtRouter(prefixes), timeout=self.scale.converge)
        self._record(f"last batch removed -> all {len(prefixes)} /32s withdrawn", waited.elapsed)


def remove_leftovers(machine: StageMachine) -> int:
    """Remove this run's scale services whatever happened before (a failed step leaves some); how many."""
    kube = machine.target.kube
    namespace = machine.topology.workload.namespace
    selector = f"{machine.run_selector},{SCALE_LABEL}=true"
    left = kube.items(Resources.SERVICES, namespace, label_selector=selector)
    for service in left:
        kube.delete(Resources.SERVICES, service["metadata"]["name"], namespace)
    return len(left)
