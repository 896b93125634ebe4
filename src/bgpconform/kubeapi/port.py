"""The cluster port: what the harness asks of any Kubernetes API, and the resources it asks about.

Importing this module loads no Kubernetes client (slow to import), so steps, checks and the report
can name resources and type their arguments without pulling in an implementation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class KubeResource:
    """A resource's REST coordinates: group ("" for core), version, plural, and whether namespaced."""

    group: str
    version: str
    plural: str
    namespaced: bool
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


class Resources:
    """The resources the lab's components use, as `KubeResource` constants."""

    NAMESPACES = KubeResource("", "v1", "namespaces", False, "Namespace")
    NODES = KubeResource("", "v1", "nodes", False, "Node")
    PODS = KubeResource("", "v1", "pods", True, "Pod")
    SERVICES = KubeResource("", "v1", "services", True, "Service")
    CONFIGMAPS = KubeResource("", "v1", "configmaps", True, "ConfigMap")
    SERVICE_ACCOUNTS = KubeResource("", "v1", "serviceaccounts", True, "ServiceAccount")
    SECRETS = KubeResource("", "v1", "secrets", True, "Secret")
    EVENTS = KubeResource("", "v1", "events", True, "Event")
    ENDPOINTS = KubeResource("", "v1", "endpoints", True, "Endpoints")
    ENDPOINT_SLICES = KubeResource("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")
    DAEMONSETS = KubeResource("apps", "v1", "daemonsets", True, "DaemonSet")
    DEPLOYMENTS = KubeResource("apps", "v1", "deployments", True, "Deployment")
    REPLICASETS = KubeResource("apps", "v1", "replicasets", True, "ReplicaSet")
    CRDS = KubeResource(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
    )
    LEASES = KubeResource("coordination.k8s.io", "v1", "leases", True, "Lease")
    BGP_PEERING_POLICIES = KubeResource(
        "cilium.io", "v2alpha1", "ciliumbgppeeringpolicies", False, "CiliumBGPPeeringPolicy"
    )
    LB_IP_POOLS = KubeResource(
        "cilium.io", "v2alpha1", "ciliumloadbalancerippools", False, "CiliumLoadBalancerIPPool"
    )
    CILIUM_NODES = KubeResource("cilium.io", "v2", "ciliumnodes", False, "CiliumNode")
    CILIUM_NODE_CONFIGS = KubeResource("cilium.io", "v2alpha1", "ciliumnodeconfigs", True, "CiliumNodeConfig")


class Watch(Protocol):
    """An open watch: iterate its events; `close()` from any thread ends the iteration."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class KubeApi(Protocol):
    """Raw JSON calls on a cluster; a missing object or resource raises the client's 404 error."""

    def get_path(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """GET any API path as JSON (discovery, `/version`)."""

    def api_resources(self, group_version: str) -> list[dict[str, Any]]:
        """What a group version serves; empty when it is not served at all."""

    def server_time(self) -> float:
        """The API server's clock now, in whole Unix seconds (its `Date` header): the clock that
        stamps creationTimestamps, which may not be ours."""

    def get(self, resource: KubeResource, name: str, namespace: str | None = None) -> dict[str, Any]: ...

    def get_or_none(
        self, resource: KubeResource, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...

    def listing(
        self,
        resource: KubeResource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]: ...

    def items(
        self, resource: KubeResource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]: ...

    def items_if_served(
        self, resource: KubeResource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """As `items`, but none when the resource is not served (its CRD is not installed)."""

    def watch(
        self,
        resource: KubeResource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 60,
    ) -> Watch: ...

    def create(
        self, resource: KubeResource, obj: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]: ...

    def replace(
        self, resource: KubeResource, obj: Mapping[str, Any], subresource: str = ""
    ) -> dict[str, Any]: ...

    def patch(
        self,
        resource: KubeResource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        content_type: str = MERGE_PATCH,
        subresource: str = "",
        field_manager: str | None = None,
    ) -> dict[str, Any]: ...

    def pod_log(self, pod: str, container: str, namespace: str) -> str: ...

    def delete(
        self, resource: KubeResource, name: str, namespace: str | None = None, *, missing_ok: bool = True
    ) -> None: ...
