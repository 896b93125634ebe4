"""Discovery and OpenAPI: what kubectl and the dynamic client read before anything else."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from kubernetes import client

from bgpconform.lab.apiserver.server import ApiServer
from tests.apiserver.conftest import ApiClient, dynamic_client


def _get(server: ApiServer, path: str, accept: str = "application/json") -> Any:
    request = urllib.request.Request(server.url + path, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_version_reports_the_k3s_version(server: ApiServer, api_client: ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == "v1.27.3+k3s1"
    assert (info.major, info.minor) == ("1", "27")


def test_core_and_group_lists(server: ApiServer) -> None:
    core = _get(server, "/api")
    assert core["kind"] == "APIVersions"
    assert core["versions"] == ["v1"]
    groups = {g["name"]: g for g in _get(server, "/apis")["groups"]}
    assert set(groups) == {"apps", "apiextensions.k8s.io", "discovery.k8s.io", "coordination.k8s.io"}
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert _get(server, "/apis/apps")["kind"] == "APIGroup"


def test_pod_resource_entries(server: ApiServer) -> None:
    listing = _get(server, "/api/v1")
    assert listing["groupVersion"] == "v1"
    entries = {r["name"]: r for r in listing["resources"]}
    assert entries["pods"] == {
        "name": "pods",
        "singularName": "pod",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["po"],
        "categories": ["all"],
    }
    assert entries["pods/exec"]["kind"] == "PodExecOptions"
    assert entries["pods/log"]["verbs"] == ["get"]
    assert entries["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert entries["nodes"]["namespaced"] is False
    assert {"configmaps", "events", "namespaces", "secrets", "serviceaccounts", "services"} <= set(entries)
    apps = {r["name"] for r in _get(server, "/apis/apps/v1")["resources"]}
    assert {"deployments", "replicasets", "daemonsets", "deployments/status"} <= apps


def test_dynamic_client_discovers_custom_resources(cilium_crds: None, api_client: ApiClient) -> None:
    dyn = dynamic_client(api_client)
    pools = dyn.resources.get(api_version="cilium.io/v2alpha1", kind="CiliumLoadBalancerIPPool")
    assert pools.name == "ciliumloadbalancerippools"
    assert pools.namespaced is False
    assert pools.short_names == ["ippools", "ippool", "lbippool", "lbippools"]


def test_openapi_v3_offers_field_validation_on_patch(cilium_crds: None, server: ApiServer) -> None:
    index = _get(server, "/openapi/v3")["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/cilium.io/v2alpha1"} <= set(index)
    document = _get(server, index["apis/cilium.io/v2alpha1"]["serverRelativeURL"])
    patch = document["paths"]["/apis/cilium.io/v2alpha1/ciliumbgppeeringpolicies/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "cilium.io",
        "version": "v2alpha1",
        "kind": "CiliumBGPPeeringPolicy",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    schema = document["components"]["schemas"]["io.cilium.v2alpha1.CiliumBGPPeeringPolicy"]
    assert schema["properties"]["spec"]["required"] == ["virtualRouters"]


def test_openapi_v2_is_an_empty_document(server: ApiServer) -> None:
    request = urllib.request.Request(
        server.url + "/openapi/v2",
        headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        assert (
            response.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        )
    assert body.startswith(b"\x0a\x032.0\x12")
    assert _get(server, "/openapi/v2")["swagger"] == "2.0"
