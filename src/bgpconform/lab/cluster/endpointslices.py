"""kube-controller-manager's EndpointSlice controller: a Service's ready and not-ready backends.

For each Service with a selector (and not ExternalName), its pods with an IPv4 address become
endpoints in slices named from generateName `<service>-`, labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the Service. Each
endpoint carries its address, `conditions` (ready = pod Ready and not terminating, serving = pod Ready,
terminating = being deleted; publishNotReadyAddresses makes both true), nodeName and a targetRef to
the pod. Service ports resolve against the pod's container ports, by name for a named targetPort, so
pods that resolve differently land in separate slices, as `reconciler.go` groups them. A Service with
no backends gets one empty placeholder slice. The emulated Cilium agent programs its datapath from
these slices, as the real agent does.

Simplified against the real one: no topology (zone, hints) and no hostname, slices are filled in order
rather than packed to minimise churn (at most 100 endpoints each), no
`endpoints.kubernetes.io/last-change-trigger-time`. The lab's API server collects dependents only
when their owner is deleted, so slices created while racing a Service's deletion are collected here.
`EndpointsController` below writes the legacy v1 Endpoints the same way.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, Resources
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.replicaset import (
    Expectations,
    collect_orphans,
    is_stale,
    key_of,
    owner_reference,
    pod_is_ready,
)

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_ENDPOINTS_PER_SLICE = 100


def pod_ipv4(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    candidates = [entry.get("ip") for entry in status.get("podIPs") or []] or [status.get("podIP")]
    for ip in candidates:
        if isinstance(ip, str) and ip:
            try:
                if ipaddress.ip_address(ip).version == 4:
                    return ip
            except ValueError:
                continue
    return None


def resolve_port(service_port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    """`podutil.FindPort`: a number as is, a name looked up in the pod's containers (same protocol)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


def endpoint_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[Obj]:
    ports: list[Obj] = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = resolve_port(service_port, pod)
        if number is None:
            continue  # as the real controller: this pod just lacks that port
        port: Obj = {
            "name": service_port.get("name", ""),
            "port": number,
            "protocol": service_port.get("protocol", "TCP"),
        }
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def endpoint(service: Mapping[str, Any], pod: Mapping[str, Any], address: str) -> Obj:
    meta = pod["metadata"]
    terminating = bool(meta.get("deletionTimestamp"))
    serving = pod_is_ready(pod)
    ready = serving and not terminating
    if (service.get("spec") or {}).get("publishNotReadyAddresses"):
        ready = serving = True
    entry: Obj = {
        "addresses": [address],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        entry["nodeName"] = node
    return entry


def selects_pod(selector: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def desired_slices(service: Mapping[str, Any], pods: list[Obj]) -> list[Obj]:
    """The slices' content (ports, endpoints): one group per distinct port set, chunked."""
    selector = (service.get("spec") or {}).get("selector") or {}
    groups: dict[str, tuple[list[Obj], list[Obj]]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        phase = (pod.get("status") or {}).get("phase")
        address = pod_ipv4(pod)
        if address is None or phase in ("Succeeded", "Failed") or not selects_pod(selector, pod):
            continue
        ports = endpoint_ports(service, pod)
        group = groups.setdefault(json.dumps(ports, sort_keys=True), (ports, []))
        group[1].append(endpoint(service, pod, address))
    if not groups:
        return [{"endpoints": []}]
    slices: list[Obj] = []
    for _, (ports, endpoints) in sorted(groups.items()):
        for start in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE):
            slices.append({"ports": ports, "endpoints": endpoints[start : start + MAX_ENDPOINTS_PER_SLICE]})
    return slices


def slice_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """`setEndpointSliceLabels`: the Service's labels plus the controller's own."""
    meta = service["metadata"]
    labels = {
        k: v
        for k, v in (meta.get("labels") or {}).items()
        if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
    }
    labels[SERVICE_NAME_LABEL] = meta["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def content(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """What decides whether a slice must be rewritten."""
    return (
        json.dumps(obj.get("ports") or [], sort_keys=True),
        json.dumps(obj.get("endpoints") or [], sort_keys=True),
        json.dumps(obj.get("metadata", {}).get("labels") or {}, sort_keys=True),
    )


class EndpointSliceController(Controller):
    """Keeps each selector Service's EndpointSlices equal to its pods, as kube-controller-manager's."""

    name = "endpointslice-controller"

    def __init__(self, kube: Kube, *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.services = self.inform(Resources.SERVICES)
        self.pods = self.inform(Resources.PODS)
        self.slices = self.inform(
            Resources.ENDPOINT_SLICES, label_selector=f"{MANAGED_BY_LABEL}={CONTROLLER_NAME}"
        )
        self.expectations = Expectations()

    def reconcile(self) -> None:
        pods_by_ns: dict[str, list[Obj]] = {}
        for pod in self.pods.objects():
            pods_by_ns.setdefault(pod["metadata"]["namespace"], []).append(pod)
        slices_by_service: dict[str, list[Obj]] = {}
        slices = self.slices.objects()
        services = self.services.objects()
        uids = {service["metadata"]["uid"] for service in services}
        collect_orphans(self.kube, Resources.SERVICES, Resources.ENDPOINT_SLICES, slices, uids)
        for item in slices:
            service = (item["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
            if service and not item["metadata"].get("deletionTimestamp"):
                slices_by_service.setdefault(f"{item['metadata']['namespace']}/{service}", []).append(item)
        self.expectations.forget({key_of(service) for service in services})
        for service in services:
            if self.stopping:
                return
            spec = service.get("spec") or {}
            if spec.get("selector") is None or spec.get("type") == "ExternalName":
                continue
            if service["metadata"].get("deletionTimestamp"):
                continue
            key = key_of(service)
            existing = sorted(slices_by_service.get(key, []), key=lambda s: s["metadata"]["name"])
            if not self.expectations.satisfied(key, {s["metadata"]["name"] for s in existing}):
                continue
            try:
                self.sync(service, pods_by_ns.get(service["metadata"]["namespace"], []), existing)
            except ApiException as exc:
                if not is_stale(exc):
                    raise
                self.wake()

    def sync(self, service: Obj, pods: list[Obj], existing: list[Obj]) -> None:
        meta = service["metadata"]
        labels = slice_labels(service)
        wanted = [{**body, "metadata": {"labels": labels}} for body in desired_slices(service, pods)]
        spare = list(existing)
        unplaced: list[Obj] = []
        for body in wanted:  # slices already right stay untouched
            same = next((s for s in spare if content(s) == content(body)), None)
            if same is not None:
                spare.remove(same)
            else:
                unplaced.append(body)
        key = key_of(service)
        for body in unplaced:
            if spare:
                current = spare.pop(0)
                updated = {**current, "addressType": "IPv4", "endpoints": body["endpoints"]}
                updated["metadata"] = {**current["metadata"], "labels": labels}
                updated.pop("ports", None)
                if "ports" in body:
                    updated["ports"] = body["ports"]
                self.kube.replace(Resources.ENDPOINT_SLICES, updated)
                continue
            new: Obj = {
                "metadata": {
                    "generateName": f"{meta['name']}-",
                    "namespace": meta["namespace"],
                    "labels": labels,
                    "ownerReferences": [owner_reference(service, "v1", "Service")],
                },
                "addressType": "IPv4",
                "endpoints": body["endpoints"],
            }
            if "ports" in body:
                new["ports"] = body["ports"]
            created = self.kube.create(Resources.ENDPOINT_SLICES, new, meta["namespace"])
            self.expectations.expect(key, created["metadata"]["name"], present=True)
        for leftover in spare:
            name = leftover["metadata"]["name"]
            self.kube.delete(Resources.ENDPOINT_SLICES, name, meta["namespace"])
            self.expectations.expect(key, name, present=False)


# -- legacy v1 Endpoints -------------------------------------------------------------------------

SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"


def endpoints_subsets(service: Mapping[str, Any], pods: list[Obj]) -> list[Obj]:
    """`Endpoints.subsets` as the Endpoints controller packs them: one subset per port set, ready
    addresses apart from not-ready ones; terminating pods only with publishNotReadyAddresses."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    selector = spec.get("selector") or {}
    subsets: dict[str, Obj] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        meta = pod["metadata"]
        address = pod_ipv4(pod)
        phase = (pod.get("status") or {}).get("phase")
        if address is None or phase in ("Succeeded", "Failed") or not selects_pod(selector, pod):
            continue
        if meta.get("deletionTimestamp") and not publish:
            continue
        ports = [{k: v for k, v in p.items() if k != "name" or v} for p in endpoint_ports(service, pod)]
        subset = subsets.setdefault(json.dumps(ports, sort_keys=True), {"ports": ports})
        entry: Obj = {
            "ip": address,
            "targetRef": {
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        }
        if (pod.get("spec") or {}).get("nodeName"):
            entry["nodeName"] = pod["spec"]["nodeName"]
        field = "addresses" if publish or pod_is_ready(pod) else "notReadyAddresses"
        subset.setdefault(field, []).append(entry)
    packed: list[Obj] = []
    for _, subset in sorted(subsets.items()):
        if not subset["ports"]:
            subset.pop("ports")
        for field in ("addresses", "notReadyAddresses"):
            if field in subset:
                subset[field].sort(key=lambda a: ipaddress.ip_address(a["ip"]))
        packed.append(subset)
    return packed


class EndpointsController(Controller):
    """Writes the legacy v1 Endpoints of each selector Service, as kube-controller-manager's Endpoints
    controller; it labels them `endpointslice.kubernetes.io/skip-mirror` so slices are not mirrored back.
    The Endpoints are named after the Service and have no owner; this controller deletes its own when
    their Service is gone."""

    name = "endpoints-controller"

    def __init__(self, kube: Kube, *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.services = self.inform(Resources.SERVICES)
        self.pods = self.inform(Resources.PODS)
        self.endpoints = self.inform(Resources.ENDPOINTS)

    def reconcile(self) -> None:
        pods_by_ns: dict[str, list[Obj]] = {}
        for pod in self.pods.objects():
            pods_by_ns.setdefault(pod["metadata"]["namespace"], []).append(pod)
        services = {key_of(s): s for s in self.services.objects()}
        existing = {key_of(e): e for e in self.endpoints.objects()}
        for key, current in existing.items():
            meta = current["metadata"]
            if key in services or (meta.get("labels") or {}).get(SKIP_MIRROR_LABEL) != "true":
                continue
            if self.kube.get_or_none(Resources.SERVICES, meta["name"], meta["namespace"]) is None:
                self.kube.delete(Resources.ENDPOINTS, meta["name"], meta["namespace"])
        for key, service in services.items():
            if self.stopping:
                return
            spec = service.get("spec") or {}
            if spec.get("selector") is None or spec.get("type") == "ExternalName":
                continue
            try:
                self.sync(service, pods_by_ns.get(service["metadata"]["namespace"], []), existing.get(key))
            except ApiException as exc:
                if not is_stale(exc):
                    raise
                self.wake()

    def sync(self, service: Obj, pods: list[Obj], current: Obj | None) -> None:
        meta = service["metadata"]
        labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HEADLESS_LABEL}
        labels[SKIP_MIRROR_LABEL] = "true"
        if (service.get("spec") or {}).get("clusterIP") == "None":
            labels[HEADLESS_LABEL] = ""
        subsets = endpoints_subsets(service, pods)
        if current is None:
            body: Obj = {"metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels}}
            if subsets:
                body["subsets"] = subsets
            try:
                self.kube.create(Resources.ENDPOINTS, body, meta["namespace"])
            except ApiException as exc:
                if exc.status != 409:  # the cache had not shown it yet
                    raise
                self.wake()
            return
        if (current.get("subsets") or []) == subsets and (current["metadata"].get("labels") or {}) == labels:
            return
        updated = {**current, "metadata": {**current["metadata"], "labels": labels}}
        updated.pop("subsets", None)
        if subsets:
            updated["subsets"] = subsets
        self.kube.replace(Resources.ENDPOINTS, updated)
