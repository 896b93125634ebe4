"""What the agent's kube-proxy replacement programs for LoadBalancer services: frontends and backends.

With `kubeProxyReplacement=strict` (FACTS.md, "k3s and k3d") each agent translates every service
frontend itself. The lab emulates the part a step can observe from outside: each LoadBalancer ingress
IP and TCP port, to the ready endpoints of the service's EndpointSlices (label
`kubernetes.io/service-name`). ClusterIP, NodePort and UDP frontends are not emulated.

An EndpointSlice port carries the name of the service port it serves, so a service port finds its
backend port by name; a slice without that name falls back to the service port's numeric
`targetPort` (or its `port`). An endpoint whose `conditions.ready` is absent counts as ready, as the
EndpointSlice API tells consumers to read "unknown".
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from bgpconform.errors import LabError
from bgpconform.lab.cilium.bgp_control import ingress_ips, is_load_balancer
from bgpconform.lab.datapath import ServiceEntry, make_entry

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@functools.lru_cache(maxsize=65536)
def _address(text: str) -> IPv4Address:
    """Parsed once: 500 services on one backend had every agent parse its address 500 times a pass."""
    return IPv4Address(text)


@dataclass(frozen=True)
class Frontend:
    """One LB IP and port of a service, with the backends for it."""

    key: str
    ip: IPv4Address
    port: int
    backends: tuple[tuple[IPv4Address, int], ...]


def frontend_key(namespace: str, name: str, ip: IPv4Address, port: int, *, only: bool) -> str:
    """The datapath key: `namespace/name` for a service's only frontend, else with `/ip/port` appended."""
    return f"{namespace}/{name}" if only else f"{namespace}/{name}/{ip}/{port}"


SliceIndex = Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]


def index_slices(slices: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """IPv4 slices by (namespace, service name): one pass, so each service finds its own at once
    (a scan per service made 500 services cost 250,000 looks per agent and pass)."""
    index: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for endpoint_slice in slices:
        meta = endpoint_slice.get("metadata", {})
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner is None or endpoint_slice.get("addressType", "IPv4") != "IPv4":
            continue
        index.setdefault((str(meta.get("namespace", "")), str(owner)), []).append(endpoint_slice)
    return index


def _backend_port(service_port: Mapping[str, Any], slice_ports: Sequence[Mapping[str, Any]]) -> int | None:
    wanted = service_port.get("name") or ""
    for port in slice_ports:
        if (port.get("name") or "") == wanted and (port.get("protocol") or "TCP") == "TCP":
            value = port.get("port")
            return int(value) if value is not None else None
    target = service_port.get("targetPort", service_port.get("port"))
    return int(target) if isinstance(target, int) else None


def backends_for(
    service_port: Mapping[str, Any], slices: Sequence[Mapping[str, Any]]
) -> tuple[tuple[IPv4Address, int], ...]:
    """The ready endpoints of one service port across the service's slices, sorted and unique."""
    found: set[tuple[IPv4Address, int]] = set()
    for endpoint_slice in slices:
        port = _backend_port(service_port, endpoint_slice.get("ports") or [])
        if port is None:
            continue
        for endpoint in endpoint_slice.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            addresses = endpoint.get("addresses") or []
            if addresses:
                found.add((_address(addresses[0]), port))
    return tuple(sorted(found))


def service_frontends(service: Mapping[str, Any], slices: SliceIndex, problems: list[str]) -> list[Frontend]:
    """Every (LB IP, TCP port) of a LoadBalancer service with its ready backends."""
    if not is_load_balancer(service):
        return []
    meta = service.get("metadata", {})
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    own = slices.get((namespace, name), ())
    pairs = []
    for service_port in service.get("spec", {}).get("ports") or []:
        if (service_port.get("protocol") or "TCP") != "TCP":
            problems.append(f"{namespace}/{name}: {service_port.get('protocol')} ports are not emulated")
            continue
        for ip in ingress_ips(service):
            pairs.append((ip, service_port))
    only = len(pairs) == 1
    return [
        Frontend(
            frontend_key(namespace, name, ip, int(sp["port"]), only=only),
            ip,
            int(sp["port"]),
            backends_for(sp, own),
        )
        for ip, sp in pairs
    ]


# A service's frontends and their datapath entries (or why one could not be made), by service: kept
# with the service object and its slices' objects they were worked out from. An informer hands out
# the same objects until they change, so an unchanged service is not worked out again on the next pass.
Worked = tuple[tuple[tuple[Frontend, ServiceEntry | str], ...], tuple[str, ...]]
Memo = dict[tuple[str, str], tuple[Mapping[str, Any], tuple[Mapping[str, Any], ...], Worked]]


def _worked_out(service: Mapping[str, Any], index: SliceIndex) -> Worked:
    problems: list[str] = []
    worked: list[tuple[Frontend, ServiceEntry | str]] = []
    for frontend in service_frontends(service, index, problems):
        try:
            worked.append(
                (frontend, make_entry(frontend.key, frontend.ip, frontend.port, "TCP", frontend.backends))
            )
        except LabError as exc:
            worked.append((frontend, str(exc)))
    return tuple(worked), tuple(problems)


def desired_entries(
    services: Sequence[Mapping[str, Any]], slices: Sequence[Mapping[str, Any]], memo: Memo | None = None
) -> tuple[list[ServiceEntry], list[str]]:
    """The datapath entries for all services, and what could not be programmed (reported, skipped).

    Two services claiming one LB IP and port cannot both be reached; the one seen first (by
    namespace/name) keeps it, as only one could hold it in Cilium's service map either. With `memo`
    (kept by the caller from pass to pass), a service whose object and slices are unchanged reuses
    what the last pass worked out: 50 agents each recomputing 500 services on every event of a
    burst was most of a scale run's time, where Cilium works per changed service.
    """
    entries: list[ServiceEntry] = []
    problems: list[str] = []
    taken: dict[tuple[IPv4Address, int], str] = {}
    ordered = sorted(
        services, key=lambda s: (s.get("metadata", {}).get("namespace", ""), s["metadata"]["name"])
    )
    index = index_slices(slices)
    seen: set[tuple[str, str]] = set()
    for service in ordered:
        meta = service.get("metadata", {})
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        own = tuple(index.get(key, ()))
        known = memo.get(key) if memo is not None else None
        if (
            known is not None
            and known[0] is service
            and len(known[1]) == len(own)
            and all(a is b for a, b in zip(known[1], own, strict=True))
        ):
            worked = known[2]
        else:
            worked = _worked_out(service, index)
            if memo is not None:
                memo[key] = (service, own, worked)
        seen.add(key)
        problems.extend(worked[1])
        for frontend, entry in worked[0]:
            holder = taken.get((frontend.ip, frontend.port))
            if holder is not None:
                problems.append(f"{frontend.key}: {frontend.ip}:{frontend.port} is already used by {holder}")
                continue
            if isinstance(entry, str):
                problems.append(entry)
                continue
            entries.append(entry)
            taken[(frontend.ip, frontend.port)] = frontend.key
    if memo is not None:
        for stale in set(memo) - seen:
            del memo[stale]
    return entries, problems


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _target_port(service_port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    for container in pod.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def slices_from_pods(
    services: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The EndpointSlices the EndpointSlice controller would write, for an API that serves none.

    One slice per service with a selector: its pods with an IP, ready when their Ready condition is
    True, one slice port per service port (named as the service port, numbered by its targetPort).
    """
    slices: list[dict[str, Any]] = []
    for service in services:
        meta = service.get("metadata", {})
        selector = service.get("spec", {}).get("selector") or {}
        if not selector:
            continue
        selected = [
            pod
            for pod in pods
            if pod.get("metadata", {}).get("namespace") == meta.get("namespace")
            and all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and pod.get("status", {}).get("podIP")
        ]
        for service_port in service.get("spec", {}).get("ports") or []:
            by_port: dict[int, list[dict[str, Any]]] = {}
            for pod in selected:
                port = _target_port(service_port, pod)
                if port is None:
                    continue
                by_port.setdefault(port, []).append(
                    {
                        "addresses": [pod["status"]["podIP"]],
                        "conditions": {"ready": _pod_ready(pod)},
                        "nodeName": pod.get("spec", {}).get("nodeName"),
                    }
                )
            for port, endpoints in by_port.items():
                slices.append(
                    {
                        "metadata": {
                            "name": f"{meta.get('name')}-{service_port.get('name') or ''}-{port}",
                            "namespace": meta.get("namespace"),
                            "labels": {SERVICE_NAME_LABEL: meta.get("name")},
                        },
                        "addressType": "IPv4",
                        "ports": [{"name": service_port.get("name") or "", "port": port, "protocol": "TCP"}],
                        "endpoints": endpoints,
                    }
                )
    return slices
