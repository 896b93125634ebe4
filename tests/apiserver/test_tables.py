"""Server-side tables: the cells kubectl prints, checked against the walkthrough's outputs."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from bgpconform.lab.apiserver.resources import BUILTINS, ResourceType
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.apiserver.tables import cells, human_duration, json_path
from bgpconform.lab.apiserver.util import now, timestamp
from tests.apiserver.conftest import CoreApi, CustomApi, fixture, pod_body

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _builtin(kind: str) -> ResourceType:
    return next(r for r in BUILTINS if r.kind == kind)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (43, "43s"),
        (363, "6m3s"),
        (600, "10m"),
        (21 * 60, "21m"),
        (5 * 3600 + 60, "5h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 18 * 3600, "3d18h"),
        (3 * 86400 + 21 * 3600, "3d21h"),
        (20 * 86400, "20d"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def _pod(status: dict[str, Any], init: int = 0, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "cilium-6fnjv",
        "creationTimestamp": timestamp(now() - timedelta(seconds=20)),
    }
    if deleting:
        meta["deletionTimestamp"] = timestamp()
    return {
        "metadata": meta,
        "spec": {
            "containers": [{"name": "cilium-agent"}],
            "initContainers": [{"name": f"init-{i}"} for i in range(init)],
        },
        "status": status,
    }


def test_pod_status_column_follows_kubectl() -> None:
    pods = _builtin("Pod")
    done = {"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    waiting = {"state": {"waiting": {"reason": "PodInitializing"}}}
    initializing = _pod(
        {"phase": "Pending", "initContainerStatuses": [done, waiting] + [waiting] * 4}, init=6
    )
    assert cells(pods, "v1", initializing)[:5] == ["cilium-6fnjv", "0/1", "Init:1/6", "0", "20s"]
    running = {"name": "cilium-agent", "ready": True, "restartCount": 2, "state": {"running": {}}}
    ready = _pod({"phase": "Running", "containerStatuses": [running], "podIP": "10.136.1.7"})
    assert cells(pods, "v1", ready)[:6] == ["cilium-6fnjv", "1/1", "Running", "2", "20s", "10.136.1.7"]
    crashing = {"name": "cilium-agent", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    assert (
        cells(pods, "v1", _pod({"phase": "Running", "containerStatuses": [crashing]}))[2]
        == "CrashLoopBackOff"
    )
    assert cells(pods, "v1", _pod({"phase": "Running"}, deleting=True))[2] == "Terminating"
    assert cells(pods, "v1", _pod({"phase": "Pending"}))[1:3] == ["0/1", "Pending"]


def test_node_and_service_columns() -> None:
    node = {
        "metadata": {
            "name": "k3s-control-plane-01",
            "creationTimestamp": timestamp(),
            "labels": {
                "node-role.kubernetes.io/master": "true",
                "node-role.kubernetes.io/control-plane": "true",
            },
        },
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "nodeInfo": {"kubeletVersion": "v1.27.3+k3s1"},
        },
    }
    assert cells(_builtin("Node"), "v1", node)[:5] == [
        "k3s-control-plane-01",
        "NotReady",
        "control-plane,master",
        "0s",
        "v1.27.3+k3s1",
    ]
    service = {
        "metadata": {"name": "my-service", "creationTimestamp": timestamp()},
        "spec": {
            "type": "LoadBalancer",
            "clusterIPs": ["172.20.32.184"],
            "selector": {"app": "simple-pod"},
            "ports": [{"port": 8080, "nodePort": 30232, "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {}},
    }
    row = cells(_builtin("Service"), "v1", service)
    assert row == [
        "my-service",
        "LoadBalancer",
        "172.20.32.184",
        "<pending>",
        "8080:30232/TCP",
        "0s",
        "app=simple-pod",
    ]
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "172.198.1.246"}]}}
    assert cells(_builtin("Service"), "v1", service)[3] == "172.198.1.246"


def test_endpoints_and_endpointslice_columns() -> None:
    """`kubectl get endpoints,endpointslices`: ip:port pairs, port numbers, 3 then `+ N more...`."""
    ips = ["10.136.1.7", "10.136.2.9", "10.136.3.4", "10.136.4.2", "10.136.5.8"]
    meta = {"name": "my-service", "creationTimestamp": timestamp(now() - timedelta(seconds=20))}
    endpoints: dict[str, Any] = {
        "metadata": meta,
        "subsets": [
            {"addresses": [{"ip": ip} for ip in ips[:2]], "ports": [{"port": 80, "protocol": "TCP"}]}
        ],
    }
    assert cells(_builtin("Endpoints"), "v1", endpoints) == [
        "my-service",
        "10.136.1.7:80,10.136.2.9:80",
        "20s",
    ]
    endpoints["subsets"][0]["addresses"] = [{"ip": ip} for ip in ips]
    assert cells(_builtin("Endpoints"), "v1", endpoints)[1] == (
        "10.136.1.7:80,10.136.2.9:80,10.136.3.4:80 + 2 more..."
    )
    headless = {"metadata": meta, "subsets": [{"addresses": [{"ip": "fd00::7"}]}]}
    assert cells(_builtin("Endpoints"), "v1", headless)[1] == "fd00::7"
    ipv6 = {"metadata": meta, "subsets": [{"addresses": [{"ip": "fd00::7"}], "ports": [{"port": 80}]}]}
    assert cells(_builtin("Endpoints"), "v1", ipv6)[1] == "[fd00::7]:80"
    assert cells(_builtin("Endpoints"), "v1", {"metadata": meta})[1] == "<none>"
    not_ready = {
        "metadata": meta,
        "subsets": [{"notReadyAddresses": [{"ip": ips[0]}], "ports": [{"port": 80}]}],
    }
    assert cells(_builtin("Endpoints"), "v1", not_ready)[1] == ""

    slices = _builtin("EndpointSlice")
    endpoint_slice: dict[str, Any] = {
        "metadata": {**meta, "name": "my-service-x7k2p"},
        "addressType": "IPv4",
        "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips[:3]],
    }
    assert cells(slices, "v1", endpoint_slice) == [
        "my-service-x7k2p",
        "IPv4",
        "80",
        "10.136.1.7,10.136.2.9,10.136.3.4",
        "20s",
    ]
    endpoint_slice["endpoints"] = [{"addresses": [ip]} for ip in ips]
    endpoint_slice["ports"] = [{"port": p} for p in (80, 443, 8080, 9090)] + [{"name": "metrics"}, {}]
    assert cells(slices, "v1", endpoint_slice)[2:4] == [
        "80,443,8080 + 3 more...",
        "10.136.1.7,10.136.2.9,10.136.3.4 + 2 more...",
    ]
    endpoint_slice["ports"] = [{"name": "metrics"}, {}]
    assert cells(slices, "v1", endpoint_slice)[2] == "metrics,*"
    empty: dict[str, Any] = {"metadata": meta, "addressType": "IPv4", "ports": None, "endpoints": []}
    assert cells(slices, "v1", empty)[1:4] == ["IPv4", "<unset>", "<unset>"]


def test_json_path_subset() -> None:
    obj = {
        "status": {
            "conditions": [{"type": "a", "status": "True"}, {"type": "io.cilium/conflict", "status": "False"}]
        },
        "spec": {"cidrs": [{"cidr": "172.198.1.0/24"}]},
    }
    assert json_path(obj, '.status.conditions[?(@.type=="io.cilium/conflict")].status') == ["False"]
    assert json_path(obj, ".spec.cidrs[0].cidr") == ["172.198.1.0/24"]
    assert json_path(obj, "{.spec.cidrs[*].cidr}") == ["172.198.1.0/24"]
    assert json_path(obj, ".spec.missing") == []


def _table(server: ApiServer, path: str) -> dict[str, Any]:
    request = urllib.request.Request(server.url + path, headers={"Accept": TABLE})
    with urllib.request.urlopen(request, timeout=10) as response:
        table: dict[str, Any] = json.loads(response.read())
    return table


def test_list_as_table(server: ApiServer, core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("simple-pod", ("my-app-container",)))
    table = _table(server, "/api/v1/pods")
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert [c["priority"] for c in table["columnDefinitions"]][5:] == [1, 1, 1, 1]
    assert table["rows"][0]["cells"][:3] == ["simple-pod", "0/1", "Pending"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["rows"][0]["object"]["metadata"]["namespace"] == "default"


def test_endpoints_and_endpointslices_list_as_tables(
    server: ApiServer, api_client: Any, core: CoreApi
) -> None:
    discovery: Any = client.DiscoveryV1Api(api_client)
    subset = {"addresses": [{"ip": "10.136.1.7"}], "ports": [{"port": 80, "protocol": "TCP"}]}
    core.create_namespaced_endpoints("default", {"metadata": {"name": "my-service"}, "subsets": [subset]})
    discovery.create_namespaced_endpoint_slice(
        "default",
        {
            "metadata": {"name": "my-service-x7k2p", "labels": {"kubernetes.io/service-name": "my-service"}},
            "addressType": "IPv4",
            "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.136.1.7"]}],
        },
    )
    endpoints = _table(server, "/api/v1/namespaces/default/endpoints")
    assert [c["name"] for c in endpoints["columnDefinitions"]] == ["Name", "Endpoints", "Age"]
    rows = {r["cells"][0]: r["cells"] for r in endpoints["rows"]}
    assert rows["my-service"][1] == "10.136.1.7:80"
    endpoint_slices = _table(server, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices")
    assert [c["name"] for c in endpoint_slices["columnDefinitions"]] == [
        "Name",
        "AddressType",
        "Ports",
        "Endpoints",
        "Age",
    ]
    assert endpoint_slices["rows"][0]["cells"][:4] == ["my-service-x7k2p", "IPv4", "80", "10.136.1.7"]


def test_custom_resource_table_uses_printer_columns(
    server: ApiServer, cilium_crds: None, custom: CustomApi
) -> None:
    custom.create_cluster_custom_object(
        "cilium.io", "v2alpha1", "ciliumloadbalancerippools", fixture("cilium-ippool.yaml")
    )
    condition = {
        "type": "io.cilium/ips-available",
        "status": "Unknown",
        "reason": "noreason",
        "message": "254",
        "lastTransitionTime": "2023-07-26T15:00:56Z",
    }
    custom.patch_cluster_custom_object_status(
        "cilium.io",
        "v2alpha1",
        "ciliumloadbalancerippools",
        "lb-pool",
        {"status": {"conditions": [condition]}},
    )
    table = _table(server, "/apis/cilium.io/v2alpha1/ciliumloadbalancerippools")
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Disabled",
        "Conflicting",
        "IPs Available",
        "Age",
    ]
    assert table["rows"][0]["cells"][:4] == ["lb-pool", False, None, "254"]
