"""The `KubeApi` port over the official client: plain-dict calls on one `kubernetes.client.ApiClient`.

Every target's cluster is reached through it, and the lab's emulated controllers, kubelet and Cilium
use it too, as the real components use client-go: every read and write goes over HTTP. Plain JSON dicts
rather than generated models, because CRDs have none and the checks are pure functions over the objects
as the API serves them.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import kubernetes.client
import kubernetes.config
import orjson
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from bgpconform.kubeapi.decoding import decode_json
from bgpconform.kubeapi.port import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    KubeResource,
    Resources,
)

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "ApiException",
    "Kube",
    "KubeResource",
    "Resources",
    "WatchStream",
    "new_api_client",
]


def new_api_client(kubeconfig: str, context: str | None = None) -> kubernetes.client.ApiClient:
    """A client of its own per component (and per thread that streams), as each binary has its own."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, client_configuration=configuration
    )
    return kubernetes.client.ApiClient(configuration)


class WatchStream:
    """One open watch: iterate its events; `close()` from any thread ends the iteration."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for line in iter_resp_lines(self._response):  # type: ignore[no-untyped-call]
                if self._closed.is_set():
                    return
                if line:
                    event: dict[str, Any] = orjson.loads(line)
                    yield event
        except Exception:
            if self._closed.is_set():
                return
            raise
        finally:
            with contextlib.suppress(Exception):
                self._response.release_conn()

    def close(self) -> None:
        """Shut the socket down: a thread blocked reading it wakes at once instead of at the timeout."""
        self._closed.set()
        connection = getattr(self._response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._response.close()


class Kube:
    """Raw JSON calls on one `ApiClient`: get, list, watch, create, patch, delete."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api_client = api_client

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        stream: bool = False,
        text: bool = False,
        timeout: float | tuple[float, float] | None = 30.0,
    ) -> Any:
        method, url, headers, body, _ = self.api_client.param_serialize(
            method,
            path,
            query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(method, url, headers, body, _request_timeout=timeout)
        if stream and 200 <= response.status <= 299:
            return response.response
        data: bytes = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            message = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            raise ApiException.from_response(http_resp=response, body=message, data=None)
        if text:
            return data.decode("utf-8", "replace")
        return decode_json(data) if data else None

    def get_path(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """GET any API path as JSON (discovery, `/version`, lists of resources found at run time)."""
        return self._call("GET", path, query=query)

    def server_time(self) -> float:
        """The `Date` header of a GET `/version`: the API server's clock, to the second."""
        method, url, headers, body, _ = self.api_client.param_serialize(
            "GET", "/version", header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        response = self.api_client.call_api(method, url, headers, body, _request_timeout=30.0)
        response.read()  # type: ignore[no-untyped-call]
        stamp = response.getheader("Date")  # type: ignore[no-untyped-call]
        if not stamp:
            raise ApiException(status=response.status, reason="the API server sent no Date header")
        return email.utils.parsedate_to_datetime(stamp).timestamp()

    def api_resources(self, group_version: str) -> list[dict[str, Any]]:
        """What a group version serves (discovery); empty when it is not served at all."""
        base = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
        try:
            listing: dict[str, Any] = self._call("GET", base)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        resources: list[dict[str, Any]] = listing.get("resources", [])
        return resources

    def get(self, resource: KubeResource, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", resource.path(namespace, name))
        return result

    def get_or_none(
        self, resource: KubeResource, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            return self.get(resource, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def listing(
        self,
        resource: KubeResource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]:
        """The whole list object (items and metadata.resourceVersion, for a watch to start from)."""
        query = {"labelSelector": label_selector, "fieldSelector": field_selector}
        result: dict[str, Any] = self._call("GET", resource.path(namespace), query=query)
        return result

    def items(
        self, resource: KubeResource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        listed = self.listing(resource, namespace, label_selector=label_selector)
        items: list[dict[str, Any]] = listed["items"]
        return items

    def items_if_served(
        self, resource: KubeResource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        try:
            return self.items(resource, namespace, label_selector=label_selector)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise

    def watch(
        self,
        resource: KubeResource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 60,
    ) -> WatchStream:
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        response = self._call(
            "GET", resource.path(namespace), query=query, stream=True, timeout=(10.0, timeout_seconds + 10.0)
        )
        return WatchStream(response)

    def create(
        self, resource: KubeResource, obj: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        result: dict[str, Any] = self._call("POST", resource.path(namespace), body=body)
        return result

    def replace(
        self, resource: KubeResource, obj: Mapping[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        result: dict[str, Any] = self._call(
            "PUT", resource.path(meta.get("namespace"), meta["name"], subresource), body=body
        )
        return result

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
    ) -> dict[str, Any]:
        query = {"fieldManager": field_manager}
        result: dict[str, Any] = self._call(
            "PATCH",
            resource.path(namespace, name, subresource),
            query=query,
            body=patch,
            content_type=content_type,
        )
        return result

    def pod_log(self, pod: str, container: str, namespace: str) -> str:
        """`kubectl logs POD -c CONTAINER -n NAMESPACE`."""
        path = Resources.PODS.path(namespace, pod, "log")
        log: str = self._call("GET", path, query={"container": container}, text=True)
        return log

    def delete(
        self, resource: KubeResource, name: str, namespace: str | None = None, *, missing_ok: bool = True
    ) -> None:
        try:
            self._call("DELETE", resource.path(namespace, name))
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return
            raise
