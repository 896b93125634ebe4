"""What the real server does to built-in objects on write: defaults, allocations, validation.

Only what a client can observe in the walkthrough's flows: pod and template defaults (so
`kubectl get -o yaml` looks real and `kubectl logs` finds containers), service ClusterIP and NodePort
allocation (the `8080:30232/TCP` column), secret `stringData`, workload selectors, status being reset
on create. Deviation: pod specs are not checked for the fields Kubernetes makes immutable.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import random
from collections.abc import Callable, Iterable
from typing import Any

from bgpconform.lab.apiserver import errors as e
from bgpconform.lab.apiserver.errors import FieldError
from bgpconform.lab.apiserver.resources import ResourceType
from bgpconform.lab.apiserver.selectors import match_label_selector_object

SERVICE_CIDR = ipaddress.ip_network("10.43.0.0/16")  # k3s default service CIDR (FACTS.md)
NODE_PORT_RANGE = (30000, 32767)

NOT_READY_TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]


class Allocations:
    """What is taken, read from live services at the moment of allocation."""

    def __init__(self, services: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._services = services

    def used_ips(self) -> set[str]:
        used = set()
        for service in self._services():
            for ip in service.get("spec", {}).get("clusterIPs") or [service.get("spec", {}).get("clusterIP")]:
                if ip:
                    used.add(ip)
        return used

    def used_node_ports(self) -> set[int]:
        return {
            int(port["nodePort"])
            for service in self._services()
            for port in service.get("spec", {}).get("ports") or []
            if port.get("nodePort")
        }

    def cluster_ip(self) -> str:
        used = self.used_ips()
        hosts = SERVICE_CIDR.num_addresses - 2
        for _ in range(64):
            candidate = str(SERVICE_CIDR.network_address + random.randint(10, hosts))
            if candidate not in used:
                return candidate
        for address in SERVICE_CIDR.hosts():
            if str(address) not in used and address != SERVICE_CIDR.network_address + 1:
                return str(address)
        raise e.internal("failed to allocate a serviceIP: range is full")

    def node_port(self, taken: set[int]) -> int:
        used = self.used_node_ports() | taken
        free = [p for p in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1) if p not in used]
        if not free:
            raise e.internal("failed to allocate a nodePort: range is full")
        return random.choice(free)


# --- pods and templates ------------------------------------------------------------------------


def _pull_policy(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            if isinstance(container.get("image"), str):
                container.setdefault("imagePullPolicy", _pull_policy(container["image"]))
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _admit_pod(spec: dict[str, Any]) -> None:
    """What admission plugins add to a pod (not to templates): service account, priority, tolerations."""
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    tolerations = spec.setdefault("tolerations", [])
    present = {t.get("key") for t in tolerations if isinstance(t, dict)}
    tolerations.extend(dict(t) for t in NOT_READY_TOLERATIONS if t["key"] not in present)


def validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [e.required(path)]
    problems: list[FieldError] = []
    containers = spec.get("containers")
    if not containers:
        problems.append(e.required(f"{path}.containers"))
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            where = f"{path}.{key}[{index}]"
            if not isinstance(container, dict):
                problems.append(e.invalid(where, container, "must be an object"))
                continue
            name = container.get("name")
            if not name:
                problems.append(e.required(f"{where}.name"))
            elif name in seen:
                problems.append(e.duplicate(f"{where}.name", name))
            else:
                seen.add(str(name))
            if not container.get("image"):
                problems.append(e.required(f"{where}.image"))
    return problems


# --- per-kind preparation -----------------------------------------------------------------------


class Builtins:
    """Create and update preparation for built-in kinds; returns field errors for a 422."""

    def __init__(self, allocations: Allocations) -> None:
        self.allocations = allocations

    def prepare_create(self, resource: ResourceType, obj: dict[str, Any]) -> list[FieldError]:
        kind = resource.kind
        if resource.has_status and kind not in ("Node",):
            obj.pop("status", None)
        handler = getattr(self, f"_create_{kind.lower()}", None)
        problems: list[FieldError] = handler(obj) if handler else []
        return problems

    def prepare_update(
        self, resource: ResourceType, old: dict[str, Any], new: dict[str, Any]
    ) -> list[FieldError]:
        handler = getattr(self, f"_update_{resource.kind.lower()}", None)
        problems: list[FieldError] = handler(old, new) if handler else []
        return problems

    # Namespaces
    def _create_namespace(self, obj: dict[str, Any]) -> list[FieldError]:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        return []

    def _update_namespace(self, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]
        new.setdefault("spec", old.get("spec", {}))
        return []

    # Pods
    def _create_pod(self, obj: dict[str, Any]) -> list[FieldError]:
        spec = obj.get("spec")
        problems = validate_pod_spec(spec, "spec")
        if problems:
            return problems
        assert isinstance(spec, dict)
        default_pod_spec(spec)
        _admit_pod(spec)
        obj["status"] = {"phase": "Pending", "qosClass": _qos(spec)}
        return []

    def _update_pod(self, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
        problems = validate_pod_spec(new.get("spec"), "spec")
        if not problems:
            default_pod_spec(new["spec"])
        return problems

    # Services
    def _create_service(self, obj: dict[str, Any]) -> list[FieldError]:
        spec = obj.setdefault("spec", {})
        problems = self._service_spec(spec, None)
        obj["status"] = {"loadBalancer": {}}
        return problems

    def _update_service(self, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
        return self._service_spec(new.setdefault("spec", {}), old.get("spec", {}))

    def _service_spec(self, spec: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        problems: list[FieldError] = []
        kind = spec.setdefault("type", "ClusterIP")
        allowed = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
        if kind not in allowed:
            return [e.not_supported("spec.type", kind, allowed)]
        ports = spec.get("ports") or []
        if not ports and kind != "ExternalName":
            problems.append(e.required("spec.ports"))
        if kind == "ExternalName":
            if not spec.get("externalName"):
                problems.append(e.required("spec.externalName"))
            return problems
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if kind == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        old_ip = (old or {}).get("clusterIP")
        ip = spec.get("clusterIP") or old_ip
        if old_ip and spec.get("clusterIP") and spec["clusterIP"] != old_ip:
            problems.append(e.invalid("spec.clusterIPs[0]", spec["clusterIP"], "may not change once set"))
        if not ip:
            ip = self.allocations.cluster_ip()
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in (old or {}).get("ports") or []}
        taken: set[int] = set()
        for index, port in enumerate(ports):
            if not isinstance(port, dict) or "port" not in port:
                problems.append(e.required(f"spec.ports[{index}].port"))
                continue
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port["port"])
            if len(ports) > 1 and not port.get("name"):
                problems.append(e.required(f"spec.ports[{index}].name"))
            if kind in ("NodePort", "LoadBalancer") and spec.get("allocateLoadBalancerNodePorts", True):
                previous = old_ports.get((port["port"], port["protocol"]), {}).get("nodePort")
                if not port.get("nodePort"):
                    port["nodePort"] = previous or self.allocations.node_port(taken)
                taken.add(int(port["nodePort"]))
        return problems

    # Secrets
    def _create_secret(self, obj: dict[str, Any]) -> list[FieldError]:
        return _secret(obj)

    def _update_secret(self, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
        return _secret(new)

    # Workloads
    def _create_deployment(self, obj: dict[str, Any]) -> list[FieldError]:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault(
            "strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        return _workload(obj)

    def _update_deployment(self, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
        return self._create_deployment(new)

    def _create_replicaset(self, obj: dict[str, Any]) -> list[FieldError]:
        obj.setdefault("spec", {}).setdefault("replicas", 1)
        return _workload(obj)

    def _update_replicaset(self, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
        return self._create_replicaset(new)

    def _create_daemonset(self, obj: dict[str, Any]) -> list[FieldError]:
        spec = obj.setdefault("spec", {})
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        return _workload(obj)

    def _update_daemonset(self, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
        return self._create_daemonset(new)


def _qos(spec: dict[str, Any]) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers") or [] if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        r.get("limits")
        and all(r.get("limits", {}).get(k) == v for k, v in (r.get("requests") or {}).items())
        and {"cpu", "memory"} <= set(r.get("limits", {}))
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _secret(obj: dict[str, Any]) -> list[FieldError]:
    obj.setdefault("type", "Opaque")
    data = obj.get("data") or {}
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise e.bad_request(
                f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at key {key!r}'
            ) from exc
    string_data = obj.pop("stringData", None) or {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        obj["data"] = data
    return []


def _workload(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj["spec"]
    problems: list[FieldError] = []
    template = spec.get("template")
    if not isinstance(template, dict):
        return [e.required("spec.template")]
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        problems.append(e.required("spec.selector"))
    labels = (template.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, dict) and not match_label_selector_object(selector, labels):
        problems.append(
            e.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    template_spec = template.get("spec")
    problems.extend(validate_pod_spec(template_spec, "spec.template.spec"))
    if isinstance(template_spec, dict):
        default_pod_spec(template_spec)
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return problems
